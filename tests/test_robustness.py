"""Nothing breaks: odd input, huge runs, blow-ups, interrupts and failing outputs end cleanly, and nothing is lost.

One section per class of failure; each has tests meant to catch a new member of the class, not only the example
that found it. Most run `xor_rosetta.app.cli.main` in-process (fast); a subprocess only where the process itself
is the point (signals, pipes, the entry-point script, memory limits). Bad values of the spec and weights files
are tested once, in-process, in tests/test_spec_params.py.
"""
from __future__ import annotations

import errno
import importlib.util
import io
import json
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import load_or_skip
from test_cli import EXE, GOLDEN, ROOT, assert_one_line_error, run
from xor_rosetta import registry
from xor_rosetta.app.bench import speed as bench
from xor_rosetta.app import cli
from xor_rosetta.app.common import files
from xor_rosetta.app.run import golden, report, runner
from xor_rosetta.app.common.files import json_text, write_set
from xor_rosetta.app.common.resources import available_memory
from xor_rosetta.interface import History
from xor_rosetta.params import init_params
from xor_rosetta.presets import get_preset
from xor_rosetta.spec import Optimizer, Spec
from xor_rosetta.tolerance import AGREES, ILL


HAVE_PLOTS = importlib.util.find_spec("matplotlib") is not None


def main(capsys, *args):
    """Run the command line in this process: (exit status, stdout, stderr)."""
    try:
        code = cli.main([str(a) for a in args])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(capsys, *args, needles=()):
    code, out, err = main(capsys, *args)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, (code, err)
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def strict_json(text: str):
    """json.loads, refusing NaN and Infinity (which are not JSON)."""
    def refuse(token):
        raise ValueError(f"{token} is not JSON")
    return json.loads(text, parse_constant=refuse)


# region: bad input, named in one line (the spec's own values: tests/test_spec_params.py)

BAD_ARGS = {
    "unknown preset": (["compare", "--preset", "seed-jax"], "unknown preset 'seed-jax'"),
    "unknown impl": (["train", "--impl", "mxnet", "--preset", "seed-numpy"], "unknown implementation 'mxnet'"),
    "zero steps": (["compare", "--preset", "seed-numpy", "--steps", "0"], "steps must be a whole number from 1 to"),
    "23-digit steps": (["compare", "--preset", "seed-numpy", "--steps", "12345678901234567890123"],
                       "1,000,000,000 (the maximum), got 12345678901234567890123"),
    "int64 steps": (["train", "--impl", "numpy", "--preset", "seed-numpy", "--steps", str(2**63 - 1)],
                    "(the maximum), got 9223372036854775807"),
    "1e12 steps": (["train", "--impl", "numpy", "--preset", "seed-numpy", "--steps", "1e12"],
                   "(the maximum), got 1000000000000"),
    "steps not a number": (["compare", "--preset", "seed-numpy", "--steps", "ten"], "expected a whole number of steps"),
    "fractional steps": (["compare", "--preset", "seed-numpy", "--steps", "2.5"], "expected a whole number of steps"),
    "both sources": (["compare", "--preset", "seed-numpy", "--config", "x.toml"], "not allowed with argument"),
    "no implementation": (["compare", "--preset", "seed-numpy", "--impls", ","], "--impls names no implementation"),
    "empty impls": (["compare", "--preset", "seed-numpy", "--impls", ""], "--impls names no implementation"),
    "duplicate impls": (["compare", "--preset", "seed-numpy", "--impls", "numpy, numpy"], "'numpy' more than once"),
    "duplicate check impls": (["check", "--impls", "numpy,numpy"], "'numpy' more than once"),
    "no check": (["verify", "numpy", "--checks", ","], "--checks names no check"),
    "threshold nan": (["compare", "--preset", "seed-numpy", "--threshold", "nan"], "expected a finite loss > 0"),
    "threshold inf": (["compare", "--preset", "seed-numpy", "--threshold", "inf"], "expected a finite loss > 0"),
    "threshold negative": (["compare", "--preset", "seed-numpy", "--threshold", "-1"], "expected a finite loss > 0"),
    "threshold zero": (["compare", "--preset", "seed-numpy", "--threshold", "0"], "expected a finite loss > 0"),
    "float16": (["train", "--impl", "numpy", "--preset", "seed-numpy", "--dtype", "float16"], "unknown dtype"),
}


@pytest.mark.quick
@pytest.mark.parametrize("args,message", BAD_ARGS.values(), ids=BAD_ARGS.keys())
def test_bad_arguments(args, message, tmp_path, capsys):
    one_line_error(capsys, *args, *(["--out", tmp_path] if args[0] != "check" else []), needles=[message])
    assert not (tmp_path / "report.json").exists()


