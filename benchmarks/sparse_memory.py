"""Large sparse systems: time and peak memory of the 1-D Brusselator at n = 1000 … 100,000.

The problem is ``hybrideq.library.brusselator_1d(n_grid=N)`` (Hairer & Wanner II, §IV.10),
``n = 2N`` components, banded Jacobian (8N − 4 nonzeros), t ∈ [0, 10] (quick: [0, 1]),
rtol = 1e-6, atol = 1e-8, float64. Contenders:

- ``Rodas5P dense``: the dense path (``(n, n)`` Jacobian from the analytic ``jac``, batched
  LU); run only where the dense Jacobian is at most ``--dense-max-n`` (default 1000);
- ``Rodas5P sparse``, ``KenCarp4 sparse``: ``linsolve="sparse"``, the pattern from
  ``jac_prototype``, colored reverse-mode Jacobians, SuperLU;
- ``KenCarp4 sparse+jac``: the same with the analytic sparse Jacobian
  (``brusselator_1d_jac_sparse``, a torch sparse COO tensor);
- ``KenCarp4 gmres``: ``linsolve="gmres"`` with no pattern and no Jacobian at all:
  Newton–Krylov, finite-difference Jacobian-vector products; run only up to
  ``--gmres-max-n`` (default 1000);
- ``QNDF sparse``: the variable-order BDF with the analytic sparse Jacobian and SuperLU;
- ``scipy Radau (sparse jac)``: SciPy's Radau with the analytic Jacobian as a CSC matrix.

Every contender runs in its own fresh Python process (``--timeout`` seconds at most): it
imports everything and warms up on a small Brusselator, then records its peak resident
memory (``ru_maxrss``), runs the timed solves, and reports the time (median of the
repeats) and the growth of the peak over the warm baseline, i.e. the memory the solve
itself needed. The error is the largest relative error at t_end against scipy Radau at
rtol = 1e-10 (computed once per size, not timed). "dense J" is what one ``(n, n)`` float64
Jacobian alone would take.

Run from the repository root::

    python benchmarks/sparse_memory.py --quick      # n = 1000, 10,000 on t ∈ [0, 1]
    python benchmarks/sparse_memory.py              # n = 1000, 10,000, 100,000 on [0, 10]
    python benchmarks/sparse_memory.py --sizes 1000,10000 --only sparse
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import _common as C  # first: pins the thread count before torch/numpy load

SIZES = (1000, 10_000, 100_000)
SIZES_QUICK = (1000, 10_000)
RTOL, ATOL = 1e-6, 1e-8
CONTENDERS = (
    "Rodas5P dense",
    "Rodas5P sparse",
    "KenCarp4 sparse",
    "KenCarp4 sparse+jac",
    "KenCarp4 gmres",
    "QNDF sparse",
    "scipy Radau (sparse jac)",
)
COLUMNS = [
    ("contender", "contender"),
    ("n", "n"),
    ("time_s", "time [s]"),
    ("peak_mb", "peak Δ [MB]"),
    ("dense_j_mb", "dense J [MB]"),
    ("err", "max rel err"),
    ("nf", "nf"),
    ("naccept", "steps"),
    ("njac", "njac"),
    ("nlu", "nlu"),
]

# The worker: one contender, one size, in a fresh process (its peak memory is its own).
_WORKER = r"""
import json, os, resource, statistics, sys, time
sys.path.insert(0, os.environ["HYBRIDEQ_BENCH_DIR"])
import _common as C
C.setup()
hq = C.import_hybrideq()
import numpy as np, scipy.sparse as sp, torch
from scipy.integrate import solve_ivp
from hybrideq.library import brusselator_1d, brusselator_1d_jac_sparse

args = json.loads(sys.argv[1])
name, n_grid, t1, repeats = args["name"], args["n_grid"], args["t1"], args["repeats"]
rtol, atol = args["rtol"], args["atol"]

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

