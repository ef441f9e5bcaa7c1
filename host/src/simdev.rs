//! `SimDevice`: the generated kernel in Verilator, behind the [`Device`] trait. Registers are
//! reached through its AXI4-Lite slave exactly as a host CPU would (cycle by cycle), device
//! memory is the DRAM model behind its AXI4 master with the board's bandwidth and a latency, and
//! the AXI protocol monitor fails any call on the first violation.

use crate::device::Device;
use crate::refdev::MEM_BASE;
use anyhow::{bail, Context, Result};
use hdl::regmap;
use hdl::{Design, Dir};
use sim::axi::{AxiMem, MemTiming};
use sim::{BuildSpec, Model, PortId, PortSpec};
use std::time::Duration;

struct Ctrl {
    awaddr: PortId,
    awvalid: PortId,
    awready: PortId,
    wdata: PortId,
    wstrb: PortId,
    wvalid: PortId,
    wready: PortId,
    bvalid: PortId,
    bready: PortId,
    araddr: PortId,
    arvalid: PortId,
    arready: PortId,
    rdata: PortId,
    rvalid: PortId,
    rready: PortId,
}

/// The simulated kernel.
pub struct SimDevice {
    model: Model,
    mem: AxiMem,
    c: Ctrl,
    next: u64,
    limit: u64,
    clock_mhz: f64,
    /// `Some` while descriptor times are traced: (descriptors decoded, cycles since start).
    times: Option<Vec<(u64, u64)>>,
}

/// Build spec of a design's kernel (its sources and port table).
pub fn kernel_spec(d: &Design, trace: bool) -> BuildSpec {
    BuildSpec {
        top: d.kernel.clone(),
        sources: d.files.clone(),
        ports: d
            .kernel_ports
            .iter()
            .map(|p| PortSpec { name: p.name.clone(), width: p.width, input: p.dir == Dir::Input })
            .collect(),
        clock: "ap_clk".into(),
        trace,
        cache_dir: None,
    }
}

impl SimDevice {
    /// Build (cached) and reset the kernel of `d`, with memory `timing` and `mem_bytes` of
    /// device memory; `clock_mhz` converts wait timeouts to cycles.
    pub fn new(d: &Design, timing: MemTiming, clock_mhz: f64, mem_bytes: u64) -> Result<SimDevice> {
        SimDevice::build(d, timing, clock_mhz, mem_bytes, None)
    }

    /// The kernel generated for `cfg`, behind the DRAM model of its board (bandwidth, clock and
    /// each port's limit from the config, 100 ns latency), with `mem_bytes` of device memory; optionally with
    /// a waveform of cycles `from..to` at `path`.
    pub fn for_config(
        cfg: &model::Config,
        mem_bytes: u64,
        wave: Option<(&std::path::Path, u64, u64)>,
    ) -> Result<SimDevice> {
        let d = hdl::generate(cfg);
        let b = &cfg.board;
        let timing =
            MemTiming::from_board(b.bandwidth_gbs, b.clock_mhz, 100.0).with_port_limit(cfg.port_bytes_per_cycle());
        SimDevice::build(&d, timing, b.clock_mhz, mem_bytes, wave)
    }

    /// As [`SimDevice::new`], and dump cycles `from..to` of everything the kernel does to an FST
    /// waveform at `path` (a separate, traced build of the kernel).
    pub fn with_waveform(
        d: &Design,
        timing: MemTiming,
        clock_mhz: f64,
        mem_bytes: u64,
        path: &std::path::Path,
        from: u64,
        to: u64,
    ) -> Result<SimDevice> {
        SimDevice::build(d, timing, clock_mhz, mem_bytes, Some((path, from, to)))
    }

