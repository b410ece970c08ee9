"""The conformance kit's judging, word for word: where a comparison first fails (`Where`), and a check's result as
the scorecard's JSON writes it (`CheckResult.to_dict`). These are what a user reads of a failure, so each case is
checked whole. Then what decides a verdict: the arrays over their tolerance (`array_report`) and a wrong layout
(`layout_problem`), the rounding floors (`floor_for`: one ulp per operation, or float32 arithmetic inside a float64
run), `compare` on hand-made records -- at the initial weights, part by part, the worst status and then the closest
call reported; in training, judged only as far as the reference stays finite -- and a check's result from its
scripts' outcomes (`result_from`: the first disagreement, else the closest call, in the policy's words)."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from mutants.numpy_mutants import NumpyMLP
from xor_rosetta.checks import Battery
from xor_rosetta.checks.judging import (CheckResult, Outcome, Where, _cut, _rounded_floor, _words, array_report,
                                        compare, floor_for, layout_problem, result_from)
from xor_rosetta.checks.scripts import EXTRA_INPUTS, Record, Script
from xor_rosetta.data import xor_data
from xor_rosetta.interface import Conventions
from xor_rosetta.reference import Float32Inside, Floor, Jitter, Reference
from xor_rosetta.tolerance import AGREES, DISAGREES, ILL, NOISE


@pytest.mark.parametrize("where, words", [
    (Where("construction"), "params() right after construction at the initial weights"),
    (Where("forward"), "the forward pass at the initial weights"),
    (Where("loss"), "the loss at the initial weights"),
    (Where("gradient"), "the gradients at the initial weights"),
    (Where("gradient", arrays=["W1", "b0"]), "the gradients of W1, b0 at the initial weights"),
    (Where("error"), "a call"),
    (Where("update", step=7), "the params at step 7"),
    (Where("update", step=7, loss=True), "the loss at step 7"),
    (Where("update", step=3, arrays=["b1", "W0"]), "the update of b1, W0 at step 3"),
    (Where("update", step=3, arrays=["W1"], loss=True), "the loss and the update of W1 at step 3"),
], ids=lambda v: v.replace(" ", "-") if isinstance(v, str) else None)
def test_where_says_what_failed_and_when(where, words):
    assert where.words() == words


@pytest.mark.parametrize("arrays, layer", [([], None), (["W0"], 0), (["b1", "W0"], 1), (["W12"], 12)])
def test_where_names_the_layer_of_the_worst_array(arrays, layer):
    assert Where("update", step=2, arrays=arrays).layer == layer


def test_where_as_json_holds_every_field_and_the_words():
    w = Where("update", step=5, arrays=["b1", "W0"], loss=True)
    assert w.to_dict() == {"part": "update", "step": 5, "layer": 1, "arrays": ["b1", "W0"], "loss": True,
                           "words": "the loss and the update of b1, W0 at step 5"}
    assert Where("forward").to_dict() == {"part": "forward", "step": 0, "layer": None, "arrays": [], "loss": False,
                                          "words": "the forward pass at the initial weights"}


def test_a_passing_result_as_json():
    r = CheckResult("forward", "pass", "agrees", 1.5e-17, 2.2e-16, "4 inputs")
    assert r.to_dict() == {"id": "forward", "status": "pass", "verdict": "agrees", "diff": 1.5e-17,
                           "allowed": 2.2e-16, "detail": "4 inputs", "where": None, "script": None}


def test_a_failing_result_as_json_names_where_its_script_data_and_the_modelled_difference():
    r = CheckResult("train", "fail", "DISAGREES: x", 0.5, 1e-12, "", Where("update", step=2, arrays=["W1"]),
                    "seed-numpy", data={"steps": 3}, modelled="Keras on JAX: float32 inside")
    assert r.to_dict() == {"id": "train", "status": "fail", "verdict": "DISAGREES: x", "diff": 0.5,
                           "allowed": 1e-12, "detail": "", "script": "seed-numpy",
                           "where": {"part": "update", "step": 2, "layer": 1, "arrays": ["W1"], "loss": False,
                                     "words": "the update of W1 at step 2"},
                           "modelled_difference": "Keras on JAX: float32 inside", "data": {"steps": 3}}


@pytest.mark.parametrize("diff, shown", [(None, None), (0.0, 0.0), (math.inf, "inf"), (-math.inf, "-inf"),
                                         (math.nan, "nan"), (1.7976931348623157e308, 1.7976931348623157e308)])
def test_a_difference_that_is_not_a_finite_number_is_written_as_text(diff, shown):
    """JSON has no inf or NaN: they are written as strings; None stays null, and every finite number, the largest
    too, stays a number."""
    d = CheckResult("loss", "fail", "v", diff, diff).to_dict()
    assert d["diff"] == shown and d["allowed"] == shown


# ----------------------------------------------------------------------------------------------- a verdict's words

@pytest.mark.parametrize("status, what, diff, allowed, floor, words", [
    (DISAGREES, "loss", 0.5, 0.1, 0.01, "loss differs by 0.5 (allowed 0.1, rounding floor 0.01)"),
    (DISAGREES, "loss", 0.5, 0.1, None, "loss differs by 0.5 (allowed 0.1)"),
    (DISAGREES, "outputs", 0.5, 0.1, 0.01, "outputs differ by 0.5 (allowed 0.1, rounding floor 0.01)"),
    (NOISE, "outputs", 3e-16, 2e-16, 1e-16, "outputs differ by 3e-16 (allowed 2e-16, rounding floor 1e-16)"),
    (AGREES, "outputs", 0.0, 2.5e-13, None, "outputs differ by 0 (allowed 2.5e-13)"),
    (ILL, "loss", 0.5, 0.1, 0.2, "ill-conditioned: one rounding per operation already moves the loss by 0.2, over "
                                 "the 0.1 allowed; the difference, 0.5, is within 10x that"),
], ids=["loss-floor", "loss-no-floor", "outputs-floor", "outputs-noise", "outputs-agree", "ill"])
def test_a_verdict_says_what_differs_by_how_much_against_what(status, what, diff, allowed, floor, words):
    assert _words(status, what, diff, allowed, floor) == words


# ------------------------------------------------------------------------------------- the arrays over tolerance

def _params(b1=1.5):
    """A 2-5-1 network's params, max |value| 2 (so float64's params tolerance is 1e-12); `b1` the output bias."""
    return [(np.full((2, 5), 0.5), np.full(5, -0.25)), (np.full((5, 1), -2.0), np.array([b1]))]


def _moved(params, by):
    """`params` with `by[name]` added to the first element of that array ("W0", "b1", ...): exact |Δ|s."""
    arrays = [a.copy() for Wb in params for a in Wb]
    for name, d in by.items():
        arrays[2 * int(name[1:]) + (name[0] == "b")].flat[0] += d
    return [(arrays[i], arrays[i + 1]) for i in range(0, len(arrays), 2)]


GOT = _moved(_params(), {"W0": 0.25, "b0": 0.5, "W1": 0.125})  # |Δ| 0.25, 0.5, 0.125; b1 equal


@pytest.mark.parametrize("allowed, arrays", [
    (0.125, ["b0", "W0"]),  # exactly at the tolerance is within it
    (np.nextafter(0.125, 0.0), ["b0", "W0", "W1"]),  # one ulp under it, W1 is over
    (0.0, ["b0", "W0", "W1"]),  # an array equal to the reference's is never over
    (0.5, []),  # the worst, b0, exactly at it
], ids=["at", "just-past", "zero", "none"])
def test_array_report_names_the_arrays_over_tolerance_worst_first(allowed, arrays):
    assert array_report(GOT, _params(), allowed) == arrays


def test_array_report_counts_a_nan_as_the_worst_difference():
    got = _moved(GOT, {"W1": math.nan})
    assert array_report(got, _params(), 1e300) == ["W1"]
    assert array_report(got, _params(), 0.125) == ["W1", "b0", "W0"]


def _layers(*shapes):
    """Params of the given (W shape, b shape) per layer, every value 0.5."""
    return [(np.full(W, 0.5), np.full(b, 0.5)) for W, b in shapes]


@pytest.mark.parametrize("got, problem", [
    (_layers(((2, 5), (5,)), ((5, 1), (1,))), None),
    (_layers(((5, 2), (5,)), ((5, 1), (1,))),
     "params(): W0 has shape (5, 2), the canonical layout is (2, 5) (fan_in, fan_out)"),
    (_layers(((2, 5), (1, 5)), ((5, 1), (1,))),
     "params(): b0 has shape (1, 5), the canonical layout is (5,) (fan_out,)"),
    (_layers(((2, 5), (5,)), ((1, 5), (1,))),
     "params(): W1 has shape (1, 5), the canonical layout is (5, 1) (fan_in, fan_out)"),
    (_layers(((2, 5), (5,)), ((5, 1), ())), "params(): b1 has shape (), the canonical layout is (1,) (fan_out,)"),
    (_layers(((5, 2), (5,)), ((5, 1), ())),  # two wrong: the first, in W0, b0, W1, b1 order, is named
     "params(): W0 has shape (5, 2), the canonical layout is (2, 5) (fan_in, fan_out)"),
    (_layers(((2, 1), (1,))), "params() has 1 layers, the spec has 2"),
    (_layers(((2, 5), (5,)), ((5, 5), (5,)), ((5, 1), (1,))), "params() has 3 layers, the spec has 2"),
], ids=["same", "W0", "b0", "W1", "b1", "first-of-two", "fewer-layers", "more-layers"])
def test_a_wrong_layout_names_the_array_its_shape_and_the_canonical_one(got, problem):
    """A weight's canonical layout is (fan_in, fan_out), a bias's (fan_out,): the message says which applies."""
    assert layout_problem(got, _params(), "params()") == problem


# ------------------------------------------------------------------------------------------------ rounding floors

CONV = Conventions(adam="optax")  # not the default: a floor is measured in the conventions it is given


@pytest.fixture
def battery():
    return Battery(NumpyMLP, level="quick")


def _data(dtype):
    """The XOR rows and their targets, and the rows forward() is asked about (EXTRA_INPUTS after them)."""
    x, y = xor_data(dtype)
    return x, y, np.vstack([x, EXTRA_INPUTS.astype(dtype)])


def _zero(fl: Floor, checkpoints, steps: int) -> None:
    assert (fl.outputs, fl.forward, fl.loss0, fl.gradient) == (0.0, 0.0, 0.0, 0.0)
    assert fl.params == {k: 0.0 for k in checkpoints}
    assert isinstance(fl.loss, np.ndarray) and fl.loss.tolist() == [0.0] * steps


@pytest.mark.parametrize("key", ["probe-k", "float32"])
def test_the_rounding_floor_is_one_ulp_up_and_down_per_operation(battery, key):
    """In the script's own dtype: the reference jittered by two patterns, each in both directions, measured
    once; on the probe's outputs and loss too, each the largest |jittered - exact| of the four runs."""
    s = battery.script(key)
    dtype = s.spec.dtype
    fl = floor_for(battery, s, CONV)
    assert list(battery.floors) == [(key, s.steps, CONV, dtype)]
    assert floor_for(battery, s, CONV, dtype) is fl
    x, y, inputs = _data(dtype)
    exact = Reference(s.spec, s.params, CONV)
    outputs, loss0 = [], []
    for seed, sign in ((0, 1.0), (0, -1.0), (1, 1.0), (1, -1.0)):
        j = Reference(s.spec, s.params, CONV, Jitter(seed, sign))
        outputs.append(float(np.max(np.abs(j.forward(inputs) - exact.forward(inputs)))))
        loss0.append(abs(j.loss(x, y) - exact.loss(x, y)))
    assert 0 < fl.outputs == max(outputs) and 0 < fl.loss0 == max(loss0)
    assert fl.outputs < 1e-5 if dtype == "float32" else fl.outputs < 1e-14
    assert list(fl.params) == list(s.checkpoints) and fl.loss.shape == (s.steps,)