def scipy_fns(prob):
    p = prob.p
    def f(t, y):
        return prob.f(torch.tensor(t, dtype=torch.float64), torch.from_numpy(y), p).numpy()
    def jac(t, y):
        J = brusselator_1d_jac_sparse(torch.tensor(t, dtype=torch.float64), torch.from_numpy(y), p)
        idx = J.indices().numpy()
        return sp.csc_matrix((J.values().numpy(), (idx[0], idx[1])), shape=J.shape)
    return f, jac

def make(n_grid, t1):
    prob = brusselator_1d(n_grid=n_grid, tspan=(0.0, t1))
    if name == "Rodas5P dense":
        return prob, hq.Rodas5P(linsolve="dense")
    if name == "Rodas5P sparse":
        return prob.remake(jac=None), hq.Rodas5P(linsolve="sparse")
    if name == "KenCarp4 sparse":
        return prob.remake(jac=None), hq.KenCarp4(linsolve="sparse")
    if name == "KenCarp4 sparse+jac":
        return prob.remake(jac=brusselator_1d_jac_sparse), hq.KenCarp4(linsolve="sparse")
    if name == "KenCarp4 gmres":
        return prob.remake(jac=None, jac_prototype=None), hq.KenCarp4(linsolve="gmres")
    if name == "QNDF sparse":
        return prob.remake(jac=brusselator_1d_jac_sparse), hq.QNDF(linsolve="sparse")
    return prob, None

def run(prob, solver, rtol, atol):
    if solver is None:  # scipy Radau
        f, jac = scipy_fns(prob)
        t1 = float(prob.tspan[1])
        s = solve_ivp(f, (0.0, t1), prob.y0.numpy(), method="Radau", jac=jac, rtol=rtol, atol=atol)
        return s.y[:, -1], {"nf": int(s.nfev), "naccept": None, "njac": int(s.njev), "nlu": int(s.nlu)}
    sol = hq.solve(prob, solver, rtol=rtol, atol=atol, saveat=[float(prob.tspan[1])])
    st = sol.stats
    return sol.y[-1].numpy(), {k: int(getattr(st, k)) for k in ("nf", "naccept", "njac", "nlu")}

if name == "reference":
    prob, _ = make(n_grid, t1)
    y, _ = run(prob, None, 1e-10, 1e-12)
    np.save(args["out"], y)
    print(json.dumps({"ok": True}))
    sys.exit(0)

warm_prob, solver = make(50, min(t1, 0.1))
run(warm_prob, solver, rtol, atol)
prob, solver = make(n_grid, t1)
base = peak_mb()
times = []
for _ in range(repeats):
    t0 = time.perf_counter()
    y, stats = run(prob, solver, rtol, atol)
    times.append(time.perf_counter() - t0)
