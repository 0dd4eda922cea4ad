"""Forced training rollouts with hand-written backpropagation through time.

The reference path (:func:`chaosrnn_utils.training.training_rollout`) lets autograd record
every time step: at this model size the cost is the per-operation overhead of the recorded
graph, not arithmetic. Here the forward loop runs without a graph and keeps only what the
backward needs, and the backward loop is written out: a time step costs a handful of tensor
operations in each direction, parameter gradients accumulate in place (Σ_t g_tᵀ φ(s̃_t) as one
batched matmul-add per step), and nothing of size (E, T, B, M) is materialised (on the CPU,
tensors beyond glibc's 32 MiB mmap threshold cost page faults at every update). Tests check
it against the autograd path (predictions, loss and every gradient, every mode).

Every training mode is one per-member affine mix before each step (the schedule's masks,
:mod:`.forcing`, turned into coefficients by :func:`mixing_coefficients`):

    s̃_t = a_{e,t} s_t + b_{e,t} B⁺x_t,   s_{t+1} = F_θ(s̃_t)

force: (a, b) = (0, 1); free step: (1, 0); window restart: (0, 0); generalised teacher
forcing: (1 − α, α) (after forcing); t = 0: (0, 1). The backward uses copies (a_bwd, b_bwd)
that truncated BPTT sets to zero at cut steps while the forward keeps (a, b). The backward
recursion is

    ḡ_t = ∂L/∂s_{t+1} + a_bwd_{t+1} (∂F/∂s̃_{t+1})ᵀ ḡ_{t+1},
    ∂L/∂(B⁺x_t) = b_bwd_t (∂F/∂s̃_t)ᵀ ḡ_t.

Supported: :class:`~chaosrnn_utils.models.PLRNN`, :class:`~chaosrnn_utils.models.TanhRNN`
and :class:`~chaosrnn_utils.models.LSTM` (forced through h, cell state reset to 0). Other
models use the autograd path.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .models import LSTM, PLRNN, EnsembleRNN, TanhRNN

FUSED_MODELS = (PLRNN, TanhRNN, LSTM)


def supports(model: EnsembleRNN) -> bool:
    """Whether :func:`fused_predictions` has a hand-written backward for this model class."""
    return type(model) in FUSED_MODELS


def cell_parameters(model: EnsembleRNN) -> tuple[Tensor, ...]:
    """What the engines' cells take besides B: PLRNN (A, W, h, 1 − I), tanh RNN (W, h),
    LSTM (W, b)."""
    if isinstance(model, LSTM):
        return model.W, model.b
    if isinstance(model, TanhRNN):
        return model.W, model.h
    return model.A, model.W, model.h, model.offdiag_mask


@dataclass
class Plan:
    """Per-step mixing coefficients, on the device, shaped (E, 1, 1) per step, and host-side
    flags that skip the work a step does not need (no device synchronisation)."""

    a: tuple[Tensor, ...]
    b: tuple[Tensor, ...]
    a_bwd: tuple[Tensor, ...]
    b_bwd: tuple[Tensor, ...]
    fwd: list[str]  # per step: "keep" (s̃ = s), "infer" (s̃ = B⁺x), "mix"
    bwd_carry: list[str]  # "pass" (a_bwd = 1), "none" (a_bwd = 0), "scale"
    bwd_infer: list[bool]  # whether any b_bwd ≠ 0
    coef: Tensor | None = None  # (4, T, E): a, b, a_bwd, b_bwd in one block (Triton's input)


def mixing_coefficients(masks: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(a, b, a_bwd, b_bwd), each (E, T), from the ``force``/``zero``/``cut``/``alpha`` masks of
    :func:`~chaosrnn_utils.forcing.schedule_masks` (forward and backward coefficients)."""
    force, zero, cut = masks["force"], masks["zero"], masks["cut"]
    alpha = masks["alpha"].to(torch.float64)[:, None]
    E, T = force.shape
    a = torch.where(force, 0.0, 1.0).to(torch.float64)
    b = torch.where(force, 1.0, 0.0).to(torch.float64)
    a, b = (1 - alpha) * a, alpha + (1 - alpha) * b
    a[:, 0], b[:, 0] = 0.0, 1.0  # s̃_0 = B⁺x_0
    a, b = torch.where(zero, 0.0, a), torch.where(zero, 0.0, b)
    keep = (~cut).to(torch.float64)
    return a, b, a * keep, b * keep


