"""The report of a sweep: convergence rates with 95% Wilson intervals, verdict agreement across implementations
seed by seed (disagreements are findings, each with its replay command), the native-defaults comparison, a
histogram of steps to converge and the basin picture. Writes report.md, report.json and PNGs."""
from __future__ import annotations

import math
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

from xor_rosetta import registry
from xor_rosetta.interface import Conventions
from xor_rosetta.spec import Spec
from xor_rosetta.tolerance import AGREES, DISAGREES, ILL, NOISE
from xor_rosetta.app.common.config import dump_toml
from xor_rosetta.app.common.files import FileSet, atomic_write_text
from xor_rosetta.app.sweep.plan import BATCHED, CANONICAL, NATIVE, NATIVE_EPS, NATIVE_INIT, VARIANTS, batched_group

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile
PLOTS = {"steps": "steps_histogram.png", "basin": "basin.png"}
FAMILY = ("report.json", "report.md", "basin.npz", *PLOTS.values())  # the files of one report (write)
AGREEMENT = {AGREES: "agrees", NOISE: "rounding noise", ILL: "ill-conditioned", DISAGREES: "DISAGREES"}


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for k successes in n trials (95% by default)."""
    if n == 0:
        return (math.nan, math.nan)
    p, z2 = k / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return (max(0.0, centre - half), min(1.0, centre + half))


def unavailable(error: str) -> bool:
    """A record of a run left undone because its framework was not installed (written by earlier versions; a sweep
    now leaves such an implementation out before it starts, and one that fails to load in its worker fails)."""
    return error.startswith("unavailable: ") or (error.startswith("implementation ") and " is unavailable: " in error)


def _rate(records: list[dict]) -> dict:
    judged = [r for r in records if r["error"] is None and not r.get("skipped")]
    k, n = sum(r["converged"] for r in judged), len(judged)
    lo, hi = wilson(k, n)
    steps = [r["steps_to_threshold"] for r in judged if r["converged"] and r["steps_to_threshold"] is not None]
    agreement = defaultdict(int)
    for r in judged:
        agreement["not judged" if r["status"] is None else AGREEMENT[r["status"]]] += 1
    secs = [r["seconds"] for r in judged if r.get("seconds") is not None]
    correct = sum(r["accuracy"] == 1.0 for r in judged)  # 4/4 right, whatever the loss
    return {"runs": n, "converged": k, "rate": k / n if n else None, "wilson95": [lo, hi] if n else None,
            "all_correct": correct, "all_correct_wilson95": list(wilson(correct, n)) if n else None,
            "diverged": sum(r["diverged_at"] is not None for r in judged),
            "errors": sum(r["error"] is not None and not unavailable(r["error"]) for r in records),
            "unavailable": sum(r["error"] is not None and unavailable(r["error"]) for r in records),
            "median_steps": float(np.median(steps)) if steps else None, "agreement": dict(agreement),
            "seconds_per_run": float(np.mean(secs)) if secs else None}


def group_of(impl: str) -> str:
    return batched_group(impl)[0] if impl in BATCHED else registry.get_entry(impl).process_key


def summarise(header: dict, records: list[dict], out: Path) -> dict:
    """Everything report.json holds, from the sweep's header and its run records."""
    spec = Spec.from_dict(header["spec"])
    impls, variants = header["impls"], header["variants"]
    by = defaultdict(list)
    for r in records:
        by[(r["variant"], r["impl"])].append(r)
    rates = [{"variant": v, "impl": n, **_rate(by[(v, n)])} for v in variants for n in impls
             if by[(v, n)] and not all(r.get("skipped") for r in by[(v, n)])]
    findings = _findings(header, records, out, spec)
    report = {"sweep": header, "rates": rates, "findings": findings, "seeds_compared": _compared(records)}
    if len(variants) > 1:
        report["native_defaults"] = _native(rates, variants)
    return report


