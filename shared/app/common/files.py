"""Writing results so that nothing is half-written and nothing is lost.

- `FileSet` / `write_set`: the files of one result (a report's json, md and plots; train's history and weights) are
  each written to a temporary file in the target folder first. Only when all are complete are they renamed into
  place, one after the other, under a lock on the folder (concurrent writers take turns) and with SIGINT and SIGTERM
  held until the last rename; files of the set that this write does not produce are removed in the same step. A
  failed write (a full disk) or an interrupt before that step leaves the earlier set as it was, and no temporary
  file. What is not covered: a hard kill (SIGKILL, power loss) during the renames themselves, which take
  microseconds, can leave a mix; a FileSet writes into a folder that other things may share, so it cannot swap the
  folder.
- `replace_dir`: a folder that holds one set and nothing else (the golden files) is rebuilt beside the old one and
  swapped in: with Linux's atomic exchange (renameat2 RENAME_EXCHANGE) where available, else two renames with
  those signals held; under a lock on the parent folder, so that concurrent writers take turns.
- `json_chunks` / `json_text`: strict JSON (NaN and infinities become null, as in report.json), written in chunks
  so that a long loss history never becomes one string in memory.
"""
from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from xor_rosetta.errors import XorRosettaError

CHUNK = 16_384  # array elements per chunk of JSON text (~0.5 MB of it)
_replace, _unlink = os.replace, os.unlink  # seams for the tests that fail each step of a write in turn


def _write(f, data: bytes) -> None:
    f.write(data)


# region JSON

def json_chunks(obj, indent: int = 2, level: int = 0) -> Iterator[str]:
    """Strict JSON text of `obj` in pieces, laid out like json.dumps(obj, indent=2); NaN and ±inf are null; NumPy
    arrays are written on one line, in chunks of CHUNK elements."""
    pad, inner = " " * (indent * level), " " * (indent * (level + 1))
    if obj is None or isinstance(obj, (bool, np.bool_)):
        yield "null" if obj is None else ("true" if obj else "false")
    elif isinstance(obj, (int, np.integer)):
        yield str(int(obj))
    elif isinstance(obj, (float, np.floating)):
        yield _float(float(obj))
    elif isinstance(obj, str):
        yield json.dumps(obj)
    elif isinstance(obj, np.ndarray):
        yield from _array(obj)
    elif isinstance(obj, dict):
        if not obj:
            yield "{}"
            return
        yield "{"
        for i, (k, v) in enumerate(obj.items()):
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise TypeError(f"keys must be str or int, not {type(k).__name__}")
            yield ("," if i else "") + "\n" + inner + json.dumps(str(k)) + ": "
            yield from json_chunks(v, indent, level + 1)
        yield "\n" + pad + "}"
    elif isinstance(obj, (list, tuple)):
        if not obj:
            yield "[]"
            return
        yield "["
        for i, v in enumerate(obj):
            yield ("," if i else "") + "\n" + inner
            yield from json_chunks(v, indent, level + 1)
        yield "\n" + pad + "]"
    else:
        raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _float(v: float) -> str:
    return repr(v) if math.isfinite(v) else "null"


def _array(a: np.ndarray) -> Iterator[str]:
    if a.ndim == 0:
        yield from json_chunks(a.item())
        return
    if a.ndim > 1:
        yield "["
        for i, row in enumerate(a):
            yield ", " if i else ""
            yield from _array(row)
        yield "]"
        return
    yield "["
    for start in range(0, len(a), CHUNK):
        part = a[start:start + CHUNK].tolist()  # Python numbers, CHUNK at a time
        text = ", ".join(_float(float(v)) if isinstance(v, float) else json.dumps(v) for v in part)
        yield (", " if start else "") + text
    yield "]"


def json_text(obj) -> str:
    """The whole of json_chunks(obj) (for --json output on stdout)."""
    return "".join(json_chunks(obj))

# endregion

# region sets of files


class FileSet:
    """Files of one result in one folder, replaced together (see the module docstring).

        with FileSet(out, family=REPORT_FILES) as files:
            files.write("report.json", report)  # bytes, text, or anything JSON
            ...
    commits on leaving the block without an exception, and discards every temporary file otherwise.
    `family`: every name a set of this kind may hold; those this write does not produce are removed at commit.
    """

    def __init__(self, folder: str | os.PathLike, family: Iterable[str] = ()):
        self.folder, self.family = Path(folder), set(family)
        self.temps: dict[str, Path] = {}  # name -> its temporary file, complete

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.commit()
        else:
            self.discard()

    def write(self, name: str, data) -> None:
        """bytes or str as they are; anything else as JSON. Written to a temporary file now."""
        if isinstance(data, (bytes, str)):
            self._write(name, [data.encode() if isinstance(data, str) else data])
        else:
            self.write_json(name, data)

    def write_json(self, name: str, obj) -> None:
        self._write(name, (c.encode() for c in _with_newline(json_chunks(obj))))

    def _write(self, name: str, chunks) -> None:
        target = self.folder / name
        tmp = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{name}.", suffix=".tmp")
            self.temps[name] = Path(tmp)
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    _write(f, chunk)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            self.discard()
            raise XorRosettaError(f"could not write {target} ({e.strerror or e}); nothing in {self.folder} was "
                                  f"changed") from None
        except BaseException:
            self.discard()
            raise

    def commit(self) -> None:
        """Rename every file into place and remove the family's files not written, all in one step."""
        written = list(self.temps)
        try:
            with folder_lock(self.folder), held_signals():
                for name, tmp in list(self.temps.items()):
                    _replace(tmp, self.folder / name)
                    del self.temps[name]
                for name in sorted(self.family - set(written)):
                    with contextlib.suppress(FileNotFoundError):
                        _unlink(self.folder / name)
        except OSError as e:
            raise XorRosettaError(f"could not replace the files in {self.folder} ({e.strerror or e})") from None
        finally:
            self.discard()
        _fsync_dir(self.folder)

    def discard(self) -> None:
        """Remove every temporary file not yet renamed into place."""
        for tmp in self.temps.values():
            with contextlib.suppress(OSError):
                tmp.unlink()
        self.temps = {}


