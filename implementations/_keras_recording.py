"""Plumbing shared by the Keras implementations (keras, keras-xla, keras-jax, keras-torch), kept out of their idiom:
recording every step's loss from inside fit(), floatx while building, feeding fit() without materialising every
step's batch, and training in segments up to each checkpoint. Backend-neutral: it imports keras only, so the
module that imports it first must have set KERAS_BACKEND.
"""
from __future__ import annotations

import keras
import numpy as np

from xor_rosetta.data import batch_period, batch_rows


class floatx:
    """floatx = the spec's dtype while building: Keras creates the learning rate and compile()'s loss at floatx."""

    def __init__(self, dtype):
        self.dtype = dtype

    def __enter__(self):
        self.old = keras.config.floatx()
        keras.config.set_floatx(self.dtype)

    def __exit__(self, *exc):
        keras.config.set_floatx(self.old)


def require_backend(name: str) -> None:
    """KERAS_BACKEND is read once per process, at the first `import keras`: refuse to build on another backend."""
    if keras.backend.backend() != name:
        raise RuntimeError(f"this implementation needs KERAS_BACKEND={name}, but Keras was already imported here "
                           f"with {keras.backend.backend()!r} (Keras reads it once per process)")


class StepLoss(keras.metrics.Metric):
    """Records the loss of every step inside fit()'s compiled loop, where callbacks fire once per execution only.
    The variables are read after fit() returns (on JAX, fit syncs its state back to them only then)."""

    def __init__(self, loss_fn, capacity, dtype):
        super().__init__(name="step_loss", dtype=dtype)
        self.loss_fn, self.capacity = loss_fn, capacity
        self.values = self.add_variable(shape=(capacity,), initializer="zeros", name="values")  # (capacity,)
        self.count = self.add_variable(shape=(), initializer="zeros", dtype="int64", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        loss = self.loss_fn(y_true, y_pred)  # same loss on the same forward pass as the update uses
        at, loss = keras.ops.reshape(self.count, (1, 1)), keras.ops.cast(keras.ops.reshape(loss, (1,)), self.dtype)
        self.values.assign(keras.ops.scatter_update(self.values, at, loss))
        self.count.assign_add(1)

    def reset_state(self):
        pass  # fit() resets metrics each epoch; this one keeps the whole run across fit() calls

    def restart(self):
        self.count.assign(0)

    def result(self):
        return self.values[self.count - 1]  # the latest step's loss, shown in fit()'s logs

    def losses(self, steps) -> np.ndarray:
        return np.asarray(keras.ops.convert_to_numpy(self.values.value), dtype=np.float64)[:steps]


class ListLoss(keras.metrics.Metric):
    """StepLoss for the torch backend, where fit's train step runs eagerly: each step's loss goes straight into a
    NumPy array (cheaper than a scatter into a variable; fit's symbolic build also calls update_state once, on
    'meta' tensors, which are skipped)."""

    def __init__(self, loss_fn, capacity, dtype):
        super().__init__(name="step_loss", dtype=dtype)
        self.loss_fn, self.capacity = loss_fn, capacity
        self.values, self.count = np.zeros(capacity), 0  # (capacity,): the loss history itself, 8 bytes a step

    def update_state(self, y_true, y_pred, sample_weight=None):
        loss = self.loss_fn(y_true, y_pred)
        if loss.device.type != "meta":
            self.values[self.count] = loss.item()
            self.count += 1

    def reset_state(self):
        pass

    def restart(self):
        self.count = 0

    def result(self):
        return keras.ops.convert_to_tensor(self.values[max(self.count - 1, 0)], dtype=self.dtype)

    def losses(self, steps) -> np.ndarray:
        return self.values[:steps].copy()


def distinct_batches(x: np.ndarray, y: np.ndarray, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """The p = batch_period(batch, len(x)) batches that `batch_rows` cycles through, in its order: (p, batch, 2),
    (p, batch, 1). batch_rows(k) depends on k mod p only, so step k's batch is entry k % p: nothing grows with the
    steps."""
    rows = np.stack([batch_rows(k, batch, len(x)) for k in range(batch_period(batch, len(x)))])  # (p, batch)
    return x[rows], y[rows]


class CycleRows(keras.utils.PyDataset):
    """fit()'s input on JAX and torch: `steps` batches from update number `first` on, in batch_rows order, served
    from the distinct batches (memory does not grow with the step count)."""

    def __init__(self, x, y, batch, first, steps):
        super().__init__()
        self.xs, self.ys = distinct_batches(x, y, batch)
        self.first, self.steps = first, steps

    def __len__(self):
        return self.steps

    def __getitem__(self, i):
        k = (self.first + i) % len(self.xs)
        return self.xs[k], self.ys[k]


def in_segments(mlp, steps: int, checkpoints, run) -> dict:
    """run(first, n) trains n steps from update number `first` (optimizer state carries over), up to each
    checkpoint in turn; counts them in mlp.steps_done; returns the params at each checkpoint of this call."""
    checkpoints = set(checkpoints)
    saved, done = {}, 0
    for k in sorted(c for c in checkpoints if 0 < c <= steps) + [steps]:
        if k > done:
            run(mlp.steps_done, k - done)
            mlp.steps_done += k - done
            done = k
        if k in checkpoints:
            saved[k] = mlp.params()
    return saved
