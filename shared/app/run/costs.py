"""What a run will cost, before it starts: each implementation's measured µs per step (bench's anchors)."""
from __future__ import annotations

from xor_rosetta.spec import Spec

ANCHORS_US = {  # µs/step on seed-numpy measured on this machine (../shared/reference/ANCHORS.md): (low, high)
    "numpy": (17, 25), "torch": (190, 330), "torch-compiled": (52, 60), "keras": (80, 130), "keras-xla": (1.4, 2.3),
    # JAX scan from ANCHORS.md; the other three from the research before they were written (medians of interleaved
    # blocks, quietest of three runs): Flax NNX with nnx.jit_partial, Keras fit with spe=1000 on JAX, spe=1 on torch
    "jax-scan": (1.1, 1.5), "jax": (35, 50), "keras-jax": (33, 39), "keras-torch": (2000, 2700)}


def expected_seconds(name: str, spec: Spec) -> float:
    """A rough estimate of a training run's seconds: the steps at the upper end of the implementation's bench
    anchor (its seed-numpy µs/step on this machine); 0 for one without an anchor."""
    return spec.steps * ANCHORS_US.get(name, (0, 0))[1] * 1e-6


# Many seeds per operation: µs per run-step in one worker (xor-rosetta bench, results/benchmarks.md, 2026-11-29:
# 10,000 seed-numpy runs of 10,000 steps in 14.5 s on 2 workers). torch-vmap and jax-vmap have no anchor yet.
BATCHED_US = {"numpy-batched": 14.5 * 2 / (10_000 * 10_000) * 1e6}
SWEEP_FASTER = {"numpy": "numpy-batched", "torch": "torch-vmap", "jax": "jax-vmap"}  # the same conventions, batched
RUN_FASTER = {"torch": "torch-compiled", "keras": "keras-xla", "jax": "jax-scan"}  # the same maths, compiled
LONG_S = 60.0  # a command expected to take longer says so at its start


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min" if seconds >= 90 else \
        f"{seconds:.0f} s"


def run_seconds(name: str, spec: Spec) -> float:
    """One run's expected seconds: a batched path's per-run share, or the implementation's anchor."""
    if name in BATCHED_US:
        return spec.steps * BATCHED_US[name] * 1e-6
    return expected_seconds(name, spec)


def cost_note(names: list[str], spec: Spec, runs: int = 1, jobs: int = 1, sweep: bool = False) -> str | None:
    """At the start of a long command: about how long it will take, from bench's anchors, and the faster
    equivalents that give the same verdicts (None when it is expected to take under LONG_S)."""
    per = {n: run_seconds(n, spec) * runs for n in names}
    if sweep:  # a sweep spreads each implementation's seeds over every worker
        total = sum(per.values()) / max(1, jobs)
    else:  # compare runs each implementation in one worker
        total = max(max(per.values(), default=0.0), sum(per.values()) / max(1, min(jobs, len(names))))
    if total < LONG_S:
        return None
    faster = SWEEP_FASTER if sweep else RUN_FASTER
    swaps = [(n, faster[n]) for n in names if n in faster and faster[n] not in names and per[n] >= LONG_S / 2]
    what = f"{runs:,} runs each of {', '.join(names)}" if sweep else ", ".join(names)
    note = f"xor-rosetta: about {_duration(total)} for {what} ({spec.steps:,} steps; from bench's anchors on a " \
           f"2-core machine)"
    for slow, fast in swaps:
        est = f", about {_duration(run_seconds(fast, spec) * runs)}" if run_seconds(fast, spec) else ""
        kind = "many seeds per operation, with the same conventions" if sweep else "compiled, with the same maths"
        note += f"; --impls {fast} gives {slow}'s verdicts faster ({kind}{est})"
    return note
