"""A convergence study: every implementation trained from each of many initial-weight sets, each run judged.

The unit of work is a `Task`: some seeds, for the implementations of one worker group (`Entry.process`: torch and
torch-compiled share a worker, and a reference run) under one or more variants of the initial weights and Adam
epsilon. A task runs in a worker of its group (`run_task`, on the local pool or a Dask cluster) and yields plain
records, one per (seed, variant, implementation), which the engine (`xor_rosetta.app.sweep.engine`) streams to a
JSON-lines file as they come.

Each record holds what the run did (final loss, accuracy, steps to the threshold, the step where it diverged, if
it did), whether it converged (the project's definition: final loss < threshold and 4/4 correct; see
`xor_rosetta.app.run.runner`), and its end-of-run agreement with the NumPy reference in the implementation's own
conventions, judged by the tolerance policy (`xor_rosetta.app.run.runner.judge_run`).

Variants (`--native-defaults`; `xor_rosetta.implementations.native`): "canonical" (the spec's init and epsilon), "native"
(the framework's own init and epsilon), and one switched at a time, "native-init" and "native-eps", so that a
change in the convergence rate can be put down to the init or to epsilon. With SGD there is no epsilon: only
"canonical" and "native-init".

Batched paths (`BATCHED`) train many seeds at once with one computation; they are not registry implementations
but extra rows of the study, to be compared seed by seed with the one-at-a-time runs.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np

from xor_rosetta.data import xor_data
from xor_rosetta.spec import Spec

CANONICAL, NATIVE, NATIVE_INIT, NATIVE_EPS = "canonical", "native", "native-init", "native-eps"
VARIANTS = {  # name: (framework's own init?, framework's own epsilon?)
    CANONICAL: (False, False), NATIVE_INIT: (True, False), NATIVE_EPS: (False, True), NATIVE: (True, True)}
BATCHED = {  # name: (module of xor_rosetta.implementations.batched, registry entry whose worker group it joins, what it is)
    "numpy-batched": ("numpy", "numpy", "NumPy: K networks per operation, numpy's conventions"),
    "torch-vmap": ("torch", "torch", "torch.func.vmap of one network's gradient, torch.optim on the stack"),
    "jax-vmap": ("jax", "jax", "jax.vmap of one network's gradient, optax, the loop in one jitted scan"),
}


def batched_group(name: str) -> tuple[str, tuple]:
    """The worker group (and its environment) of a batched path: its framework's registry entry's, if registered."""
    from xor_rosetta import registry
    entry = registry.REGISTRY.get(BATCHED[name][1])
    return (entry.process_key, entry.env) if entry else (BATCHED[name][1], ())
BATCH_CHUNK = 2048  # networks per batched task: the arrays of a 2-5-1 batch stay in a core's cache


def variants_for(spec: Spec, native_defaults: bool) -> tuple[str, ...]:
    if not native_defaults:
        return (CANONICAL,)
    if spec.optimizer.name != "adam":  # epsilon is Adam's only
        return (CANONICAL, NATIVE_INIT)
    return (CANONICAL, NATIVE_INIT, NATIVE_EPS, NATIVE)


def parse_seeds(text: str) -> range:
    """'N' -> 0..N-1; 'A:B' -> A..B-1."""
    from xor_rosetta.errors import XorRosettaError
    try:
        if ":" in text:
            a, b = (int(t) for t in text.split(":"))
        else:
            a, b = 0, int(text)
    except ValueError:
        raise XorRosettaError(f"--seeds takes N or A:B (integers), got {text!r}") from None
    if a < 0 or b <= a:
        raise XorRosettaError(f"--seeds {text!r} names no seeds: need 0 <= A < B")
    from xor_rosetta.spec import MAX_SEED
    if b - 1 > MAX_SEED:
        raise XorRosettaError(f"--seeds {text!r} goes up to seed {b - 1:,}; init seeds are at most {MAX_SEED:,} "
                              f"(2**32 - 1, NumPy's seed range)")
    return range(a, b)


RUN_BYTES = 4096  # memory a run takes in the sweep's process: its record in Store.done, its share of the plan and its
# place in the report's list (measured: 2.5 KB a run with tracemalloc, 20,000 records; rounded up for the report)


def check_memory(runs: int, seeds: str) -> None:
    """A one-line error, before anything is planned, when a sweep's records would not fit in the memory available."""
    from xor_rosetta.app.common.resources import _size, available_memory
    from xor_rosetta.errors import XorRosettaError
    need, have = runs * RUN_BYTES, available_memory()  # the frameworks load in the workers, not in this process
    if have is not None and need > have:
        raise XorRosettaError(f"--seeds {seeds}: {runs:,} runs would hold about {_size(need)} of memory for their "
                              f"records (~{RUN_BYTES:,} bytes each), but {_size(have)} is available; sweep fewer "
                              f"seeds at a time (--seeds A:B)")


