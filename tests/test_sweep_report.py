"""The sweep's report (`xor_rosetta.app.sweep.report`) from hand-made records: the Wilson interval, a rate row field by
field, the seeds compared, the findings and their replay files and commands, the native-defaults table, report.md
line by line, the files `write` leaves and what its plots show. No sweep runs here: every test is fast, and every
expected value is written out by hand (the Wilson bounds from the quadratic whose roots they are, to 10 digits)."""
from __future__ import annotations

import json
import math
import warnings
from dataclasses import replace

import numpy as np
import pytest

from xor_rosetta.app.sweep import report as R
from xor_rosetta.presets import get_preset
from xor_rosetta.tolerance import AGREES, DISAGREES, ILL, NOISE

SPEC = get_preset("seed-numpy").to_dict()  # SGD without momentum, MSE: it uses none of the forms that differ
KERAS = get_preset("seed-keras")  # Adam and BCE: it uses the adam and bce forms
CMD = "xor-rosetta sweep --preset seed-numpy"


def approx(x):
    return pytest.approx(x, abs=5e-10)


def header(**kw):  # what the sweep command writes to sweep.json (xor_rosetta.app.commands.sweep)
    return {"format": 1, "name": "t", "spec": SPEC, "threshold": 1e-6, "seeds": [0, 12],
            "impls": ["numpy", "numpy-batched"], "variants": ["canonical"], "command": CMD, **kw}


def rec(seed, impl="numpy", variant="canonical", **kw):  # every field a run's record has (plan.run_task)
    return {"kind": "run", "seed": seed, "variant": variant, "impl": impl, "final_loss": 0.5, "accuracy": 1.0,
            "steps_to_threshold": None, "diverged_at": None, "converged": False, "agreement": "agrees",
            "status": AGREES, "explanation": None, "error": None, **kw}


def failed(seed, impl="numpy", variant="canonical", **kw):  # plan._failed: a run with nothing to report
    return rec(seed, impl, variant, final_loss=None, accuracy=None, converged=None, agreement=None, status=None,
               **kw)


# ---------------------------------------------------------------------------------------------------- wilson

def test_wilson_at_no_successes_and_at_all_successes():
    assert R.wilson(0, 20) == (0.0, approx(0.1611251581))
    assert R.wilson(20, 20) == (approx(0.8388748419), 1.0)
    assert R.wilson(1, 1) == (approx(0.2065493144), 1.0)  # n = 1: the smallest n with an interval
    assert R.wilson(0, 1) == (0.0, approx(0.7934506856))


def test_wilson_is_clipped_to_zero_and_one():
    """At 0/40 and 40/40 the formula's bounds fall just outside [0, 1] in floating point: clipped exactly."""
    lo, hi = R.wilson(0, 40)
    assert lo == 0.0 and math.copysign(1.0, lo) == 1.0 and hi == approx(0.0876216012)
    lo, hi = R.wilson(40, 40)
    assert lo == approx(0.9123783988) and hi == 1.0


def test_wilson_published_and_in_between_values():
    # Newcombe (1998), Statistics in Medicine 17, 857-872, Table II, method 3: 81/263 -> 0.2553-0.3662; and 28/29,
    # the mirror image of its 1/29 -> 0.0061-0.1718
    lo, hi = R.wilson(81, 263)
    assert abs(lo - 0.2553) < 5e-5 and abs(hi - 0.3662) < 5e-5
    lo, hi = R.wilson(28, 29)
    assert abs(lo - (1 - 0.1718)) < 5e-5 and abs(hi - (1 - 0.0061)) < 5e-5
    assert R.wilson(4, 7) == (approx(0.2504583645), approx(0.8417801447))
    assert R.wilson(1, 2) == (approx(0.09453120573), approx(0.9054687943))


def test_wilson_with_another_z():
    """k = 0: the upper bound is z^2 / (n + z^2); k = n: the lower is n / (n + z^2). z = 1, n = 3: 1/4 and 3/4."""
    assert R.wilson(0, 3, z=1.0) == (0.0, approx(0.25))
    assert R.wilson(3, 3, z=1.0) == (approx(0.75), 1.0)
    assert R.wilson(0, 3, 1.0) == (0.0, approx(0.25))


def test_wilson_of_no_trials_is_a_pair_of_nans():
    got = R.wilson(0, 0)
    assert isinstance(got, tuple) and len(got) == 2 and all(math.isnan(x) for x in got)


# ----------------------------------------------------------------------------------------------- unavailable

@pytest.mark.parametrize("error", ["unavailable: jax is not installed",
                                   "implementation 'keras' is unavailable: No module named 'tensorflow'",
                                   "unavailable: "])
def test_unavailable_messages(error):
    assert R.unavailable(error) is True


@pytest.mark.parametrize("error", [
    "Unavailable: jax is not installed",  # the case counts
    "unavailable:jax",  # no space after the colon
    "unavailable",
    " unavailable: jax",  # not at the start
    "worker died: unavailable: jax",
    "implementation 'keras' is unavailable:no space",
    "implementation 'keras' is unavailable",
    "implementation 'keras' was unavailable: no TF",
    "Implementation 'keras' is unavailable: no TF",
    "the implementation 'keras' is unavailable: no TF",
    "implementation",
    "",
])
def test_near_misses_are_not_unavailable(error):
    assert R.unavailable(error) is False


# ----------------------------------------------------------------------------------------------------- _rate

RATE_RECORDS = [
    rec(0, converged=True, steps_to_threshold=100, seconds=1.0, final_loss=1e-7),
    rec(1, converged=True, steps_to_threshold=600, seconds=2.0, status=NOISE, final_loss=1e-8),
    rec(2, converged=True, steps_to_threshold=200, status=None, agreement=None, final_loss=1e-9),  # no seconds
    rec(3, converged=True, steps_to_threshold=None, seconds=None, final_loss=9e-7),  # under only after its last update
    rec(4, converged=False, seconds=4.0, status=ILL, final_loss=1e-3),  # 4/4 right, loss over the threshold
    rec(5, converged=False, seconds=5.0, accuracy=0.75),
    rec(6, converged=False, steps_to_threshold=50, diverged_at=17, seconds=6.0, accuracy=0.5, status=DISAGREES,
        final_loss=None),  # under the threshold once, then diverged
    failed(7, error="worker died", seconds=30.0),
    failed(8, error="unavailable: jax is not installed", seconds=40.0),
    failed(9, error="implementation 'keras' is unavailable: no TF"),
    failed(10, skipped="no framework defaults of its own", seconds=50.0),
]


def test_a_rate_row_counts_judged_runs_errors_and_unavailable_ones():
    assert R._rate(RATE_RECORDS) == {
        "runs": 7, "converged": 4, "rate": approx(4 / 7), "wilson95": [approx(0.2504583645), approx(0.8417801447)],
        "all_correct": 5, "all_correct_wilson95": [approx(0.3589344518), approx(0.917781076)],
        "diverged": 1, "errors": 1, "unavailable": 2, "median_steps": 200.0,
        "agreement": {"agrees": 3, "rounding noise": 1, "not judged": 1, "ill-conditioned": 1, "DISAGREES": 1},
        "seconds_per_run": approx(3.6)}


