"""Implementations that exist only in the tests: each breaks its worker in one way, in train().

Run them as plug-ins: `xor-rosetta compare --impls numpy,tests/impls/crashy.py:SegfaultMLP`.
"""
from __future__ import annotations

import os
import signal
import time

from xor_rosetta.implementations.numpy_mlp import NumpyMLP


class SegfaultMLP(NumpyMLP):
    name = "segfault"

    def train(self, x, y, steps=None, checkpoints=()):
        import resource
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file
        os.kill(os.getpid(), signal.SIGSEGV)


class ExitMLP(NumpyMLP):
    name = "exit"

    def train(self, x, y, steps=None, checkpoints=()):
        os._exit(3)


class KilledMLP(NumpyMLP):
    name = "killed"

    def train(self, x, y, steps=None, checkpoints=()):
        os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's OOM killer would


class HangMLP(NumpyMLP):
    name = "hang"

    def train(self, x, y, steps=None, checkpoints=()):
        if os.environ.get("XR_HANG_SAYS"):  # the interrupt tests wait for this line before they send a signal
            os.write(2, b"hang: training\n")
        while True:
            time.sleep(1)


class RaisesMLP(NumpyMLP):
    name = "raises"

    def train(self, x, y, steps=None, checkpoints=()):
        raise RuntimeError("broken on purpose")
