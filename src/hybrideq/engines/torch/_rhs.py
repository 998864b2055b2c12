"""Right-hand-side wrappers: the user's ``f(t, y, p)`` seen as ``(batch,) × (batch, n)``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["AdjointRHS", "UserRHS"]


class UserRHS:
    """Calls ``f(t, y, p)`` with the user's shapes and returns ``(batch, n)``.

    For one problem ``f`` gets a 0-d ``t`` and ``y`` of shape ``(n,)``; for a batch,
    ``t`` of shape ``(batch,)`` and ``y`` of shape ``(batch, *state)``. The first call
    checks the shape of what ``f`` returns. NumPy results are converted (no gradient).
    """

    def __init__(
        self,
        f: Callable[..., Any],
        p: Any,
        batched: bool,
        state_shape: tuple[int, ...],
        dtype: torch.dtype,
        device: torch.device,
    ) -> None:
        self.f, self.p = f, p
        self.batched, self.state_shape = batched, state_shape
        self.dtype, self.device = dtype, device
        self.ncalls = 0
        self._checked = False
        # A batch of vectors is already in the internal layout: no reshapes needed.
        self._flat = batched and len(state_shape) == 1

    def __call__(self, t: Tensor, y: Tensor) -> Tensor:
        self.ncalls += 1
        if self._flat and self._checked:
            out = self.f(t, y, self.p)
            return out if isinstance(out, Tensor) else self._convert(out).reshape(y.shape)
        batch = y.shape[0]
        if self.batched:
            out = self.f(t, y.reshape(batch, *self.state_shape), self.p)
        else:
            out = self.f(t[0], y.reshape(self.state_shape), self.p)
        if not isinstance(out, Tensor):
            out = self._convert(out)
        if not self._checked:
            expected = (batch, *self.state_shape) if self.batched else self.state_shape
            if tuple(out.shape) != tuple(expected):
                raise ValueError(
                    f"f returned shape {tuple(out.shape)} but the state has shape "
                    f"{tuple(expected)}; f(t, y, p) must return dy/dt with the shape of y"
                )
            if out.dtype != self.dtype:
                raise TypeError(
                    f"f returned dtype {out.dtype} but the state is {self.dtype}; "
                    "make f compute in the dtype of y"
                )
            self._checked = True
        return out.reshape(batch, -1)

    def _convert(self, out: Any) -> Tensor:
        return torch.as_tensor(np.asarray(out), dtype=self.dtype, device=self.device)


class AdjointRHS:
    """Right-hand side of a continuous adjoint, with the parameter integrand as a by-product.

    With ``state_from=None`` (backsolve) the state is ``z = [y, a]`` and
    ``dz/dt = [f(t, y), −aᵀ ∂f/∂y]``. With ``state_from`` given (interpolating adjoint)
    the state is ``z = a`` and ``y(t)`` comes from that callable.

    The parameter adjoint ``da_p/dt = −aᵀ ∂f/∂p`` is shared by the whole batch (the
    parameters are), so it is a quadrature: at each stage the loop asks for
    ``Σ_b w_b (−a_bᵀ ∂f/∂p(y_b))``. It comes from the same vector–Jacobian product as
    ``aᵀ ∂f/∂y``: the cotangent is scaled per sample by ``w_b`` and the state part is
    divided by it again (rows of ``f`` depend on their own sample only).
    """

    def __init__(
        self,
        user: UserRHS,
        params: Sequence[Tensor],
        n: int,
        state_from: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        self.user = user
        self.params = list(params)
        self.n = n
        self.state_from = state_from
        self.size = sum(p.numel() for p in self.params)
        self._w: Tensor | None = None
        self._last: Tensor | None = None

    def set_weights(self, w: Tensor | None) -> None:
        self._w = w

    def last(self) -> Tensor:
        assert self._last is not None
        return self._last

    def _split(self, t: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        if self.state_from is None:
            return z[:, : self.n], z[:, self.n :]
        return self.state_from(t), z

    def _flat(self, grads: Sequence[Tensor | None]) -> Tensor:
        parts = [
            torch.zeros(p.numel(), dtype=p.dtype, device=p.device) if g is None else g.reshape(-1)
            for g, p in zip(grads, self.params, strict=True)
        ]
        return torch.cat(parts) if parts else torch.zeros(0)

    def __call__(self, t: Tensor, y: Tensor) -> Tensor:
        z = y
        y, a = self._split(t, z)
        w = self._w
        with torch.enable_grad():
            yv = y.detach().requires_grad_(True)
            fy = self.user(t, yv)
            if w is None or not self.params:
                (gy,) = torch.autograd.grad(fy, yv, a, allow_unused=True)
                self._last = None if w is None else torch.zeros(0, dtype=z.dtype)
            else:
                wsafe = torch.where(w == 0, torch.ones_like(w), w)
                cot = a * torch.where(w == 0, torch.zeros_like(w), w)[:, None]
                grads = torch.autograd.grad(fy, [yv, *self.params], cot, allow_unused=True)
                gy = grads[0]
                if gy is not None:
                    gy = gy / wsafe[:, None]
                self._last = -self._flat(grads[1:])
        if gy is None:
            gy = torch.zeros_like(a)
        da = -gy.detach()
        if self.state_from is None:
            return torch.cat([fy.detach(), da], 1)
        return da

    def recompute(self, t: Tensor, z: Tensor, w: Tensor) -> Tensor:
        """``Σ_b w_b (−a_bᵀ ∂f/∂p)`` at ``(t, z)``, evaluated afresh."""
        if not self.params:
            return torch.zeros(0, dtype=z.dtype, device=z.device)
        y, a = self._split(t, z)
        with torch.enable_grad():
            yv = y.detach().requires_grad_(True)
            fy = self.user(t, yv)
            grads = torch.autograd.grad(fy, self.params, a * w[:, None], allow_unused=True)
        return -self._flat(grads)
