"""The sweep's engine at its edges (`xor_rosetta.app.sweep.engine`): every check of a line of runs.jsonl and of
sweep.json with its exact one-line error, the short form of a value in a message, a resume that does not match,
runs.jsonl's writes and fsyncs, initial weights saved once per seed, the progress bar's settings, and the runs of
tasks on the local pool and on Dask (failures, resubmissions, interruptions: on stand-ins for the pool and the
cluster, so that each case is exact and fast), a Dask task run here (NumPy alone) or in a worker of its group."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from xor_rosetta.app.sweep import engine as E
from xor_rosetta.app.sweep.plan import Task
from xor_rosetta.errors import XorRosettaError
from xor_rosetta.presets import get_preset

SPEC = get_preset("seed-numpy").to_dict()
WHERE = "runs.jsonl: line 3"
HINT = "; remove that line to have its run redone"


def rec(**kw):
    """A finished run's record with the fields plan.run_task always writes (no optional ones, no conventions)."""
    return {"seed": 7, "variant": "canonical", "impl": "numpy", "final_loss": 0.5, "accuracy": 1.0,
            "steps_to_threshold": 3, "diverged_at": None, "converged": True, "agreement": "agrees", "status": 0,
            "explanation": None, "error": None, **kw}


def failed(**kw):  # a run that failed (plan._failed): everything null but its error
    return {"seed": 7, "variant": "canonical", "impl": "torch", "final_loss": None, "accuracy": None,
            "steps_to_threshold": None, "diverged_at": None, "converged": None, "agreement": None, "status": None,
            "explanation": None, "error": "boom", **kw}


def without(record: dict, field: str) -> dict:
    return {k: v for k, v in record.items() if k != field}


def line(record) -> bytes:
    return json.dumps(record).encode()


def error_of(data: bytes) -> str:
    with pytest.raises(XorRosettaError) as e:
        E.read_record(data, WHERE)
    return str(e.value)


# ------------------------------------------------------------------------------------------------- read_record

@pytest.mark.parametrize("record", [
    pytest.param(rec(), id="a-converged-run"),
    pytest.param(rec(seed=0), id="seed-0"),
    pytest.param(rec(seed=2**32 - 1), id="seed-MAX_SEED"),
    pytest.param(rec(status=None, agreement=None), id="status-null"),
    pytest.param(rec(status=3), id="status-3"),
    pytest.param(rec(steps_to_threshold=1), id="steps-to-threshold-1"),
    pytest.param(rec(variant="native-eps", impl="torch"), id="another-variant"),
    pytest.param(rec(skipped=None, epsilon=1e-7, init="seed-uniform seed 7", seconds=0.01), id="optional-fields"),
    pytest.param(rec(conventions={"adam": "textbook", "momentum": "torch", "bce": "logits"}), id="conventions"),
    pytest.param(rec(conventions={}), id="no-conventions-named"),
    pytest.param(failed(), id="a-failed-run-converged-null"),
    pytest.param({**failed(error=None), "skipped": "no framework defaults of its own"}, id="a-skipped-run"),
])
def test_a_run_s_record_is_read_as_it_is(record):
    assert E.read_record(line(record), WHERE) == record


@pytest.mark.parametrize("data, message", [
    pytest.param(b"[1, 2]", "runs.jsonl: line 3: expected a JSON object, got a list", id="not-an-object"),
    pytest.param(b'{"seed": 1', "runs.jsonl: line 3: not JSON (Expecting ',' delimiter: line 1 column 11 (char 10))",
                 id="not-json"),
    pytest.param(line(without(rec(), "seed")), "runs.jsonl: line 3: field 'seed': expected a whole number, got null",
                 id="seed-missing"),
    pytest.param(line(rec(seed=1.0)), "runs.jsonl: line 3: field 'seed': expected a whole number, got a number",
                 id="seed-a-float"),
    pytest.param(line(rec(seed=2**32)), "runs.jsonl: line 3: field 'seed': expected 0 .. 4,294,967,295, got 4294967296",
                 id="seed-past-MAX_SEED"),
    pytest.param(line(rec(seed=-1)), "runs.jsonl: line 3: field 'seed': expected 0 .. 4,294,967,295, got -1",
                 id="seed-negative"),
    pytest.param(line(rec(variant="other")), "runs.jsonl: line 3: field 'variant': expected one of 'canonical', "
                 "'native-init', 'native-eps', 'native', got 'other'", id="variant-unknown"),
    pytest.param(line(rec(variant=None)), "runs.jsonl: line 3: field 'variant': expected a string, got null",
                 id="variant-null"),
    pytest.param(line(rec(impl=3)), "runs.jsonl: line 3: field 'impl': expected a string, got a number",
                 id="impl-a-number"),
    pytest.param(line(rec(status=4)), "runs.jsonl: line 3: field 'status': expected 0 .. 3, got 4", id="status-4"),
    pytest.param(line(rec(status=-1)), "runs.jsonl: line 3: field 'status': expected 0 .. 3, got -1",
                 id="status-negative"),
    pytest.param(line(rec(status="agrees")), "runs.jsonl: line 3: field 'status': expected a whole number or null, "
                 "got a string", id="status-a-string"),
])
def test_a_record_s_identity_and_status_are_checked(data, message):
    assert error_of(data) == message + HINT


