"""Run implementations on a spec from shared initial weights, and measure them against the NumPy reference."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import registry
from .compare import accuracy, loss_mismatch, max_abs_diff, max_rel_diff
from .data import xor_data
from .interface import History, MLP
from .params import Params, check_params
from .spec import Spec
from .tolerance import tolerance

DEFAULT_THRESHOLD = {"mse": 1e-6, "bce": 0.05}  # loss under which a run counts as converged


def checkpoints_for(steps: int, n: int = 16) -> list[int]:
    """About n log-spaced steps from 1 to `steps`, always including 1, 10, 100, ... and `steps`."""
    ks = set(np.unique(np.geomspace(1, steps, n).round().astype(int)).tolist())
    ks |= {10 ** i for i in range(8) if 10 ** i <= steps} | {steps}
    return sorted(ks)


@dataclass
class RunResult:
    name: str
    model: MLP | None = None
    history: History | None = None
    reference: History | None = None  # the NumPy reference in this implementation's conventions
    error: str | None = None  # unavailable, or what went wrong
    diverged_at: int | None = None  # first step whose loss is NaN or infinite
    final_loss: float = float("nan")
    accuracy: float = float("nan")
    steps_to_threshold: int | None = None
    param_diff: float = float("nan")  # max |Δ params| vs the reference, over all checkpoints
    param_diff_curve: dict[int, float] = field(default_factory=dict)  # checkpoint -> max |Δ params|
    grad_diff: float = float("nan")  # max |Δ grad| / max |grad| at the initial weights
    first_disagreement: str | None = None  # where the run first left the tolerance, in words

    @property
    def agrees(self) -> bool:
        return self.error is None and self.diverged_at is None and self.first_disagreement is None

    def converged(self, threshold: float) -> bool:
        return self.agrees and self.final_loss < threshold and self.accuracy == 1.0


def first_nonfinite(loss: np.ndarray) -> int | None:
    bad = ~np.isfinite(loss)
    return int(np.argmax(bad)) if bad.any() else None


def run_one(name: str, spec: Spec, params: Params, threshold: float, checkpoints: list[int],
            impl_spec: Spec | None = None, references: dict | None = None) -> RunResult:
    """Train `name` and its reference from `params`, then measure how far apart they are.

    `impl_spec` (tests only) gives the implementation another spec than its reference, to prove disagreement shows.
    `references` caches reference runs by conventions across calls with the same spec, params and checkpoints.
    """
    res = RunResult(name)
    try:
        cls = registry.load(name)
    except registry.UnavailableError as e:
        res.error = str(e)
        return res
    check_params(params, spec)
    try:
        return _run(res, cls, spec, params, threshold, checkpoints, impl_spec, {} if references is None else references)
    except Exception as e:  # one implementation failing must not stop the others; it is reported and fails the run
        res.error = f"failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        return res


def _run(res, cls, spec, params, threshold, checkpoints, impl_spec, references) -> RunResult:
    from implementations.numpy_mlp import NumpyMLP

    x, y = xor_data(spec.dtype)
    tol = tolerance(spec.dtype)
    with np.errstate(all="ignore"):  # a diverging run overflows; that is reported, not warned about
        res.model = model = cls(impl_spec or spec, params)
        ref = NumpyMLP(spec, params, conventions=cls.conventions)
        res.grad_diff = max_rel_diff(model.gradients(x, y), ref.gradients(x, y))
        res.history = model.train(x, y, checkpoints)
        if cls.conventions not in references:
            references[cls.conventions] = NumpyMLP(spec, params, conventions=cls.conventions).train(x, y, checkpoints)
        res.reference = references[cls.conventions]
        res.diverged_at = first_nonfinite(res.history.loss)
        res.final_loss = model.loss(x, y)
        res.accuracy = accuracy(model.forward(x), y)
    below = np.flatnonzero(res.history.loss < threshold)
    res.steps_to_threshold = int(below[0]) + 1 if below.size else None
    for k in checkpoints:
        res.param_diff_curve[k] = max_abs_diff(res.history.checkpoints[k], res.reference.checkpoints[k])
    res.param_diff = max(res.param_diff_curve.values())
    res.first_disagreement = _first_disagreement(res, tol)
    return res


def _first_disagreement(res: RunResult, tol) -> str | None:
    if res.diverged_at is not None:
        return None  # reported as divergence instead
    if not res.grad_diff <= tol.gradient:
        return f"gradients at the initial weights differ by {res.grad_diff:.2g} (tolerance {tol.gradient:g})"
    step = loss_mismatch(res.history.loss, res.reference.loss, tol)
    over = [k for k, d in res.param_diff_curve.items() if not d <= tol.params]
    if step is not None and (not over or step + 1 <= over[0]):
        return (f"at step {step + 1}: loss is {res.history.loss[step]:.9g}, the reference's "
                f"{res.reference.loss[step]:.9g}")
    if over:
        return f"at step {over[0]}: params differ by {res.param_diff_curve[over[0]]:.2g} (tolerance {tol.params:g})"
    return None
