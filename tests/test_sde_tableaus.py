"""Checks of the stochastic Runge–Kutta tableaus (SRI, SRA) in ``hybrideq.tableaus.sde``.

- Rößler's (SIAM J. Numer. Anal. 48 (2010) 922–952) conditions for strong order 1.5: the 25
  conditions for SRI methods and the 8 for SRA methods, in the form StochasticDiffEq.jl lists
  them (``checkSRIOrder``/``checkSRAOrder``, ``src/tableaus.jl`` lines 409–459 at e014b52f),
  plus the node definitions ``c0 = A0 e`` (and ``c1 = A1 e`` for SRI). Each condition is
  evaluated in exact rational arithmetic on the stored floats, so the residual printed in a
  failure is that of the tableau, not of the check's own rounding.
- SRIW1's and SRA1's floats are the rounded rationals of the upstream tableau, and those
  rationals satisfy every condition exactly.
- A corrupted coefficient fails a condition (so the checks cannot pass trivially).
- Fixed-step strong convergence of small NumPy reference steppers written from the
  conventions in ``_sde`` (not from any engine): slope ≈ 1.5 for every tableau.
- Every ``__post_init__`` check on a deliberately broken copy.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

from hybrideq.tableaus._sde import SRATableau, SRITableau
from hybrideq.tableaus.sde import SOSRA, SOSRA2, SOSRI, SOSRI2, SRA1, SRIW1

SRI = [SRIW1, SOSRI, SOSRI2]
SRA = [SRA1, SOSRA, SOSRA2]
TOL = 1e-12

Vec = list[Fraction]
Mat = list[list[Fraction]]
Exact = dict[str, Any]  # field name -> exact vector/matrix of a tableau


# ----------------------------------------------------------------------------- exact algebra


def _vec(v: Sequence[float]) -> Vec:
    return [Fraction(x) for x in v]


def _mat(rows: Sequence[Sequence[float | Fraction]]) -> Mat:
    s = len(rows)
    return [
        [Fraction(row[j]) if j < i else Fraction(0) for j in range(s)] for i, row in enumerate(rows)
    ]


def _mv(m: Mat, v: Vec) -> Vec:
    return [sum((a * b for a, b in zip(row, v, strict=True)), Fraction(0)) for row in m]


def _dot(u: Vec, v: Vec) -> Fraction:
    return sum((a * b for a, b in zip(u, v, strict=True)), Fraction(0))


def _sq(v: Vec) -> Vec:
    return [x * x for x in v]


# Each condition: (label, function of the exact tableau returning the left-hand side, target).
Cond = tuple[str, Callable[[Exact], Fraction], Fraction]


def _sri_conditions() -> list[Cond]:
    def e(t: Exact) -> Vec:
        return [Fraction(1)] * len(t["alpha"])

    def vdot(k: str, rhs: Callable[[Exact], Vec]) -> Callable[[Exact], Fraction]:
        return lambda t: _dot(t[k], rhs(t))

    def B1e(t: Exact) -> Vec:
        return _mv(t["B1"], e(t))

    def B0e(t: Exact) -> Vec:
        return _mv(t["B0"], e(t))

    def A0e(t: Exact) -> Vec:
        return _mv(t["A0"], e(t))

    def A1e(t: Exact) -> Vec:
        return _mv(t["A1"], e(t))

    def B1B1e(t: Exact) -> Vec:
        return _mv(t["B1"], B1e(t))

    def A1B0e(t: Exact) -> Vec:
        return _mv(t["A1"], B0e(t))

    F = Fraction
    conds: list[Cond] = [
        ("1: αᵀe = 1", vdot("alpha", e), F(1)),
        ("2: β1ᵀe = 1", vdot("beta1", e), F(1)),
        ("3: β2ᵀe = 0", vdot("beta2", e), F(0)),
        ("4: β3ᵀe = 0", vdot("beta3", e), F(0)),
        ("5: β4ᵀe = 0", vdot("beta4", e), F(0)),
        ("6: β1ᵀB1e = 0", vdot("beta1", B1e), F(0)),
        ("7: β2ᵀB1e = 1", vdot("beta2", B1e), F(1)),
        ("8: β3ᵀB1e = 0", vdot("beta3", B1e), F(0)),
        ("9: β4ᵀB1e = 0", vdot("beta4", B1e), F(0)),
        ("10: αᵀA0e = 1/2", vdot("alpha", A0e), F(1, 2)),
        ("11: αᵀB0e = 1", vdot("alpha", B0e), F(1)),
        ("12: αᵀ(B0e)² = 3/2", vdot("alpha", lambda t: _sq(B0e(t))), F(3, 2)),
        ("13: β1ᵀA1e = 1", vdot("beta1", A1e), F(1)),
        ("14: β2ᵀA1e = 0", vdot("beta2", A1e), F(0)),
        ("15: β3ᵀA1e = −1", vdot("beta3", A1e), F(-1)),
        ("16: β4ᵀA1e = 0", vdot("beta4", A1e), F(0)),
        ("17: β1ᵀ(B1e)² = 1", vdot("beta1", lambda t: _sq(B1e(t))), F(1)),
        ("18: β2ᵀ(B1e)² = 0", vdot("beta2", lambda t: _sq(B1e(t))), F(0)),
        ("19: β3ᵀ(B1e)² = −1", vdot("beta3", lambda t: _sq(B1e(t))), F(-1)),
        ("20: β4ᵀ(B1e)² = 2", vdot("beta4", lambda t: _sq(B1e(t))), F(2)),
        ("21: β1ᵀB1(B1e) = 0", vdot("beta1", B1B1e), F(0)),
        ("22: β2ᵀB1(B1e) = 0", vdot("beta2", B1B1e), F(0)),
        ("23: β3ᵀB1(B1e) = 0", vdot("beta3", B1B1e), F(0)),
        ("24: β4ᵀB1(B1e) = 1", vdot("beta4", B1B1e), F(1)),
        (
            "25: β1ᵀA1(B0e)/2 + β3ᵀA1(B0e)/3 = 0",
            lambda t: _dot(t["beta1"], A1B0e(t)) / 2 + _dot(t["beta3"], A1B0e(t)) / 3,
            F(0),
        ),
        # The time conditions in terms of the stored nodes (equivalent to 10, 13–16 when
        # c0 = A0 e and c1 = A1 e, which the test_*_nodes_are_row_sums tests check).
        ("10c: αᵀc0 = 1/2", vdot("alpha", lambda t: t["c0"]), F(1, 2)),
        ("13c: β1ᵀc1 = 1", vdot("beta1", lambda t: t["c1"]), F(1)),
        ("14c: β2ᵀc1 = 0", vdot("beta2", lambda t: t["c1"]), F(0)),
        ("15c: β3ᵀc1 = −1", vdot("beta3", lambda t: t["c1"]), F(-1)),
        ("16c: β4ᵀc1 = 0", vdot("beta4", lambda t: t["c1"]), F(0)),
    ]
    return conds


def _sra_conditions() -> list[Cond]:
    def e(t: Exact) -> Vec:
        return [Fraction(1)] * len(t["alpha"])

    def B0e(t: Exact) -> Vec:
        return _mv(t["B0"], e(t))

    def A0e(t: Exact) -> Vec:
        return _mv(t["A0"], e(t))

    def vdot(k: str, rhs: Callable[[Exact], Vec]) -> Callable[[Exact], Fraction]:
        return lambda t: _dot(t[k], rhs(t))

    def c(k: str) -> Callable[[Exact], Vec]:
        return lambda t: t[k]

    F = Fraction
    return [
        ("1: αᵀe = 1", vdot("alpha", e), F(1)),
        ("2: β1ᵀe = 1", vdot("beta1", e), F(1)),
        ("3: β2ᵀe = 0", vdot("beta2", e), F(0)),
        ("4: αᵀB0e = 1", vdot("alpha", B0e), F(1)),
        ("5: αᵀA0e = 1/2", vdot("alpha", A0e), F(1, 2)),
        ("6: αᵀ(B0e)² = 3/2", vdot("alpha", lambda t: _sq(B0e(t))), F(3, 2)),
        ("7: β1ᵀc1 = 1", vdot("beta1", c("c1")), F(1)),
        ("8: β2ᵀc1 = −1", vdot("beta2", c("c1")), F(-1)),
        ("5c: αᵀc0 = 1/2", vdot("alpha", c("c0")), F(1, 2)),
    ]


SRI_CONDITIONS = _sri_conditions()
SRA_CONDITIONS = _sra_conditions()
_MATRICES = ("A0", "A1", "B0", "B1")


def _exact(tab: SRITableau | SRATableau) -> Exact:
    out: Exact = {}
    for f in dataclasses.fields(tab):
        v = getattr(tab, f.name)
        if f.name in _MATRICES:
            out[f.name] = _mat(v)
        elif isinstance(v, tuple):
            out[f.name] = _vec(v)
    return out


def _residuals(tab: SRITableau | SRATableau, conds: list[Cond]) -> dict[str, float]:
    t = _exact(tab)
    return {label: float(abs(fn(t) - target)) for label, fn, target in conds}


# ----------------------------------------------------------------------------- order conditions


@pytest.mark.parametrize("tab", SRI, ids=lambda t: t.name)
@pytest.mark.parametrize("cond", SRI_CONDITIONS, ids=lambda c: c[0].split(":")[0])
def test_sri_order_conditions(tab: SRITableau, cond: Cond) -> None:
    label, fn, target = cond
    value = fn(_exact(tab))
    assert abs(float(value - target)) <= TOL, (
        f"{tab.name} {label}: residual {float(value - target):.3e}"
    )


@pytest.mark.parametrize("tab", SRA, ids=lambda t: t.name)
@pytest.mark.parametrize("cond", SRA_CONDITIONS, ids=lambda c: c[0].split(":")[0])
def test_sra_order_conditions(tab: SRATableau, cond: Cond) -> None:
    label, fn, target = cond
    value = fn(_exact(tab))
    assert abs(float(value - target)) <= TOL, (
        f"{tab.name} {label}: residual {float(value - target):.3e}"
    )


def test_condition_residuals_are_at_rounding_level() -> None:
    """Record how closely the optimised tableaus hold: all within 1e-12; most within 1e-14.

    SOSRI2's condition 25 is the loosest (about 1.2e-13), then SOSRI2's 11 (about 3e-15).
    """
    worst = {t.name: max(_residuals(t, SRI_CONDITIONS).values()) for t in SRI} | {
        t.name: max(_residuals(t, SRA_CONDITIONS).values()) for t in SRA
    }
    assert worst["SRIW1"] < 1e-15
    assert worst["SRA1"] < 1e-15
    assert worst["SOSRI"] < 1e-15
    assert worst["SOSRI2"] < 2e-13
    assert worst["SOSRA"] < 5e-15
    assert worst["SOSRA2"] < 5e-15
    sosri2 = _residuals(SOSRI2, SRI_CONDITIONS)
    assert max(v for k, v in sosri2.items() if not k.startswith("25")) < 5e-15


@pytest.mark.parametrize("tab", SRI, ids=lambda t: t.name)
def test_sri_nodes_are_row_sums(tab: SRITableau) -> None:
    for c, a in ((tab.c0, tab.A0), (tab.c1, tab.A1)):
        for i, row in enumerate(a):
            assert abs(Fraction(c[i]) - sum(map(Fraction, row), Fraction(0))) <= 1e-15


@pytest.mark.parametrize("tab", SRA, ids=lambda t: t.name)
def test_sra_nodes_are_row_sums(tab: SRATableau) -> None:
    for i, row in enumerate(tab.A0):
        assert abs(Fraction(tab.c0[i]) - sum(map(Fraction, row), Fraction(0))) <= 1e-15


@pytest.mark.parametrize("tab", [SRIW1, SRA1], ids=lambda t: t.name)
def test_rational_tableaus_are_rounded_rationals_that_satisfy_the_conditions_exactly(
    tab: SRITableau | SRATableau,
) -> None:
    """Recover upstream's rationals (denominators ≤ 6) and check them in exact arithmetic."""
    exact: Exact = {}
    for f in dataclasses.fields(tab):
        v = getattr(tab, f.name)
        if f.name in _MATRICES:
            rows = [[Fraction(x).limit_denominator(6) for x in row] for row in v]
            for row, frow in zip(v, rows, strict=True):
                assert [float(q) for q in frow] == list(row)
            exact[f.name] = _mat(rows)
        elif isinstance(v, tuple):
            q = [Fraction(x).limit_denominator(6) for x in v]
            assert [float(x) for x in q] == list(v)
            exact[f.name] = q
    conds = SRI_CONDITIONS if isinstance(tab, SRITableau) else SRA_CONDITIONS
    for label, fn, target in conds:
        assert fn(exact) == target, label


