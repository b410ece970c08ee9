"""results/maths.md: current with the code, every worked number reproduced when the file runs as a doctest, every
worked example judged against the reference, and every form an implementation uses documented, naming it."""
from __future__ import annotations

import dataclasses
import doctest
from pathlib import Path

import pytest

from conftest import IMPLS, load_or_skip
from xor_rosetta import registry
from xor_rosetta.app.docs import maths

MATHS = Path(__file__).resolve().parent.parent / "results" / "maths.md"
REGENERATE = "regenerate it with `xor-rosetta guide` (run in the checkout) and commit it"


class NumberChecker(doctest.OutputChecker):
    """doctest's comparison, except that numbers may differ in their last printed digit (another CPU's rounding)."""

    def check_output(self, want, got, optionflags):
        return maths.numbers_match(want, got) or super().check_output(want, got, optionflags)


def run_doctest(text: str, name: str = "maths.md") -> tuple[int, int, str]:
    test = doctest.DocTestParser().get_doctest(text, {}, name, str(MATHS), 0)
    runner = doctest.DocTestRunner(checker=NumberChecker(), optionflags=doctest.ELLIPSIS)
    report = []
    runner.run(test, out=report.append, clear_globs=True)
    return runner.failures, runner.tries, "".join(report)


def test_committed_maths_is_current():
    assert MATHS.is_file(), f"results/maths.md is missing: {REGENERATE}"
    where = maths.first_difference(MATHS.read_text(encoding="utf-8"), maths.render())
    assert where is None, f"results/maths.md differs from what the code renders now ({where}): {REGENERATE}"


def test_committed_maths_runs_as_a_doctest():
    failures, tries, report = run_doctest(MATHS.read_text(encoding="utf-8"))
    assert tries > 50 and failures == 0, report


def test_every_worked_example_agrees_with_the_reference():
    text = MATHS.read_text(encoding="utf-8")
    verdicts = text.count(">>> against_reference(")
    assert verdicts >= len(maths.FORMS) + 2 and text.count("\n'agrees'\n") == verdicts


def test_a_wrong_equation_is_caught(monkeypatch):
    """The checks can fail: torch's Adam with epsilon under the square root disagrees with the reference, both when
    the document is rendered and when the committed file is edited and run."""
    right, wrong = "np.sqrt(vi) / np.sqrt(1 - b2 ** t) + eps", "np.sqrt(vi / (1 - b2 ** t) + eps)"
    i = next(k for k, f in enumerate(maths.FORMS) if (f.field, f.value) == ("adam", "torch"))
    assert right in maths.FORMS[i].code
    forms = list(maths.FORMS)
    forms[i] = dataclasses.replace(forms[i], code=forms[i].code.replace(right, wrong))
    monkeypatch.setattr(maths, "FORMS", forms)
    assert "'DISAGREES'" in maths.render()
    text = MATHS.read_text(encoding="utf-8")
    assert text.count(right) == 1
    failures, _, report = run_doctest(text.replace(right, wrong))
    assert failures >= 1 and "DISAGREES" in report


def test_a_drifted_number_fails_the_doctest():
    text = MATHS.read_text(encoding="utf-8")
    assert "0.44766286" in text  # seed-numpy's initial loss
    failures, _, report = run_doctest(text.replace("0.44766286", "0.44766296", 1))
    assert failures == 1 and "0.44766296" in report


@pytest.mark.parametrize("want, got, same", [
    ("[0.12345678 -1.5]", "[0.12345678 -1.5]", True),
    ("[0.12345678 -1.5]", "[0.12345679 -1.5]", True),  # last digit: rounding on another CPU
    ("[0.12345678 -1.5]", "[0.12345680 -1.5]", False),
    ("1.454742e-06", "1.4547421e-06", True),
    ("1.454742e-06", "1.4547435e-06", False),
    ("0", "1e-17", False),
    ("'agrees'", "'DISAGREES'", False),
    ("[1 2]", "[1 2 3]", False),
])
def test_numbers_match(want, got, same):
    assert maths.numbers_match(want, got) is same


@pytest.mark.parametrize("name", IMPLS)
def test_every_form_an_implementation_uses_is_documented(name):
    conventions = load_or_skip(name).conventions
    documented = {(f.field, f.value) for f in maths.FORMS}
    for fld in dataclasses.fields(conventions):
        value = getattr(conventions, fld.name)
        assert (fld.name, value) in documented, \
            f"{name} uses {fld.name}={value!r}, which results/maths.md does not write out: add a Form to " \
            f"xor_rosetta.app.docs.maths.FORMS (and a Field entry for a new field), then run `xor-rosetta guide`"
    if not registry.get_entry(name).builtin:
        return
    for f in maths.FORMS:  # a built-in implementation is named in the `used by` text of its forms, and only there
        uses, named = getattr(conventions, f.field) == f.value, f"`{name}`" in f.used_by
        assert uses == named, \
            f"the `used by` text of {f.field}={f.value!r} in xor_rosetta.app.docs.maths.FORMS " \
            f"{'does not name' if uses else 'names'} {name}, which {'uses' if uses else 'does not use'} it: " \
            f"fix it, then run `xor-rosetta guide`"
