//! `trit sim`: cycle-accurate figures for a config from the Verilator kernel behind its board's
//! DRAM model. One prefill of `prompt_len` random tokens and decode steps through `layers`
//! decoder layers of random weights (the numbers do not depend on the weight values). Per-layer
//! cycles are those of the real program (weight loads overlapping the other ops); the per-op
//! breakdown runs every op of the last prefill chunk and the last decode step alone, so it
//! shows each engine's cost without overlap (its sum exceeds the program's). Whole-model TTFT
//! and tokens/s are estimates (layers x per-layer + embedding + LM head) at the configured
//! clock, and say so.

use crate::runtime::{ChunkMeasure, Counters, DeviceShape, Runtime};
use crate::simdev::SimDevice;
use anyhow::{bail, Result};
use hdl::isa::Op;
use model::reference::QuantModel;
use model::Config;
use serde::Serialize;
use std::collections::BTreeMap;

/// What `trit sim` measures.
#[derive(Debug, Clone)]
pub struct SimRequest {
    /// Config (its model's layer count is what the estimates scale to).
    pub cfg: Config,
    /// Decoder layers to simulate.
    pub layers: usize,
    /// Prompt tokens in the prefill.
    pub prompt_len: usize,
    /// Decode steps after the prefill (the last one is reported).
    pub decode_steps: usize,
    /// Simulate the LM head too (else its cost is estimated at the DRAM roofline).
    pub lm_head: bool,
    /// Trace each op's cycles inside the last prefill chunk's and the last decode step's
    /// programs ([`SimReport::timeline`]).
    pub timeline: bool,
}

/// Cycles and DRAM traffic of one kind of op in one phase, over the simulated layers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OpRow {
    /// Ops of this kind.
    pub count: u64,
    /// Kernel cycles.
    pub cycles: u64,
    /// Bytes read from DRAM.
    pub dram_read_bytes: u64,
    /// Bytes written to DRAM.
    pub dram_write_bytes: u64,
}

/// Decode figures (one token at position `context - 1`).
#[derive(Debug, Clone, Serialize)]
pub struct DecodeFigures {
    /// Tokens in the KV cache including the decoded one.
    pub context: usize,
    /// Kernel cycles per decoder layer.
    pub cycles_per_layer: u64,
    /// DRAM bytes moved per layer (measured: read + written).
    pub dram_bytes_per_layer: u64,
    /// Bytes a layer must move at least: weights, norms, the KV cache read and the new entry.
    pub layer_bytes: u64,
    /// `layer_bytes / (cycles_per_layer * bytes per cycle)`: the fraction of the DRAM roofline.
    pub roofline_fraction: f64,
    /// Per op kind.
    pub ops: BTreeMap<String, OpRow>,
}

/// Prefill figures.
#[derive(Debug, Clone, Serialize)]
pub struct PrefillFigures {
    /// Prompt tokens.
    pub prompt_len: usize,
    /// Kernel cycles per decoder layer.
    pub cycles_per_layer: u64,
    /// TLMM lookups a layer needs for the prompt (tokens x sum of N x ceil(K / G)).
    pub lookups_per_layer: u64,
    /// `lookups_per_layer / lookups per cycle`.
    pub compute_floor_cycles: u64,
    /// `compute_floor_cycles / cycles_per_layer`: the fraction of the compute floor.
    pub compute_fraction: f64,
    /// Per op kind.
    pub ops: BTreeMap<String, OpRow>,
}

/// One op of a traced program: its cycles inside the program (from its decode to the next
/// descriptor's, so loads it leaves running and waits on earlier ones count where they fall)
/// beside the same op run alone.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineRow {
    /// Op name.
    pub op: &'static str,
    /// Cycles inside the program (to the trace's 16-cycle poll interval).
    pub in_program: u64,
    /// Cycles alone (SETUP, op, END, minus an empty program).
    pub alone: u64,
}

/// Traced programs (`--timeline`).
#[derive(Debug, Clone, Serialize)]
pub struct Timeline {
    /// The last prefill chunk's layers program.
    pub prefill: Vec<TimelineRow>,
    /// The last decode step's layers program.
    pub decode: Vec<TimelineRow>,
}

