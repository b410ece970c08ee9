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
SUPPORT_DEFAULTS = {  # the keys that take one value, and what a class that does not declare them gets
    "uniform_hidden_activations": False,  # True: every hidden layer must have the same activation
    "min_width": 1,  # the narrowest hidden layer it can build
    "losses_by_output": None,  # {output activation: [losses]}: the losses it computes on each output (None: any)
}


def all_supported() -> dict:
    """What a class that declares nothing supports: everything."""
    return {**SUPPORT_KEYS, **SUPPORT_DEFAULTS}


class BadTarget(XorRosettaError):
    """The implementation cannot be verified at all (exit status 2)."""


@dataclass
class Subject:
    """What is verified: a factory `(spec, params) -> MLP` and what it says about itself."""
    name: str
    factory: Callable[[Spec, Params], MLP]
    source: str = ""
    declared: Conventions | None = None  # conventions the class itself declares (None: not declared)
    supports: dict = field(default_factory=all_supported)
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
        sup, hidden, out = self.supports, spec.activations[:-1], spec.activations[-1]
        narrow = [w for w in spec.layers[1:-1] if w < sup["min_width"]]
        if narrow:
            return f"a hidden layer of width {narrow[0]} is narrower than its declared min_width {sup['min_width']}"
        if sup["uniform_hidden_activations"] and len(set(hidden)) > 1:
            return f"hidden activations {'/'.join(hidden)} differ, and it declares uniform_hidden_activations"
        by_output = sup["losses_by_output"]
        if by_output is not None and spec.loss not in by_output.get(out, ()):
            return f"{spec.loss} on a {out} output is not among its declared losses_by_output"
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
    out, keys = all_supported(), ", ".join([*SUPPORT_KEYS, *SUPPORT_DEFAULTS])
    if raw is None:
        return out
    if not isinstance(raw, dict):
        raise BadTarget(f"{getattr(cls, '__name__', cls)}.supports must be a dict of {keys}, "
                        f"got {type(raw).__name__}")
    for key, values in raw.items():
        if key in SUPPORT_DEFAULTS:
            out[key] = _one_value(key, values)
            continue
        if key not in SUPPORT_KEYS:
            raise BadTarget(f"unknown key {key!r} in supports; known keys: {keys}")
        values = (values,) if isinstance(values, str) or values is None else tuple(values)
        bad = [v for v in values if v not in SUPPORT_KEYS[key]]
        if bad:
            raise BadTarget(f"supports[{key!r}] has unknown value {bad[0]!r}; choose from "
                            f"{', '.join(str(v) for v in SUPPORT_KEYS[key])}")
        out[key] = values
    if "activations" in raw and "output_activations" not in raw:
        out["output_activations"] = out["activations"]
    return out


def _one_value(key: str, value):
    """A declared value of a SUPPORT_DEFAULTS key, checked (its default too: a checked dict checks again)."""
    if value is SUPPORT_DEFAULTS[key] or (value == SUPPORT_DEFAULTS[key] and type(value) is type(SUPPORT_DEFAULTS[key])):
        return value
    if key == "uniform_hidden_activations" and isinstance(value, bool):
        return value
    if key == "min_width" and isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    if key == "losses_by_output" and isinstance(value, dict):
        out = {}
        for act, losses in value.items():
            losses = (losses,) if isinstance(losses, str) else tuple(losses)
            if act not in ACTIVATIONS or not all(x in LOSSES for x in losses):
                raise BadTarget(f"supports['losses_by_output'] maps output activations ({', '.join(ACTIVATIONS)}) "
                                f"to losses ({', '.join(LOSSES)}); got {act!r}: {list(losses)}")
            out[act] = losses
        return out
    want = {"uniform_hidden_activations": "True or False", "min_width": "a positive int",
            "losses_by_output": "a dict of output activations to losses"}[key]
    raise BadTarget(f"supports[{key!r}] must be {want}, got {value!r}")


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
