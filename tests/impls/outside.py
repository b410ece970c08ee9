"""Outside implementations for `compare` and `train` (tests/test_outside.py): correct in Keras' Adam form without
declaring it, the same declaring torch's form (a contradiction), and one that supports ReLU hidden layers only."""
from __future__ import annotations

import math

import numpy as np

from xor_rosetta.implementations.numpy_mlp import NumpyMLP
from xor_rosetta.interface import Conventions


class KerasAdam:
    """keras.optimizers.Adam: epsilon added to sqrt(v), the bias correction folded into the step size."""

    def __init__(self, params, o):
        self.o, self.t = o, 0
        self.m, self.v = [np.zeros_like(p) for p in params], [np.zeros_like(p) for p in params]

    def step(self, params, grads):
        self.t += 1
        o = self.o
        alpha = o.lr * math.sqrt(1 - o.beta2 ** self.t) / (1 - o.beta1 ** self.t)
        for p, g, m, v in zip(params, grads, self.m, self.v):
            m += (g - m) * (1 - o.beta1)
            v += (g * g - v) * (1 - o.beta2)
            p -= (m * alpha) / (np.sqrt(v) + o.epsilon)


class KerasAdamUndeclared(NumpyMLP):
    name = "keras-adam-undeclared"
    conventions = None  # declares nothing: compare must detect Keras' form

    def __init__(self, spec, params):
        super().__init__(spec, params)
        if spec.optimizer.name == "adam":
            self.optimizer = KerasAdam(self.Ws + self.bs, spec.optimizer)


class KerasAdamDeclaredTorch(KerasAdamUndeclared):
    name = "keras-adam-declared-torch"
    conventions = Conventions(adam="torch", momentum="torch", bce="logits")  # wrong: it computes Keras' form


class ReluOnly(NumpyMLP):
    name = "relu-only"
    conventions = None
    supports = {"activations": ["relu"], "output_activations": ["linear", "sigmoid"]}


class _Strict(NumpyMLP):
    """Raises ValueError on a spec outside what it declares: verify must never give it one."""
    conventions = None

    def __init__(self, spec, params):
        from xor_rosetta.checks.subject import subject_for
        why = subject_for(type(self)).unsupported(spec)
        if why is not None:
            raise ValueError(f"given a spec it declares it does not support: {why}")
        super().__init__(spec, params)


class UniformOnly(_Strict):
    supports = {"uniform_hidden_activations": True}


class WideOnly(_Strict):
    supports = {"min_width": 3}


class ByOutput(_Strict):
    supports = {"losses_by_output": {"linear": ["mse"], "sigmoid": ["bce"]}}


class NoMomentum(NumpyMLP):
    """Declines momentum in its constructor."""
    conventions = None

    def __init__(self, spec, params):
        if spec.optimizer.momentum:
            from xor_rosetta.errors import Unsupported
            raise Unsupported("no momentum here")
        super().__init__(spec, params)
