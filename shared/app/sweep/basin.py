"""The basin picture: two initial weights varied on a grid, the others fixed, each cell trained to the end.

n x n networks at once through the batched NumPy path (`xor_rosetta.implementations.batched.numpy`), in the conventions of the
NumPy implementation; each cell records whether that network converged (final loss < threshold and 4/4 correct),
the steps it took to reach the threshold, and whether it diverged.
"""
from __future__ import annotations

import re

import numpy as np

from xor_rosetta.data import xor_data
from xor_rosetta.errors import XorRosettaError
from xor_rosetta.interface import Conventions
from xor_rosetta.params import Params
from xor_rosetta.spec import Spec
from xor_rosetta.implementations.batched import numpy as vectorised

DEFAULT_WEIGHTS = ("W0[0,0]", "W0[1,0]")  # the two input weights of the first hidden unit
DEFAULT_RANGE = (-3.0, 3.0)
CHUNK = 2048  # networks per batched computation

_NAME = re.compile(r"^(W)(\d+)\[(\d+),(\d+)\]$|^(b)(\d+)\[(\d+)\]$")


def parse_weight(text: str, spec: Spec) -> tuple[int, tuple[int, ...]]:
    """'W1[0,3]' or 'b0[2]' -> (index into [W0, b0, W1, b1, ...], index within that array), checked against spec."""
    m = _NAME.match(text.replace(" ", ""))
    if not m:
        raise XorRosettaError(f"--basin: {text!r} names no weight; write W<layer>[<in>,<out>] or b<layer>[<out>], "
                              f"e.g. W0[0,0]")
    if m.group(1):
        layer, idx, arr = int(m.group(2)), (int(m.group(3)), int(m.group(4))), 0
    else:
        layer, idx, arr = int(m.group(6)), (int(m.group(7)),), 1
    n = len(spec.layers) - 1
    if layer >= n:
        raise XorRosettaError(f"--basin: {text!r}: the network has weight layers 0..{n - 1}")
    shape = (spec.layers[layer], spec.layers[layer + 1]) if arr == 0 else (spec.layers[layer + 1],)
    if any(i >= s for i, s in zip(idx, shape)):
        raise XorRosettaError(f"--basin: {text!r} is outside {'W' if arr == 0 else 'b'}{layer}, of shape {shape}")
    return 2 * layer + arr, idx


def compute(spec: Spec, base: Params, conv: Conventions, threshold: float, weights=DEFAULT_WEIGHTS,
            span=DEFAULT_RANGE, n: int = 41, progress=None) -> dict:
    """Train the n*n networks; returns the grid's values and, per cell (row: second weight, column: first),
    'steps' (steps to the threshold, -1 if never), 'converged' and 'diverged'."""
    (a1, i1), (a2, i2) = (parse_weight(w, spec) for w in weights)
    values = np.linspace(span[0], span[1], n)
    v2, v1 = np.meshgrid(values, values, indexing="ij")  # (n, n): row i, column j
    flat_base = [a for Wb in base for a in Wb]
    steps, converged, diverged = np.empty(n * n, dtype=int), np.empty(n * n, dtype=bool), np.empty(n * n, dtype=bool)
    _, y = xor_data(spec.dtype)
    for start in range(0, n * n, CHUNK):
        cells = range(start, min(start + CHUNK, n * n))
        arrays = [np.repeat(a[..., None], len(cells), axis=-1).astype(spec.dtype) for a in flat_base]
        arrays[a1][i1] = v1.reshape(-1)[cells.start:cells.stop]
        arrays[a2][i2] = v2.reshape(-1)[cells.start:cells.stop]
        b = vectorised.train(spec, conv, arrays, threshold)
        sl = slice(cells.start, cells.stop)
        steps[sl] = np.where(b.first_below >= 0, b.first_below + 1, -1)
        diverged[sl] = b.first_nonfinite >= 0
        converged[sl] = ~diverged[sl] & (b.final_loss < threshold) & (b.accuracy(y) == 1.0)
        if progress:
            progress(len(cells))
    base_values = (float(flat_base[a1][i1]), float(flat_base[a2][i2]))
    return {"weights": list(weights), "values": values, "base": base_values, "steps": steps.reshape(n, n),
            "converged": converged.reshape(n, n), "diverged": diverged.reshape(n, n)}
