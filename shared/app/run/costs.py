"""What a run will cost, before it starts: each implementation's measured µs per step (bench's anchors)."""
from __future__ import annotations

from xor_rosetta.spec import Spec

ANCHORS_US = {  # µs/step on seed-numpy measured on this machine (../shared/reference/ANCHORS.md): (low, high)
    "numpy": (17, 25), "torch": (190, 330), "torch-compiled": (52, 60), "keras": (80, 130), "keras-xla": (1.4, 2.3),
    # JAX scan from ANCHORS.md; the other three from the research before they were written (medians of interleaved
    # blocks, quietest of three runs): Flax NNX with nnx.jit_partial, Keras fit with spe=1000 on JAX, spe=1 on torch
    "jax-scan": (1.1, 1.5), "jax": (35, 50), "keras-jax": (33, 39), "keras-torch": (2000, 2700)}


def expected_seconds(name: str, spec: Spec) -> float:
    """A rough estimate of a training run's seconds: the steps at the upper end of the implementation's bench
    anchor (its seed-numpy µs/step on this machine); 0 for one without an anchor."""
    return spec.steps * ANCHORS_US.get(name, (0, 0))[1] * 1e-6