def key(record: dict) -> tuple:
    return record["seed"], record["variant"], record["impl"]


@dataclass(frozen=True)
class Task:
    group: str  # worker group (registry Entry.process_key, or the batched path's framework)
    env: tuple  # that group's environment
    impls: tuple[str, ...]
    seeds: tuple[int, ...]
    variants: tuple[str, ...]
    batched: bool = False
    skip: frozenset = frozenset()  # (seed, variant, impl) done already

    def keys(self) -> list[tuple]:
        """Every run of the task, in the order the worker runs them."""
        return [(s, v, n) for s in self.seeds for v in self.variants for n in self.impls if (s, v, n) not in self.skip]


def plan_tasks(impls, seeds, variants, jobs: int, done: set = frozenset(), one_seed: bool = False) -> list[Task]:
    """Tasks for every (seed, variant, implementation) not yet `done`, grouped by worker group; chunks sized so
    that every worker gets several (`one_seed`: one seed per task of one-at-a-time runs, for --timeout)."""
    from xor_rosetta import registry
    groups: dict[str, list[str]] = {}
    envs, batched = {}, {}
    for n in impls:
        if n in BATCHED:
            g, envs[g] = batched_group(n)
            batched.setdefault(g, []).append(n)
            continue
        entry = registry.get_entry(n)
        groups.setdefault(entry.process_key, []).append(n)
        envs[entry.process_key] = entry.env
    tasks = []
    for table, is_batched in ((groups, False), (batched, True)):
        for g, names in table.items():
            todo = [s for s in seeds if any((s, v, n) not in done for v in variants for n in names)]
            if not todo:
                continue
            if is_batched:
                size = min(BATCH_CHUNK, math.ceil(len(todo) / jobs))
            else:
                size = 1 if one_seed else max(1, min(50, math.ceil(len(todo) / (4 * jobs))))
            for i in range(0, len(todo), size):
                chunk = tuple(todo[i:i + size])
                skip = frozenset(k for k in ((s, v, n) for s in chunk for v in variants for n in names) if k in done)
                tasks.append(Task(g, envs[g], tuple(names), chunk, tuple(variants), is_batched, skip))
    return tasks


# ----------------------------------------------------------------------------------------- in a worker process

def run_task(task: Task, spec_dict: dict, threshold: float) -> list[dict]:
    """Run a task; returns its messages (also sent one by one with `workers.note` when in a pool worker):
    {"kind": "run", ...} per (seed, variant, implementation), {"kind": "init", ...} per native draw."""
    spec = Spec.from_dict(spec_dict)
    fn = _run_batched if task.batched else _run_one_at_a_time
    return list(fn(task, spec, threshold))


def _emit(msg: dict) -> dict:
    from xor_rosetta.app.workers import serve as workers
    workers.note(msg)
    return msg


def _seeded(spec: Spec, seed: int) -> Spec:
    return spec.replace(init=replace(spec.init, seed=seed))


