"""Sparse teacher forcing: the latent state is replaced by the data-inferred state
z_t ← B⁺ x_t every τ steps (t = 0, τ, 2τ, …), so no Jacobian product in the gradient is longer
than τ factors: ||∂z_t/∂z_r|| ≲ C e^{λ_max τ} whatever the sequence length.

This module owns the schedule: what turns a member's configuration into the steps at which
its training rollout is forced, restarted or cut. τ changes form on its way down:

1. an ``int`` (a grid value of a sweep, an argument of :func:`forcing_mask`), checked by
   :func:`check_tau` (an integer in 1..T, T the sequence length);
2. a field of :class:`MemberConfig` (``tau``, with ``tau_spread`` and ``tau_start``; the
   other periods are ``truncation`` and ``window``), validated by :meth:`MemberConfig.validate`
   before any training (:func:`~chaosrnn_utils.training.train`,
   :meth:`~chaosrnn_utils.sweeps.SweepSpec.validate`);
3. one batch's period: :func:`tau_at` draws τ for an epoch (annealed from ``tau_start``,
   spread uniformly by ``tau_spread`` from the member's generator); :func:`batch_periods`
   gives every member's period of one batch, (E,) long (the static training path, which
   builds its masks on the device);
4. per-member step masks ``force``/``zero``/``cut`` (E, T) bool and ``alpha`` (E,), with
   force_t = (t ≡ 0 mod τ) (:func:`forcing_mask`, the one rule): :func:`schedule_masks` on the
   host (from the configurations), :func:`periodic_masks` on the device (from
   :func:`member_codes` and the periods; the same masks). They are consumed by
   :func:`~chaosrnn_utils.training.training_rollout` (the autograd engine) and by
5. the fused engine's per-step mixing coefficients s̃_t = a_t s_t + b_t B⁺x_t, with the
   backward's copies zeroed at cut steps (:func:`~chaosrnn_utils.fused.mixing_coefficients`),
   and the step kinds (``keep``/``infer``/``mix``) of a :class:`~chaosrnn_utils.fused.Plan`
   (:func:`~chaosrnn_utils.fused.make_plan`), consumed by :mod:`.fused` and, as one
   (4, T, E) block, by the Triton kernels of :mod:`.triton_engine`.

:func:`forced_rollout` is the plain form (one τ for all members) on a model's own rollout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .validate import check_positive_int

MODES = ("sparse", "teacher", "bptt", "tbptt", "window", "gtf")


def check_tau(tau: int | None, n_steps: int, name: str = "τ", *, required: bool = False
              ) -> int | None:
    """Validate an interval (a learning interval τ, a truncation or window length): an integer
    (Python or numpy, not bool) in 1..n_steps, or None (no forcing) unless ``required``.
    Returns it as an int; ValueError naming ``name`` otherwise."""
    if tau is None and not required:
        return None
    bad = ValueError(f"{name} must be an integer in 1..{n_steps} (the sequence length), "
                     f"got {tau!r}")
    try:
        value = check_positive_int(tau, name)
    except ValueError:
        raise bad from None
    if value > n_steps:
        raise bad
    return value


def forcing_mask(n_steps: int, tau: int | None, *, device: torch.device | str | None = None
                 ) -> Tensor:
    """Bool mask (n_steps,): True at the forcing times t ≡ 0 (mod τ), t = 0..n_steps−1;
    all False for ``tau=None`` (free run, plain BPTT)."""
    tau = check_tau(tau, n_steps)
    mask = torch.zeros(n_steps, dtype=torch.bool, device=device)
    if tau is not None:
        mask[::tau] = True
    return mask


@dataclass(frozen=True)
class MemberConfig:
    """What may differ between the members of one ensemble.

    mode: ``sparse`` (force every ``tau`` steps), ``teacher`` (τ = 1), ``bptt`` (free run from
    the inferred first state), ``tbptt`` (free run, gradient cut every ``truncation`` steps),
    ``window`` (restart from zeros every ``window`` steps, no forcing) or ``gtf``
    (state α B⁺x + (1 − α) z at every step). ``tau_spread`` draws τ uniformly from
    [τ − spread, τ + spread] per batch; ``tau_start`` anneals τ linearly from ``tau_start``
    (first epoch) to ``tau`` (last epoch). ``clip_norm``/``clip_value`` clip this member's
    gradient by its total norm / elementwise (None: no clipping).
    """

    seed: int = 0
    mode: str = "sparse"
    tau: int | None = 30
    tau_spread: int = 0
    tau_start: int | None = None
    truncation: int | None = None
    window: int | None = None
    alpha: float = 0.0
    clip_norm: float | None = None
    clip_value: float | None = None

    def validate(self, seq_len: int) -> MemberConfig:
        """Raise a clear error for an inconsistent configuration (before any training)."""
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; modes: {', '.join(MODES)}")

        def interval(value: int | None, name: str) -> None:
            check_tau(value, seq_len, f"{self.mode}: {name}", required=True)

        if self.mode == "sparse":
            interval(self.tau, "tau")
            if self.tau_spread:
                interval(self.tau - self.tau_spread, "tau - tau_spread")
                interval(self.tau + self.tau_spread, "tau + tau_spread")
            if self.tau_start is not None:
                interval(self.tau_start, "tau_start")
        elif self.mode == "tbptt":
            interval(self.truncation, "truncation")
        elif self.mode == "window":
            interval(self.window, "window")
        elif self.mode == "gtf" and not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"gtf: alpha must be in [0, 1], got {self.alpha}")
        for name in ("clip_norm", "clip_value"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise ValueError(f"{name} must be positive or None, got {v}")
        return self


def tau_at(m: MemberConfig, epoch: int, epochs: int, g: torch.Generator) -> int:
    """The τ of one batch of epoch ``epoch`` (of ``epochs``) of a ``sparse`` member: τ₀ =
    round(τ_start + (τ − τ_start) · epoch/(epochs − 1)) (τ without ``tau_start``), then drawn
    uniformly from [τ₀ − spread, τ₀ + spread] with generator ``g`` when ``tau_spread`` > 0
    (one draw; no draw otherwise)."""
    tau = m.tau
    if m.tau_start is not None:
        frac = epoch / max(1, epochs - 1)
        tau = int(round(m.tau_start + (m.tau - m.tau_start) * frac))
    if m.tau_spread:
        tau = int(torch.randint(tau - m.tau_spread, tau + m.tau_spread + 1, (1,), generator=g))
    return tau


def batch_periods(members: Sequence[MemberConfig], epoch: int, epochs: int,
                  generators: Sequence[torch.Generator]) -> Tensor:
    """Per member (E,) long: the period of one batch's masks (``sparse``: τ, ``teacher``: 1,
    ``window``: the window, ``tbptt``: the truncation, else 1), drawing a random τ from each
    member's generator (:func:`tau_at`: the same numbers, and the same generator states after,
    as :func:`schedule_masks`)."""
    out = []
    for m, g in zip(members, generators, strict=True):
        if m.mode in ("sparse", "teacher"):
            out.append(1 if m.mode == "teacher" else tau_at(m, epoch, epochs, g))
        else:
            out.append({"window": m.window, "tbptt": m.truncation}.get(m.mode, 1))
    return torch.tensor(out, dtype=torch.long)


def schedule_masks(members: Sequence[MemberConfig], seq_len: int, epoch: int, epochs: int,
                   generators: Sequence[torch.Generator]) -> dict[str, Tensor]:
    """Per-member step masks for one batch, built on the host: ``force`` (t ≡ 0 mod τ for
    ``sparse``/``teacher``), ``zero`` (t ≡ 0 mod ``window``), ``cut`` (t ≡ 0 mod
    ``truncation``, t > 0), each (E, T) bool and :func:`forcing_mask` of the member's period,
    and ``alpha`` (E,) (``gtf``). Draws the random τ (if any) from each member's generator."""
    E, T = len(members), seq_len
    force = torch.zeros(E, T, dtype=torch.bool)
    zero = torch.zeros(E, T, dtype=torch.bool)
    cut = torch.zeros(E, T, dtype=torch.bool)
    alpha = torch.zeros(E)
    for e, (m, g) in enumerate(zip(members, generators, strict=True)):
        if m.mode in ("sparse", "teacher"):
            force[e] = forcing_mask(T, 1 if m.mode == "teacher" else tau_at(m, epoch, epochs, g))
        elif m.mode == "window":
            zero[e] = forcing_mask(T, m.window)
        elif m.mode == "tbptt":
            cut[e, 1:] = forcing_mask(T, m.truncation)[1:]
        elif m.mode == "gtf":
            alpha[e] = m.alpha
    return dict(force=force, zero=zero, cut=cut, alpha=alpha)


