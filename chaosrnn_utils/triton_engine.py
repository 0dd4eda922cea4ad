"""The forced training rollout's time loop as one Triton kernel per direction (GPU engine).

Same interface, numbers and gradients as :mod:`.fused` (the reference, tested against it
in the Triton interpreter). The work is split into what is sequential in time and what is
not: the two kernels run only the recurrence, one program per member × batch tile over the
whole window,

    s̃_t = a_t s_t + b_t u_t   (u_t = B⁺x_t),   s_{t+1} = F_θ(s̃_t)                 (forward)
    ḡ_t = ∂L/∂s_{t+1} + a_{t+1}-carry,  ∂L/∂s̃_t = (∂F/∂s̃_t)ᵀ ḡ_t,
    ∂L/∂u_t = b̄_t ∂L/∂s̃_t,   carry to step t − 1: ā_t ∂L/∂s̃_t                     (backward)

with the per-step coefficients (a, b, ā, b̄) = (a, b, a_bwd, b_bwd) (ā, b̄: a, b zeroed at the
cut steps of truncated BPTT) read from one (4, T, E) device array, and
store s̃_t, s_{t+1} (LSTM: also c̃_t and c_{t+1}) and the pre-activation gradients. All
that is parallel in time — u = yB, x̂ = sBᵀ, ∂L/∂s = gx B and every parameter gradient
Σ_t (·)ᵀ(·) — is one batched matmul each, outside the kernels. The backward recomputes the
LSTM's gates from the stored s̃_t.

Every product is an explicit multiply-add over one column at a time (no ``tl.dot``, no
sum of broadcast products, which Triton rewrites into a TF32 tensor-core dot): float32 runs
in IEEE float32 on every GPU (checked on the compiled sm_90 code by the tests).

Triton is imported lazily: the package imports without it, and :func:`available` tells
whether this engine can run on a device (CUDA and Triton present, not switched off by
``CHAOSRNN_TRITON=0``).
"""

from __future__ import annotations

import functools
import os
from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from . import fused
from .models import LSTM, EnsembleRNN, TanhRNN

ARCHS = {"plrnn": 0, "rnn": 1, "lstm": 2}


def available(device: torch.device | str) -> bool:
    """Whether the Triton engine runs on ``device``: CUDA, Triton installed, not disabled
    with the environment variable ``CHAOSRNN_TRITON=0``."""
    if torch.device(device).type != "cuda" or os.environ.get("CHAOSRNN_TRITON", "1") == "0":
        return False
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def arch_of(model: EnsembleRNN) -> str:
    """``plrnn``, ``rnn`` or ``lstm`` (TypeError for a model without a fused rollout)."""
    if not fused.supports(model):
        raise TypeError(f"no Triton rollout for {type(model).__name__}; "
                        f"supported: {', '.join(c.__name__ for c in fused.FUSED_MODELS)}")
    return "lstm" if isinstance(model, LSTM) else "rnn" if isinstance(model, TanhRNN) \
        else "plrnn"


@functools.cache
def kernels() -> tuple[Any, Any]:
    """(forward, backward) Triton kernels (imports Triton; each is compiled on first use)."""
    from . import triton_kernels

    return triton_kernels.rollout_fwd, triton_kernels.rollout_bwd


