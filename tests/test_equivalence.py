"""Every implementation against the NumPy reference, in its own conventions, from identical weights."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import DTYPES, IMPLS, trained
from implementations.numpy_mlp import NumpyMLP
from shared.compare import accuracy, loss_mismatch, max_abs_diff, max_rel_diff
from shared.data import xor_data
from shared.params import init_params
from shared.presets import get_preset
from shared.spec import Init, Optimizer, Spec
from shared.tolerance import tolerance

PRESET_SPECS = [get_preset("seed-numpy"), get_preset("seed-keras")]
CHECKPOINTS = (1, 10, 100, 10_000)


def pair(impl, spec):
    """(implementation, NumPy reference in that implementation's conventions), same initial weights."""
    params = init_params(spec)
    return impl(spec, params), NumpyMLP(spec, params, conventions=impl.conventions)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("spec", PRESET_SPECS, ids=["seed-numpy", "seed-keras"])
def test_forward_matches_reference(impl, spec, dtype):
    spec = spec.replace(dtype=dtype)
    model, ref = pair(impl, spec)
    x, _ = xor_data(dtype)
    out, want = model.forward(x), ref.forward(x)
    assert out.shape == want.shape == (4, 1)
    assert np.max(np.abs(out - want)) <= tolerance(dtype).forward


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("spec", PRESET_SPECS, ids=["seed-numpy", "seed-keras"])
def test_loss_and_gradients_match_reference(impl, spec, dtype):
    spec = spec.replace(dtype=dtype)
    model, ref = pair(impl, spec)
    x, y = xor_data(dtype)
    tol = tolerance(dtype)
    assert abs(model.loss(x, y) - ref.loss(x, y)) <= tol.loss_atol + tol.loss_rtol * abs(ref.loss(x, y))
    grads, want = model.gradients(x, y), ref.gradients(x, y)
    assert [tuple(a.shape for a in g) for g in grads] == [tuple(a.shape for a in g) for g in want]
    assert max_rel_diff(grads, want) <= tol.gradient


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", IMPLS)
def test_seed_numpy_trajectory_matches_reference(name, dtype):
    _, hist = trained(name, "seed-numpy", dtype)
    _, ref = trained(f"reference:{name}", "seed-numpy", dtype)
    tol = tolerance(dtype)
    for k in CHECKPOINTS:
        assert max_abs_diff(hist.checkpoints[k], ref.checkpoints[k]) <= tol.params, f"after {k} steps"
    assert hist.loss.shape == ref.loss.shape == (10_000,)
    assert loss_mismatch(hist.loss, ref.loss, tol) is None


@pytest.mark.parametrize("name", IMPLS)
def test_seed_numpy_converges(name):
    model, hist = trained(name, "seed-numpy", "float64")
    x, y = xor_data()
    assert model.loss(x, y) < 1e-6
    assert hist.loss[-1] < 1e-6  # the loss before the last update
    assert accuracy(model.forward(x), y) == 1.0


@pytest.mark.parametrize("name", IMPLS)
def test_seed_keras_converges_with_documented_init(name):
    model, _ = trained(name, "seed-keras", "float64")
    x, y = xor_data()
    assert accuracy(model.forward(x), y) == 1.0


@pytest.mark.parametrize("name", IMPLS)
def test_seed_keras_trajectory_matches_reference(name):
    _, hist = trained(name, "seed-keras", "float64")
    _, ref = trained(f"reference:{name}", "seed-keras", "float64")
    tol = tolerance("float64")
    for k in (1, 10, 100, 1_000):
        assert max_abs_diff(hist.checkpoints[k], ref.checkpoints[k]) <= tol.params, f"after {k} steps"
    assert loss_mismatch(hist.loss, ref.loss, tol) is None


def test_same_spec_twice_is_bit_identical(impl):
    spec = get_preset("seed-keras").replace(steps=200)
    x, y = xor_data()
    runs = [impl(spec, init_params(spec)) for _ in range(2)]
    hists = [m.train(x, y) for m in runs]
    assert max_abs_diff(runs[0].params(), runs[1].params()) == 0.0
    assert np.array_equal(hists[0].loss, hists[1].loss)


# Every option through every implementation at least once (activation, loss, optimizer, dtype, minibatch).
COVERAGE = {
    "sigmoid-mse-momentum-batch3-f64": Spec(
        layers=(2, 4, 1), activations=("sigmoid", "linear"), loss="mse",
        optimizer=Optimizer("sgd", lr=0.5, momentum=0.9), steps=60, batch_size=3, init=Init("glorot-uniform", 3)),
    "relu-tanh-bce-adam-batch2-f64": Spec(
        layers=(2, 6, 3, 1), activations=("relu", "tanh", "sigmoid"), loss="bce",
        optimizer=Optimizer("adam", lr=0.05, epsilon=1e-8), steps=60, batch_size=2, init=Init("seed-uniform", 7)),
    "linear-bce-sgd-f32": Spec(
        layers=(2, 3, 1), activations=("linear", "sigmoid"), loss="bce",
        optimizer=Optimizer("sgd", lr=0.3), steps=60, dtype="float32", init=Init("glorot-uniform", 5)),
    "tanh-relu-mse-adam-batch1-f32": Spec(
        layers=(2, 8, 8, 1), activations=("tanh", "relu", "linear"), loss="mse",
        optimizer=Optimizer("adam", lr=0.01, beta1=0.8, beta2=0.99), steps=60, batch_size=1, dtype="float32",
        init=Init("seed-uniform", 2)),
    "sigmoid-bce-momentum-f32": Spec(
        layers=(2, 5, 1), activations=("sigmoid", "sigmoid"), loss="bce",
        optimizer=Optimizer("sgd", lr=0.5, momentum=0.5), steps=60, dtype="float32", init=Init("glorot-uniform", 11)),
}


@pytest.mark.parametrize("spec", COVERAGE.values(), ids=COVERAGE.keys())
def test_every_option_matches_reference(impl, spec):
    model, ref = pair(impl, spec)
    x, y = xor_data(spec.dtype)
    tol = tolerance(spec.dtype)
    assert np.max(np.abs(model.forward(x) - ref.forward(x))) <= tol.forward
    assert max_rel_diff(model.gradients(x, y), ref.gradients(x, y)) <= tol.gradient
    hist, want = model.train(x, y, checkpoints=[1, 30]), ref.train(x, y, checkpoints=[1, 30])
    for k in (1, 30):
        assert max_abs_diff(hist.checkpoints[k], want.checkpoints[k]) <= tol.params, f"after {k} steps"
    assert max_abs_diff(model.params(), ref.params()) <= tol.params
    assert loss_mismatch(hist.loss, want.loss, tol) is None


def test_coverage_table_covers_every_option():
    specs = list(COVERAGE.values())
    assert {a for s in specs for a in s.activations} == {"tanh", "sigmoid", "relu", "linear"}
    assert {s.loss for s in specs} == {"mse", "bce"}
    kinds = {"adam" if s.optimizer.name == "adam" else "momentum" if s.optimizer.momentum else "sgd" for s in specs}
    assert kinds == {"sgd", "momentum", "adam"}
    assert {s.dtype for s in specs} == {"float32", "float64"}
    assert any(s.batch_size not in (None, 4) for s in specs)
