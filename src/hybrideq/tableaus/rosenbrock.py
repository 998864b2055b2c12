"""Rosenbrock tableaus: Rosenbrock23 (ode23s), Rodas4 and Rodas5P.

All three in the transformed form of ``_rosenbrock`` (Hairer–Wanner (7.25') with a mass
matrix). Numbers copied from SciML/OrdinaryDiffEq.jl, snapshot commit
b211787f7b18d3c5391121bd8c9e2d5fee54efee:

- ``lib/OrdinaryDiffEqRosenbrock/src/rosenbrock_tableaus.jl`` (``ROS_FILE`` below; the file last
  changed in 47ab74d0): Rosenbrock23 constants (lines 6–10), Rodas5P (lines 23–72);
- ``lib/OrdinaryDiffEqRosenbrockTableaus/src/rosenbrock_tableaus.jl`` (``TAB_FILE``; last
  changed in 754b504c): ``RodasTableau`` (lines 11–20) and Rodas4 (lines 77–111).

OrdinaryDiffEq's ``RodasTableau`` is already this module's convention (its stage vectors are our
``U_i``, see ``_rosenbrock``), so the Rodas numbers are copied unchanged, with
``b = (A[s, 1:s-1], 1)`` and ``btilde = e_s`` as its constructors build them. Its dense output
``y(θ) = (1−θ) y0 + θ (y1 + (1−θ)(k1 + θ(k2 + θ k3)))`` (``rosenbrock_interpolants.jl``
lines 199–204; ``k_j = Σ_i H[j, i] ks[i]``, ``rosenbrock_perform_step.jl`` line 527) is
``y0 + θ V0 + (θ − θ²) V1 + (θ² − θ³) V2 + (θ³ − θ⁴) V3`` with ``V0 = y1 − y0``.

Rosenbrock23 is not a ``RodasTableau`` upstream; its transformed form is derived in
``_ROSENBROCK23_DERIVATION`` below.
"""

from __future__ import annotations

import math

from hybrideq.tableaus._rosenbrock import RosenbrockTableau

__all__ = ["RODAS4", "RODAS5P", "ROSENBROCK23"]

# ----------------------------------------------------------------------------- Rosenbrock23
#
# L. F. Shampine and M. W. Reichelt, "The MATLAB ODE Suite", SIAM J. Sci. Comput. 18 (1997)
# 1–22, §4.1 (MATLAB's ode23s). ROS_FILE lines 7–8: c₃₂ = 6 + √2, d = 1/(2 + √2).
#
# _ROSENBROCK23_DERIVATION. The original formulas, with W = M − h d J and T = f_t:
#   k1 = W⁻¹(F0 + h d T),                           F0 = f(t, y)
#   k2 = W⁻¹(F1 − M k1) + k1,                       F1 = f(t + h/2, y + (h/2) k1)
#   y1 = y + h k2
#   k3 = W⁻¹(F2 − c₃₂(M k2 − F1) − 2(M k1 − F0) + h d T),   F2 = f(t + h, y1)
#   error y3 − y1 = (h/6)(k1 − 2 k2 + k3), y3 = y + (h/6)(k1 + 4 k2 + k3) (order 3)
#   y(t + θh) = y + h (θ(1−θ) k1 + θ(θ − 2d) k2) / (1 − 2d)
# Take γ = d and multiply our stage equation by h γ: (M − h γ J) U_i = h γ f(…) + γ M Σ C_ij U_j
# + h² γ d_i f_t. Then:
#   U1 = h d k1:            W U1 = h d F0 + h² d² T              → d_1 = d.
#   U2 = h d (k2 − k1):     W U2 = h d F1 − M U1,  F1 = f(t + h/2, y + U1/(2d))
#                                               → a21 = 1/(2d), C21 = −1/d, d_2 = 0.
#   y1 = y + h k2 = y + (U1 + U2)/d                → b = (1/d, 1/d, 0), a31 = a32 = 1/d, c3 = 1.
#   For k3, eliminate F0 = W k1 − h d T and F1 = W(k2 − k1) + M k1, so that
#   M k2 − F1 = (M − W)(k2 − k1) and M k1 − F0 = (M − W) k1 + h d T:
#   W(k3 − c₃₂(k2 − k1) − 2 k1) = F2 − c₃₂ M (k2 − k1) − 2 M k1 − h d T.
#   U3 = h d k3 − c₃₂ U2 − 2 U1:  W U3 = h d F2 − c₃₂ M U2 − 2 M U1 − h² d² T
#                                               → C31 = −2/d, C32 = −c₃₂/d, d_3 = −d.
#   h k1 = U1/d, h k2 = (U1 + U2)/d, h k3 = (U3 + c₃₂ U2 + 2 U1)/d, so
#   (h/6)(k1 − 2k2 + k3) = (U1 + (c₃₂ − 2) U2 + U3)/(6d). Our err = y1 − ŷ with ŷ = y3 the
#   3rd-order solution, hence btilde = −(1, c₃₂ − 2, 1)/(6d) (|err| is ode23s's estimate).
#   Dense output: θ(θ − 2d)/(1 − 2d) = θ − (θ − θ²)/(1 − 2d), so
#   y(θ) = y + θ h k2 + (θ − θ²) h (k1 − k2)/(1 − 2d), and h (k1 − k2) = −U2/d:
#   V1 = −U2/(d (1 − 2d)) = −(4 + 3√2) U2, P0 = θ, P1 = θ − θ².
# Checks: Γ = (diag(1/d) − C)⁻¹ has row sums (d, 0, −d) = d; b Γ = (0, 1, 0) (y1 = y + h k2);
# btilde Γ = −(1, −2, 1)/6.
#
# Difference from OrdinaryDiffEq.jl: rosenbrock_perform_step.jl lines 298 and 304 (104 and 109
# in place) add `dt * dT` (h T) to k3's right-hand side, where the paper adds h d T (so do the
# ODE.jl port of ode23s and other ports). With h T, d_3 = 1 − 2d ≠ Σ_j γ_3j: y3 is off by
# h² (1 − d) W⁻¹T / 6 per step and converges at order 1 on a non-autonomous problem, and the
# error estimate is O(h²) instead of O(h³) (tests/test_stiff_tableaus.py measures 3.0 against
# 1.0). y1 and the dense output do not depend on it.
# OrdinaryDiffEq also multiplies its error by M (line 313, for DAEs); ours is in y's units.
_D = 1.0 / (2.0 + math.sqrt(2.0))
_C32 = 6.0 + math.sqrt(2.0)

