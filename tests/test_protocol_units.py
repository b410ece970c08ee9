"""The child-process protocol (docs/protocol.md), unit by unit and without a child process: numbers, arrays and
params on the wire, an answer line against each limit (just at it and just past it), hello's declarations, the
Session's conversation with a scripted stand-in for `child.Child` and a fake clock, CommandMLP's requests over a
recording session, and `command_class` / `register_command`. Every expected value and message is written out by
hand, whole. tests/test_protocol.py drives real children; this file is fast enough to run on every mutant."""
from __future__ import annotations

import collections
import itertools
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from xor_rosetta import registry
from xor_rosetta.app.workers import protocol
from xor_rosetta.app.workers.child import EOF, TOO_LONG
from xor_rosetta.app.workers.protocol import (CommandMLP, ProtocolError, Session, _check_limits, _text, command_class,
                                              conventions_from, decode_array, decode_number, decode_params,
                                              encode_array, encode_number, encode_params, parse_answer,
                                              register_command, supports_from)
from xor_rosetta.errors import XorRosettaError
from xor_rosetta.interface import Conventions

NAME_MESSAGE = "--cmd 'c': hello's {!r} must be a non-empty string of at most 200 characters, got {}"


def raises(exc_type, call, *args, **kwargs) -> str:
    """The message of the `exc_type` that `call(*args, **kwargs)` raises (exactly that type)."""
    with pytest.raises(exc_type) as info:
        call(*args, **kwargs)
    assert type(info.value) is exc_type, type(info.value)
    return str(info.value)


# ------------------------------------------------------------------------------------------------ the constants

def test_constants_and_exports():
    assert (protocol.VERSION, protocol.VERSIONS, protocol.TIMEOUT_S, protocol.MAX_NAME_CHARS) == (2, (1, 2), 120.0, 200)
    assert protocol.__all__ == ["ProtocolError", "Session", "CommandMLP", "command_class", "register_command",
                                "VERSION", "VERSIONS", "TIMEOUT_S", "encode_number", "decode_number", "encode_array",
                                "decode_array", "encode_params", "decode_params"]


# ------------------------------------------------------------------------------------------------------ numbers

@pytest.mark.parametrize("value, text", [
    (0.1, "0.1"), (-1.5e-07, "-1.5e-07"), (1e308, "1e+308"), (5e-324, "5e-324"), (-0.0, "-0.0"), (3, "3.0"),
    (np.float32(0.1), "0.10000000149011612"), (np.int64(-2), "-2.0"), (True, "1.0"),
    (math.nan, "NaN"), (math.inf, "Infinity"), (-math.inf, "-Infinity"),
])
def test_encode_number_writes_repr_or_the_javascript_names(value, text):
    assert encode_number(value) == text


@pytest.mark.parametrize("text, value", [
    ("0.1", 0.1), ("-1.5e-07", -1.5e-07), ("1e+308", 1e308), ("5e-324", 5e-324), ("3", 3.0),
    ("0x1.999999999999ap-4", 0.1), ("-0x1p-1074", -5e-324), ("0x1.8p1", 3.0), ("0X1P-2", 0.25),
    ("Infinity", math.inf), ("-Infinity", -math.inf), ("inf", math.inf), ("-inf", -math.inf),
    (7, 7.0), (2.5, 2.5), (-1, -1.0),
])
def test_decode_number_reads_decimal_hex_names_and_json_numbers(text, value):
    got = decode_number(text)
    assert type(got) is float and got == value


def test_decode_number_reads_up_to_float64s_largest():
    assert decode_number("0x1p1023") == 2.0 ** 1023 and decode_number(2 ** 1023) == 2.0 ** 1023
    assert decode_number("0x1.fffffffffffffp1023") == np.finfo(np.float64).max


def test_decode_number_keeps_nan_and_the_sign_of_zero():
    assert math.isnan(decode_number("NaN")) and math.isnan(decode_number("nan"))
    assert math.copysign(1.0, decode_number("-0.0")) == -1.0
    assert math.copysign(1.0, decode_number("-0x0p+0")) == -1.0


@pytest.mark.parametrize("bad, message", [
    (True, "expected a number as a string, got true"),
    (False, "expected a number as a string, got false"),
    (None, "expected a number as a string, got null"),
    ([1.0], "expected a number as a string, got [1.0]"),
    ({"a": 1}, 'expected a number as a string, got {"a": 1}'),
    (["abcdefghij"] * 5, 'expected a number as a string, got ["abcdefghij", "abcdefghij", "abcdefghij'),
    ("one", "not a number: 'one'"),
    ("", "not a number: ''"),
    ("0xinf", "not a number: '0xinf'"),  # an "x" with "inf" is not read as hex
    ("1.5.2", "not a number: '1.5.2'"),
    ("x", "not a number: 'x'"),  # an "x" is read as hex, and a bad hex float is refused as any other
    ("0xZZ", "not a number: '0xZZ'"),
    ("max", "not a number: 'max'"),
    ("0x1p1024", "out of float64's range: 0x1p1024"),  # just past the largest power of two, 0x1p1023
    (2 ** 1024, "out of float64's range: 1797693134862315907729305190789024733617"),  # cut at 40 characters
    ("1" * 100 + "z", "not a number: '" + "1" * 65),  # the message is cut at 80 characters
])
def test_decode_number_refusals_give_their_whole_message(bad, message):
    assert raises(ProtocolError, decode_number, bad) == message


# ------------------------------------------------------------------------------------------------------- arrays

def test_encode_array_writes_nested_lists_of_strings_row_major():
    assert encode_array(np.array(2.5)) == "2.5"
    assert encode_array([1, 2]) == ["1.0", "2.0"]
    assert encode_array(np.array([[0.5, -1.0], [math.inf, math.nan]])) == [["0.5", "-1.0"], ["Infinity", "NaN"]]
    assert encode_array(np.arange(4.0).reshape(2, 1, 2)) == [[["0.0", "1.0"]], [["2.0", "3.0"]]]
    assert encode_array(np.zeros((2, 0))) == [[], []]
    assert encode_array(np.array([0.1], dtype=np.float32)) == ["0.10000000149011612"]


def test_decode_array_reads_any_shape_without_one():
    a = decode_array([["1", "0x1p1"], ["-Infinity", 4]])
    assert a.dtype == np.float64 and a.shape == (2, 2) and a.tolist() == [[1.0, 2.0], [-math.inf, 4.0]]
    b = decode_array("2.5")
    assert b.shape == () and float(b) == 2.5
    assert decode_array([]).shape == (0,) and decode_array([]).dtype == np.float64
    assert decode_array([[["1"]]]).shape == (1, 1, 1)


