"""One training loop for every mode, run on whole ensembles at once.

Each member of an ensemble has its own seed (initialisation and batch draws), training mode,
learning interval, clipping thresholds and Adam state; the members share architecture, data,
sequence length, batch size, epochs and learning rate. One forward and one backward per update
serve all members: the latent update at step t is, per member e,

    s̃_t = where(force[e,t], B⁺x_t, s_t)          sparse forcing (τ), classic TF (τ = 1)
    s̃_t = where(zero[e,t], 0, s̃_t)              windowing: restart from zeros every window
    s̃_t = α_e B⁺x_t + (1 − α_e) s̃_t              generalised teacher forcing (t ≥ 1)
    s̃_t = where(cut[e,t], detach(s̃_t), s̃_t)     truncated BPTT: no gradient through t
    s_{t+1} = F_θ(s̃_t),  L_e = mean_{b,t,n} (x_{t+1} − B s_{t+1})²

so member e ends with the same parameters as the same configuration trained alone. Adam is
elementwise, so one Adam over stacked parameters is one Adam per member. A member whose loss or
gradient turns NaN/inf is marked diverged (epoch recorded) and frozen; the others go on.

The masks of one batch are the schedule of :mod:`.forcing` (:func:`~.forcing.schedule_masks`);
``MODES``, ``MemberConfig`` and the mask builders are importable from here as well.
"""

from __future__ import annotations

import math
import pickle
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.autograd.function import once_differentiable
from tqdm import tqdm

from . import fused, paths, triton_engine
from .data import check_series
from .forcing import MODES as MODES  # the schedule lives in forcing; its names stay here too
from .forcing import (
    MemberConfig,
    batch_periods,
    member_codes,
    periodic_masks,
    schedule_masks,
)
from .jacobians import member_norms
from .models import EnsembleRNN, make_model
from .validate import check_positive_int

ENGINES = ("fused", "autograd")


