"""The matrix's report from its cell records: results/matrix.md, matrix.json and matrix.png (releases x
implementations: agrees with golden, drift, error, not installable), each drift's first step, size, changed form and
replay command, and the release in which each difference first appears or disappears."""
from __future__ import annotations

import io
import platform
import re
import time

from .spec import version_key

STATES = ("agrees", "drift", "error", "not installable", "not run")
COLORS = {"agrees": "#4c9a2a", "drift": "#f0a500", "error": "#c0392b", "not installable": "#555555",
          "not run": "#e6e6e6"}


def changed_forms(result: dict) -> dict | None:
    """{convention: (golden form, detected form)} where verify detects another form than the golden run recorded;
    None where verify did not run or failed."""
    found = result.get("conventions")
    if not found:
        return None
    want = result.get("golden_conventions") or {}
    return {k: (want.get(k), v) for k, v in found.items() if want.get(k) and v != want.get(k)}


def form_text(result: dict) -> str:
    ch = changed_forms(result)
    if ch is None:
        why = result.get("verify_error")
        return f"not diagnosed ({why})" if why else "not diagnosed (verify not run)"
    if not ch:
        return "no convention changed: verify detects the forms the golden run recorded (a kernel, cast or clamp?)"
    return "; ".join(f"{k}: {a} form in golden, {b + ' form' if b else 'none of the modelled forms'} now"
                     for k, (a, b) in sorted(ch.items()))


def compare_text(result: dict) -> str:
    """What compare said in the cell, preset by preset; where it agrees while the golden files drift, the golden
    run's release is the one that left the reference (or the golden files are stale), not this one."""
    parts, agree = [], True
    for preset in ("seed-numpy", "seed-keras"):
        c = (result.get("compare") or {}).get(preset) or {}
        diff = c.get("max_param_diff")
        parts.append(f"{preset} {c.get('verdict', 'not run')}" + (f" (max |Δ params| {diff:.2g})"
                                                                     if isinstance(diff, float) else ""))
        agree = agree and c.get("agreement") == "agrees"
    text = "; ".join(parts)
    if agree:
        text += ". This release agrees with the reference on both presets (float64) where the golden files differ"
    return text


def state(rec: dict | None, impl: str) -> str:
    if rec is None:
        return "not run"
    if rec["status"] == "not-installable":
        return "not installable"
    if rec["status"] != "judged":
        return "error"
    r = rec["results"].get(impl)
    return "not run" if r is None else r["golden"]


def signature(rec: dict, impl: str) -> str:
    """What a transition is about: the state, and for a drift the forms that changed (where named)."""
    s = state(rec, impl)
    if s == "error" and rec["status"] == "judged":
        why = re.sub(r"^\S+/\S+/\w+: ", "", rec["results"][impl].get("reason", ""))
        why = re.sub(r"^failed: ", "", why)
        why = re.sub(r"[Mm]odule '?([\w.]+)'? has", r"module \1 has", why)  # Python 3.11's two spellings
        return f"error ({why[:90]})" if why else s
    if s == "drift":
        ch = changed_forms(rec["results"][impl])
        if ch:
            return "drift (" + ", ".join(f"{k} {b or 'unmodelled'}" for k, (a, b) in sorted(ch.items())) + ")"
    return s


def _others(rec: dict, cell) -> str:
    inst = rec.get("installed") or {}
    pins = dict(cell.packages)
    shown = [f"{k} {inst.get(k, v)}" for k, v in pins.items() if k != cell.axis]
    shown += [f"{k} {v}" for k, v in sorted(inst.items()) if k not in pins and k in ("numpy", "jaxlib")]
    return ", ".join(shown)


def transitions(pairs, series: str) -> list[str]:
    """Per implementation of the series, in release order: where its state changes."""
    got = sorted([(c, r) for c, r in pairs if c.series == series and r is not None], key=lambda cr: version_key(
        cr[0].release))
    if not got:
        return []
    axis = got[0][0].axis
    impls = []
    for c, _ in got:
        impls += [i for i in c.impls if i not in impls]
    out = []
    for impl in impls:
        seq = [(c, signature(r, impl)) for c, r in got if impl in c.impls and state(r, impl) != "not run"]
        if not seq:
            continue
        first_c, first_s = seq[0]
        line = [f"{impl}: {first_s} from {axis} {first_c.release} (the earliest tested)"]
        for (pc, ps), (c, s) in zip(seq, seq[1:]):
            if s != ps:
                line.append(f"{s} first in {axis} {c.release} ({ps} in {pc.release})")
        out.append("; ".join(line))
    return out


