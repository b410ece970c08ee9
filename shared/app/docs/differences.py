"""Where frameworks differ: each row measures a difference and the setting that removes it.

`python -m xor_rosetta.app.docs.differences` prints the README table; tests/test_differences.py asserts each row.
`python -m xor_rosetta.app.docs.differences agreement` prints the README's "Measured agreement" table.
The probes, which need torch, keras and jax, are `xor_rosetta.implementations.probes.differences`; the rows about
Keras on JAX and torch measure in worker processes of those implementations (`xor_rosetta.app.workers.pool`).
"""
from __future__ import annotations


import numpy as np

from xor_rosetta.data import xor_data
from xor_rosetta.interface import Conventions
from xor_rosetta.params import init_params
from xor_rosetta.presets import get_preset
from xor_rosetta.implementations.probes.differences import (
    ADAM_STREAM, BCE_Y, BCE_Z, Row, _gradient_stream, _reference_on_stream, adam_epsilon, bce_saturation, default_init,
    float32_drift, keras_adam_on_stream, keras_bce_probe, keras_clipped_bce, keras_float32_hyperparameters, keras_forward,
    momentum_form, optax_adam, tf_float32_tanh, torch_bce_grad_epsilon, weight_layout)


def _in_worker(name: str, fn, *args, fresh: bool = False):
    """fn(*args) in a worker process of implementation `name`'s group (`fresh`: a new process, used once)."""
    from xor_rosetta import registry
    from xor_rosetta.app.workers import pool as workers
    entry = registry.get_entry(name)
    if not fresh:
        return workers.session().get(entry.process_key, entry.env).call(fn, *args)
    with workers.Pool(1) as pool:
        pool.submit(0, entry.process_key, fn, *args, env=entry.env)
        out = [o for o in pool.results() if not o.note][0]
    if out.error:
        raise RuntimeError(f"{name}: {out.error}")
    return out.value


def keras_torch_adam() -> Row:
    from xor_rosetta.spec import Optimizer
    o = Optimizer("adam", **ADAM_STREAM)
    w0, grads = _gradient_stream("float32")
    got = _in_worker("keras-torch", keras_adam_on_stream, "float32")
    gap = {form: float(np.max(np.abs(_reference_on_stream(o, Conventions(adam=form), w0, grads) - got)))
           for form in ("keras", "keras-torch")}
    return Row("Keras Adam on torch", "Keras on the torch backend replaces its Adam update with torch foreach ops, "
               "which round the moments as m·β1 + (1−β1)·g instead of m + (g − m)·(1−β1). Max |Δ params|, Keras "
               "on torch vs Keras' generic form, 1,000 Adam steps on one stream of gradients, float32 (in float64 "
               "both forms are within 2.2e-15)", gap["keras"],
               "reference in that form (`Conventions.adam = \"keras-torch\"`); what is left is torch's fused "
               "multiply-add in add(alpha=) and its CPU sqrt, not modelled", gap["keras-torch"])


def keras_bce_backends() -> Row:
    import xor_rosetta.implementations.keras_mlp  # noqa: F401 - TensorFlow's settings before its import
    from xor_rosetta.reference import BCE
    z, y = BCE_Z.astype("float32"), BCE_Y.astype("float32")
    a = (1 / (1 + np.exp(-z.astype(np.float64)))).astype(np.float32)
    tf_loss, _ = keras_bce_probe("float32")  # TensorFlow (this process): from the logits
    differs, left = [], []
    for name, form in (("keras-jax", "keras-jax"), ("keras-torch", "keras-torch")):
        loss, dz = _in_worker(name, keras_bce_probe, "float32")
        differs.append(abs(loss - tf_loss))
        want_loss, want_dz = BCE[form](z, a, y, y.size)
        left += [abs(loss - want_loss) / abs(want_loss), float(np.max(np.abs(dz - want_dz)) / np.max(np.abs(want_dz)))]
    return Row("Keras BCE by backend", "The same `BinaryCrossentropy` on the same Keras sigmoid: TensorFlow reads the "
               "logits behind it; JAX cannot (its arrays take no attribute) and clips p to [1e-7, 1 − 1e-7], with a "
               "zero gradient outside; torch clips, then calls `F.binary_cross_entropy`. |Δ loss| vs TensorFlow, "
               "mean over logits ±40, ±20, −3, 0.5 (four confidently wrong), float32",
               max(differs), "reference in each backend's form (`Conventions.bce = \"keras-jax\"`, "
               "`\"keras-torch\"`); left: largest relative |Δ| of loss or gradient", max(left))


