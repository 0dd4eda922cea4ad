"""The fused engine (hand-written backpropagation through time) against the autograd path:
predictions, loss and every gradient, for every mode mixed in one ensemble, in float64 and
float32 against a float64 reference within the rounding bound (M + 3)·T·ε of the dtype; and
whole training runs through both engines."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from chaosrnn_utils import fused
from chaosrnn_utils.forcing import MemberConfig, schedule_masks
from chaosrnn_utils.models import make_model
from chaosrnn_utils.training import TrainSettings, member_generators, train, training_rollout

# every mode, random and annealed τ, in one ensemble (the masks differ per member and step)
MEMBERS = [
    MemberConfig(seed=0, mode="sparse", tau=7),
    MemberConfig(seed=1, mode="teacher"),
    MemberConfig(seed=2, mode="bptt"),
    MemberConfig(seed=3, mode="tbptt", truncation=5),
    MemberConfig(seed=4, mode="window", window=6),
    MemberConfig(seed=5, mode="gtf", alpha=0.3),
    MemberConfig(seed=6, mode="sparse", tau=10, tau_spread=3),
    MemberConfig(seed=7, mode="sparse", tau=9, tau_start=2),
]
ARCHS = ["plrnn", "rnn", "lstm"]


def loss_and_grads(model, x, masks, engine: str):
    for p in model.parameters():
        p.grad = None
    if engine in ("fused", "static"):
        pred = fused.fused_predictions(model, x, masks, static=engine == "static")
        target = x[:, :, 1:].transpose(1, 2)
    else:
        pred, target = model.observe(training_rollout(model, x, masks)), x[:, :, 1:]
    loss = ((target - pred) ** 2).mean(dim=(1, 2, 3))
    loss.sum().backward()
    return pred, loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


def forward_error_bound(dtype: torch.dtype, latent: int, steps: int) -> float:
    """First-order bound on the rounding error of a T-step recurrence, relative to the size
    of the quantities: each step adds at most (M + 3)·ε (an M-term dot product, the bias, the
    nonlinearity and the forcing mix) and the Jacobians of a freshly initialised model have
    norm ≲ 1, so the errors of T steps add up: (M + 3)·T·ε. Forward and backward pass: twice
    that for the gradients."""
    return (latent + 3) * steps * torch.finfo(dtype).eps


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("arch", ARCHS)
def test_fused_equals_autograd_for_every_mode(arch, dtype):
    """Every engine in ``dtype`` against the autograd engine in float64 (the reference), with
    the tolerance the rounding of ``dtype`` allows: an error relative to each member's scale,
    not to each element (an element near 0 has a large relative error in any engine)."""
    E, T, M = len(MEMBERS), 23, 8
    model64 = make_model(arch, M, 3, n_models=E, seeds=list(range(E)), dtype=torch.float64)
    x64 = torch.randn(E, 5, T + 1, 3, dtype=torch.float64,
                      generator=torch.Generator().manual_seed(1))
    masks = schedule_masks(MEMBERS, T, 3, 10, member_generators(MEMBERS))
    p_ref, l_ref, g_ref = loss_and_grads(model64, x64, masks, "autograd")
    bound = forward_error_bound(dtype, M, T)
    model, x = model64.to(dtype), x64.to(dtype)
    for engine in ("autograd", "fused", "static"):  # static: the mask-independent op sequence
        p, loss, g = loss_and_grads(model, x, masks, engine)
        if engine != "autograd":
            p = p.transpose(1, 2)
        scale = p_ref.flatten(1).abs().max(dim=1).values  # (E,)
        err = (p.double() - p_ref).flatten(1).abs().max(dim=1).values
        assert bool((err <= bound * scale).all()), (engine, err / scale, bound)
        assert float(((loss.double() - l_ref).abs() / l_ref).max()) <= 2 * bound, engine
        for name, ref in g_ref.items():
            # per member: no member's gradient hides in another's norm
            per = ((g[name].double() - ref).flatten(1).norm(dim=1)
                   / ref.flatten(1).norm(dim=1))
            assert float(per.max()) <= 2 * bound, (engine, name, per, bound)


@pytest.mark.parametrize("cell, arch", [(fused._PLRNNCell, "plrnn"), (fused._LSTMCell, "lstm")])
def test_fused_gradients_are_cut_at_forcing_steps(cell, arch):
    """With forcing every τ steps a loss on steps ≥ 2τ sends no gradient to the inferred
    states before step 2τ (the forced state replaces the past; the LSTM's cell is reset)."""
    T, tau = 20, 5
    model = make_model(arch, 6, 3, dtype=torch.float64)
    masks = schedule_masks([MemberConfig(tau=tau)], T, 0, 1, [torch.Generator()])
    plan = fused.make_plan(masks, dtype=torch.float64, device=torch.device("cpu"))
    y = torch.randn(1, T, 2, 3, dtype=torch.float64, requires_grad=True)
    out = fused._FusedRollout.apply(y, model.B, model.B, plan, cell,
                                    *fused.cell_parameters(model))
    out[:, 2 * tau:].sum().backward()
    assert torch.all(y.grad[:, : 2 * tau] == 0)
    assert float(y.grad[:, 2 * tau].abs().sum()) > 0


def test_mixing_coefficients_closed_form():
    masks = schedule_masks([MemberConfig(tau=3), MemberConfig(mode="gtf", alpha=0.25),
                            MemberConfig(mode="window", window=4),
                            MemberConfig(mode="tbptt", truncation=2)], 8, 0, 1,
                           member_generators([MemberConfig()] * 4))
    a, b, a_bwd, b_bwd = fused.mixing_coefficients(masks)
    np.testing.assert_array_equal(a[0], [0, 1, 1, 0, 1, 1, 0, 1])
    np.testing.assert_array_equal(b[0], 1 - a[0])
    np.testing.assert_allclose(a[1, 1:], 0.75)
    np.testing.assert_allclose(b[1, 1:], 0.25)
    np.testing.assert_array_equal(a[2], [0, 1, 1, 1, 0, 1, 1, 1])
    np.testing.assert_array_equal(b[2], [0] * 8)
    np.testing.assert_array_equal(a_bwd[3], [0, 1, 0, 1, 0, 1, 0, 1])  # cut every 2 steps
    np.testing.assert_array_equal(a[3], [0, 1, 1, 1, 1, 1, 1, 1])  # the forward keeps them


@pytest.mark.parametrize("arch", ARCHS)
def test_training_runs_agree_between_engines(arch):
    t = np.arange(3000) * 0.05
    data = np.column_stack([np.sin(t), np.cos(1.3 * t), np.sin(0.4 * t)])
    s = TrainSettings(model=arch, latent_dim=6, seq_len=25, batch_size=4, batches_per_epoch=2,
                      epochs=3, dtype="float64")
    members = MEMBERS[:4] + [MemberConfig(seed=9, mode="bptt", clip_norm=0.05)]
    a = train(data, members, s, device="cpu", progress=False)
    b = train(data, members, dataclasses.replace(s, engine="autograd"), device="cpu",
              progress=False)
    for (name, p), (_, q) in zip(a.model.named_parameters(), b.model.named_parameters(),
                                 strict=True):
        torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12, msg=name)
    np.testing.assert_allclose(np.array(a.history), np.array(b.history), rtol=1e-10)


