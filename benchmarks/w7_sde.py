"""W7 (BENCHMARKS.md): SDEs against torchsde and diffrax, float64, time at equal strong error.

Three parts, every contender side by side in one run:

1. **Geometric Brownian motion, fixed steps.** 4 independent components
   ``dy_i = μ_i y_i dt + σ_i y_i dW_i`` (diagonal noise), μ = (0.5, 1, 1.5, −0.5),
   σ = (0.2, 0.4, 0.6, 0.3), y0 = 1, 100 paths, t ∈ [0, 1], dt = 2^-3 … 2^-10. Strong error
   = mean over paths and components of ``|y(1) − y0 exp((μ − σ²/2) + σ W(1))|``, with
   ``W(1)`` read from the Brownian path the contender itself used (hybrideq ``sol.W(1)``,
   torchsde ``bm(0, 1)`` of the ``BrownianInterval`` passed to ``sdeint``, diffrax
   ``VirtualBrownianTree.evaluate(0, 1)``). Every timed solve uses a new seed and builds its
   path from scratch (as a user's solve does), and the error is the mean over all of them.
   Itô methods solve the Itô form; Stratonovich methods the same process written as
   ``dy = (μ − σ²/2) y dt + σ y ∘ dW`` (the exact solution is the same).
   Contenders: hybrideq EM, Milstein, SRIW1, SOSRI (Itô), EulerHeun, Milstein
   (Stratonovich), ReversibleHeun; torchsde euler, milstein (autograd and ``grad_free``),
   srk (Itô), euler_heun, heun, midpoint, reversible_heun, milstein (Stratonovich); diffrax
   Euler, ItoMilstein, Heun, ReversibleHeun, SlowRK with a ``VirtualBrownianTree``
   (``jit(vmap)`` over the paths), and Euler, Heun with the path drawn on the step grid.
   The work–precision tables interpolate log(time) against log(error) between the dt rungs
   of each method: the time every contender needs for a strong error of 3e-2 … 1e-5, the
   ratios of the fastest torchsde / diffrax method to the fastest hybrideq method there,
   and the ratios of like methods (torchsde srk / hybrideq SOSRI, …).
2. **Adaptive SOSRI vs fixed SOSRI** on the same GBM, rtol = atol ∈ {1e-1, …, 1e-4} for
   hybrideq and {1e-2, …, 1e-6} for the peers (``TOL_RANGE``: equal tolerances give very
   different errors, so the ranges are chosen to overlap in error):
   hybrideq ``stepping="joint"`` (batch 100, one step size, the error norm over the batch),
   hybrideq per-sample stepping (batch 10, rtol ≥ 1e-3: every sample queries its own
   Brownian Interval in Python), torchsde adaptive ``srk`` (batch 100 as one system, step
   doubling) and diffrax adaptive SPaRK (Stratonovich form, ``PIDController``, ``vmap`` over
   100 paths); the time fixed-step SOSRI needs for the same error comes from part 1.
3. **The torchsde README neural SDE with a gradient**: batch 32, state 3, 2 Brownian
   motions, general (matrix) Itô noise, drift ``Linear(3, 3)``, diffusion
   ``Linear(3, 3·2)`` reshaped to (32, 3, 2), y0 = 0.1, 20 save times on [0, 1], dt = 1e-3
   (sdeint's default; Euler–Maruyama). Time of forward + ``loss.backward()`` for
   ``loss = mean(ys²)``: torchsde ``sdeint`` / ``sdeint_adjoint`` (euler) against hybrideq
   EM with ``DirectBackprop`` / ``BacksolveAdjoint``, and the same network read as a
   Stratonovich SDE with reversible Heun (torchsde ``reversible_heun`` with
   ``adjoint_reversible_heun``; hybrideq ``ReversibleHeun`` with ``ReversibleAdjoint``);
   the same initial weights; the gradients must be finite.

Rules (benchmarks/README.md): 2 threads for torch and XLA, float64 everywhere, one warm-up
then the median of the timed repeats (one timed run where the warm-up took longer than
``SLOW_S``), contenders round robin (repeat r of each before repeat r + 1 of any),
diffrax's trace + compile time reported apart (``compile``). ``HYBRIDEQ_BENCH_THREADS=1``
writes ``results/w7_sde_1thread.*`` instead of ``results/w7_sde.*``.

Run from the repository root::

    python benchmarks/w7_sde.py            # full, ~5–8 min on an idle 2-core machine
    python benchmarks/w7_sde.py --quick    # smoke run: one or two methods per library, ~25 s
    python benchmarks/w7_sde.py --parts 3  # only the neural SDE
"""

from __future__ import annotations

import itertools
import math
import os
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import _common as C  # first: pins the thread count before torch/numpy/jax load
import numpy as np
import torch

MU = (0.5, 1.0, 1.5, -0.5)
SIGMA = (0.2, 0.4, 0.6, 0.3)
N_STATE = 4
PATHS = 100
FULL_LADDER = tuple(range(3, 11))  # dt = 2^-k
QUICK_LADDER = (3, 4, 5, 6)
TARGETS = (3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5)
# rtol = atol of part 2: the brief's 1e-2, 1e-3, 1e-4 for hybrideq, widened per contender
# (TOL_RANGE) so that the error ranges overlap: torchsde's adaptive srk and diffrax's SPaRK
# reach a given strong error only at much smaller tolerances than hybrideq's SOSRI.
ADAPTIVE_TOLS = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6)
TOL_RANGE = {
    "hybrideq SOSRI adaptive joint": (1e-4, 1e-1),
    # ~0.3 ms per sample-step in Python: rtol 1e-4 would take ~20 s a solve
    "hybrideq SOSRI adaptive per_sample": (1e-3, 1e-1),
    "torchsde srk adaptive": (1e-6, 1e-2),
    "diffrax SPaRK adaptive (Strat.)": (1e-6, 1e-2),
}
PER_SAMPLE_BATCH = 10
# torchsde README example
NSDE_BATCH, NSDE_STATE, NSDE_BM, NSDE_T = 32, 3, 2, 20
NSDE_DT = 1e-3
# A configuration whose warm-up run takes longer than this gets one timed run, not --repeats.
SLOW_S = 3.0

F64 = torch.float64


def exact_np(w1: np.ndarray) -> np.ndarray:
    """GBM at t = 1 from y0 = 1 on the Brownian value W(1): (paths, 4)."""
    mu, sig = np.asarray(MU), np.asarray(SIGMA)
    return np.exp((mu - 0.5 * sig**2) + sig * w1)


def strong_error(y1: Any, w1: Any) -> float:
    y = np.asarray(y1, dtype=np.float64)
    return float(np.mean(np.abs(y - exact_np(np.asarray(w1, dtype=np.float64)))))


# --------------------------------------------------------------------------- contenders


@dataclass
class Contender:
    """A fixed-step method of one library on the GBM.

    ``solve(dt, seed)`` is what is timed (it builds the Brownian path and solves);
    ``finish(handle)`` (not timed) returns ``(strong error, {counts})``.
    """

    name: str
    library: str
    form: str  # "Itô" or "Strat."
    order: float  # nominal strong order on this (commutative-noise) problem
    solve: Callable[[float, int], Any]
    finish: Callable[[Any], tuple[float, dict[str, Any]]]
    prepare: Callable[[float], float] | None = None  # compile for dt; returns seconds
    note: str = ""
    compile_s: list[float] = field(default_factory=list)


