"""`xor-rosetta bench`: speed of every variant; writes benchmarks.md, benchmarks.json and a plot."""
from __future__ import annotations


from xor_rosetta.app.common.files import json_text
from ..cli import EXIT_OK, writable_dir

NAME, HELP = "bench", "speed of every variant, and compare against the bare imports; writes benchmarks.md/.json"


def add_arguments(sp) -> None:
    sp.add_argument("--quick", action="store_true", help="a shorter run (fewer rounds, a smaller scaling "
                    "sweep, 1,000 vectorised runs instead of 10,000, no compare timing)")
    sp.add_argument("--out", metavar="DIR", help="output folder (default: results/ of the checkout, else ./results)")


def run(a) -> int:
    from xor_rosetta.app.bench import speed as bench
    from xor_rosetta.app.common.progress import Progress

    from xor_rosetta.app.common.project import results_dir
    out = writable_dir(results_dir(a.out))
    from ... import registry
    total = sum(registry.unavailable_reason(e) is None for e in registry.ENTRIES) + 4 + (0 if a.quick else 4)
    with Progress(total, enabled=not a.quiet) as bar:
        steps = iter(range(total))
        report = bench.run(a.quick, out, progress=lambda label: bar.update(label, next(steps, total)))
    if a.json:
        print(json_text(report))
    else:
        print((out / "benchmarks.md").read_text())
    return EXIT_OK