def test_float32_inside_a_float64_run_has_a_floor_on_every_part(battery):
    """The float32 policy on a float64 script: the floor is how far float32 arithmetic inside the run moves the
    float64 reference, on the outputs, the loss, the gradients, the params at every checkpoint and each step's
    loss; well under float32's tolerances, and never zero."""
    s = battery.script("probe-k")
    fl = floor_for(battery, s, CONV, "float32")
    assert list(battery.floors) == [("probe-k", 3, CONV, "float32")]
    x, y, inputs = _data("float64")
    exact, f32 = Reference(s.spec, s.params, CONV), Reference(s.spec, s.params, CONV, Float32Inside())
    assert 0 < fl.outputs == fl.forward == np.max(np.abs(f32.forward(inputs) - exact.forward(inputs))) < 1e-6
    assert 0 < fl.loss0 == abs(f32.loss(x, y) - exact.loss(x, y)) < 1e-6
    assert 0 < fl.gradient == max(np.max(np.abs(a - b)) for G, H in zip(f32.gradients(x, y), exact.gradients(x, y))
                                  for a, b in zip(G, H)) < 1e-6
    h, e = f32.train(x, y, steps=3, checkpoints=(1, 2, 3)), exact.train(x, y, steps=3, checkpoints=(1, 2, 3))
    assert list(fl.params) == [1, 2, 3]
    for k in (1, 2, 3):
        assert 0 < fl.params[k] == max(np.max(np.abs(a - b)) for A, B in zip(h.checkpoints[k], e.checkpoints[k])
                                       for a, b in zip(A, B)) < 1e-6
    assert fl.loss.shape == (3,) and np.all(fl.loss > 0) and np.all(fl.loss < 1e-6)
    assert fl.loss.tolist() == np.abs(h.loss - e.loss).tolist()