/// Whole-model estimates from the per-layer figures.
#[derive(Debug, Clone, Serialize)]
pub struct Estimates {
    /// Decoder layers of the full model.
    pub model_layers: usize,
    /// Clock the cycles are converted at.
    pub clock_mhz: f64,
    /// LM head cycles per token used in the estimates.
    pub lm_head_cycles: u64,
    /// `simulated` or `DRAM roofline` (not simulated).
    pub lm_head_source: &'static str,
    /// Time to first token for `prompt_len` tokens, seconds.
    pub ttft_s: f64,
    /// Decode tokens per second at the measured context.
    pub decode_tok_s: f64,
}

/// The report.
#[derive(Debug, Clone, Serialize)]
pub struct SimReport {
    /// Config name.
    pub config: String,
    /// Board.
    pub board: String,
    /// Simulated decoder layers.
    pub layers: usize,
    /// DRAM bytes per kernel cycle of the board (bandwidth / clock).
    pub dram_bytes_per_cycle: f64,
    /// Tokens per prefill program (the device's chunk).
    pub chunk_tokens: usize,
    /// Decode.
    pub decode: DecodeFigures,
    /// Prefill.
    pub prefill: PrefillFigures,
    /// Estimates for the whole model.
    pub estimates: Estimates,
    /// Per-op cycles inside the programs, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Timeline>,
}

/// The decoder-layer ops of a traced program beside the same ops alone (both in program
/// order; the program's SETUP, EMBED and END are not layer ops).
fn timeline_rows(m: &ChunkMeasure) -> Vec<TimelineRow> {
    let layer_op = |op: &Op| !matches!(op, Op::Setup(_) | Op::End | Op::Embed { .. } | Op::LmHead { .. });
    let alone = m.ops.iter().filter(|(op, _)| layer_op(op));
    m.timeline
        .iter()
        .filter(|(op, _)| layer_op(op))
        .zip(alone)
        .map(|((op, cycles), (_, c))| TimelineRow { op: op_name(op), in_program: *cycles, alone: c["cycles"] })
        .collect()
}

fn op_name(op: &Op) -> &'static str {
    match op {
        Op::End => "END",
        Op::Setup(_) => "SETUP",
        Op::Embed { .. } => "EMBED",
        Op::NormQuant { .. } => "NORM_QUANT",
        Op::Linear { .. } => "LINEAR",
        Op::RopeKv { .. } => "ROPE_KV",
        Op::Attention { .. } => "ATTENTION",
        Op::FfnAct { .. } => "FFN_ACT",
        Op::LmHead { .. } => "LM_HEAD",
    }
}

fn add(rows: &mut BTreeMap<String, OpRow>, op: &Op, c: &Counters) {
    let r = rows.entry(op_name(op).to_string()).or_default();
    r.count += 1;
    r.cycles += c["cycles"];
    r.dram_read_bytes += c["dram_read_bytes"];
    r.dram_write_bytes += c["dram_write_bytes"];
}

