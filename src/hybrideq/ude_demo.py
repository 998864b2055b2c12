"""``hybrideq demo``: the UDE Lotka–Volterra study (Rackauckas et al. 2020, REFERENCES §5).

The predator–prey system ``x' = αx − βxy``, ``y' = γxy − δy`` with
``p = (1.3, 0.9, 0.8, 1.8)`` and ``u0 = (0.44249296, 4.6280594)`` is sampled at 31 points
of ``[0, 3]`` (Vern7, tolerance 1e-12) with 5 % noise (``X + 0.05·mean(X)·randn`` per state).
The study then

1. trains a universal differential equation ``x' = αx + U₁(x, y)``, ``y' = −δy + U₂(x, y)``
   (α, δ known; ``U`` a 2→5→5→5→2 network with ``exp(−x²)`` activations) with Adam, then
   L-BFGS;
2. evaluates ``U`` along the learned trajectory (every 0.05) and discovers sympy equations
   for it with SINDy (STLSQ over the polynomials up to degree 2, thresholds 1e-3 … 1);
3. puts each distinct model of the threshold sweep back beside ``αx`` and ``−δy`` as a
   :class:`~hybrideq.symbolic.SymbolicODE`, refits its coefficients to the data and keeps
   the sparsest within 2 of the best AICc (:func:`~hybrideq.symbolic.select_model`,
   Mangan et al. 2017), and
4. extrapolates the truth, the UDE and the discovered model to ``t = 20``.

Run it with ``hybrideq demo`` (``make demo``): quick settings, a printed summary (the
discovered equations, coefficient errors, extrapolation errors) and a figure. The full
study is ``examples/ude_lotka_volterra.py``.
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sympy
import torch
from torch import Tensor, nn

from hybrideq.nn import RBF, UDE
from hybrideq.solution import ReturnCode
from hybrideq.solve import solve
from hybrideq.solvers import Tsit5, Vern7
from hybrideq.symbolic import (
    DiscoveredModel,
    ModelSelection,
    PolynomialLibrary,
    SINDy,
    SymbolicODE,
    select_model,
)

__all__ = [
    "TRUE_P",
    "U0",
    "LVData",
    "StudyResult",
    "build_parser",
    "check_recovery",
    "lotka_volterra",
    "main",
    "make_data",
    "make_ude",
    "plot",
    "run_study",
    "train",
]

TRUE_P = {"alpha": 1.3, "beta": 0.9, "gamma": 0.8, "delta": 1.8}
"""The true parameters (REFERENCES §5)."""
U0 = (0.44249296, 4.6280594)
"""The initial state (REFERENCES §5)."""

x, y = sympy.symbols("x y")
alpha, beta, gamma, delta = sympy.symbols("alpha beta gamma delta")


def lotka_volterra() -> SymbolicODE:
    """The full Lotka–Volterra model with the true parameters as defaults."""
    return SymbolicODE(
        {x: alpha * x - beta * x * y, y: gamma * x * y - delta * y},
        params={alpha: 1.3, beta: 0.9, gamma: 0.8, delta: 1.8},
    )


def known_part() -> SymbolicODE:
    """What the UDE knows: ``x' = αx``, ``y' = −δy``."""
    return SymbolicODE({x: alpha * x, y: -delta * y}, params={alpha: 1.3, delta: 1.8})


@dataclass(frozen=True)
class LVData:
    """The training data.

    Attributes:
        t: sample times ``(31,)`` on ``[0, 3]``.
        truth: the exact states ``(31, 2)``.
        noisy: the noisy samples ``(31, 2)``.
    """

    t: Tensor
    truth: Tensor
    noisy: Tensor


def make_data(noise: float = 0.05, seed: int = 0, t_end: float = 3.0, dt: float = 0.1) -> LVData:
    """Sample the true system and add noise ``noise · mean(X) · N(0, 1)`` per state."""
    t = torch.arange(0.0, t_end + dt / 2, dt, dtype=torch.float64)
    sol = solve(
        lotka_volterra().problem(U0, (0.0, t_end)), Vern7(), saveat=t, rtol=1e-12, atol=1e-12
    )
    gen = torch.Generator().manual_seed(seed)
    noisy = sol.y + noise * sol.y.mean(0) * torch.randn(
        sol.y.shape, generator=gen, dtype=torch.float64
    )
    return LVData(t, sol.y, noisy)


def make_ude(seed: int = 0) -> UDE:
    """The UDE of REFERENCES §5: known ``αx``, ``−δy`` and a 2→5→5→5→2 RBF network."""
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Linear(2, 5), RBF(), nn.Linear(5, 5), RBF(), nn.Linear(5, 5), RBF(), nn.Linear(5, 2)
    ).double()
    return UDE(known_part(), net, solver=Tsit5(), rtol=1e-6, atol=1e-8)


def train(
    ude: UDE,
    data: LVData,
    *,
    adam_iterations: int = 200,
    lbfgs_iterations: int = 30,
    lr: float = 0.03,
    progress: bool = True,
) -> list[float]:
    """Fit the UDE to the noisy samples: Adam(``lr``), then L-BFGS; returns the losses.

    The loss is the sum of squared errors of the solution from the first sample.
    """
    from tqdm.auto import tqdm

    y0 = data.noisy[0]

    def loss_fn() -> Tensor:
        out = ude(y0, data.t)
        return ((out.y - data.noisy) ** 2).sum()

    history: list[float] = []
    bar = tqdm(
        total=adam_iterations + lbfgs_iterations,
        desc="train UDE",
        disable=None if progress else True,
        leave=False,
    )
    adam = torch.optim.Adam(ude.parameters(), lr=lr)
    for _ in range(adam_iterations):
        adam.zero_grad()
        loss = loss_fn()
        loss.backward()
        adam.step()
        history.append(float(loss.detach()))
        bar.update()
        bar.set_postfix(loss=f"{history[-1]:.4g}")
    lbfgs = torch.optim.LBFGS(
        ude.parameters(), lr=1.0, max_iter=20, history_size=50, line_search_fn="strong_wolfe"
    )

    def closure() -> Tensor:
        lbfgs.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    for _ in range(lbfgs_iterations):
        history.append(float(lbfgs.step(closure).detach()))
        bar.update()
        bar.set_postfix(loss=f"{history[-1]:.4g}")
    bar.close()
    return history


def check_recovery(model: SymbolicODE, tolerance: float = 0.10) -> dict[str, Any]:
    """Compare a recovered model with the truth.

    Returns:
        ``terms``: ``{state: set of monomials}``; ``exact_terms``: whether the terms are
        ``{x, x·y}`` and ``{y, x·y}`` (no spurious, none missing); ``coefficients``:
        ``{name: (found, true, relative error)}`` for β and γ; ``within``: every
        relative error ``<= tolerance``.
    """
    terms: dict[str, set[sympy.Expr]] = {}
    coeff: dict[str, float] = {}
    for s, e in model.equations.items():
        e = sympy.expand(e.subs(model.defaults))
        terms[str(s)] = {m for m in sympy.Add.make_args(e) if m != 0 for m in [m.as_coeff_Mul()[1]]}
        coeff[str(s)] = float(e.coeff(x * y)) if e.coeff(x * y) != 0 else 0.0
    exact = terms.get("x") == {x, x * y} and terms.get("y") == {y, x * y}
    found = {"beta": -coeff.get("x", 0.0), "gamma": coeff.get("y", 0.0)}
    table = {k: (v, TRUE_P[k], abs(v - TRUE_P[k]) / TRUE_P[k]) for k, v in found.items()}
    return {
        "terms": terms,
        "exact_terms": exact,
        "coefficients": table,
        "within": all(err <= tolerance for _, _, err in table.values()),
    }


@dataclass
class StudyResult:
    """Everything the study computed (for printing, plotting and tests)."""

    data: LVData
    ude: UDE
    losses: list[float]
    t_dense: Tensor
    learned: Tensor
    discovered: DiscoveredModel
    selection: ModelSelection
    recovered: SymbolicODE
    check: dict[str, Any]
    t_long: Tensor
    truth_long: Tensor
    ude_long: Tensor
    recovered_long: Tensor
    ude_retcode: ReturnCode
    errors: dict[str, float]
    seconds: float


def _pad(y: Tensor, length: int) -> Tensor:
    """A failed solve keeps what it computed; pad its rows with NaN up to ``length``."""
    if y.shape[0] >= length:
        return y
    return torch.cat([y, torch.full((length - y.shape[0], y.shape[1]), math.nan, dtype=y.dtype)])


def _long_solve(f_problem: Any, t_long: Tensor) -> tuple[Tensor, ReturnCode]:
    sol = solve(f_problem, Vern7(), saveat=t_long, rtol=1e-10, atol=1e-12, maxiters=200_000)
    rc = sol.retcode if isinstance(sol.retcode, ReturnCode) else sol.retcode[0]
    return _pad(sol.y, t_long.shape[0]), rc


def run_study(
    *,
    seed: int = 0,
    adam_iterations: int = 200,
    lbfgs_iterations: int = 30,
    threshold: float = 0.0,
    t_extrapolate: float = 20.0,
    progress: bool = True,
) -> StudyResult:
    """Run the whole study (train, discover, refit, extrapolate)."""
    start = time.perf_counter()
    data = make_data(seed=seed)
    ude = make_ude(seed)
    losses = train(
        ude,
        data,
        adam_iterations=adam_iterations,
        lbfgs_iterations=lbfgs_iterations,
        progress=progress,
    )
    t_dense = torch.arange(0.0, 3.0 + 0.025, 0.05, dtype=torch.float64)
    with torch.no_grad():
        learned = ude(data.noisy[0], t_dense).y
    library = PolynomialLibrary(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pysindy: "eliminated all coefficients"
        sindy = SINDy(
            library=library,
            threshold=list(10.0 ** np.arange(-3.0, 0.01, 0.1)) if threshold <= 0 else threshold,
        )
        swept = ude.discover(t_dense, learned, sindy)
    # every distinct model of the sweep, with its coefficients refit to the data through the
    # solver, scored by AICc (Mangan et al. 2017): the sparsest within 2 of the best wins
    candidates = swept.alternatives or [swept]
    selection = select_model(
        [ude.to_symbolic_ode(c, parametrize=True) for c in candidates],
        data.t,
        data.noisy,
        fit="c_*",
        fit_y0=True,
        iterations=50,
        progress=progress,
    )
    discovered = candidates[selection.index]
    recovered = selection.model
    check = check_recovery(recovered)
    t_long = torch.arange(0.0, t_extrapolate + 0.025, 0.05, dtype=torch.float64)
    truth_long, _ = _long_solve(lotka_volterra().problem(U0, (0.0, t_extrapolate)), t_long)
    with torch.no_grad():
        out = ude(data.noisy[0], t_long)
    ude_long = _pad(out.y, t_long.shape[0])
    recovered_long, _ = _long_solve(
        recovered.problem(selection.fit.y0, (0.0, t_extrapolate)), t_long
    )
    errors = {}
    for name, pred in (("ude", ude_long), ("recovered", recovered_long)):
        diff = (pred - truth_long).norm(dim=1)
        errors[f"{name}_rms"] = float(diff.pow(2).mean().sqrt())
        errors[f"{name}_max"] = float(diff.max())
    return StudyResult(
        data=data,
        ude=ude,
        losses=losses,
        t_dense=t_dense,
        learned=learned,
        discovered=discovered,
        selection=selection,
        recovered=recovered,
        check=check,
        t_long=t_long,
        truth_long=truth_long,
        ude_long=ude_long,
        recovered_long=recovered_long,
        ude_retcode=out.sol.retcode
        if isinstance(out.sol.retcode, ReturnCode)
        else out.sol.retcode[0],
        errors=errors,
        seconds=time.perf_counter() - start,
    )


def plot(result: StudyResult, out: Path) -> bool:
    """Draw the study in three panels; returns False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, (ax_fit, ax_u, ax_long) = plt.subplots(1, 3, figsize=(16, 4.5))
    d = result.data
    colors = ("tab:blue", "tab:orange")
    for i, name in enumerate("xy"):
        ax_fit.plot(
            d.t, d.noisy[:, i], "o", ms=4, color=colors[i], label=f"{name} data (5 % noise)"
        )
        ax_fit.plot(result.t_dense, result.learned[:, i], "-", color=colors[i], label=f"{name} UDE")
    ax_fit.set(xlabel="t", ylabel="state", title="training span: data and UDE fit")
    ax_fit.legend(fontsize=8)

    X = result.learned
    true_u = torch.stack([-0.9 * X[:, 0] * X[:, 1], 0.8 * X[:, 0] * X[:, 1]], 1)
    with torch.no_grad():
        net_u = result.ude.neural_term(X)
    disc_u = torch.as_tensor(result.discovered.to_numpy()(result.t_dense.numpy(), X.numpy()))
    for i, name in enumerate(("U₁ (−βxy)", "U₂ (γxy)")):
        ax_u.plot(
            result.t_dense,
            true_u[:, i],
            "-",
            color=colors[i],
            lw=3,
            alpha=0.35,
            label=f"{name} true",
        )
        ax_u.plot(result.t_dense, net_u[:, i], "--", color=colors[i], label=f"{name} network")
        ax_u.plot(result.t_dense, disc_u[:, i], ":", color="k", lw=1.2)
    ax_u.plot([], [], ":", color="k", label="discovered (SINDy)")
    ax_u.set(xlabel="t", ylabel="missing term", title="missing terms along the learned trajectory")
    ax_u.legend(fontsize=8)

    for i, name in enumerate("xy"):
        ax_long.plot(
            result.t_long,
            result.truth_long[:, i],
            "-",
            color=colors[i],
            lw=3,
            alpha=0.35,
            label=f"{name} truth",
        )
        ax_long.plot(
            result.t_long, result.ude_long[:, i], "--", color=colors[i], lw=1, label=f"{name} UDE"
        )
        ax_long.plot(result.t_long, result.recovered_long[:, i], ":", color="k", lw=1.2)
    ax_long.plot([], [], ":", color="k", label="discovered + refit")
    ax_long.axvspan(0, 3, color="0.9", zorder=0)
    ax_long.set(
        xlabel="t",
        ylabel="state",
        title=f"extrapolation to t = {float(result.t_long[-1]):g} (grey: training span)",
        ylim=(-0.5, 1.5 * float(result.truth_long.max())),
    )
    ax_long.legend(fontsize=8, ncol=2)
    fig.suptitle(
        "UDE Lotka–Volterra: train a hybrid model, discover its missing terms, extrapolate"
    )
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return True


