"""compare and train understand outside implementations: forms detected where a class declares none (by the same
checks as verify), recorded in the reports with where they came from; a declaration that contradicts what the
class computes, reported by compare and verify; a spec the class's `supports` rules out, "unsupported"."""
from __future__ import annotations

import json

from xor_rosetta.app.cli import main

FILE = "tests/impls/outside.py"
UNDECLARED, DECLARED, RELU = f"{FILE}:KerasAdamUndeclared", f"{FILE}:KerasAdamDeclaredTorch", f"{FILE}:ReluOnly"


def test_compare_detects_the_forms_of_an_undeclared_implementation(tmp_path, capsys):
    code = main(["compare", "--preset", "seed-keras", "--impls", f"numpy,{UNDECLARED},{DECLARED}", "--out",
                 str(tmp_path), "--quiet", "--json"])
    report = json.loads(capsys.readouterr().out)
    rows = {r["implementation"]: r for r in report["implementations"]}
    mine = rows[UNDECLARED]
    assert mine["verdict"].startswith("agrees (Adam in Keras' form, detected") and \
        mine["verdict"].endswith(", converged"), mine["verdict"]
    assert mine["conventions"]["adam"] == {"form": "keras", "source": "detected", "detected": "keras",
                                           "contradicts": False}
    assert rows["numpy"]["conventions"] == {"adam": {"form": "textbook", "source": "declared"},
                                            "bce": {"form": "logits", "source": "declared"}}
    assert rows["numpy"]["verdict"] == "agrees, converged"
    wrong = rows[DECLARED]  # judged as it declares, and told why it disagrees
    assert wrong["verdict"] == "DISAGREES (declares Adam in torch's form, detected Keras')"
    assert wrong["conventions"]["adam"]["contradicts"] is True
    assert code == 1  # the contradicting declaration disagrees
    md = (tmp_path / "report.md").read_text()
    assert f"- {UNDECLARED}: Adam keras (detected)" in md
    assert f"- {DECLARED}: Adam torch (declared, contradicted: detected keras)" in md


def test_verify_reports_a_contradicting_declaration(tmp_path, capsys):
    assert main(["verify", DECLARED, "--quick", "--checks", "update_adam", "--out", str(tmp_path), "--quiet"]) == 0
    assert "conventions detected: adam keras, CONTRADICTING its declared torch" in capsys.readouterr().out
    assert json.loads((tmp_path / "report.json").read_text())["conventions"]["adam"]["contradicts"] is True


def test_an_unsupported_spec_is_a_row_not_a_failure(tmp_path, capsys):
    code = main(["compare", "--preset", "seed-numpy", "--impls", f"numpy,{RELU}", "--out", str(tmp_path), "--quiet",
                 "--json"])
    rows = {r["implementation"]: r for r in json.loads(capsys.readouterr().out)["implementations"]}
    assert rows[RELU]["verdict"] == "unsupported: tanh is not among its declared activations"
    assert rows["numpy"]["verdict"] == "agrees, converged"
    assert code == 0  # the unsupported row does not count against the exit status


def test_train_rejects_an_unsupported_spec(tmp_path, capsys):
    assert main(["train", "--impl", RELU, "--preset", "seed-numpy", "--out", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "does not support this spec: tanh is not among its declared activations" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "history.json").exists()
