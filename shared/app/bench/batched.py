"""The vectorised-sweep benchmark figure, for `xor-rosetta bench`: N seed-numpy runs of S steps through the batched
NumPy path on the local worker pool (what `xor-rosetta sweep --impls numpy-batched` does), timed, and the
convergence verdicts of a sample of those seeds checked against one-at-a-time runs of the numpy implementation.

    from xor_rosetta.app.bench.batched import vectorised, markdown
    result = vectorised(quick=False)   # 10,000 runs of 10,000 steps; quick: 1,000 runs
    lines = markdown(result)
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

TARGET_S = 60.0  # 10,000 seed-numpy runs of 10,000 steps (issue 14)


def vectorised(quick: bool = False, seeds: int | None = None, steps: int = 10_000, check: int | None = None,
               jobs: int | None = None) -> dict:
    """Time `seeds` batched seed-numpy runs (default 10,000; 1,000 with quick) of `steps` steps on the worker pool;
    then run `check` of those seeds (evenly spaced; default 100, 20 with quick) one at a time with the numpy
    implementation and compare the verdicts: converged, steps to the threshold, step of divergence."""
    from xor_rosetta.data import xor_data
    from xor_rosetta.presets import get_preset
    from xor_rosetta.registry import load
    from xor_rosetta.compare import accuracy
    from xor_rosetta.params import init_params
    from xor_rosetta.compare import DEFAULT_THRESHOLD
    from xor_rosetta.app.run.runner import first_nonfinite
    from xor_rosetta.app.sweep.plan import CANONICAL, plan_tasks
    from xor_rosetta.app.sweep.engine import Progress, Store, run_local
    seeds = seeds or (1_000 if quick else 10_000)
    check = check if check is not None else (20 if quick else 100)
    spec = get_preset("seed-numpy").replace(steps=steps)
    threshold = DEFAULT_THRESHOLD[spec.loss]
    with tempfile.TemporaryDirectory() as tmp:
        header = {"format": 1, "name": "bench", "spec": spec.to_dict(), "threshold": threshold, "seeds": [0, seeds],
                  "impls": ["numpy-batched"], "variants": [CANONICAL], "command": "xor-rosetta bench"}
        store = Store(Path(tmp), header, resume=False)
        tasks = plan_tasks(["numpy-batched"], range(seeds), (CANONICAL,), jobs or _cpus())
        start = time.perf_counter()
        try:
            run_local(tasks, spec.to_dict(), threshold, store, Progress(0, 0, False), jobs, None)
        finally:
            store.close()
        wall = time.perf_counter() - start
        batched = {k[0]: r for k, r in store.done.items()}
    numpy_cls, (x, y) = load("numpy"), xor_data()
    sample = sorted(set(np.linspace(0, seeds - 1, check).round().astype(int).tolist())) if check else []
    differ = []
    for s in sample:
        seeded = spec.replace(init=spec.init.__class__(spec.init.scheme, seed=s))
        model = numpy_cls(seeded, init_params(seeded))
        with np.errstate(all="ignore"):
            h = model.train(x, y)
            final = model.loss(x, y)
        below, nf = np.flatnonzero(h.loss < threshold), first_nonfinite(h.loss)
        one = (bool(nf is None and final < threshold and accuracy(model.forward(x), y) == 1.0),
               int(below[0]) + 1 if below.size else None, nf)
        r = batched[s]
        if (r["converged"], r["steps_to_threshold"], r["diverged_at"]) != one:
            differ.append(s)
    converged = sum(r["converged"] for r in batched.values())
    return {"runs": seeds, "steps": steps, "jobs": jobs or _cpus(), "seconds": round(wall, 2),
            "ns_per_run_step": round(wall / (seeds * steps) * 1e9, 1), "converged": converged,
            "target": f"10,000 runs of 10,000 steps <= {TARGET_S:g} s",
            "met": None if (seeds, steps) != (10_000, 10_000) else wall <= TARGET_S,
            "projected_10k_s": round(wall / (seeds * steps) * 1e8, 1),
            "verdicts_checked": len(sample), "verdicts_differ": differ}


def markdown(r: dict) -> list[str]:
    met = {True: "met", False: "missed", None: f"projected {r['projected_10k_s']:.0f} s for 10,000 x 10,000"}[r["met"]]
    return [f"Vectorised sweep (`xor-rosetta sweep --preset seed-numpy --impls numpy-batched`): {r['runs']:,} runs of "
            f"{r['steps']:,} steps in {r['seconds']:.1f} s on {r['jobs']} worker(s) ({r['ns_per_run_step']:.0f} ns per "
            f"run-step; {r['converged']:,} converged); target {r['target']}: {met}. Verdicts of "
            f"{r['verdicts_checked']} of those seeds rerun one at a time with the numpy implementation: "
            + ("all identical." if not r["verdicts_differ"] else f"DIFFERENT for seeds {r['verdicts_differ']}.")]


def _cpus() -> int:
    import os
    return os.cpu_count() or 1


def main(argv=None) -> None:
    import argparse
    import json
    p = argparse.ArgumentParser(prog="python -m xor_rosetta.app.bench.batched", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1,000 runs instead of 10,000")
    p.add_argument("--jobs", type=int, help="worker processes (default: the CPUs)")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    r = vectorised(quick=a.quick, jobs=a.jobs)
    print(json.dumps(r, indent=2) if a.json else "\n".join(markdown(r)))


if __name__ == "__main__":
    main()
