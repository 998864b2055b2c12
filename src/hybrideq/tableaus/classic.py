"""Fixed-step classics: the explicit Euler method and the classic 4th-order Runge–Kutta method.

L. Euler, *Institutionum calculi integralis* (1768); W. Kutta, "Beitrag zur näherungsweisen
Integration totaler Differentialgleichungen", Z. Math. Phys. 46 (1901) 435–453 (the classic
RK4 tableau ``c = (0, 1/2, 1/2, 1)``, ``b = (1/6, 1/3, 1/3, 1/6)``; see also Hairer,
Nørsett, Wanner, *Solving ODEs I*, Table 1.2 of §II.1). The same numbers are hard-coded in
SciML/OrdinaryDiffEq.jl (snapshot commit b211787f7b18d3c5391121bd8c9e2d5fee54efee)
``lib/OrdinaryDiffEqLowOrderRK/src/fixed_timestep_perform_step.jl``: ``Euler`` at
lines 13–23, ``RK4`` at lines 252–261 (OrdinaryDiffEq's optional residual error estimate for
RK4 is not a Butcher-tableau embedded pair and is not carried here). Neither method has an
error estimate here (``btilde`` is ``None``) or an interpolant of its own.
"""

from __future__ import annotations

from hybrideq.tableaus._explicit_rk import ExplicitRKTableau

__all__ = ["EULER", "RK4"]

EULER: ExplicitRKTableau = ExplicitRKTableau(
    name="Euler",
    order=1,
    c=(0.0,),
    a=((),),
    b=(1.0,),
    source="L. Euler, Institutionum calculi integralis (1768)",
)

RK4: ExplicitRKTableau = ExplicitRKTableau(
    name="RK4",
    order=4,
    c=(0.0, 1 / 2, 1 / 2, 1.0),
    a=(
        (),
        (1 / 2,),
        (0.0, 1 / 2),
        (0.0, 0.0, 1.0),
    ),
    b=(1 / 6, 1 / 3, 1 / 3, 1 / 6),
    source="W. Kutta, Z. Math. Phys. 46 (1901) 435-453 (the classic fourth-order method)",
)
