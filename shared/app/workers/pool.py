"""Worker processes: implementations run outside the command's own process, grouped, in parallel, and contained.

Why. Frameworks keep process-wide state that is read once (Keras' KERAS_BACKEND, JAX's x64 switch, Keras' dtype
policy, torch's dynamo config, TensorFlow's thread pools), a crash or a hang in one would take every other result
down with it, and one process trains one implementation at a time. So the command-line process imports no
framework: it hands each implementation to a worker and judges what comes back.

Grouping. Implementations whose registry entries share a `process` key (`xor_rosetta.registry.Entry.process`) run
in the same worker, one after the other: numpy; torch and torch-compiled; keras and keras-xla ("keras-tensorflow");
jax and jax-scan; keras-jax (KERAS_BACKEND=jax) alone; keras-torch (KERAS_BACKEND=torch) alone; a plug-in gets a
group of its own. The import of a framework is most of its cost (torch 1.4 s, TensorFlow 3.1 s
here), so one worker per framework pays it once for all its variants, and on this 2-core machine two busy workers
already fill the cores: more, smaller workers would import the same framework twice to compete for the same cores.
A group only gets a second worker when a free slot would otherwise stay idle while it still has more waiting tasks
than workers (a sweep submitting many small tasks). The group with the most expected work starts first (a task's
`cost`: compare estimates it from each implementation's measured speed, so keras-torch's eager fit() starts at
once instead of finishing alone at the end), then the group with the most waiting tasks.

Start method. A worker is a fresh interpreter (`python -P -m xor_rosetta.app.workers`), exec'd at once: the
"spawn" start method, never a fork of a process that may hold a framework's threads. Unlike multiprocessing's
spawn it gets its group's environment (KERAS_BACKEND=jax, OMP_NUM_THREADS, ...) before the interpreter starts, and
it does not re-import the parent's __main__. Where pipes cannot be inherited that way (Windows), multiprocessing's
"spawn" context starts it instead, and the environment is set first thing in the worker. On POSIX it runs in a
session of its own, so that killing it also ends the helpers a framework may have started (torch.compile's
compile workers). It watches its parent: if the parent vanishes (SIGKILL), the worker ends itself within half a
second.

Protocol. Two pipes (multiprocessing.connection, pickled messages). The parent sends the worker the parent's
sys.path, then tasks: (task id, pickled (function, args, kwargs, keep)); the function is named by its module and
qualified name, so only NumPy arrays and plain data travel, never a framework object. The worker answers
("start", id), optional ("note", id, value) from `note()`, then ("done", id, value, seconds, peak RSS) or
("fail", id, exception, traceback, seconds, peak RSS). With `keep`, the worker keeps the result and answers a
`Ref` instead, which later tasks may pass as an argument or call methods on (`Method`): that is how `RemoteMLP`
hosts an implementation's instance in a worker. A worker that dies (segfault, os._exit, kill) or runs past the
timeout is reported for the task it held: "worker died (signal 11)", "worker exited with status 3",
"timeout after N s"; the tasks it had not started go to a fresh worker.
"""
from __future__ import annotations

import itertools
import os
import pickle
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Iterator

from xor_rosetta.app.workers.serve import _spawned_main
from xor_rosetta.app.workers.wire import Ref, RemoteError, WorkerError, _exception, _loads, exit_reason

GRACE_S = 2.0  # how long a worker asked to stop may take before it is killed
# How workers start: "exec", a fresh interpreter with inherited pipes, in a session of its own (POSIX); or "spawn",
# multiprocessing's (elsewhere). XOR_ROSETTA_WORKER_START=spawn lets the tests try the second one here.
START = os.environ.get("XOR_ROSETTA_WORKER_START") or ("exec" if os.name == "posix" else "spawn")


# ---------------------------------------------------------------------------------------------- the parent side