def _with_newline(chunks):
    yield from chunks
    yield "\n"


def write_set(folder: str | os.PathLike, files: dict, family: Iterable[str] = ()) -> None:
    """Write {name: bytes | str | JSON-able} into `folder` as one set (see FileSet)."""
    with FileSet(folder, family) as fs:
        for name, data in files.items():
            fs.write(name, data)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    path = Path(path)
    write_set(path.parent, {path.name: bytes(data)})


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    path = Path(path)
    write_set(path.parent, {path.name: str(text)})


def atomic_write_json(path: str | os.PathLike, obj) -> None:
    path = Path(path)
    with FileSet(path.parent) as fs:
        fs.write_json(path.name, obj)


def save_params(params, path: str | os.PathLike) -> None:
    """Canonical params as an .npz (W0, b0, W1, b1, ...), written atomically."""
    from xor_rosetta.params import npz_bytes
    atomic_write_bytes(path, npz_bytes(params))

# endregion

# region whole folders


def new_dir_beside(folder: Path) -> Path:
    """An empty hidden folder next to `folder`, to build its replacement in."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{folder.name}-new-", dir=folder.parent))


def replace_dir(new: Path, folder: Path) -> None:
    """Put the folder `new` in the place of `folder` in one step, and delete the old one (see the module docstring).
    Concurrent calls for one folder take turns; each leaves a complete set, the last one's."""
    parent = folder.parent
    with folder_lock(parent):
        for stale in parent.glob(f".{folder.name}-old-*"):  # left by a hard kill during an earlier swap
            shutil.rmtree(stale, ignore_errors=True)
        old = None
        with held_signals():
            if folder.exists() and _exchange(new, folder):
                old = new  # `new` now names the previous set
            else:
                if folder.exists():
                    old = parent / f".{folder.name}-old-{new.name.rsplit('-', 1)[-1]}"
                    _replace(folder, old)
                try:
                    _replace(new, folder)
                except BaseException:
                    if old is not None:
                        _replace(old, folder)  # put the previous set back
                    raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    _fsync_dir(parent)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 with RENAME_EXCHANGE); False where that is not available."""
    fn = _renameat2()
    if fn is None:
        return False
    import ctypes
    if fn(-100, os.fsencode(a), -100, os.fsencode(b), 2) == 0:  # AT_FDCWD, RENAME_EXCHANGE
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
        return False  # this file system cannot exchange: fall back to two renames
    raise OSError(err, os.strerror(err), str(b))


_RENAMEAT2 = []


def _renameat2():
    if not _RENAMEAT2:
        fn = None
        if os.name == "posix":
            try:
                import ctypes
                fn = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
            except (OSError, AttributeError, ImportError):
                fn = None
        _RENAMEAT2.append(fn)
    return _RENAMEAT2[0]

# endregion

# region locks and signals


@contextlib.contextmanager
def folder_lock(folder: Path):
    """An exclusive lock on a folder (flock on the folder itself, so no lock file is left behind); waits for
    another xor-rosetta process that holds it. A no-op where folders cannot be locked."""
    try:
        import fcntl
        fd = os.open(folder, os.O_RDONLY)
    except (ImportError, OSError):
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # a file system without locks
            pass
        yield
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def held_signals():
    """Hold SIGINT and SIGTERM for the duration of the block, then act on any that arrived."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    sigs = [s for s in (signal.SIGINT, getattr(signal, "SIGTERM", None)) if s is not None]
    before = {s: signal.getsignal(s) for s in sigs}
    if any(h is None for h in before.values()):  # a handler not set from Python: cannot be restored
        yield
        return
    arrived = []
    for s in sigs:
        signal.signal(s, lambda n, frame: arrived.append(n))
    try:
        yield
    finally:
        for s, h in before.items():
            signal.signal(s, h)
        for s in dict.fromkeys(arrived):
            signal.raise_signal(s)  # delivered now, to the handler it was meant for

# endregion


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
