"""One record against the reference's record by the tolerance policy: where it first fails, by how much, against
which rounding floor; and a check's result from its scripts' outcomes."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from xor_rosetta.compare import judge, max_abs
from xor_rosetta.data import xor_data
from xor_rosetta.interface import Conventions
from xor_rosetta.params import Params
from xor_rosetta.reference import JITTER_RUNS, Float32Inside, Floor, Jitter, Reference, rounding_floor
from xor_rosetta.tolerance import AGREES, DISAGREES, ILL, NOISE, NOISE_FACTOR, WORDS, classify, running_max, tolerance
from xor_rosetta.checks.scripts import EXTRA_INPUTS, Record, Script, run_script

if TYPE_CHECKING:
    from xor_rosetta.checks.battery import Battery


PASS, FAIL, SKIP = "pass", "fail", "skip"


PARTS = ("params0", "forward", "loss0", "gradients", "train")  # in the order a model computes them


PART_WORDS = {"params0": "construction", "forward": "forward", "loss0": "loss", "gradients": "gradient",
              "train": "update"}


@dataclass
class Where:
    """Where a comparison first fails."""
    part: str  # construction | forward | loss | gradient | update | error
    step: int = 0  # 0: at the initial weights; s: in training step s (1-based)
    arrays: list[str] = field(default_factory=list)  # "W0", "b1", ... over their tolerance there, worst first
    loss: bool = False  # update: the loss of step s is off too (or alone)

    def words(self) -> str:
        arrays = ", ".join(self.arrays)
        if self.part == "update":
            what = " and ".join(w for w in ("the loss" if self.loss else "",
                                            f"the update of {arrays}" if arrays else "") if w) or "the params"
            return f"{what} at step {self.step}"
        what = {"construction": "params() right after construction", "forward": "the forward pass",
                "loss": "the loss", "gradient": f"the gradients{' of ' + arrays if arrays else ''}",
                "error": "a call"}[self.part]
        return f"{what} at the initial weights" if self.part != "error" else what

    @property
    def layer(self) -> int | None:
        return int(self.arrays[0][1:]) if self.arrays else None

    def to_dict(self) -> dict:
        return {"part": self.part, "step": self.step, "layer": self.layer, "arrays": self.arrays,
                "loss": self.loss, "words": self.words()}


@dataclass
class Outcome:
    """One script's record against a reference record, by the tolerance policy."""
    status: int = AGREES
    diff: float = 0.0  # the largest difference, absolute (of the part that decided the status)
    allowed: float = 0.0  # its tolerance: rtol * scale
    floor: float | None = None
    words: str = "agrees"
    where: Where | None = None  # None unless DISAGREES (or an error)
    error: str | None = None

    @property
    def ratio(self) -> float:
        return self.diff / self.allowed if self.allowed else (0.0 if self.diff == 0 else math.inf)


def names(params: Params) -> list[tuple[str, np.ndarray]]:
    return [(f"{p}{i}", a) for i, Wb in enumerate(params) for p, a in zip("Wb", Wb)]


def layout_problem(got: Params, want: Params, what: str) -> str | None:
    """A wrong number of layers or a wrong shape, in words (None: the layout matches)."""
    if len(got) != len(want):
        return f"{what} has {len(got)} layers, the spec has {len(want)}"
    for (n, a), (_, b) in zip(names(got), names(want)):
        if a.shape != b.shape:
            kind = "(fan_in, fan_out)" if n[0] == "W" else "(fan_out,)"
            return f"{what}: {n} has shape {a.shape}, the canonical layout is {b.shape} {kind}"
    return None


def array_report(got: Params, want: Params, allowed: float) -> list[str]:
    """The arrays whose |Δ| exceeds `allowed`, worst first."""
    over = [(float(np.max(np.abs(a - b), initial=0.0)), n) for (n, a), (_, b) in zip(names(got), names(want))]
    over = [(d if d == d else math.inf, n) for d, n in over]
    return [n for d, n in sorted(over, key=lambda t: -t[0]) if d > allowed]


