"""The checks, one function each, in the order they run (small to large); each docstring's first line says what it
measures. A check takes the battery and returns a CheckResult, or raises SkipCheck."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable

import numpy as np

from xor_rosetta.compare import DEFAULT_THRESHOLD, accuracy
from xor_rosetta.data import xor_data
from xor_rosetta.presets import get_preset
from xor_rosetta.reference import FORMS
from xor_rosetta.checks.judging import FAIL, PASS, CheckResult, SkipCheck, Where, names, result_from
from xor_rosetta.checks.scripts import ACT_SPECS

if TYPE_CHECKING:
    from xor_rosetta.checks.battery import Battery

RANDOM_EXAMPLES = {"full": 20, "quick": 1}  # Hypothesis examples of random_specs
RANDOM_STEPS = 20


def _probes(b: Battery, parts, cid: str, keys=("probe-n", "probe-k"), upto: int | None = None) -> CheckResult:
    """The scripts `keys` (the two probes by default) against the reference on `parts`, up to update `upto`
    (default: all); those the subject does not support are skipped and named."""
    outcomes, skipped = [], []
    for key in keys:
        s = b.script(key)
        why = b.subject.unsupported(s.spec)
        if why:
            skipped.append(f"{key}: {why}")
            continue
        try:
            outcomes.append(b.against(s, parts, upto=upto))
        except SkipCheck as declined:  # its constructor declined this script's spec
            skipped.append(f"{key}: {str(declined).removeprefix('unsupported: ')}")
    if not outcomes:
        raise SkipCheck("unsupported: " + "; ".join(skipped))
    return result_from(cid, outcomes, "; ".join(f"not run: {w}" for w in skipped))


def check_construction(b: Battery) -> CheckResult:
    """Built from canonical params, params() returns them: shapes (fan_in, fan_out), values, nothing transposed
    (on seed-numpy's network and on seed-keras', whose square hidden layer would hide a transposition)."""
    return _probes(b, ("params0",), "construction")


def check_forward(b: Battery) -> CheckResult:
    """forward() on the four XOR rows and 12 other points, both networks, against the reference's outputs."""
    return _probes(b, ("forward",), "forward")


def check_loss(b: Battery) -> CheckResult:
    """loss() at the probe's weights: MSE on seed-numpy's network, BCE on seed-keras'."""
    return _probes(b, ("loss0",), "loss")


def check_gradients(b: Battery) -> CheckResult:
    """gradients(): dW and db of every layer, both networks, canonical layout (a failure names the layer)."""
    return _probes(b, ("gradients",), "gradients")


def check_update_sgd(b: Battery) -> CheckResult:
    """One plain SGD update on seed-numpy's network: the params after it, every layer."""
    return _probes(b, ("train",), "update_sgd", ("probe-n",))


def check_update_momentum(b: Battery) -> CheckResult:
    """Three SGD updates with momentum (lr 0.05, momentum 0.9, batches of 3 rows); detects the momentum form."""
    return _detection(b, "update_momentum", "momentum", "momentum", ("train",), upto=3)


def check_update_adam(b: Battery) -> CheckResult:
    """Three Adam updates on seed-keras' network (lr 1e-3, epsilon 1e-7); detects the Adam form."""
    return _detection(b, "update_adam", "adam", "probe-k", ("train",))


def check_loss_bce(b: Battery) -> CheckResult:
    """BCE with one row far on the wrong side: loss, gradients and one update; detects the BCE form."""
    return _detection(b, "loss_bce", "bce", "bce", ("loss0", "gradients", "train"))


