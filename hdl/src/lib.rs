//! trit-hdl: the generator. One [`model::Config`] in; out come the RTL (hand-written cores from
//! `hdl/rtl/` plus a generated top level that fixes their parameters), a `filelist.f` in
//! dependency order and a `manifest.json` with every parameter and derived number the host,
//! the simulator and the reports need. Output is a pure function of the config: the same config
//! gives byte-identical files.
#![deny(missing_docs)]

pub mod isa;
pub mod regmap;
mod rom;
mod top;

use model::pack::Tlmm;
use model::Config;
use serde::Serialize;
use std::path::Path;

pub use top::{axi_master_ports, kernel_top, mem_port_prefix, tlmm_top, KERNEL_NAME, TOP_NAME};

/// The hand-written cores, in dependency order (name, text). Compiled into the binary so the
/// generator works from any directory.
pub const CORES: &[(&str, &str)] = &[
    ("trit_num.sv", include_str!("../rtl/trit_num.sv")),
    ("tlmm_sum_tree.sv", include_str!("../rtl/tlmm_sum_tree.sv")),
    ("tlmm_lookup.sv", include_str!("../rtl/tlmm_lookup.sv")),
    ("tlmm_weight_buffer.sv", include_str!("../rtl/tlmm_weight_buffer.sv")),
    ("read_ahead.sv", include_str!("../rtl/read_ahead.sv")),
    ("tlmm_core.sv", include_str!("../rtl/tlmm_core.sv")),
    ("tlmm_unit.sv", include_str!("../rtl/tlmm_unit.sv")),
    ("requant_round.sv", include_str!("../rtl/requant_round.sv")),
    ("requant.sv", include_str!("../rtl/requant.sv")),
    ("stream_repack.sv", include_str!("../rtl/stream_repack.sv")),
    ("fp32_round.sv", include_str!("../rtl/fp32_round.sv")),
    ("fp32_scalar.sv", include_str!("../rtl/fp32_scalar.sv")),
    ("op_linear.sv", include_str!("../rtl/op_linear.sv")),
    ("axi_rd_master.sv", include_str!("../rtl/axi_rd_master.sv")),
    ("axi_wr_master.sv", include_str!("../rtl/axi_wr_master.sv")),
    ("axil_ctrl.sv", include_str!("../rtl/axil_ctrl.sv")),
    ("op_embed.sv", include_str!("../rtl/op_embed.sv")),
    ("elem_reader.sv", include_str!("../rtl/elem_reader.sv")),
    ("elem_writer.sv", include_str!("../rtl/elem_writer.sv")),
    ("mul_pieces.sv", include_str!("../rtl/mul_pieces.sv")),
    ("vec_quant.sv", include_str!("../rtl/vec_quant.sv")),
    ("exp2_neg.sv", include_str!("../rtl/exp2_neg.sv")),
    ("sigmoid_pipe.sv", include_str!("../rtl/sigmoid_pipe.sv")),
    ("op_vector.sv", include_str!("../rtl/op_vector.sv")),
    ("kv_layout.sv", include_str!("../rtl/kv_layout.sv")),
    ("op_rope_kv.sv", include_str!("../rtl/op_rope_kv.sv")),
    ("row_addr.sv", include_str!("../rtl/row_addr.sv")),
    ("op_attention.sv", include_str!("../rtl/op_attention.sv")),
    ("op_lm_head.sv", include_str!("../rtl/op_lm_head.sv")),
    ("trit_kernel_core.sv", include_str!("../rtl/trit_kernel_core.sv")),
];

/// Port direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dir {
    /// Into the design.
    Input,
    /// Out of the design.
    Output,
}

/// One port of a generated top level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Port {
    /// Name in the RTL.
    pub name: String,
    /// Width in bits.
    pub width: usize,
    /// Direction.
    pub dir: Dir,
}

