"""Neural SDEs and the stable neural SDEs of Oh, Lim & Kim (ICLR 2024), as ``nn.Module``s.

- :class:`NeuralSDE`: ``dy = drift(t, y) dt + diffusion(t, y) dW`` with neural drift and
  diffusion, solved by :func:`hybrideq.solve`.
- Controlled fields for time series (a latent ``z`` driven by a data path ``X``):
  :class:`LangevinSDE` (LSDE), :class:`LinearNoiseSDE` (LNSDE), :class:`GeometricSDE`
  (GSDE) and the plain baseline :class:`ControlledNeuralSDE`. Each builds an
  :class:`~hybrideq.SDEProblem` from a path (:meth:`AbstractControlledSDE.problem`).
- Models for irregular time series: :class:`SDEClassifier` (path → SDE → ``Linear`` on
  ``z(T)``) and the neural-ODE baseline :class:`ODEClassifier`.

Reference: Y. Oh, D. Lim, S. Kim, "Stable Neural Stochastic Differential Equations in
Analyzing Irregular Time Series Data", ICLR 2024 (arXiv 2402.14989; code
``yongkyung-oh/Stable-Neural-SDEs``).
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple, final

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hybrideq.nn._paths import AbstractPath, CubicSplinePath, HermitePath
from hybrideq.problems import ODEProblem, SDEProblem
from hybrideq.sensitivity import AbstractSensitivityAlgorithm, DirectBackprop
from hybrideq.solution import Solution
from hybrideq.solve import solve
from hybrideq.solvers import AbstractSolver, Tsit5
from hybrideq.solvers.sde import EM

__all__ = [
    "AbstractControlledSDE",
    "ClassifierOutput",
    "ControlledNeuralSDE",
    "GeometricSDE",
    "LangevinSDE",
    "LinearNoiseSDE",
    "LipSwish",
    "NeuralSDE",
    "NeuralSDEOutput",
    "ODEClassifier",
    "SDEClassifier",
    "paper_dt",
]

_NOISES = ("diagonal", "scalar", "additive", "general")


class NeuralSDEOutput(NamedTuple):
    """What :class:`NeuralSDE` returns.

    Attributes:
        y: states at the requested times, ``(batch, T, *state)`` (``(T, *state)`` for a
            1-D ``y0``).
        sol: the full :class:`~hybrideq.Solution` (return codes, stats, the Brownian path
            ``sol.W``).
        regularization: the model's regularizer per sample ``(batch,)`` in training
            mode (``None`` without a regularizer or in eval mode).
    """

    y: Tensor
    sol: Solution
    regularization: Tensor | None = None


def _is_fixed_step(solver: AbstractSolver, solve_kwargs: dict[str, Any]) -> bool:
    return not getattr(solver, "is_adaptive", False) or solve_kwargs.get("adaptive") is False


def paper_dt(t: Tensor) -> float:
    """The step size of Oh et al. (2024): ``max(min Δt, 1e-3)`` over the time grid ``t``.

    Args:
        t: observation times, ``(T,)`` or ``(batch, T)``.

    Example:
        >>> import torch
        >>> from hybrideq.nn import paper_dt
        >>> paper_dt(torch.tensor([0.0, 0.25, 0.5, 2.0]))
        0.25
        >>> paper_dt(torch.tensor([0.0, 1e-5, 1.0]))
        0.001
    """
    gaps = t[..., 1:] - t[..., :-1]
    return max(float(gaps.abs().min()), 1e-3)


def _noise_source(kwargs: dict[str, Any], seed: int | None, brownian: Any) -> None:
    """Pass ``brownian`` or a seed to ``solve``; no seed: one from torch's generator.

    Drawing the seed from torch's global generator makes ``torch.manual_seed`` repeat a
    training run, noise included.
    """
    if brownian is not None:
        if seed is not None:
            raise ValueError("pass either seed= (a new path) or brownian= (an existing path)")
        kwargs["brownian"] = brownian
    else:
        kwargs["seed"] = int(torch.randint(0, 2**62, ())) if seed is None else seed


def _drift_fn(t: Tensor, y: Tensor, p: tuple[nn.Module, nn.Module]) -> Tensor:
    return p[0](t, y)


def _diffusion_fn(t: Tensor, y: Tensor, p: tuple[nn.Module, nn.Module]) -> Tensor:
    return p[1](t, y)


class NeuralSDE(nn.Module):
    """A neural SDE ``dy = drift(t, y) dt + diffusion(t, y) dW`` solved by hybrideq.

    Args:
        drift: an ``nn.Module`` called as ``drift(t, y)``; for a batch ``t`` has shape
            ``(batch,)`` and ``y`` shape ``(batch, *state)``.
        diffusion: an ``nn.Module`` called as ``diffusion(t, y)``; it returns the shape of
            ``y`` for ``noise`` ``"diagonal"``, ``"scalar"`` and ``"additive"``, and
            ``(*y.shape, noise_dim)`` for ``"general"``.
        noise: the noise structure (see :class:`~hybrideq.SDEProblem`).
        noise_dim: the number of Brownian motions for ``"general"`` noise.
        solver: the SDE solver spec (default ``EM()``, Euler–Maruyama: Itô, fixed steps,
            torchsde's ``"euler"``, the method of Oh et al. 2024).
        sensealg: how gradients are computed (default ``DirectBackprop()``;
            ``BacksolveAdjoint()`` for memory independent of the number of steps, or with
            ``solver=ReversibleHeun()`` the exact ``ReversibleAdjoint()``).
        dt: the step of a fixed-step solve. ``None``: ``max(min Δt, 1e-3)`` over the save
            times (:func:`paper_dt`); adaptive solvers choose their own steps.
        interpretation: ``"ito"`` or ``"stratonovich"``; ``None`` takes the solver's
            (``EulerHeun`` is Stratonovich, the others Itô).
        regularizer: a spec from :mod:`hybrideq.regularizers` (e.g. ``ErrorEstimate()``
            or ``LocalErrorEstimate()`` with ``solver=SOSRI()``), computed in training mode
            only and returned in ``out.regularization``; ``model.eval()`` predicts without
            its cost.
        **solve_kwargs: further keywords for :func:`hybrideq.solve` (``adaptive``,
            ``rtol``, ``atol``, ``maxiters`` …).

    Example:
        >>> import torch, hybrideq as hq
        >>> class Drift(torch.nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.net = torch.nn.Linear(2, 2)
        ...
        ...     def forward(self, t, y):
        ...         return self.net(y)
        >>> class Diffusion(torch.nn.Module):
        ...     def forward(self, t, y):
        ...         return 0.1 * torch.ones_like(y)
        >>> model = hq.nn.NeuralSDE(Drift(), Diffusion(), noise="additive").double()
        >>> t = torch.linspace(0, 1, 5, dtype=torch.float64)
        >>> out = model(torch.randn(8, 2, dtype=torch.float64), t, seed=0)
        >>> out.y.shape
        torch.Size([8, 5, 2])
    """

    def __init__(
        self,
        drift: nn.Module,
        diffusion: nn.Module,
        *,
        noise: str = "diagonal",
        noise_dim: int | None = None,
        solver: AbstractSolver | None = None,
        sensealg: AbstractSensitivityAlgorithm | None = None,
        dt: float | None = None,
        interpretation: str | None = None,
        regularizer: Any = None,
        **solve_kwargs: Any,
    ) -> None:
        super().__init__()
        for name, module in (("drift", drift), ("diffusion", diffusion)):
            if not isinstance(module, nn.Module):
                raise TypeError(
                    f"{name} must be an nn.Module called as {name}(t, y); wrap a function "
                    "in a module so that its parameters are trained"
                )
        if noise not in _NOISES:
            raise ValueError(f"noise must be one of {_NOISES}, got {noise!r}")
        if dt is not None and not dt > 0:
            raise ValueError(f"dt must be positive, got {dt}")
        self.drift = drift
        self.diffusion = diffusion
        self.noise = noise
        self.noise_dim = noise_dim
        self.solver = solver if solver is not None else EM()
        self.sensealg = sensealg if sensealg is not None else DirectBackprop()
        self.dt = dt
        self.interpretation = interpretation
        self.regularizer = regularizer
        self.solve_kwargs = solve_kwargs

    def forward(
        self, y0: Tensor, t: Tensor, *, seed: int | None = None, brownian: Any = None
    ) -> NeuralSDEOutput:
        """Integrate from ``y0`` at ``t[0]`` and return the states at the times ``t``.

        Args:
            y0: initial states, ``(batch, *state)`` or ``(n,)``.
            t: save times ``(T,)``, increasing; the span is ``(t[0], t[-1])``.
            seed: seed of the Brownian path; ``None`` draws one from torch's global
                generator, so ``torch.manual_seed`` makes runs repeatable.
            brownian: a Brownian path to reuse (``sol.W`` of an earlier solve), so two
                models or two parameter values see the same noise.
        """
        t = torch.as_tensor(t, dtype=y0.dtype, device=y0.device)
        if t.ndim != 1 or t.shape[0] < 2:
            raise ValueError("t must be a 1-D tensor of at least two save times")
        interpretation = self.interpretation or str(getattr(self.solver, "interpretation", "ito"))
        prob = SDEProblem(
            _drift_fn,
            _diffusion_fn,
            y0,
            (t[0], t[-1]),
            (self.drift, self.diffusion),
            noise=self.noise,
            noise_dim=self.noise_dim,
            interpretation=interpretation,
        )
        kwargs = dict(self.solve_kwargs)
        if self.dt is not None:
            kwargs["dt"] = self.dt
        elif _is_fixed_step(self.solver, kwargs):
            kwargs["dt"] = paper_dt(t)
        _noise_source(kwargs, seed, brownian)
        reg = self.regularizer if self.training else None
        sol = solve(prob, self.solver, saveat=t, sensealg=self.sensealg, regularizer=reg, **kwargs)
        return NeuralSDEOutput(sol.y, sol, sol.regularization)

    def extra_repr(self) -> str:
        return f"noise={self.noise!r}, solver={self.solver}, sensealg={self.sensealg}, dt={self.dt}"


# --------------------------------------------------------------------------- stable fields


class LipSwish(nn.Module):
    """``0.909 · x · sigmoid(x)``: SiLU scaled to Lipschitz constant 1 (Chen et al. 2019).

    The activation of the stable neural SDE tutorials, keeping the fields Lipschitz.
    """

    def forward(self, x: Tensor) -> Tensor:
        return 0.909 * F.silu(x)


def _mlp(
    in_features: int, width: int, out_features: int, num_layers: int, act: type[nn.Module]
) -> nn.Sequential:
    """``Linear → act → (Linear → act) × (num_layers − 1) → Linear``."""
    layers: list[nn.Module] = [nn.Linear(in_features, width), act()]
    for _ in range(num_layers - 1):
        layers += [nn.Linear(width, width), act()]
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


def _time_column(t: Any, z: Tensor) -> Tensor:
    """``t`` as a ``(batch, 1)`` column (a scalar ``t`` is shared by the batch)."""
    tt = torch.as_tensor(t, dtype=z.dtype, device=z.device)
    if tt.ndim == 0:
        tt = tt.expand(z.shape[0])
    return tt.reshape(-1, 1)


def _controlled_drift(t: Tensor, z: Tensor, p: tuple[Any, ...]) -> Tensor:
    field, path = p[0], p[1]
    return field.state_drift(t, z, path.evaluate(t), p[3])


def _controlled_diffusion(t: Tensor, z: Tensor, p: tuple[Any, ...]) -> Tensor:
    return p[0].state_diffusion(t, z)


class AbstractControlledSDE(nn.Module):
    """A latent SDE ``dz = γ dt + σ dW`` whose drift reads a data path ``X(t)``.

    Following Oh, Lim & Kim (ICLR 2024, §3.4), the drift sees the *controlled* latent
    ``z̃(t) = ζ(t, z(t), X(t))``; ``X`` enters the drift only (it does not drive the
    equation as ``dX`` would in a neural CDE), and ``z(0) = Linear(X(t_0))``. The networks:

    - ``ζ = emb([linear_in(τ(t) ⊕ z), linear_X(X(t))])`` (LSDE: ``linear_in(z)``, no time);
    - ``γ = f_net(ζ)``: ``num_layers`` activations with ``num_layers − 1`` hidden
      ``Linear`` layers of width ``hidden_hidden_channels`` between them, then a
      ``Linear`` to ``hidden_channels``;
    - ``σ(t) = g_net(τ(t))``, an MLP with ``num_layers`` hidden layers (the plain
      baseline: ``σ(t, z) = g_net(τ(t) ⊕ z)``).

    ``stabilizers=False`` (default) gives the paper's pure forms, as in the repository's
    tutorial notebooks: time features ``τ(t) = t`` and LipSwish activations (Lipschitz 1),
    nothing clipped. ``stabilizers=True`` reproduces the benchmark code
    (``benchmark_classification/models_sde/neuralsde.py``, ``Diffusion_model``), whose
    docstring calls these "engineering stabilizers … not theorem-faithful": ``τ(t) =
    (sin t, cos t)``, ReLU activations, the drift clipped by ``tanh``, the noise
    ``tanh(sigmoid(θ) · ReLU(σ) [· z])`` with a trained ``θ`` (initially 1).

    Args:
        input_channels: channels of the path ``X`` (``path.channels``).
        hidden_channels: size of the latent state ``z``.
        hidden_hidden_channels: width of the networks (default ``hidden_channels``).
        num_layers: hidden layers of the drift and diffusion MLPs.
        stabilizers: use the benchmark code's stabilizers (see above).

    Subclasses set ``noise`` (the :class:`~hybrideq.SDEProblem` noise type) and
    implement :meth:`drift` and :meth:`diffusion`.
    """

    noise: ClassVar[str] = "diagonal"
    uses_time: ClassVar[bool] = True  # whether the drift has an explicit t

    def __init__(
        self,
        input_channels: int,
        hidden_channels: int,
        hidden_hidden_channels: int | None = None,
        num_layers: int = 2,
        *,
        stabilizers: bool = False,
    ) -> None:
        super().__init__()
        for name, value in (
            ("input_channels", input_channels),
            ("hidden_channels", hidden_channels),
            ("num_layers", num_layers),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        width = hidden_hidden_channels if hidden_hidden_channels is not None else hidden_channels
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"hidden_hidden_channels must be a positive integer, got {width!r}")
        self.input_channels = input_channels
        self.hidden_channels = hidden_channels
        self.hidden_hidden_channels = width
        self.num_layers = num_layers
        self.stabilizers = stabilizers
        act: type[nn.Module] = nn.ReLU if stabilizers else LipSwish
        n_time = 2 if stabilizers else 1
        self.initial_network = nn.Linear(input_channels, hidden_channels)
        in_features = hidden_channels + (n_time if self.uses_time else 0)
        self.linear_in = nn.Linear(in_features, width)
        self.linear_X = nn.Linear(input_channels, width)
        self.emb = nn.Linear(2 * width, width)
        # γ = linear_out(act(… act(ζ))): num_layers activations, num_layers − 1 inner layers.
        inner: list[nn.Module] = [act()]
        for _ in range(num_layers - 1):
            inner += [nn.Linear(width, width), act()]
        self.f_net = nn.Sequential(*inner, nn.Linear(width, hidden_channels))
        self.g_net = self._build_diffusion_net(n_time, width, num_layers, act)
        if stabilizers:
            self.theta = nn.Parameter(torch.tensor(1.0))

    def _build_diffusion_net(
        self, n_time: int, width: int, num_layers: int, act: type[nn.Module]
    ) -> nn.Module:
        return _mlp(n_time, width, self.hidden_channels, num_layers, act)

    # ----------------------------------------------------------------- pieces

    def time_features(self, t: Any, z: Tensor) -> Tensor:
        """``τ(t)``: ``t`` (pure forms) or ``(sin t, cos t)`` (stabilizers), ``(batch, ·)``."""
        tc = _time_column(t, z)
        return torch.cat([torch.sin(tc), torch.cos(tc)], dim=-1) if self.stabilizers else tc

    def controlled(self, t: Any, z: Tensor, x: Tensor) -> Tensor:
        """``z̃ = ζ(t, z, X(t))``, ``(batch, hidden_hidden_channels)``."""
        zin = torch.cat([self.time_features(t, z), z], dim=-1) if self.uses_time else z
        return self.emb(torch.cat([self.linear_in(zin), self.linear_X(x)], dim=-1))

    def gamma(self, t: Any, z: Tensor, x: Tensor) -> Tensor:
        """``γ(t, z̃)``: the drift network's output, before any structure or clipping."""
        return self.f_net(self.controlled(t, z, x))

    def sigma(self, t: Any, z: Tensor) -> Tensor:
        """``σ(t)``: the diffusion network's output (``ReLU``-ed with stabilizers)."""
        s = self.g_net(self.time_features(t, z))
        return F.relu(s) if self.stabilizers else s

    def _bound_noise(self, noise: Tensor) -> Tensor:
        return torch.tanh(torch.sigmoid(self.theta) * noise) if self.stabilizers else noise

    # ----------------------------------------------------------------- the SDE

    def initial(self, x0: Tensor) -> Tensor:
        """``z(0) = Linear(X(t_0))``, ``(batch, hidden_channels)``."""
        return self.initial_network(x0)

    def drift(self, t: Any, z: Tensor, x: Tensor) -> Tensor:
        """The drift ``f(t, z)`` given the path's value ``x = X(t)``, shape of ``z``."""
        raise NotImplementedError

    def diffusion(self, t: Any, z: Tensor) -> Tensor:
        """The diagonal diffusion ``g(t, z)``, shape of ``z``."""
        raise NotImplementedError

    # The state the solver integrates (GeometricSDE may integrate log z instead).
    def state_drift(self, t: Any, y: Tensor, x: Tensor, interpretation: str = "ito") -> Tensor:
        """The drift of the integrated state (``z`` itself unless overridden)."""
        return self.drift(t, y, x)

    def state_diffusion(self, t: Any, y: Tensor) -> Tensor:
        """The diffusion of the integrated state (``z`` itself unless overridden)."""
        return self.diffusion(t, y)

    def to_state(self, z: Tensor) -> Tensor:
        """Latent ``z`` → the integrated state (identity unless overridden)."""
        return z

    def from_state(self, y: Tensor) -> Tensor:
        """The integrated state → latent ``z`` (identity unless overridden)."""
        return y

    def state_noise(self) -> str:
        """The noise type of the integrated state's SDE."""
        return self.noise

    def problem(self, path: AbstractPath, *, interpretation: str = "ito") -> SDEProblem:
        """The :class:`~hybrideq.SDEProblem` of this field driven by ``path``.

        The initial state is ``z(0) = initial(X(t_0))`` (in the integrated state's
        coordinates, :meth:`to_state`); the span is the path's observation span, shared
        where the path has one time grid, per sample otherwise. ``p`` carries the field,
        the path and the path's coefficient tensors, so adjoints see every parameter.

        Args:
            path: the data path, ``path.channels == input_channels``.
            interpretation: ``"ito"`` or ``"stratonovich"``, matching the solver.
        """
        if not isinstance(path, AbstractPath):
            raise TypeError(
                f"path must be a CubicSplinePath or HermitePath, got {type(path).__name__}"
            )
        if path.channels != self.input_channels:
            raise ValueError(
                f"the path has {path.channels} channels but the field expects "
                f"input_channels = {self.input_channels}; build the field with "
                "input_channels=path.channels"
            )
        z0 = self.to_state(self.initial(path.evaluate(path.t0)))
        tspan = _span(path)
        return SDEProblem(
            _controlled_drift,
            _controlled_diffusion,
            z0,
            tspan,
            (self, path, path.tensors(), interpretation),
            noise=self.state_noise(),
            interpretation=interpretation,
        )

    def extra_repr(self) -> str:
        return (
            f"input_channels={self.input_channels}, hidden_channels={self.hidden_channels}, "
            f"hidden_hidden_channels={self.hidden_hidden_channels}, "
            f"num_layers={self.num_layers}, stabilizers={self.stabilizers}"
        )


def _span(path: AbstractPath) -> tuple[Tensor, Tensor]:
    t0, t1 = path.t0, path.t1
    if bool((t0 == t0[0]).all()) and bool((t1 == t1[0]).all()):
        return t0[0], t1[0]
    return t0, t1


@final
class LangevinSDE(AbstractControlledSDE):
    """LSDE: ``dz = γ(z̃(t)) dt + σ(t) dW``, the Langevin-type stable neural SDE.

    The drift has no explicit time (``z̃ = ζ(z, X(t))``), the noise is additive and
    depends on time only. Oh, Lim & Kim (ICLR 2024), §3.1; the benchmark's option
    ``(2, 16)``. Arguments and networks as :class:`AbstractControlledSDE`.

    Example:
        >>> import torch, hybrideq as hq
        >>> field = hq.nn.LangevinSDE(input_channels=3, hidden_channels=4).double()
        >>> z, x = torch.randn(5, 4, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
        >>> field.drift(0.0, z, x).shape, field.noise
        (torch.Size([5, 4]), 'additive')
    """

    noise: ClassVar[str] = "additive"
    uses_time: ClassVar[bool] = False

    def drift(self, t: Any, z: Tensor, x: Tensor) -> Tensor:
        g = self.gamma(t, z, x)
        return torch.tanh(g) if self.stabilizers else g

    def diffusion(self, t: Any, z: Tensor) -> Tensor:
        return self._bound_noise(self.sigma(t, z))


@final
class LinearNoiseSDE(AbstractControlledSDE):
    """LNSDE: ``dz = γ(t, z̃(t)) dt + σ(t) z dW``, the linear-noise stable neural SDE.

    Multiplicative linear noise (diagonal): ``g(t, 0) = 0``, which gives stochastic
    stabilisation of the zero solution when σ is large against γ's Lipschitz constant
    (Oh, Lim & Kim, ICLR 2024, §3.2); the benchmark's option ``(4, 17)``.
    Arguments and networks as :class:`AbstractControlledSDE`.

    Example:
        >>> import torch, hybrideq as hq
        >>> field = hq.nn.LinearNoiseSDE(input_channels=3, hidden_channels=4).double()
        >>> z = torch.zeros(5, 4, dtype=torch.float64)
        >>> bool(field.diffusion(0.5, z).abs().max() == 0)  # g(t, 0) = 0
        True
    """

    noise: ClassVar[str] = "diagonal"

    def drift(self, t: Any, z: Tensor, x: Tensor) -> Tensor:
        g = self.gamma(t, z, x)
        return torch.tanh(g) if self.stabilizers else g

    def diffusion(self, t: Any, z: Tensor) -> Tensor:
        return self._bound_noise(self.sigma(t, z) * z)


@final
class GeometricSDE(AbstractControlledSDE):
    """GSDE: ``dz/z = γ(t, z̃(t)) dt + σ(t) dW``, i.e. ``dz = γ z dt + σ z dW``.

    The geometric stable neural SDE (Oh, Lim & Kim, ICLR 2024, §3.3): ``z(0) > 0`` implies
    ``z(t) > 0``. Here ``z(0) = softplus(Linear(X(t_0))) + 1e-4`` (as the tutorial
    notebook). Options as :class:`AbstractControlledSDE`, plus ``log_space`` and
    ``gamma_bound``.

    The drift ``γ z`` grows linearly in ``z`` (the condition for a strong solution) only
    when ``γ`` is bounded. The tutorial's pure form leaves ``γ`` unbounded; as ``γ`` itself
    grows with ``z`` the latent can then blow up in finite time (``dz ≈ a z² dt``), which
    training can run into. ``gamma_bound=b`` uses ``b · tanh(γ / b)`` instead: still
    geometric (positivity kept), with ``|γ| ≤ b``.

    With ``stabilizers=True`` the drift is the benchmark's ``tanh(γ · tanh(z))`` (option
    ``(6, 17)``), a bounded "logistic" stand-in for ``γ z``: positivity is then no longer
    guaranteed.

    Args:
        log_space: integrate ``u = log z`` instead of ``z``:
            ``du = (γ − σ²/2) dt + σ dW`` (Itô; ``du = γ dt + σ ∘ dW`` for Stratonovich).
            The noise becomes additive and ``z = exp(u)`` is positive for every step size
            (Euler–Maruyama on ``z`` itself stays positive only while
            ``1 + γ h + σ ΔW > 0``). Needs ``stabilizers=False``.
        gamma_bound: bound ``b`` of the growth rate, ``γ → b · tanh(γ / b)`` (``None``:
            unbounded, the tutorial's form). Needs ``stabilizers=False``.

    The other arguments (``input_channels``, ``hidden_channels``,
    ``hidden_hidden_channels``, ``num_layers``, ``stabilizers``) are those of
    :class:`AbstractControlledSDE`.

    Example:
        >>> import torch, hybrideq as hq
        >>> field = hq.nn.GeometricSDE(input_channels=2, hidden_channels=3).double()
        >>> bool((field.initial(-10 * torch.ones(4, 2, dtype=torch.float64)) > 0).all())
        True
    """

    noise: ClassVar[str] = "diagonal"

    def __init__(
        self,
        input_channels: int,
        hidden_channels: int,
        hidden_hidden_channels: int | None = None,
        num_layers: int = 2,
        *,
        stabilizers: bool = False,
        log_space: bool = False,
        gamma_bound: float | None = None,
    ) -> None:
        if log_space and stabilizers:
            raise ValueError(
                "log_space=True needs stabilizers=False: the stabilized drift "
                "tanh(γ·tanh(z)) is not geometric, so it has no log-space form"
            )
        if gamma_bound is not None:
            if stabilizers:
                raise ValueError(
                    "gamma_bound needs stabilizers=False: the stabilized drift "
                    "tanh(γ·tanh(z)) is bounded already"
                )
            if not gamma_bound > 0:
                raise ValueError(f"gamma_bound must be positive, got {gamma_bound}")
        super().__init__(
            input_channels,
            hidden_channels,
            hidden_hidden_channels,
            num_layers,
            stabilizers=stabilizers,
        )
        self.log_space = log_space
        self.gamma_bound = gamma_bound

    def initial(self, x0: Tensor) -> Tensor:
        return F.softplus(self.initial_network(x0)) + 1e-4

    def gamma(self, t: Any, z: Tensor, x: Tensor) -> Tensor:
        g = super().gamma(t, z, x)
        if self.gamma_bound is None:
            return g
        return self.gamma_bound * torch.tanh(g / self.gamma_bound)

    def drift(self, t: Any, z: Tensor, x: Tensor) -> Tensor:
        g = self.gamma(t, z, x)
        if self.stabilizers:
            return torch.tanh(g * torch.tanh(z))
        return g * z

    def diffusion(self, t: Any, z: Tensor) -> Tensor:
        return self._bound_noise(self.sigma(t, z) * z)

    def state_drift(self, t: Any, y: Tensor, x: Tensor, interpretation: str = "ito") -> Tensor:
        if not self.log_space:
            return self.drift(t, y, x)
        g = self.gamma(t, torch.exp(y), x)
        if interpretation == "stratonovich":
            return g
        s = self.sigma(t, y)
        return g - 0.5 * s * s  # Itô: d log z = (γ − σ²/2) dt + σ dW

    def state_diffusion(self, t: Any, y: Tensor) -> Tensor:
        return self.sigma(t, y) if self.log_space else self.diffusion(t, y)

    def to_state(self, z: Tensor) -> Tensor:
        return torch.log(z) if self.log_space else z

    def from_state(self, y: Tensor) -> Tensor:
        return torch.exp(y) if self.log_space else y

    def state_noise(self) -> str:
        return "additive" if self.log_space else "diagonal"

    def extra_repr(self) -> str:
        return (
            super().extra_repr() + f", log_space={self.log_space}, gamma_bound={self.gamma_bound}"
        )


@final
class ControlledNeuralSDE(AbstractControlledSDE):
    """The plain neural SDE baseline: ``dz = γ(t, z, X(t)) dt + σ(t, z) dW`` (diagonal).

    No stability structure: the diffusion is a network of ``(t, z)``. The drift reads the
    path like the stable fields (``use_control=True``); ``use_control=False`` gives the
    benchmark's option ``(3, 18)`` and the tutorial's "Neural SDE", whose drift sees only
    ``(t, z)``, so the data enter through ``z(0)`` alone.

    Args:
        use_control: whether the drift reads ``X(t)``.

    The other arguments are those of :class:`AbstractControlledSDE`.

    Example:
        >>> import torch, hybrideq as hq
        >>> field = hq.nn.ControlledNeuralSDE(input_channels=2, hidden_channels=3).double()
        >>> z, x = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
        >>> field.diffusion(torch.zeros(4, dtype=torch.float64), z).shape
        torch.Size([4, 3])
    """

    noise: ClassVar[str] = "diagonal"

    def __init__(
        self,
        input_channels: int,
        hidden_channels: int,
        hidden_hidden_channels: int | None = None,
        num_layers: int = 2,
        *,
        stabilizers: bool = False,
        use_control: bool = True,
    ) -> None:
        super().__init__(
            input_channels,
            hidden_channels,
            hidden_hidden_channels,
            num_layers,
            stabilizers=stabilizers,
        )
        self.use_control = use_control

    def _build_diffusion_net(
        self, n_time: int, width: int, num_layers: int, act: type[nn.Module]
    ) -> nn.Module:
        return _mlp(n_time + self.hidden_channels, width, self.hidden_channels, num_layers, act)

    def controlled(self, t: Any, z: Tensor, x: Tensor) -> Tensor:
        if self.use_control:
            return super().controlled(t, z, x)
        return self.linear_in(torch.cat([self.time_features(t, z), z], dim=-1))

    def sigma(self, t: Any, z: Tensor) -> Tensor:
        s = self.g_net(torch.cat([self.time_features(t, z), z], dim=-1))
        return F.relu(s) if self.stabilizers else s

    def drift(self, t: Any, z: Tensor, x: Tensor) -> Tensor:
        g = self.gamma(t, z, x)
        return torch.tanh(g) if self.stabilizers else g

    def diffusion(self, t: Any, z: Tensor) -> Tensor:
        return self._bound_noise(self.sigma(t, z))

    def extra_repr(self) -> str:
        return super().extra_repr() + f", use_control={self.use_control}"


# --------------------------------------------------------------------------- classifiers

_FIELDS: dict[str, type[AbstractControlledSDE]] = {
    "lsde": LangevinSDE,
    "lnsde": LinearNoiseSDE,
    "gsde": GeometricSDE,
    "sde": ControlledNeuralSDE,
}
_PATHS: dict[str, type[AbstractPath]] = {"cubic": CubicSplinePath, "hermite": HermitePath}


class ClassifierOutput(NamedTuple):
    """What :class:`SDEClassifier` and :class:`ODEClassifier` return.

    Attributes:
        logits: class scores, ``(batch, num_classes)``.
        z: the latent state at the last observation time, ``(batch, hidden_channels)``.
        sol: the full :class:`~hybrideq.Solution` of the latent equation.
        regularization: with ``regularizer=...`` among the model's solve keywords, its
            value per sample in training mode (``None`` otherwise).
    """

    logits: Tensor
    z: Tensor
    sol: Solution
    regularization: Tensor | None = None


class _PathModel(nn.Module):
    """Shared by the classifiers: the path options and the path builder."""

    def _init_path(
        self, input_channels: int, interpolation: str, append_time: bool, append_mask: bool
    ) -> int:
        if not isinstance(input_channels, int) or input_channels < 1:
            raise ValueError(f"input_channels must be a positive integer, got {input_channels!r}")
        if interpolation not in _PATHS:
            raise ValueError(
                f"interpolation must be one of {sorted(_PATHS)}, got {interpolation!r}"
            )
        self.input_channels = input_channels
        self.interpolation = interpolation
        self.append_time = append_time
        self.append_mask = append_mask
        return input_channels * (2 if append_mask else 1) + int(append_time)

    def path(self, t: Tensor, x: Tensor, mask: Tensor | None = None) -> AbstractPath:
        """The data path this model reads (same arguments as :meth:`forward`)."""
        if isinstance(x, Tensor) and x.ndim == 3 and x.shape[-1] != self.input_channels:
            raise ValueError(
                f"x has {x.shape[-1]} channels but the model was built with "
                f"input_channels = {self.input_channels}"
            )
        return _PATHS[self.interpolation](
            t, x, mask, append_time=self.append_time, append_mask=self.append_mask
        )


@final
class SDEClassifier(_PathModel):
    """Classify irregular, partly missing time series with a (stable) neural SDE.

    The observations become a path ``X`` (:class:`CubicSplinePath` by default, as the
    paper); the latent ``z`` starts at ``Linear(X(t_0))`` and follows the chosen field up to
    the last observation time; a ``Linear`` layer maps ``z(T)`` to class scores (Oh, Lim &
    Kim, ICLR 2024, §4). Fixed steps of ``dt = max(min Δt_obs, 1e-3)`` by default, as the
    paper; all samples are solved at once, each with its own Brownian path.

    Args:
        field: ``"lsde"``, ``"lnsde"``, ``"gsde"`` or ``"sde"`` (the plain baseline), or a
            field module (an :class:`AbstractControlledSDE` with ``input_channels`` equal
            to the path's channels).
        input_channels: channels of ``x``.
        hidden_channels: size of the latent state.
        num_classes: number of classes.
        hidden_hidden_channels: width of the field's networks (default ``hidden_channels``).
        num_layers: hidden layers of the field's MLPs.
        stabilizers: the benchmark's stabilizers (see :class:`AbstractControlledSDE`).
        interpolation: ``"cubic"`` (natural cubic spline) or ``"hermite"`` (causal).
        append_time: add time as a path channel.
        append_mask: add the cumulative observation counts as path channels.
        solver: SDE solver spec (default ``EM()``).
        sensealg: gradient method (default ``DirectBackprop()``; ``BacksolveAdjoint()``, or
            ``ReversibleAdjoint()`` with ``solver=ReversibleHeun()``, for memory
            independent of the number of steps).
        dt: fixed step; ``None``: :func:`paper_dt` of the observation times.
        field_kwargs: further keywords for the field named by ``field``, e.g.
            ``{"log_space": True, "gamma_bound": 1.0}`` for ``"gsde"`` or
            ``{"use_control": False}`` for ``"sde"``.
        **solve_kwargs: further keywords for :func:`hybrideq.solve`; a ``regularizer``
            (:mod:`hybrideq.regularizers`) among them is computed in training mode only
            and returned in ``out.regularization``.

    Example:
        >>> import torch, hybrideq as hq
        >>> model = hq.nn.SDEClassifier("lnsde", input_channels=2, hidden_channels=8, num_classes=3)
        >>> t = torch.linspace(0, 1, 20)
        >>> x = torch.randn(16, 20, 2)
        >>> x[torch.rand(16, 20, 2) < 0.3] = float("nan")  # 30% missing
        >>> model(t, x, seed=0).logits.shape
        torch.Size([16, 3])
    """

    def __init__(
        self,
        field: str | AbstractControlledSDE,
        input_channels: int,
        hidden_channels: int,
        num_classes: int,
        *,
        hidden_hidden_channels: int | None = None,
        num_layers: int = 2,
        stabilizers: bool = False,
        interpolation: str = "cubic",
        append_time: bool = True,
        append_mask: bool = True,
        solver: AbstractSolver | None = None,
        sensealg: AbstractSensitivityAlgorithm | None = None,
        dt: float | None = None,
        field_kwargs: dict[str, Any] | None = None,
        **solve_kwargs: Any,
    ) -> None:
        super().__init__()
        path_channels = self._init_path(input_channels, interpolation, append_time, append_mask)
        if isinstance(field, str):
            if field not in _FIELDS:
                raise ValueError(f"field must be one of {sorted(_FIELDS)}, got {field!r}")
            module = _FIELDS[field](
                path_channels,
                hidden_channels,
                hidden_hidden_channels,
                num_layers,
                stabilizers=stabilizers,
                **(field_kwargs or {}),
            )
        elif isinstance(field, AbstractControlledSDE):
            if field_kwargs:
                raise ValueError(
                    "field_kwargs apply to a field named by a string; set the options on the "
                    "field module itself"
                )
            if field.input_channels != path_channels:
                raise ValueError(
                    f"the field has input_channels = {field.input_channels} but the path has "
                    f"{path_channels} channels (input_channels {input_channels}, "
                    f"append_time={append_time}, append_mask={append_mask})"
                )
            if field.hidden_channels != hidden_channels:
                raise ValueError(
                    f"the field has hidden_channels = {field.hidden_channels}, the "
                    f"classifier {hidden_channels}; make them equal"
                )
            module = field
        else:
            raise TypeError(
                "field must be 'lsde', 'lnsde', 'gsde', 'sde' or an AbstractControlledSDE, "
                f"got {type(field).__name__}"
            )
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        if dt is not None and not dt > 0:
            raise ValueError(f"dt must be positive, got {dt}")
        self.field = module
        self.readout = nn.Linear(hidden_channels, num_classes)
        self.solver = solver if solver is not None else EM()
        self.sensealg = sensealg if sensealg is not None else DirectBackprop()
        self.dt = dt
        self.solve_kwargs = solve_kwargs

    def forward(
        self,
        t: Tensor,
        x: Tensor,
        mask: Tensor | None = None,
        *,
        seed: int | None = None,
        brownian: Any = None,
    ) -> ClassifierOutput:
        """Class scores for a batch of series.

        Args:
            t: observation times, ``(T,)`` shared or ``(batch, T)`` per sample.
            x: observations, ``(batch, T, input_channels)``; NaN where missing.
            mask: optional boolean mask, ``True`` where observed (see
                :class:`CubicSplinePath`).
            seed: seed of the Brownian paths; ``None`` draws one from torch's global
                generator, so ``torch.manual_seed`` makes runs repeatable.
            brownian: a Brownian path to reuse (``sol.W`` of an earlier call).
        """
        path = self.path(t, x, mask)
        interpretation = str(getattr(self.solver, "interpretation", "ito"))
        prob = self.field.problem(path, interpretation=interpretation)
        kwargs = dict(self.solve_kwargs)
        if self.dt is not None:
            kwargs["dt"] = self.dt
        elif _is_fixed_step(self.solver, kwargs):
            kwargs["dt"] = paper_dt(path.t)
        _noise_source(kwargs, seed, brownian)
        if not self.training:
            kwargs.pop("regularizer", None)
        saveat = prob.tspan[1].reshape(-1, 1) if prob.tspan[1].ndim else prob.tspan[1][None]
        sol = solve(prob, self.solver, saveat=saveat, sensealg=self.sensealg, **kwargs)
        z = self.field.from_state(sol.y[:, -1])
        return ClassifierOutput(self.readout(z), z, sol, sol.regularization)

    def extra_repr(self) -> str:
        return (
            f"interpolation={self.interpolation!r}, append_time={self.append_time}, "
            f"append_mask={self.append_mask}, solver={self.solver}, dt={self.dt}"
        )


def _ode_drift(t: Tensor, z: Tensor, p: tuple[Any, ...]) -> Tensor:
    field, path = p[0], p[1]
    return field.drift(t, z, path.evaluate(t))


@final
class ODEClassifier(_PathModel):
    """The neural-ODE baseline: ``dz/dt = γ(t, z, X(t))``, then ``Linear`` on ``z(T)``.

    The drift is the plain baseline's (:class:`ControlledNeuralSDE` without its noise), so
    the comparison with :class:`SDEClassifier` isolates the noise and the stability
    structure. Solved by :class:`~hybrideq.ODEProblem` and :func:`hybrideq.solve`.

    Args:
        input_channels: channels of ``x``.
        hidden_channels: size of the latent state.
        num_classes: number of classes.
        hidden_hidden_channels: width of the drift network.
        num_layers: hidden layers of the drift MLP.
        stabilizers: sin/cos time features, ReLU and a ``tanh``-clipped drift.
        interpolation: ``"cubic"`` or ``"hermite"``.
        append_time: add time as a path channel.
        append_mask: add the cumulative observation counts as path channels.
        solver: ODE solver spec (default ``Tsit5()``).
        sensealg: gradient method (default ``DirectBackprop()``).
        rtol: relative tolerance of an adaptive solve.
        atol: absolute tolerance of an adaptive solve.
        **solve_kwargs: further keywords for :func:`hybrideq.solve`; for fixed steps pass
            ``adaptive=False, dt=h`` (or an explicit fixed-step solver such as ``Euler()``
            with ``dt``). A ``regularizer`` (:mod:`hybrideq.regularizers`) among them is
            computed in training mode only and returned in ``out.regularization``.

    Example:
        >>> import torch, hybrideq as hq
        >>> model = hq.nn.ODEClassifier(input_channels=2, hidden_channels=8, num_classes=3)
        >>> out = model(torch.linspace(0, 1, 20), torch.randn(16, 20, 2))
        >>> out.logits.shape
        torch.Size([16, 3])
    """

    def __init__(
        self,
        input_channels: int,
        hidden_channels: int,
        num_classes: int,
        *,
        hidden_hidden_channels: int | None = None,
        num_layers: int = 2,
        stabilizers: bool = False,
        interpolation: str = "cubic",
        append_time: bool = True,
        append_mask: bool = True,
        solver: AbstractSolver | None = None,
        sensealg: AbstractSensitivityAlgorithm | None = None,
        rtol: float = 1e-3,
        atol: float = 1e-5,
        **solve_kwargs: Any,
    ) -> None:
        super().__init__()
        path_channels = self._init_path(input_channels, interpolation, append_time, append_mask)
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        self.field = ControlledNeuralSDE(
            path_channels,
            hidden_channels,
            hidden_hidden_channels,
            num_layers,
            stabilizers=stabilizers,
        )
        self.readout = nn.Linear(hidden_channels, num_classes)
        self.solver = solver if solver is not None else Tsit5()
        self.sensealg = sensealg if sensealg is not None else DirectBackprop()
        self.rtol, self.atol = rtol, atol
        self.solve_kwargs = solve_kwargs

    def forward(self, t: Tensor, x: Tensor, mask: Tensor | None = None) -> ClassifierOutput:
        """Class scores for a batch of series (arguments as :meth:`SDEClassifier.forward`)."""
        path = self.path(t, x, mask)
        z0 = self.field.initial(path.evaluate(path.t0))
        prob = ODEProblem(_ode_drift, z0, _span(path), (self.field, path, path.tensors()))
        t1 = prob.tspan[1]
        saveat = t1.reshape(-1, 1) if t1.ndim else t1[None]
        kwargs = dict(self.solve_kwargs)
        if not self.training:
            kwargs.pop("regularizer", None)
        sol = solve(
            prob,
            self.solver,
            saveat=saveat,
            rtol=self.rtol,
            atol=self.atol,
            sensealg=self.sensealg,
            **kwargs,
        )
        z = sol.y[:, -1]
        return ClassifierOutput(self.readout(z), z, sol, sol.regularization)

    def extra_repr(self) -> str:
        return (
            f"interpolation={self.interpolation!r}, append_time={self.append_time}, "
            f"append_mask={self.append_mask}, solver={self.solver}, rtol={self.rtol}, "
            f"atol={self.atol}"
        )
