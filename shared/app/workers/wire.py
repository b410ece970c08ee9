"""What crosses between a worker and its parent: references to objects kept in a worker, the errors, and the
unpickling that lets only NumPy arrays and plain data leave a worker."""
from __future__ import annotations

import pickle
import sys
from dataclasses import dataclass


# ---------------------------------------------------------------------------------------------------- messages

@dataclass(frozen=True)
class Ref:
    """An object kept in a worker (a task submitted with keep=True); pass it as an argument, or call a `Method`."""
    id: int
    pid: int  # the worker that holds it


@dataclass(frozen=True)
class Method:
    """A method of an object kept in a worker, as the function of a task."""
    ref: Ref
    name: str


class WorkerError(RuntimeError):
    """The worker running a task died, or ran past its timeout; str() is the one-line reason."""


class RemoteError(RuntimeError):
    """A task raised an exception whose class the parent does not import (a framework's, say)."""

    def __init__(self, type_name: str, message: str, remote_traceback: str = ""):
        super().__init__(f"{type_name}: {message}")
        self.type_name, self.message, self.remote_traceback = type_name, message, remote_traceback



def exit_reason(returncode: int) -> str:
    if returncode < 0:
        return f"worker died (signal {-returncode})"
    return f"worker exited with status {returncode}"


_SAFE_MODULES = ("builtins", "xor_rosetta")  # exception classes the parent may unpickle without importing a framework


_PARENT_SIDE = {"numpy", "xor_rosetta", *sys.stdlib_module_names}  # what the parent may import to unpickle a reply


class _Unpickler(pickle.Unpickler):
    """Unpickles what a worker sends, refusing any class the parent would have to import a framework for: only
    NumPy arrays and plain data cross the boundary (modules the parent has already imported are fine)."""

    def find_class(self, module, name):
        if module.split(".")[0] not in _PARENT_SIDE and module not in sys.modules:
            raise pickle.UnpicklingError(f"a worker sent a {module}.{name}: only NumPy arrays and plain data may "
                                         f"leave a worker")
        return super().find_class(module, name)


def _loads(blob: bytes):
    import io
    return _Unpickler(io.BytesIO(blob)).load()


def _exception(blob: bytes, remote_tb: str) -> BaseException:
    try:
        exc = _loads(blob)
    except Exception as e:  # noqa: BLE001 - a class that does not unpickle: say what it was
        return RemoteError("exception", f"(not transferable: {e})", remote_tb)
    if isinstance(exc, RemoteError):
        exc.remote_traceback = remote_tb
    return exc


