"""Ensemble-ready RNNs: E independent models with stacked parameters, evaluated in one batch.

Every model maps a state s_{t-1} to s_t = F(s_{t-1}) and reads observations linearly,
x̂_t = B z_t (no bias). Shapes throughout:

* parameters carry a leading ensemble dimension E (``n_models``);
* states are (E, B, S): E members, B sequences, S = ``state_dim`` (the latent dimension M,
  or 2M for the LSTM, whose state is s = (h, c));
* observations are (E, B, N), or (B, N) broadcast over all members.

Models (``MODELS``): :class:`PLRNN`, :class:`DendPLRNN`, :class:`ShallowPLRNN`,
:class:`TanhRNN`, :class:`LSTM`. Each has an analytic :meth:`~EnsembleRNN.jacobian`
(no autograd inside), the data-inferred state of teacher forcing
(:meth:`~EnsembleRNN.inferred_state`, z = B⁺ x with B⁺ = Bᵀ(BBᵀ)⁻¹ via ``linalg.solve``) and
a rollout with per-member forcing schedules (:meth:`~EnsembleRNN.rollout`).

Member e is initialised from ``torch.Generator().manual_seed(seeds[e])`` (draws in float64,
then cast), so it holds exactly the parameters of a one-member model built with
``seeds=[seeds[e]]``.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from typing import Any, ClassVar, Self

import torch
from torch import Tensor, nn

from .validate import check_positive_int

__all__ = [
    "MODELS",
    "DendPLRNN",
    "EnsembleRNN",
    "LSTM",
    "PLRNN",
    "ShallowPLRNN",
    "TanhRNN",
    "INITS",
    "check_positive_int",
    "make_model",
]


#: initialisation schemes: "ours" (PLRNN diagonal A ~ U(0.5, 0.9)) and "authors" (the
#: paper's: every PLRNN weight, the diagonal A included, ~ U(±1/√M)); other parameters and
#: models have one scheme
INITS = ("ours", "authors")


def _uniform(g: torch.Generator, shape: Sequence[int], lo: float, hi: float) -> Tensor:
    """U(lo, hi) samples in float64 on the CPU from generator ``g``."""
    return lo + (hi - lo) * torch.rand(tuple(shape), generator=g, dtype=torch.float64)


def _as_column(v: Tensor) -> Tensor:
    """(..., M) → (..., M, 1), so that ``_as_column(v) * X`` is diag(v) X."""
    return v[..., :, None]


def _symmetric(g: torch.Generator, shape: Sequence[int], bound: float) -> Tensor:
    return _uniform(g, shape, -bound, bound)


class EnsembleRNN(nn.Module):
    """Base class: E independent RNNs with stacked parameters and a linear observation x̂ = B z.

    Subclasses declare their parameters (``_member_ndim``), the shapes that give their sizes
    (``_sizes``) and their own size options (``_options``), and define ``_make_parameters``,
    ``_draw`` (one member's initial parameters), ``step`` and ``jacobian``. Every model is
    built as ``cls(latent_dim, obs_dim, *, n_models, seeds, dtype, device, **options)`` or
    from given parameter values with :meth:`from_parameters`. The observation matrix ``B``
    has shape (E, N, M) and is initialised U(±1/√M).
    """

    #: number of dims of each parameter for a single member (without the ensemble dim)
    _member_ndim: ClassVar[dict[str, int]] = {"B": 2}
    #: size → (parameter, axis) it is read from in :meth:`from_parameters`
    _sizes: ClassVar[dict[str, tuple[str, int]]] = {"latent_dim": ("B", -1),
                                                    "obs_dim": ("B", -2)}
    #: model-specific size options and their defaults (e.g. ``n_bases``)
    _options: ClassVar[dict[str, int]] = {}
    #: state_dim = _state_factor * latent_dim
    _state_factor: ClassVar[int] = 1

    def __init__(
        self,
        latent_dim: int,
        obs_dim: int,
        *,
        n_models: int = 1,
        seeds: Sequence[int] | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
        init: str = "ours",
        **options: int,
    ) -> None:
        super().__init__()
        if init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
        #: the initialisation scheme (:data:`INITS`; only the PLRNN family's A depends on it)
        self.init = init
        self.latent_dim = check_positive_int(latent_dim, "latent_dim")
        self.obs_dim = check_positive_int(obs_dim, "obs_dim")
        self.n_models = check_positive_int(n_models, "n_models")
        self.state_dim = self._state_factor * self.latent_dim
        if seeds is None:
            seeds = range(self.n_models)
        seeds = tuple(operator.index(s) for s in seeds)
        if len(seeds) != self.n_models:
            raise ValueError(f"len(seeds) = {len(seeds)} must equal n_models = {self.n_models}")
        self.seeds: tuple[int, ...] = seeds
        if not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating point dtype, got {dtype}")
        for name in options:
            if name not in self._options:
                raise TypeError(f"{type(self).__name__}() got an unexpected keyword argument "
                                f"{name!r}")
        for name, default in self._options.items():
            setattr(self, name, check_positive_int(options.get(name, default), name))
        self._factory = {"dtype": dtype, "device": device}
        self.B = self._param(self.obs_dim, self.latent_dim)
        self._make_parameters()
        self.reset_parameters()

    # ------------------------------------------------------------------ construction helpers

    def _param(self, *member_shape: int) -> nn.Parameter:
        return nn.Parameter(torch.empty(self.n_models, *member_shape, **self._factory))

    def _make_parameters(self) -> None:
        """Register the parameters besides B (uninitialised), in a fixed order."""
        raise NotImplementedError

    def _draw(self, g: torch.Generator) -> dict[str, Tensor]:
        """One member's initial parameters (float64, CPU), drawn from ``g`` in a fixed order."""
        raise NotImplementedError

    def _extra_config(self) -> dict[str, Any]:
        """Model-specific constructor options (e.g. ``n_bases``)."""
        extra: dict[str, Any] = {name: getattr(self, name) for name in self._options}
        if self.init != "ours":
            extra["init"] = self.init
        return extra

    def reset_parameters(self) -> None:
        """Re-draw every member's parameters from its seed (see the class docstrings)."""
        with torch.no_grad():
            for e, seed in enumerate(self.seeds):
                g = torch.Generator().manual_seed(seed)
                for name, value in self._draw(g).items():
                    getattr(self, name)[e].copy_(value)

    @classmethod
    def from_parameters(
        cls,
        *,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        **parameters: Any,
    ) -> Self:
        """A model holding copies of ``parameters``: every parameter of the class by name
        (its docstring lists them, e.g. ``PLRNN.from_parameters(A=…, W=…, h=…, B=…)``), each
        one member's (shapes as listed there) or an ensemble's (leading dim E); single-member
        tensors are shared by all members. The sizes (``latent_dim``, ``obs_dim``, options
        such as ``n_bases``) are read from the shapes; dtype: the promoted one of the floating
        inputs unless given; device: the first parameter's unless given."""
        where = f"{cls.__name__}.from_parameters"
        missing = [name for name in cls._member_ndim if name not in parameters]
        unknown = [name for name in parameters if name not in cls._member_ndim]
        if missing or unknown:
            raise TypeError(f"{where} takes the parameters {', '.join(cls._member_ndim)}; "
                            f"missing: {', '.join(missing) or '-'}, unknown: "
                            f"{', '.join(unknown) or '-'}")
        ts = {name: torch.as_tensor(parameters[name], dtype=dtype) for name in cls._member_ndim}
        sizes = set()
        for name, t in ts.items():
            nd = cls._member_ndim[name]
            if t.ndim == nd + 1:
                sizes.add(t.shape[0])
            elif t.ndim != nd:
                raise ValueError(f"{where}: {name} must have {nd} dims (one model) or "
                                 f"{nd + 1} (ensemble), got shape {tuple(t.shape)}")
        if len(sizes) > 1:
            raise ValueError(f"{where}: inconsistent ensemble sizes {sorted(sizes)}")
        floats = [t.dtype for t in ts.values() if t.is_floating_point()]
        if dtype is None and floats:
            dtype = functools.reduce(torch.promote_types, floats)
        elif dtype is None:
            dtype = torch.get_default_dtype()
        if device is None:
            device = next(iter(ts.values())).device
        config = {k: ts[name].shape[axis] for k, (name, axis) in cls._sizes.items()}
        model = cls(n_models=sizes.pop() if sizes else 1, dtype=dtype, device=device, **config)
        with torch.no_grad():
            for name, t in ts.items():
                p = getattr(model, name)
                nd = cls._member_ndim[name]
                if tuple(t.shape[t.ndim - nd :]) != tuple(p.shape[1:]):
                    raise ValueError(f"{where}: {name} must have member shape "
                                     f"{tuple(p.shape[1:])}, got {tuple(t.shape)}")
                p.copy_(t)
        return model

    def _like(self, n_models: int, seeds: Sequence[int]) -> Self:
        """A model of the same class, sizes, dtype and device with other members."""
        return type(self)(self.latent_dim, self.obs_dim, n_models=n_models, seeds=seeds,
                          dtype=self.dtype, device=self.device, **self._extra_config())

    def member(self, e: int) -> Self:
        """A one-member model of the same class holding copies of member e's parameters."""
        e = operator.index(e)
        if not -self.n_models <= e < self.n_models:
            raise IndexError(f"member {e} out of range for n_models = {self.n_models}")
        e %= self.n_models
        new = self._like(1, [self.seeds[e]])
        with torch.no_grad():
            for name, p in self.named_parameters():
                getattr(new, name).copy_(p[e : e + 1])
        return new

    def replicate(self, n_models: int, e: int = 0) -> Self:
        """An ensemble of ``n_models`` identical copies of member e: one backward pass then
        gives one gradient per member, e.g. one per sequence."""
        n_models = check_positive_int(n_models, "n_models")
        src = self.member(e)
        new = self._like(n_models, [src.seeds[0]] * n_models)
        with torch.no_grad():
            for name, p in src.named_parameters():
                getattr(new, name).copy_(p.expand_as(getattr(new, name)))
        return new

    @property
    def dtype(self) -> torch.dtype:
        return self.B.dtype

    @property
    def device(self) -> torch.device:
        return self.B.device

    def extra_repr(self) -> str:
        extra = "".join(f", {k}={v}" for k, v in self._extra_config().items())
        return (
            f"latent_dim={self.latent_dim}, obs_dim={self.obs_dim}{extra}, "
            f"n_models={self.n_models}"
        )

    # ------------------------------------------------------------------ input checks

    def _check_state(self, s: Any, name: str = "state", ndims: tuple[int, ...] = (3,)) -> Tensor:
        if not isinstance(s, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(s).__name__}")
        if s.ndim not in ndims:
            want = " or ".join(f"{n}-D" for n in ndims)
            raise ValueError(
                f"{name} must be {want} (E, B, [T,] S) with E = {self.n_models}, "
                f"S = {self.state_dim}; got shape {tuple(s.shape)}"
            )
        if s.shape[0] != self.n_models:
            raise ValueError(
                f"{name} has leading (ensemble) dim {s.shape[0]} but the model has "
                f"n_models = {self.n_models}; got shape {tuple(s.shape)}"
            )
        if s.shape[-1] != self.state_dim:
            raise ValueError(
                f"{name} last dim must be state_dim = {self.state_dim}, got shape "
                f"{tuple(s.shape)}"
            )
        if s.dtype != self.dtype:
            raise TypeError(f"{name} has dtype {s.dtype} but the model has dtype {self.dtype}")
        return s

    # ------------------------------------------------------------------ dynamics

    def step(self, s: Tensor) -> Tensor:
        """One step s_t = F(s_{t-1}): (E, B, S) → (E, B, S)."""
        raise NotImplementedError

    def jacobian(self, s: Tensor) -> Tensor:
        """Analytic Jacobian ∂F(s)/∂s: (E, B, S) → (E, B, S, S), J[..., i, j] = ∂F_i/∂s_j."""
        raise NotImplementedError

    def observe(self, s: Tensor) -> Tensor:
        """x̂ = B z: (E, B, S) → (E, B, N), or (E, B, T, S) → (E, B, T, N).

        Reads the first M entries of the state (the LSTM's h)."""
        s = self._check_state(s, ndims=(3, 4))
        z = s[..., : self.latent_dim]
        # one (E, B·T, M) @ (E, M, N) matmul, not B broadcast over every sequence
        flat = z.reshape(z.shape[0], -1, self.latent_dim) @ self.B.mT
        return flat.reshape(*z.shape[:-1], self.obs_dim)

    def _state_from_latent(self, z: Tensor) -> Tensor:
        return z

    def inferred_state(self, x: Tensor) -> Tensor:
        """Data-inferred state z = B⁺ x, B⁺ = Bᵀ(BBᵀ)⁻¹ (so B z = x), differentiable in B.

        x: (B, N) broadcast over members, or (E | 1, *batch, N) → (E, *batch, S). Requires
        latent_dim ≥ obs_dim (BBᵀ is singular otherwise). LSTM: h = B⁺ x and c = 0.
        """
        if self.latent_dim < self.obs_dim:
            raise ValueError(
                f"inferred_state needs latent_dim >= obs_dim (B Bᵀ is singular otherwise); "
                f"got latent_dim = {self.latent_dim} < obs_dim = {self.obs_dim}"
            )
        x = torch.as_tensor(x, dtype=self.dtype, device=self.device)
        if x.ndim < 2:
            raise ValueError(f"x must be (B, N) or (E, *batch, N), got shape {tuple(x.shape)}")
        if x.shape[-1] != self.obs_dim:
            raise ValueError(
                f"x last dim must be obs_dim = {self.obs_dim}, got shape {tuple(x.shape)}"
            )
        if x.ndim == 2:
            x = x[None]
        if x.shape[0] not in (1, self.n_models):
            raise ValueError(
                f"x has leading (ensemble) dim {x.shape[0]} but the model has n_models = "
                f"{self.n_models}; pass (B, N) or (E, *batch, N)"
            )
        batch = x.shape[1:-1]
        flat = x.reshape(x.shape[0], -1, self.obs_dim)  # (E|1, L, N)
        gram = self.B @ self.B.mT  # (E, N, N), symmetric
        # row form: zᵀ = xᵀ (BBᵀ)⁻¹ B, i.e. solve Y (BBᵀ) = xᵀ, then zᵀ = Y B
        y = torch.linalg.solve(gram, flat, left=False)  # (E, L, N)
        z = (y @ self.B).reshape(self.n_models, *batch, self.latent_dim)
        return self._state_from_latent(z)

    def _rollout_inputs(
        self, s0: Any, n_steps: Any, replace: Any, replace_mask: Any
    ) -> tuple[Tensor, int, Tensor | None, Tensor | None]:
        """:meth:`rollout`'s arguments checked (a clear error for each misuse): (s0, T,
        replace broadcast to (E, B, T, S), replace_mask to (E, B, T, 1)); both None for a
        free run."""
        s = self._check_state(s0, "s0")
        if isinstance(n_steps, bool):
            raise TypeError(f"n_steps must be an int, got {n_steps!r}")
        T = operator.index(n_steps)
        if T < 0:
            raise ValueError(f"n_steps must be non-negative, got {T}")
        if (replace is None) != (replace_mask is None):
            raise ValueError("replace and replace_mask must be given together (or neither)")
        if replace is None:
            return s, T, None, None
        E, nb, S = s.shape
        if not isinstance(replace, Tensor) or not isinstance(replace_mask, Tensor):
            raise TypeError("replace and replace_mask must be torch.Tensors")
        if replace_mask.dtype != torch.bool:
            raise TypeError(f"replace_mask must be a bool tensor, got {replace_mask.dtype}")
        if replace.dtype != self.dtype:
            raise TypeError(
                f"replace has dtype {replace.dtype} but the model has dtype {self.dtype}"
            )
        try:
            replace = torch.broadcast_to(replace, (E, nb, T, S))
        except RuntimeError:
            raise ValueError(
                f"replace of shape {tuple(replace.shape)} does not broadcast to "
                f"(E, B, T, S) = {(E, nb, T, S)}"
            ) from None
        try:
            replace_mask = torch.broadcast_to(replace_mask, (E, nb, T))[..., None]
        except RuntimeError:
            raise ValueError(
                f"replace_mask of shape {tuple(replace_mask.shape)} does not broadcast to "
                f"(E, B, T) = {(E, nb, T)}"
            ) from None
        return s, T, replace, replace_mask

    def rollout(
        self,
        s0: Tensor,
        n_steps: int,
        *,
        replace: Tensor | None = None,
        replace_mask: Tensor | None = None,
    ) -> Tensor:
        """States s_1..s_T, (E, B, T, S), with optional forcing.

        For t = 1..T: s̃ = where(replace_mask[..., t-1], replace[..., t-1, :], s_{t-1}),
        s_t = step(s̃). ``replace`` broadcasts to (E, B, T, S) (e.g. (B, T, S)),
        ``replace_mask`` (bool) to (E, B, T) (e.g. (E, 1, T) for per-member schedules, or
        (T,)). A forced step cuts the dependence (and gradient) on earlier states. Without
        ``replace`` it is a free run.
        """
        s, T, replace, replace_mask = self._rollout_inputs(s0, n_steps, replace, replace_mask)
        E, nb, S = s.shape
        if replace is not None:
            # unbind once: slicing inside the loop makes the backward pass scatter each step's
            # gradient into a full-size zero tensor (O(T²) memory traffic)
            replace, replace_mask = replace.unbind(2), replace_mask.unbind(2)
        out = []
        for t in range(T):
            if replace is not None:
                s = torch.where(replace_mask[t], replace[t], s)
            s = self.step(s)
            out.append(s)
        if not out:
            return s.new_empty((E, nb, 0, S))
        return torch.stack(out, dim=2)

    def forward(self, s0: Tensor, n_steps: int, **kwargs: Any) -> Tensor:
        """Alias of :meth:`rollout`."""
        return self.rollout(s0, n_steps, **kwargs)


# ------------------------------------------------------------------------------ PLRNN family


class PLRNN(EnsembleRNN):
    """Piecewise-linear RNN: z_t = A z_{t-1} + W relu(z_{t-1}) + h.

    Parameters: ``A`` (E, M) the diagonal of A; ``W`` (E, M, M), its diagonal masked to zero
    in the forward pass (the stored diagonal is ignored; zero at init); ``h`` (E, M);
    ``B`` (E, N, M). Jacobian J = diag(A) + W D, D = diag(1[z > 0]).
    Init: A ~ U(0.5, 0.9), W, h, B ~ U(±1/√M); with ``init="authors"`` (the paper's scheme)
    A ~ U(±1/√M) too (±0.183 at M = 30: the linear part starts near 0, not near 0.7).
    """

    _member_ndim: ClassVar[dict[str, int]] = {"A": 1, "W": 2, "h": 1, "B": 2}
    _sizes: ClassVar[dict[str, tuple[str, int]]] = {"latent_dim": ("A", -1),
                                                    "obs_dim": ("B", -2)}

    def _make_parameters(self) -> None:
        M = self.latent_dim
        self.A = self._param(M)
        self.W = self._param(M, M)
        self.h = self._param(M)
        #: 1 − I (M, M): masks W's diagonal (a buffer, not saved in the state dict)
        self.register_buffer("offdiag_mask", 1.0 - torch.eye(M, **self._factory),
                             persistent=False)

    def _draw(self, g: torch.Generator) -> dict[str, Tensor]:
        M, N = self.latent_dim, self.obs_dim
        r = M**-0.5
        W = _symmetric(g, (M, M), r)
        W.fill_diagonal_(0.0)
        return {
            "A": _symmetric(g, (M,), r) if self.init == "authors" else _uniform(g, (M,), 0.5, 0.9),
            "W": W,
            "h": _symmetric(g, (M,), r),
            "B": _symmetric(g, (N, M), r),
        }

    @property
    def W_offdiag(self) -> Tensor:
        """W with its diagonal masked to zero, (E, M, M)."""
        return self.W * self.offdiag_mask

    def _phi(self, z: Tensor) -> Tensor:
        """Nonlinearity fed through W: relu(z)."""
        return torch.relu(z)

    def _phi_prime(self, z: Tensor) -> Tensor:
        return (z > 0).to(z.dtype)

    def step(self, s: Tensor) -> Tensor:
        z = self._check_state(s)
        # A z + h + φ(z) Wᵀ as one fused multiply-add and one batched matmul-add
        return torch.baddbmm(torch.addcmul(self.h[:, None], self.A[:, None], z), self._phi(z),
                             self.W_offdiag.mT)

    def jacobian(self, s: Tensor) -> Tensor:
        z = self._check_state(s)
        d = self._phi_prime(z)  # (E, B, M)
        J = self.W_offdiag[:, None] * d[..., None, :]  # column scaling W D: (E, B, M, M)
        return J + torch.diag_embed(self.A)[:, None]


class DendPLRNN(PLRNN):
    """Dendritic PLRNN (Brenner et al. 2022): z_t = A z + W Σ_b α_b relu(z − θ_b) + h.

    Parameters as :class:`PLRNN` (W off-diagonal) plus ``alpha`` (E, n_bases) and ``theta``
    (E, n_bases, M); option ``n_bases`` (default 10). Jacobian diag(A) + W diag(Σ_b α_b 1[z > θ_b]).
    Init: A ~ U(0.5, 0.9), W, h, B ~ U(±1/√M), α ~ U(0, 1/n_bases) (so Σ_b α_b ≤ 1),
    θ ~ U(−1, 1).
    """

    _member_ndim: ClassVar[dict[str, int]] = {
        "A": 1, "W": 2, "h": 1, "alpha": 1, "theta": 2, "B": 2
    }
    _sizes: ClassVar[dict[str, tuple[str, int]]] = {**PLRNN._sizes, "n_bases": ("alpha", -1)}
    _options: ClassVar[dict[str, int]] = {"n_bases": 10}

    def _make_parameters(self) -> None:
        super()._make_parameters()
        self.alpha = self._param(self.n_bases)
        self.theta = self._param(self.n_bases, self.latent_dim)

    def _draw(self, g: torch.Generator) -> dict[str, Tensor]:
        p = super()._draw(g)
        p["alpha"] = _uniform(g, (self.n_bases,), 0.0, 1.0 / self.n_bases)
        p["theta"] = _symmetric(g, (self.n_bases, self.latent_dim), 1.0)
        return p

    def _phi(self, z: Tensor) -> Tensor:
        u = torch.relu(z[:, :, None, :] - self.theta[:, None])  # (E, B, n_bases, M)
        return (self.alpha[:, None, :, None] * u).sum(dim=2)

    def _phi_prime(self, z: Tensor) -> Tensor:
        on = (z[:, :, None, :] > self.theta[:, None]).to(z.dtype)
        return (self.alpha[:, None, :, None] * on).sum(dim=2)


class ShallowPLRNN(EnsembleRNN):
    """Shallow PLRNN: z_t = A z + W1 relu(W2 z + h2) + h1.

    Parameters: ``A`` (E, M) diagonal, ``W1`` (E, M, H), ``W2`` (E, H, M), ``h1`` (E, M),
    ``h2`` (E, H), ``B`` (E, N, M); option ``hidden_dim`` H (default 50).
    Jacobian diag(A) + W1 diag(1[W2 z + h2 > 0]) W2.
    Init (fan-in bounds): A ~ U(0.5, 0.9), W1 ~ U(±1/√H), W2, h1, h2, B ~ U(±1/√M).
    """

    _member_ndim: ClassVar[dict[str, int]] = {
        "A": 1, "W1": 2, "W2": 2, "h1": 1, "h2": 1, "B": 2
    }
    _sizes: ClassVar[dict[str, tuple[str, int]]] = {"latent_dim": ("A", -1),
                                                    "obs_dim": ("B", -2),
                                                    "hidden_dim": ("h2", -1)}
    _options: ClassVar[dict[str, int]] = {"hidden_dim": 50}

    def _make_parameters(self) -> None:
        M, H = self.latent_dim, self.hidden_dim
        self.A = self._param(M)
        self.W1 = self._param(M, H)
        self.W2 = self._param(H, M)
        self.h1 = self._param(M)
        self.h2 = self._param(H)

    def _draw(self, g: torch.Generator) -> dict[str, Tensor]:
        M, N, H = self.latent_dim, self.obs_dim, self.hidden_dim
        r = M**-0.5
        return {
            "A": _uniform(g, (M,), 0.5, 0.9),
            "W1": _symmetric(g, (M, H), H**-0.5),
            "W2": _symmetric(g, (H, M), r),
            "h1": _symmetric(g, (M,), r),
            "h2": _symmetric(g, (H,), r),
            "B": _symmetric(g, (N, M), r),
        }

    def _hidden(self, z: Tensor) -> Tensor:
        """Pre-activation W2 z + h2, (E, B, H)."""
        return z @ self.W2.mT + self.h2[:, None]

    def step(self, s: Tensor) -> Tensor:
        z = self._check_state(s)
        u = torch.relu(self._hidden(z))
        return self.A[:, None] * z + u @ self.W1.mT + self.h1[:, None]

    def jacobian(self, s: Tensor) -> Tensor:
        z = self._check_state(s)
        d = (self._hidden(z) > 0).to(z.dtype)  # (E, B, H)
        J = self.W1[:, None] @ (d[..., :, None] * self.W2[:, None])  # (E, B, M, M)
        return J + torch.diag_embed(self.A)[:, None]


# ------------------------------------------------------------------------------ tanh RNN, LSTM


class TanhRNN(EnsembleRNN):
    """Vanilla RNN: z_t = tanh(W z_{t-1} + h).

    Parameters ``W`` (E, M, M), ``h`` (E, M), ``B`` (E, N, M); Jacobian diag(1 − z_t²) W.
    Init like ``torch.nn.RNN``: W, h ~ U(±1/√M); B ~ U(±1/√M).
    """

    _member_ndim: ClassVar[dict[str, int]] = {"W": 2, "h": 1, "B": 2}
    _sizes: ClassVar[dict[str, tuple[str, int]]] = {"latent_dim": ("h", -1),
                                                    "obs_dim": ("B", -2)}

    def _make_parameters(self) -> None:
        M = self.latent_dim
        self.W = self._param(M, M)
        self.h = self._param(M)

    def _draw(self, g: torch.Generator) -> dict[str, Tensor]:
        M, N = self.latent_dim, self.obs_dim
        r = M**-0.5
        return {
            "W": _symmetric(g, (M, M), r),
            "h": _symmetric(g, (M,), r),
            "B": _symmetric(g, (N, M), r),
        }

    def step(self, s: Tensor) -> Tensor:
        z = self._check_state(s)
        return torch.tanh(z @ self.W.mT + self.h[:, None])

    def jacobian(self, s: Tensor) -> Tensor:
        z1 = self.step(s)
        return (1.0 - z1 * z1)[..., :, None] * self.W[:, None]


class LSTM(EnsembleRNN):
    """LSTM without external input; state s = (h, c), S = 2M.

    a = W h + b split into gates (i, f, g, o) (PyTorch's order): i, f, o = σ(·), g = tanh(·);
    c' = f⊙c + i⊙g, h' = o⊙tanh(c'). Parameters ``W`` (E, 4M, M) (rows W_i, W_f, W_g, W_o, like
    ``nn.LSTM.weight_hh``), ``b`` (E, 4M), ``B`` (E, N, M); x̂ = B h reads h only.
    Init like ``torch.nn.LSTM``: W, b ~ U(±1/√M); B ~ U(±1/√M).
    """

    _member_ndim: ClassVar[dict[str, int]] = {"W": 2, "b": 1, "B": 2}
    _state_factor: ClassVar[int] = 2
    _sizes: ClassVar[dict[str, tuple[str, int]]] = {"latent_dim": ("W", -1),
                                                    "obs_dim": ("B", -2)}

    def _make_parameters(self) -> None:
        M = self.latent_dim
        self.W = self._param(4 * M, M)
        self.b = self._param(4 * M)

    def _draw(self, g: torch.Generator) -> dict[str, Tensor]:
        M, N = self.latent_dim, self.obs_dim
        r = M**-0.5
        return {
            "W": _symmetric(g, (4 * M, M), r),
            "b": _symmetric(g, (4 * M,), r),
            "B": _symmetric(g, (N, M), r),
        }

    def _state_from_latent(self, z: Tensor) -> Tensor:
        return torch.cat([z, torch.zeros_like(z)], dim=-1)

    def _gates(self, s: Tensor) -> tuple[Tensor, ...]:
        """(c, i, f, g, o, c') at s, the one gate computation of :meth:`step` and
        :meth:`jacobian`: a = b + W h in one ``baddbmm``, one sigmoid over the contiguous
        (E, B, 4M) block (g's slice of it unused), g = tanh(a_g), c' = f c + i g."""
        M = self.latent_dim
        h, c = s[..., :M], s[..., M:]
        a = torch.baddbmm(self.b[:, None], h, self.W.mT)  # (E, B, 4M), gates i, f, g, o
        sig = torch.sigmoid(a)
        i, f, o = sig[..., :M], sig[..., M : 2 * M], sig[..., 3 * M :]
        g = torch.tanh(a[..., 2 * M : 3 * M])
        return c, i, f, g, o, torch.addcmul(f * c, i, g)

    def step(self, s: Tensor) -> Tensor:
        c, i, f, g, o, c1 = self._gates(self._check_state(s))
        return torch.cat([o * torch.tanh(c1), c1], dim=-1)

    def jacobian(self, s: Tensor) -> Tensor:
        """[[∂h'/∂h, ∂h'/∂c], [∂c'/∂h, ∂c'/∂c]], (E, B, 2M, 2M)."""
        s = self._check_state(s)
        c, i, f, g, o, c1 = self._gates(s)
        Wi, Wf, Wg, Wo = (w[:, None] for w in self.W.chunk(4, dim=-2))  # (E, 1, M, M)
        col = _as_column  # diag(v) X == col(v) * X (row scaling)
        dc_dh = col(c * f * (1 - f)) * Wf + col(g * i * (1 - i)) * Wi + col(i * (1 - g * g)) * Wg
        dc_dc = torch.diag_embed(f)
        tc = torch.tanh(c1)
        dtc = o * (1 - tc * tc)
        dh_dh = col(tc * o * (1 - o)) * Wo + col(dtc) * dc_dh
        dh_dc = torch.diag_embed(dtc * f)
        top = torch.cat([dh_dh, dh_dc], dim=-1)
        bottom = torch.cat([dc_dh, dc_dc], dim=-1)
        return torch.cat([top, bottom], dim=-2)


# ------------------------------------------------------------------------------ registry

MODELS: dict[str, type[EnsembleRNN]] = {
    "plrnn": PLRNN,
    "dendplrnn": DendPLRNN,
    "shplrnn": ShallowPLRNN,
    "rnn": TanhRNN,
    "lstm": LSTM,
}


def make_model(name: str, latent_dim: int, obs_dim: int, **kwargs: Any) -> EnsembleRNN:
    """Build ``MODELS[name](latent_dim, obs_dim, **kwargs)``; KeyError lists the known names."""
    try:
        cls = MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(MODELS)}") from None
    return cls(latent_dim, obs_dim, **kwargs)
