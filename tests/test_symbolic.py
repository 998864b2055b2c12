"""hybrideq.symbolic: sympy → torch/Julia code generation, models, discovery, refits."""

from __future__ import annotations

import importlib.util
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
import torch

import hybrideq as hq
from hybrideq.engines.julia import JuliaNotInstalledError, find_julia
from hybrideq.symbolic import (
    CustomLibrary,
    FiniteDifference,
    FourierLibrary,
    PolynomialLibrary,
    PySR,
    SINDy,
    SmoothedFiniteDifference,
    SplineDerivative,
    SymbolicODE,
    SymbolicSDE,
    discover,
    fit_parameters,
    select_model,
)
from hybrideq.symbolic._fit import information_criterion

x, y, z = sp.symbols("x y z")
a, b, c, d = sp.symbols("alpha beta gamma delta")
t_sym = sp.Symbol("t")


def _parse_julia(source: str) -> bool:
    """True when tree-sitter-julia parses the source without an error node."""
    tsj = pytest.importorskip("tree_sitter_julia", reason="needs the tree-sitter-julia package")
    from tree_sitter import Language, Parser

    tree = Parser(Language(tsj.language())).parse(source.encode())
    return not tree.root_node.has_error


def _hard_model() -> SymbolicODE:
    """A system with shared subexpressions, transcendental functions, t and constants."""
    return SymbolicODE(
        {
            x: a * x - b * x * y + sp.sin(x * y) * sp.sqrt(2) + sp.exp(-t_sym) * z,
            y: c * x * y - d * y + sp.cos(x * y) ** 2 / (1 + z**2) + sp.Rational(1, 3),
            z: sp.tanh(a * z) - sp.log(1 + x**2) * sp.atan(y) + sp.Abs(y) ** sp.Rational(3, 2),
        },
        params={a: 1.3, b: 0.9, c: 0.8, d: 1.8},
    )


def _sympy_eval(exprs: list[sp.Expr], model: SymbolicODE, t: float, yv, pv) -> np.ndarray:
    subs = {
        model.t: t,
        **dict(zip(model.states, yv, strict=False)),
        **dict(zip(model.params, pv, strict=False)),
    }
    return np.array([float(sp.N(e.subs(subs), 30)) for e in exprs])


# --------------------------------------------------------------------------- codegen