def _compared(records) -> dict:
    """Per variant: how many seeds had at least two implementations with a verdict from the same weights (a seed
    counts once, also where the frameworks' own initializers gave it several sets of weights)."""
    out = defaultdict(set)
    for (variant, seed, _), rs in _same_weights(records).items():
        if len(rs) >= 2:
            out[variant].add(seed)
    return {v: len(seeds) for v, seeds in out.items()}


def _same_weights(records) -> dict:
    """Runs grouped by (variant, seed, init): implementations trained from the same initial weights and epsilon."""
    groups = defaultdict(list)
    for r in records:
        if r["error"] is None and not r.get("skipped"):
            groups[(r["variant"], r["seed"], r.get("init"), r.get("epsilon"))].append(r)
    return {(v, s, (i, e)): rs for (v, s, i, e), rs in groups.items()}


def _findings(header: dict, records: list[dict], out: Path, spec: Spec) -> list[dict]:
    """Seeds where implementations from the same weights reached different verdicts; runs that DISAGREE with the
    reference; runs that failed. Each with the command that replays it."""
    found = []
    forms = {r["impl"]: r["conventions"] for r in records if r.get("conventions")}  # each implementation's forms
    for (variant, seed, _), rs in sorted(_same_weights(records).items(), key=lambda x: (x[0][0], x[0][1])):
        if len({r["converged"] for r in rs}) > 1:
            found.append({"kind": "verdicts differ", "variant": variant, "seed": seed,
                          "converged": {r["impl"]: r["converged"] for r in rs},
                          "final_loss": {r["impl"]: r["final_loss"] for r in rs}, "why": _why_differ(rs, forms, spec),
                          "replay": replay(header, spec, out, variant, seed, [r["impl"] for r in rs], rs[0])})
    for r in records:
        if r.get("status") == DISAGREES:
            found.append({"kind": "DISAGREES with the reference", "variant": r["variant"], "seed": r["seed"],
                          "impl": r["impl"], "explanation": r["explanation"],
                          "replay": replay(header, spec, out, r["variant"], r["seed"], [r["impl"]], r)})
        elif r["error"] is not None and not unavailable(r["error"]):
            found.append({"kind": "error", "variant": r["variant"], "seed": r["seed"], "impl": r["impl"],
                          "error": r["error"],
                          "replay": replay(header, spec, out, r["variant"], r["seed"], [r["impl"]], r)})
    return found


def _why_differ(rs: list[dict], forms: dict[str, dict], spec: Spec) -> str | None:
    """What the records say of different verdicts from the same weights. Where every run agrees with the reference
    in its own conventions: which of the forms this spec uses splits the implementations as the verdicts do (or
    none; or the same forms everywhere: rounding alone). None where a run DISAGREES (a finding of its own) or an
    implementation's forms were not recorded."""
    if any(r.get("status") == DISAGREES for r in rs) or any(r["impl"] not in forms for r in rs):
        return None
    used = {r["impl"]: Conventions(**forms[r["impl"]]).used_by(spec).to_dict() for r in rs}
    if len({tuple(u.values()) for u in used.values()}) == 1:
        return ("every run agrees with the reference, in the same forms: rounding alone puts them on either side "
                "of the threshold")
    split = []
    for what in ("adam", "momentum", "bce"):
        side = {v: defaultdict(list) for v in (True, False)}  # converged? -> form -> implementations
        for r in rs:
            side[bool(r["converged"])][used[r["impl"]][what]].append(r["impl"])
        if not set(side[True]) & set(side[False]):
            split.append(f"the {what} form (" + "; ".join(_forms(side[v]) + (" converged" if v else " did not")
                                                         for v in (False, True)) + ")")
    if not split:
        return "every run agrees with the reference in its own forms, and no one form splits them as the verdicts do"
    return ("every run agrees with the reference in its own forms, and " + " and ".join(split) +
            (" splits" if len(split) == 1 else " split") + " them as the verdicts do")


def _forms(by: dict[str, list[str]]) -> str:
    return ", ".join(form + " (" + ", ".join(names) + ")" for form, names in by.items())


