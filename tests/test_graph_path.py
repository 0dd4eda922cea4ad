"""The CUDA-graph path's pieces that run on the CPU too: masks and mixing coefficients built
from per-member periods (on the device, no host loop) against the host-built reference,
the plan's coefficient block; the one Adam of every path (nothing read back to the host,
as a graph capture needs) and resume from a checkpoint read on the CPU whatever the training
device."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chaosrnn_utils import fused
from chaosrnn_utils.forcing import (
    MemberConfig,
    batch_periods,
    member_codes,
    periodic_masks,
    schedule_masks,
)
from chaosrnn_utils.training import (
    Adam,
    TrainSettings,
    load_checkpoint,
    member_generators,
    new_state,
    train,
)

MEMBERS = [MemberConfig(seed=0, mode="sparse", tau=7), MemberConfig(seed=1, mode="teacher"),
           MemberConfig(seed=2, mode="bptt"), MemberConfig(seed=3, mode="tbptt", truncation=5),
           MemberConfig(seed=4, mode="window", window=6),
           MemberConfig(seed=5, mode="gtf", alpha=0.3),
           MemberConfig(seed=6, mode="sparse", tau=10, tau_spread=3),
           MemberConfig(seed=7, mode="sparse", tau=9, tau_start=2),
           MemberConfig(seed=8, mode="sparse", tau=1, alpha=0.5)]  # α of a non-gtf: unused


def test_periodic_masks_equal_the_host_masks():
    """Over annealed and random τ, every batch of 3 epochs: the same masks and the same
    float64 coefficients (exactly), and the generators end in the same states."""
    T, epochs = 23, 3
    g_ref, g_new = member_generators(MEMBERS), member_generators(MEMBERS)
    codes, alpha = member_codes(MEMBERS)
    for epoch in range(epochs):
        for _ in range(4):
            ref = schedule_masks(MEMBERS, T, epoch, epochs, g_ref)
            new = periodic_masks(codes, alpha, batch_periods(MEMBERS, epoch, epochs, g_new), T)
            for key in ("force", "zero", "cut", "alpha"):
                assert torch.equal(ref[key], new[key]), key
            for a, b in zip(fused.mixing_coefficients(ref), fused.mixing_coefficients(new),
                            strict=True):
                assert torch.equal(a, b)
    for a, b in zip(g_ref, g_new, strict=True):
        assert torch.equal(a.get_state(), b.get_state())


def test_plan_coefficient_block_matches_its_steps():
    masks = schedule_masks(MEMBERS, 11, 0, 1, member_generators(MEMBERS))
    for plan in (fused.make_plan(masks, dtype=torch.float64, device=torch.device("cpu")),
                 fused.StaticPlan(masks, dtype=torch.float64, device=torch.device("cpu")).plan):
        for k, steps in enumerate((plan.a, plan.b, plan.a_bwd, plan.b_bwd)):
            assert torch.equal(plan.coef[k], torch.stack(steps)[..., 0, 0])
    ref = torch.stack(fused.mixing_coefficients(masks)).transpose(1, 2)
    assert torch.equal(plan.coef, ref)


def _short_run(tmp_path, **kw):
    t = np.arange(600) * 0.05
    data = np.column_stack([np.sin(t), np.cos(1.3 * t), np.sin(0.4 * t)])
    s = TrainSettings(model="lstm", latent_dim=4, seq_len=10, batch_size=2,
                      batches_per_epoch=2, epochs=3, dtype="float64")
    ckpt = tmp_path / "c.pt"
    return data, s, ckpt, train(data, MEMBERS[:3], s, device="cpu", progress=False,
                                checkpoint=ckpt, **kw)


def test_resume_reads_the_checkpoint_on_the_cpu_whatever_the_training_device(tmp_path,
                                                                             monkeypatch):
    """A state whose model reports another device ("meta" stands in for CUDA): reading the
    checkpoint onto that device would leave every tensor off the CPU (generator states
    that ``Generator.set_state`` refuses, parameters with no data), as on the GPU; read on
    the CPU and moved part by part, it restores the state exactly."""
    data, s, ckpt, done = _short_run(tmp_path, time_limit=1e-9)
    assert done.epoch == 1
    state = new_state(MEMBERS[:3], s, 3, device="cpu")
    monkeypatch.setattr(type(state.model), "device", property(lambda m: torch.device("meta")))
    load_checkpoint(state, ckpt)
    monkeypatch.undo()
    assert state.epoch == done.epoch and state.wall_time == done.wall_time
    for g, h in zip(state.generators, done.generators, strict=True):
        assert torch.equal(g.get_state(), h.get_state())
    for p, q in zip(state.model.parameters(), done.model.parameters(), strict=True):
        assert torch.equal(p, q)
        a, b = state.optimizer.state[p], done.optimizer.state[q]
        assert a["step"].dtype == p.dtype and float(a["step"]) == s.batches_per_epoch
        assert torch.equal(a["exp_avg"], b["exp_avg"])
        assert torch.equal(a["exp_avg_sq"], b["exp_avg_sq"])
    assert torch.equal(state.alive, done.alive)


def test_adam_equals_torch_adam_to_rounding_and_reads_its_state():
    """The engine's Adam against ``torch.optim.Adam`` (float64, 20 steps of random
    gradients): equal to rounding (the bias corrections differ in their last bits); a
    torch Adam state (a capturable one from a GPU: float32 step on the device) restored
    into it continues the same run."""
    gen = torch.Generator().manual_seed(0)
    p0 = torch.randn(5, 4, dtype=torch.float64, generator=gen)
    grads = [torch.randn(5, 4, dtype=torch.float64, generator=gen) for _ in range(20)]
    ours, ref = torch.nn.Parameter(p0.clone()), torch.nn.Parameter(p0.clone())
    opt, opt_ref = Adam([ours], lr=1e-2), torch.optim.Adam([ref], lr=1e-2, foreach=False)
    for k, g in enumerate(grads):
        for o, q in ((opt, ours), (opt_ref, ref)):
            q.grad = g.clone()
            o.step()
        if k == 9:  # resume from torch's state, its step as a capturable Adam keeps it
            blob = opt_ref.state_dict()
            blob["state"][0]["step"] = blob["state"][0]["step"].to(torch.float32)
            blob["param_groups"][0]["capturable"] = True
            with torch.no_grad():
                ours.copy_(ref)
            opt = Adam([ours], lr=1e-2)
            opt.load_state_dict(blob)
            assert opt.state[ours]["step"].dtype == torch.float64
            assert sorted(opt.param_groups[0]) == ["betas", "eps", "lr", "params"]
    torch.testing.assert_close(ours, ref, rtol=1e-13, atol=1e-15)
    with pytest.raises(ValueError, match="amsgrad=True does not fit"):
        Adam([ours]).load_state_dict(torch.optim.Adam([ref], amsgrad=True).state_dict())


def test_adam_step_reads_nothing_back_to_the_host():
    """A captured CUDA graph replays device work only: an optimizer step that reads a value
    back (torch's non-capturable Adam reads its step count) cannot be captured, and a
    capturable torch Adam is refused off CUDA. On "meta" parameters (no data: any read-back
    fails) the engine's Adam steps, and its state moves with the parameters."""
    p = torch.nn.Parameter(torch.zeros(3, 2, device="meta"))
    p.grad = torch.zeros(3, 2, device="meta")
    opt = Adam([p])
    opt.step()
    opt.step()
    assert opt.state[p]["step"].device.type == "meta"
    cpu = torch.nn.Parameter(torch.zeros(3, 2, dtype=torch.float64))
    cpu.grad = torch.ones(3, 2, dtype=torch.float64)
    opt_cpu = Adam([cpu])
    opt_cpu.step()
    opt.load_state_dict(opt_cpu.state_dict())
    for key in ("step", "exp_avg", "exp_avg_sq"):
        assert opt.state[p][key].device.type == "meta"
        assert opt.state[p][key].dtype == p.dtype
