"""Shared helpers of the stiff workloads W2, W3 and W4 (not a workload itself).

Each stiff test problem is written **once**, against an array namespace, and evaluated
with NumPy (for scipy), JAX (for diffrax) and torch (for hybrideq where
``hybrideq.library`` does not have the problem yet). Robertson and Pollution are
mass-action reaction networks, so their right-hand side and analytic Jacobian come from
the reaction list; HIRES and Van der Pol are written out.

- :data:`PROBLEMS`: the specifications (equations, y0, span, parameters, the IVP test-set
  reference where one is published).
- :func:`load_problem`: the ``hybrideq.library`` problem when it exists and has the same
  equations (checked at two states), else the local torch definition.
- :func:`reference_for`: ``hybrideq.library.reference(name)`` where it fits, else the
  published test-set values, else scipy Radau at rtol 1e-12.
- :func:`contenders`: scipy (NumPy RHS + analytic Jacobian), diffrax (JAX RHS, jit) and
  the hybrideq solvers this version has; the others become ``not available`` rows.
- :func:`run_study`, :func:`rows_of`, :func:`equal_error_rows`: the work-precision run
  (:func:`hybrideq.workprecision`) and its tables.
"""

from __future__ import annotations

import importlib
import inspect
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import _common as C  # first: pins the thread count before torch/numpy/jax load
import numpy as np

NOT_AVAILABLE = "not available in this version"

# The hybrideq stiff solvers the stiff workloads compare (BENCHMARKS.md W2/W3).
HYBRIDEQ_STIFF = ("Rodas5P", "QNDF", "KenCarp4", "Rosenbrock23", "TRBDF2", "Kvaerno5")
SCIPY_STIFF = ("BDF", "Radau", "LSODA")

REF_RTOL = 1e-12
MAX_STEPS = 100_000  # diffrax's max_steps; hybrideq's default maxiters is the same


# --------------------------------------------------------------------------- backends


@dataclass(frozen=True)
class Backend:
    """What a problem needs from an array library: stack, concatenate, constants."""

    name: str
    stack: Callable[..., Any]
    concat: Callable[..., Any]
    asarray: Callable[[Any], Any]


def numpy_backend() -> Backend:
    return Backend("numpy", np.stack, np.concatenate, lambda x: np.asarray(x, dtype=np.float64))


def jax_backend() -> Backend:
    import jax.numpy as jnp

    return Backend("jax", jnp.stack, jnp.concatenate, lambda x: jnp.asarray(x, dtype=jnp.float64))


def torch_backend(dtype: Any = None, device: Any = None) -> Backend:
    import torch

    dt = dtype or torch.float64
    return Backend(
        "torch",
        torch.stack,
        torch.cat,
        lambda x: torch.as_tensor(np.asarray(x), dtype=dt, device=device),
    )


# --------------------------------------------------------------------------- mass action


@dataclass(frozen=True)
class Network:
    """A mass-action network: reaction ``j`` has rate ``k_j · y[a_j] · y[b_j]``
    (``b_j = -1`` for a first-order reaction) and changes species ``i`` by ``S[i, j]``."""

    a: tuple[int, ...]
    b: tuple[int, ...]
    S: np.ndarray  # (n, m)

    @property
    def n(self) -> int:
        return int(self.S.shape[0])

    def functions(self, be: Backend) -> tuple[Callable[..., Any], Callable[..., Any]]:
        """``f(y, k)`` and ``jac(y, k)`` for states ``(..., n)`` and rate constants ``(..., m)``.

        ``r = k · y[a] · y1[b]`` with ``y1 = [y, 1]`` (index ``n`` is the constant 1), so
        ``f = r Sᵀ`` and ``∂r_j/∂y_l = k_j (δ_{l a_j} y1[b_j] + δ_{l b_j} y[a_j])``.
        """
        n, m = self.n, len(self.a)
        a = np.asarray(self.a)
        b = np.asarray([n if bj < 0 else bj for bj in self.b])
        ea = np.zeros((m, n))
        ea[np.arange(m), a] = 1.0
        eb = np.zeros((m, n))
        for j, bj in enumerate(self.b):
            if bj >= 0:
                eb[j, bj] = 1.0
        St, S, Ea, Eb = (be.asarray(x) for x in (self.S.T, self.S, ea, eb))
        ai, bi = a.tolist(), b.tolist()

        def f(y: Any, k: Any) -> Any:
            y1 = be.concat([y, y[..., :1] * 0 + 1], -1)
            r = k * y1[..., ai] * y1[..., bi]
            return r @ St

        def jac(y: Any, k: Any) -> Any:
            y1 = be.concat([y, y[..., :1] * 0 + 1], -1)
            ya, yb = y1[..., ai], y1[..., bi]
            d = k[..., :, None] * (Ea * yb[..., :, None] + Eb * ya[..., :, None])
            return S @ d

        return f, jac


