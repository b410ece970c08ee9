"""Framework probes behind "Where frameworks differ": each measures one difference in the frameworks' own code, and
the setting that removes it. The table is assembled in `xor_rosetta.app.docs.differences`; the probes that need a
process of their own (Keras on JAX or torch) run there in a worker of that implementation."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xor_rosetta.compare import max_abs_diff
from xor_rosetta.data import xor_data
from xor_rosetta.interface import Conventions
from xor_rosetta.params import init_params
from xor_rosetta.presets import get_preset


@dataclass
class Row:
    topic: str
    what: str  # what differs, and how it was measured
    differs_by: float  # the measured difference
    setting: str  # what removes it
    with_setting: float  # the difference left with that setting


def _reference(spec, conventions, checkpoints=()):
    from xor_rosetta.reference import Reference
    x, y = xor_data(spec.dtype)
    m = Reference(spec, init_params(spec), conventions)
    return m, m.train(x, y, checkpoints=checkpoints)


def weight_layout() -> Row:
    import torch
    from xor_rosetta.implementations.torch_mlp import TorchMLP
    spec = get_preset("seed-keras")  # its 5x5 hidden layer accepts either orientation without a shape error
    x, _ = xor_data()
    from xor_rosetta.reference import Reference
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
    injected = [cls(spec, init_params(spec)).params()[0][1] for cls in (TorchMLP, KerasMLP)]  # first layer's bias
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
    from xor_rosetta.spec import Optimizer
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
    from xor_rosetta.reference import BCE_GRAD_EPS
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
    from xor_rosetta.implementations.keras_mlp import keras
    import tensorflow as tf
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
    from xor_rosetta.implementations._keras_recording import floatx
    from xor_rosetta.implementations.keras_mlp import KerasMLP, keras
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
    from xor_rosetta.implementations import keras_mlp  # noqa: F401 - quiets TensorFlow before its import
    import tensorflow as tf
    z = np.linspace(-4, 4, 20_001).astype(np.float32)
    exact = np.tanh(z.astype(np.float64))
    tf_err = float(np.max(np.abs(tf.tanh(z).numpy() - exact)))
    np_err = float(np.max(np.abs(np.tanh(z) - exact)))
    tf64 = float(np.max(np.abs(tf.tanh(z.astype(np.float64)).numpy() - exact)))
    return Row("TensorFlow float32 tanh", f"TF's float32 tanh is a fast rational approximation: max error {tf_err:.1e} "
               f"on [-4, 4], vs {np_err:.1e} for NumPy. Shown: |Δ| TF vs exact", tf_err,
               "float64 (TF's float64 tanh is exact to rounding)", tf64)


# --------------------------------------------------------------------------- JAX, and Keras on the JAX and torch backends

def _gradient_stream(dtype: str, steps: int = 1_000, size: int = 16):
    """Initial weights (size,) and `steps` gradients (steps, size) spanning six decades, the same for every optimizer."""
    rng = np.random.default_rng(0)
    return rng.uniform(-1, 1, size).astype(dtype), (rng.normal(size=(steps, size)) * np.logspace(-6, 0, size)).astype(dtype)


def _reference_on_stream(opt, conv: Conventions, w0, grads) -> np.ndarray:
    from xor_rosetta.reference import Optimizer
    w = w0.copy()
    o = Optimizer(opt, conv, [w])
    for g in grads:
        o.step([w], [g])
    return w


ADAM_STREAM = dict(lr=0.05, beta1=0.8, beta2=0.99, epsilon=1e-8)  # large enough steps that rounding shows


def optax_adam() -> Row:
    from xor_rosetta.implementations import jax_mlp  # noqa: F401 - switches jax's float64 on first
    import jax.numpy as jnp
    import optax
    from xor_rosetta.implementations.numpy_mlp import Adam
    from xor_rosetta.spec import Optimizer
    w0, grads = _gradient_stream("float64")
    o = Optimizer("adam", **ADAM_STREAM)
    tx = optax.adam(o.lr, b1=o.beta1, b2=o.beta2, eps=o.epsilon)
    w = jnp.asarray(w0)
    state = tx.init(w)
    for g in grads:  # eagerly, one optax call a step
        updates, state = tx.update(jnp.asarray(g), state, w)
        w = optax.apply_updates(w, updates)
    w = np.asarray(w)
    textbook, t = [w0.copy()], Adam([w0], o.lr, o.beta1, o.beta2, o.epsilon)
    for g in grads:
        t.step(textbook, [g])
    return Row("optax Adam", "optax's Adam is Kingma & Ba's textbook form, but its bias correction m/(1−β1ᵗ) is a "
               "jitted division by a scalar, which XLA compiles as a multiplication by the reciprocal: 1 ulp off "
               "the division in about a quarter of the steps. Max |Δ params|, textbook division (the NumPy "
               "implementation) vs optax, 1,000 Adam steps on one stream of gradients, float64",
               float(np.max(np.abs(textbook[0] - w))),
               "reference in optax's own form (`Conventions.adam = \"optax\"`)",
               float(np.max(np.abs(_reference_on_stream(o, Conventions(adam="optax"), w0, grads) - w))))


def keras_adam_on_stream(dtype: str) -> np.ndarray:
    """Keras' Adam on this process's backend, on `_gradient_stream` (a task run in a keras-torch worker)."""
    import keras
    from xor_rosetta.implementations._keras_recording import floatx
    w0, grads = _gradient_stream(dtype)
    with floatx(dtype):
        var, f = keras.Variable(w0, dtype=dtype), np.float64
        a = ADAM_STREAM
        opt = keras.optimizers.Adam(a["lr"], beta_1=f(a["beta1"]), beta_2=f(a["beta2"]), epsilon=a["epsilon"])
        opt.build([var])
    for g in grads:
        opt.apply([keras.ops.convert_to_tensor(g, dtype=dtype)], [var])
    return np.asarray(keras.ops.convert_to_numpy(var.value), dtype=np.float64)


BCE_Z = np.array([[-40.0], [-20.0], [-3.0], [0.5], [20.0], [40.0]])  # (6, 1) logits, saturated at both ends
BCE_Y = np.array([[1.0], [1.0], [0.0], [1.0], [0.0], [0.0]])  # (6, 1): the saturated ones are confidently wrong


def keras_bce_probe(dtype: str) -> tuple[float, np.ndarray]:
    """Keras BinaryCrossentropy on a Keras sigmoid, on this process's backend: (loss, d loss / d z) at BCE_Z."""
    import keras
    backend = keras.backend.backend()
    loss_fn = keras.losses.BinaryCrossentropy(dtype=dtype)
    z, y = BCE_Z.astype(dtype), BCE_Y.astype(dtype)
    if backend == "jax":
        import jax
        loss, dz = jax.value_and_grad(lambda t: loss_fn(y, keras.activations.sigmoid(t)))(z)
    elif backend == "torch":
        import torch
        t = torch.tensor(z, requires_grad=True)
        loss = loss_fn(torch.tensor(y), keras.activations.sigmoid(t))
        loss.backward()
        loss, dz = loss.detach(), t.grad
    else:
        import tensorflow as tf

        @tf.function  # graph mode, as in fit()
        def value_and_grad(t):
            with tf.GradientTape() as tape:
                tape.watch(t)
                value = loss_fn(y, keras.activations.sigmoid(t))
            return value, tape.gradient(value, t)

        loss, dz = value_and_grad(tf.constant(z))
    return float(np.asarray(loss)), np.asarray(dz, dtype=np.float64)


def keras_forward(name: str, patch: bool) -> float:
    """Max |Δ output| of `name` (float64) vs the float64 reference at seed-numpy's initial weights; with `patch`,
    after the unsupported one-line change that stops Keras mapping float64 to float32 (a task for a worker)."""
    if patch:
        from keras.src.backend.common import dtypes  # private, unsupported: shown only as what removes it
        dtypes.BIT64_TO_BIT32_DTYPE.pop("float64", None)
    from xor_rosetta import registry
    from xor_rosetta.reference import Reference
    cls = registry.load(name)
    spec = get_preset("seed-numpy")
    x, _ = xor_data()
    return float(np.max(np.abs(cls(spec, init_params(spec)).forward(x) - Reference(spec, init_params(spec)).forward(x))))
