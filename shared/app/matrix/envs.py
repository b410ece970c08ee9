"""One isolated environment per cell, built with uv and cached by its pins; the project installed into it as a wheel."""
from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from ...errors import XorRosettaError

# variables of the driver that must not reach a cell: they would change what its interpreter imports or how it runs
LEAKY = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "PYTHONSAFEPATH", "VIRTUAL_ENV",
         "CONDA_PREFIX", "KERAS_BACKEND", "KERAS_HOME", "JAX_ENABLE_X64", "JAX_PLATFORMS", "XLA_FLAGS",
         "TF_CPP_MIN_LOG_LEVEL", "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "PIP_CONSTRAINT", "UV_CONSTRAINT",
         "UV_OVERRIDE", "UV_PROJECT_ENVIRONMENT", "UV_PYTHON")
KEEP = ("HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TERM", "USER", "LOGNAME", "SSL_CERT_FILE")


def default_envs_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "xor-rosetta" / "matrix"


def find_uv() -> str:
    """uv from the `uv` package installed beside this interpreter, else from PATH."""
    try:
        from uv import find_uv_bin
        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        pass
    here = Path(sys.executable).with_name("uv")
    if here.is_file():
        return str(here)
    found = shutil.which("uv")
    if not found:
        raise XorRosettaError("the matrix needs uv: pip install -c constraints.txt -e '.[matrix]' (or put uv on PATH)")
    return found


def uv_env() -> dict:
    """The environment uv runs in: the driver's, less what would point it at the driver's own environment."""
    env = {k: v for k, v in os.environ.items() if k not in LEAKY}
    links = [p for p in os.environ.get("PIP_FIND_LINKS", "").split() if os.path.isdir(p)]
    if links and "UV_FIND_LINKS" not in env:  # local wheels pip is told about (a CPU-only torch) serve uv too
        env["UV_FIND_LINKS"] = ",".join(links)
    env["UV_NO_PROGRESS"] = "1"
    return env


def cell_env(env_dir: Path) -> dict:
    """A clean environment for a cell's commands: its own bin first, system paths, nothing of the driver's Python."""
    env = {k: os.environ[k] for k in KEEP if k in os.environ}
    env["PATH"] = f"{env_dir / 'bin'}:/usr/local/bin:/usr/bin:/bin"
    env["PYTHONNOUSERSITE"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def one_line(stderr: str, limit: int = 400) -> str:
    """uv's reason in one line: the sentence after its '╰─▶', else its 'error:' line, else the last line."""
    lines = [re.sub(r"^[\s×╰─▶│|]+", "", ln).strip() for ln in stderr.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("hint:")]
    if not lines:
        return "failed without a message"
    raw = stderr.splitlines()
    for i, ln in enumerate(raw):
        if "╰─▶" in ln:  # the cause, possibly wrapped over several indented lines
            cause = [ln.split("╰─▶", 1)[1].strip()]
            for nxt in raw[i + 1:]:
                if not nxt.startswith("      ") or not nxt.strip():
                    break
                cause.append(nxt.strip())
            text = " ".join(cause)
            break
    else:
        text = next((ln for ln in lines if ln.lower().startswith("error")), lines[-1])
    return text if len(text) <= limit else text[:limit - 3] + "..."


def build_wheel(uv: str, project: Path, into: Path, timeout: float = 600) -> Path:
    """The project as a wheel, built once per matrix run (the cells install it without its dependencies' bounds)."""
    into.mkdir(parents=True, exist_ok=True)
    for old in into.glob("*.whl"):
        old.unlink()
    p = subprocess.run([uv, "build", "--wheel", "--out-dir", str(into), str(project)], capture_output=True,
                       text=True, env=uv_env(), timeout=timeout)
    wheels = sorted(into.glob("*.whl"))
    if p.returncode != 0 or not wheels:
        raise XorRosettaError(f"cannot build the project's wheel from {project}: {one_line(p.stderr)}")
    return wheels[-1]


class Installed:
    def __init__(self, ok: bool, python: Path, reason: str = "", versions: dict | None = None,
                 seconds: float = 0.0, cached: bool = False):
        self.ok, self.python, self.reason = ok, python, reason
        self.versions, self.seconds, self.cached = versions or {}, seconds, cached


def install(uv: str, cell, envs_dir: Path, wheel: Path, python: str | None, timeout: float, run) -> Installed:
    """The cell's environment, created once per set of pins (under a lock: cells with the same pins take turns),
    then the project's wheel and the pins installed into it; the pins override the project's own bounds.
    `run(cmd, timeout, env)` runs a command (the caller's, so that an interrupt can stop it)."""
    import time
    t0 = time.monotonic()
    envs_dir.mkdir(parents=True, exist_ok=True)
    env_dir = envs_dir / cell.env_key
    py = env_dir / "bin" / "python"
    want = {"pins": cell.pins, "python": python or f"{sys.version_info[0]}.{sys.version_info[1]}"}
    with open(envs_dir / f"{cell.env_key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        marker = env_dir / "xor-rosetta-matrix.json"
        cached = False
        try:
            cached = json.loads(marker.read_text()) == want and py.is_file()
        except (OSError, ValueError):
            pass
        if not cached:
            shutil.rmtree(env_dir, ignore_errors=True)
            p = run([uv, "venv", "--quiet", "--python", want["python"], "--python-preference", "only-system",
                     str(env_dir)], timeout, uv_env())
            if p.returncode != 0:
                return Installed(False, py, f"uv venv: {one_line(p.stderr)}", seconds=time.monotonic() - t0)
        overrides = env_dir / "overrides.txt"
        overrides.write_text("\n".join(cell.pins) + "\n")
        left = max(1.0, timeout - (time.monotonic() - t0))
        p = run([uv, "pip", "install", "--quiet", "--python", str(py), "--override", str(overrides),
                 "--reinstall-package", "xor-rosetta", str(wheel), *cell.pins], left, uv_env())
        if p.returncode != 0:
            if not cached:
                shutil.rmtree(env_dir, ignore_errors=True)
            return Installed(False, py, one_line(p.stderr), seconds=time.monotonic() - t0)
        if not cached:
            marker.write_text(json.dumps(want))
        p = run([uv, "pip", "freeze", "--python", str(py)], 120, uv_env())
        versions = {}
        for ln in p.stdout.splitlines():
            m = re.match(r"^([A-Za-z0-9._-]+)==(\S+)", ln)
            if m:
                versions[re.sub(r"[-_.]+", "-", m.group(1)).lower()] = m.group(2)
        return Installed(True, py, versions=versions, seconds=time.monotonic() - t0, cached=cached)
