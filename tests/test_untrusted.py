"""Nothing breaks, round 3: state and golden files read back without trust, sweep reports written as one set, early
checks before a sweep allocates, plug-ins that misbehave at import, signals that land in a gc callback, and worker
errors that a library's pickling would garble. One section per class of issue 22; each test is meant to catch a new
member of its class, not only the example that found it.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from test_cli import GOLDEN, assert_one_line_error, run
from xor_rosetta import registry
from xor_rosetta.app.cli import main
from xor_rosetta.errors import XorRosettaError

SWEEP = ["sweep", "--preset", "seed-numpy", "--steps", "60", "--seeds", "3", "--basin-grid", "0", "--quiet"]
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))

# any JSON value, NaN, infinities and huge integers included
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=10**300, max_value=10**420)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8)


def deep(n: int) -> bytes:
    return b"[" * n + b"]" * n


# one damaged file: random bytes, random JSON, JSON nested too deep, or an object with one field replaced or removed
def damage(valid: dict):
    field = st.sampled_from(sorted(valid))
    return st.one_of(
        st.binary(max_size=40),
        st.sampled_from([b"", b"x", b"\xff\xfe{", b"[]", b"4", b"null", b'"s"', b"NaN", deep(100_000), b"1" * 401]),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.tuples(field, json_values).map(lambda fv: json.dumps({**valid, fv[0]: fv[1]}).encode()),
        field.map(lambda f: json.dumps({k: v for k, v in valid.items() if k != f}).encode()))


# region 1. sweep --resume on a damaged folder

@pytest.fixture(scope="module")
def swept(tmp_path_factory) -> Path:
    """A finished sweep of two implementations (the state --resume reads)."""
    out = tmp_path_factory.mktemp("swept") / "s"
    assert main([*SWEEP, "--impls", "numpy,numpy-batched", "--out", str(out)]) == 0
    return out


def resume_reads(folder: Path) -> None:
    """What `sweep --resume` does with the folder's state before it runs anything, and the report it then writes
    from that state: either an XorRosettaError or a report."""
    from xor_rosetta.app.sweep import report as R
    from xor_rosetta.app.sweep.engine import Store
    header = json.loads((folder / "header.json").read_text())
    store = Store(folder, dict(header), resume=True)
    store.close()
    report = R.summarise(header, list(store.done.values()), folder)
    R.markdown(report, [])
    json.dumps(report)


def _copy(swept: Path, tmp: Path) -> Path:
    out = tmp / f"c{len(list(tmp.iterdir()))}"
    shutil.copytree(swept, out)
    header = json.loads((swept / "sweep.json").read_text())
    header.pop("wall_seconds")
    (out / "header.json").write_text(json.dumps(header))
    return out


@FUZZ
@given(data=st.data())
def test_resume_reads_any_damaged_state_as_a_result_or_one_line_naming_the_file(swept, tmp_path_factory, data):
    """Random bytes and random JSON in sweep.json or in any line of runs.jsonl: --resume either carries on or stops
    with one line that names the file (and the line); never another exception."""
    tmp = tmp_path_factory.mktemp("damaged")
    out = _copy(swept, tmp)
    lines = (out / "runs.jsonl").read_bytes().split(b"\n")[:-1]
    if data.draw(st.booleans(), label="in sweep.json"):
        target, name = out / "sweep.json", "sweep.json"
        target.write_bytes(data.draw(damage(json.loads(target.read_text())), label="sweep.json"))
    else:
        i = data.draw(st.integers(0, len(lines) - 1), label="line")
        bad = data.draw(damage(json.loads(lines[i])), label="runs.jsonl line")
        lines[i] = bad.replace(b"\n", b" ")
        (out / "runs.jsonl").write_bytes(b"\n".join(lines) + b"\n")
        name = f"runs.jsonl: line {i + 1}"
    try:
        resume_reads(out)
    except XorRosettaError as e:
        assert name in str(e) and "\n" not in str(e), str(e)


@pytest.mark.parametrize("where,content,words", [
    ("sweep.json", b"x\n", "sweep.json: not JSON"),
    ("sweep.json", b"", "sweep.json: not JSON"),
    ("sweep.json", b"[1, 2]\n", "sweep.json: expected a JSON object, got a list"),
    ("sweep.json", b"\xff\xfe\n", "sweep.json: not UTF-8"),
    ("sweep.json", deep(100_000), "sweep.json: not usable JSON (nested too deeply)"),
    ("runs.jsonl", b"7\n", "runs.jsonl: line 1: expected a JSON object, got a number"),
    ("runs.jsonl", b'{"variant": "canonical", "impl": "numpy"}\n', "line 1: field 'seed': expected a whole number"),
    ("runs.jsonl", b"\xff\n", "runs.jsonl: line 1: not UTF-8"),
], ids=["garbage", "empty", "list", "utf8", "deep", "number", "no-seed", "line-utf8"])
def test_resume_on_a_damaged_folder_is_one_line_exit_2(swept, tmp_path, where, content, words):
    out = tmp_path / "s"
    shutil.copytree(swept, out)
    if where == "runs.jsonl":  # the damaged line first, the good ones after it
        content += (out / where).read_bytes()
    (out / where).write_bytes(content)
    p = run(*SWEEP, "--impls", "numpy,numpy-batched", "--resume", "--out", out)
    assert_one_line_error(p, words)


def test_wrong_field_types_in_a_record_are_named(swept, tmp_path):
    out = tmp_path / "s"
    shutil.copytree(swept, out)
    lines = (out / "runs.jsonl").read_text().splitlines()
    rec = json.loads(lines[1])
    lines[1] = json.dumps({**rec, "converged": "yes", "final_loss": [1]})
    (out / "runs.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(XorRosettaError, match=r"runs.jsonl: line 2: field 'final_loss': expected a number or null, "
                                              r"got a list; remove that line to have its run redone"):
        main_raising([*SWEEP, "--impls", "numpy,numpy-batched", "--resume", "--out", str(out)])


def main_raising(argv):
    return main([*argv, "--debug"])

# endregion

# region 2. the sweep report is one set


def test_sweep_report_files_are_the_set_this_report_produces(tmp_path):
    """After a sweep with a basin picture, a resumed one without: every file of the report family in the folder is
    one that the new report lists (no stale basin.png or basin.npz), and report.md shows exactly its plots."""
    pytest.importorskip("matplotlib", reason="the basin picture needs matplotlib (the plots extra)")
    from xor_rosetta.app.sweep.report import FAMILY
    out = tmp_path / "s"
    base = [*SWEEP, "--impls", "numpy-batched", "--out", str(out)]
    assert main([*base, "--basin-grid", "5"]) == 0
    assert (out / "basin.png").exists() and (out / "basin.npz").exists()
    assert main([*base, "--basin-grid", "0", "--resume"]) == 0
    report = json.loads((out / "report.json").read_text())
    present = {p.name for p in out.iterdir() if p.name in FAMILY}
    assert present == {"report.json", "report.md", *report["plots"]}, present
    md = (out / "report.md").read_text()
    assert all(f"]({p})" in md for p in report["plots"]) and "basin" not in report


def test_a_failed_report_write_leaves_the_earlier_report_whole(tmp_path, monkeypatch):
    """A write that fails part way (the disk full at the last file) changes none of the report's files."""
    from xor_rosetta.app.common import files
    out = tmp_path / "s"
    base = [*SWEEP, "--impls", "numpy-batched", "--out", str(out)]
    assert main([*base, "--basin-grid", "5"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != "sweep.json"}
    real, written = files._write, []

    def full(f, data):
        written.append(f.name)
        if len(written) > 3:
            raise OSError(28, "No space left on device")
        return real(f, data)
    monkeypatch.setattr(files, "_write", full)
    assert main([*base, "--basin-grid", "0", "--resume"]) == 2
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != "sweep.json"}
    assert after == before and not [p for p in out.iterdir() if p.name.endswith(".tmp")]

