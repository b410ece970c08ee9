"""XOR MLP in plain NumPy: hand-written forward pass, backprop and optimizers (shared.reference)."""
from __future__ import annotations

import time

import numpy as np

from shared import reference
from shared.data import batch_rows
from shared.interface import MLP, Conventions, History


class NumpyMLP(MLP):
    name = "numpy"
    framework = "numpy"

    def __init__(self, spec, params, conventions: Conventions = Conventions()):
        super().__init__(spec, params)
        self.conventions = conventions  # the reference takes on each framework's convention
        self.arrays = [np.array(a, dtype=spec.dtype) for Wb in params for a in Wb]  # [W0, b0, W1, b1, ...]

    def forward(self, x):
        return reference.forward(self.spec, self.arrays, x.astype(self.spec.dtype))[1][-1]  # (batch, 1)

    def loss(self, x, y):
        return self._loss_and_grads(x, y)[0]

    def gradients(self, x, y):
        g = self._loss_and_grads(x, y)[1]
        return [(g[i], g[i + 1]) for i in range(0, len(g), 2)]

    def train(self, x, y, checkpoints=()):
        spec, want = self.spec, set(checkpoints)
        x, y = x.astype(spec.dtype), y.astype(spec.dtype)
        opt = reference.Optimizer(spec.optimizer, self.conventions, self.arrays)
        losses, saved = np.empty(spec.steps), {}
        start = time.perf_counter()
        b = spec.batch_for(len(x))
        for step in range(spec.steps):
            rows = slice(None) if b == len(x) else batch_rows(step, b, len(x))
            losses[step], grads = reference.loss_and_gradients(spec, self.conventions, self.arrays, x[rows], y[rows])
            opt.step(self.arrays, grads)
            if step + 1 in want:
                saved[step + 1] = self.params()
        return History(losses, saved, time.perf_counter() - start)

    def params(self):
        a = [np.array(v, dtype=np.float64) for v in self.arrays]
        return [(a[i], a[i + 1]) for i in range(0, len(a), 2)]

    def _loss_and_grads(self, x, y):
        x, y = x.astype(self.spec.dtype), y.astype(self.spec.dtype)
        return reference.loss_and_gradients(self.spec, self.conventions, self.arrays, x, y)
