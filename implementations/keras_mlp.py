"""XOR MLP in Keras 3 on the TensorFlow backend: keras.Sequential of Dense, compile(), fit().

Nothing in the model, loss, optimizer or step below names a backend: keras_jax.py and keras_torch.py run these very
functions on JAX and PyTorch. The recording machinery (every step's loss from inside fit, floatx, checkpoint
segments) is in _keras_recording.py.
"""
from __future__ import annotations

import logging
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # read once, at the first `import keras`
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter off stderr
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # plain Eigen kernels: no reordered float sums (README)
logging.getLogger("tensorflow").setLevel(logging.ERROR)  # every new model retraces fit's step; that is expected here

import keras  # noqa: E402
import numpy as np  # noqa: E402

from xor_rosetta.implementations._keras_recording import StepLoss, floatx, in_segments, require_backend  # noqa: E402
from xor_rosetta.interface import MLP, Conventions, History  # noqa: E402


# region model
def build_model(spec):
    """Dense layers with the spec's activations; a Keras kernel is (in, out), as canonical."""
    dt = spec.dtype  # explicit: the default dtype policy is fixed at its first use, whatever floatx says later
    return keras.Sequential([keras.Input((spec.layers[0],), dtype=dt)] + [
        keras.layers.Dense(n, activation=act, dtype=dt) for n, act in zip(spec.layers[1:], spec.activations)])
# endregion


# region loss
def make_loss(spec):
    """Mean squared error, or binary cross-entropy on the sigmoid's output."""
    loss = keras.losses.MeanSquaredError if spec.loss == "mse" else keras.losses.BinaryCrossentropy
    return loss(dtype=spec.dtype)
# endregion


# region optimizer
def make_optimizer(spec):
    """Build under floatx(spec.dtype): Keras creates the learning-rate variable at floatx."""
    o, f = spec.optimizer, np.float64  # Keras casts a Python float through float32 (README)
    if o.name == "adam":
        return keras.optimizers.Adam(o.lr, beta_1=f(o.beta1), beta_2=f(o.beta2), epsilon=o.epsilon)
    return keras.optimizers.SGD(o.lr, momentum=f(o.momentum))
# endregion


# region step
STEPS_PER_EXECUTION = 1000  # train steps fused into one tf.function call by fit(): ~90 µs/step instead of ~0.8 ms


def compile_model(model, loss, optimizer, metrics, steps_per_execution):
    """fit()'s train step: forward pass, loss, gradients and the optimizer's update."""
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics, steps_per_execution=steps_per_execution)
# endregion


class KerasMLP(MLP):
    name = "keras"
    framework = "keras"
    conventions = Conventions(adam="keras", momentum="keras", bce="logits")
    backend = "tensorflow"
    steps_per_execution = STEPS_PER_EXECUTION
    recorder = StepLoss  # how every step's loss is recorded inside fit()

    def __init__(self, spec, params):
        super().__init__(spec, params)
        require_backend(self.backend)
        self.model = build_model(spec)
        for layer, (W, b) in zip(self.model.layers, params):
            layer.set_weights([W, b])
        self.loss_fn = make_loss(spec)
        with floatx(spec.dtype):
            self.optimizer = make_optimizer(spec)
        self._recorder = None

    # region loop
    def batches(self, x, y, batch, first, steps):
        """`steps` batches from update number `first` on: batch_rows(first + k) is the k-th batch of the rows
        repeated end to end, which tf.data cuts without materialising them (finite: fit() runs whole executions of
        steps_per_execution steps while its input lasts)."""
        import tensorflow as tf
        start = first * batch % len(x)
        rows = tf.data.Dataset.from_tensor_slices((np.roll(x, -start, axis=0), np.roll(y, -start, axis=0)))
        return rows.repeat().batch(batch).take(steps)

    def train(self, x, y, steps=None, checkpoints=()):
        steps = self.spec.steps if steps is None else steps
        x, y, b = x.astype(self.spec.dtype), y.astype(self.spec.dtype), self.spec.batch_for(len(x))
        recorder = self._compile(steps)
        start = time.perf_counter()
        saved = in_segments(self, steps, checkpoints, lambda first, n: self.model.fit(
            self.batches(x, y, b, first, n), steps_per_epoch=n, epochs=1, shuffle=False, verbose=0))
        return History(recorder.losses(steps), saved, time.perf_counter() - start)
    # endregion

    def _compile(self, steps):
        """compile() once for up to `steps` steps; a later, shorter train() reuses the traced step."""
        if self._recorder is None or self._recorder.capacity < steps:
            with floatx(self.spec.dtype):
                self._recorder = self.recorder(self.loss_fn, steps, self.spec.dtype)
                compile_model(self.model, self.loss_fn, self.optimizer, [self._recorder],
                              min(steps, self.steps_per_execution))
        self._recorder.restart()
        return self._recorder

    def forward(self, x):
        return keras.ops.convert_to_numpy(self.model(x.astype(self.spec.dtype)))  # (batch, 1)

    def loss(self, x, y):
        return float(self._loss_and_grads(x.astype(self.spec.dtype), y.astype(self.spec.dtype))[0])

    def gradients(self, x, y):
        g = self._loss_and_grads(x.astype(self.spec.dtype), y.astype(self.spec.dtype))[1]
        g = [np.asarray(keras.ops.convert_to_numpy(v), dtype=np.float64) for v in g]
        return [(g[i], g[i + 1]) for i in range(0, len(g), 2)]  # kernels are already (in, out)

    def _loss_and_grads(self, x, y):
        """(loss, [dW0, db0, ...]) as fit() computes them: in graph mode, where BCE reads the logits behind the
        sigmoid."""
        if not hasattr(self, "_graph_grads"):
            import tensorflow as tf
            self._graph_grads = tf.function(self._tape_grads)
        return self._graph_grads(x, y)

    def _tape_grads(self, x, y):
        import tensorflow as tf
        with tf.GradientTape() as tape:
            loss = self.loss_fn(y, self.model(x, training=True))
        return loss, tape.gradient(loss, self.model.trainable_variables)

    def params(self):
        return [tuple(np.asarray(w, dtype=np.float64) for w in layer.get_weights()) for layer in self.model.layers]
