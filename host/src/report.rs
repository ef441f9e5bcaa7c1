//! `trit report`: the numbers before a bitstream. Synthesizes the generated kernel with yosys
//! (`synth_xilinx -family xcup`) one engine at a time, checks that the weight buffer became
//! URAM, measures each engine's logic depth, and sets the totals against the board's budget;
//! then projects clock, decode tokens/s and TTFT with the calibrated performance model
//! ([`crate::perfmodel`]) and compares with TeLLMe v2 and AccLLM.
//!
//! Whole-kernel synthesis takes many minutes, so the kernel is cut at its engines: yosys
//! elaborates the whole kernel (which fixes every engine's parameters as the kernel sets them),
//! then each engine is re-rooted and synthesized alone, and the kernel's own logic with the
//! engines as black boxes. Each result is cached in the build directory by a hash of the sources
//! and the script, so a second report is instant and an RTL change re-synthesizes only what
//! changed... in practice every unit, since the hash covers all sources.

use crate::perfmodel::{self, Projection};
use crate::synth::{self, Depth, Resources, UnitSynth};
use anyhow::{bail, Context, Result};
use model::Config;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// What `trit report` found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Config name.
    pub config: String,
    /// Board name.
    pub board: String,
    /// Total resources of the kernel (sum over units x instances).
    pub resources: Resources,
    /// The board's resources.
    pub budget: Resources,
    /// Per synthesized unit.
    pub units: Vec<UnitSynth>,
    /// Memory inference checks (all passed, else the report is an error).
    pub checks: Vec<String>,
    /// The unit with the longest path and its depth.
    pub critical: (String, Depth),
    /// Projected figures.
    pub projected: Projection,
}

/// The published figures `trit report` compares against (docs/papers: TeLLMe v2 arXiv
/// 2510.15926 and AccLLM arXiv 2505.03745).
#[derive(Debug, Clone, Serialize)]
pub struct Published {
    /// Design.
    pub name: &'static str,
    /// Board.
    pub board: &'static str,
    /// Model.
    pub model: &'static str,
    /// Clock, MHz.
    pub clock_mhz: f64,
    /// Decode tokens/s.
    pub decode_tok_s: f64,
    /// TTFT at 64 and 128 prompt tokens, seconds (None: not published).
    pub ttft_s: Option<(f64, f64)>,
    /// LUT, DSP, BRAM36, URAM (None: not published).
    pub resources: Option<(f64, f64, f64, f64)>,
}

/// TeLLMe v2 and AccLLM as published.
pub const PUBLISHED: [Published; 2] = [
    Published {
        name: "TeLLMe v2",
        board: "kv260",
        model: "BitNet 0.73B",
        clock_mhz: 250.0,
        decode_tok_s: 25.0,
        ttft_s: Some((0.45, 0.96)),
        resources: Some((98_303.0, 610.0, 98.5, 60.0)),
    },
    Published {
        name: "AccLLM",
        board: "u280",
        model: "Llama-2-7B W2A8KV4",
        clock_mhz: 225.0,
        decode_tok_s: 164.0,
        ttft_s: None,
        resources: None,
    },
];

/// The board's budget as [`Resources`].
pub fn budget(cfg: &Config) -> Resources {
    let b = &cfg.board;
    Resources { lut: b.lut as f64, ff: b.ff as f64, bram36: b.bram36 as f64, uram: b.uram as f64, dsp: b.dsp as f64 }
}

/// Generate the design into `dir` (rtl/, filelist.f, manifest.json).
pub fn write_design(cfg: &Config, dir: &Path) -> Result<hdl::Design> {
    let d = hdl::generate(cfg);
    d.write(dir).with_context(|| format!("writing the design to {}", dir.display()))?;
    Ok(d)
}

/// (derived module, name, instances, index into the hierarchy) of one engine.
pub type KernelUnit = (String, String, u64, usize);

/// The units of a kernel: the engines (children of the kernel core) and the glue (the kernel
/// and its core with the engines as black boxes), as (derived module, name, instances, index
/// into the hierarchy).
/// Each engine's position in the hierarchy comes along (its sources are found from there).
pub fn kernel_units(dir: &Path, kernel: &str) -> Result<(Vec<KernelUnit>, Vec<synth::HierEntry>)> {
    let h = synth::hierarchy(dir, kernel)?;
    let core = h
        .iter()
        .position(|e| e.base == "trit_kernel_core")
        .with_context(|| format!("no trit_kernel_core under {kernel} in the yosys hierarchy"))?;
    let level = h[core].level;
    let mut units: Vec<KernelUnit> = Vec::new();
    for (i, e) in h.iter().enumerate().skip(core + 1).take_while(|(_, e)| e.level > level) {
        if e.level == level + 1 {
            units.push((e.derived.clone(), e.base.clone(), e.count, i));
        }
    }
    Ok((units, h))
}

