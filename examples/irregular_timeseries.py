"""Classify irregular time series with 30%, 50% and 70% of the observations dropped.

Stable neural SDEs (Oh, Lim & Kim, ICLR 2024) against a plain neural SDE and a neural ODE,
all reading the data through a natural cubic spline of the observations that remain.

The data are synthetic pen strokes, generated here (no download): 2-D trajectories of five
classes — a circle drawn counter-clockwise, the same circle clockwise, a figure eight, an
ellipse, a three-leaf rose — with random phase, speed, time warp, size and noise (0.25),
observed at 50 times on [0, 1]. A random 30%, 50% or 70% of each series' observation times
are then dropped (as Kidger et al. 2020 do for CharacterTrajectories), so every series has
its own irregular sampling. A circle's direction cannot be read from any single
observation: the model has to integrate the path.

Each model is ``z(0) = Linear(X(t_0))``, a latent equation for ``z`` driven by the path ``X``
(time and cumulative observation counts appended as channels), and ``Linear(z(T))``:

- LSDE   ``dz = γ(z, X(t)) dt + σ(t) dW``                 (Langevin type, additive noise)
- LNSDE  ``dz = γ(t, z, X(t)) dt + σ(t) z dW``            (linear multiplicative noise)
- GSDE   ``dz = γ(t, z, X(t)) z dt + σ(t) z dW``          (geometric; |γ| ≤ 3, z > 0)
- SDE    ``dz = γ(t, z, X(t)) dt + σ(t, z) dW``           (no stability structure)
- ODE    ``dz/dt = γ(t, z, X(t))``                        (the same drift, no noise)

All are solved by ``hybrideq.solve`` on the observation grid with fixed steps (Euler–Maruyama
for the SDEs, Euler for the ODE: the paper's ``dt = max(min Δt, 1e-3)``), trained with Adam
on cross-entropy from the same seed, and scored on held-out series with one noise sample.
The paper's pure forms are the default. ``--stabilizers`` switches to the benchmark code's
variants (tanh-clipped drift, sin/cos time features, ReLU, sigmoid-scaled noise), with the
same data and training budget.

Run (times on one core of a 2-core machine; the script uses one thread)::

    python examples/irregular_timeseries.py                 # about 4 minutes
    python examples/irregular_timeseries.py --stabilizers   # about 5 minutes
    python examples/irregular_timeseries.py --quick         # about 30 seconds (a smoke test)
    python examples/irregular_timeseries.py --plot out/irregular_timeseries.png
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor, nn

import hybrideq as hq

MISSING_RATES = (0.3, 0.5, 0.7)
MODELS = ("LSDE", "LNSDE", "GSDE", "SDE", "ODE")
CLASSES = (
    "circle, counter-clockwise",
    "circle, clockwise",
    "figure eight",
    "ellipse, counter-clockwise",
    "three-leaf rose",
)
NOISE = 0.25  # observation noise (the strokes have radius about 1)


class Settings(NamedTuple):
    T: int  # observation times per series (before dropping)
    n_train: int
    n_test: int
    steps: int  # Adam steps
    batch: int
    hidden: int  # latent size and network width
    lr: float


QUICK = Settings(T=30, n_train=256, n_test=256, steps=60, batch=32, hidden=16, lr=2e-2)
FULL = Settings(T=50, n_train=1024, n_test=512, steps=400, batch=64, hidden=16, lr=1e-2)


def make_dataset(n: int, T: int, missing: float, seed: int) -> tuple[Tensor, Tensor, Tensor]:
    """``n`` pen strokes at ``T`` times with a fraction ``missing`` of each one's rows NaN.

    Returns ``(t, x, labels)``: times ``(T,)``, observations ``(n, T, 2)`` and classes ``(n,)``.
    """
    g = torch.Generator().manual_seed(seed)
    t = torch.linspace(0.0, 1.0, T)
    labels = torch.randint(0, len(CLASSES), (n,), generator=g)
    # Random phase, speed and a random monotone time warp: w(t) = φ + 2π s (t + a sin(2πt)/2π).
    phase = 2 * math.pi * torch.rand(n, 1, generator=g)
    speed = 0.9 + 0.4 * torch.rand(n, 1, generator=g)
    warp = 0.8 * torch.rand(n, 1, generator=g)
    w = phase + 2 * math.pi * speed * (t + warp * torch.sin(2 * math.pi * t) / (2 * math.pi))
    c, s = torch.cos(w), torch.sin(w)
    shapes = torch.stack(
        [
            torch.stack([c, s], dim=-1),  # circle, counter-clockwise
            torch.stack([c, -s], dim=-1),  # circle, clockwise
            torch.stack([s, 0.5 * torch.sin(2 * w)], dim=-1),  # figure eight
            torch.stack([c, 0.6 * s], dim=-1),  # ellipse, counter-clockwise
            torch.stack([torch.cos(3 * w) * c, torch.cos(3 * w) * s], dim=-1),  # three-leaf rose
        ]
    )  # (classes, n, T, 2)
    x = shapes[labels, torch.arange(n)]
    size = 0.8 + 0.4 * torch.rand(n, 1, 1, generator=g)
    x = size * x + NOISE * torch.randn(n, T, 2, generator=g)
    # Drop a random subset of each series' observation times (all channels at once).
    dropped = torch.rand(n, T, generator=g).argsort(dim=1) < round(missing * T)
    x[dropped] = float("nan")
    return t, x, labels


def build(name: str, args: argparse.Namespace, t: Tensor) -> nn.Module:
    """The model ``name``: 2 input channels, one score per class, ``args.hidden`` latent units."""
    common = {"hidden_hidden_channels": args.hidden, "stabilizers": args.stabilizers}
    if name == "ODE":
        return hq.nn.ODEClassifier(
            2, args.hidden, len(CLASSES), solver=hq.Euler(), dt=hq.nn.paper_dt(t), **common
        )
    field_kwargs = {"gamma_bound": 3.0} if name == "GSDE" and not args.stabilizers else None
    kind = {"LSDE": "lsde", "LNSDE": "lnsde", "GSDE": "gsde", "SDE": "sde"}[name]
    return hq.nn.SDEClassifier(
        kind, 2, args.hidden, len(CLASSES), field_kwargs=field_kwargs, **common
    )


def train_and_test(
    name: str,
    train: tuple[Tensor, Tensor, Tensor],
    test: tuple[Tensor, Tensor, Tensor],
    args: argparse.Namespace,
) -> tuple[float, float]:
    """Train model ``name``; return (test accuracy, training seconds)."""
    torch.manual_seed(args.seed)  # the same initialisation and noise stream for every rate
    t, x, y = train
    model = build(name, args, t)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    start = time.perf_counter()
    for _ in range(args.steps):
        idx = torch.randint(0, len(y), (args.batch,))
        loss = nn.functional.cross_entropy(model(t, x[idx]).logits, y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - start
    t, x, y = test
    with torch.no_grad():
        kwargs = {} if name == "ODE" else {"seed": 12345}  # one fixed noise sample
        logits = model(t, x, **kwargs).logits
    if not bool(torch.isfinite(logits).all()):
        return float("nan"), seconds
    return float((logits.argmax(-1) == y).float().mean()), seconds


def plot(path: Path, examples: tuple[Tensor, Tensor, Tensor], table: dict, rates: tuple) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t, x, labels = examples
    fig = plt.figure(figsize=(11, 6.5))
    grid = fig.add_gridspec(2, len(CLASSES), height_ratios=[1, 1.6])
    for c, name in enumerate(CLASSES):
        ax = fig.add_subplot(grid[0, c])
        i = int((labels == c).nonzero()[0])
        keep = ~torch.isnan(x[i, :, 0])
        spline = hq.nn.CubicSplinePath(t, x[i : i + 1])
        fine = torch.linspace(float(t[keep][0]), float(t[keep][-1]), 200)
        curve = torch.cat([spline.evaluate(s) for s in fine])
        ax.plot(curve[:, 0], curve[:, 1], lw=1)
        ax.plot(x[i, keep, 0], x[i, keep, 1], "o", ms=3, color="C3")
        ax.set_title(name, fontsize=9)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.text(
        0.5,
        0.97,
        f"one series per class, {round(100 * rates[1])}% of the times dropped, and "
        "the cubic spline the models read",
        ha="center",
        fontsize=10,
    )
    ax1 = fig.add_subplot(grid[1, :])
    for name in MODELS:
        ax1.plot([100 * r for r in rates], [100 * table[name][r] for r in rates], "o-", label=name)
    ax1.set_xlabel("observations dropped (%)")
    ax1.set_ylabel("test accuracy (%)")
    ax1.set_xticks([100 * r for r in rates])
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"figure written to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds per model")
    parser.add_argument("--stabilizers", action="store_true", help="the benchmark's variants")
    parser.add_argument("--plot", type=Path, default=None, help="write a figure to this path")
    parser.add_argument("--seed", type=int, default=0, help="initialisation and noise seed")
    args = parser.parse_args()
    torch.set_num_threads(1)  # (64, 16) tensors: threads only add overhead
    cfg = QUICK if args.quick else FULL
    T, n_train, n_test = cfg.T, cfg.n_train, cfg.n_test
    args.steps, args.batch, args.hidden, args.lr = cfg.steps, cfg.batch, cfg.hidden, cfg.lr

    print(
        f"{'quick' if args.quick else 'full'} run: {n_train} training and {n_test} test series "
        f"of {T} times, {len(CLASSES)} classes; {args.steps} Adam steps of {args.batch}, {args.hidden} "
        f"latent units, {'stabilized' if args.stabilizers else 'pure'} forms"
    )
    table: dict[str, dict[float, float]] = {name: {} for name in MODELS}
    seconds: dict[str, float] = dict.fromkeys(MODELS, 0.0)
    start = time.perf_counter()
    for rate in MISSING_RATES:
        train = make_dataset(n_train, T, rate, seed=1)
        test = make_dataset(n_test, T, rate, seed=2)
        for name in MODELS:
            acc, sec = train_and_test(name, train, test, args)
            table[name][rate] = acc
            seconds[name] += sec
            print(
                f"  {round(100 * rate)}% dropped  {name:5s}  test accuracy {100 * acc:5.1f}%  ({sec:.1f} s)"
            )

    header = "".join(f"{round(100 * r)}% dropped".rjust(13) for r in MISSING_RATES)
    print(f"\ntest accuracy (%)\nmodel {header}   train time")
    for name in MODELS:
        row = "".join(f"{100 * table[name][r]:13.1f}" for r in MISSING_RATES)
        print(f"{name:5s} {row}   {seconds[name]:8.1f} s")
    print(f"total {time.perf_counter() - start:.0f} s")
    if args.plot is not None:
        plot(args.plot, make_dataset(32, T, MISSING_RATES[1], seed=2), table, MISSING_RATES)


if __name__ == "__main__":
    main()
