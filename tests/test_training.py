"""The training engine: every mode against a second implementation or a closed form, per-member
clipping, ensemble = members trained alone, divergence freezing, exact resume, bad input."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from chaosrnn_utils import training
from chaosrnn_utils.forcing import forced_rollout
from chaosrnn_utils.models import make_model
from chaosrnn_utils.training import (
    MemberConfig,
    TrainSettings,
    _clip_,
    schedule_masks,
    train,
    training_rollout,
)

F64 = torch.float64
SETTINGS = TrainSettings(latent_dim=6, seq_len=30, batch_size=4, batches_per_epoch=3,
                         epochs=4, dtype="float64")


@pytest.fixture(scope="module")
def data():
    t = np.arange(4000) * 0.05
    rng = np.random.default_rng(0)
    return np.column_stack([np.sin(t), np.cos(1.7 * t), np.sin(0.3 * t) ** 2]) \
        + 0.05 * rng.standard_normal((4000, 3))


@pytest.fixture
def setup():
    model = make_model("plrnn", 5, 3, n_models=1, dtype=F64)
    x = torch.randn(1, 2, 21, 3, dtype=F64, generator=torch.Generator().manual_seed(0))
    return model, x


def masks_for(m: MemberConfig, T: int = 20):
    return schedule_masks([m], T, 0, 1, [torch.Generator().manual_seed(0)])


def test_sparse_and_teacher_forcing_equal_the_forced_rollout(setup):
    model, x = setup
    for mode, tau in (("sparse", 7), ("teacher", None)):
        ours = training_rollout(model, x, masks_for(MemberConfig(mode=mode, tau=tau)))
        torch.testing.assert_close(ours, forced_rollout(model, x, tau or 1))


def test_bptt_is_a_free_run_and_gtf_interpolates(setup):
    model, x = setup
    free = model.rollout(model.inferred_state(x[:, :, 0]), 20)
    torch.testing.assert_close(training_rollout(model, x, masks_for(MemberConfig(mode="bptt"))),
                               free)
    gtf0 = training_rollout(model, x, masks_for(MemberConfig(mode="gtf", alpha=0.0)))
    gtf1 = training_rollout(model, x, masks_for(MemberConfig(mode="gtf", alpha=1.0)))
    torch.testing.assert_close(gtf0, free)
    torch.testing.assert_close(gtf1, forced_rollout(model, x, 1))
    half = training_rollout(model, x, masks_for(MemberConfig(mode="gtf", alpha=0.5)))
    z1 = model.step(model.inferred_state(x[:, :, 0]))
    z2 = model.step(0.5 * model.inferred_state(x[:, :, 1]) + 0.5 * z1)
    torch.testing.assert_close(half[:, :, 1], z2)


def test_window_restarts_from_zero(setup):
    model, x = setup
    ours = training_rollout(model, x, masks_for(MemberConfig(mode="window", window=8)))
    zero = torch.zeros(1, 2, 5, dtype=F64)
    ref = torch.cat([model.rollout(zero, 8), model.rollout(zero, 8), model.rollout(zero, 4)], 2)
    torch.testing.assert_close(ours, ref)


def test_truncated_bptt_keeps_the_forward_and_cuts_the_gradient(setup):
    model, x = setup
    x = x.clone().requires_grad_(True)
    ours = training_rollout(model, x, masks_for(MemberConfig(mode="tbptt", truncation=6)))
    free = model.rollout(model.inferred_state(x[:, :, 0]), 20)
    torch.testing.assert_close(ours, free)
    (g_late,) = torch.autograd.grad(ours[:, :, 10].sum(), x, retain_graph=True)
    (g_early,) = torch.autograd.grad(ours[:, :, 4].sum(), x)
    assert torch.count_nonzero(g_late[:, :, 0]) == 0  # s_11 does not see x_0 through the cut
    assert torch.count_nonzero(g_early[:, :, 0]) > 0


def test_random_and_annealed_tau():
    m = MemberConfig(mode="sparse", tau=20, tau_spread=5)
    g = torch.Generator().manual_seed(0)
    taus = set()
    for _ in range(40):
        force = schedule_masks([m], 60, 0, 1, [g])["force"][0]
        taus.add(int(torch.nonzero(force)[1]))
    assert taus <= set(range(15, 26)) and len(taus) > 5
    a = MemberConfig(mode="sparse", tau=40, tau_start=1)
    first = schedule_masks([a], 60, 0, 11, [g])["force"][0]
    last = schedule_masks([a], 60, 10, 11, [g])["force"][0]
    assert bool(first.all()) and int(torch.nonzero(last)[1]) == 40


def test_per_member_clipping():
    g = [torch.randn(3, 4, 4, dtype=F64) * 10, torch.randn(3, 4, dtype=F64) * 10]
    before = [t.clone() for t in g]
    norms = _clip_(g, torch.tensor([1.0, torch.inf, torch.inf], dtype=F64),
                   torch.tensor([torch.inf, 0.05, torch.inf], dtype=F64))
    after = torch.sqrt(sum((t.reshape(3, -1) ** 2).sum(1) for t in g))
    assert after[0] == pytest.approx(1.0, rel=1e-5)
    assert max(float(t[1].abs().max()) for t in g) <= 0.05
    for t, b in zip(g, before, strict=True):
        torch.testing.assert_close(t[2], b[2])  # member 2 untouched
    np.testing.assert_allclose(norms, torch.sqrt(sum((b.reshape(3, -1) ** 2).sum(1)
                                                     for b in before)))


MEMBERS = [
    MemberConfig(seed=0, mode="sparse", tau=5),
    MemberConfig(seed=1, mode="sparse", tau=10, tau_spread=3, clip_norm=0.5),
    MemberConfig(seed=2, mode="bptt", clip_value=0.01),
    MemberConfig(seed=3, mode="tbptt", truncation=7),
    MemberConfig(seed=4, mode="gtf", alpha=0.2),
    MemberConfig(seed=5, mode="window", window=10),
    MemberConfig(seed=6, mode="sparse", tau=8, tau_start=2),
]


@pytest.mark.parametrize("arch", ["plrnn", "lstm"])
def test_ensemble_members_equal_models_trained_alone(data, arch):
    settings = dataclasses.replace(SETTINGS, model=arch)
    joint = train(data, MEMBERS, settings, device="cpu", progress=False)
    for e in (0, 1, 2, 3, 5, 6):
        alone = train(data, [MEMBERS[e]], settings, device="cpu", progress=False)
        for (name, p), (_, q) in zip(joint.model.named_parameters(),
                                     alone.model.named_parameters(), strict=True):
            torch.testing.assert_close(p[e], q[0], rtol=1e-9, atol=1e-11, msg=f"{e} {name}")
        np.testing.assert_allclose(np.array(joint.history)[:, e], np.array(alone.history)[:, 0],
                                   rtol=1e-9)


def test_diverged_member_is_frozen_and_the_others_go_on(data, monkeypatch):
    original = training.new_state

    def exploding(*args, **kwargs):
        state = original(*args, **kwargs)
        with torch.no_grad():
            state.model.W[1] = 1e3  # member 1 overflows within a few steps
        return state

    monkeypatch.setattr(training, "new_state", exploding)
    members = [MemberConfig(seed=0, tau=5), MemberConfig(seed=1, mode="bptt"),
               MemberConfig(seed=2, tau=10)]
    state = train(data, members, SETTINGS, device="cpu", progress=False)
    div = state.diverged_epoch.numpy()
    assert div[1] == 0 and div[0] == -1 and div[2] == -1
    assert not bool(state.alive[1]) and bool(state.alive[0])
    assert torch.all(state.model.W[1][~torch.eye(6, dtype=torch.bool)] == 1e3)  # frozen
    hist = np.array(state.history)
    assert np.all(np.isnan(hist[:, 1])) and np.all(np.isfinite(hist[:, [0, 2]]))
    monkeypatch.setattr(training, "new_state", original)
    alone = train(data, [members[2]], SETTINGS, device="cpu", progress=False)
    torch.testing.assert_close(state.model.W[2], alone.model.W[0])
    rows = training.member_summary(state, members)
    assert rows[1]["diverged"] and rows[1]["diverged_epoch"] == 0 and not rows[0]["diverged"]


def test_checkpoint_resume_gives_the_same_run(data, tmp_path):
    ckpt = tmp_path / "ens.pt"
    members = MEMBERS[:3]
    straight = train(data, members, SETTINGS, device="cpu", progress=False)
    half = dataclasses.replace(SETTINGS, epochs=2)
    first = train(data, members, half, device="cpu", progress=False, checkpoint=ckpt)
    assert first.epoch == 2 and ckpt.exists()
    resumed = train(data, members, SETTINGS, device="cpu", progress=False, checkpoint=ckpt)
    assert resumed.epoch == 4
    for p, q in zip(straight.model.parameters(), resumed.model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    np.testing.assert_array_equal(np.array(straight.history), np.array(resumed.history))


def test_time_limit_stops_early_and_saves(data, tmp_path):
    ckpt = tmp_path / "t.pt"
    state = train(data, MEMBERS[:2], dataclasses.replace(SETTINGS, epochs=50), device="cpu",
                  progress=False, checkpoint=ckpt, checkpoint_every=1000, time_limit=0.0)
    assert state.epoch == 1 and ckpt.exists()


@pytest.mark.parametrize("member, match", [
    (MemberConfig(tau=0), "tau must be an integer in 1..30"),
    (MemberConfig(tau=31), "tau must be an integer in 1..30"),
    (MemberConfig(tau=10, tau_spread=10), "tau - tau_spread"),
    (MemberConfig(mode="tbptt"), "truncation"),
    (MemberConfig(mode="window", window=40), "window"),
    (MemberConfig(mode="gtf", alpha=1.5), "alpha"),
    (MemberConfig(mode="clip"), "unknown mode"),
    (MemberConfig(clip_norm=-1.0), "clip_norm"),
])
def test_bad_member_configs_fail_before_training(data, member, match):
    with pytest.raises(ValueError, match=match):
        train(data, [member], SETTINGS, progress=False)


@pytest.mark.parametrize("bad", [0, -1, True, 1.5])
def test_every_count_goes_through_the_one_check(bad):
    """Model sizes, training settings, metric options, sweep options and workers reject the
    same values with the same message (models.check_positive_int), and accept numpy ints."""
    from chaosrnn_utils import metrics, sweeps

    x = np.random.default_rng(0).standard_normal((200, 2))
    spec = sweeps.SweepSpec(name="s", dataset="lorenz", grid={"tau": [5]})
    calls = {
        "latent_dim": lambda v: make_model("plrnn", v, 3),
        "seq_len": lambda v: dataclasses.replace(SETTINGS, seq_len=v).validate(10**6),
        "n_bins": lambda v: metrics.state_space_divergence_binned(x, x, n_bins=v),
        "n_data": lambda v: dataclasses.replace(spec, n_data=v).validate(),
        "workers": lambda v: sweeps.run_sweep(spec, "unused", workers=v),
    }
    for name, call in calls.items():
        with pytest.raises(ValueError, match=f"^{name} must be a positive integer, got "):
            call(bad)
    assert make_model("plrnn", np.int64(4), 3).latent_dim == 4
    dataclasses.replace(SETTINGS, seq_len=np.int64(20)).validate(100)
    dataclasses.replace(spec, n_data=np.int64(500)).validate()


def test_bad_settings_and_data_fail_before_training(data):
    with pytest.raises(ValueError, match="exceeds"):
        train(data[:20], [MemberConfig(tau=5)], SETTINGS, progress=False)
    with pytest.raises(ValueError, match="NaN"):
        train(np.full((100, 3), np.nan), [MemberConfig(tau=5)], SETTINGS, progress=False)
    with pytest.raises(ValueError, match="dtype"):
        train(data, [MemberConfig(tau=5)], dataclasses.replace(SETTINGS, dtype="half"),
              progress=False)
    with pytest.raises(KeyError):
        train(data, [MemberConfig(tau=5)], dataclasses.replace(SETTINGS, model="gru"),
              progress=False)


def test_batch_windows_equal_the_element_gather():
    """A batch of whole windows (one index_select of a strided view of the series) equals
    the element-wise gather x[s + (0..T)] it replaced, exactly (a copy, no arithmetic), for
    starts that include the first and the last valid one; a series without a single window
    of T + 1 steps is refused."""
    from chaosrnn_utils.training import all_windows, batch_windows

    T = 7
    x = torch.randn(40, 3, generator=torch.Generator().manual_seed(0))
    starts = torch.randint(0, 40 - T, (4, 5), generator=torch.Generator().manual_seed(1))
    starts[0, 0], starts[-1, -1] = 0, 40 - T - 1
    got = batch_windows(all_windows(x, T), starts)
    assert got.shape == (4, 5, T + 1, 3)
    assert torch.equal(got, x[starts[..., None] + torch.arange(T + 1)])
    assert torch.equal(got[-1, -1, -1], x[-1])
    with pytest.raises(ValueError, match="no window"):
        all_windows(x[:T], T)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layout", ["engine", "contiguous"])
def test_member_mse_equals_the_autograd_graph(dtype, layout):
    """The one-pass per-member loss against autograd's graph of ((x − x̂)²).mean over every
    axis but the member's: loss and ∂/∂x̂ for weights ḡ per member, with predictions laid
    out as the fused engine returns them (a view of an (E, T, N, B) block) and contiguous.
    Same formula and rounding order, so agreement to a few units of the last place (a
    missing factor 2, sign or 1/n gives O(1)); a target that needs a gradient gets the
    opposite one."""
    from chaosrnn_utils.training import member_mse

    gen = torch.Generator().manual_seed(3)
    E, T, B, N = 4, 9, 5, 3
    x = torch.randn(E, B, T + 1, N, dtype=dtype, generator=gen)
    target = x[:, :, 1:].transpose(1, 2)
    block = torch.randn(E, T, N, B, dtype=dtype, generator=gen)
    base = block.transpose(2, 3) if layout == "engine" else block.transpose(2, 3).contiguous()
    w = torch.rand(E, dtype=dtype, generator=gen)
    p_ref, p = base.clone().requires_grad_(), base.clone().requires_grad_()
    ref = ((target - p_ref) ** 2).mean(dim=(1, 2, 3))
    (ref * w).sum().backward()
    got = member_mse(p, target)
    (got * w).sum().backward()
    tol = dict(rtol=4 * torch.finfo(dtype).eps, atol=0.0)
    torch.testing.assert_close(got, ref, **tol)
    torch.testing.assert_close(p.grad, p_ref.grad, **tol)
    t = target.clone().requires_grad_()
    member_mse(p.detach(), t).sum().backward()
    torch.testing.assert_close(t.grad, -p_ref.grad / w[:, None, None, None], rtol=1e-5,
                               atol=0.0)
