"""The reference maths in plain NumPy: forward pass, losses, backprop and optimizers, and `Reference`, the oracle
every implementation is measured against.

Where frameworks' native semantics differ, each form is written out and chosen by `Conventions`,
so every implementation can be checked against the reference in its own convention.
A `Jitter` nudges the reference by one rounding inside every step, which measures how much rounding alone moves a
run (`rounding_floor`): the tolerance policy (`xor_rosetta.tolerance`) reads it.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from .data import batch_rows
from .interface import MLP, Conventions, History
from .params import Params
from .spec import Optimizer as OptimizerSpec, Spec

LOG_CLAMP = -100.0  # torch.nn.BCELoss clamps log(p) and log(1-p) at -100
BCE_GRAD_EPS = float(np.float32(1e-12))  # torch's BCE backward divides by max(p*(1-p), eps): eps is a float32
# 1e-12 (9.99999996e-13) even in float64, found by the property tests: 4e-9 relative in saturated gradients
KERAS_EPSILON = 1e-7  # keras.config.epsilon(): Keras clips probabilities to [eps, 1 - eps] on JAX and torch


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


def forward(spec: Spec, arrays: list[np.ndarray], x: np.ndarray, jitter=None) -> tuple[list, list]:
    """Pre-activations zs and activations acts (acts[0] = x); arrays = [W0, b0, W1, b1, ...]."""
    zs, acts = [], [x]  # acts[i]: (batch, layers[i])
    rounds_inputs = getattr(jitter, "rounds_inputs", False)  # Float32Inside: the weights and x enter in float32
    if rounds_inputs:
        acts = [jitter(x)]
    for i, act in enumerate(spec.activations):
        W, b = arrays[2 * i], arrays[2 * i + 1]
        if rounds_inputs:
            W, b = jitter(W), jitter(b)
        zs.append(acts[-1] @ W + b)  # (batch, layers[i+1])
        a = activate(act, zs[-1])
        acts.append(a if jitter is None else jitter(a))
    return zs, acts


def loss_and_dz(spec: Spec, conv: Conventions, z: np.ndarray, a: np.ndarray, y: np.ndarray):
    """The loss, and d loss / d z at the output layer, in the form `conv.bce` names (BCE) or the one MSE form."""
    m = y.size  # mean over batch and outputs
    if spec.loss == "mse":
        d = a - y
        return float(np.mean(d * d)), (2 * d / m) * activate_grad(spec.activations[-1], z, a)
    return BCE[conv.bce](z, a, y, m)


# BCE forms: (z, a = sigmoid(z), y, m = y.size) -> (mean loss, d loss / d z). One function per framework's form.

def bce_probs(z, a, y, m):
    """torch.nn.BCELoss on probabilities: log clamped at -100; backward (a - y) / max(a(1 - a), eps) with a float32
    eps (aten/src/ATen/native/Loss.cpp: binary_cross_entropy_out_cpu, binary_cross_entropy_backward_out_cpu)."""
    with np.errstate(divide="ignore"):
        log_a, log_1a = np.maximum(np.log(a), LOG_CLAMP), np.maximum(np.log(1 - a), LOG_CLAMP)
    loss = -(y * log_a + (1 - y) * log_1a)
    da = (a - y) / np.maximum(a * (1 - a), BCE_GRAD_EPS) / m
    return float(np.mean(loss)), da * activate_grad("sigmoid", z, a)


def bce_logits(z, a, y, m):
    """Keras fit on TensorFlow: the logits behind a Keras sigmoid, through sigmoid_cross_entropy_with_logits
    (keras/src/backend/tensorflow/nn.py: binary_crossentropy reads output._keras_logits)."""
    loss = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
    return float(np.mean(loss)), (a - y) / m


def _softplus(u):
    return np.maximum(u, 0) + np.log1p(np.exp(-np.abs(u)))  # log(1 + e^u) = jnp.logaddexp(u, 0)


def bce_optax(z, a, y, m):
    """optax.sigmoid_binary_cross_entropy(logits, labels): -y log_sigmoid(z) - (1 - y) log_sigmoid(-z), with
    log_sigmoid(u) = -softplus(-u) (optax/losses/_classification.py:78-83); the gradient comes from logaddexp's
    custom JVP, d softplus(u) / du = exp(u - softplus(u)) (jax/_src/lax/other.py:282-290), not from a - y."""
    dt = z.dtype.type
    sp_neg, sp_pos = _softplus(-z), _softplus(z)  # -log_sigmoid(z), -log_sigmoid(-z)
    loss = y * sp_neg + (1 - y) * sp_pos
    c = dt(1) / dt(m)  # jnp.mean's cotangent
    return float(np.mean(loss)), -(y * c) * np.exp(-z - sp_neg) + ((1 - y) * c) * np.exp(z - sp_pos)


def bce_keras_jax(z, a, y, m):
    """Keras BinaryCrossentropy on the JAX backend: a JAX array cannot carry the sigmoid's logits, so p is clipped to
    [1e-7, 1 - 1e-7] and its log taken; the gradient is zero outside the clip and halved at a bound (jnp.clip is
    minimum(maximum(...)): keras/src/backend/jax/nn.py:1017-1033, keras/src/activations/activations.py:481-505)."""
    dt = a.dtype.type
    lo, hi = dt(KERAS_EPSILON), dt(1 - KERAS_EPSILON)
    p, c = np.clip(a, lo, hi), dt(1) / dt(m)
    loss = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    inside = np.where((a > lo) & (a < hi), 1.0, np.where((a == lo) | (a == hi), 0.5, 0.0)).astype(dt)
    dp = -(c * y) / p + (c * (1 - y)) / (1 - p)
    return float(np.sum(loss) / m), (dp * inside) * (a * (1 - a))


def bce_keras_torch(z, a, y, m):
    """Keras BinaryCrossentropy on the torch backend: p clipped to [1e-7, 1 - 1e-7] (torch.clip passes the gradient
    at the bounds), then torch's F.binary_cross_entropy, as in `bce_probs` (keras/src/backend/torch/nn.py:924-955)."""
    dt = a.dtype.type
    lo, hi = dt(KERAS_EPSILON), dt(1 - KERAS_EPSILON)
    p, c = np.clip(a, lo, hi), dt(1) / dt(m)
    with np.errstate(divide="ignore"):
        log_p, log_1p = np.maximum(np.log(p), LOG_CLAMP), np.maximum(np.log(1 - p), LOG_CLAMP)
    loss = -(y * log_p + (1 - y) * log_1p)
    dp = c * (p - y) / np.maximum(p * (1 - p), dt(BCE_GRAD_EPS))
    inside = ((a >= lo) & (a <= hi)).astype(dt)
    return float(np.sum(loss) / m), (dp * inside) * (1 - a) * a


