"""Shared fixtures: implementations by name (skipped with the reason when unavailable) and cached runs.

An implementation whose process needs another environment than this one (KERAS_BACKEND=jax beside Keras on
TensorFlow: Keras reads it once per process) runs in a worker process of its group, through
`xor_rosetta.app.workers.remote.RemoteMLP`; the others run here, which keeps the suite fast. The workers live for the
whole session, one per group, and end with it.
"""
from __future__ import annotations

import functools
import os

import pytest

from xor_rosetta import registry
from xor_rosetta.app.workers import pool as workers, remote
from xor_rosetta.checks import set_loader
from xor_rosetta.data import xor_data
from xor_rosetta.params import init_params
from xor_rosetta.presets import get_preset

IMPLS = list(registry.REGISTRY)
DTYPES = ["float64", "float32"]
REQUIRE_ALL = os.environ.get("XOR_ROSETTA_REQUIRE_ALL") == "1"  # CI: a missing framework fails, never skips
SLOW = {"keras-torch"}  # ~2 ms a step (Keras runs each torch step eagerly): its 10,000-step runs are marked slow


def with_slow_marks(names):
    """Parameters for tests that run seed-numpy's 10,000 steps: the SLOW implementations marked `slow` (README)."""
    return [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in names]

# This process's process-wide settings: what the first built-in entry that sets one needs (KERAS_BACKEND=tensorflow),
# unless the environment says otherwise; fixed here, before any framework is imported, so that which entries run
# here does not depend on the order the tests run in.
for _entry in registry.ENTRIES:
    for _key, _value in _entry.env:
        os.environ.setdefault(_key, _value)


set_loader(remote.load_anywhere)  # the checks load a built-in that cannot share this process in its worker

# Mutation runs (tests/mutation/mutate.py) set a wall-clock limit per test: a mutant that makes a test wait forever
# (a worker that never answers) fails that test instead. mutmut's own limit counts CPU seconds, and a wait uses none.
WALL_S = float(os.environ.get("XOR_ROSETTA_TEST_WALL_S") or 0)


def _past_the_wall(signum, frame):
    pytest.fail(f"past {WALL_S:g} s of wall-clock time (XOR_ROSETTA_TEST_WALL_S)", pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    if not WALL_S:
        yield
        return
    import signal
    old = signal.signal(signal.SIGALRM, _past_the_wall)
    signal.setitimer(signal.ITIMER_REAL, WALL_S)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def runs_here(name: str) -> bool:
    """Whether `name` can run in the test process (else it runs in a worker)."""
    return not remote.needs_own_process(registry.get_entry(name))


def load_or_skip(name: str):
    """The implementation's class, or for one that cannot share this process, a RemoteMLP class for it."""
    try:
        if runs_here(name):
            return registry.load(name)
        reason = registry.unavailable_reason(registry.get_entry(name))
        if reason is not None:
            raise registry.UnavailableError(f"implementation {name!r} is unavailable: {reason}")
        return remote.remote_class(name)
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


def pytest_sessionfinish(session):
    workers.close_session()


# Hypothesis: a bounded profile for CI (the default) and a thorough one: pytest --hypothesis-profile=thorough
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("ci", max_examples=50, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=2_000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