@pytest.mark.quick
def test_bad_files_through_the_command_line(tmp_path, capsys):
    """Each kind of file error reaches the user as one line, for both commands that read files."""
    (tmp_path / "x.toml").write_text('activations = ["tanh", "gelu"]\n')
    (tmp_path / "seed.toml").write_text("[init]\nseed = 4294967296\n")
    (tmp_path / "w.npz").write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip
    (tmp_path / "dir.npz").mkdir()
    for cmd in (["compare", "--impls", "numpy"], ["train", "--impl", "numpy"]):
        out = ["--out", tmp_path / "o"]
        one_line_error(capsys, *cmd, "--config", tmp_path / "x.toml", *out, needles=["unknown activation 'gelu'"])
        one_line_error(capsys, *cmd, "--config", tmp_path / "seed.toml", *out, needles=["init.seed must be at most"])
        one_line_error(capsys, *cmd, "--config", tmp_path / "none.toml", *out, needles=["does not exist"])
        one_line_error(capsys, *cmd, "--preset", "seed-numpy", "--init", tmp_path / "w.npz", *out, needles=["lacks W0"])
        one_line_error(capsys, *cmd, "--preset", "seed-numpy", "--init", tmp_path / "dir.npz", *out,
                       needles=["is a directory, not a file"])
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_the_entry_point_script_prints_one_line(tmp_path):
    """The same, once through the installed script in a process of its own."""
    (tmp_path / "x.toml").write_text("steps = 9223372036854775807\n")
    assert_one_line_error(run("compare", "--config", tmp_path / "x.toml", "--out", tmp_path), "(the maximum)")


@pytest.mark.quick
def test_unwritable_output_directory(tmp_path, capsys):
    (tmp_path / "f").write_text("")
    one_line_error(capsys, "train", "--impl", "numpy", "--preset", "seed-numpy", "--out", tmp_path / "f" / "o",
                   needles=["is not writable"])


@pytest.mark.quick
def test_golden_missing_or_corrupt(tmp_path, capsys):
    folder = tmp_path / "g"
    folder.mkdir()
    one_line_error(capsys, "check", "--impls", "numpy", "--golden-dir", folder, "--quiet", needles=["is missing"])
    for f in GOLDEN.glob("*.numpy.*.json"):
        (folder / f.name).write_bytes(f.read_bytes())
    (folder / "seed-keras.numpy.float32.json").write_text('{"checkpoints": ')
    one_line_error(capsys, "check", "--impls", "numpy", "--golden-dir", folder, "--quiet", needles=["is corrupt"])

# endregion

# region: memory, checked before it is allocated


def test_a_run_that_would_not_fit_stops_before_it_starts(tmp_path, capsys, monkeypatch):
    from xor_rosetta.app.common import resources
    monkeypatch.setattr(resources, "available_memory", lambda: 3 << 30)
    line = one_line_error(capsys, "train", "--impl", "numpy", "--preset", "seed-numpy", "--steps", "300000000",
                          "--out", tmp_path, needles=["this run needs about 4.5 GiB", "but 3.0 GiB is available"])
    assert "use fewer steps" in line
    wide = 'layers = [2, 100000, 100000, 1]\nactivations = ["tanh", "tanh", "linear"]'
    one_line_error(capsys, "compare", "--config", _toml(tmp_path, wide), "--impls",
                   "numpy", "--out", tmp_path, needles=["GiB of memory", "smaller layers"])
    assert not (tmp_path / "history.json").exists()


