"""Engines: HOW a problem is integrated (torch natively; Julia through juliacall)."""

from __future__ import annotations

import importlib.util

from hybrideq.problems import AbstractProblem
from hybrideq.solvers import AbstractSolver

__all__ = ["julia_available", "resolve_engine"]

ENGINES = ("auto", "torch", "julia")


def julia_available() -> bool:
    """Whether juliacall and a Julia executable are installed (never starts or downloads Julia)."""
    from hybrideq.engines.julia import find_julia

    return importlib.util.find_spec("juliacall") is not None and find_julia() is not None


def resolve_engine(problem: AbstractProblem, solver: AbstractSolver, engine: str) -> str:
    """Pick the engine for ``problem`` and ``solver``.

    ``"auto"`` picks the torch engine until the Julia engine exists (a later issue adds
    it; it will be chosen only where Julia is installed and the problem suits it).
    ``"julia"`` raises an error that says how to get it.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if engine == "julia":
        raise RuntimeError(
            "the Julia engine is not available in this version of hybrideq: it needs "
            "`pip install hybrideq[julia]` and `hybrideq julia install`, which arrive with "
            "the Julia engine; use engine='torch' (the default) meanwhile"
        )
    return "torch"
