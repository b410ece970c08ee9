"""XOR MLP in Keras 3 on the PyTorch backend: the model, loss, optimizer and fit() of `keras` (keras_mlp.py),
unchanged.

What differs is what Keras does underneath (README, "Keras on three backends"): on torch, Keras swaps in torch
foreach optimizer updates and clips probabilities before torch's BCE; fit() runs one eager step at a time; and
Keras 3.15 computes every Dense layer and every loss in float32 inside a float64 run, which no supported setting
changes.
"""
from __future__ import annotations

import os

os.environ["KERAS_BACKEND"] = "torch"  # read once per process, at the first `import keras`

import torch  # noqa: E402

from xor_rosetta.implementations import keras_mlp  # noqa: E402
from xor_rosetta.implementations._keras_recording import CycleRows, ListLoss  # noqa: E402
from xor_rosetta.interface import Conventions  # noqa: E402

# region model
# keras_mlp.build_model, unchanged: the same keras.Sequential of Dense layers; no line of it names a backend
# endregion

# region loss
# keras_mlp.make_loss, unchanged: the same Keras loss; BCE clips p to [1e-7, 1 - 1e-7] here, then calls
# torch's F.binary_cross_entropy (log clamped at -100), although the sigmoid's output carries its logits
# endregion

# region optimizer
# keras_mlp.make_optimizer, unchanged: the same Keras optimizer; on torch, Keras updates with torch._foreach_*
# ops: Adam's moments as m*b1 + (1 - b1)*g
# endregion

# region step
STEPS_PER_EXECUTION = 1  # Keras on torch refuses more: fit() runs each train step eagerly, from Python
# keras_mlp.compile_model, unchanged
# endregion


class KerasTorchMLP(keras_mlp.KerasMLP):
    name = "keras-torch"
    conventions = Conventions(adam="keras-torch", momentum="keras", bce="keras-torch")
    known_differences = {"float64": "Keras on torch: Keras 3.15 computes every Dense matmul and every loss value in "
                                    "float32 inside a float64 run (keras.backend.result_type maps float64 to float32: "
                                    "BIT64_TO_BIT32_DTYPE); no supported setting removes it"}
    backend = "torch"
    steps_per_execution = STEPS_PER_EXECUTION
    recorder = ListLoss  # the train step is eager here: a Python list is the cheapest record

    # region loop
    def batches(self, x, y, batch, first, steps):
        return CycleRows(x, y, batch, first, steps)  # a keras.utils.PyDataset cycling the distinct batches
    # endregion

    def _loss_and_grads(self, x, y):
        """(loss, [dW0, db0, ...]) as fit's torch train step computes them: autograd through the eager model."""
        variables = [v.value for v in self.model.trainable_variables]
        loss = self.loss_fn(y, self.model(x, training=True))
        return loss.detach(), torch.autograd.grad(loss, variables)