def hybrideq_gbm(hq: Any, batch: int = PATHS) -> dict[str, Any]:
    mu = torch.tensor(MU, dtype=F64)
    sig = torch.tensor(SIGMA, dtype=F64)
    y0 = torch.ones(batch, N_STATE, dtype=F64)
    ito = hq.SDEProblem(lambda t, y, p: mu * y, lambda t, y, p: sig * y, y0, (0.0, 1.0))
    mu_s = mu - 0.5 * sig**2
    strat = hq.SDEProblem(
        lambda t, y, p: mu_s * y,
        lambda t, y, p: sig * y,
        y0,
        (0.0, 1.0),
        interpretation="stratonovich",
    )
    return {"ito": ito, "strat": strat}


def hq_finish(sol: Any) -> tuple[float, dict[str, Any]]:
    if not sol.success:
        raise RuntimeError(f"hybrideq solve failed: {sol.retcode}")
    err = strong_error(sol.y[:, -1].numpy(), sol.W(1.0).numpy())
    st = sol.stats
    return err, {
        "steps": float(st.naccept.double().mean()),
        "rejected": float(st.nreject.double().mean()),
        "nf": float(st.nf.double().mean()),
        "ng": float(st.ng.double().mean()),
    }


def hybrideq_contenders(quick: bool) -> list[Contender]:
    hq = C.import_hybrideq()
    probs = hybrideq_gbm(hq)
    out = []
    spec = [
        ("EM", "ito", hq.EM(), 0.5),
        ("Milstein", "ito", hq.Milstein(), 1.0),
        ("SRIW1", "ito", hq.SRIW1(), 1.5),
        ("SOSRI", "ito", hq.SOSRI(), 1.5),
        ("EulerHeun", "strat", hq.EulerHeun(), 1.0),
        ("Milstein (Strat.)", "strat", hq.Milstein(interpretation="stratonovich"), 1.0),
    ]
    if hasattr(hq, "ReversibleHeun"):
        spec.append(("ReversibleHeun", "strat", hq.ReversibleHeun(), 1.0))
    if quick:
        spec = [s for s in spec if s[0] in ("EM", "SOSRI")]
    for name, form, solver, order in spec:
        prob = probs[form]

        def solve(dt: float, seed: int, prob: Any = prob, solver: Any = solver) -> Any:
            return hq.solve(prob, solver, dt=dt, adaptive=False, saveat=[0.0, 1.0], seed=seed)

        out.append(
            Contender(
                f"hybrideq {name}",
                "hybrideq",
                "Itô" if form == "ito" else "Strat.",
                order,
                solve,
                hq_finish,
            )
        )
    return out


class TorchsdeGBM:
    """The GBM as a torchsde SDE (diagonal noise), counting f and g calls."""

    noise_type = "diagonal"

    def __init__(self, sde_type: str) -> None:
        self.sde_type = sde_type
        sig = torch.tensor(SIGMA, dtype=F64)
        mu = torch.tensor(MU, dtype=F64)
        self.mu = mu if sde_type == "ito" else mu - 0.5 * sig**2
        self.sig = sig
        self.nf = 0
        self.ng = 0

    def f(self, t: Any, y: torch.Tensor) -> torch.Tensor:
        self.nf += 1
        return self.mu * y

    def g(self, t: Any, y: torch.Tensor) -> torch.Tensor:
        self.ng += 1
        return self.sig * y


def torchsde_contenders(quick: bool) -> list[Contender]:
    import torchsde

    y0 = torch.ones(PATHS, N_STATE, dtype=F64)
    ts = torch.tensor([0.0, 1.0], dtype=F64)
    spec: list[tuple[str, str, str, dict[str, Any], float]] = [
        ("euler", "ito", "euler", {}, 0.5),
        ("milstein", "ito", "milstein", {}, 1.0),
        ("milstein grad_free", "ito", "milstein", {"grad_free": True}, 1.0),
        ("srk", "ito", "srk", {}, 1.5),
        ("euler_heun", "stratonovich", "euler_heun", {}, 1.0),
        ("heun", "stratonovich", "heun", {}, 1.0),
        ("midpoint", "stratonovich", "midpoint", {}, 1.0),
        ("reversible_heun", "stratonovich", "reversible_heun", {}, 1.0),
        ("milstein (Strat.)", "stratonovich", "milstein", {}, 1.0),
    ]
    if quick:
        spec = [s for s in spec if s[0] in ("euler", "srk")]
    out = []
    for name, sde_type, method, options, order in spec:
        sde = TorchsdeGBM(sde_type)
        levy = "space-time" if method == "srk" else "none"

        def solve(
            dt: float,
            seed: int,
            sde: TorchsdeGBM = sde,
            method: str = method,
            options: dict[str, Any] = options,
            levy: str = levy,
        ) -> Any:
            sde.nf = sde.ng = 0
            bm = torchsde.BrownianInterval(
                t0=0.0,
                t1=1.0,
                size=(PATHS, N_STATE),
                dtype=F64,
                entropy=seed,
                levy_area_approximation=levy,
            )
            ys = torchsde.sdeint(sde, y0, ts, bm=bm, method=method, dt=dt, options=dict(options))
            return ys, bm, sde.nf, sde.ng

        def finish(h: Any) -> tuple[float, dict[str, Any]]:
            ys, bm, nf, ng = h
            err = strong_error(ys[-1].detach().numpy(), bm(0.0, 1.0).numpy())
            return err, {"nf": nf, "ng": ng}

        out.append(
            Contender(
                f"torchsde {name}",
                "torchsde",
                "Itô" if sde_type == "ito" else "Strat.",
                order,
                solve,
                finish,
            )
        )
    return out


