"""Reports of a comparison: a table, report.json, report.md and three plots."""
from __future__ import annotations

import io
import platform
import warnings
from pathlib import Path

import numpy as np

from xor_rosetta import registry
from xor_rosetta.app.common.files import atomic_write_bytes, write_set
from xor_rosetta.app.run import forms
from xor_rosetta.app.run.runner import RunResult
from xor_rosetta.spec import Spec
from xor_rosetta.tolerance import NOISE_FACTOR, modelled_label, tolerance

PLOTS = {"loss": "loss.png", "param_diff": "param_diff.png", "boundary": "boundary.png"}
REPORT_FILES = ("report.json", "report.md", *PLOTS.values())  # one set: replaced together
FLOOR = 1e-18  # exact agreement (0) is drawn here on log axes
CEILING = 1e100  # and a blow-up here (matplotlib's log axis overflows near 1e300)
MAX_POINTS = 4_000  # points per loss curve: log-spaced steps, so a long run costs the plot nothing more


def verdict(r: RunResult, threshold: float) -> str:
    """unavailable | unsupported: why | error | diverged at step k | DISAGREES | <agreement>, converged |
    <agreement>, NOT converged, where <agreement> is the tolerance policy's word: agrees, agrees within rounding
    noise, or ill-conditioned; the forms detected (or a declared form the detection contradicts) follow in
    brackets: "agrees (Adam in Keras' form, detected), converged"."""
    if r.error:
        if r.error.startswith("unsupported: "):
            return r.error
        return "unavailable" if "unavailable" in r.error else "error"
    said = forms.note(r.run.forms if r.run is not None else None)  # the forms detected, or contradicted
    if r.diverged_at is not None:
        return f"diverged at step {r.diverged_at + 1}{said}"
    if not r.agrees:
        return f"DISAGREES{said}"
    model = f" ({modelled_label(r.modelled)})" if r.modelled else ""
    return f"{r.judgement.verdict}{model}{said}, {'converged' if r.converged(threshold) else 'NOT converged'}"


def counted(verdict: str) -> bool:
    """Whether a row's verdict counts for the exit status: not where the implementation is unavailable here, or
    declares (by `supports`, or by raising Unsupported) that it does not run the spec."""
    return verdict != "unavailable" and not verdict.startswith("unsupported: ")


def machine() -> dict:
    return {"python": platform.python_version(), "platform": platform.platform(), "processor": platform.machine()}


def summary(name: str, spec: Spec, results: list[RunResult], threshold: float, wall: float) -> dict:
    rows = []
    for r in results:
        entry = registry.REGISTRY.get(r.name)
        rows.append({
            "implementation": r.name, "verdict": verdict(r, threshold), "error": r.error,
            "final_loss": _num(r.final_loss), "accuracy": _num(r.accuracy), "steps_to_threshold": r.steps_to_threshold,
            "max_param_diff": _num(r.param_diff), "max_grad_diff": _num(r.grad_diff),
            "diverged_at_step": None if r.diverged_at is None else r.diverged_at + 1,
            "raised": r.run.error if r.error is None and r.run is not None else None,  # on non-finite values
            "first_disagreement": r.first_disagreement,
            "modelled_difference": r.modelled,  # the declared known difference it was judged under, if any
            "agreement": None if r.judgement is None else {
                "status": r.judgement.verdict, "rounding_floor_measured": r.judgement.floor_measured,
                "findings": [vars(f) for f in r.judgement.findings]},
            "train_seconds": None if r.history is None else round(r.history.wall_time, 4),
            "versions": registry.versions(entry) if entry else {},
            "conventions": r.run.forms if r.run is not None else None,  # op -> form, declared or detected
        })
    ok = all(not counted(row["verdict"]) or r.converged(threshold) for r, row in zip(results, rows))
    return {"name": name, "spec": spec.to_dict(), "threshold": threshold, "tolerance": vars(tolerance(spec.dtype)),
            "machine": machine(), "wall_seconds": round(wall, 3), "ok": ok, "implementations": rows}


def _num(v):
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else float(v)


def _fmt(v, spec=".3g"):
    return "—" if v is None else format(v, spec)


