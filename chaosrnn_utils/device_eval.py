"""Evaluation pieces that run where the model lives (a GPU included), batched over members.

``lambda_max``: the largest Lyapunov exponent of each member's own orbit by one
renormalised tangent vector, every step on the model's device (no Jacobian copied to the
host): with v₀ = e₁ and the Jacobians J_t = ∂s_t/∂s_{t−1} along the orbit,

    w_t = J_t v_{t−1},   c_t = ‖w_t‖₂,   v_t = w_t / c_t,   λ_max = (1/n) Σ_{t > n_align} log c_t,

which is the QR method with one column (:func:`chaosrnn_utils.lyapunov.qr_spectrum` with
``n_exponents=1``: the QR of one column is its normalisation), so it equals
``jacobians.rnn_lyapunov_spectrum(..., n_exponents=1)`` on the same orbit to rounding. The
orbit runs in the model's dtype, the tangent in float64. A member whose orbit leaves the
floats gets NaN; the others are unaffected.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .jacobians import orbit_jacobians


@torch.no_grad()
def lambda_max(model, s0: Tensor, n_steps: int, *, n_transient: int = 1000,
               n_align: int = 100, chunk: int = 1000) -> Tensor:
    """λ_max per step, shape (E, B), of the orbits from ``s0`` (E, B, S) after
    ``n_transient`` steps; the first ``n_align`` factors only align the tangent (as in
    :func:`~chaosrnn_utils.jacobians.rnn_lyapunov_spectrum`, whose orbit and chunks these
    are)."""
    if n_steps < 1 or n_transient < 0 or n_align < 0 or chunk < 1:
        raise ValueError(f"need n_steps ≥ 1, n_transient ≥ 0, n_align ≥ 0 and chunk ≥ 1, "
                         f"got {n_steps}, {n_transient}, {n_align}, {chunk}")
    s = s0
    for _ in range(n_transient):
        s = model.step(s)
    E, B, S = s.shape
    v = torch.zeros(E, B, S, 1, dtype=torch.float64, device=s.device)
    v[:, :, 0] = 1.0
    total = torch.zeros(E, B, dtype=torch.float64, device=s.device)
    steps = n_align + n_steps
    for start in range(0, steps, chunk):
        k = min(chunk, steps - start)
        states, jac = orbit_jacobians(model, s, k)
        s = model.step(states[:, :, -1])
        jac = jac.double()
        for t in range(k):
            w = jac[:, :, t] @ v
            c = torch.linalg.vector_norm(w, dim=(-2, -1))
            v = w / c[..., None, None]
            if start + t >= n_align:
                total += torch.log(c)
    return total / n_steps
