"""Fast PyTorch variant in the torch.func style: the model as a pure function of its parameters, gradients by
torch.func.grad_and_value, torch.optim's own SGD/Adam update, and the whole step compiled into one graph."""
from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.adam import adam
from torch.optim.sgd import sgd

from xor_rosetta.data import batch_rows
from xor_rosetta.implementations.torch_mlp import TorchMLP
from xor_rosetta.interface import History

# One graph per spec: depth, activations, loss, dtype, batch and the optimizer's settings (Adam's lr excepted: a
# tensor). Dynamo caps the graphs per function (accumulated_recompile_limit, 256 by default, binds first); a long
# Hypothesis run compiles hundreds. Past the cap, fullgraph=True raises rather than run eagerly; say so explicitly.
torch._dynamo.config.recompile_limit = 4096
torch._dynamo.config.accumulated_recompile_limit = 4096
torch._dynamo.config.fail_on_recompile_limit_hit = True

# region model
ACT = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu, "linear": lambda z: z}


def predict(params, acts, x):
    """The `torch` implementation's network as a function: params [W0 (out, in), b0 (out,), W1, b1, ...]."""
    for W, b, act in zip(params[::2], params[1::2], acts):
        x = ACT[act](F.linear(x, W, b))  # x @ W.T + b: (batch, out)
    return x  # (batch, 1)
# endregion


# region loss
LOSSES = {"mse": F.mse_loss, "bce": F.binary_cross_entropy}  # nn.MSELoss and nn.BCELoss, as functions


def loss_of(params, acts, loss, x, y):
    return LOSSES[loss](predict(params, acts, x), y)
# endregion


# region optimizer
def update(params, grads, state, o):
    """torch.optim's own update, in place: `adam` and `sgd` are the functions torch.optim.Adam.step and
    torch.optim.SGD.step call (single-tensor path); `state` holds what the optimizer object would."""
    if o.name == "adam":
        adam(params, grads, state["exp_avg"], state["exp_avg_sq"], [], state["step"], foreach=False, capturable=False,
             amsgrad=False, beta1=o.beta1, beta2=o.beta2, lr=state["lr"], weight_decay=0.0, eps=o.epsilon,
             maximize=False)
    else:
        sgd(params, grads, state["momentum_buffer"], foreach=False, momentum=o.momentum, lr=o.lr, weight_decay=0.0,
            dampening=0.0, nesterov=False, maximize=False)
# endregion


# region step
# pattern_matcher off: with it, inductor (torch 2.13, CPU) miscompiles torch.add(w, g, alpha=-lr) -- which
# torch.optim's SGD does -- on gradients from torch.func in the same graph: weights off by O(1) after one step
@torch.compile(fullgraph=True, dynamic=False, options={"pattern_matcher": False})  # static shapes (README)
def train_step(params, state, acts, loss, o, x, y):
    """One update of `params` and `state`, in place; returns the loss before it."""
    grads, value = torch.func.grad_and_value(loss_of)(params, acts, loss, x, y)  # grads: a list like params
    update(params, grads, state, o)
    return value
# endregion


class TorchCompiledMLP(TorchMLP):
    """The `torch` implementation's weights, taken out of its nn.Sequential, with the optimizer's state beside them."""
    name = "torch-compiled"

    def __init__(self, spec, params):
        super().__init__(spec, params)
        self.params_ = [p.detach().clone() for lin in self.linears for p in (lin.weight, lin.bias)]  # [W0, b0, ...]
        zeros = lambda: [torch.zeros_like(p) for p in self.params_]  # noqa: E731
        # Momentum buffers start at zero: torch.optim's first buffer is the gradient itself, and 0 * mu + g == g.
        # Adam's step count t is float64: torch.optim's float32 default would put the bias correction in float32
        # once compiled (2e-6 off in a float64 run). Its lr is a tensor: one graph for every lr, and lr / (1 - b1^t)
        # stays one division (a constant lr is compiled as a reciprocal times lr: two roundings).
        self.state = {"exp_avg": zeros(), "exp_avg_sq": zeros(), "momentum_buffer": zeros(),
                      "step": [torch.zeros((), dtype=torch.float64) for _ in self.params_],
                      "lr": torch.tensor(spec.optimizer.lr, dtype=torch.float64)}

    # region loop
    def train(self, x, y, steps=None, checkpoints=()):
        spec, want = self.spec, set(checkpoints)
        steps = spec.steps if steps is None else steps
        x, y = self._tensor(x), self._tensor(y)
        b = spec.batch_for(len(x))
        losses, saved, start = [], {}, time.perf_counter()  # 0-d tensors, stacked at the end: no sync per step
        for k in range(steps):
            rows = slice(None) if b == len(x) else torch.from_numpy(batch_rows(self.steps_done, b, len(x)))
            loss = train_step(self.params_, self.state, spec.activations, spec.loss, spec.optimizer, x[rows], y[rows])
            losses.append(loss)
            self.steps_done += 1
            if k + 1 in want:
                saved[k + 1] = self.params()
        losses = torch.stack(losses).double().numpy() if losses else np.empty(0)
        return History(losses, saved, time.perf_counter() - start)
    # endregion

    def forward(self, x):
        with torch.no_grad():
            return predict(self.params_, self.spec.activations, self._tensor(x)).numpy()  # (batch, 1)

    def loss(self, x, y):
        with torch.no_grad():
            return loss_of(self.params_, self.spec.activations, self.spec.loss, *self._tensors(x, y)).item()

    def gradients(self, x, y):  # the same pure loss function the compiled step differentiates
        g = torch.func.grad(loss_of)(self.params_, self.spec.activations, self.spec.loss, *self._tensors(x, y))
        return [(W.T.double().numpy(), b.double().numpy()) for W, b in zip(g[::2], g[1::2])]

    def _tensors(self, x, y):
        return self._tensor(x), self._tensor(y)

    def params(self):
        p = self.params_
        return [(W.T.double().numpy().copy(), b.double().numpy().copy()) for W, b in zip(p[::2], p[1::2])]
