"""Canonical parameters: a list of (W_i, b_i), W_i of shape (fan_in, fan_out), b_i of (fan_out,), float64.

Created once here and handed to every implementation, which converts them to its own layout.
Saved as .npz with keys W0, b0, W1, b1, ...; loading never unpickles.
"""
from __future__ import annotations

import io
import math
import os
import stat
import warnings
import zipfile
from pathlib import Path

import numpy as np
import numpy.lib.format as npy

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
    """The .npz file of `params` (W0, b0, W1, b1, ... as float64), as bytes; `xor_rosetta.app.common.files` writes it."""
    buf = io.BytesIO()
    np.savez(buf, **flat(to_float64(params)))
    return buf.getvalue()


def regular_file(path: str | os.PathLike, what: str, error: type[Exception] = ParamsError) -> tuple[Path, int]:
    """(path, size) of a readable regular file, checked before opening it (a FIFO would block): the error names the
    problem -- missing, a directory, not a regular file, not readable."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise error(f"{what} {str(path)!r} does not exist") from None
    except ValueError:  # an embedded NUL
        raise error(f"{what} {str(path)!r} is not a valid file name (it contains a NUL character)") from None
    except OSError as e:  # permission denied on a folder, a loop of links, a name too long, a file as a folder
        raise error(f"{what} {str(path)!r} cannot be read ({e.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{what} {str(path)!r} is a directory, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{what} {str(path)!r} is not a regular file (a FIFO, socket or device)")
    return path, st.st_size


def load_params(path: str | os.PathLike, spec: Spec) -> Params:
    """Load W0, b0, ... from an .npz, checked against `spec`. Never unpickles.

    Each member's .npy header is read and its dtype and shape checked against the spec before any of its data is:
    a member that declares a huge shape costs nothing, and one that is not .npy data is named.
    """
    path, _ = regular_file(path, "weights file")
    where = f"weights file {str(path)!r}"
    n = len(spec.layers) - 1
    want = {f"{p}{i}": s for i, (ws, bs) in enumerate(shapes(spec)) for p, s in (("W", ws), ("b", bs))}
    try:
        with open(path, "rb") as f:
            if not zipfile.is_zipfile(f):
                raise ParamsError(f"{where} is not an .npz archive")
            with zipfile.ZipFile(f) as z:
                arrays = _read_members(z, want, where)
    except ParamsError:
        raise
    except OSError as e:
        raise ParamsError(f"{where} cannot be read ({e.strerror or e})") from None
    except Exception as e:  # zipfile's own errors on a damaged archive: BadZipFile, NotImplementedError, ...
        raise ParamsError(f"{where} is a damaged .npz archive ({_why(e)})") from None
    params = [(arrays[f"W{i}"].astype(np.float64), arrays[f"b{i}"].astype(np.float64)) for i in range(n)]
    return check_params(params, spec, source=where)


def _why(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _read_members(z: zipfile.ZipFile, want: dict[str, tuple], where: str) -> dict[str, np.ndarray]:
    names = z.namelist()
    keys = [m[:-4] if m.endswith(".npy") else m for m in names]  # np.savez names the member of W0 "W0.npy"
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ParamsError(f"{where} holds {', '.join(twice)} more than once")
    missing = [k for k in want if k not in keys]
    if missing:
        raise ParamsError(f"{where} lacks {', '.join(missing)} (needs {', '.join(want)})")
    extra = sorted(set(keys) - set(want))
    if extra:
        raise ParamsError(f"{where} has unexpected keys {', '.join(extra)} (needs {', '.join(want)})")
    out = {}
    for member, key in zip(names, keys):
        if not member.endswith(".npy"):
            raise ParamsError(f"{where}: member {member!r} is not .npy data (an .npz holds W0.npy, b0.npy, ...)")
        out[key] = _read_npy(z, member, key, want[key], where)
    return out


def _read_npy(z: zipfile.ZipFile, member: str, key: str, shape: tuple, where: str) -> np.ndarray:
    """One member: its header first (dtype and shape checked), then exactly the data that header declares."""
    with z.open(member) as f:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # numpy warns about headers written by Python 2
                version = npy.read_magic(f)
                if version not in ((1, 0), (2, 0)):
                    raise ValueError(f"unsupported .npy format version {version}")
                read_header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
                got_shape, fortran, dtype = read_header(f)
        except ParamsError:
            raise
        except Exception as e:  # ValueError from numpy for a bad magic or header; a short member
            raise ParamsError(f"{where}: member {member!r} is not valid .npy data ({_why(e)})") from None
        if dtype.hasobject:
            raise ParamsError(f"{where}: {key} holds pickled objects, which are never loaded (dtype {dtype})")
        if dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in "fiu":
            raise ParamsError(f"{where}: {key} has dtype {dtype}, expected numbers")
        if tuple(got_shape) != tuple(shape):
            raise ParamsError(f"{where}: {key} has shape {tuple(got_shape)}, the spec needs {tuple(shape)}")
        size = math.prod(shape) * dtype.itemsize
        data = f.read(size)
        if len(data) < size:
            raise ParamsError(f"{where}: {key} is truncated (its header declares {size:,} bytes of data, "
                              f"the member holds {len(data):,})")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