def test_decode_array_checks_the_shape_given():
    assert decode_array([["1", "2"]], (1, 2)).tolist() == [[1.0, 2.0]]
    assert decode_array([["1", "2"]], [1, 2]).tolist() == [[1.0, 2.0]]  # a list is a shape too
    assert decode_array(["1", "2", "3"], (3,)).tolist() == [1.0, 2.0, 3.0]  # a flat list: a 1-d shape of its size
    assert decode_array([], (0,)).shape == (0,)


@pytest.mark.parametrize("obj, shape, message", [
    (["1", "2", "3"], (3, 1), "expected an array of shape (3, 1), got (3,)"),  # flat against 2-d: refused
    (["1", "2", "3"], (2,), "expected an array of shape (2,), got (3,)"),
    (["1", "2", "3"], (4,), "expected an array of shape (4,), got (3,)"),
    ([["1"], ["2"]], (2,), "expected an array of shape (2,), got (2, 1)"),
    (["1", "2"], [1, 2], "expected an array of shape (1, 2), got (2,)"),
    ([[["1"]]], (1, 1), "expected an array of shape (1, 1), got (1, 1, 1)"),  # too deep
    ("1", (1, 1), "expected an array of shape (1, 1), got ()"),
    ([], (1,), "expected an array of shape (1,), got (0,)"),
])
def test_decode_array_shape_refusals_give_their_whole_message(obj, shape, message):
    assert raises(ProtocolError, decode_array, obj, shape) == message


@pytest.mark.parametrize("obj, message", [
    (None, "expected a number as a string, got null"),
    ([["1", True]], "expected a number as a string, got true"),
    ([["1"], ["y"]], "not a number: 'y'"),
    ({"y": ["1"]}, 'expected a number as a string, got {"y": ["1"]}'),
    (("1",), 'expected a number as a string, got ["1"]'),  # only a list is an array
])
def test_decode_array_refuses_what_is_not_numbers(obj, message):
    assert raises(ProtocolError, decode_array, obj, (1, 1)) == message


@pytest.mark.parametrize("ragged", [[["1", "2"], ["3"]], [["1"], "2"]])
def test_decode_array_refuses_ragged_lists(ragged):
    with pytest.raises(ProtocolError) as e:
        decode_array(ragged)
    assert str(e.value) == "expected an array, got lists of different lengths"


# ------------------------------------------------------------------------------------------------------- params

def test_encode_params_writes_w_b_pairs_as_lists():
    params = [(np.array([[1.0, 2.0]]), np.array([0.5, -0.0])), (np.array([[3.0], [4.0]]), np.array([0.25]))]
    assert encode_params(params) == [[[["1.0", "2.0"]], ["0.5", "-0.0"]], [[["3.0"], ["4.0"]], ["0.25"]]]
    assert encode_params([]) == []


def test_decode_params_reads_pairs_of_arrays():
    got = decode_params([[[["1", "2"]], ["0.5", "0x1p-1"]], [[["3"], ["4"]], ["-1"]]], "params")
    assert len(got) == 2 and all(type(p) is tuple for p in got)
    assert [(W.tolist(), b.tolist()) for W, b in got] == [([[1.0, 2.0]], [0.5, 0.5]), ([[3.0], [4.0]], [-1.0])]
    assert all(W.dtype == b.dtype == np.float64 for W, b in got)
    assert decode_params([], "params") == []


@pytest.mark.parametrize("bad", [
    {"W0": []}, None, "params", ([[["1"]], ["2"]],),  # not a list
    [[["1"]]], [[["1"], ["2"], ["3"]]], [[]],  # a pair of the wrong length
    [([["1"]], ["2"])], [{"W": [["1"]], "b": ["2"]}], ["Wb"],  # a pair that is not a list
    [[[["1"]], ["2"]], [[["3"]]]],  # the first pair good, the second not
])
def test_decode_params_refuses_other_structures_naming_what(bad):
    assert raises(ProtocolError, decode_params, bad, "checkpoint 7") == \
        "checkpoint 7 must be a list of [W, b] pairs"


# ------------------------------------------------------------------------------------------ answers and limits

def test_parse_answer_returns_the_object():
    assert parse_answer(b'{"id": 3, "ok": true, "loss": "0.5"}\n', "'c'", "loss") == \
        {"id": 3, "ok": True, "loss": "0.5"}
    assert parse_answer(b'  {"ok":false,"error":"e"}\r\n', "'c'", "loss") == {"ok": False, "error": "e"}


def test_parse_answer_refuses_invalid_utf8_naming_the_byte():
    assert raises(ProtocolError, parse_answer, b'{"ok": "\xff"}\n', "'c'", "loss") == \
        "'c' wrote invalid UTF-8 on its stdout (byte 0xff at offset 8) answering 'loss'"
    assert raises(ProtocolError, parse_answer, b'{"ok": true, "e": "\xc3("}', "'d'", "train") == \
        "'d' wrote invalid UTF-8 on its stdout (byte 0xc3 at offset 19) answering 'train'"


def test_parse_answer_refuses_what_is_not_json():
    assert raises(ProtocolError, parse_answer, b"  not json at all \n", "'c'", "forward") == \
        "'c' answered 'forward' with a line that is not JSON: 'not json at all'"
    assert raises(ProtocolError, parse_answer, b"{" + b"x" * 100 + b"\n", "'c'", "forward") == \
        "'c' answered 'forward' with a line that is not JSON: '{" + "x" * 79 + "'"
    assert raises(ProtocolError, parse_answer, b"", "'c'", "forward") == \
        "'c' answered 'forward' with a line that is not JSON: ''"


def test_parse_answer_refuses_json_deeper_than_the_parser_goes():
    assert raises(ProtocolError, parse_answer, b"[" * 100_000, "'c'", "hello") == \
        "'c' answered 'hello' with JSON nested deeper than the limit of 32 levels"


@pytest.mark.parametrize("raw, shown", [
    (b'{"id": 1}\n', '{"id": 1}'),
    (b'["ok"]', '["ok"]'),  # "ok" in a list is not an answer's "ok"
    (b'"ok"', '"ok"'),
    (b"[1, 2]", "[1, 2]"),
    (b"3", "3"),
    (b"null", "null"),
    (b' {"e": "' + b"y" * 100 + b'"} ', '{"e": "' + "y" * 73),
])
def test_parse_answer_refuses_an_answer_without_ok(raw, shown):
    assert raises(ProtocolError, parse_answer, raw, "'c'", "params") == \
        f"'c' answered 'params' without \"ok\": {shown}"


LIMIT = 65_536  # MAX_STRING_CHARS, written out


def nested(levels: int, inner="1"):
    """`inner` inside `levels` lists."""
    for _ in range(levels):
        inner = [inner]
    return inner