# Robertson: A → B (k1), 2B → B + C (k2), B + C → A + C (k3).
ROBERTSON_NET = Network(
    a=(0, 1, 1),
    b=(-1, 1, 2),
    S=np.array([[-1.0, 0.0, 1.0], [1.0, -1.0, -1.0], [0.0, 1.0, 0.0]]),
)


def _pollution_network() -> Network:
    """Verwer (1994): 20 species, 25 reactions (IVP test set ``pollu``)."""
    # (reactant a, reactant b or -1), 1-based species as in the test set.
    reactants = [
        (1, 0), (2, 4), (5, 2), (7, 0), (7, 0), (7, 6), (9, 0), (9, 6), (11, 2), (11, 1),
        (13, 0), (10, 2), (14, 0), (1, 6), (3, 0), (4, 0), (4, 0), (16, 0), (16, 0),
        (17, 6), (19, 0), (19, 0), (1, 4), (19, 1), (20, 0),
    ]  # fmt: skip
    # dy_i = Σ_j S[i, j] r_j, from the test set's pollu.f.
    changes: dict[int, list[tuple[int, float]]] = {
        1: [(1, -1), (10, -1), (14, -1), (23, -1), (24, -1), (2, 1), (3, 1), (9, 1), (11, 1), (12, 1), (22, 1), (25, 1)],
        2: [(2, -1), (3, -1), (9, -1), (12, -1), (1, 1), (21, 1)],
        3: [(15, -1), (1, 1), (17, 1), (19, 1), (22, 1)],
        4: [(2, -1), (16, -1), (17, -1), (23, -1), (15, 1)],
        5: [(3, -1), (4, 2), (6, 1), (7, 1), (13, 1), (20, 1)],
        6: [(6, -1), (8, -1), (14, -1), (20, -1), (3, 1), (18, 2)],
        7: [(4, -1), (5, -1), (6, -1), (13, 1)],
        8: [(4, 1), (5, 1), (6, 1), (7, 1)],
        9: [(7, -1), (8, -1)],
        10: [(12, -1), (7, 1), (9, 1)],
        11: [(9, -1), (10, -1), (8, 1), (11, 1)],
        12: [(9, 1)],
        13: [(11, -1), (10, 1)],
        14: [(13, -1), (12, 1)],
        15: [(14, 1)],
        16: [(18, -1), (19, -1), (16, 1)],
        17: [(20, -1)],
        18: [(20, 1)],
        19: [(21, -1), (22, -1), (24, -1), (23, 1), (25, 1)],
        20: [(25, -1), (24, 1)],
    }  # fmt: skip
    S = np.zeros((20, 25))
    for i, terms in changes.items():
        for j, c in terms:
            S[i - 1, j - 1] += c
    return Network(
        a=tuple(r[0] - 1 for r in reactants),
        b=tuple(r[1] - 1 if r[1] else -1 for r in reactants),
        S=S,
    )


POLLUTION_NET = _pollution_network()
POLLUTION_K = (
    0.35, 0.266e2, 0.123e5, 0.86e-3, 0.82e-3, 0.15e5, 0.13e-3, 0.24e5, 0.165e5, 0.9e4,
    0.22e-1, 0.12e5, 0.188e1, 0.163e5, 0.48e7, 0.35e-3, 0.175e-1, 0.1e9, 0.444e12,
    0.124e4, 0.21e1, 0.578e1, 0.474e-1, 0.178e4, 0.312e1,
)  # fmt: skip


# --------------------------------------------------------------------------- HIRES, VdP


