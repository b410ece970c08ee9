"""The sweep's planning and engine at the edges a resume or a crash reaches: a partly done seed is planned again with
its finished runs skipped, tasks are chunked so that every worker gets several, and a worker that dies takes only
the run it was doing: the crashed seed's other runs in the same worker group are run by a fresh worker."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from xor_rosetta.app.sweep.engine import Progress, Store, run_local
from xor_rosetta.app.sweep.plan import (BATCH_CHUNK, BATCHED, CANONICAL, NATIVE_INIT, Task, _failed, _summary,
                                        batched_group, plan_tasks, run_task)
from xor_rosetta.compare import DEFAULT_THRESHOLD
from xor_rosetta.tolerance import DISAGREES
from xor_rosetta.data import xor_data
from xor_rosetta.implementations.numpy_mlp import NumpyMLP
from xor_rosetta.params import init_params
from xor_rosetta.presets import get_preset

VARIANTS = (CANONICAL, NATIVE_INIT)


def planned(tasks) -> list[tuple]:
    return sorted(k for t in tasks for k in t.keys())


def test_resume_plans_a_partly_done_seed_and_skips_only_its_finished_runs():
    """Seed 1 has one of its two runs done, seed 2 both: seed 1 is planned again for the other run alone."""
    done = {(1, CANONICAL, "numpy"), (2, CANONICAL, "numpy"), (2, NATIVE_INIT, "numpy")}
    tasks = plan_tasks(["numpy"], range(4), VARIANTS, jobs=1, done=done)
    assert planned(tasks) == sorted((s, v, "numpy") for s in (0, 1, 3) for v in VARIANTS if s != 1 or v != CANONICAL)
    assert all(2 not in t.seeds for t in tasks)
    (t1,) = [t for t in tasks if 1 in t.seeds]
    assert (1, CANONICAL, "numpy") in t1.skip and (1, NATIVE_INIT, "numpy") not in t1.skip


def test_resume_of_a_finished_sweep_plans_nothing():
    done = {(s, v, "numpy") for s in range(3) for v in VARIANTS}
    assert plan_tasks(["numpy"], range(3), VARIANTS, jobs=2, done=done) == []
    assert plan_tasks(["numpy", "numpy-batched"], range(3), (CANONICAL,), jobs=2,
                      done={(s, CANONICAL, "numpy") for s in range(3)})[0].impls == ("numpy-batched",)


def test_every_run_is_planned_once_in_chunks_that_give_each_worker_several():
    """One-at-a-time runs: at least four tasks a worker, at most 50 seeds a task; --timeout: one seed a task;
    a batched path: one task a worker, up to BATCH_CHUNK seeds each."""
    seeds = range(400)
    for jobs in (1, 3):
        tasks = plan_tasks(["numpy"], seeds, (CANONICAL,), jobs)
        assert planned(tasks) == [(s, CANONICAL, "numpy") for s in seeds]
        assert all(1 <= len(t.seeds) <= 50 for t in tasks) and len(tasks) >= 4 * jobs
        assert all(not t.batched and t.group == "numpy" for t in tasks)
    few = plan_tasks(["numpy"], range(12), (CANONICAL,), jobs=1)
    assert len(few) == 4 and all(len(t.seeds) == 3 for t in few)  # ceil(12 / 4): four tasks for the one worker
    assert [t.seeds for t in plan_tasks(["numpy"], range(3), (CANONICAL,), jobs=1, one_seed=True)] == [(0,), (1,), (2,)]
    batched = plan_tasks(["numpy-batched"], range(10), (CANONICAL,), jobs=3)
    assert [len(t.seeds) for t in batched] == [4, 4, 2] and all(t.batched for t in batched)
    big = plan_tasks(["numpy-batched"], range(BATCH_CHUNK + 1), (CANONICAL,), jobs=1)
    assert [len(t.seeds) for t in big] == [BATCH_CHUNK, 1]


CRASHY = '''
import os
from xor_rosetta.implementations.numpy_mlp import NumpyMLP


class Crashy(NumpyMLP):
    name = "crashy"

    def train(self, x, y, steps=None, checkpoints=()):
        if os.environ.get("XR_TASK_ENV") != "set" or os.environ.get("OMP_NUM_THREADS") != "1":
            os._exit(5)  # every worker, a resubmitted task's too, has its group's environment and one thread
        if self.spec.init.seed in (2, 3):
            os._exit(3)  # the whole worker goes, as a segfaulting framework's would
        return super().train(x, y, steps, checkpoints)
'''


def test_a_crash_resubmits_the_crashed_seeds_other_runs(tmp_path, monkeypatch):
    """Two implementations in one worker group: each crash (seeds 2 and 3, crashy) is that run's error; numpy's
    runs of those seeds, which the worker had not reached, are run by a fresh worker, with the group's environment
    and one thread: 10 runs of 10."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # the sweep sets it for its workers
    plugin = tmp_path / "crashy.py"
    plugin.write_text(CRASHY)
    crashy = f"{plugin}:Crashy"
    spec = get_preset("seed-numpy").replace(steps=20)
    task = Task("one-group", (("XR_TASK_ENV", "set"),), (crashy, "numpy"), tuple(range(5)), (CANONICAL,))
    store = Store(tmp_path / "out", {"spec": spec.to_dict(), "threshold": 0.01}, resume=False)
    try:
        run_local([task], spec.to_dict(), DEFAULT_THRESHOLD[spec.loss], store, Progress(10, 0, False), 1, None)
    finally:
        store.close()
    assert sorted(store.done) == sorted((s, CANONICAL, n) for s in range(5) for n in (crashy, "numpy"))
    for s in range(5):
        for n in (crashy, "numpy"):
            r = store.done[(s, CANONICAL, n)]
            if n == crashy and s in (2, 3):
                assert r["error"] == "worker exited with status 3"
            else:
                assert r["agreement"] == "agrees" and r["error"] is None, r
    lines = (tmp_path / "out" / "runs.jsonl").read_text().splitlines()
    assert len(lines) == 10 and len({(r["seed"], r["impl"]) for r in map(json.loads, lines)}) == 10


