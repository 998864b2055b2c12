"""``hybrideq demo``: train a small neural ODE on a cubic spiral and plot the fit.

The data come from the cubic spiral ``dy/dt = (y**3) @ A`` with
``A = [[-0.1, 2.0], [-2.0, -0.1]]`` and ``y0 = (2, 0)``, sampled at 1000 points of
``[0, 25]`` (solved with ``Tsit5`` at ``rtol=1e-7``, ``atol=1e-9``). The model is a
:class:`hybrideq.nn.NeuralODE` whose vector field is ``Linear(2, 50) → tanh → Linear(50, 2)``
applied to ``y**3``. It is trained with Adam on minibatches of random windows of the
trajectory: every window is one sample of a batched solve, so every window takes its own
steps (the outer, fast part of the spiral needs more steps than the slow centre). At the end
the learned model is integrated from ``y0`` over the whole span and compared with the truth.

Run it with ``hybrideq demo`` (or ``make demo``)::

    $ hybrideq demo --steps 300 --out out/spiral_demo.png

The functions are public so that tests and notebooks can reuse them: :func:`make_data`,
:class:`SpiralField`, :func:`train`, :func:`window_loss`, :func:`evaluate`, :func:`plot`.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from hybrideq.nn import NeuralODE
from hybrideq.problems import ODEProblem
from hybrideq.sensitivity import AbstractSensitivityAlgorithm, DirectBackprop
from hybrideq.solution import ReturnCode
from hybrideq.solve import solve
from hybrideq.solvers import Tsit5

__all__ = [
    "SPIRAL_A",
    "Evaluation",
    "SpiralData",
    "SpiralField",
    "TrainResult",
    "evaluate",
    "main",
    "make_data",
    "plot",
    "spiral_rhs",
    "train",
    "window_loss",
]

SPIRAL_A: tuple[tuple[float, float], tuple[float, float]] = ((-0.1, 2.0), (-2.0, -0.1))
"""The matrix ``A`` of the spiral ``dy/dt = (y**3) @ A``."""

MODEL_RTOL = 1e-5
MODEL_ATOL = 1e-6


# --------------------------------------------------------------------------- data


def spiral_rhs(t: Tensor, y: Tensor, p: Tensor) -> Tensor:
    """The true vector field ``dy/dt = (y**3) @ A``, with ``A`` passed as ``p``.

    Args:
        t: time (unused: the system is autonomous).
        y: state, ``(2,)`` or ``(batch, 2)``.
        p: the matrix ``A``, ``(2, 2)``.

    Returns:
        ``dy/dt`` with the shape of ``y``.
    """
    return (y**3) @ p


@dataclass(frozen=True)
class SpiralData:
    """The training trajectory.

    Attributes:
        t: sample times, ``(N,)``.
        y: the true states at ``t``, ``(N, 2)``.
        nfe: right-hand-side evaluations the reference solve took.
    """

    t: Tensor
    y: Tensor
    nfe: int

    @property
    def y0(self) -> Tensor:
        """The initial state ``y(t0)``, ``(2,)``."""
        return self.y[0]


def make_data(
    n_points: int = 1000, t_end: float = 25.0, dtype: torch.dtype = torch.float32
) -> SpiralData:
    """Sample the true spiral at ``n_points`` equally spaced times of ``[0, t_end]``.

    The reference solve runs in float64 with ``Tsit5`` at ``rtol=1e-7``, ``atol=1e-9``;
    the samples are then cast to ``dtype``.

    Args:
        n_points: number of sample times.
        t_end: end of the time span.
        dtype: floating dtype of the returned tensors.

    Returns:
        The sampled trajectory.

    Raises:
        RuntimeError: if the reference solve fails.
    """
    a = torch.tensor(SPIRAL_A, dtype=torch.float64)
    y0 = torch.tensor([2.0, 0.0], dtype=torch.float64)
    t = torch.linspace(0.0, t_end, n_points, dtype=torch.float64)
    prob = ODEProblem(spiral_rhs, y0, (0.0, t_end), a)
    sol = solve(prob, Tsit5(), saveat=t, rtol=1e-7, atol=1e-9)
    if not sol.success:
        raise RuntimeError(f"the reference solve of the spiral failed: {sol.retcode}")
    return SpiralData(t=t.to(dtype), y=sol.y.to(dtype), nfe=int(sol.stats.nf))


# --------------------------------------------------------------------------- model


class SpiralField(nn.Module):
    """The neural vector field ``f_θ(t, y) = W2 tanh(W1 y³ + b1) + b2`` (50 hidden units).

    The cube of the state is the input, as in the data's law. The initialization is chosen
    for a fast fit: ``W1 ~ N(0, 0.1²)`` keeps ``tanh`` near its linear range for
    ``|y³| ≤ 8``, and ``W2 ~ N(0, 0.3²)`` lets the field reach the data's speeds
    (``|dy/dt|`` up to 16) within a few hundred Adam steps, since Adam moves each weight by
    about the learning rate per step. Biases start at zero.

    Args:
        hidden: number of hidden units.
    """

    def __init__(self, hidden: int = 50) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, hidden), nn.Tanh(), nn.Linear(hidden, 2))
        first, last = self.net[0], self.net[2]
        assert isinstance(first, nn.Linear) and isinstance(last, nn.Linear)
        nn.init.normal_(first.weight, std=0.1)
        nn.init.zeros_(first.bias)
        nn.init.normal_(last.weight, std=0.3)
        nn.init.zeros_(last.bias)

    def forward(self, t: Tensor, y: Tensor) -> Tensor:
        """Evaluate the field.

        Args:
            t: time, ``()`` or ``(batch,)`` (unused: the field is autonomous).
            y: state, ``(2,)`` or ``(batch, 2)``.

        Returns:
            ``dy/dt`` with the shape of ``y``.
        """
        return self.net(y**3)


def make_model(
    sensealg: AbstractSensitivityAlgorithm | None = None, dtype: torch.dtype = torch.float32
) -> NeuralODE:
    """Build the demo's neural ODE (``Tsit5``, ``rtol=1e-5``, ``atol=1e-6``).

    Args:
        sensealg: how gradients are computed (default ``DirectBackprop()``, the fastest
            for this small model and short windows).
        dtype: floating dtype of the parameters.

    Returns:
        The model, with freshly initialized parameters (seed torch before calling).
    """
    model = NeuralODE(
        SpiralField(),
        solver=Tsit5(),
        sensealg=sensealg if sensealg is not None else DirectBackprop(),
        rtol=MODEL_RTOL,
        atol=MODEL_ATOL,
    )
    return model.to(dtype)


# --------------------------------------------------------------------------- training


def get_batch(
    data: SpiralData, batch_size: int, batch_time: int, generator: torch.Generator
) -> tuple[Tensor, Tensor, Tensor]:
    """Draw random windows of ``batch_time`` consecutive samples of the trajectory.

    The field is autonomous, so every window is integrated over the same relative times
    ``t[:batch_time] - t[0]``; the windows start at different points of the spiral and
    therefore need different step sizes, which the batched solve handles per sample.

    Args:
        data: the trajectory.
        batch_size: number of windows.
        batch_time: samples per window.
        generator: the random generator for the window starts.

    Returns:
        ``(y0, t, y)``: start states ``(batch, 2)``, relative times ``(batch_time,)`` and
        target states ``(batch, batch_time, 2)``.
    """
    n = data.t.shape[0]
    starts = torch.randint(0, n - batch_time + 1, (batch_size,), generator=generator)
    idx = starts[:, None] + torch.arange(batch_time)[None, :]
    return data.y[starts], data.t[:batch_time] - data.t[0], data.y[idx]


def window_loss(model: NeuralODE, data: SpiralData, batch_time: int = 10, every: int = 5) -> float:
    """Mean absolute error of the model on a fixed set of windows (no gradient).

    Used to compare the model before and after training on the same windows: one window of
    ``batch_time`` samples starts at every ``every``-th sample of the trajectory.

    Args:
        model: the neural ODE.
        data: the trajectory.
        batch_time: samples per window.
        every: stride between window starts.

    Returns:
        The mean absolute error over all windows and samples.
    """
    n = data.t.shape[0]
    starts = torch.arange(0, n - batch_time + 1, every)
    idx = starts[:, None] + torch.arange(batch_time)[None, :]
    with torch.no_grad():
        out = model(data.y[starts], data.t[:batch_time] - data.t[0])
    return float((out.y - data.y[idx]).abs().mean())


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        model: the trained neural ODE.
        data: the trajectory it was trained on.
        losses: the minibatch loss of every step (before that step's update).
        nfe: the forward NFE of every step (the largest over the minibatch).
        steps_min: per step, the fewest accepted steps any window of the minibatch took.
        steps_max: per step, the most accepted steps any window of the minibatch took.
        seconds: wall-clock time of the training loop.
    """

    model: NeuralODE
    data: SpiralData
    losses: list[float]
    nfe: list[int]
    steps_min: list[int]
    steps_max: list[int]
    seconds: float


