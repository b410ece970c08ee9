"""`xor-rosetta verify`: every built-in passes the battery; every mutant (one classic mistake each) is diagnosed as
exactly that mistake; the scorecard, reports and exit statuses; the pytest entry point."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import IMPLS, load_or_skip
from mutants.numpy_mutants import (MUTANTS, TOGETHER, AdamEpsInSqrt, BCEFromProbabilities, Float32Tanh, LrTwice,
                                   NumpyMLP, WrongSign)
from mutants.seed_listing import SeedListingMLP
from xor_rosetta import registry
from xor_rosetta.app.cli import main
from xor_rosetta.checks.diagnose import CATALOGUE
from xor_rosetta.checks.testing import Check, KnownDifference, declared_known_differences, parametrize_with_checks
from xor_rosetta.checks import CHECKS, BadTarget, Battery, precision_checks, verify


# the quick battery, one test per implementation and check: numpy-forward, ...; keras-jax and keras-torch declare
# a float64 known difference (float32 inside), so their precision checks are strict xfails that pass only as that.
# The built-ins' own tests (tests/test_equivalence.py) cover them by default; these batteries, a second proof that
# verify passes a correct implementation, run for numpy and torch by default, for the others with -m slow.
QUICK_TIER = ("numpy", "torch")


@parametrize_with_checks(IMPLS, marks=lambda impl: () if impl in QUICK_TIER else [pytest.mark.slow])
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

WHY = "tanh in float32 inside a float64 run, on purpose"


class DeclaredFloat32(Float32Tanh):  # the float32 mutant, declaring it: Keras' case on JAX, in NumPy
    known_differences = {"float64": WHY}


class DeclaredButWrongSign(WrongSign):  # declares the same, and has another mistake
    known_differences = {"float64": WHY}


KNOWN_IDS = ["construction", "forward", "update_sgd", "determinism", "float32"]


def test_known_difference_is_reported_as_such():
    """The failures diagnosed as the declared cause are the known difference; they still fail."""
    r = verify(DeclaredFloat32, level="quick", ids=KNOWN_IDS)
    assert [(x.id, x.status, x.known) for x in r.results] == [
        ("construction", "pass", None), ("forward", "fail", WHY), ("update_sgd", "fail", WHY),
        ("determinism", "pass", None), ("float32", "pass", None)]
    assert not r.passed and r.diagnosis is None and r.counts()["known"] == 2
    text = "\n".join(r.lines())
    assert f"known difference: {WHY}" in text and "likely cause" not in text
    assert "each is diagnosed as float32 arithmetic inside a float64 run" in text
    assert "3 passed, 2 failed (2 by the known difference), 0 skipped" in text
    d = r.to_dict()
    assert d["known_difference"]["checks"] == ["forward", "update_sgd"] and d["known_difference"]["declared"] == WHY
    assert d["checks"][1]["known_difference"]["cause"] == "float32" and d["diagnosis"] is None
    assert verify(DeclaredFloat32, dtype="float32", level="quick", ids=["forward", "update_sgd"]).passed


def test_another_cause_is_a_normal_failure():
    """A class that declares a known difference and fails by another cause: a failure, diagnosed as that cause."""
    r = verify(DeclaredButWrongSign, level="quick", ids=["forward", "update_sgd"], exitfirst=True)
    assert [(x.id, x.status, x.known) for x in r.results] == [("forward", "pass", None), ("update_sgd", "fail", None)]
    assert r.diagnosis.cause.id == "wrong-sign" and r.counts()["known"] == 0
    assert r.diagnosis.lines()[0].startswith("first failure: update_sgd")


def test_cli_reports_the_known_difference(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(registry, "RUNTIME", {})
    registry.register("declared-float32", DeclaredFloat32, "test class")
    code = main(["verify", "declared-float32", "--quick", "--checks", "forward,update_sgd,determinism", "-x",
                 "--out", str(tmp_path), "--quiet"])
    out = capsys.readouterr().out
    assert code == 1, out  # it does disagree; -x does not stop at a known difference
    assert re.search(r"^forward +known ", out, re.M) and f"known difference: {WHY}" in out
    assert "1 passed, 2 failed (2 by the known difference), 0 skipped" in out
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["counts"] == {"pass": 1, "fail": 2, "skip": 0, "known": 2}
    assert report["known_difference"]["cause"]["id"] == "float32" and report["diagnosis"] is None
    assert "## Known difference" in (tmp_path / "report.md").read_text()


@parametrize_with_checks([DeclaredFloat32], checks=KNOWN_IDS)  # forward, update_sgd: strict xfails, by the rule
def test_known_difference_xfails(impl, check):
    check(impl)


def test_known_difference_marks():
    """The xfails: exactly the precision checks, strict, the declared text as the reason, and only a
    KnownDifference (another failure fails); a built-in's declaration is read from its source at collection."""
    for impl in (DeclaredFloat32, "keras-jax", "keras-torch"):
        why = declared_known_differences(impl)["float64"]
        marks = {p.values[1].id: [m for m in p.marks if m.name == "xfail"]
                 for p in parametrize_with_checks([impl]).args[1]}
        assert [c for c, m in marks.items() if m] == precision_checks()
        assert all(m[0].kwargs == {"reason": why, "strict": True, "raises": KnownDifference}
                   for m in marks.values() if m)
    assert not any(m.name == "xfail" for p in parametrize_with_checks(["numpy"]).args[1] for m in p.marks)
    assert declared_known_differences("numpy") == {}
    with pytest.raises(AssertionError) as e:  # another cause, in an expected failure: not a KnownDifference
        Check("update_sgd", known=WHY)(DeclaredButWrongSign)
    assert not isinstance(e.value, KnownDifference) and "wrong-sign" not in str(e.value)
    assert "the update climbs the gradient" in str(e.value)
    with pytest.raises(AssertionError, match="expected to fail by the known difference 'other'"):
        Check("forward", known="other")(DeclaredFloat32)  # what collection read must be what the class declares
