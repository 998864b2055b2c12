"""Checks of the Rosenbrock and ESDIRK tableaus in ``hybrideq.tableaus``.

Small float64 NumPy reference steppers, written from the conventions in ``_rosenbrock`` and
``_dirk`` (not from any engine), run every tableau:

- the algebraic order conditions (rooted trees) of ``b`` and of the embedded weights;
- fixed-step convergence orders of ``y1``, of the embedded solution ``y1 − err`` and of the
  dense output, on a nonlinear non-autonomous problem with an exact solution (also with a
  constant non-identity mass matrix for the Rosenbrock methods);
- a stiff Prothero–Robinson problem;
- Rosenbrock23's transformed tableau against the original ode23s formulas;
- every ``__post_init__`` check on a deliberately broken copy.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from fractions import Fraction
from functools import cache
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from hybrideq.tableaus import (
    KENCARP4,
    KVAERNO5,
    RODAS4,
    RODAS5P,
    ROSENBROCK23,
    TRBDF2,
    DIRKTableau,
    RosenbrockTableau,
)

ROSENBROCK = [ROSENBROCK23, RODAS4, RODAS5P]
DIRK = [TRBDF2, KVAERNO5, KENCARP4]
ALL: list[Any] = [*ROSENBROCK, *DIRK]
ROS_IDS = [t.name for t in ROSENBROCK]
DIRK_IDS = [t.name for t in DIRK]

Vec = np.ndarray
Fn = Callable[[float, Vec], Vec]
Mat = Callable[[float, Vec], np.ndarray]


# ------------------------------------------------------------------------------- problems
@dataclasses.dataclass
class Problem:
    """``M y' = f(t, y)`` with its Jacobian, time derivative and exact solution."""

    f: Fn
    jac: Mat
    ft: Fn
    exact: Callable[[float], Vec]
    mass: np.ndarray | None = None


_R = np.array([[0.0, -1.0], [1.0, 0.0]])


def spiral(mass: np.ndarray | None = None) -> Problem:
    """A limit cycle turning at a time-dependent rate: nonlinear, coupled, non-autonomous.

    ``y' = (1 − |y|²) y + ω(t) R y`` with ``R`` the rotation generator and ``ω = 1 + t/2``.
    In polar form ``r' = r (1 − r²)``, ``φ' = ω(t)``, so with ``r(0) = 1/2``, ``φ(0) = 0``:
    ``r = (1 + 3 e^{−2t})^{−1/2}`` and ``φ = t + t²/4``. ``f_t = R y / 2`` is O(1), so the
    ``d_i`` terms of a Rosenbrock method matter. With a mass matrix the problem is
    ``M y' = M f(t, y)``, which has the same solution.
    """
    m = np.eye(2) if mass is None else mass

    def g(t: float, y: Vec) -> Vec:
        return (1.0 - y @ y) * y + (1.0 + 0.5 * t) * (_R @ y)

    def g_jac(t: float, y: Vec) -> np.ndarray:
        return (1.0 - y @ y) * np.eye(2) - 2.0 * np.outer(y, y) + (1.0 + 0.5 * t) * _R

    def exact(t: float) -> Vec:
        r = 1.0 / math.sqrt(1.0 + 3.0 * math.exp(-2.0 * t))
        phi = t + 0.25 * t * t
        return np.array([r * math.cos(phi), r * math.sin(phi)])

    return Problem(
        f=lambda t, y: m @ g(t, y),
        jac=lambda t, y: m @ g_jac(t, y),
        ft=lambda t, y: m @ (0.5 * (_R @ y)),
        exact=exact,
        mass=mass,
    )


def prothero_robinson(lam: float = -1e6) -> Problem:
    """``y' = λ (y − sin t) + cos t``, ``y(0) = 0``: the solution ``sin t`` under stiffness λ."""
    return Problem(
        f=lambda t, y: lam * (y - math.sin(t)) + math.cos(t),
        jac=lambda t, y: np.array([[lam]]),
        ft=lambda t, y: np.array([-lam * math.cos(t) - math.sin(t)]),
        exact=lambda t: np.array([math.sin(t)]),
    )


MASS = np.array([[2.0, 1.0], [0.5, 3.0]])


# ---------------------------------------------------------------- reference steppers (NumPy)
Dense = Callable[[float], Vec]


