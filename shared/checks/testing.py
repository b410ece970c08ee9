"""verify's checks in your own pytest suite, in the style of scikit-learn's `parametrize_with_checks`:

    from xor_rosetta.checks import parametrize_with_checks
    from my_package import MyMLP

    @parametrize_with_checks([MyMLP], expected_failed_checks={"float32": "float64 only, on purpose"})
    def test_conformance(impl, check):
        check(impl)

Each (implementation, check) pair is one test, with the stable id `<name>-<check>` (`pytest -k update_adam`).
A check that fails raises AssertionError with the verdict and the diagnosis; an unsupported one is skipped with
the reason; `expected_failed_checks` (a dict check -> reason, or a callable impl -> such a dict) marks checks as
strict xfails. Checks of one implementation share their runs (one battery per implementation, dtype, level and
strictness, in each process); with pytest-xdist, they are grouped on one worker (`--dist loadgroup`).

An implementation that declares a known difference for the battery's dtype (`known_differences = {"float64":
"LABEL: why"}`: float32 arithmetic inside a float64 run, as Keras on JAX and torch) is judged under its model, as
`verify` does: the checks pass where the difference has its modelled size, and fail for anything else. `strict=True`
judges it in the dtype itself, where the difference fails.
"""
from __future__ import annotations

import importlib.util

from xor_rosetta.checks.battery import LEVELS, Battery
from xor_rosetta.checks.catalogue import CHECKS
from xor_rosetta.checks.diagnose import diagnose
from xor_rosetta.checks.judging import FAIL, SKIP

_BATTERIES: dict = {}


def impl_name(impl) -> str:
    """A registry name as given; a class by its class name; a factory by its `name` or `__name__`."""
    if isinstance(impl, str):
        return impl
    if isinstance(impl, type):
        return impl.__name__
    return str(getattr(impl, "name", None) or getattr(impl, "__name__", None) or type(impl).__name__)


class Check:
    """One named check, callable on an implementation: `check(impl)`."""

    def __init__(self, cid: str, level: str = "quick", dtype: str = "float64", strict: bool = False):
        if cid not in CHECKS:
            raise ValueError(f"unknown check {cid!r}; choose from: {', '.join(CHECKS)}")
        if level not in LEVELS:
            raise ValueError(f"unknown level {level!r}; choose from: {', '.join(LEVELS)}")
        self.id, self.level, self.dtype, self.strict = cid, level, dtype, strict
        self.__name__ = cid

    def __repr__(self) -> str:
        return self.id

    def __call__(self, impl) -> None:
        import pytest
        key = (impl, self.level, self.dtype, self.strict)
        if key not in _BATTERIES:
            _BATTERIES[key] = Battery(impl, self.dtype, self.level, self.strict)
        battery = _BATTERIES[key]
        result = battery.run(self.id)
        if result.status == SKIP:
            pytest.skip(result.verdict)
        if result.status == FAIL:
            d = result.diagnosis or diagnose(battery, result)
            raise AssertionError("\n".join([f"{impl_name(impl)}: {self.id}: {result.verdict}"] + d.lines()))


def parametrize_with_checks(impls, *, expected_failed_checks=None, level: str = "quick", dtype: str = "float64",
                            checks=None, marks=None, strict: bool = False):
    """`pytest.mark.parametrize("impl, check", ...)` over every implementation and check (or the ids `checks`).

    `impls`: classes, factories `(spec, params) -> MLP`, or registry names (built-ins, plug-ins, `module:Class`,
    `file.py:Class`). `level`: "quick" (the default here) or "full", as `xor-rosetta verify [--quick]`. `strict`: a
    declared known difference fails instead of being judged under its model, as `verify --strict`.
    `expected_failed_checks`: strict xfails, with the reasons given. `marks(impl)`: more pytest marks for every
    check of `impl` (say, `[pytest.mark.slow]`).
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
        for cid in checks or CHECKS:
            cmarks = [pytest.mark.xdist_group(f"xor-rosetta-{name}")] if grouped else []
            cmarks += list(extra(impl))
            if cid in expected:
                cmarks.append(pytest.mark.xfail(reason=expected[cid], strict=True))
            params.append(pytest.param(impl, Check(cid, level, dtype, strict), id=f"{name}-{cid}", marks=cmarks))
    return pytest.mark.parametrize("impl, check", params)
