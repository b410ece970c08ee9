"""The golden files' drift judgement (`xor_rosetta.app.run.golden.drift`) at its boundaries: a difference just inside
the tolerance policy's bound holds and one just outside it is reported, for the loss and the params, with the scale
each is judged against and the rounding floor that excuses noise."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from xor_rosetta import registry
from xor_rosetta.app.run import golden as G
from xor_rosetta.app.run.golden import Case, drift
from xor_rosetta.errors import XorRosettaError
from xor_rosetta.presets import PRESETS, get_preset
from xor_rosetta.tolerance import NOISE_FACTOR, tolerance

GOLDEN = Path(__file__).resolve().parent.parent / "results" / "golden"

CASE = Case("seed-numpy", "numpy", "float64")
TOL = tolerance(CASE.dtype)
INSIDE, OUTSIDE = 0.9, 1.1  # of the bound: just inside and just outside it


def golden(loss10=0.5, w10=(0.25, -3.0), b10=(0.5,), loss1=2.0):
    """Two checkpoints: the loss falls from `loss1` (2.0) to `loss10`; at step 10 the largest |param| is 3.0 (in
    W0)."""
    return {"checkpoints": {
        "1": {"loss": loss1, "params": {"W0": [[1.0, -1.5]], "b0": [0.5]}},
        "10": {"loss": loss10, "params": {"W0": [list(w10)], "b0": list(b10)}},
    }}


def test_the_golden_values_themselves_hold():
    assert drift(CASE, golden(), golden()) == []


@pytest.mark.parametrize("factor, fails", [(INSIDE, False), (OUTSIDE, True)])
def test_loss_is_judged_against_the_largest_loss_so_far(factor, fails):
    """Step 10's loss (0.5) is judged against 2.0, step 1's: a difference of 0.9x / 1.1x tol * 2.0, which is over
    the bound of step 10's own loss either way."""
    got = golden(loss10=0.5 + factor * TOL.loss * 2.0)
    lines = drift(CASE, golden(), got)
    assert bool(lines) == fails, lines
    if fails:
        d = abs(got["checkpoints"]["10"]["loss"] - 0.5)
        assert lines == [f"{CASE}: step 10 loss: expected 0.5, got {0.5 + d!r} (|Δ| {d:.2g} > {TOL.loss * 2.0:.2g})"]


@pytest.mark.parametrize("factor, fails", [(INSIDE, False), (OUTSIDE, True)])
def test_small_losses_are_judged_against_themselves(factor, fails):
    """Losses under 1 (0.002, then 0.001) are judged against 0.002: the scale starts at nothing, not at 1."""
    got = golden(loss1=0.002, loss10=0.001 + factor * TOL.loss * 0.002)
    assert bool(drift(CASE, golden(loss1=0.002, loss10=0.001), got)) == fails


def test_steps_are_taken_in_numeric_order():
    """Step 2's loss scales step 10's whatever order the file lists them in ("10" sorts before "2" as text)."""
    def two(loss10):
        return {"checkpoints": {"10": {"loss": loss10, "params": {"b0": [0.0]}},
                                "2": {"loss": 2.0, "params": {"b0": [0.0]}}}}
    assert drift(CASE, two(0.5), two(0.5 + INSIDE * TOL.loss * 2.0)) == []


@pytest.mark.parametrize("sign", [1, -1])
@pytest.mark.parametrize("factor, fails", [(INSIDE, False), (OUTSIDE, True)])
def test_params_are_judged_against_the_largest_param_at_that_step(factor, fails, sign):
    """b0 (0.5) is judged against 3.0, W0's largest |value| at step 10, in either direction."""
    got = golden(b10=(0.5 + sign * factor * TOL.params * 3.0,))
    lines = drift(CASE, golden(), got)
    assert bool(lines) == fails, lines
    if fails:
        assert len(lines) == 1 and lines[0].startswith(f"{CASE}: step 10 b0[0]: expected 0.5")


@pytest.mark.parametrize("factor, fails", [(INSIDE, False), (OUTSIDE, True)])
def test_small_params_are_judged_against_themselves(factor, fails):
    """Params under 1 (largest 0.4) are judged against 0.4, not against 1."""
    small = {"w10": (0.25, -0.4), "b10": (0.1,)}
    got = golden(**{**small, "b10": (0.1 + factor * TOL.params * 0.4,)})
    assert bool(drift(CASE, golden(**small), got)) == fails


