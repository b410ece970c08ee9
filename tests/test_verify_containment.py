"""`xor-rosetta verify` contains what it runs: a Python target runs in a worker process, and its exits, crashes,
hangs and prints become failing checks with their reasons (exit status 1, with a scorecard and a report), never
the end of verify; it cannot change the spec the reference reads, and what it returns is copied and checked."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xor_rosetta.app.cli import main
from xor_rosetta.checks import verify

from impls import unruly

FILE = "tests/impls/unruly.py"


def _verify(tmp_path, cls: str, checks: str, *more: str) -> tuple[int, dict]:
    code = main(["verify", f"{FILE}:{cls}", "--quick", "--checks", checks, "--out", str(tmp_path), "--quiet", *more])
    return code, json.loads((tmp_path / "report.json").read_text())


@pytest.mark.parametrize("cls, check, reason", [
    ("ExitInForward", "forward", "forward() raised RuntimeError: called sys.exit(0)"),
    ("ExitThreeInForward", "forward", "forward() raised RuntimeError: called sys.exit(3)"),
    ("ExitInInit", "construction", "construction raised RuntimeError: called sys.exit(0)"),
    ("OsExitInTrain", "update_sgd", "raised WorkerError: worker exited with status 0"),
    ("SegfaultInTrain", "update_sgd", "raised WorkerError: worker died (signal 11)"),
])
def test_an_exit_or_a_crash_is_a_failing_check(tmp_path, capsys, cls, check, reason):
    code, report = _verify(tmp_path, cls, f"{check},determinism")
    out = capsys.readouterr().out
    assert code == 1, out  # never 0 (a false pass) nor the target's own status
    row = next(c for c in report["checks"] if c["id"] == check)
    assert row["status"] == "fail" and reason in row["verdict"], row
    assert f"{check} " in out and " failed" in out  # the scorecard was printed


def test_no_conventions_line_when_nothing_was_computed(tmp_path, capsys):
    code, _ = _verify(tmp_path, "ExitInInit", "update_adam,update_momentum,loss_bce")
    out = capsys.readouterr().out
    assert code == 1 and "conventions detected" not in out
    assert "likely cause: not diagnosed: a call into the implementation failed" in out


def test_a_hang_fails_its_check_by_the_timeout(tmp_path, capsys):
    start = time.monotonic()
    code, report = _verify(tmp_path, "HangInTrain", "forward,update_sgd,update_momentum", "--timeout", "1")
    assert code == 1
    rows = {c["id"]: c for c in report["checks"]}
    assert rows["forward"]["status"] == "fail" and "ran past --timeout 1 s (per check)" in rows["forward"]["verdict"]
    assert "ran past --timeout 1 s" in rows["update_momentum"]["verdict"]
    assert time.monotonic() - start < 60  # the hangs were stopped


def test_the_total_timeout_stops_every_call_left(tmp_path, capsys):
    code, report = _verify(tmp_path, "HangInTrain", "forward,update_momentum,determinism", "--total-timeout", "1")
    assert code == 1
    verdicts = [c["verdict"] for c in report["checks"]]
    assert "ran past --total-timeout 1 s" in verdicts[0]
    assert all("--total-timeout 1 s" in v for v in verdicts), verdicts


def test_the_targets_prints_go_to_stderr_and_json_stays_json(tmp_path, capfd):
    code = main(["verify", f"{FILE}:Prints", "--quick", "--checks", "construction,forward", "--out", str(tmp_path),
                 "--json"])
    out, err = capfd.readouterr()
    assert code == 0
    assert json.loads(out)["passed"] is True  # stdout is the report alone
    assert "Prints: forward" in err


def test_a_target_cannot_change_the_spec_the_reference_reads(tmp_path, capsys):
    """It writes lr = 5 into its frozen spec and trains with it: in a worker (the command) and in this process
    (the kit), the reference keeps the spec's own lr, and the update disagrees."""
    code, report = _verify(tmp_path, "WritesTheSpec", "update_sgd")
    assert code == 1 and report["checks"][0]["status"] == "fail"
    assert not verify(unruly.WritesTheSpec, level="quick", ids=["update_sgd"]).passed


def test_complex_outputs_fail():
    r = verify(unruly.ComplexForward, level="quick", ids=["forward"])
    assert r.results[0].status == "fail"
    assert "forward() returned complex128 values; real floating point expected" in r.results[0].verdict


def test_live_buffers_are_copied_when_returned():
    r = verify(unruly.LiveParams, level="quick", ids=["construction", "update_sgd"])
    assert r.passed, "\n".join(r.lines())


def test_no_files_outside_out(tmp_path):
    """random_specs draws with Hypothesis, which caches the constants of the code it runs under .hypothesis/ in
    the working directory unless told otherwise: in a fresh process, nothing may appear there but --out."""
    target = str(Path(__file__).resolve().parent / "mutants" / "numpy_mutants.py") + ":NumpyMLP"
    done = subprocess.run([sys.executable, "-m", "xor_rosetta.app.cli", "verify", target, "--checks",
                           "random_specs", "--out", "out", "--quiet"], cwd=tmp_path, capture_output=True, text=True,
                          env={k: v for k, v in os.environ.items() if k != "HYPOTHESIS_STORAGE_DIRECTORY"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