ROSENBROCK23: RosenbrockTableau = RosenbrockTableau(
    name="Rosenbrock23",
    order=2,
    embedded_order=3,
    gamma=_D,
    c=(0.0, 0.5, 1.0),
    d=(_D, 0.0, -_D),
    a=((), (1.0 / (2.0 * _D),), (1.0 / _D, 1.0 / _D)),
    C=((), (-1.0 / _D,), (-2.0 / _D, -_C32 / _D)),
    b=(1.0 / _D, 1.0 / _D, 0.0),
    btilde=(-1.0 / (6.0 * _D), -(_C32 - 2.0) / (6.0 * _D), -1.0 / (6.0 * _D)),
    H=((0.0, -1.0 / (_D * (1.0 - 2.0 * _D)), 0.0),),
    dense_poly=((1.0, 0.0), (1.0, -1.0)),
    dense_order=2,
    stiffly_accurate=False,
    source=(
        "L. F. Shampine and M. W. Reichelt, SIAM J. Sci. Comput. 18 (1997) 1-22 (ode23s); "
        "constants from SciML/OrdinaryDiffEq.jl lib/OrdinaryDiffEqRosenbrock/src/"
        "rosenbrock_tableaus.jl lines 6-10; transformed form derived in "
        "hybrideq/tableaus/rosenbrock.py"
    ),
)

# ----------------------------------------------------------------------------- Rodas4
#
# E. Hairer and G. Wanner, Solving ODEs II, 2nd ed. (1996), §IV.7 (code RODAS, coefficients of
# its ROCOE subroutine). TAB_FILE: A = RODAS4A lines 77–84, C = RODAS4C lines 85–92,
# c = RODAS4c line 93, d = RODAS4d line 94, H = RODAS4H lines 95–98, γ = 0.25 line 107,
# b = (A[6, 1:5], 1) line 108, btilde = e_6 line 109. (ROCOE gives d_4 = −0.3620000000000023e-1,
# the exact row sum of Γ; OrdinaryDiffEq's −0.0362 differs by 2.3e-16.)
# fmt: off
_RODAS4_A = (
    (),
    (1.544,),
    (0.9466785280815826, 0.2557011698983284),
    (3.314825187068521, 2.896124015972201, 0.9986419139977817),
    (1.221224509226641, 6.019134481288629, 12.53708332932087, -0.687886036105895),
    (1.221224509226641, 6.019134481288629, 12.53708332932087, -0.687886036105895, 1.0),
)
_RODAS4_C = (
    (),
    (-5.6688,),
    (-2.430093356833875, -0.2063599157091915),
    (-0.1073529058151375, -9.594562251023355, -20.47028614809616),
    (7.496443313967647, -10.24680431464352, -33.99990352819905, 11.7089089320616),
    (
        8.083246795921522, -7.981132988064893, -31.52159432874371, 16.31930543123136,
        -6.058818238834054,
    ),
)
_RODAS4_H = (
    (
        10.12623508344586, -7.487995877610167, -34.80091861555747, -7.992771707568823,
        1.025137723295662, 0.0,
    ),
    (
        -0.6762803392801253, 6.087714651680015, 16.43084320892478, 24.76722511418386,
        -6.594389125716872, 0.0,
    ),
)
# fmt: on

