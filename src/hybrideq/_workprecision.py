"""Work–precision studies: time and accuracy of several solvers over a range of tolerances.

:func:`workprecision` solves one problem with every contender at every tolerance, times
each solve (warm-up runs first, then the median of ``repeats`` timed runs) and measures its
error against one reference, so that a faster but less accurate solver never looks better
than it is. Contenders are hybrideq solver objects (``hq.Rodas5P()``), peer names
(``"scipy:BDF"``, ``"diffrax:Kvaerno5"``) or :class:`Contender` objects made by
:func:`scipy_contender`, :func:`diffrax_contender` or by hand.

The error of a run (``error="final"``) is the RMS over the state components of the
componentwise relative error at ``t_end``

.. math::

    \\mathrm{err} = \\sqrt{\\frac{1}{n} \\sum_{i=1}^{n}
        \\Big(\\frac{y_i - r_i}{|r_i| + \\mathrm{floor}}\\Big)^2}

where ``r`` is the reference and ``floor`` (default: the study's smallest ``atol / rtol``,
i.e. ``atol_ratio``) keeps components that pass through zero from dominating. It is the
*mixed* error of the IVP test set (Mazzia & Magherini), which divides by
``atol / rtol + |r_i|``; ``error_max`` is its maximum over the components, so
``-log10(error_max)`` is the test set's ``mescd``. ``error="l2"`` takes the same RMS over
every component at every ``saveat`` time against a reference trajectory.

Example:
    >>> import torch, hybrideq as hq
    >>> from hybrideq._workprecision import workprecision
    >>> prob = hq.library.exponential_decay()
    >>> wp = workprecision(
    ...     prob,
    ...     [hq.Tsit5(), "scipy:RK45"],
    ...     [1e-4, 1e-6],
    ...     reference=[0.36787944117144233],  # exp(-1), the exact y(1)
    ...     repeats=1,
    ... )
    >>> [r.solver for r in wp.rows]
    ['Tsit5', 'scipy:RK45', 'Tsit5', 'scipy:RK45']
    >>> wp.rows[2].error < wp.rows[0].error
    True
"""

from __future__ import annotations

import csv
import datetime as _dt
import importlib
import importlib.util
import inspect
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from hybrideq._version import __version__
from hybrideq.problems import ODEProblem
from hybrideq.solvers import AbstractSolver

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "DEFAULT_ATOL_RATIO",
    "NUMERIC_FIELDS",
    "REFERENCE_ATOL",
    "REFERENCE_RTOL",
    "SCIPY_METHODS",
    "Contender",
    "RunResult",
    "WorkPrecision",
    "WorkPrecisionRow",
    "compute_reference",
    "diffrax_contender",
    "scipy_contender",
    "workprecision",
]

DEFAULT_ATOL_RATIO = 1e-3
"""``atol = DEFAULT_ATOL_RATIO · rtol`` when only ``rtol`` values are given (the ratio of
SciMLBenchmarks' stiff work-precision sets at high accuracy)."""

REFERENCE_RTOL = 1e-12
"""Relative tolerance of the reference computed with scipy Radau when none is given."""

REFERENCE_ATOL = 1e-14
"""Absolute tolerance of the computed reference (used only where it is below
``1e-3 ·`` the study's smallest ``atol``; otherwise that value is used)."""

SCIPY_METHODS = ("RK45", "RK23", "DOP853", "Radau", "BDF", "LSODA")
"""The ``solve_ivp`` methods a ``"scipy:METHOD"`` contender can name."""

_IMPLICIT_SCIPY = ("Radau", "BDF", "LSODA")
_PEER_PREFIXES = ("scipy", "diffrax")
_ERROR_KINDS = ("final", "l2")
_ENGINES = ("auto", "torch", "julia")
SUCCESS = "Success"
NOT_INSTALLED = "not installed"


# --------------------------------------------------------------------------- contenders


@dataclass(frozen=True)
class RunResult:
    """What one solve of a contender returns.

    Attributes:
        y: the state at ``t_end``, shape ``(n,)``, or for ``error="l2"`` the states at the
            ``saveat`` times, shape ``(T, n)`` (NumPy, float64).
        retcode: ``"Success"`` when the whole span was integrated, otherwise a short name
            of the failure (hybrideq's :class:`~hybrideq.ReturnCode` names, ``"Failure"``
            for a peer).
        nf: right-hand-side evaluations (``None`` where the library does not report them).
        njac: Jacobian evaluations.
        nlu: LU factorizations.
        naccept: accepted steps.
        nreject: rejected steps.
        message: the library's message for a failure.
    """

    y: np.ndarray
    retcode: str = SUCCESS
    nf: int | None = None
    njac: int | None = None
    nlu: int | None = None
    naccept: int | None = None
    nreject: int | None = None
    message: str = ""


Runner = Callable[[], RunResult]
"""A prepared solve: every call solves once and returns a :class:`RunResult`."""


@dataclass(frozen=True)
class Contender:
    """One contender of a work-precision study that is not a hybrideq solver object.

    ``prepare(problem, rtol, atol, saveat)`` does the one-off work (converting the problem,
    tracing and compiling) and returns a zero-argument callable that solves once and
    returns a :class:`RunResult`; only that callable is timed. ``saveat`` is ``None`` when
    only the final state is needed (``error="final"``), else a float64 NumPy array of
    save times. The time ``prepare`` takes is reported as ``setup_s``.

    Args:
        name: the row label, unique within a study.
        prepare: the factory described above.
        requires: modules the contender imports; when one is missing the study reports
            the contender as ``not installed`` instead of running it.
        description: a longer description for tables and the JSON output.
        mass_matrix: whether it can solve ``M y' = f`` (a problem with ``mass_matrix``);
            a study of such a problem with a contender that cannot is a ``ValueError``.

    Example:
        >>> import numpy as np
        >>> from hybrideq._workprecision import Contender, RunResult
        >>> def prepare(problem, rtol, atol, saveat):
        ...     return lambda: RunResult(y=np.exp(-np.ones(1)))  # "exact solver"
        >>> exact = Contender("exact", prepare)
    """

    name: str
    prepare: Callable[[ODEProblem, float, float, np.ndarray | None], Runner]
    requires: tuple[str, ...] = ()
    description: str = ""
    mass_matrix: bool = True


