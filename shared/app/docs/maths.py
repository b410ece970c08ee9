"""results/maths.md: the forward pass, the losses, backprop and every optimizer form the reference models, each with
worked numbers from one step of seed-numpy and one of seed-keras.

The document is generated from the structure below and executed while it is generated, like a notebook: every
`>>>` line is run and its output written under it. tests/test_maths.py runs the committed file again as a doctest,
so a number that drifts by more than its last printed digit fails, and each worked example ends by judging its
numbers against the NumPy reference (`xor_rosetta.reference.Reference`, an independent piece of code) through the
tolerance policy.

To document a new form of an operation (a new value of a `Conventions` field): add a `Form` to FORMS, with the
equations and a worked example that ends in `against_reference(...)`, and name in `used_by` every built-in
implementation that uses it. A new field also gets an entry in FIELDS. tests/test_maths.py fails while an
implementation uses a form that has no entry here, or a form's `used_by` names the wrong implementations.
"""
from __future__ import annotations

import ast
import contextlib
import io
import re
from dataclasses import dataclass

import numpy as np

DIGITS = 8  # significant digits printed by show()


# ------------------------------------------------------------------------------------------ used inside the document

def fmt(v: float) -> str:
    return f"{float(v):.{DIGITS}g}"


def show(a) -> None:
    """Print a number or an array to DIGITS significant digits, a row per line, aligned."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 0:
        print(fmt(a))
        return
    cells = [[fmt(v) for v in row] for row in np.atleast_2d(a)]
    width = max(len(c) for row in cells for c in row)
    print("\n".join("[" + " ".join(c.rjust(width) for c in row) + "]" for row in cells))


def against_reference(spec, conventions, losses, grads=None, params=None) -> str:
    """The tolerance policy's verdict on a worked example: `losses` (one per step, taken before its update), the
    gradients at the initial weights [dW0, db0, ...] and the params after len(losses) steps [W0, b0, ...], against
    xor_rosetta.reference.Reference trained from the same initial weights in `conventions`."""
    from xor_rosetta.compare import judge
    from xor_rosetta.data import xor_data
    from xor_rosetta.params import init_params
    from xor_rosetta.reference import Reference

    def pairs(flat):
        if flat is None:
            return None
        return [(np.asarray(flat[i]), np.asarray(flat[i + 1])) for i in range(0, len(flat), 2)]

    x, y = xor_data(spec.dtype)
    steps = len(losses)
    ref = Reference(spec, init_params(spec), conventions)
    ref_grads = ref.gradients(x, y)
    hist = ref.train(x, y, steps=steps, checkpoints=[steps])
    mine = {} if params is None else {steps: pairs(params)}
    j = judge(spec.dtype, [steps], pairs(grads), None if grads is None else ref_grads, np.array(losses, dtype=float),
              hist.loss, mine, hist.checkpoints)
    return j.verdict


# -------------------------------------------------------------------------------------------------------- structure

@dataclass(frozen=True)
class Form:
    """One way of computing an operation, named by a value of a `Conventions` field."""
    field: str  # the Conventions field: "bce", "momentum", "adam", ...
    value: str  # the value that names this form: "probs", "torch", ...
    used_by: str  # who computes it this way: the API, then "used by" and each implementation that does, in backticks
    maths: str  # the equations, markdown with $$ ... $$ blocks
    code: str  # the worked example, ending in against_reference(...) with these conventions


@dataclass(frozen=True)
class Field:
    title: str
    section: str  # "losses" | "optimizers" | "other": where its forms appear
    intro: str
    setup: str = ""  # code run once before its forms (shared names)


SETUP = '''\
import numpy as np
from xor_rosetta.app.docs.maths import show, against_reference  # show(): 8 significant digits
from xor_rosetta.data import xor_data
from xor_rosetta.interface import Conventions
from xor_rosetta.params import init_params
from xor_rosetta.presets import get_preset
from xor_rosetta.spec import Optimizer
x, y = xor_data()  # x (4, 2): the four input rows; y (4, 1): their XOR
show(x.T)
show(y.T)
'''

NUMPY_INIT = '''\
spec = get_preset("seed-numpy")  # 2-5-1, tanh then linear, MSE, SGD at lr 0.1, full batch
(W0, b0), (W1, b1) = init_params(spec)  # np.random.seed(1); W = 2 * np.random.random((fan_in, fan_out)) - 1
show(W0)  # (2, 5)
show(W1)  # (5, 1); both biases start at zero
'''

KERAS_INIT = '''\
k_spec = get_preset("seed-keras")  # 2-5-5-1, relu, relu, sigmoid, BCE, Adam at lr 0.001, full batch
(K0, c0), (K1, c1), (K2, c2) = init_params(k_spec)  # glorot-uniform from seed 0; zero biases
show(K0)  # (2, 5)
show(K1)  # (5, 5)
show(K2)  # (5, 1)
'''

NUMPY_FORWARD = '''\
z0 = x @ W0 + b0  # (4, 5)
h1 = np.tanh(z0)  # (4, 5)
z1 = h1 @ W1 + b1  # (4, 1)
out = z1  # the output activation is linear
show(h1)
show(out)
'''

KERAS_FORWARD = '''\
u0 = x @ K0 + c0  # (4, 5)
g1 = np.maximum(u0, 0)  # relu
u1 = g1 @ K1 + c1  # (4, 5)
g2 = np.maximum(u1, 0)  # relu
u2 = g2 @ K2 + c2  # (4, 1): the logits
p = 1 / (1 + np.exp(-u2))  # sigmoid: the predicted probability of a 1
show(u2)
show(p)
'''

MSE = '''\
L = np.mean((out - y) ** 2)
show(L)
'''

NUMPY_BACKPROP = '''\
m = y.size  # 4: the mean runs over the batch and the outputs
dz1 = 2 * (out - y) / m  # (4, 1): dL/dz1; linear output, f'(z1) = 1
dW1 = h1.T @ dz1  # (5, 1)
db1 = dz1.sum(axis=0)  # (1,)
dz0 = (dz1 @ W1.T) * (1 - h1 ** 2)  # (4, 5): tanh'(z0) = 1 - tanh(z0)^2 = 1 - h1^2
dW0 = x.T @ dz0  # (2, 5)
db0 = dz0.sum(axis=0)  # (5,)
show(dW0)
show(db0)
show(dW1.T)
show(db1)
'''

KERAS_BACKPROP = '''\
def backprop(du2):  # from dL/du2 (4, 1) back to the first layer, as above
    du1 = (du2 @ K2.T) * (u1 > 0)  # (4, 5): relu'(u) = 1 where u > 0, else 0
    du0 = (du1 @ K1.T) * (u0 > 0)  # (4, 5)
    return [x.T @ du0, du0.sum(axis=0), g1.T @ du1, du1.sum(axis=0), g2.T @ du2, du2.sum(axis=0)]
k_grads = backprop(du2_logits)  # [dK0, dc0, dK1, dc1, dK2, dc2], from the BCE-on-logits dL/du2
show(k_grads[0])  # dK0 (2, 5)
show(k_grads[2])  # dK1 (5, 5)
show(k_grads[4].T)  # dK2 (5, 1), shown as a row
against_reference(k_spec, Conventions(bce="logits"), [L_logits], k_grads)
against_reference(k_spec, Conventions(bce="probs"), [L_probs], backprop(du2_probs))
against_reference(k_spec, Conventions(bce="optax"), [L_optax], backprop(du2_optax))
against_reference(k_spec, Conventions(bce="keras-jax"), [L_kjax], backprop(du2_kjax))
against_reference(k_spec, Conventions(bce="keras-torch"), [L_ktorch], backprop(du2_ktorch))
'''

SGD = '''\
lr = spec.optimizer.lr  # 0.1
after = [W0 - lr * dW0, b0 - lr * db0, W1 - lr * dW1, b1 - lr * db1]
show(after[0])  # W0 after one step
show(after[2].T)  # W1 after one step, as a row
against_reference(spec, Conventions(), [L], [dW0, db0, dW1, db1], after)
'''

FIELDS = {
    "bce": Field(
        "Binary cross-entropy", "losses",
        "seed-keras ends in a sigmoid, $p = \\sigma(z) = 1/(1+e^{-z})$, and trains on binary cross-entropy. "
        "Frameworks compute it in five forms that agree while $p$ lies well inside (0, 1) and part where the "
        "sigmoid saturates: torch takes the log of the probabilities and clamps it, Keras on TensorFlow and optax "
        "work from the logits $z$ behind the sigmoid, Keras on JAX and on torch clip the probabilities first. "
        "Worked on seed-keras' initial outputs (between 0.38 and 0.5, where all five agree to rounding), and each "
        "form on one confidently wrong output, $z = 40$ for $y = 0$, where they part:",
        '''\
z40 = np.array([[40.0]])  # a confidently wrong logit, for y = 0
p40 = 1 / (1 + np.exp(-z40))
show(p40)  # rounds to 1
'''),
    "momentum": Field(
        "SGD with momentum", "optimizers",
        "Two forms, equal in exact arithmetic for a constant learning rate (substitute $v_K = -\\eta v_T$); they "
        "round differently. Worked as two steps of seed-numpy with $\\mu = 0.9$ (from a zero buffer the first "
        "step is plain SGD in both), with the forward pass and backprop above as one function:",
        '''\
m_spec = spec.replace(optimizer=Optimizer("sgd", lr=0.1, momentum=0.9))
def loss_and_grads(W0, b0, W1, b1):  # seed-numpy's forward pass, MSE and backprop, as above
    h1 = np.tanh(x @ W0 + b0)
    out = h1 @ W1 + b1
    dz1 = 2 * (out - y) / y.size
    dz0 = (dz1 @ W1.T) * (1 - h1 ** 2)
    return np.mean((out - y) ** 2), [x.T @ dz0, dz0.sum(axis=0), h1.T @ dz1, dz1.sum(axis=0)]
mu, lr, start = 0.9, 0.1, [W0, b0, W1, b1]
'''),
    "adam": Field(
        "Adam", "optimizers",
        "Kingma & Ba's Adam keeps running averages of the gradient $m$ and of its square $v$, corrects their "
        "bias towards zero, and steps by $\\eta\\,\\hat m/(\\sqrt{\\hat v} + \\epsilon)$. Frameworks place "
        "$\\epsilon$ and the bias correction differently, and round the moments in different orders. Worked as "
        "seed-keras' first step ($t = 1$) from zero moments, each form with the BCE form its framework uses. At "
        "$t = 1$, $\\hat m = g$ and $\\hat v = g^2$, so every weight moves by about $\\eta$ against the sign of "
        "its gradient; the forms differ where $|g|$ is not far above $\\epsilon$.",
        '''\
lr, b1, b2, eps, t = 0.001, 0.9, 0.999, 1e-7, 1  # seed-keras: Keras' defaults
k_start = [K0, c0, K1, c1, K2, c2]
zeros = [np.zeros_like(w) for w in k_start]
k_grads_probs = backprop(du2_probs)
'''),
}

FORMS = [
    Form("bce", "probs", "torch.nn.BCELoss; used by `torch`, `torch-compiled`",
         "$$L = -\\frac{1}{m}\\sum_r \\big[y_r \\max(\\log p_r, -100) + (1-y_r)\\max(\\log(1-p_r), -100)\\big]$$\n\n"
         "$$\\frac{\\partial L}{\\partial p_r} = \\frac{1}{m}\\,\\frac{p_r - y_r}{\\max\\big(p_r(1-p_r),\\ "
         "\\epsilon\\big)},\\quad \\epsilon = \\mathrm{float32}(10^{-12}),\\qquad "
         "\\frac{\\partial L}{\\partial z_r} = \\frac{\\partial L}{\\partial p_r}\\,p_r(1-p_r)$$\n\n"
         "The clamp at $-100$ bounds the loss once $p$ rounds to 0 or 1, and then the gradient is lost.",
         '''\
L_probs = -np.mean(y * np.maximum(np.log(p), -100) + (1 - y) * np.maximum(np.log(1 - p), -100))
dp = (p - y) / np.maximum(p * (1 - p), float(np.float32(1e-12))) / y.size  # dL/dp (4, 1)
du2_probs = dp * (p * (1 - p))  # (4, 1): sigmoid'(u2) = p (1 - p)
show(L_probs)
show(du2_probs.T)
with np.errstate(divide="ignore"):  # log(1 - p40) = log(0) = -inf
    show(-np.maximum(np.log(1 - p40), -100))  # z = 40, y = 0: the clamp's 100; gradient 0
against_reference(k_spec, Conventions(bce="probs"), [L_probs])  # the loss; its gradients: under Backprop
'''),
    Form("bce", "logits", "Keras fit() on TensorFlow, on a sigmoid output (it recovers the logits), "
         "torch.nn.BCEWithLogitsLoss; used by `numpy`, `keras`, `keras-xla`",
         "$$L = \\frac{1}{m}\\sum_r \\big[\\max(z_r, 0) - z_r y_r + \\log\\big(1 + e^{-|z_r|}\\big)\\big]$$\n\n"
         "$$\\frac{\\partial L}{\\partial z_r} = \\frac{p_r - y_r}{m}$$\n\n"
         "The same loss, rearranged so that no exponential overflows and no probability is rounded before the "
         "log; the sigmoid's derivative cancels against the log's.",
         '''\
L_logits = np.mean(np.maximum(u2, 0) - u2 * y + np.log1p(np.exp(-np.abs(u2))))
du2_logits = (p - y) / y.size  # (4, 1)
show(L_logits)
show(du2_logits.T)
show(np.maximum(z40, 0) + np.log1p(np.exp(-np.abs(z40))))  # z = 40, y = 0: the exact loss; gradient 1/m
against_reference(k_spec, Conventions(bce="logits"), [L_logits])
'''),
    Form("bce", "optax", "optax.sigmoid_binary_cross_entropy; used by `jax`, `jax-scan`",
         "$$L = \\frac{1}{m}\\sum_r \\big[y_r\\,s(-z_r) + (1-y_r)\\,s(z_r)\\big], \\qquad "
         "s(u) = \\log(1 + e^u) = -\\log\\sigma(-u)$$\n\n"
         "$$\\frac{\\partial L}{\\partial z_r} = \\frac{1}{m}\\big[-y_r\\,e^{-z_r - s(-z_r)} + "
         "(1-y_r)\\,e^{z_r - s(z_r)}\\big]$$\n\n"
         "The loss from the logits again, as $-y\\log\\sigma(z) - (1-y)\\log\\sigma(-z)$ with JAX's `log_sigmoid` "
         "$= -$`softplus`$(-z)$ and `softplus` $=$ `logaddexp(z, 0)`. Its gradient comes from `logaddexp`'s own "
         "derivative, $e^{u - s(u)} = \\sigma(u)$: equal to $(p - y)/m$ in exact arithmetic, rounded differently.",
         '''\
def softplus(u):  # log(1 + e^u) without overflow, as jnp.logaddexp(u, 0)
    return np.maximum(u, 0) + np.log1p(np.exp(-np.abs(u)))
L_optax = np.mean(y * softplus(-u2) + (1 - y) * softplus(u2))
du2_optax = (-y * np.exp(-u2 - softplus(-u2)) + (1 - y) * np.exp(u2 - softplus(u2))) / y.size  # (4, 1)
show(L_optax)
show(du2_optax.T)
show(softplus(z40))  # z = 40, y = 0: the exact loss, as from the logits; gradient 1/m
against_reference(k_spec, Conventions(bce="optax"), [L_optax])
'''),
    Form("bce", "keras-jax", "Keras' BinaryCrossentropy on the JAX backend; used by `keras-jax`",
         "$$q_r = \\mathrm{clip}(p_r, \\epsilon, 1 - \\epsilon),\\ \\epsilon = 10^{-7}, \\qquad "
         "L = -\\frac{1}{m}\\sum_r \\big[y_r \\log q_r + (1-y_r)\\log(1-q_r)\\big]$$\n\n"
         "$$\\frac{\\partial L}{\\partial z_r} = \\frac{1}{m}\\Big[-\\frac{y_r}{q_r} + \\frac{1-y_r}{1-q_r}\\Big]"
         "\\,c_r\\,p_r(1-p_r), \\qquad c_r = 1 \\text{ inside the clip, } \\tfrac12 \\text{ at a bound, } 0 "
         "\\text{ outside}$$\n\n"
         "A JAX array cannot carry the logits behind Keras' sigmoid, so Keras clips the probabilities to "
         "`keras.config.epsilon()` and takes their log. Outside the clip the loss is stuck at "
         "$-\\log 10^{-7} \\approx 16.1$ and the gradient is zero (`jnp.clip` is a `minimum` of a `maximum`, "
         "whose gradient is halved at a tie).",
         '''\
lo, hi = 1e-7, 1 - 1e-7  # keras.config.epsilon()
q = np.clip(p, lo, hi)
L_kjax = -np.mean(y * np.log(q) + (1 - y) * np.log(1 - q))
c = np.where((p > lo) & (p < hi), 1.0, np.where((p == lo) | (p == hi), 0.5, 0.0))  # jnp.clip's gradient
du2_kjax = (-y / q + (1 - y) / (1 - q)) / y.size * c * (p * (1 - p))  # (4, 1)
show(L_kjax)
show(du2_kjax.T)
show(-np.log(1 - np.clip(p40, lo, hi)))  # z = 40, y = 0: the clip's 16.1; gradient 0
against_reference(k_spec, Conventions(bce="keras-jax"), [L_kjax])
'''),
    Form("bce", "keras-torch", "Keras' BinaryCrossentropy on the torch backend; used by `keras-torch`",
         "$$q_r = \\mathrm{clip}(p_r, \\epsilon, 1 - \\epsilon),\\ \\epsilon = 10^{-7}, \\qquad "
         "L = -\\frac{1}{m}\\sum_r \\big[y_r \\log q_r + (1-y_r)\\log(1-q_r)\\big]$$\n\n"
         "$$\\frac{\\partial L}{\\partial z_r} = \\frac{1}{m}\\,\\frac{q_r - y_r}{q_r(1-q_r)}\\,c_r\\,p_r(1-p_r), "
         "\\qquad c_r = 1 \\text{ on } [\\epsilon, 1-\\epsilon] \\text{, bounds included, else } 0$$\n\n"
         "The same clip, then torch's `F.binary_cross_entropy` on the clipped $q$: `bce=\"probs\"` above, whose "
         "clamp at $-100$ and $\\max(\\cdot, 10^{-12})$ never act inside $[10^{-7}, 1 - 10^{-7}]$. It parts from "
         "the JAX backend's form only at a bound (`torch.clip` passes the whole gradient there) and in rounding; "
         "at $z = 40$ it gives the same 16.1.",
         '''\
q = np.clip(p, lo, hi)
L_ktorch = -np.mean(y * np.log(q) + (1 - y) * np.log(1 - q))
c = ((p >= lo) & (p <= hi)).astype(float)  # torch.clip's gradient
du2_ktorch = (q - y) / (q * (1 - q)) / y.size * c * (p * (1 - p))  # (4, 1)
show(L_ktorch)
show(du2_ktorch.T)
against_reference(k_spec, Conventions(bce="keras-torch"), [L_ktorch])
'''),
    Form("momentum", "torch", "torch.optim.SGD, optax.sgd(momentum=...); used by `numpy`, `torch`, `torch-compiled`, "
         "`jax`, `jax-scan`",
         "$$v \\leftarrow \\mu v + g, \\qquad w \\leftarrow w - \\eta v$$",
         '''\
w, v, losses = start, [np.zeros_like(a) for a in start], []
for step in (1, 2):
    L_step, g = loss_and_grads(*w)
    v = [mu * vi + gi for vi, gi in zip(v, g)]  # v <- mu v + g
    w = [wi - lr * vi for wi, vi in zip(w, v)]  # w <- w - lr v
    losses.append(L_step)
w_torch = w
show(losses)
show(v[0])  # the W0 buffer after two steps
show(w_torch[0])  # W0 after two steps
against_reference(m_spec, Conventions(momentum="torch"), losses, params=w_torch)
'''),
    Form("momentum", "keras", "keras.optimizers.SGD, on every backend; used by `keras`, `keras-xla`, `keras-jax`, "
         "`keras-torch`",
         "$$v \\leftarrow \\mu v - \\eta g, \\qquad w \\leftarrow w + v$$",
         '''\
w, v, losses = start, [np.zeros_like(a) for a in start], []
for step in (1, 2):
    L_step, g = loss_and_grads(*w)
    v = [mu * vi - lr * gi for vi, gi in zip(v, g)]  # v <- mu v - lr g
    w = [wi + vi for wi, vi in zip(w, v)]  # w <- w + v
    losses.append(L_step)
show(v[0])  # the W0 buffer: -lr times the torch form's
show(w[0])  # W0 after two steps
max(float(np.max(np.abs(a - b))) for a, b in zip(w, w_torch)) < 1e-15  # the two forms: rounding apart
against_reference(m_spec, Conventions(momentum="keras"), losses, params=w)
'''),
    Form("adam", "torch", "torch.optim.Adam; used by `torch`, `torch-compiled`",
         "$$m \\leftarrow m + (1-\\beta_1)(g - m), \\qquad v \\leftarrow \\beta_2 v + (1-\\beta_2)\\,g^2$$\n\n"
         "$$w \\leftarrow w - \\frac{\\eta}{1-\\beta_1^t}\\cdot\\frac{m}{\\sqrt{v}/\\sqrt{1-\\beta_2^t} + \\epsilon}$$\n\n"
         "That is $\\eta\\,\\hat m/(\\sqrt{\\hat v}+\\epsilon)$ with $\\epsilon$ added to $\\sqrt{\\hat v}$, in "
         "torch's order of operations (the first moment by `lerp`).",
         '''\
m1 = [mi + (g - mi) * (1 - b1) for mi, g in zip(zeros, k_grads_probs)]  # torch: exp_avg.lerp_(grad, 1 - b1)
v1 = [vi * b2 + (1 - b2) * (g * g) for vi, g in zip(zeros, k_grads_probs)]
step_size = lr / (1 - b1 ** t)
denom = [np.sqrt(vi) / np.sqrt(1 - b2 ** t) + eps for vi in v1]
w_torch = [w - step_size * (mi / d) for w, mi, d in zip(k_start, m1, denom)]
show(m1[4].T)  # the first moment of dK2
show(v1[4].T)  # its second moment
show((w_torch[4] - K2).T)  # K2's update
against_reference(k_spec, Conventions(adam="torch", bce="probs"), [L_probs], k_grads_probs, w_torch)
'''),
    Form("adam", "keras", "keras.optimizers.Adam on TensorFlow and JAX; used by `keras`, `keras-xla`, `keras-jax`",
         "$$m \\leftarrow m + (1-\\beta_1)(g - m), \\qquad v \\leftarrow v + (1-\\beta_2)(g^2 - v)$$\n\n"
         "$$\\alpha = \\eta\\,\\frac{\\sqrt{1-\\beta_2^t}}{1-\\beta_1^t}, \\qquad "
         "w \\leftarrow w - \\frac{\\alpha\\, m}{\\sqrt{v} + \\epsilon}$$\n\n"
         "The bias correction is folded into the step size and $\\epsilon$ is added to $\\sqrt{v}$, not "
         "$\\sqrt{\\hat v}$: the same as torch's form with $\\hat\\epsilon = \\epsilon\\sqrt{1-\\beta_2^t}$ in "
         "place of $\\epsilon$ (at $t = 1$, $\\hat\\epsilon = 3.2\\times10^{-9}$).",
         '''\
m1 = [mi + (g - mi) * (1 - b1) for mi, g in zip(zeros, k_grads)]
v1 = [vi + (g * g - vi) * (1 - b2) for vi, g in zip(zeros, k_grads)]
alpha = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
w_keras = [w - (mi * alpha) / (np.sqrt(vi) + eps) for w, mi, vi in zip(k_start, m1, v1)]
show(alpha)
show((w_keras[4] - K2).T)  # K2's update
show(max(float(np.max(np.abs(a - b))) for a, b in zip(w_keras, w_torch)))  # largest difference from torch's form
against_reference(k_spec, Conventions(adam="keras", bce="logits"), [L_logits], k_grads, w_keras)
'''),
    Form("adam", "keras-torch", "keras.optimizers.Adam on the torch backend; used by `keras-torch`",
         "$$m \\leftarrow \\beta_1 m + (1-\\beta_1)\\,g, \\qquad v \\leftarrow \\beta_2 v + (1-\\beta_2)\\,g^2, "
         "\\qquad w \\leftarrow w - \\frac{\\alpha\\, m}{\\sqrt{v} + \\epsilon}$$\n\n"
         "Keras' step size $\\alpha$ and $\\epsilon$ as above; the moments by torch's foreach ops "
         "(`_foreach_mul_`, then `_foreach_add_(alpha=1 - beta_1)`), rounded in that order instead of Keras' "
         "$m + (1-\\beta_1)(g - m)$. From zero moments the two orders round alike; they part from $t = 2$.",
         '''\
k_grads_ktorch = backprop(du2_ktorch)
m1 = [mi * b1 + (1 - b1) * g for mi, g in zip(zeros, k_grads_ktorch)]
v1 = [vi * b2 + (1 - b2) * (g * g) for vi, g in zip(zeros, k_grads_ktorch)]
w_ktorch = [w - (mi * alpha) / (np.sqrt(vi) + eps) for w, mi, vi in zip(k_start, m1, v1)]  # alpha: Keras', above
show((w_ktorch[4] - K2).T)  # K2's update
against_reference(k_spec, Conventions(adam="keras-torch", bce="keras-torch"), [L_ktorch], k_grads_ktorch, w_ktorch)
'''),
    Form("adam", "textbook", "Kingma & Ba's Algorithm 1, as written; used by `numpy`",
         "$$m \\leftarrow (1-\\beta_1)\\,g + \\beta_1 m, \\qquad v \\leftarrow (1-\\beta_2)\\,g^2 + \\beta_2 v$$\n\n"
         "$$\\hat m = \\frac{m}{1-\\beta_1^t}, \\qquad \\hat v = \\frac{v}{1-\\beta_2^t}, \\qquad "
         "w \\leftarrow w - \\eta\\,\\frac{\\hat m}{\\sqrt{\\hat v} + \\epsilon}$$\n\n"
         "The algorithm as written in the paper, each bias correction a division.",
         '''\
m1 = [(1 - b1) * g + b1 * mi for mi, g in zip(zeros, k_grads)]
v1 = [(1 - b2) * (g * g) + b2 * vi for vi, g in zip(zeros, k_grads)]
m_hat = [mi / (1 - b1 ** t) for mi in m1]
v_hat = [vi / (1 - b2 ** t) for vi in v1]
w_textbook = [w - lr * (mh / (np.sqrt(vh) + eps)) for w, mh, vh in zip(k_start, m_hat, v_hat)]
show((w_textbook[4] - K2).T)  # K2's update
against_reference(k_spec, Conventions(adam="textbook", bce="logits"), [L_logits], k_grads, w_textbook)
'''),
    Form("adam", "optax", "optax.adam; used by `jax`, `jax-scan`",
         "$$\\hat m = m \\cdot \\frac{1}{1-\\beta_1^t}, \\qquad \\hat v = v \\cdot \\frac{1}{1-\\beta_2^t}, "
         "\\qquad w \\leftarrow w + (-\\eta)\\,\\frac{\\hat m}{\\sqrt{\\hat v} + \\epsilon}$$\n\n"
         "The textbook's maths and moments, in optax's order of operations (`scale_by_adam`, then "
         "`scale_by_learning_rate`). Its bias correction divides by a scalar inside a jitted function, which XLA "
         "compiles as a multiplication by the reciprocal: one rounding away from the division for some values.",
         '''\
k_grads_optax = backprop(du2_optax)
m1 = [(1 - b1) * g + b1 * mi for mi, g in zip(zeros, k_grads_optax)]
v1 = [(1 - b2) * (g * g) + b2 * vi for vi, g in zip(zeros, k_grads_optax)]
m_hat = [mi * (1 / (1 - b1 ** t)) for mi in m1]  # the division, as XLA compiles it
v_hat = [vi * (1 / (1 - b2 ** t)) for vi in v1]
w_optax = [w + -lr * (mh / (np.sqrt(vh) + eps)) for w, mh, vh in zip(k_start, m_hat, v_hat)]
show((w_optax[4] - K2).T)  # K2's update
show(0.013 / (1 - b1) - 0.013 * (1 / (1 - b1)))  # a division and its reciprocal's product: one rounding apart
against_reference(k_spec, Conventions(adam="optax", bce="optax"), [L_optax], k_grads_optax, w_optax)
'''),
]



# ------------------------------------------------------------------------------------------------------- the document

def document() -> list[tuple[str, str]]:
    """The document as blocks: ("md", markdown) or ("code", python source run in one shared namespace)."""
    by_field: dict[str, list[Form]] = {}
    for f in FORMS:
        by_field.setdefault(f.field, []).append(f)
    unknown = set(by_field) - set(FIELDS)
    if unknown:
        raise ValueError(f"forms of {sorted(unknown)} have no entry in FIELDS")

    def forms(section: str) -> list[tuple[str, str]]:
        out = []
        for name, fld in FIELDS.items():
            if fld.section != section:
                continue
            out += [("md", f"### {fld.title} (`Conventions.{name}`)\n\n{fld.intro}")]
            if fld.setup:
                out.append(("code", fld.setup))
            for f in by_field.get(name, []):
                if "against_reference(" not in f.code:
                    raise ValueError(f"the worked example of {f.field}={f.value!r} must end in "
                                     f"against_reference(...)")
                out += [("md", f"#### `{f.field}=\"{f.value}\"`: {f.used_by}\n\n{f.maths}"), ("code", f.code)]
        return out

    blocks = [
        ("md", "# The maths, with worked numbers\n\n"
               "Generated by `xor-rosetta guide` from `shared/app/maths.py`; do not edit. Every `>>>` line below is "
               "Python that was run to produce the lines under it, and `tests/test_maths.py` runs this file again "
               "as a doctest: a number that moves by more than its last printed digit fails the tests. Each worked "
               "example ends with `against_reference(...)`, the tolerance policy's verdict on its numbers against "
               "the NumPy reference (`xor_rosetta.reference.Reference`, written independently), trained from the "
               "same weights in the same conventions: `'agrees'` means within the float64 tolerance of "
               "`xor_rosetta.tolerance`.\n\n"
               "Numbers are float64, shown to 8 significant digits. The worked examples are the two presets from "
               "their initial weights: **seed-numpy** (2-5-1, tanh then linear, MSE, SGD at lr 0.1) and "
               "**seed-keras** (2-5-5-1, relu, relu, sigmoid, binary cross-entropy, Adam at lr 0.001). The code "
               "of each implementation, region by region: [guide.md](guide.md)."),
        ("md", "## Notation and data\n\n"
               "A batch of $m$ rows enters as $h_0 = x$. Layer $i$ has weights $W_i$ of shape (fan_in, fan_out), "
               "biases $b_i$ (fan_out,), and activation $f_i$:\n\n"
               "$$z_i = h_i W_i + b_i, \\qquad h_{i+1} = f_i(z_i), \\qquad \\hat y = h_n$$\n\n"
               "with $\\tanh$, the sigmoid $\\sigma(z) = 1/(1+e^{-z})$, $\\mathrm{relu}(z) = \\max(z, 0)$ or the "
               "identity. Losses are means over the batch and the outputs ($m = 4$ here). Torch stores $W_i$ "
               "transposed, (fan_out, fan_in), and computes $h W^\\top$; the numbers are the same."),
        ("code", SETUP),
        ("md", "## The forward pass\n\n### seed-numpy\n\nInitial weights, from the seed listing's "
               "`np.random.seed(1)`:"),
        ("code", NUMPY_INIT),
        ("md", "$$z_0 = x W_0 + b_0, \\quad h_1 = \\tanh(z_0), \\quad \\hat y = z_1 = h_1 W_1 + b_1$$"),
        ("code", NUMPY_FORWARD),
        ("md", "### seed-keras\n\nInitial weights, Keras' default glorot-uniform "
               "($U(\\pm\\sqrt{6/(\\mathrm{fan_{in}}+\\mathrm{fan_{out}})})$) drawn from NumPy's seed 0 (the "
               "variable names here are $K_i$, $c_i$, $u_i$, $g_i$ so that both examples stay in scope):"),
        ("code", KERAS_INIT),
        ("md", "$$u_0 = x K_0 + c_0,\\ g_1 = \\mathrm{relu}(u_0), \\quad u_1 = g_1 K_1 + c_1,\\ "
               "g_2 = \\mathrm{relu}(u_1), \\quad u_2 = g_2 K_2 + c_2,\\ p = \\sigma(u_2)$$"),
        ("code", KERAS_FORWARD),
        ("md", "## The losses\n\n### Mean squared error (seed-numpy)\n\n"
               "$$L = \\frac{1}{m}\\sum_r (\\hat y_r - y_r)^2, \\qquad "
               "\\frac{\\partial L}{\\partial \\hat y_r} = \\frac{2}{m}(\\hat y_r - y_r)$$"),
        ("code", MSE),
        *forms("losses"),
        ("md", "## Backprop\n\n"
               "The chain rule, from the output back. With $\\delta_i = \\partial L/\\partial z_i$ of shape "
               "(batch, fan_out), starting from the loss' $\\delta_{n-1}$:\n\n"
               "$$\\frac{\\partial L}{\\partial W_i} = h_i^\\top \\delta_i, \\qquad "
               "\\frac{\\partial L}{\\partial b_i} = \\sum_{\\text{rows}} \\delta_i, \\qquad "
               "\\delta_{i-1} = \\big(\\delta_i W_i^\\top\\big) \\odot f_{i-1}'(z_{i-1})$$\n\n"
               "with $\\tanh'(z) = 1 - \\tanh^2 z$, $\\sigma'(z) = \\sigma(z)(1-\\sigma(z))$, "
               "$\\mathrm{relu}'(z) = [z > 0]$ (0 at the kink, as torch and TensorFlow do) and 1 for the "
               "identity. For the MSE, $\\delta_{n-1} = \\frac{2}{m}(\\hat y - y) \\odot f_{n-1}'(z_{n-1})$.\n\n"
               "### seed-numpy"),
        ("code", NUMPY_BACKPROP),
        ("md", "### seed-keras\n\nThe same recursion through two relu layers, from each BCE form's "
               "$\\partial L/\\partial u_2$:"),
        ("code", KERAS_BACKPROP),
        ("md", "## The optimizers\n\n### Plain SGD (seed-numpy's first step)\n\n"
               "$$w \\leftarrow w - \\eta\\,\\frac{\\partial L}{\\partial w}$$"),
        ("code", SGD),
        *forms("optimizers"),
    ]
    other = forms("other")
    if other:
        blocks += [("md", "## Other forms")] + other
    return blocks


def transcript(source: str, namespace: dict) -> str:
    """Run `source` statement by statement in `namespace`; return it as a doctest transcript (`>>>`, `...`, output)."""
    lines = source.rstrip("\n").splitlines()
    out = []
    for node in ast.parse(source).body:
        first, last = node.lineno, node.end_lineno
        stmt = lines[first - 1:last]
        text = "\n".join(stmt)
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            exec(compile(text + "\n", "<maths>", "single"), namespace)
        out.append(">>> " + stmt[0])
        out += ["... " + s for s in stmt[1:]]
        if len(stmt) > 1 or isinstance(node, (ast.For, ast.While, ast.If, ast.With, ast.FunctionDef)):
            out.append("...")  # a compound statement ends with an empty continuation line
        printed = buf.getvalue().rstrip("\n")
        if printed:
            out += printed.splitlines()
    return "\n".join(out)


def render() -> str:
    namespace: dict = {"__name__": "maths"}
    parts = []
    with np.errstate(all="raise"):
        for kind, text in document():
            if kind == "md":
                parts.append(text.rstrip("\n"))
            else:
                # the blank line before the fence ends the last example's expected output, for doctest
                parts.append("```python\n" + transcript(text, namespace) + "\n\n```")
    return "\n\n".join(parts) + "\n"


# ------------------------------------------------------------------------------------------ comparing number output

NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def numbers_match(want: str, got: str) -> bool:
    """Equal text, with every number equal to within one unit of its DIGITS-th significant digit (what a different
    CPU's last-bit rounding can move when printed)."""
    if want == got:
        return True
    w_text, g_text = NUMBER.split(want), NUMBER.split(got)
    if w_text != g_text:
        return False
    for a, b in zip(NUMBER.findall(want), NUMBER.findall(got)):
        a, b = float(a), float(b)
        if a == b:
            continue
        scale = max(abs(a), abs(b))
        if scale == 0 or abs(a - b) > 1.01 * 10.0 ** (np.floor(np.log10(scale)) - (DIGITS - 1)):
            return False
    return True


def first_difference(want: str, got: str) -> str | None:
    """None when the documents match (numbers_match line by line), else where they first differ."""
    w, g = want.splitlines(), got.splitlines()
    for n, (a, b) in enumerate(zip(w, g), 1):
        if not numbers_match(a, b):
            return f"line {n}: committed {a!r}, now {b!r}"
    if len(w) != len(g):
        return f"the committed file has {len(w)} lines, the rendering {len(g)}"
    return None