def _discovered_terms(model: SymbolicODE) -> dict[sympy.Symbol, sympy.Expr]:
    """The added terms of a recovered model: those with a ``c_*`` coefficient."""
    return {
        s: sympy.Add(
            *(
                m
                for m in sympy.Add.make_args(e)
                if any(str(p).startswith("c_") for p in m.free_symbols)
            )
        )
        for s, e in model.equations.items()
    }


def summary(result: StudyResult) -> str:
    """The printed report."""
    r = result
    lines = [
        "hybrideq demo: universal differential equation for Lotka–Volterra (REFERENCES §5)",
        "  data      31 samples on [0, 3], 5 % noise; UDE x' = αx + U₁, y' = −δy + U₂ "
        "(α = 1.3, δ = 1.8 known)",
        f"  training  loss {r.losses[0]:.4g} → {r.losses[-1]:.4g} "
        f"({len(r.losses)} iterations: Adam, then L-BFGS)",
        "  SINDy (STLSQ over 1, x, y, x², xy, y², thresholds 1e-3 … 1): candidate models "
        "refit to the data, AICc (→ chosen: the sparsest within 2 of the best)",
    ]
    sel = r.selection
    for i, (model, row) in enumerate(zip(sel.models, sel.table, strict=True)):
        added = "; ".join(
            " + ".join(str(m.as_coeff_Mul()[1]) for m in sympy.Add.make_args(e) if m != 0) or "0"
            for e in _discovered_terms(model).values()
        )
        lines.append(
            f"    {'→' if i == sel.index else ' '} U = ({added}): {int(row['k'])} parameters, "
            f"mse {row['mse']:.3g}, ΔAICc {row['delta']:.1f}"
        )
    lines.append("  discovered missing terms (before the refit):")
    lines += [f"    U_{s} = {e}" for s, e in r.discovered.equations.items()]
    lines.append("  recovered model, coefficients refit to the data:")
    lines += [
        f"    d{s}/dt = {sympy.expand(e.subs(r.recovered.defaults))}"
        for s, e in r.recovered.equations.items()
    ]
    for name, (found, true, err) in r.check["coefficients"].items():
        lines.append(f"    {name:6s} {found:.4f} (true {true}, error {100 * err:.1f} %)")
    lines.append(
        f"  terms: {'exactly the interaction terms, none spurious' if r.check['exact_terms'] else 'NOT the true terms: ' + str(r.check['terms'])}"
    )
    T = float(r.t_long[-1])
    lines.append(
        f"  extrapolation to t = {T:g}, error ‖ŷ − y‖ (RMS / max over t): "
        f"UDE {r.errors['ude_rms']:.3g} / {r.errors['ude_max']:.3g}; "
        f"discovered model {r.errors['recovered_rms']:.3g} / {r.errors['recovered_max']:.3g}"
    )
    lines.append(f"  time {r.seconds:.1f} s")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The ``hybrideq demo`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="hybrideq demo",
        description="The UDE Lotka–Volterra study: train a hybrid model on noisy data, discover "
        "its missing terms with SINDy, refit them and extrapolate. `hybrideq demo spiral` runs "
        "the neural-ODE spiral demo instead.",
    )
    parser.add_argument("--adam", type=int, default=200, help="Adam iterations (default 200)")
    parser.add_argument("--lbfgs", type=int, default=30, help="L-BFGS iterations (default 30)")
    parser.add_argument(
        "--threshold",
        type=float,
        default=0.0,
        help="SINDy threshold (default 0: sweep 1e-3 … 1, refit every distinct model to the "
        "data and choose by AICc)",
    )
    parser.add_argument(
        "--t-end", type=float, default=20.0, help="extrapolate to this time (default 20)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("out/ude_lotka_volterra.png"),
        help="the figure (default out/ude_lotka_volterra.png)",
    )
    parser.add_argument("--no-plot", action="store_true", help="do not draw the figure")
    parser.add_argument("--seed", type=int, default=1, help="noise and network seed (default 1)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the study and print its summary (the verdict on the recovered terms included).

    Returns:
        0 when the study ran (whether or not SINDy recovered exactly the true terms: the
        summary says which).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.adam < 0 or args.lbfgs < 0:
        parser.error("--adam and --lbfgs must be >= 0")
    threads = torch.get_num_threads()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        result = run_study(
            seed=args.seed,
            adam_iterations=args.adam,
            lbfgs_iterations=args.lbfgs,
            threshold=args.threshold,
            t_extrapolate=args.t_end,
        )
    finally:
        torch.set_num_threads(threads)
    print(summary(result))
    if not args.no_plot:
        if plot(result, args.out):
            print(f"  figure    {args.out}")
        else:
            print("  figure    skipped: matplotlib is not installed (pip install 'hybrideq[plot]')")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
