"""`verify`: the battery on one implementation, and the first failure diagnosed."""
from __future__ import annotations

import time
from typing import Callable

from xor_rosetta.checks.battery import Battery
from xor_rosetta.checks.catalogue import CHECKS
from xor_rosetta.checks.diagnose import diagnose
from xor_rosetta.checks.judging import FAIL
from xor_rosetta.checks.report import Report
from xor_rosetta.checks.subject import BadTarget


def verify(target, dtype: str = "float64", level: str = "full", ids=None, exitfirst: bool = False,
           progress: Callable[[str, int], None] | None = None, strict: bool = False) -> Report:
    """Run the battery (or the checks `ids`) on `target`, and diagnose the first failure; `exitfirst` stops
    the battery there. `target`: a registry name, a class, a factory, a Subject or a Battery.

    A subject that declares a known difference in `dtype` (`known_differences`: float32 arithmetic inside a float64
    run) has the numbers it computes judged under that difference's model, and the checks that pass say so;
    `strict` judges them in `dtype` itself, where such a difference fails (and is diagnosed like any other)."""
    b = target if isinstance(target, Battery) else Battery(target, dtype, level, strict)
    unknown = [c for c in ids or () if c not in CHECKS]
    if unknown:
        raise BadTarget(f"unknown check {unknown[0]!r}; choose from: {', '.join(CHECKS)}")
    start, results = time.perf_counter(), []
    for i, c in enumerate(ids or CHECKS):
        if progress:
            progress(c, i)
        results.append(b.run(c))
        if exitfirst and results[-1].status == FAIL:
            break
    b.seconds += time.perf_counter() - start
    first = next((r for r in results if r.status == FAIL), None)
    diagnosis = None if first is None else first.diagnosis or diagnose(b, first)
    return Report(b.subject, b.dtype, b.level, results, dict(b.detected), diagnosis, b.seconds, b.modelled)
