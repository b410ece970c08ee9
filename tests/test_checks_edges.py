"""The conformance kit at the edges a refactor can slip on: continuation is bit for bit (one ulp apart fails, as
does a run rounded through float32 at each train() call), convention detection names the best agreeing form and
not the first one tried, and a hypothesis of the diagnosis is judged in the best of the reference's forms."""
from __future__ import annotations

import numpy as np
import pytest

from mutants.numpy_mutants import NumpyMLP, OneUlpPerCall
from xor_rosetta.checks import verify
from xor_rosetta.checks.diagnose import Bug, Variant
from xor_rosetta.interface import Conventions
from xor_rosetta.reference import FORMS, Reference


class Float32PerCall(NumpyMLP):
    """Rounds its weights through float32 at the start of each train() call (a target that keeps them in float32
    between calls): differences of about 1e-8, far under any loose threshold such as 1e-6."""

    def train(self, x, y, steps=None, checkpoints=()):
        for a in self.Ws + self.bs:
            a[...] = a.astype(np.float32).astype(a.dtype)
        return super().train(x, y, steps, checkpoints)


def test_continuation_passes_bit_identical_runs():
    (r,) = verify(NumpyMLP, level="quick", ids=["continuation"]).results
    assert r.status == "pass" and r.verdict == "bit-identical"


@pytest.mark.parametrize("cls", [OneUlpPerCall, Float32PerCall])
def test_continuation_fails_at_the_smallest_difference(cls):
    """The contract is bit for bit: no difference, however small, is forgiven; the diagnosis says where."""
    rep = verify(cls, level="quick", ids=["continuation"])
    (r,) = rep.results
    assert r.status == "fail", r.verdict
    assert 0 < r.diff < 1e-6 and r.allowed == 0.0
    assert r.where.part == "update" and r.where.step >= 1


@pytest.mark.parametrize("form", ["optax", "textbook"])
def test_detection_names_the_best_agreeing_form_not_the_first(form):
    """An undeclared factory computing exactly the reference's optax (or textbook) Adam: torch's form, tried first,
    agrees too (the same maths, rounded otherwise) but less closely; the form detected is its own."""
    def factory(spec, params):
        return Reference(spec, params, Conventions(adam=form))

    rep = verify(factory, level="quick", ids=["update_adam"])
    d = rep.conventions["adam"]
    assert rep.passed and d["declared"] is None
    assert d["consistent"][0] == FORMS["adam"][0] != form and form in d["consistent"]
    assert d["form"] == form, d["verdicts"]


@pytest.mark.parametrize("form, bug, cause", [("keras-jax", Bug(scale=("m", "m")), "loss-summed"),
                                              ("logits", Bug(layout=True), "transposed-weights")],
                         ids=["keras-jax-loss-summed", "logits-transposed"])
def test_a_hypothesis_is_judged_in_the_best_form_when_no_form_was_detected(form, bug, cause):
    """A BCE form with one mistake, declared nowhere: the BCE detection finds no form, and the closest is another
    (probs), in which the right hypothesis disagrees; judged in every form, it agrees in its own and is named."""
    def factory(spec, params):
        return Variant(spec, params, Conventions(bce=form), bug)

    rep = verify(factory, level="quick", ids=["loss_bce"])
    (r,) = rep.results
    assert r.status == "fail" and r.data["form"] is None and r.data["closest"] != form
    assert [c.id for c, _ in rep.diagnosis.causes] == [cause], "\n".join(rep.diagnosis.lines())
