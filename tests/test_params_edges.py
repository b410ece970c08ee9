"""Initial weights and the weights file at their edges: the seed listing's stream and Glorot's bound, reproducible by
seed; shapes and counts named in the errors; .npy versions 1.0 and 2.0 and Fortran order read; every message names
what is wrong."""
from __future__ import annotations

import io
import re
import zipfile

import numpy as np
import numpy.lib.format as npy
import pytest

from xor_rosetta.errors import ParamsError
from xor_rosetta.params import _why, check_params, init_params, load_params
from xor_rosetta.spec import Init, Spec

SPEC = Spec(layers=(2, 3, 1), activations=("tanh", "linear"))


def test_seed_uniform_is_the_seed_listings_stream():
    """np.random.seed(s); W = 2 * random((in, out)) - 1; b = 0 (the seed article's listing, in NumPy's legacy
    global stream)."""
    params = init_params(SPEC.replace(init=Init("seed-uniform", 7)))
    np.random.seed(7)
    for (W, b), (n_in, n_out) in zip(params, ((2, 3), (3, 1))):
        assert np.array_equal(W, 2 * np.random.random((n_in, n_out)) - 1) and np.array_equal(b, np.zeros(n_out))


def test_glorot_uniform_within_its_bound_by_seed():
    spec = Spec(layers=(2, 64, 64, 1), activations=("tanh", "tanh", "linear"), init=Init("glorot-uniform", 3))
    a, again, other = init_params(spec), init_params(spec), init_params(spec.replace(init=Init("glorot-uniform", 4)))
    for (W, b), n_in, n_out in zip(a, spec.layers, spec.layers[1:]):
        bound = np.sqrt(6.0 / (n_in + n_out))
        assert np.all(np.abs(W) <= bound) and np.all(b == 0)
        assert W.min() < -0.9 * bound and W.max() > 0.9 * bound  # U(-l, l): both ends reached
    assert all(np.array_equal(x[0], y[0]) for x, y in zip(a, again))
    assert not np.allclose(a[1][0], other[1][0])


def test_check_params_names_what_is_wrong():
    p = init_params(SPEC)
    assert check_params(p, SPEC) is p
    with pytest.raises(ParamsError, match=re.escape("mine: has 1 layers, the spec has 2")):
        check_params(p[:1], SPEC, "mine")
    with pytest.raises(ParamsError, match=re.escape("mine: W1 has shape (1, 3), the spec needs (3, 1)")):
        check_params([p[0], (p[1][0].T, p[1][1])], SPEC, "mine")


def npz(tmp_path, members: dict[str, bytes]):
    path = tmp_path / "w.npz"
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def npy_bytes(a, version=None):
    buf = io.BytesIO()
    npy.write_array(buf, a, version=version)
    return buf.getvalue()


@pytest.mark.parametrize("version", [(1, 0), (2, 0)])
@pytest.mark.parametrize("order", ["C", "F"])
def test_npy_versions_and_orders_are_read(tmp_path, version, order):
    p = init_params(SPEC)
    members = {f"{k}{i}.npy": npy_bytes(np.asarray(a, order=order), version)
               for i, (W, b) in enumerate(p) for k, a in (("W", W), ("b", b))}
    got = load_params(npz(tmp_path, members), SPEC)
    assert all(np.array_equal(x, y) for (W, b), (V, c) in zip(got, p) for x, y in ((W, V), (b, c)))


def test_a_weights_file_names_what_is_wrong(tmp_path):
    p = init_params(SPEC)
    good = {f"{k}{i}.npy": npy_bytes(a) for i, (W, b) in enumerate(p) for k, a in (("W", W), ("b", b))}
    cases = [
        ({k: v for k, v in good.items() if k != "b1.npy"}, "lacks b1 (needs W0, b0, W1, b1)"),
        ({**good, "W9.npy": good["W0.npy"]}, "has unexpected keys W9 (needs W0, b0, W1, b1)"),
        ({**good, "W0.npy": good["W0.npy"][:-8]}, "W0 is truncated (its header declares 48 bytes of data, the member "
                                                  "holds 40)"),
        ({**good, "b0.npy": npy_bytes(np.zeros(3, dtype=[("x", "f8")]))}, "b0 has dtype [('x', '<f8')], expected "
                                                                          "numbers"),
        ({**good, "b0.npy": npy_bytes(np.zeros(3, dtype="U1"))}, "b0 has dtype <U1, expected numbers"),
    ]
    for members, words in cases:
        with pytest.raises(ParamsError, match=re.escape(words)):
            load_params(npz(tmp_path, members), SPEC)
    bad = bytearray(good["W0.npy"])
    bad[6] = 3  # format version 3.0
    with pytest.raises(ParamsError, match=re.escape("member 'W0.npy' is not valid .npy data (ValueError: ")):
        load_params(npz(tmp_path, {**good, "W0.npy": bytes(bad)}), SPEC)
    with zipfile.ZipFile(tmp_path / "twice.npz", "w") as z:
        z.writestr("W0.npy", good["W0.npy"])
        z.writestr("W0", good["W0.npy"])
    with pytest.raises(ParamsError, match="holds W0 more than once"):
        load_params(tmp_path / "twice.npz", SPEC)


def test_why_is_the_exception_and_its_first_line():
    assert _why(ValueError("bad\nmore")) == "ValueError: bad"
    assert _why(KeyError()) == "KeyError"
    assert _why(RuntimeError("")) == "RuntimeError"
