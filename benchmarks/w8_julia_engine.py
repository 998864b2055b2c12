"""W8 (BENCHMARKS.md): the Julia engine on sympy-defined problems, against pure Julia.

The same problem, solver, tolerance and save points through

- ``hybrideq (julia)``: ``solve(..., engine="julia")`` on a :class:`SymbolicODE` problem
  (generated Julia code, analytic Jacobian, DifferentialEquations.jl through juliacall),
- ``pure Julia``: the same generated ``f!``/``jac!`` solved by ``OrdinaryDiffEq.solve``
  timed inside Julia (no Python in the timed region): the floor the engine is held to
  (aim: within 1.2×),
- ``hybrideq (torch)``: the torch engine,
- ``diffeqpy``: where installed (it shares the juliapkg environment),

for W1 (Lorenz, Tsit5/Vern7), W2 (Robertson, Rodas5P/KenCarp4/QNDF), W3 (HIRES,
Rodas5P) and W4 (a Robertson rate sweep of 1024 trajectories as one batch: an
``EnsembleProblem`` with ``EnsembleThreads`` on the Julia side, the batched torch engine).
Every row has its error
against a reference (the torch engine at rtol 1e-12 with Vern7/Rodas5P, whose accuracy on
these problems issue 5 checked against the published reference values).

Runs wherever Julia is installed (``hybrideq julia install``); without Julia the Julia rows
say so and the torch rows still run. ``--quick``: shorter spans, fewer repeats.

Run from the repository root::

    python benchmarks/w8_julia_engine.py --quick
"""

from __future__ import annotations

from typing import Any

import _common as C  # first: pins the thread count before torch/numpy/jax load
import sympy as sp
import torch

COLUMNS = [
    ("workload", "workload"),
    ("contender", "contender"),
    ("solver", "solver"),
    ("time_ms", "time [ms]"),
    ("ratio", "× pure Julia"),
    ("error", "max rel err"),
    ("nfe", "NFE"),
]

_PURE_JULIA = r"""
function hybrideq_w8_pure(model, u0, tspan, p, alg, ts, reltol, abstol, repeats)
    f! = getfield(model, Symbol("f!"))
    jac! = getfield(model, Symbol("jac!"))
    prob = HybridEqEngine.ODEProblem(HybridEqEngine.ODEFunction{true}(f!; jac = jac!),
        Vector{Float64}(u0), (Float64(tspan[1]), Float64(tspan[2])), Vector{Float64}(p))
    saveat = Vector{Float64}(ts)
    HybridEqEngine.SciMLBase.solve(prob, alg; reltol, abstol, saveat)  # compile
    times = Float64[]
    for _ in 1:repeats
        push!(times, @elapsed HybridEqEngine.SciMLBase.solve(prob, alg; reltol, abstol, saveat))
    end
    sort!(times)
    return times[(length(times) + 1) ÷ 2]
end

function hybrideq_w8_pure_ensemble(model, u0s, ps, tspan, alg, ts, reltol, abstol, repeats)
    f! = getfield(model, Symbol("f!"))
    jac! = getfield(model, Symbol("jac!"))
    U = Matrix{Float64}(u0s)
    P = Matrix{Float64}(ps)
    prob = HybridEqEngine.ODEProblem(HybridEqEngine.ODEFunction{true}(f!; jac = jac!),
        U[:, 1], (Float64(tspan[1]), Float64(tspan[2])), P[:, 1])
    prob_func(prob, ctx) = HybridEqEngine.remake(prob; u0 = U[:, ctx.sim_id], p = P[:, ctx.sim_id])
    ens = HybridEqEngine.EnsembleProblem(prob; prob_func, safetycopy = false)
    saveat = Vector{Float64}(ts)
    run() = HybridEqEngine.SciMLBase.solve(ens, alg, HybridEqEngine.EnsembleThreads();
        trajectories = size(U, 2), reltol, abstol, saveat)
    run()  # compile
    times = Float64[]
    for _ in 1:repeats
        push!(times, @elapsed run())
    end
    sort!(times)
    return times[(length(times) + 1) ÷ 2]
end
"""


def lorenz() -> Any:
    from hybrideq.symbolic import SymbolicODE

    x, y, z, s, r, b = sp.symbols("x y z sigma rho beta")
    return SymbolicODE(
        {x: s * (y - x), y: x * (r - z) - y, z: x * y - b * z},
        params={s: 10.0, r: 28.0, b: 8.0 / 3.0},
    )


def robertson() -> Any:
    from hybrideq.symbolic import SymbolicODE

    y1, y2, y3, k1, k2, k3 = sp.symbols("y1 y2 y3 k1 k2 k3")
    return SymbolicODE(
        {
            y1: -k1 * y1 + k3 * y2 * y3,
            y2: k1 * y1 - k2 * y2**2 - k3 * y2 * y3,
            y3: k2 * y2**2,
        },
        params={k1: 0.04, k2: 3e7, k3: 1e4},
    )