/// Check that each memory the manifest puts in URAM comes out of yosys as URAM288 only: the
/// weight buffer (`tlmm_weight_buffer`) synthesized alone. An error names the cells found.
pub fn check_uram(
    dir: &Path,
    cache: &Path,
    design: &hdl::Design,
    hier: &[synth::HierEntry],
    elab_top: &str,
) -> Result<Vec<String>> {
    let mut checks = Vec::new();
    for m in design.memories.iter().filter(|m| m.kind == "uram") {
        let at = hier
            .iter()
            .position(|e| e.base == "tlmm_weight_buffer")
            .with_context(|| format!("memory {} is meant for URAM but no tlmm_weight_buffer was elaborated", m.name))?;
        let sources = synth::unit_sources(dir, hier, at)?;
        let u =
            synth::synth_unit(dir, cache, elab_top, &hier[at].derived, "tlmm_weight_buffer", 1, &[], Some(&sources))?;
        let uram = u.resources.uram;
        let bram = u.resources.bram36;
        let bits = (m.width * m.depth) as f64;
        // A URAM-mapped buffer needs a few LUTs for address/enable logic; a LUT-RAM one needs
        // about one LUT per 64 bits.
        let lut_limit = 64.0 + bits / 64.0 / 8.0;
        if uram < m.primitives as f64 || bram > 0.0 || u.lutram > 0.0 || u.resources.lut > lut_limit {
            bail!(
                "memory inference: {} ({} x {} bits) is meant for URAM ({} URAM288) but yosys mapped it to \
                 {} URAM288, {} RAMB36 equivalents, {} LUTs ({} as LUT-RAM): the weight buffer must carry \
                 (* ram_style = \"ultra\" *) and a URAM-compatible read/write pattern (hdl/rtl/tlmm_weight_buffer.sv)",
                m.name,
                m.depth,
                m.width,
                m.primitives,
                uram,
                bram,
                u.resources.lut,
                u.lutram
            );
        }
        checks.push(format!(
            "{} ({} x {} bits) -> {} URAM288 (expected {}), no BRAM, no LUT-RAM",
            m.name, m.depth, m.width, uram, m.primitives
        ));
    }
    Ok(checks)
}

/// Synthesize every unit of the kernel in `dir` (cached in `dir/reports/synth-cache`);
/// `progress` sees (unit name, done, total) before each unit.
pub fn synthesize(
    dir: &Path,
    design: &hdl::Design,
    mut progress: impl FnMut(&str, usize, usize),
) -> Result<(Vec<UnitSynth>, Vec<String>)> {
    let cache = dir.join("reports").join("synth-cache");
    let (units, hier) = kernel_units(dir, &design.kernel)?;
    let total = units.len() + 2;
    progress("tlmm_weight_buffer (URAM check)", 0, total);
    let checks = check_uram(dir, &cache, design, &hier, &design.kernel)?;
    let mut out = Vec::new();
    let engines: Vec<String> = units.iter().map(|u| u.0.clone()).collect();
    for (i, (derived, name, count, at)) in units.iter().enumerate() {
        progress(name, i + 1, total);
        let sources = synth::unit_sources(dir, &hier, *at)?;
        out.push(synth::synth_unit(dir, &cache, &design.kernel, derived, name, *count, &[], Some(&sources))?);
    }
    progress("kernel glue", total - 1, total);
    // The glue's key covers every file: the top levels carry every engine's parameters.
    out.push(synth::synth_unit(dir, &cache, &design.kernel, &design.kernel, "kernel glue", 1, &engines, None)?);
    Ok((out, checks))
}

