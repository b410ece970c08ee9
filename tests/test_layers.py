"""The seam: the import-linter contracts in pyproject.toml hold, no module imports another that imports it back
(imports inside functions count), and nothing under shared/ imports a framework.

The installed package joins shared/ and implementations/ under one name, xor_rosetta (pyproject.toml); an editable
install does so with a finder that import-linter cannot walk, so the contracts are checked on a copy of the tree
laid out as installed."""
from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.quick  # the quick tier: pytest -m quick

ROOT = Path(__file__).resolve().parent.parent
FRAMEWORKS = {"torch", "jax", "jaxlib", "keras", "tensorflow", "flax", "optax"}


def modules() -> dict[str, Path]:
    """Every module of xor_rosetta by its dotted name, from shared/ and implementations/."""
    out = {}
    for base, package in ((ROOT / "shared", "xor_rosetta"), (ROOT / "implementations", "xor_rosetta.implementations")):
        for f in base.rglob("*.py"):
            parts = list(f.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([package, *parts])] = f
    return out


def imports(name: str, path: Path, known) -> set[str]:
    """The modules `name` imports, anywhere in its body (inside functions too), but not under `if TYPE_CHECKING:`,
    which never runs: the module names as written, and for `from a import b` also a.b where that is a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and getattr(node.test, "id", "") ==
            "TYPE_CHECKING" for b in node.body for n in ast.walk(b)}
    out = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = ".".join(pkg[:len(pkg) - node.level + 1] + ([node.module] if node.module else []))
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known)
    return out


def test_no_module_imports_itself_back():
    """Tarjan's strongly connected components of the import graph among the project's modules: each one of more
    than one module is a cycle (verify <-> diagnose once hid behind imports inside functions)."""
    mods = modules()
    graph = {m: {d for d in imports(m, p, mods) if d in mods and d != m} for m, p in mods.items()}
    index, low, stack, on, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_shared_imports_no_framework():
    """Framework code lives in implementations/; shared/ (the core, the checks and the application) imports none,
    not even inside a function."""
    mods = modules()
    found = [f"{m}: {d}" for m, p in mods.items() if not m.startswith("xor_rosetta.implementations")
             for d in imports(m, p, mods) if d.split(".")[0] in FRAMEWORKS]
    assert not found, found


def test_import_contracts_hold(tmp_path):
    """`lint-imports` with pyproject.toml's contracts, on the tree as installed (CI also runs it on the
    non-editable install)."""
    exe = Path(sys.executable).parent / "lint-imports"
    if not exe.exists():
        pytest.skip("import-linter is not installed (pip install -c constraints.txt -e '.[dev]')")
    shutil.copytree(ROOT / "shared", tmp_path / "xor_rosetta", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "implementations", tmp_path / "xor_rosetta" / "implementations",
                    ignore=shutil.ignore_patterns("__pycache__"))
    p = subprocess.run([str(exe), str(ROOT / "pyproject.toml")], cwd=tmp_path, capture_output=True,
                       text=True, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
    assert "0 broken" in p.stdout