/// An on-chip memory and where it should map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Memory {
    /// Instance path.
    pub name: String,
    /// `uram` or `bram`.
    pub kind: &'static str,
    /// Word width, bits.
    pub width: usize,
    /// Words.
    pub depth: usize,
    /// Primitives at the ideal mapping (URAM288 72 x 4096, RAMB36 72 x 512).
    pub primitives: usize,
}

/// The parameters of the TLMM engine, all derived from the config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[allow(non_snake_case)]
pub struct TlmmParams {
    /// Activations per group.
    pub G: usize,
    /// Tables per step.
    pub TABLES: usize,
    /// Output rows per cycle.
    pub COLS: usize,
    /// Table entry bits.
    pub ENTRY_W: usize,
    /// Accumulator bits.
    pub ACC_W: usize,
    /// Tokens sharing one weight fetch.
    pub MAX_TOKENS: usize,
    /// Largest N / COLS.
    pub MAX_BLOCKS: usize,
    /// Largest ceil(K / (G * TABLES)).
    pub MAX_STEPS: usize,
    /// Register stages after the lookup sums.
    pub PIPE: usize,
    /// Weight buffer words.
    pub WBUF_DEPTH: usize,
}

impl TlmmParams {
    /// Derive from a config: the largest N and K over the decoder's linear layers.
    pub fn from_config(cfg: &Config) -> TlmmParams {
        let tl = Tlmm::from_config(cfg);
        let m = &cfg.model;
        let n_max = m.hidden.max(m.ffn);
        let k_max = m.hidden.max(m.ffn);
        TlmmParams {
            G: tl.g,
            TABLES: tl.tables,
            COLS: tl.cols,
            ENTRY_W: cfg.table_entry_bits() as usize,
            ACC_W: tl.acc_bits,
            MAX_TOKENS: cfg.engine.prefill_tokens,
            MAX_BLOCKS: tl.blocks(n_max),
            MAX_STEPS: tl.steps(k_max),
            PIPE: cfg.engine.pipeline_stages,
            WBUF_DEPTH: cfg.engine.weight_buffer_beats,
        }
    }

    /// `(name, value)` pairs in declaration order.
    pub fn pairs(&self) -> Vec<(&'static str, usize)> {
        vec![
            ("G", self.G),
            ("TABLES", self.TABLES),
            ("COLS", self.COLS),
            ("ENTRY_W", self.ENTRY_W),
            ("ACC_W", self.ACC_W),
            ("MAX_TOKENS", self.MAX_TOKENS),
            ("MAX_BLOCKS", self.MAX_BLOCKS),
            ("MAX_STEPS", self.MAX_STEPS),
            ("PIPE", self.PIPE),
            ("WBUF_DEPTH", self.WBUF_DEPTH),
        ]
    }

    /// The engine shape in `model::pack` terms.
    pub fn tlmm(&self) -> Tlmm {
        Tlmm { g: self.G, tables: self.TABLES, cols: self.COLS, acc_bits: self.ACC_W }
    }
}

/// The kernel beyond the TLMM engine: the largest model its vector and attention engines hold
/// on chip (row, head and score buffers; within them the kernel is model-agnostic, beyond them
/// an op stops with ERROR code 4) and its AXI master ports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[allow(non_snake_case)]
pub struct KernelShape {
    /// Longest vector row: max(hidden, ffn, heads x head_dim).
    pub VEC_DEPTH: usize,
    /// Longest hidden row (the LM head's input; its buffers need no more than this).
    pub MAX_HIDDEN: usize,
    /// Largest head dimension.
    pub MAX_HEAD_DIM: usize,
    /// Most query heads.
    pub MAX_HEADS: usize,
    /// Longest context (attention score buffer).
    pub MAX_SEQ: usize,
    /// AXI4 master ports: `m_axi_gmem0` serves every engine, all of them together stream the
    /// weights of a linear layer. The board's `axi_ports`, at most [`MAX_MEM_PORTS`].
    pub MEM_PORTS: usize,
    /// Prefill attention: queries per pass over the keys (`engine.attention_queries`).
    pub ATTN_QUERIES: usize,
    /// Memory ports the attention engine streams over (`engine.attention_ports`, default all):
    /// `m_axi_gmem0` and the first ATTN_PORTS-1 weight ports.
    pub ATTN_PORTS: usize,
    /// Bits per LM head code (`quant.lm_head`: 8 or 4).
    pub HEAD_BITS: usize,
}