def test_memory_limit_of_the_process_is_respected(tmp_path):
    """Under `ulimit -v` (a real limit, in a process of its own) the pre-flight says so instead of a MemoryError."""
    if available_memory() is None or not sys.platform.startswith("linux"):
        pytest.skip("no memory figures on this platform")
    # the limit is set by a small launcher that then execs the command (no preexec_fn: that forks this process,
    # which holds the frameworks' threads)
    limited = [sys.executable, "-c", "import os, resource, sys; resource.setrlimit(resource.RLIMIT_AS, (3 << 30, "
               "3 << 30)); os.execv(sys.argv[1], sys.argv[1:])"]
    p = subprocess.run([*limited, str(EXE), "train", "--impl", "numpy", "--preset", "seed-numpy", "--steps",
                        "300000000", "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    assert re.fullmatch(r"xor-rosetta: error: this run needs about 4\.5 GiB .* but \d\.\d GiB is available; .*\n",
                        p.stderr)


def test_history_json_is_written_in_chunks(tmp_path):
    """A long loss history never becomes a list or one string in memory (a class: any JSON this tool writes)."""
    loss = np.linspace(1, 0, 400_000)
    loss[5], loss[6] = np.nan, np.inf
    tracemalloc.start()
    try:
        write_set(tmp_path, {"history.json": {"loss": loss}})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 6 << 20, peak  # as a list of Python floats alone it would be 13 MB, as one string 8 MB more
    back = strict_json((tmp_path / "history.json").read_text())["loss"]
    assert len(back) == len(loss) and back[5] is None and back[6] is None and back[7] == loss[7]


def test_plots_draw_a_bounded_number_of_points():
    ks = report._log_steps(10**9)
    assert len(ks) <= report.MAX_POINTS + 1 and ks[0] == 0 and ks[-1] == 10**9 - 1 and np.all(np.diff(ks) > 0)
    assert np.array_equal(report._log_steps(100), np.arange(100))


class Recorder:
    """A stand-in model: records how many rows each forward call gets."""

    def __init__(self):
        self.rows = []

    def forward(self, x):
        self.rows.append(len(x))
        return (x[:, :1] * 2 + x[:, 1:]).astype(np.float32)


def test_boundary_grid_goes_through_the_model_in_chunks():
    """`layers = [2, 100000, 1]` asked for 7.6 GiB at once; any width now costs at most one chunk."""
    points = runner.boundary_grid()
    for width in (5, 100_000, 10**8):
        model = Recorder()
        out = runner.grid_outputs(model, Spec(layers=(2, width, 1)))
        assert np.array_equal(out, (points[:, 0] * 2 + points[:, 1]).astype(np.float32))
        assert sum(model.rows) == len(points) and max(model.rows) * width * 8 <= max(runner.GRID_CHUNK_BYTES, width * 8)

# endregion

# region: runs that blow up still write their report


def _toml(tmp_path, text, name="x.toml"):
    (tmp_path / name).write_text(text + "\n")
    return tmp_path / name


def _blown_up_init(tmp_path):
    spec = get_preset("seed-keras")
    np.savez(tmp_path / "big.npz", **{f"{k}{i}": a * 1e200 for i, Wb in enumerate(init_params(spec))
                                      for k, a in zip("Wb", Wb)})
    return tmp_path / "big.npz"


def _check_report(out: Path, expect_plots: bool = True) -> dict:
    rep = strict_json((out / "report.json").read_text())
    assert "# xor-rosetta compare" in (out / "report.md").read_text()
    if expect_plots and "plots_skipped" not in rep:
        assert rep["plots"] == list(report.PLOTS.values())
    for name in rep["plots"]:
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporary files
    return rep


def test_divergence_is_reported_and_compare_goes_on(tmp_path, capsys):
    """lr = 1e20 diverges at step 9 (the loss passes 1e290 first, which a log axis cannot show)."""
    cfg = _toml(tmp_path, "steps = 50\n[optimizer]\nlr = 1e20")
    code, out, err = main(capsys, "compare", "--config", cfg, "--impls", "numpy", "--out", tmp_path / "o", "--quiet")
    assert code == 1 and "Traceback" not in err and "FAIL: numpy: diverged at step 9" in err
    rep = _check_report(tmp_path / "o")
    assert ("plots_skipped" in rep) == (not HAVE_PLOTS) and rep["implementations"][0]["verdict"] == "diverged at step 9"
    code, out, err = main(capsys, "train", "--impl", "numpy", "--config", cfg, "--out", tmp_path / "t", "--json")
    assert code == 1 and strict_json(out)["diverged_at_step"] == 9 and strict_json(out)["final_loss"] is None
    history = strict_json((tmp_path / "t" / "history.json").read_text())
    assert history["loss"][8] is None and history["loss"][7] > 1e290


def test_non_finite_from_the_first_step_is_divergence(tmp_path, capsys):
    """Initial weights x1e200: non-finite at step 1 for everyone; torch's BCELoss raises on it, which is divergence."""
    names = ["numpy"] + (["torch"] if "torch" not in _missing() else [])
    code, out, err = main(capsys, "compare", "--preset", "seed-keras", "--init", _blown_up_init(tmp_path), "--impls",
                          ",".join(names), "--out", tmp_path / "o", "--quiet")
    assert code == 1 and "Traceback" not in err
    rep = _check_report(tmp_path / "o")
    assert [r["verdict"] for r in rep["implementations"]] == ["diverged at step 1"] * len(names)
    assert [line for line in err.splitlines() if line.startswith("FAIL")] == \
        [f"FAIL: {n}: diverged at step 1" for n in names]


def _missing():
    return {e.name for e in registry.ENTRIES if registry.unavailable_reason(e)}


RAISING = '''
import numpy as np
from xor_rosetta.implementations.numpy_mlp import NumpyMLP

class RaisesOnNaN(NumpyMLP):  # as torch's BCELoss does: "all elements of input should be between 0 and 1"
    def train(self, x, y, steps=None, checkpoints=()):
        h = super().train(x, y, steps, checkpoints)
        if not np.all(np.isfinite(h.loss)):
            raise RuntimeError("all elements of input should be between 0 and 1")
        return h

class AlwaysRaises(NumpyMLP):
    def train(self, x, y, steps=None, checkpoints=()):
        raise RuntimeError("a bug")
'''


def test_an_exception_on_non_finite_values_is_divergence_and_any_other_is_an_error(tmp_path):
    """The class "an implementation raises on NaN": divergence where the reference diverges too, else an error."""
    (tmp_path / "plug.py").write_text(RAISING)
    raises_on_nan, always = f"{tmp_path / 'plug.py'}:RaisesOnNaN", f"{tmp_path / 'plug.py'}:AlwaysRaises"
    hot = get_preset("seed-numpy").replace(steps=50, optimizer=Optimizer(lr=1e20))
    ks = runner.checkpoints_for(hot.steps)
    params = init_params(hot)
    refs = runner.References(hot, params, ks)
    r = runner.run_one(raises_on_nan, hot, params, 1e-6, ks, references=refs)
    assert r.error is None and r.diverged_at == 8 and report.verdict(r, 1e-6) == "diverged at step 9"
    assert report.verdict(runner.run_one(always, hot, params, 1e-6, ks, references=refs), 1e-6) == "error"
    cool = hot.replace(optimizer=Optimizer(lr=0.1))
    assert report.verdict(runner.run_one(always, cool, params, 1e-6, ks), 1e-6) == "error"


def test_report_is_written_when_plotting_fails(tmp_path, monkeypatch):
    def broken(results):
        raise RuntimeError("matplotlib broke")
    monkeypatch.setattr(report, "plot_images", broken)
    spec = get_preset("seed-numpy").replace(steps=20)
    r = runner.run_one("numpy", spec, init_params(spec), 1.0, runner.checkpoints_for(20))
    rep = report.summary("x", spec, [r], 1.0, 0.1)
    report.write(tmp_path, rep, [r])
    rep = _check_report(tmp_path, expect_plots=False)
    assert rep["plots"] == [] and rep["plots_skipped"] == "plotting failed (RuntimeError: matplotlib broke)"
    assert "No plots: plotting failed" in (tmp_path / "report.md").read_text()


FLOATS = st.sampled_from([0.0, -1.0, 1e-300, 1e300, 1e308, np.nan, np.inf, -np.inf]) | st.floats()


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(loss=st.lists(FLOATS, min_size=1, max_size=30), diffs=st.lists(FLOATS, min_size=1, max_size=5),
       grid=FLOATS)
def test_plots_draw_any_run(loss, diffs, grid):
    """The class "a value matplotlib cannot draw": losses, distances and outputs of any size or sign, NaN, inf."""
    pytest.importorskip("matplotlib")
    run = runner.ImplRun("x", history=History(np.array(loss)), grid_outputs=np.full(runner.GRID ** 2, grid))
    r = runner.RunResult("x", run, param_diff_curve={k + 1: d for k, d in enumerate(diffs)})
    images = report.plot_images([r])
    assert sorted(images) == sorted(report.PLOTS.values()) and all(b[:4] == b"\x89PNG" for b in images.values())

# endregion

# region: valid JSON, always


JSONABLE = st.recursive(
    st.none() | st.booleans() | st.integers() | FLOATS | st.text(max_size=5)
    | st.lists(FLOATS, max_size=5).map(np.array),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=4), kids, max_size=3), max_leaves=10)