# endregion

# region 3. a sweep checks before it allocates or trains


@pytest.mark.parametrize("args,words", [
    (["--seeds", "4294967295"], "runs would hold about"),
    (["--seeds", "4294967290:4294967300"], "init seeds are at most 4,294,967,295"),
    (["--seeds", "99999999999999999999999:99999999999999999999999999"], "init seeds are at most"),
    (["--scheduler", ""], "--scheduler takes tcp://HOST:PORT"),
    (["--scheduler", "tcp://127.0.0.1:99999"], "port of 1-65535"),
    (["--scheduler", "tcp://127.0.0.1"], "--scheduler takes tcp://HOST:PORT"),
    (["--scheduler", "http://127.0.0.1:8786"], "--scheduler takes tcp://HOST:PORT"),
], ids=["seeds-memory", "seeds-range", "seeds-huge", "scheduler-empty", "scheduler-port", "scheduler-no-port",
        "scheduler-scheme"])
def test_a_sweep_checks_its_input_before_it_allocates_or_touches_the_folder(tmp_path, capsys, args, words):
    out = tmp_path / "s"
    tracemalloc.start()
    try:
        status = main([*SWEEP, "--impls", "numpy", "--out", str(out), *args])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    err = capsys.readouterr().err
    assert status == 2 and words in err and len(err.strip().splitlines()) == 1, err
    assert peak < 64 << 20, f"{peak / 2**20:.0f} MiB allocated before the error"
    assert not out.exists()  # the folder does not count as holding a sweep


