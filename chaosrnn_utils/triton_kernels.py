"""The Triton kernels of :mod:`.triton_engine` (imports Triton: loaded only by that module,
on first use). Math and layouts: see :mod:`.triton_engine`.

Offsets are 64-bit: an (E, T, NB, R) array passes 2³¹ − 1 elements at sizes that are run
(E = 1 050 members, T = 1 000 steps, NB = 32, R = 4·30 for the LSTM: 4.0e9), so the member
index is cast to int64 before any product (:func:`_tile`) and every offset built from it,
the step rows of :func:`_step_rows` included, is int64."""

import triton
import triton.language as tl


@triton.jit
def _sigmoid(x):
    return 1.0 / (1.0 + tl.exp(-x))


@triton.jit
def _tanh(x):
    return 2.0 / (1.0 + tl.exp(-2.0 * x)) - 1.0


@triton.jit
def _lstm_preactivations(st_ptr, rows, bm, wbase, om, mm, v0, v1, v2, v3, dtype: tl.constexpr,
                         M: tl.constexpr, BLOCK_B: tl.constexpr, MP: tl.constexpr):
    """The LSTM's gate pre-activations (i, f, g, o) = W h̃ + b of one batch tile, from the
    stored mixed state h̃ (rows ``rows`` of ``st_ptr``): one column of h̃ at a time, as explicit
    multiply-adds (no dot product that could become TF32)."""
    ai = tl.zeros((BLOCK_B, MP), dtype=dtype) + v0[None, :]
    af = tl.zeros((BLOCK_B, MP), dtype=dtype) + v1[None, :]
    ag = tl.zeros((BLOCK_B, MP), dtype=dtype) + v2[None, :]
    ao = tl.zeros((BLOCK_B, MP), dtype=dtype) + v3[None, :]
    for j in range(M):
        col = tl.load(st_ptr + rows * M + j, mask=bm, other=0.0)[:, None]
        ai += col * tl.load(wbase + om * M + j, mask=mm, other=0.0)[None, :]
        af += col * tl.load(wbase + (M + om) * M + j, mask=mm, other=0.0)[None, :]
        ag += col * tl.load(wbase + (2 * M + om) * M + j, mask=mm, other=0.0)[None, :]
        ao += col * tl.load(wbase + (3 * M + om) * M + j, mask=mm, other=0.0)[None, :]
    return ai, af, ag, ao


@triton.jit
def _tile(w_ptr, NB: tl.constexpr, M: tl.constexpr, BLOCK_B: tl.constexpr, MP: tl.constexpr,
          ARCH: tl.constexpr):
    """This program's tile: member e, batch rows ob (mask bm), latent columns om (mask mm),
    their 2-D mask m2, and the start of member e's weights (R × M, R = 4M for the LSTM)."""
    e = tl.program_id(0).to(tl.int64)  # every offset below is then 64-bit
    ob = tl.program_id(1) * BLOCK_B + tl.arange(0, BLOCK_B)
    om = tl.arange(0, MP)
    bm, mm = ob < NB, om < M
    R: tl.constexpr = 4 * M if ARCH == 2 else M
    return e, ob, om, bm, mm, bm[:, None] & mm[None, :], w_ptr + e * R * M


@triton.jit
def _step_rows(e, t, ob, T: tl.constexpr, NB: tl.constexpr):
    """Rows (e, t, ob) of an (E, T, NB, ·) array viewed as (E·T·NB, ·): (e·T + t)·NB + ob,
    64-bit since ``e`` is (:func:`_tile`)."""
    return (e * T + t) * NB + ob


