"""Running one cell: its environment, then `xor-rosetta check` and `compare` on both presets through the CLI in
that environment's own interpreter, and `verify` for each implementation that drifted; the result is one record."""
from __future__ import annotations

import json
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import envs

PRESETS = ("seed-numpy", "seed-keras")
RECORD_VERSION = 1
_DRIFT = re.compile(r"^(?P<preset>[^/\s]+)/(?P<impl>[^/\s]+)/(?P<dtype>\w+): step (?P<step>\d+) (?P<what>[^:]+): "
                    r"expected (?P<want>\S+), got (?P<got>\S+) \(\|Δ\| (?P<size>\S+) > (?P<tol>\S+)\)")
_CASE = re.compile(r"^(?P<preset>[^/\s]+)/(?P<impl>[^/\s]+)/(?P<dtype>\w+)")


@dataclass
class Context:
    uv: str
    envs_dir: Path
    wheel: Path
    golden_dir: Path
    python: str | None
    timeout: float
    verify: bool = True
    replay_extra: str = ""  # options the replay command must repeat (a --golden-dir given explicitly)
    children: set = field(default_factory=set)  # running processes, for an interrupt
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)

    def run(self, cmd, timeout, env, cwd=None) -> subprocess.CompletedProcess:
        """A command in its own process group, stopped (the whole group) at the timeout or on an interrupt."""
        if self.stopping.is_set():
            raise InterruptedError
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd,
                             start_new_session=True, stdin=subprocess.DEVNULL)
        with self.lock:
            self.children.add(p)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill(p)
            out, err = p.communicate()
            err += f"\ntimeout after {timeout:.0f} s"
            return subprocess.CompletedProcess(cmd, 124, out, err)
        finally:
            with self.lock:
                self.children.discard(p)
        if self.stopping.is_set():
            raise InterruptedError
        return subprocess.CompletedProcess(cmd, p.returncode, out, err)

    def stop(self) -> None:
        self.stopping.set()
        with self.lock:
            for p in list(self.children):
                kill(p)


def kill(p: subprocess.Popen) -> None:
    """Our own child's process group (it has one of its own: start_new_session)."""
    try:
        import os
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
        pass


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1][:400] if lines else "no output"


def replay_command(cell, impl: str, cells_file: str, extra: str = "") -> str:
    where = f" --cells {shlex.quote(cells_file)}" if cells_file else ""
    return f"xor-rosetta matrix{where} --only {cell.name} --impls {impl}{extra} --out /tmp/xor-rosetta-replay"


def golden_conventions(golden_dir: Path, impl: str) -> dict:
    """The conventions the golden files record for this implementation (the same in every case of it)."""
    for f in sorted(golden_dir.glob(f"*.{impl}.*.json")):
        try:
            return dict(json.loads(f.read_text()).get("conventions") or {})
        except (OSError, ValueError, AttributeError):
            continue
    return {}


def parse_drift(lines: list[str]) -> dict[str, dict]:
    """check's DRIFT lines by implementation: the first step, the largest |Δ| and where, the lines themselves."""
    out: dict[str, dict] = {}
    for ln in lines:
        m = _DRIFT.match(ln) or _CASE.match(ln)
        impl = m.group("impl") if m else "?"
        d = out.setdefault(impl, {"first_step": None, "size": None, "at": None, "lines": []})
        d["lines"].append(ln)
        if m and "step" in m.groupdict():
            step, size = int(m.group("step")), float(m.group("size"))
            if d["first_step"] is None or step < d["first_step"]:
                d["first_step"] = step
            if d["size"] is None or size > d["size"]:
                d["size"], d["at"] = size, f"{m.group('preset')}/{m.group('dtype')} step {step} {m.group('what')}"
    return out


