"""`xor-rosetta matrix`: the golden cases and both presets' comparisons in one uv environment per set of framework
releases (a TOML file of cells), and results/matrix.md, .json and .png saying which release changed the numbers."""
from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from ...errors import XorRosettaError

NAME, HELP = "matrix", "re-run the golden cases and compare under many framework releases, one uv environment each"

EPILOG = """\
Cells come from a TOML file (--cells; default: the one shipped with the package, spanning Keras on each backend,
JAX/flax/optax and NumPy 2.x). Each [[cell]] names a series, the package it varies (axis), the implementations it
concerns and exact releases:

  [[cell]]
  series = "NumPy"
  axis = "numpy"
  impls = ["numpy"]
  packages = { numpy = "2.1.3" }

For each cell: a virtual environment built by uv (cached under --envs by its pins; the project's wheel is built
once per run and installed with the pins overriding the project's own bounds), then, in that environment's
interpreter, from an empty folder and with a clean environment (no PYTHONPATH, KERAS_BACKEND, ...):
  xor-rosetta check --impls IMPLS --json --golden-dir GOLDEN
  xor-rosetta compare --preset seed-numpy|seed-keras --impls IMPLS --json
  xor-rosetta verify IMPL --json         (for each implementation that drifted: which form it now follows)
A cell whose environment cannot be installed is recorded with uv's one-line reason; the matrix goes on.

Each finished cell is one JSON record in OUT/matrix-cells/ (written atomically); --resume keeps the records of
cells already done (same pins and implementations) after an interrupt. The report: OUT/matrix.md, OUT/matrix.json
and OUT/matrix.png (releases x implementations: agrees with golden, drift, error, not installable), with each drift's
first step, size, changed form and a command that replays it, and the release in which each state first appears.

Exit status: 0 when every cell agrees with the golden files, 1 when any drifted, failed or could not be installed,
2 on bad input, 130 when interrupted (finished cells' records are kept).
"""


def add_arguments(sp) -> None:
    sp.formatter_class = argparse.RawDescriptionHelpFormatter
    sp.epilog = EPILOG
    sp.add_argument("--cells", metavar="FILE.toml", help="the matrix file (default: the packaged default.toml)")
    sp.add_argument("--only", metavar="a,b,...", help="run only these cells, by name or by series")
    sp.add_argument("--impls", metavar="a,b,...", help="within each cell, only these implementations (cells "
                    "concerning none of them are left out)")
    sp.add_argument("--jobs", type=int, default=1, metavar="N", help="cells at a time (default 1; each cell runs its "
                    "commands one worker at a time)")
    sp.add_argument("--envs", metavar="DIR", help="where the cells' environments are kept (default "
                    "$XDG_CACHE_HOME or ~/.cache, then xor-rosetta/matrix)")
    sp.add_argument("--out", metavar="DIR", help="report and records folder (default: results/ of the checkout)")
    sp.add_argument("--resume", action="store_true", help="keep the records of cells already finished")
    sp.add_argument("--report-only", action="store_true", help="run nothing: render the report from the records")
    sp.add_argument("--no-verify", action="store_true", help="do not run verify on drifted implementations")
    sp.add_argument("--timeout", type=float, metavar="SECONDS", help="per cell, install included (default: the "
                    "file's [settings] timeout, else 1800)")
    sp.add_argument("--project", metavar="DIR", help="the project checkout to build and install (default: the one "
                    "around the working directory)")
    sp.add_argument("--golden-dir", metavar="DIR", help="golden files to judge against (default: PROJECT/results/"
                    "golden)")


def _checkout(start: Path) -> Path | None:
    for d in [start, *start.parents]:
        p = d / "pyproject.toml"
        if p.is_file() and 'name = "xor-rosetta"' in p.read_text(encoding="utf-8", errors="replace"):
            return d
    return None


