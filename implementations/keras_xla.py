"""Fast Keras/TensorFlow variant: the same Keras model, optimizer and loss, with the whole training loop in one
XLA-compiled tf.function that records each step's loss inside the loop (no host sync per step)."""
from __future__ import annotations

import time

import numpy as np

from xor_rosetta.implementations.keras_mlp import KerasMLP, floatx, tf
from xor_rosetta.data import stream_rows
from xor_rosetta.interface import History


class KerasXlaMLP(KerasMLP):
    name = "keras-xla"

    def train(self, x, y, steps=None, checkpoints=()):
        spec = self.spec
        steps = spec.steps if steps is None else steps
        b = spec.batch_for(len(x))
        rows = stream_rows(self.steps_done, steps, b, len(x)).reshape(steps, b)  # (steps, batch)
        xs, ys = (tf.constant(a[rows], dtype=spec.dtype) for a in (x, y))  # (steps, batch, 2), (steps, batch, 1)
        with floatx(spec.dtype):
            self.optimizer.build(self.model.trainable_variables)
        losses = tf.Variable(tf.zeros(steps, dtype=spec.dtype))  # (steps,)
        if not hasattr(self, "_xla_loop"):  # one XLA program per instance, run once per checkpoint segment
            self._xla_loop = tf.function(self._loop, jit_compile=True)
        start = time.perf_counter()
        run = lambda a, k: self._xla_loop(xs, ys, losses, tf.constant(a), tf.constant(k))  # noqa: E731
        saved = self._in_segments(steps, set(checkpoints), run)
        return History(losses.numpy().astype(np.float64), saved, time.perf_counter() - start)

    @tf.function(jit_compile=True)  # gradients through XLA too
    def _loss_and_grads(self, x, y):
        return KerasMLP._loss_and_grads.python_function(self, x, y)

    def _loop(self, xs, ys, losses, begin, end):
        variables = self.model.trainable_variables
        i = begin
        while i < end:  # a while loop, not tf.range: XLA would compile once per (begin, end) value
            with tf.GradientTape() as tape:
                loss = self.loss_fn(ys[i], self.model(xs[i], training=True))
            self.optimizer.apply(tape.gradient(loss, variables), variables)
            losses.scatter_nd_update([[i]], [loss])
            i += 1