def _nulled(obj):
    if isinstance(obj, np.ndarray):
        obj = obj.tolist()
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _nulled(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nulled(v) for v in obj]
    return obj


@settings(max_examples=200)
@given(JSONABLE)
def test_json_is_strict_and_laid_out_as_before(obj):
    """Everything this tool writes as JSON (reports, histories, --json) is valid JSON: NaN and infinities are null."""
    text = json_text(obj)
    assert strict_json(text) == _nulled(obj)
    if "array" not in repr(obj) and not re.search(r"\b(nan|inf)\b", repr(obj)):  # what json.dumps writes alike
        assert text == json.dumps(obj, indent=2)


def test_every_json_output_is_strict(tmp_path, capsys):
    """--json of every command prints strict JSON, even for a run that diverged."""
    cfg = _toml(tmp_path, "steps = 50\n[optimizer]\nlr = 1e20")
    for args in (["list"], ["compare", "--config", cfg, "--impls", "numpy", "--out", tmp_path / "c"],
                 ["train", "--impl", "numpy", "--config", cfg, "--out", tmp_path / "t"],
                 ["check", "--impls", "numpy", "--quiet"]):
        code, out, err = main(capsys, *args, "--json")
        assert code in (0, 1) and strict_json(out) is not None, (args, err)

# endregion

# region: the seed-keras preset in float32


def test_seed_keras_in_float32_is_ill_conditioned_not_a_disagreement():
    """One rounding per step moves the float32 reference by ~1e-3 relative; the frameworks differ by 4.6e-4 to
    2.5e-3. The verdict says so (ill-conditioned, converged), never DISAGREES."""
    load_or_skip("torch")
    spec = get_preset("seed-keras").replace(dtype="float32")
    params, ks = init_params(spec), runner.checkpoints_for(spec.steps)
    refs = runner.References(spec, params, ks)
    numpy_run, torch_run = (runner.run_one(n, spec, params, 0.05, ks, references=refs) for n in ("numpy", "torch"))
    assert numpy_run.judgement.status == AGREES and numpy_run.converged(0.05)
    assert torch_run.judgement.status == ILL and torch_run.converged(0.05)
    assert report.verdict(torch_run, 0.05).startswith("ill-conditioned: rounding alone moves")
    assert report.verdict(torch_run, 0.05).endswith(", converged")

