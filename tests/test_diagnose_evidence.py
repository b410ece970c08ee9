"""The diagnosis' evidence and its words, on hand-made records, scripts and results with hand-written (or
independently computed) expected values: `Diagnosis`'s lines() and to_dict() in each of their shapes; `_quote`, the
failing measure in words, for each part; `_construction`, params() against the weights given (transposed, rounded to
float32, and the look-alikes that are neither); `_rows`, the rows each step's loss is the loss of; `_float32`,
float32-sized differences and those that are not; and `diagnose` routing a failure to them: the part judged, the
conventions, the hypotheses tested and counted, the order of the causes, continuation's split run.

Two bugs these tests found: params() returning a W transposed made the diagnosis raise TypeError (the shape was looked
up in a dict keyed by arrays), and so did a preset check that agrees but did not converge (no where to read a step
from)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from mutants.numpy_mutants import (LossSummed, NumpyMLP, OneUlpPerCall, OptimizerAndWindowPerCall, OptimizerPerCall,
                                   TruncatedBatches, WrongSign)
from xor_rosetta.checks import verify
from xor_rosetta.checks.battery import Battery
from xor_rosetta.checks.diagnose import (Bug, Cause, Diagnosis, Variant, _construction, _float32, _quote, _rows,
                                         diagnose)
from xor_rosetta.checks.judging import FAIL, CheckResult, Where
from xor_rosetta.checks.scripts import Record, Script, probe_params, run_script
from xor_rosetta.data import xor_data
from xor_rosetta.interface import Conventions
from xor_rosetta.presets import get_preset
from xor_rosetta.reference import Reference
from xor_rosetta.spec import Optimizer, Spec

CAUSE_A = Cause("a-id", "mistake A", "A explained")
CAUSE_B = Cause("b-id", "mistake B", "B explained")
CAUSE_C = Cause("c-id", "mistake C", "C explained")


# ---------------------------------------------------------------------------------------------------- Diagnosis

def test_lines_without_a_where_and_without_a_cause():
    """No where: the check and verdict alone; no cause: the catalogue's size (18) and the hypotheses tested."""
    d = Diagnosis("update_sgd", None, "DISAGREES: loss differs by 0.1", tried=7)
    assert d.lines() == ["first failure: update_sgd: DISAGREES: loss differs by 0.1",
                         "likely cause: none of the 18 in the catalogue explains it, alone or two together "
                         "(7 hypotheses tested)"]
    assert d.cause is None


def test_lines_of_a_failing_call_is_not_diagnosed():
    d = Diagnosis("forward", Where("error"), "error: forward() raised ValueError: no")
    assert d.lines() == ["first failure: forward: a call: error: forward() raised ValueError: no",
                         "likely cause: not diagnosed: a call into the implementation failed (its error is above)"]


def test_lines_of_a_failing_call_with_a_cause_name_the_cause():
    """Only a failed call without a cause is 'not diagnosed'."""
    d = Diagnosis("forward", Where("error"), "error: boom", [(CAUSE_A, "ev A")], label="again")
    assert d.lines() == ["again: forward: a call: error: boom", "likely cause: mistake A -- A explained",
                         "evidence: ev A"]


def test_lines_without_a_cause_at_a_measured_part():
    d = Diagnosis("gradients", Where("gradient", 0, ["W1"]), "DISAGREES: x", tried=3)
    assert d.lines() == ["first failure: gradients: the gradients of W1 at the initial weights: DISAGREES: x",
                         "likely cause: none of the 18 in the catalogue explains it, alone or two together "
                         "(3 hypotheses tested)"]


def test_lines_one_cause_then_every_other_consistent():
    d = Diagnosis("update_sgd", Where("update", 3, ["W0"], True), "DISAGREES: y",
                  [(CAUSE_A, "ev A"), (CAUSE_B, "ev B"), (CAUSE_C, "ev C")], tried=9)
    assert d.cause is CAUSE_A
    assert d.lines() == ["first failure: update_sgd: the loss and the update of W0 at step 3: DISAGREES: y",
                         "likely cause: mistake A -- A explained", "evidence: ev A",
                         "also consistent: mistake B (ev B)", "also consistent: mistake C (ev C)"]


def test_lines_two_mistakes_together():
    d = Diagnosis("update_sgd", Where("update", 1), "DISAGREES: z", [(CAUSE_A, "both"), (CAUSE_B, "both")],
                  tried=40, together=True)
    assert d.lines() == ["first failure: update_sgd: the params at step 1: DISAGREES: z",
                         "likely cause: two mistakes together: mistake A -- A explained; and mistake B -- B explained",
                         "evidence: both"]