def render_json(pairs, meta: dict) -> dict:
    return {"meta": meta, "cells": [r if r is not None else {"cell": c.to_dict(), "status": "not run"}
                                     for c, r in pairs]}


def render_md(pairs, meta: dict, series_order: list[str]) -> str:
    L = ["# Framework releases side by side (`xor-rosetta matrix`)", ""]
    judged = [r for _, r in pairs if r is not None]
    n_inst = sum(1 for r in judged if r["status"] == "not-installable")
    L += [f"Cells: {len(pairs)} from `{meta.get('cells_file')}`; {len(judged) - n_inst} judged, {n_inst} not "
          f"installable, {len(pairs) - len(judged)} not run.",
          f"Time: the cells' own times add up to {sum((r.get('seconds') or {}).get('total', 0) for r in judged):.0f} s"
          + (f"; this invocation ran {meta['ran']} of them in {meta.get('wall_seconds', 0):.0f} s wall, "
             f"{meta.get('kept', 0)} kept from earlier runs." if meta.get("ran") else
             f" (this invocation ran none: {meta.get('kept', 0)} records from earlier runs)."),
          f"Records: first cell started {min((r.get('started') or '?') for r in judged) if judged else '-'}, "
          f"last finished {max((r.get('finished') or '?') for r in judged) if judged else '-'}.",
          f"Machine: {meta.get('machine', '')}; jobs {meta.get('jobs')}; generated {meta.get('generated')}.",
          f"Command: `{meta.get('command')}`", "",
          "Each cell: a uv environment with exactly these releases and the project's wheel; in it, `xor-rosetta "
          "check --impls ... --json` against the golden files (agrees / drift / error) and `xor-rosetta compare` on "
          "both presets against that cell's NumPy reference (the compare columns); for each drift, `xor-rosetta "
          "verify IMPL --json` names the Adam/BCE/momentum forms it detects, compared with the golden run's.", ""]
    for series in series_order:
        rows = [(c, r) for c, r in pairs if c.series == series]
        if not rows:
            continue
        rows.sort(key=lambda cr: version_key(cr[0].release))
        axis = rows[0][0].axis
        impls = []
        for c, _ in rows:
            impls += [i for i in c.impls if i not in impls]
        L += [f"## {series}", "", "| " + " | ".join([axis, "with"] + [f"{i} golden" for i in impls] +
                                                     [f"{i} compare (seed-numpy / seed-keras)" for i in impls]
                                                     + ["s"]) + " |",
              "|" + "---|" * (3 + 2 * len(impls))]
        for c, r in rows:
            if r is None:
                L.append(f"| {c.release} | {', '.join(f'{k} {v}' for k, v in c.packages if k != axis)} | " +
                         " | ".join(["not run"] * (2 * len(impls))) + " | |")
                continue
            if r["status"] == "not-installable":
                L.append(f"| {c.release} | {_others(r, c)} | not installable: {r['reason'].replace('|', '/')} " +
                         "| " * (2 * len(impls) - 1) + f"| {r['seconds'].get('total', 0):.0f} |")
                continue
            if r["status"] != "judged":
                L.append(f"| {c.release} | {_others(r, c)} | error: {r['reason'].replace('|', '/')} " +
                         "| " * (2 * len(impls) - 1) + f"| {r['seconds'].get('total', 0):.0f} |")
                continue
            golden, comp = [], []
            for i in impls:
                res = r["results"].get(i)
                if res is None:
                    golden.append("")
                    comp.append("")
                    continue
                g = res["golden"]
                if g == "drift":
                    d = res["drift"]
                    g = f"**drift** from step {d['first_step']}, Δ {d['size']:.2g}" if d["first_step"] else "drift"
                elif g == "error":
                    g = f"error: {res['reason'][:120]}"
                golden.append(g.replace("|", "/"))
                comp.append(" / ".join(str((res["compare"].get(p) or {}).get("verdict", "-")) for p in
                                       ("seed-numpy", "seed-keras")).replace("|", "/"))
            L.append(f"| {c.release} | {_others(r, c)} | " + " | ".join(golden + comp) +
                     f" | {r['seconds'].get('total', 0):.0f} |")
        L.append("")
        tr = transitions(pairs, series)
        if tr:
            L += ["Where each state first appears or disappears, in release order:", ""] + [f"- {t}" for t in tr] + [""]
    drifts = [(c, r, i, res) for c, r in pairs if r is not None and r["status"] == "judged"
              for i, res in r["results"].items() if res["golden"] == "drift"]
    L += ["## Drifts", ""]
    if not drifts:
        L += ["None: every judged cell reproduces the golden files within the tolerance policy.", ""]
    for c, r, i, res in drifts:
        d = res["drift"]
        L += [f"### {c.name}: {i}", "",
              f"- releases: {', '.join(f'{k} {v}' for k, v in sorted((r.get('installed') or {}).items()))}",
              f"- first step: {d['first_step']}; largest |Δ|: {d['size']:.3g} ({d['at']}); "
              f"{len(d['lines'])} golden value(s) over the tolerance",
              f"- cases: {', '.join(sorted({ln.split(':')[0] for ln in d['lines']}))}",
              f"- form (verify, float64): {form_text(res)}",
              f"- against the NumPy reference in this cell (compare): {compare_text(res)}",
              f"- first line: `{d['lines'][0]}`",
              f"- replay: `{res.get('replay', '')}`", ""]
    bad = [(c, r) for c, r in pairs if r is not None and r["status"] != "judged"]
    errs = [(c, r, i, res) for c, r in pairs if r is not None and r["status"] == "judged"
            for i, res in r["results"].items() if res["golden"] == "error"]
    if bad or errs:
        L += ["## Not installable or failed", ""]
        L += [f"- {c.name} ({', '.join(c.pins)}): {r['status']}: {r['reason']}" for c, r in bad]
        L += [f"- {c.name}: {i}: {res['reason']}" for c, r, i, res in errs]
        L.append("")
    return "\n".join(L)