# endregion

# region: KERAS_BACKEND set by the user


@pytest.mark.slow  # Keras in three fresh processes
def test_keras_backend_set_by_the_user(tmp_path):
    """The keras implementations run on TensorFlow whatever KERAS_BACKEND says; `list` says what train does."""
    if "keras" in _missing():
        load_or_skip("keras")
    for backend in ("foo", "torch"):
        p = run("list", env={"KERAS_BACKEND": backend})
        assert p.returncode == 0 and "Traceback" not in p.stderr
        assert re.search(r"^keras +available", p.stdout, re.M), p.stdout
    p = run("train", "--impl", "keras", "--preset", "seed-numpy", "--steps", "10", "--out", tmp_path, "--json",
            env={"KERAS_BACKEND": "torch"})
    assert p.returncode == 0 and strict_json(p.stdout)["implementation"] == "keras", p.stderr

# endregion

# region: writers leave the old set or the new set


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()} if folder.exists() else {}


def _writers(tmp_path):
    """Each writer of a set of files: (folder, write(version)) where version 0 and 1 write different sets."""
    spec = get_preset("seed-numpy").replace(steps=30)
    results = [runner.run_one("numpy", spec, init_params(spec), 1.0, runner.checkpoints_for(30))]

    def compare_report(v):
        rep = report.summary(f"run{v}", spec, results, 1.0 + v, 0.1)
        if v:  # the new set has no plots: the old plots must go with the old report
            report.plot_images = lambda results: {}
        try:
            report.write(tmp_path / "report", rep, results)
        finally:
            report.plot_images = plot_images

    def train(v):
        write_set(tmp_path / "train", {"params.npz": bytes([v]) * 100, "history.json": {"loss": np.arange(5.0 + v)}})

    def benchmarks(v):
        rep = {"variants": [], "sweep": [], "version": v}
        bench.write(tmp_path / "bench", rep)

    def golden_files(v):
        golden.write_all({golden.Case("p", "i", d): {"v": v, "d": d} for d in ("float32", "float64")[:1 + v]},
                         tmp_path / "golden")

    def guide_files(v):
        from xor_rosetta.app.docs import guide
        rendered = guide.render_all
        guide.render_all = lambda: {name: f"{name} {v}" for name in ("guide.md", "guide.html", "maths.md")}
        try:
            guide.write(tmp_path / "guide")
        finally:
            guide.render_all = rendered

    plot_images = report.plot_images
    return {"report": (tmp_path / "report", compare_report), "train": (tmp_path / "train", train),
            "bench": (tmp_path / "bench", benchmarks), "golden": (tmp_path / "golden", golden_files),
            "guide": (tmp_path / "guide", guide_files)}


@pytest.mark.filterwarnings("ignore:No artists with labels")
@pytest.mark.parametrize("writer", ["report", "train", "bench", "golden", "guide"])
def test_every_writer_leaves_the_old_set_or_the_new_set(writer, tmp_path, monkeypatch):
    """Interrupt or fail each writer at every one of its writes in turn: its folder holds the old set or the new."""
    monkeypatch.setattr(bench, "markdown", lambda r, plot: f"# benchmarks {r['version']} {plot}\n")
    folder, write = _writers(tmp_path)[writer]
    write(1)
    new = _snapshot(folder)
    shutil.rmtree(folder)
    write(0)
    old = _snapshot(folder)
    assert old != new and old and new
    real, calls = files._write, []

    def failing(f, data):
        calls.append(1)
        if len(calls) == fail_at:
            raise KeyboardInterrupt() if fail_at % 2 else OSError(errno.ENOSPC, "No space left on device")
        real(f, data)

    monkeypatch.setattr(files, "_write", failing)
    fail_at, failed = 1, True
    while failed:
        calls.clear()
        try:
            write(1)
            failed = False
        except (KeyboardInterrupt, OSError, Exception) as e:
            assert isinstance(e, (KeyboardInterrupt, OSError)) or "No space left on device" in str(e)
        state = _snapshot(folder)
        assert state in (old, new), f"failing write {fail_at} left a mix: {sorted(state)}"
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # nothing left beside it
        if failed:
            assert state == old
            fail_at += 1
    assert _snapshot(folder) == new and fail_at > 1


def test_signals_are_held_while_a_set_is_swapped_in(tmp_path, monkeypatch):
    """SIGTERM during the renames acts after the last one: never new plots beside an old report."""
    for name in ("report.json", "report.md", "loss.png"):
        (tmp_path / name).write_text("old")
    real = files._replace

    def rename_then_terminate(src, dst):
        real(src, dst)
        os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, cli._on_signal)
    monkeypatch.setattr(files, "_replace", rename_then_terminate)
    try:
        with pytest.raises(SystemExit) as e:
            write_set(tmp_path, {"loss.png": "new", "report.json": "new", "report.md": "new"})
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert e.value.code == 143
    assert _snapshot(tmp_path) == {n: b"new" for n in ("loss.png", "report.json", "report.md")}