def test_a_rate_row_of_no_judged_runs_has_no_rate():
    empty = {"runs": 0, "converged": 0, "rate": None, "wilson95": None, "all_correct": 0,
             "all_correct_wilson95": None, "diverged": 0, "errors": 0, "unavailable": 0, "median_steps": None,
             "agreement": {}, "seconds_per_run": None}
    assert R._rate([]) == empty
    assert R._rate(RATE_RECORDS[7:]) == {**empty, "errors": 1, "unavailable": 2}


def test_a_rate_row_of_one_run():
    assert R._rate([rec(0, converged=True, steps_to_threshold=7, seconds=0.5)]) == {
        "runs": 1, "converged": 1, "rate": 1.0, "wilson95": [approx(0.2065493144), 1.0], "all_correct": 1,
        "all_correct_wilson95": [approx(0.2065493144), 1.0], "diverged": 0, "errors": 0, "unavailable": 0,
        "median_steps": 7.0, "agreement": {"agrees": 1}, "seconds_per_run": 0.5}
    assert R._rate([rec(0, accuracy=0.75)]) == {
        "runs": 1, "converged": 0, "rate": 0.0, "wilson95": [0.0, approx(0.7934506856)], "all_correct": 0,
        "all_correct_wilson95": [0.0, approx(0.7934506856)], "diverged": 0, "errors": 0, "unavailable": 0,
        "median_steps": None, "agreement": {"agrees": 1}, "seconds_per_run": None}


# ------------------------------------------------------------------------------------------------- summarise

def test_summarise_rows_by_variant_then_implementation_and_the_native_table(tmp_path):
    h = header(impls=["numpy", "numpy-batched", "torch"], variants=["canonical", "native-init"])
    skip = "no framework defaults of its own"
    records = [
        rec(1, "numpy-batched", status=None, converged=True), rec(0, "numpy-batched", status=None),
        rec(0, "numpy"), rec(1, "numpy", converged=False),  # seed 1: verdicts differ
        failed(0, "numpy", "native-init", skipped=skip), failed(1, "numpy", "native-init", skipped=skip),
        failed(0, "numpy-batched", "native-init", skipped=skip),
        rec(1, "numpy-batched", "native-init", converged=True, init="numpy default seed 1"),
    ]
    report = R.summarise(h, records, tmp_path)
    assert list(report) == ["sweep", "rates", "findings", "seeds_compared", "native_defaults"]
    assert report["sweep"] is h
    # every implementation with a run that was not skipped, variant by variant in the header's order
    assert [(r["variant"], r["impl"], r["runs"], r["converged"]) for r in report["rates"]] == [
        ("canonical", "numpy", 2, 0), ("canonical", "numpy-batched", 2, 1), ("native-init", "numpy-batched", 1, 1)]
    assert report["rates"][1] == {"variant": "canonical", "impl": "numpy-batched", **R._rate(records[:2])}
    assert [(f["kind"], f["variant"], f["seed"]) for f in report["findings"]] == [("verdicts differ", "canonical", 1)]
    assert report["seeds_compared"] == {"canonical": 2}
    assert report["native_defaults"] == [
        {"impl": "numpy-batched", "canonical": {"rate": 0.5, "wilson95": [approx(0.09453120573), approx(0.9054687943)]},
         "native-init": {"rate": 1.0, "wilson95": [approx(0.2065493144), 1.0], "change": 0.5}}]


def test_summarise_of_one_variant_has_no_native_table(tmp_path):
    report = R.summarise(header(), [rec(0), rec(0, "numpy-batched")], tmp_path)
    assert list(report) == ["sweep", "rates", "findings", "seeds_compared"]
    assert [(r["variant"], r["impl"]) for r in report["rates"]] == [("canonical", "numpy"),
                                                                    ("canonical", "numpy-batched")]
    assert report["findings"] == [] and report["seeds_compared"] == {"canonical": 1}
    assert not (tmp_path / "replay").exists()


# ------------------------------------------------------------------------------ _same_weights and _compared

SAME = [
    rec(0, "numpy"), rec(0, "numpy-batched"),  # canonical 0: two
    rec(1, "numpy"), failed(1, "numpy-batched", error="worker died"),  # canonical 1: one (the other failed)
    rec(2, "numpy"), rec(2, "numpy-batched"), rec(2, "torch"),  # canonical 2: three
    rec(3, "numpy"), failed(3, "torch", skipped="no framework defaults of its own"),  # canonical 3: one
    rec(0, "torch", "native-init", init="torch default seed 0"),  # native-init 0: two inits, one run each
    rec(0, "keras", "native-init", init="keras default seed 0"),
    rec(1, "torch", "native-init", init="torch default seed 1"),  # native-init 1: two from the same weights
    rec(1, "torch-vmap", "native-init", init="torch default seed 1"),
    rec(0, "torch", "native-eps", epsilon=1e-8), rec(0, "keras", "native-eps", epsilon=1e-7),  # two epsilons
]


def test_runs_are_grouped_by_variant_seed_init_and_epsilon():
    got = {k: [r["impl"] for r in rs] for k, rs in R._same_weights(SAME).items()}
    assert got == {
        ("canonical", 0, (None, None)): ["numpy", "numpy-batched"],
        ("canonical", 1, (None, None)): ["numpy"],
        ("canonical", 2, (None, None)): ["numpy", "numpy-batched", "torch"],
        ("canonical", 3, (None, None)): ["numpy"],
        ("native-init", 0, ("torch default seed 0", None)): ["torch"],
        ("native-init", 0, ("keras default seed 0", None)): ["keras"],
        ("native-init", 1, ("torch default seed 1", None)): ["torch", "torch-vmap"],
        ("native-eps", 0, (None, 1e-8)): ["torch"],
        ("native-eps", 0, (None, 1e-7)): ["keras"]}


def test_seeds_compared_count_groups_of_two_or_more():
    assert R._compared(SAME) == {"canonical": 2, "native-init": 1}  # native-eps: none, and no 0 either
    assert R._compared([]) == {}


def test_a_seed_that_the_frameworks_own_inits_split_in_two_groups_is_one_seed_compared(tmp_path):
    """native-init, seed 0: torch's init trains torch and torch-compiled, Keras' trains keras and keras-xla: two
    groups from one seed, counted once; their verdicts differ in both groups: two findings, one seed."""
    rs = [rec(0, "torch", "native-init", init="torch default seed 0", converged=True),
          rec(0, "torch-compiled", "native-init", init="torch default seed 0", converged=False),
          rec(0, "keras", "native-init", init="keras default seed 0", converged=True),
          rec(0, "keras-xla", "native-init", init="keras default seed 0", converged=False)]
    assert R._compared(rs) == {"native-init": 1}
    report = {**minimal_report(variants=["native-init"]), "seeds_compared": {"native-init": 1},
              "findings": [{**_differ(0), "variant": "native-init"}, {**_differ(0), "variant": "native-init"}]}
    assert ("Seeds where at least two implementations trained from the same weights: native-init 1. Seeds where "
            "their verdicts (converged or not) differ: **1**.") in R.markdown(report, []).splitlines()


def test_no_native_table_where_no_implementation_ran_two_variants():
    report = {**minimal_report(variants=["canonical", "native-init"]), "native_defaults": []}
    assert "## Each framework's own defaults" not in R.markdown(report, [])


# -------------------------------------------------------------------------------------------------- findings