def _to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, Tensor):
        return x.detach().cpu().numpy().astype(np.float64, copy=False)
    return np.asarray(x, dtype=np.float64)


def _numpy_rhs(problem: ODEProblem) -> Callable[[float, np.ndarray], np.ndarray]:
    """``problem.f`` as ``f(t, y) -> ndarray`` for scipy (one problem, flattened state)."""
    shape, dtype, device, p, f = (
        problem.state_shape,
        problem.dtype,
        problem.device,
        problem.p,
        problem.f,
    )

    def rhs(t: float, y: np.ndarray) -> np.ndarray:
        tt = torch.tensor(t, dtype=dtype, device=device)
        yy = torch.as_tensor(y, dtype=dtype, device=device).reshape(shape)
        with torch.no_grad():
            out = f(tt, yy, p)
        return _to_numpy(out).reshape(-1)

    return rhs


def _numpy_jac(problem: ODEProblem) -> Callable[[float, np.ndarray], np.ndarray] | None:
    """``problem.jac`` as ``jac(t, y) -> (n, n) ndarray`` for scipy, or ``None``."""
    jac = problem.jac
    if jac is None:
        return None
    shape, dtype, device, p, n = (
        problem.state_shape,
        problem.dtype,
        problem.device,
        problem.p,
        problem.n,
    )

    def jacobian(t: float, y: np.ndarray) -> np.ndarray:
        tt = torch.tensor(t, dtype=dtype, device=device)
        yy = torch.as_tensor(y, dtype=dtype, device=device).reshape(shape)
        with torch.no_grad():
            out = jac(tt, yy, p)
        return _to_numpy(out).reshape(n, n)

    return jacobian


def _span(problem: ODEProblem) -> tuple[float, float]:
    return float(problem.tspan[0]), float(problem.tspan[1])


def scipy_contender(
    method: str,
    *,
    rhs: Callable[[float, np.ndarray], Any] | None = None,
    jac: Callable[[float, np.ndarray], Any] | bool | None = None,
    name: str | None = None,
    **options: Any,
) -> Contender:
    """A ``scipy.integrate.solve_ivp`` contender.

    By default scipy integrates ``problem.f`` through a thin wrapper (NumPy in, a torch
    call, NumPy out) and, for the implicit methods, gets ``problem.jac`` the same way
    where the problem has one (otherwise scipy uses finite differences). Pass ``rhs`` (and
    ``jac``) as NumPy functions ``f(t, y)`` to time scipy the way a scipy user runs it,
    without the torch call in every evaluation.

    scipy reports ``nfev``, ``njev`` and ``nlu``; accepted steps are the number of steps
    ``solve_ivp`` returns (rejected steps are not reported, so ``nreject`` and ``steps``
    are ``None``). With ``error="l2"`` the save times go to ``t_eval`` and the accepted
    steps are not known either.

    Args:
        method: one of :data:`SCIPY_METHODS` (``"BDF"``, ``"Radau"``, ``"LSODA"``,
            ``"RK45"``, ``"RK23"``, ``"DOP853"``).
        rhs: optional NumPy right-hand side ``f(t, y)`` of the flattened state.
        jac: optional NumPy Jacobian ``jac(t, y) -> (n, n)``; ``False`` makes scipy use
            finite differences even where the problem has ``jac``.
        name: row label (default ``"scipy:METHOD"``).
        **options: further ``solve_ivp`` options (``max_step``, ``first_step`` …).

    Returns:
        A :class:`Contender`.

    Raises:
        ValueError: for an unknown method.
    """
    if method not in SCIPY_METHODS:
        raise ValueError(
            f"unknown scipy method {method!r}; use one of {', '.join(SCIPY_METHODS)} "
            "(as 'scipy:BDF')"
        )
    if rhs is not None and not callable(rhs):
        raise TypeError("rhs must be a NumPy function f(t, y) or None")
    if jac is not None and not isinstance(jac, bool) and not callable(jac):
        raise TypeError("jac must be a NumPy function jac(t, y), False or None")
    if jac is True:
        raise TypeError("jac=True is ambiguous: pass a NumPy function, False or None")

    def prepare(problem: ODEProblem, rtol: float, atol: float, saveat: np.ndarray | None) -> Runner:
        from scipy.integrate import solve_ivp

        if problem.mass_matrix is not None:
            raise ValueError(
                f"scipy:{method} cannot take a mass matrix (M y' = f); leave scipy out of "
                "the study of this problem or pass a Contender of your own"
            )
        fun = rhs if rhs is not None else _numpy_rhs(problem)
        kwargs: dict[str, Any] = dict(options)
        if method in _IMPLICIT_SCIPY and jac is not False:
            j = jac if callable(jac) else _numpy_jac(problem)
            if j is not None:
                kwargs["jac"] = j
        if saveat is not None:
            kwargs["t_eval"] = saveat
        span = _span(problem)
        y0 = _to_numpy(problem.y0).reshape(-1)

        def run() -> RunResult:
            sol = solve_ivp(fun, span, y0, method=method, rtol=rtol, atol=atol, **kwargs)
            ok = sol.status == 0
            y = sol.y.T if saveat is not None else sol.y[:, -1]
            if saveat is not None and y.shape[0] != len(saveat):  # stopped early
                full = np.full((len(saveat), y0.size), np.nan)
                full[: y.shape[0]] = y
                y = full
            return RunResult(
                y=np.asarray(y, dtype=np.float64),
                retcode=SUCCESS if ok else "Failure",
                nf=int(sol.nfev),
                njac=int(sol.njev),
                nlu=int(sol.nlu),
                naccept=None if saveat is not None else len(sol.t) - 1,
                message="" if ok else str(sol.message),
            )

        return run

    return Contender(
        name=name or f"scipy:{method}",
        prepare=prepare,
        requires=("scipy",),
        description=f"scipy.integrate.solve_ivp(method={method!r})",
        mass_matrix=False,
    )


