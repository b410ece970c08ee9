"""The golden files' drift judgement (`xor_rosetta.app.run.golden.drift`) at its boundaries: a difference just inside
the tolerance policy's bound holds and one just outside it is reported, for the loss and the params, with the scale
each is judged against and the rounding floor that excuses noise."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from xor_rosetta.app.run.golden import Case, drift
from xor_rosetta.tolerance import NOISE_FACTOR, tolerance

CASE = Case("seed-numpy", "numpy", "float64")
TOL = tolerance(CASE.dtype)
INSIDE, OUTSIDE = 0.9, 1.1  # of the bound: just inside and just outside it


def golden(loss10=0.5, w10=(0.25, -3.0), b10=(0.5,)):
    """Two checkpoints: the loss falls from 2.0 to `loss10`; at step 10 the largest |param| is 3.0 (in W0)."""
    return {"checkpoints": {
        "1": {"loss": 2.0, "params": {"W0": [[1.0, -1.5]], "b0": [0.5]}},
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
        assert len(lines) == 1 and lines[0].startswith(f"{CASE}: step 10 loss: expected 0.5")


@pytest.mark.parametrize("sign", [1, -1])
@pytest.mark.parametrize("factor, fails", [(INSIDE, False), (OUTSIDE, True)])
def test_params_are_judged_against_the_largest_param_at_that_step(factor, fails, sign):
    """b0 (0.5) is judged against 3.0, W0's largest |value| at step 10, in either direction."""
    got = golden(b10=(0.5 + sign * factor * TOL.params * 3.0,))
    lines = drift(CASE, golden(), got)
    assert bool(lines) == fails, lines
    if fails:
        assert len(lines) == 1 and lines[0].startswith(f"{CASE}: step 10 b0[0]: expected 0.5")


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
    """A rounding floor at the golden checkpoints 1 and 10 (as `golden.rounding_floor` measures it)."""
    return SimpleNamespace(loss=np.full(10, loss), params={1: params, 10: params})


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
    got = golden()
    got["checkpoints"]["10"]["params"]["W0"] = [[0.25], [-3.0]]
    assert drift(CASE, golden(), got) == [f"{CASE}: step 10 W0: expected shape (1, 2), got (2, 1)"]
    (line,) = drift(CASE, {"checkpoints": {"1": {"params": {}}}}, golden())
    assert line.startswith(f"{CASE}: golden file is malformed (KeyError('loss')")


def test_a_nan_is_a_disagreement():
    got = golden(loss10=float("nan"), b10=(float("nan"),))
    assert len(drift(CASE, golden(), got)) == 2
