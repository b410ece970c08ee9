"""Module-level task functions for tests/test_keras_backends.py, run in an implementation's own process (a worker
imports a task's function by name)."""
from __future__ import annotations


def keras_float64_result_type() -> tuple[str, str]:
    """(backend, the dtype Keras gives an operation on two float64 tensors)."""
    import keras
    return keras.backend.backend(), keras.backend.result_type("float64", "float64")


def traced_peaks(name: str, steps: tuple[int, ...]) -> list[int]:
    """The peak of Python-tracked memory (NumPy arrays included) while `name` trains each number of steps in turn,
    on one instance already trained (compiled) for each: what feeding and recording fit() costs."""
    import tracemalloc

    from xor_rosetta import registry
    from xor_rosetta.data import xor_data
    from xor_rosetta.params import init_params
    from xor_rosetta.presets import get_preset
    spec = get_preset("seed-numpy").replace(batch_size=3)
    x, y = xor_data()
    model = registry.load(name)(spec, init_params(spec))
    for n in steps:  # compiles and traces for each length first (keras-xla, jax-scan compile per length)
        model.train(x, y, steps=n)
    peaks = []
    for n in steps:
        tracemalloc.start()
        model.train(x, y, steps=n)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    return peaks


def feed(name: str, first: int, steps: int, batch: int = 3) -> dict:
    """What a Keras implementation hands fit() for `steps` updates from update number `first`: its length, the
    peak Python-tracked memory (NumPy arrays included) of building it, and its first five batches."""
    import tracemalloc

    import numpy as np

    from xor_rosetta import registry
    from xor_rosetta.data import xor_data
    from xor_rosetta.params import init_params
    from xor_rosetta.presets import get_preset
    spec = get_preset("seed-numpy").replace(batch_size=batch)
    x, y = xor_data()
    model = registry.load(name)(spec, init_params(spec))
    tracemalloc.start()
    data = model.batches(x, y, batch, first, steps)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    if hasattr(data, "cardinality"):  # tf.data
        length, head = int(data.cardinality()), [(a.numpy(), b.numpy()) for a, b in data.take(5)]
    else:  # keras.utils.PyDataset
        length, head = len(data), [data[i] for i in range(5)]
    return {"length": length, "peak_bytes": peak, "head": [(np.asarray(a), np.asarray(b)) for a, b in head]}