def rosenbrock_step(tab: Any, p: Problem, t: float, y: Vec, h: float) -> tuple[Vec, Vec, Dense]:
    """One step of the transformed form (module docstring of ``_rosenbrock``).

    ``(M/(hγ) − J) U_i = f(t + c_i h, y + Σ a_ij U_j) + M Σ (C_ij/h) U_j + h d_i f_t``.
    """
    n = y.shape[0]
    m = np.eye(n) if p.mass is None else p.mass
    w = m / (h * tab.gamma) - p.jac(t, y)
    ft = p.ft(t, y)
    u: list[Vec] = []
    for i in range(len(tab.c)):
        yi = y + sum((aij * uj for aij, uj in zip(tab.a[i], u, strict=True)), np.zeros(n))
        cu = sum((cij / h * uj for cij, uj in zip(tab.C[i], u, strict=True)), np.zeros(n))
        rhs = p.f(t + tab.c[i] * h, yi) + m @ cu + h * tab.d[i] * ft
        u.append(np.linalg.solve(w, rhs))
    y1 = y + sum(bi * ui for bi, ui in zip(tab.b, u, strict=True))
    err = sum(ei * ui for ei, ui in zip(tab.btilde, u, strict=True))
    v = [y1 - y] + [sum(hji * ui for hji, ui in zip(row, u, strict=True)) for row in tab.H]

    def dense(theta: float) -> Vec:
        out = y.copy()
        for row, vj in zip(tab.dense_poly, v, strict=True):
            out = out + sum(cm * theta ** (m_ + 1) for m_, cm in enumerate(row)) * vj
        return out

    return y1, err, dense


def dirk_step(
    tab: Any, p: Problem, t: float, y: Vec, h: float, explicit: Fn | None = None
) -> tuple[Vec, Vec]:
    """One step of ``Z_i = h Σ_{j≤i} A_ij f_j`` (plus ``h Σ_{j<i} explicit_A_ij g_j`` for IMEX).

    With ``explicit = g`` the right-hand side is split as ``f + g``, ``f`` implicit.
    Each implicit stage is solved by Newton's method on ``Z − h γ f(t_i, y + Z) = r`` with the
    exact Jacobian, started from OrdinaryDiffEq's predictor
    ``Z⁰ = r + γ Σ_j predictor_ij h f_j``, until the update is below 1e-15.
    """
    n = y.shape[0]
    s = len(tab.c)
    fi: list[Vec] = []  # implicit-part stage derivatives f(t + c_j h, Y_j)
    fe: list[Vec] = []  # explicit-part stage derivatives (IMEX only)
    for i in range(s):
        ti = t + tab.c[i] * h
        r = h * sum((a * fj for a, fj in zip(tab.A[i][:i], fi, strict=True)), np.zeros(n))
        if explicit is not None:
            r = r + h * sum(
                (a * gj for a, gj in zip(tab.explicit_A[i], fe, strict=True)), np.zeros(n)
            )
        gam = tab.A[i][i]
        if gam == 0.0:
            z = r
        else:
            pred = tab.predictor[i] if tab.predictor is not None else ()
            z = r + gam * h * sum((a * fj for a, fj in zip(pred, fi, strict=False)), np.zeros(n))
            for _ in range(50):
                res = z - h * gam * p.f(ti, y + z) - r
                dz = np.linalg.solve(np.eye(n) - h * gam * p.jac(ti, y + z), res)
                z = z - dz
                if np.max(np.abs(dz)) <= 1e-15 * (1.0 + np.max(np.abs(z))):
                    break
            else:  # pragma: no cover - a failure of the test problem, not of a tableau
                raise AssertionError("Newton did not converge")
        fi.append(p.f(ti, y + z))
        if explicit is not None:
            fe.append(explicit(ti, y + z))
    tot = [a + b for a, b in zip(fi, fe, strict=True)] if explicit is not None else fi
    y1 = y + h * sum(b * fj for b, fj in zip(tab.b, tot, strict=True))
    err = h * sum(e * fj for e, fj in zip(tab.btilde, tot, strict=True))
    return y1, err


Step = Callable[[float, Vec, float], tuple[Vec, Vec]]


def global_error(step: Step, p: Problem, n_steps: int, t_end: float, embedded: bool) -> float:
    """Max-norm error at ``t_end`` after ``n_steps`` fixed steps, propagating ``y1`` or
    the embedded ``y1 − err``."""
    h = t_end / n_steps
    y = p.exact(0.0)
    for k in range(n_steps):
        y1, err = step(k * h, y, h)
        y = y1 - err if embedded else y1
    return float(np.max(np.abs(y - p.exact(t_end))))