def test_to_dict_without_a_where_and_without_a_cause():
    d = Diagnosis("update_sgd", None, "DISAGREES: v", tried=5)
    assert d.to_dict() == {"check": "update_sgd", "verdict": "DISAGREES: v", "where": None, "cause": None,
                           "evidence": None, "also_consistent": [], "together": [], "hypotheses_tested": 5}


def test_to_dict_one_cause_then_every_other_consistent():
    d = Diagnosis("update_sgd", Where("update", 2, ["b1", "W0"], True), "DISAGREES: w",
                  [(CAUSE_A, "ev A"), (CAUSE_B, "ev B"), (CAUSE_C, "ev C")], tried=11)
    assert d.to_dict() == {"check": "update_sgd", "verdict": "DISAGREES: w",
                           "where": {"part": "update", "step": 2, "arrays": ["b1", "W0"], "layer": 1},
                           "cause": {"id": "a-id", "title": "mistake A", "explanation": "A explained"},
                           "evidence": "ev A", "also_consistent": ["b-id", "c-id"], "together": [],
                           "hypotheses_tested": 11}


def test_to_dict_two_mistakes_together():
    d = Diagnosis("loss", Where("loss"), "DISAGREES: u", [(CAUSE_B, "pair"), (CAUSE_C, "pair")], tried=2,
                  together=True)
    assert d.to_dict() == {"check": "loss", "verdict": "DISAGREES: u",
                           "where": {"part": "loss", "step": 0, "arrays": [], "layer": None},
                           "cause": {"id": "b-id", "title": "mistake B", "explanation": "B explained"},
                           "evidence": "pair", "also_consistent": [], "together": ["b-id", "c-id"],
                           "hypotheses_tested": 2}


# ------------------------------------------------------------------------------------------------------- _quote

def params(W0, b0, W1, b1):
    return [(np.array(W0, dtype=float), np.array(b0, dtype=float)), (np.array(W1, dtype=float),
                                                                      np.array(b1, dtype=float))]


WANT_P = params([[1.0, -2.0]], [0.5, 0.0], [[4.0], [0.25]], [-0.5])  # max |value| 4
GOT_P = params([[1.0, -1.997]], [0.5, 0.0], [[4.0], [0.25]], [-0.48])  # W0 off by 0.003, b1 by 0.02
OUT_WANT = np.array([[0.1], [0.7], [-1.5]])  # max |output| 1.5
OUT_GOT = np.array([[0.1], [0.9], [-1.5]])  # off by 0.2
LOSS_WANT = np.array([0.5, -0.8, 0.25, 2.0])  # the largest |loss| up to step 3: 0.8; up to step 4: 2
LOSS_GOT = np.array([0.5, -0.8, 0.26, 2.5])  # step 3 off by 0.01, step 4 by 0.5


def rec(p=GOT_P, outputs=OUT_GOT, loss0=0.3, loss=LOSS_GOT, checkpoints=(2,), **kw) -> Record:
    """A record with every part: the gradients are `p` too, and so is each checkpoint."""
    return Record(params0=p, outputs=outputs, loss0=loss0, grads=p, loss=loss, checkpoints={k: p for k in checkpoints},
                  **kw)


GOT = rec()
WANT = rec(WANT_P, OUT_WANT, -0.4, LOSS_WANT)