BCE = {"probs": bce_probs, "logits": bce_logits, "optax": bce_optax, "keras-jax": bce_keras_jax,
       "keras-torch": bce_keras_torch}


def loss_and_gradients(spec: Spec, conv: Conventions, arrays: list[np.ndarray], x, y, jitter=None):
    """(loss, [dW0, db0, dW1, db1, ...]) by backprop."""
    zs, acts = forward(spec, arrays, x, jitter)
    if getattr(jitter, "rounds_inputs", False):  # Float32Inside: the loss and its gradient computed in float32
        z32, a32, y32 = (np.asarray(v, dtype=np.float32) for v in (zs[-1], acts[-1], y))
        with np.errstate(all="ignore"):
            loss, dz = loss_and_dz(spec, conv, z32, a32, y32)
        dz = np.asarray(dz, dtype=zs[-1].dtype)
    else:
        loss, dz = loss_and_dz(spec, conv, zs[-1], acts[-1], y)  # dz: (batch, layers[-1])
    grads = [None] * len(arrays)
    for i in reversed(range(len(zs))):
        grads[2 * i] = acts[i].T @ dz  # (layers[i], layers[i+1])
        grads[2 * i + 1] = dz.sum(axis=0)  # (layers[i+1],)
        if i:
            da = dz @ arrays[2 * i].T  # (batch, layers[i])
            dz = da * activate_grad(spec.activations[i - 1], zs[i - 1], acts[i])
    return loss, grads if jitter is None else [jitter(g) for g in grads]


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
                ADAM[self.conv.adam](w, g, m, v, self.t, o)
            elif not o.momentum:
                w -= o.lr * g
            else:
                MOMENTUM[self.conv.momentum](w, g, m, o)


# SGD momentum forms: update w and the buffer m in place.