/// Most AXI master ports the kernel uses (`model::config::MAX_MEM_PORTS`).
pub const MAX_MEM_PORTS: usize = model::config::MAX_MEM_PORTS;

impl KernelShape {
    /// The limits of a config's model.
    pub fn from_config(cfg: &Config) -> KernelShape {
        let m = &cfg.model;
        let ports = (cfg.board.axi_ports as usize).clamp(1, MAX_MEM_PORTS);
        KernelShape {
            VEC_DEPTH: m.hidden.max(m.ffn).max(m.heads * m.head_dim),
            MAX_HIDDEN: m.hidden,
            MAX_HEAD_DIM: m.head_dim,
            MAX_HEADS: m.heads,
            MAX_SEQ: m.max_seq,
            MEM_PORTS: ports,
            ATTN_QUERIES: cfg.engine.attention_queries,
            ATTN_PORTS: cfg.engine.attention_ports.unwrap_or(ports).clamp(1, ports),
            HEAD_BITS: cfg.quant.lm_head.bits() as usize,
        }
    }

    /// Small limits for designs generated from TLMM parameters alone (engine tests, benches):
    /// the TLMM's own sizes for rows, a small attention (query blocks of two where prefill has
    /// several tokens).
    pub fn for_tlmm(p: &TlmmParams) -> KernelShape {
        let rows = (p.MAX_BLOCKS * p.COLS).max(p.MAX_STEPS * p.G * p.TABLES);
        KernelShape {
            VEC_DEPTH: rows,
            MAX_HIDDEN: rows,
            MAX_HEAD_DIM: 64,
            MAX_HEADS: 4,
            MAX_SEQ: 64,
            MEM_PORTS: 1,
            ATTN_QUERIES: p.MAX_TOKENS.clamp(1, 2),
            ATTN_PORTS: 1,
            HEAD_BITS: 8,
        }
    }

    /// `(name, value)` pairs in declaration order.
    pub fn pairs(&self) -> Vec<(&'static str, usize)> {
        vec![
            ("VEC_DEPTH", self.VEC_DEPTH),
            ("MAX_HIDDEN", self.MAX_HIDDEN),
            ("MAX_HEAD_DIM", self.MAX_HEAD_DIM),
            ("MAX_HEADS", self.MAX_HEADS),
            ("MAX_SEQ", self.MAX_SEQ),
            ("MEM_PORTS", self.MEM_PORTS),
            ("ATTN_QUERIES", self.ATTN_QUERIES),
            ("ATTN_PORTS", self.ATTN_PORTS),
            ("HEAD_BITS", self.HEAD_BITS),
        ]
    }
}

/// The generated design: files, top-level ports and the manifest.
#[derive(Debug, Clone)]
pub struct Design {
    /// The TLMM unit's top-level module name (engine tests, synthesis of the engine).
    pub top: String,
    /// The Vitis RTL kernel's top-level module name.
    pub kernel: String,
    /// The kernel's ports.
    pub kernel_ports: Vec<Port>,
    /// The kernel's memory bus width, bits.
    pub bus_bits: usize,
    /// RTL files in dependency order: (file name, contents).
    pub files: Vec<(String, String)>,
    /// Ports of the top level.
    pub ports: Vec<Port>,
    /// Engine parameters.
    pub params: TlmmParams,
    /// Sizes the vector and attention engines hold.
    pub limits: KernelShape,
    /// On-chip memories.
    pub memories: Vec<Memory>,
    /// `manifest.json` contents.
    pub manifest: serde_json::Value,
}

