"""Scripts: what to ask of a model (a spec, initial weights, the calls to make), running one on a model, and the
scripts the checks share, each run once per implementation however many checks read it."""
from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np

from xor_rosetta.data import xor_data
from xor_rosetta.errors import Unsupported
from xor_rosetta.interface import History
from xor_rosetta.params import Params, init_params, shapes
from xor_rosetta.presets import get_preset
from xor_rosetta.reference import activate
from xor_rosetta.spec import Optimizer, Spec

if TYPE_CHECKING:
    from xor_rosetta.checks.battery import Battery


EXTRA_INPUTS = np.random.default_rng(2024).uniform(-1.0, 2.0, (12, 2))  # (12, 2): forward off the four XOR rows


PROBE_SEED = 12  # the probe's initial weights and biases: uniform(-1, 1), nothing zero, nothing symmetric


@dataclass(eq=False)
class Script:
    """What to ask of a model: params(), forward, loss and gradients at the initial weights (`probe`), then
    train() calls of `calls` steps each, recording the params after the updates named in `checkpoints`."""
    key: str
    spec: Spec
    params: Params
    probe: bool = True
    calls: tuple[int, ...] = ()
    checkpoints: tuple[int, ...] = ()

    @property
    def steps(self) -> int:
        return sum(self.calls)

    def upto(self, step: int) -> "Script":
        """The same script stopped after `step` updates (the diagnosis reruns only as far as it needs)."""
        if step >= self.steps:
            return self
        calls, left = [], step
        for n in self.calls:
            if left <= 0:
                break
            calls.append(min(n, left))
            left -= n
        return dataclasses.replace(self, calls=tuple(calls), checkpoints=tuple(k for k in self.checkpoints if k <= step))


@dataclass
class Record:
    """What a model answered to a script; arrays as float64."""
    params0: Params | None = None
    outputs: np.ndarray | None = None  # (4 + len(EXTRA_INPUTS), 1): the XOR rows, then EXTRA_INPUTS
    loss0: float | None = None
    grads: Params | None = None
    loss: np.ndarray = field(default_factory=lambda: np.empty(0))  # (steps,) each step's loss, before its update
    checkpoints: dict[int, Params] = field(default_factory=dict)  # update count -> params
    final_loss: float | None = None
    final_outputs: np.ndarray | None = None  # (4, 1) after the last train() call
    error: str | None = None  # what raised, and where
    declined: str | None = None  # the constructor raised xor_rosetta.errors.Unsupported: its reason
    seconds: float = 0.0

    def history(self) -> History:
        return History(self.loss, self.checkpoints)


def cut(rec: Record, steps: int) -> Record:
    """`rec` stopped after `steps` updates (its losses and checkpoints up to there)."""
    if rec.error is not None or len(rec.loss) <= steps:
        return rec
    return dataclasses.replace(rec, loss=rec.loss[:steps], checkpoints={k: v for k, v in rec.checkpoints.items()
                                                                        if k <= steps})


def _as_array(v, where: str) -> np.ndarray:
    """A copy of `v` as float64, which must be real floating point: a complex or integer answer is an error, not
    a number to round (the imaginary part would be dropped), and a live buffer cannot change what was recorded."""
    a = np.array(v, copy=True)
    if a.dtype.kind != "f":
        raise TypeError(f"{where} returned {a.dtype} values; real floating point expected")
    return a.astype(np.float64)


def _as_params(got, where: str) -> Params:
    try:
        pairs = [(W, b) for W, b in got]
    except (TypeError, ValueError) as e:
        raise TypeError(f"{where} must return [(W0, b0), (W1, b1), ...], got {type(got).__name__} ({e})") from None
    return [(_as_array(W, where), _as_array(b, where)) for W, b in pairs]


def _as_float(v, where: str) -> float:
    a = np.asarray(v)
    if a.size == 1 and a.dtype.kind not in "fiu":
        raise TypeError(f"{where} returned {a.dtype} values; one real number expected")
    try:
        return float(np.asarray(v, dtype=np.float64).reshape(()))
    except (TypeError, ValueError):
        raise TypeError(f"{where} must return one number, got {np.shape(v)}") from None


