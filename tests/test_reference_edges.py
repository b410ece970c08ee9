"""The reference's edges, each value worked out by hand: Keras' clipped BCE at and around its bounds (the gradient
zero outside, halved at a bound on JAX, passed whole on torch), overflow and log(0) handled quietly, the Jitter's
one-ulp moves, `Float32Inside` (float32 arithmetic inside a float64 run) and the floor it gives, the rounding floor's
runs, Reference's dtypes and minibatches, and Keras' Adam over several steps."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest

from xor_rosetta import reference
from xor_rosetta.data import xor_data
from xor_rosetta.interface import Conventions, History
from xor_rosetta.params import init_params
from xor_rosetta.presets import get_preset
from xor_rosetta.reference import Float32Inside, Jitter, Reference, float32_inside_floor, rounding_floor
from xor_rosetta.spec import Optimizer, Spec

pytestmark = pytest.mark.quick  # the quick tier: pytest -m quick

DTYPES = ["float64", "float32"]
REL = {"float64": 1e-12, "float32": 1e-6}  # float32: a few roundings of ~6e-8 each, on any CPU's kernels
E = 2.0 ** -30  # exact in float64 beside 1 (52 bits), lost in float32 (23 bits): float32 inputs drop it
QUIET = pytest.mark.filterwarnings("error::RuntimeWarning")  # numpy's overflow, divide and invalid-value warnings


def _one_layer(W, b, activation="linear", loss="mse", **changes):
    """A 2-1 network's spec and params: W (2 values, one per input) and b (one value)."""
    spec = Spec(layers=(2, 1), activations=(activation,), loss=loss, **changes)
    return spec, [(np.array(W, dtype=np.float64).reshape(2, 1), np.array(b, dtype=np.float64).reshape(1))]


def _arrays(params):
    return [a for Wb in params for a in Wb]


# --------------------------------------------------------------------------------------- activations, quietly

@QUIET
@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_saturates_to_exact_zero_and_one_without_an_overflow_warning(dtype):
    """exp(-z) overflows for z = -1000: 1 / (1 + inf) is 0, as it should be, and nothing warns."""
    z = np.array([-1000.0, 0.0, 1000.0], dtype=dtype)
    a = reference.activate("sigmoid", z)
    assert a.tolist() == [0.0, 0.5, 1.0] and a.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_gradient_is_zero_at_the_kink_in_the_dtype_of_z(dtype):
    z = np.array([-1.0, 0.0, 2.0], dtype=dtype)
    g = reference.activate_grad("relu", z, np.maximum(z, 0))
    assert g.tolist() == [0.0, 0.0, 1.0] and g.dtype == dtype


# --------------------------------------------------------------------------------------------------- BCE forms

@QUIET
@pytest.mark.parametrize("dtype", DTYPES)
def test_torch_bce_of_a_saturated_sigmoid_is_clamped_at_100_quietly(dtype):
    """torch's BCELoss clamps log(0) at -100: a = 0 with y = 1 and a = 1 with y = 0 each lose 100, with no
    divide-by-zero warning; the gradient, (a - y) / max(a(1 - a), 1e-12) times a(1 - a) = 0, is 0."""
    a, y = np.array([[0.0], [1.0]], dtype=dtype), np.array([[1.0], [0.0]], dtype=dtype)
    loss, dz = reference.bce_probs(np.array([[-800.0], [800.0]], dtype=dtype), a, y, 2)
    assert loss == 100.0 and dz.tolist() == [[0.0], [0.0]]


POINTS = ["zero", "far-below", "under-lo", "at-lo", "over-lo", "inside", "under-hi", "at-hi", "over-hi", "one"]
REGION = {"zero": "out", "far-below": "out", "under-lo": "out", "at-lo": "bound", "over-lo": "in", "inside": "in",
          "under-hi": "in", "at-hi": "bound", "over-hi": "out", "one": "out"}
