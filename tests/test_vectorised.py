"""The batched NumPy path (xor_rosetta.implementations.batched.numpy) against one-at-a-time runs: every network of a batch must
agree with its own run by the tolerance policy, and reach the same verdict (converged, steps to the threshold,
divergence)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from xor_rosetta.implementations.batched import numpy as V
from xor_rosetta.compare import DEFAULT_THRESHOLD
from xor_rosetta.app.run.runner import checkpoints_for, first_nonfinite
from xor_rosetta.compare import accuracy, judge
from xor_rosetta.data import xor_data
from xor_rosetta.implementations.numpy_mlp import NumpyMLP
from xor_rosetta.interface import Conventions
from xor_rosetta.params import init_params
from xor_rosetta.presets import get_preset
from xor_rosetta.reference import Reference, rounding_floor
from xor_rosetta.spec import Init, Optimizer, Spec
from xor_rosetta.tolerance import DISAGREES

TORCH, KERAS = Conventions("torch", "torch", "probs"), Conventions("keras", "keras", "logits")
MOMENTUM = Spec((2, 4, 1), ("tanh", "sigmoid"), "mse", Optimizer("sgd", lr=0.5, momentum=0.9), steps=300,
                batch_size=3, init=Init("glorot-uniform"))
CASES = {  # name: (spec, conventions of the one-at-a-time run, which one-at-a-time run)
    "seed-numpy/numpy": (get_preset("seed-numpy").replace(steps=600), NumpyMLP.conventions, "numpy"),
    "seed-keras/numpy": (get_preset("seed-keras").replace(steps=300), NumpyMLP.conventions, "numpy"),
    "seed-keras/keras-adam": (get_preset("seed-keras").replace(steps=300), KERAS, "reference"),
    "seed-keras/torch-adam-bce-probs": (get_preset("seed-keras").replace(steps=300), TORCH, "reference"),
    "momentum-minibatch/torch": (MOMENTUM, TORCH, "reference"),
    "momentum-minibatch/keras": (MOMENTUM, KERAS, "reference"),
    "relu-float32/numpy": (get_preset("seed-keras").replace(steps=200, dtype="float32"), NumpyMLP.conventions, "numpy"),
    "diverging/numpy": (get_preset("seed-numpy").replace(steps=300, optimizer=Optimizer("sgd", lr=0.55)),
                        NumpyMLP.conventions, "numpy"),
}
SEEDS = range(6)


def one_at_a_time(kind, spec, conv, params, ks):
    x, y = xor_data(spec.dtype)
    model = NumpyMLP(spec, params) if kind == "numpy" else Reference(spec, params, conv)
    grads = model.gradients(x, y)
    with np.errstate(all="ignore"):
        history = model.train(x, y, checkpoints=ks)
        return grads, history, model.loss(x, y), model.forward(x)


def cut(floor, stop):
    return replace(floor, loss=floor.loss[:stop])


@pytest.mark.parametrize("case", list(CASES))
def test_each_network_of_a_batch_agrees_with_its_own_run(case):
    spec, conv, kind = CASES[case]
    x, y = xor_data(spec.dtype)
    threshold, ks = DEFAULT_THRESHOLD[spec.loss], checkpoints_for(spec.steps, 6)
    params = [init_params(spec.replace(init=replace(spec.init, seed=s))) for s in SEEDS]
    arrays = V.stack(params, spec.dtype)
    grads = V.gradients(spec, conv, arrays)
    batch = V.train(spec, conv, arrays, threshold, checkpoints=ks, keep_loss=True)
    verdicts = []
    for k, p in enumerate(params):
        g1, h1, final1, out1 = one_at_a_time(kind, spec, conv, p, ks)
        stop = min([len(h1.loss)] + [i for i in (first_nonfinite(h1.loss), first_nonfinite(batch.loss[k]))
                                     if i is not None])
        ref = Reference(spec, p, conv)
        with np.errstate(all="ignore"):
            exact = ref.train(x, y, checkpoints=ks)
        j = judge(spec.dtype, [q for q in ks if q <= stop], V.unstack(grads, k), g1, batch.loss[k, :stop],
                  h1.loss[:stop], {q: V.unstack(batch.checkpoints[q], k) for q in ks}, h1.checkpoints,
                  floor=lambda: cut(rounding_floor(spec, p, conv, exact, ks, x, y), stop))
        assert j.status < DISAGREES, f"seed {k}: {j.explanation}"
        below = np.flatnonzero(h1.loss < threshold)
        one = (bool(final1 < threshold and accuracy(out1, y) == 1.0), int(below[0]) if below.size else -1,
               first_nonfinite(h1.loss))
        nf = int(batch.first_nonfinite[k])
        many = (bool(batch.final_loss[k] < threshold and batch.accuracy(y)[k] == 1.0), int(batch.first_below[k]),
                None if nf < 0 else nf)
        assert many == one, f"seed {k}: batched (converged, first below, diverged at) {many}, one at a time {one}"
        verdicts.append(one)
    if case.startswith("diverging"):
        assert any(v[2] is not None for v in verdicts) and any(v[2] is None for v in verdicts), verdicts


def test_a_wrong_network_in_the_batch_is_caught():
    """The comparison above can fail: one network given another seed's weights disagrees with its own run."""
    spec, conv, _ = CASES["seed-numpy/numpy"]
    params = [init_params(spec.replace(init=replace(spec.init, seed=s))) for s in SEEDS]
    arrays = V.stack(params[:1] + params[2:3] + params[2:], spec.dtype)  # network 1 starts from seed 2's weights
    batch = V.train(spec, conv, arrays, steps=50, keep_loss=True)
    _, h1, _, _ = one_at_a_time("numpy", spec.replace(steps=50), conv, params[1], [])
    j = judge(spec.dtype, [], None, None, batch.loss[1], h1.loss, {}, {})
    assert j.status == DISAGREES
    _, h0, _, _ = one_at_a_time("numpy", spec.replace(steps=50), conv, params[0], [])
    assert judge(spec.dtype, [], None, None, batch.loss[0], h0.loss, {}, {}).status < DISAGREES


