"""Refit a symbolic model's parameters to trajectories (through the solver, by L-BFGS)."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy
import torch
from torch import Tensor

from hybrideq.sensitivity import DirectBackprop
from hybrideq.solution import ReturnCode
from hybrideq.solve import solve
from hybrideq.solvers import AbstractSolver, Tsit5
from hybrideq.symbolic._model import SymbolicODE

__all__ = ["FitResult", "fit_parameters"]


@dataclass(frozen=True)
class FitResult:
    """What :func:`fit_parameters` returns.

    Attributes:
        params: the fitted parameters, ``{symbol: value}``.
        y0: the initial state used (fitted when ``fit_y0=True``).
        loss: the final mean squared error.
        history: the loss at each evaluation L-BFGS made (line-search trials included).
        converged: whether L-BFGS stopped by itself (flat loss or gradient) before its
            evaluation budget ran out.
    """

    params: dict[sympy.Symbol, float]
    y0: Tensor
    loss: float
    history: list[float]
    converged: bool

    def vector(self, model: SymbolicODE) -> Tensor:
        """The fitted parameters as a tensor in ``model.params`` order."""
        out = model.parameter_vector(self.params)
        assert out is not None
        return out


def fit_parameters(
    model: SymbolicODE,
    t: Any,
    y: Any,
    *,
    p0: Any = None,
    y0: Any = None,
    fit: Any = None,
    fit_y0: bool = False,
    solver: AbstractSolver | None = None,
    rtol: float = 1e-7,
    atol: float = 1e-9,
    iterations: int = 50,
    tol: float = 1e-10,
) -> FitResult:
    """Fit the parameters of ``model`` so that its solution matches the samples ``y``.

    Minimises the mean squared error between ``solve(model.problem(y0, …), saveat=t)``
    and ``y`` with L-BFGS (strong Wolfe line search); gradients flow through the solver
    (``DirectBackprop``) and the compiled right-hand side.

    Args:
        model: the symbolic model.
        t: sample times ``(T,)``; the solve starts at ``t[0]``.
        y: samples ``(T, n)``.
        p0: the starting parameters (default: the model's defaults).
        y0: the initial state (default ``y[0]``).
        fit: the parameters to fit, symbols or names (default: all); the rest stay at
            ``p0``.
        fit_y0: also fit the initial state.
        solver: the solver (default ``Tsit5()``).
        rtol: relative tolerance of the solves.
        atol: absolute tolerance.
        iterations: the most L-BFGS iterations (twice as many loss evaluations).
        tol: stop when the loss or a step changes by less than this.

    Returns:
        A :class:`FitResult`.

    Example:
        >>> import sympy as sp, torch, hybrideq as hq
        >>> x, k = sp.symbols("x k")
        >>> decay = hq.symbolic.SymbolicODE({x: -k * x}, params={k: 1.0})
        >>> t = torch.linspace(0, 2, 21, dtype=torch.float64)
        >>> data = torch.exp(-0.7 * t)[:, None]
        >>> fit = hq.symbolic.fit_parameters(decay, t, data)
        >>> round(fit.params[k], 4)
        0.7
    """
    tt = torch.as_tensor(np.asarray(t, dtype=float) if not isinstance(t, Tensor) else t).double()
    yy = torch.as_tensor(np.asarray(y, dtype=float) if not isinstance(y, Tensor) else y).double()
    if tt.ndim != 1 or yy.ndim != 2 or yy.shape != (tt.shape[0], len(model.states)):
        raise ValueError(
            f"t must be (T,) and y (T, {len(model.states)}), got {tuple(tt.shape)} and "
            f"{tuple(yy.shape)}"
        )
    p_start = model.parameter_vector(p0)
    if p_start is None:
        raise ValueError("fit_parameters: the model has no parameters to fit")
    names = {str(s): s for s in model.params}
    chosen = list(model.params) if fit is None else [names.get(str(s), s) for s in fit]
    unknown = [str(s) for s in chosen if s not in model.params]
    if unknown:
        raise ValueError(f"fit: {unknown} are not parameters of the model ({model.params})")
    mask = torch.tensor([s in chosen for s in model.params])
    free = p_start[mask].clone().requires_grad_(True)
    y_start = yy[0].clone() if y0 is None else model.state_vector(y0).clone()
    y_var = y_start.clone().requires_grad_(fit_y0)
    leaves = [free, y_var] if fit_y0 else [free]
    # One L-BFGS run of up to `iterations` iterations; it stops itself when the loss or
    # the gradient stops changing (tolerance_change, tolerance_grad).
    opt = torch.optim.LBFGS(
        leaves,
        lr=1.0,
        max_iter=iterations,
        max_eval=iterations * 2,
        tolerance_change=tol,
        history_size=20,
        line_search_fn="strong_wolfe",
    )
    solver = solver if solver is not None else Tsit5()
    sense = DirectBackprop()

    def params() -> Tensor:
        full = p_start.clone()
        full[mask] = free
        return full

    history: list[float] = []
    best: dict[str, Any] = {"loss": math.inf, "p": params().detach(), "y0": y_var.detach().clone()}

    def closure() -> Tensor:
        opt.zero_grad()
        prob = model.problem(y_var, (tt[0], tt[-1]), params())
        sol = solve(prob, solver, saveat=tt, rtol=rtol, atol=atol, sensealg=sense)
        if sol.retcode != ReturnCode.Success or sol.y.shape != yy.shape:
            # a failed solve marks a bad parameter set: a large loss with no gradient makes
            # the line search step back
            return torch.tensor(1e10, dtype=torch.float64)
        loss = ((sol.y - yy) ** 2).mean()
        loss.backward()
        value = float(loss.detach())
        history.append(value)
        if value < best["loss"]:
            best.update(loss=value, p=params().detach(), y0=y_var.detach().clone())
        return loss

    # torch's strong-Wolfe search can fail to bracket on a flat or non-finite loss
    # (IndexError); the best point seen so far is kept
    with contextlib.suppress(IndexError):
        opt.step(closure)
    final = best["p"]
    converged = len(history) < iterations * 2
    return FitResult(
        params=dict(zip(model.params, final.tolist(), strict=True)),
        y0=best["y0"],
        loss=best["loss"],
        history=history,
        converged=converged,
    )
