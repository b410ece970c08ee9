"""`xor-rosetta sweep`: a small sweep through the command line, its counts against runs made directly, the Wilson
interval against a published table, resuming an interrupted sweep, a Dask cluster giving the local results, and
each framework's own initial weights."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from xor_rosetta.app.cli import main
from xor_rosetta.app.sweep.report import wilson
from xor_rosetta.compare import accuracy
from xor_rosetta.data import xor_data
from xor_rosetta.implementations.numpy_mlp import NumpyMLP
from xor_rosetta.params import init_params, load_params
from xor_rosetta.presets import get_preset
from xor_rosetta.tolerance import DISAGREES

from conftest import load_or_skip

SMALL = ["--preset", "seed-numpy", "--steps", "500", "--seeds", "12"]  # 7 of these 12 converge in 500 steps
TIMING = ("seconds",)


def records(out: Path) -> dict:
    """(seed, variant, impl) -> the run's record, without its timing."""
    rs = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    return {(r["seed"], r["variant"], r["impl"]): {k: v for k, v in r.items() if k not in TIMING} for r in rs}


def sweep(out: Path, *args: str) -> int:
    return main(["sweep", *SMALL, "--out", str(out), "--quiet", *args])


# Newcombe (1998), "Two-sided confidence intervals for the single proportion: comparison of seven methods",
# Statistics in Medicine 17, 857-872, Table II, method 3 (Wilson score, no continuity correction).
NEWCOMBE = [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718)]


@pytest.mark.parametrize("k,n,lo,hi", NEWCOMBE, ids=[f"{k}/{n}" for k, n, _, _ in NEWCOMBE])
def test_wilson_interval_matches_the_published_table(k, n, lo, hi):
    got = wilson(k, n)
    assert abs(got[0] - lo) < 5e-5 and abs(got[1] - hi) < 5e-5, got


def test_small_sweep_counts_what_direct_runs_count(tmp_path):
    out = tmp_path / "s"
    assert sweep(out, "--impls", "numpy,numpy-batched", "--basin-grid", "9") == 0
    spec = get_preset("seed-numpy").replace(steps=500)
    x, y = xor_data()
    direct = []
    for seed in range(12):  # the numpy implementation, run here without the sweep's machinery
        m = NumpyMLP(spec.replace(init=replace(spec.init, seed=seed)), init_params(spec.replace(
            init=replace(spec.init, seed=seed))))
        h = m.train(x, y)
        below = np.flatnonzero(h.loss < 1e-6)
        direct.append((m.loss(x, y) < 1e-6 and accuracy(m.forward(x), y) == 1.0, int(below[0]) + 1 if below.size
                       else None))
    assert 0 < sum(c for c, _ in direct) < 12, "the case should have seeds of both kinds"
    recs = records(out)
    assert len(recs) == 24
    for impl in ("numpy", "numpy-batched"):
        got = [(recs[(s, "canonical", impl)]["converged"], recs[(s, "canonical", impl)]["steps_to_threshold"])
               for s in range(12)]
        assert got == direct, impl
    assert all(recs[(s, "canonical", "numpy")]["agreement"] == "agrees" for s in range(12))
    report = json.loads((out / "report.json").read_text())
    k = sum(c for c, _ in direct)
    for row in report["rates"]:
        assert (row["converged"], row["runs"]) == (k, 12)
        assert row["wilson95"] == pytest.approx(list(wilson(k, 12)))
    assert report["findings"] == [] and report["seeds_compared"] == {"canonical": 12}
    assert report["basin"]["grid"] == 9 and (out / "basin.npz").is_file()
    md = (out / "report.md").read_text()
    assert "95% Wilson interval" in md and "Seeds where their verdicts (converged or not) differ: **0**" in md


def test_a_seed_where_verdicts_differ_is_a_finding_with_its_replay(tmp_path):
    """The cross-implementation check can fail: a record changed by hand shows up as a finding."""
    from xor_rosetta.app.sweep.report import summarise
    out = tmp_path / "s"
    assert sweep(out, "--impls", "numpy,numpy-batched", "--basin-grid", "0", "--seeds", "3") == 0
    header = json.loads((out / "sweep.json").read_text())
    recs = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    flipped = next(r for r in recs if r["impl"] == "numpy" and r["seed"] == 1)
    flipped["converged"] = not flipped["converged"]
    report = summarise(header, recs, out)
    (f,) = report["findings"]
    assert f["kind"] == "verdicts differ" and f["seed"] == 1
    assert f["replay"] == f"xor-rosetta compare --config {out}/replay/canonical-seed-1.toml --impls numpy"
    replayed = load_params_from_toml(out / "replay" / "canonical-seed-1.toml")
    assert replayed.init.seed == 1 and replayed.steps == 500


