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
    from xor_rosetta.app.workers import note
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
