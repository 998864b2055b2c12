"""Problem specifications: what to integrate, validated once, engine-agnostic."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["AbstractProblem", "ODEProblem", "SDEProblem"]


def _as_float_tensor(name: str, x: Any, *, like: Tensor | None = None) -> Tensor:
    """Convert ``x`` (tensor, ndarray, list, number) to a floating tensor, or explain why not."""
    if isinstance(x, Tensor):
        t = x
    elif isinstance(x, np.ndarray):
        t = torch.from_numpy(x) if x.dtype.kind == "f" else torch.as_tensor(x)
        if like is not None:  # NumPy data has no device: it goes where the state is
            t = t.to(like.device)
    else:
        try:
            t = torch.as_tensor(
                x,
                dtype=like.dtype if like is not None else torch.float64,
                device=like.device if like is not None else None,
            )
        except (TypeError, ValueError, RuntimeError) as e:
            raise TypeError(f"{name} must be a tensor, an array or a number, got {x!r}") from e
    if not t.is_floating_point():
        if t.is_complex():
            raise TypeError(f"{name} is complex; hybrideq integrates real states only")
        if like is None:
            raise TypeError(
                f"{name} has dtype {t.dtype}; pass a floating tensor, e.g. {name}.double()"
            )
        t = t.to(like.dtype)
    return t


def _mass_matrix(m: Any, n: int, like: Tensor) -> Tensor:
    """Validate a mass matrix: a finite ``(n, n)`` floating matrix on the state's device."""
    if hasattr(m, "toarray") and not isinstance(m, Tensor):  # SciPy sparse
        m = m.toarray()
    mt = _as_float_tensor("mass_matrix", m, like=like)
    if mt.is_sparse or mt.layout != torch.strided:
        mt = mt.to_dense()
    if tuple(mt.shape) != (n, n):
        raise ValueError(
            f"mass_matrix must have shape ({n}, {n}) (state components squared, shared by "
            f"the batch); got {tuple(mt.shape)}"
        )
    if mt.dtype != like.dtype:
        raise TypeError(
            f"mass_matrix has dtype {mt.dtype} but y0 has {like.dtype}; use "
            "mass_matrix.to(y0.dtype)"
        )
    if mt.device != like.device:
        raise ValueError(f"mass_matrix is on {mt.device} but y0 is on {like.device}; move it")
    if not bool(torch.isfinite(mt).all()):
        raise ValueError("mass_matrix contains NaN or Inf")
    return mt


def _sparsity_pattern(pattern: Any, n: int, like: Tensor) -> Tensor:
    """A sparsity pattern as a coalesced boolean sparse COO tensor ``(n, n)``."""
    if hasattr(pattern, "tocoo") and not isinstance(pattern, Tensor):  # SciPy sparse
        coo = pattern.tocoo()
        idx = torch.as_tensor(np.vstack([coo.row, coo.col]), dtype=torch.int64)
        shape = tuple(coo.shape)
    else:
        pt = pattern if isinstance(pattern, Tensor) else torch.as_tensor(np.asarray(pattern))
        shape = tuple(pt.shape)
        if pt.layout != torch.strided:
            pt = pt.to_sparse_coo().coalesce()
            idx = pt.indices()
        else:
            if pt.ndim != 2:
                raise ValueError(f"jac_prototype must be a matrix ({n}, {n}); got {shape}")
            idx = torch.nonzero(pt != 0).T
    if shape != (n, n):
        raise ValueError(f"jac_prototype must have shape ({n}, {n}); got {shape}")
    vals = torch.ones(idx.shape[1], dtype=torch.bool)
    return (
        torch.sparse_coo_tensor(idx, vals, (n, n), check_invariants=True).coalesce().to(like.device)
    )