def _rec(impl, converged, adam, bce="logits", status=0):
    return {"impl": impl, "converged": converged, "status": status,
            "conventions": {"adam": adam, "momentum": "torch", "bce": bce}}


WHY_CASES = {  # records of one seed (seed-keras: Adam, BCE) -> what the finding says of them
    "the adam form splits": ([_rec("numpy", True, "textbook"), _rec("torch-vmap", True, "torch", "probs"),
                              _rec("keras", False, "keras")],
                             "every run agrees with the reference in its own forms, and the adam form (keras (keras) "
                             "did not; textbook (numpy), torch (torch-vmap) converged) splits them as the verdicts do"),
    "no one form splits": ([_rec("a", True, "keras", "probs"), _rec("b", False, "keras", "logits"),
                            _rec("c", False, "torch", "probs")],
                           "every run agrees with the reference in its own forms, and no one form splits them as the "
                           "verdicts do"),
    "same forms": ([_rec("a", True, "torch"), _rec("b", False, "torch")],
                   "every run agrees with the reference, in the same forms: rounding alone puts them on either side "
                   "of the threshold"),
    "a run disagrees": ([_rec("a", True, "torch"), _rec("b", False, "keras", status=DISAGREES)], None),
}


@pytest.mark.parametrize("rs, why", WHY_CASES.values(), ids=WHY_CASES.keys())
def test_a_finding_says_which_form_splits_the_verdicts(rs, why):
    from xor_rosetta.app.sweep.report import _why_differ
    forms = {r["impl"]: r["conventions"] for r in rs}
    assert _why_differ(rs, forms, get_preset("seed-keras")) == why
    if why is not None:  # an implementation whose forms were not recorded (a sweep from before they were): nothing
        assert _why_differ(rs, {n: c for n, c in forms.items() if n != rs[0]["impl"]}, get_preset("seed-keras")) is None


def test_a_run_under_the_threshold_only_after_its_last_update_is_reported(tmp_path):
    """Converged (the final loss, after the last update, is under the threshold) with no step to the threshold
    (no loss before an update was): seen in the native-defaults study, where the histogram then crashed."""
    pytest.importorskip("matplotlib")  # the histogram is what crashed
    from xor_rosetta.app.sweep.report import summarise, write
    out = tmp_path / "s"
    assert sweep(out, "--impls", "numpy", "--basin-grid", "0") == 0  # 12 seeds: 7 converge
    header = json.loads((out / "sweep.json").read_text())
    recs = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    late = next(r for r in recs if r["impl"] == "numpy" and r["converged"])
    late["steps_to_threshold"] = None
    (out / "steps_histogram.png").unlink()  # drawn again by this write, from the other converged runs
    report = summarise(header, recs, out)
    write(out, report, recs, None)
    (row,) = report["rates"]
    assert row["converged"] == sum(r["converged"] for r in recs) and (out / "steps_histogram.png").stat().st_size


def load_params_from_toml(path):
    from xor_rosetta.app.common.config import load_toml
    return load_toml(path)


def test_an_existing_sweep_needs_resume_and_the_same_spec(tmp_path, capsys):
    out = tmp_path / "s"
    assert sweep(out, "--impls", "numpy-batched", "--basin-grid", "0", "--seeds", "2") == 0
    capsys.readouterr()
    assert sweep(out, "--impls", "numpy-batched", "--basin-grid", "0", "--seeds", "2") == 2
    assert "add --resume to continue it" in capsys.readouterr().err
    assert main(["sweep", "--preset", "seed-numpy", "--steps", "501", "--seeds", "2", "--out", str(out), "--resume",
                 "--quiet", "--impls", "numpy-batched", "--basin-grid", "0"]) == 2
    assert "holds a sweep with another spec" in capsys.readouterr().err


@pytest.mark.parametrize("args,words", [
    (["--seeds", "5:5"], "names no seeds"), (["--seeds", "x"], "--seeds takes N or A:B"),
    (["--impls", "nope"], "unknown implementation 'nope'"), (["--basin", "W9[0,0],W0[0,0]"], "weight layers 0..1"),
    (["--basin", "W0[0,7],W0[0,0]"], "outside W0"), (["--jobs", "0"], "--jobs must be positive"),
], ids=["empty-seeds", "bad-seeds", "unknown-impl", "basin-layer", "basin-index", "jobs"])
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, args, words):
    assert main(["sweep", "--preset", "seed-numpy", "--out", str(tmp_path / "s"), *args]) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1, err


