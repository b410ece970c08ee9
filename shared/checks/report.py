"""The scorecard of a verification: every check's result, the conventions detected, a known difference and the
diagnosis; as text lines, JSON and Markdown."""
from __future__ import annotations

from dataclasses import dataclass

from xor_rosetta.reference import FORMS
from xor_rosetta.checks.catalogue import DETECTORS, describe
from xor_rosetta.checks.judging import FAIL, PASS, SKIP, CheckResult
from xor_rosetta.checks.subject import Subject


@dataclass
class Report:
    subject: Subject
    dtype: str
    level: str
    results: list[CheckResult]
    conventions: dict  # op -> detection
    diagnosis: object | None  # xor_rosetta.checks.diagnose.Diagnosis of the first failure not by a known difference
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
        """The forms detected, on one line; "" when every detection met an error (nothing computed to detect)."""
        parts, errors = [], 0
        for op in ("adam", "momentum", "bce"):
            d = self.conventions.get(op)
            if d is None:
                continue
            others = [f for f in d["consistent"] if f != d["form"]]
            check = next((r for r in self.results if r.id == DETECTORS[op]), None)
            if d["form"] is None and d.get("error"):
                errors += 1  # every call it would detect a form from failed: nothing was computed
                continue
            if d["form"] is None and check is not None and check.known is not None:
                parts.append(f"{op} not told apart, under the known difference (closest: {check.data.get('closest')})")
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
            result = "known" if r.known is not None else r.status.upper() if r.status == FAIL else r.status
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
        if self.convention_line():
            out += ["", self.convention_line()]
        if self.known:
            out += ["", "## Known difference", ""] + [f"- {line}" for line in self.known_lines()]
        if self.diagnosis is not None:
            out += ["", "## Diagnosis", ""] + [f"- {line}" for line in self.diagnosis.lines()]
        return "\n".join(out) + "\n"