@pytest.mark.parametrize("where, dtype, words", [
    (Where("update", 2, ["W0"]), "float64", "W0 after step 2 differ by 0.003 (allowed 2e-12)"),
    (Where("update", 2, ["W0"]), "float32", "W0 after step 2 differ by 0.003 (allowed 2e-05)"),
    (Where("update", 2, ["b1", "W0"], True), "float64", "b1, W0 after step 2 differ by 0.02 (allowed 2e-12)"),
    (Where("update", 3, ["W0"], True), "float64", "the loss of step 3 differs by 0.01 (allowed 4e-13)"),
    (Where("update", 3, ["W0"], True), "float32", "the loss of step 3 differs by 0.01 (allowed 4e-06)"),
    (Where("update", 2, [], True), "float64", "the loss of step 2 differs by 0 (allowed 4e-13)"),
    (Where("update", 1, [], True), "float64", "the loss of step 1 differs by 0 (allowed 2.5e-13)"),
    (Where("update", 4, [], True), "float64", "the loss of step 4 differs by 0.5 (allowed 1e-12)"),
    (Where("gradient", 0, ["W0"]), "float32", "the gradients of W0 differ by 0.003 (allowed 4e-05)"),
    (Where("gradient", 0, ["W0", "W1"]), "float64", "the gradients of W0, W1 differ by 0.003 (allowed 2e-12)"),
    (Where("gradient", 0, []), "float32", "the gradients differ by 0.02 (allowed 4e-05)"),
    (Where("forward"), "float32", "outputs differ by 0.2 (allowed 1.5e-06)"),
    (Where("forward"), "float64", "outputs differ by 0.2 (allowed 7.5e-13)"),
    (Where("loss"), "float32", "the loss differs by 0.7 (allowed 2e-06)"),
], ids=["params-named", "params-float32", "params-two-named", "loss-of-a-step", "loss-of-a-step-float32",
        "loss-when-no-array-named", "loss-of-step-1", "loss-of-the-last-step", "gradient-named",
        "gradients-two-named", "gradients-all", "forward-float32", "forward-float64", "loss0"])
def test_quote_the_measure_that_failed(where, dtype, words):
    """The same measure as the check's, on the arrays the check named (the others, further off, are not quoted),
    against the part's tolerance in `dtype` times the reference's scale."""
    assert _quote(where, GOT, WANT, dtype) == words


def test_quote_of_a_step_the_implementation_did_not_checkpoint_is_of_its_loss():
    got = rec(checkpoints=())
    assert _quote(Where("update", 2, ["W0"]), got, WANT, "float64") == \
        "the loss of step 2 differs by 0 (allowed 4e-13)"


def test_quote_counts_an_array_with_no_elements_as_no_difference():
    got = [(np.array([[1.5, -2.0]]), np.empty(0))]
    want = [(np.array([[1.0, -2.0]]), np.empty(0))]
    assert _quote(Where("gradient", 0, []), Record(grads=got), Record(grads=want), "float64") == \
        "the gradients differ by 0.5 (allowed 1e-12)"


@pytest.mark.parametrize("where, got, want", [
    (None, GOT, WANT),
    (Where("loss"), rec(error="loss() raised"), WANT),
    (Where("loss"), GOT, rec(error="the reference raised")),
    (Where("update", 0), GOT, WANT),
    (Where("update", 3), rec(loss=LOSS_GOT[:2]), WANT),
    (Where("update", 3), GOT, rec(loss=LOSS_WANT[:2])),
    (Where("gradient", 0, ["W0"]), Record(loss0=0.3), WANT),
    (Where("gradient", 0, ["W0"]), GOT, Record(loss0=0.3)),
    (Where("forward"), Record(loss0=0.3, grads=GOT_P), WANT),
    (Where("forward"), GOT, Record(loss0=0.3, grads=WANT_P)),
    (Where("loss"), Record(outputs=OUT_GOT, grads=GOT_P), WANT),
    (Where("loss"), GOT, Record(outputs=OUT_WANT, grads=WANT_P)),
    (Where("construction", 0, ["W0"]), GOT, WANT),
], ids=["no-where", "its-error", "the-references-error", "update-0", "step-past-its-losses",
        "step-past-the-references-losses", "no-gradients", "no-reference-gradients", "no-outputs",
        "no-reference-outputs", "no-loss", "no-reference-loss", "construction"])
def test_quote_nothing_without_the_measure(where, got, want):
    """Nothing to quote without a where, after an error, or where either record lacks the part (or the step)."""
    assert _quote(where, got, want, "float64") is None


# ------------------------------------------------------------------------------------------------ _construction

K_SPEC = get_preset("seed-keras").replace(steps=10)  # 2-5-5-1: W1 is square


def k_params(symmetric_w1=False):
    """seed-keras' shapes, every value distinct and none float32-exact (W1 symmetric if asked)."""
    rng = np.random.default_rng(3)
    p = [(rng.uniform(-1, 1, (2, 5)), rng.uniform(-1, 1, 5)), (rng.uniform(-1, 1, (5, 5)), rng.uniform(-1, 1, 5)),
         (rng.uniform(-1, 1, (5, 1)), rng.uniform(-1, 1, 1))]
    if symmetric_w1:
        p[1] = (p[1][0] + p[1][0].T, p[1][1])
    return p


def k_script(dtype="float64", symmetric_w1=False) -> Script:
    return Script("probe-k", K_SPEC.replace(dtype=dtype), k_params(symmetric_w1), True, (3,), (1, 2, 3))


