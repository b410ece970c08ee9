"""The child-process protocol (docs/protocol.md): exact float transport, the documented transcript, the examples
in tests/other_language/ passing `xor-rosetta verify --cmd` (and a one-bug mutant of each diagnosed), and every
misbehaving child of issue 21 (tests/other_language/faulty.py, one fault each) ending cleanly: a result or a
one-line error, no traceback, no hang past the timeout, no blame on another implementation, no desync, no orphan."""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from xor_rosetta.app.cli import main
from xor_rosetta.app.workers import child as child_module
from xor_rosetta.app.workers.protocol import (ProtocolError, Session, decode_array, decode_number, encode_array,
                                              encode_number, parse_answer)

ROOT = Path(__file__).resolve().parents[1]
MLP_JS = ROOT / "tests" / "other_language" / "mlp.js"
FAULTY = ROOT / "tests" / "other_language" / "faulty.py"
EXE = Path(sys.executable).parent / "xor-rosetta"
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


def test_the_page_states_the_codes_values():
    """docs/protocol.md's tables and figures are the code's: the conventions (catalogue and defaults), the supports
    keys and values, the limits, the default timeout, the versions."""
    from xor_rosetta.app.workers import protocol
    from xor_rosetta.checks.subject import SUPPORT_KEYS
    from xor_rosetta.interface import Conventions
    from xor_rosetta.reference import FORMS
    doc = (ROOT / "docs" / "protocol.md").read_text()
    rows = {line.split("|")[1].strip(" `"): line for line in doc.splitlines() if line.startswith("| `")}
    defaults = Conventions().to_dict()
    for op, forms in FORMS.items():
        cells = [c.strip() for c in rows[op].split("|")[1:-1]]
        assert cells[1] == ", ".join(f'`"{f}"`' for f in forms) and cells[2] == f'`"{defaults[op]}"`', rows[op]
    for key, values in SUPPORT_KEYS.items():
        cell = rows[key].split("|")[2]
        assert re.findall(r"`([^`]+)`", cell)[:len(values)] == [json.dumps(v) for v in values], rows[key]
    assert f"| one answer line | 64 MiB ({child_module.MAX_LINE_BYTES:,} bytes) |" in doc
    assert f"| {child_module.MAX_DEPTH} levels" in doc and f"| {child_module.MAX_STRING_CHARS:,} characters |" in doc
    assert f"the last {child_module.STDERR_TAIL_BYTES >> 10} KiB" in doc
    assert f"{protocol.MAX_NAME_CHARS} characters (exit 2)" in doc
    assert f"each answer within {protocol.TIMEOUT_S:g} s** (`TIMEOUT_S`" in doc
    assert f"It is given {child_module.GRACE_S:g} s to do so" in doc
    assert f'"protocol": {protocol.VERSION}' in doc and "xor-rosetta speaks 1 and 2`" in doc
    assert protocol.VERSIONS == (1, 2)


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
    """The command's name is forgotten when compare ends: a second compare in this process names it the same."""
    from xor_rosetta import registry
    code = main(["compare", "--preset", "seed-numpy", "--steps", "300", "--impls", "numpy",
                 "--cmd", f"{NODE} {MLP_JS}", "--out", str(tmp_path), "--json", "--quiet"])
    rows = {r["implementation"]: r for r in json.loads(capsys.readouterr().out)["implementations"]}
    assert code == 1  # 300 steps do not converge (the threshold is 1e-6); agreement is what this test is about
    assert rows["node-mlp"]["verdict"].startswith("agrees") and rows["node-mlp"]["max_param_diff"] < 1e-13
    assert "node-mlp" not in registry.RUNTIME


# The examples in other languages: each is built where its toolchain is installed (CI installs them: .ci/run),
# passes verify, and one mutant of each, switched on by MLP_MUTANT, is diagnosed as its catalogued cause.
COMPILED = {  # language: (source, compiler, build argv with OUT, the mutant's MLP_MUTANT, (check, cause id))
    "c": ("mlp.c", "cc", ["-O2", "-std=c99", "-o", "OUT", "SRC", "-lm"], "sign", ("update_sgd", "wrong-sign")),
    "rust": ("mlp.rs", "rustc", ["-O", "-o", "OUT", "SRC"], "halve", ("loss", "loss-halved")),
}
REQUIRE_ALL = os.environ.get("XOR_ROSETTA_REQUIRE_ALL") == "1"  # CI: a missing toolchain fails, never skips


