"""The child-process protocol (docs/protocol.md): exact float transport, the documented transcript, and the Node
implementation in tests/other_language/ passing `xor-rosetta verify --cmd` (and its one-bug mutant diagnosed)."""
from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xor_rosetta.app.cli import main
from xor_rosetta.app.workers.protocol import decode_array, decode_number, encode_array, encode_number

ROOT = Path(__file__).resolve().parents[1]
MLP_JS = ROOT / "tests" / "other_language" / "mlp.js"
NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")


def test_floats_round_trip_bit_for_bit():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.standard_normal(200) * 10.0 ** rng.integers(-300, 300, 200),
                             [0.0, -0.0, 5e-324, -2.2250738585072014e-308, 1.7976931348623157e308, 0.1, 1 / 3]])
    back = decode_array(json.loads(json.dumps(encode_array(values))))
    assert back.tobytes() == values.tobytes()  # every bit, the sign of zero included
    assert np.isnan(decode_number(encode_number(float("nan"))))
    assert [decode_number(encode_number(v)) for v in (np.inf, -np.inf)] == [np.inf, -np.inf]
    assert decode_number("0x1.999999999999ap-4") == 0.1  # C99 hex floats (printf %a)
    assert decode_number("-0x1p-1074") == -5e-324
    assert decode_number("Infinity") == np.inf and decode_number(2.5) == 2.5  # JavaScript's String(x); JSON numbers


@needs_node
def test_documented_transcript():
    """docs/protocol.md's example, replayed: the child gives exactly the answers shown."""
    doc = (ROOT / "docs" / "protocol.md").read_text()
    block = doc.split("## Example")[1].split("```")[1]
    sent = [line[2:] for line in block.splitlines() if line.startswith("> ")]
    shown = [json.loads(line[2:]) for line in block.splitlines() if line.startswith("< ")]
    out = subprocess.run([NODE, str(MLP_JS)], input="\n".join(sent) + "\n", capture_output=True, text=True,
                         timeout=30, check=True).stdout.splitlines()
    got = [json.loads(line) for line in out]
    assert len(got) == len(shown)
    assert {k: got[0][k] for k in shown[0]} == shown[0]  # hello: the keys shown (its language names the version)
    assert got[1:] == shown[1:]


@needs_node
def test_node_implementation_passes_verify(tmp_path, capsys):
    assert main(["verify", "--cmd", f"{NODE} {MLP_JS}", "--quick", "--out", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "conventions detected: adam optax (also consistent: torch, textbook); momentum torch (also consistent: " \
           "keras); bce logits (also consistent: optax)" in out
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["implementation"] == "node-mlp" and report["passed"]
    statuses = {c["id"]: c["status"] for c in report["checks"]}
    assert statuses.pop("float32") == "skip"  # it declares float64 only
    assert statuses.pop("preset_seed_numpy") == "skip"  # --quick
    assert set(statuses.values()) == {"pass"}


@needs_node
def test_node_mutant_is_diagnosed(tmp_path, capsys):
    """mlp.js with one classic bug, tanh′ computed from z, is named as a wrong activation derivative."""
    source = MLP_JS.read_text()
    assert source.count("(z, a) => 1 - a * a") == 1
    mutant = tmp_path / "mutant.js"
    mutant.write_text(source.replace("(z, a) => 1 - a * a", "(z, a) => 1 - z * z"))
    assert main(["verify", "--cmd", f"{NODE} {mutant}", "--quick", "-x", "--json", "--quiet", "--out", str(tmp_path)]) == 1
    report = json.loads(capsys.readouterr().out)
    d = report["diagnosis"]
    assert (d["check"], d["where"]["part"], d["cause"]["id"]) == ("gradients", "gradient", "activation-derivative")
    assert d["also_consistent"] == [] and "tanh′ computed from z" in d["evidence"]


@needs_node
def test_compare_runs_a_command(tmp_path, capsys):
    code = main(["compare", "--preset", "seed-numpy", "--steps", "300", "--impls", "numpy",
                 "--cmd", f"{NODE} {MLP_JS}", "--out", str(tmp_path), "--json", "--quiet"])
    rows = {r["implementation"]: r for r in json.loads(capsys.readouterr().out)["implementations"]}
    assert code == 1  # 300 steps do not converge (the threshold is 1e-6); agreement is what this test is about
    assert rows["node-mlp"]["verdict"].startswith("agrees") and rows["node-mlp"]["max_param_diff"] < 1e-13


BROKEN = {
    "exits": "import sys; sys.stdin.readline(); print('{\"ok\": true}', flush=True); sys.exit(3)",
    "garbage": "import sys\nfor line in sys.stdin: print('not json', flush=True)",
}


def test_child_that_does_not_speak_the_protocol_is_bad_input(capsys):
    code = main(["verify", "--cmd", f"{sys.executable} -c {shlex.quote(BROKEN['garbage'])}"])
    assert code == 2
    assert "does not speak the protocol" in capsys.readouterr().err


def test_child_that_exits_fails_its_checks_with_the_reason(tmp_path, capsys):
    code = main(["verify", "--cmd", f"{sys.executable} -c {shlex.quote(BROKEN['exits'])}", "--checks", "construction,forward",
                 "--out", str(tmp_path), "--json", "--quiet"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    assert [c["status"] for c in report["checks"]] == ["fail", "fail"]
    assert "exited (status 3)" in report["checks"][0]["verdict"]