def make_plan(masks: dict[str, Tensor], *, dtype: torch.dtype, device: torch.device,
              static: bool = False) -> Plan:
    """The :class:`Plan` of one batch's masks. ``static``: the general mix at every step, so
    that the sequence of operations does not depend on the masks (what a captured CUDA graph
    replayed with new coefficients needs); same numbers, more work."""
    a, b, a_bwd, b_bwd = mixing_coefficients(masks)

    coef = torch.stack((a, b, a_bwd, b_bwd)).transpose(1, 2).to(dtype=dtype, device=device)

    def steps(c: Tensor) -> tuple[Tensor, ...]:  # (T, E) -> T × (E, 1, 1)
        return c[:, :, None, None].unbind(0)

    fwd = ["keep" if k else "infer" if i else "mix" for k, i in zip(
        ((a == 1) & (b == 0)).all(0).tolist(), ((a == 0) & (b == 1)).all(0).tolist(),
        strict=True)]
    carry = ["pass" if p else "none" if n else "scale" for p, n in zip(
        (a_bwd == 1).all(0).tolist(), (a_bwd == 0).all(0).tolist(), strict=True)]
    infer = (b_bwd != 0).any(0).tolist()
    if static:
        T = a.shape[1]
        fwd, carry, infer = ["infer"] + ["mix"] * (T - 1), ["scale"] * T, [True] * T
        if not bool((a[:, 0] == 0).all() & (b[:, 0] == 1).all()):
            fwd[0] = "mix"
    return Plan(*(steps(c) for c in coef.contiguous().unbind(0)), fwd, carry, infer,
                coef.contiguous())


def _mix(plan: Plan, t: int, s: Tensor | None, inferred: Tensor | None) -> Tensor:
    """s̃_t = a_t s_t + b_t B⁺x_t (skipping what the step's kind does not need)."""
    kind = plan.fwd[t]
    if kind == "keep":
        return s
    if kind == "infer":
        return inferred
    if s is None:  # t = 0 with some members restarting from zero
        return inferred * plan.b[t]
    return torch.addcmul(s * plan.a[t], inferred, plan.b[t])


def _mix_cell(plan: Plan, t: int, c: Tensor | None, like: Tensor) -> Tensor:
    """The LSTM cell state after mixing: c̃_t = a_t c_t (forcing resets it to 0)."""
    kind = plan.fwd[t]
    if c is None or kind == "infer":
        return torch.zeros_like(like)
    return c if kind == "keep" else c * plan.a[t]


def _carry(plan: Plan, t: int, g: Tensor | None) -> Tensor | None:
    """The part of ∂L/∂s̃_t that reaches s_t: a_t ∂L/∂s̃_t (None when it is zero)."""
    kind = plan.bwd_carry[t]
    if g is None or t == 0 or kind == "none":
        return None
    return g if kind == "pass" else g * plan.a_bwd[t]


def _tanh(x: Tensor, native: bool) -> Tensor:
    """tanh x = 2σ(2x) − 1: on the CPU torch's tanh costs about 2.5 sigmoids (measured at
    (50, 32, 30)); the identity costs one plus two in-place scalings. ``native`` (the cells
    set it on a GPU) uses tanh itself."""
    if native:
        return torch.tanh(x)
    return torch.sigmoid(x * 2).mul_(2).sub_(1)


