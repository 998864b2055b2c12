"""Vern7: Verner's "most efficient" 7(6) pair with its 7th-order interpolant.

J. H. Verner, "Numerically optimal Runge–Kutta pairs with interpolants",
Numer. Algorithms 53 (2010) 383–396 (the "most efficient" 7(6) pair and its interpolant,
coefficients as published on Verner's web page).

Numbers copied from SciML/OrdinaryDiffEq.jl (snapshot commit
b211787f7b18d3c5391121bd8c9e2d5fee54efee; the file last changed in 3174402cec61),
``lib/OrdinaryDiffEqVerner/src/verner_tableaus.jl``, the Float64 methods:

- ``c``: ``c2..c8`` of ``Vern7Tableau`` at lines 1133–1139; ``c9 = c10 = 1`` (stages 9
  and 10 are evaluated at ``t + dt``, ``verner_rk_perform_step.jl`` lines 283–284);
- ``a``: ``a021..a107`` at lines 1140–1175 (the ones not listed there, the ``k2`` column
  from row 4 on and ``a108``, ``a109``, are 0);
- ``b``: ``b1, b4..b9`` at lines 1176–1182 (``b2 = b3 = b10 = 0``); the method is not FSAL;
- ``btilde``: lines 1189–1196, used as they are: in this file ``btilde = b − b̂`` (e.g.
  ``btilde1 = b1 − b̂1`` with the commented ``b̂`` at lines 1183–1188, ``btilde10 = −b̂10``),
  which is our convention (unlike the Tsit5, DP5 and BS3 files, where it is ``b̂ − b``);
- ``extra_c``/``extra_a``: ``Vern7ExtraStages`` at lines 655–714: six extra stages
  ``k11..k16`` at ``c = 1, 0.29, 0.125, 0.25, 0.53, 0.79``. ``aMN`` is the coefficient of
  ``k_N`` in stage ``M`` (``verner_addsteps.jl`` lines 654–817 and
  ``verner_rk_perform_step.jl`` lines 321–380 compute
  ``k[M] = f(uprev + dt Σ_N aMN k[N], t + cM dt)`` with ``k[1..10]`` the ten stages in order).
  No extra stage uses ``k2``, ``k3`` or ``k10``; ``k11`` (with ``a11N = b_N``, i.e.
  ``f(t + dt, y1)``) is used by ``k12..k16``, ``k12`` and ``k13`` by the later ones, and no
  stage uses ``k14`` or ``k15``. Row ``m`` of ``extra_a`` has ``10 + m`` entries over
  ``k1..k10, k11..k(10+m)``, with 0.0 for unused stages;
- ``dense``: ``Vern7InterpolationCoefficients`` at lines 881–959: ``rNj`` is the coefficient
  of ``Θ^j`` in the weight of ``k_N`` (``interpolants.jl`` lines 189–237 of this lib:
  ``b1Θ = Θ·evalpoly(Θ, r011..r017)``, ``bNΘ = Θ²·evalpoly(Θ, rN2..rN7)`` for
  ``N = 4..9, 11..16``, and ``y₀ + dt Σ_N k[N] bNΘ``). Rows for ``k2``, ``k3`` and ``k10``
  are 0. In exact (50-digit) arithmetic these published coefficients satisfy every continuous
  order condition up to order 6 to 1e-40, but 12 of the 48 order-7 ones only to about 3e-7
  (largest near ``Θ = 0.25``; none at ``Θ = 1``). Verner's own data (as reproduced e.g. in
  Geant4's ``VernerRK67.cc``) are the same, so this is a property of the interpolant as
  published, not a copying error; its effect, about ``3e-7 h^7``, is far below the ``h^8``
  terms for any usable step;
- ``stability_size``: ``alg_stability_size(alg::Vern7) = 4.64``, ``alg_utils.jl`` line 13;
- ``stiffness_stages``: ``None`` here, although OrdinaryDiffEq's ``Vern7`` does estimate
  stiffness from ``(k10 − k9)/(g10 − g9)`` (both at ``c = 1``; ``verner_rk_perform_step.jl``
  lines 287–290), which would be ``(8, 9)`` in our 0-based convention.
"""

