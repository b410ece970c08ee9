"""`xor-rosetta sweep`: how often each implementation converges over many initial-weight sets, whether they all reach
the same verdict from the same weights, and how each framework's own defaults move the rate."""
from __future__ import annotations

import json
import re
import shlex
import sys
import time

from ...errors import XorRosettaError
from ..cli import EXIT_FAIL, EXIT_OK, writable_dir

NAME, HELP = "sweep", "train every implementation from many initial-weight sets: convergence rates and verdicts"


def add_arguments(sp) -> None:
    from ...presets import PRESETS
    from xor_rosetta.app.sweep.plan import BATCHED
    src = sp.add_mutually_exclusive_group(required=True)
    src.add_argument("--preset", metavar="NAME", help=f"a named experiment: {', '.join(PRESETS)}")
    src.add_argument("--config", metavar="FILE.toml", help="an experiment file (docs/getting-started.md)")
    sp.add_argument("--seeds", default="100", metavar="N|A:B", help="init seeds 0..N-1, or A..B-1 (default 100)")
    sp.add_argument("--impls", metavar="a,b,...", help="implementations (default: all in the registry); also the "
                    f"batched paths {', '.join(BATCHED)}")
    sp.add_argument("--native-defaults", action="store_true", help="also train from each framework's own initializer "
                    "and Adam epsilon, each switched alone and both (variants native-init, native-eps, native)")
    sp.add_argument("--dtype", metavar="float32|float64", help="override the spec's dtype")
    sp.add_argument("--steps", type=int, metavar="N", help="override the spec's number of steps")
    sp.add_argument("--threshold", type=float, help="convergence loss (default 1e-6 for mse, 0.05 for bce)")
    sp.add_argument("--jobs", type=int, metavar="N", help="worker processes at a time (default: the number of CPUs)")
    sp.add_argument("--timeout", type=float, metavar="SECONDS", help="limit for each task (one seed of one worker "
                    "group when given); a run past it is recorded as 'timeout after N s'")
    sp.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="run the tasks on this dask.distributed cluster "
                    "instead of the local worker pool")
    sp.add_argument("--resume", action="store_true", help="continue the sweep in --out: runs already in its "
                    "runs.jsonl are kept and not rerun")
    sp.add_argument("--basin", default="W0[0,0],W0[1,0]", metavar="W,W", help="the two initial weights the basin "
                    "picture varies, e.g. 'W0[0,0],b1[0]' (default W0[0,0],W0[1,0])")
    sp.add_argument("--basin-grid", type=int, default=41, metavar="N", help="basin grid of N x N cells (default "
                    "41; 0: no basin picture)")
    sp.add_argument("--basin-range", type=float, nargs=2, default=(-3.0, 3.0), metavar=("LO", "HI"),
                    help="range of both basin weights (default -3 3)")
    sp.add_argument("--out", metavar="DIR", help="output folder (default runs/sweep-NAME)")