ref = np.load(args["ref"]) if args.get("ref") else None
err = float(np.max(np.abs(y - ref) / np.abs(ref))) if ref is not None else None
print(json.dumps({"time_s": statistics.median(times), "peak_mb": peak_mb() - base, "err": err, **stats}))
"""


def _worker(payload: dict[str, Any], timeout: float) -> dict[str, Any]:
    env = {**os.environ, "HYBRIDEQ_BENCH_DIR": str(C.BENCH_DIR)}
    try:
        out = subprocess.run(
            [sys.executable, "-c", _WORKER, json.dumps(payload)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=C.REPO,
        )
    except subprocess.TimeoutExpired:
        return {"status": f"timeout: over {timeout:.0f} s"}
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["?"])[-1]
        return {"status": f"failed: {last}"}
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = C.make_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default=None,
        help="comma-separated n (= 2·n_grid); default 1000,10000,100000 (quick: 1000,10000)",
    )
    parser.add_argument(
        "--dense-max-n", type=int, default=1000, help="largest n for the dense contender"
    )
    parser.add_argument(
        "--gmres-max-n",
        type=int,
        default=1000,
        help="largest n for the GMRES contender (default 1000; it is slow without a pattern)",
    )
    parser.add_argument(
        "--timeout", type=float, default=None, help="seconds per contender (default 300, quick 120)"
    )
    args = parser.parse_args()
    C.setup()
    meta = C.machine_info()
    sizes = (
        tuple(int(s) for s in args.sizes.split(","))
        if args.sizes
        else (SIZES_QUICK if args.quick else SIZES)
    )
    if any(n % 2 for n in sizes):
        parser.error("every size must be even (n = 2·n_grid)")
    t1 = 1.0 if args.quick else 10.0
    repeats = args.repeats or 1
    timeout = args.timeout or (120.0 if args.quick else 300.0)
    title = f"Brusselator 1-D, t ∈ [0, {t1:g}], rtol {RTOL:g}, atol {ATOL:g}, float64"
    C.print_header(title, args, meta)
    print(
        f"   each contender in a fresh process ({timeout:.0f} s at most), after a warm-up; "
        f"median of {repeats} timed run(s); peak Δ = growth of the peak RSS over the warm "
        "baseline"
    )
    rows: list[dict[str, Any]] = []
    C.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    for n in sizes:
        n_grid = n // 2
        dense_mb = n * n * 8 / 2**20
        ref_path = C.RESULTS_DIR / f"sparse_memory_ref_{n}_{t1:g}.npy"
        if not ref_path.exists():
            print(f"-- n = {n}: reference (scipy Radau, rtol 1e-10) …", flush=True)
            res = _worker(
                {
                    "name": "reference",
                    "n_grid": n_grid,
                    "t1": t1,
                    "repeats": 1,
                    "rtol": 0,
                    "atol": 0,
                    "out": str(ref_path),
                },
                max(timeout, 600.0),
            )
            if res.get("status"):
                print(f"   reference {res['status']}; errors will be missing")
        for name in CONTENDERS:
            if not C.selected(name, args.only):
                continue
            row: dict[str, Any] = {"contender": name, "n": n, "dense_j_mb": dense_mb}
            if name.endswith("dense") and n > args.dense_max_n:
                row["status"] = (
                    f"skipped: the dense Jacobian alone needs {dense_mb:.0f} MB, its LU as "
                    f"much again, and each LU O(n³) (--dense-max-n {args.dense_max_n})"
                )
            elif name.endswith("gmres") and n > args.gmres_max_n:
                row["status"] = (
                    "skipped: unpreconditioned Newton–Krylov needs hundreds of Krylov "
                    f"products per solve at this size (--gmres-max-n {args.gmres_max_n})"
                )
            else:
                print(f"-- n = {n}: {name} …", flush=True)
                res = _worker(
                    {
                        "name": name,
                        "n_grid": n_grid,
                        "t1": t1,
                        "repeats": repeats,
                        "rtol": RTOL,
                        "atol": ATOL,
                        "ref": str(ref_path) if ref_path.exists() else None,
                    },
                    timeout,
                )
                row.update(res)
            rows.append(row)
            if row.get("status"):
                row["status"] = f"n = {n}: {row['status']}"
    C.print_table(title, rows, COLUMNS)
    print(
        "  - peak Δ is resident memory (RSS); it includes allocator slack (glibc keeps freed "
        "SuperLU blocks on its heap, so it grows slowly with the number of factorisations; "
        "MALLOC_MMAP_THRESHOLD_=131072 removes that growth at some cost in time)."
    )
    paths = C.write_results(
        "sparse_memory_quick" if args.quick else "sparse_memory",
        rows,
        {**meta, "t1": t1, "rtol": RTOL, "atol": ATOL, "repeats": repeats, "timeout": timeout},
        json_path=args.json,
    )
    print("results written to " + ", ".join(str(p) for p in paths))


if __name__ == "__main__":
    main()
