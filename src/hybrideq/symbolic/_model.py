"""SymbolicODE and SymbolicSDE: sympy equations compiled once into problems for any engine."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np
import sympy
import torch
from sympy.core.function import AppliedUndef
from torch import Tensor

from hybrideq.problems import ODEProblem, SDEProblem
from hybrideq.symbolic._codegen import (
    CompiledFunction,
    compile_numpy,
    compile_torch,
    julia_function,
)

__all__ = ["AbstractSymbolicModel", "SymbolicODE", "SymbolicSDE"]

SymbolLike: TypeAlias = "sympy.Symbol | str"


def _symbol(x: Any, what: str) -> sympy.Symbol:
    """A plain symbol from a symbol, a name, ``x(t)`` or ``Derivative(x(t), t)``."""
    if isinstance(x, str):
        return sympy.Symbol(x)
    if isinstance(x, sympy.Derivative):
        return _symbol(x.expr, what)
    if isinstance(x, AppliedUndef):
        return sympy.Symbol(type(x).__name__)
    if isinstance(x, sympy.Symbol):
        return x
    raise TypeError(
        f"{what} must be sympy Symbols, names, x(t) or Derivative(x(t), t); got "
        f"{x!r} ({type(x).__name__})"
    )


def _functions_of_t(expr: sympy.Expr, t: sympy.Symbol) -> dict[sympy.Basic, sympy.Symbol]:
    """``x(t) → x`` for every applied undefined function of ``t`` alone in ``expr``."""
    return {a: sympy.Symbol(type(a).__name__) for a in expr.atoms(AppliedUndef) if a.args == (t,)}


def _sympify(expr: Any, locals_: Mapping[str, Any], what: str) -> sympy.Expr:
    try:
        return sympy.sympify(expr, locals=dict(locals_))
    except (sympy.SympifyError, SyntaxError, TypeError) as exc:
        raise ValueError(f"{what}: cannot read {expr!r} as a sympy expression ({exc})") from exc


def _ordered(values: Iterable[sympy.Symbol]) -> list[sympy.Symbol]:
    return sorted(set(values), key=lambda s: sympy.default_sort_key(s))


class AbstractSymbolicModel:
    """What SymbolicODE and SymbolicSDE share: symbols, parameter values and code."""

    states: tuple[sympy.Symbol, ...]
    params: tuple[sympy.Symbol, ...]
    t: sympy.Symbol
    defaults: dict[sympy.Symbol, float]
    functions: dict[str, Callable[..., Any]]
    drift: tuple[sympy.Expr, ...]

    def _setup(
        self,
        keys: Sequence[Any],
        rhs: Sequence[Any],
        states: Sequence[SymbolLike] | None,
        params: Sequence[SymbolLike] | Mapping[Any, float] | None,
        t: SymbolLike | None,
        functions: Mapping[str, Callable[..., Any]] | None,
        extra: Sequence[Any] = (),
    ) -> list[sympy.Expr]:
        """Read the equations; returns ``extra`` (further expressions) read the same way."""
        self.t = _symbol(t, "t") if t is not None else sympy.Symbol("t")
        self.functions = dict(functions or {})
        key_symbols = [_symbol(k, "the equations' keys (states)") for k in keys]
        if len(set(key_symbols)) != len(key_symbols):
            raise ValueError(f"equations: a state appears twice among {key_symbols}")
        if states is None:
            self.states = tuple(key_symbols)
        else:
            self.states = tuple(_symbol(s, "states") for s in states)
            if set(self.states) != set(key_symbols) or len(self.states) != len(key_symbols):
                raise ValueError(
                    f"states={list(self.states)} must list each state of the equations "
                    f"({key_symbols}) exactly once"
                )
        if not self.states:
            raise ValueError("equations: give at least one state equation")
        names = {str(s): s for s in (*self.states, self.t)}
        if isinstance(params, Mapping):
            self.defaults = {_symbol(k, "params"): float(v) for k, v in params.items()}
            param_list: list[sympy.Symbol] | None = list(self.defaults)
        else:
            self.defaults = {}
            param_list = None if params is None else [_symbol(s, "params") for s in params]
        names.update({str(s): s for s in param_list or []})
        names.update({k: sympy.Function(k) for k in self.functions})
        by_key = dict(zip(key_symbols, rhs, strict=True))
        exprs = [_sympify(by_key[s], names, f"the equation of {s}") for s in self.states]
        more = [_sympify(e, names, "an expression") for e in extra]
        exprs = [e.xreplace(_functions_of_t(e, self.t)) for e in exprs]
        more = [e.xreplace(_functions_of_t(e, self.t)) for e in more]
        free = set().union(*(e.free_symbols for e in [*exprs, *more]))
        unknown_functions = {
            type(a).__name__
            for e in [*exprs, *more]
            for a in e.atoms(AppliedUndef)
            if type(a).__name__ not in self.functions
        }
        if unknown_functions:
            raise ValueError(
                f"the equations use undefined functions {sorted(unknown_functions)}: pass "
                "functions={name: torch_callable} to define them"
            )
        inferred = _ordered(free - set(self.states) - {self.t})
        if param_list is None:
            param_list = inferred
        else:
            missing = [s for s in inferred if s not in param_list]
            if missing:
                raise ValueError(
                    f"the equations use symbols {missing} that are neither states nor params; "
                    "add them to params (or leave params=None to infer them)"
                )
        if len(set(param_list)) != len(param_list):
            raise ValueError(f"params: a parameter appears twice in {param_list}")
        clash = set(param_list) & (set(self.states) | {self.t})
        if clash:
            raise ValueError(f"params {sorted(map(str, clash))} are also states or the time")
        self.params = tuple(param_list)
        self.drift = tuple(exprs)
        return more

    # ----------------------------------------------------------------- values

    def parameter_vector(
        self, p: Any = None, *, dtype: torch.dtype = torch.float64, device: Any = None
    ) -> Tensor | None:
        """The parameter tensor ``(n_p,)`` (or ``(batch, n_p)``) in the order of ``params``.

        Args:
            p: ``None`` (the defaults), a mapping ``{symbol or name: value}`` (missing
                entries from the defaults), or a sequence/tensor in ``params`` order; a
                tensor keeps its autograd history.
            dtype: the dtype of the result.
            device: its device.
        """
        if not self.params:
            if p is not None and not (isinstance(p, Mapping) and not p) and np.size(p) != 0:
                raise ValueError(f"p: this model has no parameters, got {p!r}")
            return None
        if p is None or isinstance(p, Mapping):
            given = {} if p is None else {_symbol(k, "p's keys"): v for k, v in p.items()}
            extra = [str(k) for k in given if k not in self.params]
            if extra:
                raise ValueError(f"p: {extra} are not parameters of the model ({self.params})")
            values = []
            for s in self.params:
                if s in given:
                    values.append(torch.as_tensor(given[s], dtype=dtype, device=device))
                elif s in self.defaults:
                    values.append(torch.tensor(self.defaults[s], dtype=dtype, device=device))
                else:
                    raise ValueError(
                        f"p: no value for the parameter {s}; give p={{'{s}': value, …}} or "
                        "defaults in params={symbol: value}"
                    )
            return torch.stack(values, -1)
        out = torch.as_tensor(p, dtype=dtype, device=device)
        if out.ndim == 0 or out.shape[-1] != len(self.params):
            raise ValueError(
                f"p: expected {len(self.params)} values in the order {self.params}, got shape "
                f"{tuple(out.shape)}"
            )
        return out

    def state_vector(
        self, y0: Any, *, dtype: torch.dtype = torch.float64, device: Any = None
    ) -> Tensor:
        """The initial state ``(n,)`` or ``(batch, n)`` from a mapping or a sequence/tensor."""
        if isinstance(y0, Mapping):
            given = {_symbol(k, "y0's keys"): v for k, v in y0.items()}
            missing = [str(s) for s in self.states if s not in given]
            if missing:
                raise ValueError(f"y0: no initial value for the state(s) {missing}")
            return torch.stack(
                [torch.as_tensor(given[s], dtype=dtype, device=device) for s in self.states], -1
            )
        if isinstance(y0, Tensor) and y0.is_floating_point():
            out = y0 if y0.dtype == dtype or dtype is None else y0.to(dtype)
        else:
            out = torch.as_tensor(np.asarray(y0, dtype=float), dtype=dtype, device=device)
        if out.ndim == 0 or out.shape[-1] != len(self.states):
            raise ValueError(
                f"y0: expected {len(self.states)} values in the order {self.states}, got shape "
                f"{tuple(out.shape)}"
            )
        return out

    # ----------------------------------------------------------------- code

    def _compile(
        self, name: str, exprs: Sequence[sympy.Expr], shape: Any = None
    ) -> CompiledFunction:
        return compile_torch(
            name, exprs, self.t, self.states, self.params, shape=shape, functions=self.functions
        )

    def _numpy(self, exprs: Sequence[sympy.Expr]) -> Callable[..., np.ndarray]:
        if self.functions:
            raise ValueError("to_numpy: the model uses torch functions, which NumPy cannot call")
        return compile_numpy(exprs, self.t, self.states, self.params)

    def _derivative_latex(self, s: sympy.Symbol) -> str:
        return rf"\frac{{\mathrm{{d}} {sympy.latex(s)}}}{{\mathrm{{d}} {sympy.latex(self.t)}}}"


class SymbolicODE(AbstractSymbolicModel):
    """An ODE written in sympy, compiled once into a batched, differentiable torch function.

    ``SymbolicODE`` turns ``dx_i/dt = f_i(t, x, p)`` into what the engines need: a
    vectorised torch right-hand side (common subexpressions eliminated, differentiable in
    the parameters), its analytic Jacobian and sparsity pattern, an optional mass matrix,
    Julia source for the Julia engine (sympy's Julia printer) and LaTeX.

    Args:
        equations: ``{state: right-hand side}`` (states as symbols, names, ``x(t)`` or
            ``Derivative(x(t), t)``; right-hand sides as sympy expressions or strings), or a
            sequence of ``sympy.Eq(Derivative(x(t), t), rhs)``.
        states: the state order (default: the order of ``equations``).
        params: the parameter order, or ``{symbol: default value}`` (default: every other
            free symbol, sorted by name).
        t: the time symbol (default ``t``).
        mass_matrix: optional ``(n, n)`` matrix ``M`` of ``M dx/dt = f`` (numbers or
            expressions in the parameters); a zero row makes an algebraic equation.
        functions: torch callables for undefined sympy functions used in the equations, by
            name (e.g. a neural network ``{"U": net}`` called elementwise on its arguments).

    Example:
        >>> import sympy as sp, torch, hybrideq as hq
        >>> x, y, a, b, c, d = sp.symbols("x y alpha beta gamma delta")
        >>> lv = hq.symbolic.SymbolicODE(
        ...     {x: a * x - b * x * y, y: c * x * y - d * y},
        ...     params={a: 1.3, b: 0.9, c: 0.8, d: 1.8},
        ... )
        >>> prob = lv.problem([0.44249296, 4.6280594], (0.0, 3.0))
        >>> sol = hq.solve(prob, hq.Tsit5(), rtol=1e-8, atol=1e-10)
        >>> lv.jacobian
        Matrix([
        [alpha - beta*y,         -beta*x],
        [       gamma*y, -delta + gamma*x]])
    """

    def __init__(
        self,
        equations: Mapping[Any, Any] | Sequence[sympy.Eq],
        states: Sequence[SymbolLike] | None = None,
        params: Sequence[SymbolLike] | Mapping[Any, float] | None = None,
        *,
        t: SymbolLike | None = None,
        mass_matrix: Any = None,
        functions: Mapping[str, Callable[..., Any]] | None = None,
    ) -> None:
        keys, rhs = _split_equations(equations)
        extra: list[Any] = []
        n = len(keys)
        if mass_matrix is not None:
            M = sympy.Matrix(mass_matrix)
            if M.shape != (n, n):
                raise ValueError(f"mass_matrix must be {n}×{n} (one row per state), got {M.shape}")
            extra = list(M)
        more = self._setup(keys, rhs, states, params, t, functions, extra)
        self.mass_matrix_expr = None if mass_matrix is None else sympy.Matrix(n, n, more)
        if self.mass_matrix_expr is not None:
            bad = self.mass_matrix_expr.free_symbols - set(self.params)
            if bad:
                raise ValueError(
                    f"mass_matrix may use parameters only (it is constant in t and the states), "
                    f"got {sorted(map(str, bad))}"
                )
        self._f: CompiledFunction | None = None
        self._jac: CompiledFunction | None = None

    # ----------------------------------------------------------------- symbolic views

    @property
    def equations(self) -> dict[sympy.Symbol, sympy.Expr]:
        """``{state: right-hand side}``."""
        return dict(zip(self.states, self.drift, strict=True))

    @property
    def jacobian(self) -> sympy.Matrix:
        """The analytic Jacobian ``∂f_i/∂x_j`` as a sympy matrix.

        States, parameters and time are differentiated as real symbols (so that
        ``d|x|/dx = sign(x)``, not an expression in ``re`` and ``im``).
        """
        return self._differentiate(self.states)

    @property
    def time_derivative(self) -> list[sympy.Expr]:
        """``∂f_i/∂t`` (zero for an autonomous model), differentiated as :attr:`jacobian`."""
        return list(self._differentiate([self.t]))

    def _differentiate(self, wrt: Sequence[sympy.Symbol]) -> sympy.Matrix:
        """``∂f_i/∂w_j`` for ``w`` in ``wrt``, every symbol taken as real."""
        symbols = (*self.states, *self.params, self.t)
        real = {s: sympy.Dummy(s.name, real=True) for s in symbols}
        back = {v: k for k, v in real.items()}
        J = sympy.Matrix([e.xreplace(real) for e in self.drift]).jacobian([real[s] for s in wrt])
        return J.xreplace(back)

    @property
    def sparsity(self) -> Tensor:
        """The Jacobian's structural nonzeros, a boolean ``(n, n)`` tensor."""
        J = self.jacobian
        return torch.tensor([[J[i, j] != 0 for j in range(J.cols)] for i in range(J.rows)])

    # ----------------------------------------------------------------- compiled

    @property
    def f(self) -> CompiledFunction:
        """The compiled right-hand side ``f(t, y, p)`` (its code in ``.f.source``)."""
        if self._f is None:
            self._f = self._compile("rhs", self.drift)
            self._f.julia_model = self
        return self._f

    @property
    def jac(self) -> CompiledFunction:
        """The compiled Jacobian ``jac(t, y, p)``: ``(n, n)`` or ``(batch, n, n)``."""
        if self._jac is None:
            n = len(self.states)
            self._jac = self._compile("jac", list(self.jacobian), (n, n))
        return self._jac

    def to_torch(self) -> CompiledFunction:
        """The right-hand side as a batched torch function ``f(t, y, p)``."""
        return self.f

    def to_numpy(self) -> Callable[..., np.ndarray]:
        """The right-hand side as a NumPy function ``f(t, y, p)`` (batched like ``f``)."""
        return self._numpy(self.drift)

    def mass_matrix(self, p: Any = None, *, dtype: torch.dtype = torch.float64) -> Tensor | None:
        """The mass matrix at the parameters ``p`` (``None`` when the model has none)."""
        if self.mass_matrix_expr is None:
            return None
        pv = self.parameter_vector(p, dtype=dtype)
        if pv is not None and pv.ndim > 1:
            raise ValueError("mass_matrix: the mass matrix is shared by the batch; give one p")
        subs = {} if pv is None else dict(zip(self.params, pv.tolist(), strict=True))
        return torch.tensor(
            np.asarray(self.mass_matrix_expr.subs(subs).evalf(), dtype=float), dtype=dtype
        )

    def problem(
        self,
        y0: Any,
        tspan: Any,
        p: Any = None,
        *,
        dtype: torch.dtype | None = None,
        jac: bool = True,
        sparse: bool | None = None,
    ) -> ODEProblem:
        """Build an :class:`~hybrideq.ODEProblem` with the compiled ``f`` and Jacobian.

        Args:
            y0: initial state, ``(n,)`` / ``(batch, n)`` or ``{state: value}``.
            tspan: ``(t0, t1)``.
            p: parameters (see :meth:`parameter_vector`); ``None`` uses the defaults.
            dtype: the dtype (default: ``y0``'s floating dtype, else float64).
            jac: pass the analytic Jacobian (stiff solvers use it).
            sparse: pass the sparsity pattern as ``jac_prototype`` (default: when at most
                a quarter of the Jacobian's entries are structurally nonzero).
        """
        dtype = _dtype_of(y0, dtype)
        y = self.state_vector(y0, dtype=dtype)
        pv = self.parameter_vector(p, dtype=dtype, device=y.device)
        pattern = self.sparsity
        if sparse is None:
            sparse = pattern.numel() >= 16 and int(pattern.sum()) <= pattern.numel() // 4
        M = None
        if self.mass_matrix_expr is not None:
            M = self.mass_matrix(None if pv is None else pv.detach(), dtype=dtype)
        return ODEProblem(
            self.f,
            y,
            tspan,
            pv,
            jac=self.jac if jac else None,
            mass_matrix=M,
            jac_prototype=pattern if sparse else None,
        )

    # ----------------------------------------------------------------- editing

    def add_terms(
        self,
        terms: Mapping[Any, Any],
        params: Mapping[Any, float] | None = None,
    ) -> SymbolicODE:
        """A new model with ``terms[state]`` added to the right-hand sides.

        Args:
            terms: ``{state: expression}`` to add (e.g. discovered equations).
            params: defaults of new parameters the terms introduce.
        """
        eqs = self.equations
        for k, v in terms.items():
            s = _symbol(k, "terms' keys")
            if s not in eqs:
                raise ValueError(f"terms: {s} is not a state of the model ({self.states})")
            eqs[s] = eqs[s] + sympy.sympify(v)
        defaults = {
            **self.defaults,
            **{_symbol(k, "params"): float(v) for k, v in (params or {}).items()},
        }
        free = set().union(*(e.free_symbols for e in eqs.values())) - set(self.states) - {self.t}
        order = list(self.params) + _ordered(free - set(self.params))
        missing = [s for s in order if s not in defaults]
        return SymbolicODE(
            eqs,
            self.states,
            order if missing else {s: defaults[s] for s in order},
            t=self.t,
            mass_matrix=self.mass_matrix_expr,
            functions=self.functions,
        )

    def with_defaults(self, values: Mapping[Any, float]) -> SymbolicODE:
        """The same model with new default parameter values (e.g. a fit's ``params``).

        Args:
            values: ``{parameter (symbol or name): value}``; parameters not named keep
                their defaults (every parameter must end with one).
        """
        names = {str(s): s for s in self.params}
        new = dict(self.defaults)
        for k, v in values.items():
            s = names.get(str(k))
            if s is None:
                raise ValueError(f"values: {k} is not a parameter of the model ({self.params})")
            new[s] = float(v)
        missing = [str(s) for s in self.params if s not in new]
        if missing:
            raise ValueError(f"values: no value for the parameters {missing}")
        return SymbolicODE(
            self.equations,
            self.states,
            {s: new[s] for s in self.params},
            t=self.t,
            mass_matrix=self.mass_matrix_expr,
            functions=self.functions,
        )

    # ----------------------------------------------------------------- other languages

    def julia_source(self, module: str = "HybridEqModel") -> str:
        """Julia source of a module with ``f!(du, u, p, t)`` and ``jac!(J, u, p, t)``.

        The functions follow SciMLBase's in-place signature; ``tgrad!(dT, u, p, t)`` is
        ``∂f/∂t`` (Rosenbrock methods use it). ``f(u, p, t)``, ``jac(u, p, t)`` and
        ``tgrad(u, p, t)`` are the out-of-place forms as tuples (``jac``'s in column-major
        order), which DiffEqGPU's kernels wrap in an ``SVector``/``SMatrix``. The module
        also defines
        ``STATES``, ``PARAMS``, ``JAC_SPARSITY`` and, with a mass matrix, ``mass_matrix(p)``.
        Code is printed by sympy's Julia printer after common subexpression elimination.
        """
        n = len(self.states)
        jac = self.jacobian
        tgrad = self.time_derivative
        args = (self.t, self.states, self.params)
        pattern = self.sparsity
        rows = "; ".join(
            " ".join("true" if v else "false" for v in row) for row in pattern.tolist()
        )
        parts = [
            f"module {module}",
            "# generated by hybrideq.symbolic from sympy equations; do not edit",
            "",
            f"const STATES = ({', '.join(f':{_jl_name(s)}' for s in self.states)},)",
            f"const PARAMS = ({', '.join(f':{_jl_name(s)}' for s in self.params)},)",
            f"const JAC_SPARSITY = Bool[{rows}]",
            "",
            julia_function("f!", self.drift, *args),
            julia_function("jac!", list(jac), *args, shape=(n, n), out="J"),
            julia_function("tgrad!", tgrad, *args, out="dT"),
            julia_function("f", self.drift, *args, out=None),
            julia_function("jac", [jac[i, j] for j in range(n) for i in range(n)], *args, out=None),
            julia_function("tgrad", tgrad, *args, out=None),
        ]
        if self.mass_matrix_expr is not None:
            parts.append(_julia_mass_matrix(self.mass_matrix_expr, self.params))
        parts.append(f"end # module {module}\n")
        return "\n".join(parts)

    def latex(self) -> str:
        """The equations as a LaTeX ``aligned`` block."""
        lines = [
            f"{self._derivative_latex(s)} &= {sympy.latex(e)}"
            for s, e in zip(self.states, self.drift, strict=True)
        ]
        return "\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}"

    def _repr_latex_(self) -> str:
        return f"$${self.latex()}$$"

    def __repr__(self) -> str:
        eqs = ", ".join(
            f"d{s}/d{self.t} = {e}" for s, e in zip(self.states, self.drift, strict=True)
        )
        return f"SymbolicODE({eqs}; params={list(self.params)})"


class SymbolicSDE(AbstractSymbolicModel):
    """An SDE ``dx = f dt + g dW`` written in sympy, compiled like :class:`SymbolicODE`.

    Args:
        drift: ``{state: f_i}``, as the ``equations`` of :class:`SymbolicODE`.
        diffusion: ``{state: g_i}`` for ``"diagonal"``/``"scalar"``/``"additive"`` noise, or
            an ``(n, m)`` matrix (nested lists or a sympy ``Matrix``) for ``"general"`` noise.
        states: the state order (default: the order of ``drift``).
        params: the parameter order, or ``{symbol: default}``.
        t: the time symbol (default ``t``).
        noise: the noise structure (see :class:`~hybrideq.SDEProblem`).
        interpretation: ``"ito"`` or ``"stratonovich"``.
        functions: torch callables for undefined sympy functions, by name.

    Example:
        >>> import sympy as sp, hybrideq as hq
        >>> x, mu, sigma = sp.symbols("x mu sigma")
        >>> gbm = hq.symbolic.SymbolicSDE({x: mu * x}, {x: sigma * x}, params={mu: 0.5, sigma: 0.2})
        >>> sol = hq.solve(gbm.problem([1.0], (0.0, 1.0)), hq.SRIW1(), seed=0)
    """

    def __init__(
        self,
        drift: Mapping[Any, Any] | Sequence[sympy.Eq],
        diffusion: Mapping[Any, Any] | Any,
        states: Sequence[SymbolLike] | None = None,
        params: Sequence[SymbolLike] | Mapping[Any, float] | None = None,
        *,
        t: SymbolLike | None = None,
        noise: str | None = None,
        interpretation: str = "ito",
        functions: Mapping[str, Callable[..., Any]] | None = None,
    ) -> None:
        keys, rhs = _split_equations(drift)
        n = len(keys)
        if isinstance(diffusion, Mapping):
            noise = noise or "diagonal"
            if noise == "general":
                raise ValueError(
                    "diffusion: general noise needs an (n, m) matrix, not a {state: g} mapping"
                )
            by_key = {_symbol(k, "diffusion's keys"): v for k, v in diffusion.items()}
            key_symbols = [_symbol(k, "drift's keys") for k in keys]
            unknown = [str(k) for k in by_key if k not in key_symbols]
            if unknown:
                raise ValueError(f"diffusion: {unknown} are not states of the drift")
            extra = [by_key.get(s, 0) for s in key_symbols]
            self.noise_shape: tuple[int, int] | None = None
        else:
            noise = noise or "general"
            G = sympy.Matrix(diffusion)
            if G.rows != n:
                raise ValueError(
                    f"diffusion: the matrix needs one row per state ({n}), got {G.shape}"
                )
            if noise not in ("general", "additive"):
                raise ValueError(
                    f"diffusion: a matrix diffusion means noise='general' (or 'additive'), "
                    f"got noise={noise!r}"
                )
            extra = list(G)
            self.noise_shape = (G.rows, G.cols)
        self.noise = noise
        self.interpretation = interpretation
        more = self._setup(keys, rhs, states, params, t, functions, extra)
        if self.noise_shape is None:
            # the keys' order may differ from states: reorder the diagonal entries
            key_symbols = [_symbol(k, "drift's keys") for k in keys]
            by_state = dict(zip(key_symbols, more, strict=True))
            self.diffusion: tuple[sympy.Expr, ...] = tuple(by_state[s] for s in self.states)
        else:
            self.diffusion = tuple(more)
        self._f: CompiledFunction | None = None
        self._g: CompiledFunction | None = None

    @property
    def equations(self) -> dict[sympy.Symbol, sympy.Expr]:
        """``{state: drift}``."""
        return dict(zip(self.states, self.drift, strict=True))

    @property
    def f(self) -> CompiledFunction:
        """The compiled drift ``f(t, y, p)``."""
        if self._f is None:
            self._f = self._compile("drift", self.drift)
            self._f.julia_model = self
        return self._f

    @property
    def g(self) -> CompiledFunction:
        """The compiled diffusion ``g(t, y, p)``: shaped like ``y``, or ``(*y.shape, m)``."""
        if self._g is None:
            self._g = self._compile("diffusion", self.diffusion, self.noise_shape)
        return self._g

    def problem(
        self, y0: Any, tspan: Any, p: Any = None, *, dtype: torch.dtype | None = None
    ) -> SDEProblem:
        """Build an :class:`~hybrideq.SDEProblem` with the compiled drift and diffusion."""
        dtype = _dtype_of(y0, dtype)
        y = self.state_vector(y0, dtype=dtype)
        pv = self.parameter_vector(p, dtype=dtype, device=y.device)
        return SDEProblem(
            self.f,
            self.g,
            y,
            tspan,
            pv,
            noise=self.noise,
            noise_dim=self.noise_shape[1] if self.noise_shape is not None else None,
            interpretation=self.interpretation,
        )

    def julia_source(self, module: str = "HybridEqModel") -> str:
        """Julia source of a module with the in-place drift ``f!`` and diffusion ``g!``, and
        their out-of-place forms ``f(u, p, t)`` and ``g(u, p, t)`` as tuples (``g``'s
        ``(n, m)`` matrix in column-major order) for DiffEqGPU's kernels."""
        args = (self.t, self.states, self.params)
        g = julia_function("g!", self.diffusion, *args, shape=self.noise_shape)
        if self.noise_shape is None:
            g_columns = list(self.diffusion)
        else:
            n, m = self.noise_shape
            g_columns = [self.diffusion[i * m + j] for j in range(m) for i in range(n)]
        return "\n".join(
            [
                f"module {module}",
                "# generated by hybrideq.symbolic from sympy equations; do not edit",
                "",
                f"const STATES = ({', '.join(f':{_jl_name(s)}' for s in self.states)},)",
                f"const PARAMS = ({', '.join(f':{_jl_name(s)}' for s in self.params)},)",
                f"const NOISE = :{self.noise}",
                "",
                julia_function("f!", self.drift, *args),
                g,
                julia_function("f", self.drift, *args, out=None),
                julia_function("g", g_columns, *args, out=None),
                f"end # module {module}\n",
            ]
        )

    def latex(self) -> str:
        """The SDE as a LaTeX ``aligned`` block (``dx = f dt + g dW``)."""
        lines = []
        m = self.noise_shape[1] if self.noise_shape else None
        for i, s in enumerate(self.states):
            if m is None:
                w = "W" if self.noise == "scalar" else f"W_{{{i + 1}}}"
                noise = rf"{sympy.latex(self.diffusion[i])}\,\mathrm{{d}}{w}"
            else:
                noise = (
                    " + ".join(
                        rf"{sympy.latex(self.diffusion[i * m + k])}\,\mathrm{{d}}W_{{{k + 1}}}"
                        for k in range(m)
                        if self.diffusion[i * m + k] != 0
                    )
                    or "0"
                )
            lines.append(
                rf"\mathrm{{d}}{sympy.latex(s)} &= {sympy.latex(self.drift[i])}\,\mathrm{{d}}"
                rf"{sympy.latex(self.t)} + {noise}"
            )
        return "\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}"

    def _repr_latex_(self) -> str:
        return f"$${self.latex()}$$"

    def __repr__(self) -> str:
        return (
            f"SymbolicSDE(drift={list(self.drift)}, diffusion={list(self.diffusion)}, "
            f"noise={self.noise!r}; params={list(self.params)})"
        )


def _dtype_of(y0: Any, dtype: torch.dtype | None) -> torch.dtype:
    """``dtype`` if given, else ``y0``'s floating dtype, else float64."""
    if dtype is not None:
        return dtype
    return y0.dtype if isinstance(y0, Tensor) and y0.is_floating_point() else torch.float64


def _split_equations(equations: Any) -> tuple[list[Any], list[Any]]:
    if isinstance(equations, Mapping):
        return list(equations.keys()), list(equations.values())
    if isinstance(equations, sympy.Eq):
        equations = [equations]
    if isinstance(equations, Sequence) and all(isinstance(e, sympy.Eq) for e in equations):
        return [e.lhs for e in equations], [e.rhs for e in equations]
    raise TypeError(
        "equations must be a mapping {state: rhs} or a sequence of "
        "sympy.Eq(Derivative(x(t), t), rhs)"
    )


def _jl_name(s: sympy.Symbol) -> str:
    name = str(s)
    return name if name.isidentifier() else f'Symbol("{name}")'


def _julia_mass_matrix(M: sympy.Matrix, params: Sequence[sympy.Symbol]) -> str:
    subs = {s: sympy.Symbol(f"p_{j + 1}") for j, s in enumerate(params)}
    printer_rows = []
    for i in range(M.rows):
        printer_rows.append(
            " ".join(sympy.julia_code(M[i, j].xreplace(subs)) for j in range(M.cols))
        )
    used = sorted({str(s) for s in M.xreplace(subs).free_symbols})
    read = "".join(f"    {name} = p[{name[2:]}]\n" for name in used)
    return (
        "function mass_matrix(p)\n"
        + read
        + f"    return Float64[{'; '.join(printer_rows)}]\n"
        + "end\n"
    )
