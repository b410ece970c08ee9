"""`xor-rosetta train`: one implementation, one run, in a worker process; writes history.json and params.npz."""
from __future__ import annotations

import sys

from ... import registry
from ...errors import XorRosettaError
from ..cli import EXIT_FAIL, EXIT_OK, add_spec_options, writable_dir
from xor_rosetta.app.workers.pool import add_options

NAME, HELP = "train", "train one implementation; writes history.json and params.npz"


def add_arguments(sp) -> None:
    sp.add_argument("--impl", required=True, metavar="NAME", help=f"implementation: {', '.join(registry.REGISTRY)}")
    add_spec_options(sp)
    add_options(sp, jobs=False)  # one implementation: one worker; --timeout applies


def run(a) -> int:
    from xor_rosetta.app.common.config import choose_spec
    from xor_rosetta.app.common.files import json_text, write_set
    from ...params import init_params, npz_bytes
    from xor_rosetta.app.common.progress import Progress
    from xor_rosetta.app.common.resources import check_fits
    from xor_rosetta.app.run.runner import first_nonfinite, submit, train_alone
    from xor_rosetta.app.workers.pool import Pool

    registry.get_entry(a.impl)
    name, spec = choose_spec(a.preset, a.config, dtype=a.dtype, steps=a.steps, init=a.init)
    reason = registry.load_problem(registry.get_entry(a.impl))  # a plug-in is imported here to find out
    if reason is not None:
        raise XorRosettaError(f"implementation {a.impl!r} is unavailable: {reason}")
    check_fits(spec, 1, compare=False)  # a run that would not fit in memory stops here, before it starts
    out = writable_dir(a.out or f"runs/train-{a.impl}-{name}")
    params = init_params(spec)
    with Progress(1, enabled=not a.quiet) as bar, Pool(1, a.timeout) as pool:
        bar.update(f"training {a.impl} in a worker process")
        submit(pool, a.impl, a.impl, train_alone, a.impl, spec, params)
        done = next(o for o in pool.results() if not o.note)
    if done.error is not None:  # the implementation raised, its worker died, or it ran past --timeout
        why = done.error.removeprefix("failed: ")  # "failed: MemoryError: ...": said once
        print(f"xor-rosetta: error: training {a.impl} failed: {why}", file=sys.stderr)
        return EXIT_FAIL
    got = done.value
    if "unsupported" in got:  # its `supports` rules the spec out: bad input, as an unknown option would be
        raise XorRosettaError(f"{a.impl} does not support this spec: {got['unsupported']}")
    hist = got["history"]
    diverged = first_nonfinite(hist.loss)
    record = {"name": name, "implementation": a.impl, "spec": spec.to_dict(),
              "versions": registry.versions(registry.get_entry(a.impl)), "wall_seconds": round(got["wall_seconds"], 4),
              "final_loss": got["final_loss"], "diverged_at_step": None if diverged is None else diverged + 1,
              "loss": hist.loss}  # written in chunks, NaN and infinities as null
    write_set(out, {"params.npz": npz_bytes(got["params"]), "history.json": record})  # one set
    if a.json:
        print(json_text({k: v for k, v in record.items() if k != "loss"} | {"out": str(out)}))
    else:
        status = f"diverged at step {diverged + 1}" if diverged is not None else f"final loss {record['final_loss']:.3g}"
        print(f"{a.impl} on {name}: {spec.steps:,} steps in {got['wall_seconds']:.2f} s, {status}; wrote {out}/history.json, "
              "params.npz")
    return EXIT_FAIL if diverged is not None else EXIT_OK