def test_check_limits_string_just_at_and_just_past_the_limit():
    _check_limits("x" * LIMIT, "'c'", "loss")
    _check_limits({"ok": True, "y": [["é" * LIMIT]]}, "'c'", "loss")  # characters, not bytes
    assert raises(ProtocolError, _check_limits, "x" * (LIMIT + 1), "'c'", "loss") == \
        "'c' answered 'loss' with a string of 65,537 characters; the limit is 65,536"
    for where in ({"ok": True, "error": "x" * (LIMIT + 1)}, [["1", "x" * (LIMIT + 1)]],
                  {"ok": True, "y": [{"a": "x" * (LIMIT + 1)}]}):
        assert raises(ProtocolError, _check_limits, where, "'d'", "train") == \
            "'d' answered 'train' with a string of 65,537 characters; the limit is 65,536"


def test_check_limits_key_just_at_and_just_past_the_limit():
    _check_limits({"k" * LIMIT: 1}, "'c'", "loss")
    for where in ({"k" * (LIMIT + 1): 1}, {"ok": True, "c": {"k" * (LIMIT + 1): []}}, [{"k" * (LIMIT + 1): 1}]):
        assert raises(ProtocolError, _check_limits, where, "'c'", "loss") == \
            "'c' answered 'loss' with a key of 65,537 characters; the limit is 65,536"


def test_check_limits_depth_just_at_and_just_past_the_limit():
    _check_limits(nested(32), "'c'", "forward")  # 32 levels of lists
    _check_limits(nested(32, "x"), "'c'", "forward")  # a string inside the 32nd is no deeper nesting
    _check_limits({"ok": True, "y": nested(31)}, "'c'", "forward")
    deep_dicts = {}
    for _ in range(31):
        deep_dicts = {"a": deep_dicts}
    _check_limits(deep_dicts, "'c'", "forward")  # 32 objects
    message = "'c' answered 'forward' with JSON nested deeper than the limit of 32 levels"
    assert raises(ProtocolError, _check_limits, nested(33), "'c'", "forward") == message
    assert raises(ProtocolError, _check_limits, nested(32, []), "'c'", "forward") == message
    assert raises(ProtocolError, _check_limits, {"ok": True, "y": nested(32)}, "'c'", "forward") == message
    assert raises(ProtocolError, _check_limits, {"a": deep_dicts}, "'c'", "forward") == message
    assert raises(ProtocolError, _check_limits, ["1", {"b": nested(30, {})}], "'c'", "forward") == message
    _check_limits(["1", {"b": nested(29, {})}], "'c'", "forward")


def test_parse_answer_applies_the_limits_before_looking_for_ok():
    at = json.dumps({"ok": True, "e": "x" * LIMIT, "y": nested(31)}).encode()
    assert parse_answer(at, "'c'", "loss")["e"] == "x" * LIMIT
    assert raises(ProtocolError, parse_answer, json.dumps(["x" * (LIMIT + 1)]).encode(), "'c'", "loss") == \
        "'c' answered 'loss' with a string of 65,537 characters; the limit is 65,536"
    assert raises(ProtocolError, parse_answer, json.dumps(nested(33)).encode(), "'c'", "loss") == \
        "'c' answered 'loss' with JSON nested deeper than the limit of 32 levels"
    assert raises(ProtocolError, parse_answer, json.dumps({"k" * (LIMIT + 1): 1}).encode(), "'c'", "loss") == \
        "'c' answered 'loss' with a key of 65,537 characters; the limit is 65,536"


# ---------------------------------------------------------------------------------------- hello's declarations

def test_text_accepts_a_short_string_and_absence():
    assert _text({}, "name", "c") is None
    assert _text({"name": None}, "name", "c") is None
    assert _text({"name": "node-mlp"}, "name", "c") == "node-mlp"
    assert _text({"language": "n" * 200}, "language", "c") == "n" * 200  # just at the limit
    assert _text({"name": " x "}, "name", "c") == " x "


@pytest.mark.parametrize("value, got", [
    ("n" * 201, "201 characters"),  # just past the limit
    ("n" * 1234, "1,234 characters"),
    ("", "0 characters"),
    ("   ", "3 characters"),
    (3, "3"),
    (False, "false"),
    (["node"], '["node"]'),
    ({"n": "y" * 50}, '{"n": "' + "y" * 33),
])
def test_text_refusals_give_their_whole_message(value, got):
    assert raises(XorRosettaError, _text, {"name": value}, "name", "c") == NAME_MESSAGE.format("name", got)
    assert raises(XorRosettaError, _text, {"language": value}, "language", "c") == \
        NAME_MESSAGE.format("language", got)


CATALOGUE = {  # docs/protocol.md's table, written out
    "adam": ["torch", "keras", "optax", "keras-torch", "textbook"],
    "momentum": ["torch", "keras"],
    "bce": ["probs", "logits", "optax", "keras-jax", "keras-torch"],
}


@pytest.mark.parametrize("op, form", [(op, form) for op, forms in CATALOGUE.items() for form in forms])
def test_conventions_accept_each_form(op, form):
    got = conventions_from({op: form}, "c")
    assert got == Conventions(**{**{"adam": "torch", "momentum": "torch", "bce": "probs"}, op: form})


def test_conventions_defaults_for_what_is_left_out():
    assert conventions_from({}, "c") == Conventions("torch", "torch", "probs")
    assert conventions_from({"adam": "optax", "bce": "logits"}, "c") == Conventions("optax", "torch", "logits")
    assert conventions_from({"adam": "keras", "momentum": "keras", "bce": "keras-jax"}, "c") == \
        Conventions("keras", "keras", "keras-jax")


@pytest.mark.parametrize("raw, message", [
    (["torch"], "hello's conventions must be an object like {\"adam\": \"torch\"}, got [\"torch\"]"),
    ("torch", "hello's conventions must be an object like {\"adam\": \"torch\"}, got \"torch\""),
    (None, "hello's conventions must be an object like {\"adam\": \"torch\"}, got null"),
    (["abcdefghij"] * 5, "hello's conventions must be an object like {\"adam\": \"torch\"}, got "
                         "[\"abcdefghij\", \"abcdefghij\", \"abcdefghij"),
    ({"sgd": "torch"}, "hello declares conventions for 'sgd'; the operations are adam, momentum, bce"),
    ({"k" * 50: "torch"}, f"hello declares conventions for {'k' * 40!r}; the operations are adam, momentum, bce"),
    ({"adam": "torch", "Adam": "torch"}, "hello declares conventions for 'Adam'; the operations are adam, momentum, "
                                         "bce"),
    ({"adam": "foo"}, 'hello declares adam "foo"; allowed: torch, keras, optax, keras-torch, textbook'),
    ({"adam": "TORCH"}, 'hello declares adam "TORCH"; allowed: torch, keras, optax, keras-torch, textbook'),
    ({"momentum": None}, "hello declares momentum null; allowed: torch, keras"),
    ({"momentum": "keras", "bce": 1}, "hello declares bce 1; allowed: probs, logits, optax, keras-jax, keras-torch"),
    ({"bce": "p" * 50}, 'hello declares bce "' + "p" * 39 + '; allowed: probs, logits, optax, keras-jax, '
                        "keras-torch"),
    ({"bce": ["probs"]}, 'hello declares bce ["probs"]; allowed: probs, logits, optax, keras-jax, keras-torch'),
])
def test_conventions_refusals_give_their_whole_message(raw, message):
    assert raises(XorRosettaError, conventions_from, raw, "c") == f"--cmd 'c': {message}"


