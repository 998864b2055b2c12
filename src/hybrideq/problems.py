"""Problem specifications: what to integrate, validated once, engine-agnostic."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["AbstractProblem", "ODEProblem"]


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


class AbstractProblem:
    """Base of all problem specs."""


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
    batched: bool = field(init=False)

    def __init__(self, f: Callable[..., Any], y0: Any, tspan: Any, p: Any = None) -> None:
        if not callable(f):
            raise TypeError(f"f must be callable as f(t, y, p), got {type(f).__name__}")
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
        object.__setattr__(self, "f", f)
        object.__setattr__(self, "y0", y0t)
        object.__setattr__(self, "tspan", (t0, t1))
        object.__setattr__(self, "p", p)
        object.__setattr__(self, "batched", batched)

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

    def remake(self, **changes: Any) -> ODEProblem:
        """A copy with some of ``f``, ``y0``, ``tspan``, ``p`` replaced (validated again)."""
        args = {"f": self.f, "y0": self.y0, "tspan": self.tspan, "p": self.p}
        unknown = set(changes) - set(args)
        if unknown:
            raise TypeError(f"remake() got unknown fields {sorted(unknown)}; use {list(args)}")
        args.update(changes)
        return ODEProblem(**args)
