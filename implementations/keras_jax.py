"""XOR MLP in Keras 3 on the JAX backend: the model, loss, optimizer and fit() of `keras` (keras_mlp.py), unchanged.

What differs is what Keras does underneath (README, "Keras on three backends"): on JAX, BinaryCrossentropy cannot
read the logits behind the sigmoid, so it clips probabilities; and Keras 3.15 computes tanh and every loss in
float32 inside a float64 run, which no supported setting changes.
"""
from __future__ import annotations

import os

os.environ["KERAS_BACKEND"] = "jax"  # read once per process, at the first `import keras`
os.environ.setdefault("JAX_ENABLE_X64", "1")  # without it a float64 Keras variable silently holds float32 on JAX

import jax  # noqa: E402

if not jax.config.jax_enable_x64:  # jax was imported before this module: switch x64 on before any array exists
    jax.config.update("jax_enable_x64", True)

from xor_rosetta.implementations import keras_mlp  # noqa: E402
from xor_rosetta.implementations._keras_recording import CycleRows  # noqa: E402
from xor_rosetta.interface import Conventions  # noqa: E402

# region model
# keras_mlp.build_model, unchanged: the same keras.Sequential of Dense layers; no line of it names a backend
# endregion

# region loss
# keras_mlp.make_loss, unchanged: the same Keras loss; BCE clips p to [1e-7, 1 - 1e-7] here (a JAX array
# cannot carry the sigmoid's logits, as a TensorFlow tensor does), then takes the log
# endregion

# region optimizer
# keras_mlp.make_optimizer, unchanged: the same Keras optimizer, updated by the generic Keras code
# endregion

# region step
STEPS_PER_EXECUTION = 1000  # fit() runs that many jitted train steps per call, in a Python loop (not one program)
# keras_mlp.compile_model, unchanged
# endregion


class KerasJaxMLP(keras_mlp.KerasMLP):
    name = "keras-jax"
    conventions = Conventions(adam="keras", momentum="keras", bce="keras-jax")
    known_differences = {"float64": "Keras on JAX: Keras 3.15 computes tanh and every loss value in float32 inside "
                                    "a float64 run (keras.backend.result_type maps float64 to float32: "
                                    "BIT64_TO_BIT32_DTYPE); no supported setting removes it"}
    backend = "jax"
    steps_per_execution = STEPS_PER_EXECUTION

    # region loop
    def batches(self, x, y, batch, first, steps):
        return CycleRows(x, y, batch, first, steps)  # a keras.utils.PyDataset cycling the distinct batches
    # endregion

    def _loss_and_grads(self, x, y):
        """(loss, [dW0, db0, ...]) as fit's JAX train step computes them: jax.value_and_grad of a stateless call."""
        if not hasattr(self, "_jit_grads"):
            model, loss_fn = self.model, self.loss_fn

            def value(trainable, frozen, x, y):
                y_pred, _ = model.stateless_call(trainable, frozen, x, training=True)
                return loss_fn(y, y_pred)

            self._jit_grads = jax.jit(jax.value_and_grad(value))
        trainable = [v.value for v in self.model.trainable_variables]
        frozen = [v.value for v in self.model.non_trainable_variables]
        return self._jit_grads(trainable, frozen, x, y)
