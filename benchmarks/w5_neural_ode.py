"""W5 (BENCHMARKS.md): neural ODE training on the torchdiffeq spiral, float32.

Data: the classic torchdiffeq ``ode_demo.py`` spiral ``dy/dt = (y**3) @ A`` with
A = [[-0.1, 2.0], [-2.0, -0.1]], y0 = [2, 0], t ∈ [0, 25], 1000 points (computed once with
scipy DOP853 at rtol = 1e-10). Each training step takes a minibatch of 256 random windows
of ``batch_time = 10`` consecutive points (y0: (256, 2), shared times t[:10]); the windows
are drawn once with a fixed seed, so every contender sees the same batches.

Model: ``Linear(2, 50) → Tanh → Linear(50, 2)`` applied to ``y**3`` (as in ode_demo),
the same initial weights for every contender; L1 loss, Adam(lr = 1e-3).

Contenders: torchdiffeq odeint / odeint_adjoint (dopri5), torchode AutoDiffAdjoint(Tsit5),
diffrax Tsit5 + RecursiveCheckpointAdjoint (equinox MLP, jitted step; compile time apart),
hybrideq NeuralODE(Tsit5) with DirectBackprop / BacksolveAdjoint / InterpolatingAdjoint.

Reported: time per training step (median after warm-up), ratio vs torchdiffeq odeint,
NFE per forward solve (average; calls of the network on the whole batch), NFE of the
backward pass, final training loss, a test loss (the whole trajectory from y0 = [2, 0]
with the trained weights, solved by scipy at rtol = 1e-8), and the solver overhead

    overhead = total_time / (NFE_total × t_eval) − 1

with t_eval one forward + backward of the network at batch 256 (measured apart, and
sampled again between training rounds), NFE_total the network evaluations of forward and
backward passes. It is computed as median step time / (mean NFE per step × t_eval) − 1,
which equals the formula on a quiet machine and ignores steps slowed by other processes.

The contenders train side by side, round robin (step i of each, then step i + 1), so a
change of the machine's load hits all of them alike.

Run from the repository root::

    python benchmarks/w5_neural_ode.py            # full (500 steps)
    python benchmarks/w5_neural_ode.py --quick    # 30 steps
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import _common as C  # first: pins the thread count before torch/numpy/jax load
import numpy as np
import torch
from torch import nn

A_TRUE = np.array([[-0.1, 2.0], [-2.0, -0.1]])
Y0_TRUE = np.array([2.0, 0.0])
DATA_SIZE = 1000
T_END = 25.0
BATCH_TIME = 10
BATCH_SIZE = 256
HIDDEN = 50
LR = 1e-3
FULL_STEPS = 500
QUICK_STEPS = 30
WARMUP_STEPS = 5

COLUMNS = [
    ("contender", "contender"),
    ("step_ms", "ms/step"),
    ("ratio", "× torchdiffeq"),
    ("nfe_fwd", "NFE fwd"),
    ("nfe_bwd", "NFE bwd"),
    ("overhead", "overhead"),
    ("final_loss", "final loss"),
    ("test_loss", "test loss"),
    ("compile_s", "compile [s]"),
]


# --------------------------------------------------------------------------- data


@dataclass
class Data:
    t: np.ndarray  # (1000,) float64
    y: np.ndarray  # (1000, 2) float64
    starts: np.ndarray  # (steps, 256) window starts

    def batch_np(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s = self.starts[i]
        y0 = self.y[s].astype(np.float32)
        t = self.t[:BATCH_TIME].astype(np.float32)
        yb = np.stack([self.y[s + k] for k in range(BATCH_TIME)], 1).astype(np.float32)
        return y0, t, yb  # (256, 2), (10,), (256, 10, 2)


def make_data(steps: int, seed: int) -> Data:
    from scipy.integrate import solve_ivp

    t = np.linspace(0.0, T_END, DATA_SIZE)
    sol = solve_ivp(
        lambda _t, y: (y**3) @ A_TRUE,
        (0.0, T_END),
        Y0_TRUE,
        method="DOP853",
        t_eval=t,
        rtol=1e-10,
        atol=1e-12,
    )
    assert sol.success
    rng = np.random.default_rng(seed)
    starts = np.stack(
        [rng.choice(DATA_SIZE - BATCH_TIME, BATCH_SIZE, replace=False) for _ in range(steps)]
    )
    return Data(t, sol.y.T.copy(), starts)


# --------------------------------------------------------------------------- the network


class ODEFunc(nn.Module):
    """ode_demo's field ``net(y**3)``; counts its calls (forward evaluations)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, HIDDEN), nn.Tanh(), nn.Linear(HIDDEN, 2))
        self.calls = 0

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.net(y**3)