def hires() -> Any:
    from hybrideq.symbolic import SymbolicODE

    y = sp.symbols("y1:9")
    k = sp.symbols("k1:10")
    o = sp.Symbol("o")
    k1, k2, k3, k4, k5, k6, k7, k8, k9 = k
    f7 = k7 * y[5] * y[7] - (k2 + k8 + k9) * y[6]
    eqs = [
        -k1 * y[0] + k2 * y[1] + k6 * y[2] + o,
        k1 * y[0] - (k2 + k3) * y[1],
        -(k6 + k1) * y[2] + k2 * y[3] + k5 * y[4],
        k3 * y[1] + k1 * y[2] - (k4 + k2) * y[3],
        -(k5 + k1) * y[4] + k2 * (y[5] + y[6]),
        -k7 * y[5] * y[7] + k8 * y[3] + k1 * y[4] - k2 * y[5] + k8 * y[6],
        f7,
        -f7,
    ]
    values = (1.71, 0.43, 8.32, 0.69, 0.035, 8.32, 280.0, 0.69, 0.69, 0.0007)
    return SymbolicODE(
        dict(zip(y, eqs, strict=True)), params=dict(zip([*k, o], values, strict=True))
    )


def workloads(quick: bool) -> list[dict[str, Any]]:
    import hybrideq as hq

    lor_t = 10.0 if quick else 100.0
    rob_t = 1e3 if quick else 1e5
    return [
        {
            "name": "W1 Lorenz",
            "model": lorenz(),
            "y0": [1.0, 0.0, 0.0],
            "tspan": (0.0, lor_t),
            "saveat": torch.linspace(0, lor_t, 1001, dtype=torch.float64),
            "rtol": 1e-8,
            "atol": 1e-8,
            "solvers": [hq.Tsit5(), hq.Vern7()],
            "ref": hq.Vern7(),
        },
        {
            "name": "W2 Robertson",
            "model": robertson(),
            "y0": [1.0, 0.0, 0.0],
            "tspan": (0.0, rob_t),
            "saveat": torch.logspace(-5, 5 if not quick else 3, 50, dtype=torch.float64),
            "rtol": 1e-6,
            "atol": 1e-10,
            "solvers": [hq.Rodas5P(), hq.KenCarp4(), hq.QNDF()],
            "ref": hq.Rodas5P(),
        },
        {
            "name": "W3 HIRES",
            "model": hires(),
            "y0": [1.0, 0, 0, 0, 0, 0, 0, 0.0057],
            "tspan": (0.0, 321.8122),
            "saveat": torch.linspace(0, 321.8122, 101, dtype=torch.float64),
            "rtol": 1e-8,
            "atol": 1e-10,
            "solvers": [hq.Rodas5P()],
            "ref": hq.Rodas5P(),
        },
        {
            # W4: a Robertson rate sweep, one trajectory per (k1, k2, k3), as one batch
            "name": f"W4 Robertson ×{64 if quick else 1024}",
            "model": robertson(),
            "y0": torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64).expand(
                64 if quick else 1024, 3
            ),
            "p": _rate_sweep(64 if quick else 1024),
            "tspan": (0.0, 1e2 if quick else 1e5),
            "saveat": torch.tensor([1e2 if quick else 1e5], dtype=torch.float64),
            "rtol": 1e-6,
            "atol": 1e-10,
            "solvers": [hq.Rodas5P()],
            "ref": hq.Rodas5P(),
        },
    ]


def _rate_sweep(n: int) -> torch.Tensor:
    """Robertson rates scaled by factors in [0.5, 2] (a deterministic sweep)."""
    g = torch.Generator().manual_seed(0)
    scale = 2.0 ** (2 * torch.rand(n, 3, generator=g, dtype=torch.float64) - 1)
    return scale * torch.tensor([0.04, 3e7, 1e4], dtype=torch.float64)


def _error(y: torch.Tensor, ref: torch.Tensor) -> float:
    scale = ref.abs().clamp_min(1e-6)
    return float(((y - ref).abs() / scale).max())