def test_interrupted_sweep_resumes_and_loses_no_run(tmp_path):
    """Ctrl-C in the middle, then --resume: the same runs as an uninterrupted sweep, none lost or repeated; a line
    cut short by a kill is redone."""
    cmd = [sys.executable, "-m", "xor_rosetta.app.cli", "sweep", "--preset", "seed-numpy", "--steps", "1000",
           "--seeds", "16", "--impls", "numpy", "--jobs", "1", "--basin-grid", "0", "--quiet"]
    part, whole = tmp_path / "part", tmp_path / "whole"
    proc = subprocess.Popen(cmd + ["--out", str(part)], stderr=subprocess.PIPE, text=True)
    runs = part / "runs.jsonl"
    deadline = time.monotonic() + 120
    while not (runs.exists() and len(runs.read_text().splitlines()) >= 4):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else "slow"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(60) == 130
    assert "continue with the same command and --resume" in proc.stderr.read()
    kept = records(part)
    assert 4 <= len(kept) < 16
    with open(runs, "a") as f:
        f.write('{"seed": 15, "variant": "canonical", "impl": "nu')  # as if killed in the middle of a line
    assert subprocess.run(cmd + ["--out", str(part), "--resume"]).returncode == 0
    assert subprocess.run(cmd + ["--out", str(whole)]).returncode == 0
    resumed = records(part)
    assert len((part / "runs.jsonl").read_text().splitlines()) == 16
    assert {k: resumed[k] for k in kept} == kept  # the runs from before the interruption were kept, not redone
    assert resumed == records(whole)


def test_dask_cluster_gives_the_local_results(tmp_path):
    distributed = pytest.importorskip("distributed")
    local, remote = tmp_path / "local", tmp_path / "dask"
    args = ["--impls", "numpy,numpy-batched", "--basin-grid", "0", "--seeds", "6"]
    assert sweep(local, *args) == 0
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        assert sweep(remote, *args, "--scheduler", cluster.scheduler_address) == 0
    assert records(remote) == records(local)
    assert len(records(local)) == 12


def test_unreachable_scheduler_is_a_one_line_error(tmp_path, capsys):
    dask = pytest.importorskip("dask")
    pytest.importorskip("distributed")
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        assert sweep(tmp_path / "s", "--impls", "numpy", "--scheduler", "tcp://127.0.0.1:9", "--seeds", "1") == 2
    assert "cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'" in capsys.readouterr().err


def test_native_defaults_draw_each_frameworks_own_weights(tmp_path):
    """--native-defaults: torch's own initializer, drawn in its worker and saved, within its bounds, the same for
    the same seed; the variants switch init and epsilon one at a time; numpy has no defaults of its own."""
    load_or_skip("torch")
    out = tmp_path / "n"
    assert main(["sweep", "--preset", "seed-keras", "--steps", "30", "--seeds", "2", "--impls", "numpy,torch",
                 "--native-defaults", "--basin-grid", "0", "--quiet", "--out", str(out)]) == 0
    recs = records(out)
    assert len(recs) == 2 * 4 * 2
    spec = get_preset("seed-keras")
    for seed in range(2):
        torch_w = load_params(out / "inits" / "torch" / f"seed-{seed}.npz", spec)
        for (W, b), n_in in zip(torch_w, spec.layers):
            bound = 1 / np.sqrt(n_in)  # kaiming-uniform(a=sqrt 5) and torch's bias: U(+-1/sqrt(fan_in))
            assert np.all(np.abs(W) <= bound) and np.all(np.abs(b) <= bound) and np.all(b != 0)
        canonical = init_params(spec.replace(init=replace(spec.init, seed=seed)))
        assert not np.allclose(torch_w[0][0], canonical[0][0])
        for variant, eps, init in (("canonical", 1e-7, "glorot-uniform seed"),
                                   ("native-init", 1e-7, "torch default seed"),
                                   ("native-eps", 1e-8, "glorot-uniform seed"), ("native", 1e-8, "torch default seed")):
            r = recs[(seed, variant, "torch")]
            assert (r["epsilon"], r["init"]) == (eps, f"{init} {seed}") and r["agreement"] == "agrees", r
            assert bool(recs[(seed, variant, "numpy")].get("skipped")) == (variant != "canonical")
    from xor_rosetta.implementations import native  # the same seed draws the same weights again (here, in this process)
    for (W, b), (W2, b2) in zip(load_params(out / "inits/torch/seed-1.npz", spec), native.draw("torch", spec, 1)):
        assert np.array_equal(W, W2) and np.array_equal(b, b2)
    report = json.loads((out / "report.json").read_text())
    assert [r["impl"] for r in report["native_defaults"]] == ["torch"]