/// One engine of `cfg`'s kernel (a unit name of the report table, e.g. `op_attention`)
/// synthesized alone in `dir`, through the same cache as [`report`]: for re-measuring the
/// engine being worked on without the hours of a whole report.
pub fn synthesize_unit(cfg: &Config, dir: &Path, unit: &str) -> Result<UnitSynth> {
    let design = write_design(cfg, dir)?;
    let cache = dir.join("reports").join("synth-cache");
    let (units, hier) = kernel_units(dir, &design.kernel)?;
    let Some((derived, name, count, at)) = units.iter().find(|u| u.1 == unit) else {
        let names: Vec<&str> = units.iter().map(|u| u.1.as_str()).collect();
        bail!("no unit `{unit}` in the kernel of {}; the units are: {}", cfg.name, names.join(", "));
    };
    let sources = synth::unit_sources(dir, &hier, *at)?;
    synth::synth_unit(dir, &cache, &design.kernel, derived, name, *count, &[], Some(&sources))
}

/// The table's header and one row per unit (resources times instances, logic depth).
pub fn unit_rows(units: &[UnitSynth]) -> String {
    let mut s = format!(
        "  {:<22} {:>4} {:>9} {:>9} {:>7} {:>5} {:>5} {:>6} {:>8} {:>8}\n",
        "unit", "inst", "LUT", "FF", "BRAM36", "URAM", "DSP", "levels", "path ns", "Fmax MHz"
    );
    for u in units {
        let x = u.resources.scaled(u.instances as f64);
        s.push_str(&format!(
            "  {:<22} {:>4} {:>9.0} {:>9.0} {:>7.1} {:>5.0} {:>5.0} {:>6} {:>8.2} {:>8.0}\n",
            u.name,
            u.instances,
            x.lut,
            x.ff,
            x.bram36,
            x.uram,
            x.dsp,
            u.depth.lut_levels,
            u.depth.path_ns,
            u.depth.fmax_mhz
        ));
    }
    s
}

/// The whole report for `cfg`, its design written to and synthesized in `dir`.
pub fn report(cfg: &Config, dir: &Path, progress: impl FnMut(&str, usize, usize)) -> Result<Report> {
    let design = write_design(cfg, dir)?;
    let (units, checks) = synthesize(dir, &design, progress)?;
    let resources = units.iter().fold(Resources::default(), |acc, u| acc.add(&u.resources.scaled(u.instances as f64)));
    let critical = units
        .iter()
        .max_by(|a, b| a.depth.path_ns.total_cmp(&b.depth.path_ns))
        .map(|u| (u.name.clone(), u.depth.clone()))
        .unwrap_or_default();
    let clock = cfg.board.clock_mhz.min(critical.1.fmax_mhz.max(1.0));
    let projected = perfmodel::project(cfg, clock);
    let r = Report {
        config: cfg.name.clone(),
        board: cfg.board.name.clone(),
        resources,
        budget: budget(cfg),
        units,
        checks,
        critical,
        projected,
    };
    let rep = dir.join("reports");
    std::fs::create_dir_all(&rep)?;
    std::fs::write(rep.join("resources.json"), serde_json::to_string_pretty(&json(&r))? + "\n")?;
    let points = sweep(cfg, &r.units, clock);
    plots(cfg, &r.projected, &points, &rep)?;
    Ok(r)
}

/// The machine form (`--json`, `reports/resources.json`).
pub fn json(r: &Report) -> serde_json::Value {
    let res = |x: &Resources| serde_json::json!({"lut": x.lut.round(), "ff": x.ff.round(), "bram36": x.bram36, "uram": x.uram.round(), "dsp": x.dsp.round()});
    let p = &r.projected;
    serde_json::json!({
        "config": r.config,
        "board": r.board,
        "resources": res(&r.resources),
        "budget": res(&r.budget),
        "utilization": r.resources.pairs().iter().zip(r.budget.pairs()).map(|((k, v), (_, b))| (k.to_string(), serde_json::json!(v / b))).collect::<serde_json::Map<_, _>>(),
        "units": r.units.iter().map(|u| serde_json::json!({
            "name": u.name,
            "instances": u.instances,
            "resources": res(&u.resources),
            "lutram": u.lutram,
            "lut_levels": u.depth.lut_levels,
            "path_ns": u.depth.path_ns,
            "fmax_mhz": u.depth.fmax_mhz,
            "path": u.depth.path,
            "path_sources": u.depth.sources,
            "next_paths": u.depth.next,
            "memories_as_registers": u.memories_as_registers,
            "synth_seconds": u.seconds,
        })).collect::<Vec<_>>(),
        "checks": r.checks,
        "critical_unit": r.critical.0,
        "projected": p.json(),
        "published": PUBLISHED,
    })
}

fn pct(v: f64, b: f64) -> f64 {
    100.0 * v / b.max(1e-9)
}

