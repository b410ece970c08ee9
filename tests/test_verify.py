"""`xor-rosetta verify`: every built-in passes the battery; every mutant (one classic mistake each) is diagnosed as
exactly that mistake; the scorecard, reports and exit statuses; the pytest entry point."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mutants.numpy_mutants import (MUTANTS, TOGETHER, AdamEpsInSqrt, BCEFromProbabilities, Float32Tanh, LrTwice,
                                   NumpyMLP, WrongSign)
from mutants.seed_listing import SeedListingMLP
from xor_rosetta import registry
from xor_rosetta.app.cli import main
from xor_rosetta.checks.diagnose import CATALOGUE
from xor_rosetta.checks.testing import parametrize_with_checks
from xor_rosetta.checks import CHECKS, BadTarget, Battery, verify


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


@pytest.mark.parametrize("cls", TOGETHER, ids=lambda c: c.__name__)
def test_two_mistakes_together_are_diagnosed(cls):
    """No single mistake explains it; the pair does, and the diagnosis names both, together."""
    d = verify(cls, level="quick", exitfirst=True).diagnosis
    assert d.together and tuple(c.id for c, _ in d.causes) == TOGETHER[cls], "\n".join(d.lines())
    assert d.lines()[1].startswith("likely cause: two mistakes together: ")
    assert d.to_dict()["together"] == list(TOGETHER[cls])


def test_a_form_that_agrees_alone_is_no_evidence_for_a_mistake():
    """BCE's loss from the probabilities, its gradient from the logits: the probs form agrees on the loss with no
    mistake in it, so no update mistake may claim the failure; the closest form is the one that gets furthest
    (the loss agrees, the gradients do not), not the smallest ratio of measures of different kinds."""
    r = verify(BCEFromProbabilities, level="quick", ids=["loss_bce"])
    assert r.results[0].data["closest"] == "probs"
    assert [c.id for c, _ in r.diagnosis.causes] == ["mixed-forms"], "\n".join(r.diagnosis.lines())
    assert "probs form of bce only" in r.diagnosis.causes[0][1] and "logits" in r.diagnosis.causes[0][1]


def test_evidence_quotes_the_measure_that_failed():
    """Adam's ε inside the root fails on the params after step 1: the evidence quotes those arrays there."""
    d = verify(AdamEpsInSqrt, level="quick", ids=["update_adam"]).diagnosis
    assert d.where.part == "update" and d.where.arrays
    evidence = d.causes[0][1]
    assert f"{', '.join(d.where.arrays)} after step {d.where.step} differ by " in evidence, evidence
    assert "loss" not in evidence


def test_no_conventions_line_when_construction_raises(tmp_path, capsys):
    class Raises(NumpyMLP):
        conventions = None

        def __init__(self, spec, params):
            raise RuntimeError("no")

    r = verify(Raises, level="quick", ids=["update_adam", "update_momentum", "loss_bce"])
    assert not r.passed and r.diagnosis is not None
    text = "\n".join(r.lines())
    assert "conventions detected" not in text and "conventions detected" not in r.markdown()
    assert "construction raised RuntimeError: no" in text


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
    assert report["conventions"]["adam"]["form"] == "textbook" and report["conventions"]["bce"]["form"] == "logits"
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
    assert r.conventions["adam"]["consistent"] == ["torch", "optax", "textbook"]  # the same maths, rounded otherwise


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
    text = (Path(__file__).resolve().parents[1] / "docs" / "verify.md").read_text()
    return text.split(marker, 1)[1].split("```", 2)[1].split("\n", 1)[1]


def test_readme_example(tmp_path, monkeypatch, capsys):
    """docs/verify.md, "Verify your own implementation": its code, run by its command, prints its scorecard."""
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


# ---------------------------------------------------------------------------------------------- known differences

WHY = "Float32Tanh: tanh in float32 inside a float64 run, on purpose"


class DeclaredFloat32(Float32Tanh):  # the float32 mutant, declaring it: Keras' case on JAX, in NumPy
    known_differences = {"float64": WHY}


class DeclaredButWrongSign(WrongSign):  # declares the same, and has another mistake
    known_differences = {"float64": WHY}


KNOWN_IDS = ["construction", "forward", "update_sgd", "determinism", "float32"]


def test_a_declared_difference_is_judged_under_its_model():
    """Declared, the float32 arithmetic passes under its model, and the verdicts name it; undeclared, the same
    class fails and is diagnosed as float32 arithmetic; with strict, the declared one fails too."""
    r = verify(DeclaredFloat32, level="quick", ids=KNOWN_IDS)
    assert [(x.id, x.status, x.modelled) for x in r.results] == [
        ("construction", "pass", None), ("forward", "pass", WHY), ("update_sgd", "pass", WHY),
        ("determinism", "pass", None), ("float32", "pass", None)]
    assert r.passed and r.diagnosis is None and r.counts()["modelled"] == 2
    assert r.results[1].verdict.endswith("(float32 inside: Float32Tanh)")
    text = "\n".join(r.lines())
    assert f"known difference, modelled (float32 inside: Float32Tanh): {WHY}" in text
    assert "5 passed (2 under the known difference's model), 0 failed, 0 skipped" in text
    d = r.to_dict()
    assert d["known_difference_modelled"] and d["checks"][1]["modelled_difference"] == WHY
    undeclared = verify(Float32Tanh, level="quick", ids=KNOWN_IDS)
    assert [x.status for x in undeclared.results] == ["pass", "fail", "fail", "pass", "pass"]
    assert undeclared.diagnosis.cause.id == "float32"
    strict = verify(DeclaredFloat32, level="quick", ids=KNOWN_IDS, strict=True)
    assert [x.status for x in strict.results] == ["pass", "fail", "fail", "pass", "pass"]
    assert strict.diagnosis.cause.id == "float32" and "judged strictly" in "\n".join(strict.lines())


def test_another_cause_is_a_failure_under_the_model_too():
    """A class that declares a known difference and fails by another cause: a failure, diagnosed as that cause."""
    r = verify(DeclaredButWrongSign, level="quick", ids=["forward", "update_sgd"], exitfirst=True)
    assert [(x.id, x.status) for x in r.results] == [("forward", "pass"), ("update_sgd", "fail")]
    assert r.diagnosis.cause.id == "wrong-sign"
    assert r.diagnosis.lines()[0].startswith("first failure: update_sgd")


def test_cli_reports_the_modelled_difference(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(registry, "RUNTIME", {})
    registry.register("declared-float32", DeclaredFloat32, "test class")
    args = ["verify", "declared-float32", "--quick", "--checks", "forward,update_sgd,determinism", "--quiet"]
    code = main([*args, "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert re.search(r"^forward +pass .*\(float32 inside: Float32Tanh\)", out, re.M)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["counts"] == {"pass": 3, "fail": 0, "skip": 0, "modelled": 2} and report["diagnosis"] is None
    assert "## Known difference" in (tmp_path / "report.md").read_text()
    assert main([*args, "--strict", "--out", str(tmp_path / "strict")]) == 1
    assert "judged strictly" in capsys.readouterr().out


@parametrize_with_checks([DeclaredFloat32], checks=KNOWN_IDS)  # passes: its difference is modelled
def test_declared_difference_passes_the_pytest_checks(impl, check):
    check(impl)


@parametrize_with_checks([DeclaredFloat32], checks=["forward", "update_sgd"], strict=True,
                         expected_failed_checks={"forward": "strict", "update_sgd": "strict"})
def test_declared_difference_fails_the_strict_pytest_checks(impl, check):
    check(impl)
