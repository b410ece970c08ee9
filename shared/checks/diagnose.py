"""Why a check of `xor-rosetta verify` fails: the first failure, then the likely cause from a catalogue of classic
mistakes.

Causes are recognised by testing hypotheses against the reference, not by reading the source: each hypothesis is
the reference with one mistake put in (`Variant`), run through the failing check's own script and judged by the
same tolerance policy. The implementation "has" a mistake when it agrees with the reference that makes it, and not
with the one that doesn't. A few causes are tested directly: params() returning W transposed or rounded to
float32, differences that are float32-sized (agreement with the float64 reference by float32's tolerance policy,
and with a float32 reference where that one is a witness: see `_float32`), which rows each step used (found from
each step's loss), and runs that differ from themselves.
"""
from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np

from xor_rosetta.compare import max_abs
from xor_rosetta.data import batch_rows, xor_data
from xor_rosetta.interface import Conventions, History
from xor_rosetta.params import Params
from xor_rosetta.reference import Optimizer, Reference, activate_grad, forward, loss_and_dz
from xor_rosetta.tolerance import AGREES, DISAGREES, classify, tolerance
from xor_rosetta.reference import FORMS
from xor_rosetta.checks.battery import Battery
from xor_rosetta.checks.catalogue import DETECTORS
from xor_rosetta.checks.judging import FAIL, CheckResult, Where, compare, names
from xor_rosetta.checks.scripts import Record, Script, cut, run_script


@dataclass(frozen=True)
class Cause:
    id: str
    title: str
    explanation: str  # one line


CATALOGUE = [
    Cause("transposed-weights", "weights transposed",
          "a weight matrix is read or returned as (fan_out, fan_in) instead of the canonical (fan_in, fan_out); a "
          "square layer, or a reshape in place of a transpose, keeps the shapes fitting, so nothing crashes"),
    Cause("bias-not-updated", "a bias is never updated",
          "the optimizer steps the weights but not the bias (or the bias gets no gradient): b keeps its initial value"),
    Cause("only-last-layer", "only the last layer is updated",
          "backprop stops at the output layer: the earlier layers get no gradient and keep their initial weights "
          "(the seed listing's bug)"),
    Cause("loss-summed", "loss summed instead of averaged",
          "the loss or its gradient is a sum over the batch rather than a mean: gradients are off by the batch size"),
    Cause("loss-halved", "MSE halved",
          "the loss is ½·mean((a − y)²), the textbook's ½ for a tidy derivative: gradients are half the reference's"),
    Cause("activation-derivative", "a wrong activation derivative",
          "an activation's derivative is computed wrongly or left out, e.g. tanh′ as 1 − z² from the pre-activation "
          "z instead of 1 − a² from the activation a"),
    Cause("sigmoid-twice", "the sigmoid derivative applied twice under BCE",
          "BCE on a sigmoid output already gives dL/dz = (a − y)/m; multiplying by σ′ = a(1 − a) again shrinks the "
          "output gradient"),
    Cause("adam-no-bias-correction", "Adam without bias correction",
          "m and v are used without dividing by 1 − β1ᵗ and 1 − β2ᵗ, so the early steps are off by up to "
          "√(1 − β2)/(1 − β1)"),
    Cause("adam-eps-in-sqrt", "Adam's ε inside the square root",
          "the step divides by √(v̂ + ε) instead of √v̂ + ε"),
    Cause("lr-twice", "the learning rate applied twice, or the momentum forms mixed",
          "lr multiplies the step twice (w −= lr·lr·g, or v = μv + lr·g then w −= lr·v), or torch's velocity is "
          "applied with Keras' update (or the reverse)"),
    Cause("momentum-dampened", "momentum as a moving average",
          "the velocity is v = μv + (1 − μ)g (dampened, an exponential average) instead of v = μv + g"),
    Cause("wrong-sign", "the update climbs the gradient",
          "the update adds lr·g (or its Adam step) instead of subtracting it"),
    Cause("gradient-sign", "a gradient with the wrong sign",
          "the gradient of one parameter array, or of one layer's W and b, has its sign flipped (a − y written "
          "y − a in one place, a minus lost in the chain rule)"),
    Cause("mixed-forms", "the loss and its gradient in different forms",
          "the loss value is computed in one form (e.g. BCE from the probabilities, as scikit-learn's MLPClassifier "
          "does) and its gradient in another (e.g. from the logits, a − y): each agrees with a form the reference "
          "models, no single form agrees with both"),
    Cause("float32", "float32 arithmetic inside a float64 run",
          "some of the computation runs in float32 (an array, a constant or a framework default): the differences "
          "have float32's size, about 1e-7 relative"),
    Cause("minibatch-order", "a different minibatch order",
          "the steps see other rows than the contract's window batch_rows(step, batch, 4), which cycles through the "
          "data and carries on across train() calls"),
    Cause("state-reset", "optimizer state reset by each train() call",
          "Adam's t and moments or the momentum buffer start again at each train() call; the contract says they "
          "carry on"),
    Cause("nondeterministic", "not deterministic",
          "two runs from the same weights differ: unseeded randomness, or arithmetic whose order changes between runs"),
]
BY_ID = {c.id: c for c in CATALOGUE}
PART_KEYS = {"construction": "params0", "forward": "forward", "loss": "loss0", "gradient": "gradients",
             "update": "train"}  # a failure's part -> the part of a record that the hypotheses are judged on


