"""Before a run starts: will its own memory fit in what the machine has available?

A run's memory that grows with its size is the loss history (8 bytes a step, float64, for every implementation, for
every reference run and for the rounding-floor runs that judge it) and the checkpointed parameters. Everything else
is bounded: the decision-boundary grid is evaluated in chunks, plots draw at most `report.MAX_POINTS` points a line,
and history.json is written in chunks.
"""
from __future__ import annotations

import os
from pathlib import Path

try:
    import resource  # POSIX only
except ImportError:
    resource = None

from xor_rosetta.errors import XorRosettaError
from xor_rosetta.spec import Spec

LOSS_BYTES = 8  # float64 per step
CHECKPOINTS = 30  # checkpoints kept per run: about 16 log-spaced ones plus 1, 10, 100, ... (runner.checkpoints_for)
HEADROOM = 1 << 30  # the frameworks themselves: 0.3-0.7 GB peak RSS each (results/benchmarks.md)


def run_memory(spec: Spec, implementations: int = 1, compare: bool = True) -> int:
    """Bytes that a run of `spec` holds at its peak, beyond the frameworks themselves.

    compare: each implementation's history and its reference's, plus the rounding-floor runs (four jittered
    references, one at a time, and the per-step maximum) and the judge's per-step temporaries.
    """
    n_params = sum(i * o + o for i, o in zip(spec.layers[:-1], spec.layers[1:]))
    histories = 2 * implementations + 8 if compare else 2
    kept = min(CHECKPOINTS, spec.steps + 1)  # a 3-step run keeps 3 checkpoints, not 30
    per_run_params = (kept + 4) * n_params * 8  # checkpoints, the live params, optimizer state, gradients
    return histories * spec.steps * LOSS_BYTES + (2 * implementations + 4 if compare else 1) * per_run_params


def available_memory() -> int | None:
    """Bytes this process can still allocate: the least of the machine's available memory (MemAvailable, else free
    pages), a cgroup limit, and an address-space limit (ulimit -v); None when none of them can be read."""
    found = []
    meminfo = _meminfo()
    if "MemAvailable" in meminfo:
        found.append(meminfo["MemAvailable"])
    else:
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            pass
    found += _cgroup_left()
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)  # AttributeError where there is no `resource`
        if soft != resource.RLIM_INFINITY:
            found.append(max(0, soft - _vm_size()))
    except (ValueError, OSError, AttributeError):
        pass
    return min(found) if found else None


def check_fits(spec: Spec, implementations: int = 1, compare: bool = True) -> None:
    """A one-line error, before anything starts, when the run would not fit in the memory available."""
    need = run_memory(spec, implementations, compare)
    have = available_memory()
    if have is None or need + HEADROOM <= have:
        return
    raise XorRosettaError(
        f"this run needs about {_size(need)} of memory for its loss histories and checkpoints ({spec.steps:,} steps, "
        f"{implementations} implementation{'s' * (implementations != 1)}), plus ~{_size(HEADROOM)} for the frameworks, "
        f"but {_size(have)} is available; use fewer steps (--steps) or smaller layers")


def _size(n: int) -> str:
    if n < 1 << 30:
        return f"{n / (1 << 20):.0f} MiB"
    gib = n / (1 << 30)
    return f"{gib:.1f} GiB" if gib < 10_000 else f"{gib:.3g} GiB"


def _meminfo() -> dict[str, int]:
    out = {}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts and parts[0].isdigit():
                out[key] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    except OSError:
        pass
    return out


def _cgroup_left() -> list[int]:
    """Memory left under this process's cgroup limit (v2, then v1)."""
    pairs = [("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
             ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes")]
    for limit, used in pairs:
        try:
            lim, cur = Path(limit).read_text().strip(), Path(used).read_text().strip()
        except OSError:
            continue
        if lim.isdigit() and cur.isdigit() and int(lim) < 1 << 60:  # v1 reports "no limit" as a huge number
            return [max(0, int(lim) - int(cur))]
        return []
    return []


def _vm_size() -> int:
    """This process's address space now (what ulimit -v counts)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0
