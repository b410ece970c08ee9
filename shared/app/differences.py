"""Where frameworks differ: each row measures a difference and the setting that removes it.

`python -m xor_rosetta.app.differences` prints the README table; tests/test_differences.py asserts each row.
Needs torch and keras (imported inside the functions that use them).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..compare import max_abs_diff
from ..data import xor_data
from ..interface import Conventions
from ..params import init_params
from ..presets import get_preset


@dataclass
class Row:
    topic: str
    what: str  # what differs, and how it was measured
    differs_by: float  # the measured difference
    setting: str  # what removes it
    with_setting: float  # the difference left with that setting


def _reference(spec, conventions, checkpoints=()):
    from ..reference import Reference
    x, y = xor_data(spec.dtype)
    m = Reference(spec, init_params(spec), conventions)
    return m, m.train(x, y, checkpoints=checkpoints)


def weight_layout() -> Row:
    import torch
    from xor_rosetta.implementations.torch_mlp import TorchMLP
    spec = get_preset("seed-keras")  # its 5x5 hidden layer accepts either orientation without a shape error
    x, _ = xor_data()
    from ..reference import Reference
    params = init_params(spec)
    ref = Reference(spec, params)
    wrong = TorchMLP(spec, params)
    with torch.no_grad():
        wrong.linears[1].weight.copy_(torch.from_numpy(params[1][0]))  # (in, out) copied as if (out, in)
    right = TorchMLP(spec, params)
    return Row("Dense weight layout", "torch.nn.Linear keeps W as (out, in); Keras and NumPy as (in, out). "
               "Copying a square W untransposed: max |Δ output|, seed-keras",
               float(np.max(np.abs(wrong.forward(x) - ref.forward(x)))),
               "transpose on the way in and out (`W.T`)", float(np.max(np.abs(right.forward(x) - ref.forward(x)))))


def default_init() -> Row:
    from xor_rosetta.implementations.keras_mlp import KerasMLP, keras  # keras_mlp picks the backend and quiets TF
    import torch
    from xor_rosetta.implementations.torch_mlp import TorchMLP
    torch.manual_seed(0)
    t_bias = torch.nn.Linear(2, 5, dtype=torch.float64).bias.detach().numpy()
    k_layer = keras.layers.Dense(5, dtype="float64")
    k_layer.build((None, 2))
    k_bias = keras.ops.convert_to_numpy(k_layer.bias)
    spec = get_preset("seed-keras")
    x, _ = xor_data()
    injected = [cls(spec, init_params(spec)).forward(x) for cls in (TorchMLP, KerasMLP)]
    return Row("Default initialisation", "torch Linear: kaiming_uniform(a=√5) weights and a uniform bias; Keras Dense: "
               "glorot_uniform and zero bias. Max |Δ bias| of fresh 2→5 layers",
               float(np.max(np.abs(t_bias - k_bias))), "inject the canonical weights from `xor_rosetta.params`",
               float(np.max(np.abs(injected[0] - injected[1]))))


def _gap_to_own_convention(spec) -> float:
    """Largest final-params distance of torch and keras from the reference in their own conventions."""
    from xor_rosetta.implementations.keras_mlp import KerasMLP
    from xor_rosetta.implementations.torch_mlp import TorchMLP
    x, y = xor_data(spec.dtype)
    gaps = []
    for cls in (TorchMLP, KerasMLP):
        m = cls(spec, init_params(spec))
        m.train(x, y)
        gaps.append(max_abs_diff(m.params(), _reference(spec, cls.conventions, [spec.steps])[1].checkpoints[spec.steps]))
    return max(gaps)


def adam_epsilon() -> Row:
    spec = get_preset("seed-keras")
    _, h_torch = _reference(spec, Conventions(adam="torch", bce="logits"), [spec.steps])
    _, h_keras = _reference(spec, Conventions(adam="keras", bce="logits"), [spec.steps])
    return Row("Adam epsilon", "PyTorch adds ε to √v̂; Keras adds it to √v and folds the bias correction into the step "
               "(an \"ε-hat\" = ε·√(1-β2ᵗ)). Max |Δ params| after seed-keras' 1,000 steps, same ε = 1e-7",
               max_abs_diff(h_torch.checkpoints[spec.steps], h_keras.checkpoints[spec.steps]),
               "reference in each framework's own form (`Conventions.adam`)", _gap_to_own_convention(spec))


def momentum_form(dtype: str = "float64") -> Row:
    from ..spec import Optimizer
    spec = get_preset("seed-numpy").replace(optimizer=Optimizer("sgd", lr=0.05, momentum=0.9), steps=2_000, dtype=dtype)
    _, a = _reference(spec, Conventions(momentum="torch"), [spec.steps])
    _, b = _reference(spec, Conventions(momentum="keras"), [spec.steps])
    return Row("SGD momentum", "PyTorch: v = μv + g, w -= lr·v; Keras: v = μv − lr·g, w += v. Equal in exact "
               "arithmetic, they differ by rounding only (in float32, below the frameworks' other rounding): "
               f"max |Δ params|, 2,000 steps of seed-numpy with μ = 0.9, {dtype}",
               max_abs_diff(a.checkpoints[spec.steps], b.checkpoints[spec.steps]),
               "reference in each framework's own form (`Conventions.momentum`)", _gap_to_own_convention(spec))


def bce_saturation() -> Row:
    import torch
    z = torch.tensor([[40.0]], dtype=torch.float64, requires_grad=True)  # a confident, wrong output
    y = torch.zeros(1, 1, dtype=torch.float64)
    probs = torch.nn.BCELoss()(torch.sigmoid(z), y)  # sigmoid(40) == 1.0: log(1 - p) clamped at -100
    logits = torch.nn.BCEWithLogitsLoss()(z, y)  # 40, the true value
    return Row("BCE on probabilities", "torch BCELoss on sigmoid outputs clamps log at −100 and loses the gradient "
               "once p rounds to 1; Keras' fit() recovers the logits behind the sigmoid. |Δ loss| at z = 40, y = 0",
               abs(probs.item() - logits.item()), "compute BCE from logits (`BCEWithLogitsLoss`, `from_logits=True`)",
               abs(logits.item() - (40.0 + np.log1p(np.exp(-40.0)))))  # vs the exact log(1 + e^40)


def torch_bce_grad_epsilon() -> Row:
    import torch
    from ..reference import BCE_GRAD_EPS
    z = torch.tensor([[-30.4]], dtype=torch.float64, requires_grad=True)  # p = 6e-14: p*(1-p) is below the clamp
    torch.nn.BCELoss()(torch.sigmoid(z), torch.ones(1, 1, dtype=torch.float64)).backward()
    p = float(torch.sigmoid(z).detach())
    exact = -(1 - p) / 1e-12 * (p * (1 - p))  # the documented clamp, max(p*(1-p), 1e-12), in float64
    modelled = -(1 - p) / BCE_GRAD_EPS * (p * (1 - p))
    g = float(z.grad)
    return Row("torch BCE gradient clamp", "torch's BCELoss backward divides by max(p·(1−p), ε) with ε = 1e-12 held as "
               "a float32 (9.99999996e-13), even in float64. Relative |Δ grad| vs a float64 1e-12, at z = −30.4, y = 1",
               abs(g - exact) / abs(exact), "model ε as float32(1e-12) in the reference (`BCE_GRAD_EPS`)",
               abs(g - modelled) / abs(modelled))


def keras_clipped_bce() -> Row:
    from xor_rosetta.implementations.keras_mlp import keras, tf
    z = tf.constant([[20.0]], dtype=tf.float64)
    y = tf.ones((1, 1), dtype=tf.float64)
    plain = float(keras.losses.binary_crossentropy(y, tf.sigmoid(z))[0])  # bare probabilities: clipped to 1 - 1e-7
    carried = float(keras.losses.binary_crossentropy(y, keras.activations.sigmoid(z))[0])  # carries its logits
    exact = float(np.log1p(np.exp(-20.0)))
    return Row("Keras BCE on bare probabilities", "Keras clips probabilities to [1e-7, 1 − 1e-7] unless they come "
               "from a Keras sigmoid (which carries its logits) or a graph-mode Sigmoid op. |Δ loss| vs exact at "
               "z = 20, y = 1", abs(plain - exact), "end the model in a Keras sigmoid activation, or `from_logits=True`",
               abs(carried - exact))


def keras_float32_hyperparameters() -> Row:
    from xor_rosetta.implementations.keras_mlp import KerasMLP, floatx, keras
    spec = get_preset("seed-keras").replace(steps=1)
    x, y = xor_data()
    ref = _reference(spec, KerasMLP.conventions, [1])[1].checkpoints[1]
    fixed = KerasMLP(spec, init_params(spec))
    fixed.train(x, y)
    naive = KerasMLP(spec, init_params(spec))
    with floatx("float64"):
        naive.optimizer = keras.optimizers.Adam(1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-7)  # Python floats
    naive.train(x, y)
    return Row("Keras hyperparameters in float64", "`ops.cast(0.999, 'float64')` goes through a float32 tensor, so "
               "Adam's β powers (and SGD's momentum) carry float32 rounding into a float64 run. Max |Δ params| after "
               "one Adam step of seed-keras", max_abs_diff(naive.params(), ref),
               "pass `np.float64(beta)`; also build layers with an explicit dtype and the optimizer under floatx "
               "float64 (its learning-rate variable is created at floatx)", max_abs_diff(fixed.params(), ref))


def float32_drift() -> Row:
    spec = get_preset("seed-numpy")
    _, h64 = _reference(spec, Conventions(), [spec.steps])
    _, h32 = _reference(spec.replace(dtype="float32"), Conventions(), [spec.steps])
    from xor_rosetta.implementations.torch_mlp import TorchMLP
    x, y = xor_data("float32")
    m = TorchMLP(spec.replace(dtype="float32"), init_params(spec))
    m.train(x, y)
    return Row("float32 drift", "float32 rounding accumulates over training: max |Δ params| of float32 vs float64 "
               "NumPy after 10,000 seed-numpy steps", max_abs_diff(h32.checkpoints[spec.steps], h64.checkpoints[spec.steps]),
               "compare float32 runs with a float32 reference (torch shown)", max_abs_diff(m.params(), h32.checkpoints[spec.steps]))


def tf_float32_tanh() -> Row:
    from xor_rosetta.implementations.keras_mlp import tf
    z = np.linspace(-4, 4, 20_001).astype(np.float32)
    exact = np.tanh(z.astype(np.float64))
    tf_err = float(np.max(np.abs(tf.tanh(z).numpy() - exact)))
    np_err = float(np.max(np.abs(np.tanh(z) - exact)))
    tf64 = float(np.max(np.abs(tf.tanh(z.astype(np.float64)).numpy() - exact)))
    return Row("TensorFlow float32 tanh", f"TF's float32 tanh is a fast rational approximation: max error {tf_err:.1e} "
               f"on [-4, 4], vs {np_err:.1e} for NumPy. Shown: |Δ| TF vs exact", tf_err,
               "float64 (TF's float64 tanh is exact to rounding)", tf64)


ROWS = [weight_layout, default_init, adam_epsilon, momentum_form, bce_saturation, torch_bce_grad_epsilon,
        keras_clipped_bce, keras_float32_hyperparameters, float32_drift, tf_float32_tanh]


def table() -> str:
    lines = ["| topic | what differs (and the measurement) | measured | setting that removes it | left |",
             "|---|---|---:|---|---:|"]
    for row in (f() for f in ROWS):
        cells = [row.topic, row.what, f"{row.differs_by:.2g}", row.setting, f"{row.with_setting:.2g}"]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