def test_keras_default_weights():
    """Keras' own Dense weights (glorot-uniform, zero bias), as the sweep draws them in the keras worker: within
    their bounds, the same for the same seed, different for another."""
    from xor_rosetta.implementations import native
    assert native.family(load_or_skip("keras")) == "keras"  # Keras on TensorFlow, in this process
    spec = get_preset("seed-keras")
    a, b, c = (native.draw("keras", spec, s) for s in (3, 3, 4))
    for (W, bias), n_in, n_out in zip(a, spec.layers, spec.layers[1:]):
        assert np.all(np.abs(W) <= np.sqrt(6 / (n_in + n_out))) and np.all(bias == 0)
        assert W.std() > 0.2 * np.sqrt(6 / (n_in + n_out))
    assert all(np.array_equal(x, y) for A, B in zip(a, b) for x, y in zip(A, B))
    assert not np.allclose(a[0][0], c[0][0])


CRASHY = '''
import os
from xor_rosetta.implementations.numpy_mlp import NumpyMLP


class Crashy(NumpyMLP):
    name = "crashy"

    def train(self, x, y, steps=None, checkpoints=()):
        if self.spec.init.seed == 2:
            os._exit(3)  # as a segfaulting framework would: the whole worker goes
        return super().train(x, y, steps, checkpoints)
'''


def test_a_worker_that_dies_costs_only_the_run_it_was_doing(tmp_path, capsys):
    plugin = tmp_path / "crashy.py"
    plugin.write_text(CRASHY)
    name, out = f"{plugin}:Crashy", tmp_path / "s"
    assert main(["sweep", "--preset", "seed-numpy", "--steps", "50", "--seeds", "5", "--impls", name, "--jobs", "1",
                 "--basin-grid", "0", "--quiet", "--out", str(out)]) == 1
    recs = records(out)
    assert len(recs) == 5
    assert recs[(2, "canonical", name)]["error"] == "worker exited with status 3"
    assert all(recs[(s, "canonical", name)]["agreement"] == "agrees" for s in (0, 1, 3, 4))
    report = json.loads((out / "report.json").read_text())
    (f,) = report["findings"]
    assert (f["kind"], f["seed"]) == ("error", 2)


def test_floor_spread_shows_the_policys_floor_beside_a_wider_sample():
    """`python -m xor_rosetta.app.run.floor`, the check of a DISAGREES finding against more jitter patterns: its
    policy column is the tolerance policy's own floor, and the wider sample contains those four runs."""
    from xor_rosetta.app.run.floor import parse_forms, spread
    from xor_rosetta.reference import Reference, rounding_floor
    spec = get_preset("seed-keras").replace(steps=200)
    conv, params = parse_forms("adam=torch,bce=probs"), init_params(spec)
    x, y = xor_data(spec.dtype)
    got = spread(spec, params, conv, patterns=3)
    ks = sorted(got)
    policy = rounding_floor(spec, params, conv, Reference(spec, params, conv).train(x, y, checkpoints=ks), ks, x, y)
    assert [got[k][0] for k in ks] == [policy.params[k] for k in ks]
    assert all(hi >= pol and hi >= med for pol, hi, med in got.values())
    assert got[ks[-1]][1] > 0


@pytest.mark.parametrize("args, words", [
    (["--preset", "seed-keras", "--forms", "adam=nope"], "adam form 'nope' is not one of"),
    (["--preset", "seed-keras", "--forms", "lr=1"], "'lr' is not one of adam, momentum, bce"),
    (["--preset", "seed-keras", "--patterns", "0"], "--patterns must be at least 1"),
    (["--config", "/nonexistent/x.toml"], "does not exist"),
    (["--preset", "seed-keras", "--init", "/nonexistent/w.npz"], "does not exist"),
])
def test_floor_spread_bad_input_is_one_line_exit_2(args, words, capsys):
    from xor_rosetta.app.run.floor import main as floor_main
    assert floor_main(args) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1
