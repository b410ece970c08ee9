"""Running a sweep's tasks: on the local worker pool (`xor_rosetta.app.workers.pool.Pool`) or on a Dask cluster, with
every finished run appended to a JSON-lines file at once, so that an interrupted sweep loses no completed run and
`--resume` carries on from what the file holds.

Files in the output folder:
    sweep.json         what the sweep is: spec, threshold, seeds, implementations, variants (checked on --resume)
    runs.jsonl         one JSON object per finished run, in the order they finished
    inits/GROUP/seed-N.npz   weights drawn by a framework's own initializer (--native-defaults)
"""
from __future__ import annotations

import json
import os
import sys
import time
from functools import partial
from pathlib import Path

from xor_rosetta.errors import XorRosettaError
from xor_rosetta.app.common import strict
from xor_rosetta.app.common.files import atomic_write_bytes, atomic_write_json, save_params
from xor_rosetta.app.sweep.plan import VARIANTS, Task, _failed, key, params_from_message, run_task

SINGLE_THREADED = {k: "1" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                     "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")}
# a sweep's parallelism is across runs: each worker computes on one thread (unless these are set already)
SYNC_EVERY_S = 1.0  # runs.jsonl is flushed after every line and fsync'ed at most this often


def read_header(path: Path) -> dict:
    """sweep.json, checked: an object with the fields that --resume reads (format, spec, threshold, wall time)."""
    where = f"--resume: {path}"
    h = strict.obj(strict.read(path, where), where)
    if h.get("format") != 1:
        raise strict.Invalid(f"{where}: field 'format': expected 1, got {strict.kind(h.get('format'))}; it was not "
                             f"written by this version's sweep")
    strict.obj(h.get("spec"), f"{where}: field 'spec'")
    strict.number(h.get("threshold"), f"{where}: field 'threshold'")
    if "wall_seconds" in h and strict.number(h["wall_seconds"], f"{where}: field 'wall_seconds'") < 0:
        raise strict.Invalid(f"{where}: field 'wall_seconds': expected a number >= 0")
    return h


RECORD = {  # field: (check, nullable); a record written by plan.run_task has every one of them
    "final_loss": (strict.number, True), "accuracy": (strict.number, True),
    "steps_to_threshold": (partial(strict.integer, lo=1), True), "diverged_at": (strict.integer, True),
    "converged": (strict.boolean, True), "agreement": (strict.string, True),
    "explanation": (strict.string, True), "error": (strict.string, True)}
OPTIONAL = {"skipped": (strict.string, True), "epsilon": (strict.number, True), "init": (strict.string, True),
            "seconds": (strict.number, True)}


def read_record(line: bytes, where: str) -> dict:
    """One line of runs.jsonl as a run's record, checked field by field (what the report reads of it)."""
    from xor_rosetta.spec import MAX_SEED
    hint = "; remove that line to have its run redone"
    try:
        rec = strict.obj(strict.parse(line, where), where)
        strict.integer(rec.get("seed"), f"{where}: field 'seed'", hi=MAX_SEED)
        strict.string(rec.get("variant"), f"{where}: field 'variant'", choices=tuple(VARIANTS))
        strict.string(rec.get("impl"), f"{where}: field 'impl'")
        strict.integer(rec.get("status"), f"{where}: field 'status'", nullable=True, hi=3)
        for table, required in ((RECORD, True), (OPTIONAL, False)):
            for field, (check, nullable) in table.items():
                if required or field in rec:
                    if field not in rec:
                        raise strict.Invalid(f"{where}: field {field!r} is missing")
                    check(rec[field], f"{where}: field {field!r}", nullable=nullable)
        if "conventions" in rec:
            forms = strict.obj(rec["conventions"], f"{where}: field 'conventions'")
            for form, value in forms.items():
                strict.string(form, f"{where}: field 'conventions'", choices=("adam", "momentum", "bce"))
                strict.string(value, f"{where}: field 'conventions.{form}'")
        if rec["error"] is None and not rec.get("skipped"):
            strict.boolean(rec["converged"], f"{where}: field 'converged' (a run without an error)")
            strict.number(rec["accuracy"], f"{where}: field 'accuracy' (a run without an error)")
    except strict.Invalid as e:
        raise strict.Invalid(f"{e}{hint}") from None
    return rec


