"""Sparse teacher forcing: the latent state is replaced by the data-inferred state
z_t ← B⁺ x_t every τ steps (t = 0, τ, 2τ, …), so no Jacobian product in the gradient is longer
than τ factors: ||∂z_t/∂z_r|| ≲ C e^{λ_max τ} whatever the sequence length.
"""

from __future__ import annotations

import torch
from torch import Tensor


def check_tau(tau: int | None, n_steps: int) -> int | None:
    """Validate a learning interval: an integer in 1..n_steps, or None (no forcing)."""
    if tau is None:
        return None
    if isinstance(tau, bool) or int(tau) != tau or not 1 <= tau <= n_steps:
        raise ValueError(f"τ must be an integer in 1..{n_steps} (the sequence length), got {tau}")
    return int(tau)


def forcing_mask(n_steps: int, tau: int | None, *, device: torch.device | str | None = None
                 ) -> Tensor:
    """Bool mask (n_steps,): True at the forcing times t ≡ 0 (mod τ), t = 0..n_steps−1;
    all False for ``tau=None`` (free run, plain BPTT)."""
    tau = check_tau(tau, n_steps)
    mask = torch.zeros(n_steps, dtype=torch.bool, device=device)
    if tau is not None:
        mask[::tau] = True
    return mask


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