RODAS4: RosenbrockTableau = RosenbrockTableau(
    name="Rodas4",
    order=4,
    embedded_order=3,
    gamma=0.25,
    c=(0.0, 0.386, 0.21, 0.63, 1.0, 1.0),
    d=(0.25, -0.1043, 0.1035, -0.0362, 0.0, 0.0),
    a=_RODAS4_A,
    C=_RODAS4_C,
    b=(*_RODAS4_A[5], 1.0),
    btilde=(0.0, 0.0, 0.0, 0.0, 0.0, 1.0),
    H=_RODAS4_H,
    # y0 + θ V0 + (θ − θ²) V1 + (θ² − θ³) V2
    dense_poly=((1.0, 0.0, 0.0), (1.0, -1.0, 0.0), (0.0, 1.0, -1.0)),
    dense_order=3,
    stiffly_accurate=True,
    source=(
        "E. Hairer and G. Wanner, Solving ODEs II (1996), IV.7 (RODAS); SciML/OrdinaryDiffEq.jl "
        "lib/OrdinaryDiffEqRosenbrockTableaus/src/rosenbrock_tableaus.jl lines 77-111"
    ),
)

# ----------------------------------------------------------------------------- Rodas5P
#
# G. Steinebach, "Construction of Rosenbrock–Wanner method Rodas5P and numerical benchmarks
# within the Julia Differential Equations package", BIT Numer. Math. 63 (2023) 27.
# ROS_FILE: A = RODAS5PA lines 23–32, C = RODAS5PC lines 33–42, c = RODAS5Pc lines 43–46,
# d = RODAS5Pd lines 47–50, H = RODAS5PH lines 51–55, γ = 0.21193756319429014 line 65,
# b = (A[8, 1:7], 1) lines 67–68, btilde = e_8 lines 69–70.
# fmt: off
_RODAS5P_A = (
    (),
    (3.0,),
    (2.849394379747939, 0.45842242204463923),
    (-6.954028509809101, 2.489845061869568, -10.358996098473584),
    (2.8029986275628964, 0.5072464736228206, -0.3988312541770524, -0.04721187230404641),
    (
        -7.502846399306121, 2.561846144803919, -11.627539656261098, -0.18268767659942256,
        0.030198172008377946,
    ),
    (
        -7.502846399306121, 2.561846144803919, -11.627539656261098, -0.18268767659942256,
        0.030198172008377946, 1.0,
    ),
    (
        -7.502846399306121, 2.561846144803919, -11.627539656261098, -0.18268767659942256,
        0.030198172008377946, 1.0, 1.0,
    ),
)
_RODAS5P_C = (
    (),
    (-14.155112264123755,),
    (-17.97296035885952, -2.859693295451294),
    (147.12150275711716, -1.41221402718213, 71.68940251302358),
    (165.43517024871676, -0.4592823456491126, 42.90938336958603, -5.961986721573306),
    (
        24.854864614690072, -3.0009227002832186, 47.4931110020768, 5.5814197821558125,
        -0.6610691825249471,
    ),
    (
        30.91273214028599, -3.1208243349937974, 77.79954646070892, 34.28646028294783,
        -19.097331116725623, -28.087943162872662,
    ),
    (
        37.80277123390563, -3.2571969029072276, 112.26918849496327, 66.9347231244047,
        -40.06618937091002, -54.66780262877968, -9.48861652309627,
    ),
)
_RODAS5P_H = (
    (
        25.948786856663858, -2.5579724845846235, 10.433815404888879, -2.3679251022685204,
        0.524948541321073, 1.1241088310450404, 0.4272876194431874, -0.17202221070155493,
    ),
    (
        -9.91568850695171, -0.9689944594115154, 3.0438037242978453, -24.495224566215796,
        20.176138334709044, 15.98066361424651, -6.789040303419874, -6.710236069923372,
    ),
    (
        11.419903575922262, 2.8879645146136994, 72.92137995996029, 80.12511834622643,
        -52.072871366152654, -59.78993625266729, -0.15582684282751913, 4.883087185713722,
    ),
)
_RODAS5P_c = (
    0.0, 0.6358126895828704, 0.4095798393397535, 0.9769306725060716, 0.4288403609558664,
    1.0, 1.0, 1.0,
)
_RODAS5P_d = (
    0.21193756319429014, -0.42387512638858027, -0.3384627126235924, 1.8046452872882734,
    2.325825639765069, 0.0, 0.0, 0.0,
)
# fmt: on

RODAS5P: RosenbrockTableau = RosenbrockTableau(
    name="Rodas5P",
    order=5,
    embedded_order=4,
    gamma=0.21193756319429014,
    c=_RODAS5P_c,
    d=_RODAS5P_d,
    a=_RODAS5P_A,
    C=_RODAS5P_C,
    b=(*_RODAS5P_A[7], 1.0),
    btilde=(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0),
    H=_RODAS5P_H,
    # y0 + θ V0 + (θ − θ²) V1 + (θ² − θ³) V2 + (θ³ − θ⁴) V3
    dense_poly=(
        (1.0, 0.0, 0.0, 0.0),
        (1.0, -1.0, 0.0, 0.0),
        (0.0, 1.0, -1.0, 0.0),
        (0.0, 0.0, 1.0, -1.0),
    ),
    dense_order=4,
    stiffly_accurate=True,
    source=(
        "G. Steinebach, BIT Numer. Math. 63 (2023) 27; SciML/OrdinaryDiffEq.jl "
        "lib/OrdinaryDiffEqRosenbrock/src/rosenbrock_tableaus.jl lines 23-72"
    ),
)
