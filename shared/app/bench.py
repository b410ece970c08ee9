"""`xor-rosetta bench`: import, compile and steady-state speed of every variant, a scaling sweep, and a report.

Steady state is the marginal cost of a step: (time of an N2-step run - time of an N1-step run) / (N2 - N1), on
fresh instances, repeated in interleaved rounds (A B C ... A B C ...); reported as median and [min, max].
"""
from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .. import registry
from ..data import xor_data
from ..params import init_params, shapes
from ..presets import get_preset
from ..spec import Init, Optimizer, Spec

ANCHORS_US = {  # µs/step on seed-numpy measured on this machine (../shared/reference/ANCHORS.md): (low, high)
    "numpy": (17, 25), "torch": (190, 330), "torch-compiled": (52, 60), "keras": (80, 130), "keras-xla": (1.4, 2.3)}
TARGETS_US = {"torch-compiled": 80, "keras-xla": 5}  # issue targets, after compilation
WIDTHS, BATCHES = (5, 64, 512, 4096), (4, 1024, 65536)


def timed_train(cls, spec, params, x, y) -> float:
    model = cls(spec, params)
    t = time.perf_counter()
    model.train(x, y)
    return time.perf_counter() - t


def probe(name: str, preset: str, full: bool = True) -> dict:
    """Run in a fresh process: import time, first call, time to convergence, 10,000-step time, peak memory."""
    t = time.perf_counter()
    cls = registry.load(name)
    import_s = time.perf_counter() - t
    spec, (x, y) = get_preset(preset), xor_data()
    params = init_params(spec)
    first_s = timed_train(cls, spec.replace(steps=10), params, x, y)
    from ..reference import Reference
    from .runner import DEFAULT_THRESHOLD
    ref = Reference(spec, params, cls.conventions).train(x, y)
    below = np.flatnonzero(ref.loss < DEFAULT_THRESHOLD[spec.loss])
    n_conv = int(below[0]) + 1 if below.size else spec.steps
    conv_s = timed_train(cls, spec.replace(steps=n_conv), params, x, y)
    full_s = timed_train(cls, spec, params, x, y) if full else None
    return {"import_s": import_s, "first_call_s": first_s, "steps_to_converge": n_conv, "converge_s": conv_s,
            "full_run_s": full_s, "full_run_steps": spec.steps, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_probe(name: str, preset: str, full: bool) -> dict:
    out = subprocess.run([sys.executable, "-m", "xor_rosetta.app.bench", "--probe", name, preset, str(int(full))], capture_output=True,
                         text=True, timeout=600)
    if out.returncode:
        return {"error": (out.stderr.strip().splitlines() or ["probe failed"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def steady(classes: dict, spec: Spec, x, y, n1: int, n2: int, rounds: int) -> dict[str, list[float]]:
    """Marginal µs/step per variant, one value per round; the variants take turns within each round.

    Each variant keeps one instance, so what it compiled for n1 and n2 steps is compiled once, in the warm-up;
    training goes on from where the previous block left off (the `train` contract, `xor_rosetta.interface.MLP`).
    """
    models = {n: cls(spec.replace(steps=n2), init_params(spec)) for n, cls in classes.items()}

    def block(model, n):
        t = time.perf_counter()
        model.train(x, y, steps=n)
        return time.perf_counter() - t

    for m in models.values():  # warm up: first calls, compiles, caches
        block(m, n2), block(m, n1)
    out = {n: [] for n in models}
    for _ in range(rounds):
        for name, m in models.items():
            t1, t2 = block(m, n1), block(m, n2)
            out[name].append((t2 - t1) / (n2 - n1) * 1e6)
    return out


def flops_per_step(spec: Spec, batch: int) -> float:
    """Matmul FLOPs of one step: forward 2·B·Σ(in·out), backward twice that."""
    return 6.0 * batch * sum(w[0] * w[1] for w, _ in shapes(spec))


def peak_matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    best = min(_time(lambda: a @ a) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _time(f) -> float:
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def sweep(classes: dict, quick: bool) -> list[dict]:
    rows, rng = [], np.random.default_rng(0)
    for width in WIDTHS:
        for batch in BATCHES:
            if quick and (width, batch) not in ((5, 4), (512, 4), (5, 1024), (512, 1024)):
                continue
            size = width * batch
            big = size >= 512 * 65536
            n1, n2 = (1, 3) if big else (4, 12) if size >= 64 * 65536 else (20, 100) if size >= 64 * 1024 else (200, 1000)
            spec = Spec(layers=(2, width, 1), activations=("tanh", "linear"), steps=n2, dtype="float32",
                        optimizer=Optimizer("sgd", lr=1e-3), init=Init("glorot-uniform", 0))
            x = rng.random((batch, 2)).astype(np.float32)
            y = (x.sum(axis=1, keepdims=True) % 2 > 0.5).astype(np.float32)  # (batch, 1)
            times = steady(classes, spec, x, y, n1, n2, rounds=1 if big or quick else 3)  # interleaved
            for name, us in times.items():
                med = statistics.median(us)
                rows.append({"variant": name, "width": width, "batch": batch, "flops": flops_per_step(spec, batch),
                             "us_per_step": med if med > 0 else None})  # None: lost in the machine's noise
    return rows


def environment() -> dict:
    env = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
           "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                     "OPENBLAS_CORETYPE", "TF_NUM_INTRAOP_THREADS")}}
    try:
        import torch
        env["threads"]["torch.get_num_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    env["versions"] = {k: v for e in registry.ENTRIES for k, v in registry.versions(e).items()}
    return env


def compare_wall_s() -> float | None:
    exe = Path(sys.executable).parent / "xor-rosetta"
    t = time.perf_counter()
    p = subprocess.run([str(exe), "compare", "--preset", "seed-numpy", "--quiet", "--out",
                        str(Path(os.environ.get("TMPDIR", "/tmp")) / "xor-rosetta-bench-compare")],
                       capture_output=True, text=True, timeout=600)
    return time.perf_counter() - t if p.returncode in (0, 1) else None


def run(quick: bool, out: Path, progress=None) -> dict:
    say = progress or (lambda label: None)
    names = [n for n in registry.REGISTRY if registry.unavailable_reason(registry.REGISTRY[n]) is None]
    skipped = {n: registry.unavailable_reason(registry.REGISTRY[n]) for n in registry.REGISTRY if n not in names}
    probes = {}
    for n in names:
        say(f"probing {n} in a fresh process")
        probes[n] = run_probe(n, "seed-numpy", full=not quick)
    classes = {n: registry.load(n) for n in names}
    spec, (x, y) = get_preset("seed-numpy"), xor_data()
    say("steady state on seed-numpy")
    n1, n2, rounds = (100, 500, 3) if quick else (1000, 5000, 5)
    marg = steady(classes, spec, x, y, n1, n2, rounds)
    say("peak matmul rate")
    peak = peak_matmul_gflops()
    say("scaling sweep")
    rows = sweep(classes, quick)
    for r in rows:
        r["gflops"] = None if r["us_per_step"] is None else r["flops"] / r["us_per_step"] / 1e3
        r["fraction_of_peak"] = None if r["gflops"] is None else r["gflops"] / peak
    say("timing xor-rosetta compare")
    wall = None if quick else compare_wall_s()
    base = statistics.median(marg["numpy"]) if "numpy" in marg else None
    variants = {}
    for n in names:
        med = statistics.median(marg[n])
        lo, hi = ANCHORS_US[n]
        variants[n] = {**probes[n], "us_per_step_median": med, "us_per_step_min": min(marg[n]),
                       "us_per_step_max": max(marg[n]), "rounds": marg[n], "ratio_to_numpy": med / base if base else None,
                       "anchor_us": [lo, hi], "within_2x_anchor": med <= 2 * hi, "target_us": TARGETS_US.get(n),
                       "meets_target": None if n not in TARGETS_US else med <= TARGETS_US[n]}
    report = {"quick": quick, "environment": environment(), "steady_state": {"preset": "seed-numpy", "n1": n1,
              "n2": n2, "rounds": rounds}, "peak_matmul_gflops": peak, "variants": variants, "skipped": skipped,
              "sweep": rows, "compare_seed_numpy_wall_s": wall}
    write(out, report)
    return report


def write(out: Path, report: dict) -> None:
    from .files import FileSet
    out.mkdir(parents=True, exist_ok=True)
    with FileSet(out, family=("benchmarks.json", "benchmarks.md", "bench_scaling.png")) as files:  # one set
        files.write_json("benchmarks.json", report)
        plot = _plot(files, report)
        files.write("benchmarks.md", markdown(report, plot))


def markdown(r: dict, plot: str | None) -> str:
    env = r["environment"]
    lines = ["# xor-rosetta benchmarks", "",
             f"Produced by `xor-rosetta bench{' --quick' if r['quick'] else ''}` on {env['platform']}, "
             f"{env['cpus']} CPUs, Python {env['python']}; " + ", ".join(f"{k} {v}" for k, v in env["versions"].items())
             + f". Threads: {', '.join(f'{k}={v}' for k, v in env['threads'].items() if v is not None) or 'defaults'}. "
             "The machine is shared and noisy: read ratios, not digits.", "",
             "## seed-numpy, per variant", "",
             f"Steady state: marginal cost of a step between {r['steady_state']['n1']:,}- and "
             f"{r['steady_state']['n2']:,}-step runs, {r['steady_state']['rounds']} interleaved rounds: median "
             "[min–max]. Import, first call (10 steps, compiles included), time to convergence (loss < 1e-6, fresh "
             "instance, compiles included), the 10,000-step run and peak memory come from a fresh process per variant.",
             "", "| variant | import s | first call s | µs/step | × numpy | anchor µs/step | within 2× anchor | target "
             "| converge (steps, s) | 10,000 steps s | peak RSS MB |", "|---|---:|---:|---:|---:|---:|---|---|---:|---:|---:|"]
    for n, v in r["variants"].items():
        if "error" in v:
            lines.append(f"| {n} | probe failed: {v['error']} |")
            continue
        target = "—" if v["target_us"] is None else f"≤ {v['target_us']}: {'met' if v['meets_target'] else 'MISSED'}"
        lines.append(f"| {n} | {v['import_s']:.2f} | {v['first_call_s']:.2f} | {v['us_per_step_median']:.1f} "
                     f"[{v['us_per_step_min']:.1f}–{v['us_per_step_max']:.1f}] | {v['ratio_to_numpy']:.2f} | "
                     f"{v['anchor_us'][0]}–{v['anchor_us'][1]} | {'yes' if v['within_2x_anchor'] else 'NO'} | {target} | "
                     f"{v['steps_to_converge']:,}, {v['converge_s']:.2f} | {_opt(v['full_run_s'])} | {v['peak_rss_mb']:.0f} |")
    for n, why in r["skipped"].items():
        lines.append(f"| {n} | unavailable: {why} |")
    if r["compare_seed_numpy_wall_s"] is not None:
        lines += ["", f"`xor-rosetta compare --preset seed-numpy` (every variant, imports and compiles included, "
                      f"fresh process): **{r['compare_seed_numpy_wall_s']:.1f} s** (target ≤ 15 s)."]
    lines += ["", "## Scaling sweep", "",
              f"Full-batch steps of a 2-H-1 tanh MLP in float32 on random data. Peak float32 matmul rate measured in "
              f"this run: {r['peak_matmul_gflops']:.0f} GFLOP/s (NumPy, 2048²). FLOPs count the matmuls only "
              "(6·B·Σ in·out per step).", "", "| width | batch | FLOPs/step | " + " | ".join(
                  f"{n} µs (GFLOP/s, % peak)" for n in r["variants"]) + " |", "|---:|---:|---:|" + "---:|" * len(r["variants"])]
    cells = {}
    for row in r["sweep"]:
        cells.setdefault((row["width"], row["batch"], row["flops"]), {})[row["variant"]] = row
    for (w, b, f), by in cells.items():
        lines.append(f"| {w} | {b:,} | {f:.2g} | " + " | ".join(_cell(by.get(n)) for n in r["variants"]) + " |")
    if plot:
        lines += ["", f"![µs/step against FLOPs per step]({plot})"]
    return "\n".join(lines) + "\n"


def _opt(v) -> str:
    return "—" if v is None else f"{v:.2f}"


def _cell(row) -> str:
    if row is None:
        return "—"
    if row["us_per_step"] is None:
        return "noise"
    return f"{row['us_per_step']:.1f} ({row['gflops']:.2g}, {100 * row['fraction_of_peak']:.2g}%)"


def _plot(files, r: dict) -> str | None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    from .report import _png
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for n in r["variants"]:
        pts = sorted((row["flops"], row["us_per_step"]) for row in r["sweep"] if row["variant"] == n and row["us_per_step"])
        if pts:
            ax.plot(*zip(*pts), marker="o", label=n)
    ax.set(xscale="log", yscale="log", xlabel="FLOPs per step (matmuls)", ylabel="µs per step",
           title="Scaling: 2-H-1 MLP, full batch, float32")
    ax.legend()
    files.write("bench_scaling.png", _png(fig))
    return "bench_scaling.png"


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "--probe":
    print(json.dumps(probe(sys.argv[2], sys.argv[3], full=sys.argv[4] == "1")))
