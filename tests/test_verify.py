"""`xor-rosetta verify`: every built-in passes the battery; every mutant (one classic mistake each) is diagnosed as
exactly that mistake; the scorecard, reports and exit statuses; the pytest entry point."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import IMPLS, load_or_skip
from mutants.numpy_mutants import MUTANTS, LrTwice, NumpyMLP
from mutants.seed_listing import SeedListingMLP
from xor_rosetta.app.cli import main
from xor_rosetta.app.diagnose import CATALOGUE
from xor_rosetta.app.testing import parametrize_with_checks
from xor_rosetta.app.verify import CHECKS, BadTarget, Battery, verify


@parametrize_with_checks(IMPLS)  # the quick battery, one test per implementation and check: numpy-forward, ...
def test_builtin_passes(impl, check):
    check(load_or_skip(impl))  # the class conftest gives (one battery per class and worker)


CASES = {cls.__name__: (cls, cause) for cls, cause in MUTANTS.items()}
CASES["SeedListing"] = (SeedListingMLP, "only-last-layer")


def test_every_cause_in_the_catalogue_has_a_mutant():
    assert {cause for _, cause in CASES.values()} == {c.id for c in CATALOGUE}


@pytest.mark.parametrize("name", CASES)
def test_mutant_is_diagnosed(name):
    cls, cause = CASES[name]
    d = verify(cls, level="quick", exitfirst=True).diagnosis
    assert d is not None, f"{name} passed every check"
    assert [c.id for c, _ in d.causes] == [cause], "\n".join(d.lines())


def test_seed_listing_first_failure_is_located():
    """The repaired seed listing: its forward pass and loss agree; W0 and b0 get no gradient."""
    r = verify(SeedListingMLP, level="quick", exitfirst=True)
    assert [(x.id, x.status) for x in r.results] == [("construction", "pass"), ("forward", "pass"), ("loss", "pass"),
                                                     ("gradients", "fail")]
    where = r.diagnosis.where
    assert (where.part, where.step, sorted(where.arrays)) == ("gradient", 0, ["W0", "b0"])
    assert r.diagnosis.lines()[1].startswith("likely cause: only the last layer is updated -- ")


def test_correct_copy_passes_the_full_battery(tmp_path, capsys):
    """The NumPy implementation the mutants are made from passes every check of the full battery, skipping none."""
    code = main(["verify", "tests/mutants/numpy_mutants.py:NumpyMLP", "--out", str(tmp_path), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"{len(CHECKS)} passed, 0 failed, 0 skipped" in out
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["level"] == "full" and report["passed"] and report["diagnosis"] is None
    assert report["conventions"]["adam"]["form"] == "optax" and report["conventions"]["bce"]["form"] == "logits"
    assert (tmp_path / "report.md").read_text().startswith("# verify: tests/mutants/numpy_mutants.py:NumpyMLP")


def test_failing_implementation_exits_1_with_the_diagnosis(tmp_path, capsys):
    code = main(["verify", "tests/mutants/numpy_mutants.py:AdamEpsInSqrt", "--quick", "--out", str(tmp_path),
                 "--quiet"])
    out = capsys.readouterr().out
    assert code == 1
    assert "update_adam         FAIL" in out
    assert "first failure: update_adam: the update of" in out and "at step 1" in out
    assert "likely cause: Adam's ε inside the square root -- " in out
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["diagnosis"]["cause"]["id"] == "adam-eps-in-sqrt"
    assert report["diagnosis"]["where"]["part"] == "update" and report["diagnosis"]["where"]["step"] == 1


@pytest.mark.parametrize("argv, message", [
    (["verify"], "verify needs TARGET or --cmd COMMAND"),
    (["verify", "numpy", "--checks", "forward,nope"], "unknown check 'nope'"),
    (["verify", "numpy", "--dtype", "float16"], "unknown dtype 'float16'"),
    (["verify", "jax-nope"], "unknown implementation 'jax-nope'"),
])
def test_bad_input_exits_2(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_declared_supports_are_checked_and_honoured():
    class Partial(NumpyMLP):
        supports = {"optimizers": ["sgd"], "dtypes": ("float64",)}

    r = verify(Partial, level="quick", ids=["update_sgd", "update_adam", "float32"])
    assert [(x.id, x.status) for x in r.results] == [("update_sgd", "pass"), ("update_adam", "skip"),
                                                     ("float32", "skip")]
    assert r.results[1].verdict == "unsupported: adam is not among its declared optimizers"
    assert r.passed

    class Wrong(NumpyMLP):
        supports = {"optimisers": ["sgd"]}

    with pytest.raises(BadTarget, match="unknown key 'optimisers' in supports"):
        Battery(Wrong)


def test_conventions_are_detected_not_declared():
    """A class that declares nothing: the Adam, momentum and BCE forms are found from what it computes."""
    class Undeclared(NumpyMLP):
        conventions = None

    r = verify(Undeclared, level="quick", ids=["loss_bce", "update_momentum", "update_adam"])
    assert r.passed
    assert {op: d["form"] for op, d in r.conventions.items()} == {"bce": "logits", "momentum": "torch",
                                                                  "adam": "torch"}
    assert r.conventions["adam"]["consistent"] == ["torch", "optax"]  # the same maths, rounded in another order


# the pytest entry point used as a user would: the checks this mutant fails are strict expected failures
@parametrize_with_checks([LrTwice], expected_failed_checks={
    "update_momentum": "lr in the velocity and again in the step", "minibatch_order": "runs with momentum"})
def test_expected_failed_checks(impl, check):
    check(impl)


def test_ids_are_stable():
    mark = parametrize_with_checks(["numpy"], expected_failed_checks={"float32": "why"})
    params = mark.args[1]
    assert [p.id for p in params] == [f"numpy-{c}" for c in CHECKS]
    assert [m.name for p in params for m in p.marks if m.name == "xfail"] == ["xfail"]
    with pytest.raises(ValueError, match="unknown check 'float16'"):
        parametrize_with_checks(["numpy"], expected_failed_checks={"float16": "typo"})


def _readme_block(marker: str) -> str:
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    return text.split(marker, 1)[1].split("```", 2)[1].split("\n", 1)[1]


def test_readme_example(tmp_path, monkeypatch, capsys):
    """README, "Verify your own implementation": its code, run by its command, prints its scorecard."""
    (tmp_path / "my_mlp.py").write_text(_readme_block("<!-- verify-example: my_mlp.py"))
    monkeypatch.chdir(tmp_path)
    assert main(["verify", "my_mlp.py:MyMLP", "--out", "out", "--quiet"]) == 0
    out = capsys.readouterr().out.splitlines()
    shown = _readme_block("<!-- verify-scorecard -->").splitlines()

    def rows(lines):  # (check, result) of each scorecard row, and the lines after the table but the timing
        table = [tuple(line.split()[:2]) for line in lines if line.split() and line.split()[0] in CHECKS]
        return table, [line for line in lines if line.startswith("conventions")] + \
            [line.split(" in ")[0] for line in lines if " passed, " in line]
    assert rows(out) == rows(shown) and len(rows(out)[0]) == len(CHECKS)
    assert out[0] == shown[0]
