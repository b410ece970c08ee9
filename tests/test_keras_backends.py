"""The Keras model on three backends, and the JAX implementations: what only they need tested.

- Keras on JAX and on torch computes in float32 inside a float64 run (`known_differences`): the difference is there,
  at its measured size, and its cause is Keras' own dtype table; the day Keras changes that, these tests say so.
- Feeding fit() does not materialise every step's batch, and training memory grows by the loss history only.
"""
from __future__ import annotations


import numpy as np
import pytest

from conftest import load_or_skip, runs_here, trained, with_slow_marks
from impls import keras_tasks
from xor_rosetta import registry
from xor_rosetta.app.workers import pool as workers
from xor_rosetta.compare import max_abs, max_abs_diff, max_rel_diff
from xor_rosetta.data import batch_period, batch_rows, xor_data
from xor_rosetta.params import init_params
from xor_rosetta.presets import get_preset
from xor_rosetta.reference import Reference
from xor_rosetta.tolerance import tolerance

FLOAT32_INSIDE = ["keras-jax", "keras-torch"]
KERAS = ["keras", "keras-xla", "keras-jax", "keras-torch"]


def in_process_of(name: str, fn, *args):
    """fn(*args) in `name`'s process: here, or the session worker of its group."""
    load_or_skip(name)
    if runs_here(name):
        return fn(*args)
    entry = registry.get_entry(name)
    return workers.session().get(entry.process_key, entry.env).call(fn, *args)


@pytest.mark.parametrize("name", with_slow_marks(FLOAT32_INSIDE))
def test_float64_run_computes_in_float32_inside(name):
    """Forward pass, gradients and seed-numpy's params after 10,000 steps, each off the float64 reference by
    float32 rounding: past float64's tolerance, inside float32's (measured 2e-8 to 2e-7, docs/differences.md)."""
    cls = load_or_skip(name)
    assert "float64" in cls.known_differences and "float32" not in cls.known_differences
    spec = get_preset("seed-numpy")
    x, y = xor_data()
    model, ref = cls(spec, init_params(spec)), Reference(spec, init_params(spec), cls.conventions)
    _, hist = trained(name, "seed-numpy", "float64")
    _, want = trained(f"reference:{name}", "seed-numpy", "float64")
    measured = {
        "forward": np.max(np.abs(model.forward(x) - ref.forward(x))) / np.max(np.abs(ref.forward(x))),
        "gradients": max_rel_diff(model.gradients(x, y), ref.gradients(x, y)),
        "params after 10,000 steps": max_abs_diff(hist.checkpoints[10_000], want.checkpoints[10_000])
        / max_abs(want.checkpoints[10_000]),
    }
    f64, f32 = tolerance("float64"), tolerance("float32")
    for (what, rel), part in zip(measured.items(), ("forward", "gradient", "params")):
        assert rel > getattr(f64, part), f"{name}: {what} now agree to {rel:.2g}: has Keras stopped computing " \
                                         f"float64 in float32? Then drop its known difference (docs/differences.md)"
        assert rel <= getattr(f32, part), f"{name}: {what} differ by {rel:.2g}, more than float32 rounding explains"


@pytest.mark.parametrize("name", with_slow_marks(FLOAT32_INSIDE))
def test_the_cause_is_keras_dtype_table(name):
    """keras.backend.result_type maps float64 to float32 on every backend but TensorFlow (Keras >= 3.12)."""
    assert in_process_of(name, keras_tasks.keras_float64_result_type) == (name.split("-")[1], "float32")
    assert in_process_of("keras", keras_tasks.keras_float64_result_type) == ("tensorflow", "float64")


@pytest.mark.parametrize("name", ["keras", "keras-jax", "keras-torch"])
def test_fit_is_fed_without_materialising_the_steps(name):
    """A trillion steps of input cost what a few do; the batches are batch_rows' windows, from any first step."""
    steps, first = 10 ** 12, 5
    got = in_process_of(name, keras_tasks.feed, name, first, steps)
    assert got["length"] == steps
    assert got["peak_bytes"] < 1_000_000, f"building fit's input took {got['peak_bytes']:,} bytes"
    x, y = xor_data()
    for k, (xb, yb) in enumerate(got["head"]):
        rows = batch_rows(first + k, 3, len(x))
        assert np.array_equal(xb, x[rows]) and np.array_equal(yb, y[rows]), f"batch {k}"


@pytest.mark.parametrize("name", ["keras", pytest.param("keras-xla", marks=pytest.mark.slow),
                                  pytest.param("keras-jax", marks=pytest.mark.slow), "jax",
                                  pytest.param("jax-scan", marks=pytest.mark.slow)])
def test_training_memory_grows_by_the_loss_history_only(name):
    """Peak Python-tracked memory (NumPy arrays included) of training 1,000 and 6,000 steps: the difference is the
    longer loss history (8 bytes a step, a copy or two), where every step's batch laid out would be 100 and more."""
    small, large = in_process_of(name, keras_tasks.traced_peaks, name, (1_000, 6_000))
    assert (large - small) / 5_000 <= 32, f"{name}: {(large - small) / 5_000:.0f} bytes more per step"


@pytest.mark.parametrize("batch,n", [(4, 4), (3, 4), (1, 4), (2, 4), (65_536, 65_536), (3, 65_536), (6, 9)])
def test_batches_precomputed_are_the_distinct_windows_only(batch, n):
    """batch_rows(k) depends on k mod batch_period only; the Keras feeds and the jax loop precompute that many
    windows. They precomputed n: a 65,536-row full batch asked for 34 GB and the kernel killed bench's workers."""
    p = batch_period(batch, n)
    for k in range(0, 3 * p + 2, max(1, p // 5)):
        assert np.array_equal(batch_rows(k, batch, n), batch_rows(k % p, batch, n))
    if n <= 9:  # every window appears within one period
        assert len({tuple(batch_rows(k, batch, n)) for k in range(p)}) == p


def test_keras_feeds_hold_one_window_for_a_full_batch():
    load_or_skip("keras")
    from xor_rosetta.implementations._keras_recording import distinct_batches
    x = np.zeros((65_536, 2))
    xs, ys = distinct_batches(x, x[:, :1], 65_536)
    assert xs.shape == (1, 65_536, 2) and ys.shape == (1, 65_536, 1)