class Worker:
    """One worker process for one group, running one task at a time."""

    _ids = itertools.count(1)

    def __init__(self, group: str, env: dict[str, str] | None = None):
        self.group, self.env = group, dict(env or {})
        self.own_session = START == "exec"
        if self.own_session:
            to_child_r, to_child_w = os.pipe()
            from_child_r, from_child_w = os.pipe()
            cmd = [sys.executable, "-P", "-m", "xor_rosetta.app.workers", str(to_child_r), str(from_child_w)]
            try:
                self.proc = subprocess.Popen(cmd, env={**os.environ, **self.env}, stdin=subprocess.DEVNULL,
                                             stdout=2, pass_fds=(to_child_r, from_child_w), start_new_session=True)
            finally:
                os.close(to_child_r)
                os.close(from_child_w)
            self.send_conn = Connection(to_child_w, readable=False)
            self.recv_conn = Connection(from_child_r, writable=False)
        else:
            self.proc, self.send_conn, self.recv_conn = _Spawned.start(self.env)
        self.pid = self.proc.pid
        self.send_conn.send(("path", list(sys.path)))
        self.task: int | None = None  # id of the task it holds
        self.started_at = 0.0  # when it was handed that task
        self.timeout: float | None = None
        self.peak_rss_mb: float | None = None
        self.ready = False  # has started the task it holds
        self.closed = False
        self.garbage: list[int] = []  # kept objects to drop, sent with the next task
        self.last_seconds = 0.0  # how long the last call() ran in the worker (transfers not included)

    def forget(self, ref: Ref) -> None:
        """Drop a kept object (at the next task: this may be called from a finalizer, mid-call)."""
        self.garbage.append(ref.id)

    # --- sending and receiving
    def dispatch(self, fn, args=(), kwargs=None, keep: bool = False, timeout: float | None = None) -> int:
        task = next(self._ids)
        if self.garbage:
            self.garbage, ids = [], self.garbage
            try:
                self.send_conn.send(("forget", ids))
            except OSError:
                pass
        payload = pickle.dumps((fn, tuple(args), dict(kwargs or {}), keep), protocol=pickle.HIGHEST_PROTOCOL)
        self.task, self.started_at, self.timeout, self.ready = task, time.monotonic(), timeout, False
        try:
            self.send_conn.send((task, payload))
        except OSError:
            pass  # it died already: the reader finds out
        return task

    def receive(self):
        """The next message, or ("dead", task, reason) when the worker is gone; a "fail" carries the exception."""
        try:
            blob = self.recv_conn.recv_bytes()
        except (EOFError, OSError):
            return ("dead", self.task, self._reap())
        try:
            msg = _loads(blob)
        except pickle.UnpicklingError as e:  # it sent a framework's object: refused, the task failed
            msg = ("fail", self.task, e, "", time.monotonic() - self.started_at, None)
        else:
            if msg[0] == "fail":
                msg = (*msg[:2], _exception(msg[2], msg[3]), *msg[3:])
        if msg[0] in ("done", "fail"):
            self.task = None
            if msg[-1] is not None:
                self.peak_rss_mb = msg[-1]
        elif msg[0] == "start":
            self.ready = True
        return msg

    def overdue(self) -> bool:
        return self.task is not None and self.timeout is not None and \
            time.monotonic() - self.started_at > self.timeout

    def call(self, fn, *args, keep: bool = False, timeout: float | None = None, **kwargs):
        """Run fn(*args, **kwargs) in this worker and return its value (or a Ref with keep=True); re-raises what
        the task raised, and WorkerError if the worker died or ran past `timeout` (it is then killed)."""
        if self.closed:
            raise WorkerError(f"the worker for {self.group} was closed")
        task = self.dispatch(fn, args, kwargs, keep, timeout)
        while True:
            if not wait([self.recv_conn], timeout=_tick(self)):
                if self.overdue():
                    self.kill()
                    raise WorkerError(f"timeout after {timeout:g} s")
                if self.exited() and not self.recv_conn.poll():
                    raise WorkerError(self._reap())
                continue
            msg = self.receive()
            if msg[0] == "dead":
                raise WorkerError(msg[2])
            if msg[1] != task or msg[0] in ("start", "note"):
                continue
            self.last_seconds = msg[-2]
            if msg[0] == "done":
                return msg[2]
            raise msg[2]

    # --- ending
    def exited(self) -> bool:
        """Whether the process has ended, without reaping it: until it is reaped its pid (and so its process
        group's id) cannot be reused, which keeps killing its group safe."""
        if self.proc.returncode is not None:
            return True
        if not self.own_session:
            return self.proc.poll() is not None
        try:
            return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True

    def _reap(self) -> str:
        """It died (its pipe closed): end what it started, collect its status, and say how it ended."""
        if self.exited():
            self._kill_group()
        try:
            code = self.proc.wait(timeout=GRACE_S)
        except subprocess.TimeoutExpired:  # the pipe closed but the process lives on: end it
            self._kill_group()
            code = self.proc.wait()
        self.closed = True
        self._close_pipes()
        return exit_reason(code)

    def _kill_group(self) -> None:
        if self.proc.returncode is not None:
            return  # reaped: its pid may belong to someone else by now
        try:
            if self.own_session:
                os.killpg(self.pid, signal.SIGKILL)  # a session of its own: helpers it started go too
            else:
                self.proc.kill()
        except (ProcessLookupError, PermissionError):
            pass

    def kill(self) -> None:
        """End the worker and everything it started, now."""
        self.closed = True
        self._kill_group()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self._close_pipes()

    def close(self) -> None:
        """Ask the worker to finish (it is idle), then make sure it has."""
        finish([self])

    def _close_pipes(self) -> None:
        for c in (self.send_conn, self.recv_conn):
            try:
                c.close()
            except OSError:
                pass


