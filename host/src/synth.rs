//! Other tools' view of a generated design: yosys synthesis for Xilinx UltraScale+ (cell
//! counts, memory mapping), Icarus Verilog compilation and Verilator lint. Proves the RTL is not
//! accidentally Verilator-only and that memories meant for URAM land there.

use anyhow::{bail, Context, Result};
use sim::tools::{self, Tool};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Cell counts of a flattened `synth_xilinx` netlist.
#[derive(Debug, Clone, Default)]
pub struct SynthStats {
    /// Cell type -> count.
    pub cells: BTreeMap<String, u64>,
    /// The yosys log.
    pub log: String,
}

impl SynthStats {
    /// Count of one cell type (0 when absent).
    pub fn count(&self, cell: &str) -> u64 {
        self.cells.get(cell).copied().unwrap_or(0)
    }

    /// Sum over cell types starting with `prefix` (e.g. `LUT`, `RAMB`).
    pub fn count_prefix(&self, prefix: &str) -> u64 {
        self.cells.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, v)| v).sum()
    }
}

fn filelist(dir: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(dir.join("filelist.f"))
        .with_context(|| format!("reading {}/filelist.f", dir.display()))?;
    Ok(text.lines().filter(|l| !l.trim().is_empty()).map(|l| l.trim().to_string()).collect())
}

/// Run yosys on the design in `dir`: read every file of the filelist, then `passes`; the log.
fn yosys(dir: &Path, top: &str, passes: &str) -> Result<String> {
    let yosys = tools::find(Tool::Yosys)?;
    let files = filelist(dir)?.join(" ");
    let script = format!("read_verilog -sv {files}; {passes}");
    let out = Command::new(&yosys.path).args(["-q", "-p", &script, "-l", "yosys.log"]).current_dir(dir).output()?;
    let log = std::fs::read_to_string(dir.join("yosys.log")).unwrap_or_default();
    if !out.status.success() || log.contains("ERROR:") {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let errs: Vec<&str> = log.lines().chain(stderr.lines()).filter(|l| l.contains("ERROR")).take(10).collect();
        let errs = errs.join("\n");
        bail!("yosys failed on {} (log {}/yosys.log):\n{errs}", top, dir.display());
    }
    Ok(log)
}

/// yosys elaboration only (`hierarchy -check`, `proc`, `check -assert`: every module found,
/// every process understood, no driver conflicts) -- seconds, where full synthesis of the whole
/// kernel takes many minutes.
pub fn yosys_elaborate(dir: &Path, top: &str) -> Result<()> {
    yosys(dir, top, &format!("hierarchy -check -top {top}; proc; opt_clean; check -assert")).map(|_| ())
}

/// Shift cells wider than `min_width` bits among yosys's coarse cells of the design in `dir`
/// (`synth -run :fine; stat -width`), as `module: $shift_N x count`. A part-select written at a
/// computed position (`x[8*i +: 8] <= d` with a variable `i`) becomes such a `$shift` of the
/// whole vector, and another of its mask: barrel shifters where a per-position multiplexer was
/// meant (four of them were ~100 k LUTs of the tellme-kv260 kernel). Arithmetic shifts
/// (`$shl`, `$sshr`, ...) and computed reads (`$shiftx`, a multiplexer) are not counted.
pub fn part_select_shifters(dir: &Path, top: &str, min_width: usize) -> Result<Vec<String>> {
    yosys(dir, top, &format!("synth -top {top} -run :fine; tee -q -o coarse.stat stat -width"))?;
    let stat = std::fs::read_to_string(dir.join("coarse.stat"))?;
    let mut found = Vec::new();
    let mut module = String::new();
    for line in stat.lines() {
        let t = line.trim();
        if let Some(m) = t.strip_prefix("=== ").and_then(|m| m.strip_suffix(" ===")) {
            // `$paramod\NAME\PARAM=...` or `NAME`.
            module = m.split('\\').nth(1).unwrap_or(m).to_string();
            continue;
        }
        let mut f = t.split_whitespace();
        if let (Some(cell), Some(count)) = (f.next(), f.next()) {
            if let Some(width) = cell.strip_prefix("$shift_").and_then(|w| w.parse::<usize>().ok()) {
                if width > min_width && module != "design" {
                    found.push(format!("{module}: {cell} x {count}"));
                }
            }
        }
    }
    Ok(found)
}

/// The single-port LUT-RAM option yosys 0.23's `lutrams_xcu.txt` offers for deep memories: 16
/// address bits, which its map file (`lutrams_xc5v_map.v`) has no case for, so any
/// asynchronous-read memory of 512 or more entries stops synthesis with "invalid
/// OPTION_ABITS/WIDTH combination". The map file builds 9 address bits (RAM512X1S).
const BROKEN_LUTRAM_OPTION: &str = "\toption \"ABITS\" 16 {\n\t\tabits 16;\n\t\twidths 1 global;\n\t}";
const FIXED_LUTRAM_OPTION: &str = "\toption \"ABITS\" 9 {\n\t\tabits 9;\n\t\twidths 1 global;\n\t}";

