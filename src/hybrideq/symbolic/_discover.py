"""Equation discovery: ``discover(t, y, dy=None, method=SINDy() | PySR())`` → sympy equations."""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy
import torch

from hybrideq.engines.julia import JuliaNotInstalledError, apply_env_defaults, require_julia
from hybrideq.symbolic._codegen import CompiledFunction, compile_numpy, compile_torch
from hybrideq.symbolic._derivatives import AbstractDerivative, SplineDerivative
from hybrideq.symbolic._libraries import AbstractLibrary, PolynomialLibrary, evaluate_library
from hybrideq.symbolic._model import SymbolicODE, _symbol

__all__ = [
    "AbstractDiscoveryMethod",
    "DiscoveredModel",
    "PySR",
    "SINDy",
    "discover",
]


class AbstractDiscoveryMethod:
    """A way to find ``dy/dt = f(t, y)`` from samples; see :class:`SINDy` and :class:`PySR`."""

    def fit(
        self,
        t: np.ndarray,
        y: np.ndarray,
        dy: np.ndarray,
        states: Sequence[sympy.Symbol],
        t_symbol: sympy.Symbol,
    ) -> tuple[list[sympy.Expr], dict[str, Any]]:
        """Fit ``dy ≈ f(t, y)``; returns one sympy expression per state and diagnostics."""
        raise NotImplementedError


# --------------------------------------------------------------------------- SINDy


def _pysindy() -> Any:
    if importlib.util.find_spec("pysindy") is None:
        raise ImportError(
            'SINDy needs pysindy: pip install "hybrideq[symbolic]" (or pip install pysindy)'
        )
    return importlib.import_module("pysindy")