def test_rhs_and_jacobian_match_sympy_at_random_points_batched() -> None:
    model = _hard_model()
    gen = torch.Generator().manual_seed(0)
    Y = torch.randn(12, 3, generator=gen, dtype=torch.float64)
    P = 1 + torch.rand(12, 4, generator=gen, dtype=torch.float64)  # per-sample parameters
    T = torch.rand(12, generator=gen, dtype=torch.float64)
    F = model.f(T, Y, P)
    J = model.jac(T, Y, P)
    assert F.shape == (12, 3) and J.shape == (12, 3, 3)
    jac_exprs = list(model.jacobian)
    for i in range(12):
        ref_f = _sympy_eval(list(model.drift), model, float(T[i]), Y[i].tolist(), P[i].tolist())
        ref_j = _sympy_eval(jac_exprs, model, float(T[i]), Y[i].tolist(), P[i].tolist())
        np.testing.assert_allclose(F[i].numpy(), ref_f, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(J[i].numpy().ravel(), ref_j, rtol=1e-12, atol=1e-12)


def test_unbatched_call_and_shared_parameters() -> None:
    model = _hard_model()
    yv = torch.tensor([0.3, -0.7, 1.1], dtype=torch.float64)
    pv = model.parameter_vector()
    f1 = model.f(torch.tensor(0.2, dtype=torch.float64), yv, pv)
    fb = model.f(torch.full((4,), 0.2, dtype=torch.float64), yv.expand(4, 3), pv)
    assert f1.shape == (3,)
    torch.testing.assert_close(fb, f1.expand(4, 3), rtol=0, atol=0)
    ref = _sympy_eval(list(model.drift), model, 0.2, yv.tolist(), pv.tolist())
    np.testing.assert_allclose(f1.numpy(), ref, rtol=1e-12)


def test_jacobian_matches_autograd() -> None:
    model = _hard_model()
    yv = torch.tensor([0.3, -0.7, 1.1], dtype=torch.float64)
    pv = model.parameter_vector()
    t0 = torch.tensor(0.4, dtype=torch.float64)
    auto = torch.func.jacrev(lambda u: model.f(t0, u, pv))(yv)
    torch.testing.assert_close(model.jac(t0, yv, pv), auto, rtol=1e-12, atol=1e-12)


def test_gradcheck_in_parameters_and_states() -> None:
    model = _hard_model()
    gen = torch.Generator().manual_seed(1)
    Y = torch.randn(5, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    P = (1 + torch.rand(4, generator=gen, dtype=torch.float64)).requires_grad_(True)
    T = torch.rand(5, generator=gen, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda p: model.f(T, Y.detach(), p), (P,))
    assert torch.autograd.gradcheck(lambda u, p: model.f(T, u, p), (Y, P))
    assert torch.autograd.gradcheck(lambda p: model.jac(T, Y.detach(), p), (P,))


def test_common_subexpressions_are_computed_once() -> None:
    model = _hard_model()
    src = model.f.source
    # x*y appears in three terms; after CSE the product is formed once
    assert src.count("y_0*y_1") == 1, src
    assert "torch.sin" in src and "math" not in src.split("return")[0].split("y_2 = ")[0]


def test_constant_and_time_only_equations_broadcast_to_the_batch() -> None:
    model = SymbolicODE({x: sp.Integer(2), y: sp.sin(t_sym)})
    out = model.f(torch.zeros(5, dtype=torch.float64), torch.zeros(5, 2, dtype=torch.float64), None)
    assert out.shape == (5, 2)
    torch.testing.assert_close(out[:, 0], torch.full((5,), 2.0, dtype=torch.float64))


def test_piecewise_min_max_and_heaviside_match_sympy() -> None:
    model = SymbolicODE(
        {
            x: sp.Piecewise((x**2, x > 0), (-x, True)) + sp.Max(x, y, sp.Rational(1, 2)),
            y: sp.Min(x, y) * sp.Heaviside(y),
        }
    )
    pts = torch.tensor([[0.7, -0.2], [-1.3, 0.4], [0.1, 0.9]], dtype=torch.float64)
    out = model.f(torch.zeros(3, dtype=torch.float64), pts, None)
    for i in range(3):
        subs = {x: float(pts[i, 0]), y: float(pts[i, 1])}
        ref = [float(e.subs(subs)) for e in model.drift]
        np.testing.assert_allclose(out[i].numpy(), ref, rtol=1e-14)


def test_user_functions_reach_torch() -> None:
    U = sp.Function("U")
    model = SymbolicODE({x: -x + U(y), y: -y}, functions={"U": torch.tanh})
    out = model.f(torch.tensor(0.0), torch.tensor([1.0, 0.5], dtype=torch.float64), None)
    torch.testing.assert_close(out[0], -1.0 + torch.tanh(torch.tensor(0.5, dtype=torch.float64)))


def test_numpy_function_matches_torch() -> None:
    model = _hard_model()
    Y = np.random.default_rng(0).normal(size=(6, 3))
    pv = model.parameter_vector()
    ref = model.f(torch.full((6,), 0.3, dtype=torch.float64), torch.from_numpy(Y), pv).numpy()
    np.testing.assert_allclose(model.to_numpy()(0.3, Y, pv.numpy()), ref, rtol=1e-13)


# --------------------------------------------------------------------------- models


def test_lotka_volterra_problem_solves_and_stiff_solver_uses_the_jacobian() -> None:
    lv = SymbolicODE(
        {x: a * x - b * x * y, y: c * x * y - d * y}, params={a: 1.3, b: 0.9, c: 0.8, d: 1.8}
    )
    prob = lv.problem([0.44249296, 4.6280594], (0.0, 3.0))
    ref = hq.solve(prob, hq.Vern7(), rtol=1e-12, atol=1e-12)
    ros = hq.solve(prob, hq.Rodas5P(), rtol=1e-9, atol=1e-11)
    assert int(ros.stats.njac) > 0
    torch.testing.assert_close(ros.y[-1], ref.y[-1], rtol=1e-6, atol=1e-7)
    # the conserved quantity V = γx − δ ln x + βy − α ln y along the Vern7 solution
    X, Yv = ref.y[:, 0], ref.y[:, 1]
    V = 0.8 * X - 1.8 * torch.log(X) + 0.9 * Yv - 1.3 * torch.log(Yv)
    assert float(V.max() - V.min()) < 1e-9


def test_linear_system_matches_its_exact_solution() -> None:
    k = sp.Symbol("k")
    model = SymbolicODE({x: -k * x, y: k * x}, params={k: 2.0})
    sol = hq.solve(model.problem({x: 1.0, y: 0.0}, (0.0, 1.0)), hq.Tsit5(), rtol=1e-10, atol=1e-12)
    e = float(np.exp(-2.0))
    torch.testing.assert_close(sol.y[-1], torch.tensor([e, 1 - e], dtype=torch.float64))


def test_sparsity_pattern_of_a_chain_and_jac_prototype() -> None:
    n = 20
    s = sp.symbols(f"u0:{n}")
    eqs = {
        s[i]: (s[i - 1] if i else 0) - 2 * s[i] + (s[i + 1] if i < n - 1 else 0) for i in range(n)
    }
    model = SymbolicODE(eqs)
    pattern = model.sparsity
    expected = (
        torch.eye(n) + torch.diag(torch.ones(n - 1), 1) + torch.diag(torch.ones(n - 1), -1)
    ) > 0
    assert torch.equal(pattern, expected)
    prob = model.problem(torch.ones(n, dtype=torch.float64), (0.0, 1.0))
    assert prob.jac_prototype is not None  # 58 of 400 entries: passed as sparse
    small = SymbolicODE({x: -x + y, y: x - y}).problem([1.0, 0.0], (0.0, 1.0))
    assert small.jac_prototype is None  # dense: no pattern


def test_mass_matrix_dae_matches_the_ode() -> None:
    k1, k2, k3 = sp.symbols("k1 k2 k3")
    ode = SymbolicODE(
        {
            x: -k1 * x + k3 * y * z,
            y: k1 * x - k3 * y * z - k2 * y**2,
            z: k2 * y**2,
        },
        params={k1: 0.04, k2: 3e7, k3: 1e4},
    )
    dae = SymbolicODE(
        {
            x: -k1 * x + k3 * y * z,
            y: k1 * x - k3 * y * z - k2 * y**2,
            z: x + y + z - 1,
        },
        params={k1: 0.04, k2: 3e7, k3: 1e4},
        mass_matrix=[[1, 0, 0], [0, 1, 0], [0, 0, 0]],
    )
    assert torch.equal(
        dae.mass_matrix(), torch.diag(torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64))
    )
    y0 = [1.0, 0.0, 0.0]
    r1 = hq.solve(ode.problem(y0, (0.0, 40.0)), hq.Rodas5P(), rtol=1e-8, atol=1e-10)
    r2 = hq.solve(dae.problem(y0, (0.0, 40.0)), hq.Rodas5P(), rtol=1e-8, atol=1e-10)
    assert r2.retcode == hq.ReturnCode.Success
    # published Robertson value at t = 40: y1 = 0.7158270687193, (Hairer & Wanner)
    assert abs(float(r1.y[-1, 0]) - 0.7158270687193) < 1e-6
    assert abs(float(r2.y[-1, 0]) - 0.7158270687193) < 1e-6
    assert _parse_julia(dae.julia_source())
    assert "function mass_matrix(p)" in dae.julia_source()


def test_sde_gbm_matches_the_exact_solution_on_its_path() -> None:
    mu, sigma = sp.symbols("mu sigma")
    gbm = SymbolicSDE({x: mu * x}, {x: sigma * x}, params={mu: 0.5, sigma: 0.2})
    prob = gbm.problem(torch.ones(200, 1, dtype=torch.float64), (0.0, 1.0))
    sol = hq.solve(prob, hq.SRIW1(), seed=3, adaptive=False, dt=2**-9, saveat=[0.0, 1.0])
    exact = torch.exp((0.5 - 0.02) + 0.2 * sol.W(1.0))
    assert float((sol.y[:, -1] - exact).abs().max()) < 1e-4
    assert _parse_julia(gbm.julia_source())
    assert r"\mathrm{d}x &= \mu x" in gbm.latex()


def test_sde_general_noise_matrix_shapes_and_julia() -> None:
    s1, s2 = sp.symbols("s1 s2")
    sde = SymbolicSDE({x: -x, y: -y}, [[s1 * x, 0, s2], [0, s2 * y, 0]], params={s1: 0.1, s2: 0.2})
    prob = sde.problem(torch.ones(4, 2, dtype=torch.float64), (0.0, 1.0))
    assert prob.noise == "general" and prob.noise_dim == 3
    g = sde.g(torch.zeros(4, dtype=torch.float64), torch.ones(4, 2, dtype=torch.float64), prob.p)
    assert g.shape == (4, 2, 3)
    torch.testing.assert_close(
        g[0], torch.tensor([[0.1, 0, 0.2], [0, 0.2, 0]], dtype=torch.float64)
    )
    sol = hq.solve(prob, hq.EM(), dt=0.01, seed=0)
    assert all(r == hq.ReturnCode.Success for r in sol.retcode)
    assert _parse_julia(sde.julia_source())


def test_julia_source_parses_and_has_the_sciml_signature() -> None:
    src = _hard_model().julia_source("HardModel")
    assert _parse_julia(src)
    assert "function f!(du, u, p, t)" in src and "function jac!(J, u, p, t)" in src
    assert src.startswith("module HardModel") and "const JAC_SPARSITY = Bool[" in src
    assert not _parse_julia("function f!(du, u, p, t)\n  du[1] = (1 +\nend\n")


def test_latex_and_repr() -> None:
    lv = SymbolicODE({x: a * x - b * x * y, y: c * x * y - d * y})
    tex = lv.latex()
    assert r"\frac{\mathrm{d} x}{\mathrm{d} t} &= \alpha x - \beta x y" in tex
    assert tex.startswith("\\begin{aligned}") and lv._repr_latex_().startswith("$$")
    assert "dx/dt = alpha*x - beta*x*y" in repr(lv)


def test_equations_as_eq_of_derivatives_and_strings() -> None:
    X, Y = sp.Function("X"), sp.Function("Y")
    k = sp.Symbol("k")
    m1 = SymbolicODE(
        [sp.Eq(X(t_sym).diff(t_sym), -k * X(t_sym) * Y(t_sym)), sp.Eq(Y(t_sym).diff(t_sym), k)]
    )
    assert [str(s) for s in m1.states] == ["X", "Y"] and [str(p) for p in m1.params] == ["k"]
    m2 = SymbolicODE({"X": "-k*X*Y", "Y": "k"}, params={"k": 2.0})
    assert m2.equations == {
        sp.Symbol("X"): -sp.Symbol("k") * sp.Symbol("X") * sp.Symbol("Y"),
        sp.Symbol("Y"): sp.Symbol("k"),
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"equations": {x: a * x}, "params": [b]}, r"neither states nor params"),
        ({"equations": {x: sp.Function("F")(x)}}, r"undefined functions \['F'\]"),
        ({"equations": {x: -x}, "states": [x, y]}, r"must list each state"),
        ({"equations": {x: -x}, "mass_matrix": [[1, 0], [0, 1]]}, r"mass_matrix must be 1×1"),
        ({"equations": {x: -x}, "mass_matrix": [[x]]}, r"mass_matrix may use parameters only"),
        ({"equations": {x: "1 +"}}, r"cannot read"),
        ({"equations": 3}, r"mapping"),
    ],
)
def test_bad_models_raise_clear_errors(kwargs, message) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        SymbolicODE(**kwargs)