@pytest.mark.parametrize("batched", [True, False])
def test_runs_past_the_timeout_each_get_that_error(tmp_path, batched):
    """A batched task is one computation: all its runs share the timeout; one-at-a-time runs time out one by one,
    the rest of the task going to a fresh worker each time."""
    spec = get_preset("seed-numpy").replace(steps=10_000)
    impl = "numpy-batched" if batched else "numpy"
    task = Task("numpy", (), (impl,), (0, 1, 2), (CANONICAL,), batched=batched)
    store = Store(tmp_path / "out", {"spec": spec.to_dict(), "threshold": 0.01}, resume=False)
    try:
        run_local([task], spec.to_dict(), 1e-6, store, Progress(3, 0, False), 1, 0.01)
    finally:
        store.close()
    assert sorted(store.done) == [(s, CANONICAL, impl) for s in range(3)]
    assert all(r["error"] == "timeout after 0.01 s" and r["final_loss"] is None for r in store.done.values())


def direct(spec, seed):
    """seed's run of numpy, trained here: (final loss, accuracy, steps to the threshold, converged)."""
    from xor_rosetta.data import xor_data
    from xor_rosetta.implementations.numpy_mlp import NumpyMLP
    from xor_rosetta.params import init_params
    from xor_rosetta.compare import accuracy
    s = spec.replace(init=replace(spec.init, seed=seed))
    x, y = xor_data()
    m = NumpyMLP(s, init_params(s))
    h = m.train(x, y)
    below = np.flatnonzero(h.loss < DEFAULT_THRESHOLD[s.loss])
    acc = accuracy(m.forward(x), y)
    final = float(m.loss(x, y))
    return final, acc, int(below[0]) + 1 if below.size else None, final < DEFAULT_THRESHOLD[s.loss] and acc == 1.0


@pytest.mark.parametrize("preset, steps", [("seed-numpy", 600), ("seed-keras", 60)])
def test_run_task_records_what_direct_runs_give(preset, steps):
    """In this process (no worker): each (seed, variant, numpy) run's record against the same run made directly;
    the finished run skipped; numpy has no framework defaults, so its native-init run is a skipped record."""
    spec = get_preset(preset).replace(steps=steps)
    threshold = DEFAULT_THRESHOLD[spec.loss]
    task = Task("numpy", (), ("numpy",), (0, 1, 2), VARIANTS, skip=frozenset({(2, CANONICAL, "numpy")}))
    msgs = run_task(task, spec.to_dict(), threshold)
    assert [(m["kind"], m["seed"], m["variant"], m["impl"]) for m in msgs] == \
        [("run", s, v, "numpy") for s, v, _ in task.keys()]
    fields = set(_failed(None))
    for m in msgs:
        assert fields <= set(m)
        if m["variant"] == NATIVE_INIT:
            assert m["skipped"] == "no framework defaults of its own" and all(m[k] is None for k in fields)
            continue
        final, acc, reached, converged = direct(spec, m["seed"])
        assert m["final_loss"] == pytest.approx(final, rel=1e-12, abs=0) and m["accuracy"] == acc
        assert m["steps_to_threshold"] == reached and m["converged"] is converged and m["diverged_at"] is None
        assert (m["agreement"], m["status"], m["error"]) == ("agrees", 0, None)
        assert m["conventions"] == registry_conventions("numpy")
        assert m["epsilon"] == (spec.optimizer.epsilon if spec.optimizer.name == "adam" else None)
        assert m["init"] == f"{spec.init.scheme} seed {m['seed']}" and m["seconds"] > 0


def registry_conventions(name):
    from xor_rosetta import registry
    return registry.load(name).conventions.to_dict()


def test_a_failed_runs_record_has_every_field_empty_but_the_error():
    rec = _failed("worker exited with status 3")
    assert rec["error"] == "worker exited with status 3"
    assert all(v is None for k, v in rec.items() if k != "error")
    assert set(rec) == {"final_loss", "accuracy", "steps_to_threshold", "diverged_at", "converged", "agreement",
                        "status", "explanation", "error"}


def test_a_judged_runs_record_carries_the_judgements_verdict_status_and_explanation():
    from xor_rosetta.app.run.runner import RunResult
    from xor_rosetta.compare import Finding, Judgement
    first = Finding(DISAGREES, "params", 7, 0.5, 0.001, None)
    res = RunResult("numpy", final_loss=0.25, accuracy=0.75, steps_to_threshold=None,
                    judgement=Judgement(DISAGREES, first, [first]))
    assert _summary(res, 1e-6) == {
        "final_loss": 0.25, "accuracy": 0.75, "steps_to_threshold": None, "diverged_at": None, "converged": False,
        "agreement": "DISAGREES", "status": DISAGREES, "explanation": "at step 7: params differ by 0.5 (allowed 0.001)",
        "error": None}


