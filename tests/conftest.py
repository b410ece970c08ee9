"""Shared fixtures: implementations by name (skipped with the reason when unavailable) and cached runs."""
from __future__ import annotations

import functools
import os

import pytest

from xor_rosetta import registry
from xor_rosetta.data import xor_data
from xor_rosetta.params import init_params
from xor_rosetta.presets import get_preset

IMPLS = list(registry.REGISTRY)
DTYPES = ["float64", "float32"]
REQUIRE_ALL = os.environ.get("XOR_ROSETTA_REQUIRE_ALL") == "1"  # CI: a missing framework fails, never skips


def load_or_skip(name: str):
    try:
        return registry.load(name)
    except registry.UnavailableError as e:
        if REQUIRE_ALL:
            pytest.fail(str(e))
        pytest.skip(str(e))


@pytest.fixture(params=IMPLS)
def impl(request):
    """Each implementation class, id'd by name."""
    return load_or_skip(request.param)


@functools.cache
def trained(name: str, preset: str, dtype: str, checkpoints=(1, 10, 100, 1_000, 10_000)):
    """(model, history) for a preset run, computed once per session; `name` may be 'reference:<impl>'."""
    spec = get_preset(preset).replace(dtype=dtype)
    x, y = xor_data(dtype)
    params = init_params(spec)
    if name.startswith("reference:"):
        from xor_rosetta.reference import Reference
        model = Reference(spec, params, load_or_skip(name.split(":")[1]).conventions)
    else:
        model = load_or_skip(name)(spec, params)
    history = model.train(x, y, checkpoints=[k for k in checkpoints if k <= spec.steps])
    return model, history


# Hypothesis: a bounded profile for CI (the default) and a thorough one: pytest --hypothesis-profile=thorough
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("ci", max_examples=50, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=2_000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