def _detection(b: Battery, cid: str, op: str, key: str, parts, upto: int | None = None) -> CheckResult:
    """Judge the script against the reference in every form of `op` the reference models (FORMS[op]); the check
    passes in the form that agrees (the declared one, if it is among those that do)."""
    s = b.script(key)
    b.needs(s.spec)
    uses = {"adam": s.spec.optimizer.name == "adam", "momentum": bool(s.spec.optimizer.momentum),
            "bce": s.spec.loss == "bce"}
    if not uses[op]:
        sup = b.subject.supports
        why = {"adam": "adam is not among its declared optimizers", "momentum": "momentum is not among its "
               "declared optimizers", "bce": "bce is not among its declared losses" if "bce" not in sup["losses"]
               else "sigmoid is not among its declared output_activations"}[op]
        raise SkipCheck(f"unsupported: {why}")
    form, consistent, outcomes = b.detect(op, s, parts, upto)
    others = [f for f in consistent if f != form]
    if form is not None:
        detail = f"{op} form: {form}" + (f" ({', '.join(others)} also agree{'s' if len(others) == 1 else ''} here)"
                                         if others else "")
        declared = b.detected[op]["declared"]
        if declared and declared not in consistent:
            detail += f"; it declares {declared!r}, which disagrees"
        return result_from(cid, [outcomes[form]], detail, {"form": form, "consistent": consistent})
    declared = b.detected[op]["declared"]
    closest = min(outcomes, key=lambda f: _distance(outcomes[f][1]) + (f != declared,))  # a tie: the declared form
    return result_from(cid, [outcomes[closest]], f"{op} form: none of {', '.join(FORMS[op])} (closest: {closest})",
                       {"form": None, "closest": closest})


_REACHED = {"error": -1, "construction": 0, "forward": 1, "loss": 2, "gradient": 3, "update": 4}


def _distance(o) -> tuple:
    """How far a disagreeing outcome is from agreeing, comparing like with like: the later its first failure (part,
    then step; at a step, a failing loss comes before the update), the closer; the ratio |Δ| / tolerance only
    breaks ties between failures of the same measure."""
    w = o.where
    if w is None:
        return (-5, 0, 0, o.ratio)
    return (-_REACHED.get(w.part, -1), -w.step, int(w.loss), o.ratio)


def check_minibatch_order(b: Battery) -> CheckResult:
    """Eight updates on batches of 3 rows: each step's rows are the window batch_rows(step, 3, 4) of the contract."""
    s = b.script("momentum")
    b.needs(s.spec)
    if s.spec.batch_size is None:
        raise SkipCheck("unsupported: no batch size below 4 among its declared batch_sizes")
    return result_from("minibatch_order", [b.against(s, ("train",))])


def check_determinism(b: Battery) -> CheckResult:
    """The same script on a second fresh instance: bit-identical losses and params (a NaN where the other run has a
    NaN counts as the same)."""
    s = b.script("momentum")
    b.needs(s.spec)
    if _identical(b, s, b.script("momentum-split")) is None:  # a split run that matches bit for bit: deterministic
        return CheckResult("determinism", PASS, "bit-identical", 0.0, 0.0, f"{s.steps} steps in a second fresh "
                           f"instance (train(3) then train(5)), same bits", None, s.key)
    return _identical_result("determinism", b, s, b.script("momentum-again"), "a second run from the same weights")


def check_continuation(b: Battery) -> CheckResult:
    """train() continues where it stopped: 3 steps then 5 give bit for bit what 8 give (momentum, batches of 3);
    1 then 2 what 3 give (Adam)."""
    results, why = [], ""
    for key, split, what in (("momentum", "momentum-split", "train(3) then train(5)"),
                             ("probe-k", "adam-split", "Adam: train(1) then train(2)")):
        s = b.script(key)
        if b.subject.unsupported(s.spec) is None and (key == "momentum" or s.spec.optimizer.name == "adam"):
            try:
                results.append(_identical_result("continuation", b, s, b.script(split), what))
            except SkipCheck as declined:  # its constructor declined this script's spec
                why = str(declined)
    if not results:
        raise SkipCheck(why if why else "unsupported: " + b.subject.unsupported(b.script("momentum").spec))
    failed = [r for r in results if r.status == FAIL]
    if failed:
        return failed[0]
    return CheckResult("continuation", PASS, "bit-identical", 0.0, 0.0, "; ".join(
        [r.detail for r in results] + ([f"not run: {why.removeprefix('unsupported: ')}"] if why else [])), None,
        results[0].script)


