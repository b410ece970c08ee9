"""`xor-rosetta matrix`: the matrix file's checks, resuming, the report from canned records (fast), and a real
two-cell run in uv environments (marked slow; .ci/run runs the same two cells through the command line)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from xor_rosetta.app.cli import main
from xor_rosetta.app.matrix import cells as mcells
from xor_rosetta.app.matrix import driver, envs, report, spec
from xor_rosetta.errors import XorRosettaError

IMPLS = ["numpy", "jax", "jax-scan", "keras", "keras-xla", "keras-jax", "keras-torch", "torch"]
GOOD = """
[settings]
timeout = 60

[[cell]]
series = "Keras on TensorFlow"
axis = "keras"
impls = ["keras", "keras-xla"]
packages = { keras = "3.5.0", tensorflow_cpu = "2.17.1" }

[[cell]]
series = "Keras on TensorFlow"
axis = "keras"
impls = ["keras"]
packages = { keras = "3.10.0", tensorflow-cpu = "2.19.1" }
"""


def write(tmp_path, text, name="m.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_default_matrix_parses_and_spans_the_releases_the_issue_asks_for():
    m = spec.load(spec.default_path(), known_impls=IMPLS)
    by = {}
    for c in m.cells:
        by.setdefault(c.series, []).append(c)
    assert len(by["Keras on TensorFlow"]) >= 6 and len(by["Keras on JAX"]) >= 6
    assert len(by["JAX, flax and optax"]) >= 5
    minors = {".".join(c.release.split(".")[:2]) for c in by["NumPy"]}
    assert {"2.0", "2.1", "2.2", "2.3", "2.4"} <= minors
    assert len({c.name for c in m.cells}) == len(m.cells)


def test_good_file_parses_with_names_pins_and_env_keys(tmp_path):
    m = spec.load(write(tmp_path, GOOD), known_impls=IMPLS)
    a, b = m.cells
    assert a.name == "keras-on-tensorflow-3.5.0" and a.release == "3.5.0" and a.axis == "keras"
    assert a.pins == ["keras==3.5.0", "tensorflow-cpu==2.17.1"]  # names normalised, sorted
    assert a.env_key != b.env_key and m.timeout == 60 and m.series == ["Keras on TensorFlow"]
    assert [c.name for c in spec.select(m, "keras-on-tensorflow-3.10.0")] == [b.name]
    assert len(spec.select(m, "Keras on TensorFlow")) == 2


@pytest.mark.parametrize("text, says", [
    ("[[cell]]\nseries='S'\naxis='numpy'\nimpls=['numpy']\n", "lacks 'packages'"),
    ("[[cell]]\nseries='S'\naxis='jax'\nimpls=['numpy']\npackages={numpy='2.1.3'}\n", "axis 'jax' must name"),
    ("[[cell]]\nseries='S'\naxis='numpy'\nimpls=['numpy']\npackages={numpy=2}\n", "one exact release"),
    ("[[cell]]\nseries='S'\naxis='numpy'\nimpls=['nope']\npackages={numpy='2.1.3'}\n", "unknown implementation 'nope'"),
    ("[[cell]]\nseries='S'\naxis='numpy'\nimpls=[]\npackages={numpy='2.1.3'}\n", "impls must be a non-empty"),
    ("[[cell]]\nseries='S'\naxis='numpy'\nimpls=['numpy']\npackages={numpy='2.1.3'}\ncolour=1\n",
     "unknown key 'colour'"),
    ("[settings]\ntimeout=-1\n[[cell]]\nseries='S'\naxis='numpy'\nimpls=['numpy']\npackages={numpy='2.1.3'}\n",
     "timeout must be"),
    ("[settings]\n", "no cells"),
    ("[[cell]]\nseries='S'\naxis='numpy'\nimpls=['numpy']\npackages={numpy='2.1.3'}\n" * 2, "used twice"),
    ("[[cell\n", "not valid TOML"),
])
def test_bad_files_are_one_line_errors_naming_what_is_wrong(tmp_path, text, says):
    with pytest.raises(XorRosettaError) as e:
        spec.load(write(tmp_path, text), known_impls=IMPLS)
    assert says in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("args, says", [
    (["--cells", "missing.toml"], "does not exist"),
    (["--only", "no-such-cell"], "no cell or series named 'no-such-cell'"),
    (["--impls", "nope"], "unknown implementation 'nope'"),
    (["--jobs", "0"], "--jobs must be 1 or more"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, monkeypatch, capsys, args, says):
    monkeypatch.chdir(tmp_path)
    assert main(["matrix", *args]) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1 and "Traceback" not in err


def test_help_documents_the_command(capsys):
    with pytest.raises(SystemExit) as e:
        main(["matrix", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for word in ("--cells", "--resume", "--jobs", "--envs", "[[cell]]", "matrix.png", "not installable",
                 "uv"):
        assert word in out


def test_uv_reason_is_one_line():
    text = ("  × No solution found when resolving dependencies:\n  ╰─▶ Because keras==9.9.9 was not found in the "
            "package registry and you require keras==9.9.9, we can\n      conclude that your requirements are "
            "unsatisfiable.\n")
    assert envs.one_line(text) == ("Because keras==9.9.9 was not found in the package registry and you require "
                                   "keras==9.9.9, we can conclude that your requirements are unsatisfiable.")
    assert envs.one_line("error: Failed to fetch\n") == "error: Failed to fetch"


def test_cell_environment_leaks_nothing_of_the_drivers(monkeypatch, tmp_path):
    monkeypatch.setenv("PYTHONPATH", "/somewhere")
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    monkeypatch.setenv("VIRTUAL_ENV", "/driver/.venv")
    env = envs.cell_env(tmp_path / "env")
    assert not {"PYTHONPATH", "KERAS_BACKEND", "VIRTUAL_ENV"} & set(env)
    assert env["PATH"].startswith(str(tmp_path / "env" / "bin"))
    assert "PYTHONPATH" not in envs.uv_env() and "VIRTUAL_ENV" not in envs.uv_env()


def test_drift_lines_give_the_first_step_and_the_largest_size():
    lines = ["seed-keras/keras/float32: step 100 loss: expected 0.5, got 0.51 (|Δ| 0.01 > 1e-06)",
             "seed-keras/keras/float32: step 10 W0[0,1]: expected 0.1, got 0.1001 (|Δ| 0.0001 > 1e-06)",
             "seed-numpy/jax/float64: step 1000 b1[0]: expected 1.0, got 2.0 (|Δ| 1 > 1e-12)"]
    d = mcells.parse_drift(lines)
    assert d["keras"]["first_step"] == 10 and d["keras"]["size"] == 0.01 and len(d["keras"]["lines"]) == 2
    assert d["keras"]["at"] == "seed-keras/float32 step 100 loss"
    assert d["jax"]["first_step"] == 1000


def record(cell, status="judged", results=None, reason="", installed=None):
    return {"version": mcells.RECORD_VERSION, "cell": cell.to_dict(), "impls_run": list(cell.impls),
            "env_key": cell.env_key, "status": status, "reason": reason, "installed": installed or {},
            "seconds": {"total": 12.0}, "results": results or {}}


def res(golden="agrees", drift=None, conventions=None, reason=""):
    return {"golden": golden, "reason": reason, "drift": drift, "replay": "xor-rosetta matrix --only X --impls keras",
            "compare": {"seed-numpy": {"verdict": "agrees, converged"}, "seed-keras": {"verdict": "agrees, converged"}},
            "conventions": conventions, "golden_conventions": {"adam": "keras", "bce": "keras", "momentum": "keras"}}


def canned(tmp_path):
    text = "".join(f"[[cell]]\nseries='Keras on TensorFlow'\naxis='keras'\nimpls=['keras']\n"
                   f"packages={{keras='{v}', tensorflow-cpu='2.18.1'}}\n"
                   for v in ("3.6.0", "3.10.0", "3.8.0", "9.9.9"))
    m = spec.load(write(tmp_path, text), known_impls=IMPLS)
    c36, c310, c38, c99 = m.cells
    drift = {"first_step": 10, "size": 3.5e-4, "at": "seed-keras/float32 step 10 W0", "lines": ["seed-keras/keras/"
             "float32: step 10 W0[0,0]: expected 0.1, got 0.10035 (|Δ| 0.00035 > 1e-06)"]}
    pairs = [(c36, record(c36, results={"keras": res()})),
             (c310, record(c310, results={"keras": res("drift", drift, {"adam": "optax", "bce": "keras"})})),
             (c38, record(c38, results={"keras": res("drift", drift, {"adam": "optax", "bce": "keras"})})),
             (c99, record(c99, "not-installable", reason="Because keras==9.9.9 was not found"))]
    return m, pairs


def test_report_names_drifts_forms_transitions_and_uninstallable_cells(tmp_path):
    m, pairs = canned(tmp_path)
    md = report.render_md(pairs, {"cells_file": "m.toml", "wall_seconds": 42, "ran": 4, "kept": 0}, m.series)
    assert "**drift** from step 10, Δ 0.00035" in md
    assert "adam: keras form in golden, optax form now" in md
    assert "keras: agrees from keras 3.6.0 (the earliest tested); drift (adam optax) first in keras 3.8.0" in md
    assert "not installable first in keras 9.9.9" in md
    assert "replay: `xor-rosetta matrix --only X --impls keras`" in md
    assert "Because keras==9.9.9 was not found" in md
    rows = [ln for ln in md.splitlines() if ln.startswith("| 3.") or ln.startswith("| 9.")]
    assert [r.split(" | ")[0] for r in rows] == ["| 3.6.0", "| 3.8.0", "| 3.10.0", "| 9.9.9"]  # release order
    j = report.render_json(pairs, {})
    assert [c["status"] for c in j["cells"]] == ["judged", "judged", "judged", "not-installable"]
    png = report.render_png(pairs)
    if png is not None:
        assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_without_a_diagnosis_says_so(tmp_path):
    m, pairs = canned(tmp_path)
    r = pairs[1][1]["results"]["keras"]
    r["conventions"] = None
    assert report.form_text(r) == "not diagnosed (verify not run)"
    r["conventions"] = dict(r["golden_conventions"])
    assert report.form_text(r).startswith("no convention changed")
    r["conventions"] = {"adam": None, "bce": "keras", "momentum": "keras"}  # verify matched no modelled Adam form
    assert report.form_text(r) == "adam: keras form in golden, none of the modelled forms now"


def test_records_resume_skips_only_finished_cells_of_the_same_definition(tmp_path, monkeypatch):
    m = spec.load(write(tmp_path, GOOD), known_impls=IMPLS)
    out, calls = tmp_path / "out", []

    def fake(cell, ctx, cells_file, impls):
        calls.append(cell.name)
        if ctx == "interrupt" and len(calls) == 2:
            raise KeyboardInterrupt
        return record(cell, results={i: res() for i in impls})

    class Ctx(str):
        def stop(self):
            pass
    monkeypatch.setattr(driver, "run_cell", fake)
    impls_for = lambda c: list(c.impls)  # noqa: E731
    with pytest.raises(KeyboardInterrupt):
        driver.run(m.cells, Ctx("interrupt"), out, 1, False, True, "", impls_for)
    assert calls == [m.cells[0].name, m.cells[1].name]
    assert driver.load_record(out, m.cells[0]) is not None and driver.load_record(out, m.cells[1]) is None
    assert not list((out / driver.RECORDS).glob("*.tmp*"))
    calls.clear()
    stats = driver.run(m.cells, Ctx("go"), out, 1, True, True, "", impls_for)
    assert calls == [m.cells[1].name] and stats["ran"] == 1 and stats["kept"] == 1
    calls.clear()  # without --resume every cell runs again
    driver.run(m.cells, Ctx("go"), out, 1, False, True, "", impls_for)
    assert calls == [c.name for c in m.cells]
    changed = spec.load(write(tmp_path, GOOD.replace("3.10.0", "3.11.0"), "n.toml"), known_impls=IMPLS)
    todo, done = driver.pending(changed.cells, out, True, impls_for)
    assert [c.name for c in done] == [m.cells[0].name] and len(todo) == 1  # another release: not the same cell
    todo, done = driver.pending(m.cells, out, True, lambda c: ["keras"])  # other implementations: run again
    assert [c.name for c in todo] == [m.cells[0].name]


def test_a_driver_failure_in_one_cell_is_recorded_and_the_matrix_goes_on(tmp_path, monkeypatch):
    m = spec.load(write(tmp_path, GOOD), known_impls=IMPLS)

    def fake(cell, ctx, cells_file, impls):
        if cell is m.cells[0]:
            raise RuntimeError("boom")
        return record(cell, results={i: res() for i in impls})
    monkeypatch.setattr(driver, "run_cell", fake)
    driver.run(m.cells, None, tmp_path, 1, False, True, "", lambda c: list(c.impls))
    a, b = (driver.load_record(tmp_path, c) for c in m.cells)
    assert a["status"] == "error" and "boom" in a["reason"] and b["status"] == "judged"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("uv") is None and not (Path(sys.executable).parent / "uv").exists(),
                    reason="uv not installed")
def test_two_numpy_cells_run_for_real(tmp_path):
    """Two NumPy releases in their own uv environments, judged against the golden files."""
    root = Path(__file__).resolve().parents[1]
    (tmp_path / "two.toml").write_text("".join(f"[[cell]]\nseries='NumPy'\naxis='numpy'\nimpls=['numpy']\n"
                                               f"packages={{numpy='{v}'}}\n" for v in ("2.3.5", "2.4.6")))
    exe = Path(sys.executable).with_name("xor-rosetta")
    p = subprocess.run([str(exe), "matrix", "--cells", str(tmp_path / "two.toml"), "--out", str(tmp_path / "out"),
                        "--project", str(root), "--quiet"], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    data = json.loads((tmp_path / "out" / "matrix.json").read_text())
    got = {c["cell"]["packages"]["numpy"]: c for c in data["cells"]}
    assert set(got) == {"2.3.5", "2.4.6"}
    for v, c in got.items():
        assert c["status"] == "judged" and c["installed"]["numpy"] == v
        assert c["results"]["numpy"]["golden"] == "agrees"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("uv") is None and not (Path(sys.executable).parent / "uv").exists(),
                    reason="uv not installed")
def test_a_drift_is_found_sized_diagnosed_and_given_a_replay_command(tmp_path):
    """Golden files with one value moved by 1e-6: the cell reports a drift at that step, of that size."""
    root = Path(__file__).resolve().parents[1]
    golden = tmp_path / "golden"
    shutil.copytree(root / "results" / "golden", golden)
    f = golden / "seed-keras.numpy.float64.json"
    data = json.loads(f.read_text())
    data["checkpoints"]["100"]["params"]["W0"][0][0] += 1e-6
    f.write_text(json.dumps(data))
    (tmp_path / "one.toml").write_text("[[cell]]\nseries='NumPy'\naxis='numpy'\nimpls=['numpy']\n"
                                       "packages={numpy='2.4.6'}\n")
    exe = Path(sys.executable).with_name("xor-rosetta")
    p = subprocess.run([str(exe), "matrix", "--cells", str(tmp_path / "one.toml"), "--out", str(tmp_path / "out"),
                        "--project", str(root), "--golden-dir", str(golden), "--quiet"], capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 1, p.stderr
    r = json.loads((tmp_path / "out" / "matrix.json").read_text())["cells"][0]["results"]["numpy"]
    assert r["golden"] == "drift" and r["drift"]["first_step"] == 100
    assert abs(r["drift"]["size"] - 1e-6) < 1e-9
    assert r["conventions"] is not None  # verify ran in the cell
    md = (tmp_path / "out" / "matrix.md").read_text()
    assert f"--only numpy-2.4.6 --impls numpy --golden-dir {golden}" in md