def replay(header: dict, spec: Spec, out: Path, variant: str, seed: int, impls: list[str], rec: dict) -> str:
    """Writes out/replay/<variant>-seed-<seed>.toml and returns the compare command that reruns these runs."""
    from dataclasses import replace as dc_replace
    run = spec.replace(init=dc_replace(spec.init, seed=seed))
    if rec.get("epsilon") is not None:
        run = run.replace(optimizer=dc_replace(spec.optimizer, epsilon=rec["epsilon"]))
    folder = out / "replay"
    folder.mkdir(parents=True, exist_ok=True)
    eps = "" if rec.get("epsilon") is None else f"-eps-{rec['epsilon']:g}"
    path = folder / f"{variant}-seed-{seed}{eps}.toml"
    atomic_write_text(path, f"# replays seed {seed} of sweep {header['name']!r}, variant {variant}\n" + dump_toml(run))
    cmd = f"xor-rosetta compare --config {path}"
    if VARIANTS[variant][0]:  # the framework's own init, saved by the sweep
        cmd += f" --init {out / 'inits' / group_of(impls[0]) / f'seed-{seed}.npz'}"
    names = [BATCHED[n][1] if n in BATCHED else n for n in impls]  # a batched path replays as its framework's
    return cmd + f" --impls {','.join(dict.fromkeys(names))}"


def _native(rates: list[dict], variants) -> list[dict]:
    """Per implementation: each variant's rate and its change from the canonical rate (one switch at a time)."""
    by = {(r["variant"], r["impl"]): r for r in rates}
    rows = []
    for (variant, impl), r in by.items():
        if variant != CANONICAL:
            continue
        row = {"impl": impl, CANONICAL: {"rate": r["rate"], "wilson95": r["wilson95"]}}
        for v in variants:
            if v != CANONICAL and (v, impl) in by:
                o = by[(v, impl)]
                row[v] = {"rate": o["rate"], "wilson95": o["wilson95"],
                          "change": None if o["rate"] is None or r["rate"] is None else o["rate"] - r["rate"]}
        if len(row) > 2:
            rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------------- markdown

def _pct(x) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def _ci(ci) -> str:
    return "–" if ci is None else f"[{_pct(ci[0])}, {_pct(ci[1])}]"


def _g(x, spec=".3g") -> str:
    return "–" if x is None else format(x, spec)


