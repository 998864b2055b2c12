"""Solver specs (WHAT to run). Engines decide HOW."""

from hybrideq.solvers._base import AbstractExplicitRK, AbstractODESolver, AbstractSolver
from hybrideq.solvers.explicit_rk import BS3, DP5, RK4, Euler, Tsit5, Vern7

__all__ = [
    "BS3",
    "DP5",
    "RK4",
    "AbstractExplicitRK",
    "AbstractODESolver",
    "AbstractSolver",
    "Euler",
    "Tsit5",
    "Vern7",
]
