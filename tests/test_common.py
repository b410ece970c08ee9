"""Every built-in implementation proven by the conformance kit, the way anyone's implementation is proven (as
scikit-learn's test_common runs its own estimators through check_estimator): one test per implementation and check,
ids `<implementation>-<check>` (`pytest -k jax-update_adam`). keras-jax and keras-torch declare their known
difference (float32 inside a float64 run), so their checks judge them under its model, as `verify` does."""
from __future__ import annotations

import pytest

from conftest import IMPLS, SLOW, load_or_skip
from xor_rosetta.checks import CHECKS, parametrize_with_checks
from xor_rosetta.presets import get_preset
from xor_rosetta.params import init_params
from xor_rosetta.reference import Reference
from xor_rosetta.data import xor_data
from xor_rosetta.compare import max_abs
from xor_rosetta.tolerance import tolerance

QUICK = ("numpy",)  # the quick tier (pytest -m quick): the core's own implementation
FLOAT32 = ["forward", "loss", "gradients", "update_sgd", "update_adam", "steps_10", "steps_1000", "preset_seed_numpy",
           "preset_seed_keras"]  # the battery in float32: the numbers, both presets in full


SIBLINGS = ("torch-compiled", "keras-xla", "jax-scan", "keras-jax")  # the idiomatic four's model, loss and optimizer


def tier(impl):
    return [pytest.mark.slow] if impl in SLOW else [pytest.mark.quick] if impl in QUICK else []


def sibling_tier(impl):
    """The siblings' batteries run with the slow tests (CI runs both tiers): by default each sibling is proven by
    seed-numpy's 10,000 steps (test_seed_numpy_in_full) and its golden cases, and its idiomatic sibling (torch, keras,
    jax) by every check; that keeps the default suite within 3 minutes on two cores."""
    return [pytest.mark.slow] if impl in SIBLINGS else tier(impl)


@parametrize_with_checks(IMPLS, marks=sibling_tier, checks=[c for c in CHECKS if c != "preset_seed_numpy"])
def test_checks(impl, check):
    """The quick battery in float64: every check (seed-numpy in full is the next test's)."""
    check(load_or_skip(impl))


@parametrize_with_checks(IMPLS, level="full", checks=["preset_seed_numpy"], marks=tier)
def test_seed_numpy_in_full(impl, check):
    """seed-numpy's 10,000 steps in float64, against the reference, and converged."""
    check(load_or_skip(impl))


@parametrize_with_checks(IMPLS, level="full", dtype="float32", checks=FLOAT32, marks=sibling_tier)
def test_checks_in_float32(impl, check):
    check(load_or_skip(impl))


@pytest.mark.quick
@pytest.mark.parametrize("preset", ["seed-numpy", "seed-keras"])
def test_float64_policy_keeps_the_promise_of_1e_12(preset):
    """The project's promise, 1e-12 absolute in float64 over the presets' runs: the policy allows params at most
    `params` x max |param|, and every |param| of both presets' reference runs stays where that is <= 1e-12."""
    spec = get_preset(preset)
    x, y = xor_data()
    ks = [1, 10, 100, 1_000, spec.steps]
    hist = Reference(spec, init_params(spec)).train(x, y, checkpoints=ks)
    assert max(tolerance("float64").params * max_abs(hist.checkpoints[k]) for k in ks) <= 1e-12