# ---------------------------------------------------------------------------------------------------- variants

@dataclass(frozen=True)
class Bug:
    """One classic mistake, as a change to the reference."""
    layout: bool = False  # every W read as W.reshape(fan_out, fan_in) and used transposed (= W.T when square)
    frozen: str = ""  # "biases" | "b<i>" | "all-but-last": never updated, and no gradient
    scale: tuple[str, str] = ("", "")  # (loss factor, gradient factor): "m" (summed over the batch) | "half"
    derivative: tuple[str, str] = ("", "")  # (activation, "z": its formula applied to z | "one": left out)
    sigmoid_twice: bool = False
    adam: str = ""  # "no-bias-correction" | "eps-in-sqrt"
    lr_twice: bool = False
    momentum: str = ""  # "lr-in-both" | "keras-v-torch-step" | "torch-v-keras-step" | "dampened"
    sign: bool = False
    negate: tuple[int, ...] = ()  # arrays (0: W0, 1: b0, 2: W1, ...) whose gradient has its sign flipped
    reset: str = ""  # "optimizer" | "window" | "optimizer+window": started again by each train() call


class BugOptimizer(Optimizer):
    """The reference's optimizer with `bug` in it; hyperparameters may leave the spec's valid range (lr < 0)."""

    def __init__(self, opt, conv, arrays, bug: Bug):
        o = SimpleNamespace(**dataclasses.asdict(opt))
        o.lr = (o.lr ** 2 if bug.lr_twice else o.lr) * (-1 if bug.sign else 1)
        super().__init__(o, conv, arrays)
        self.bug = bug

    def step(self, arrays, grads):
        o, bug = self.opt, self.bug
        if not ((o.name == "adam" and bug.adam) or (o.momentum and bug.momentum)):
            return super().step(arrays, grads)
        self.t += 1
        t = self.t
        for w, g, m, v in zip(arrays, grads, self.m, self.v):
            if o.name == "adam":
                m[...] = o.beta1 * m + (1 - o.beta1) * g
                v[...] = o.beta2 * v + (1 - o.beta2) * g * g
                m_hat, v_hat = (m, v) if bug.adam == "no-bias-correction" else \
                    (m / (1 - o.beta1 ** t), v / (1 - o.beta2 ** t))
                denom = np.sqrt(v_hat + o.epsilon) if bug.adam == "eps-in-sqrt" else np.sqrt(v_hat) + o.epsilon
                w -= o.lr * m_hat / denom
            elif bug.momentum == "lr-in-both":  # v = mu*v + lr*g; w -= lr*v
                m[...] = o.momentum * m + o.lr * g
                w -= o.lr * m
            elif bug.momentum == "keras-v-torch-step":  # v = mu*v - lr*g (Keras), then w -= lr*v (torch)
                m[...] = o.momentum * m - o.lr * g
                w -= o.lr * m
            elif bug.momentum == "torch-v-keras-step":  # v = mu*v + g (torch), then w += v (Keras)
                m[...] = o.momentum * m + g
                w += m
            else:  # dampened: v = mu*v + (1-mu)*g; w -= lr*v
                m[...] = o.momentum * m + (1 - o.momentum) * g
                w -= o.lr * m


