//! The bit-exact reference: the integer/fixed-point forward pass that *is* the numerics spec
//! (`docs/numerics.md`). Every hardware result is compared to this exactly.
//!
//! [`Reference::prefill`] processes a batch of tokens layer by layer (the order the accelerator
//! uses: one weight fetch serves every token); [`Reference::decode`] processes one token. All
//! vector arithmetic is integer, so the two orders give identical bits.

use crate::checkpoint::FloatWeights;
use crate::config::{Config, WeightFormat};
use crate::numerics::{quantize, residual_add, Exp2Tables, NormWeight, RopeTable};
pub use crate::ops::ACT_QMAX;
use crate::ops::{attention, ffn_activation, kv_entries, linear, lm_head, AttnDims, KvView, FX_EX};
use crate::quant::{quantize_int2, quantize_ternary, HeadRows, QLinear};
use std::fmt;
use std::sync::Arc;

/// Errors of the reference (bad requests, never numerics).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefError {
    /// The request would run past the context length.
    ContextOverflow {
        /// Tokens already in the cache.
        position: usize,
        /// Tokens requested.
        requested: usize,
        /// `model.max_seq`.
        max_seq: usize,
    },
    /// A token id outside the vocabulary.
    BadToken {
        /// The id.
        id: u32,
        /// The vocabulary size.
        vocab: usize,
    },
    /// An empty prompt.
    EmptyPrompt,
}

impl fmt::Display for RefError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RefError::ContextOverflow { position, requested, max_seq } => write!(
                f,
                "{requested} more token(s) at position {position} exceed the context length max_seq = {max_seq} ({} > {max_seq})",
                position + requested
            ),
            RefError::BadToken { id, vocab } => write!(f, "token id {id} is outside the vocabulary (size {vocab})"),
            RefError::EmptyPrompt => write!(f, "the prompt is empty: give at least one token"),
        }
    }
}

impl std::error::Error for RefError {}

/// One decoder layer in hardware form.
#[derive(Debug, Clone)]
pub struct QuantLayer {
    /// input_layernorm.
    pub attn_norm: NormWeight,
    /// q_proj.
    pub q: QLinear,
    /// k_proj.
    pub k: QLinear,
    /// v_proj.
    pub v: QLinear,
    /// o_proj.
    pub o: QLinear,
    /// attn_sub_norm.
    pub attn_sub_norm: Option<NormWeight>,
    /// post_attention_layernorm.
    pub ffn_norm: NormWeight,
    /// gate_proj.
    pub gate: QLinear,
    /// up_proj.
    pub up: QLinear,
    /// down_proj.
    pub down: QLinear,
    /// ffn_sub_norm.
    pub ffn_sub_norm: Option<NormWeight>,
}

/// The whole model in hardware form, plus the tables the datapath uses.
#[derive(Debug, Clone)]
pub struct QuantModel {
    /// The config.
    pub cfg: Config,
    /// Embedding rows as fp16 bits, `[vocab][hidden]`.
    pub embed: Vec<u16>,
    /// Decoder layers.
    pub layers: Vec<QuantLayer>,
    /// Final norm.
    pub final_norm: NormWeight,
    /// LM head, int8 per row.
    pub lm_head: HeadRows,
    /// RoPE cos/sin.
    pub rope: RopeTable,
    /// Softmax exp2 tables.
    pub exp2: Exp2Tables,
    /// `norm_eps` as binary32.
    pub eps: f32,
    /// `log2(e) / sqrt(head_dim)` as binary32: turns q.k into base-2 softmax exponents.
    pub score_scale: f32,
}

impl QuantModel {
    /// Quantize float weights: decoder linears by the config's weight format, norms to int16
    /// gains, the embedding to fp16, the LM head to int8 rows.
    pub fn from_float(cfg: &Config, w: &FloatWeights) -> QuantModel {
        let m = &cfg.model;
        let lin = |v: &[f32], rows: usize, cols: usize| quantize_linear(cfg, v, rows, cols);
        let (h, f, kv) = (m.hidden, m.ffn, cfg.kv_dim());
        let layers = w
            .layers
            .iter()
            .map(|l| QuantLayer {
                attn_norm: NormWeight::from_f32(&l.attn_norm),
                q: lin(&l.q, h, h),
                k: lin(&l.k, kv, h),
                v: lin(&l.v, kv, h),
                o: lin(&l.o, h, h),
                attn_sub_norm: l.attn_sub_norm.as_deref().map(NormWeight::from_f32),
                ffn_norm: NormWeight::from_f32(&l.ffn_norm),
                gate: lin(&l.gate, f, h),
                up: lin(&l.up, f, h),
                down: lin(&l.down, h, f),
                ffn_sub_norm: l.ffn_sub_norm.as_deref().map(NormWeight::from_f32),
            })
            .collect();
        QuantModel::assemble(
            cfg,
            w.embed.iter().map(|&x| half::f16::from_f32(x).to_bits()).collect(),
            layers,
            NormWeight::from_f32(&w.final_norm),
            HeadRows::quantize(w.lm_head(), m.vocab, h, cfg.quant.lm_head.qmax()),
        )
    }

