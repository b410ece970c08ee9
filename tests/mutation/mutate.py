"""Mutation testing with mutmut, one module at a time, on a copy of the tree laid out as installed.

mutmut mutates files under the folder it runs in and imports them as the tests do; here the package's modules live
elsewhere (shared/ -> xor_rosetta, implementations/ -> xor_rosetta.implementations: pyproject.toml's package-dir),
so for each module this builds build/mutation/<module>/ with xor_rosetta/ as installed, the tests and results/,
and a pyproject.toml holding this repository's [tool.mutmut] settings, the module to mutate and its tests
([tool.xor-rosetta-mutation.modules]), then runs `mutmut run` there, niced, and reads its verdicts back.

    .venv/bin/python tests/mutation/mutate.py                      # every module configured, one after another
    .venv/bin/python tests/mutation/mutate.py xor_rosetta/tolerance.py xor_rosetta/app/sweep/plan.py
    .venv/bin/python tests/mutation/mutate.py --sample             # CI: the fixed sample of modules, every mutant killed

Each module's score is written to build/mutation/scores.json and printed; mutants listed as equivalent
([tool.xor-rosetta-mutation.equivalent], with the reason) are left out of the score, and any other survivor is
listed. The exit status is 1 when a module scores under `min_score` (with --sample, when any mutant of the sample's
modules that is not listed as equivalent survives), else 0. Not part of the default suite: docs/development.md, "Mutation testing".
"""
from __future__ import annotations

import argparse
import datetime
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
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
    write_config(where, module, tests, mutmut)
    (where / "mutants").mkdir()  # on PYTHONPATH from the start: worker processes import the mutated tree too
    return where


def write_config(where: Path, module: str, tests: list[str], mutmut: dict) -> None:
    """where/pyproject.toml: this repository's [tool.mutmut] settings, the module to mutate, its tests, and pytest's."""
    pytest_ini = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    lines = ["[tool.mutmut]"]
    settings = {**mutmut, "source_paths": ["xor_rosetta"], "only_mutate": [module], "also_copy": EXTRAS,
                "pytest_add_cli_args_test_selection": tests}
    lines += [f"{k} = {toml_value(v)}" for k, v in settings.items()]
    lines += ["", "[tool.pytest.ini_options]"] + [f"{k} = {toml_value(v)}" for k, v in pytest_ini.items()]
    (where / "pyproject.toml").write_text("\n".join(lines) + "\n")


