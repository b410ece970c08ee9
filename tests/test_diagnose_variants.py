"""The diagnosis's hypotheses, each worked out by hand: which catalogued mistakes `variants` lists for a spec (written
out literally), which two at once `pairs` tries and where it stops, how `_merge` joins two, the buggy optimizer's
updates (`BugOptimizer`, step by step from the documented mistake), the buggy reference (`Variant`: its layout,
frozen arrays, wrong derivatives and scales, dtypes and train() calls, against the reference with the mistake
applied by hand), and `_mixed`, the loss in one form and its gradients in another."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from xor_rosetta.checks.battery import Battery
from xor_rosetta.checks.diagnose import PAIR_STEPS, Bug, BugOptimizer, Variant, _merge, _mixed, pairs, variants
from xor_rosetta.checks.scripts import Record
from xor_rosetta.data import xor_data
from xor_rosetta.interface import Conventions
from xor_rosetta.reference import Optimizer as RefOptimizer, Reference
from xor_rosetta.spec import Optimizer, Spec

pytestmark = pytest.mark.quick  # the quick tier: pytest -m quick

X, Y = xor_data()
REL = 1e-12  # float64, a few roundings apart at most


def _params(spec, seed=7):
    """Weights and biases uniform in (-1, 1): nothing zero, nothing symmetric."""
    rng = np.random.default_rng(seed)
    return [(rng.uniform(-1, 1, (n_in, n_out)), rng.uniform(-1, 1, n_out))
            for n_in, n_out in zip(spec.layers[:-1], spec.layers[1:])]


def _flat(params):
    return [a for Wb in params for a in Wb]


def _close(got, want):
    """Two lists of (W, b) (or of arrays), equal to REL."""
    got, want = _flat(got) if isinstance(got[0], tuple) else got, _flat(want) if isinstance(want[0], tuple) else want
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=REL, atol=0)


# ------------------------------------------------------------------------------------------------------ variants

T = ("transposed-weights", "each W read as (fan_out, fan_in)", Bug(layout=True))
NO_BIAS = ("bias-not-updated", "no bias updated", Bug(frozen="biases"))
SUMMED = [("loss-summed", "loss and gradients summed over the batch", Bug(scale=("m", "m"))),
          ("loss-summed", "gradients summed over the batch", Bug(scale=("", "m")))]
HALVED = [("loss-halved", "loss and gradients halved", Bug(scale=("half", "half"))),
          ("loss-halved", "gradients halved", Bug(scale=("", "half")))]
SIGMOID = [("activation-derivative", "sigmoid′ computed from z (z(1 − z))", Bug(derivative=("sigmoid", "z"))),
           ("activation-derivative", "sigmoid′ left out", Bug(derivative=("sigmoid", "one")))]
TWICE = ("sigmoid-twice", "σ′ applied again after BCE's (a − y)/m", Bug(sigmoid_twice=True))
LR2 = ("lr-twice", "every step scaled by lr²", Bug(lr_twice=True))
SIGN = ("wrong-sign", "the step added instead of subtracted", Bug(sign=True))


def _frozen_b(depth):
    return [("bias-not-updated", f"b{i} never updated", Bug(frozen=f"b{i}")) for i in range(depth)]


def _negated(depth):
    out = []
    for i in range(depth):
        out += [("gradient-sign", f"the gradient of W{i} negated", Bug(negate=(2 * i,))),
                ("gradient-sign", f"the gradient of b{i} negated", Bug(negate=(2 * i + 1,))),
                ("gradient-sign", f"the gradients of layer {i} (W{i}, b{i}) negated", Bug(negate=(2 * i, 2 * i + 1)))]
    return out


ONE_LAYER_BCE = Spec(layers=(2, 1), activations=("sigmoid",), loss="bce", steps=3)
SEED_NUMPY = Spec(layers=(2, 5, 1), activations=("tanh", "linear"), loss="mse", steps=3)
DEEP_ADAM = Spec(layers=(2, 4, 4, 1), activations=("relu", "relu", "sigmoid"), loss="bce",
                 optimizer=Optimizer("adam", lr=1e-3), steps=3)
MOMENTUM = Spec(layers=(2, 3, 1), activations=("sigmoid", "linear"), loss="mse",
                optimizer=Optimizer("sgd", lr=0.05, momentum=0.9), steps=3)

VARIANTS = {
    "depth1-sigmoid-bce-sgd": (ONE_LAYER_BCE, "update", [
        T, NO_BIAS, ("bias-not-updated", "b0 never updated", Bug(frozen="b0")), *SUMMED, *SIGMOID, TWICE, LR2, SIGN,
        ("gradient-sign", "the gradient of W0 negated", Bug(negate=(0,))),
        ("gradient-sign", "the gradient of b0 negated", Bug(negate=(1,))),
        ("gradient-sign", "the gradients of layer 0 (W0, b0) negated", Bug(negate=(0, 1)))]),
    "depth2-tanh-linear-mse-sgd": (SEED_NUMPY, "update", [
        T, NO_BIAS, ("bias-not-updated", "b0 never updated", Bug(frozen="b0")),
        ("bias-not-updated", "b1 never updated", Bug(frozen="b1")),
        ("only-last-layer", "only W1, b1 updated", Bug(frozen="all-but-last")), *SUMMED, *HALVED,
        ("activation-derivative", "tanh′ computed from z (1 − z²)", Bug(derivative=("tanh", "z"))),
        ("activation-derivative", "tanh′ left out", Bug(derivative=("tanh", "one"))), LR2, SIGN,
        ("gradient-sign", "the gradient of W0 negated", Bug(negate=(0,))),
        ("gradient-sign", "the gradient of b0 negated", Bug(negate=(1,))),
        ("gradient-sign", "the gradients of layer 0 (W0, b0) negated", Bug(negate=(0, 1))),
        ("gradient-sign", "the gradient of W1 negated", Bug(negate=(2,))),
        ("gradient-sign", "the gradient of b1 negated", Bug(negate=(3,))),
        ("gradient-sign", "the gradients of layer 1 (W1, b1) negated", Bug(negate=(2, 3)))]),
    "depth3-relu-sigmoid-bce-adam": (DEEP_ADAM, "update", [
        T, NO_BIAS, *_frozen_b(3), ("only-last-layer", "only W2, b2 updated", Bug(frozen="all-but-last")), *SUMMED,
        ("activation-derivative", "relu′ left out", Bug(derivative=("relu", "one"))), *SIGMOID, TWICE,
        ("adam-no-bias-correction", "m and v not bias-corrected", Bug(adam="no-bias-correction")),
        ("adam-eps-in-sqrt", "√(v̂ + ε)", Bug(adam="eps-in-sqrt")), LR2, SIGN, *_negated(3)]),
    "depth2-sigmoid-linear-mse-momentum": (MOMENTUM, "update", [
        T, NO_BIAS, *_frozen_b(2), ("only-last-layer", "only W1, b1 updated", Bug(frozen="all-but-last")), *SUMMED,
        *HALVED, *SIGMOID,
        ("lr-twice", "v = μv + lr·g, then w −= lr·v", Bug(momentum="lr-in-both")),
        ("lr-twice", "Keras' v = μv − lr·g with torch's w −= lr·v", Bug(momentum="keras-v-torch-step")),
        ("lr-twice", "torch's v = μv + g with Keras' w += v", Bug(momentum="torch-v-keras-step")),
        ("momentum-dampened", "v = μv + (1 − μ)g", Bug(momentum="dampened")), SIGN, *_negated(2)]),
    "continuation": (MOMENTUM, "continuation", [
        ("state-reset", "optimizer state started again by each train() call", Bug(reset="optimizer")),
        ("minibatch-order", "the minibatch window started again by each train() call", Bug(reset="window"))]),
}


@pytest.mark.parametrize("case", list(VARIANTS))
def test_variants_lists_each_mistake_that_can_show_in_the_spec(case):
    """The exact (cause, label, bug) list, in order: one frozen bias per layer, only-last-layer from two layers,
    MSE's halving, each activation's derivative (none for linear; relu's has no z formula), BCE's σ′ twice, Adam's
    two, the momentum forms or lr², the sign, each layer's gradient signs; continuation: the two resets only."""
    spec, check, want = VARIANTS[case]
    assert variants(spec, check) == want


# --------------------------------------------------------------------------------------------------------- pairs

def test_pairs_join_every_two_causes_that_change_different_things():
    """A one-layer BCE spec: 13 variants, 78 two at a time, less the 6 within one cause (the two frozen biases,
    the two sums, the two sigmoid derivatives, three of the gradient signs): 72, each labelled 'one, and two'."""
    got = pairs(ONE_LAYER_BCE, "update", 1)
    assert len(got) == math.comb(13, 2) - 6 == 72
    assert got[0] == (("transposed-weights", "bias-not-updated"), "each W read as (fan_out, fan_in), and no bias "
                      "updated", Bug(layout=True, frozen="biases"))
    assert got[-1] == (("wrong-sign", "gradient-sign"), "the step added instead of subtracted, and the gradients of "
                       "layer 0 (W0, b0) negated", Bug(sign=True, negate=(0, 1)))
    assert all(c1 != c2 for (c1, c2), _, _ in got)


@pytest.mark.parametrize("spec, causes", [(SEED_NUMPY, {"loss-summed", "loss-halved"}),
                                          (DEEP_ADAM, {"adam-no-bias-correction", "adam-eps-in-sqrt"}),
                                          (MOMENTUM, {"lr-twice", "momentum-dampened"})],
                         ids=["summed-and-halved", "two-adam-mistakes", "two-momentum-mistakes"])
def test_pairs_never_join_two_causes_that_change_the_same_thing(spec, causes):
    """Two causes that both set the scale, Adam's correction or the momentum form: never tried together."""
    got = pairs(spec, "update", 1)
    assert got and not [p for p in got if set(p[0]) == causes]


@pytest.mark.parametrize("steps, some", [(1, True), (PAIR_STEPS, True), (PAIR_STEPS + 1, False), (10_000, False)],
                         ids=["one", "PAIR_STEPS", "PAIR_STEPS+1", "long"])
def test_pairs_are_tried_on_short_scripts_only(steps, some):
    """Up to PAIR_STEPS (3) updates, pairs; one more, none."""
    assert PAIR_STEPS == 3
    assert bool(pairs(SEED_NUMPY, "update", steps)) is some


@pytest.mark.parametrize("steps", [1, 10_000])
def test_continuation_has_its_one_pair_at_any_length(steps):
    """Both resets at once, whatever the script's length."""
    assert pairs(MOMENTUM, "continuation", steps) == [
        (("state-reset", "minibatch-order"),
         "optimizer state and minibatch window both started again by each train() call",
         Bug(reset="optimizer+window"))]


# --------------------------------------------------------------------------------------------------------- _merge

@pytest.mark.parametrize("one, two, want", [
    (Bug(layout=True), Bug(sign=True), Bug(layout=True, sign=True)),
    (Bug(frozen="b0"), Bug(negate=(0, 1)), Bug(frozen="b0", negate=(0, 1))),
    (Bug(scale=("m", "m")), Bug(derivative=("tanh", "z")), Bug(scale=("m", "m"), derivative=("tanh", "z"))),
    (Bug(adam="eps-in-sqrt"), Bug(lr_twice=True), Bug(adam="eps-in-sqrt", lr_twice=True)),
    (Bug(), Bug(sigmoid_twice=True), Bug(sigmoid_twice=True)),
    (Bug(scale=("m", "m")), Bug(scale=("", "half")), None),
    (Bug(adam="no-bias-correction"), Bug(adam="eps-in-sqrt"), None),
    (Bug(momentum="dampened"), Bug(momentum="lr-in-both"), None),
    (Bug(derivative=("tanh", "z")), Bug(derivative=("sigmoid", "one")), None),
    (Bug(frozen="biases"), Bug(frozen="b0", sign=True), None),
], ids=["layout+sign", "frozen+negate", "scale+derivative", "adam+lr2", "blank+twice", "two-scales", "two-adams",
        "two-momenta", "two-derivatives", "two-frozen"])
def test_merge_joins_two_mistakes_unless_they_set_the_same_field(one, two, want):
    """Each field set by one of them is taken from it; a field both set: None, whatever else differs."""
    assert _merge(one, two) == want
    assert _merge(two, one) == want


# ------------------------------------------------------------------------------------------------- BugOptimizer

W0 = np.array([1.0, -2.0, 0.5])
G1, G2 = np.array([0.5, -0.75, 2.0]), np.array([0.25, 1.5, -1.0])  # two steps' gradients (dyadic: exact sums)


def _two_steps(opt, bug, conv=Conventions()):
    w = W0.copy()
    o = BugOptimizer(opt, conv, [w], bug)
    out = []
    for g in (G1, G2):
        o.step([w], [g.copy()])
        out.append(w.copy())
    return out


@pytest.mark.parametrize("bug, lr", [(Bug(), 0.5), (Bug(lr_twice=True), 0.25), (Bug(sign=True), -0.5),
                                     (Bug(lr_twice=True, sign=True), -0.25)],
                         ids=["none", "lr-twice", "sign", "lr-twice-and-sign"])
def test_sgd_step_is_w_minus_the_buggy_lr_times_g(bug, lr):
    """Plain SGD at lr 0.5: w − lr·g, lr² = 0.25 when lr is applied twice, the sign flipped when the step climbs."""
    got = _two_steps(Optimizer("sgd", lr=0.5), bug)
    np.testing.assert_array_equal(got[0], W0 - lr * G1)
    np.testing.assert_array_equal(got[1], W0 - lr * G1 - lr * G2)


def _momentum_by_hand(kind, lr, mu):
    w, v, out = W0.copy(), np.zeros(3), []
    for g in (G1, G2):
        if kind == "lr-in-both":
            v = mu * v + lr * g
            w = w - lr * v
        elif kind == "keras-v-torch-step":
            v = mu * v - lr * g
            w = w - lr * v
        elif kind == "torch-v-keras-step":
            v = mu * v + g
            w = w + v
        else:  # dampened
            v = mu * v + (1 - mu) * g
            w = w - lr * v
        out.append(w)
    return out


@pytest.mark.parametrize("kind", ["lr-in-both", "keras-v-torch-step", "torch-v-keras-step", "dampened"])
def test_momentum_bug_updates_two_steps_as_documented(kind):
    """lr 0.25, μ 0.5 (dyadic: every value exact): v = μv + lr·g, w −= lr·v; v = μv − lr·g, w −= lr·v;
    v = μv + g, w += v; v = μv + (1 − μ)g, w −= lr·v; the velocity carried into the second step."""
    got = _two_steps(Optimizer("sgd", lr=0.25, momentum=0.5), Bug(momentum=kind))
    for g, w in zip(got, _momentum_by_hand(kind, 0.25, 0.5)):
        np.testing.assert_array_equal(g, w)


def _adam_by_hand(kind, lr, b1, b2, eps):
    w, m, v, out = W0.copy(), np.zeros(3), np.zeros(3), []
    for t, g in enumerate((G1, G2), start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        if kind == "no-bias-correction":
            w = w - lr * m / (np.sqrt(v) + eps)
        else:  # eps-in-sqrt
            m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
            w = w - lr * m_hat / np.sqrt(v_hat + eps)
        out.append(w)
    return out


@pytest.mark.parametrize("kind", ["no-bias-correction", "eps-in-sqrt"])
def test_adam_bug_updates_two_steps_as_documented(kind):
    """m and v used without their corrections 1 − β1ᵗ, 1 − β2ᵗ; or √(v̂ + ε): two steps, t = 1 then 2, with an ε of
    0.01 (large enough to show where it goes) and unequal gradients."""
    opt = Optimizer("adam", lr=0.1, beta1=0.9, beta2=0.999, epsilon=0.01)
    got = _two_steps(opt, Bug(adam=kind))
    for g, w in zip(got, _adam_by_hand(kind, 0.1, 0.9, 0.999, 0.01)):
        np.testing.assert_allclose(g, w, rtol=REL, atol=0)


@pytest.mark.parametrize("opt, bug, conv", [
    (Optimizer("adam", lr=0.1, epsilon=0.01), Bug(), Conventions(adam="keras")),
    (Optimizer("adam", lr=0.1, epsilon=0.01), Bug(momentum="dampened"), Conventions(adam="keras")),
    (Optimizer("sgd", lr=0.25, momentum=0.5), Bug(adam="eps-in-sqrt"), Conventions(momentum="keras")),
    (Optimizer("sgd", lr=0.25, momentum=0.5), Bug(), Conventions(momentum="keras")),
    (Optimizer("sgd", lr=0.25), Bug(momentum="dampened"), Conventions()),
], ids=["adam-no-bug", "adam-momentum-bug", "momentum-adam-bug", "momentum-no-bug", "sgd-momentum-bug"])
def test_a_bug_of_another_optimizer_leaves_the_conventions_form(opt, bug, conv):
    """Without a mistake in its own optimizer, BugOptimizer steps as the reference's, in the conventions' form
    (Keras' Adam, with ε on √v, is not the textbook's that the Adam mistakes are written in)."""
    want = W0.copy()
    ref = RefOptimizer(opt, conv, [want])
    got = _two_steps(opt, bug, conv)
    for g in (G1, G2):
        ref.step([want], [g.copy()])
    np.testing.assert_array_equal(got[1], want)


# ------------------------------------------------------------------------------------------------------ Variant

def test_variant_computes_in_the_conventions_it_is_given():
    """BCE at z = 40 where y = 0: from the logits (Conventions(bce='logits')) the loss is 40; torch's default
    form from the probabilities, where 1 − σ(40) rounds to 0, clamps log(0) at −100."""
    spec = Spec(layers=(2, 1), activations=("sigmoid",), loss="bce")
    params = [(np.array([[20.0], [20.0]]), np.array([0.0]))]
    x, y = np.array([[1.0, 1.0]]), np.array([[0.0]])
    assert Variant(spec, params, Conventions(bce="logits"), Bug()).loss(x, y) == 40.0
    assert Variant(spec, params, Conventions(), Bug()).loss(x, y) == 100.0


TWO_LAYERS = Spec(layers=(2, 3, 1), activations=("tanh", "linear"), loss="mse", steps=3)


@pytest.mark.parametrize("frozen, zero", [("biases", {1, 3}), ("all-but-last", {0, 1}), ("b0", {1}), ("b1", {3}),
                                          ("", set())])
def test_frozen_arrays_get_no_gradient(frozen, zero):
    """A frozen array's gradient is zero (so no optimizer moves it); every other is the reference's."""
    params = _params(TWO_LAYERS)
    got = _flat(Variant(TWO_LAYERS, params, Conventions(), Bug(frozen=frozen)).gradients(X, Y))
    want = _flat(Reference(TWO_LAYERS, params).gradients(X, Y))
    for i, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_array_equal(g, np.zeros_like(w) if i in zero else w)


def test_frozen_bias_keeps_its_value_through_training():
    """b1 never updated: after two SGD steps b1 is still the b1 given; W1 moved."""
    params = _params(TWO_LAYERS)
    v = Variant(TWO_LAYERS, params, Conventions(), Bug(frozen="b1"))
    v.train(X, Y, steps=2)
    (_, _), (W1, b1) = v.params()
    np.testing.assert_array_equal(b1, params[1][1])
    assert not np.array_equal(W1, params[1][0])


LAYOUT = Spec(layers=(2, 3, 3, 1), activations=("tanh", "tanh", "linear"), loss="mse", steps=3)


def _read_transposed(params):
    """How an implementation that keeps W as (fan_out, fan_in) reads the canonical W's buffer: W.reshape(out, in),
    used transposed."""
    return [(W.reshape(W.shape[1], W.shape[0]).T, b) for W, b in params]


def test_layout_variant_computes_with_each_w_read_as_fan_out_by_fan_in():
    """Its forward pass is the reference's with each W's buffer read as (fan_out, fan_in); params() gives back
    the weights it was given, bit for bit (the same buffer, reshaped back)."""
    params = _params(LAYOUT)
    v = Variant(LAYOUT, params, Conventions(), Bug(layout=True))
    np.testing.assert_array_equal(v.forward(X), Reference(LAYOUT, _read_transposed(params)).forward(X))
    got = v.params()
    assert [(W.dtype, b.dtype) for W, b in got] == [(np.float64, np.float64)] * 3
    for (W, b), (W0_, b0_) in zip(got, params):
        np.testing.assert_array_equal(W, W0_)
        np.testing.assert_array_equal(b, b0_)


def test_layout_variant_reports_gradients_through_the_same_buffer():
    """Its gradients are the reference's (at the weights as it reads them), each dW of its (fan_out, fan_in)
    buffer handed back reshaped to (fan_in, fan_out): dW.T, reshaped; the square W1's is dW1.T."""
    params = _params(LAYOUT)
    got = Variant(LAYOUT, params, Conventions(), Bug(layout=True)).gradients(X, Y)
    want = Reference(LAYOUT, _read_transposed(params)).gradients(X, Y)
    for (gW, gb), (dW, db) in zip(got, want):
        np.testing.assert_array_equal(gW, dW.T.reshape(dW.shape))
        np.testing.assert_array_equal(gb, db)
    np.testing.assert_array_equal(got[1][0], want[1][0].T)


def test_variant_reports_float64_params_for_a_float32_spec():
    """params() of a float32 run: canonical float64 arrays holding the float32 values."""
    spec = TWO_LAYERS.replace(dtype="float32")
    params = _params(spec)
    got = Variant(spec, params, Conventions(), Bug()).params()
    for (W, b), (W0_, b0_) in zip(got, params):
        assert W.dtype == b.dtype == np.float64
        np.testing.assert_array_equal(W, W0_.astype(np.float32).astype(np.float64))
        np.testing.assert_array_equal(b, b0_.astype(np.float32).astype(np.float64))


def test_variant_computes_in_the_spec_dtype_whatever_it_is_given():
    """float64 x and y into a float32 run: the loss's gradients are float32, as the reference's are."""
    spec = TWO_LAYERS.replace(dtype="float32")
    _, grads = Variant(spec, _params(spec), Conventions(), Bug(derivative=("tanh", "z")))._loss_and_grads(X, Y)
    assert [g.dtype for g in grads] == [np.float32] * 4


ACT = {"tanh": np.tanh, "sigmoid": lambda z: 1 / (1 + np.exp(-z)), "relu": lambda z: np.maximum(z, 0),
       "linear": lambda z: z}
DERIV = {"tanh": lambda z, a: 1 - a * a, "sigmoid": lambda z, a: a * (1 - a),
         "relu": lambda z, a: (z > 0).astype(z.dtype), "linear": lambda z, a: np.ones_like(z)}


def _mse_backprop(spec, params, derivs):
    """MSE's loss and gradients by hand, with derivs[i](z, a) as layer i's activation derivative."""
    hs, zs = [X], []
    for (W, b), act in zip(params, spec.activations):
        zs.append(hs[-1] @ W + b)
        hs.append(ACT[act](zs[-1]))
    d = hs[-1] - Y
    dz = (2 * d / Y.size) * derivs[-1](zs[-1], hs[-1])
    grads = [None] * len(params)
    for i in reversed(range(len(params))):
        grads[i] = (hs[i].T @ dz, dz.sum(axis=0))
        if i:
            dz = (dz @ params[i][0].T) * derivs[i - 1](zs[i - 1], hs[i])
    return float(np.mean(d * d)), grads


@pytest.mark.parametrize("how, hidden", [("z", lambda z, a: 1 - z * z), ("one", lambda z, a: np.ones_like(z))],
                         ids=["from-z", "left-out"])
def test_hidden_derivative_bug_changes_the_hidden_layers_gradients(how, hidden):
    """tanh′ as 1 − z² (from the pre-activation) or left out (1), in the hidden layer; the loss stays MSE's."""
    params = _params(TWO_LAYERS)
    loss, grads = _mse_backprop(TWO_LAYERS, params, [hidden, DERIV["linear"]])
    v = Variant(TWO_LAYERS, params, Conventions(), Bug(derivative=("tanh", how)))
    assert v.loss(X, Y) == pytest.approx(loss, rel=REL)
    _close(v.gradients(X, Y), grads)


@pytest.mark.parametrize("act", ["relu", "linear"])
def test_derivative_from_z_changes_nothing_where_it_already_reads_z(act):
    """relu′ and linear′ are written in terms of z: computing them 'from z' is the reference's derivative."""
    spec = TWO_LAYERS.replace(activations=(act, "linear"))
    params = _params(spec)
    got = Variant(spec, params, Conventions(), Bug(derivative=(act, "z"))).gradients(X, Y)
    want = Reference(spec, params).gradients(X, Y)
    for a, b in zip(_flat(got), _flat(want)):
        np.testing.assert_array_equal(a, b)


DEEP_MSE = Spec(layers=(2, 3, 2, 1), activations=("tanh", "tanh", "sigmoid"), loss="mse", steps=3)


@pytest.mark.parametrize("how, out", [("z", lambda z, a: z * (1 - z)), ("one", lambda z, a: np.ones_like(z))],
                         ids=["from-z", "left-out"])
def test_output_derivative_bug_under_mse(how, out):
    """MSE on a sigmoid output with σ′ computed from z, z(1 − z), or left out: dL/dz = 2(a − y)/m · that, on a
    three-layer network (the output's z and a, not a hidden layer's); the loss is still mean((a − y)²)."""
    params = _params(DEEP_MSE)
    loss, grads = _mse_backprop(DEEP_MSE, params, [DERIV["tanh"], DERIV["tanh"], out])
    v = Variant(DEEP_MSE, params, Conventions(), Bug(derivative=("sigmoid", how)))
    assert v.loss(X, Y) == pytest.approx(loss, rel=REL)
    _close(v.gradients(X, Y), grads)


def test_sigmoid_derivative_bug_under_bce_leaves_the_output_alone():
    """BCE on a sigmoid output: σ′ is inside BCE's (a − y)/m, so a wrong σ′ shows in the hidden sigmoid layer only;
    the loss is BCE's."""
    spec = Spec(layers=(2, 3, 1), activations=("sigmoid", "sigmoid"), loss="bce", steps=3)
    params, conv = _params(spec), Conventions(bce="logits")
    (W0_, b0_), (W1, b1) = params
    z0 = X @ W0_ + b0_
    h = ACT["sigmoid"](z0)
    a = ACT["sigmoid"](h @ W1 + b1)
    dz1 = (a - Y) / Y.size
    dz0 = (dz1 @ W1.T) * (z0 * (1 - z0))
    v = Variant(spec, params, conv, Bug(derivative=("sigmoid", "z")))
    assert v.loss(X, Y) == Reference(spec, params, conv).loss(X, Y)
    _close(v.gradients(X, Y), [(X.T @ dz0, dz0.sum(axis=0)), (h.T @ dz1, dz1.sum(axis=0))])


@pytest.mark.parametrize("bug, loss_factor, factors", [
    (Bug(scale=("m", "m")), 4, [4, 4, 4, 4]),
    (Bug(scale=("", "m")), 1, [4, 4, 4, 4]),
    (Bug(scale=("half", "half")), 0.5, [0.5] * 4),
    (Bug(scale=("", "half")), 1, [0.5] * 4),
    (Bug(negate=(2,)), 1, [1, 1, -1, 1]),
    (Bug(negate=(0, 1)), 1, [-1, -1, 1, 1]),
], ids=["summed", "grads-summed", "halved", "grads-halved", "negate-W1", "negate-layer0"])
def test_scale_and_sign_bugs_multiply_the_reference(bug, loss_factor, factors):
    """Summed over the 4 rows (×4), halved (×½), a gradient negated (×−1): the loss and each array by its factor."""
    params = _params(TWO_LAYERS)
    v, ref = Variant(TWO_LAYERS, params, Conventions(), bug), Reference(TWO_LAYERS, params)
    assert v.loss(X, Y) == loss_factor * ref.loss(X, Y)
    for g, w, f in zip(_flat(v.gradients(X, Y)), _flat(ref.gradients(X, Y)), factors):
        np.testing.assert_array_equal(g, f * w)


def test_train_runs_the_spec_steps_by_default_and_counts_updates():
    """train() with no steps runs spec.steps (3), as the reference does; steps_done counts over calls."""
    params = _params(TWO_LAYERS)
    v = Variant(TWO_LAYERS, params, Conventions(), Bug())
    h = v.train(X, Y)
    np.testing.assert_array_equal(h.loss, Reference(TWO_LAYERS, params).train(X, Y).loss)
    assert v.steps_done == 3
    v.train(X, Y, steps=2)
    assert v.steps_done == 5


RESET = Spec(layers=(2, 3, 1), activations=("tanh", "linear"), loss="mse",
             optimizer=Optimizer("sgd", lr=0.1, momentum=0.9), batch_size=3, steps=4)


@pytest.mark.parametrize("reset", ["", "optimizer", "window", "optimizer+window"])
def test_reset_starts_again_what_it_names_at_each_train_call(reset):
    """Two calls of 2 steps (momentum, batches of 3): the second call against the reference continued with a fresh
    velocity (optimizer) and/or from the first window, rows [0, 1, 2] (window); with no reset, one run of 4."""
    params = _params(RESET)
    v = Variant(RESET, params, Conventions(), Bug(reset=reset))
    first = v.train(X, Y, steps=2, checkpoints=(2,))
    second = v.train(X, Y, steps=2, checkpoints=(2,))
    ref = Reference(RESET, params)
    want1 = ref.train(X, Y, steps=2, checkpoints=(2,))
    if "optimizer" in reset:
        ref = Reference(RESET, want1.checkpoints[2])
        ref.steps_done = 2
    if "window" in reset:
        ref.steps_done = 0
    want2 = ref.train(X, Y, steps=2, checkpoints=(2,))
    for got, want in ((first, want1), (second, want2)):
        np.testing.assert_array_equal(got.loss, want.loss)
        for a, b in zip(_flat(got.checkpoints[2]), _flat(want.checkpoints[2])):
            np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------------------------------------- _mixed

@pytest.fixture(scope="module")
def bce():
    """The battery's BCE script (row 0 saturated: z = 30 where y = 0), on the reference."""
    b = Battery(Reference, level="quick")
    return b, b.script("bce")


def _record(b, script, loss_form, grad_form):
    loss, grads = (b.reference(script, Conventions(bce=f)) for f in (loss_form, grad_form))
    return Record(params0=loss.params0, outputs=loss.outputs, loss0=loss.loss0, grads=grads.grads)


@pytest.mark.parametrize("loss_form, want", [
    ("keras-jax", "its loss agrees with the keras-jax/keras-torch form of bce only, its gradients with the "
                  "logits/optax form only"),
    ("probs", "its loss agrees with the probs form of bce only, its gradients with the logits/optax form only"),
], ids=["clipped-loss", "probs-loss"])
def test_mixed_names_every_form_each_part_agrees_with(bce, loss_form, want):
    """The loss of a form that clips p to [1e-7, 1 − 1e-7] (Keras' two: −log(1e-7) on row 0), or of torch's probs
    form, with the gradients (a − y)/m of the logits (optax's is the same maths): no form fits both."""
    b, script = bce
    got = _record(b, script, loss_form, "logits")
    assert _mixed(b, script, got, Conventions(), "bce", ("loss0", "gradients")) == want


def test_mixed_is_none_where_one_form_fits_both_or_a_part_is_not_judged(bce):
    """The logits form's loss and gradients: logits fits both; loss and gradients not both among the parts; an
    error in the record: None."""
    b, script = bce
    assert _mixed(b, script, _record(b, script, "logits", "logits"), Conventions(), "bce",
                  ("loss0", "gradients")) is None
    mixed = _record(b, script, "probs", "logits")
    assert _mixed(b, script, mixed, Conventions(), "bce", ("gradients",)) is None
    assert _mixed(b, script, dataclasses.replace(mixed, error="boom"), Conventions(), "bce",
                  ("loss0", "gradients")) is None