@pytest.mark.parametrize("field", ["final_loss", "accuracy", "steps_to_threshold", "diverged_at", "converged",
                                   "agreement", "explanation", "error"])
def test_a_record_without_a_required_field_names_it(field):
    assert error_of(line(without(rec(), field))) == f"runs.jsonl: line 3: field '{field}' is missing" + HINT


@pytest.mark.parametrize("change, message", [
    pytest.param({"final_loss": "0.5"}, "field 'final_loss': expected a number or null, got a string",
                 id="final_loss-a-string"),
    pytest.param({"final_loss": float("nan")}, "field 'final_loss': expected a finite number, got nan",
                 id="final_loss-nan"),
    pytest.param({"accuracy": True}, "field 'accuracy': expected a number or null, got a boolean",
                 id="accuracy-a-boolean"),
    pytest.param({"steps_to_threshold": 0}, "field 'steps_to_threshold': expected 1 .. 9,223,372,036,854,775,807, "
                 "got 0", id="steps_to_threshold-0"),
    pytest.param({"steps_to_threshold": 2.5}, "field 'steps_to_threshold': expected a whole number or null, "
                 "got a number", id="steps_to_threshold-a-float"),
    pytest.param({"diverged_at": -1}, "field 'diverged_at': expected 0 .. 9,223,372,036,854,775,807, got -1",
                 id="diverged_at-negative"),
    pytest.param({"converged": "yes"}, "field 'converged': expected true or false or null, got a string",
                 id="converged-a-string"),
    pytest.param({"agreement": 1}, "field 'agreement': expected a string or null, got a number",
                 id="agreement-a-number"),
    pytest.param({"explanation": []}, "field 'explanation': expected a string or null, got a list",
                 id="explanation-a-list"),
    pytest.param({"error": {}}, "field 'error': expected a string or null, got an object", id="error-an-object"),
    pytest.param({"skipped": 1}, "field 'skipped': expected a string or null, got a number", id="skipped-a-number"),
    pytest.param({"epsilon": "1e-7"}, "field 'epsilon': expected a number or null, got a string",
                 id="epsilon-a-string"),
    pytest.param({"init": 7}, "field 'init': expected a string or null, got a number", id="init-a-number"),
    pytest.param({"seconds": "fast"}, "field 'seconds': expected a number or null, got a string",
                 id="seconds-a-string"),
])
def test_a_record_s_field_of_the_wrong_kind_is_named(change, message):
    assert error_of(line(rec(**change))) == "runs.jsonl: line 3: " + message + HINT


@pytest.mark.parametrize("conventions, message", [
    pytest.param(["adam", "textbook"], "field 'conventions': expected a JSON object, got a list", id="a-list"),
    pytest.param(None, "field 'conventions': expected a JSON object, got null", id="null"),
    pytest.param({"adam": "textbook", "sgd": "torch"},
                 "field 'conventions': expected one of 'adam', 'momentum', 'bce', got 'sgd'", id="an-unknown-form"),
    pytest.param({"momentum": 1}, "field 'conventions.momentum': expected a string, got a number",
                 id="a-value-not-a-string"),
    pytest.param({"bce": None}, "field 'conventions.bce': expected a string, got null", id="a-value-null"),
])
def test_a_record_s_conventions_are_checked(conventions, message):
    assert error_of(line(rec(conventions=conventions))) == "runs.jsonl: line 3: " + message + HINT


@pytest.mark.parametrize("record, message", [
    pytest.param(rec(converged=None), "field 'converged' (a run without an error): expected true or false, got null",
                 id="converged-null"),
    pytest.param(rec(accuracy=None), "field 'accuracy' (a run without an error): expected a number, got null",
                 id="accuracy-null"),
    pytest.param(rec(converged=None, skipped=""), "field 'converged' (a run without an error): expected true or "
                 "false, got null", id="skipped-empty-is-no-skip"),
])
def test_a_run_without_an_error_has_converged_and_accuracy(record, message):
    assert error_of(line(record)) == "runs.jsonl: line 3: " + message + HINT


# ------------------------------------------------------------------------------------------------- read_header