class Variant(Reference):
    """The reference with one mistake in it (`bug`), speaking the canonical interface as a buggy implementation
    would: a layout bug maps the weights in and out the way such an implementation does."""
    name = "variant"

    def __init__(self, spec, params, conventions: Conventions, bug: Bug):
        self.bug = bug
        if bug.layout:
            params = [(W.reshape(W.shape[1], W.shape[0]).T, b) for W, b in params]
        super().__init__(spec, params, conventions)
        self.optimizer = BugOptimizer(spec.optimizer, conventions, self.arrays, bug)
        n = len(self.arrays)
        self.frozen = {"biases": set(range(1, n, 2)), "all-but-last": set(range(n - 2))}.get(bug.frozen, set())
        if bug.frozen.startswith("b") and bug.frozen[1:].isdigit():
            self.frozen = {2 * int(bug.frozen[1:]) + 1}
        self.calls, self.window = 0, 0

    def _out(self, arrays):
        """Canonical params as this buggy implementation reports them."""
        if self.bug.layout:
            arrays = [a.T.reshape(a.shape) if i % 2 == 0 else a for i, a in enumerate(arrays)]
        a = [np.array(v, dtype=np.float64) for v in arrays]
        return [(a[i], a[i + 1]) for i in range(0, len(a), 2)]

    def params(self):
        return self._out(self.arrays)

    def gradients(self, x, y):
        return self._out(self._loss_and_grads(x, y)[1])

    def _derivative(self, act, z, a):
        name, how = self.bug.derivative
        if act != name:
            return activate_grad(act, z, a)
        return activate_grad(act, z, z) if how == "z" else np.ones_like(z)

    def _loss_and_grads(self, x, y):
        x, y = x.astype(self.spec.dtype), y.astype(self.spec.dtype)
        spec, bug, arrays = self.spec, self.bug, self.arrays
        zs, acts = forward(spec, arrays, x)
        out, m = spec.activations[-1], y.size
        if spec.loss == "mse" and bug.derivative[0] == out:
            d = acts[-1] - y
            loss, dz = float(np.mean(d * d)), (2 * d / m) * self._derivative(out, zs[-1], acts[-1])
        else:
            loss, dz = loss_and_dz(spec, self.conventions, zs[-1], acts[-1], y)
        if bug.sigmoid_twice:
            dz = dz * acts[-1] * (1 - acts[-1])
        grads = [None] * len(arrays)
        for i in reversed(range(len(zs))):
            grads[2 * i], grads[2 * i + 1] = acts[i].T @ dz, dz.sum(axis=0)
            if i:
                dz = (dz @ arrays[2 * i].T) * self._derivative(spec.activations[i - 1], zs[i - 1], acts[i])
        factor = {"m": m, "half": 0.5, "": 1}
        loss, grads = loss * factor[bug.scale[0]], [g * factor[bug.scale[1]] for g in grads]
        grads = [-g if i in bug.negate else g for i, g in enumerate(grads)]
        return loss, [np.zeros_like(g) if i in self.frozen else g for i, g in enumerate(grads)]

    def train(self, x, y, steps=None, checkpoints=()):
        spec, want, bug = self.spec, set(checkpoints), self.bug
        steps = spec.steps if steps is None else steps
        if self.calls and "optimizer" in bug.reset:
            self.optimizer = BugOptimizer(spec.optimizer, self.conventions, self.arrays, bug)
        if "window" in bug.reset:
            self.window = 0
        self.calls += 1
        x, y = x.astype(spec.dtype), y.astype(spec.dtype)
        b, losses, saved = spec.batch_for(len(x)), np.empty(steps), {}
        for k in range(steps):
            rows = batch_rows(self.window, b, len(x))
            losses[k], grads = self._loss_and_grads(x[rows], y[rows])
            self.optimizer.step(self.arrays, grads)
            self.steps_done += 1
            self.window += 1
            if k + 1 in want:
                saved[k + 1] = self.params()
        return History(losses, saved)