def table(report: dict) -> str:
    t = report["threshold"]
    head = ["implementation", "final loss", "accuracy", f"steps to loss < {t:g}", "max Δparams vs numpy",
            "max Δgrad vs numpy (rel.)", "verdict", "train s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in report["implementations"]:
        acc = "—" if r["accuracy"] is None else f"{round(r['accuracy'] * 4)}/4"
        cells = [r["implementation"], _fmt(r["final_loss"]), acc, _fmt(r["steps_to_threshold"], ","),
                 _fmt(r["max_param_diff"], ".2g"), _fmt(r["max_grad_diff"], ".2g"), r["verdict"],
                 _fmt(r["train_seconds"], ".2f")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def notes(report: dict) -> list[str]:
    out = []
    for r in report["implementations"]:
        if r["error"]:
            out.append(f"- {r['implementation']}: {r['error']}")
        elif r["first_disagreement"] and r["verdict"].startswith("DISAGREES"):
            out.append(f"- {r['implementation']} disagrees with the NumPy reference: {r['first_disagreement']}")
        elif r["first_disagreement"]:
            out.append(f"- {r['implementation']}: {r['first_disagreement']}")
        elif r["diverged_at_step"]:
            raised = f"; it raised {r['raised'].removeprefix('failed: ')}" if r.get("raised") else ""
            out.append(f"- {r['implementation']} diverged at step {r['diverged_at_step']} (loss became NaN or "
                       f"infinite{raised})")
    return out


def markdown(report: dict, plots: list[str]) -> str:
    s, tol = report["spec"], report["tolerance"]
    lines = [f"# xor-rosetta compare: {report['name']}", "",
             f"Layers {s['layers']}, activations {s['activations']}, loss {s['loss']}, optimizer "
             f"{s['optimizer']['name']} (lr {s['optimizer']['lr']:g}), {s['steps']:,} steps, dtype {s['dtype']}, "
             f"init {s['init']['scheme']} (seed {s['init']['seed']}).", "",
             table(report), "",
             f"Each implementation is compared with the NumPy reference in its own conventions, from the same initial "
             f"weights. Tolerances ({s['dtype']}, relative to the largest magnitude involved): params {tol['params']:g}, "
             f"gradients {tol['gradient']:g}, each step's loss {tol['loss']:g} of the largest loss so far; beyond that, "
             f"a difference within {NOISE_FACTOR:g}x the run's rounding floor is rounding noise. Converged: loss < "
             f"{report['threshold']:g} and 4/4 correct.", ""]
    lines += notes(report) + ([""] if notes(report) else [])
    used = [(r["implementation"], forms.words(r.get("conventions"))) for r in report["implementations"]]
    if any(w for _, w in used):
        lines += ["Forms judged in (Adam, momentum, BCE: those the spec uses), declared by the class or detected by "
                  "the checks of `verify`:", ""] + [f"- {n}: {w}" for n, w in used if w] + [""]
    lines += [f"![{name}]({file})" for name, file in PLOTS.items() if file in plots]
    if report.get("plots_skipped"):
        lines.append(f"No plots: {report['plots_skipped']}.")
    m = report["machine"]
    lines += ["", f"Python {m['python']} on {m['platform']}; versions: " + ", ".join(
        sorted({f"{k} {v}" for r in report["implementations"] for k, v in r["versions"].items()})) + "."]
    return "\n".join(lines) + "\n"


def write(out: Path, report: dict, results: list[RunResult]) -> list[str]:
    """report.json, report.md and the plots, replacing the folder's earlier report as one set (files.FileSet): an
    interrupt or a full disk leaves the earlier report whole. The report is written even when plotting fails; the
    report says why the plots are missing (matplotlib not installed, or the error)."""
    images = {}
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")  # a diverged run plots NaN and inf; the table says so already
            images = plot_images(results)
    except ImportError:
        report["plots_skipped"] = "matplotlib is not installed: pip install -c constraints.txt -e '.[plots]'"
    except Exception as e:  # a plot must never cost the report
        report["plots_skipped"] = f"plotting failed ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
    plots = list(images)
    report["plots"] = plots
    write_set(out, {"report.json": report, "report.md": markdown(report, plots), **images}, family=REPORT_FILES)
    return plots


def _finite_positive(values) -> np.ndarray:
    """Values to draw on a log axis: exact zeros at FLOOR, a blow-up at CEILING, NaN and infinities as gaps."""
    v = np.clip(np.asarray(values, dtype=np.float64), FLOOR, CEILING)
    return np.where(np.isfinite(values), v, np.nan)


def _log_steps(n: int) -> np.ndarray:
    """At most MAX_POINTS 0-based indices of n steps, log-spaced like the step axis, always the first and last."""
    if n <= MAX_POINTS:
        return np.arange(n)
    return np.unique(np.concatenate([np.geomspace(1, n, MAX_POINTS).round().astype(np.int64) - 1, [n - 1]]))


def _log_axes(ax, drew_any: bool, what: str) -> None:
    if drew_any:
        ax.set(xscale="log", yscale="log")
        ax.legend()
    else:  # nothing finite to draw: a log axis has no range to show
        ax.text(0.5, 0.5, f"no finite {what} to draw", ha="center", va="center", transform=ax.transAxes)


def plot_images(results: list[RunResult]) -> dict[str, bytes]:
    """{file name: PNG bytes} of the loss curves, the distance from the reference and the decision boundaries."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = {}
    ran = [r for r in results if r.history is not None]
    if not ran:
        return images
    fig, ax = plt.subplots(figsize=(7, 4))
    drew, clipped = False, False
    for r in ran:
        ks = _log_steps(len(r.history.loss))
        loss = r.history.loss[ks]
        y = _finite_positive(loss)
        drew |= bool(np.isfinite(y).any())
        clipped |= bool(np.any(np.abs(loss) > CEILING))
        ax.plot(ks + 1, y, label=r.name, lw=1.5, alpha=0.8)
    title = "Training loss, every implementation" + (f" (over {CEILING:g}: drawn at {CEILING:g})" if clipped else "")
    ax.set(xlabel="step", ylabel="loss (before the step's update)", title=title)
    _log_axes(ax, drew, "loss")
    images[PLOTS["loss"]] = _png(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    drew = False
    for r in ran:
        ks = sorted(r.param_diff_curve)
        y = _finite_positive([r.param_diff_curve[k] for k in ks])
        drew |= bool(np.isfinite(y).any())
        ax.plot(ks, y, marker=".", label=r.name)
    ax.set(xlabel="step", ylabel="max |Δ param| vs NumPy reference",
           title=f"Distance from the reference (exact agreement drawn at {FLOOR:g})")
    _log_axes(ax, drew, "distance")
    images[PLOTS["param_diff"]] = _png(fig)

    gridded = [r for r in ran if r.run.grid_outputs is not None]
    if not gridded:
        return images
    from xor_rosetta.data import X, Y
    from xor_rosetta.app.run.runner import GRID
    g = np.linspace(0, 1, GRID)
    fig, axes = plt.subplots(1, len(gridded), figsize=(3.2 * len(gridded), 3.2), squeeze=False)
    for ax, r in zip(axes[0], gridded):
        z = r.run.grid_outputs.reshape(GRID, GRID)
        ax.set(title=r.name, xlim=(0, 1), ylim=(0, 1), aspect="equal")
        if not np.all(np.isfinite(z)):
            ax.text(0.5, 0.5, "diverged", ha="center", va="center")
            continue
        ax.contourf(g, g, np.clip(z, -1, 2), levels=np.linspace(0, 1, 21), cmap="coolwarm", extend="both")
        ax.contour(g, g, z, levels=[0.5], colors="k", linewidths=1.5)
        ax.scatter(X[:, 0], X[:, 1], c=Y[:, 0], cmap="coolwarm", edgecolors="k", s=80, vmin=0, vmax=1, clip_on=False,
                   zorder=3)
    norm = matplotlib.colors.Normalize(0, 1)
    fig.colorbar(matplotlib.cm.ScalarMappable(norm, "coolwarm"), ax=axes[0].tolist(), shrink=0.8, label="output")
    fig.suptitle("Decision boundary (black: output = 0.5)")
    images[PLOTS["boundary"]] = _png(fig)
    return images


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    finally:
        plt.close(fig)
    return buf.getvalue()


def _save(fig, path: Path) -> None:
    """One figure as a PNG file, written atomically."""
    atomic_write_bytes(path, _png(fig))