def transposed(p, which=(0, 1, 2)):
    return [(W.T.copy() if i in which else W.copy(), b.copy()) for i, (W, b) in enumerate(p)]


def rounded(p):
    return [(W.astype(np.float32).astype(np.float64), b.astype(np.float32).astype(np.float64)) for W, b in p]


def construction(script: Script, params0) -> list[tuple[str, str]]:
    return list(_construction(script, Record(params0=params0)))


@pytest.mark.parametrize("which, shown", [
    ((0, 1, 2), "W0 as (5, 2), W1 as (5, 5), W2 as (1, 5)"),
    ((1,), "W1 as (5, 5)"),
    ((0, 2), "W0 as (5, 2), W2 as (1, 5)"),
], ids=["every-W", "the-square-W-alone", "the-non-square-Ws"])
def test_construction_names_the_weights_returned_transposed(which, shown):
    """Each W returned as (fan_out, fan_in), everything else as given: named, with the shape returned."""
    script = k_script()
    assert construction(script, transposed(script.params, which)) == [
        ("transposed-weights", f"params() returns the given weights transposed: {shown}")]


def test_construction_a_symmetric_square_w_is_not_named_among_the_transposed():
    """A symmetric W1 reads the same either way: only the Ws that changed are named."""
    script = k_script(symmetric_w1=True)
    assert construction(script, transposed(script.params)) == [
        ("transposed-weights", "params() returns the given weights transposed: W0 as (5, 2), W2 as (1, 5)")]


def test_construction_float32_rounding():
    assert construction(k_script(), rounded(k_params())) == [
        ("float32", "params() returns the given float64 weights rounded to float32")]


@pytest.mark.parametrize("script, params0", [
    (k_script(), k_params()),
    (k_script(symmetric_w1=True), k_params(symmetric_w1=True)),
    (k_script(symmetric_w1=True), transposed(k_params(symmetric_w1=True), (1,))),
    (k_script("float32"), rounded(k_params())),
    (k_script(), [(W.T.copy(), b + 1e-3) for W, b in k_params()]),
    (k_script(), transposed(k_params())[:2]),
    (k_script(), rounded(k_params())[:2]),
    (k_script(), None),
], ids=["as-given", "symmetric-as-given", "symmetric-transposed-is-as-given", "float32-run-rounded",
        "transposed-and-biases-off", "a-layer-short-transposed", "a-layer-short-rounded", "no-params"])
def test_construction_names_nothing_that_is_neither(script, params0):
    """Weights as given (a symmetric square W transposed is as given); float32 values in a float32 run;
    transposed Ws beside biases that are off too; a layer missing; no params() answer."""
    assert construction(script, params0) == []


# ------------------------------------------------------------------------------------------------------- _rows

N_SPEC = get_preset("seed-numpy").replace(steps=4, batch_size=3)  # windows [0,1,2] [3,0,1] [2,3,0] [1,2,3]
NUMPY = Conventions(adam="textbook", momentum="torch", bce="logits")  # what NumpyMLP declares
LOGITS = Conventions(bce="logits")
X, Y = xor_data()


def loss_of(spec, p, rows, conv=NUMPY) -> float:
    return Reference(spec, p, conv).loss(X[rows], Y[rows])


def n_params(seed):
    return probe_params(N_SPEC, seed)


def rows_record(losses, checkpoints) -> Record:
    return Record(loss=np.array(losses), checkpoints=checkpoints)


def test_rows_names_the_rows_each_step_used():
    """Each step's loss at the params before it (the given ones, then each checkpoint) is matched to the rows
    it is the loss of: the window ([0, 1, 2]), other rows ([1, 2]; [0]: 2e-13 relative off, within 5e-13) or
    none ('?': 2e-12 relative off a loss of 0.07, beyond it)."""
    p0, p1, p2, p3 = n_params(0), n_params(2), n_params(1), n_params(3)
    losses = [loss_of(N_SPEC, p0, [0, 1, 2]), loss_of(N_SPEC, p1, [1, 2]), loss_of(N_SPEC, p2, [0, 3]) * (1 + 2e-12),
              loss_of(N_SPEC, p3, [0]) * (1 + 2e-13)]
    script = Script("rows", N_SPEC, p0, False, (4,), (1, 2, 3))
    got = rows_record(losses, {1: p1, 2: p2, 3: p3})
    assert _rows(script, got, NUMPY) == (
        "step 2's loss is the loss of rows [1, 2], not of the window [3, 0, 1]; rows by step: [0, 1, 2] [1, 2] ? [0]; "
        "the contract's: [0, 1, 2] [3, 0, 1] [2, 3, 0] [1, 2, 3]")


