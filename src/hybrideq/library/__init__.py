"""Standard test problems, each returning an :class:`~hybrideq.ODEProblem`.

Non-stiff: :func:`lorenz`, :func:`linear_system`, :func:`exponential_decay`. Stiff, with
analytic Jacobians (the IVP test set and Hairer & Wanner II): :func:`robertson`,
:func:`hires`, :func:`pollution`, :func:`orego`, :func:`van_der_pol`,
:func:`brusselator_1d`; with exact solutions: :func:`prothero_robinson`,
:func:`stiff_linear`. Published reference values: :func:`reference`.
"""

from hybrideq.library._nonstiff import exponential_decay, linear_system, lorenz
from hybrideq.library._references import Reference, reference
from hybrideq.library._stiff import (
    POLLUTION_SPECIES,
    brusselator_1d,
    brusselator_1d_jac_sparse,
    hires,
    orego,
    pollution,
    prothero_robinson,
    prothero_robinson_exact,
    robertson,
    stiff_linear,
    stiff_linear_exact,
    van_der_pol,
)

__all__ = [
    "POLLUTION_SPECIES",
    "Reference",
    "brusselator_1d",
    "brusselator_1d_jac_sparse",
    "exponential_decay",
    "hires",
    "linear_system",
    "lorenz",
    "orego",
    "pollution",
    "prothero_robinson",
    "prothero_robinson_exact",
    "reference",
    "robertson",
    "stiff_linear",
    "stiff_linear_exact",
    "van_der_pol",
]
