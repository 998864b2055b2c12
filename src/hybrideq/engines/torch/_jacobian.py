"""Jacobians for the implicit solvers: the user's, automatic (``torch.func``), or finite differences.

Every sample's Jacobian ``J_b = ∂f_b/∂y_b`` is ``(n, n)``; a batch gives ``(batch, n, n)``.
Rows of ``f`` depend on their own sample only (the batch rule), so the Jacobians of all
samples come from one batched evaluation per direction:

- automatic: forward mode, ``torch.func.jvp`` of the batched ``f`` along the unit vectors
  ``e_j`` (the same ``e_j`` for every sample gives column ``j`` of every ``J_b``),
  ``vmap``-ed over the ``n`` directions, plus one direction along ``t`` for ``∂f/∂t``
  (Rosenbrock methods need it). The result stays on autograd's tape, so a solve
  differentiated by direct backpropagation sees how ``J`` depends on ``y`` and ``p``;
- finite differences: ``(f(t, y + δ_j e_j) − f(t, y)) / δ_j`` with
  ``δ_j = √ε · max(|y_j|, 1)``, one batched evaluation per column;
- the user's ``jac(t, y, p)``, with ``∂f/∂t`` from a forward-mode product along ``t``
  (or a finite difference where ``f`` is not a torch function).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

__all__ = ["JacobianProvider", "user_jacobian"]

RHSFn = Callable[[Tensor, Tensor], Tensor]


def user_jacobian(
    jac: Callable[..., Any],
    p: Any,
    batched: bool,
    state_shape: tuple[int, ...],
    n: int,
    dtype: torch.dtype,
) -> Callable[[Tensor, Tensor], Tensor]:
    """Wrap ``jac(t, y, p)`` as ``(t (B,), y (B, n)) -> (B, n, n)``, checking its shape once."""
    checked = False

    def call(t: Tensor, y: Tensor) -> Tensor:
        nonlocal checked
        batch = y.shape[0]
        if batched:
            out = jac(t, y.reshape(batch, *state_shape), p)
        else:
            out = jac(t[0], y.reshape(state_shape), p)
        if not isinstance(out, Tensor):
            out = torch.as_tensor(out, dtype=dtype, device=y.device)
        if out.layout != torch.strided:
            out = out.to_dense()
        if not checked:
            expected = (batch, n, n) if batched else (n, n)
            if tuple(out.shape) != expected:
                what = f"({batch}, {n}, {n}) for this batch" if batched else f"({n}, {n})"
                raise ValueError(
                    f"jac returned shape {tuple(out.shape)}; it must return the Jacobian "
                    f"∂f/∂y of shape {what} (n = number of state components)"
                )
            if out.dtype != dtype:
                raise TypeError(
                    f"jac returned dtype {out.dtype} but the state is {dtype}; make jac "
                    "compute in the dtype of y"
                )
            checked = True
        return out.reshape(batch, n, n)

    return call


class JacobianProvider:
    """Computes ``J = ∂f/∂y`` ``(B, n, n)`` and, when asked, ``∂f/∂t`` ``(B, n)``.

    Args:
        rhs: the internal right-hand side ``(t (B,), y (B, n)) -> (B, n)``.
        n: number of state components.
        jac: a callable ``(t, y) -> (B, n, n)`` (already wrapped), or ``None``.
        autodiff: use ``torch.func`` (``True``) or finite differences (``False``) where
            ``jac`` is not given. Automatic differentiation falls back to finite
            differences, with a warning, when ``f`` cannot be traced (NumPy code,
            ``.item()``, data-dependent Python branches).
        need_ft: whether ``∂f/∂t`` is needed (Rosenbrock methods).
    """

    def __init__(
        self,
        rhs: RHSFn,
        n: int,
        jac: Callable[[Tensor, Tensor], Tensor] | None,
        autodiff: bool,
        need_ft: bool,
    ) -> None:
        self.rhs, self.n = rhs, n
        self.jac = jac
        self.autodiff = autodiff
        self.need_ft = need_ft
        self.nf = 0  # evaluations of f spent on finite differences
        self._basis: dict[tuple[int, torch.dtype, torch.device], tuple[Tensor, Tensor]] = {}

    def __call__(
        self, t: Tensor, y: Tensor, f0: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """``J`` and ``∂f/∂t`` (or ``None``) at ``(t, y)``; ``f0 = f(t, y)`` if known."""
        if self.jac is not None:
            return self.jac(t, y), self._ft(t, y, f0) if self.need_ft else None
        if self.autodiff:
            try:
                return self._forward_mode(t, y)
            except Exception as e:
                warnings.warn(
                    f"automatic Jacobian failed ({type(e).__name__}: {e}); using finite "
                    "differences instead. Pass jac= to the ODEProblem, or autodiff=False to "
                    "the solver to silence this",
                    stacklevel=6,
                )
                self.autodiff = False
        return self._finite_differences(t, y, f0)

    def _directions(
        self, batch: int, dtype: torch.dtype, device: torch.device
    ) -> tuple[Tensor, Tensor]:
        key = (batch, dtype, device)
        if key not in self._basis:
            n = self.n
            m = n + 1 if self.need_ft else n
            tt = torch.zeros(m, batch, dtype=dtype, device=device)
            ty = torch.zeros(m, batch, n, dtype=dtype, device=device)
            idx = torch.arange(n, device=device)
            ty[idx, :, idx] = 1.0
            if self.need_ft:
                tt[n] = 1.0
            self._basis[key] = (tt, ty)
        return self._basis[key]

    def _forward_mode(self, t: Tensor, y: Tensor) -> tuple[Tensor, Tensor | None]:
        from torch.func import jvp, vmap

        tt, ty = self._directions(y.shape[0], y.dtype, y.device)
        rhs = self.rhs

        def column(dt_: Tensor, dy_: Tensor) -> Tensor:
            return jvp(rhs, (t, y), (dt_, dy_))[1]

        out = vmap(column)(tt, ty)  # (m, B, n): column j of every J_b, then ∂f/∂t
        n = self.n
        jac = out[:n].permute(1, 2, 0)  # (B, n_out, n_in)
        ft = out[n] if self.need_ft else None
        return jac, ft

    def _f0(self, t: Tensor, y: Tensor, f0: Tensor | None) -> Tensor:
        if f0 is None:
            self.nf += 1
            return self.rhs(t, y)
        return f0

    def _ft(self, t: Tensor, y: Tensor, f0: Tensor | None) -> Tensor:
        if self.autodiff:
            try:
                from torch.func import jvp

                return jvp(self.rhs, (t, y), (torch.ones_like(t), torch.zeros_like(y)))[1]
            except Exception:
                self.autodiff = False
        eps = torch.finfo(y.dtype).eps
        dt = eps**0.5 * t.abs().clamp_min(1.0)
        f0 = self._f0(t, y, f0)
        self.nf += 1
        return (self.rhs(t + dt, y) - f0) / dt[:, None]

    def _finite_differences(
        self, t: Tensor, y: Tensor, f0: Tensor | None
    ) -> tuple[Tensor, Tensor | None]:
        f0 = self._f0(t, y, f0)
        eps = torch.finfo(y.dtype).eps
        delta = eps**0.5 * y.abs().clamp_min(1.0)  # (B, n)
        cols = []
        for j in range(self.n):
            yj = y.clone()
            yj[:, j] = yj[:, j] + delta[:, j]
            cols.append((self.rhs(t, yj) - f0) / delta[:, j : j + 1])
        self.nf += self.n
        jac = torch.stack(cols, -1)
        return jac, self._ft(t, y, f0) if self.need_ft else None