def _hires(be: Backend) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """Schäfer's HIRES (IVP test set ``hires``); the f1 coefficient of y2 is 0.43."""

    def f(y: Any, p: Any) -> Any:
        y1, y2, y3, y4, y5, y6, y7, y8 = (y[..., i] for i in range(8))
        r = 280.0 * y6 * y8
        return be.stack(
            [
                -1.71 * y1 + 0.43 * y2 + 8.32 * y3 + 0.0007,
                1.71 * y1 - 8.75 * y2,
                -10.03 * y3 + 0.43 * y4 + 0.035 * y5,
                8.32 * y2 + 1.71 * y3 - 1.12 * y4,
                -1.745 * y5 + 0.43 * y6 + 0.43 * y7,
                -r + 0.69 * y4 + 1.71 * y5 - 0.43 * y6 + 0.69 * y7,
                r - 1.81 * y7,
                -r + 1.81 * y7,
            ],
            -1,
        )

    const = np.zeros((8, 8))
    const[0, :3] = (-1.71, 0.43, 8.32)
    const[1, :2] = (1.71, -8.75)
    const[2, 2:5] = (-10.03, 0.43, 0.035)
    const[3, 1:4] = (8.32, 1.71, -1.12)
    const[4, 4:7] = (-1.745, 0.43, 0.43)
    const[5, 3:7] = (0.69, 1.71, -0.43, 0.69)
    const[6, 6] = -1.81
    const[7, 6] = 1.81
    J0 = be.asarray(const)
    # The ±280·y6·y8 terms of rows 6, 7, 8 (0-based 5, 6, 7): their gradient is
    # 280·(y8 e6 + y6 e8), with sign (−, +, −).
    sign = be.asarray(np.array([0.0, 0, 0, 0, 0, -1, 1, -1]))
    e6 = be.asarray(np.eye(8)[5])
    e8 = be.asarray(np.eye(8)[7])

    def jac(y: Any, p: Any) -> Any:
        y6, y8 = y[..., 5:6], y[..., 7:8]
        grad = 280.0 * (y8 * e6 + y6 * e8)  # (..., 8)
        return J0 + sign[:, None] * grad[..., None, :]

    return f, jac


def _van_der_pol(be: Backend) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """``y1' = y2``, ``y2' = μ((1 − y1²) y2 − y1)`` (the SciMLBenchmarks "scaled" form)."""

    def f(y: Any, p: Any) -> Any:
        y1, y2 = y[..., 0], y[..., 1]
        mu = p[..., 0]
        return be.stack([y2, mu * ((1.0 - y1 * y1) * y2 - y1)], -1)

    def jac(y: Any, p: Any) -> Any:
        y1, y2 = y[..., 0], y[..., 1]
        mu = p[..., 0]
        zero = y1 * 0.0
        row1 = be.stack([zero, zero + 1.0], -1)
        row2 = be.stack([mu * (-2.0 * y1 * y2 - 1.0), mu * (1.0 - y1 * y1)], -1)
        return be.stack([row1, row2], -2)

    return f, jac


# --------------------------------------------------------------------------- problems


@dataclass(frozen=True)
class StiffSpec:
    """A stiff test problem, written once for every array library."""

    name: str  # the hybrideq.library name
    title: str
    y0: tuple[float, ...]
    tspan: tuple[float, float]
    p: tuple[float, ...]
    make: Callable[[Backend], tuple[Callable[..., Any], Callable[..., Any]]]
    published: tuple[float, ...] | None = None
    published_source: str = ""
    library_kwargs: dict[str, Any] = field(default_factory=dict)
    reference_name: str = ""  # the hybrideq.library.reference name (default: name)
    diffrax_dt0: float | None = None  # diffrax's initial step (None: its own choice)

    @property
    def n(self) -> int:
        return len(self.y0)

    def numpy(self) -> tuple[Callable[..., Any], Callable[..., Any]]:
        """scipy's ``f(t, y)`` and ``jac(t, y)``."""
        f, jac = self.make(numpy_backend())
        p = np.asarray(self.p, dtype=np.float64)
        return (lambda t, y: f(y, p)), (lambda t, y: jac(y, p))

    def jax(self) -> Callable[..., Any]:
        """diffrax's ``f(t, y, args)`` with ``args`` the parameters."""
        f, _ = self.make(jax_backend())
        return lambda t, y, args: f(y, args)

    def torch_problem(self, hq: Any, y0: Any = None, p: Any = None, **kw: Any) -> Any:
        """The problem as a ``hybrideq.ODEProblem`` (batched when ``y0`` is ``(N, n)``)."""
        import torch

        f, jac = self.make(torch_backend())
        y0_t = torch.tensor(self.y0, dtype=torch.float64) if y0 is None else y0
        p_t = torch.tensor(self.p, dtype=torch.float64) if p is None else p

        def rhs(t: Any, y: Any, p: Any) -> Any:
            return f(y, p)

        def jacobian(t: Any, y: Any, p: Any) -> Any:
            return jac(y, p)

        return hq.ODEProblem(rhs, y0_t, kw.get("tspan", self.tspan), p_t, jac=jacobian)