def keras_float32_inside() -> Row:
    before = max(_in_worker(n, keras_forward, n, False) for n in ("keras-jax", "keras-torch"))
    after = max(_in_worker(n, keras_forward, n, True, fresh=True) for n in ("keras-jax", "keras-torch"))
    return Row("Keras float64 on JAX and torch", "Keras ≥ 3.12 maps every float64 result to float32 on every "
               "backend but TensorFlow (`keras.backend.result_type`, through `BIT64_TO_BIT32_DTYPE`): on JAX tanh and "
               "every loss, on torch every Dense matmul and every loss run in float32 inside a float64 run, with "
               "float64 variables. Max |Δ output| vs the float64 reference, seed-numpy's initial weights, either "
               "backend", before, "none supported: `compare` reports them DISAGREES in float64 (README, \"Keras on "
               "three backends\"). Shown as \"left\", in a process of its own: the unsupported private patch "
               "`keras.src.backend.common.dtypes.BIT64_TO_BIT32_DTYPE.pop(\"float64\")`", after)


ROWS = [weight_layout, default_init, adam_epsilon, momentum_form, bce_saturation, torch_bce_grad_epsilon,
        keras_clipped_bce, keras_float32_hyperparameters, float32_drift, tf_float32_tanh, optax_adam, keras_torch_adam,
        keras_bce_backends, keras_float32_inside]


def table() -> str:
    lines = ["| topic | what differs (and the measurement) | measured | setting that removes it | left |",
             "|---|---|---:|---|---:|"]
    for row in (f() for f in ROWS):
        cells = [row.topic, row.what, f"{row.differs_by:.2g}", row.setting, f"{row.with_setting:.2g}"]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


AGREEMENT_STEPS = (1, 10, 100, 10_000)  # seed-numpy checkpoints whose params are compared


def agreement_row(name: str, dtype: str) -> dict:
    """One implementation against the reference in its own conventions, from identical canonical weights: worst
    forward and gradient differences over both presets' initial weights, params over seed-numpy's checkpoints
    (a task for the implementation's worker)."""
    from xor_rosetta import registry
    from xor_rosetta.compare import max_abs_diff, max_rel_diff
    from xor_rosetta.reference import Reference
    cls = registry.load(name)
    x, y = xor_data(dtype)
    fwd = grad = 0.0
    for preset in ("seed-numpy", "seed-keras"):
        spec = get_preset(preset).replace(dtype=dtype)
        model, ref = cls(spec, init_params(spec)), Reference(spec, init_params(spec), cls.conventions)
        fwd = max(fwd, float(np.max(np.abs(model.forward(x) - ref.forward(x)))))
        grad = max(grad, max_rel_diff(model.gradients(x, y), ref.gradients(x, y)))
    spec = get_preset("seed-numpy").replace(dtype=dtype)
    got = cls(spec, init_params(spec)).train(x, y, checkpoints=AGREEMENT_STEPS)
    want = Reference(spec, init_params(spec), cls.conventions).train(x, y, checkpoints=AGREEMENT_STEPS)
    params = max(max_abs_diff(got.checkpoints[k], want.checkpoints[k]) for k in AGREEMENT_STEPS)
    return {"forward": fwd, "gradient": grad, "params": params,
            "known_difference": getattr(cls, "known_differences", {}).get(dtype)}


def agreement(names=None) -> str:
    """The README's "Measured agreement" table: every available implementation, each in a worker of its group."""
    from xor_rosetta import registry
    from xor_rosetta.app.run.runner import submit, unavailable
    from xor_rosetta.app.workers.pool import Pool
    names = [n for n in (names or registry.REGISTRY) if unavailable(n) is None]
    keys = [(n, dt) for dt in ("float64", "float32") for n in names]
    with Pool(2) as pool:
        for n, dt in keys:
            submit(pool, (n, dt), n, agreement_row, n, dt)
        rows = {o.key: o.value if o.error is None else o.error for o in pool.results() if not o.note}
    lines = ["| implementation | dtype | forward max \\|Δ\\| | gradients max \\|Δ\\| / max \\|g\\| | params, 10,000 steps |",
             "|---|---|---:|---:|---:|"]
    for n, dt in keys:
        r = rows[(n, dt)]
        if isinstance(r, str):
            lines.append(f"| {n} | {dt} | {r} | | |")
            continue
        mark = " (float32 inside: known difference)" if r["known_difference"] else ""
        lines.append(f"| {n} | {dt}{mark} | {r['forward']:.1e} | {r['gradient']:.1e} | {r['params']:.1e} |")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    from xor_rosetta.app.docs import differences  # by its name, not __main__: workers import the tasks from it
    from xor_rosetta.app.workers.pool import close_session
    try:
        print(differences.agreement() if sys.argv[1:] == ["agreement"] else differences.table())
    finally:
        close_session()