@triton.jit
def rollout_fwd(u_ptr, coef_ptr, w_ptr, v_ptr, a_ptr, st_ptr, z_ptr, ct_ptr, c_ptr, E,
                T: tl.constexpr, NB: tl.constexpr, M: tl.constexpr, BLOCK_B: tl.constexpr,
                MP: tl.constexpr, ARCH: tl.constexpr):
    """One member × batch tile over the whole window: s̃, s' (and c̃, c') per step.
    w (E, R, M), v (E, R): weights and bias (R = 4M for the LSTM); a (E, M): the
    PLRNN's diagonal. All step arrays (E, T, NB, M)."""
    e, ob, om, bm, mm, m2, wbase = _tile(w_ptr, NB, M, BLOCK_B, MP, ARCH)
    R: tl.constexpr = 4 * M if ARCH == 2 else M
    v0 = tl.load(v_ptr + e * R + om, mask=mm, other=0.0)
    s = tl.zeros((BLOCK_B, MP), dtype=u_ptr.dtype.element_ty)
    c = tl.zeros((BLOCK_B, MP), dtype=u_ptr.dtype.element_ty)
    if ARCH == 0:
        diag = tl.load(a_ptr + e * M + om, mask=mm, other=0.0)
    if ARCH == 2:
        v1 = tl.load(v_ptr + e * R + M + om, mask=mm, other=0.0)
        v2 = tl.load(v_ptr + e * R + 2 * M + om, mask=mm, other=0.0)
        v3 = tl.load(v_ptr + e * R + 3 * M + om, mask=mm, other=0.0)
    for t in range(T):
        ca = tl.load(coef_ptr + t * E + e)
        cb = tl.load(coef_ptr + (T + t) * E + e)
        rows = _step_rows(e, t, ob, T, NB)  # (BLOCK_B,)
        off = rows[:, None] * M + om[None, :]
        st = ca * s + cb * tl.load(u_ptr + off, mask=m2, other=0.0)
        tl.store(st_ptr + off, st, mask=m2)
        tl.debug_barrier()  # the columns of s̃ are read back below
        if ARCH == 0:  # z' = A ⊙ s̃ + W_off relu(s̃) + h
            acc = diag[None, :] * st + v0[None, :]
            for j in range(M):
                col = tl.maximum(tl.load(st_ptr + rows * M + j, mask=bm, other=0.0), 0.0)
                acc += col[:, None] * tl.load(wbase + om * M + j, mask=mm, other=0.0)[None, :]
            z = acc
        elif ARCH == 1:  # z' = tanh(W s̃ + h)
            acc = tl.zeros((BLOCK_B, MP), dtype=st.dtype) + v0[None, :]
            for j in range(M):
                col = tl.load(st_ptr + rows * M + j, mask=bm, other=0.0)
                acc += col[:, None] * tl.load(wbase + om * M + j, mask=mm, other=0.0)[None, :]
            z = _tanh(acc)
        else:  # gates (i, f, g, o) = W h̃ + b; c' = f c̃ + i g; h' = o tanh c'
            ai, af, ag, ao = _lstm_preactivations(st_ptr, rows, bm, wbase, om, mm, v0, v1, v2,
                                                  v3, st.dtype, M, BLOCK_B, MP)
            ct = ca * c
            tl.store(ct_ptr + off, ct, mask=m2)
            c = _sigmoid(af) * ct + _sigmoid(ai) * _tanh(ag)
            tl.store(c_ptr + off, c, mask=m2)
            z = _sigmoid(ao) * _tanh(c)
        tl.store(z_ptr + off, z, mask=m2)
        s = z


