"""`xor-rosetta bench`: import, compile and steady-state speed of every variant, a scaling sweep, what `compare`
costs against the bare import of the frameworks, and a report.

Steady state is the marginal cost of a step: (time of an N2-step run - time of an N1-step run) / (N2 - N1), on
one instance per variant, repeated in interleaved rounds (A B C ... A B C ...); reported as median and [min, max].
Each variant lives in a worker process of its group (`xor_rosetta.app.workers.remote.RemoteMLP`), one call at a time,
and each block is timed inside the worker; this process imports no framework.
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

from xor_rosetta import registry
from xor_rosetta.data import xor_data
from xor_rosetta.params import init_params, shapes
from xor_rosetta.presets import get_preset
from xor_rosetta.spec import Init, Optimizer, Spec
from xor_rosetta.app.run.costs import ANCHORS_US
from xor_rosetta.implementations.probes.bench import thread_counts

TARGETS_US = {"torch-compiled": 80, "keras-xla": 5, "jax-scan": 3}  # issue targets, after compilation
TARGET_COMPARE_RATIO = 2.0  # compare --preset seed-numpy, warm, at most this many times the bare import of all frameworks
WIDTHS, BATCHES = (5, 64, 512, 4096), (4, 1024, 65536)
MAX_CELL = 512 * 65536  # width x batch: 4096 x 65536 is 1 GiB per float32 activation; with every variant's worker
# holding its model at once, that cell ran this 24 GB machine out of memory (the kernel killed a worker)


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
    from xor_rosetta.reference import Reference
    from xor_rosetta.compare import DEFAULT_THRESHOLD
    ref = Reference(spec, params, cls.conventions).train(x, y)
    below = np.flatnonzero(ref.loss < DEFAULT_THRESHOLD[spec.loss])
    n_conv = int(below[0]) + 1 if below.size else spec.steps
    conv_s = timed_train(cls, spec.replace(steps=n_conv), params, x, y)
    full_s = timed_train(cls, spec, params, x, y) if full else None
    return {"import_s": import_s, "first_call_s": first_s, "steps_to_converge": n_conv, "converge_s": conv_s,
            "full_run_s": full_s, "full_run_steps": spec.steps, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_probe(name: str, preset: str, full: bool) -> dict:
    out = subprocess.run([sys.executable, "-m", "xor_rosetta.app.bench.speed", "--probe", name, preset, str(int(full))], capture_output=True,
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
        elapsed = time.perf_counter() - t
        return getattr(model, "last_call_seconds", None) or elapsed  # a RemoteMLP: timed in its worker

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
            if size > MAX_CELL:
                continue
            big = size >= 512 * 65536
            n1, n2 = (1, 3) if big else (4, 12) if size >= 64 * 65536 else (20, 100) if size >= 64 * 1024 else (200, 1000)
            spec = Spec(layers=(2, width, 1), activations=("tanh", "linear"), steps=n2, dtype="float32",
                        optimizer=Optimizer("sgd", lr=1e-3), init=Init("glorot-uniform", 0))
            x = rng.random((batch, 2)).astype(np.float32)
            y = (x.sum(axis=1, keepdims=True) % 2 > 0.5).astype(np.float32)  # (batch, 1)
            try:
                times = steady(classes, spec, x, y, n1, n2, rounds=1 if big or quick else 3)  # interleaved
            except Exception as e:  # noqa: BLE001 - a worker that dies (out of memory, say) costs this cell only
                why = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                rows += [{"variant": n, "width": width, "batch": batch, "flops": flops_per_step(spec, batch),
                          "us_per_step": None, "error": why} for n in classes]
                continue
            for name, us in times.items():
                med = statistics.median(us)
                rows.append({"variant": name, "width": width, "batch": batch, "flops": flops_per_step(spec, batch),
                             "us_per_step": med if med > 0 else None})  # None: lost in the machine's noise
    return rows


def environment(threads: dict | None = None) -> dict:
    env = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
           "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                     "OPENBLAS_CORETYPE", "TF_NUM_INTRAOP_THREADS")}}
    env["threads"].update(threads or {})
    env["versions"] = {k: v for e in registry.ENTRIES for k, v in registry.versions(e).items()}
    return env


def frameworks(names: list[str]) -> tuple[list[str], dict[str, str]]:
    """The modules that `names` import (numpy, torch, keras, tensorflow, ...) and the environment one process
    importing all of them takes (the first value each variable is given: KERAS_BACKEND=tensorflow)."""
    modules, env = [], {}
    for n in names:
        e = registry.get_entry(n)
        modules += [m for m in e.requires if m not in modules]
        for k, v in e.env:
            env.setdefault(k, v)
    return modules, env


def import_all_s(modules: list[str], env: dict[str, str]) -> float | None:
    """Wall time of a fresh Python importing every framework, interpreter start included (as compare's is)."""
    code = "import " + ", ".join(modules)
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                       env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env})
    return time.perf_counter() - t if p.returncode == 0 else None


