"""A Python target of `xor-rosetta verify` hosted in a worker process, so that nothing it does (exit, crash, hang,
print, write into what it is given, hand back live buffers) can end or fool the verification: `contained_subject`.

The parent never imports the target: the worker loads it, describes what the class declares, and builds one
instance per script; every call crosses the worker's pipe, so the target gets its own copies of the spec and the
data, and what comes back is a copy made of NumPy arrays. sys.exit and KeyboardInterrupt in the target are
errors of the call; a worker that dies (os._exit, a segfault) or runs past a deadline (`Clock`: per check and
overall) fails the call with its reason, and the next script gets a fresh worker. The worker's stdout is the
parent's stderr (`pool.Worker`), so `verify --json` prints JSON alone.
"""
from __future__ import annotations

import time

import numpy as np

from xor_rosetta.app.workers.pool import Workers
from xor_rosetta.app.workers.remote import Forwarded
from xor_rosetta.app.workers.wire import WorkerError
from xor_rosetta.errors import XorRosettaError


class Clock:
    """The deadlines of the calls into a target: `per_check` seconds from each `start_check`, and `total`
    seconds from the clock's start (None: no limit)."""

    def __init__(self, per_check: float | None = None, total: float | None = None):
        self.per_check, self.total = per_check, total
        self.started = self.check_started = time.monotonic()

    def start_check(self) -> None:
        self.check_started = time.monotonic()

    def left(self) -> tuple[float | None, str]:
        """Seconds left for the next call (None: no limit), and the option that sets that limit."""
        now, limits = time.monotonic(), []
        if self.per_check is not None:
            limits.append((self.check_started + self.per_check - now, f"--timeout {self.per_check:g} s (per check)"))
        if self.total is not None:
            limits.append((self.started + self.total - now, f"--total-timeout {self.total:g} s"))
        return min(limits) if limits else (None, "")


# ------------------------------------------------------------------------------------------- in the worker

def _guarded(fn, *args, **kwargs):
    """fn(*args, **kwargs), with sys.exit and KeyboardInterrupt turned into errors of the call."""
    try:
        return fn(*args, **kwargs)
    except SystemExit as e:
        raise RuntimeError(f"called sys.exit({e.code!r})") from None
    except KeyboardInterrupt:
        raise RuntimeError("raised KeyboardInterrupt") from None


def _describe(name: str) -> dict:
    """What the class `name` declares about itself, as plain data."""
    from xor_rosetta import registry
    from xor_rosetta.checks.subject import declared_conventions
    cls = _guarded(registry.load, name)
    conv = declared_conventions(cls)
    return {"conventions": None if conv is None else conv.to_dict(), "supports": getattr(cls, "supports", None),
            "known_differences": getattr(cls, "known_differences", None)}


def _build(name: str, spec, params):
    from xor_rosetta import registry
    return _guarded(registry.load(name), spec, params)


def _plain(v):
    """What a method returned, as copies made of NumPy arrays and plain data (a History stays a History)."""
    from xor_rosetta.interface import History
    if hasattr(v, "loss") and hasattr(v, "checkpoints"):
        return History(_plain(v.loss), {k: _plain(c) for k, c in dict(v.checkpoints).items()})
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, (np.ndarray, np.generic)) or hasattr(v, "__array__"):
        return np.array(v)
    return v


def _method(obj, name: str, *args, **kwargs):
    return _plain(_guarded(getattr(obj, name), *args, **kwargs))


def _steps_done(obj) -> int:
    return int(_guarded(getattr, obj, "steps_done"))


# ------------------------------------------------------------------------------------------- in the parent

class _Host:
    """The factory `(spec, params) -> model` of a contained target."""

    def __init__(self, name: str, group: str, env, workers: Workers, clock: Clock):
        self.name, self.group, self.env, self.workers, self.clock = name, group, dict(env), workers, clock

    def __call__(self, spec, params) -> "ContainedMLP":
        return ContainedMLP(self, spec, params)

    def run(self, worker, fn, *args, keep: bool = False, **kwargs):
        timeout, option = self.clock.left()
        if timeout is not None and timeout <= 0:
            raise TimeoutError(f"not called: past {option}")
        try:
            return worker.call(fn, *args, keep=keep, timeout=timeout, **kwargs)
        except WorkerError as e:
            if timeout is not None and str(e).startswith("timeout"):
                raise TimeoutError(f"ran past {option}; its worker was stopped") from None
            raise


class ContainedMLP(Forwarded):
    """One instance of the target, living in its worker; the MLP interface, forwarded."""

    def __init__(self, host: _Host, spec, params):
        self._host, self.spec = host, spec
        self._worker = host.workers.get(host.group, host.env)  # a fresh one if the last died
        self._ref = host.run(self._worker, _build, host.name, spec, params, keep=True)

    def _call(self, name, *args, **kwargs):
        return self._host.run(self._worker, _method, self._ref, name, *args, **kwargs)

    @property
    def steps_done(self) -> int:
        return self._host.run(self._worker, _steps_done, self._ref)

    def __del__(self):
        ref, worker = getattr(self, "_ref", None), getattr(self, "_worker", None)
        if ref is not None and worker is not None and not worker.closed:
            worker.forget(ref)


def contained_subject(name: str, workers: Workers, clock: Clock):
    """The Subject of `xor_rosetta.checks` for the registry name `name` (built-in, plug-in, `module:Class`,
    `file.py:Class`), hosted in a worker of `workers`: described there, never imported here. A target that
    cannot even be loaded (it raises, exits or hangs at import) is bad input: XorRosettaError says why."""
    from xor_rosetta import registry
    from xor_rosetta.checks.subject import Subject, declared_known_differences, declared_supports
    from xor_rosetta.interface import Conventions
    entry = registry.get_entry(name)  # unknown names: UnavailableError
    reason = registry.unavailable_reason(entry)
    if reason is not None:
        from xor_rosetta.errors import UnavailableError
        raise UnavailableError(reason)
    host = _Host(name, entry.process_key, entry.env, workers, clock)
    try:
        info = host.run(workers.get(host.group, host.env), _describe, name)
    except XorRosettaError:
        raise
    except Exception as e:  # noqa: BLE001 - whatever loading the target did, in words
        raise XorRosettaError(f"cannot load {name}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                              .rstrip(": ")) from None
    declared = type(name, (), {"supports": info["supports"], "known_differences": info["known_differences"]})
    conv = None if info["conventions"] is None else Conventions(**info["conventions"])
    return Subject(name, host, "built-in" if entry.builtin else entry.summary, conv, declared_supports(declared),
                   declared_known_differences(declared))