def diffrax_contender(
    solver: str,
    vector_field: Callable[..., Any],
    *,
    args: Any = None,
    name: str | None = None,
    max_steps: int = 1_000_000,
    controller: Any = None,
    dt0: float | None = None,
) -> Contender:
    """A diffrax contender, solved under ``jax.jit`` (compilation is timed apart).

    diffrax cannot call a torch right-hand side, so it takes a JAX one: ``vector_field(t,
    y, args)`` in diffrax's convention, the same equations as ``problem.f``. ``args``
    defaults to ``problem.p`` converted to a JAX array (a tensor ``p``), so a vector field
    written against ``p`` sees the same numbers. Float64 problems need JAX's float64 mode
    (``jax.config.update("jax_enable_x64", True)``).

    diffrax reports accepted and rejected steps but no evaluation, Jacobian or LU counts
    (those are ``None``). ``setup_s`` is trace + lower + compile.

    Args:
        solver: a diffrax solver class name, e.g. ``"Kvaerno5"``, ``"Tsit5"``.
        vector_field: the JAX right-hand side ``f(t, y, args)``.
        args: the ``args`` passed to ``vector_field`` (default: ``problem.p`` as a JAX array).
        name: row label (default ``"diffrax:SOLVER"``).
        max_steps: diffrax's ``max_steps``.
        controller: a diffrax step-size controller; default
            ``PIDController(rtol=rtol, atol=atol)`` (an integral controller).
        dt0: the initial step (default ``None``: diffrax chooses it).

    Returns:
        A :class:`Contender` that needs ``jax`` and ``diffrax``.
    """
    if not isinstance(solver, str) or not solver:
        raise TypeError(f"solver must be a diffrax solver name such as 'Kvaerno5', got {solver!r}")
    if not callable(vector_field):
        raise TypeError("vector_field must be a JAX function f(t, y, args)")

    def prepare(problem: ODEProblem, rtol: float, atol: float, saveat: np.ndarray | None) -> Runner:
        import diffrax
        import jax
        import jax.numpy as jnp

        cls = _diffrax_solver_class(solver)
        if problem.mass_matrix is not None:
            raise ValueError(f"diffrax:{solver} cannot take a mass matrix (M y' = f)")
        _check_jax_precision(problem.dtype)
        t0, t1 = _span(problem)
        y0 = jnp.asarray(_to_numpy(problem.y0).reshape(problem.state_shape))
        a = args
        if a is None and isinstance(problem.p, Tensor):
            a = jnp.asarray(_to_numpy(problem.p))
        term = diffrax.ODETerm(vector_field)
        ctrl = controller if controller is not None else diffrax.PIDController(rtol=rtol, atol=atol)
        save = (
            diffrax.SaveAt(t1=True)
            if saveat is None
            else diffrax.SaveAt(ts=jnp.asarray(saveat, dtype=y0.dtype))
        )
        method = cls()

        def solve(y0: Any, a: Any) -> Any:
            return diffrax.diffeqsolve(
                term,
                method,
                t0=t0,
                t1=t1,
                dt0=dt0,
                y0=y0,
                args=a,
                saveat=save,
                stepsize_controller=ctrl,
                max_steps=max_steps,
                throw=False,
            )

        compiled = jax.jit(solve).lower(y0, a).compile()

        def run() -> RunResult:
            sol = compiled(y0, a)
            ys = np.asarray(jax.block_until_ready(sol.ys), dtype=np.float64)
            ys = ys.reshape(ys.shape[0], -1)
            ok = bool(sol.result == diffrax.RESULTS.successful)
            st = sol.stats
            return RunResult(
                y=ys[-1] if saveat is None else ys,
                retcode=SUCCESS if ok else "Failure",
                naccept=int(st["num_accepted_steps"]),
                nreject=int(st["num_rejected_steps"]),
                message="" if ok else _diffrax_message(sol.result),
            )

        return run

    return Contender(
        name=name or f"diffrax:{solver}",
        prepare=prepare,
        requires=("jax", "diffrax"),
        description=f"diffrax.{solver} under jax.jit",
        mass_matrix=False,
    )


def _diffrax_message(result: Any) -> str:
    """``RESULTS<The maximum number of solver steps was reached. …>`` → the text inside."""
    text = str(result)
    if "<" in text and text.endswith(">"):
        text = text[text.index("<") + 1 : -1]
    return f"diffrax: {text}"


def _check_jax_precision(dtype: torch.dtype) -> None:
    import jax

    if dtype == torch.float64 and not jax.config.read("jax_enable_x64"):
        raise ValueError(
            "the problem is float64 but JAX runs in float32, so a diffrax contender would "
            'not solve the same problem: call jax.config.update("jax_enable_x64", True) '
            "before the study"
        )


def _diffrax_solver_class(solver: str) -> Any:
    import diffrax

    cls = getattr(diffrax, solver, None)
    if not (inspect.isclass(cls) and issubclass(cls, diffrax.AbstractSolver)):
        raise ValueError(
            f"diffrax has no solver {solver!r}; use a diffrax solver class name such as "
            "'Kvaerno5', 'Tsit5' or 'Dopri5'"
        )
    return cls


def _hybrideq_contender(
    solver: AbstractSolver, name: str, engine: str, solve_options: Mapping[str, Any]
) -> Contender:
    def prepare(problem: ODEProblem, rtol: float, atol: float, saveat: np.ndarray | None) -> Runner:
        from hybrideq.solve import solve

        t1 = problem.tspan[1].reshape(1)
        save = (
            t1.clone()
            if saveat is None
            else torch.as_tensor(saveat, dtype=problem.dtype, device=problem.device)
        )

        def run() -> RunResult:
            with torch.no_grad():
                sol = solve(
                    problem,
                    solver,
                    saveat=save,
                    rtol=rtol,
                    atol=atol,
                    engine=engine,
                    **solve_options,
                )
            y = _to_numpy(sol.y).reshape(sol.y.shape[0], -1)
            st = sol.stats
            code = sol.retcode
            return RunResult(
                y=y[-1] if saveat is None else y,
                retcode=code.name if hasattr(code, "name") else str(code),
                nf=int(st.nf),
                njac=int(st.njac),
                nlu=int(st.nlu),
                naccept=int(st.naccept),
                nreject=int(st.nreject),
            )

        return run

    return Contender(
        name=name, prepare=prepare, description=f"hybrideq {solver!r} (engine={engine!r})"
    )


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class WorkPrecisionRow:
    """One contender at one tolerance.

    Attributes:
        solver: the contender's name.
        rtol: relative tolerance (``None`` for a contender that could not run at all).
        atol: absolute tolerance.
        time_s: median of the timed runs, seconds (NaN when nothing was timed).
        times: every timed run, seconds.
        error: RMS of the relative error (see the module docstring); NaN unless the run
            succeeded.
        error_max: the largest componentwise relative error.
        nf: right-hand-side evaluations (``None`` where the contender does not report it).
        njac: Jacobian evaluations.
        nlu: LU factorizations.
        naccept: accepted steps.
        nreject: rejected steps.
        steps: attempted steps, ``naccept + nreject`` where both are known.
        retcode: ``"Success"``, the failure's return code (``"MaxIters"``, ``"Failure"``
            …), ``"Error"`` when the solve raised, or why the contender did not run
            (``"not installed"``, ``"not available in this version"``).
        setup_s: one-off preparation time, seconds (diffrax: trace + compile).
        message: the failure's message, if any.
    """

    solver: str
    rtol: float | None
    atol: float | None
    time_s: float = math.nan
    times: tuple[float, ...] = ()
    error: float = math.nan
    error_max: float = math.nan
    nf: int | None = None
    njac: int | None = None
    nlu: int | None = None
    naccept: int | None = None
    nreject: int | None = None
    steps: int | None = None
    retcode: str = SUCCESS
    setup_s: float | None = None
    message: str = ""

    @property
    def success(self) -> bool:
        """Whether the run integrated the whole span."""
        return self.retcode == SUCCESS

    @property
    def ran(self) -> bool:
        """Whether the contender ran at all (it has tolerances)."""
        return self.rtol is not None


