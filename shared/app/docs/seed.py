"""The seed article's two listings, as published, with what is wrong in each; and the figures the guide cites.

The article (a Chinese introduction to deep learning) gave a NumPy XOR network that cannot run and a Keras one that
runs slowly. The guide shows both beside the fixed implementations; tests/test_guide.py executes the NumPy listing
and inspects its syntax tree to check every annotation below.
"""
from __future__ import annotations

from importlib.resources import files


def _listing(name: str) -> str:
    """A listing as published, kept verbatim beside the framework code it is (implementations/probes/)."""
    return (files("xor_rosetta.implementations.probes") / name).read_text(encoding="utf-8")


NUMPY_LISTING = _listing("seed_numpy.txt")

KERAS_LISTING = _listing("seed_keras.txt")

# The listings' comments, in English: the guide shows each after the original.
TRANSLATIONS = {
    "# 初始化参数": "initialise the parameters",
    "# 初始化权重和偏置": "initialise the weights and biases",
    "# 训练数据": "training data",
    "# 训练次数": "training iterations",
    "# 前向传播": "forward pass",
    "# 反向传播": "backpropagation",
    "# 更新权重和偏置": "update the weights and biases",
    "# 初始化模型": "create the model",
    "# 添加输入层": "add the input layer",
    "# 添加隐藏层": "add the hidden layer",
    "# 添加输出层": "add the output layer",
    "# 编译模型": "compile the model",
    "# 训练模型": "train the model",
}

# What fit(epochs=N) costs per epoch on the TensorFlow backend, as the team measured it on this project's machine
# (2 vCPU Xeon with AVX-512, Python 3.11.7, tensorflow-cpu 2.21.0, keras 3.15.1). Source: the team's reference
# measurements (ANCHORS.md, "Speed of training the seed listing's network", row "Keras[TF] fit(epochs=N,
# batch_size=4)", and its note "77% of each epoch goes to building the tf.data iterator"). Remeasure with
# `python -m xor_rosetta.implementations.probes.seed` (about a minute; needs the keras extra).
KERAS_FIT_MS_PER_EPOCH = (30, 41)  # low, high: median of interleaved blocks, across runs
KERAS_FIT_ITERATOR_SHARE = 0.77  # share of each epoch spent building the tf.data iterator
KERAS_FIT_SOURCE = ("the team's reference measurements on this project's machine (2 vCPU Xeon, tensorflow-cpu "
                    "2.21.0, keras 3.15.1); `python -m xor_rosetta.implementations.probes.seed` remeasures it")

# Annotations: (the listing's line, as written, its occurrence (1 = first), the note shown under it). The first
# three are the bugs the issue names; tests/test_guide.py checks each claim against the listing itself.
NUMPY_BUGS = [
    ("    XW2 = np.dot(A2, W1) + b1", 1,
     "BUG (shapes): A2 is (4, 1) and W1 is (2, 5): ValueError: shapes (4,1) and (2,5) not aligned. The listing "
     "stops here, on its first step. The forward pass is muddled before this: no activation after the first "
     "layer, tanh after the second, then W1 and W2 applied a second time. Fixed: z = h @ W + b, then the "
     "activation, once per layer"),
    ("    dW2 = (1 / m) * np.dot(dY_dZ1, A2.T)", 1,
     "BUG (m undefined): nothing assigns m, so this is a NameError. It means the batch size (4); and the "
     "product is (4, 1) @ (1, 4) = (4, 4), not W2's (5, 1). Fixed: dW = h.T @ dz, with dz already divided by m"),
    ("    W2 += learning_rate * dW2", 1,
     "BUG (only W2/b2 updated): W1 and b1 never change, so the first layer stays at its random initial "
     "weights. And += climbs the loss: gradient descent subtracts. Fixed: every W and b, w -= lr * dw"),
    ("    db2 = (1 / m) * np.sum(dY_dZ1, axis=1, keepdims=True)", 1,
     "also: axis=1 sums each row's outputs, giving (4, 1); the bias gradient sums over the batch, axis 0"),
    ("    # 前向传播", 2,
     "also: the loop body is pasted twice, so each of the 10,000 iterations would take two steps"),
]

KERAS_NOTES = [
    ("model.add(Dense(5, input_dim=2, activation='relu'))", 1,
     "Keras 3 prefers keras.Input((2,)) as the first layer; input_dim still works, with a warning"),
    ("model.fit(X, Y, epochs=1000, batch_size=10)", 1,
     "SLOW: X and Y come from the NumPy listing (4 rows), so batch_size=10 is more than the data and every epoch "
     "is one full-batch step. fit() pays a fixed set-up per epoch, {share:.0%} of it building a new tf.data iterator: "
     "{lo}-{hi} ms per epoch on the TensorFlow backend, so {steps_lo:.0f}-{steps_hi:.0f} s for these 1,000 "
     "steps, and ~{ten_k:.0f} minutes for 10,000. Fixed: one fit() call over every step's batch laid end to end, "
     "with steps_per_execution up to 1,000 (implementations/keras_mlp.py)"),
]


def keras_note_values() -> dict:
    lo, hi = KERAS_FIT_MS_PER_EPOCH
    return {"lo": lo, "hi": hi, "steps_lo": lo, "steps_hi": hi, "ten_k": (lo + hi) / 2 * 10_000 / 1000 / 60,
            "share": KERAS_FIT_ITERATOR_SHARE}