def initial_func(seed: int) -> ODEFunc:
    torch.manual_seed(seed)
    f = ODEFunc()
    for m in f.net.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, mean=0.0, std=0.1)
            nn.init.constant_(m.bias, val=0.0)
    return f


def weights_np(f: ODEFunc) -> list[np.ndarray]:
    l1, l2 = f.net[0], f.net[2]
    return [x.detach().double().numpy().copy() for x in (l1.weight, l1.bias, l2.weight, l2.bias)]


def test_loss(w: list[np.ndarray], data: Data) -> float:
    """L1 error of the trained model over the whole trajectory (tight scipy solve)."""
    from scipy.integrate import solve_ivp

    w1, b1, w2, b2 = w

    def f(_t: float, y: np.ndarray) -> np.ndarray:
        return np.tanh((y**3) @ w1.T + b1) @ w2.T + b2

    sol = solve_ivp(f, (0.0, T_END), Y0_TRUE, method="DOP853", t_eval=data.t, rtol=1e-8, atol=1e-10)
    if not sol.success or sol.y.shape[1] != len(data.t):
        return float("nan")
    return float(np.mean(np.abs(sol.y.T - data.y)))


# --------------------------------------------------------------------------- t_eval


_TE_NET = None


def t_eval_torch(n: int = 1000, warmup: int = 50) -> float:
    """Median time of one forward + backward of the network at batch 256 (torch)."""
    global _TE_NET
    if _TE_NET is None:
        _TE_NET = initial_func(0)
    f = _TE_NET
    y = torch.randn(BATCH_SIZE, 2, requires_grad=True)
    times = []
    for i in range(n + warmup):
        t0 = time.perf_counter()
        out = f.net(y**3)
        out.backward(torch.ones_like(out))
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def t_eval_jax(n: int = 1000) -> float:
    """One forward + backward of the equinox network at batch 256, inside one jit.

    Timed as a ``lax.scan`` of ``n`` evaluations so that Python dispatch (which the
    solver's jitted loop does not pay per evaluation) is not counted.
    """
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    model = to_equinox(initial_func(0))
    params, static = eqx.partition(model, eqx.is_inexact_array)
    y = jnp.asarray(np.random.default_rng(0).standard_normal((BATCH_SIZE, 2)), jnp.float32)

    def one(carry: Any, _: Any) -> tuple[Any, None]:
        p, yy = carry

        def f(p: Any, yy: Any) -> Any:
            m = eqx.combine(p, static)
            return jnp.sum(jax.vmap(m)(yy**3))

        gp, gy = jax.grad(f, argnums=(0, 1))(p, yy)
        # Feed the result back (tiny) so that XLA cannot hoist the work out of the loop.
        p = jax.tree_util.tree_map(lambda a, g: a + 1e-12 * g, p, gp)
        return (p, yy + 1e-12 * gy), None

    @jax.jit
    def run(p: Any, yy: Any) -> Any:
        return jax.lax.scan(one, (p, yy), None, length=n)[0]

    jax.block_until_ready(run(params, y))
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        jax.block_until_ready(run(params, y))
        times.append((time.perf_counter() - t0) / n)
    return statistics.median(times)


# --------------------------------------------------------------------------- torch contenders


@dataclass
class Trace:
    """What one contender's training recorded, filled in step by step."""

    times: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    nfe_fwd: list[int] = field(default_factory=list)
    nfe_bwd: list[int] = field(default_factory=list)
    weights: list[np.ndarray] = field(default_factory=list)
    compile_s: float | None = None