def _validate_ivp(y0: Any, tspan: Any, p: Any) -> tuple[Tensor, Tensor, Tensor, Any, bool]:
    """Validate ``y0``, ``tspan`` and ``p`` (shared by every problem type).

    Returns ``(y0, t0, t1, p, batched)`` as tensors on ``y0``'s dtype and device.
    """
    y0t = _as_float_tensor("y0", y0)
    if y0t.ndim == 0:
        raise ValueError("y0 must have at least one dimension; use y0.reshape(1)")
    if y0t.numel() == 0:
        raise ValueError("y0 is empty; pass at least one state component")
    if not bool(torch.isfinite(y0t).all()):
        raise ValueError("y0 contains NaN or Inf; every initial value must be finite")
    batched = y0t.ndim >= 2
    batch = y0t.shape[0] if batched else 1
    try:
        t0_raw, t1_raw = tspan
    except (TypeError, ValueError) as e:
        raise TypeError("tspan must be a pair (t0, t1)") from e
    t0 = _as_float_tensor("tspan[0]", t0_raw, like=y0t)
    t1 = _as_float_tensor("tspan[1]", t1_raw, like=y0t)
    for name, tt in (("tspan[0]", t0), ("tspan[1]", t1)):
        if tt.dtype != y0t.dtype:
            raise TypeError(
                f"{name} has dtype {tt.dtype} but y0 has {y0t.dtype}; "
                f"use the same dtype, e.g. {name}.to(y0.dtype)"
            )
        if tt.device != y0t.device:
            raise ValueError(
                f"{name} is on {tt.device} but y0 is on {y0t.device}; move it with .to()"
            )
        if tt.ndim > 1 or (tt.ndim == 1 and (not batched or tt.shape[0] != batch)):
            raise ValueError(
                f"{name} must be a scalar, or for a batch a tensor of shape ({batch},); "
                f"got shape {tuple(tt.shape)}"
            )
        if not bool(torch.isfinite(tt).all()):
            raise ValueError(f"{name} must be finite")
    if bool((t0 == t1).any()):
        raise ValueError("tspan is empty (t0 == t1); give a span of non-zero length")
    if isinstance(p, np.ndarray):
        p = torch.from_numpy(p).to(y0t.dtype) if p.dtype.kind == "f" else torch.as_tensor(p)
    if isinstance(p, Tensor) and p.is_floating_point():
        if p.dtype != y0t.dtype:
            raise TypeError(f"p has dtype {p.dtype} but y0 has {y0t.dtype}; use p.to(y0.dtype)")
        if p.device != y0t.device:
            raise ValueError(f"p is on {p.device} but y0 is on {y0t.device}; move it")
    return y0t, t0, t1, p, batched


