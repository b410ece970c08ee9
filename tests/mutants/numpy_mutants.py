"""Mutants for the diagnosis of `xor-rosetta verify`: the NumPy implementation (a copy of
implementations/numpy_mlp.py, so that edits there cannot change these), and one subclass per classic mistake, each
changing one thing. `MUTANTS` maps each to the catalogue cause (xor_rosetta.checks.diagnose.CATALOGUE) that verify
must name. The seed article's listing is the mutant for "only the last layer is updated" (seed_listing.py).
"""
from __future__ import annotations

import numpy as np

from xor_rosetta.data import batch_rows
from xor_rosetta.interface import MLP, Conventions, History

ACT = {  # activation, and its derivative written in terms of the pre-activation z and the output a
    "tanh": (np.tanh, lambda z, a: 1 - a * a),
    "sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda z, a: a * (1 - a)),
    "relu": (lambda z: np.maximum(z, 0), lambda z, a: (z > 0).astype(z.dtype)),
    "linear": (lambda z: z, lambda z, a: np.ones_like(z)),
}


class SGD:
    def __init__(self, params, lr, momentum=0.0):
        self.lr, self.mu, self.v = lr, momentum, [np.zeros_like(p) for p in params]

    def step(self, params, grads):
        for p, g, v in zip(params, grads, self.v):
            if self.mu:
                v[...] = self.mu * v + g
                g = v
            p -= self.lr * g


class Adam:
    def __init__(self, params, lr, beta1, beta2, epsilon):
        self.lr, self.b1, self.b2, self.eps, self.t = lr, beta1, beta2, epsilon, 0
        self.m, self.v = [np.zeros_like(p) for p in params], [np.zeros_like(p) for p in params]

    def step(self, params, grads):
        self.t += 1
        for p, g, m, v in zip(params, grads, self.m, self.v):
            m[...] = (1 - self.b1) * g + self.b1 * m
            v[...] = (1 - self.b2) * (g * g) + self.b2 * v
            m_hat, v_hat = m / (1 - self.b1 ** self.t), v / (1 - self.b2 ** self.t)
            p -= self.lr * (m_hat / (np.sqrt(v_hat) + self.eps))


class NumpyMLP(MLP):
    """implementations/numpy_mlp.py, with its module functions as methods so that a mutant overrides one."""
    name = "numpy-copy"
    framework = "numpy"
    conventions = Conventions(adam="textbook", momentum="torch", bce="logits")

    def __init__(self, spec, params):
        super().__init__(spec, params)
        self.Ws = [self.load(np.array(W, dtype=spec.dtype)) for W, _ in params]
        self.bs = [np.array(b, dtype=spec.dtype) for _, b in params]
        self.optimizer = self.make_optimizer()

    def make_optimizer(self):
        o = self.spec.optimizer
        if o.name == "adam":
            return Adam(self.Ws + self.bs, o.lr, o.beta1, o.beta2, o.epsilon)
        return SGD(self.Ws + self.bs, o.lr, o.momentum)

    def load(self, W):  # canonical (fan_in, fan_out) -> as stored
        return W

    def unload(self, W):  # as stored -> canonical
        return W

    def act(self, name, z):
        return ACT[name][0](z)

    def act_grad(self, name, z, a):
        return ACT[name][1](z, a)

    def forward_all(self, x):
        zs, hs = [], [x]
        for W, b, act in zip(self.Ws, self.bs, self.spec.activations):
            zs.append(hs[-1] @ W + b)  # (batch, fan_out)
            hs.append(self.act(act, zs[-1]))
        return zs, hs

    def loss_and_dz(self, z, a, y):
        m = y.size
        if self.spec.loss == "mse":
            return np.mean((a - y) ** 2), 2 * (a - y) / m * self.act_grad(self.spec.activations[-1], z, a)
        bce = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
        return np.mean(bce), (a - y) / m

    def backprop(self, x, y):
        zs, hs = self.forward_all(x)
        value, dz = self.loss_and_dz(zs[-1], hs[-1], y)
        dWs, dbs = [None] * len(self.Ws), [None] * len(self.Ws)
        for i in reversed(range(len(self.Ws))):
            dWs[i] = hs[i].T @ dz
            dbs[i] = dz.sum(axis=0)
            if i:
                dz = (dz @ self.Ws[i].T) * self.act_grad(self.spec.activations[i - 1], zs[i - 1], hs[i])
        return value, dWs, dbs

    def step(self, x, y):
        loss, dWs, dbs = self.backprop(x, y)
        self.optimizer.step(self.Ws + self.bs, dWs + dbs)
        return loss

    def rows(self, step, b, n):
        return batch_rows(step, b, n)

    def train(self, x, y, steps=None, checkpoints=()):
        spec, want = self.spec, set(checkpoints)
        steps = spec.steps if steps is None else steps
        x, y = x.astype(spec.dtype), y.astype(spec.dtype)
        b = spec.batch_for(len(x))
        losses, saved = np.empty(steps), {}
        for k in range(steps):
            rows = self.rows(self.steps_done, b, len(x))
            losses[k] = self.step(x[rows], y[rows])
            self.steps_done += 1
            if k + 1 in want:
                saved[k + 1] = self.params()
        return History(losses, saved)

    def forward(self, x):
        return self.forward_all(x.astype(self.spec.dtype))[1][-1]

    def loss(self, x, y):
        return float(self.backprop(x.astype(self.spec.dtype), y.astype(self.spec.dtype))[0])

    def gradients(self, x, y):
        _, dWs, dbs = self.backprop(x.astype(self.spec.dtype), y.astype(self.spec.dtype))
        return [(self.unload(dW).astype(np.float64), db.astype(np.float64)) for dW, db in zip(dWs, dbs)]

    def params(self):
        return [(self.unload(W).astype(np.float64), b.astype(np.float64)) for W, b in zip(self.Ws, self.bs)]


