"""Golden files: the loss and params at checkpoints for preset x implementation x dtype, kept in results/golden/.

Only `xor-rosetta check --update` writes them, all at once: a new folder, then a swap.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xor_rosetta import registry
from xor_rosetta.data import xor_data
from xor_rosetta.errors import XorRosettaError
from xor_rosetta.app.common import strict
from xor_rosetta.app.common.files import atomic_write_json, new_dir_beside, replace_dir
from xor_rosetta.params import flat, init_params
from xor_rosetta.presets import PRESETS, get_preset
from xor_rosetta.tolerance import DISAGREES, classify, tolerance

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
    hist = cls(spec, init_params(spec)).train(x, y, checkpoints=ks)
    return {"preset": case.preset, "implementation": case.impl, "dtype": case.dtype,
            "versions": registry.versions(registry.REGISTRY[case.impl]), "conventions": cls.conventions.to_dict(),
            "checkpoints": {str(k): {"loss": float(hist.loss[k - 1]),
                                     "params": {n: a.tolist() for n, a in flat(hist.checkpoints[k]).items()}}
                            for k in ks}}


def compute_all(cases_: list[Case], jobs: int | None = None, timeout: float | None = None,
                progress=None) -> dict[Case, dict | str]:
    """`compute` for every case, in worker processes (`xor_rosetta.app.workers.pool`); a case whose worker failed
    maps to the one-line reason ("worker died (signal 11)", "timeout after N s", "failed: ...")."""
    from xor_rosetta.app.run.runner import submit
    from xor_rosetta.app.workers.pool import Pool
    got: dict[Case, dict | str] = {}
    with Pool(jobs, timeout) as pool:
        for c in cases_:
            submit(pool, c, c.impl, compute, c)
        for out in pool.results():
            if not out.note:
                got[out.key] = out.value if out.error is None else out.error
                if progress:
                    progress(f"{out.key} done", len(got))
    return {c: got[c] for c in cases_}


def load(case: Case, folder: Path) -> dict:
    """The golden file of `case`, checked before anything is judged against it (`validate`)."""
    path = folder / case.file
    if not path.is_file():
        raise XorRosettaError(f"golden file {path} is missing; create it with: xor-rosetta check --update")
    where = f"golden file {path}"
    try:
        return validate(case, strict.read(path, where), where)
    except strict.Invalid as e:
        what = str(e).replace(f"{where}: ", f"{where} is corrupt: ", 1)
        raise XorRosettaError(f"{what}; recreate it with: xor-rosetta check --update") from None


def validate(case: Case, data, where: str) -> dict:
    """`data` as a golden file of `case`: its case, and at each golden checkpoint a finite loss and finite params
    (1-D or 2-D lists of numbers); an infinite or NaN value would make the allowed difference infinite."""
    strict.obj(data, where)
    for field, want in (("preset", case.preset), ("implementation", case.impl), ("dtype", case.dtype)):
        if strict.string(data.get(field), f"{where}: field {field!r}") != want:
            raise strict.Invalid(f"{where}: field {field!r} is {data[field][:80]!r}, not {want!r}: the file of "
                                 f"another case")
    for field in ("versions", "conventions"):
        if field in data:
            for k, v in strict.obj(data[field], f"{where}: field {field!r}").items():
                strict.string(v, f"{where}: field '{field}.{k}'")
    checkpoints = strict.obj(data.get("checkpoints"), f"{where}: field 'checkpoints'")
    if not checkpoints:
        raise strict.Invalid(f"{where}: field 'checkpoints' is empty")
    for k, w in checkpoints.items():
        at = f"{where}: field checkpoints.{k[:20]}"
        if k not in {str(c) for c in CHECKPOINTS}:
            raise strict.Invalid(f"{at}: not a golden checkpoint (one of {', '.join(map(str, CHECKPOINTS))})")
        strict.obj(w, at)
        strict.number(w.get("loss"), at + ".loss")
        params = strict.obj(w.get("params"), at + ".params")
        if not params:
            raise strict.Invalid(f"{at}.params is empty")
        for name, value in params.items():
            strict.numbers(value, f"{at}.params.{name[:20]}")
    return data


def drift(case: Case, want: dict, got: dict, floor=None) -> list[str]:
    """Readable lines for every value that the tolerance policy calls a disagreement; empty when the case holds.

    Losses are judged against the largest recorded loss up to that step, params against the largest recorded
    |param| at that step; `floor` (a `xor_rosetta.reference.Floor` at the golden checkpoints), where given,
    excuses a difference within the run's own rounding noise.
    """
    tol, out = tolerance(case.dtype), []
    try:
        scale = 0.0
        for k, w in sorted(want["checkpoints"].items(), key=lambda kv: int(kv[0])):
            g = got["checkpoints"].get(k)
            if g is None:
                out.append(f"{case}: step {k} is in the golden file but was not run")
                continue
            wl, gl = float(w["loss"]), float(g["loss"])
            scale = max(scale, abs(wl))
            fl = None if floor is None else floor.loss[int(k) - 1]
            if classify(abs(gl - wl), tol.loss * scale, fl) == DISAGREES:
                out.append(f"{case}: step {k} loss: expected {wl!r}, got {gl!r} (|Δ| {abs(gl - wl):.2g} > "
                           f"{tol.loss * scale:.2g})")
            wants = {n: np.asarray(v, dtype=np.float64) for n, v in w["params"].items()}
            allowed = tol.params * max(float(np.max(np.abs(a), initial=0.0)) for a in wants.values())
            fl = None if floor is None else floor.params[int(k)]
            for name, wa in wants.items():
                ga = np.asarray(g["params"].get(name, np.nan), dtype=np.float64)
                if wa.shape != ga.shape:
                    out.append(f"{case}: step {k} {name}: expected shape {wa.shape}, got {ga.shape}")
                    continue
                d = np.abs(ga - wa)
                if np.any(classify(d, allowed, fl) == DISAGREES):
                    i = np.unravel_index(np.argmax(np.where(np.isnan(d), np.inf, d)), d.shape)
                    at = "[" + ",".join(map(str, i)) + "]"
                    out.append(f"{case}: step {k} {name}{at}: expected {float(wa[i])!r}, got {float(ga[i])!r} "
                               f"(|Δ| {d[i]:.2g} > {allowed:.2g})")
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        out.append(f"{case}: golden file is malformed ({e!r}); recreate it with: xor-rosetta check --update")
    return out


def rounding_floor(case: Case, conventions: dict):
    """How far one rounding per step moves the reference of this case, at the golden checkpoints."""
    from xor_rosetta.interface import Conventions
    from xor_rosetta.reference import Reference, rounding_floor as floor
    spec = get_preset(case.preset).replace(dtype=case.dtype)
    ks = [k for k in CHECKPOINTS if k <= spec.steps]
    x, y = xor_data(case.dtype)
    params, conv = init_params(spec), Conventions(**conventions)
    with np.errstate(all="ignore"):
        exact = Reference(spec, params, conv).train(x, y, checkpoints=ks)
        return floor(spec, params, conv, exact, ks, x, y)


def write_all(results: dict[Case, dict], folder: Path) -> None:
    """Replace the whole golden folder at once: never a half-written set (files.replace_dir: concurrent updates
    take turns, and each leaves a complete set)."""
    new = new_dir_beside(folder)
    try:
        for case, data in results.items():
            atomic_write_json(new / case.file, data)
        new.chmod(0o755)
        replace_dir(new, folder)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
