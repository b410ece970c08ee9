"""verify's `random_specs` check: specs and initial weights drawn by Hypothesis among the options an implementation
supports, each run judged against the reference with its own rounding floor (the property tests' method)."""
from __future__ import annotations

import tempfile
from contextlib import contextmanager

import numpy as np

from xor_rosetta.params import shapes
from xor_rosetta.spec import Optimizer, Spec
from xor_rosetta.tolerance import AGREES, DISAGREES, ILL, NOISE
from xor_rosetta.checks.judging import FAIL, PASS, CheckResult, SkipCheck, compare
from xor_rosetta.checks.scripts import Script, run_script

PARTS = ("forward", "loss0", "gradients", "train")


def strategy(supports: dict, dtype: str, steps: int):
    """(spec, params): 1-3 hidden layers of width 1-8 (or min_width), activations, loss and output, optimizer,
    batch among `supports`."""
    from hypothesis import strategies as st

    acts = [a for a in ("tanh", "sigmoid", "relu", "linear") if a in supports["activations"]]
    outs = [a for a in ("tanh", "sigmoid", "relu", "linear") if a in supports["output_activations"]]
    by_output = supports["losses_by_output"]
    pairs = [(x, a) for x in ("mse", "bce") if x in supports["losses"] for a in outs if (x == "mse" or a == "sigmoid")
             and (by_output is None or x in by_output.get(a, ()))]  # (loss, output activation)
    losses = sorted({x for x, _ in pairs}, key=("mse", "bce").index)
    narrow = supports["min_width"]
    kinds = [k for k in ("sgd", "momentum", "adam") if k in supports["optimizers"]]
    depths = [d for d in (1, 2, 3) if d in supports["hidden_layers"]]
    batches = list(supports["batch_sizes"])

    @st.composite
    def draw(d):
        hidden = [d(st.integers(narrow, max(8, narrow))) for _ in range(d(st.sampled_from(depths)))]
        loss = d(st.sampled_from(losses))
        activations = [d(st.sampled_from(acts)) for _ in hidden]
        if supports["uniform_hidden_activations"]:
            activations = activations[:1] * len(hidden)
        outputs = [a for x, a in pairs if x == loss]
        activations.append(outputs[0] if len(outputs) == 1 else d(st.sampled_from(outputs)))
        lr, kind = d(st.floats(1e-3, 1.0)), d(st.sampled_from(kinds))
        if kind == "adam":
            opt = Optimizer("adam", lr=lr, beta1=d(st.floats(0.5, 0.99)), beta2=d(st.floats(0.9, 0.9999)),
                            epsilon=d(st.sampled_from([1e-8, 1e-7, 1e-4])))
        else:
            opt = Optimizer("sgd", lr=lr, momentum=d(st.sampled_from([0.5, 0.9])) if kind == "momentum" else 0.0)
        spec = Spec(layers=(2, *hidden, 1), activations=tuple(activations), loss=loss, optimizer=opt, steps=steps,
                    batch_size=d(st.sampled_from(batches)), dtype=dtype)
        rng = np.random.default_rng(d(st.integers(0, 2 ** 32 - 1)))
        scale = d(st.floats(0.1, 2.0))
        return spec, [(rng.uniform(-scale, scale, w), rng.uniform(-scale, scale, b)) for w, b in shapes(spec)]
    if not (acts and losses and kinds and depths and batches):
        return None
    return draw()


def describe_spec(spec: Spec) -> str:
    o = spec.optimizer
    opt = (f"adam lr={o.lr:.3g} b1={o.beta1:.3g} b2={o.beta2:.4g} eps={o.epsilon:g}" if o.name == "adam" else
           f"sgd lr={o.lr:.3g}" + (f" momentum={o.momentum:g}" if o.momentum else ""))
    return (f"layers {list(spec.layers)}, {'/'.join(spec.activations)}, {spec.loss}, {opt}, "
            f"batch {spec.batch_size or 'full'}, {spec.dtype}")


class _Found(Exception):
    pass


@contextmanager
def _storage_elsewhere():
    """Hypothesis' files (its database is off; its cache of the constants in the code it runs is not) in a
    temporary folder, removed after, instead of .hypothesis/ in the working directory; its own setting restored."""
    from hypothesis import configuration
    before = vars(configuration).get("__hypothesis_home_directory")
    with tempfile.TemporaryDirectory(prefix="xor-rosetta-hypothesis-") as tmp:
        configuration.set_hypothesis_home_dir(tmp)
        try:
            yield
        finally:
            configuration.set_hypothesis_home_dir(before)


def run_random(b, examples: int, steps: int) -> CheckResult:
    try:
        from hypothesis import HealthCheck, Phase, given, settings
    except ImportError:
        raise SkipCheck("hypothesis is not installed (pip install hypothesis)") from None
    draw = strategy(b.subject.supports, b.dtype, steps)
    if draw is None:
        raise SkipCheck("unsupported: its declared options leave nothing to draw")
    counts = {"agree": 0, "within rounding noise": 0, "ill-conditioned": 0, "diverged": 0, "declined": 0}
    found, closest = [], []

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=draw)
    def run(case):
        if found:
            raise _Found
        spec, params = case
        script = Script(f"random-{sum(counts.values()) + 1}", spec, params, True, (steps,), (1, steps))
        conv = b.conventions(spec)
        ref = b.reference(script, conv)
        if not np.all(np.isfinite(ref.loss)):
            counts["diverged"] += 1
            return
        b.scripts[script.key] = script
        got = b.records[script.key] = run_script(b.subject.factory, script)
        if got.declined is not None:  # its constructor declines this spec: set aside, as unsupported
            counts["declined"] += 1
            return
        outcome = compare(b, script, got, ref, conv, PARTS, b.policy(spec))
        if outcome.status == DISAGREES:
            found.append((script, outcome, conv))
            raise _Found
        counts[{NOISE: "within rounding noise", ILL: "ill-conditioned"}.get(outcome.status, "agree")] += 1
        if outcome.status == AGREES and (not closest or outcome.ratio > closest[0].ratio):
            closest[:] = [outcome]

    try:
        with _storage_elsewhere():
            run()
    except _Found:
        pass
    except Exception:
        if not found:
            raise
    tally = ", ".join(f"{v} {k}" for k, v in counts.items() if v) or "none"
    n = sum(counts.values())
    if found:
        script, o, conv = found[0]
        return CheckResult("random_specs", FAIL, f"DISAGREES: {o.words}", o.diff, o.allowed,
                           f"example {n + 1} ({describe_spec(script.spec)}); before it: {tally}", o.where, script.key,
                           conv, PARTS, {"counts": counts, "spec": script.spec.to_dict()})
    diff, allowed = (closest[0].diff, closest[0].allowed) if closest else (None, None)
    return CheckResult("random_specs", PASS, "agrees", diff, allowed,
                       f"{n} example{'s' if n != 1 else ''}: {tally} (the closest call shown; ill-conditioned and diverging runs are set "
                       f"aside)", None, None, None,
                       PARTS, {"counts": counts})
