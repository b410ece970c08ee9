"""Every implementation against the NumPy reference, in its own conventions, from identical weights."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import DTYPES, IMPLS, load_or_skip, trained, with_slow_marks
from xor_rosetta.compare import accuracy, judge, max_abs, max_abs_diff, max_rel_diff
from xor_rosetta.data import xor_data
from xor_rosetta.params import init_params
from xor_rosetta.presets import get_preset
from xor_rosetta.reference import Reference
from xor_rosetta.spec import Init, Optimizer, Spec
from xor_rosetta.tolerance import AGREES, tolerance

PRESET_SPECS = [get_preset("seed-numpy"), get_preset("seed-keras")]
CHECKPOINTS = (1, 10, 100, 10_000)


def policy(impl, dtype: str) -> str:
    """The dtype whose tolerance judges `impl` here. An implementation that declares a known difference in `dtype`
    (Keras on JAX and torch compute in float32 inside a float64 run: `MLP.known_differences`) is held to float32's
    tolerance, so that anything else wrong still fails; `compare` reports it DISAGREES, naming the cause, and
    tests/test_keras_backends.py asserts the difference is there, at its measured size."""
    return "float32" if dtype in getattr(impl, "known_differences", {}) else dtype


def pair(impl, spec):
    """(implementation, NumPy reference in that implementation's conventions), same initial weights."""
    params = init_params(spec)
    return impl(spec, params), Reference(spec, params, impl.conventions)


def assert_agrees(spec, model, ref, hist, want, checkpoints):
    """The policy's plain 'agrees' (no rounding-floor allowance): gradients, every loss, params at checkpoints."""
    x, y = xor_data(spec.dtype)
    j = judge(policy(type(model), spec.dtype), checkpoints, model.gradients(x, y), ref.gradients(x, y), hist.loss,
              want.loss, hist.checkpoints, want.checkpoints)
    assert j.status == AGREES, j.explanation


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("spec", PRESET_SPECS, ids=["seed-numpy", "seed-keras"])
def test_forward_matches_reference(impl, spec, dtype):
    spec = spec.replace(dtype=dtype)
    model, ref = pair(impl, spec)
    x, _ = xor_data(dtype)
    out, want = model.forward(x), ref.forward(x)
    assert out.shape == want.shape == (4, 1)
    assert np.max(np.abs(out - want)) <= tolerance(policy(impl, dtype)).forward * np.max(np.abs(want))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("spec", PRESET_SPECS, ids=["seed-numpy", "seed-keras"])
def test_loss_and_gradients_match_reference(impl, spec, dtype):
    spec = spec.replace(dtype=dtype)
    model, ref = pair(impl, spec)
    x, y = xor_data(dtype)
    tol = tolerance(policy(impl, dtype))
    assert abs(model.loss(x, y) - ref.loss(x, y)) <= tol.loss * abs(ref.loss(x, y))
    grads, want = model.gradients(x, y), ref.gradients(x, y)
    assert [tuple(a.shape for a in g) for g in grads] == [tuple(a.shape for a in g) for g in want]
    assert max_rel_diff(grads, want) <= tol.gradient


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", with_slow_marks(IMPLS))
def test_seed_numpy_trajectory_matches_reference(name, dtype):
    _, hist = trained(name, "seed-numpy", dtype)
    _, ref = trained(f"reference:{name}", "seed-numpy", dtype)
    judged = policy(load_or_skip(name), dtype)
    tol = tolerance(judged)
    for k in CHECKPOINTS:
        assert max_abs_diff(hist.checkpoints[k], ref.checkpoints[k]) <= tol.params * max_abs(ref.checkpoints[k]), \
            f"after {k} steps"
    assert hist.loss.shape == ref.loss.shape == (10_000,)
    spec = get_preset("seed-numpy").replace(dtype=dtype)
    j = judge(judged, CHECKPOINTS, None, None, hist.loss, ref.loss, hist.checkpoints, ref.checkpoints)
    assert j.status == AGREES, j.explanation
    if judged == "float64":  # the project's promise: the presets agree to 1e-12, absolute
        assert max(max_abs_diff(hist.checkpoints[k], ref.checkpoints[k]) for k in CHECKPOINTS) <= 1e-12
        assert tol.params * max(max_abs(ref.checkpoints[k]) for k in CHECKPOINTS) <= 1e-12
    assert spec.steps == 10_000


@pytest.mark.parametrize("name", with_slow_marks(IMPLS))
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
    ks = (1, 10, 100, 1_000)
    if policy(load_or_skip(name), "float64") == "float32":  # float32 inside: seed-keras is chaotic in float32
        ks, n = (1, 10, 100), 100  # after a few hundred steps (README), so judge its first 100 steps
        j = judge("float32", ks, None, None, hist.loss[:n], ref.loss[:n], hist.checkpoints, ref.checkpoints)
        assert j.status == AGREES, j.explanation
        return
    j = judge("float64", ks, None, None, hist.loss, ref.loss, hist.checkpoints, ref.checkpoints)
    assert j.status == AGREES, j.explanation
    assert max(max_abs_diff(hist.checkpoints[k], ref.checkpoints[k]) for k in ks) <= 1e-12


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


# The fast variants and keras-jax run the model, loss and optimizer settings of their idiomatic sibling (torch,
# keras, jax), whose coverage runs by default; theirs, a compile per spec, runs with the slow tests (-m slow).
SIBLINGS_COVER = {"torch-compiled", "keras-xla", "jax-scan", "keras-jax"}


@pytest.mark.parametrize("spec", COVERAGE.values(), ids=COVERAGE.keys())
@pytest.mark.slow_for(*SIBLINGS_COVER)
def test_every_option_matches_reference(impl, spec):
    model, ref = pair(impl, spec)
    x, y = xor_data(spec.dtype)
    tol = tolerance(policy(impl, spec.dtype))
    assert np.max(np.abs(model.forward(x) - ref.forward(x))) <= tol.forward * np.max(np.abs(ref.forward(x)))
    hist, want = model.train(x, y, checkpoints=[1, 30, 60]), ref.train(x, y, checkpoints=[1, 30, 60])
    model2, ref2 = pair(impl, spec)
    assert_agrees(spec, model2, ref2, hist, want, (1, 30, 60))


def test_coverage_table_covers_every_option():
    specs = list(COVERAGE.values())
    assert {a for s in specs for a in s.activations} == {"tanh", "sigmoid", "relu", "linear"}
    assert {s.loss for s in specs} == {"mse", "bce"}
    kinds = {"adam" if s.optimizer.name == "adam" else "momentum" if s.optimizer.momentum else "sgd" for s in specs}
    assert kinds == {"sgd", "momentum", "adam"}
    assert {s.dtype for s in specs} == {"float32", "float64"}
    assert any(s.batch_size not in (None, 4) for s in specs)


def test_same_spec_twice_is_bit_identical(impl):
    spec = get_preset("seed-keras").replace(steps=200)
    x, y = xor_data()
    runs = [impl(spec, init_params(spec)) for _ in range(2)]
    hists = [m.train(x, y) for m in runs]
    assert max_abs_diff(runs[0].params(), runs[1].params()) == 0.0
    assert np.array_equal(hists[0].loss, hists[1].loss)


SPLIT = {
    "adam-batch3": get_preset("seed-keras").replace(steps=30, batch_size=3),
    "momentum-batch1": Spec(layers=(2, 3, 1), activations=("tanh", "sigmoid"), loss="bce", steps=30, batch_size=1,
                            optimizer=Optimizer("sgd", lr=0.5, momentum=0.9), init=Init("glorot-uniform", 2)),
}


@pytest.mark.parametrize("spec", SPLIT.values(), ids=SPLIT.keys())
def test_train_continues_where_it_stopped(impl, spec):
    """The train() contract: 12 steps then 18 do exactly what 30 do (optimizer state and batch window carry on)."""
    x, y = xor_data()
    whole, split = impl(spec, init_params(spec)), impl(spec, init_params(spec))
    h = whole.train(x, y, steps=30, checkpoints=[12, 30])
    a, b = split.train(x, y, steps=12, checkpoints=[12]), split.train(x, y, steps=18, checkpoints=[18])
    assert whole.steps_done == split.steps_done == 30
    assert np.array_equal(h.loss, np.concatenate([a.loss, b.loss]))
    assert max_abs_diff(h.checkpoints[12], a.checkpoints[12]) == 0.0
    assert max_abs_diff(h.checkpoints[30], b.checkpoints[18]) == 0.0
    assert max_abs_diff(whole.params(), split.params()) == 0.0