def train(
    steps: int = 300,
    *,
    batch_size: int = 128,
    batch_time: int = 10,
    lr: float = 1e-3,
    seed: int = 0,
    sensealg: AbstractSensitivityAlgorithm | None = None,
    dtype: torch.dtype = torch.float32,
    data: SpiralData | None = None,
    model: NeuralODE | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train the neural ODE on random windows of the spiral with Adam and an L1 loss.

    Args:
        steps: optimizer steps.
        batch_size: windows per minibatch.
        batch_time: samples per window.
        lr: Adam's learning rate.
        seed: seeds the model's initialization and the window draws.
        sensealg: how gradients are computed (default ``DirectBackprop()``).
        dtype: floating dtype of data and model.
        data: the trajectory (default: :func:`make_data` in ``dtype``).
        model: a model to train further (default: a fresh :func:`make_model`).
        progress: show a tqdm progress bar with the loss and the NFE.

    Returns:
        The trained model and the loss history (see :class:`TrainResult`).

    Raises:
        ValueError: if ``steps`` is negative or ``batch_time < 2``.
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if batch_time < 2:
        raise ValueError(f"batch_time must be >= 2, got {batch_time}")
    if data is None:
        data = make_data(dtype=dtype)
    if model is None:
        torch.manual_seed(seed)
        model = make_model(sensealg, dtype)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    from tqdm.auto import tqdm

    losses: list[float] = []
    nfes: list[int] = []
    steps_min: list[int] = []
    steps_max: list[int] = []
    start = time.perf_counter()
    with tqdm(total=steps, desc="training", disable=not progress, leave=True) as bar:
        for _ in range(steps):
            y0, t, target = get_batch(data, batch_size, batch_time, generator)
            out = model(y0, t)
            loss = (out.y - target).abs().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            naccept = out.sol.stats.naccept
            losses.append(float(loss.detach()))
            nfes.append(out.nfe)
            steps_min.append(int(naccept.min()))
            steps_max.append(int(naccept.max()))
            bar.set_postfix(
                loss=f"{losses[-1]:.4f}", nfe=nfes[-1], steps=f"{steps_min[-1]}-{steps_max[-1]}"
            )
            bar.update()
    return TrainResult(
        model=model,
        data=data,
        losses=losses,
        nfe=nfes,
        steps_min=steps_min,
        steps_max=steps_max,
        seconds=time.perf_counter() - start,
    )


# --------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class Evaluation:
    """The learned model integrated from ``y0`` over the whole span.

    Attributes:
        y: the predicted states at the data's times, ``(N, 2)``.
        mae: mean absolute error against the true trajectory.
        max_error: largest absolute error of any component at any time.
        nfe: right-hand-side evaluations of the solve.
        naccept: accepted steps of the solve.
        retcode: the solve's return code.
    """

    y: Tensor
    mae: float
    max_error: float
    nfe: int
    naccept: int
    retcode: ReturnCode


def evaluate(model: NeuralODE, data: SpiralData) -> Evaluation:
    """Integrate the model from ``data.y0`` over all of ``data.t`` and compare with the truth.

    Args:
        model: the neural ODE.
        data: the trajectory.

    Returns:
        The prediction and its errors.
    """
    with torch.no_grad():
        out = model(data.y0, data.t)
    err = (out.y - data.y).abs()
    retcode = out.sol.retcode
    assert isinstance(retcode, ReturnCode)
    return Evaluation(
        y=out.y,
        mae=float(err.mean()),
        max_error=float(err.max()),
        nfe=int(out.sol.stats.nf),
        naccept=int(out.sol.stats.naccept),
        retcode=retcode,
    )


def plot(data: SpiralData, evaluation: Evaluation, losses: Sequence[float], out: Path) -> bool:
    """Draw the true and learned trajectories and the loss curve into ``out`` (PNG).

    Uses matplotlib's Agg backend; the parent folder of ``out`` is created.

    Args:
        data: the true trajectory.
        evaluation: the learned trajectory.
        losses: the training loss per step.
        out: the file to write.

    Returns:
        ``True`` if the figure was written, ``False`` if matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(
            "matplotlib is not installed, so no figure was drawn; "
            "install it with `pip install 'hybrideq[plot]'`"
        )
        return False

    y_true = data.y.detach().double().cpu().numpy()
    y_pred = evaluation.y.detach().double().cpu().numpy()
    t = data.t.detach().double().cpu().numpy()
    fig, (ax_phase, ax_time, ax_loss) = plt.subplots(1, 3, figsize=(15, 4.6))

    ax_phase.plot(y_true[:, 0], y_true[:, 1], color="tab:green", lw=2.0, label="true")
    ax_phase.plot(y_pred[:, 0], y_pred[:, 1], "--", color="tab:blue", lw=1.4, label="learned")
    ax_phase.plot(y_true[0, 0], y_true[0, 1], "ko", ms=5, label="$y_0$")
    ax_phase.set(xlabel="$y_1$", ylabel="$y_2$", title="phase space")
    ax_phase.set_aspect("equal", adjustable="datalim")
    ax_phase.legend(loc="lower left", fontsize=8)

    colors = (("tab:green", "tab:blue"), ("tab:olive", "tab:purple"))
    for i, (c_true, c_pred) in enumerate(colors):
        ax_time.plot(t, y_true[:, i], color=c_true, lw=2.0, label=f"$y_{i + 1}$ true")
        ax_time.plot(t, y_pred[:, i], "--", color=c_pred, lw=1.2, label=f"$y_{i + 1}$ learned")
    ax_time.set(
        xlabel="t",
        ylabel="state",
        title=f"trajectory (mean |error| {evaluation.mae:.3f}, NFE {evaluation.nfe})",
    )
    ax_time.legend(loc="upper right", fontsize=8)

    if losses:
        steps = range(1, len(losses) + 1)
        ax_loss.semilogy(steps, losses, color="tab:gray", lw=0.8, alpha=0.7, label="minibatch")
        window = max(1, min(20, len(losses) // 10))
        if window > 1:
            kernel = torch.ones(window, dtype=torch.float64) / window
            smooth = torch.nn.functional.conv1d(
                torch.tensor(losses, dtype=torch.float64)[None, None], kernel[None, None]
            )[0, 0]
            ax_loss.semilogy(
                range(window, len(losses) + 1),
                smooth.tolist(),
                color="tab:red",
                lw=1.6,
                label=f"mean of {window}",
            )
        ax_loss.legend(loc="upper right", fontsize=8)
    ax_loss.set(xlabel="step", ylabel="L1 loss", title="training loss")

    fig.suptitle("hybrideq demo: neural ODE fit of the cubic spiral dy/dt = (y³) A")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return True


# --------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    """The ``hybrideq demo`` argument parser.

    Returns:
        The parser.
    """
    parser = argparse.ArgumentParser(
        prog="hybrideq demo",
        description="Train a small neural ODE on a cubic spiral and plot the fit.",
    )
    parser.add_argument("--steps", type=int, default=300, help="training steps (default 300)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("out/spiral_demo.png"),
        help="where to write the figure (default out/spiral_demo.png)",
    )
    parser.add_argument("--no-plot", action="store_true", help="do not draw the figure")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads while the demo runs (default 1: the model is so small that "
        "more threads only add overhead)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the demo: make the data, train, evaluate, print the fit and draw the figure.

    Args:
        argv: the arguments after ``demo``; ``None`` reads ``sys.argv[1:]``.

    Returns:
        0 if the learned model integrates the whole span successfully, 1 otherwise.

    Raises:
        SystemExit: for ``--help`` and for invalid arguments (argparse's convention, status 2).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.steps < 0:
        parser.error(f"--steps must be >= 0, got {args.steps}")
    threads = torch.get_num_threads()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        return _run(args)
    finally:
        torch.set_num_threads(threads)


def _run(args: argparse.Namespace) -> int:
    """The body of :func:`main`, with torch's thread count already set."""
    start = time.perf_counter()
    dtype = torch.float32
    batch_size, batch_time = 128, 10
    data = make_data(dtype=dtype)
    print("hybrideq demo: a neural ODE learns the cubic spiral dy/dt = (y**3) @ A")
    print(
        f"  data    {data.t.shape[0]} points on [0, {float(data.t[-1]):g}] from y0 = (2, 0), "
        f"Tsit5 rtol=1e-7 atol=1e-9 (NFE {data.nfe})"
    )
    torch.manual_seed(args.seed)
    model = make_model(DirectBackprop(), dtype)
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"  model   Linear(2,50)-Tanh-Linear(50,2) on y**3 ({n_params} parameters, "
        f"{str(dtype).removeprefix('torch.')}), Tsit5 rtol={MODEL_RTOL:g} atol={MODEL_ATOL:g}, "
        "DirectBackprop"
    )
    print(
        f"  train   {args.steps} Adam steps (lr 1e-3), minibatches of {batch_size} random "
        f"windows x {batch_time} points, L1 loss"
    )
    before = window_loss(model, data, batch_time)
    result = train(
        args.steps,
        batch_size=batch_size,
        batch_time=batch_time,
        seed=args.seed,
        data=data,
        model=model,
    )
    after = window_loss(model, data, batch_time)
    ev = evaluate(model, data)

    print(f"  trained in {result.seconds:.1f} s")
    print(f"  window loss (L1, fixed windows)  before {before:.4f}   after {after:.4f}")
    if result.losses:
        tail = result.losses[-min(20, len(result.losses)) :]
        print(
            f"  final minibatch loss             {result.losses[-1]:.4f} "
            f"(mean of last {len(tail)}: {sum(tail) / len(tail):.4f})"
        )
        print(
            f"  per-window accepted steps, last minibatch: "
            f"{result.steps_min[-1]}-{result.steps_max[-1]} "
            f"(forward NFE {result.nfe[-1]})"
        )
    print(
        f"  evaluation from y0 over [0, {float(data.t[-1]):g}]: mean |error| {ev.mae:.4f}, "
        f"max |error| {ev.max_error:.4f}, NFE {ev.nfe}, {ev.naccept} steps, {ev.retcode.name}"
    )
    if not args.no_plot and plot(data, ev, result.losses, args.out):
        print(f"  figure  {args.out}")
    print(f"  total time {time.perf_counter() - start:.1f} s")
    ok = ev.retcode.successful and math.isfinite(ev.mae)
    if not ok:
        print("the learned model could not be integrated over the whole span")
    return 0 if ok else 1
