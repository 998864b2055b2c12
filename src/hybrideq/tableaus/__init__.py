"""Coefficients of the solvers (numbers only): explicit Runge–Kutta (``_explicit_rk``),
Rosenbrock, DIRK, and the stochastic Runge–Kutta SRI/SRA schemes (``_sde``)."""

from __future__ import annotations

from hybrideq.tableaus._dirk import DIRKTableau
from hybrideq.tableaus._explicit_rk import ExplicitRKTableau
from hybrideq.tableaus._rosenbrock import RosenbrockTableau
from hybrideq.tableaus._sde import SRATableau, SRITableau
from hybrideq.tableaus.bs3 import BS3
from hybrideq.tableaus.classic import EULER, RK4
from hybrideq.tableaus.dirk import KENCARP4, KVAERNO5, TRBDF2
from hybrideq.tableaus.dp5 import DP5
from hybrideq.tableaus.rosenbrock import RODAS4, RODAS5P, ROSENBROCK23
from hybrideq.tableaus.sde import SOSRA, SOSRA2, SOSRI, SOSRI2, SRA1, SRIW1
from hybrideq.tableaus.tsit5 import TSIT5
from hybrideq.tableaus.vern7 import VERN7

__all__ = [
    "BS3",
    "DP5",
    "EULER",
    "KENCARP4",
    "KVAERNO5",
    "RK4",
    "RODAS4",
    "RODAS5P",
    "ROSENBROCK23",
    "SOSRA",
    "SOSRA2",
    "SOSRI",
    "SOSRI2",
    "SRA1",
    "SRIW1",
    "TRBDF2",
    "TSIT5",
    "VERN7",
    "DIRKTableau",
    "ExplicitRKTableau",
    "RosenbrockTableau",
    "SRATableau",
    "SRITableau",
]
