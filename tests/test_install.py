"""A plain (non-editable) `pip install .`, used from a folder that is not a checkout: the golden files come with the
package, read-only; `check` reads them there, and nothing is ever written into the installed package.

The package is built from a copy of the sources (the checkout gets no build/ folder) and installed with --target
into a temporary folder; Python then runs with -S, so that neither this environment's editable install nor its
site folder is seen, and NumPy (the one dependency) is found through PYTHONPATH. It runs where the tests run against a
non-editable install (CI's second environment), or anywhere with XOR_ROSETTA_INSTALL_TEST=1.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.xdist_group("install")  # one worker builds the package once


def _version(dist: str) -> tuple:
    import importlib.metadata
    try:
        return tuple(int(x) for x in importlib.metadata.version(dist).split(".")[:2] if x.isdigit())
    except importlib.metadata.PackageNotFoundError:
        return ()


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(run(*args) -> CompletedProcess, the installed package folder), from a folder outside any checkout."""
    import os

    import xor_rosetta
    editable = Path(xor_rosetta.__file__).resolve().parent == ROOT / "shared"
    if editable and os.environ.get("XOR_ROSETTA_INSTALL_TEST") != "1":
        pytest.skip("an editable install: this runs in CI's second, non-editable environment "
                    "(XOR_ROSETTA_INSTALL_TEST=1 runs it here)")
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "src"
    for part in ("pyproject.toml", "README.md", "shared", "implementations", "results/golden"):
        if (ROOT / part).is_dir():
            shutil.copytree(ROOT / part, src / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (src / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / part, src / part)
    target = tmp / "site"
    # offline with this environment's setuptools where it is recent enough (pyproject asks for >= 68), else in
    # pip's own isolated build environment, which downloads it
    offline = ["--no-build-isolation", "--no-index"] if _version("setuptools") >= (68,) else []
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", *offline, "--target",
                          str(target), str(src)], capture_output=True, text=True, timeout=600)
    if pip.returncode != 0:
        if not offline:
            pytest.skip(f"cannot build the package here (no setuptools >= 68 and no index): {pip.stderr[-300:]}")
        pytest.fail(f"pip install . failed: {pip.stderr[-2000:]}")
    work = tmp / "elsewhere"
    work.mkdir()
    numpy_site = Path(np.__file__).resolve().parent.parent

    def run(*args):
        return subprocess.run([sys.executable, "-S", str(target / "bin" / "xor-rosetta"), *map(str, args)],
                              capture_output=True, text=True, cwd=work, timeout=300,
                              env={"PYTHONPATH": f"{target}{':' if sys.platform != 'win32' else ';'}{numpy_site}",
                                   "PATH": "/usr/bin:/bin"})
    return run, target / "xor_rosetta"


def test_the_golden_files_are_package_data(installed):
    _, package = installed
    assert sorted(p.name for p in (package / "golden").glob("*.json")) == \
        sorted(p.name for p in (ROOT / "results" / "golden").glob("*.json"))


def test_check_reads_the_packaged_golden_files(installed):
    run, package = installed
    p = run("check", "--impls", "numpy", "--quiet")
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"all 4 golden cases hold ({package / 'golden'})" in p.stdout


def test_check_update_never_writes_into_the_package(installed):
    run, package = installed
    before = {p.name: p.read_bytes() for p in (package / "golden").iterdir()}
    p = run("check", "--update", "--impls", "numpy", "--quiet")
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "Traceback" not in p.stderr, p.stderr
    assert "check --update rewrites the golden files of an xor-rosetta checkout" in p.stderr
    p = run("check", "--update", "--impls", "numpy", "--golden-dir", package / "golden", "--quiet")
    assert p.returncode == 2 and "would write into the installed package" in p.stderr, p.stderr
    assert {p.name: p.read_bytes() for p in (package / "golden").iterdir()} == before


def test_commands_work_from_the_installed_package(installed, tmp_path):
    run, _ = installed
    p = run("list")
    assert p.returncode == 0 and re.search(r"^numpy +available", p.stdout, re.M), p.stderr
    p = run("train", "--impl", "numpy", "--preset", "seed-numpy", "--steps", "50", "--out", tmp_path / "t", "--quiet")
    assert p.returncode == 0 and (tmp_path / "t" / "history.json").is_file(), p.stderr
