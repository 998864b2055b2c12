"""NeuralODE: ``dy/dt = f_θ(t, y)`` with a neural vector field, as an ``nn.Module``."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from hybrideq.problems import ODEProblem
from hybrideq.sensitivity import AbstractSensitivityAlgorithm, DirectBackprop
from hybrideq.solution import Solution
from hybrideq.solve import solve
from hybrideq.solvers import AbstractSolver, Tsit5

__all__ = ["NeuralODE", "NeuralODEOutput"]


class NeuralODEOutput(NamedTuple):
    """What :class:`NeuralODE` returns.

    Attributes:
        y: states at the requested times, ``(batch, T, *state)`` (``(T, *state)`` for a
            1-D ``y0``).
        nfe: right-hand-side evaluations of the forward solve (the largest over the
            batch).
        sol: the full :class:`~hybrideq.Solution` (return codes, stats, heuristics).
        regularization: the model's regularizer per sample ``(batch,)`` in training
            mode (``None`` without a regularizer or in eval mode).
    """

    y: Tensor
    nfe: int
    sol: Solution
    regularization: Tensor | None = None


def _field(t: Tensor, y: Tensor, module: nn.Module) -> Tensor:
    return module(t, y)


class NeuralODE(nn.Module):
    """A neural ODE ``dy/dt = vector_field(t, y)`` solved by hybrideq.

    Args:
        vector_field: an ``nn.Module`` called as ``vector_field(t, y)``; for a batch ``t``
            has shape ``(batch,)`` (every sample has its own time) and ``y`` shape
            ``(batch, *state)``.
        solver: the solver spec (default ``Tsit5()``).
        sensealg: how gradients are computed (default ``DirectBackprop()``; use
            ``InterpolatingAdjoint()`` or ``BacksolveAdjoint()`` for O(1)-in-steps memory).
        rtol: relative tolerance.
        atol: absolute tolerance.
        regularizer: a spec from :mod:`hybrideq.regularizers` (e.g.
            ``LocalErrorEstimate()``), computed in training mode only and returned in
            ``out.regularization``; ``model.eval()`` predicts without its cost. The loss
            is then ``task + λ · out.regularization.mean()``.
        **solve_kwargs: further keywords for :func:`hybrideq.solve` (``dt``,
            ``maxiters``, ``heuristics`` …).

    Example:
        >>> import torch, hybrideq as hq
        >>> class Field(torch.nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.net = torch.nn.Sequential(
        ...             torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2)
        ...         )
        ...
        ...     def forward(self, t, y):
        ...         return self.net(y)
        >>> model = hq.nn.NeuralODE(Field(), rtol=1e-4, atol=1e-6).double()
        >>> out = model(
        ...     torch.randn(8, 2, dtype=torch.float64), torch.linspace(0, 1, 5, dtype=torch.float64)
        ... )
        >>> out.y.shape
        torch.Size([8, 5, 2])
    """

    def __init__(
        self,
        vector_field: nn.Module,
        solver: AbstractSolver | None = None,
        sensealg: AbstractSensitivityAlgorithm | None = None,
        rtol: float = 1e-3,
        atol: float = 1e-6,
        regularizer: Any = None,
        **solve_kwargs: Any,
    ) -> None:
        super().__init__()
        if not isinstance(vector_field, nn.Module):
            raise TypeError(
                "vector_field must be an nn.Module called as vector_field(t, y); wrap a "
                "function in a module so that its parameters are trained"
            )
        self.vector_field = vector_field
        self.solver = solver if solver is not None else Tsit5()
        self.sensealg = sensealg if sensealg is not None else DirectBackprop()
        self.rtol, self.atol = rtol, atol
        self.regularizer = regularizer
        self.solve_kwargs = solve_kwargs

    def forward(self, y0: Tensor, t: Tensor) -> NeuralODEOutput:
        """Integrate from ``y0`` at ``t[0]`` and return the states at the times ``t``.

        Args:
            y0: initial states, ``(batch, *state)`` or ``(n,)``.
            t: save times ``(T,)``, monotone; the span is ``(t[0], t[-1])``.
        """
        t = torch.as_tensor(t, dtype=y0.dtype, device=y0.device)
        if t.ndim != 1 or t.shape[0] < 2:
            raise ValueError("t must be a 1-D tensor of at least two save times")
        prob = ODEProblem(_field, y0, (t[0], t[-1]), self.vector_field)
        sol = solve(
            prob,
            self.solver,
            saveat=t,
            rtol=self.rtol,
            atol=self.atol,
            sensealg=self.sensealg,
            regularizer=self.regularizer if self.training else None,
            **self.solve_kwargs,
        )
        return NeuralODEOutput(sol.y, int(sol.stats.nf.max()), sol, sol.regularization)

    def extra_repr(self) -> str:
        return f"solver={self.solver}, sensealg={self.sensealg}, rtol={self.rtol}, atol={self.atol}"