def test_bad_values_raise_clear_errors() -> None:
    lv = SymbolicODE({x: a * x - b * x * y, y: -y}, params=[a, b])
    with pytest.raises(ValueError, match=r"no value for the parameter alpha"):
        lv.problem([1.0, 1.0], (0, 1))
    with pytest.raises(ValueError, match=r"expected 2 values"):
        lv.problem([1.0, 1.0], (0, 1), p=[1.0])
    with pytest.raises(ValueError, match=r"y0: expected 2 values"):
        lv.problem([1.0, 1.0, 1.0], (0, 1), p=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"not parameters of the model"):
        lv.problem([1.0, 1.0], (0, 1), p={"alpha": 1.0, "beta": 1.0, "zeta": 1.0})
    with pytest.raises(ValueError, match=r"no initial value for the state\(s\) \['y'\]"):
        lv.problem({"x": 1.0}, (0, 1), p=[1.0, 2.0])


def test_add_terms_keeps_defaults_and_adds_parameters() -> None:
    known = SymbolicODE({x: a * x, y: -d * y}, params={a: 1.3, d: 1.8})
    k1 = sp.Symbol("k1")
    full = known.add_terms({x: k1 * x * y}, params={k1: -0.9})
    assert full.params == (a, d, k1) and full.defaults[k1] == -0.9
    assert full.equations[x] == a * x + k1 * x * y
    with pytest.raises(ValueError, match=r"not a state"):
        known.add_terms({z: 1})