# ----------------------------------------------------------------------------- guards


def _bump(vec: tuple[float, ...], i: int, j: int, d: float) -> tuple[float, ...]:
    out = list(vec)
    out[i] += d
    out[j] -= d
    return tuple(out)


@pytest.mark.parametrize("tab", SRI, ids=lambda t: t.name)
def test_sri_corrupted_coefficients_fail(tab: SRITableau) -> None:
    # β4 keeps its zero sum (so the tableau still constructs) but fails condition 20 or 24.
    bad = dataclasses.replace(tab, beta4=_bump(tab.beta4, 3, 1, 1e-6))
    res = _residuals(bad, SRI_CONDITIONS)
    assert max(res.values()) > 1e-8
    assert res["3: β2ᵀe = 0"] <= TOL
    # A B1 entry is not checked on construction; condition 20 (β4ᵀ(B1e)² = 2) catches it.
    rows = [list(r) for r in tab.B1]
    rows[3][2] += 1e-6
    bad = dataclasses.replace(tab, B1=tuple(tuple(r) for r in rows))
    res = _residuals(bad, SRI_CONDITIONS)
    assert res["20: β4ᵀ(B1e)² = 2"] > 1e-8


@pytest.mark.parametrize("tab", SRA, ids=lambda t: t.name)
def test_sra_corrupted_coefficients_fail(tab: SRATableau) -> None:
    bad = dataclasses.replace(tab, alpha=_bump(tab.alpha, 0, 1, 1e-6))
    res = _residuals(bad, SRA_CONDITIONS)
    assert res["4: αᵀB0e = 1"] > 1e-8
    bad = dataclasses.replace(tab, c1=(tab.c1[0] + 1e-6, *tab.c1[1:]))
    assert max(_residuals(bad, SRA_CONDITIONS).values()) > 1e-8