def floor_for(battery: "Battery", script: Script, conv: Conventions, rounding: str | None = None) -> Floor:
    """How far one rounding per operation moves the reference on this script (measured once, when needed).

    `rounding`: the dtype whose rounding is modelled, default the script's (one ulp up or down per operation,
    `JITTER_RUNS`). float32 on a float64 script (the float32 policy judging a float64 run, as the diagnosis of float32
    arithmetic does): how far rounding every activation and gradient to float32 moves the float64 reference
    (`reference.Float32Inside`, the model of that known difference), which follows the script's conditioning where a one-ulp float32 jitter would not (a sigmoid
    saturated at 1 - 1e-13 stays clipped when rounded to 1, but a float32 ulp down takes it inside BCE's clip)."""
    rounding = rounding or script.spec.dtype
    key = (script.key, script.steps, conv, rounding)
    if key not in battery.floors:
        if rounding != script.spec.dtype:
            battery.floors[key] = _rounded_floor(battery, script, conv, Float32Inside())
            return battery.floors[key]
        spec, ref = script.spec, battery.reference(script, conv)
        x, y = xor_data(spec.dtype)
        fl = rounding_floor(spec, script.params, conv, ref.history(), script.checkpoints, x, y, steps=script.steps)
        fl.outputs, fl.loss0 = 0.0, 0.0
        inputs = np.vstack([x, EXTRA_INPUTS.astype(spec.dtype)])
        with np.errstate(all="ignore"):
            for seed, sign in JITTER_RUNS if script.probe else ():
                j = Reference(spec, script.params, conv, Jitter(seed, sign))
                fl.outputs = max(fl.outputs, float(np.max(np.abs(j.forward(inputs) - ref.outputs))))
                fl.loss0 = max(fl.loss0, abs(j.loss(x, y) - ref.loss0))
        battery.floors[key] = fl
    return battery.floors[key]


def _rounded_floor(battery: "Battery", script: Script, conv: Conventions, rounding) -> Floor:
    """|rounded - exact| of every part `compare` judges: the script run on the reference with `rounding` as its
    jitter, against the exact reference (a NaN counts as no evidence of rounding: 0)."""
    ref = battery.reference(script, conv)
    fl = Floor(params={k: 0.0 for k in ref.checkpoints}, loss=np.zeros(len(ref.loss)))
    fl.outputs, fl.loss0 = 0.0, 0.0
    j = run_script(lambda s, p: Reference(s, p, conv, rounding), script)
    if j.error is not None or ref.error is not None:
        return fl

    def gap(a, b):
        return float(np.nan_to_num(np.max(np.abs(np.asarray(a) - np.asarray(b)), initial=0.0), nan=0.0))

    if script.probe:
        fl.outputs = fl.forward = gap(j.outputs, ref.outputs)
        fl.loss0 = gap(j.loss0, ref.loss0)
        fl.gradient = max(gap(a, b) for (_, a), (_, b) in zip(names(j.grads), names(ref.grads)))
    fl.params = {k: max(gap(a, b) for (_, a), (_, b) in zip(names(j.checkpoints[k]), names(ref.checkpoints[k])))
                 for k in fl.params}
    fl.loss = np.nan_to_num(np.abs(j.loss - ref.loss), nan=0.0)
    return fl


