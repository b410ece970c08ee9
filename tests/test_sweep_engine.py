"""The sweep's store (`xor_rosetta.app.sweep.engine.Store`): sweep.json and runs.jsonl, each run once, a resume that
checks the spec and keeps the runs, a line cut short dropped, a changed file refused, the wall time summed, and the
messages a worker sends handled by kind."""
from __future__ import annotations

import json

import numpy as np
import pytest

from xor_rosetta.app.sweep import engine as E
from xor_rosetta.errors import XorRosettaError
from xor_rosetta.presets import get_preset

SPEC = get_preset("seed-numpy").to_dict()


def header(**kw):
    return {"format": 1, "spec": SPEC, "threshold": 1e-6, **kw}  # what sweep writes, and --resume checks


def rec(seed, impl="numpy", **kw):  # every field a run's record has (plan.run_task), which --resume checks
    return {"seed": seed, "variant": "canonical", "impl": impl, "final_loss": 0.5, "accuracy": 1.0,
            "steps_to_threshold": None, "diverged_at": None, "converged": False, "agreement": "agrees", "status": 0,
            "explanation": None, "error": None, **kw}


def lines(out):
    return [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]


def test_runs_are_stored_once_each_and_the_header_written(tmp_path):
    s = E.Store(tmp_path, header(name="x"), resume=False)
    assert json.loads((tmp_path / "sweep.json").read_text()) == header(name="x")
    assert s.add(rec(0)) and s.add(rec(1)) and not s.add(rec(0, final_loss=9.0))
    s.close()
    s.close()  # twice: nothing more
    assert lines(tmp_path) == [rec(0), rec(1)]
    assert s.done == {(0, "canonical", "numpy"): rec(0), (1, "canonical", "numpy"): rec(1)}


def test_an_existing_sweep_needs_resume(tmp_path):
    s = E.Store(tmp_path, header(), resume=False)
    s.add(rec(0)), s.add(rec(1))
    s.close()
    with pytest.raises(XorRosettaError, match=r"already holds a sweep \(2 runs in runs.jsonl\): add --resume"):
        E.Store(tmp_path, header(), resume=False)


def test_resume_keeps_the_runs_and_the_wall_time_and_checks_spec_and_threshold(tmp_path):
    s = E.Store(tmp_path, header(), resume=False)
    s.add(rec(0))
    s.finish(1.25)
    s.close()
    for field, value in (("spec", {**SPEC, "steps": 5}), ("threshold", 0.5)):
        with pytest.raises(XorRosettaError, match=f"holds a sweep with another {field} "):
            E.Store(tmp_path, {**header(), field: value}, resume=True)
    s = E.Store(tmp_path, header(), resume=True)
    assert list(s.done) == [(0, "canonical", "numpy")] and s.header["wall_seconds"] == 1.25
    s.add(rec(1))
    s.finish(0.5)
    s.close()
    assert json.loads((tmp_path / "sweep.json").read_text())["wall_seconds"] == 1.75
    assert lines(tmp_path) == [rec(0), rec(1)]


def test_a_line_cut_short_is_dropped_and_a_changed_file_refused(tmp_path):
    s = E.Store(tmp_path, header(), resume=False)
    s.add(rec(0))
    s.close()
    with open(tmp_path / "runs.jsonl", "a") as f:
        f.write('{"seed": 1, "variant": "canonical", "impl": "nu')
    s = E.Store(tmp_path, header(), resume=True)
    assert list(s.done) == [(0, "canonical", "numpy")]
    s.close()
    assert lines(tmp_path) == [rec(0)]
    with open(tmp_path / "runs.jsonl", "a") as f:  # a complete line, but without its newline: also cut short
        f.write(json.dumps(rec(1)))
    s = E.Store(tmp_path, header(), resume=True)
    assert list(s.done) == [(0, "canonical", "numpy")]
    s.close()
    (tmp_path / "runs.jsonl").write_text("not json\n" + json.dumps(rec(0)) + "\n")
    with pytest.raises(XorRosettaError, match=r"runs.jsonl: line 1: not JSON .*; remove that line to have its run redone"):
        E.Store(tmp_path, header(), resume=True)
    (tmp_path / "sweep.json").unlink()
    with pytest.raises(XorRosettaError, match="has runs.jsonl but no sweep.json: it was not written by a sweep"):
        E.Store(tmp_path, header(), resume=True)


def test_resume_of_a_new_folder_starts_a_sweep(tmp_path):
    (tmp_path / "new").mkdir()
    s = E.Store(tmp_path / "new", header(), resume=True)
    assert s.done == {} and (tmp_path / "new" / "sweep.json").exists()
    s.close()


def test_messages_are_handled_by_kind(tmp_path):
    s = E.Store(tmp_path, header(), resume=False)
    bar = E.Progress(3, 0, enabled=False)
    counted = []
    bar.update = lambda n=1: counted.append(n)
    params = [[[[1.0, 2.0]], [0.5]], [[[3.0], [4.0]], [0.25]]]
    E._handle("a note from another module", s, bar)
    E._handle({"kind": "conventions", "x": 1}, s, bar)
    E._handle({"kind": "run", **rec(0)}, s, bar)
    E._handle({"kind": "run", **rec(0)}, s, bar)  # once only
    E._handle({"kind": "init", "group": "torch", "seed": 3, "params": params}, s, bar)
    s.close()
    assert counted == [1] and lines(tmp_path) == [rec(0)]
    path = tmp_path / "inits" / "torch" / "seed-3.npz"
    with np.load(path) as z:
        assert np.array_equal(z["W0"], [[1.0, 2.0]]) and np.array_equal(z["b1"], [0.25])
    E._handle({"kind": "init", "group": "torch", "seed": 3, "params": [[[[9.0, 9.0]], [9.0]], params[1]]}, s, bar)
    with np.load(path) as z:
        assert np.array_equal(z["W0"], [[1.0, 2.0]])  # drawn once per seed: the first is kept


def test_a_progress_bar_only_on_a_terminal():
    bar = E.Progress(10, 2, enabled=True)  # pytest's stderr is no terminal
    assert bar.bar is None
    bar.update()
    bar.close()


def test_a_progress_bar_on_a_terminal_counts_runs_from_those_done(monkeypatch):
    pytest.importorskip("tqdm")
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr("sys.stderr", Terminal())
    bar = E.Progress(10, 2, enabled=True)
    assert (bar.bar.total, bar.bar.n, bar.bar.unit) == (10, 2, "run")
    bar.update()
    bar.update(2)
    assert bar.bar.n == 5
    bar.close()
    assert E.Progress(10, 2, enabled=False).bar is None  # --quiet
