"""Each row of the README's "Where frameworks differ" table: the difference exists, and its setting removes it."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import load_or_skip
from xor_rosetta.app.docs import differences as d
from xor_rosetta.tolerance import tolerance

F64, F32 = tolerance("float64"), tolerance("float32")


@pytest.fixture(autouse=True)
def frameworks():
    load_or_skip("torch"), load_or_skip("keras")


def test_weight_layout():
    row = d.weight_layout()
    assert row.differs_by > 1e-3 and row.with_setting <= F64.forward


def test_default_init():
    row = d.default_init()
    assert row.differs_by > 1e-2 and row.with_setting == 0.0  # the same canonical bias in both


def test_adam_epsilon():
    row = d.adam_epsilon()
    assert row.differs_by > 1e-6 and row.with_setting <= F64.params


def test_momentum_forms_differ_by_rounding_only():
    row = d.momentum_form()
    assert 0 < row.differs_by <= F64.params and row.with_setting <= F64.params


def test_bce_on_probabilities_saturates():
    row = d.bce_saturation()
    assert row.differs_by > 1 and row.with_setting <= F64.loss * 40  # the exact loss is 40 + 4e-18


def test_torch_bce_gradient_clamp_is_float32():
    row = d.torch_bce_grad_epsilon()
    assert row.differs_by > 1e-9 and row.with_setting <= F64.gradient


def test_keras_clips_bare_probabilities():
    row = d.keras_clipped_bce()
    assert row.differs_by > 1e-8 and row.with_setting <= F64.loss * 2.1e-9  # the exact loss: log1p(e^-20) = 2.1e-9


def test_keras_float32_hyperparameters():
    row = d.keras_float32_hyperparameters()
    assert row.differs_by > 1e-10 and row.with_setting <= F64.params


def test_keras_dtype_policy_is_fixed_at_first_use():
    from xor_rosetta.implementations.keras_mlp import keras
    old_policy, old_floatx = keras.config.dtype_policy(), keras.config.floatx()
    try:
        keras.config.set_dtype_policy("float32")
        keras.config.set_floatx("float64")
        assert keras.layers.Dense(1).dtype == "float32"  # floatx alone does not reach the layers
        assert keras.layers.Dense(1, dtype="float64").dtype == "float64"  # hence the explicit dtype
    finally:
        keras.config.set_dtype_policy(old_policy)
        keras.config.set_floatx(old_floatx)


def test_float32_drift():
    row = d.float32_drift()  # more than one float32 rounding of the params (|param| < 2), whatever the CPU's kernels
    assert row.differs_by > 2 * np.finfo(np.float32).eps and row.with_setting <= F32.params


def test_tf_float32_tanh_is_approximate():
    row = d.tf_float32_tanh()  # more than a correctly rounded float32 tanh may be off (half an ulp of 1)
    assert row.differs_by > np.finfo(np.float32).eps / 2 and row.with_setting <= F64.forward


def test_optax_adam_multiplies_by_the_reciprocal():
    load_or_skip("jax")
    row = d.optax_adam()
    assert row.differs_by > 0 and row.with_setting == 0.0  # bit for bit in optax's own form


@pytest.mark.slow  # a keras-torch worker of its own: Keras on torch's Adam form is also checked by its golden cases
def test_keras_adam_on_torch_rounds_its_moments_its_own_way():
    load_or_skip("keras-torch")
    row = d.keras_torch_adam()
    assert row.differs_by > 2 * row.with_setting and row.with_setting <= F32.params


def test_keras_bce_differs_by_backend():
    load_or_skip("keras-jax"), load_or_skip("keras-torch")
    row = d.keras_bce_backends()
    assert row.differs_by > 1 and row.with_setting <= F32.forward


@pytest.mark.slow  # two Keras processes patched: ~11 s; the difference itself is asserted by default in
# tests/test_keras_backends.py
def test_keras_float64_is_float32_on_jax_and_torch_and_only_a_private_patch_removes_it():
    load_or_skip("keras-jax"), load_or_skip("keras-torch")
    row = d.keras_float32_inside()
    assert F64.forward < row.differs_by <= F32.forward and row.with_setting <= F64.forward
