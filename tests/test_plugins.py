"""Implementations from outside the project: an installed package's entry point (`xor_rosetta.implementations`),
`package.module:ClassName` and `path/to/file.py:ClassName`, through list, train, compare and verify."""
from __future__ import annotations

import json

import pytest

from xor_rosetta import registry
from xor_rosetta.app.cli import main

DEMO = '''
from xor_rosetta.implementations.numpy_mlp import NumpyMLP


class DemoMLP(NumpyMLP):
    name = "demo"
'''

DUCK = '''
from xor_rosetta.implementations.numpy_mlp import NumpyMLP


class MyMLP:
    """Duck-typed: no MLP base class, no conventions, no supports; it delegates the maths."""

    def __init__(self, spec, params):
        self.inner = NumpyMLP(spec, params)

    def forward(self, x):
        return self.inner.forward(x)

    def loss(self, x, y):
        return self.inner.loss(x, y)

    def gradients(self, x, y):
        return self.inner.gradients(x, y)

    def train(self, x, y, steps=None, checkpoints=()):
        return self.inner.train(x, y, steps, checkpoints)

    def params(self):
        return self.inner.params()
'''


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """A folder on sys.path as pip leaves site-packages: two packages, and a dist-info whose entry points declare
    `demo` (works) and `broken` (its import raises)."""
    (tmp_path / "xr_plugin_demo").mkdir()
    (tmp_path / "xr_plugin_demo" / "__init__.py").write_text(DEMO)
    (tmp_path / "xr_plugin_broken").mkdir()
    (tmp_path / "xr_plugin_broken" / "__init__.py").write_text("raise RuntimeError('boom: no licence file')\n")
    info = tmp_path / "xr_plugin_demo-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: xr-plugin-demo\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[xor_rosetta.implementations]\ndemo = xr_plugin_demo:DemoMLP\n"
                                           "broken = xr_plugin_broken:BrokenMLP\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_entry_points_are_discovered(installed):
    found = {e.name: e for e in registry.plugins()}
    assert {"demo", "broken"} <= set(found)
    assert (found["demo"].module, found["demo"].cls, found["demo"].dists) == ("xr_plugin_demo", "DemoMLP",
                                                                              ("xr-plugin-demo",))
    assert registry.load("demo").__name__ == "DemoMLP"
    with pytest.raises(registry.UnavailableError, match="'broken' is unavailable: importing xr_plugin_broken raised "
                                                        "RuntimeError: boom: no licence file"):
        registry.load("broken")


def test_list_shows_plugins_and_why_one_is_unavailable(installed, capsys):
    assert main(["list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["demo"]["available"] and rows["demo"]["plugin"] and rows["demo"]["versions"] == {"xr-plugin-demo": "1.0"}
    assert not rows["broken"]["available"] and "boom: no licence file" in rows["broken"]["reason"]
    assert rows["numpy"]["available"] and not rows["numpy"]["plugin"]  # the others are untouched


def test_compare_runs_plugins_and_refuses_the_broken_one(installed, capsys):
    """A plug-in whose import raises is bad input, as in verify (issue 22): exit 2, one line, nothing run."""
    assert main(["compare", "--preset", "seed-numpy", "--steps", "500", "--impls", "numpy,demo,broken",
                 "--out", "bad", "--json", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--impls: 'broken' cannot be used: importing xr_plugin_broken raised RuntimeError: boom" in err
    assert len(err.strip().splitlines()) == 1 and not (installed / "bad").exists()
    code = main(["compare", "--preset", "seed-numpy", "--steps", "500", "--impls", "numpy,demo",
                 "--out", "out", "--json", "--quiet"])
    rows = {r["implementation"]: r for r in json.loads(capsys.readouterr().out)["implementations"]}
    assert code == 0
    assert rows["demo"]["verdict"] == "agrees, converged" and rows["numpy"]["verdict"] == "agrees, converged"


def test_file_and_module_forms_through_train_and_compare(installed, capsys):
    (installed / "my_mlp.py").write_text(DUCK)
    assert main(["train", "--impl", "my_mlp.py:MyMLP", "--preset", "seed-numpy", "--steps", "50", "--out", "t",
                 "--quiet"]) == 0
    history = json.loads((installed / "t" / "history.json").read_text())
    assert history["implementation"] == "my_mlp.py:MyMLP" and len(history["loss"]) == 50
    capsys.readouterr()
    code = main(["compare", "--preset", "seed-numpy", "--steps", "500", "--impls",
                 "my_mlp.py:MyMLP,xr_plugin_demo:DemoMLP", "--out", "c", "--json", "--quiet"])
    rows = {r["implementation"]: r["verdict"] for r in json.loads(capsys.readouterr().out)["implementations"]}
    assert code == 0 and rows == {"my_mlp.py:MyMLP": "agrees, converged", "xr_plugin_demo:DemoMLP": "agrees, converged"}


def test_verify_takes_every_form(installed, capsys):
    (installed / "my_mlp.py").write_text(DUCK)
    for target in ("demo", "xr_plugin_demo:DemoMLP", "my_mlp.py:MyMLP"):
        assert main(["verify", target, "--checks", "construction,forward,update_adam", "--out", "v", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.count("3 passed, 0 failed, 0 skipped") == 3


def test_unknown_or_missing_is_bad_input(installed, capsys):
    assert main(["verify", "no_such_file.py:MLP", "--quiet"]) == 2
    assert main(["train", "--impl", "xr_plugin_broken:BrokenMLP", "--preset", "seed-numpy", "--quiet"]) == 2
    assert main(["check", "--impls", "xr_plugin_demo:DemoMLP"]) == 2  # golden files exist for the built-ins only
    err = capsys.readouterr().err
    assert "file 'no_such_file.py' does not exist" in err and "boom: no licence file" in err
    assert "'xr_plugin_demo:DemoMLP' has none (compare or verify it instead)" in err