def test_the_worst_element_is_named():
    got = golden(w10=(0.25 + 2 * TOL.params * 3.0, -3.0 - 4 * TOL.params * 3.0))
    (line,) = drift(CASE, golden(), got)
    assert line.startswith(f"{CASE}: step 10 W0[0,1]: expected -3.0")


def test_float32_cases_use_float32_tolerances():
    case32 = Case("seed-numpy", "numpy", "float32")
    tol32 = tolerance("float32")
    assert tol32.loss > TOL.loss
    assert drift(case32, golden(), golden(loss10=0.5 + INSIDE * tol32.loss * 2.0)) == []
    assert drift(case32, golden(), golden(loss10=0.5 + OUTSIDE * tol32.loss * 2.0))


def floor(loss=0.0, params=0.0):
    """A rounding floor at the golden checkpoints 1 and 10 (as `golden.rounding_floor` measures it), the loss's
    at step 10 only (index 9)."""
    return SimpleNamespace(loss=np.eye(10)[9] * loss, params={1: params, 10: params})


@pytest.mark.parametrize("factor, fails", [(INSIDE, False), (OUTSIDE, True)])
def test_a_rounding_floor_excuses_noise_up_to_its_factor(factor, fails):
    """Where a floor above the tolerance is given, a difference within NOISE_FACTOR x the floor holds (loss and
    params), and one just beyond it is reported."""
    f = 100 * TOL.loss * 2.0  # a floor well above the tolerance's bound
    got = golden(loss10=0.5 + factor * NOISE_FACTOR * f, b10=(0.5 + factor * NOISE_FACTOR * f,))
    lines = drift(CASE, golden(), got, floor(loss=f, params=f))
    assert len(lines) == (2 if fails else 0), lines
    assert len(drift(CASE, golden(), got)) == 2  # without the floor, both are over the tolerance


def test_missing_steps_arrays_and_shapes_are_reported():
    got = golden()
    del got["checkpoints"]["10"]
    assert drift(CASE, golden(), got) == [f"{CASE}: step 10 is in the golden file but was not run"]
    got = golden()
    del got["checkpoints"]["10"]["params"]["b0"]
    (line,) = drift(CASE, golden(), got)
    assert line.startswith(f"{CASE}: step 10 b0") and "expected shape (1,), got ()" in line
    got = golden(b10=(0.5 + 2 * TOL.params * 3.0,))
    got["checkpoints"]["10"]["params"]["W0"] = [[0.25], [-3.0]]
    lines = drift(CASE, golden(), got)
    assert lines[0] == f"{CASE}: step 10 W0: expected shape (1, 2), got (2, 1)"
    assert len(lines) == 2 and lines[1].startswith(f"{CASE}: step 10 b0[0]")  # the next array is still judged
    want = {"checkpoints": {**golden()["checkpoints"], "100": {"loss": 0.25, "params": {"b0": [0.0]}}}}
    got = {"checkpoints": {"1": golden()["checkpoints"]["1"], "100": {"loss": 0.5, "params": {"b0": [0.0]}}}}
    assert [line.split(":")[1] for line in drift(CASE, want, got)] == [" step 10 is in the golden file but was not run",
                                                                        " step 100 loss"]  # the next step still is
    (line,) = drift(CASE, {"checkpoints": {"1": {"params": {}}}}, golden())
    assert line.startswith(f"{CASE}: golden file is malformed (KeyError('loss')")


def test_a_nan_is_a_disagreement():
    got = golden(loss10=float("nan"), b10=(float("nan"),))
    assert len(drift(CASE, golden(), got)) == 2
    (line,) = drift(CASE, golden(), golden(w10=(0.25, float("nan"))))
    assert line.startswith(f"{CASE}: step 10 W0[0,1]: expected -3.0, got nan")


def test_the_first_non_finite_element_is_named():
    (line,) = drift(CASE, golden(), golden(w10=(float("inf"), float("nan"))))
    assert line.startswith(f"{CASE}: step 10 W0[0,0]: expected 0.25, got inf")


def test_cases_cover_every_preset_implementation_and_dtype():
    assert G.cases(["numpy"]) == [Case(p, "numpy", d) for p in PRESETS for d in ("float64", "float32")]
    assert len(G.cases()) == len(PRESETS) * len(registry.REGISTRY) * 2
    assert CASE.file == "seed-numpy.numpy.float64.json" and str(CASE) == "seed-numpy/numpy/float64"