def run_script(factory, script: Script) -> Record:
    """Run `script` on a fresh model from `factory`; an exception (sys.exit included) ends the record with its
    message. The model gets its own copies of the spec and the data, so that nothing it writes there can change
    what the reference is given; what it returns is copied, and must be real floating point."""
    rec, spec = Record(), script.spec
    x0, y0 = xor_data(spec.dtype)
    x, y = (lambda: x0.copy()), (lambda: y0.copy())  # a fresh copy for every call
    start, phase = time.perf_counter(), "construction"
    try:
        with np.errstate(all="ignore"):
            model = factory(copy.deepcopy(spec), [(W.copy(), b.copy()) for W, b in script.params])
            if script.probe:
                phase = "params()"
                rec.params0 = _as_params(model.params(), "params()")
                phase = "forward()"
                rec.outputs = _as_array(model.forward(np.vstack([x0, EXTRA_INPUTS.astype(spec.dtype)])), "forward()")
                phase = "loss()"
                rec.loss0 = _as_float(model.loss(x(), y()), "loss()")
                phase = "gradients()"
                rec.grads = _as_params(model.gradients(x(), y()), "gradients()")
            done, losses = 0, []
            for n in script.calls:
                phase = f"train(steps={n}) after {done} steps"
                want = [k - done for k in script.checkpoints if done < k <= done + n]
                h = model.train(x(), y(), steps=n, checkpoints=want)
                loss = _as_array(h.loss, "History.loss").reshape(-1)
                if loss.shape != (n,):
                    raise ValueError(f"History.loss has {loss.size} values for {n} steps")
                losses.append(loss)
                for k in want:
                    if k not in h.checkpoints:
                        raise ValueError(f"History.checkpoints lacks checkpoint {k} of the call")
                    rec.checkpoints[done + k] = _as_params(h.checkpoints[k], f"History.checkpoints[{k}]")
                done += n
            if script.calls:
                rec.loss = np.concatenate(losses)
                phase = "loss() after training"
                rec.final_loss = _as_float(model.loss(x(), y()), "loss()")
                rec.final_outputs = _as_array(model.forward(x()), "forward()")
    except Unsupported as e:  # the constructor declines the spec: not a failure (a method raising it is one)
        if phase != "construction":
            rec.error = f"{phase} raised Unsupported: {e}"
        else:
            rec.declined = str(e).splitlines()[0] if str(e) else "declined, without a reason"
    except SystemExit as e:  # sys.exit in the implementation: a failure of the script, never the end of verify
        if getattr(e, "signal", None) is not None:
            raise  # SIGTERM to the command (the command line marks its exit): it ends verify, as it must
        rec.error = f"{phase} called sys.exit({e.code!r})"
    except Exception as e:  # the implementation under test may raise anything; it is reported, never re-raised
        text = str(e).splitlines()[0] if str(e) else ""
        rec.error = f"{phase} raised {type(e).__name__}: {text}".rstrip(": ")
    rec.seconds = time.perf_counter() - start
    return rec


def dense(n: int, upto: int = 10) -> tuple[int, ...]:
    """Checkpoints after every update up to `upto`, then 100, 1,000, 10,000 ... up to n."""
    ks = set(range(1, min(n, upto) + 1)) | {10 ** i for i in range(2, 9) if 10 ** i <= n} | {n}
    return tuple(sorted(ks))


def probe_params(spec: Spec, seed: int = PROBE_SEED) -> Params:
    rng = np.random.default_rng(seed)
    return [(rng.uniform(-1, 1, w), rng.uniform(-1, 1, b)) for w, b in shapes(spec)]


N_NET, K_NET = get_preset("seed-numpy"), get_preset("seed-keras")  # the small checks run on the presets' networks


def _probe_n(b: Battery) -> Script:
    """seed-numpy's network (2-5-1, tanh then linear, MSE, SGD) from the probe's weights; one update."""
    spec = b.adapt(N_NET.replace(steps=10))
    return Script("probe-n", spec, probe_params(spec), True, (1,), (1,))


