"""Where results live: the xor-rosetta checkout around the working directory, or the folder a flag names.

Nothing is ever written inside the installed package: after a plain `pip install .` the golden files are package
data, read-only; `check --update` and `bench` write into a checkout, or wherever --golden-dir / --out say.
"""
from __future__ import annotations

import tomllib
from pathlib import Path

from ..errors import XorRosettaError

PROJECT = "xor-rosetta"


def is_project(folder: Path) -> bool:
    try:
        return tomllib.loads((folder / "pyproject.toml").read_text())["project"]["name"] == PROJECT
    except (OSError, ValueError, KeyError, TypeError):
        return False


def find_project(start: Path | None = None) -> Path | None:
    """The nearest folder at or above `start` (default: the working directory) that is an xor-rosetta checkout."""
    here = (start or Path.cwd()).resolve()
    return next((p for p in (here, *here.parents) if is_project(p)), None)


def golden_dir(flag: str | None, write: bool = False) -> Path:
    """The golden folder to read (or, with write=True, to rewrite)."""
    if flag:
        return Path(flag)
    root = find_project()
    if root is not None:
        return root / "results" / "golden"
    if write:
        raise XorRosettaError("check --update rewrites the golden files of an xor-rosetta checkout: run it inside "
                              "one, or name the folder with --golden-dir DIR")
    import xor_rosetta
    package = Path(xor_rosetta.__file__).resolve().parent
    for folder in (package / "golden", package.parent / "results" / "golden"):  # installed; editable checkout
        if folder.is_dir() and any(folder.glob("*.json")):
            return folder
    raise XorRosettaError("no golden files found: run inside an xor-rosetta checkout, or pass --golden-dir DIR")


def results_dir(flag: str | None) -> Path:
    """--out if given, else the checkout's results/ folder, else ./results."""
    if flag:
        return Path(flag)
    root = find_project()
    return (root if root is not None else Path.cwd()) / "results"
