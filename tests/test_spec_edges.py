"""The spec's validation at each bound: the last value accepted and the first refused, and the message naming the
field and the value (steps, batch_size, layers, betas, momentum, epsilon, the seed, init.path)."""
from __future__ import annotations

import re

import pytest

from xor_rosetta.errors import SpecError
from xor_rosetta.spec import MAX_STEPS, Init, Optimizer, Spec


def refused(message, make):
    with pytest.raises(SpecError, match=f"^{re.escape(message)}$"):  # the whole message
        make()


def test_steps_from_one_to_the_maximum():
    assert Spec(steps=1).steps == 1 and Spec(steps=MAX_STEPS).steps == MAX_STEPS
    for bad in (0, MAX_STEPS + 1, 2.0, True):
        refused(f"steps must be a whole number from 1 to {MAX_STEPS:,} (the maximum), got {bad!r}",
                lambda: Spec(steps=bad))


def test_batch_size_from_one_to_four_rows():
    assert Spec(batch_size=4).batch_size == 4 and Spec(batch_size=1).batch_for(4) == 1 and Spec().batch_for(4) == 4
    refused("batch_size must be at most 4 (the XOR data has 4 rows), got 5", lambda: Spec(batch_size=5))
    refused("batch_size must be > 0, got 0", lambda: Spec(batch_size=0))
    refused("batch_size must be a finite integer, got 2.0", lambda: Spec(batch_size=2.0))


def test_layers():
    assert Spec(layers=(2, 1), activations=("sigmoid",)).layers == (2, 1)  # no hidden layer: the least there is
    refused("layers needs at least an input and an output size, got [2]", lambda: Spec(layers=(2,), activations=()))
    refused("layers[1] must be a finite integer, got 5.0", lambda: Spec(layers=(2, 5.0, 1)))
    refused("layers[1] must be > 0, got 0", lambda: Spec(layers=(2, 0, 1)))


@pytest.mark.parametrize("name", ["momentum", "beta1", "beta2"])
def test_betas_and_momentum_from_zero_to_below_one(name):
    kw = {"name": "sgd"} if name == "momentum" else {"name": "adam"}
    assert getattr(Optimizer(**kw, **{name: 0}), name) == 0.0
    assert getattr(Optimizer(**kw, **{name: 0.999999}), name) == 0.999999
    refused(f"optimizer.{name} must be < 1, got 1", lambda: Optimizer(**kw, **{name: 1}))
    refused(f"optimizer.{name} must be >= 0, got -0.1", lambda: Optimizer(**kw, **{name: -0.1}))
    refused(f"optimizer.{name} must be a finite number, got inf", lambda: Optimizer(**kw, **{name: float("inf")}))


def test_lr_and_epsilon_above_zero():
    for name in ("lr", "epsilon"):
        refused(f"optimizer.{name} must be > 0, got 0", lambda: Optimizer(**{name: 0}))
        refused(f"optimizer.{name} must be a finite number, got nan", lambda: Optimizer(**{name: float("nan")}))
    assert isinstance(Optimizer(lr=50).lr, float)
    refused("optimizer.momentum applies to sgd only; adam uses beta1", lambda: Optimizer("adam", momentum=0.5))


def test_seed_and_init_path():
    assert Init(seed=0).seed == 0
    refused("init.seed must be >= 0, got -1", lambda: Init(seed=-1))
    refused("init.seed must be a finite integer, got 1.5", lambda: Init(seed=1.5))
    refused('init.path is required with init.scheme = "file", and only then', lambda: Init(scheme="file"))
    refused('init.path is required with init.scheme = "file", and only then', lambda: Init(path="w.npz"))
    refused("init.path must be a file name (a string), got ''", lambda: Init(scheme="file", path=""))
    refused("init.path must be a file name (a string), got 3", lambda: Init(scheme="file", path=3))
    refused("init.path must not contain a NUL character, got 'a\\x00b'", lambda: Init(scheme="file", path="a\0b"))
    assert Init(scheme="file", path="w.npz").path == "w.npz"


def test_replace_changes_and_validates():
    assert Spec().replace(steps=5).steps == 5 and Spec().replace(steps=5).layers == Spec().layers
    refused(f"steps must be a whole number from 1 to {MAX_STEPS:,} (the maximum), got 0", lambda: Spec().replace(steps=0))


def test_choices_and_keys_are_listed():
    refused("unknown loss 'mae'; choose one of: mse, bce", lambda: Spec(loss="mae"))
    refused("loss \"bce\" needs a sigmoid output activation, got 'linear'",
            lambda: Spec(layers=(2, 3, 3, 1), activations=("sigmoid", "tanh", "linear"), loss="bce"))
    d = Spec().to_dict()
    refused("unknown key 'lrr' in optimizer; known keys: beta1, beta2, epsilon, lr, momentum, name",
            lambda: Spec.from_dict({**d, "optimizer": {**d["optimizer"], "lrr": 1}}))
    refused("unknown key 'sead' in init; known keys: path, scheme, seed",
            lambda: Spec.from_dict({**d, "init": {"sead": 1}}))
