"""The battery: runs the checks on one subject, each script once, with reference records, rounding floors and
detected conventions cached."""
from __future__ import annotations

import dataclasses
import time

from xor_rosetta.interface import Conventions
from xor_rosetta.reference import FORMS, Floor, Reference
from xor_rosetta.spec import DTYPES, Optimizer, Spec
from xor_rosetta.tolerance import modelled, modelled_label, policy_for
from xor_rosetta.checks.catalogue import CHECKS, DETECTORS, JUDGES
from xor_rosetta.checks.judging import DISAGREES, PASS, SKIP, CheckResult, Outcome, SkipCheck, compare
from xor_rosetta.checks.scripts import SCRIPTS, Record, Script, cut, run_script
from xor_rosetta.checks.subject import BadTarget, subject_for


LEVELS = ("full", "quick")  # full: the CLI's default; quick: what the built-in tests run (see CHECKS)


class Battery:
    """Runs the checks on one subject, each script once; reference records and rounding floors cached."""

    def __init__(self, subject, dtype: str = "float64", level: str = "full", strict: bool = False):
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
        self.strict = strict  # judge a declared known difference as a failure, not under its model

    # scripts, records, references
    def script(self, key: str) -> Script | None:
        if key not in self.scripts:
            self.scripts[key] = SCRIPTS[key](self)
        return self.scripts[key]

    def record(self, script: Script) -> Record:
        """What the subject answered to `script` (run once); SkipCheck where its constructor declined the spec."""
        if script.key not in self.records:
            self.records[script.key] = run_script(self.subject.factory, script)
        if self.records[script.key].declined is not None:
            raise SkipCheck(f"unsupported: {self.records[script.key].declined} (its constructor declines)")
        return self.records[script.key]

    def reference(self, script: Script, conv: Conventions) -> Record:
        key = (script.key, script.steps, conv)
        if key not in self.refs:
            self.refs[key] = run_script(lambda s, p: Reference(s, p, conv), script)
        return self.refs[key]

    def against(self, script: Script, parts, conv: Conventions | None = None, got: Record | None = None,
                policy: str | None = None, upto: int | None = None) -> tuple[Script, Outcome, Conventions, tuple]:
        """`script`'s record (or `got`) against the reference in `conv` (default: the detected conventions),
        on `parts`, up to update `upto` (default: all). By the policy of the script's dtype, or, for the numbers
        a subject with a declared known difference computes, under that difference's model (`tolerance.modelled`:
        float32's policy, and float32 arithmetic inside the run as its rounding floor), unless `strict`."""
        conv = conv or self.conventions(script.spec)
        if policy is None and "params0" not in parts:  # params() reads back the weights given: nothing to model
            policy = self.policy(script.spec)
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
                             "verdicts": {f: t[1].words for f, t in outcomes.items()},
                             "error": all(t[1].error is not None for t in outcomes.values()),  # nothing to detect from
                             "contradicts": form is not None and declared is not None and declared not in consistent}
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
            res = self.results[cid]
            if res.status == PASS and JUDGES[cid] == "reference" and self.modelled:
                res.modelled = self.known_difference
                res.verdict += f" ({modelled_label(self.known_difference)})"
            self.results[cid].data.setdefault("seconds", round(time.perf_counter() - start, 3))
        return self.results[cid]

    @property
    def known_difference(self) -> str | None:
        """The subject's declared known difference in this battery's dtype, if any."""
        return self.subject.known_differences.get(self.dtype)

    def policy(self, spec: Spec) -> str:
        """The dtype whose tolerances judge the numbers computed on `spec` (its own, or float32 under the model of
        a declared known difference)."""
        return policy_for(spec.dtype, self.subject.known_differences.get(spec.dtype), self.strict)

    @property
    def modelled(self) -> bool:
        """Whether the numbers it computes are judged under its declared known difference's model."""
        return modelled(self.dtype, self.known_difference, self.strict)

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
        width = max(width, sup["min_width"])
        if sup["uniform_hidden_activations"]:
            hidden = hidden[:1] * depth
        by_output = sup["losses_by_output"]
        if by_output is not None and loss not in by_output.get(out, ()):  # an (output, loss) pair it computes
            pairs = [(x, a) for a in ("linear", "sigmoid", "tanh", "relu") if a in sup["output_activations"]
                     for x in by_output.get(a, ()) if x in sup["losses"] and (x == "mse" or a == "sigmoid")]
            loss, out = next((p for p in pairs if p[0] == loss), pairs[0] if pairs else (loss, out))
        return spec.replace(layers=(2,) + (width,) * depth + (1,), activations=tuple(hidden) + (out,), loss=loss,
                            optimizer=o, batch_size=batch, dtype=self.dtype if spec.dtype == "float64" else spec.dtype)