# ----------------------------------------------------------------------------- strong order


def _sri_step(
    tab: SRITableau,
    f: Callable[[float, np.ndarray], np.ndarray],
    g: Callable[[float, np.ndarray], np.ndarray],
    t: float,
    y: np.ndarray,
    h: float,
    dW: np.ndarray,
    I10: np.ndarray,
) -> np.ndarray:
    sh = math.sqrt(h)
    chi1 = (dW**2 - h) / (2 * sh)
    chi2 = I10 / h
    chi3 = (dW**3 - 3 * h * dW) / (6 * h)
    fs: list[np.ndarray] = []
    gs: list[np.ndarray] = []
    for i in range(tab.stages):
        H0 = y + h * sum((a * fs[j] for j, a in enumerate(tab.A0[i])), np.zeros_like(y))
        H0 = H0 + chi2 * sum((b * gs[j] for j, b in enumerate(tab.B0[i])), np.zeros_like(y))
        H1 = y + h * sum((a * fs[j] for j, a in enumerate(tab.A1[i])), np.zeros_like(y))
        H1 = H1 + sh * sum((b * gs[j] for j, b in enumerate(tab.B1[i])), np.zeros_like(y))
        fs.append(f(t + tab.c0[i] * h, H0))
        gs.append(g(t + tab.c1[i] * h, H1))
    out = y + h * sum(a * fi for a, fi in zip(tab.alpha, fs, strict=True))
    for i, gi in enumerate(gs):
        w = tab.beta1[i] * dW + tab.beta2[i] * chi1 + tab.beta3[i] * chi2 + tab.beta4[i] * chi3
        out = out + w * gi
    return out


