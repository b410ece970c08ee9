"""The interface every implementation satisfies, and what training returns."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar, Iterable

import numpy as np

from .params import Params
from .spec import Spec


@dataclass(frozen=True)
class Conventions:
    """Where frameworks' native maths differ, which form an implementation uses (see README)."""
    adam: str = "torch"  # "torch": eps added to sqrt(v_hat) | "keras": eps-hat, bias correction folded into lr
    momentum: str = "torch"  # "torch": v = mu*v + g; w -= lr*v | "keras": v = mu*v - lr*g; w += v
    bce: str = "probs"  # "probs": log of sigmoid outputs, clamped at -100 (torch BCELoss) | "logits": from z (Keras fit)


@dataclass
class History:
    loss: np.ndarray  # (steps,) float64: the loss of each step's batch, before that step's update
    checkpoints: dict[int, Params] = field(default_factory=dict)  # k -> canonical params after k updates
    wall_time: float = 0.0  # seconds spent in train()


class MLP(ABC):
    """One framework's XOR MLP: built from a spec and canonical params, speaking canonical layouts."""
    name: ClassVar[str]  # registry key, e.g. "torch"
    framework: ClassVar[str]  # the package whose version is reported, e.g. "torch"
    conventions: ClassVar[Conventions] = Conventions()

    def __init__(self, spec: Spec, params: Params):
        self.spec = spec

    @abstractmethod
    def forward(self, x: np.ndarray) -> np.ndarray:
        """(batch, 2) -> (batch, 1) network outputs (after the output activation)."""

    @abstractmethod
    def loss(self, x: np.ndarray, y: np.ndarray) -> float:
        """The spec's loss on (x, y), reduced by mean."""

    @abstractmethod
    def gradients(self, x: np.ndarray, y: np.ndarray) -> Params:
        """d loss / d params, in the canonical layout [(dW (in, out), db (out,)), ...]."""

    @abstractmethod
    def train(self, x: np.ndarray, y: np.ndarray, checkpoints: Iterable[int] = ()) -> History:
        """Run spec.steps updates over the batches of shared.data.batch_rows."""

    @abstractmethod
    def params(self) -> Params:
        """Current parameters, canonical layout, as float64 NumPy arrays."""
