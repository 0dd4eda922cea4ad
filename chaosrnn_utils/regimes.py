"""RNNs with known dynamical regimes, for the theorem notebooks and tests.

Each PLRNN constructor returns a :class:`Regime`: the PLRNN's parameters (A diagonal, W
off-diagonal, h, readout B), an initial state, and the exact Lyapunov exponents where a
closed form exists. In the positive orthant a PLRNN is linear, z ↦ (diag A + W) z + h, so any
matrix R = diag A + W can be realised there (A = diag R, W = R − diag R).

:func:`quasiperiodic_attracting_rnn` returns a :class:`TanhRegime` (same interface: ``model``,
``initial_state``, ``step``, ``latent_dim``): a tanh RNN past a Neimark–Sacker bifurcation,
whose attracting invariant circle carries quasi-periodic motion. :func:`rotation_number`,
:func:`nearest_rational` and :func:`curve_profile` check such an orbit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

Array = np.ndarray


class _OneMember:
    """What :class:`Regime` and :class:`TanhRegime` share: the size, the model built from the
    parameters (``MODEL``, ``PARAMETERS``: a :data:`~chaosrnn_utils.models.MODELS` name and
    the fields it takes), the initial state."""

    MODEL: str
    PARAMETERS: tuple[str, ...]

    @property
    def latent_dim(self) -> int:
        return self.h.size

    def model(self, *, obs_dim: int | None = None, dtype: torch.dtype = torch.float64):
        """The regime as a one-member model of :data:`MODEL`; the readout B observes the
        first ``obs_dim`` units (default all)."""
        from .models import MODELS

        M = self.latent_dim
        N = M if obs_dim is None else int(obs_dim)
        t = lambda a: torch.as_tensor(a, dtype=dtype).unsqueeze(0)  # noqa: E731
        return MODELS[self.MODEL].from_parameters(
            **{k: t(getattr(self, k)) for k in self.PARAMETERS}, B=t(np.eye(N, M)))

    def initial_state(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """z0 as an ensemble state of shape (1, 1, M)."""
        return torch.as_tensor(self.z0, dtype=dtype).reshape(1, 1, -1)


@dataclass(frozen=True)
class Regime(_OneMember):
    """Parameters of a one-member PLRNN (numpy, float64) and what is known about its orbit."""

    MODEL = "plrnn"
    PARAMETERS = ("A", "W", "h")

    name: str
    A: Array  # (M,)
    W: Array  # (M, M), zero diagonal
    h: Array  # (M,)
    z0: Array  # (M,) initial state
    exact_exponents: Array | None  # per step, descending, when known in closed form
    note: str

    def step(self, z: Array) -> Array:
        """z ↦ A z + W relu(z) + h (numpy reference of the PLRNN step)."""
        return self.A * z + self.W @ np.maximum(z, 0.0) + self.h


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
# seed 149 gives λ_max ≈ 0.080 per step (the paper's Lorenz-trained PLRNN: paper.json,
# theorems), with a small orbit-to-orbit spread of the 1 000-step growth rate (std 0.004 over
# 64 orbits; seed 299, closer in λ_max, has intermittent laminar phases). chaotic_plrnn()
# rebuilds it from the recipe; the tests re-verify λ_max > 0 by QR.


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


@dataclass(frozen=True)
class TanhRegime(_OneMember):
    """Parameters of a one-member tanh RNN z ↦ tanh(W z + h) (numpy, float64) and what is
    known about its orbit; the same interface as :class:`Regime`."""

    MODEL = "rnn"
    PARAMETERS = ("W", "h")

    name: str
    W: Array  # (M, M)
    h: Array  # (M,)
    z0: Array  # (M,) initial state
    exact_exponents: Array | None  # per step, descending, when known in closed form
    note: str

    def step(self, z: Array) -> Array:
        """z ↦ tanh(W z + h) (numpy reference of the TanhRNN step)."""
        return np.tanh(self.W @ z + self.h)


GOLDEN_ANGLE = 2 * np.pi * (3 - np.sqrt(5)) / 2
"""2π(1 − 1/φ) ≈ 2.39996 rad: the rotation by the golden mean, the most irrational angle."""


def quasiperiodic_attracting_rnn(*, gain: float = 1.2, angle: float = GOLDEN_ANGLE) -> TanhRegime:
    """An attracting invariant circle with quasi-periodic motion: the 2-D tanh RNN

        z ↦ tanh(r·R(θ) z),   R(θ) = [[cos θ, −sin θ], [sin θ, cos θ]],   h = 0.

    z = 0 is a fixed point with Jacobian r·R(θ), eigenvalues r·e^{±iθ}: for r < 1 it is a
    stable focus, at r = 1 the pair crosses the unit circle away from the strong resonances
    (θ ∉ {0, π/2, 2π/3, π}), a Neimark–Sacker bifurcation. Since tanh u = u − u³/3 + …
    saturates, the bifurcation is supercritical: for r > 1 the origin repels and an invariant
    closed curve around it attracts (transverse exponent λ₂ < 0, ≈ −2 ln r to leading order
    in r − 1 by the normal form; ≈ −0.39 for the defaults, by QR). Its radius is ≈ 0.735–0.783 for
    r = 1.2, not constant, since the componentwise tanh breaks the rotational symmetry down to
    rotations by π/2. θ is the golden angle 2π(1 − 1/φ), so the rotation number on the curve
    (≈ 0.38205 for the defaults, shifted from θ/2π = 0.381966 by the nonlinearity) lies
    between the Arnold tongues of the low-order resonances p/q, q ≤ 20 (nearest: 5/13 at
    ≈ 0.0026): the motion is quasi-periodic and λ₁ = 0 (a smooth circle map with irrational
    rotation number has no exponential stretching). No closed form for λ₂, so
    ``exact_exponents`` is None.

    Parameters: ``gain`` r (in (1, 1.5]; larger r moves the curve into the tanh saturation),
    ``angle`` θ in radians. Initial state (0.3, 0.1), inside the curve.
    """
    if not 1.0 < gain <= 1.5:
        raise ValueError(f"need gain in (1, 1.5] for an invariant circle, got {gain}")
    W = _rotation(angle, gain)
    return TanhRegime("quasi-periodic attractor", W, np.zeros(2), np.array([0.3, 0.1]), None,
                      f"tanh(r·R(θ) z), r = {gain}, θ = {angle:.5f}: attracting invariant circle")


def rotation_number(points: Array, centre: Array | None = None) -> float:
    """Mean angle advance per step / 2π of a planar orbit around ``centre`` (default 0):
    ρ = (ϑ_T − ϑ_1) / (2π (T − 1)) with ϑ_t the unwrapped polar angle of points[t] − centre,
    ``points`` (T, 2). Unwrapping assumes each step advances by less than π in absolute value
    (true for ρ in (−½, ½)); on an invariant circle ρ does not depend on the starting point."""
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2 or p.shape[0] < 2:
        raise ValueError(f"points must be (T >= 2, 2), got shape {p.shape}")
    if centre is not None:
        p = p - np.asarray(centre, dtype=np.float64)
    angle = np.unwrap(np.arctan2(p[:, 1], p[:, 0]))
    return float((angle[-1] - angle[0]) / (2 * np.pi * (p.shape[0] - 1)))


def nearest_rational(x: float, q_max: int = 20) -> tuple[int, int, float]:
    """The fraction p/q with 1 ≤ q ≤ ``q_max`` nearest to x: (p, q, |x − p/q|); ties go to
    the smallest q."""
    if q_max < 1:
        raise ValueError(f"need q_max >= 1, got {q_max}")
    best = (0, 1, np.inf)
    for q in range(1, q_max + 1):
        p = int(np.round(x * q))
        d = abs(x - p / q)
        if d < best[2] - 1e-15:
            best = (p, q, d)
    return best[0], best[1], float(best[2])


def curve_profile(points: Array, n_bins: int = 64, centre: Array | None = None
                  ) -> dict[str, Array | float]:
    """Whether a planar orbit lies on a closed curve r = R(ϑ) around ``centre``.

    Bins the polar angle ϑ into ``n_bins`` equal sectors and returns, per sector, the lowest
    and highest radius (``r_lo``, ``r_hi``, NaN where empty), ``spread`` = max over sectors of
    r_hi − r_lo (on a smooth curve ≈ |dR/dϑ|·2π/n_bins, on a 2-D blob or a spiral towards a
    point of order the radius itself), ``r_min`` = the smallest radius (away from 0: no
    approach to the fixed point) and ``max_gap`` = the largest angular gap between successive
    sorted angles times T / 2π (a few for an orbit filling the curve, as for an irrational
    rotation; ≈ T/q for a q-periodic orbit)."""
    p = np.asarray(points, dtype=np.float64)
    if centre is not None:
        p = p - np.asarray(centre, dtype=np.float64)
    theta = np.mod(np.arctan2(p[:, 1], p[:, 0]), 2 * np.pi)
    radius = np.hypot(p[:, 0], p[:, 1])
    k = np.minimum((theta / (2 * np.pi) * n_bins).astype(int), n_bins - 1)
    r_lo = np.full(n_bins, np.nan)
    r_hi = np.full(n_bins, np.nan)
    np.fmin.at(r_lo, k, radius)
    np.fmax.at(r_hi, k, radius)
    s = np.sort(theta)
    gaps = np.diff(np.r_[s, s[0] + 2 * np.pi])
    return dict(r_lo=r_lo, r_hi=r_hi, spread=float(np.nanmax(r_hi - r_lo)),
                r_min=float(radius.min()), max_gap=float(gaps.max() * p.shape[0] / (2 * np.pi)))


REGIMES = {"fixed_point": fixed_point_plrnn, "two_cycle": two_cycle_plrnn,
           "quasiperiodic": quasiperiodic_attracting_rnn, "chaos": chaotic_plrnn}
"""One constructor per regime of Theorems 1–3; "quasiperiodic" is the attracting invariant
circle (:func:`quasiperiodic_attracting_rnn`); the neutral linear centre
:func:`quasiperiodic_plrnn` stays available by name."""
