"""W4 (BENCHMARKS.md): a Robertson rate sweep, N trajectories at once, adaptive, float64.

N = 2^10 Robertson problems (quick: 2^6), t ∈ [0, 1e5], y0 = (1, 0, 0), with rate
constants drawn log-uniformly (seed 0): k1 ∈ [0.01, 0.1], k2 ∈ [1e7, 1e8], k3 ∈ [1e3, 1e5]
(the classic k = (0.04, 3e7, 1e4) lies inside). rtol = 1e-6, atol = 1e-10 for everyone.

Contenders:
- hybrideq: ONE batched solve, y0 of shape (N, 3) and p of shape (N, 3); every sample has
  its own step size (per-sample stepping), for each stiff solver this version has.
- scipy solve_ivp BDF and LSODA: a Python loop over the N problems (NumPy right-hand side,
  analytic Jacobian).
- diffrax Kvaerno5: ``jax.jit(jax.vmap(solve))`` over (y0, k); compile time apart.

Error: per sample, the RMS over components of ``(y − ref) / (|ref| + 1e-4)`` at t = 1e5
(hybrideq.workprecision's error with floor atol/rtol); the table shows the maximum and the
median over the samples. Reference: scipy LSODA at rtol = 1e-12, atol = 1e-20 per sample
(checked against scipy Radau at rtol = 1e-12 on a few samples).

Run from the repository root::

    python benchmarks/w4_robertson_sweep.py --quick
    python benchmarks/w4_robertson_sweep.py --n 4096 --only hybrideq,diffrax
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import _common as C  # first: pins the thread count before torch/numpy/jax load
import _stiff as S
import numpy as np

RTOL, ATOL = 1e-6, 1e-10
FLOOR = ATOL / RTOL
RANGES = ((0.01, 0.1), (1e7, 1e8), (1e3, 1e5))
REF_RTOL, REF_ATOL = 1e-12, 1e-20

COLUMNS = [
    ("contender", "contender"),
    ("n", "N"),
    ("time_s", "time [s]"),
    ("per_traj_ms", "per traj. [ms]"),
    ("speedup", "× scipy BDF loop"),
    ("err_max", "max error"),
    ("err_median", "median error"),
    ("failed", "failed"),
    ("nfe_max", "NFE (max/sample)"),
    ("calls", "f calls"),
    ("compile_s", "compile [s]"),
]


def rates(n: int, seed: int = 0) -> np.ndarray:
    """``(n, 3)`` rate constants, log-uniform in :data:`RANGES`."""
    rng = np.random.default_rng(seed)
    cols = [10 ** rng.uniform(np.log10(lo), np.log10(hi), n) for lo, hi in RANGES]
    return np.stack(cols, 1)


# --------------------------------------------------------------------------- contenders
# Each returns a zero-argument callable that solves all N problems and returns a dict with
# "y" ((N, 3) numpy, the states at t_end) and the counts the library reports.


def scipy_loop(method: str, spec: S.StiffSpec, k: np.ndarray) -> Callable[[], dict[str, Any]]:
    from scipy.integrate import solve_ivp

    f, jac = spec.make(S.numpy_backend())

    def run() -> dict[str, Any]:
        ys, nfe, ok = [], [], []
        for ki in k:
            sol = solve_ivp(
                lambda t, y, ki=ki: f(y, ki),
                spec.tspan,
                spec.y0,
                method=method,
                rtol=RTOL,
                atol=ATOL,
                jac=lambda t, y, ki=ki: jac(y, ki),
            )
            ys.append(sol.y[:, -1])
            nfe.append(sol.nfev)
            ok.append(sol.status == 0)
        return {"y": np.stack(ys), "nfe": np.asarray(nfe), "ok": np.asarray(ok)}

    return run


def diffrax_vmap(spec: S.StiffSpec, k: np.ndarray) -> tuple[Callable[[], dict[str, Any]], float]:
    import diffrax
    import jax
    import jax.numpy as jnp

    vf = spec.jax()
    term = diffrax.ODETerm(vf)
    ctrl = diffrax.PIDController(rtol=RTOL, atol=ATOL)
    t0, t1 = spec.tspan

    def solve(y0: Any, args: Any) -> Any:
        return diffrax.diffeqsolve(
            term,
            diffrax.Kvaerno5(),
            t0=t0,
            t1=t1,
            dt0=None,
            y0=y0,
            args=args,
            stepsize_controller=ctrl,
            max_steps=S.MAX_STEPS,
            throw=False,
        )

    y0 = jnp.tile(jnp.asarray(spec.y0, dtype=jnp.float64), (len(k), 1))
    args = jnp.asarray(k, dtype=jnp.float64)
    start = time.perf_counter()
    compiled = jax.jit(jax.vmap(solve)).lower(y0, args).compile()
    compile_s = time.perf_counter() - start

    def run() -> dict[str, Any]:
        sol = compiled(y0, args)
        ys = np.asarray(jax.block_until_ready(sol.ys))[:, -1, :]
        return {
            "y": ys,
            "steps": np.asarray(sol.stats["num_steps"]),
            "ok": np.asarray(sol.result == diffrax.RESULTS.successful),
        }

    return run, compile_s


def hybrideq_batched(hq: Any, solver: Any, problem: Any) -> Callable[[], dict[str, Any]]:
    import torch

    save = torch.tensor([problem.tspan[1].reshape(-1)[0].item()], dtype=problem.dtype)
    save = save.to(problem.device)

    def run() -> dict[str, Any]:
        with torch.no_grad():
            sol = hq.solve(problem, solver, saveat=save, rtol=RTOL, atol=ATOL)
        if problem.device.type == "cuda":
            torch.cuda.synchronize()
        return {
            "y": sol.y[:, -1, :].cpu().numpy(),
            "nfe": sol.stats.nf.cpu().numpy(),
            "calls": int(sol.stats.ncalls),
            "ok": (sol.retcodes == int(hq.ReturnCode.Success)).cpu().numpy(),
        }

    return run


def batched_problem(hq: Any, spec: S.StiffSpec, k: np.ndarray, device: str) -> tuple[Any, str]:
    """The (N, 3) problem: the library's Robertson where it matches _stiff.py, else local."""
    import torch

    base, origin = S.load_problem(hq, spec)
    y0 = torch.tensor(spec.y0, dtype=torch.float64).repeat(len(k), 1).to(device)
    p = torch.as_tensor(k, dtype=torch.float64).to(device)
    return base.remake(y0=y0, p=p, tspan=spec.tspan), origin