@pytest.fixture(scope="module", params=list(COMPILED))
def compiled(request, tmp_path_factory) -> tuple[str, str]:
    """(language, the built executable)."""
    source, compiler, argv, _, _ = COMPILED[request.param]
    exe = shutil.which(compiler)
    if exe is None:
        (pytest.fail if REQUIRE_ALL else pytest.skip)(f"{compiler} is not installed")
    out = tmp_path_factory.mktemp(request.param) / "mlp"
    argv = [str(out) if a == "OUT" else str(ROOT / "tests" / "other_language" / source) if a == "SRC" else a
            for a in argv]
    subprocess.run([exe, *argv], check=True, capture_output=True, timeout=600)
    return request.param, str(out)


def test_compiled_example_answers_the_documented_transcript(compiled):
    """docs/protocol.md's example, replayed: the same answers, number for number (C writes 17 digits where the
    page shows the shortest form: the same float64), and the same hello fields."""
    def numbers(obj):
        if isinstance(obj, dict):
            return {k: numbers(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [numbers(v) for v in obj]
        return decode_number(obj) if isinstance(obj, str) and obj[:1] in "-0123456789" else obj
    language, exe = compiled
    doc = (ROOT / "docs" / "protocol.md").read_text()
    block = doc.split("## Example")[1].split("```")[1]
    sent = [line[2:] for line in block.splitlines() if line.startswith("> ")]
    shown = [json.loads(line[2:]) for line in block.splitlines() if line.startswith("< ")]
    got = [json.loads(line) for line in subprocess.run([exe], input="\n".join(sent) + "\n", capture_output=True,
                                                        text=True, timeout=30, check=True).stdout.splitlines()]
    assert len(got) == len(shown)
    assert set(got[0]) >= set(shown[0]) and got[0]["id"] == 1 and got[0]["protocol"] == 2
    assert numbers(got[1:3]) == numbers(shown[1:3])
    assert got[3]["id"] == 4 and got[3]["ok"] is False


def test_compiled_example_passes_verify(compiled, tmp_path, capsys):
    language, exe = compiled
    assert main(["verify", "--cmd", shlex.quote(exe), "--quick", "--out", str(tmp_path), "--json", "--quiet"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["implementation"] == f"{language}-mlp" and report["passed"]
    statuses = {c["id"]: c["status"] for c in report["checks"]}
    assert statuses.pop("float32") == statuses.pop("preset_seed_numpy") == "skip"  # float64 only; --quick
    assert set(statuses.values()) == {"pass"}


def test_compiled_example_mutant_is_diagnosed(compiled, tmp_path, capsys, monkeypatch):
    language, exe = compiled
    _, _, _, mutant, (check, cause) = COMPILED[language]
    monkeypatch.setenv("MLP_MUTANT", mutant)
    code = main(["verify", "--cmd", shlex.quote(exe), "--quick", "-x", "--json", "--quiet", "--out", str(tmp_path)])
    assert code == 1
    d = json.loads(capsys.readouterr().out)["diagnosis"]
    assert (d["check"], d["cause"]["id"], d["also_consistent"]) == (check, cause, [])


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


# ------------------------------------------------------------------------------------ misbehaving children (issue 21)

def faulty(*fault: str) -> str:
    """The command of the scripted child with one fault (tests/other_language/faulty.py)."""
    return shlex.join([sys.executable, str(FAULTY), *fault])


def cli(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    """`xor-rosetta ARGS` in a process of its own (a driver that crashed or hung would show here, not in pytest)."""
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    return lines[0]


def verdicts(report: dict) -> dict[str, tuple[str, str]]:
    return {c["id"]: (c["status"], c["verdict"]) for c in report["checks"]}


@pytest.mark.slow  # waits out a 10 s timeout by design
def test_compare_timeout_blames_the_slow_child_not_numpy(tmp_path):
    """`compare --cmd CHILD --impls numpy --timeout S` with a child slower than S: the child's row says "timeout
    after S s", numpy agrees, and the run ends soon after S (the child is killed, not waited for)."""
    start = time.monotonic()
    proc = cli(["compare", "--preset", "seed-numpy", "--steps", "300", "--impls", "numpy", "--cmd",
                faulty("slow-train", "600"), "--timeout", "10", "--out", str(tmp_path), "--json", "--quiet"])
    elapsed = time.monotonic() - start
    rows = {r["implementation"]: r for r in json.loads(proc.stdout)["implementations"]}
    assert rows["faulty-slow-train"]["error"] == "timeout after 10 s"
    assert rows["numpy"]["error"] is None and rows["numpy"]["verdict"].startswith("agrees")
    assert elapsed < 300  # the child would sleep 600 s
    assert "Traceback" not in proc.stderr


def test_verify_timeout_ends_a_hung_child_once_and_goes_on_with_a_fresh_one(tmp_path):
    """A child that hangs at its 4th request: with --timeout 3, the checks that needed that request fail with the
    timeout, a fresh child serves the rest, which pass; no check waits 120 s again."""
    start = time.monotonic()
    proc = cli(["verify", "--cmd", faulty("hang-once", str(tmp_path / "hung")), "--quick", "--timeout", "3",
                "--out", str(tmp_path), "--json", "--quiet"])
    elapsed = time.monotonic() - start
    assert proc.returncode == 1 and (tmp_path / "hung").exists()
    v = verdicts(json.loads(proc.stdout))
    failed = [c for c, (status, _) in v.items() if status == "fail"]
    assert failed and all("timeout after 3 s (--timeout)" in v[c][1] for c in failed)
    assert v["steps_1000"][0] == v["random_specs"][0] == v["preset_seed_keras"][0] == "pass"  # the fresh child's
    assert elapsed < 120  # one timeout of 3 s, not 120 s a request


def test_an_answer_written_twice_is_discarded_by_id(tmp_path):
    """A child that writes every train answer twice: the copy carries an old id and is discarded; with no ids
    (version 1) it would be read as the next answer and shift every later one."""
    proc = cli(["verify", "--cmd", faulty("duplicate"), "--quick", "--out", str(tmp_path), "--json", "--quiet"])
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert {s for s, _ in verdicts(json.loads(proc.stdout)).values()} == {"pass", "skip"}


def test_a_stray_line_fails_one_request_and_nothing_after_it(tmp_path):
    """One extra line with no id after the 4th answer: the request waiting then fails (the checks sharing its
    recorded run report that one error), and every later answer is still matched to its own request."""
    proc = cli(["verify", "--cmd", faulty("stray"), "--quick", "--out", str(tmp_path), "--json", "--quiet"])
    v = verdicts(json.loads(proc.stdout))
    failed = {v[c][1] for c, (status, _) in v.items() if status == "fail"}
    assert len(failed) == 1 and "(request id 5) with no id" in failed.pop()
    assert v["steps_1000"][0] == v["activations_losses"][0] == v["random_specs"][0] == "pass"


@pytest.mark.parametrize("command", ["verify", "compare"])
def test_invalid_conventions_are_bad_input_naming_the_allowed_values(command, tmp_path):
    args = ["--cmd", faulty("conventions", '{"adam": "foo"}'), "--out", str(tmp_path), "--quiet"]
    proc = cli([command, *args] if command == "verify" else [command, "--preset", "seed-keras", "--impls", "numpy",
                                                              *args])
    line = one_line_error(proc)
    assert 'hello declares adam "foo"; allowed: torch, keras, optax, keras-torch, textbook' in line


@pytest.mark.parametrize("fields, message", [
    ({"name": "n" * 201}, "hello's 'name' must be a non-empty string of at most 200 characters, got 201 characters"),
    ({"language": 3}, "hello's 'language' must be a non-empty string of at most 200 characters, got 3"),
    ({"supports": {"dtypes": ["float16"]}}, "supports['dtypes'] has unknown value 'float16'; choose from float32, "
                                           "float64"),
    ({"supports": {"widths": [2]}}, "unknown key 'widths' in supports; known keys: dtypes, optimizers, losses"),
    ({"conventions": ["torch"]}, "hello's conventions must be an object like {\"adam\": \"torch\"}"),
    ({"conventions": {"sgd": "torch"}}, "hello declares conventions for 'sgd'; the operations are adam, momentum, bce"),
    ({"conventions": {"momentum": None}}, "hello declares momentum null; allowed: torch, keras"),
])
def test_hello_declarations_are_validated(fields, message, tmp_path):
    assert message in one_line_error(cli(["verify", "--cmd", faulty("hello", json.dumps(fields)), "--out",
                                          str(tmp_path)]))


def test_a_partial_declaration_takes_the_defaults():
    from xor_rosetta.app.workers.protocol import command_class
    cls = command_class(faulty("conventions", '{"adam": "optax"}'))
    cls.session.close()
    assert cls.conventions.to_dict() == {"adam": "optax", "momentum": "torch", "bce": "probs"}


def test_an_unsupported_version_is_bad_input(tmp_path):
    line = one_line_error(cli(["verify", "--cmd", faulty("version", "3"), "--out", str(tmp_path)]))
    assert "speaks protocol version 3; xor-rosetta speaks 1 and 2" in line


def test_a_version_1_child_still_runs(tmp_path):
    proc = cli(["verify", "--cmd", faulty("v1"), "--checks", "construction,gradients,continuation", "--out",
                str(tmp_path), "--json", "--quiet"])
    assert proc.returncode == 0 and {s for s, _ in verdicts(json.loads(proc.stdout)).values()} == {"pass"}


@pytest.mark.parametrize("fault, message", [
    (("deep", "100000"), "nested deeper than the limit of 32 levels"),
    (("deep", "40"), "nested deeper than the limit of 32 levels"),
    (("bad-utf8",), "wrote invalid UTF-8 on its stdout (byte 0xff"),
])
def test_hostile_answers_are_protocol_errors_naming_the_limit(fault, message, tmp_path):
    proc = cli(["verify", "--cmd", faulty(*fault), "--checks", "forward", "--out", str(tmp_path), "--json",
                "--quiet"])
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    status, verdict = verdicts(json.loads(proc.stdout))["forward"]
    assert status == "fail" and message in verdict and f"faulty.py {fault[0]}" in verdict


def test_a_huge_hello_hits_the_line_limit(tmp_path):
    """An 80 MiB name: refused at the 64 MiB line limit, exit 2; the driver's memory grows by less than three
    times the limit (it holds one line at most; before the limit, a 300 MB name took 1.5 GB)."""
    measure = ("import resource, sys; from xor_rosetta.app.cli import main; "
               "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; code = main(sys.argv[1:]); "
               "print(before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(code)")
    proc = subprocess.run([sys.executable, "-c", measure, "verify", "--cmd", faulty("big-name", "80"), "--out",
                           str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    *errors, rss = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "answered 'hello' with a line longer than the limit of 67,108,864 bytes" in errors[0]
    before_kb, after_kb = map(int, rss.split())
    assert (after_kb - before_kb) * 1024 < 3 * child_module.MAX_LINE_BYTES


def test_string_limit_and_name_limit():
    long = json.dumps({"id": 1, "ok": True, "error": "x" * (child_module.MAX_STRING_CHARS + 1)}).encode()
    with pytest.raises(ProtocolError, match="a string of 65,537 characters; the limit is 65,536"):
        parse_answer(long, "'c'", "loss")
    assert parse_answer(json.dumps({"ok": True, "e": "x" * child_module.MAX_STRING_CHARS}).encode(), "'c'", "loss")


def test_stderr_is_kept_as_a_bounded_tail():
    """150 MiB of stderr before an exit: the last line is quoted, and only the last 64 KiB were ever kept."""
    session = Session(faulty("stderr-exit", "150"))
    session.start()
    child = session.child
    with pytest.raises(ProtocolError, match=r"exited \(status 3\) before answering 'init'; its stderr ends: "
                                            "the last line"):
        session.request("init", 1, spec={}, params=[])
    assert len(child._tail) <= child_module.STDERR_TAIL_BYTES


def alive(pid: int) -> bool:
    """Whether `pid` is a process that has not ended (a zombie has ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def started(pidfile: Path, children: int = 1, seconds: float = 60) -> list[int]:
    """Every pid the spawn fault recorded (child, grandchild, for each child started), once `children` children
    have started and the last one and its grandchild are alive (compare's first child only says hello, in the
    parent, and is ended; the second serves the run, in a worker)."""
    deadline = time.monotonic() + seconds
    while True:
        pairs = [line.split() for line in pidfile.read_text().splitlines()] if pidfile.exists() else []
        if len(pairs) >= children and len(pairs[-1]) == 2 and all(alive(int(p)) for p in pairs[-1]):
            return [int(p) for pair in pairs for p in pair]
        assert time.monotonic() < deadline, f"no live child and grandchild in {pidfile} after {seconds} s"
        time.sleep(0.05)


needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists() or os.name != "posix",
                                reason="needs POSIX process groups and /proc")


@needs_proc
def test_a_timeout_ends_the_childs_whole_process_group(tmp_path):
    session = Session(faulty("spawn", str(tmp_path / "pids")), timeout=2)
    session.start()
    session.request("init", 1, spec=json.loads(json.dumps(SPEC)), params=PARAMS)
    pids = started(tmp_path / "pids")
    with pytest.raises(ProtocolError, match=r"timeout after 2 s \(the limit for one answer\)"):
        session.request("train", 1, x=X, y=Y, steps=1, checkpoints=[])
    deadline = time.monotonic() + 10
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(p) for p in pids)
    with pytest.raises(ProtocolError, match="model 1 lived in a child .* that was ended \\(a timeout\\)"):
        session.request("params", 1, generation=1)


WITH_SIGINT = [sys.executable, "-c", "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
               "os.execv(sys.argv[1], sys.argv[1:])"]  # a process started in the background may inherit SIGINT ignored


@needs_proc
@pytest.mark.parametrize("sig, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("command", ["verify", pytest.param("compare", marks=pytest.mark.slow)])
def test_no_orphans_after_a_signal_to_the_driver(command, sig, status, tmp_path):
    """SIGTERM or SIGINT to the driver while its child hangs in train: the child and the grandchild it started
    both end (and so does compare's first child, which only said hello)."""
    cmd = faulty("spawn", str(tmp_path / "pids"))
    args = ["verify", "--cmd", cmd, "--checks", "steps_10"] if command == "verify" else \
        ["compare", "--preset", "seed-numpy", "--steps", "10", "--impls", "numpy", "--cmd", cmd, "--jobs", "1"]
    driver = subprocess.Popen([*WITH_SIGINT, str(EXE), *args, "--out", str(tmp_path / "out"),
                               "--quiet"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        pids = started(tmp_path / "pids", children=1 if command == "verify" else 2)
        time.sleep(1)  # into train, where it hangs
        assert alive(pids[-1])
        driver.send_signal(sig)
        _, err = driver.communicate(timeout=60)
    finally:
        driver.kill()
    assert driver.returncode == status and "Traceback" not in err, err[-2000:]
    deadline = time.monotonic() + 10
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(p) for p in pids)


SPEC = {"layers": [2, 2, 1], "activations": ["tanh", "linear"], "loss": "mse",
        "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.0, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-07},
        "steps": 3, "batch_size": None, "dtype": "float64", "init": {"scheme": "seed-uniform", "seed": 1, "path": None}}
PARAMS = [[[["0.5", "-0.25"], ["1.0", "2.0"]], ["0.1", "0.2"]], [[["1.0"], ["-1.0"]], ["0.0"]]]
X = [["0.0", "0.0"], ["0.0", "1.0"], ["1.0", "0.0"], ["1.0", "1.0"]]
Y = [["0.0"], ["1.0"], ["1.0"], ["0.0"]]
