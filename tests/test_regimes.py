"""The attracting quasi-periodic regime (Theorem 3) and its checks, each against an
independent reference: the eigenvalues of the linearisation at 0, autograd, the numpy step,
the Jacobian determinants (sum of the exponents), exact rotations, and negative controls (a
chaotic PLRNN, a stable fixed point, a phase-locked 4-cycle)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chaosrnn_utils.jacobians import (
    growth_epsilon,
    orbit,
    orbit_jacobians,
    product_log_norms,
    rnn_lyapunov_spectrum,
    theorem3_check,
)
from chaosrnn_utils.lyapunov import spectrum_standard_error
from chaosrnn_utils.regimes import (
    GOLDEN_ANGLE,
    REGIMES,
    chaotic_plrnn,
    curve_profile,
    fixed_point_plrnn,
    nearest_rational,
    quasiperiodic_attracting_rnn,
    quasiperiodic_plrnn,
    rotation_number,
)

F64 = torch.float64


def _starts(reg, n: int = 8, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return reg.initial_state() + 0.05 * torch.randn(1, n, reg.latent_dim, dtype=F64, generator=g)


@pytest.fixture(scope="module")
def attractor():
    reg = quasiperiodic_attracting_rnn()
    m = reg.model()
    pts = orbit(m, reg.initial_state(), 5000, n_transient=500)[0, 0].numpy()
    return reg, m, pts


def test_origin_is_past_a_neimark_sacker_bifurcation():
    reg = quasiperiodic_attracting_rnn(gain=1.2)
    J0 = reg.model().jacobian(torch.zeros(1, 1, 2, dtype=F64))[0, 0].detach().numpy()
    eig = np.linalg.eigvals(J0)  # tanh'(0) = 1: the linearisation is W = r·R(θ)
    np.testing.assert_allclose(np.abs(eig), [1.2, 1.2], rtol=1e-12)
    np.testing.assert_allclose(np.abs(np.angle(eig)), [GOLDEN_ANGLE] * 2, rtol=1e-12)
    assert np.all(np.abs(eig.imag) > 0.5)  # a complex pair, away from the ±1 crossings
    with pytest.raises(ValueError, match="gain"):
        quasiperiodic_attracting_rnn(gain=0.9)


def test_model_step_and_jacobian_match_numpy_and_autograd(attractor):
    reg, m, pts = attractor
    z = torch.as_tensor(pts[:50], dtype=F64).reshape(1, 50, 2)
    with torch.no_grad():
        np.testing.assert_allclose(m.step(z)[0].numpy(), [reg.step(p) for p in pts[:50]],
                                   rtol=1e-13, atol=1e-15)
        ours = m.jacobian(z)[0]
    for k in (0, 17, 49):
        ref = torch.autograd.functional.jacobian(lambda s: m.step(s.reshape(1, 1, 2))[0, 0],
                                                 z[0, k])
        torch.testing.assert_close(ours[k], ref, rtol=1e-12, atol=1e-14)


def test_qr_spectrum_is_zero_then_negative():
    reg = quasiperiodic_attracting_rnn()
    m, s0 = reg.model(), _starts(reg)
    n = 5000
    lam, hist = rnn_lyapunov_spectrum(m, s0, n, return_history=True)
    lam = lam[0]
    # tolerance on λ1 from the finite-time error: 4 standard errors by batch means (10 blocks
    # of 500 steps); on a quasi-periodic circle the local stretches telescope, so the true
    # error is O(1/T) and smaller still
    tol = 4 * spectrum_standard_error(hist)[0, :, 0].max()
    assert tol < 2e-4
    assert np.all(np.abs(lam[:, 0]) < tol)
    assert np.all(lam[:, 1] < -0.3)  # the circle attracts
    # independent reference: λ1 + λ2 = time average of log|det J_t| on the same orbit
    z = orbit(m, s0, 1, n_transient=500 + 100)[:, :, 0]
    _, J = orbit_jacobians(m, z, n)
    mean_logdet = torch.linalg.det(J[0]).abs().log().mean(-1).numpy()
    np.testing.assert_allclose(lam.sum(-1), mean_logdet, atol=1e-3)
    # and λ2 ≈ −2 ln r to leading order in r − 1 (normal form of the bifurcation)
    assert abs(lam[:, 1].mean() / (-2 * np.log(1.2)) - 1) < 0.1


def test_orbit_fills_an_invariant_circle_with_irrational_rotation(attractor):
    reg, m, pts = attractor
    rho = rotation_number(pts)
    p, q, dist = nearest_rational(rho, 20)
    assert (p, q) == (5, 13) and dist > 1e-3
    prof = curve_profile(pts)
    assert prof["r_min"] > 0.7 and np.nanmax(prof["r_hi"]) < 0.8  # away from the origin
    assert prof["spread"] < 0.02  # one radius per angle: a curve, not a blob
    assert prof["max_gap"] < 5  # the orbit fills it (a q-cycle: max_gap ≈ T/q)
    # the same curve and rotation number from outside it
    out = orbit(m, torch.tensor([[[0.95, -0.9]]], dtype=F64), 5000, n_transient=500)[0, 0]
    assert abs(rotation_number(out.numpy()) - rho) < 1e-4
    prof_out = curve_profile(out.numpy())
    np.testing.assert_allclose(prof_out["r_lo"], prof["r_lo"], atol=0.02)


def test_phase_locked_control_fails_the_circle_checks():
    reg = quasiperiodic_attracting_rnn(angle=np.pi / 2 + 0.02)  # inside the 1/4 tongue
    m = reg.model()
    pts = orbit(m, reg.initial_state(), 4000, n_transient=2000)[0, 0].numpy()
    rho = rotation_number(pts)
    assert nearest_rational(rho, 20)[:2] == (1, 4) and nearest_rational(rho, 20)[2] < 1e-10
    assert curve_profile(pts)["max_gap"] > 500
    assert rnn_lyapunov_spectrum(m, reg.initial_state(), 3000)[0, 0, 0] < -0.1


def test_theorem3_check_holds_on_the_attractor_and_fails_otherwise():
    out = {}
    for name, make in [("qp", quasiperiodic_attracting_rnn), ("chaos", chaotic_plrnn),
                       ("fixed", fixed_point_plrnn), ("neutral", quasiperiodic_plrnn)]:
        reg = make()
        m = reg.model()
        z = orbit(m, _starts(reg), 1, n_transient=500)[:, :, 0]
        _, J = orbit_jacobians(m, z, 2000)
        out[name] = theorem3_check(product_log_norms(J), 100)
    assert out["qp"]["holds"] and out["neutral"]["holds"]
    assert out["qp"]["eps_late"] < 1e-3 and out["qp"]["eps_late"] < 0.2 * out["qp"]["eps_early"]
    assert abs(out["qp"]["growth"]) < 0.1
    assert not out["chaos"]["holds"] and out["chaos"]["eps_late"] > 0.05
    assert not out["fixed"]["holds"]
    # λ_max = ln 0.85 exactly: the needed ε is |ln 0.85| in both windows
    np.testing.assert_allclose([out["fixed"]["eps_early"], out["fixed"]["eps_late"]],
                               -np.log(0.85), rtol=1e-3)


def test_growth_epsilon_and_rotation_number_on_closed_forms():
    T = np.arange(1, 2001)
    np.testing.assert_allclose(growth_epsilon(-0.03 * T, 100, 200), 0.03)
    np.testing.assert_allclose(growth_epsilon(np.log(T), 100, 200), np.log(100) / 100)
    with pytest.raises(ValueError, match="T_lo"):
        growth_epsilon(T, 100, 3000)
    for rho in (0.1, -0.3, 0.45):  # exact rotations by 2πρ, any radius and centre
        a = 2 * np.pi * rho * np.arange(100)
        pts = np.c_[1 + 2 * np.cos(a), -1 + 2 * np.sin(a)]
        assert abs(rotation_number(pts, centre=[1, -1]) - rho) < 1e-12
    assert nearest_rational(0.382, 20)[:2] == (5, 13)
    assert nearest_rational(1 / 3, 20) == (1, 3, pytest.approx(0, abs=1e-15))


def test_regimes_table_holds_the_attracting_circle():
    assert REGIMES["quasiperiodic"] is quasiperiodic_attracting_rnn
    for make in REGIMES.values():
        reg = make()
        assert reg.model().latent_dim == reg.latent_dim == reg.initial_state().shape[-1]
