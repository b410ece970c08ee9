"""The `xor-rosetta` command: list, train, compare, check."""
from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from pathlib import Path

from .. import registry
from ..errors import XorRosettaError
from ..presets import PRESETS

EXIT_OK, EXIT_FAIL, EXIT_BAD_INPUT = 0, 1, 2


def _writable_dir(path: str | Path) -> Path:
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as e:
        raise XorRosettaError(f"output directory {str(out)!r} is not writable ({e.strerror}); choose another with --out")
    return out


def _impls(arg: str | None) -> list[str]:
    if not arg:
        return list(registry.REGISTRY)
    names = [n.strip() for n in arg.split(",") if n.strip()]
    for n in names:
        registry.get_entry(n)  # unknown names are bad input
    return names


def cmd_list(a) -> int:
    rows = []
    for e in registry.ENTRIES:
        reason = registry.unavailable_reason(e)
        rows.append({"name": e.name, "available": reason is None, "versions": registry.versions(e),
                     "summary": e.summary, "reason": reason, "install": e.install_hint})
    if a.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    for r in rows:
        v = ", ".join(f"{k} {x}" for k, x in r["versions"].items()) or "not installed"
        print(f"{r['name']:<8} {'available' if r['available'] else 'UNAVAILABLE':<12} {v:<36} {r['summary']}")
        if not r["available"]:
            print(f"{'':<8} {r['reason']}")
    return EXIT_OK


def cmd_train(a) -> int:
    from .config import choose_spec
    from .files import atomic_write_json
    from ..params import init_params
    from .files import save_params
    from .runner import first_nonfinite
    from ..data import xor_data

    registry.get_entry(a.impl)
    name, spec = choose_spec(a.preset, a.config, dtype=a.dtype, steps=a.steps, init=a.init)
    cls = registry.load(a.impl)
    out = _writable_dir(a.out or f"runs/train-{a.impl}-{name}")
    params = init_params(spec)
    x, y = xor_data(spec.dtype)
    from .progress import Progress
    import numpy as np
    with Progress(1, enabled=not a.quiet) as bar, np.errstate(all="ignore"):
        bar.update(f"training {a.impl}")
        model = cls(spec, params)
        start = time.perf_counter()
        hist = model.train(x, y)
        wall = time.perf_counter() - start
    diverged = first_nonfinite(hist.loss)
    record = {"name": name, "implementation": a.impl, "spec": spec.to_dict(),
              "versions": registry.versions(registry.REGISTRY[a.impl]), "wall_seconds": round(wall, 4),
              "final_loss": float(model.loss(x, y)), "diverged_at_step": None if diverged is None else diverged + 1,
              "loss": [float(v) for v in hist.loss]}
    save_params(model.params(), out / "params.npz")
    atomic_write_json(out / "history.json", record)
    if a.json:
        print(json.dumps({k: v for k, v in record.items() if k != "loss"} | {"out": str(out)}, indent=2))
    else:
        status = f"diverged at step {diverged + 1}" if diverged is not None else f"final loss {record['final_loss']:.3g}"
        print(f"{a.impl} on {name}: {spec.steps:,} steps in {wall:.2f} s, {status}; wrote {out}/history.json, params.npz")
    return EXIT_FAIL if diverged is not None else EXIT_OK