NUMERIC_FIELDS = (
    "error",
    "error_max",
    "time_s",
    "nf",
    "njac",
    "nlu",
    "naccept",
    "nreject",
    "steps",
    "rtol",
    "atol",
    "setup_s",
)
"""Row fields that :meth:`WorkPrecision.plot` can put on an axis."""


def _fmt(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, (bool, int)):
        return str(x)
    if isinstance(x, float):
        if math.isnan(x):
            return "—"
        if x == 0.0:
            return "0"
        ax = abs(x)
        if ax >= 1e4 or ax < 1e-2:
            return f"{x:.2e}"
        return f"{x:.3g}"
    return str(x)


def _json_value(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, (list, tuple)):
        return [_json_value(v) for v in x]
    if isinstance(x, dict):
        return {str(k): _json_value(v) for k, v in x.items()}
    return x


@dataclass
class WorkPrecision:
    """The result of :func:`workprecision`: one row per contender and tolerance.

    Attributes:
        rows: the :class:`WorkPrecisionRow` objects, tolerance by tolerance (loosest
            first), contenders in the order given.
        title: what was studied (e.g. the problem's name).
        error_kind: ``"final"`` or ``"l2"``.
        error_floor: the ``floor`` of the relative error.
        reference: where the reference came from.
        warmup: untimed runs before the timed ones.
        repeats: timed runs (the median is ``time_s``).
        meta: the machine and the versions (date, python, torch, scipy, threads …).
    """

    rows: list[WorkPrecisionRow]
    title: str = ""
    error_kind: str = "final"
    error_floor: float = DEFAULT_ATOL_RATIO
    reference: str = ""
    warmup: int = 1
    repeats: int = 3
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def solvers(self) -> list[str]:
        """The contenders' names, in the order of the study."""
        seen: list[str] = []
        for r in self.rows:
            if r.solver not in seen:
                seen.append(r.solver)
        return seen

    def rows_for(self, solver: str) -> list[WorkPrecisionRow]:
        """The rows of one contender, loosest tolerance first."""
        return [r for r in self.rows if r.solver == solver]

    @property
    def failed(self) -> list[WorkPrecisionRow]:
        """Rows whose run did not succeed (including contenders that did not run)."""
        return [r for r in self.rows if not r.success]

    def best(self, *, at_error: float) -> WorkPrecisionRow | None:
        """The fastest successful run whose error is at most ``at_error``.

        Args:
            at_error: the accuracy asked for (in the units of ``error``).

        Returns:
            The row with the smallest ``time_s`` among the successful rows with
            ``error <= at_error``, or ``None`` if no run was that accurate.
        """
        if isinstance(at_error, bool) or not isinstance(at_error, (int, float)):
            raise TypeError(f"at_error must be a positive number, got {at_error!r}")
        if not at_error > 0:
            raise ValueError(f"at_error must be a positive number, got {at_error!r}")
        good = [
            r
            for r in self.rows
            if r.success and math.isfinite(r.error) and r.error <= at_error and r.times
        ]
        return min(good, key=lambda r: r.time_s) if good else None

    # ----------------------------------------------------------------- output

    def table(self) -> str:
        """The rows as a plain-text table, with a header saying what was measured."""
        columns = [
            ("solver", "solver"),
            ("rtol", "rtol"),
            ("atol", "atol"),
            ("time_ms", "time [ms]"),
            ("error", "error"),
            ("error_max", "max error"),
            ("nf", "NFE"),
            ("njac", "Jac"),
            ("nlu", "LU"),
            ("naccept", "accepted"),
            ("nreject", "rejected"),
            ("retcode", "retcode"),
        ]
        cells: list[list[str]] = []
        notes: list[str] = []
        for r in self.rows:
            if not r.ran:
                note = r.retcode + (f": {r.message}" if r.message else "")
                cells.append([r.solver, note])
                continue
            d = asdict(r)
            d["time_ms"] = 1e3 * r.time_s
            line = [_fmt(d[k]) for k, _ in columns]
            if not r.success and r.message:
                note = f"{r.solver}: {r.message}"
                if note not in notes:
                    notes.append(note)
                line[-1] = f"{r.retcode} [{notes.index(note) + 1}]"
            cells.append(line)
        headers = [h for _, h in columns]
        widths = [len(h) for h in headers]
        for c in cells:
            if len(c) == len(columns):
                widths = [max(w, len(s)) for w, s in zip(widths, c, strict=True)]
            else:
                widths[0] = max(widths[0], len(c[0]))

        def join(c: list[str]) -> str:
            return "  ".join(
                s.ljust(w) if i in (0, len(c) - 1) else s.rjust(w)
                for i, (s, w) in enumerate(zip(c, widths, strict=True))
            ).rstrip()

        kind = (
            "RMS of the relative error at t_end"
            if self.error_kind == "final"
            else "RMS of the relative error over the saveat times"
        )
        lines = []
        if self.title:
            lines.append(self.title)
        lines.append(f"error: {kind}, |y - ref| / (|ref| + {self.error_floor:g})")
        lines.append(f"reference: {self.reference}")
        lines.append(f"time: median of {self.repeats} timed run(s) after {self.warmup} warm-up")
        lines.append(join(headers))
        lines.append("  ".join("-" * w for w in widths))
        for c in cells:
            lines.append(join(c) if len(c) == len(columns) else f"{c[0].ljust(widths[0])}  {c[1]}")
        lines.extend(f"[{i}] {note}" for i, note in enumerate(notes, 1))
        return "\n".join(lines)

    def _header(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "error_kind": self.error_kind,
            "error_floor": self.error_floor,
            "reference": self.reference,
            "warmup": self.warmup,
            "repeats": self.repeats,
            "meta": self.meta,
        }

    def to_json(self, path: str | os.PathLike[str]) -> Path:
        """Write the study (header and every row) as JSON; NaN is written as ``null``.

        Returns:
            The path written.
        """
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        payload = {**self._header(), "rows": [asdict(r) for r in self.rows]}
        out.write_text(json.dumps(_json_value(payload), indent=2) + "\n", encoding="utf-8")
        return out

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> WorkPrecision:
        """Read a study written by :meth:`to_json` (e.g. to plot it again)."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        names = {f.name for f in fields(WorkPrecisionRow)}
        rows = []
        for raw in data.get("rows", []):
            d = {k: v for k, v in raw.items() if k in names}
            for k in ("time_s", "error", "error_max"):
                if d.get(k) is None:
                    d[k] = math.nan
            d["times"] = tuple(d.get("times") or ())
            rows.append(WorkPrecisionRow(**d))
        return cls(
            rows=rows,
            title=data.get("title", ""),
            error_kind=data.get("error_kind", "final"),
            error_floor=float(data.get("error_floor", DEFAULT_ATOL_RATIO)),
            reference=data.get("reference", ""),
            warmup=int(data.get("warmup", 1)),
            repeats=int(data.get("repeats", 3)),
            meta=dict(data.get("meta", {})),
        )

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write one CSV line per row (``times`` as space-separated seconds).

        Returns:
            The path written.
        """
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        names = [f.name for f in fields(WorkPrecisionRow)]
        with out.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=names)
            writer.writeheader()
            for r in self.rows:
                d = asdict(r)
                d["times"] = " ".join(f"{t:.6g}" for t in r.times)
                writer.writerow({k: "" if v is None else v for k, v in d.items()})
        return out

    def plot(
        self, ax: Axes | None = None, x: str = "error", y: str = "time_s", **kwargs: Any
    ) -> Axes:
        """Draw the work-precision diagram (log-log): one line per contender.

        See :func:`hybrideq.plotting.plot_workprecision` for the options.

        Returns:
            The matplotlib ``Axes``.

        Raises:
            ImportError: when matplotlib is not installed (``pip install hybrideq[plot]``).
        """
        from hybrideq.plotting import plot_workprecision

        return plot_workprecision(self, ax=ax, x=x, y=y, **kwargs)

    def __repr__(self) -> str:
        tols = sorted({r.rtol for r in self.rows if r.rtol is not None}, reverse=True)
        return (
            f"WorkPrecision(title={self.title!r}, solvers={self.solvers}, "
            f"rtol={[float(f'{t:.3g}') for t in tols]}, rows={len(self.rows)}, "
            f"failed={sum(1 for r in self.rows if not r.success)}, "
            f"error={self.error_kind!r})"
        )


