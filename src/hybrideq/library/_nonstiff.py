"""Non-stiff standard problems."""

from __future__ import annotations

import torch
from torch import Tensor

from hybrideq.problems import ODEProblem

__all__ = ["exponential_decay", "linear_system", "lorenz"]


def lorenz(
    sigma: float = 10.0,
    rho: float = 28.0,
    beta: float = 8.0 / 3.0,
    y0: tuple[float, float, float] = (1.0, 0.0, 0.0),
    tspan: tuple[float, float] = (0.0, 100.0),
    dtype: torch.dtype = torch.float64,
) -> ODEProblem:
    """The Lorenz system ``x' = σ(y − x)``, ``y' = x(ρ − z) − y``, ``z' = xy − βz``.

    Chaotic for the classic parameters; the workload W1 of BENCHMARKS.md. ``p`` is the
    tensor ``(σ, ρ, β)``; for a batch pass ``p`` of shape ``(batch, 3)`` through
    :meth:`~hybrideq.ODEProblem.remake`. The problem carries the analytic Jacobian
    ``[[−σ, σ, 0], [ρ − z, −1, −x], [y, x, −β]]`` as ``jac``.

    Example:
        >>> import hybrideq as hq
        >>> hq.library.lorenz().state_shape
        (3,)
    """

    def f(t: Tensor, u: Tensor, p: Tensor) -> Tensor:
        s, r, b = p[..., 0:1], p[..., 1:2], p[..., 2:3]
        x, y, z = u[..., 0:1], u[..., 1:2], u[..., 2:3]
        return torch.cat([s * (y - x), x * (r - z) - y, x * y - b * z], -1)

    def jac(t: Tensor, u: Tensor, p: Tensor) -> Tensor:
        s, r, b = p[..., 0], p[..., 1], p[..., 2]
        x, y, z = u[..., 0], u[..., 1], u[..., 2]
        zero = u.new_zeros(torch.broadcast_shapes(u.shape[:-1], p.shape[:-1]))
        rows: list[list[Tensor | float]] = [[-s, s, 0.0], [r - z, -1.0, -x], [y, x, -b]]
        return torch.stack([torch.stack([zero + e for e in row], -1) for row in rows], -2)

    p = torch.tensor([sigma, rho, beta], dtype=dtype)
    return ODEProblem(f, torch.tensor(y0, dtype=dtype), tspan, p, jac=jac)


def linear_system(a: Tensor, y0: Tensor, tspan: tuple[float, float] = (0.0, 1.0)) -> ODEProblem:
    """``y' = A y``, whose exact solution is ``y(t) = exp(A (t − t0)) y0``.

    Works for one problem (``y0`` of shape ``(n,)``) and a batch (``(batch, n)``).
    """

    def f(t: Tensor, y: Tensor, p: Tensor) -> Tensor:
        return y @ p.T

    return ODEProblem(f, y0, tspan, a)


def exponential_decay(
    rate: float = 1.0, y0: float = 1.0, tspan: tuple[float, float] = (0.0, 1.0)
) -> ODEProblem:
    """``y' = −k y``: the simplest test problem, ``y(t) = y0 exp(−k t)``."""

    def f(t: Tensor, y: Tensor, p: Tensor) -> Tensor:
        return -p * y

    return ODEProblem(
        f, torch.tensor([y0], dtype=torch.float64), tspan, torch.tensor(rate, dtype=torch.float64)
    )
