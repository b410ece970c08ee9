"""`xor-rosetta list`: every implementation, its versions, and why one is unavailable."""
from __future__ import annotations

import json

from ... import registry
from ..cli import EXIT_OK

NAME, HELP = "list", "implementations, versions, availability"


def add_arguments(sp) -> None:
    pass


def run(a) -> int:
    rows = []
    for e in registry.ENTRIES:
        reason = registry.unavailable_reason(e)
        rows.append({"name": e.name, "available": reason is None, "versions": registry.versions(e),
                     "backend": e.backend, "summary": e.summary, "reason": reason, "install": e.install_hint})
    if a.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    for r in rows:
        v = ", ".join(f"{k} {x}" for k, x in r["versions"].items()) or "not installed"
        v += f" (backend {r['backend']})" if r["backend"] else ""
        print(f"{r['name']:<14} {'available' if r['available'] else 'UNAVAILABLE':<12} {v:<52} {r['summary']}")
        if not r["available"]:
            print(f"{'':<14} {r['reason']}")
    return EXIT_OK
