"""Canonical parameters: a list of (W_i, b_i), W_i of shape (fan_in, fan_out), b_i of (fan_out,), float64.

Created once here and handed to every implementation, which converts them to its own layout.
Saved as .npz with keys W0, b0, W1, b1, ...; loading never unpickles.
"""
from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np

from .errors import ParamsError
from .spec import Spec

Params = list[tuple[np.ndarray, np.ndarray]]  # [(W0 (in, out), b0 (out,)), ...]


def shapes(spec: Spec) -> list[tuple[tuple[int, int], tuple[int]]]:
    return [((i, o), (o,)) for i, o in zip(spec.layers[:-1], spec.layers[1:])]


def init_params(spec: Spec) -> Params:
    """Initial weights for `spec`, by its init scheme."""
    init = spec.init
    if init.scheme == "file":
        return load_params(init.path, spec)
    if init.scheme == "seed-uniform":  # the seed listing: np.random.seed(s); W = 2*random((in, out)) - 1
        rs = np.random.RandomState(init.seed)  # same stream as np.random.seed + np.random.random
        return [(2 * rs.random_sample(w) - 1, np.zeros(b)) for w, b in shapes(spec)]
    rng = np.random.default_rng(init.seed)  # glorot-uniform: U(-l, l), l = sqrt(6 / (in + out)), zero bias
    return [(rng.uniform(-1, 1, w) * np.sqrt(6.0 / sum(w)), np.zeros(b)) for w, b in shapes(spec)]


def to_float64(params) -> Params:
    return [(np.array(W, dtype=np.float64), np.array(b, dtype=np.float64)) for W, b in params]


def flat(params: Params) -> dict[str, np.ndarray]:
    """{'W0': ..., 'b0': ..., 'W1': ...} in layer order."""
    out = {}
    for i, (W, b) in enumerate(params):
        out[f"W{i}"], out[f"b{i}"] = W, b
    return out


def check_params(params: Params, spec: Spec, source: str = "params") -> Params:
    """Shapes must match the spec and every value must be finite."""
    want = shapes(spec)
    if len(params) != len(want):
        raise ParamsError(f"{source}: has {len(params)} layers, the spec has {len(want)}")
    for i, ((W, b), (ws, bs)) in enumerate(zip(params, want)):
        for name, a, s in ((f"W{i}", W, ws), (f"b{i}", b, bs)):
            if a.shape != s:
                raise ParamsError(f"{source}: {name} has shape {a.shape}, the spec needs {s}")
            if not np.all(np.isfinite(a)):
                raise ParamsError(f"{source}: {name} contains NaN or infinite values")
    return params


def npz_bytes(params: Params) -> bytes:
    """The .npz file of `params` (W0, b0, W1, b1, ... as float64), as bytes; `xor_rosetta.app.files` writes it."""
    buf = io.BytesIO()
    np.savez(buf, **flat(to_float64(params)))
    return buf.getvalue()


def load_params(path: str | os.PathLike, spec: Spec) -> Params:
    """Load W0, b0, ... from an .npz, checked against `spec`. Never unpickles."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"weights file {str(path)!r} does not exist")
    if not zipfile.is_zipfile(path):
        raise ParamsError(f"weights file {str(path)!r} is not an .npz archive")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except ValueError as e:  # object arrays refuse to load without pickle
        raise ParamsError(f"weights file {str(path)!r} holds pickled objects, which are never loaded ({e})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as e:
        raise ParamsError(f"weights file {str(path)!r} is unreadable: {e}") from None
    n = len(spec.layers) - 1
    want = [f"{p}{i}" for i in range(n) for p in "Wb"]
    missing = [k for k in want if k not in arrays]
    if missing:
        raise ParamsError(f"weights file {str(path)!r} lacks {', '.join(missing)} (needs {', '.join(want)})")
    extra = sorted(set(arrays) - set(want))
    if extra:
        raise ParamsError(f"weights file {str(path)!r} has unexpected keys {', '.join(extra)} (needs {', '.join(want)})")
    for k in want:
        if arrays[k].dtype.kind not in "fiu":
            raise ParamsError(f"weights file {str(path)!r}: {k} has dtype {arrays[k].dtype}, expected numbers")
    params = [(arrays[f"W{i}"].astype(np.float64), arrays[f"b{i}"].astype(np.float64)) for i in range(n)]
    return check_params(params, spec, source=f"weights file {str(path)!r}")