def test_an_unavailable_implementation_is_a_failed_record(tmp_path):
    plugin = tmp_path / "broken.py"
    plugin.write_text("raise ImportError('no such framework')\n")
    name = f"{plugin}:Nope"
    spec = get_preset("seed-numpy").replace(steps=10)
    (m,) = run_task(Task("g", (), (name,), (0,), (CANONICAL,)), spec.to_dict(), 0.01)
    assert (m["seed"], m["impl"], m["final_loss"]) == (0, name, None) and "no such framework" in m["error"]


def test_batched_paths_join_their_frameworks_worker_group(monkeypatch):
    from xor_rosetta import registry
    for name, (_, entry, _) in BATCHED.items():
        e = registry.get_entry(entry)
        assert batched_group(name) == (e.process_key, e.env)
    assert batched_group("jax-vmap") == ("jax", (("JAX_ENABLE_X64", "1"),))
    monkeypatch.setitem(BATCHED, "x-vmap", ("x", "x-unregistered", "a path whose framework has no entry"))
    assert batched_group("x-vmap") == ("x-unregistered", ())


def test_numpy_batched_gives_the_one_at_a_time_runs():
    spec = get_preset("seed-numpy").replace(steps=600)
    threshold = DEFAULT_THRESHOLD[spec.loss]
    msgs = run_task(Task("numpy", (), ("numpy-batched",), (0, 1, 2), (CANONICAL, NATIVE_INIT), batched=True),
                    spec.to_dict(), threshold)
    runs = {(m["seed"], m["variant"]): m for m in msgs}
    assert sorted(runs) == [(s, v) for s in (0, 1, 2) for v in (CANONICAL, NATIVE_INIT)]
    for s in (0, 1, 2):
        m = runs[(s, CANONICAL)]
        final, acc, reached, converged = direct(spec, s)
        assert m["final_loss"] == pytest.approx(final, rel=1e-9, abs=0) and m["accuracy"] == acc
        assert m["steps_to_threshold"] == reached and m["converged"] is converged and m["diverged_at"] is None
        assert m["agreement"] is None and m["error"] is None and m["epsilon"] is None
        assert m["init"] == f"{spec.init.scheme} seed {s}" and m["conventions"] == registry_conventions("numpy")
        assert runs[(s, NATIVE_INIT)]["skipped"] == "no framework defaults of its own"


def test_groups_batched_paths_and_environments_are_each_planned():
    """A batched path before a one-at-a-time implementation, a finished group before an unfinished one: every group
    is planned, each task with its group's environment."""
    tasks = plan_tasks(["numpy-batched", "numpy"], range(2), (CANONICAL,), jobs=1)
    assert {(t.impls, t.batched) for t in tasks} == {(("numpy",), False), (("numpy-batched",), True)}
    done = {(s, CANONICAL, "numpy") for s in range(2)}
    tasks = plan_tasks(["numpy", "jax", "jax-vmap"], range(2), (CANONICAL,), jobs=1, done=done)
    assert {(t.group, t.impls, t.env) for t in tasks} == {("jax", ("jax",), (("JAX_ENABLE_X64", "1"),)),
                                                          ("jax", ("jax-vmap",), (("JAX_ENABLE_X64", "1"),))}
    (t,) = plan_tasks(["jax"], range(1), (CANONICAL,), jobs=1)  # a one-at-a-time group's own environment
    assert (t.group, t.env) == ("jax", (("JAX_ENABLE_X64", "1"),))


@pytest.mark.parametrize("seeds, jobs, one_seed, sizes", [
    (3, 1, False, [1, 1, 1]),  # ceil(3 / 4) = 1 seed a task
    (20, 1, False, [5] * 4),  # four tasks for the one worker
    (20, 2, False, [3] * 6 + [2]),  # ceil(20 / 8) = 3
    (12, 1, True, [1] * 12),  # --timeout: one seed a task, whatever the sizes would be
])
def test_chunk_sizes(seeds, jobs, one_seed, sizes):
    tasks = plan_tasks(["numpy"], range(seeds), (CANONICAL,), jobs, one_seed=one_seed)
    assert [len(t.seeds) for t in tasks] == sizes


def test_converged_is_strictly_under_the_threshold_and_four_of_four():
    """The threshold set to a run's own final loss: not converged (loss < threshold is strict); 200 steps of
    seed-numpy: some runs are 4/4 correct with the loss still over 1e-6, and are not converged either."""
    spec = get_preset("seed-numpy").replace(steps=200)
    final, acc, _, _ = direct(spec, 0)
    (m,) = run_task(Task("numpy", (), ("numpy",), (0,), (CANONICAL,)), spec.to_dict(), final)
    assert m["final_loss"] == final and m["converged"] is False
    (m,) = run_task(Task("numpy", (), ("numpy",), (0,), (CANONICAL,)), spec.to_dict(), np.nextafter(final, 1))
    assert m["converged"] is (acc == 1.0)
    msgs = run_task(Task("numpy", (), ("numpy",), tuple(range(6)), (CANONICAL,)), spec.to_dict(), 1e-6)
    assert any(m["accuracy"] == 1.0 and not m["converged"] for m in msgs)
    for m in msgs:
        assert m["converged"] is direct(spec, m["seed"])[3]


def test_a_run_that_raises_is_a_failed_record():
    spec = get_preset("seed-numpy").replace(steps=10)
    name = "tests/impls/crashy.py:RaisesMLP"
    (m,) = run_task(Task("g", (), (name,), (0,), (CANONICAL,)), spec.to_dict(), 0.01)
    assert "broken on purpose" in m["error"] and m["final_loss"] is None and m["converged"] is None