def _launch(kernel: Any, arrays: list[Tensor], E: int, T: int, nb: int, M: int,
            arch: int) -> None:
    block_b = min(triton_next_pow2(nb), 32)
    grid = (E, -(-nb // block_b))
    kernel[grid](*arrays, E, T=T, NB=nb, M=M, BLOCK_B=block_b, MP=triton_next_pow2(M),
                 ARCH=arch)


def triton_next_pow2(n: int) -> int:
    """The smallest power of two ≥ n (Triton block sizes are powers of two)."""
    return 1 << max(0, int(n) - 1).bit_length()


class _TritonRollout(torch.autograd.Function):
    """x̂ (E, T, B, N) of the mixed rollout from y (E, T, B, N) with B⁺x_t = y_t B; params:
    PLRNN (A, W, h, offdiag), tanh RNN (W, h), LSTM (W, b)."""

    @staticmethod
    def forward(ctx, y: Tensor, B: Tensor, coef: Tensor, arch: str, *params: Tensor) -> Tensor:
        fwd, _ = kernels()
        E, T, nb, N = y.shape
        M = B.shape[-1]
        code = ARCHS[arch]
        if code == 0:
            A, W, h, offdiag = params
            w, v, diag = (W * offdiag).contiguous(), h.contiguous(), A.contiguous()
        else:
            w, v = (p.contiguous() for p in params)
            diag = v
        u = torch.bmm(y.reshape(E, T * nb, N), B).reshape(E, T, nb, M)
        st, z = torch.empty_like(u), torch.empty_like(u)
        ct, c = (torch.empty_like(u), torch.empty_like(u)) if code == 2 else (u, u)
        coef = coef.to(dtype=u.dtype).contiguous()
        _launch(fwd, [u, coef, w, v, diag, st, z, ct, c], E, T, nb, M, code)
        ctx.arch, ctx.coef = code, coef
        ctx.save_for_backward(y, B, w, v, diag, st, z, ct, c)
        return torch.bmm(z.reshape(E, T * nb, M), B.mT).reshape(E, T, nb, N)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_x: Tensor):
        _, bwd = kernels()
        y, B, w, v, diag, st, z, ct, c = ctx.saved_tensors
        code = ctx.arch
        E, T, nb, N = y.shape
        M = B.shape[-1]
        R = 4 * M if code == 2 else M
        gx = grad_x.contiguous().reshape(E, T * nb, N)
        gz = torch.bmm(gx, B).reshape(E, T, nb, M)
        gp = torch.empty(E, T, nb, R, dtype=gz.dtype, device=gz.device)
        gu = torch.empty_like(gz)
        _launch(bwd, [gz, ctx.coef, w, v, diag, st, z, ct, c, gp, gu], E, T, nb, M, code)
        gp, gu = gp.reshape(E, T * nb, R), gu.reshape(E, T * nb, M)
        st2, y2 = st.reshape(E, T * nb, M), y.reshape(E, T * nb, N)
        g_y = torch.bmm(gu, B.mT).reshape(E, T, nb, N)
        gB = torch.bmm(gx.mT, z.reshape(E, T * nb, M)) + torch.bmm(y2.mT, gu)
        if code == 0:
            gW = torch.bmm(gp.mT, torch.relu(st2)) * _offdiag_mask(M, gp)
            return (g_y, gB, None, None, (gp * st2).sum(1), gW, gp.sum(1), None)
        return (g_y, gB, None, None, torch.bmm(gp.mT, st2), gp.sum(1))


def _offdiag_mask(M: int, like: Tensor) -> Tensor:
    """1 off the diagonal, 0 on it (M, M), in ``like``'s dtype and device."""
    return 1 - torch.eye(M, dtype=like.dtype, device=like.device)


def triton_predictions(model: EnsembleRNN, x: Tensor, masks: dict[str, Tensor] | fused.Plan,
                       *, static: bool = False) -> Tensor:
    """:func:`~chaosrnn_utils.fused.fused_predictions` through the Triton kernels (same
    arguments, values, gradients and layout (E, T, B, N))."""
    arch = arch_of(model)
    y = fused.forcing_coordinates(model, x)
    if isinstance(masks, fused.Plan):
        coef = masks.coef
        if coef is None:
            coef = torch.stack([torch.stack(c)[..., 0, 0] for c in
                                (masks.a, masks.b, masks.a_bwd, masks.b_bwd)])
    else:
        coef = torch.stack(fused.mixing_coefficients(masks)).transpose(1, 2)
    coef = coef.to(dtype=y.dtype, device=y.device)
    return _TritonRollout.apply(y, model.B, coef, arch, *fused.cell_parameters(model))


def predictions(model: EnsembleRNN, x: Tensor, masks: dict[str, Tensor] | fused.Plan, *,
                static: bool = False) -> Tensor:
    """The engine for ``model``'s device: Triton on CUDA when :func:`available`, else
    :func:`~chaosrnn_utils.fused.fused_predictions`."""
    if available(model.device):
        return triton_predictions(model, x, masks, static=static)
    return fused.fused_predictions(model, x, masks, static=static)
