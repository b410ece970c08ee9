"""`xor-rosetta matrix`: the golden cases and both presets re-run in one uv environment per set of releases."""