def test_load_reads_a_golden_file_and_names_a_missing_or_corrupt_one(tmp_path):
    assert G.load(CASE, GOLDEN) == json.loads((GOLDEN / CASE.file).read_text())
    with pytest.raises(XorRosettaError, match="is missing; create it with: xor-rosetta check --update"):
        G.load(CASE, tmp_path)
    for text in ("{not json", "{}", "[]"):
        (tmp_path / CASE.file).write_text(text)
        with pytest.raises(XorRosettaError, match="is corrupt.*; recreate it with: xor-rosetta check --update"):
            G.load(CASE, tmp_path)


def test_compute_matches_the_committed_golden_file_and_write_all_replaces_the_folder(tmp_path):
    """numpy's seed-keras case, computed now, holds against its golden file, with the checkpoints up to its steps;
    write_all writes the whole set in place of the old folder."""
    case = Case("seed-keras", "numpy", "float64")
    got = G.compute(case)
    steps = get_preset("seed-keras").steps
    assert list(got["checkpoints"]) == [str(k) for k in G.CHECKPOINTS if k <= steps]
    assert "10000" not in got["checkpoints"]
    assert (got["preset"], got["implementation"], got["dtype"]) == ("seed-keras", "numpy", "float64")
    assert got["conventions"] == registry.load("numpy").conventions.to_dict()
    assert got["versions"] == registry.versions(registry.REGISTRY["numpy"])
    assert drift(case, G.load(case, GOLDEN), got) == []
    folder = tmp_path / "golden"
    folder.mkdir()
    (folder / "stale.json").write_text("{}")
    G.write_all({case: got}, folder)
    assert sorted(p.name for p in folder.iterdir()) == [case.file]
    assert G.load(case, folder) == json.loads(json.dumps(got))
    assert folder.stat().st_mode & 0o777 == 0o755


def test_compute_hands_the_implementation_data_in_the_cases_dtype(monkeypatch):
    """A float32 case trains on float32 x and y (numpy's implementation, cut to 1 step, recording what it is given)."""
    real, seen = registry.load("numpy"), []

    class Recording(real):
        def train(self, x, y, **kw):
            seen.append((x.dtype, y.dtype))
            return super().train(x, y, **kw)

    monkeypatch.setattr(G.registry, "load", lambda name: Recording)
    monkeypatch.setattr(G, "get_preset", lambda name: get_preset(name).replace(steps=1))
    assert list(G.compute(Case("seed-keras", "numpy", "float32"))["checkpoints"]) == ["1"]
    assert seen == [(np.float32, np.float32)]


