"""The registry: lazy imports, unavailable frameworks reported with a reason and an install hint."""
from __future__ import annotations

import subprocess
import sys

import pytest

from xor_rosetta import registry
from xor_rosetta.errors import UnavailableError


def test_core_imports_no_framework():
    code = ("import sys, xor_rosetta.spec, xor_rosetta.params, xor_rosetta.reference, xor_rosetta.registry, xor_rosetta.compare, "
            "xor_rosetta.tolerance, xor_rosetta.presets, xor_rosetta.app.docs.differences, xor_rosetta.implementations.numpy_mlp; "
            "xor_rosetta.registry.load('numpy'); "
            "print(sorted(m for m in ('torch', 'tensorflow', 'keras', 'jax') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_missing_framework_is_unavailable_with_hint(monkeypatch):
    fake = registry.Entry("fake", "xor_rosetta.implementations.fake_mlp", "FakeMLP", ("no_such_framework_xyz",),
                          ("no-such-framework-xyz",), "fake", "test only")
    monkeypatch.setitem(registry.REGISTRY, "fake", fake)
    with pytest.raises(UnavailableError, match=r"'fake' is unavailable: no_such_framework_xyz not installed; "
                                                r"install with: pip install -c constraints.txt -e '.\[fake\]'"):
        registry.load("fake")
    with pytest.warns(UserWarning, match="'fake' is unavailable"):
        found = registry.available(["numpy", "fake"])
    assert list(found) == ["numpy"]


def test_broken_framework_import_is_unavailable(monkeypatch):
    fake = registry.Entry("broken", "no_such_module_xyz.mlp", "MLP", ("json",), (), "broken", "test only")
    monkeypatch.setitem(registry.REGISTRY, "broken", fake)
    with pytest.raises(UnavailableError, match="'broken' is unavailable: import failed"):
        registry.load("broken")


def test_unknown_implementation():
    with pytest.raises(UnavailableError, match="unknown implementation 'mxnet'; choose one of: numpy, torch, "
                       "torch-compiled, keras, keras-xla, jax, jax-scan, keras-jax, keras-torch"):
        registry.load("mxnet")


def test_every_entry_names_its_framework():
    for entry in registry.ENTRIES:
        assert entry.requires and entry.summary and entry.process
        assert entry.extra or entry.requires == ("numpy",)  # numpy is the core dependency: no extra needed


def test_an_attribute_error_inside_an_import_is_not_a_missing_class(tmp_path):
    """A module whose import raises AttributeError (a framework release without an API it uses, as flax 0.12.7
    with jax 0.10) is reported as that error, not as "has no class" (found by xor-rosetta matrix)."""
    (tmp_path / "old_api.py").write_text("import math\nmath.no_such_function\nclass MLP: pass\n")
    with pytest.raises(UnavailableError, match="raised AttributeError: module 'math' has no attribute"):
        registry.load(f"{tmp_path / 'old_api.py'}:MLP")
    (tmp_path / "no_class.py").write_text("x = 1\n")
    with pytest.raises(UnavailableError, match="has no class 'MLP'"):
        registry.load(f"{tmp_path / 'no_class.py'}:MLP")
