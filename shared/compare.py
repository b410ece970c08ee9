"""Measuring one run against the reference, and judging it by the tolerance policy (`xor_rosetta.tolerance`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .params import Params
from .tolerance import AGREES, ILL, NOISE, NOISE_FACTOR, WORDS, classify, running_max, tolerance

DEFAULT_THRESHOLD = {"mse": 1e-6, "bce": 0.05}  # loss under which a run counts as converged


def max_abs(a: Params) -> float:
    """Largest |value| over every W and b."""
    return max(float(np.max(np.abs(v), initial=0.0)) for A in a for v in A)


def max_abs_diff(a: Params, b: Params) -> float:
    """Largest |a - b| over every W and b (NaN if any is NaN)."""
    return max(float(np.max(np.abs(u - v), initial=0.0)) for A, B in zip(a, b) for u, v in zip(A, B))


def max_rel_diff(a: Params, ref: Params) -> float:
    """Largest |a - ref| relative to the largest |ref| (for gradients, whose scale varies)."""
    return max_abs_diff(a, ref) / (max_abs(ref) or 1.0)


def accuracy(outputs: np.ndarray, y: np.ndarray) -> float:
    """Share of rows whose output lies on the right side of 0.5."""
    return float(np.mean((outputs > 0.5) == (y > 0.5)))


@dataclass(frozen=True)
class Finding:
    """One measured quantity against the policy."""
    status: int  # AGREES .. DISAGREES
    what: str  # "gradients" (at the initial weights), "loss" (before update `step`), "params" (after update `step`)
    step: int  # 0: at the initial weights; k: the k-th update
    diff: float  # |Δ| (absolute)
    allowed: float  # rtol * scale
    floor: float | None  # how far one rounding per step moves the reference here, if measured
    got: float | None = None  # for a loss: the value, and the reference's
    want: float | None = None

    def words(self) -> str:
        floor = "" if self.floor is None else f", rounding floor {self.floor:.2g}"
        values = "" if self.got is None else f" ({self.got:.9g} vs the reference's {self.want:.9g})"
        if self.status == ILL:
            return (f"ill-conditioned: one rounding per step already moves the {self.what} by {self.floor:.2g}, "
                    f"over the {self.allowed:.2g} allowed; the difference, {self.diff:.2g}, is within "
                    f"{NOISE_FACTOR:g}x that")
        return f"{self.what} differ{'s' if self.what == 'loss' else ''} by {self.diff:.2g}{values} " \
               f"(allowed {self.allowed:.2g}{floor})"


@dataclass
class Judgement:
    status: int = AGREES
    first: Finding | None = None  # the earliest finding with the worst status (None when everything agrees)
    findings: list[Finding] = field(default_factory=list)  # the worst finding of each kind
    floor_measured: bool = False

    @property
    def verdict(self) -> str:
        """'agrees', 'agrees within rounding noise (floor X)', 'ill-conditioned: ...' or 'DISAGREES'."""
        if self.status == NOISE:
            return f"{WORDS[NOISE]} (floor {self.first.floor:.2g})"
        if self.status == ILL:
            return f"ill-conditioned: rounding alone moves the {self.first.what} by {self.first.floor:.2g}"
        return WORDS[self.status]

    @property
    def explanation(self) -> str | None:
        """Where and by how much, for anything but plain agreement."""
        if self.first is None:
            return None
        at = "at the initial weights" if self.first.step == 0 else f"at step {self.first.step}"
        return f"{at}: {self.first.words()}"


def judge(dtype: str, checkpoints, grads: Params | None, ref_grads: Params | None, loss: np.ndarray, ref_loss: np.ndarray,
          params: dict[int, Params], ref_params: dict[int, Params], floor: Callable | None = None) -> Judgement:
    """Gradients at the initial weights (unless None), every step's loss and the params at each checkpoint,
    against the reference, by the tolerance policy. `floor()` (measured only when something is over its tolerance) returns
    a `xor_rosetta.reference.Floor` for the same run."""
    tol = tolerance(dtype)
    loss, ref_loss = np.asarray(loss, dtype=np.float64), np.asarray(ref_loss, dtype=np.float64)
    ks = sorted(k for k in checkpoints if k in params and k in ref_params)
    g = (0.0, 0.0) if grads is None else (max_abs_diff(grads, ref_grads), tol.gradient * max_abs(ref_grads))
    loss_d, loss_allowed = np.abs(loss - ref_loss), tol.loss * running_max(ref_loss)
    p_d = np.array([max_abs_diff(params[k], ref_params[k]) for k in ks])
    p_allowed = np.array([tol.params * max_abs(ref_params[k]) for k in ks])

    def codes(fl):
        return (classify(g[0], g[1], None if fl is None else fl.gradient),
                classify(loss_d, loss_allowed, None if fl is None else fl.loss),
                classify(p_d, p_allowed, None if fl is None else [fl.params[k] for k in ks]))

    fl, measured = None, False
    c = codes(None)
    if floor is not None and max(int(np.max(x, initial=AGREES)) for x in c) > AGREES:
        fl, measured = floor(), True
        c = codes(fl)
    g_code, loss_codes, p_codes = c
    worst = max(int(g_code), int(np.max(loss_codes, initial=AGREES)), int(np.max(p_codes, initial=AGREES)))
    findings = []
    if g_code > AGREES:
        findings.append(Finding(int(g_code), "gradients", 0, g[0], g[1], None if fl is None else fl.gradient))
    if np.any(loss_codes > AGREES):
        i = int(np.argmax(loss_codes))  # first step with the worst loss status
        findings.append(Finding(int(loss_codes[i]), "loss", i + 1, float(loss_d[i]),
                                float(loss_allowed[i]), None if fl is None else float(fl.loss[i]),
                                float(loss[i]), float(ref_loss[i])))
    if np.any(p_codes > AGREES):
        i = int(np.argmax(p_codes))
        findings.append(Finding(int(p_codes[i]), "params", ks[i], float(p_d[i]), float(p_allowed[i]),
                                None if fl is None else fl.params[ks[i]]))
    worst_first = [f for f in findings if f.status == worst]
    first = min(worst_first, key=lambda f: (f.step, f.what == "params")) if worst_first else None
    return Judgement(worst, first, findings, measured)
