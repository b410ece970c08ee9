"""The installed `xor-rosetta` entry point, run in a subprocess."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import load_or_skip
from xor_rosetta import registry

EXE = Path(sys.executable).parent / "xor-rosetta"
ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "results" / "golden"


def run(*args, cwd=None, env=None):
    if not EXE.exists():
        pytest.fail(f"{EXE} is missing: install the project (pip install -e .) in the test environment")
    return subprocess.run([str(EXE), *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})}, timeout=300)


def assert_one_line_error(p, *needles):
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    for n in needles:
        assert n in lines[0]


@pytest.mark.parametrize("cmd", [[], ["list"], ["train"], ["compare"], ["check"], ["bench"]])
def test_help_everywhere(cmd):
    p = run(*cmd, "--help")
    assert p.returncode == 0 and "usage: xor-rosetta" in p.stdout


def test_list_json():
    p = run("list", "--json")
    rows = {r["name"]: r for r in json.loads(p.stdout)}
    assert set(rows) == {"numpy", "torch", "torch-compiled", "keras", "keras-xla", "jax", "jax-scan", "keras-jax",
                         "keras-torch"}
    assert rows["keras-jax"]["backend"] == "jax" and rows["keras"]["backend"] == "tensorflow"
    assert rows["numpy"]["available"] and rows["numpy"]["versions"]["numpy"] == np.__version__


def test_train_writes_history_and_canonical_params(tmp_path):
    p = run("train", "--impl", "numpy", "--preset", "seed-numpy", "--steps", "50", "--out", tmp_path, "--quiet")
    assert p.returncode == 0, p.stderr
    hist = json.loads((tmp_path / "history.json").read_text())
    assert hist["implementation"] == "numpy" and hist["spec"]["steps"] == 50 and len(hist["loss"]) == 50
    assert hist["versions"]["numpy"] == np.__version__ and hist["wall_seconds"] > 0
    assert hist["loss"][0] == pytest.approx(0.4476628622337324, abs=1e-15)  # the seed listing's first loss
    with np.load(tmp_path / "params.npz") as z:
        assert z.files == ["W0", "b0", "W1", "b1"] and z["W0"].shape == (2, 5) and z["W1"].shape == (5, 1)


def test_train_from_init_file_and_toml(tmp_path):
    W0 = np.full((2, 3), 0.5)
    np.savez(tmp_path / "w.npz", W0=W0, b0=np.zeros(3), W1=np.ones((3, 1)), b1=np.zeros(1))
    (tmp_path / "x.toml").write_text('layers = [2, 3, 1]\nactivations = ["tanh", "linear"]\nsteps = 1\n'
                                     '[optimizer]\nname = "sgd"\nlr = 0.0000001\n')
    p = run("train", "--impl", "numpy", "--config", tmp_path / "x.toml", "--init", tmp_path / "w.npz",
            "--out", tmp_path / "o", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["spec"]["layers"] == [2, 3, 1]
    with np.load(tmp_path / "o" / "params.npz") as z:
        assert np.allclose(z["W0"], W0, atol=1e-6) and not np.array_equal(z["W0"], W0)  # started there, moved a bit
    bad = run("train", "--impl", "numpy", "--preset", "seed-numpy", "--init", tmp_path / "w.npz", "--out", tmp_path)
    assert_one_line_error(bad, "W0 has shape (2, 3), the spec needs (2, 5)")


def test_compare_numpy_torch_agree(tmp_path):
    load_or_skip("torch")
    p = run("compare", "--preset", "seed-keras", "--impls", "numpy,torch", "--out", tmp_path, "--quiet")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "| torch |" in p.stdout and "agrees, converged" in p.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    torch_row = next(r for r in report["implementations"] if r["implementation"] == "torch")
    assert torch_row["max_param_diff"] <= report["tolerance"]["params"]
    assert report["ok"] and report["spec"]["steps"] == 1000
    for f in ("report.md", "loss.png", "param_diff.png", "boundary.png"):
        assert (tmp_path / f).stat().st_size > 0


def test_compare_exits_1_when_an_implementation_differs(tmp_path):
    p = run("compare", "--preset", "seed-numpy", "--steps", "200", "--impls", "numpy,tests/impls/perturbed.py:NumpyLrOff",
            "--out", tmp_path, "--threshold", "1")
    assert p.returncode == 1, p.stdout + p.stderr
    assert "FAIL: tests/impls/perturbed.py:NumpyLrOff: at step 1: params differ by" in p.stderr
    assert "DISAGREES" in p.stdout


def test_compare_json(tmp_path):
    p = run("compare", "--preset", "seed-numpy", "--steps", "1000", "--impls", "numpy", "--out", tmp_path, "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["implementations"][0]["implementation"] == "numpy"
    p = run("compare", "--preset", "seed-numpy", "--steps", "20", "--impls", "numpy", "--out", tmp_path, "--json")
    assert p.returncode == 1 and "FAIL: numpy: did not converge: final loss" in p.stderr
    assert json.loads(p.stdout)["ok"] is False


CHECK_DEFAULT = ("numpy",)  # the other implementations' golden cases: -m slow


@pytest.mark.parametrize("slow", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["fast", "slow"])
def test_check_passes_on_a_clean_checkout(slow):
    """`check` on every golden case: numpy's and torch's by default, the other implementations' with the slow tests
    (their seed-numpy runs are also judged against the reference by tests/test_common.py, by default)."""
    names = [n for n in registry.REGISTRY if (n not in CHECK_DEFAULT) == slow]
    p = run("check", "--impls", ",".join(names), "--quiet")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "golden cases hold" in p.stdout


def test_check_names_a_perturbed_value(tmp_path):
    golden = tmp_path / "golden"
    shutil.copytree(GOLDEN, golden)
    f = golden / "seed-numpy.numpy.float64.json"
    data = json.loads(f.read_text())
    data["checkpoints"]["100"]["params"]["W1"][2][0] += 1e-9
    f.write_text(json.dumps(data))
    p = run("check", "--impls", "numpy", "--golden-dir", golden, "--quiet")
    assert p.returncode == 1
    assert "seed-numpy/numpy/float64: step 100 W1[2,0]: expected" in p.stderr and "got" in p.stderr


def test_check_update_is_the_only_writer(tmp_path):
    golden = tmp_path / "golden"
    shutil.copytree(GOLDEN, golden)
    before = {p.name: p.read_bytes() for p in golden.iterdir()}
    (golden / "seed-keras.numpy.float32.json").unlink()
    p = run("check", "--impls", "numpy", "--golden-dir", golden, "--quiet")
    assert_one_line_error(p, "golden file", "is missing", "check --update")
    p = run("check", "--impls", "numpy", "--golden-dir", golden, "--update", "--quiet")
    assert p.returncode == 0 and "seed-keras/numpy/float32: new" in p.stdout
    assert "seed-numpy/numpy/float64: unchanged" in p.stdout
    after = {p.name: p.read_bytes() for p in golden.iterdir()}
    assert set(after) == set(before)  # other implementations' files were kept
    (golden / "seed-numpy.numpy.float64.json").write_text("{not json")
    p = run("check", "--impls", "numpy", "--golden-dir", golden, "--quiet")
    assert_one_line_error(p, "is corrupt")


def test_debug_shows_the_traceback():
    p = run("--debug", "compare", "--preset", "seed-jax")
    assert p.returncode != 0 and "Traceback" in p.stderr


@pytest.mark.slow  # three keras-jax processes; by default tests/test_verify.py proves the same rule on a NumPy class
def test_a_declared_difference_agrees_under_its_model_and_strict_fails_it(tmp_path):
    """keras-jax computes in float32 inside a float64 run and declares it: compare judges it under that model and
    says so, exit 0; --strict judges it in float64, DISAGREES, exit 1. The same float32 arithmetic undeclared (the
    Float32Tanh mutant, run as a plug-in) is DISAGREES without --strict."""
    load_or_skip("keras-jax")
    args = ["compare", "--preset", "seed-numpy", "--steps", "1000", "--impls", "numpy,keras-jax", "--json"]
    p = run(*args, "--out", tmp_path / "a")
    rows = {r["implementation"]: r for r in json.loads(p.stdout)["implementations"]}
    assert p.returncode == 0, p.stderr
    assert rows["keras-jax"]["verdict"] == "agrees (float32 inside: Keras on JAX), converged"
    assert rows["keras-jax"]["modelled_difference"].startswith("Keras on JAX: ")
    p = run(*args, "--strict", "--out", tmp_path / "b")
    rows = {r["implementation"]: r for r in json.loads(p.stdout)["implementations"]}
    assert p.returncode == 1 and rows["keras-jax"]["verdict"] == "DISAGREES" and rows["numpy"]["verdict"].startswith(
        "agrees")
    assert "known difference: Keras on JAX" in rows["keras-jax"]["first_disagreement"]
    mutant = "tests/mutants/numpy_mutants.py:Float32Tanh"
    p = run("compare", "--preset", "seed-numpy", "--steps", "1000", "--impls", f"numpy,{mutant}", "--json",
            "--out", tmp_path / "c")
    rows = {r["implementation"]: r for r in json.loads(p.stdout)["implementations"]}
    assert p.returncode == 1 and rows[mutant]["verdict"] == "DISAGREES"
