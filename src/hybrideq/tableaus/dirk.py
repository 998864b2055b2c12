"""ESDIRK tableaus: TRBDF2, Kvaerno5 and KenCarp4 (with its explicit IMEX half).

Conventions in ``_dirk``. Numbers copied from SciML/OrdinaryDiffEq.jl, snapshot commit
b211787f7b18d3c5391121bd8c9e2d5fee54efee:

- ``lib/OrdinaryDiffEqSDIRK/src/sdirk_tableaus.jl`` (``SDIRK_FILE``; last changed in 4a4f41f3);
- ``lib/OrdinaryDiffEqSDIRK/src/imex_tableaus.jl`` (``IMEX_FILE``), which assembles the
  matrices the generic stepper ``generic_imex_perform_step.jl`` actually uses.

Conversion from OrdinaryDiffEq.jl: its Newton unknowns are ``z_i = h f(t + c_i h, Y_i)`` and the
stage value is ``Y_i = y + Σ_{j<i} A_ij z_j + γ z_i``, the same ``A``; our increments are
``Z_i = Y_i − y``. Its ``btilde`` is ``b̂ − b`` (e.g. Kvaerno5's ``btilde1 = a61 − a71``, with
``b̂`` the row ``A[6, :]``); ours is ``b − b̂``, so every ``btilde`` below is negated. The sign
does not matter to a norm; it makes ``ŷ = y1 − err`` the embedded solution.

Error filtering: with ``smooth_est=true`` (the default of all three) OrdinaryDiffEq.jl solves
``W est = Σ btilde_i z_i`` with its Newton matrix ``W = J − M/(h γ)``
(``generic_imex_perform_step.jl`` lines 1268–1273), i.e. ``est = −h γ (M − h γ J)⁻¹ err``:
Hosea–Shampine's filtered estimate ``(M − h γ J)⁻¹ err`` scaled by ``−h γ`` (reported upstream
as OrdinaryDiffEq.jl issue #2902, open). ``err = h Σ btilde_i f_i`` here is unfiltered; filter it
with ``(M − h γ J)⁻¹`` if wanted.
"""

from __future__ import annotations

import math

from hybrideq.tableaus._dirk import DIRKTableau

__all__ = ["KENCARP4", "KVAERNO5", "TRBDF2"]

# ----------------------------------------------------------------------------- TRBDF2
#
# M. E. Hosea and L. F. Shampine, "Analysis and implementation of TR-BDF2", Appl. Numer. Math.
# 20 (1996) 21–37. SDIRK_FILE lines 12–45: with γ = 2 − √2 (the TR stage's node, our c[1]),
# d = γ/2 = 1 − √2/2 (the diagonal, our ``gamma``) and ω = √2/4,
#   c = (0, γ, 1), A = [0 0 0; d d 0; ω ω d], b = (ω, ω, d),
#   b̂ = ((1 − ω)/3, (3ω + 1)/3, d/3)                          (3rd order; line 20)
# OrdinaryDiffEq's btilde (lines 39–41) is b̂ − b = ((1 − √2)/3, 1/3, (√2 − 2)/3);
# ours is b − b̂ = ((√2 − 1)/3, −1/3, (2 − √2)/3).
# Predictor (lines 26–33, 42–43; IMEX_FILE lines 2589–2591): z_2 ← z_1 and
# z_3 ← −(√2/2) z_1 + (1 + √2/2) z_2, Shampine's extrapolation through the TR stage.
_SQRT2 = math.sqrt(2.0)
_TR_D = 1.0 - _SQRT2 / 2.0
_TR_W = _SQRT2 / 4.0

TRBDF2: DIRKTableau = DIRKTableau(
    name="TRBDF2",
    order=2,
    embedded_order=3,
    gamma=_TR_D,
    c=(0.0, 2.0 - _SQRT2, 1.0),
    A=((0.0,), (_TR_D, _TR_D), (_TR_W, _TR_W, _TR_D)),
    b=(_TR_W, _TR_W, _TR_D),
    btilde=((_SQRT2 - 1.0) / 3.0, -1.0 / 3.0, (2.0 - _SQRT2) / 3.0),
    stiffly_accurate=True,
    explicit_first_stage=True,
    predictor=((), (1.0,), (-_SQRT2 / 2.0, 1.0 + _SQRT2 / 2.0)),
    source=(
        "M. E. Hosea and L. F. Shampine, Appl. Numer. Math. 20 (1996) 21-37; SciML/"
        "OrdinaryDiffEq.jl lib/OrdinaryDiffEqSDIRK/src/sdirk_tableaus.jl lines 12-45"
    ),
)

