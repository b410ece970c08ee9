"""Worker processes: grouping, the protocol, crash containment, results independent of --jobs, the remote MLP."""
from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest

from impls import tasks
from test_cli import ROOT, run
from xor_rosetta import registry
from xor_rosetta.app.workers import pool as workers
from xor_rosetta.app.workers.pool import Pool, Worker
from xor_rosetta.app.workers.remote import needs_own_process, remote_class
from xor_rosetta.app.workers.wire import WorkerError
from xor_rosetta.data import xor_data
from xor_rosetta.implementations.numpy_mlp import NumpyMLP
from xor_rosetta.params import init_params
from xor_rosetta.presets import get_preset

CRASHY = "tests/impls/crashy.py"


def test_pool_runs_each_group_in_its_own_worker_with_its_environment():
    with Pool(jobs=3) as pool:
        for i in range(2):
            pool.submit(("a", i), "a", tasks.pid_and_env, "XR_TEST", env={"XR_TEST": "one"})
        pool.submit(("b", 0), "b", tasks.pid_and_env, "XR_TEST", env={"XR_TEST": "two"})
        got = {o.key: o.value for o in pool.results()}
        assert len(pool.started) == 2  # one worker per group, though a slot was free: "a" had one task waiting
    pids = {k: pid for k, (pid, _) in got.items()}
    assert pids[("a", 0)] == pids[("a", 1)] != pids[("b", 0)] != os.getpid()
    assert {k: env for k, (_, env) in got.items()} == {("a", 0): "one", ("a", 1): "one", ("b", 0): "two"}
    for pid in pids.values():  # closing the pool ended them
        assert not os.path.exists(f"/proc/{pid}") or _zombie_or_gone(pid)


def _zombie_or_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_group_gets_more_workers_only_when_slots_would_idle():
    with Pool(jobs=3) as pool:
        for i in range(6):
            pool.submit(i, "many", tasks.sleep_then, 0.3, i)
        assert sorted(o.value for o in pool.results()) == list(range(6))
        assert len(pool.started) == 3


def test_the_group_with_the_most_expected_work_starts_first():
    """One slot: the group whose tasks' `cost` adds up to the most starts first, whatever the order of submission
    and however many tasks the others hold (compare starts keras-torch's 10,000 eager steps at once)."""
    with Pool(jobs=1) as pool:
        for i in range(3):
            pool.submit(("many", i), "many", tasks.sleep_then, 0, i, cost=1.0)
        pool.submit(("slow", 0), "slow", tasks.sleep_then, 0, "slow", cost=5.0)
        assert [o.key for o in pool.results()][0] == ("slow", 0)
    with Pool(jobs=1) as pool:  # without costs: the most waiting tasks first
        pool.submit(("one", 0), "one", tasks.sleep_then, 0, 0)
        for i in range(2):
            pool.submit(("two", i), "two", tasks.sleep_then, 0, i)
        assert [o.key for o in pool.results()][0] == ("two", 0)


def test_a_worker_past_recycle_mb_is_replaced_after_its_task():
    """A sweep's worker that has grown past `recycle_mb` (a framework keeping a little of every model) is replaced
    by a fresh one for the next task; the results are the same."""
    for recycle, workers in ((None, 1), (1, 3)):  # every worker is past 1 MB
        with Pool(jobs=1, recycle_mb=recycle) as pool:
            for i in range(3):
                pool.submit(i, "g", tasks.pid_and_env, "XR_TEST")
            outs = {o.key: o.value for o in pool.results()}
            assert len(pool.started) == workers == len({pid for pid, _ in outs.values()})
            assert pool.recycled == (0 if recycle is None else 3)


def test_notes_stream_before_the_result_and_exceptions_come_back():
    with Pool(jobs=1) as pool:
        pool.submit("n", "g", tasks.send_notes, 3)
        pool.submit("e", "g", tasks.raise_value_error, "bad value")
        outs = list(pool.results())
    assert [(o.key, o.note, o.value) for o in outs[:4]] == [("n", True, 0), ("n", True, 1), ("n", True, 2),
                                                           ("n", False, 3)]
    assert outs[4].error == "failed: ValueError: bad value" and isinstance(outs[4].exception, ValueError)
    w = Worker("solo")
    try:
        with pytest.raises(ValueError, match="bad value"):
            w.call(tasks.raise_value_error, "bad value")
        assert w.call(tasks.sleep_then, 0, 7) == 7  # the worker survives an exception in a task
        with pytest.raises(WorkerError, match=r"^timeout after 0.5 s$"):
            w.call(tasks.sleep_then, 30, None, timeout=0.5)
    finally:
        w.close()