/// `synth_xilinx -family xcup FLAGS -top TOP` as yosys commands, and the LUT-RAM library they
/// need in the directory yosys runs in. Where the installed yosys has the broken LUT-RAM option,
/// its memory mapping step runs separately with a corrected copy of the library (the same
/// `memory_libmap` arguments synth_xilinx uses for xcup); everything else is synth_xilinx itself.
pub struct SynthScript {
    /// The yosys commands.
    pub commands: String,
    /// Contents of `lutrams_xcu_fixed.txt`, when the commands use it.
    pub lutram_lib: Option<String>,
}

impl SynthScript {
    /// The commands for `flags` and `top` with the installed yosys.
    pub fn new(flags: &str, top: &str) -> Result<SynthScript> {
        let synth = format!("synth_xilinx -family xcup {flags} -top {top}");
        let yosys = tools::find(Tool::Yosys)?;
        let share = yosys.path.parent().and_then(Path::parent).map(|p| p.join("share/yosys/xilinx/lutrams_xcu.txt"));
        let lib = share.and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default();
        if !lib.contains(BROKEN_LUTRAM_OPTION) {
            return Ok(SynthScript { commands: synth, lutram_lib: None });
        }
        let commands = format!(
            "{synth} -run :map_memory; \
             memory_libmap -logic-cost-rom 0.015625 -lib lutrams_xcu_fixed.txt -lib +/xilinx/brams_xc4v.txt \
             -D HAS_SIZE_36 -D HAS_MIXWIDTH_SDP -D HAS_ADDRCE -lib +/xilinx/urams.txt -no-auto-huge; \
             techmap -map +/xilinx/lutrams_xc5v_map.v; techmap -map +/xilinx/brams_xcu_map.v; \
             techmap -map +/xilinx/urams_map.v; {synth} -run map_ffram:"
        );
        Ok(SynthScript { commands, lutram_lib: Some(lib.replace(BROKEN_LUTRAM_OPTION, FIXED_LUTRAM_OPTION)) })
    }

    /// Write the library the commands need (if any) into `dir`.
    pub fn write_lib(&self, dir: &Path) -> Result<()> {
        if let Some(lib) = &self.lutram_lib {
            std::fs::write(dir.join("lutrams_xcu_fixed.txt"), lib)?;
        }
        Ok(())
    }
}

/// `yosys read_verilog -sv ...; synth_xilinx -family xcup -flatten -top TOP; stat` in `dir`.
pub fn yosys_xilinx(dir: &Path, top: &str) -> Result<SynthStats> {
    let synth = SynthScript::new("-flatten", top)?;
    synth.write_lib(dir)?;
    let log = yosys(dir, top, &format!("{}; stat", synth.commands))?;
    let cells = parse_stat(&log);
    if cells.is_empty() {
        bail!("no cell statistics in the yosys log {}/yosys.log", dir.display());
    }
    Ok(SynthStats { cells, log })
}