def test_findings_verdicts_differ_then_disagreements_and_errors(tmp_path):
    numpy_forms = {"adam": "textbook", "momentum": "torch", "bce": "probs"}
    batched_forms = {"adam": "keras", "momentum": "keras", "bce": "logits"}  # none of them used by seed-numpy
    records = [
        rec(1, "torch", "native-eps", epsilon=1e-8, converged=True, final_loss=2e-7),
        rec(1, "torch-vmap", "native-eps", epsilon=1e-8, converged=False, final_loss=0.4, status=None),
        rec(1, "keras", "native-eps", epsilon=1e-7, converged=True, final_loss=3e-7),  # another epsilon
        rec(10, "numpy", converged=True, final_loss=1e-7, conventions=numpy_forms),
        rec(10, "numpy-batched", converged=False, final_loss=0.3, status=None, conventions=batched_forms),
        rec(0, "numpy", converged=True), rec(0, "numpy-batched", converged=True, status=None),  # the same verdict
        rec(2, "numpy", converged=False, final_loss=0.25),
        rec(2, "numpy-batched", converged=True, final_loss=5e-7, status=None),
        rec(3, "torch", "native-init", init="torch default seed 3", converged=True),  # different weights
        rec(3, "keras", "native-init", init="keras default seed 3"),
        rec(4, "numpy", status=DISAGREES, explanation="final loss 0.5 vs the reference's 0.25"),
        failed(4, "numpy-batched", error="worker died"),
        failed(5, "jax", error="unavailable: jax is not installed"),
        failed(5, "keras", error="implementation 'keras' is unavailable: no TensorFlow"),
        rec(6, "numpy", converged=True), failed(6, "numpy-batched", skipped="no framework defaults of its own"),
    ]
    spec = get_preset("seed-numpy")
    got = R._findings(header(name="study"), records, tmp_path, spec)
    rounding = ("every run agrees with the reference, in the same forms: rounding alone puts them on either side of "
                "the threshold")
    cmd = "xor-rosetta compare --config " + str(tmp_path / "replay") + "/"
    assert got == [
        {"kind": "verdicts differ", "variant": "canonical", "seed": 2,
         "converged": {"numpy": False, "numpy-batched": True}, "final_loss": {"numpy": 0.25, "numpy-batched": 5e-7},
         "why": rounding, "replay": cmd + "canonical-seed-2.toml --impls numpy"},
        {"kind": "verdicts differ", "variant": "canonical", "seed": 10,
         "converged": {"numpy": True, "numpy-batched": False}, "final_loss": {"numpy": 1e-7, "numpy-batched": 0.3},
         "why": rounding, "replay": cmd + "canonical-seed-10.toml --impls numpy"},
        {"kind": "verdicts differ", "variant": "native-eps", "seed": 1,
         "converged": {"torch": True, "torch-vmap": False}, "final_loss": {"torch": 2e-7, "torch-vmap": 0.4},
         "why": None, "replay": cmd + "native-eps-seed-1-eps-1e-08.toml --impls torch"},
        {"kind": "DISAGREES with the reference", "variant": "canonical", "seed": 4, "impl": "numpy",
         "explanation": "final loss 0.5 vs the reference's 0.25",
         "replay": cmd + "canonical-seed-4.toml --impls numpy"},
        {"kind": "error", "variant": "canonical", "seed": 4, "impl": "numpy-batched", "error": "worker died",
         "replay": cmd + "canonical-seed-4.toml --impls numpy"},
    ]
    assert sorted(p.name for p in (tmp_path / "replay").iterdir()) == [
        "canonical-seed-10.toml", "canonical-seed-2.toml", "canonical-seed-4.toml", "native-eps-seed-1-eps-1e-08.toml"]


def test_a_run_that_disagrees_within_a_split_is_two_findings(tmp_path):
    records = [rec(0, "numpy", converged=True, status=DISAGREES, explanation="x"), rec(0, "numpy-batched")]
    got = R._findings(header(), records, tmp_path, get_preset("seed-numpy"))
    assert [(f["kind"], f.get("why", "-")) for f in got] == [("verdicts differ", None),
                                                            ("DISAGREES with the reference", "-")]


def test_findings_of_one_seed_keep_the_records_order_across_epsilons_and_inits(tmp_path):
    """Groups of one variant and seed are listed in the records' order, not by their epsilon or init (an init of
    None beside a named one cannot be sorted)."""
    records = [
        rec(7, "torch", "native-eps", epsilon=1e-7, converged=True),
        rec(7, "torch-vmap", "native-eps", epsilon=1e-7, status=None),
        rec(7, "jax", "native-eps", epsilon=1e-8, converged=True),
        rec(7, "keras", "native-eps", epsilon=1e-8),
        rec(8, "numpy", "native-init", converged=True),  # no init of its own
        rec(8, "torch", "native-init", init="torch default seed 8", converged=True),
    ]
    got = R._findings(header(), records, tmp_path, get_preset("seed-numpy"))
    cmd = "xor-rosetta compare --config " + str(tmp_path / "replay") + "/"
    assert [(f["seed"], f["converged"], f["replay"]) for f in got] == [
        (7, {"torch": True, "torch-vmap": False}, cmd + "native-eps-seed-7-eps-1e-07.toml --impls torch"),
        (7, {"jax": True, "keras": False}, cmd + "native-eps-seed-7-eps-1e-08.toml --impls jax,keras")]


# ------------------------------------------------------------------------------------------------ _why_differ

def _rec(impl, converged, adam="torch", momentum="torch", bce="probs", status=AGREES):
    return {"impl": impl, "converged": converged, "status": status,
            "conventions": {"adam": adam, "momentum": momentum, "bce": bce}}


def _why(rs, spec):
    return R._why_differ(rs, {r["impl"]: r["conventions"] for r in rs}, spec)


HEAD = "every run agrees with the reference in its own forms, and "


def test_two_forms_that_split_the_verdicts():
    rs = [_rec("a", True, "torch", bce="probs"), _rec("b", False, "keras", bce="logits"),
          _rec("c", True, "torch", bce="probs")]
    assert _why(rs, KERAS) == (HEAD + "the adam form (keras (b) did not; torch (a, c) converged) and the bce form "
                               "(logits (b) did not; probs (a, c) converged) split them as the verdicts do")


def test_one_form_that_splits_the_verdicts():
    rs = [_rec("a", True, bce="probs"), _rec("b", False, bce="logits"), _rec("c", False, bce="optax")]
    assert _why(rs, KERAS) == (HEAD + "the bce form (logits (b), optax (c) did not; probs (a) converged) splits them "
                               "as the verdicts do")


def test_the_momentum_form_counts_only_where_the_spec_has_momentum():
    sgd = get_preset("seed-numpy")
    heavy = sgd.replace(optimizer=replace(sgd.optimizer, momentum=0.9))
    rs = [_rec("a", True, adam="keras", momentum="torch"), _rec("b", False, adam="textbook", momentum="keras")]
    assert _why(rs, heavy) == (HEAD + "the momentum form (keras (b) did not; torch (a) converged) splits them as the "
                               "verdicts do")
    assert _why(rs, sgd) == ("every run agrees with the reference, in the same forms: rounding alone puts them on "
                             "either side of the threshold")


def test_no_one_form_splits_and_an_ill_conditioned_run_still_counts():
    rs = [_rec("a", True, "keras", bce="probs"), _rec("b", False, "keras", bce="logits", status=ILL),
          _rec("c", False, "torch", bce="probs", status=NOISE)]
    assert _why(rs, KERAS) == HEAD + "no one form splits them as the verdicts do"