/// Run the measurement; `progress` sees (ops done, ops total).
pub fn run(req: &SimRequest, mut progress: impl FnMut(u64, u64)) -> Result<SimReport> {
    let full = &req.cfg;
    if req.layers == 0 || req.prompt_len == 0 {
        bail!("--layers and --prompt-len must be at least 1");
    }
    if req.prompt_len + req.decode_steps.max(1) > full.model.max_seq {
        bail!(
            "--prompt-len {} plus {} decode steps exceed the context length max_seq = {} of config {}",
            req.prompt_len,
            req.decode_steps.max(1),
            full.model.max_seq,
            full.name
        );
    }
    let mut cfg = full.clone();
    cfg.model.layers = req.layers;
    cfg.validate().map_err(|(field, rule)| anyhow::anyhow!("--layers {}: {field}: {rule}", req.layers))?;
    let weights = model::tiny::random_weights(&cfg, 0x5eed);
    let quant = QuantModel::from_float(&cfg, &weights);
    let shape = DeviceShape::of(&cfg, &hdl::TlmmParams::from_config(&cfg));
    let mem = 1u64 << 34;
    let mut rt = Runtime::new(SimDevice::for_config(&cfg, mem, None)?, &quant, shape)?;
    rt.device().trace_descriptors(req.timeline);
    let prompt: Vec<u32> = (0..req.prompt_len as u32).map(|i| (i * 7919 + 13) % cfg.model.vocab as u32).collect();
    let chunks: Vec<&[u32]> = prompt.chunks(shape.chunk_tokens).collect();
    let steps = req.decode_steps.max(1);
    let total = (chunks.len() + steps) as u64;
    let mut done = 0;
    // Prefill: every chunk's layers as one program, the last chunk's ops alone too.
    let (mut prefill_rows, mut pre_layers, mut pre_embed) = (BTreeMap::new(), 0, 0);
    let mut prefill_timeline = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let last = i + 1 == chunks.len();
        let m = rt.measure_chunk(chunk, last, req.lm_head && last)?;
        if last && req.timeline {
            prefill_timeline = timeline_rows(&m);
        }
        pre_layers += m.layers["cycles"];
        pre_embed += m.embed["cycles"];
        for (op, c) in &m.ops {
            add(&mut prefill_rows, op, c);
        }
        done += 1;
        progress(done, total);
    }
    // Decode: the last step measured.
    let mut decode_rows = BTreeMap::new();
    let mut last_step = None;
    for step in 0..steps {
        let last = step + 1 == steps;
        let m = rt.measure_chunk(&[(step as u32 * 31 + 7) % cfg.model.vocab as u32], last, req.lm_head && last)?;
        if last {
            for (op, c) in &m.ops {
                add(&mut decode_rows, op, c);
            }
            last_step = Some(m);
        }
        done += 1;
        progress(done, total);
    }
    let last_step = last_step.expect("at least one decode step");

    let b = &cfg.board;
    let bytes_per_cycle = b.bandwidth_gbs * 1e9 / (b.clock_mhz * 1e6);
    let layers = req.layers as u64;
    let context = rt.position();
    let kvh = cfg.model.kv_heads as u64;
    // Attention reads every cached key and value (codes and scales) once; ROPE_KV writes one entry.
    let kv_bytes = 2 * (context as u64) * (kvh * cfg.model.head_dim as u64 + 4 * kvh);
    let layer_bytes = rt.layer_weight_bytes() + kv_bytes;
    let dec_cycles = last_step.layers["cycles"] / layers;
    let dec_bytes = (last_step.layers["dram_read_bytes"] + last_step.layers["dram_write_bytes"]) / layers;
    let tl = shape.tl;
    let lookups: u64 = req.prompt_len as u64
        * hdl::linear_shapes(&cfg).iter().map(|&(_, k, n)| (n * k.div_ceil(tl.g)) as u64).sum::<u64>();
    let floor = lookups.div_ceil(tl.lookups_per_cycle() as u64);
    let pre_cycles = pre_layers / layers;
    let head_bytes = crate::perfmodel::lm_head_bytes(&cfg);
    let (lm_head_cycles, lm_head_source) = match decode_rows.get("LM_HEAD") {
        Some(r) => (r.cycles, "simulated"),
        None => ((head_bytes as f64 / bytes_per_cycle).ceil() as u64, "DRAM roofline"),
    };
    let clock = b.clock_mhz * 1e6;
    let ml = full.model.layers as u64;
    let ttft_cycles = pre_embed + pre_cycles * ml + lm_head_cycles;
    let tok_cycles = last_step.embed["cycles"] + dec_cycles * ml + lm_head_cycles;
    Ok(SimReport {
        config: full.name.clone(),
        board: b.name.clone(),
        layers: req.layers,
        dram_bytes_per_cycle: bytes_per_cycle,
        chunk_tokens: shape.chunk_tokens,
        decode: DecodeFigures {
            context,
            cycles_per_layer: dec_cycles,
            dram_bytes_per_layer: dec_bytes,
            layer_bytes,
            roofline_fraction: layer_bytes as f64 / (dec_cycles.max(1) as f64 * bytes_per_cycle),
            ops: decode_rows,
        },
        prefill: PrefillFigures {
            prompt_len: req.prompt_len,
            cycles_per_layer: pre_cycles,
            lookups_per_layer: lookups,
            compute_floor_cycles: floor,
            compute_fraction: floor as f64 / pre_cycles.max(1) as f64,
            ops: prefill_rows,
        },
        estimates: Estimates {
            model_layers: full.model.layers,
            clock_mhz: b.clock_mhz,
            lm_head_cycles,
            lm_head_source,
            ttft_s: ttft_cycles as f64 / clock,
            decode_tok_s: clock / tok_cycles.max(1) as f64,
        },
        timeline: req.timeline.then(|| Timeline { prefill: prefill_timeline, decode: timeline_rows(&last_step) }),
    })
}

