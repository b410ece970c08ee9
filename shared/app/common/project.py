"""Where results live: the xor-rosetta checkout around the working directory, or the folder a flag names.

Nothing is ever written inside the installed package: after a plain `pip install .` the golden files are package
data, read-only; `check --update` and `bench` write into a checkout, or wherever --golden-dir / --out say.
"""
from __future__ import annotations

import tempfile
import tomllib
from pathlib import Path

from xor_rosetta.errors import XorRosettaError

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
    """The golden folder to read (or, with write=True, to rewrite: then checked writable now, before any work)."""
    if flag or find_project() is not None:
        folder = Path(flag) if flag else find_project() / "results" / "golden"
        if write:
            check_writable(folder, "check --update")
        return folder
    if write:
        raise XorRosettaError("check --update rewrites the golden files of an xor-rosetta checkout: run it inside "
                              "one, or name the folder with --golden-dir DIR")
    package = installed_package()
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


def installed_package() -> Path:
    import xor_rosetta
    return Path(xor_rosetta.__file__).resolve().parent


def check_writable(folder: Path, what: str) -> None:
    """That `folder` can be replaced (a new folder beside it, then a swap), and is not inside the installed package;
    a one-line error now, before any work, if not."""
    folder = Path(folder)
    target = folder.resolve()
    if target == installed_package() or installed_package() in target.parents:
        raise XorRosettaError(f"{what} would write into the installed package ({folder}); run it inside an "
                              f"xor-rosetta checkout, or name another folder")
    parent = folder.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        probe = Path(tempfile.mkdtemp(prefix=f".{folder.name}-probe-", dir=parent))
        probe.rmdir()
    except OSError as e:
        raise XorRosettaError(f"{what} cannot write beside {str(folder)!r} ({e.strerror}): {parent} must be a "
                              f"writable folder") from None
    if folder.exists() and not folder.is_dir():
        raise XorRosettaError(f"{what}: {str(folder)!r} is not a folder")
