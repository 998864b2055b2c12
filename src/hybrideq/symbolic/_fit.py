"""Refit a symbolic model's parameters to trajectories (through the solver, by L-BFGS)."""

from __future__ import annotations

import contextlib
import fnmatch
import math
from collections.abc import Sequence
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

__all__ = ["FitResult", "ModelSelection", "fit_parameters", "select_model"]


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


def _float64(x: Any) -> Tensor:
    """Samples (tensor, array or list) as a float64 tensor."""
    return x.double() if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x, dtype=float))


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
    tt = _float64(t)
    yy = _float64(y)
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


# --------------------------------------------------------------------------- model selection

_CRITERIA = ("aicc", "aic", "bic")


def information_criterion(criterion: str, mse: float, k: int, n: int) -> float:
    """``AIC = N ln(RSS/N) + 2k``, ``AICc = AIC + 2k(k+1)/(N−k−1)``, ``BIC = N ln(RSS/N) + k ln N``.

    For least squares with Gaussian errors (Burnham & Anderson 2002, §2.2); ``mse`` is
    ``RSS/N`` over ``N`` observations, ``k`` the fitted parameters.
    """
    if not math.isfinite(mse) or mse <= 0:
        return math.inf if not math.isfinite(mse) else -math.inf
    fit_term = n * math.log(mse)
    if criterion == "aic":
        return fit_term + 2 * k
    if criterion == "bic":
        return fit_term + k * math.log(n)
    if n - k - 1 <= 0:
        return math.inf
    return fit_term + 2 * k + 2 * k * (k + 1) / (n - k - 1)


@dataclass(frozen=True)
class ModelSelection:
    """What :func:`select_model` returns.

    Attributes:
        model: the chosen model, its defaults set to the refit parameters.
        index: its position among the candidates.
        fit: its :class:`FitResult` (``fit.y0``: the initial state it was fitted with).
        models: every candidate, refit.
        fits: every candidate's :class:`FitResult`.
        table: one row per candidate: ``{"k": fitted parameters, "mse": …, "ic": …,
            "delta": ic − min ic}``.
        criterion: ``"aicc"``, ``"aic"`` or ``"bic"``.
    """

    model: SymbolicODE
    index: int
    fit: FitResult
    models: list[SymbolicODE]
    fits: list[FitResult]
    table: list[dict[str, float]]
    criterion: str

    def __str__(self) -> str:
        head = f"{'':2s}{'#':>3s} {'k':>3s} {'mse':>11s} {self.criterion:>10s} {'Δ':>8s}"
        rows = [
            f"{'→' if i == self.index else ' ':2s}{i:3d} {int(r['k']):3d} {r['mse']:11.4g} "
            f"{r['ic']:10.2f} {r['delta']:8.2f}"
            for i, r in enumerate(self.table)
        ]
        return "\n".join([head, *rows])


def _fitted_names(model: SymbolicODE, fit: Any) -> list[sympy.Symbol]:
    if fit is None:
        return list(model.params)
    if isinstance(fit, str):
        return [s for s in model.params if fnmatch.fnmatchcase(str(s), fit)]
    names = {str(f) for f in fit}
    return [s for s in model.params if str(s) in names]


