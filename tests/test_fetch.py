"""The authors' data files: the pinned registry, lookup order, hash checks and the offline
message, all without network (a downloader that copies local files, or one that fails)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pooch
import pytest
import requests

from chaosrnn_utils import data, fetch

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SMALL = "tde_temperature_MoreSmoothedNoYearShort.npy"
SIX = [name for name in fetch.REMOTE if name != fetch.MACKEY_GLASS_FILE]


def _shared(name: str) -> Path:
    p = fetch.locate(name)
    if p is None:
        pytest.skip(f"the authors' {name} is not here (../shared/data or CHAOSRNN_DATA_DIR)")
    return p


def copier(source_dir: Path, seen: list[str] | None = None) -> fetch.Downloader:
    """A pooch downloader that copies ``source_dir/<file name of the URL>`` instead."""

    def download(url: str, output_file: str, pup: pooch.Pooch) -> None:
        if seen is not None:
            seen.append(url)
        shutil.copyfile(source_dir / url.rsplit("/", 1)[-1], output_file)

    return download


def offline(url: str, output_file: str, pup: pooch.Pooch) -> None:
    raise requests.exceptions.ConnectionError(f"Failed to resolve host for {url}")


def test_git_blob_id_is_gits():
    """The blob id of git's own example ("hello\\n"), then of the six files against
    ``git hash-object``, and pooch's SHA-256 against hashlib's and the pinned one."""
    assert hashlib.sha1(b"blob 6\0hello\n").hexdigest() == \
        "ce013625030ba8dba906f756967f9e9ca394464a"
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    for name in SIX:
        p = _shared(name)
        git = subprocess.run(["git", "hash-object", str(p)], capture_output=True, text=True,
                             check=True).stdout.strip()
        assert fetch.git_blob_id(p) == git, name
        sha = hashlib.sha256(p.read_bytes()).hexdigest()
        assert fetch.file_hash(p, "sha256") == pooch.file_hash(str(p)) == sha
        assert fetch.REMOTE[name].hash == f"sha256:{sha}"
        assert fetch.REMOTE[name].hash[7:] == data.EMPIRICAL[
            next(k for k, v in data.EMPIRICAL.items() if v.filename == name)].sha256


def test_registry_is_pinned_to_the_commit():
    pup = fetch.registry("/nonexistent")
    assert set(pup.registry) == set(fetch.REMOTE)
    for name, remote in fetch.REMOTE.items():
        assert pup.get_url(name) == ("https://raw.githubusercontent.com/DurstewitzLab/ChaosRNN/"
                                     f"0e84b300e03a250cdafbf0128f4644226201572a/datasets/"
                                     f"{remote.path}")
    assert pup.registry[fetch.MACKEY_GLASS_FILE] is None  # checked as a git blob instead


def test_found_locally_before_any_download(tmp_path):
    src = _shared(SMALL)
    local = tmp_path / "local"
    local.mkdir()
    shutil.copyfile(src, local / SMALL)
    seen: list[str] = []
    got = fetch.fetch(SMALL, dirs=[tmp_path / "empty", local], path=tmp_path / "cache",
                      downloader=copier(src.parent, seen))
    assert got == local / SMALL and not seen


def test_missing_is_downloaded_into_the_cache_then_found_there(tmp_path):
    src = _shared(SMALL)
    seen: list[str] = []
    cache = tmp_path / "cache"
    got = fetch.fetch(SMALL, dirs=[tmp_path / "empty"], path=cache,
                      downloader=copier(src.parent, seen))
    assert got == cache / SMALL and len(seen) == 1
    assert got.read_bytes() == src.read_bytes()
    again = fetch.fetch(SMALL, dirs=[cache], path=cache, downloader=offline)
    assert again == got and len(seen) == 1


def test_a_corrupt_file_names_file_expected_and_found(tmp_path):
    src = _shared(SMALL)
    bad = tmp_path / SMALL
    raw = bytearray(src.read_bytes())
    raw[-1] ^= 1
    bad.write_bytes(bytes(raw))
    found = hashlib.sha256(bytes(raw)).hexdigest()
    with pytest.raises(fetch.HashMismatch) as err:
        fetch.fetch(SMALL, dirs=[tmp_path], path=tmp_path / "cache", downloader=offline)
    msg = str(err.value)
    assert str(bad) in msg and found in msg and fetch.REMOTE[SMALL].hash[7:] in msg
    assert "\n" not in msg
    # a corrupt download is refused by pooch's check and not kept
    corrupt = tmp_path / "server"
    corrupt.mkdir()
    shutil.copyfile(bad, corrupt / SMALL)
    with pytest.raises(fetch.HashMismatch, match=SMALL):
        fetch.fetch(SMALL, dirs=[], path=tmp_path / "cache", downloader=copier(corrupt))
    assert not (tmp_path / "cache" / SMALL).exists()


def test_offline_is_one_line_saying_how_to_get_the_file(tmp_path, capsys, monkeypatch):
    with pytest.raises(fetch.DataUnavailable) as err:
        fetch.fetch(SMALL, dirs=[], path=tmp_path, downloader=offline)
    msg = str(err.value)
    assert "\n" not in msg and fetch.BASE_URL + fetch.REMOTE[SMALL].path in msg
    assert "CHAOSRNN_DATA_DIR" in msg and "data/external" in msg
    monkeypatch.setattr(fetch, "_SAID", set())
    for _ in range(2):
        assert fetch.fetch_or_none(SMALL, dirs=[], path=tmp_path, downloader=offline) is None
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith("going on without it")


def test_mackey_glass_is_checked_as_a_git_blob(tmp_path, monkeypatch):
    """A download that is not the blob cc789a6… is refused and deleted; a file whose blob id
    is the pinned one is accepted and used by ``paper_dataset`` in place of ours."""
    server = tmp_path / "server"
    server.mkdir()
    x = np.random.default_rng(0).standard_normal((300, 1))
    np.save(server / fetch.MACKEY_GLASS_FILE, x)
    mg = fetch.MACKEY_GLASS_FILE
    with pytest.raises(fetch.HashMismatch, match="gitblob .* found, cc789a6abe69"):
        fetch.fetch(mg, dirs=[], path=tmp_path / "cache", downloader=copier(server))
    assert not (tmp_path / "cache" / mg).exists()
    blob = fetch.git_blob_id(server / mg)
    monkeypatch.setitem(fetch.REMOTE, mg, fetch.Remote(mg, f"gitblob:{blob}"))
    got = fetch.fetch(mg, dirs=[], path=tmp_path / "cache", downloader=copier(server))
    monkeypatch.setattr(data.paths, "empirical_data_dirs", lambda: [got.parent])
    assert data.mackey_glass_source().startswith("authors' file")
    emb = data.paper_dataset("mackey_glass", 200)
    np.testing.assert_array_equal(emb, data.delay_embed(x[:, 0], dim=6, lag=4)[:200])
    monkeypatch.setattr(data.paths, "empirical_data_dirs", lambda: [tmp_path / "empty"])
    assert data.mackey_glass_source().startswith("ours")


def test_fetch_data_command_reports_what_is_missing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(fetch, "fetch", lambda name: (_ for _ in ()).throw(
        fetch.DataUnavailable(f"{name} is not here")) if name == SMALL else tmp_path / name)
    assert fetch.main([SMALL, "tde_eegf.npy"]) == 1
    out = capsys.readouterr()
    assert f"{SMALL}: {SMALL} is not here" in out.err and "1 of 2 files" in out.out


def test_no_download_when_offline_is_set(tmp_path, monkeypatch):
    monkeypatch.setenv(fetch.OFFLINE_ENV, "1")
    with pytest.raises(fetch.DataUnavailable, match="CHAOSRNN_OFFLINE is set"):
        fetch.fetch(SMALL, dirs=[], path=tmp_path)
    monkeypatch.setattr(data.paths, "empirical_data_dirs", lambda: [tmp_path])
    with pytest.raises(FileNotFoundError, match="could not be downloaded .CHAOSRNN_OFFLINE"):
        data.load_empirical("temperature")