def header(**kw):
    return {"format": 1, "spec": SPEC, "threshold": 1e-6, **kw}


@pytest.fixture
def sweep_json(tmp_path, monkeypatch):
    """Writes sweep.json in a fresh current folder (so that messages name it as "sweep.json") and gives its path."""
    monkeypatch.chdir(tmp_path)

    def write(value) -> Path:
        path = Path("sweep.json")
        path.write_text(value if isinstance(value, str) else json.dumps(value))
        return path
    return write


@pytest.mark.parametrize("value", [
    pytest.param(header(), id="no-wall-time"),
    pytest.param(header(wall_seconds=0), id="wall-time-0"),
    pytest.param(header(wall_seconds=12.5, name="x"), id="wall-time-and-more"),
    pytest.param(header(threshold=1), id="threshold-an-integer"),
])
def test_a_header_is_read_as_it_is(sweep_json, value):
    assert E.read_header(sweep_json(value)) == value


@pytest.mark.parametrize("value, message", [
    pytest.param("[1]", "--resume: sweep.json: expected a JSON object, got a list", id="not-an-object"),
    pytest.param("{", "--resume: sweep.json: not JSON (Expecting property name enclosed in double quotes: line 1 "
                 "column 2 (char 1))", id="not-json"),
    pytest.param(header(format=2), "--resume: sweep.json: field 'format': expected 1, got a number; it was not "
                 "written by this version's sweep", id="format-2"),
    pytest.param(header(format="1"), "--resume: sweep.json: field 'format': expected 1, got a string; it was not "
                 "written by this version's sweep", id="format-a-string"),
    pytest.param(without(header(), "format"), "--resume: sweep.json: field 'format': expected 1, got null; it was "
                 "not written by this version's sweep", id="format-missing"),
    pytest.param(header(spec=[SPEC]), "--resume: sweep.json: field 'spec': expected a JSON object, got a list",
                 id="spec-a-list"),
    pytest.param(without(header(), "spec"), "--resume: sweep.json: field 'spec': expected a JSON object, got null",
                 id="spec-missing"),
    pytest.param(header(threshold="1e-6"), "--resume: sweep.json: field 'threshold': expected a number, got a string",
                 id="threshold-a-string"),
    pytest.param(header(wall_seconds=-0.5), "--resume: sweep.json: field 'wall_seconds': expected a number >= 0",
                 id="wall-time-negative"),
    pytest.param(header(wall_seconds="3"), "--resume: sweep.json: field 'wall_seconds': expected a number, "
                 "got a string", id="wall-time-a-string"),
])
def test_a_header_that_is_not_a_sweep_s_is_a_one_line_error(sweep_json, value, message):
    with pytest.raises(XorRosettaError) as e:
        E.read_header(sweep_json(value))
    assert str(e.value) == message


def test_a_header_that_is_a_folder_is_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("sweep.json").mkdir()
    with pytest.raises(XorRosettaError) as e:
        E.read_header(Path("sweep.json"))
    assert str(e.value) == "--resume: sweep.json: is a folder, not a file"


# ------------------------------------------------------------------------------------------------------ _shown

@pytest.mark.parametrize("value, shown", [
    pytest.param(1.5, "1.5", id="a-number"),
    pytest.param({"steps": 5}, '{"steps": 5}', id="an-object"),
    pytest.param(None, "null", id="null"),
    pytest.param(float("nan"), "NaN", id="nan"),
    pytest.param("a" * 298, '"' + "a" * 298 + '"', id="300-characters-kept-whole"),
    pytest.param("a" * 299, '"' + "a" * 299 + "...", id="301-characters-cut-to-300"),
])
def test_a_value_is_shown_in_at_most_300_characters(value, shown):
    assert E._shown(value) == shown


def test_an_unserialisable_value_is_shown_as_unreadable():
    loop = []
    loop.append(loop)
    assert E._shown(loop) == "unreadable"


# ------------------------------------------------------------------------------------------------------- Store

@pytest.fixture
def here(tmp_path, monkeypatch):
    """A fresh current folder: a Store's out is given as the relative path 'sweep' (messages name it so)."""
    monkeypatch.chdir(tmp_path)
    Path("sweep").mkdir()
    return Path("sweep")


@pytest.mark.parametrize("field, old, new, message", [
    pytest.param("threshold", 1e-6, 0.5, "--resume: 'sweep' holds a sweep with another threshold (1e-06); this "
                 "command gives 0.5. Choose another --out for a new sweep", id="threshold"),
    pytest.param("spec", {"steps": 5}, {"steps": 6}, "--resume: 'sweep' holds a sweep with another spec "
                 '({"steps": 5}); this command gives {"steps": 6}. Choose another --out for a new sweep', id="spec"),
])
def test_a_resume_with_another_spec_or_threshold_says_both(here, field, old, new, message):
    (here / "sweep.json").write_text(json.dumps({**header(), field: old}))
    with pytest.raises(XorRosettaError) as e:
        E.Store(here, {**header(), field: new}, resume=True)
    assert str(e.value) == message