def momentum_torch(w, g, m, o):
    """torch.optim.SGD (torch/optim/sgd.py: buf.mul_(momentum).add_(grad); param.add_(buf, alpha=-lr)), and optax's
    trace + scale(-lr) (optax/transforms/_accumulation.py:36-85), bit for bit: v = mu*v + g; w -= lr*v."""
    m[...] = m * o.momentum + g
    w -= o.lr * m


def momentum_keras(w, g, m, o):
    """keras.optimizers.SGD (keras/src/optimizers/sgd.py:95-125): v = mu*v - lr*g; w += v. Keras on torch writes it
    with foreach ops, buf*mu + (-lr)*g (keras/src/backend/torch/optimizers/torch_sgd.py:8-36): the same roundings,
    up to the fused multiply-add torch's add(alpha=) does on some CPUs (not modelled: README)."""
    m[...] = m * o.momentum - g * o.lr
    w += m


MOMENTUM = {"torch": momentum_torch, "keras": momentum_keras}


# Adam forms: update w and the moments m, v in place at step t (1-based).

def adam_torch(w, g, m, v, t, o):
    """torch.optim.Adam (torch/optim/adam.py, _single_tensor_adam): eps added to sqrt(v_hat)."""
    m += (g - m) * (1 - o.beta1)  # m.lerp_(g, 1 - b1)
    v[...] = v * o.beta2 + (1 - o.beta2) * (g * g)
    step_size = o.lr / (1 - o.beta1 ** t)
    denom = np.sqrt(v) / math.sqrt(1 - o.beta2 ** t) + o.epsilon
    w += -step_size * (m / denom)


def _keras_alpha(o, t, dt):
    """Keras' step size lr * sqrt(1 - b2^t) / (1 - b1^t), computed with ops in the variable's dtype (the learning
    rate, the step and the betas are cast to it first: keras/src/optimizers/adam.py:102-120)."""
    b1t, b2t = dt(o.beta1) ** dt(t), dt(o.beta2) ** dt(t)
    return dt(o.lr) * np.sqrt(dt(1) - b2t) / (dt(1) - b1t)


def adam_keras(w, g, m, v, t, o):
    """keras.optimizers.Adam (keras/src/optimizers/adam.py:102-137; Keras on TensorFlow and on JAX): eps added to
    sqrt(v), the bias correction folded into the step size (an "eps-hat")."""
    m += (g - m) * (1 - o.beta1)
    v += (g * g - v) * (1 - o.beta2)
    w -= (m * _keras_alpha(o, t, w.dtype.type)) / (np.sqrt(v) + o.epsilon)


def adam_keras_torch(w, g, m, v, t, o):
    """Keras' Adam on the torch backend (keras/src/backend/torch/optimizers/torch_adam.py:9-57): Keras' step size,
    with torch foreach moments m*b1 + (1 - b1)*g rounded in that order."""
    m[...] = m * o.beta1 + (1 - o.beta1) * g  # torch._foreach_mul_, then _foreach_add_(alpha=1 - b1)
    v[...] = v * o.beta2 + (1 - o.beta2) * (g * g)
    w -= (m * _keras_alpha(o, t, w.dtype.type)) / (np.sqrt(v) + o.epsilon)


def adam_optax(w, g, m, v, t, o):
    """optax.adam = scale_by_adam + scale_by_learning_rate (optax/_src/transform.py:246-309,
    optax/tree_utils/_tree_math.py:394-449): Kingma & Ba's m_hat / (sqrt(v_hat) + eps), then p + (-lr) * u.
    The bias correction is a jitted division by a scalar, which XLA compiles as a multiplication by its reciprocal
    (1 - b^t is computed in float64, then cast to the moment's dtype)."""
    dt = w.dtype.type
    m[...] = (1 - o.beta1) * g + o.beta1 * m  # optax.tree.update_moment
    v[...] = (1 - o.beta2) * (g * g) + o.beta2 * v
    m_hat = m * (dt(1) / dt(1 - o.beta1 ** t))  # optax.tree.bias_correction, as XLA computes it
    v_hat = v * (dt(1) / dt(1 - o.beta2 ** t))
    w += -o.lr * (m_hat / (np.sqrt(v_hat) + o.epsilon))


