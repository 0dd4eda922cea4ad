"""λ_max by one renormalised tangent vector (batched, on the model's device) against the QR
route of ``metrics.evaluate`` (``rnn_lyapunov_spectrum`` with one exponent, Jacobians on the
host in float64) for a tiny ensemble: the same orbit and the same normalisation, so equal to
rounding (each of n log-factors to a few ε, the mean to n·ε relative at most)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chaosrnn_utils.device_eval import lambda_max
from chaosrnn_utils.jacobians import rnn_lyapunov_spectrum
from chaosrnn_utils.models import make_model


@pytest.mark.parametrize("arch", ["plrnn", "rnn", "lstm"])
def test_one_tangent_vector_equals_the_qr_route(arch):
    model = make_model(arch, 6, 3, n_models=3, seeds=[0, 1, 2], dtype=torch.float64)
    with torch.no_grad():  # larger weights: some members chaotic, some not
        for p in model.parameters():
            p.mul_(3.0)
    s0 = model.inferred_state(torch.randn(3, 2, 3, dtype=torch.float64,
                                          generator=torch.Generator().manual_seed(0)))
    n = 400
    ref = np.asarray(rnn_lyapunov_spectrum(model, s0, n, n_transient=50, n_align=20,
                                           n_exponents=1, chunk=150))[..., 0]
    got = lambda_max(model, s0, n, n_transient=50, n_align=20, chunk=150).numpy()
    np.testing.assert_allclose(got, ref, rtol=0, atol=n * 64 * np.finfo(np.float64).eps)
    assert np.ptp(ref) > 1e-3  # the members differ: a mix-up would show


def test_a_diverged_member_is_nan_and_the_others_are_not():
    model = make_model("rnn", 4, 3, n_models=2, seeds=[0, 1], dtype=torch.float64)
    s0 = torch.zeros(2, 1, 4, dtype=torch.float64)
    s0[1] = torch.nan
    lam = lambda_max(model, s0, 50, n_transient=5, n_align=5)
    assert np.isfinite(float(lam[0, 0])) and np.isnan(float(lam[1, 0]))
    with pytest.raises(ValueError, match="n_steps"):
        lambda_max(model, s0, 0)
