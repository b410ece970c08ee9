"""An implementation in any language, run as a child process: `xor-rosetta verify --cmd "node mlp.js"` and
`xor-rosetta compare --cmd "..."` drive it through this protocol (documented in docs/protocol.md).

One JSON object per line: requests on the child's stdin, one answer per request on its stdout (stderr is free
for the child's own messages). Every float in an array, and every loss, travels as a string that round-trips
exactly: Python's repr or JavaScript's String(x) ("0.1", "-1.5e-07", "NaN", "Infinity") or a C99 hex float
("0x1.999999999999ap-4", printf's %a); a plain JSON number is accepted on the way back too. The spec's own
numbers (learning rate, betas, epsilon) are JSON numbers, which are exact in both directions.
"""
from __future__ import annotations

import atexit
import itertools
import json
import math
import queue
import shlex
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from xor_rosetta.errors import XorRosettaError
from xor_rosetta.interface import Conventions, History

VERSION = 1
TIMEOUT_S = 120.0  # for one answer (a train request of 10,000 steps included)


class ProtocolError(XorRosettaError):
    """The child process broke the protocol, failed a request, or exited."""


def encode_number(v) -> str:
    v = float(v)
    return repr(v) if math.isfinite(v) else {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}[repr(v)]


def decode_number(s) -> float:
    if isinstance(s, bool) or not isinstance(s, (str, int, float)):
        raise ProtocolError(f"expected a number as a string, got {json.dumps(s)[:40]}")
    if isinstance(s, str) and "x" in s.lower() and "inf" not in s.lower():
        return float.fromhex(s)
    try:
        return float(s)
    except ValueError:
        raise ProtocolError(f"not a number: {s!r}") from None


def encode_array(a) -> list:
    a = np.asarray(a, dtype=np.float64)
    return [encode_array(r) for r in a] if a.ndim else encode_number(a)


def decode_array(obj, shape: tuple | None = None) -> np.ndarray:
    def walk(o):
        return [walk(x) for x in o] if isinstance(o, list) else decode_number(o)
    a = np.array(walk(obj), dtype=np.float64)
    if shape is not None and a.shape != tuple(shape):
        if a.size == int(np.prod(shape)) and a.ndim == 1 and len(shape) == 1:
            return a
        raise ProtocolError(f"expected an array of shape {tuple(shape)}, got {a.shape}")
    return a


def encode_params(params) -> list:
    return [[encode_array(W), encode_array(b)] for W, b in params]


def decode_params(obj, what: str) -> list:
    if not isinstance(obj, list) or not all(isinstance(p, list) and len(p) == 2 for p in obj):
        raise ProtocolError(f"{what} must be a list of [W, b] pairs")
    return [(decode_array(W), decode_array(b)) for W, b in obj]


class Child:
    """One child process: requests in, answers out, one at a time; its stderr kept in a temporary file."""

    def __init__(self, command: str, timeout: float = TIMEOUT_S, cwd: str | None = None):
        self.command, self.timeout = command, timeout
        try:
            argv = shlex.split(command)
        except ValueError as e:
            raise XorRosettaError(f"--cmd {command!r}: {e}") from None
        if not argv:
            raise XorRosettaError("--cmd needs a command to run")
        self.stderr = tempfile.TemporaryFile(mode="w+")
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                         text=True, bufsize=1, cwd=cwd)
        except OSError as e:
            raise XorRosettaError(f"cannot start {command!r}: {e.strerror or e}") from None
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.lock = threading.Lock()
        atexit.register(self.close)

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)  # end of output

    def _stderr_tail(self) -> str:
        self.stderr.seek(0)
        text = self.stderr.read().strip().splitlines()
        return f"; its stderr ends: {text[-1][:200]}" if text else ""

    def request(self, message: dict) -> dict:
        with self.lock:
            if self.proc.poll() is not None:
                raise ProtocolError(f"{self.command!r} has exited (status {self.proc.returncode}){self._stderr_tail()}")
            try:
                self.proc.stdin.write(json.dumps(message, separators=(",", ":")) + "\n")
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError):
                raise ProtocolError(f"{self.command!r} stopped reading its stdin{self._stderr_tail()}") from None
            try:
                line = self.lines.get(timeout=self.timeout)
            except queue.Empty:
                raise ProtocolError(f"{self.command!r} gave no answer to {message['op']!r} within "
                                    f"{self.timeout:g} s") from None
            if line is None:
                self.proc.wait(timeout=5)
                raise ProtocolError(f"{self.command!r} exited (status {self.proc.returncode}) before answering "
                                    f"{message['op']!r}{self._stderr_tail()}")
        try:
            answer = json.loads(line)
        except json.JSONDecodeError:
            raise ProtocolError(f"{self.command!r} answered {message['op']!r} with a line that is not JSON: "
                                f"{line.strip()[:80]!r}") from None
        if not isinstance(answer, dict) or "ok" not in answer:
            raise ProtocolError(f"{self.command!r} answered {message['op']!r} without \"ok\": {line.strip()[:80]}")
        if answer["ok"] is not True:
            raise ProtocolError(f"{message['op']} failed in the child: {answer.get('error', 'no error message')}")
        return answer

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=3)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


