"""The forms (Adam, momentum, BCE) compare judges an implementation in: those its class declares, or, where it
declares none, those the conformance kit's detection checks find (the same machinery as `verify`); a declaration
that contradicts the detection; and whether the implementation supports a spec at all."""
from __future__ import annotations

import copy
import dataclasses

from xor_rosetta.interface import Conventions
from xor_rosetta.spec import Spec

OPS = {"adam": "Adam", "momentum": "momentum", "bce": "BCE"}  # operation -> its name in words
FORM_WORDS = {"torch": "torch's", "keras": "Keras'", "optax": "optax's", "keras-torch": "Keras-on-torch's",
              "keras-jax": "Keras-on-JAX's", "textbook": "the textbook", "probs": "the probabilities'",
              "logits": "the logits'"}


def used_ops(spec: Spec) -> list[str]:
    """The operations whose form matters on `spec`."""
    o = spec.optimizer
    return [op for op, used in (("adam", o.name == "adam"), ("momentum", bool(o.momentum)),
                                ("bce", spec.loss == "bce")) if used]


def unsupported(cls, spec: Spec) -> str | None:
    """Why `cls` (by its `supports`) cannot run `spec`; None: it can."""
    from xor_rosetta.checks.subject import subject_for
    return subject_for(cls).unsupported(spec)


def forms_for(cls, spec: Spec, detect_declared: bool = False) -> tuple[Conventions, dict]:
    """The conventions to judge `cls` in on `spec`, and, for each operation `spec` uses, {"form", "source":
    "declared" | "detected" | "default" (nothing detected: the default form), "detected": the detected form or
    None, "contradicts": whether a declared form disagrees with the detection}. A class that declares conventions
    is judged in them; it is also detected when `detect_declared` (an outside implementation), so that a
    declaration that contradicts what it computes is reported."""
    from xor_rosetta.checks.subject import declared_conventions
    declared, ops = declared_conventions(cls), used_ops(spec)
    if declared is not None and not detect_declared:
        return declared, {op: {"form": getattr(declared, op), "source": "declared"} for op in ops}
    key = (cls, spec.dtype, tuple(ops))  # the detection's scripts depend on these alone: a sweep detects once
    if key not in _DETECTED:
        _DETECTED[key] = _detect(cls, spec.dtype, ops, declared)
    conv, forms = _DETECTED[key]
    return conv, copy.deepcopy(forms)


_DETECTED: dict[tuple, tuple[Conventions, dict]] = {}


def _detect(cls, dtype: str, ops: list[str], declared: Conventions | None) -> tuple[Conventions, dict]:
    from xor_rosetta.checks import Battery
    from xor_rosetta.checks.catalogue import DETECTORS
    conv, forms = declared or Conventions(), {}
    battery = Battery(cls, dtype=dtype, level="quick") if ops else None
    for op in ops:
        battery.run(DETECTORS[op])
        found = battery.detected.get(op, {}).get("form")
        consistent = battery.detected.get(op, {}).get("consistent", [])
        if declared is not None:
            mine = getattr(declared, op)
            forms[op] = {"form": mine, "source": "declared", "detected": found,
                         "contradicts": found is not None and mine not in consistent}
        elif found is not None:
            conv = dataclasses.replace(conv, **{op: found})
            forms[op] = {"form": found, "source": "detected", "detected": found, "contradicts": False}
        else:
            forms[op] = {"form": getattr(conv, op), "source": "default", "detected": None, "contradicts": False}
    return conv, forms


def note(forms: dict | None) -> str:
    """What the verdict says of the forms: those detected, not detected, or contradicting the declaration."""
    said = []
    for op, f in (forms or {}).items():
        if f.get("contradicts"):
            said.append(f"declares {OPS[op]} in {FORM_WORDS[f['form']]} form, detected {FORM_WORDS[f['detected']]}")
        elif f["source"] == "detected":
            said.append(f"{OPS[op]} in {FORM_WORDS[f['form']]} form, detected")
        elif f["source"] == "default":
            said.append(f"{OPS[op]} form not detected: judged in {FORM_WORDS[f['form']]}")
    return f" ({'; '.join(said)})" if said else ""


def words(forms: dict | None) -> str:
    """Every form judged in, and where it came from: "Adam keras (detected), BCE logits (declared)"."""
    said = []
    for op, f in (forms or {}).items():
        where = {"declared": "declared", "detected": "detected", "default": "not detected: the default"}[f["source"]]
        if f.get("contradicts"):
            where += f", contradicted: detected {f['detected']}"
        said.append(f"{OPS[op]} {f['form']} ({where})")
    return ", ".join(said)