def test_no_why_where_a_run_disagrees_or_forms_are_missing():
    rs = [_rec("a", True, "torch"), _rec("b", False, "keras")]
    assert _why(rs, KERAS) is not None
    assert _why([rs[0], {**rs[1], "status": DISAGREES}], KERAS) is None
    assert _why([{**rs[0], "status": DISAGREES}, rs[1]], KERAS) is None
    assert R._why_differ(rs, {"a": rs[0]["conventions"]}, KERAS) is None
    assert R._why_differ(rs, {"b": rs[1]["conventions"]}, KERAS) is None


def test_forms_lists_each_form_with_its_implementations():
    assert R._forms({"torch": ["a", "c"], "keras": ["b"]}) == "torch (a, c), keras (b)"
    assert R._forms({}) == ""


# ---------------------------------------------------------------------------------------------------- replay

KERAS_TOML = """layers = [2, 5, 5, 1]
activations = ["relu", "relu", "sigmoid"]
loss = "bce"
steps = 1000
dtype = "float64"

[optimizer]
name = "adam"
lr = 0.001
momentum = 0.0
beta1 = 0.9
beta2 = 0.999
epsilon = {eps}

[init]
scheme = "glorot-uniform"
seed = {seed}
"""


def test_replay_of_a_canonical_seed(tmp_path):
    out = tmp_path / "new" / "sweep"  # not there yet: made
    cmd = R.replay({"name": "my sweep"}, KERAS, out, "canonical", 12, ["numpy", "numpy-batched", "torch"], {})
    path = out / "replay" / "canonical-seed-12.toml"
    assert cmd == f"xor-rosetta compare --config {path} --impls numpy,torch"
    assert path.read_text() == ("# replays seed 12 of sweep 'my sweep', variant canonical\n" +
                                KERAS_TOML.format(eps="1e-07", seed=12))
    cmd = R.replay({"name": "my sweep"}, KERAS, out, "canonical", 3, ["torch-vmap"], {"epsilon": None})  # again
    assert cmd == f"xor-rosetta compare --config {out}/replay/canonical-seed-3.toml --impls torch"


def test_replay_with_the_frameworks_own_epsilon_and_init(tmp_path):
    cmd = R.replay({"name": "s"}, KERAS, tmp_path, "native-eps", 5, ["torch", "torch-vmap"], {"epsilon": 1e-8})
    path = tmp_path / "replay" / "native-eps-seed-5-eps-1e-08.toml"
    assert cmd == f"xor-rosetta compare --config {path} --impls torch"
    assert path.read_text() == ("# replays seed 5 of sweep 's', variant native-eps\n" +
                                KERAS_TOML.format(eps="1e-08", seed=5))
    cmd = R.replay({"name": "s"}, KERAS, tmp_path, "native-init", 7, ["torch-vmap", "torch", "torch-compiled"], {})
    assert cmd == (f"xor-rosetta compare --config {tmp_path}/replay/native-init-seed-7.toml "
                   f"--init {tmp_path}/inits/torch/seed-7.npz --impls torch,torch-compiled")
    cmd = R.replay({"name": "s"}, KERAS, tmp_path, "native", 0, ["keras-xla", "keras"], {"epsilon": 0.001})
    assert cmd == (f"xor-rosetta compare --config {tmp_path}/replay/native-seed-0-eps-0.001.toml "
                   f"--init {tmp_path}/inits/keras-tensorflow/seed-0.npz --impls keras-xla,keras")
    assert (tmp_path / "replay" / "native-seed-0-eps-0.001.toml").read_text() == (
        "# replays seed 0 of sweep 's', variant native\n" + KERAS_TOML.format(eps="0.001", seed=0))
    assert KERAS.init.seed == 0 and KERAS.optimizer.epsilon == 1e-7  # the preset itself unchanged



def test_replay_with_the_frameworks_own_init_names_the_first_implementations_init(tmp_path):
    """The saved init of the first implementation's worker group: one implementation (a finding of one run) or the
    first of several."""
    cmd = R.replay({"name": "s"}, KERAS, tmp_path, "native-init", 2, ["jax-vmap"], {})
    assert cmd == (f"xor-rosetta compare --config {tmp_path}/replay/native-init-seed-2.toml "
                   f"--init {tmp_path}/inits/jax/seed-2.npz --impls jax")
    cmd = R.replay({"name": "s"}, KERAS, tmp_path, "native", 4, ["keras", "torch"], {"epsilon": 1e-7})
    assert cmd == (f"xor-rosetta compare --config {tmp_path}/replay/native-seed-4-eps-1e-07.toml "
                   f"--init {tmp_path}/inits/keras-tensorflow/seed-4.npz --impls keras,torch")


# ---------------------------------------------------------------------------------------------------- _native

def _row(variant, impl, rate, ci):
    return {"variant": variant, "impl": impl, "runs": 8, "converged": 4, "rate": rate, "wilson95": ci}


def test_native_rows_change_from_canonical():
    rates = [_row("canonical", "numpy", 0.5, [0.4, 0.6]), _row("native-init", "numpy", 0.75, [0.7, 0.8]),
             _row("native-eps", "numpy", 0.375, [0.3, 0.45]), _row("native", "numpy", None, None),
             _row("canonical", "torch", None, None), _row("native-init", "torch", 0.25, [0.2, 0.3]),
             _row("canonical", "keras", 0.5, [0.4, 0.6]),  # canonical only: no row
             _row("native-init", "jax", 0.5, [0.4, 0.6])]  # no canonical: no row
    got = R._native(rates, ["canonical", "native-init", "native-eps", "native"])
    assert got == [
        {"impl": "numpy", "canonical": {"rate": 0.5, "wilson95": [0.4, 0.6]},
         "native-init": {"rate": 0.75, "wilson95": [0.7, 0.8], "change": 0.25},
         "native-eps": {"rate": 0.375, "wilson95": [0.3, 0.45], "change": -0.125},
         "native": {"rate": None, "wilson95": None, "change": None}},
        {"impl": "torch", "canonical": {"rate": None, "wilson95": None},
         "native-init": {"rate": 0.25, "wilson95": [0.2, 0.3], "change": None}}]
    assert R._native(rates, ["canonical"]) == []  # only the variants asked for


# ------------------------------------------------------------------------------------------ _pct, _ci and _g

def test_pct():
    assert [R._pct(x) for x in (None, math.nan, float("nan"), 0.0, 0, 1, 0.5, 0.12345, 0.98765)] == [
        "–", "–", "–", "0.0%", "0.0%", "100.0%", "50.0%", "12.3%", "98.8%"]


def test_ci():
    assert R._ci(None) == "–"
    assert R._ci([0.1, 0.25]) == "[10.0%, 25.0%]"
    assert R._ci((math.nan, math.nan)) == "[–, –]"
    assert R._ci([0.0, 1.0]) == "[0.0%, 100.0%]"


def test_g():
    assert R._g(None) == "–" and R._g(None, ".0f") == "–"
    assert R._g(0.0) == "0" and R._g(0.000123456) == "0.000123" and R._g(1234567.0) == "1.23e+06"
    assert R._g(0.25) == "0.25" and R._g(2345.6, ".0f") == "2346"


# -------------------------------------------------------------------------------------------------- markdown