def _update_many(folder, tag, rounds):
    for k in range(rounds):
        golden.write_all({golden.Case("p", f"i{j}", "float64"): {"writer": tag, "round": k} for j in range(3)}, folder)


def test_concurrent_updates_each_leave_a_whole_set(tmp_path):
    """Two `check --update` at once gave ENOTEMPTY and left .golden-old-* behind; now they take turns."""
    folder = tmp_path / "golden"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_update_many, args=(folder, tag, 8)) for tag in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    sets = {json.loads(p.read_text())["writer"] for p in folder.iterdir()}
    assert len(list(folder.iterdir())) == 3 and len(sets) == 1  # one writer's whole set
    assert sorted(p.name for p in tmp_path.iterdir()) == ["golden"]


def test_update_checks_its_folder_before_computing(tmp_path, capsys, monkeypatch):
    def compute(case):
        raise AssertionError("computed before checking where to write")
    monkeypatch.setattr(golden, "compute", compute)
    (tmp_path / "f").write_text("")
    one_line_error(capsys, "check", "--update", "--impls", "numpy", "--golden-dir", tmp_path / "f" / "golden",
                   needles=["cannot write beside", "must be a writable folder"])
    import xor_rosetta
    inside = Path(xor_rosetta.__file__).parent / "golden"
    one_line_error(capsys, "check", "--update", "--impls", "numpy", "--golden-dir", inside,
                   needles=["would write into the installed package"])
    if os.geteuid() != 0:  # root ignores permissions
        (tmp_path / "ro").mkdir(mode=0o500)
        one_line_error(capsys, "check", "--update", "--impls", "numpy", "--golden-dir", tmp_path / "ro" / "golden",
                       needles=["Permission denied"])


