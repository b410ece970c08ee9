"""The tolerance policy: every cross-implementation check reads its tolerance from here, by dtype."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tolerance:
    forward: float  # max |Δ output| for the same params and inputs
    gradient: float  # max |Δ grad| / max |grad| of the reference
    params: float  # max |Δ param| after the same training steps
    loss_rtol: float  # loss histories: |Δ loss| <= loss_atol + loss_rtol * |loss| at every step ...
    loss_atol: float  # ... the absolute part keeps the check sensible as the loss goes to zero
    finite_diff: float | None = None  # backprop vs central differences, relative to max |grad|


POLICY: dict[str, Tolerance] = {
    "float64": Tolerance(
        forward=1e-12,  # eps64 = 2.2e-16; outputs are O(1) after a handful of O(1) ops: ~1e-16 seen, 4 orders spare
        gradient=1e-12,  # same argument, relative to the gradient's scale; ~1e-16 seen
        params=1e-12,  # 10,000 SGD steps accumulate rounding to ~3e-15 (seed-numpy); 1e-12 leaves 300x for growth
        loss_rtol=1e-9,  # the loss is a mean of a few O(1) terms; its own rounding is ~1e-16 relative
        loss_atol=1e-12,  # params within 1e-12 move an O(1)-gradient loss by at most ~1e-12 absolute
        finite_diff=1e-7,  # central differences with h = 1e-6: truncation ~h^2 = 1e-12, cancellation ~eps/h = 2e-10
    ),
    "float32": Tolerance(
        forward=1e-6,  # eps32 = 1.2e-7 (6e-8 per rounding); TF's float32 tanh is off by up to 4 ulp (2.4e-7)
        gradient=1e-5,  # backprop chains several such roundings; relative to max |grad|; ~1e-6 seen
        params=1e-5,  # float32 rounding drifts with training: ~1e-6 after 10,000 seed-numpy steps (README)
        loss_rtol=1e-4,  # a float32 loss carries ~1e-7 relative rounding, plus drift of the params above
        loss_atol=1e-6,  # near zero loss the relative part vanishes; params within 1e-5 move it ~1e-6 at most
    ),
}


def tolerance(dtype: str) -> Tolerance:
    return POLICY[dtype]