def _run_one_at_a_time(task: Task, spec: Spec, threshold: float):
    from xor_rosetta import registry
    from xor_rosetta.params import init_params
    from xor_rosetta.implementations import native
    from xor_rosetta.app.run.runner import References, checkpoints_for, judge_run, train_impl
    classes, missing = {}, {}
    for n in task.impls:
        try:
            classes[n] = registry.load(n)
        except registry.UnavailableError as e:  # installed (checked before the sweep) but it does not load here
            missing[n] = "could not load: " + str(e).split(" is unavailable: ", 1)[-1]
    families = {n: native.family(c) for n, c in classes.items()}
    ks = checkpoints_for(spec.steps)
    for seed in task.seeds:
        canonical = _seeded(spec, seed)
        drawn = {}  # family -> native initial weights, drawn once per seed for every implementation of the family
        for variant in task.variants:
            own_init, own_eps = VARIANTS[variant]
            refs = {}  # (epsilon, init) -> References: one reference run per conventions, shared
            for n in task.impls:
                if (seed, variant, n) in task.skip:
                    continue
                rec = {"kind": "run", "seed": seed, "variant": variant, "impl": n}
                fam = families.get(n)
                if n in missing:
                    yield _emit({**rec, **_failed(missing[n])})
                    continue
                if variant != CANONICAL and fam is None:
                    yield _emit({**rec, **_failed(None), "skipped": "no framework defaults of its own"})
                    continue
                run_spec, init = canonical, f"{spec.init.scheme} seed {seed}"
                if own_eps:
                    run_spec = canonical.replace(optimizer=replace(spec.optimizer, epsilon=native.EPSILON[fam]))
                if own_init:
                    if fam not in drawn:
                        drawn[fam] = native.draw(fam, spec, seed)
                        yield _emit({"kind": "init", "group": task.group, "family": fam, "seed": seed,
                                     "params": [[W.tolist(), b.tolist()] for W, b in drawn[fam]]})
                    params, init = drawn[fam], f"{fam} default seed {seed}"
                else:
                    params = init_params(canonical)
                ref_key = (run_spec.optimizer.epsilon, fam if own_init else None)
                if ref_key not in refs:
                    refs[ref_key] = References(run_spec, params, ks)
                start = time.perf_counter()
                run = train_impl(n, run_spec, params, ks, grid=False)
                seconds = time.perf_counter() - start
                res = judge_run(run, refs[ref_key], threshold)
                yield _emit({**rec, **_summary(res, threshold), "conventions": run.conventions,
                             "epsilon": run_spec.optimizer.epsilon
                             if spec.optimizer.name == "adam" else None, "init": init, "seconds": round(seconds, 4)})


def _failed(error: str | None) -> dict:
    return {"final_loss": None, "accuracy": None, "steps_to_threshold": None, "diverged_at": None,
            "converged": None, "agreement": None, "status": None, "explanation": None, "error": error}


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _summary(res, threshold: float) -> dict:
    """The record of one judged run (xor_rosetta.app.run.runner.RunResult)."""
    if res.error is not None:
        return _failed(res.error)
    j = res.judgement  # None for a run non-finite from its first step: nothing was judged (as in _run_batched)
    converged = res.diverged_at is None and res.final_loss < threshold and res.accuracy == 1.0
    return {"final_loss": _finite(res.final_loss), "accuracy": res.accuracy,
            "steps_to_threshold": res.steps_to_threshold, "diverged_at": res.diverged_at, "converged": bool(converged),
            "agreement": None if j is None else j.verdict, "status": None if j is None else j.status,
            "explanation": None if j is None else j.explanation, "error": None}


