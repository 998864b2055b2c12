"""sympy → code: batched torch functions, NumPy functions and Julia source.

Every generator takes a list of sympy expressions in the states ``y_i``, the parameters
``p_j`` and the time ``t``, eliminates common subexpressions once (``sympy.cse``) and prints
straight-line code. The torch code reads the states as ``y[..., i]`` and the parameters as
``p[..., j]``, so one function serves one problem (``y`` of shape ``(n,)``), a batch
(``(batch, n)``) and per-sample parameters (``(batch, n_p)``) alike; every operation is a
torch operation, so autograd differentiates it in ``y`` and ``p``.
"""

from __future__ import annotations

import itertools
import linecache
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import sympy
import torch
from sympy.printing.julia import JuliaCodePrinter
from sympy.printing.pycode import PythonCodePrinter
from torch import Tensor

__all__ = [
    "CompiledFunction",
    "compile_numpy",
    "compile_torch",
    "fold_numbers",
    "julia_function",
]

# sympy function name → torch function (element-wise, differentiable).
_TORCH_FUNCTIONS: dict[str, str] = {
    "Abs": "torch.abs",
    "sign": "torch.sign",
    "exp": "torch.exp",
    "log": "torch.log",
    "sqrt": "torch.sqrt",
    "Sqrt": "torch.sqrt",
    "sin": "torch.sin",
    "cos": "torch.cos",
    "tan": "torch.tan",
    "asin": "torch.asin",
    "acos": "torch.acos",
    "atan": "torch.atan",
    "atan2": "torch.atan2",
    "sinh": "torch.sinh",
    "cosh": "torch.cosh",
    "tanh": "torch.tanh",
    "asinh": "torch.asinh",
    "acosh": "torch.acosh",
    "atanh": "torch.atanh",
    "erf": "torch.erf",
    "erfc": "torch.erfc",
    "loggamma": "torch.lgamma",
    "floor": "torch.floor",
    "ceiling": "torch.ceil",
    "expm1": "torch.expm1",
    "log1p": "torch.log1p",
    "log2": "torch.log2",
    "log10": "torch.log10",
    "Heaviside": "_heaviside",
    "Min": "_minimum",
    "Max": "_maximum",
}


class _TorchPrinter(PythonCodePrinter):
    """Prints sympy as torch expressions (``torch.sin(y_0)``); numbers stay Python floats."""

    _kf: dict[str, str] = dict(_TORCH_FUNCTIONS)

    def _print_Pow(self, expr: sympy.Pow, rational: bool = False) -> str:
        return self._hprint_Pow(expr, rational=rational, sqrt="torch.sqrt")

    def _print_sign(self, expr: sympy.sign) -> str:
        return f"torch.sign({self._print(expr.args[0])})"

    def _print_Piecewise(self, expr: sympy.Piecewise) -> str:
        # Piecewise((e1, c1), (e2, c2), …) → _where(c1, e1, _where(c2, e2, …))
        out = "math.nan"
        for value, cond in reversed(expr.args):
            if cond == sympy.true:
                out = self._print(value)
            else:
                out = f"_where({self._print(cond)}, {self._print(value)}, {out})"
        return out

    def _print_Relational(self, expr: sympy.core.relational.Relational) -> str:
        return f"({self._print(expr.lhs)} {expr.rel_op} {self._print(expr.rhs)})"

    def _print_And(self, expr: sympy.And) -> str:
        return "(" + " & ".join(self._print(a) for a in expr.args) + ")"

    def _print_Or(self, expr: sympy.Or) -> str:
        return "(" + " | ".join(self._print(a) for a in expr.args) + ")"

    def _print_Not(self, expr: sympy.Not) -> str:
        return f"(~{self._print(expr.args[0])})"

    def _print_Function(self, expr: sympy.Function) -> str:
        name = type(expr).__name__
        if name in ("Min", "Max") and len(expr.args) > 2:
            # fold n-ary min/max into binary calls
            head, *rest = expr.args
            out = self._print(head)
            for arg in rest:
                out = f"{self._kf[name]}({out}, {self._print(arg)})"
            return out
        if name in self.known_functions:
            return f"{self.known_functions[name]}({', '.join(self._print(a) for a in expr.args)})"
        raise ValueError(
            f"no torch translation for the sympy function {name}{expr.args}: pass "
            f"functions={{'{name}': callable}} (a torch function) to use it"
        )

    _print_Min = _print_Function
    _print_Max = _print_Function