def test_write_all_that_fails_leaves_the_old_folder_and_no_half_set(tmp_path, monkeypatch):
    folder = tmp_path / "golden"
    folder.mkdir()
    (folder / "old.json").write_text("{}")
    writes = []

    def failing(path, data):
        writes.append(path)
        if len(writes) == 2:
            raise RuntimeError("disk full")
        path.write_text(json.dumps(data))

    monkeypatch.setattr(G, "atomic_write_json", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        G.write_all({Case("seed-numpy", "numpy", d): {"d": d} for d in G.DTYPES}, folder)
    assert [p.name for p in tmp_path.iterdir()] == ["golden"]  # the new folder, half written, is gone
    assert [p.name for p in folder.iterdir()] == ["old.json"]


def test_rounding_floor_is_the_references_at_the_golden_checkpoints(monkeypatch):
    """The floor of numpy's seed-keras case in float32 (cut to 100 steps), in numpy's conventions (not the default
    ones): the reference's own rounding_floor of that run."""
    monkeypatch.setattr(G, "get_preset", lambda name: get_preset(name).replace(steps=100))
    from xor_rosetta.data import xor_data
    from xor_rosetta.params import init_params
    from xor_rosetta.reference import Reference, rounding_floor
    case, conv = Case("seed-keras", "numpy", "float32"), registry.load("numpy").conventions
    f = G.rounding_floor(case, conv.to_dict())
    spec = get_preset("seed-keras").replace(dtype="float32", steps=100)
    ks = [k for k in G.CHECKPOINTS if k <= spec.steps]
    assert sorted(f.params) == ks and len(f.loss) == spec.steps
    x, y, p = *xor_data("float32"), init_params(spec)
    want = rounding_floor(spec, p, conv, Reference(spec, p, conv).train(x, y, checkpoints=ks), ks, x, y)
    assert f.params == want.params and np.array_equal(f.loss, want.loss)


def test_compute_all_runs_each_case_in_a_worker_and_reports_progress():
    cases = [Case("seed-keras", "numpy", "float64"), Case("seed-numpy", "numpy", "float64")]
    seen = []
    got = G.compute_all(cases, jobs=1, progress=lambda what, n: seen.append((what, n)))
    assert list(got) == cases
    for c in cases:
        assert drift(c, G.load(c, GOLDEN), got[c]) == [] and got[c]["dtype"] == c.dtype
    assert sorted(w for w, _ in seen) == sorted(f"{c} done" for c in cases) and [n for _, n in seen] == [1, 2]


def test_compute_all_maps_a_failed_or_timed_out_case_to_its_reason():
    bad, slow = Case("no-such-preset", "numpy", "float64"), Case("seed-numpy", "numpy", "float64")
    got = G.compute_all([bad], jobs=1)
    assert isinstance(got[bad], str) and "no-such-preset" in got[bad]
    got = G.compute_all([slow], jobs=1, timeout=0.01)  # 10,000 steps take far longer than 10 ms
    assert got[slow].startswith("timeout after")


RECREATE = "; recreate it with: xor-rosetta check --update"
LONG80, LONG81 = "p" * 79 + "q", "p" * 79 + "qr"  # the message shows 80 characters of a field: the 81st is cut
KEY20, KEY21 = "k" * 19 + "m", "k" * 19 + "mn"  # and 20 of a checkpoint's key or a param's name
DELETE = object()
CK = "field checkpoints.10"


def golden_file(**fields):
    """A valid golden file of CASE (two checkpoints, versions and conventions) with `fields` put at their dotted
    paths ("checkpoints.10.loss"); a value of DELETE removes the field."""
    data = {"preset": CASE.preset, "implementation": CASE.impl, "dtype": CASE.dtype,
            "versions": {"numpy": "2.4.6"}, "conventions": {"loss": "mse"}, **golden()}
    for path, value in fields.items():
        *parents, last = path.split(".")
        at = data
        for p in parents:
            at = at[p]
        if value is DELETE:
            del at[last]
        else:
            at[last] = value
    return data


@pytest.mark.parametrize("fields, problem", [
    ({"preset": "seed-keras"}, "field 'preset' is 'seed-keras', not 'seed-numpy': the file of another case"),
    ({"implementation": "jax"}, "field 'implementation' is 'jax', not 'numpy': the file of another case"),
    ({"dtype": "float32"}, "field 'dtype' is 'float32', not 'float64': the file of another case"),
    ({"preset": LONG80}, f"field 'preset' is {LONG80!r}, not 'seed-numpy': the file of another case"),
    ({"preset": LONG81}, f"field 'preset' is {LONG80!r}, not 'seed-numpy': the file of another case"),
    ({"preset": DELETE}, "field 'preset': expected a string, got null"),
    ({"dtype": 64}, "field 'dtype': expected a string, got a number"),
    ({"versions": ["numpy"]}, "field 'versions': expected a JSON object, got a list"),
    ({"versions.numpy": 2}, "field 'versions.numpy': expected a string, got a number"),
    ({"conventions": "mse"}, "field 'conventions': expected a JSON object, got a string"),
    ({"conventions.loss": None}, "field 'conventions.loss': expected a string, got null"),
    ({"checkpoints": DELETE}, "field 'checkpoints': expected a JSON object, got null"),
    ({"checkpoints": [1]}, "field 'checkpoints': expected a JSON object, got a list"),
    ({"checkpoints": {}}, "field 'checkpoints' is empty"),
    ({"checkpoints.5": {}}, "field checkpoints.5: not a golden checkpoint (one of 1, 10, 100, 1000, 10000)"),
    ({f"checkpoints.{KEY20}": {}}, f"field checkpoints.{KEY20}: not a golden checkpoint (one of 1, 10, 100, 1000, "
                                   f"10000)"),
    ({f"checkpoints.{KEY21}": {}}, f"field checkpoints.{KEY20}: not a golden checkpoint (one of 1, 10, 100, 1000, "
                                   f"10000)"),
    ({"checkpoints.10": [0.5]}, f"{CK}: expected a JSON object, got a list"),
    ({"checkpoints.10.loss": DELETE}, f"{CK}.loss: expected a number, got null"),
    ({"checkpoints.10.loss": "0.5"}, f"{CK}.loss: expected a number, got a string"),
    ({"checkpoints.10.loss": True}, f"{CK}.loss: expected a number, got a boolean"),
    ({"checkpoints.10.loss": float("inf")}, f"{CK}.loss: expected a finite number, got inf"),
    ({"checkpoints.10.loss": float("-inf")}, f"{CK}.loss: expected a finite number, got -inf"),
    ({"checkpoints.10.loss": float("nan")}, f"{CK}.loss: expected a finite number, got nan"),
    ({"checkpoints.10.loss": 10**309}, f"{CK}.loss: the number is out of range (310 digits)"),
    ({"checkpoints.10.params": DELETE}, f"{CK}.params: expected a JSON object, got null"),
    ({"checkpoints.10.params": [[0.5]]}, f"{CK}.params: expected a JSON object, got a list"),
    ({"checkpoints.10.params": {}}, f"{CK}.params is empty"),
    ({"checkpoints.10.params.b0": []}, f"{CK}.params.b0: expected a non-empty list of numbers, got []"),
    ({"checkpoints.10.params.b0": 0.5}, f"{CK}.params.b0: expected a non-empty list of numbers, got a number"),
    ({"checkpoints.10.params.b0": [0.5, None]}, f"{CK}.params.b0[1]: expected a number, got null"),
    ({"checkpoints.10.params.b0": [float("nan")]}, f"{CK}.params.b0[0]: expected a finite number, got nan"),
    ({"checkpoints.10.params.W0": [[1.0, 2.0], [3.0]]}, f"{CK}.params.W0[1]: rows of different lengths"),
    ({"checkpoints.10.params.W0": [[], []]}, f"{CK}.params.W0[0]: rows of different lengths"),
    ({"checkpoints.10.params.W0": [[1.0, float("inf")]]}, f"{CK}.params.W0[0][1]: expected a finite number, got inf"),
    ({f"checkpoints.10.params.{KEY20}": [None]}, f"{CK}.params.{KEY20}[0]: expected a number, got null"),
    ({f"checkpoints.10.params.{KEY21}": [None]}, f"{CK}.params.{KEY20}[0]: expected a number, got null"),
])
def test_a_malformed_golden_file_is_one_line_naming_the_field(tmp_path, fields, problem):
    """Each check of `validate`, read through `load`: the whole message, the file named once as corrupt; a field's
    value is shown to 80 characters and a checkpoint's key or a param's name to 20 (just inside and just outside)."""
    path = tmp_path / CASE.file
    path.write_text(json.dumps(golden_file(**fields)))
    with pytest.raises(XorRosettaError) as e:
        G.load(CASE, tmp_path)
    assert str(e.value) == f"golden file {path} is corrupt: {problem}{RECREATE}"


@pytest.mark.parametrize("fields", [
    {},
    {"versions": DELETE, "conventions": DELETE},
    {"versions": {}, "conventions": {}},
    {"checkpoints.10.loss": 1.7976931348623157e308, "checkpoints.10.params.b0": [-1.7976931348623157e308]},
    {"checkpoints.10.loss": 10**308, "checkpoints.10.params.b0": [0]},
    {"checkpoints.10000": {"loss": 0.0, "params": {"W0": [[0.0]]}}},
])
def test_a_golden_file_just_inside_the_checks_loads(tmp_path, fields):
    """Versions and conventions are optional; the largest finite numbers, whole numbers and every golden
    checkpoint are accepted, and the file is returned as it is."""
    data = golden_file(**fields)
    (tmp_path / CASE.file).write_text(json.dumps(data))
    assert G.load(CASE, tmp_path) == data


def test_only_the_files_own_name_is_marked_corrupt(tmp_path):
    """A field that quotes the file's name ("golden file P: ") keeps it: only the message's first one is replaced."""
    path = tmp_path / CASE.file
    key = f"golden file {path}: "
    path.write_text(json.dumps(golden_file(**{"versions": {key: 1}})))
    with pytest.raises(XorRosettaError) as e:
        G.load(CASE, tmp_path)
    assert str(e.value) == (f"golden file {path} is corrupt: field 'versions.{key}': expected a string, got a "
                            f"number{RECREATE}")
