"""The conformance kit: named checks that measure any MLP against the reference, their diagnosis, and pytest's entry.

    from xor_rosetta.checks import verify
    report = verify(MyMLP)            # every check, small to large; report.passed, report.lines()

    from xor_rosetta.checks import parametrize_with_checks
    @parametrize_with_checks([MyMLP])
    def test_conformance(impl, check):
        check(impl)

It imports the core alone (spec, params, interface, reference, tolerance), never the application or a framework.
"""
from xor_rosetta.checks.battery import LEVELS, Battery
from xor_rosetta.checks.catalogue import CHECKS, DETECTORS, JUDGES, describe, precision_checks
from xor_rosetta.checks.diagnose import CATALOGUE, Cause, Diagnosis, diagnose
from xor_rosetta.checks.judging import FAIL, PASS, SKIP, CheckResult, SkipCheck
from xor_rosetta.checks.report import Report
from xor_rosetta.checks.run import verify
from xor_rosetta.checks.subject import SUPPORT_KEYS, BadTarget, Subject, set_loader, subject_for
from xor_rosetta.checks.testing import Check, parametrize_with_checks

__all__ = ["verify", "Report", "Battery", "LEVELS", "CHECKS", "DETECTORS", "JUDGES", "describe", "precision_checks",
           "CheckResult", "SkipCheck", "PASS", "FAIL", "SKIP", "CATALOGUE", "Cause", "Diagnosis", "diagnose",
           "Subject", "subject_for", "set_loader", "SUPPORT_KEYS", "BadTarget", "Check", "parametrize_with_checks"]
