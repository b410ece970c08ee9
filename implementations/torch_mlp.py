"""XOR MLP in PyTorch: nn.Sequential, torch.optim, torch.nn losses, zero_grad / backward / step."""
from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from xor_rosetta.data import batch_rows
from xor_rosetta.interface import MLP, Conventions, History

ACTIVATIONS = {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "relu": nn.ReLU, "linear": nn.Identity}


class TorchMLP(MLP):
    name = "torch"
    framework = "torch"
    conventions = Conventions(adam="torch", momentum="torch", bce="probs")

    def __init__(self, spec, params):
        super().__init__(spec, params)
        self.dtype = getattr(torch, spec.dtype)
        layers = []
        for (n_in, n_out), act in zip(zip(spec.layers, spec.layers[1:]), spec.activations):
            layers += [nn.Linear(n_in, n_out, dtype=self.dtype), ACTIVATIONS[act]()]
        self.model = nn.Sequential(*layers)
        self.linears = [m for m in self.model if isinstance(m, nn.Linear)]
        with torch.no_grad():
            for lin, (W, b) in zip(self.linears, params):
                lin.weight.copy_(torch.from_numpy(W.T))  # canonical (in, out) -> torch (out, in)
                lin.bias.copy_(torch.from_numpy(b))
        self.loss_fn = nn.MSELoss() if spec.loss == "mse" else nn.BCELoss()
        o = spec.optimizer
        if o.name == "adam":
            self.optimizer = torch.optim.Adam(self.model.parameters(), lr=o.lr, betas=(o.beta1, o.beta2), eps=o.epsilon)
        else:
            self.optimizer = torch.optim.SGD(self.model.parameters(), lr=o.lr, momentum=o.momentum)

    def _tensor(self, a):
        return torch.as_tensor(np.asarray(a), dtype=self.dtype)

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

    def train(self, x, y, steps=None, checkpoints=()):
        spec, want = self.spec, set(checkpoints)
        steps = spec.steps if steps is None else steps
        x, y = self._tensor(x), self._tensor(y)
        losses, saved = torch.empty(steps, dtype=torch.float64), {}
        b = spec.batch_for(len(x))
        self.model.train()
        start = time.perf_counter()
        for k in range(steps):
            rows = slice(None) if b == len(x) else torch.from_numpy(batch_rows(self.steps_done, b, len(x)))
            self.optimizer.zero_grad()
            loss = self.loss_fn(self.model(x[rows]), y[rows])
            loss.backward()
            self.optimizer.step()
            self.steps_done += 1
            losses[k] = loss.detach()  # stays on the tensor side: no .item() sync per step
            if k + 1 in want:
                saved[k + 1] = self.params()
        return History(losses.numpy(), saved, time.perf_counter() - start)

    def params(self):
        return [(lin.weight.detach().T.double().numpy().copy(), lin.bias.detach().double().numpy().copy())
                for lin in self.linears]