def test_the_runs_of_a_sweep_are_counted_by_newline_only(here):
    (here / "runs.jsonl").write_bytes(b'{"seed": 0}\r{"seed": 1}\n\xff\n')  # a carriage return ends no line here
    with pytest.raises(XorRosettaError) as e:
        E.Store(here, header(), resume=False)
    assert str(e.value) == ("'sweep' already holds a sweep (2 runs in runs.jsonl): add --resume to continue it, "
                            "or choose another --out")


def test_a_resume_keeps_each_run_s_record(here):
    (here / "sweep.json").write_text(json.dumps(header()))
    (here / "runs.jsonl").write_text(json.dumps(rec()) + "\n" + json.dumps(failed()) + "\n")
    s = E.Store(here, header(), resume=True)
    s.close()
    assert s.done == {(7, "canonical", "numpy"): rec(), (7, "canonical", "torch"): failed()}


def test_a_bad_line_is_named_with_its_file_and_number(here):
    (here / "sweep.json").write_text(json.dumps(header()))
    (here / "runs.jsonl").write_text(json.dumps(rec()) + "\n" + json.dumps(rec(seed=8, status=9)) + "\n")
    with pytest.raises(XorRosettaError) as e:
        E.Store(here, header(), resume=True)
    assert str(e.value) == ("sweep/runs.jsonl: line 2: field 'status': expected 0 .. 3, got 9; remove that line to "
                            "have its run redone")


def test_initial_weights_are_saved_once_per_group_and_seed(here):
    s = E.Store(here, header(), resume=False)

    def init(seed, value):
        return {"kind": "init", "group": "torch", "family": "torch", "seed": seed,
                "params": [[[[value, value]], [value]], [[[value], [value]], [value]]]}
    s.save_init(init(3, 1.0))
    s.save_init(init(4, 2.0))  # the group's folder exists already
    s.save_init(init(3, 9.0))  # seed 3 is there: kept as it was
    s.close()
    assert sorted(p.name for p in (here / "inits" / "torch").iterdir()) == ["seed-3.npz", "seed-4.npz"]
    for seed, value in ((3, 1.0), (4, 2.0)):
        with np.load(here / "inits" / "torch" / f"seed-{seed}.npz") as z:
            assert np.array_equal(z["W0"], [[value, value]]) and np.array_equal(z["b1"], [value])


# --------------------------------------------------------------------------------------------------- dask_task

class FakeSession:
    """workers.session(): records the group and environment asked for, and the call made in that worker."""

    def __init__(self):
        self.got, self.calls = [], []

    def get(self, group, env=()):
        self.got.append((group, env))
        return self

    def call(self, fn, *args, **kwargs):
        self.calls.append((fn, args, kwargs))
        return ["from the group's worker"]


@pytest.fixture
def session(monkeypatch):
    fake = FakeSession()
    monkeypatch.setattr("xor_rosetta.app.workers.pool.session", lambda: fake)
    return fake


def test_a_numpy_task_on_dask_runs_in_this_process(session):
    spec = {**SPEC, "steps": 5}
    task = Task("numpy", (), ("numpy",), (7,), ("canonical",))
    out = E.dask_task(task, spec, 1.0)
    assert session.got == [] and session.calls == []
    assert [(m["kind"], m["seed"], m["variant"], m["impl"], m["error"]) for m in out] == [
        ("run", 7, "canonical", "numpy", None)]
    assert out[0]["steps_to_threshold"] == 1  # the threshold given: the loss is below 1.0 from the first step


@pytest.mark.parametrize("task", [
    pytest.param(Task("torch", (), ("torch", "torch-compiled"), (7,), ("canonical",)), id="torch-no-env"),
    pytest.param(Task("keras-tensorflow", (("KERAS_BACKEND", "tensorflow"),), ("keras",), (7,), ("canonical",)),
                 id="keras-with-env"),
    pytest.param(Task("numpy", (), ("numpy", "keras-torch"), (7,), ("canonical",)), id="numpy-beside-another"),
])
def test_a_task_of_another_framework_on_dask_runs_in_a_worker_of_its_group(session, monkeypatch, task):
    ran_here = []
    monkeypatch.setattr(E, "run_task", lambda *a: ran_here.append(a))
    spec = {**SPEC, "steps": 5}
    assert E.dask_task(task, spec, 1e-6) == ["from the group's worker"]
    assert ran_here == [] and session.got == [(task.group, task.env)]
    assert session.calls == [(E.run_task, (task, spec, 1e-6), {})]


