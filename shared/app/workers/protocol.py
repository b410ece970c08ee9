"""An implementation in any language, run as a child process: `xor-rosetta verify --cmd "node mlp.js"` and
`xor-rosetta compare --cmd "..."` drive it through this protocol, version 2 (documented in docs/protocol.md).

One JSON object per line: requests on the child's stdin, one answer per request on its stdout (stderr is free
for the child's own messages). Every request carries an `id` and every answer echoes it, so that an answer to a
request given up on (a timeout) or a stray line is never read as the next answer. Every float in an array, and
every loss, travels as a string that round-trips exactly: Python's repr or JavaScript's String(x) ("0.1",
"-1.5e-07", "NaN", "Infinity") or a C99 hex float ("0x1.999999999999ap-4", printf's %a); a plain JSON number is
accepted on the way back too. The spec's own numbers (learning rate, betas, epsilon) are JSON numbers, which are
exact in both directions. The process itself (its group, limits, stderr tail) is `xor_rosetta.app.workers.child`.
"""
from __future__ import annotations

import itertools
import json
import math
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from xor_rosetta.app.workers.child import (EOF, MAX_DEPTH, MAX_LINE_BYTES, MAX_STRING_CHARS, TOO_LONG, Child,
                                           ProtocolError)
from xor_rosetta.errors import XorRosettaError
from xor_rosetta.interface import Conventions, History
from xor_rosetta.reference import FORMS

VERSION = 2  # the version this driver offers in hello
VERSIONS = (1, 2)  # the versions it speaks (1: no request ids; kept for children written before version 2)
TIMEOUT_S = 120.0  # the default limit for one answer (a train request of 10,000 steps included); --timeout
MAX_NAME_CHARS = 200  # hello's name and language
__all__ = ["ProtocolError", "Session", "CommandMLP", "command_class", "register_command", "VERSION", "VERSIONS",
           "TIMEOUT_S", "encode_number", "decode_number", "encode_array", "decode_array", "encode_params",
           "decode_params"]


def encode_number(v) -> str:
    v = float(v)
    return repr(v) if math.isfinite(v) else {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}[repr(v)]


def decode_number(s) -> float:
    if isinstance(s, bool) or not isinstance(s, (str, int, float)):
        raise ProtocolError(f"expected a number as a string, got {json.dumps(s)[:40]}")
    try:
        if isinstance(s, str) and "x" in s.lower():
            return float.fromhex(s)  # a C99 hex float (float() reads no x; inf and nan have none)
        return float(s)
    except ValueError:
        raise ProtocolError(f"not a number: {s!r}"[:80]) from None
    except OverflowError:  # an integer or a hex float past float64's largest
        raise ProtocolError(f"out of float64's range: {str(s)[:40]}") from None


def encode_array(a) -> list:
    a = np.asarray(a, dtype=np.float64)
    return [encode_array(r) for r in a] if a.ndim else encode_number(a)


def decode_array(obj, shape: tuple | None = None) -> np.ndarray:
    def walk(o):
        return [walk(x) for x in o] if isinstance(o, list) else decode_number(o)
    try:
        a = np.array(walk(obj), dtype=np.float64)
    except ValueError:  # NumPy's refusal of ragged nesting
        raise ProtocolError("expected an array, got lists of different lengths") from None
    if shape is not None and a.shape != tuple(shape):
        raise ProtocolError(f"expected an array of shape {tuple(shape)}, got {a.shape}")
    return a


def encode_params(params) -> list:
    return [[encode_array(W), encode_array(b)] for W, b in params]


def decode_params(obj, what: str) -> list:
    if not isinstance(obj, list) or not all(isinstance(p, list) and len(p) == 2 for p in obj):
        raise ProtocolError(f"{what} must be a list of [W, b] pairs")
    return [(decode_array(W), decode_array(b)) for W, b in obj]


