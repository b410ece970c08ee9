"""The reference maths in plain NumPy: forward pass, losses, backprop and optimizers.

Where frameworks' native semantics differ, each form is written out and chosen by `Conventions`,
so every implementation can be checked against the reference in its own convention.
"""
from __future__ import annotations

import math

import numpy as np

from .interface import Conventions
from .spec import Optimizer as OptimizerSpec, Spec

LOG_CLAMP = -100.0  # torch.nn.BCELoss clamps log(p) and log(1-p) at -100
BCE_GRAD_EPS = float(np.float32(1e-12))  # torch's BCE backward divides by max(p*(1-p), eps): eps is a float32
# 1e-12 (9.99999996e-13) even in float64, found by the property tests: 4e-9 relative in saturated gradients


def activate(name: str, z: np.ndarray) -> np.ndarray:
    if name == "tanh":
        return np.tanh(z)
    if name == "sigmoid":
        with np.errstate(over="ignore"):
            return 1 / (1 + np.exp(-z))
    if name == "relu":
        return np.maximum(z, 0)
    return z  # linear


def activate_grad(name: str, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """d a / d z, written in terms of the output `a` where frameworks do so."""
    if name == "tanh":
        return 1 - a * a
    if name == "sigmoid":
        return a * (1 - a)
    if name == "relu":
        return (z > 0).astype(z.dtype)  # 0 at the kink, as torch and TF do
    return np.ones_like(z)


def forward(spec: Spec, arrays: list[np.ndarray], x: np.ndarray) -> tuple[list, list]:
    """Pre-activations zs and activations acts (acts[0] = x); arrays = [W0, b0, W1, b1, ...]."""
    zs, acts = [], [x]  # acts[i]: (batch, layers[i])
    for i, act in enumerate(spec.activations):
        W, b = arrays[2 * i], arrays[2 * i + 1]
        zs.append(acts[-1] @ W + b)  # (batch, layers[i+1])
        acts.append(activate(act, zs[-1]))
    return zs, acts


def loss_and_dz(spec: Spec, conv: Conventions, z: np.ndarray, a: np.ndarray, y: np.ndarray):
    """The loss, and d loss / d z at the output layer."""
    m = y.size  # mean over batch and outputs
    if spec.loss == "mse":
        d = a - y
        return float(np.mean(d * d)), (2 * d / m) * activate_grad(spec.activations[-1], z, a)
    if conv.bce == "logits":  # Keras fit: sigmoid_cross_entropy_with_logits on the recovered logits
        loss = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
        return float(np.mean(loss)), (a - y) / m
    with np.errstate(divide="ignore"):  # torch BCELoss on probabilities
        log_a, log_1a = np.maximum(np.log(a), LOG_CLAMP), np.maximum(np.log(1 - a), LOG_CLAMP)
    loss = -(y * log_a + (1 - y) * log_1a)
    da = (a - y) / np.maximum(a * (1 - a), BCE_GRAD_EPS) / m
    return float(np.mean(loss)), da * activate_grad("sigmoid", z, a)


def loss_and_gradients(spec: Spec, conv: Conventions, arrays: list[np.ndarray], x, y):
    """(loss, [dW0, db0, dW1, db1, ...]) by backprop."""
    zs, acts = forward(spec, arrays, x)
    loss, dz = loss_and_dz(spec, conv, zs[-1], acts[-1], y)  # dz: (batch, layers[-1])
    grads = [None] * len(arrays)
    for i in reversed(range(len(zs))):
        grads[2 * i] = acts[i].T @ dz  # (layers[i], layers[i+1])
        grads[2 * i + 1] = dz.sum(axis=0)  # (layers[i+1],)
        if i:
            da = dz @ arrays[2 * i].T  # (batch, layers[i])
            dz = da * activate_grad(spec.activations[i - 1], zs[i - 1], acts[i])
    return loss, grads


class Optimizer:
    """The spec's optimizer, written out in one framework's convention; updates arrays in place."""

    def __init__(self, opt: OptimizerSpec, conv: Conventions, arrays: list[np.ndarray]):
        self.opt, self.conv, self.t = opt, conv, 0
        self.m = [np.zeros_like(a) for a in arrays]  # momentum buffer, or Adam's first moment
        self.v = [np.zeros_like(a) for a in arrays]  # Adam's second moment

    def step(self, arrays: list[np.ndarray], grads: list[np.ndarray]) -> None:
        self.t += 1
        o = self.opt
        for w, g, m, v in zip(arrays, grads, self.m, self.v):
            if o.name == "adam":
                self._adam(w, g, m, v)
            elif not o.momentum:
                w -= o.lr * g
            elif self.conv.momentum == "keras":  # v = mu*v - lr*g; w += v
                m[...] = m * o.momentum - g * o.lr
                w += m
            else:  # torch: v = mu*v + g; w -= lr*v
                m[...] = m * o.momentum + g
                w -= o.lr * m

    def _adam(self, w, g, m, v) -> None:
        o, t = self.opt, self.t
        m += (g - m) * (1 - o.beta1)  # both frameworks: m.lerp_(g, 1-b1) / m += (g-m)*(1-b1)
        if self.conv.adam == "keras":  # eps added to sqrt(v); bias correction folded into the step size
            v += (g * g - v) * (1 - o.beta2)
            alpha = o.lr * math.sqrt(1 - o.beta2 ** t) / (1 - o.beta1 ** t)
            w -= (m * alpha) / (np.sqrt(v) + o.epsilon)
        else:  # torch: eps added to sqrt(v_hat)
            v[...] = v * o.beta2 + (1 - o.beta2) * (g * g)
            step_size = o.lr / (1 - o.beta1 ** t)
            denom = np.sqrt(v) / math.sqrt(1 - o.beta2 ** t) + o.epsilon
            w += -step_size * (m / denom)
