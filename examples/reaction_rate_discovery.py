"""Discover a rate law in a small chemical reaction network from concentration data.

Network (mass action, unknown to the fit):  A + 2B → C  (rate k₁·A·B²),  C → B  (rate k₂·C)
with k₁ = 0.5, k₂ = 0.3. Five experiments from different initial concentrations are sampled
every 0.05 on [0, 10] with 1e-4 relative measurement noise. SINDy (STLSQ over the monomials
of degree ≤ 3 in A, B, C, derivatives by fourth-order differences, a threshold sweep) pools the experiments and
returns the rate equations as sympy; the third-order term A·B² identifies the rate law.

Run: ``python examples/reaction_rate_discovery.py``.
"""

from __future__ import annotations

import numpy as np
import sympy as sp
import torch

import hybrideq as hq
from hybrideq.symbolic import FiniteDifference, PolynomialLibrary, SINDy, SymbolicODE, discover

A, B, C, k1, k2 = sp.symbols("A B C k1 k2")


def main() -> int:
    rate1, rate2 = k1 * A * B**2, k2 * C
    network = SymbolicODE(
        {A: -rate1, B: -2 * rate1 + rate2, C: rate1 - rate2}, params={k1: 0.5, k2: 0.3}
    )
    print("true network:")
    for s, e in network.equations.items():
        print(f"  d{s}/dt = {e}")
    y0 = torch.tensor(
        [[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [1.5, 1.5, 0.5], [0.5, 2.5, 0.2], [2.5, 2.0, 0.0]],
        dtype=torch.float64,
    )
    t = torch.arange(0.0, 10.0 + 0.025, 0.05, dtype=torch.float64)
    sol = hq.solve(network.problem(y0, (0.0, 10.0)), hq.Vern7(), saveat=t, rtol=1e-12, atol=1e-12)
    rng = np.random.default_rng(0)
    data = sol.y.numpy() * (1 + 1e-4 * rng.standard_normal(sol.y.shape))
    model = discover(
        t,
        data,
        method=SINDy(
            library=PolynomialLibrary(3), threshold=list(10.0 ** np.arange(-3, 0.01, 0.25))
        ),
        states=[A, B, C],
        derivative=FiniteDifference(order=4),
    )
    print("discovered (5 experiments pooled, SINDy over monomials of degree ≤ 3):")
    print(model)
    rate_terms = {
        m: float(c)
        for c, m in (t_.as_coeff_Mul() for t_ in sp.Add.make_args(sp.expand(model.equations[A])))
    }
    ok = set(rate_terms) == {A * B**2} and abs(rate_terms[A * B**2] + 0.5) < 0.01
    print(
        f"rate law of A + 2B → C: {'k·A·B², k = ' + format(-rate_terms.get(A * B**2, 0.0), '.4f') if ok else 'not identified: ' + str(rate_terms)}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
