"""`verify`: the battery on one implementation, every failure in a dtype with a declared known difference
diagnosed, and the first other failure explained."""
from __future__ import annotations

import dataclasses
import time
from typing import Callable

from xor_rosetta.checks.battery import Battery
from xor_rosetta.checks.catalogue import CHECKS
from xor_rosetta.checks.diagnose import diagnose, explain_known
from xor_rosetta.checks.judging import FAIL
from xor_rosetta.checks.report import Report
from xor_rosetta.checks.subject import BadTarget


def verify(target, dtype: str = "float64", level: str = "full", ids=None, exitfirst: bool = False,
           progress: Callable[[str, int], None] | None = None) -> Report:
    """Run the battery (or the checks `ids`) on `target`, and diagnose the first failure; `exitfirst` stops
    the battery there. `target`: a registry name, a class, a factory, a Subject or a Battery.

    In a dtype for which the subject declares a known difference (`known_differences`), every failure is
    diagnosed; those diagnosed as the cause the declaration stands for (`diagnose.KNOWN_CAUSES`), and nothing
    else, are failures by the known difference (`CheckResult.known`, reported as such; they still fail, and
    `exitfirst` does not stop at them); the first other failure is the one diagnosed in the report."""
    b = target if isinstance(target, Battery) else Battery(target, dtype, level)
    b.explain = b.explain or explain_known
    unknown = [c for c in ids or () if c not in CHECKS]
    if unknown:
        raise BadTarget(f"unknown check {unknown[0]!r}; choose from: {', '.join(CHECKS)}")
    start, results = time.perf_counter(), []
    for i, c in enumerate(ids or CHECKS):
        if progress:
            progress(c, i)
        results.append(b.run(c))
        if exitfirst and results[-1].status == FAIL and results[-1].known is None:
            break
    b.seconds += time.perf_counter() - start
    first = next((r for r in results if r.status == FAIL and r.known is None), None)
    diagnosis = None
    if first is not None:
        diagnosis = first.diagnosis or diagnose(b, first)
        if any(r.known is not None for r in results):
            diagnosis = dataclasses.replace(diagnosis, label="first other failure")
    return Report(b.subject, b.dtype, b.level, results, dict(b.detected), diagnosis, b.seconds)
