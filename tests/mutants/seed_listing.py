"""The seed article's NumPy listing (../shared/seed/000_8cff55d0b59de141.txt, section 4.1), repaired just enough to
run, with its update bug kept: only W2 and b2 are ever updated.

The listing does not run as printed. Repaired, each the least that makes it run as the network the preset
seed-numpy reads from it (2-5-1, tanh then linear, MSE, SGD at lr 0.1):
- `m`, the number of rows, is never defined: here m = X.shape[0];
- its forward pass runs the weights twice over with shapes that do not fit ((4, 1) @ (2, 5)): here
  A1 = tanh(X·W1 + b1), Y_pred = A1·W2 + b2;
- dW2 = dot(dY_dZ1, A2.T) is (4, 4) and db2 sums the wrong axis: here dW2 = A1.T·dY / m, db2 = sum over rows / m,
  with dY = dL/dY_pred = 2(Y_pred − Y) (the listing's tanh′ factor belonged to its garbled output, not to a linear
  one);
- it adds the gradient (`W2 += learning_rate * dW2`), which climbs the loss: here it is subtracted;
- its loop body is printed twice per iteration: here one body is one step.
Kept: W1 and b1 get no gradient and are never updated. `gradients()` reports what the listing computes, so W1 and
b1 come back as zero.
"""
from __future__ import annotations

import numpy as np

from xor_rosetta.data import batch_rows
from xor_rosetta.interface import History


class SeedListingMLP:
    name = "seed-listing"
    supports = {"dtypes": ("float64",), "optimizers": ("sgd",), "losses": ("mse",), "activations": ("tanh",),
                "output_activations": ("linear",), "hidden_layers": (1,)}  # what the listing's code can do

    def __init__(self, spec, params):
        (W1, b1), (W2, b2) = params
        self.W1, self.W2 = W1.copy(), W2.copy()  # (2, hidden), (hidden, 1)
        self.b1, self.b2 = b1.reshape(1, -1).copy(), b2.reshape(1, -1).copy()  # the listing's (1, hidden), (1, 1)
        self.learning_rate = spec.optimizer.lr
        self.spec, self.steps_done = spec, 0

    def _forward(self, X):
        XW1 = np.dot(X, self.W1) + self.b1
        A1 = np.tanh(XW1)
        Y_pred = np.dot(A1, self.W2) + self.b2
        return A1, Y_pred

    def _backward(self, X, Y):
        m = X.shape[0]
        A1, Y_pred = self._forward(X)
        dL_dY = 2 * (Y_pred - Y)
        dW2 = (1 / m) * np.dot(A1.T, dL_dY)
        db2 = (1 / m) * np.sum(dL_dY, axis=0, keepdims=True)
        return np.mean((Y_pred - Y) ** 2), dW2, db2

    def train(self, X, Y, steps=None, checkpoints=()):
        steps = self.spec.steps if steps is None else steps
        b = self.spec.batch_for(len(X))
        losses, saved = np.empty(steps), {}
        for i in range(steps):
            rows = batch_rows(self.steps_done, b, len(X))
            losses[i], dW2, db2 = self._backward(X[rows], Y[rows])
            # 更新权重和偏置 (update the weights and biases): only these two, as in the listing
            self.W2 -= self.learning_rate * dW2
            self.b2 -= self.learning_rate * db2
            self.steps_done += 1
            if i + 1 in checkpoints:
                saved[i + 1] = self.params()
        return History(losses, saved)

    def forward(self, X):
        return self._forward(X)[1]

    def loss(self, X, Y):
        return float(self._backward(X, Y)[0])

    def gradients(self, X, Y):
        _, dW2, db2 = self._backward(X, Y)
        return [(np.zeros_like(self.W1), np.zeros(self.b1.size)), (dW2, db2.reshape(-1))]

    def params(self):
        return [(self.W1.copy(), self.b1.reshape(-1).copy()), (self.W2.copy(), self.b2.reshape(-1).copy())]