def test_rows_stop_at_the_first_step_without_the_params_before_it():
    p0 = n_params(0)
    script = Script("rows", N_SPEC, p0, False, (4,), (2,))
    got = rows_record([loss_of(N_SPEC, p0, [0, 3]), 1.0, 2.0, 3.0], {2: n_params(1)})
    assert _rows(script, got, NUMPY) == (
        "step 1's loss is the loss of rows [0, 3], not of the window [0, 1, 2]; rows by step: [0, 3]; "
        "the contract's: [0, 1, 2]")


@pytest.mark.parametrize("losses", [
    lambda p: [loss_of(N_SPEC, p[0], [0, 1, 2]), 123.0, loss_of(N_SPEC, p[2], [0]), loss_of(N_SPEC, p[3], [1])],
    lambda p: [loss_of(N_SPEC, p[0], [0, 1, 2]), loss_of(N_SPEC, p[1], [0, 1, 3]), loss_of(N_SPEC, p[2], [0, 2, 3]),
               loss_of(N_SPEC, p[3], [1, 2, 3])],
], ids=["first-step-off-fits-no-rows", "every-step-its-window"])
def test_rows_nothing_to_say(losses):
    """Nothing when the first step off is the loss of no rows at all, or when every step used its window."""
    p = [n_params(0), n_params(2), n_params(1), n_params(3)]
    script = Script("rows", N_SPEC, p[0], False, (4,), (1, 2, 3))
    assert _rows(script, rows_record(losses(p), {1: p[1], 2: p[2], 3: p[3]}), NUMPY) is None


def test_rows_nothing_after_an_error():
    script = Script("rows", N_SPEC, n_params(0), False, (4,), (1, 2, 3))
    assert _rows(script, Record(loss=np.array([1.0]), error="train() raised"), NUMPY) is None


def test_rows_reads_a_diverged_run_without_a_warning():
    """Params that overflow every loss (a diverged run), and every subset of rows tried: no warning escapes."""
    p0 = n_params(0)
    huge = [(W * 1e200, b * 1e200) for W, b in p0]
    script = Script("rows", N_SPEC, p0, False, (2,), (1,))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _rows(script, rows_record([loss_of(N_SPEC, p0, [0, 1, 2]), 5.0], {1: huge}), NUMPY) is None


B1_SPEC = Spec(layers=(2, 1), activations=("sigmoid",), loss="bce", optimizer=Optimizer("sgd", lr=0.5), steps=1,
               batch_size=2)


def test_rows_judge_the_loss_in_the_conventions_given():
    """Rows 1 and 2 classified confidently right (z = 28, 26): their BCE from the logits (~3e-12) is not what
    the probabilities' form computes (1 - a rounds): the rows are found in the conventions given."""
    p = [(np.array([[50.0], [52.0]]), np.array([-24.0]))]  # z = -24, 28, 26, 78 for y = 0, 1, 1, 0
    losses = [loss_of(B1_SPEC, p, [1, 2], Conventions(bce="logits"))]
    assert losses[0] != loss_of(B1_SPEC, p, [1, 2], Conventions(bce="probs"))
    script = Script("rows", B1_SPEC, p, False, (1,), (1,))
    assert _rows(script, rows_record(losses, {}), Conventions(bce="logits")) == (
        "step 1's loss is the loss of rows [1, 2], not of the window [0, 1]; rows by step: [1, 2]; "
        "the contract's: [0, 1]")


# ---------------------------------------------------------------------------------------------------- _float32

def f32_loss0(script: Script, conv=LOGITS) -> float:
    """The loss a float32 run of `script` reports at the given weights: the reference, in float32."""
    s32 = Script(script.key, script.spec.replace(dtype="float32"), script.params, True, script.calls,
                 script.checkpoints)
    return run_script(lambda s, p: Reference(s, p, conv), s32).loss0


def s1_script(key="s1", w=(0.4, -0.7), b=0.2, batch=4) -> Script:
    spec = B1_SPEC.replace(steps=3, batch_size=batch)
    return Script(key, spec, [(np.array([[w[0]], [w[1]]]), np.array([b]))], True, (3,), (1, 2, 3))


