"""Validation at the boundary: experiment files, specs and weights files.

Every bad value is tested here in-process, once: through `load_toml` (the TOML text a user writes) or `Spec`, and
`load_params`. That the command line turns these errors into one line with exit status 2 is tested once per kind of
error in tests/test_robustness.py. The property tests feed random values and random bytes: whatever passes
validation must be usable, and whatever fails must fail with one line that names the problem.
"""
from __future__ import annotations

import io
import os
import re
import tracemalloc
import zipfile

import numpy as np
import numpy.lib.format as npy
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from xor_rosetta.app.common.config import dump_toml, load_toml
from xor_rosetta.app.common.files import save_params
from xor_rosetta.app.common.resources import check_fits
from xor_rosetta.app.run.runner import checkpoints_for
from xor_rosetta.errors import ParamsError, SpecError, XorRosettaError
from xor_rosetta.params import init_params, load_params, shapes
from xor_rosetta.presets import PRESETS, get_preset
from xor_rosetta.spec import MAX_SEED, MAX_STEPS, Init, Optimizer, Spec

pytestmark = pytest.mark.quick  # the quick tier: pytest -m quick

# TOML text -> the words the one-line error must contain
BAD_TOML = {
    "unknown activation": ('activations = ["tanh", "gelu"]', "unknown activation 'gelu'; choose one of"),
    "unknown loss": ('loss = "hinge"', "unknown loss 'hinge'"),
    "unknown optimizer": ('[optimizer]\nname = "rmsprop"', "unknown optimizer 'rmsprop'"),
    "zero width": ("layers = [2, 0, 1]", "layers[1] must be > 0"),
    "wrong input size": ("layers = [3, 5, 1]", "layers must start with 2 and end with 1"),
    "one layer": ("layers = [2]", "layers needs at least an input and an output size"),
    "activation count": ('activations = ["tanh"]', "2 weight layers need 2 activations, got 1"),
    "bce without sigmoid": ('loss = "bce"', 'loss "bce" needs a sigmoid output activation'),
    "negative steps": ("steps = -5", "steps must be a whole number from 1 to 1,000,000,000"),
    "zero steps": ("steps = 0", "steps must be a whole number from 1 to 1,000,000,000"),
    "steps over the maximum": ("steps = 1_000_000_001", "1,000,000,000 (the maximum), got 1000000001"),
    "steps int64 max": ("steps = 9223372036854775807", "(the maximum), got 9223372036854775807"),
    "steps float": ("steps = 1e12", "(the maximum), got 1000000000000.0"),
    "steps bool": ("steps = true", "steps must be a whole number"),
    "steps string": ('steps = "10"', "steps must be a whole number"),
    "zero lr": ("[optimizer]\nlr = 0", "optimizer.lr must be > 0"),
    "negative lr": ("[optimizer]\nlr = -0.1", "optimizer.lr must be > 0"),
    "nan lr": ("[optimizer]\nlr = nan", "optimizer.lr must be a finite number"),
    "inf lr": ("[optimizer]\nlr = inf", "optimizer.lr must be a finite number"),
    "momentum 1": ("[optimizer]\nmomentum = 1.0", "optimizer.momentum must be < 1"),
    "adam with momentum": ('[optimizer]\nname = "adam"\nmomentum = 0.5', "applies to sgd only"),
    "batch zero": ("batch_size = 0", "batch_size must be > 0"),
    "batch too big": ("batch_size = 8", "batch_size must be at most 4"),
    "float16": ('dtype = "float16"', "unknown dtype 'float16'"),
    "unknown key": ("stpes = 10", "unknown key 'stpes' in spec"),
    "unknown nested key": ("[optimizer]\nmomentun = 0.9", "unknown key 'momentun' in optimizer"),
    "table as value": ("optimizer = 5", "optimizer must be a table"),
    "malformed": ("layers = [2, 5", "is not valid TOML"),
    "layers not a list": ('layers = "2-5-1"', "layers must be a list"),
    "date": ("steps = 1979-05-27", "steps must be a whole number"),
    "unknown init": ('[init]\nscheme = "he"', "unknown init scheme 'he'"),
    "seed over NumPy's range": ("[init]\nseed = 4294967296", "init.seed must be at most 4,294,967,295"),
    "negative seed": ("[init]\nseed = -1", "init.seed must be >= 0"),
    "file init without path": ('[init]\nscheme = "file"', "init.path is required"),
    "path without file init": ('[init]\npath = "w.npz"', "init.path is required"),
    "path a number": ('[init]\nscheme = "file"\npath = 5', "init.path must be a file name"),
    "path a list": ('[init]\nscheme = "file"\npath = ["w.npz"]', "init.path must be a file name"),
    "path with NUL": ('[init]\nscheme = "file"\npath = "a\\u0000b"', "init.path must be a file name"),
    "path empty": ('[init]\nscheme = "file"\npath = ""', "init.path must be a file name"),
    "nested too deeply": ("x = " + "[" * 5000 + "]" * 5000, "nested too deeply"),
}