HEAD_LINES = [
    "# Sweep: t", "",
    "[2, 5, 1] ['tanh', 'linear'], mse, sgd (lr 0.1), 10,000 steps, float64; init seed-uniform with seeds "
    "3..1502 (1,500 sets of initial weights). Converged: final loss < 1e-06 and 4/4 correct (the \"4/4 correct\" "
    "column counts the runs with 4/4 right, whatever their loss).", ""]
TABLE_HEAD = [
    "## Convergence rate", "",
    "| variant | implementation | runs | converged | rate | 95% Wilson interval | 4/4 correct | diverged | median "
    "steps to threshold | agreement with the reference | s/run |",
    "|---|---|---:|---:|---:|---|---|---:|---:|---|---:|"]
FOOTNOTE = [
    "", "Agreement: each run judged against the NumPy reference in its own conventions by the tolerance policy "
    "(xor_rosetta.tolerance); \"not judged\" rows are batched paths, checked against one-at-a-time runs by "
    "tests/test_vectorised.py and seed by seed below."]
NO_COMPARE = ["", "## Verdicts across implementations", "",
              "Only one implementation per set of weights: nothing to compare."]
SKIPPED = "matplotlib is not installed: pip install -c constraints.txt -e '.[plots]'"


def full_report():
    h = header(seeds=[3, 1503], impls=["numpy", "torch"], variants=["canonical", "native", "native-init"],
               unavailable={"jax": "not installed", "keras": "no TensorFlow"})
    rates = [{"variant": "canonical", "impl": "numpy", "runs": 1234, "converged": 617, "rate": 0.5,
              "wilson95": [0.25, 0.75], "all_correct": 1100, "all_correct_wilson95": [0.123, 0.98765],
              "diverged": 1500, "errors": 2, "unavailable": 1, "median_steps": 2345.6,
              "agreement": {"rounding noise": 2, "agrees": 3, "not judged": 1}, "seconds_per_run": 0.012345},
             {"variant": "native", "impl": "torch", "runs": 0, "converged": 0, "rate": None, "wilson95": None,
              "all_correct": 0, "all_correct_wilson95": None, "diverged": 0, "errors": 3, "unavailable": 0,
              "median_steps": None, "agreement": {}, "seconds_per_run": None},
             {"variant": "native", "impl": "numpy", "runs": 5, "converged": 5, "rate": 1.0, "wilson95": [0.5, 1.0],
              "all_correct": 5, "all_correct_wilson95": [0.5, 1.0], "diverged": 0, "errors": 0, "unavailable": 0,
              "median_steps": 12.0, "agreement": {"agrees": 5}, "seconds_per_run": 1.5}]
    native = [{"impl": "numpy", "canonical": {"rate": 0.5, "wilson95": [0.4, 0.6]},
               "native-init": {"rate": 0.625, "wilson95": [0.5, 0.75], "change": 0.125},
               "native": {"rate": 0.25, "wilson95": [0.125, 0.375], "change": -0.25}},
              {"impl": "torch", "canonical": {"rate": None, "wilson95": None},
               "native-init": {"rate": 0.25, "wilson95": [0.2, 0.3], "change": None}}]
    findings = [
        {"kind": "verdicts differ", "variant": "canonical", "seed": 7, "converged": {"numpy": True, "torch": False},
         "final_loss": {"numpy": 1.234e-7, "torch": 0.25}, "why": "every run agrees, in the same forms",
         "replay": "xor-rosetta compare --config r/canonical-seed-7.toml --impls numpy,torch"},
        {"kind": "DISAGREES with the reference", "variant": "canonical", "seed": 4, "impl": "numpy",
         "explanation": "loss 0.5 vs 0.25", "replay": "cmd 3"},
        {"kind": "verdicts differ", "variant": "native", "seed": 9, "converged": {"torch": True, "numpy": False},
         "final_loss": {"torch": 4.567e-7, "numpy": None}, "why": None, "replay": "cmd 2"},
        {"kind": "error", "variant": "native", "seed": 5, "impl": "torch", "error": "worker died", "replay": "cmd 4"}]
    basin = {"weights": ["W1[0,0]", "b2[0]"], "range": [-3.0, 3.0], "grid": 41, "seed": 7,
             "converged_share": 0.4567, "diverged_share": 0.0123}
    return {"sweep": h, "rates": rates, "findings": findings, "seeds_compared": {"canonical": 1500, "native": 3},
            "native_defaults": native, "basin": basin, "wall_seconds": 11.6}


def test_markdown_of_a_full_report():
    got = R.markdown(full_report(), ["steps_histogram.png", "basin.png"])
    assert got.splitlines() == HEAD_LINES + [
        "Command: `xor-rosetta sweep --preset seed-numpy`; wall time 12 s", ""] + TABLE_HEAD + [
        "| canonical | numpy | 1,234 | 617 | 50.0% | [25.0%, 75.0%] | 1,100 [12.3%, 98.8%] | 1,500 | 2346 | agrees 3, "
        "not judged 1, rounding noise 2, errors 2, unavailable 1 | 0.0123 |",
        "| native | torch | 0 | 0 | – | – | 0 – | 0 | – | errors 3 | – |",
        "| native | numpy | 5 | 5 | 100.0% | [50.0%, 100.0%] | 5 [50.0%, 100.0%] | 0 | 12 | agrees 5 | 1.5 |"
    ] + FOOTNOTE + [
        "", "Left out, not available here: jax (not installed); keras (no TensorFlow)",
        "", "## Each framework's own defaults", "",
        "Rates with the framework's own initializer and Adam epsilon, switched one at a time (native-init: its init, "
        "the spec's epsilon; native-eps: the spec's init, its epsilon; native: both); change in percentage points "
        "from canonical.", "",
        "| implementation | canonical | native-init | native |",
        "|---|---|---|---|",
        "| numpy | 50.0% [40.0%, 60.0%] | 62.5% [50.0%, 75.0%], +12.5 pp | 25.0% [12.5%, 37.5%], -25.0 pp |",
        "| torch | – – | 25.0% [20.0%, 30.0%] | – |",  # no change from an unknown canonical rate; the rate shown
        "", "## Verdicts across implementations", "",
        "Seeds where at least two implementations trained from the same weights: canonical 1,500, native 3. Seeds "
        "where their verdicts (converged or not) differ: **2**.",
        "", "## Findings", "",
        "- seed 7 (canonical): numpy converged (1.23e-07), torch not (0.25). Every run agrees, in the same forms. "
        "Replay: `xor-rosetta compare --config r/canonical-seed-7.toml --impls numpy,torch`",
        "- seed 9 (native): torch converged (4.57e-07), numpy not (–). Replay: `cmd 2`",
        "- seed 4 (canonical), numpy: DISAGREES with the reference: loss 0.5 vs 0.25. Replay: `cmd 3`",
        "- seed 5 (native), torch: error: worker died. Replay: `cmd 4`",
        "", "## Basin", "",
        "W1[0,0] and b2[0] varied over [-3, 3] on a 41 x 41 grid, the other weights those of seed 7 (marked), "
        "trained by the batched NumPy path in numpy's conventions: 45.7% of cells converge, 1.2% diverge.",
        "", "![steps_histogram.png](steps_histogram.png)", "![basin.png](basin.png)"]
    assert got.endswith(")\n") and not got.endswith("\n\n")


def minimal_report(**kw):
    return {"sweep": header(seeds=[3, 1503], **kw), "rates": [], "findings": [], "seeds_compared": {}}


