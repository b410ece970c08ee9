"""Errors that carry a one-line message meant for the user."""


class XorRosettaError(Exception):
    """Base class: the message names what is wrong and how to fix it."""


class SpecError(XorRosettaError, ValueError):
    """An experiment spec (or TOML file) is invalid."""


class ParamsError(XorRosettaError, ValueError):
    """A weights file or parameter set is invalid."""


class UnavailableError(XorRosettaError, ImportError):
    """An implementation's framework is not installed or cannot be imported."""


class Unsupported(XorRosettaError):
    """Raised by an implementation's constructor to decline a spec it does not support, with the reason: verify
    skips what needs it, compare reports "unsupported: REASON", train rejects the spec."""