def _net(network: Network) -> Callable[[Backend], tuple[Callable[..., Any], Callable[..., Any]]]:
    return lambda be: network.functions(be)


IVP_SOURCE = "IVP test set (Mazzia & Magherini), RADAU5 at rtol = atol = 1.1e-18 (REFERENCES.md §8)"

PROBLEMS: dict[str, StiffSpec] = {
    "robertson": StiffSpec(
        "robertson",
        "Robertson, k = (0.04, 3e7, 1e4), t ∈ [0, 1e5]",
        (1.0, 0.0, 0.0),
        (0.0, 1e5),
        (0.04, 3e7, 1e4),
        _net(ROBERTSON_NET),
    ),
    "hires": StiffSpec(
        "hires",
        "HIRES, t ∈ [0, 321.8122]",
        (1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0057),
        (0.0, 321.8122),
        (),
        _hires,
        published=(
            0.7371312573325668e-3,
            0.1442485726316185e-3,
            0.5888729740967575e-4,
            0.1175651343283149e-2,
            0.2386356198831331e-2,
            0.6238968252742796e-2,
            0.2849998395185769e-2,
            0.2850001604814231e-2,
        ),
        published_source=IVP_SOURCE,
    ),
    "pollution": StiffSpec(
        "pollution",
        "Pollution (Verwer 1994), 20 species, t ∈ [0, 60]",
        tuple(
            {2: 0.2, 4: 0.04, 7: 0.1, 8: 0.3, 9: 0.01, 17: 0.007}.get(i, 0.0) for i in range(1, 21)
        ),
        (0.0, 60.0),
        POLLUTION_K,
        _net(POLLUTION_NET),
        published=(
            0.5646255480022769e-1,
            0.1342484130422339,
            0.4139734331099427e-8,
            0.5523140207484359e-2,
            0.2018977262302196e-6,
            0.1464541863493966e-6,
            0.7784249118997964e-1,
            0.3245075353396018,
            0.7494013383880406e-2,
            0.1622293157301561e-7,
            0.1135863833257075e-7,
            0.2230505975721359e-2,
            0.2087162882798630e-3,
            0.1396921016840158e-4,
            0.8964884856898295e-2,
            0.4352846369330103e-17,
            0.6899219696263405e-2,
            0.1007803037365946e-3,
            0.1772146513969984e-5,
            0.5682943292316392e-4,
        ),
        published_source=IVP_SOURCE,
    ),
    "van_der_pol": StiffSpec(
        "van_der_pol",
        "Van der Pol μ = 1e6 (scaled form y2' = μ((1−y1²)y2 − y1)), t ∈ [0, 6.3]",
        (2.0, 0.0),
        (0.0, 6.3),
        (1e6,),
        _van_der_pol,
        library_kwargs={"mu": 1e6, "form": "scaled"},
        reference_name="van_der_pol_scaled",
        # diffrax's automatic initial step (dt0=None) never gets off the ground here: 0
        # accepted and 1e5 rejected steps at every tolerance. With dt0 = 1e-6 it solves it.
        diffrax_dt0=1e-6,
    ),
}


def _test_states(spec: StiffSpec) -> list[np.ndarray]:
    y0 = np.asarray(spec.y0, dtype=np.float64)
    bump = 0.01 * (1.0 + np.arange(spec.n)) / spec.n * max(1.0, float(np.abs(y0).max()))
    return [y0, y0 + bump]