def markdown(report: dict, plots: list[str]) -> str:
    h = report["sweep"]
    spec = h["spec"]
    seeds = h["seeds"]
    lines = [f"# Sweep: {h['name']}", "",
             f"{spec['layers']} {spec['activations']}, {spec['loss']}, {spec['optimizer']['name']} "
             f"(lr {spec['optimizer']['lr']:g}), {spec['steps']:,} steps, {spec['dtype']}; "
             f"init {spec['init']['scheme']} "
             f"with seeds {seeds[0]}..{seeds[1] - 1} ({seeds[1] - seeds[0]:,} "
             f"set{'s' if seeds[1] - seeds[0] != 1 else ''} of initial weights). "
             f"Converged: final loss < {h['threshold']:g} and 4/4 correct (the \"4/4 correct\" column counts the "
             "runs with 4/4 right, whatever their loss).", "",
             f"Command: `{h['command']}`" + (f"; wall time {report['wall_seconds']:.0f} s" if "wall_seconds" in report
                                              else ""), "",
             "## Convergence rate", "",
             "| variant | implementation | runs | converged | rate | 95% Wilson interval | 4/4 correct | diverged | "
             "median steps to threshold | agreement with the reference | s/run |",
             "|---|---|---:|---:|---:|---|---|---:|---:|---|---:|"]
    for r in report["rates"]:
        agree = ", ".join([f"{k} {v}" for k, v in sorted(r["agreement"].items())] +
                          ([f"errors {r['errors']}"] if r["errors"] else []) +
                          ([f"unavailable {r['unavailable']}"] if r["unavailable"] else []))
        lines.append(f"| {r['variant']} | {r['impl']} | {r['runs']:,} | {r['converged']:,} | {_pct(r['rate'])} | "
                     f"{_ci(r['wilson95'])} | {r['all_correct']:,} {_ci(r['all_correct_wilson95'])} | "
                     f"{r['diverged']:,} | "
                     f"{_g(r['median_steps'], '.0f')} | {agree} | "
                     f"{_g(r['seconds_per_run'], '.3g')} |")
    lines += ["", "Agreement: each run judged against the NumPy reference in its own conventions by the tolerance "
              "policy (xor_rosetta.tolerance); \"not judged\" rows are batched paths, checked against one-at-a-time "
              "runs by tests/test_vectorised.py and seed by seed below."]
    if h.get("unavailable"):
        left = "; ".join(f"{n} ({why})" for n, why in h["unavailable"].items())
        lines += ["", f"Left out, not available here: {left}"]
    if report.get("native_defaults"):  # no table where no implementation ran both canonical and another variant
        vs = [v for v in (NATIVE_INIT, NATIVE_EPS, NATIVE) if v in h["variants"]]
        lines += ["", "## Each framework's own defaults", "",
                  "Rates with the framework's own initializer and Adam epsilon, switched one at a time "
                  "(native-init: its init, the spec's epsilon; native-eps: the spec's init, its epsilon; "
                  "native: both); "
                  "change in percentage points from canonical.", "",
                  "| implementation | canonical | " + " | ".join(vs) + " |",
                  "|---|---|" + "---|" * len(vs)]
        for row in report["native_defaults"]:
            cells = [f"{_pct(row[CANONICAL]['rate'])} {_ci(row[CANONICAL]['wilson95'])}"]
            for v in vs:
                c = row.get(v)
                change = "" if c is None or c["change"] is None else f", {100 * c['change']:+.1f} pp"
                cells.append("–" if c is None else f"{_pct(c['rate'])} {_ci(c['wilson95'])}{change}")
            lines.append(f"| {row['impl']} | " + " | ".join(cells) + " |")
    lines += ["", "## Verdicts across implementations", ""]
    compared = report["seeds_compared"]
    differ = [f for f in report["findings"] if f["kind"] == "verdicts differ"]
    if compared:
        lines.append("Seeds where at least two implementations trained from the same weights: " +
                     ", ".join(f"{v} {n:,}" for v, n in compared.items()) +
                     f". Seeds where their verdicts (converged or not) differ: "
                     f"**{len({(f['variant'], f['seed']) for f in differ}):,}**.")
    else:
        lines.append("Only one implementation per set of weights: nothing to compare.")
    others = [f for f in report["findings"] if f["kind"] != "verdicts differ"]
    if report["findings"]:
        lines += ["", "## Findings", ""]
        for f in differ[:50]:
            conv = ", ".join(f"{n} {'converged' if c else 'not'} ({_g(f['final_loss'][n])})"
                             for n, c in f["converged"].items())
            why = f" {f['why'][0].upper()}{f['why'][1:]}." if f.get("why") else ""
            lines.append(f"- seed {f['seed']} ({f['variant']}): {conv}.{why} Replay: `{f['replay']}`")
        for f in others[:50]:
            why = f.get("explanation") or f.get("error")
            lines.append(f"- seed {f['seed']} ({f['variant']}), {f['impl']}: {f['kind']}: {why}. "
                         f"Replay: `{f['replay']}`")
        if len(differ) > 50 or len(others) > 50:
            lines.append(f"- ... all {len(report['findings'])} in report.json")
    if "basin" in report:
        b = report["basin"]
        lines += ["", "## Basin", "",
                  f"{b['weights'][0]} and {b['weights'][1]} varied over [{b['range'][0]:g}, {b['range'][1]:g}] on a "
                  f"{b['grid']} x {b['grid']} grid, the other weights those of seed {b['seed']} "
                  f"(marked), trained by the batched NumPy path in numpy's conventions: "
                  f"{_pct(b['converged_share'])} of cells converge, {_pct(b['diverged_share'])} diverge."]
    if plots:
        lines += [""] + [f"![{p}]({p})" for p in plots]
    if report.get("plots_skipped"):
        lines += ["", f"Plots skipped: {report['plots_skipped']}"]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------------- plots

