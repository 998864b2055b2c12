"""Butcher tableaus of explicit Runge–Kutta methods (numbers only; see ``_explicit_rk``)."""

from __future__ import annotations

from hybrideq.tableaus._explicit_rk import ExplicitRKTableau
from hybrideq.tableaus.bs3 import BS3
from hybrideq.tableaus.classic import EULER, RK4
from hybrideq.tableaus.dp5 import DP5
from hybrideq.tableaus.tsit5 import TSIT5
from hybrideq.tableaus.vern7 import VERN7

__all__ = ["BS3", "DP5", "EULER", "RK4", "TSIT5", "VERN7", "ExplicitRKTableau"]