from __future__ import annotations

from hybrideq.tableaus._explicit_rk import ExplicitRKTableau

__all__ = ["VERN7"]

# Coefficient tables: kept in rows (not one number per line) for reading against the source.
# fmt: off
# 0, c2..c8 (verner_tableaus.jl lines 1133-1139), c9 = c10 = 1.
_C = (
    0.0, 0.005, 0.10888888888888888, 0.16333333333333333, 0.4555, 0.6095094489978381, 0.884, 0.925,
    1.0, 1.0,
)

# a021..a107: lines 1140-1175.
_A = (
    (),
    (0.005,),
    (-1.07679012345679, 1.185679012345679),
    (0.04083333333333333, 0.0, 0.1225),
    (0.6389139236255726, 0.0, -2.455672638223657, 2.272258714598084),
    (-2.6615773750187572, 0.0, 10.804513886456137, -8.3539146573962, 0.820487594956657),
    (
        6.067741434696772, 0.0, -24.711273635911088, 20.427517930788895, -1.9061579788166472,
        1.006172249242068,
    ),
    (
        12.054670076253203, 0.0, -49.75478495046899, 41.142888638604674, -4.461760149974004,
        2.042334822239175, -0.09834843665406107,
    ),
    (
        10.138146522881808, 0.0, -42.6411360317175, 35.76384003992257, -4.3480228403929075,
        2.0098622683770357, 0.3487490460338272, -0.27143900510483127,
    ),
    (
        -45.030072034298676, 0.0, 187.3272437654589, -154.02882369350186, 18.56465306347536,
        -7.141809679295079, 1.3088085781613787, 0.0, 0.0,
    ),
)

# b1, b4..b9: lines 1176-1182.
_B = (
    0.04715561848627222, 0.0, 0.0, 0.25750564298434153, 0.26216653977412624, 0.15216092656738558,
    0.4939969170032485, -0.29430311714032503, 0.08131747232495111, 0.0,
)

# btilde1, btilde4..btilde10 (= b - b̂): lines 1189-1196.
_BTILDE = (
    0.002547011879931045, 0.0, 0.0, -0.00965839487279575, 0.04206470975639691, -0.0666822437469301,
    0.2650097464621281, -0.29430311714032503, 0.08131747232495111, -0.02029518466335628,
)

# c11..c16 of Vern7ExtraStages: lines 655, 663, 672, 682, 693, 704.
_EXTRA_C = (1.0, 0.29, 0.125, 0.25, 0.53, 0.79)

# Rows k11..k16 over k1..k(M-1): a1101..a1613, lines 656-714.
_EXTRA_A = (
    (
        0.04715561848627222, 0.0, 0.0, 0.25750564298434153, 0.2621665397741262,
        0.15216092656738558, 0.49399691700324844, -0.29430311714032503, 0.0813174723249511, 0.0,
    ),
    (
        0.0523222769159969, 0.0, 0.0, 0.22495861826705715, 0.017443709248776376,
        -0.007669379876829393, 0.03435896044073285, -0.0410209723009395, 0.025651133005205617, 0.0,
        -0.0160443457,
    ),
    (
        0.053053341257859085, 0.0, 0.0, 0.12195301011401886, 0.017746840737602496,
        -0.0005928372667681495, 0.008381833970853752, -0.01293369259698612, 0.009412056815253861,
        0.0, -0.005353253107275676, -0.06666729992455811,
    ),
    (
        0.03887903257436304, 0.0, 0.0, -0.0024403203308301317, -0.0013928917214672623,
        -0.00047446291558680135, 0.00039207932413159514, -0.00040554733285128004,
        0.00019897093147716726, 0.0, -0.00010278198793179169, 0.03385661513870267,
        0.1814893063199928,
    ),
    (
        0.05723681204690013, 0.0, 0.0, 0.22265948066761182, 0.12344864200186899,
        0.04006332526666491, -0.05269894848581452, 0.04765971214244523, -0.02138895885042213, 0.0,
        0.015193891064036402, 0.12060546716289655, -0.022779423016187374, 0.0,
    ),
    (
        0.051372038802756814, 0.0, 0.0, 0.5414214473439406, 0.350399806692184, 0.14193112269692182,
        0.10527377478429423, -0.031081847805874016, -0.007401883149519145, 0.0,
        -0.006377932504865363, -0.17325495908361865, -0.18228156777622026, 0.0, 0.0,
    ),
)