# --------------------------------------------------------------------------- discovery


def _lorenz_data(dt: float = 0.01, t_end: float = 10.0):
    s, r, bb = sp.symbols("sigma rho beta")
    lor = SymbolicODE(
        {x: s * (y - x), y: x * (r - z) - y, z: x * y - bb * z},
        params={s: 10.0, r: 28.0, bb: 8 / 3},
    )
    t = torch.arange(0.0, t_end + dt / 2, dt, dtype=torch.float64)
    sol = hq.solve(
        lor.problem([-8.0, 8.0, 27.0], (0.0, t_end)), hq.Vern7(), saveat=t, rtol=1e-12, atol=1e-12
    )
    return t, sol.y


LORENZ_TRUE = {
    "x": {"x": -10.0, "y": 10.0},
    "y": {"x": 28.0, "x*z": -1.0, "y": -1.0},
    "z": {"x*y": 1.0, "z": -8 / 3},
}


def _coefficients(model) -> dict[str, dict[str, float]]:
    out = {}
    for s, e in model.equations.items():
        terms = {}
        for term in sp.Add.make_args(sp.expand(e)):
            coeff, rest = term.as_coeff_Mul()
            terms[str(rest)] = float(coeff)
        out[str(s)] = terms
    return out


@pytest.mark.parametrize("optimizer", ["stlsq", "sr3"])
def test_sindy_recovers_lorenz_within_one_percent(optimizer: str) -> None:
    t, Y = _lorenz_data()
    model = discover(
        t,
        Y,
        method=SINDy(library=PolynomialLibrary(2), threshold=0.5, optimizer=optimizer),
        states=["x", "y", "z"],
        derivative=FiniteDifference(order=4),
    )
    found = _coefficients(model)
    assert {k: set(v) for k, v in found.items()} == {k: set(v) for k, v in LORENZ_TRUE.items()}
    for eq, terms in LORENZ_TRUE.items():
        for term, true in terms.items():
            assert abs(found[eq][term] - true) <= 0.01 * abs(true), (eq, term, found[eq][term])
    assert (model.r2 > 0.9999).all()


def test_discovered_model_callables_and_symbolic_ode_agree() -> None:
    t, Y = _lorenz_data(t_end=5.0)
    model = discover(
        t, Y, method=SINDy(threshold=0.5), states=["x", "y", "z"], derivative=FiniteDifference(4)
    )
    pts = np.random.default_rng(0).normal(size=(7, 3)) * 5
    f_np = model.to_numpy()(0.0, pts)
    f_t = model.to_torch()(torch.zeros(7, dtype=torch.float64), torch.from_numpy(pts), None)
    np.testing.assert_allclose(f_np, f_t.numpy(), rtol=1e-12)
    ode = model.to_symbolic_ode()
    np.testing.assert_allclose(
        ode.f(torch.zeros(7, dtype=torch.float64), torch.from_numpy(pts), None).numpy(),
        f_np,
        rtol=1e-12,
    )
    param = model.to_symbolic_ode(parametrize=True)
    assert len(param.params) == 7  # the seven Lorenz terms
    pv = param.parameter_vector()
    np.testing.assert_allclose(
        param.f(torch.zeros(7, dtype=torch.float64), torch.from_numpy(pts), pv).numpy(),
        f_np,
        rtol=1e-12,
    )
    sol = hq.solve(
        param.problem(Y[0], (0.0, 1.0)), hq.Tsit5(), rtol=1e-8, atol=1e-10, saveat=t[:101]
    )
    assert float((sol.y - Y[:101]).abs().max()) < 0.05
    assert "\\frac{\\mathrm{d} x}{\\mathrm{d} t}" in model.latex()


