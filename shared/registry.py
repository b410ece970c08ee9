"""Implementations by name, imported lazily: a missing framework makes its entry unavailable, nothing more."""
from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import warnings
from dataclasses import dataclass

from .errors import UnavailableError
from .interface import MLP


@dataclass(frozen=True)
class Entry:
    name: str  # registry key, e.g. "torch"
    module: str  # module that defines the class
    cls: str  # class name
    requires: tuple[str, ...]  # modules it imports
    dists: tuple[str, ...]  # distributions whose versions are reported
    extra: str  # pyproject extra that installs them
    summary: str

    @property
    def install_hint(self) -> str:
        return f"pip install -c constraints.txt -e '.[{self.extra}]'"


ENTRIES = [
    Entry("numpy", "xor_rosetta.implementations.numpy_mlp", "NumpyMLP", ("numpy",), ("numpy",), "dev",
          "hand-written forward pass, backprop and optimizers"),
    Entry("torch", "xor_rosetta.implementations.torch_mlp", "TorchMLP", ("torch",), ("torch",), "torch",
          "nn.Sequential + torch.optim, zero_grad/backward/step"),
    Entry("torch-compiled", "xor_rosetta.implementations.torch_compiled", "TorchCompiledMLP", ("torch",), ("torch",), "torch",
          "fast: torch.func.grad_and_value and a functional torch.optim update in one torch.compile'd step"),
    Entry("keras", "xor_rosetta.implementations.keras_mlp", "KerasMLP", ("keras", "tensorflow"), ("keras", "tensorflow-cpu"),
          "keras", "keras.Sequential + compile/fit on the TensorFlow backend"),
    Entry("keras-xla", "xor_rosetta.implementations.keras_xla", "KerasXlaMLP", ("keras", "tensorflow"),
          ("keras", "tensorflow-cpu"), "keras", "fast: the same model, the whole loop in one XLA-compiled tf.function"),
]
REGISTRY: dict[str, Entry] = {e.name: e for e in ENTRIES}


def get_entry(name: str) -> Entry:
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnavailableError(f"unknown implementation {name!r}; choose one of: {', '.join(REGISTRY)}") from None


def missing(entry: Entry) -> list[str]:
    """Required modules that are not installed (checked without importing them)."""
    return [m for m in entry.requires if not _findable(m)]


def _findable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken or blocked package
        return False


def versions(entry: Entry) -> dict[str, str]:
    out = {}
    for d in entry.dists:
        try:
            out[d] = importlib.metadata.version(d)
        except importlib.metadata.PackageNotFoundError:
            if d == "tensorflow-cpu":  # the GPU-capable wheel serves as well
                try:
                    out["tensorflow"] = importlib.metadata.version("tensorflow")
                except importlib.metadata.PackageNotFoundError:
                    pass
    return out


def unavailable_reason(entry: Entry) -> str | None:
    gone = missing(entry)
    if gone:
        return f"{', '.join(gone)} not installed; install with: {entry.install_hint}"
    return None


def load(name: str) -> type[MLP]:
    """The implementation class, importing its framework now; UnavailableError says why and how to fix it."""
    entry = get_entry(name)
    reason = unavailable_reason(entry)
    if reason is None:
        try:
            return getattr(importlib.import_module(entry.module), entry.cls)
        except ImportError as e:
            reason = f"import failed ({str(e).splitlines()[0]}); reinstall with: {entry.install_hint}"
    raise UnavailableError(f"implementation {name!r} is unavailable: {reason}")


def available(names=None, warn: bool = True) -> dict[str, type[MLP]]:
    """The loadable implementations among `names` (default: all); the others are dropped with a warning."""
    out = {}
    for name in names or REGISTRY:
        try:
            out[name] = load(name)
        except UnavailableError as e:
            if warn:
                warnings.warn(str(e), stacklevel=2)
    return out