def slope(hs: list[float], errs: list[float]) -> float:
    """Least-squares slope of ``log err`` against ``log h``."""
    return float(np.polyfit(np.log(hs), np.log(errs), 1)[0])


def measured_order(step: Step, p: Problem, ns: list[int], embedded: bool = False) -> float:
    t_end = 1.0
    errs = [global_error(step, p, n, t_end, embedded) for n in ns]
    return slope([t_end / n for n in ns], errs)


# Steps per unit time, chosen per order so the errors stay well above round-off.
NS = {2: [16, 32, 64, 128], 3: [16, 32, 64, 128], 4: [8, 16, 32, 64], 5: [8, 16, 32, 64]}


# --------------------------------------------------------------- order conditions (trees)
Tree = tuple


@cache
def trees(n: int) -> tuple[Tree, ...]:
    """Rooted trees with ``n`` nodes (a tree is the sorted tuple of its subtrees)."""
    if n == 1:
        return ((),)

    def grafts(t: Tree) -> set[Tree]:
        out = {tuple(sorted((*t, ())))}
        for i, child in enumerate(t):
            for g in grafts(child):
                out.add(tuple(sorted((*t[:i], g, *t[i + 1 :]))))
        return out

    return tuple(sorted({g for t in trees(n - 1) for g in grafts(t)}))


def tree_gamma(t: Tree) -> int:
    size = 1 + sum(_size(c) for c in t)
    return size * math.prod(tree_gamma(c) for c in t)


def _size(t: Tree) -> int:
    return 1 + sum(_size(c) for c in t)


def order_defects(
    weights: np.ndarray, single: np.ndarray, multi: np.ndarray, order: int
) -> list[float]:
    """``|w · Φ(t) − 1/γ(t)|`` for every tree of ``order`` nodes.

    ``Φ`` uses ``single`` at nodes with exactly one child and ``multi`` at the others: for a
    Runge–Kutta method both are ``A``; for a Rosenbrock method in standard form they are
    ``α + Γ`` and ``α`` (Hairer–Wanner II, §IV.7, Theorem 7.3 and Table 7.1).
    """
    s = weights.shape[0]

    def phi(t: Tree) -> np.ndarray:
        if len(t) == 1:
            return single @ phi(t[0])
        g = np.ones(s)
        for child in t:
            g = g * (multi @ phi(child))
        return g

    return [abs(float(weights @ phi(t)) - 1.0 / tree_gamma(t)) for t in trees(order)]


def rosenbrock_standard_form(tab: RosenbrockTableau) -> tuple[np.ndarray, np.ndarray]:
    """``(α, Γ)`` from the transformed ``(a, C, γ)``: ``Γ = (diag(1/γ) − C)⁻¹``, ``α = a Γ``."""
    s = tab.stages
    a = np.zeros((s, s))
    c = np.zeros((s, s))
    for i in range(s):
        a[i, :i] = tab.a[i]
        c[i, :i] = tab.C[i]
    gam = np.linalg.inv(np.eye(s) / tab.gamma - c)
    return a @ gam, gam


def dirk_matrix(tab: DIRKTableau) -> np.ndarray:
    s = tab.stages
    a = np.zeros((s, s))
    for i, row in enumerate(tab.A):
        a[i, : i + 1] = row
    return a


# =========================================================================== the tests
# ------------------------------------------------------------------ algebraic properties
@pytest.mark.parametrize("tab", ROSENBROCK, ids=ROS_IDS)
def test_rosenbrock_order_conditions(tab: RosenbrockTableau) -> None:
    alpha, gam = rosenbrock_standard_form(tab)
    # The transformed weights m relate to the standard ones by β = m Γ.
    b = np.array(tab.b) @ gam
    bhat = (np.array(tab.b) - np.array(tab.btilde)) @ gam
    np.testing.assert_allclose(alpha.sum(axis=1), tab.c, atol=1e-12)
    np.testing.assert_allclose(gam.sum(axis=1), tab.d, atol=1e-12)
    for q in range(1, tab.order + 1):
        assert max(order_defects(b, alpha + gam, alpha, q)) < 1e-11, q
    for q in range(1, tab.embedded_order + 1):
        assert max(order_defects(bhat, alpha + gam, alpha, q)) < 1e-11, q
    # ... and not one order more (a wrong formula would make this vacuous).
    assert max(order_defects(b, alpha + gam, alpha, tab.order + 1)) > 1e-6
    assert max(order_defects(bhat, alpha + gam, alpha, tab.embedded_order + 1)) > 1e-6


