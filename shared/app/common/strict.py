"""Reading JSON that a folder holds (a sweep's state, golden files) without trusting it: strict parsing and plain
schema checks, every problem one `XorRosettaError` line that names the file and the field."""
from __future__ import annotations

import json
import math
from pathlib import Path

from xor_rosetta.errors import XorRosettaError

MAX_INT = 2**63 - 1  # no count, step or seed in these files is larger


class Invalid(XorRosettaError):
    """A file's content is not what it should be; str() names the file, the field and the problem."""


def parse(data: bytes, where: str):
    """The JSON value in `data`, which must be UTF-8. NaN and ±Infinity parse (as floats: the schema names the
    field that holds one); nesting too deep for the parser and integers too long to convert are errors."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Invalid(f"{where}: not UTF-8 text (byte {e.start} is {data[e.start:e.start + 1]!r})") from None
    try:
        return json.loads(text)
    except RecursionError:
        raise Invalid(f"{where}: not usable JSON (nested too deeply)") from None
    except ValueError as e:  # JSONDecodeError, and an integer of more than sys.get_int_max_str_digits() digits
        raise Invalid(f"{where}: not JSON ({str(e).splitlines()[0][:200]})") from None


def read(path: Path, what: str):
    """`parse` of the file at `path` (`what` names it in errors, e.g. "golden file results/golden/x.json")."""
    try:
        data = Path(path).read_bytes()
    except IsADirectoryError:
        raise Invalid(f"{what}: is a folder, not a file") from None
    except OSError as e:
        raise Invalid(f"{what}: cannot be read ({e.strerror or e})") from None
    return parse(data, what)


def kind(value) -> str:
    """The JSON name of a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def obj(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise Invalid(f"{where}: expected a JSON object, got {kind(value)}")
    return value


def number(value, where: str, nullable: bool = False) -> float | None:
    """A finite number (an integer that a float can hold counts); None where `nullable`."""
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Invalid(f"{where}: expected a number{' or null' if nullable else ''}, got {kind(value)}")
    try:
        v = float(value)
    except OverflowError:
        raise Invalid(f"{where}: the number is out of range ({len(str(abs(value)))} digits)") from None
    if not math.isfinite(v):
        raise Invalid(f"{where}: expected a finite number, got {v}")
    return v


def integer(value, where: str, nullable: bool = False, lo: int = 0, hi: int = MAX_INT) -> int | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"{where}: expected a whole number{' or null' if nullable else ''}, got {kind(value)}")
    if not lo <= value <= hi:
        shown = str(value) if abs(value) < 10**30 else f"a {len(str(abs(value)))}-digit number"
        raise Invalid(f"{where}: expected {lo:,} .. {hi:,}, got {shown}")
    return value


def string(value, where: str, nullable: bool = False, choices=None) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise Invalid(f"{where}: expected a string{' or null' if nullable else ''}, got {kind(value)}")
    if choices is not None and value not in choices:
        raise Invalid(f"{where}: expected one of {', '.join(map(repr, choices))}, got {value[:80]!r}")
    return value


def boolean(value, where: str, nullable: bool = False) -> bool | None:
    if value is None and nullable:
        return None
    if not isinstance(value, bool):
        raise Invalid(f"{where}: expected true or false{' or null' if nullable else ''}, got {kind(value)}")
    return value


def numbers(value, where: str) -> list:
    """A 1-D or 2-D rectangular list of finite numbers (a weight matrix or a bias)."""
    if not isinstance(value, list) or not value:
        raise Invalid(f"{where}: expected a non-empty list of numbers, got {kind(value) if value != [] else '[]'}")
    if all(isinstance(row, list) for row in value):
        width = len(value[0])
        for i, row in enumerate(value):
            if len(row) != width or not row:
                raise Invalid(f"{where}[{i}]: rows of different lengths")
            for j, x in enumerate(row):
                number(x, f"{where}[{i}][{j}]")
        return value
    for i, x in enumerate(value):
        number(x, f"{where}[{i}]")
    return value
