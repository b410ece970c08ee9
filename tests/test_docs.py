"""The documentation site: the generated pages current, the README one screen, `mkdocs build --strict`, and every
page in headless Chromium from a local server: no console error, no broken internal link or anchor, no request
that leaves the site, and the search box finds something."""
from __future__ import annotations

import argparse
import functools
import http.server
import importlib.util
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from xor_rosetta.app import cli
from xor_rosetta.app.docs.browser import Browser, find_chromium
from xor_rosetta.app.docs import site

ROOT = Path(__file__).resolve().parent.parent
REGENERATE = f"regenerate them with `{site.COMMAND}` (or `xor-rosetta guide`) in the checkout and commit them"


def test_committed_pages_are_current():
    stale = site.stale(ROOT / "docs")
    assert not stale, f"docs/{', docs/'.join(stale)} differ from what the code renders now: {REGENERATE}"


def test_check_finds_a_stale_page(tmp_path, capsys):
    site.write(tmp_path)
    assert site.main(["--check", "--out", str(tmp_path)]) == 0
    (tmp_path / "cli.md").write_text("# an old CLI reference\n")
    assert site.main(["--check", "--out", str(tmp_path)]) == 1
    assert "docs/cli.md is stale" in capsys.readouterr().out


@pytest.mark.parametrize("args", [["--bogus"], ["--out"]], ids=["unknown-option", "missing-value"])
def test_bad_input_is_one_line_and_exit_2(args):
    p = subprocess.run([sys.executable, "-m", "xor_rosetta.app.docs.site", *args], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr, p.stderr


def test_cli_reference_has_every_command_and_option():
    page = site.cli_page()
    sub = next(a for a in cli.parser()._actions if hasattr(a, "choices") and isinstance(a.choices, dict))
    for name, parser in sub.choices.items():
        assert f"\n## {name}\n" in page, f"the CLI reference has no section for {name}"
        for action in parser._actions:
            for flag in (action.option_strings if action.help != argparse.SUPPRESS else ()):  # hidden: not shown
                assert f"`{flag}`" in page, f"the CLI reference does not name {name} {flag}"


def test_readme_is_one_screen_and_ci_runs_its_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.encode()) <= 15_000 and len(readme.splitlines()) <= 160
    blocks = readme.split("```sh\n")[1:]
    command = next(b.split("\n")[0] for b in blocks if "pytest" in b.split("\n")[0])
    assert command in (ROOT / ".ci" / "run").read_text().splitlines(), ".ci/run must run the README's test command"


# ----------------------------------------------------------------------------------------------- the built site

@pytest.fixture(scope="module")
def built(tmp_path_factory):
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        pytest.skip("mkdocs-material is not installed: pip install -c constraints.txt -e '.[docs]'")
    out = tmp_path_factory.mktemp("site")
    p = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)], cwd=ROOT,
                       capture_output=True, text=True, timeout=300, env={**_env(), "NO_MKDOCS_2_WARNING": "1"})
    assert p.returncode == 0, f"mkdocs build --strict failed:\n{p.stderr[-3000:]}"
    return out


def _env():
    import os
    return dict(os.environ)