def test_supports_accept_declarations_and_fill_in_the_rest():
    got = supports_from({"dtypes": ["float64"], "batch_sizes": [None, 4], "losses": "mse"}, "c")
    assert got["dtypes"] == ("float64",) and got["batch_sizes"] == (None, 4) and got["losses"] == ("mse",)
    assert got["optimizers"] == ("sgd", "momentum", "adam") and got["hidden_layers"] == (1, 2, 3)
    assert got["min_width"] == 1 and got["uniform_hidden_activations"] is False
    assert supports_from({"activations": ["tanh"]}, "c")["output_activations"] == ("tanh",)
    assert supports_from({}, "c")["activations"] == ("tanh", "sigmoid", "relu", "linear")


KEYS = ("dtypes, optimizers, losses, activations, output_activations, batch_sizes, hidden_layers, "
        "uniform_hidden_activations, min_width, losses_by_output")


@pytest.mark.parametrize("raw, message", [
    ({"dtypes": ["float16"]}, "supports['dtypes'] has unknown value 'float16'; choose from float32, float64"),
    ({"batch_sizes": [5]}, "supports['batch_sizes'] has unknown value 5; choose from None, 1, 2, 3, 4"),
    ({"widths": [2]}, f"unknown key 'widths' in supports; known keys: {KEYS}"),
    (["float64"], f"hello.supports must be a dict of {KEYS}, got list"),
    ("all", f"hello.supports must be a dict of {KEYS}, got str"),
])
def test_supports_refusals_name_the_command(raw, message):
    assert raises(XorRosettaError, supports_from, raw, "c") == f"--cmd 'c': {message}"


# --------------------------------------------------------------------------- the Session, with a scripted child

class Clock:
    """protocol's `time`: monotonic() stands still unless sleep() moves it (by `tick`, or by what it was given)."""

    def __init__(self):
        self.now, self.tick, self.sleeps, self.perf = 1000.0, None, [], iter(())

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds if self.tick is None else self.tick

    def perf_counter(self):
        return next(self.perf)


def line(obj) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def v2(hello=None, **by_op):
    """A script for a version-2 child: hello answered with `hello`'s fields, each other op with the answer (or a
    function of the request giving a list of lines) in `by_op`, else {"ok": true}; each answer echoes the id."""
    def script(req):
        op = req["op"]
        if op == "hello":
            return [line({"id": req["id"], "ok": True, "protocol": 2, **(hello or {})})]
        answer = by_op.get(op, {})
        if callable(answer):
            return answer(req)
        return [line({"id": req["id"], "ok": True, **answer})]
    return script


class FakeChild:
    """Stands in for `child.Child`: each line sent is handed to `script`, whose items (bytes, EOF, TOO_LONG) the
    stdout then yields; with nothing left, `receive` is a timeout (None)."""

    def __init__(self, command, cwd, own_session, script):
        self.args, self.script = (command, cwd, own_session), script
        self.sent, self.deadlines, self.events = [], [], []
        self.out = collections.deque()
        self.reads, self.exit_status, self.tail = True, None, ""
        self.exits_after = None  # exited() turns True after this many calls
        self.exited_calls = 0

    def send(self, data: bytes) -> bool:
        self.sent.append(data)
        if not self.reads:
            return False
        self.out.extend(self.script(json.loads(data)))
        return True

    def receive(self, deadline):
        self.deadlines.append(deadline)
        return self.out.popleft() if self.out else None

    def exited(self) -> bool:
        self.exited_calls += 1
        if self.exits_after is not None:
            return self.exited_calls > self.exits_after
        return self.exit_status is not None

    def status(self):
        return self.exit_status

    def stderr_tail(self) -> str:
        return self.tail

    def close(self):
        self.events.append("close")

    def kill(self):
        self.events.append("kill")


