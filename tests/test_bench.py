"""The benchmark's pieces (the full `xor-rosetta bench` is not run here: speed is measured there, not in tests)."""
from __future__ import annotations

import math


from xor_rosetta.implementations.numpy_mlp import NumpyMLP
from xor_rosetta.app.bench import speed as bench
from xor_rosetta.data import xor_data
from xor_rosetta.presets import get_preset
from xor_rosetta.spec import Spec


def test_flops_per_step_counts_the_matmuls():
    assert bench.flops_per_step(get_preset("seed-numpy"), 4) == 6 * 4 * (2 * 5 + 5 * 1)
    assert bench.flops_per_step(Spec(layers=(2, 3, 4, 1), activations=("tanh",) * 3), 10) == 6 * 10 * (6 + 12 + 4)


def test_steady_state_gives_one_value_per_round():
    out = bench.steady({"numpy": NumpyMLP}, get_preset("seed-numpy"), *xor_data(), n1=20, n2=200, rounds=3)
    assert list(out) == ["numpy"] and len(out["numpy"]) == 3 and all(math.isfinite(v) for v in out["numpy"])


def test_report_renders_every_case(tmp_path):
    variant = {"import_s": 1.0, "first_call_s": 0.5, "steps_to_converge": 422, "converge_s": 0.1, "full_run_s": None,
               "peak_rss_mb": 300.0, "us_per_step_median": 80.0, "us_per_step_min": 70.0, "us_per_step_max": 90.0,
               "rounds": [70.0, 80.0, 90.0], "ratio_to_numpy": 3.0, "anchor_us": [52, 60], "within_2x_anchor": True,
               "target_us": 80, "meets_target": True}
    report = {"quick": True, "environment": bench.environment(), "steady_state": {"n1": 1, "n2": 2, "rounds": 3},
              "peak_matmul_gflops": 200.0, "variants": {"torch-compiled": variant, "keras": {"error": "boom"}},
              "skipped": {"jax": "not installed"}, "compare_vs_imports": {
                  "implementations": ["numpy", "torch"], "modules": ["numpy", "torch"], "import_s": [2.0, 2.2, 2.4],
                  "compare_warm_s": [4.0, 4.2, 5.0], "import_median_s": 2.2, "compare_cold_s": 20.0,
                  "compare_warm_median_s": 4.2, "ratio_cold": 20.0 / 2.2, "ratio_warm": 4.2 / 2.2, "target_ratio": 2.0,
                  "workers_peak_rss_mb": 900.0, "parent_peak_rss_mb": 150.0, "workers": 2, "jobs": 2},
              "sweep": [{"variant": "torch-compiled", "width": 5, "batch": 4, "flops": 360.0, "us_per_step": None,
                         "gflops": None, "fraction_of_peak": None},
                        {"variant": "torch-compiled", "width": 64, "batch": 4, "flops": 4608.0, "us_per_step": 90.0,
                         "gflops": 0.05, "fraction_of_peak": 0.00025}]}
    bench.write(tmp_path, report)
    md = (tmp_path / "benchmarks.md").read_text()
    assert "| torch-compiled | 1.00 | 0.50 | 80.0 [70.0–90.0] | 3.00 | 52–60 | yes | ≤ 80: met | 422, 0.10 | — | 300 |" in md
    assert "| keras | probe failed: boom |" in md and "| jax | unavailable: not installed |" in md
    assert "| 5 | 4 | 3.6e+02 | noise |" in md
    assert "| bare import of all frameworks | 2.2 [2.0, 2.2, 2.4] | 1.00 |" in md
    assert "| compare, cold (empty torch.compile cache) | 20.0 | 9.09 |" in md
    assert "| compare, warm | 4.2 [4.0, 4.2, 5.0] | 1.91 |" in md
    assert "≤ 2× the bare import: **met**" in md and "summed over the workers: 900 MB" in md
    assert (tmp_path / "benchmarks.json").stat().st_size > 0



def test_compare_reports_its_critical_path():
    """The slowest worker's own work (its framework's import and its tasks) bounds compare's wall time from below:
    at least each training run it did, at most the wall time of the whole run."""
    import time

    from xor_rosetta.app.run.runner import checkpoints_for, run_all
    from xor_rosetta.params import init_params
    from xor_rosetta.presets import get_preset
    spec = get_preset("seed-numpy").replace(steps=300)
    start = time.perf_counter()
    results, cost = run_all(["numpy"], spec, init_params(spec), 1.0, checkpoints_for(spec.steps), jobs=1)
    wall = time.perf_counter() - start
    assert results[0].history.wall_time <= cost["critical_path_s"] <= wall