# ----------------------------------------------------------------------------- Kvaerno5
#
# A. Kværnø, "Singly diagonally implicit Runge–Kutta methods with an explicit first stage",
# BIT 44 (2004) 489–502, the 5(4) pair. SDIRK_FILE ``Kvaerno5Tableau``: γ = 0.26 line 1457,
# a31..a76 lines 1458–1475 (a62 = a72 = 0), c3..c6 lines 1494–1497, c7 = 1; b = A[7, :].
# The embedded solution is the stage-6 value: b̂ = (a61, 0, a63, a64, a65, γ, 0), and lines
# 1476–1481 give b̂ − b (``btilde1 = a61 − a71`` … ``btilde7 = −γ``), negated here.
# c2 = 2γ = 0.52 (row sum a21 + γ; diffrax ``_solver/kvaerno5.py`` has 0.52 too). IMEX_FILE
# line 1454 evaluates stage 2 at t + γh instead ("matching master's nlsolver.c = γ"), which is
# not the row sum; we keep the consistent node.
# Predictor: α31..α63 SDIRK_FILE lines 1483–1493 (Hermite extrapolation, derivation in the
# comment at lines 1412–1454); α21 = 1 and row 7 = (a61, 0, a63, a64, a65, γ) from IMEX_FILE
# lines 1400 and 1482–1486 (SDIRK_FILE line 1482 still has a stale α21 = 2, "c2/γ").
_KV_G = 0.26
# fmt: off
_KV_A = (
    (0.0,),
    (_KV_G, _KV_G),
    (0.13, 0.84033320996790809, _KV_G),
    (0.22371961478320505, 0.47675532319799699, -0.06470895363112615, _KV_G),
    (0.16648564323248321, 0.1045001884159172, 0.03631482272098715, -0.13090704451073998, _KV_G),
    (
        0.13855640231268224, 0.0, -0.04245337201752043, 0.02446657898003141,
        0.61943039072480676, _KV_G,
    ),
    (
        0.13659751177640291, 0.0, -0.05496908796538376, -0.04118626728321046,
        0.62993304899016403, 0.06962479448202728, _KV_G,
    ),
)
# b − b̂ = −(btilde1, 0, btilde3, …, btilde7) of SDIRK_FILE lines 1476–1481.
_KV_BTILDE = (
    -0.00195889053627933, 0.0, -0.01251571594786333, -0.06565284626324187,
    0.01050265826535727, -0.19037520551797272, _KV_G,
)
_KV_PREDICTOR = (
    (),
    (1.0,),
    (-1.366025403784441, 2.3660254037844357),
    (-0.19650552613122207, 0.8113579546496623, 0.38514757148155954),
    (0.10375304369958693, 0.937994698066431, -0.04174774176601781, 0.0),
    (-0.17281112873898072, 0.6235784481025847, 0.5492326806363959, 0.0, 0.0),
    (
        0.13855640231268224, 0.0, -0.04245337201752043, 0.02446657898003141,
        0.61943039072480676, _KV_G,
    ),
)
# fmt: on

KVAERNO5: DIRKTableau = DIRKTableau(
    name="Kvaerno5",
    order=5,
    embedded_order=4,
    gamma=_KV_G,
    c=(0.0, 2.0 * _KV_G, 1.230333209967908, 0.895765984350076, 0.436393609858648, 1.0, 1.0),
    A=_KV_A,
    b=_KV_A[6],
    btilde=_KV_BTILDE,
    stiffly_accurate=True,
    explicit_first_stage=True,
    predictor=_KV_PREDICTOR,
    source=(
        "A. Kvaerno, BIT 44 (2004) 489-502; SciML/OrdinaryDiffEq.jl lib/OrdinaryDiffEqSDIRK/"
        "src/sdirk_tableaus.jl lines 1456-1505 and imex_tableaus.jl lines 1366-1491"
    ),
)

