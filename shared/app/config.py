"""Experiment files in TOML, and choosing a spec from --preset / --config plus command-line overrides."""
from __future__ import annotations

import tomllib
from pathlib import Path

from ..errors import SpecError
from ..presets import get_preset
from ..spec import Init, Spec


def load_toml(path: str | Path) -> Spec:
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"config file {str(path)!r} does not exist")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise SpecError(f"config file {str(path)!r} is not valid TOML: {e}") from None
    if isinstance(data.get("init"), dict) and "path" in data["init"]:  # relative to the config file
        data["init"]["path"] = str((path.parent / data["init"]["path"]).resolve())
    try:
        return Spec.from_dict(data)
    except TypeError as e:  # a wrongly typed value that the dataclass itself rejected
        raise SpecError(f"config file {str(path)!r}: {e}") from None


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
