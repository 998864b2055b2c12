"""Stochastic Runge–Kutta tableaus: SRIW1, SOSRI, SOSRI2 (SRI) and SRA1, SOSRA, SOSRA2 (SRA).

Conventions in ``_sde``. All six have strong order 1.5. Numbers copied from
SciML/StochasticDiffEq.jl, snapshot commit e014b52fb3a6b8df9c541dbd5141a40b687a9d5d (the
single-package layout; later versions move these files to ``lib/StochasticDiffEqHighOrder/``):

- ``src/tableaus.jl`` (``TAB_FILE`` below; last changed in ee8e8ff5): ``constructSRIW1``
  (lines 42–83) and ``constructSRA1`` (lines 231–250);
- ``src/caches/rossler_caches.jl`` (``SRI_FILE``; last changed in 353fd890):
  ``SOSRIConstantCache`` (lines 316–376) and ``SOSRI2ConstantCache`` (lines 387–447);
- ``src/caches/sra_caches.jl`` (``SRA_FILE``; last changed in 353fd890): ``SOSRAConstantCache``
  (lines 171–196) and ``SOSRA2ConstantCache`` (lines 198–223).

Upstream stores SRIW1's and SRA1's coefficients as exact rationals; here each is the correctly
rounded float of that rational (``p / q`` of two integers is correctly rounded in IEEE
arithmetic). The SOSR* numbers are floats upstream and are copied digit for digit. The same
SOSRI/SOSRI2/SOSRA/SOSRA2 numbers also appear in ``TAB_FILE`` as ``constructSRIOpt1``
(lines 138–174), ``constructSRIOpt2`` (181–224), ``constructSOSRA`` (311–353) and
``constructSOSRA2`` (360–402); the caches were used because they are what the named
algorithms run.

Error estimates are not part of a tableau. Upstream (for reference; ``δ`` weights ``E₁``):
SRIW1 ``E₁ = h (f_1 + f_2)``, ``E₂ = Σ (beta3_i I_(1,0)/h + beta4_i I_(1,1,1)/h) g_i``, ``δ = 1/6``
(``perform_step/sri.jl`` lines 258, 262; ``alg_utils.jl`` line 135); SOSRI/SOSRI2 the same
``E₂`` with ``E₁ = h Σ_i f_i`` (``sri.jl`` lines 368, 381), ``δ = 1``; SRA1
``E₁ = h (f_1 + f_2)``, ``E₂ = Σ beta2_i (I_(1,0)/h) g_i`` (``sra.jl`` lines 8, 12); SOSRA/SOSRA2
``E₁ = h Σ_i f_i`` and the same ``E₂`` (``sra.jl`` lines 212, 226).
"""

from __future__ import annotations

from hybrideq.tableaus._sde import SRATableau, SRITableau

__all__ = ["SOSRA", "SOSRA2", "SOSRI", "SOSRI2", "SRA1", "SRIW1"]

_COMMIT = "e014b52fb3a6b8df9c541dbd5141a40b687a9d5d"
_ROSSLER = (
    "A. Rößler, Runge-Kutta methods for the strong approximation of solutions of stochastic "
    "differential equations, SIAM J. Numer. Anal. 48 (2010) 922-952"
)
_RACKAUCKAS_NIE = (
    "C. Rackauckas and Q. Nie, Stability-optimized high order methods and stiffness detection "
    "for pathwise stiff stochastic differential equations, arXiv:1804.04344 (2018), building "
    "on " + _ROSSLER
)

# ----------------------------------------------------------------------------- SRIW1
#
# Rößler (2010). TAB_FILE lines 43–75 (constructSRIW1), all exact rationals:
#   c₀ (l.43), c₁ (l.44), A₀ (l.45–50), A₁ (l.51–56), B₀ (l.57–62), B₁ (l.63–68),
#   α (l.70), β₁ (l.72), β₂ = −[1; −4/3; 1/3; 0] (l.73), β₃ (l.74), β₄ (l.75).
# Upstream's hand-written SRIW1 stepper (perform_step/sri.jl lines 231–272) uses the same
# numbers; it writes stage 4's A₁ term as h f(t, y)/4 (line 248), which equals
# A₁[4, 3] h f(t + c₀_3 h, H0_3) = h f(t, y)/4 because row 3 of A₀ and B₀ is zero.
SRIW1: SRITableau = SRITableau(
    name="SRIW1",
    strong_order=1.5,
    c0=(0.0, 3 / 4, 0.0, 0.0),
    c1=(0.0, 1 / 4, 1.0, 1 / 4),
    A0=((), (3 / 4,), (0.0, 0.0), (0.0, 0.0, 0.0)),
    A1=((), (1 / 4,), (1.0, 0.0), (0.0, 0.0, 1 / 4)),
    B0=((), (3 / 2,), (0.0, 0.0), (0.0, 0.0, 0.0)),
    B1=((), (1 / 2,), (-1.0, 0.0), (-5.0, 3.0, 1 / 2)),
    alpha=(1 / 3, 2 / 3, 0.0, 0.0),
    beta1=(-1.0, 4 / 3, 2 / 3, 0.0),
    beta2=(-1.0, 4 / 3, -1 / 3, 0.0),
    beta3=(2.0, -4 / 3, -2 / 3, 0.0),
    beta4=(-2.0, 5 / 3, -2 / 3, 1.0),
    source=(
        f"{_ROSSLER}; SciML/StochasticDiffEq.jl@{_COMMIT} src/tableaus.jl lines 42-83 "
        "(constructSRIW1)"
    ),
)

