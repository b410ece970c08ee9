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


_SAFE_MODULES = ("builtins", "xor_rosetta")  # exception classes the parent may rebuild without importing a framework
_PLAIN = (str, int, float, bool, type(None))


def plain_exception(e: BaseException) -> tuple:
    """An exception as plain data, to cross from a worker to its parent: ("exception", module, class name, args
    (None unless all plain), message). Never the exception object: a library in the worker may have changed how
    exceptions pickle (tblib's pickling_support pickles them by a function of its own), and the parent must not
    import what a worker imported."""
    cls = type(e)
    try:
        message = str(e)
    except Exception:  # noqa: BLE001 - a __str__ that fails
        message = f"<{cls.__name__} whose message cannot be shown>"
    args = getattr(e, "args", None)
    plain = isinstance(args, tuple) and len(args) <= 8 and all(
        isinstance(a, _PLAIN) and (not isinstance(a, str) or len(a) <= 10_000) for a in args)
    return ("exception", str(getattr(cls, "__module__", "")), str(getattr(cls, "__qualname__", cls.__name__)),
            args if plain else None, message[:10_000])


def _rebuild(module: str, name: str, args, message: str) -> BaseException | None:
    """The exception itself, where its class is a built-in's or one of xor_rosetta's already imported here (so that
    `except UnavailableError` still works), and it is an Exception: a worker's SystemExit or KeyboardInterrupt must
    not end its parent. None otherwise."""
    if module.split(".")[0] not in _SAFE_MODULES or module not in sys.modules:
        return None
    cls = sys.modules[module]
    for part in name.split("."):
        cls = getattr(cls, part, None)
    if not (isinstance(cls, type) and issubclass(cls, Exception)):
        return None
    try:
        exc = cls(*args) if args is not None else cls(message)
    except Exception:  # noqa: BLE001 - a constructor that wants other arguments
        return None
    try:
        return exc if str(exc) == message else None
    except Exception:  # noqa: BLE001
        return None


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
    """The exception a worker reported (`plain_exception`): rebuilt where that is safe, else a RemoteError with
    its type name and message; the worker's traceback text rides along as `remote_traceback`."""
    try:
        data = _loads(blob)
    except Exception as e:  # noqa: BLE001 - not from this version's worker
        return RemoteError("exception", f"(not transferable: {e})", remote_tb)
    if not (isinstance(data, tuple) and len(data) == 5 and data[0] == "exception"
            and all(isinstance(x, str) for x in (data[1], data[2], data[4]))):
        return RemoteError("exception", f"(not an exception: {type(data).__name__})", remote_tb)
    _, module, name, args, message = data
    exc = _rebuild(module, name, args, message)
    if exc is None:
        exc = RemoteError(name.rsplit(".", 1)[-1], message, remote_tb)
    exc.remote_traceback = remote_tb
    return exc
