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
from xor_rosetta import params as P
from xor_rosetta.params import _why, check_params, init_params, load_params, to_float64
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
    refused(npz(tmp_path, {**good, "W0.npy": bytes(bad)}),
            ": member 'W0.npy' is not valid .npy data (ValueError: unsupported .npy format version (3, 0))")
    with zipfile.ZipFile(tmp_path / "twice.npz", "w") as z:
        z.writestr("W0.npy", good["W0.npy"])
        z.writestr("W0", good["W0.npy"])
    with pytest.raises(ParamsError, match="holds W0 more than once"):
        load_params(tmp_path / "twice.npz", SPEC)


def test_why_is_the_exception_and_its_first_line():
    assert _why(ValueError("bad\nmore")) == "ValueError: bad"
    assert _why(KeyError()) == "KeyError"
    assert _why(RuntimeError("")) == "RuntimeError"


def good_members(p):
    return {f"{k}{i}.npy": npy_bytes(a) for i, (W, b) in enumerate(p) for k, a in (("W", W), ("b", b))}


def refused(path, words):
    """load_params(path) fails with exactly "weights file 'PATH'" + words."""
    with pytest.raises(ParamsError, match=f"^{re.escape(f'weights file {str(path)!r}{words}')}$"):
        load_params(path, SPEC)


def test_check_params_names_params_when_no_source_is_given():
    with pytest.raises(ParamsError, match=f"^{re.escape('params: has 1 layers, the spec has 2')}$"):
        check_params(init_params(SPEC)[:1], SPEC)


def test_two_keys_missing_extra_or_repeated_are_listed_with_commas(tmp_path):
    good = good_members(init_params(SPEC))
    refused(npz(tmp_path, {k: v for k, v in good.items() if k not in ("W1.npy", "b1.npy")}),
            " lacks W1, b1 (needs W0, b0, W1, b1)")
    refused(npz(tmp_path, {**good, "W9.npy": good["W0.npy"], "b9.npy": good["b0.npy"]}),
            " has unexpected keys W9, b9 (needs W0, b0, W1, b1)")
    path = tmp_path / "twice.npz"
    with zipfile.ZipFile(path, "w") as z:
        for name in ("W0.npy", "W0", "b0.npy", "b0", "W1.npy", "b1.npy"):
            z.writestr(name, good[name if name.endswith(".npy") else name + ".npy"])
    refused(path, " holds W0, b0 more than once")


def raw_npy(descr: str, shape: tuple, data: bytes) -> bytes:
    """A version 1.0 .npy member with a header written by hand (one that np.save never writes)."""
    header = f"{{'descr': {descr}, 'fortran_order': False, 'shape': {shape}, }}"
    header += " " * (-(10 + len(header) + 1) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode("latin1") + data


def test_a_number_dtype_with_named_fields_is_refused(tmp_path):
    """float64 with a field over its 8 bytes: kind 'f', as a plain float64's, but structured."""
    good = good_members(init_params(SPEC))
    union = "('<f8', {'names': ['a'], 'formats': ['<f8'], 'offsets': [0]})"
    refused(npz(tmp_path, {**good, "b0.npy": raw_npy(union, (3,), np.zeros(3).tobytes())}),
            ": b0 has dtype (numpy.float64, [('a', '<f8')]), expected numbers")


def test_a_member_is_read_only_as_far_as_its_header_declares(tmp_path):
    """One byte after W0's 48 declared bytes is left unread: the weights load as written."""
    p = init_params(SPEC)
    good = good_members(p)
    got = load_params(npz(tmp_path, {**good, "W0.npy": good["W0.npy"] + b"\0"}), SPEC)
    assert np.array_equal(got[0][0], p[0][0]) and np.array_equal(got[1][0], p[1][0])


def test_a_weights_file_gone_after_its_check_names_the_systems_reason(tmp_path, monkeypatch):
    gone = tmp_path / "gone.npz"
    monkeypatch.setattr(P, "regular_file", lambda path, what: (gone, 0))  # removed between its check and its opening
    refused(gone, " cannot be read (No such file or directory)")


def test_a_damaged_archive_names_zipfiles_reason(tmp_path):
    """One byte of the first member's local header changed: the archive's directory still reads, the member not."""
    path = npz(tmp_path, good_members(init_params(SPEC)))
    data = bytearray(path.read_bytes())
    data[3] ^= 1  # "PK\x03\x04" -> "PK\x03\x05"
    path.write_bytes(bytes(data))
    refused(path, " is a damaged .npz archive (BadZipFile: Bad magic number for file header)")


def test_the_largest_float_loads_and_an_infinite_one_names_the_file(tmp_path):
    p = init_params(SPEC)
    biggest = np.finfo(np.float64).max
    got = load_params(npz(tmp_path, good_members([p[0], (p[1][0], np.array([biggest]))])), SPEC)
    assert got[1][1][0] == biggest
    refused(npz(tmp_path, good_members([p[0], (p[1][0], np.array([np.inf]))])),
            ": b1 contains NaN or infinite values")


def test_a_nul_in_the_file_name_is_named():
    refused("a\0b.npz", " is not a valid file name (it contains a NUL character)")


def test_to_float64_casts_float32_up():
    p32 = [(W.astype(np.float32), b.astype(np.float32)) for W, b in init_params(SPEC)]
    for (W, b), (V, c) in zip(to_float64(p32), p32):
        assert W.dtype == b.dtype == np.float64 and np.array_equal(W, V) and np.array_equal(b, c)
