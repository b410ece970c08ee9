"""The NumPy reference itself: backprop against finite differences, optimizers against their formulas."""
from __future__ import annotations

import numpy as np
import pytest

from xor_rosetta import reference
from xor_rosetta.compare import max_abs_diff
from xor_rosetta.data import xor_data
from xor_rosetta.interface import Conventions
from xor_rosetta.params import init_params
from xor_rosetta.presets import get_preset
from xor_rosetta.spec import Init, Optimizer, Spec
from xor_rosetta.tolerance import tolerance

pytestmark = pytest.mark.quick  # the quick tier: pytest -m quick

SPECS = {
    "seed-numpy": get_preset("seed-numpy"),
    "seed-keras": get_preset("seed-keras"),
    "sigmoid-tanh-mse": Spec(layers=(2, 4, 3, 1), activations=("sigmoid", "tanh", "sigmoid"), loss="mse",
                             init=Init("glorot-uniform", 4)),
    "linear-bce": Spec(layers=(2, 3, 1), activations=("linear", "sigmoid"), loss="bce", init=Init("seed-uniform", 9)),
}
CONVENTIONS = {"probs": Conventions(bce="probs"), "logits": Conventions(bce="logits")}


def numeric_gradients(spec, conv, arrays, x, y, h=1e-6):
    out = []
    for a in arrays:
        g = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            old = a[i]
            a[i] = old + h
            up = reference.loss_and_gradients(spec, conv, arrays, x, y)[0]
            a[i] = old - h
            down = reference.loss_and_gradients(spec, conv, arrays, x, y)[0]
            a[i] = old
            g[i] = (up - down) / (2 * h)
        out.append(g)
    return out


@pytest.mark.parametrize("conv", CONVENTIONS.values(), ids=CONVENTIONS.keys())
@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
def test_backprop_matches_central_differences(spec, conv):
    x, y = xor_data()
    rng = np.random.default_rng(0)  # nonzero biases: with zero biases the (0, 0) row sits on relu's kink
    arrays = [a for W, b in init_params(spec) for a in (W, rng.uniform(-0.5, 0.5, b.shape))]
    _, grads = reference.loss_and_gradients(spec, conv, arrays, x, y)
    numeric = numeric_gradients(spec, conv, arrays, x, y)
    scale = max(np.max(np.abs(g)) for g in numeric)
    err = max(np.max(np.abs(g - n)) for g, n in zip(grads, numeric)) / scale
    assert err <= tolerance("float64").finite_diff


def test_seed_uniform_init_is_the_seed_listing():
    spec = get_preset("seed-numpy")
    np.random.seed(1)  # the listing, literally
    W1 = 2 * np.random.random((2, 5)) - 1
    W2 = 2 * np.random.random((5, 1)) - 1
    (w1, b1), (w2, b2) = init_params(spec)
    assert np.array_equal(w1, W1) and np.array_equal(w2, W2)
    assert not b1.any() and not b2.any()


def test_glorot_uniform_bounds_and_seed():
    spec = get_preset("seed-keras")
    params = init_params(spec)
    for (W, b), (n_in, n_out) in zip(params, zip(spec.layers, spec.layers[1:])):
        limit = np.sqrt(6 / (n_in + n_out))
        assert np.all(np.abs(W) <= limit) and np.max(np.abs(W)) > limit / 2 and not b.any()
    again = init_params(spec)
    other = init_params(spec.replace(init=Init("glorot-uniform", spec.init.seed + 1)))
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(params, again))
    assert not np.array_equal(params[0][0], other[0][0])


def _one_step(opt, conv, w, g, steps=1):
    w = w.copy()
    o = reference.Optimizer(opt, conv, [w])
    for _ in range(steps):
        o.step([w], [g])
    return w


def test_sgd_step_formula():
    w, g = np.array([1.0, -2.0]), np.array([0.5, 0.25])
    assert np.allclose(_one_step(Optimizer("sgd", lr=0.1), Conventions(), w, g), w - 0.1 * g, rtol=0, atol=1e-15)


@pytest.mark.parametrize("form", ["torch", "keras"])
def test_momentum_forms_agree_with_textbook(form):
    w, g, lr, mu = np.array([1.0]), np.array([0.5]), 0.1, 0.9
    got = _one_step(Optimizer("sgd", lr=lr, momentum=mu), Conventions(momentum=form), w, g, steps=3)
    v, want = 0.0, 1.0  # textbook heavy ball: v = mu*v - lr*g; w += v
    for _ in range(3):
        v = mu * v - lr * 0.5
        want += v
    assert abs(got[0] - want) < 1e-15


@pytest.mark.parametrize("form", ["torch", "keras"])
def test_adam_first_step_is_lr_sized(form):
    # With a large gradient, both forms move each weight by ~lr * sign(g) on the first step.
    w, g = np.array([0.0, 0.0]), np.array([3.0, -2.0])
    got = _one_step(Optimizer("adam", lr=0.01, epsilon=1e-8), Conventions(adam=form), w, g)
    assert np.allclose(got, [-0.01, 0.01], rtol=1e-6)


