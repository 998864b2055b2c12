"""The torch engine: native PyTorch integration, batched, per-sample, differentiable."""

from hybrideq.engines.torch._engine import SolveOptions, gradient_parameters, solve_ode

__all__ = ["SolveOptions", "gradient_parameters", "solve_ode"]