def test_update_never_leaves_a_half_written_set(tmp_path, monkeypatch):
    folder = tmp_path / "golden"
    shutil.copytree(GOLDEN, folder)
    before = _snapshot(folder)
    calls = []

    def failing_write(path, obj):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full")
        Path(path).write_text(json.dumps(obj))

    monkeypatch.setattr(golden, "atomic_write_json", failing_write)
    with pytest.raises(OSError, match="disk full"):
        golden.write_all({c: {"checkpoints": {}} for c in golden.cases()}, folder)
    assert _snapshot(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["golden"]

# endregion

# region: interrupts


INTERRUPT_AT_IMPORT = '''
import importlib.abc, os, signal, sys
class Interrupt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == os.environ.get("XR_TEST_SIGNAL_AT"):
            sys.meta_path.remove(self)
            os.kill(os.getpid(), getattr(signal, os.environ["XR_TEST_SIGNAL"]))
        if name == os.environ.get("XR_TEST_READY_AT"):
            sys.meta_path.remove(self)
            os.write(2, b"ready\\n")
if os.environ.get("XR_TEST_SIGNAL_AT") or os.environ.get("XR_TEST_READY_AT"):
    sys.meta_path.insert(0, Interrupt())
'''


def _hook(tmp_path) -> dict:
    (tmp_path / "hook").mkdir(exist_ok=True)
    (tmp_path / "hook" / "sitecustomize.py").write_text(INTERRUPT_AT_IMPORT)
    return {"PYTHONPATH": str(tmp_path / "hook")}


@pytest.mark.parametrize("sig,code,word", [("SIGINT", 130, "interrupted"), ("SIGTERM", 143, "terminated")])
def test_a_signal_during_the_first_heavy_import(sig, code, word, tmp_path):
    """Through the entry-point script: a signal while NumPy is being imported ends in one line."""
    p = run("compare", "--preset", "seed-numpy", "--impls", "numpy", "--out", tmp_path / "o",
            env={**_hook(tmp_path), "XR_TEST_SIGNAL_AT": "numpy", "XR_TEST_SIGNAL": sig})
    assert p.returncode == code and p.stderr == f"xor-rosetta: {word}; earlier results are intact\n", p.stderr


DURING_EVERY_IMPORT = '''
import io, os, signal, sys, importlib.abc
signal.signal(signal.SIGTERM, signal.SIG_DFL)
args = sys.argv[1:]
seen = []
class Record(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.startswith("xor_rosetta"):
            seen.append(name)
def purge():
    for m in [m for m in sys.modules if m.startswith("xor_rosetta")]:
        del sys.modules[m]
sys.meta_path.insert(0, Record())
from xor_rosetta.app import cli
sys.stdout = io.StringIO()
cli.main(args)  # once through, to learn which modules it imports
sys.meta_path.pop(0)
targets = [m for m in dict.fromkeys(seen) if m not in ("xor_rosetta", "xor_rosetta.app", "xor_rosetta.app.cli")]
class Interrupt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == at:
            os.kill(os.getpid(), sig)
failures = []
for sig, code, word in ((signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")):
    for at in targets:
        purge()
        from xor_rosetta.app import cli
        sys.meta_path.insert(0, Interrupt())
        sys.stderr = io.StringIO()
        try:
            got = cli.main(args)
        except SystemExit as e:
            got = e.code
        finally:
            err, sys.stderr = sys.stderr.getvalue(), sys.__stderr__
            sys.meta_path.pop(0)
        if got != code or err != f"xor-rosetta: {word}; earlier results are intact\\n":
            failures.append((at, sig, got, err))
sys.stdout = sys.__stdout__
print(len(targets), failures)
'''


def test_a_signal_during_any_import(tmp_path):
    """The class: Ctrl-C or SIGTERM while any of the tool's own modules is being imported (each imports others,
    NumPy and the frameworks lazily) ends in one line with 130 or 143, never a traceback."""
    (tmp_path / "drive.py").write_text(DURING_EVERY_IMPORT)
    p = subprocess.run([sys.executable, str(tmp_path / "drive.py"), "compare", "--preset", "seed-numpy", "--impls",
                        "numpy", "--steps", "100", "--threshold", "1", "--out", str(tmp_path / "o"), "--quiet"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    count, failures = p.stdout.strip().split(" ", 1)
    assert int(count) >= 10 and failures == "[]", p.stdout


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_interrupted_run_keeps_earlier_results(sig, code, tmp_path):
    (tmp_path / "history.json").write_text('{"earlier": true}')
    env = {**os.environ, **_hook(tmp_path), "XR_TEST_READY_AT": "xor_rosetta.implementations.numpy_mlp"}
    proc = subprocess.Popen([str(EXE), "train", "--impl", "numpy", "--preset", "seed-numpy", "--steps", "50000000",
                             "--out", str(tmp_path), "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    assert proc.stderr.readline() == "ready\n"  # about to train
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code
    assert err in ("xor-rosetta: interrupted; earlier results are intact\n",
                   "xor-rosetta: terminated; earlier results are intact\n"), err
    assert json.loads((tmp_path / "history.json").read_text()) == {"earlier": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.json", "hook"]  # no temporary files left


def children(pid: int) -> set[int]:
    """Every process whose parent is `pid`, read from /proc."""
    out = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.add(int(d.name))
            except (OSError, IndexError, ValueError):
                pass
    return out


def gone(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"  # a zombie
    except OSError:
        return True


# Starts a command with SIGINT at its default action, in the same process (exec). Ignored signals are inherited: in
# full runs of this suite, the command started from an xdist worker had SIGINT and SIGQUIT ignored (the pair C's
# system() ignores in its caller while its child runs), so SIGINT never reached it and the test timed out.
WITH_SIGINT = [sys.executable, "-c", "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
               "os.execv(sys.argv[1], sys.argv[1:])"]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc to find the workers")
@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_interrupted_run_ends_every_worker_and_keeps_earlier_results(sig, code, tmp_path):
    """Interrupted while two workers train: exit 130/143, no worker left (checked by pid), earlier files intact."""
    (tmp_path / "report.json").write_text('{"earlier": true}')
    hang = "tests/impls/crashy.py:HangMLP"
    proc = subprocess.Popen([*WITH_SIGINT, str(EXE), "compare", "--preset", "seed-numpy", "--steps", "3000000",
                             "--impls", f"numpy,{hang}", "--jobs", "2", "--out", str(tmp_path), "--quiet"], cwd=ROOT,
                            text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "XR_HANG_SAYS": "1"})
    try:
        line = proc.stderr.readline()  # HangMLP says when it trains (tests/impls/crashy.py)
        assert "hang: training" in line, line + proc.stderr.read()
        deadline = time.monotonic() + 30
        while len(workers := children(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)  # the numpy worker starts beside it
        assert len(workers) == 2, workers
        proc.send_signal(sig)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            status = (Path("/proc") / str(proc.pid) / "status").read_text()
            proc.kill()
            pytest.fail(f"still running 60 s after {sig!r}; {status}\n{proc.communicate()[1]}")
    finally:
        proc.kill()
    assert proc.returncode == code, err
    assert "interrupted" in err or "terminated" in err
    assert "Traceback" not in err
    deadline = time.monotonic() + 10
    while not all(gone(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [p for p in workers if not gone(p)] == []
    assert json.loads((tmp_path / "report.json").read_text()) == {"earlier": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]  # no temporary files left

# endregion

# region: output streams


@pytest.mark.parametrize("args", [["list"], ["compare", "--preset", "seed-numpy", "--impls", "numpy", "--steps", "100",
                                             "--threshold", "1", "--json", "--out"]], ids=["list", "compare --json"])
def test_a_closed_stdout_ends_quietly(args, tmp_path):
    """`xor-rosetta ... | head -1`: the reader went away; stop without a word, as other Unix tools do (141)."""
    args = args + [str(tmp_path)] if args[-1] == "--out" else args
    proc = subprocess.Popen([str(EXE), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # before the command writes anything
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141 and err == b"", err


def test_an_unencodable_terminal(tmp_path, monkeypatch):
    """A terminal that cannot show Δ or — (PYTHONIOENCODING=ascii): escaped, every command, no error."""
    results = []
    for args in (["list"], ["compare", "--preset", "seed-numpy", "--impls", "numpy", "--steps", "100", "--threshold",
                            "1", "--out", tmp_path],
                 ["train", "--impl", "numpy", "--config", tmp_path / "Δ—.toml"]):
        raw_out, raw_err = io.BytesIO(), io.BytesIO()
        monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw_out, encoding="ascii"))
        monkeypatch.setattr(sys, "stderr", io.TextIOWrapper(raw_err, encoding="ascii"))
        code = cli.main([str(a) for a in args])
        sys.stdout.flush(), sys.stderr.flush()
        results.append((code, raw_out.getvalue().decode("ascii"), raw_err.getvalue().decode("ascii")))
    assert [c for c, _, _ in results] == [0, 0, 2]
    assert "max \\u0394params vs numpy" in results[1][1]
    assert results[2][2].startswith("xor-rosetta: error: config file ") and results[2][2].count("\n") == 1
    assert "\\u0394\\u2014.toml' does not exist" in results[2][2]


def test_the_terminal_encoding_through_the_entry_point(tmp_path):
    p = run("compare", "--preset", "seed-numpy", "--impls", "numpy", "--steps", "100", "--threshold", "1", "--out",
            tmp_path, env={"PYTHONIOENCODING": "ascii"})
    assert p.returncode == 0 and "\\u0394params" in p.stdout and p.stderr == "", p.stderr


def test_a_full_disk(tmp_path, capsys, monkeypatch):
    """Every writer: no space left ends in one line naming the file; the earlier files stay as they were."""
    args = ["compare", "--preset", "seed-numpy", "--impls", "numpy", "--steps", "100", "--threshold", "1", "--quiet"]
    assert main(capsys, *args, "--out", tmp_path / "c")[0] == 0
    assert main(capsys, "train", "--impl", "numpy", "--preset", "seed-numpy", "--steps", "20", "--out",
                tmp_path / "t")[0] == 0
    before = {d: _snapshot(tmp_path / d) for d in ("c", "t")}

    def full(f, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files, "_write", full)
    one_line_error(capsys, *args, "--out", tmp_path / "c", needles=[f"could not write {tmp_path / 'c'}",
                                                                     "(No space left on device); nothing in"])
    one_line_error(capsys, "train", "--impl", "numpy", "--preset", "seed-numpy", "--steps", "20", "--out",
                   tmp_path / "t", needles=["No space left on device"])
    assert {d: _snapshot(tmp_path / d) for d in ("c", "t")} == before


def test_a_real_full_disk(tmp_path):
    """The same on a 64 KB tmpfs, where the file system itself runs out (needs root and mount; skipped otherwise)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        out = mnt / "o"
        out.mkdir()
        st = os.statvfs(mnt)
        (mnt / "filler").write_bytes(bytes(max(0, st.f_bavail * st.f_frsize - 1024)))  # leave 1 KB
        p = run("compare", "--preset", "seed-numpy", "--impls", "numpy", "--steps", "100", "--threshold", "1",
                "--out", out, "--quiet")
        assert_one_line_error(p, "No space left on device")
        assert list(out.iterdir()) == []
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)

# endregion


HIDE = '''
import importlib.abc, sys
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"torch", "tensorflow", "keras", "jax", "flax", "optax"}:
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, Hide())
'''


def test_without_frameworks_everything_else_works(tmp_path):
    (tmp_path / "hide").mkdir()
    (tmp_path / "hide" / "sitecustomize.py").write_text(HIDE)
    env = {"PYTHONPATH": str(tmp_path / "hide")}
    p = run("list", env=env)
    assert p.returncode == 0
    for name, extra in (("torch", "torch"), ("keras", "keras"), ("jax", "jax"), ("keras-jax", "keras,jax")):
        assert re.search(rf"^{name} +UNAVAILABLE", p.stdout, re.M), p.stdout
        assert f"pip install -c constraints.txt -e '.[{extra}]'" in p.stdout
    p = run("compare", "--preset", "seed-numpy", "--out", tmp_path / "o", "--quiet", env=env)
    assert p.returncode == 0, p.stderr
    assert "| torch |" in p.stdout and "unavailable" in p.stdout and "install with" in p.stdout
    p = run("check", "--quiet", env=env)
    assert p.returncode == 0 and "skipped torch" in p.stdout and "skipped keras" in p.stdout
    assert "skipped jax" in p.stdout
