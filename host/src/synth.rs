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

/// `yosys read_verilog -sv ...; synth_xilinx -family xcup -flatten -top TOP; stat` in `dir`.
pub fn yosys_xilinx(dir: &Path, top: &str) -> Result<SynthStats> {
    let log = yosys(dir, top, &format!("synth_xilinx -family xcup -flatten -top {top}; stat"))?;
    // The final `stat`: "Number of cells: N" followed by "  CELLTYPE  count" lines.
    let stat = log.rsplit_once("Printing statistics.").map(|(_, s)| s).unwrap_or(&log);
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