def _heaviside(x: Any, at_zero: Any = 0.5) -> Tensor:
    (x,) = _tensors(x)
    return torch.heaviside(x, torch.full_like(x, float(at_zero)))


def _tensors(*values: Any) -> list[Tensor]:
    """Tensors of one floating dtype: that of the first tensor argument (else float64)."""
    like = next((v for v in values if isinstance(v, Tensor) and v.is_floating_point()), None)
    dtype = like.dtype if like is not None else torch.float64
    device = like.device if like is not None else None
    return [torch.as_tensor(v, dtype=dtype, device=device) for v in values]


def _minimum(a: Any, b: Any) -> Tensor:
    a, b = _tensors(a, b)
    return torch.minimum(a, b)


def _maximum(a: Any, b: Any) -> Tensor:
    a, b = _tensors(a, b)
    return torch.maximum(a, b)


def _where(cond: Any, a: Any, b: Any) -> Tensor:
    a, b = _tensors(a, b)
    return torch.where(torch.as_tensor(cond), a, b)


def _vector(values: Sequence[Any], y: Tensor, p: Any, t: Any) -> Tensor:
    """Stack per-component values into ``(*batch, n)``, broadcasting constants and scalars."""
    shape = _batch_shape(values, y, p, t)
    dtype = y.dtype
    return torch.stack(
        [torch.as_tensor(v, dtype=dtype, device=y.device).expand(shape) for v in values], -1
    )


def _matrix(
    values: Sequence[Any], index: Tensor, n: int, m: int, y: Tensor, p: Any, t: Any
) -> Tensor:
    """Scatter the nonzero entries ``values`` (flat positions ``index``) into ``(*batch, n, m)``."""
    shape = _batch_shape(values, y, p, t)
    flat = y.new_zeros((*shape, n * m))
    if values:
        nz = _vector(values, y, p, t).expand((*shape, len(values)))
        flat = flat.index_copy(-1, index.to(y.device), nz)
    return flat.reshape(*shape, n, m)


def _batch_shape(values: Sequence[Any], y: Tensor, p: Any, t: Any) -> tuple[int, ...]:
    shapes = [y.shape[:-1]]
    if isinstance(p, Tensor) and p.ndim >= 2:
        shapes.append(p.shape[:-1])
    if isinstance(t, Tensor):
        shapes.append(t.shape)
    shapes.extend(v.shape for v in values if isinstance(v, Tensor))
    return tuple(torch.broadcast_shapes(*shapes))


def fold_numbers(expr: sympy.Expr) -> sympy.Expr:
    """Replace every numeric subexpression (``sqrt(2)``, ``exp(-1)``) by a 17-digit Float.

    Integers, rationals and ``pi`` stay exact (they print as Python numbers); what is left is
    code in which every function call has a tensor argument.
    """

    def numeric(e: sympy.Basic) -> bool:
        return bool(e.is_number) and not e.is_Atom and not isinstance(e, sympy.Rational)

    return expr.replace(numeric, lambda e: sympy.Float(sympy.N(e, 30), 30))


class CompiledFunction:
    """A generated function with its source (for reading and for tracebacks).

    Attributes:
        fn: the callable.
        source: the Python source it was compiled from.
        julia_model: the symbolic model whose right-hand side this is (set by
            ``SymbolicODE.f`` / ``SymbolicSDE.f``): the Julia engine then runs the model's
            generated Julia code instead of calling back into Python.
    """

    __slots__ = ("fn", "julia_model", "source")

    def __init__(self, fn: Callable[..., Any], source: str) -> None:
        self.fn = fn
        self.source = source
        self.julia_model: Any = None

    def __call__(self, *args: Any) -> Any:
        return self.fn(*args)

    def __repr__(self) -> str:
        return f"CompiledFunction({self.fn.__name__})"


_counter = itertools.count()


