"""The matrix's run: cells in parallel up to --jobs, one JSON record per finished cell written atomically, resumable."""
from __future__ import annotations

import json
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

from xor_rosetta.app.common.files import atomic_write_json
from .cells import RECORD_VERSION, Context, run_cell

RECORDS = "matrix-cells"


def record_path(out: Path, cell) -> Path:
    return out / RECORDS / f"{cell.name}.json"


def load_record(out: Path, cell) -> dict | None:
    """The finished record of this cell, if there is one for the same cell (same pins, implementations)."""
    try:
        rec = json.loads(record_path(out, cell).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict) or rec.get("version") != RECORD_VERSION or rec.get("cell") != cell.to_dict():
        return None
    return rec


def pending(cells, out: Path, resume: bool, impls_for) -> tuple[list, list]:
    """(cells to run, cells whose records stand): with --resume, a cell with a record for the same cell and the same
    implementations is not run again."""
    todo, done = [], []
    for c in cells:
        rec = load_record(out, c) if resume else None
        if rec is not None and rec.get("impls_run") == impls_for(c):
            done.append(c)
        else:
            todo.append(c)
    return todo, done


class Bar:
    """tqdm on stderr when it is a terminal and tqdm is installed; otherwise one line per finished cell."""

    def __init__(self, total: int, initial: int, quiet: bool):
        self.quiet, self.bar, self.n, self.total = quiet, None, initial, total
        if not quiet and sys.stderr.isatty():
            try:
                import shutil

                from tqdm import tqdm
                cols = shutil.get_terminal_size((0, 0)).columns
                size = {"dynamic_ncols": True} if cols > 0 else {"ncols": 80}  # a terminal that reports no size
                self.bar = tqdm(total=total, initial=initial, unit="cell", file=sys.stderr, **size)
            except ImportError:
                pass

    def done(self, line: str) -> None:
        self.n += 1
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
            self.bar.update(1)
        elif not self.quiet:
            print(f"[{self.n}/{self.total}] {line}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _safe_run(cell, ctx, cells_file, impls) -> dict:
    """run_cell, with an unexpected failure of the driver's own recorded as the cell's error (the matrix goes on)."""
    try:
        return run_cell(cell, ctx, cells_file, impls)
    except InterruptedError:
        raise
    except Exception as e:  # noqa: BLE001 - one cell's surprise must not lose the others' results
        return {"version": RECORD_VERSION, "cell": cell.to_dict(), "impls_run": impls, "env_key": cell.env_key,
                "status": "error", "reason": f"the matrix driver failed on this cell: {e!r}"[:400], "installed": {},
                "seconds": {}, "results": {}}


def summary(rec: dict) -> str:
    name = rec["cell"]["name"]
    if rec["status"] != "judged":
        return f"{name}: {rec['status']}: {rec['reason']} ({rec['seconds'].get('total', 0):.0f} s)"
    parts = [f"{i} {r['golden']}" for i, r in rec["results"].items()]
    return f"{name}: {', '.join(parts)} ({rec['seconds'].get('total', 0):.0f} s)"


def run(cells, ctx: Context, out: Path, jobs: int, resume: bool, quiet: bool, cells_file: str, impls_for) -> dict:
    """Run the cells still to run; returns {"ran": n, "kept": n, "seconds": wall}."""
    t0 = time.time()
    todo, done = pending(cells, out, resume, impls_for)
    (out / RECORDS).mkdir(parents=True, exist_ok=True)
    bar = Bar(len(cells), len(done), quiet)
    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        futures = {pool.submit(_safe_run, c, ctx, cells_file, impls_for(c)): c for c in todo}
        left = set(futures)
        while left:
            finished, left = wait(left, timeout=0.5, return_when=FIRST_COMPLETED)
            for f in finished:
                rec = f.result()
                atomic_write_json(record_path(out, futures[f]), rec)
                bar.done(summary(rec))
    except BaseException:
        ctx.stop()  # kill the running cells' process groups; their records are not written
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        bar.close()
    pool.shutdown(wait=True)
    return {"ran": len(todo), "kept": len(done), "seconds": round(time.time() - t0, 1)}
