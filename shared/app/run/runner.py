"""Run implementations on a spec from shared initial weights, and judge them against the NumPy reference.

Two halves, so that an implementation runs in a process of its own: `train_impl` runs one implementation and
returns plain data only (NumPy arrays, numbers, strings: no framework object), and `judge_run` measures that
against the reference (`xor_rosetta.reference.Reference`) by the tolerance policy. `run_all` runs `train_impl` for
each implementation in a worker process (`xor_rosetta.app.workers.pool`) and judges the runs here, in the parent,
as they arrive; the parent computes the reference runs while the workers train, and imports no framework.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from xor_rosetta import registry
from xor_rosetta.app.run import forms
from xor_rosetta.app.workers.pool import Pool
from xor_rosetta.app.workers.serve import note, rss_mb
from xor_rosetta.app.run.costs import expected_seconds
from xor_rosetta.compare import Judgement, accuracy, judge, max_abs_diff, max_rel_diff
from xor_rosetta.data import xor_data
from xor_rosetta.errors import Unsupported
from xor_rosetta.interface import Conventions, History
from xor_rosetta.params import Params, check_params
from xor_rosetta.reference import Reference, float32_inside_floor, rounding_floor
from xor_rosetta.spec import Spec
from xor_rosetta.tolerance import AGREES, DISAGREES, modelled, policy_for

GRID = 101  # the decision-boundary picture samples the unit square on a GRID x GRID lattice
GRID_CHUNK_BYTES = 64 << 20  # the grid goes through the model in chunks: one layer's activations stay under this
# (not much less: chunks under glibc's 32 MB mmap threshold made torch's RSS grow by one chunk a call, to 8 GB)


def checkpoints_for(steps: int, n: int = 16) -> list[int]:
    """About n log-spaced steps from 1 to `steps`, always including 1, 10, 100, ... and `steps`."""
    ks = set(np.unique(np.geomspace(1, steps, n).round().astype(int)).tolist())
    ks |= {10 ** i for i in range(8) if 10 ** i <= steps} | {steps}
    return sorted(ks)


def boundary_grid() -> np.ndarray:
    g = np.linspace(0, 1, GRID)
    return np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)  # (GRID*GRID, 2)


@dataclass
class ImplRun:
    """What one implementation produced: plain data only, so it can cross a process boundary."""
    name: str
    conventions: dict | None = None  # Conventions as a dict
    error: str | None = None  # unavailable, or what went wrong
    grads: Params | None = None  # at the initial weights
    history: History | None = None
    final_loss: float = float("nan")
    outputs: np.ndarray | None = None  # (4, 1) after training
    grid_outputs: np.ndarray | None = None  # (GRID*GRID,) after training, for the decision-boundary plot
    diverged: bool = False  # `error` was raised on NaN or infinite values (torch's BCELoss does): divergence
    known_difference: str | None = None  # the implementation's declared cause of disagreeing in this dtype
    forms: dict | None = None  # op -> the form judged in, declared or detected (forms.forms_for)


def train_impl(name: str, spec: Spec, params: Params, checkpoints: list[int], grid: bool = True) -> ImplRun:
    """Build `name` from `params`, take its gradients, train it, and report what it did."""
    run = ImplRun(name)
    try:
        cls = registry.load(name)
    except registry.UnavailableError as e:
        run.error = str(e)
        return run
    run.known_difference = getattr(cls, "known_differences", {}).get(spec.dtype)
    try:  # its supports, then its forms: declared, or detected where it declares none (an outside one: both)
        why = forms.unsupported(cls, spec)
        if why is None:
            conv, run.forms = forms.forms_for(cls, spec, detect_declared=not registry.get_entry(name).builtin)
    except Exception as e:  # a malformed declaration: reported, as a failure of this implementation
        run.error = f"failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        return run
    if why is not None:
        run.error = f"unsupported: {why}"
        return run
    run.conventions = conv.to_dict()
    note({"conventions": run.conventions})  # in a worker: the parent starts on this reference run meanwhile
    x, y = xor_data(spec.dtype)
    model = None
    try:
        with np.errstate(all="ignore"):  # a diverging run overflows; that is reported, not warned about
            model = cls(spec, params)
            run.grads = model.gradients(x, y)
            run.history = model.train(x, y, checkpoints=checkpoints)
            run.final_loss = float(model.loss(x, y))
            run.outputs = np.asarray(model.forward(x), dtype=np.float64)
            if grid:
                run.grid_outputs = grid_outputs(model, spec)
    except Unsupported as e:  # its constructor declines the spec: listed, and not counted
        run.error = f"unsupported: {str(e).splitlines()[0] if str(e) else 'declined, without a reason'}"
    except Exception as e:  # one implementation failing must not stop the others; it is reported and fails the run
        run.error = f"failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        run.diverged = _nonfinite(model, x)
    return run


def grid_outputs(model, spec: Spec) -> np.ndarray:
    """The model's outputs on the boundary grid, (GRID*GRID,), in chunks small enough for any width."""
    points = boundary_grid()
    rows = max(1, GRID_CHUNK_BYTES // (8 * max(spec.layers)))
    return np.concatenate([np.asarray(model.forward(points[i:i + rows]), dtype=np.float64).reshape(-1)
                           for i in range(0, len(points), rows)])


def _nonfinite(model, x) -> bool:
    """Whether a model that raised holds NaN or infinite params or outputs (then what it raised is divergence)."""
    if model is None:
        return False
    try:
        with np.errstate(all="ignore"):
            values = [a for Wb in model.params() for a in Wb] + [np.asarray(model.forward(x), dtype=np.float64)]
        return not all(np.all(np.isfinite(a)) for a in values)
    except Exception:
        return False


def train_alone(name: str, spec: Spec, params: Params) -> dict:
    """`xor-rosetta train`'s run (in a worker): the history, the final params and loss, the wall time of train();
    or {"unsupported": why} where the class's `supports` rules `spec` out."""
    cls = registry.load(name)
    why = forms.unsupported(cls, spec)
    if why is not None:
        return {"unsupported": why}
    x, y = xor_data(spec.dtype)
    with np.errstate(all="ignore"):  # a diverging run is reported as such
        try:
            model = cls(spec, params)
        except Unsupported as e:  # its constructor declines the spec
            return {"unsupported": str(e).splitlines()[0] if str(e) else "declined, without a reason"}
        start = time.perf_counter()
        hist = model.train(x, y)
        wall = time.perf_counter() - start
        return {"history": hist, "wall_seconds": wall, "final_loss": float(model.loss(x, y)), "params": model.params()}


@dataclass
class RunResult:
    name: str
    run: ImplRun | None = None
    reference: History | None = None  # the NumPy reference in this implementation's conventions
    error: str | None = None  # unavailable, or what went wrong
    diverged_at: int | None = None  # first step (0-based) whose loss is NaN or infinite
    final_loss: float = float("nan")
    accuracy: float = float("nan")
    steps_to_threshold: int | None = None
    param_diff: float = float("nan")  # max |Δ params| vs the reference, over all checkpoints
    param_diff_curve: dict[int, float] = field(default_factory=dict)  # checkpoint -> max |Δ params|
    grad_diff: float = float("nan")  # max |Δ grad| / max |grad| at the initial weights
    judgement: Judgement | None = None
    modelled: str | None = None  # the declared known difference it was judged under (its model), if any

    @property
    def history(self) -> History | None:
        return None if self.run is None else self.run.history

    @property
    def agrees(self) -> bool:
        """No error, no divergence, and not DISAGREES (rounding noise and ill-conditioning are not disagreement)."""
        from xor_rosetta.tolerance import DISAGREES
        return self.error is None and self.diverged_at is None and self.judgement is not None \
            and self.judgement.status < DISAGREES

    @property
    def first_disagreement(self) -> str | None:
        j = self.judgement
        if j is None or j.status == AGREES:
            return None
        known = self.run.known_difference if self.run is not None and j.status == DISAGREES else None
        return j.explanation if not known else f"{j.explanation}; known difference: {known}"

    def converged(self, threshold: float) -> bool:
        return self.agrees and self.final_loss < threshold and self.accuracy == 1.0


def first_nonfinite(loss: np.ndarray) -> int | None:
    bad = ~np.isfinite(loss)
    return int(np.argmax(bad)) if bad.any() else None


class References:
    """Reference runs for one spec and set of initial weights, by conventions, computed once each (here, or handed
    in from a worker with `put`); and their rounding floors, measured only when a verdict needs them."""

    def __init__(self, spec: Spec, params: Params, checkpoints: list[int]):
        self.spec, self.params, self.checkpoints = spec, params, checkpoints
        self.x, self.y = xor_data(spec.dtype)
        self._runs, self._grads, self._floors, self._floors32 = {}, {}, {}, {}

    def key(self, conv: Conventions) -> Conventions:
        """The conventions that matter to this spec: on seed-numpy (SGD, MSE) all nine implementations share one
        reference run instead of six, one per framework's forms."""
        return conv.used_by(self.spec)

    def has(self, conv: Conventions) -> bool:
        return self.key(conv) in self._runs

    def put(self, conv: Conventions, grads: Params, history: History) -> None:
        conv = self.key(conv)
        self._grads[conv], self._runs[conv] = grads, history

    def run(self, conv: Conventions) -> History:
        conv = self.key(conv)
        if conv not in self._runs:
            self.put(conv, *reference_run(self.spec, self.params, conv.to_dict(), self.checkpoints))
        return self._runs[conv]

    def gradients(self, conv: Conventions) -> Params:
        self.run(conv)
        return self._grads[self.key(conv)]

    def floor(self, conv: Conventions):
        conv = self.key(conv)
        if conv not in self._floors:
            with np.errstate(all="ignore"):  # a diverging run overflows; that is reported, not warned about
                self._floors[conv] = rounding_floor(self.spec, self.params, conv, self.run(conv), self.checkpoints,
                                                    self.x, self.y)
        return self._floors[conv]

    def float32_floor(self, conv: Conventions):
        """How far float32 arithmetic inside the run moves the float64 reference (a modelled known difference)."""
        conv = self.key(conv)
        if conv not in self._floors32:
            with np.errstate(all="ignore"):
                self._floors32[conv] = float32_inside_floor(self.spec, self.params, conv, self.run(conv),
                                                            self.checkpoints, self.x, self.y)
        return self._floors32[conv]


def reference_run(spec: Spec, params: Params, conventions: dict, checkpoints: list[int]) -> tuple[Params, History]:
    """The NumPy reference in these conventions: its gradients at the initial weights, and its training run."""
    x, y = xor_data(spec.dtype)
    with np.errstate(all="ignore"):
        ref = Reference(spec, params, Conventions(**conventions))
        return ref.gradients(x, y), ref.train(x, y, checkpoints=checkpoints)


def judge_run(run: ImplRun, refs: References, threshold: float, strict: bool = False) -> RunResult:
    """Measure one implementation's run against the reference in its own conventions; a declared known difference
    in the run's dtype is judged under its model (`tolerance.modelled`), unless `strict`."""
    res = RunResult(run.name, run, error=run.error)
    res.modelled = run.known_difference if modelled(refs.spec.dtype, run.known_difference, strict) else None
    if run.error is not None:
        if run.diverged and run.conventions is not None:
            # it raised on non-finite values: divergence, where the reference diverges too (reported at its step)
            stop = first_nonfinite(refs.run(Conventions(**run.conventions)).loss)
            if stop is not None:
                res.error, res.diverged_at = None, stop
        return res
    spec, ks = refs.spec, refs.checkpoints
    conv = Conventions(**run.conventions)
    res.reference = ref = refs.run(conv)
    hist = run.history
    res.diverged_at = first_nonfinite(hist.loss)
    res.final_loss = run.final_loss
    res.accuracy = accuracy(run.outputs, refs.y)
    below = np.flatnonzero(hist.loss < threshold)
    res.steps_to_threshold = int(below[0]) + 1 if below.size else None
    res.grad_diff = max_rel_diff(run.grads, refs.gradients(conv))
    for k in ks:
        res.param_diff_curve[k] = max_abs_diff(hist.checkpoints[k], ref.checkpoints[k])
    res.param_diff = max(res.param_diff_curve.values())
    # judge the steps before either run stops being finite (divergence is reported as such)
    stop = min(x for x in (first_nonfinite(hist.loss), first_nonfinite(ref.loss), len(hist.loss)) if x is not None)
    if stop == 0:  # non-finite from the first step: gradients and losses alike; nothing to judge but the divergence
        return res
    finite_ks = [k for k in ks if k <= stop]
    floor = refs.float32_floor if res.modelled else refs.floor
    res.judgement = judge(policy_for(spec.dtype, res.modelled), finite_ks, run.grads, refs.gradients(conv),
                          hist.loss[:stop], ref.loss[:stop], hist.checkpoints, ref.checkpoints,
                          floor=lambda: _cut(floor(conv), stop))
    return res


def _cut(floor, stop):
    return replace(floor, loss=None if floor.loss is None else floor.loss[:stop])


def run_one(name: str, spec: Spec, params: Params, threshold: float, checkpoints: list[int],
            references: References | None = None) -> RunResult:
    """Train `name` in this process and judge it (the command line runs `train_impl` in a worker instead)."""
    check_params(params, spec)
    refs = references or References(spec, params, checkpoints)
    return judge_run(train_impl(name, spec, params, checkpoints), refs, threshold)


def unavailable(name: str) -> str | None:
    """Why `name` cannot run here, judged without importing anything (no worker is started for it)."""
    reason = registry.unavailable_reason(registry.get_entry(name))
    return None if reason is None else f"implementation {name!r} is unavailable: {reason}"


def train_command(name: str, command: str, timeout: float | None, *args) -> ImplRun:
    """`train_impl` for a `--cmd` child, in a worker process: the child is started here, in the worker's process
    group, so that the pool's `timeout` bounds it (its start and hello included) and ends it with the worker;
    each answer may then take up to `timeout` too (else the protocol's default for one answer)."""
    from xor_rosetta.app.workers.protocol import TIMEOUT_S, register_command
    if name not in registry.RUNTIME:
        register_command(command, name=name, timeout=timeout or TIMEOUT_S, own_session=False)
    return train_impl(name, *args)


def command_of(name: str) -> str | None:
    """The command of a `--cmd` child registered in this process as `name` (None: not one)."""
    return getattr(registry.RUNTIME[name][0], "command", None) if name in registry.RUNTIME else None


def submit(pool: Pool, key, name: str, fn, *args, **kwargs) -> None:
    """Queue fn(*args) in a worker of `name`'s process group, with the environment that group needs. A `--cmd`
    child's `train_impl` runs in a worker of its own (`train_command`), like any implementation."""
    entry = registry.get_entry(name)
    command = command_of(name)
    if command is not None and fn is train_impl:
        pool.submit(key, f"command:{name}", train_command, name, command, pool.timeout, *args[1:], env=entry.env,
                    **kwargs)
        return
    pool.submit(key, entry.process_key, fn, *args, env=entry.env, **kwargs)


def run_all(names: list[str], spec: Spec, params: Params, threshold: float, checkpoints: list[int],
            jobs: int | None = None, timeout: float | None = None,
            references: References | None = None, progress=None, env: dict[str, str] | None = None,
            meanwhile=None, strict: bool = False) -> tuple[list[RunResult], dict]:
    """Train every implementation in worker processes (at most `jobs` at a time, each limited to `timeout`
    seconds) and judge each run here; results in the order of `names`, whatever the order of completion. Also
    returns what the workers cost: {"jobs", "workers", "peak_rss_mb" (each worker's peak, summed),
    "parent_peak_rss_mb" (this process's)}.

    The NumPy reference runs in the NumPy worker too, as soon as a worker announces the conventions of the
    implementation it has loaded, so that it is computed while the frameworks train and ends with the workers on
    an interrupt (this process runs no thread). `meanwhile()` runs here once the tasks are handed out (say,
    importing matplotlib for the plots); `progress(label, done)` is told of each finished implementation; `env`
    is added to every worker's environment; `strict` judges a declared known difference as a failure."""
    check_params(params, spec)
    refs = references or References(spec, params, checkpoints)
    ref_group = registry.get_entry("numpy")
    runs: dict[str, ImplRun] = {}
    for n in names:
        reason = unavailable(n)
        if reason is not None:
            runs[n] = ImplRun(n, error=reason)
    results: dict[str, RunResult] = {n: judge_run(r, refs, threshold, strict) for n, r in runs.items()}
    waiting: dict[Conventions, list[ImplRun]] = {}  # runs whose reference is still being computed
    with Pool(jobs, timeout, env) as pool:
        for n in names:
            if n not in runs:
                submit(pool, n, n, train_impl, n, spec, params, checkpoints, cost=expected_seconds(n, spec))
        if meanwhile is not None:
            pool.start()
            meanwhile()

        def judged(run: ImplRun):
            results[run.name] = judge_run(run, refs, threshold, strict)
            if progress:
                progress(f"{run.name} done", len(results))

        busy: dict[int, float] = {}  # worker pid -> seconds spent on its tasks (its framework's import included)
        for out in pool.results():
            if not out.note and out.pid is not None:
                busy[out.pid] = busy.get(out.pid, 0.0) + out.seconds
            if isinstance(out.key, Conventions):  # a reference run (or the reason it has none: computed here)
                if out.error is None:
                    refs.put(out.key, *out.value)
                for run in waiting.pop(out.key, []):
                    judged(run)
            elif out.note:
                conv = refs.key(Conventions(**out.value["conventions"]))
                if conv not in waiting and not refs.has(conv):
                    waiting[conv] = []
                    pool.submit(conv, ref_group.process_key, reference_run, spec, params, conv.to_dict(),
                                checkpoints, env=ref_group.env)
            else:
                run = out.value if out.error is None else ImplRun(out.key, error=out.error)
                conv = None if run.conventions is None else refs.key(Conventions(**run.conventions))
                if conv in waiting:
                    waiting[conv].append(run)
                else:
                    judged(run)
        cost = {"jobs": pool.jobs, "workers": len(pool.started),
                "peak_rss_mb": round(sum(pool.peak_rss_mb.values()), 1) if pool.peak_rss_mb else None,
                "parent_peak_rss_mb": rss_mb(),
                # the slowest worker's own work, import and training: what no scheduling of this run can beat
                "critical_path_s": round(max(busy.values()), 3) if busy else None}
    return [results[n] for n in names], cost
