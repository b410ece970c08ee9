"""How a training run is judged and reported (`xor_rosetta.checks.judging._train_part`), on hand-made records: the
closest call of a run that agrees (the largest |Δ| relative to its tolerance, ties to the larger tolerance), and the
first disagreement of one that does not (the params before the loss at the same step, the arrays over tolerance
there, whether the loss is off too, and the floor measured). Every |Δ| is a power of two, so each ratio is exact."""
from __future__ import annotations

import numpy as np
import pytest

from xor_rosetta.checks.judging import Where, _train_part
from xor_rosetta.checks.scripts import Record
from xor_rosetta.reference import Floor
from xor_rosetta.tolerance import AGREES, DISAGREES, tolerance

TOL = tolerance("float64")  # the policy's relative tolerances: allowed = rtol * the reference's scale
P = [(np.array([[1.0, -2.0], [0.5, 4.0]]), np.array([0.25, -0.5])), (np.array([[1.0], [2.0]]), np.array([-1.0]))]


def params(**moves):
    """P with the named arrays (W0, b0, W1, b1) moved by the amounts given at their first entry."""
    out = [(W.copy(), b.copy()) for W, b in P]
    for name, by in moves.items():
        out[int(name[1])][name[0] == "b"].flat[0] += by
    return out


def judged(got: Record, want: Record, ks, floor: Floor | None = None) -> list[tuple]:
    """What _train_part reports: the arguments of each add(status, diff, allowed, floor, words, where)."""
    added = []
    _train_part(got, want, "float64", ks, lambda *a: added.append(a), lambda: floor)
    return added


def test_an_agreeing_run_reports_its_largest_difference_relative_to_its_tolerance():
    """Loss steps 2 and 3 at 0.45 and 0.91 of theirs, the params after update 2 at 0.11 of theirs but the largest
    |Δ|, and step 1 at 0 of a tolerance of 0 (the reference's loss is 0 there): step 3's loss is the closest call."""
    want = Record(loss=np.array([0.0, 0.5, 0.25]), checkpoints={2: P})
    got = Record(loss=np.array([0.0, 0.5 + 2.0 ** -43, 0.25 + 2.0 ** -42]), checkpoints={2: params(W0=2.0 ** -41)})
    allowed = TOL.loss * 0.5  # the running max of the reference's loss at step 3
    assert 2.0 ** -42 / allowed > 2.0 ** -41 / (TOL.params * 4.0)  # the premise: the loss is closer to its limit
    assert judged(got, want, (2,)) == [
        (AGREES, 2.0 ** -42, allowed, None, f"loss differs by {2.0 ** -42:.2g} (allowed {allowed:.2g})", None)]


def test_an_agreeing_runs_tie_goes_to_the_larger_tolerance():
    """The loss at 2**-41 of 5e-13 * 4 and the params at 2**-42 of 5e-13 * 2: the same ratio, exactly; the loss's
    tolerance is the larger, so the loss is reported."""
    want = Record(loss=np.array([4.0]), checkpoints={1: [(np.array([[2.0]]), np.array([0.0]))]})
    got = Record(loss=np.array([4.0 + 2.0 ** -41]), checkpoints={1: [(np.array([[2.0 + 2.0 ** -42]]),
                                                                      np.array([0.0]))]})
    assert 2.0 ** -41 / (TOL.loss * 4.0) == 2.0 ** -42 / (TOL.params * 2.0)  # the premise: a tie
    assert judged(got, want, (1,)) == [
        (AGREES, 2.0 ** -41, TOL.loss * 4.0, None, f"loss differs by {2.0 ** -41:.2g} (allowed {TOL.loss * 4.0:.2g})",
         None)]


def test_a_run_with_nothing_to_compare_reports_params_differing_by_zero():
    assert judged(Record(), Record(), ()) == [(AGREES, 0.0, 0.0, None, "params differ by 0 (allowed 0)", None)]


def test_a_disagreement_reports_the_params_before_the_loss_of_the_same_step():
    """Update 2 moves b0 by 0.5 (W1 by 2**-40, under its 5e-13 * 4) and step 2's loss is off by 0.25: the params
    are the finding, with the floor measured (0 here), the arrays over tolerance (b0 alone), and the loss off too."""
    want = Record(loss=np.array([0.5, 0.5]), checkpoints={1: P, 2: P})
    got = Record(loss=np.array([0.5, 0.75]), checkpoints={1: P, 2: params(b0=0.5, W1=2.0 ** -40)})
    allowed = TOL.params * 4.0
    floor = Floor(params={1: 0.0, 2: 0.0}, loss=np.zeros(2))
    assert judged(got, want, (1, 2), floor) == [
        (DISAGREES, 0.5, allowed, 0.0, f"params differ by 0.5 (allowed {allowed:.2g}, rounding floor 0)",
         Where("update", 2, ["b0"], True))]


def test_a_disagreement_at_a_step_without_the_references_params_names_no_array():
    """Step 3's loss is off, and only the run (not the reference) saved params there: no array is named."""
    want = Record(loss=np.array([0.5, 0.5, 0.5]), checkpoints={1: P, 2: P})
    got = Record(loss=np.array([0.5, 0.5, 1.0]), checkpoints={1: P, 2: P, 3: params(W0=1.0)})
    floor = Floor(params={1: 0.0, 2: 0.0}, loss=np.zeros(3))
    allowed = TOL.loss * 0.5
    assert judged(got, want, (1, 2), floor) == [
        (DISAGREES, 0.5, allowed, 0.0,
         f"loss differs by 0.5 (1 vs the reference's 0.5) (allowed {allowed:.2g}, rounding floor 0)",
         Where("update", 3, [], True))]


@pytest.mark.parametrize("moved, where", [
    ({"W0": 0.5}, Where("update", 1, ["W0"], False)),  # the params alone
    ({"W0": 0.5, "b1": -0.75}, Where("update", 1, ["b1", "W0"], False)),  # worst first
])
def test_a_disagreement_in_the_params_alone(moved, where):
    want = Record(loss=np.array([0.5]), checkpoints={1: P})
    got = Record(loss=np.array([0.5]), checkpoints={1: params(**moved)})
    (added,) = judged(got, want, (1,), Floor(params={1: 0.0}, loss=np.zeros(1)))
    assert added[0] == DISAGREES and added[5] == where
