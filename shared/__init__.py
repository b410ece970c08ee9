"""Code every implementation shares: spec, presets, data, params, reference maths, tolerances."""