@triton.jit
def rollout_bwd(gz_ptr, coef_ptr, w_ptr, v_ptr, a_ptr, st_ptr, z_ptr, ct_ptr, c_ptr,
                gp_ptr, gu_ptr, E, T: tl.constexpr, NB: tl.constexpr, M: tl.constexpr,
                BLOCK_B: tl.constexpr, MP: tl.constexpr, ARCH: tl.constexpr):
    """Backward through time of :func:`rollout_fwd`: gz (E, T, NB, M) = ∂L/∂s' direct;
    writes gp (E, T, NB, R), the gradient at the pre-activation (PLRNN: at z' itself),
    and gu (E, T, NB, M) = ∂L/∂u."""
    e, ob, om, bm, mm, m2, wbase = _tile(w_ptr, NB, M, BLOCK_B, MP, ARCH)
    R: tl.constexpr = 4 * M if ARCH == 2 else M
    carry = tl.zeros((BLOCK_B, MP), dtype=gz_ptr.dtype.element_ty)
    carry_c = tl.zeros((BLOCK_B, MP), dtype=gz_ptr.dtype.element_ty)
    if ARCH == 0:
        diag = tl.load(a_ptr + e * M + om, mask=mm, other=0.0)
    if ARCH == 2:
        v0 = tl.load(v_ptr + e * R + om, mask=mm, other=0.0)
        v1 = tl.load(v_ptr + e * R + M + om, mask=mm, other=0.0)
        v2 = tl.load(v_ptr + e * R + 2 * M + om, mask=mm, other=0.0)
        v3 = tl.load(v_ptr + e * R + 3 * M + om, mask=mm, other=0.0)
    for k in range(T):
        t = T - 1 - k
        a_bwd = tl.load(coef_ptr + (2 * T + t) * E + e)
        b_bwd = tl.load(coef_ptr + (3 * T + t) * E + e)
        rows = _step_rows(e, t, ob, T, NB)
        off = rows[:, None] * M + om[None, :]
        g = tl.load(gz_ptr + off, mask=m2, other=0.0) + carry
        if ARCH == 0:  # ∂L/∂s̃ = A ⊙ g + 1[s̃ > 0] ⊙ W_offᵀ g
            tl.store(gp_ptr + off, g, mask=m2)
            tl.debug_barrier()
            acc = tl.zeros((BLOCK_B, MP), dtype=g.dtype)
            for i in range(M):
                col = tl.load(gp_ptr + rows * M + i, mask=bm, other=0.0)
                acc += col[:, None] * tl.load(wbase + i * M + om, mask=mm, other=0.0)[None, :]
            st = tl.load(st_ptr + off, mask=m2, other=0.0)
            gs = diag[None, :] * g + tl.where(st > 0, acc, 0.0)
        elif ARCH == 1:  # ∂L/∂s̃ = Wᵀ((1 − z'²) ⊙ g)
            z = tl.load(z_ptr + off, mask=m2, other=0.0)
            tl.store(gp_ptr + off, g - g * z * z, mask=m2)
            tl.debug_barrier()
            gs = tl.zeros((BLOCK_B, MP), dtype=g.dtype)
            for i in range(M):
                col = tl.load(gp_ptr + rows * M + i, mask=bm, other=0.0)
                gs += col[:, None] * tl.load(wbase + i * M + om, mask=mm, other=0.0)[None, :]
        else:  # gates recomputed from s̃; ∂L/∂a per gate, then ∂L/∂h̃ = Wᵀ ∂L/∂a
            ai, af, ag, ao = _lstm_preactivations(st_ptr, rows, bm, wbase, om, mm, v0, v1, v2,
                                                  v3, g.dtype, M, BLOCK_B, MP)
            si, sf, so = _sigmoid(ai), _sigmoid(af), _sigmoid(ao)
            sg = _tanh(ag)
            tc = _tanh(tl.load(c_ptr + off, mask=m2, other=0.0))
            ct = tl.load(ct_ptr + off, mask=m2, other=0.0)
            gc = carry_c + g * (so - so * tc * tc)
            prow = rows[:, None] * R + om[None, :]
            tl.store(gp_ptr + prow, gc * sg * (si - si * si), mask=m2)
            tl.store(gp_ptr + prow + M, gc * ct * (sf - sf * sf), mask=m2)
            tl.store(gp_ptr + prow + 2 * M, gc * si * (1.0 - sg * sg), mask=m2)
            tl.store(gp_ptr + prow + 3 * M, g * tc * (so - so * so), mask=m2)
            tl.debug_barrier()
            gs = tl.zeros((BLOCK_B, MP), dtype=g.dtype)
            for i in range(R):
                col = tl.load(gp_ptr + rows * R + i, mask=bm, other=0.0)
                gs += col[:, None] * tl.load(wbase + i * M + om, mask=mm, other=0.0)[None, :]
            carry_c = a_bwd * gc * sf
        tl.store(gu_ptr + off, b_bwd * gs, mask=m2)
        carry = a_bwd * gs