def parse_answer(line: bytes, who: str, op: str) -> dict:
    """One answer line, checked against the limits (docs/protocol.md, "Limits"): a dict with "ok"."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ProtocolError(f"{who} wrote invalid UTF-8 on its stdout (byte 0x{line[e.start]:02x} at offset "
                            f"{e.start}) answering {op!r}") from None
    try:
        answer = json.loads(text)
    except RecursionError:
        raise ProtocolError(f"{who} answered {op!r} with JSON nested deeper than the limit of {MAX_DEPTH} "
                            "levels") from None
    except json.JSONDecodeError:
        raise ProtocolError(f"{who} answered {op!r} with a line that is not JSON: {text.strip()[:80]!r}") from None
    _check_limits(answer, who, op)
    if not isinstance(answer, dict) or "ok" not in answer:
        raise ProtocolError(f"{who} answered {op!r} without \"ok\": {text.strip()[:80]}")
    return answer


def _check_limits(value, who: str, op: str) -> None:
    """Nesting depth and string sizes, walked without recursion."""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, str):
            if len(v) > MAX_STRING_CHARS:
                raise ProtocolError(f"{who} answered {op!r} with a string of {len(v):,} characters; the limit is "
                                    f"{MAX_STRING_CHARS:,}")
        elif isinstance(v, (list, dict)):
            if depth > MAX_DEPTH:
                raise ProtocolError(f"{who} answered {op!r} with JSON nested deeper than the limit of {MAX_DEPTH} "
                                    "levels")
            items = v.items() if isinstance(v, dict) else ((None, x) for x in v)
            for k, x in items:
                if k is not None and len(k) > MAX_STRING_CHARS:
                    raise ProtocolError(f"{who} answered {op!r} with a key of {len(k):,} characters; the limit is "
                                        f"{MAX_STRING_CHARS:,}")
                stack.append((x, depth + 1))


class Session:
    """The conversation with one command: a child started on demand (hello first, the version negotiated),
    requests numbered, answers matched by id, and a fresh child after one was ended (a timeout, an exit, a limit).

    `generation` counts the children started: a model lives in the child that was current at its `init`, and a
    request for a model whose child has ended fails at once, without waiting. Timeouts: each answer must come
    within `timeout` seconds, unless a budget (`budget`) is set, which bounds every request until `unbudget`."""

    def __init__(self, command: str, timeout: float = TIMEOUT_S, cwd: str | None = None, own_session: bool = True):
        self.command, self.timeout, self.cwd, self.own_session = command, timeout, cwd, own_session
        self.child: Child | None = None
        self.generation = 0
        self.version: int | None = None
        self.hello: dict = {}
        self.ended_why = ""  # why the last child was ended
        self._ids = itertools.count(1)
        self._deadline: float | None = None
        self._budget_s = 0.0
        self._lock = threading.RLock()  # one request at a time (start() runs inside a request)

    @property
    def who(self) -> str:
        return repr(self.command)

    def budget(self, seconds: float) -> None:
        """Bound every request from now on by one deadline, `seconds` away (verify: one check)."""
        self._deadline, self._budget_s = time.monotonic() + seconds, seconds

    def unbudget(self) -> None:
        self._deadline = None

    # --- the child
    def start(self) -> dict:
        """Start a child and say hello; the hello answer (the version checked)."""
        self.child = Child(self.command, self.cwd, self.own_session)
        self.generation += 1
        try:
            hello = self._exchange("hello", {"protocol": VERSION}, first=True)
            if hello["ok"] is not True:
                raise ProtocolError(f"hello failed in the child: {str(hello.get('error', 'no error message'))[:500]}")
        except ProtocolError:
            self.end("its hello failed")
            raise
        version = hello.get("protocol", 1)  # a version-1 child does not say
        if version not in VERSIONS or isinstance(version, bool):
            self.end("unsupported version")
            raise XorRosettaError(f"--cmd {self.command!r} speaks protocol version {json.dumps(version)[:20]}; "
                                  f"xor-rosetta speaks {' and '.join(map(str, VERSIONS))} (docs/protocol.md, "
                                  "Versions)")
        if self.version is not None and version != self.version:
            self.end("changed version")
            raise ProtocolError(f"{self.who} spoke protocol version {self.version}, then {version} when restarted")
        self.version, self.hello = version, hello
        return hello

    def end(self, why: str) -> None:
        """End the current child and its process group; the next `init` starts a fresh one."""
        if self.child is not None:
            if why == "closed":
                self.child.close()  # its stdin closed: it may exit by itself first
            else:
                self.child.kill()
            self.child, self.ended_why = None, why

    def close(self) -> None:
        self.end("closed")

    # --- requests
    def request(self, op: str, model: int | None = None, generation: int | None = None, **fields) -> dict:
        """Send one request and return its answer ("ok": true); ProtocolError says what went wrong."""
        with self._lock:
            return self._request(op, model, generation, fields)

    def _request(self, op: str, model: int | None, generation: int | None, fields: dict) -> dict:
        if generation is not None and generation != self.generation or (generation is not None and
                                                                        self.child is None):
            raise ProtocolError(f"model {model} lived in a child of {self.who} that was ended ({self.ended_why})")
        if self.child is None:
            self.start()
        if self.child.exited():  # it exited after its last answer: say so before writing to it
            status = self.child.status()
            tail = self.child.stderr_tail()
            self.end(f"it exited with status {status}")
            raise ProtocolError(f"{self.who} has exited (status {status}){tail}")
        if model is not None:
            fields = {("model" if self.version >= 2 else "id"): model, **fields}
        answer = self._exchange(op, fields)
        if answer["ok"] is not True:
            error = answer.get("error", "no error message")
            raise ProtocolError(f"{op} failed in the child: {str(error)[:500]}")
        return answer

    def _exchange(self, op: str, fields: dict, first: bool = False) -> dict:
        rid = next(self._ids)
        message = {"op": op, **fields} if self.version == 1 else {"id": rid, "op": op, **fields}
        child = self.child
        if not child.send((json.dumps(message, separators=(",", ":")) + "\n").encode()):
            status = child.status()
            self.end("it stopped reading")
            raise ProtocolError(f"{self.who} stopped reading its stdin"
                                f"{'' if status is None else f' (exited, status {status})'}{child.stderr_tail()}")
        limit = self._deadline if self._deadline is not None else time.monotonic() + self.timeout
        while True:
            line = child.receive(limit)
            if line is None:
                self.end("a timeout")
                seconds = self._budget_s if self._deadline is not None else self.timeout
                what = "--timeout" if self._deadline is not None else "the limit for one answer"
                raise ProtocolError(f"timeout after {seconds:g} s ({what}): {self.who} gave no answer to {op!r}; "
                                    "the child was ended")
            if line is EOF:
                deadline = time.monotonic() + 5
                while not child.exited() and time.monotonic() < deadline:
                    time.sleep(0.01)
                status, tail = child.status(), child.stderr_tail()
                self.end(f"it exited with status {status}")
                raise ProtocolError(f"{self.who} exited (status {status}) before answering {op!r}{tail}")
            if line is TOO_LONG:
                self.end("a line too long")
                raise ProtocolError(f"{self.who} answered {op!r} with a line longer than the limit of "
                                    f"{MAX_LINE_BYTES:,} bytes; the child was ended")
            answer = parse_answer(line, self.who, op)
            if self.version == 1 or (first and "protocol" not in answer):
                return answer  # version 1: no ids (hello: an answer without "protocol" is version 1's)
            got = answer.get("id")
            if got == rid and not isinstance(got, bool):
                return answer
            if isinstance(got, int) and not isinstance(got, bool) and 0 < got < rid:
                continue  # the answer to a request given up on: discarded
            raise ProtocolError(f"{self.who} answered {op!r} (request id {rid}) with "
                                f"{'no id' if got is None else f'id {json.dumps(got)[:20]}'}")

class CommandMLP:
    """An MLP whose every call is a request to a child process (one `Session` serves all instances of a class made
    by `command_class`). Speaks the canonical interface: params and gradients as [(W (in, out), b (out,)), ...]."""
    session: Session
    command = ""
    name = "command"
    framework = "child process"  # no `conventions`: verify detects them; compare uses what hello declares
    _ids = itertools.count(1)

    def __init__(self, spec, params):
        self.spec, self.steps_done, self.id = spec, 0, next(CommandMLP._ids)
        self.generation = None
        self.session.request("init", self.id, spec=spec.to_dict(), params=encode_params(params))
        self.generation = self.session.generation  # the child it lives in

    def _call(self, op: str, **fields) -> dict:
        return self.session.request(op, self.id, self.generation, **fields)

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
        try:
            saved = {int(k): v for k, v in saved.items()}
        except ValueError:
            raise ProtocolError(f"train: checkpoint keys must be step numbers, got {sorted(saved)[:3]}") from None
        return History(decode_array(a.get("loss"), (steps,)),
                       {k: decode_params(v, f"checkpoint {k}") for k, v in saved.items()}, wall)

    def params(self):
        return decode_params(self._call("params").get("params"), "params")


def _text(hello: dict, key: str, command: str) -> str | None:
    value = hello.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME_CHARS:
        what = f"{len(value):,} characters" if isinstance(value, str) else json.dumps(value)[:40]
        raise XorRosettaError(f"--cmd {command!r}: hello's {key!r} must be a non-empty string of at most "
                              f"{MAX_NAME_CHARS} characters, got {what}")
    return value


def conventions_from(raw, command: str) -> Conventions:
    """hello's `conventions`, checked against the reference's catalogue (`xor_rosetta.reference.FORMS`); the
    operations it leaves out take the interface's defaults (`xor_rosetta.interface.Conventions`)."""
    if not isinstance(raw, dict):
        raise XorRosettaError(f"--cmd {command!r}: hello's conventions must be an object like "
                              f"{{\"adam\": \"torch\"}}, got {json.dumps(raw)[:40]}")
    for key, value in raw.items():
        if key not in FORMS:
            raise XorRosettaError(f"--cmd {command!r}: hello declares conventions for {key[:40]!r}; the operations "
                                  f"are {', '.join(FORMS)}")
        if value not in FORMS[key]:
            raise XorRosettaError(f"--cmd {command!r}: hello declares {key} {json.dumps(value)[:40]}; allowed: "
                                  f"{', '.join(FORMS[key])}")
    return Conventions(**raw)