@dataclass(frozen=True)
class SINDy(AbstractDiscoveryMethod):
    """Sparse identification of nonlinear dynamics (Brunton, Proctor & Kutz, PNAS 2016).

    Fits ``dy_i/dt ≈ Σ_k ξ_ik θ_k(t, y)`` with a sparse ``ξ`` over a sympy library
    ``θ`` by one of pysindy's optimisers.

    Args:
        library: the candidate terms (default: polynomials up to degree 2).
        optimizer: ``"stlsq"`` (sequentially thresholded least squares), ``"sr3"``
            (sparse relaxed regularised regression with an L0 penalty), or any pysindy
            optimiser instance (then ``threshold``, ``alpha`` … are not used).
        threshold: the coefficient magnitude below which terms are dropped; a sequence
            sweeps thresholds (the sweep of Rackauckas et al. 2020 uses
            ``10**arange(-7, 0.1, 0.1)``) and keeps the sparsest model whose relative
            residual ``‖Θξ − dy‖/‖dy‖`` is within ``sweep_tolerance`` of the best one;
            every distinct model of the sweep is kept in
            :attr:`DiscoveredModel.alternatives` (for :func:`select_model`).
        alpha: the ridge penalty of STLSQ. Small by default (pysindy's 0.05): on an
            unnormalised library whose columns are nearly collinear along a trajectory, a
            large ridge spreads the weight over many columns and the first threshold
            removes them all.
        max_iter: optimiser iterations.
        relax_coeff_nu: SR3's relaxation ν (its L0 weight is ``threshold²/(2ν)``).
        normalize_columns: scale library columns to unit norm before thresholding (the
            threshold then applies to the scaled coefficients).
        sweep_tolerance: how much larger (in relative residual) than the best model of a
            threshold sweep the chosen sparser model may be.
        best_subset: also offer, for each ``s = 1 … best_subset``, the model whose every
            equation uses its best ``s`` library terms by least squares (an exhaustive
            search, for libraries of at most 20 terms). These join
            :attr:`DiscoveredModel.alternatives`: thresholding a nearly collinear library
            can walk past the true sparse model, which a search by size still finds.

    Example:
        >>> import numpy as np, hybrideq as hq
        >>> t = np.linspace(0, 2, 201)
        >>> y = np.stack([np.exp(-t), 2 * np.exp(-3 * t)], 1)
        >>> model = hq.symbolic.discover(t, y, method=hq.symbolic.SINDy(threshold=0.1))
        >>> model.equations  # doctest: +SKIP
        {x0: -1.0*x0, x1: -3.0*x1}
    """

    library: AbstractLibrary = field(default_factory=lambda: PolynomialLibrary(2))
    optimizer: Any = "stlsq"
    threshold: float | Sequence[float] = 0.1
    alpha: float = 1e-8
    max_iter: int = 20
    relax_coeff_nu: float = 1.0
    normalize_columns: bool = False
    sweep_tolerance: float = 0.01
    best_subset: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.optimizer, str) and self.optimizer not in ("stlsq", "sr3"):
            raise ValueError(
                f"SINDy: optimizer must be 'stlsq', 'sr3' or a pysindy optimizer, got "
                f"{self.optimizer!r}"
            )
        thresholds = np.atleast_1d(np.asarray(self.threshold, dtype=float))
        if thresholds.size == 0 or (thresholds < 0).any():
            raise ValueError(f"SINDy: threshold must be >= 0, got {self.threshold!r}")
        if self.best_subset < 0:
            raise ValueError(f"SINDy: best_subset must be >= 0, got {self.best_subset}")
        if not isinstance(self.library, AbstractLibrary):
            raise TypeError(
                "SINDy: library must be a hybrideq.symbolic library (PolynomialLibrary, "
                f"FourierLibrary, CustomLibrary or a sum), got {type(self.library).__name__}"
            )

    def _optimizer(self, threshold: float) -> Any:
        ps = _pysindy()
        if not isinstance(self.optimizer, str):
            return self.optimizer
        if self.optimizer == "stlsq":
            return ps.STLSQ(
                threshold=threshold,
                alpha=self.alpha,
                max_iter=self.max_iter,
                normalize_columns=self.normalize_columns,
            )
        return ps.SR3(
            reg_weight_lam=threshold**2 / (2 * self.relax_coeff_nu),
            regularizer="L0",
            relax_coeff_nu=self.relax_coeff_nu,
            max_iter=max(self.max_iter, 30),
            normalize_columns=self.normalize_columns,
            unbias=True,
        )

    def fit(
        self,
        t: np.ndarray,
        y: np.ndarray,
        dy: np.ndarray,
        states: Sequence[sympy.Symbol],
        t_symbol: sympy.Symbol,
    ) -> tuple[list[sympy.Expr], dict[str, Any]]:
        terms = self.library.terms(states, t_symbol)
        if not terms:
            raise ValueError("SINDy: the library has no terms")
        theta = evaluate_library(terms, t_symbol, states, t, y)
        thresholds = (
            [None]
            if not isinstance(self.optimizer, str)
            else list(np.atleast_1d(np.asarray(self.threshold, dtype=float)))
        )
        norm = float(np.sqrt((dy**2).sum())) or 1.0
        fits = []
        for thr in thresholds:
            opt = self._optimizer(0.0 if thr is None else float(thr))
            opt.fit(theta, dy)
            xi = np.asarray(opt.coef_, dtype=float).reshape(dy.shape[1], len(terms))
            rel = float(np.sqrt(((theta @ xi.T - dy) ** 2).sum())) / norm
            fits.append((thr, int(np.count_nonzero(xi)), rel, xi))
        # the sparsest model within `sweep_tolerance` of the best residual (ties: lower residual)
        best_rel = min(f[2] for f in fits)
        ok = [f for f in fits if f[2] <= best_rel + self.sweep_tolerance and f[1] > 0] or fits
        chosen = min(ok, key=lambda f: (f[1], f[2]))
        # the distinct non-empty supports of the sweep, the best residual of each, sparsest
        # first: the candidates for a selection by refit and information criterion
        supports: dict[bytes, tuple[Any, int, float, np.ndarray]] = {}
        for f in fits + self._best_subsets(theta, dy, norm):
            key = (f[3] != 0).tobytes()
            if f[1] > 0 and (key not in supports or f[2] < supports[key][2]):
                supports[key] = f
        candidates = sorted(supports.values(), key=lambda f: (f[1], f[2]))
        info = {
            "library": terms,
            "coefficients": chosen[3],
            "threshold": chosen[0],
            "sweep": [(f[0], f[1], f[2]) for f in fits],  # (threshold, nonzeros, residual)
            "candidates": [
                (f[0], f[1], f[2], _expressions(f[3], terms))
                for f in candidates
                if len(candidates) > 1
            ],
        }
        return _expressions(chosen[3], terms), info

    def _best_subsets(
        self, theta: np.ndarray, dy: np.ndarray, norm: float
    ) -> list[tuple[Any, int, float, np.ndarray]]:
        """Per size ``s``, each equation's best ``s``-term least-squares fit."""
        n_terms = theta.shape[1]
        if self.best_subset == 0:
            return []
        if n_terms > 20:
            raise ValueError(
                f"SINDy: best_subset searches every subset; the library has {n_terms} terms "
                "(at most 20)"
            )
        out = []
        for size in range(1, min(self.best_subset, n_terms) + 1):
            xi = np.zeros((dy.shape[1], n_terms))
            for j in range(dy.shape[1]):
                best: tuple[float, tuple[int, ...], np.ndarray] = (math.inf, (), np.zeros(0))
                for cols in itertools.combinations(range(n_terms), size):
                    coef = np.linalg.lstsq(theta[:, cols], dy[:, j], rcond=None)[0]
                    res = float(((theta[:, cols] @ coef - dy[:, j]) ** 2).sum())
                    if res < best[0]:
                        best = (res, cols, coef)
                xi[j, list(best[1])] = best[2]
            rel = float(np.sqrt(((theta @ xi.T - dy) ** 2).sum())) / norm
            out.append((f"best {size}-term subsets", int(np.count_nonzero(xi)), rel, xi))
        return out