def _diffeqpy_row(
    w: dict[str, Any],
    prob: Any,
    solver: Any,
    ref: torch.Tensor,
    pure_s: float | None,
    repeats: int,
    base: dict[str, Any],
) -> dict[str, Any]:
    """diffeqpy as its users write it: a NumPy right-hand side ``f(du, u, p, t)`` called
    back from Julia (diffeqpy README), the same algorithm, tolerances and save points.

    Stiff methods get ``AutoFiniteDiff()`` (a Python function cannot take dual numbers;
    diffeqpy README "Known Limitations")."""
    import numpy as np

    from hybrideq.engines.julia._algorithms import julia_algorithm

    try:
        from diffeqpy import de

        rhs = w["model"].to_numpy()
        p = prob.p.numpy()

        def f(du: Any, u: Any, _p: Any, t: float) -> None:
            np.asarray(du)[:] = rhs(t, np.asarray(u), p)

        alg = de.seval(julia_algorithm(solver, autodiff="AutoFiniteDiff()"))
        jprob = de.ODEProblem(f, prob.y0.tolist(), tuple(w["tspan"]))
        saveat = w["saveat"].tolist()

        def run() -> Any:
            return de.solve(jprob, alg, reltol=w["rtol"], abstol=w["atol"], saveat=saveat)

        timing = C.timeit(run, warmup=1, repeats=repeats)
        y = torch.as_tensor(np.asarray(de.stack(timing.result.u)).T)
    except Exception as exc:  # a peer's failure is reported, never hidden
        return {**base, "contender": "diffeqpy", "status": f"diffeqpy failed: {exc!s:.120}"}
    return {
        **base,
        "contender": "diffeqpy",
        "time_ms": 1e3 * timing.median,
        "ratio": timing.median / pure_s if pure_s else None,
        "error": _error(y, ref),
    }


def main() -> int:
    args = C.make_parser(__doc__.splitlines()[0]).parse_args()
    C.setup()
    hq = C.import_hybrideq()
    from hybrideq.engines import julia_available

    meta = C.machine_info()
    meta["hybrideq"] = hq.__version__
    repeats = args.repeats or (3 if args.quick else 7)
    have_julia = julia_available()
    meta["julia"] = "installed" if have_julia else C.NOT_INSTALLED
    C.print_header("W8: the Julia engine on sympy-defined problems", args, meta)
    jl = None
    if have_julia:
        from hybrideq.engines.julia._engine import load_engine

        engine = load_engine()
        import juliacall

        juliacall.Main.seval(_PURE_JULIA)
        jl = (engine, juliacall.Main.hybrideq_w8_pure, juliacall.Main.hybrideq_w8_pure_ensemble)
    rows: list[dict[str, Any]] = []
    for w in workloads(args.quick):
        prob = w["model"].problem(w["y0"], w["tspan"])
        if "p" in w:
            prob = prob.remake(p=w["p"])
        opts = {"saveat": w["saveat"], "rtol": w["rtol"], "atol": w["atol"]}
        ref = hq.solve(prob, w["ref"], saveat=w["saveat"], rtol=1e-12, atol=1e-14, engine="torch").y
        for solver in w["solvers"]:
            base = {"workload": w["name"], "solver": solver.name}
            pure_s = None
            if jl is not None and C.selected("pure Julia", args.only):
                from hybrideq.engines.julia._algorithms import julia_algorithm

                engine, pure, pure_ensemble = jl
                module = engine.load_model(w["model"].julia_source())
                alg = engine.algorithm(julia_algorithm(solver))
                batched = prob.batched
                p = prob.p.numpy().T if batched else prob.p.numpy()  # Julia's np × batch
                pure_s = float(
                    (pure_ensemble if batched else pure)(
                        module,
                        prob.y0.contiguous().numpy().T if batched else prob.y0.numpy(),
                        w["tspan"],
                        p,
                        alg,
                        w["saveat"].numpy(),
                        w["rtol"],
                        w["atol"],
                        repeats,
                    )
                )
                rows.append(
                    {**base, "contender": "pure Julia", "time_ms": 1e3 * pure_s, "ratio": 1.0}
                )
            elif not have_julia:
                rows.append(
                    {
                        **base,
                        "contender": "pure Julia",
                        "status": "pure Julia: Julia not installed (hybrideq julia install)",
                    }
                )
            for engine_name in ("julia", "torch"):
                contender = f"hybrideq ({engine_name})"
                if not C.selected(contender, args.only):
                    continue
                if engine_name == "julia" and not have_julia:
                    rows.append(
                        {
                            **base,
                            "contender": contender,
                            "status": f"{contender}: Julia not installed (hybrideq julia install)",
                        }
                    )
                    continue
                timing = C.timeit(
                    lambda s=solver, e=engine_name, pr=prob, o=opts: hq.solve(pr, s, engine=e, **o),
                    warmup=1,
                    repeats=repeats,
                )
                sol = timing.result
                rows.append(
                    {
                        **base,
                        "contender": contender,
                        "time_ms": 1e3 * timing.median,
                        "ratio": timing.median / pure_s if pure_s else None,
                        "error": _error(sol.y, ref),
                        "nfe": int(sol.stats.nf.sum()),
                    }
                )
            if not C.available("diffeqpy"):
                rows.append(C.missing_row("diffeqpy", "diffeqpy", **base))
            elif prob.batched:
                rows.append(
                    {**base, "contender": "diffeqpy", "status": "diffeqpy: one trajectory only"}
                )
            elif C.selected("diffeqpy", args.only):
                rows.append(_diffeqpy_row(w, prob, solver, ref, pure_s, repeats, base))
    C.print_table("W8: time, ratio to pure Julia, error", rows, COLUMNS)
    paths = C.write_results("w8_julia_engine", rows, meta, args.json)
    print("written:", ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