def adam_textbook(w, g, m, v, t, o):
    """Kingma & Ba's Adam as written (Algorithm 1), with NumPy's eager rounding: the moments divided by their bias
    corrections, then w -= lr * m_hat / (sqrt(v_hat) + eps). optax computes the same maths, but its compiled
    division by 1 - b^t is a multiplication by the reciprocal: one rounding apart per step."""
    dt = w.dtype.type
    m[...] = (1 - o.beta1) * g + o.beta1 * m
    v[...] = (1 - o.beta2) * (g * g) + o.beta2 * v
    m_hat, v_hat = m / dt(1 - o.beta1 ** t), v / dt(1 - o.beta2 ** t)
    w -= o.lr * (m_hat / (np.sqrt(v_hat) + o.epsilon))


ADAM = {"torch": adam_torch, "keras": adam_keras, "optax": adam_optax, "keras-torch": adam_keras_torch,
        "textbook": adam_textbook}

# Every form of each differing operation that the reference models, by `Conventions` field: convention detection
# (`xor-rosetta verify`) tries each one listed here, so a form added to the reference is detected once it is listed.
FORMS: dict[str, tuple[str, ...]] = {"adam": tuple(ADAM), "momentum": tuple(MOMENTUM), "bce": tuple(BCE)}


class Jitter:
    """Moves every nonzero value it is given by one ulp, up or down by a fixed random pattern (`sign` = -1 flips
    it), as another framework's rounding might. Zeros stay zero: no framework rounds an exact zero (a dead relu,
    an all-zero input row) into a tiny number."""

    def __init__(self, seed: int, sign: float = 1.0):
        self.rng, self.sign = np.random.default_rng(seed), sign

    def __call__(self, a: np.ndarray) -> np.ndarray:
        pattern = self.sign * (2.0 * self.rng.integers(0, 2, a.shape) - 1.0)  # (same shape as a) of +-1
        return np.where(a == 0, a, np.nextafter(a, (pattern * np.inf).astype(a.dtype)))


class Reference(MLP):
    """The oracle: the maths above, in one framework's conventions, at the spec's dtype; optionally jittered."""
    name = "reference"
    framework = "numpy"

    def __init__(self, spec: Spec, params: Params, conventions: Conventions = Conventions(), jitter: Jitter | None = None):
        super().__init__(spec, params)
        self.conventions, self.jitter = conventions, jitter
        self.arrays = [np.array(a, dtype=spec.dtype) for Wb in params for a in Wb]  # [W0, b0, W1, b1, ...]
        self.optimizer = Optimizer(spec.optimizer, conventions, self.arrays)

    def forward(self, x):
        return forward(self.spec, self.arrays, x.astype(self.spec.dtype), self.jitter)[1][-1]  # (batch, 1)

    def loss(self, x, y):
        return self._loss_and_grads(x, y)[0]

    def gradients(self, x, y):
        g = self._loss_and_grads(x, y)[1]
        return [(g[i], g[i + 1]) for i in range(0, len(g), 2)]

    def train(self, x, y, steps=None, checkpoints=()):
        spec, want = self.spec, set(checkpoints)
        steps = spec.steps if steps is None else steps
        x, y = x.astype(spec.dtype), y.astype(spec.dtype)
        losses, saved = np.empty(steps), {}
        b = spec.batch_for(len(x))
        start = time.perf_counter()
        for k in range(steps):
            rows = slice(None) if b == len(x) else batch_rows(self.steps_done, b, len(x))
            losses[k], grads = loss_and_gradients(spec, self.conventions, self.arrays, x[rows], y[rows], self.jitter)
            self.optimizer.step(self.arrays, grads)
            self.steps_done += 1
            if k + 1 in want:
                saved[k + 1] = self.params()
        return History(losses, saved, time.perf_counter() - start)

    def params(self):
        a = [np.array(v, dtype=np.float64) for v in self.arrays]
        return [(a[i], a[i + 1]) for i in range(0, len(a), 2)]

    def _loss_and_grads(self, x, y):
        x, y = x.astype(self.spec.dtype), y.astype(self.spec.dtype)
        return loss_and_gradients(self.spec, self.conventions, self.arrays, x, y, self.jitter)


JITTER_RUNS = ((0, 1.0), (0, -1.0), (1, 1.0), (1, -1.0))  # two random patterns, each in both directions


