"""A one-node SLURM cluster under a temporary folder, for the real-SLURM test: a munge key and
``munged``, then ``slurmctld`` and ``slurmd``, each in the foreground as a child of this
process, all state, spool, sockets and logs under the folder. Only the daemons started here
are stopped, by their pids. Needs root (SlurmUser/SlurmdUser = root) and Debian's
``slurm-wlm`` and ``munge``; :func:`why_not` says why a cluster cannot be started here."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scancel", "scontrol", "srun")


def why_not() -> str | None:
    """None when a one-node cluster can be started here, else the reason."""
    missing = [p for p in (*DAEMONS, *CLIENTS) if shutil.which(p) is None]
    if missing:
        return (f"SLURM is not installed ({', '.join(missing)} missing: apt-get install "
                "slurm-wlm munge, which python3 tasks.py test does as root)")
    if os.name != "posix" or os.geteuid() != 0:
        return "the one-node SLURM cluster runs its daemons as root"
    return None


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class OneNodeSlurm:
    """Start with :meth:`start`, stop with :meth:`stop`; ``env`` is what clients need
    (``SLURM_CONF``)."""

    def __init__(self, root: Path, cpus: int | None = None) -> None:
        self.root = Path(root)
        self.cpus = cpus or os.cpu_count() or 1
        self.host = socket.gethostname().split(".")[0]
        self.conf = self.root / "slurm.conf"
        self.procs: list[subprocess.Popen] = []
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.root / f"{name}.out", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                start_new_session=True)
        log.close()
        self.procs.append(proc)
        return proc

    def start(self, timeout: float = 60.0) -> OneNodeSlurm:
        """Write the key and the configuration, start the three daemons, wait until the node
        is idle (RuntimeError with the logs' last lines otherwise)."""
        r = self.root
        for d in ("munge", "state", "spool"):
            (r / d).mkdir(mode=0o700, parents=True, exist_ok=True)
        key = r / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        sock = r / "munge" / "munge.socket"
        ctld_port, d_port = _free_ports(2)
        self.conf.write_text("\n".join([
            "ClusterName=chaosrnn-test",
            f"SlurmctldHost={self.host}(127.0.0.1)",
            f"SlurmctldPort={ctld_port}",
            f"SlurmdPort={d_port}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={sock}",
            f"StateSaveLocation={r / 'state'}",
            f"SlurmdSpoolDir={r / 'spool'}",
            f"SlurmctldPidFile={r / 'slurmctld.pid'}",
            f"SlurmdPidFile={r / 'slurmd.pid'}",
            f"SlurmctldLogFile={r / 'slurmctld.log'}",
            f"SlurmdLogFile={r / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "SchedulerType=sched/backfill",
            "SchedulerParameters=sched_interval=2",
            "MpiDefault=none",
            "SwitchType=switch/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "ReturnToService=2",
            "MinJobAge=2",
            "KillWait=5",
            f"NodeName={self.host} NodeAddr=127.0.0.1 CPUs={self.cpus} State=UNKNOWN",
            f"PartitionName=test Nodes={self.host} Default=YES MaxTime=INFINITE State=UP",
            "",
        ]))
        self._spawn("munged", ["munged", "--foreground", "--force", f"--key-file={key}",
                               f"--socket={sock}", f"--pid-file={r / 'munge' / 'munged.pid'}",
                               f"--log-file={r / 'munge' / 'munged.log'}",
                               f"--seed-file={r / 'munge' / 'munged.seed'}"])
        self._wait(lambda: sock.exists(), timeout, "munged's socket")
        self._spawn("slurmctld", ["slurmctld", "-D", "-i", "-f", str(self.conf)])
        self._spawn("slurmd", ["slurmd", "-D", "-f", str(self.conf)])
        self._wait(self._idle, timeout, "the node to be idle")
        return self

    def _idle(self) -> bool:
        r = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True,
                           env=self.env, timeout=30)
        return r.returncode == 0 and r.stdout.strip().rstrip("*") == "idle"

    def _wait(self, ok, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if ok():
                return
            for p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"{p.args[0]} exited ({p.returncode}) while waiting for "
                                       f"{what}: {self.logs()}")
            time.sleep(0.5)
        raise RuntimeError(f"timed out waiting for {what}: {self.logs()}")

    def logs(self, lines: int = 5) -> str:
        """The last ``lines`` lines of each daemon's log, one string."""
        out = []
        for f in sorted([*self.root.glob("*.log"), *self.root.glob("*.out"),
                         *self.root.glob("munge/*.log")]):
            tail = f.read_text(errors="replace").strip().splitlines()[-lines:]
            out.append(f"{f.name}: " + " | ".join(tail))
        return "; ".join(out)

    def stop(self) -> None:
        """Cancel this cluster's jobs still queued (a failed test may leave some), then stop
        the daemons started here (SIGTERM by pid, SIGKILL after 10 s), last first."""
        if self.procs and all(p.poll() is None for p in self.procs):
            user = os.environ.get("USER") or "root"
            subprocess.run(["scancel", "--full", "-u", user], env=self.env,
                           capture_output=True, timeout=30)
            end = time.monotonic() + 20
            while time.monotonic() < end:
                q = subprocess.run(["squeue", "-h"], env=self.env, capture_output=True,
                                   text=True, timeout=30)
                if q.returncode != 0 or not q.stdout.strip():
                    break
                time.sleep(0.5)
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for p in reversed(self.procs):
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        self.procs.clear()