def test_a_batched_task_on_dask_runs_in_this_process(session, monkeypatch):
    ran_here = []
    monkeypatch.setattr(E, "run_task", lambda *a: ran_here.append(a) or ["ran here"])
    task = Task("torch", (), ("torch-vmap",), (7, 8), ("canonical",), batched=True)
    assert E.dask_task(task, SPEC, 1e-6) == ["ran here"]
    assert ran_here == [(task, SPEC, 1e-6)] and session.got == [] and session.calls == []


# ------------------------------------------------------------------------------------------ Store: start, resume

@pytest.mark.parametrize("files", [
    pytest.param({"sweep.json": json.dumps({**header(), "spec": {"steps": 5}, "wall_seconds": 3.0}),
                  "runs.jsonl": ""}, id="another-sweep-with-no-runs"),
    pytest.param({"runs.jsonl": ""}, id="empty-runs-only"),
])
def test_a_folder_whose_sweep_holds_no_runs_is_started_afresh_without_resume(here, files):
    for name, text in files.items():
        (here / name).write_text(text)
    s = E.Store(here, header(), resume=False)
    s.close()
    assert s.done == {} and json.loads((here / "sweep.json").read_text()) == header()


@pytest.mark.parametrize("old, before, after", [
    pytest.param(header(), 0.0, 0.5, id="none-yet-counts-from-0"),
    pytest.param(header(wall_seconds=3.0), 3.0, 3.5, id="3-s-so-far"),
])
def test_a_resume_carries_on_the_sweep_s_wall_time(here, old, before, after):
    (here / "sweep.json").write_text(json.dumps(old))
    s = E.Store(here, header(), resume=True)
    assert s.header["wall_seconds"] == before
    assert json.loads((here / "sweep.json").read_text()) == {**header(), "wall_seconds": before}
    s.finish(0.504)  # the total kept to a hundredth of a second
    s.close()
    assert json.loads((here / "sweep.json").read_text())["wall_seconds"] == after


def test_a_resume_of_runs_without_their_sweep_json_is_refused(here):
    (here / "runs.jsonl").write_text(json.dumps(rec()) + "\n")
    with pytest.raises(XorRosettaError) as e:
        E.Store(here, header(), resume=True)
    assert str(e.value) == "'sweep' has runs.jsonl but no sweep.json: it was not written by a sweep"


# ------------------------------------------------------------------------------------------- Store: add, close

