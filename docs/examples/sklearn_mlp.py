"""scikit-learn's MLPRegressor behind xor-rosetta's MLP interface, the worked example of docs/verify.md:
`SklearnMLP` as first written, passing on scikit-learn's loss and gradients as they are, and `SklearnMLPFixed`,
corrected after `xor-rosetta verify` diagnosed the first."""
from __future__ import annotations

import numpy as np
from sklearn.neural_network import MLPRegressor

from xor_rosetta.data import batch_rows
from xor_rosetta.interface import History

ACTIVATION = {"tanh": "tanh", "sigmoid": "logistic", "relu": "relu", "linear": "identity"}


class SklearnMLP:
    # MLPRegressor: one activation for every hidden layer, an identity output, squared error
    supports = {"losses": ["mse"], "output_activations": ["linear"], "uniform_hidden_activations": True}
    scale = 1.0  # scikit-learn's loss and gradients, times this, are the interface's

    def __init__(self, spec, params):
        self.spec, self.steps_done = spec, 0
        o = spec.optimizer
        if o.name == "adam":  # Adam is blind to a gradient's scale but for epsilon: scale that instead
            solver = dict(solver="adam", learning_rate_init=o.lr, beta_1=o.beta1, beta_2=o.beta2,
                          epsilon=o.epsilon / self.scale)
        else:  # plain SGD, or momentum (v = mu * v - lr * g; w += v), with the gradient's scale in lr
            solver = dict(solver="sgd", learning_rate_init=o.lr * self.scale, momentum=o.momentum,
                          nesterovs_momentum=False, learning_rate="constant")
        self.model = MLPRegressor(hidden_layer_sizes=spec.layers[1:-1], activation=ACTIVATION[spec.activations[0]],
                                  alpha=0.0, shuffle=False, **solver)  # alpha: no L2 penalty
        self.model._random_state = np.random.RandomState(0)
        self.model._initialize(np.zeros((1, 1)), list(spec.layers), np.dtype(spec.dtype))  # then our weights:
        self.model.coefs_ = [np.array(W, dtype=spec.dtype) for W, _ in params]  # (fan_in, fan_out), canonical
        self.model.intercepts_ = [np.array(b, dtype=spec.dtype) for _, b in params]

    def _backprop(self, x, y):
        m = self.model
        x, y = np.asarray(x, self.spec.dtype), np.asarray(y, self.spec.dtype).reshape(-1, 1)
        acts = [x] + [None] * (len(self.spec.layers) - 1)
        grads_W = [np.empty_like(W) for W in m.coefs_]
        grads_b = [np.empty_like(b) for b in m.intercepts_]
        loss, grads_W, grads_b = m._backprop(x, y, None, acts, [None] * len(m.coefs_), grads_W, grads_b)
        return loss * self.scale, [(gW * self.scale, gb * self.scale) for gW, gb in zip(grads_W, grads_b)]

    def forward(self, x):
        return self.model.predict(np.asarray(x, self.spec.dtype)).reshape(-1, 1)

    def loss(self, x, y):
        return self._backprop(x, y)[0]

    def gradients(self, x, y):
        return self._backprop(x, y)[1]

    def train(self, x, y, steps=None, checkpoints=()):
        steps = self.spec.steps if steps is None else steps
        x, y = np.asarray(x, self.spec.dtype), np.asarray(y, self.spec.dtype).ravel()
        b, losses, saved = self.spec.batch_for(len(x)), np.empty(steps), {}
        for k in range(steps):
            rows = batch_rows(self.steps_done, b, len(x))
            self.model.partial_fit(x[rows], y[rows])  # one update on these rows
            losses[k] = self.model.loss_ * self.scale  # the batch's loss, before the update
            self.steps_done += 1
            if k + 1 in checkpoints:
                saved[k + 1] = self.params()
        return History(losses, saved)

    def params(self):
        return [(W.astype(np.float64), b.astype(np.float64)) for W, b in zip(self.model.coefs_,
                                                                             self.model.intercepts_)]


class SklearnMLPFixed(SklearnMLP):
    """scikit-learn's squared error is ½·mean((y − p)²), and its gradient half the interface's MSE's: doubled."""
    scale = 2.0