def variants(spec, check: str) -> list[tuple[str, str, Bug]]:
    """(cause id, what the variant does, bug) for every mistake that could show in `spec`."""
    depth = len(spec.layers) - 1
    out = [("transposed-weights", "each W read as (fan_out, fan_in)", Bug(layout=True)),
           ("bias-not-updated", "no bias updated", Bug(frozen="biases"))]
    out += [("bias-not-updated", f"b{i} never updated", Bug(frozen=f"b{i}")) for i in range(depth)]
    if depth > 1:
        out.append(("only-last-layer", f"only W{depth - 1}, b{depth - 1} updated", Bug(frozen="all-but-last")))
    out += [("loss-summed", "loss and gradients summed over the batch", Bug(scale=("m", "m"))),
            ("loss-summed", "gradients summed over the batch", Bug(scale=("", "m")))]
    if spec.loss == "mse":
        out += [("loss-halved", "loss and gradients halved", Bug(scale=("half", "half"))),
                ("loss-halved", "gradients halved", Bug(scale=("", "half")))]
    for act in sorted(set(spec.activations)):
        if act in ("tanh", "sigmoid"):
            formula = "1 − z²" if act == "tanh" else "z(1 − z)"
            out.append(("activation-derivative", f"{act}′ computed from z ({formula})", Bug(derivative=(act, "z"))))
        if act != "linear":
            out.append(("activation-derivative", f"{act}′ left out", Bug(derivative=(act, "one"))))
    if spec.loss == "bce":
        out.append(("sigmoid-twice", "σ′ applied again after BCE's (a − y)/m", Bug(sigmoid_twice=True)))
    if spec.optimizer.name == "adam":
        out += [("adam-no-bias-correction", "m and v not bias-corrected", Bug(adam="no-bias-correction")),
                ("adam-eps-in-sqrt", "√(v̂ + ε)", Bug(adam="eps-in-sqrt"))]
    if spec.optimizer.momentum:
        out += [("lr-twice", "v = μv + lr·g, then w −= lr·v", Bug(momentum="lr-in-both")),
                ("lr-twice", "Keras' v = μv − lr·g with torch's w −= lr·v", Bug(momentum="keras-v-torch-step")),
                ("lr-twice", "torch's v = μv + g with Keras' w += v", Bug(momentum="torch-v-keras-step")),
                ("momentum-dampened", "v = μv + (1 − μ)g", Bug(momentum="dampened"))]
    else:
        out.append(("lr-twice", "every step scaled by lr²", Bug(lr_twice=True)))
    out.append(("wrong-sign", "the step added instead of subtracted", Bug(sign=True)))
    for i in range(depth):
        out += [("gradient-sign", f"the gradient of W{i} negated", Bug(negate=(2 * i,))),
                ("gradient-sign", f"the gradient of b{i} negated", Bug(negate=(2 * i + 1,))),
                ("gradient-sign", f"the gradients of layer {i} (W{i}, b{i}) negated", Bug(negate=(2 * i, 2 * i + 1)))]
    if check == "continuation":
        out = [("state-reset", "optimizer state started again by each train() call", Bug(reset="optimizer")),
               ("minibatch-order", "the minibatch window started again by each train() call", Bug(reset="window"))]
    return out


PAIR_STEPS = 3  # two mistakes at once are tried on scripts this short (the probes), where a run costs little


def pairs(spec, check: str, steps: int) -> list[tuple[tuple[str, str], str, Bug]]:
    """Two catalogued mistakes at once, where cheap: tried only when no single one explains a failure. Any two
    variants of different causes that change different things (`_merge`), on a script of at most PAIR_STEPS
    updates; in `continuation`, the optimizer state and the row window both restarting."""
    if check == "continuation":
        return [(("state-reset", "minibatch-order"), "optimizer state and minibatch window both started again by "
                 "each train() call", Bug(reset="optimizer+window"))]
    if steps > PAIR_STEPS:
        return []
    out = []
    for (c1, l1, b1), (c2, l2, b2) in itertools.combinations(variants(spec, check), 2):
        both = _merge(b1, b2) if c1 != c2 else None
        if both is not None:
            out.append(((c1, c2), f"{l1}, and {l2}", both))
    return out


def _merge(one: Bug, two: Bug) -> Bug | None:
    """One Bug with both mistakes in it; None where they change the same thing."""
    blank, merged = Bug(), {}
    for f in dataclasses.fields(Bug):
        a, b, none = getattr(one, f.name), getattr(two, f.name), getattr(blank, f.name)
        if a != none and b != none:
            return None
        merged[f.name] = a if a != none else b
    return Bug(**merged)


# ---------------------------------------------------------------------------------------------------- diagnosis