# ---------------------------------------------------------------------------------------------------- one bug each

class TransposedWeights(NumpyMLP):
    """Ported from a (fan_out, fan_in) layout: reshape where a transpose was meant (consistently, in and out)."""
    def load(self, W):
        return W.reshape(W.shape[1], W.shape[0]).T

    def unload(self, W):
        return W.T.reshape(W.shape)


class BiasNotUpdated(NumpyMLP):
    """The optimizer is handed the weights only."""
    def step(self, x, y):
        loss, dWs, dbs = self.backprop(x, y)
        self.optimizer.step(self.Ws, dWs)
        return loss


class LossSummed(NumpyMLP):
    """A sum over the batch where the mean was meant."""
    def loss_and_dz(self, z, a, y):
        if self.spec.loss == "mse":
            return np.sum((a - y) ** 2), 2 * (a - y) * self.act_grad(self.spec.activations[-1], z, a)
        return np.sum(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))), a - y


class LossHalved(NumpyMLP):
    """The textbook's ½ (y − a)², for a derivative without the 2."""
    def loss_and_dz(self, z, a, y):
        if self.spec.loss == "mse":
            return 0.5 * np.mean((a - y) ** 2), (a - y) / y.size * self.act_grad(self.spec.activations[-1], z, a)
        return super().loss_and_dz(z, a, y)


class TanhDerivativeFromZ(NumpyMLP):
    """tanh′ written as 1 − z² (from the pre-activation) instead of 1 − a²."""
    def act_grad(self, name, z, a):
        return 1 - z * z if name == "tanh" else super().act_grad(name, z, a)


class SigmoidTwice(NumpyMLP):
    """Under BCE, σ′ multiplied in again after BCE's (a − y)/m."""
    def loss_and_dz(self, z, a, y):
        value, dz = super().loss_and_dz(z, a, y)
        return value, dz * a * (1 - a) if self.spec.loss == "bce" else dz


class AdamNoBiasCorrection(NumpyMLP):
    """Adam's moments used as they are, without dividing by 1 − βᵗ."""
    def make_optimizer(self):
        opt = super().make_optimizer()
        if isinstance(opt, Adam):
            def step(params, grads):
                opt.t += 1
                for p, g, m, v in zip(params, grads, opt.m, opt.v):
                    m[...] = (1 - opt.b1) * g + opt.b1 * m
                    v[...] = (1 - opt.b2) * (g * g) + opt.b2 * v
                    p -= opt.lr * (m / (np.sqrt(v) + opt.eps))  # m, v used as they are
            opt.step = step
        return opt


class AdamEpsInSqrt(NumpyMLP):
    """Adam's epsilon added under the square root."""
    def make_optimizer(self):
        opt = super().make_optimizer()
        if isinstance(opt, Adam):
            def step(params, grads):
                opt.t += 1
                for p, g, m, v in zip(params, grads, opt.m, opt.v):
                    m[...] = (1 - opt.b1) * g + opt.b1 * m
                    v[...] = (1 - opt.b2) * (g * g) + opt.b2 * v
                    m_hat, v_hat = m / (1 - opt.b1 ** opt.t), v / (1 - opt.b2 ** opt.t)
                    p -= opt.lr * (m_hat / np.sqrt(v_hat + opt.eps))  # epsilon under the root
            opt.step = step
        return opt


class LrTwice(NumpyMLP):
    """Momentum with lr in the velocity (as Keras keeps it) and again in the step (as torch applies it)."""
    def make_optimizer(self):
        opt = super().make_optimizer()
        if isinstance(opt, SGD) and opt.mu:
            def step(params, grads):
                for p, g, v in zip(params, grads, opt.v):
                    v[...] = opt.mu * v + opt.lr * g
                    p -= opt.lr * v
            opt.step = step
        return opt


class MomentumDampened(NumpyMLP):
    """The velocity as an exponential average of the gradients."""
    def make_optimizer(self):
        opt = super().make_optimizer()
        if isinstance(opt, SGD) and opt.mu:
            def step(params, grads):
                for p, g, v in zip(params, grads, opt.v):
                    v[...] = opt.mu * v + (1 - opt.mu) * g
                    p -= opt.lr * v
            opt.step = step
        return opt


class WrongSign(NumpyMLP):
    """The gradient added instead of subtracted."""
    def step(self, x, y):
        loss, dWs, dbs = self.backprop(x, y)
        self.optimizer.step(self.Ws + self.bs, [-g for g in dWs + dbs])
        return loss


