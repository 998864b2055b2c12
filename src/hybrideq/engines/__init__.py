"""Engines: HOW a problem is integrated (torch natively; Julia through juliacall).

Importing this package imports neither torch-engine internals nor juliacall.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hybrideq.problems import AbstractProblem
    from hybrideq.sensitivity import AbstractSensitivityAlgorithm
    from hybrideq.solvers import AbstractSolver

__all__ = ["ENGINES", "engine_choice", "julia_available", "resolve_engine"]

ENGINES = ("auto", "torch", "julia")

_TORCH_ONLY_OPTIONS = {
    # option: (value that suits the Julia engine, why another value does not)
    "heuristics": (False, "solver heuristics are recorded by the torch engine"),
    "progress": (False, "progress bars are drawn by the torch engine"),
    "stepping": ("per_sample", "joint stepping is a torch-engine mode"),
    "initializealg": ("auto", "DAE initialisation options are the torch engine's"),
    "brownian": (None, "a given Brownian path is sampled by the torch engine"),
    "internal": (None, "regularizers read the torch engine's step heuristics"),
}


def julia_available() -> bool:
    """Whether juliacall and a Julia executable are installed (never starts or downloads Julia)."""
    from hybrideq.engines.julia import find_julia

    return importlib.util.find_spec("juliacall") is not None and find_julia() is not None


def _option_reason(options: Mapping[str, Any]) -> str | None:
    for name, (ok, why) in _TORCH_ONLY_OPTIONS.items():
        if name in options and options[name] is not None and options[name] != ok:
            return f"{name}={options[name]!r}: {why}"
    saveat = options.get("saveat")
    if saveat is not None and getattr(saveat, "ndim", 1) != 1:
        return "per-sample save times are the torch engine's"
    return None


def engine_choice(
    problem: AbstractProblem,
    solver: AbstractSolver,
    engine: str = "auto",
    *,
    sensealg: AbstractSensitivityAlgorithm | None = None,
    options: Mapping[str, Any] | None = None,
) -> tuple[str, str]:
    """Which engine runs this solve, and why (``hybrideq doctor`` prints the reason).

    ``"auto"`` picks Julia only when a Julia environment is installed (checked without
    starting or downloading anything) *and* the problem suits it: a sympy-defined
    right-hand side (generated Julia code, no Python in the loop), a solver with a Julia
    counterpart, float64 on the CPU, no gradients and no torch-engine-only options.
    Otherwise the torch engine, silently. ``QuadratureAdjoint``/``GaussAdjoint`` exist on
    the Julia engine only.

    Returns:
        ``(engine, reason)``.

    Raises:
        ValueError: an unknown ``engine``, or an explicit choice that cannot run it.
        JuliaNotInstalledError: ``engine="julia"`` without an installed Julia.
    """
    from hybrideq.sensitivity import GaussAdjoint, QuadratureAdjoint

    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    options = options or {}
    julia_only = isinstance(sensealg, (QuadratureAdjoint, GaussAdjoint))
    if engine == "torch":
        if julia_only:
            raise ValueError(
                f"{type(sensealg).__name__} runs on the Julia engine (engine='julia'); on the "
                "torch engine use InterpolatingAdjoint()"
            )
        return "torch", "asked for"
    rhs = getattr(problem, "f", None)
    if engine == "auto" and not julia_only and getattr(rhs, "julia_model", None) is None:
        # the common case (neural ODEs, torch functions): decided without looking for Julia
        # on the file system, which would cost every solve about 0.1 ms
        return "torch", "the right-hand side is a torch function (auto prefers the torch engine)"
    from hybrideq.engines.julia import require_julia
    from hybrideq.engines.julia._engine import julia_unsuitable

    if engine == "julia" or julia_only:
        require_julia("engine='julia'" if engine == "julia" else f"{type(sensealg).__name__}")
        reason = julia_unsuitable(problem, solver, sensealg)  # type: ignore[arg-type]
        reason = reason or _option_reason(options)
        if reason is not None:
            raise ValueError(f"the Julia engine cannot run this solve: {reason}")
        return "julia", "asked for" if engine == "julia" else f"{type(sensealg).__name__}"
    if not julia_available():
        return "torch", "Julia is not installed (hybrideq julia install)"
    reason = julia_unsuitable(problem, solver, sensealg, for_auto=True)  # type: ignore[arg-type]
    reason = reason or _option_reason(options)
    if reason is not None:
        return "torch", reason
    return "julia", "Julia is installed and the problem is a sympy model with a Julia solver"


def resolve_engine(
    problem: AbstractProblem,
    solver: AbstractSolver,
    engine: str,
    *,
    sensealg: AbstractSensitivityAlgorithm | None = None,
    options: Mapping[str, Any] | None = None,
) -> str:
    """The engine for this solve: ``"torch"`` or ``"julia"`` (see :func:`engine_choice`)."""
    return engine_choice(problem, solver, engine, sensealg=sensealg, options=options)[0]
