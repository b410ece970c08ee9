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
    """Where frameworks' native maths differ, which form an implementation uses (README, "Where frameworks differ").

    The reference (`xor_rosetta.reference`) writes out every form, one function each; `reference.FORMS` lists them.
    """
    adam: str = "torch"  # "torch": eps added to sqrt(v_hat) | "keras": eps added to sqrt(v), the bias correction
    #                      folded into the step size | "optax": Kingma & Ba's m_hat / (sqrt(v_hat) + eps), rounded as
    #                      optax under XLA | "keras-torch": Keras' step size with torch's foreach moments |
    #                      "textbook": the same maths as optax, each bias correction a division (NumPy)
    momentum: str = "torch"  # "torch": v = mu*v + g; w -= lr*v (also optax) | "keras": v = mu*v - lr*g; w += v
    bce: str = "probs"  # "probs": log of sigmoid outputs, clamped at -100 (torch BCELoss) | "logits": from z (Keras
    #                     fit on TensorFlow) | "optax": log_sigmoid of z | "keras-jax": p clipped to [1e-7, 1-1e-7],
    #                     then log | "keras-torch": p clipped, then torch's BCELoss

    def to_dict(self) -> dict:
        return {"adam": self.adam, "momentum": self.momentum, "bce": self.bce}

    def used_by(self, spec: Spec) -> "Conventions":
        """These conventions with the forms `spec` never reaches set to the defaults: the reference (which reads a
        form only where the spec uses it) computes the same run for both, so runs that differ only there share it."""
        o, d = spec.optimizer, Conventions()
        return Conventions(adam=self.adam if o.name == "adam" else d.adam,
                           momentum=self.momentum if o.name == "sgd" and o.momentum else d.momentum,
                           bce=self.bce if spec.loss == "bce" else d.bce)


@dataclass
class History:
    loss: np.ndarray  # (steps,) float64: the loss of each step's batch, before that step's update
    checkpoints: dict[int, Params] = field(default_factory=dict)  # k -> canonical params after k updates of this call
    wall_time: float = 0.0  # seconds spent in train()


class MLP(ABC):
    """One framework's XOR MLP: built from a spec and canonical params, speaking canonical layouts.

    The training contract: `train` continues from the current parameters and optimizer state. Two calls of n and
    m steps do exactly what one call of n + m steps does, bit for bit: Adam's step count, the momentum buffers
    and the minibatch window (`xor_rosetta.data.batch_rows`) all carry on. `steps_done` counts the updates so far.
    """
    name: ClassVar[str]  # registry key, e.g. "torch"
    framework: ClassVar[str]  # the package whose version is reported, e.g. "torch"
    conventions: ClassVar[Conventions] = Conventions()
    # dtype -> a known difference that no supported setting of its framework removes: "float64" -> "LABEL: why",
    # for float32 arithmetic inside a float64 run (Keras on JAX and torch). The difference is modelled, not failed:
    # the run is judged by float32's tolerances against the float64 reference, with the rounding floor of float32
    # arithmetic inside the run (`reference.float32_inside_floor`) as its noise, and the verdict names it:
    # "agrees (float32 inside: LABEL)". Anything else wrong, or the difference grown past that size, still
    # DISAGREES; `--strict` fails it. tests/test_keras_backends.py asserts it is still there, at its measured size.
    known_differences: ClassVar[dict[str, str]] = {}

    def __init__(self, spec: Spec, params: Params):
        self.spec = spec
        self.steps_done = 0  # updates applied so far, over every train() call

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
    def train(self, x: np.ndarray, y: np.ndarray, steps: int | None = None, checkpoints: Iterable[int] = ()) -> History:
        """Run `steps` updates (default spec.steps), continuing where the last call stopped (see the class docstring).

        Update k of this call (1-based) uses the rows `batch_rows(steps_done + k - 1, ...)`; `checkpoints` name
        updates of this call, and History.checkpoints[k] holds the params after the k-th.
        """

    @abstractmethod
    def params(self) -> Params:
        """Current parameters, canonical layout, as float64 NumPy arrays."""
