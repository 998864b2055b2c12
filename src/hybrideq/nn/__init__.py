"""Neural differential equations as ``torch.nn.Module``s."""

from hybrideq.nn._neural_ode import NeuralODE

__all__ = ["NeuralODE"]
