"""K networks at once in JAX: `jax.vmap` of the gradient of one network's loss, optax's own SGD or Adam on the
stacked parameters (elementwise: each network keeps its own moments, all share the step count), and the whole
loop in one jitted `lax.scan`. The conventions are optax's: its Adam, its momentum (torch's form), BCE from
logits (`optax.sigmoid_binary_cross_entropy`). Written here, in the style of a JAX implementation, because the
sweep needs it whether or not the registry has one.

Same arguments and result as `xor_rosetta.implementations.batched.numpy.train` (NumPy arrays in, `Batch` out).
"""
from __future__ import annotations

import functools

import jax

jax.config.update("jax_enable_x64", True)  # float64 runs need it, before any array is made

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from xor_rosetta.data import batch_rows, xor_data  # noqa: E402
from xor_rosetta.interface import Conventions  # noqa: E402
from xor_rosetta.spec import Spec  # noqa: E402
from xor_rosetta.implementations.batched.numpy import Batch  # noqa: E402

CONVENTIONS = Conventions(adam="optax", momentum="torch", bce="logits")
ACT = {"tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid, "relu": jax.nn.relu, "linear": lambda z: z}


def logits(params, x, acts):  # one network: params [(W (in, out), b (out,)), ...]; x (batch, 2)
    for (W, b), act in zip(params[:-1], acts[:-1]):
        x = ACT[act](x @ W + b)  # (batch, fan_out)
    W, b = params[-1]
    return x @ W + b  # (batch, 1): the output layer before its activation


def loss_fn(params, x, y, acts, loss):
    z = logits(params, x, acts)
    if loss == "bce":
        return optax.sigmoid_binary_cross_entropy(z, y).mean()
    return jnp.mean((ACT[acts[-1]](z) - y) ** 2)


def optimizer(spec: Spec):
    o = spec.optimizer
    if o.name == "adam":
        return optax.adam(o.lr, b1=o.beta1, b2=o.beta2, eps=o.epsilon)
    return optax.sgd(o.lr, momentum=o.momentum or None)


def train(spec: Spec, conv: Conventions, arrays, threshold: float = 0.0, steps: int | None = None, checkpoints=(),
          keep_loss: bool = False) -> Batch:
    if conv != CONVENTIONS:
        raise ValueError(f"the JAX batched path computes in optax's conventions, not {conv}")
    steps = spec.steps if steps is None else steps
    x, y = (jnp.asarray(a) for a in xor_data(spec.dtype))
    params = [(jnp.asarray(np.moveaxis(arrays[i], -1, 0), dtype=spec.dtype),  # (K, in, out)
               jnp.asarray(np.moveaxis(arrays[i + 1], -1, 0), dtype=spec.dtype)) for i in range(0, len(arrays), 2)]
    ks = sorted(k for k in set(checkpoints) if 1 <= k <= steps)
    b = spec.batch_for(len(x))
    rows = jnp.asarray(np.stack([batch_rows(k, b, len(x)) for k in range(steps)]))  # (steps, batch)
    params, first_below, first_nonfinite, losses, saved = _loop(spec, params, x, y, rows, threshold, tuple(ks),
                                                                keep_loss)
    out = jax.vmap(lambda p: ACT[spec.activations[-1]](logits(p, x, spec.activations)))(params)  # (K, 4, 1)
    final = jax.vmap(lambda p: loss_fn(p, x, y, spec.activations, spec.loss))(params)
    return Batch(np.asarray(final, dtype=np.float64), np.asarray(out[..., 0], dtype=np.float64),
                 np.asarray(first_below), np.asarray(first_nonfinite), _to_numpy(params),
                 np.asarray(losses, dtype=np.float64).T if keep_loss else None,
                 {k: _to_numpy(jax.tree.map(lambda a: a[i], saved)) for i, k in enumerate(ks)})


def _loop(spec, params, x, y, rows, threshold, ks, keep_loss):
    return _compiled(spec, ks, keep_loss)(params, x, y, rows, jnp.asarray(threshold, dtype=spec.dtype))


@functools.lru_cache(maxsize=16)
def _compiled(spec: Spec, ks: tuple, keep_loss: bool):
    """The whole loop, jitted once per spec, checkpoints and shapes (a worker reuses it for every chunk of seeds)."""
    tx, acts, loss = optimizer(spec), spec.activations, spec.loss
    grad = jax.vmap(jax.value_and_grad(lambda p, xb, yb: loss_fn(p, xb, yb, acts, loss)), in_axes=(0, None, None))
    ks_arr = jnp.asarray(ks if ks else [0])

    def body(carry, inp, x, y, threshold):
        params, state, below, nonfinite, saved = carry
        k, r = inp
        value, g = grad(params, x[r], y[r])  # value (K,)
        updates, state = tx.update(g, state, params)
        params = optax.apply_updates(params, updates)
        below = jnp.where((below < 0) & (value < threshold), k, below)
        nonfinite = jnp.where((nonfinite < 0) & ~jnp.isfinite(value), k, nonfinite)
        i = jnp.clip(jnp.searchsorted(ks_arr, k + 1), 0, len(ks_arr) - 1)  # the checkpoint slot of step k + 1
        hit = ks_arr[i] == k + 1
        saved = jax.tree.map(lambda s, p: s.at[i].set(jnp.where(hit, p, s[i])), saved, params)
        return (params, state, below, nonfinite, saved), (value if keep_loss else None)

    @jax.jit
    def run(params, x, y, rows, threshold):
        K = params[0][0].shape[0]
        saved = jax.tree.map(lambda a: jnp.zeros((len(ks_arr),) + a.shape, a.dtype), params)
        init = (params, tx.init(params), jnp.full(K, -1), jnp.full(K, -1), saved)
        (params, _, below, nonfinite, saved), losses = jax.lax.scan(
            lambda c, i: body(c, i, x, y, threshold), init, (jnp.arange(len(rows)), rows))
        return params, below, nonfinite, losses, saved
    return run


def _to_numpy(params) -> list[np.ndarray]:
    return [np.moveaxis(np.asarray(a, dtype=np.float64), 0, -1) for Wb in params for a in Wb]


def gradients(spec: Spec, conv: Conventions, arrays) -> list[np.ndarray]:
    x, y = (jnp.asarray(a) for a in xor_data(spec.dtype))
    params = [(jnp.asarray(np.moveaxis(arrays[i], -1, 0), dtype=spec.dtype),
               jnp.asarray(np.moveaxis(arrays[i + 1], -1, 0), dtype=spec.dtype)) for i in range(0, len(arrays), 2)]
    g = jax.vmap(jax.grad(lambda p: loss_fn(p, x, y, spec.activations, spec.loss)))(params)
    return _to_numpy(g)