PASSED = {"keras-jax": {"out": 0.0, "bound": 0.5, "in": 1.0},  # jnp.clip = minimum(maximum(..)): half at a tie
          "keras-torch": {"out": 0.0, "bound": 1.0, "in": 1.0}}  # torch.clip passes the gradient at the bounds


def _bounds(dtype):
    """Keras' clip bounds, keras.config.epsilon() = 1e-7, in the dtype: [1e-7, 1 - 1e-7] (1 - 2**-23 in float32)."""
    dt = np.dtype(dtype).type
    return dt(1e-7), dt(1 - 1e-7)


def _point(dtype, point):
    """An activation a at or around the clip bounds, in the dtype; one ulp apart where under/over."""
    dt = np.dtype(dtype).type
    lo, hi = _bounds(dtype)
    return {"zero": dt(0), "far-below": dt(1e-12), "under-lo": np.nextafter(lo, dt(0)), "at-lo": lo,
            "over-lo": np.nextafter(lo, dt(1)), "inside": dt(0.25), "under-hi": np.nextafter(hi, dt(0)), "at-hi": hi,
            "over-hi": np.nextafter(hi, dt(1)), "one": dt(1)}[point]


def _keras_bce(form, dtype, a, y):
    """The form on one row; z is NaN: Keras on JAX and torch sees only the probabilities, never the logits."""
    return reference.BCE[form](np.full((1, 1), np.nan, dtype=dtype), np.full((1, 1), a, dtype=dtype),
                               np.full((1, 1), y, dtype=dtype), 1)


def _clipped(dtype, a):
    """p = a clipped to the bounds, and 1 - p, each rounded to the dtype as the form computes them, as floats."""
    dt = np.dtype(dtype).type
    lo, hi = _bounds(dtype)
    p = min(max(a, lo), hi)
    return float(p), float(dt(1) - p)


@pytest.mark.parametrize("y", [0.0, 1.0], ids=["y0", "y1"])
@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("form", ["keras-jax", "keras-torch"])
def test_keras_bce_loss_is_the_log_loss_of_a_clipped_to_its_bounds(form, dtype, point, y):
    """-(y log p + (1 - y) log(1 - p)) with p = clip(a, 1e-7, 1 - 1e-7): finite at a = 0 and a = 1, and the clip
    (not the -100 clamp) is what bounds it."""
    a = _point(dtype, point)
    p, q = _clipped(dtype, a)
    loss, _ = _keras_bce(form, dtype, a, y)
    assert loss == pytest.approx(-(y * math.log(p) + (1 - y) * math.log(q)), rel=REL[dtype])


@pytest.mark.parametrize("y", [0.0, 1.0], ids=["y0", "y1"])
@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("form", ["keras-jax", "keras-torch"])
def test_keras_bce_gradient_passes_the_clip_inside_it_only(form, dtype, point, y):
    """d loss / dz = passed * d loss / dp * a(1 - a): passed is 0 outside the clip, 1 strictly inside it, and at a
    bound 1/2 on JAX, 1 on torch. d loss / dp is -y/p + (1 - y)/(1 - p) on JAX; torch's BCE backward writes it
    (p - y) / max(p(1 - p), 1e-12), and p(1 - p) >= ~1e-7 here, far above that eps. The gradient keeps the dtype."""
    a = _point(dtype, point)
    p, q = _clipped(dtype, a)
    dp = -y / p + (1 - y) / q if form == "keras-jax" else (p - y) / (p * q)
    one_minus_a = float(np.dtype(dtype).type(1) - a)
    want = PASSED[form][REGION[point]] * dp * float(a) * one_minus_a
    _, dz = _keras_bce(form, dtype, a, y)
    assert dz.dtype == dtype and dz.shape == (1, 1)
    assert float(dz[0, 0]) == pytest.approx(want, rel=REL[dtype], abs=0.0)


# ---------------------------------------------------------------------------------------------------- the Jitter