def test_in_a_worker_each_record_is_sent_to_the_parent_as_it_is_made(monkeypatch):
    """Records go to the parent one by one (a worker that dies later loses none of them), the same as returned."""
    from xor_rosetta.app.workers import serve

    class Conn:
        sent = []

        def send(self, obj):
            self.sent.append(obj)

    monkeypatch.setattr(serve, "_current", (Conn(), 7))
    spec = get_preset("seed-numpy").replace(steps=20)
    msgs = run_task(Task("numpy", (), ("numpy",), (0, 1), (CANONICAL,)), spec.to_dict(), 1e-6)
    assert all(n[:2] == ("note", 7) for n in Conn.sent)
    assert [n[2] for n in Conn.sent if "kind" in n[2]] == msgs and len(msgs) == 2


def test_framework_defaults_are_drawn_once_a_seed_and_switched_one_at_a_time():
    """torch, in this process, under the four variants: its own init (drawn once a seed, sent as an init message)
    and its own epsilon switched one at a time; every run agrees with the reference from the same weights."""
    from conftest import load_or_skip
    load_or_skip("torch")
    from xor_rosetta.app.sweep.plan import VARIANTS
    from xor_rosetta.implementations import native
    spec = get_preset("seed-keras").replace(steps=20)
    msgs = run_task(Task("torch", (), ("torch",), (3,), tuple(VARIANTS)), spec.to_dict(), 0.05)
    inits = [m for m in msgs if m["kind"] == "init"]
    assert [(m["group"], m["family"], m["seed"]) for m in inits] == [("torch", "torch", 3)]
    for m in inits:
        drawn = native.draw("torch", spec, m["seed"])
        assert all(np.array_equal(W, w) and np.array_equal(b, c) for (W, b), (w, c) in zip(drawn, m["params"]))
    runs = {(m["seed"], m["variant"]): m for m in msgs if m["kind"] == "run"}
    for (seed, variant), m in runs.items():
        own_init, own_eps = VARIANTS[variant]
        assert m["epsilon"] == (native.EPSILON["torch"] if own_eps else spec.optimizer.epsilon)
        assert m["init"] == (f"torch default seed {seed}" if own_init else f"{spec.init.scheme} seed {seed}")
        assert m["agreement"] == "agrees" and m["error"] is None, m
    assert sorted(runs) == [(3, v) for v in sorted(VARIANTS)]
    assert runs[(3, CANONICAL)]["final_loss"] != runs[(3, NATIVE_INIT)]["final_loss"]


def test_torch_vmap_runs_are_judged_network_by_network():
    """torch-vmap, in this process: every seed and variant judged against the batched reference (it agrees), its
    own init drawn for the variants that ask for it, its own epsilon likewise, the same runs as torch one at a time."""
    from conftest import load_or_skip
    load_or_skip("torch")
    from xor_rosetta.app.sweep.plan import VARIANTS
    from xor_rosetta.implementations import native
    spec = get_preset("seed-keras").replace(steps=20)
    task = Task("torch", (), ("torch-vmap",), (3, 4), tuple(VARIANTS), batched=True)
    msgs = run_task(task, spec.to_dict(), 0.05)
    inits = {(m["seed"], m["family"]) for m in msgs if m["kind"] == "init"}
    assert inits == {(3, "torch"), (4, "torch")}
    runs = {(m["seed"], m["variant"]): m for m in msgs if m["kind"] == "run"}
    one = {(m["seed"], m["variant"]): m for m in run_task(Task("torch", (), ("torch",), (3, 4), tuple(VARIANTS)),
                                                          spec.to_dict(), 0.05) if m["kind"] == "run"}
    assert sorted(runs) == sorted(one) == sorted((s, v) for s in (3, 4) for v in VARIANTS)
    for (seed, variant), m in runs.items():
        own_init, own_eps = VARIANTS[variant]
        assert m["epsilon"] == (native.EPSILON["torch"] if own_eps else spec.optimizer.epsilon)
        assert m["init"] == (f"torch default seed {seed}" if own_init else f"{spec.init.scheme} seed {seed}")
        assert (m["agreement"], m["status"], m["error"], m["diverged_at"]) == ("agrees", 0, None, None), m
        o = one[(seed, variant)]
        assert m["final_loss"] == pytest.approx(o["final_loss"], rel=1e-9, abs=0) and m["accuracy"] == o["accuracy"]
        assert m["converged"] == o["converged"] and m["conventions"]["adam"] == "torch"


def test_parse_seeds_and_variants():
    from xor_rosetta.app.sweep.plan import NATIVE, NATIVE_EPS, parse_seeds, variants_for
    from xor_rosetta.errors import XorRosettaError
    assert parse_seeds("5") == range(0, 5) and parse_seeds("3:7") == range(3, 7) and parse_seeds("0:1") == range(1)
    for bad, words in (("x", "--seeds takes N or A:B"), ("1:x", "--seeds takes N or A:B"), ("0", "names no seeds"),
                       ("5:5", "names no seeds"), ("-1:3", "names no seeds"), ("7:3", "names no seeds")):
        with pytest.raises(XorRosettaError, match=words):
            parse_seeds(bad)
    sgd, adam = get_preset("seed-numpy"), get_preset("seed-keras")
    assert variants_for(sgd, False) == variants_for(adam, False) == (CANONICAL,)
    assert variants_for(sgd, True) == (CANONICAL, NATIVE_INIT)  # no epsilon without Adam
    assert variants_for(adam, True) == (CANONICAL, NATIVE_INIT, NATIVE_EPS, NATIVE)


