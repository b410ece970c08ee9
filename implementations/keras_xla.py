"""Fast Keras/TensorFlow variant: the same Keras model, optimizer and loss, with the whole training loop in one
XLA-compiled tf.function that records each step's loss inside the loop (no host sync per step)."""
from __future__ import annotations

import time

from xor_rosetta.implementations import keras_mlp  # first: it sets TensorFlow's environment before its import

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from xor_rosetta.implementations._keras_recording import distinct_batches, floatx, in_segments  # noqa: E402
from xor_rosetta.interface import History  # noqa: E402

# region model
# keras_mlp.build_model, unchanged: the same keras.Sequential of Dense layers as `keras`
# endregion

# region loss
# keras_mlp.make_loss, unchanged: the same Keras loss; in a graph, BCE reads the logits behind the sigmoid
# endregion

# region optimizer
# keras_mlp.make_optimizer, unchanged: the same Keras optimizer, applied by hand below instead of by fit()
# endregion


# region step
def train_step(model, loss_fn, optimizer, x, y):
    """One update, traced into the XLA loop: forward pass and loss under a GradientTape, then optimizer.apply."""
    with tf.GradientTape() as tape:
        loss = loss_fn(y, model(x, training=True))
    optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
    return loss
# endregion


class KerasXlaMLP(keras_mlp.KerasMLP):
    name = "keras-xla"

    # region loop
    def train(self, x, y, steps=None, checkpoints=()):
        spec = self.spec
        steps = spec.steps if steps is None else steps
        xs, ys = distinct_batches(x, y, spec.batch_for(len(x)))  # (p, batch, 2), (p, batch, 1): step k uses k % p
        xs, ys = tf.constant(xs, dtype=spec.dtype), tf.constant(ys, dtype=spec.dtype)
        with floatx(spec.dtype):
            self.optimizer.build(self.model.trainable_variables)
        if not hasattr(self, "_xla_loop"):  # one XLA program per instance, run once per checkpoint segment
            self._xla_loop = tf.function(self._loop, jit_compile=True)
        if getattr(self, "_losses", None) is None or self._losses.shape[0] < steps:  # a new one retraces the loop
            self._losses = tf.Variable(tf.zeros(steps, dtype=spec.dtype))  # (steps,): every step's loss
        losses = self._losses
        base, start = self.steps_done, time.perf_counter()
        saved = in_segments(self, steps, checkpoints, lambda first, n: self._xla_loop(
            xs, ys, losses, tf.constant(first, tf.int64), tf.constant(first - base, tf.int64), tf.constant(n, tf.int64)))
        return History(losses.numpy()[:steps].astype(np.float64), saved, time.perf_counter() - start)

    def _loop(self, xs, ys, losses, first, at, n):
        """n steps from update number `first`, their losses written from index `at` of `losses`."""
        i = tf.constant(0, tf.int64)
        while i < n:  # a while loop, not tf.range: XLA would compile once per value of n
            k = (first + i) % xs.shape[0]
            x, y = tf.gather(xs, k), tf.gather(ys, k)  # (batch, 2), (batch, 1); gather: k is not a compile-time constant
            losses.scatter_nd_update([[at + i]], [train_step(self.model, self.loss_fn, self.optimizer, x, y)])
            i += 1
    # endregion

    @tf.function(jit_compile=True)  # gradients through XLA too
    def _loss_and_grads(self, x, y):
        return self._tape_grads(x, y)