/// Generator version recorded in every emitted file and the manifest.
pub const GENERATOR: &str = concat!("trit-hdl ", env!("CARGO_PKG_VERSION"));

/// Generate the design for `cfg`.
pub fn generate(cfg: &Config) -> Design {
    let mut d = generate_for_bus(
        &TlmmParams::from_config(cfg),
        &KernelShape::from_config(cfg),
        &format!("config `{}` (board {})", cfg.name, cfg.board.name),
        cfg.bus_bits(),
    );
    let extra = serde_json::json!({
        "config": cfg.name,
        "board": cfg.board.name,
        "part": cfg.board.part,
        "clock_mhz": cfg.board.clock_mhz,
        "weight_schedule": weight_schedule(cfg, &d),
    });
    if let (Some(m), serde_json::Value::Object(e)) = (d.manifest.as_object_mut(), extra) {
        m.extend(e);
    }
    d
}

/// The decoder layer's linear layers as (name, K inputs, N outputs), in program order.
pub fn linear_shapes(cfg: &Config) -> [(&'static str, usize, usize); 7] {
    let m = &cfg.model;
    let (h, f, qd, kvd) = (m.hidden, m.ffn, m.heads * m.head_dim, m.kv_heads * m.head_dim);
    [("q", h, qd), ("k", h, kvd), ("v", h, kvd), ("o", qd, h), ("gate", h, f), ("up", h, f), ("down", f, h)]
}

/// How each of the decoder's linear layers streams through the weight buffer (the schedule
/// `op_linear` follows, computed here from the same rule, `model::pack::Tlmm::chunks`): whether
/// it is double-buffered, and per chunk its blocks, its load cycles at one bus word per port per
/// cycle, and its run cycles per token (one weight beat per token and cycle).
pub fn weight_schedule(cfg: &Config, d: &Design) -> serde_json::Value {
    let tl = d.params.tlmm();
    let depth = d.params.WBUF_DEPTH;
    let words_per_beat = tl.beat_stride(d.bus_bits / 8) / (d.bus_bits / 8);
    let rows: Vec<serde_json::Value> = linear_shapes(cfg)
        .iter()
        .map(|&(name, k, n)| {
            let (steps, blocks) = (tl.steps(k), tl.blocks(n));
            let chunks = tl.chunks(n, k, depth);
            let sizes: Vec<usize> = chunks.iter().map(|&(_, size)| size).collect();
            serde_json::json!({
                "linear": name,
                "k": k,
                "n": n,
                "steps": steps,
                "blocks": blocks,
                "double_buffered": tl.double_buffered(n, k, depth),
                "chunk_blocks": sizes,
                "load_cycles": sizes.iter().map(|b| (b * steps * words_per_beat).div_ceil(d.limits.MEM_PORTS)).collect::<Vec<_>>(),
                // A pass over a chunk takes its blocks' cycles, or a table fill's if longer.
                "run_cycles_per_token": sizes.iter().map(|b| b.max(&tl.fill_cycles()) * steps).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::json!({ "weight_ports": d.limits.MEM_PORTS, "bus_words_per_beat": words_per_beat, "linears": rows })
}

/// Generate the TLMM design for explicit parameters (128-bit kernel bus); `origin` says where
/// they came from (it goes into the file headers and the manifest).
pub fn generate_tlmm(params: &TlmmParams, origin: &str) -> Design {
    generate_for_bus(params, &KernelShape::for_tlmm(params), origin, 128)
}

fn generate_for_bus(params: &TlmmParams, limits: &KernelShape, origin: &str, bus_bits: usize) -> Design {
    let params = params.clone();
    let tl = params.tlmm();
    let (top_text, ports) = tlmm_top(origin, &params);
    let (kernel_text, kernel_ports) = kernel_top(origin, &params, limits, bus_bits);
    let mut files: Vec<(String, String)> = CORES.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect();
    files.push(("exp2_rom.sv".to_string(), rom::exp2_rom(origin)));
    files.push((format!("{TOP_NAME}.sv"), top_text));
    files.push((format!("{KERNEL_NAME}.sv"), kernel_text));
    let memories = vec![
        Memory {
            name: format!("{TOP_NAME}.u_unit.u_wbuf.mem"),
            kind: "uram",
            width: tl.wgt_beat_bits(),
            depth: params.WBUF_DEPTH,
            primitives: tl.wgt_beat_bits().div_ceil(72) * params.WBUF_DEPTH.div_ceil(4096),
        },
        Memory {
            name: format!("{TOP_NAME}.u_unit.u_core.acc_mem"),
            kind: "bram",
            width: tl.out_beat_bits(),
            depth: params.MAX_TOKENS * params.MAX_BLOCKS,
            primitives: tl.out_beat_bits().div_ceil(72) * (params.MAX_TOKENS * params.MAX_BLOCKS).div_ceil(512),
        },
    ];
    let manifest = serde_json::json!({
        "generator": GENERATOR,
        "origin": origin,
        "top": TOP_NAME,
        "kernel": {
            "top": KERNEL_NAME,
            "bus_bits": bus_bits,
            "memory_ports": limits.MEM_PORTS,
            "ports": kernel_ports,
            "limits": limits,
        },
        "files": files.iter().map(|(n, _)| format!("rtl/{n}")).collect::<Vec<_>>(),
        "tlmm": {
            "parameters": params,
            "entries": tl.entries(),
            "code_bits": tl.code_bits(),
            "act_beat_bits": tl.act_beat_bits(),
            "wgt_beat_bits": tl.wgt_beat_bits(),
            "out_beat_bits": tl.out_beat_bits(),
            "lookups_per_cycle": tl.lookups_per_cycle(),
            "pipeline_latency": params.PIPE + 3,
        },
        "memories": memories,
        "ports": ports,
        "registers": regmap::registers(),
        "isa": { "descriptor_bytes": isa::DESC_BYTES, "row_align": isa::ROW_ALIGN },
    });
    Design {
        top: TOP_NAME.to_string(),
        kernel: KERNEL_NAME.to_string(),
        kernel_ports,
        bus_bits,
        files,
        ports,
        params,
        limits: limits.clone(),
        memories,
        manifest,
    }
}

impl Design {
    /// Write `dir/rtl/*`, `dir/filelist.f` (one source per line, dependency order, relative to
    /// `dir`), `dir/manifest.json` and `dir/regmap.md`.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let rtl = dir.join("rtl");
        std::fs::create_dir_all(&rtl)?;
        let mut filelist = String::new();
        for (name, text) in &self.files {
            std::fs::write(rtl.join(name), text)?;
            filelist.push_str(&format!("rtl/{name}\n"));
        }
        std::fs::write(dir.join("filelist.f"), filelist)?;
        std::fs::write(dir.join("regmap.md"), regmap::markdown())?;
        std::fs::write(dir.join("manifest.json"), serde_json::to_string_pretty(&self.manifest)? + "\n")
    }

    /// One-paragraph summary for the CLI.
    pub fn summary(&self) -> String {
        let p = &self.params;
        let tl = p.tlmm();
        let mut s = format!(
            "{}: TLMM G={} ({} stored entries, {}-bit codes), {} tables x {} rows = {} lookups/cycle, \
             up to {} tokens per weight fetch, ENTRY_W={}, ACC_W={}, PIPE={}\n",
            self.top,
            p.G,
            tl.entries(),
            tl.code_bits(),
            p.TABLES,
            p.COLS,
            tl.lookups_per_cycle(),
            p.MAX_TOKENS,
            p.ENTRY_W,
            p.ACC_W,
            p.PIPE
        );
        for m in &self.memories {
            s.push_str(&format!(
                "  {} ({}): {} x {} bits, {} primitives\n",
                m.name, m.kind, m.depth, m.width, m.primitives
            ));
        }
        s.push_str(&format!("  {} files, {} top-level ports", self.files.len(), self.ports.len()));
        s
    }
}
