"""K sets of initial weights trained at once, in NumPy: the reference maths with one more axis.

Every array carries the K networks on its LAST axis: W_i (fan_in, fan_out, K), b_i (fan_out, K), activations
(batch, units, K), losses (K,). One NumPy operation then updates all K networks, and the networks never mix: each
one's numbers depend on its own initial weights only, so a network that diverges leaves the others untouched.

The elementwise pieces (activations and their derivatives, every optimizer form) are the reference's own
(`xor_rosetta.reference`), which works on arrays of any shape; what is new here is the batched forward pass,
loss and backprop. tests/test_vectorised.py checks every seed of a batch against its one-at-a-time run (the NumPy
implementation and the reference) by the tolerance policy, and that the convergence verdicts are identical.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from xor_rosetta.data import batch_rows, xor_data
from xor_rosetta.interface import Conventions
from xor_rosetta.params import Params
from xor_rosetta.reference import BCE_GRAD_EPS, LOG_CLAMP, Optimizer, activate, activate_grad
from xor_rosetta.spec import Spec


def stack(params_list: list[Params], dtype: str = "float64") -> list[np.ndarray]:
    """K canonical param sets -> [W0 (in, out, K), b0 (out, K), W1, b1, ...]."""
    return [np.ascontiguousarray(np.stack([p[i][j] for p in params_list], axis=-1), dtype=dtype)
            for i in range(len(params_list[0])) for j in (0, 1)]


def unstack(arrays: list[np.ndarray], k: int) -> Params:
    """Network k's canonical params (float64) from stacked arrays."""
    a = [np.array(v[..., k], dtype=np.float64) for v in arrays]
    return [(a[i], a[i + 1]) for i in range(0, len(a), 2)]