class _PLRNNCell:
    """z' = A ⊙ s̃ + W_off relu(s̃) + h; ∂L/∂s̃ = A ⊙ g + 1[s̃ > 0] ⊙ W_offᵀ g (states
    feature-major, (E, M, B))."""

    has_cell = False

    def __init__(self, A: Tensor, W: Tensor, h: Tensor, offdiag: Tensor) -> None:
        self.Ab, self.hb, self.offdiag = A[:, :, None], h[:, :, None], offdiag
        self.Wo = W * offdiag

    def forward(self, st: Tensor, ct: Tensor | None) -> tuple[Tensor, None, tuple]:
        # h + W_off relu(s̃) first, then A ⊙ s̃ in place: an out-of-place addcmul whose first
        # operand is broadcast, (E, M, 1), runs an unvectorised loop (measured 25 against
        # 4.6 µs in place at E = 50, M = 30, B = 32)
        z = torch.baddbmm(self.hb, self.Wo, torch.relu(st)).addcmul_(self.Ab, st)
        return z, None, (st,)  # relu s̃ is recomputed in the backward: less memory traffic

    def zero_grads(self, like: Tensor) -> list[Tensor]:
        return [torch.zeros_like(like), torch.zeros_like(self.Wo), torch.zeros_like(like)]

    def backward(self, saved: tuple, g: Tensor, gc: Tensor | None, acc: list[Tensor]
                 ) -> tuple[Tensor, None]:
        (st,) = saved
        gA, gW, gh = acc
        gA.addcmul_(g, st)
        gW.baddbmm_(g, torch.relu(st).mT)
        gh.add_(g)
        # 1[s̃ > 0] ⊙ W_offᵀ g in one pass: relu's own backward
        gs = torch.ops.aten.threshold_backward(torch.bmm(self.Wo.mT, g), st, 0.0)
        return gs.addcmul_(self.Ab, g), None

    def param_grads(self, acc: list[Tensor]) -> tuple[Tensor | None, ...]:
        gA, gW, gh = acc
        return gA.sum(2), gW * self.offdiag, gh.sum(2), None


class _TanhCell:
    """z' = tanh(W s̃ + h); ∂L/∂s̃ = Wᵀ((1 − z'²) ⊙ g) (states feature-major, (E, M, B))."""

    has_cell = False

    def __init__(self, W: Tensor, h: Tensor, native: bool | None = None) -> None:
        self.W, self.hb = W, h[:, :, None]
        self.native = W.is_cuda if native is None else native  # torch.tanh (GPUs) or:
        if not self.native:  # tanh x = 2σ(2x) − 1 with the 2 in W and h (exact: a power of 2)
            self.W2, self.hb2 = W * 2, self.hb * 2

    def forward(self, st: Tensor, ct: Tensor | None) -> tuple[Tensor, None, tuple]:
        if self.native:
            z = torch.tanh(torch.baddbmm(self.hb, self.W, st))
        else:
            z = torch.sigmoid(torch.baddbmm(self.hb2, self.W2, st)).mul_(2).sub_(1)
        return z, None, (st, z)

    def zero_grads(self, like: Tensor) -> list[Tensor]:
        return [torch.zeros_like(self.W), torch.zeros_like(like)]

    def backward(self, saved: tuple, g: Tensor, gc: Tensor | None, acc: list[Tensor]
                 ) -> tuple[Tensor, None]:
        st, z = saved
        gW, gh = acc
        gp = torch.addcmul(g, g * z, z, value=-1.0)  # (1 − z²) ⊙ g
        gW.baddbmm_(gp, st.mT)
        gh.add_(gp)
        return torch.bmm(self.W.mT, gp), None

    def param_grads(self, acc: list[Tensor]) -> tuple[Tensor, ...]:
        gW, gh = acc
        return gW, gh.sum(2)


