"""The worker side: a worker process serves its parent's tasks one at a time, and ends when its parent goes."""
from __future__ import annotations

import os
import pickle
import signal
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any

from xor_rosetta.app.workers.wire import Method, Ref, plain_exception

_current: tuple[Connection, int] | None = None  # in a worker: (connection to the parent, id of the running task)


def _spawned_main(inbox, outbox, env) -> None:
    os.environ.update(env)
    serve(inbox, outbox)



def note(value) -> None:
    """Inside a task running in a worker: send `value` to the parent now (Pool.results yields it as a note).
    Elsewhere, nothing."""
    if _current is not None:
        conn, task = _current
        conn.send(("note", task, value))


def in_worker() -> bool:
    return _current is not None


# --------------------------------------------------------------------------------------------- the worker side

def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:  # the parent is gone (killed): end this worker and what it started
            if os.name == "posix" and os.getpgid(0) == os.getpid():  # leads its own session (START "exec")
                os.killpg(0, signal.SIGKILL)
            os._exit(1)


def rss_mb() -> float | None:
    """This process's peak resident memory so far, in MB (None where the platform cannot say)."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 ** 2 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def _resolve(x, objects):
    return objects[x.id] if isinstance(x, Ref) else x


def serve(inbox: Connection, outbox: Connection) -> None:
    """The worker's loop: run tasks until the parent says stop or goes away."""
    global _current
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it ends the workers
    parent = os.getppid()
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    objects: dict[int, Any] = {}
    while True:
        try:
            msg = inbox.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        if msg[0] == "path":
            sys.path[:] = msg[1]
            continue
        if msg[0] == "forget":
            for ref in msg[1]:
                objects.pop(ref, None)
            continue
        task, payload = msg
        outbox.send(("start", task))
        _current = (outbox, task)
        start = time.perf_counter()
        try:
            fn, args, kwargs, keep = pickle.loads(payload)
            if isinstance(fn, Method):
                fn = getattr(objects[fn.ref.id], fn.name)
            value = fn(*(_resolve(a, objects) for a in args), **{k: _resolve(v, objects) for k, v in kwargs.items()})
            if keep:
                objects[task] = value
                value = Ref(task, os.getpid())
            reply = ("done", task, value, time.perf_counter() - start, rss_mb())
            blob = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException as e:  # noqa: BLE001 - reported to the parent, who decides
            reply = ("fail", task, _pickle_exception(e), short_traceback(), time.perf_counter() - start, rss_mb())
            blob = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        _current = None
        outbox.send_bytes(blob)


def short_traceback(limit: int = 4000) -> str:
    """The current exception's traceback as text, its last `limit` characters (where it was raised)."""
    try:
        text = traceback.format_exc()
    except Exception:  # noqa: BLE001 - an exception whose __str__ fails, say
        return ""
    return text if len(text) <= limit else "...\n" + text[-limit:]


def _pickle_exception(e: BaseException) -> bytes:
    """The exception as plain data (wire.plain_exception), pickled: only strings, numbers and None, whatever a
    library installed here does to the pickling of exceptions (tblib's pickling_support, say)."""
    return pickle.dumps(plain_exception(e), protocol=pickle.HIGHEST_PROTOCOL)
