"""The judge (`xor_rosetta.compare.judge`) and its measures at their boundaries: gradients, each step's loss and the
params at each checkpoint, each just inside and just outside the policy's bound, the rounding floor measured only
when needed, and the first finding of the worst status named."""
from __future__ import annotations

import math

import numpy as np
import pytest

from xor_rosetta.compare import accuracy, judge, max_abs, max_abs_diff, max_rel_diff
from xor_rosetta.reference import Floor
from xor_rosetta.tolerance import AGREES, DISAGREES, ILL, NOISE, NOISE_FACTOR, tolerance

TOL = tolerance("float64")
INSIDE, OUTSIDE = 0.9, 1.1


def P(w, b=0.0, w2=-4.0):
    """Params of two layers; the largest |value| is |w2| (4) unless w or b is larger."""
    return [(np.array([[w, 0.5]]), np.array([b, 0.0])), (np.array([[w2], [1.0]]), np.array([0.25]))]


def test_measures():
    empty = [(np.zeros((1, 0)), np.zeros(0))]
    assert max_abs(P(1.0)) == 4.0 and max_abs(empty) == 0.0 and max_abs_diff(empty, empty) == 0.0
    assert max_abs_diff(P(1.0), P(1.5, b=-0.25)) == 0.5
    assert math.isnan(max_abs_diff(P(1.0), P(math.nan)))
    assert max_rel_diff(P(1.0), P(1.5)) == 0.5 / 4.0
    zero = [(np.zeros((1, 2)), np.zeros(2))]
    assert max_rel_diff([(np.full((1, 2), 0.5), np.zeros(2))], zero) == 0.5  # against 1 where the reference is 0


def test_accuracy_is_the_side_of_one_half():
    y = np.array([[0.0], [1.0], [1.0], [0.0]])
    assert accuracy(np.array([[0.1], [0.9], [0.6], [0.4]]), y) == 1.0
    assert accuracy(np.array([[0.5], [0.9], [0.9], [0.1]]), y) == 1.0  # 0.5 is not above one half: class 0
    assert accuracy(np.array([[0.1], [0.5], [0.9], [0.1]]), y) == 0.75
    assert accuracy(np.array([[np.nextafter(0.5, 1)], [0.4], [0.9], [0.1]]), y) == 0.5


def run(loss2=0.5, w=1.0, grad=1.0, floor=None, checkpoints=(1, 2), grads=True):
    """A two-step run judged against the reference's: losses [2.0, 0.5], params P(1.0) at steps 1 and 2,
    gradients P(1.0) (largest 4)."""
    ref_loss, ref_params = np.array([2.0, 0.5]), {1: P(1.0), 2: P(1.0)}
    return judge("float64", checkpoints, P(grad) if grads else None, P(1.0) if grads else None,
                 np.array([2.0, loss2]), ref_loss, {1: P(1.0), 2: P(w)}, ref_params, floor)


def never():
    raise AssertionError("the floor was measured although everything agrees")


def test_an_identical_run_agrees_without_measuring_the_floor():
    j = run(floor=never)
    assert (j.status, j.first, j.findings, j.floor_measured) == (AGREES, None, [], False)
    assert j.verdict == "agrees" and j.explanation is None


@pytest.mark.parametrize("factor, status", [(INSIDE, AGREES), (OUTSIDE, DISAGREES)])
def test_loss_against_the_largest_reference_loss_so_far(factor, status):
    j = run(loss2=0.5 + factor * TOL.loss * 2.0)
    assert j.status == status
    if status == DISAGREES:
        f = j.first
        assert (f.what, f.step, f.allowed, f.got, f.want) == ("loss", 2, TOL.loss * 2.0, 0.5 + factor * TOL.loss * 2.0,
                                                               0.5)
        assert f.diff == pytest.approx(factor * TOL.loss * 2.0, rel=1e-3, abs=0) and f.floor is None
        assert j.verdict == "DISAGREES"
        assert j.explanation == (f"at step 2: loss differs by {f.diff:.2g} (0.5 vs the reference's 0.5) "
                                 f"(allowed {TOL.loss * 2.0:.2g})")


@pytest.mark.parametrize("factor, status", [(INSIDE, AGREES), (OUTSIDE, DISAGREES)])
def test_params_against_their_largest_value(factor, status):
    j = run(w=1.0 + factor * TOL.params * 4.0)
    assert j.status == status
    if status == DISAGREES:
        assert (j.first.what, j.first.step, j.first.allowed) == ("params", 2, TOL.params * 4.0)
        assert j.explanation == f"at step 2: {j.first.words()}" and j.first.words() == (
            f"params differ by {j.first.diff:.2g} (allowed {TOL.params * 4.0:.2g})")