def compare_run(cache: Path, out: Path) -> dict | None:
    """`xor-rosetta compare --preset seed-numpy` (every variant) in a fresh process, with torch.compile's cache in
    `cache`: its wall time, and what its workers cost (from report.json)."""
    exe = Path(sys.executable).parent / "xor-rosetta"
    t = time.perf_counter()
    p = subprocess.run([str(exe), "compare", "--preset", "seed-numpy", "--quiet", "--out", str(out)],
                       capture_output=True, text=True, timeout=900,
                       env={**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(cache)})
    wall = time.perf_counter() - t
    if p.returncode not in (0, 1):
        return None
    workers = json.loads((out / "report.json").read_text()).get("workers", {})
    return {"wall_s": wall, **workers}


def compare_vs_imports(names: list[str], rounds: int, say=lambda label: None) -> dict:
    """`compare --preset seed-numpy` against the bare import of all frameworks, side by side in this run: one cold
    compare (an empty torch.compile cache, as in a fresh clone), then `rounds` of (import, warm compare)."""
    import shutil
    import tempfile
    modules, env = frameworks(names)
    tmp = Path(tempfile.mkdtemp(prefix="xor-rosetta-bench-"))
    try:
        say("compare, cold (empty torch.compile cache)")
        cold = compare_run(tmp / "inductor-cache", tmp / "out")
        imports, warm = [], []
        for i in range(rounds):
            say(f"bare import of {', '.join(modules)}, then compare, warm ({i + 1}/{rounds})")
            imports.append(import_all_s(modules, env))
            warm.append(compare_run(tmp / "inductor-cache", tmp / "out"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    imports = [v for v in imports if v is not None]
    warm = [w for w in warm if w is not None]
    imp = statistics.median(imports) if imports else None
    warm_s = statistics.median(w["wall_s"] for w in warm) if warm else None
    paths = [w["critical_path_s"] for w in warm if w.get("critical_path_s")]
    critical = statistics.median(paths) if paths else None
    return {"implementations": names, "modules": modules, "import_s": imports, "compare_warm_s": [w["wall_s"] for w in warm],
            "import_median_s": imp, "compare_cold_s": None if cold is None else cold["wall_s"],
            "compare_warm_median_s": warm_s,
            "ratio_cold": None if not (imp and cold) else cold["wall_s"] / imp,
            "ratio_warm": None if not (imp and warm_s) else warm_s / imp, "target_ratio": TARGET_COMPARE_RATIO,
            "critical_path_s": paths, "critical_path_median_s": critical,
            "ratio_warm_critical": None if not (critical and warm_s) else warm_s / critical,
            "workers_peak_rss_mb": max((w.get("peak_rss_mb") or 0 for w in warm), default=None),
            "parent_peak_rss_mb": max((w.get("parent_peak_rss_mb") or 0 for w in warm), default=None),
            "workers": warm[0].get("workers") if warm else None, "jobs": warm[0].get("jobs") if warm else None}


def run(quick: bool, out: Path, progress=None) -> dict:
    from xor_rosetta.app.workers.pool import Workers
    from xor_rosetta.app.workers.remote import remote_class
    say = progress or (lambda label: None)
    names = [n for n in registry.REGISTRY if registry.unavailable_reason(registry.REGISTRY[n]) is None]
    skipped = {n: registry.unavailable_reason(registry.REGISTRY[n]) for n in registry.REGISTRY if n not in names}
    probes = {}
    for n in names:
        say(f"probing {n} in a fresh process")
        probes[n] = run_probe(n, "seed-numpy", full=not quick)
    spec, (x, y) = get_preset("seed-numpy"), xor_data()
    n1, n2, rounds = (100, 500, 3) if quick else (1000, 5000, 5)
    with Workers() as ws:  # one worker per group hosts its variants; one call runs at a time
        classes = {n: remote_class(n, ws) for n in names}
        say("steady state on seed-numpy")
        marg = steady(classes, spec, x, y, n1, n2, rounds)
        say("peak matmul rate")
        peak = peak_matmul_gflops()
        say("scaling sweep")
        rows = sweep(classes, quick)
        threads = {}
        if "torch" in names:
            threads = ws.get(registry.REGISTRY["torch"].process_key).call(thread_counts)
    for r in rows:
        r["gflops"] = None if r["us_per_step"] is None else r["flops"] / r["us_per_step"] / 1e3
        r["fraction_of_peak"] = None if r["gflops"] is None else r["gflops"] / peak
    vs = None if quick else compare_vs_imports(names, rounds=3, say=say)
    say("vectorised sweep")
    from xor_rosetta.app.bench.batched import vectorised
    vect = vectorised(quick=quick)
    base = statistics.median(marg["numpy"]) if "numpy" in marg else None
    variants = {}
    for n in names:
        med = statistics.median(marg[n])
        lo, hi = ANCHORS_US[n]
        noise = min(marg[n]) <= 0  # a round where the longer block was not slower: the blocks are too short to tell

        variants[n] = {**probes[n], "us_per_step_median": med, "us_per_step_min": min(marg[n]),
                       "us_per_step_max": max(marg[n]), "rounds": marg[n], "ratio_to_numpy": med / base if base else None,
                       "anchor_us": [lo, hi], "within_2x_anchor": None if noise else med <= 2 * hi,
                       "target_us": TARGETS_US.get(n), "lost_in_noise": noise,
                       "meets_target": None if n not in TARGETS_US or noise else med <= TARGETS_US[n]}
    report = {"quick": quick, "environment": environment(threads), "steady_state": {"preset": "seed-numpy", "n1": n1,
              "n2": n2, "rounds": rounds}, "peak_matmul_gflops": peak, "variants": variants, "skipped": skipped,
              "sweep": rows, "compare_vs_imports": vs, "vectorised_sweep": vect}
    write(out, report)
    return report


def write(out: Path, report: dict) -> None:
    from xor_rosetta.app.common.files import FileSet
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
        noise = v.get("lost_in_noise")  # the blocks were too short to measure this variant's step
        target = "—" if v["target_us"] is None else f"≤ {v['target_us']}: " + (
            "lost in noise" if noise else "met" if v["meets_target"] else "MISSED")
        within = "lost in noise" if noise else "yes" if v["within_2x_anchor"] else "NO"
        lines.append(f"| {n} | {v['import_s']:.2f} | {v['first_call_s']:.2f} | {v['us_per_step_median']:.1f} "
                     f"[{v['us_per_step_min']:.1f}–{v['us_per_step_max']:.1f}] | {v['ratio_to_numpy']:.2f} | "
                     f"{v['anchor_us'][0]}–{v['anchor_us'][1]} | {within} | {target} | "
                     f"{v['steps_to_converge']:,}, {v['converge_s']:.2f} | {_opt(v['full_run_s'])} | {v['peak_rss_mb']:.0f} |")
    for n, why in r["skipped"].items():
        lines.append(f"| {n} | unavailable: {why} |")
    lines += compare_markdown(r.get("compare_vs_imports"))
    if r.get("vectorised_sweep"):
        from xor_rosetta.app.bench.batched import markdown as vectorised_markdown
        lines += ["", "## Convergence studies: the vectorised sweep", "", *vectorised_markdown(r["vectorised_sweep"])]
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


def compare_markdown(c: dict | None) -> list[str]:
    """The compare-versus-imports section of benchmarks.md."""
    if not c:
        return []
    met = None if c["ratio_warm"] is None else c["ratio_warm"] <= c["target_ratio"]
    verdict = "—" if met is None else "met" if met else "MISSED"
    return ["", "## compare against the bare import of the frameworks", "",
            f"`xor-rosetta compare --preset seed-numpy` with every variant ({', '.join(c['implementations'])}), each "
            f"in a fresh process, against a fresh `python -c \"import {', '.join(c['modules'])}\"`, measured side by "
            f"side in this run: first a cold compare (an empty torch.compile cache, as in a fresh clone), then "
            f"{len(c['compare_warm_s'])} rounds of (import, warm compare); medians [each run].", "",
            "| | wall s | × bare import |", "|---|---:|---:|",
            f"| bare import of all frameworks | {_secs(c['import_median_s'], c['import_s'])} | 1.00 |",
            f"| compare, cold (empty torch.compile cache) | {_secs(c['compare_cold_s'])} | {_opt(c['ratio_cold'])} |",
            f"| compare, warm | {_secs(c['compare_warm_median_s'], c['compare_warm_s'])} | {_opt(c['ratio_warm'])} |",
            "", "Its critical path, the slowest worker's own work in each warm compare (its framework's import and its "
            "training; no scheduling on two cores can beat it), and compare's wall time as a ratio to it: "
            f"{_secs(c.get('critical_path_median_s'), c.get('critical_path_s'))} s, "
            f"{_opt(c.get('ratio_warm_critical'))}×.",
            "", f"Target: warm compare ≤ {c['target_ratio']:g}× the bare import: **{verdict}**. Workers: "
            f"{c['workers']} processes, {c['jobs']} at a time; peak memory summed over the workers: "
            f"{_mb(c['workers_peak_rss_mb'])}; the compare process itself: {_mb(c['parent_peak_rss_mb'])}."]


def _secs(median, each=None) -> str:
    if median is None:
        return "failed"
    return f"{median:.1f}" + (f" [{', '.join(f'{v:.1f}' for v in each)}]" if each else "")


def _mb(v) -> str:
    return "—" if not v else f"{v:.0f} MB"


def _opt(v) -> str:
    return "—" if v is None else f"{v:.2f}"


def _cell(row) -> str:
    if row is None:
        return "—"
    if row.get("error"):
        return "error"
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
    from xor_rosetta.app.run.report import _png
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
