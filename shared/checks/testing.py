"""verify's checks in your own pytest suite, in the style of scikit-learn's `parametrize_with_checks`:

    from xor_rosetta.checks.testing import parametrize_with_checks
    from my_package import MyMLP

    @parametrize_with_checks([MyMLP], expected_failed_checks={"float32": "float64 only, on purpose"})
    def test_conformance(impl, check):
        check(impl)

Each (implementation, check) pair is one test, with the stable id `<name>-<check>` (`pytest -k update_adam`).
A check that fails raises AssertionError with the verdict and the diagnosis; an unsupported one is skipped with
the reason; `expected_failed_checks` (a dict check -> reason, or a callable impl -> such a dict) marks checks as
strict xfails. Checks of one implementation share their runs (one battery per implementation and process); with
pytest-xdist, they are grouped on one worker (`--dist loadgroup`).

**Known differences.** An implementation that declares a known difference for the battery's dtype
(`known_differences = {"float64": "why"}`, e.g. Keras on JAX or torch computing in float32 inside a float64 run)
gets strict expected failures, with the declared text as the reason, on exactly the checks such a difference of
precision fails: those that judge the numbers it computes against the reference in that dtype
(`xor_rosetta.checks.catalogue.precision_checks()`: every check but construction, which reads back the weights given,
determinism and continuation, which hold it to itself bit for bit, and float32, which runs in float32). Each is an
expected failure only by that difference: it raises `KnownDifference` when the failure is diagnosed as the cause
the declaration stands for (`xor_rosetta.checks.diagnose.KNOWN_CAUSES`: float32 arithmetic, in float64) and nothing
else, and the xfail accepts nothing else (`raises=KnownDifference`); any other failure fails the test, and so does
a check that passes (strict: the difference has gone, e.g. a new Keras fixed it, and the declaration should go
too). A check outside those that fails by the known difference fails its test as well.
"""
from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

from xor_rosetta.checks.battery import LEVELS, Battery
from xor_rosetta.checks.catalogue import CHECKS, precision_checks
from xor_rosetta.checks.diagnose import explain_known
from xor_rosetta.checks.judging import FAIL, SKIP

_BATTERIES: dict = {}


class KnownDifference(AssertionError):
    """A check failed by the implementation's declared known difference (diagnosed as its cause, and nothing else)."""


def impl_name(impl) -> str:
    """A registry name as given; a class by its class name; a factory by its `name` or `__name__`."""
    if isinstance(impl, str):
        return impl
    if isinstance(impl, type):
        return impl.__name__
    return str(getattr(impl, "name", None) or getattr(impl, "__name__", None) or type(impl).__name__)


def declared_known_differences(impl) -> dict:
    """`known_differences` of a class or factory; for a registry name, read from its class's source without
    importing it (importing a framework while collecting would cost seconds, and some built-ins cannot share this
    process: KERAS_BACKEND). {} where it cannot be read as a literal; `Check` compares what was read here with
    the class's own when it runs, so a misreading fails the test rather than passing unnoticed."""
    if not isinstance(impl, str):
        return dict(getattr(impl, "known_differences", None) or {})
    from xor_rosetta import registry
    if impl in registry.RUNTIME:
        return dict(getattr(registry.RUNTIME[impl][0], "known_differences", None) or {})
    try:
        entry = registry.get_entry(impl)
        path = entry.module if entry.module.endswith(".py") else importlib.util.find_spec(entry.module).origin
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except Exception:  # unknown, unimportable or unreadable: Check reports it when it runs
        return {}
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    cls, seen = classes.get(entry.cls), set()
    while cls is not None and cls.name not in seen:  # the class, then its bases defined in the same module
        seen.add(cls.name)
        for stmt in cls.body:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] \
                if isinstance(stmt, ast.AnnAssign) and stmt.value is not None else []
            if any(isinstance(t, ast.Name) and t.id == "known_differences" for t in targets):
                try:
                    found = ast.literal_eval(stmt.value)
                except ValueError:
                    return {}
                return dict(found) if isinstance(found, dict) else {}
        cls = next((classes[b.id] for b in cls.bases if isinstance(b, ast.Name) and b.id in classes), None)
    return {}


