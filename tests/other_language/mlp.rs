// The XOR MLP in Rust (std only) for `xor-rosetta verify --cmd ./mlp`: forward pass, backprop, SGD (with Keras'
// momentum form) and Adam (torch's form), BCE from probabilities as torch's BCELoss; float64, canonical layout
// W (fan_in, fan_out). It speaks xor-rosetta's child-process protocol, version 2 (docs/protocol.md): one JSON
// request per line on stdin, one JSON answer per line on stdout echoing the request's id; floats travel as
// strings that round-trip exactly (Rust's `{:?}`).
// Build: rustc -O -o mlp mlp.rs.  MLP_MUTANT=halve halves the MSE and its gradient (a mutant the tests expect
// `verify` to diagnose).
use std::collections::HashMap;
use std::io::{self, BufRead, Write};

// ---- a small JSON reader and writer: enough for the driver's requests
#[allow(dead_code)] // a Bool is read, never looked at
enum Json { Null, Bool(bool), Num(f64), Str(String), Arr(Vec<Json>), Obj(Vec<(String, Json)>) }

struct Parser<'a> { s: &'a [u8], i: usize }

impl<'a> Parser<'a> {
    fn ws(&mut self) { while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() { self.i += 1; } }
    fn peek(&self) -> u8 { if self.i < self.s.len() { self.s[self.i] } else { 0 } }
    fn string(&mut self) -> Result<String, String> {
        self.i += 1; // the opening quote
        let mut out = Vec::new();
        while self.peek() != b'"' {
            match self.peek() {
                0 => return Err("unterminated string".into()),
                b'\\' => { self.i += 1; out.push(match self.peek() { b'n' => b'\n', b't' => b'\t', c => c }); }
                c => out.push(c),
            }
            self.i += 1;
        }
        self.i += 1;
        String::from_utf8(out).map_err(|e| e.to_string())
    }
    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        match self.peek() {
            b'{' | b'[' => {
                let obj = self.peek() == b'{';
                self.i += 1;
                let (mut items, mut fields) = (Vec::new(), Vec::new());
                loop {
                    self.ws();
                    if self.peek() == b'}' || self.peek() == b']' { self.i += 1; break; }
                    if self.peek() == 0 { return Err("unterminated array or object".into()); }
                    if obj {
                        let key = self.string()?;
                        self.ws();
                        self.i += 1; // the colon
                        fields.push((key, self.value()?));
                    } else {
                        items.push(self.value()?);
                    }
                    self.ws();
                    if self.peek() == b',' { self.i += 1; }
                }
                Ok(if obj { Json::Obj(fields) } else { Json::Arr(items) })
            }
            b'"' => Ok(Json::Str(self.string()?)),
            b't' | b'f' | b'n' => {
                let c = self.peek();
                while self.peek().is_ascii_alphabetic() { self.i += 1; }
                Ok(if c == b'n' { Json::Null } else { Json::Bool(c == b't') })
            }
            _ => {
                let start = self.i;
                while matches!(self.peek(), b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') { self.i += 1; }
                let text = std::str::from_utf8(&self.s[start..self.i]).unwrap();
                text.parse().map(Json::Num).map_err(|_| format!("bad number {:?}", text))
            }
        }
    }
}

impl Json {
    fn get(&self, key: &str) -> &Json {
        match self { Json::Obj(f) => f.iter().find(|(k, _)| k == key).map(|(_, v)| v).unwrap_or(&Json::Null),
                     _ => &Json::Null }
    }
    fn num(&self) -> f64 { // "0.1" (the driver's numbers) or 0.1
        match self { Json::Num(x) => *x, Json::Str(s) => s.parse().unwrap_or(f64::NAN), _ => f64::NAN }
    }
    fn text(&self) -> &str { if let Json::Str(s) = self { s } else { "" } }
    fn list(&self) -> &[Json] { if let Json::Arr(a) = self { a } else { &[] } }
    fn rows(&self) -> Vec<Vec<f64>> { self.list().iter().map(|r| r.list().iter().map(Json::num).collect()).collect() }
}

fn enc(x: f64) -> String { format!("\"{:?}\"", x) } // shortest round-trip: "0.1", "1e-7", "NaN", "inf"
fn enc_list(v: &[f64]) -> String { format!("[{}]", v.iter().map(|&x| enc(x)).collect::<Vec<_>>().join(",")) }
fn enc_rows(m: &[Vec<f64>]) -> String { format!("[{}]", m.iter().map(|r| enc_list(r)).collect::<Vec<_>>().join(",")) }

// ---- the model
type Matrix = Vec<Vec<f64>>; // rows

