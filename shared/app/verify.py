"""`xor-rosetta verify`: a battery of named checks, small to large, that measures one implementation against the
reference (`xor_rosetta.reference`) by the tolerance policy (`xor_rosetta.tolerance` through `xor_rosetta.compare`),
detects which modelled convention it follows for Adam, momentum and BCE, and, when a check fails, diagnoses why
(`xor_rosetta.app.diagnose`).

The implementation is anything that builds an MLP from `(spec, params)`: a class (built-in, plug-in,
`module:Class`, `file.py:Class`), a factory, a worker proxy, or a child process speaking the protocol of
`xor_rosetta.app.protocol`. It may declare the options it supports in a class attribute `supports`
(see `SUPPORT_KEYS`); a check that needs another option is skipped, and listed, not failed.

An implementation may also declare a known difference per dtype (`known_differences`, e.g. Keras on JAX or torch
computing in float32 inside a float64 run). In that dtype every failing check is diagnosed, and one diagnosed as the
cause the declaration stands for, and nothing else (`diagnose.KNOWN_CAUSES`), is reported as a failure by the known
difference, with the declared text: it still fails (exit status 1), but the report says its cause is the declared
one. Any other failure is reported and diagnosed as usual. `precision_checks()` names the checks such a difference
can fail, and the only ones (`JUDGES`); `xor_rosetta.app.testing` makes them strict expected failures.

Checks share work: each runs one or more *scripts* (a spec, initial weights and the calls to make: params(),
forward, loss, gradients, train() calls with checkpoints), and every script runs once per implementation, however
many checks read it. The reference runs the same script, in the detected conventions.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .. import registry
from ..compare import accuracy, judge, max_abs
from ..data import xor_data
from ..errors import XorRosettaError
from ..interface import MLP, Conventions, History
from ..params import Params, init_params, shapes
from ..presets import get_preset
from ..reference import FORMS, JITTER_RUNS, Floor, Jitter, Reference, activate, rounding_floor
from ..spec import ACTIVATIONS, DTYPES, LOSSES, Optimizer, Spec
from ..tolerance import AGREES, DISAGREES, ILL, NOISE, NOISE_FACTOR, WORDS, classify, running_max, tolerance

PASS, FAIL, SKIP = "pass", "fail", "skip"
LEVELS = ("full", "quick")  # full: the CLI's default; quick: what the built-in tests run (see CHECKS)
SUPPORT_KEYS = {  # what an implementation may declare in `supports`, and every value each key can take
    "dtypes": DTYPES,
    "optimizers": ("sgd", "momentum", "adam"),
    "losses": LOSSES,
    "activations": ACTIVATIONS,  # of the hidden layers, and of the output unless output_activations says
    "output_activations": ACTIVATIONS,
    "batch_sizes": (None, 1, 2, 3, 4),  # None: full batch
    "hidden_layers": (1, 2, 3),  # how many hidden layers (the checks use 1 to 3)
}
EXTRA_INPUTS = np.random.default_rng(2024).uniform(-1.0, 2.0, (12, 2))  # (12, 2): forward off the four XOR rows
PROBE_SEED = 12  # the probe's initial weights and biases: uniform(-1, 1), nothing zero, nothing symmetric
RANDOM_EXAMPLES = {"full": 20, "quick": 1}  # Hypothesis examples of random_specs
RANDOM_STEPS = 20


class BadTarget(XorRosettaError):
    """The implementation cannot be verified at all (exit status 2)."""


# ---------------------------------------------------------------------------------------------------- subjects

@dataclass
class Subject:
    """What is verified: a factory `(spec, params) -> MLP` and what it says about itself."""
    name: str
    factory: Callable[[Spec, Params], MLP]
    source: str = ""
    declared: Conventions | None = None  # conventions the class itself declares (None: not declared)
    supports: dict = field(default_factory=lambda: dict(SUPPORT_KEYS))
    known_differences: dict = field(default_factory=dict)  # dtype -> the cause it declares of disagreeing there

    def unsupported(self, spec: Spec) -> str | None:
        """Why `spec` uses an option the implementation does not declare (None: it does)."""
        o = spec.optimizer
        kind = "adam" if o.name == "adam" else "momentum" if o.momentum else "sgd"
        wants = [("dtypes", spec.dtype), ("optimizers", kind), ("losses", spec.loss),
                 ("batch_sizes", None if spec.batch_size in (None, 4) else spec.batch_size)]
        wants += [("activations", a) for a in spec.activations[:-1]] + [("hidden_layers", len(spec.layers) - 2),
                                                                         ("output_activations", spec.activations[-1])]
        for key, value in wants:
            if value not in self.supports[key] and not (key == "batch_sizes" and value is None and 4 in
                                                        self.supports[key]):
                return f"{'full batch' if value is None else value} is not among its declared {key}"
        return None


def declared_conventions(cls) -> Conventions | None:
    """The conventions a class declares itself (inheriting MLP's default, or setting None, is not declaring)."""
    for k in getattr(cls, "__mro__", ()):
        if k is MLP:
            return None
        if "conventions" in vars(k):
            conv = vars(k)["conventions"]
            return conv if isinstance(conv, Conventions) else None
    conv = getattr(cls, "conventions", None)
    return conv if isinstance(conv, Conventions) else None


def declared_supports(cls) -> dict:
    """`cls.supports`, checked: a dict of SUPPORT_KEYS to sequences of their values; missing keys mean all."""
    raw = getattr(cls, "supports", None)
    out = dict(SUPPORT_KEYS)
    if raw is None:
        return out
    if not isinstance(raw, dict):
        raise BadTarget(f"{getattr(cls, '__name__', cls)}.supports must be a dict of {', '.join(SUPPORT_KEYS)}, "
                        f"got {type(raw).__name__}")
    for key, values in raw.items():
        if key not in SUPPORT_KEYS:
            raise BadTarget(f"unknown key {key!r} in supports; known keys: {', '.join(SUPPORT_KEYS)}")
        values = (values,) if isinstance(values, str) or values is None else tuple(values)
        bad = [v for v in values if v not in SUPPORT_KEYS[key]]
        if bad:
            raise BadTarget(f"supports[{key!r}] has unknown value {bad[0]!r}; choose from "
                            f"{', '.join(str(v) for v in SUPPORT_KEYS[key])}")
        out[key] = values
    if "activations" in raw and "output_activations" not in raw:
        out["output_activations"] = out["activations"]
    return out


def declared_known_differences(cls) -> dict:
    """`cls.known_differences`, checked: a dict of dtypes to the declared cause, in words (missing: {})."""
    raw = getattr(cls, "known_differences", None) or {}
    if not isinstance(raw, dict) or not all(k in DTYPES and isinstance(v, str) and v for k, v in raw.items()):
        raise BadTarget(f"{getattr(cls, '__name__', cls)}.known_differences must be a dict of dtypes "
                        f"({', '.join(DTYPES)}) to the cause in words, got {raw!r}")
    return dict(raw)


def subject_for(target, name: str | None = None) -> Subject:
    """A Subject from a registry name (built-in, plug-in, `module:Class`, `file.py:Class`), a class, a factory,
    or a Subject."""
    if isinstance(target, Subject):
        return target
    if isinstance(target, str):
        entry = registry.get_entry(target)  # unknown names raise UnavailableError: bad input
        from .workers import needs_own_process, remote_class
        if entry.builtin and needs_own_process(entry) and registry.unavailable_reason(entry) is None:
            cls = remote_class(target)  # this process has another KERAS_BACKEND: the class lives in its worker
        else:
            cls = registry.load(target)  # unavailable: UnavailableError says why and how to install
        source = "built-in" if entry.builtin else entry.summary
        return Subject(name or target, cls, source, declared_conventions(cls), declared_supports(cls),
                       declared_known_differences(cls))
    if not callable(target):
        raise BadTarget(f"cannot verify {target!r}: give a class or a factory (spec, params) -> MLP")
    label = name or getattr(target, "name", None) or getattr(target, "__name__", None) or type(target).__name__
    return Subject(str(label), target, f"{getattr(target, '__module__', '')}.{getattr(target, '__qualname__', '')}",
                   declared_conventions(target), declared_supports(target), declared_known_differences(target))


# ---------------------------------------------------------------------------------------------------- scripts

@dataclass(eq=False)
class Script:
    """What to ask of a model: params(), forward, loss and gradients at the initial weights (`probe`), then
    train() calls of `calls` steps each, recording the params after the updates named in `checkpoints`."""
    key: str
    spec: Spec
    params: Params
    probe: bool = True
    calls: tuple[int, ...] = ()
    checkpoints: tuple[int, ...] = ()

    @property
    def steps(self) -> int:
        return sum(self.calls)

    def upto(self, step: int) -> "Script":
        """The same script stopped after `step` updates (the diagnosis reruns only as far as it needs)."""
        if step >= self.steps:
            return self
        calls, left = [], step
        for n in self.calls:
            if left <= 0:
                break
            calls.append(min(n, left))
            left -= n
        return dataclasses.replace(self, calls=tuple(calls), checkpoints=tuple(k for k in self.checkpoints if k <= step))


@dataclass
class Record:
    """What a model answered to a script; arrays as float64."""
    params0: Params | None = None
    outputs: np.ndarray | None = None  # (4 + len(EXTRA_INPUTS), 1): the XOR rows, then EXTRA_INPUTS
    loss0: float | None = None
    grads: Params | None = None
    loss: np.ndarray = field(default_factory=lambda: np.empty(0))  # (steps,) each step's loss, before its update
    checkpoints: dict[int, Params] = field(default_factory=dict)  # update count -> params
    final_loss: float | None = None
    final_outputs: np.ndarray | None = None  # (4, 1) after the last train() call
    error: str | None = None  # what raised, and where
    seconds: float = 0.0

    def history(self) -> History:
        return History(self.loss, self.checkpoints)


def cut(rec: Record, steps: int) -> Record:
    """`rec` stopped after `steps` updates (its losses and checkpoints up to there)."""
    if rec.error is not None or len(rec.loss) <= steps:
        return rec
    return dataclasses.replace(rec, loss=rec.loss[:steps], checkpoints={k: v for k, v in rec.checkpoints.items()
                                                                        if k <= steps})


def _as_params(got, where: str) -> Params:
    try:
        return [(np.asarray(W, dtype=np.float64), np.asarray(b, dtype=np.float64)) for W, b in got]
    except (TypeError, ValueError) as e:
        raise TypeError(f"{where} must return [(W0, b0), (W1, b1), ...], got {type(got).__name__} ({e})") from None


def _as_float(v, where: str) -> float:
    try:
        return float(np.asarray(v, dtype=np.float64).reshape(()))
    except (TypeError, ValueError):
        raise TypeError(f"{where} must return one number, got {np.shape(v)}") from None


def run_script(factory, script: Script) -> Record:
    """Run `script` on a fresh model from `factory`; an exception ends the record with its message."""
    rec, spec = Record(), script.spec
    x, y = xor_data(spec.dtype)
    start, phase = time.perf_counter(), "construction"
    try:
        with np.errstate(all="ignore"):
            model = factory(spec, [(W.copy(), b.copy()) for W, b in script.params])
            if script.probe:
                phase = "params()"
                rec.params0 = _as_params(model.params(), "params()")
                phase = "forward()"
                rec.outputs = np.asarray(model.forward(np.vstack([x, EXTRA_INPUTS.astype(spec.dtype)])),
                                         dtype=np.float64)
                phase = "loss()"
                rec.loss0 = _as_float(model.loss(x, y), "loss()")
                phase = "gradients()"
                rec.grads = _as_params(model.gradients(x, y), "gradients()")
            done, losses = 0, []
            for n in script.calls:
                phase = f"train(steps={n}) after {done} steps"
                want = [k - done for k in script.checkpoints if done < k <= done + n]
                h = model.train(x, y, steps=n, checkpoints=want)
                loss = np.asarray(h.loss, dtype=np.float64).reshape(-1)
                if loss.shape != (n,):
                    raise ValueError(f"History.loss has {loss.size} values for {n} steps")
                losses.append(loss)
                for k in want:
                    if k not in h.checkpoints:
                        raise ValueError(f"History.checkpoints lacks checkpoint {k} of the call")
                    rec.checkpoints[done + k] = _as_params(h.checkpoints[k], f"History.checkpoints[{k}]")
                done += n
            if script.calls:
                rec.loss = np.concatenate(losses)
                phase = "loss() after training"
                rec.final_loss = _as_float(model.loss(x, y), "loss()")
                rec.final_outputs = np.asarray(model.forward(x), dtype=np.float64)
    except Exception as e:  # the implementation under test may raise anything; it is reported, never re-raised
        text = str(e).splitlines()[0] if str(e) else ""
        rec.error = f"{phase} raised {type(e).__name__}: {text}".rstrip(": ")
    rec.seconds = time.perf_counter() - start
    return rec


def dense(n: int, upto: int = 10) -> tuple[int, ...]:
    """Checkpoints after every update up to `upto`, then 100, 1,000, 10,000 ... up to n."""
    ks = set(range(1, min(n, upto) + 1)) | {10 ** i for i in range(2, 9) if 10 ** i <= n} | {n}
    return tuple(sorted(ks))


def probe_params(spec: Spec, seed: int = PROBE_SEED) -> Params:
    rng = np.random.default_rng(seed)
    return [(rng.uniform(-1, 1, w), rng.uniform(-1, 1, b)) for w, b in shapes(spec)]


# ---------------------------------------------------------------------------------------------------- measuring

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


class Round32:
    """A Reference jitter that rounds every activation and gradient to float32 (kept as float64): float32 arithmetic
    inside a float64 run, at the least. Its distance from the exact reference is the rounding floor of the float32
    policy judging a float64 run (`floor_for`)."""

    def __call__(self, a: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            r = np.asarray(a, dtype=np.float32).astype(a.dtype)
        return np.where(np.isfinite(r) | ~np.isfinite(a), r, a)  # beyond float32's range: left as it is


def floor_for(battery: "Battery", script: Script, conv: Conventions, rounding: str | None = None) -> Floor:
    """How far one rounding per operation moves the reference on this script (measured once, when needed).

    `rounding`: the dtype whose rounding is modelled, default the script's (one ulp up or down per operation,
    `JITTER_RUNS`). float32 on a float64 script (the float32 policy judging a float64 run, as the diagnosis of float32
    arithmetic does): how far rounding every activation and gradient to float32 moves the float64 reference
    (`Round32`), which follows the script's conditioning where a one-ulp float32 jitter would not (a sigmoid
    saturated at 1 - 1e-13 stays clipped when rounded to 1, but a float32 ulp down takes it inside BCE's clip)."""
    rounding = rounding or script.spec.dtype
    key = (script.key, script.steps, conv, rounding)
    if key not in battery.floors:
        if rounding != script.spec.dtype:
            battery.floors[key] = _rounded_floor(battery, script, conv, Round32())
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
                _train_part(battery, script, got, want, conv, dtype, ks, add, get_floor)
    return worst or Outcome()


def _train_part(battery, script, got, want, conv, dtype, ks, add, get_floor):
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


# ---------------------------------------------------------------------------------------------------- results

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
    known: str | None = None  # FAIL by the subject's declared known difference in this dtype: the declared text
    diagnosis: object | None = None  # xor_rosetta.app.diagnose.Diagnosis, where the battery diagnosed the failure

    def to_dict(self) -> dict:
        known = {}
        if self.known is not None:
            cause, evidence = self.diagnosis.causes[0]
            known = {"known_difference": {"declared": self.known, "cause": cause.id, "evidence": evidence}}
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


# ---------------------------------------------------------------------------------------------------- the battery

class Battery:
    """Runs the checks on one subject, each script once; reference records and rounding floors cached."""

    def __init__(self, subject, dtype: str = "float64", level: str = "full"):
        if dtype not in DTYPES:
            raise BadTarget(f"unknown dtype {dtype!r}; choose one of: {', '.join(DTYPES)}")
        if level not in LEVELS:
            raise BadTarget(f"unknown level {level!r}; choose one of: {', '.join(LEVELS)}")
        self.subject, self.dtype, self.level = subject_for(subject), dtype, level
        if dtype not in self.subject.supports["dtypes"]:
            raise BadTarget(f"{self.subject.name} declares dtypes {', '.join(self.subject.supports['dtypes'])} only; "
                            f"--dtype {dtype} leaves nothing to run")
        self.records: dict[str, Record] = {}
        self.refs: dict[tuple, Record] = {}
        self.floors: dict[tuple, Floor] = {}
        self.results: dict[str, CheckResult] = {}
        self.scripts: dict[str, Script] = {}
        self.detected: dict[str, dict] = {}  # op -> {"form": .., "consistent": [...], "verdicts": {...}}
        self.running: set[str] = set()  # checks under way (a detection asks for the forms detected before it)
        self.seconds = 0.0

    # scripts, records, references
    def script(self, key: str) -> Script | None:
        if key not in self.scripts:
            self.scripts[key] = SCRIPTS[key](self)
        return self.scripts[key]

    def record(self, script: Script) -> Record:
        if script.key not in self.records:
            self.records[script.key] = run_script(self.subject.factory, script)
        return self.records[script.key]

    def reference(self, script: Script, conv: Conventions) -> Record:
        key = (script.key, script.steps, conv)
        if key not in self.refs:
            self.refs[key] = run_script(lambda s, p: Reference(s, p, conv), script)
        return self.refs[key]

    def against(self, script: Script, parts, conv: Conventions | None = None, got: Record | None = None,
                policy: str | None = None, upto: int | None = None) -> tuple[Script, Outcome, Conventions, tuple]:
        """`script`'s record (or `got`) against the reference in `conv` (default: the detected conventions),
        on `parts`, up to update `upto` (default: all)."""
        conv = conv or self.conventions(script.spec)
        got, want = got or self.record(script), self.reference(script, conv)
        if upto is not None:
            script, got, want = script.upto(upto), cut(got, upto), cut(want, upto)
        return script, compare(self, script, got, want, conv, parts, policy), conv, tuple(parts)

    # conventions
    def conventions(self, spec: Spec, before: str | None = None) -> Conventions:
        """The conventions to judge `spec` in: the detected form of each operation the spec uses (those detected
        before `before` only), else the declared one, else the default."""
        base = self.subject.declared or Conventions()
        changes = {}
        uses = {"adam": spec.optimizer.name == "adam", "momentum": bool(spec.optimizer.momentum),
                "bce": spec.loss == "bce"}
        for op, check in DETECTORS.items():
            if op == before:
                break
            if uses[op] and check not in self.running:
                self.run(check)
                form = self.detected.get(op, {}).get("form")
                if form:
                    changes[op] = form
        return dataclasses.replace(base, **changes)

    def detect(self, op: str, script: Script, parts, upto: int | None = None) -> tuple[str | None, list, dict]:
        """Which of the reference's forms of `op` (FORMS[op]) the implementation's record matches."""
        base = self.conventions(script.spec, before=op)
        outcomes = {form: self.against(script, parts, dataclasses.replace(base, **{op: form}), upto=upto)
                    for form in FORMS[op]}
        consistent = [f for f, t in outcomes.items() if t[1].status < DISAGREES]
        declared = getattr(self.subject.declared, op, None)
        if declared in consistent:
            form = declared
        elif consistent:
            form = min(consistent, key=lambda f: (outcomes[f][1].status, outcomes[f][1].ratio))
        else:
            form = None
        self.detected[op] = {"form": form, "consistent": consistent, "declared": declared,
                             "verdicts": {f: t[1].words for f, t in outcomes.items()}}
        return form, consistent, outcomes

    # running checks
    def run(self, cid: str) -> CheckResult:
        if cid not in self.results:
            start = time.perf_counter()
            self.running.add(cid)
            try:
                self.results[cid] = CHECKS[cid](self)
            except SkipCheck as s:
                self.results[cid] = CheckResult(cid, SKIP, str(s))
            finally:
                self.running.discard(cid)
            self._explain(self.results[cid])
            self.results[cid].data.setdefault("seconds", round(time.perf_counter() - start, 3))
        return self.results[cid]

    @property
    def known_difference(self) -> str | None:
        """The subject's declared known difference in this battery's dtype, if any."""
        return self.subject.known_differences.get(self.dtype)

    def _explain(self, res: CheckResult) -> None:
        """A failure in a dtype with a declared known difference: diagnosed now, and marked `known` when the
        diagnosis is the cause such a declaration stands for (`diagnose.KNOWN_CAUSES`) and nothing else."""
        if res.status != FAIL or self.known_difference is None:
            return
        from .diagnose import diagnose, explained_by_known_difference
        res.diagnosis = diagnose(self, res)
        if explained_by_known_difference(res.diagnosis, self.dtype):
            res.known = self.known_difference

    def run_all(self, ids=None, exitfirst: bool = False, progress=None) -> list[CheckResult]:
        start, out = time.perf_counter(), []
        for i, c in enumerate(ids or CHECKS):
            if progress:
                progress(c, i)
            out.append(self.run(c))
            if exitfirst and out[-1].status == FAIL and out[-1].known is None:
                break
        self.seconds += time.perf_counter() - start
        return out

    def needs(self, spec: Spec) -> None:
        """Skip the running check unless the subject supports everything `spec` uses."""
        why = self.subject.unsupported(spec)
        if why:
            raise SkipCheck(f"unsupported: {why}")

    def adapt(self, spec: Spec) -> Spec:
        """`spec` with what the subject does not support swapped for what it does: depth (keeping the widths),
        hidden and output activations, loss, optimizer, batch size. A subject that supports everything gets
        `spec` unchanged (so the checks reuse the presets' networks: one compile each for compiled variants)."""
        sup, o = self.subject.supports, spec.optimizer
        first = lambda options, default: next((a for a in options if a in default), None)  # noqa: E731
        depth = len(spec.layers) - 2
        if depth not in sup["hidden_layers"]:
            depth = first((2, 1, 3), sup["hidden_layers"]) or depth
        width = spec.layers[1]
        hidden = [a if a in sup["activations"] else first(("tanh", "sigmoid", "relu", "linear"), sup["activations"])
                  for a in (list(spec.activations[:-1]) + [spec.activations[-2]] * depth)[:depth]]
        loss = spec.loss if spec.loss in sup["losses"] else first(("mse", "bce"), sup["losses"])
        out = spec.activations[-1]
        if loss == "bce" and "sigmoid" in sup["output_activations"]:
            out = "sigmoid"
        elif out not in sup["output_activations"] or loss != spec.loss:
            loss = "mse" if "mse" in sup["losses"] else loss
            out = first(("linear", "tanh", "sigmoid", "relu"), sup["output_activations"])
        kind = "adam" if o.name == "adam" else "momentum" if o.momentum else "sgd"
        if kind not in sup["optimizers"]:
            o = Optimizer("sgd", lr=0.1) if "sgd" in sup["optimizers"] else \
                Optimizer("sgd", lr=0.05, momentum=0.9) if "momentum" in sup["optimizers"] else Optimizer("adam", lr=1e-3)
        batch = spec.batch_size
        if batch not in sup["batch_sizes"] and not (batch is None and 4 in sup["batch_sizes"]):
            batch = next((n for n in (None, 3, 1, 2) if n in sup["batch_sizes"]), None)
        return spec.replace(layers=(2,) + (width,) * depth + (1,), activations=tuple(hidden) + (out,), loss=loss,
                            optimizer=o, batch_size=batch, dtype=self.dtype if spec.dtype == "float64" else spec.dtype)


class SkipCheck(Exception):
    """A check does not apply to this implementation (the message says why)."""


# ---------------------------------------------------------------------------------------------------- script builders

N_NET, K_NET = get_preset("seed-numpy"), get_preset("seed-keras")  # the small checks run on the presets' networks


def _probe_n(b: Battery) -> Script:
    """seed-numpy's network (2-5-1, tanh then linear, MSE, SGD) from the probe's weights; one update."""
    spec = b.adapt(N_NET.replace(steps=10))
    return Script("probe-n", spec, probe_params(spec), True, (1,), (1,))


def _probe_k(b: Battery) -> Script:
    """seed-keras' network (2-5-5-1: its square hidden layer shows a transposition; relu, relu, sigmoid, BCE,
    Adam at lr 1e-3) from the probe's weights; three updates."""
    spec = b.adapt(K_NET.replace(steps=10))
    return Script("probe-k", spec, probe_params(spec, PROBE_SEED + 1), True, (3,), (1, 2, 3))


def _adam_split(b: Battery) -> Script:
    return dataclasses.replace(b.script("probe-k"), key="adam-split", calls=(1, 2))


def _bce(b: Battery) -> Script:
    """seed-keras' network with row 0 far on the wrong side (z = 30 where y = 0), the others moderate: there
    p(1 - p) < 1e-12, so torch's clamp of it (the "probs" form) and BCE from the logits give gradients ~10x apart,
    far beyond rounding."""
    spec = b.adapt(K_NET.replace(steps=10))
    params = probe_params(spec, PROBE_SEED + 2)
    h, _ = xor_data()
    for (W, bias), act in zip(params[:-1], spec.activations[:-1]):
        h = activate(act, h @ W + bias)  # (4, fan_out)
    H = np.hstack([h, np.ones((4, 1))])  # (4, fan_in + 1): the output layer's inputs, and 1 for its bias
    wb = np.linalg.lstsq(H, np.array([30.0, 2.0, -1.5, -2.5]), rcond=None)[0]  # z for the rows (y = 0, 1, 1, 0)
    params[-1] = (wb[:-1].reshape(-1, 1), wb[-1:])
    return Script("bce", spec, params, True, (1,), (1,))


def _momentum(b: Battery) -> Script:
    """seed-numpy's network with SGD momentum 0.9 at lr 0.05 (lr != 1 - momentum, so a dampened velocity shows)
    on batches of 3 rows, where supported; 8 updates."""
    batch = next((n for n in (3, 1, 2) if n in b.subject.supports["batch_sizes"]), None)
    spec = b.adapt(N_NET.replace(steps=10, optimizer=Optimizer("sgd", lr=0.05, momentum=0.9), batch_size=batch))
    return Script("momentum", spec, probe_params(spec, PROBE_SEED + 3), False, (8,), tuple(range(1, 9)))


def _momentum_again(b: Battery) -> Script:
    return dataclasses.replace(b.script("momentum"), key="momentum-again")


def _momentum_split(b: Battery) -> Script:
    return dataclasses.replace(b.script("momentum"), key="momentum-split", calls=(3, 5))


def _preset(name: str):
    def build(b: Battery) -> Script:
        spec = get_preset(name).replace(dtype=b.dtype)
        steps = spec.steps if (b.level == "full" or spec.steps <= 1_000) else 1_000
        return Script(name, spec, init_params(spec), False, (steps,), dense(steps))
    return build


def _float32(b: Battery) -> Script:
    spec = b.script("probe-n").spec.replace(dtype="float32")
    return Script("float32", spec, probe_params(spec), True, (10,), dense(10))


ACT_SPECS = {  # every activation in a hidden layer, sigmoid and relu outputs (the probe's is linear), both losses
    "act-bce": dict(layers=(2, 4, 4, 4, 1), activations=("sigmoid", "relu", "linear", "sigmoid"), loss="bce",
                    optimizer=Optimizer("sgd", lr=0.5)),
    "act-mse": dict(layers=(2, 4, 4, 1), activations=("tanh", "sigmoid", "relu"), loss="mse",
                    optimizer=Optimizer("sgd", lr=0.1)),
}


def _acts(key: str):
    def build(b: Battery) -> Script:
        spec = Spec(**ACT_SPECS[key], steps=10, dtype=b.dtype)
        return Script(key, spec, probe_params(spec, 5), True, (10,), dense(10))
    return build


SCRIPTS: dict[str, Callable[[Battery], Script]] = {
    "probe-n": _probe_n, "probe-k": _probe_k, "adam-split": _adam_split, "bce": _bce, "momentum": _momentum,
    "momentum-again": _momentum_again, "momentum-split": _momentum_split, "seed-numpy": _preset("seed-numpy"),
    "seed-keras": _preset("seed-keras"), "float32": _float32, "act-bce": _acts("act-bce"), "act-mse": _acts("act-mse"),
}


# ---------------------------------------------------------------------------------------------------- the checks
# One function per check, in the order they run (small to large); the docstring's first line says what it measures.

def _probes(b: Battery, parts, cid: str, keys=("probe-n", "probe-k")) -> CheckResult:
    """The scripts `keys` (the two probes by default) against the reference on `parts`; those the subject does
    not support are skipped and named."""
    outcomes, skipped = [], []
    for key in keys:
        s = b.script(key)
        why = b.subject.unsupported(s.spec)
        if why:
            skipped.append(f"{key}: {why}")
            continue
        outcomes.append(b.against(s, parts))
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
    closest = min(outcomes, key=lambda f: (outcomes[f][1].ratio, f != declared))  # a tie goes to the declared form
    return result_from(cid, [outcomes[closest]], f"{op} form: none of {', '.join(FORMS[op])} (closest: {closest})",
                       {"form": None, "closest": closest})


def check_minibatch_order(b: Battery) -> CheckResult:
    """Eight updates on batches of 3 rows: each step's rows are the window batch_rows(step, 3, 4) of the contract."""
    s = b.script("momentum")
    b.needs(s.spec)
    if s.spec.batch_size is None:
        raise SkipCheck("unsupported: no batch size below 4 among its declared batch_sizes")
    return result_from("minibatch_order", [b.against(s, ("train",))])


def check_determinism(b: Battery) -> CheckResult:
    """The same script on a second fresh instance: bit-identical losses and params."""
    s = b.script("momentum")
    b.needs(s.spec)
    if _identical(b, s, b.script("momentum-split")) is None:  # a split run that matches bit for bit: deterministic
        return CheckResult("determinism", PASS, "bit-identical", 0.0, 0.0, f"{s.steps} steps in a second fresh "
                           f"instance (train(3) then train(5)), same bits", None, s.key)
    return _identical_result("determinism", b, s, b.script("momentum-again"), "a second run from the same weights")


def check_continuation(b: Battery) -> CheckResult:
    """train() continues where it stopped: 3 steps then 5 give bit for bit what 8 give (momentum, batches of 3);
    1 then 2 what 3 give (Adam)."""
    results = []
    for key, split, what in (("momentum", "momentum-split", "train(3) then train(5)"),
                             ("probe-k", "adam-split", "Adam: train(1) then train(2)")):
        s = b.script(key)
        if b.subject.unsupported(s.spec) is None and (key == "momentum" or s.spec.optimizer.name == "adam"):
            results.append(_identical_result("continuation", b, s, b.script(split), what))
    if not results:
        raise SkipCheck("unsupported: " + b.subject.unsupported(b.script("momentum").spec))
    failed = [r for r in results if r.status == FAIL]
    if failed:
        return failed[0]
    return CheckResult("continuation", PASS, "bit-identical", 0.0, 0.0, "; ".join(r.detail for r in results), None,
                       results[0].script)


def _identical(b, s, other) -> tuple | None:
    """None when two runs of the same steps agree bit for bit; else (|Δ|, first step, arrays that differ)."""
    one, two = b.record(s), b.record(other)
    if one.error or two.error:
        return math.inf, 0, []
    diff, step = float(np.max(np.abs(one.loss - two.loss), initial=0.0)), None
    bad = np.flatnonzero(one.loss != two.loss)
    if bad.size:
        step = int(bad[0]) + 1
    for k in s.checkpoints:
        d = max(float(np.max(np.abs(a - c), initial=0.0)) for (_, a), (_, c) in
                zip(names(one.checkpoints[k]), names(two.checkpoints[k])))
        diff = max(diff, d)
        if d != 0 and (step is None or k < step):
            step = k
    if step is None and diff == 0:
        return None
    arrays = [n for (n, a), (_, c) in zip(names(one.checkpoints[step]), names(two.checkpoints[step]))
              if np.any(a != c)] if step in one.checkpoints else []
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
    outcomes, skipped = [], []
    for key in ("seed-numpy", "seed-keras"):
        s = b.script(key)
        why = b.subject.unsupported(s.spec)
        if why:
            skipped.append(f"{key}: {why}")
            continue
        outcomes.append(b.against(s, ("train",), upto=n))
    if not outcomes:
        raise SkipCheck("unsupported: " + "; ".join(skipped))
    return result_from(cid, outcomes, "; ".join(f"not run: {w}" for w in skipped))


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
    from .runner import DEFAULT_THRESHOLD
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
    from .randomspecs import run_random
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


# ---------------------------------------------------------------------------------------------------- the report

@dataclass
class Report:
    subject: Subject
    dtype: str
    level: str
    results: list[CheckResult]
    conventions: dict  # op -> detection
    diagnosis: object | None  # xor_rosetta.app.diagnose.Diagnosis of the first failure not by a known difference
    seconds: float

    @property
    def passed(self) -> bool:
        """No check fails: a failure by a declared known difference is a failure too (it does disagree)."""
        return all(r.status != FAIL for r in self.results)

    @property
    def known(self) -> list[CheckResult]:
        """The failures by the subject's declared known difference in this dtype (each diagnosed as its cause)."""
        return [r for r in self.results if r.known is not None]

    def counts(self) -> dict:
        """pass, fail, skip, and known: the failures (counted in fail too) by the declared known difference."""
        return {**{k: sum(r.status == k for r in self.results) for k in (PASS, FAIL, SKIP)}, "known": len(self.known)}

    def summary(self) -> str:
        c = self.counts()
        by = f" ({c['known']} by the known difference)" if c["known"] else ""
        return f"{c[PASS]} passed, {c[FAIL]} failed{by}, {c[SKIP]} skipped in {self.seconds:.1f} s"

    def known_lines(self) -> list[str]:
        """The declared known difference, the checks that disagree by it, and the evidence of the first."""
        if not self.known:
            return []
        first = self.known[0]
        cause, evidence = first.diagnosis.causes[0]
        n = len(self.known)
        return [f"known difference: {first.known}",
                f"{n} check{'s' if n > 1 else ''} disagree{'' if n > 1 else 's'} by it alone "
                f"({', '.join(r.id for r in self.known)}): each is diagnosed as {cause.title}, the cause "
                f"{self.subject.name} declares for {self.dtype}",
                f"evidence ({first.id}): {evidence}"]

    def verdict_text(self, r: CheckResult) -> str:
        return r.verdict + ("; known difference" if r.known is not None else "") + (f"; {r.detail}" if r.detail else "")

    def to_dict_known(self) -> dict | None:
        if not self.known:
            return None
        cause = self.known[0].diagnosis.causes[0][0]
        return {"dtype": self.dtype, "declared": self.known[0].known, "cause": {"id": cause.id, "title": cause.title},
                "checks": [r.id for r in self.known]}

    def convention_line(self) -> str:
        parts = []
        for op in ("adam", "momentum", "bce"):
            d = self.conventions.get(op)
            if d is None:
                continue
            others = [f for f in d["consistent"] if f != d["form"]]
            check = next((r for r in self.results if r.id == DETECTORS[op]), None)
            if d["form"] is None and check is not None and check.known is not None:
                parts.append(f"{op} not told apart, under the known difference (closest: {check.data.get('closest')})")
                continue
            parts.append(f"{op} {d['form'] or 'none of ' + '/'.join(FORMS[op])}" +
                         (f" (also consistent: {', '.join(others)})" if others else ""))
        return "conventions detected: " + ("; ".join(parts) if parts else "none tested")

    def lines(self) -> list[str]:
        head = f"verify {self.subject.name}" + (f" ({self.subject.source})" if self.subject.source else "")
        out = [f"{head}: {self.dtype}, {self.level} battery", ""]
        w = max(len(r.id) for r in self.results)
        out.append(f"{'check':<{w}}  {'result':<6}  {'measured':>9}  {'tolerance':>9}  verdict")
        for r in self.results:
            measured = "" if r.diff is None else f"{r.diff:.2g}"
            allowed = "" if r.allowed is None else f"{r.allowed:.2g}"
            result = "known" if r.known is not None else r.status.upper() if r.status == FAIL else r.status
            out.append(f"{r.id:<{w}}  {result:<6}  {measured:>9}  {allowed:>9}  {self.verdict_text(r)}")
        out += ["", self.convention_line()] + self.known_lines()
        if self.diagnosis is not None:
            out += self.diagnosis.lines()
        out.append(self.summary())
        return out

    def to_dict(self) -> dict:
        return {"implementation": self.subject.name, "source": self.subject.source, "dtype": self.dtype,
                "level": self.level, "passed": self.passed, "counts": self.counts(),
                "supports": {k: list(v) for k, v in self.subject.supports.items()},
                "declared_conventions": None if self.subject.declared is None else self.subject.declared.to_dict(),
                "conventions": self.conventions,
                "declared_known_differences": dict(self.subject.known_differences),
                "checks": [dict(r.to_dict(), measures=describe(r.id)) for r in self.results],
                "known_difference": self.to_dict_known(),
                "diagnosis": None if self.diagnosis is None else self.diagnosis.to_dict(),
                "seconds": round(self.seconds, 2)}

    def markdown(self) -> str:
        out = [f"# verify: {self.subject.name}", "",
               f"{self.subject.source or 'implementation'}; {self.dtype}; {self.level} battery; "
               f"{self.summary()}.", "",
               "| check | what it measures | result | measured | tolerance | verdict |", "|---|---|---|---:|---:|---|"]
        for r in self.results:
            text = self.verdict_text(r).replace("|", "\\|")
            status = "fail (known difference)" if r.known is not None else r.status
            out.append(f"| {r.id} | {describe(r.id)} | {status} | {'' if r.diff is None else f'{r.diff:.2g}'} | "
                       f"{'' if r.allowed is None else f'{r.allowed:.2g}'} | {text} |")
        out += ["", self.convention_line()]
        if self.known:
            out += ["", "## Known difference", ""] + [f"- {line}" for line in self.known_lines()]
        if self.diagnosis is not None:
            out += ["", "## Diagnosis", ""] + [f"- {line}" for line in self.diagnosis.lines()]
        return "\n".join(out) + "\n"


def verify(target, dtype: str = "float64", level: str = "full", ids=None, exitfirst: bool = False,
           progress: Callable[[str, int], None] | None = None) -> Report:
    """Run the battery (or the checks `ids`) on `target`, and diagnose the first failure; `exitfirst` stops
    the battery there. `target`: a registry name, a class, a factory, a Subject or a Battery.

    In a dtype for which the subject declares a known difference (`known_differences`), every failure is
    diagnosed; those diagnosed as the cause the declaration stands for (`diagnose.KNOWN_CAUSES`), and nothing
    else, are failures by the known difference (`CheckResult.known`, reported as such; they still fail, and
    `exitfirst` does not stop at them); the first other failure is the one diagnosed in the report."""
    b = target if isinstance(target, Battery) else Battery(target, dtype, level)
    unknown = [c for c in ids or () if c not in CHECKS]
    if unknown:
        raise BadTarget(f"unknown check {unknown[0]!r}; choose from: {', '.join(CHECKS)}")
    results = b.run_all(ids, exitfirst, progress)
    first = next((r for r in results if r.status == FAIL and r.known is None), None)
    diagnosis = None
    if first is not None:
        from .diagnose import diagnose
        diagnosis = first.diagnosis or diagnose(b, first)
        if any(r.known is not None for r in results):
            diagnosis = dataclasses.replace(diagnosis, label="first other failure")
    return Report(b.subject, b.dtype, b.level, results, dict(b.detected), diagnosis, b.seconds)