def test_markdown_of_a_minimal_report():
    report = {**minimal_report(unavailable={}), "plots_skipped": SKIPPED}
    assert R.markdown(report, []) == "\n".join(
        HEAD_LINES + ["Command: `xor-rosetta sweep --preset seed-numpy`", ""] + TABLE_HEAD + FOOTNOTE + NO_COMPARE +
        ["", "Plots skipped: " + SKIPPED]) + "\n"
    assert R.markdown(minimal_report(), []) == "\n".join(
        HEAD_LINES + ["Command: `xor-rosetta sweep --preset seed-numpy`", ""] + TABLE_HEAD + FOOTNOTE +
        NO_COMPARE) + "\n"


def test_markdown_of_one_seed_and_fewer_steps():
    report = minimal_report()
    spec = get_preset("seed-keras").to_dict()
    spec["optimizer"]["lr"] = 1.0  # numbers in the %g format: "1", not "1.0"; 6 significant digits
    report["sweep"] = {**report["sweep"], "seeds": [0, 1], "spec": spec, "threshold": 0.0012345678}
    assert R.markdown(report, []).splitlines()[2] == (
        "[2, 5, 5, 1] ['relu', 'relu', 'sigmoid'], bce, adam (lr 1), 1,000 steps, float64; init glorot-uniform "
        "with seeds 0..0 (1 set of initial weights). Converged: final loss < 0.00123457 and 4/4 correct (the \"4/4 "
        "correct\" column counts the runs with 4/4 right, whatever their loss).")



def test_markdown_of_one_seed_not_starting_at_zero():
    report = minimal_report()
    report["sweep"]["seeds"] = [5, 6]
    assert "with seeds 5..5 (1 set of initial weights)." in R.markdown(report, []).splitlines()[2]
    report["sweep"]["seeds"] = [5, 7]
    assert "with seeds 5..6 (2 sets of initial weights)." in R.markdown(report, []).splitlines()[2]


def test_markdown_seconds_per_run_in_the_g_format():
    row = {"variant": "canonical", "impl": "numpy", "runs": 2, "converged": 1, "rate": 0.5, "wilson95": [0.25, 0.75],
           "all_correct": 1, "all_correct_wilson95": [0.25, 0.75], "diverged": 0, "errors": 0, "unavailable": 0,
           "median_steps": 40.5, "agreement": {"agrees": 2}}
    lines = R.markdown({**minimal_report(), "rates": [{**row, "seconds_per_run": 1.2e-05},
                                                      {**row, "seconds_per_run": 123456.0}]}, []).splitlines()
    i = lines.index(TABLE_HEAD[-1])
    assert lines[i + 1:i + 3] == [
        "| canonical | numpy | 2 | 1 | 50.0% | [25.0%, 75.0%] | 1 [25.0%, 75.0%] | 0 | 40 | agrees 2 | 1.2e-05 |",
        "| canonical | numpy | 2 | 1 | 50.0% | [25.0%, 75.0%] | 1 [25.0%, 75.0%] | 0 | 40 | agrees 2 | 1.23e+05 |"]


def test_markdown_native_table_follows_the_fixed_order_and_a_zero_change_has_a_sign():
    report = {**minimal_report(variants=["native-eps", "canonical"]),
              "native_defaults": [{"impl": "jax", "canonical": {"rate": 0.5, "wilson95": [0.25, 0.75]},
                                   "native-eps": {"rate": 0.5, "wilson95": [0.25, 0.75], "change": 0.0}}]}
    lines = R.markdown(report, []).splitlines()
    i = lines.index("| implementation | canonical | native-eps |")
    assert lines[i + 1:i + 3] == ["|---|---|---|",
                                  "| jax | 50.0% [25.0%, 75.0%] | 50.0% [25.0%, 75.0%], +0.0 pp |"]
    report["sweep"]["variants"] = ["native", "native-eps", "native-init", "canonical"]
    lines = R.markdown(report, []).splitlines()
    i = lines.index("| implementation | canonical | native-init | native-eps | native |")
    assert lines[i + 1:i + 3] == ["|---|---|---|---|---|",
                                  "| jax | 50.0% [25.0%, 75.0%] | – | 50.0% [25.0%, 75.0%], +0.0 pp | – |"]


def _differ(seed):
    return {"kind": "verdicts differ", "variant": "canonical", "seed": seed, "converged": {"numpy": True},
            "final_loss": {"numpy": 0.5}, "why": None, "replay": f"r{seed}"}


def _error(seed):
    return {"kind": "error", "variant": "canonical", "seed": seed, "impl": "torch", "error": "e", "replay": f"r{seed}"}


def _finding_lines(findings):
    report = {**minimal_report(), "findings": findings, "seeds_compared": {"canonical": 3}}
    lines = R.markdown(report, []).splitlines()
    return lines[lines.index("## Findings") + 2:]


@pytest.mark.parametrize("make", [_differ, _error], ids=["verdicts differ", "others"])
def test_fifty_findings_of_a_kind_are_all_listed(make):
    lines = _finding_lines([make(s) for s in range(50)])
    assert len(lines) == 50 and lines[-1].startswith("- seed 49 (canonical)") and lines[-1].endswith("`r49`")


@pytest.mark.parametrize("make", [_differ, _error], ids=["verdicts differ", "others"])
def test_past_fifty_findings_of_a_kind_the_rest_are_in_report_json(make):
    lines = _finding_lines([make(s) for s in range(51)])
    assert len(lines) == 51 and lines[49].startswith("- seed 49 (canonical)")
    assert lines[-1] == "- ... all 51 in report.json"


def test_fifty_of_each_kind_at_most():
    lines = _finding_lines([_error(100 + s) for s in range(3)] + [_differ(s) for s in range(51)])
    assert lines[0] == "- seed 0 (canonical): numpy converged (0.5). Replay: `r0`"
    assert lines[49] == "- seed 49 (canonical): numpy converged (0.5). Replay: `r49`"
    assert lines[50:] == ["- seed 100 (canonical), torch: error: e. Replay: `r100`",
                          "- seed 101 (canonical), torch: error: e. Replay: `r101`",
                          "- seed 102 (canonical), torch: error: e. Replay: `r102`",
                          "- ... all 54 in report.json"]


# ----------------------------------------------------------------------------------------------------- write

def test_write_leaves_report_json_report_md_and_the_plots(tmp_path, monkeypatch):
    calls = []

    def fake_plots(out, report, records, basin):
        calls.append((out, report, records, basin))
        warnings.warn("a drawing warning", UserWarning)  # silenced while drawing
        return {"steps_histogram.png": b"PNG steps"}

    monkeypatch.setattr(R, "write_plots", fake_plots)
    (tmp_path / "basin.png").write_bytes(b"old")  # of the family, not produced this time: removed
    (tmp_path / "runs.jsonl").write_text("{}\n")  # not of the family: kept
    report, records, basin = minimal_report(), [rec(0)], {"grid": 3}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = R.write(tmp_path, report, records, basin, extra={"basin.npz": b"NPZ"})
    assert caught == []
    assert got == ["steps_histogram.png"]
    assert len(calls) == 1 and calls[0][0] == tmp_path and calls[0][1] is report and calls[0][2] is records
    assert calls[0][3] is basin
    assert report["plots"] == ["steps_histogram.png"] and "plots_skipped" not in report
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "basin.npz", "report.json", "report.md", "runs.jsonl", "steps_histogram.png"]
    assert json.loads((tmp_path / "report.json").read_text()) == {**minimal_report(), "plots": ["steps_histogram.png"]}
    assert (tmp_path / "report.md").read_text() == "\n".join(
        HEAD_LINES + ["Command: `xor-rosetta sweep --preset seed-numpy`", ""] + TABLE_HEAD + FOOTNOTE + NO_COMPARE +
        ["", "![steps_histogram.png](steps_histogram.png)"]) + "\n"
    assert (tmp_path / "steps_histogram.png").read_bytes() == b"PNG steps"
    assert (tmp_path / "basin.npz").read_bytes() == b"NPZ"
    assert (tmp_path / "runs.jsonl").read_text() == "{}\n"