def cmd_compare(a) -> int:
    from .config import choose_spec
    from ..params import init_params
    from .progress import Progress
    from .report import summary, table, notes, write
    from .runner import DEFAULT_THRESHOLD, References, checkpoints_for, run_one

    name, spec = choose_spec(a.preset, a.config, dtype=a.dtype, steps=a.steps, init=a.init)
    names = _impls(a.impls)
    out = _writable_dir(a.out or f"runs/compare-{name}")
    threshold = a.threshold if a.threshold is not None else DEFAULT_THRESHOLD[spec.loss]
    params = init_params(spec)  # one set of initial weights for everyone
    ks = checkpoints_for(spec.steps)
    perturbed = _perturbation(a.test_perturb, spec)
    start, results, references = time.perf_counter(), [], References(spec, params, ks)
    with Progress(len(names), enabled=not a.quiet) as bar:
        for i, n in enumerate(names):
            bar.update(f"training {n}", i)
            results.append(run_one(n, spec, params, threshold, ks, impl_spec=perturbed.get(n), references=references))
    report = summary(name, spec, results, threshold, time.perf_counter() - start)
    write(out, report, results)
    if a.json:
        print(json.dumps(report, indent=2))
    else:
        print(table(report))
        for line in notes(report):
            print(line)
        print(f"wrote {out}/report.md, report.json and plots" if report.get("plots") else
              f"wrote {out}/report.md, report.json ({report.get('plots_skipped', 'no plots')})")
    bad = [r for r in report["implementations"] if not (r["verdict"].endswith(", converged") or r["verdict"] == "unavailable")]
    for r in bad:
        why = r["first_disagreement"] or r["error"] or r["verdict"]
        if r["verdict"].endswith(", NOT converged"):
            why = (f"did not converge: final loss {r['final_loss']:.3g} (threshold {threshold:g}), "
                   f"{round(r['accuracy'] * 4)}/4 correct")
        print(f"FAIL: {r['implementation']}: {why}", file=sys.stderr)
    return EXIT_OK if not bad else EXIT_FAIL


def _perturbation(arg: str | None, spec) -> dict:
    """--test-perturb NAME:lr=VALUE gives one implementation another learning rate (tests only)."""
    if not arg:
        return {}
    try:
        name, rest = arg.split(":", 1)
        key, value = rest.split("=", 1)
        assert key == "lr"
        from dataclasses import replace
        return {name: spec.replace(optimizer=replace(spec.optimizer, lr=float(value)))}
    except (ValueError, AssertionError):
        raise XorRosettaError(f"--test-perturb takes NAME:lr=VALUE, got {arg!r}") from None


def cmd_check(a) -> int:
    from . import golden
    from .progress import Progress

    from .project import golden_dir
    folder = golden_dir(a.golden_dir, write=a.update)
    all_cases = golden.cases(_impls(a.impls))
    runnable = [c for c in all_cases if registry.unavailable_reason(registry.REGISTRY[c.impl]) is None]
    skipped = sorted({c.impl for c in all_cases} - {c.impl for c in runnable})
    if not a.update:
        wants = {c: golden.load(c, folder) for c in runnable}  # missing or corrupt files are bad input
    got = {}
    with Progress(len(runnable), enabled=not a.quiet) as bar:
        for i, c in enumerate(runnable):
            bar.update(f"running {c}", i)
            got[c] = golden.compute(c)
    for impl in skipped:
        print(f"skipped {impl}: {registry.unavailable_reason(registry.REGISTRY[impl])}")
    if a.update:
        return _update(golden, folder, got)
    problems = []
    for c in runnable:
        lines = golden.drift(c, wants[c], got[c])
        if lines:  # over the tolerance: is it within this run's own rounding noise?
            lines = golden.drift(c, wants[c], got[c], golden.rounding_floor(c, got[c]["conventions"]))
        problems += lines
    for c in runnable:
        if wants[c].get("versions") != got[c]["versions"]:
            print(f"note: {c} was recorded with {wants[c].get('versions')}, now {got[c]['versions']}")
    if a.json:
        print(json.dumps({"cases": [str(c) for c in runnable], "skipped": skipped, "drift": problems}, indent=2))
    for line in problems:
        print(f"DRIFT {line}", file=sys.stderr)
    if problems:
        print(f"{len(problems)} golden value(s) drifted; if the change is intended: xor-rosetta check --update",
              file=sys.stderr)
        return EXIT_FAIL
    print(f"all {len(runnable)} golden cases hold ({folder})")
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


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse would print the usage block first)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


