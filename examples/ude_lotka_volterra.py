"""The UDE Lotka–Volterra study of Rackauckas et al. (2020), REFERENCES §5.

Train ``x' = αx + U₁``, ``y' = −δy + U₂`` on 31 noisy samples (5 %) of ``[0, 3]``, discover
the missing terms ``U`` with SINDy along the learned trajectory, refit their coefficients in
a SymbolicODE and extrapolate truth, UDE and discovered model to ``t = 20``. The body is
:mod:`hybrideq.ude_demo` (also ``hybrideq demo``); this script runs it for several seeds.

Run: ``python examples/ude_lotka_volterra.py --seeds 1 2 --out out/ude_lotka_volterra.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hybrideq import ude_demo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--lbfgs", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("out/ude_lotka_volterra.png"))
    args = parser.parse_args(argv)
    for seed in args.seeds:
        result = ude_demo.run_study(seed=seed, lbfgs_iterations=args.lbfgs)
        print(f"== seed {seed}")
        print(ude_demo.summary(result))
        out = args.out.with_name(f"{args.out.stem}_seed{seed}{args.out.suffix}")
        if ude_demo.plot(result, out):
            print(f"  figure    {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
