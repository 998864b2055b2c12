"""Neural differential equations as ``torch.nn.Module``s."""

from hybrideq.nn._neural_ode import NeuralODE
from hybrideq.nn._neural_sde import (
    AbstractControlledSDE,
    ClassifierOutput,
    ControlledNeuralSDE,
    GeometricSDE,
    LangevinSDE,
    LinearNoiseSDE,
    LipSwish,
    NeuralSDE,
    NeuralSDEOutput,
    ODEClassifier,
    SDEClassifier,
    paper_dt,
)
from hybrideq.nn._paths import AbstractPath, CubicSplinePath, HermitePath
from hybrideq.nn._ude import RBF, UDE

__all__ = [
    "RBF",
    "UDE",
    "AbstractControlledSDE",
    "AbstractPath",
    "ClassifierOutput",
    "ControlledNeuralSDE",
    "CubicSplinePath",
    "GeometricSDE",
    "HermitePath",
    "LangevinSDE",
    "LinearNoiseSDE",
    "LipSwish",
    "NeuralODE",
    "NeuralSDE",
    "NeuralSDEOutput",
    "ODEClassifier",
    "SDEClassifier",
    "paper_dt",
]