# ----------------------------------------------------------------------------- SOSRI
#
# Rackauckas & Nie, stability-optimised SRI. SRI_FILE lines 317–367 (SOSRIConstantCache):
#   A₀ a021…a043 (l.317–322), A₁ a121…a143 (l.323–328), B₀ b021…b043 (l.329–334),
#   B₁ b121…b143 (l.335–340), α (l.341–344), c₀ c02…c04 (l.345–347; c01 = 0),
#   c₁ c11…c14 (l.348–351), β₁ (l.352–355), β₂ (l.356–359), β₃ (l.360–363), β₄ (l.364–367).
SOSRI: SRITableau = SRITableau(
    name="SOSRI",
    strong_order=1.5,
    c0=(0.0, -0.04199224421316468, 0.7898405466170333, 3.7504010171562823),
    c1=(0.0, 0.26204282091330466, 0.05879875232001766, 0.758661169101175),
    A0=(
        (),
        (-0.04199224421316468,),
        (2.842612915017106, -2.0527723684000727),
        (4.338237071435815, -2.8895936137439793, 2.3017575594644466),
    ),
    A1=(
        (),
        (0.26204282091330466,),
        (0.20903646383505375, -0.1502377115150361),
        (0.05836595312746999, 0.6149440396332373, 0.08535117634046772),
    ),
    B0=(
        (),
        (-0.21641093549612528,),
        (1.5336352863679572, 0.26066223492647056),
        (-1.0536037558179159, 1.7015284721089472, -0.20725685784180017),
    ),
    B1=(
        (),
        (-0.5119011827621657,),
        (2.67767339866713, -4.9395031322250995),
        (0.15580956238299215, 3.2361551006624674, -1.4223118283355949),
    ),
    alpha=(1.140099274172029, -0.6401334255743456, 0.4736296532772559, 0.026404498125060714),
    beta1=(-1.8453464565104432, 2.688764531100726, -0.2523866501071323, 0.40896857551684956),
    beta2=(0.4969658141589478, -0.5771202869753592, -0.12919702470322217, 0.2093514975196336),
    beta3=(2.8453464565104425, -2.688764531100725, 0.2523866501071322, -0.40896857551684945),
    beta4=(0.11522663875443433, -0.57877086147738, 0.2857851028163886, 0.17775911990655704),
    source=(
        f"{_RACKAUCKAS_NIE}; SciML/StochasticDiffEq.jl@{_COMMIT} src/caches/rossler_caches.jl "
        "lines 316-376 (SOSRIConstantCache)"
    ),
)

# ----------------------------------------------------------------------------- SOSRI2
#
# Rackauckas & Nie. SRI_FILE lines 388–438 (SOSRI2ConstantCache):
#   A₀ (l.388–393), A₁ (l.394–399), B₀ (l.400–405), B₁ (l.406–411), α (l.412–415),
#   c₀ (l.416–418), c₁ (l.419–422), β₁ (l.423–426), β₂ (l.427–430), β₃ (l.431–434),
#   β₄ (l.435–438). The stored nodes c₀_3, c₀_4, c₁_3, c₁_4 are 1 to within 4e-15 and equal the
#   row sums of A₀/A₁ to within 2e-16; they are copied as stored.
SOSRI2: SRITableau = SRITableau(
    name="SOSRI2",
    strong_order=1.5,
    c0=(0.0, 0.13804532298278663, 0.9999999999999992, 0.9999999999999994),
    c1=(0.0, 0.45605532163856893, 0.999999999999996, 0.9999999999999962),
    A0=(
        (),
        (0.13804532298278663,),
        (0.5818361298250374, 0.4181638701749618),
        (0.4670018408674211, 0.8046204792187386, -0.27162232008616016),
    ),
    A1=(
        (),
        (0.45605532163856893,),
        (0.7555807846451692, 0.24441921535482677),
        (0.6981181143266059, 0.3453277086024727, -0.04344582292908241),
    ),
    B0=(
        (),
        (0.08852381537667678,),
        (1.0317752458971061, 0.4563552922077882),
        (1.73078280444124, -0.46089678470929774, -0.9637509618944188),
    ),
    B1=(
        (),
        (0.6753186815412179,),
        (-0.07452812525785148, -0.49783736486149366),
        (-0.5591906709928903, 0.022696571806569924, -0.8984927888368557),
    ),
    alpha=(-0.15036858140642623, 0.7545275856696072, 0.686995463807979, -0.2911544680711602),
    beta1=(-0.45315689727309133, 0.8330937231303951, 0.3792843195533544, 0.24077885458934192),
    beta2=(-0.4994383733810986, 0.9181786186154077, -0.25613778661003145, -0.16260245862427797),
    beta3=(1.4531568972730915, -0.8330937231303933, -0.3792843195533583, -0.24077885458934023),
    beta4=(-0.4976090683622265, 0.9148155835648892, -1.4102107084476505, 0.9930041932449877),
    source=(
        f"{_RACKAUCKAS_NIE}; SciML/StochasticDiffEq.jl@{_COMMIT} src/caches/rossler_caches.jl "
        "lines 387-447 (SOSRI2ConstantCache)"
    ),
)