def _unequal(a, c) -> np.ndarray:
    """Where two arrays differ, bit for bit as the contract reads: a NaN beside a NaN is the same value."""
    return (a != c) & ~(np.isnan(a) & np.isnan(c))


def _gap(a, c) -> float:
    """The largest |a - c| where they differ; inf where a NaN stands beside a number."""
    u = _unequal(a, c)
    d = np.abs(a[u] - c[u])
    return float(np.max(np.where(np.isnan(d), np.inf, d), initial=0.0))


def _identical(b, s, other) -> tuple | None:
    """None when two runs of the same steps agree bit for bit; else (|Δ|, first step, arrays that differ)."""
    one, two = b.record(s), b.record(other)
    if one.error or two.error:
        return math.inf, 0, []
    diff, step = _gap(one.loss, two.loss), None
    bad = np.flatnonzero(_unequal(one.loss, two.loss))
    if bad.size:
        step = int(bad[0]) + 1
    for k in s.checkpoints:
        pairs = list(zip(names(one.checkpoints[k]), names(two.checkpoints[k])))
        diff = max([diff] + [_gap(a, c) for (_, a), (_, c) in pairs])
        if any(_unequal(a, c).any() for (_, a), (_, c) in pairs) and (step is None or k < step):
            step = k
    if step is None:
        return None
    arrays = [n for (n, a), (_, c) in zip(names(one.checkpoints[step]), names(two.checkpoints[step]))
              if _unequal(a, c).any()] if step in one.checkpoints else []
    return diff, step, arrays


def _identical_result(cid, b, s, other, what) -> CheckResult:
    found = _identical(b, s, other)
    if found is None:
        return CheckResult(cid, PASS, "bit-identical", 0.0, 0.0, f"{what}: {s.steps} steps, same bits", None, s.key)
    error = b.record(s).error or b.record(other).error
    if error:
        return CheckResult(cid, FAIL, f"error: {error}", None, None, "", Where("error"), other.key)
    diff, step, arrays = found
    return CheckResult(cid, FAIL, f"{what} differs by {diff:.2g} (allowed 0: the contract is bit for bit)", diff, 0.0,
                       "", Where("update", step, arrays, not arrays), other.key, b.conventions(s.spec), ("train",),
                       {"pair": [s.key, other.key]})


def check_steps_10(b: Battery) -> CheckResult:
    """The first 10 steps of both presets: every step's loss and the params after each step."""
    return _preset_window(b, "steps_10", 10)


def check_steps_1000(b: Battery) -> CheckResult:
    """The first 1,000 steps of both presets: every step's loss, the params at 1..10, 100 and 1,000."""
    return _preset_window(b, "steps_1000", 1_000)


def _preset_window(b, cid, n) -> CheckResult:
    return _probes(b, ("train",), cid, keys=("seed-numpy", "seed-keras"), upto=n)


def check_float32(b: Battery) -> CheckResult:
    """The probe in float32 against a float32 reference: forward, loss, gradients and 10 steps."""
    if b.dtype == "float32":
        raise SkipCheck("the whole battery runs in float32 (--dtype float32)")
    s = b.script("float32")
    b.needs(s.spec)
    return result_from("float32", [b.against(s, ("forward", "loss0", "gradients", "train"))])


def check_activations_losses(b: Battery) -> CheckResult:
    """Every activation in a hidden layer, sigmoid and relu outputs (the probe's is linear), BCE and MSE:
    forward, loss, gradients and 10 steps each."""
    return _probes(b, ("forward", "loss0", "gradients", "train"), "activations_losses", keys=ACT_SPECS)


def check_preset_seed_numpy(b: Battery) -> CheckResult:
    """seed-numpy in full (10,000 steps) against the reference, and converged (loss < 1e-6, 4/4)."""
    return _preset_full(b, "preset_seed_numpy", "seed-numpy")


