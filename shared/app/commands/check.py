"""`xor-rosetta check`: re-run the golden cases and compare with the golden files."""
from __future__ import annotations

import sys

from ... import registry
from ...errors import XorRosettaError
from xor_rosetta.app.common.files import json_text
from ..cli import EXIT_FAIL, EXIT_OK, impl_names
from xor_rosetta.app.workers.pool import add_options

NAME, HELP = "check", "re-run the golden cases and compare with results/golden/"


def add_arguments(sp) -> None:
    sp.add_argument("--update", action="store_true", help="rewrite the golden files (the only command that does)")
    sp.add_argument("--impls", metavar="a,b,...", help="implementations to check (default: all)")
    sp.add_argument("--golden-dir", metavar="DIR", help="the golden folder (default: results/golden of the checkout "
                    "around the working directory; else the installed package's copy, read-only)")
    add_options(sp)


def run(a) -> int:
    from xor_rosetta.app.run import golden
    from xor_rosetta.app.common.progress import Progress

    from xor_rosetta.app.common.project import golden_dir
    folder = golden_dir(a.golden_dir, write=a.update)
    names = impl_names(a.impls)
    outside = [n for n in names if n not in registry.REGISTRY]
    if outside:  # plug-ins and module:Class names are accepted elsewhere; golden files exist for the built-ins only
        raise XorRosettaError(f"check replays the built-ins' golden files; {outside[0]!r} has none (compare or verify "
                              f"it instead)")
    all_cases = golden.cases(names)
    runnable = [c for c in all_cases if registry.unavailable_reason(registry.REGISTRY[c.impl]) is None]
    skipped = sorted({c.impl for c in all_cases} - {c.impl for c in runnable})
    if not a.update:
        wants = {c: golden.load(c, folder) for c in runnable}  # missing or corrupt files are bad input
    with Progress(len(runnable), enabled=not a.quiet) as bar:
        bar.update("running the golden cases in worker processes", 0)
        got = golden.compute_all(runnable, a.jobs, a.timeout, progress=lambda label, done: bar.update(label, done))
    failed = {c: why for c, why in got.items() if isinstance(why, str)}
    say = sys.stderr if a.json else sys.stdout  # with --json, stdout holds the JSON and nothing else
    for impl in skipped:
        print(f"skipped {impl}: {registry.unavailable_reason(registry.REGISTRY[impl])}", file=say)
    for c, why in failed.items():
        print(f"ERROR {c}: {why}", file=sys.stderr)
    if a.update and failed:
        print(f"{len(failed)} golden case(s) could not run; nothing was written", file=sys.stderr)
        return EXIT_FAIL
    if a.update:
        return _update(golden, folder, got)
    problems = []
    runnable = [c for c in runnable if c not in failed]
    for c in runnable:
        lines = golden.drift(c, wants[c], got[c])
        if lines:  # over the tolerance: is it within this run's own rounding noise?
            lines = golden.drift(c, wants[c], got[c], golden.rounding_floor(c, got[c]["conventions"]))
        problems += lines
    for c in runnable:
        if wants[c].get("versions") != got[c]["versions"]:
            print(f"note: {c} was recorded with {wants[c].get('versions')}, now {got[c]['versions']}", file=say)
    if a.json:
        print(json_text({"cases": [str(c) for c in runnable], "skipped": skipped, "drift": problems,
                         "errors": {str(c): why for c, why in failed.items()}}))
    for line in problems:
        print(f"DRIFT {line}", file=sys.stderr)
    if problems:
        print(f"{len(problems)} golden value(s) drifted; if the change is intended: xor-rosetta check --update",
              file=sys.stderr)
    if problems or failed:
        return EXIT_FAIL
    print(f"all {len(runnable)} golden cases hold ({folder})", file=say)
    return EXIT_OK


def _update(golden, folder, got) -> int:
    results = dict(got)
    for c in golden.cases():  # keep the cases not re-run here (filtered out, or framework missing)
        if c not in results and (folder / c.file).is_file():
            try:
                results[c] = golden.load(c, folder)
            except XorRosettaError as e:
                print(f"dropping {c}: {e}")
    changes = []
    for c, data in got.items():
        try:
            lines = golden.drift(c, golden.load(c, folder), data)
            changes.append(f"{c}: {'unchanged' if not lines else f'changed ({len(lines)} values)'}")
            changes += [f"  {line}" for line in lines[:5]]
        except XorRosettaError:
            changes.append(f"{c}: new")
    golden.write_all(results, folder)
    print("\n".join(changes))
    print(f"wrote {len(results)} golden files to {folder}")
    return EXIT_OK
