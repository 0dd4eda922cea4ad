"""Sparse teacher forcing: the schedule, the forced rollout, and the gradient bound it buys."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

from chaosrnn_utils import forcing, training
from chaosrnn_utils.forcing import (
    MemberConfig,
    check_tau,
    forced_rollout,
    forcing_mask,
    schedule_masks,
)
from chaosrnn_utils.jacobians import loss_gradient_norms, rnn_lyapunov_spectrum
from chaosrnn_utils.lyapunov import spectrum_standard_error
from chaosrnn_utils.models import make_model
from chaosrnn_utils.regimes import chaotic_plrnn

F64 = torch.float64


@pytest.fixture(scope="module")
def chaos():
    reg = chaotic_plrnn()
    m = reg.model()
    with torch.no_grad():
        s0 = m.rollout(reg.initial_state(), 500)[:, :, -1]
        x = torch.cat([s0.unsqueeze(2), m.rollout(s0, 3000)], dim=2)  # B = I: x_t = z_t
    return m, x


def test_forcing_mask_and_tau_validation():
    np.testing.assert_array_equal(forcing_mask(7, 3).numpy(), [1, 0, 0, 1, 0, 0, 1])
    assert not forcing_mask(5, None).any()
    for bad in (0, -2, 11, 2.5, 3.0, True, "3", np.float64(4.0)):
        with pytest.raises(ValueError, match="τ must be an integer in 1..10"):
            check_tau(bad, 10)
    for good in (1, 10, np.int64(4), np.int32(7)):
        assert check_tau(good, 10) == int(good) and type(check_tau(good, 10)) is int
    assert check_tau(None, 10) is None
    with pytest.raises(ValueError, match="window must be an integer in 1..10"):
        check_tau(None, 10, "window", required=True)


# every mode, fixed, random and annealed τ (annealed and random together too)
SCHEDULE = [MemberConfig(seed=0, tau=7), MemberConfig(seed=1, mode="teacher"),
            MemberConfig(seed=2, tau=10, tau_spread=3), MemberConfig(seed=3, tau=9, tau_start=2),
            MemberConfig(seed=4, tau=12, tau_spread=2, tau_start=4),
            MemberConfig(seed=5, mode="window", window=6),
            MemberConfig(seed=6, mode="tbptt", truncation=5), MemberConfig(seed=7, mode="bptt"),
            MemberConfig(seed=8, mode="gtf", alpha=0.3)]


def _batch_tau(m: MemberConfig, epoch: int, epochs: int, g: torch.Generator) -> int:
    """One batch's τ as MemberConfig's docstring states it: 1 for ``teacher``; else annealed
    linearly from ``tau_start`` (first epoch) to ``tau`` (last), then drawn uniformly from
    [τ − spread, τ + spread] with the member's generator."""
    if m.mode == "teacher":
        return 1
    tau = m.tau
    if m.tau_start is not None:
        tau = round(m.tau_start + (m.tau - m.tau_start) * epoch / (epochs - 1))
    if m.tau_spread:
        tau = torch.randint(tau - m.tau_spread, tau + m.tau_spread + 1, (1,), generator=g).item()
    return tau


def test_schedule_force_mask_is_the_forcing_mask_per_member():
    """schedule_masks' force mask of every member and batch is forcing_mask of the member's τ
    (t ≡ 0 mod τ); windows restart at t ≡ 0 mod window, truncation cuts at t ≡ 0 mod k, t > 0;
    the generators end where the reference draws leave them."""
    T, epochs = 40, 4
    t = np.arange(T)
    gens = [torch.Generator().manual_seed(m.seed) for m in SCHEDULE]
    refs = [torch.Generator().manual_seed(m.seed) for m in SCHEDULE]
    none = np.zeros(T, dtype=bool)
    for epoch in range(epochs):
        for _ in range(3):
            masks = schedule_masks(SCHEDULE, T, epoch, epochs, gens)
            for e, (m, g) in enumerate(zip(SCHEDULE, refs, strict=True)):
                if m.mode in ("sparse", "teacher"):
                    tau = _batch_tau(m, epoch, epochs, g)
                    assert torch.equal(masks["force"][e], forcing_mask(T, tau)), (e, tau)
                    np.testing.assert_array_equal(masks["force"][e], t % tau == 0)
                else:
                    assert not masks["force"][e].any()
                window = t % m.window == 0 if m.mode == "window" else none
                cut = (t % m.truncation == 0) & (t > 0) if m.mode == "tbptt" else none
                np.testing.assert_array_equal(masks["zero"][e], window)
                np.testing.assert_array_equal(masks["cut"][e], cut)
                assert float(masks["alpha"][e]) == np.float32(m.alpha if m.mode == "gtf" else 0)
    for g, ref in zip(gens, refs, strict=True):
        assert torch.equal(g.get_state(), ref.get_state())


def test_training_reexports_the_schedule():
    for name in ("MODES", "MemberConfig", "schedule_masks", "batch_periods", "member_codes",
                 "periodic_masks"):
        assert getattr(training, name) is getattr(forcing, name), name