@dataclass
class Diagnosis:
    check: str
    where: Where | None
    verdict: str
    causes: list[tuple[Cause, str]] = field(default_factory=list)  # (cause, evidence), most likely first
    tried: int = 0  # hypotheses tested
    label: str = "first failure"  # how lines() introduces the check
    together: bool = False  # the causes are two mistakes at once (no single one explains the failure)

    @property
    def cause(self) -> Cause | None:
        return self.causes[0][0] if self.causes else None

    def lines(self) -> list[str]:
        at = f": {self.where.words()}" if self.where else ""
        out = [f"{self.label}: {self.check}{at}: {self.verdict}"]
        if not self.causes and self.where is not None and self.where.part == "error":
            out.append("likely cause: not diagnosed: a call into the implementation failed (its error is above)")
            return out
        if not self.causes:
            out.append(f"likely cause: none of the {len(CATALOGUE)} in the catalogue explains it, alone or two "
                       f"together ({self.tried} hypotheses tested)")
            return out
        cause, evidence = self.causes[0]
        if self.together:
            out.append("likely cause: two mistakes together: " + "; and ".join(f"{c.title} -- {c.explanation}"
                                                                              for c, _ in self.causes))
            out.append(f"evidence: {evidence}")
            return out
        out.append(f"likely cause: {cause.title} -- {cause.explanation}")
        out.append(f"evidence: {evidence}")
        for other, ev in self.causes[1:]:
            out.append(f"also consistent: {other.title} ({ev})")
        return out

    def to_dict(self) -> dict:
        w = self.where
        return {"check": self.check, "verdict": self.verdict,
                "where": None if w is None else {"part": w.part, "step": w.step, "arrays": w.arrays, "layer": w.layer},
                "cause": None if self.cause is None else {"id": self.cause.id, "title": self.cause.title,
                                                          "explanation": self.cause.explanation},
                "evidence": self.causes[0][1] if self.causes else None,
                "also_consistent": [] if self.together else [c.id for c, _ in self.causes[1:]],
                "together": [c.id for c, _ in self.causes] if self.together else [], "hypotheses_tested": self.tried}


def diagnose(b: Battery, res: CheckResult) -> Diagnosis:
    """The likely cause of the failing check `res`.

    A mistake explains the failure when the reference with it agrees with the implementation in some form of the
    operations, and the same form without it does not: a form that agrees by itself leaves nothing to explain (a
    detection check that found no form tries every form, and one may agree on the failing part alone). Two
    mistakes at once (`pairs`) are tried only when no single one explains it."""
    d = Diagnosis(res.id, res.where, res.verdict)
    if res.status != FAIL or res.script is None or (res.where and res.where.part == "error"):
        return d
    if res.where is None and "train" in (res.parts or ("train",)):  # agrees at every step, and did not converge:
        return d  # no step where a mistake could be replayed
    script = b.scripts[res.script]
    got = b.record(script)
    found: dict[tuple[str, ...], str] = {}

    def hold(cids, evidence):
        d.tried += 1
        cids = (cids,) if isinstance(cids, str) else tuple(cids)
        if evidence and cids not in found:
            found[cids] = evidence

    if res.id == "determinism":
        hold("nondeterministic", f"two runs of the same script from the same weights differ by {res.diff:.2g}, "
                                 f"first at step {res.where.step}")
    else:
        parts = (PART_KEYS[res.where.part],) if res.where else res.parts  # where None: parts without train
        if "params0" in parts:
            for cid, ev in _construction(script, got):
                hold(cid, ev)
        else:
            conv = res.conventions or b.conventions(script.spec)
            upto = script.upto(res.where.step) if "train" in parts else script.upto(0)
            if res.id == "continuation":  # the split run, against the reference split the same way
                upto = b.scripts[res.data["pair"][1]]
                got = b.record(upto)
            mine = _cut(got, upto)
            convs = [conv]
            if res.data.get("form", "") is None:  # a detection check that found no form: try the mistakes in each
                op = next(op for op, check in DETECTORS.items() if check == res.id)
                convs += [dataclasses.replace(conv, **{op: f}) for f in FORMS[op] if f != getattr(conv, op)]
                hold("mixed-forms", _mixed(b, script, got, conv, op, res.parts))
            # a form that agrees without any mistake already explains the failing part: no mistake is evidence there
            convs = [c for c in convs if compare(b, upto, mine, b.reference(upto, c), c, parts).status == DISAGREES]

            def attempt(bug, label):
                tried = []
                for c in convs:
                    want = run_script(lambda s, p: Variant(s, p, c, bug), upto)
                    tried.append((compare(b, upto, mine, want, c, parts), want))
                if not tried:
                    return None
                o, want = min(tried, key=lambda t: (t[0].status, t[0].ratio))
                if o.status == DISAGREES:
                    return None
                return f"the reference with {label} agrees with it: " + \
                    (_quote(res.where, mine, want, upto.spec.dtype) or o.words)

            for cid, label, bug in variants(script.spec, res.id):
                hold(cid, attempt(bug, label))
            if script.spec.batch_size not in (None, 4) and "train" in parts and res.id != "continuation":
                hold("minibatch-order", _rows(script, got, conv))
            if not found and res.id != "continuation":  # float32-sized differences: only when nothing specific fits
                hold("float32", _float32(b, upto, mine, conv, parts))
            if not found:
                for cids, label, bug in pairs(script.spec, res.id, upto.steps):
                    hold(cids, attempt(bug, label))
                    if found:
                        break  # the first pair that agrees, in catalogue order
    order = [c.id for c in CATALOGUE]
    singles = sorted((k for k in found if len(k) == 1), key=lambda k: order.index(k[0]))
    if singles:
        d.causes = [(BY_ID[k[0]], found[k]) for k in singles]
    elif found:  # two mistakes together, and no single one
        k = next(iter(found))
        d.causes, d.together = [(BY_ID[cid], found[k]) for cid in k], True
    return d