@pytest.fixture
def clock(monkeypatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(protocol, "time", c)
    return c


@pytest.fixture
def kids(monkeypatch, clock):
    """protocol.Child replaced: `kids.scripts` gives each child started its script, in turn (default: v2());
    `kids.made` lists the children started."""
    state = SimpleNamespace(scripts=[], made=[])

    def start(command, cwd, own_session):
        child = FakeChild(command, cwd, own_session, state.scripts.pop(0) if state.scripts else v2())
        state.made.append(child)
        return child
    monkeypatch.setattr(protocol, "Child", start)
    return state


def test_session_defaults():
    s = Session("node mlp.js")
    assert (s.command, s.timeout, s.cwd, s.own_session) == ("node mlp.js", 120.0, None, True)
    assert (s.child, s.generation, s.version, s.hello, s.ended_why) == (None, 0, None, {}, "")
    assert s.who == "'node mlp.js'" and Session("it's").who == '"it\'s"'


def test_start_says_hello_and_keeps_the_answer(kids):
    s = Session("c", timeout=9.0, cwd="/w", own_session=False)
    kids.scripts.append(v2({"name": "n"}))
    hello = s.start()
    assert hello == {"id": 1, "ok": True, "protocol": 2, "name": "n"} and s.hello == hello
    child, = kids.made
    assert child.args == ("c", "/w", False) and s.child is child
    assert child.sent == [b'{"id":1,"op":"hello","protocol":2}\n']
    assert (s.generation, s.version, child.events) == (1, 2, [])
    assert child.deadlines == [1009.0]  # now + the timeout


def test_hello_failed_in_the_child(kids):
    kids.scripts += [lambda req: [line({"id": 1, "ok": False, "error": "no model here"})],
                     lambda req: [line({"id": 2, "ok": 1})],
                     lambda req: [line({"id": 3, "ok": False, "error": "e" * 600})]]
    s = Session("c")
    assert raises(ProtocolError, s.start) == "hello failed in the child: no model here"
    assert (s.child, s.ended_why, kids.made[0].events, s.version, s.generation) == \
        (None, "its hello failed", ["kill"], None, 1)
    assert raises(ProtocolError, s.start) == "hello failed in the child: no error message"  # "ok" must be true
    assert raises(ProtocolError, s.start) == "hello failed in the child: " + "e" * 500
    assert s.generation == 3 and [c.sent[0][:8] for c in kids.made] == [b'{"id":1,', b'{"id":2,', b'{"id":3,']


def test_a_hello_without_protocol_is_version_1(kids):
    kids.scripts.append(lambda req: [line({"ok": True, "name": "old"})])  # no id either
    s = Session("c")
    assert s.start() == {"ok": True, "name": "old"} and s.version == 1


def test_a_hello_that_says_protocol_1_is_version_1(kids):
    kids.scripts.append(lambda req: [line({"id": 1, "ok": True, "protocol": 1})])
    s = Session("c")
    s.start()
    assert s.version == 1


@pytest.mark.parametrize("version, shown", [
    (3, "3"), (0, "0"), ("2", '"2"'), (True, "true"), (None, "null"), (2.5, "2.5"),
    ("v" * 30, '"' + "v" * 19),
])
def test_an_unsupported_version_is_bad_input(kids, version, shown):
    kids.scripts.append(lambda req: [line({"id": 1, "ok": True, "protocol": version})])
    s = Session("c")
    assert raises(XorRosettaError, s.start) == \
        f"--cmd 'c' speaks protocol version {shown}; xor-rosetta speaks 1 and 2 (docs/protocol.md, Versions)"
    assert (s.child, s.ended_why, s.version, s.hello, kids.made[0].events) == \
        (None, "unsupported version", None, {}, ["kill"])


def test_a_restarted_child_must_speak_the_same_version(kids):
    kids.scripts += [v2(), lambda req: [line({"ok": True})], v2({"name": "again"})]
    s = Session("c")
    s.start()
    s.end("a timeout")
    assert raises(ProtocolError, s.start) == "'c' spoke protocol version 2, then 1 when restarted"
    assert (s.version, s.ended_why, s.child, s.generation, s.hello["id"]) == (2, "changed version", None, 2, 1)
    assert s.start()["name"] == "again" and s.generation == 3
    assert kids.made[2].sent == [b'{"id":3,"op":"hello","protocol":2}\n']  # ids go on across children


def test_end_and_close(kids):
    s = Session("c")
    s.end("nothing to end")
    assert s.ended_why == ""
    s.start()
    s.end("a limit")
    assert (s.child, s.ended_why, kids.made[0].events) == (None, "a limit", ["kill"])
    s.start()
    s.close()
    assert (s.child, s.ended_why, kids.made[1].events) == (None, "closed", ["close"])
    s.close()
    assert kids.made[1].events == ["close"]


def test_request_starts_a_child_and_sends_the_model_first(kids):
    kids.scripts.append(v2(forward={"y": [["0.5"]]}))
    s = Session("c")
    answer = s.request("forward", 7, x=[["1.0", "0.0"]])
    assert answer == {"id": 2, "ok": True, "y": [["0.5"]]}
    assert kids.made[0].sent[1] == b'{"id":2,"op":"forward","model":7,"x":[["1.0","0.0"]]}\n'
    assert s.request("params", None) == {"id": 3, "ok": True}
    assert kids.made[0].sent[2] == b'{"id":3,"op":"params"}\n'
    assert len(kids.made) == 1 and s.generation == 1


def test_version_1_requests_have_no_id_and_name_the_model_id(kids):
    kids.scripts.append(lambda req: [line({"ok": True})] if req["op"] == "hello" else [line({"ok": True, "n": 1})])
    s = Session("c")
    assert s.request("init", 5, spec={}) == {"ok": True, "n": 1}  # no id in the answer: version 1's
    assert kids.made[0].sent[1] == b'{"op":"init","id":5,"spec":{}}\n'
    assert s.request("params") == {"ok": True, "n": 1}
    assert kids.made[0].sent[2] == b'{"op":"params"}\n'


def test_version_1_answers_are_taken_whatever_their_id(kids):
    kids.scripts.append(lambda req: [line({"ok": True})] if req["op"] == "hello" else [line({"id": 99, "ok": True})])
    s = Session("c")
    assert s.request("params", 1) == {"id": 99, "ok": True}


@pytest.mark.parametrize("answer, message", [
    ({"ok": False, "error": "bad input"}, "train failed in the child: bad input"),
    ({"ok": False}, "train failed in the child: no error message"),
    ({"ok": "true"}, "train failed in the child: no error message"),
    ({"ok": 1, "error": "one"}, "train failed in the child: one"),
    ({"ok": False, "error": {"code": 3}}, "train failed in the child: {'code': 3}"),
    ({"ok": False, "error": "e" * 600}, "train failed in the child: " + "e" * 500),
])
def test_an_answer_that_is_not_ok_fails_the_request(kids, answer, message):
    kids.scripts.append(v2(train=answer))
    s = Session("c")
    assert raises(ProtocolError, s.request, "train", 1, steps=1) == message
    assert s.child is kids.made[0] and kids.made[0].events == []  # the child goes on


def test_a_model_of_an_ended_child_fails_at_once(kids):
    s = Session("c")
    s.request("init", 3)
    assert s.request("params", 3, generation=1)["ok"] is True
    assert raises(ProtocolError, s.request, "params", 3, generation=2) == \
        "model 3 lived in a child of 'c' that was ended ()"
    s.end("a timeout")
    assert raises(ProtocolError, s.request, "params", 3, generation=1) == \
        "model 3 lived in a child of 'c' that was ended (a timeout)"
    assert len(kids.made) == 1 and len(kids.made[0].sent) == 3
    s.request("init", 4)  # a new model: a fresh child
    assert s.generation == 2 and len(kids.made) == 2
    assert raises(ProtocolError, s.request, "params", 3, generation=1) == \
        "model 3 lived in a child of 'c' that was ended (a timeout)"
    assert s.request("params", 4, generation=2)["id"] == 6


def test_a_child_that_has_exited_is_not_written_to(kids):
    s = Session("c")
    s.start()
    child = kids.made[0]
    child.exit_status, child.tail = 3, "; its stderr ends: bye"
    assert raises(ProtocolError, s.request, "init", 1) == "'c' has exited (status 3); its stderr ends: bye"
    assert (len(child.sent), child.events, s.child, s.ended_why) == (1, ["kill"], None, "it exited with status 3")


def test_a_child_that_stopped_reading(kids):
    s = Session("c")
    s.start()
    child = kids.made[0]
    child.reads, child.tail = False, "; its stderr ends: gone"
    assert raises(ProtocolError, s.request, "init", 1) == "'c' stopped reading its stdin; its stderr ends: gone"
    assert (child.events, s.child, s.ended_why) == (["kill"], None, "it stopped reading")
    s.start()
    child = kids.made[1]
    child.reads, child.exits_after = False, 1  # running when asked before the write, exited after
    child.exit_status = -9
    assert raises(ProtocolError, s.request, "init", 2) == "'c' stopped reading its stdin (exited, status -9)"


def test_a_timeout_uses_the_limit_for_one_answer(kids, clock):
    kids.scripts.append(v2(train=lambda req: []))
    s = Session("c", timeout=2.5)
    s.start()
    clock.now = 1100.0
    assert raises(ProtocolError, s.request, "train", 1) == \
        "timeout after 2.5 s (the limit for one answer): 'c' gave no answer to 'train'; the child was ended"
    assert kids.made[0].deadlines == [1002.5, 1102.5]
    assert (s.child, s.ended_why, kids.made[0].events) == (None, "a timeout", ["kill"])
    kids.scripts.append(lambda req: [])
    assert raises(ProtocolError, Session("d").start) == \
        "timeout after 120 s (the limit for one answer): 'd' gave no answer to 'hello'; the child was ended"


def test_a_budget_bounds_every_request_until_unbudget(kids, clock):
    kids.scripts.append(v2(train=lambda req: []))
    s = Session("c", timeout=50)
    s.budget(7)
    s.start()
    clock.now = 1004.0
    s.request("init", 1)
    assert raises(ProtocolError, s.request, "train", 1) == \
        "timeout after 7 s (--timeout): 'c' gave no answer to 'train'; the child was ended"
    assert kids.made[0].deadlines == [1007.0, 1007.0, 1007.0]
    s.unbudget()
    s.request("init", 2)
    assert kids.made[1].deadlines == [1054.0, 1054.0]


def test_an_exit_before_answering_waits_for_the_status(kids, clock):
    kids.scripts.append(v2(init=lambda req: [EOF]))
    s = Session("c")
    s.start()
    child = kids.made[0]
    child.exits_after, child.exit_status, child.tail = 3, 3, "; its stderr ends: the last line"
    child.exited_calls = 0
    clock.tick = 0.25
    assert raises(ProtocolError, s.request, "init", 1) == \
        "'c' exited (status 3) before answering 'init'; its stderr ends: the last line"
    assert (child.exited_calls, clock.sleeps) == (4, [0.01, 0.01])  # 1 before writing, then until it has exited
    assert (s.child, s.ended_why, child.events) == (None, "it exited with status 3", ["kill"])


def test_an_exit_before_answering_waits_5_s_at_most(kids, clock):
    kids.scripts.append(v2(init=lambda req: [EOF]))
    s = Session("c")
    s.start()
    child = kids.made[0]
    child.exits_after = 10 ** 9  # never exits
    clock.tick = 1.25
    assert raises(ProtocolError, s.request, "init", 1) == "'c' exited (status None) before answering 'init'"
    assert clock.sleeps == [0.01] * 4 and clock.now == 1005.0  # 1000, 1001.25, 1002.5, 1003.75: then 5 s are up
    assert s.ended_why == "it exited with status None"


def test_a_line_too_long_ends_the_child(kids):
    kids.scripts.append(v2(forward=lambda req: [TOO_LONG]))
    s = Session("c")
    s.start()
    assert raises(ProtocolError, s.request, "forward", 1) == \
        "'c' answered 'forward' with a line longer than the limit of 67,108,864 bytes; the child was ended"
    assert (s.child, s.ended_why, kids.made[0].events) == (None, "a line too long", ["kill"])


def test_a_hello_line_too_long(kids):
    kids.scripts.append(lambda req: [TOO_LONG])
    s = Session("c")
    assert raises(ProtocolError, s.start) == \
        "'c' answered 'hello' with a line longer than the limit of 67,108,864 bytes; the child was ended"
    assert (s.child, s.ended_why, kids.made[0].events) == (None, "a line too long", ["kill"])


def test_an_answer_to_an_earlier_request_is_discarded(kids):
    kids.scripts.append(v2(loss=lambda req: [line({"id": 1, "ok": True, "loss": "old"}),
                                             line({"id": req["id"] - 1, "ok": True, "loss": "late"}),
                                             line({"id": req["id"], "ok": True, "loss": "0.5"})]))
    s = Session("c")
    s.request("init", 1)
    assert s.request("loss", 1) == {"id": 3, "ok": True, "loss": "0.5"}
    assert kids.made[0].out == collections.deque()


@pytest.mark.parametrize("ids, shown", [
    ([None], "no id"), ([0], "id 0"), ([-1], "id -1"), ([4], "id 4"), ([True], "id true"), (["3"], 'id "3"'),
    ([2.5], "id 2.5"), (["i" * 30], 'id "' + "i" * 19), ([2, None], "no id"),
])
def test_an_answer_with_another_id_fails_the_request(kids, ids, shown):
    def answers(req):
        return [line({"ok": True} if i is None else {"id": i, "ok": True}) for i in ids]
    kids.scripts.append(v2(loss=answers))
    s = Session("c")
    s.request("init", 1)
    assert raises(ProtocolError, s.request, "loss", 1) == f"'c' answered 'loss' (request id 3) with {shown}"
    assert s.child is kids.made[0] and kids.made[0].events == []  # only that request fails
    assert s.request("params", 1)["id"] == 4


def test_an_answer_with_the_id_as_a_float_is_taken(kids):
    kids.scripts.append(v2(loss=lambda req: [line({"id": 2.0, "ok": True})]))
    assert Session("c").request("loss", 1) == {"id": 2.0, "ok": True}


@pytest.mark.parametrize("answer, shown", [
    ({"ok": True, "protocol": 2}, "no id"), ({"id": True, "ok": True, "protocol": 2}, "id true"),
    ({"id": 0, "ok": True, "protocol": 2}, "id 0"), ({"id": 2, "ok": True, "protocol": 2}, "id 2"),
])
def test_a_hello_with_protocol_needs_its_id(kids, answer, shown):
    kids.scripts.append(lambda req: [line(answer)])
    s = Session("c")
    assert raises(ProtocolError, s.start) == f"'c' answered 'hello' (request id 1) with {shown}"
    assert (s.child, s.ended_why, s.version) == (None, "its hello failed", None)


def test_a_line_that_is_not_json_fails_one_request_only(kids):
    kids.scripts.append(v2(forward=lambda req: [b"not json\n"]))
    s = Session("c")
    s.request("init", 1)
    assert raises(ProtocolError, s.request, "forward", 1) == \
        "'c' answered 'forward' with a line that is not JSON: 'not json'"
    assert s.child is kids.made[0] and kids.made[0].events == [] and s.ended_why == ""


# ----------------------------------------------------------------------------- CommandMLP, over a fake session

class RecordingSession:
    generation = 4

    def __init__(self, **answers):
        self.calls, self.answers = [], answers

    def request(self, op, model=None, generation=None, **fields):
        self.calls.append((op, model, generation, fields))
        return {"ok": True, **self.answers.get(op, {})}


SPEC = SimpleNamespace(steps=3, to_dict=lambda: {"layers": [2, 1], "steps": 3})
PARAMS = [(np.array([[0.5], [-0.25]]), np.array([0.1]))]
WIRE_PARAMS = [[[["0.5"], ["-0.25"]], ["0.1"]]]
X = np.array([[0.0, 1.0], [1.0, 0.0]])
Y = np.array([[1.0], [0.0]])
WX, WY = [["0.0", "1.0"], ["1.0", "0.0"]], [["1.0"], ["0.0"]]


@pytest.fixture
def model_class(monkeypatch):
    monkeypatch.setattr(CommandMLP, "_ids", itertools.count(7))

    def make(**answers):
        return type("T", (CommandMLP,), {"session": RecordingSession(**answers)})
    return make


def test_init_sends_the_spec_and_params(model_class):
    cls = model_class()
    m = cls(SPEC, PARAMS)
    assert cls.session.calls == [("init", 7, None, {"spec": {"layers": [2, 1], "steps": 3}, "params": WIRE_PARAMS})]
    assert (m.id, m.generation, m.steps_done, m.spec) == (7, 4, 0, SPEC)
    assert cls(SPEC, PARAMS).id == 8
    assert (CommandMLP.name, CommandMLP.framework, CommandMLP.command) == ("command", "child process", "")


def test_forward_sends_x_and_reads_n_by_1(model_class):
    m = model_class(forward={"y": [["0.5"], ["-0x1p1"]]})(SPEC, PARAMS)
    y = m.forward(X)
    assert y.shape == (2, 1) and y.tolist() == [[0.5], [-2.0]]
    assert m.session.calls[-1] == ("forward", 7, 4, {"x": WX})
    m.session.answers["forward"] = {"y": ["0.5", "1"]}
    assert raises(ProtocolError, m.forward, X) == "expected an array of shape (2, 1), got (2,)"
    m.session.answers["forward"] = {}
    assert raises(ProtocolError, m.forward, X) == "expected a number as a string, got null"


def test_loss_sends_x_and_y_and_reads_a_number(model_class):
    m = model_class(loss={"loss": "0x1p-2"})(SPEC, PARAMS)
    assert m.loss(X, Y) == 0.25
    assert m.session.calls[-1] == ("loss", 7, 4, {"x": WX, "y": WY})
    m.session.answers["loss"] = {"loss": ["0.25"]}
    assert raises(ProtocolError, m.loss, X, Y) == 'expected a number as a string, got ["0.25"]'


def test_gradients_are_read_as_params(model_class):
    m = model_class(gradients={"gradients": [[[["1"], ["2"]], ["-3"]]]})(SPEC, PARAMS)
    (dW, db), = m.gradients(X, Y)
    assert dW.tolist() == [[1.0], [2.0]] and db.tolist() == [-3.0]
    assert m.session.calls[-1] == ("gradients", 7, 4, {"x": WX, "y": WY})
    m.session.answers["gradients"] = {"gradients": [[["1"]]]}
    assert raises(ProtocolError, m.gradients, X, Y) == "gradients must be a list of [W, b] pairs"
    m.session.answers["gradients"] = {}
    assert raises(ProtocolError, m.gradients, X, Y) == "gradients must be a list of [W, b] pairs"


def test_params_are_read_as_params(model_class):
    m = model_class(params={"params": WIRE_PARAMS})(SPEC, PARAMS)
    (W, b), = m.params()
    assert W.tolist() == [[0.5], [-0.25]] and b.tolist() == [0.1]
    assert m.session.calls[-1] == ("params", 7, 4, {})
    m.session.answers["params"] = {"params": {"0": WIRE_PARAMS[0]}}
    assert raises(ProtocolError, m.params) == "params must be a list of [W, b] pairs"


def test_train_sends_steps_and_the_checkpoints_in_range(model_class, clock):
    clock.perf = iter([10.0, 12.5, 20.0, 20.25])
    m = model_class(train={"loss": ["0.5", "0.25", "0x1p-3"],
                           "checkpoints": {"1": WIRE_PARAMS, "3": [[[["1"], ["2"]], ["3"]]]}})(SPEC, PARAMS)
    h = m.train(X, Y, checkpoints=(3, 0, 1, 1, 4, 2.0, -1))
    assert m.session.calls[-1] == ("train", 7, 4, {"steps": 3, "checkpoints": [1, 2, 3], "x": WX, "y": WY})
    assert h.loss.tolist() == [0.5, 0.25, 0.125] and h.wall_time == 2.5
    assert sorted(h.checkpoints) == [1, 3]
    assert [(W.tolist(), b.tolist()) for W, b in h.checkpoints[3]] == [([[1.0], [2.0]], [3.0])]
    assert [(W.tolist(), b.tolist()) for W, b in h.checkpoints[1]] == [([[0.5], [-0.25]], [0.1])]
    assert m.steps_done == 3
    m.session.answers["train"] = {"loss": ["1"]}
    h = m.train(X, Y, steps=1, checkpoints=[2, 1])
    assert m.session.calls[-1] == ("train", 7, 4, {"steps": 1, "checkpoints": [1], "x": WX, "y": WY})
    assert h.loss.tolist() == [1.0] and h.checkpoints == {} and h.wall_time == 0.25 and m.steps_done == 4


def test_train_without_checkpoints_asks_for_none(model_class, clock):
    clock.perf = iter([0.0, 1.0])
    m = model_class(train={"loss": ["1", "2", "3"]})(SPEC, PARAMS)
    m.train(X, Y)
    assert m.session.calls[-1][3]["checkpoints"] == []


def test_train_sends_the_checkpoints_sorted(model_class, clock):
    clock.perf = iter([0.0, 1.0])
    m = model_class(train={"loss": ["1"] * 9})(SPEC, PARAMS)
    m.train(X, Y, steps=9, checkpoints=[9, 8, 1, 8])  # a set of these would iterate 8, 9, 1
    assert m.session.calls[-1][3]["checkpoints"] == [1, 8, 9] and m.steps_done == 9


@pytest.mark.parametrize("answer, message", [
    ({"loss": ["1", "2"]}, "expected an array of shape (3,), got (2,)"),
    ({"loss": ["1", "2", "3"], "checkpoints": [WIRE_PARAMS]}, 'train: checkpoints must be an object {"k": params}'),
    ({"loss": ["1", "2", "3"], "checkpoints": None}, 'train: checkpoints must be an object {"k": params}'),
    ({"loss": ["1", "2", "3"], "checkpoints": {"d": 1, "b": 1, "a": 1, "c": 1}},
     "train: checkpoint keys must be step numbers, got ['a', 'b', 'c']"),
    ({"loss": ["1", "2", "3"], "checkpoints": {"2": "p"}}, "checkpoint 2 must be a list of [W, b] pairs"),
])
def test_train_refuses_a_malformed_answer(model_class, clock, answer, message):
    clock.perf = iter([0.0, 1.0])
    m = model_class(train=answer)(SPEC, PARAMS)
    assert raises(ProtocolError, m.train, X, Y) == message
    assert m.steps_done == 3  # the child did train


# --------------------------------------------------------------------------------- command_class, registration

def test_command_class_makes_a_class_from_hello(kids):
    kids.scripts.append(v2({"name": "node-mlp", "language": "javascript", "supports": {"dtypes": ["float64"]},
                            "conventions": {"adam": "optax"}}))
    cls = command_class("node mlp.js", timeout=9.0, cwd=Path("/w"), own_session=False)
    assert cls.__name__ == "CommandMLP" and cls.__bases__ == (CommandMLP,)
    assert (cls.command, cls.name, cls.framework) == ("node mlp.js", "node-mlp", "javascript")
    assert cls.conventions == Conventions("optax", "torch", "probs")
    assert cls.supports["dtypes"] == ("float64",) and cls.supports["losses"] == ("mse", "bce")
    s = cls.session
    assert type(s) is Session and (s.command, s.timeout, s.cwd, s.own_session) == ("node mlp.js", 9.0, "/w", False)
    assert kids.made[0].args == ("node mlp.js", "/w", False) and s.child is kids.made[0] and s.version == 2


def test_command_class_defaults_when_hello_says_little(kids):
    kids.scripts += [v2(), v2({"supports": None, "conventions": None, "name": None, "language": None})]
    for _ in range(2):
        cls = command_class("./mlp")
        assert (cls.name, cls.framework) == ("./mlp", "child process")
        assert "supports" not in cls.__dict__ and "conventions" not in cls.__dict__
        assert not hasattr(cls, "conventions") and not hasattr(cls, "supports")
        s = cls.session
        assert (s.timeout, s.cwd, s.own_session) == (120.0, None, True)
    assert [k.args for k in kids.made] == [("./mlp", None, True)] * 2


def test_command_class_hello_failure_is_bad_input(kids):
    kids.scripts.append(lambda req: [line({"id": 1, "ok": False, "error": "no"})])
    assert raises(XorRosettaError, command_class, "c") == \
        "--cmd 'c' does not speak the protocol (docs/protocol.md): hello failed in the child: no"
    kids.scripts.append(lambda req: [b"garbage\n"])
    assert raises(XorRosettaError, command_class, "c") == \
        "--cmd 'c' does not speak the protocol (docs/protocol.md): 'c' answered 'hello' with a line that is not " \
        "JSON: 'garbage'"


def test_command_class_unsupported_version(kids):
    kids.scripts.append(lambda req: [line({"id": 1, "ok": True, "protocol": 3})])
    assert raises(XorRosettaError, command_class, "c") == \
        "--cmd 'c' speaks protocol version 3; xor-rosetta speaks 1 and 2 (docs/protocol.md, Versions)"


@pytest.mark.parametrize("hello, message", [
    ({"name": "n" * 201}, NAME_MESSAGE.format("name", "201 characters")),
    ({"name": "ok", "language": ""}, NAME_MESSAGE.format("language", "0 characters")),
    ({"supports": {"dtypes": ["float16"]}},
     "--cmd 'c': supports['dtypes'] has unknown value 'float16'; choose from float32, float64"),
    ({"supports": {"dtypes": ["float64"]}, "conventions": {"adam": "foo"}},
     "--cmd 'c': hello declares adam \"foo\"; allowed: torch, keras, optax, keras-torch, textbook"),
    ({"conventions": []}, "--cmd 'c': hello's conventions must be an object like {\"adam\": \"torch\"}, got []"),
])
def test_command_class_invalid_declaration_closes_the_child(kids, hello, message):
    kids.scripts.append(v2(hello))
    assert raises(XorRosettaError, command_class, "c") == message
    assert kids.made[0].events == ["close"]


@pytest.fixture
def runtime(monkeypatch) -> dict:
    """registry.RUNTIME, empty for the test and restored after it."""
    fresh: dict = {}
    monkeypatch.setattr(registry, "RUNTIME", fresh)
    return fresh


def test_register_command_under_the_hello_name(kids, runtime):
    kids.scripts.append(v2({"name": "node-mlp"}))
    assert register_command("node mlp.js", timeout=9.0, own_session=False) == "node-mlp"
    cls, entry = runtime["node-mlp"]
    assert issubclass(cls, CommandMLP) and cls.name == "node-mlp" and cls.command == "node mlp.js"
    assert (entry.name, entry.summary, entry.cls, entry.builtin) == ("node-mlp", "command node mlp.js", "CommandMLP",
                                                                     False)
    assert (cls.session.timeout, cls.session.own_session, cls.session.cwd) == (9.0, False, None)
    assert kids.made[0].args == ("node mlp.js", None, False)
    assert list(runtime) == ["node-mlp"]


def test_register_command_defaults(kids, runtime):
    assert register_command("./mlp") == "./mlp"
    cls, entry = runtime["./mlp"]
    assert (cls.session.timeout, cls.session.own_session) == (120.0, True) and entry.summary == "command ./mlp"


def test_register_command_names(kids, runtime):
    kids.scripts += [v2({"name": "numpy"}), v2({"name": "node-mlp"})]
    assert register_command("./fake-numpy") == "numpy (./fake-numpy)"  # a built-in's name is taken
    assert register_command("node mlp.js", name="mine") == "mine"
    assert sorted(runtime) == ["mine", "numpy (./fake-numpy)"]
    assert runtime["mine"][0].name == "node-mlp" and runtime["mine"][1].summary == "command node mlp.js"


def test_two_commands_saying_the_same_name_are_both_kept(kids, runtime):
    """Two --cmd children whose hello says the same name: the second is registered under its command too (it once
    replaced the first, silently); a plug-in's name is taken as a built-in's is."""
    kids.scripts += [v2({"name": "my-mlp"}), v2({"name": "my-mlp"}), v2({"name": "plug"})]
    assert register_command("./a") == "my-mlp"
    assert register_command("./b") == "my-mlp (./b)"
    assert runtime["my-mlp"][0].command == "./a" and runtime["my-mlp (./b)"][0].command == "./b"
    runtime["plug"] = runtime["my-mlp"]  # as a plug-in registered under that name
    assert register_command("./c") == "plug (./c)"
