"""`xor-rosetta matrix`: the golden cases and both presets' comparisons re-run in one uv environment per set of framework releases, and a report of which release changed the numbers."""