def _quote(where: Where | None, got: Record, want: Record, dtype: str) -> str | None:
    """The measure that failed (`where`: the same part, step and arrays), between `got` and `want`, in words."""
    tol = tolerance(dtype)

    def arrays(a: Params, w: Params, which: list[str], rtol: float, what: str) -> str:
        pick = [(x, y) for (n, x), (_, y) in zip(names(a), names(w)) if not which or n in which]
        diff = max(float(np.max(np.abs(x - y), initial=0.0)) for x, y in pick)
        return f"{what} differ by {diff:.2g} (allowed {rtol * max_abs(w):.2g})"

    if where is None or got.error is not None or want.error is not None:
        return None
    named = ", ".join(where.arrays)
    if where.part == "update" and where.step in got.checkpoints and where.step in want.checkpoints and where.arrays:
        s = where.step
        return arrays(got.checkpoints[s], want.checkpoints[s], where.arrays, tol.params, f"{named} after step {s}")
    if where.part == "update" and 0 < where.step <= min(len(got.loss), len(want.loss)):
        s = where.step
        diff, scale = abs(got.loss[s - 1] - want.loss[s - 1]), float(np.max(np.abs(want.loss[:s])))
        return f"the loss of step {s} differs by {diff:.2g} (allowed {tol.loss * scale:.2g})"
    if where.part == "gradient" and got.grads is not None and want.grads is not None:
        return arrays(got.grads, want.grads, where.arrays, tol.gradient,
                      f"the gradients of {named}" if named else "the gradients")
    if where.part == "forward" and got.outputs is not None and want.outputs is not None:
        diff = float(np.max(np.abs(got.outputs - want.outputs)))
        return f"outputs differ by {diff:.2g} (allowed {tol.forward * float(np.max(np.abs(want.outputs))):.2g})"
    if where.part == "loss" and got.loss0 is not None and want.loss0 is not None:
        return f"the loss differs by {abs(got.loss0 - want.loss0):.2g} (allowed {tol.loss * abs(want.loss0):.2g})"
    return None


def _mixed(b: Battery, script: Script, got: Record, conv: Conventions, op: str, parts) -> str | None:
    """The loss agrees with one form of `op` and the gradients with another, and no form with both."""
    if not {"loss0", "gradients"} <= set(parts) or got.error is not None:
        return None
    fits = {}
    for part in ("loss0", "gradients"):
        fits[part] = [f for f in FORMS[op] if compare(b, script, got, b.reference(script, c := dataclasses.replace(
            conv, **{op: f})), c, (part,)).status < DISAGREES]
    if not all(fits.values()) or set(fits["loss0"]) & set(fits["gradients"]):
        return None
    return (f"its loss agrees with the {'/'.join(fits['loss0'])} form of {op} only, its gradients with the "
            f"{'/'.join(fits['gradients'])} form only")