def compare(battery: "Battery", script: Script, got: Record, want: Record, conv: Conventions, parts,
            policy: str | None = None) -> Outcome:
    """`got` against `want` on `parts`, by the tolerance policy of `policy` (default: the script's dtype).

    Each part is judged in PARTS order; the first that DISAGREES decides where the failure is. The rounding floor
    of the reference (in `conv`), of the policy's dtype (`floor_for`), is measured only when something exceeds its
    tolerance.
    """
    if got.error is not None:
        return Outcome(DISAGREES, math.inf, 0.0, None, f"error: {got.error}", Where("error"), got.error)
    dtype = policy or script.spec.dtype
    tol, worst, floor = tolerance(dtype), None, [None]

    def get_floor():
        if floor[0] is None:
            floor[0] = floor_for(battery, script, conv, dtype)
        return floor[0]

    def add(status, diff, allowed, fl, words, where):
        nonlocal worst
        o = Outcome(int(status), float(diff), float(allowed), fl, words, where if status == DISAGREES else None)
        if worst is None or o.status > worst.status or (o.status == worst.status < DISAGREES and o.ratio > worst.ratio):
            worst = o
        return o.status == DISAGREES

    for part in [p for p in PARTS if p in parts]:
        if part == "params0":
            problem = layout_problem(got.params0, want.params0, "params()")
            if problem:
                add(DISAGREES, math.inf, 0.0, None, problem, Where("construction", 0, []))
                break
            diff = max(float(np.max(np.abs(a - b), initial=0.0)) for (_, a), (_, b) in
                       zip(names(got.params0), names(want.params0)))
            allowed = tol.params * max_abs(want.params0)
            status = int(classify(diff, allowed))  # no rounding happens between the weights given and those returned
            if add(status, diff, allowed, None, f"params differ by {diff:.2g} (allowed {allowed:.2g})",
                   Where("construction", 0, array_report(got.params0, want.params0, allowed))):
                break
        elif part in ("forward", "loss0"):
            if part == "forward":
                if got.outputs.shape != want.outputs.shape:
                    add(DISAGREES, math.inf, 0.0, None, f"forward returned shape {got.outputs.shape} for "
                        f"{want.outputs.shape[0]} rows; expected {want.outputs.shape}", Where("forward"))
                    break
                diff = float(np.max(np.abs(got.outputs - want.outputs)))
                allowed = tol.forward * float(np.max(np.abs(want.outputs)))
            else:
                diff, allowed = abs(got.loss0 - want.loss0), tol.loss * abs(want.loss0)
                diff = math.inf if diff != diff else diff
            status, fl = int(classify(diff, allowed)), None
            if status > AGREES:
                f = get_floor()
                fl = f.outputs if part == "forward" else f.loss0
                status = int(classify(diff, allowed, fl))
            what = "outputs" if part == "forward" else "loss"
            if add(status, diff, allowed, fl, _words(status, what, diff, allowed, fl),
                   Where(PART_WORDS[part])):
                break
        elif part == "gradients":
            problem = layout_problem(got.grads, want.grads, "gradients()")
            if problem:
                add(DISAGREES, math.inf, 0.0, None, problem, Where("gradient", 0, []))
                break
            j = judge(dtype, (), got.grads, want.grads, np.empty(0), np.empty(0), {}, {},
                      floor=lambda: dataclasses.replace(get_floor(), loss=None, params={}))
            f = j.first
            diff = f.diff if f else max(float(np.max(np.abs(a - b), initial=0.0))
                                        for (_, a), (_, b) in zip(names(got.grads), names(want.grads)))
            allowed = f.allowed if f else tol.gradient * max_abs(want.grads)
            words = f.words() if f else f"gradients differ by {diff:.2g} (allowed {allowed:.2g})"
            if add(j.status, diff, allowed, f.floor if f else None, words,
                   Where("gradient", 0, array_report(got.grads, want.grads, allowed))):
                break
        elif part == "train":
            ks = [k for k in script.checkpoints if k in want.checkpoints]
            for k in ks:
                problem = layout_problem(got.checkpoints[k], want.checkpoints[k], f"History.checkpoints[{k}]")
                if problem:
                    add(DISAGREES, math.inf, 0.0, None, problem, Where("update", k, []))
                    break
            else:
                _train_part(got, want, dtype, ks, add, get_floor)
    return worst or Outcome()