@pytest.mark.parametrize("tab", DIRK, ids=DIRK_IDS)
def test_dirk_order_conditions(tab: DIRKTableau) -> None:
    a = dirk_matrix(tab)
    b = np.array(tab.b)
    bhat = b - np.array(tab.btilde)
    for q in range(1, tab.order + 1):
        assert max(order_defects(b, a, a, q)) < 1e-13, q
    for q in range(1, tab.embedded_order + 1):
        assert max(order_defects(bhat, a, a, q)) < 1e-13, q
    assert max(order_defects(b, a, a, tab.order + 1)) > 1e-6
    assert max(order_defects(bhat, a, a, tab.embedded_order + 1)) > 1e-6
    if tab.explicit_A is not None:  # the explicit half of the ARK pair, and the coupling
        ea = np.zeros_like(a)
        for i, row in enumerate(tab.explicit_A):
            ea[i, :i] = row
        for q in range(1, tab.order + 1):
            assert max(order_defects(b, ea, ea, q)) < 1e-13, q


def test_embedded_weights_match_the_published_ones() -> None:
    # TRBDF2: b̂ = ((1 − ω)/3, (3ω + 1)/3, d/3) (sdirk_tableaus.jl line 20); btilde = b − b̂.
    w, d = math.sqrt(2) / 4, 1 - math.sqrt(2) / 2
    bhat = ((1 - w) / 3, (3 * w + 1) / 3, d / 3)
    assert TRBDF2.btilde == pytest.approx(
        [x - y for x, y in zip(TRBDF2.b, bhat, strict=True)], abs=1e-16
    )
    # Kvaerno5: b̂ is the stage-6 row (a61, 0, a63, a64, a65, γ, 0).
    kv_bhat = (*KVAERNO5.A[5], 0.0)
    assert KVAERNO5.btilde == pytest.approx(
        [x - y for x, y in zip(KVAERNO5.b, kv_bhat, strict=True)], abs=1e-16
    )
    # KenCarp4: b̂ in the comments of sdirk_tableaus.jl lines 1294-1298, exact.
    bhat_q = [
        Fraction(4586570599, 29645900160),
        Fraction(0),
        Fraction(178811875, 945068544),
        Fraction(814220225, 1159782912),
        Fraction(-3700637, 11593932),
        Fraction(61727, 225920),
    ]
    b_q = [Fraction(82889, 524892), Fraction(0), Fraction(15625, 83664)]
    b_q += [Fraction(69875, 102672), Fraction(-2260, 8211), Fraction(1, 4)]
    assert sum(bhat_q) == 1
    assert list(KENCARP4.b) == [float(x) for x in b_q]
    assert list(KENCARP4.btilde) == [float(x - y) for x, y in zip(b_q, bhat_q, strict=True)]


@pytest.mark.parametrize("tab", DIRK, ids=DIRK_IDS)
def test_dirk_predictor_meaning(tab: DIRKTableau) -> None:
    """The predictor guesses ``h f_i`` from ``h f_j``: its error falls with ``h``.

    On the spiral from its exact initial value, with the exact stage values, the relative
    prediction error ``|Σ_j α_ij h f_j − h f_i| / |h f_i|`` is O(h) for every row that sums
    to 1 (measured slopes 1.0; the rows that extrapolate a Hermite cubic reach 2–3). Applied
    to the increments ``Z_j`` instead, the same numbers leave a relative error of 1.0 at every
    ``h``.
    """
    assert tab.predictor is not None
    p = spiral()
    worst = []
    for h in (0.1, 0.05, 0.025):
        y0 = p.exact(0.3)
        fs: list[Vec] = []
        n = 2
        for i in range(tab.stages):  # solve the stages to round-off, recording f_i
            ti = 0.3 + tab.c[i] * h
            r = h * sum((a * f for a, f in zip(tab.A[i][:i], fs, strict=True)), np.zeros(n))
            z = r.copy()
            for _ in range(50):
                res = z - h * tab.A[i][i] * p.f(ti, y0 + z) - r
                dz = np.linalg.solve(np.eye(n) - h * tab.A[i][i] * p.jac(ti, y0 + z), res)
                z = z - dz
                if np.max(np.abs(dz)) < 1e-15:
                    break
            fs.append(p.f(ti, y0 + z))
        errs = []
        for i in range(1, tab.stages):
            guess = sum(a * h * f for a, f in zip(tab.predictor[i], fs[:i], strict=True))
            errs.append(np.max(np.abs(guess - h * fs[i])) / np.max(np.abs(h * fs[i])))
        worst.append(max(errs))
    assert slope([0.1, 0.05, 0.025], worst) > 0.9
    assert worst[-1] < 0.05