def write(out: Path, report: dict, records: list[dict], basin: dict | None, extra: dict | None = None) -> list[str]:
    """report.json, report.md, the plots and `extra` ({name: bytes}: the basin cache) as one set
    (`files.FileSet`): all replaced together, and a file of the family that this report does not produce (a
    basin.png after --basin-grid 0) removed in the same step."""
    plots = {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            plots = write_plots(out, report, records, basin)
    except ImportError:
        report["plots_skipped"] = "matplotlib is not installed: pip install -c constraints.txt -e '.[plots]'"
    report["plots"] = list(plots)
    with FileSet(out, family=FAMILY) as files:
        files.write("report.json", report)
        files.write("report.md", markdown(report, list(plots)))
        for name, data in {**plots, **(extra or {})}.items():
            files.write(name, data)
    return list(plots)


def write_plots(out: Path, report: dict, records: list[dict], basin: dict | None) -> dict[str, bytes]:
    """The report's PNGs, {file name: bytes}, not yet written."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from xor_rosetta.app.run.report import _png
    h = report["sweep"]
    variants = [v for v in h["variants"] if any(r["variant"] == v and r["converged"] and r["steps_to_threshold"]
                                                for r in records)]
    plots = {}
    if variants:
        fig, axes = plt.subplots(1, len(variants), figsize=(5.5 * len(variants), 3.8), squeeze=False)
        n_impls = len(h["impls"])
        for ax, v in zip(axes[0], variants):
            steps = {n: [r["steps_to_threshold"] for r in records  # None: under the threshold only after the
                         if r["variant"] == v and r["impl"] == n and r["converged"]  # last update (as in the
                         and r["steps_to_threshold"] is not None] for n in h["impls"]}  # median steps)
            seen = [s for ss in steps.values() for s in ss]
            bins = np.geomspace(max(1, min(seen) / 1.1), max(seen) * 1.1, 50)
            for i, n in enumerate(h["impls"]):
                if steps[n]:  # the first drawn widest, so that identical histograms stay visible
                    ax.hist(steps[n], bins=bins, histtype="step", label=f"{n} ({len(steps[n]):,})",
                            linewidth=1 + 3 * (n_impls - 1 - i) / max(1, n_impls - 1))
            ax.set(title=v, xlabel=f"steps to loss < {h['threshold']:g}", ylabel="runs", xscale="log")
            ax.legend(fontsize=8)
        fig.suptitle(f"{h['name']}: steps to converge (converged runs)")
        plots[PLOTS["steps"]] = _png(fig)
    if basin is not None:
        fig, ax = plt.subplots(figsize=(6.2, 5.2))
        vals, steps = basin["values"], basin["steps"].astype(float)
        shown = np.where(basin["converged"], steps, np.nan)
        ext = [vals[0], vals[-1], vals[0], vals[-1]]
        ax.imshow(np.where(basin["diverged"], 1.0, 0.0), origin="lower", extent=ext, cmap="Greys", vmin=0, vmax=1.6,
                  interpolation="nearest")  # white: not converged; grey: diverged
        im = ax.imshow(shown, origin="lower", extent=ext, cmap="viridis", interpolation="nearest")
        fig.colorbar(im, ax=ax, label=f"steps to loss < {h['threshold']:g} (converged cells)")
        ax.plot(*basin["base"], marker="x", color="red", markersize=9, mew=2)
        ax.set(xlabel=basin["weights"][0], ylabel=basin["weights"][1],
               title=f"{h['name']}: basin (white: not converged, grey: diverged)")
        plots[PLOTS["basin"]] = _png(fig)
    return plots