def test_float32_sized_against_both_references_each_script_its_own():
    """A loss as float32 computes it, on two scripts of one battery: float32-sized against the float64 reference,
    and none at all against a float32 reference of the same script (not of the other)."""
    b = Battery(NumpyMLP, "float64", "quick")
    for script in (s1_script(), s1_script("s1-other", (-1.5, 0.9), -0.3)):
        l64, l32 = loss_of(script.spec, script.params, slice(None), LOGITS), f32_loss0(script)
        assert _float32(b, script, Record(loss0=l32), LOGITS, ("loss0",)) == (
            f"the differences are float32-sized: by float32's tolerances, against the float64 reference, loss differs "
            f"by {abs(l32 - l64):.2g} (allowed {5e-6 * abs(l64):.2g}); and against a float32 reference, loss differs "
            f"by 0 (allowed {5e-6 * abs(l32):.2g})")


def test_float32_sized_against_float64_alone_is_not_float32():
    """Just within float32's tolerance of the float64 loss, on the far side from float32's: beyond it against the
    float32 reference, which agrees with the float64 one: not float32 rounding, nothing to say."""
    b = Battery(NumpyMLP, "float64", "quick")
    script = s1_script()
    l64, l32 = loss_of(script.spec, script.params, slice(None), LOGITS), f32_loss0(script)
    assert l64 != l32
    got = Record(loss0=l64 + np.sign(l64 - l32) * 5e-6 * abs(l64) * (1 - 1e-6))
    assert _float32(b, script, got, LOGITS, ("loss0",)) is None


def test_float32_sized_against_float64_alone_is_not_float32_in_training():
    """The same in training: step 1's loss (the full batch's, at the given weights) just within float32's
    tolerance of the float64 reference's, on the far side from float32's; the params the float64 reference's."""
    b = Battery(NumpyMLP, "float64", "quick")
    script = s1_script()
    got = run_script(lambda s, p: Reference(s, p, LOGITS), script)
    l64, l32 = got.loss[0], f32_loss0(script)
    assert l64 != l32
    got.loss[0] = l64 + np.sign(l64 - l32) * 5e-6 * abs(l64) * (1 - 1e-6)
    assert _float32(b, script, got, LOGITS, ("train",)) is None


def test_float32_where_a_float32_reference_underflows_measures_the_gap_on_the_battery():
    """Weights of 1e-46 are 0 in float32 (under its smallest subnormal): the float32 reference's outputs are 0, and
    the run's, the float64 reference's (1e-46 and so on), disagree with them; the float64 and float32 references
    are then compared, their gap judged with float32 rounding's floor (measured on the battery): float32 rounding
    moves those outputs as far, so the run is no float32 witness either way, and nothing is said. (That floor trains
    the script in the conventions given: momentum's form.)"""
    spec = Spec(layers=(2, 1), activations=("linear",), loss="mse", optimizer=Optimizer("sgd", lr=0.1, momentum=0.9),
                steps=1)  # momentum: the floor's training run reads the conventions' momentum form
    script = Script("tiny", spec, [(np.array([[1e-46], [1e-46]]), np.array([0.0]))], True, (1,), (1,))
    want = run_script(lambda s, p: Reference(s, p, Conventions()), script)
    assert want.outputs[3, 0] == 2e-46 and np.float32(1e-46) == 0  # the premise: float64 holds them, float32 not
    b = Battery(NumpyMLP, "float64", "quick")
    assert _float32(b, script, Record(outputs=want.outputs), Conventions(), ("forward",)) is None


# ---------------------------------------------------------------------------------------------------- diagnose

def s1_battery(cls) -> tuple[Battery, Script]:
    b, script = Battery(cls, "float64", "quick"), s1_script()
    b.scripts[script.key] = script
    return b, script


class LossOnlySummed(NumpyMLP):
    """loss() sums over the batch (4 rows); its gradients and train() are right."""
    def loss(self, x, y):
        return 4 * super().loss(x, y)


class ResetThenDrift(NumpyMLP):
    """A fresh optimizer at each train() call; from the second call on, each loss after the call's first 1e-3 high."""
    calls = 0

    def train(self, x, y, steps=None, checkpoints=()):
        self.calls += 1
        self.optimizer = self.make_optimizer()
        h = super().train(x, y, steps, checkpoints)
        if self.calls > 1:
            h.loss[1:] += 1e-3
        return h