# Rows k1..k16, coefficients of Θ..Θ⁷: r011..r167, lines 881-959.
_DENSE = (
    (
        1.0, -8.413387198332767, 33.675508884490895, -70.80159089484886, 80.64695108301298,
        -47.19413969837522, 11.133813442539243,
    ),
    (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    (
        0.0, 8.754921980674396, -88.4596828699771, 346.9017638429916, -629.2580030059837,
        529.6773755604193, -167.35886986514018,
    ),
    (
        0.0, 8.913387586637922, -90.06081846893218, 353.1807459217058, -640.6476819744374,
        539.2646279047156, -170.38809442991547,
    ),
    (
        0.0, 5.1733120298478, -52.271115900055385, 204.9853867374073, -371.8306118563603,
        312.9880934374529, -98.89290352172495,
    ),
    (
        0.0, 16.79537744079696, -169.70040000059728, 665.4937727009246, -1207.1638892336007,
        1016.1291515818546, -321.06001557237494,
    ),
    (
        0.0, -10.005997536098665, 101.1005433052275, -396.47391512378437, 719.1787707014183,
        -605.3681033918824, 191.27439892797935,
    ),
    (
        0.0, 2.764708833638599, -27.934602637390462, 109.54779186137893, -198.7128113064482,
        167.26633571640318, -52.85010499525706,
    ),
    (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    (
        0.0, -2.1696320280163506, 22.016696037569876, -86.90152427798948, 159.22388973861476,
        -135.9618306534588, 43.792401183280006,
    ),
    (
        0.0, -4.890070188793804, 22.75407737425176, -30.78034218537731, -2.797194317207249,
        31.369456637508403, -15.655927320381801,
    ),
    (
        0.0, 10.862170929551967, -50.542971417827104, 68.37148040407511, 6.213326521632409,
        -69.68006323194157, 34.776056794509195,
    ),
    (
        0.0, -11.37286691922923, 130.79058078246717, -488.65113677785604, 832.2148793276441,
        -664.7743368554426, 201.79288044241662,
    ),
    (
        0.0, -5.919778732715007, 63.27679965889219, -265.432682088738, 520.1009254140611,
        -467.412109533902, 155.3868452824017,
    ),
    (
        0.0, -10.492146197961823, 105.35538525188011, -409.43975011988937, 732.831448907654,
        -606.3044574733512, 188.0495196316683,
    ),
)
# fmt: on

VERN7: ExplicitRKTableau = ExplicitRKTableau(
    name="Vern7",
    order=7,
    c=_C,
    a=_A,
    b=_B,
    btilde=_BTILDE,
    embedded_order=6,
    fsal=False,
    dense=_DENSE,
    dense_order=7,
    extra_c=_EXTRA_C,
    extra_a=_EXTRA_A,
    stiffness_stages=None,
    stability_size=4.64,
    source=(
        "J. H. Verner, Numer. Algorithms 53 (2010) 383-396; SciML/OrdinaryDiffEq.jl "
        "lib/OrdinaryDiffEqVerner/src/verner_tableaus.jl (Vern7Tableau, Vern7ExtraStages, "
        "Vern7InterpolationCoefficients)"
    ),
)
