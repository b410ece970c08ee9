"""Fast JAX variant: pure functions over a params pytree [(W (in, out), b (out,)), ...], the same optax optimizer and
loss as `jax`, and the whole training loop in one jitted lax.scan that returns every step's loss."""
from __future__ import annotations

import os
import time
from functools import partial

os.environ.setdefault("JAX_ENABLE_X64", "1")  # read at jax's import: without it float64 arrays silently hold float32

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from xor_rosetta.interface import MLP, Conventions, History  # noqa: E402

if not jax.config.jax_enable_x64:  # jax was imported before this module (Keras imports it): switch x64 on now
    jax.config.update("jax_enable_x64", True)

# region model
ACTIVATIONS = {"tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid, "relu": jax.nn.relu, "linear": lambda z: z}


def logits(params, x, acts):  # (batch, 2) -> (batch, 1), before the output activation
    for (W, b), act in zip(params[:-1], acts[:-1]):
        x = ACTIVATIONS[act](x @ W + b)
    W, b = params[-1]
    return x @ W + b


def predict(params, x, acts):
    return ACTIVATIONS[acts[-1]](logits(params, x, acts))
# endregion


# region loss
def loss_fn(params, x, y, acts, loss):
    if loss == "mse":
        return optax.squared_error(predict(params, x, acts), y).mean()
    return optax.sigmoid_binary_cross_entropy(logits(params, x, acts), y).mean()  # optax's BCE takes the logits
# endregion


# region optimizer
def make_optimizer(opt) -> optax.GradientTransformation:
    """opt = (name, lr, momentum, beta1, beta2, epsilon): hashable, a static argument of the jitted loop."""
    name, lr, momentum, beta1, beta2, epsilon = opt
    if name == "adam":
        return optax.adam(lr, b1=beta1, b2=beta2, eps=epsilon)
    return optax.sgd(lr, momentum=momentum or None)  # None: plain SGD, no momentum state
# endregion


# region step
def train_step(params, opt_state, x, y, acts, loss, opt):
    value, grads = jax.value_and_grad(loss_fn)(params, x, y, acts, loss)
    updates, opt_state = make_optimizer(opt).update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, value
# endregion


UNROLL = 1  # lax.scan(unroll=k) changes XLA's fusion, and so the rounding: unroll 4 moves seed-keras by 8e-15


# region loop
@partial(jax.jit, static_argnames=("acts", "loss", "opt", "batch", "length"))
def train_loop(params, opt_state, first, x, y, acts, loss, opt, batch, length):
    """`length` updates from update number `first`; returns (params, opt_state, every step's loss)."""
    def body(carry, _):
        params, opt_state, k = carry
        rows = (k * batch + jnp.arange(batch)) % x.shape[0]  # batch_rows(k): nothing grows with the steps
        params, opt_state, value = train_step(params, opt_state, x[rows], y[rows], acts, loss, opt)
        return (params, opt_state, k + 1), value

    (params, opt_state, _), losses = jax.lax.scan(body, (params, opt_state, first), length=length, unroll=UNROLL)
    return params, opt_state, losses
# endregion


@partial(jax.jit, static_argnames=("acts", "loss"))
def loss_and_grads(params, x, y, acts, loss):
    return jax.value_and_grad(loss_fn)(params, x, y, acts, loss)


@partial(jax.jit, static_argnames=("acts",))
def forward(params, x, acts):
    return predict(params, x, acts)


class JaxScanMLP(MLP):
    name = "jax-scan"
    framework = "jax"
    conventions = Conventions(adam="optax", momentum="torch", bce="optax")

    def __init__(self, spec, params):
        super().__init__(spec, params)
        self.dtype = jnp.dtype(spec.dtype)
        self.weights = [(jnp.asarray(W, self.dtype), jnp.asarray(b, self.dtype)) for W, b in params]
        o = spec.optimizer
        self.opt = (o.name, o.lr, o.momentum, o.beta1, o.beta2, o.epsilon)
        self.opt_state = make_optimizer(self.opt).init(self.weights)

    def train(self, x, y, steps=None, checkpoints=()):
        """One jitted scan per checkpoint segment; each segment length compiles once per spec structure (the jit
        cache is shared by every instance)."""
        spec = self.spec
        steps, want = spec.steps if steps is None else steps, set(checkpoints)
        x, y = self._array(x), self._array(y)
        static = dict(acts=spec.activations, loss=spec.loss, opt=self.opt, batch=spec.batch_for(len(x)))
        losses, saved, done, start = [], {}, 0, time.perf_counter()
        for k in sorted(c for c in want if 0 < c <= steps) + [steps]:
            if k > done:
                self.weights, self.opt_state, segment = train_loop(
                    self.weights, self.opt_state, jnp.int64(self.steps_done), x, y, length=k - done, **static)
                losses.append(segment)
                self.steps_done += k - done
                done = k
            if k in want:
                saved[k] = self.params()
        loss = np.concatenate([np.asarray(s, dtype=np.float64) for s in losses]) if losses else np.empty(0)
        return History(loss, saved, time.perf_counter() - start)

    def _array(self, a):
        return jnp.asarray(np.asarray(a), dtype=self.dtype)

    def forward(self, x):
        return np.asarray(forward(self.weights, self._array(x), self.spec.activations))  # (batch, 1)

    def loss(self, x, y):
        return float(loss_and_grads(self.weights, self._array(x), self._array(y), self.spec.activations,
                                    self.spec.loss)[0])

    def gradients(self, x, y):
        g = loss_and_grads(self.weights, self._array(x), self._array(y), self.spec.activations, self.spec.loss)[1]
        return [(np.asarray(W, np.float64), np.asarray(b, np.float64)) for W, b in g]

    def params(self):
        return [(np.array(W, np.float64), np.array(b, np.float64)) for W, b in self.weights]
