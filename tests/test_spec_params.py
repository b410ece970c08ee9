"""Spec validation and the canonical weights file."""
from __future__ import annotations

import re

import numpy as np
import pytest

from xor_rosetta.errors import ParamsError, SpecError
from xor_rosetta.app.files import save_params
from xor_rosetta.params import init_params, load_params, shapes
from xor_rosetta.presets import PRESETS, get_preset
from xor_rosetta.spec import Init, Optimizer, Spec

BAD_SPECS = {
    "unknown activation": (dict(activations=("tanh", "swish")), "unknown activation 'swish'"),
    "unknown loss": (dict(loss="hinge"), "unknown loss 'hinge'"),
    "activation count": (dict(activations=("tanh",)), "2 weight layers need 2 activations, got 1"),
    "zero width": (dict(layers=(2, 0, 1)), "layers[1] must be > 0"),
    "wrong input size": (dict(layers=(3, 5, 1)), "layers must start with 2 and end with 1"),
    "bce without sigmoid": (dict(loss="bce"), "needs a sigmoid output"),
    "zero steps": (dict(steps=0), "steps must be > 0"),
    "batch too large": (dict(batch_size=5), "batch_size must be at most 4"),
    "batch zero": (dict(batch_size=0), "batch_size must be > 0"),
    "float16": (dict(dtype="float16"), "unknown dtype 'float16'"),
    "bool steps": (dict(steps=True), "steps must be a finite integer"),
}


@pytest.mark.parametrize("changes,message", BAD_SPECS.values(), ids=BAD_SPECS.keys())
def test_bad_spec_names_the_problem(changes, message):
    with pytest.raises(SpecError, match=re.escape(message)) as e:
        Spec(**changes)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("kwargs,message", [
    (dict(name="rmsprop"), "unknown optimizer 'rmsprop'"),
    (dict(lr=0.0), "optimizer.lr must be > 0"),
    (dict(lr=float("nan")), "optimizer.lr must be a finite number"),
    (dict(momentum=1.0), "optimizer.momentum must be < 1"),
    (dict(name="adam", momentum=0.5), "applies to sgd only"),
])
def test_bad_optimizer(kwargs, message):
    with pytest.raises(SpecError, match=message):
        Optimizer(**kwargs)


def test_from_dict_rejects_unknown_keys_by_name():
    with pytest.raises(SpecError, match="unknown key 'stpes' in spec"):
        Spec.from_dict({"stpes": 10})
    with pytest.raises(SpecError, match="unknown key 'lr_decay' in optimizer"):
        Spec.from_dict({"optimizer": {"lr_decay": 0.1}})


@pytest.mark.parametrize("name", PRESETS)
def test_presets_round_trip_through_dict(name):
    spec = get_preset(name)
    assert Spec.from_dict(spec.to_dict()) == spec


def test_unknown_preset():
    with pytest.raises(SpecError, match="unknown preset 'seed-jax'; choose one of: seed-numpy, seed-keras"):
        get_preset("seed-jax")


def test_file_init_needs_a_path():
    with pytest.raises(SpecError, match="init.path is required"):
        Init("file")


SPEC = get_preset("seed-keras")


def test_npz_round_trip(tmp_path):
    params = init_params(SPEC)
    save_params(params, tmp_path / "w.npz")
    with np.load(tmp_path / "w.npz") as z:
        assert z.files == ["W0", "b0", "W1", "b1", "W2", "b2"]
    loaded = load_params(tmp_path / "w.npz", SPEC)
    assert all(np.array_equal(a, b) for A, B in zip(params, loaded) for a, b in zip(A, B))
    assert [(W.shape, b.shape) for W, b in loaded] == shapes(SPEC)
    assert init_params(SPEC.replace(init=Init("file", path=str(tmp_path / "w.npz"))))[0][0].tolist() == params[0][0].tolist()


def _write(tmp_path, **arrays):
    path = tmp_path / "w.npz"
    np.savez(path, **arrays)
    return path


def test_npz_errors(tmp_path):
    good = {k: v for i, (W, b) in enumerate(init_params(SPEC)) for k, v in ((f"W{i}", W), (f"b{i}", b))}
    with pytest.raises(ParamsError, match="does not exist"):
        load_params(tmp_path / "nope.npz", SPEC)
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ParamsError, match="is not an .npz archive"):
        load_params(tmp_path / "text.npz", SPEC)
    with pytest.raises(ParamsError, match="lacks b2"):
        load_params(_write(tmp_path, **{k: v for k, v in good.items() if k != "b2"}), SPEC)
    with pytest.raises(ParamsError, match=r"W1 has shape \(5, 4\), the spec needs \(5, 5\)"):
        load_params(_write(tmp_path, **{**good, "W1": np.zeros((5, 4))}), SPEC)
    with pytest.raises(ParamsError, match="W0 contains NaN"):
        load_params(_write(tmp_path, **{**good, "W0": np.full((2, 5), np.nan)}), SPEC)
    with pytest.raises(ParamsError, match="unexpected keys W3"):
        load_params(_write(tmp_path, **{**good, "W3": np.zeros(1)}), SPEC)
    with pytest.raises(ParamsError, match="pickled objects"):
        load_params(_write(tmp_path, **{**good, "W0": np.array([{"evil": 1}], dtype=object)}), SPEC)
