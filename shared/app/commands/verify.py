"""`xor-rosetta verify`: a battery of named checks against the reference, a scorecard, and a diagnosis."""
from __future__ import annotations

import re

from ...errors import XorRosettaError
from ..cli import EXIT_FAIL, EXIT_OK, writable_dir
from xor_rosetta.app.workers.pool import _positive

NAME, HELP = "verify", "check one implementation (yours too) against the reference, check by check, and say why it fails"


def add_arguments(sp) -> None:
    sp.add_argument("target", nargs="?", metavar="TARGET",
                    help="a built-in or plug-in name, package.module:ClassName or path/to/file.py:ClassName")
    sp.add_argument("--cmd", metavar="COMMAND", help='instead of TARGET: a child process speaking the protocol of '
                    'docs/protocol.md, e.g. --cmd "node mlp.js"')
    sp.add_argument("--dtype", metavar="float32|float64", default="float64", help="the battery's dtype (default float64)")
    sp.add_argument("--quick", action="store_true", help="the quick battery: seed-numpy to 1,000 of its 10,000 steps, "
                    "1 random spec instead of 20")
    sp.add_argument("--checks", metavar="a,b,...", help="run only these checks (ids as in the scorecard)")
    sp.add_argument("-x", "--exitfirst", action="store_true", help="stop at the first failing check")
    sp.add_argument("--strict", action="store_true", help="judge every check in the battery's dtype: a declared "
                    "known difference (float32 arithmetic inside a float64 run) then fails instead of being judged "
                    "under its model")
    sp.add_argument("--out", metavar="DIR", help="where report.md and report.json go (default runs/verify-NAME)")
    sp.add_argument("--timeout", type=_positive(float), metavar="SECONDS", help="a check whose calls into the target "
                    "run longer than this fails with the reason: a Python target's worker is stopped; a --cmd child "
                    "and its process group are ended and the next check gets a fresh one (default: no limit for a "
                    "Python target; each answer of a --cmd child within 120 s)")
    sp.add_argument("--total-timeout", type=_positive(float), metavar="SECONDS", help="the same for the calls of the "
                    "whole battery (a Python target): past it, every call left fails at once; default: no limit")


def run(a) -> int:
    from xor_rosetta.app.workers.pool import Workers
    with Workers() as workers:
        return _run(a, workers)


def _run(a, workers) -> int:
    from xor_rosetta import registry
    from xor_rosetta.app.workers.contain import Clock, contained_subject
    from xor_rosetta.app.workers.remote import load_anywhere
    from xor_rosetta.checks import set_loader, subject_for
    set_loader(load_anywhere)

    if (a.target is None) == (a.cmd is None):
        raise XorRosettaError("verify needs TARGET or --cmd COMMAND (one of them)")
    clock, session = Clock(a.timeout, a.total_timeout), None
    if a.cmd is not None:
        if a.total_timeout is not None:
            raise XorRosettaError("verify --total-timeout applies to Python targets; with --cmd, --timeout bounds "
                                  "each check")
        from xor_rosetta.app.workers.protocol import TIMEOUT_S, command_class
        cls = command_class(a.cmd, timeout=a.timeout or TIMEOUT_S)  # hello within --timeout too
        session = cls.session
        try:
            target = subject_for(cls, name=None)
        except XorRosettaError:
            session.close()
            raise
        target.source = f"command {a.cmd}"
    elif registry.get_entry(a.target).process_key.startswith("in-process:"):
        target = a.target  # a class registered in this process only runs here
    else:
        target = contained_subject(a.target, workers, clock)  # a Python target runs in a worker of its own
    try:
        return _verify(a, target, session, clock)
    finally:
        if session is not None:
            session.close()  # the child and its process group end with the command


def _with_budget(battery, session, seconds: float) -> None:
    """Bound each check (the outermost one, when a check runs another) by one deadline of `seconds` for all its
    requests to the child; outside the checks (the diagnosis), each answer must come within `seconds`."""
    run, depth = battery.run, [0]
    session.timeout = seconds

    def timed(cid):
        if depth[0] == 0:
            session.budget(seconds)
        depth[0] += 1
        try:
            return run(cid)
        finally:
            depth[0] -= 1
            if depth[0] == 0:
                session.unbudget()
    battery.run = timed


def _verify(a, target, session, clock) -> int:
    from xor_rosetta.app.common.files import json_text, write_set
    from xor_rosetta.app.common.progress import Progress
    from xor_rosetta.checks import CHECKS, Battery, verify
    ids = None
    if a.checks is not None:
        ids = [c.strip() for c in a.checks.split(",") if c.strip()]
        if not ids:
            raise XorRosettaError(f"--checks names no check (got {a.checks!r}); give a,b,... or leave it out for all")
        unknown = [c for c in ids if c not in CHECKS]
        if unknown:
            raise XorRosettaError(f"unknown check {unknown[0]!r}; choose from: {', '.join(CHECKS)}")
    if a.out:
        writable_dir(a.out)  # an output folder it cannot write fails now, not after the battery
    battery = Battery(target, a.dtype, "quick" if a.quick else "full", a.strict)  # bad input fails here, before any work
    if session is not None and a.timeout is not None:
        _with_budget(battery, session, a.timeout)

    def progress(c, i):
        clock.start_check()
        bar.update(c, i)

    with Progress(len(ids or CHECKS), enabled=not a.quiet) as bar:
        report = verify(battery, ids=ids, exitfirst=a.exitfirst, progress=progress)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", report.subject.name).strip("-") or "implementation"
    out = writable_dir(a.out or f"runs/verify-{safe}")
    write_set(out, {"report.json": report.to_dict(), "report.md": report.markdown()})  # one set
    if a.json:
        print(json_text(report.to_dict()))
    else:
        print("\n".join(report.lines()))
        if not a.quiet:
            print(f"wrote {out}/report.md and report.json")
    return EXIT_OK if report.passed else EXIT_FAIL