def test_stack_and_unstack_are_inverse():
    spec = get_preset("seed-keras")
    params = [init_params(spec.replace(init=replace(spec.init, seed=s))) for s in range(3)]
    arrays = V.stack(params)
    assert arrays[2].shape == (5, 5, 3) and arrays[3].shape == (5, 3)
    for k, p in enumerate(params):
        for (W, b), (W2, b2) in zip(p, V.unstack(arrays, k)):
            assert np.array_equal(W, W2) and np.array_equal(b, b2)


FRAMEWORK_PATHS = {"torch": ("xor_rosetta.implementations.batched.torch", "torch"),
                   "jax": ("xor_rosetta.implementations.batched.jax", "optax")}
FRAMEWORK_CASES = {"seed-keras": get_preset("seed-keras").replace(steps=120),
                   "momentum-minibatch": MOMENTUM.replace(steps=120)}


def check_framework_path(path: str, case: str) -> list[str]:
    """Each network of the path's batch against its own one-at-a-time reference run in the path's conventions;
    returns what differs (empty: nothing)."""
    import importlib
    module = importlib.import_module(FRAMEWORK_PATHS[path][0])
    spec, conv = FRAMEWORK_CASES[case], module.CONVENTIONS
    x, y = xor_data(spec.dtype)
    threshold, ks = DEFAULT_THRESHOLD[spec.loss], checkpoints_for(spec.steps, 5)
    params = [init_params(spec.replace(init=replace(spec.init, seed=s))) for s in range(4)]
    arrays = V.stack(params, spec.dtype)
    batch = module.train(spec, conv, arrays, threshold, checkpoints=ks, keep_loss=True)
    grads = module.gradients(spec, conv, arrays)
    wrong = []
    for k, p in enumerate(params):
        ref = Reference(spec, p, conv)
        g1 = ref.gradients(x, y)
        h1 = ref.train(x, y, checkpoints=ks)
        j = judge(spec.dtype, ks, V.unstack(grads, k), g1, batch.loss[k], h1.loss,
                  {q: V.unstack(batch.checkpoints[q], k) for q in ks}, h1.checkpoints,
                  floor=lambda: rounding_floor(spec, p, conv, h1, ks, x, y))
        if j.status == DISAGREES:
            wrong.append(f"seed {k}: {j.explanation}")
        below = np.flatnonzero(h1.loss < threshold)
        converged = ref.loss(x, y) < threshold and accuracy(ref.forward(x), y) == 1.0
        one = (int(below[0]) if below.size else -1, bool(converged))
        many = (int(batch.first_below[k]), bool(batch.final_loss[k] < threshold and batch.accuracy(y)[k] == 1.0))
        if one != many:
            wrong.append(f"seed {k}: (first below, converged) batched {many}, one at a time {one}")
    return wrong


@pytest.mark.parametrize("path,case", [("torch", "seed-keras"), ("torch", "momentum-minibatch"), ("jax", "seed-keras")])
def test_framework_batched_path_agrees_with_one_at_a_time_reference(path, case):
    """torch.func.vmap and jax.vmap paths: each network agrees with its own one-at-a-time reference run in the
    path's conventions (the judgement the sweep makes against the batched reference), with the same verdicts. JAX
    runs in a worker of its own: the path switches on jax_enable_x64, which is process-wide."""
    pytest.importorskip(FRAMEWORK_PATHS[path][1])
    if path == "torch":
        assert check_framework_path(path, case) == []
        return
    from xor_rosetta.app.sweep import plan as sweep
    from xor_rosetta.app.workers import pool as workers
    group, env = sweep.batched_group("jax-vmap")
    assert workers.session().get(group, env).call(check_framework_path, path, case) == []
