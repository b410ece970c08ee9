"""Golden files: the loss and params at checkpoints for preset x implementation x dtype, kept in results/golden/.

Only `xor-rosetta check --update` writes them, all at once: a new folder, then a swap.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import registry
from .data import xor_data
from .errors import XorRosettaError
from .files import atomic_write_json
from .params import flat, init_params
from .presets import PRESETS, get_preset
from .tolerance import tolerance

GOLDEN_DIR = Path(__file__).resolve().parent.parent / "results" / "golden"
DTYPES = ("float64", "float32")
CHECKPOINTS = (1, 10, 100, 1_000, 10_000)


@dataclass(frozen=True)
class Case:
    preset: str
    impl: str
    dtype: str

    @property
    def file(self) -> str:
        return f"{self.preset}.{self.impl}.{self.dtype}.json"

    def __str__(self):
        return f"{self.preset}/{self.impl}/{self.dtype}"


def cases(impls=None) -> list[Case]:
    return [Case(p, i, d) for p in PRESETS for i in (impls or registry.REGISTRY) for d in DTYPES]


def compute(case: Case) -> dict:
    """Run the case now: loss before step k and params after step k, for each checkpoint k."""
    cls = registry.load(case.impl)
    spec = get_preset(case.preset).replace(dtype=case.dtype)
    ks = [k for k in CHECKPOINTS if k <= spec.steps]
    x, y = xor_data(case.dtype)
    hist = cls(spec, init_params(spec)).train(x, y, ks)
    return {"preset": case.preset, "implementation": case.impl, "dtype": case.dtype,
            "versions": registry.versions(registry.REGISTRY[case.impl]),
            "checkpoints": {str(k): {"loss": float(hist.loss[k - 1]),
                                     "params": {n: a.tolist() for n, a in flat(hist.checkpoints[k]).items()}}
                            for k in ks}}


def load(case: Case, folder: Path = GOLDEN_DIR) -> dict:
    path = folder / case.file
    if not path.is_file():
        raise XorRosettaError(f"golden file {path} is missing; create it with: xor-rosetta check --update")
    try:
        data = json.loads(path.read_text())
        data["checkpoints"]
    except (ValueError, KeyError, TypeError) as e:
        raise XorRosettaError(f"golden file {path} is corrupt ({e}); recreate it with: xor-rosetta check --update") from None
    return data


def drift(case: Case, want: dict, got: dict) -> list[str]:
    """Readable lines for every value outside the tolerance policy; empty when the case holds."""
    tol, out = tolerance(case.dtype), []
    try:
        for k, w in want["checkpoints"].items():
            g = got["checkpoints"].get(k)
            if g is None:
                out.append(f"{case}: step {k} is in the golden file but was not run")
                continue
            wl, gl = float(w["loss"]), g["loss"]
            if not abs(gl - wl) <= tol.loss_atol + tol.loss_rtol * abs(wl):
                out.append(f"{case}: step {k} loss: expected {wl!r}, got {gl!r} (|Δ| {abs(gl - wl):.2g})")
            for name, wv in w["params"].items():
                wa, ga = np.asarray(wv, dtype=np.float64), np.asarray(g["params"].get(name, np.nan), dtype=np.float64)
                if wa.shape != ga.shape:
                    out.append(f"{case}: step {k} {name}: expected shape {wa.shape}, got {ga.shape}")
                    continue
                d = np.abs(ga - wa)
                if not np.all(d <= tol.params):
                    i = np.unravel_index(np.argmax(np.where(np.isnan(d), np.inf, d)), d.shape)
                    at = "[" + ",".join(map(str, i)) + "]"
                    out.append(f"{case}: step {k} {name}{at}: expected {wa[i]!r}, got {ga[i]!r} "
                               f"(|Δ| {d[i]:.2g} > {tol.params:g})")
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        out.append(f"{case}: golden file is malformed ({e!r}); recreate it with: xor-rosetta check --update")
    return out


def write_all(results: dict[Case, dict], folder: Path = GOLDEN_DIR) -> None:
    """Replace the whole golden folder at once: never a half-written set."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    new = Path(tempfile.mkdtemp(prefix=".golden-new-", dir=folder.parent))
    old = folder.parent / f".golden-old-{new.name}"
    try:
        for case, data in results.items():
            atomic_write_json(new / case.file, data)
        new.chmod(0o755)
        if folder.exists():
            folder.rename(old)
        new.rename(folder)
    except BaseException:
        if old.exists() and not folder.exists():
            old.rename(folder)  # put the previous set back
        shutil.rmtree(new, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