def test_params_from_an_init_message():
    from xor_rosetta.app.sweep.plan import params_from_message
    (W0, b0), (W1, b1) = params_from_message({"params": [[[[1, 2]], [3]], [[[4], [5]], [6.5]]]})
    assert W0.dtype == b0.dtype == W1.dtype == b1.dtype == np.float64 and W0.shape == (1, 2) and W1.shape == (2, 1)
    assert W0.tolist() == [[1.0, 2.0]] and b0.tolist() == [3.0] and b1.tolist() == [6.5]


def test_diverging_batched_runs_are_judged_up_to_where_they_stopped():
    """lr 50: every run diverges at the same step, one at a time and batched; torch-vmap is judged on what both it
    and the batched reference ran while finite (its floor measured where a difference is over the tolerance)."""
    from conftest import load_or_skip
    load_or_skip("torch")
    from xor_rosetta.spec import Optimizer
    spec = get_preset("seed-numpy").replace(steps=100, optimizer=Optimizer("sgd", lr=50.0))
    one = {m["seed"]: m for m in run_task(Task("numpy", (), ("numpy",), (0, 1, 2), (CANONICAL,)), spec.to_dict(), 1e-6)}
    for impl in ("numpy-batched", "torch-vmap"):
        for m in run_task(Task("g", (), (impl,), (0, 1, 2), (CANONICAL,), batched=True), spec.to_dict(), 1e-6):
            o = one[m["seed"]]
            assert o["diverged_at"] is not None and m["diverged_at"] == o["diverged_at"]
            assert m["final_loss"] is None and m["converged"] is False and m["error"] is None
            if impl == "torch-vmap":
                assert m["status"] in (0, 1, 2) and (m["explanation"] is None) == (m["status"] == 0), m
            else:
                assert m["agreement"] is m["status"] is m["explanation"] is None


# ------------------------------------------------------------------------- records at their edges, field by field

def seeded(spec, seed):
    return spec.replace(init=replace(spec.init, seed=seed))


class Clock:
    """plan.py's `time`: perf_counter starts at 1000 s and moves `tick` seconds a call, so that a record's seconds
    are known to the last digit it keeps."""

    def __init__(self, tick: float):
        self.now, self.tick = 1000.0, tick

    def perf_counter(self) -> float:
        self.now += self.tick
        return self.now


DRAW_OFFSET = {"torch": 1000, "keras": 2000, "flax": 3000}


def fake_draw(fam, spec, seed):
    """native.draw without the frameworks: each family's own weights (the spec's init at another seed)."""
    return init_params(seeded(spec, seed + DRAW_OFFSET[fam]))


def init_message(group, fam, spec, seed):
    return {"kind": "init", "group": group, "family": fam, "seed": seed,
            "params": [[W.tolist(), b.tolist()] for W, b in fake_draw(fam, spec, seed)]}


def stand_in_path(monkeypatch, module: str, conventions, edit=None, grad_edit=None):
    """A batched path's module, xor_rosetta.implementations.batched.<module>, stood in for by the batched NumPy
    reference in `conventions` (so it agrees, network by network), its Batch changed by `edit` and its gradients by
    `grad_edit`: what a path that goes wrong in those ways would give."""
    import sys
    import types
    from xor_rosetta.implementations.batched import numpy as vectorised

    def train(spec, conv, arrays, threshold=0.0, steps=None, checkpoints=(), keep_loss=False):
        assert conv == conventions  # as the real paths insist: they compute in their own conventions only
        batch = vectorised.train(spec, conv, arrays, threshold, steps, checkpoints, keep_loss)
        if edit is not None:
            edit(batch)
        return batch

    def gradients(spec, conv, arrays):
        assert conv == conventions
        g = vectorised.gradients(spec, conv, arrays)
        if grad_edit is not None:
            grad_edit(g)
        return g

    mod = types.ModuleType(f"xor_rosetta.implementations.batched.{module}")
    mod.CONVENTIONS, mod.train, mod.gradients = conventions, train, gradients
    monkeypatch.setitem(sys.modules, mod.__name__, mod)


def test_numpy_batched_records_are_the_one_at_a_time_records():
    """numpy-batched against numpy one at a time, every field of every record (native-init first, which numpy
    skips: the canonical variant after it still runs); then the batched record at its own boundaries: the threshold
    just over and at the initial loss (steps to the threshold 1, then more), just over and at the final loss
    (converged, then not)."""
    from xor_rosetta import registry
    from xor_rosetta.implementations.batched import numpy as vectorised
    spec = get_preset("seed-numpy").replace(steps=200)
    seeds, variants = (0, 1, 2), (NATIVE_INIT, CANONICAL)
    batched = Task("numpy", (), ("numpy-batched",), seeds, variants, batched=True)
    one = {(m["seed"], m["variant"]): m for m in run_task(Task("numpy", (), ("numpy",), seeds, variants),
                                                          spec.to_dict(), 1e-6)}
    msgs = run_task(batched, spec.to_dict(), 1e-6)
    assert [(m["kind"], m["seed"], m["variant"], m["impl"]) for m in msgs] == \
        [("run", s, v, "numpy-batched") for v in variants for s in seeds]  # a variant at a time
    for m in msgs:
        o = one[(m["seed"], m["variant"])]
        assert set(m) == set(o) and m["impl"] == "numpy-batched"
        if m["variant"] == NATIVE_INIT:  # numpy has no defaults of its own: the same skipped record
            assert {**m, "impl": "numpy"} == o
            continue
        assert m["final_loss"] == pytest.approx(o["final_loss"], rel=1e-9, abs=0)
        assert m["seconds"] > 0 and (m["agreement"], m["status"], m["explanation"]) == (None, None, None)
        same = ("kind", "seed", "variant", "accuracy", "steps_to_threshold", "diverged_at", "converged", "error",
                "conventions", "epsilon", "init")
        assert {k: m[k] for k in same} == {k: o[k] for k in same}

    arrays = vectorised.stack([init_params(seeded(spec, s)) for s in seeds])
    h = vectorised.train(spec, registry.load("numpy").conventions, arrays, keep_loss=True)  # the same computation:
    # its losses are the batched run's to the last bit
    acc = h.accuracy(xor_data()[1])
    k = int(np.argmax(acc == 1.0))  # a seed that gets 4/4 right
    assert acc[k] == 1.0

    def record(threshold, seed):
        (m,) = [m for m in run_task(batched, spec.to_dict(), threshold) if (m["seed"], m["variant"]) ==
                (seed, CANONICAL)]
        return m

    l0 = h.loss[0, 0]  # seed 0's loss at its initial weights
    assert record(np.nextafter(l0, np.inf), 0)["steps_to_threshold"] == 1
    assert record(l0, 0)["steps_to_threshold"] == int(np.flatnonzero(h.loss[0] < l0)[0]) + 1 > 1
    final = float(h.final_loss[k])
    assert record(np.nextafter(final, np.inf), seeds[k])["converged"] is True
    assert record(final, seeds[k])["converged"] is False


