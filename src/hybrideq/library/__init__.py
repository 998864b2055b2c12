"""Standard test problems, each returning an :class:`~hybrideq.ODEProblem`."""

from hybrideq.library._nonstiff import exponential_decay, linear_system, lorenz

__all__ = ["exponential_decay", "linear_system", "lorenz"]
