"""PLRNNs with known dynamical regimes, for the theorem notebooks and tests.

Each constructor returns a :class:`Regime`: the PLRNN's parameters (A diagonal, W
off-diagonal, h, readout B), an initial state, and the exact Lyapunov exponents where a
closed form exists. In the positive orthant a PLRNN is linear, z ↦ (diag A + W) z + h, so any
matrix R = diag A + W can be realised there (A = diag R, W = R − diag R).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

Array = np.ndarray


@dataclass(frozen=True)
class Regime:
    """Parameters of a one-member PLRNN (numpy, float64) and what is known about its orbit."""

    name: str
    A: Array  # (M,)
    W: Array  # (M, M), zero diagonal
    h: Array  # (M,)
    z0: Array  # (M,) initial state
    exact_exponents: Array | None  # per step, descending, when known in closed form
    note: str

    @property
    def latent_dim(self) -> int:
        return self.A.size

    def step(self, z: Array) -> Array:
        """z ↦ A z + W relu(z) + h (numpy reference of the PLRNN step)."""
        return self.A * z + self.W @ np.maximum(z, 0.0) + self.h

    def model(self, *, obs_dim: int | None = None, dtype: torch.dtype = torch.float64):
        """The regime as a one-member :class:`chaosrnn_utils.models.PLRNN`; the readout B
        observes the first ``obs_dim`` units (default all)."""
        from .models import PLRNN

        M = self.latent_dim
        N = M if obs_dim is None else int(obs_dim)
        B = np.eye(N, M)
        t = lambda a: torch.as_tensor(a, dtype=dtype).unsqueeze(0)  # noqa: E731
        return PLRNN.from_parameters(A=t(self.A), W=t(self.W), h=t(self.h), B=t(B))

    def initial_state(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """z0 as an ensemble state of shape (1, 1, M)."""
        return torch.as_tensor(self.z0, dtype=dtype).reshape(1, 1, -1)


def _rotation(angle: float, radius: float) -> Array:
    c, s = np.cos(angle), np.sin(angle)
    return radius * np.array([[c, -s], [s, c]])


def _linear_regime(name: str, R: Array, centre: float, z0_offset: Array, note: str) -> Regime:
    M = R.shape[0]
    z_star = np.full(M, centre)
    h = (np.eye(M) - R) @ z_star  # fixed point z* = (I − R)^{-1} h deep in the positive orthant
    W = R - np.diag(np.diag(R))
    lam = np.sort(np.log(np.abs(np.linalg.eigvals(R))))[::-1]
    return Regime(name, np.diag(R).copy(), W, h, z_star + z0_offset, lam, note)


def fixed_point_plrnn(latent_dim: int = 6, *, radius: float = 0.85, angle: float = 0.7,
                      contraction: float = 0.3) -> Regime:
    """A stable spiral fixed point: R = radius·rot(angle) ⊕ contraction·I in the positive
    orthant, so λ_max = ln(radius) exactly (λ = ln radius twice, ln contraction M−2 times)."""
    if latent_dim < 2 or not 0 < radius < 1 or not 0 < contraction < 1:
        raise ValueError("need latent_dim >= 2 and radius, contraction in (0, 1)")
    R = np.zeros((latent_dim, latent_dim))
    R[:2, :2] = _rotation(angle, radius)
    R[2:, 2:] = contraction * np.eye(latent_dim - 2)
    offset = np.r_[1.0, -0.5, 0.5 * np.ones(latent_dim - 2)]
    return _linear_regime("fixed point", R, 5.0, offset, f"λ_max = ln {radius}")


def quasiperiodic_plrnn(latent_dim: int = 6, *, angle: float = 2 * np.pi * (np.sqrt(5) - 1) / 2,
                        contraction: float = 0.5) -> Regime:
    """An invariant circle with an irrational rotation number (the golden mean): R = rot(angle)
    ⊕ contraction·I in the positive orthant, λ = (0, 0, ln contraction, …) exactly."""
    if latent_dim < 2 or not 0 < contraction < 1:
        raise ValueError("need latent_dim >= 2 and contraction in (0, 1)")
    R = np.zeros((latent_dim, latent_dim))
    R[:2, :2] = _rotation(angle, 1.0)
    R[2:, 2:] = contraction * np.eye(latent_dim - 2)
    offset = np.r_[2.0, 0.0, 0.5 * np.ones(latent_dim - 2)]
    return _linear_regime("quasi-periodic", R, 5.0, offset, "λ_max = 0 (irrational rotation)")


def two_cycle_plrnn(latent_dim: int = 6, *, a: float = 0.1, w: float = -7.2, h: float = 1.0,
                    contraction: float = 0.3) -> Regime:
    """A stable 2-cycle across the ReLU kink.

    Units 1 and 2 are a symmetric pair, z_i ↦ a z_i + w relu(z_j) + h: on their diagonal the
    map is the 1-D piecewise-linear map with slopes s_L = a (z < 0) and s_R = a + w (z > 0),
    which for the defaults has the 2-cycle z⁻ = (s_R + 1) h / (1 − s_L s_R) < 0 < z⁺ =
    s_L z⁻ + h and only an unstable fixed point. Over one period the Jacobian product is
    a·[[a, w], [w, a]], with eigenvalues a(a − w) and a(a + w), so λ = ½ ln|a(a − w)| and
    ½ ln|a(a + w)| (≈ −0.157 and −0.171 for the defaults; the paper's illustration decays at
    ≈ −0.16); the other units contract with ln(contraction).
    """
    if latent_dim < 2:
        raise ValueError("need latent_dim >= 2")
    s_left, s_right = a, a + w
    z_neg = (s_right * h + h) / (1.0 - s_right * s_left)  # z⁻ = s_R z⁺ + h, z⁺ = s_L z⁻ + h
    z_pos = s_left * z_neg + h
    if not (z_neg < 0 < z_pos) or abs(s_left * s_right) >= 1:
        raise ValueError(f"no stable 2-cycle across the kink for a={a}, w={w}, h={h}")
    M = latent_dim
    A = np.r_[a, a, np.full(M - 2, contraction)]
    W = np.zeros((M, M))
    W[0, 1] = W[1, 0] = w
    hv = np.r_[h, h, np.zeros(M - 2)]
    z0 = np.r_[z_neg + 0.05, z_neg - 0.05, np.ones(M - 2)]
    lam = np.r_[0.5 * np.log(abs(a * (a - w))), 0.5 * np.log(abs(a * (a + w))),
                np.full(M - 2, np.log(contraction))]
    return Regime("2-cycle", A, W, hv, z0, np.sort(lam)[::-1],
                  f"cycle ({z_neg:.3f}, {z_pos:.3f}) on the diagonal of units 1-2")


# Found by a search over random PLRNNs (numpy default_rng(seed): A ~ U(0, 0.9),
# W ~ N(0, w_scale²/M) off-diagonal, h ~ N(0, 1); seeds 0-399, M in {8, 10}), kept if bounded
# with 0.07 < λ_max < 0.12 over 1 200 steps and re-checked over 20 000: M = 8, w_scale = 2,
# seed 149 gives λ_max ≈ 0.080 per step (the paper's Lorenz-trained PLRNN: ≈ 0.0765), with a
# small orbit-to-orbit spread of the 1 000-step growth rate (std 0.004 over 64 orbits; seed
# 299, closer in λ_max, has intermittent laminar phases). chaotic_plrnn() rebuilds it from
# the recipe; the tests re-verify λ_max > 0 by QR.


def chaotic_plrnn(latent_dim: int = 8, seed: int = 149, *, a_max: float = 0.9,
                  w_scale: float = 2.0) -> Regime:
    """A chaotic PLRNN from the search recipe above (defaults: the verified instance)."""
    rng = np.random.default_rng(seed)
    M = latent_dim
    A = rng.uniform(0, a_max, M)
    W = rng.normal(0, w_scale / np.sqrt(M), (M, M))
    np.fill_diagonal(W, 0.0)
    h = rng.normal(0, 1, M)
    z0 = 0.1 * np.random.default_rng(0).normal(size=M)
    return Regime("chaos", A, W, h, z0, None,
                  f"random PLRNN, M = {M}, seed {seed}: λ_max > 0 verified by QR")


REGIMES = {"fixed_point": fixed_point_plrnn, "two_cycle": two_cycle_plrnn,
           "quasiperiodic": quasiperiodic_plrnn, "chaos": chaotic_plrnn}
