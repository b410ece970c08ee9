"""The idiom guide: every implementation's named regions side by side, rendered from the source files.

Every implementation marks the same regions with IDE-folding comments, `# region <name>` ... `# endregion`, for
REGIONS: model, loss, optimizer, step, loop. `render(out)` (the `xor-rosetta guide` command) writes
- guide.md: a table with a row per region and a column per implementation, the seed article's two listings beside
  the fixed code, and every listing in full;
- guide.html: the same as one self-contained page (frameworks in columns, the reader picks which to show: SHOWN at
  first, at a readable width, the others one click away; code highlighted by pygments, CSS and script inline: it
  requests nothing from the network);
- maths.md: the equations with worked numbers (`xor_rosetta.app.docs.maths`).
Rendering reads the source files only (no framework is imported) and is deterministic: tests/test_guide.py fails
when a committed file differs from what this module renders now.
"""
from __future__ import annotations

import ast
import html
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

from xor_rosetta import registry
from xor_rosetta.errors import XorRosettaError
from xor_rosetta.app.docs import seed

REGIONS = {  # name -> what it holds, in the order a reader meets them
    "model": "the network: layers and activations",
    "loss": "the loss function",
    "optimizer": "the optimizer: SGD (with momentum) or Adam",
    "step": "one training step: forward, loss, gradients, update",
    "loop": "the training loop",
}
BEGIN, END = re.compile(r"^\s*# region (\S+)\s*$"), re.compile(r"^\s*# endregion\s*$")
FILES = ("guide.md", "guide.html", "maths.md")
SHOWN = ("numpy", "torch", "jax")  # guide.html's columns at first: one of each kind, readable side by side
COLUMN_EM = 28  # a shown column's least width in guide.html, in the page's 15px ems: about 56 characters of code
COMMAND = "xor-rosetta guide"


class GuideError(XorRosettaError):
    """An implementation's region anchors are malformed."""


@dataclass(frozen=True)
class Region:
    name: str
    first: int  # 1-based line number of the region's first code line (the line after `# region`)
    code: str  # the lines between the anchors, dedented

    @property
    def lines(self) -> int:
        return sum(1 for line in self.code.splitlines() if line.strip())


@dataclass(frozen=True)
class Helper:
    path: str  # e.g. implementations/_keras_recording.py
    source: str


@dataclass(frozen=True)
class Listing:
    """One implementation's source, its regions, and the private helper modules it imports."""
    name: str
    summary: str
    path: str  # as in the checkout, e.g. implementations/torch_mlp.py
    source: str
    regions: dict[str, Region]
    helpers: tuple[Helper, ...] = ()

    @property
    def idiom_lines(self) -> int:
        """Non-blank lines inside the regions."""
        return sum(r.lines for r in self.regions.values())

    @property
    def plumbing_lines(self) -> int:
        """Every other non-blank line of the file (anchor comments excepted), plus its private helpers' lines."""
        own = sum(1 for line in self.source.splitlines()
                  if line.strip() and not BEGIN.match(line) and not END.match(line))
        return own - self.idiom_lines + sum(_nonblank(h.source) for h in self.helpers)

    @property
    def missing(self) -> list[str]:
        return [r for r in REGIONS if r not in self.regions]


def _nonblank(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.strip())


def parse_regions(source: str, where: str) -> dict[str, Region]:
    """The regions of a source file; a malformed anchor (unknown name, nesting, a repeat, unclosed) is an error
    naming the file and line."""
    out, open_at, name, body = {}, 0, None, []
    for n, line in enumerate(source.splitlines(), 1):
        m = BEGIN.match(line)
        if m:
            if name is not None:
                raise GuideError(f"{where}:{n}: region {m[1]!r} opens inside region {name!r} (line {open_at}); "
                                 f"regions do not nest")
            if m[1] not in REGIONS:
                raise GuideError(f"{where}:{n}: unknown region {m[1]!r}; the regions are: {', '.join(REGIONS)}")
            if m[1] in out:
                raise GuideError(f"{where}:{n}: region {m[1]!r} appears twice (first at line {out[m[1]].first - 1})")
            name, open_at, body = m[1], n, []
        elif END.match(line):
            if name is None:
                raise GuideError(f"{where}:{n}: '# endregion' without a '# region'")
            out[name] = Region(name, open_at + 1, _dedent(body))
            name = None
        elif name is not None:
            body.append(line)
    if name is not None:
        raise GuideError(f"{where}:{open_at}: region {name!r} is never closed with '# endregion'")
    return dict(sorted(out.items(), key=lambda kv: list(REGIONS).index(kv[0])))


