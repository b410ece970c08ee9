"""How far rounding alone moves the reference, sampled more widely than the tolerance policy does.

The policy's rounding floor (`xor_rosetta.reference.rounding_floor`) is the largest move of four jittered reference
runs (two random one-ulp patterns, each both ways). Four samples can miss how far rounding reaches on an
ill-conditioned run, and a run that differs from the reference by rounding alone then reads as DISAGREES. This
prints, at each checkpoint, the policy's floor next to the largest and the median move over 2 x PATTERNS
jittered runs, so a finding can be checked against it:

    python -m xor_rosetta.app.run.floor --preset seed-keras --seed 158 --forms adam=torch,bce=probs --patterns 16
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace

import numpy as np

from xor_rosetta.compare import max_abs_diff
from xor_rosetta.data import xor_data
from xor_rosetta.errors import ParamsError, SpecError
from xor_rosetta.interface import Conventions
from xor_rosetta.params import Params, init_params, load_params
from xor_rosetta.presets import PRESETS
from xor_rosetta.reference import FORMS, JITTER_RUNS, Jitter, Reference
from xor_rosetta.app.common.config import load_toml
from xor_rosetta.app.run.runner import checkpoints_for


def spread(spec, params: Params, conv: Conventions, patterns: int) -> dict[int, tuple[float, float, float]]:
    """checkpoint -> (the policy's floor: max over JITTER_RUNS, max and median over 2 x `patterns` runs)."""
    x, y = xor_data(spec.dtype)
    ks = checkpoints_for(spec.steps)
    exact = Reference(spec, params, conv).train(x, y, checkpoints=ks)
    runs = [(s, sign) for s in range(patterns) for sign in (1.0, -1.0)]
    moves = {}  # (pattern, sign) -> [max |Δ params| at each checkpoint]
    with np.errstate(all="ignore"):
        for s, sign in sorted(set(runs) | set(JITTER_RUNS)):
            h = Reference(spec, params, conv, Jitter(s, sign)).train(x, y, checkpoints=ks)
            moves[(s, sign)] = [max_abs_diff(h.checkpoints[k], exact.checkpoints[k]) for k in ks]
    policy = np.maximum.accumulate(np.max([moves[r] for r in JITTER_RUNS], axis=0))  # running max, as the policy
    wide = np.array([moves[r] for r in runs])  # (runs, checkpoints)
    return {k: (float(policy[i]), float(wide[:, i].max()), float(np.median(wide[:, i]))) for i, k in enumerate(ks)}


def parse_forms(text: str) -> Conventions:
    """'adam=torch,bce=probs' -> Conventions; forms not named keep their defaults."""
    out = {}
    for part in filter(None, text.split(",")):
        what, _, form = part.partition("=")
        if what not in FORMS:
            raise SpecError(f"--forms: {what!r} is not one of {', '.join(FORMS)}")
        if form not in FORMS[what]:
            raise SpecError(f"--forms: {what} form {form!r} is not one of {', '.join(FORMS[what])}")
        out[what] = form
    return Conventions(**out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m xor_rosetta.app.run.floor", description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--preset", choices=sorted(PRESETS))
    src.add_argument("--config", metavar="FILE.toml")
    p.add_argument("--seed", type=int, help="the init seed (default: the spec's)")
    p.add_argument("--init", metavar="FILE.npz", help="initial weights from a file (a sweep's inits/GROUP/seed-N.npz)")
    p.add_argument("--forms", default="", metavar="adam=F,momentum=F,bce=F",
                   help="the reference's conventions (default: " + ", ".join(f"{k}={v}" for k, v in
                                                                         Conventions().to_dict().items()) + ")")
    p.add_argument("--patterns", type=int, default=16, help="random jitter patterns, each run both ways (default 16)")
    a = p.parse_args(argv)
    try:
        if a.patterns < 1:
            raise SpecError(f"--patterns must be at least 1, got {a.patterns}")
        spec = PRESETS[a.preset] if a.preset else load_toml(a.config)
        if a.seed is not None:
            spec = spec.replace(init=replace(spec.init, seed=a.seed))
        conv = parse_forms(a.forms)
        params = load_params(a.init, spec) if a.init else init_params(spec)
    except (SpecError, ParamsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    init = a.init or f"{spec.init.scheme} init seed {spec.init.seed}"
    print(f"{a.preset or a.config}, {init}, {spec.dtype}, forms "
          f"{', '.join(f'{k}={v}' for k, v in conv.to_dict().items())}: max |Δ params| of jittered reference runs "
          f"from the exact one")
    print(f"{'step':>6} {'policy (4 runs)':>16} {f'max of {2 * a.patterns}':>12} {'median':>10}")
    for k, (pol, hi, med) in spread(spec, params, conv, a.patterns).items():
        print(f"{k:>6} {pol:>16.2e} {hi:>12.2e} {med:>10.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
