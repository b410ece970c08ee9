"""Bit-identical results for the same spec: twice in one process, in two processes, under OMP_NUM_THREADS=1 and 2,
and with any number of worker processes at a time (`--jobs`).

Each implementation runs `train_impl` (what `compare` runs in a worker: gradients, every step's loss, params at
checkpoints, outputs) on every spec below, twice, in two processes: a worker of a pool with --jobs 1 and
OMP_NUM_THREADS=1, and a worker of a pool with --jobs 3 and OMP_NUM_THREADS=2. The second round in a process runs
after the other specs, so state that one run leaves for the next (compiled graphs, dtype policies) would show
too. Everything must be equal bit for bit: no tolerance. The two pools differ in both settings at once, to start
each framework twice instead of four times; a difference would name both, and one rerun with one setting changed
tells which. (The checks determinism and continuation, tests/test_common.py, run each implementation twice in the
test process as well.)

Each framework's start costs seconds in every pool (about 30 s for all nine, twice), so the default run covers
numpy, and the other implementations run with the `slow` tests (`pytest -m slow`, which CI runs).
"""
from __future__ import annotations

import functools

import numpy as np
import pytest

from conftest import IMPLS, load_or_skip
from impls.tasks import repeat_runs
from xor_rosetta import registry
from xor_rosetta.app.workers import pool as workers
from xor_rosetta.app.run.runner import References, checkpoints_for, judge_run, submit
from xor_rosetta.params import init_params
from xor_rosetta.presets import get_preset
from xor_rosetta.spec import Init, Optimizer, Spec

SPECS = {
    "seed-keras-200": get_preset("seed-keras").replace(steps=200),  # Adam, BCE, relu, float64
    "wide-momentum-batch3-f32": Spec(  # 256-wide layers: sums long enough for threads to split, if anything does
        layers=(2, 256, 256, 1), activations=("tanh", "relu", "sigmoid"), loss="bce", steps=50, batch_size=3,
        optimizer=Optimizer("sgd", lr=0.1, momentum=0.9), dtype="float32", init=Init("glorot-uniform", 4)),
}
DEFAULT = ("numpy",)  # the others: pytest -m slow
POOLS = {"jobs=1, OMP_NUM_THREADS=1": (1, "1"), "jobs=3, OMP_NUM_THREADS=2": (3, "2")}
pytestmark = pytest.mark.xdist_group("determinism")  # one xdist worker computes the runs, once


def tiered(names):
    return [n if n in DEFAULT else pytest.param(n, marks=pytest.mark.slow) for n in names]


@functools.cache
def pool_runs(slow: bool) -> dict[str, dict]:
    """pool label -> implementation -> repeat_runs(...) (or the error its worker ended with), for the default
    implementations or the slow ones."""
    names = [n for n in IMPLS if registry.unavailable_reason(registry.REGISTRY[n]) is None and (n in DEFAULT) != slow]
    out = {}
    for label, (jobs, threads) in POOLS.items():
        with workers.Pool(jobs, env={"OMP_NUM_THREADS": threads}) as pool:
            for n in names:
                submit(pool, n, n, repeat_runs, n, list(SPECS.values()))
            out[label] = {o.key: o.value if o.error is None else o.error for o in pool.results() if not o.note}
    return out


def in_pool(name: str, label: str):
    load_or_skip(name)  # skipped (or failed, in CI) with the reason when unavailable
    got = pool_runs(name not in DEFAULT)[label][name]
    assert not isinstance(got, str), got
    return got


def assert_identical(a: list, b: list, what: str, threads_differ: bool = False) -> None:
    """Two lists of ImplRun (one per spec), equal in every array.

    One exception, where the two processes ran with different thread counts: the decision-boundary picture's
    forward pass over 10,201 grid points. NumPy's BLAS (OpenBLAS) splits a matmul that large by thread count, so
    it may round differently: measured here, 2.98e-08 in float32 on the 256-wide spec (a quarter of float32's
    epsilon); it is checked to 4 epsilons of the largest output. Training (batches of at most 4 rows), gradients
    and the outputs on the 4 XOR rows stay bit-identical.
    """
    for (spec_name, spec), ra, rb in zip(SPECS.items(), a, b):
        assert ra.error is None and rb.error is None, (ra.error, rb.error)
        where = f"{what}, {spec_name}"
        if threads_differ:
            d, top = np.max(np.abs(ra.grid_outputs - rb.grid_outputs)), np.max(np.abs(ra.grid_outputs))
            assert d <= 4 * np.finfo(spec.dtype).eps * top, f"{where}: boundary grid outputs differ by {d:.3g}"
        else:
            assert np.array_equal(ra.grid_outputs, rb.grid_outputs), f"{where}: boundary grid outputs differ"
        pairs = [("loss", ra.history.loss, rb.history.loss), ("outputs", ra.outputs, rb.outputs)]
        pairs += [(f"gradient {i}", ga, gb) for i, (ga, gb) in enumerate(_flat(ra.grads, rb.grads))]
        for k in ra.history.checkpoints:
            pairs += [(f"params after {k} steps", pa, pb)
                      for pa, pb in _flat(ra.history.checkpoints[k], rb.history.checkpoints[k])]
        for label, x, y in pairs:
            assert np.array_equal(x, y), f"{where}: {label} differ by up to {np.max(np.abs(x - y)):.3g}"


def _flat(pa, pb):
    return [(x, y) for (Wa, ba), (Wb, bb) in zip(pa, pb) for x, y in ((Wa, Wb), (ba, bb))]


@pytest.mark.parametrize("name", tiered(IMPLS))
def test_twice_in_one_process(name):
    for label in POOLS:
        runs = in_pool(name, label)
        assert_identical([r[0] for r in runs], [r[1] for r in runs], f"{name}: first and second run, {label}")


@pytest.mark.parametrize("name", tiered(IMPLS))
def test_same_in_two_processes_for_any_jobs_and_omp_num_threads(name):
    """Two processes, one of a pool with --jobs 1 and OMP_NUM_THREADS=1, one of a pool with --jobs 3 and
    OMP_NUM_THREADS=2: the same runs, and the same verdicts and numbers once judged against the reference (as
    compare does)."""
    (la, a), (lb, b) = [(label, in_pool(name, label)) for label in POOLS]
    assert_identical([r[0] for r in a], [r[0] for r in b], f"{name}: {la} and {lb}", threads_differ=True)
    spec = SPECS["seed-keras-200"]
    refs = References(spec, init_params(spec), checkpoints_for(spec.steps))
    ja, jb = (judge_run(r[0][0], refs, 0.05) for r in (a, b))
    assert (ja.final_loss, ja.param_diff, ja.grad_diff, ja.steps_to_threshold, ja.judgement.verdict) == \
        (jb.final_loss, jb.param_diff, jb.grad_diff, jb.steps_to_threshold, jb.judgement.verdict)