def test_float32_inside_a_script_without_probe_has_no_probe_floor(battery):
    s = battery.script("momentum")
    fl = floor_for(battery, s, CONV, "float32")
    assert (fl.outputs, fl.forward, fl.loss0, fl.gradient) == (0.0, 0.0, 0.0, 0.0)
    assert list(fl.params) == list(range(1, 9)) and all(0 < v < 1e-6 for v in fl.params.values())
    assert fl.loss.shape == (8,) and np.all(fl.loss > 0) and np.all(fl.loss < 1e-6)


class Fails:
    """A rounding that raises: the rounded run ends in an error."""

    def __call__(self, a):
        raise FloatingPointError("overflow")


def test_a_floor_is_zero_where_the_rounded_run_fails(battery):
    s = battery.script("probe-k")
    _zero(_rounded_floor(battery, s, CONV, Fails()), [1, 2, 3], 3)


def test_a_floor_is_zero_where_the_reference_run_fails(battery):
    """The reference raised after training (its losses and checkpoints recorded): no floor is measured against it."""
    s = battery.script("probe-k")
    ref = battery.reference(s, CONV)
    battery.refs[(s.key, s.steps, CONV)] = dataclasses.replace(
        ref, error="loss() after training raised FloatingPointError: overflow")
    _zero(floor_for(battery, s, CONV, "float32"), [1, 2, 3], 3)


