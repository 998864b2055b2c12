"""hybrideq: differential equations with neural parts, on PyTorch and Julia engines.

Importing hybrideq never starts Julia and never downloads anything (unless
``HYBRIDEQ_JULIA_FIRST=1`` asks it to start an installed Julia before torch).

Example:
    >>> import torch, hybrideq as hq
    >>> prob = hq.ODEProblem(lambda t, y, p: -y, torch.ones(2), (0.0, 1.0))
    >>> sol = hq.solve(prob, hq.Tsit5())
    >>> sol.retcode
    <ReturnCode.Success: 1>
"""

import os as _os

if _os.environ.get("HYBRIDEQ_JULIA_FIRST") == "1":  # start Julia before torch (opt-in)
    from hybrideq.engines.julia._runtime import import_before_torch as _import_before_torch

    _import_before_torch()

from hybrideq import ensemble, library, nn, plotting, regularizers, symbolic
from hybrideq._version import __version__
from hybrideq._workprecision import (
    Contender,
    RunResult,
    WorkPrecision,
    WorkPrecisionRow,
    diffrax_contender,
    scipy_contender,
    workprecision,
)
from hybrideq.engines.torch._brownian import BrownianInterval, BrownianPath, BrownianTree
from hybrideq.problems import AbstractProblem, ODEProblem, SDEProblem
from hybrideq.sensitivity import (
    AbstractSensitivityAlgorithm,
    BacksolveAdjoint,
    DirectBackprop,
    GaussAdjoint,
    InterpolatingAdjoint,
    QuadratureAdjoint,
    ReversibleAdjoint,
)
from hybrideq.solution import AdjointStats, Heuristics, ReturnCode, Solution, Stats
from hybrideq.solve import solve
from hybrideq.solvers import (
    BS3,
    DP5,
    QBDF,
    QNDF,
    RK4,
    TRBDF2,
    AbstractAutoSwitch,
    AbstractBDF,
    AbstractDIRK,
    AbstractExplicitRK,
    AbstractImplicitSolver,
    AbstractODESolver,
    AbstractRosenbrock,
    AbstractSolver,
    AutoTsit5,
    AutoVern7,
    Euler,
    KenCarp4,
    Kvaerno5,
    Rodas4,
    Rodas5P,
    Rosenbrock23,
    Tsit5,
    Vern7,
)
from hybrideq.solvers.sde import (
    EM,
    SOSRA,
    SOSRI,
    SOSRI2,
    SRA1,
    SRIW1,
    AbstractSDESolver,
    AbstractSRA,
    AbstractSRI,
    EulerHeun,
    ImplicitEM,
    Milstein,
    ReversibleHeun,
)

__all__ = [
    "BS3",
    "DP5",
    "EM",
    "QBDF",
    "QNDF",
    "RK4",
    "SOSRA",
    "SOSRI",
    "SOSRI2",
    "SRA1",
    "SRIW1",
    "TRBDF2",
    "AbstractAutoSwitch",
    "AbstractBDF",
    "AbstractDIRK",
    "AbstractExplicitRK",
    "AbstractImplicitSolver",
    "AbstractODESolver",
    "AbstractProblem",
    "AbstractRosenbrock",
    "AbstractSDESolver",
    "AbstractSRA",
    "AbstractSRI",
    "AbstractSensitivityAlgorithm",
    "AbstractSolver",
    "AdjointStats",
    "AutoTsit5",
    "AutoVern7",
    "BacksolveAdjoint",
    "BrownianInterval",
    "BrownianPath",
    "BrownianTree",
    "Contender",
    "DirectBackprop",
    "Euler",
    "EulerHeun",
    "GaussAdjoint",
    "Heuristics",
    "ImplicitEM",
    "InterpolatingAdjoint",
    "KenCarp4",
    "Kvaerno5",
    "Milstein",
    "ODEProblem",
    "QuadratureAdjoint",
    "ReturnCode",
    "ReversibleAdjoint",
    "ReversibleHeun",
    "Rodas4",
    "Rodas5P",
    "Rosenbrock23",
    "RunResult",
    "SDEProblem",
    "Solution",
    "Stats",
    "Tsit5",
    "Vern7",
    "WorkPrecision",
    "WorkPrecisionRow",
    "__version__",
    "diffrax_contender",
    "ensemble",
    "library",
    "nn",
    "plotting",
    "regularizers",
    "scipy_contender",
    "solve",
    "symbolic",
    "workprecision",
]