def _expressions(xi: np.ndarray, terms: Sequence[sympy.Expr]) -> list[sympy.Expr]:
    """One sympy expression per row of the coefficient matrix ``xi`` over ``terms``."""
    return [
        sympy.Add(
            *(sympy.Float(c, 15) * term for c, term in zip(row, terms, strict=True) if c != 0)
        )
        for row in xi
    ]


# --------------------------------------------------------------------------- PySR


@dataclass(frozen=True)
class PySR(AbstractDiscoveryMethod):
    """Symbolic regression with PySR (SymbolicRegression.jl), one search per state.

    PySR runs in Julia; it shares the Julia runtime and the environment defaults of the
    Julia engine (:mod:`hybrideq.engines.julia`). Without Julia it raises at once with the
    install instructions; it never starts a download.

    Args:
        binary_operators: PySR's binary operators.
        unary_operators: PySR's unary operators (e.g. ``("sin", "exp")``).
        niterations: search iterations.
        maxsize: the largest expression size.
        populations: number of populations.
        model_selection: PySR's choice among the Pareto front (``"best"``, ``"accuracy"``,
            ``"score"``).
        random_state: seed; with ``deterministic=True`` the search is serial and
            reproducible.
        deterministic: reproducible serial search.
        include_time: also offer ``t`` as a variable (non-autonomous systems).
        options: further ``pysr.PySRRegressor`` keywords.
    """

    binary_operators: tuple[str, ...] = ("+", "-", "*", "/")
    unary_operators: tuple[str, ...] = ()
    niterations: int = 40
    maxsize: int = 20
    populations: int = 15
    model_selection: str = "best"
    random_state: int | None = None
    deterministic: bool = False
    include_time: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)

    def regressor_kwargs(self) -> dict[str, Any]:
        """The keywords passed to ``pysr.PySRRegressor``."""
        kwargs: dict[str, Any] = {
            "binary_operators": list(self.binary_operators),
            "unary_operators": list(self.unary_operators),
            "niterations": self.niterations,
            "maxsize": self.maxsize,
            "populations": self.populations,
            "model_selection": self.model_selection,
            "progress": False,
        }
        if self.random_state is not None:
            kwargs["random_state"] = self.random_state
        if self.deterministic:
            kwargs.update(deterministic=True, parallelism="serial")
        kwargs.update(self.options)
        return kwargs

    def fit(
        self,
        t: np.ndarray,
        y: np.ndarray,
        dy: np.ndarray,
        states: Sequence[sympy.Symbol],
        t_symbol: sympy.Symbol,
    ) -> tuple[list[sympy.Expr], dict[str, Any]]:
        pysr = import_pysr()
        variables = list(states) + ([t_symbol] if self.include_time else [])
        X = np.column_stack([y, t]) if self.include_time else y
        # PySR names the sympy symbols after variable_names; map them back to ours.
        names = [f"v{i}" for i in range(len(variables))]
        model = pysr.PySRRegressor(**self.regressor_kwargs())
        model.fit(X, dy, variable_names=names)
        found = model.sympy()
        found = found if isinstance(found, list) else [found]
        back = {sympy.Symbol(name): v for name, v in zip(names, variables, strict=True)}
        exprs = [sympy.sympify(e).xreplace(back) for e in found]
        return exprs, {"regressor": model, "equations_": model.equations_}


def import_pysr() -> Any:
    """Import PySR after checking, without downloading, that Julia is installed.

    Raises:
        JuliaNotInstalledError: PySR, juliacall or Julia is missing (the message says how to
            install them).
    """
    if importlib.util.find_spec("pysr") is None:
        raise JuliaNotInstalledError(
            'discover(..., method=PySR()) needs PySR: pip install "hybrideq[julia,symbolic]", '
            "then `hybrideq julia install` to install Julia and SymbolicRegression.jl"
        )
    require_julia("discover(..., method=PySR())", python_packages=("pysr", "juliacall"))
    apply_env_defaults()
    return importlib.import_module("pysr")