class NaNOutputBiasGradient:
    """One ulp of jitter on every value but the output bias's gradient (the only array of shape (1,)), which becomes
    NaN: the run is NaN from the second step on (the output bias after the first update, then everything)."""

    def __init__(self):
        self.jitter = Jitter(0, 1.0)

    def __call__(self, a):
        return np.full_like(a, math.nan) if a.shape == (1,) else self.jitter(a)


def test_a_nan_is_no_evidence_of_rounding(battery):
    """act-bce (SGD, 10 steps): the jittered probe and first step are measured; b1's NaN gradient counts as 0, and
    so does every later step, NaN throughout."""
    s = battery.script("act-bce")
    fl = _rounded_floor(battery, s, CONV, NaNOutputBiasGradient())
    assert 0 < fl.outputs < 1e-14 and 0 < fl.loss0 < 1e-14
    assert 0 < fl.gradient < 1e-14  # W0 .. b1 jittered; b2's NaN counts as 0
    assert list(fl.params) == list(range(1, 11))
    assert 0 < fl.params[1] < 1e-14 and [fl.params[k] for k in range(2, 11)] == [0.0] * 9
    assert 0 < fl.loss[0] < 1e-14 and fl.loss[1:].tolist() == [0.0] * 9


def test_a_floor_cut_to_the_steps_judged():
    f = Floor(forward=1e-16, gradient=2e-16, params={1: 3e-16}, loss=np.array([1.0, 2.0, 3.0, 4.0]))
    c = _cut(f, 2)
    assert c.loss.tolist() == [1.0, 2.0] and (c.forward, c.gradient, c.params) == (1e-16, 2e-16, {1: 3e-16})
    assert f.loss.tolist() == [1.0, 2.0, 3.0, 4.0]  # the cached floor stays whole
    assert _cut(Floor(gradient=1e-16), 2).loss is None  # no per-step floor: nothing to cut


# ---------------------------------------------------------------------------- compare at the initial weights

P0 = _moved(_params(), {"b0": 0.25})  # b0[0] is 0: a difference put there is exact; max |value| 2, allowed 1e-12
OUTPUTS = np.full((4 + len(EXTRA_INPUTS), 1), 0.5)  # max |output| 0.5: float64 allows 2.5e-13, float32 5e-7


def _probe_record(b0=0.0, output=0.5, loss0=0.5) -> Record:
    """probe-n's answers at the initial weights, made by hand: b0[0] = `b0`, the first output `output`."""
    outputs = OUTPUTS.copy()
    outputs[0, 0] = output
    return Record(params0=_moved(P0, {"b0": b0}), outputs=outputs, loss0=loss0)


