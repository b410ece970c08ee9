"""An implementation hosted in a worker of its process group, behind the MLP interface (RemoteMLP)."""
from __future__ import annotations

import os

from xor_rosetta.app.workers.pool import Workers, session
from xor_rosetta.app.workers.wire import Method
from xor_rosetta.interface import MLP as _MLP


def needs_own_process(entry, environ=os.environ) -> bool:
    """Whether `entry` cannot run in this process: its process needs an environment value (KERAS_BACKEND=jax)
    other than the one this process has."""
    return any(environ.get(k, v) != v for k, v in entry.env)


def _describe(name: str) -> dict:
    cls = _registry().load(name)
    return {"name": getattr(cls, "name", name), "framework": getattr(cls, "framework", ""),
            "conventions": cls.conventions.to_dict(), "known_differences": dict(getattr(cls, "known_differences", {}))}


def _build(name: str, spec, params):
    return _registry().load(name)(spec, params)


def _registry():
    from xor_rosetta import registry
    return registry


class Forwarded:
    """The MLP interface forwarded to an instance living in a worker: a subclass says how (`_call`)."""

    def _call(self, method: str, *args, **kwargs):
        raise NotImplementedError

    def forward(self, x):
        return self._call("forward", x)

    def loss(self, x, y):
        return self._call("loss", x, y)

    def gradients(self, x, y):
        return self._call("gradients", x, y)

    def train(self, x, y, steps=None, checkpoints=()):
        return self._call("train", x, y, steps=steps, checkpoints=list(checkpoints))

    def params(self):
        return self._call("params")


class RemoteMLP(Forwarded, _MLP):
    """The MLP interface (`xor_rosetta.interface.MLP`) of an implementation hosted in a worker of its process
    group: each call is forwarded there, and only NumPy arrays and plain data come back.

    `remote_class(name)` gives a class that behaves like the implementation's own: `cls.conventions`,
    `cls(spec, params)`, then forward, loss, gradients, train, params and steps_done."""

    entry_name: str = ""
    name: str = ""
    framework: str = ""
    conventions = None
    workers: Workers | None = None

    def __init__(self, spec, params):
        from xor_rosetta import registry
        entry = registry.get_entry(self.entry_name)
        self.spec = spec
        self._worker = (self.workers or session()).get(entry.process_key, entry.env)
        self._ref = self._worker.call(_build, self.entry_name, spec, params, keep=True)

    def _call(self, method: str, *args, **kwargs):
        return self._worker.call(Method(self._ref, method), *args, **kwargs)

    @property
    def steps_done(self) -> int:
        return self._worker.call(getattr, self._ref, "steps_done")

    @property
    def pid(self) -> int:
        return self._worker.pid

    @property
    def last_call_seconds(self) -> float:
        """How long the last call ran inside the worker, without the transfers (what a benchmark should time)."""
        return self._worker.last_seconds

    def __del__(self):
        ref = getattr(self, "_ref", None)
        if ref is not None:
            self._worker.forget(ref)


def load_anywhere(name: str) -> type:
    """The class of `name`: imported here, or, for a built-in whose process needs another environment than this
    one (KERAS_BACKEND=jax beside Keras on TensorFlow), a RemoteMLP class whose instances live in its worker.
    The checks' loader in the command line and the tests (`xor_rosetta.checks.set_loader`)."""
    from xor_rosetta import registry
    entry = registry.get_entry(name)
    if entry.builtin and needs_own_process(entry) and registry.unavailable_reason(entry) is None:
        return remote_class(name)
    return registry.load(name)


def remote_class(name: str, workers: Workers | None = None) -> type[RemoteMLP]:
    """A RemoteMLP class for implementation `name`, hosted in the worker of its group (from `workers`, default the
    session's); loading it there raises UnavailableError here if it cannot load."""
    from xor_rosetta import registry
    from xor_rosetta.interface import Conventions
    entry = registry.get_entry(name)
    info = (workers or session()).get(entry.process_key, entry.env).call(_describe, name)
    return type(f"Remote[{name}]", (RemoteMLP,), {
        "entry_name": name, "name": info["name"], "framework": info["framework"], "workers": workers,
        "conventions": Conventions(**info["conventions"]), "known_differences": info["known_differences"]})


