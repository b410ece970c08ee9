"""Implementations by name, imported lazily: a missing framework makes its entry unavailable, nothing more.

A name is one of
- a built-in (`ENTRIES`): numpy, torch, ...;
- a plug-in that an installed package declares in the entry-point group `xor_rosetta.implementations`
  (`my-mlp = "my_package.mlp:MyMLP"`);
- `package.module:ClassName`, or `path/to/file.py:ClassName`, naming a class that implements
  `xor_rosetta.interface.MLP` directly;
- a class registered at run time by this process (`register`: a child process started by `--cmd`).
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import importlib.util
import hashlib
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

from .errors import UnavailableError
from .interface import MLP

ENTRY_POINT_GROUP = "xor_rosetta.implementations"
METHODS = ("forward", "loss", "gradients", "train", "params")  # what a class needs to be run (subclassing MLP helps)


@dataclass(frozen=True)
class Entry:
    name: str  # registry key, e.g. "torch"
    module: str  # module that defines the class (or a path to a .py file, for `path.py:Class`)
    cls: str  # class name
    requires: tuple[str, ...]  # modules it imports
    dists: tuple[str, ...]  # distributions whose versions are reported
    extra: str  # pyproject extra that installs them ("" for a plug-in)
    summary: str
    process: str = ""  # implementations with the same key may share one worker process (one import serves them)
    env: tuple[tuple[str, str], ...] = ()  # environment its process needs before any import, e.g. KERAS_BACKEND
    builtin: bool = True

    @property
    def install_hint(self) -> str:
        if not self.extra:
            return f"install the package that provides {self.module}"
        return f"pip install -c constraints.txt -e '.[{self.extra}]'"

    @property
    def backend(self) -> str:
        """The Keras backend its process runs ("" where Keras is not involved)."""
        return dict(self.env).get("KERAS_BACKEND", "")

    @property
    def process_key(self) -> str:
        return self.process or self.name


IMPLS = "xor_rosetta.implementations"
ENTRIES = [
    Entry("numpy", f"{IMPLS}.numpy_mlp", "NumpyMLP", ("numpy",), ("numpy",), "", "hand-written forward pass, "
          "backprop and optimizers", process="numpy"),
    Entry("torch", f"{IMPLS}.torch_mlp", "TorchMLP", ("torch",), ("torch",), "torch",
          "nn.Sequential + torch.optim, zero_grad/backward/step", process="torch"),
    Entry("torch-compiled", f"{IMPLS}.torch_compiled", "TorchCompiledMLP", ("torch",), ("torch",), "torch",
          "fast: torch.func.grad_and_value and a functional torch.optim update in one torch.compile'd step",
          process="torch"),
    Entry("keras", f"{IMPLS}.keras_mlp", "KerasMLP", ("keras", "tensorflow"), ("keras", "tensorflow-cpu"),
          "keras", "keras.Sequential + compile/fit on the TensorFlow backend", process="keras-tensorflow",
          env=(("KERAS_BACKEND", "tensorflow"),)),
    Entry("keras-xla", f"{IMPLS}.keras_xla", "KerasXlaMLP", ("keras", "tensorflow"), ("keras", "tensorflow-cpu"),
          "keras", "fast: the same model, the whole loop in one XLA-compiled tf.function", process="keras-tensorflow",
          env=(("KERAS_BACKEND", "tensorflow"),)),
    Entry("jax", f"{IMPLS}.jax_mlp", "JaxMLP", ("jax", "flax", "optax"), ("jax", "flax", "optax"), "jax",
          "Flax NNX: nnx.Module of nnx.Linear, nnx.Optimizer over optax, nnx.value_and_grad, a jitted step",
          process="jax", env=(("JAX_ENABLE_X64", "1"),)),
    Entry("jax-scan", f"{IMPLS}.jax_scan", "JaxScanMLP", ("jax", "optax"), ("jax", "optax"), "jax",
          "fast: pure functions over a params pytree, optax, the whole loop in one jitted lax.scan",
          process="jax", env=(("JAX_ENABLE_X64", "1"),)),
    Entry("keras-jax", f"{IMPLS}.keras_jax", "KerasJaxMLP", ("keras", "jax"), ("keras", "jax"), "keras,jax",
          "the keras model, loss, optimizer and fit() on the JAX backend", process="keras-jax",
          env=(("KERAS_BACKEND", "jax"), ("JAX_ENABLE_X64", "1"))),
    Entry("keras-torch", f"{IMPLS}.keras_torch", "KerasTorchMLP", ("keras", "torch"), ("keras", "torch"),
          "keras,torch", "the keras model, loss, optimizer and fit() on the PyTorch backend", process="keras-torch",
          env=(("KERAS_BACKEND", "torch"),)),
]
REGISTRY: dict[str, Entry] = {e.name: e for e in ENTRIES}
RUNTIME: dict[str, tuple[type, Entry]] = {}  # registered by this process; other processes cannot load them


def plugins() -> list[Entry]:
    """Implementations that installed packages declare in the `xor_rosetta.implementations` entry-point group."""
    out = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in REGISTRY:
            continue  # a built-in name cannot be taken over
        module, _, cls = ep.value.partition(":")
        dist = ep.dist.name if ep.dist is not None else ""
        out.append(Entry(ep.name, module.strip(), cls.strip(), (), (dist,) if dist else (), "",
                         f"plug-in from {dist or module}", builtin=False))
    return out


def all_entries() -> list[Entry]:
    return ENTRIES + plugins()


def get_entry(name: str) -> Entry:
    """The entry for a built-in name, a plug-in name, `module:Class` or `file.py:Class`."""
    if name in REGISTRY:
        return REGISTRY[name]
    if name in RUNTIME:
        return RUNTIME[name][1]
    found = next((e for e in plugins() if e.name == name), None)
    if found is not None:
        return found
    if ":" in name:
        module, _, cls = name.rpartition(":")
        if module and cls.isidentifier():
            kind = "file" if module.endswith(".py") else "module"
            return Entry(name, module, cls, (), (), "", f"{kind} {module}", builtin=False)
    known = ", ".join([e.name for e in all_entries()])
    raise UnavailableError(f"unknown implementation {name!r}; choose one of: {known}, or give "
                           f"package.module:ClassName or path/to/file.py:ClassName")


def register(name: str, cls, summary: str) -> Entry:
    """Make `cls` loadable as `name` in this process only (it runs here, never in a worker process)."""
    if name in REGISTRY or any(e.name == name for e in plugins()):
        raise UnavailableError(f"implementation name {name!r} is taken")
    entry = Entry(name, "<registered>", getattr(cls, "__name__", "MLP"), (), (), "", summary,
                  process=f"in-process:{name}", builtin=False)
    RUNTIME[name] = (cls, entry)
    return entry


def unregister(name: str) -> None:
    """Forget a name `register` gave in this process (a command's `--cmd` children, when the command ends)."""
    RUNTIME.pop(name, None)


def load_problem(entry: Entry) -> str | None:
    """Why `entry` cannot run here (None: it loads); a plug-in is imported to find out, a built-in is not."""
    if entry.builtin:
        return unavailable_reason(entry)
    try:
        load(entry.name)
    except UnavailableError as e:
        return str(e).split(" is unavailable: ", 1)[-1]
    return None


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
            if d == "tensorflow-cpu":  # the GPU-capable wheel (and the macOS one) serves as well
                try:
                    out["tensorflow"] = importlib.metadata.version("tensorflow")
                except importlib.metadata.PackageNotFoundError:
                    pass
    return out


def unavailable_reason(entry: Entry) -> str | None:
    """Why `entry` cannot run here, judged without importing it (None: it should load)."""
    gone = missing(entry)
    if gone:
        return f"{', '.join(gone)} not installed; install with: {entry.install_hint}"
    if entry.module.endswith(".py") and not Path(entry.module).is_file():
        return f"file {entry.module!r} does not exist"
    return None


def _import(entry: Entry):
    if not entry.module.endswith(".py"):
        if entry.builtin:
            return importlib.import_module(entry.module)
        with _stdout_to_stderr():
            return importlib.import_module(entry.module)
    path = Path(entry.module).resolve()
    name = f"xor_rosetta_plugin_{hashlib.sha1(str(path).encode()).hexdigest()[:12]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        with _stdout_to_stderr():
            spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


@contextlib.contextmanager
def _stdout_to_stderr():
    """What a plug-in prints while it is imported goes to stderr: stdout may be a command's JSON (`list --json`).
    Both Python's sys.stdout and file descriptor 1 (a library's C code) are redirected."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
        os.dup2(2, 1)
    except (OSError, ValueError, AttributeError):
        saved = None
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        if saved is not None:
            try:
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            os.dup2(saved, 1)
            os.close(saved)


def load(name: str) -> type[MLP]:
    """The implementation class, importing its framework now; UnavailableError says why and how to fix it."""
    if name in RUNTIME:
        return RUNTIME[name][0]
    entry = get_entry(name)
    reason = unavailable_reason(entry)
    if reason is None:
        if not any(m in sys.modules for m in entry.requires):  # its framework reads these once, at its first import:
            os.environ.update(entry.env)  # the entry's own value wins over the user's (KERAS_BACKEND=torch)
        try:
            module = _import(entry)
            cls = getattr(module, entry.cls, None)
            if cls is None:
                reason = f"{entry.module} has no class {entry.cls!r}"
        except ImportError as e:
            reason = f"import failed ({str(e).splitlines()[0]}); reinstall with: {entry.install_hint}"
        except Exception as e:  # a plug-in whose import raises must not break the others; an AttributeError raised
            # inside the import (a framework release without an API it uses) is named as such, not as a missing class
            reason = f"importing {entry.module} raised {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        except SystemExit as e:  # nor one that calls sys.exit() (a signal's SystemExit goes on: see app/cli.py)
            if getattr(e, "signal", None) is not None:
                raise
            reason = f"importing {entry.module} called sys.exit({e.code!r})"
        if reason is None:
            lacking = [m for m in METHODS if not callable(getattr(cls, m, None))]
            if isinstance(cls, type) and not lacking:
                return cls
            reason = (f"{entry.module}:{entry.cls} does not implement xor_rosetta.interface.MLP "
                      f"(missing: {', '.join(lacking) or 'a class'})")
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