/// The report as text.
pub fn text(r: &SimReport) -> String {
    let mut s = format!(
        "trit sim: config `{}` on {} ({} simulated layer(s), {:.1} DRAM bytes/cycle)\n",
        r.config, r.board, r.layers, r.dram_bytes_per_cycle
    );
    let table = |s: &mut String, title: &str, rows: &BTreeMap<String, OpRow>| {
        let total: u64 = rows.values().map(|r| r.cycles).sum();
        s.push_str(&format!(
            "  {title}\n    {:<11} {:>5} {:>12} {:>7} {:>14} {:>14}\n",
            "op", "count", "cycles", "share", "DRAM read B", "DRAM write B"
        ));
        for (k, v) in rows {
            s.push_str(&format!(
                "    {k:<11} {:>5} {:>12} {:>6.1}% {:>14} {:>14}\n",
                v.count,
                v.cycles,
                100.0 * v.cycles as f64 / total.max(1) as f64,
                v.dram_read_bytes,
                v.dram_write_bytes
            ));
        }
    };
    let p = &r.prefill;
    let last_chunk = p.ops.get("EMBED").map(|_| p.prompt_len - (p.prompt_len - 1) / r.chunk_tokens * r.chunk_tokens);
    table(
        &mut s,
        &format!(
            "prefill of {} tokens -- each op of the last chunk ({} tokens) run alone:",
            p.prompt_len,
            last_chunk.unwrap_or(0)
        ),
        &p.ops,
    );
    s.push_str(&format!(
        "    per layer, one program (weight loads overlap the other ops): {} cycles; compute floor {} cycles ({} lookups) -> {:.1}% of the compute floor\n",
        p.cycles_per_layer,
        p.compute_floor_cycles,
        p.lookups_per_layer,
        100.0 * p.compute_fraction
    ));
    let d = &r.decode;
    table(&mut s, &format!("decode at context {} -- each op run alone:", d.context), &d.ops);
    s.push_str(&format!(
        "    per layer, one program: {} cycles, {} DRAM bytes moved, {} needed -> {:.1}% of the DRAM roofline\n",
        d.cycles_per_layer,
        d.dram_bytes_per_layer,
        d.layer_bytes,
        100.0 * d.roofline_fraction
    ));
    if let Some(t) = &r.timeline {
        for (title, rows) in [("last prefill chunk", &t.prefill), ("last decode step", &t.decode)] {
            s.push_str(&format!(
                "  timeline of the {title}'s program (cycles from each op's decode to the next one's):\n    {:<11} {:>12} {:>12}\n",
                "op", "in program", "alone"
            ));
            for row in rows {
                s.push_str(&format!("    {:<11} {:>12} {:>12}\n", row.op, row.in_program, row.alone));
            }
        }
    }
    let e = &r.estimates;
    s.push_str(&format!(
        "  estimates for all {} layers at {} MHz (LM head: {} cycles, {}): TTFT {:.3} s, decode {:.1} tok/s\n",
        e.model_layers, e.clock_mhz, e.lm_head_cycles, e.lm_head_source, e.ttft_s, e.decode_tok_s
    ));
    s
}