    fn build(
        d: &Design,
        timing: MemTiming,
        clock_mhz: f64,
        mem_bytes: u64,
        wave: Option<(&std::path::Path, u64, u64)>,
    ) -> Result<SimDevice> {
        let mut model =
            Model::new(&kernel_spec(d, wave.is_some())).with_context(|| format!("building the kernel {}", d.kernel))?;
        if let Some((path, from, to)) = wave {
            model.trace(path, from, to)?;
        }
        // Every master port on the one DRAM model: they share its bandwidth, as on the board.
        let prefixes: Vec<String> = (0..d.limits.MEM_PORTS).map(hdl::mem_port_prefix).collect();
        let prefixes: Vec<&str> = prefixes.iter().map(String::as_str).collect();
        let mem = AxiMem::new(&model, &prefixes, d.bus_bits, timing)?;
        let g = |n: &str| model.port(&format!("s_axi_control_{n}"));
        let c = Ctrl {
            awaddr: g("awaddr")?,
            awvalid: g("awvalid")?,
            awready: g("awready")?,
            wdata: g("wdata")?,
            wstrb: g("wstrb")?,
            wvalid: g("wvalid")?,
            wready: g("wready")?,
            bvalid: g("bvalid")?,
            bready: g("bready")?,
            araddr: g("araddr")?,
            arvalid: g("arvalid")?,
            arready: g("arready")?,
            rdata: g("rdata")?,
            rvalid: g("rvalid")?,
            rready: g("rready")?,
        };
        let rst = model.port("ap_rst_n")?;
        let mut dev = SimDevice { model, mem, c, next: MEM_BASE, limit: mem_bytes, clock_mhz, times: None };
        dev.model.set_u64(rst, 0);
        dev.cycle()?;
        dev.cycle()?;
        dev.model.set_u64(rst, 1);
        dev.cycle()?;
        Ok(dev)
    }

    /// One clock cycle with the memory model around it.
    fn cycle(&mut self) -> Result<()> {
        self.mem.drive(&mut self.model);
        self.model.eval();
        self.mem.observe(&self.model)?;
        self.model.tick();
        Ok(())
    }

    /// Cycles simulated so far.
    pub fn cycles(&self) -> u64 {
        self.model.cycles()
    }

    /// Trace when each descriptor is decoded (see [`Device::descriptor_times`]): `wait` then
    /// polls the descriptor counter every 16 cycles instead of CTRL every 64 (the kernel's own
    /// cycle counts do not change; the simulation runs a little slower).
    pub fn trace_descriptors(&mut self, on: bool) {
        self.times = on.then(Vec::new);
    }

    /// Bytes read and written by the kernel.
    pub fn traffic(&self) -> (u64, u64) {
        self.mem.traffic()
    }

    fn until(&mut self, what: &str, limit: u64, mut done: impl FnMut(&Model) -> bool) -> Result<()> {
        for _ in 0..limit {
            self.mem.drive(&mut self.model);
            self.model.eval();
            let d = done(&self.model);
            self.mem.observe(&self.model)?;
            self.model.tick();
            if d {
                return Ok(());
            }
        }
        bail!("sim: {what} did not complete within {limit} cycles")
    }
}

impl Device for SimDevice {
    fn name(&self) -> String {
        "sim".into()
    }

    fn read_reg(&mut self, offset: u32) -> Result<u32> {
        let c = &self.c;
        let (araddr, arvalid, arready, rvalid, rready, rdata) =
            (c.araddr, c.arvalid, c.arready, c.rvalid, c.rready, c.rdata);
        self.model.set_u64(araddr, offset as u64);
        self.model.set_u64(arvalid, 1);
        self.model.set_u64(rready, 0);
        self.until("AXI4-Lite read address", 100, |m| m.get_u64(arready) == 1)?;
        self.model.set_u64(arvalid, 0);
        self.model.set_u64(rready, 1);
        let mut value = 0;
        self.until("AXI4-Lite read data", 100, |m| {
            let v = m.get_u64(rvalid) == 1;
            if v {
                value = m.get_u64(rdata) as u32;
            }
            v
        })?;
        self.model.set_u64(rready, 0);
        Ok(value)
    }

