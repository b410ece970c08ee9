"""XOR MLP in Keras 3 (TensorFlow backend): keras.Sequential of Dense, compile(), fit()."""
from __future__ import annotations

import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # read once, at the first `import keras`
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter off stderr
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # plain Eigen kernels: no reordered float sums (README)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from xor_rosetta.data import stream_rows  # noqa: E402
from xor_rosetta.interface import MLP, Conventions, History  # noqa: E402

tf.get_logger().setLevel("ERROR")  # every new model retraces fit's step; that is expected here

if keras.backend.backend() != "tensorflow":
    raise ImportError(f"the keras implementation needs KERAS_BACKEND=tensorflow, not {keras.backend.backend()!r}")

MAX_STEPS_PER_EXECUTION = 1000  # steps fused into one tf.function call by fit(); ~90 µs/step instead of ~0.8 ms


class StepLoss(keras.metrics.Metric):
    """Records the loss of every step inside fit()'s compiled loop (callbacks only fire once per execution)."""

    def __init__(self, loss_fn, steps, dtype):
        super().__init__(name="step_loss", dtype=dtype)
        self.loss_fn = loss_fn
        self.values = self.add_variable(shape=(steps,), initializer="zeros", name="values")  # (steps,)
        self.count = self.add_variable(shape=(), initializer="zeros", dtype="int64", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        loss = self.loss_fn(y_true, y_pred)  # same loss on the same forward pass as the update uses
        at, loss = keras.ops.reshape(self.count, (1, 1)), keras.ops.cast(keras.ops.reshape(loss, (1,)), self.dtype)
        self.values.assign(keras.ops.scatter_update(self.values, at, loss))
        self.count.assign_add(1)

    def reset_state(self):
        pass  # fit() resets metrics each epoch; this one keeps the whole run across fit() calls

    def result(self):
        return self.values[self.count - 1]  # the latest step's loss, shown in fit()'s logs


class LossHistory(keras.callbacks.Callback):
    """Collects every step's loss as fit() runs, reading what StepLoss recorded after each execution."""

    def __init__(self, recorder: StepLoss):
        super().__init__()
        self.recorder, self.losses = recorder, []

    def on_train_batch_end(self, batch, logs=None):
        done = int(self.recorder.count.numpy())  # steps run so far; one host sync per execution, not per step
        self.losses.extend(self.recorder.values[len(self.losses):done].numpy())


class floatx:
    """floatx = the spec's dtype while building: Keras creates the learning rate and compile()'s loss at floatx."""

    def __init__(self, dtype):
        self.dtype = dtype

    def __enter__(self):
        self.old = keras.config.floatx()
        keras.config.set_floatx(self.dtype)

    def __exit__(self, *exc):
        keras.config.set_floatx(self.old)


class KerasMLP(MLP):
    name = "keras"
    framework = "keras"
    conventions = Conventions(adam="keras", momentum="keras", bce="logits")

    def __init__(self, spec, params):
        super().__init__(spec, params)
        dt = spec.dtype  # explicit: the default dtype policy is fixed at its first use, whatever floatx says later
        self.model = keras.Sequential(
            [keras.Input((spec.layers[0],), dtype=dt)]
            + [keras.layers.Dense(n, activation=act, dtype=dt) for n, act in zip(spec.layers[1:], spec.activations)])
        for layer, (W, b) in zip(self.model.layers, params):
            layer.set_weights([W, b])  # Keras kernels are (in, out), as canonical
        loss_cls = keras.losses.MeanSquaredError if spec.loss == "mse" else keras.losses.BinaryCrossentropy
        self.loss_fn = loss_cls(dtype=dt)
        with floatx(dt):
            o, f = spec.optimizer, np.float64  # Keras casts a Python float through float32 (README)
            if o.name == "adam":
                self.optimizer = keras.optimizers.Adam(o.lr, beta_1=f(o.beta1), beta_2=f(o.beta2), epsilon=o.epsilon)
            else:
                self.optimizer = keras.optimizers.SGD(o.lr, momentum=f(o.momentum))

    def forward(self, x):
        return keras.ops.convert_to_numpy(self.model(x.astype(self.spec.dtype)))  # (batch, 1)

    def loss(self, x, y):
        return float(self._loss_and_grads(*self._tensors(x, y))[0])

    def gradients(self, x, y):
        g = [v.numpy().astype(np.float64) for v in self._loss_and_grads(*self._tensors(x, y))[1]]
        return [(g[i], g[i + 1]) for i in range(0, len(g), 2)]  # kernels are already (in, out)

    @tf.function  # graph mode, as in fit(): the BCE loss then reads the logits behind the sigmoid
    def _loss_and_grads(self, x, y):
        with tf.GradientTape() as tape:
            loss = self.loss_fn(y, self.model(x, training=True))
        return loss, tape.gradient(loss, self.model.trainable_variables)

    def train(self, x, y, steps=None, checkpoints=()):
        spec, want = self.spec, set(checkpoints)
        steps = spec.steps if steps is None else steps
        b = spec.batch_for(len(x))
        rows = stream_rows(self.steps_done, steps, b, len(x))  # every step's batch, end to end: (steps * batch,)
        xs, ys = self._tensors(x[rows], y[rows])
        history = LossHistory(self._compile(steps))
        start = time.perf_counter()
        saved = self._in_segments(steps, want, lambda a, k: self.model.fit(
            xs[a * b:k * b], ys[a * b:k * b], batch_size=b, epochs=1, shuffle=False, verbose=0, callbacks=[history]))
        return History(np.array(history.losses, dtype=np.float64), saved, time.perf_counter() - start)

    def _in_segments(self, steps, checkpoints, run) -> dict:
        """run(a, k) trains steps a..k-1 of this call, up to each checkpoint in turn (optimizer state carries
        over); returns the params at each checkpoint."""
        saved, done = {}, 0
        for k in sorted(set(checkpoints)) + [steps]:
            if k > done:
                run(done, k)
                self.steps_done += k - done
                done = k
            if k in checkpoints:
                saved[k] = self.params()
        return saved

    def _compile(self, steps) -> StepLoss:
        """compile() once for up to `steps` steps; a later, shorter train() reuses the traced step."""
        recorder = getattr(self, "_recorder", None)
        if recorder is None or recorder.values.shape[0] < steps:
            with floatx(self.spec.dtype):
                recorder = self._recorder = StepLoss(self.loss_fn, steps, self.spec.dtype)
                self.model.compile(optimizer=self.optimizer, loss=self.loss_fn, metrics=[recorder],
                                   steps_per_execution=min(steps, MAX_STEPS_PER_EXECUTION))
        recorder.count.assign(0)
        return recorder

    def params(self):
        return [tuple(w.astype(np.float64) for w in layer.get_weights()) for layer in self.model.layers]

    def _tensors(self, x, y):
        return tf.constant(x, dtype=self.spec.dtype), tf.constant(y, dtype=self.spec.dtype)
