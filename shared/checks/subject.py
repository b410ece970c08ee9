"""What is verified: a factory `(spec, params) -> MLP` and what it declares about itself (conventions, supported
options, known differences), from a class, a factory or a registry name."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from xor_rosetta import registry
from xor_rosetta.errors import XorRosettaError
from xor_rosetta.interface import MLP, Conventions
from xor_rosetta.params import Params
from xor_rosetta.spec import ACTIVATIONS, DTYPES, LOSSES, Spec

_LOADER: list[Callable[[str], type]] = [registry.load]  # how a registry name becomes a class (`set_loader`)


def set_loader(load: Callable[[str], type]) -> None:
    """How `subject_for` turns a registry name into a class; the default, `registry.load`, imports it here. The
    command line sets one that hosts an implementation needing a process of its own in a worker."""
    _LOADER[0] = load


SUPPORT_KEYS = {  # what an implementation may declare in `supports`, and every value each key can take
    "dtypes": DTYPES,
    "optimizers": ("sgd", "momentum", "adam"),
    "losses": LOSSES,
    "activations": ACTIVATIONS,  # of the hidden layers, and of the output unless output_activations says
    "output_activations": ACTIVATIONS,
    "batch_sizes": (None, 1, 2, 3, 4),  # None: full batch
    "hidden_layers": (1, 2, 3),  # how many hidden layers (the checks use 1 to 3)
}


class BadTarget(XorRosettaError):
    """The implementation cannot be verified at all (exit status 2)."""


@dataclass
class Subject:
    """What is verified: a factory `(spec, params) -> MLP` and what it says about itself."""
    name: str
    factory: Callable[[Spec, Params], MLP]
    source: str = ""
    declared: Conventions | None = None  # conventions the class itself declares (None: not declared)
    supports: dict = field(default_factory=lambda: dict(SUPPORT_KEYS))
    known_differences: dict = field(default_factory=dict)  # dtype -> the cause it declares of disagreeing there

    def unsupported(self, spec: Spec) -> str | None:
        """Why `spec` uses an option the implementation does not declare (None: it does)."""
        o = spec.optimizer
        kind = "adam" if o.name == "adam" else "momentum" if o.momentum else "sgd"
        wants = [("dtypes", spec.dtype), ("optimizers", kind), ("losses", spec.loss),
                 ("batch_sizes", None if spec.batch_size in (None, 4) else spec.batch_size)]
        wants += [("activations", a) for a in spec.activations[:-1]] + [("hidden_layers", len(spec.layers) - 2),
                                                                         ("output_activations", spec.activations[-1])]
        for key, value in wants:
            if value not in self.supports[key] and not (key == "batch_sizes" and value is None and 4 in
                                                        self.supports[key]):
                return f"{'full batch' if value is None else value} is not among its declared {key}"
        return None


def declared_conventions(cls) -> Conventions | None:
    """The conventions a class declares itself (inheriting MLP's default, or setting None, is not declaring)."""
    for k in getattr(cls, "__mro__", ()):
        if k is MLP:
            return None
        if "conventions" in vars(k):
            conv = vars(k)["conventions"]
            return conv if isinstance(conv, Conventions) else None
    conv = getattr(cls, "conventions", None)
    return conv if isinstance(conv, Conventions) else None


def declared_supports(cls) -> dict:
    """`cls.supports`, checked: a dict of SUPPORT_KEYS to sequences of their values; missing keys mean all."""
    raw = getattr(cls, "supports", None)
    out = dict(SUPPORT_KEYS)
    if raw is None:
        return out
    if not isinstance(raw, dict):
        raise BadTarget(f"{getattr(cls, '__name__', cls)}.supports must be a dict of {', '.join(SUPPORT_KEYS)}, "
                        f"got {type(raw).__name__}")
    for key, values in raw.items():
        if key not in SUPPORT_KEYS:
            raise BadTarget(f"unknown key {key!r} in supports; known keys: {', '.join(SUPPORT_KEYS)}")
        values = (values,) if isinstance(values, str) or values is None else tuple(values)
        bad = [v for v in values if v not in SUPPORT_KEYS[key]]
        if bad:
            raise BadTarget(f"supports[{key!r}] has unknown value {bad[0]!r}; choose from "
                            f"{', '.join(str(v) for v in SUPPORT_KEYS[key])}")
        out[key] = values
    if "activations" in raw and "output_activations" not in raw:
        out["output_activations"] = out["activations"]
    return out


def declared_known_differences(cls) -> dict:
    """`cls.known_differences`, checked: a dict of dtypes to the declared cause, in words (missing: {})."""
    raw = getattr(cls, "known_differences", None) or {}
    if not isinstance(raw, dict) or not all(k in DTYPES and isinstance(v, str) and v for k, v in raw.items()):
        raise BadTarget(f"{getattr(cls, '__name__', cls)}.known_differences must be a dict of dtypes "
                        f"({', '.join(DTYPES)}) to the cause in words, got {raw!r}")
    return dict(raw)


def subject_for(target, name: str | None = None) -> Subject:
    """A Subject from a registry name (built-in, plug-in, `module:Class`, `file.py:Class`), a class, a factory,
    or a Subject."""
    if isinstance(target, Subject):
        return target
    if isinstance(target, str):
        entry = registry.get_entry(target)  # unknown names raise UnavailableError: bad input
        cls = _LOADER[0](target)  # unavailable: UnavailableError says why and how to install
        source = "built-in" if entry.builtin else entry.summary
        return Subject(name or target, cls, source, declared_conventions(cls), declared_supports(cls),
                       declared_known_differences(cls))
    if not callable(target):
        raise BadTarget(f"cannot verify {target!r}: give a class or a factory (spec, params) -> MLP")
    label = name or getattr(target, "name", None) or getattr(target, "__name__", None) or type(target).__name__
    return Subject(str(label), target, f"{getattr(target, '__module__', '')}.{getattr(target, '__qualname__', '')}",
                   declared_conventions(target), declared_supports(target), declared_known_differences(target))