@pytest.mark.parametrize("toml,message", BAD_TOML.values(), ids=BAD_TOML.keys())
def test_bad_experiment_file_names_the_problem(toml, message, tmp_path):
    (tmp_path / "x.toml").write_text(toml + "\n")
    with pytest.raises(SpecError) as e:
        load_toml(tmp_path / "x.toml")
    assert message in str(e.value) and "\n" not in str(e.value)


def test_spec_limits_are_documented_values():
    assert MAX_STEPS == 1_000_000_000 and MAX_SEED == 2**32 - 1
    Spec(steps=MAX_STEPS), Init(seed=MAX_SEED)  # the limits themselves are allowed
    with pytest.raises(SpecError, match="steps must be a whole number from 1 to 1,000,000,000"):
        Spec(steps=MAX_STEPS + 1)
    init_params(get_preset("seed-numpy").replace(init=Init("seed-uniform", seed=MAX_SEED)))  # NumPy accepts it


def test_byte_order_mark_and_encodings(tmp_path):
    f = tmp_path / "bom.toml"
    f.write_bytes(b"\xef\xbb\xbfsteps = 7\n")  # what Notepad writes
    assert load_toml(f).steps == 7
    f.write_bytes(b"steps = 7 # \xff\n")
    with pytest.raises(SpecError, match="is not UTF-8 text"):
        load_toml(f)


def test_init_path_is_relative_to_the_experiment_file(tmp_path):
    (tmp_path / "sub").mkdir()
    save_params(init_params(get_preset("seed-numpy")), tmp_path / "sub" / "w.npz")
    (tmp_path / "sub" / "x.toml").write_text('[init]\nscheme = "file"\npath = "w.npz"\n')
    spec = load_toml(tmp_path / "sub" / "x.toml")
    assert init_params(spec)[0][0].tolist() == init_params(get_preset("seed-numpy"))[0][0].tolist()


def _not_a_file(kind, tmp_path):
    p = tmp_path / kind
    if kind == "directory":
        p.mkdir()
    elif kind == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs here")
        os.mkfifo(p)
    elif kind == "inside a file":
        (tmp_path / "f").write_text("")
        p = tmp_path / "f" / "x"
    return p


PATHS = {"missing": "does not exist", "directory": "is a directory, not a file",
         "fifo": "is not a regular file (a FIFO, socket or device)", "inside a file": "cannot be read (Not a directory)"}


@pytest.mark.parametrize("kind", PATHS, ids=PATHS.keys())
def test_paths_that_are_not_files_are_named_as_such(kind, tmp_path):
    """A directory or a FIFO is not "missing", and a FIFO is never opened (that would block)."""
    p = _not_a_file(kind, tmp_path)
    with pytest.raises(SpecError, match=re.escape(f"config file {str(p)!r} {PATHS[kind]}")):
        load_toml(p)
    with pytest.raises(ParamsError, match=re.escape(f"weights file {str(p)!r} {PATHS[kind]}")):
        load_params(p, get_preset("seed-numpy"))