def run_cell(cell, ctx: Context, cells_file: str, impls: list[str]) -> dict:
    t0 = time.time()
    rec = {"version": RECORD_VERSION, "cell": cell.to_dict(), "impls_run": impls, "env_key": cell.env_key,
           "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "status": None, "reason": "", "installed": {},
           "seconds": {}, "results": {}}
    inst = envs.install(ctx.uv, cell, ctx.envs_dir, ctx.wheel, ctx.python, ctx.timeout, ctx.run)
    rec["seconds"]["install"] = round(inst.seconds, 1)
    rec["env_cached"] = inst.cached
    if not inst.ok:
        rec.update(status="not-installable", reason=inst.reason)
        rec["seconds"]["total"] = round(time.time() - t0, 1)
        return rec
    rec["installed"] = {k: v for k, v in inst.versions.items()
                        if k in dict(cell.packages) or k in ("numpy", "jax", "jaxlib", "flax", "optax", "keras",
                                                             "tensorflow-cpu", "tensorflow", "torch", "ml-dtypes")}
    env_dir = inst.python.parent.parent
    env = envs.cell_env(env_dir)
    exe = str(env_dir / "bin" / "xor-rosetta")
    work = Path(tempfile.mkdtemp(prefix=f"xor-rosetta-matrix-{cell.name}-"))
    try:
        left = lambda: max(1.0, ctx.timeout - (time.time() - t0))  # noqa: E731
        ts = time.time()
        p = ctx.run([exe, "check", "--impls", ",".join(impls), "--json", "--quiet", "--jobs", "1",
                     "--golden-dir", str(ctx.golden_dir)], left(), env, work)
        rec["seconds"]["check"] = round(time.time() - ts, 1)
        try:
            check = json.loads(p.stdout) if p.returncode in (0, 1) else None
        except ValueError:
            check = None
        if check is None:
            rec.update(status="error", reason=f"check exited {p.returncode}: {last_line(p.stderr)}")
            return rec
        skipped = {}
        for ln in p.stderr.splitlines():
            m = re.match(r"^skipped (\S+): (.*)$", ln)
            if m:
                skipped[m.group(1)] = m.group(2)[:400]
        drifts = parse_drift(check.get("drift", []))
        errors = check.get("errors", {})
        for impl in impls:
            r = {"golden": "agrees", "reason": "", "drift": None, "compare": {}, "conventions": None,
                 "golden_conventions": golden_conventions(ctx.golden_dir, impl)}
            errs = {c: why for c, why in errors.items() if _CASE.match(c) and _CASE.match(c).group("impl") == impl}
            if impl in skipped:
                r.update(golden="error", reason=f"unavailable: {skipped[impl]}")
            elif errs:
                c, why = next(iter(errs.items()))
                r.update(golden="error", reason=f"{c}: {why}"[:400])
            elif impl in drifts:
                r.update(golden="drift", drift=drifts[impl],
                         replay=replay_command(cell, impl, cells_file, ctx.replay_extra))
            rec["results"][impl] = r
        ts = time.time()
        runnable = [i for i in impls if rec["results"][i]["golden"] != "error" or "unavailable" not in
                    rec["results"][i]["reason"]]
        for preset in PRESETS if runnable else ():
            p = ctx.run([exe, "compare", "--preset", preset, "--impls", ",".join(runnable), "--json", "--quiet",
                         "--jobs", "1", "--out", str(work / f"compare-{preset}")], left(), env, work)
            try:
                rep = json.loads(p.stdout)
            except ValueError:
                rep = None
            for impl in runnable:
                if rep is None:
                    rec["results"][impl]["compare"][preset] = {"verdict": "error",
                                                               "error": f"compare exited {p.returncode}: "
                                                                        f"{last_line(p.stderr)}"}
                    continue
                got = next((x for x in rep.get("implementations", []) if x.get("implementation") == impl), None)
                if got is None:
                    rec["results"][impl]["compare"][preset] = {"verdict": "error", "error": "not in compare's report"}
                    continue
                rec["results"][impl]["compare"][preset] = {
                    k: got.get(k) for k in ("verdict", "error", "final_loss", "steps_to_threshold", "max_param_diff",
                                            "first_disagreement")}
                rec["results"][impl]["compare"][preset]["agreement"] = (got.get("agreement") or {}).get("status")
        rec["seconds"]["compare"] = round(time.time() - ts, 1)
        if ctx.verify:
            ts = time.time()
            for impl in impls:
                r = rec["results"][impl]
                if r["golden"] != "drift":
                    continue
                p = ctx.run([exe, "verify", impl, "--json", "--quiet"], left(), env, work)
                try:
                    v = json.loads(p.stdout)
                    r["conventions"] = {k: (c or {}).get("form") for k, c in (v.get("conventions") or {}).items()}
                except (ValueError, AttributeError):
                    r["conventions"] = None
                    r["verify_error"] = f"verify exited {p.returncode}: {last_line(p.stderr)}"
            rec["seconds"]["verify"] = round(time.time() - ts, 1)
        rec["status"] = "judged"
        return rec
    finally:
        shutil.rmtree(work, ignore_errors=True)
        rec["seconds"]["total"] = round(time.time() - t0, 1)
        rec["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