def test_a_network_non_finite_from_its_first_step_diverged_at_step_0(monkeypatch):
    """Seed 1's initial weights scaled by 1e155: its loss overflows at the initial weights (the output is linear),
    so it diverged at step 0, and is not converged; its neighbours in the batch are untouched."""
    from xor_rosetta import params as params_module
    plain = params_module.init_params

    def huge_for_seed_1(spec):
        p = plain(spec)
        return [(W * 1e155, b * 1e155) for W, b in p] if spec.init.seed == 1 else p

    monkeypatch.setattr(params_module, "init_params", huge_for_seed_1)
    spec = get_preset("seed-numpy").replace(steps=20)
    msgs = run_task(Task("numpy", (), ("numpy-batched",), (0, 1), (CANONICAL,), batched=True), spec.to_dict(), 1e-6)
    assert [(m["seed"], m["diverged_at"], m["final_loss"], m["steps_to_threshold"], m["converged"]) for m in msgs] \
        == [(0, None, msgs[0]["final_loss"], None, False), (1, 0, None, None, False)]
    assert msgs[0]["final_loss"] is not None


def test_a_run_non_finite_from_its_first_step_is_recorded_alike_one_at_a_time_and_batched(monkeypatch):
    """The same divergence at step 0 run one at a time (numpy) and batched (numpy-batched): the same record, with
    nothing judged (a one-at-a-time run once ended the sweep here: its judgement is None)."""
    from xor_rosetta import params as params_module
    plain = params_module.init_params
    monkeypatch.setattr(params_module, "init_params",
                        lambda spec: [(W * 1e155, b * 1e155) for W, b in plain(spec)] if spec.init.seed == 1
                        else plain(spec))
    spec = get_preset("seed-numpy").replace(steps=20).to_dict()
    keys = ("seed", "diverged_at", "final_loss", "accuracy", "steps_to_threshold", "converged", "agreement",
            "status", "explanation", "error")
    one = run_task(Task("numpy", (), ("numpy",), (1,), (CANONICAL,)), spec, 1e-6)
    batched = run_task(Task("numpy", (), ("numpy-batched",), (1,), (CANONICAL,), batched=True), spec, 1e-6)
    assert [{k: m[k] for k in keys} for m in one] == [{k: m[k] for k in keys} for m in batched]
    assert one[0]["diverged_at"] == 0 and one[0]["agreement"] is None and one[0]["error"] is None


def test_a_batched_path_is_judged_network_by_network_up_to_where_it_stopped(monkeypatch):
    """A stand-in batched path in Keras' conventions (its Adam differs from the default one), four networks:
    0 as the reference trains it: agrees; 1 non-finite from its first step (its checkpoints garbage, its final loss
    and outputs those of a converged run): diverged at 0, not converged, judged on its gradients alone, which agree;
    2 non-finite from step 1, its params after update 1 off by 1e-10 (the rounding floor, in its conventions, is
    far below that): DISAGREES at step 1, what came later not judged; 3 with gradients off by one part in 10^6:
    DISAGREES at the initial weights."""
    from xor_rosetta.interface import Conventions
    keras_conv = Conventions(adam="keras", momentum="keras", bce="logits")
    _, y = xor_data()

    def edit(batch):
        batch.first_nonfinite[1], batch.first_below[1], batch.final_loss[1] = 0, 0, 0.0
        batch.outputs[1] = y[:, 0]
        batch.first_nonfinite[2] = 1
        batch.checkpoints[1][0][0, 0, 2] += 1e-10
        for q, arrays in batch.checkpoints.items():
            for a in arrays:
                a[..., 1] += 1.0
                if q > 1:
                    a[..., 2] += 1.0

    def grad_edit(g):
        g[0][..., 3] *= 1 + 1e-6

    stand_in_path(monkeypatch, "stand_in", keras_conv, edit, grad_edit)
    monkeypatch.setitem(BATCHED, "stand-in", ("stand_in", "numpy", "a stand-in"))
    spec = get_preset("seed-keras").replace(steps=20)
    msgs = run_task(Task("g", (), ("stand-in",), (0, 1, 2, 3), (CANONICAL,), batched=True), spec.to_dict(), 0.05)
    assert [(m["kind"], m["seed"], m["variant"], m["impl"]) for m in msgs] == \
        [("run", s, CANONICAL, "stand-in") for s in range(4)]
    for m in msgs:
        assert (m["error"], m["conventions"], m["epsilon"], m["init"]) == \
            (None, keras_conv.to_dict(), spec.optimizer.epsilon, f"{spec.init.scheme} seed {m['seed']}")
    m0, m1, m2, m3 = msgs
    assert (m0["agreement"], m0["status"], m0["explanation"], m0["diverged_at"]) == ("agrees", 0, None, None)
    assert (m1["final_loss"], m1["accuracy"], m1["steps_to_threshold"], m1["diverged_at"], m1["converged"]) == \
        (0.0, 1.0, 1, 0, False)
    assert (m1["agreement"], m1["status"], m1["explanation"]) == ("agrees", 0, None)
    assert (m2["agreement"], m2["status"], m2["diverged_at"], m2["converged"]) == ("DISAGREES", 3, 1, False)
    assert m2["explanation"].startswith("at step 1: params differ by 1e-10 (allowed "), m2
    assert (m3["agreement"], m3["status"], m3["diverged_at"]) == ("DISAGREES", 3, None)
    assert m3["explanation"].startswith("at the initial weights: gradients differ by "), m3