def _with_floor(battery, dtype, outputs, loss0, gradient=0.0) -> Script:
    """probe-n, with its rounding floor in `dtype` set by hand (floor_for's cache): nothing is measured."""
    s = battery.script("probe-n")
    fl = Floor(gradient=gradient)
    fl.outputs, fl.loss0 = outputs, loss0
    battery.floors[(s.key, s.steps, CONV, dtype)] = fl
    return s


def test_an_error_is_the_failure_whatever_else_was_recorded(battery):
    got = dataclasses.replace(_probe_record(b0=1.0), error="forward() raised ValueError: bad shape")
    o = compare(battery, battery.script("probe-n"), got, _probe_record(), CONV, ("params0", "forward"))
    assert o == Outcome(DISAGREES, math.inf, 0.0, None, "error: forward() raised ValueError: bad shape",
                        Where("error"), "forward() raised ValueError: bad shape")
    assert o.ratio == math.inf


def test_a_wrong_layout_at_construction_fails_before_any_value_is_compared(battery):
    """W0 transposed: the construction disagrees, unmeasurably (no tolerance to compare with); the forward pass,
    off too, is not judged."""
    got = dataclasses.replace(_probe_record(output=0.75), params0=[(P0[0][0].T, P0[0][1]), P0[1]])
    o = compare(battery, battery.script("probe-n"), got, _probe_record(), CONV, ("params0", "forward"))
    assert o == Outcome(DISAGREES, math.inf, 0.0, None,
                        "params(): W0 has shape (5, 2), the canonical layout is (2, 5) (fan_in, fan_out)",
                        Where("construction", 0, []))
    assert battery.floors == {}


@pytest.mark.parametrize("shape", [(4, 1), (16,)], ids=["xor-rows-only", "flat"])
def test_outputs_of_the_wrong_shape_fail_the_forward_pass_unmeasured(battery, shape):
    got = dataclasses.replace(_probe_record(), outputs=np.full(shape, 0.5))
    o = compare(battery, battery.script("probe-n"), got, _probe_record(), CONV, ("forward", "loss0"))
    assert o == Outcome(DISAGREES, math.inf, 0.0, None, f"forward returned shape {shape} for 16 rows; expected (16, 1)",
                        Where("forward"))
    assert battery.floors == {}


@pytest.mark.parametrize("moved, floor, want", [
    ({"b0": 5e-13}, 2e-13,
     Outcome(AGREES, 5e-13, 1e-12, None, "gradients differ by 5e-13 (allowed 1e-12)")),
    ({"b0": 1.5e-12}, 2e-13,
     Outcome(NOISE, 1.5e-12, 1e-12, 2e-13, "gradients differ by 1.5e-12 (allowed 1e-12, rounding floor 2e-13)")),
    ({"b0": 1.5e-12}, 2e-12,
     Outcome(ILL, 1.5e-12, 1e-12, 2e-12, "ill-conditioned: one rounding per step already moves the gradients by "
             "2e-12, over the 1e-12 allowed; the difference, 1.5e-12, is within 10x that")),
    ({"b0": 0.5, "W1": 1.0}, 2e-13,
     Outcome(DISAGREES, 1.0, 1e-12, 2e-13, "gradients differ by 1 (allowed 1e-12, rounding floor 2e-13)",
             Where("gradient", 0, ["W1", "b0"]))),
], ids=["agrees", "noise", "ill", "disagrees"])
def test_gradients_are_judged_against_their_largest_and_the_floor(battery, moved, floor, want):
    """The reference's gradients are P0 (largest |value| 2: float64 allows 1e-12); the floor (set by hand) is
    used only when a gradient is over its tolerance, and a disagreement names the arrays over it, worst first."""
    s = _with_floor(battery, "float64", 0.0, 0.0, gradient=floor)
    got = dataclasses.replace(_probe_record(), grads=_moved(P0, moved))
    o = compare(battery, s, got, dataclasses.replace(_probe_record(), grads=P0), CONV, ("gradients",))
    assert o == want


def test_gradients_of_the_wrong_layout_fail_unmeasured(battery):
    """b1's gradient as a (1, 1) row, which would broadcast against the reference's (1,) without complaint."""
    got = dataclasses.replace(_probe_record(), grads=[P0[0], (P0[1][0], P0[1][1].reshape(1, 1))])
    o = compare(battery, battery.script("probe-n"), got, dataclasses.replace(_probe_record(), grads=P0), CONV,
                ("gradients",))
    assert o == Outcome(DISAGREES, math.inf, 0.0, None,
                        "gradients(): b1 has shape (1, 1), the canonical layout is (1,) (fan_out,)",
                        Where("gradient", 0, []))
    assert battery.floors == {}


