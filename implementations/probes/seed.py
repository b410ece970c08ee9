"""The seed article's Keras listing, timed as published (fit on four rows, batch_size=10): the figure the guide cites."""
from __future__ import annotations


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