def run(a) -> int:
    from ... import registry
    from ..cli import EXIT_FAIL, EXIT_OK, writable_dir
    from xor_rosetta.app.common.files import atomic_write_bytes, atomic_write_json, atomic_write_text
    from ..matrix import driver, envs, report, spec
    from ..matrix.cells import Context

    if a.jobs < 1:
        raise XorRosettaError(f"--jobs must be 1 or more, got {a.jobs}")
    if a.timeout is not None and not a.timeout > 0:
        raise XorRosettaError(f"--timeout must be a number of seconds > 0, got {a.timeout}")
    cells_file = Path(a.cells) if a.cells else spec.default_path()
    matrix = spec.load(cells_file, known_impls=list(registry.REGISTRY))
    cells = spec.select(matrix, a.only)
    wanted = None
    if a.impls is not None:
        wanted = [n.strip() for n in a.impls.split(",") if n.strip()]
        if not wanted:
            raise XorRosettaError(f"--impls names no implementation (got {a.impls!r})")
        unknown = [n for n in wanted if n not in registry.REGISTRY]
        if unknown:
            raise XorRosettaError(f"--impls: unknown implementation {unknown[0]!r} (known: "
                                  f"{', '.join(registry.REGISTRY)})")
        cells = [c for c in cells if any(i in wanted for i in c.impls)]
        if not cells:
            raise XorRosettaError(f"no selected cell concerns {', '.join(wanted)}")

    def impls_for(cell):
        return [i for i in cell.impls if wanted is None or i in wanted]

    project = Path(a.project) if a.project else _checkout(Path.cwd())
    if not a.report_only and (project is None or not (project / "pyproject.toml").is_file()):
        raise XorRosettaError("no xor-rosetta checkout here: run from one, or name it with --project DIR")
    out = Path(a.out) if a.out else ((project / "results") if project else None)
    if out is None:
        raise XorRosettaError("no checkout to write results/ into: name the report folder with --out DIR")
    writable_dir(out)
    golden = Path(a.golden_dir) if a.golden_dir else (project / "results" / "golden" if project else None)
    if not a.report_only and (golden is None or not any(golden.glob("*.json"))):
        raise XorRosettaError(f"no golden files in {golden}; name the folder with --golden-dir DIR")
    shown_file = str(cells_file)
    if project and cells_file.resolve().is_relative_to(project.resolve()):
        shown_file = str(cells_file.resolve().relative_to(project.resolve()))

    stats = {"ran": 0, "kept": sum(driver.load_record(out, c) is not None for c in cells), "seconds": 0.0}
    if not a.report_only and not driver.pending(cells, out, a.resume, impls_for)[0]:
        a.report_only = True  # --resume with every cell done: only the report
    if not a.report_only:
        uv = envs.find_uv()
        envs_dir = Path(a.envs) if a.envs else envs.default_envs_dir()
        writable_dir(envs_dir)
        if not a.quiet:
            print(f"building the project's wheel from {project}", file=sys.stderr)
        wheel = envs.build_wheel(uv, project, envs_dir / "wheel" / str(os.getpid()))
        try:
            ctx = Context(uv, envs_dir, wheel, golden.resolve(), matrix.python, a.timeout or matrix.timeout,
                          verify=not a.no_verify,
                          replay_extra=f" --golden-dir {shlex.quote(a.golden_dir)}" if a.golden_dir else "")
            stats = driver.run(cells, ctx, out, a.jobs, a.resume, a.quiet, shown_file if a.cells else "", impls_for)
        finally:
            import shutil
            shutil.rmtree(wheel.parent, ignore_errors=True)

    pairs = [(c, driver.load_record(out, c)) for c in cells]
    meta = {"cells_file": shown_file, "generated": report.now(), "machine": report.machine(), "jobs": a.jobs,
            "wall_seconds": stats["seconds"], "ran": stats["ran"], "kept": stats["kept"],
            "command": "xor-rosetta matrix " + " ".join(shlex.quote(x) for x in sys.argv[2:])}
    atomic_write_json(out / "matrix.json", report.render_json(pairs, meta))
    atomic_write_text(out / "matrix.md", report.render_md(pairs, meta, matrix.series))
    png = report.render_png(pairs, matrix.series)
    if png is not None:
        atomic_write_bytes(out / "matrix.png", png)
    if a.json:
        from xor_rosetta.app.common.files import json_text
        print(json_text(report.render_json(pairs, meta)))
    elif not a.quiet:
        print(f"wrote {out / 'matrix.md'}{', matrix.png' if png else ''} and matrix.json "
              f"({stats['ran']} cells run in {stats['seconds']:.0f} s, {stats['kept']} kept)")
    states = [report.state(r, i) for c, r in pairs for i in impls_for(c)]
    return EXIT_OK if states and all(s == "agrees" for s in states) else EXIT_FAIL
