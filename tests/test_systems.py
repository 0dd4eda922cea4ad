"""Vector fields and Jacobians against finite differences; integrators against closed forms
and scipy; clear errors on bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from chaosrnn_utils.systems import (
    get_system,
    integrate,
    integrate_mackey_glass,
    mackey_glass_jac,
    mackey_glass_rhs,
    system_names,
)

NON_DDE = [n for n in system_names() if get_system(n).kind != "dde"]


def finite_difference_jacobian(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences, column by column."""
    cols = []
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        cols.append((f(x + e) - f(x - e)) / (2 * h))
    return np.stack(cols, axis=-1)


@pytest.mark.parametrize("name", NON_DDE)
def test_analytic_jacobian_matches_finite_differences(name):
    s = get_system(name, N=7) if name == "lorenz96" else get_system(name)
    rng = np.random.default_rng(1)
    for _ in range(5):
        x = rng.uniform(0.1, 0.9, s.dim) if s.family == "logistic" else rng.normal(0, 3, s.dim)
        np.testing.assert_allclose(s.jac(x), finite_difference_jacobian(s.rhs, x),
                                   rtol=1e-6, atol=1e-6)


def test_jacobian_is_vectorised_over_points():
    s = get_system("lorenz_standard")
    x = np.random.default_rng(0).normal(size=(4, 5, 3))
    J = s.jac(x)
    assert J.shape == (4, 5, 3, 3)
    np.testing.assert_allclose(J[2, 3], s.jac(x[2, 3]))


def test_mackey_glass_partials_match_finite_differences():
    p = get_system("mackey_glass").params
    for x, xd in [(0.5, 1.1), (1.3, 0.7), (0.9, 1.6)]:
        h = 1e-6
        dx = (mackey_glass_rhs(x + h, xd, p) - mackey_glass_rhs(x - h, xd, p)) / (2 * h)
        dd = (mackey_glass_rhs(x, xd + h, p) - mackey_glass_rhs(x, xd - h, p)) / (2 * h)
        np.testing.assert_allclose(mackey_glass_jac(np.array(x), np.array(xd), p), [dx, dd],
                                   rtol=1e-6)


def test_mackey_glass_first_delay_interval_is_exact():
    # constant history x0: ẋ = g(x0) − γx, so x(t) = x0 e^{−γt} + g(x0)/γ (1 − e^{−γt})
    p = get_system("mackey_glass").params
    x0 = 1.2
    g = p["beta"] * x0 / (1 + x0 ** p["n"])
    x = integrate_mackey_glass(p, 9, dt=2.0, transient=0.0, x0=x0)
    t = 2.0 * np.arange(9)
    exact = x0 * np.exp(-p["gamma"] * t) + g / p["gamma"] * (1 - np.exp(-p["gamma"] * t))
    np.testing.assert_allclose(x, exact, rtol=1e-12)


def test_mackey_glass_second_interval_matches_scipy():
    # on [τ, 2τ] the delayed term is the known first-interval solution: solve it with scipy
    p = dict(get_system("mackey_glass").params, h=0.01)
    x0, tau, gam = 1.2, p["tau"], p["gamma"]
    g0 = p["beta"] * x0 / (1 + x0 ** p["n"])

    def first(t):
        return x0 * np.exp(-gam * t) + g0 / gam * (1 - np.exp(-gam * t))

    def rhs(t, x):
        xd = first(t - tau)
        return p["beta"] * xd / (1 + xd ** p["n"]) - gam * x

    sol = solve_ivp(rhs, (tau, 2 * tau), [first(tau)], rtol=1e-12, atol=1e-12,
                    t_eval=np.linspace(tau, 2 * tau, 18))
    ours = integrate_mackey_glass(p, 18, dt=1.0, transient=tau, x0=x0)
    np.testing.assert_allclose(ours, sol.y[0], rtol=1e-6)


def test_flow_integration_matches_tighter_scipy_run_at_short_times():
    s = get_system("lorenz_standard")
    x = integrate(s, 50, transient=0.0)
    ref = solve_ivp(lambda t, y: s.rhs(y), (0, 0.49), s.initial_state(), method="RK45",
                    rtol=1e-12, atol=1e-12, t_eval=0.01 * np.arange(50)).y.T
    np.testing.assert_allclose(x, ref, rtol=1e-6, atol=1e-6)


def test_duffing_observation_is_x_v_cos_phase():
    s = get_system("duffing_paper")
    states = integrate(s, 100)
    obs = s.observe(states)
    np.testing.assert_allclose(obs[:, :2], states[:, :2])
    np.testing.assert_allclose(obs[:, 2], np.cos(states[:, 2]))
    # the phase advances by ω dt per sample
    np.testing.assert_allclose(np.diff(states[:, 2]), 1.4 * s.dt, rtol=1e-7)


def test_overrides_and_lorenz96_dimension():
    s = get_system("lorenz96", N=40)
    assert s.dim == 40 and s.initial_state().shape == (40,)
    assert get_system("lorenz_standard", rho=35).params["rho"] == 35.0


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: get_system("lorenz99"), KeyError, "unknown system"),
        (lambda: get_system("lorenz_standard", rh0=3), KeyError, "unknown parameter"),
        (lambda: get_system("lorenz_standard", dt=0), ValueError, "dt must be positive"),
        (lambda: get_system("lorenz_standard").rhs(np.zeros(2)), ValueError, "last dimension"),
        (lambda: integrate(get_system("henon"), 0), ValueError, "positive integer"),
        (lambda: integrate(get_system("henon"), 10, dt=-1.0), ValueError, "dt must be"),
        (lambda: integrate(get_system("henon"), 10, transient=-1), ValueError, "transient"),
        (lambda: get_system("mackey_glass").rhs(np.zeros(1)), TypeError, "delayed"),
        (lambda: integrate(get_system("mackey_glass"), 10, dt=0.013), ValueError, "multiple"),
    ],
)
def test_bad_input_gives_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
