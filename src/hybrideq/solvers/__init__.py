"""Solver specs (WHAT to run). Engines decide HOW."""

from hybrideq.solvers._base import (
    AbstractBDF,
    AbstractDIRK,
    AbstractExplicitRK,
    AbstractImplicitSolver,
    AbstractODESolver,
    AbstractRosenbrock,
    AbstractSolver,
)
from hybrideq.solvers.bdf import QBDF, QNDF
from hybrideq.solvers.composite import AbstractAutoSwitch, AutoTsit5, AutoVern7
from hybrideq.solvers.dirk import TRBDF2, KenCarp4, Kvaerno5
from hybrideq.solvers.explicit_rk import BS3, DP5, RK4, Euler, Tsit5, Vern7
from hybrideq.solvers.rosenbrock import Rodas4, Rodas5P, Rosenbrock23

__all__ = [
    "BS3",
    "DP5",
    "QBDF",
    "QNDF",
    "RK4",
    "TRBDF2",
    "AbstractAutoSwitch",
    "AbstractBDF",
    "AbstractDIRK",
    "AbstractExplicitRK",
    "AbstractImplicitSolver",
    "AbstractODESolver",
    "AbstractRosenbrock",
    "AbstractSolver",
    "AutoTsit5",
    "AutoVern7",
    "Euler",
    "KenCarp4",
    "Kvaerno5",
    "Rodas4",
    "Rodas5P",
    "Rosenbrock23",
    "Tsit5",
    "Vern7",
]