# --------------------------------------------------------------------------- reference


def reference(spec: S.StiffSpec, k: np.ndarray) -> np.ndarray:
    from scipy.integrate import solve_ivp

    f, jac = spec.make(S.numpy_backend())
    out = []
    for ki in k:
        sol = solve_ivp(
            lambda t, y, ki=ki: f(y, ki),
            spec.tspan,
            spec.y0,
            method="LSODA",
            rtol=REF_RTOL,
            atol=REF_ATOL,
            jac=lambda t, y, ki=ki: jac(y, ki),
        )
        if sol.status != 0:
            raise RuntimeError(f"reference failed for k = {ki}: {sol.message}")
        out.append(sol.y[:, -1])
    return np.stack(out)


def reference_check(spec: S.StiffSpec, k: np.ndarray, ref: np.ndarray, count: int = 3) -> float:
    """Largest error of the LSODA reference against scipy Radau at rtol 1e-12 (a few samples)."""
    from scipy.integrate import solve_ivp

    f, jac = spec.make(S.numpy_backend())
    worst = 0.0
    for i in range(min(count, len(k))):
        sol = solve_ivp(
            lambda t, y, ki=k[i]: f(y, ki),
            spec.tspan,
            spec.y0,
            method="Radau",
            rtol=1e-12,
            atol=1e-14,
            jac=lambda t, y, ki=k[i]: jac(y, ki),
        )
        worst = max(worst, S.rel_rms(ref[i], sol.y[:, -1], FLOOR))
    return worst