    /// A model from weights already in hardware form (the checkpoint importer builds these
    /// directly, so pre-quantized ternary weights never round-trip through floats); the tables
    /// (RoPE, exp2) and constants come from `cfg`.
    pub fn assemble(
        cfg: &Config,
        embed: Vec<u16>,
        layers: Vec<QuantLayer>,
        final_norm: NormWeight,
        lm_head: HeadRows,
    ) -> QuantModel {
        let m = &cfg.model;
        QuantModel {
            cfg: cfg.clone(),
            embed,
            layers,
            final_norm,
            lm_head,
            rope: RopeTable::new(m.head_dim, m.max_seq, m.rope_theta),
            exp2: Exp2Tables::new(),
            eps: m.norm_eps as f32,
            score_scale: (std::f64::consts::LOG2_E / (m.head_dim as f64).sqrt()) as f32,
        }
    }
}

/// Quantize one decoder linear with the config's weight format (shared with the float model).
pub fn quantize_linear(cfg: &Config, w: &[f32], rows: usize, cols: usize) -> QLinear {
    match cfg.quant.weights {
        WeightFormat::Ternary => quantize_ternary(w, rows, cols),
        WeightFormat::Int2 => quantize_int2(w, rows, cols, cfg.quant.weight_group.expect("validated")),
    }
}

/// KV cache of one layer: codes `[pos][kv_head][head_dim]`, scales `[pos][kv_head]`.
#[derive(Debug, Clone, Default)]
pub struct LayerCache {
    /// Key codes.
    pub k: Vec<i8>,
    /// Key scales.
    pub k_scale: Vec<f32>,
    /// Value codes.
    pub v: Vec<i8>,
    /// Value scales.
    pub v_scale: Vec<f32>,
}

/// The reference engine: a model plus its KV cache.
#[derive(Debug, Clone)]
pub struct Reference {
    model: Arc<QuantModel>,
    cache: Vec<LayerCache>,
    pos: usize,
}

impl Reference {
    /// A fresh engine (empty cache).
    pub fn new(model: Arc<QuantModel>) -> Reference {
        let cache = vec![LayerCache::default(); model.cfg.model.layers];
        Reference { model, cache, pos: 0 }
    }

    /// The model.
    pub fn model(&self) -> &QuantModel {
        &self.model
    }

    /// Tokens in the cache.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Empty the cache.
    pub fn reset(&mut self) {
        self.cache.iter_mut().for_each(|c| *c = LayerCache::default());
        self.pos = 0;
    }

    /// The KV cache (for comparisons with a device).
    pub fn cache(&self) -> &[LayerCache] {
        &self.cache
    }

    /// Process a prompt; logits (Q.16) of its last position.
    pub fn prefill(&mut self, tokens: &[u32]) -> Result<Vec<i32>, RefError> {
        let mut all = self.forward(tokens, false)?;
        Ok(all.pop().expect("non-empty"))
    }

    /// Process a prompt; logits (Q.16) of every position (for accuracy measurements).
    pub fn prefill_all(&mut self, tokens: &[u32]) -> Result<Vec<Vec<i32>>, RefError> {
        self.forward(tokens, true)
    }

    /// Process one token; its logits (Q.16).
    pub fn decode(&mut self, token: u32) -> Result<Vec<i32>, RefError> {
        self.prefill(&[token])
    }