def _probe_k(b: Battery) -> Script:
    """seed-keras' network (2-5-5-1: its square hidden layer shows a transposition; relu, relu, sigmoid, BCE,
    Adam at lr 1e-3) from the probe's weights; three updates."""
    spec = b.adapt(K_NET.replace(steps=10))
    return Script("probe-k", spec, probe_params(spec, PROBE_SEED + 1), True, (3,), (1, 2, 3))


def _adam_split(b: Battery) -> Script:
    return dataclasses.replace(b.script("probe-k"), key="adam-split", calls=(1, 2))


def _bce(b: Battery) -> Script:
    """seed-keras' network with row 0 far on the wrong side (z = 30 where y = 0), the others moderate: there
    p(1 - p) < 1e-12, so torch's clamp of it (the "probs" form) and BCE from the logits give gradients ~10x apart,
    far beyond rounding."""
    spec = b.adapt(K_NET.replace(steps=10))
    params = probe_params(spec, PROBE_SEED + 2)
    h, _ = xor_data()
    for (W, bias), act in zip(params[:-1], spec.activations[:-1]):
        h = activate(act, h @ W + bias)  # (4, fan_out)
    H = np.hstack([h, np.ones((4, 1))])  # (4, fan_in + 1): the output layer's inputs, and 1 for its bias
    wb = np.linalg.lstsq(H, np.array([30.0, 2.0, -1.5, -2.5]), rcond=None)[0]  # z for the rows (y = 0, 1, 1, 0)
    params[-1] = (wb[:-1].reshape(-1, 1), wb[-1:])
    return Script("bce", spec, params, True, (1,), (1,))


def _momentum(b: Battery) -> Script:
    """seed-numpy's network with SGD momentum 0.9 at lr 0.05 (lr != 1 - momentum, so a dampened velocity shows)
    on batches of 3 rows, where supported; 8 updates."""
    batch = next((n for n in (3, 1, 2) if n in b.subject.supports["batch_sizes"]), None)
    spec = b.adapt(N_NET.replace(steps=10, optimizer=Optimizer("sgd", lr=0.05, momentum=0.9), batch_size=batch))
    return Script("momentum", spec, probe_params(spec, PROBE_SEED + 3), False, (8,), tuple(range(1, 9)))


def _momentum_again(b: Battery) -> Script:
    return dataclasses.replace(b.script("momentum"), key="momentum-again")


def _momentum_split(b: Battery) -> Script:
    return dataclasses.replace(b.script("momentum"), key="momentum-split", calls=(3, 5))


def _preset(name: str):
    def build(b: Battery) -> Script:
        spec = get_preset(name).replace(dtype=b.dtype)
        steps = spec.steps if (b.level == "full" or spec.steps <= 1_000) else 1_000
        return Script(name, spec, init_params(spec), False, (steps,), dense(steps))
    return build


def _float32(b: Battery) -> Script:
    spec = b.script("probe-n").spec.replace(dtype="float32")
    return Script("float32", spec, probe_params(spec), True, (10,), dense(10))


ACT_SPECS = {  # every activation in a hidden layer, sigmoid and relu outputs (the probe's is linear), both losses
    "act-bce": dict(layers=(2, 4, 4, 4, 1), activations=("sigmoid", "relu", "linear", "sigmoid"), loss="bce",
                    optimizer=Optimizer("sgd", lr=0.5)),
    "act-mse": dict(layers=(2, 4, 4, 1), activations=("tanh", "sigmoid", "relu"), loss="mse",
                    optimizer=Optimizer("sgd", lr=0.1)),
}


def _acts(key: str):
    def build(b: Battery) -> Script:
        spec = Spec(**ACT_SPECS[key], steps=10, dtype=b.dtype)
        return Script(key, spec, probe_params(spec, 5), True, (10,), dense(10))
    return build


SCRIPTS: dict[str, Callable[[Battery], Script]] = {
    "probe-n": _probe_n, "probe-k": _probe_k, "adam-split": _adam_split, "bce": _bce, "momentum": _momentum,
    "momentum-again": _momentum_again, "momentum-split": _momentum_split, "seed-numpy": _preset("seed-numpy"),
    "seed-keras": _preset("seed-keras"), "float32": _float32, "act-bce": _acts("act-bce"), "act-mse": _acts("act-mse"),
}
