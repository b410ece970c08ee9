"""Why `torch-compiled` compiles its step with inductor's pattern matcher off: with it on, torch.compile (torch
2.13, CPU) miscompiles torch.add(w, g, alpha=-lr) -- the update torch.optim's SGD makes -- on gradients that
torch.func computes in the same graph. The test shows both halves: the miscompile, and the setting that removes it.
If a torch release fixes the first, this test fails and the workaround in implementations/torch_compiled.py can go."""
from __future__ import annotations

import pytest

from conftest import load_or_skip


def _step(torch, F):
    def loss_fn(params, x, y):
        W0, b0, W1, b1 = params
        return F.mse_loss(F.linear(torch.tanh(F.linear(x, W0, b0)), W1, b1), y)

    def step(params, x, y, lr):
        grads = torch.func.grad(loss_fn)(params, x, y)
        return [torch.add(p, g, alpha=-lr) for p, g in zip(params, grads)]
    return step


@pytest.mark.parametrize("pattern_matcher, wrong", [(True, True), (False, False)],
                         ids=["default", "pattern_matcher-off"])
def test_inductor_pattern_matcher_miscompiles_sgd_update(pattern_matcher, wrong):
    load_or_skip("torch-compiled")
    import torch
    import torch.nn.functional as F
    from xor_rosetta.data import xor_data
    from xor_rosetta.params import init_params
    from xor_rosetta.presets import get_preset
    x, y = (torch.as_tensor(a) for a in xor_data())
    params = [torch.as_tensor(a.T.copy() if a.ndim == 2 else a) for W, b in init_params(get_preset("seed-numpy"))
              for a in (W, b)]  # torch's layout: W (out, in)
    torch._dynamo.reset()  # no graph cached from the other case
    step = _step(torch, F)
    eager = step(params, x, y, 0.1)
    compiled = torch.compile(step, fullgraph=True, dynamic=False, options={"pattern_matcher": pattern_matcher})
    diff = max(float((a - b).abs().max()) for a, b in zip(compiled(params, x, y, 0.1), eager))
    assert (diff > 1e-3) is wrong, f"max |compiled - eager| after one SGD step: {diff:.2g}"
