"""The sweep's planning and engine at the edges a resume or a crash reaches: a partly done seed is planned again with
its finished runs skipped, tasks are chunked so that every worker gets several, and a worker that dies takes only
the run it was doing: the crashed seed's other runs in the same worker group are run by a fresh worker."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from xor_rosetta.app.sweep.engine import Progress, Store, run_local
from xor_rosetta.app.sweep.plan import (BATCH_CHUNK, BATCHED, CANONICAL, NATIVE_INIT, Task, _failed, batched_group,
                                        plan_tasks, run_task)
from xor_rosetta.compare import DEFAULT_THRESHOLD
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
    assert W0.dtype == b1.dtype == np.float64 and W0.shape == (1, 2) and W1.shape == (2, 1)
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