# --------------------------------------------------------------------------- the result


class DiscoveredModel:
    """Discovered equations ``dy/dt = f(t, y)``, one sympy expression per state.

    Attributes:
        equations: ``{state: expression}``.
        states: the state symbols, in the column order of the data.
        t: the time symbol.
        method: the discovery method used.
        info: diagnostics of the fit (SINDy: ``library``, ``coefficients``,
            ``threshold``, ``sweep``; PySR: the regressor).
        r2: the coefficient of determination of each equation on the fitting data.
        alternatives: the other models a threshold sweep found (SINDy with a sequence of
            thresholds: one per distinct set of terms, sparsest first, this one included);
            pass them to :func:`~hybrideq.symbolic.select_model` to choose by refit and
            information criterion instead of by residual. Empty otherwise.
    """

    def __init__(
        self,
        equations: Mapping[sympy.Symbol, sympy.Expr],
        t: sympy.Symbol,
        method: AbstractDiscoveryMethod,
        info: Mapping[str, Any],
        r2: np.ndarray | None = None,
    ) -> None:
        self.equations = dict(equations)
        self.states = tuple(self.equations)
        self.t = t
        self.method = method
        self.info = dict(info)
        self.r2 = r2 if r2 is not None else np.full(len(self.equations), np.nan)
        self.alternatives: list[DiscoveredModel] = []

    def to_numpy(self) -> Callable[..., np.ndarray]:
        """The discovered right-hand side as NumPy ``f(t, y)`` (``y``: ``(n,)`` or ``(batch, n)``)."""
        fn = compile_numpy(list(self.equations.values()), self.t, self.states, ())
        return lambda t, y, p=None: fn(t, y, None)

    def to_torch(self) -> CompiledFunction:
        """The discovered right-hand side as a batched torch function ``f(t, y, p)``."""
        return compile_torch("discovered", list(self.equations.values()), self.t, self.states, ())

    def parametrized(
        self, prefix: str = "c"
    ) -> tuple[dict[sympy.Symbol, sympy.Expr], dict[sympy.Symbol, float]]:
        """The equations with every numeric coefficient replaced by a parameter symbol.

        Returns:
            ``({state: expression in c_<state>_<k>}, {c_<state>_<k>: value})``: the form
            to refit (:func:`hybrideq.symbolic.fit_parameters`).
        """
        eqs: dict[sympy.Symbol, sympy.Expr] = {}
        values: dict[sympy.Symbol, float] = {}
        for s, e in self.equations.items():
            parts = []
            for k, term in enumerate(sympy.Add.make_args(sympy.expand(e))):
                coeff, rest = term.as_coeff_Mul()
                if term == 0:
                    continue
                c = sympy.Symbol(f"{prefix}_{s}_{k}")
                values[c] = float(coeff)
                parts.append(c * rest)
            eqs[s] = sympy.Add(*parts)
        return eqs, values

    def to_symbolic_ode(
        self,
        known: SymbolicODE | None = None,
        *,
        parametrize: bool = False,
        prefix: str = "c",
    ) -> SymbolicODE:
        """The discovered equations as a :class:`SymbolicODE`.

        Args:
            known: a model to add the discovered terms to (a UDE's known part); ``None``
                gives the discovered equations alone.
            parametrize: make every discovered coefficient a parameter (default value: the
                discovered one), so that :func:`~hybrideq.symbolic.fit_parameters` can
                refit them.
            prefix: the coefficient symbols' prefix.
        """
        if parametrize:
            eqs, values = self.parametrized(prefix)
        else:
            eqs, values = dict(self.equations), {}
        if known is None:
            return SymbolicODE(eqs, self.states, values if values else None, t=self.t)
        return known.add_terms(eqs, params=values)

    def latex(self) -> str:
        """The discovered equations as a LaTeX ``aligned`` block."""
        lines = [
            rf"\frac{{\mathrm{{d}} {sympy.latex(s)}}}{{\mathrm{{d}} {sympy.latex(self.t)}}} &= "
            f"{sympy.latex(e)}"
            for s, e in self.equations.items()
        ]
        return "\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}"

    def _repr_latex_(self) -> str:
        return f"$${self.latex()}$$"

    def __str__(self) -> str:
        return "\n".join(f"d{s}/d{self.t} = {e}" for s, e in self.equations.items())

    def __repr__(self) -> str:
        eqs = ", ".join(f"d{s}/d{self.t} = {e}" for s, e in self.equations.items())
        return f"DiscoveredModel({eqs})"


# --------------------------------------------------------------------------- discover