/// The report as text.
pub fn text(r: &Report) -> String {
    let mut s =
        format!("trit report: config `{}` on {} (yosys synth_xilinx -family xcup, per unit)\n\n", r.config, r.board);
    s.push_str(&unit_rows(&r.units));
    let t = &r.resources;
    let b = &r.budget;
    s.push_str(&format!(
        "  {:<22} {:>4} {:>9.0} {:>9.0} {:>7.1} {:>5.0} {:>5.0}\n",
        "total", "", t.lut, t.ff, t.bram36, t.uram, t.dsp
    ));
    s.push_str(&format!(
        "  {:<22} {:>4} {:>9.0} {:>9.0} {:>7.1} {:>5.0} {:>5.0}\n",
        "budget", "", b.lut, b.ff, b.bram36, b.uram, b.dsp
    ));
    s.push_str(&format!(
        "  {:<22} {:>4} {:>8.1}% {:>8.1}% {:>6.1}% {:>4.0}% {:>4.0}%\n",
        "used",
        "",
        pct(t.lut, b.lut),
        pct(t.ff, b.ff),
        pct(t.bram36, b.bram36),
        pct(t.uram, b.uram),
        pct(t.dsp, b.dsp)
    ));
    let over: Vec<String> = t
        .pairs()
        .iter()
        .zip(b.pairs())
        .filter(|((_, v), (_, bb))| *v > 0.9 * bb)
        .map(|((k, v), (_, bb))| format!("{k} {:.0}%", pct(*v, bb)))
        .collect();
    if !over.is_empty() {
        s.push_str(&format!("  over 90% of the board: {}\n", over.join(", ")));
    }
    s.push_str("\n  memory inference:\n");
    for c in &r.checks {
        s.push_str(&format!("    ok: {c}\n"));
    }
    for u in &r.units {
        if !u.memories_as_registers.is_empty() {
            s.push_str(&format!(
                "    note: {} keeps {} arrays in registers (a multiplexer per read): {}\n",
                u.name,
                u.memories_as_registers.len(),
                u.memories_as_registers.join(", ")
            ));
        }
    }
    let (cu, cd) = &r.critical;
    s.push_str(&format!(
        "\n  logic depth: the deepest unit is {cu}: {} LUT levels, {} cells, ~{:.2} ns -> about {:.0} MHz \
         (a delay-model estimate, not timing closure)\n{}",
        cd.lut_levels,
        cd.cells,
        cd.path_ns,
        cd.fmax_mhz,
        path_text(cd)
    ));
    s.push('\n');
    s.push_str(&perfmodel::text(&r.projected));
    s.push('\n');
    s.push_str(&comparison(&r.projected, Some(&r.resources)));
    s
}

/// The longest path's cells and the source lines they come from, two indented lines.
pub fn path_text(d: &Depth) -> String {
    let mut s = format!("    path: {}\n", abbreviate_path(&d.path));
    if !d.sources.is_empty() {
        s.push_str(&format!("    through: {}\n", d.sources.join(" > ")));
    }
    if !d.next.is_empty() {
        s.push_str("    next deepest (other lines):\n");
        for n in &d.next {
            s.push_str(&format!(
                "      {:.2} ns ({:.0} MHz): {}\n",
                n.path_ns,
                1000.0 / n.path_ns,
                n.sources.join(" > ")
            ));
        }
    }
    s
}

fn abbreviate_path(p: &[String]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < p.len() {
        let mut j = i;
        while j < p.len() && p[j] == p[i] {
            j += 1;
        }
        out.push(if j - i > 1 { format!("{} x{}", p[i], j - i) } else { p[i].clone() });
        i = j;
    }
    out.join(" > ")
}