def test_forcing_does_not_import_training():
    """forcing sits below training: no package module it imports, directly or through
    another, is training (no import cycle)."""
    pkg = Path(forcing.__file__).parent
    seen, todo = set(), ["forcing"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for node in ast.walk(ast.parse((pkg / f"{name}.py").read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                todo += [node.module.split(".")[0]] if node.module else \
                    [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom | ast.Import):
                mods = [node.module] if isinstance(node, ast.ImportFrom) else \
                    [a.name for a in node.names]
                todo += [m.split(".")[1] for m in mods
                         if m and m.startswith("chaosrnn_utils.")]
    assert "validate" in seen and "training" not in seen, seen


def test_tau_one_is_classic_teacher_forcing():
    m = make_model("plrnn", 4, 2, dtype=F64)
    x = torch.randn(1, 3, 11, 2, dtype=F64, generator=torch.Generator().manual_seed(0))
    ours = forced_rollout(m, x, 1)
    ref = m.step(m.inferred_state(x[:, :, :10]).reshape(1, 30, 4)).reshape(1, 3, 10, 4)
    torch.testing.assert_close(ours, ref)


def test_lstm_forcing_resets_cell_state():
    m = make_model("lstm", 5, 2, dtype=F64)
    x = torch.randn(1, 2, 9, 2, dtype=F64, generator=torch.Generator().manual_seed(1))
    s = forced_rollout(m, x, 4)
    z4 = m.inferred_state(x[:, :, 4])
    assert torch.all(z4[..., 5:] == 0)
    torch.testing.assert_close(s[:, :, 4], m.step(z4))


def test_forcing_cuts_the_gradient_path():
    m = make_model("rnn", 4, 4, dtype=F64)
    x = torch.randn(1, 1, 13, 4, dtype=F64, generator=torch.Generator().manual_seed(2),
                    requires_grad=True)
    s = forced_rollout(m, x, 5)
    (g,) = torch.autograd.grad(s[0, 0, 7].sum(), x)  # s_8 depends on x_5 only
    assert torch.count_nonzero(g[0, 0, :5]) == 0 and torch.count_nonzero(g[0, 0, 5]) > 0


def test_forced_gradients_are_flat_in_sequence_length(chaos):
    m, x = chaos
    params = list(m.parameters())

    def grad_norm(T, tau):
        s = forced_rollout(m, x[:, :, : T + 1], tau)
        loss = ((x[:, :, 1 : T + 1] + 0.5 - m.observe(s)) ** 2).mean()
        return float(torch.sqrt(sum((g**2).sum() for g in torch.autograd.grad(loss, params))))

    forced = [grad_norm(T, 10) for T in (100, 1000, 3000)]
    free = [grad_norm(T, None) for T in (100, 1000)]
    assert max(forced) < 1.5 * min(forced)
    assert free[1] > 1e10 * free[0]


def test_gradient_level_grows_like_exp_lambda_tau(chaos):
    """The geometric-mean gradient of the loss at the end of a forcing interval grows like
    e^{λ_max τ}: its log-slope in τ equals the QR λ_max (≈ 0.08) within 6 combined standard
    errors. Both are samples of a chaotic orbit, which another machine's last bits replace
    by another: the slope's error by batch means over 16 groups of 6 consecutive windows
    (overlapping windows are correlated), the QR estimate's by batch means over its run;
    P(|t₁₅| > 6) ≈ 2e-5."""
    m, x = chaos
    ens = m.replicate(96)
    taus = [5, 10, 20, 40, 60, 80]
    levels = []
    for tau in taus:
        starts = np.linspace(0, x.shape[2] - tau - 2, 96).astype(int)
        win = torch.stack([x[0, 0, s : s + tau + 1] for s in starts])  # (96, τ+1, N)
        norms = loss_gradient_norms(ens, ens.inferred_state(win[:, None, 0]),
                                    win[:, None, 1:] + 0.5, [tau])[0]
        levels.append(np.log(norms))
    per_window = np.polyfit(taus, np.array(levels), 1)[0]  # (96,): the slope is their mean
    groups = per_window.reshape(16, 6).mean(1)
    se_slope = groups.std(ddof=1) / np.sqrt(len(groups))
    lam, hist = rnn_lyapunov_spectrum(m, x[:, :, -1], 20_000, n_exponents=1,
                                      return_history=True)
    lam, se_lam = lam[0, 0, 0], spectrum_standard_error(hist)[0, 0, 0]
    slope = per_window.mean()
    assert abs(slope - lam) <= 6 * np.hypot(se_slope, se_lam), (slope, lam, se_slope, se_lam)


def test_replicate_copies_member_and_gives_per_member_gradients():
    m = make_model("shplrnn", 4, 2, n_models=2, dtype=F64)
    r = m.replicate(3, e=1)
    for name, p in r.named_parameters():
        for k in range(3):
            torch.testing.assert_close(p[k], getattr(m, name)[1])
    with pytest.raises(ValueError):
        m.replicate(0)