class Store:
    """sweep.json and runs.jsonl in `out`; `done` maps (seed, variant, impl) to the record already there."""

    def __init__(self, out: Path, header: dict, resume: bool):
        self.out, self.header = out, header
        self.runs_path, self.header_path = out / "runs.jsonl", out / "sweep.json"
        self.done: dict[tuple, dict] = {}
        if self.runs_path.exists() and self.runs_path.stat().st_size and not resume:
            raise XorRosettaError(f"{str(out)!r} already holds a sweep ({self._count()} runs in runs.jsonl): add "
                                  f"--resume to continue it, or choose another --out")
        if resume and self.header_path.exists():
            old = read_header(self.header_path)
            self._check(old)
            self._load()
            header["wall_seconds"] = old.get("wall_seconds", 0.0)
        elif resume and self.runs_path.exists():
            raise XorRosettaError(f"{str(out)!r} has runs.jsonl but no sweep.json: it was not written by a sweep")
        atomic_write_json(self.header_path, header)
        self.file = open(self.runs_path, "a")
        self.last_sync = time.monotonic()

    def _count(self) -> int:
        with open(self.runs_path, "rb") as f:
            return sum(1 for _ in f)

    def _check(self, old: dict) -> None:
        for field in ("spec", "threshold"):
            if old.get(field) != self.header[field]:
                raise XorRosettaError(f"--resume: {str(self.out)!r} holds a sweep with another {field} "
                                      f"({_shown(old.get(field))}); this command gives "
                                      f"{json.dumps(self.header[field])}. Choose another --out for a new sweep")

    def _load(self) -> None:
        """Read the runs so far. A last line cut short by an interruption (no newline at its end) is dropped and its
        run redone; any other line that is not a run's record is an error naming the file and the line."""
        if not self.runs_path.exists():
            return
        data = self.runs_path.read_bytes()
        lines = data.split(b"\n")
        cut = lines.pop()  # b"" when the file ends with a newline; else a line cut short
        for i, line in enumerate(lines):
            rec = read_record(line, f"{self.runs_path}: line {i + 1}")
            self.done[key(rec)] = rec
        if cut:
            atomic_write_bytes(self.runs_path, data[:len(data) - len(cut)])

    def add(self, rec: dict) -> bool:
        """Append a run's record (once per key); False if it was there already."""
        k = key(rec)
        if k in self.done:
            return False
        self.done[k] = rec
        self.file.write(json.dumps(rec, allow_nan=False) + "\n")
        self.file.flush()
        if time.monotonic() - self.last_sync > SYNC_EVERY_S:
            os.fsync(self.file.fileno())
            self.last_sync = time.monotonic()
        return True

    def save_init(self, msg: dict) -> None:
        path = self.out / "inits" / msg["group"] / f"seed-{msg['seed']}.npz"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            save_params(params_from_message(msg), path)

    def finish(self, seconds: float) -> None:
        """Add this invocation's wall time to the sweep's (sweep.json keeps the total over resumed runs)."""
        self.header["wall_seconds"] = round(self.header.get("wall_seconds", 0.0) + seconds, 2)
        atomic_write_json(self.header_path, self.header)

    def close(self) -> None:
        if not self.file.closed:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()


def _shown(value) -> str:
    try:
        text = json.dumps(value)
    except (ValueError, RecursionError):
        return "unreadable"
    return text if len(text) <= 300 else text[:300] + "..."


