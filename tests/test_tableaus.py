"""Checks of the explicit Runge–Kutta tableaus in ``hybrideq.tableaus``.

Every tableau is checked against the Butcher order conditions (all rooted trees, generated
here), its embedded pair and its continuous extension against theirs, the sign of ``btilde``
against the published embedded weights, and each method once more numerically on a linear
problem against ``scipy.linalg.expm``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import cache

import numpy as np
import pytest
import scipy.linalg

from hybrideq.tableaus import BS3, DP5, EULER, RK4, TSIT5, VERN7, ExplicitRKTableau

ALL = [TSIT5, DP5, VERN7, BS3, EULER, RK4]
ADAPTIVE = [t for t in ALL if t.is_adaptive]
WITH_DENSE = [t for t in ALL if t.dense is not None]
IDS = [t.name for t in ALL]

ORDER_TOL = 1e-10


# --------------------------------------------------------------------------- rooted trees
# A rooted tree is the sorted tuple of its children's subtrees; the single node is ``()``.
# Python compares nested tuples lexicographically, so sorting gives a canonical form.
Tree = tuple


def _grafts(tree: Tree) -> Iterator[Tree]:
    """All trees obtained by attaching one new leaf to some node of ``tree``."""
    yield tuple(sorted((*tree, ())))  # a new leaf on the root
    for i, child in enumerate(tree):
        for grown in _grafts(child):
            yield tuple(sorted((*tree[:i], grown, *tree[i + 1 :])))


@cache
def trees_of_order(n: int) -> tuple[Tree, ...]:
    """All rooted trees with ``n`` nodes (each once), built by grafting leaves."""
    if n == 1:
        return ((),)
    found = {g for t in trees_of_order(n - 1) for g in _grafts(t)}
    return tuple(sorted(found))


def tree_order(tree: Tree) -> int:
    return 1 + sum(tree_order(c) for c in tree)


def tree_gamma(tree: Tree) -> int:
    return tree_order(tree) * math.prod(tree_gamma(c) for c in tree)


def test_tree_counts() -> None:
    # OEIS A000081: 1, 1, 2, 4, 9, 20, 48, 115; 85 trees of order <= 7.
    assert [len(trees_of_order(n)) for n in range(1, 9)] == [1, 1, 2, 4, 9, 20, 48, 115]
    assert sum(len(trees_of_order(n)) for n in range(1, 8)) == 85
    assert tree_gamma(((), ())) == 3 and tree_gamma((((),),)) == 6


# ------------------------------------------------------------------------ tableau helpers
def full_matrix(tab: ExplicitRKTableau) -> np.ndarray:
    """Butcher matrix over the stages followed by the extra (interpolation-only) stages."""
    s, n = tab.stages, tab.stages + len(tab.extra_c)
    a = np.zeros((n, n))
    for i, row in enumerate(tab.a):
        a[i, :i] = row
    for m, row in enumerate(tab.extra_a):
        a[s + m, : s + m] = row
    return a


def dense_matrix(tab: ExplicitRKTableau) -> np.ndarray:
    assert tab.dense is not None
    deg = max(len(r) for r in tab.dense)
    d = np.zeros((len(tab.dense), deg))
    for i, row in enumerate(tab.dense):
        d[i, : len(row)] = row
    return d


def dense_weights(tab: ExplicitRKTableau, theta: float) -> np.ndarray:
    """``b_i(θ)`` for every stage and extra stage."""
    d = dense_matrix(tab)
    powers = theta ** np.arange(1, d.shape[1] + 1)
    return d @ powers


class StageWeights:
    """Stage-level elementary weights ``g_i(t)`` (``Φ(t) = Σ b_i g_i(t)``) for one tableau."""

    def __init__(self, tab: ExplicitRKTableau) -> None:
        self.a = full_matrix(tab)
        self._memo: dict[Tree, np.ndarray] = {}

    def __call__(self, tree: Tree) -> np.ndarray:
        if tree not in self._memo:
            g = np.ones(self.a.shape[0])
            for child in tree:
                g = g * (self.a @ self(child))
            self._memo[tree] = g
        return self._memo[tree]


def order_residuals(tab: ExplicitRKTableau, weights: np.ndarray, n: int) -> list[float]:
    """``|Φ(t) − 1/γ(t)|`` for every tree of order ``n`` (weights padded over extras)."""
    g = StageWeights(tab)
    w = np.zeros(g.a.shape[0])
    w[: len(weights)] = weights
    return [abs(float(w @ g(t)) - 1.0 / tree_gamma(t)) for t in trees_of_order(n)]


# ----------------------------------------------------------------------- basic structure
@pytest.mark.parametrize("tab", ALL, ids=IDS)
def test_consistency(tab: ExplicitRKTableau) -> None:
    assert math.fsum(tab.b) == pytest.approx(1.0, abs=1e-14)
    assert tab.c[0] == 0.0
    for i, row in enumerate(tab.a):
        assert len(row) == i
        assert math.fsum(row) == pytest.approx(tab.c[i], abs=1e-12)
    for m, row in enumerate(tab.extra_a):
        assert len(row) == tab.stages + m
        assert math.fsum(row) == pytest.approx(tab.extra_c[m], abs=1e-12)
    if tab.is_adaptive:
        assert tab.btilde is not None and len(tab.btilde) == tab.stages
        assert abs(math.fsum(tab.btilde)) < 1e-14
        assert tab.embedded_order is not None and tab.embedded_order < tab.order
    else:
        assert tab.embedded_order is None
    if tab.fsal:
        assert tab.c[-1] == 1.0
        assert tab.b[-1] == 0.0
        assert tab.a[-1] == pytest.approx(tab.b[:-1], abs=1e-15)
    if tab.stiffness_stages is not None:
        i, j = tab.stiffness_stages
        assert i != j and tab.c[i] == tab.c[j] == 1.0


def test_metadata() -> None:
    expected = {
        # name: (stages, order, embedded, fsal, dense_order, extras, stability_size)
        "Tsit5": (7, 5, 4, True, 4, 0, 3.5068),
        "DP5": (7, 5, 4, True, 4, 0, 3.3066),
        "Vern7": (10, 7, 6, False, 7, 6, 4.64),
        "BS3": (4, 3, 2, True, None, 0, None),
        "Euler": (1, 1, None, False, None, 0, None),
        "RK4": (4, 4, None, False, None, 0, None),
    }
    for tab in ALL:
        got = (
            tab.stages,
            tab.order,
            tab.embedded_order,
            tab.fsal,
            tab.dense_order,
            len(tab.extra_c),
            tab.stability_size,
        )
        assert got == expected[tab.name], tab.name
        assert tab.source
    assert TSIT5.stiffness_stages == (5, 6) and DP5.stiffness_stages == (5, 6)
    assert VERN7.stiffness_stages == (8, 9) and BS3.stiffness_stages is None
    assert VERN7.extra_c == (1.0, 0.29, 0.125, 0.25, 0.53, 0.79)


# ------------------------------------------------------------------------- order conditions
@pytest.mark.parametrize("tab", ALL, ids=IDS)
def test_order_conditions_of_b(tab: ExplicitRKTableau) -> None:
    b = np.array(tab.b)
    for n in range(1, tab.order + 1):
        res = order_residuals(tab, b, n)
        assert max(res) < ORDER_TOL, (tab.name, n, max(res))
    # The stated order is exact: some tree of order + 1 is violated.
    assert max(order_residuals(tab, b, tab.order + 1)) > 1e-6


@pytest.mark.parametrize("tab", ADAPTIVE, ids=[t.name for t in ADAPTIVE])
def test_order_conditions_of_embedded_weights(tab: ExplicitRKTableau) -> None:
    assert tab.btilde is not None and tab.embedded_order is not None
    bhat = np.array(tab.b) - np.array(tab.btilde)
    for n in range(1, tab.embedded_order + 1):
        res = order_residuals(tab, bhat, n)
        assert max(res) < ORDER_TOL, (tab.name, n, max(res))
    assert max(order_residuals(tab, bhat, tab.embedded_order + 1)) > 1e-6


# Published embedded weights b̂ (they fix the sign of btilde = b − b̂, which the order
# conditions cannot: 2b − b̂ satisfies the same ones). Tsit5 and Vern7: the commented b̂ in
# OrdinaryDiffEq's tsit_tableaus.jl (lines 79-85) and verner_tableaus.jl (lines 1183-1188);
# DP5 and BS3: the rational b̂ of Dormand & Prince (1980) and Bogacki & Shampine (1989).
PUBLISHED_BHAT = {
    "Tsit5": (
        0.09468075576583945,
        0.009183565540343254,
        0.4877705284247616,
        1.234297566930479,
        -2.7077123499835256,
        1.866628418170587,
        0.015151515151515152,
    ),
    "DP5": (5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40),
    "Vern7": (
        0.044608606606341174,
        0.0,
        0.0,
        0.26716403785713727,
        0.22010183001772932,
        0.2188431703143157,
        0.22898717054112028,
        0.0,
        0.0,
        0.02029518466335628,
    ),
    "BS3": (7 / 24, 1 / 4, 1 / 3, 1 / 8),
}


@pytest.mark.parametrize("tab", ADAPTIVE, ids=[t.name for t in ADAPTIVE])
def test_btilde_is_b_minus_bhat(tab: ExplicitRKTableau) -> None:
    assert tab.btilde is not None
    bhat = np.array(tab.b) - np.array(tab.btilde)
    np.testing.assert_allclose(bhat, PUBLISHED_BHAT[tab.name], rtol=0, atol=1e-15)


# ---------------------------------------------------------------------------- dense output
@pytest.mark.parametrize("tab", ALL, ids=IDS)
def test_dense_presence(tab: ExplicitRKTableau) -> None:
    if tab.name in ("BS3", "Euler", "RK4"):
        assert tab.dense is None and tab.dense_order is None
    else:
        assert tab.dense is not None and tab.dense_order is not None
        assert len(tab.dense) == tab.stages + len(tab.extra_c)
        assert tab.dense_order <= tab.order


@pytest.mark.parametrize("tab", WITH_DENSE, ids=[t.name for t in WITH_DENSE])
def test_dense_at_one_is_b(tab: ExplicitRKTableau) -> None:
    expected = np.zeros(tab.stages + len(tab.extra_c))
    expected[: tab.stages] = tab.b
    np.testing.assert_allclose(dense_weights(tab, 1.0), expected, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(dense_weights(tab, 0.0), 0.0)


# Verner's published 7th-order Vern7 interpolant (40-digit data in OrdinaryDiffEq, identical
# to Verner's own files) satisfies every continuous condition up to order 6 exactly (1e-40 in
# 50-digit arithmetic) but 12 of the 48 order-7 ones only to about 3e-7 (max over θ ∈ [0, 1],
# exact arithmetic; 0 at θ = 1). That is a property of the published coefficients, not a
# transcription error; its effect (~3e-7 h^7) is far below the h^8 terms for any usable h.
TOP_ORDER_DENSE_TOL = {"Vern7": 5e-7}


@pytest.mark.parametrize("tab", WITH_DENSE, ids=[t.name for t in WITH_DENSE])
def test_dense_continuous_order_conditions(tab: ExplicitRKTableau) -> None:
    assert tab.dense_order is not None
    g = StageWeights(tab)
    for theta in (0.1, 0.25, 0.37, 0.5, 0.73, 0.95):
        w = dense_weights(tab, theta)
        for n in range(1, tab.dense_order + 1):
            tol = ORDER_TOL
            if n == tab.dense_order:
                tol = TOP_ORDER_DENSE_TOL.get(tab.name, ORDER_TOL)
            for t in trees_of_order(n):
                lhs = float(w @ g(t))
                rhs = theta**n / tree_gamma(t)
                assert abs(lhs - rhs) < tol, (tab.name, theta, t, lhs - rhs)
        # and not of a higher order
        n = tab.dense_order + 1
        worst = max(abs(float(w @ g(t)) - theta**n / tree_gamma(t)) for t in trees_of_order(n))
        assert worst > 1e-8, (tab.name, theta)


# ----------------------------------------------------------------- numerical convergence
MAT = np.array([[-0.4, 2.0], [-1.5, -0.3]])
Y0 = np.array([1.0, 0.5])
T_END = 1.0


def _stages(tab: ExplicitRKTableau, y: np.ndarray, h: float, extras: bool) -> np.ndarray:
    a = full_matrix(tab)
    n = a.shape[0] if extras else tab.stages
    k = np.zeros((n, y.size))
    for i in range(n):
        k[i] = MAT @ (y + h * (a[i, :i] @ k[:i]))
    return k


def _integrate(tab: ExplicitRKTableau, steps: int, theta: float | None = None) -> np.ndarray:
    """``steps`` fixed steps to ``T_END``, or, with ``theta``, the interpolant in the last one."""
    h = T_END / steps
    y = Y0.copy()
    b = np.array(tab.b)
    for step in range(steps):
        last = step == steps - 1
        k = _stages(tab, y, h, extras=last and theta is not None)
        if last and theta is not None:
            return y + h * (dense_weights(tab, theta) @ k)
        y = y + h * (b @ k[: tab.stages])
    return y


def _slope(hs: list[float], errs: list[float]) -> float:
    return float(np.polyfit(np.log(hs), np.log(errs), 1)[0])


# steps per run: errors stay well above round-off and inside the asymptotic range
STEPS = {
    "Euler": [64, 128, 256, 512],
    "RK4": [8, 16, 32, 64],
    "BS3": [16, 32, 64, 128],
    "Tsit5": [16, 24, 32, 48],  # tiny error constants: h^6 terms matter longer
    "DP5": [6, 8, 12, 16],
    "Vern7": [4, 5, 6, 8],
}


@pytest.mark.parametrize("tab", ALL, ids=IDS)
def test_convergence_on_linear_problem(tab: ExplicitRKTableau) -> None:
    exact = scipy.linalg.expm(MAT * T_END) @ Y0
    hs, errs = [], []
    for n in STEPS[tab.name]:
        hs.append(T_END / n)
        errs.append(float(np.linalg.norm(_integrate(tab, n) - exact)))
    assert min(errs) > 1e-13  # not polluted by round-off
    slope = _slope(hs, errs)
    assert abs(slope - tab.order) < 0.3, (tab.name, slope, errs)


@pytest.mark.parametrize("tab", WITH_DENSE, ids=[t.name for t in WITH_DENSE])
def test_dense_convergence_on_linear_problem(tab: ExplicitRKTableau) -> None:
    assert tab.dense_order is not None
    theta = 0.37
    hs, errs = [], []
    for n in STEPS[tab.name]:
        h = T_END / n
        exact = scipy.linalg.expm(MAT * (T_END - h + theta * h)) @ Y0
        hs.append(h)
        errs.append(float(np.linalg.norm(_integrate(tab, n, theta) - exact)))
    assert min(errs) > 1e-13
    slope = _slope(hs, errs)
    assert slope > tab.dense_order - 0.3, (tab.name, slope, errs)


LOCAL_STEPS = {
    "Tsit5": [0.2, 0.1, 0.05, 0.025],
    "DP5": [0.2, 0.1, 0.05, 0.025],
    "Vern7": [0.4, 0.3, 0.2, 0.15],
}


@pytest.mark.parametrize("tab", WITH_DENSE, ids=[t.name for t in WITH_DENSE])
def test_dense_local_error_on_linear_problem(tab: ExplicitRKTableau) -> None:
    """One step from the exact value: the interpolant's own error is O(h^(dense_order + 1))."""
    assert tab.dense_order is not None
    theta = 0.37
    hs, errs = [], []
    for h in LOCAL_STEPS[tab.name]:
        k = _stages(tab, Y0, h, extras=True)
        y = Y0 + h * (dense_weights(tab, theta) @ k)
        hs.append(h)
        errs.append(float(np.linalg.norm(y - scipy.linalg.expm(MAT * theta * h) @ Y0)))
    assert min(errs) > 1e-13
    slope = _slope(hs, errs)
    assert slope > tab.dense_order + 1 - 0.3, (tab.name, slope, errs)
