"""XOR MLP in PyTorch, as its tutorials teach it: an nn.Sequential model, a torch.nn loss, a torch.optim optimizer,
and the loop zero_grad / forward / backward / step."""
from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from xor_rosetta.data import batch_rows
from xor_rosetta.interface import MLP, Conventions, History

# region model
ACTIVATIONS = {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "relu": nn.ReLU, "linear": nn.Identity}


def make_model(layers, activations, dtype):
    """Linear, activation, Linear, activation, ...: (batch, layers[0]) -> (batch, layers[-1])."""
    modules = []
    for n_in, n_out, act in zip(layers, layers[1:], activations):
        modules += [nn.Linear(n_in, n_out, dtype=dtype), ACTIVATIONS[act]()]  # weight (n_out, n_in), bias (n_out,)
    return nn.Sequential(*modules)
# endregion


# region loss
def make_loss(name):
    return nn.MSELoss() if name == "mse" else nn.BCELoss()  # BCELoss takes the sigmoid's probabilities
# endregion


# region optimizer
def make_optimizer(parameters, o):
    if o.name == "adam":
        return torch.optim.Adam(parameters, lr=o.lr, betas=(o.beta1, o.beta2), eps=o.epsilon)
    return torch.optim.SGD(parameters, lr=o.lr, momentum=o.momentum)
# endregion


# region step
def train_step(model, loss_fn, optimizer, x, y):
    """One update; returns the loss of (x, y) before it, as a 0-d tensor."""
    optimizer.zero_grad()  # .grad accumulates across backward() calls: clear it
    loss = loss_fn(model(x), y)  # forward pass: (batch, 2) -> (batch, 1) -> scalar
    loss.backward()  # backprop: fills every parameter's .grad
    optimizer.step()  # the update
    return loss
# endregion


class TorchMLP(MLP):
    """The suite's interface around the functions above: weights in the canonical layout, the loop, the losses."""
    name = "torch"
    framework = "torch"
    conventions = Conventions(adam="torch", momentum="torch", bce="probs")

    def __init__(self, spec, params):
        super().__init__(spec, params)
        self.dtype = getattr(torch, spec.dtype)
        self.model = make_model(spec.layers, spec.activations, self.dtype)
        self.linears = [m for m in self.model if isinstance(m, nn.Linear)]
        with torch.no_grad():  # the suite's initial weights, not torch's default initialisation
            for lin, (W, b) in zip(self.linears, params):
                lin.weight.copy_(torch.from_numpy(W.T))  # canonical (in, out) -> torch (out, in)
                lin.bias.copy_(torch.from_numpy(b))
        self.loss_fn = make_loss(spec.loss)
        self.optimizer = make_optimizer(self.model.parameters(), spec.optimizer)

    # region loop
    def train(self, x, y, steps=None, checkpoints=()):
        spec, want = self.spec, set(checkpoints)
        steps = spec.steps if steps is None else steps
        x, y = self._tensor(x), self._tensor(y)
        b = spec.batch_for(len(x))
        losses, saved, start = torch.empty(steps, dtype=torch.float64), {}, time.perf_counter()
        self.model.train()
        for k in range(steps):
            rows = slice(None) if b == len(x) else torch.from_numpy(batch_rows(self.steps_done, b, len(x)))
            loss = train_step(self.model, self.loss_fn, self.optimizer, x[rows], y[rows])
            losses[k] = loss.detach()  # stays a tensor: no .item() host sync per step
            self.steps_done += 1
            if k + 1 in want:
                saved[k + 1] = self.params()
        return History(losses.numpy(), saved, time.perf_counter() - start)
    # endregion

    def forward(self, x):
        with torch.no_grad():
            return self.model(self._tensor(x)).numpy()  # (batch, 1)

    def loss(self, x, y):
        with torch.no_grad():
            return self.loss_fn(self.model(self._tensor(x)), self._tensor(y)).item()

    def gradients(self, x, y):
        self.model.zero_grad()
        self.loss_fn(self.model(self._tensor(x)), self._tensor(y)).backward()
        return [(lin.weight.grad.T.double().numpy(), lin.bias.grad.double().numpy()) for lin in self.linears]

    def params(self):
        return [(lin.weight.detach().T.double().numpy().copy(), lin.bias.detach().double().numpy().copy())
                for lin in self.linears]

    def _tensor(self, a):
        return torch.as_tensor(np.asarray(a), dtype=self.dtype)