def supports_from(raw, command: str) -> dict:
    """hello's `supports`, checked like a Python class's (`xor_rosetta.checks.subject.declared_supports`)."""
    from xor_rosetta.checks.subject import declared_supports
    try:
        return declared_supports(SimpleNamespace(supports=raw, __name__="hello"))
    except XorRosettaError as e:
        raise XorRosettaError(f"--cmd {command!r}: {e}") from None


def command_class(command: str, timeout: float = TIMEOUT_S, cwd: str | Path | None = None,
                  own_session: bool = True) -> type[CommandMLP]:
    """Start `command`, ask it who it is (`hello`), and return an MLP class whose instances live in it.

    A child that does not answer hello, or answers it with an unsupported version or an invalid declaration,
    is bad input (XorRosettaError: exit 2)."""
    session = Session(command, timeout, None if cwd is None else str(cwd), own_session)
    try:
        hello = session.start()
    except ProtocolError as e:
        raise XorRosettaError(f"--cmd {command!r} does not speak the protocol (docs/protocol.md): {e}") from None
    try:
        attrs = {"session": session, "command": command, "name": _text(hello, "name", command) or command,
                 "framework": _text(hello, "language", command) or "child process"}
        if hello.get("supports") is not None:
            attrs["supports"] = supports_from(hello["supports"], command)
        if hello.get("conventions") is not None:
            attrs["conventions"] = conventions_from(hello["conventions"], command)
    except XorRosettaError:
        session.close()
        raise
    return type("CommandMLP", (CommandMLP,), attrs)


def register_command(command: str, name: str | None = None, timeout: float = TIMEOUT_S,
                     own_session: bool = True) -> str:
    """Start `command` and register it (`xor_rosetta.registry.register`) under `name`, or the name it gives in
    hello; returns the name."""
    from xor_rosetta import registry
    cls = command_class(command, timeout, own_session=own_session)
    if name is None:
        taken = cls.name in registry.REGISTRY or cls.name in registry.RUNTIME  # a built-in, a plug-in, another --cmd
        name = f"{cls.name} ({command})" if taken else cls.name
    registry.register(name, cls, f"command {command}")
    return name