class NegatedBiasGradient(NumpyMLP):
    """The first layer's bias gradient with its sign flipped (and so its update)."""
    def backprop(self, x, y):
        value, dWs, dbs = super().backprop(x, y)
        return value, dWs, [-db if i == 0 else db for i, db in enumerate(dbs)]


class NegatedLayerGradient(NumpyMLP):
    """The output layer's W and b gradients with their sign flipped (a − y written y − a after the hidden layers'
    deltas were taken)."""
    def backprop(self, x, y):
        value, dWs, dbs = super().backprop(x, y)
        last = len(dWs) - 1
        return value, [-g if i == last else g for i, g in enumerate(dWs)], \
            [-g if i == last else g for i, g in enumerate(dbs)]


class BCEFromProbabilities(NumpyMLP):
    """loss() alone changed: BCE computed from the probabilities, -mean(y log a + (1 − y) log(1 − a)), as
    scikit-learn's MLPClassifier does; the gradient is still the logits' (a − y)/m."""
    def loss_and_dz(self, z, a, y):
        value, dz = super().loss_and_dz(z, a, y)
        if self.spec.loss == "bce":
            with np.errstate(divide="ignore"):
                value = -np.mean(y * np.log(a) + (1 - y) * np.log(1 - a))
        return value, dz


class Float32Tanh(NumpyMLP):
    """tanh evaluated in float32 inside a float64 run (what Keras 3 on JAX does, ../shared/reference/ANCHORS.md)."""
    def act(self, name, z):
        return np.tanh(z.astype(np.float32)) if name == "tanh" else super().act(name, z)


class TruncatedBatches(NumpyMLP):
    """Batches sliced from the data without wrapping round: the last batch of each pass is short."""
    def rows(self, step, b, n):
        start = (step * b) % n
        return np.arange(start, min(start + b, n))


class OptimizerPerCall(NumpyMLP):
    """train() makes a fresh optimizer: Adam's t and moments, or the velocity, start again at every call."""
    def train(self, x, y, steps=None, checkpoints=()):
        self.optimizer = self.make_optimizer()
        return super().train(x, y, steps, checkpoints)


class OptimizerAndWindowPerCall(NumpyMLP):
    """Two mistakes at once: train() makes a fresh optimizer and starts the row window again at every call."""
    first = 0

    def train(self, x, y, steps=None, checkpoints=()):
        self.optimizer, self.first = self.make_optimizer(), self.steps_done
        return super().train(x, y, steps, checkpoints)

    def rows(self, step, b, n):
        return super().rows(step - self.first, b, n)


class DampenedAndClimbing(NumpyMLP):
    """Two mistakes at once: the velocity as a moving average, and the step added instead of subtracted."""
    def make_optimizer(self):
        opt = super().make_optimizer()
        if isinstance(opt, SGD) and opt.mu:
            def step(params, grads):
                for p, g, v in zip(params, grads, opt.v):
                    v[...] = opt.mu * v + (1 - opt.mu) * g
                    p += opt.lr * v
            opt.step = step
        return opt


class ShuffledRows(NumpyMLP):
    """Each batch's rows in a random order (unseeded): the sums round differently from run to run."""
    def rows(self, step, b, n):
        return np.random.permutation(super().rows(step, b, n))


class OneUlpPerCall(NumpyMLP):
    """Moves W0[0, 0] up by one ulp at the start of each train() call after the first: a split run is one ulp (or
    what one ulp becomes in a few steps) away from the whole (not catalogued: no mistake explains it)."""
    calls = 0

    def train(self, x, y, steps=None, checkpoints=()):
        self.calls += 1
        if self.calls > 1:
            self.Ws[0][0, 0] = np.nextafter(self.Ws[0][0, 0], np.inf)
        return super().train(x, y, steps, checkpoints)


MUTANTS = {  # mutant -> the cause verify must name (xor_rosetta.checks.diagnose.CATALOGUE)
    TransposedWeights: "transposed-weights",
    BiasNotUpdated: "bias-not-updated",
    LossSummed: "loss-summed",
    LossHalved: "loss-halved",
    TanhDerivativeFromZ: "activation-derivative",
    SigmoidTwice: "sigmoid-twice",
    AdamNoBiasCorrection: "adam-no-bias-correction",
    AdamEpsInSqrt: "adam-eps-in-sqrt",
    LrTwice: "lr-twice",
    MomentumDampened: "momentum-dampened",
    WrongSign: "wrong-sign",
    NegatedBiasGradient: "gradient-sign",
    NegatedLayerGradient: "gradient-sign",
    BCEFromProbabilities: "mixed-forms",
    Float32Tanh: "float32",
    TruncatedBatches: "minibatch-order",
    OptimizerPerCall: "state-reset",
    ShuffledRows: "nondeterministic",
}
TOGETHER = {  # two mistakes: both causes, together
    OptimizerAndWindowPerCall: ("state-reset", "minibatch-order"),
    DampenedAndClimbing: ("momentum-dampened", "wrong-sign"),
}
