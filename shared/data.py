"""The XOR data set and the fixed order in which minibatches visit it."""
from __future__ import annotations

import math

import numpy as np

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)  # (4, 2)
Y = np.array([[0], [1], [1], [0]], dtype=np.float64)  # (4, 1)


def xor_data(dtype: str = "float64") -> tuple[np.ndarray, np.ndarray]:
    return X.astype(dtype), Y.astype(dtype)


def batch_rows(step: int, batch: int, n: int) -> np.ndarray:
    """Rows used by update `step` (0-based): a window of `batch` rows that cycles through the data.

    Full batch (batch == n) uses rows 0..n-1 every step. With batch 3 the steps see
    [0,1,2], [3,0,1], [2,3,0], [1,2,3], ... -- every batch has the same size, and the
    concatenation of all batches is the data tiled end to end (which is what Keras' fit sees).
    """
    return (step * batch + np.arange(batch)) % n


def batch_period(batch: int, n: int) -> int:
    """How many distinct windows `batch_rows` cycles through: batch_rows(k) depends on k mod this only (1 for the
    full batch; 4 for XOR's 4 rows in batches of 3). Precomputing the windows costs period x batch rows, never
    n x batch (with n = 65,536 rows in one full batch, that was 34 GB)."""
    return n // math.gcd(batch, n)


def stream_rows(first: int, steps: int, batch: int, n: int) -> np.ndarray:
    """Rows of updates first .. first+steps-1, concatenated: (steps * batch,)."""
    return (first * batch + np.arange(steps * batch)) % n