class _LSTMCell:
    """Gates a = W h̃ + b = (i, f, g, o); c' = f ⊙ c̃ + i ⊙ g, h' = o ⊙ tanh(c').

    Feature-major states (E, M, B) make the gates aᵀ = W h̃ᵀ + b a (E, 4M, B) block whose
    four gates are contiguous (E, M, B) slices: no layout copy. g = tanh(a_g) = 2σ(2a_g) − 1,
    so the g rows of W and b are doubled and one sigmoid serves all four gates; then
    1 − g² = 4σ'(2a_g)."""

    has_cell = True

    def __init__(self, W: Tensor, b: Tensor, native: bool | None = None) -> None:
        self.native = W.is_cuda if native is None else native  # tanh of c': see _tanh
        M = W.shape[-1]
        scale = torch.ones(4 * M, dtype=W.dtype, device=W.device)
        scale[2 * M: 3 * M] = 2.0
        self.W, self.M = W, M
        self.Ws, self.bb = W * scale[:, None], (b * scale)[:, :, None]

    def forward(self, ht: Tensor, ct: Tensor) -> tuple[Tensor, Tensor, tuple]:
        E, M, nb = ht.shape
        G = torch.sigmoid(torch.baddbmm(self.bb, self.Ws, ht)).view(E, 4, M, nb)
        i, f, sg, o = G.unbind(1)
        g = sg * 2 - 1
        c = torch.addcmul(f * ct, i, g)
        tc = _tanh(c, self.native)
        return o * tc, c, (ht, ct, G, g, tc)

    def zero_grads(self, like: Tensor) -> list[Tensor]:
        # ∂L/∂W accumulated transposed, (E, M, 4M): h̃ (∂L/∂a)ᵀ is the faster product
        # (measured 115 against 167 µs at E = 50, B = 32, M = 30 on a Zen 5, one thread)
        E, M, nb = like.shape
        return [self.W.new_zeros(E, M, 4 * M), like.new_zeros(E, 4 * M, nb)]

    def backward(self, saved: tuple, gh: Tensor, gc: Tensor | None, acc: list[Tensor]
                 ) -> tuple[Tensor, Tensor]:
        ht, ct, G, g, tc = saved
        i, f, sg, o = G.unbind(1)
        gWt, gb = acc
        E, M, nb = ht.shape
        dh_dc = torch.addcmul(o, o * tc, tc, value=-1.0)  # o (1 − tanh² c')
        gc = gh * dh_dc if gc is None else torch.addcmul(gc, gh, dh_dc)
        da = torch.empty_like(G)  # ∂L/∂a, gate by gate: what multiplies each gate in c', h'
        for k, (u, v) in enumerate(((g, gc), (ct, gc), (i, gc), (tc, gh))):
            torch.mul(u, v, out=da[:, k])
        dgate = torch.addcmul(G, G, G, value=-1.0)  # σ(1 − σ) per gate
        # 1 − g² = 4σ(1 − σ) for σ = σ(2a_g), on the g block only (a (1, 4, 1, 1) factor
        # broadcast over the whole block took 9 µs at E = 50, M = 30, B = 32)
        dgate[:, 2].mul_(4.0)
        da.mul_(dgate)  # × ∂gate/∂a
        da = da.view(E, 4 * M, nb)
        gWt.baddbmm_(ht, da.mT)
        gb.add_(da)
        return torch.bmm(self.W.mT, da), gc * f

    def param_grads(self, acc: list[Tensor]) -> tuple[Tensor, ...]:
        gWt, gb = acc
        return gWt.mT.contiguous(), gb.sum(2)


