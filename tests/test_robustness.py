"""Bad input, divergence, missing frameworks, interruption: clear errors and nothing lost."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import load_or_skip
from xor_rosetta.app import golden
from xor_rosetta.params import init_params
from xor_rosetta.presets import get_preset
from test_cli import EXE, GOLDEN, ROOT, assert_one_line_error, run
from xor_rosetta.app.workers import READY_ENV

BAD_TOML = {
    "unknown activation": ('activations = ["tanh", "gelu"]', "unknown activation 'gelu'; choose one of"),
    "unknown loss": ('loss = "hinge"', "unknown loss 'hinge'"),
    "unknown optimizer": ('[optimizer]\nname = "rmsprop"', "unknown optimizer 'rmsprop'"),
    "zero width": ("layers = [2, 0, 1]", "layers[1] must be > 0"),
    "negative steps": ("steps = -5", "steps must be > 0"),
    "zero lr": ("[optimizer]\nlr = 0", "optimizer.lr must be > 0"),
    "negative lr": ("[optimizer]\nlr = -0.1", "optimizer.lr must be > 0"),
    "activation count": ('activations = ["tanh"]', "2 weight layers need 2 activations, got 1"),
    "bce without sigmoid": ('loss = "bce"', 'loss "bce" needs a sigmoid output activation'),
    "batch zero": ("batch_size = 0", "batch_size must be > 0"),
    "batch too big": ("batch_size = 8", "batch_size must be at most 4"),
    "unknown key": ("stpes = 10", "unknown key 'stpes' in spec"),
    "unknown nested key": ("[optimizer]\nmomentun = 0.9", "unknown key 'momentun' in optimizer"),
    "malformed": ("layers = [2, 5", "is not valid TOML"),
    "wrong type": ('layers = "2-5-1"', "layers must be a list"),
    "unknown init": ('[init]\nscheme = "he"', "unknown init scheme 'he'"),
}


@pytest.mark.parametrize("toml,message", BAD_TOML.values(), ids=BAD_TOML.keys())
def test_bad_config(toml, message, tmp_path):
    (tmp_path / "x.toml").write_text(toml + "\n")
    for cmd in (["compare", "--impls", "numpy"], ["train", "--impl", "numpy"]):
        assert_one_line_error(run(*cmd, "--config", tmp_path / "x.toml", "--out", tmp_path / "o"), message)


BAD_CLI = {
    "unknown preset": (["compare", "--preset", "seed-jax"], "unknown preset 'seed-jax'"),
    "unknown impl": (["train", "--impl", "mxnet", "--preset", "seed-numpy"], "unknown implementation 'mxnet'"),
    "zero steps": (["compare", "--preset", "seed-numpy", "--steps", "0"], "steps must be > 0"),
    "steps not a number": (["compare", "--preset", "seed-numpy", "--steps", "ten"], "invalid int value: 'ten'"),
    "both sources": (["compare", "--preset", "seed-numpy", "--config", "x.toml"], "not allowed with argument"),
}


@pytest.mark.parametrize("args,message", BAD_CLI.values(), ids=BAD_CLI.keys())
def test_bad_arguments(args, message, tmp_path):
    assert_one_line_error(run(*args, "--out", tmp_path), message)


def _weights(tmp_path, **changes):
    good = {f"{p}{i}": a for i, Wb in enumerate(init_params(get_preset("seed-numpy"))) for p, a in zip("Wb", Wb)}
    arrays = {k: v for k, v in {**good, **changes}.items() if v is not None}
    np.savez(tmp_path / "w.npz", **arrays)
    return tmp_path / "w.npz"


def test_bad_weights_files(tmp_path):
    def check(path, message):
        assert_one_line_error(run("compare", "--preset", "seed-numpy", "--init", path, "--out", tmp_path / "o"), message)

    check(_weights(tmp_path, b1=None), "lacks b1")
    check(_weights(tmp_path, W0=np.zeros((5, 2))), "W0 has shape (5, 2), the spec needs (2, 5)")
    check(_weights(tmp_path, W1=np.full((5, 1), np.nan)), "W1 contains NaN or infinite values")
    check(_weights(tmp_path, W0=np.array([object()] * 10, dtype=object).reshape(2, 5)), "holds pickled objects")
    (tmp_path / "t.npz").write_text("W0 = 1")
    check(tmp_path / "t.npz", "is not an .npz archive")
    check(tmp_path / "missing.npz", "does not exist")


def test_unwritable_output_directory(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root ignores permissions: use a path under a file instead
            (tmp_path / "f").write_text("")
            locked = tmp_path / "f"
        assert_one_line_error(run("train", "--impl", "numpy", "--preset", "seed-numpy", "--out", locked / "o"),
                              "is not writable")
    finally:
        (tmp_path / "locked").chmod(0o700)


def test_golden_missing_or_corrupt(tmp_path):
    folder = tmp_path / "g"
    folder.mkdir()
    assert_one_line_error(run("check", "--impls", "numpy", "--golden-dir", folder, "--quiet"), "is missing")
    for f in GOLDEN.glob("*.numpy.*.json"):
        (folder / f.name).write_bytes(f.read_bytes())
    (folder / "seed-keras.numpy.float32.json").write_text('{"checkpoints": ')
    assert_one_line_error(run("check", "--impls", "numpy", "--golden-dir", folder, "--quiet"), "is corrupt")


def test_divergence_is_reported_and_compare_goes_on(tmp_path):
    load_or_skip("torch")
    (tmp_path / "hot.toml").write_text("steps = 200\n[optimizer]\nlr = 50\n")
    p = run("compare", "--config", tmp_path / "hot.toml", "--impls", "numpy,torch", "--out", tmp_path, "--quiet")
    assert p.returncode == 1 and "Traceback" not in p.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    steps = [r["diverged_at_step"] for r in report["implementations"]]
    assert steps[0] is not None and steps == [steps[0]] * 2  # both ran, both diverged at the same step
    assert f"diverged at step {steps[0]}" in p.stdout and f"diverged at step {steps[0]}" in p.stderr
    assert "diverged at step" in (tmp_path / "report.md").read_text()
    p = run("train", "--impl", "numpy", "--config", tmp_path / "hot.toml", "--out", tmp_path / "t")
    assert p.returncode == 1 and f"diverged at step {steps[0]}" in p.stdout


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


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc to find the workers")
@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_interrupted_run_ends_every_worker_and_keeps_earlier_results(sig, code, tmp_path):
    """Interrupted while two workers train: exit 130/143, no worker left (checked by pid), earlier files intact."""
    (tmp_path / "report.json").write_text('{"earlier": true}')
    hang = "tests/impls/crashy.py:HangMLP"
    proc = subprocess.Popen([str(EXE), "compare", "--preset", "seed-numpy", "--steps", "3000000", "--impls",
                             f"numpy,{hang}", "--jobs", "2", "--out", str(tmp_path), "--quiet"], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, READY_ENV: "1"})
    try:
        line = proc.stderr.readline()  # the CLI says when its workers run their tasks
        assert "ready" in line, line + proc.stderr.read()
        workers = children(proc.pid)
        assert len(workers) == 2, workers
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
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


def test_update_never_leaves_a_half_written_set(tmp_path, monkeypatch):
    folder = tmp_path / "golden"
    folder.mkdir()
    for f in GOLDEN.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    before = {f.name: f.read_bytes() for f in folder.iterdir()}
    calls = []

    def failing_write(path, obj):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full")
        Path(path).write_text(json.dumps(obj))

    monkeypatch.setattr(golden, "atomic_write_json", failing_write)
    fake = {c: {"checkpoints": {}} for c in golden.cases()}
    with pytest.raises(OSError, match="disk full"):
        golden.write_all(fake, folder)
    assert {f.name: f.read_bytes() for f in folder.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["golden"]


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