def test_site_builds_strict_with_every_page(built):
    for page in ("index", "getting-started", "concepts", "guide", "maths", "verify", "protocol", "sweeps",
                 "benchmarks", "cli", "api"):
        assert (built / f"{page}.html").is_file(), page
    assert "<math" in (built / "maths.html").read_text(), "the maths is not rendered as MathML"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def served(built):
    """The built site on a local server (127.0.0.1 only), and its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(built)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield built, f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


def _browser_or_skip():
    if find_chromium() is None:
        # a skip, even under XOR_ROSETTA_REQUIRE_ALL (which is about frameworks), as in tests/test_guide.py;
        # .ci/run installs Chromium first, so CI runs this test
        pytest.skip("no Chromium found (Debian: apt-get install chromium; or set XOR_ROSETTA_CHROMIUM)")
    return Browser(width=1400, height=900, local="127.0.0.1")


LINKS = "[...document.querySelectorAll('a[href]')].map(a => a.href)"
IDS = "[...document.querySelectorAll('[id], a[name]')].map(e => e.id || e.name)"


def crawl(b, folder: Path, base: str) -> list[str]:
    """Open every .html page of `folder` under `base`; the problems found: console errors, broken internal links
    and anchors, requests that leave the site."""
    problems, links, ids = [], {}, {}
    for page in sorted(folder.rglob("*.html")):
        url = base + page.relative_to(folder).as_posix().removesuffix("index.html")
        b.errors.clear()
        b.open(url)
        links[url], ids[url] = b.js(LINKS), set(b.js(IDS))
        problems += [f"{url}: {e}" for e in b.errors]
    for url, hrefs in links.items():
        for href in hrefs:
            if not href.startswith(base):
                continue  # a link out (a reader may follow it); requests are checked below
            target, _, anchor = href.partition("#")
            path = folder / unquote(urlsplit(target).path).lstrip("/")
            if path.is_dir():
                path = path / "index.html"
            if not path.is_file():
                problems.append(f"{url}: broken link to {href}")
            elif anchor and target in ids and unquote(anchor) not in ids[target]:
                problems.append(f"{url}: link to a missing anchor {href}")
    problems += [f"a request left the site: {u}" for u in b.requests
                 if not u.startswith((base, "data:", "blob:"))]
    return problems


def test_every_page_in_chromium(served):
    folder, base = served
    with _browser_or_skip() as b:
        started = time.monotonic()
        problems = crawl(b, folder, base)
        assert not problems, "\n".join(problems[:30])
        assert len({u for u in b.requests if u.endswith((".html", "/"))}) >= 15, "too few pages were opened"
        b.open(base)  # the search box, once: type a query, see results
        b.click(".md-search__input")
        b.type("rounding floor")
        found = 0
        for _ in range(100):
            found = b.js("document.querySelectorAll('.md-search-result__item').length")
            if found:
                break
            time.sleep(0.1)
        assert found, "the search box found nothing for 'rounding floor'"
        assert "concepts.html" in " ".join(b.js(LINKS)), "the search results do not list the Concepts page"
        b.open(base + "guide.html")  # the idiom guide: one tab per framework, one choice for every region
        b.click(".tabbed-set .tabbed-labels label:nth-child(2)")
        chosen = b.js("[...document.querySelectorAll('.tabbed-set')].slice(0, 5).map(t => "
                      "t.querySelector('.tabbed-labels label:nth-child(' + "
                      "([...t.querySelectorAll(':scope > input')].findIndex(i => i.checked) + 1) + ')').textContent)")
        assert chosen == ["torch"] * 5, f"choosing torch in the first region left the regions on {chosen}"
        assert not b.errors, b.errors
        assert time.monotonic() - started < 60


def test_the_crawl_catches_a_broken_site(tmp_path):
    """The checks above can fail: a console error, a broken link, a missing anchor and a remote image are caught."""
    (tmp_path / "index.html").write_text(
        '<!doctype html><a href="missing.html">x</a><a href="other.html#nowhere">y</a>'
        '<img src="https://cdn.example.com/x.png"><script>console.error("boom")</script>')
    (tmp_path / "other.html").write_text('<!doctype html><h1 id="here">other</h1>')
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with _browser_or_skip() as b:
            problems = "\n".join(crawl(b, tmp_path, f"http://127.0.0.1:{server.server_port}/"))
    finally:
        server.shutdown()
        server.server_close()
    assert "console.error: boom" in problems
    assert "broken link to" in problems and "missing.html" in problems
    assert "missing anchor" in problems and "#nowhere" in problems
    assert "a request left the site: https://cdn.example.com/x.png" in problems