/// Compile with `iverilog -g2012`; the error text on failure.
pub fn iverilog(dir: &Path, top: &str) -> Result<()> {
    let iv = tools::find(Tool::Iverilog)?;
    let mut cmd = Command::new(&iv.path);
    cmd.args(["-g2012", "-o", "iverilog.vvp", "-s", top]).args(filelist(dir)?).current_dir(dir);
    let out = cmd.output()?;
    if !out.status.success() {
        bail!("iverilog -g2012 rejected {top}:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// `verilator --lint-only -Wall`; the warnings on failure.
pub fn verilator_lint(dir: &Path, top: &str) -> Result<()> {
    let v = tools::find(Tool::Verilator)?;
    let out = Command::new(&v.path)
        .args(["--lint-only", "-Wall", "--top-module", top])
        .args(filelist(dir)?)
        .current_dir(dir)
        .output()?;
    if !out.status.success() {
        bail!("verilator --lint-only -Wall on {top}:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Per-module synthesis of the kernel (`trit report`): resources, memory inference, logic depth.
// ---------------------------------------------------------------------------------------------

/// FPGA resources in the units a Vivado utilization report uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Resources {
    /// LUTs, including those used as distributed RAM and shift registers.
    pub lut: f64,
    /// Flip-flops.
    pub ff: f64,
    /// RAMB36 equivalents (a RAMB18 counts one half).
    pub bram36: f64,
    /// URAM288 blocks.
    pub uram: f64,
    /// DSP48E2 slices.
    pub dsp: f64,
}

impl Resources {
    /// `self * k` (instances of a module).
    pub fn scaled(&self, k: f64) -> Resources {
        Resources {
            lut: self.lut * k,
            ff: self.ff * k,
            bram36: self.bram36 * k,
            uram: self.uram * k,
            dsp: self.dsp * k,
        }
    }

    /// Field-wise sum.
    pub fn add(&self, o: &Resources) -> Resources {
        Resources {
            lut: self.lut + o.lut,
            ff: self.ff + o.ff,
            bram36: self.bram36 + o.bram36,
            uram: self.uram + o.uram,
            dsp: self.dsp + o.dsp,
        }
    }

    /// `(name, value)` in table order.
    pub fn pairs(&self) -> [(&'static str, f64); 5] {
        [("lut", self.lut), ("ff", self.ff), ("bram36", self.bram36), ("uram", self.uram), ("dsp", self.dsp)]
    }
}

/// LUTs a distributed-RAM or shift-register primitive occupies.
fn lutram_luts(cell: &str) -> Option<f64> {
    Some(match cell {
        "RAM32M16" | "RAM64M8" | "RAM512X1S" => 8.0,
        "RAM32M" | "RAM64M" | "RAM128X1D" | "RAM256X1S" | "RAM256X1D" => 4.0,
        "RAM32X1D" | "RAM64X1D" | "RAM128X1S" => 2.0,
        "RAM32X1S" | "RAM64X1S" | "SRL16E" | "SRLC32E" | "SRLC16E" => 1.0,
        _ => return None,
    })
}

impl SynthStats {
    /// The resources of these cells.
    pub fn resources(&self) -> Resources {
        let mut r = Resources::default();
        for (cell, &n) in &self.cells {
            let n = n as f64;
            if cell.starts_with("LUT") && cell.len() == 4 {
                r.lut += n;
            } else if let Some(l) = lutram_luts(cell) {
                r.lut += l * n;
            } else if matches!(cell.as_str(), "FDRE" | "FDSE" | "FDCE" | "FDPE" | "LDCE" | "LDPE") {
                r.ff += n;
            } else if cell == "RAMB36E2" {
                r.bram36 += n;
            } else if cell == "RAMB18E2" {
                r.bram36 += 0.5 * n;
            } else if cell == "URAM288" {
                r.uram += n;
            } else if cell == "DSP48E2" {
                r.dsp += n;
            }
        }
        r
    }

    /// LUTs used as distributed RAM or shift registers (part of [`Resources::lut`]).
    pub fn lutram(&self) -> f64 {
        self.cells.iter().filter_map(|(c, &n)| lutram_luts(c).map(|l| l * n as f64)).sum()
    }
}

/// Parse the statistics `stat` printed last in a yosys log: "Number of cells: N" followed by
/// "  CELLTYPE  count" lines.
fn parse_stat(log: &str) -> BTreeMap<String, u64> {
    let stat = log.rsplit_once("Printing statistics.").map(|(_, s)| s).unwrap_or(log);
    let mut cells = BTreeMap::new();
    let mut in_cells = false;
    for line in stat.lines() {
        let t = line.trim();
        if t.starts_with("Number of cells:") {
            in_cells = true;
            continue;
        }
        if in_cells {
            let parts: Vec<&str> = t.split_whitespace().collect();
            match parts.as_slice() {
                [name, n] if n.parse::<u64>().is_ok() => {
                    *cells.entry(name.to_string()).or_insert(0) += n.parse::<u64>().unwrap();
                }
                _ => in_cells = false,
            }
        }
    }
    cells
}

/// The module a yosys derived name stands for: `$paramod$<hash>\op_linear` and
/// `$paramod\op_linear\P=...` are both `op_linear`.
pub fn base_module(name: &str) -> &str {
    let parts: Vec<&str> = name.split('\\').collect();
    match parts.as_slice() {
        [p, base, ..] if p.starts_with("$paramod") => base,
        _ => name.trim_start_matches('\\'),
    }
}

/// One module instantiated by a kernel: yosys's name for the parameterized module, the plain
/// module name, how many instances, and its depth below the top (1 = the top's children).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HierEntry {
    /// Derived name (`$paramod$...\op_linear`).
    pub derived: String,
    /// Plain name (`op_linear`).
    pub base: String,
    /// Instances under its parent.
    pub count: u64,
    /// Depth under the top (the top is 0).
    pub level: usize,
}

/// Parse yosys's `stat -top` "design hierarchy" section.
pub fn parse_hierarchy(stat: &str) -> Vec<HierEntry> {
    let Some((_, rest)) = stat.rsplit_once("=== design hierarchy ===") else { return Vec::new() };
    let mut out = Vec::new();
    for line in rest.lines().skip(1) {
        if line.trim().is_empty() {
            if out.is_empty() {
                continue;
            }
            break;
        }
        let indent = line.len() - line.trim_start().len();
        let Some((name, n)) = line.trim().rsplit_once(char::is_whitespace) else { break };
        let Ok(count) = n.parse::<u64>() else { break };
        let name = name.trim();
        out.push(HierEntry {
            derived: name.to_string(),
            base: base_module(name).to_string(),
            count,
            level: indent.saturating_sub(3) / 2,
        });
    }
    out
}

fn fnv1a(state: &mut u64, bytes: &[u8]) {
    for &b in bytes {
        *state ^= b as u64;
        *state = state.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // Field separator, so ("ab","c") and ("a","bc") differ.
    *state ^= 0xff;
    *state = state.wrapping_mul(0x0000_0100_0000_01b3);
}

/// Content hash of a design directory's sources (filelist order) plus `extra` strings.
pub fn design_hash(dir: &Path, extra: &[&str]) -> Result<String> {
    files_hash(dir, &filelist(dir)?, extra)
}

/// Content hash of some of a design directory's files (in the given order) plus `extra`.
pub fn files_hash(dir: &Path, files: &[String], extra: &[&str]) -> Result<String> {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for f in files {
        fnv1a(&mut h, f.as_bytes());
        fnv1a(&mut h, &std::fs::read(dir.join(f)).with_context(|| format!("reading {}/{f}", dir.display()))?);
    }
    for e in extra {
        fnv1a(&mut h, e.as_bytes());
    }
    Ok(format!("{h:016x}"))
}

/// The files a synthesized unit depends on: those declaring the module at `hier[at]` or any
/// module below it in the elaborated hierarchy, and every package (packages are shared by
/// all). Parameters need no file: they are part of the derived module name, which goes into
/// the cache key beside these files. So editing one engine re-synthesizes only that engine.
pub fn unit_sources(dir: &Path, hier: &[HierEntry], at: usize) -> Result<Vec<String>> {
    let level = hier[at].level;
    let mut wanted: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
    wanted.insert(&hier[at].base);
    for e in hier[at + 1..].iter().take_while(|e| e.level > level) {
        wanted.insert(&e.base);
    }
    let mut out = Vec::new();
    for f in filelist(dir)? {
        let text = std::fs::read_to_string(dir.join(&f)).with_context(|| format!("reading {}/{f}", dir.display()))?;
        let declares = text.lines().any(|l| {
            let mut words = l.split(|c: char| c.is_whitespace() || c == '(' || c == ';' || c == '#');
            match words.next() {
                Some("package") => true,
                Some("module") => words.find(|w| !w.is_empty()).is_some_and(|name| wanted.contains(name)),
                _ => false,
            }
        });
        if declares {
            out.push(f);
        }
    }
    Ok(out)
}

/// The hierarchy of `top` as yosys elaborates it (seconds, no synthesis).
pub fn hierarchy(dir: &Path, top: &str) -> Result<Vec<HierEntry>> {
    let log = yosys(dir, top, &format!("hierarchy -check -top {top}; stat -top {top}"))?;
    let h = parse_hierarchy(&log);
    if h.is_empty() {
        bail!("no design hierarchy in the yosys log {}/yosys.log", dir.display());
    }
    Ok(h)
}

/// The logic depth of a synthesized netlist: the longest register-to-register path under a
/// simple delay model (see [`DelayModel`]).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Depth {
    /// LUTs on the longest path.
    pub lut_levels: u32,
    /// All cells on the longest path (LUTs, muxes, carry blocks, RAM reads, DSPs).
    pub cells: u32,
    /// Estimated delay of the longest path, ns (routing included, see [`DelayModel`]).
    pub path_ns: f64,
    /// `1000 / path_ns`.
    pub fmax_mhz: f64,
    /// Cell types on the longest path, start to end (for the report: what is deep).
    pub path: Vec<String>,
    /// Where the path's cells come from (`file:line` of their `src` attributes, start to end,
    /// each line once): the lines to pipeline.
    #[serde(default)]
    pub sources: Vec<String>,
    /// The next deepest paths through other source lines, deepest first (at most
    /// [`NEXT_PATHS`]): what limits the clock once the longest is pipelined.
    #[serde(default)]
    pub next: Vec<PathBrief>,
}

/// How many of the next deepest paths [`Depth::next`] keeps.
pub const NEXT_PATHS: usize = 8;

/// One of a module's deeper paths: its delay and the lines it runs through.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PathBrief {
    /// Estimated delay, ns.
    pub path_ns: f64,
    /// `file:line` of its cells, start to end.
    pub sources: Vec<String>,
}

/// Delays (ns) of UltraScale+ (-2 speed grade) cells with typical routing: a coarse stand-in
/// for a timing analysis, good for telling a 4-level design from a 40-level one. LUT = logic +
/// one net (about 0.12 + 0.3), carry chains fast along CI, sequential cells as start and end
/// points. Not Vivado's numbers: the report labels the clock it derives as a projection.
#[derive(Debug, Clone, Copy)]
pub struct DelayModel {
    /// A LUT and the net after it.
    pub lut: f64,
    /// MUXF7/8/9.
    pub muxf: f64,
    /// Entering a carry block (not along its carry input).
    pub carry_in: f64,
    /// Carry input to output along a chain.
    pub carry_chain: f64,
    /// Distributed RAM / SRL: address to data.
    pub lutram_read: f64,
    /// Combinational DSP48E2 (no A/B/M/P register).
    pub dsp_comb: f64,
    /// Clock to output of a DSP48E2 whose P register is off (M or A/B registered).
    pub dsp_partial: f64,
    /// Clock to output of a block RAM / URAM.
    pub ram_clk_out: f64,
    /// Clock to Q, setup and clock uncertainty, once per path.
    pub fixed: f64,
}

/// The delay model [`logic_depth`] uses.
pub const DELAYS: DelayModel = DelayModel {
    lut: 0.42,
    muxf: 0.12,
    carry_in: 0.35,
    carry_chain: 0.06,
    lutram_read: 0.7,
    dsp_comb: 3.0,
    dsp_partial: 1.8,
    ram_clk_out: 1.2,
    fixed: 0.45,
};

#[derive(serde::Deserialize)]
struct JsonNetlist {
    modules: BTreeMap<String, JsonModule>,
}

#[derive(serde::Deserialize)]
struct JsonModule {
    #[serde(default)]
    cells: BTreeMap<String, JsonCell>,
    #[serde(default)]
    attributes: BTreeMap<String, serde_json::Value>,
}

#[derive(serde::Deserialize)]
struct JsonCell {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    parameters: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    port_directions: BTreeMap<String, String>,
    #[serde(default)]
    connections: BTreeMap<String, Vec<serde_json::Value>>,
    #[serde(default)]
    attributes: BTreeMap<String, serde_json::Value>,
}

/// `file:line` of each design location in a cell's `src` attribute (`a.sv:12.3-12.40|b.sv:7.1-9.2`);
/// yosys's own techmap files (absolute paths) left out.
fn src_lines(c: &JsonCell) -> Vec<String> {
    let Some(serde_json::Value::String(src)) = c.attributes.get("src") else { return Vec::new() };
    src.split('|')
        .filter(|loc| !loc.starts_with('/'))
        .filter_map(|loc| loc.split_once(':').map(|(f, r)| format!("{f}:{}", r.split('.').next().unwrap_or(r))))
        .collect()
}

fn param_on(c: &JsonCell, name: &str) -> bool {
    match c.parameters.get(name) {
        Some(serde_json::Value::String(s)) => s.chars().any(|ch| ch == '1'),
        Some(serde_json::Value::Number(n)) => n.as_u64().unwrap_or(0) != 0,
        _ => false,
    }
}

/// How a cell takes part in timing paths.
enum Timing {
    /// Inputs end paths (with `setup`), outputs start them at `clk_out`.
    Seq { clk_out: f64 },
    /// Outputs depend on inputs whose port passes `from` after `delay` (ns); `chain` applies
    /// instead along the carry input.
    Comb { delay: f64, from: fn(&str) -> bool, chain: Option<f64> },
    /// No delay (inverters are absorbed into LUTs; buffers).
    Wire,
}

fn timing_of(c: &JsonCell, d: &DelayModel) -> Timing {
    let t = c.kind.as_str();
    let any = |_: &str| true;
    if t.starts_with("LUT") {
        Timing::Comb { delay: d.lut, from: any, chain: None }
    } else if t.starts_with("MUXF") {
        Timing::Comb { delay: d.muxf, from: any, chain: None }
    } else if t.starts_with("CARRY") {
        Timing::Comb { delay: d.carry_in, from: |p| p != "CI" && p != "CI_TOP", chain: Some(d.carry_chain) }
    } else if t == "INV" || t == "BUFG" || t == "IBUF" || t == "OBUF" {
        Timing::Wire
    } else if lutram_luts(t).is_some() {
        Timing::Comb { delay: d.lutram_read, from: |p| p.starts_with('A') && !p.starts_with("AX"), chain: None }
    } else if t == "DSP48E2" {
        let regs = ["AREG", "BREG", "MREG", "PREG"].iter().any(|r| param_on(c, r));
        if !regs {
            Timing::Comb { delay: d.dsp_comb, from: any, chain: None }
        } else if param_on(c, "PREG") {
            Timing::Seq { clk_out: 0.4 }
        } else {
            Timing::Seq { clk_out: d.dsp_partial }
        }
    } else if t.starts_with("RAMB") || t == "URAM288" {
        Timing::Seq { clk_out: d.ram_clk_out }
    } else {
        // Flip-flops and anything unknown start and end paths.
        Timing::Seq { clk_out: 0.0 }
    }
}

/// Longest path of the module `top` in a yosys JSON netlist (after `synth_xilinx -flatten`),
/// under the delay model `d`. Module inputs count as registered (each unit is synthesized out of
/// context; the kernel registers between engines).
pub fn logic_depth(json: &Path, top: &str, d: &DelayModel) -> Result<Depth> {
    let text = std::fs::read_to_string(json).with_context(|| format!("reading {}", json.display()))?;
    let net: JsonNetlist = serde_json::from_str(&text).with_context(|| format!("parsing {}", json.display()))?;
    drop(text);
    let module = net
        .modules
        .get(top)
        .or_else(|| net.modules.iter().find(|(_, m)| m.attributes.contains_key("top")).map(|(_, m)| m))
        .with_context(|| format!("module {top} not in {}", json.display()))?;
    Ok(longest_path(module, d))
}

fn bits(v: &[serde_json::Value]) -> impl Iterator<Item = u64> + '_ {
    v.iter().filter_map(|b| b.as_u64())
}

fn longest_path(m: &JsonModule, d: &DelayModel) -> Depth {
    let cells: Vec<&JsonCell> = m.cells.values().collect();
    let timings: Vec<Timing> = cells.iter().map(|c| timing_of(c, d)).collect();
    // Driver of each net bit: (cell, output port).
    let mut driver: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
    for (i, c) in cells.iter().enumerate() {
        for (port, conn) in &c.connections {
            if c.port_directions.get(port).map(String::as_str) == Some("output") {
                for b in bits(conn) {
                    driver.insert(b, i);
                }
            }
        }
    }
    // Arrival time at each combinational cell's output (memoized DFS over drivers).
    #[derive(Clone, Copy)]
    struct Arr {
        ns: f64,
        luts: u32,
        cells: u32,
        prev: usize,
    }
    const NONE: usize = usize::MAX;
    let mut arr: Vec<Option<Arr>> = vec![None; cells.len()];
    let source = |i: usize| -> Arr {
        match timings[i] {
            Timing::Seq { clk_out } => Arr { ns: clk_out, luts: 0, cells: 0, prev: NONE },
            _ => unreachable!(),
        }
    };
    // Iterative DFS: arrival(i) = delay(i) + max over inputs of arrival(driver).
    let input_arrival = |arr: &Vec<Option<Arr>>, j: Option<&usize>| -> Option<Arr> {
        match j {
            None => Some(Arr { ns: 0.0, luts: 0, cells: 0, prev: NONE }),
            Some(&j) => match timings[j] {
                Timing::Seq { .. } => Some(source(j)),
                _ => arr[j].map(|a| Arr { prev: j, ..a }),
            },
        }
    };
    let mut state = vec![0u8; cells.len()]; // 0 new, 1 on stack, 2 done
    for start in 0..cells.len() {
        if matches!(timings[start], Timing::Seq { .. }) || state[start] == 2 {
            continue;
        }
        let mut stack = vec![start];
        while let Some(&i) = stack.last() {
            if state[i] == 0 {
                state[i] = 1;
                for (port, conn) in &cells[i].connections {
                    if cells[i].port_directions.get(port).map(String::as_str) != Some("input") {
                        continue;
                    }
                    for b in bits(conn) {
                        if let Some(&j) = driver.get(&b) {
                            if state[j] == 0 && !matches!(timings[j], Timing::Seq { .. }) {
                                stack.push(j);
                            }
                        }
                    }
                }
                continue;
            }
            stack.pop();
            if state[i] == 2 {
                continue;
            }
            let mut best = Arr { ns: 0.0, luts: 0, cells: 0, prev: NONE };
            let (delay, from, chain, is_lut) = match timings[i] {
                Timing::Comb { delay, from, chain } => (delay, Some(from), chain, cells[i].kind.starts_with("LUT")),
                Timing::Wire => (0.0, None, None, false),
                Timing::Seq { .. } => unreachable!(),
            };
            for (port, conn) in &cells[i].connections {
                if cells[i].port_directions.get(port).map(String::as_str) != Some("input") {
                    continue;
                }
                let along_chain = chain.is_some() && from.is_some_and(|f| !f(port));
                if !along_chain && from.is_some_and(|f| !f(port)) {
                    continue;
                }
                let step = if along_chain { chain.unwrap_or(0.0) } else { delay };
                for b in bits(conn) {
                    // A combinational loop (state 1) is cut there.
                    let j = driver.get(&b);
                    if j.is_some_and(|&j| state[j] == 1 && !matches!(timings[j], Timing::Seq { .. })) {
                        continue;
                    }
                    if let Some(a) = input_arrival(&arr, j) {
                        if a.ns + step > best.ns {
                            best =
                                Arr { ns: a.ns + step, luts: a.luts + is_lut as u32, cells: a.cells + 1, prev: a.prev };
                            best.prev = j.copied().unwrap_or(NONE);
                        }
                    }
                }
            }
            if best.cells == 0 {
                best = Arr { ns: delay, luts: is_lut as u32, cells: 1, prev: NONE };
            }
            arr[i] = Some(best);
            state[i] = 2;
        }
    }
    // Walk a path back from the cell `end`: its cell types and source lines, start to end.
    let walk = |end: usize| -> (Vec<String>, Vec<String>) {
        let mut path = Vec::new();
        let mut sources: Vec<String> = Vec::new();
        let mut visit = |c: &JsonCell| {
            path.push(c.kind.clone());
            for s in src_lines(c).into_iter().rev() {
                // Each line once, where the path (walked from its end) last meets it.
                sources.retain(|x| *x != s);
                sources.push(s);
            }
        };
        let mut at = Some(end);
        let mut guard = 0;
        while let Some(i) = at {
            visit(cells[i]);
            let p = arr[i].map(|a| a.prev).unwrap_or(NONE);
            at = if p == NONE || guard > 10_000 { None } else { Some(p) };
            if let Some(p) = at {
                if matches!(timings[p], Timing::Seq { .. }) {
                    visit(cells[p]);
                    at = None;
                }
            }
            guard += 1;
        }
        path.reverse();
        sources.reverse();
        (path, sources)
    };
    // Endpoints: combinational cells read by a sequential cell (module outputs are covered by
    // their driver's arrival too, as the worst of all cells).
    let mut endpoint = vec![false; cells.len()];
    for (i, c) in cells.iter().enumerate() {
        if !matches!(timings[i], Timing::Seq { .. }) {
            continue;
        }
        for (port, conn) in &c.connections {
            if c.port_directions.get(port).map(String::as_str) == Some("input") {
                for b in bits(conn) {
                    if let Some(&j) = driver.get(&b) {
                        endpoint[j] = !matches!(timings[j], Timing::Seq { .. });
                    }
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..cells.len()).filter(|&i| arr[i].is_some()).collect();
    order.sort_by(|&a, &b| arr[b].map_or(0.0, |x| x.ns).total_cmp(&arr[a].map_or(0.0, |x| x.ns)));
    let worst = order.first().and_then(|&i| arr[i]).unwrap_or(Arr { ns: 0.0, luts: 0, cells: 0, prev: NONE });
    let (path, sources) = order.first().map(|&i| walk(i)).unwrap_or_default();
    // The next deepest paths through other lines: each endpoint's path keyed by its source
    // lines, the deepest of each kept (a wide adder's bits share one key).
    // (Walking back is a few dozen cells per endpoint: the deepest ENDPOINTS_WALKED bound it.)
    const ENDPOINTS_WALKED: usize = 4000;
    let mut next: Vec<PathBrief> = Vec::new();
    for &i in order.iter().filter(|&&i| endpoint[i]).take(ENDPOINTS_WALKED) {
        if next.len() >= NEXT_PATHS {
            break;
        }
        let (_, src) = walk(i);
        if src == sources || next.iter().any(|n| n.sources == src) {
            continue;
        }
        let ns = arr[i].map_or(0.0, |a| a.ns) + d.fixed;
        next.push(PathBrief { path_ns: ns, sources: src });
    }
    let ns = worst.ns + d.fixed;
    Depth { lut_levels: worst.luts, cells: worst.cells, path_ns: ns, fmax_mhz: 1000.0 / ns, path, sources, next }
}

/// The arrays yosys's frontend turned into registers (each read becomes a multiplexer over all
/// its entries, each write a decoder), from its "Replacing memory \NAME with list of
/// registers. See FILE:LINE" warnings, as `NAME (FILE:LINE)`: those declared in `sources` when
/// given (the frontend reads, and warns about, every file of the design); and the memories
/// memory mapping found no RAM for ("using FF mapping for memory MODULE.NAME": several read
/// ports, or reads at unrelated addresses), as `NAME (flip-flops)`, generated ROMs left out.
pub fn arrays_in_registers(log: &str, sources: Option<&[String]>) -> Vec<String> {
    let frontend = log.lines().filter_map(|l| l.split_once("Replacing memory \\").map(|(_, r)| r)).filter_map(|r| {
        let name = r.split_whitespace().next()?;
        let at = r.rsplit_once("See ").map(|(_, a)| a.trim()).unwrap_or("");
        let file = at.rsplit_once(':').map_or(at, |(f, _)| f);
        let wanted = sources.is_none_or(|files| files.iter().any(|f| f == file));
        wanted.then(|| if at.is_empty() { name.to_string() } else { format!("{name} ({at})") })
    });
    let libmap =
        log.lines().filter_map(|l| l.split_once("using FF mapping for memory ").map(|(_, r)| r)).filter_map(|r| {
            let name = r.trim().split_once('.').map(|(_, n)| n)?;
            (!name.contains('$')).then(|| format!("{} (flip-flops)", name.trim_start_matches('\\')))
        });
    frontend.chain(libmap).collect::<std::collections::BTreeSet<_>>().into_iter().collect()
}

/// One synthesized module of the kernel.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct UnitSynth {
    /// Plain module name (`op_linear`), or `kernel glue` for the top levels without engines.
    pub name: String,
    /// Instances in the kernel.
    pub instances: u64,
    /// Cell counts of one instance.
    pub cells: BTreeMap<String, u64>,
    /// Resources of one instance.
    pub resources: Resources,
    /// LUTs of one instance used as distributed RAM / SRL.
    pub lutram: f64,
    /// Logic depth.
    pub depth: Depth,
    /// Arrays yosys turned into registers, `NAME (FILE:LINE)` (see [`arrays_in_registers`]).
    pub memories_as_registers: Vec<String>,
    /// Synthesis wall time, seconds (of the run that filled the cache).
    pub seconds: f64,
}

/// Synthesize one module of an elaborated design out of context: `hierarchy -top elab_top`
/// (which fixes every parameter), re-rooted at `module` with `blackboxes` removed, then
/// `synth_xilinx -family xcup -flatten -noiopad -noclkbuf`, `stat` and a JSON netlist for the
/// depth. Results are cached in `cache` by a hash of the script and of `sources` (the files
/// the result depends on, see [`unit_sources`]; `None`: every file of the design).
#[allow(clippy::too_many_arguments)]
pub fn synth_unit(
    dir: &Path,
    cache: &Path,
    elab_top: &str,
    module: &str,
    name: &str,
    instances: u64,
    blackboxes: &[String],
    sources: Option<&[String]>,
) -> Result<UnitSynth> {
    let bb: Vec<String> = blackboxes.iter().map(|b| b.to_string()).collect();
    let mut script = format!("hierarchy -top {elab_top}; ");
    if !bb.is_empty() {
        script.push_str(&format!("blackbox {}; hierarchy -top {elab_top}; ", bb.join(" ")));
    }
    if module != elab_top {
        script.push_str(&format!("hierarchy -top {module}; "));
    }
    // The script text (with the LUT-RAM library fix where yosys needs it) is part of the key.
    let synth = SynthScript::new("-flatten -noiopad -noclkbuf", module)?;
    script.push_str(&format!("{}; stat; write_json unit.json", synth.commands));
    let yosys_version = tools::find(Tool::Yosys).map(|t| t.version).unwrap_or_default();
    let extra = [script.as_str(), yosys_version.as_str(), "unit-v1"];
    let key = match sources {
        Some(files) => files_hash(dir, files, &extra)?,
        None => design_hash(dir, &extra)?,
    };
    std::fs::create_dir_all(cache)?;
    let cached = cache.join(format!("{}-{key}.json", name.replace(' ', "_")));
    if let Ok(text) = std::fs::read_to_string(&cached) {
        if let Ok(mut u) = serde_json::from_str::<UnitSynth>(&text) {
            u.instances = instances;
            return Ok(u);
        }
    }
    // Each unit in its own directory (yosys writes its log and the netlist there).
    let work = cache.join(format!("work-{}-{key}", name.replace(' ', "_")));
    std::fs::create_dir_all(&work)?;
    for f in filelist(dir)? {
        let dst = work.join(&f);
        std::fs::create_dir_all(dst.parent().unwrap_or(&work))?;
        std::fs::copy(dir.join(&f), &dst)?;
    }
    std::fs::copy(dir.join("filelist.f"), work.join("filelist.f"))?;
    synth.write_lib(&work)?;
    let t0 = std::time::Instant::now();
    let log = yosys(&work, module, &script)?;
    let seconds = t0.elapsed().as_secs_f64();
    let cells = parse_stat(&log);
    if cells.is_empty() {
        bail!("no cell statistics for {name} in the yosys log {}/yosys.log", work.display());
    }
    let stats = SynthStats { cells: cells.clone(), log: String::new() };
    let depth = logic_depth(&work.join("unit.json"), module, &DELAYS)?;
    let memories_as_registers = arrays_in_registers(&log, sources);
    let u = UnitSynth {
        name: name.to_string(),
        instances,
        resources: stats.resources(),
        lutram: stats.lutram(),
        cells,
        depth,
        memories_as_registers,
        seconds,
    };
    std::fs::write(&cached, serde_json::to_string_pretty(&u)?)?;
    let _ = std::fs::remove_dir_all(&work);
    Ok(u)
}
