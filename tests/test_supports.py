"""A richer `supports` (uniform hidden activations, a minimum width, losses by output) and a constructor that
declines a spec (xor_rosetta.errors.Unsupported): verify, compare and train honour them, and never hand such a
class a spec it rules out (each test class raises ValueError if they do)."""
from __future__ import annotations

import json

import pytest

from xor_rosetta.app.cli import main
from xor_rosetta.checks import BadTarget, Battery, verify
from xor_rosetta.checks.subject import subject_for
from xor_rosetta.spec import Spec

from impls import outside


@pytest.mark.parametrize("cls, status, why", [  # activations_losses: both its scripts, or one, ruled out
    (outside.UniformOnly, "skip", "act-mse: hidden activations tanh/sigmoid differ, and it declares "
                                  "uniform_hidden_activations"),
    (outside.ByOutput, "pass", "not run: act-mse: mse on a relu output is not among its declared losses_by_output"),
])
def test_a_declared_restriction_skips_what_needs_more(cls, status, why):
    r = verify(cls, level="quick")
    assert r.passed, "\n".join(r.lines())
    row = next(x for x in r.results if x.id == "activations_losses")
    assert row.status == status and why in f"{row.verdict}; {row.detail}", (row.verdict, row.detail)


def test_random_specs_honour_the_minimum_width():
    """20 random specs, every hidden layer at least 3 wide (the class raises on a narrower one)."""
    r = verify(outside.WideOnly, ids=["random_specs", "forward", "activations_losses"])
    assert r.passed, "\n".join(r.lines())
    assert r.results[0].data["counts"]["agree"] + r.results[0].data["counts"]["within rounding noise"] > 0
    narrow = Spec(layers=(2, 2, 1), activations=("tanh", "linear"))
    assert subject_for(outside.WideOnly).unsupported(narrow) == \
        "a hidden layer of width 2 is narrower than its declared min_width 3"


@pytest.mark.parametrize("supports, message", [
    ({"min_width": 0}, "supports['min_width'] must be a positive int, got 0"),
    ({"uniform_hidden_activations": "yes"}, "supports['uniform_hidden_activations'] must be True or False"),
    ({"losses_by_output": {"softmax": ["mse"]}}, "supports['losses_by_output'] maps output activations"),
])
def test_a_bad_declaration_is_bad_input(supports, message):
    cls = type("Bad", (outside.NumpyMLP,), {"supports": supports})
    with pytest.raises(BadTarget, match=message.replace("[", r"\[").replace("]", r"\]")):
        Battery(cls)


def test_a_constructor_that_declines_is_skipped_with_its_reason():
    r = verify(outside.NoMomentum, level="quick")
    assert r.passed, "\n".join(r.lines())
    rows = {x.id: x for x in r.results}
    for check in ("update_momentum", "minibatch_order", "determinism"):
        assert rows[check].status == "skip"
        assert rows[check].verdict == "unsupported: no momentum here (its constructor declines)"
    assert rows["update_adam"].status == "pass" and rows["continuation"].status == "pass"  # Adam's split still runs


def test_compare_and_train_honour_a_constructor_that_declines(tmp_path, capsys):
    target = "tests/impls/outside.py:NoMomentum"
    spec = tmp_path / "m.toml"
    spec.write_text('layers = [2, 5, 1]\nactivations = ["tanh", "linear"]\nloss = "mse"\nsteps = 200\n'
                    '[optimizer]\nname = "sgd"\nlr = 0.05\nmomentum = 0.9\n')
    code = main(["compare", "--config", str(spec), "--impls", f"numpy,{target}", "--out", str(tmp_path / "c"),
                 "--quiet", "--json"])
    rows = {r["implementation"]: r["verdict"] for r in json.loads(capsys.readouterr().out)["implementations"]}
    assert rows[target] == "unsupported: no momentum here"
    assert code == (0 if rows["numpy"].endswith(", converged") else 1)
    assert main(["train", "--impl", target, "--config", str(spec), "--out", str(tmp_path / "t"), "--quiet"]) == 2
    assert "does not support this spec: no momentum here" in capsys.readouterr().err


def test_verify_in_a_worker_skips_what_its_constructor_declines(tmp_path, capsys):
    """The command runs the target in a worker: Unsupported comes back across the pipe as itself."""
    code = main(["verify", "tests/impls/outside.py:NoMomentum", "--quick", "--checks", "update_sgd,update_momentum",
                 "--out", str(tmp_path), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "unsupported: no momentum here (its constructor declines)" in out and "1 passed, 0 failed, 1 skipped" in out