def test_oversized_experiment_file_is_not_read(tmp_path):
    f = tmp_path / "big.toml"
    with open(f, "wb") as out:
        out.truncate(50 << 20)  # sparse: 50 MB that cost nothing to make
    with pytest.raises(SpecError, match="is 52,428,800 bytes; an experiment file is at most 1,048,576"):
        load_toml(f)


@pytest.mark.parametrize("name", PRESETS)
def test_presets_round_trip_through_dict_and_toml(name, tmp_path):
    spec = get_preset(name)
    assert Spec.from_dict(spec.to_dict()) == spec
    (tmp_path / "x.toml").write_text(dump_toml(spec))
    assert load_toml(tmp_path / "x.toml") == spec


def test_unknown_preset():
    with pytest.raises(SpecError, match="unknown preset 'seed-jax'; choose one of: seed-numpy, seed-keras"):
        get_preset("seed-jax")


# Any value of any TOML type, for any field: what validation accepts must run; what it rejects, it names.
ANY = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                   lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=5), kids, max_size=3),
                   max_leaves=6)
BIG = st.integers() | st.floats()
REAL = [0, -0.0, 1e-320, 0.5, 0.9999999999999999, 1, 1.0, 1e20, 1e308, float("nan"), float("inf"), -float("inf")]
EDGES = {  # each field's limits, and values just past them
    ("steps",): [0, 1, MAX_STEPS, MAX_STEPS + 1, 2**63 - 1, 10**23, 1e12, 1.0, True],
    ("batch_size",): [0, 1, 4, 5, -1, 2.0, True],
    ("init", "seed"): [0, MAX_SEED, MAX_SEED + 1, 2**63 - 1, 2**64, -1, 1.5, True],
    ("layers",): [[2, 0, 1], [2, 10**6, 1], [2, 2**31, 1], [2, 2**63, 1], [2, -1, 1], [2, 1.5, 1], [2, True, 1]],
    ("optimizer", "lr"): REAL, ("optimizer", "epsilon"): REAL, ("optimizer", "momentum"): REAL,
    ("optimizer", "beta1"): REAL, ("optimizer", "beta2"): REAL,
}


@st.composite
def valid_dicts(draw):
    hidden = draw(st.lists(st.integers(1, 8), max_size=3))
    acts = draw(st.lists(st.sampled_from(["tanh", "sigmoid", "relu", "linear"]), min_size=len(hidden) + 1,
                         max_size=len(hidden) + 1))
    return {"layers": [2, *hidden, 1], "activations": acts, "loss": "bce" if acts[-1] == "sigmoid" else "mse",
            "steps": draw(st.integers(1, 50)), "batch_size": draw(st.integers(1, 4)),
            "dtype": draw(st.sampled_from(["float32", "float64"])),
            "optimizer": {"name": draw(st.sampled_from(["sgd", "adam"])), "lr": draw(st.floats(1e-3, 1))},
            "init": {"scheme": draw(st.sampled_from(["seed-uniform", "glorot-uniform"])),
                     "seed": draw(st.integers(0, 99))}}


FIELDS = sorted(set(EDGES) | {(k,) for k in ("activations", "loss", "dtype", "optimizer", "init")}
                | {("init", "scheme"), ("optimizer", "name")})


@pytest.mark.parametrize("path", FIELDS, ids=[".".join(p) for p in FIELDS])
@settings(max_examples=25)
@given(d=valid_dicts(), data=st.data())
def test_whatever_validation_accepts_runs(path, d, data):
    """The class "a value that passes validation raises later". A valid experiment file with one field set to its
    limits, to a number of any size, or to a value of any type either fails validation with one line, or fails
    the memory pre-flight with one line, or yields initial weights, checkpoints and the same spec again."""
    how = data.draw(st.sampled_from(["edge", "number", "any"]) if path in EDGES else st.just("any"), label="how")
    value = data.draw(st.sampled_from(EDGES[path]) if how == "edge" else BIG if how == "number" else ANY, label="value")
    (d if len(path) == 1 else d[path[0]])[path[-1]] = value
    try:
        spec = Spec.from_dict(d)
    except SpecError as e:
        assert "\n" not in str(e)
        return
    try:
        check_fits(spec, 5)
    except XorRosettaError as e:
        assert "\n" not in str(e) and "is available" in str(e)
        return
    params = init_params(spec)
    assert [(W.shape, b.shape) for W, b in params] == shapes(spec)
    ks = checkpoints_for(spec.steps)
    assert ks[0] == 1 and ks[-1] == spec.steps
    assert Spec.from_dict(spec.to_dict()) == spec