@dataclass(frozen=True)
class TrainSettings:
    """What all members of one ensemble share (the paper's defaults are the ``paper`` profile
    of :data:`SETTINGS`).

    ``engine``: ``fused`` (hand-written backpropagation through time, :mod:`.fused`; used for
    PLRNN, tanh RNN and LSTM, other models fall back) or ``autograd`` (the reference path,
    :func:`training_rollout`). Both give the same numbers to float rounding."""

    model: str = "plrnn"
    latent_dim: int = 30
    seq_len: int = 200
    batch_size: int = 32
    batches_per_epoch: int = 10
    epochs: int = 3000
    lr: float = 1e-3
    dtype: str = "float32"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    engine: str = "fused"

    def validate(self, n_data: int) -> TrainSettings:
        for name in ("latent_dim", "seq_len", "batch_size", "batches_per_epoch", "epochs"):
            check_positive_int(getattr(self, name), name)
        if self.seq_len + 1 > n_data:
            raise ValueError(f"seq_len {self.seq_len} + 1 exceeds the {n_data} data points")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.engine not in ENGINES:
            raise ValueError(f"unknown engine {self.engine!r}; engines: {', '.join(ENGINES)}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        return self


SETTINGS = {
    "paper": TrainSettings(),
    "quick": TrainSettings(latent_dim=20, seq_len=200, batch_size=16, batches_per_epoch=10,
                           epochs=150),
}


class Adam(torch.optim.Optimizer):
    """Adam (Kingma & Ba 2015) whose every quantity lives on the parameters' device and in
    their dtype, the step count included, so that the CPU, an eager GPU run and a captured
    CUDA graph run the same arithmetic (torch's own Adam computes the bias corrections as
    Python doubles when not capturable and from a float32 step tensor when capturable: in
    float64 the two differ by about 1e-5 relative per step). Per parameter p, gradient g,

        t ← t + 1,   m ← m + (1 − β₁)(g − m),   v ← β₂ v + (1 − β₂) g²,
        p ← p − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε),

    with 1 − βᵗ computed as −expm1(t ln β) (1 − βᵗ in p's dtype would cancel: in float32,
    1 − 0.999 loses 13 bits).

    every operation a tensor operation (foreach where shapes allow), none reading a value
    back to the host: a graph capture replays it exactly. State per parameter: ``step``
    (0-d, dtype and device of p), ``exp_avg`` (m), ``exp_avg_sq`` (v): the names of
    torch's Adam, whose state dicts (older checkpoints) load into this one."""

    def __init__(self, params: Any, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        if not lr > 0 or not eps >= 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"Adam needs lr > 0, eps ≥ 0 and betas in [0, 1); got lr={lr}, "
                             f"betas={betas}, eps={eps}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps))

    def _state(self, p: Tensor) -> dict[str, Tensor]:
        st = self.state[p]
        if not st:
            st["step"] = torch.zeros((), dtype=p.dtype, device=p.device)
            st["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            st["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return st

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        """One Adam step of every parameter that has a gradient."""
        if closure is not None:
            raise ValueError("this Adam takes no closure")
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            beta1, beta2 = group["betas"]
            lr, eps = group["lr"], group["eps"]
            states = [self._state(p) for p in params]
            grads = [p.grad for p in params]
            steps = [st["step"] for st in states]
            m = [st["exp_avg"] for st in states]
            v = [st["exp_avg_sq"] for st in states]
            torch._foreach_add_(steps, 1)
            torch._foreach_lerp_(m, grads, 1 - beta1)
            torch._foreach_mul_(v, beta2)
            torch._foreach_addcmul_(v, grads, grads, value=1 - beta2)
            denom = torch._foreach_sqrt(v)
            for p, d, ma, t in zip(params, denom, m, steps, strict=True):
                bc1 = torch.expm1(t * math.log(beta1)).neg_()  # 1 − β₁ᵗ, no cancellation
                bc2_sqrt = torch.expm1(t * math.log(beta2)).neg_().sqrt_()
                d.div_(bc2_sqrt).add_(eps)
                p.sub_(ma / d * (lr / bc1))

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state dict of this Adam or of ``torch.optim.Adam`` (no weight decay,
        amsgrad or maximize): every tensor moved to its parameter's device and dtype, the
        step count included; the hyperparameters kept to lr, betas and eps."""
        for group in state_dict.get("param_groups", []):
            for key, neutral in (("weight_decay", 0), ("amsgrad", False), ("maximize", False)):
                if group.get(key, neutral) != neutral:
                    raise ValueError(f"an Adam state with {key}={group[key]!r} does not fit "
                                     f"this optimizer")
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            for key in [k for k in group if k not in ("params", "lr", "betas", "eps")]:
                del group[key]
            for p in group["params"]:
                st = self.state.get(p)
                if not st:
                    continue
                if set(st) != {"step", "exp_avg", "exp_avg_sq"}:
                    raise ValueError(f"an Adam state holds {sorted(st)}, not step, exp_avg "
                                     f"and exp_avg_sq")
                # copies: a state dict taken from a live optimizer shares its tensors
                st["step"] = torch.as_tensor(st["step"]).to(device=p.device, dtype=p.dtype,
                                                            copy=True)
                for key in ("exp_avg", "exp_avg_sq"):
                    if st[key].shape != p.shape:
                        raise ValueError(f"an Adam {key} of shape {tuple(st[key].shape)} does "
                                         f"not fit a parameter of shape {tuple(p.shape)}")
                    st[key] = st[key].to(device=p.device, dtype=p.dtype, copy=True)


@dataclass
class TrainState:
    """Everything needed to continue training exactly where it stopped."""

    model: EnsembleRNN
    optimizer: torch.optim.Optimizer
    generators: list[torch.Generator]
    epoch: int = 0
    alive: Tensor | None = None  # (E,) bool, on the model's device
    diverged_epoch: Tensor | None = None  # (E,) long, −1 while alive
    history: list[np.ndarray] = field(default_factory=list)  # per epoch: (E,) mean loss
    wall_time: float = 0.0


def member_generators(members: Sequence[MemberConfig]) -> list[torch.Generator]:
    """One generator per member, seeded with its ``seed``: it draws the member's batch
    windows and its random τ (``tau_spread``), in that order per batch."""
    return [torch.Generator().manual_seed(int(m.seed)) for m in members]


def training_rollout(model: EnsembleRNN, x: Tensor, masks: dict[str, Tensor]) -> Tensor:
    """States s_1..s_T (E, B, T, S) on windows x (E, B, T+1, N) under per-member masks
    (see the module docstring); s_0 = B⁺x_0 (zeros for members whose ``zero`` mask is set at
    t = 0)."""
    E, nb, T1, _ = x.shape
    T = T1 - 1
    inferred = model.inferred_state(x[:, :, :T])  # (E, B, T, S), gradients reach B
    dev, dt = inferred.device, inferred.dtype
    force = masks["force"].to(dev)[:, None, :, None]
    zero = masks["zero"].to(dev)[:, None, :, None]
    cut = masks["cut"].to(dev)[:, None, :, None]
    alpha = masks["alpha"].to(device=dev, dtype=dt)[:, None, None]
    use_alpha = bool((masks["alpha"] > 0).any())
    # which steps need a forcing/reset/cut at all (decided on the host masks: no device sync)
    any_force = masks["force"].any(0).tolist()
    any_zero = masks["zero"].any(0).tolist()
    any_cut = masks["cut"].any(0).tolist()
    # unbind once: slicing inferred[:, :, t] inside the loop would make the backward pass
    # scatter every step's gradient into a full-size zero tensor (O(T²) memory traffic)
    steps = inferred.unbind(2)
    force, zero, cut = force.unbind(2), zero.unbind(2), cut.unbind(2)
    s = steps[0]
    out = []
    for t in range(T):
        if t > 0:
            if any_force[t]:
                s = torch.where(force[t], steps[t], s)
            if use_alpha:
                s = alpha * steps[t] + (1 - alpha) * s
        if any_zero[t]:
            s = torch.where(zero[t], torch.zeros_like(s), s)
        if any_cut[t]:
            s = torch.where(cut[t], s.detach(), s)
        s = model.step(s)
        out.append(s)
    return torch.stack(out, dim=2)


def training_predictions(model: EnsembleRNN, x: Tensor, masks: dict[str, Tensor],
                         engine: str = "fused") -> tuple[Tensor, Tensor]:
    """(x̂, target) of one batch of windows x (E, B, T+1, N): x̂_t = B s_t against x_t for
    t = 1..T, in whichever layout the engine produces (the loss is a mean, layout-free)."""
    if engine == "fused" and fused.supports(model):  # Triton kernels on CUDA when present
        return triton_engine.predictions(model, x, masks), x[:, :, 1:].transpose(1, 2)
    return model.observe(training_rollout(model, x, masks)), x[:, :, 1:]


class _MemberMSE(torch.autograd.Function):
    """L_e = mean over (t, b, n) of (x_t − x̂_t)², per member e; ∂L_e/∂x̂ = −2 (x − x̂) ḡ_e / n
    in one pass (autograd's graph of the same formula takes about five passes over the
    predictions; measured 1.3 against 5.4 ms for (50, 200, 32, 3), one thread). The same
    formula as that graph: the same difference and reduction, and the gradient's factors in
    autograd's rounding order (ḡ/n first; the 2 and the sign are exact), so on the CPUs
    measured (Zen 5, native and portable kernels) the same bits."""

    @staticmethod
    def forward(ctx, pred: Tensor, target: Tensor) -> Tensor:
        diff = target - pred
        ctx.save_for_backward(diff)
        return diff.pow(2).mean(dim=tuple(range(1, diff.dim())))

    @staticmethod
    @once_differentiable
    def backward(ctx, g: Tensor):
        (diff,) = ctx.saved_tensors
        scale = (g / diff[0].numel()).mul_(-2).view(-1, *[1] * (diff.dim() - 1))
        grad = diff * scale
        return grad, -grad if ctx.needs_input_grad[1] else None


def member_mse(pred: Tensor, target: Tensor) -> Tensor:
    """The training loss per member, (E,): the mean squared error over every other axis of
    the predictions (E, ...) against their targets (any layouts)."""
    return _MemberMSE.apply(pred, target)


def _per_member(v: Tensor, like: Tensor) -> Tensor:
    """A per-member vector (E,) shaped to broadcast against an ensemble tensor (E, ...)."""
    return v.view((-1,) + (1,) * (like.ndim - 1))


def _clip_(grads: list[Tensor], clip_norm: Tensor, clip_value: Tensor) -> Tensor:
    """Per-member clipping in place (by total norm, then by value); returns the norms (E,)
    before clipping."""
    norm = member_norms(grads)
    factor = torch.clamp(clip_norm / (norm + 1e-6), max=1.0)
    for g in grads:
        g.mul_(_per_member(factor, g))
        v = _per_member(clip_value, g)
        g.copy_(torch.maximum(torch.minimum(g, v), -v))
    return norm


def new_state(members: Sequence[MemberConfig], settings: TrainSettings, obs_dim: int, *,
              device: torch.device | str | None = None) -> TrainState:
    """A freshly initialised ensemble (member e from seed e), its :class:`Adam` (the same on
    every path, graph capture included) and generators."""
    dtype = getattr(torch, settings.dtype)
    model = make_model(settings.model, settings.latent_dim, obs_dim, n_models=len(members),
                       seeds=[int(m.seed) for m in members], dtype=dtype, device=device,
                       **settings.model_kwargs)
    opt = Adam(model.parameters(), lr=settings.lr)
    E = len(members)
    dev = model.device
    return TrainState(model, opt, member_generators(members), 0,
                      torch.ones(E, dtype=torch.bool, device=dev),
                      torch.full((E,), -1, dtype=torch.long, device=dev))


def save_checkpoint(state: TrainState, path: str | Path) -> None:
    """Write the whole training state atomically (temporary file, then rename)."""
    blob = dict(model=state.model.state_dict(), optimizer=state.optimizer.state_dict(),
                generators=[g.get_state() for g in state.generators], epoch=state.epoch,
                alive=state.alive.cpu(), diverged_epoch=state.diverged_epoch.cpu(),
                history=np.array(state.history), wall_time=state.wall_time)
    with paths.atomic_open(path) as fh:
        torch.save(blob, fh)


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or that does not fit the ensemble (names the file)."""


CHECKPOINT_KEYS = ("model", "optimizer", "generators", "epoch", "alive", "diverged_epoch",
                   "history", "wall_time")


def brief(err: BaseException) -> str:
    """``Type: first line of the message`` of an exception, for one-line errors."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


def read_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """The blob written by :func:`save_checkpoint`; :class:`CheckpointError` naming ``path``
    when it is truncated, garbage or not a training state."""
    try:
        blob = torch.load(path, map_location=map_location, weights_only=False)
    except (OSError, EOFError, RuntimeError, ValueError, pickle.UnpicklingError, KeyError,
            TypeError, AttributeError, ImportError, IndexError) as err:
        raise CheckpointError(f"checkpoint {path} is unreadable ({brief(err)})") from err
    missing = [k for k in CHECKPOINT_KEYS if k not in blob] if isinstance(blob, dict) \
        else list(CHECKPOINT_KEYS)
    if missing:
        raise CheckpointError(f"checkpoint {path} is not a training state (lacks "
                              f"{', '.join(missing)})")
    return blob


def load_checkpoint(state: TrainState, path: str | Path) -> TrainState:
    """Restore a state written by :func:`save_checkpoint` (on any device) into ``state`` (same
    configuration, on any device); :class:`CheckpointError` naming ``path`` when it is
    unreadable or does not fit.

    The file is read on the CPU and each part moved explicitly where it belongs: parameters
    copied into the model's own tensors, Adam's state to each parameter's device and dtype,
    the bookkeeping to the devices of ``state``'s tensors, and the generators' states kept
    as CPU ByteTensors (``torch.Generator.set_state`` takes nothing else; a checkpoint read
    straight onto a GPU could not be resumed)."""
    blob = read_checkpoint(path, map_location="cpu")
    try:
        state.model.load_state_dict(blob["model"])
        state.optimizer.load_state_dict(blob["optimizer"])
        for g, s in zip(state.generators, blob["generators"], strict=True):
            g.set_state(torch.as_tensor(s).to(device="cpu", dtype=torch.uint8).contiguous())
        state.epoch = int(blob["epoch"])
        state.alive = torch.as_tensor(blob["alive"]).to(state.alive.device)
        state.diverged_epoch = torch.as_tensor(blob["diverged_epoch"]).to(
            state.diverged_epoch.device)
        state.history = list(blob["history"])
        state.wall_time = float(blob["wall_time"])
    except (RuntimeError, ValueError, KeyError, TypeError, AttributeError, IndexError) as err:
        raise CheckpointError(f"checkpoint {path} does not fit this ensemble "
                              f"({brief(err)})") from err
    return state


def check_keep(epochs: Sequence[int], total: int) -> list[int]:
    """``epochs`` as a sorted list of distinct integers in 1..``total`` − 1 (the epochs at
    which a learning curve evaluates besides the last); ValueError otherwise."""
    if isinstance(epochs, str) or not isinstance(epochs, Sequence):
        raise ValueError(f"evaluation epochs must be a list of integers, got {epochs!r}")
    for e in epochs:
        if isinstance(e, bool) or not isinstance(e, int | np.integer) or not 0 < e < total:
            raise ValueError(f"evaluation epochs must be integers in 1..{total - 1} (before "
                             f"the last epoch, {total}), got {e!r}")
    if len(set(epochs)) != len(epochs):
        raise ValueError(f"evaluation epochs repeat: {list(epochs)}")
    return sorted(int(e) for e in epochs)


def snapshot_path(checkpoint: str | Path, epoch: int) -> Path:
    """Where :func:`train` keeps the checkpoint of ``epoch``: ``<name>.e<epoch>.pt`` beside
    ``checkpoint``."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(f"{checkpoint.stem}.e{epoch}{checkpoint.suffix}")


def load_state(path: str | Path, members: Sequence[MemberConfig], settings: TrainSettings,
               obs_dim: int, *, device: torch.device | str | None = None) -> TrainState:
    """The training state stored at ``path`` (a checkpoint or a kept snapshot) for this
    ensemble: :func:`new_state` then :func:`load_checkpoint`."""
    state = new_state(members, settings, obs_dim, device=device)
    return load_checkpoint(state, path)


def clock() -> float:
    """Seconds on the wall clock (``time.time``) that every time limit reads: training's wall
    time and the sweeps' deadlines (shared by worker processes). Tests replace it with a
    counter to stop after a known number of epochs, whatever the machine's speed."""
    return time.time()


def train(
    data: np.ndarray,
    members: Sequence[MemberConfig],
    settings: TrainSettings,
    *,
    device: torch.device | str | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 50,
    time_limit: float | None = None,
    progress: bool | Mapping[str, Any] = True,
    static: bool = False,
    keep_at: Sequence[int] = (),
) -> TrainState:
    """Train one ensemble (one member per entry of ``members``) on ``data`` (n, N).

    Every epoch draws ``batches_per_epoch`` batches of ``batch_size`` windows of length
    ``seq_len + 1`` per member (from the member's own generator). With ``checkpoint`` the full
    state is saved atomically every ``checkpoint_every`` epochs and at the end, and an existing
    checkpoint is resumed; ``time_limit`` (seconds) stops after the epoch that reaches it
    (then ``state.epoch < settings.epochs``). ``keep_at``: epochs at which a copy of the
    checkpoint is kept as :func:`snapshot_path` (learning curves evaluate them later; needs
    ``checkpoint``). Device: CUDA when available unless given.
    ``progress``: a tqdm bar of the epochs (True), none (False), or a bar with these tqdm
    options (e.g. ``position`` and ``desc`` for one of several processes' bars).

    ``static`` (fused engine only): every update runs on fixed input buffers with a
    mask-independent operation sequence (:class:`~chaosrnn_utils.fused.StaticPlan`), with all
    bookkeeping on the device; on a GPU the whole update (forward, backward, clipping,
    :class:`Adam`) is then captured once as a CUDA graph and replayed. Same numbers as the
    default path (tested on the CPU).
    """
    x_all = check_series(data, name="data")
    settings.validate(x_all.shape[0])
    members = [m.validate(settings.seq_len) for m in members]
    if not members:
        raise ValueError("need at least one member")
    keep_at = set(check_keep(keep_at, settings.epochs))
    if keep_at and checkpoint is None:
        raise ValueError("keep_at needs a checkpoint path (snapshots are kept beside it)")
    state = _start(members, settings, x_all.shape[1], device, static, checkpoint)
    model, dev, dtype = state.model, state.model.device, state.model.dtype
    x_dev = torch.as_tensor(x_all, dtype=dtype, device=dev)
    E, T, nb = len(members), settings.seq_len, settings.batch_size
    n_starts = x_all.shape[0] - T  # window starts 0..n − T − 1
    windows = all_windows(x_dev, T)
    codes, alpha = (c.to(dev) for c in member_codes(members))
    start_time = clock() - state.wall_time
    bar, show = _epoch_bar(progress, settings, E, state.epoch)
    epoch_t = torch.zeros((), dtype=torch.long, device=dev)  # the epoch, on the device
    epoch_loss = torch.zeros(E, dtype=dtype, device=dev)
    update = partial(_update, state, list(model.parameters()),
                     *_clip_thresholds(members, dtype, dev), epoch_t, epoch_loss)
    runner = None
    for epoch in bar:
        epoch_loss.zero_()
        epoch_t.fill_(epoch)
        if static:
            starts_ep, periods_ep = _epoch_draws(members, settings, epoch, state.generators,
                                                 n_starts, dev)
        for k in range(settings.batches_per_epoch):
            if static:
                x = batch_windows(windows, starts_ep[k])
                masks = periodic_masks(codes, alpha, periods_ep[k], T)
                if runner is None:
                    runner = _StaticRunner(update, model, x, masks)
                else:
                    runner(x, masks)
                continue
            starts = _draw_starts(state.generators, n_starts, nb)
            masks = schedule_masks(members, T, epoch, settings.epochs, state.generators)
            x = batch_windows(windows, starts.to(dev))  # (E, B, T+1, N)
            update(x, partial(training_predictions, model, masks=masks, engine=settings.engine))
        state.history.append((epoch_loss / settings.batches_per_epoch).cpu().numpy())
        state.epoch = epoch + 1
        state.wall_time = clock() - start_time
        if show:
            alive_n = int(state.alive.sum())
            bar.set_postfix(loss=f"{np.nanmean(state.history[-1]):.4g}", alive=f"{alive_n}/{E}")
        out_of_time = time_limit is not None and state.wall_time >= time_limit
        _save_due(state, checkpoint, checkpoint_every, settings.epochs, out_of_time, keep_at)
        if out_of_time:
            break
    bar.close()
    return state


def _start(members: Sequence[MemberConfig], settings: TrainSettings, obs_dim: int,
           device: torch.device | str | None, static: bool, checkpoint: str | Path | None
           ) -> TrainState:
    """:func:`train`'s state: new, or resumed from ``checkpoint`` when it exists. Device: CUDA
    when available unless given."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    state = new_state(members, settings, obs_dim, device=device)
    if static and not (settings.engine == "fused" and fused.supports(state.model)):
        raise ValueError(f"static=True needs the fused engine and one of "
                         f"{', '.join(c.__name__ for c in fused.FUSED_MODELS)}")
    if checkpoint is not None and Path(checkpoint).exists():
        load_checkpoint(state, checkpoint)
    return state


def _epoch_bar(progress: bool | Mapping[str, Any], settings: TrainSettings, n_members: int,
               first_epoch: int) -> tuple[tqdm, bool]:
    """(tqdm bar over the epochs left, whether it shows) for :func:`train`'s ``progress``."""
    options = {"desc": f"{settings.model} ×{n_members}", "leave": False,
               **(progress if isinstance(progress, Mapping) else {})}
    show = isinstance(progress, Mapping) or bool(progress)
    bar = tqdm(range(first_epoch, settings.epochs), initial=first_epoch, total=settings.epochs,
               disable=not show, **options)
    return bar, show


def _clip_thresholds(members: Sequence[MemberConfig], dtype: torch.dtype, device: torch.device
                     ) -> tuple[Tensor, Tensor]:
    """Per-member (clip_norm, clip_value), each (E,), inf where a member does not clip."""
    inf = torch.tensor(math.inf, dtype=dtype, device=device)

    def per_member(values: list[float | None]) -> Tensor:
        return torch.stack([inf if v is None else torch.tensor(v, dtype=dtype, device=device)
                            for v in values])

    return (per_member([m.clip_norm for m in members]),
            per_member([m.clip_value for m in members]))


def all_windows(x: Tensor, T: int) -> Tensor:
    """Every window of T + 1 consecutive rows of the series ``x`` (n, N), as a view
    (n − T, T + 1, N) whose row k is x_k..x_{k+T} (no copy)."""
    x = x.contiguous()
    n, N = x.shape
    if n <= T:
        raise ValueError(f"a series of {n} steps has no window of {T + 1}")
    return x.as_strided((n - T, T + 1, N), (N, N, 1))


def batch_windows(windows: Tensor, starts: Tensor) -> Tensor:
    """The windows starting at ``starts`` (E, B): (E, B, T + 1, N), whole windows copied by
    one ``index_select`` (measured 0.06 ms against 1.8 ms for an element-wise gather of
    50 × 32 windows of 201 × 3, one thread)."""
    return windows.index_select(0, starts.reshape(-1)).view(*starts.shape, *windows.shape[1:])


def _draw_starts(generators: Sequence[torch.Generator], n_starts: int, nb: int) -> Tensor:
    """One batch's window starts (E, B): ``nb`` draws in 0..n_starts − 1 per member, each from
    its own generator."""
    return torch.stack([torch.randint(0, n_starts, (nb,), generator=g) for g in generators])


def _epoch_draws(members: Sequence[MemberConfig], settings: TrainSettings, epoch: int,
                 generators: Sequence[torch.Generator], n_starts: int, device: torch.device
                 ) -> tuple[Tensor, Tensor]:
    """The static path's random numbers of a whole epoch, drawn in the order of the default
    path (window starts, then τ, per batch: the same numbers) and copied to the device at
    once: window starts (b, E, B) and mask periods (b, E); windows and masks are then built
    on the device."""
    starts, periods = [], []
    for _ in range(settings.batches_per_epoch):
        starts.append(_draw_starts(generators, n_starts, settings.batch_size))
        periods.append(batch_periods(members, epoch, settings.epochs, generators))
    both = [torch.stack(starts), torch.stack(periods)]
    if device.type == "cuda":
        both = [b.pin_memory() for b in both]
    return tuple(b.to(device, non_blocking=True) for b in both)


def _update(state: TrainState, params: list[Tensor], clip_norm: Tensor, clip_value: Tensor,
            epoch_t: Tensor, epoch_loss: Tensor, x: Tensor, predict: Any) -> None:
    """One update of every live member on windows ``x`` (``predict(x)`` gives (x̂, target)):
    loss, backward, per-member clipping, divergence check (a member whose loss or gradient
    norm is not finite is frozen, its epoch recorded), Adam, and the epoch's loss sum; all
    bookkeeping in place on device tensors (no host sync)."""
    pred, target = predict(x)
    loss = member_mse(pred, target)  # (E,)
    alive = state.alive
    state.optimizer.zero_grad(set_to_none=False)
    torch.where(alive, loss, torch.zeros_like(loss)).sum().backward()
    grads = [p.grad for p in params]
    norm = _clip_(grads, clip_norm, clip_value)
    ok = torch.isfinite(loss) & torch.isfinite(norm)
    state.diverged_epoch.copy_(torch.where(alive & ~ok, epoch_t, state.diverged_epoch))
    alive.logical_and_(ok)
    keep = [p.detach().clone() for p in params]
    for g in grads:
        g.copy_(torch.where(_per_member(alive, g), g, torch.zeros_like(g)))
    state.optimizer.step()
    with torch.no_grad():
        for p, k in zip(params, keep, strict=True):
            p.copy_(torch.where(_per_member(alive, p), p, k))
    epoch_loss.add_(torch.where(alive, loss.detach(), torch.full_like(loss, math.nan)))


def _save_due(state: TrainState, checkpoint: str | Path | None, every: int, total: int,
              out_of_time: bool, keep_at: set[int]) -> None:
    """After an epoch: the checkpoint every ``every`` epochs, at the last and when out of
    time; a kept snapshot at the epochs of ``keep_at``."""
    if checkpoint is not None and (state.epoch % every == 0 or state.epoch == total
                                   or out_of_time):
        save_checkpoint(state, checkpoint)
    if state.epoch in keep_at:
        save_checkpoint(state, snapshot_path(checkpoint, state.epoch))


class _StaticRunner:
    """Updates on fixed buffers (``train(static=True)``): built on the first batch, whose
    update it runs; on CUDA that update is the warm-up on a side stream, after which one
    update is captured as a graph (capturing runs nothing) and every later batch is copied
    into the buffers and replayed."""

    def __init__(self, update: Any, model: EnsembleRNN, x: Tensor,
                 masks: dict[str, Tensor]) -> None:
        self.x = x.clone()
        self.plan = fused.StaticPlan(masks, dtype=x.dtype, device=x.device)
        target = self.x[:, :, 1:].transpose(1, 2)

        def predict(xb: Tensor) -> tuple[Tensor, Tensor]:
            return triton_engine.predictions(model, xb, self.plan.plan), target

        self.step = partial(update, self.x, predict)
        self.graph = None
        if x.device.type != "cuda":
            self.step()
            return
        # solve_ex through cuSOLVER (insurance: the MAGMA path may synchronise in capture)
        torch.backends.cuda.preferred_linalg_library("cusolver")
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            self.step()  # the first batch's update, and the warm-up of the capture
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, stream=stream):  # captured on the warm-up stream
            self.step()

    def __call__(self, x: Tensor, masks: dict[str, Tensor]) -> None:
        self.x.copy_(x)
        self.plan.load(masks)
        if self.graph is None:
            self.step()
        else:
            self.graph.replay()


def member_summary(state: TrainState, members: Sequence[MemberConfig]) -> list[dict[str, Any]]:
    """One row per member: its configuration, final loss, divergence status and epoch."""
    last = state.history[-1] if state.history else np.full(len(members), np.nan)
    div = state.diverged_epoch.cpu().numpy()
    return [dict(asdict(m), final_loss=float(last[e]), diverged=bool(div[e] >= 0),
                 diverged_epoch=int(div[e]) if div[e] >= 0 else None,
                 epochs_done=state.epoch) for e, m in enumerate(members)]
