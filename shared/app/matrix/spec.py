"""The matrix file: cells (sets of framework releases, the implementations they concern) read from TOML and checked.

    [settings]                       # all optional
    python = "3.11"                  # the interpreter uv builds each cell's environment with (default: this one's)
    timeout = 1800                   # seconds a cell may take, its environment's install included

    [[cell]]
    series = "Keras on TensorFlow"   # cells of one series differ in one package: `axis`
    axis = "keras"
    impls = ["keras", "keras-xla"]
    packages = { keras = "3.5.0", tensorflow-cpu = "2.17.1", numpy = "1.26.4" }
    name = "keras-tf-3.5.0"          # optional; default: series and axis release, as a file-safe slug

Each package value is one exact release (installed as NAME==VERSION, overriding the project's own bounds).
"""
from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import XorRosettaError

CELL_KEYS = {"series", "axis", "impls", "packages", "name"}
SETTINGS_KEYS = {"python", "timeout"}
_PACKAGE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
_VERSION = re.compile(r"^[0-9][0-9A-Za-z.+!_-]*$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


@dataclass(frozen=True)
class Cell:
    name: str
    series: str
    axis: str
    impls: tuple[str, ...]
    packages: tuple[tuple[str, str], ...]  # (distribution, exact version), sorted by name

    @property
    def release(self) -> str:
        """The axis package's release: what this cell varies within its series."""
        return dict(self.packages)[self.axis]

    @property
    def pins(self) -> list[str]:
        return [f"{n}=={v}" for n, v in self.packages]

    @property
    def env_key(self) -> str:
        """Names the cell's environment: the same pins share one (cached) environment."""
        return hashlib.sha256(json.dumps(self.pins).encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        return {"name": self.name, "series": self.series, "axis": self.axis, "impls": list(self.impls),
                "packages": dict(self.packages)}


@dataclass
class Matrix:
    cells: list[Cell]
    python: str | None = None
    timeout: float = 1800.0
    source: str = ""
    series: list[str] = field(default_factory=list)  # in file order


def default_path() -> Path:
    return Path(__file__).with_name("default.toml")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-.") or "cell"


def version_key(v: str) -> tuple:
    """Orders releases: 3.10.0 after 3.9.2; a non-numeric part sorts after the numbers."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"[.+!_-]", v))


def load(path: str | Path, known_impls=None) -> Matrix:
    """Read and check a matrix file; anything wrong is one XorRosettaError naming the file, the cell and the key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise XorRosettaError(f"matrix file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise XorRosettaError(f"matrix file {str(path)!r} cannot be read ({getattr(e, 'strerror', None) or e})") \
            from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise XorRosettaError(f"matrix file {str(path)!r} is not valid TOML ({e})") from None
    return parse(data, str(path), known_impls)


def parse(data: dict, where: str = "matrix", known_impls=None) -> Matrix:
    def bad(msg):
        raise XorRosettaError(f"{where}: {msg}")

    extra = sorted(set(data) - {"settings", "cell"})
    if extra:
        bad(f"unknown key {extra[0]!r} (expected [settings] and [[cell]] tables)")
    settings = data.get("settings", {})
    if not isinstance(settings, dict):
        bad("[settings] must be a table")
    extra = sorted(set(settings) - SETTINGS_KEYS)
    if extra:
        bad(f"[settings] has unknown key {extra[0]!r} (known: {', '.join(sorted(SETTINGS_KEYS))})")
    python = settings.get("python")
    if python is not None and (not isinstance(python, str) or not python.strip()):
        bad("[settings] python must be a version or a path, as a string")
    timeout = settings.get("timeout", 1800)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        bad(f"[settings] timeout must be a number of seconds > 0, got {timeout!r}")
    raw = data.get("cell")
    if not isinstance(raw, list) or not raw:
        bad("no cells: add at least one [[cell]] table")
    cells, names, series = [], set(), []
    for i, c in enumerate(raw, 1):
        at = f"cell {i}"
        if not isinstance(c, dict):
            bad(f"{at} must be a table")
        extra = sorted(set(c) - CELL_KEYS)
        if extra:
            bad(f"{at} has unknown key {extra[0]!r} (known: {', '.join(sorted(CELL_KEYS))})")
        for key in ("series", "axis", "impls", "packages"):
            if key not in c:
                bad(f"{at} lacks {key!r}")
        if not isinstance(c["series"], str) or not c["series"].strip():
            bad(f"{at}: series must be a non-empty string")
        pk = c["packages"]
        if not isinstance(pk, dict) or not pk:
            bad(f"{at}: packages must be a table of NAME = \"VERSION\", at least one")
        packages = {}
        for n, v in pk.items():
            if not _PACKAGE.match(n):
                bad(f"{at}: {n!r} is not a package name")
            if not isinstance(v, str) or not _VERSION.match(v):
                bad(f"{at}: package {n} needs one exact release as a string (\"3.5.0\"), got {v!r}")
            norm = re.sub(r"[-_.]+", "-", n).lower()
            if norm in packages:
                bad(f"{at}: package {n} is named twice")
            packages[norm] = v
        axis = c["axis"]
        if not isinstance(axis, str) or re.sub(r"[-_.]+", "-", axis).lower() not in packages:
            bad(f"{at}: axis {axis!r} must name one of its packages ({', '.join(packages)})")
        axis = re.sub(r"[-_.]+", "-", axis).lower()
        impls = c["impls"]
        if not isinstance(impls, list) or not impls or not all(isinstance(x, str) and x for x in impls):
            bad(f"{at}: impls must be a non-empty list of implementation names")
        if len(set(impls)) != len(impls):
            bad(f"{at}: impls names an implementation twice")
        if known_impls is not None:
            unknown = [x for x in impls if x not in known_impls]
            if unknown:
                bad(f"{at}: unknown implementation {unknown[0]!r} (known: {', '.join(known_impls)})")
        name = c.get("name", slug(f"{c['series']}-{packages[axis]}"))
        if not isinstance(name, str) or not _NAME.match(name):
            bad(f"{at}: name {name!r} must be lower-case letters, digits, '.', '-' or '_'")
        if name in names:
            bad(f"{at}: name {name!r} is used twice (give the cells distinct names)")
        names.add(name)
        if c["series"] not in series:
            series.append(c["series"])
        cells.append(Cell(name, c["series"], axis, tuple(impls), tuple(sorted(packages.items()))))
    return Matrix(cells, python, float(timeout), where, series)


def select(matrix: Matrix, only: str | None) -> list[Cell]:
    """--only a,b: cells by name, or every cell of a series whose slug or name matches."""
    if not only:
        return list(matrix.cells)
    wanted = [w.strip() for w in only.split(",") if w.strip()]
    if not wanted:
        raise XorRosettaError(f"--only names no cell (got {only!r})")
    out = []
    for w in wanted:
        hit = [c for c in matrix.cells if w in (c.name, c.series, slug(c.series))]
        if not hit:
            raise XorRosettaError(f"--only: no cell or series named {w!r} in {matrix.source} "
                                  f"(cells: {', '.join(c.name for c in matrix.cells[:8])}"
                                  f"{', ...' if len(matrix.cells) > 8 else ''})")
        out += [c for c in hit if c not in out]
    return out