def _dedent(lines: list[str]) -> str:
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    indent = min((len(s) - len(s.lstrip()) for s in lines if s.strip()), default=0)
    return "\n".join(s[indent:] for s in lines)


def _module_file(module: str) -> tuple[str, Path]:
    """(path as shown, file on disk) of a module of xor_rosetta.implementations, found without importing it."""
    found = importlib.util.find_spec(module)
    if found is None or not found.origin:
        raise GuideError(f"cannot find the source of {module}")
    return "implementations/" + module.rsplit(".", 1)[1] + ".py", Path(found.origin)


def _helpers(source: str) -> tuple[Helper, ...]:
    """Private modules (`_name`) of xor_rosetta.implementations that the source imports: its plumbing."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level == 1:
                mod = f"{registry.IMPLS}.{mod}" if mod else ""
                if not mod:  # from . import _helper
                    names += [f"{registry.IMPLS}.{a.name}" for a in node.names]
            names.append(mod)
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names]
    out = []
    for mod in dict.fromkeys(names):
        if mod.startswith(registry.IMPLS + ".") and mod.rsplit(".", 1)[1].startswith("_"):
            path, file = _module_file(mod)
            out.append(Helper(path, file.read_text(encoding="utf-8")))
    return tuple(out)


def listings(names=None) -> list[Listing]:
    """The built-in implementations (the registry's order), read from their source files."""
    out = []
    for e in registry.ENTRIES:
        if names is not None and e.name not in names:
            continue
        path, file = _module_file(e.module)
        source = file.read_text(encoding="utf-8")
        out.append(Listing(e.name, e.summary, path, source, parse_regions(source, path), _helpers(source)))
    return out


# ---------------------------------------------------------------------------------------------------------- markdown

def _md_cell(code: str) -> str:
    """Code in a GitHub table cell: one line, HTML-escaped, markdown's own characters as entities."""
    text = html.escape(code, quote=False)
    for ch, ent in (("|", "&#124;"), ("*", "&#42;"), ("_", "&#95;"), ("`", "&#96;"), ("[", "&#91;"),
                    ("]", "&#93;"), ("\\", "&#92;"), ("~", "&#126;")):
        text = text.replace(ch, ent)
    return "<pre>" + text.replace("\n", "<br>") + "</pre>"


def annotate(listing: str, notes) -> tuple[str, list[int]]:
    """The listing with each note as a comment line under the line it is about, and its Chinese comments followed by
    their English; and the numbers of the annotated lines and of their notes (in the annotated text), to mark.
    `notes`: (line as written, occurrence, note)."""
    lines = listing.splitlines()
    inserts = {}
    for text, occurrence, note in notes:
        hits = [i for i, line in enumerate(lines) if line == text]
        if len(hits) < occurrence:
            raise GuideError(f"annotation for {text!r} (occurrence {occurrence}) matches no line of the listing")
        inserts[hits[occurrence - 1]] = note
    out, marked = [], []
    for i, line in enumerate(lines):
        english = seed.TRANSLATIONS.get(line.strip())
        out.append(f"{line} ({english})" if english else line)
        if i in inserts:
            marked.append(len(out))
            indent = " " * (len(line) - len(line.lstrip()))
            out.append(f"{indent}# ^ {inserts[i]}")
            marked.append(len(out))
    return "\n".join(out), marked


def seed_numpy() -> tuple[str, list[int]]:
    return annotate(seed.NUMPY_LISTING, seed.NUMPY_BUGS)


def seed_keras() -> tuple[str, list[int]]:
    values = seed.keras_note_values()
    return annotate(seed.KERAS_LISTING, [(t, k, n.format(**values)) for t, k, n in seed.KERAS_NOTES])


def _regions_text(listing: Listing | None) -> str:
    if listing is None:
        return "# (not available)"
    if not listing.regions:
        return f"# {listing.path} marks no regions yet"
    return "\n\n".join(f"# region {r.name}\n{r.code}" for r in listing.regions.values())


INTRO = ("The XOR network and its training loop in every implementation, region by region. Generated by "
         f"`{COMMAND}` from the `# region <name>` ... `# endregion` anchors in `implementations/*.py`: edit the "
         "code, then regenerate; tests/test_guide.py fails when this file is out of date.")


def render_markdown(ls: list[Listing]) -> str:
    by = {x.name: x for x in ls}
    out = ["# The XOR MLP, idiom by idiom", "", INTRO, "",
           "The same guide as one page with the frameworks in columns side by side (choose which to show): "
           "[guide.html](guide.html). The equations behind every region, with worked numbers: [maths.md](maths.md).",
           "", "## Region by region", "",
           "| region | " + " | ".join(f"`{x.name}`" for x in ls) + " |",
           "|---|" + "---|" * len(ls)]
    for r, what in REGIONS.items():
        cells = [_md_cell(x.regions[r].code) if r in x.regions else "(not marked)" for x in ls]
        out.append(f"| **{r}**: {what} | " + " | ".join(cells) + " |")
    out += ["", "## Idiom and plumbing, in lines", "",
            "Non-blank lines inside the five regions (the idiom) and outside them (the plumbing that makes the "
            "implementation speak the suite's interface: canonical weights in and out, checkpoints, loss records), "
            "including the private helper modules an implementation imports.", "",
            "| implementation | file | idiom | plumbing | what it shows |", "|---|---|---:|---:|---|"]
    for x in ls:
        helpers = "".join(f" + [{h.path}](../{h.path})" for h in x.helpers)
        out.append(f"| `{x.name}` | [{x.path}](../{x.path}){helpers} | {x.idiom_lines} | {x.plumbing_lines} | "
                   f"{x.summary} |")
    np_text, _ = seed_numpy()
    k_text, _ = seed_keras()
    out += ["", "## The seed listings, beside the fixed code", "",
            "The project grew from an article whose two listings train this network. The NumPy one cannot run; "
            "the Keras one runs, slowly. Each problem is annotated under its line (`# ^`); the fixed code is the "
            "`numpy` and `keras` implementations' regions. Figures: " + seed.KERAS_FIT_SOURCE + ".", "",
            "| the seed's NumPy listing | fixed: `numpy` |", "|---|---|",
            f"| {_md_cell(np_text)} | {_md_cell(_regions_text(by.get('numpy')))} |", "",
            "| the seed's Keras listing | fixed: `keras` |", "|---|---|",
            f"| {_md_cell(k_text)} | {_md_cell(_regions_text(by.get('keras')))} |", "",
            "## Listings", ""]
    for x in ls:
        out += [f"### `{x.name}`: {x.path}", "", f"{x.summary}. Idiom {x.idiom_lines} lines, plumbing "
                f"{x.plumbing_lines}" + (f"; regions not marked: {', '.join(x.missing)}" if x.missing else "") + ".",
                "", "```python", x.source.rstrip("\n"), "```", ""]
        for h in x.helpers:
            out += [f"#### helper: {h.path}", "", "```python", h.source.rstrip("\n"), "```", ""]
    return "\n".join(out).rstrip("\n") + "\n"


# -------------------------------------------------------------------------------------------------------------- html

CSS = """
:root { --line: #d0d7de; --muted: #57606a; --bg: #f6f8fa; --mark: #fff5c4; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328; }
header { padding: 16px 24px 8px; border-bottom: 1px solid var(--line); position: sticky; top: 0; background: #fff;
         z-index: 2; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 24px 8px; }
header p, section > p { margin: 4px 0; color: var(--muted); max-width: 110ch; } section > p { margin: 4px 24px; }
#chooser { border: 0; padding: 6px 0; margin: 0; display: flex; flex-wrap: wrap; gap: 6px 16px; align-items: center; }
#chooser legend { float: left; font-weight: 600; margin-right: 8px; padding: 0; }
#chooser label { white-space: nowrap; cursor: pointer; }
#chooser button { font: inherit; font-size: 13px; }
table.cols { border-collapse: collapse; table-layout: fixed; width: calc(100% - 48px); margin: 0 24px; }
table.cols th, table.cols td { border: 1px solid var(--line); vertical-align: top; padding: 6px 8px; text-align: left; }
table.cols thead th { background: var(--bg); position: sticky; top: 0; }
table.cols th.concept { width: 9em; background: var(--bg); font-weight: 600; }
table.cols th.concept small, table.cols thead small { display: block; font-weight: 400; color: var(--muted);
                                                    overflow-wrap: anywhere; }
.hl { overflow-x: auto; background: transparent; }
.hl pre { margin: 0; font: 12px/1.4 ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace;
         white-space: pre-wrap; overflow-wrap: anywhere; }
.hl .hll { background: var(--mark); display: block; }
.hl .linenos, .hl span.linenos { color: #8c959f; padding-right: 6px; user-select: none; }
.missing { color: var(--muted); font-style: italic; }
.missing code { font-style: normal; }
td.listing .hl { max-height: 80vh; overflow: auto; }
summary { cursor: pointer; margin: 28px 24px 8px; } summary h2 { display: inline; margin: 0; }
[hidden] { display: none !important; }
"""

SCRIPT = """
(function () {
  var boxes = document.querySelectorAll('#chooser input[type=checkbox]');
  var shown = %s;  // the columns ticked at first
  function apply(box) {
    document.querySelectorAll('[data-impl="' + box.value + '"]').forEach(function (el) { el.hidden = !box.checked; });
  }
  function widths() {  // each shown column keeps a readable width: more columns scroll sideways, never squeeze
    var n = [].filter.call(boxes, function (box) { return box.checked; }).length;
    document.querySelectorAll('table.impls').forEach(function (t) {
      t.style.minWidth = (n * %d + (t.id === 'region-table' ? 9 : 0)) + 'em';
    });
  }
  boxes.forEach(function (box) {
    box.addEventListener('change', function () { apply(box); widths(); }); apply(box);
  });
  document.querySelectorAll('#chooser button').forEach(function (b) {
    b.addEventListener('click', function () {
      boxes.forEach(function (box) {
        box.checked = b.value === 'all' || (b.value === 'default' && shown.indexOf(box.value) >= 0); apply(box);
      });
      widths();
    });
  });
  widths();
})();
""" % ("[" + ", ".join(f"'{n}'" for n in SHOWN) + "]", COLUMN_EM)


def _highlighter():
    try:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer
    except ImportError:
        raise GuideError("the HTML guide needs pygments: pip install -c constraints.txt -e '.[guide]'") from None
    lexer = PythonLexer(stripnl=False, ensurenl=True)

    def code(text: str, first: int = 1, marked=(), numbers: bool = True) -> str:
        fmt = HtmlFormatter(cssclass="hl", linenos="inline" if numbers else False, linenostart=first,
                            hl_lines=list(marked), wrapcode=True)
        return highlight(text, lexer, fmt)

    return code, HtmlFormatter(cssclass="hl").get_style_defs(".hl")


def render_html(ls: list[Listing]) -> str:
    code, pyg_css = _highlighter()
    e = html.escape
    by = {x.name: x for x in ls}
    chooser = "".join(f'<label><input type="checkbox" value="{e(x.name)}"{" checked" if x.name in SHOWN else ""}> '
                      f'{e(x.name)}</label>' for x in ls)
    hide = {x.name: "" if x.name in SHOWN else " hidden" for x in ls}  # as the script leaves it, before it runs
    head = "".join(f'<th data-impl="{e(x.name)}"{hide[x.name]}>{e(x.name)}'
                   f'<small>{e(x.path).replace("/", "/<wbr>")}</small></th>' for x in ls)
    rows = []
    for r, what in REGIONS.items():
        cells = []
        for x in ls:
            body = (code(x.regions[r].code, x.regions[r].first) if r in x.regions
                    else f'<p class="missing">no <code># region {r}</code> in {e(x.path)}</p>')
            cells.append(f'<td data-impl="{e(x.name)}"{hide[x.name]}>{body}</td>')
        rows.append(f'<tr><th class="concept">{r}<small>{e(what)}</small></th>{"".join(cells)}</tr>')
    counts = "".join(f"<tr><td><code>{e(x.name)}</code></td><td>{e(x.path)}"
                     f"{''.join(' + ' + e(h.path) for h in x.helpers)}</td><td>{x.idiom_lines}</td>"
                     f"<td>{x.plumbing_lines}</td><td>{e(x.summary)}</td></tr>" for x in ls)

    def fixed(name: str) -> str:
        x = by.get(name)
        if x is None:
            return f'<p class="missing">{e(name)} is not available</p>'
        if not x.regions:
            return f'<p class="missing">{e(x.path)} marks no regions yet</p>'
        return "".join(f"<p><b>{r.name}</b> ({e(x.path)}, line {r.first})</p>{code(r.code, r.first)}"
                       for r in x.regions.values())

    np_text, np_marked = seed_numpy()
    k_text, k_marked = seed_keras()
    listings_row = "".join(
        f'<td class="listing" data-impl="{e(x.name)}"{hide[x.name]}>{code(x.source, 1, _region_lines(x))}'
        + "".join(f"<p><b>helper</b> {e(h.path)}</p>{code(h.source)}" for h in x.helpers) + "</td>" for x in ls)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>xor-rosetta: the XOR MLP, idiom by idiom</title>
<style>{CSS}
{pyg_css}
</style>
</head>
<body>
<header>
<h1>The XOR MLP, idiom by idiom</h1>
<p>{e(INTRO).replace('`', '')}</p>
<fieldset id="chooser"><legend>Show</legend>{chooser}
<button type="button" value="default">{e(", ".join(SHOWN))}</button><button type="button" value="all">all</button>
<button type="button" value="none">none</button></fieldset>
</header>
<main>
<section id="regions">
<h2>Region by region</h2>
<p>Each row is one region, each column one implementation; line numbers are the file's own. Shown at first:
{e(", ".join(SHOWN))}; tick others above to add their columns (more than three scroll sideways).</p>
<table class="cols impls" id="region-table">
<thead><tr><th class="concept">region</th>{head}</tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody>
</table>
</section>
<section id="lines">
<h2>Idiom and plumbing, in lines</h2>
<p>Non-blank lines inside the five regions (the idiom) and outside them (the plumbing that makes an implementation
speak the suite's interface), including the private helper modules it imports.</p>
<table class="cols"><thead><tr><th>implementation</th><th>file</th><th>idiom</th><th>plumbing</th><th>what it shows</th>
</tr></thead><tbody>{counts}</tbody></table>
</section>
<section id="seed">
<h2>The seed listings, beside the fixed code</h2>
<p>The project grew from an article whose two listings train this network. The NumPy one cannot run; the Keras one
runs, slowly. Each problem is marked and annotated under its line. Figures: {e(seed.KERAS_FIT_SOURCE)}.</p>
<table class="cols">
<thead><tr><th>the seed's NumPy listing</th><th>fixed: numpy</th></tr></thead>
<tbody><tr><td>{code(np_text, 1, np_marked)}</td><td>{fixed("numpy")}</td></tr></tbody>
</table>
<p></p>
<table class="cols">
<thead><tr><th>the seed's Keras listing</th><th>fixed: keras</th></tr></thead>
<tbody><tr><td>{code(k_text, 1, k_marked)}</td><td>{fixed("keras")}</td></tr></tbody>
</table>
</section>
<section id="listings">
<details>
<summary><h2>Listings (click to open)</h2></summary>
<p>Every file in full, side by side; the lines inside regions are shaded.</p>
<table class="cols impls" id="listings-table">
<thead><tr>{head}</tr></thead>
<tbody><tr>{listings_row}</tr></tbody>
</table>
</details>
</section>
<section id="maths">
<h2>The maths</h2>
<p>The equations behind every region, with worked numbers from the first steps of seed-numpy and seed-keras, run
as a doctest by the tests: <a href="maths.md">maths.md</a>.</p>
</section>
</main>
<script>{SCRIPT}</script>
</body>
</html>
"""


def _region_lines(x: Listing) -> list[int]:
    """Line numbers of the file that lie inside regions (anchors included), for shading."""
    out, inside = [], False
    for n, line in enumerate(x.source.splitlines(), 1):
        if BEGIN.match(line):
            inside = True
        if inside:
            out.append(n)
        if END.match(line):
            inside = False
    return out


def render_all() -> dict[str, str]:
    """{file name: text} for every file the guide writes."""
    from xor_rosetta.app.docs import maths
    ls = listings()
    return {"guide.md": render_markdown(ls), "guide.html": render_html(ls), "maths.md": maths.render()}


def write(out: Path) -> list[Path]:
    from xor_rosetta.app.common.files import write_set
    files = render_all()
    write_set(out, files)  # one set: guide.md, guide.html and maths.md are replaced together
    return [out / name for name in files]
