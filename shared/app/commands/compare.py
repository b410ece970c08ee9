"""`xor-rosetta compare`: every implementation from one set of initial weights, judged against the reference."""
from __future__ import annotations

import os
import sys
import time

from ..cli import EXIT_FAIL, EXIT_OK, add_spec_options, impl_names, threshold_value, writable_dir
from xor_rosetta.app.workers.pool import add_options

NAME, HELP = "compare", "train implementations from the same weights and compare with the NumPy reference"


def add_arguments(sp) -> None:
    sp.add_argument("--impls", metavar="a,b,...", help="implementations to run (default: all)")
    sp.add_argument("--cmd", action="append", metavar="COMMAND", help='also run a child process speaking the '
                    'protocol of docs/protocol.md, e.g. --cmd "node mlp.js" (repeatable; it runs in a worker process, '
                    'bounded by --timeout like the others)')
    sp.add_argument("--threshold", type=threshold_value, help="convergence loss (default 1e-6 for mse, 0.05 for bce)")
    sp.add_argument("--strict", action="store_true", help="judge every implementation in the run's own dtype: a "
                    "declared known difference (Keras on JAX and torch compute in float32 inside a float64 run) "
                    "then fails instead of being judged under its model")
    add_spec_options(sp)
    add_options(sp)


def run(a) -> int:
    from xor_rosetta import registry
    registered: list[str] = []  # the --cmd children's names: this process forgets them when the command ends
    try:
        return _run(a, registered)
    finally:
        for n in registered:
            registry.unregister(n)


def _run(a, registered: list[str]) -> int:
    from xor_rosetta.app.common.config import choose_spec
    from ...params import init_params
    from xor_rosetta.app.common.progress import Progress
    from xor_rosetta.app.run.report import counted, summary, table, notes, write
    from xor_rosetta.compare import DEFAULT_THRESHOLD
    from xor_rosetta.app.run.runner import checkpoints_for, run_all
    from xor_rosetta.app.common.files import json_text
    from xor_rosetta.app.common.resources import check_fits

    name, spec = choose_spec(a.preset, a.config, dtype=a.dtype, steps=a.steps, init=a.init)
    names = impl_names(a.impls)
    if a.cmd:  # each child says hello here (bad input stops now), then runs in a worker, bounded by --timeout
        from xor_rosetta import registry
        from xor_rosetta.app.workers.protocol import TIMEOUT_S, register_command
        for command in a.cmd:
            names.append(register_command(command, timeout=a.timeout or TIMEOUT_S))
            registered.append(names[-1])
            registry.load(names[-1]).session.close()  # its worker starts a child of its own
    check_fits(spec, len(names))  # a run that would not fit in memory stops here, before it starts
    if not a.quiet and not a.json:
        from xor_rosetta.app.run.costs import cost_note
        note = cost_note(names, spec, jobs=a.jobs or os.cpu_count() or 1)
        if note:
            print(note, file=sys.stderr)
    out = writable_dir(a.out or f"runs/compare-{name}")
    threshold = a.threshold if a.threshold is not None else DEFAULT_THRESHOLD[spec.loss]
    params = init_params(spec)  # one set of initial weights for everyone
    ks = checkpoints_for(spec.steps)
    start = time.perf_counter()
    with Progress(len(names), enabled=not a.quiet) as bar:
        bar.update(f"training {', '.join(names)} in worker processes", 0)
        results, cost = run_all(names, spec, params, threshold, ks, jobs=a.jobs, timeout=a.timeout,
                                progress=lambda label, done: bar.update(label, done),
                                meanwhile=_warm_plots, strict=a.strict)
    report = summary(name, spec, results, threshold, time.perf_counter() - start)
    report["workers"] = cost
    write(out, report, results)
    if a.json:
        print(json_text(report))
    else:
        print(table(report))
        for line in notes(report):
            print(line)
        print(f"wrote {out}/report.md, report.json and plots" if report.get("plots") else
              f"wrote {out}/report.md, report.json ({report.get('plots_skipped', 'no plots')})")
    bad = [r for r in report["implementations"] if not r["verdict"].endswith(", converged") and counted(r["verdict"])]
    for r in bad:
        why = r["first_disagreement"] or r["error"] or r["verdict"]
        if r["verdict"].endswith(", NOT converged"):
            why = (f"did not converge: final loss {r['final_loss']:.3g} (threshold {threshold:g}), "
                   f"{round(r['accuracy'] * 4)}/4 correct")
        print(f"FAIL: {r['implementation']}: {why}", file=sys.stderr)
    return EXIT_OK if not bad else EXIT_FAIL


def _warm_plots() -> None:
    """While the workers train: import matplotlib for the plots (about a second, off the critical path)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot  # noqa: F401
    except ImportError:
        pass
