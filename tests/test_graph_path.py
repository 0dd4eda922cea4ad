"""The CUDA-graph path's pieces that run on the CPU too: masks and mixing coefficients built
from per-member periods (on the device, no host loop) against the host-built reference,
the plan's coefficient block, and resuming a non-capturable Adam state for capture."""

from __future__ import annotations

import numpy as np
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
    TrainSettings,
    load_checkpoint,
    make_capturable,
    member_generators,
    new_state,
    save_checkpoint,
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


def test_resuming_a_cpu_checkpoint_for_capture(tmp_path):
    """A non-capturable checkpoint (written on the CPU) restored into a state: afterwards
    every param group is capturable and each Adam step is a tensor on its parameter's
    device with the same count."""
    t = np.arange(600) * 0.05
    data = np.column_stack([np.sin(t), np.cos(1.3 * t), np.sin(0.4 * t)])
    s = TrainSettings(model="plrnn", latent_dim=4, seq_len=10, batch_size=2,
                      batches_per_epoch=2, epochs=1, dtype="float64")
    ckpt = tmp_path / "c.pt"
    done = train(data, MEMBERS[:2], s, device="cpu", progress=False, checkpoint=ckpt)
    assert not done.optimizer.param_groups[0]["capturable"]
    state = load_checkpoint(new_state(MEMBERS[:2], s, 3, device="cpu"), ckpt)
    make_capturable(state.optimizer)
    for group in state.optimizer.param_groups:
        assert group["capturable"]
        for p in group["params"]:
            step = state.optimizer.state[p]["step"]
            assert torch.is_tensor(step) and step.device == p.device
            assert float(step) == s.batches_per_epoch
    # the move itself, to a device other than the host's ("meta" stands in for CUDA)
    p = torch.nn.Parameter(torch.zeros(3, device="meta"))
    opt = torch.optim.Adam([p])
    opt.state[p]["step"] = torch.tensor(5.0)
    make_capturable(opt)
    assert opt.state[p]["step"].device.type == "meta" and opt.param_groups[0]["capturable"]
    save_checkpoint(state, tmp_path / "again.pt")  # a capturable state still saves
