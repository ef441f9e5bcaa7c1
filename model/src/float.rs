//! The f32 model: the yardstick for what the bit-exact numerics cost, never a spec.
//!
//! - [`FloatMode::Plain`]: the checkpoint's weights as stored, no quantization (Hugging Face
//!   without a quantization config).
//! - [`FloatMode::W158A8`]: published BitNet b1.58 semantics: absmean ternary weights (the same
//!   codes and scale the reference uses) and per-token absmax int8 fake-quantization
//!   (round half to even) of the input of every linear inside the decoder blocks; embedding and
//!   LM head unquantized; f32 everywhere else, no KV quantization.

use crate::checkpoint::FloatWeights;
use crate::config::{Config, FfnActivation};
use crate::reference::quantize_linear;
use std::sync::Arc;

/// Which float semantics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatMode {
    /// Unquantized.
    Plain,
    /// Ternary weights, int8 activations (fake-quantized), f32 elsewhere.
    W158A8,
}

struct FloatLinears {
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    o: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
    down: Vec<f32>,
}

/// A float model ready to run.
pub struct FloatModel {
    cfg: Config,
    mode: FloatMode,
    w: FloatWeights,
    linears: Vec<FloatLinears>,
    inv_freq: Vec<f32>,
}

impl FloatModel {
    /// Build from float weights (for `W158A8`, quantizes every decoder linear).
    pub fn new(cfg: &Config, w: FloatWeights, mode: FloatMode) -> FloatModel {
        let m = &cfg.model;
        let (h, f, kv) = (m.hidden, m.ffn, cfg.kv_dim());
        let prep = |v: &Vec<f32>, rows: usize, cols: usize| match mode {
            FloatMode::Plain => v.clone(),
            FloatMode::W158A8 => quantize_linear(cfg, v, rows, cols).dequantize(),
        };
        let linears = w
            .layers
            .iter()
            .map(|l| FloatLinears {
                q: prep(&l.q, h, h),
                k: prep(&l.k, kv, h),
                v: prep(&l.v, kv, h),
                o: prep(&l.o, h, h),
                gate: prep(&l.gate, f, h),
                up: prep(&l.up, f, h),
                down: prep(&l.down, h, f),
            })
            .collect();
        // As transformers: 1 / theta^(arange(0, d, 2) / d) in f32.
        let inv_freq = (0..m.head_dim / 2)
            .map(|i| 1.0f32 / (m.rope_theta as f32).powf((2 * i) as f32 / m.head_dim as f32))
            .collect();
        FloatModel { cfg: cfg.clone(), mode, w, linears, inv_freq }
    }

    /// The config.
    pub fn config(&self) -> &Config {
        &self.cfg
    }
}

/// A float model with its (f32) KV cache.
pub struct FloatRunner {
    model: Arc<FloatModel>,
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    pos: usize,
}

fn rms_norm(x: &[f32], w: &[f32], eps: f32) -> Vec<f32> {
    let mean = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let r = 1.0 / (mean + eps).sqrt();
    x.iter().zip(w).map(|(v, g)| g * (v * r)).collect()
}

fn fake_quant_int8(x: &[f32]) -> Vec<f32> {
    let max = x.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-5);
    let s = 127.0 / max;
    x.iter().map(|v| (v * s).round_ties_even().clamp(-128.0, 127.0) / s).collect()
}

fn matvec(w: &[f32], x: &[f32]) -> Vec<f32> {
    w.chunks_exact(x.len()).map(|row| row.iter().zip(x).map(|(a, b)| a * b).sum()).collect()
}

impl FloatRunner {
    /// Fresh runner.
    pub fn new(model: Arc<FloatModel>) -> FloatRunner {
        let layers = model.cfg.model.layers;
        FloatRunner { model, k: vec![Vec::new(); layers], v: vec![Vec::new(); layers], pos: 0 }
    }

    fn lin(&self, w: &[f32], x: &[f32]) -> Vec<f32> {
        match self.model.mode {
            FloatMode::Plain => matvec(w, x),
            FloatMode::W158A8 => matvec(w, &fake_quant_int8(x)),
        }
    }

    fn rope(&self, x: &mut [f32], pos: usize) {
        let half = x.len() / 2;
        for i in 0..half {
            let a = pos as f32 * self.model.inv_freq[i];
            let (c, s) = (a.cos(), a.sin());
            let (x1, x2) = (x[i], x[i + half]);
            x[i] = x1 * c - x2 * s;
            x[i + half] = x2 * c + x1 * s;
        }
    }

    /// Run tokens one at a time (appending to the cache); logits of every position.
    pub fn forward(&mut self, tokens: &[u32]) -> Vec<Vec<f32>> {
        tokens.iter().map(|&t| self.step(t)).collect()
    }