def test_threshold_sweep_picks_the_sparse_model() -> None:
    # a damped oscillator x' = v, v' = -4x - 0.5v (no invariant makes the library degenerate)
    v, g = sp.symbols("v g")
    osc = SymbolicODE({x: v, v: -4 * x - g * v}, params={g: 0.5})
    t = torch.linspace(0, 6, 601, dtype=torch.float64)
    Y = hq.solve(
        osc.problem([1.0, 0.0], (0.0, 6.0)), hq.Vern7(), saveat=t, rtol=1e-12, atol=1e-12
    ).y
    model = discover(
        t,
        Y,
        method=SINDy(library=PolynomialLibrary(3), threshold=list(10.0 ** np.arange(-4, 0.5, 0.5))),
        states=["x", "v"],
        derivative=FiniteDifference(6),
    )
    found = _coefficients(model)
    assert set(found["x"]) == {"v"} and set(found["v"]) == {"x", "v"}
    assert abs(found["v"]["x"] + 4) < 1e-4 and abs(found["v"]["v"] + 0.5) < 1e-4
    assert len(model.info["sweep"]) == 9
    # every distinct set of terms of the sweep, sparsest first, the chosen one among them
    sizes = [sum(len(_coefficients(m)[k]) for k in ("x", "v")) for m in model.alternatives]
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes) and sizes[0] >= 1
    assert any(_coefficients(m) == found for m in model.alternatives)
    assert all(np.isfinite(m.r2).all() for m in model.alternatives)
    assert discover(t, Y, method=SINDy(threshold=0.1), states=["x", "v"]).alternatives == []


def test_libraries_make_the_expected_terms() -> None:
    assert PolynomialLibrary(2).terms([x, y], t_sym) == [1, x, y, x**2, x * y, y**2]
    assert PolynomialLibrary(2, include_bias=False, interaction_only=True).terms([x, y], t_sym) == [
        x,
        y,
        x * y,
    ]
    assert FourierLibrary(2, include_cos=False).terms([x], t_sym) == [sp.sin(x), sp.sin(2 * x)]
    lib = PolynomialLibrary(1) + CustomLibrary(["x/(1 + x)", lambda x_, y_: [x_ * y_, x_]])
    assert lib.terms([x, y], t_sym) == [1, x, y, x / (1 + x), x * y]
    with pytest.raises(ValueError, match=r"not states"):
        CustomLibrary(["x*q"]).terms([x], t_sym)
    with pytest.raises(ValueError, match=r"not finite on the data"):
        discover(
            np.linspace(0, 1, 11),
            np.zeros((11, 1)),
            method=SINDy(library=CustomLibrary(["log(x0)"])),
        )


def test_derivative_estimators_converge_and_smooth_noise() -> None:
    errs = []
    for n in (51, 101, 201):
        t = np.linspace(0, 2, n)
        Y = np.stack([np.sin(3 * t)], 1)
        errs.append(
            [
                np.abs(FiniteDifference(k).estimate(t, Y)[:, 0] - 3 * np.cos(3 * t)).max()
                for k in (2, 4)
            ]
        )
    errs = np.array(errs)
    slopes = np.log(errs[0] / errs[-1]) / np.log(4)  # h shrinks 4×
    assert 1.8 < slopes[0] < 2.3 and 3.6 < slopes[1] < 4.4, slopes
    # uneven spacing works too
    t = np.sort(np.random.default_rng(0).uniform(0, 2, 200))
    assert (
        np.abs(
            FiniteDifference(4).estimate(t, np.sin(3 * t)[:, None])[:, 0] - 3 * np.cos(3 * t)
        ).max()
        < 1e-3
    )
    # noisy samples: smoothing beats raw differences by far
    t = np.linspace(0, 2 * np.pi, 400)
    noisy = (np.sin(t) + 0.01 * np.random.default_rng(1).normal(size=t.size))[:, None]
    true = np.cos(t)
    raw = np.sqrt(np.mean((FiniteDifference().estimate(t, noisy)[:, 0] - true) ** 2))
    sg = np.sqrt(
        np.mean((SmoothedFiniteDifference(window_length=41).estimate(t, noisy)[:, 0] - true) ** 2)
    )
    spl = np.sqrt(np.mean((SplineDerivative().estimate(t, noisy)[:, 0] - true) ** 2))
    assert sg < raw / 5 and spl < raw / 5, (raw, sg, spl)
    with pytest.raises(ValueError, match=r"uniformly spaced"):
        SmoothedFiniteDifference().estimate(np.array([0, 1, 3, 4, 5, 6.0]), np.zeros((6, 1)))
    with pytest.raises(ValueError, match=r"order must be an even int"):
        FiniteDifference(3)


def test_discover_validates_its_input() -> None:
    t = np.linspace(0, 1, 20)
    with pytest.raises(ValueError, match=r"y must be \(T, n\)"):
        discover(t, np.zeros(20))
    with pytest.raises(ValueError, match=r"states must name the 2 columns"):
        discover(t, np.zeros((20, 2)), states=["x"])
    with pytest.raises(ValueError, match=r"dy must be shaped like y"):
        discover(t, np.zeros((20, 2)), np.zeros((20, 3)))
    with pytest.raises(ValueError, match=r"NaN or inf"):
        discover(t, np.full((20, 1), np.nan))
    with pytest.raises(TypeError, match=r"method must be"):
        discover(t, np.zeros((20, 1)), method="sindy")
    with pytest.raises(ValueError, match=r"optimizer must be"):
        SINDy(optimizer="lasso")


