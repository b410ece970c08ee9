"""Experiment files in TOML, and choosing a spec from --preset / --config plus command-line overrides."""
from __future__ import annotations

import tomllib
from pathlib import Path

from xor_rosetta.errors import SpecError
from xor_rosetta.presets import get_preset
from xor_rosetta.params import regular_file
from xor_rosetta.spec import Init, Spec


MAX_CONFIG_BYTES = 1 << 20  # an experiment file is a few hundred bytes; anything near this is not one


def load_toml(path: str | Path) -> Spec:
    path, size = regular_file(path, "config file", SpecError)
    where = f"config file {str(path)!r}"
    if size > MAX_CONFIG_BYTES:
        raise SpecError(f"{where} is {size:,} bytes; an experiment file is at most {MAX_CONFIG_BYTES:,}")
    try:
        raw = path.read_bytes()[:MAX_CONFIG_BYTES + 1]
    except OSError as e:
        raise SpecError(f"{where} cannot be read ({e.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark, as some Windows editors write, is not TOML
        data = tomllib.loads(text)
    except UnicodeDecodeError as e:
        raise SpecError(f"{where} is not UTF-8 text (byte {e.start}: {raw[e.start:e.start + 1]!r})") from None
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{where} is not valid TOML: {e}") from None
    except RecursionError:
        raise SpecError(f"{where} is not an experiment file: its values are nested too deeply") from None
    init = data.get("init")
    if isinstance(init, dict) and "path" in init:  # relative to the config file
        if not isinstance(init["path"], str) or not init["path"] or "\0" in init["path"]:
            raise SpecError(f"{where}: init.path must be a file name (a string without NUL characters), "
                            f"got {init['path']!r}")
        init["path"] = str(path.parent.resolve() / init["path"])
    try:
        return Spec.from_dict(data)
    except TypeError as e:  # a wrongly typed value that the dataclass itself rejected
        raise SpecError(f"{where}: {e}") from None
    except SpecError as e:
        raise SpecError(f"{where}: {e}") from None


def choose_spec(preset: str | None, config: str | None, *, dtype=None, steps=None, init=None) -> tuple[str, Spec]:
    """(name, spec) from exactly one of preset/config, then the overrides."""
    if (preset is None) == (config is None):
        raise SpecError("give exactly one of --preset NAME or --config FILE.toml")
    name, spec = (preset, get_preset(preset)) if preset else (Path(config).stem, load_toml(config))
    changes = {}
    if dtype is not None:
        changes["dtype"] = dtype
    if steps is not None:
        changes["steps"] = steps
    if init is not None:
        changes["init"] = Init("file", path=str(init))
    return name, spec.replace(**changes) if changes else spec



def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "[" + ", ".join(_toml_value(x) for x in v) + "]"


def dump_toml(spec: Spec) -> str:
    """The spec as an experiment file that load_toml reads back to the same spec."""
    d = spec.to_dict()
    lines = [f"{k} = {_toml_value(v)}" for k, v in d.items() if not isinstance(v, dict) and v is not None]
    for table in ("optimizer", "init"):
        lines += ["", f"[{table}]"] + [f"{k} = {_toml_value(v)}" for k, v in d[table].items() if v is not None]
    return "\n".join(lines) + "\n"
