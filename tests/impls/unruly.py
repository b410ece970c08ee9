"""Targets of `xor-rosetta verify` that misbehave in one way each (exit, crash, hang, print, write into the spec,
return complex numbers or live buffers): verify must contain them (tests/test_verify_containment.py)."""
from __future__ import annotations

import os
import sys
import time

import numpy as np

from xor_rosetta.implementations.numpy_mlp import NumpyMLP


class ExitInForward(NumpyMLP):
    def forward(self, x):
        sys.exit(0)


class ExitThreeInForward(NumpyMLP):
    def forward(self, x):
        sys.exit(3)


class ExitInInit(NumpyMLP):
    conventions = None  # nothing declared: verify would detect the forms, if anything could be computed

    def __init__(self, spec, params):
        sys.exit(0)


class OsExitInTrain(NumpyMLP):
    def train(self, x, y, steps=None, checkpoints=()):
        os._exit(0)


class SegfaultInTrain(NumpyMLP):
    def train(self, x, y, steps=None, checkpoints=()):
        import resource
        import signal
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file
        os.kill(os.getpid(), signal.SIGSEGV)


class HangInTrain(NumpyMLP):
    def train(self, x, y, steps=None, checkpoints=()):
        while True:
            time.sleep(0.2)


class Prints(NumpyMLP):
    def __init__(self, spec, params):
        print("Prints: built")
        super().__init__(spec, params)

    def forward(self, x):
        print("Prints: forward")
        return super().forward(x)


class WritesTheSpec(NumpyMLP):
    """Writes lr = 5 into the frozen spec it is given, then trains with it: the reference must not read that."""
    def __init__(self, spec, params):
        object.__setattr__(spec.optimizer, "lr", 5.0)
        super().__init__(spec, params)


class ComplexForward(NumpyMLP):
    """The right outputs, as complex numbers with an imaginary part."""
    def forward(self, x):
        return super().forward(x) + 1j


class LiveParams(NumpyMLP):
    """params() hands back its own buffers, which training then changes in place."""
    def params(self):
        return list(zip(self.Ws, self.bs))
