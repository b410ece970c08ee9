"""Property-based equivalence: random specs and weights, every implementation against the NumPy reference.

CI runs the "ci" profile (50 examples); `HYPOTHESIS_PROFILE=thorough pytest tests/test_properties.py` runs 2,000.
Each example is judged by the tolerance policy (`xor_rosetta.tolerance`): plain agreement, agreement within the
run's own rounding noise, or an ill-conditioned run; only a disagreement fails, and it writes the spec and initial
weights to replay it with `xor-rosetta compare --config … --init …`.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import event, given, settings, strategies as st

from conftest import load_or_skip
from xor_rosetta import registry
from xor_rosetta.app.common.config import dump_toml
from xor_rosetta.app.common.files import save_params
from xor_rosetta.compare import judge
from xor_rosetta.data import xor_data
from xor_rosetta.params import shapes
from xor_rosetta.reference import Reference, rounding_floor
from xor_rosetta.spec import ACTIVATIONS, Optimizer, Spec
from xor_rosetta.tolerance import DISAGREES, WORDS, tolerance

STEPS = 20


@st.composite
def specs_and_weights(draw):
    hidden = draw(st.lists(st.integers(1, 8), min_size=1, max_size=3))  # depth 1-3 hidden layers, widths 1-8
    loss = draw(st.sampled_from(["mse", "bce"]))
    acts = [draw(st.sampled_from(ACTIVATIONS)) for _ in hidden]
    acts.append("sigmoid" if loss == "bce" else draw(st.sampled_from(ACTIVATIONS)))
    lr = draw(st.floats(1e-3, 1.0))
    if draw(st.sampled_from(["sgd", "momentum", "adam"])) == "adam":
        opt = Optimizer("adam", lr=lr, beta1=draw(st.floats(0.5, 0.99)), beta2=draw(st.floats(0.9, 0.9999)),
                        epsilon=draw(st.sampled_from([1e-8, 1e-7, 1e-4])))
    else:
        opt = Optimizer("sgd", lr=lr, momentum=draw(st.sampled_from([0.0, 0.5, 0.9])))
    batch = draw(st.sampled_from([None, 1, 2, 3, 4]))
    spec = Spec(layers=(2, *hidden, 1), activations=tuple(acts), loss=loss, optimizer=opt, steps=STEPS,
                batch_size=batch)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.floats(0.1, 2.0))
    params = [(rng.uniform(-scale, scale, w), rng.uniform(-scale, scale, b)) for w, b in shapes(spec)]
    return spec, params


def replay_files(spec, params) -> str:
    folder = Path(tempfile.mkdtemp(prefix="xor-rosetta-mismatch-"))
    (folder / "spec.toml").write_text(dump_toml(spec))
    save_params(params, folder / "init.npz")
    return (f"\nspec:\n{dump_toml(spec)}\nreplay: xor-rosetta compare --config {folder / 'spec.toml'} "
            f"--init {folder / 'init.npz'}")


# each new spec costs them a compile (~0.5-3 s), or for Keras a new model and fit's set-up (~1 s): a fifteenth of
# the examples (3 in CI; HYPOTHESIS_PROFILE=thorough: 133 each)
FAST = {"torch-compiled", "keras-xla", "jax", "jax-scan", "keras-jax", "keras", "keras-torch"}


@pytest.mark.parametrize("name", [n for n in registry.REGISTRY if n not in FAST])
@given(case=specs_and_weights())
def test_random_specs_match_reference(name, case):
    check_against_reference(name, case)


@pytest.mark.slow  # the compiled variants' property tests (their idiomatic siblings' run by default)
@pytest.mark.parametrize("name", sorted(FAST))
@given(case=specs_and_weights())
def test_random_specs_match_reference_fast_variants(name, case):
    check_against_reference(name, case)


test_random_specs_match_reference_fast_variants = settings(
    max_examples=max(3, settings.default.max_examples // 15))(test_random_specs_match_reference_fast_variants)


def check_against_reference(name, case):
    cls = load_or_skip(name)
    spec, params = case
    if spec.dtype in getattr(cls, "known_differences", {}):  # Keras on JAX and torch: float32 inside a float64 run,
        spec = spec.replace(dtype="float32")  # so the claim is made in float32 (tests/test_keras_backends.py)
    x, y = xor_data()
    ks = [1, STEPS]
    with np.errstate(all="ignore"):
        ref, model = Reference(spec, params, cls.conventions), cls(spec, params)
        fwd, want_fwd = model.forward(x), ref.forward(x)
        grads, want_grads = model.gradients(x, y), ref.gradients(x, y)
        want, got = ref.train(x, y, checkpoints=ks), model.train(x, y, checkpoints=ks)
    if not np.all(np.isfinite(want.loss)):
        event("diverged: set aside")
        return
    problems = []
    if not np.max(np.abs(fwd - want_fwd)) <= tolerance(spec.dtype).forward * np.max(np.abs(want_fwd)):
        problems.append(f"forward differs by {np.max(np.abs(fwd - want_fwd)):.3g}")
    j = judge(spec.dtype, ks, grads, want_grads, got.loss, want.loss, got.checkpoints, want.checkpoints,
              floor=lambda: rounding_floor(spec, params, cls.conventions, want, ks, x, y))
    event(WORDS[j.status])
    if j.status == DISAGREES:
        problems.append(j.explanation)
    assert not problems, f"{name}: " + "; ".join(problems) + replay_files(spec, params)