# -------------------------------------------------------------------- convergence orders
@pytest.mark.parametrize("tab", ROSENBROCK, ids=ROS_IDS)
@pytest.mark.parametrize("mass", [None, MASS], ids=["M=I", "M"])
def test_rosenbrock_convergence(tab: RosenbrockTableau, mass: np.ndarray | None) -> None:
    p = spiral(mass)

    def step(t: float, y: Vec, h: float) -> tuple[Vec, Vec]:
        y1, err, _ = rosenbrock_step(tab, p, t, y, h)
        return y1, err

    main = measured_order(step, p, NS[tab.order])
    emb = measured_order(step, p, NS[tab.embedded_order], embedded=True)
    assert abs(main - tab.order) < 0.3, main
    assert abs(emb - tab.embedded_order) < 0.3, emb


@pytest.mark.parametrize("tab", ROSENBROCK, ids=ROS_IDS)
def test_rosenbrock_dense_output_order(tab: RosenbrockTableau) -> None:
    """Local error of the interpolant at θ = 1/2 is O(h^(q+1)), q = dense_order.

    One step from the exact ``y(t0)``, so only the interpolation error is measured (a global
    measurement would show ``min(order, q + 1)``, which for Rodas4 equals the order of ``y1``
    and says nothing). Maximum over a few ``t0``, so no single point can cancel.
    """
    p = spiral(MASS)
    hs = [0.1, 0.05, 0.025, 0.0125]  # Rodas5P is pre-asymptotic at h = 0.2
    errs = []
    for h in hs:
        e = 0.0
        for t0 in (0.0, 0.4, 0.9):
            _, _, dense = rosenbrock_step(tab, p, t0, p.exact(t0), h)
            e = max(e, float(np.max(np.abs(dense(0.5) - p.exact(t0 + 0.5 * h)))))
        errs.append(e)
    q = slope(hs, errs)
    assert abs(q - (tab.dense_order + 1)) < 0.3, q
    # θ = 1 reproduces y1 (checked structurally in __post_init__; here numerically).
    y1, _, dense = rosenbrock_step(tab, p, 0.2, p.exact(0.2), 0.1)
    np.testing.assert_allclose(dense(1.0), y1, rtol=0, atol=1e-14)
    np.testing.assert_allclose(dense(0.0), p.exact(0.2), rtol=0, atol=0)


@pytest.mark.parametrize("tab", DIRK, ids=DIRK_IDS)
def test_dirk_convergence(tab: DIRKTableau) -> None:
    p = spiral()

    def step(t: float, y: Vec, h: float) -> tuple[Vec, Vec]:
        return dirk_step(tab, p, t, y, h)

    main = measured_order(step, p, NS[tab.order])
    emb = measured_order(step, p, NS[tab.embedded_order], embedded=True)
    assert abs(main - tab.order) < 0.3, main
    assert abs(emb - tab.embedded_order) < 0.3, emb


def test_kencarp4_imex_convergence() -> None:
    """The ARK pair on the spiral split into the implicit radial part and the explicit,
    non-autonomous rotation ``ω(t) R y``."""
    full = spiral()
    rot: Fn = lambda t, y: (1.0 + 0.5 * t) * (_R @ y)  # noqa: E731
    implicit = Problem(
        f=lambda t, y: (1.0 - y @ y) * y,
        jac=lambda t, y: (1.0 - y @ y) * np.eye(2) - 2.0 * np.outer(y, y),
        ft=lambda t, y: np.zeros(2),
        exact=full.exact,
    )

    def step(t: float, y: Vec, h: float) -> tuple[Vec, Vec]:
        return dirk_step(KENCARP4, implicit, t, y, h, explicit=rot)

    main = measured_order(step, implicit, [16, 32, 64, 128])  # 3.6 between N = 8 and 16
    emb = measured_order(step, implicit, NS[3], embedded=True)
    assert abs(main - 4) < 0.3, main
    assert abs(emb - 3) < 0.3, emb


