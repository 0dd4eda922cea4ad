"""Ensemble RNNs against independent references: numpy / torch.nn cells for the step,
autograd for the analytic Jacobians, closed forms for inference and linear dynamics, separate
one-member models for the ensemble, and autograd for the gradient cut of forcing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chaosrnn_utils.models import (
    LSTM,
    MODELS,
    PLRNN,
    DendPLRNN,
    EnsembleRNN,
    ShallowPLRNN,
    TanhRNN,
    check_positive_int,
    make_model,
)

M, N, E, NB = 5, 3, 3, 4  # latent dim, obs dim, members, batch
SEEDS = [7, 11, 13]
EXTRA = {"plrnn": {}, "dendplrnn": {"n_bases": 4}, "shplrnn": {"hidden_dim": 8}, "rnn": {},
         "lstm": {}}
NAMES = list(MODELS)
F64 = torch.float64


def build(name: str, *, n_models: int = E, seeds=None, **kw) -> EnsembleRNN:
    seeds = SEEDS[:n_models] if seeds is None else seeds
    return make_model(name, M, N, n_models=n_models, seeds=seeds, **EXTRA[name], **kw)


def rand_params(model: EnsembleRNN, seed: int = 0) -> EnsembleRNN:
    """Replace all parameters by N(0, 1) draws (bigger than the init: both sides of every
    kink, saturating gates, nonzero raw diagonal of the masked W)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=F64))
    return model