    fn check(&self, tokens: &[u32]) -> Result<(), RefError> {
        let m = &self.model.cfg.model;
        if tokens.is_empty() {
            return Err(RefError::EmptyPrompt);
        }
        if self.pos + tokens.len() > m.max_seq {
            return Err(RefError::ContextOverflow { position: self.pos, requested: tokens.len(), max_seq: m.max_seq });
        }
        if let Some(&id) = tokens.iter().find(|&&t| t as usize >= m.vocab) {
            return Err(RefError::BadToken { id, vocab: m.vocab });
        }
        Ok(())
    }

    fn forward(&mut self, tokens: &[u32], all_logits: bool) -> Result<Vec<Vec<i32>>, RefError> {
        self.check(tokens)?;
        let model = Arc::clone(&self.model);
        let hidden = model.cfg.model.hidden;
        let mut h: Vec<Vec<i32>> = tokens
            .iter()
            .map(|&t| {
                let row = &model.embed[t as usize * hidden..(t as usize + 1) * hidden];
                row.iter().map(|&b| crate::numerics::f16_to_fx(b)).collect()
            })
            .collect();
        for l in 0..model.layers.len() {
            self.forward_layer(l, &mut h);
        }
        self.pos += tokens.len();
        let first = if all_logits { 0 } else { h.len() - 1 };
        Ok(h[first..].iter().map(|x| lm_head(&model.lm_head, &model.final_norm, model.eps, x)).collect())
    }

    /// One decoder layer for the tokens `h` at positions `position()..`, appending their keys and
    /// values to this layer's cache. Public so benchmarks can time a single layer.
    pub fn forward_layer(&mut self, l: usize, h: &mut [Vec<i32>]) {
        let model = Arc::clone(&self.model);
        let cfg = &model.cfg;
        let hd = cfg.model.head_dim;
        let layer = &model.layers[l];
        let dims = AttnDims { heads: cfg.model.heads, kv_heads: cfg.model.kv_heads, head_dim: hd };
        // Attention: projections, RoPE, append K/V for every token first (causal order is
        // enforced by the key range of each query below).
        let mut queries = Vec::with_capacity(h.len());
        for (t, x) in h.iter().enumerate() {
            let pos = self.pos + t;
            let xq = quantize(x, FX_EX, Some((&layer.attn_norm, model.eps)), ACT_QMAX);
            let mut q = linear(&layer.q, &xq);
            let mut k = linear(&layer.k, &xq);
            let v = linear(&layer.v, &xq);
            q.chunks_exact_mut(hd).for_each(|head| model.rope.apply(head, pos));
            k.chunks_exact_mut(hd).for_each(|head| model.rope.apply(head, pos));
            let (kc, ks, vc, vs) = kv_entries(&k, &v, hd, cfg.quant.kv.qmax());
            let cache = &mut self.cache[l];
            cache.k.extend_from_slice(&kc);
            cache.k_scale.extend_from_slice(&ks);
            cache.v.extend_from_slice(&vc);
            cache.v_scale.extend_from_slice(&vs);
            queries.push(q);
        }
        for (t, x) in h.iter_mut().enumerate() {
            let pos = self.pos + t;
            let c = &self.cache[l];
            let kv = KvView { k: &c.k, k_scale: &c.k_scale, v: &c.v, v_scale: &c.v_scale };
            let attn = attention(dims, kv, &queries[t], pos, &model.exp2, model.score_scale);
            let aq = quantize(&attn, FX_EX, layer.attn_sub_norm.as_ref().map(|w| (w, model.eps)), ACT_QMAX);
            residual_add(x, &linear(&layer.o, &aq));
            // FFN.
            let xq = quantize(x, FX_EX, Some((&layer.ffn_norm, model.eps)), ACT_QMAX);
            let gate = linear(&layer.gate, &xq);
            let up = linear(&layer.up, &xq);
            let sub = layer.ffn_sub_norm.as_ref().map(|w| (w, model.eps));
            let fq = ffn_activation(cfg.model.ffn_activation, &gate, &up, &model.exp2, sub);
            residual_add(x, &linear(&layer.down, &fq));
        }
    }
}

/// Q.16 logits to f32 (exact for |x| < 2^8, otherwise rounded once).
pub fn logits_to_f32(l: &[i32]) -> Vec<f32> {
    l.iter().map(|&x| (x as f64 / 65536.0) as f32).collect()
}

/// Index of the largest logit (lowest index on ties).
pub fn argmax(l: &[i32]) -> u32 {
    let mut best = 0;
    for (i, &v) in l.iter().enumerate() {
        if v > l[best] {
            best = i;
        }
    }
    best as u32
}