# ---------------------------------------------------------------------------- stiffness
# Measured max errors over t in (0, 1], 10 steps of h = 0.1, λ = −1e6 (float64):
# Rosenbrock23 6.3e-4, Rodas4 2.2e-9, Rodas5P 5.4e-12, TRBDF2 6.9e-10, Kvaerno5 5.7e-10,
# KenCarp4 2.9e-10. The stiffly accurate methods are exact up to O(1/|λ|) terms;
# Rosenbrock23 is L-stable but not stiffly accurate, and its error grows like h² per unit time.
PR_BOUND = {"Rosenbrock23": 1e-3}


@pytest.mark.parametrize("tab", ALL, ids=ROS_IDS + DIRK_IDS)
def test_prothero_robinson(tab: Any) -> None:
    p = prothero_robinson()
    h, y, worst = 0.1, np.zeros(1), 0.0
    for k in range(10):
        if isinstance(tab, RosenbrockTableau):
            y, _, _ = rosenbrock_step(tab, p, k * h, y, h)
        else:
            y, _ = dirk_step(tab, p, k * h, y, h)
        worst = max(worst, abs(float(y[0]) - math.sin((k + 1) * h)))
    assert worst < PR_BOUND.get(tab.name, 1e-8), worst


# --------------------------------------------------------------- Rosenbrock23 vs ode23s
def ode23s_step(
    p: Problem, t: float, y: Vec, h: float, t_coeff: float | None = None
) -> tuple[Vec, Vec, Dense]:
    """The original formulas (Shampine–Reichelt 1997, §4.1; with a mass matrix, §5).

    ``t_coeff`` multiplies ``h T`` in ``k3``: ``d`` as published (default), or 1 as in
    OrdinaryDiffEq.jl's ``rosenbrock_perform_step.jl`` line 298. Returns ``y1``, the error
    ``y1 − y3`` (``y3`` the 3rd-order solution) and the dense output.
    """
    d = 1.0 / (2.0 + math.sqrt(2.0))
    e32 = 6.0 + math.sqrt(2.0)
    kt = d if t_coeff is None else t_coeff
    n = y.shape[0]
    m = np.eye(n) if p.mass is None else p.mass
    w = m - h * d * p.jac(t, y)
    tt = p.ft(t, y)
    f0 = p.f(t, y)
    k1 = np.linalg.solve(w, f0 + h * d * tt)
    f1 = p.f(t + 0.5 * h, y + 0.5 * h * k1)
    k2 = np.linalg.solve(w, f1 - m @ k1) + k1
    y1 = y + h * k2
    f2 = p.f(t + h, y1)
    k3 = np.linalg.solve(w, f2 - e32 * (m @ k2 - f1) - 2.0 * (m @ k1 - f0) + h * kt * tt)
    err = -(h / 6.0) * (k1 - 2.0 * k2 + k3)

    def dense(theta: float) -> Vec:
        return y + h * (theta * (1 - theta) * k1 + theta * (theta - 2 * d) * k2) / (1 - 2 * d)

    return y1, err, dense


def random_problem(rng: np.random.Generator, mass: bool) -> Problem:
    """``f = K tanh(y) + sin(t) L y + u cos 2t`` on R³, with its exact J and f_t."""
    kk, ll, u = rng.normal(size=(3, 3)), rng.normal(size=(3, 3)), rng.normal(size=3)
    m = np.eye(3) + 0.3 * rng.normal(size=(3, 3)) if mass else None
    return Problem(
        f=lambda t, y: kk @ np.tanh(y) + math.sin(t) * (ll @ y) + u * math.cos(2 * t),
        jac=lambda t, y: kk * (1.0 / np.cosh(y) ** 2) + math.sin(t) * ll,
        ft=lambda t, y: math.cos(t) * (ll @ y) - 2.0 * u * math.sin(2 * t),
        exact=lambda t: np.zeros(3),  # unused
        mass=m,
    )


