"""The catalogue's checks one by one, each result checked whole (status, verdict, diff and allowed, detail, where,
script, conventions, parts, data): on the NumPy implementation, which agrees with the reference, and on hand-made
wrong ones, each wrong in one public method only (params, forward, loss, gradients, train), so that a check that
stops judging one of its parts, reads another script or cuts its window elsewhere is caught; every threshold is
tried just at and just past it (momentum's 3 updates, steps_10's 10, steps_1000's 1,000, the presets' full length,
the convergence threshold, 4/4 correct); the skip messages of subjects that do not support a check's script, or
whose constructor declines it; and the helpers (`_distance`, `_identical`, `_identical_result`, `_preset_full`,
`describe`, `precision_checks`) on hand-made records with hand-written expected values. Long runs are avoided:
a battery's cached scripts and records are replaced by short or hand-made ones where a check's logic, not the
numbers of 10,000 steps, is under test."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from mutants.numpy_mutants import AdamNoBiasCorrection, NumpyMLP, TruncatedBatches, WrongSign
from xor_rosetta.checks.battery import Battery
from xor_rosetta.checks.catalogue import (
    CHECKS, _distance, _identical, _identical_result, check_activations_losses, check_construction,
    check_continuation, check_determinism, check_float32, check_forward, check_gradients, check_loss,
    check_loss_bce, check_minibatch_order, check_preset_seed_keras, check_preset_seed_numpy, check_random_specs,
    check_steps_10, check_steps_1000, check_update_adam, check_update_momentum, check_update_sgd, describe,
    precision_checks)
from xor_rosetta.checks.judging import CheckResult, Outcome, SkipCheck, Where
from xor_rosetta.checks.scripts import Record, Script, dense
from xor_rosetta.errors import Unsupported
from xor_rosetta.interface import Conventions
from xor_rosetta.params import init_params
from xor_rosetta.presets import get_preset
from xor_rosetta.reference import Reference
from xor_rosetta.tolerance import AGREES, DISAGREES

NUMPY = Conventions(adam="textbook", momentum="torch", bce="logits")  # what NumpyMLP declares
ALL_PARTS = ("forward", "loss0", "gradients", "train")


# ------------------------------------------------------------------------------------ implementations, wrong in one

class ParamsOff(NumpyMLP):
    """params() reads b0 back 1e-3 too high; it computes everything else right."""
    def params(self):
        p = super().params()
        p[0][1][0] += 1e-3
        return p


class ForwardOff(NumpyMLP):
    """forward() alone is 1e-3 too high."""
    def forward(self, x):
        return super().forward(x) + 1e-3


class LossOff(NumpyMLP):
    """loss() alone is 1e-3 too high (train's losses are right)."""
    def loss(self, x, y):
        return super().loss(x, y) + 1e-3


class GradientsOff(NumpyMLP):
    """gradients() alone: db0[0] 1e-3 too high (train's updates are right)."""
    def gradients(self, x, y):
        g = super().gradients(x, y)
        g[0][1][0] += 1e-3
        return g


def loss_off_at(step: int):
    """An implementation right in everything but the loss train() reports for update `step` (1-based): 1e-3 high."""
    class LossOffAt(NumpyMLP):
        def step(self, x, y):
            loss = super().step(x, y)
            return loss + 1e-3 if self.steps_done + 1 == step else loss
    return LossOffAt


def layout_off_at(step: int):
    """An implementation right in everything but the params it records after update `step`: W0 transposed."""
    class LayoutOffAt(NumpyMLP):
        def train(self, x, y, steps=None, checkpoints=()):
            before = self.steps_done
            h = super().train(x, y, steps, checkpoints)
            if step - before in h.checkpoints:
                (W0, b0), *rest = h.checkpoints[step - before]
                h.checkpoints[step - before] = [(W0.T, b0), *rest]
            return h
    return LayoutOffAt


class NoAdam(NumpyMLP):
    """Its constructor declines Adam (every other spec runs)."""
    def __init__(self, spec, params):
        if spec.optimizer.name == "adam":
            raise Unsupported("no Adam here\nsecond line, never shown")
        super().__init__(spec, params)


class DeclinesAll(NumpyMLP):
    def __init__(self, spec, params):
        raise Unsupported("declines every spec")


class TrainRaises(NumpyMLP):
    """train() raises; it declares a form other than the first of each operation (the tie-break among forms that
    all fail alike)."""
    conventions = Conventions(adam="optax", momentum="keras", bce="optax")

    def train(self, x, y, steps=None, checkpoints=()):
        raise RuntimeError("boom")


class DeclaresKeras(NumpyMLP):
    """NumpyMLP's maths (torch momentum, textbook Adam, BCE from the logits) declared as Keras' forms."""
    conventions = Conventions(adam="keras", momentum="keras", bce="probs")


class LossOffAfterFirstCall(NumpyMLP):
    """Each train() call after the first reports its first loss 0.25 high (its params are right)."""
    calls = 0

    def train(self, x, y, steps=None, checkpoints=()):
        self.calls += 1
        h = super().train(x, y, steps, checkpoints)
        if self.calls > 1:
            h.loss[0] += 0.25
        return h


def loss_by_instance():
    """A class whose k-th instance (0, 1, 2, ...) reports the loss of update 2 0.25 * k high: no two runs agree."""
    count = itertools.count()

    class LossByInstance(NumpyMLP):
        def __init__(self, spec, params):
            super().__init__(spec, params)
            self.k = next(count)

        def train(self, x, y, steps=None, checkpoints=()):
            before = self.steps_done
            h = super().train(x, y, steps, checkpoints)
            if before < 2 <= self.steps_done:
                h.loss[1 - before] += 0.25 * self.k
            return h
    return LossByInstance


def reference_in(**forms):
    """The reference itself, undeclared, computing in `forms`."""
    def factory(spec, params):
        return Reference(spec, params, Conventions(**forms))
    return factory


def supporting(**supports):
    return type("Declared", (NumpyMLP,), {"supports": supports})


# -------------------------------------------------------------------------------------------------------- helpers

def whole(r: CheckResult) -> dict:
    return {k: getattr(r, k) for k in ("id", "status", "verdict", "diff", "allowed", "detail", "where", "script",
                                       "conventions", "parts", "data", "modelled", "diagnosis")}


def result(id, status, verdict, diff, allowed, detail="", where=None, script=None, conventions=NUMPY, parts=(),
           data=None) -> dict:
    def num(v):  # a float to 1e-6 relative (never absolute: allowed is ~1e-13); 0, inf and None exactly
        return pytest.approx(v, rel=1e-6, abs=0) if isinstance(v, float) and v not in (0.0, math.inf) else v
    return {"id": id, "status": status, "verdict": verdict, "diff": num(diff), "allowed": num(allowed),
            "detail": detail, "where": where, "script": script, "conventions": conventions, "parts": parts,
            "data": data or {}, "modelled": None, "diagnosis": None}


def skip_message(check, b) -> str:
    with pytest.raises(SkipCheck) as e:
        check(b)
    return str(e.value)


def quick(cls, dtype="float64") -> Battery:
    return Battery(cls, dtype, "quick")


@pytest.fixture(scope="module")
def numpy_b() -> Battery:
    """One quick battery on the NumPy implementation, shared: its runs are cached."""
    return quick(NumpyMLP)


def preset_script(key: str, steps: int, checkpoints=None) -> Script:
    spec = get_preset(key)
    return Script(key, spec, init_params(spec), False, (steps,), dense(steps) if checkpoints is None else checkpoints)


def with_presets(b: Battery, steps: int, keras_steps: int = 3) -> Battery:
    """`b` with seed-numpy's script cut to `steps` updates (checkpoints 1..10, then 100, 1000 and `steps`), and
    seed-keras' to `keras_steps`."""
    b.scripts["seed-numpy"] = preset_script("seed-numpy", steps)
    b.scripts["seed-keras"] = preset_script("seed-keras", keras_steps)
    return b


# ----------------------------------------------------------------------------------------------- the probe checks

def test_construction(numpy_b):
    assert whole(check_construction(numpy_b)) == result(
        "construction", "pass", "agrees", 0.0, 4.971729678133799e-13, script="probe-n", parts=("params0",))
    assert whole(check_construction(quick(ParamsOff))) == result(
        "construction", "fail", "DISAGREES: params differ by 0.001 (allowed 5e-13)", 1e-3, 4.971729678133799e-13,
        where=Where("construction", 0, ["b0"]), script="probe-n", parts=("params0",))


def test_forward(numpy_b):
    assert whole(check_forward(numpy_b)) == result(
        "forward", "pass", "agrees", 0.0, 6.277632325075166e-13, script="probe-n", parts=("forward",))
    assert whole(check_forward(quick(ForwardOff))) == result(
        "forward", "fail", "DISAGREES: outputs differ by 0.001 (allowed 6.3e-13, rounding floor 6.7e-16)", 1e-3,
        6.277632325075166e-13, where=Where("forward"), script="probe-n", parts=("forward",))


def test_loss(numpy_b):
    assert whole(check_loss(numpy_b)) == result(
        "loss", "pass", "agrees", 0.0, 5.166949290611683e-13, script="probe-n", parts=("loss0",))
    assert whole(check_loss(quick(LossOff))) == result(
        "loss", "fail", "DISAGREES: loss differs by 0.001 (allowed 5.2e-13, rounding floor 6.7e-16)", 1e-3,
        5.166949290611683e-13, where=Where("loss"), script="probe-n", parts=("loss0",))


def test_gradients(numpy_b):
    assert whole(check_gradients(numpy_b)) == result(
        "gradients", "pass", "agrees", 0.0, 7.122747363700835e-13, script="probe-n", parts=("gradients",))
    assert whole(check_gradients(quick(GradientsOff))) == result(
        "gradients", "fail", "DISAGREES: gradients differ by 0.001 (allowed 7.1e-13, rounding floor 4.4e-16)", 1e-3,
        7.122747363700835e-13, where=Where("gradient", 0, ["b0"]), script="probe-n", parts=("gradients",))


def test_a_probe_the_constructor_declines_is_named_and_the_other_judged():
    assert whole(check_forward(quick(NoAdam))) == result(
        "forward", "pass", "agrees", 0.0, 6.277632325075166e-13, "not run: probe-k: no Adam here (its constructor "
        "declines)", script="probe-n", parts=("forward",))


def test_probes_all_declined_skip_with_every_reason():
    assert skip_message(check_forward, quick(DeclinesAll)) == (
        "unsupported: probe-n: declines every spec (its constructor declines); "
        "probe-k: declines every spec (its constructor declines)")


def test_update_sgd_runs_seed_numpys_network_only(numpy_b):
    passing = result("update_sgd", "pass", "agrees", 0.0, 5.166949290611683e-13, script="probe-n", parts=("train",))
    assert whole(check_update_sgd(numpy_b)) == passing
    assert whole(check_update_sgd(quick(AdamNoBiasCorrection))) == passing  # wrong in Adam only: not its business
    assert whole(check_update_sgd(quick(WrongSign))) == result(
        "update_sgd", "fail", "DISAGREES: params differ by 0.28 (allowed 5e-13, rounding floor 1.1e-16)",
        0.28490985929965973, 4.98112318162185e-13, where=Where("update", 1, ["b1", "W1", "b0", "W0"]), script="probe-n",
        parts=("train",))


# ---------------------------------------------------------------------------------------------------- the detections

MOMENTUM_AGREES = result("update_momentum", "pass", "agrees", 0.0, 8.117591277276249e-13, "momentum form: torch "
                         "(keras also agrees here)", script="momentum", parts=("train",),
                         data={"form": "torch", "consistent": ["torch", "keras"]})


def test_update_momentum_detects_the_form_with_one_other_agreeing(numpy_b):
    assert whole(check_update_momentum(numpy_b)) == MOMENTUM_AGREES


def test_update_momentum_judges_three_updates_not_four():
    """A loss off at update 3 fails it; at update 4, past its window, it passes."""
    assert whole(check_update_momentum(quick(loss_off_at(3)))) == result(
        "update_momentum", "fail", "DISAGREES: loss differs by 0.001 (0.445740586 vs the reference's 0.444740586) "
        "(allowed 8.1e-13, rounding floor 4.4e-16)", 1e-3, 8.117591277276249e-13, "momentum form: none of torch, "
        "keras (closest: torch)", Where("update", 3, [], True), "momentum", parts=("train",),
        data={"form": None, "closest": "torch"})
    assert whole(check_update_momentum(quick(loss_off_at(4)))) == MOMENTUM_AGREES


def test_update_momentum_declared_form_among_those_that_agree():
    assert whole(check_update_momentum(quick(DeclaresKeras))) == result(
        "update_momentum", "pass", "agrees", 4.163336342344337e-17, 5.401649426267867e-13, "momentum form: keras "
        "(torch also agrees here)", script="momentum", conventions=Conventions("keras", "keras", "probs"),
        parts=("train",), data={"form": "keras", "consistent": ["torch", "keras"]})


def test_update_adam_detects_the_form_with_two_others_agreeing(numpy_b):
    assert whole(check_update_adam(numpy_b)) == result(
        "update_adam", "pass", "agrees", 0.0, 5.824343370844251e-13, "adam form: textbook (torch, optax also agree "
        "here)", script="probe-k", parts=("train",), data={"form": "textbook", "consistent": ["torch", "optax",
                                                                                              "textbook"]})


def test_update_adam_names_a_declared_form_that_disagrees():
    assert whole(check_update_adam(quick(DeclaresKeras))) == result(
        "update_adam", "pass", "agrees", 2.220446049250313e-16, 5.824343370844251e-13, "adam form: torch (optax, "
        "textbook also agree here); it declares 'keras', which disagrees", script="probe-k",
        conventions=Conventions("torch", "keras", "probs"), parts=("train",),
        data={"form": "torch", "consistent": ["torch", "optax", "textbook"]})


def test_update_adam_undeclared_says_nothing_of_a_declaration():
    assert whole(check_update_adam(quick(reference_in(adam="torch")))) == result(
        "update_adam", "pass", "agrees", 0.0, 5.824343370844251e-13, "adam form: torch (optax, textbook also agree "
        "here)", script="probe-k", conventions=Conventions(), parts=("train",),
        data={"form": "torch", "consistent": ["torch", "optax", "textbook"]})


def test_update_adam_no_form_agrees_closest_by_distance():
    assert whole(check_update_adam(quick(AdamNoBiasCorrection))) == result(
        "update_adam", "fail", "DISAGREES: params differ by 0.0022 (allowed 5e-13, rounding floor 1.4e-17)",
        0.0021622566710527424, 4.973692463737003e-13, "adam form: none of torch, keras, optax, keras-torch, textbook "
        "(closest: textbook)", Where("update", 1, ["b0", "W1", "b2", "b1", "W2", "W0"]), "probe-k", parts=("train",),
        data={"form": None, "closest": "textbook"})


@pytest.mark.parametrize("check, cid, op, script, forms, declared, call", [
    (check_update_momentum, "update_momentum", "momentum", "momentum", "torch, keras", "keras",
     "train(steps=8) after 0 steps"),
    (check_update_adam, "update_adam", "adam", "probe-k", "torch, keras, optax, keras-torch, textbook", "optax",
     "train(steps=3) after 0 steps"),
    (check_loss_bce, "loss_bce", "bce", "bce", "probs, logits, optax, keras-jax, keras-torch", "optax",
     "train(steps=1) after 0 steps")], ids=["momentum", "adam", "bce"])
def test_detection_when_every_form_fails_alike_the_closest_is_the_declared(check, cid, op, script, forms, declared,
                                                                            call):
    """train() raises: every form fails at the same place by the same measure; the tie goes to the declared form
    (not the first of the operation's forms)."""
    parts = ("loss0", "gradients", "train") if op == "bce" else ("train",)
    assert whole(check(quick(TrainRaises))) == result(
        cid, "fail", f"error: {call} raised RuntimeError: boom", math.inf, 0.0,
        f"{op} form: none of {forms} (closest: {declared})", Where("error"), script,
        conventions=Conventions("optax", "keras", "optax"), parts=parts, data={"form": None, "closest": declared})


def test_loss_bce_detects_the_form(numpy_b):
    assert whole(check_loss_bce(numpy_b)) == result(
        "loss_bce", "pass", "agrees", 0.0, 3.9884038779148206e-12, "bce form: logits (optax also agrees here)",
        script="bce", parts=("loss0", "gradients", "train"), data={"form": "logits", "consistent": ["logits",
                                                                                                     "optax"]})


def test_loss_bce_a_form_alone():
    assert whole(check_loss_bce(quick(reference_in(bce="probs")))) == result(
        "loss_bce", "pass", "agrees", 0.0, 3.988531447344134e-12, "bce form: probs", script="bce",
        conventions=Conventions(), parts=("loss0", "gradients", "train"), data={"form": "probs",
                                                                                "consistent": ["probs"]})


def test_loss_bce_names_a_declared_form_that_disagrees():
    assert whole(check_loss_bce(quick(DeclaresKeras))) == result(
        "loss_bce", "pass", "agrees", 0.0, 3.9884038779148206e-12, "bce form: logits (optax also agrees here); it "
        "declares 'probs', which disagrees", script="bce", conventions=Conventions("torch", "keras", "logits"),
        parts=("loss0", "gradients", "train"), data={"form": "logits", "consistent": ["logits", "optax"]})


@pytest.mark.parametrize("cls, verdict, diff, allowed, where, closest", [
    # wrong in loss() alone: in probs, whose gradients differ anyway, it fails later (at the gradients): closer
    (LossOff, "DISAGREES: gradients differ by 46 (allowed 2.2e-11, rounding floor 0.0056)", 46.1117811063333,
     2.1528970712010807e-11, Where("gradient", 0, ["b0", "b1", "W1", "W2", "b2"]), "probs"),
    (GradientsOff, "DISAGREES: gradients differ by 0.001 (allowed 2e-11, rounding floor 4.7e-13)", 1e-3,
     2.034823131174116e-11, Where("gradient", 0, ["b0"]), "optax"),
    (WrongSign, "DISAGREES: params differ by 0.002 (allowed 9.3e-11, rounding floor 0)", 0.0019999999950854885,
     9.252829680928686e-11, Where("update", 1, ["W0", "W1", "b0", "b1", "W2", "b2"]), "logits"),
], ids=["loss", "gradients", "train"])
def test_loss_bce_judges_loss_gradients_and_the_update(cls, verdict, diff, allowed, where, closest):
    assert whole(check_loss_bce(quick(cls))) == result(
        "loss_bce", "fail", verdict, diff, allowed, "bce form: none of probs, logits, optax, keras-jax, keras-torch "
        f"(closest: {closest})", where, "bce", conventions=Conventions("textbook", "torch", closest),
        parts=("loss0", "gradients", "train"), data={"form": None, "closest": closest})


@pytest.mark.parametrize("check, supports, why", [
    (check_update_momentum, {"optimizers": ("sgd",)}, "momentum is not among its declared optimizers"),
    (check_update_adam, {"optimizers": ("sgd", "momentum")}, "adam is not among its declared optimizers"),
    (check_loss_bce, {"losses": ("mse",)}, "bce is not among its declared losses"),
    (check_loss_bce, {"output_activations": ("linear", "tanh")}, "sigmoid is not among its declared "
                                                                 "output_activations"),
], ids=["momentum", "adam", "bce-loss", "bce-output"])
def test_detection_skips_what_the_subject_does_not_declare(check, supports, why):
    assert skip_message(check, quick(supporting(**supports))) == f"unsupported: {why}"


# ------------------------------------------------------------------------------ minibatches, determinism, continuation

def test_minibatch_order(numpy_b):
    assert whole(check_minibatch_order(numpy_b)) == result(
        "minibatch_order", "pass", "agrees", 0.0, 8.117591277276249e-13, script="momentum", parts=("train",))
    assert whole(check_minibatch_order(quick(TruncatedBatches))) == result(
        "minibatch_order", "fail", "DISAGREES: params differ by 0.078 (allowed 5.3e-13, rounding floor 2.2e-16)",
        0.07788826566685633, 5.257376688900379e-13, where=Where("update", 2, ["b1", "W1", "b0", "W0"], True),
        script="momentum", parts=("train",))


def test_minibatch_order_skips_full_batch_only():
    assert skip_message(check_minibatch_order, quick(supporting(batch_sizes=(None, 4)))) == (
        "unsupported: no batch size below 4 among its declared batch_sizes")


def test_determinism_a_split_run_that_matches(numpy_b):
    assert whole(check_determinism(numpy_b)) == result(
        "determinism", "pass", "bit-identical", 0.0, 0.0, "8 steps in a second fresh instance (train(3) then "
        "train(5)), same bits", script="momentum", conventions=None)


def test_determinism_a_split_run_that_differs_then_a_second_whole_run():
    """Wrong only across train() calls: the split run differs, a second whole run is the same bits."""
    assert whole(check_determinism(quick(LossOffAfterFirstCall))) == result(
        "determinism", "pass", "bit-identical", 0.0, 0.0, "a second run from the same weights: 8 steps, same bits",
        script="momentum", conventions=None)


def test_determinism_fails_where_no_two_runs_agree():
    assert whole(check_determinism(quick(loss_by_instance()))) == result(
        "determinism", "fail", "a second run from the same weights differs by 0.5 (allowed 0: the contract is bit for "
        "bit)", 0.5, 0.0, where=Where("update", 2, [], True), script="momentum-again", parts=("train",),
        data={"pair": ["momentum", "momentum-again"]})


def test_continuation_both_pairs(numpy_b):
    assert whole(check_continuation(numpy_b)) == result(
        "continuation", "pass", "bit-identical", 0.0, 0.0, "train(3) then train(5): 8 steps, same bits; Adam: "
        "train(1) then train(2): 3 steps, same bits", script="momentum", conventions=None)


def test_continuation_names_the_pair_its_constructor_declines():
    assert whole(check_continuation(quick(NoAdam))) == result(
        "continuation", "pass", "bit-identical", 0.0, 0.0, "train(3) then train(5): 8 steps, same bits; not run: "
        "no Adam here (its constructor declines)", script="momentum", conventions=None)


def test_continuation_without_adam_declared_runs_the_momentum_pair_alone():
    assert whole(check_continuation(quick(supporting(optimizers=("sgd", "momentum"))))) == result(
        "continuation", "pass", "bit-identical", 0.0, 0.0, "train(3) then train(5): 8 steps, same bits",
        script="momentum", conventions=None)


def test_continuation_reports_the_first_pair_that_differs():
    """Both pairs differ (momentum at update 4, Adam at update 2): the momentum pair is reported."""
    assert whole(check_continuation(quick(LossOffAfterFirstCall))) == result(
        "continuation", "fail", "train(3) then train(5) differs by 0.25 (allowed 0: the contract is bit for bit)",
        0.25, 0.0, where=Where("update", 4, [], True), script="momentum-split", parts=("train",),
        data={"pair": ["momentum", "momentum-split"]})


def test_continuation_skips_with_the_constructors_reason():
    assert skip_message(check_continuation, quick(DeclinesAll)) == (
        "unsupported: declines every spec (its constructor declines)")


def test_continuation_skips_what_it_cannot_run():
    """An output activation and a loss that never pair up: neither script is supported."""
    b = quick(supporting(output_activations=("linear",), losses_by_output={"sigmoid": ["bce"]}))
    assert skip_message(check_continuation, b) == (
        "unsupported: mse on a linear output is not among its declared losses_by_output")


# ---------------------------------------------------------------- _identical and _identical_result on hand-made runs

NAN = math.nan
SGD_SPEC = get_preset("seed-numpy").replace(steps=3)  # plain SGD on MSE: its conventions need no detection
P = [(np.array([[0.5, -0.25]]), np.array([0.125, 0.0])), (np.array([[1.0], [2.0]]), np.array([-1.0]))]


def params(**changes):
    """P with the arrays named (W0, b0, W1, b1) moved by the amounts given."""
    out = [(W.copy(), b.copy()) for W, b in P]
    for name, by in changes.items():
        out[int(name[1])][name[0] == "b"][...] += by
    return out


def pair(one: Record, two: Record, checkpoints=(1, 2), calls=(3,)) -> tuple[Battery, Script, Script]:
    """A battery whose runs of scripts "one" and "two" are the records given (nothing is run)."""
    b = quick(NumpyMLP)
    s, other = (Script(k, SGD_SPEC, P, False, calls, checkpoints) for k in ("one", "two"))
    b.records.update(one=one, two=two)
    return b, s, other


def run(loss=(0.5, 0.25, 0.125), **checkpoints) -> Record:
    ks = {1: params(), 2: params()}
    ks.update({int(k[1:]): v for k, v in checkpoints.items()})
    return Record(loss=np.array(loss), checkpoints=ks)


@pytest.mark.parametrize("one, two, found", [
    (run(), run(), None),
    (run(k1=[(np.zeros((2, 0)), np.zeros(0))]), run(k1=[(np.zeros((2, 0)), np.zeros(0))]), None),  # empty arrays
    (run(), run(loss=(0.5, 0.5, 0.25)), (0.25, 2, [])),  # the loss of update 2 first, then 3; params the same
    (run(), run(k2=params(b0=0.5)), (0.5, 2, ["b0"])),  # update 1 the same, update 2's params differ
    (run(), run(k2=params(W0=-0.0625, b1=0.25)), (0.25, 2, ["W0", "b1"])),  # every array that differs
    (run(), run(loss=(0.5, 0.25, 0.375), k2=params(W1=0.0625)), (0.25, 2, ["W1"])),  # |Δ| of the loss, step of W1
    (run(), run(loss=(0.75, 0.25, 0.125), k2=params(W1=0.0625)), (0.25, 1, [])),  # the loss's step, before W1's
    (run(), run(loss=(0.5, 0.25, 0.25)), (0.125, 3, [])),  # update 3 has no checkpoint: no arrays
    (Record(error="boom"), run(), (math.inf, 0, [])),
    (run(), Record(error="boom"), (math.inf, 0, [])),
    (run(loss=(0.5, NAN, NAN), k2=params(b1=NAN)), run(loss=(0.5, NAN, NAN), k2=params(b1=NAN)), None),  # NaN, NaN
    (run(), run(loss=(0.5, 0.25, NAN)), (math.inf, 3, [])),  # a NaN beside a number
    (run(k2=params(W0=NAN)), run(loss=(0.5, 0.25, 0.0), k2=params(W0=NAN, b0=-0.0625)), (0.125, 2, ["b0"])),
    (run(), run(loss=(0.5, 0.25, -math.inf), k2=params(W1=math.inf)), (math.inf, 2, ["W1"])),
], ids=["same", "empty-arrays", "loss", "params", "arrays", "loss-and-params", "loss-first", "no-checkpoint",
        "error-one", "error-two", "nan-both", "nan-one", "nan-both-and-a-number", "inf"])
def test_identical(one, two, found):
    assert _identical(*pair(one, two)) == found


def test_identical_runs_of_no_steps():
    assert _identical(*pair(Record(), Record(), checkpoints=(), calls=())) is None


def test_identical_result_same_bits():
    b, s, other = pair(run(), run())
    assert whole(_identical_result("cid", b, s, other, "what")) == result(
        "cid", "pass", "bit-identical", 0.0, 0.0, "what: 3 steps, same bits", script="one", conventions=None)


@pytest.mark.parametrize("one, two", [(Record(error="boom"), run()), (run(), Record(error="boom"))],
                         ids=["first", "second"])
def test_identical_result_an_error_in_either_run(one, two):
    b, s, other = pair(one, two)
    assert whole(_identical_result("cid", b, s, other, "what")) == result(
        "cid", "fail", "error: boom", None, None, where=Where("error"), script="two", conventions=None)


@pytest.mark.parametrize("two, verdict, diff, where", [
    (run(k2=params(b0=0.5)), "what differs by 0.5 (allowed 0: the contract is bit for bit)", 0.5,
     Where("update", 2, ["b0"], False)),
    (run(loss=(0.5, 0.5, 0.125)), "what differs by 0.25 (allowed 0: the contract is bit for bit)", 0.25,
     Where("update", 2, [], True)),  # the loss alone
], ids=["params", "loss"])
def test_identical_result_differs(two, verdict, diff, where):
    b, s, other = pair(run(), two)
    assert whole(_identical_result("cid", b, s, other, "what")) == result(
        "cid", "fail", verdict, diff, 0.0, where=where, script="two", parts=("train",), data={"pair": ["one", "two"]})


# ------------------------------------------------------------------------------------------------ the preset windows

def test_steps_10_and_steps_1000_on_the_presets(numpy_b):
    assert whole(check_steps_10(numpy_b)) == result(
        "steps_10", "pass", "agrees", 0.0, 4.978140204866331e-13, script="seed-numpy", parts=("train",))
    assert whole(check_steps_1000(numpy_b)) == result(
        "steps_1000", "pass", "agrees", 0.0, 7.256087745876473e-13, script="seed-numpy", parts=("train",))


def test_steps_10_ends_at_update_10():
    """Presets of 11 updates: a loss off at update 10 fails the window; at update 11 it passes."""
    assert whole(check_steps_10(with_presets(quick(loss_off_at(11)), 11))) == result(
        "steps_10", "pass", "agrees", 0.0, 4.978140204866331e-13, script="seed-numpy", parts=("train",))
    assert whole(check_steps_10(with_presets(quick(loss_off_at(10)), 11))) == result(
        "steps_10", "fail", "DISAGREES: loss differs by 0.001 (0.241144691 vs the reference's 0.240144691) (allowed "
        "2.2e-13, rounding floor 1.9e-16)", 1e-3, 2.2383143111686621e-13, where=Where("update", 10, [], True),
        script="seed-numpy", parts=("train",))


def test_steps_1000_ends_at_update_1000():
    """seed-numpy in 1,001 updates: params of a wrong layout after update 1,000 fail the window; after update
    1,001 they pass (a layout is judged without a rounding floor: no jittered reruns of 1,000 steps)."""
    assert whole(check_steps_1000(with_presets(quick(layout_off_at(1_001)), 1_001))) == result(
        "steps_1000", "pass", "agrees", 0.0, 7.256087745876473e-13, script="seed-numpy", parts=("train",))
    assert whole(check_steps_1000(with_presets(quick(layout_off_at(1_000)), 1_001))) == result(
        "steps_1000", "fail", "DISAGREES: History.checkpoints[1000]: W0 has shape (5, 2), the canonical layout is "
        "(2, 5) (fan_in, fan_out)", math.inf, 0.0, where=Where("update", 1_000, []), script="seed-numpy",
        parts=("train",))


def test_preset_window_names_a_preset_its_constructor_declines():
    assert whole(check_steps_10(with_presets(quick(NoAdam), 10))) == result(
        "steps_10", "pass", "agrees", 0.0, 4.978140204866331e-13, "not run: seed-keras: no Adam here (its "
        "constructor declines)", script="seed-numpy", parts=("train",))


# ------------------------------------------------------------------------------------- float32, activations, losses

def test_float32(numpy_b):
    assert whole(check_float32(numpy_b)) == result(
        "float32", "pass", "agrees", 0.0, 1.2555264234542846e-06, script="float32", parts=ALL_PARTS)


@pytest.mark.parametrize("cls, verdict, diff, allowed, where", [
    (ForwardOff, "DISAGREES: outputs differ by 0.001 (allowed 1.3e-06, rounding floor 3.6e-07)", 1e-3,
     1.2555264234542846e-06, Where("forward")),
    (LossOff, "DISAGREES: loss differs by 0.001 (allowed 5.2e-06, rounding floor 2.4e-07)", 1e-3,
     5.166949629783631e-06, Where("loss")),
    (GradientsOff, "DISAGREES: gradients differ by 0.001 (allowed 1.4e-05, rounding floor 3.6e-07)", 1e-3,
     1.4245493412017824e-05, Where("gradient", 0, ["b0"])),
    (WrongSign, "DISAGREES: params differ by 0.28 (allowed 5e-06, rounding floor 6e-08)", 0.28490985929965973,
     4.981123208999634e-06, Where("update", 1, ["b1", "W1", "b0", "W0"])),
], ids=["forward", "loss", "gradients", "train"])
def test_float32_judges_every_part(cls, verdict, diff, allowed, where):
    assert whole(check_float32(quick(cls))) == result(
        "float32", "fail", verdict, pytest.approx(diff, rel=1e-4), allowed, where=where, script="float32",
        parts=ALL_PARTS)


def test_float32_skips():
    assert skip_message(check_float32, quick(NumpyMLP, "float32")) == (
        "the whole battery runs in float32 (--dtype float32)")
    assert skip_message(check_float32, quick(supporting(dtypes=("float64",)))) == (
        "unsupported: float32 is not among its declared dtypes")


def test_activations_losses(numpy_b):
    assert whole(check_activations_losses(numpy_b)) == result(
        "activations_losses", "pass", "agrees", 0.0, 4.544276928225478e-13, script="act-bce", parts=ALL_PARTS)


@pytest.mark.parametrize("cls, verdict, diff, allowed, where", [
    (ForwardOff, "DISAGREES: outputs differ by 0.001 (allowed 4.5e-13, rounding floor 3.3e-16)", 1e-3,
     4.544276928225478e-13, Where("forward")),
    (LossOff, "DISAGREES: loss differs by 0.001 (allowed 5.9e-13, rounding floor 0)", 1e-3, 5.88483990505152e-13,
     Where("loss")),
    (GradientsOff, "DISAGREES: gradients differ by 0.001 (allowed 3.7e-13, rounding floor 4.4e-16)", 1e-3,
     3.6774108739645786e-13, Where("gradient", 0, ["b0"])),
    (WrongSign, "DISAGREES: params differ by 0.74 (allowed 5e-13, rounding floor 2.2e-16)", 0.7354821747929159,
     4.988003164131714e-13, Where("update", 1, ["W3", "W2", "b3", "b2", "b1", "W1", "b0", "W0"])),
], ids=["forward", "loss", "gradients", "train"])
def test_activations_losses_judges_every_part(cls, verdict, diff, allowed, where):
    assert whole(check_activations_losses(quick(cls))) == result(
        "activations_losses", "fail", verdict, diff, allowed, where=where, script="act-bce", parts=ALL_PARTS)


def test_activations_losses_names_the_spec_it_does_not_support():
    b = quick(supporting(activations=("tanh", "sigmoid", "relu"), output_activations=("sigmoid", "relu")))
    assert whole(check_activations_losses(b)) == result(
        "activations_losses", "pass", "agrees", 0.0, 1.2893665105282264e-13, "not run: act-bce: linear is not "
        "among its declared activations", script="act-mse", parts=ALL_PARTS)


def test_activations_losses_skips_with_every_reason():
    b = quick(supporting(losses=("mse",), activations=("tanh", "relu", "linear")))
    assert skip_message(check_activations_losses, b) == (
        "unsupported: act-bce: bce is not among its declared losses; "
        "act-mse: sigmoid is not among its declared activations")


# ------------------------------------------------------------------------------------------- the presets in full

def test_presets_in_full_at_the_quick_level(numpy_b):
    assert skip_message(check_preset_seed_numpy, numpy_b) == (
        "quick level: runs 1,000 of its 10,000 steps (steps_1000); the full level runs all")
    assert whole(check_preset_seed_keras(numpy_b)) == result(  # 1,000 steps: its full length
        "preset_seed_keras", "pass", "agrees", 0.0, 9.595989713488735e-13, "final loss 0.0263, 4/4 correct",
        script="seed-keras", parts=("train",))


RIGHT = np.array([[0.0], [1.0], [1.0], [0.0]])  # XOR's targets: 4/4 correct
THREE_RIGHT = np.array([[0.0], [1.0], [1.0], [0.75]])  # the last row on the wrong side of 0.5


def full_run(key: str, final_loss: float, outputs=RIGHT, steps: int | None = None, layout_ok: bool = True):
    """A battery whose run of preset `key` is hand-made: `steps` (default: all) updates, the same losses and last
    params as the reference's, then `final_loss` and `outputs` (none of it run)."""
    b = quick(NumpyMLP)
    spec = get_preset(key)
    steps = steps or spec.steps
    b.scripts[key] = s = Script(key, spec, init_params(spec), False, (steps,), (steps,))
    b.refs[(key, steps, b.conventions(spec))] = Record(loss=np.full(steps, 0.25), checkpoints={steps: P})
    b.records[key] = Record(loss=np.full(steps, 0.25), checkpoints={steps: P if layout_ok else P[:1]},
                            final_loss=final_loss, final_outputs=outputs)
    assert b.script(key) is s
    return b


def test_preset_full_one_step_short_is_skipped():
    assert skip_message(check_preset_seed_numpy, full_run("seed-numpy", 0.0, steps=9_999)) == (
        "quick level: runs 9,999 of its 10,000 steps (steps_1000); the full level runs all")


@pytest.mark.parametrize("final_loss, outputs, status, verdict, detail", [
    (np.nextafter(1e-6, 0), RIGHT, "pass", "agrees", "final loss 1e-06, 4/4 correct"),  # just under the threshold
    (1e-6, RIGHT, "fail", "agrees, but did not converge: final loss 1e-06 (threshold 1e-06), 4/4 correct",
     "final loss 1e-06, 4/4 correct"),  # at it
    (1e-7, THREE_RIGHT, "fail", "agrees, but did not converge: final loss 1e-07 (threshold 1e-06), 3/4 correct",
     "final loss 1e-07, 3/4 correct"),  # under it, one row wrong
], ids=["under", "at", "three-right"])
def test_preset_seed_numpy_converged(final_loss, outputs, status, verdict, detail):
    """In full and agreeing (10,000 hand-made steps): converged when the final loss is under 1e-6 (MSE's threshold)
    and every row is right."""
    assert whole(check_preset_seed_numpy(full_run("seed-numpy", final_loss, outputs))) == result(
        "preset_seed_numpy", status, verdict, 0.0, 1e-12, detail, script="seed-numpy", parts=("train",))


def test_preset_seed_keras_at_bces_threshold():
    assert whole(check_preset_seed_keras(full_run("seed-keras", 0.05))) == result(
        "preset_seed_keras", "fail", "agrees, but did not converge: final loss 0.05 (threshold 0.05), 4/4 correct",
        0.0, 1e-12, "final loss 0.05, 4/4 correct", script="seed-keras", parts=("train",))


def test_preset_full_a_disagreement_says_nothing_of_convergence():
    b = full_run("seed-numpy", 0.0, layout_ok=False)
    assert whole(check_preset_seed_numpy(b)) == result(
        "preset_seed_numpy", "fail", "DISAGREES: History.checkpoints[10000] has 1 layers, the spec has 2", math.inf,
        0.0, where=Where("update", 10_000, []), script="seed-numpy", parts=("train",))


# ------------------------------------------------------------------------------------------------- random specs

def test_random_specs(numpy_b):
    assert whole(check_random_specs(numpy_b)) == result(
        "random_specs", "pass", "agrees", 0.0, 3.9440274614983865e-14, "1 example: 1 agree (the closest call shown; "
        "ill-conditioned and diverging runs are set aside)", conventions=None, parts=ALL_PARTS, data={"counts": {
            "agree": 1, "within rounding noise": 0, "ill-conditioned": 0, "diverged": 0, "declined": 0}})


# ------------------------------------------------------------------------------------------------------- helpers

@pytest.mark.parametrize("outcome, distance", [
    (Outcome(AGREES, 1.0, 4.0), (-5, 0, 0, 0.25)),  # agrees: closer than any failure
    (Outcome(DISAGREES, 3.0, 2.0, where=Where("update", 3, ["W0"], True)), (-4, -3, 1, 1.5)),
    (Outcome(DISAGREES, 3.0, 2.0, where=Where("update", 3, ["W0"], False)), (-4, -3, 0, 1.5)),
    (Outcome(DISAGREES, 1.0, 4.0, where=Where("gradient", 0, ["b1"])), (-3, 0, 0, 0.25)),
    (Outcome(DISAGREES, 1.0, 4.0, where=Where("loss")), (-2, 0, 0, 0.25)),
    (Outcome(DISAGREES, 1.0, 4.0, where=Where("forward")), (-1, 0, 0, 0.25)),
    (Outcome(DISAGREES, 1.0, 4.0, where=Where("construction")), (0, 0, 0, 0.25)),
    (Outcome(DISAGREES, math.inf, 0.0, where=Where("error")), (1, 0, 0, math.inf)),
    (Outcome(DISAGREES, 1.0, 4.0, where=Where("elsewhere", 2)), (1, -2, 0, 0.25)),  # a part it does not know: last
], ids=["agrees", "update-loss", "update", "gradient", "loss", "forward", "construction", "error", "unknown"])
def test_distance(outcome, distance):
    assert _distance(outcome) == distance


def test_describe_is_the_first_paragraph_on_one_line(monkeypatch):
    assert describe("forward") == ("forward() on the four XOR rows and 12 other points, both networks, against the "
                                   "reference's outputs.")
    assert describe("construction") == (
        "Built from canonical params, params() returns them: shapes (fan_in, fan_out), values, nothing transposed "
        "(on seed-numpy's network and on seed-keras', whose square hidden layer would hide a transposition).")

    def two_paragraphs(b):
        """First line,
        second line.

        Another paragraph."""

    def undocumented(b):
        pass

    monkeypatch.setitem(CHECKS, "two", two_paragraphs)
    monkeypatch.setitem(CHECKS, "none", undocumented)
    assert describe("two") == "First line, second line."
    assert describe("none") == ""


def test_precision_checks_are_those_judged_against_the_reference():
    assert precision_checks() == ["forward", "loss", "gradients", "update_sgd", "update_momentum", "update_adam",
                                  "loss_bce", "minibatch_order", "steps_10", "steps_1000", "activations_losses",
                                  "preset_seed_numpy", "preset_seed_keras", "random_specs"]