class Check:
    """One named check, callable on an implementation: `check(impl)`.

    `known`: the declared known difference parametrize_with_checks expects this check to fail by (its xfail's
    reason), None where it expects none."""

    def __init__(self, cid: str, level: str = "quick", dtype: str = "float64", known: str | None = None):
        if cid not in CHECKS:
            raise ValueError(f"unknown check {cid!r}; choose from: {', '.join(CHECKS)}")
        if level not in LEVELS:
            raise ValueError(f"unknown level {level!r}; choose from: {', '.join(LEVELS)}")
        self.id, self.level, self.dtype, self.known = cid, level, dtype, known
        self.__name__ = cid

    def __repr__(self) -> str:
        return self.id

    def __call__(self, impl) -> None:
        import pytest
        key = (impl, self.level, self.dtype)
        if key not in _BATTERIES:
            _BATTERIES[key] = Battery(impl, self.dtype, self.level, explain=explain_known)
        battery = _BATTERIES[key]
        declared = battery.known_difference if self.id in precision_checks() else None
        if self.known is not None and declared != self.known:
            raise AssertionError(f"{impl_name(impl)}: {self.id}: expected to fail by the known difference "
                                 f"{self.known!r} (read when the tests were collected), but the class declares "
                                 f"{declared!r} for {self.dtype}")
        result = battery.run(self.id)
        if result.status == SKIP:
            pytest.skip(result.verdict)
        if result.status == FAIL:
            from xor_rosetta.checks.diagnose import diagnose
            d = result.diagnosis or diagnose(battery, result)
            lines = [f"{impl_name(impl)}: {self.id}: {result.verdict}"] + d.lines()
            if result.known is None:
                raise AssertionError("\n".join(lines))
            lines.insert(1, f"known difference: {result.known}")
            if self.known is None:  # not an expected failure of this test: say why
                lines.insert(0, f"{impl_name(impl)}: {self.id} fails by its declared known difference, which was not "
                             + ("read when the tests were collected (give the class rather than its name)"
                                if declared else "expected here: this check does not judge its arithmetic against "
                                                 f"the reference in {self.dtype}"))
            raise KnownDifference("\n".join(lines))


def parametrize_with_checks(impls, *, expected_failed_checks=None, level: str = "quick", dtype: str = "float64",
                            checks=None, marks=None):
    """`pytest.mark.parametrize("impl, check", ...)` over every implementation and check (or the ids `checks`).

    `impls`: classes, factories `(spec, params) -> MLP`, or registry names (built-ins, plug-ins, `module:Class`,
    `file.py:Class`). `level`: "quick" (the default here) or "full", as `xor-rosetta verify [--quick]`.

    Expected failures: those of `expected_failed_checks` (strict, any failure), and, for an implementation that
    declares a known difference in `dtype`, the checks of `xor_rosetta.checks.catalogue.precision_checks()` (strict, with
    the declared text as the reason, and only a failure by that difference: see the module's docstring). A check
    named in `expected_failed_checks` keeps the reason given there. `marks(impl)`: more pytest marks for every check
    of `impl` (say, `[pytest.mark.slow]`).
    """
    import pytest
    grouped = importlib.util.find_spec("xdist") is not None
    extra = marks or (lambda impl: ())
    params = []
    for impl in impls:
        name = impl_name(impl)
        expected = expected_failed_checks(impl) if callable(expected_failed_checks) else (expected_failed_checks or {})
        unknown = [c for c in list(expected) + list(checks or ()) if c not in CHECKS]
        if unknown:
            raise ValueError(f"unknown check {unknown[0]!r}; choose from: {', '.join(CHECKS)}")
        known = declared_known_differences(impl).get(dtype)
        for cid in checks or CHECKS:
            marks = [pytest.mark.xdist_group(f"xor-rosetta-{name}")] if grouped else []
            marks += list(extra(impl))
            by_known = known if cid in precision_checks() and cid not in expected else None
            if cid in expected:
                marks.append(pytest.mark.xfail(reason=expected[cid], strict=True))
            elif by_known is not None:
                marks.append(pytest.mark.xfail(reason=by_known, strict=True, raises=KnownDifference))
            params.append(pytest.param(impl, Check(cid, level, dtype, by_known), id=f"{name}-{cid}", marks=marks))
    return pytest.mark.parametrize("impl, check", params)
