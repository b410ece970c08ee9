"""The protocol's numbers, arrays and params on the wire, at their edges: non-finite values and hexadecimal floats
round-trip, a flat array is taken for a 1-D shape of its size and nothing else, and a malformed params list is
refused with its name."""
from __future__ import annotations

import math

import numpy as np
import pytest

from xor_rosetta.app.workers.protocol import (ProtocolError, decode_array, decode_number, decode_params,
                                              encode_array, encode_number, encode_params)


def test_numbers_round_trip_with_non_finite_values_and_hex():
    for v in (0.1, -2.5e-300, 1e308, 5e-324):
        assert decode_number(encode_number(v)) == v
    assert [encode_number(v) for v in (math.nan, math.inf, -math.inf)] == ["NaN", "Infinity", "-Infinity"]
    assert math.isnan(decode_number("NaN")) and decode_number("-Infinity") == -math.inf
    assert decode_number("0x1.8p1") == 3.0 and decode_number(7) == 7.0 and decode_number("inf") == math.inf
    for bad in (True, None, [1.0]):
        with pytest.raises(ProtocolError, match="expected a number as a string"):
            decode_number(bad)
    with pytest.raises(ProtocolError, match="not a number: 'one'"):
        decode_number("one")


def test_arrays_keep_their_shape_and_a_flat_one_fits_a_1d_shape_only():
    a = np.array([[0.5, -1.0], [math.inf, 2.0]])
    assert np.array_equal(decode_array(encode_array(a), (2, 2)), a)
    assert decode_array(["1", "2", "3"], (3,)).shape == (3,)
    with pytest.raises(ProtocolError, match=r"expected an array of shape \(3, 1\), got \(3,\)"):
        decode_array(["1", "2", "3"], (3, 1))
    with pytest.raises(ProtocolError, match=r"expected an array of shape \(2,\), got \(3,\)"):
        decode_array(["1", "2", "3"], (2,))


def test_params_are_a_list_of_pairs():
    p = [(np.array([[1.0, 2.0]]), np.array([0.5, 0.0]))]
    (W, b), = decode_params(encode_params(p), "params")
    assert np.array_equal(W, p[0][0]) and np.array_equal(b, p[0][1])
    for bad in ({"W0": []}, [[["1"]]], [[["1"]], "b"], [[["1"], ["2"], ["3"]]]):
        with pytest.raises(ProtocolError, match="gradients must be a list of \\[W, b\\] pairs"):
            decode_params(bad, "gradients")