class Progress:
    """tqdm on stderr (with an ETA) when it is a terminal and not --quiet; counts finished runs."""

    def __init__(self, total: int, initial: int, enabled: bool):
        self.bar = None
        if enabled and sys.stderr.isatty():
            try:
                from tqdm import tqdm
            except ImportError:  # the NumPy-only install: no bar
                return
            self.bar = tqdm(total=total, initial=initial, unit="run", file=sys.stderr, delay=2.0, smoothing=0.05,
                            dynamic_ncols=True)

    def update(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _handle(msg, store: Store, bar: Progress) -> None:
    if not isinstance(msg, dict) or msg.get("kind") not in ("run", "init"):
        return  # another module's note (the runner announces conventions)
    if msg["kind"] == "init":
        store.save_init(msg)
    elif store.add({k: v for k, v in msg.items() if k != "kind"}):
        bar.update()


RECYCLE_MB = 2048  # a worker past this much memory after a task is replaced: Keras on TensorFlow keeps ~7 MB of
# every model it builds (measured: 40 seed-keras runs in one process, 747 -> 964 MB; neither gc.collect() nor
# keras.backend.clear_session() stops it), and a 1,000-seed native-defaults sweep took two workers past 10 GB


def run_local(tasks: list[Task], spec_dict: dict, threshold: float, store: Store, bar: Progress,
              jobs: int | None, timeout: float | None) -> None:
    """Run `tasks` on the local worker pool; each run is stored as soon as its worker reports it. A task whose
    worker dies or runs past `timeout` gets that error on the run it was doing, and the rest of it is resubmitted."""
    from xor_rosetta.app.workers.pool import Pool
    env = {k: v for k, v in SINGLE_THREADED.items() if k not in os.environ}
    with Pool(jobs=jobs, timeout=timeout, env=env, recycle_mb=RECYCLE_MB) as pool:
        pending = {}
        for i, t in enumerate(tasks):
            pending[i] = t
            pool.submit(i, t.group, run_task, t, spec_dict, threshold, env=t.env)
        next_id = len(tasks)
        for out in pool.results():
            if out.note:
                _handle(out.value, store, bar)
                continue
            task = pending.pop(out.key)
            if out.error is None:
                for msg in out.value:  # normally all stored already, from the notes
                    _handle(msg, store, bar)
                continue
            left = [k for k in task.keys() if k not in store.done]
            if not left:
                continue
            if task.batched:  # one computation: all its runs share the failure
                for s, v, n in left:
                    _handle({"kind": "run", "seed": s, "variant": v, "impl": n, **_failed(out.error)}, store, bar)
                continue
            s, v, n = left[0]  # the run it was doing
            _handle({"kind": "run", "seed": s, "variant": v, "impl": n, **_failed(out.error)}, store, bar)
            rest = sorted({k[0] for k in left[1:]})
            if rest:  # the worker's other runs go to a fresh worker
                skip = frozenset(k for k in ((s, v, n) for s in rest for v in task.variants for n in task.impls)
                                 if k in store.done)
                t = Task(task.group, task.env, task.impls, tuple(rest), task.variants, task.batched, skip)
                pending[next_id] = t
                pool.submit(next_id, t.group, run_task, t, spec_dict, threshold, env=t.env)
                next_id += 1


# --------------------------------------------------------------------------------------------------------- Dask

def dask_task(task: Task, spec_dict: dict, threshold: float) -> list[dict]:
    """On a Dask worker: run the task in this process if it needs NumPy alone, else in a worker process of its
    group (its environment set before any import, e.g. KERAS_BACKEND), kept for the next task."""
    from xor_rosetta import registry
    from xor_rosetta.app.workers import pool as workers
    names = [n for n in task.impls if not task.batched]
    pure = all(registry.get_entry(n).env == () and set(registry.get_entry(n).requires) <= {"numpy"} for n in names)
    if pure:
        return run_task(task, spec_dict, threshold)
    return workers.session().get(task.group, task.env).call(run_task, task, spec_dict, threshold)


def run_dask(address: str, tasks: list[Task], spec_dict: dict, threshold: float, store: Store,
             bar: Progress) -> None:
    """The same tasks on an existing dask.distributed cluster; each task's runs are stored as it completes."""
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise XorRosettaError("--scheduler needs dask.distributed: pip install -c constraints.txt -e '.[dask]'") \
            from None
    try:
        client = Client(address)  # waits distributed.comm.timeouts.connect (30 s by default)
    except (OSError, TimeoutError, ValueError) as e:
        raise XorRosettaError(f"cannot reach the Dask scheduler at {address!r}: {e}") from None
    with client:
        futures = {client.submit(dask_task, t, spec_dict, threshold, pure=False): t for t in tasks}
        try:
            for fut in as_completed(futures):
                task = futures[fut]
                try:
                    msgs = fut.result()
                except Exception as e:  # noqa: BLE001 - a task that failed on the cluster: its runs say why
                    first = str(e).splitlines()[0] if str(e) else ""
                    msgs = [{"kind": "run", "seed": s, "variant": v, "impl": n,
                             **_failed(f"failed on the Dask cluster: {type(e).__name__}: {first}")}
                            for s, v, n in task.keys()]
                for msg in msgs:
                    _handle(msg, store, bar)
        except BaseException:
            client.cancel(list(futures))
            raise