def train_torch(
    forward: Callable[[ODEFunc, torch.Tensor, torch.Tensor], torch.Tensor],
    func: ODEFunc,
    data: Data,
    steps: int,
    tr: Trace,
) -> Iterator[None]:
    """Adam training loop, one step per ``next``; fills ``tr``.

    ``forward(func, y0, t)`` returns the prediction (256, 10, 2).
    """
    opt = torch.optim.Adam(func.parameters(), lr=LR)
    for i in range(steps):
        y0n, tn, ybn = data.batch_np(i)
        y0, t, yb = torch.from_numpy(y0n), torch.from_numpy(tn), torch.from_numpy(ybn)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        func.calls = 0
        pred = forward(func, y0, t)
        n_fwd = func.calls
        loss = (pred - yb).abs().mean()
        loss.backward()
        n_bwd = func.calls - n_fwd
        opt.step()
        tr.times.append(time.perf_counter() - t0)
        tr.losses.append(loss.item())
        tr.nfe_fwd.append(n_fwd)
        tr.nfe_bwd.append(n_bwd)
        yield
    tr.weights = weights_np(func)


def fwd_torchdiffeq(rtol: float, atol: float, adjoint: bool) -> Callable[..., torch.Tensor]:
    import torchdiffeq

    odeint = torchdiffeq.odeint_adjoint if adjoint else torchdiffeq.odeint

    def forward(func: ODEFunc, y0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        # The batch is one system with one shared step size; (10, 256, 2) → (256, 10, 2).
        return odeint(func, y0, t, rtol=rtol, atol=atol, method="dopri5").transpose(0, 1)

    return forward


def fwd_torchode(rtol: float, atol: float) -> Callable[..., torch.Tensor]:
    import torchode as to

    cache: dict[int, Any] = {}

    def forward(func: ODEFunc, y0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if id(func) not in cache:
            term = to.ODETerm(func)
            step = to.Tsit5(term=term)
            ctrl = to.IntegralController(atol=atol, rtol=rtol, term=term)
            cache[id(func)] = to.AutoDiffAdjoint(step, ctrl)
        solver = cache[id(func)]
        b = y0.shape[0]
        prob = to.InitialValueProblem(
            y0=y0, t_start=t[0].expand(b), t_end=t[-1].expand(b), t_eval=t.expand(b, -1)
        )
        return solver.solve(prob).ys

    return forward


def fwd_hybrideq(
    rtol: float, atol: float, sensealg: str, stepping: str = "per_sample"
) -> Callable[..., torch.Tensor]:
    hq = C.import_hybrideq()
    cache: dict[int, Any] = {}

    def forward(func: ODEFunc, y0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if id(func) not in cache:
            cache[id(func)] = hq.nn.NeuralODE(
                func,
                solver=hq.Tsit5(),
                sensealg=getattr(hq, sensealg)(),
                rtol=rtol,
                atol=atol,
                stepping=stepping,
            )
        out = cache[id(func)](y0, t)
        if not out.sol.success:
            raise RuntimeError(f"hybrideq solve failed: {out.sol.retcode}")
        return out.y

    return forward


# --------------------------------------------------------------------------- diffrax


def to_equinox(func: ODEFunc) -> Any:
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    mlp = eqx.nn.MLP(
        2, 2, HIDDEN, 1, activation=jnp.tanh, dtype=jnp.float32, key=jax.random.PRNGKey(0)
    )
    w = [jnp.asarray(x, dtype=jnp.float32) for x in weights_np(func)]
    return eqx.tree_at(
        lambda m: (m.layers[0].weight, m.layers[0].bias, m.layers[1].weight, m.layers[1].bias),
        mlp,
        tuple(w),
    )


def train_diffrax(
    func: ODEFunc, data: Data, steps: int, rtol: float, atol: float, tr: Trace
) -> Iterator[None]:
    """The same training in JAX (jitted step), one step per ``next``; fills ``tr``."""
    import diffrax
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import optax

    class Field(eqx.Module):
        mlp: eqx.nn.MLP

        def __call__(self, t: Any, y: Any, args: Any) -> Any:
            return self.mlp(y**3)

    model = Field(to_equinox(func))
    ctrl = diffrax.PIDController(rtol=rtol, atol=atol)

    def solve_one(m: Field, y0: Any, ts: Any) -> tuple[Any, Any]:
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(m),
            diffrax.Tsit5(),
            t0=ts[0],
            t1=ts[-1],
            dt0=None,
            y0=y0,
            saveat=diffrax.SaveAt(ts=ts),
            stepsize_controller=ctrl,
            adjoint=diffrax.RecursiveCheckpointAdjoint(),
        )
        return sol.ys, sol.stats["num_steps"]

    optim = optax.adam(LR)
    opt_state = optim.init(eqx.filter(model, eqx.is_inexact_array))

    @eqx.filter_jit
    def step(m: Field, opt_state: Any, y0: Any, ts: Any, yb: Any) -> Any:
        def loss_fn(m: Field) -> Any:
            ys, nsteps = jax.vmap(solve_one, in_axes=(None, 0, None))(m, y0, ts)
            return jnp.mean(jnp.abs(ys - yb)), nsteps

        (loss, nsteps), grads = eqx.filter_value_and_grad(loss_fn, has_aux=True)(m)
        updates, opt_state = optim.update(grads, opt_state, eqx.filter(m, eqx.is_inexact_array))
        m = eqx.apply_updates(m, updates)
        return loss, nsteps, m, opt_state

    first = None
    for i in range(steps):
        y0n, tn, ybn = data.batch_np(i)
        y0, ts, yb = jnp.asarray(y0n), jnp.asarray(tn), jnp.asarray(ybn)
        t0 = time.perf_counter()
        loss, nsteps, model, opt_state = step(model, opt_state, y0, ts, yb)
        loss = float(jax.block_until_ready(loss))
        dt = time.perf_counter() - t0
        if first is None:
            first = dt
        tr.times.append(dt)
        tr.losses.append(loss)
        # The vmapped while loop runs until the slowest sample is done: 6 new stages a
        # step (Tsit5 is FSAL) plus f(t0) and one evaluation for the initial step size.
        tr.nfe_fwd.append(6 * int(np.max(np.asarray(nsteps))) + 2)
        tr.nfe_bwd.append(0)
        yield
    lin = model.mlp.layers
    tr.weights = [
        np.asarray(x, dtype=np.float64)
        for x in (lin[0].weight, lin[0].bias, lin[1].weight, lin[1].bias)
    ]
    if first is not None and len(tr.times) > 1:
        tr.compile_s = first - statistics.median(tr.times[1:])


# --------------------------------------------------------------------------- driver


def plot(rows: list[dict[str, Any]], traces: dict[str, Trace], path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    for name, tr in traces.items():
        ax1.plot(tr.losses, label=name, lw=1)
    ax1.set_xlabel("training step")
    ax1.set_ylabel("L1 training loss (minibatch)")
    ax1.set_yscale("log")
    ax1.legend(fontsize=8)
    ax1.set_title("loss curves (same batches and initial weights)")
    done = [r for r in rows if not r.get("status") and r.get("step_ms")]
    names = [r["contender"] for r in done]
    colors = ["tab:red" if n.startswith("hybrideq") else "tab:blue" for n in names]
    ax2.barh(names, [r["step_ms"] for r in done], color=colors)
    ax2.invert_yaxis()
    ax2.set_xscale("log")
    for i, r in enumerate(done):
        ax2.text(r["step_ms"], i, f"  overhead {r['overhead']:.2f}", va="center", fontsize=8)
    ax2.set_xlabel("median time per training step [ms] (log)")
    ax2.set_title("time per step (label: solver overhead)")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot written to {path}")


def main() -> None:
    p = C.make_parser(__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=None, help=f"training steps ({FULL_STEPS})")
    p.add_argument("--rtol", type=float, default=1e-5)
    p.add_argument("--atol", type=float, default=1e-6)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    C.setup()
    meta = C.machine_info()
    steps = args.steps or (QUICK_STEPS if args.quick else FULL_STEPS)
    warm = min(WARMUP_STEPS, steps - 1)
    rtol, atol = args.rtol, args.atol
    title = (
        f"W5 spiral neural ODE, {steps} Adam steps, batch {BATCH_SIZE}×{BATCH_TIME}, "
        f"rtol={rtol:g} atol={atol:g}, float32"
    )
    C.print_header(title, args, meta)
    data = make_data(steps, args.seed)
    te_torch = t_eval_torch()
    have_jax = all(C.available(m) for m in ("jax", "equinox", "diffrax", "optax"))
    te_jax = t_eval_jax() if have_jax else None
    print(
        f"   t_eval (forward + backward, batch {BATCH_SIZE}): torch {1e6 * te_torch:.1f} µs"
        + (f", jax (inside jit) {1e6 * te_jax:.1f} µs" if te_jax else "")
    )
    print(f"   step time: median over steps {warm + 1}..{steps} (the first {warm} are warm-up)")

    def torch_job(
        make: Callable[[], Callable[..., torch.Tensor]],
    ) -> Callable[[ODEFunc, Trace], Iterator[None]]:
        return lambda func, tr: train_torch(make(), func, data, steps, tr)

    jobs: list[tuple[str, tuple[str, ...], Callable[[ODEFunc, Trace], Iterator[None]]]] = [
        (
            "torchdiffeq odeint dopri5",
            ("torchdiffeq",),
            torch_job(lambda: fwd_torchdiffeq(rtol, atol, False)),
        ),
        (
            "torchdiffeq odeint_adjoint dopri5",
            ("torchdiffeq",),
            torch_job(lambda: fwd_torchdiffeq(rtol, atol, True)),
        ),
        ("torchode Tsit5 AutoDiff", ("torchode",), torch_job(lambda: fwd_torchode(rtol, atol))),
        (
            "diffrax Tsit5 RecursiveCheckpoint (jit)",
            ("jax", "diffrax", "equinox", "optax"),
            lambda func, tr: train_diffrax(func, data, steps, rtol, atol, tr),
        ),
        (
            "hybrideq Tsit5 DirectBackprop",
            (),
            torch_job(lambda: fwd_hybrideq(rtol, atol, "DirectBackprop")),
        ),
        (
            "hybrideq Tsit5 DirectBackprop joint",
            (),
            torch_job(lambda: fwd_hybrideq(rtol, atol, "DirectBackprop", "joint")),
        ),
        (
            "hybrideq Tsit5 BacksolveAdjoint",
            (),
            torch_job(lambda: fwd_hybrideq(rtol, atol, "BacksolveAdjoint")),
        ),
        (
            "hybrideq Tsit5 InterpolatingAdjoint",
            (),
            torch_job(lambda: fwd_hybrideq(rtol, atol, "InterpolatingAdjoint")),
        ),
    ]
    init = initial_func(args.seed)
    rows: list[dict[str, Any]] = []
    traces: dict[str, Trace] = {}
    running: dict[str, Iterator[None]] = {}
    failed: dict[str, str] = {}
    for name, needs, job in jobs:
        if not C.selected(name, args.only):
            continue
        if any(not C.available(m) for m in needs):
            rows.append(C.missing_row(name, *needs))
            print(f"   {name}: {rows[-1]['status']}")
            continue
        traces[name] = Trace()
        running[name] = job(copy.deepcopy(init), traces[name])
        rows.append({"contender": name})

    # Round robin: step i of every contender, then step i + 1 ..., so that a change of
    # the machine's load during the run hits every contender alike. t_eval is sampled
    # between rounds for the same reason.
    print(f"   training {len(running)} contenders side by side ...", flush=True)
    wall: dict[str, float] = dict.fromkeys(running, 0.0)
    te_samples = [te_torch]
    t_report = time.perf_counter()
    for i in range(steps):
        for name in list(running):
            t0 = time.perf_counter()
            try:
                next(running[name])
            except StopIteration:
                del running[name]
            except Exception as e:  # a failing contender is a row, not a crash
                failed[name] = f"failed at step {i}: {type(e).__name__}: {e}"
                print(f"   {name}: {failed[name]}", flush=True)
                del running[name]
            wall[name] += time.perf_counter() - t0
        te_samples.append(t_eval_torch(50, warmup=5))
        if time.perf_counter() - t_report > 30 or i == steps - 1:
            t_report = time.perf_counter()
            print(f"     step {i + 1}/{steps}", flush=True)
    for it in running.values():  # finish (records the trained weights)
        for _ in it:
            pass
    te_torch = statistics.median(te_samples)
    if have_jax:
        te_jax = statistics.median([te_jax, t_eval_jax()]) if te_jax else None

    for row in rows:
        name = row["contender"]
        if name in failed:
            row["status"] = failed[name]
        if row.get("status"):
            continue
        tr = traces[name]
        timed = slice(warm, None)
        times = tr.times[timed]
        nf = np.asarray(tr.nfe_fwd[timed])
        nb = np.asarray(tr.nfe_bwd[timed])
        is_jax = name.startswith("diffrax")
        te = te_jax if is_jax else te_torch
        assert te is not None
        nfe_total = int(nf.sum() + nb.sum())
        row.update(
            step_ms=1e3 * statistics.median(times),
            mean_step_ms=1e3 * statistics.fmean(times),
            nfe_fwd=float(nf.mean()),
            nfe_bwd=None if is_jax else float(nb.mean()),
            # Robust to load spikes: median step time over mean NFE per step. The plain
            # total_time / (NFE_total × t_eval) − 1 (mean-based) is kept in the JSON.
            overhead=statistics.median(times) / (nfe_total / len(times) * te) - 1.0,
            overhead_mean=sum(times) / (nfe_total * te) - 1.0,
            t_eval_us=1e6 * te,
            final_loss=float(np.mean(tr.losses[-10:])),
            test_loss=test_loss(tr.weights, data),
            compile_s=tr.compile_s,
            wall_s=wall[name],
            losses=tr.losses,
            step_times_ms=[1e3 * x for x in tr.times],
            nfe_fwd_per_step=tr.nfe_fwd,
            nfe_bwd_per_step=tr.nfe_bwd,
        )
        if is_jax:
            row["overhead_vs_torch_t_eval"] = (
                statistics.median(times) / (nfe_total / len(times) * te_torch) - 1.0
            )

    base = next(
        (r for r in rows if r["contender"] == "torchdiffeq odeint dopri5" and r.get("step_ms")),
        None,
    )
    for r in rows:
        if base is not None and r.get("step_ms"):
            r["ratio"] = r["step_ms"] / base["step_ms"]
    C.print_table(title, rows, COLUMNS)
    loss0 = test_loss(weights_np(init), data)
    print("Notes:")
    print(
        "  - ms/step: median wall time of one training step (zero_grad, solve, loss, "
        "backward, Adam) after warm-up; '× torchdiffeq' = ms/step / torchdiffeq odeint's."
    )
    print(
        "  - NFE fwd / bwd: calls of the network on the whole batch in the forward solve / "
        "in loss.backward() (adjoint solves), averaged over the timed steps. torchdiffeq "
        "solves the batch as one system (one shared step size); torchode, diffrax (vmap) "
        "and hybrideq (default) step each sample on its own, so their NFE is that of the "
        "slowest sample; 'hybrideq … joint' uses solve(..., stepping='joint'): one step for "
        "the batch with the error norm over the batch, like torchdiffeq."
    )
    print(
        "  - overhead = time per step / ((NFE fwd + NFE bwd) × t_eval) − 1 (median time per "
        "step, mean NFE per step; the total-time form is 'overhead_mean' in the JSON), "
        "t_eval = forward + "
        f"backward of the network at batch {BATCH_SIZE}: torch {1e6 * te_torch:.1f} µs"
        + (f"; for diffrax its own jitted JAX network, {1e6 * te_jax:.1f} µs" if te_jax else "")
        + ". Forward evaluations of an adjoint's forward solve run without a graph (cheaper "
        "than t_eval), so adjoint overheads are slightly understated."
    )
    print(
        "  - diffrax: NFE = 6·max(num_steps) + 2 (diffrax reports steps, not NFE); its "
        "backward (RecursiveCheckpointAdjoint) is counted only through time (NFE bwd '—'); "
        "compile = first step − median step."
    )
    print(
        "  - final loss: mean training loss of the last 10 steps; test loss: mean |y − y_true| "
        "over the whole trajectory from y0 = [2, 0] with the trained weights (scipy DOP853, "
        f"rtol 1e-8); the untrained model's test loss is {loss0:.4f}."
    )
    paths = C.write_results(
        "w5_neural_ode_quick" if args.quick else "w5_neural_ode",
        rows,
        {
            **meta,
            "steps": steps,
            "warmup_steps": warm,
            "rtol": rtol,
            "atol": atol,
            "batch_size": BATCH_SIZE,
            "batch_time": BATCH_TIME,
            "t_eval_torch_us": 1e6 * te_torch,
            "t_eval_jax_us": None if te_jax is None else 1e6 * te_jax,
            "untrained_test_loss": loss0,
        },
        json_path=args.json,
    )
    print("results written to " + ", ".join(str(p) for p in paths))
    if args.plot:
        plot(rows, traces, args.plot, title)


if __name__ == "__main__":
    main()