def member_codes(members: Sequence[MemberConfig]) -> tuple[Tensor, Tensor]:
    """(mode index into :data:`MODES` (E,) long, α (E,) float32: ``gtf`` members' α, else 0),
    what :func:`periodic_masks` needs besides the periods."""
    codes = torch.tensor([MODES.index(m.mode) for m in members], dtype=torch.long)
    alpha = torch.tensor([m.alpha if m.mode == "gtf" else 0.0 for m in members],
                         dtype=torch.float32)
    return codes, alpha


def periodic_masks(codes: Tensor, alpha: Tensor, periods: Tensor, seq_len: int
                   ) -> dict[str, Tensor]:
    """:func:`schedule_masks` from the periods of :func:`batch_periods`, built on their
    device without a host loop (one batch of a captured update): with k ≡ t mod period,
    force = (k = 0) for sparse/teacher, zero = (k = 0) for window, cut = (k = 0, t > 0)
    for tbptt."""
    t = torch.arange(seq_len, device=periods.device)
    hit = (t % periods[:, None]) == 0

    def mode(*names: str) -> Tensor:
        return sum((codes == MODES.index(n)).long() for n in names).bool()[:, None]

    return dict(force=hit & mode("sparse", "teacher"), zero=hit & mode("window"),
                cut=hit & mode("tbptt") & (t > 0), alpha=alpha)


def forced_rollout(model, x: Tensor, tau: int | None) -> Tensor:
    """States s_1..s_T of ``model`` on data x_0..x_T with sparse teacher forcing.

    ``x`` has shape (E or 1, B, T+1, N). s_0 = B⁺x_0; at every forcing time t the state is
    replaced by B⁺x_t before stepping (gradients flow into B through B⁺). Returns (E, B, T, S).
    """
    if x.ndim != 4:
        raise ValueError(f"x must be (E or 1, B, T+1, N), got shape {tuple(x.shape)}")
    n_steps = x.shape[2] - 1
    s0 = model.inferred_state(x[:, :, 0])
    if tau is None:
        return model.rollout(s0, n_steps)
    mask = forcing_mask(n_steps, tau, device=x.device)
    replace = model.inferred_state(x[:, :, :n_steps])
    return model.rollout(s0, n_steps, replace=replace, replace_mask=mask)