def finish(workers: list[Worker]) -> None:
    """Ask idle workers to finish, all at once, give them GRACE_S together, then kill what is left."""
    for w in workers:
        if not w.closed and not w.exited():
            try:
                w.send_conn.send(None)
            except OSError:
                pass
    deadline = time.monotonic() + GRACE_S
    for w in workers:
        try:
            w.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        w.kill()


class _Spawned:
    """A worker started by multiprocessing's "spawn" (where there is no fork/exec with inherited pipes: Windows),
    with the little of subprocess.Popen's interface that Worker uses. Its group's environment is set first thing
    in the new interpreter, before anything imports a framework (NumPy is loaded by then)."""

    def __init__(self, process):
        self.process, self.pid, self.returncode = process, process.pid, None

    @staticmethod
    def start(env: dict[str, str]):
        import multiprocessing as mp
        ctx = mp.get_context("spawn")
        child_in, parent_out = ctx.Pipe(duplex=False)
        parent_in, child_out = ctx.Pipe(duplex=False)
        process = ctx.Process(target=_spawned_main, args=(child_in, child_out, env), daemon=True,
                              name="xor-rosetta-worker")
        process.start()
        child_in.close()
        child_out.close()
        return _Spawned(process), parent_out, parent_in

    def poll(self):
        if self.returncode is None and self.process.exitcode is not None:
            self.returncode = self.process.exitcode
        return self.returncode

    def wait(self, timeout=None):
        self.process.join(timeout)
        if self.poll() is None:
            raise subprocess.TimeoutExpired("worker", timeout)
        return self.returncode

    def kill(self):
        self.process.kill()


def _tick(worker: Worker) -> float:
    if worker.timeout is None or worker.task is None:
        return 0.25
    return max(0.0, min(0.25, worker.started_at + worker.timeout - time.monotonic()))


# ------------------------------------------------------------------------------------------ command-line options

def add_options(sp, jobs: bool = True) -> None:
    """--jobs and --timeout, for the commands that run implementations in workers."""
    if jobs:
        sp.add_argument("--jobs", type=_positive(int), metavar="N", help="worker processes at a time (default: the "
                        f"number of CPUs, {os.cpu_count()} here); results are bit-identical for every N")
    sp.add_argument("--timeout", type=_positive(float), metavar="SECONDS", help="stop an implementation that runs "
                    "longer than this, its worker's start and its framework's import included, and report it as "
                    "'timeout after N s' (default: no limit)")


