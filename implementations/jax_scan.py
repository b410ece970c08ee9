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
@partial(jax.jit, static_argnames=("acts", "loss", "opt", "batch", "length", "kept"))
def train_loop(params, opt_state, first, keep, x, y, acts, loss, opt, batch, length, kept):
    """`length` updates from update number `first`, in one scan; returns (params, opt_state, every step's loss, the
    params after each update i with keep[i] set: `kept` of them, stacked)."""
    def body(carry, keep_this):
        params, opt_state, k, saved, n = carry
        rows = (k * batch + jnp.arange(batch)) % x.shape[0]  # batch_rows(k): nothing grows with the steps
        params, opt_state, value = train_step(params, opt_state, x[rows], y[rows], acts, loss, opt)
        saved = jax.tree.map(lambda s, p: s.at[n].set(jnp.where(keep_this, p, s[n])), saved, params)
        return (params, opt_state, k + 1, saved, n + keep_this), value

    saved = jax.tree.map(lambda p: jnp.zeros((max(kept, 1), *p.shape), p.dtype), params)  # (kept, *shape) each
    carry = (params, opt_state, first, saved, jnp.int64(0))
    (params, opt_state, _, saved, _), losses = jax.lax.scan(body, carry, keep, length=length, unroll=UNROLL)
    return params, opt_state, losses, saved
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
        """One jitted scan for the whole call, checkpoints included: it compiles once per spec structure, number of
        steps and number of checkpoints (the jit cache is shared by every instance)."""
        spec = self.spec
        steps = spec.steps if steps is None else steps
        want = sorted(k for k in set(checkpoints) if 0 < k <= steps)
        keep = np.zeros(steps, dtype=bool)  # (steps,): whether to keep the params after update i + 1
        keep[np.array(want, dtype=int) - 1] = True
        start = time.perf_counter()
        self.weights, self.opt_state, losses, kept = train_loop(
            self.weights, self.opt_state, jnp.int64(self.steps_done), jnp.asarray(keep), self._array(x), self._array(y),
            acts=spec.activations, loss=spec.loss, opt=self.opt, batch=spec.batch_for(len(x)), length=steps,
            kept=len(want))
        self.steps_done += steps
        saved = {k: [(np.array(W[i], np.float64), np.array(b[i], np.float64)) for W, b in kept]
                 for i, k in enumerate(want)}
        return History(np.asarray(losses, dtype=np.float64), saved, time.perf_counter() - start)

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
