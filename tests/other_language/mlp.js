// The XOR MLP in plain JavaScript (Node), for `xor-rosetta verify --cmd "node mlp.js"`: forward pass, backprop,
// SGD (with momentum) and Adam, written out; canonical layout W (fan_in, fan_out), float64 (JS numbers).
// It speaks xor-rosetta's child-process protocol, version 2 (docs/protocol.md): one JSON request per line on stdin,
// one JSON answer per line on stdout, echoing the request's id; floats in arrays travel as strings that round-trip
// exactly (String(x)).
'use strict';

// region model
const ACT = {  // activation, and its derivative in terms of the pre-activation z and the output a
  tanh: [Math.tanh, (z, a) => 1 - a * a],
  sigmoid: [(z) => 1 / (1 + Math.exp(-z)), (z, a) => a * (1 - a)],
  relu: [(z) => Math.max(z, 0), (z, a) => (z > 0 ? 1 : 0)],
  linear: [(z) => z, (z, a) => 1],
};

const matmul = (A, B) => A.map((row) => B[0].map((_, j) => row.reduce((s, v, k) => s + v * B[k][j], 0)));
const transpose = (A) => A[0].map((_, j) => A.map((row) => row[j]));
const zip2 = (A, B, f) => A.map((row, i) => row.map((v, j) => f(v, B[i][j])));

function forward(Ws, bs, acts, x) {  // zs[i]: (batch, fan_out); hs[0] = x (batch, 2)
  const zs = [], hs = [x];
  Ws.forEach((W, i) => {
    zs.push(matmul(hs[i], W).map((row) => row.map((v, j) => v + bs[i][j])));
    hs.push(zs[i].map((row) => row.map(ACT[acts[i]][0])));
  });
  return [zs, hs];
}
// endregion

// region loss
function lossAndDz(loss, act, z, a, y) {  // mean over batch and outputs; dz = d loss / d z at the output
  const m = y.length * y[0].length;
  if (loss === 'mse') {
    const d = zip2(a, y, (p, t) => p - t);
    const value = d.flat().reduce((s, v) => s + v * v, 0) / m;
    return [value, d.map((row, i) => row.map((v, j) => (2 * v / m) * ACT[act][1](z[i][j], a[i][j])))];
  }
  const terms = zip2(z, y, (v, t) => Math.max(v, 0) - v * t + Math.log1p(Math.exp(-Math.abs(v))));  // BCE from z
  return [terms.flat().reduce((s, v) => s + v, 0) / m, zip2(a, y, (p, t) => (p - t) / m)];
}
// endregion

function backprop(net, x, y) {
  const { Ws, bs, spec } = net;
  const [zs, hs] = forward(Ws, bs, spec.activations, x);
  const L = Ws.length;
  let [value, dz] = lossAndDz(spec.loss, spec.activations[L - 1], zs[L - 1], hs[L], y);
  const dWs = [], dbs = [];
  for (let i = L - 1; i >= 0; i--) {
    dWs[i] = matmul(transpose(hs[i]), dz);  // (fan_in, fan_out)
    dbs[i] = dz[0].map((_, j) => dz.reduce((s, row) => s + row[j], 0));  // (fan_out,)
    if (i) {  // back through layer i's weights and layer i-1's activation: (batch, fan_in)
      const act = spec.activations[i - 1], da = matmul(dz, transpose(Ws[i]));
      dz = da.map((row, r) => row.map((g, c) => g * ACT[act][1](zs[i - 1][r][c], hs[i][r][c])));
    }
  }
  return [value, dWs, dbs];
}

// region optimizer
const slots = (Ws, bs) => [...Ws.flatMap((W) => W), ...bs];  // every row of every W, then every b