def errors(y: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Per-sample RMS relative error; NaN for a sample with a non-finite state."""
    d = (y - ref) / (np.abs(ref) + FLOOR)
    return np.sqrt(np.mean(d * d, axis=1))


# --------------------------------------------------------------------------- driver


def main() -> None:
    parser = C.make_parser(__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=None, help="trajectories (default 1024, quick 64)")
    parser.add_argument("--device", default="cpu", help="device of the hybrideq contenders")
    args = parser.parse_args()
    C.setup()
    hq = C.import_hybrideq()
    meta = C.machine_info()
    n = args.n or (2**6 if args.quick else 2**10)
    warmup, repeats = 1, args.repeats or 2
    spec = S.PROBLEMS["robertson"]
    title = (
        f"W4 Robertson rate sweep, N = {n}, t ∈ [0, {spec.tspan[1]:g}], rtol={RTOL:g}, "
        f"atol={ATOL:g}, float64"
    )
    C.print_header(title, args, meta)
    print(
        f"   timing: {warmup} warm-up run(s), median of {repeats} timed runs, the contenders "
        "taking turns (round robin)"
    )
    k = rates(n)
    print(
        "   rates: log-uniform, seed 0: "
        + ", ".join(f"k{i + 1} ∈ [{lo:g}, {hi:g}]" for i, (lo, hi) in enumerate(RANGES))
    )
    start = time.perf_counter()
    ref = reference(spec, k)
    ref_s = time.perf_counter() - start
    check = reference_check(spec, k, ref)
    print(
        f"   reference: scipy LSODA rtol={REF_RTOL:g} atol={REF_ATOL:g} per sample "
        f"({ref_s:.1f} s); vs scipy Radau rtol=1e-12 on 3 samples: {check:.1e}"
    )

    rows: list[dict[str, Any]] = []
    unavailable: list[dict[str, Any]] = []  # listed after the contenders that ran
    runs: dict[str, Callable[[], dict[str, Any]]] = {}
    candidates: list[tuple[str, tuple[str, ...], Callable[[], Any]]] = [
        ("scipy BDF loop", ("scipy",), lambda: scipy_loop("BDF", spec, k)),
        ("scipy LSODA loop", ("scipy",), lambda: scipy_loop("LSODA", spec, k)),
        ("diffrax Kvaerno5 vmap (jit)", ("jax", "diffrax"), lambda: diffrax_vmap(spec, k)),
    ]
    problem = None
    for solver_name in S.HYBRIDEQ_STIFF:
        name = f"hybrideq {solver_name} batched"
        if not C.selected(name, args.only):
            continue
        solver, why = S.hybrideq_solver(hq, solver_name)
        if solver is None:
            unavailable.append({"contender": name, "status": why})
            print(f"   {name}: {why}")
            continue
        if problem is None:
            problem, origin = batched_problem(hq, spec, k, args.device)
            print(
                f"   hybrideq problem: {origin}, y0 {tuple(problem.y0.shape)}, "
                f"p {tuple(problem.p.shape)} on {args.device}"
            )
        candidates.append((name, (), lambda s=solver, pr=problem: hybrideq_batched(hq, s, pr)))

    for name, needs, factory in candidates:
        if not C.selected(name, args.only):
            continue
        if any(not C.available(m) for m in needs):
            rows.append(C.missing_row(name, *needs))
            print(f"   {name}: {rows[-1]['status']}")
            continue
        row: dict[str, Any] = {"contender": name, "n": n}
        rows.append(row)
        try:
            made = factory()
        except Exception as e:  # a failing contender is a row, not a crash
            row["status"] = f"failed: {type(e).__name__}: {e}"
            print(f"   {name}: {row['status']}")
            continue
        if isinstance(made, tuple):
            runs[name], row["compile_s"] = made
        else:
            runs[name] = made

    rows += unavailable
    print(f"   timing {len(runs)} contenders, round robin ...", flush=True)
    timings, failures = C.timeit_interleaved(runs, warmup=warmup, repeats=repeats)
    for row in rows:
        name = row["contender"]
        if name in failures:
            row["status"] = failures[name]
            print(f"   {name}: {row['status']}")
        if name not in timings:
            continue
        timing = timings[name]
        out = timing.result
        err = errors(np.asarray(out["y"], dtype=np.float64), ref)
        ok = np.asarray(out["ok"], dtype=bool) & np.isfinite(err)
        nfe = out.get("nfe")
        row.update(
            time_s=timing.median,
            times_s=timing.times,
            per_traj_ms=1e3 * timing.median / n,
            err_max=float(np.max(err[ok])) if ok.any() else None,
            err_median=float(statistics.median(err[ok].tolist())) if ok.any() else None,
            failed=int((~ok).sum()),
            nfe_max=int(np.max(nfe)) if nfe is not None else None,
            nfe_total=int(np.sum(nfe)) if nfe is not None else None,
            steps_max=int(np.max(out["steps"])) if "steps" in out else None,
            calls=out.get("calls"),
        )
    base = next((r for r in rows if r["contender"] == "scipy BDF loop" and r.get("time_s")), None)
    for r in rows:
        if base is not None and r.get("time_s"):
            r["speedup"] = base["time_s"] / r["time_s"]
    C.print_table(title, rows, COLUMNS)
    print("Notes:")
    print(
        f"  - error per sample: RMS over components of |y - ref| / (|ref| + {FLOOR:g}) at "
        f"t = {spec.tspan[1]:g}; max and median over the samples that succeeded."
    )
    print(
        "  - '× scipy BDF loop' = scipy BDF loop time / contender time (above 1: faster). "
        "NFE (max/sample): the most right-hand-side evaluations one sample needed; 'f calls': "
        "calls of f on the whole batch (hybrideq). diffrax reports steps, not NFE (JSON: "
        "steps_max); its time excludes compilation."
    )
    paths = C.write_results(
        "w4_robertson_sweep_quick" if args.quick else "w4_robertson_sweep",
        rows,
        {
            **meta,
            "n": n,
            "rtol": RTOL,
            "atol": ATOL,
            "rate_ranges": RANGES,
            "reference": f"scipy LSODA rtol={REF_RTOL:g} atol={REF_ATOL:g}",
            "reference_check_vs_radau": check,
            "device": args.device,
            "warmup": warmup,
            "repeats": repeats,
        },
        json_path=args.json,
    )
    print("results written to " + ", ".join(str(p) for p in paths))
    if args.plot:
        plot(rows, args.plot, title)


def plot(rows: list[dict[str, Any]], path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in rows if not r.get("status") and r.get("time_s")]
    if not done:
        print("no plot: nothing ran")
        return
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(done) + 1.5))
    names = [r["contender"] for r in done]
    colors = ["tab:red" if n.startswith("hybrideq") else "tab:blue" for n in names]
    ax.barh(names, [r["time_s"] for r in done], color=colors)
    ax.set_xscale("log")
    ax.invert_yaxis()
    for i, r in enumerate(done):
        err = r.get("err_max")
        label = f"  max err {err:.1e}" if err is not None else "  (no successful sample)"
        ax.text(r["time_s"], i, label, va="center", fontsize=8)
    ax.set_xlabel("median time for all N trajectories [s] (log)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot written to {path}")


if __name__ == "__main__":
    main()