def test_a_diverging_networks_rounding_floor_is_measured_without_warnings(monkeypatch):
    """lr 50: the network diverges; its params after update 1 off by 1e-10, so the rounding floor is measured, by a
    reference run that overflows on its way (it trains every step): that is divergence, not worth a warning."""
    import warnings
    from xor_rosetta.interface import Conventions
    from xor_rosetta.spec import Optimizer

    def edit(batch):
        batch.checkpoints[1][0][0, 0, 0] += 1e-10

    stand_in_path(monkeypatch, "stand_in", Conventions(), edit)
    monkeypatch.setitem(BATCHED, "stand-in", ("stand_in", "numpy", "a stand-in"))
    spec = get_preset("seed-numpy").replace(steps=100, optimizer=Optimizer("sgd", lr=50.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # numpy's overflow and invalid-value warnings
        (m,) = run_task(Task("g", (), ("stand-in",), (0,), (CANONICAL,), batched=True), spec.to_dict(), 1e-6)
    assert m["diverged_at"] is not None and m["final_loss"] is None and m["converged"] is False
    assert (m["agreement"], m["status"]) == ("DISAGREES", 3) and m["explanation"].startswith("at step 1: params "), m


def test_a_batched_paths_module_names_its_framework_and_a_module_that_will_not_load_fails_its_runs(monkeypatch):
    """Two paths whose modules are not their registry entries' names: one that does not import (each of its runs a
    failed record; the next path runs all the same), and a stand-in for the JAX path's module in optax's conventions,
    whose framework defaults are Flax's: drawn once a seed (an init message each), its epsilon switched one at a
    time. Every record in full; seconds are the variant's time over its seeds, to 6 digits."""
    from xor_rosetta.app.sweep import plan
    from xor_rosetta.app.sweep.plan import NATIVE, NATIVE_EPS
    from xor_rosetta.implementations import native
    from xor_rosetta.interface import Conventions
    optax_conv = Conventions(adam="optax", momentum="torch", bce="logits")
    stand_in_path(monkeypatch, "jax", optax_conv)
    monkeypatch.setitem(BATCHED, "jax-stand-in", ("jax", "jax-stand-in-entry", "the JAX path's stand-in"))
    monkeypatch.setitem(BATCHED, "gone", ("gone_module", "gone-entry", "a path whose module is missing"))
    monkeypatch.setattr(native, "draw", fake_draw)
    monkeypatch.setattr(plan, "time", Clock(0.2469134))  # two seeds: 0.1234567 s each
    spec = get_preset("seed-keras").replace(steps=10)
    assert spec.optimizer.epsilon != native.EPSILON["flax"]  # the switch shows
    variants = (CANONICAL, NATIVE_INIT, NATIVE_EPS, NATIVE)
    msgs = run_task(Task("jax", (), ("gone", "jax-stand-in"), (0, 1), variants, batched=True), spec.to_dict(), 0.05)
    gone = [{"kind": "run", "seed": s, "variant": v, "impl": "gone",
             **_failed("could not load: No module named 'xor_rosetta.implementations.batched.gone_module'")}
            for s in (0, 1) for v in variants]
    assert msgs[:len(gone)] == gone
    expected = []
    for v in variants:
        own_init, own_eps = plan.VARIANTS[v]
        if own_init:
            expected += [init_message("jax", "flax", spec, s) for s in (0, 1)]
        expected += [("run", s, v) for s in (0, 1)]
    rest = msgs[len(gone):]
    assert [m if m["kind"] == "init" else (m["kind"], m["seed"], m["variant"]) for m in rest] == expected
    for m in rest:
        if m["kind"] == "init":
            continue
        own_init, own_eps = plan.VARIANTS[m["variant"]]
        assert set(m) == set(gone[0]) | {"conventions", "epsilon", "init", "seconds"}
        assert (m["impl"], m["agreement"], m["status"], m["explanation"], m["error"]) == \
            ("jax-stand-in", "agrees", 0, None, None)
        assert m["conventions"] == optax_conv.to_dict() and m["seconds"] == 0.123457
        assert m["epsilon"] == (native.EPSILON["flax"] if own_eps else spec.optimizer.epsilon)
        assert m["init"] == (f"flax default seed {m['seed']}" if own_init else f"{spec.init.scheme} seed {m['seed']}")


class TorchFamilyNumpy(NumpyMLP):
    """numpy's maths with torch's framework defaults: a second family without torch."""
    framework = "torch"


class FlaxFamilyNumpy(NumpyMLP):
    framework = "flax"


def test_one_at_a_time_runs_go_on_past_failed_skipped_and_defaultless_ones(tmp_path, monkeypatch):
    """One worker group of five: a plug-in whose import fails (the reason given after "could not load: ", itself
    mentioning an unavailable module), a name that is no implementation, numpy (its canonical run done already; no
    framework defaults), and two families' implementations, each with its own drawn weights and epsilon: each run is
    judged against the reference from its own weights and epsilon (it agrees), and the runs after a failed, skipped
    or defaultless one are made. Seconds to 4 digits; the boundary grid (a plot's) is not computed."""
    from xor_rosetta import registry
    from xor_rosetta.app.run import runner
    from xor_rosetta.app.sweep import plan
    from xor_rosetta.app.sweep.plan import NATIVE
    from xor_rosetta.implementations import native
    plugin = tmp_path / "broken.py"
    plugin.write_text("raise ImportError('flux is unavailable: no GPU')\n")
    broken = f"{plugin}:Nope"
    monkeypatch.setattr(registry, "RUNTIME", {})
    registry.register("torch-family", TorchFamilyNumpy, "numpy as torch's family")
    registry.register("flax-family", FlaxFamilyNumpy, "numpy as flax's family")
    monkeypatch.setattr(native, "draw", fake_draw)
    monkeypatch.setattr(plan, "time", Clock(0.123456))
    grids = []
    monkeypatch.setattr(runner, "grid_outputs", lambda model, spec: grids.append(model))
    spec = get_preset("seed-keras").replace(steps=10)
    variants = (CANONICAL, NATIVE_INIT, NATIVE)
    impls = (broken, "no-such-impl", "numpy", "torch-family", "flax-family")
    msgs = run_task(Task("g", (), impls, (0,), variants, skip=frozenset({(0, CANONICAL, "numpy")})),
                    spec.to_dict(), 0.05)
    expected = []
    for v in variants:
        expected += [("run", v, broken), ("run", v, "no-such-impl")]
        if v != CANONICAL:
            expected += [("run", v, "numpy")]
        for n, fam in (("torch-family", "torch"), ("flax-family", "flax")):
            expected += [init_message("g", fam, spec, 0)] if v == NATIVE_INIT else []
            expected += [("run", v, n)]
    assert [m if m["kind"] == "init" else (m["kind"], m["variant"], m["impl"]) for m in msgs] == expected
    runs = [m for m in msgs if m["kind"] == "run"]
    assert all(m["seed"] == 0 for m in runs) and grids == []
    for m in runs:
        rec = {"kind": "run", "seed": 0, "variant": m["variant"], "impl": m["impl"]}
        if m["impl"] == broken:
            assert m == {**rec, **_failed(f"could not load: import failed (flux is unavailable: no GPU); reinstall "
                                          f"with: install the package that provides {plugin}")}
        elif m["impl"] == "no-such-impl":
            assert m == {**rec, **_failed(m["error"])}
            assert m["error"].startswith("could not load: unknown implementation 'no-such-impl'; choose one of: ")
        elif m["impl"] == "numpy":
            assert m == {**rec, **_failed(None), "skipped": "no framework defaults of its own"}
        else:
            fam = "torch" if m["impl"] == "torch-family" else "flax"
            own_init, own_eps = plan.VARIANTS[m["variant"]]
            assert (m["agreement"], m["status"], m["error"], m["seconds"]) == ("agrees", 0, None, 0.1235), m
            assert m["init"] == (f"{fam} default seed 0" if own_init else f"{spec.init.scheme} seed 0")
            assert m["epsilon"] == (native.EPSILON[fam] if own_eps else spec.optimizer.epsilon)


def test_a_sweep_whose_records_would_not_fit_in_memory_is_refused(monkeypatch):
    """RUN_BYTES a run: exactly the memory available fits, a byte less does not; memory that cannot be read is
    no reason to refuse."""
    from xor_rosetta.app.common import resources
    from xor_rosetta.app.sweep.plan import RUN_BYTES, check_memory
    from xor_rosetta.errors import XorRosettaError
    runs = 1_000_000
    monkeypatch.setattr(resources, "available_memory", lambda: runs * RUN_BYTES)
    check_memory(runs, "0:1000000")
    monkeypatch.setattr(resources, "available_memory", lambda: runs * RUN_BYTES - 1)
    with pytest.raises(XorRosettaError) as e:
        check_memory(runs, "0:1000000")
    assert str(e.value) == ("--seeds 0:1000000: 1,000,000 runs would hold about 3.8 GiB of memory for their records "
                            "(~4,096 bytes each), but 3.8 GiB is available; sweep fewer seeds at a time (--seeds A:B)")
    monkeypatch.setattr(resources, "available_memory", lambda: None)
    check_memory(runs, "0:1000000")


def test_seeds_go_up_to_the_largest_init_seed():
    from xor_rosetta.app.sweep.plan import parse_seeds
    from xor_rosetta.errors import XorRosettaError
    from xor_rosetta.spec import MAX_SEED
    assert parse_seeds(f"{MAX_SEED}:{MAX_SEED + 1}") == range(MAX_SEED, MAX_SEED + 1)
    assert parse_seeds(str(MAX_SEED + 1)) == range(MAX_SEED + 1)
    with pytest.raises(XorRosettaError) as e:
        parse_seeds(f"{MAX_SEED}:{MAX_SEED + 2}")
    assert str(e.value) == (f"--seeds '{MAX_SEED}:{MAX_SEED + 2}' goes up to seed 4,294,967,296; init seeds are at "
                            f"most 4,294,967,295 (2**32 - 1, NumPy's seed range)")