def load_problem(hq: Any, spec: StiffSpec) -> tuple[Any, str]:
    """The problem for the hybrideq contenders and where it came from.

    ``hybrideq.library.<name>()`` when it exists and its right-hand side and ``y0`` agree
    with this file's definition (the peers integrate this file's definition, so everyone
    must solve the same equations); its span is set to ``spec.tspan``. Otherwise the local
    torch definition (with its analytic Jacobian).
    """
    import torch

    factory = getattr(hq.library, spec.name, None)
    local = spec.torch_problem(hq)
    if not callable(factory):
        return local, f"local definition (hybrideq.library has no {spec.name} yet)"
    try:
        params = inspect.signature(factory).parameters
        kwargs = {k: v for k, v in spec.library_kwargs.items() if k in params}
        prob = factory(**kwargs)
        f_np, _ = spec.numpy()
        y0 = prob.y0.detach().cpu().numpy()
        if y0.shape != (spec.n,) or not np.allclose(y0, spec.y0, rtol=1e-14, atol=0):
            raise ValueError(f"its y0 {y0.tolist()} differs from {list(spec.y0)}")
        for y in _test_states(spec):
            mine = f_np(0.0, y)
            theirs = prob.f(
                torch.tensor(0.0, dtype=prob.dtype), torch.as_tensor(y, dtype=prob.dtype), prob.p
            )
            theirs = theirs.detach().cpu().numpy()
            if not np.allclose(theirs, mine, rtol=1e-10, atol=1e-14 * np.abs(mine).max()):
                raise ValueError("its right-hand side differs from this benchmark's definition")
        t0, t1 = (float(x) for x in prob.tspan)
        note = f"hybrideq.library.{spec.name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
        if (t0, t1) != spec.tspan:
            prob = prob.remake(tspan=spec.tspan)
            note += f" with tspan {spec.tspan} (library default ({t0:g}, {t1:g}))"
        return prob, note
    except Exception as e:
        return local, f"local definition (hybrideq.library.{spec.name}() not used: {e})"


def reference_for(hq: Any, spec: StiffSpec) -> tuple[Any, str]:
    """The reference at ``t_end`` (an object with ``t``, ``y``, ``source``) and a note."""
    t1 = spec.tspan[1]
    lookup = getattr(hq.library, "reference", None)
    if callable(lookup):
        try:
            ref = lookup(spec.reference_name or spec.name)
            t = float(np.asarray(ref.t, dtype=np.float64).reshape(-1)[-1])
            y = np.asarray(ref.y, dtype=np.float64).reshape(-1, spec.n)[-1]
            if abs(t - t1) <= 1e-9 * max(1.0, abs(t1)):
                src = getattr(ref, "source", "hybrideq.library.reference")
                return SimpleNamespace(t=t1, y=y, source=src), "hybrideq.library.reference"
        except Exception:  # no published reference there for this problem
            pass
    if spec.published is not None:
        return SimpleNamespace(t=t1, y=spec.published, source=spec.published_source), "published"
    y, src = cached_radau_reference(spec)
    return SimpleNamespace(t=t1, y=y, source=src), "computed"


def cached_radau_reference(spec: StiffSpec) -> tuple[np.ndarray, str]:
    """:func:`radau_reference`, kept in ``results/_reference_<name>.json`` (git-ignored)
    and reused while the problem's definition and the tolerance are the same."""
    import json

    key = {
        "name": spec.name,
        "y0": list(spec.y0),
        "tspan": list(spec.tspan),
        "p": list(spec.p),
        "rtol": REF_RTOL,
        "atol": ref_atol(spec),
        "f_at_test_states": [spec.numpy()[0](0.0, y).tolist() for y in _test_states(spec)],
    }
    path = C.RESULTS_DIR / f"_reference_{spec.name}.json"
    if path.exists():
        try:
            data = json.loads(path.read_text())
            if data["key"] == key:
                return np.asarray(data["y"]), data["source"] + " (cached)"
        except (ValueError, KeyError):
            pass
    y, took, check = radau_reference(spec)
    src = (
        f"scipy Radau rtol={REF_RTOL:g} atol={ref_atol(spec):g} ({took:.1f} s; differs from "
        f"rtol={10 * REF_RTOL:g} by {check:.1e} RMS relative)"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"key": key, "y": y.tolist(), "source": src}, indent=1))
    return y, src


def ref_atol(spec: StiffSpec) -> float:
    return 1e-14 * max(1.0, max(abs(v) for v in spec.y0))