def test_a_nan_loss_is_infinitely_far_from_the_reference(battery):
    """A NaN loss disagrees by inf (over any floor), not by NaN, which would compare as nothing."""
    s = _with_floor(battery, "float64", 1e-12, 2e-13)
    o = compare(battery, s, _probe_record(loss0=math.nan), _probe_record(), CONV, ("forward", "loss0"))
    assert o == Outcome(DISAGREES, math.inf, 2.5e-13, 2e-13,
                        "loss differs by inf (allowed 2.5e-13, rounding floor 2e-13)", Where("loss"))


@pytest.mark.parametrize("b0, status, where", [
    (1e-12, AGREES, None),  # exactly at the tolerance: within it
    (np.nextafter(1e-12, 1.0), DISAGREES, Where("construction", 0, ["b0"])),  # one ulp past it
], ids=["at", "just-past"])
def test_params_after_construction_are_judged_without_a_floor(battery, b0, status, where):
    """params() reads back the weights given: no rounding happens, so no floor is measured, and one ulp over
    5e-13 times the largest |param| disagrees."""
    o = compare(battery, battery.script("probe-n"), _probe_record(b0=b0), _probe_record(), CONV, ("params0",))
    assert o == Outcome(status, b0, 1e-12, None, "params differ by 1e-12 (allowed 1e-12)", where)
    assert battery.floors == {}


def test_the_policy_measures_the_floor_of_its_own_dtype(battery):
    """The float32 policy on a float64 run: float32's tolerance (1e-6 of the largest |output|, 5e-7) and the floor
    of float32 arithmetic (floor_for(..., "float32")), not the run's own float64 one."""
    s = _with_floor(battery, "float32", 1e-7, 0.0)
    _with_floor(battery, "float64", 2e-7, 0.0)
    o = compare(battery, s, _probe_record(output=0.5 + 2 ** -20), _probe_record(), CONV, ("forward",), "float32")
    assert o == Outcome(NOISE, 2 ** -20, 5e-7, 1e-7, "outputs differ by 9.5e-07 (allowed 5e-07, rounding floor 1e-07)")


@pytest.mark.parametrize("got, parts, want", [
    (_probe_record(), ("params0", "forward", "loss0"),  # all equal: the first part judged is reported
     Outcome(AGREES, 0.0, 1e-12, None, "params differ by 0 (allowed 1e-12)")),
    (_probe_record(b0=5e-13, output=0.5 + 2 ** -44), ("params0", "forward"),  # ratios 0.5, then 0.23
     Outcome(AGREES, 5e-13, 1e-12, None, "params differ by 5e-13 (allowed 1e-12)")),
    (_probe_record(b0=1e-13, output=0.5 + 2 ** -43), ("params0", "forward"),  # ratios 0.1, then 0.45
     Outcome(AGREES, 2 ** -43, 2.5e-13, None, "outputs differ by 1.1e-13 (allowed 2.5e-13)")),
    (_probe_record(output=0.5 + 2 ** -41, loss0=0.5 + 2 ** -40), ("forward", "loss0"),  # ILL 1.8x, then NOISE 3.6x
     Outcome(ILL, 2 ** -41, 2.5e-13, 1e-12, "ill-conditioned: one rounding per operation already moves the outputs "
             "by 1e-12, over the 2.5e-13 allowed; the difference, 4.5e-13, is within 10x that")),
    (_probe_record(output=0.5 + 2 ** -42, loss0=0.5 + 2 ** -40), ("forward", "loss0"),  # 0.9x, then NOISE 3.6x
     Outcome(NOISE, 2 ** -40, 2.5e-13, 2e-13, "loss differs by 9.1e-13 (allowed 2.5e-13, rounding floor 2e-13)")),
], ids=["tie", "first-closer", "second-closer", "status-over-ratio", "noise-over-agrees"])
def test_parts_that_agree_report_the_closest_call_the_worst_status_first(battery, got, parts, want):
    """Nothing disagrees: the worst status is reported, and among equals the largest |Δ| relative to its tolerance
    (the earlier part on a tie). The floor (float64: 1e-12 on the outputs, over their tolerance; 2e-13 on the loss,
    under it) is used only by a part over its tolerance."""
    s = _with_floor(battery, "float64", 1e-12, 2e-13)
    assert compare(battery, s, got, _probe_record(), CONV, parts) == want


# ------------------------------------------------------------------------------------------ compare on training