fn act(name: &str, z: f64) -> f64 {
    match name { "tanh" => z.tanh(), "sigmoid" => 1.0 / (1.0 + (-z).exp()), "relu" => z.max(0.0), _ => z }
}
fn dact(name: &str, z: f64, a: f64) -> f64 { // in terms of the pre-activation z and the output a
    match name { "tanh" => 1.0 - a * a, "sigmoid" => a * (1.0 - a), "relu" => if z > 0.0 { 1.0 } else { 0.0 }, _ => 1.0 }
}

struct Model {
    acts: Vec<String>, bce: bool, opt: String, lr: f64, mu: f64, b1: f64, b2: f64, eps: f64, batch: Option<usize>,
    w: Vec<Matrix>, b: Vec<Vec<f64>>,
    m: Vec<Vec<f64>>, v: Vec<Vec<f64>>, t: i32, done: usize, // optimizer state per flat parameter; updates so far
}

impl Model {
    fn new(spec: &Json, params: &Json) -> Model {
        let o = spec.get("optimizer");
        let w: Vec<Matrix> = params.list().iter().map(|p| p.list()[0].rows()).collect();
        let b: Vec<Vec<f64>> = params.list().iter().map(|p| p.list()[1].list().iter().map(Json::num).collect()).collect();
        let sizes: Vec<usize> = w.iter().zip(&b).map(|(w, b)| w.len() * b.len() + b.len()).collect();
        Model {
            acts: spec.get("activations").list().iter().map(|a| a.text().to_string()).collect(),
            bce: spec.get("loss").text() == "bce", opt: o.get("name").text().to_string(),
            lr: o.get("lr").num(), mu: o.get("momentum").num(), b1: o.get("beta1").num(), b2: o.get("beta2").num(),
            eps: o.get("epsilon").num(),
            batch: match spec.get("batch_size") { Json::Num(n) => Some(*n as usize), _ => None },
            m: sizes.iter().map(|&n| vec![0.0; n]).collect(), v: sizes.iter().map(|&n| vec![0.0; n]).collect(),
            w, b, t: 0, done: 0,
        }
    }

    fn forward(&self, x: &Matrix) -> (Vec<Matrix>, Vec<Matrix>) { // zs[l], hs[l] (hs[0] = x)
        let (mut zs, mut hs) = (Vec::new(), vec![x.clone()]);
        for (l, (w, b)) in self.w.iter().zip(&self.b).enumerate() {
            let z: Matrix = hs[l].iter().map(|row| (0..b.len()).map(|j| {
                row.iter().enumerate().fold(0.0, |s, (k, h)| s + h * w[k][j]) + b[j]
            }).collect()).collect();
            hs.push(z.iter().map(|r| r.iter().map(|&v| act(&self.acts[l], v)).collect()).collect());
            zs.push(z);
        }
        (zs, hs)
    }

    fn backprop(&self, x: &Matrix, y: &Matrix) -> (f64, Vec<Matrix>, Vec<Vec<f64>>) { // loss, dW, db
        let (zs, hs) = self.forward(x);
        let last = self.w.len() - 1;
        let (a, z) = (&hs[last + 1], &zs[last]);
        let n = (y.len() * y[0].len()) as f64;
        let halve = if std::env::var("MLP_MUTANT").as_deref() == Ok("halve") { 0.5 } else { 1.0 };
        let mut loss = 0.0;
        let mut dz: Matrix = a.iter().enumerate().map(|(r, row)| row.iter().enumerate().map(|(j, &p)| {
            let t = y[r][j];
            let da = if self.bce { // torch's BCELoss: logs clamped at -100, its gradient over max(p(1-p), 1e-12f32)
                loss -= t * p.ln().max(-100.0) + (1.0 - t) * (1.0 - p).ln().max(-100.0);
                (p - t) / (p * (1.0 - p)).max(1e-12f32 as f64) / n
            } else {
                loss += halve * (p - t) * (p - t);
                halve * 2.0 * (p - t) / n
            };
            da * dact(&self.acts[last], z[r][j], p)
        }).collect()).collect();
        let (mut dw, mut db) = (vec![Vec::new(); last + 1], vec![Vec::new(); last + 1]);
        for l in (0..=last).rev() {
            dw[l] = (0..self.w[l].len()).map(|k| (0..self.b[l].len()).map(|j| {
                hs[l].iter().zip(&dz).fold(0.0, |s, (h, d)| s + h[k] * d[j])
            }).collect()).collect();
            db[l] = (0..self.b[l].len()).map(|j| dz.iter().fold(0.0, |s, d| s + d[j])).collect();
            if l > 0 { // back through W[l] and the activation of layer l-1
                dz = dz.iter().enumerate().map(|(r, d)| (0..self.w[l].len()).map(|k| {
                    let g = d.iter().enumerate().fold(0.0, |s, (j, dj)| s + dj * self.w[l][k][j]);
                    g * dact(&self.acts[l - 1], zs[l - 1][r][k], hs[l][r][k])
                }).collect()).collect();
            }
        }
        (loss / n, dw, db)
    }