def radau_reference(spec: StiffSpec, rtol: float = REF_RTOL) -> tuple[np.ndarray, float, float]:
    """scipy Radau at ``rtol`` (and at ``10·rtol`` as a check): y(t_end), seconds, RMS diff."""
    from scipy.integrate import solve_ivp

    f, jac = spec.numpy()

    def solve(tol: float) -> np.ndarray:
        sol = solve_ivp(
            f, spec.tspan, spec.y0, method="Radau", rtol=tol, atol=ref_atol(spec), jac=jac
        )
        if sol.status != 0:
            raise RuntimeError(f"reference solve failed: {sol.message}")
        return sol.y[:, -1]

    t0 = time.perf_counter()
    y = solve(rtol)
    took = time.perf_counter() - t0
    y2 = solve(10 * rtol)
    return y, took, rel_rms(y2, y, 1e-3)


def rel_rms(y: np.ndarray, ref: np.ndarray, floor: float) -> float:
    """RMS of ``(y - ref) / (|ref| + floor)`` (hybrideq.workprecision's ``error``)."""
    d = (np.asarray(y) - np.asarray(ref)) / (np.abs(np.asarray(ref)) + floor)
    return float(np.sqrt(np.mean(d * d)))


# --------------------------------------------------------------------------- contenders


def workprecision_module(hq: Any) -> Any:
    """``hybrideq.workprecision`` and friends (the private module until exported)."""
    return importlib.import_module("hybrideq._workprecision")


def hybrideq_solver(hq: Any, name: str) -> tuple[Any, str]:
    """``hq.<name>()`` or ``None`` with the reason."""
    from hybrideq.solvers import AbstractSolver

    cls = getattr(hq, name, None)
    if not (inspect.isclass(cls) and issubclass(cls, AbstractSolver)):
        return None, f"{NOT_AVAILABLE} (hybrideq has no {name})"
    return cls(), ""


def contenders(
    hq: Any,
    spec: StiffSpec,
    only: str | None,
    hybrideq_solvers: Sequence[str] = HYBRIDEQ_STIFF,
) -> tuple[list[Any], list[str], list[dict[str, Any]]]:
    """(contenders, their names, rows for contenders that cannot run)."""
    wpm = workprecision_module(hq)
    out: list[Any] = []
    names: list[str] = []
    skipped: list[dict[str, Any]] = []
    f_np, jac_np = spec.numpy()
    for method in SCIPY_STIFF:
        name = f"scipy {method}"
        if C.selected(name, only):
            out.append(wpm.scipy_contender(method, rhs=f_np, jac=jac_np, name=name))
            names.append(name)
    name = "diffrax Kvaerno5 (jit)"
    if spec.diffrax_dt0 is not None:
        name = f"diffrax Kvaerno5 (jit, dt0={spec.diffrax_dt0:g})"
    if C.selected(name, only):
        if C.available("jax") and C.available("diffrax"):
            import jax.numpy as jnp

            out.append(
                wpm.diffrax_contender(
                    "Kvaerno5",
                    spec.jax(),
                    args=jnp.asarray(spec.p, dtype=jnp.float64) if spec.p else None,
                    name=name,
                    max_steps=MAX_STEPS,
                    dt0=spec.diffrax_dt0,
                )
            )
            names.append(name)
        else:
            skipped.append(C.missing_row(name, "jax", "diffrax"))
    for solver_name in hybrideq_solvers:
        name = f"hybrideq {solver_name}"
        if not C.selected(name, only):
            continue
        solver, why = hybrideq_solver(hq, solver_name)
        if solver is None:
            skipped.append({"contender": name, "status": why})
        else:
            out.append(solver)
            names.append(name)
    return out, names, skipped


# --------------------------------------------------------------------------- running


COLUMNS = [
    ("contender", "contender"),
    ("rtol", "rtol"),
    ("time_ms", "time [ms]"),
    ("ratio", "× scipy BDF"),
    ("error", "error"),
    ("scd", "scd"),
    ("nf", "NFE"),
    ("njac", "Jac"),
    ("nlu", "LU"),
    ("naccept", "accepted"),
    ("nreject", "rejected"),
    ("retcode", "retcode"),
    ("compile_s", "compile [s]"),
]