def _exec(source: str, name: str, namespace: dict[str, Any]) -> Callable[..., Any]:
    filename = f"<hybrideq.symbolic:{name}:{next(_counter)}>"
    # register the source so that tracebacks and inspect show the generated lines
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)
    return namespace[name]


def _rename(
    t: sympy.Symbol | None, states: Sequence[sympy.Symbol], params: Sequence[sympy.Symbol]
) -> tuple[dict[sympy.Symbol, sympy.Symbol], list[str]]:
    """Safe code names (``y_0``, ``p_0``, ``t``) for the user's symbols, and the read lines."""
    mapping: dict[sympy.Symbol, sympy.Symbol] = {}
    lines: list[str] = []
    if t is not None:
        mapping[t] = sympy.Symbol("t_")
        lines.append(f"t_ = t  # {t}")
    for i, s in enumerate(states):
        mapping[s] = sympy.Symbol(f"y_{i}")
        lines.append(f"y_{i} = y[..., {i}]  # {s}")
    for j, s in enumerate(params):
        mapping[s] = sympy.Symbol(f"p_{j}")
        lines.append(f"p_{j} = p[..., {j}]  # {s}")
    return mapping, lines


def compile_torch(
    name: str,
    exprs: Sequence[sympy.Expr],
    t: sympy.Symbol | None,
    states: Sequence[sympy.Symbol],
    params: Sequence[sympy.Symbol],
    *,
    shape: tuple[int, int] | None = None,
    functions: Mapping[str, Callable[..., Any]] | None = None,
) -> CompiledFunction:
    """Compile expressions into ``name(t, y, p)`` returning a batched torch tensor.

    Args:
        name: the function's name.
        exprs: the expressions: ``n`` of them for a vector result ``(*batch, n)``, or the
            row-major entries of a matrix for ``shape=(n, m)`` (result ``(*batch, n, m)``;
            structural zeros cost nothing).
        t: the time symbol (``None``: autonomous).
        states: the state symbols, read as ``y[..., i]``.
        params: the parameter symbols, read as ``p[..., j]``.
        shape: ``(n, m)`` for a matrix result.
        functions: torch callables for user-defined sympy functions, by name.

    Returns:
        The compiled function and its source.
    """
    mapping, read = _rename(t, states, params)
    exprs = [fold_numbers(sympy.sympify(e).xreplace(mapping)) for e in exprs]
    if shape is not None:
        index = [k for k, e in enumerate(exprs) if e != 0]
        exprs = [exprs[k] for k in index]
    used = set().union(*(e.free_symbols for e in exprs)) if exprs else set()
    keep = {str(v) for v in mapping.values()} & {str(s) for s in used}
    read = [line for line in read if line.split(" = ")[0] in keep]
    subexprs, reduced = sympy.cse(exprs, symbols=sympy.numbered_symbols("c_"), order="none")
    user = dict(functions or {})
    printer = _TorchPrinter(
        {"user_functions": {k: f"_user_{k}" for k in user}, "fully_qualified_modules": True}
    )
    body = list(read)
    for sym, sub in subexprs:
        body.append(f"{sym} = {printer.doprint(sub)}")
    values = ", ".join(printer.doprint(e) for e in reduced)
    if shape is None:
        body.append(f"return _vector(({values}{',' if len(reduced) == 1 else ''}), y, p, t)")
    else:
        n, m = shape
        body.append(
            f"return _matrix(({values}{',' if len(reduced) == 1 else ''}), _index, {n}, {m}, "
            "y, p, t)"
        )
    source = f"def {name}(t, y, p):\n" + "".join(f"    {line}\n" for line in body)
    namespace: dict[str, Any] = {
        "torch": torch,
        "math": math,
        "_vector": _vector,
        "_matrix": _matrix,
        "_heaviside": _heaviside,
        "_minimum": _minimum,
        "_maximum": _maximum,
        "_where": _where,
        **{f"_user_{k}": v for k, v in user.items()},
    }
    if shape is not None:
        namespace["_index"] = torch.tensor(index, dtype=torch.long)
    return CompiledFunction(_exec(source, name, namespace), source)


