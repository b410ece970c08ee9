"""The tolerance policy's verdicts at their boundaries: a difference equal to the bound agrees and the next float
above it does not; the rounding floor's NOISE_FACTOR likewise; a floor equal to the bound is noise, above it
ill-conditioned; and the running maximum that scales a loss."""
from __future__ import annotations

import math

import numpy as np
import pytest

from xor_rosetta.tolerance import AGREES, DISAGREES, ILL, NOISE, NOISE_FACTOR, POLICY, classify, running_max, tolerance

ABOVE = lambda v: math.nextafter(v, math.inf)  # noqa: E731 - the next float above v


@pytest.mark.parametrize("floor", [None, 0.0])
def test_a_difference_equal_to_the_bound_agrees_and_the_next_float_above_does_not(floor):
    allowed = 3e-13
    assert classify(allowed, allowed, floor) == AGREES
    assert classify(0.0, allowed, floor) == AGREES
    assert classify(ABOVE(allowed), allowed, floor) == DISAGREES


def test_verdicts_are_the_status_codes():
    got = classify([0.0, 2.0, 5.0, 50.0], 1.0, [0.0, 0.5, 2.0, 0.5])
    assert got.tolist() == [AGREES, NOISE, ILL, DISAGREES]
    assert classify(0.5, 1.0).tolist() == AGREES and classify(2.0, 1.0).tolist() == DISAGREES
    assert classify([0.5, 2.0], 1.0).dtype.kind == "i"


def test_nan_disagrees_with_or_without_a_floor():
    assert classify(math.nan, 1.0) == DISAGREES
    assert classify(math.nan, 1.0, 1.0) == DISAGREES


def test_noise_up_to_the_factor_and_not_beyond():
    """Over the bound: within NOISE_FACTOR x the floor is noise, the next float above that is not."""
    allowed, floor = 1e-12, 1e-12
    edge = NOISE_FACTOR * floor
    assert classify(edge, allowed, floor) == NOISE
    assert classify(ABOVE(edge), allowed, floor) == DISAGREES


def test_a_floor_over_the_bound_is_ill_conditioned_and_one_at_the_bound_is_noise():
    allowed = 1e-12
    assert classify(2 * allowed, allowed, allowed) == NOISE
    assert classify(2 * allowed, allowed, ABOVE(allowed)) == ILL
    assert classify(allowed, allowed, 100 * allowed) == AGREES  # within the bound, whatever the floor


def test_a_float32_floor_is_scaled_in_float64():
    """NOISE_FACTOR x a float32 floor, rounded to float32, would fall below the float64 product."""
    floor = np.float32(0.1)
    edge = NOISE_FACTOR * float(floor)
    assert float(np.float32(NOISE_FACTOR * floor)) < edge  # where float32 arithmetic would move the edge
    assert classify(edge, 1e-3, floor) == ILL
    assert classify(ABOVE(edge), 1e-3, floor) == DISAGREES


def test_running_max_is_of_magnitudes_in_float64():
    got = running_max(np.array([-0.5, 0.25, -2.0, 1.0], dtype=np.float32))
    assert got.dtype == np.float64
    assert got.tolist() == [0.5, 0.5, 2.0, 2.0]
    assert running_max([3, 1]).tolist() == [3.0, 3.0]


def test_the_policy_has_a_value_for_each_dtype_and_float32_is_looser():
    assert tolerance("float64") is POLICY["float64"] and tolerance("float32") is POLICY["float32"]
    t64, t32 = tolerance("float64"), tolerance("float32")
    for part in ("forward", "gradient", "params", "loss"):
        assert 0 < getattr(t64, part) < getattr(t32, part)


def test_a_declared_known_difference_is_modelled_in_float64_only_unless_strict():
    """The model of float32 arithmetic inside a float64 run applies to a float64 run that declares it, never to a
    float32 run, never without a declaration (an empty one included), never under --strict."""
    from xor_rosetta.tolerance import modelled, modelled_label, policy_for
    why = "Keras on JAX: Keras 3.15 computes tanh in float32: no setting removes it"
    assert modelled("float64", why) is True
    assert modelled("float64", None) is False and modelled("float64", "") is False
    assert modelled("float32", why) is False
    assert modelled("float64", why, strict=True) is False and modelled("float64", why, strict=False) is True
    assert policy_for("float64", why) == "float32" and policy_for("float64", why, True) == "float64"
    assert policy_for("float64", None) == "float64" and policy_for("float32", why) == "float32"
    assert modelled_label(why) == "float32 inside: Keras on JAX"
    assert modelled_label("  Label  : a: b") == "float32 inside: Label"
    assert modelled_label("no colon at all") == "float32 inside: no colon at all"