def test_diagnose_a_construction_failure_is_judged_on_params0():
    """`diagnose` routes a failure of `construction` to `_construction`, one hypothesis per cause it names."""
    b = Battery(NumpyMLP, "float64", "quick")
    script = k_script()
    b.scripts["probe-k"], b.records["probe-k"] = script, Record(params0=rounded(script.params))
    res = CheckResult("construction", FAIL, "DISAGREES: params differ by 3e-08 (allowed 5e-13)",
                      where=Where("construction", 0, ["W1"]), script="probe-k", parts=("params0",))
    d = diagnose(b, res)
    assert d.to_dict() == {
        "check": "construction", "verdict": "DISAGREES: params differ by 3e-08 (allowed 5e-13)",
        "where": {"part": "construction", "step": 0, "arrays": ["W1"], "layer": 1},
        "cause": {"id": "float32", "title": "float32 arithmetic inside a float64 run",
                  "explanation": "some of the computation runs in float32 (an array, a constant or a framework "
                                 "default): the differences have float32's size, about 1e-7 relative"},
        "evidence": "params() returns the given float64 weights rounded to float32", "also_consistent": [],
        "together": [], "hypotheses_tested": 1}


def test_diagnose_every_cause_that_holds_in_catalogue_order():
    """A one-layer network whose update climbs: the step added, and the layer's gradients negated, are the same
    mistake there; the catalogue's order puts wrong-sign first. 13 hypotheses: the variants of a one-layer BCE
    network under SGD; a batch of 4 is the full batch, so no row hypothesis."""
    b, script = s1_battery(WrongSign)
    after = b.record(script).checkpoints[1]
    allowed = 5e-13 * max(float(np.max(np.abs(a))) for Wb in after for a in Wb)
    res = CheckResult("update_sgd", FAIL, "DISAGREES: v", where=Where("update", 1, ["W0", "b0"]), script="s1",
                      conventions=LOGITS, parts=("train",))
    quote = f"W0, b0 after step 1 differ by 0 (allowed {allowed:.2g})"
    d = diagnose(b, res)
    assert [(c.id, ev) for c, ev in d.causes] == [
        ("wrong-sign", f"the reference with the step added instead of subtracted agrees with it: {quote}"),
        ("gradient-sign", f"the reference with the gradients of layer 0 (W0, b0) negated agrees with it: {quote}")]
    assert d.tried == 13 and not d.together


def test_diagnose_a_result_without_a_where_judges_its_parts_in_the_declared_conventions():
    """No where and no conventions in the result: its own parts (the loss at the initial weights), judged in the
    conventions the battery reads for the script (NumPy's declared BCE from the logits)."""
    b, script = s1_battery(LossSummed)
    loss0 = b.record(script).loss0
    res = CheckResult("loss_bce", FAIL, "DISAGREES: u", script="s1", parts=("loss0",))
    d = diagnose(b, res)
    assert [(c.id, ev) for c, ev in d.causes] == [
        ("loss-summed", f"the reference with loss and gradients summed over the batch agrees with it: loss differs "
                        f"by 0 (allowed {5e-13 * abs(loss0):.2g})")]
    assert d.tried == 13


def test_diagnose_rows_from_each_steps_loss():
    """Batches of 3 cut short at the end of the data (TruncatedBatches): no variant explains it, the rows do."""
    b, script = Battery(TruncatedBatches, "float64", "quick"), s1_script("s1-3", batch=3)
    b.scripts[script.key] = script
    res = CheckResult("minibatch_order", FAIL, "DISAGREES: r", where=Where("update", 2, ["W0"]), script="s1-3",
                      conventions=LOGITS, parts=("train",))
    d = diagnose(b, res)
    assert [(c.id, ev) for c, ev in d.causes] == [
        ("minibatch-order", "step 2's loss is the loss of rows [3], not of the window [3, 0, 1]; rows by step: "
                            "[0, 1, 2] [3] [2, 3]; the contract's: [0, 1, 2] [3, 0, 1] [2, 3, 0]")]
    assert d.tried == 14


def test_diagnose_a_detection_without_a_form_tries_the_closest_form_too():
    """torch's BCE (probs) without bias updates, undeclared: loss_bce finds no form, probs is the closest, and only
    there does the hypothesis agree. 26 hypotheses: seed-keras' variants and the mixed forms."""
    def factory(spec, params):
        return Variant(spec, params, Conventions(bce="probs"), Bug(frozen="biases"))

    d = verify(factory, level="quick", ids=["loss_bce"]).diagnosis
    assert [c.id for c, _ in d.causes] == ["bias-not-updated"] and d.tried == 26
    assert d.causes[0][1].startswith("the reference with no bias updated agrees with it: the gradients of b0, b1, b2 "
                                     "differ by 0 (allowed ")


