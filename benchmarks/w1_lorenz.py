"""W1 (BENCHMARKS.md): the Lorenz system, one trajectory, non-stiff, float64.

σ=10, ρ=28, β=8/3, y0=(1, 0, 0), t ∈ [0, 100], rtol = atol = 1e-8, 1001 save points.
Contenders: scipy solve_ivp RK45/DOP853/LSODA, torchdiffeq dopri5 (and tsit5 where it
exists), torchode Tsit5, diffrax Tsit5 (jit; compile time apart), hybrideq Tsit5/Vern7.

Reference: scipy DOP853 at rtol = atol = 1e-13. Lorenz is chaotic (largest Lyapunov
exponent ≈ 0.9): an error of 1e-8 grows by e^0.9 per unit time, so beyond t ≈ 20–30 any two
solutions at these tolerances (the reference included) are different points of the same
attractor. The error over [0, 10] is the meaningful accuracy figure; the error over
[0, 100] is reported too, and is of the size of the attractor for every contender.

Run from the repository root::

    python benchmarks/w1_lorenz.py            # full: t ∈ [0, 100]
    python benchmarks/w1_lorenz.py --quick    # t ∈ [0, 10], fewer repeats
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import _common as C  # first: pins the thread count before torch/numpy/jax load
import numpy as np
import torch

SIGMA, RHO, BETA = 10.0, 28.0, 8.0 / 3.0
Y0 = (1.0, 0.0, 0.0)
RTOL = ATOL = 1e-8
REF_TOL = 1e-13
MEANINGFUL_T = 10.0

COLUMNS = [
    ("contender", "contender"),
    ("time_ms", "time [ms]"),
    ("ratio", "× hq Tsit5"),
    ("err_0_10", "max err [0,10]"),
    ("err_full", "max err [0,T]"),
    ("nfe", "NFE"),
    ("naccept", "accepted"),
    ("nreject", "rejected"),
    ("compile_s", "compile [s]"),
]


# --------------------------------------------------------------------------- reference


def lorenz_np(t: float, u: np.ndarray) -> list[float]:
    x, y, z = u
    return [SIGMA * (y - x), x * (RHO - z) - y, x * y - BETA * z]


def reference(ts: np.ndarray, tol: float) -> np.ndarray:
    from scipy.integrate import solve_ivp

    sol = solve_ivp(lorenz_np, (ts[0], ts[-1]), Y0, method="DOP853", t_eval=ts, rtol=tol, atol=tol)
    assert sol.success, sol.message
    return sol.y.T


# --------------------------------------------------------------------------- contenders
# Each returns a zero-argument callable that solves once and returns a dict with "y"
# ((T, 3) numpy) and whatever counts the library reports.


def scipy_runner(method: str, ts: np.ndarray) -> Callable[[], dict[str, Any]]:
    from scipy.integrate import solve_ivp

    def run() -> dict[str, Any]:
        sol = solve_ivp(
            lorenz_np, (ts[0], ts[-1]), Y0, method=method, t_eval=ts, rtol=RTOL, atol=ATOL
        )
        out: dict[str, Any] = {"y": sol.y.T, "nfe": int(sol.nfev), "ok": bool(sol.success)}
        if method == "LSODA":
            out["njev"] = int(sol.njev)
        return out

    return run


def lorenz_torch_single(t: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    x, y, z = u.unbind(-1)
    return torch.stack([SIGMA * (y - x), x * (RHO - z) - y, x * y - BETA * z], -1)


def torchdiffeq_runner(method: str, ts: np.ndarray) -> Callable[[], dict[str, Any]]:
    import torchdiffeq

    t = torch.as_tensor(ts, dtype=torch.float64)
    y0 = torch.tensor(Y0, dtype=torch.float64)
    count = [0]

    def f(t: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        count[0] += 1
        return lorenz_torch_single(t, u)

    def run() -> dict[str, Any]:
        count[0] = 0
        y = torchdiffeq.odeint(f, y0, t, rtol=RTOL, atol=ATOL, method=method)
        return {"y": y.numpy(), "nfe": count[0], "ok": True}

    return run


def torchode_runner(ts: np.ndarray) -> Callable[[], dict[str, Any]]:
    import torchode as to

    t = torch.as_tensor(ts, dtype=torch.float64)
    y0 = torch.tensor([Y0], dtype=torch.float64)
    term = to.ODETerm(lorenz_torch_single)
    step = to.Tsit5(term=term)
    # The integral controller, as diffrax's default PIDController(pcoeff=0, icoeff=1).
    ctrl = to.IntegralController(atol=ATOL, rtol=RTOL, term=term)
    solver = to.AutoDiffAdjoint(step, ctrl, max_steps=1_000_000)

    def run() -> dict[str, Any]:
        prob = to.InitialValueProblem(y0=y0, t_start=t[:1], t_end=t[-1:], t_eval=t[None])
        sol = solver.solve(prob)
        st = sol.stats
        nsteps = int(st["n_steps"][0])
        nacc = int(st["n_accepted"][0])
        return {
            "y": sol.ys[0].numpy(),
            "nfe": int(st["n_f_evals"][0]),
            "naccept": nacc,
            "nreject": nsteps - nacc,
            "ok": int(sol.status[0]) == 0,
        }

    return run


def diffrax_runner(ts: np.ndarray) -> tuple[Callable[[], dict[str, Any]], float]:
    """The jitted diffrax solve and its compile time (trace + lower + compile)."""
    import diffrax
    import jax
    import jax.numpy as jnp

    def vf(t: Any, u: Any, args: Any) -> Any:
        x, y, z = u[0], u[1], u[2]
        return jnp.stack([SIGMA * (y - x), x * (RHO - z) - y, x * y - BETA * z])

    term = diffrax.ODETerm(vf)
    ctrl = diffrax.PIDController(rtol=RTOL, atol=ATOL)

    def solve(y0: Any, t: Any) -> Any:
        return diffrax.diffeqsolve(
            term,
            diffrax.Tsit5(),
            t0=t[0],
            t1=t[-1],
            dt0=None,
            y0=y0,
            saveat=diffrax.SaveAt(ts=t),
            stepsize_controller=ctrl,
            max_steps=1_000_000,
        )

    y0 = jnp.asarray(Y0, dtype=jnp.float64)
    t = jnp.asarray(ts, dtype=jnp.float64)
    t0 = time.perf_counter()
    compiled = jax.jit(solve).lower(y0, t).compile()
    compile_s = time.perf_counter() - t0

    def run() -> dict[str, Any]:
        sol = compiled(y0, t)
        ys = np.asarray(jax.block_until_ready(sol.ys))
        st = sol.stats
        nsteps = int(st["num_steps"])
        return {
            "y": ys,
            # diffrax reports no NFE: Tsit5 is FSAL (6 new stages a step) plus f(t0) and
            # one evaluation for the initial step size.
            "nfe": 6 * nsteps + 2,
            "nfe_estimated": True,
            "naccept": int(st["num_accepted_steps"]),
            "nreject": int(st["num_rejected_steps"]),
            "ok": bool(sol.result == diffrax.RESULTS.successful),
        }

    return run, compile_s


def hybrideq_runner(solver_name: str, ts: np.ndarray) -> Callable[[], dict[str, Any]]:
    hq = C.import_hybrideq()
    t = torch.as_tensor(ts, dtype=torch.float64)
    solver = getattr(hq, solver_name)()
    tspan = (float(ts[0]), float(ts[-1]))

    def run() -> dict[str, Any]:
        prob = hq.library.lorenz(SIGMA, RHO, BETA, Y0, tspan)
        sol = hq.solve(prob, solver, saveat=t, rtol=RTOL, atol=ATOL)
        return {
            "y": sol.y.numpy(),
            "nfe": int(sol.stats.nf),
            "naccept": int(sol.stats.naccept),
            "nreject": int(sol.stats.nreject),
            "ok": bool(sol.success),
        }

    return run


# --------------------------------------------------------------------------- driver


def contenders(ts: np.ndarray) -> list[tuple[str, tuple[str, ...], Callable[[], Any]]]:
    """(name, modules it needs, factory) in table order."""
    return [
        ("scipy RK45", ("scipy",), lambda: scipy_runner("RK45", ts)),
        ("scipy DOP853", ("scipy",), lambda: scipy_runner("DOP853", ts)),
        ("scipy LSODA", ("scipy",), lambda: scipy_runner("LSODA", ts)),
        ("torchdiffeq dopri5", ("torchdiffeq",), lambda: torchdiffeq_runner("dopri5", ts)),
        ("torchdiffeq tsit5", ("torchdiffeq",), lambda: torchdiffeq_runner("tsit5", ts)),
        ("torchode Tsit5", ("torchode",), lambda: torchode_runner(ts)),
        ("diffrax Tsit5 (jit)", ("jax", "diffrax"), lambda: diffrax_runner(ts)),
        ("hybrideq Tsit5", (), lambda: hybrideq_runner("Tsit5", ts)),
        ("hybrideq Vern7", (), lambda: hybrideq_runner("Vern7", ts)),
    ]


def max_err(y: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> float:
    if y.shape != ref.shape:
        return float("nan")
    return float(np.max(np.abs(y[mask] - ref[mask])))


def plot(rows: list[dict[str, Any]], path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in rows if not r.get("status") and r.get("time_ms")]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    names = [r["contender"] for r in done]
    times = [r["time_ms"] for r in done]
    colors = ["tab:red" if n.startswith("hybrideq") else "tab:blue" for n in names]
    ax1.barh(names, times, color=colors)
    ax1.set_xscale("log")
    ax1.set_xlabel("median time [ms] (log)")
    ax1.invert_yaxis()
    for i, r in enumerate(done):
        ax1.text(r["time_ms"], i, f"  err[0,10]={r['err_0_10']:.1e}", va="center", fontsize=8)
    ax1.set_title("time (label: max error over [0, 10])")
    for r, c in zip(done, colors, strict=True):
        ax2.loglog(r["time_ms"], r["err_0_10"], "o", color=c)
        ax2.annotate(r["contender"], (r["time_ms"], r["err_0_10"]), fontsize=8)
    ax2.set_xlabel("median time [ms]")
    ax2.set_ylabel("max abs error over t ∈ [0, 10]")
    ax2.set_title("work–precision (lower left is better)")
    ax2.grid(True, which="both", alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot written to {path}")


def main() -> None:
    args = C.make_parser(__doc__.splitlines()[0]).parse_args()
    C.setup()
    meta = C.machine_info()
    t_end = 10.0 if args.quick else 100.0
    n_save = 101 if args.quick else 1001
    warmup = 1
    repeats = args.repeats or (2 if args.quick else 3)
    ts = np.linspace(0.0, t_end, n_save)
    title = f"W1 Lorenz, t ∈ [0, {t_end:g}], rtol=atol={RTOL:g}, {n_save} save points, float64"
    C.print_header(title, args, meta)
    print(
        f"   timing: {warmup} warm-up run(s), median of {repeats} timed runs, the contenders "
        "taking turns (round robin)"
    )

    t0 = time.perf_counter()
    ref = reference(ts, REF_TOL)
    ref_s = time.perf_counter() - t0
    ref_check = reference(ts, REF_TOL * 10)
    window = ts <= MEANINGFUL_T + 1e-12
    everywhere = np.ones_like(ts, dtype=bool)
    ref_err10 = max_err(ref_check, ref, window)
    ref_err_full = max_err(ref_check, ref, everywhere)
    beyond = f", {ref_err_full:.1e} over [0,{t_end:g}]" if t_end > MEANINGFUL_T else ""
    print(
        f"   reference: scipy DOP853 rtol=atol={REF_TOL:g} ({ref_s:.1f} s); it differs from "
        f"DOP853 at {REF_TOL * 10:g} by {ref_err10:.1e} over [0,10]{beyond}"
    )

    rows: list[dict[str, Any]] = []
    runs: dict[str, Callable[[], dict[str, Any]]] = {}
    for name, needs, factory in contenders(ts):
        if not C.selected(name, args.only):
            continue
        if any(not C.available(m) for m in needs):
            rows.append(C.missing_row(name, *needs))
            print(f"   {name}: {rows[-1]['status']}")
            continue
        if name == "torchdiffeq tsit5":
            import importlib

            tdo = importlib.import_module("torchdiffeq._impl.odeint")
            if "tsit5" not in tdo.SOLVERS:
                rows.append(
                    {
                        "contender": name,
                        "status": f"not available in torchdiffeq {C.version('torchdiffeq')} "
                        "(no tsit5 method)",
                    }
                )
                print(f"   {name}: {rows[-1]['status']}")
                continue
        row: dict[str, Any] = {"contender": name}
        rows.append(row)
        try:
            made = factory()
        except Exception as e:  # a failing peer is a row, not a crash
            row["status"] = f"failed: {type(e).__name__}: {e}"
            print(f"   {name}: {row['status']}")
            continue
        if isinstance(made, tuple):
            runs[name], row["compile_s"] = made
        else:
            runs[name] = made

    print(f"   timing {len(runs)} contenders, round robin ...", flush=True)
    timings, errors = C.timeit_interleaved(runs, warmup=warmup, repeats=repeats)
    for row in rows:
        name = row["contender"]
        if name in errors:
            row["status"] = errors[name]
            print(f"   {name}: {row['status']}")
        if name not in timings:
            continue
        timing = timings[name]
        out = timing.result
        y = np.asarray(out["y"], dtype=np.float64)
        row.update(
            time_ms=1e3 * timing.median,
            times_ms=[1e3 * x for x in timing.times],
            err_0_10=max_err(y, ref, window),
            err_full=max_err(y, ref, everywhere),
            nfe=out.get("nfe"),
            nfe_estimated=bool(out.get("nfe_estimated", False)),
            naccept=out.get("naccept"),
            nreject=out.get("nreject"),
            njev=out.get("njev"),
            success=out.get("ok"),
        )

    base = next(
        (r for r in rows if r["contender"] == "hybrideq Tsit5" and not r.get("status")), None
    )
    for r in rows:
        if base is not None and r.get("time_ms"):
            r["ratio"] = r["time_ms"] / base["time_ms"]
    shown = []
    for r in rows:
        s = dict(r)
        if s.get("nfe_estimated"):
            s["nfe"] = f"~{s['nfe']}"
        if s.get("success") is False:
            s["contender"] = f"{s['contender']} (FAILED)"
        shown.append(s)
    C.print_table(title, shown, COLUMNS)
    print("Notes:")
    print(
        f"  - error: max over save times and components of |y - y_ref|; y_ref = scipy DOP853 "
        f"at rtol=atol={REF_TOL:g}."
    )
    print(
        "  - Lorenz is chaotic (Lyapunov exponent ~0.9): a 1e-8 error grows ~e^(0.9 t), so "
        "errors past t ~ 20-30 are of the size of the attractor for every method (the "
        "reference included). Compare accuracy over [0,10]; [0,T] is shown for completeness."
    )
    print(
        "  - '× hq Tsit5' = median time / hybrideq Tsit5's median time (< 1: faster than "
        "hybrideq Tsit5)."
    )
    print(
        "  - diffrax: time of the compiled call; 'compile' = trace + lower + compile; "
        "NFE '~' = 6·steps + 2 (diffrax reports steps, not NFE)."
    )
    print(
        "  - torchode: IntegralController (as diffrax's default PIDController); no "
        "torch.compile. scipy and torchdiffeq report no accepted/rejected steps."
    )
    paths = C.write_results(
        "w1_lorenz_quick" if args.quick else "w1_lorenz",
        rows,
        {
            **meta,
            "t_end": t_end,
            "n_save": n_save,
            "rtol": RTOL,
            "atol": ATOL,
            "reference": f"scipy DOP853 rtol=atol={REF_TOL:g}",
            "reference_self_check_0_10": ref_err10,
            "reference_self_check_full": ref_err_full,
            "warmup": warmup,
            "repeats": repeats,
        },
        json_path=args.json,
    )
    print("results written to " + ", ".join(str(p) for p in paths))
    if args.plot:
        plot(rows, args.plot, title)


if __name__ == "__main__":
    main()
