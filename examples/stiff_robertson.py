"""A stiff-system study of Robertson's reaction: solvers, a DAE, a rate sweep, gradients.

Robertson's autocatalytic reaction (``hybrideq.library.robertson``) has rate constants from
0.04 to 3·10⁷: explicit methods crawl, stiff ones take a few hundred steps to t = 10⁵.
This script

1. solves it with three stiff families and checks them against SciPy's Radau at
   rtol 1e-12;
2. solves the index-1 DAE form (mass matrix diag(1, 1, 0)) from an *inconsistent* y0 and
   shows the consistent start that ``initializealg="auto"`` computed;
3. sweeps 256 rate triples in one batched solve and times it against a SciPy loop;
4. differentiates y(10⁵) with respect to the three rates with ``InterpolatingAdjoint``
   and compares with central finite differences;
5. draws a small work-precision diagram (``hybrideq.workprecision``) to
   ``out/stiff_robertson.png`` (with ``--no-plot`` it only prints the table).

Run (about half a minute)::

    python examples/stiff_robertson.py
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from scipy.integrate import solve_ivp

import hybrideq as hq

F64 = torch.float64
T_END = 1e5


def scipy_robertson(k: np.ndarray) -> tuple[object, object]:
    """NumPy right-hand side and Jacobian for ``solve_ivp``."""
    k1, k2, k3 = k

    def f(t: float, y: np.ndarray) -> np.ndarray:
        r1, r2, r3 = k1 * y[0], k2 * y[1] ** 2, k3 * y[1] * y[2]
        return np.array([-r1 + r3, r1 - r2 - r3, r2])

    def jac(t: float, y: np.ndarray) -> np.ndarray:
        return np.array(
            [
                [-k1, k3 * y[2], k3 * y[1]],
                [k1, -2 * k2 * y[1] - k3 * y[2], -k3 * y[1]],
                [0.0, 2 * k2 * y[1], 0.0],
            ]
        )

    return f, jac


def radau(k: np.ndarray, rtol: float = 1e-12) -> np.ndarray:
    f, jac = scipy_robertson(k)
    s = solve_ivp(f, (0.0, T_END), [1.0, 0.0, 0.0], "Radau", jac=jac, rtol=rtol, atol=1e-20)
    return s.y[:, -1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-plot", action="store_true", help="skip the diagram")
    parser.add_argument("--batch", type=int, default=256, help="rate triples in the sweep")
    args = parser.parse_args()
    torch.set_num_threads(1)  # (B, 3) tensors: too small to gain from threads

    prob = hq.library.robertson(tspan=(0.0, T_END))
    k0 = prob.p.numpy()
    ref = radau(k0)

    # 1. Three stiff families (after a short warm-up: the first call sets things up).
    for solver in (hq.Rodas5P(), hq.QNDF(), hq.KenCarp4()):
        hq.solve(prob.remake(tspan=(0.0, 1.0)), solver)
    print("1. Robertson to t = 1e5, rtol 1e-8, atol 1e-12 (error: max relative vs Radau 1e-12)")
    for solver in (hq.Rodas5P(), hq.QNDF(), hq.KenCarp4()):
        t0 = time.perf_counter()
        sol = hq.solve(prob, solver, rtol=1e-8, atol=1e-12, saveat=[T_END])
        dt = time.perf_counter() - t0
        err = np.max(np.abs(sol.y[-1].numpy() - ref) / np.abs(ref))
        st = sol.stats
        print(
            f"   {solver.name:9s} {sol.retcode.name}: error {err:.1e}, {int(st.naccept)} steps, "
            f"{int(st.nf)} f, {int(st.njac)} Jacobians, {int(st.nlu)} LUs, {dt * 1e3:.0f} ms"
        )

    # 2. The DAE form from an inconsistent start: y3 = 0.5 violates y1 + y2 + y3 = 1.
    dae = hq.library.robertson(dae=True, tspan=(0.0, T_END))
    dae = dae.remake(y0=torch.tensor([1.0, 0.0, 0.5], dtype=F64))
    sol = hq.solve(dae, hq.Rodas5P(), rtol=1e-8, atol=1e-12, saveat=[0.0, T_END])
    err = np.max(np.abs(sol.y[-1].numpy() - ref) / np.abs(ref))
    print(
        f"2. DAE form from y0 = (1, 0, 0.5): {sol.retcode.name}, started from "
        f"{sol.y[0].tolist()} (Brown's method), error at 1e5 vs the ODE's reference {err:.1e}"
    )

    # 3. A rate sweep: one batched solve against a SciPy loop.
    rng = np.random.default_rng(0)
    ranges = ((0.01, 0.1), (1e7, 1e8), (1e3, 1e5))
    ks = np.stack([10 ** rng.uniform(np.log10(a), np.log10(b), args.batch) for a, b in ranges], 1)
    batch = prob.remake(y0=prob.y0.expand(args.batch, 3).clone(), p=torch.from_numpy(ks).to(F64))
    t0 = time.perf_counter()
    sol = hq.solve(batch, hq.Rodas5P(), rtol=1e-6, atol=1e-10, saveat=[T_END])
    t_hq = time.perf_counter() - t0
    t0 = time.perf_counter()
    loop = []
    for k in ks:
        f, jac = scipy_robertson(k)
        s = solve_ivp(f, (0.0, T_END), [1.0, 0.0, 0.0], "BDF", jac=jac, rtol=1e-6, atol=1e-10)
        loop.append(s.y[:, -1])
    t_sp = time.perf_counter() - t0
    refs = np.stack([radau(k, 1e-10) for k in ks[:8]])
    err_hq = np.max(np.abs(sol.y[:8, -1].numpy() - refs) / (np.abs(refs) + 1e-4))
    err_sp = np.max(np.abs(np.stack(loop[:8]) - refs) / (np.abs(refs) + 1e-4))
    print(
        f"3. {args.batch} rate triples: hybrideq Rodas5P batched {t_hq:.2f} s, SciPy BDF loop "
        f"{t_sp:.2f} s ({t_sp / t_hq:.0f}x); error on 8 samples: {err_hq:.1e} vs {err_sp:.1e}"
    )

    # 4. Gradients of y(1e5) with respect to the rates, by an adjoint solved with Rodas5P.
    weights = torch.tensor([1.0, 1e4, 1.0], dtype=F64)  # y2 is ~1e-8 at the end

    def loss(k: torch.Tensor, sensealg: object = None) -> torch.Tensor:
        s = hq.solve(
            prob.remake(p=k),
            hq.Rodas5P(),
            rtol=1e-10,
            atol=1e-14,
            saveat=[T_END],
            sensealg=sensealg,  # type: ignore[arg-type]
        )
        return (s.y[-1] * weights).sum()

    k = prob.p.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(loss(k, hq.InterpolatingAdjoint()), k)
    fd = []
    with torch.no_grad():
        for i in range(3):
            e = torch.zeros(3, dtype=F64)
            e[i] = 1e-4 * float(prob.p[i])
            fd.append(float(loss(prob.p + e) - loss(prob.p - e)) / (2 * float(e[i])))
    rel = np.max(np.abs(g.numpy() - np.array(fd)) / np.abs(fd))
    print(
        "4. d(y1 + 1e4 y2 + y3)(1e5)/dk, InterpolatingAdjoint: "
        f"{np.array2string(g.numpy(), precision=4)}; central differences "
        f"{np.array2string(np.array(fd), precision=4)}; max relative difference {rel:.1e}"
    )

    # 5. A small work-precision study.
    wp = hq.workprecision(
        prob,
        [hq.Rodas5P(), hq.QNDF(), "scipy:BDF", "scipy:Radau"],
        [1e-4, 1e-6, 1e-8],
        repeats=1,
        title="Robertson, t ∈ [0, 1e5]",
    )
    print("5. work-precision (time, error):")
    print(wp.table())
    if not args.no_plot:
        os.makedirs("out", exist_ok=True)
        ax = wp.plot()
        ax.figure.savefig("out/stiff_robertson.png", dpi=120)
        print("   diagram written to out/stiff_robertson.png")


if __name__ == "__main__":
    main()