# region model
def dense(a: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ W + b for every network: a is the shared input (batch, in) or per network (batch, in, K)."""
    if a.ndim == 2:
        z = np.tensordot(a, W, axes=(1, 0))  # (batch, out, K): one matrix product for all K
    else:
        z = np.einsum("bik,iok->bok", a, W)  # (batch, out, K)
    z += b  # (out, K) broadcasts over the batch
    return z


def forward(spec: Spec, arrays: list[np.ndarray], x: np.ndarray) -> tuple[list, list]:
    """Pre-activations zs[i] (batch, layers[i+1], K) and activations acts (acts[0] = x, (batch, 2))."""
    zs, acts = [], [x]
    for i, act in enumerate(spec.activations):
        zs.append(dense(acts[-1], arrays[2 * i], arrays[2 * i + 1]))
        acts.append(activate(act, zs[-1]))
    return zs, acts
# endregion


# region loss
def loss_and_dz(spec: Spec, conv: Conventions, z: np.ndarray, a: np.ndarray, y: np.ndarray):
    """Each network's loss (K,), and d loss / d z at the output (batch, 1, K); y is (batch, 1)."""
    y, m = y[..., None], y.size  # (batch, 1, 1); mean over batch and outputs
    if spec.loss == "mse":
        d = a - y
        return np.mean(d * d, axis=(0, 1)), (2 * d / m) * activate_grad(spec.activations[-1], z, a)
    if conv.bce == "logits":  # from the logits z, as Keras' fit does
        loss = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
        return np.mean(loss, axis=(0, 1)), (a - y) / m
    with np.errstate(divide="ignore"):  # torch BCELoss on probabilities, log clamped at -100
        log_a, log_1a = np.maximum(np.log(a), LOG_CLAMP), np.maximum(np.log(1 - a), LOG_CLAMP)
    loss = -(y * log_a + (1 - y) * log_1a)
    da = (a - y) / np.maximum(a * (1 - a), BCE_GRAD_EPS) / m
    return np.mean(loss, axis=(0, 1)), da * activate_grad("sigmoid", z, a)
# endregion


def loss_and_gradients(spec: Spec, conv: Conventions, arrays: list[np.ndarray], x, y):
    """(losses (K,), [dW0 (in, out, K), db0 (out, K), ...]) by backprop, for every network at once."""
    zs, acts = forward(spec, arrays, x)
    loss, dz = loss_and_dz(spec, conv, zs[-1], acts[-1], y)  # dz: (batch, out, K)
    grads = [None] * len(arrays)
    for i in reversed(range(len(zs))):
        h = acts[i]  # (batch, in) for the first layer, else (batch, in, K)
        grads[2 * i] = np.tensordot(h, dz, axes=(0, 0)) if h.ndim == 2 else np.einsum("bik,bok->iok", h, dz)
        grads[2 * i + 1] = dz.sum(axis=0)  # (out, K)
        if i:
            da = np.einsum("bok,iok->bik", dz, arrays[2 * i])  # (batch, in, K)
            dz = da * activate_grad(spec.activations[i - 1], zs[i - 1], h)
    return loss, grads


@dataclass
class Batch:
    """What K networks did: per-network summaries, and optionally every step's loss and checkpoints."""
    final_loss: np.ndarray  # (K,) the loss on all four rows after the last update
    outputs: np.ndarray  # (K, 4) network outputs after training
    first_below: np.ndarray  # (K,) 0-based index of the first step whose loss < threshold, -1 if none
    first_nonfinite: np.ndarray  # (K,) index of the first NaN or infinite loss, -1 if none
    arrays: list[np.ndarray]  # the final parameters, stacked
    loss: np.ndarray | None = None  # (K, steps), with keep_loss
    checkpoints: dict[int, list[np.ndarray]] = field(default_factory=dict)  # k -> stacked params after k updates

    def accuracy(self, y: np.ndarray) -> np.ndarray:
        """(K,) share of rows on the right side of 0.5."""
        return np.mean((self.outputs > 0.5) == (y.reshape(1, -1) > 0.5), axis=1)


def train(spec: Spec, conv: Conventions, arrays: list[np.ndarray], threshold: float = 0.0, steps: int | None = None,
          checkpoints=(), keep_loss: bool = False) -> Batch:
    """Train the K stacked networks `arrays` (see `stack`) for `steps` updates (default spec.steps) of the spec's
    optimizer in the conventions `conv`, as `xor_rosetta.reference.Reference.train` trains one."""
    steps = spec.steps if steps is None else steps
    x, y = xor_data(spec.dtype)
    arrays = [np.array(a, dtype=spec.dtype) for a in arrays]
    K = arrays[0].shape[-1]
    opt = Optimizer(spec.optimizer, conv, arrays)  # elementwise: one Adam t for all, state per network
    b, want = spec.batch_for(len(x)), set(checkpoints)
    first_below, first_nonfinite = np.full(K, -1), np.full(K, -1)
    losses = np.empty((K, steps)) if keep_loss else None
    saved = {}
    with np.errstate(all="ignore"):  # diverging networks overflow; that is recorded, not warned about
        for k in range(steps):
            rows = slice(None) if b == len(x) else batch_rows(k, b, len(x))
            loss, grads = loss_and_gradients(spec, conv, arrays, x[rows], y[rows])
            opt.step(arrays, grads)
            first_below[(first_below < 0) & (loss < threshold)] = k
            first_nonfinite[(first_nonfinite < 0) & ~np.isfinite(loss)] = k
            if keep_loss:
                losses[:, k] = loss
            if k + 1 in want:
                saved[k + 1] = [a.astype(np.float64) for a in arrays]
        zs, acts = forward(spec, arrays, x)
        final_loss = loss_and_dz(spec, conv, zs[-1], acts[-1], y)[0]
    outputs = acts[-1][:, 0, :].T.astype(np.float64)  # (K, 4)
    return Batch(final_loss.astype(np.float64), outputs, first_below, first_nonfinite, arrays, losses, saved)


def gradients(spec: Spec, conv: Conventions, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """d loss / d params on all four rows, stacked like `arrays`."""
    x, y = xor_data(spec.dtype)
    with np.errstate(all="ignore"):
        return loss_and_gradients(spec, conv, [np.asarray(a, dtype=spec.dtype) for a in arrays], x, y)[1]