# --------------------------------------------------------------------------- validation


def _contenders(
    solvers: Any,
    names: Sequence[str] | None,
    engine: str,
    solve_options: Mapping[str, Any],
    jax_vector_field: Callable[..., Any] | None,
    dtype: torch.dtype,
) -> list[Contender]:
    if isinstance(solvers, (str, AbstractSolver, Contender)) or not isinstance(solvers, Sequence):
        raise TypeError(
            "solvers must be a list of contenders, e.g. [hq.Rodas5P(), 'scipy:BDF'], "
            f"got {type(solvers).__name__}"
        )
    if len(solvers) == 0:
        raise ValueError(
            "solvers is empty; pass at least one contender, e.g. [hq.Tsit5(), 'scipy:RK45']"
        )
    out: list[Contender] = []
    for i, s in enumerate(solvers):
        where = f"solvers[{i}]"
        if inspect.isclass(s) and issubclass(s, AbstractSolver):
            raise TypeError(f"{where}: pass a solver instance, e.g. {s.__name__}(), not the class")
        if isinstance(s, AbstractSolver):
            out.append(_hybrideq_contender(s, s.name, engine, solve_options))
        elif isinstance(s, Contender):
            out.append(s)
        elif isinstance(s, str):
            out.append(_peer(s, where, jax_vector_field))
        else:
            raise TypeError(
                f"{where} must be a hybrideq solver object (hq.Tsit5()), a peer name "
                f"('scipy:BDF', 'diffrax:Kvaerno5') or a Contender, got {s!r}"
            )
    if names is not None:
        if isinstance(names, str) or len(names) != len(out):
            raise ValueError(
                f"names must be a list of {len(out)} strings, one per contender in solvers"
            )
        if not all(isinstance(n, str) and n for n in names):
            raise TypeError("names must be non-empty strings")
        out = [
            Contender(n, c.prepare, c.requires, c.description, c.mass_matrix)
            for n, c in zip(names, out, strict=True)
        ]
    if any("jax" in c.requires for c in out) and not _missing("jax"):
        _check_jax_precision(dtype)
    seen: set[str] = set()
    for c in out:
        if c.name in seen:
            raise ValueError(
                f"two contenders are named {c.name!r}; give each a distinct label with "
                "names=[...] (e.g. the same solver with different options)"
            )
        seen.add(c.name)
    return out


