"""K networks at once in PyTorch: `torch.func.vmap` of the gradient of one network's functional loss, and
torch.optim's own SGD or Adam stepping the stacked parameters (their updates are elementwise, so each network keeps
its own moments, and all share the step count). The conventions are torch's: its Adam, its momentum, BCELoss on
probabilities.

Same arguments and result as `xor_rosetta.implementations.batched.numpy.train` (NumPy arrays in, `Batch` out), so the sweep
judges each network against the batched NumPy reference in torch's conventions.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import grad_and_value, vmap

from xor_rosetta.data import batch_rows, xor_data
from xor_rosetta.interface import Conventions
from xor_rosetta.spec import Spec
from xor_rosetta.implementations.batched.numpy import Batch

CONVENTIONS = Conventions(adam="torch", momentum="torch", bce="probs")
ACT = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu, "linear": lambda z: z}


def forward(params, x, acts):  # one network: params [W0 (out, in), b0 (out,), ...] in torch's layout; x (batch, 2)
    for i, act in enumerate(acts):
        x = ACT[act](F.linear(x, params[2 * i], params[2 * i + 1]))  # (batch, layers[i+1])
    return x


def loss_fn(params, x, y, acts, loss):
    out = forward(params, x, acts)
    return F.mse_loss(out, y) if loss == "mse" else F.binary_cross_entropy(out, y)


def to_torch(arrays, dtype) -> list[torch.Tensor]:
    """Stacked NumPy [W (in, out, K), b (out, K), ...] -> torch [W (K, out, in), b (K, out), ...]."""
    return [torch.tensor(np.ascontiguousarray(a.transpose(2, 1, 0) if a.ndim == 3 else a.T), dtype=dtype)
            for a in arrays]


def to_numpy(params) -> list[np.ndarray]:
    """torch [W (K, out, in), b (K, out), ...] -> NumPy [W (in, out, K), b (out, K), ...], copied (the optimizer
    updates the tensors in place)."""
    return [np.array(p.detach().double().numpy().transpose(2, 1, 0) if p.ndim == 3 else p.detach().double().numpy().T,
                     order="C", copy=True) for p in params]


def train(spec: Spec, conv: Conventions, arrays, threshold: float = 0.0, steps: int | None = None, checkpoints=(),
          keep_loss: bool = False) -> Batch:
    if conv != CONVENTIONS:
        raise ValueError(f"the torch batched path computes in torch's conventions, not {conv}")
    steps = spec.steps if steps is None else steps
    dtype = getattr(torch, spec.dtype)
    x, y = (torch.tensor(a, dtype=dtype) for a in xor_data(spec.dtype))
    params = to_torch(arrays, dtype)
    K, o = params[0].shape[0], spec.optimizer
    if o.name == "adam":
        opt = torch.optim.Adam(params, lr=o.lr, betas=(o.beta1, o.beta2), eps=o.epsilon)
    else:
        opt = torch.optim.SGD(params, lr=o.lr, momentum=o.momentum)
    step = vmap(grad_and_value(lambda p, xb, yb: loss_fn(p, xb, yb, spec.activations, spec.loss)),
                in_dims=(0, None, None))
    b, want = spec.batch_for(len(x)), set(checkpoints)
    first_below, first_nonfinite = np.full(K, -1), np.full(K, -1)
    losses = np.empty((K, steps)) if keep_loss else None
    saved = {}
    with torch.no_grad():
        for k in range(steps):
            rows = slice(None) if b == len(x) else torch.from_numpy(batch_rows(k, b, len(x)))
            grads, loss = step(params, x[rows], y[rows])  # grads like params; loss (K,)
            for p, g in zip(params, grads):
                p.grad = g
            opt.step()
            loss = loss.double().numpy()
            first_below[(first_below < 0) & (loss < threshold)] = k
            first_nonfinite[(first_nonfinite < 0) & ~np.isfinite(loss)] = k
            if keep_loss:
                losses[:, k] = loss
            if k + 1 in want:
                saved[k + 1] = to_numpy(params)
        out = vmap(lambda p: forward(p, x, spec.activations))(params)  # (K, 4, 1)
        final = vmap(lambda p: loss_fn(p, x, y, spec.activations, spec.loss))(params)
    return Batch(final.double().numpy(), out[..., 0].double().numpy(), first_below, first_nonfinite,
                 to_numpy(params), losses, saved)


def gradients(spec: Spec, conv: Conventions, arrays) -> list[np.ndarray]:
    dtype = getattr(torch, spec.dtype)
    x, y = (torch.tensor(a, dtype=dtype) for a in xor_data(spec.dtype))
    g, _ = vmap(grad_and_value(lambda p: loss_fn(p, x, y, spec.activations, spec.loss)))(to_torch(arrays, dtype))
    return to_numpy(g)
