"""Fast PyTorch variant: a pure loss function of the parameters, torch.func.grad_and_value, and the update of
torch.optim's SGD/Adam written functionally, all in one torch.compile'd step (the flax/JAX idiom, in torch)."""
from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from xor_rosetta.implementations.torch_mlp import TorchMLP
from xor_rosetta.data import batch_rows
from xor_rosetta.interface import History

torch._dynamo.config.recompile_limit = 512  # one graph per spec shape (depth, activations, optimizer, dtype, batch)

ACT = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu, "linear": lambda z: z}


def loss_fn(params, x, y, acts, loss):  # params: [W0 (out, in), b0, W1, b1, ...], torch's layout
    for i, act in enumerate(acts):
        x = ACT[act](F.linear(x, params[2 * i], params[2 * i + 1]))  # (batch, layers[i+1])
    return F.mse_loss(x, y) if loss == "mse" else F.binary_cross_entropy(x, y)


@torch.compile(fullgraph=True, dynamic=False)  # static shapes: automatic dynamic shapes gave wrong Adam steps (README)
def step(params, m, v, t, x, y, acts, loss, opt):
    """One update, as torch.optim does it (single-tensor path); returns (params, m, v, loss)."""
    grads, value = torch.func.grad_and_value(loss_fn)(params, x, y, acts, loss)
    name, lr, mu, b1, b2, eps = opt
    if name == "adam":
        m = [mi.lerp(g, 1 - b1) for mi, g in zip(m, grads)]  # exp_avg.lerp_(grad, 1 - beta1)
        v = [vi * b2 + (1 - b2) * g * g for vi, g in zip(v, grads)]  # exp_avg_sq.mul_(b2).addcmul_(g, g, 1 - b2)
        step_size = lr / (1 - b1 ** t)  # t: float64 scalar tensor, as torch.optim's Python float
        bc2_sqrt = (1 - b2 ** t).sqrt()
        params = [p - (step_size * (mi / (vi.sqrt() / bc2_sqrt + eps))).to(p.dtype) for p, mi, vi in zip(params, m, v)]
    elif mu:
        m = [mi * mu + g for mi, g in zip(m, grads)]  # buf.mul_(momentum).add_(grad); the first step's buf is grad
        params = [p - lr * mi for p, mi in zip(params, m)]
    else:
        params = [p - lr * g for p, g in zip(params, grads)]
    return params, m, v, value


class TorchCompiledMLP(TorchMLP):
    name = "torch-compiled"

    def __init__(self, spec, params):
        super().__init__(spec, params)
        self.state = [p.detach().clone() for lin in self.linears for p in (lin.weight, lin.bias)]  # [W0, b0, ...]
        self.m = [torch.zeros_like(p) for p in self.state]  # momentum buffer, or Adam's first moment
        self.v = [torch.zeros_like(p) for p in self.state]  # Adam's second moment

    def train(self, x, y, steps=None, checkpoints=()):
        spec, want, o = self.spec, set(checkpoints), self.spec.optimizer
        steps = spec.steps if steps is None else steps
        x, y = self._tensor(x), self._tensor(y)
        params, m, v = self.state, self.m, self.v
        opt = (o.name, o.lr, o.momentum, o.beta1, o.beta2, o.epsilon)
        losses, saved = [], {}  # 0-d tensors, stacked at the end: no host sync per step
        ts = torch.arange(self.steps_done + 1, self.steps_done + steps + 1, dtype=torch.float64).unbind()  # Adam's t
        b = spec.batch_for(len(x))
        start = time.perf_counter()
        for k in range(steps):
            rows = slice(None) if b == len(x) else torch.from_numpy(batch_rows(self.steps_done, b, len(x)))
            params, m, v, loss = step(params, m, v, ts[k], x[rows], y[rows], spec.activations, spec.loss, opt)
            self.steps_done += 1
            losses.append(loss)
            if k + 1 in want:
                self._load(params)
                saved[k + 1] = self.params()
        self.state, self.m, self.v = params, m, v
        self._load(params)
        losses = torch.stack(losses).double().numpy() if losses else np.empty(0)
        return History(losses, saved, time.perf_counter() - start)

    def gradients(self, x, y):  # the same pure loss function the compiled step differentiates
        params = [p.detach() for lin in self.linears for p in (lin.weight, lin.bias)]
        g = torch.func.grad(loss_fn)(params, self._tensor(x), self._tensor(y), self.spec.activations, self.spec.loss)
        return [(W.T.double().numpy(), b.double().numpy()) for W, b in zip(g[::2], g[1::2])]

    def _load(self, params):
        with torch.no_grad():
            for lin, W, b in zip(self.linears, params[::2], params[1::2]):
                lin.weight.copy_(W)
                lin.bias.copy_(b)