def refresh(module: str, tests: list[str], mutmut: dict) -> Path:
    """The last run's build/mutation/<module>/ with today's tests and selection, and today's other modules (--again);
    the module itself must be as it was: its mutants are that run's."""
    where = BUILD / module.removesuffix(".py").replace("/", ".")
    if not (where / "mutants").is_dir():
        raise SystemExit(f"{module} has no earlier run in {where}: run it in full first")
    rel = Path(module).relative_to("xor_rosetta")
    if (ROOT / "shared" / rel).read_bytes() != (where / module).read_bytes():
        raise SystemExit(f"{module} changed since its last run: run it in full")
    for ours, dest in ((ROOT / "shared", Path("xor_rosetta")),
                       (ROOT / "implementations", Path("xor_rosetta/implementations"))):
        for p in ours.rglob("*.py"):
            r = p.relative_to(ours)
            if "__pycache__" in r.parts or (ours.name == "shared" and r.parts[0] == "implementations"):
                continue
            target = dest / r
            if target.as_posix() != module and (not (where / target).is_file()
                                                or (where / target).read_bytes() != p.read_bytes()):
                for base in (where, where / "mutants"):  # the tree as built, and mutmut's copy of it
                    (base / target).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(p, base / target)
    shutil.rmtree(where / "tests")
    shutil.copytree(ROOT / "tests", where / "tests", ignore=IGNORE)
    # which tests call which function, collected again from today's tests (mutmut would keep the last run's map)
    (where / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
    write_config(where, module, tests, mutmut)
    return where


STATUS = re.compile(r"^\s*(?P<name>[\w.]+__mutmut_\d+): (?P<status>.+?)\s*$")


def run_module(module: str, tests: list[str], mutmut: dict, max_children: int, collect: bool = False,
               again: list[str] | None = None) -> dict:
    """mutmut's verdict on each mutant of `module` (`collect`: read those of a run cut short, without running;
    `again`: rerun these mutants of the last run, with today's tests)."""
    if collect:
        where = BUILD / module.removesuffix(".py").replace("/", ".")
    else:
        where = refresh(module, tests, mutmut) if again is not None else build(module, tests, mutmut)
    # a test past the wall fails (tests/conftest.py): a mutant that makes a test wait forever is caught, not waited on
    env = {**os.environ, "PYTHONPATH": str(where / "mutants"),
           "XOR_ROSETTA_TEST_WALL_S": str(config()[1]["test_wall_s"])}
    mm = str(Path(sys.executable).with_name("mutmut"))
    cmd = ["nice", "-n", "15", mm, "run", "--max-children", str(max_children), *(again or [])]
    if again == []:
        collect = True  # nothing left to rerun: the last verdicts stand
    if not collect:
        print(f"== {module}: {' '.join(cmd[3:7])}{f' ({len(again)} mutants again)' if again else ''} "
              f"(tests: {' '.join(tests)})", flush=True)
        with open(where / "run.log", "w") as log:  # mutmut's progress, as it goes
            subprocess.run(cmd, cwd=where, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    statuses = _statuses(mm, where, env)
    lost = [n for n, st in statuses.items() if st == "not checked" and (again is None or n in again)]
    if lost and not collect:  # mutmut 3.8 can end a run with results still pending: those mutants run once more
        print(f"   {len(lost)} mutants left unchecked by mutmut: once more", flush=True)
        with open(where / "run.log", "a") as log:
            subprocess.run(cmd[:7] + lost, cwd=where, env=env, stdout=log, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL)
        statuses = _statuses(mm, where, env)
    slow = [n for n, st in statuses.items() if st == "timeout" and (again is None or n in again)]
    if slow and not collect:  # past mutmut's limit under load is no verdict: each is run again, alone, to confirm
        print(f"   {len(slow)} mutants past mutmut's time limit: again, one at a time", flush=True)
        with open(where / "run.log", "a") as log:
            subprocess.run(cmd[:5] + ["--max-children", "1"] + slow, cwd=where, env=env, stdout=log,
                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        statuses = _statuses(mm, where, env)
    if not statuses:
        print((where / "run.log").read_text()[-3000:])
        raise SystemExit(f"mutmut gave no verdicts for {module}: see {where / 'run.log'}")
    return statuses


def _statuses(mm: str, where: Path, env: dict) -> dict:
    res = subprocess.run([mm, "results", "--all", "true"], cwd=where, env=env, text=True, capture_output=True)
    return {m["name"]: m["status"] for m in (STATUS.match(line) for line in res.stdout.splitlines()) if m}


KILLED = ("killed", "timeout")  # a mutant that makes its tests run past mutmut's limit is caught: CI would hang


def is_equivalent(name: str, equivalent: dict) -> bool:
    """Listed by name, or by a pattern (fnmatch) such as a whole dead method's `...__mutmut_*`."""
    return name in equivalent or any("*" in p and fnmatch.fnmatchcase(name, p) for p in equivalent)


def score(module: str, statuses: dict, equivalent: dict, date: str | None = None) -> dict:
    eq = sorted(n for n in statuses if is_equivalent(n, equivalent))
    live = {n: s for n, s in statuses.items() if n not in eq}
    killed = sorted(n for n, s in live.items() if s in KILLED)
    survived = sorted(n for n, s in live.items() if s not in KILLED)
    return {"module": module, "mutants": len(statuses), "equivalent": len(eq), "killed": len(killed),
            "not_killed": {n: live[n] for n in survived},
            "score": round(len(killed) / len(live), 4) if live else 1.0,
            "date": date or datetime.date.today().isoformat(), "statuses": statuses}


def main(argv=None) -> int:
    mutmut, ours = config()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("modules", nargs="*", help="modules to mutate, as installed (xor_rosetta/tolerance.py); "
                                                "default: every one in [tool.xor-rosetta-mutation.modules]")
    ap.add_argument("--sample", action="store_true", help="the fixed sample of modules, every mutant killed (CI)")
    ap.add_argument("--max-children", type=int, default=1, help="mutants tested at once (default 1)")
    ap.add_argument("--collect", action="store_true", help="read the verdicts of runs cut short (not checked: not "
                                                            "killed) into scores.json, without running")
    ap.add_argument("--again", action="store_true", help="rerun only the mutants each module's last run did not kill "
                                                          "or did not reach (a run cut short), with today's tests")
    ap.add_argument("--results", action="store_true", help="write results/mutation.md from build/mutation/scores.json "
                                                            "(the modules run so far) and exit")
    a = ap.parse_args(argv)
    if a.results:
        write_results(json.loads((BUILD / "scores.json").read_text()), ours)
        return 0
    modules = ours["modules"]
    if a.sample:
        todo = list(ours["sample"])
    else:
        unknown = [m for m in a.modules if m not in modules]
        if unknown:
            ap.error(f"not configured in [tool.xor-rosetta-mutation.modules]: {', '.join(unknown)}")
        todo = list(a.modules or modules)
    equivalent = ours.get("equivalent", {})
    scores_path = BUILD / "scores.json"
    scores = {}
    failed = False
    for module in todo:
        again = None
        if a.again:  # the last run's verdicts, a run cut short too: its mutants not yet checked are not killed
            last = run_module(module, modules[module], mutmut, a.max_children, collect=True)
            again = [n for n, st in sorted(last.items())  # a timeout too: confirmed again
                     if st != "killed" and not is_equivalent(n, equivalent)]
        statuses = run_module(module, modules[module], mutmut, a.max_children, a.collect, again)
        s = score(module, statuses, equivalent)
        scores[module] = s
        print(f"{module}: {s['killed']} killed of {s['mutants'] - s['equivalent']} "
              f"({s['equivalent']} equivalent left out): {100 * s['score']:.1f}%", flush=True)
        for n, st in s["not_killed"].items():
            print(f"    {st}: {n}")
        for n in sorted(n for n, st in statuses.items() if st in KILLED and is_equivalent(n, equivalent)):
            print(f"    listed as equivalent, but killed: {n} (a changed function numbers its mutants anew: "
                  f"is the entry's reason still this mutant's?)")
        failed |= bool(s["not_killed"]) if a.sample else s["score"] < ours["min_score"]  # the sample: all killed
        if not a.sample:  # after each module, merged with what is there now: another run may have written it
            BUILD.mkdir(parents=True, exist_ok=True)
            merged = json.loads(scores_path.read_text()) if scores_path.exists() else {}
            scores_path.write_text(json.dumps({**merged, module: s}, indent=1) + "\n")
    return 1 if failed else 0


KEEP = "## The seven mutants of issue 24"  # results/mutation.md from this heading on is written by hand, and kept


def write_results(scores: dict, ours: dict) -> None:
    """results/mutation.md: each module's score with its date, the command, the equivalent mutants and why, and
    the mutants not killed."""
    out = ["# Mutation testing", "",
           "mutmut (`tests/mutation/mutate.py`, configured in `pyproject.toml`; docs/development.md, \"Mutation testing\"). "
           "Score: killed / (mutants - equivalent). Written by `tests/mutation/mutate.py --results` from the last runs.", "",
           "| module | date | command | mutants | equivalent | killed | not killed | score |",
           "|---|---|---|---:|---:|---:|---:|---:|"]
    equivalent = ours.get("equivalent", {})
    scores = {m: score(m, s["statuses"], equivalent, s["date"]) for m, s in scores.items()}  # today's list
    for m in sorted(scores, key=list(ours["modules"]).index):
        s = scores[m]
        unchecked = sum(st == "not checked" for st in s["not_killed"].values())
        shown = f"{100 * s['score']:.1f}%" if not unchecked else \
            f"cut short: {s['mutants'] - unchecked} of {s['mutants']} checked"  # no score for a run cut short
        out.append(f"| `{m}` | {s['date']} | `tests/mutation/mutate.py {m}` | {s['mutants']} | {s['equivalent']} | "
                   f"{s['killed']} | {len(s['not_killed'])} | {shown} |")
    not_run = [m for m in ours["modules"] if m not in scores]
    if not_run:
        out += ["", "Configured, not yet run: " + ", ".join(f"`{m}`" for m in not_run) + "."]
    out += ["", "## Equivalent mutants", "", "Left out of the scores: they cannot change behaviour.", ""]
    out += [f"- `{n}`: {why}" for n, why in ours.get("equivalent", {}).items()]
    out += ["", "## Not killed", "", "Survivors (a test could kill them, and none does yet), and mutants no selected "
            "test reaches (\"no tests\": code run only in worker processes, or by tests outside the module's "
            "selection), and \"not checked\": mutants a run cut short did not reach (`--collect`).", ""]
    for m in sorted(scores, key=list(ours["modules"]).index):
        by: dict[str, list[str]] = {}
        for n, st in scores[m]["not_killed"].items():
            by.setdefault(st, []).append(n.split(".")[-1])
        for st, names in sorted(by.items()):
            out.append(f"- `{m}`, {st} ({len(names)}): " + ", ".join(f"`{n}`" for n in sorted(names)))
    path = ROOT / "results" / "mutation.md"
    kept = path.read_text().split(KEEP, 1) if path.exists() else []  # the hand-written part, after KEEP
    tail = [KEEP + kept[1]] if len(kept) == 2 else []
    path.write_text("\n".join(out + [""] + tail).rstrip("\n") + "\n")


if __name__ == "__main__":
    sys.exit(main())