def check_preset_seed_keras(b: Battery) -> CheckResult:
    """seed-keras in full (1,000 Adam steps on BCE) against the reference, and converged (loss < 0.05, 4/4)."""
    return _preset_full(b, "preset_seed_keras", "seed-keras")


def _preset_full(b, cid, key) -> CheckResult:
    s = b.script(key)
    b.needs(s.spec)
    full = get_preset(key).steps
    if s.steps < full:
        raise SkipCheck(f"quick level: runs {s.steps:,} of its {full:,} steps (steps_1000); the full level runs all")
    res = result_from(cid, [b.against(s, ("train",))])
    rec = b.record(s)
    if res.status == PASS:
        x, y = xor_data()
        acc, threshold = accuracy(rec.final_outputs, y), DEFAULT_THRESHOLD[s.spec.loss]
        res.detail = f"final loss {rec.final_loss:.3g}, {round(acc * 4)}/4 correct"
        if not (rec.final_loss < threshold and acc == 1.0):
            res.status, res.verdict = FAIL, f"agrees, but did not converge: final loss {rec.final_loss:.3g} " \
                                            f"(threshold {threshold:g}), {round(acc * 4)}/4 correct"
    return res


def check_random_specs(b: Battery) -> CheckResult:
    """Random specs drawn by Hypothesis (depth, width, activations, loss, optimizer, batch, weights) among the
    supported options: forward, gradients and 20 steps each, judged with each run's rounding floor."""
    from xor_rosetta.checks.randomspecs import run_random
    return run_random(b, RANDOM_EXAMPLES[b.level], RANDOM_STEPS)


CHECKS: dict[str, Callable[[Battery], CheckResult]] = {
    "construction": check_construction,
    "forward": check_forward,
    "loss": check_loss,
    "gradients": check_gradients,
    "update_sgd": check_update_sgd,
    "update_momentum": check_update_momentum,
    "update_adam": check_update_adam,
    "loss_bce": check_loss_bce,
    "minibatch_order": check_minibatch_order,
    "determinism": check_determinism,
    "continuation": check_continuation,
    "steps_10": check_steps_10,
    "steps_1000": check_steps_1000,
    "float32": check_float32,
    "activations_losses": check_activations_losses,
    "preset_seed_numpy": check_preset_seed_numpy,
    "preset_seed_keras": check_preset_seed_keras,
    "random_specs": check_random_specs,
}


JUDGES: dict[str, str] = {  # what each check holds the implementation's answers against
    "construction": "given",  # params() against the weights it was given: no arithmetic, nothing to round
    "determinism": "itself", "continuation": "itself",  # one run of its own against another, bit for bit
    "float32": "float32",  # a float32 run against a float32 reference, whatever the battery's dtype
    **{c: "reference" for c in ("forward", "loss", "gradients", "update_sgd", "update_momentum", "update_adam",
                                "loss_bce", "minibatch_order", "steps_10", "steps_1000", "activations_losses",
                                "preset_seed_numpy", "preset_seed_keras", "random_specs")},
}  # "reference": numbers it computes, against the reference in the battery's dtype, by that dtype's tolerances


assert JUDGES.keys() == CHECKS.keys()


def precision_checks() -> list[str]:
    """The checks that judge the numbers an implementation computes against the reference in the battery's dtype
    (JUDGES "reference"): those a difference of precision in that dtype fails (a declared known difference such
    as float32 arithmetic inside a float64 run), and the only ones."""
    return [c for c in CHECKS if JUDGES[c] == "reference"]


DETECTORS = {"adam": "update_adam", "momentum": "update_momentum", "bce": "loss_bce"}  # op -> the check that
# detects its form, in the order they are detected (each detection judges in the forms found before it)


def describe(cid: str) -> str:
    """What a check measures: the first paragraph of its docstring, on one line."""
    return " ".join((CHECKS[cid].__doc__ or "").strip().split("\n\n")[0].split())
