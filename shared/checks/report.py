"""The scorecard of a verification: every check's result, the conventions detected, a declared known difference and
how it was judged, and the diagnosis; as text lines, JSON and Markdown."""
from __future__ import annotations

from dataclasses import dataclass

from xor_rosetta.reference import FORMS
from xor_rosetta.tolerance import modelled_label
from xor_rosetta.checks.catalogue import describe
from xor_rosetta.checks.judging import FAIL, PASS, SKIP, CheckResult
from xor_rosetta.checks.subject import Subject


@dataclass
class Report:
    subject: Subject
    dtype: str
    level: str
    results: list[CheckResult]
    conventions: dict  # op -> detection
    diagnosis: object | None  # xor_rosetta.checks.diagnose.Diagnosis of the first failure
    seconds: float
    modelled: bool = False  # the numbers it computes were judged under its declared known difference's model

    @property
    def passed(self) -> bool:
        """No check fails."""
        return all(r.status != FAIL for r in self.results)

    @property
    def under_model(self) -> list[CheckResult]:
        """The checks that passed under the subject's declared known difference's model."""
        return [r for r in self.results if r.modelled is not None]

    def counts(self) -> dict:
        """pass, fail, skip, and modelled: the passes (counted in pass too) under the declared difference's model."""
        return {**{k: sum(r.status == k for r in self.results) for k in (PASS, FAIL, SKIP)},
                "modelled": len(self.under_model)}

    def summary(self) -> str:
        c = self.counts()
        by = f" ({c['modelled']} under the known difference's model)" if c["modelled"] else ""
        return f"{c[PASS]} passed{by}, {c[FAIL]} failed, {c[SKIP]} skipped in {self.seconds:.1f} s"

    def known_lines(self) -> list[str]:
        """The declared known difference, and how it was judged."""
        why = self.subject.known_differences.get(self.dtype)
        if why is None:
            return []
        if not self.modelled:
            return [f"known difference, declared for {self.dtype} and judged strictly (--strict): {why}"]
        return [f"known difference, modelled ({modelled_label(why)}): {why}",
                f"the numbers it computes are judged by float32's tolerances against the {self.dtype} reference, "
                f"with float32 arithmetic inside the run as their rounding floor; anything else, or a larger "
                f"difference, still fails (--strict fails the difference itself)"]

    def verdict_text(self, r: CheckResult) -> str:
        return r.verdict + (f"; {r.detail}" if r.detail else "")

    def convention_line(self) -> str:
        """The forms detected, on one line; "" when every detection met an error (nothing computed to detect)."""
        parts, errors = [], 0
        for op in ("adam", "momentum", "bce"):
            d = self.conventions.get(op)
            if d is None:
                continue
            others = [f for f in d["consistent"] if f != d["form"]]
            if d["form"] is None and d.get("error"):
                errors += 1  # every call it would detect a form from failed: nothing was computed
                continue
            contradicts = d["form"] is not None and d.get("declared") and d["declared"] not in d["consistent"]
            parts.append(f"{op} {d['form'] or 'none of ' + '/'.join(FORMS[op])}" +
                         (f", CONTRADICTING its declared {d['declared']}" if contradicts else "") +
                         (f" (also consistent: {', '.join(others)})" if others else ""))
        if not parts and errors:
            return ""
        return "conventions detected: " + ("; ".join(parts) if parts else "none tested")

    def lines(self) -> list[str]:
        head = f"verify {self.subject.name}" + (f" ({self.subject.source})" if self.subject.source else "")
        out = [f"{head}: {self.dtype}, {self.level} battery", ""]
        w = max(len(r.id) for r in self.results)
        out.append(f"{'check':<{w}}  {'result':<6}  {'measured':>9}  {'tolerance':>9}  verdict")
        for r in self.results:
            measured = "" if r.diff is None else f"{r.diff:.2g}"
            allowed = "" if r.allowed is None else f"{r.allowed:.2g}"
            result = r.status.upper() if r.status == FAIL else r.status
            out.append(f"{r.id:<{w}}  {result:<6}  {measured:>9}  {allowed:>9}  {self.verdict_text(r)}")
        out += [""] + [line for line in (self.convention_line(),) if line] + self.known_lines()
        if self.diagnosis is not None:
            out += self.diagnosis.lines()
        out.append(self.summary())
        return out

    def to_dict(self) -> dict:
        return {"implementation": self.subject.name, "source": self.subject.source, "dtype": self.dtype,
                "level": self.level, "passed": self.passed, "counts": self.counts(),
                "supports": {k: list(v) if isinstance(v, tuple) else v for k, v in self.subject.supports.items()},
                "declared_conventions": None if self.subject.declared is None else self.subject.declared.to_dict(),
                "conventions": self.conventions,
                "declared_known_differences": dict(self.subject.known_differences),
                "known_difference_modelled": self.modelled,
                "checks": [dict(r.to_dict(), measures=describe(r.id)) for r in self.results],
                "diagnosis": None if self.diagnosis is None else self.diagnosis.to_dict(),
                "seconds": round(self.seconds, 2)}

    def markdown(self) -> str:
        out = [f"# verify: {self.subject.name}", "",
               f"{self.subject.source or 'implementation'}; {self.dtype}; {self.level} battery; "
               f"{self.summary()}.", "",
               "| check | what it measures | result | measured | tolerance | verdict |", "|---|---|---|---:|---:|---|"]
        for r in self.results:
            text = self.verdict_text(r).replace("|", "\\|")
            status = r.status
            out.append(f"| {r.id} | {describe(r.id)} | {status} | {'' if r.diff is None else f'{r.diff:.2g}'} | "
                       f"{'' if r.allowed is None else f'{r.allowed:.2g}'} | {text} |")
        if self.convention_line():
            out += ["", self.convention_line()]
        if self.known_lines():
            out += ["", "## Known difference", ""] + [f"- {line}" for line in self.known_lines()]
        if self.diagnosis is not None:
            out += ["", "## Diagnosis", ""] + [f"- {line}" for line in self.diagnosis.lines()]
        return "\n".join(out) + "\n"