/// The design's projected figures beside TeLLMe v2's and AccLLM's published ones.
pub fn comparison(p: &Projection, res: Option<&Resources>) -> String {
    let mut s = format!(
        "  {:<16} {:<7} {:>7} {:>10} {:>9} {:>9} {:>8} {:>6} {:>7} {:>5}\n",
        "design", "board", "MHz", "decode t/s", "TTFT(64)", "TTFT(128)", "LUT", "DSP", "BRAM36", "URAM"
    );
    let f = |v: Option<f64>, w: usize, prec: usize| match v {
        Some(v) => format!("{v:>w$.prec$}"),
        None => format!("{:>w$}", "-"),
    };
    s.push_str(&format!(
        "  {:<16} {:<7} {:>7.0} {:>10.1} {} {} {} {} {} {}\n",
        format!("trit ({})", p.config),
        p.board,
        p.clock_mhz,
        p.decode_tok_s,
        f(Some(p.ttft_s.0), 8, 3) + "s",
        f(Some(p.ttft_s.1), 8, 3) + "s",
        f(res.map(|r| r.lut), 8, 0),
        f(res.map(|r| r.dsp), 6, 0),
        f(res.map(|r| r.bram36), 7, 1),
        f(res.map(|r| r.uram), 5, 0),
    ));
    for q in &PUBLISHED {
        s.push_str(&format!(
            "  {:<16} {:<7} {:>7.0} {:>10.1} {} {} {} {} {} {}\n",
            q.name,
            q.board,
            q.clock_mhz,
            q.decode_tok_s,
            f(q.ttft_s.map(|t| t.0), 8, 3) + if q.ttft_s.is_some() { "s" } else { " " },
            f(q.ttft_s.map(|t| t.1), 8, 3) + if q.ttft_s.is_some() { "s" } else { " " },
            f(q.resources.map(|r| r.0), 8, 0),
            f(q.resources.map(|r| r.1), 6, 0),
            f(q.resources.map(|r| r.2), 7, 1),
            f(q.resources.map(|r| r.3), 5, 0),
        ));
    }
    s.push_str(
        "  (published figures: TeLLMe v2 arXiv 2510.15926, AccLLM arXiv 2505.03745 -- simulator, not on board)\n",
    );
    s
}

/// Default build directory of a config: `build/<name>`.
pub fn default_dir(cfg: &Config) -> PathBuf {
    PathBuf::from("build").join(&cfg.name)
}

// ---------------------------------------------------------------------------------------------
// Sweeps, plots and the fitter's resource estimate
// ---------------------------------------------------------------------------------------------

/// What each query of attention's block adds, as a share of a single-query engine's LUT, FF and
/// DSP: its quantizer, and per port and lane its dot product (half a DSP, two per multiply) and
/// value sum (two DSPs, a 64-bit accumulator row). Measured with yosys: one-port engines (one and
/// two queries: +49 % DSP, +34 % LUT, before the paired products); tellme-kv260's four-port
/// engine with its quantizers (one and four queries: 42.8 k -> 94.7 k LUTs, 368 -> 864 DSPs,
/// 11.3 k -> 29.9 k FFs: +40 %, +45 %, +55 % per query).
pub const ATTN_PER_QUERY: f64 = 0.5;

/// What each memory port attention streams over adds, as a share of a one-port engine's LUT, FF
/// and DSP: per port, a reader and LANES dot products and value sums per query. Measured with
/// yosys on tellme-kv260's engine at one query (session 17's RTL, 128-bit masters): one port
/// 16.0 k LUTs, 8.6 k FFs, 96 DSPs; four 36.7 k, 16.9 k, 269 (+43 %, +32 %, +60 % per port;
/// LUTs bind, so their share is the one used; 256-bit masters: 16.5 k and 37.8 k LUTs, +43 %).
/// Session 12's RTL gave 20.0 k / 26.6 k / 39.9 k LUTs for one, two and four ports (+33 %).
pub const ATTN_PER_PORT: f64 = 0.43;

/// The share of the linear engine's LUTs and FFs that does not scale with its lookups per cycle
/// (TABLES x COLS): the ports' beat multiplexer, the weight buffer's writes, control, the COLS
/// requantizer lanes and the accumulator memory's addressing. Measured with yosys on
/// tellme-kv260's engine (session 17's RTL): with 128-bit masters 28 x 16 lookups (8 tokens)
/// 42.8 k LUTs, 14 x 16 (4 tokens) 31.8 k -- a fixed share of 0.49; with 256-bit masters 28 x 16
/// 44.5 k, 21 x 8 32.1 k -- 0.56 (session 14's RTL gave 0.33: the lookups have shrunk since,
/// the fixed logic less, and the fit's 21 x 8 pick estimated at 88 % synthesized to 90.5 %).
/// FFs share less (0.36, 0.24): one share for both overestimates them, which does not bind.
pub const LINEAR_FIXED_SHARE: f64 = 0.52;

