"""`xor-rosetta guide`: the idiom guide (guide.md, guide.html) and the maths (maths.md), rendered from the code; in a
checkout, also the documentation site's generated pages (docs/)."""
from __future__ import annotations

from xor_rosetta.app.cli import EXIT_OK, writable_dir
from xor_rosetta.app.common.files import json_text

NAME, HELP = "guide", ("render the idiom guide (guide.md, guide.html) and the maths (maths.md) from the code; without "
                       "--out, in a checkout, also the documentation site's generated pages in docs/")


def add_arguments(sp) -> None:
    sp.add_argument("--out", metavar="DIR", help="output folder (default: results/ of the checkout, else ./results)")
    sp.add_argument("--screenshot", action="store_true",
                    help="also render guide.html to guide.png in headless Chromium (Debian: apt-get install chromium)")


def run(a) -> int:
    from xor_rosetta.app.common.progress import Progress
    from xor_rosetta.app.common.project import find_project, results_dir
    from xor_rosetta.app.docs import guide
    out = writable_dir(results_dir(a.out))
    checkout = None if a.out else find_project()
    docs = checkout / "docs" if checkout is not None and (checkout / "mkdocs.yml").is_file() else None
    with Progress(1 + bool(a.screenshot) + bool(docs), enabled=not a.quiet) as bar:
        bar.update("rendering guide.md, guide.html, maths.md", 0)
        written = guide.write(out)
        if docs is not None:
            from xor_rosetta.app.docs import site
            bar.update("the documentation site's generated pages", 1)
            written += site.write(docs)
        if a.screenshot:
            from xor_rosetta.app.docs.browser import Browser
            bar.update("guide.png in headless Chromium", 1 + bool(docs))
            with Browser(width=1600, height=1000) as b:
                b.open(out / "guide.html")
                written.append(b.screenshot(out / "guide.png"))
    if a.json:
        print(json_text({"written": [str(p) for p in written]}))
    elif not a.quiet:
        for p in written:
            print(f"wrote {p}")
    return EXIT_OK