@dataclass
class Floor:
    """How far one rounding inside every step moves the reference: the largest |jittered - exact| over JITTER_RUNS,
    at that step or any earlier one."""
    forward: float = 0.0  # outputs at the initial weights
    gradient: float = 0.0  # gradients at the initial weights
    params: dict[int, float] = field(default_factory=dict)  # checkpoint -> max |Δ params|
    loss: np.ndarray | None = None  # (steps,) per-step |Δ loss|


def rounding_floor(spec: Spec, params: Params, conventions: Conventions, exact: History, checkpoints, x, y,
                   steps: int | None = None) -> Floor:
    """The reference rerun under each Jitter of JITTER_RUNS, measured against the exact run `exact`."""
    floor = Floor(params={k: 0.0 for k in checkpoints})
    ref = Reference(spec, params, conventions)
    out0, g0 = ref.forward(x), ref.gradients(x, y)
    with np.errstate(all="ignore"):
        for seed, sign in JITTER_RUNS:
            j = Reference(spec, params, conventions, Jitter(seed, sign))
            floor.forward = max(floor.forward, float(np.max(np.abs(j.forward(x) - out0))))
            floor.gradient = max(floor.gradient, max(float(np.max(np.abs(a - b))) for G, H in zip(j.gradients(x, y), g0)
                                                     for a, b in zip(G, H)))
            j = Reference(spec, params, conventions, Jitter(seed, sign))  # fresh: forward() above drew patterns
            h = j.train(x, y, steps=steps, checkpoints=checkpoints)
            for k in checkpoints:
                floor.params[k] = max(floor.params[k], max(float(np.max(np.abs(a - b))) for A, B in
                                                           zip(h.checkpoints[k], exact.checkpoints[k]) for a, b in zip(A, B)))
            d = np.abs(h.loss - exact.loss)
            floor.loss = d if floor.loss is None else np.fmax(floor.loss, d)
    return _never_falls_back(floor)


def _never_falls_back(floor: Floor) -> Floor:
    """Once rounding alone has moved the run by X, later steps are not held to less: the jittered runs, four samples,
    may come back together by chance while an implementation's run need not (seed-keras in float32 with optax's
    forms: the floor was 2.8e-5 at step 714 and 3.4e-7 at step 726, where jax differed by 1.2e-5)."""
    if floor.loss is not None:
        floor.loss = np.fmax.accumulate(floor.loss)
    running = 0.0
    for k in sorted(floor.params):
        running = max(running, floor.params[k])
        floor.params[k] = running
    return floor


class Float32Inside:
    """The model of a declared known difference, float32 arithmetic inside a float64 run (`MLP.known_differences`:
    Keras on JAX and on torch): the forward and backward pass computed from float32 copies of the weights and
    inputs, every activation and gradient rounded to float32, the variables and their update kept in float64 (as
    Keras keeps float64 variables). Values beyond float32's range are left as they are."""
    rounds_inputs = True

    def __call__(self, a: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            r = np.asarray(a, dtype=np.float32).astype(a.dtype)
        return np.where(np.isfinite(r) | ~np.isfinite(a), r, a)


def float32_inside_floor(spec: Spec, params: Params, conventions: Conventions, exact: History, checkpoints, x, y,
                         steps: int | None = None) -> Floor:
    """How far float32 arithmetic inside the run moves the float64 reference `exact`: the modelled size of that
    known difference, judged with float32's tolerances (`tolerance.policy_for`). A NaN is no evidence: 0."""
    ref, model = Reference(spec, params, conventions), Reference(spec, params, conventions, Float32Inside())
    gap = lambda a, b: float(np.nan_to_num(np.max(np.abs(np.asarray(a) - np.asarray(b)), initial=0.0)))  # noqa: E731
    with np.errstate(all="ignore"):
        floor = Floor(forward=gap(model.forward(x), ref.forward(x)),
                      gradient=max(gap(a, b) for G, H in zip(model.gradients(x, y), ref.gradients(x, y))
                                   for a, b in zip(G, H)))
        h = Reference(spec, params, conventions, Float32Inside()).train(x, y, steps=steps, checkpoints=checkpoints)
        floor.params = {k: max(gap(a, b) for A, B in zip(h.checkpoints[k], exact.checkpoints[k]) for a, b in zip(A, B))
                        for k in checkpoints}
        floor.loss = np.nan_to_num(np.abs(h.loss - exact.loss), nan=0.0)
    return _never_falls_back(floor)