def diffrax_contenders(ladder: tuple[int, ...], quick: bool) -> list[Contender]:
    import diffrax
    import jax
    import jax.numpy as jnp
    import lineax as lx

    mu = jnp.asarray(MU)
    sig = jnp.asarray(SIGMA)
    max_steps = 2 ** max(ladder) + 8
    spec: list[tuple[str, str, Any, Any, str, float]] = [
        ("Euler", "ito", diffrax.Euler(), diffrax.BrownianIncrement, "vbt", 0.5),
        ("ItoMilstein", "ito", diffrax.ItoMilstein(), diffrax.BrownianIncrement, "vbt", 1.0),
        ("Heun", "strat", diffrax.Heun(), diffrax.BrownianIncrement, "vbt", 1.0),
        (
            "ReversibleHeun",
            "strat",
            diffrax.ReversibleHeun(),
            diffrax.BrownianIncrement,
            "vbt",
            1.0,
        ),
        ("SlowRK", "strat", diffrax.SlowRK(), diffrax.SpaceTimeTimeLevyArea, "vbt", 1.5),
        ("Euler", "ito", diffrax.Euler(), None, "grid", 0.5),
        ("Heun", "strat", diffrax.Heun(), None, "grid", 1.0),
    ]
    if quick:
        spec = [s for s in spec if s[0] == "Euler" and s[4] == "vbt"]

    def terms_for(form: str, path: Any) -> Any:
        drift_mu = mu if form == "ito" else mu - 0.5 * sig**2
        return diffrax.MultiTerm(
            diffrax.ODETerm(lambda t, y, a: drift_mu * y),
            diffrax.ControlTerm(lambda t, y, a: lx.DiagonalLinearOperator(sig * y), path),
        )

    def run(terms: Any, solver: Any, dt: Any) -> Any:
        sol = diffrax.diffeqsolve(
            terms,
            solver,
            0.0,
            1.0,
            dt0=dt,
            y0=jnp.ones(N_STATE),
            saveat=diffrax.SaveAt(t1=True),
            stepsize_controller=diffrax.ConstantStepSize(),
            max_steps=max_steps,
            adjoint=diffrax.DirectAdjoint(),
        )
        return sol.ys[-1], sol.stats["num_steps"]

    out = []
    for name, form, solver, levy, path_kind, order in spec:
        if path_kind == "vbt":

            def one_vbt(
                key: Any, dt: Any, solver: Any = solver, levy: Any = levy, form: str = form
            ):
                bm = diffrax.VirtualBrownianTree(
                    0.0, 1.0, tol=dt / 2, shape=(N_STATE,), key=key, levy_area=levy
                )
                return run(terms_for(form, bm), solver, dt)

            def w1_vbt(key: Any, dt: Any, levy: Any = levy) -> Any:
                bm = diffrax.VirtualBrownianTree(
                    0.0, 1.0, tol=dt / 2, shape=(N_STATE,), key=key, levy_area=levy
                )
                w = bm.evaluate(0.0, 1.0)
                return getattr(w, "W", w)

            fn = jax.jit(jax.vmap(one_vbt, in_axes=(0, None)))
            w1_fn = jax.jit(jax.vmap(w1_vbt, in_axes=(0, None)))
            compiled: dict[Any, Any] = {}

            def prepare(dt: float, fn: Any = fn, compiled: dict[Any, Any] = compiled) -> float:
                if "all" in compiled:  # dt is traced: one compile for the ladder
                    return 0.0
                keys = jax.random.split(jax.random.PRNGKey(0), PATHS)
                t0 = time.perf_counter()
                compiled["all"] = fn.lower(keys, jnp.float64(dt)).compile()
                return time.perf_counter() - t0

            def solve(dt: float, seed: int, compiled: dict[Any, Any] = compiled) -> Any:
                keys = jax.random.split(jax.random.PRNGKey(seed), PATHS)
                y1, steps = jax.block_until_ready(compiled["all"](keys, jnp.float64(dt)))
                return y1, steps, keys, dt

            def finish(h: Any, w1_fn: Any = w1_fn) -> tuple[float, dict[str, Any]]:
                y1, steps, keys, dt = h
                w1 = np.asarray(w1_fn(keys, jnp.float64(dt)))
                return strong_error(np.asarray(y1), w1), {"steps": float(np.max(steps))}

            note = "VirtualBrownianTree, tol = dt/2"
        else:

            def one_grid(key: Any, n: int, solver: Any = solver, form: str = form) -> Any:
                dt = 1.0 / n
                dw = jax.random.normal(key, (n, N_STATE)) * jnp.sqrt(dt)
                w = jnp.concatenate([jnp.zeros((1, N_STATE)), jnp.cumsum(dw, 0)])
                path = diffrax.LinearInterpolation(ts=jnp.linspace(0.0, 1.0, n + 1), ys=w)
                y1, steps = run(terms_for(form, path), solver, dt)
                return y1, steps, w[-1]

            compiled = {}

            def prepare(
                dt: float, one_grid: Any = one_grid, compiled: dict[Any, Any] = compiled
            ) -> float:
                n = round(1.0 / dt)
                if n in compiled:
                    return 0.0
                keys = jax.random.split(jax.random.PRNGKey(0), PATHS)
                f = jax.jit(jax.vmap(lambda k, n=n, one_grid=one_grid: one_grid(k, n)))
                t0 = time.perf_counter()
                compiled[n] = f.lower(keys).compile()
                return time.perf_counter() - t0

            def solve(dt: float, seed: int, compiled: dict[Any, Any] = compiled) -> Any:
                keys = jax.random.split(jax.random.PRNGKey(seed), PATHS)
                return jax.block_until_ready(compiled[round(1.0 / dt)](keys))

            def finish(h: Any) -> tuple[float, dict[str, Any]]:
                y1, steps, w1 = h
                return strong_error(np.asarray(y1), np.asarray(w1)), {"steps": float(np.max(steps))}

            note = "grid path (cumsum of normals, LinearInterpolation; compiled per dt)"
        out.append(
            Contender(
                f"diffrax {name}" + (" (grid path)" if path_kind == "grid" else ""),
                "diffrax",
                "Itô" if form == "ito" else "Strat.",
                order,
                solve,
                finish,
                prepare=prepare,
                note=note,
            )
        )
    return out


# --------------------------------------------------------------------------- part 1