@pytest.mark.parametrize("factor, status", [(INSIDE, AGREES), (OUTSIDE, DISAGREES)])
def test_gradients_against_their_largest_value(factor, status):
    j = run(grad=1.0 + factor * TOL.gradient * 4.0)
    assert j.status == status
    if status == DISAGREES:
        assert (j.first.what, j.first.step, j.first.allowed) == ("gradients", 0, TOL.gradient * 4.0)
        assert j.first.diff == pytest.approx(factor * TOL.gradient * 4.0, rel=1e-3, abs=0)
        assert j.explanation == (f"at the initial weights: gradients differ by {j.first.diff:.2g} "
                                 f"(allowed {TOL.gradient * 4.0:.2g})")
    assert run(grad=5.0, grads=False).status == AGREES  # no gradients given: none judged


def floor_of(loss=0.0, params=0.0, gradient=0.0):
    return lambda: Floor(gradient=gradient, params={1: params, 2: params}, loss=np.array([loss, loss]))


@pytest.mark.parametrize("factor, status", [(INSIDE, NOISE), (OUTSIDE, DISAGREES)])
def test_a_measured_floor_excuses_up_to_its_factor(factor, status):
    """Over the bound, each kind is held to NOISE_FACTOR x its floor (floors under the bound: noise)."""
    small = 0.5 * TOL.loss * 2.0  # a floor under the loss's bound at step 2 (and the others')
    d = factor * NOISE_FACTOR * small
    for kw, fl in (({"loss2": 0.5 + d}, floor_of(loss=small)), ({"w": 1.0 + d}, floor_of(params=small)),
                   ({"grad": 1.0 + d}, floor_of(gradient=small))):
        j = run(**kw, floor=fl)
        assert j.status == status and j.floor_measured, kw
        if status == NOISE:
            assert j.verdict == f"agrees within rounding noise (floor {small:.2g})"
            assert j.first.floor == small and f"rounding floor {small:.2g}" in j.first.words()


def test_a_floor_over_the_bound_is_ill_conditioned():
    big = 2 * TOL.params * 4.0
    j = run(w=1.0 + 3 * big, floor=floor_of(params=big))
    assert j.status == ILL and j.first.what == "params"
    assert j.verdict == f"ill-conditioned: rounding alone moves the params by {big:.2g}"
    assert j.first.words().startswith(f"ill-conditioned: one rounding per step already moves the params by {big:.2g}")
    assert f"within {NOISE_FACTOR:g}x that" in j.first.words()


def test_the_first_finding_is_the_earliest_of_the_worst_status():
    """Loss at step 2 and params at step 2 both disagree: the loss is named first; the gradients (step 0) only
    when they are as bad."""
    j = run(loss2=0.6, w=1.5)
    assert j.status == DISAGREES and [f.what for f in j.findings] == ["loss", "params"]
    assert (j.first.what, j.first.step) == ("loss", 2)
    small = TOL.gradient * 4.0
    j = run(loss2=0.6, grad=1.0 + 2 * small, floor=floor_of(gradient=small))
    assert [f.what for f in j.findings] == ["gradients", "loss"] and j.first.what == "loss"  # noise < disagree
    j = run(grad=1.5, w=1.5)
    assert j.first.what == "gradients"


def test_the_worst_loss_step_is_the_first_of_its_status():
    ref = np.array([1.0, 1.0, 1.0, 1.0])
    j = judge("float64", [], None, None, np.array([1.0, 1.5, 1.0, 1.9]), ref, {}, {})
    assert (j.first.what, j.first.step, j.first.diff) == ("loss", 2, 0.5)


def test_only_checkpoints_in_both_runs_are_judged():
    j = judge("float64", [1, 2, 3], None, None, np.zeros(0), np.zeros(0), {1: P(1.0), 3: P(9.0)},
              {1: P(1.0), 2: P(1.0)})
    assert j.status == AGREES
    j = judge("float64", [2, 1], None, None, np.zeros(0), np.zeros(0), {1: P(1.0), 2: P(2.0)},
              {1: P(1.0), 2: P(1.0)})
    assert (j.first.step, j.first.diff) == (2, 1.0)
    # no losses (the batched sweep judges params only), with a floor: measured, since the params disagree
    j = judge("float64", [1, 2], None, None, np.empty(0), np.empty(0), {1: P(1.0), 2: P(2.0)},
              {1: P(1.0), 2: P(1.0)}, lambda: Floor(params={1: 0.5, 2: 0.5}, loss=np.empty(0)))
    assert j.floor_measured and (j.status, j.first.step) == (ILL, 2)


def test_float32_runs_are_judged_by_float32_tolerances():
    t32 = tolerance("float32")
    ref_loss, p = np.array([2.0, 0.5]), {1: P(1.0)}
    for factor, status in ((INSIDE, AGREES), (OUTSIDE, DISAGREES)):
        j = judge("float32", [1], None, None, np.array([2.0, 0.5 + factor * t32.loss * 2.0]), ref_loss, p, p)
        assert j.status == status
