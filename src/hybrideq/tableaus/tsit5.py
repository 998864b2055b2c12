"""Tsit5: Tsitouras' 5(4) pair with FSAL and its own 4th-order interpolant.

Ch. Tsitouras, "Runge–Kutta pairs of order 5(4) satisfying only the first column
simplifying assumption", Comput. Math. Appl. 62 (2011) 770–775.

Numbers copied from SciML/OrdinaryDiffEq.jl (snapshot commit
b211787f7b18d3c5391121bd8c9e2d5fee54efee; the file last changed in f416901a60b3),
``lib/OrdinaryDiffEqTsit5/src/tsit_tableaus.jl``, the Float64 methods:

- ``c``: ``c1..c6`` at lines 52–57 (our ``c[1..6]``; ``c[0] = 0``);
- ``a``: ``a21..a76`` at lines 58–78;
- ``b``: the last row ``a71..a76`` (lines 73–78) with ``b7 = 0``: OrdinaryDiffEq propagates
  ``u = uprev + dt*(a71*k1 + … + a76*k6)`` (``tsit_perform_step.jl`` line 153), which makes
  the method FSAL;
- ``btilde``: lines 86–92, **negated**. There ``btilde = b̂ − b`` (e.g. ``btilde1 =
  b̂1 − a71`` with the commented embedded weights ``b̂`` at lines 79–85, and ``btilde7 =
  +1/66``); our convention is ``btilde = b − b̂``;
- ``dense``: ``Tsit5Interp`` (Float64) at lines 244–276, row ``i`` =
  ``(ri1, ri2, ri3, ri4)`` with ``ri1 = 0`` for ``i ≥ 2``; ``interpolants.jl`` lines 30–53 of
  the same lib use them as ``b_iΘ = Σ_j rij Θ^j`` and ``y₀ + dt Σ_i k_i b_iΘ``;
- ``stability_size``: ``alg_stability_size(alg::Tsit5) = 3.5068``, ``alg_utils.jl`` line 3;
- ``stiffness_stages``: ``k7 − k6`` over ``g7 − g6`` (both at ``c = 1``), as in
  ``tsit_perform_step.jl`` lines 151–163.
"""

from __future__ import annotations

from hybrideq.tableaus._explicit_rk import ExplicitRKTableau

__all__ = ["TSIT5"]

# Coefficient tables: kept in rows (not one number per line) for reading against the source.
# fmt: off
# c1..c6: tsit_tableaus.jl lines 52-57.
_C = (0.0, 0.161, 0.327, 0.9, 0.9800255409045097, 1.0, 1.0)

# a21..a76: lines 58-78.
_A = (
    (),
    (0.161,),
    (-0.008480655492356989, 0.335480655492357),
    (2.8971530571054935, -6.359448489975075, 4.3622954328695815),
    (5.325864828439257, -11.748883564062828, 7.4955393428898365, -0.09249506636175525),
    (
        5.86145544294642, -12.92096931784711, 8.159367898576159, -0.071584973281401,
        -0.028269050394068383,
    ),
    (
        0.09646076681806523, 0.01, 0.4798896504144996, 1.379008574103742, -3.290069515436081,
        2.324710524099774,
    ),
)

# b = (a71..a76, 0): lines 73-78.
_B = (
    0.09646076681806523, 0.01, 0.4798896504144996, 1.379008574103742, -3.290069515436081,
    2.324710524099774, 0.0,
)

# b - b̂ = -(btilde1..btilde7 of lines 86-92).
_BTILDE = (
    0.00178001105222577714, 0.0008164344596567469, -0.007880878010261995, 0.1447110071732629,
    -0.5823571654525552, 0.45808210592918697, -0.015151515151515152,
)

# (ri1, ri2, ri3, ri4) of Tsit5Interp, lines 245-272.
_DENSE = (
    (1.0, -2.763706197274826, 2.9132554618219126, -1.0530884977290216),
    (0.0, 0.13169999999999998, -0.2234, 0.1017),
    (0.0, 3.9302962368947516, -5.941033872131505, 2.490627285651253),
    (0.0, -12.411077166933676, 30.33818863028232, -16.548102889244902),
    (0.0, 37.50931341651104, -88.1789048947664, 47.37952196281928),
    (0.0, -27.896526289197286, 65.09189467479366, -34.87065786149661),
    (0.0, 1.5, -4.0, 2.5),
)
# fmt: on

TSIT5: ExplicitRKTableau = ExplicitRKTableau(
    name="Tsit5",
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
    stability_size=3.5068,
    source=(
        "Ch. Tsitouras, Comput. Math. Appl. 62 (2011) 770-775; SciML/OrdinaryDiffEq.jl "
        "lib/OrdinaryDiffEqTsit5/src/tsit_tableaus.jl (Tsit5ConstantCacheActual, Tsit5Interp)"
    ),
)