def test_adam_forms_differ_by_where_epsilon_sits():
    w, g = np.array([0.0]), np.array([1e-4])  # small gradient: epsilon matters
    opt = Optimizer("adam", lr=1.0, beta1=0.9, beta2=0.999, epsilon=1e-4)
    torch_w = _one_step(opt, Conventions(adam="torch"), w, g)[0]
    keras_w = _one_step(opt, Conventions(adam="keras"), w, g)[0]
    assert np.isclose(torch_w, -1e-4 / (1e-4 + 1e-4), rtol=1e-12)  # eps added to sqrt(v_hat) = |g|
    assert np.isclose(keras_w, -1e-4 / (1e-4 + 1e-4 / np.sqrt(1 - 0.999)), rtol=1e-12)  # eps-hat = eps / sqrt(1-b2)


def test_reference_train_equals_manual_loop():
    spec = get_preset("seed-numpy").replace(steps=5)
    x, y = xor_data()
    model = reference.Reference(spec, init_params(spec))
    hist = model.train(x, y)
    arrays = [a.copy() for Wb in init_params(spec) for a in Wb]
    for step in range(5):
        loss, grads = reference.loss_and_gradients(spec, Conventions(), arrays, x, y)
        assert loss == hist.loss[step]
        for a, g in zip(arrays, grads):
            a -= 0.1 * g
    assert all(np.array_equal(a, b) for a, b in zip(arrays, [v for Wb in model.params() for v in Wb]))


def test_rounding_floor_never_falls_back():
    """The floor at a step is the most rounding alone has moved the run at that step or before: the jittered runs
    (four samples) may come back together by chance, while an implementation's run need not (seed-keras in float32
    with optax's forms: jax was once called DISAGREES where the samples had met again). Asserted as relations to the
    jittered runs themselves, recomputed here, so it holds whatever SIMD path NumPy's float32 kernels take."""
    spec = get_preset("seed-keras").replace(dtype="float32")
    conv, params, x, y = Conventions(adam="optax", bce="optax"), init_params(spec), *xor_data("float32")
    ks = list(range(10, spec.steps + 1, 10))
    exact = reference.Reference(spec, params, conv).train(x, y, checkpoints=ks)
    raw_loss, raw_params = np.zeros(spec.steps), np.zeros(len(ks))
    for seed, sign in reference.JITTER_RUNS:
        h = reference.Reference(spec, params, conv, reference.Jitter(seed, sign)).train(x, y, checkpoints=ks)
        raw_loss = np.fmax(raw_loss, np.abs(h.loss - exact.loss))
        raw_params = np.fmax(raw_params, [max_abs_diff(h.checkpoints[k], exact.checkpoints[k]) for k in ks])
    # the samples do come back together here, in the loss and in the params: the case the running maximum is for
    assert np.any(np.diff(raw_loss) < 0) and np.any(np.diff(raw_params) < 0)
    f = reference.rounding_floor(spec, params, conv, exact, ks, x, y)
    assert np.array_equal(f.loss, np.fmax.accumulate(raw_loss))
    assert np.array_equal([f.params[k] for k in ks], np.maximum.accumulate(raw_params))


USED_BY = {  # one spec per optimizer/loss branch of the reference, 50 steps each: (spec, distinct runs expected)
    "sgd-mse": (get_preset("seed-numpy").replace(steps=50), 1),
    "momentum-mse": (get_preset("seed-numpy").replace(steps=50, optimizer=Optimizer("sgd", 0.1, momentum=0.9)),
                     len(reference.FORMS["momentum"])),
    "adam-bce": (get_preset("seed-keras").replace(steps=50),
                 len(reference.FORMS["adam"]) * len(reference.FORMS["bce"])),
}


@pytest.mark.parametrize("spec, distinct", USED_BY.values(), ids=USED_BY.keys())
def test_conventions_used_by_a_spec_decide_its_reference_run(spec, distinct):
    """compare computes one reference run per `Conventions.used_by(spec)`: conventions it maps together must give
    bit-identical runs, and conventions it keeps apart must give different ones."""
    x, y = xor_data()
    runs = {}
    for a in reference.FORMS["adam"]:
        for m in reference.FORMS["momentum"]:
            for b in reference.FORMS["bce"]:
                conv = Conventions(a, m, b)
                model = reference.Reference(spec, init_params(spec), conv)
                loss = model.train(x, y).loss
                run = np.concatenate([loss] + [v.ravel() for Wb in model.params() for v in Wb])
                runs.setdefault(conv.used_by(spec), []).append(run)
    for key, same in runs.items():
        assert all(np.array_equal(same[0], r) for r in same), key
    firsts = [same[0] for same in runs.values()]
    assert all(not np.array_equal(a, b) for i, a in enumerate(firsts) for b in firsts[i + 1:])
    assert len(runs) == distinct