class AbstractProblem:
    """Base of all problem specs: an initial state ``y0`` (batch rule) and a span."""

    y0: Tensor
    tspan: tuple[Tensor, Tensor]
    batched: bool

    @property
    def batch_size(self) -> int:
        """Number of independent problems (1 for an unbatched problem)."""
        return int(self.y0.shape[0]) if self.batched else 1

    @property
    def state_shape(self) -> tuple[int, ...]:
        """Shape of one problem's state."""
        return tuple(self.y0.shape[1:]) if self.batched else tuple(self.y0.shape)

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the state."""
        return self.y0.dtype

    @property
    def device(self) -> torch.device:
        """Device of the state."""
        return self.y0.device

    @property
    def n(self) -> int:
        """Number of state components of one problem (the flattened state size)."""
        return int(np.prod(self.state_shape))


@dataclass(frozen=True, eq=False)
class ODEProblem(AbstractProblem):
    """An initial value problem ``dy/dt = f(t, y, p)``, ``y(t0) = y0``.

    Args:
        f: the right-hand side ``f(t, y, p)``, returning ``dy/dt`` with the shape of ``y``.
            For one problem (1-D ``y0``) it gets ``t`` as a 0-d tensor and ``y`` of
            shape ``(n,)``. For a batch it gets ``t`` of shape ``(batch,)`` (every sample
            has its own time) and ``y`` of shape ``(batch, *state)``. Torch functions and
            ``nn.Module``s are first class; NumPy functions work (without gradients).
        y0: the initial state. 1-D: one problem. ``ndim >= 2``: the first dimension is the
            batch of independent problems (the *batch rule*).
        tspan: ``(t0, t1)``. Each end may be a number or, for a batch, a tensor of shape
            ``(batch,)`` for per-sample spans. ``t1 < t0`` integrates backwards in time.
        p: parameters passed to ``f`` unchanged (a tensor, a tuple, a module or ``None``).
        jac: optional analytic Jacobian ``jac(t, y, p)`` of ``f`` with respect to ``y``,
            called like ``f``; it returns ``(n, n)`` for one problem or ``(batch, n, n)``
            for a batch, where ``n`` is the number of state components (the state is
            flattened). Stiff solvers use it; without it they differentiate ``f`` with
            ``torch.func`` (or by finite differences where ``f`` is not a torch function).
        mass_matrix: optional constant ``(n, n)`` matrix ``M`` of ``M y' = f(t, y, p)``,
            shared by the batch. It may be singular: a zero row makes that equation
            algebraic (an index-1 DAE). ``solve`` makes an inconsistent ``y0`` consistent
            by default (Brown's method on the algebraic variables, the zero columns of
            ``M``; see ``initializealg``). Rosenbrock and BDF solvers accept it.
        jac_prototype: optional sparsity pattern of the Jacobian, ``(n, n)``: a torch
            sparse tensor, a SciPy sparse matrix or a dense boolean/0-1 array. Large
            stiff systems use it to avoid dense ``n × n`` matrices.

    Example:
        >>> import torch, hybrideq as hq
        >>> prob = hq.ODEProblem(
        ...     lambda t, y, p: -p * y, torch.ones(3), (0.0, 1.0), p=torch.tensor(2.0)
        ... )
        >>> prob.batch_size, prob.state_shape
        (1, (3,))
    """

    f: Callable[..., Any]
    y0: Tensor
    tspan: tuple[Tensor, Tensor]
    p: Any = None
    jac: Callable[..., Any] | None = None
    mass_matrix: Tensor | None = None
    jac_prototype: Tensor | None = None
    batched: bool = field(init=False)

    def __init__(
        self,
        f: Callable[..., Any],
        y0: Any,
        tspan: Any,
        p: Any = None,
        *,
        jac: Callable[..., Any] | None = None,
        mass_matrix: Any = None,
        jac_prototype: Any = None,
    ) -> None:
        if not callable(f):
            raise TypeError(f"f must be callable as f(t, y, p), got {type(f).__name__}")
        if jac is not None and not callable(jac):
            raise TypeError(
                f"jac must be callable as jac(t, y, p) -> (n, n), got {type(jac).__name__}"
            )
        y0t, t0, t1, p, batched = _validate_ivp(y0, tspan, p)
        n = int(y0t[0].numel()) if batched else int(y0t.numel())
        mass = None if mass_matrix is None else _mass_matrix(mass_matrix, n, y0t)
        proto = None if jac_prototype is None else _sparsity_pattern(jac_prototype, n, y0t)
        object.__setattr__(self, "f", f)
        object.__setattr__(self, "y0", y0t)
        object.__setattr__(self, "tspan", (t0, t1))
        object.__setattr__(self, "p", p)
        object.__setattr__(self, "jac", jac)
        object.__setattr__(self, "mass_matrix", mass)
        object.__setattr__(self, "jac_prototype", proto)
        object.__setattr__(self, "batched", batched)

    def remake(self, **changes: Any) -> ODEProblem:
        """A copy with some fields replaced (validated again).

        Fields: ``f``, ``y0``, ``tspan``, ``p``, ``jac``, ``mass_matrix``, ``jac_prototype``.
        """
        args = {
            "f": self.f,
            "y0": self.y0,
            "tspan": self.tspan,
            "p": self.p,
            "jac": self.jac,
            "mass_matrix": self.mass_matrix,
            "jac_prototype": self.jac_prototype,
        }
        unknown = set(changes) - set(args)
        if unknown:
            raise TypeError(f"remake() got unknown fields {sorted(unknown)}; use {list(args)}")
        args.update(changes)
        return ODEProblem(**args)


NOISE_TYPES = ("diagonal", "scalar", "additive", "general")
INTERPRETATIONS = ("ito", "stratonovich")


@dataclass(frozen=True, eq=False)
class SDEProblem(AbstractProblem):
    """A stochastic differential equation ``dy = f(t, y, p) dt + g(t, y, p) dW``, ``y(t0) = y0``.

    Args:
        f: the drift ``f(t, y, p)``, called like an :class:`ODEProblem`'s ``f`` (``t`` of
            shape ``(batch,)`` and ``y`` of shape ``(batch, *state)`` for a batch).
        g: the diffusion ``g(t, y, p)``. Its output shape depends on ``noise``:

            - ``"diagonal"`` (default): shaped like ``y``; one Brownian motion per state
              component, ``dy_i = f_i dt + g_i dW_i`` (``m = n``).
            - ``"scalar"``: shaped like ``y``; one Brownian motion shared by every
              component, ``dy_i = f_i dt + g_i dW`` (``m = 1``).
            - ``"additive"``: ``g`` does not depend on ``y`` (it is still called as
              ``g(t, y, p)``). Shaped like ``y`` (diagonal, ``m = n``), or with
              ``noise_dim=m`` shaped ``(*y.shape, m)`` (a full matrix).
            - ``"general"``: shaped ``(*y.shape, m)`` with ``m = noise_dim`` Brownian
              motions: ``dy_i = f_i dt + Σ_k g_ik dW_k``.
        y0: the initial state; the batch rule of :class:`ODEProblem` (``ndim >= 2``: the
            first dimension is a batch of independent problems, each with its own Brownian
            path).
        tspan: ``(t0, t1)``, numbers or per-sample ``(batch,)`` tensors; ``t1 > t0``.
        p: parameters passed to ``f`` and ``g`` unchanged.
        noise: the noise structure, one of ``"diagonal"``, ``"scalar"``, ``"additive"``,
            ``"general"``.
        noise_dim: the number ``m`` of Brownian motions for ``"general"`` (required) and
            matrix ``"additive"`` noise.
        interpretation: ``"ito"`` (default) or ``"stratonovich"``: how ``g dW`` is read.
            A solver integrates one interpretation (``EulerHeun`` is Stratonovich, the
            Rößler methods Itô); additive noise means the same under both.

    Example:
        Geometric Brownian motion ``dy = μ y dt + σ y dW`` for 1000 paths:

        >>> import torch, hybrideq as hq
        >>> mu, sigma = 0.5, 0.2
        >>> gbm = hq.SDEProblem(
        ...     lambda t, y, p: mu * y,
        ...     lambda t, y, p: sigma * y,
        ...     torch.ones(1000, 1, dtype=torch.float64),
        ...     (0.0, 1.0),
        ... )
        >>> gbm.batch_size, gbm.noise, gbm.noise_dim
        (1000, 'diagonal', 1)
        >>> sol = hq.solve(gbm, hq.SRIW1(), seed=0, saveat=[0.0, 1.0], stepping="joint")
        >>> W1 = sol.W(1.0)  # the Brownian path of each sample at t = 1
        >>> exact = torch.exp((mu - sigma**2 / 2) * 1.0 + sigma * W1)
        >>> bool((sol.y[:, -1] - exact).abs().max() < 1e-2)
        True
    """

    f: Callable[..., Any]
    g: Callable[..., Any]
    y0: Tensor
    tspan: tuple[Tensor, Tensor]
    p: Any = None
    noise: str = "diagonal"
    noise_dim: int = field(default=0)
    interpretation: str = "ito"
    batched: bool = field(init=False)
    matrix_noise: bool = field(init=False)
    """Whether ``g`` returns a matrix ``(*y.shape, m)`` (general or matrix additive noise)."""

    def __init__(
        self,
        f: Callable[..., Any],
        g: Callable[..., Any],
        y0: Any,
        tspan: Any,
        p: Any = None,
        *,
        noise: str = "diagonal",
        noise_dim: int | None = None,
        interpretation: str = "ito",
    ) -> None:
        if not callable(f):
            raise TypeError(f"f (the drift) must be callable as f(t, y, p), got {type(f).__name__}")
        if not callable(g):
            raise TypeError(
                f"g (the diffusion) must be callable as g(t, y, p), got {type(g).__name__}"
            )
        if noise not in NOISE_TYPES:
            raise ValueError(
                f"noise must be one of {', '.join(map(repr, NOISE_TYPES))}, got {noise!r}"
            )
        interp = interpretation.lower() if isinstance(interpretation, str) else interpretation
        if interp not in INTERPRETATIONS:
            raise ValueError(
                f"interpretation must be 'ito' or 'stratonovich', got {interpretation!r}"
            )
        y0t, t0, t1, p, batched = _validate_ivp(y0, tspan, p)
        if bool((t1 < t0).any()):
            raise ValueError(
                "tspan must run forwards for an SDE (t1 > t0): a Brownian path is generated "
                "forwards in time"
            )
        n = int(y0t[0].numel()) if batched else int(y0t.numel())
        if noise_dim is not None and (
            isinstance(noise_dim, bool) or not isinstance(noise_dim, (int, np.integer))
        ):
            raise TypeError(f"noise_dim must be a positive int, got {noise_dim!r}")
        if noise_dim is not None and noise_dim < 1:
            raise ValueError(f"noise_dim must be a positive int, got {noise_dim!r}")
        if noise == "general" and noise_dim is None:
            raise ValueError(
                "noise='general' needs noise_dim=m, the number of Brownian motions "
                "(g then returns (*y.shape, m))"
            )
        if noise in ("diagonal", "scalar") and noise_dim is not None:
            expected = n if noise == "diagonal" else 1
            if int(noise_dim) != expected:
                raise ValueError(
                    f"noise={noise!r} has {expected} Brownian motion(s) for this state; "
                    f"noise_dim={noise_dim} does not match. Use noise='general' with "
                    "noise_dim for a diffusion matrix"
                )
        if noise == "diagonal":
            m = n
        elif noise == "scalar":
            m = 1
        elif noise == "additive":
            m = n if noise_dim is None else int(noise_dim)
        else:
            m = int(noise_dim)  # type: ignore[arg-type]
        object.__setattr__(self, "f", f)
        object.__setattr__(self, "g", g)
        object.__setattr__(self, "y0", y0t)
        object.__setattr__(self, "tspan", (t0, t1))
        object.__setattr__(self, "p", p)
        object.__setattr__(self, "noise", noise)
        object.__setattr__(self, "noise_dim", m)
        object.__setattr__(self, "interpretation", interp)
        object.__setattr__(self, "batched", batched)
        object.__setattr__(
            self,
            "matrix_noise",
            noise == "general" or (noise_dim is not None and noise == "additive"),
        )

    def remake(self, **changes: Any) -> SDEProblem:
        """A copy with some fields replaced (validated again).

        Fields: ``f``, ``g``, ``y0``, ``tspan``, ``p``, ``noise``, ``noise_dim``,
        ``interpretation``.
        """
        args: dict[str, Any] = {
            "f": self.f,
            "g": self.g,
            "y0": self.y0,
            "tspan": self.tspan,
            "p": self.p,
            "noise": self.noise,
            "noise_dim": self.noise_dim if self.matrix_noise else None,
            "interpretation": self.interpretation,
        }
        unknown = set(changes) - set(args)
        if unknown:
            raise TypeError(f"remake() got unknown fields {sorted(unknown)}; use {list(args)}")
        args.update(changes)
        return SDEProblem(**args)