def run_fixed(
    contenders: list[Contender], ladder: tuple[int, ...], repeats: int
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Every contender at every dt, round robin within a dt; one row per (contender, dt)."""
    rows: list[dict[str, Any]] = []
    failed: dict[str, str] = {}
    for k in ladder:
        dt = 2.0**-k
        live = [c for c in contenders if c.name not in failed]
        for c in live:
            if c.prepare is not None:
                try:
                    s = c.prepare(dt)
                except Exception as e:
                    failed[c.name] = f"failed: {type(e).__name__}: {e}"
                    continue
                if s:
                    c.compile_s.append(s)
        times: dict[str, list[float]] = {c.name: [] for c in live}
        errs: dict[str, list[float]] = {c.name: [] for c in live}
        counts: dict[str, dict[str, Any]] = {}
        warm: dict[str, float] = {}
        for rep in range(1 + repeats):  # one warm-up, then the timed repeats
            for c in live:
                if c.name in failed or (rep > 1 and warm[c.name] > SLOW_S):
                    continue
                seed = 1000 * k + rep
                try:
                    t0 = time.perf_counter()
                    h = c.solve(dt, seed)
                    el = time.perf_counter() - t0
                    err, cnt = c.finish(h)
                except Exception as e:
                    failed[c.name] = f"failed at dt=2^-{k}: {type(e).__name__}: {e}"
                    print(f"   {c.name}: {failed[c.name]}", flush=True)
                    continue
                errs[c.name].append(err)
                counts[c.name] = cnt
                if rep > 0:
                    times[c.name].append(el)
                else:
                    warm[c.name] = el
        for c in live:
            if c.name in failed or not times[c.name]:
                continue
            rows.append(
                {
                    "part": "fixed",
                    "contender": c.name,
                    "library": c.library,
                    "form": c.form,
                    "order": c.order,
                    "k": k,
                    "dt": dt,
                    "time_ms": 1e3 * statistics.median(times[c.name]),
                    "times_ms": [1e3 * x for x in times[c.name]],
                    "error": statistics.fmean(errs[c.name]),
                    "errors": errs[c.name],
                    "paths": PATHS * len(errs[c.name]),
                    **counts.get(c.name, {}),
                }
            )
        print(f"     dt = 2^-{k} done", flush=True)
    return rows, failed


def time_at_error(points: list[tuple[float, float, float]], target: float) -> float | None:
    """Interpolated time for ``target`` error: ``points`` are (dt, error, time), any order.

    Walks from the coarsest dt to the finest and interpolates log(time) linearly in
    log(error) on the first segment whose errors bracket the target; a target the coarsest
    dt already meets, or that the finest dt misses, gives None (no extrapolation).
    """
    pts = sorted(points, key=lambda p: -p[0])
    if not pts or pts[0][1] <= target:
        return None
    for (_, e0, t0), (_, e1, t1) in itertools.pairwise(pts):
        if e0 > target >= e1:
            if e0 == e1:
                return t1
            w = (math.log(target) - math.log(e0)) / (math.log(e1) - math.log(e0))
            return math.exp(math.log(t0) + w * (math.log(t1) - math.log(t0)))
    return None


def work_precision(
    rows: list[dict[str, Any]], targets: tuple[float, ...]
) -> tuple[dict[str, dict[float, float | None]], list[dict[str, Any]]]:
    """Time to each target per contender, and per target the fastest of each library."""
    by: dict[str, list[tuple[float, float, float]]] = {}
    lib: dict[str, str] = {}
    for r in rows:
        by.setdefault(r["contender"], []).append((r["dt"], r["error"], r["time_ms"]))
        lib[r["contender"]] = r["library"]
    per = {name: {tg: time_at_error(pts, tg) for tg in targets} for name, pts in by.items()}
    best_rows = []
    for tg in targets:
        row: dict[str, Any] = {"target": tg}
        for library in ("hybrideq", "torchsde", "diffrax"):
            cands = [
                (t, n) for n, d in per.items() if lib[n] == library and (t := d[tg]) is not None
            ]
            if cands:
                t, n = min(cands)
                row[f"{library}_ms"] = t
                row[f"{library}_best"] = n.split(" ", 1)[1]
        h = row.get("hybrideq_ms")
        for library in ("torchsde", "diffrax"):
            t = row.get(f"{library}_ms")
            row[f"{library}_ratio"] = None if h is None or t is None else t / h
        best_rows.append(row)
    return per, best_rows


PAIRS = (
    ("torchsde euler", "hybrideq EM"),
    ("torchsde milstein", "hybrideq Milstein"),
    ("torchsde milstein grad_free", "hybrideq Milstein"),
    ("torchsde srk", "hybrideq SRIW1"),
    ("torchsde srk", "hybrideq SOSRI"),
    ("torchsde euler_heun", "hybrideq EulerHeun"),
    ("torchsde milstein (Strat.)", "hybrideq Milstein (Strat.)"),
    ("torchsde reversible_heun", "hybrideq ReversibleHeun"),
    ("diffrax Euler", "hybrideq EM"),
    ("diffrax ItoMilstein", "hybrideq Milstein"),
    ("diffrax Heun", "hybrideq EulerHeun"),
    ("diffrax ReversibleHeun", "hybrideq ReversibleHeun"),
)


# --------------------------------------------------------------------------- part 2


def run_adaptive(
    quick: bool, repeats: int, fixed_rows: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Adaptive SOSRI (joint, per sample), torchsde adaptive srk, diffrax adaptive SPaRK."""
    hq = C.import_hybrideq()
    tols = (1e-2,) if quick else ADAPTIVE_TOLS
    prob100 = hybrideq_gbm(hq)["ito"]
    prob_ps = hybrideq_gbm(hq, PER_SAMPLE_BATCH)["ito"]
    # (name, batch, solve(tol, seed), finish(handle))
    jobs: list[tuple[str, int, Callable[[float, int], Any], Callable[[Any], Any]]] = []

    def hq_job(prob: Any, stepping: str) -> Callable[[float, int], Any]:
        def solve(tol: float, seed: int) -> Any:
            return hq.solve(
                prob,
                hq.SOSRI(),
                rtol=tol,
                atol=tol,
                saveat=[0.0, 1.0],
                seed=seed,
                stepping=stepping,
            )

        return solve

    jobs.append(("hybrideq SOSRI adaptive joint", PATHS, hq_job(prob100, "joint"), hq_finish))
    jobs.append(
        (
            "hybrideq SOSRI adaptive per_sample",
            PER_SAMPLE_BATCH,
            hq_job(prob_ps, "per_sample"),
            hq_finish,
        )
    )
    if C.available("torchsde"):
        import torchsde

        sde = TorchsdeGBM("ito")
        y0 = torch.ones(PATHS, N_STATE, dtype=F64)
        ts = torch.tensor([0.0, 1.0], dtype=F64)

        def ts_solve(tol: float, seed: int) -> Any:
            sde.nf = sde.ng = 0
            bm = torchsde.BrownianInterval(
                t0=0.0,
                t1=1.0,
                size=(PATHS, N_STATE),
                dtype=F64,
                entropy=seed,
                levy_area_approximation="space-time",
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ys = torchsde.sdeint(
                    sde,
                    y0,
                    ts,
                    bm=bm,
                    method="srk",
                    dt=2.0**-6,
                    adaptive=True,
                    rtol=tol,
                    atol=tol,
                    dt_min=2.0**-16,
                )
            return ys, bm, sde.nf, sde.ng

        def ts_finish(h: Any) -> tuple[float, dict[str, Any]]:
            ys, bm, nf, ng = h
            return strong_error(ys[-1].numpy(), bm(0.0, 1.0).numpy()), {"nf": nf, "ng": ng}

        jobs.append(("torchsde srk adaptive", PATHS, ts_solve, ts_finish))
    compile_s: dict[str, float] = {}
    if all(C.available(m) for m in ("jax", "diffrax", "lineax")) and not quick:
        import diffrax
        import jax
        import jax.numpy as jnp
        import lineax as lx

        mu = jnp.asarray(MU)
        sig = jnp.asarray(SIGMA)
        dtmin = 2.0**-14

        def one(key: Any, tol: Any) -> Any:
            bm = diffrax.VirtualBrownianTree(
                0.0,
                1.0,
                tol=dtmin / 2,
                shape=(N_STATE,),
                key=key,
                levy_area=diffrax.SpaceTimeLevyArea,
            )
            terms = diffrax.MultiTerm(
                diffrax.ODETerm(lambda t, y, a: (mu - 0.5 * sig**2) * y),
                diffrax.ControlTerm(lambda t, y, a: lx.DiagonalLinearOperator(sig * y), bm),
            )
            sol = diffrax.diffeqsolve(
                terms,
                diffrax.SPaRK(),
                0.0,
                1.0,
                dt0=2.0**-6,
                y0=jnp.ones(N_STATE),
                saveat=diffrax.SaveAt(t1=True),
                stepsize_controller=diffrax.PIDController(rtol=tol, atol=tol, dtmin=dtmin),
                max_steps=2**16,
                adjoint=diffrax.DirectAdjoint(),
            )
            w = bm.evaluate(0.0, 1.0)
            return (
                sol.ys[-1],
                sol.stats["num_accepted_steps"],
                sol.stats["num_rejected_steps"],
                getattr(w, "W", w),
            )

        fn = jax.jit(jax.vmap(one, in_axes=(0, None)))
        keys0 = jax.random.split(jax.random.PRNGKey(0), PATHS)
        t0 = time.perf_counter()
        compiled = fn.lower(keys0, jnp.float64(1e-2)).compile()
        compile_s["diffrax SPaRK adaptive (Strat.)"] = time.perf_counter() - t0

        def dfx_solve(tol: float, seed: int) -> Any:
            keys = jax.random.split(jax.random.PRNGKey(seed), PATHS)
            return jax.block_until_ready(compiled(keys, jnp.float64(tol)))

        def dfx_finish(h: Any) -> tuple[float, dict[str, Any]]:
            y1, acc, rej, w1 = h
            # W(1) is read inside the timed call here (one query out of hundreds).
            return strong_error(np.asarray(y1), np.asarray(w1)), {
                "steps": float(np.mean(acc)),
                "rejected": float(np.mean(rej)),
                "max_steps_path": float(np.max(np.asarray(acc) + np.asarray(rej))),
            }

        jobs.append(("diffrax SPaRK adaptive (Strat.)", PATHS, dfx_solve, dfx_finish))

    sosri = [
        (r["dt"], r["error"], r["time_ms"])
        for r in fixed_rows
        if r["contender"] == "hybrideq SOSRI"
    ]
    rows = []
    failed: dict[str, str] = {}
    for tol in tols:
        times: dict[str, list[float]] = {j[0]: [] for j in jobs}
        errs: dict[str, list[float]] = {j[0]: [] for j in jobs}
        counts: dict[str, dict[str, Any]] = {}
        warm: dict[str, float] = {}
        for rep in range(1 + repeats):
            for name, _, solve, finish in jobs:
                lo, hi = TOL_RANGE.get(name, (0.0, 1.0))
                if quick:
                    lo, hi = 0.0, 1.0
                skip = not lo <= tol <= hi or (rep > 1 and warm[name] > SLOW_S)
                if name in failed or skip:
                    continue
                seed = 7000 + round(-math.log10(tol)) * 100 + rep
                try:
                    t0 = time.perf_counter()
                    h = solve(tol, seed)
                    el = time.perf_counter() - t0
                    err, cnt = finish(h)
                except Exception as e:
                    failed[name] = f"failed at tol={tol:g}: {type(e).__name__}: {e}"
                    print(f"   {name}: {failed[name]}", flush=True)
                    continue
                errs[name].append(err)
                counts[name] = cnt
                if rep > 0:
                    times[name].append(el)
                else:
                    warm[name] = el
        for name, batch, _, _ in jobs:
            if name in failed or not times[name]:
                continue
            err = statistics.fmean(errs[name])
            t_ms = 1e3 * statistics.median(times[name])
            fixed = time_at_error(sosri, err)
            row = {
                "part": "adaptive",
                "contender": name,
                "batch": batch,
                "tol": tol,
                "time_ms": t_ms,
                "ms_per_path": t_ms / batch,
                "times_ms": [1e3 * x for x in times[name]],
                "error": err,
                "errors": errs[name],
                "paths": batch * len(errs[name]),
                "compile_s": compile_s.get(name),
                **counts.get(name, {}),
            }
            if fixed is not None:
                row["fixed_sosri_ms_per_path"] = fixed / PATHS
                row["vs_fixed"] = (t_ms / batch) / (fixed / PATHS)
            rows.append(row)
        print(f"     tol = {tol:g} done", flush=True)
    order = [j[0] for j in jobs]
    rows.sort(key=lambda r: (order.index(r["contender"]), -r["tol"]))
    for name, msg in failed.items():
        rows.append({"part": "adaptive", "contender": name, "status": msg})
    return rows, compile_s


# --------------------------------------------------------------------------- part 3


class ReadmeSDE(torch.nn.Module):
    """The torchsde README example (general noise), counting f and g calls.

    ``sde_type="ito"`` is the README's; ``"stratonovich"`` the same network read as a
    Stratonovich SDE, for the reversible Heun contenders (torchsde's recommended neural-SDE
    setup: ``reversible_heun`` with ``adjoint_method="adjoint_reversible_heun"``).
    """

    noise_type = "general"

    def __init__(self, sde_type: str = "ito") -> None:
        super().__init__()
        self.sde_type = sde_type
        self.mu = torch.nn.Linear(NSDE_STATE, NSDE_STATE)
        self.sigma = torch.nn.Linear(NSDE_STATE, NSDE_STATE * NSDE_BM)
        self.nf = 0
        self.ng = 0

    def f(self, t: Any, y: torch.Tensor) -> torch.Tensor:
        self.nf += 1
        return self.mu(y)

    def g(self, t: Any, y: torch.Tensor) -> torch.Tensor:
        self.ng += 1
        return self.sigma(y).view(y.shape[0], NSDE_STATE, NSDE_BM)


# (torchsde contender, its hybrideq counterpart): the ratio column of part 3
NEURAL_PAIRS = {
    "torchsde sdeint euler": "hybrideq EM DirectBackprop",
    "torchsde sdeint_adjoint euler": "hybrideq EM BacksolveAdjoint",
    "torchsde sdeint reversible_heun (Strat.)": "hybrideq ReversibleHeun DirectBackprop (Strat.)",
    "torchsde sdeint_adjoint reversible_heun (Strat.)": (
        "hybrideq ReversibleHeun ReversibleAdjoint (Strat.)"
    ),
}
# (adjoint contender, direct contender on the same Brownian path): the Δgrad column
NEURAL_DIRECT = {
    "torchsde sdeint_adjoint euler": "torchsde sdeint euler",
    "torchsde sdeint_adjoint reversible_heun (Strat.)": "torchsde sdeint reversible_heun (Strat.)",
    "hybrideq EM BacksolveAdjoint": "hybrideq EM DirectBackprop",
    "hybrideq ReversibleHeun ReversibleAdjoint (Strat.)": (
        "hybrideq ReversibleHeun DirectBackprop (Strat.)"
    ),
}


def run_neural(quick: bool, repeats: int) -> list[dict[str, Any]]:
    hq = C.import_hybrideq()
    dt = 1e-2 if quick else NSDE_DT
    torch.manual_seed(0)
    init = ReadmeSDE().double()
    y0 = torch.full((NSDE_BATCH, NSDE_STATE), 0.1, dtype=F64)
    ts = torch.linspace(0.0, 1.0, NSDE_T, dtype=F64)
    # (name, sde_type, run(sde, seed) -> (ys, hybrideq solution or None))
    jobs: list[tuple[str, str, Callable[[ReadmeSDE, int], Any]]] = []

    if C.available("torchsde"):
        import torchsde

        def ts_job(adjoint: bool, method: str) -> Callable[[ReadmeSDE, int], Any]:
            def go(sde: ReadmeSDE, seed: int) -> Any:
                bm = torchsde.BrownianInterval(
                    t0=0.0, t1=1.0, size=(NSDE_BATCH, NSDE_BM), dtype=F64, entropy=seed
                )
                if adjoint:
                    adj = "adjoint_reversible_heun" if method == "reversible_heun" else None
                    ys = torchsde.sdeint_adjoint(
                        sde, y0, ts, bm=bm, method=method, adjoint_method=adj, dt=dt
                    )
                else:
                    ys = torchsde.sdeint(sde, y0, ts, bm=bm, method=method, dt=dt)
                return ys, None

            return go

        jobs.append(("torchsde sdeint euler", "ito", ts_job(False, "euler")))
        jobs.append(("torchsde sdeint_adjoint euler", "ito", ts_job(True, "euler")))
        jobs.append(
            (
                "torchsde sdeint reversible_heun (Strat.)",
                "stratonovich",
                ts_job(False, "reversible_heun"),
            )
        )
        jobs.append(
            (
                "torchsde sdeint_adjoint reversible_heun (Strat.)",
                "stratonovich",
                ts_job(True, "reversible_heun"),
            )
        )
    else:
        print("   torchsde: " + C.missing_row("torchsde", "torchsde")["status"])

    def hq_job(solver: Any, sensealg: Any, interp: str) -> Callable[[ReadmeSDE, int], Any]:
        def go(sde: ReadmeSDE, seed: int) -> Any:
            prob = hq.SDEProblem(
                lambda t, y, p: p.f(t, y),
                lambda t, y, p: p.g(t, y),
                y0,
                (0.0, 1.0),
                p=sde,
                noise="general",
                noise_dim=NSDE_BM,
                interpretation=interp,
            )
            sol = hq.solve(
                prob, solver, dt=dt, adaptive=False, saveat=ts, seed=seed, sensealg=sensealg
            )
            if not sol.success:
                raise RuntimeError(f"hybrideq solve failed: {sol.retcode}")
            return sol.y, sol

        return go

    jobs.append(("hybrideq EM DirectBackprop", "ito", hq_job(hq.EM(), hq.DirectBackprop(), "ito")))
    jobs.append(
        ("hybrideq EM BacksolveAdjoint", "ito", hq_job(hq.EM(), hq.BacksolveAdjoint(), "ito"))
    )
    if hasattr(hq, "ReversibleHeun"):
        strat = "stratonovich"
        jobs.append(
            (
                "hybrideq ReversibleHeun DirectBackprop (Strat.)",
                strat,
                hq_job(hq.ReversibleHeun(), hq.DirectBackprop(), strat),
            )
        )
        if hasattr(hq, "ReversibleAdjoint"):
            jobs.append(
                (
                    "hybrideq ReversibleHeun ReversibleAdjoint (Strat.)",
                    strat,
                    hq_job(hq.ReversibleHeun(), hq.ReversibleAdjoint(), strat),
                )
            )

    models = {}
    for name, sde_type, _ in jobs:
        models[name] = ReadmeSDE(sde_type).double()
        models[name].load_state_dict(init.state_dict())
    t_fb: dict[str, list[float]] = {n: [] for n, _, _ in jobs}
    t_f: dict[str, list[float]] = {n: [] for n, _, _ in jobs}
    info: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    for rep in range(1 + repeats):
        for name, _, go in jobs:
            if name in failed:
                continue
            sde = models[name]
            seed = 500 + rep
            try:
                # forward + backward (the gradient)
                sde.zero_grad(set_to_none=True)
                sde.nf = sde.ng = 0
                t0 = time.perf_counter()
                ys, sol = go(sde, seed)
                loss = ys.pow(2).mean()
                loss.backward()
                el = time.perf_counter() - t0
                nf, ng = sde.nf, sde.ng
                grads = [p.grad for p in sde.parameters()]
                finite = all(g is not None and bool(torch.isfinite(g).all()) for g in grads)
                gnorm = math.sqrt(sum(float(g.pow(2).sum()) for g in grads if g is not None))
                # forward only, no graph
                with torch.no_grad():
                    t1 = time.perf_counter()
                    go(sde, seed)
                    el_f = time.perf_counter() - t1
            except Exception as e:
                failed[name] = f"failed: {type(e).__name__}: {e}"
                print(f"   {name}: {failed[name]}", flush=True)
                continue
            if rep > 0:
                t_fb[name].append(el)
                t_f[name].append(el_f)
            info[name] = {
                "loss": loss.item(),
                "grad_norm": gnorm,
                "grads_finite": finite,
                "nf": nf,
                "ng": ng,
                "steps": None if sol is None else float(sol.stats.naccept.double().mean()),
                "grad_seed": seed,
                "grads": [g.detach().clone() for g in grads if g is not None],
            }
    rows = []
    for name, _, _ in jobs:
        if name in failed:
            rows.append({"part": "neural", "contender": name, "status": failed[name]})
            continue
        d = dict(info[name])
        d.pop("grads")
        rows.append(
            {
                "part": "neural",
                "contender": name,
                "fb_ms": 1e3 * statistics.median(t_fb[name]),
                "fwd_ms": 1e3 * statistics.median(t_f[name]),
                "fb_times_ms": [1e3 * x for x in t_fb[name]],
                "fwd_times_ms": [1e3 * x for x in t_f[name]],
                "dt": dt,
                **d,
            }
        )
    by = {r["contender"]: r for r in rows if r.get("fb_ms")}
    for r in rows:
        partner = by.get(NEURAL_PAIRS.get(r["contender"], ""))
        if r.get("fb_ms") and partner is not None:
            r["vs_hq"] = r["fb_ms"] / partner["fb_ms"]
            r["vs_hq_fwd"] = r["fwd_ms"] / partner["fwd_ms"]
            r["hq_partner"] = partner["contender"]
        # The adjoint's gradient against direct backprop on the same Brownian path.
        a, b = info.get(NEURAL_DIRECT.get(r["contender"], "")), info.get(r["contender"])
        if a and b and a["grad_seed"] == b["grad_seed"]:
            diff = math.sqrt(
                sum(
                    float((x - y).pow(2).sum()) for x, y in zip(a["grads"], b["grads"], strict=True)
                )
            )
            r["grad_rel_diff_vs_direct"] = diff / a["grad_norm"]
    return rows


# --------------------------------------------------------------------------- output


def fmt_ms(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"


def fmt_g(x: float | None) -> str:
    return "—" if x is None else f"{x:.3g}"


def fmt_e(x: float | None) -> str:
    return "—" if x is None else f"{x:.2e}"


def fmt_r(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def md_table(header: list[str], body: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(out)


def text_table(header: list[str], body: list[list[str]]) -> str:
    """Plain-text table; a row whose cells after the second are all empty is a status line
    (``name  message``) printed without widening the columns."""

    def status(r: list[str]) -> bool:
        return len(r) >= 2 and not any(r[2:]) and len(r[1]) > 12

    rows = [r for r in body if not status(r)]
    w = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    for r in body:
        if status(r):
            w[0] = max(w[0], len(r[0]))
    lines = ["  ".join(h.ljust(w[i]) if i == 0 else h.rjust(w[i]) for i, h in enumerate(header))]
    lines.append("  ".join("-" * x for x in w))
    for r in body:
        if status(r):
            lines.append(r[0].ljust(w[0]) + "  " + r[1])
        else:
            lines.append(
                "  ".join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r))
            )
    return "\n".join(lines)


def build_tables(
    fixed_rows: list[dict[str, Any]],
    failed: dict[str, str],
    contenders: list[Contender],
    ladder: tuple[int, ...],
    per: dict[str, dict[float, float | None]],
    best: list[dict[str, Any]],
    adaptive_rows: list[dict[str, Any]],
    neural_rows: list[dict[str, Any]],
    missing: list[dict[str, Any]],
) -> list[tuple[str, list[str], list[list[str]]]]:
    tables = []
    # 1a: time / error per dt
    header = ["contender", "form", "order"] + [f"2^-{k}" for k in ladder] + ["compile [s]"]
    body = []
    cell = {(r["contender"], r["k"]): r for r in fixed_rows}
    for c in contenders:
        if c.name in failed and not any(r["contender"] == c.name for r in fixed_rows):
            body.append([c.name, failed[c.name]] + [""] * (len(header) - 2))
            continue
        cells = []
        for k in ladder:
            r = cell.get((c.name, k))
            cells.append("—" if r is None else f"{fmt_ms(r['time_ms'])} / {fmt_e(r['error'])}")
        comp = f"{statistics.fmean(c.compile_s):.1f}" if c.compile_s else "—"
        body.append([c.name, c.form, f"{c.order:g}", *cells, comp])
    for m in missing:
        body.append([m["contender"], m["status"]] + [""] * (len(header) - 2))
    tables.append(
        (
            "Part 1 — GBM, fixed dt: median time [ms] / strong error E|y(1) − exact| per dt",
            header,
            body,
        )
    )
    # 1b: time at equal error per contender
    header = ["contender"] + [f"err {t:g}" for t in TARGETS]
    body = []
    for c in contenders:
        if c.name not in per:
            continue
        body.append([c.name] + [fmt_ms(per[c.name][t]) for t in TARGETS])
    tables.append(
        (
            "Part 1 — time [ms] to reach a strong error (log-log interpolation between dt rungs)",
            header,
            body,
        )
    )
    # 1c: fastest per library, ratios
    header = [
        "strong error",
        "hybrideq [ms]",
        "best hybrideq",
        "torchsde [ms]",
        "best torchsde",
        "torchsde/hq",
        "diffrax [ms]",
        "best diffrax",
        "diffrax/hq",
    ]
    body = []
    for r in best:
        body.append(
            [
                f"{r['target']:g}",
                fmt_ms(r.get("hybrideq_ms")),
                r.get("hybrideq_best", "—"),
                fmt_ms(r.get("torchsde_ms")),
                r.get("torchsde_best", "—"),
                fmt_r(r.get("torchsde_ratio")),
                fmt_ms(r.get("diffrax_ms")),
                r.get("diffrax_best", "—"),
                fmt_r(r.get("diffrax_ratio")),
            ]
        )
    tables.append(("Part 1 — fastest method of each library at equal strong error", header, body))
    # 1d: pairs of like methods
    header = ["peer / hybrideq"] + [f"err {t:g}" for t in TARGETS]
    body = []
    for a, b in PAIRS:
        if a in per and b in per:
            ratios = []
            for t in TARGETS:
                x, y = per[a][t], per[b][t]
                ratios.append(fmt_r(None if x is None or y is None else x / y))
            body.append([f"{a} / {b}", *ratios])
    tables.append(("Part 1 — time ratios of like methods at equal strong error", header, body))
    # 2: adaptive
    header = [
        "contender",
        "batch",
        "rtol=atol",
        "time [ms]",
        "ms/path",
        "strong error",
        "steps",
        "rejected",
        "fixed SOSRI ms/path at same error",
        "adaptive/fixed",
    ]
    body = []
    for r in adaptive_rows:
        if r.get("status"):
            body.append([r["contender"], r["status"]] + [""] * (len(header) - 2))
            continue
        body.append(
            [
                r["contender"],
                str(r["batch"]),
                f"{r['tol']:g}",
                fmt_ms(r["time_ms"]),
                f"{r['ms_per_path']:.3g}",
                fmt_e(r["error"]),
                "—" if r.get("steps") is None else f"{r['steps']:.1f}",
                "—" if r.get("rejected") is None else f"{r['rejected']:.1f}",
                "—"
                if r.get("fixed_sosri_ms_per_path") is None
                else f"{r['fixed_sosri_ms_per_path']:.3g}",
                fmt_r(r.get("vs_fixed")),
            ]
        )
    tables.append(("Part 2 — adaptive SOSRI vs fixed SOSRI (and adaptive peers)", header, body))
    # 2b: adaptive work-precision, time per path at equal error
    curves: dict[str, list[tuple[float, float, float]]] = {}
    for r in adaptive_rows:
        if not r.get("status"):
            curves.setdefault(r["contender"], []).append((r["tol"], r["error"], r["ms_per_path"]))
    fixed_pp = [
        (r["dt"], r["error"], r["time_ms"] / PATHS)
        for r in fixed_rows
        if r["contender"] == "hybrideq SOSRI"
    ]
    if fixed_pp:
        curves["hybrideq SOSRI fixed dt (part 1)"] = fixed_pp
    header = ["contender"] + [f"err {t:g}" for t in TARGETS]
    at = {name: {t: time_at_error(pts, t) for t in TARGETS} for name, pts in curves.items()}
    body = [[name] + [fmt_g(at[name][t]) for t in TARGETS] for name in at]
    base = at.get("hybrideq SOSRI adaptive joint")
    for name in at:
        if base is None or not name.startswith(("torchsde", "diffrax")):
            continue
        body.append(
            [f"ratio {name} / hybrideq joint"]
            + [
                fmt_r(None if at[name][t] is None or base[t] is None else at[name][t] / base[t])
                for t in TARGETS
            ]
        )
    if len(curves) > 1:
        tables.append(
            (
                "Part 2 — time per path [ms] to reach a strong error (interpolated between "
                "tolerances)",
                header,
                body,
            )
        )
    # 3: neural SDE
    header = [
        "contender",
        "fwd+bwd [ms]",
        "fwd only [ms]",
        "torchsde/hq fwd+bwd",
        "torchsde/hq fwd",
        "steps",
        "f calls",
        "g calls",
        "loss",
        "|grad|",
        "finite",
        "Δgrad vs direct",
    ]
    body = []
    for r in neural_rows:
        if r.get("status"):
            body.append([r["contender"], r["status"]] + [""] * (len(header) - 2))
            continue
        body.append(
            [
                r["contender"],
                fmt_ms(r["fb_ms"]),
                fmt_ms(r["fwd_ms"]),
                fmt_r(r.get("vs_hq")),
                fmt_r(r.get("vs_hq_fwd")),
                "—" if r.get("steps") is None else f"{r['steps']:.0f}",
                str(r["nf"]),
                str(r["ng"]),
                f"{r['loss']:.4f}",
                f"{r['grad_norm']:.4f}",
                str(r["grads_finite"]),
                "—"
                if r.get("grad_rel_diff_vs_direct") is None
                else f"{r['grad_rel_diff_vs_direct']:.1e}",
            ]
        )
    tables.append(
        (
            "Part 3 — torchsde README neural SDE (batch 32, state 3, 2 Brownian motions, general "
            "noise), forward + backward",
            header,
            body,
        )
    )
    return tables


def plot(fixed_rows: list[dict[str, Any]], path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 6))
    colors = {"hybrideq": "tab:red", "torchsde": "tab:blue", "diffrax": "tab:green"}
    styles = ["o-", "s--", "^-.", "v:", "D-", "x--", "*-.", "P:", "h-"]
    seen: dict[str, int] = {}
    names = []
    for r in fixed_rows:
        if r["contender"] not in names:
            names.append(r["contender"])
    for name in names:
        pts = sorted((r["error"], r["time_ms"]) for r in fixed_rows if r["contender"] == name)
        lib = name.split(" ", 1)[0]
        i = seen.get(lib, 0)
        seen[lib] = i + 1
        ax.loglog(
            [p[0] for p in pts],
            [p[1] for p in pts],
            styles[i % len(styles)],
            color=colors.get(lib, "k"),
            label=name,
            ms=4,
            lw=1,
        )
    ax.set_xlabel("strong error E|y(1) − exact|")
    ax.set_ylabel("median time per solve [ms]")
    ax.invert_xaxis()
    ax.legend(fontsize=7, ncol=2)
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot written to {path}")


# --------------------------------------------------------------------------- driver


def main() -> None:
    p = C.make_parser(__doc__.splitlines()[0])
    p.add_argument(
        "--parts", default="1,2,3", help="which parts to run (comma-separated, default 1,2,3)"
    )
    args = p.parse_args()
    C.setup()
    torch.set_num_threads(C.THREADS)
    meta = C.machine_info()
    meta["torchsde"] = C.version("torchsde")
    meta["lineax"] = C.version("lineax")
    meta["equinox"] = C.version("equinox")
    parts = {s.strip() for s in args.parts.split(",")}
    ladder = QUICK_LADDER if args.quick else FULL_LADDER
    repeats = args.repeats or (1 if args.quick else 3)
    title = (
        f"W7 SDEs: GBM 4-dim × {PATHS} paths fixed dt 2^-{ladder[0]}…2^-{ladder[-1]}, adaptive "
        "SOSRI, torchsde README neural SDE; float64"
    )
    C.print_header(title, args, meta)
    print(f"   torchsde {meta['torchsde']}  lineax {meta['lineax']}  equinox {meta['equinox']}")
    print(f"   one warm-up, then the median of {repeats} timed runs, contenders round robin")
    warnings.filterwarnings("ignore", module="torchsde")

    contenders: list[Contender] = []
    missing: list[dict[str, Any]] = []
    for lib, needs, make in (
        ("hybrideq", (), lambda: hybrideq_contenders(args.quick)),
        ("torchsde", ("torchsde",), lambda: torchsde_contenders(args.quick)),
        (
            "diffrax",
            ("jax", "diffrax", "lineax"),
            lambda: diffrax_contenders(ladder, args.quick),
        ),
    ):
        if any(not C.available(m) for m in needs):
            missing.append(C.missing_row(lib, *needs))
            print(f"   {lib}: {missing[-1]['status']}")
            continue
        contenders += [c for c in make() if C.selected(c.name, args.only)]

    fixed_rows: list[dict[str, Any]] = []
    failed: dict[str, str] = {}
    per: dict[str, dict[float, float | None]] = {}
    best: list[dict[str, Any]] = []
    t_start = time.perf_counter()
    if "1" in parts:
        print(f"   part 1: {len(contenders)} contenders × {len(ladder)} step sizes ...", flush=True)
        fixed_rows, failed = run_fixed(contenders, ladder, repeats)
        per, best = work_precision(fixed_rows, TARGETS)
        print(f"   part 1 took {time.perf_counter() - t_start:.0f} s", flush=True)
    adaptive_rows: list[dict[str, Any]] = []
    if "2" in parts:
        t0 = time.perf_counter()
        print("   part 2: adaptive ...", flush=True)
        adaptive_rows, _ = run_adaptive(args.quick, repeats, fixed_rows)
        print(f"   part 2 took {time.perf_counter() - t0:.0f} s", flush=True)
    neural_rows: list[dict[str, Any]] = []
    if "3" in parts:
        t0 = time.perf_counter()
        print("   part 3: neural SDE ...", flush=True)
        neural_rows = run_neural(args.quick, max(repeats, 2) if args.quick else 5)
        print(f"   part 3 took {time.perf_counter() - t0:.0f} s", flush=True)
    meta["total_s"] = time.perf_counter() - t_start

    tables = build_tables(
        fixed_rows, failed, contenders, ladder, per, best, adaptive_rows, neural_rows, missing
    )
    for name, header, body in tables:
        if body:
            print()
            print(name)
            print(text_table(header, body))
    notes = [
        "Strong error: mean |y(1) − y0·exp((μ − σ²/2) + σW(1))| over 100 paths × 4 components "
        "and over every run (warm-up included), W(1) from the contender's own Brownian path; "
        "each run draws a new path (new seed), whose construction is part of the timed solve.",
        "Part 1 interpolates log(time) in log(error) between neighbouring dt rungs; '—' where "
        "the coarsest dt is already more accurate or the finest not accurate enough.",
        "diffrax: jit(vmap(diffeqsolve)) over 100 paths with a VirtualBrownianTree (tol = "
        "dt/2, the diffrax docs' choice), DirectAdjoint, float64; 'grid path': the Brownian "
        "path drawn on the step grid (cumsum of normals) as a LinearInterpolation control, "
        "exact only for that fixed dt and without Lévy area (compiled per dt). compile = "
        "trace + lower + compile (mean over compiles), excluded from the times.",
        "torchsde: sdeint with a BrownianInterval built per run (space-time Lévy area for srk), "
        "the batch as one system; 'milstein' is torchsde's default (derivatives by autograd), "
        "'grad_free' its derivative-free variant (hybrideq's Milstein is derivative-free).",
        "Part 2: 'ms/path' = time / batch; 'fixed SOSRI ms/path at same error' interpolates "
        "part 1's fixed-step SOSRI curve (batch 100) at the adaptive run's error; "
        "'adaptive/fixed' = ms/path over that. rtol = atol; the tolerance ranges differ per "
        "contender (hybrideq 1e-1…1e-4, per-sample to 1e-3, peers 1e-2…1e-6) so that the "
        "errors overlap; the second table interpolates time per path in error across "
        "tolerances, and 'ratio' rows divide a peer's time by hybrideq joint's.",
        "Part 3: dt = "
        + (f"{1e-2:g} (quick)" if args.quick else f"{NSDE_DT:g} (torchsde's default)")
        + "; torchsde steps on the dt grid and interpolates at the 20 save times, hybrideq cuts "
        "its steps at the save times (a few more steps). loss = mean(ys²) over the save times; "
        "'fwd only' = the same solve under torch.no_grad(); torchsde/hq = time ratio to the "
        "hybrideq counterpart (sdeint euler ↔ EM DirectBackprop, sdeint_adjoint euler ↔ EM "
        "BacksolveAdjoint, reversible_heun ↔ ReversibleHeun DirectBackprop, sdeint_adjoint "
        "reversible_heun with adjoint_reversible_heun ↔ ReversibleHeun ReversibleAdjoint; "
        "'(Strat.)' rows read the same network as a Stratonovich SDE). |grad| = 2-norm of "
        "the parameter gradient; Δgrad vs direct = relative difference of an adjoint's "
        "gradient from direct backpropagation of the same library on the same Brownian path.",
    ]
    print("Notes:")
    for n in notes:
        print("  - " + n)

    name = "w7_sde_quick" if args.quick else "w7_sde"
    if C.THREADS != 2:
        name += f"_{C.THREADS}thread"
    meta.update(
        {
            "mu": MU,
            "sigma": SIGMA,
            "paths": PATHS,
            "ladder_k": ladder,
            "repeats": repeats,
            "targets": TARGETS,
            "compile_s": {c.name: c.compile_s for c in contenders if c.compile_s},
            "failed": failed,
        }
    )
    rows = fixed_rows + adaptive_rows + neural_rows + missing
    paths = C.write_results(
        name,
        rows,
        meta,
        json_path=args.json,
        extra={"work_precision": per, "best_at_error": best},
    )
    md = [f"# {title} ({'quick' if args.quick else 'full'})", ""]
    md.append(
        f"{meta['date']}, {meta.get('cpu', meta['processor'])}, {meta['cpu_count']} cores, "
        f"{meta['threads']} threads per library, Python {meta['python']}, torch {meta['torch']}, "
        f"torchsde {meta['torchsde']}, jax {meta['jax']}, diffrax {meta['diffrax']}, hybrideq "
        f"{meta['hybrideq']} at {meta['git']}. Load average (1 min) before the run "
        f"{meta['loadavg_start']}, after {round(os.getloadavg()[0], 2)}; total "
        f"{meta['total_s']:.0f} s."
    )
    for tname, header, body in tables:
        if body:
            md += ["", f"## {tname}", "", md_table(header, body)]
    md += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    md_path = C.RESULTS_DIR / f"{name}.md"
    md_path.write_text("\n".join(md) + "\n")
    print("results written to " + ", ".join(str(x) for x in [*paths, md_path]))
    if args.plot and fixed_rows:
        plot(fixed_rows, args.plot, title)


if __name__ == "__main__":
    main()
