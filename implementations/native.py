"""Each framework's own defaults: the initial weights its layers draw, and its Adam epsilon.

`xor-rosetta sweep --native-defaults` trains every implementation from the weights its own framework would give
it, instead of the spec's canonical init. The draw runs in the implementation's worker process (the framework is
imported there anyway), seeded, with the framework's default dtype (float32: the values a user gets; they are
exact in float64), and the weights come back in the canonical layout (W (in, out), b (out,)) to be saved as .npz,
so that every run can be replayed with `xor-rosetta compare --config ... --init ...`.

    torch: torch.manual_seed(seed), then nn.Linear per layer: kaiming-uniform(a=√5) weights, U(±1/√fan_in), and
           a uniform bias, U(±1/√fan_in); Adam epsilon 1e-8
    keras: keras.utils.set_random_seed(seed), then Dense per layer: glorot-uniform, U(±√(6/(fan_in+fan_out))),
           and a zero bias; Adam epsilon 1e-7
    flax:  nnx.Linear(..., rngs=nnx.Rngs(seed)) per layer: lecun-normal, truncated N(0, 1/fan_in), and a zero
           bias; optax's Adam epsilon 1e-8

An implementation's family is named by its class's `framework` (keras-jax and keras-torch are Keras: their
weights are drawn by Keras on their own backend, in their own worker). NumPy has no defaults of its own.
"""
from __future__ import annotations

import numpy as np

from xor_rosetta.params import Params
from xor_rosetta.spec import Spec

FAMILY_OF_FRAMEWORK = {"torch": "torch", "keras": "keras", "jax": "flax", "flax": "flax"}
EPSILON = {"torch": 1e-8, "keras": 1e-7, "flax": 1e-8}  # torch.optim.Adam, keras.optimizers.Adam, optax.adam


def family(cls) -> str | None:
    """The defaults that apply to an implementation class (None: it has no framework defaults)."""
    return FAMILY_OF_FRAMEWORK.get(getattr(cls, "framework", ""))


def draw(fam: str, spec: Spec, seed: int) -> Params:
    """The framework's own initial weights for the spec's layers, seeded by `seed`, canonical layout, float64."""
    return {"torch": _torch, "keras": _keras, "flax": _flax}[fam](spec, seed)


def _torch(spec: Spec, seed: int) -> Params:
    import torch
    from torch import nn
    torch.manual_seed(seed)
    layers = [nn.Linear(i, o) for i, o in zip(spec.layers, spec.layers[1:])]  # kaiming-uniform(a=√5), uniform bias
    return [(lin.weight.detach().double().numpy().T.copy(), lin.bias.detach().double().numpy().copy())
            for lin in layers]  # torch (out, in) -> canonical (in, out)


def _keras(spec: Spec, seed: int) -> Params:
    import keras
    keras.utils.set_random_seed(seed)  # also resets Keras' global seed generator: the same seed, the same weights
    model = keras.Sequential([keras.Input((spec.layers[0],))] +
                             [keras.layers.Dense(n, activation=a) for n, a in zip(spec.layers[1:], spec.activations)])
    return [tuple(np.asarray(w, dtype=np.float64) for w in layer.get_weights()) for layer in model.layers]


def _flax(spec: Spec, seed: int) -> Params:
    from flax import nnx
    rngs = nnx.Rngs(seed)
    layers = [nnx.Linear(i, o, rngs=rngs) for i, o in zip(spec.layers, spec.layers[1:])]  # lecun-normal, zero bias
    return [(np.asarray(lin.kernel.value, dtype=np.float64), np.asarray(lin.bias.value, dtype=np.float64))
            for lin in layers]