def test_write_without_matplotlib_says_the_plots_were_skipped(tmp_path, monkeypatch):
    def no_matplotlib(out, report, records, basin):
        raise ImportError("No module named 'matplotlib'")

    monkeypatch.setattr(R, "write_plots", no_matplotlib)
    (tmp_path / "steps_histogram.png").write_bytes(b"old")
    report = minimal_report()
    assert R.write(tmp_path, report, [], None) == []
    assert report["plots_skipped"] == SKIPPED and report["plots"] == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json", "report.md"]
    assert json.loads((tmp_path / "report.json").read_text()) == {**minimal_report(), "plots": [],
                                                                   "plots_skipped": SKIPPED}
    assert (tmp_path / "report.md").read_text().endswith("\n\nPlots skipped: " + SKIPPED + "\n")


# ----------------------------------------------------------------------------------------------- write_plots
# What each picture shows, read off the matplotlib figures: `_png` (xor_rosetta.app.run.report) is replaced by one
# that keeps the figure instead of encoding it. Three drawings in all, each made by the tests below that read it.

def _draw(out, report, records, basin):
    """write_plots with the figures kept: ({file name: bytes}, [figures in the order drawn])."""
    pytest.importorskip("matplotlib")  # the plots extra: absent in CI's NumPy-only environment
    import matplotlib.pyplot as plt
    from xor_rosetta.app.run import report as run_report
    figs = []

    def keep(fig):
        figs.append(fig)
        return f"png {len(figs)}".encode()

    before = set(plt.get_fignums())
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(run_report, "_png", keep)
        got = R.write_plots(out, report, records, basin)
    assert set(plt.get_fignums()) - before == {f.number for f in figs}  # every figure made is one handed to _png
    return got, figs


IMPLS3 = ["numpy", "numpy-batched", "torch"]
VARIANTS3 = ["canonical", "native-init", "native-eps"]
HIST_RECORDS = [
    *(rec(s, "numpy", converged=True, steps_to_threshold=n) for s, n in enumerate([2, 40, 40, 300])),
    rec(4, "numpy", converged=True, steps_to_threshold=None),  # under the threshold only after its last update
    rec(5, "numpy", converged=False, steps_to_threshold=7, diverged_at=9),  # under once, not converged
    failed(6, "numpy", error="worker died"),
    rec(0, "numpy-batched", converged=True, steps_to_threshold=3, status=None),
    rec(1, "numpy-batched", converged=True, steps_to_threshold=300, status=None),
    *(rec(s, "torch", converged=True, steps_to_threshold=1000) for s in range(1200)),
    rec(0, "numpy", "native-init", converged=False, steps_to_threshold=120, init="a"),  # numpy: no converged run
    rec(0, "numpy-batched", "native-init", converged=True, steps_to_threshold=110, init="a"),
    rec(1, "numpy-batched", "native-init", converged=True, steps_to_threshold=150, init="b"),
    rec(0, "torch", "native-init", converged=True, steps_to_threshold=500, init="c"),
    rec(0, "torch", "native-eps", converged=False, steps_to_threshold=50, diverged_at=60, epsilon=1e-8),
    rec(1, "torch", "native-eps", converged=True, steps_to_threshold=None, epsilon=1e-8),
]


def _bool(rows):
    return np.array([[c == "x" for c in row] for row in rows])


def _basin(values, steps, converged, diverged, base=(0.25, -0.5)):
    return {"weights": ["W0[0,1]", "b1[0]"], "values": np.array(values), "base": base, "steps": np.array(steps),
            "converged": _bool(converged), "diverged": _bool(diverged)}


# a 3 x 3 grid: row i the second weight, column j the first
BASIN = _basin([-1.0, 0.5, 2.0], [[12, -1, 300], [7, 45, -1], [-1, -1, 9]],
               converged=["x.x", ".x.", "..."], diverged=["...", "x.x", "x.."])
ALL_DIVERGED = _basin([0.0, 1.0], [[-1, -1], [-1, -1]], converged=["..", ".."], diverged=["xx", "xx"], base=(1, 0))


def _draw_full(out):
    # a matplotlibrc with another colour map and interpolation for images: the basin plot's are its own
    import matplotlib
    with matplotlib.rc_context({"image.cmap": "magma", "image.interpolation": "bilinear"}):
        return _draw(out, {"sweep": header(name="study", threshold=2.5e-4, impls=IMPLS3, variants=VARIANTS3)},
                     HIST_RECORDS, BASIN)


def _draw_two(out):
    return _draw(out, {"sweep": header(name="pair", impls=["keras", "jax"], variants=["canonical", "native"])},
                 [rec(0, "keras", "native", converged=True, steps_to_threshold=1),
                  rec(1, "keras", "native", converged=True, steps_to_threshold=1),
                  rec(0, "jax", "native", converged=True, steps_to_threshold=5),
                  rec(0, "keras", converged=True, steps_to_threshold=None)], None)  # canonical: no steps


def _draw_basin(out):
    return _draw(out, {"sweep": header(name="wild")}, [rec(0, steps_to_threshold=5), failed(1, error="worker died")],
                 ALL_DIVERGED)


class _Drawings(dict):
    """Each drawing made when a test first asks for it, inside that test (not once for the module: mutmut maps the
    functions a test calls to that test, and a module's fixture is set up inside the first test only)."""
    DRAW = {"full": _draw_full, "two": _draw_two, "basin": _draw_basin}

    def __init__(self, out):
        super().__init__()
        self.out = out

    def __missing__(self, name):
        self[name] = got = self.DRAW[name](self.out)
        return got


@pytest.fixture
def drawings(tmp_path):
    """{name: (plots, figures)}: 'full' (three implementations, two variants with converged runs and one without,
    and a basin), 'two' (two implementations, one variant, no basin), 'basin' (no converged run: a basin alone,
    every cell diverged)."""
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt
    got = _Drawings(tmp_path)
    yield got
    for _, figs in got.values():
        for fig in figs:
            plt.close(fig)


def _outline(patch):
    """A step histogram's bin edges and counts, from its outline: (e0, 0), (e0, h0), (e1, h0), (e1, h1), ...,
    (e_n, h_n-1), (e_n, 0)."""
    xy = patch.get_xy()
    return list(xy[0::2, 0]), list(xy[1::2, 1][:-1])


def _check_bins(edges, lo, hi):
    """50 edges from lo to hi, evenly spaced on a log scale."""
    assert len(edges) == 50
    assert edges[0] == pytest.approx(lo, rel=1e-12) and edges[-1] == pytest.approx(hi, rel=1e-12)
    ratio = (hi / lo) ** (1 / 49)
    assert [b / a for a, b in zip(edges, edges[1:])] == pytest.approx([ratio] * 49, rel=1e-9)