def run_study(
    hq: Any,
    spec: StiffSpec,
    problem: Any,
    reference: Any,
    tolerances: Sequence[float],
    atol_ratio: float,
    args: Any,
    warmup: int,
    repeats: int,
) -> tuple[Any, list[dict[str, Any]]]:
    """The work-precision study of one problem and the rows of contenders that did not run."""
    wpm = workprecision_module(hq)
    conts, names, skipped = contenders(hq, spec, args.only)
    for row in skipped:
        print(f"   {row['contender']}: {row['status']}")
    if not conts:
        return None, skipped
    print(
        f"   timing {len(conts)} contenders × {len(tolerances)} tolerances, round robin ...",
        flush=True,
    )
    wp = wpm.workprecision(
        problem,
        conts,
        list(tolerances),
        reference=reference,
        atol_ratio=atol_ratio,
        warmup=warmup,
        repeats=repeats,
        names=names,
        title=spec.title,
        progress=getattr(args, "progress", False),
    )
    return wp, skipped


def rows_of(wp: Any, skipped: Sequence[dict[str, Any]], **extra: Any) -> list[dict[str, Any]]:
    """Table rows (dicts) of a study: ratio to scipy BDF at the same rtol, scd, compile."""
    rows: list[dict[str, Any]] = []
    base = {}
    if wp is not None:
        base = {r.rtol: r.time_s for r in wp.rows if r.solver == "scipy BDF" and r.success}
        for r in wp.rows:
            if not r.ran:
                rows.append({**extra, "contender": r.solver, "status": f"{r.retcode}: {r.message}"})
                continue
            d: dict[str, Any] = {
                **extra,
                "contender": r.solver,
                "rtol": r.rtol,
                "atol": r.atol,
                "time_ms": 1e3 * r.time_s if math.isfinite(r.time_s) else None,
                "times_ms": [1e3 * t for t in r.times],
                "error": r.error if math.isfinite(r.error) else None,
                "error_max": r.error_max if math.isfinite(r.error_max) else None,
                "scd": -math.log10(r.error_max) if r.error_max > 0 else None,
                "nf": r.nf,
                "njac": r.njac,
                "nlu": r.nlu,
                "naccept": r.naccept,
                "nreject": r.nreject,
                "retcode": r.retcode,
                "message": r.message,
                "compile_s": r.setup_s if r.solver.startswith("diffrax") else None,
            }
            if r.rtol in base and d["time_ms"] is not None:
                d["ratio"] = r.time_s / base[r.rtol]
            rows.append(d)
    rows.extend({**extra, **s} for s in skipped)
    return rows


def print_failures(rows: Sequence[dict[str, Any]]) -> None:
    """The messages of failed runs, once per contender and message."""
    seen: set[tuple[str, str]] = set()
    for r in rows:
        msg = r.get("message")
        if msg and (r["contender"], msg) not in seen:
            seen.add((r["contender"], msg))
            print(f"   {r['contender']} ({r['retcode']}, first at rtol {r['rtol']:g}): {msg}")


def equal_error_rows(wp: Any, targets: Sequence[float], **extra: Any) -> list[dict[str, Any]]:
    """Per contender, the fastest successful run with error ≤ each target (ms)."""
    out = []
    if wp is None:
        return out
    for name in wp.solvers:
        row: dict[str, Any] = {**extra, "contender": name}
        for e in targets:
            good = [r for r in wp.rows_for(name) if r.success and r.error <= e]
            row[f"t_{e:g}"] = 1e3 * min(r.time_s for r in good) if good else None
        out.append(row)
    return out


def equal_error_columns(targets: Sequence[float]) -> list[tuple[str, str]]:
    return [("contender", "contender")] + [(f"t_{e:g}", f"err ≤ {e:g} [ms]") for e in targets]


def plot_studies(studies: Sequence[Any], path: str, title: str) -> None:
    """One work-precision diagram per study, side by side (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [s for s in studies if s is not None]
    if not done:
        print("no plot: nothing ran")
        return
    fig, axes = plt.subplots(1, len(done), figsize=(6.5 * len(done), 5), squeeze=False)
    for ax, wp in zip(axes[0], done, strict=True):
        wp.plot(ax=ax)
        ax.title.set_fontsize(10)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot written to {path}")