@pytest.mark.parametrize("mass", [False, True], ids=["M=I", "M"])
def test_rosenbrock23_equals_ode23s(mass: bool) -> None:
    rng = np.random.default_rng(23)
    for trial in range(5):
        p = random_problem(rng, mass)
        y = rng.normal(size=3)
        t, h = float(rng.uniform(0, 3)), 0.05 * (trial + 1)
        y1, err, dense = rosenbrock_step(ROSENBROCK23, p, t, y, h)
        z1, zerr, zdense = ode23s_step(p, t, y, h)
        scale = 1.0 + np.max(np.abs(z1))
        np.testing.assert_allclose(y1, z1, rtol=0, atol=1e-13 * scale)
        np.testing.assert_allclose(err, zerr, rtol=0, atol=1e-13 * scale)
        for theta in (0.2, 0.5, 0.9):
            np.testing.assert_allclose(dense(theta), zdense(theta), rtol=0, atol=1e-13 * scale)


def test_rosenbrock23_time_derivative_in_k3() -> None:
    """Why ``d_3 = −d``: with ode23s's ``+ h d T`` in ``k3`` the 3rd-order solution
    ``y3 = y1 − err`` converges at order 3 on a non-autonomous problem; with OrdinaryDiffEq's
    ``+ h T`` (``d_3 = 1 − 2d``) ``y3`` is off by ``h² (1 − d) W⁻¹T / 6`` per step, so it drops
    to order 1 (and the error estimate ``y3 − y1`` to O(h²)). Measured: 3.0 and 1.0."""
    p = spiral()

    def step_for(coeff: float | None) -> Step:
        def step(t: float, y: Vec, h: float) -> tuple[Vec, Vec]:
            y1, err, _ = ode23s_step(p, t, y, h, coeff)
            return y1, err

        return step

    published = measured_order(step_for(None), p, NS[3], embedded=True)
    upstream = measured_order(step_for(1.0), p, NS[3], embedded=True)
    assert abs(published - 3) < 0.3, published
    assert abs(upstream - 1) < 0.3, upstream


def test_kvaerno5_second_node() -> None:
    """``c_2 = 2γ`` (the row sum); OrdinaryDiffEq's ``imex_tableaus.jl`` line 1454 evaluates
    stage 2 at ``t + γh``, which costs two orders on a non-autonomous problem (measured 5.0
    against 3.0)."""
    p = spiral()
    upstream = SimpleNamespace(
        **{f.name: getattr(KVAERNO5, f.name) for f in dataclasses.fields(KVAERNO5)}
    )
    upstream.c = (0.0, KVAERNO5.gamma, *KVAERNO5.c[2:])

    def step(t: float, y: Vec, h: float) -> tuple[Vec, Vec]:
        return dirk_step(upstream, p, t, y, h)

    assert KVAERNO5.c[1] == 2 * KVAERNO5.gamma
    assert measured_order(step, p, NS[5]) < 4.0


# ---------------------------------------------------------------------------- validation
def _with_row(rows: tuple[tuple[float, ...], ...], i: int, row: tuple[float, ...]) -> tuple:
    return (*rows[:i], row, *rows[i + 1 :])


def _bump(vec: tuple[float, ...], i: int, by: float = 1e-3) -> tuple[float, ...]:
    return (*vec[:i], vec[i] + by, *vec[i + 1 :])


R4 = RODAS4
ROS_BROKEN: list[tuple[str, RosenbrockTableau, dict[str, Any], str]] = [
    ("gamma", R4, {"gamma": 0.0}, "gamma must be positive"),
    ("d-len", R4, {"d": R4.d[:-1]}, "c and d must both have 6 entries"),
    ("a-len", R4, {"a": R4.a[:-1]}, "c and a must both have 6 entries"),
    ("C-len", R4, {"C": R4.C[:-1]}, "c and C must both have 6 entries"),
    ("b-len", R4, {"b": R4.b[:-1]}, "c and b must both have 6 entries"),
    ("btilde-len", R4, {"btilde": R4.btilde[:-1]}, "btilde must have 6 entries"),
    ("c0", R4, {"c": (0.1, *R4.c[1:])}, r"c\[0\] must be 0"),
    ("a-row", R4, {"a": _with_row(R4.a, 2, (1.0,))}, "row 2 of a must have 2 entries"),
    ("C-row", R4, {"C": _with_row(R4.C, 2, (1.0,))}, "row 2 of C must have 2 entries"),
    ("d-value", R4, {"d": _bump(R4.d, 3)}, r"d\[3\] differs from the row sum of Gamma"),
    ("c-value", R4, {"c": _bump(R4.c, 2)}, r"row 2 of a Γ does not sum to c\[2\]"),
    ("b-value", R4, {"b": _bump(R4.b, 0)}, "the weights b Γ do not sum to 1"),
    ("btilde-value", R4, {"btilde": _bump(R4.btilde, 0)}, "btilde Γ do not sum to 0"),
    ("sa-flag", R4, {"stiffly_accurate": False}, "stiffly_accurate=False but b equals"),
    ("sa-flag-23", ROSENBROCK23, {"stiffly_accurate": True}, "b differs from"),
    ("H-row", R4, {"H": _with_row(R4.H, 0, (1.0,))}, "row 0 of H must have 6 entries"),
    ("dense-rows", R4, {"dense_poly": R4.dense_poly[:-1]}, "one row per V_j"),
    (
        "dense-theta1",
        R4,
        {"dense_poly": _with_row(R4.dense_poly, 1, (1.0, 0.0, 0.0))},
        "row 1 at θ = 1 must be 0",
    ),
]