def _check_counts(patch, values):
    edges, counts = _outline(patch)
    assert counts == [sum(a <= v < b or (k == 48 and v == b) for v in values)
                      for k, (a, b) in enumerate(zip(edges, edges[1:]))]
    assert sum(counts) == len(values)


def _lines(ax):
    """Each implementation's histogram on an Axes: (label, line width)."""
    return [(p.get_label(), p.get_linewidth()) for p in ax.patches]


def test_write_plots_makes_the_histogram_and_the_basin_plot(drawings):
    plots, figs = drawings["full"]
    assert plots == {"steps_histogram.png": b"png 1", "basin.png": b"png 2"} and len(figs) == 2
    plots, figs = drawings["two"]
    assert plots == {"steps_histogram.png": b"png 1"} and len(figs) == 1  # no basin
    plots, figs = drawings["basin"]
    assert plots == {"basin.png": b"png 1"} and len(figs) == 1  # no converged run with its steps: no histogram


def test_write_plots_of_nothing_draws_nothing(tmp_path):
    plots, figs = _draw(tmp_path, {"sweep": header(variants=["canonical", "native"])},
                        [rec(0, steps_to_threshold=9), rec(0, "numpy", "native", converged=True)], None)
    assert plots == {} and figs == []


def test_the_histogram_has_one_axes_per_variant_with_converged_runs_side_by_side(drawings):
    fig = drawings["full"][1][0]
    assert tuple(fig.get_size_inches()) == pytest.approx((11.0, 3.8))  # 5.5 inches a variant
    assert fig.get_suptitle() == "study: steps to converge (converged runs)"
    a, b = fig.axes  # native-eps: no converged run with its steps, no Axes
    pa, pb = a.get_position(), b.get_position()
    assert pa.x1 < pb.x0 and (pa.y0, pa.y1) == (pb.y0, pb.y1)  # in one row
    for ax, title in zip(fig.axes, ["canonical", "native-init"]):
        assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel(), ax.get_xscale()) == (
            title, "steps to loss < 0.00025", "runs", "log")
    fig = drawings["two"][1][0]
    assert tuple(fig.get_size_inches()) == pytest.approx((5.5, 3.8))
    assert fig.get_suptitle() == "pair: steps to converge (converged runs)"
    [ax] = fig.axes
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel(), ax.get_xscale()) == (
        "native", "steps to loss < 1e-06", "runs", "log")


def test_the_histogram_lines_their_legend_and_widths(drawings):
    """One line a drawn implementation, labelled with its count of converged runs, the first in the header's order
    widest (4 points) down to 1 point for the last; an implementation with no converged run keeps its width slot."""
    import matplotlib.patches as mpatches
    a, b = drawings["full"][1][0].axes
    assert _lines(a) == [("numpy (4)", 4.0), ("numpy-batched (2)", 2.5), ("torch (1,200)", 1.0)]
    assert _lines(b) == [("numpy-batched (2)", 2.5), ("torch (1)", 1.0)]
    [ax] = drawings["two"][1][0].axes
    assert _lines(ax) == [("keras (2)", 4.0), ("jax (1)", 1.0)]
    for ax in (a, b, ax):
        assert all(type(p) is mpatches.Polygon and not p.get_fill() for p in ax.patches)  # outlines, not bars
        legend = ax.get_legend()
        assert [t.get_text() for t in legend.get_texts()] == [p.get_label() for p in ax.patches]
        assert {t.get_fontsize() for t in legend.get_texts()} == {8.0}


def test_the_histogram_counts_in_geometric_bins(drawings):
    """50 edges from the least steps / 1.1 (at least 1) to the most * 1.1, the same for every line of an Axes."""
    a, b = drawings["full"][1][0].axes
    for p in a.patches:
        _check_bins(_outline(p)[0], 2 / 1.1, 1100.0)
    _check_counts(a.patches[0], [2, 40, 40, 300])
    _check_counts(a.patches[1], [3, 300])
    _check_counts(a.patches[2], [1000] * 1200)
    assert max(_outline(a.patches[2])[1]) == 1200
    for p in b.patches:
        _check_bins(_outline(p)[0], 100.0, 550.0)
    _check_counts(b.patches[0], [110, 150])
    _check_counts(b.patches[1], [500])
    [ax] = drawings["two"][1][0].axes
    for p in ax.patches:
        _check_bins(_outline(p)[0], 1.0, 5.5)  # 1 / 1.1 raised to 1
    _check_counts(ax.patches[0], [1, 1])
    _check_counts(ax.patches[1], [5])


def _images(fig):
    ax, cax = fig.axes
    greys, steps = ax.get_images()
    return ax, cax, greys, steps


def test_the_basin_plot_shows_diverged_cells_grey_and_converged_ones_by_steps(drawings):
    from matplotlib.colors import to_rgba
    fig = drawings["full"][1][1]
    assert tuple(fig.get_size_inches()) == pytest.approx((6.2, 5.2))
    ax, cax, greys, steps = _images(fig)
    assert greys.get_array().dtype == float and np.ma.getmaskarray(greys.get_array()).sum() == 0
    np.testing.assert_array_equal(greys.get_array(), [[0, 0, 0], [1, 0, 1], [1, 0, 0]])
    shown = np.ma.filled(steps.get_array().astype(float), np.nan)
    np.testing.assert_array_equal(shown, [[12, np.nan, 300], [np.nan, 45, np.nan], [np.nan] * 3])
    for im in (greys, steps):
        assert list(im.get_extent()) == [-1.0, 2.0, -1.0, 2.0] and im.origin == "lower"
        assert im.get_interpolation() == "nearest"
    assert (greys.get_cmap().name, greys.norm.vmin, greys.norm.vmax) == ("Greys", 0, 1.6)  # diverged: mid grey
    assert steps.get_cmap().name == "viridis"
    assert (steps.norm.vmin, steps.norm.vmax) == (12, 300)
    assert cax.get_label() == "<colorbar>" and cax.get_ylabel() == "steps to loss < 0.00025 (converged cells)"
    assert steps.colorbar is not None and steps.colorbar.ax is cax  # the colour bar of the steps
    [mark] = ax.get_lines()
    assert (list(mark.get_xdata()), list(mark.get_ydata())) == ([0.25], [-0.5])
    assert (mark.get_marker(), to_rgba(mark.get_color()), mark.get_markersize(), mark.get_markeredgewidth()) == (
        "x", (1.0, 0.0, 0.0, 1.0), 9, 2)
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == (
        "W0[0,1]", "b1[0]", "study: basin (white: not converged, grey: diverged)")


def test_a_basin_where_every_cell_diverged_is_all_grey(drawings):
    [fig] = drawings["basin"][1]
    ax, cax, greys, steps = _images(fig)
    np.testing.assert_array_equal(greys.get_array(), [[1, 1], [1, 1]])
    assert (greys.norm.vmin, greys.norm.vmax) == (0, 1.6)  # grey, not the colour map's lowest (white)
    assert np.ma.getmaskarray(steps.get_array()).all()  # nothing converged: no colour
    assert list(greys.get_extent()) == [0.0, 1.0, 0.0, 1.0]
    assert [(list(m.get_xdata()), list(m.get_ydata())) for m in ax.get_lines()] == [([1], [0])]
    assert ax.get_title() == "wild: basin (white: not converged, grey: diverged)"
    assert cax.get_ylabel() == "steps to loss < 1e-06 (converged cells)"
