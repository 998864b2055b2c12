"""The solver table: every solver spec of hybrideq → its Julia constructor (one table).

Each entry turns a spec (with its options) into a Julia constructor expression that
``HybridEqEngine.algorithm`` evaluates. Names, keywords and the sub-packages that export
them were read from the sources (docs/julia.md lists files and commits):

- OrdinaryDiffEq.jl v7 monorepo: ``Tsit5``/``AutoTsit5`` (``lib/OrdinaryDiffEqTsit5``),
  ``Vern7``/``AutoVern7`` (``lib/OrdinaryDiffEqVerner``), ``DP5``/``BS3``/``Euler``/``RK4``
  (``lib/OrdinaryDiffEqLowOrderRK``), ``Rosenbrock23``/``Rodas4``/``Rodas5P``
  (``lib/OrdinaryDiffEqRosenbrock``, keyword ``autodiff``), ``TRBDF2``/``Kvaerno5``/
  ``KenCarp4`` (``lib/OrdinaryDiffEqSDIRK``, keywords ``autodiff``, ``nlsolve``),
  ``QNDF``/``QBDF`` (``lib/OrdinaryDiffEqBDF``, keywords ``max_order = Val{k}()``,
  ``kappa``, ``autodiff``, ``nlsolve``), ``NLNewton(; κ, max_iter)``
  (``lib/OrdinaryDiffEqNonlinearSolve``), ``AutoSwitch`` keywords ``maxstiffstep,
  maxnonstiffstep, nonstifftol, stifftol, dtfac, stiffalgfirst``
  (``lib/OrdinaryDiffEqCore/src/composite_algs.jl``).
- ``autodiff`` takes an ADTypes object; a Bool is an error since OrdinaryDiffEq v7
  (``lib/OrdinaryDiffEqCore/src/misc_utils.jl``). A Python right-hand side cannot carry
  ForwardDiff's dual numbers, so it always gets ``AutoFiniteDiff()``.
- StochasticDiffEq v7 (``lib/StochasticDiffEq*``): ``EM``, ``EulerHeun``, ``RKMil(;
  interpretation = SciMLBase.AlgorithmInterpretation.Ito | Stratonovich)``, ``SRIW1``,
  ``SOSRI``, ``SOSRI2``, ``SRA1``, ``SOSRA``, ``ImplicitEM(; theta, autodiff, nlsolve)``.
  There is no reversible Heun method in the Julia stack.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
    AbstractImplicitSolver,
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
    AbstractSRI,
    EulerHeun,
    ImplicitEM,
    Milstein,
    ReversibleHeun,
)

__all__ = [
    "JULIA_SOLVERS",
    "JuliaSolverEntry",
    "JuliaUnsupportedError",
    "julia_algorithm",
    "julia_gpu_algorithm",
    "julia_gpu_ensemble",
    "julia_support",
]


class JuliaUnsupportedError(ValueError):
    """A solver (or one of its options) has no counterpart in the Julia engine."""


@dataclass(frozen=True)
class JuliaSolverEntry:
    """One row of the solver table.

    Attributes:
        julia: the Julia constructor's name (``None``: no counterpart).
        package: the Julia package that exports it.
        build: ``(solver, autodiff) -> expression``; ``autodiff`` is the ADTypes
            expression for implicit methods.
        note: why there is no counterpart, or what differs.
        gpu: DiffEqGPU's kernel method for GPU ensembles of sympy models (``GPUTsit5`` …;
            DiffEqGPU ``src/DiffEqGPU.jl`` exports), or ``None``.
        gpu_array: whether the method runs in DiffEqGPU's ``EnsembleGPUArray`` (the
            explicit Runge-Kutta, Rosenbrock and SDIRK families its docstring and tests
            cover, ``src/algorithms.jl``, ``test/ensemblegpuarray.jl``).
    """

    julia: str | None
    package: str
    build: Callable[[Any, str], str] | None = None
    note: str = ""
    gpu: str | None = None
    gpu_array: bool = False


def _plain(name: str) -> Callable[[Any, str], str]:
    return lambda solver, ad: f"{name}()"


def _check_linsolve(solver: AbstractImplicitSolver) -> None:
    if solver.linsolve not in ("auto", "dense"):
        raise JuliaUnsupportedError(
            f"{solver.name}(linsolve={solver.linsolve!r}) has no Julia-engine mapping yet: "
            "use linsolve='auto' or 'dense' with engine='julia', or engine='torch'"
        )


def _rosenbrock(name: str) -> Callable[[Any, str], str]:
    def build(solver: Any, ad: str) -> str:
        _check_linsolve(solver)
        return f"{name}(autodiff = {ad})"

    return build


def _dirk(name: str) -> Callable[[Any, str], str]:
    def build(solver: AbstractDIRK, ad: str) -> str:
        _check_linsolve(solver)
        newton = f"NLNewton(κ = {float(solver.kappa)!r}, max_iter = {int(solver.max_newton)})"
        return f"{name}(autodiff = {ad}, nlsolve = {newton})"

    return build


def _bdf(name: str) -> Callable[[Any, str], str]:
    def build(solver: AbstractBDF, ad: str) -> str:
        _check_linsolve(solver)
        kappa = solver.kappa if solver.kappa is not None else solver.default_kappa
        kappa_jl = "(" + ", ".join(repr(float(k)) for k in kappa) + ")"
        return (
            f"QNDF(max_order = Val{{{int(solver.max_order)}}}(), kappa = {kappa_jl}, "
            f"autodiff = {ad}, nlsolve = NLNewton(max_iter = {int(solver.max_newton)}))"
        )

    return build


def _auto(name: str) -> Callable[[Any, str], str]:
    def build(solver: AbstractAutoSwitch, ad: str) -> str:
        stiff = julia_algorithm(solver.stiff_alg, autodiff=ad)
        return (
            f"{name}({stiff}; maxstiffstep = {int(solver.maxstiffstep)}, "
            f"maxnonstiffstep = {int(solver.maxnonstiffstep)}, "
            f"nonstifftol = {float(solver.nonstifftol)!r}, stifftol = {float(solver.stifftol)!r}, "
            f"dtfac = {float(solver.dtfac)!r}, stiffalgfirst = {str(bool(solver.stiffalgfirst)).lower()})"
        )

    return build


def _sri(name: str) -> Callable[[Any, str], str]:
    def build(solver: AbstractSRI, ad: str) -> str:
        if abs(float(solver.delta) - 1.0 / 6.0) > 1e-15:
            raise JuliaUnsupportedError(
                f"{solver.name}(delta={solver.delta}) : the Julia engine uses "
                "StochasticDiffEq's fixed error weight 1/6; use the default delta or "
                "engine='torch'"
            )
        return f"{name}()"

    return build


def _milstein(solver: Milstein, ad: str) -> str:
    which = "Stratonovich" if solver.interpretation == "stratonovich" else "Ito"
    return f"RKMil(interpretation = SciMLBase.AlgorithmInterpretation.{which})"


def _implicit_em(solver: ImplicitEM, ad: str) -> str:
    return (
        f"ImplicitEM(theta = {float(solver.theta)!r}, autodiff = {ad}, "
        f"nlsolve = NLNewton(max_iter = {int(solver.max_newton)}))"
    )


_ODE = "OrdinaryDiffEq"
JULIA_SOLVERS: dict[type[AbstractSolver], JuliaSolverEntry] = {
    Tsit5: JuliaSolverEntry(
        "Tsit5", f"{_ODE}Tsit5", _plain("Tsit5"), gpu="GPUTsit5", gpu_array=True
    ),
    DP5: JuliaSolverEntry("DP5", f"{_ODE}LowOrderRK", _plain("DP5"), gpu_array=True),
    Vern7: JuliaSolverEntry(
        "Vern7", f"{_ODE}Verner", _plain("Vern7"), gpu="GPUVern7", gpu_array=True
    ),
    BS3: JuliaSolverEntry("BS3", f"{_ODE}LowOrderRK", _plain("BS3"), gpu_array=True),
    Euler: JuliaSolverEntry("Euler", f"{_ODE}LowOrderRK", _plain("Euler"), gpu_array=True),
    RK4: JuliaSolverEntry("RK4", f"{_ODE}LowOrderRK", _plain("RK4"), gpu_array=True),
    Rosenbrock23: JuliaSolverEntry(
        "Rosenbrock23",
        f"{_ODE}Rosenbrock",
        _rosenbrock("Rosenbrock23"),
        gpu="GPURosenbrock23",
        gpu_array=True,
    ),
    Rodas4: JuliaSolverEntry("Rodas4", f"{_ODE}Rosenbrock", _rosenbrock("Rodas4"), gpu_array=True),
    Rodas5P: JuliaSolverEntry(
        "Rodas5P", f"{_ODE}Rosenbrock", _rosenbrock("Rodas5P"), gpu="GPURodas5P", gpu_array=True
    ),
    TRBDF2: JuliaSolverEntry("TRBDF2", f"{_ODE}SDIRK", _dirk("TRBDF2"), gpu_array=True),
    Kvaerno5: JuliaSolverEntry(
        "Kvaerno5", f"{_ODE}SDIRK", _dirk("Kvaerno5"), gpu="GPUKvaerno5", gpu_array=True
    ),
    KenCarp4: JuliaSolverEntry("KenCarp4", f"{_ODE}SDIRK", _dirk("KenCarp4"), gpu_array=True),
    QNDF: JuliaSolverEntry("QNDF", f"{_ODE}BDF", _bdf("QNDF")),
    QBDF: JuliaSolverEntry(
        "QNDF", f"{_ODE}BDF", _bdf("QBDF"), note="QBDF is QNDF with kappa = 0 (as in Julia)"
    ),
    AutoTsit5: JuliaSolverEntry("AutoTsit5", f"{_ODE}Tsit5", _auto("AutoTsit5")),
    AutoVern7: JuliaSolverEntry("AutoVern7", f"{_ODE}Verner", _auto("AutoVern7")),
    EM: JuliaSolverEntry("EM", "StochasticDiffEq", _plain("EM")),
    EulerHeun: JuliaSolverEntry("EulerHeun", "StochasticDiffEq", _plain("EulerHeun")),
    Milstein: JuliaSolverEntry("RKMil", "StochasticDiffEq", _milstein),
    SRIW1: JuliaSolverEntry("SRIW1", "StochasticDiffEq", _sri("SRIW1")),
    SOSRI: JuliaSolverEntry("SOSRI", "StochasticDiffEq", _sri("SOSRI")),
    SOSRI2: JuliaSolverEntry("SOSRI2", "StochasticDiffEq", _sri("SOSRI2")),
    SRA1: JuliaSolverEntry("SRA1", "StochasticDiffEq", _plain("SRA1")),
    SOSRA: JuliaSolverEntry("SOSRA", "StochasticDiffEq", _plain("SOSRA")),
    ImplicitEM: JuliaSolverEntry("ImplicitEM", "StochasticDiffEq", _implicit_em),
    ReversibleHeun: JuliaSolverEntry(
        None,
        "StochasticDiffEq",
        None,
        note="no reversible Heun method in StochasticDiffEq.jl (searched its v7 sources); "
        "the torch engine runs it",
    ),
}
"""Every solver spec → its Julia entry (a test checks that none is missing)."""


def julia_support(solver: AbstractSolver) -> str | None:
    """``None`` when the Julia engine can run ``solver``, else the reason it cannot."""
    entry = JULIA_SOLVERS.get(type(solver))
    if entry is None:
        return f"{solver.name} is not in the Julia engine's solver table"
    if entry.build is None:
        return f"{solver.name}: {entry.note}"
    try:
        julia_algorithm(solver)
    except JuliaUnsupportedError as exc:
        return str(exc)
    return None


def julia_algorithm(solver: AbstractSolver, *, autodiff: str | None = None) -> str:
    """The Julia constructor expression for ``solver``.

    Args:
        solver: a hybrideq solver spec.
        autodiff: the ADTypes expression for implicit methods; default
            ``AutoForwardDiff()`` when the spec has ``autodiff=True``, else
            ``AutoFiniteDiff()``. The engine passes ``AutoFiniteDiff()`` for Python
            right-hand sides (dual numbers cannot cross into Python).

    Raises:
        JuliaUnsupportedError: no counterpart (the message says what to use instead).
    """
    entry = JULIA_SOLVERS.get(type(solver))
    if entry is None or entry.build is None:
        reason = entry.note if entry is not None else "not in the Julia engine's solver table"
        raise JuliaUnsupportedError(f"{solver.name} cannot run on the Julia engine: {reason}")
    if autodiff is None:
        autodiff = "AutoForwardDiff()" if getattr(solver, "autodiff", True) else "AutoFiniteDiff()"
    return entry.build(solver, autodiff)


def julia_gpu_ensemble(solver: AbstractSolver) -> tuple[str, str] | None:
    """How a GPU ensemble of a sympy ODE runs with ``solver``: ``("kernel", name)`` for
    DiffEqGPU's ``EnsembleGPUKernel`` method (preferred where it exists, as DiffEqGPU's
    ``docs/src/manual/choosing_ensembler.md`` advises), ``("array", expression)`` for an
    OrdinaryDiffEq method in ``EnsembleGPUArray``, or ``None``."""
    kernel = julia_gpu_algorithm(solver)
    if kernel is not None:
        return "kernel", kernel
    entry = JULIA_SOLVERS.get(type(solver))
    if entry is None or not entry.gpu_array or julia_support(solver) is not None:
        return None
    return "array", julia_algorithm(solver)


def julia_gpu_algorithm(solver: AbstractSolver) -> str | None:
    """The name ``HybridEqEngine.GPU`` takes for ``solver`` (``"Tsit5"`` for ``GPUTsit5``), or
    ``None`` when DiffEqGPU has no kernel method for it."""
    entry = JULIA_SOLVERS.get(type(solver))
    if entry is None or entry.gpu is None:
        return None
    return entry.gpu.removeprefix("GPU")
