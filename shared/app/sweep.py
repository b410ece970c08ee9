"""How often a preset converges over init seeds: `python -m xor_rosetta.app.sweep seed-keras --seeds 100`.

Uses the NumPy reference in the Keras conventions (what the seed listing ran), float64.
"""
from __future__ import annotations

import argparse

from ..compare import accuracy
from ..data import xor_data
from ..interface import Conventions
from ..presets import get_preset
from ..spec import Init

KERAS = Conventions(adam="keras", momentum="keras", bce="logits")


def converged_seeds(preset: str, seeds: range) -> list[int]:
    """Seeds whose trained network classifies all four XOR points correctly."""
    from ..params import init_params
    from ..reference import Reference
    base, (x, y) = get_preset(preset), xor_data()
    good = []
    for seed in seeds:
        spec = base.replace(init=Init(base.init.scheme, seed=seed))
        model = Reference(spec, init_params(spec), KERAS)
        model.train(x, y)
        if accuracy(model.forward(x), y) == 1.0:
            good.append(seed)
    return good


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m xor_rosetta.app.sweep", description=__doc__.splitlines()[0])
    p.add_argument("preset", help="preset name, e.g. seed-keras")
    p.add_argument("--seeds", type=int, default=100, help="try init seeds 0..N-1 (default 100)")
    a = p.parse_args(argv)
    good = converged_seeds(a.preset, range(a.seeds))
    print(f"{a.preset}: {len(good)}/{a.seeds} init seeds reach 4/4 correct; first ones: {good[:10]}")


if __name__ == "__main__":
    main()
