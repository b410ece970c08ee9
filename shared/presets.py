"""Named experiment specs taken from the seed article's two listings."""
from __future__ import annotations

from .errors import SpecError
from .spec import Init, Optimizer, Spec

SEED_KERAS_INIT_SEED = 0  # converges with 1,000 Adam steps; see README "seed-keras" for how often seeds do

PRESETS: dict[str, Spec] = {
    # The NumPy listing, done right: 2-5-1, tanh then linear, MSE, SGD lr 0.1, 10,000 full-batch steps.
    "seed-numpy": Spec(
        layers=(2, 5, 1), activations=("tanh", "linear"), loss="mse",
        optimizer=Optimizer("sgd", lr=0.1), steps=10_000, init=Init("seed-uniform", seed=1),
    ),
    # The Keras listing: 2-5-5-1, relu relu sigmoid, BCE, Adam lr 1e-3 (Keras defaults), 1,000 epochs
    # of 4 rows (its batch_size=10 exceeds the data, so full batch), glorot-uniform init.
    "seed-keras": Spec(
        layers=(2, 5, 5, 1), activations=("relu", "relu", "sigmoid"), loss="bce",
        optimizer=Optimizer("adam", lr=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-7), steps=1_000,
        init=Init("glorot-uniform", seed=SEED_KERAS_INIT_SEED),
    ),
}


def get_preset(name: str) -> Spec:
    try:
        return PRESETS[name]
    except KeyError:
        raise SpecError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}") from None
