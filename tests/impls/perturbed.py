"""numpy with a learning rate one part in 10^6 off the spec's: `compare` must call it DISAGREES (tests/test_cli.py)."""
from dataclasses import replace

from xor_rosetta.implementations.numpy_mlp import NumpyMLP


class NumpyLrOff(NumpyMLP):
    name = "numpy-lr-off"

    def __init__(self, spec, params):
        o = spec.optimizer
        super().__init__(spec.replace(optimizer=replace(o, lr=o.lr * (1 + 1e-6))), params)
