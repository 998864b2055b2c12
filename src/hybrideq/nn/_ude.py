"""Universal differential equations: known terms (sympy or torch) plus a neural term."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sympy
import torch
from torch import Tensor, nn

from hybrideq.nn._neural_ode import NeuralODEOutput
from hybrideq.problems import ODEProblem
from hybrideq.sensitivity import AbstractSensitivityAlgorithm, DirectBackprop
from hybrideq.solve import solve
from hybrideq.solvers import AbstractSolver, Tsit5

__all__ = ["RBF", "UDE"]


class RBF(nn.Module):
    """The Gaussian radial basis activation ``exp(−x²)`` of Rackauckas et al. (2020)."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.exp(-(x**2))


def _ude_field(t: Tensor, y: Tensor, module: UDE) -> Tensor:
    return module.field(t, y)


class UDE(nn.Module):
    """A universal differential equation ``dy/dt = known(t, y, p) + mask · neural(y)``.

    The known part is a :class:`~hybrideq.symbolic.SymbolicODE` (compiled from sympy) or a
    torch function ``known(t, y, p)``; the neural part is any ``nn.Module`` mapping states
    ``(…, n)`` to ``(…, n)``. After training, :meth:`discover` turns the neural term into
    sympy equations (evaluated along a trajectory, e.g. the learned one) and
    :meth:`to_symbolic_ode` puts them back beside the known terms, ready to refit with
    :func:`hybrideq.symbolic.fit_parameters` and to extrapolate.

    Args:
        known: a ``SymbolicODE`` or a callable ``known(t, y, p)``.
        neural: the neural term, called as ``neural(y)`` (or ``neural(t, y)`` when
            ``time_input=True``).
        p: the known part's parameters (a ``SymbolicODE`` takes a mapping or ``None`` for
            its defaults).
        train_known: make the known parameters trainable (``nn.Parameter``).
        mask: optional ``(n,)`` 0/1 weights of the neural term per state (which equations
            have a missing term).
        time_input: call ``neural(t, y)``.
        solver: the solver (default ``Tsit5()``).
        sensealg: how gradients are computed (default ``DirectBackprop()``).
        rtol: relative tolerance.
        atol: absolute tolerance.
        **solve_kwargs: further keywords for :func:`hybrideq.solve`.

    Example:
        >>> import sympy as sp, torch, hybrideq as hq
        >>> x, y, a, d = sp.symbols("x y alpha delta")
        >>> known = hq.symbolic.SymbolicODE({x: a * x, y: -d * y}, params={a: 1.3, d: 1.8})
        >>> net = torch.nn.Sequential(torch.nn.Linear(2, 5), hq.nn.RBF(), torch.nn.Linear(5, 2))
        >>> ude = hq.nn.UDE(known, net.double())
        >>> t = torch.linspace(0, 1, 11, dtype=torch.float64)
        >>> ude(torch.tensor([0.44, 4.63], dtype=torch.float64), t).y.shape
        torch.Size([11, 2])
    """

    def __init__(
        self,
        known: Any,
        neural: nn.Module,
        p: Any = None,
        *,
        train_known: bool = False,
        mask: Sequence[float] | Tensor | None = None,
        time_input: bool = False,
        solver: AbstractSolver | None = None,
        sensealg: AbstractSensitivityAlgorithm | None = None,
        rtol: float = 1e-6,
        atol: float = 1e-8,
        **solve_kwargs: Any,
    ) -> None:
        super().__init__()
        from hybrideq.symbolic import SymbolicODE

        if not isinstance(neural, nn.Module):
            raise TypeError(f"neural must be an nn.Module, got {type(neural).__name__}")
        self.symbolic = known if isinstance(known, SymbolicODE) else None
        if self.symbolic is not None:
            self.known_fn: Callable[..., Any] = self.symbolic.f
            pv = self.symbolic.parameter_vector(p)
        elif callable(known):
            self.known_fn = known
            pv = None if p is None else torch.as_tensor(p, dtype=torch.float64)
        else:
            raise TypeError(
                "known must be a hybrideq.symbolic.SymbolicODE or a callable known(t, y, p), "
                f"got {type(known).__name__}"
            )
        self.neural = neural
        self.known_p: Tensor | None
        if pv is None:
            self.known_p = None
        elif train_known:
            self.known_p = nn.Parameter(pv.clone())
        else:
            self.register_buffer("known_p", pv.clone())
        self.mask: Tensor | None
        if mask is None:
            self.mask = None
        else:
            self.register_buffer("mask", torch.as_tensor(mask, dtype=torch.float64))
        self.time_input = time_input
        self.solver = solver if solver is not None else Tsit5()
        self.sensealg = sensealg if sensealg is not None else DirectBackprop()
        self.rtol, self.atol = rtol, atol
        self.solve_kwargs = solve_kwargs

    @property
    def states(self) -> tuple[sympy.Symbol, ...] | None:
        """The state symbols of a symbolic known part."""
        return None if self.symbolic is None else self.symbolic.states

    def neural_term(self, y: Tensor, t: Tensor | None = None) -> Tensor:
        """The neural term (masked) at states ``y`` ``(…, n)``."""
        if self.time_input:
            if t is None:
                raise ValueError("neural_term: this UDE's network takes t; pass t")
            out = self.neural(t, y)
        else:
            out = self.neural(y)
        return out if self.mask is None else out * self.mask.to(out.dtype)

    def known_term(self, t: Tensor, y: Tensor) -> Tensor:
        """The known part at ``(t, y)``."""
        p = self.known_p
        if p is not None:
            p = p.to(y.dtype)
        return self.known_fn(t, y, p)

    def field(self, t: Tensor, y: Tensor) -> Tensor:
        """The full right-hand side ``known + neural``."""
        return self.known_term(t, y) + self.neural_term(y, t)

    def forward(self, y0: Tensor, t: Tensor) -> NeuralODEOutput:
        """Integrate from ``y0`` at ``t[0]`` and return the states at the times ``t``."""
        t = torch.as_tensor(t, dtype=y0.dtype, device=y0.device)
        if t.ndim != 1 or t.shape[0] < 2:
            raise ValueError("t must be a 1-D tensor of at least two save times")
        prob = ODEProblem(_ude_field, y0, (t[0], t[-1]), self)
        sol = solve(
            prob,
            self.solver,
            saveat=t,
            rtol=self.rtol,
            atol=self.atol,
            sensealg=self.sensealg,
            **self.solve_kwargs,
        )
        return NeuralODEOutput(sol.y, int(sol.stats.nf.max()), sol, None)

    def discover(
        self,
        t: Any,
        y: Any,
        method: Any = None,
        *,
        states: Sequence[Any] | None = None,
    ) -> Any:
        """Discover sympy equations for the neural term along the trajectory ``y``.

        Args:
            t: times ``(T,)`` of the samples.
            y: states ``(T, n)``: typically the UDE's own prediction at dense times.
            method: :class:`~hybrideq.symbolic.SINDy` (default) or
                :class:`~hybrideq.symbolic.PySR`.
            states: state symbols (default: the symbolic known part's).

        Returns:
            A :class:`~hybrideq.symbolic.DiscoveredModel` of the missing terms.
        """
        from hybrideq.symbolic import discover

        yy = torch.as_tensor(y, dtype=torch.float64)
        tt = torch.as_tensor(t, dtype=torch.float64)
        with torch.no_grad():
            target = self.neural_term(yy, tt)
        states = states if states is not None else self.states
        return discover(tt, yy, target, method, states=states)

    def to_symbolic_ode(self, discovered: Any, *, parametrize: bool = True) -> Any:
        """The known part plus the discovered terms, as one :class:`SymbolicODE`.

        Args:
            discovered: the result of :meth:`discover`.
            parametrize: make every discovered coefficient a parameter (to refit).
        """
        if self.symbolic is None:
            raise ValueError(
                "to_symbolic_ode needs a symbolic known part; build the UDE with a SymbolicODE"
            )
        known = self.symbolic
        if self.known_p is not None:
            values = dict(zip(known.params, self.known_p.detach().tolist(), strict=True))
            known = type(known)(
                known.equations, known.states, values, t=known.t, functions=known.functions
            )
        return discovered.to_symbolic_ode(known, parametrize=parametrize)

    def extra_repr(self) -> str:
        known = (
            repr(self.symbolic)
            if self.symbolic is not None
            else getattr(self.known_fn, "__name__", "known")
        )
        return f"known={known}, solver={self.solver}, rtol={self.rtol}, atol={self.atol}"