def _peer(spec: str, where: str, jax_vector_field: Callable[..., Any] | None) -> Contender:
    prefix, sep, method = spec.partition(":")
    if not sep or prefix not in _PEER_PREFIXES or not method:
        raise ValueError(
            f"{where} = {spec!r} is not a known peer; use 'scipy:METHOD' (METHOD one of "
            f"{', '.join(SCIPY_METHODS)}) or 'diffrax:SOLVER' (e.g. 'diffrax:Kvaerno5'), "
            "and pass hybrideq solvers as objects, e.g. hq.Rodas5P()"
        )
    if prefix == "scipy":
        if method not in SCIPY_METHODS:
            raise ValueError(
                f"{where} = {spec!r}: scipy has no method {method!r}; use one of "
                f"{', '.join(SCIPY_METHODS)}"
            )
        return scipy_contender(method)
    if jax_vector_field is None:
        raise ValueError(
            f"{where} = {spec!r} needs the problem's right-hand side in JAX: pass "
            "jax_vector_field=f with f(t, y, args) (args is problem.p as a JAX array), or "
            f"diffrax_contender({method!r}, f) in solvers"
        )
    if not _missing("jax", "diffrax"):
        _diffrax_solver_class(method)  # an unknown solver is a ValueError now, not a row later
    return diffrax_contender(method, jax_vector_field)


def _missing(*modules: str) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def _tolerance_pairs(tolerances: Any, atol_ratio: float | None) -> list[tuple[float, float]]:
    if isinstance(tolerances, (str, bytes)) or not isinstance(tolerances, (Sequence, np.ndarray)):
        raise TypeError(
            "tolerances must be a list of rtol values, e.g. [1e-4, 1e-6, 1e-8], or of "
            f"(rtol, atol) pairs; got {tolerances!r}"
        )
    if isinstance(tolerances, np.ndarray):
        tolerances = tolerances.tolist()
    if len(tolerances) == 0:
        raise ValueError("tolerances is empty; pass rtol values, e.g. [1e-4, 1e-6, 1e-8]")
    if atol_ratio is not None and (
        isinstance(atol_ratio, bool)
        or not isinstance(atol_ratio, (int, float))
        or not (math.isfinite(atol_ratio) and atol_ratio > 0)
    ):
        raise ValueError(
            f"atol_ratio must be a positive number (atol = atol_ratio·rtol), got {atol_ratio!r}"
        )
    pairs: list[tuple[float, float]] = []
    has_pairs = False
    for i, t in enumerate(tolerances):
        if isinstance(t, (tuple, list)):
            has_pairs = True
            if len(t) != 2:
                raise ValueError(f"tolerances[{i}] = {t!r}: a pair must be (rtol, atol)")
            rtol, atol = t
        else:
            rtol = t
            atol = None
        values = [("rtol", rtol)] + ([("atol", atol)] if atol is not None else [])
        for what, v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)):
                raise TypeError(f"tolerances[{i}]: {what} must be a number, got {v!r}")
            if not (math.isfinite(float(v)) and float(v) > 0):
                raise ValueError(f"tolerances[{i}]: {what} must be positive and finite, got {v!r}")
        r = float(rtol)
        a = (
            float(atol)
            if atol is not None
            else r * (atol_ratio if atol_ratio is not None else DEFAULT_ATOL_RATIO)
        )
        pairs.append((r, a))
    if has_pairs and atol_ratio is not None:
        raise ValueError(
            "atol_ratio applies to plain rtol values; with (rtol, atol) pairs leave it out"
        )
    return pairs


def _count(name: str, x: Any, minimum: int) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {x!r}")
    return int(x)


# --------------------------------------------------------------------------- reference


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def compute_reference(
    problem: ODEProblem,
    saveat: np.ndarray | None = None,
    *,
    rtol: float = REFERENCE_RTOL,
    atol: float = REFERENCE_ATOL,
) -> np.ndarray:
    """A tight reference with scipy Radau: ``y(t_end)`` ``(n,)``, or ``(T, n)`` at ``saveat``.

    Raises:
        ValueError: for a problem with a mass matrix (scipy cannot take one).
        RuntimeError: when Radau does not reach the end of the span.
    """
    from scipy.integrate import solve_ivp

    if problem.mass_matrix is not None:
        raise ValueError(
            "the reference cannot be computed with scipy for a problem with a mass matrix; "
            "pass reference=... (the state at t_end, or a trajectory at saveat)"
        )
    kwargs: dict[str, Any] = {}
    jac = _numpy_jac(problem)
    if jac is not None:
        kwargs["jac"] = jac
    if saveat is not None:
        kwargs["t_eval"] = saveat
    sol = solve_ivp(
        _numpy_rhs(problem),
        _span(problem),
        _to_numpy(problem.y0).reshape(-1),
        method="Radau",
        rtol=rtol,
        atol=atol,
        **kwargs,
    )
    if sol.status != 0:
        raise RuntimeError(
            f"the reference solve (scipy Radau, rtol={rtol:g}, atol={atol:g}) failed: "
            f"{sol.message}; pass reference=... instead"
        )
    return sol.y.T if saveat is not None else sol.y[:, -1]


def _reference(
    reference: Any,
    problem: ODEProblem,
    error: str,
    saveat: np.ndarray | None,
    smallest_atol: float,
) -> tuple[np.ndarray, str]:
    n = problem.n
    t1 = _span(problem)[1]
    if reference is None:
        import scipy.integrate  # noqa: F401  (imported before the clock starts)

        atol = min(REFERENCE_ATOL, 1e-3 * smallest_atol)
        t0 = time.perf_counter()
        ref = compute_reference(problem, saveat, atol=atol)
        took = time.perf_counter() - t0
        return ref, (f"computed: scipy Radau rtol={REFERENCE_RTOL:g} atol={atol:g} ({took:.2g} s)")
    t: Any = None
    if isinstance(reference, (Tensor, np.ndarray, list, tuple)):
        y_raw: Any = reference
        source = "given (array)"
    elif hasattr(reference, "y"):
        y_raw = reference.y
        t = getattr(reference, "t", None)
        source = str(getattr(reference, "source", "") or f"given ({type(reference).__name__})")
    else:
        raise TypeError(
            "reference must be None, an array/tensor of the state at t_end (or at saveat "
            f"for error='l2'), or an object with fields t and y; got {type(reference).__name__}"
        )
    try:
        y = _to_numpy(y_raw)
    except (TypeError, ValueError) as e:
        raise TypeError(f"reference.y cannot be read as numbers: {e}") from e
    tt = None if t is None else _to_numpy(t).reshape(-1)
    if error == "final":
        if y.size == n and (tt is None or tt.size == 1):
            if tt is not None and not _close(float(tt[0]), t1):
                raise ValueError(
                    f"reference is at t={float(tt[0]):g} but the problem ends at t={t1:g}; "
                    "pass the reference at t_end (or remake the problem's tspan)"
                )
            y = y.reshape(n)
        elif y.ndim >= 2 and tt is not None and tt.size == y.shape[0] and y[0].size == n:
            if not _close(float(tt[-1]), t1):
                raise ValueError(
                    f"the reference trajectory ends at t={float(tt[-1]):g} but the problem "
                    f"ends at t={t1:g}"
                )
            y = y[-1].reshape(n)
        else:
            raise ValueError(
                f"reference must hold the {n} state components at t_end for error='final'; "
                f"got shape {y.shape}"
            )
    else:
        assert saveat is not None
        T = len(saveat)
        if y.shape[0] != T or y[0].size != n:
            raise ValueError(
                f"reference must have shape ({T}, {n}) for error='l2' (the state at each "
                f"saveat time); got {y.shape}"
            )
        if tt is not None and (tt.size != T or not np.allclose(tt, saveat, rtol=1e-9, atol=0)):
            raise ValueError("reference.t must be the saveat times for error='l2'")
        y = y.reshape(T, n)
    if not np.all(np.isfinite(y)):
        raise ValueError("reference contains NaN or Inf")
    return y, source


