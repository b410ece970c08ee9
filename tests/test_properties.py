"""Property-based equivalence: random specs and weights, every implementation against the NumPy reference.

CI runs the "ci" profile (50 examples); `pytest tests/test_properties.py --hypothesis-profile=thorough` runs 2,000.
A mismatch writes the spec and initial weights to replay it with `xor-rosetta compare --config … --init …`.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import assume, event, given, settings, strategies as st

from conftest import load_or_skip
from implementations.numpy_mlp import NumpyMLP
from shared import reference, registry
from shared.compare import loss_mismatch, max_abs_diff, max_rel_diff
from shared.config import dump_toml
from shared.data import xor_data
from shared.interface import History
from shared.params import save_params, shapes
from shared.spec import ACTIVATIONS, Optimizer, Spec
from shared.tolerance import tolerance

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


def rounding_spread(spec, conventions, params, want: History):
    """The reference rerun with every activation off by one rounding (as another framework's tanh, sigmoid or exp
    may be), once with a random sign pattern and once with its opposite: (max |Δ params| after the last step,
    worst |Δ loss| as a fraction of the loss tolerance)."""
    exact, x, y, tol = reference.activate, *xor_data(), tolerance(spec.dtype)
    spread, loss_ratio = 0.0, 0.0
    for sign in (1.0, -1.0):
        rng = np.random.default_rng(0)

        def noisy(name, z):
            a = exact(name, z)
            return a * (1 + sign * 2.0**-53 * rng.choice([-1.0, 1.0], a.shape))  # unit roundoff: one rounding

        with patch.object(reference, "activate", noisy):
            got = NumpyMLP(spec, params, conventions=conventions).train(x, y, [spec.steps])
        spread = max(spread, max_abs_diff(got.checkpoints[spec.steps], want.checkpoints[spec.steps]))
        loss_ratio = max(loss_ratio, float(np.max(np.abs(got.loss - want.loss)
                                                  / (tol.loss_atol + tol.loss_rtol * np.abs(want.loss)))))
    return spread, loss_ratio


def replay_files(spec, params) -> str:
    folder = Path(tempfile.mkdtemp(prefix="xor-rosetta-mismatch-"))
    (folder / "spec.toml").write_text(dump_toml(spec))
    save_params(params, folder / "init.npz")
    return (f"\nspec:\n{dump_toml(spec)}\nreplay: xor-rosetta compare --config {folder / 'spec.toml'} "
            f"--init {folder / 'init.npz'}")


FAST = {"torch-compiled", "keras-xla"}  # each new spec costs them a compile (~1-3 s): a tenth of the examples


@pytest.mark.parametrize("name", [n for n in registry.REGISTRY if n not in FAST])
@given(case=specs_and_weights())
def test_random_specs_match_reference(name, case):
    check_against_reference(name, case)


@pytest.mark.parametrize("name", sorted(FAST))
@given(case=specs_and_weights())
def test_random_specs_match_reference_fast_variants(name, case):
    check_against_reference(name, case)


test_random_specs_match_reference_fast_variants = settings(
    max_examples=max(5, settings.default.max_examples // 10))(test_random_specs_match_reference_fast_variants)


def check_against_reference(name, case):
    cls = load_or_skip(name)
    spec, params = case
    x, y = xor_data()
    tol = tolerance("float64")
    with np.errstate(all="ignore"):
        want = NumpyMLP(spec, params, conventions=cls.conventions).train(x, y, checkpoints=[1, STEPS])
        spread, loss_ratio = rounding_spread(spec, cls.conventions, params, want)
    # The claim holds where the run is well-conditioned: if one rounding in the activations already moves the
    # reference by 1% of the tolerance, rounding alone (which differs between frameworks) can exceed it. Seen:
    # Adam with |g| far below epsilon, saturated sigmoids under BCE on probabilities, diverging runs.
    finite = bool(np.all(np.isfinite(want.loss)))
    ok = finite and spread <= tol.params / 100 and loss_ratio <= 1 / 100
    event("compared" if ok else "diverged: skipped" if not finite else "ill-conditioned: skipped")
    assume(ok)
    ref = NumpyMLP(spec, params, conventions=cls.conventions)
    model = cls(spec, params)
    problems = []
    fwd = float(np.max(np.abs(model.forward(x) - ref.forward(x))))
    if not fwd <= tol.forward:
        problems.append(f"forward differs by {fwd:.3g}")
    grad = max_rel_diff(model.gradients(x, y), ref.gradients(x, y))
    if not grad <= tol.gradient:
        problems.append(f"gradients differ by {grad:.3g} (relative)")
    with np.errstate(all="ignore"):
        got = model.train(x, y, checkpoints=[1, STEPS])
    for k in (1, STEPS):
        d = max_abs_diff(got.checkpoints[k], want.checkpoints[k])
        if not d <= tol.params:
            problems.append(f"params after step {k} differ by {d:.3g}")
    step = loss_mismatch(got.loss, want.loss, tol)
    if step is not None:
        problems.append(f"loss at step {step + 1}: {got.loss[step]!r} vs {want.loss[step]!r}")
    assert not problems, f"{name}: " + "; ".join(problems) + replay_files(spec, params)
