"""xor-rosetta's core: the spec, the canonical parameters, the MLP interface, the NumPy reference and the tolerance
policy. It imports no framework and nothing of the application (`xor_rosetta.app`).

Installed as `xor_rosetta` from the folder `shared/`; implementations live in `xor_rosetta.implementations`.
"""
