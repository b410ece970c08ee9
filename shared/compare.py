"""Comparison helpers: how far two implementations' outputs, gradients, params and losses differ."""
from __future__ import annotations

import numpy as np

from .params import Params
from .tolerance import Tolerance


def max_abs_diff(a: Params, b: Params) -> float:
    """Largest |a - b| over every W and b."""
    return max(float(np.max(np.abs(u - v), initial=0.0)) for A, B in zip(a, b) for u, v in zip(A, B))


def max_rel_diff(a: Params, ref: Params) -> float:
    """Largest |a - ref| relative to the largest |ref| (for gradients, whose scale varies)."""
    scale = max(float(np.max(np.abs(v), initial=0.0)) for B in ref for v in B)
    return max_abs_diff(a, ref) / (scale or 1.0)


def loss_mismatch(loss: np.ndarray, ref: np.ndarray, tol: Tolerance) -> int | None:
    """First step whose loss differs from the reference beyond tolerance, or None."""
    bad = np.abs(loss - ref) > tol.loss_atol + tol.loss_rtol * np.abs(ref)
    bad |= np.isnan(loss) != np.isnan(ref)
    return int(np.argmax(bad)) if bad.any() else None


def accuracy(outputs: np.ndarray, y: np.ndarray) -> float:
    """Share of rows whose output lies on the right side of 0.5."""
    return float(np.mean((outputs > 0.5) == (y > 0.5)))
