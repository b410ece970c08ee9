"""The seed article's two listings, as published, with what is wrong in each; and the figures the guide cites.

The article (a Chinese introduction to deep learning) gave a NumPy XOR network that cannot run and a Keras one that
runs slowly. The guide shows both beside the fixed implementations; tests/test_guide.py executes the NumPy listing
and inspects its syntax tree to check every annotation below.
"""
from __future__ import annotations

NUMPY_LISTING = '''\
import numpy as np

# 初始化参数
input_size = 2
output_size = 1
hidden_size = 5
learning_rate = 0.1

# 初始化权重和偏置
np.random.seed(1)
W1 = 2 * np.random.random((input_size, hidden_size)) - 1
W2 = 2 * np.random.random((hidden_size, output_size)) - 1
b1 = np.zeros((1, hidden_size))
b2 = np.zeros((1, output_size))

# 训练数据
X = np.array([[0,0],[0,1],[1,0],[1,1]])
Y = np.array([[0],[1],[1],[0]])

# 训练次数
for i in range(10000):
    # 前向传播
    XW1 = np.dot(X, W1) + b1
    Z1 = np.dot(XW1, W2) + b2
    A2 = np.tanh(Z1)
    XW2 = np.dot(A2, W1) + b1
    Y_pred = np.dot(XW2, W2) + b2
    L = Y_pred - Y

    # 反向传播
    dL_dY = 2 * (Y_pred - Y)
    dY_dZ1 = dL_dY * (1 - A2**2)
    dZ1_dW2 = A2
    dZ1_db2 = 1
    dW2 = (1 / m) * np.dot(dY_dZ1, A2.T)
    db2 = (1 / m) * np.sum(dY_dZ1, axis=1, keepdims=True)

    # 更新权重和偏置
    W2 += learning_rate * dW2
    b2 += learning_rate * db2

    # 前向传播
    XW1 = np.dot(X, W1) + b1
    Z1 = np.dot(XW1, W2) + b2
    A2 = np.tanh(Z1)
    XW2 = np.dot(A2, W1) + b1
    Y_pred = np.dot(XW2, W2) + b2
    L = Y_pred - Y

    # 反向传播
    dL_dY = 2 * (Y_pred - Y)
    dY_dZ1 = dL_dY * (1 - A2**2)
    dZ1_dW2 = A2
    dZ1_db2 = 1
    dW2 = (1 / m) * np.dot(dY_dZ1, A2.T)
    db2 = (1 / m) * np.sum(dY_dZ1, axis=1, keepdims=True)

    # 更新权重和偏置
    W2 += learning_rate * dW2
    b2 += learning_rate * db2
'''

KERAS_LISTING = '''\
from keras.models import Sequential
from keras.layers import Dense

# 初始化模型
model = Sequential()

# 添加输入层
model.add(Dense(5, input_dim=2, activation='relu'))

# 添加隐藏层
model.add(Dense(5, activation='relu'))

# 添加输出层
model.add(Dense(1, activation='sigmoid'))

# 编译模型
model.compile(loss='binary_crossentropy', optimizer='adam', metrics=['accuracy'])

# 训练模型
model.fit(X, Y, epochs=1000, batch_size=10)
'''

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
# `python -m xor_rosetta.app.seed` (about a minute; needs the keras extra).
KERAS_FIT_MS_PER_EPOCH = (30, 41)  # low, high: median of interleaved blocks, across runs
KERAS_FIT_ITERATOR_SHARE = 0.77  # share of each epoch spent building the tf.data iterator
KERAS_FIT_SOURCE = ("the team's reference measurements on this project's machine (2 vCPU Xeon, tensorflow-cpu "
                    "2.21.0, keras 3.15.1); `python -m xor_rosetta.app.seed` remeasures it")

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


def time_keras_fit(epochs: int = 40, rounds: int = 5) -> list[float]:
    """ms per epoch of the seed listing's fit(X, Y, epochs, batch_size=10), one figure per round (fresh model)."""
    import os
    import time
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype="float32")
    y = np.array([[0], [1], [1], [0]], dtype="float32")
    out = []
    for _ in range(rounds):
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(5, activation="relu"),
                                  keras.layers.Dense(5, activation="relu"),
                                  keras.layers.Dense(1, activation="sigmoid")])
        model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
        model.fit(x, y, epochs=2, batch_size=10, verbose=0)  # the first epochs trace and compile
        t = time.perf_counter()
        model.fit(x, y, epochs=epochs, batch_size=10, verbose=0)
        out.append((time.perf_counter() - t) / epochs * 1000)
    return out


if __name__ == "__main__":
    ms = time_keras_fit()
    print(f"seed Keras listing, fit(epochs=N, batch_size=10) on 4 rows: ms per epoch by round: "
          f"{', '.join(f'{v:.1f}' for v in ms)}; median {sorted(ms)[len(ms) // 2]:.1f}")
