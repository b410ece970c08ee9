"""The idiom guide: committed files current, region anchors in every implementation, the seed listings'
annotations true, and the page in a real browser (headless Chromium): every column, the column chooser, no
request beyond the file itself."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from conftest import IMPLS, load_or_skip
from xor_rosetta import registry
from xor_rosetta.app.docs import guide, seed
from xor_rosetta.app.docs.browser import Browser, find_chromium

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"
EXE = Path(sys.executable).parent / "xor-rosetta"
REGENERATE = "regenerate it with `xor-rosetta guide` (run in the checkout) and commit it"


@pytest.fixture(scope="module")
def rendered():
    """What the guide renders now, in this process."""
    ls = guide.listings()
    return {"guide.md": guide.render_markdown(ls), "guide.html": guide.render_html(ls)}


@pytest.mark.parametrize("name", ["guide.md", "guide.html"])
def test_committed_guide_is_current(rendered, name):
    committed = RESULTS / name
    assert committed.is_file(), f"results/{name} is missing: {REGENERATE}"
    now, old = rendered[name], committed.read_text(encoding="utf-8")
    if now != old:
        first = next((i for i, (a, b) in enumerate(zip(old.splitlines(), now.splitlines()), 1) if a != b),
                     min(len(old.splitlines()), len(now.splitlines())) + 1)
        pytest.fail(f"results/{name} differs from what the code renders now (first at line {first}): {REGENERATE}")


def test_guide_command_writes_every_file(tmp_path, rendered):
    """The installed command, as CI and the lead run it: the three files (and guide.png where Chromium exists)."""
    shot = ["--screenshot"] if find_chromium() else []
    p = subprocess.run([str(EXE), "guide", *shot, "--out", str(tmp_path)], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    for name, text in rendered.items():
        assert (tmp_path / name).read_text(encoding="utf-8") == text
    assert (tmp_path / "maths.md").is_file()
    if not shot:
        return
    png = (tmp_path / "guide.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert width == 1600 and height > 2000  # the whole page, not just the window


def test_rendering_is_deterministic():
    a, b = guide.listings(), guide.listings()
    assert guide.render_markdown(a) == guide.render_markdown(b)
    assert guide.render_html(a) == guide.render_html(b)


@pytest.mark.parametrize("name", IMPLS)
def test_implementation_marks_every_region(name):
    """Read from the source file, without importing the framework."""
    (listing,) = guide.listings([name])
    assert not listing.missing, f"{listing.path} has no '# region' anchors for: {', '.join(listing.missing)}"
    assert all(r.lines > 0 for r in listing.regions.values()), f"{listing.path} has an empty region"


@pytest.mark.parametrize("name", IMPLS)
def test_idiom_comes_first(name):
    """Every region but the loop (which lives in the class's train()) opens before the implementation's class."""
    (listing,) = guide.listings([name])
    cls = registry.REGISTRY[name].cls
    at = next(n.lineno for n in ast.parse(listing.source).body if isinstance(n, ast.ClassDef) and n.name == cls)
    late = [r.name for r in listing.regions.values() if r.name != "loop" and r.first > at]
    assert not late, f"{listing.path}: regions {late} come after class {cls} (line {at}); the framework's idiom " \
                     f"goes first, the plumbing below"


SOURCE = """\
import x

# region model
def f():
    return 1
# endregion

class A:
    # region loop
    def train(self):

        return 2
    # endregion
"""


def test_regions_are_parsed_and_dedented():
    regions = guide.parse_regions(SOURCE, "t.py")
    assert list(regions) == ["model", "loop"]
    assert regions["model"].first == 4 and regions["model"].code == "def f():\n    return 1"
    assert regions["loop"].first == 10 and regions["loop"].code == "def train(self):\n\n    return 2"
    listing = guide.Listing("t", "", "t.py", SOURCE, regions)
    assert listing.idiom_lines == 4  # non-blank lines inside the regions
    assert listing.plumbing_lines == 2  # `import x`, `class A:`; the anchor comments count for neither


@pytest.mark.parametrize("source, message", [
    ("# region model\n# region loss\n# endregion\n", "t.py:2: region 'loss' opens inside region 'model'"),
    ("# region modle\n# endregion\n", "t.py:1: unknown region 'modle'"),
    ("# region model\n# endregion\n# region model\n# endregion\n", "t.py:3: region 'model' appears twice"),
    ("x = 1\n# region step\n", "t.py:2: region 'step' is never closed"),
    ("# endregion\n", "t.py:1: '# endregion' without a '# region'"),
], ids=["nested", "unknown", "twice", "unclosed", "stray-end"])
def test_malformed_anchors_are_errors_naming_the_line(source, message):
    with pytest.raises(guide.GuideError, match=message.replace("(", r"\(")):
        guide.parse_regions(source, "t.py")


def test_private_helpers_count_as_plumbing(monkeypatch):
    helper = "class StepLoss:\n    pass\n\n\ndef record():\n    return 1\n"
    monkeypatch.setattr(guide, "_module_file", lambda mod: (
        "implementations/" + mod.rsplit(".", 1)[1] + ".py", _write(mod, helper)))
    src = SOURCE + "from xor_rosetta.implementations._recording import StepLoss\nfrom ._other import x\n" \
                   "from xor_rosetta.implementations.keras_mlp import KerasMLP\n"
    helpers = guide._helpers(src)
    assert [h.path for h in helpers] == ["implementations/_recording.py", "implementations/_other.py"]
    listing = guide.Listing("t", "", "t.py", src, guide.parse_regions(src, "t.py"), helpers)
    assert listing.plumbing_lines == 2 + 3 + 2 * 4  # own lines, the three imports, two 4-line helpers


def _write(mod, text):
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"xor-rosetta-test-{os.getpid()}-{mod.rsplit('.', 1)[1]}.py"
    path.write_text(text)
    return path


# ------------------------------------------------------------------------------------- the seed listings' annotations

def _line_of(text: str, occurrence: int = 1) -> int:
    hits = [n for n, line in enumerate(seed.NUMPY_LISTING.splitlines(), 1) if line == text]
    return hits[occurrence - 1]


def test_seed_numpy_listing_stops_at_the_annotated_shape_bug():
    code = compile(seed.NUMPY_LISTING, "<seed numpy listing>", "exec")
    with pytest.raises(ValueError, match=r"shapes \(4,1\) and \(2,5\) not aligned") as err:
        exec(code, {})
    line = [tb.lineno for tb in _frames(err.value.__traceback__) if tb.filename == "<seed numpy listing>"][-1]
    assert line == _line_of(seed.NUMPY_BUGS[0][0]), "the shape annotation is not on the line that fails"


def _frames(tb):
    import traceback
    return traceback.extract_tb(tb)


def test_seed_numpy_listing_never_defines_m():
    tree = ast.parse(seed.NUMPY_LISTING)
    names = [n for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == "m"]
    loaded = {n.lineno for n in names if isinstance(n.ctx, ast.Load)}
    stored = [n for n in names if not isinstance(n.ctx, ast.Load)]
    assert loaded and not stored
    assert _line_of(seed.NUMPY_BUGS[1][0]) in loaded, "the `m` annotation is not on a line that reads m"


def test_seed_numpy_listing_updates_only_W2_and_b2():
    loop = next(n for n in ast.parse(seed.NUMPY_LISTING).body if isinstance(n, ast.For))
    assigned = {t.id for n in ast.walk(loop) if isinstance(n, (ast.Assign, ast.AugAssign))
                for t in (n.targets if isinstance(n, ast.Assign) else [n.target]) if isinstance(t, ast.Name)}
    updated = {n.target.id for n in ast.walk(loop) if isinstance(n, ast.AugAssign)}
    assert updated == {"W2", "b2"} and not {"W1", "b1"} & assigned
    assert all(isinstance(n.op, ast.Add) for n in ast.walk(loop) if isinstance(n, ast.AugAssign))  # += : ascent
    assert _line_of(seed.NUMPY_BUGS[2][0]) in {n.lineno for n in ast.walk(loop) if isinstance(n, ast.AugAssign)}


def test_seed_numpy_listing_body_is_pasted_twice():
    loop = next(n for n in ast.parse(seed.NUMPY_LISTING).body if isinstance(n, ast.For))
    half = len(loop.body) // 2
    assert len(loop.body) % 2 == 0
    assert [ast.dump(s) for s in loop.body[:half]] == [ast.dump(s) for s in loop.body[half:]]


def test_seed_numpy_listing_bias_gradient_shape():
    """With m defined and the forward pass cut before the shape bug, db2 has the annotated (4, 1) shape."""
    W2 = 2 * np.random.RandomState(1).random_sample((5, 1)) - 1
    A2 = np.tanh(np.ones((4, 5)) @ W2)  # (4, 1), as the listing's A2
    db2 = (1 / 4) * np.sum(2 * A2 * (1 - A2 ** 2), axis=1, keepdims=True)
    assert A2.shape == (4, 1) and db2.shape == (4, 1) and (A2 @ A2.T).shape == (4, 4)


def test_every_annotation_sits_on_a_line_of_its_listing():
    text, marked = guide.seed_numpy()
    assert len(marked) == 2 * len(seed.NUMPY_BUGS)  # each annotated line and its note
    lines = text.splitlines()
    notes = {lines[n - 1]: lines[n].strip() for n in marked[::2]}  # an annotated line, and the note under it
    for line, _, note in seed.NUMPY_BUGS:
        assert notes[line + (f" ({seed.TRANSLATIONS[line.strip()]})" if line.strip() in seed.TRANSLATIONS else "")] \
            == f"# ^ {note}"
    text, marked = guide.seed_keras()
    assert len(marked) == 2 * len(seed.KERAS_NOTES) and "30-41 ms per epoch" in text


def test_keras_accepts_the_seed_listings_input_dim_with_a_warning():
    load_or_skip("keras")
    import keras
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        keras.layers.Dense(5, input_dim=2, activation="relu")
    assert any("input_dim" in str(w.message) for w in seen)


def test_page_loads_nothing_by_its_markup(rendered):
    """Without a browser: no element that loads something (script src, link, img, iframe, CSS url() or @import);
    the only hrefs are links a reader may follow."""
    from html.parser import HTMLParser
    page, loads, links = rendered["guide.html"], [], []

    class Scan(HTMLParser):
        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag in ("script", "img", "iframe", "embed", "source", "video", "audio") and a.get("src"):
                loads.append((tag, a["src"]))
            if tag in ("link", "object"):
                loads.append((tag, a.get("href") or a.get("data")))
            if tag == "a":
                links.append(a.get("href"))
    Scan().feed(page)
    assert not loads and "url(" not in page and "@import" not in page
    assert links == ["maths.md"]


# ------------------------------------------------------------------------------------------------ in a real browser

def _browser_or_skip():
    if find_chromium() is None:
        # a skip, even under XOR_ROSETTA_REQUIRE_ALL (which is about frameworks): the README's test command must
        # pass on a fresh machine; .ci/run installs Chromium first, so CI runs this test
        pytest.skip("no Chromium found (Debian: apt-get install chromium; or set XOR_ROSETTA_CHROMIUM)")
    return Browser(width=1600, height=1000)


def _shown(b, name):
    """How many elements of the column are displayed, and how many exist."""
    return b.js(f"(() => {{ const els = [...document.querySelectorAll('[data-impl=\"{name}\"]')]; "
                f"return [els.filter(e => e.getClientRects().length > 0).length, els.length]; }})()")


def test_page_in_chromium_columns_chooser_and_no_network():
    page = RESULTS / "guide.html"
    with _browser_or_skip() as b:
        b.open(page)
        b.click("#listings summary")  # open the full listings, which start folded
        names = [x.name for x in guide.listings()]
        assert b.js("[...document.querySelectorAll('#chooser input')].map(e => e.value)") == names
        assert set(guide.SHOWN) <= set(names) and 2 <= len(guide.SHOWN) <= 3
        for name in names:  # every column: a header, a cell per region, a listing; SHOWN alone at first
            shown, total = _shown(b, name)
            assert total >= 2 + len(guide.REGIONS), f"column {name}: {total} elements"
            want = total if name in guide.SHOWN else 0
            assert shown == want, f"column {name}: {shown} of {total} shown at first, expected {want}"
        _assert_readable(b, guide.SHOWN)
        extra = next(n for n in names if n not in guide.SHOWN)
        b.click(f'#chooser input[value="{extra}"]')  # a real mouse click on the checkbox: one click away
        assert _shown(b, extra)[0] == _shown(b, extra)[1], f"ticking {extra} did not show its column"
        hide = guide.SHOWN[1]
        b.click(f'#chooser input[value="{hide}"]')
        assert _shown(b, hide)[0] == 0, f"unticking {hide} left some of its column shown"
        assert all(_shown(b, n)[0] == _shown(b, n)[1] for n in (*guide.SHOWN, extra) if n != hide), \
            "unticking hid another column"
        b.click('#chooser button[value="none"]')
        assert all(_shown(b, n)[0] == 0 for n in names)
        b.click('#chooser button[value="all"]')
        assert all(_shown(b, n)[0] == _shown(b, n)[1] for n in names)
        _assert_readable(b, names)  # nine columns scroll sideways rather than squeeze the code
        b.click('#chooser button[value="default"]')
        assert [n for n in names if _shown(b, n)[0]] == list(guide.SHOWN)
        outside = [u for u in b.requests if u != page.resolve().as_uri() and not u.startswith("data:")]
        assert b.requests and not outside, f"the page requested: {outside}"


def _assert_readable(b, names, chars=50):
    """Each named column of the region table is at least `chars` characters of its code font wide (at 1600 px)."""
    for name in names:
        width = b.js(f"(() => {{ const td = document.querySelector('#region-table td[data-impl=\"{name}\"]'); "
                     "const pre = td.querySelector('pre'); const s = document.createElement('span'); "
                     "s.textContent = 'x'.repeat(10); pre.appendChild(s); const w = s.getBoundingClientRect().width; "
                     "s.remove(); return td.clientWidth / (w / 10); })()")
        assert width >= chars, f"column {name} is {width:.0f} characters wide"


def test_request_recording_sees_an_external_resource(tmp_path):
    """The no-network check above can fail: a page that loads a remote image is caught."""
    page = tmp_path / "leaky.html"
    page.write_text('<!doctype html><link rel="stylesheet" href="https://fonts.example.com/a.css">'
                    '<img src="https://cdn.example.com/x.png">')
    with _browser_or_skip() as b:
        b.open(page)
        assert {"https://fonts.example.com/a.css", "https://cdn.example.com/x.png"} <= set(b.requests)
