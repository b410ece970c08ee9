"""The tolerance policy: every verdict of agreement -- compare, check, verify, sweep and the tests -- comes from here.

A difference is measured relative to the magnitude it belongs to (the largest |output|, |gradient| or |parameter|
of the reference, or the largest |loss| so far), so a verdict means the same at any scale. Where a run is so
sensitive that one rounding inside each step already moves it past that, the run's own rounding floor
(`xor_rosetta.reference.rounding_floor`) decides instead:

    agrees                        |Δ| <= rtol * scale
    agrees within rounding noise  |Δ| <= NOISE * floor, and floor <= rtol * scale
    ill-conditioned               |Δ| <= NOISE * floor, and floor >  rtol * scale (one rounding already moves it)
    DISAGREES                     |Δ| >  max(rtol * scale, NOISE * floor), or NaN where the reference is finite
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

AGREES, NOISE, ILL, DISAGREES = 0, 1, 2, 3  # worst wins
WORDS = {AGREES: "agrees", NOISE: "agrees within rounding noise", ILL: "ill-conditioned", DISAGREES: "DISAGREES"}

NOISE_FACTOR = 10.0  # a difference up to 10x the rounding floor is rounding: the floor is the largest of four
# jittered runs (two patterns, both directions), and their spread varies up to ~10x between patterns (seed-keras
# float32: 2.6e-4 to 4.8e-3); a frameworks' real differences sit at 0.3-3x the floor (seed-keras float32: 4.6e-4
# to 2.5e-3 against a floor of 1e-3). A wrong learning rate, a missing bias update or a transposed weight moves a
# run by many orders of magnitude more than that.


@dataclass(frozen=True)
class Tolerance:
    forward: float  # max |Δ output| / max |reference output|, same params and inputs
    gradient: float  # max |Δ grad| / max |reference grad|
    params: float  # max |Δ param| / max |reference param|, after the same training steps
    loss: float  # |Δ loss| at each step / the largest |reference loss| up to that step
    finite_diff: float | None = None  # backprop vs central differences, relative to max |grad|


POLICY: dict[str, Tolerance] = {
    "float64": Tolerance(
        forward=5e-13,  # eps64 = 2.2e-16: a handful of O(1) roundings give ~1e-16 (seen: 1.1e-16); 2,000x spare
        gradient=5e-13,  # the same argument, relative to the gradient's scale (seen: 4.9e-16)
        params=5e-13,  # 10,000 SGD steps accumulate ~3e-15 relative (seed-numpy). Both presets keep every |param|
        # below 2, so there the bound stays <= 1e-12 absolute, as the project has always promised
        loss=5e-13,  # the loss is computed from O(scale) terms, so it is judged against its largest value so far:
        # a loss that has fallen to 1e-31 is the square of a residual at the last digit of the outputs
        finite_diff=1e-7,  # central differences with h = 1e-6: truncation ~h^2 = 1e-12, cancellation ~eps/h = 2e-10
    ),
    "float32": Tolerance(
        forward=1e-6,  # eps32 = 1.2e-7; TF's float32 tanh is off by up to 4 ulp (2.4e-7): a few roundings (seen 1.2e-7)
        gradient=1e-5,  # backprop chains several such roundings; relative to max |grad| (seen 2.6e-7)
        params=5e-6,  # float32 rounding drifts with training: ~1e-6 after 10,000 seed-numpy steps; <= 1e-5 on the presets
        loss=5e-6,  # as for float64, against the largest loss so far
    ),
}


def tolerance(dtype: str) -> Tolerance:
    return POLICY[dtype]


def modelled(dtype: str, known_difference: str | None, strict: bool = False) -> bool:
    """Whether a run in `dtype` is judged under the model of a declared known difference: float32 arithmetic inside
    a float64 run (`MLP.known_differences["float64"]`), judged by float32's tolerances against the float64
    reference, with the rounding floor of that model (`reference.float32_inside_floor`) as its noise. `strict`
    (compare --strict, verify --strict) judges every run in its own dtype: a declared difference then fails."""
    return dtype == "float64" and bool(known_difference) and not strict


def policy_for(dtype: str, known_difference: str | None, strict: bool = False) -> str:
    """The dtype whose tolerances judge the run (see `modelled`)."""
    return "float32" if modelled(dtype, known_difference, strict) else dtype


def modelled_label(known_difference: str) -> str:
    """How a verdict names the model it was judged under: 'float32 inside: Keras on JAX', from a declared known
    difference 'Keras on JAX: why'."""
    return f"float32 inside: {known_difference.split(':')[0].strip()}"


def classify(diff, allowed, floor=None):
    """Status codes (AGREES .. DISAGREES) of differences `diff` against `allowed` = rtol * scale, and the rounding
    `floor` where it was measured (None: not measured, so anything over `allowed` DISAGREES). Arrays broadcast."""
    diff, allowed = np.asarray(diff, dtype=np.float64), np.asarray(allowed, dtype=np.float64)
    ok = diff <= allowed  # False for NaN
    if floor is None:
        return np.where(ok, AGREES, DISAGREES)
    floor = np.asarray(floor, dtype=np.float64)
    noisy = diff <= NOISE_FACTOR * floor
    return np.where(ok, AGREES, np.where(~noisy, DISAGREES, np.where(floor > allowed, ILL, NOISE)))


def running_max(values: np.ndarray) -> np.ndarray:
    """The largest |value| up to each index (NaN-free prefix; a NaN stays NaN): the scale of each step's loss."""
    return np.fmax.accumulate(np.abs(np.asarray(values, dtype=np.float64)))
