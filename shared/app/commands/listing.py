"""`xor-rosetta list`: every implementation, its versions, and why one is unavailable."""
from __future__ import annotations


from ... import registry
from xor_rosetta.app.common.files import json_text
from ..cli import EXIT_OK

NAME, HELP = "list", "implementations, versions, availability"


def add_arguments(sp) -> None:
    pass


def run(a) -> int:
    rows = []
    for e in registry.all_entries():  # built-ins, then plug-ins (imported, to report an import that fails)
        reason = registry.load_problem(e)
        rows.append({"name": e.name, "available": reason is None, "versions": registry.versions(e),
                     "backend": e.backend, "summary": e.summary, "reason": reason, "install": e.install_hint,
                     "plugin": not e.builtin})
    if a.json:
        print(json_text(rows))
        return EXIT_OK
    for r in rows:
        v = ", ".join(f"{k} {x}" for k, x in r["versions"].items()) or "not installed"
        v += f" (backend {r['backend']})" if r["backend"] else ""
        print(f"{r['name']:<14} {'available' if r['available'] else 'UNAVAILABLE':<12} {v:<52} {r['summary']}")
        if not r["available"]:
            print(f"{'':<14} {r['reason']}")
    return EXIT_OK
