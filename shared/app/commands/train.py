"""`xor-rosetta train`: one implementation, one run, in a worker process; writes history.json and params.npz."""
from __future__ import annotations

import json
import sys

from ... import registry
from ...errors import XorRosettaError
from ..cli import EXIT_FAIL, EXIT_OK, add_spec_options, writable_dir
from ..workers import add_options

NAME, HELP = "train", "train one implementation; writes history.json and params.npz"


def add_arguments(sp) -> None:
    sp.add_argument("--impl", required=True, metavar="NAME", help=f"implementation: {', '.join(registry.REGISTRY)}")
    add_spec_options(sp)
    add_options(sp, jobs=False)  # one implementation: one worker; --timeout applies


def run(a) -> int:
    from ..config import choose_spec
    from ..files import atomic_write_json, save_params
    from ...params import init_params
    from ..progress import Progress
    from ..runner import first_nonfinite, submit, train_alone, unavailable
    from ..workers import Pool

    registry.get_entry(a.impl)
    name, spec = choose_spec(a.preset, a.config, dtype=a.dtype, steps=a.steps, init=a.init)
    reason = unavailable(a.impl)
    if reason is not None:
        raise XorRosettaError(reason)
    out = writable_dir(a.out or f"runs/train-{a.impl}-{name}")
    params = init_params(spec)
    with Progress(1, enabled=not a.quiet) as bar, Pool(1, a.timeout) as pool:
        bar.update(f"training {a.impl} in a worker process")
        submit(pool, a.impl, a.impl, train_alone, a.impl, spec, params)
        done = next(o for o in pool.results() if not o.note)
    if done.error is not None:  # the implementation raised, its worker died, or it ran past --timeout
        print(f"xor-rosetta: error: training {a.impl} failed: {done.error}", file=sys.stderr)
        return EXIT_FAIL
    got = done.value
    hist = got["history"]
    diverged = first_nonfinite(hist.loss)
    record = {"name": name, "implementation": a.impl, "spec": spec.to_dict(),
              "versions": registry.versions(registry.get_entry(a.impl)), "wall_seconds": round(got["wall_seconds"], 4),
              "final_loss": got["final_loss"], "diverged_at_step": None if diverged is None else diverged + 1,
              "loss": [float(v) for v in hist.loss]}
    save_params(got["params"], out / "params.npz")
    atomic_write_json(out / "history.json", record)
    if a.json:
        print(json.dumps({k: v for k, v in record.items() if k != "loss"} | {"out": str(out)}, indent=2))
    else:
        status = f"diverged at step {diverged + 1}" if diverged is not None else f"final loss {record['final_loss']:.3g}"
        print(f"{a.impl} on {name}: {spec.steps:,} steps in {got['wall_seconds']:.2f} s, {status}; wrote {out}/history.json, "
              "params.npz")
    return EXIT_FAIL if diverged is not None else EXIT_OK
