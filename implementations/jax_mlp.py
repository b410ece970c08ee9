"""XOR MLP in JAX with Flax NNX, as the Flax docs teach: an nnx.Module of nnx.Linear layers, an nnx.Optimizer over
an optax optimizer, nnx.value_and_grad, and a jitted train step."""
from __future__ import annotations

import os
import time

os.environ.setdefault("JAX_ENABLE_X64", "1")  # read at jax's import: without it float64 arrays silently hold float32

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from flax import nnx  # noqa: E402

from xor_rosetta.data import batch_period, batch_rows  # noqa: E402
from xor_rosetta.interface import MLP, Conventions, History  # noqa: E402

if not jax.config.jax_enable_x64:  # jax was imported before this module (Keras imports it): switch x64 on now
    jax.config.update("jax_enable_x64", True)

# region model
ACTIVATIONS = {"tanh": jnp.tanh, "sigmoid": nnx.sigmoid, "relu": nnx.relu, "linear": lambda z: z}


class Net(nnx.Module):
    def __init__(self, layers, activations, dtype, *, rngs: nnx.Rngs):
        # param_dtype defaults to float32 even with x64 on; kernels are (in, out), as canonical
        self.linears = nnx.List([nnx.Linear(n_in, n_out, dtype=dtype, param_dtype=dtype, rngs=rngs)
                                 for n_in, n_out in zip(layers[:-1], layers[1:])])
        self.activations = tuple(activations)

    def logits(self, x):  # (batch, 2) -> (batch, 1), before the output activation
        for linear, act in zip(self.linears[:-1], self.activations[:-1]):
            x = ACTIVATIONS[act](linear(x))
        return self.linears[-1](x)

    def __call__(self, x):
        return ACTIVATIONS[self.activations[-1]](self.logits(x))
# endregion


# region loss
def loss_fn(model: Net, x, y, loss: str):
    if loss == "mse":
        return optax.squared_error(model(x), y).mean()
    return optax.sigmoid_binary_cross_entropy(model.logits(x), y).mean()  # optax's BCE takes the logits
# endregion


# region optimizer
def make_optimizer(model: Net, spec) -> nnx.Optimizer:
    o = spec.optimizer
    if o.name == "adam":
        tx = optax.adam(o.lr, b1=o.beta1, b2=o.beta2, eps=o.epsilon)
    else:
        tx = optax.sgd(o.lr, momentum=o.momentum or None)  # None: plain SGD, no momentum state
    return nnx.Optimizer(model, tx, wrt=nnx.Param)
# endregion


# region step
def train_step(model: Net, optimizer: nnx.Optimizer, x, y, loss: str):
    value, grads = nnx.value_and_grad(loss_fn)(model, x, y, loss)
    optimizer.update(model, grads)
    return value


def compile_step(model: Net, optimizer: nnx.Optimizer):
    """train_step(x, y, loss=...) compiled once, model and optimizer bound: nnx.jit_partial(..., graph=False), the
    tree-mode idiom of Flax 0.12 (flax/nnx/transforms/compilation.py:735-780). It flattens them once; a plain
    @nnx.jit walks the object graph on every call: ~430 µs a step here, against ~38 µs (README, Speed)."""
    return nnx.jit_partial(train_step, model, optimizer, static_argnames="loss", graph=False)
# endregion


FETCH = 1000  # losses fetched from the device in blocks: memory then grows by the loss history only


@nnx.jit(static_argnames="loss")
def loss_and_grads(model: Net, x, y, loss: str):
    return nnx.value_and_grad(loss_fn)(model, x, y, loss)


class JaxMLP(MLP):
    name = "jax"
    framework = "flax"
    conventions = Conventions(adam="optax", momentum="torch", bce="optax")  # optax.sgd's trace is torch's form

    def __init__(self, spec, params):
        super().__init__(spec, params)
        self.dtype = jnp.dtype(spec.dtype)
        self.model = Net(spec.layers, spec.activations, self.dtype, rngs=nnx.Rngs(0))
        for linear, (W, b) in zip(self.model.linears, params):
            linear.kernel[...] = jnp.asarray(W, dtype=self.dtype)
            linear.bias[...] = jnp.asarray(b, dtype=self.dtype)
        self.optimizer = make_optimizer(self.model, spec)
        self.step = compile_step(self.model, self.optimizer)

    # region loop
    def train(self, x, y, steps=None, checkpoints=()):
        steps, want = self.spec.steps if steps is None else steps, set(checkpoints)
        b, n = self.spec.batch_for(len(x)), len(x)
        p = batch_period(b, n)  # the distinct batches: batch_rows(k) depends on k mod p only
        batches = [(self._array(x[r]), self._array(y[r])) for r in (batch_rows(k, b, n) for k in range(p))]
        losses, pending, saved, start = np.empty(steps), [], {}, time.perf_counter()
        for k in range(steps):
            xb, yb = batches[(self.steps_done + k) % p]
            pending.append(self.step(xb, yb, loss=self.spec.loss))  # a device scalar: no wait for the step
            if len(pending) == FETCH or k + 1 == steps or k + 1 in want:
                losses[k + 1 - len(pending):k + 1] = jax.device_get(pending)  # not jnp.stack: compiles per length
                pending.clear()
            if k + 1 in want:
                saved[k + 1] = self.params()
        self.steps_done += steps
        return History(losses, saved, time.perf_counter() - start)
    # endregion

    def _array(self, a):
        return jnp.asarray(np.asarray(a), dtype=self.dtype)

    def forward(self, x):
        return np.asarray(self.model(self._array(x)))  # (batch, 1)

    def loss(self, x, y):
        return float(loss_and_grads(self.model, self._array(x), self._array(y), self.spec.loss)[0])

    def gradients(self, x, y):
        g = loss_and_grads(self.model, self._array(x), self._array(y), self.spec.loss)[1]["linears"]  # nnx.State
        return [(np.asarray(g[i]["kernel"][...], np.float64), np.asarray(g[i]["bias"][...], np.float64))
                for i in range(len(self.model.linears))]

    def params(self):
        return [(np.array(lin.kernel[...], np.float64), np.array(lin.bias[...], np.float64))
                for lin in self.model.linears]
