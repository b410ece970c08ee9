"""docs/verify.md's worked example on a real library: scikit-learn's MLPRegressor as first adapted is diagnosed as
"MSE halved", and the corrected adapter passes; the page shows the adapter file as it is, and what verify prints.
Skipped where scikit-learn is not installed (the `dev` extra installs it)."""
from __future__ import annotations

from pathlib import Path

import pytest

from xor_rosetta.app.cli import main

pytest.importorskip("sklearn")

ROOT = Path(__file__).resolve().parents[1]
FILE = "docs/examples/sklearn_mlp.py"
PAGE = (ROOT / "docs" / "verify.md").read_text()


def _block(marker: str) -> str:
    return PAGE.split(marker, 1)[1].split("```", 2)[1].split("\n", 1)[1]


def test_the_page_shows_the_adapter_file():
    assert _block("<!-- sklearn-example:") == (ROOT / FILE).read_text()


def test_the_first_adapter_is_diagnosed_as_mse_halved(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    assert main(["verify", f"{FILE}:SklearnMLP", "--quick", "-x", "--out", str(tmp_path), "--quiet"]) == 1
    out = capsys.readouterr().out.splitlines()
    shown = _block("<!-- sklearn-diagnosis -->").splitlines()
    assert [line for line in out if line in shown] == shown  # every line shown, as printed
    assert "likely cause: MSE halved -- " in "\n".join(out)


def test_the_corrected_adapter_passes(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    assert main(["verify", f"{FILE}:SklearnMLPFixed", "--quick", "--out", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out.splitlines()
    shown = _block("<!-- sklearn-fixed -->").splitlines()
    assert shown[0] in out  # the conventions line
    assert any(line.split(" in ")[0] == shown[1].split(" in ")[0] for line in out)  # the summary, but the timing