class _FusedRollout(torch.autograd.Function):
    """x̂_{t+1} = B s_{t+1} of the mixed rollout whose forcing is B⁺x_t = x_t P, for inputs
    x_t (rows of ``xs``, (E, T, B, N), any strides) and P = (BBᵀ)⁻¹B (E, N, M), see
    :func:`forcing_projection` (P = B with y_t = xᵀ_t(BBᵀ)⁻¹ as inputs gives the same).

    Inside, states are feature-major, sᵀ (E, M, B): every product is then W sᵀ with the
    weights on the left, which MKL runs faster at these shapes than s Wᵀ (measured at
    E = 50, B = 32, M = 30, one thread on a Zen 5: 32 against 48 µs for the recurrent
    product, 12 against 41 µs for x̂ = B s), and the LSTM's gates are contiguous blocks.
    The predictions come back as a (E, T, B, N) view of a (E, T, N, B) block."""

    @staticmethod
    def forward(ctx, xs: Tensor, B: Tensor, P: Tensor, plan: Plan, make_cell,
                *params: Tensor) -> Tensor:
        cell = make_cell(*params)
        Pt = P.mT
        # the inputs of the steps that use them, feature-major and contiguous (a strided
        # operand can send bmm to a per-member loop)
        ys = [None if k == "keep" else x.mT.contiguous() for k, x in zip(plan.fwd, xs.unbind(1),
                                                                         strict=True)]
        h = c = None
        saved, zs, xh = [], [], []
        for t in range(len(ys)):
            inferred = None if plan.fwd[t] == "keep" else torch.bmm(Pt, ys[t])
            ht = _mix(plan, t, h, inferred)
            ct = _mix_cell(plan, t, c, ht) if cell.has_cell else None
            h, c, keep = cell.forward(ht, ct)
            saved.append(keep)
            zs.append(h)
            xh.append(torch.bmm(B, h))
        ctx.cell, ctx.plan, ctx.steps = cell, plan, (ys, saved, zs)
        ctx.save_for_backward(B, P)
        return torch.stack(xh, dim=1).transpose(2, 3)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_x: Tensor):
        B, P = ctx.saved_tensors
        cell, plan = ctx.cell, ctx.plan
        ys, saved, zs = ctx.steps
        Bt = B.mT
        need_xs = ctx.needs_input_grad[0]
        # per step (E, N, B), contiguous: a transposed left operand triples gB's product
        gx = grad_x.transpose(2, 3).contiguous().unbind(1)
        acc = cell.zero_grads(zs[0])
        # new_zeros, not zeros_like: P comes from LAPACK in column-major strides, and a
        # transposed accumulator sends baddbmm_ to a per-member loop
        gB, gP = B.new_zeros(B.shape), P.new_zeros(P.shape)
        gy: list[Tensor | None] = [None] * len(gx)
        carry_h = carry_c = None
        for t in range(len(gx) - 1, -1, -1):
            # in place on the carried gradient (no longer needed): baddbmm would copy it first
            gh = torch.bmm(Bt, gx[t]) if carry_h is None else carry_h.baddbmm_(Bt, gx[t])
            gB.baddbmm_(gx[t], zs[t].mT)
            g_ht, g_ct = cell.backward(saved[t], gh, carry_c, acc)
            if plan.bwd_infer[t]:
                g_inf = g_ht * plan.b_bwd[t]
                if need_xs:
                    gy[t] = torch.bmm(P, g_inf)
                gP.baddbmm_(ys[t], g_inf.mT)
            carry_h, carry_c = _carry(plan, t, g_ht), _carry(plan, t, g_ct)
        del ctx.steps
        g_y = None
        if need_xs:
            zero = torch.zeros_like(gx[0])
            g_y = torch.stack([zero if g is None else g for g in gy], dim=1).transpose(2, 3)
        return (g_y, gB, gP, None, None) + cell.param_grads(acc)


def forcing_coordinates(model: EnsembleRNN, x: Tensor) -> Tensor:
    """y_t = xᵀ_t (BBᵀ)⁻¹ (E, T, B, N), time-major, so that B⁺x_t = y_t B, for windows
    x (E, B, T+1, N) (``solve_ex`` without its error check: no host synchronisation)."""
    if not supports(model):
        raise TypeError(f"no fused rollout for {type(model).__name__}; "
                        f"supported: {', '.join(c.__name__ for c in FUSED_MODELS)}")
    E, nb, T1, N = x.shape
    T = T1 - 1
    if model.latent_dim < model.obs_dim:
        model.inferred_state(x[:, :1, :1])  # raises the model's own error
    xt = torch.as_tensor(x, dtype=model.dtype, device=model.device)[:, :, :T].transpose(1, 2)
    gram = model.B @ model.B.mT  # B⁺x = y B with y = xᵀ(BBᵀ)⁻¹ (as in inferred_state)
    return torch.linalg.solve_ex(gram, xt.reshape(E, -1, N), left=False)[0].reshape(E, T, nb, N)