def compile_numpy(
    exprs: Sequence[sympy.Expr],
    t: sympy.Symbol | None,
    states: Sequence[sympy.Symbol],
    params: Sequence[sympy.Symbol],
) -> Callable[..., np.ndarray]:
    """A NumPy function ``f(t, y, p)`` of the expressions, batched like the torch one.

    ``y`` is ``(n,)`` or ``(batch, n)``; ``p`` ``(n_p,)`` or ``(batch, n_p)`` (or ``None``
    when there are no parameters); the result has the shape of ``y``.
    """
    args = [t if t is not None else sympy.Dummy("t"), *states, *params]
    raw = sympy.lambdify(args, list(exprs), modules="numpy", cse=True)

    def f(t_: Any, y: Any, p: Any = None) -> np.ndarray:
        y = np.asarray(y, dtype=float)
        cols = [y[..., i] for i in range(y.shape[-1])]
        pcols = [] if p is None or not params else list(np.moveaxis(np.asarray(p, float), -1, 0))
        out = raw(np.asarray(t_, dtype=float), *cols, *pcols)
        return np.stack([np.broadcast_to(np.asarray(o, float), y.shape[:-1]) for o in out], -1)

    return f


class _JuliaPrinter(JuliaCodePrinter):
    """Scalar Julia: ``x^2`` and ``x*y`` rather than the broadcasting ``.^`` and ``.*``."""

    def _print_Mul(self, expr: sympy.Mul) -> str:
        return super()._print_Mul(expr).replace(".*", "*").replace("./", "/")

    def _print_Pow(self, expr: sympy.Pow) -> str:
        return super()._print_Pow(expr).replace(".^", "^").replace("./", "/")


def julia_function(
    name: str,
    exprs: Sequence[sympy.Expr],
    t: sympy.Symbol | None,
    states: Sequence[sympy.Symbol],
    params: Sequence[sympy.Symbol],
    *,
    shape: tuple[int, int] | None = None,
    out: str | None = "du",
) -> str:
    """Julia source of an in-place function ``name(out, u, p, t)`` (SciMLBase's convention).

    The vector form writes ``out[i] = …``; the matrix form (``shape=(n, m)``, row-major
    ``exprs``) fills ``out`` with zeros and writes the nonzero entries ``out[i, j] = …``.
    ``out=None`` gives the out-of-place form ``name(u, p, t)`` returning a tuple (for
    static arrays: DiffEqGPU's kernels take ``SVector(name(u, p, t))``). Common
    subexpressions become local variables.
    """
    mapping: dict[sympy.Symbol, sympy.Symbol] = {}
    read: list[str] = []
    for i, s in enumerate(states):
        mapping[s] = sympy.Symbol(f"y_{i + 1}")
        read.append(f"y_{i + 1} = u[{i + 1}]  # {s}")
    for j, s in enumerate(params):
        mapping[s] = sympy.Symbol(f"p_{j + 1}")
        read.append(f"p_{j + 1} = p[{j + 1}]  # {s}")
    if t is not None:
        mapping[t] = sympy.Symbol("t")
    exprs = [fold_numbers(sympy.sympify(e).xreplace(mapping)) for e in exprs]
    subexprs, reduced = sympy.cse(exprs, symbols=sympy.numbered_symbols("c_"), order="none")
    printer = _JuliaPrinter({"inline": True})
    used = set().union(*(e.free_symbols for e in exprs)) if exprs else set()
    used_names = {str(s) for s in used}
    body = [line for line in read if line.split(" = ")[0] in used_names]
    body += [f"{sym} = {printer.doprint(sub)}" for sym, sub in subexprs]
    if out is None:
        items = ", ".join(printer.doprint(e) for e in reduced)
        body.append(f"return ({items},)")
        return f"function {name}(u, p, t)\n" + "".join(f"    {line}\n" for line in body) + "end\n"
    if shape is None:
        body += [f"{out}[{i + 1}] = {printer.doprint(e)}" for i, e in enumerate(reduced)]
    else:
        m = shape[1]
        body.append(f"fill!({out}, zero(eltype({out})))")
        for k, e in enumerate(reduced):
            if e != 0:
                body.append(f"{out}[{k // m + 1}, {k % m + 1}] = {printer.doprint(e)}")
    body.append("return nothing")
    return (
        f"function {name}({out}, u, p, t)\n" + "".join(f"    {line}\n" for line in body) + "end\n"
    )