def _positive(kind):
    def parse(text: str):
        import argparse
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {kind.__name__} value: {text!r}") from None
        if not value > 0 or value != value or value == float("inf"):
            raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
        return value
    parse.__name__ = kind.__name__
    return parse


# ----------------------------------------------------------------------------------------------------- the pool

@dataclass
class Outcome:
    """What became of one submitted task: its value, or the one-line reason it has none; or an interim note."""
    key: Any
    value: Any = None
    error: str | None = None  # "worker died (signal 11)", "worker exited with status 3", "timeout after N s",
    #                           or "failed: <exception>: <message>" when the task itself raised
    exception: BaseException | None = None  # what the task raised, if it did
    note: bool = False  # an interim value from `note()`; the task goes on
    seconds: float = 0.0  # wall time in the worker (for errors: since it was handed to the worker)
    pid: int | None = None  # the worker that ran it


@dataclass
class _Task:
    key: Any
    group: str
    fn: Callable
    args: tuple
    kwargs: dict
    cost: float = 0.0  # the submitter's estimate of its seconds, for the order in which groups start
    id: int | None = None


@dataclass
class _Group:
    env: dict[str, str]
    pending: deque = field(default_factory=deque)
    workers: list = field(default_factory=list)
    order: int = 0


class Pool:
    """Runs tasks in worker processes, a group's tasks in a worker of that group, at most `jobs` workers at a time.

        with Pool(jobs=2, timeout=60) as pool:
            pool.submit("torch", "torch", train_impl, "torch", spec, params, ks)
            for out in pool.results():  # as they complete; submit() more from here if you like
                ...

    A sweep submits many small tasks, each (implementation, spec, params) -> a summary, and streams the outcomes;
    `xor_rosetta.app.run.runner.submit` picks the group and environment from the implementation's registry entry:

        with Pool(jobs, timeout) as pool:
            for i, (name, spec, params) in enumerate(cases):
                runner.submit(pool, i, name, summarize, name, spec, params)  # summarize: a module-level function
            for out in pool.results():
                show(out.key, out.value if out.error is None else out.error)

    A group with more waiting tasks than workers gets another worker when a slot is free.

    Results do not depend on `jobs` or on the order of completion: every task runs alone in its worker, from the
    arguments it was given. Leaving the `with` block (normally, by an exception, by Ctrl-C) ends every worker.
    `timeout` limits each task, from the moment a worker is handed it (a worker's first task includes the
    worker's start and its framework's import). `recycle_mb` replaces a worker whose peak memory has passed it by
    the end of a task (the next task of its group starts a fresh one): a sweep runs thousands of models per
    worker. `env` is added to every worker's environment (OMP_NUM_THREADS, TORCHINDUCTOR_CACHE_DIR, ...), under
    each group's own.
    """

    def __init__(self, jobs: int | None = None, timeout: float | None = None, env: dict[str, str] | None = None,
                 recycle_mb: float | None = None):
        self.jobs = max(1, jobs or os.cpu_count() or 1)
        self.timeout = timeout
        self.recycle_mb = recycle_mb  # a worker whose peak memory passed this by the end of a task is replaced
        self.recycled = 0  # workers replaced for that
        self.env = dict(env or {})  # for every worker, under each group's own
        self.groups: dict[str, _Group] = {}
        self.running: dict[int, tuple[Worker, _Task]] = {}  # task id -> (worker, task)
        self.idle: list[Worker] = []
        self.peak_rss_mb: dict[int, float] = {}  # worker pid -> its peak RSS
        self.started: list[int] = []  # pids of every worker started
        self._waiting = 0  # submitted, not yet finished
        self._announced = False
        self._local: deque = deque()  # tasks of "in-process:" groups, run in this process

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def submit(self, key, group: str, fn: Callable, *args, env: dict[str, str] | tuple = (), cost: float = 0.0,
               **kwargs) -> None:
        """Queue fn(*args, **kwargs) for a worker of `group`, whose environment is `env` (the same for every task
        of a group). `fn` must be importable by name (a module-level function); arguments must pickle. `cost`, an
        estimate of the task's seconds, only orders the start: the group with the most expected work first."""
        env = dict(env)
        if group.startswith("in-process:"):  # a class registered in this process only (a --cmd child): runs here
            self._local.append(_Task(key, group, fn, args, kwargs, cost))
            self._waiting += 1
            return
        g = self.groups.get(group)
        if g is None:
            g = self.groups[group] = _Group(env, order=len(self.groups))
        elif g.env != env:
            raise ValueError(f"group {group!r} was given two environments: {g.env} and {env}")
        g.pending.append(_Task(key, group, fn, args, kwargs, cost))
        self._waiting += 1

    def start(self) -> None:
        """Start workers for the tasks submitted so far now (results() does it too), to do other work meanwhile."""
        self._schedule()

    def results(self) -> Iterator[Outcome]:
        """Outcomes as tasks finish (and notes as tasks send them), until every submitted task has one."""
        while self._waiting:
            self._schedule()
            if self._local:  # the workers go on meanwhile
                yield self._run_here(self._local.popleft())
                continue
            ready = wait([w.recv_conn for w, _ in self.running.values()], timeout=self._tick())
            for conn in ready:
                worker, task = next((w, t) for w, t in self.running.values() if w.recv_conn is conn)
                yield from self._handle(worker, task, worker.receive())
            for worker, task in list(self.running.values()):  # deaths the pipe did not show, and timeouts
                if worker.overdue():
                    worker.kill()
                    yield self._finish(worker, task, Outcome(task.key, error=f"timeout after {self.timeout:g} s",
                                                             seconds=time.monotonic() - worker.started_at))
                elif worker.exited() and not worker.recv_conn.poll():
                    yield from self._handle(worker, task, ("dead", task.id, worker._reap()))

    def _run_here(self, task: _Task) -> Outcome:
        start = time.monotonic()
        self._waiting -= 1
        try:
            value = task.fn(*task.args, **task.kwargs)
        except Exception as e:  # noqa: BLE001 - reported like a worker's failure
            first = str(e).splitlines()[0] if str(e) else ""
            return Outcome(task.key, error=f"failed: {type(e).__name__}: {first}".rstrip(": "), exception=e,
                           seconds=time.monotonic() - start, pid=os.getpid())
        return Outcome(task.key, value, seconds=time.monotonic() - start, pid=os.getpid())

    def _handle(self, worker: Worker, task: _Task, msg) -> Iterator[Outcome]:
        kind = msg[0]
        if kind == "start" or msg[1] != task.id:
            return
        if kind == "note":
            yield Outcome(task.key, msg[2], note=True, pid=worker.pid)
        elif kind == "done":
            self._rss(worker)
            yield self._finish(worker, task, Outcome(task.key, msg[2], seconds=msg[3], pid=worker.pid))
        elif kind == "fail":
            self._rss(worker)
            exc = msg[2]
            first = str(exc).splitlines()[0] if str(exc) else ""
            name = exc.type_name if isinstance(exc, RemoteError) else type(exc).__name__
            msg_ = first.split(": ", 1)[1] if isinstance(exc, RemoteError) and ": " in first else first
            yield self._finish(worker, task, Outcome(task.key, error=f"failed: {name}: {msg_}".rstrip(": "),
                                                     exception=exc, seconds=msg[4], pid=worker.pid))
        elif kind == "dead":
            yield self._finish(worker, task, Outcome(task.key, error=msg[2], pid=worker.pid,
                                                     seconds=time.monotonic() - worker.started_at))

    def _rss(self, worker: Worker) -> None:
        if worker.peak_rss_mb is not None:
            self.peak_rss_mb[worker.pid] = worker.peak_rss_mb

    def _finish(self, worker: Worker, task: _Task, outcome: Outcome) -> Outcome:
        del self.running[task.id]
        self._waiting -= 1
        g = self.groups[task.group]
        if not worker.closed and self.recycle_mb is not None and (worker.peak_rss_mb or 0) > self.recycle_mb:
            worker.kill()  # a framework that keeps a little of every model it built (Keras on TensorFlow: ~7 MB a
            self.recycled += 1  # run) would grow without end over a sweep's thousands of runs; a fresh one does not
        if worker.closed:
            g.workers.remove(worker)
        elif g.pending:
            self._start(worker, g.pending.popleft())
        else:
            self.idle.append(worker)
        return outcome

    def _start(self, worker: Worker, task: _Task) -> None:
        task.id = worker.dispatch(task.fn, task.args, task.kwargs, timeout=self.timeout)
        self.running[task.id] = (worker, task)

    def _schedule(self) -> None:
        """Give free slots to the groups that wait: first those without a worker, the most expected work (the sum
        of their tasks' `cost`) first, then the most waiting tasks; then a second worker for a group that has more
        waiting tasks than workers. Longest first: a slow group started last would finish alone, one core idle."""
        while True:
            wanting = [(n, g) for n, g in self.groups.items() if g.pending]
            if not wanting:
                return
            for w in [w for w in self.idle if self.groups[w.group].pending]:  # idle worker of a waiting group
                self.idle.remove(w)
                self._start(w, self.groups[w.group].pending.popleft())
            wanting = [(n, g) for n, g in wanting if g.pending]
            fresh = sorted((x for x in wanting if not x[1].workers),
                           key=lambda x: (-sum(t.cost for t in x[1].pending), -len(x[1].pending), x[1].order))
            more = sorted((x for x in wanting if x[1].workers and len(x[1].pending) > len(x[1].workers)),
                          key=lambda x: (-len(x[1].pending) / len(x[1].workers), x[1].order))
            choice = (fresh or more or [None])[0]
            if choice is None:
                return
            if len(self.running) + len(self.idle) >= self.jobs:
                if not self.idle:
                    return
                victim = self.idle.pop(0)  # an idle worker of a group with nothing left to do makes room: killed,
                victim.kill()  # not asked to finish (a framework's interpreter takes ~1.3 s to exit, a slot idle)
                self.groups[victim.group].workers.remove(victim)
            name, g = choice
            worker = Worker(name, {**self.env, **g.env})
            self.started.append(worker.pid)
            g.workers.append(worker)
            self._start(worker, g.pending.popleft())

    def _tick(self) -> float:
        return min([_tick(w) for w, _ in self.running.values()], default=0.25)

    def pids(self) -> list[int]:
        return [w.pid for g in self.groups.values() for w in g.workers if not w.closed]

    def close(self) -> None:
        """End every worker now. All of them are killed, busy or idle: an idle one holds nothing (its results have
        come back), and asking it to finish would keep the command waiting ~1.3 s a framework for its interpreter
        to exit."""
        for g in self.groups.values():
            for w in g.workers:
                w.kill()
            g.workers.clear()
        self.running.clear()
        self.idle.clear()


# --------------------------------------------------------------------------- workers kept for a whole session

class Workers:
    """One long-lived worker per group, started on first use, restarted if it died; for RemoteMLP (the tests keep
    one for the whole session). Not thread-safe."""

    def __init__(self):
        self._by_group: dict[str, Worker] = {}

    def get(self, group: str, env: dict[str, str] | tuple = ()) -> Worker:
        w = self._by_group.get(group)
        if w is None or w.closed or w.exited():
            if w is not None:
                w.kill()
            w = self._by_group[group] = Worker(group, dict(env))
        return w

    def pids(self) -> list[int]:
        return [w.pid for w in self._by_group.values() if not w.closed]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is not None:
            for w in self._by_group.values():
                w.kill()
        self.close()

    def close(self) -> None:
        """Ask every worker to finish, all at once, then make sure they have."""
        finish(list(self._by_group.values()))
        self._by_group.clear()


_session: Workers | None = None


def session() -> Workers:
    """The process-wide set of long-lived workers (closed at exit, or by close_session)."""
    global _session
    if _session is None:
        import atexit
        _session = Workers()
        atexit.register(close_session)
    return _session


def close_session() -> None:
    global _session
    if _session is not None:
        _session.close()
        _session = None