def test_several_trajectories_are_pooled() -> None:
    tt = np.linspace(0, 1, 101)
    Y = np.stack([np.exp(-k * tt)[:, None] for k in (0.5, 1.0, 2.0)])  # three decays at rates k
    # one model cannot fit different rates: pooled data are fit by x' = -k x only per trajectory;
    # here every trajectory follows x' = -x·k with the same k = 1 after rescaling t
    Y = np.stack([np.exp(-tt)[:, None] * s for s in (0.5, 1.0, 2.0)])
    model = discover(tt, Y, method=SINDy(threshold=0.05), derivative=FiniteDifference(4))
    found = _coefficients(model)
    assert set(found["x0"]) == {"x0"} and abs(found["x0"]["x0"] + 1) < 1e-4


# --------------------------------------------------------------------------- PySR and Julia


def test_pysr_without_julia_fails_fast_with_the_install_hint(monkeypatch, tmp_path: Path) -> None:
    for var in ("PYTHON_JULIACALL_EXE", "PYTHON_JULIAPKG_EXE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no julia, no juliaup
    monkeypatch.setenv("PYTHON_JULIAPKG_PROJECT", str(tmp_path / "env"))  # no juliapkg install
    assert find_julia() is None
    before = "pysr" in sys.modules, "juliacall" in sys.modules
    start = time.perf_counter()
    t = np.linspace(0, 1, 20)
    with pytest.raises(JuliaNotInstalledError, match=r"hybrideq julia install") as info:
        discover(t, np.exp(-t)[:, None], method=PySR(niterations=5))
    assert time.perf_counter() - start < 5.0
    assert "pip install" in str(info.value)
    # nothing that starts Julia was imported
    assert ("pysr" in sys.modules, "juliacall" in sys.modules) == before


def test_find_julia_honours_the_override_variables(monkeypatch, tmp_path: Path) -> None:
    exe = tmp_path / "julia"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    monkeypatch.delenv("PYTHON_JULIACALL_EXE", raising=False)
    monkeypatch.setenv("PYTHON_JULIAPKG_EXE", str(exe))
    assert find_julia() == str(exe)
    monkeypatch.delenv("PYTHON_JULIAPKG_EXE")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("PYTHON_JULIAPKG_PROJECT", str(tmp_path / "env"))
    assert find_julia() == str(exe)


def test_env_defaults_are_set_but_never_override(monkeypatch) -> None:
    from hybrideq.engines.julia import JULIA_ENV_DEFAULTS, apply_env_defaults

    monkeypatch.setenv("PYTHON_JULIACALL_THREADS", "2")
    monkeypatch.delenv("PYTHON_JULIACALL_OPTIMIZE", raising=False)
    monkeypatch.delenv("PYTHON_JULIACALL_HANDLE_SIGNALS", raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        values = apply_env_defaults()
    assert values["PYTHON_JULIACALL_THREADS"] == "2"
    assert values["PYTHON_JULIACALL_OPTIMIZE"] == JULIA_ENV_DEFAULTS["PYTHON_JULIACALL_OPTIMIZE"]
    assert os.environ["PYTHON_JULIACALL_HANDLE_SIGNALS"] == "yes"


def test_pysr_regressor_keywords() -> None:
    kw = PySR(
        unary_operators=("sin",),
        niterations=7,
        random_state=1,
        deterministic=True,
        options={"maxdepth": 5},
    ).regressor_kwargs()
    assert kw["unary_operators"] == ["sin"] and kw["niterations"] == 7
    assert kw["deterministic"] is True and kw["parallelism"] == "serial" and kw["maxdepth"] == 5


@pytest.mark.julia
def test_pysr_discovers_a_decay_rate_with_julia() -> None:
    if find_julia() is None or importlib.util.find_spec("pysr") is None:
        pytest.skip("needs PySR and an installed Julia (hybrideq julia install)")
    t = np.linspace(0, 2, 60)
    Y = np.stack([np.exp(-1.5 * t), np.exp(-0.5 * t)], 1)
    model = discover(
        t,
        Y,
        -np.array([1.5, 0.5]) * Y,
        method=PySR(niterations=30, random_state=0, deterministic=True),
        states=["u", "v"],
    )
    pts = np.array([[0.3, 0.7], [1.2, 0.1]])
    np.testing.assert_allclose(model.to_numpy()(0.0, pts), -np.array([1.5, 0.5]) * pts, rtol=1e-3)


# --------------------------------------------------------------------------- refit and UDE


def test_fit_parameters_recovers_a_decay_rate_and_y0() -> None:
    k = sp.Symbol("k")
    decay = SymbolicODE({x: -k * x}, params={k: 1.0})
    t = torch.linspace(0, 2, 21, dtype=torch.float64)
    data = 1.7 * torch.exp(-0.7 * t)[:, None]
    fit = fit_parameters(decay, t, data, y0=[1.0], fit_y0=True)
    assert abs(fit.params[k] - 0.7) < 1e-6 and abs(float(fit.y0[0]) - 1.7) < 1e-6
    assert fit.loss < 1e-12 and fit.history[0] > fit.loss
    with pytest.raises(ValueError, match=r"not parameters of the model"):
        fit_parameters(decay, t, data, fit=["q"])
    with pytest.raises(ValueError, match=r"t must be \(T,\) and y \(T, 1\)"):
        fit_parameters(decay, t, data[:-1])


def test_best_subset_candidates_are_the_best_least_squares_fits_of_each_size() -> None:
    t = np.linspace(0, 3, 61)
    Y = np.stack([1 + 0.5 * np.sin(t), 2 + np.cos(1.3 * t)], 1)
    xy = Y[:, 0] * Y[:, 1]
    dy = np.stack([-0.9 * xy + 0.05 * Y[:, 0] ** 2, 0.8 * xy - 0.3 * Y[:, 1]], 1)
    model = discover(t, Y, dy, method=SINDy(threshold=[0.5, 1.0], best_subset=2), states=["x", "y"])
    subsets = {m.info["threshold"]: _coefficients(m) for m in model.alternatives}
    two = subsets["best 2-term subsets"]
    assert two["x"] == {"x*y": pytest.approx(-0.9), "x**2": pytest.approx(0.05)}
    assert two["y"] == {"x*y": pytest.approx(0.8), "y": pytest.approx(-0.3)}
    # the one-term model (found by the sweep too; the duplicate is kept once)
    ones = [c for c in subsets.values() if set(c["x"]) == set(c["y"]) == {"x*y"}]
    lstsq = np.linalg.lstsq(xy[:, None], dy[:, 1], rcond=None)[0][0]
    assert len(ones) == 1 and ones[0]["y"]["x*y"] == pytest.approx(lstsq, rel=1e-9)
    with pytest.raises(ValueError, match=r"best_subset must be >= 0"):
        SINDy(best_subset=-1)
    with pytest.raises(ValueError, match=r"at most 20"):
        discover(t, Y, dy, method=SINDy(library=PolynomialLibrary(5), best_subset=1))


def test_with_defaults_replaces_parameter_values() -> None:
    k, q = sp.symbols("k q")
    model = SymbolicODE({x: -k * x + q}, params={k: 1.0, q: 0.0})
    new = model.with_defaults({"k": 2.5})
    assert new.defaults == {k: 2.5, q: 0.0} and model.defaults == {k: 1.0, q: 0.0}
    p = new.parameter_vector(None)
    assert p is not None and p.tolist() == [2.5, 0.0]
    np.testing.assert_allclose(new.to_numpy()(0.0, np.array([2.0]), p.numpy()), [-5.0])
    with pytest.raises(ValueError, match=r"values: r is not a parameter"):
        model.with_defaults({"r": 1.0})


def test_information_criteria_match_their_formulas() -> None:
    n, k, mse = 62, 4, 2e-3
    aic = n * np.log(mse) + 2 * k
    assert information_criterion("aic", mse, k, n) == pytest.approx(aic, rel=1e-14)
    assert information_criterion("aicc", mse, k, n) == pytest.approx(
        aic + 2 * k * (k + 1) / (n - k - 1), rel=1e-14
    )
    assert information_criterion("bic", mse, k, n) == pytest.approx(
        n * np.log(mse) + k * np.log(n), rel=1e-14
    )
    assert information_criterion("aicc", mse, 61, 62) == np.inf
    assert information_criterion("aic", float("inf"), 1, 62) == np.inf


def test_select_model_prefers_the_true_terms_over_ones_that_fit_the_noise() -> None:
    """Lotka–Volterra with 5 % noise: a spurious x² term lowers the residual a little but
    not enough to pay for its parameter; without the interaction term the fit is poor."""
    from hybrideq import ude_demo

    data = ude_demo.make_data(seed=0)
    b1, g1, e1 = sp.symbols("c_x_0 c_y_0 c_x_1")
    known = SymbolicODE({x: a * x, y: -d * y}, params={a: 1.3, d: 1.8})
    true = known.add_terms({x: b1 * x * y, y: g1 * x * y}, params={b1: -0.8, g1: 0.7})
    spurious = known.add_terms(
        {x: b1 * x * y + e1 * x**2, y: g1 * x * y}, params={b1: -0.8, g1: 0.7, e1: 0.0}
    )
    missing = known.add_terms({y: g1 * x * y}, params={g1: 0.7})
    choice = select_model(
        [missing, spurious, true], data.t, data.noisy, fit="c_*", fit_y0=True, progress=False
    )
    assert choice.index == 2 and [r["k"] for r in choice.table] == [3, 5, 4]
    assert choice.table[1]["mse"] <= choice.table[2]["mse"] * (1 + 1e-6)  # spurious fits more
    assert choice.table[0]["delta"] > 50  # the missing term is plainly needed
    # the refit is the least-squares fit of the true structure (seed 0: β 0.858, γ 0.848)
    direct = fit_parameters(true, data.t, data.noisy, fit=[b1, g1], fit_y0=True)
    assert choice.model.defaults[b1] == pytest.approx(direct.params[b1], rel=1e-6)
    assert abs(-choice.model.defaults[b1] - 0.9) / 0.9 < 0.1
    assert abs(choice.model.defaults[g1] - 0.8) / 0.8 < 0.1
    assert "→" in str(choice) and "aicc" in str(choice)
    # nothing to fit: the candidate is scored as it is
    lv = ude_demo.lotka_volterra()
    plain = select_model([lv], data.t, data.noisy, fit=[], progress=False)
    sol = hq.solve(lv.problem(data.noisy[0], (0.0, 3.0)), hq.Tsit5(), saveat=data.t, rtol=1e-7)
    assert plain.table[0]["k"] == 0 and plain.fit.loss == pytest.approx(
        float(((sol.y - data.noisy) ** 2).mean()), rel=1e-6
    )
    with pytest.raises(ValueError, match=r"criterion must be one of"):
        select_model([true], data.t, data.noisy, criterion="hqc")
    with pytest.raises(ValueError, match=r"no candidate models"):
        select_model([], data.t, data.noisy)
    with pytest.raises(TypeError, match=r"models must be SymbolicODEs"):
        select_model([true, "x' = -x"], data.t, data.noisy)


class _ExactMissing(torch.nn.Module):
    """The exact missing Lotka–Volterra interaction terms, as a module."""

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        xy = u[..., 0] * u[..., 1]
        return torch.stack([-0.9 * xy, 0.8 * xy], -1)


def test_ude_with_the_exact_missing_term_matches_the_full_model_and_discovery_recovers_it() -> None:
    known = SymbolicODE({x: a * x, y: -d * y}, params={a: 1.3, d: 1.8})
    ude = hq.nn.UDE(known, _ExactMissing(), rtol=1e-10, atol=1e-12)
    t = torch.arange(0, 3.0001, 0.05, dtype=torch.float64)
    u0 = torch.tensor([0.44249296, 4.6280594], dtype=torch.float64)
    out = ude(u0, t)
    lv = known.add_terms({x: -b * x * y, y: c * x * y}, params={b: 0.9, c: 0.8})
    ref = hq.solve(lv.problem(u0, (0.0, 3.0)), hq.Vern7(), saveat=t, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out.y, ref.y, rtol=1e-7, atol=1e-8)
    found = ude.discover(t, out.y, SINDy(library=PolynomialLibrary(3), threshold=0.1))
    coeffs = _coefficients(found)
    assert coeffs == {
        "x": {"x*y": pytest.approx(-0.9, rel=1e-9)},
        "y": {"x*y": pytest.approx(0.8, rel=1e-9)},
    }
    full = ude.to_symbolic_ode(found)
    assert len(full.params) == 4
    sol = hq.solve(full.problem(u0, (0.0, 3.0)), hq.Vern7(), saveat=t, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(sol.y, ref.y, rtol=1e-8, atol=1e-9)


def test_ude_trains_its_network_and_optionally_the_known_parameters() -> None:
    known = SymbolicODE({x: a * x, y: -d * y}, params={a: 1.0, d: 1.0})
    net = torch.nn.Sequential(torch.nn.Linear(2, 4), hq.nn.RBF(), torch.nn.Linear(4, 2)).double()
    ude = hq.nn.UDE(known, net, train_known=True, mask=[1.0, 0.0])
    t = torch.linspace(0, 1, 6, dtype=torch.float64)
    out = ude(torch.tensor([1.0, 2.0], dtype=torch.float64), t)
    out.y.sum().backward()
    assert ude.known_p.grad is not None and ude.known_p.grad.abs().sum() > 0
    assert all(p.grad is not None for p in net.parameters())
    term = ude.neural_term(torch.ones(3, 2, dtype=torch.float64))
    assert torch.equal(term[:, 1], torch.zeros(3, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"neural must be an nn.Module"):
        hq.nn.UDE(known, lambda u: u)
    with pytest.raises(TypeError, match=r"known must be"):
        hq.nn.UDE(3, net)


@pytest.mark.slow
def test_ude_lotka_volterra_study_recovers_the_interaction_terms(tmp_path: Path) -> None:
    from hybrideq import ude_demo

    result = ude_demo.run_study(seed=1, adam_iterations=200, lbfgs_iterations=30, progress=False)
    assert result.check["exact_terms"], result.check["terms"]
    for name, (found, true, err) in result.check["coefficients"].items():
        assert err <= 0.10, (name, found, true)
    assert result.errors["recovered_rms"] < result.errors["ude_rms"]
    assert ude_demo.plot(result, tmp_path / "lv.png") and (tmp_path / "lv.png").stat().st_size > 0


def test_julia_install_command_calls_juliapkg_resolve(monkeypatch, capsys) -> None:
    """A recording stand-in for juliapkg (not Julia): checks the command's Python side only."""
    import types

    from hybrideq import cli

    calls: list[str] = []
    fake = types.ModuleType("juliapkg")
    fake.resolve = lambda: calls.append("resolve")  # type: ignore[attr-defined]
    fake.executable = lambda: "/opt/julia/bin/julia"  # type: ignore[attr-defined]
    fake.project = lambda: "/env/julia_env"  # type: ignore[attr-defined]
    fake.add = lambda name, uuid, version: calls.append(f"add {name} {version}")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "juliapkg", fake)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object())
    assert cli.main(["julia", "install", "--no-precompile"]) == 0
    assert calls == ["resolve"] and "/opt/julia/bin/julia" in capsys.readouterr().out
    # without --no-precompile it then loads the engine once (a recording stand-in again)
    from hybrideq.engines.julia import _engine

    monkeypatch.setattr(_engine, "load_engine", lambda: calls.append("load"))
    assert cli.main(["julia", "install"]) == 0
    assert calls == ["resolve", "resolve", "load"] and "ready" in capsys.readouterr().out
    assert cli.main(["julia", "install", "--cuda", "--no-precompile"]) == 0
    assert calls[-2:] == ["add CUDA 5", "resolve"]


def test_demo_spiral_is_still_reachable(tmp_path: Path) -> None:
    from hybrideq import cli

    assert cli.main(["demo", "spiral", "--steps", "0", "--no-plot"]) == 0
