"""A long command says at its start what it will cost (from bench's anchors) and names a faster equivalent."""
from __future__ import annotations

import pytest

from xor_rosetta.app.run.costs import ANCHORS_US, LONG_S, cost_note, run_seconds
from xor_rosetta.presets import get_preset

pytestmark = pytest.mark.quick
SPEC = get_preset("seed-numpy")


def test_a_long_sweep_names_its_batched_equivalent():
    note = cost_note(["numpy"], SPEC, runs=2000, jobs=2, sweep=True)
    assert note is not None and "--impls numpy-batched gives numpy's verdicts faster" in note
    assert cost_note(["numpy-batched"], SPEC, runs=2000, jobs=2, sweep=True) is None  # already the fast path


def test_the_estimate_is_the_anchor_times_the_work():
    """Twice the runs, twice the seconds; the threshold for saying anything is LONG_S."""
    per_run = run_seconds("numpy", SPEC)
    assert per_run == SPEC.steps * ANCHORS_US["numpy"][1] * 1e-6
    just_under = int(LONG_S / per_run * 2) - 1  # runs that, on 2 workers, take just under LONG_S
    assert cost_note(["numpy"], SPEC, runs=just_under, jobs=2, sweep=True) is None
    assert cost_note(["numpy"], SPEC, runs=just_under + 2, jobs=2, sweep=True) is not None


def test_a_long_compare_names_the_compiled_variant():
    note = cost_note(["torch"], SPEC.replace(steps=1_000_000))
    assert note is not None and "--impls torch-compiled gives torch's verdicts faster" in note
    assert cost_note(["torch"], SPEC) is None  # seed-numpy's 10,000 steps: seconds


def test_sweep_prints_the_note_at_its_start(tmp_path, capsys):
    """The note comes before any work: a sweep refused for its output folder has already said it."""
    from xor_rosetta.app.cli import main
    (tmp_path / "file").write_text("")
    code = main(["sweep", "--preset", "seed-numpy", "--seeds", "2000", "--impls", "numpy", "--out",
                 str(tmp_path / "file" / "sub")])
    err = capsys.readouterr().err
    assert code == 2 and "--impls numpy-batched gives numpy's verdicts faster" in err