def rand_states(model: EnsembleRNN, seed: int = 1, scale: float = 2.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(model.n_models, NB, model.state_dim, generator=g, dtype=F64)


# ----------------------------------------------------------------------------- step references


def np_params(model: EnsembleRNN, e: int) -> dict[str, np.ndarray]:
    return {k: v[e].detach().cpu().numpy() for k, v in model.named_parameters()}


def np_step(name: str, p: dict[str, np.ndarray], s: np.ndarray) -> np.ndarray:
    """One step for one member and one state, written from the equations."""
    relu = lambda v: np.maximum(v, 0.0)  # noqa: E731
    if name in ("plrnn", "dendplrnn"):
        W = p["W"] - np.diag(np.diag(p["W"]))
        if name == "plrnn":
            phi = relu(s)
        else:
            phi = sum(a * relu(s - th) for a, th in zip(p["alpha"], p["theta"], strict=True))
        return p["A"] * s + W @ phi + p["h"]
    if name == "shplrnn":
        return p["A"] * s + p["W1"] @ relu(p["W2"] @ s + p["h2"]) + p["h1"]
    if name == "rnn":
        return np.tanh(p["W"] @ s + p["h"])
    raise AssertionError(name)


@pytest.mark.parametrize("name", ["plrnn", "dendplrnn", "shplrnn", "rnn"])
def test_step_matches_numpy_reference(name):
    model = rand_params(build(name).double())
    s = rand_states(model)
    out = model.step(s)
    for e in range(E):
        p = np_params(model, e)
        for b in range(NB):
            ref = np_step(name, p, s[e, b].numpy())
            np.testing.assert_allclose(out[e, b].detach().numpy(), ref, rtol=1e-12, atol=1e-12)


def test_tanh_rnn_matches_torch_rnn_cell():
    model = rand_params(build("rnn").double())
    s = rand_states(model)
    out = model.step(s)
    for e in range(E):
        cell = torch.nn.RNNCell(1, M, nonlinearity="tanh").double()
        with torch.no_grad():
            cell.weight_ih.zero_()
            cell.weight_hh.copy_(model.W[e])
            cell.bias_ih.copy_(model.h[e])
            cell.bias_hh.zero_()
        ref = cell(torch.zeros(NB, 1, dtype=F64), s[e])
        torch.testing.assert_close(out[e], ref, rtol=1e-12, atol=1e-12)


def test_lstm_matches_torch_lstm_cell_with_zero_input():
    model = rand_params(build("lstm").double())
    s = rand_states(model)
    out = model.step(s)
    for e in range(E):
        cell = torch.nn.LSTMCell(1, M).double()
        with torch.no_grad():
            cell.weight_ih.zero_()
            cell.weight_hh.copy_(model.W[e])
            cell.bias_ih.copy_(model.b[e])
            cell.bias_hh.zero_()
        h1, c1 = cell(torch.zeros(NB, 1, dtype=F64), (s[e, :, :M], s[e, :, M:]))
        torch.testing.assert_close(out[e, :, :M], h1, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(out[e, :, M:], c1, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- Jacobians


def kink_preactivations(model: EnsembleRNN, s: torch.Tensor) -> torch.Tensor | None:
    """The arguments of the relus at states s (None for smooth models)."""
    if isinstance(model, DendPLRNN):
        return s[:, :, None, :] - model.theta[:, None]
    if isinstance(model, PLRNN):
        return s
    if isinstance(model, ShallowPLRNN):
        return s @ model.W2.mT + model.h2[:, None]
    return None


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("init", ["default", "random"])
def test_jacobian_equals_autograd(name, init):
    model = build(name).double()
    if init == "random":
        rand_params(model)
    s = rand_states(model)
    pre = kink_preactivations(model, s)
    if pre is not None:  # relu units on both sides of the kink, none at it
        assert (pre > 0).any() and (pre < 0).any()
        assert pre.abs().min() > 1e-8
    J = model.jacobian(s)
    assert J.shape == (E, NB, model.state_dim, model.state_dim)
    with torch.no_grad():
        Jfull = torch.autograd.functional.jacobian(model.step, s)  # (E, B, S, E, B, S)
    S = model.state_dim
    Jfull = Jfull.reshape(E * NB, S, E * NB, S)
    for k in range(E * NB):
        torch.testing.assert_close(J.reshape(E * NB, S, S)[k], Jfull[k, :, k], rtol=0, atol=1e-10)
        off = torch.cat([Jfull[k, :, :k], Jfull[k, :, k + 1 :]], dim=1)
        assert torch.count_nonzero(off) == 0  # members and sequences do not interact


@pytest.mark.parametrize("name", NAMES)
def test_jacobian_equals_jacrev_on_single_member(name):
    model = rand_params(build(name, n_models=1, seeds=[3]).double(), seed=5)
    S = model.state_dim
    for seed in range(3):
        s = rand_states(model, seed=seed)[0, 0]
        Jref = torch.func.jacrev(lambda v: model.step(v.view(1, 1, S)).view(S))(s)
        J = model.jacobian(s.view(1, 1, S))[0, 0]
        torch.testing.assert_close(J, Jref, rtol=0, atol=1e-10)


def test_plrnn_jacobian_is_column_scaled_offdiagonal_w():
    model = rand_params(build("plrnn").double())
    s = rand_states(model)
    J = model.jacobian(s)
    W = model.W.detach().clone()
    for e in range(E):
        W[e].fill_diagonal_(0.0)
        for b in range(NB):
            D = torch.diag((s[e, b] > 0).to(F64))
            torch.testing.assert_close(J[e, b], torch.diag(model.A[e]) + W[e] @ D, rtol=0,
                                       atol=1e-14)


# ----------------------------------------------------------------------------- ensembles


def assert_identical(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype
    torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_member_equals_single_model_with_its_seed(name):
    ens = build(name).double()
    s = rand_states(ens)
    x = torch.randn(NB, N, dtype=F64)
    mask = torch.zeros(E, NB, 6, dtype=torch.bool)
    mask[..., ::3] = True
    rep = ens.inferred_state(x).unsqueeze(2).expand(E, NB, 6, ens.state_dim).detach()
    outs = {
        "step": ens.step(s),
        "jacobian": ens.jacobian(s),
        "free": ens.rollout(s, 6),
        "forced": ens.rollout(s, 6, replace=rep, replace_mask=mask),
        "observe": ens.observe(s),
        "inferred": ens.inferred_state(x),
    }
    for e, seed in enumerate(SEEDS):
        single = build(name, n_models=1, seeds=[seed]).double()
        for other in (single, ens.member(e)):
            assert type(other) is type(ens) and other.n_models == 1
            assert other.seeds == (seed,)
            for (k, p), (k2, q) in zip(ens.named_parameters(), other.named_parameters(),
                                       strict=True):
                assert k == k2
                assert_identical(p[e : e + 1], q)
            se = s[e : e + 1]
            got = {
                "step": other.step(se),
                "jacobian": other.jacobian(se),
                "free": other.rollout(se, 6),
                "forced": other.rollout(se, 6, replace=rep[e : e + 1],
                                        replace_mask=mask[e : e + 1]),
                "observe": other.observe(se),
                "inferred": other.inferred_state(x),
            }
            for k, v in got.items():
                assert_identical(outs[k][e : e + 1], v)


def test_members_differ_and_float32_default():
    model = build("plrnn")
    assert model.dtype == torch.float32 and model.A.dtype == torch.float32
    assert not torch.equal(model.W[0], model.W[1])
    # float32 parameters are the float64 draws rounded
    m64 = build("plrnn", dtype=F64)
    torch.testing.assert_close(model.W.double(), m64.W, rtol=0, atol=1e-7)


@pytest.mark.parametrize("name", NAMES)
def test_documented_init_ranges(name):
    model = build(name, n_models=2)
    r = M**-0.5
    assert model.B.abs().max() <= r
    if name in ("plrnn", "dendplrnn", "shplrnn"):
        assert model.A.min() >= 0.5 and model.A.max() <= 0.9
    if name in ("plrnn", "dendplrnn"):
        assert torch.count_nonzero(torch.diagonal(model.W, dim1=-2, dim2=-1)) == 0
        assert model.W.abs().max() <= r
    if name == "dendplrnn":
        assert (model.alpha >= 0).all() and (model.alpha.sum(-1) <= 1).all()
    if name == "lstm":
        assert model.W.shape == (2, 4 * M, M) and model.W.abs().max() <= r
    # re-drawing from the seeds reproduces the parameters
    before = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    model.reset_parameters()
    for p, q in zip(model.parameters(), before, strict=True):
        assert torch.equal(p, q)


# ----------------------------------------------------------------------------- inference


@pytest.mark.parametrize("name", NAMES)
def test_inferred_state_is_pseudoinverse_and_differentiable(name):
    model = rand_params(build(name).double())
    x = torch.randn(E, NB, N, dtype=F64)
    s = model.inferred_state(x)
    assert s.shape == (E, NB, model.state_dim)
    torch.testing.assert_close(model.observe(s), x, rtol=0, atol=1e-12)  # B B⁺ x = x
    for e in range(E):
        pinv = np.linalg.pinv(model.B[e].detach().numpy())
        np.testing.assert_allclose(s[e, :, :M].detach().numpy(), x[e].numpy() @ pinv.T,
                                   atol=1e-12)
    if name == "lstm":
        assert torch.count_nonzero(s[..., M:]) == 0
    # (B, N) is broadcast to every member; (1, B, T, N) too
    x2 = torch.randn(NB, N, dtype=F64)
    assert_identical(model.inferred_state(x2), model.inferred_state(x2.expand(E, NB, N)))
    x4 = torch.randn(1, NB, 6, N, dtype=F64)
    s4 = model.inferred_state(x4)
    assert s4.shape == (E, NB, 6, model.state_dim)
    torch.testing.assert_close(model.observe(s4), x4.expand(E, NB, 6, N), rtol=0, atol=1e-12)
    # gradients reach B
    model.zero_grad()
    (model.inferred_state(x) ** 2).sum().backward()
    assert model.B.grad is not None and torch.isfinite(model.B.grad).all()
    assert model.B.grad.abs().min(dim=-1).values.min() > 0


def test_inferred_state_gradient_matches_finite_difference():
    model = rand_params(build("plrnn", n_models=1).double())
    x = torch.randn(NB, N, dtype=F64)
    B0 = model.B.detach().clone()

    def loss(B):
        z = x.numpy() @ np.linalg.pinv(B.numpy()).T
        return float((z**3).sum())

    model.inferred_state(x).pow(3).sum().backward()
    eps = 1e-6
    num = torch.zeros_like(B0)
    for idx in np.ndindex(*B0.shape):
        Bp, Bm = B0.clone(), B0.clone()
        Bp[idx] += eps
        Bm[idx] -= eps
        num[idx] = (loss(Bp[0]) - loss(Bm[0])) / (2 * eps)
    torch.testing.assert_close(model.B.grad, num, rtol=1e-5, atol=1e-6)


def test_lstm_observe_reads_h_only():
    model = rand_params(build("lstm").double())
    s = rand_states(model)
    s2 = s.clone()
    s2[..., M:] = torch.randn(E, NB, M, dtype=F64)
    assert_identical(model.observe(s), model.observe(s2))
    ref = torch.einsum("enm,ebm->ebn", model.B, s[..., :M])
    torch.testing.assert_close(model.observe(s), ref, rtol=0, atol=1e-13)


# ----------------------------------------------------------------------------- rollout


@pytest.mark.parametrize("name", NAMES)
def test_free_rollout_iterates_step(name):
    model = build(name).double()
    s = rand_states(model)
    out = model.rollout(s, 7)
    assert out.shape == (E, NB, 7, model.state_dim)
    ref = s
    for t in range(7):
        ref = model.step(ref)
        assert_identical(out[:, :, t], ref)
    assert model.rollout(s, 0).shape == (E, NB, 0, model.state_dim)
    assert_identical(model(s, 3), out[:, :, :3])


def every_tau_mask(T: int) -> torch.Tensor:
    """Per-member schedules, (E, 1, T): member 0 forced at t-1 = 2, member 1 never, member 2
    every 3rd step from 0."""
    mask = torch.zeros(E, 1, T, dtype=torch.bool)
    mask[0, 0, 2] = True
    mask[2, 0, ::3] = True
    return mask


@pytest.mark.parametrize("name", NAMES)
def test_forced_rollout_restarts_from_replacement(name):
    model = build(name).double()
    T = 8
    s0 = rand_states(model)
    x = torch.randn(NB, T, N, dtype=F64)
    rep = model.inferred_state(x[None])  # (E, B, T, S)
    mask = every_tau_mask(T)
    out = model.rollout(s0, T, replace=rep, replace_mask=mask)
    prev = s0
    for t in range(T):
        for e in range(E):
            expect_in = rep[e, :, t] if mask[e, 0, t] else prev[e]
            ref = model.member(e).step(expect_in[None])[0]
            torch.testing.assert_close(out[e, :, t], ref, rtol=0, atol=1e-14)
        prev = out[:, :, t]
    # a mask that is all False is a free run; a (T,) mask is shared by all members
    free = model.rollout(s0, T, replace=rep, replace_mask=torch.zeros(T, dtype=torch.bool))
    assert_identical(free, model.rollout(s0, T))
    shared = torch.zeros(T, dtype=torch.bool)
    shared[4] = True
    out2 = model.rollout(s0, T, replace=rep, replace_mask=shared)
    assert_identical(out2[:, :, 4], model.step(rep[:, :, 4]))


@pytest.mark.parametrize("name", NAMES)
def test_forcing_cuts_gradient_to_initial_state(name):
    model = rand_params(build(name).double(), seed=3)
    T = 8
    s0 = rand_states(model, scale=0.5).requires_grad_(True)
    rep = torch.randn(NB, T, model.state_dim, dtype=F64, requires_grad=True)  # (B, T, S)
    mask = every_tau_mask(T)
    out = model.rollout(s0, T, replace=rep, replace_mask=mask)
    for t in range(1, T + 1):
        for e in range(E):
            g0, grep = torch.autograd.grad(out[e, :, t - 1].sum(), (s0, rep), retain_graph=True)
            forced = bool(mask[e, 0, :t].any())
            if forced:  # a replacement at input index < t cuts the product of Jacobians
                assert torch.count_nonzero(g0) == 0
                last = int(torch.nonzero(mask[e, 0, :t]).max())
                assert grep[:, last].abs().sum() > 0
            else:
                assert g0[e].abs().sum() > 0
            assert torch.count_nonzero(torch.cat([g0[:e], g0[e + 1 :]])) == 0


def test_forced_gradient_equals_jacobian_product():
    model = rand_params(build("plrnn").double(), seed=4)
    s0 = rand_states(model, scale=0.5).requires_grad_(True)
    out = model.rollout(s0, 4)
    v = torch.randn(E, NB, M, dtype=F64)
    (g,) = torch.autograd.grad((out[:, :, 3] * v).sum(), s0)
    states = torch.cat([s0[:, :, None], out], dim=2).detach()
    vec = v
    for t in range(3, -1, -1):  # vᵀ J_4 J_3 J_2 J_1
        vec = (vec[..., None, :] @ model.jacobian(states[:, :, t]))[..., 0, :]
    torch.testing.assert_close(g, vec, rtol=1e-12, atol=1e-12)


def test_lstm_forcing_resets_cell_state():
    model = rand_params(build("lstm").double())
    s0 = rand_states(model)
    assert torch.count_nonzero(s0[..., M:]) > 0
    x = torch.randn(NB, N, dtype=F64)
    forced = model.inferred_state(x)  # (h = B⁺ x, c = 0)
    assert torch.count_nonzero(forced[..., M:]) == 0
    rep = forced[:, :, None]  # (E, B, 1, S) broadcast over T
    mask = torch.zeros(3, dtype=torch.bool)
    mask[0] = True
    out = model.rollout(s0, 3, replace=rep, replace_mask=mask)
    h = model.inferred_state(x)[..., :M]
    assert_identical(out[:, :, 0], model.step(torch.cat([h, torch.zeros_like(h)], dim=-1)))


@pytest.mark.parametrize("name", NAMES)
def test_rollout_gradients_reach_all_parameters(name):
    model = build(name).double()
    s0 = rand_states(model, scale=0.5)
    model.observe(model.rollout(s0, 5)).pow(2).sum().backward()
    for k, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, k
    if name in ("plrnn", "dendplrnn"):  # masked diagonal gets no gradient
        assert torch.count_nonzero(torch.diagonal(model.W.grad, dim1=-2, dim2=-1)) == 0


# ----------------------------------------------------------------------------- closed forms


@pytest.mark.parametrize("a", [0.8, -0.7, 1.1])
def test_one_dimensional_linear_plrnn(a):
    # W's raw diagonal is masked, so W = [[5]] is still the linear map z ↦ a z
    model = PLRNN.from_parameters(A=[a], W=[[5.0]], h=[0.0], B=[[2.0]], dtype=F64)
    assert (model.latent_dim, model.obs_dim, model.n_models) == (1, 1, 1)
    z0 = torch.tensor([[[1.5], [-0.3]]], dtype=F64)
    out = model.rollout(z0, 12)
    t = torch.arange(1, 13, dtype=F64)
    ref = z0[0, :, 0, None] * a**t
    torch.testing.assert_close(out[0, :, :, 0], ref, rtol=1e-13, atol=0)
    torch.testing.assert_close(model.observe(out)[0, :, :, 0], 2 * ref, rtol=1e-13, atol=0)
    torch.testing.assert_close(model.jacobian(z0), torch.full((1, 2, 1, 1), a, dtype=F64))


def test_from_parameters_shapes_and_sharing():
    g = torch.Generator().manual_seed(0)
    A = torch.rand(2, M, generator=g, dtype=F64)
    W = torch.randn(2, M, M, generator=g, dtype=F64)
    h = torch.randn(M, dtype=F64)  # shared by both members
    B = torch.randn(N, M, dtype=F64)
    model = PLRNN.from_parameters(A=A, W=W, h=h, B=B)
    assert model.n_models == 2 and model.dtype == F64
    assert_identical(model.h[1], h)
    assert_identical(model.A, A)
    assert torch.equal(model.W_offdiag[0].diagonal(), torch.zeros(M, dtype=F64))
    d = DendPLRNN.from_parameters(A=A[0], W=W[0], h=h, alpha=torch.ones(3), theta=torch.zeros(3, M),
                                  B=B)
    assert (d.n_bases, d.n_models, d.dtype) == (3, 1, F64)
    sh = ShallowPLRNN.from_parameters(A=A, W1=torch.zeros(M, 7), W2=torch.zeros(7, M), h1=h,
                                      h2=torch.zeros(7), B=B)
    assert sh.hidden_dim == 7 and sh.n_models == 2
    lstm = LSTM.from_parameters(W=torch.zeros(4 * M, M), b=torch.zeros(4 * M), B=B)
    assert lstm.state_dim == 2 * M
    rnn = TanhRNN.from_parameters(W=W, h=h, B=B.float())
    assert rnn.dtype == F64
    with pytest.raises(ValueError, match="inconsistent ensemble sizes"):
        PLRNN.from_parameters(A=A, W=W[:1], h=h, B=B)
    with pytest.raises(ValueError, match="member shape"):
        PLRNN.from_parameters(A=A, W=W[..., :2], h=h, B=B)
    with pytest.raises(ValueError, match="must have 1 dims"):
        PLRNN.from_parameters(A=A[None], W=W, h=h, B=B)


@pytest.mark.parametrize("name", NAMES)
def test_from_parameters_rebuilds_every_model(name):
    """The one from_parameters of the base class rebuilds each model from its named
    parameters: same sizes and options, the same parameters in the same order, same steps."""
    m = rand_params(build(name, dtype=F64))
    params = {k: p.detach().clone() for k, p in m.named_parameters()}
    r = type(m).from_parameters(**params)
    assert (r.latent_dim, r.obs_dim, r.n_models, r.dtype) == (M, N, E, F64)
    assert r._extra_config() == EXTRA[name]
    assert list(dict(r.named_parameters())) == list(params)
    for k, p in r.named_parameters():
        assert_identical(p, params[k])
    s = torch.randn(E, NB, m.state_dim, dtype=F64, generator=torch.Generator().manual_seed(3))
    assert_identical(r.step(s), m.step(s))
    with pytest.raises(TypeError, match="missing: B, unknown: Q"):
        type(m).from_parameters(**{k: v for k, v in params.items() if k != "B"}, Q=params["B"])
    with pytest.raises(TypeError, match="unexpected keyword argument 'n_layers'"):
        make_model(name, M, N, n_layers=2)


# ----------------------------------------------------------------------------- API, errors


def test_registry_and_state_dims():
    assert set(MODELS) == {"plrnn", "dendplrnn", "shplrnn", "rnn", "lstm"}
    for name, cls in MODELS.items():
        m = build(name)
        assert isinstance(m, cls) and isinstance(m, EnsembleRNN)
        assert (m.latent_dim, m.obs_dim, m.n_models) == (M, N, E)
        assert m.state_dim == (2 * M if name == "lstm" else M)
    with pytest.raises(KeyError, match="unknown model 'gru'.*plrnn, dendplrnn"):
        make_model("gru", M, N)


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_raises(name):
    model = build(name)
    S = model.state_dim
    s = torch.zeros(E, NB, S)
    with pytest.raises(ValueError, match="must be 3-D"):
        model.step(torch.zeros(NB, S))
    with pytest.raises(ValueError, match="last dim must be state_dim"):
        model.step(torch.zeros(E, NB, S + 1))
    with pytest.raises(ValueError, match="leading \\(ensemble\\) dim 2"):
        model.jacobian(torch.zeros(2, NB, S))
    with pytest.raises(TypeError, match="dtype"):
        model.step(s.double())
    with pytest.raises(TypeError, match="torch.Tensor"):
        model.step(np.zeros((E, NB, S)))
    with pytest.raises(ValueError, match="x last dim must be obs_dim"):
        model.inferred_state(torch.zeros(NB, N + 1))
    with pytest.raises(ValueError, match="leading \\(ensemble\\) dim 2"):
        model.inferred_state(torch.zeros(2, NB, N))
    with pytest.raises(ValueError, match="given together"):
        model.rollout(s, 3, replace=torch.zeros(E, NB, 3, S))
    with pytest.raises(TypeError, match="bool"):
        model.rollout(s, 3, replace=torch.zeros(E, NB, 3, S), replace_mask=torch.zeros(3))
    with pytest.raises(ValueError, match="does not broadcast"):
        model.rollout(s, 3, replace=torch.zeros(E, NB, 4, S),
                      replace_mask=torch.zeros(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="replace_mask of shape"):
        model.rollout(s, 3, replace=torch.zeros(E, NB, 3, S),
                      replace_mask=torch.zeros(2, dtype=torch.bool))
    with pytest.raises(ValueError, match="n_steps must be non-negative"):
        model.rollout(s, -1)
    with pytest.raises(IndexError, match="out of range"):
        model.member(E)
    small = make_model(name, 2, 3, **EXTRA[name])
    with pytest.raises(ValueError, match="latent_dim >= obs_dim"):
        small.inferred_state(torch.zeros(NB, 3))
    cls = MODELS[name]
    with pytest.raises(ValueError, match="latent_dim must be a positive integer"):
        cls(0, N)
    with pytest.raises(ValueError, match="obs_dim must be a positive integer"):
        cls(M, -1)
    with pytest.raises(ValueError, match="n_models must be a positive integer"):
        cls(M, N, n_models=0)
    with pytest.raises(ValueError, match="latent_dim must be a positive integer, got 2.5"):
        cls(2.5, N)
    with pytest.raises(ValueError, match="len\\(seeds\\) = 2 must equal n_models = 3"):
        cls(M, N, n_models=3, seeds=[1, 2])
    with pytest.raises(TypeError, match="floating point"):
        cls(M, N, dtype=torch.int64)


def test_model_specific_sizes_validated():
    with pytest.raises(ValueError, match="n_bases must be a positive integer"):
        DendPLRNN(M, N, n_bases=0)
    with pytest.raises(ValueError, match="hidden_dim must be a positive integer"):
        ShallowPLRNN(M, N, hidden_dim=0)


BAD_COUNTS = (0, -1, True, False, 1.5, 3.0, "3", None, np.float64(2.0), np.bool_(True))


def test_check_positive_int_accepts_integers_only():
    for bad in BAD_COUNTS:
        with pytest.raises(ValueError, match=r"^size must be a positive integer, got "):
            check_positive_int(bad, "size")
    for good in (1, 7, 2**40, np.int64(3), np.int32(5), np.uint8(2)):
        got = check_positive_int(good, "size")
        assert got == int(good) and type(got) is int


# ----------------------------------------------------------------------------- dtype, device


@pytest.mark.parametrize("name", NAMES)
def test_double_and_float_dtypes(name):
    m32 = build(name)
    s32 = torch.randn(E, NB, m32.state_dim)
    for fn in (m32.step, m32.jacobian, m32.observe):
        assert fn(s32).dtype == torch.float32
    assert m32.inferred_state(torch.randn(NB, N, dtype=F64)).dtype == torch.float32
    m64 = m32.double()
    assert m64.dtype == F64 and all(p.dtype == F64 for p in m64.buffers())
    assert m64.rollout(s32.double(), 3).dtype == F64


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", NAMES)
def test_cuda_matches_cpu(name):
    cpu = build(name).double()
    gpu = build(name, dtype=F64, device="cuda")
    assert gpu.device.type == "cuda" and gpu.member(1).device.type == "cuda"
    s = rand_states(cpu)
    x = torch.randn(NB, N, dtype=F64)
    mask = every_tau_mask(6).cuda()
    rep = cpu.inferred_state(x)[:, :, None]
    out_c = cpu.rollout(s, 6, replace=rep, replace_mask=mask.cpu())
    out_g = gpu.rollout(s.cuda(), 6, replace=rep.cuda(), replace_mask=mask)
    torch.testing.assert_close(out_g.cpu(), out_c, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(gpu.jacobian(s.cuda()).cpu(), cpu.jacobian(s), rtol=1e-10,
                               atol=1e-10)
    torch.testing.assert_close(gpu.inferred_state(x.cuda()).cpu(), cpu.inferred_state(x),
                               rtol=1e-10, atol=1e-10)