def _train_part(got, want, dtype, ks, add, get_floor):
    tol = tolerance(dtype)
    stop = len(want.loss)
    bad_ref = np.flatnonzero(~np.isfinite(want.loss))
    if bad_ref.size:  # the reference itself diverges: judge what comes before
        stop = int(bad_ref[0])
    ks = [k for k in ks if k <= stop]
    j = judge(dtype, ks, None, None, got.loss[:stop], want.loss[:stop], got.checkpoints, want.checkpoints,
              floor=lambda: _cut(get_floor(), stop))
    if j.status != DISAGREES:  # report the closest call: the largest |Δ| relative to its tolerance
        if j.first is not None:
            f = j.first
            add(j.status, f.diff, f.allowed, f.floor, f.words(), None)
            return
        d_loss = np.abs(got.loss[:stop] - want.loss[:stop])
        a_loss = tol.loss * running_max(want.loss[:stop])
        cands = [(float(d_loss[i]), float(a_loss[i]), "loss") for i in range(len(d_loss))]
        for k in ks:
            cands.append((max(float(np.max(np.abs(a - c), initial=0.0)) for (_, a), (_, c) in
                              zip(names(got.checkpoints[k]), names(want.checkpoints[k]))),
                          tol.params * max_abs(want.checkpoints[k]), "params"))
        diff, allowed, what = max(cands, key=lambda t: (t[0] / t[1] if t[1] else 0.0, t[1])) if cands else \
            (0.0, 0.0, "params")
        add(AGREES, diff, allowed, None, f"{what} differ{'s' if what == 'loss' else ''} by {diff:.2g} "
                                         f"(allowed {allowed:.2g})", None)
        return
    bad = [f for f in j.findings if f.status == DISAGREES]
    step = min(f.step for f in bad)  # the first step whose loss, or whose resulting params, disagree
    first = min(bad, key=lambda f: (f.step, f.what == "loss"))
    arrays = []
    if step in got.checkpoints and step in want.checkpoints:
        arrays = array_report(got.checkpoints[step], want.checkpoints[step], tol.params * max_abs(want.checkpoints[step]))
    loss_off = any(f.what == "loss" and f.step == step for f in bad)
    add(DISAGREES, first.diff, first.allowed, first.floor, first.words(), Where("update", step, arrays, loss_off))


def _cut(floor: Floor, stop: int) -> Floor:
    return dataclasses.replace(floor, loss=None if floor.loss is None else floor.loss[:stop])


def _words(status, what, diff, allowed, floor) -> str:
    if status == ILL:
        return (f"ill-conditioned: one rounding per operation already moves the {what} by {floor:.2g}, over the "
                f"{allowed:.2g} allowed; the difference, {diff:.2g}, is within {NOISE_FACTOR:g}x that")
    fl = "" if floor is None else f", rounding floor {floor:.2g}"
    return f"{what} differ{'s' if what == 'loss' else ''} by {diff:.2g} (allowed {allowed:.2g}{fl})"


@dataclass
class CheckResult:
    id: str
    status: str  # pass | fail | skip
    verdict: str  # the policy's words, or why it was skipped / what failed
    diff: float | None = None  # the measured difference (absolute)
    allowed: float | None = None  # its tolerance (rtol * scale)
    detail: str = ""
    where: Where | None = None
    script: str | None = None  # the key of the script whose failure is reported
    conventions: Conventions | None = None  # the reference's conventions in that comparison
    parts: tuple[str, ...] = ()
    data: dict = field(default_factory=dict)
    modelled: str | None = None  # judged under the subject's declared known difference in this dtype (its text)
    diagnosis: object | None = None  # xor_rosetta.checks.diagnose.Diagnosis, where the battery diagnosed the failure

    def to_dict(self) -> dict:
        known = {} if self.modelled is None else {"modelled_difference": self.modelled}
        return {"id": self.id, "status": self.status, "verdict": self.verdict,
                "diff": _num(self.diff), "allowed": _num(self.allowed), "detail": self.detail,
                "where": None if self.where is None else self.where.to_dict(),
                "script": self.script, **known, **({"data": self.data} if self.data else {})}


def _num(v):
    return None if v is None else (v if math.isfinite(v) else str(v))


def result_from(cid: str, outcomes: list[tuple[Script, Outcome, Conventions, tuple]], detail: str = "",
                data: dict | None = None) -> CheckResult:
    """One check's result from the outcomes of its scripts: the first disagreement, else the closest call."""
    failed = [(s, o, c, p) for s, o, c, p in outcomes if o.status == DISAGREES]
    if failed:
        s, o, c, p = failed[0]
        verdict = o.words if o.error else f"DISAGREES: {o.words}"
        return CheckResult(cid, FAIL, verdict, o.diff, o.allowed, detail, o.where, s.key, c, p, data or {})
    s, o, c, p = max(outcomes, key=lambda t: (t[1].status, t[1].ratio))
    verdict = {AGREES: WORDS[AGREES], NOISE: f"{WORDS[NOISE]} (floor {o.floor or 0:.2g})"}.get(o.status, o.words)
    return CheckResult(cid, PASS, verdict, o.diff, o.allowed, detail, None, s.key, c, p, data or {})


class SkipCheck(Exception):
    """A check does not apply to this implementation (the message says why)."""