def test_runs_jsonl_is_fsynced_at_most_once_a_second(here, monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(E, "time", type("Clock", (), {"monotonic": staticmethod(lambda: clock[0])}))
    s = E.Store(here, header(), resume=False)
    synced = []
    monkeypatch.setattr("os.fsync", synced.append)
    for seed, now in enumerate([100.5, 101.0, 101.5, 102.0, 102.5]):  # each line flushed; fsync'ed past 1 s only
        clock[0] = now
        assert s.add(rec(seed=seed))
        assert len((here / "runs.jsonl").read_text().splitlines()) == seed + 1
    assert synced == [s.file.fileno()]  # at 101.5 (1.5 s after the start), not at 101.0 (1.0 s) nor 102.5 (1.0 s)
    assert s.done == {(seed, "canonical", "numpy"): rec(seed=seed) for seed in range(5)}
    clock[0] = 110.0
    assert not s.add(rec(seed=0))  # there already: nothing written, nothing synced
    assert synced == [s.file.fileno()]
    s.close()
    assert len(synced) == 2 and s.file.closed


def test_a_record_that_is_not_strict_json_is_refused(here):
    s = E.Store(here, header(), resume=False)
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        s.add(rec(final_loss=float("nan")))
    s.close()
    assert (here / "runs.jsonl").read_text() == ""


def test_closing_the_store_closes_runs_jsonl(here):
    s = E.Store(here, header(), resume=False)
    s.add(rec())
    s.close()
    assert s.file.closed
    s.close()  # twice: nothing more
    assert [json.loads(x) for x in (here / "runs.jsonl").read_text().splitlines()] == [rec()]


# ---------------------------------------------------------------------------------------------------- Progress

def test_a_progress_bar_shows_after_2_s_with_a_smoothed_eta_at_the_terminal_s_width(monkeypatch):
    pytest.importorskip("tqdm")
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    bar = E.Progress(10, 2, enabled=True)
    assert (bar.bar.total, bar.bar.n, bar.bar.unit) == (10, 2, "run")
    assert (bar.bar.delay, bar.bar.smoothing, callable(bar.bar.dynamic_ncols)) == (2.0, 0.05, True)
    assert terminal.getvalue() == ""  # nothing drawn before the delay
    bar.update()
    bar.update(3)
    assert bar.bar.n == 6
    bar.close()


@pytest.mark.parametrize("enabled", [pytest.param(True, id="no-terminal"), pytest.param(False, id="quiet")])
def test_no_progress_bar_without_a_terminal_or_with_quiet(monkeypatch, enabled):
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr("sys.stderr", io.StringIO() if enabled else Terminal())
    bar = E.Progress(10, 2, enabled=enabled)
    assert bar.bar is None
    bar.update()  # nothing to count on
    bar.close()


# --------------------------------------------------------------------------------------------------- run_local

class FakePool:
    """workers.pool.Pool for run_local: records how it is made and every task submitted; results() plays the tasks
    in the order they were submitted (resubmissions too): each run's record sent as a note, until a run in `crash`
    (then the task fails with `error`), else the task's result (its records again, as run_task returns them)."""

    def __init__(self, crash=(), error="worker exited with status 3"):
        self.crash, self.error = set(crash), error
        self.made, self.submitted = [], []

    def __call__(self, **kw):
        self.made.append(kw)
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def submit(self, key, group, fn, *args, env=()):
        self.submitted.append((key, group, fn, args, env))

    def results(self):
        from xor_rosetta.app.workers.pool import Outcome
        i = 0
        while i < len(self.submitted):
            if i == 10:
                pytest.fail("tasks resubmitted without end")
            key, _, _, (task, _, _), _ = self.submitted[i]
            i += 1
            msgs = []
            for s, v, n in task.keys():
                if (s, v, n) in self.crash:
                    yield Outcome(key, error=self.error)
                    break
                msgs.append({"kind": "run", **rec(seed=s, variant=v, impl=n)})
                yield Outcome(key, msgs[-1], note=True)
            else:
                yield Outcome(key, msgs)


def failed_run(seed, impl, error):
    return failed(seed=seed, impl=impl, error=error)


@pytest.fixture
def local(here, monkeypatch):
    """run_local(tasks) on a FakePool (made with `crash` and `error`): gives (pool, the store's records in the order
    stored, the number of runs the progress bar counted)."""
    def run(tasks, crash=(), error="worker exited with status 3"):
        pool = FakePool(crash, error)
        monkeypatch.setattr("xor_rosetta.app.workers.pool.Pool", pool)
        store = E.Store(here, header(), resume=False)
        bar = E.Progress(10, 0, enabled=False)
        counted = []
        bar.update = lambda n=1: counted.append(n)
        try:
            E.run_local(tasks, SPEC, 1e-6, store, bar, 3, 7.5)
        finally:
            store.close()
        assert list(store.done.values()) == [json.loads(x) for x in (here / "runs.jsonl").read_text().splitlines()]
        return pool, list(store.done.values()), len(counted)
    return run


def test_a_task_goes_to_its_group_s_worker_with_one_thread_each(local, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "4")  # set already: left as it is
    for name in ("MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        monkeypatch.delenv(name, raising=False)
    tasks = [Task("torch", (("A", "1"),), ("torch",), (0, 1), ("canonical",)),
             Task("numpy", (), ("numpy",), (0,), ("canonical",))]
    pool, stored, counted = local(tasks)
    one = {"MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1",
           "TF_NUM_INTEROP_THREADS": "1"}
    assert pool.made == [{"jobs": 3, "timeout": 7.5, "env": one, "recycle_mb": 2048}]
    assert pool.submitted == [(0, "torch", E.run_task, (tasks[0], SPEC, 1e-6), (("A", "1"),)),
                              (1, "numpy", E.run_task, (tasks[1], SPEC, 1e-6), ())]
    assert stored == [rec(seed=0, impl="torch"), rec(seed=1, impl="torch"), rec(seed=0)] and counted == 3


def test_a_crash_is_the_error_of_the_run_it_was_doing_and_the_rest_goes_to_a_fresh_worker(local):
    task = Task("one-group", (("A", "1"),), ("crashy", "numpy"), (0, 1, 2), ("canonical",))
    crash = {(1, "canonical", "crashy"), (2, "canonical", "crashy")}
    pool, stored, counted = local([task], crash)
    again = [Task("one-group", (("A", "1"),), ("crashy", "numpy"), (1, 2), ("canonical",), False,
                  frozenset({(1, "canonical", "crashy")})),
             Task("one-group", (("A", "1"),), ("crashy", "numpy"), (2,), ("canonical",), False,
                  frozenset({(2, "canonical", "crashy")}))]
    assert pool.submitted == [(0, "one-group", E.run_task, (task, SPEC, 1e-6), (("A", "1"),)),
                              (1, "one-group", E.run_task, (again[0], SPEC, 1e-6), (("A", "1"),)),
                              (2, "one-group", E.run_task, (again[1], SPEC, 1e-6), (("A", "1"),))]
    assert stored == [rec(seed=0, impl="crashy"), rec(seed=0), failed_run(1, "crashy", "worker exited with status 3"),
                      rec(seed=1), failed_run(2, "crashy", "worker exited with status 3"), rec(seed=2)]
    assert counted == 6


def test_a_crash_on_a_task_s_last_run_resubmits_nothing(local):
    task = Task("numpy", (), ("numpy",), (0, 1), ("canonical", "native-init"))
    pool, stored, counted = local([task], {(1, "native-init", "numpy")}, "timeout after 7.5 s")
    assert len(pool.submitted) == 1
    assert stored == [rec(seed=0), rec(seed=0, variant="native-init"), rec(seed=1),
                      {**failed_run(1, "numpy", "timeout after 7.5 s"), "variant": "native-init"}]
    assert counted == 4


def test_a_batched_task_s_failure_is_every_run_s_it_had_not_done(local):
    task = Task("numpy", (), ("numpy-batched",), (0, 1, 2), ("canonical",), batched=True)
    after = Task("numpy", (), ("numpy",), (0,), ("canonical",))  # the next task's runs still come
    pool, stored, counted = local([task, after], {(1, "canonical", "numpy-batched")}, "timeout after 7.5 s")
    assert len(pool.submitted) == 2
    assert stored == [rec(seed=0, impl="numpy-batched"), failed_run(1, "numpy-batched", "timeout after 7.5 s"),
                      failed_run(2, "numpy-batched", "timeout after 7.5 s"), rec(seed=0)]
    assert counted == 4


def test_a_failure_after_every_run_is_stored_changes_nothing(local, monkeypatch):
    task = Task("numpy", (), ("numpy",), (0, 1), ("canonical",))
    after = Task("torch", (), ("torch",), (0,), ("canonical",))  # the next task's runs still come
    plain = FakePool.results

    def then_fails(self):  # the first task's runs all noted, then its worker dies before its result
        for out in plain(self):
            yield out if out.note or out.key != 0 else type(out)(out.key, error="worker died (signal 9)")
    monkeypatch.setattr(FakePool, "results", then_fails)
    pool, stored, counted = local([task, after])
    assert len(pool.submitted) == 2 and stored == [rec(seed=0), rec(seed=1), rec(seed=0, impl="torch")]
    assert counted == 3


def test_runs_of_a_class_registered_here_are_stored_from_the_task_s_result(here):
    """A class registered in this process (a --cmd child) runs in this process, where no notes are sent: its runs
    come only in the task's result."""
    from xor_rosetta import registry
    from xor_rosetta.implementations.numpy_mlp import NumpyMLP
    entry = registry.register("numpy-here", NumpyMLP, "NumPy, registered here")
    try:
        task = Task(entry.process_key, (), ("numpy-here",), (7, 8), ("canonical",))
        store = E.Store(here, header(), resume=False)
        bar = E.Progress(10, 0, enabled=False)
        counted = []
        bar.update = lambda n=1: counted.append(n)
        E.run_local([task], {**SPEC, "steps": 5}, 1e-6, store, bar, 1, None)
        store.close()
    finally:
        registry.RUNTIME.pop("numpy-here", None)  # registry.unregister
    assert sorted(store.done) == [(7, "canonical", "numpy-here"), (8, "canonical", "numpy-here")]
    assert all(r["error"] is None and r["agreement"] == "agrees" for r in store.done.values()) and counted == [1, 1]


# ---------------------------------------------------------------------------------------------------- run_dask

class FakeCluster:
    """The `distributed` module for run_dask: Client(address) records what is submitted and cancelled; each future's
    result is `answers[task]` (raised when it is an exception); as_completed gives the futures in submission order."""

    def __init__(self, answers, refuse=None):
        self.answers, self.refuse = answers, refuse
        self.addresses, self.submitted, self.cancelled, self.closed = [], [], [], False

    def module(self):
        import types
        m = types.ModuleType("distributed")
        m.Client, m.as_completed = self.client, lambda futures: iter(list(futures))
        return m

    def client(self, address):
        self.addresses.append(address)
        if self.refuse is not None:
            raise self.refuse
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.closed = True

    def submit(self, fn, task, *args, pure=True):
        self.submitted.append((fn, (task, *args), pure))
        answer = self.answers[task]

        class Future:
            def result(self):
                if isinstance(answer, BaseException):
                    raise answer
                return answer
        return Future()

    def cancel(self, futures):
        self.cancelled.append(futures)


@pytest.fixture
def dask(here, monkeypatch):
    """run_dask(tasks) on a FakeCluster: gives (cluster, the store's records in the order stored, runs counted);
    the cluster is also run.cluster (for a run that raises)."""
    import sys

    def run(answers, refuse=None):
        cluster = run.cluster = FakeCluster(answers, refuse)
        monkeypatch.setitem(sys.modules, "distributed", cluster.module())
        store = E.Store(here, header(), resume=False)
        bar = E.Progress(10, 0, enabled=False)
        counted = []
        bar.update = lambda n=1: counted.append(n)
        try:
            E.run_dask("tcp://scheduler:8786", list(answers), SPEC, 1e-6, store, bar)
        finally:
            store.close()
        return cluster, list(store.done.values()), len(counted)
    return run


def test_dask_tasks_are_submitted_impure_and_a_failed_one_is_each_of_its_runs_error(dask):
    ok = Task("numpy", (), ("numpy",), (0, 1), ("canonical",))
    lost = Task("torch", (), ("torch",), (5, 6), ("canonical",), skip=frozenset({(6, "canonical", "torch")}))
    bare = Task("jax", (), ("jax",), (9,), ("canonical",))
    answers = {ok: [{"kind": "run", **rec(seed=0)}, "a note", {"kind": "run", **rec(seed=1)}],
               lost: RuntimeError("worker lost\nTraceback ..."), bare: KeyError()}
    cluster, stored, counted = dask(answers)
    assert cluster.addresses == ["tcp://scheduler:8786"] and cluster.closed and cluster.cancelled == []
    assert cluster.submitted == [(E.dask_task, (t, SPEC, 1e-6), False) for t in (ok, lost, bare)]
    assert stored == [rec(seed=0), rec(seed=1),
                      failed_run(5, "torch", "failed on the Dask cluster: RuntimeError: worker lost"),
                      failed_run(9, "jax", "failed on the Dask cluster: KeyError: ")]
    assert counted == 4


def test_an_interrupted_dask_sweep_cancels_its_tasks(dask):
    first, second = (Task("numpy", (), ("numpy",), (s,), ("canonical",)) for s in (0, 1))
    with pytest.raises(KeyboardInterrupt):
        dask({first: [{"kind": "run", **rec(seed=0)}], second: KeyboardInterrupt()})
    assert [len(futures) for futures in dask.cluster.cancelled] == [2] and dask.cluster.closed


@pytest.mark.parametrize("refuse", [
    pytest.param(OSError("Timed out trying to connect"), id="os-error"),
    pytest.param(TimeoutError("Timed out trying to connect"), id="timeout"),
    pytest.param(ValueError("Timed out trying to connect"), id="bad-address"),
])
def test_an_unreachable_scheduler_is_a_one_line_error(dask, refuse):
    with pytest.raises(XorRosettaError) as e:
        dask({}, refuse)
    assert str(e.value) == "cannot reach the Dask scheduler at 'tcp://scheduler:8786': Timed out trying to connect"


def test_dask_without_distributed_says_how_to_install_it(here, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed: ImportError
    store = E.Store(here, header(), resume=False)
    with pytest.raises(XorRosettaError) as e:
        E.run_dask("tcp://scheduler:8786", [], SPEC, 1e-6, store, E.Progress(0, 0, enabled=False))
    store.close()
    assert str(e.value) == "--scheduler needs dask.distributed: pip install -c constraints.txt -e '.[dask]'"


# ----------------------------------------------------------------------------------------------------- _handle

def test_a_worker_s_messages_are_handled_by_kind(here):
    s = E.Store(here, header(), resume=False)
    bar = E.Progress(10, 0, enabled=False)
    counted = []
    bar.update = lambda n=1: counted.append(n)
    init = {"kind": "init", "group": "torch", "family": "torch", "seed": 3, "params": [[[[1.0, 2.0]], [0.5]]]}
    for msg in ("a note", ["run"], {"kind": "conventions", "seed": 1}, {"seed": 2}, init,
                {"kind": "run", **rec()}, {"kind": "run", **rec()}):
        E._handle(msg, s, bar)
    s.close()
    assert counted == [1] and s.done == {(7, "canonical", "numpy"): rec()}  # the run once, without its kind
    assert [json.loads(x) for x in (here / "runs.jsonl").read_text().splitlines()] == [rec()]
    assert [p.name for p in (here / "inits" / "torch").iterdir()] == ["seed-3.npz"]  # an init: its weights saved
    with np.load(here / "inits" / "torch" / "seed-3.npz") as z:
        assert np.array_equal(z["W0"], [[1.0, 2.0]]) and np.array_equal(z["b0"], [0.5])