def _sra_step(
    tab: SRATableau,
    f: Callable[[float, np.ndarray], np.ndarray],
    g: Callable[[float], float],
    t: float,
    y: np.ndarray,
    h: float,
    dW: np.ndarray,
    I10: np.ndarray,
) -> np.ndarray:
    chi2 = I10 / h
    gs = [g(t + c * h) for c in tab.c1]
    fs: list[np.ndarray] = []
    for i in range(tab.stages):
        H = y + h * sum((a * fs[j] for j, a in enumerate(tab.A0[i])), np.zeros_like(y))
        H = H + chi2 * sum(b * gs[j] for j, b in enumerate(tab.B0[i]))
        fs.append(f(t + tab.c0[i] * h, H))
    out = y + h * sum(a * fi for a, fi in zip(tab.alpha, fs, strict=True))
    return out + sum(
        (b1 * dW + b2 * chi2) * gi for b1, b2, gi in zip(tab.beta1, tab.beta2, gs, strict=True)
    )


def _brownian(
    rng: np.random.Generator, paths: int, n: int, h: float
) -> tuple[np.ndarray, np.ndarray]:
    """Increments ΔW and I_(1,0) = ∫(W(s) − W(t)) ds on ``n`` steps of size ``h``."""
    dW = rng.normal(0.0, math.sqrt(h), (n, paths))
    dZ = rng.normal(0.0, math.sqrt(h), (n, paths))
    return dW, h * (dW + dZ / math.sqrt(3.0)) / 2