# ----------------------------------------------------------------------------- SRA1
#
# Rößler (2010). TAB_FILE lines 232–244 (constructSRA1), exact rationals: α (l.232),
# β₁ (l.233), β₂ (l.234), A₀ (l.235–238), B₀ (l.239–242), c₀ (l.243), c₁ (l.244).
# Upstream's hand-written SRA1 stepper (perform_step/sra.jl lines 1–22) uses the same numbers:
# g(t + h) (c₁_1 = 1) carries ΔW and enters stage 2 with B₀[2, 1] = 3/2 (line 7), and
# E₂ = (I_(1,0)/h)(g(t) − g(t + h)) is beta2 = (−1, 1) with c₁ = (1, 0) (line 8).
SRA1: SRATableau = SRATableau(
    name="SRA1",
    strong_order=1.5,
    c0=(0.0, 3 / 4),
    c1=(1.0, 0.0),
    A0=((), (3 / 4,)),
    B0=((), (3 / 2,)),
    alpha=(1 / 3, 2 / 3),
    beta1=(1.0, 0.0),
    beta2=(-1.0, 1.0),
    source=(
        f"{_ROSSLER}; SciML/StochasticDiffEq.jl@{_COMMIT} src/tableaus.jl lines 231-250 "
        "(constructSRA1)"
    ),
)

# ----------------------------------------------------------------------------- SOSRA
#
# Rackauckas & Nie, stability-optimised SRA. SRA_FILE lines 172–191 (SOSRAConstantCache):
#   α (l.172–174), c₀ c02, c03 (l.175–176; c01 = 0), c₁ (l.177–179), β₁ (l.180–182),
#   β₂ (l.183–185), A₀ a21, a31, a32 (l.186–188), B₀ b21, b31, b32 (l.189–191).
SOSRA: SRATableau = SRATableau(
    name="SOSRA",
    strong_order=1.5,
    c0=(0.0, 0.6923962376159507, 1.0),
    c1=(0.0, 0.041248171110700504, 1.0),
    A0=((), (0.6923962376159507,), (-3.1609142252828395, 4.1609142252828395)),
    B0=((), (1.3371632704399763,), (1.442371048468624, 1.8632741501139225)),
    alpha=(0.2889874966892885, 0.6859880440839937, 0.025024459226717772),
    beta1=(-16.792534242221663, 17.514995785380226, 0.27753845684143835),
    beta2=(0.4237535769069274, 0.6010381474428539, -1.0247917243497813),
    source=(
        f"{_RACKAUCKAS_NIE}; SciML/StochasticDiffEq.jl@{_COMMIT} src/caches/sra_caches.jl "
        "lines 171-196 (SOSRAConstantCache)"
    ),
)

# ----------------------------------------------------------------------------- SOSRA2
#
# Rackauckas & Nie. SRA_FILE lines 199–218 (SOSRA2ConstantCache): α (l.199–201),
# c₀ (l.202–203), c₁ (l.204–206), β₁ (l.207–209), β₂ (l.210–212), A₀ (l.213–215),
# B₀ (l.216–218).
SOSRA2: SRATableau = SRATableau(
    name="SOSRA2",
    strong_order=1.5,
    c0=(0.0, 1.0, 1.0),
    c1=(0.0, 1.0, 1.0),
    A0=((), (1.0,), (0.9511849235504364, 0.04881507644956362)),
    B0=((), (0.7686101171003622,), (0.43886792994934987, 0.7490415909204886)),
    alpha=(0.4999999999999998, -0.9683897375354181, 1.4683897375354185),
    beta1=(0.0, 0.92438032145683, 0.07561967854316998),
    beta2=(1.0, -0.8169981105823436, -0.18300188941765633),
    source=(
        f"{_RACKAUCKAS_NIE}; SciML/StochasticDiffEq.jl@{_COMMIT} src/caches/sra_caches.jl "
        "lines 198-223 (SOSRA2ConstantCache)"
    ),
)