# region weights files

SPEC = get_preset("seed-keras")


def _good():
    return {k: v for i, (W, b) in enumerate(init_params(SPEC)) for k, v in ((f"W{i}", W), (f"b{i}", b))}


def _write(tmp_path, **arrays):
    path = tmp_path / "w.npz"
    np.savez(path, **arrays)
    return path


def _zip(tmp_path, members: dict[str, bytes], name="w.npz"):
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as z:
        for n, b in members.items():
            z.writestr(n, b)
    return path


def _npy(a, **header) -> bytes:
    buf = io.BytesIO()
    if header:
        npy.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": a.shape, **header})
        buf.write(np.ascontiguousarray(a).tobytes())
    else:
        np.save(buf, a)
    return buf.getvalue()


def _file(path, data: bytes):
    path.write_bytes(data)
    return path


def _members(arrays=None):
    return {f"{k}.npy": _npy(v) for k, v in (arrays or _good()).items()}


def test_npz_round_trip(tmp_path):
    params = init_params(SPEC)
    save_params(params, tmp_path / "w.npz")
    with np.load(tmp_path / "w.npz") as z:
        assert z.files == ["W0", "b0", "W1", "b1", "W2", "b2"]
    loaded = load_params(tmp_path / "w.npz", SPEC)
    assert all(np.array_equal(a, b) for A, B in zip(params, loaded) for a, b in zip(A, B))
    assert [(W.shape, b.shape) for W, b in loaded] == shapes(SPEC)
    assert init_params(SPEC.replace(init=Init("file", path=str(tmp_path / "w.npz"))))[0][0].tolist() == params[0][0].tolist()