def _coarsen(dW: np.ndarray, I10: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray]:
    """Merge pairs of steps of size ``h``: I_(1,0) adds ``h ΔW_first`` for the second half."""
    a, b = dW[0::2], dW[1::2]
    return a + b, I10[0::2] + I10[1::2] + h * a


def _slope(hs: list[float], errs: list[float]) -> float:
    return float(np.polyfit(np.log(hs), np.log(errs), 1)[0])


@pytest.mark.parametrize("tab", SRI, ids=lambda t: t.name)
def test_sri_strong_order_on_geometric_brownian_motion(tab: SRITableau) -> None:
    """dy = a y dt + b y dW (Itô), y(T) = y0 exp((a − b²/2) T + b W(T))."""
    a, b, T, y0, paths = 0.5, 0.5, 1.0, 1.0, 2000
    rng = np.random.default_rng(12345)
    n = 2**6
    h = T / n
    dW, I10 = _brownian(rng, paths, n, h)
    exact = y0 * np.exp((a - b * b / 2) * T + b * dW.sum(axis=0))
    hs: list[float] = []
    errs: list[float] = []
    while n >= 2**3:
        y = np.full(paths, y0)
        for k in range(n):
            y = _sri_step(tab, lambda t, u: a * u, lambda t, u: b * u, k * h, y, h, dW[k], I10[k])
        hs.append(h)
        errs.append(float(np.mean(np.abs(y - exact))))
        dW, I10 = _coarsen(dW, I10, h)
        n //= 2
        h *= 2
    slope = _slope(hs, errs)
    assert 1.3 < slope < 2.2, (tab.name, slope, errs)


@pytest.mark.parametrize("tab", SRA, ids=lambda t: t.name)
def test_sra_strong_order_on_nonlinear_time_dependent_additive_noise(tab: SRATableau) -> None:
    """dy = (sin(y) − y + cos(t)) dt + (1 + t²) dW against the same method on a 2⁻¹⁰ grid."""
    T, paths = 1.0, 2000
    rng = np.random.default_rng(2024)

    def f(t: float, u: np.ndarray) -> np.ndarray:
        return np.sin(u) - u + math.cos(t)

    def g(t: float) -> float:
        return 1.0 + t * t

    n = 2**10
    h = T / n
    dW, I10 = _brownian(rng, paths, n, h)
    ref: np.ndarray | None = None
    hs: list[float] = []
    errs: list[float] = []
    while n >= 2**3:
        y = np.full(paths, 0.5)
        for k in range(n):
            y = _sra_step(tab, f, g, k * h, y, h, dW[k], I10[k])
        if ref is None:
            ref = y
        elif n <= 2**6:
            hs.append(h)
            errs.append(float(np.mean(np.abs(y - ref))))
        dW, I10 = _coarsen(dW, I10, h)
        n //= 2
        h *= 2
    slope = _slope(hs, errs)
    assert 1.3 < slope < 2.2, (tab.name, slope, errs)


# ----------------------------------------------------------------------------- validation