def select_model(
    models: Sequence[SymbolicODE],
    t: Any,
    y: Any,
    *,
    fit: Any = None,
    fit_y0: bool = False,
    criterion: str = "aicc",
    delta: float = 2.0,
    progress: bool = True,
    **fit_kwargs: Any,
) -> ModelSelection:
    """Refit each candidate model to the data and choose one by an information criterion.

    The selection of Mangan, Kutz, Brunton & Proctor (Proc. R. Soc. A 473, 2017): each
    candidate (e.g. the models of a SINDy threshold sweep, :attr:`DiscoveredModel.alternatives`)
    has its parameters refit through the solver (:func:`fit_parameters`), and is scored by
    ``N ln(RSS/N)`` plus a penalty on its parameter count. The chosen model is the one with
    the fewest parameters among those within ``delta`` of the best score (candidates within
    2 have "substantial support", Burnham & Anderson 2002).

    Unlike a choice by the residual of the regression, this judges each model by how well
    its *solution* matches the data, so terms that only fit the noise of a derivative
    estimate (or of a UDE's network) pay for their parameters.

    Args:
        models: the candidates.
        t: sample times ``(T,)``.
        y: samples ``(T, n)``.
        fit: the parameters to refit in each model: ``None`` (all), a glob pattern on
            their names (``"c_*"``: the coefficients of
            :meth:`DiscoveredModel.to_symbolic_ode` with ``parametrize=True``), or names;
            the others keep their defaults.
        fit_y0: also fit the initial state (``n`` more parameters for every candidate).
        criterion: ``"aicc"`` (default; AIC corrected for small samples), ``"aic"`` or
            ``"bic"``.
        delta: how far above the best score the sparser chosen model may be.
        progress: show a progress bar.
        **fit_kwargs: passed to :func:`fit_parameters` (``solver``, ``rtol``,
            ``iterations`` …).

    Returns:
        A :class:`ModelSelection`; ``print`` it for the table.

    Example:
        >>> import sympy as sp, torch, hybrideq as hq
        >>> x, a, b = sp.symbols("x a b")
        >>> t = torch.linspace(0, 2, 21, dtype=torch.float64)
        >>> data = (1 / (1 + t))[:, None]  # x' = -x²
        >>> candidates = [
        ...     hq.symbolic.SymbolicODE({x: a * x}, params={a: -1.0}),
        ...     hq.symbolic.SymbolicODE({x: b * x**2}, params={b: -0.5}),
        ...     hq.symbolic.SymbolicODE({x: a * x + b * x**2}, params={a: 0.0, b: -0.5}),
        ... ]
        >>> choice = hq.symbolic.select_model(candidates, t, data, progress=False)
        >>> choice.index, round(choice.fit.params[b], 4)
        (1, -1.0)
    """
    from tqdm.auto import tqdm

    if criterion not in _CRITERIA:
        raise ValueError(f"criterion must be one of {_CRITERIA}, got {criterion!r}")
    if delta < 0:
        raise ValueError(f"delta must be >= 0, got {delta}")
    models = list(models)
    if not models:
        raise ValueError("select_model: no candidate models")
    bad = [type(m).__name__ for m in models if not isinstance(m, SymbolicODE)]
    if bad:
        raise TypeError(f"select_model: models must be SymbolicODEs, got {bad}")
    yy = _float64(y)
    n_obs = int(yy.numel())
    fits: list[FitResult] = []
    refit: list[SymbolicODE] = []
    table: list[dict[str, float]] = []
    for model in tqdm(models, desc="select model", disable=None if progress else True):
        names = _fitted_names(model, fit)
        if names or fit_y0:
            result = fit_parameters(model, t, y, fit=names, fit_y0=fit_y0, **fit_kwargs)
        else:
            result = _evaluate(model, t, y, **fit_kwargs)
        k = len(names) + (len(model.states) if fit_y0 else 0)
        fits.append(result)
        refit.append(model.with_defaults(result.params) if result.params else model)
        table.append(
            {
                "k": float(k),
                "mse": result.loss,
                "ic": information_criterion(criterion, result.loss, k, n_obs),
            }
        )
    best = min(r["ic"] for r in table)
    for r in table:
        r["delta"] = r["ic"] - best if math.isfinite(best) else math.nan
    near = [i for i, r in enumerate(table) if r["ic"] <= best + delta] or list(range(len(table)))
    index = min(near, key=lambda i: (table[i]["k"], table[i]["ic"]))
    return ModelSelection(
        model=refit[index],
        index=index,
        fit=fits[index],
        models=refit,
        fits=fits,
        table=table,
        criterion=criterion,
    )


def _evaluate(
    model: SymbolicODE,
    t: Any,
    y: Any,
    *,
    y0: Any = None,
    solver: AbstractSolver | None = None,
    rtol: float = 1e-7,
    atol: float = 1e-9,
    **_: Any,
) -> FitResult:
    """The mean squared error of a model with nothing to fit, as a :class:`FitResult`."""
    tt = _float64(t)
    yy = _float64(y)
    start = yy[0].clone() if y0 is None else model.state_vector(y0).clone()
    with torch.no_grad():
        prob = model.problem(start, (tt[0], tt[-1]))
        sol = solve(prob, solver or Tsit5(), saveat=tt, rtol=rtol, atol=atol)
    ok = sol.retcode == ReturnCode.Success and sol.y.shape == yy.shape
    loss = float(((sol.y - yy) ** 2).mean()) if ok else math.inf
    return FitResult(params={}, y0=start, loss=loss, history=[loss], converged=True)