def _run_batched(task: Task, spec: Spec, threshold: float):
    """Each batched path trains the task's seeds in one computation per variant; torch-vmap and jax-vmap are then
    judged network by network against the batched NumPy reference in their conventions (end of run: the params at
    each checkpoint and the gradients at the initial weights), with the rounding floor measured one at a time, by the
    reference, when a difference is over its tolerance. numpy-batched is the batched reference itself: not judged."""
    import importlib
    from xor_rosetta import registry
    from xor_rosetta.params import init_params
    from xor_rosetta.implementations import native
    from xor_rosetta.implementations.batched import numpy as vectorised
    from xor_rosetta.app.run.runner import checkpoints_for
    ks = checkpoints_for(spec.steps)
    for n in task.impls:
        try:
            module = importlib.import_module(f"xor_rosetta.implementations.batched.{BATCHED[n][0]}")
            conv = registry.load("numpy").conventions if n == "numpy-batched" else module.CONVENTIONS
        except (ImportError, registry.UnavailableError) as e:
            for seed in task.seeds:
                for variant in task.variants:
                    yield _emit({"kind": "run", "seed": seed, "variant": variant, "impl": n, **_failed(
                        f"could not load: {e}")})
            continue
        fam = {"torch": "torch", "jax": "flax"}.get(BATCHED[n][0])
        for variant in task.variants:
            own_init, own_eps = VARIANTS[variant]
            if variant != CANONICAL and fam is None:
                for seed in task.seeds:
                    yield _emit({"kind": "run", "seed": seed, "variant": variant, "impl": n, **_failed(None),
                                 "skipped": "no framework defaults of its own"})
                continue
            run_spec = spec.replace(optimizer=replace(spec.optimizer, epsilon=native.EPSILON[fam])) if own_eps else spec
            params = []
            for seed in task.seeds:
                if own_init:
                    params.append(native.draw(fam, spec, seed))
                    yield _emit({"kind": "init", "group": task.group, "family": fam, "seed": seed,
                                 "params": [[W.tolist(), b.tolist()] for W, b in params[-1]]})
                else:
                    params.append(init_params(_seeded(spec, seed)))
            start = time.perf_counter()
            arrays = vectorised.stack(params, spec.dtype)
            judged = n != "numpy-batched"
            batch = module.train(run_spec, conv, arrays, threshold, checkpoints=ks if judged else ())
            seconds = (time.perf_counter() - start) / len(task.seeds)
            verdicts = _judge_batch(run_spec, conv, module, arrays, batch, params, ks) if judged else None
            _, y = xor_data(spec.dtype)
            acc = batch.accuracy(y)
            for k, seed in enumerate(task.seeds):
                nf, fb, final = int(batch.first_nonfinite[k]), int(batch.first_below[k]), float(batch.final_loss[k])
                j = None if verdicts is None else verdicts[k]
                yield _emit({
                    "kind": "run", "seed": seed, "variant": variant, "impl": n, "final_loss": _finite(final),
                    "accuracy": float(acc[k]), "steps_to_threshold": fb + 1 if fb >= 0 else None,
                    "diverged_at": nf if nf >= 0 else None,
                    "converged": bool(nf < 0 and final < threshold and acc[k] == 1.0),
                    "agreement": None if j is None else j.verdict, "status": None if j is None else j.status,
                    "explanation": None if j is None else j.explanation, "error": None,
                    "conventions": conv.to_dict(),
                    "epsilon": run_spec.optimizer.epsilon if spec.optimizer.name == "adam" else None,
                    "init": f"{fam} default seed {seed}" if own_init else f"{spec.init.scheme} seed {seed}",
                    "seconds": round(seconds, 6)})


def _judge_batch(spec: Spec, conv, module, arrays, batch, params, ks):
    """Judgements of each network of `batch` against the batched NumPy reference (xor_rosetta.implementations.batched.numpy)."""
    from xor_rosetta.compare import judge
    from xor_rosetta.reference import Reference, rounding_floor
    from xor_rosetta.implementations.batched import numpy as vectorised
    ref = vectorised.train(spec, conv, arrays, checkpoints=ks)
    grads, ref_grads = module.gradients(spec, conv, arrays), vectorised.gradients(spec, conv, arrays)
    x, y = xor_data(spec.dtype)
    out = []
    for k, p in enumerate(params):
        stops = [int(a[k]) for a in (batch.first_nonfinite, ref.first_nonfinite) if a[k] >= 0]
        stop = min(stops) if stops else spec.steps  # judge only what both ran before either stopped being finite
        finite = [q for q in ks if q <= stop]

        def floor(p=p, finite=finite):
            with np.errstate(all="ignore"):
                exact = Reference(spec, p, conv).train(x, y, checkpoints=finite)
                return replace(rounding_floor(spec, p, conv, exact, finite, x, y), loss=np.empty(0))  # params only
        out.append(judge(spec.dtype, finite, vectorised.unstack(grads, k), vectorised.unstack(ref_grads, k),
                         np.empty(0), np.empty(0), {q: vectorised.unstack(batch.checkpoints[q], k) for q in finite},
                         {q: vectorised.unstack(ref.checkpoints[q], k) for q in finite}, floor=floor))
    return out


def params_from_message(msg: dict):
    return [(np.array(W, dtype=np.float64), np.array(b, dtype=np.float64)) for W, b in msg["params"]]