def test_stages_and_frozen() -> None:
    assert [t.stages for t in SRI] == [4, 4, 4]
    assert [t.stages for t in SRA] == [2, 3, 3]
    assert all(t.strong_order == 1.5 for t in SRI + SRA)
    assert all("e014b52fb3a6b8df9c541dbd5141a40b687a9d5d" in t.source for t in SRI + SRA)
    with pytest.raises(dataclasses.FrozenInstanceError):
        SRIW1.alpha = (1.0,)  # type: ignore[misc]


def _rows(
    rows: tuple[tuple[float, ...], ...], i: int, new: tuple[float, ...]
) -> tuple[tuple[float, ...], ...]:
    out = list(rows)
    out[i] = new
    return tuple(out)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"beta3": (2.0, -4 / 3, -2 / 3)}, r"beta3 must have 4 entries"),
        ({"c1": (0.0, 0.25, 1.0)}, r"c1 must have 4 entries"),
        ({"alpha": ()}, r"alpha must have at least one entry"),
        ({"B1": SRIW1.B1[:3]}, r"B1 must have 4 rows"),
        (
            {"B1": _rows(SRIW1.B1, 2, (-1.0, 0.0, 0.0))},
            r"row 2 of B1 must have 2 entries \(strictly lower",
        ),
        ({"A0": _rows(SRIW1.A0, 1, ())}, r"row 1 of A0 must have 1 entries"),
        ({"A1": _rows(SRIW1.A1, 3, (0.0, 0.0, math.nan))}, r"A1\[3\]\[2\] must be a finite number"),
        ({"B0": _rows(SRIW1.B0, 1, (math.inf,))}, r"B0\[1\]\[0\] must be a finite number"),
        ({"beta4": (-2.0, 5 / 3, math.nan, 1.0)}, r"beta4\[2\] must be a finite number"),
        ({"c0": (0.0, 0.7, 0.0, 0.0)}, r"c0\[1\] = 0.7 differs from the row sum 0.75 of A0"),
        ({"c1": (0.0, 0.25, 1.0, 0.3)}, r"c1\[3\] = 0.3 differs from the row sum 0.25 of A1"),
        ({"alpha": (1 / 3, 2 / 3, 0.1, 0.0)}, r"the entries of alpha sum to"),
        ({"beta1": (-1.0, 4 / 3, 2 / 3, 0.5)}, r"the entries of beta1 sum to"),
        ({"beta2": (-1.0, 4 / 3, -1 / 3, 0.5)}, r"the entries of beta2 sum to"),
        ({"beta3": (2.0, -4 / 3, -2 / 3, 0.5)}, r"the entries of beta3 sum to"),
        ({"beta4": (-2.0, 5 / 3, -2 / 3, 1.5)}, r"the entries of beta4 sum to"),
        ({"strong_order": 0.0}, r"strong_order must be positive"),
    ],
)
def test_sri_validation(change: Exact, match: str) -> None:
    with pytest.raises(ValueError, match=r"^SRIW1: " + match):
        dataclasses.replace(SRIW1, **change)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"c1": (1.0,)}, r"c1 must have 2 entries"),
        ({"beta2": (-1.0, 1.0, 0.0)}, r"beta2 must have 2 entries"),
        ({"A0": ((0.0,), (0.75,))}, r"row 0 of A0 must have 0 entries"),
        ({"B0": ((), (1.5, 0.0))}, r"row 1 of B0 must have 1 entries"),
        ({"B0": ((), (math.nan,))}, r"B0\[1\]\[0\] must be a finite number"),
        ({"c1": (1.0, math.inf)}, r"c1\[1\] must be a finite number"),
        ({"c0": (0.0, 0.5)}, r"c0\[1\] = 0.5 differs from the row sum 0.75 of A0"),
        ({"alpha": (0.5, 0.6)}, r"the entries of alpha sum to"),
        ({"beta1": (1.0, 0.1)}, r"the entries of beta1 sum to"),
        ({"beta2": (-1.0, 1.1)}, r"the entries of beta2 sum to"),
    ],
)
def test_sra_validation(change: Exact, match: str) -> None:
    with pytest.raises(ValueError, match=r"^SRA1: " + match):
        dataclasses.replace(SRA1, **change)