def test_only_plain_data_leaves_a_worker():
    w = Worker("solo")
    try:
        with pytest.raises(Exception, match="only NumPy arrays and plain data may leave a worker"):
            w.call(tasks.foreign_object)
        assert "impls.foreign" not in __import__("sys").modules
    finally:
        w.close()


def test_environment_conflicts_choose_a_worker():
    entry = registry.Entry("k", "m", "C", (), (), "", "", process="keras-jax", env=(("KERAS_BACKEND", "jax"),))
    assert needs_own_process(entry, {"KERAS_BACKEND": "tensorflow"})
    assert not needs_own_process(entry, {"KERAS_BACKEND": "jax"})
    assert not needs_own_process(registry.REGISTRY["numpy"], {"KERAS_BACKEND": "jax"})


def test_crashes_are_contained_and_reported(tmp_path):
    """Each way a worker can end badly, with numpy beside them: every crash is named, numpy completes, the report
    is written, exit 1."""
    crashy = {"segfault": "SegfaultMLP", "exit": "ExitMLP", "killed": "KilledMLP", "hang": "HangMLP",
              "raises": "RaisesMLP"}
    names = ["numpy"] + [f"{CRASHY}:{cls}" for cls in crashy.values()]
    p = run("compare", "--preset", "seed-numpy", "--steps", "200", "--threshold", "1", "--impls", ",".join(names),
            "--timeout", "5", "--jobs", "3", "--out", tmp_path, "--quiet", cwd=ROOT)
    assert p.returncode == 1, p.stdout + p.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    rows = {r["implementation"]: r for r in report["implementations"]}
    assert rows["numpy"]["verdict"] == "agrees, converged"
    want = {"SegfaultMLP": f"worker died (signal {int(signal.SIGSEGV)})", "ExitMLP": "worker exited with status 3",
            "KilledMLP": f"worker died (signal {int(signal.SIGKILL)})", "HangMLP": "timeout after 5 s",
            "RaisesMLP": "failed: RuntimeError: broken on purpose"}
    for cls, error in want.items():
        row = rows[f"{CRASHY}:{cls}"]
        assert (row["verdict"], row["error"]) == ("error", error)
        assert f"FAIL: {CRASHY}:{cls}: {error}" in p.stderr
    assert report["workers"]["jobs"] == 3
    assert "worker died (signal 11)" in (tmp_path / "report.md").read_text()
    assert "Traceback" not in p.stderr


def test_remote_mlp_is_the_implementation_bit_for_bit():
    """An implementation hosted in a worker answers exactly as it does in this process."""
    spec = get_preset("seed-keras").replace(steps=40, batch_size=3)
    x, y = xor_data()
    cls = remote_class("numpy")
    assert cls.conventions == NumpyMLP.conventions and cls.name == NumpyMLP.name
    here, there = NumpyMLP(spec, init_params(spec)), cls(spec, init_params(spec))
    assert there.pid != os.getpid()
    assert np.array_equal(here.forward(x), there.forward(x)) and here.loss(x, y) == there.loss(x, y)
    assert all(np.array_equal(a, b) for ga, gb in zip(here.gradients(x, y), there.gradients(x, y))
               for a, b in zip(ga, gb))
    h1, h2 = here.train(x, y, steps=25, checkpoints=[5]), there.train(x, y, steps=25, checkpoints=[5])
    h1b, h2b = here.train(x, y, steps=15), there.train(x, y, steps=15)  # continues where it stopped, remotely too
    assert np.array_equal(h1.loss, h2.loss) and np.array_equal(h1b.loss, h2b.loss)
    assert all(np.array_equal(a, b) for pa, pb in zip(h1.checkpoints[5], h2.checkpoints[5]) for a, b in zip(pa, pb))
    assert there.steps_done == here.steps_done == 40
    assert all(np.array_equal(a, b) for pa, pb in zip(here.params(), there.params()) for a, b in zip(pa, pb))


def test_remote_unavailable_implementation_raises_unavailable():
    with pytest.raises(registry.UnavailableError, match="no_such_module_xyz"):
        remote_class("no_such_module_xyz:MLP")


def test_session_workers_are_reused_and_closed():
    ws = workers.Workers()
    try:
        a = ws.get("numpy")
        assert ws.get("numpy") is a  # the same process serves every call of a group
        pid = a.pid
    finally:
        ws.close()
    assert _zombie_or_gone(pid)
