"""XOR MLP in plain NumPy: the seed listing done right. Forward pass, backprop and optimizers, written out here.

Nothing comes from the reference (`xor_rosetta.reference`): the tests compare two independent pieces of code.
"""
from __future__ import annotations

import time

import numpy as np

from xor_rosetta.data import batch_rows
from xor_rosetta.interface import MLP, Conventions, History

# region model
ACT = {  # activation, and its derivative written in terms of the pre-activation z and the output a
    "tanh": (np.tanh, lambda z, a: 1 - a * a),
    "sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda z, a: a * (1 - a)),
    "relu": (lambda z: np.maximum(z, 0), lambda z, a: (z > 0).astype(z.dtype)),  # 0 at the kink
    "linear": (lambda z: z, lambda z, a: np.ones_like(z)),
}


def forward(Ws, bs, acts, x):
    """Pre-activations and activations of every layer: zs[i] (batch, layers[i+1]), hs[0] = x (batch, 2)."""
    zs, hs = [], [x]
    for W, b, act in zip(Ws, bs, acts):
        zs.append(hs[-1] @ W + b)  # (batch, fan_out)
        hs.append(ACT[act][0](zs[-1]))
    return zs, hs
# endregion


# region loss
def loss_and_dz(loss, act, z, a, y):
    """The mean loss, and d loss / d z at the output layer (batch, 1); `act` is the output activation."""
    m = y.size  # mean over batch and outputs
    if loss == "mse":
        return np.mean((a - y) ** 2), 2 * (a - y) / m * ACT[act][1](z, a)
    bce = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))  # BCE of sigmoid(z), computed from z
    return np.mean(bce), (a - y) / m  # sigmoid and BCE together: dL/dz = (a - y) / m
# endregion


# region optimizer
class SGD:
    """w -= lr * v, with v = momentum * v + g (plain SGD when momentum is 0): torch's form of momentum. Keras keeps
    v = momentum * v - lr * g and w += v, equal but for rounding (results/maths.md)."""

    def __init__(self, params, lr, momentum=0.0):
        self.lr, self.mu, self.v = lr, momentum, [np.zeros_like(p) for p in params]

    def step(self, params, grads):
        for p, g, v in zip(params, grads, self.v):
            if self.mu:
                v[...] = self.mu * v + g
                g = v
            p -= self.lr * g


class Adam:
    """Kingma & Ba's Adam as written: bias-corrected moments, epsilon added outside the square root. torch and Keras
    place epsilon and the bias correction differently (results/maths.md)."""

    def __init__(self, params, lr, beta1, beta2, epsilon):
        self.lr, self.b1, self.b2, self.eps, self.t = lr, beta1, beta2, epsilon, 0
        self.m, self.v = [np.zeros_like(p) for p in params], [np.zeros_like(p) for p in params]

    def step(self, params, grads):
        self.t += 1
        for p, g, m, v in zip(params, grads, self.m, self.v):
            m[...] = (1 - self.b1) * g + self.b1 * m  # running mean of the gradient
            v[...] = (1 - self.b2) * (g * g) + self.b2 * v  # ... and of its square
            m_hat, v_hat = m / (1 - self.b1 ** self.t), v / (1 - self.b2 ** self.t)
            p -= self.lr * (m_hat / (np.sqrt(v_hat) + self.eps))
# endregion


# region step
def backprop(Ws, bs, acts, loss, x, y):
    """(loss, dWs, dbs): the chain rule, from the output layer back to the first."""
    zs, hs = forward(Ws, bs, acts, x)
    value, dz = loss_and_dz(loss, acts[-1], zs[-1], hs[-1], y)  # dz: (batch, 1)
    dWs, dbs = [None] * len(Ws), [None] * len(Ws)
    for i in reversed(range(len(Ws))):
        dWs[i] = hs[i].T @ dz  # (fan_in, fan_out)
        dbs[i] = dz.sum(axis=0)  # (fan_out,)
        if i:
            dz = (dz @ Ws[i].T) * ACT[acts[i - 1]][1](zs[i - 1], hs[i])  # (batch, fan_in)
    return value, dWs, dbs


def train_step(Ws, bs, acts, loss, optimizer, x, y):
    """One update, in place: gradients by backprop, then the optimizer's step. Returns the loss before it."""
    value, dWs, dbs = backprop(Ws, bs, acts, loss, x, y)
    optimizer.step(Ws + bs, dWs + dbs)
    return value
# endregion


class NumpyMLP(MLP):
    """The suite's interface around the functions above: weights in the canonical layout, the loop, the losses."""
    name = "numpy"
    framework = "numpy"
    conventions = Conventions(adam="textbook", momentum="torch", bce="logits")  # the textbook forms (README)

    def __init__(self, spec, params):
        super().__init__(spec, params)
        self.Ws = [np.array(W, dtype=spec.dtype) for W, _ in params]  # (fan_in, fan_out), as canonical
        self.bs = [np.array(b, dtype=spec.dtype) for _, b in params]  # (fan_out,)
        o = spec.optimizer
        if o.name == "adam":
            self.optimizer = Adam(self.Ws + self.bs, o.lr, o.beta1, o.beta2, o.epsilon)
        else:
            self.optimizer = SGD(self.Ws + self.bs, o.lr, o.momentum)

    # region loop
    def train(self, x, y, steps=None, checkpoints=()):
        spec, want = self.spec, set(checkpoints)
        steps = spec.steps if steps is None else steps
        x, y = x.astype(spec.dtype), y.astype(spec.dtype)
        b = spec.batch_for(len(x))
        losses, saved, start = np.empty(steps), {}, time.perf_counter()
        for k in range(steps):
            rows = batch_rows(self.steps_done, b, len(x))  # full batch: every row, every step
            losses[k] = train_step(self.Ws, self.bs, spec.activations, spec.loss, self.optimizer, x[rows], y[rows])
            self.steps_done += 1
            if k + 1 in want:
                saved[k + 1] = self.params()
        return History(losses, saved, time.perf_counter() - start)
    # endregion

    def forward(self, x):
        return forward(self.Ws, self.bs, self.spec.activations, x.astype(self.spec.dtype))[1][-1]  # (batch, 1)

    def loss(self, x, y):
        return float(self._backprop(x, y)[0])

    def gradients(self, x, y):
        _, dWs, dbs = self._backprop(x, y)
        return list(zip(dWs, dbs))

    def params(self):
        return [(W.astype(np.float64), b.astype(np.float64)) for W, b in zip(self.Ws, self.bs)]

    def _backprop(self, x, y):
        dt = self.spec.dtype
        return backprop(self.Ws, self.bs, self.spec.activations, self.spec.loss, x.astype(dt), y.astype(dt))