def run(a) -> int:
    from xor_rosetta.app.common.config import choose_spec
    from xor_rosetta.compare import DEFAULT_THRESHOLD
    from xor_rosetta.app.sweep import plan as S
    from ..cli import impl_names
    name, spec = choose_spec(a.preset, a.config, dtype=a.dtype, steps=a.steps)
    if spec.init.scheme == "file":
        raise XorRosettaError("the spec's init is a file: there are no seeds to sweep (use seed-uniform or "
                              "glorot-uniform)")
    seeds = S.parse_seeds(a.seeds)
    for flag, value in (("--jobs", a.jobs), ("--timeout", a.timeout), ("--basin-grid", a.basin_grid + 1)):
        if value is not None and not value > 0:
            raise XorRosettaError(f"{flag} must be positive, got {value:g}")
    if a.scheduler is not None:
        _check_scheduler(a.scheduler)
    if a.scheduler and (a.jobs or a.timeout):
        raise XorRosettaError("--jobs and --timeout apply to the local pool, not to --scheduler")
    impls = _impls(a.impls, impl_names)
    variants = S.variants_for(spec, a.native_defaults)
    S.check_memory(len(seeds) * len(impls) * len(variants), a.seeds)  # before the plan is built
    unavailable = {} if a.scheduler else _unavailable(impls)  # a cluster's workers have their own frameworks
    if unavailable and a.impls:
        n, why = next(iter(unavailable.items()))
        raise XorRosettaError(f"--impls: {n!r} is unavailable here: {why}")
    for n in unavailable:  # the default, every implementation: those not installed are left out (said below)
        impls.remove(n)
    if not impls:
        raise XorRosettaError("no implementation to sweep is available here")
    threshold = a.threshold if a.threshold is not None else DEFAULT_THRESHOLD[spec.loss]
    basin_weights = [w.strip() for w in re.split(r",(?![^\[]*\])", a.basin) if w.strip()] if a.basin_grid else []
    if a.basin_grid:
        from xor_rosetta.app.sweep.basin import parse_weight
        if len(basin_weights) != 2:
            raise XorRosettaError(f"--basin names two weights, got {a.basin!r}")
        for w in basin_weights:
            parse_weight(w, spec)
    if not a.quiet:  # after every check of the input: bad input is one line
        for n, why in unavailable.items():
            print(f"note: leaving out {n}: {why}", file=sys.stderr)
    if not a.quiet and not a.json:
        from xor_rosetta.app.run.costs import cost_note
        note = cost_note(impls, spec, len(seeds) * len(variants), a.jobs or _cpus(), sweep=True)
        if note:
            print(note, file=sys.stderr)
    out = writable_dir(a.out or f"runs/sweep-{name}")
    header = {"format": 1, "name": name, "spec": spec.to_dict(), "threshold": threshold,
              "seeds": [seeds.start, seeds.stop], "impls": impls, "variants": list(variants),
              "command": _command(name, a), **({"unavailable": unavailable} if unavailable else {})}
    from xor_rosetta.app.sweep.engine import Progress, Store, run_dask, run_local
    start = time.perf_counter()
    store = Store(out, header, a.resume)
    try:
        tasks = S.plan_tasks(impls, seeds, variants, a.jobs or _cpus(), set(store.done), one_seed=bool(a.timeout))
        total = len(seeds) * len(impls) * len(variants)
        initial = sum(1 for k in store.done if k[0] in seeds and k[1] in variants and k[2] in impls)
        bar = Progress(total, initial, enabled=not a.quiet and not a.json)
        try:
            if a.scheduler:
                run_dask(a.scheduler, tasks, spec.to_dict(), threshold, store, bar)
            else:
                run_local(tasks, spec.to_dict(), threshold, store, bar, a.jobs, a.timeout)
        finally:
            bar.close()
    except KeyboardInterrupt:
        store.close()
        print(f"xor-rosetta: interrupted; {len(store.done)} finished runs are in {out}/runs.jsonl: continue with "
              f"the same command and --resume", file=sys.stderr)
        raise
    finally:
        store.close()
    records = [r for k, r in store.done.items() if k[0] in seeds and k[1] in variants and k[2] in impls]
    basin, basin_npz = _basin(out, spec, seeds.start, threshold, basin_weights, a) if a.basin_grid else (None, None)
    from xor_rosetta.app.sweep import report as R
    report = R.summarise(header, records, out)
    store.finish(time.perf_counter() - start)
    report["wall_seconds"] = store.header["wall_seconds"]  # over every invocation, resumed ones included
    if basin is not None:
        report["basin"] = {"weights": basin["weights"], "range": list(a.basin_range), "grid": a.basin_grid,
                           "seed": seeds.start, "base": list(basin["base"]), "conventions": "numpy",
                           "converged_share": float(basin["converged"].mean()),
                           "diverged_share": float(basin["diverged"].mean()), "file": "basin.npz"}
    R.write(out, report, records, basin, extra={"basin.npz": basin_npz} if basin is not None else None)
    if a.json:
        print(json.dumps(report, indent=2))
    else:
        for r in report["rates"]:
            print(f"{r['variant']:>11} {r['impl']:>15}: {r['converged']:>6,}/{r['runs']:<6,} converged "
                  f"{R._pct(r['rate']):>6} {R._ci(r['wilson95'])}")
        differ = sum(f["kind"] == "verdicts differ" for f in report["findings"])
        print(f"seeds where verdicts differ across implementations: {differ}; findings: {len(report['findings'])}")
        print(f"wrote {out}/report.md, report.json, runs.jsonl" + (" and plots" if report.get("plots") else ""))
    bad = [f for f in report["findings"] if f["kind"] != "verdicts differ"]
    return EXIT_FAIL if bad else EXIT_OK