def test_npz_layouts_numpy_writes_are_read_exactly(tmp_path):
    """Compressed archives, Fortran order, big-endian and integer data load as NumPy itself loads them."""
    good = _good()
    odd = {**good, "W0": np.asfortranarray(good["W0"]), "W1": good["W1"].astype(">f8"), "b0": np.arange(5, dtype="i2")}
    np.savez_compressed(tmp_path / "c.npz", **odd)
    loaded = load_params(tmp_path / "c.npz", SPEC)
    with np.load(tmp_path / "c.npz") as z:
        assert all(np.array_equal(loaded[i // 2][i % 2], z[k]) for i, k in enumerate(["W0", "b0", "W1", "b1", "W2", "b2"]))


BAD_WEIGHTS = {
    "not a zip": (lambda t: _file(t / "t.npz", b"W0 = 1"), "is not an .npz archive"),
    "lacks b2": (lambda t: _write(t, **{k: v for k, v in _good().items() if k != "b2"}), "lacks b2"),
    "wrong shape": (lambda t: _write(t, **{**_good(), "W1": np.zeros((5, 4))}),
                    "W1 has shape (5, 4), the spec needs (5, 5)"),
    "NaN": (lambda t: _write(t, **{**_good(), "W0": np.full((2, 5), np.nan)}), "W0 contains NaN or infinite values"),
    "extra key": (lambda t: _write(t, **{**_good(), "W3": np.zeros(1)}), "unexpected keys W3"),
    "pickled objects": (lambda t: _write(t, **{**_good(), "W0": np.array([{"evil": 1}] * 10, dtype=object).reshape(2, 5)}),
                        "W0 holds pickled objects, which are never loaded"),
    "complex": (lambda t: _write(t, **{**_good(), "b0": np.zeros(5, complex)}), "b0 has dtype complex128, expected numbers"),
    "structured": (lambda t: _write(t, **{**_good(), "b0": np.zeros(5, [("a", "f8")])}), "b0 has dtype"),
    "truncated": (lambda t: _zip(t, {**_members(), "W1.npy": _members()["W1.npy"][:-8]}),
                  "W1 is truncated (its header declares 200 bytes of data, the member holds 192)"),
    "header only": (lambda t: _zip(t, {**_members(), "b2.npy": _members()["b2.npy"][:20]}),
                    "member 'b2.npy' is not valid .npy data"),
    "not .npy data": (lambda t: _zip(t, {**_members(), "W1.npy": b"hello world"}),
                      "member 'W1.npy' is not valid .npy data (ValueError: the magic string is not correct"),
    "empty member": (lambda t: _zip(t, {**_members(), "W0.npy": b""}), "member 'W0.npy' is not valid .npy data"),
    "a member without .npy": (lambda t: _zip(t, {**{k: v for k, v in _members().items() if k != "W0.npy"},
                                                 "W0": _members()["W0.npy"]}), "member 'W0' is not .npy data"),
    "a member twice": (lambda t: _zip(t, {**_members(), "W0": b"x"}), "holds W0 more than once"),
    "huge declared shape": (lambda t: _zip(t, {**_members(), "W0.npy": _npy(np.zeros(0), shape=(10**12, 10**6))}),
                            "W0 has shape (1000000000000, 1000000), the spec needs (2, 5)"),
    "damaged archive": (lambda t: _file(t / "d.npz", _zip(t, _members()).read_bytes()[:-30]),
                        "is not an .npz archive"),
}


@pytest.mark.parametrize("make,message", BAD_WEIGHTS.values(), ids=BAD_WEIGHTS.keys())
def test_bad_weights_file_names_the_problem(make, message, tmp_path):
    path = make(tmp_path)
    tracemalloc.start()
    try:
        with pytest.raises(ParamsError) as e:
            load_params(path, SPEC)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert message in str(e.value) and "\n" not in str(e.value)
    assert peak < 4 << 20  # headers are checked before any data is read: a huge declared shape costs nothing


def _load_or_fail(path):
    """load_params either succeeds or raises ParamsError with one line; nothing else."""
    try:
        params = load_params(path, SPEC)
    except ParamsError as e:
        assert "\n" not in str(e) and str(path) in str(e)
        return None
    assert [(W.shape, b.shape) for W, b in params] == shapes(SPEC)
    return params


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(member=st.sampled_from(sorted(_members())), data=st.binary(max_size=300))
def test_random_bytes_as_a_member(member, data, tmp_path):
    _load_or_fail(_zip(tmp_path, {**_members(), member: data}))


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(member=st.sampled_from(sorted(_members())), data=st.data())
def test_damaged_members(member, data, tmp_path):
    """A valid member, cut short or with bytes overwritten anywhere (the header included)."""
    raw = bytearray(_members()[member])
    if data.draw(st.booleans(), label="cut"):
        raw = raw[:data.draw(st.integers(0, len(raw)), label="at")]
    else:
        for _ in range(data.draw(st.integers(1, 4), label="flips")):
            at = data.draw(st.integers(0, len(raw) - 1), label="offset")
            raw[at] = data.draw(st.integers(0, 255), label="byte")
    _load_or_fail(_zip(tmp_path, {**_members(), member: bytes(raw)}))


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=2000), prefix=st.sampled_from([b"", b"PK\x03\x04", b"PK\x05\x06"]))
def test_random_bytes_as_a_weights_file(data, prefix, tmp_path):
    path = tmp_path / "r.npz"
    path.write_bytes(prefix + data)
    _load_or_fail(path)

# endregion


def test_optimizer_values_are_floats():
    assert Optimizer(lr=1).lr == 1.0 and isinstance(Optimizer(lr=1).lr, float)