def test_diagnose_continuation_against_the_split_reference():
    """A fresh optimizer at each train() call: the split run against the reference split the same way."""
    d = verify(OptimizerPerCall, level="quick", ids=["continuation"]).diagnosis
    assert [c.id for c, _ in d.causes] == ["state-reset"]
    assert d.causes[0][1].startswith("the reference with optimizer state started again by each train() call agrees "
                                     "with it: ")


def test_diagnose_continuation_tries_no_float32():
    """One ulp apart at a call: no mistake explains it, and float32 is not tried on a continuation (bit for bit):
    2 variants and their pair."""
    d = verify(OneUlpPerCall, level="quick", ids=["continuation"]).diagnosis
    assert d.causes == [] and d.tried == 3


def test_diagnose_judges_the_part_that_failed_not_every_part_of_the_check():
    """A check of loss, gradients and update that failed at the loss: the hypotheses are judged there, where 'loss
    and gradients summed' agrees (its gradients, unlike these, would not)."""
    b, script = s1_battery(LossOnlySummed)
    loss0 = b.record(script).loss0
    res = CheckResult("loss_bce", FAIL, "DISAGREES: l", where=Where("loss"), script="s1", conventions=LOGITS,
                      parts=("loss0", "gradients", "train"))
    d = diagnose(b, res)
    assert [(c.id, ev) for c, ev in d.causes] == [
        ("loss-summed", f"the reference with loss and gradients summed over the batch agrees with it: the loss "
                        f"differs by 0 (allowed {5e-13 * abs(loss0):.2g})")]


def test_diagnose_continuation_judges_the_whole_split_run():
    """The reset explains the first difference (step 4) but not the losses after it: on the whole split run, no
    hypothesis holds (2 variants, and their pair)."""
    d = verify(ResetThenDrift, level="quick", ids=["continuation"]).diagnosis
    assert d.where.step == 4 and d.causes == [] and d.tried == 3


def test_diagnose_two_mistakes_together_in_words():
    d = verify(OptimizerAndWindowPerCall, level="quick", ids=["continuation"]).diagnosis
    assert d.together and [c.id for c, _ in d.causes] == ["state-reset", "minibatch-order"]
    assert d.causes[0][1].startswith("the reference with optimizer state and minibatch window both started again by "
                                     "each train() call agrees with it: W0, b0, W1, b1 after step 4 differ by 0 "
                                     "(allowed ")


def test_diagnose_a_run_that_agrees_but_did_not_converge():
    """No step disagrees: no mistake is replayed, and none is named."""
    b, script = s1_battery(NumpyMLP)
    res = CheckResult("preset_seed_numpy", FAIL, "agrees, but did not converge: final loss 0.7 (threshold 1e-06), "
                      "2/4 correct", script="s1", conventions=LOGITS, parts=("train",))
    d = diagnose(b, res)
    assert d.check == "preset_seed_numpy" and d.where is None and d.causes == [] and d.tried == 0


class ParamsTransposed(NumpyMLP):
    """Trains right, but params() returns each W as (fan_out, fan_in)."""

    def params(self):
        return [(W.T.copy(), b) for W, b in super().params()]


def test_verify_diagnoses_params_returned_transposed():
    """End to end: the construction check fails and the diagnosis names the transposed weights (it raised
    TypeError before)."""
    d = verify(ParamsTransposed, level="quick", ids=["construction"]).diagnosis
    assert [c.id for c, _ in d.causes] == ["transposed-weights"]
    assert d.causes[0][1].startswith("params() returns the given weights transposed: W0 as ("), d.causes[0][1]


@pytest.mark.parametrize("res", [
    CheckResult("loss_bce", "pass", "agrees", script="s1", parts=("loss0",)),  # nothing failed
    CheckResult("loss_bce", FAIL, "DISAGREES: u", script=None, parts=("loss0",)),  # no script to replay
    CheckResult("loss_bce", FAIL, "error: boom", where=Where("error"), script="s1", parts=("loss0",)),  # it raised
    CheckResult("steps_10", FAIL, "agrees, but ...", script="s1", parts=()),  # no where, no parts: the whole run
], ids=["pass", "no-script", "error", "no-where-no-parts"])
def test_diagnose_tries_nothing_where_there_is_nothing_to_replay(res):
    b, _ = s1_battery(LossSummed)
    d = diagnose(b, res)
    assert (d.check, d.causes, d.tried, d.together) == (res.id, [], 0, False)