LOSS = [0.5, 0.25, 0.125, 0.0625]  # the largest loss so far is 0.5 throughout: float64 allows 2.5e-13


def _train_script(battery) -> Script:
    """probe-n's float64 network, 4 updates in one call, the params after each; the records below are made by hand."""
    return dataclasses.replace(battery.script("probe-n"), key="judged", probe=False, calls=(4,),
                               checkpoints=(1, 2, 3, 4))


def _rec(loss, checkpoints) -> Record:
    return Record(loss=np.array(loss), checkpoints=dict(enumerate(checkpoints, start=1)))


@pytest.mark.parametrize("got, diff, allowed, words", [
    (_rec([0.5, 0.25 + 2 ** -44, 0.125, 0.0625], [_params()] * 4), 2 ** -44, 2.5e-13,
     "loss differs by 5.7e-14 (allowed 2.5e-13)"),
    (_rec(LOSS, [_params(), _params(1.5 + 2 ** -42), _params(), _params()]), 2 ** -42, 1e-12,
     "params differ by 2.3e-13 (allowed 1e-12)"),
], ids=["loss", "params"])
def test_training_within_tolerance_reports_its_closest_call(battery, got, diff, allowed, words):
    """Nothing over its tolerance: the difference nearest its tolerance (loss: 5e-13 times the largest loss so far;
    params: 5e-13 times the largest |param|) is reported, in words, with no floor measured."""
    want = _rec(LOSS, [_params()] * 4)
    o = compare(battery, _train_script(battery), got, want, CONV, ("train",))
    assert (o.status, o.diff, o.allowed, o.floor, o.words, o.where) == (AGREES, diff, allowed, None, words, None)
    assert battery.floors == {}


def test_training_to_params_of_the_wrong_layout_fails_at_the_first_such_checkpoint(battery):
    """The params after step 2 come back with W1 transposed, after step 4 with b0 as a row: step 2 is named, with
    no measure."""
    (W0, b0), (W1, b1) = _params()
    got = _rec(LOSS, [_params(), [(W0, b0), (W1.T, b1)], _params(), [(W0, b0[None]), (W1, b1)]])
    o = compare(battery, _train_script(battery), got, _rec(LOSS, [_params()] * 4), CONV, ("train",))
    assert o == Outcome(DISAGREES, math.inf, 0.0, None,
                        "History.checkpoints[2]: W1 has shape (1, 5), the canonical layout is (5, 1) (fan_in, fan_out)",
                        Where("update", 2, []))
    assert battery.floors == {}


def test_training_is_judged_only_while_the_reference_stays_finite(battery):
    """The reference's loss overflows before step 3: steps 1 and 2 (and the params after them) are judged, and
    agree; what either run does from there on is not judged."""
    nan = [(np.full_like(W, math.nan), np.full_like(b, math.nan)) for W, b in _params()]
    want = _rec([0.5, 0.25, math.inf, math.nan], [_params(), _params(), nan, nan])
    got = _rec([0.5, 0.25, 0.2, 0.1], [_params(), _params(), _params(9.0), _params(9.0)])
    o = compare(battery, _train_script(battery), got, want, CONV, ("train",))
    assert (o.status, o.diff, o.allowed, o.words, o.where) == (AGREES, 0.0, 1e-12, "params differ by 0 (allowed 1e-12)",
                                                               None)


def test_training_within_the_rounding_floor_agrees_within_noise(battery):
    """Step 2's loss is 4.5e-13 off, over the 2.5e-13 allowed, under 10x the floor of 2e-13: rounding noise. The
    reference's last loss is NaN, so the floor is cut to the three steps judged."""
    s = _train_script(battery)
    battery.floors[(s.key, s.steps, CONV, "float64")] = Floor(params={1: 0.0, 2: 0.0, 3: 0.0, 4: 0.0},
                                                              loss=np.full(4, 2e-13))
    nan = [(np.full_like(W, math.nan), np.full_like(b, math.nan)) for W, b in _params()]
    want = _rec([0.5, 0.25, 0.125, math.nan], [_params()] * 3 + [nan])
    got = _rec([0.5, 0.25 + 2 ** -41, 0.125, 0.0625], [_params()] * 4)
    o = compare(battery, s, got, want, CONV, ("train",))
    assert (o.status, o.diff, o.allowed, o.floor, o.where) == (NOISE, 2 ** -41, 2.5e-13, 2e-13, None)
    assert o.words == "loss differs by 4.5e-13 (0.25 vs the reference's 0.25) (allowed 2.5e-13, rounding floor 2e-13)"


