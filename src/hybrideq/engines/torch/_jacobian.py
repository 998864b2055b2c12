"""Jacobians for the implicit solvers: the user's, automatic (autograd), or finite differences.

Every sample's Jacobian ``J_b = ∂f_b/∂y_b`` is ``(n, n)``; a batch gives ``(batch, n, n)``.
Rows of ``f`` depend on their own sample only (the batch rule), so the Jacobians of all
samples come from batched evaluations:

- automatic: reverse mode, one ``torch.autograd.grad`` per output component ``i`` with the
  cotangent ``e_i`` for every sample, which gives row ``i`` of every ``J_b`` at once
  (``n`` backward passes whatever the batch size). Under a differentiated solve
  (``DirectBackprop``) the rows are built with ``create_graph=True``, so the discrete
  solve's gradient sees how ``J`` depends on ``y`` and ``p``. (``torch.func``'s
  forward-mode ``jvp``/``vmap`` gives the same numbers but measured 3–6× slower than
  this loop on the library's problems with torch 2.13 on CPU, so it is not used.)
- finite differences: ``(f(t, y + δ_j e_j) − f(t, y)) / δ_j`` with
  ``δ_j = √ε · max(|y_j|, 1)``, one batched evaluation per column;
- the user's ``jac(t, y, p)``.

``∂f/∂t`` (Rosenbrock methods) is a forward difference in ``t`` with ``δ = √ε·max(|t|, 1)``:
one evaluation, and exactly zero for an autonomous ``f``.
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
        autodiff: use autograd (``True``) or finite differences (``False``) where ``jac``
            is not given. Automatic differentiation falls back to finite differences, with
            a warning, when ``f`` cannot be differentiated (NumPy code, ``.item()``).
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

    def __call__(
        self, t: Tensor, y: Tensor, f0: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """``J`` and ``∂f/∂t`` (or ``None``) at ``(t, y)``; ``f0 = f(t, y)`` if known."""
        if self.jac is not None:
            return self.jac(t, y), self._ft(t, y, f0) if self.need_ft else None
        if self.autodiff:
            try:
                jac, _ = self._reverse_mode(t, y)
                return jac, self._ft(t, y, f0) if self.need_ft else None
            except Exception as e:  # f is not differentiable (NumPy code, .item()): fall back
                warnings.warn(
                    f"automatic Jacobian failed ({type(e).__name__}: {e}); using finite "
                    "differences instead. Pass jac= to the ODEProblem, or autodiff=False to "
                    "the solver to silence this",
                    stacklevel=6,
                )
                self.autodiff = False
        return self._finite_differences(t, y, f0)

    def _reverse_mode(self, t: Tensor, y: Tensor) -> tuple[Tensor, Tensor | None]:
        create = torch.is_grad_enabled()
        with torch.enable_grad():
            yv = y if (create and y.requires_grad) else y.detach().requires_grad_(True)
            out = self.rhs(t, yv)
            if not out.requires_grad:  # f does not depend on y at all
                return torch.zeros(*y.shape, self.n, dtype=y.dtype, device=y.device), None
            rows = []
            for i in range(self.n):
                cot = torch.zeros_like(out)
                cot[:, i] = 1.0
                (g,) = torch.autograd.grad(
                    out, yv, cot, retain_graph=True, create_graph=create, allow_unused=True
                )
                rows.append(torch.zeros_like(y) if g is None else g)
        return torch.stack(rows, 1), None

    def _f0(self, t: Tensor, y: Tensor, f0: Tensor | None) -> Tensor:
        if f0 is None:
            self.nf += 1
            return self.rhs(t, y)
        return f0

    def _ft(self, t: Tensor, y: Tensor, f0: Tensor | None) -> Tensor:
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