def _cut(rec: Record, script: Script) -> Record:
    return cut(rec, script.steps)


def _construction(script: Script, got: Record):
    """params() against the params given: transposed, or rounded to float32."""
    given = script.params
    if got.params0 is None:
        return
    pairs = list(zip(names(got.params0), names(given)))
    if len(got.params0) == len(given):
        flipped = [n for (n, a), (_, g) in pairs if n[0] == "W" and a.shape == g.T.shape and np.array_equal(a, g.T)
                   and not np.array_equal(a, g)]
        rest_ok = all(np.array_equal(a, g) for (n, a), (_, g) in pairs if n not in flipped)
        if flipped and rest_ok:
            shown = ", ".join(f"{n} as {a.shape}" for (n, a), _ in pairs if n in flipped)  # the shape returned
            yield "transposed-weights", f"params() returns the given weights transposed: {shown}"
        same_shapes = all(a.shape == g.shape for (_, a), (_, g) in pairs)
        if same_shapes and all(np.array_equal(a, g.astype(np.float32).astype(np.float64)) for (_, a), (_, g) in pairs) \
                and script.spec.dtype == "float64":
            yield "float32", "params() returns the given float64 weights rounded to float32"


def _float32(b: Battery, script: Script, got: Record, conv: Conventions, parts) -> str | None:
    """Float32-sized differences: agreement with the float64 reference by float32's tolerance policy (its rounding
    floor: how far rounding every activation and gradient to float32 moves the reference, `verify.floor_for`), and
    with a float32 reference, where that one is a witness: where the float32 reference itself disagrees with the
    float64 one (float32 rounding changes what the script computes, e.g. a sigmoid saturating to exactly 1 under a
    clip), a run that rounds to float32 in parts only cannot agree with both, and the first test decides alone."""
    if script.spec.dtype != "float64":
        return None
    want = b.reference(script, conv)
    o64 = compare(b, script, got, want, conv, parts, policy="float32")
    if o64.status == DISAGREES:
        return None
    s32 = dataclasses.replace(script, key=f"{script.key}@float32", spec=script.spec.replace(dtype="float32"))
    ref32 = b.reference(s32, conv)
    sized = (f"the differences are float32-sized: by float32's tolerances, against the float64 reference, "
             f"{o64.words}")
    o32 = compare(b, s32, got, ref32, conv, parts, policy="float32")
    if o32.status != DISAGREES:
        return f"{sized}; and against a float32 reference, {o32.words}"
    gap = compare(b, script, ref32, want, conv, parts, policy="float32")
    if gap.status != DISAGREES:
        return None  # a float32 run agrees with the float64 one here, and this run does not: not float32 rounding
    return (f"{sized}; a float32 reference is no witness on this script: float32 changes what it computes "
            f"(against the float64 reference, {gap.words})")


def _rows(script: Script, got: Record, conv: Conventions) -> str | None:
    """Which rows each step used, from each step's loss at the implementation's own params before that step."""
    spec, x, y = script.spec, *xor_data(script.spec.dtype)
    if got.error is not None:
        return None
    subsets = [list(r) for n in range(1, 5) for r in itertools.combinations(range(4), n)]
    tol, seen, first_bad = tolerance(spec.dtype), [], None
    before = script.params
    for s in range(1, len(got.loss) + 1):
        if s > 1 and (s - 1) not in got.checkpoints:
            break
        if s > 1:
            before = got.checkpoints[s - 1]
        ref = Reference(spec, before, conv)
        with np.errstate(all="ignore"):
            fits = [r for r in subsets if classify(abs(ref.loss(x[r], y[r]) - got.loss[s - 1]),
                                                   tol.loss * abs(ref.loss(x[r], y[r]))) == AGREES]
        window = batch_rows(s - 1, spec.batch_size, 4).tolist()
        rows = window if sorted(window) in fits else (fits[0] if fits else None)
        seen.append((s, rows, window))
        if rows != window and first_bad is None:
            first_bad = s
    if first_bad is None or seen[first_bad - 1][1] is None:
        return None
    used = " ".join(str(r) if r is not None else "?" for _, r, _ in seen)
    contract = " ".join(str(w) for _, _, w in seen)
    return (f"step {first_bad}'s loss is the loss of rows {seen[first_bad - 1][1]}, not of the window "
            f"{seen[first_bad - 1][2]}; rows by step: {used}; the contract's: {contract}")
