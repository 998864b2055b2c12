"""Symbolic models and equation discovery: sympy in, sympy out.

- :class:`SymbolicODE` / :class:`SymbolicSDE`: sympy equations compiled once into batched,
  differentiable torch functions with an analytic Jacobian, sparsity pattern, Julia source
  and LaTeX.
- :func:`discover`: equations from data, by :class:`SINDy` (pysindy) or :class:`PySR`
  (SymbolicRegression.jl), with derivative estimates from noisy samples.
- :func:`fit_parameters`: refit a symbolic model's parameters to trajectories;
  :func:`select_model`: refit several candidates and choose by information criterion.
"""

from hybrideq.symbolic._derivatives import (
    AbstractDerivative,
    FiniteDifference,
    SmoothedFiniteDifference,
    SplineDerivative,
)
from hybrideq.symbolic._discover import (
    AbstractDiscoveryMethod,
    DiscoveredModel,
    PySR,
    SINDy,
    discover,
    import_pysr,
)
from hybrideq.symbolic._fit import FitResult, ModelSelection, fit_parameters, select_model
from hybrideq.symbolic._libraries import (
    AbstractLibrary,
    CustomLibrary,
    FourierLibrary,
    LibrarySum,
    PolynomialLibrary,
)
from hybrideq.symbolic._model import AbstractSymbolicModel, SymbolicODE, SymbolicSDE

__all__ = [
    "AbstractDerivative",
    "AbstractDiscoveryMethod",
    "AbstractLibrary",
    "AbstractSymbolicModel",
    "CustomLibrary",
    "DiscoveredModel",
    "FiniteDifference",
    "FitResult",
    "FourierLibrary",
    "LibrarySum",
    "ModelSelection",
    "PolynomialLibrary",
    "PySR",
    "SINDy",
    "SmoothedFiniteDifference",
    "SplineDerivative",
    "SymbolicODE",
    "SymbolicSDE",
    "discover",
    "fit_parameters",
    "import_pysr",
    "select_model",
]