def test_unsupported_model_and_bad_engine():
    model = make_model("dendplrnn", 6, 3)
    assert not fused.supports(model) and fused.supports(make_model("lstm", 6, 3))
    x = torch.zeros(1, 2, 5, 3)
    masks = schedule_masks([MemberConfig(tau=2)], 4, 0, 1, [torch.Generator()])
    with pytest.raises(TypeError, match="no fused rollout for DendPLRNN"):
        fused.fused_predictions(model, x, masks)
    with pytest.raises(ValueError, match="unknown engine 'jit'"):
        TrainSettings(engine="jit").validate(1000)


@pytest.mark.parametrize("arch", ARCHS)
def test_static_training_equals_the_default_path(arch, tmp_path):
    """train(static=True): fixed buffers, mask-independent operations, in-place bookkeeping
    (what a CUDA graph replays): the same parameters, losses and divergence record, also
    across a checkpoint and resume."""
    t = np.arange(3000) * 0.05
    data = np.column_stack([np.sin(t), np.cos(1.3 * t), np.sin(0.4 * t)])
    s = TrainSettings(model=arch, latent_dim=6, seq_len=25, batch_size=4, batches_per_epoch=2,
                      epochs=4, dtype="float64")
    members = MEMBERS + [MemberConfig(seed=9, mode="bptt", clip_value=0.01)]
    a = train(data, members, s, device="cpu", progress=False)
    ckpt = tmp_path / "c.pt"  # stopped after one epoch by the time limit, then resumed
    first = train(data, members, s, device="cpu", progress=False, static=True,
                  checkpoint=ckpt, time_limit=1e-9)
    assert first.epoch == 1
    b = train(data, members, s, device="cpu", progress=False, static=True, checkpoint=ckpt)
    for (name, p), (_, q) in zip(a.model.named_parameters(), b.model.named_parameters(),
                                 strict=True):
        torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12, msg=name)
    np.testing.assert_allclose(np.array(a.history), np.array(b.history), rtol=1e-10)
    assert torch.equal(a.diverged_epoch, b.diverged_epoch)
    with pytest.raises(ValueError, match="static=True needs the fused engine"):
        train(data, members, dataclasses.replace(s, engine="autograd"), static=True,
              progress=False)


