"""Measure the order of every explicit Runge–Kutta solver on y' = A y.

Fixed steps of size h on a damped rotation, error at t = 1 against the matrix exponential
(SciPy); the slope of log(error) against log(h) is the observed order. Run:

    python examples/convergence_orders.py
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import torch

import hybrideq as hq

STEPS = {
    "Tsit5": [1 / 8, 1 / 12, 1 / 16, 1 / 24, 1 / 32],
    "DP5": [1 / 8, 1 / 12, 1 / 16, 1 / 24, 1 / 32],
    "Vern7": [1 / 4, 1 / 6, 1 / 8, 1 / 12],
    "BS3": [1 / 16, 1 / 32, 1 / 64, 1 / 128],
    "Euler": [1 / 64, 1 / 128, 1 / 256, 1 / 512],
    "RK4": [1 / 16, 1 / 32, 1 / 64, 1 / 128],
}


def main() -> None:
    a = torch.tensor([[-0.5, 2.0], [-2.0, -0.5]], dtype=torch.float64)
    y0 = torch.tensor([1.0, 0.5], dtype=torch.float64)
    exact = torch.from_numpy(scipy.linalg.expm(a.numpy()) @ y0.numpy())
    prob = hq.library.linear_system(a, y0, (0.0, 1.0))
    print(f"{'solver':8s} {'order':>5s} {'observed':>8s}   errors")
    for name, hs in STEPS.items():
        solver = getattr(hq, name)()
        kwargs = {"adaptive": False} if solver.is_adaptive else {}
        errors = [
            float((hq.solve(prob, solver, dt=h, **kwargs).y[-1] - exact).abs().max()) for h in hs
        ]
        slope = np.polyfit(np.log(hs), np.log(errors), 1)[0]
        shown = " ".join(f"{e:.1e}" for e in errors)
        print(f"{name:8s} {solver.order:5d} {slope:8.2f}   {shown}")


if __name__ == "__main__":
    main()