def _command(name: str, a) -> str:
    """The command that (re)runs this sweep: as typed, less --resume (the same command continues it)."""
    if sys.argv[1:2] == ["sweep"]:
        return "xor-rosetta " + " ".join(shlex.quote(x) for x in sys.argv[1:] if x != "--resume")
    return f"xor-rosetta sweep --{'preset' if a.preset else 'config'} {a.preset or a.config} --seeds {a.seeds}"


def _cpus() -> int:
    import os
    return os.cpu_count() or 1


def _impls(arg, impl_names) -> list[str]:
    from xor_rosetta.app.sweep.plan import BATCHED
    if not arg:
        return impl_names(None)
    names = [n.strip() for n in arg.split(",") if n.strip()]
    impl_names(",".join(n for n in names if n not in BATCHED) or None) if any(n not in BATCHED for n in names) else None
    if len(set(names)) != len(names):
        raise XorRosettaError(f"--impls names an implementation twice: {arg!r}")
    return names


def _check_scheduler(text: str) -> None:
    """--scheduler: [PROTOCOL://]HOST:PORT with a port of 1..65535, checked before anything tries to connect."""
    m = re.fullmatch(r"(?:(tcp|tls|ws|wss|ucx)://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):([0-9]{1,5})", text)
    if m is None or not 1 <= int(m.group(3)) <= 65535:
        raise XorRosettaError(f"--scheduler takes tcp://HOST:PORT with a port of 1-65535, got {text!r}")


def _unavailable(impls: list[str]) -> dict[str, str]:
    """Why each implementation (or batched path) among `impls` cannot run here, judged without importing it."""
    from ... import registry
    from xor_rosetta.app.sweep.plan import BATCHED
    out = {}
    for n in impls:
        entry = registry.REGISTRY.get(BATCHED[n][1]) if n in BATCHED else registry.get_entry(n)
        reason = None if entry is None else registry.unavailable_reason(entry)
        if reason is not None:
            out[n] = reason
    return out


def _basin(out, spec, seed, threshold, weights, a) -> tuple[dict, bytes]:
    """The basin grid and its cache file's bytes (basin.npz, written with the report; reused by --resume when its
    settings match and it reads back)."""
    import io
    import numpy as np
    from dataclasses import replace
    from ... import registry
    from ...params import init_params
    from xor_rosetta.app.sweep.basin import compute
    path = out / "basin.npz"
    settings = np.array(json.dumps({"spec": spec.to_dict(), "seed": seed, "threshold": threshold,
                                    "weights": weights, "range": list(a.basin_range), "grid": a.basin_grid}))
    if a.resume and path.exists():
        try:
            data = path.read_bytes()
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                if str(z["settings"]) == str(settings):
                    b = {"weights": weights, "values": z["values"], "base": tuple(z["base"]), "steps": z["steps"],
                         "converged": z["converged"], "diverged": z["diverged"]}
                    n = a.basin_grid
                    if b["values"].shape == (n,) and all(b[k].shape == (n, n) for k in ("steps", "converged",
                                                                                         "diverged")):
                        return b, data
        except (OSError, ValueError, KeyError, EOFError, TypeError) as e:  # a damaged cache is computed again
            print(f"note: {path} does not read back ({type(e).__name__}); computing the basin again",
                  file=sys.stderr)
    conv = registry.load("numpy").conventions
    base = init_params(spec.replace(init=replace(spec.init, seed=seed)))
    b = compute(spec, base, conv, threshold, weights, tuple(a.basin_range), a.basin_grid)
    buf = io.BytesIO()
    np.savez(buf, settings=settings, values=b["values"], base=np.array(b["base"]), steps=b["steps"],
             converged=b["converged"], diverged=b["diverged"])
    return b, buf.getvalue()