@pytest.mark.parametrize("arch", ARCHS)
def test_forcing_projection_equals_the_solved_coordinates(arch):
    """B⁺x = x P with P = (BBᵀ)⁻¹B (what the engine uses) against y B with y = xᵀ(BBᵀ)⁻¹
    solved for every input (:func:`fused.forcing_coordinates`, the Triton engine's input):
    P against the pseudo-inverse, then predictions and ∂L/∂B of the two formulations."""
    E, T, M = len(MEMBERS), 17, 8
    model = make_model(arch, M, 3, n_models=E, seeds=list(range(E)), dtype=torch.float64)
    x = torch.randn(E, 4, T + 1, 3, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(2))
    P = fused.forcing_projection(model)
    torch.testing.assert_close(P, torch.linalg.pinv(model.B).mT, rtol=1e-10, atol=1e-12)
    masks = schedule_masks(MEMBERS, T, 3, 10, member_generators(MEMBERS))
    plan = fused.make_plan(masks, dtype=torch.float64, device=torch.device("cpu"))
    cell = {"plrnn": fused._PLRNNCell, "rnn": fused._TanhCell, "lstm": fused._LSTMCell}[arch]
    outs, grads = [], []
    for solved in (False, True):
        model.zero_grad()
        if solved:
            xs, proj = fused.forcing_coordinates(model, x), model.B
        else:
            xs, proj = x[:, :, :T].transpose(1, 2), fused.forcing_projection(model)
        out = fused._FusedRollout.apply(xs, model.B, proj, plan, cell,
                                        *fused.cell_parameters(model))
        out.square().sum().backward()
        outs.append(out.detach())
        grads.append(model.B.grad.clone())
    # float64, T = 17: rounding gives ≈ (M + 3)·T·ε·cond(BBᵀ) ≈ 1e-12 at most; a wrong
    # projection (a transposed P, a missing Gram inverse) gives O(1)
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("arch", ARCHS)
def test_upstream_gradient_in_any_layout(arch):
    """The engine computes in a feature-major layout and copies the incoming ∂L/∂x̂ into it:
    a weighted loss Σ w ⊙ x̂ whose weights w (hence the incoming gradient) are stored in
    other layouts (contiguous (E, T, B, N); a transposed (E, T, N, B) block; every
    second element of a block) gives the autograd engine's predictions and gradients
    (float64: agreement to rounding, ≈ 1e-13 here; a mixed-up layout gives O(1))."""
    E, T = len(MEMBERS), 15
    model = make_model(arch, 5, 3, n_models=E, seeds=list(range(E)), dtype=torch.float64)
    x = torch.randn(E, 3, T + 1, 3, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(4))
    masks = schedule_masks(MEMBERS, T, 2, 10, member_generators(MEMBERS))
    w = torch.randn(E, T, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    layouts = {"contiguous": w.contiguous(), "transposed": w.transpose(2, 3).contiguous()
               .transpose(2, 3), "strided": torch.stack([w, 0 * w], dim=-1)[..., 0]}
    model.zero_grad()
    ref = model.observe(training_rollout(model, x, masks)).transpose(1, 2)
    (ref * w).sum().backward()
    want = {n: p.grad.clone() for n, p in model.named_parameters()}
    for name, weights in layouts.items():
        assert torch.equal(weights, w)
        model.zero_grad()
        pred = fused.fused_predictions(model, x, masks)
        (pred * weights).sum().backward()
        torch.testing.assert_close(pred, ref, rtol=1e-10, atol=1e-12, msg=name)
        for n, p in model.named_parameters():
            torch.testing.assert_close(p.grad, want[n], rtol=1e-10, atol=1e-12,
                                       msg=f"{name}: {n}")


@pytest.mark.parametrize("arch", ["rnn", "lstm"])
def test_the_gpu_tanh_path_on_the_cpu(arch):
    """On a GPU the tanh RNN and the LSTM's cell state use torch.tanh; on the CPU the
    identity tanh x = 2σ(2x) − 1 (cheaper there). The GPU branch, forced on the CPU, against
    the CPU branch: predictions and every gradient agree to float64 rounding (≈ 1e-15 per
    step; a wrong factor 2 or a missing bias gives O(1)), with every mode in the ensemble."""
    from functools import partial

    E, T, M = len(MEMBERS), 13, 6
    model = make_model(arch, M, 3, n_models=E, seeds=list(range(E)), dtype=torch.float64)
    x = torch.randn(E, 4, T + 1, 3, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(6))
    masks = schedule_masks(MEMBERS, T, 3, 10, member_generators(MEMBERS))
    plan = fused.make_plan(masks, dtype=torch.float64, device=torch.device("cpu"))
    cell = fused._TanhCell if arch == "rnn" else fused._LSTMCell
    xs = x[:, :, :T].transpose(1, 2)
    outs, grads = [], []
    for native in (False, True):
        model.zero_grad()
        out = fused._FusedRollout.apply(xs, model.B, fused.forcing_projection(model), plan,
                                        partial(cell, native=native),
                                        *fused.cell_parameters(model))
        out.square().sum().backward()
        outs.append(out.detach())
        grads.append([p.grad.clone() for p in model.parameters()])
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-10, atol=1e-12)
    for g_native, g_cpu in zip(grads[1], grads[0], strict=True):
        torch.testing.assert_close(g_native, g_cpu, rtol=1e-10, atol=1e-12)
