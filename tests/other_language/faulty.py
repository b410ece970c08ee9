"""A protocol-2 child (docs/protocol.md) computing with the built-in NumPy MLP, with one fault switched on by its
arguments: `python faulty.py FAULT [ARG]`, for tests/test_protocol.py's cases of misbehaving children.

Faults: none; slow-train S (sleeps S s before answering every train); hang-once MARKER (hangs at its 4th request,
once: MARKER records that it did); duplicate (after each train answer, writes that answer again); stray (after its
4th answer, writes one line with no id); version V (answers hello with protocol V); v1 (speaks version 1: no ids,
the model in "id"); conventions JSON (declares these conventions); hello JSON
(these fields added to its hello answer); deep N (answers forward with a list nested N
deep); bad-utf8 (answers forward with invalid UTF-8); big-name MIB (a name of MIB MiB in hello); stderr-exit MIB
(writes MIB MiB to stderr at init, then a last line, then exits 3); spawn PIDFILE (starts a grandchild that
sleeps, in its process group, appends "CHILD_PID GRANDCHILD_PID" to PIDFILE, and hangs at its first train).
"""
import json
import os
import subprocess
import sys
import time

import numpy as np

from xor_rosetta import registry
from xor_rosetta.spec import Spec

FAULT = sys.argv[1] if len(sys.argv) > 1 else "none"
ARG = sys.argv[2] if len(sys.argv) > 2 else ""
NumpyMLP = registry.load("numpy")
models = {}


def arr(a):
    return np.array([[float(v) for v in row] for row in a] if isinstance(a[0], list) else [float(v) for v in a])


def out(a):
    a = np.asarray(a, dtype=np.float64)
    return [out(r) for r in a] if a.ndim else repr(float(a))


def params_out(params):
    return [[out(W), out(b)] for W, b in params]


def answer(req):
    op = req["op"]
    if op == "hello":
        hello = {"protocol": 2, "name": "faulty-" + FAULT, "language": "python"}
        if FAULT == "version":
            hello["protocol"] = json.loads(ARG)
        if FAULT == "v1":
            del hello["protocol"]
        if FAULT == "conventions":
            hello["conventions"] = json.loads(ARG)
        if FAULT == "hello":
            hello.update(json.loads(ARG))
        if FAULT == "big-name":
            hello["name"] = "n" * (int(ARG) << 20)
        return hello
    model = req["id"] if FAULT == "v1" else req["model"]
    if op == "init":
        if FAULT == "stderr-exit":
            block = b"e" * (1 << 20) + b"\n"
            for _ in range(int(ARG)):
                sys.stderr.buffer.write(block)
            sys.stderr.buffer.write(b"the last line\n")
            sys.stderr.flush()
            sys.exit(3)
        spec = Spec.from_dict(req["spec"])
        models[model] = NumpyMLP(spec, [(arr(W), arr(b)) for W, b in req["params"]])
        return {}
    net = models[model]
    x = arr(req["x"]) if "x" in req else None
    y = arr(req["y"]) if "y" in req else None
    if op == "forward":
        if FAULT == "deep":
            return {"y": "@DEEP@"}  # written out below: json.dumps itself cannot nest that deep
        return {"y": out(net.forward(x))}
    if op == "loss":
        return {"loss": repr(float(net.loss(x, y)))}
    if op == "gradients":
        return {"gradients": params_out(net.gradients(x, y))}
    if op == "train":
        if FAULT in ("slow-train", "spawn"):
            time.sleep(float(ARG) if FAULT == "slow-train" else 3600)
        hist = net.train(x, y, req["steps"], req["checkpoints"])
        return {"loss": out(hist.loss), "checkpoints": {str(k): params_out(p) for k, p in hist.checkpoints.items()}}
    if op == "params":
        return {"params": params_out(net.params())}
    raise ValueError(f"unknown op {op}")


def main():
    if FAULT == "spawn":
        grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        with open(ARG, "a") as f:  # one line per child started
            f.write(f"{os.getpid()} {grandchild.pid}\n")
    for n, line in enumerate(sys.stdin.buffer, 1):
        req = json.loads(line)
        if FAULT == "hang-once" and n == 4 and not os.path.exists(ARG):
            open(ARG, "w").close()
            time.sleep(3600)
        try:
            reply = {"ok": True, **answer(req)}
        except Exception as e:  # noqa: BLE001 - the child answers every failure
            reply = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        if FAULT != "v1":
            reply = {"id": req.get("id"), **reply}
        text = json.dumps(reply)
        if FAULT == "deep":
            text = text.replace('"@DEEP@"', "[" * int(ARG) + "]" * int(ARG))
        if FAULT == "bad-utf8" and req["op"] == "forward":
            sys.stdout.buffer.write(b'{"id": ' + str(req["id"]).encode() + b', "ok": true, "y": "\xff\xfe"}\n')
        else:
            sys.stdout.write(text + "\n")
        if FAULT == "duplicate" and req["op"] == "train":
            sys.stdout.write(text + "\n")
        if FAULT == "stray" and n == 4:
            sys.stdout.write('{"ok": true}\n')
        sys.stdout.flush()


main()