function makeOptimizer(o, arrays) {  // updates `arrays` (lists of numbers) in place, elementwise
  const m = arrays.map((a) => a.map(() => 0)), v = arrays.map((a) => a.map(() => 0));
  let t = 0;
  return (grads) => {
    t += 1;
    arrays.forEach((p, k) => p.forEach((_, j) => {
      const g = grads[k][j];
      if (o.name === 'adam') {  // Kingma & Ba: bias-corrected moments, epsilon outside the root
        m[k][j] = (1 - o.beta1) * g + o.beta1 * m[k][j];
        v[k][j] = (1 - o.beta2) * (g * g) + o.beta2 * v[k][j];
        const mHat = m[k][j] / (1 - o.beta1 ** t), vHat = v[k][j] / (1 - o.beta2 ** t);
        p[j] -= o.lr * (mHat / (Math.sqrt(vHat) + o.epsilon));
      } else if (o.momentum) {  // torch's form: v = mu*v + g; w -= lr*v
        m[k][j] = o.momentum * m[k][j] + g;
        p[j] -= o.lr * m[k][j];
      } else {
        p[j] -= o.lr * g;
      }
    }));
  };
}
// endregion

class MLP {
  constructor(spec, params) {
    this.spec = spec;
    this.Ws = params.map(([W]) => W);
    this.bs = params.map(([, b]) => b);
    this.stepsDone = 0;
    this.optimizer = makeOptimizer(spec.optimizer, slots(this.Ws, this.bs));
  }

  // region step
  step(x, y) {
    const [value, dWs, dbs] = backprop(this, x, y);
    this.optimizer(slots(dWs, dbs));
    return value;
  }
  // endregion

  // region loop
  train(x, y, steps, checkpoints) {
    const n = x.length, b = this.spec.batch_size || n, want = new Set(checkpoints);
    const losses = [], saved = {};
    for (let k = 0; k < steps; k++) {
      const rows = Array.from({ length: b }, (_, i) => (this.stepsDone * b + i) % n);  // the cycling window
      losses.push(this.step(rows.map((r) => x[r]), rows.map((r) => y[r])));
      this.stepsDone += 1;
      if (want.has(k + 1)) saved[k + 1] = this.params();
    }
    return [losses, saved];
  }
  // endregion

  params() {
    return this.Ws.map((W, i) => [W.map((r) => r.slice()), this.bs[i].slice()]);
  }
}

// region protocol
const num = (s) => Number(s);  // exact for shortest round-trip decimal strings
const arr = (a) => (Array.isArray(a) ? a.map(arr) : num(a));
const out = (a) => (Array.isArray(a) ? a.map(out) : String(a));
const models = new Map();

function answer(req) {
  const net = models.get(req.model);
  if (req.op !== 'hello' && req.op !== 'init' && !net) throw new Error(`no model ${req.model}`);
  const x = req.x && arr(req.x), y = req.y && arr(req.y);
  switch (req.op) {
    case 'hello':
      if (req.protocol < 2) throw new Error(`this child speaks protocol 2, not ${req.protocol}`);
      return { protocol: 2, name: 'node-mlp', language: `javascript (node ${process.version})`,
        supports: { dtypes: ['float64'] }, conventions: { adam: 'optax', momentum: 'torch', bce: 'logits' } };
    case 'init':
      if (req.spec.dtype !== 'float64') throw new Error('only float64');
      models.set(req.model, new MLP(req.spec, arr(req.params)));
      return {};
    case 'forward': return { y: out(forward(net.Ws, net.bs, net.spec.activations, x)[1].at(-1)) };
    case 'loss': return { loss: String(backprop(net, x, y)[0]) };
    case 'gradients': {
      const [, dWs, dbs] = backprop(net, x, y);
      return { gradients: out(dWs.map((dW, i) => [dW, dbs[i]])) };
    }
    case 'train': {
      const [losses, saved] = net.train(x, y, req.steps, req.checkpoints);
      return { loss: out(losses), checkpoints: Object.fromEntries(Object.entries(saved).map(([k, p]) => [k, out(p)])) };
    }
    case 'params': return { params: out(net.params()) };
    default: throw new Error(`unknown op ${req.op}`);
  }
}

require('readline').createInterface({ input: process.stdin }).on('line', (line) => {
  let reply, id = null;
  try {
    const req = JSON.parse(line);
    id = req.id;
    reply = { id, ok: true, ...answer(req) };
  } catch (e) {
    reply = { id, ok: false, error: String(e.message || e) };
  }
  process.stdout.write(JSON.stringify(reply) + '\n');
});
// endregion