    fn step(&mut self, x: &Matrix, y: &Matrix) -> f64 {
        let (loss, dw, db) = self.backprop(x, y);
        self.t += 1;
        let (b1, b2, t) = (self.b1, self.b2, self.t);
        for l in 0..self.w.len() {
            let grads: Vec<f64> = dw[l].iter().flatten().chain(&db[l]).copied().collect();
            let (fan_out, count) = (self.b[l].len(), grads.len());
            for (i, g) in grads.into_iter().enumerate() {
                let (m, v) = (&mut self.m[l][i], &mut self.v[l][i]);
                let delta = if self.opt == "adam" { // torch: lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
                    *m = b1 * *m + (1.0 - b1) * g;
                    *v = b2 * *v + (1.0 - b2) * g * g;
                    -(self.lr / (1.0 - b1.powi(t))) * (*m / ((*v).sqrt() / (1.0 - b2.powi(t)).sqrt() + self.eps))
                } else if self.mu != 0.0 { // Keras: v = mu*v - lr*g; w += v
                    *m = self.mu * *m - self.lr * g;
                    *m
                } else {
                    -self.lr * g
                };
                if i < count - fan_out { self.w[l][i / fan_out][i % fan_out] += delta } else { self.b[l][i - (count - fan_out)] += delta }
            }
        }
        loss
    }

    fn params(&self) -> String {
        let pairs: Vec<String> = self.w.iter().zip(&self.b).map(|(w, b)| format!("[{},{}]", enc_rows(w), enc_list(b))).collect();
        format!("[{}]", pairs.join(","))
    }
}

// ---- answers
fn answer(req: &Json, models: &mut HashMap<i64, Model>) -> Result<String, String> {
    let op = req.get("op").text();
    if op == "hello" {
        return Ok(",\"protocol\":2,\"name\":\"rust-mlp\",\"language\":\"rust\",\"supports\":{\"dtypes\":[\"float64\"]},\
                   \"conventions\":{\"adam\":\"torch\",\"momentum\":\"keras\",\"bce\":\"probs\"}".into());
    }
    let id = req.get("model").num() as i64;
    if op == "init" {
        if req.get("spec").get("dtype").text() != "float64" { return Err("only float64".into()); }
        models.insert(id, Model::new(req.get("spec"), req.get("params")));
        return Ok(String::new());
    }
    let net = models.get_mut(&id).ok_or(format!("no model {}", id))?;
    let (x, y) = (req.get("x").rows(), req.get("y").rows());
    Ok(match op {
        "forward" => format!(",\"y\":{}", enc_rows(net.forward(&x).1.last().unwrap())),
        "loss" => format!(",\"loss\":{}", enc(net.backprop(&x, &y).0)),
        "gradients" => {
            let (_, dw, db) = net.backprop(&x, &y);
            let pairs: Vec<String> = dw.iter().zip(&db).map(|(w, b)| format!("[{},{}]", enc_rows(w), enc_list(b))).collect();
            format!(",\"gradients\":[{}]", pairs.join(","))
        }
        "train" => {
            let (n, steps) = (x.len(), req.get("steps").num() as usize);
            let b = net.batch.unwrap_or(n);
            let wanted: Vec<usize> = req.get("checkpoints").list().iter().map(|k| k.num() as usize).collect();
            let (mut losses, mut saved) = (Vec::new(), Vec::new());
            for k in 1..=steps {
                let rows: Vec<usize> = (0..b).map(|i| (net.done * b + i) % n).collect(); // update `done` of its life
                let (bx, by) = (rows.iter().map(|&r| x[r].clone()).collect(), rows.iter().map(|&r| y[r].clone()).collect());
                losses.push(net.step(&bx, &by));
                net.done += 1;
                if wanted.contains(&k) { saved.push(format!("\"{}\":{}", k, net.params())); }
            }
            format!(",\"loss\":{},\"checkpoints\":{{{}}}", enc_list(&losses), saved.join(","))
        }
        "params" => format!(",\"params\":{}", net.params()),
        _ => return Err(format!("unknown op {}", op)),
    })
}

fn main() {
    let mut models = HashMap::new();
    let stdout = io::stdout();
    for line in io::stdin().lock().lines() {
        let line = line.expect("stdin");
        let (id, reply) = match (Parser { s: line.as_bytes(), i: 0 }).value() {
            Ok(req) => {
                let id = match req.get("id") { Json::Num(n) => format!("{}", n), _ => "null".into() };
                (id, answer(&req, &mut models))
            }
            Err(e) => ("null".into(), Err(e)),
        };
        let mut out = stdout.lock();
        match reply {
            Ok(fields) => writeln!(out, "{{\"id\":{},\"ok\":true{}}}", id, fields),
            Err(e) => writeln!(out, "{{\"id\":{},\"ok\":false,\"error\":{:?}}}", id, e),
        }.and_then(|_| out.flush()).expect("stdout");
    }
}