# ----------------------------------------------------------------------------- KenCarp4
#
# C. A. Kennedy and M. H. Carpenter, "Additive Runge–Kutta schemes for convection–diffusion–
# reaction equations", Appl. Numer. Math. 44 (2003) 139–181, ARK4(3)6L[2]SA. Exact rationals
# from SDIRK_FILE ``KenCarp4Tableau`` (lines 1279–1359): γ = 1/4 line 1280, a31..a65 lines
# 1281–1293 (a21 = γ, so c2 = 2γ; a62 = 0), c3..c5 lines 1304–1306 (c6 = 1), b = A[6, :]
# (= eb, lines 1338–1342). b̂ is in the comments at lines 1294–1298 and lines 1299–1303 give
# b̂ − b exactly (checked with fractions.Fraction in tests/test_stiff_tableaus.py), negated here.
# Predictor α (coefficients of z_j = h f_j): lines 1308–1320, with α21 = 1 as in IMEX_FILE
# line 417 (SDIRK_FILE line 1307 has a stale α21 = 2).
# Explicit half ``ea``: lines 1322–1336; its weights are b and its error weights are btilde
# (``eb``/``ebtilde`` lines 1338–1348 equal b and b̂ − b).
_KC_G = 1 / 4
# fmt: off
_KC_A = (
    (0.0,),
    (_KC_G, _KC_G),
    (8611 / 62500, -1743 / 31250, _KC_G),
    (5012029 / 34652500, -654441 / 2922500, 174375 / 388108, _KC_G),
    (
        15267082809 / 155376265600, -71443401 / 120774400, 730878875 / 902184768,
        2285395 / 8070912, _KC_G,
    ),
    (82889 / 524892, 0.0, 15625 / 83664, 69875 / 102672, -2260 / 8211, _KC_G),
)
# b − b̂ = −(btilde1, 0, btilde3, btilde4, btilde5, btilde6) of lines 1299–1303.
_KC_BTILDE = (
    31666707 / 9881966720, 0.0, -256875 / 105007616, -2768025 / 128864768,
    169839 / 3864644, -5247 / 225920,
)
_KC_PREDICTOR = (
    (),
    (1.0,),
    (42 / 125, 83 / 125),
    (-6 / 25, 31 / 25, 0.0),
    (914470432 / 2064665255, 798813 / 724780, -824765625 / 372971788, 49640 / 29791),
    (
        288521442795 / 954204491116, 2224881 / 2566456, -1074821875 / 905317354,
        -3360875 / 8098936, 7040 / 4913,
    ),
)
_KC_EXPLICIT_A = (
    (),
    (1 / 2,),
    (13861 / 62500, 6889 / 62500),
    (
        -116923316275 / 2393684061468, -2731218467317 / 15368042101831,
        9408046702089 / 11113171139209,
    ),
    (
        -451086348788 / 2902428689909, -2682348792572 / 7519795681897,
        12662868775082 / 11960479115383, 3355817975965 / 11060851509271,
    ),
    (
        647845179188 / 3216320057751, 73281519250 / 8382639484533,
        552539513391 / 3454668386233, 3354512671639 / 8306763924573, 4040 / 17871,
    ),
)
# fmt: on

KENCARP4: DIRKTableau = DIRKTableau(
    name="KenCarp4",
    order=4,
    embedded_order=3,
    gamma=_KC_G,
    c=(0.0, 1 / 2, 83 / 250, 31 / 50, 17 / 20, 1.0),
    A=_KC_A,
    b=_KC_A[5],
    btilde=_KC_BTILDE,
    stiffly_accurate=True,
    explicit_first_stage=True,
    predictor=_KC_PREDICTOR,
    explicit_A=_KC_EXPLICIT_A,
    source=(
        "C. A. Kennedy and M. H. Carpenter, Appl. Numer. Math. 44 (2003) 139-181, "
        "ARK4(3)6L[2]SA; SciML/OrdinaryDiffEq.jl lib/OrdinaryDiffEqSDIRK/src/sdirk_tableaus.jl "
        "lines 1279-1359"
    ),
)