@pytest.mark.parametrize("seed, sign", [(0, 1.0), (0, -1.0), (1, 1.0), (1, -1.0)], ids=["0+", "0-", "1+", "1-"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_jitter_moves_every_nonzero_value_one_ulp_the_way_its_seed_draws(dtype, seed, sign):
    """The pattern is default_rng(seed)'s 0/1 draw for each value: 1 moves it one ulp up, 0 one ulp down (sign -1
    the other way round), towards +-inf whatever the value's sign; zeros stay zero. In the values' dtype."""
    a = np.array([[0.75, -3.0, 1.0], [0.0, 2.5e-3, -0.0], [7.0, -1e-30, 0.1]], dtype=dtype)
    draws = np.random.default_rng(seed).integers(0, 2, a.shape)
    up = draws == (1 if sign > 0 else 0)
    inf = np.asarray(np.inf, dtype=dtype)
    want = np.where(a == 0, a, np.where(up, np.nextafter(a, inf), np.nextafter(a, -inf)))
    got = Jitter(seed, sign)(a)
    assert got.dtype == dtype and np.array_equal(got, want)
    assert up[a != 0].any() and not up[a != 0].all()  # both directions occur: the check above tells them apart


# --------------------------------------------------------------------------------- float32 inside a float64 run

def test_float32_inside_rounds_float64_values_to_float32_and_keeps_the_dtype():
    a = np.array([0.1, 1 + E, -3.0, 0.0])
    got = Float32Inside()(a)
    assert got.dtype == np.float64 and got.tolist() == [float(np.float32(0.1)), 1.0, -3.0, 0.0]


def test_float32_inside_leaves_float32_values_as_they_are():
    a = np.array([0.1, -2.5, 3e38], dtype=np.float32)
    got = Float32Inside()(a)
    assert got.dtype == np.float32 and np.array_equal(got, a)


@QUIET
def test_float32_inside_leaves_values_beyond_float32s_range_as_they_are_quietly():
    """1e39 has no float32 (it would overflow to inf, with a warning): it is left as it is, and infinities and NaN
    pass through."""
    a = np.array([1e39, -1e39, 3.5e38, np.inf, -np.inf, np.nan])
    got = Float32Inside()(a)
    assert np.array_equal(got, a, equal_nan=True)


@pytest.mark.parametrize("x, W, b", [
    ([[1 + E, 1.0]], [1.0, -1.0], [0.0]),
    ([[1.0, 1.0]], [1 + E, -1.0], [0.0]),
    ([[-1.0, 0.0]], [1.0, 0.0], [1 + E]),
], ids=["x", "W", "b"])
def test_float32_inside_the_forward_pass_rounds_inputs_weights_and_biases(x, W, b):
    """z = x @ W + b = 2**-30 exactly in float64; the float32 copy of x, W or b has lost the 2**-30, and z is 0."""
    spec, params = _one_layer(W, b)
    x = np.array(x)
    assert Reference(spec, params).forward(x).tolist() == [[E]]
    assert Reference(spec, params, jitter=Float32Inside()).forward(x).tolist() == [[0.0]]


def test_float32_inside_the_loss_is_computed_in_float32_and_the_gradients_kept_in_float64():
    """One row, a = float32(0.1), y = 0: the loss a*a rounded to float32 (the float64 square of float32(0.1) needs 48
    bits); the gradient 2a (exact in float32) handed back in the run's float64."""
    spec, params = _one_layer([0.1, 0.0], [0.0])
    x, y = np.array([[1.0, 0.0]]), np.array([[0.0]])
    model = Reference(spec, params, jitter=Float32Inside())
    a = float(np.float32(0.1))
    loss = model.loss(x, y)
    assert np.float32(loss) == loss and loss != a * a and loss == pytest.approx(a * a, rel=REL["float32"])
    ((dW, db),) = model.gradients(x, y)
    assert dW.dtype == db.dtype == np.float64
    assert dW.tolist() == [[2 * a], [0.0]] and db.tolist() == [2 * a]


@QUIET
def test_float32_inside_a_loss_that_overflows_float32_is_inf_quietly():
    """a = 1e20 fits float32, a*a does not: the float32 loss is inf, without an overflow warning; the gradient 2a
    fits, and is finite."""
    spec, params = _one_layer([1e20, 0.0], [0.0])
    x, y = np.array([[1.0, 0.0]]), np.array([[0.0]])
    model = Reference(spec, params, jitter=Float32Inside())
    assert model.loss(x, y) == math.inf
    ((dW, db),) = model.gradients(x, y)
    assert dW.tolist() == [[2 * float(np.float32(1e20))], [0.0]] and db.tolist() == [2 * float(np.float32(1e20))]


@pytest.mark.parametrize("form", reference.FORMS["bce"])
def test_float32_inside_every_bce_form_is_computed_in_float32(form):
    """z = 0 on every row: a = 1/2 and each form's loss is ln 2, here rounded to float32; the gradients (a - y)/4
    cancel over XOR's rows exactly, and come back as float64 zeros."""
    spec, params = _one_layer([0.0, 0.0], [0.0], activation="sigmoid", loss="bce")
    x, y = xor_data()
    model = Reference(spec, params, Conventions(bce=form), Float32Inside())
    loss = model.loss(x, y)
    assert np.float32(loss) == loss and loss == pytest.approx(math.log(2), rel=REL["float32"])
    for g in _arrays(model.gradients(x, y)):
        assert g.dtype == np.float64 and not g.any()


# Linear 2-1 network, MSE, SGD lr 1/2, on XOR, from W = (1 + 2**-30, 1), b = 0: every value below is exact.
#   float64, step 1: z = (0, 1, 1 + E, 2 + E), loss 1 + E; gradients dW = (1 + E, 1 + E/2), db = 1 + E;
#                    then W = (1/2 + E/2, 1/2 - E/4), b = -1/2 - E/2
#            step 2: z = (-1/2 - E/2, -3E/4, 0, 1/2 - E/4), loss 5/8 + 7E/16 (+ 7E**2/32, below float64's ulp);
#                    gradients dW = (-1/4 - E/8, -1/4 - E/2), db = -1 - 3E/4; then W = (5/8 + 9E/16, 5/8), b = -E/8
#   float32 inside, step 1: W enters as (1, 1): z = (0, 1, 1, 2), loss 1, dW = (1, 1), db = 1;
#                    then (in float64) W = (1/2 + E, 1/2), b = -1/2
#            step 2: W enters as (1/2, 1/2): z = (-1/2, 0, 0, 1/2), loss 5/8, dW = (-1/4, -1/4), db = -1;
#                    then W = (5/8 + E, 5/8), b = 0
LINEAR = _one_layer([1 + E, 1.0], [0.0], optimizer=Optimizer("sgd", lr=0.5), steps=3)
LINEAR_EXACT = History(np.array([1 + E, 0.625 + 7 * E / 16]), {
    1: [(np.array([[0.5 + E / 2], [0.5 - E / 4]]), np.array([-0.5 - E / 2]))],
    2: [(np.array([[0.625 + 9 * E / 16], [0.625]]), np.array([-E / 8]))]})


def test_float32_inside_floor_is_what_float32_arithmetic_moves_each_part_by_hand():
    """Outputs and gradients at the initial weights, each off by E; params off by E/2 (W0, b) after update 1 and by
    7E/16 (W0) after update 2, never falling back: E/2; the loss off by E, then 7E/16: E both steps. steps=2 is
    what runs, not the spec's 3."""
    spec, params = LINEAR
    x, y = xor_data()
    floor = float32_inside_floor(spec, params, Conventions(), LINEAR_EXACT, (1, 2), x, y, steps=2)
    assert (floor.forward, floor.gradient) == (E, E)
    assert floor.params == {1: E / 2, 2: E / 2}
    assert floor.loss.tolist() == [E, E]


def test_float32_inside_floor_counts_a_nan_in_the_exact_run_as_no_evidence():
    """The exact run's loss at step 1 and its params after update 1 are NaN: 0 there, so the floor is 0, then what
    step 2 measures (7E/16 both)."""
    spec, params = LINEAR
    x, y = xor_data()
    nan = [(np.full((2, 1), np.nan), np.full(1, np.nan))]
    exact = History(np.array([np.nan, LINEAR_EXACT.loss[1]]), {1: nan, 2: LINEAR_EXACT.checkpoints[2]})
    floor = float32_inside_floor(spec, params, Conventions(), exact, (1, 2), x, y, steps=2)
    assert floor.params == {1: 0.0, 2: 7 * E / 16}
    assert floor.loss.tolist() == [0.0, 7 * E / 16]


def _saturated_keras_jax():
    """A sigmoid output at z = 30 on every row, BCE in Keras-on-JAX's form: a = 1 - 9.4e-14 in float64, 1.0 in
    float32, both above the clip's 1 - 1e-7, so every gradient is 0 and the params never move."""
    spec, params = _one_layer([0.0, 0.0], [30.0], activation="sigmoid", loss="bce",
                              optimizer=Optimizer("sgd", lr=0.5), steps=1)
    return spec, params, Conventions(bce="keras-jax")


def test_float32_inside_floor_is_measured_in_the_conventions_given():
    """Keras-on-JAX's zero gradient above the clip, in float32 and in float64: a gradient floor of 0 (torch's form
    would give (a - y)/4 in float64). The loss: the float32 clip bound 1 - 2**-23 against float64's 1 - 1e-7, on
    XOR's two y = 0 rows (-log(1 - p)) and two y = 1 rows (-log p)."""
    spec, params, conv = _saturated_keras_jax()
    x, y = xor_data()
    hi64, hi32 = 1 - 1e-7, float(np.float32(1 - 1e-7))
    loss64 = -(2 * math.log(1 - hi64) + 2 * math.log(hi64)) / 4
    loss32 = -(2 * math.log(2.0 ** -23) + 2 * math.log(hi32)) / 4
    floor = float32_inside_floor(spec, params, conv, History(np.array([loss64]), {1: params}), (1,), x, y, steps=1)
    assert floor.forward == pytest.approx(1 - 1 / (1 + math.exp(-30)), rel=1e-9)  # float32's a is exactly 1
    assert floor.gradient == 0.0 and floor.params == {1: 0.0}
    assert floor.loss.tolist() == [pytest.approx(abs(loss32 - loss64), rel=1e-5)]


# lr 50: the loss grows ~1e5-fold a step, past float32's range near step 10 and float64's near step 62
DIVERGING = get_preset("seed-numpy").replace(steps=100, optimizer=Optimizer("sgd", lr=50.0))


@QUIET
def test_float32_inside_floor_of_a_diverging_network_warns_of_nothing():
    spec, params = DIVERGING, init_params(DIVERGING)
    x, y = xor_data()
    floor = float32_inside_floor(spec, params, Conventions(), History(np.zeros(spec.steps)), (), x, y)
    assert floor.loss.shape == (spec.steps,) and floor.params == {}


# ----------------------------------------------------------------------------------------------- rounding floor

@QUIET
def test_rounding_floor_of_a_diverging_network_warns_of_nothing():
    """The jittered runs overflow on their way: that is divergence, not worth a warning (as in a sweep)."""
    spec, params = DIVERGING, init_params(DIVERGING)
    x, y = xor_data()
    floor = rounding_floor(spec, params, Conventions(), History(np.zeros(spec.steps)), (), x, y)
    assert floor.loss.shape == (spec.steps,) and floor.params == {}


def test_rounding_floor_reruns_the_reference_under_each_seed_in_both_directions(monkeypatch):
    """Two patterns, each in both directions (JITTER_RUNS), each run with a Jitter for the outputs and gradients at
    the initial weights and a fresh one, drawing the same patterns again, for training. So at an output of exactly
    1, whose ulp is 2**-52 above and 2**-53 below, one run of each pair moves it up: the forward floor is 2**-52.
    The gradients (2, 0 and 2) move by a few ulps of 2 at most."""
    made = []

    class Recorded(Jitter):
        def __init__(self, seed, sign=1.0):
            made.append((seed, sign))
            super().__init__(seed, sign)

    monkeypatch.setattr(reference, "Jitter", Recorded)
    spec, params = _one_layer([1.0, 0.0], [0.0], optimizer=Optimizer("sgd", lr=0.5), steps=1)
    exact = History(np.array([1.0]), {1: [(np.zeros((2, 1)), np.array([-1.0]))]})  # by hand: dW = (2, 0), db = 2
    floor = rounding_floor(spec, params, Conventions(), exact, (1,), np.array([[1.0, 0.0]]), np.array([[0.0]]))
    assert made == [(0, 1.0), (0, 1.0), (0, -1.0), (0, -1.0), (1, 1.0), (1, 1.0), (1, -1.0), (1, -1.0)]
    assert floor.forward == 2.0 ** -52
    assert 0 < floor.gradient <= 2.0 ** -49


def test_rounding_floor_is_measured_in_the_conventions_given():
    """Keras-on-JAX's form above its clip: the gradient is 0 jittered or not (torch's form would give (a - y)/4), so
    the gradient floor is 0 and the params never move; the outputs, a = 1 - 9.4e-14, move by one ulp, 2**-53."""
    spec, params, conv = _saturated_keras_jax()
    x, y = xor_data()
    hi = 1 - 1e-7
    loss = -(2 * math.log(1 - hi) + 2 * math.log(hi)) / 4
    floor = rounding_floor(spec, params, conv, History(np.array([loss]), {1: params}), (1,), x, y)
    assert floor.forward == 2.0 ** -53
    assert floor.gradient == 0.0 and floor.params == {1: 0.0}
    assert floor.loss.tolist() == [pytest.approx(0.0, abs=1e-14)]


# ---------------------------------------------------------------------------------------------------- Reference

# 2-2-1, relu then linear: hidden (0, 1/2), (1/2, 3/2), (1, 0), (3/2, 0); outputs -1/4, -1/4, 9/4, 13/4 (exact)
TWO_LAYERS = [(np.array([[1.0, -2.0], [0.5, 1.0]]), np.array([0.0, 0.5])),
              (np.array([[2.0], [-1.0]]), np.array([0.25]))]


@pytest.mark.parametrize("dtype", DTYPES)
def test_reference_forward_gives_the_output_layer_in_the_specs_dtype(dtype):
    spec = Spec(layers=(2, 2, 1), activations=("relu", "linear"), dtype=dtype)
    x, _ = xor_data()  # float64 rows, cast to the spec's dtype
    out = Reference(spec, TWO_LAYERS).forward(x)
    assert out.dtype == dtype and out.tolist() == [[-0.25], [-0.25], [2.25], [3.25]]


@pytest.mark.parametrize("dtype", DTYPES)
def test_reference_loss_and_gradients_are_computed_in_the_specs_dtype(dtype):
    """d = (-1/4, -5/4, 5/4, 13/4): loss 55/16; every gradient in the spec's dtype though x and y come in float64."""
    spec = Spec(layers=(2, 2, 1), activations=("relu", "linear"), dtype=dtype)
    x, y = xor_data()
    model = Reference(spec, TWO_LAYERS)
    assert model.loss(x, y) == 55 / 16
    assert [g.dtype for g in _arrays(model.gradients(x, y))] == [np.dtype(dtype)] * 4


def test_a_float32_reference_trains_in_float32_and_hands_back_float64_params():
    """Every step's loss a float32 value (float64 arithmetic on these outputs would need more bits); params() in
    float64, holding the float32 values."""
    spec, params = _one_layer([0.1, 0.2], [0.3], dtype="float32")
    x, y = xor_data()
    model = Reference(spec, params)
    h = model.train(x, y, steps=2, checkpoints=(1,))
    assert np.array_equal(h.loss.astype(np.float32), h.loss)
    for got in (model.params(), h.checkpoints[1]):
        assert [a.dtype for a in _arrays(got)] == [np.float64] * 2
    fresh = Reference(spec, params).params()
    assert fresh[0][0].tolist() == [[float(np.float32(0.1))], [float(np.float32(0.2))]]
    assert fresh[0][1].tolist() == [float(np.float32(0.3))]


def test_minibatch_training_visits_the_rows_in_turn_across_calls():
    """batch_size 1, lr 1/2, from W = 0, b = 0: update k trains on row k. Row 0 (y 0): z 0, loss 0. Row 1 (x (0, 1),
    y 1): z 0, loss 1, dW = (0, -2), db = -2, so W = (0, 1), b = 1. Row 2 (x (1, 0), y 1): z 1, loss 0. Row 3 (x (1,
    1), y 0): z 2, loss 4, dW = (4, 4), db = 4, so W = (-2, -1), b = -1. Two calls of two steps carry on."""
    spec, params = _one_layer([0.0, 0.0], [0.0], optimizer=Optimizer("sgd", lr=0.5), batch_size=1, steps=2)
    x, y = xor_data()
    model = Reference(spec, params)
    first = model.train(x, y, checkpoints=(2,))
    second = model.train(x, y, checkpoints=(2,))
    assert first.loss.tolist() == [0.0, 1.0] and second.loss.tolist() == [0.0, 4.0] and model.steps_done == 4
    (W, b), = first.checkpoints[2]
    assert W.tolist() == [[0.0], [1.0]] and b.tolist() == [1.0]
    (W, b), = second.checkpoints[2]
    assert W.tolist() == [[-2.0], [-1.0]] and b.tolist() == [-1.0]


def test_train_reports_the_seconds_it_took():
    spec, params = _one_layer([0.5, -0.5], [0.0], steps=20)
    x, y = xor_data()
    start = time.perf_counter()
    h = Reference(spec, params).train(x, y)
    elapsed = time.perf_counter() - start
    assert 0 < h.wall_time <= elapsed


# -------------------------------------------------------------------------------------------------------- Adam

ADAM_FORMULA = {"torch": "eps-on-v-hat", "optax": "eps-on-v-hat", "textbook": "eps-on-v-hat", "keras": "eps-hat",
                "keras-torch": "eps-hat"}


@pytest.mark.parametrize("form", reference.FORMS["adam"])
def test_adam_forms_over_three_steps_follow_their_formulas(form):
    """m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2 at steps t = 1, 2, 3, then either Kingma & Ba's
    w -= lr m/(1 - b1^t) / (sqrt(v/(1 - b2^t)) + eps) (torch, optax, textbook) or Keras' eps-hat,
    w -= lr sqrt(1 - b2^t)/(1 - b1^t) m / (sqrt(v) + eps). A large eps, so where it sits shows."""
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-3
    gs = [np.array([0.5, -2.0]), np.array([1.5, 0.25]), np.array([-1.0, 3.0])]
    w = np.array([1.0, -1.0])
    opt = reference.Optimizer(Optimizer("adam", lr=lr, beta1=b1, beta2=b2, epsilon=eps), Conventions(adam=form), [w])
    want, m, v = [1.0, -1.0], [0.0, 0.0], [0.0, 0.0]
    for t, g in enumerate(gs, start=1):
        opt.step([w], [g])
        for i, gi in enumerate(g.tolist()):
            m[i] = b1 * m[i] + (1 - b1) * gi
            v[i] = b2 * v[i] + (1 - b2) * gi * gi
            if ADAM_FORMULA[form] == "eps-hat":
                want[i] -= lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m[i] / (math.sqrt(v[i]) + eps)
            else:
                want[i] -= lr * (m[i] / (1 - b1 ** t)) / (math.sqrt(v[i] / (1 - b2 ** t)) + eps)
        assert w.tolist() == pytest.approx(want, rel=1e-12), t