def _as_numpy(x: Any, what: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    try:
        out = np.asarray(x, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be an array or tensor of numbers ({exc})") from exc
    if not np.isfinite(out).all():
        raise ValueError(f"{what} contains NaN or inf; drop those samples first")
    return out


def discover(
    t: Any,
    y: Any,
    dy: Any = None,
    method: AbstractDiscoveryMethod | None = None,
    *,
    states: Sequence[Any] | None = None,
    derivative: AbstractDerivative | None = None,
    t_symbol: Any = "t",
) -> DiscoveredModel:
    """Discover ``dy/dt = f(t, y)`` from samples, as sympy equations.

    Args:
        t: sample times ``(T,)``, or ``(batch, T)`` for several trajectories.
        y: states ``(T, n)``, or ``(batch, T, n)`` (one trajectory per batch entry).
        dy: the targets ``dy/dt`` at the samples, shaped like ``y`` (e.g. a UDE's neural
            term); ``None`` estimates them from ``y`` with ``derivative``.
        method: :class:`SINDy` (default) or :class:`PySR`.
        states: state symbols or names (default ``x0, x1, …``).
        derivative: how to estimate ``dy`` when it is not given (default
            :class:`SplineDerivative`, good for noisy samples; :class:`FiniteDifference`
            for clean, dense ones).
        t_symbol: the time symbol or its name.

    Returns:
        A :class:`DiscoveredModel`: ``.equations``, ``.to_numpy()``, ``.to_torch()``,
        ``.to_symbolic_ode()``.

    Example:
        >>> import numpy as np, hybrideq as hq
        >>> t = np.linspace(0, 4, 401)
        >>> y = np.stack([np.cos(2 * t), -2 * np.sin(2 * t)], 1)  # x'' = -4x
        >>> m = hq.symbolic.discover(
        ...     t,
        ...     y,
        ...     method=hq.symbolic.SINDy(),
        ...     states=["x", "v"],
        ...     derivative=hq.symbolic.FiniteDifference(),
        ... )
        >>> print(m)  # doctest: +SKIP
        dx/dt = 1.0*v
        dv/dt = -4.0*x
    """
    method = method if method is not None else SINDy()
    if not isinstance(method, AbstractDiscoveryMethod):
        raise TypeError(
            f"method must be hybrideq.symbolic.SINDy(...) or PySR(...), got {type(method).__name__}"
        )
    tt = _as_numpy(t, "t")
    yy = _as_numpy(y, "y")
    if yy.ndim == 2:
        yy = yy[None]
    if yy.ndim != 3:
        raise ValueError(f"y must be (T, n) or (batch, T, n), got shape {yy.shape}")
    batch, T, n = yy.shape
    if tt.ndim == 1:
        tt = np.broadcast_to(tt, (batch, T))
    if tt.shape != (batch, T):
        raise ValueError(f"t must be (T,) or (batch, T) matching y {(batch, T, n)}, got {tt.shape}")
    if dy is None:
        derivative = derivative if derivative is not None else SplineDerivative()
        dd = np.stack([derivative.estimate(tt[b], yy[b]) for b in range(batch)])
    else:
        dd = _as_numpy(dy, "dy")
        if dd.ndim == 2:
            dd = dd[None]
        if dd.shape != yy.shape:
            raise ValueError(
                f"dy must be shaped like y {yy.shape[1:] if batch == 1 else yy.shape}, got {dd.shape}"
            )
    if states is None:
        syms = [sympy.Symbol(f"x{i}") for i in range(n)]
    else:
        syms = [_symbol(s, "states") for s in states]
        if len(syms) != n or len(set(syms)) != n:
            raise ValueError(f"states must name the {n} columns of y once each, got {states!r}")
    tsym = _symbol(t_symbol, "t_symbol")
    t_flat, y_flat, d_flat = tt.reshape(-1), yy.reshape(-1, n), dd.reshape(-1, n)
    exprs, info = method.fit(t_flat, y_flat, d_flat, syms, tsym)

    def scored(equations: Sequence[sympy.Expr], info: Mapping[str, Any]) -> DiscoveredModel:
        model = DiscoveredModel(dict(zip(syms, equations, strict=True)), tsym, method, info)
        pred = model.to_numpy()(t_flat, y_flat)
        ss_res = ((pred - d_flat) ** 2).sum(0)
        ss_tot = ((d_flat - d_flat.mean(0)) ** 2).sum(0)
        model.r2 = 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0)
        return model

    candidates = info.pop("candidates", [])
    model = scored(exprs, info)
    for thr, _, _, c_exprs in candidates:
        alt = {k: v for k, v in info.items() if k != "coefficients"}
        model.alternatives.append(scored(c_exprs, dict(alt, threshold=thr)))
    return model
