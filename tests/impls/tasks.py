"""Module-level task functions for tests/test_workers.py (a worker imports a task's function by name)."""
from __future__ import annotations

import os
import time


def pid_and_env(name: str) -> tuple[int, str | None]:
    return os.getpid(), os.environ.get(name)


def sleep_then(seconds: float, value):
    time.sleep(seconds)
    return value


def send_notes(n: int) -> int:
    from xor_rosetta.app.workers.serve import note
    for i in range(n):
        note(i)
    return n


def foreign_object():
    from impls.foreign import Thing  # a module the parent never imports
    return Thing()


def raise_value_error(message: str):
    raise ValueError(message)


def imported(module: str) -> bool:
    import sys
    return module in sys.modules


def repeat_runs(name: str, specs: list, repeats: int = 2) -> list[list]:
    """`train_impl` (what compare runs in a worker) on each spec, then all of them again: [spec][repeat] -> ImplRun.
    The second round runs after the other specs ran in this process, so state a run leaves behind would show."""
    from xor_rosetta.app.run.runner import checkpoints_for, train_impl
    from xor_rosetta.params import init_params
    out = [[] for _ in specs]
    for _ in range(repeats):
        for i, spec in enumerate(specs):
            out[i].append(train_impl(name, spec, init_params(spec), checkpoints_for(spec.steps)))
    return out
