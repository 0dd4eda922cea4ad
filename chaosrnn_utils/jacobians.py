"""Jacobian products along RNN orbits, RNN Lyapunov spectra and loss-gradient diagnostics.

For an RNN s_t = F_θ(s_{t−1}) with Jacobians J_t = ∂s_t/∂s_{t−1}, the loss gradient is

    ∂L_T/∂θ = ∂L_T/∂s_T · Σ_{r ≤ T} (∂s_T/∂s_r) ∂⁺s_r/∂θ,   ∂s_T/∂s_r = J_T ··· J_{r+1},

so its size follows the norms of Jacobian products, which grow like e^{λ_max (T−r)} on a chaotic
orbit (Theorem 2), decay on a stable fixed point or cycle (Theorem 1), and neither grow nor
decay exponentially when λ_max = 0 (Theorem 3). All functions work on ensembles: states
(E, B, S), Jacobians (E, B, S, S); use float64 for these studies.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from .lyapunov import qr_spectrum

Array = np.ndarray


def member_norms(tensors: Sequence[Tensor | None]) -> Tensor:
    """Per-member Euclidean norm over a list of ensemble tensors (each with leading dim E,
    ``None`` entries skipped): ||(t_1[e], t_2[e], …)||₂, shape (E,)."""
    return torch.sqrt(sum((t.reshape(t.shape[0], -1) ** 2).sum(1) for t in tensors
                          if t is not None))


@torch.no_grad()
def orbit(model, s0: Tensor, n_steps: int, *, n_transient: int = 0) -> Tensor:
    """Free orbit s_1..s_T (E, B, T, S) from s0 (E, B, S), after ``n_transient`` discarded steps."""
    if n_steps < 1 or n_transient < 0:
        raise ValueError(f"need n_steps >= 1 and n_transient >= 0, got {n_steps}, {n_transient}")
    s = s0
    for _ in range(n_transient):
        s = model.step(s)
    return model.rollout(s, n_steps)


@torch.no_grad()
def orbit_jacobians(model, s0: Tensor, n_steps: int) -> tuple[Tensor, Tensor]:
    """States s_0..s_{T−1} and Jacobians J_t = ∂s_t/∂s_{t−1} for t = 1..T, shapes
    (E, B, T, S) and (E, B, T, S, S): J_t is evaluated at s_{t−1}."""
    states = torch.cat([s0.unsqueeze(2), orbit(model, s0, n_steps - 1)], dim=2) if n_steps > 1 \
        else s0.unsqueeze(2)
    E, B, T, S = states.shape
    jac = model.jacobian(states.reshape(E, B * T, S)).reshape(E, B, T, S, S)
    return states, jac


def product_log_norms(jacobians: Tensor) -> Tensor:
    """log ||J_t J_{t−1} ··· J_1||₂ for every t = 1..T in one pass, shape (..., T).

    The running product is rescaled to unit spectral norm after every factor and the log of
    the scale accumulated, so products reaching 1e±300 and beyond neither over- nor underflow:
    P̃_t = J_t P̃_{t−1} / c_t, c_t = ||J_t P̃_{t−1}||₂, log||P_t|| = Σ_{k ≤ t} log c_k.
    ``jacobians`` has shape (..., T, S, S); products from a later start r are the same call on
    ``jacobians[..., r:, :, :]``.
    """
    if jacobians.ndim < 3 or jacobians.shape[-1] != jacobians.shape[-2]:
        raise ValueError(f"Jacobians must be (..., T, S, S), got shape {tuple(jacobians.shape)}")
    T, S = jacobians.shape[-3], jacobians.shape[-1]
    batch = jacobians.shape[:-3]
    P = torch.eye(S, dtype=jacobians.dtype, device=jacobians.device).expand(*batch, S, S)
    log_scale = torch.zeros(batch, dtype=jacobians.dtype, device=jacobians.device)
    out = torch.empty(*batch, T, dtype=jacobians.dtype, device=jacobians.device)
    for t in range(T):
        P = jacobians[..., t, :, :] @ P
        c = torch.linalg.matrix_norm(P, ord=2)
        log_scale = log_scale + torch.log(c)
        P = P / c.clamp_min(torch.finfo(P.dtype).tiny)[..., None, None]
        out[..., t] = log_scale
    return out


def _jacobian_stream(model, s0: Tensor, n_steps: int, chunk: int) -> Iterator[Array]:
    s = s0
    for start in range(0, n_steps, chunk):
        states, jac = orbit_jacobians(model, s, min(chunk, n_steps - start))
        s = model.step(states[:, :, -1])
        for t in range(jac.shape[2]):
            yield jac[:, :, t].double().cpu().numpy()


@torch.no_grad()
def rnn_lyapunov_spectrum(
    model, s0: Tensor, n_steps: int, *, n_align: int = 100, n_transient: int = 500,
    n_exponents: int | None = None, chunk: int = 1000, return_history: bool = False,
) -> Array | tuple[Array, Array]:
    """Lyapunov spectrum per step of each member and orbit, shape (E, B, k), by the same QR
    routine as for the benchmark systems (:func:`chaosrnn_utils.lyapunov.qr_spectrum`), on
    the orbit from ``s0`` after ``n_transient`` steps; the first ``n_align`` factors only
    align the frame. With ``return_history`` also the running estimates, (n_steps, E, B, k),
    for :func:`chaosrnn_utils.lyapunov.spectrum_standard_error`."""
    s = s0
    for _ in range(n_transient):
        s = model.step(s)
    jacs = _jacobian_stream(model, s, n_align + n_steps, chunk)
    return qr_spectrum(jacs, n_exponents=n_exponents, discard=n_align,
                       return_history=return_history)


def growth_epsilon(log_norms: Tensor | Array, T_lo: int, T_hi: int) -> Array:
    """The smallest ε with (1 − ε)^T ≤ ||P_T|| ≤ (1 + ε)^T for all T in [T_lo, T_hi], to first
    order in ε: ε(T_lo, T_hi) = max_{T_lo ≤ T ≤ T_hi} |ℓ_T| / T, ℓ_T = log ||P_T|| the
    ``log_norms`` of :func:`product_log_norms` (entry T − 1 is the product of T factors).
    Shape log_norms.shape[:-1]."""
    ln = np.asarray(log_norms, dtype=np.float64)
    if not 1 <= T_lo <= T_hi <= ln.shape[-1]:
        raise ValueError(f"need 1 <= T_lo <= T_hi <= {ln.shape[-1]}, got {T_lo}, {T_hi}")
    T = np.arange(T_lo, T_hi + 1)
    return np.max(np.abs(ln[..., T_lo - 1:T_hi]) / T, axis=-1)


def theorem3_check(log_norms: Tensor | Array, T0: int, *, ratio: float = 0.5,
                   eps_max: float = 0.01, atol: float = 1e-12) -> dict[str, float | bool]:
    """Theorem 3's bound on an orbit: log||∂z_T/∂z_1|| grows sub-linearly in T.

    With ε(a, b) from :func:`growth_epsilon` (maximum over orbits), ``eps_early`` =
    ε(T0, 2T0) and ``eps_late`` = ε(10T0, 20T0). The check ``holds`` iff
    eps_late ≤ max(ratio·eps_early, ``atol``) (the needed ε shrinks as T grows: ℓ_T bounded gives
    eps_late/eps_early ≈ 1/10, ℓ_T ~ c log T about (1/10)·log(20T0)/log(2T0), while
    ℓ_T ≈ λT with λ ≠ 0 gives ≈ 1; ``atol`` admits rounding noise, ℓ_T ≡ 0 for an isometry) and
    eps_late ≤ ``eps_max``. Also returned: ``growth`` =
    max|ℓ_T| over [10T0, 20T0] minus max|ℓ_T| over [T0, 2T0] (≈ 0 when ℓ is bounded, ≈ log 10
    per unit of c when ℓ ~ c log T, ≈ 18|λ|T0 when exponential). Needs 20·T0 log-norms.
    """
    ln = np.asarray(log_norms, dtype=np.float64).reshape(-1, np.shape(log_norms)[-1])
    early = float(growth_epsilon(ln, T0, 2 * T0).max())
    late = float(growth_epsilon(ln, 10 * T0, 20 * T0).max())
    growth = float(np.abs(ln[:, 10 * T0 - 1:20 * T0]).max() - np.abs(ln[:, T0 - 1:2 * T0]).max())
    holds = late <= max(ratio * early, atol) and late <= eps_max
    return dict(eps_early=early, eps_late=late, growth=growth, holds=bool(holds))


def loss_gradient_norms(
    model, s0: Tensor, targets: Tensor, lengths: Sequence[int]
) -> Array:
    """||∂L_T/∂θ||₂ over all parameters for each T in ``lengths``, where
    L_T = ||x_T − B s_T||² / N is the loss at step T of the free rollout from ``s0``.

    ``s0`` (E, B, S), ``targets`` (E or 1, B, T_max, N) with x_t = targets[..., t−1, :].
    Returns (len(lengths), E): one norm per member (the members are independent).
    """
    lengths = [int(t) for t in lengths]
    if not lengths or min(lengths) < 1 or max(lengths) > targets.shape[-2]:
        raise ValueError(f"lengths must lie in 1..{targets.shape[-2]}, got {lengths}")
    params = [p for p in model.parameters() if p.requires_grad]
    states = model.rollout(s0, max(lengths))
    norms = np.empty((len(lengths), states.shape[0]))
    for i, T in enumerate(lengths):
        err = targets[..., T - 1, :] - model.observe(states[:, :, T - 1])
        loss_per_member = (err**2).mean(-1).sum(-1)  # (E,)
        grads = torch.autograd.grad(loss_per_member.sum(), params, retain_graph=True,
                                    allow_unused=True)
        norms[i] = member_norms(grads).detach().cpu().numpy()
    return norms


def gradient_terms(model, s0: Tensor, target: Tensor, T: int) -> tuple[Array, list[Tensor]]:
    """Split ∂L_T/∂θ into its Jacobian-product terms.

    With the adjoints a_T = ∂L_T/∂s_T and a_{r−1} = a_r J_r (so a_r = ∂L_T/∂s_T · J_T···J_{r+1}),
    term_r = a_r · ∂⁺s_r/∂θ (the immediate derivative of step r at s_{r−1}). Returns the norm
    of every term, shape (T, E), and the summed gradient per parameter (equal to autograd's).
    ``target`` is x_T, shape (E or 1, B, N).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    with torch.no_grad():
        states = torch.cat([s0.unsqueeze(2), model.rollout(s0, T)], dim=2)  # s_0..s_T
    sT = states[:, :, T].clone().requires_grad_(True)
    loss = ((target - model.observe(sT)) ** 2).mean(-1).sum()
    a, *direct = torch.autograd.grad(loss, [sT, *params], allow_unused=True)  # B at step T
    total = [torch.zeros_like(p) if g is None else g.clone() for p, g in zip(params, direct,
                                                                              strict=True)]
    norms = np.empty((T, states.shape[0]))
    for r in range(T, 0, -1):
        prev = states[:, :, r - 1]
        out = model.step(prev)
        g = torch.autograd.grad(out, params, grad_outputs=a, allow_unused=True)
        for k, gk in enumerate(g):
            if gk is not None:
                total[k] += gk
        norms[r - 1] = member_norms(g).detach().cpu().numpy()
        with torch.no_grad():
            a = (a.unsqueeze(-2) @ model.jacobian(prev)).squeeze(-2)
    return norms, total