def test_an_implementation_named_but_not_installed_is_bad_input(tmp_path, capsys, monkeypatch):
    real = registry.missing
    monkeypatch.setattr(registry, "missing", lambda e: ["torch"] if e.name == "torch" else real(e))
    out = tmp_path / "s"
    assert main([*SWEEP, "--impls", "numpy,torch", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--impls: 'torch' is unavailable here: torch not installed" in err and not out.exists(), err


FAILS_IN_WORKERS = '''
import os
from xor_rosetta.implementations.numpy_mlp import NumpyMLP
if os.getpid() != {pid}:
    raise MemoryError("cannot allocate the framework")  # as torch under a ulimit -v too small for it


class Heavy(NumpyMLP):
    pass
'''


def test_an_implementation_that_fails_every_run_fails_the_sweep(tmp_path):
    """Installed, loads here, but not in its workers: every run of it fails, and the sweep exits 1, not 0."""
    plugin = tmp_path / "heavy.py"
    plugin.write_text(FAILS_IN_WORKERS.format(pid=os.getpid()))
    out = tmp_path / "s"
    assert main([*SWEEP, "--impls", f"numpy,{plugin}:Heavy", "--out", str(out)]) == 1
    report = json.loads((out / "report.json").read_text())
    heavy = next(r for r in report["rates"] if r["impl"].endswith(":Heavy"))
    assert heavy["errors"] == 3 and heavy["unavailable"] == 0
    assert all("MemoryError: cannot allocate the framework" in f["error"] for f in report["findings"])

# endregion

# region 4. check --golden-dir validates its files before judging


def _golden_copy(tmp: Path) -> Path:
    folder = tmp / f"g{len(list(tmp.iterdir()))}"
    folder.mkdir()
    for f in GOLDEN.glob("*.numpy.*.json"):
        shutil.copy(f, folder / f.name)
    return folder


@FUZZ
@given(data=st.data())
def test_a_damaged_golden_file_is_refused_naming_it_or_judged_finitely(tmp_path_factory, data):
    """Random bytes or JSON in a golden file, in one of its fields, or in one value at a checkpoint: load refuses it
    with one line naming the file, or every value it holds is finite and drift judges against it without error."""
    from xor_rosetta.app.run import golden
    import numpy as np
    folder = _golden_copy(tmp_path_factory.mktemp("golden"))
    case = data.draw(st.sampled_from(golden.cases(["numpy"])), label="case")
    path = folder / case.file
    good = json.loads(path.read_text())
    how = data.draw(st.sampled_from(["file", "value"]), label="damage")
    if how == "file":
        path.write_bytes(data.draw(damage(good), label="content"))
    else:
        k = data.draw(st.sampled_from(sorted(good["checkpoints"])), label="checkpoint")
        at = good["checkpoints"][k]
        name = data.draw(st.sampled_from(["loss", *sorted(at["params"])]), label="value")
        value = data.draw(json_values | st.sampled_from([float("inf"), float("-inf"), float("nan"), 10**400]))
        damaged = json.loads(json.dumps(good))
        if name == "loss":
            damaged["checkpoints"][k]["loss"] = value
        else:
            p = damaged["checkpoints"][k]["params"][name]
            (p[0] if isinstance(p[0], list) else p)[0] = value
        path.write_text(json.dumps(damaged))
    try:
        want = golden.load(case, folder)
    except XorRosettaError as e:
        assert str(path) in str(e) and "\n" not in str(e), str(e)
        return
    for w in want["checkpoints"].values():
        assert np.isfinite(float(w["loss"])) and all(np.all(np.isfinite(np.asarray(v, dtype=float)))
                                                     for v in w["params"].values())
    golden.drift(case, want, good)  # judged without an exception


@pytest.mark.parametrize("edit,words", [
    (lambda d: deep(100_000), "not usable JSON (nested too deeply)"),
    (lambda d: json.dumps({**d, "checkpoints": {**d["checkpoints"], "10": {**d["checkpoints"]["10"],
                                                                           "loss": 10**400}}}).encode(),
     "field checkpoints.10.loss: the number is out of range (401 digits)"),
    (lambda d: json.dumps(json.loads(json.dumps(d), parse_float=lambda x: float("inf"))).encode(),
     "field checkpoints.1.loss: expected a finite number, got inf"),  # every value Infinity
    (lambda d: json.dumps(json.loads(json.dumps(d), parse_float=lambda x: float("nan"))).encode(),
     "expected a finite number, got nan"),
    (lambda d: json.dumps({**d, "implementation": "torch"}).encode(), "field 'implementation' is 'torch'"),
], ids=["deep", "401-digits", "infinity", "nan", "other-case"])
def test_check_refuses_a_damaged_golden_file_naming_file_and_field(tmp_path, capsys, edit, words):
    from xor_rosetta.app.run import golden
    folder = _golden_copy(tmp_path)
    case = golden.cases(["numpy"])[0]
    path = folder / case.file
    path.write_bytes(edit(json.loads(path.read_text())))
    assert main(["check", "--impls", "numpy", "--golden-dir", str(folder), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and str(path) in err and words in err, err

# endregion

# region 5. plug-ins that misbehave at import

PLUGINS = {  # module: (source, what `list` says of it)
    "xr_exits": ("import sys\nsys.exit(7)\n", "called sys.exit(7)"),
    "xr_raises": ("raise RuntimeError('no licence')\n", "raised RuntimeError: no licence"),
    "xr_prints": ("import os, sys\nprint('hello from a plug-in')\nos.write(1, b'and from C\\n')\n"
                  "from xor_rosetta.implementations.numpy_mlp import NumpyMLP as MLP\n", None),
    "xr_not_mlp": ("class MLP:\n    pass\n", "does not implement xor_rosetta.interface.MLP"),
}


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """A folder that, on PYTHONPATH, installs one entry-point plug-in per PLUGINS module (as a package would)."""
    site = tmp_path_factory.mktemp("site")
    info = site / "xr_plugins-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: xr-plugins\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{registry.ENTRY_POINT_GROUP}]\n" +
                                           "".join(f"{m} = {m}:MLP\n" for m in PLUGINS))
    for m, (source, _) in PLUGINS.items():
        (site / f"{m}.py").write_text(source)
    return site


def test_list_reports_every_plugin_that_fails_at_import_and_stays_pure_json(plugin_site):
    p = run("list", "--json", env={"PYTHONPATH": str(plugin_site)})
    assert p.returncode == 0, p.stderr
    rows = {r["name"]: r for r in json.loads(p.stdout)}  # stdout is the JSON alone
    for m, (_, why) in PLUGINS.items():
        assert rows[m]["available"] == (why is None) and (why is None or why in rows[m]["reason"]), rows[m]
    assert "hello from a plug-in" in p.stderr and "and from C" in p.stderr
    p = run("list", env={"PYTHONPATH": str(plugin_site)})
    assert p.returncode == 0 and "called sys.exit(7)" in p.stdout, p.stdout + p.stderr


@pytest.mark.parametrize("name,words", [
    ("xr_exits", "called sys.exit(7)"), ("xr_raises", "raised RuntimeError: no licence"),
    ("xr_not_mlp", "does not implement"), ("FILE:Nope", "has no class 'Nope'"),
    ("FILE:NotAnMLP", "does not implement xor_rosetta.interface.MLP"),
], ids=["exits", "raises", "not-mlp", "no-class", "file-not-mlp"])
def test_a_plugin_that_does_not_load_is_bad_input(plugin_site, tmp_path, name, words):
    plugin = tmp_path / "m.py"
    plugin.write_text("class NotAnMLP:\n    pass\n")
    name = name.replace("FILE", str(plugin))
    for cmd in (["compare", "--preset", "seed-numpy", "--steps", "5"], [*SWEEP]):
        p = run(*cmd, "--impls", f"numpy,{name}", "--out", tmp_path / "o", env={"PYTHONPATH": str(plugin_site)})
        assert_one_line_error(p, f"--impls: {name!r} cannot be used", words)
    assert not (tmp_path / "o").exists()


def test_a_builtin_whose_framework_is_missing_stays_unavailable(tmp_path, capsys, monkeypatch):
    real = registry.missing
    monkeypatch.setattr(registry, "missing", lambda e: ["torch"] if e.name == "torch" else real(e))
    assert main(["compare", "--preset", "seed-numpy", "--steps", "5", "--impls", "numpy,torch", "--quiet",
                 "--out", str(tmp_path / "c")]) == 1  # numpy does not converge in 5 steps: that alone fails
    assert "torch" not in capsys.readouterr().err
    report = json.loads((tmp_path / "c" / "report.json").read_text())
    torch = next(r for r in report["implementations"] if r["implementation"] == "torch")
    assert torch["verdict"] == "unavailable" and "pip install" in json.dumps(torch), torch

# endregion

# region 6. a signal cannot be swallowed

TRIGGERS = {  # Python code that runs `deliver()` where an exception raised is swallowed ("Exception ignored")
    "gc-callback": "import gc\ngc.callbacks.append(lambda phase, info: phase == 'start' and deliver())\n"
                   "gc.collect()\ngc.callbacks.clear()\n",
    "weakref-callback": "import weakref\nclass T: pass\nt = T()\nr = weakref.ref(t, lambda _: deliver())\ndel t\n",
    "__del__": "class T:\n    def __del__(self):\n        deliver()\nT()\n",
    "except-BaseException": "try:\n    deliver()\nexcept BaseException:\n    pass\n",
}
SIGNALLING = '''
import os, signal, sys, time
from xor_rosetta.implementations.numpy_mlp import NumpyMLP as MLP
done = []


def deliver():
    if not done and os.path.basename(sys.argv[0]) == "xor-rosetta":  # in the command's process, not its workers
        done.append(1)
        os.kill(os.getpid(), signal.{sig})
        time.sleep(0.2)  # the handler runs here, in the callback
{trigger}
'''


@pytest.mark.parametrize("sig,status,word", [("SIGTERM", 143, "terminated"), ("SIGINT", 130, "interrupted")])
@pytest.mark.parametrize("where", list(TRIGGERS))
def test_a_signal_inside_a_gc_callback_still_ends_the_command(tmp_path, where, sig, status, word):
    """The signal arrives while a gc or weakref callback or a __del__ runs (the exception its handler raises is
    swallowed there), or code catches BaseException: the command still ends with 130 or 143 and one line."""
    plugin = tmp_path / "sig.py"
    plugin.write_text(SIGNALLING.format(sig=sig, trigger=TRIGGERS[where]))
    p = run("train", "--impl", f"{plugin}:MLP", "--preset", "seed-numpy", "--steps", "5", "--out", tmp_path / "o",
            "--quiet")
    assert p.returncode == status, p.stderr
    assert p.stderr.strip().splitlines()[-1].startswith(f"xor-rosetta: {word}")
    assert "Exception ignored" not in p.stderr and "Traceback" not in p.stderr, p.stderr

# endregion

# region 7. a worker's error is never lost in transport

RAISING = '''
import threading
from tblib import pickling_support
from xor_rosetta.implementations.numpy_mlp import NumpyMLP
pickling_support.install()  # as dask.distributed does: exceptions now pickle by tblib's own function


class PluginError(Exception):
    pass


class Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("no")


RAISE = {{"builtin": lambda: MemoryError("cannot allocate 42 bytes"),
         "plugin-class": lambda: PluginError("the plug-in's own error"),
         "unpicklable-args": lambda: ValueError("holds a lock", threading.Lock()),
         "unprintable": lambda: Unprintable()}}


class Boom(NumpyMLP):
    def train(self, x, y, steps=None, checkpoints=()):
        raise RAISE["{kind}"]()
'''


@pytest.mark.parametrize("kind,words", [
    ("builtin", "failed: MemoryError: cannot allocate 42 bytes"),
    ("plugin-class", "failed: PluginError: the plug-in's own error"),
    ("unpicklable-args", "failed: ValueError: ('holds a lock', <unlocked _thread.lock object"),
    ("unprintable", "failed: Unprintable: <Unprintable whose message cannot be shown>"),
])
def test_a_workers_exception_arrives_as_its_type_and_message(tmp_path, capsys, kind, words):
    """Whatever the worker's libraries do to the pickling of exceptions (tblib installed there), the parent gets
    the exception's type name and message, said once."""
    pytest.importorskip("tblib")
    plugin = tmp_path / "boom.py"
    plugin.write_text(RAISING.format(kind=kind))
    assert main(["train", "--impl", f"{plugin}:Boom", "--preset", "seed-numpy", "--steps", "5", "--quiet",
                 "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert words in err and "failed: failed:" not in err and "not transferable" not in err, err


def test_a_workers_traceback_text_comes_with_its_error():
    """Pool: the exception raised in a worker under tblib's pickling, rebuilt in the parent where its class is a
    built-in (so `except MemoryError` works), with the worker's traceback text."""
    from xor_rosetta.app.workers import pool as workers
    pytest.importorskip("tblib")
    worker = workers.session().get("tblib-test", ())
    with pytest.raises(MemoryError, match="cannot allocate 7 bytes") as e:
        worker.call(_raise_under_tblib, 7)
    assert "_raise_under_tblib" in e.value.remote_traceback


def _raise_under_tblib(n):
    from tblib import pickling_support
    pickling_support.install()
    raise MemoryError(f"cannot allocate {n} bytes")

# endregion