@pytest.mark.parametrize(
    ("tab", "changes", "message"),
    [x[1:] for x in ROS_BROKEN],
    ids=[x[0] for x in ROS_BROKEN],
)
def test_rosenbrock_validation(
    tab: RosenbrockTableau, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(tab, **changes)


K4 = KENCARP4
assert K4.predictor is not None and K4.explicit_A is not None
DIRK_BROKEN: list[tuple[str, DIRKTableau, dict[str, Any], str]] = [
    ("gamma", K4, {"gamma": -0.25}, "gamma must be positive"),
    ("b-len", K4, {"b": K4.b[:-1]}, "must all have 6 entries"),
    ("A-row", K4, {"A": _with_row(K4.A, 2, (0.25, 0.25))}, "row 2 of A must have 3 entries"),
    ("A-sum", K4, {"c": _bump(K4.c, 3)}, r"row 3 of A does not sum to c\[3\]"),
    (
        "diagonal",
        K4,
        {"A": _with_row(K4.A, 1, (0.2, 0.3)), "c": K4.c},
        r"diagonal entry A\[1\]\[1\] must be 0.25",
    ),
    (
        "explicit-first",
        K4,
        {"explicit_first_stage": False},
        r"diagonal entry A\[0\]\[0\] must be 0.25",
    ),
    ("b-sum", TRBDF2, {"b": _bump(TRBDF2.b, 0), "stiffly_accurate": False}, "b do not sum to 1"),
    ("btilde-sum", K4, {"btilde": _bump(K4.btilde, 0)}, "btilde do not sum to 0"),
    ("sa-flag", K4, {"stiffly_accurate": False}, "stiffly_accurate=False but b equals"),
    ("predictor-rows", K4, {"predictor": K4.predictor[:-1]}, "predictor must have 6 rows"),
    (
        "predictor-row",
        K4,
        {"predictor": _with_row(K4.predictor, 2, (1.0,))},
        "predictor row 2 must have 2 entries",
    ),
    (
        "predictor-sum",
        K4,
        {"predictor": _with_row(K4.predictor, 2, (0.5, 0.6))},
        "predictor row 2 does not sum to 1",
    ),
    ("explicit-rows", K4, {"explicit_A": K4.explicit_A[:-1]}, "explicit_A must have 6 rows"),
    (
        "explicit-row",
        K4,
        {"explicit_A": _with_row(K4.explicit_A, 1, ())},
        "explicit_A row 1 must have 1 entries",
    ),
    (
        "explicit-sum",
        K4,
        {"explicit_A": _with_row(K4.explicit_A, 1, (0.6,))},
        r"explicit_A row 1 does not sum to c\[1\]",
    ),
]


@pytest.mark.parametrize(
    ("tab", "changes", "message"),
    [x[1:] for x in DIRK_BROKEN],
    ids=[x[0] for x in DIRK_BROKEN],
)
def test_dirk_validation(tab: DIRKTableau, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(tab, **changes)


def test_shapes_and_metadata() -> None:
    assert [t.stages for t in ROSENBROCK] == [3, 6, 8]
    assert [t.stages for t in DIRK] == [3, 7, 6]
    assert [t.implicit_stages for t in DIRK] == [2, 6, 5]
    assert RODAS5P.gamma == 0.21193756319429014
    assert all(t.source for t in ALL)
    assert ROSENBROCK23.gamma_row_sums == pytest.approx(
        (ROSENBROCK23.gamma, 0.0, -ROSENBROCK23.gamma), abs=1e-15
    )