def cmd_bench(a) -> int:
    from . import bench
    from .progress import Progress

    from .project import results_dir
    out = _writable_dir(results_dir(a.out))
    with Progress(7, enabled=not a.quiet) as bar:
        steps = iter(range(1, 8))
        report = bench.run(a.quick, out, progress=lambda label: bar.update(label, next(steps, 7)))
    if a.json:
        print(json.dumps(report, indent=2))
    else:
        print((out / "benchmarks.md").read_text())
    return EXIT_OK


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="xor-rosetta", description="The XOR MLP in NumPy, PyTorch and Keras, "
                                "side by side: train, compare against the NumPy reference, check golden values.")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")

    def common(sp, impl_required=False):
        src = sp.add_mutually_exclusive_group(required=True)
        src.add_argument("--preset", metavar="NAME", help=f"a named experiment: {', '.join(PRESETS)}")
        src.add_argument("--config", metavar="FILE.toml", help="an experiment file (see README)")
        sp.add_argument("--init", metavar="FILE.npz", help="initial weights W0, b0, W1, b1, ... (shapes checked)")
        sp.add_argument("--dtype", metavar="float32|float64", help="override the spec's dtype")
        sp.add_argument("--steps", type=int, metavar="N", help="override the spec's number of steps")
        sp.add_argument("--out", metavar="DIR", help="output folder")
        sp.add_argument("--quiet", action="store_true", help="no progress bar")
        sp.add_argument("--json", action="store_true", help="machine-readable results on stdout")

    sp = sub.add_parser("list", parents=[debug], help="implementations, versions, availability")
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    sp.set_defaults(func=cmd_list)

    sp = sub.add_parser("train", parents=[debug], help="train one implementation; writes history.json and params.npz")
    sp.add_argument("--impl", required=True, metavar="NAME", help=f"implementation: {', '.join(registry.REGISTRY)}")
    common(sp)
    sp.set_defaults(func=cmd_train)

    sp = sub.add_parser("compare", parents=[debug], help="train implementations from the same weights and compare with NumPy")
    sp.add_argument("--impls", metavar="a,b,...", help="implementations to run (default: all)")
    sp.add_argument("--threshold", type=float, help="convergence loss (default 1e-6 for mse, 0.05 for bce)")
    sp.add_argument("--test-perturb", help=argparse.SUPPRESS)  # tests: NAME:lr=VALUE
    common(sp)
    sp.set_defaults(func=cmd_compare)

    sp = sub.add_parser("bench", parents=[debug], help="speed of every variant; writes benchmarks.md/.json and a plot")
    sp.add_argument("--quick", action="store_true", help="a run of under a minute (fewer rounds, smaller sweep)")
    sp.add_argument("--out", metavar="DIR", help="output folder (default: results)")
    sp.add_argument("--quiet", action="store_true", help="no progress bar")
    sp.add_argument("--json", action="store_true", help="machine-readable results on stdout")
    sp.set_defaults(func=cmd_bench)

    sp = sub.add_parser("check", parents=[debug], help="re-run the golden cases and compare with results/golden/")
    sp.add_argument("--update", action="store_true", help="rewrite the golden files (the only command that does)")
    sp.add_argument("--impls", metavar="a,b,...", help="implementations to check (default: all)")
    sp.add_argument("--golden-dir", metavar="DIR", help="the golden folder (default: results/golden of the checkout "
                    "around the working directory; else the installed package's copy, read-only)")
    sp.add_argument("--quiet", action="store_true", help="no progress bar")
    sp.add_argument("--json", action="store_true", help="machine-readable results on stdout")
    sp.set_defaults(func=cmd_check)
    return p


def _on_sigterm(signum, frame):
    raise SystemExit(143)


def main(argv=None) -> int:
    a = parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return a.func(a)
    except XorRosettaError as e:
        if a.debug:
            raise
        print(f"xor-rosetta: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("xor-rosetta: interrupted; earlier results are intact", file=sys.stderr)
        return 130
    except SystemExit as e:
        if e.code == 143:
            print("xor-rosetta: terminated; earlier results are intact", file=sys.stderr)
        raise


if __name__ == "__main__":
    sys.exit(main())