    fn write_reg(&mut self, offset: u32, value: u32) -> Result<()> {
        let c = &self.c;
        let (awaddr, awvalid, awready, wdata, wstrb, wvalid, wready, bvalid, bready) =
            (c.awaddr, c.awvalid, c.awready, c.wdata, c.wstrb, c.wvalid, c.wready, c.bvalid, c.bready);
        self.model.set_u64(awaddr, offset as u64);
        self.model.set_u64(wdata, value as u64);
        self.model.set_u64(wstrb, 0xf);
        self.model.set_u64(awvalid, 1);
        self.model.set_u64(wvalid, 1);
        self.model.set_u64(bready, 0);
        self.until("AXI4-Lite write", 100, |m| m.get_u64(awready) == 1 && m.get_u64(wready) == 1)?;
        self.model.set_u64(awvalid, 0);
        self.model.set_u64(wvalid, 0);
        self.model.set_u64(bready, 1);
        self.until("AXI4-Lite write response", 100, |m| m.get_u64(bvalid) == 1)?;
        self.model.set_u64(bready, 0);
        Ok(())
    }

    fn alloc(&mut self, bytes: u64) -> Result<u64> {
        let addr = self.next;
        let size = bytes.div_ceil(4096) * 4096;
        if addr + size - MEM_BASE > self.limit {
            bail!(
                "sim: device memory exhausted: {} of {} bytes in use, {bytes} more requested",
                addr - MEM_BASE,
                self.limit
            );
        }
        self.next += size;
        Ok(addr)
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<()> {
        if addr < MEM_BASE || addr + data.len() as u64 > self.next {
            bail!("sim: device address range {addr:#x}+{} is outside allocated memory", data.len());
        }
        self.mem.dram.write(addr, data);
        Ok(())
    }

    fn read(&mut self, addr: u64, out: &mut [u8]) -> Result<()> {
        if addr < MEM_BASE || addr + out.len() as u64 > self.next {
            bail!("sim: device address range {addr:#x}+{} is outside allocated memory", out.len());
        }
        self.mem.dram.read(addr, out);
        Ok(())
    }

    fn descriptor_times(&mut self) -> Vec<(u64, u64)> {
        self.times.clone().unwrap_or_default()
    }

    fn wait(&mut self, timeout: Duration) -> Result<()> {
        let budget = (timeout.as_secs_f64() * self.clock_mhz * 1e6).ceil() as u64;
        let start = self.cycles();
        let descriptors = regmap::counter(regmap::COUNTER_NAMES.iter().position(|&n| n == "descriptors").unwrap_or(0));
        if let Some(t) = &mut self.times {
            t.clear();
        }
        let poll = if self.times.is_some() { 16 } else { 64 };
        loop {
            let ctrl = self.read_reg(regmap::CTRL)?;
            if self.times.is_some() {
                let n = self.read_reg(descriptors)? as u64;
                let at = self.cycles() - start;
                if let Some(t) = &mut self.times {
                    if t.last().is_none_or(|&(m, _)| m != n) {
                        t.push((n, at));
                    }
                }
            }
            if ctrl & regmap::ctrl::DONE != 0 {
                break;
            }
            let spent = self.cycles() - start;
            if spent >= budget {
                bail!(
                    "sim: the kernel did not finish within {spent} cycles ({:?} at {} MHz); CTRL = {ctrl:#x}",
                    timeout,
                    self.clock_mhz
                );
            }
            for _ in 0..poll {
                self.cycle()?;
            }
        }
        let err = self.read_reg(regmap::ERROR)?;
        if err != 0 {
            let (code, op, index) = (err & 0xff, (err >> 8) & 0xff, err >> 16);
            let what = match code {
                regmap::error::UNSUPPORTED_OP => "opcode not implemented by this kernel",
                regmap::error::NO_SETUP => "op before SETUP",
                regmap::error::BUS => "memory access error",
                regmap::error::SIZE => "sizes or formats beyond what this kernel was generated for",
                _ => "unknown error",
            };
            bail!("sim: the kernel stopped at descriptor {index} (opcode {op:#04x}): {what} (ERROR = {err:#010x})");
        }
        Ok(())
    }
}
