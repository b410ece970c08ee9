"""The experiment spec: one small validated dataclass per concern, nested in `Spec`."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from .errors import SpecError

ACTIVATIONS = ("tanh", "sigmoid", "relu", "linear")
LOSSES = ("mse", "bce")
OPTIMIZERS = ("sgd", "adam")
INITS = ("seed-uniform", "glorot-uniform", "file")
DTYPES = ("float32", "float64")
N_INPUTS, N_OUTPUTS = 2, 1  # XOR: two inputs, one output
MAX_STEPS = 1_000_000_000  # the loss history alone is 8 GB, and ~17 minutes at the fastest variant's ~1 µs/step
MAX_SEED = 2**32 - 1  # NumPy's legacy seeding (np.random.seed, RandomState) takes 0 .. 2**32 - 1


def _choice(what: str, value, options) -> None:
    if value not in options:
        raise SpecError(f"unknown {what} {value!r}; choose one of: {', '.join(options)}")


def _number(what: str, value, *, positive=True, below_one=False, integer=False) -> None:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value):
        raise SpecError(f"{what} must be a finite {'integer' if integer else 'number'}, got {value!r}")
    if positive and value <= 0:
        raise SpecError(f"{what} must be > 0, got {value!r}")
    if not positive and value < 0:
        raise SpecError(f"{what} must be >= 0, got {value!r}")
    if below_one and value >= 1:
        raise SpecError(f"{what} must be < 1, got {value!r}")


@dataclass(frozen=True)
class Optimizer:
    name: str = "sgd"  # "sgd" | "adam"
    lr: float = 0.1
    momentum: float = 0.0  # sgd only; 0 = plain SGD
    beta1: float = 0.9  # adam only
    beta2: float = 0.999  # adam only
    epsilon: float = 1e-7  # adam only; Keras' default (PyTorch's is 1e-8)

    def __post_init__(self):
        _choice("optimizer", self.name, OPTIMIZERS)
        _number("optimizer.lr", self.lr)
        _number("optimizer.momentum", self.momentum, positive=False, below_one=True)
        _number("optimizer.beta1", self.beta1, positive=False, below_one=True)
        _number("optimizer.beta2", self.beta2, positive=False, below_one=True)
        _number("optimizer.epsilon", self.epsilon)
        for name in ("lr", "momentum", "beta1", "beta2", "epsilon"):
            object.__setattr__(self, name, float(getattr(self, name)))  # TOML's `lr = 50` is an int
        if self.name == "adam" and self.momentum:
            raise SpecError("optimizer.momentum applies to sgd only; adam uses beta1")


@dataclass(frozen=True)
class Init:
    scheme: str = "seed-uniform"  # seed listing: np.random.seed(seed); W = 2*random((in, out)) - 1; b = 0
    seed: int = 1
    path: str | None = None  # .npz with W0, b0, W1, b1, ... when scheme = "file"

    def __post_init__(self):
        _choice("init scheme", self.scheme, INITS)
        _number("init.seed", self.seed, positive=False, integer=True)
        if self.seed > MAX_SEED:
            raise SpecError(f"init.seed must be at most {MAX_SEED:,} (2**32 - 1, NumPy's seed range), got {self.seed}")
        if (self.scheme == "file") != (self.path is not None):
            raise SpecError('init.path is required with init.scheme = "file", and only then')
        if self.path is not None:
            if not isinstance(self.path, str) or not self.path:
                raise SpecError(f"init.path must be a file name (a string), got {self.path!r}")
            if "\0" in self.path:
                raise SpecError(f"init.path must not contain a NUL character, got {self.path!r}")


@dataclass(frozen=True)
class Spec:
    layers: tuple[int, ...] = (2, 5, 1)  # sizes, input first; XOR needs 2 in and 1 out
    activations: tuple[str, ...] = ("tanh", "linear")  # one per weight layer
    loss: str = "mse"  # "mse" | "bce" (bce needs a sigmoid output)
    optimizer: Optimizer = field(default_factory=Optimizer)
    steps: int = 10_000  # parameter updates
    batch_size: int | None = None  # None = full batch; else a cyclic window, see shared.data.batch_rows
    dtype: str = "float64"  # "float32" | "float64"
    init: Init = field(default_factory=Init)

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "activations", tuple(self.activations))
        if len(self.layers) < 2:
            raise SpecError(f"layers needs at least an input and an output size, got {list(self.layers)}")
        for i, n in enumerate(self.layers):
            _number(f"layers[{i}]", n, integer=True)
        if self.layers[0] != N_INPUTS or self.layers[-1] != N_OUTPUTS:
            raise SpecError(f"layers must start with {N_INPUTS} and end with {N_OUTPUTS} for XOR, got {list(self.layers)}")
        if len(self.activations) != len(self.layers) - 1:
            raise SpecError(f"{len(self.layers) - 1} weight layers need {len(self.layers) - 1} activations, "
                            f"got {len(self.activations)}")
        for a in self.activations:
            _choice("activation", a, ACTIVATIONS)
        _choice("loss", self.loss, LOSSES)
        if self.loss == "bce" and self.activations[-1] != "sigmoid":
            raise SpecError(f'loss "bce" needs a sigmoid output activation, got {self.activations[-1]!r}')
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or not 1 <= self.steps <= MAX_STEPS:
            raise SpecError(f"steps must be a whole number from 1 to {MAX_STEPS:,} (the maximum), got {self.steps!r}")
        if self.batch_size is not None:
            _number("batch_size", self.batch_size, integer=True)
            if self.batch_size > 4:
                raise SpecError(f"batch_size must be at most 4 (the XOR data has 4 rows), got {self.batch_size}")
        _choice("dtype", self.dtype, DTYPES)

    def batch_for(self, n: int) -> int:
        """Rows per step when the data has n rows (full batch when batch_size is None)."""
        return n if self.batch_size is None else self.batch_size

    def replace(self, **changes) -> "Spec":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["layers"], d["activations"] = list(self.layers), list(self.activations)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Spec":
        """Build from plain data (TOML/JSON); unknown keys are errors that name the key."""
        d = dict(d)
        _known("spec", d, cls)
        if "optimizer" in d:
            d["optimizer"] = _sub(Optimizer, "optimizer", d["optimizer"])
        if "init" in d:
            d["init"] = _sub(Init, "init", d["init"])
        for key in ("layers", "activations"):
            if key in d and not isinstance(d[key], (list, tuple)):
                raise SpecError(f"{key} must be a list, got {d[key]!r}")
        return cls(**d)


def _known(where: str, d, cls) -> None:
    if not isinstance(d, dict):
        raise SpecError(f"{where} must be a table, got {d!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    for key in d:
        if key not in names:
            raise SpecError(f"unknown key {key!r} in {where}; known keys: {', '.join(sorted(names))}")


def _sub(cls, where: str, d):
    _known(where, d, cls)
    return cls(**d)