# --------------------------------------------------------------------------------------------- a check's result

S = {k: Script(k, None, []) for k in ("probe-n", "probe-k", "momentum")}  # result_from reads only their keys
TEXTBOOK = Conventions(adam="textbook")
AGREE = Outcome(AGREES, 1e-13, 2.5e-13, None, "outputs differ by 1e-13 (allowed 2.5e-13)")  # 0.4 of its tolerance
CLOSER = Outcome(AGREES, 2e-13, 2.5e-13, None, "loss differs by 2e-13 (allowed 2.5e-13)")  # 0.8
NOISY = Outcome(NOISE, 1e-12, 2.5e-13, 2e-13, "loss differs by 1e-12 (allowed 2.5e-13, rounding floor 2e-13)")  # 4
ILLC = Outcome(ILL, 4e-13, 2.5e-13, 1e-12, "ill-conditioned: one rounding per operation already moves the loss by "
               "1e-12, over the 2.5e-13 allowed; the difference, 4e-13, is within 10x that")  # 1.6
OFF = Outcome(DISAGREES, 0.5, 2.5e-13, None, "loss differs by 0.5 (allowed 2.5e-13)", Where("loss"))
WORSE = Outcome(DISAGREES, 1.0, 1e-12, None, "params differ by 1 (allowed 1e-12)", Where("update", 2, ["W1"]))
RAISED = Outcome(DISAGREES, math.inf, 0.0, None, "error: train() raised FloatingPointError: overflow",
                 Where("error"), "train() raised FloatingPointError: overflow")


def test_a_check_fails_on_its_first_disagreement_not_its_largest():
    outcomes = [(S["probe-n"], AGREE, CONV, ("forward",)), (S["probe-k"], OFF, TEXTBOOK, ("loss0",)),
                (S["momentum"], WORSE, CONV, ("train",))]
    r = result_from("loss", outcomes, "3 scripts", {"form": "probs"})
    assert r == CheckResult("loss", "fail", "DISAGREES: loss differs by 0.5 (allowed 2.5e-13)", 0.5, 2.5e-13,
                            "3 scripts", Where("loss"), "probe-k", TEXTBOOK, ("loss0",), {"form": "probs"})


def test_a_check_that_raised_says_what_raised():
    r = result_from("train", [(S["probe-n"], CLOSER, CONV, ("forward",)), (S["momentum"], RAISED, CONV, ("train",))])
    assert r == CheckResult("train", "fail", "error: train() raised FloatingPointError: overflow", math.inf, 0.0, "",
                            Where("error"), "momentum", CONV, ("train",), {})


@pytest.mark.parametrize("outcomes, chosen, verdict", [
    ([AGREE, CLOSER], 1, "agrees"),
    ([CLOSER, AGREE], 0, "agrees"),
    ([CLOSER, dataclasses.replace(CLOSER, words="the same ratio, later")], 0, "agrees"),  # a tie: the first
    ([AGREE, NOISY, CLOSER], 1, "agrees within rounding noise (floor 2e-13)"),
    ([NOISY, ILLC], 1, ILLC.words),  # the worse status, though its ratio is smaller
    ([dataclasses.replace(NOISY, floor=None)], 0, "agrees within rounding noise (floor 0)"),  # no floor measured
], ids=["closer-last", "closer-first", "tie", "noise", "ill", "noise-no-floor"])
def test_a_check_that_passes_reports_its_closest_call(outcomes, chosen, verdict):
    """No disagreement: the worst status, then the largest |Δ| relative to its tolerance, is reported, in the
    policy's words (an ill-conditioned comparison in its own), with the script, conventions and parts it came from."""
    scripts = list(S.values())
    convs = [CONV, TEXTBOOK, Conventions()]
    parts = [("forward",), ("loss0",), ("train",)]
    r = result_from("loss", [(scripts[i], o, convs[i], parts[i]) for i, o in enumerate(outcomes)], "2 inputs",
                    {"steps": 3})
    o = outcomes[chosen]
    assert r == CheckResult("loss", "pass", verdict, o.diff, o.allowed, "2 inputs", None, scripts[chosen].key,
                            convs[chosen], parts[chosen], {"steps": 3})


def test_a_passing_check_without_detail_or_data():
    r = result_from("forward", [(S["probe-n"], AGREE, CONV, ("forward",))])
    assert r == CheckResult("forward", "pass", "agrees", 1e-13, 2.5e-13, "", None, "probe-n", CONV, ("forward",), {})
