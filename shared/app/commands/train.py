"""`xor-rosetta train`: one implementation, one run; writes history.json and params.npz."""
from __future__ import annotations

import time

from ... import registry
from ..cli import EXIT_FAIL, EXIT_OK, add_spec_options, writable_dir

NAME, HELP = "train", "train one implementation; writes history.json and params.npz"


def add_arguments(sp) -> None:
    sp.add_argument("--impl", required=True, metavar="NAME", help=f"implementation: {', '.join(registry.REGISTRY)}")
    add_spec_options(sp)


def run(a) -> int:
    from ..config import choose_spec
    from ..files import json_text, write_set
    from ...params import init_params, npz_bytes
    from ..runner import first_nonfinite
    from ...data import xor_data

    registry.get_entry(a.impl)
    name, spec = choose_spec(a.preset, a.config, dtype=a.dtype, steps=a.steps, init=a.init)
    from ..resources import check_fits
    check_fits(spec, 1, compare=False)  # a run that would not fit in memory stops here, before it starts
    cls = registry.load(a.impl)
    out = writable_dir(a.out or f"runs/train-{a.impl}-{name}")
    params = init_params(spec)
    x, y = xor_data(spec.dtype)
    from ..progress import Progress
    import numpy as np
    with Progress(1, enabled=not a.quiet) as bar, np.errstate(all="ignore"):
        bar.update(f"training {a.impl}")
        model = cls(spec, params)
        start = time.perf_counter()
        hist = model.train(x, y)
        wall = time.perf_counter() - start
    diverged = first_nonfinite(hist.loss)
    record = {"name": name, "implementation": a.impl, "spec": spec.to_dict(),
              "versions": registry.versions(registry.get_entry(a.impl)), "wall_seconds": round(wall, 4),
              "final_loss": float(model.loss(x, y)), "diverged_at_step": None if diverged is None else diverged + 1,
              "loss": hist.loss}  # written in chunks, NaN and infinities as null
    write_set(out, {"params.npz": npz_bytes(model.params()), "history.json": record})  # one set
    if a.json:
        print(json_text({k: v for k, v in record.items() if k != "loss"} | {"out": str(out)}))
    else:
        status = f"diverged at step {diverged + 1}" if diverged is not None else f"final loss {record['final_loss']:.3g}"
        print(f"{a.impl} on {name}: {spec.steps:,} steps in {wall:.2f} s, {status}; wrote {out}/history.json, params.npz")
    return EXIT_FAIL if diverged is not None else EXIT_OK
