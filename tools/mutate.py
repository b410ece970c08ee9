"""Mutation testing with mutmut, one module at a time, on a copy of the tree laid out as installed.

mutmut mutates files under the folder it runs in and imports them as the tests do; here the package's modules live
elsewhere (shared/ -> xor_rosetta, implementations/ -> xor_rosetta.implementations: pyproject.toml's package-dir),
so for each module this builds build/mutation/<module>/ with xor_rosetta/ as installed, the tests and results/,
and a pyproject.toml holding this repository's [tool.mutmut] settings, the module to mutate and its tests
([tool.xor-rosetta-mutation.modules]), then runs `mutmut run` there, niced, and reads its verdicts back.

    .venv/bin/python tools/mutate.py                      # every module configured, one after another
    .venv/bin/python tools/mutate.py xor_rosetta/tolerance.py xor_rosetta/app/sweep/plan.py
    .venv/bin/python tools/mutate.py --sample             # CI: the fixed sample ([tool.xor-rosetta-mutation] sample)

Each module's score is written to build/mutation/scores.json and printed; mutants listed as equivalent
([tool.xor-rosetta-mutation.equivalent], with the reason) are left out of the score, and any other survivor is
listed. The exit status is 1 when a module scores under `min_score` (or, with --sample, when a sampled mutant
survives), else 0. Not part of the default suite: docs/development.md, "Mutation testing".
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "mutation"
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis", ".pytest_cache")
EXTRAS = ["results", "docs", "mkdocs.yml", "README.md", "constraints.txt"]  # what the tests read, beside them


def config() -> tuple[dict, dict]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return data["tool"]["mutmut"], data["tool"]["xor-rosetta-mutation"]


def toml_value(v) -> str:
    """A TOML value for a string, number, bool or list of strings (JSON's string escapes are TOML's)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    return "[" + ", ".join(toml_value(x) for x in v) + "]"


def build(module: str, tests: list[str], mutmut: dict) -> Path:
    """build/mutation/<module>/: the installed layout, the tests, results/, and a pyproject.toml for mutmut."""
    where = BUILD / module.removesuffix(".py").replace("/", ".")
    if where.exists():
        shutil.rmtree(where)
    pkg = where / "xor_rosetta"
    shutil.copytree(ROOT / "shared", pkg, ignore=IGNORE)
    shutil.copytree(ROOT / "implementations", pkg / "implementations", ignore=IGNORE)
    shutil.copytree(ROOT / "results" / "golden", pkg / "golden", ignore=IGNORE)
    for extra in ("tests", *EXTRAS):
        if (ROOT / extra).is_dir():
            shutil.copytree(ROOT / extra, where / extra, ignore=IGNORE)
        else:
            shutil.copy2(ROOT / extra, where / extra)
    pytest_ini = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    lines = ["[tool.mutmut]"]
    settings = {**mutmut, "source_paths": ["xor_rosetta"], "only_mutate": [module], "also_copy": EXTRAS,
                "pytest_add_cli_args_test_selection": tests}
    lines += [f"{k} = {toml_value(v)}" for k, v in settings.items()]
    lines += ["", "[tool.pytest.ini_options]"] + [f"{k} = {toml_value(v)}" for k, v in pytest_ini.items()]
    (where / "pyproject.toml").write_text("\n".join(lines) + "\n")
    (where / "mutants").mkdir()  # on PYTHONPATH from the start: worker processes import the mutated tree too
    return where


STATUS = re.compile(r"^\s*(?P<name>[\w.]+__mutmut_\d+): (?P<status>.+?)\s*$")


def run_module(module: str, tests: list[str], mutmut: dict, names: list[str], max_children: int) -> dict:
    where = build(module, tests, mutmut)
    env = {**os.environ, "PYTHONPATH": str(where / "mutants")}
    mm = str(Path(sys.executable).with_name("mutmut"))
    cmd = ["nice", "-n", "15", mm, "run", "--max-children", str(max_children), *names]
    print(f"== {module}: {' '.join(cmd[3:])} (tests: {' '.join(tests)})", flush=True)
    run = subprocess.run(cmd, cwd=where, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    (where / "run.log").write_text(run.stdout)
    res = subprocess.run([mm, "results", "--all", "true"], cwd=where, env=env, text=True, capture_output=True)
    statuses = {m["name"]: m["status"] for m in (STATUS.match(line) for line in res.stdout.splitlines()) if m}
    if names:
        statuses = {n: s for n, s in statuses.items() if n in names}
    if not statuses:
        print(run.stdout[-3000:], res.stdout[-2000:], res.stderr[-2000:], sep="\n")
        raise SystemExit(f"mutmut gave no verdicts for {module}: see {where / 'run.log'}")
    return statuses


def score(module: str, statuses: dict, equivalent: dict) -> dict:
    eq = sorted(n for n in statuses if n in equivalent)
    live = {n: s for n, s in statuses.items() if n not in equivalent}
    killed = sorted(n for n, s in live.items() if s == "killed")
    survived = sorted(n for n, s in live.items() if s != "killed")
    return {"module": module, "mutants": len(statuses), "equivalent": len(eq), "killed": len(killed),
            "not_killed": {n: live[n] for n in survived},
            "score": round(len(killed) / len(live), 4) if live else 1.0,
            "date": datetime.date.today().isoformat()}


def main(argv=None) -> int:
    mutmut, ours = config()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("modules", nargs="*", help="modules to mutate, as installed (xor_rosetta/tolerance.py); "
                                                "default: every one in [tool.xor-rosetta-mutation.modules]")
    ap.add_argument("--sample", action="store_true", help="only the fixed sample of mutants (CI)")
    ap.add_argument("--max-children", type=int, default=1, help="mutants tested at once (default 1)")
    a = ap.parse_args(argv)
    modules = ours["modules"]
    if a.sample:
        todo = {}
        for name in ours["sample"]:
            todo.setdefault(module_of(name, modules), []).append(name)
    else:
        unknown = [m for m in a.modules if m not in modules]
        if unknown:
            ap.error(f"not configured in [tool.xor-rosetta-mutation.modules]: {', '.join(unknown)}")
        todo = {m: [] for m in a.modules or modules}
    equivalent = ours.get("equivalent", {})
    scores_path = BUILD / "scores.json"
    scores = json.loads(scores_path.read_text()) if scores_path.exists() and not a.sample else {}
    failed = False
    for module, names in todo.items():
        s = score(module, run_module(module, modules[module], mutmut, names, a.max_children), equivalent)
        scores[module] = s
        print(f"{module}: {s['killed']} killed of {s['mutants'] - s['equivalent']} "
              f"({s['equivalent']} equivalent left out): {100 * s['score']:.1f}%", flush=True)
        for n, st in s["not_killed"].items():
            print(f"    {st}: {n}")
        failed |= bool(s["not_killed"]) if a.sample else s["score"] < ours["min_score"]
    BUILD.mkdir(parents=True, exist_ok=True)
    if not a.sample:
        scores_path.write_text(json.dumps(scores, indent=1) + "\n")
    return 1 if failed else 0


def module_of(mutant: str, modules: dict) -> str:
    """xor_rosetta.tolerance.x_classify__mutmut_3 -> xor_rosetta/tolerance.py (one of `modules`)."""
    for m in modules:
        if mutant.startswith(m.removesuffix(".py").replace("/", ".") + "."):
            return m
    raise SystemExit(f"sample mutant {mutant!r} is in no configured module")


if __name__ == "__main__":
    sys.exit(main())
