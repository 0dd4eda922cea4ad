"""Benchmark dynamical systems: vector fields, analytic Jacobians and a parameter table.

Every named system is one row of ``systems.json`` (package data): the equation family it
belongs to (``family``, a key of :data:`FAMILIES`; e.g. ``lorenz_paper`` and ``lorenz_standard``
are both ``lorenz63``), parameters, sampling step ``dt`` of its data set, transient, initial
condition, reference Lyapunov exponents (per time unit), the paper data set whose published
λ_max and τ_pred (``paper.json``) it carries, and a citation. The equations live here as
plain functions vectorised over leading dimensions: ``rhs(x, p)`` maps ``(..., d)`` to
``(..., d)`` and ``jac(x, p)`` maps ``(..., d)`` to ``(..., d, d)``.

Flows are integrated with :func:`scipy.integrate.solve_ivp`; the Mackey-Glass delay equation,
for which scipy has no solver, with the exponential integrator of :func:`integrate_mackey_glass`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from typing import Any

import numpy as np
from scipy.integrate import solve_ivp
from scipy.signal import lfilter

from . import paper

Array = np.ndarray

# ----------------------------------------------------------------------------- equations


def lorenz63_rhs(x: Array, p: dict) -> Array:
    """Lorenz-63: (σ(y−x), x(ρ−z) − y, xy − βz)."""
    X, Y, Z = x[..., 0], x[..., 1], x[..., 2]
    return np.stack(
        [p["sigma"] * (Y - X), X * (p["rho"] - Z) - Y, X * Y - p["beta"] * Z], axis=-1
    )


def lorenz63_jac(x: Array, p: dict) -> Array:
    """[[−σ, σ, 0], [ρ−z, −1, −x], [y, x, −β]]."""
    X, Y, Z = x[..., 0], x[..., 1], x[..., 2]
    J = np.zeros(x.shape + (3,))
    J[..., 0, 0], J[..., 0, 1] = -p["sigma"], p["sigma"]
    J[..., 1, 0], J[..., 1, 1], J[..., 1, 2] = p["rho"] - Z, -1.0, -X
    J[..., 2, 0], J[..., 2, 1], J[..., 2, 2] = Y, X, -p["beta"]
    return J


def roessler_rhs(x: Array, p: dict) -> Array:
    """Rössler: (−y − z, x + a y, b + z (x − c))."""
    X, Y, Z = x[..., 0], x[..., 1], x[..., 2]
    return np.stack([-Y - Z, X + p["a"] * Y, p["b"] + Z * (X - p["c"])], axis=-1)


def roessler_jac(x: Array, p: dict) -> Array:
    """[[0, −1, −1], [1, a, 0], [z, 0, x − c]]."""
    X, Z = x[..., 0], x[..., 2]
    J = np.zeros(x.shape + (3,))
    J[..., 0, 1], J[..., 0, 2] = -1.0, -1.0
    J[..., 1, 0], J[..., 1, 1] = 1.0, p["a"]
    J[..., 2, 0], J[..., 2, 2] = Z, X - p["c"]
    return J


def duffing_rhs(x: Array, p: dict) -> Array:
    """Forced Duffing made autonomous, state (x, v, φ):
    ẋ = v, v̇ = −δv − αx − βx³ + γ cos φ, φ̇ = ω."""
    X, V, P = x[..., 0], x[..., 1], x[..., 2]
    dv = -p["delta"] * V - p["alpha"] * X - p["beta"] * X**3 + p["gamma"] * np.cos(P)
    return np.stack([V, dv, np.full_like(X, p["omega"])], axis=-1)


def duffing_jac(x: Array, p: dict) -> Array:
    """[[0, 1, 0], [−α − 3βx², −δ, −γ sin φ], [0, 0, 0]]."""
    X, P = x[..., 0], x[..., 2]
    J = np.zeros(x.shape + (3,))
    J[..., 0, 1] = 1.0
    J[..., 1, 0] = -p["alpha"] - 3.0 * p["beta"] * X**2
    J[..., 1, 1] = -p["delta"]
    J[..., 1, 2] = -p["gamma"] * np.sin(P)
    return J


def duffing_observe(x: Array) -> Array:
    """Observation used by the paper: (x, ẋ, cos φ)."""
    return np.stack([x[..., 0], x[..., 1], np.cos(x[..., 2])], axis=-1)


def lorenz96_rhs(x: Array, p: dict) -> Array:
    """Lorenz-96: ẋ_i = (x_{i+1} − x_{i−2}) x_{i−1} − x_i + F (indices mod N)."""
    return (np.roll(x, -1, -1) - np.roll(x, 2, -1)) * np.roll(x, 1, -1) - x + p["F"]


def lorenz96_jac(x: Array, p: dict) -> Array:
    """∂ẋ_i/∂x_{i−1} = x_{i+1} − x_{i−2}, ∂ẋ_i/∂x_{i+1} = x_{i−1}, ∂ẋ_i/∂x_{i−2} = −x_{i−1},
    ∂ẋ_i/∂x_i = −1."""
    n = x.shape[-1]
    i = np.arange(n)
    J = np.zeros(x.shape + (n,))
    xm1, xp1, xm2 = np.roll(x, 1, -1), np.roll(x, -1, -1), np.roll(x, 2, -1)
    J[..., i, i] = -1.0
    J[..., i, (i - 1) % n] += xp1 - xm2
    J[..., i, (i + 1) % n] += xm1
    J[..., i, (i - 2) % n] += -xm1
    return J


def logistic_step(x: Array, p: dict) -> Array:
    """x ↦ r x (1 − x)."""
    return p["r"] * x * (1.0 - x)


def logistic_jac(x: Array, p: dict) -> Array:
    """r (1 − 2x)."""
    return (p["r"] * (1.0 - 2.0 * x))[..., None]


def henon_step(x: Array, p: dict) -> Array:
    """(x, y) ↦ (1 − a x² + y, b x)."""
    X, Y = x[..., 0], x[..., 1]
    return np.stack([1.0 - p["a"] * X**2 + Y, p["b"] * X], axis=-1)


def henon_jac(x: Array, p: dict) -> Array:
    """[[−2ax, 1], [b, 0]]."""
    X = x[..., 0]
    J = np.zeros(x.shape + (2,))
    J[..., 0, 0], J[..., 0, 1], J[..., 1, 0] = -2.0 * p["a"] * X, 1.0, p["b"]
    return J


def mackey_glass_rhs(x: Array, x_delayed: Array, p: dict) -> Array:
    """ẋ(t) = β x(t−τ) / (1 + x(t−τ)ⁿ) − γ x(t)."""
    return p["beta"] * x_delayed / (1.0 + x_delayed ** p["n"]) - p["gamma"] * x


def mackey_glass_jac(x: Array, x_delayed: Array, p: dict) -> Array:
    """Partial derivatives (∂ẋ/∂x(t), ∂ẋ/∂x(t−τ)) = (−γ, β (1 + (1−n) x_τⁿ) / (1 + x_τⁿ)²)."""
    u = x_delayed ** p["n"]
    d_delayed = p["beta"] * (1.0 + (1.0 - p["n"]) * u) / (1.0 + u) ** 2
    return np.stack([np.full_like(x, -p["gamma"]), d_delayed], axis=-1)


#: equation family → (f, ∂f/∂x): the vector field (flows), the map (maps) or the delay
#: equation's right-hand side (Mackey-Glass); several table systems share a family
FAMILIES: dict[str, tuple[Callable, Callable]] = {
    "lorenz63": (lorenz63_rhs, lorenz63_jac),
    "roessler": (roessler_rhs, roessler_jac),
    "duffing": (duffing_rhs, duffing_jac),
    "lorenz96": (lorenz96_rhs, lorenz96_jac),
    "logistic": (logistic_step, logistic_jac),
    "henon": (henon_step, henon_jac),
    "mackey_glass": (mackey_glass_rhs, mackey_glass_jac),
}
_DIMS = {"lorenz63": 3, "roessler": 3, "duffing": 3, "logistic": 1, "henon": 2, "mackey_glass": 1}
_OBSERVE = {"duffing": duffing_observe}

# ----------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class System:
    """One row of the system table, with its equations attached.

    For ``kind == "flow"`` ``rhs`` is the vector field f (ẋ = f(x)); for ``"map"`` it is the
    map itself (x_{t+1} = f(x_t)); ``jac`` is ∂f/∂x in both cases, both those of the system's
    equation ``family`` (:data:`FAMILIES`). ``dt`` is the sampling step of the data set;
    exponents in ``reference_exponents`` are per time unit.
    """

    name: str
    family: str
    kind: str
    params: dict[str, Any]
    dt: float
    transient: float
    x0: tuple[float, ...] | None
    standardize: str
    reference_exponents: tuple[float, ...] | None
    paper_lyapunov_per_step: float | None
    paper_tau_pred: float | None
    description: str
    citation: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        """State dimension d."""
        return int(self.params["N"]) if self.family == "lorenz96" else _DIMS[self.family]

    def rhs(self, x: Array) -> Array:
        """Vector field (flow) or map (map), vectorised over leading dimensions."""
        _check_state(self, x)
        return FAMILIES[self.family][0](np.asarray(x, dtype=float), self.params)

    def jac(self, x: Array) -> Array:
        """Analytic Jacobian ∂f/∂x, shape (..., d, d)."""
        _check_state(self, x)
        return FAMILIES[self.family][1](np.asarray(x, dtype=float), self.params)

    def observe(self, x: Array) -> Array:
        """Map states to the observed coordinates of the data set (identity except Duffing)."""
        return _OBSERVE.get(self.family, lambda s: s)(np.asarray(x, dtype=float))

    def initial_state(self) -> Array:
        """Initial condition from the table (Lorenz-96: F everywhere, first variable + 0.01)."""
        if self.x0 is not None:
            return np.asarray(self.x0, dtype=float)
        x = np.full(self.dim, float(self.params["F"]))
        x[0] += 0.01
        return x


def _check_state(system: System, x: Array) -> None:
    if system.kind == "dde":
        raise TypeError("Mackey-Glass needs the delayed state: use mackey_glass_rhs/_jac")
    if np.shape(x)[-1:] != (system.dim,):
        raise ValueError(
            f"{system.name}: state must have last dimension {system.dim}, got shape {np.shape(x)}"
        )


@cache
def _table() -> dict[str, dict]:
    return json.loads(files("chaosrnn_utils").joinpath("systems.json").read_text())


def system_names() -> list[str]:
    """Names of all systems in the table."""
    return list(_table())


def get_system(name: str, **overrides: Any) -> System:
    """Look a system up by name; keyword overrides replace parameters (e.g. ``N=40`` for
    Lorenz-96, ``rho=28``) or table fields (``dt``, ``transient``, ``x0``).

    >>> get_system("lorenz_standard").params["rho"]
    28.0
    """
    table = _table()
    if name not in table:
        raise KeyError(f"unknown system {name!r}; known: {', '.join(table)}")
    row = dict(table[name])
    params = dict(row.pop("params"))
    for key, value in overrides.items():
        if key in params:
            params[key] = type(params[key])(value) if key != "N" else int(value)
        elif key in ("dt", "transient", "x0"):
            row[key] = value
        else:
            raise KeyError(f"{name}: unknown parameter {key!r}; parameters: {', '.join(params)}")
    if float(row["dt"]) <= 0:
        raise ValueError(f"dt must be positive, got {row['dt']}")
    if float(row["transient"]) < 0:
        raise ValueError(f"transient must be non-negative, got {row['transient']}")
    ref = row.pop("reference_exponents")
    x0 = row.pop("x0")
    source = row.pop("paper_dataset")  # the paper's numbers for this system: paper.json
    numbers = paper.dataset(source) if source else {}
    return System(
        paper_lyapunov_per_step=numbers.get("lambda_max_per_step"),
        paper_tau_pred=numbers.get("tau_pred"),
        name=name,
        params=params,
        x0=None if x0 is None else tuple(float(v) for v in x0),
        reference_exponents=None if ref is None else tuple(ref),
        **row,
    )


# ----------------------------------------------------------------------------- integration

RTOL, ATOL = 1e-9, 1e-9


def integrate(
    system: System,
    n_steps: int,
    *,
    dt: float | None = None,
    transient: float | None = None,
    x0: Array | None = None,
    rtol: float = RTOL,
    atol: float = ATOL,
) -> Array:
    """States x(t_k), k = 0..n_steps−1, at t_k = transient + k·dt.

    Flows: ``solve_ivp`` (DOP853, rtol = atol = 1e-9 by default) from ``x0`` (the table's
    initial condition unless given); the first ``transient`` time units are discarded. Maps:
    iterate (transient counted in iterations). Mackey-Glass: :func:`integrate_mackey_glass`.
    Returns an array of shape (n_steps, d) (for Mackey-Glass (n_steps, 1)).
    """
    dt = system.dt if dt is None else float(dt)
    transient = system.transient if transient is None else float(transient)
    if int(n_steps) != n_steps or n_steps < 1:
        raise ValueError(f"n_steps must be a positive integer, got {n_steps}")
    if dt <= 0 or not np.isfinite(dt):
        raise ValueError(f"dt must be positive and finite, got {dt}")
    if transient < 0:
        raise ValueError(f"transient must be non-negative, got {transient}")
    n_steps = int(n_steps)
    if system.kind == "dde":
        start = float(np.ravel(system.initial_state() if x0 is None else x0)[0])
        x = integrate_mackey_glass(system.params, n_steps, dt=dt, transient=transient, x0=start)
        return x[:, None]
    start = system.initial_state() if x0 is None else np.asarray(x0, dtype=float)
    _check_state(system, start)
    if system.kind == "map":
        x = start
        for _ in range(int(transient)):
            x = system.rhs(x)
        out = np.empty((n_steps, system.dim))
        for k in range(n_steps):
            out[k] = x
            x = system.rhs(x)
        return out
    f = FAMILIES[system.family][0]
    t_eval = transient + dt * np.arange(n_steps)
    sol = solve_ivp(
        lambda t, s: f(s, system.params), (0.0, t_eval[-1]), start, method="DOP853",
        t_eval=t_eval, rtol=rtol, atol=atol,
    )
    if not sol.success:
        raise RuntimeError(f"integration of {system.name} failed: {sol.message}")
    return sol.y.T.copy()


def integrate_mackey_glass(
    params: dict, n_steps: int, *, dt: float, transient: float, x0: float = 1.2
) -> Array:
    """Samples x(transient + k·dt) of ẋ = β x(t−τ)/(1 + x(t−τ)ⁿ) − γ x, history x ≡ x0 on [−τ, 0].

    Method of steps with an exponential integrator on a grid of width h = τ/round(τ/h): over
    one delay interval the delayed term g(t) = β x(t−τ)/(1 + x(t−τ)ⁿ) is known, so the
    linear equation ẋ = −γx + g(t) is solved exactly for g linear between grid points,
    x_{k+1} = e^{−γh} x_k + a g_k + b g_{k+1}, one whole delay interval at a time (a linear
    recurrence, evaluated by ``scipy.signal.lfilter``). Second order in h; scipy has no
    delay-equation solver, and this is exact for the first interval (constant history).
    """
    tau, gamma = float(params["tau"]), float(params["gamma"])
    n_delay = max(1, int(round(tau / float(params["h"]))))
    h = tau / n_delay
    stride = dt / h
    if abs(stride - round(stride)) > 1e-9 or round(stride) < 1:
        raise ValueError(f"dt = {dt} must be a positive multiple of the grid step h = {h}")
    stride = int(round(stride))
    c = np.exp(-gamma * h)
    # ∫_0^h e^{−γ(h−s)} (g0 (1 − s/h) + g1 s/h) ds = a g0 + b g1
    b = (h - (1.0 - c) / gamma) / (gamma * h)
    a = (1.0 - c) / gamma - b
    total = int(np.ceil(transient / h)) + (n_steps - 1) * stride + 1
    n_chunks = int(np.ceil(total / n_delay))
    x = np.empty(n_delay * (n_chunks + 1) + 1)
    x[: n_delay + 1] = x0  # history on [−τ, 0]
    for k in range(n_chunks):
        lo = k * n_delay  # grid index of t − τ for the chunk starting at t = lo + n_delay
        delayed = x[lo : lo + n_delay + 1]
        g = params["beta"] * delayed / (1.0 + delayed ** params["n"])
        forcing = a * g[:-1] + b * g[1:]
        x[lo + n_delay + 1 : lo + 2 * n_delay + 1], _ = lfilter(
            [1.0], [1.0, -c], forcing, zi=[c * x[lo + n_delay]]
        )
    start = n_delay + int(np.ceil(transient / h))
    return x[start : start + (n_steps - 1) * stride + 1 : stride].copy()