def render_png(pairs, series_order: list[str] | None = None) -> bytes | None:
    """The grid as a PNG, or None where matplotlib is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.colors import ListedColormap
        from matplotlib.patches import Patch
    except ImportError:
        return None
    impls = []
    for c, _ in pairs:
        impls += [i for i in c.impls if i not in impls]
    order = list(series_order or []) + sorted({c.series for c, _ in pairs} - set(series_order or []))
    rows = sorted(pairs, key=lambda cr: (order.index(cr[0].series), version_key(cr[0].release)))
    grid = [[STATES.index(state(r, i)) if i in c.impls else -1 for i in impls] for c, r in rows]
    fig, ax = plt.subplots(figsize=(1.2 * len(impls) + 4, 0.32 * len(rows) + 1.6))
    cmap = ListedColormap(["#ffffff"] + [COLORS[s] for s in STATES])
    ax.imshow([[v + 1 for v in row] for row in grid], cmap=cmap, vmin=0, vmax=len(STATES), aspect="auto")
    ax.set_xticks(range(len(impls)), impls, rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), [f"{c.series}: {c.axis} {c.release}" for c, _ in rows], fontsize=8)
    ax.set_xticks([x - 0.5 for x in range(1, len(impls))], minor=True)
    ax.set_yticks([y - 0.5 for y in range(1, len(rows))], minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5)
    ax.tick_params(which="minor", length=0)
    ax.legend(handles=[Patch(color=COLORS[s], label=s) for s in STATES], loc="upper left", bbox_to_anchor=(1.01, 1),
              fontsize=8)
    ax.set_title("golden cases per release set (xor-rosetta matrix)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def machine() -> str:
    return f"{platform.machine()}, Python {platform.python_version()}, {platform.system()}"


def now() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