def _errors(y: np.ndarray, ref: np.ndarray, floor: float) -> tuple[float, float]:
    """(RMS, max) of ``(y - ref) / (|ref| + floor)``; NaN when shapes differ or y is not finite."""
    y = np.asarray(y, dtype=np.float64)
    if y.shape != ref.shape or not np.all(np.isfinite(y)):
        return math.nan, math.nan
    rel = (y - ref) / (np.abs(ref) + floor)
    return float(np.sqrt(np.mean(rel * rel))), float(np.max(np.abs(rel)))


def _meta() -> dict[str, Any]:
    info: dict[str, Any] = {
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "hybrideq": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    try:
        import scipy

        info["scipy"] = scipy.__version__
    except ImportError:  # pragma: no cover - scipy is a dependency
        pass
    return info


# --------------------------------------------------------------------------- the study


def workprecision(
    problem: ODEProblem,
    solvers: Sequence[AbstractSolver | str | Contender],
    tolerances: Sequence[float | tuple[float, float]],
    *,
    reference: Any = None,
    error: str = "final",
    repeats: int = 3,
    warmup: int = 1,
    saveat: Any = None,
    atol_ratio: float | None = None,
    engine: str = "torch",
    names: Sequence[str] | None = None,
    progress: bool = False,
    error_floor: float | None = None,
    jax_vector_field: Callable[..., Any] | None = None,
    solve_options: Mapping[str, Any] | None = None,
    title: str = "",
) -> WorkPrecision:
    """Time every contender at every tolerance and measure its error.

    For each tolerance every contender is prepared once (untimed; diffrax compiles here),
    run ``warmup`` times untimed and ``repeats`` times timed. The contenders take turns
    (repeat ``k`` of each before repeat ``k + 1`` of any), so that a change of the
    machine's load hits all of them alike. ``time_s`` is the median; counts and the error
    come from the last run. A run that does not succeed keeps its row, with its return
    code and a NaN error; a solve that raises becomes a row with ``retcode="Error"`` and
    the exception in ``message``; a peer whose library is missing a row
    ``"not installed"``.

    Args:
        problem: one problem (``y0`` 1-D or one unbatched state).
        solvers: the contenders: hybrideq solver objects (``hq.Rodas5P()``), peer names
            ``"scipy:BDF"``, ``"scipy:Radau"``, ``"scipy:LSODA"``, ``"scipy:RK45"``,
            ``"scipy:RK23"``, ``"scipy:DOP853"``, ``"diffrax:SOLVER"`` (needs
            ``jax_vector_field``), or :class:`Contender` objects
            (:func:`scipy_contender`, :func:`diffrax_contender`, your own).
        tolerances: ``rtol`` values (then ``atol = atol_ratio · rtol``) or
            ``(rtol, atol)`` pairs.
        reference: ``None``: computed once with scipy Radau at ``rtol = 1e-12`` and
            ``atol = min(1e-14, 1e-3 · smallest atol)``. Otherwise the state at ``t_end``
            (array or tensor of ``n`` values), a trajectory at ``saveat`` (``(T, n)``, for
            ``error="l2"``), or an object with fields ``y`` and ``t`` (and optionally
            ``source``), such as ``hq.library.reference(name)`` or a
            :class:`~hybrideq.Solution`.
        error: ``"final"``: RMS over the components of the relative error at ``t_end``;
            ``"l2"``: the same RMS over every component at every ``saveat`` time. The
            relative error is ``(y − ref) / (|ref| + error_floor)``.
        repeats: timed runs per contender and tolerance (``>= 1``).
        warmup: untimed runs before them (``>= 0``).
        saveat: save times (needed by, and only used with, ``error="l2"``).
        atol_ratio: ``atol = atol_ratio · rtol`` for plain ``rtol`` values (default
            :data:`DEFAULT_ATOL_RATIO` ``= 1e-3``).
        engine: the hybrideq engine (``"torch"``, ``"julia"``, ``"auto"``).
        names: row labels, one per contender (default: the solver's name, e.g.
            ``"Rodas5P"``, or the peer string).
        progress: show a tqdm progress bar over the runs.
        error_floor: the ``floor`` of the relative error (default: the smallest
            ``atol / rtol`` of the study, the IVP test set's choice).
        jax_vector_field: the problem's right-hand side in JAX, ``f(t, y, args)``, for
            ``"diffrax:..."`` contenders.
        solve_options: extra keyword arguments of :func:`hybrideq.solve` for the hybrideq
            contenders (``maxiters``, ``dtmax`` …).
        title: a label for tables and plots (e.g. the problem's name).

    Returns:
        A :class:`WorkPrecision`.

    Raises:
        TypeError, ValueError: for bad input; the message names the argument and the fix.
    """
    if not isinstance(problem, ODEProblem):
        raise TypeError(f"problem must be an ODEProblem, got {type(problem).__name__}")
    if problem.batched:
        raise ValueError(
            "workprecision studies one problem; this one is a batch of "
            f"{problem.batch_size} (y0 has shape {tuple(problem.y0.shape)}). Pass one "
            "sample, e.g. problem.remake(y0=problem.y0[0], p=...)"
        )
    if not isinstance(error, str) or error not in _ERROR_KINDS:
        raise ValueError(f"error must be 'final' or 'l2', got {error!r}")
    if not isinstance(engine, str) or engine not in _ENGINES:
        raise ValueError(f"engine must be one of {', '.join(map(repr, _ENGINES))}, got {engine!r}")
    repeats = _count("repeats", repeats, 1)
    warmup = _count("warmup", warmup, 0)
    if solve_options is None:
        solve_options = {}
    elif not isinstance(solve_options, Mapping):
        raise TypeError("solve_options must be a dict of hybrideq.solve keyword arguments")
    reserved = {"saveat", "rtol", "atol", "engine"} & set(solve_options)
    if reserved:
        raise ValueError(
            f"solve_options must not set {sorted(reserved)}: workprecision sets them itself"
        )
    pairs = _tolerance_pairs(tolerances, atol_ratio)
    contenders = _contenders(solvers, names, engine, solve_options, jax_vector_field, problem.dtype)
    if problem.mass_matrix is not None:
        for c in contenders:
            if not c.mass_matrix:
                raise ValueError(
                    f"{c.name} cannot take a mass matrix (M y' = f; scipy's solve_ivp and "
                    "diffrax have none); remove it from solvers for this problem"
                )
    save_np: np.ndarray | None = None
    if error == "l2":
        if saveat is None:
            raise ValueError(
                "error='l2' compares trajectories: pass saveat=... (the times to compare at)"
            )
        save_np = _to_numpy(saveat).reshape(-1)
        t0, t1 = _span(problem)
        lo, hi = min(t0, t1), max(t0, t1)
        if save_np.size == 0 or not np.all(np.isfinite(save_np)):
            raise ValueError("saveat must be a non-empty sequence of finite times")
        if np.any(save_np < lo - 1e-12 * max(1.0, abs(lo))) or np.any(
            save_np > hi + 1e-12 * max(1.0, abs(hi))
        ):
            raise ValueError("saveat has times outside tspan; every time must lie in [t0, t1]")
        if np.any(np.diff(save_np) * np.sign(t1 - t0) <= 0):
            raise ValueError("saveat must be strictly monotone in the direction of integration")
    elif saveat is not None:
        raise ValueError(
            "saveat is used only with error='l2'; leave it out for error='final' (the "
            "error at t_end), or pass error='l2'"
        )
    if error_floor is None:
        floor = min(a / r for r, a in pairs)
    elif (
        isinstance(error_floor, bool)
        or not isinstance(error_floor, (int, float))
        or not (math.isfinite(error_floor) and error_floor > 0)
    ):
        raise ValueError(f"error_floor must be a positive number, got {error_floor!r}")
    else:
        floor = float(error_floor)
    if not isinstance(title, str):
        raise TypeError("title must be a string")

    ref, ref_source = _reference(reference, problem, error, save_np, min(a for _, a in pairs))

    from tqdm.auto import tqdm

    rows: list[WorkPrecisionRow] = []
    runnable: list[Contender] = []
    for c in contenders:
        lacking = _missing(*c.requires)
        if lacking:
            rows.append(
                WorkPrecisionRow(
                    solver=c.name,
                    rtol=None,
                    atol=None,
                    retcode=NOT_INSTALLED,
                    message=f"needs {', '.join(lacking)} (pip install {' '.join(lacking)})",
                )
            )
        else:
            runnable.append(c)
    total = len(pairs) * len(runnable) * (warmup + repeats)
    with tqdm(total=total, desc="workprecision", disable=not progress, leave=False) as bar:
        for rtol, atol in pairs:
            rows.extend(
                _study_one_tolerance(
                    problem, runnable, rtol, atol, save_np, ref, floor, warmup, repeats, bar
                )
            )
    return WorkPrecision(
        rows=rows,
        title=title,
        error_kind=error,
        error_floor=floor,
        reference=ref_source,
        warmup=warmup,
        repeats=repeats,
        meta=_meta(),
    )


def _study_one_tolerance(
    problem: ODEProblem,
    contenders: list[Contender],
    rtol: float,
    atol: float,
    saveat: np.ndarray | None,
    ref: np.ndarray,
    floor: float,
    warmup: int,
    repeats: int,
    bar: Any,
) -> list[WorkPrecisionRow]:
    runners: dict[str, Runner] = {}
    setup: dict[str, float] = {}
    broken: dict[str, str] = {}
    for c in contenders:
        t0 = time.perf_counter()
        try:
            runners[c.name] = c.prepare(problem, rtol, atol, saveat)
        except Exception as e:  # a contender that cannot run is a row, not a crash
            broken[c.name] = f"{type(e).__name__}: {e}"
            bar.update(warmup + repeats)
        setup[c.name] = time.perf_counter() - t0
    times: dict[str, list[float]] = {name: [] for name in runners}
    last: dict[str, RunResult] = {}
    for rep in range(warmup + repeats):
        for name, run in runners.items():
            if name in broken:
                continue
            t0 = time.perf_counter()
            try:
                result = run()
            except Exception as e:
                broken[name] = f"{type(e).__name__}: {e}"
                bar.update(warmup + repeats - rep)
                continue
            took = time.perf_counter() - t0
            if rep >= warmup:
                times[name].append(took)
            last[name] = result
            bar.update(1)
    rows = []
    for c in contenders:
        name = c.name
        if name in broken:
            rows.append(
                WorkPrecisionRow(
                    solver=name,
                    rtol=rtol,
                    atol=atol,
                    times=tuple(times.get(name, ())),
                    retcode="Error",
                    setup_s=setup[name],
                    message=broken[name],
                )
            )
            continue
        res = last[name]
        ok = res.retcode == SUCCESS
        err, err_max = _errors(res.y, ref, floor) if ok else (math.nan, math.nan)
        steps = (
            res.naccept + res.nreject
            if res.naccept is not None and res.nreject is not None
            else None
        )
        rows.append(
            WorkPrecisionRow(
                solver=name,
                rtol=rtol,
                atol=atol,
                time_s=statistics.median(times[name]),
                times=tuple(times[name]),
                error=err,
                error_max=err_max,
                nf=res.nf,
                njac=res.njac,
                nlu=res.nlu,
                naccept=res.naccept,
                nreject=res.nreject,
                steps=steps,
                retcode=res.retcode,
                setup_s=setup[name],
                message=res.message,
            )
        )
    return rows
