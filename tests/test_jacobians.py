"""Jacobian products, RNN Lyapunov spectra, gradient diagnostics and the constructed regimes,
each against a closed form, an explicit product, autograd or the theorem's prediction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chaosrnn_utils.jacobians import (
    gradient_terms,
    loss_gradient_norms,
    orbit_jacobians,
    product_log_norms,
    rnn_lyapunov_spectrum,
)
from chaosrnn_utils.lyapunov import spectrum_standard_error
from chaosrnn_utils.models import PLRNN, make_model
from chaosrnn_utils.regimes import (
    chaotic_plrnn,
    fixed_point_plrnn,
    quasiperiodic_plrnn,
    two_cycle_plrnn,
)

F64 = torch.float64


def test_log_norms_equal_log_of_explicit_product_for_short_T():
    g = torch.Generator().manual_seed(0)
    J = torch.randn(3, 20, 4, 4, dtype=F64, generator=g)  # 3 independent orbits, T = 20
    ours = product_log_norms(J)
    P = torch.eye(4, dtype=F64).expand(3, 4, 4)
    for t in range(20):
        P = J[:, t] @ P
        np.testing.assert_allclose(ours[:, t], torch.log(torch.linalg.matrix_norm(P, ord=2)),
                                   rtol=1e-10)


def test_log_norms_survive_products_beyond_float_range():
    # 3^T overflows float64 at T ≈ 646 and 0.2^T underflows at T ≈ 440: the rescaled product
    # gives T·ln 3 and T·ln 0.2 exactly
    T = 10_000
    for a in (3.0, 0.2):
        J = (a * torch.eye(2, dtype=F64)).expand(T, 2, 2)
        np.testing.assert_allclose(product_log_norms(J)[[-1, 4999]], [T * np.log(a),
                                   5000 * np.log(a)], rtol=1e-10)


def test_product_log_norms_bad_input():
    with pytest.raises(ValueError, match="T, S, S"):
        product_log_norms(torch.zeros(3, 2, 3))


def test_orbit_jacobians_match_the_model_and_states():
    reg = chaotic_plrnn()
    m, s0 = reg.model(), reg.initial_state()
    states, J = orbit_jacobians(m, s0, 30)
    with torch.no_grad():
        torch.testing.assert_close(states[:, :, 1], m.step(s0))
        torch.testing.assert_close(J[:, :, 5], m.jacobian(states[:, :, 5]))


def test_rnn_spectrum_of_1d_linear_rnn_is_log_abs_a():
    for a in (0.8, -0.6):
        m = PLRNN.from_parameters(A=torch.tensor([[a]], dtype=F64),
                                  W=torch.zeros(1, 1, 1, dtype=F64),
                                  h=torch.zeros(1, 1, dtype=F64),
                                  B=torch.ones(1, 1, 1, dtype=F64))
        lam = rnn_lyapunov_spectrum(m, torch.ones(1, 1, 1, dtype=F64), 200, n_transient=0)
        np.testing.assert_allclose(lam[0, 0], [np.log(abs(a))], rtol=1e-12)


def test_rnn_spectrum_of_diagonal_linear_map():
    a = np.array([0.9, -0.5, 0.3, 0.05])
    m = PLRNN.from_parameters(A=torch.tensor(a[None]), W=torch.zeros(1, 4, 4, dtype=F64),
                              h=torch.zeros(1, 4, dtype=F64), B=torch.eye(2, 4, dtype=F64)[None])
    lam = rnn_lyapunov_spectrum(m, -torch.ones(1, 2, 4, dtype=F64), 100, n_transient=0)
    for b in range(2):
        np.testing.assert_allclose(lam[0, b], np.log(np.abs(a)), rtol=1e-10)


@pytest.mark.parametrize("make", [fixed_point_plrnn, two_cycle_plrnn, quasiperiodic_plrnn])
def test_constructed_regimes_have_their_exact_spectrum(make):
    reg = make()
    lam = rnn_lyapunov_spectrum(reg.model(), reg.initial_state(), 3000)[0, 0]
    np.testing.assert_allclose(lam, reg.exact_exponents, atol=2e-3)


def test_two_cycle_is_a_cycle_of_period_two():
    reg = two_cycle_plrnn()
    z = reg.initial_state()[0, 0].numpy()
    for _ in range(500):
        z = reg.step(z)
    assert np.allclose(reg.step(reg.step(z)), z, atol=1e-12)
    assert not np.allclose(reg.step(z), z, atol=1e-3)


def test_chaotic_regime_is_chaotic_and_bounded():
    reg = chaotic_plrnn()
    m, s0 = reg.model(), reg.initial_state()
    lam, hist = rnn_lyapunov_spectrum(m, s0, 10_000, return_history=True)
    se_sum = spectrum_standard_error(hist.sum(-1))[0, 0]  # the running sums' local values
    lam, se = lam[0, 0], spectrum_standard_error(hist)[0, 0]
    # a finite-time estimate on a chaotic orbit: each sign holds by 6 standard errors (batch
    # means, 9 degrees of freedom: P(|t₉| > 6) = 2e-4); λ_max ≈ 0.08, like the paper's
    # Lorenz-trained PLRNN (0.0765)
    assert lam[0] > 6 * se[0]
    assert lam[1] < -6 * se[1] and lam.sum() < -6 * se_sum  # dissipative
    assert torch.isfinite(m.rollout(s0, 5000)).all()


@pytest.mark.parametrize("make", [fixed_point_plrnn, two_cycle_plrnn, chaotic_plrnn])
def test_fitted_slope_of_log_norm_agrees_with_lambda_max(make):
    """Theorems 1 and 2: log||∂z_T/∂z_1|| grows (decays) at rate λ_max; averaged over 16
    orbits, the least-squares slope over T ∈ [100, 1000] equals the QR λ_max within 6
    standard errors, each the spread over the 16 orbits / 4 (chaos: another machine gives
    other orbits; P(|t₁₅| > 6) ≈ 2e-5), plus 1e-3 |λ_max| for the fit's finite-T offset (the
    exact regimes, one orbit each in effect: measured ≤ 4e-5)."""
    reg = make()
    m = reg.model()
    g = torch.Generator().manual_seed(1)
    s0 = reg.initial_state() + 0.05 * torch.randn(1, 16, reg.latent_dim, dtype=F64, generator=g)
    lams = rnn_lyapunov_spectrum(m, s0, 5000)[0, :, 0]
    _, J = orbit_jacobians(m, s0, 1000)
    log_norms = product_log_norms(J)[0].numpy()  # (16 orbits, T)
    T = np.arange(1, 1001)
    slopes = np.polyfit(T[99:], log_norms[:, 99:].T, 1)[0]
    lam, slope = lams.mean(), slopes.mean()  # the slope of the mean = the mean of the slopes
    se = np.hypot(lams.std(ddof=1), slopes.std(ddof=1)) / np.sqrt(len(slopes))
    assert abs(slope - lam) <= 6 * se + 1e-3 * abs(lam), (slope, lam, se)


def test_quasiperiodic_products_neither_grow_nor_decay():
    reg = quasiperiodic_plrnn()
    _, J = orbit_jacobians(reg.model(), reg.initial_state(), 5000)
    log_norm = product_log_norms(J)[0, 0].numpy()
    T = np.arange(1, 5001)
    eps = 1e-3
    assert np.all(log_norm > T * np.log(1 - eps)) and np.all(log_norm < T * np.log(1 + eps))


def test_gradient_terms_sum_to_the_autograd_gradient():
    reg = chaotic_plrnn()
    m = reg.model()
    s0 = m.rollout(reg.initial_state(), 500)[:, :, -1].detach()  # on the attractor
    x = torch.randn(1, 1, reg.latent_dim, dtype=F64, generator=torch.Generator().manual_seed(0))
    norms, total = gradient_terms(m, s0, x, 200)
    s = m.rollout(s0, 200)
    loss = ((x - m.observe(s[:, :, -1])) ** 2).mean(-1).sum()
    grads = torch.autograd.grad(loss, list(m.parameters()))
    for ours, ref in zip(total, grads, strict=True):
        torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-12)
    # on a chaotic orbit the early terms carry the long Jacobian products, e^{0.08·200} ≈ 9e6
    assert norms[0, 0] > 1e4 * norms[-1, 0]


def test_loss_gradient_norms_match_autograd_and_diverge_only_for_chaos():
    x = torch.randn(1, 1, 400, 8, dtype=F64, generator=torch.Generator().manual_seed(0))
    reg = chaotic_plrnn()
    m, s0 = reg.model(), reg.initial_state()
    norms = loss_gradient_norms(m, s0, x, [10, 400])[:, 0]
    s = m.rollout(s0, 10)
    loss = ((x[:, :, 9] - m.observe(s[:, :, 9])) ** 2).mean()
    ref = torch.sqrt(sum((g**2).sum() for g in torch.autograd.grad(loss, list(m.parameters()))))
    assert norms[0] == pytest.approx(ref.item(), rel=1e-10)
    assert norms[1] > 1e8 * norms[0]  # e^{0.08·390} ≈ 4e13
    cyc = two_cycle_plrnn()
    bounded = loss_gradient_norms(cyc.model(), cyc.initial_state(), x[..., :6], [10, 100, 400])
    assert bounded.max() < 10 * bounded.min()


def test_ensemble_gradient_norms_are_per_member():
    m = make_model("lstm", 5, 2, n_models=3, dtype=F64)
    x = torch.randn(1, 4, 50, 2, dtype=F64, generator=torch.Generator().manual_seed(0))
    s0 = m.inferred_state(x[0, :, 0])
    joint = loss_gradient_norms(m, s0, x, [20, 50])
    for e in range(3):
        single = m.member(e)
        np.testing.assert_allclose(joint[:, e], loss_gradient_norms(
            single, single.inferred_state(x[0, :, 0]), x, [20, 50])[:, 0], rtol=1e-10)