/// Resources of `cfg` estimated from a synthesized report of a related config (`base`, same
/// model and board): every unit as synthesized, except the linear engine (`op_linear`), whose
/// LUT and FF scale as `LINEAR_FIXED_SHARE + (1 - LINEAR_FIXED_SHARE) x` the ratio of lookups
/// per cycle (TABLES x COLS), whose DSPs (the requantizer lanes) scale with COLS and whose block
/// RAM scales with its accumulator memory (tokens x blocks); URAM is the weight buffer's exact
/// primitive count; the attention engine's LUT, FF and DSP scale as
/// `1 + ATTN_PER_QUERY * (queries - 1)` times `1 + ATTN_PER_PORT * (ports - 1)`.
/// A linear rule fitted to two or three synthesized points per unit, stated in docs/report.md;
/// `trit report` on the chosen config gives the real counts.
pub fn estimate_resources(base_cfg: &Config, base: &[UnitSynth], cfg: &Config) -> Resources {
    let (pb, pc) = (hdl::TlmmParams::from_config(base_cfg), hdl::TlmmParams::from_config(cfg));
    let lookups = (pc.TABLES * pc.COLS) as f64 / (pb.TABLES * pb.COLS) as f64;
    let lk = LINEAR_FIXED_SHARE + (1.0 - LINEAR_FIXED_SHARE) * lookups;
    let cols = pc.COLS as f64 / pb.COLS as f64;
    let block = |c: &Config| {
        let ports = hdl::KernelShape::from_config(c).ATTN_PORTS as f64;
        (1.0 + ATTN_PER_QUERY * (c.engine.attention_queries as f64 - 1.0)) * (1.0 + ATTN_PER_PORT * (ports - 1.0))
    };
    let aq = block(cfg) / block(base_cfg);
    let acc = (pc.MAX_TOKENS * pc.MAX_BLOCKS) as f64 / (pb.MAX_TOKENS * pb.MAX_BLOCKS) as f64;
    let uram = |c: &Config| {
        hdl::generate(c).memories.iter().filter(|m| m.kind == "uram").map(|m| m.primitives as f64).sum::<f64>()
    };
    let mut total = Resources::default();
    for u in base {
        let mut r = u.resources;
        if u.name == "op_linear" {
            r.lut *= lk;
            r.ff *= lk;
            r.dsp *= cols;
            r.bram36 *= acc.max(1.0);
            r.uram += uram(cfg) - uram(base_cfg);
        }
        if u.name == "op_attention" {
            r.lut *= aq;
            r.ff *= aq;
            r.dsp *= aq;
        }
        total = total.add(&r.scaled(u.instances as f64));
    }
    total
}

/// The synthesized units of `dir/reports/resources.json`'s run, from the synthesis cache (as
/// `trit report` left them).
pub fn load_units(dir: &Path) -> Result<Vec<UnitSynth>> {
    let p = dir.join("reports").join("resources.json");
    let v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&p)
            .with_context(|| format!("reading {} (run `trit report` for this config first)", p.display()))?,
    )?;
    let units = v["units"].as_array().with_context(|| format!("{}: no units", p.display()))?;
    units
        .iter()
        .map(|u| {
            let r = &u["resources"];
            let f = |k: &str| r[k].as_f64().unwrap_or(0.0);
            Ok(UnitSynth {
                name: u["name"].as_str().unwrap_or("?").to_string(),
                instances: u["instances"].as_u64().unwrap_or(1),
                cells: Default::default(),
                resources: Resources {
                    lut: f("lut"),
                    ff: f("ff"),
                    bram36: f("bram36"),
                    uram: f("uram"),
                    dsp: f("dsp"),
                },
                lutram: u["lutram"].as_f64().unwrap_or(0.0),
                depth: Depth {
                    lut_levels: u["lut_levels"].as_u64().unwrap_or(0) as u32,
                    path_ns: u["path_ns"].as_f64().unwrap_or(0.0),
                    fmax_mhz: u["fmax_mhz"].as_f64().unwrap_or(0.0),
                    ..Default::default()
                },
                memories_as_registers: Vec::new(),
                seconds: 0.0,
            })
        })
        .collect()
}

/// One point of an engine sweep.
#[derive(Debug, Clone, Serialize)]
pub struct SweepPoint {
    /// Tables per step.
    pub tables: usize,
    /// Output columns per cycle.
    pub cols: usize,
    /// Tokens per weight fetch.
    pub tokens: usize,
    /// Weight buffer beats.
    pub wbuf: usize,
    /// Prefill attention's query block.
    pub queries: usize,
    /// Memory ports attention streams over.
    pub attn_ports: usize,
    /// Estimated resources.
    pub resources: Resources,
    /// Projection.
    pub projected: Projection,
}