def forcing_projection(model: EnsembleRNN) -> Tensor:
    """P = (BBᵀ)⁻¹B (E, N, M), differentiable in B, so that B⁺x = x P for a row x (N,): the
    forcing without the per-update solve over all T·B inputs that :func:`forcing_coordinates`
    needs (one 3 × 3 solve per member instead; x needs no gradient)."""
    if not supports(model):
        raise TypeError(f"no fused rollout for {type(model).__name__}; "
                        f"supported: {', '.join(c.__name__ for c in FUSED_MODELS)}")
    return torch.linalg.solve_ex(model.B @ model.B.mT, model.B)[0].contiguous()


def fused_predictions(model: EnsembleRNN, x: Tensor, masks: dict[str, Tensor] | Plan, *,
                      static: bool = False) -> Tensor:
    """Predictions x̂_1..x̂_T = B s_1..B s_T of the forced training rollout on windows
    x (E, B, T+1, N), **time-major per member: (E, T, B, N)**.

    The same values and gradients as ``model.observe(training_rollout(model, x, masks))``
    (transposed), with the hand-written backward (``static``: see :func:`make_plan`; a
    prepared :class:`Plan` may be passed instead of the masks). No host synchronisation:
    B⁺x is a ``solve_ex`` without its error check (a singular BBᵀ gives non-finite values,
    which the training loop's divergence check catches)."""
    if supports(model) and model.latent_dim < model.obs_dim:
        model.inferred_state(x[:, :1, :1])  # raises the model's own error
    P = forcing_projection(model)
    T = x.shape[2] - 1
    xs = torch.as_tensor(x, dtype=model.dtype, device=model.device)[:, :, :T].transpose(1, 2)
    plan = masks if isinstance(masks, Plan) else make_plan(masks, dtype=xs.dtype,
                                                           device=xs.device, static=static)
    cell = _LSTMCell if isinstance(model, LSTM) else _TanhCell if isinstance(model, TanhRNN) \
        else _PLRNNCell
    return _FusedRollout.apply(xs, model.B, P, plan, cell, *cell_parameters(model))


class StaticPlan:
    """A :class:`Plan` over fixed coefficient buffers, refilled per batch with :meth:`load`:
    the operation sequence and every tensor address stay the same from batch to batch, as a
    captured CUDA graph needs. The host-side step kinds come from the first masks (all steps
    "mix", see :func:`make_plan`); later masks may differ in τ but not in whether members
    restart from zero at t = 0."""

    def __init__(self, masks: dict[str, Tensor], *, dtype: torch.dtype,
                 device: torch.device) -> None:
        E, T = masks["force"].shape
        self.buffers = torch.zeros(4, T, E, 1, 1, dtype=dtype, device=device)
        first = make_plan(masks, dtype=dtype, device=torch.device("cpu"), static=True)
        a, b, a_bwd, b_bwd = (c.unbind(0) for c in self.buffers)
        self.plan = Plan(a, b, a_bwd, b_bwd, first.fwd, first.bwd_carry, first.bwd_infer,
                         self.buffers.view(4, T, E))
        self.load(masks)

    def load(self, masks: dict[str, Tensor]) -> None:
        """Copy one batch's coefficients into the buffers (a host-to-device copy)."""
        coef = torch.stack(mixing_coefficients(masks))  # (4, E, T), float64, host
        self.buffers.copy_(coef.transpose(1, 2)[..., None, None], non_blocking=True)