class CommandMLP:
    """An MLP whose every call is a request to a child process (one process serves all instances of a class made
    by `command_class`). Speaks the canonical interface: params and gradients as [(W (in, out), b (out,)), ...]."""
    child: Child
    command = ""
    name = "command"
    framework = "child process"  # no `conventions`: verify detects them; compare uses what hello declares
    _ids = itertools.count(1)

    def __init__(self, spec, params):
        self.spec, self.steps_done, self.id = spec, 0, next(CommandMLP._ids)
        self._call("init", spec=spec.to_dict(), params=encode_params(params))

    def _call(self, op: str, **fields) -> dict:
        return self.child.request({"op": op, "id": self.id, **fields})

    def _xy(self, x, y=None) -> dict:
        out = {"x": encode_array(x)}
        if y is not None:
            out["y"] = encode_array(y)
        return out

    def forward(self, x):
        a = self._call("forward", **self._xy(x))
        return decode_array(a.get("y"), (len(x), 1))

    def loss(self, x, y):
        return decode_number(self._call("loss", **self._xy(x, y)).get("loss"))

    def gradients(self, x, y):
        return decode_params(self._call("gradients", **self._xy(x, y)).get("gradients"), "gradients")

    def train(self, x, y, steps=None, checkpoints=()):
        steps = self.spec.steps if steps is None else steps
        ks = sorted({int(k) for k in checkpoints if 1 <= k <= steps})
        start = time.perf_counter()
        a = self._call("train", steps=steps, checkpoints=ks, **self._xy(x, y))
        wall = time.perf_counter() - start
        self.steps_done += steps
        saved = a.get("checkpoints", {})
        if not isinstance(saved, dict):
            raise ProtocolError("train: checkpoints must be an object {\"k\": params}")
        return History(decode_array(a.get("loss"), (steps,)),
                       {int(k): decode_params(v, f"checkpoint {k}") for k, v in saved.items()}, wall)

    def params(self):
        return decode_params(self._call("params").get("params"), "params")


def command_class(command: str, timeout: float = TIMEOUT_S, cwd: str | Path | None = None) -> type[CommandMLP]:
    """Start `command`, ask it who it is (`hello`), and return an MLP class whose instances live in it."""
    child = Child(command, timeout, None if cwd is None else str(cwd))
    try:
        hello = child.request({"op": "hello", "protocol": VERSION})
    except ProtocolError as e:
        child.close()
        raise XorRosettaError(f"--cmd {command!r} does not speak the protocol (docs/protocol.md): {e}") from None
    attrs = {"child": child, "command": command, "name": str(hello.get("name") or command),
             "framework": str(hello.get("language") or "child process")}
    if isinstance(hello.get("supports"), dict):
        attrs["supports"] = hello["supports"]
    if isinstance(hello.get("conventions"), dict):
        try:
            attrs["conventions"] = Conventions(**hello["conventions"])
        except TypeError as e:
            raise XorRosettaError(f"--cmd {command!r}: bad conventions in hello: {e}") from None
    return type("CommandMLP", (CommandMLP,), attrs)


def register_command(command: str) -> str:
    """Start `command` and register it (`xor_rosetta.registry.register`) under the name it gives in hello."""
    from xor_rosetta import registry
    cls = command_class(command)
    name = cls.name if cls.name not in registry.REGISTRY else f"{cls.name} ({command})"
    registry.register(name, cls, f"command {command}")
    return name