/// Engine variants of `cfg` (TLMM tables, columns, tokens per fetch, buffer depth, attention's
/// query block and memory ports) that validate.
pub fn variants(cfg: &Config) -> Vec<Config> {
    let mut out = Vec::new();
    for tables in [7, 14, 16, 21, 28, 32, 42, 56] {
        for cols in [8, 16, 24, 32] {
            for tokens in [4, 8, 16] {
                for wbuf in [1024, 2048, 4096, 8192] {
                    for queries in [1, 2, 4] {
                        for attn_ports in [1, 2, 4] {
                            let mut c = cfg.clone();
                            c.engine.tables_per_step = tables;
                            c.engine.columns_per_cycle = cols;
                            c.engine.prefill_tokens = tokens;
                            c.engine.weight_buffer_beats = wbuf;
                            c.engine.attention_queries = queries;
                            c.engine.attention_ports = Some(attn_ports);
                            if c.validate().is_ok() {
                                out.push(c);
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

/// Sweep the engine of `cfg` against synthesized `base` units at clock `mhz`.
pub fn sweep(cfg: &Config, base: &[UnitSynth], mhz: f64) -> Vec<SweepPoint> {
    variants(cfg)
        .into_iter()
        .map(|c| SweepPoint {
            tables: c.engine.tables_per_step,
            cols: c.engine.columns_per_cycle,
            tokens: c.engine.prefill_tokens,
            wbuf: c.engine.weight_buffer_beats,
            queries: c.engine.attention_queries,
            attn_ports: hdl::KernelShape::from_config(&c).ATTN_PORTS,
            resources: estimate_resources(cfg, base, &c),
            projected: perfmodel::project(&c, mhz),
        })
        .collect()
}

fn font_ok() -> bool {
    use std::sync::OnceLock;
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| {
        for p in [
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/TTF/DejaVuSans.ttf",
            "/usr/share/fonts/dejavu/DejaVuSans.ttf",
        ] {
            if let Ok(bytes) = std::fs::read(p) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        false
    })
}

/// The end of every plot: the legend box, then the file written.
fn finish_plot<'a, DB, CT>(
    ch: &mut plotters::prelude::ChartContext<'a, DB, CT>,
    root: &plotters::prelude::DrawingArea<DB, plotters::coord::Shift>,
) -> Result<()>
where
    DB: plotters::prelude::DrawingBackend + 'a,
    CT: plotters::coord::CoordTranslate,
{
    use plotters::prelude::*;
    ch.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    root.present().map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(())
}

/// Write `roofline.{svg,png}` and `sweep.{svg,png}` into `out`; the files written. PNG needs a
/// TrueType font (DejaVu Sans, Debian `fonts-dejavu-core`); without one only SVG is written.
pub fn plots(cfg: &Config, p: &Projection, sweep: &[SweepPoint], out: &Path) -> Result<Vec<PathBuf>> {
    use plotters::prelude::*;
    std::fs::create_dir_all(out)?;
    let mut written = Vec::new();
    let png = font_ok();
    // Roofline: lookups/s against lookups per DRAM byte.
    let tl = hdl::TlmmParams::from_config(cfg).tlmm();
    let hz = p.clock_mhz * 1e6;
    let peak = tl.lookups_per_cycle() as f64 * hz;
    let bw = cfg.board.bandwidth_gbs * 1e9;
    let lookups_tok: f64 = cfg.model.layers as f64
        * hdl::linear_shapes(cfg).iter().map(|&(_, k, n)| (n * k.div_ceil(tl.g)) as f64).sum::<f64>();
    let dec_i = lookups_tok / p.bytes.total() as f64;
    let dec_y = lookups_tok * p.decode_tok_s;
    let pre_bytes = (p.bytes.weights + p.bytes.lm_head) as f64 * (128.0 / cfg.engine.prefill_tokens as f64).ceil();
    let pre_i = 128.0 * lookups_tok / pre_bytes;
    let pre_y = 128.0 * lookups_tok / p.ttft_s.1;
    macro_rules! draw_roof {
        ($root:expr) => {{
            let root = $root;
            root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e:?}"))?;
            let mut ch = ChartBuilder::on(&root)
                .caption(
                    format!("{} roofline ({} MHz, {:.1} GB/s)", cfg.name, p.clock_mhz, cfg.board.bandwidth_gbs),
                    ("sans-serif", 20),
                )
                .margin(15)
                .x_label_area_size(40)
                .y_label_area_size(70)
                .build_cartesian_2d((0.5f64..1000.0).log_scale(), (1e9f64..peak * 2.0).log_scale())
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            ch.configure_mesh()
                .x_desc("lookups per DRAM byte")
                .y_desc("lookups / s")
                .y_label_formatter(&|v| format!("{v:.0e}"))
                .draw()
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            let roof: Vec<(f64, f64)> =
                (0..200).map(|i| 0.5 * 2000f64.powf(i as f64 / 199.0)).map(|x| (x, (bw * x).min(peak))).collect();
            ch.draw_series(LineSeries::new(roof, &BLUE))
                .map_err(|e| anyhow::anyhow!("{e:?}"))?
                .label("roof: min(bandwidth x intensity, lookups/cycle x clock)");
            for (x, y, name, color) in [(dec_i, dec_y, "decode (ctx 128)", RED), (pre_i, pre_y, "prefill 128", GREEN)] {
                ch.draw_series(std::iter::once(Circle::new((x, y), 6, color.filled())))
                    .map_err(|e| anyhow::anyhow!("{e:?}"))?
                    .label(name)
                    .legend(move |(a, b)| Circle::new((a, b), 5, color.filled()));
            }
            finish_plot(&mut ch, &root)?;
        }};
    }
    let f = out.join("roofline.svg");
    draw_roof!(SVGBackend::new(&f, (900, 600)).into_drawing_area());
    written.push(f);
    if png {
        let f = out.join("roofline.png");
        draw_roof!(BitMapBackend::new(&f, (900, 600)).into_drawing_area());
        written.push(f);
    }
    // Sweep: decode tok/s and prefill tok/s (128 / TTFT) against the LUT share.
    if !sweep.is_empty() {
        let lut_max = sweep.iter().map(|s| s.resources.lut / cfg.board.lut as f64).fold(0.0, f64::max) * 1.1;
        let y_max =
            sweep.iter().map(|s| s.projected.decode_tok_s.max(128.0 / s.projected.ttft_s.1)).fold(0.0, f64::max) * 1.1;
        macro_rules! draw_sweep {
            ($root:expr) => {{
                let root = $root;
                root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e:?}"))?;
                let mut ch = ChartBuilder::on(&root)
                    .caption(
                        format!("{}: engine sweep (tables x columns x tokens x buffer)", cfg.name),
                        ("sans-serif", 20),
                    )
                    .margin(15)
                    .x_label_area_size(40)
                    .y_label_area_size(60)
                    .build_cartesian_2d(0f64..lut_max.max(0.1) * 100.0, 0f64..y_max)
                    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
                ch.configure_mesh()
                    .x_desc("LUT % of the board (estimate)")
                    .y_desc("tokens / s")
                    .draw()
                    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
                let lut = |s: &SweepPoint| 100.0 * s.resources.lut / cfg.board.lut as f64;
                ch.draw_series(sweep.iter().map(|s| Circle::new((lut(s), s.projected.decode_tok_s), 3, RED.filled())))
                    .map_err(|e| anyhow::anyhow!("{e:?}"))?
                    .label("decode tok/s (ctx 128)")
                    .legend(|(a, b)| Circle::new((a, b), 3, RED.filled()));
                ch.draw_series(sweep.iter().map(|s| Cross::new((lut(s), 128.0 / s.projected.ttft_s.1), 3, BLUE)))
                    .map_err(|e| anyhow::anyhow!("{e:?}"))?
                    .label("prefill tok/s (128-token prompt)")
                    .legend(|(a, b)| Cross::new((a, b), 3, BLUE));
                ch.draw_series(std::iter::once(PathElement::new(vec![(90.0, 0.0), (90.0, y_max)], BLACK)))
                    .map_err(|e| anyhow::anyhow!("{e:?}"))?
                    .label("90% of the board");
                finish_plot(&mut ch, &root)?;
            }};
        }
        let f = out.join("sweep.svg");
        draw_sweep!(SVGBackend::new(&f, (900, 600)).into_drawing_area());
        written.push(f);
        if png {
            let f = out.join("sweep.png");
            draw_sweep!(BitMapBackend::new(&f, (900, 600)).into_drawing_area());
            written.push(f);
        }
    }
    Ok(written)
}