    /// One token; its logits.
    pub fn step(&mut self, token: u32) -> Vec<f32> {
        let model = Arc::clone(&self.model);
        let m = &model.cfg.model;
        let (hd, group, eps) = (m.head_dim, model.cfg.heads_per_kv(), m.norm_eps as f32);
        let kvd = model.cfg.kv_dim();
        let pos = self.pos;
        let mut x: Vec<f32> = model.w.embed[token as usize * m.hidden..(token as usize + 1) * m.hidden].to_vec();
        for (l, (lw, lin)) in model.w.layers.iter().zip(&model.linears).enumerate() {
            let xn = rms_norm(&x, &lw.attn_norm, eps);
            let mut q = self.lin(&lin.q, &xn);
            let mut k = self.lin(&lin.k, &xn);
            let v = self.lin(&lin.v, &xn);
            q.chunks_exact_mut(hd).for_each(|h| self.rope(h, pos));
            k.chunks_exact_mut(hd).for_each(|h| self.rope(h, pos));
            self.k[l].extend_from_slice(&k);
            self.v[l].extend_from_slice(&v);
            let scale = 1.0 / (hd as f32).sqrt();
            let mut attn = Vec::with_capacity(m.hidden);
            for head in 0..m.heads {
                let kvh = head / group;
                let qh = &q[head * hd..(head + 1) * hd];
                let scores: Vec<f32> = (0..=pos)
                    .map(|t| {
                        let kt = &self.k[l][t * kvd + kvh * hd..t * kvd + (kvh + 1) * hd];
                        qh.iter().zip(kt).map(|(a, b)| a * b).sum::<f32>() * scale
                    })
                    .collect();
                let mx = scores.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                let e: Vec<f32> = scores.iter().map(|s| (s - mx).exp()).collect();
                let sum: f32 = e.iter().sum();
                let mut o = vec![0f32; hd];
                for (t, p) in e.iter().enumerate() {
                    let vt = &self.v[l][t * kvd + kvh * hd..t * kvd + (kvh + 1) * hd];
                    o.iter_mut().zip(vt).for_each(|(a, b)| *a += p / sum * b);
                }
                attn.extend(o);
            }
            let attn = match &lw.attn_sub_norm {
                Some(g) => rms_norm(&attn, g, eps),
                None => attn,
            };
            let y = self.lin(&lin.o, &attn);
            x.iter_mut().zip(&y).for_each(|(a, b)| *a += b);
            let xn = rms_norm(&x, &lw.ffn_norm, eps);
            let gate = self.lin(&lin.gate, &xn);
            let up = self.lin(&lin.up, &xn);
            let act: Vec<f32> = gate
                .iter()
                .zip(&up)
                .map(|(&g, &u)| match m.ffn_activation {
                    FfnActivation::Relu2 => g.max(0.0).powi(2) * u,
                    FfnActivation::Silu => g / (1.0 + (-g).exp()) * u,
                })
                .collect();
            let act = match &lw.ffn_sub_norm {
                Some(g) => rms_norm(&act, g, eps),
                None => act,
            };
            let y = self.lin(&lin.down, &act);
            x.iter_mut().zip(&y).for_each(|(a, b)| *a += b);
        }
        self.pos += 1;
        let xn = rms_norm(&x, &model.w.final_norm, eps);
        matvec(model.w.lm_head(), &xn)
    }
}

/// How far one set of logits is from another (the yardstick).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Agreement {
    /// Positions compared.
    pub positions: usize,
    /// sqrt(sum (a - b)^2) / sqrt(sum b^2) over all positions and vocabulary entries.
    pub rel_rms: f64,
    /// Mean over positions of KL(softmax(b) || softmax(a)), nats.
    pub mean_kl: f64,
    /// Fraction of positions where the argmax agrees.
    pub top1: f64,
}

/// Compare `test` logits against `yard` logits position by position.
pub fn agreement(test: &[Vec<f32>], yard: &[Vec<f32>]) -> Agreement {
    assert_eq!(test.len(), yard.len());
    let (mut num, mut den, mut kl, mut same) = (0f64, 0f64, 0f64, 0usize);
    for (a, b) in test.iter().zip(yard) {
        for (x, y) in a.iter().zip(b) {
            num += ((x - y) as f64).powi(2);
            den += (*y as f64).powi(2);
        }
        let lp = |v: &[f32]| {
            let mx = v.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
            let lse = v.iter().map(|&x| (x as f64 - mx).exp()).sum::<f64>().ln() + mx;
            v.iter().map(|&x| x as f64 - lse).collect::<Vec<f64>>()
        };
        let (la, lb) = (lp(a), lp(b));
        kl += la.iter().zip(&lb).map(|(pa, pb)| pb.exp() * (pb - pa)).sum::<f64>();
        let am = |v: &[f32]| v.iter().enumerate().fold(0, |bi, (i, &x)| if x > v[bi] { i } else { bi });
        same += (am(a) == am(b)) as usize;
    }
    let n = test.len().max(1) as f64;
    Agreement {
        positions: test.len(),
        rel_rms: (num / den.max(f64::MIN_POSITIVE)).sqrt(),
        mean_kl: kl / n,
        top1: same as f64 / n,
    }
}
