"""DP5: the Dormand–Prince 5(4) pair with FSAL and Shampine's 4th-order dense output.

J. R. Dormand, P. J. Prince, "A family of embedded Runge–Kutta formulae",
J. Comput. Appl. Math. 6 (1980) 19–26; dense output of L. F. Shampine, "Some practical
Runge–Kutta formulas", Math. Comp. 46 (1986) 135–150, as given in Hairer, Nørsett, Wanner,
*Solving ODEs I*, 2nd ed., p. 192 (``DOPRI5``'s ``d1..d7``).

Numbers copied from SciML/OrdinaryDiffEq.jl (snapshot commit
b211787f7b18d3c5391121bd8c9e2d5fee54efee; the file last changed in da6a633b4f99),
``lib/OrdinaryDiffEqLowOrderRK/src/low_order_rk_tableaus.jl``, the rational (generic ``T``)
methods, written here as ``p / q`` (Python rounds each quotient correctly):

- ``c``: lines 1186–1191; ``a``: lines 1154–1173 (``a72 = 0``);
- ``b``: the last row ``a71..a76`` (lines 1169–1173) with ``b7 = 0`` (the solution is
  ``uprev + dt*update`` with ``update = a71*k1 + a73*k3 + … + a76*k6``,
  ``low_order_rk_perform_step.jl`` lines 680–681), which makes the method FSAL;
- ``btilde``: lines 1180–1185, **negated**. There ``btilde = b̂ − b`` (the commented
  ``b̂`` at lines 1174–1179, e.g. ``5179/57600 − 35/384 = −71/57600``, ``btilde7 = +1/40``);
  our convention is ``btilde = b − b̂``;
- ``dense``: from ``DP5_dense_ds`` (rational ``d1, d3..d7``, lines 1201–1209, equal to the
  Float64 ones at lines 1143–1151) and the way the interpolant uses them.
  ``low_order_rk_perform_step.jl`` lines 704–708 store ``k[1] = U = Σ b_i k_i``,
  ``k[2] = k1 − U``, ``k[3] = U − k7 − k[2]``, ``k[4] = Σ d_i k_i``, and ``interpolants.jl``
  lines 29–42 evaluate ``y₀ + dt (k[1] Θ + k[2] Θ(1−Θ) + k[3] Θ²(1−Θ) + k[4] Θ²(1−Θ)²)``.
  Per stage this is ``b_i(Θ) = b_i Θ + (δ_i1 − b_i) Θ(1−Θ) + (2 b_i − δ_i1 − δ_i7) Θ²(1−Θ)
  + d_i Θ²(1−Θ)²``, expanded exactly with sympy in rationals into the powers ``Θ..Θ⁴``;
- ``stability_size``: ``alg_stability_size(alg::DP5) = 3.3066``, ``alg_utils.jl`` line 41;
- ``stiffness_stages``: ``k7 − k6`` over ``g7 − g6`` (both at ``c = 1``),
  ``low_order_rk_perform_step.jl`` lines 678–690.
"""

from __future__ import annotations

from hybrideq.tableaus._explicit_rk import ExplicitRKTableau

__all__ = ["DP5"]

# c: low_order_rk_tableaus.jl lines 1186-1191.
_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)

# a: lines 1154-1173.
_A = (
    (),
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
    (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
)

# b = (a71..a76, 0): lines 1169-1173.
_B = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0)

# b - b̂ = -(btilde1..btilde7 of lines 1180-1185).
_BTILDE = (71 / 57600, 0.0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40)

# Coefficients of Θ, Θ², Θ³, Θ⁴ in b_i(Θ), exact rationals (derivation in the docstring).
_DENSE = (
    (1.0, -8048581381 / 2820520608, 8663915743 / 2820520608, -12715105075 / 11282082432),
    (0.0, 0.0, 0.0, 0.0),
    (0.0, 131558114200 / 32700410799, -68118460800 / 10900136933, 87487479700 / 32700410799),
    (0.0, -1754552775 / 470086768, 14199869525 / 1410260304, -10690763975 / 1880347072),
    (0.0, 127303824393 / 49829197408, -318862633887 / 49829197408, 701980252875 / 199316789632),
    (0.0, -282668133 / 205662961, 2019193451 / 616988883, -1453857185 / 822651844),
    (0.0, 40617522 / 29380423, -110615467 / 29380423, 69997945 / 29380423),
)

DP5: ExplicitRKTableau = ExplicitRKTableau(
    name="DP5",
    order=5,
    c=_C,
    a=_A,
    b=_B,
    btilde=_BTILDE,
    embedded_order=4,
    fsal=True,
    dense=_DENSE,
    dense_order=4,
    stiffness_stages=(5, 6),
    stability_size=3.3066,
    source=(
        "Dormand & Prince, J. Comput. Appl. Math. 6 (1980) 19-26; Shampine dense output "
        "(Hairer-Norsett-Wanner I, p. 192); SciML/OrdinaryDiffEq.jl "
        "lib/OrdinaryDiffEqLowOrderRK/src/low_order_rk_tableaus.jl (DP5ConstantCacheActual, "
        "DP5_dense_ds)"
    ),
)
