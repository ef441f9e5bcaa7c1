//! Device memory behind the design's AXI4 master ports: a DRAM model with a configurable
//! latency and a shared bandwidth budget, and a protocol monitor that fails the simulation on
//! the first violation by the master (valid dropped or payload changed before ready, bursts
//! across 4 KiB, wrong size or burst type, WLAST in the wrong place).
//!
//! Each cycle, around the model's clock edge:
//! `mem.drive(&mut model)` (slave outputs for this cycle) → `model.eval()` →
//! `mem.observe(&model)?` (handshakes, checks, memory updates) → `model.tick()`.

use crate::model::{Model, PortId};
use crate::SimError;
use std::collections::{BTreeMap, VecDeque};

/// Timing of the memory.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemTiming {
    /// Cycles from an accepted read address to its first data beat.
    pub read_latency: u64,
    /// Cycles from a burst's last write beat to its response.
    pub write_latency: u64,
    /// Bytes per cycle all ports share (e.g. 17.1 GB/s at 250 MHz = 68.4).
    pub bytes_per_cycle: f64,
    /// Read or write bursts a port accepts before holding its address ready low.
    pub max_outstanding: usize,
    /// Bytes per cycle one port carries at most (reads and writes together): the board's port
    /// behind a wider master at the port's own clock (`Config::port_bytes_per_cycle`);
    /// infinite when the master's width is the limit.
    pub port_bytes_per_cycle: f64,
}

impl MemTiming {
    /// A memory of `gb_per_s` at `clock_mhz` with `latency_ns` of access latency.
    pub fn from_board(gb_per_s: f64, clock_mhz: f64, latency_ns: f64) -> MemTiming {
        let lat = (latency_ns * clock_mhz / 1000.0).ceil() as u64;
        MemTiming {
            read_latency: lat,
            write_latency: lat / 2,
            bytes_per_cycle: gb_per_s * 1000.0 / clock_mhz,
            max_outstanding: 16,
            port_bytes_per_cycle: f64::INFINITY,
        }
    }

    /// The same memory behind ports that carry at most `bytes_per_cycle` each.
    pub fn with_port_limit(self, bytes_per_cycle: f64) -> MemTiming {
        MemTiming { port_bytes_per_cycle: bytes_per_cycle, ..self }
    }
}

/// Sparse byte-addressed memory (4 KiB pages).
#[derive(Debug, Default, Clone)]
pub struct Dram {
    pages: BTreeMap<u64, Box<[u8; 4096]>>,
}

impl Dram {
    /// Read bytes (unwritten memory reads as zero).
    pub fn read(&self, addr: u64, out: &mut [u8]) {
        for (i, b) in out.iter_mut().enumerate() {
            let a = addr + i as u64;
            *b = self.pages.get(&(a >> 12)).map(|p| p[(a & 4095) as usize]).unwrap_or(0);
        }
    }

    /// Write bytes.
    pub fn write(&mut self, addr: u64, data: &[u8]) {
        for (i, &b) in data.iter().enumerate() {
            let a = addr + i as u64;
            self.pages.entry(a >> 12).or_insert_with(|| Box::new([0; 4096]))[(a & 4095) as usize] = b;
        }
    }
}

struct Ids {
    araddr: PortId,
    arlen: PortId,
    arsize: PortId,
    arburst: PortId,
    arvalid: PortId,
    arready: PortId,
    rdata: PortId,
    rresp: PortId,
    rlast: PortId,
    rvalid: PortId,
    rready: PortId,
    awaddr: PortId,
    awlen: PortId,
    awsize: PortId,
    awburst: PortId,
    awvalid: PortId,
    awready: PortId,
    wdata: PortId,
    wstrb: PortId,
    wlast: PortId,
    wvalid: PortId,
    wready: PortId,
    bresp: PortId,
    bvalid: PortId,
    bready: PortId,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Burst {
    addr: u64,
    beats: u64,
    ready_at: u64,
}

/// One slave port's state.
struct Port {
    name: String,
    ids: Ids,
    bytes: usize,
    reads: VecDeque<Burst>,
    r_beat: u64,
    r_presented: bool,
    writes: VecDeque<Burst>,
    w_beat: u64,
    responses: VecDeque<u64>,
    // Monitor: the master's pending (valid, not yet ready) payloads from the last cycle.
    ar_hold: Option<(u64, u64, u64, u64)>,
    aw_hold: Option<(u64, u64, u64, u64)>,
    w_hold: Option<(Vec<u32>, Vec<u32>, u64)>,
    read_bytes: u64,
    write_bytes: u64,
    // Bandwidth budget of this port alone (`MemTiming::port_bytes_per_cycle`).
    credit: f64,
    // The master's write data was valid last cycle (a streaming writer: its beat is granted in
    // the port's turn), and the budget taken for it this cycle.
    w_was_valid: bool,
    w_reserved: bool,
}

impl Port {
    /// The shared budget `shared` and the port's own both cover one beat.
    fn affords(&self, shared: f64) -> bool {
        shared >= self.bytes as f64 && self.credit >= self.bytes as f64
    }
}

/// Take `bytes` from the shared budget and a port's own (negative: give them back).
fn charge(shared: &mut f64, own: &mut f64, bytes: f64) {
    *shared -= bytes;
    *own -= bytes;
}

/// Memory, the slave side of every master port, and the protocol monitor.
pub struct AxiMem {
    /// The memory contents.
    pub dram: Dram,
    timing: MemTiming,
    ports: Vec<Port>,
    credit: f64,
    cycle: u64,
}

impl AxiMem {
    /// Attach to the masters `prefixes` of `model`, each `data_bits` wide.
    pub fn new(model: &Model, prefixes: &[&str], data_bits: usize, timing: MemTiming) -> Result<AxiMem, SimError> {
        let mut ports = Vec::new();
        for prefix in prefixes {
            let g = |n: &str| model.port(&format!("{prefix}{n}"));
            let ids = Ids {
                araddr: g("araddr")?,
                arlen: g("arlen")?,
                arsize: g("arsize")?,
                arburst: g("arburst")?,
                arvalid: g("arvalid")?,
                arready: g("arready")?,
                rdata: g("rdata")?,
                rresp: g("rresp")?,
                rlast: g("rlast")?,
                rvalid: g("rvalid")?,
                rready: g("rready")?,
                awaddr: g("awaddr")?,
                awlen: g("awlen")?,
                awsize: g("awsize")?,
                awburst: g("awburst")?,
                awvalid: g("awvalid")?,
                awready: g("awready")?,
                wdata: g("wdata")?,
                wstrb: g("wstrb")?,
                wlast: g("wlast")?,
                wvalid: g("wvalid")?,
                wready: g("wready")?,
                bresp: g("bresp")?,
                bvalid: g("bvalid")?,
                bready: g("bready")?,
            };
            ports.push(Port {
                name: prefix.trim_end_matches('_').to_string(),
                ids,
                bytes: data_bits / 8,
                reads: VecDeque::new(),
                r_beat: 0,
                r_presented: false,
                writes: VecDeque::new(),
                w_beat: 0,
                responses: VecDeque::new(),
                ar_hold: None,
                aw_hold: None,
                w_hold: None,
                read_bytes: 0,
                write_bytes: 0,
                credit: 0.0,
                w_was_valid: false,
                w_reserved: false,
            });
        }
        Ok(AxiMem { dram: Dram::default(), timing, ports, credit: 0.0, cycle: 0 })
    }

    /// Bytes read and written over all ports.
    pub fn traffic(&self) -> (u64, u64) {
        self.ports.iter().fold((0, 0), |(r, w), p| (r + p.read_bytes, w + p.write_bytes))
    }

    /// Nothing in flight on any port.
    pub fn idle(&self) -> bool {
        self.ports.iter().all(|p| p.reads.is_empty() && p.writes.is_empty() && p.responses.is_empty())
    }

    /// Set the slave outputs for this cycle.
    pub fn drive(&mut self, m: &mut Model) {
        let beat_cap = self.ports.iter().map(|p| p.bytes).sum::<usize>() as f64;
        self.credit = (self.credit + self.timing.bytes_per_cycle).min(self.timing.bytes_per_cycle + beat_cap);
        let now = self.cycle;
        let port_rate = self.timing.port_bytes_per_cycle;
        // Port 0 (the engines' own reads and writes: what the current op waits for) is served
        // first, as a higher AXI QoS on its HP port would have it; the weight ports take the
        // rest of the shared budget in turn, starting one further each cycle (a DRAM
        // controller's round-robin). Served in a fixed order, the last port starved whenever
        // the others could take all of it, and an engine that splits its reads over the ports
        // (the weight loader, the LM head's row lanes) waited for it.
        let n = self.ports.len();
        let first = 1 + (now % (n.max(2) - 1) as u64) as usize;
        for i in 0..n {
            let p = &mut self.ports[if i == 0 { 0 } else { 1 + (first - 1 + i - 1) % (n - 1) }];
            p.credit = (p.credit + port_rate).min(port_rate + p.bytes as f64);
            let id = &p.ids;
            m.set_u64(id.arready, (p.reads.len() < self.timing.max_outstanding) as u64);
            m.set_u64(id.awready, (p.writes.len() < self.timing.max_outstanding) as u64);
            // A read beat, once presented, stays until taken (its bandwidth is spent then).
            if !p.r_presented {
                if let Some(b) = p.reads.front() {
                    if b.ready_at <= now && p.affords(self.credit) {
                        charge(&mut self.credit, &mut p.credit, p.bytes as f64);
                        p.r_presented = true;
                    }
                }
            }
            if p.r_presented {
                let b = *p.reads.front().expect("presented beat has a burst");
                let mut data = vec![0u8; p.bytes];
                self.dram.read(b.addr + p.r_beat * p.bytes as u64, &mut data);
                let words: Vec<u32> = data.chunks(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
                m.set(id.rdata, &words);
                m.set_u64(id.rlast, (p.r_beat + 1 == b.beats) as u64);
            }
            m.set_u64(id.rresp, 0);
            m.set_u64(id.rvalid, p.r_presented as u64);
            // A write beat takes its budget in the port's turn when the master is streaming (its
            // data was valid last cycle; given back if it does not come): otherwise the reads of
            // the ports after it spent the budget first, and port 0's writes went last.
            let w_ok = !p.writes.is_empty() && p.affords(self.credit);
            p.w_reserved = w_ok && p.w_was_valid;
            if p.w_reserved {
                charge(&mut self.credit, &mut p.credit, p.bytes as f64);
            }
            m.set_u64(id.wready, w_ok as u64);
            m.set_u64(id.bresp, 0);
            m.set_u64(id.bvalid, p.responses.front().is_some_and(|&t| t <= now) as u64);
        }
    }

    /// After `eval`: perform this cycle's handshakes and check the master's side of the protocol.
    pub fn observe(&mut self, m: &Model) -> Result<(), SimError> {
        let now = self.cycle;
        let timing = self.timing;
        for p in &mut self.ports {
            let id = &p.ids;
            let violation = |msg: String| SimError::Protocol { port: p.name.clone(), cycle: now, msg };
            let on = |x: PortId| m.get_u64(x) == 1;
            let size_ok = 1u64 << m.get_u64(id.arsize) == p.bytes as u64;
            // ---- read address
            let ar = (m.get_u64(id.araddr), m.get_u64(id.arlen), m.get_u64(id.arsize), m.get_u64(id.arburst));
            if let Some(held) = p.ar_hold {
                if !on(id.arvalid) {
                    return Err(violation("ARVALID dropped before ARREADY".into()));
                }
                if held != ar {
                    return Err(violation(format!(
                        "AR payload changed while waiting for ARREADY: {held:x?} -> {ar:x?}"
                    )));
                }
            }
            let ar_fire = on(id.arvalid) && on(id.arready);
            if on(id.arvalid) {
                check_burst(ar, p.bytes, size_ok).map_err(|e| violation(format!("read burst {e}")))?;
            }
            p.ar_hold = (on(id.arvalid) && !ar_fire).then_some(ar);
            // ---- read data
            if p.r_presented && on(id.rready) {
                let b = p.reads.front_mut().expect("presented");
                p.r_beat += 1;
                p.read_bytes += p.bytes as u64;
                p.r_presented = false;
                if p.r_beat == b.beats {
                    p.reads.pop_front();
                    p.r_beat = 0;
                }
            }
            if ar_fire {
                p.reads.push_back(Burst { addr: ar.0, beats: ar.1 + 1, ready_at: now + timing.read_latency });
            }
            // ---- write address
            let aw = (m.get_u64(id.awaddr), m.get_u64(id.awlen), m.get_u64(id.awsize), m.get_u64(id.awburst));
            if let Some(held) = p.aw_hold {
                if !on(id.awvalid) {
                    return Err(violation("AWVALID dropped before AWREADY".into()));
                }
                if held != aw {
                    return Err(violation(format!(
                        "AW payload changed while waiting for AWREADY: {held:x?} -> {aw:x?}"
                    )));
                }
            }
            let aw_fire = on(id.awvalid) && on(id.awready);
            if on(id.awvalid) {
                let size_ok = 1u64 << m.get_u64(id.awsize) == p.bytes as u64;
                check_burst(aw, p.bytes, size_ok).map_err(|e| violation(format!("write burst {e}")))?;
            }
            p.aw_hold = (on(id.awvalid) && !aw_fire).then_some(aw);
            // ---- write data
            let (wdata, wstrb, wlast) = (m.get(id.wdata), m.get(id.wstrb), m.get_u64(id.wlast));
            if let Some((d, s, l)) = &p.w_hold {
                if !on(id.wvalid) {
                    return Err(violation("WVALID dropped before WREADY".into()));
                }
                if *d != wdata || *s != wstrb || *l != wlast {
                    return Err(violation("W payload changed while waiting for WREADY".into()));
                }
            }
            let w_fire = on(id.wvalid) && on(id.wready);
            if p.w_reserved && !w_fire {
                charge(&mut self.credit, &mut p.credit, -(p.bytes as f64));
            }
            p.w_was_valid = on(id.wvalid);
            p.w_hold = (on(id.wvalid) && !w_fire).then(|| (wdata.clone(), wstrb.clone(), wlast));
            if w_fire {
                let b = *p.writes.front().expect("wready only with an open burst");
                let last = p.w_beat + 1 == b.beats;
                if (wlast == 1) != last {
                    return Err(violation(format!(
                        "WLAST = {wlast} on beat {} of a {}-beat burst at {:#x}",
                        p.w_beat + 1,
                        b.beats,
                        b.addr
                    )));
                }
                let bytes: Vec<u8> = wdata.iter().flat_map(|w| w.to_le_bytes()).take(p.bytes).collect();
                let base = b.addr + p.w_beat * p.bytes as u64;
                for (i, &byte) in bytes.iter().enumerate() {
                    if (wstrb[i / 32] >> (i % 32)) & 1 == 1 {
                        self.dram.write(base + i as u64, &[byte]);
                    }
                }
                if !p.w_reserved {
                    charge(&mut self.credit, &mut p.credit, p.bytes as f64);
                }
                p.write_bytes += p.bytes as u64;
                p.w_beat += 1;
                if last {
                    p.writes.pop_front();
                    p.w_beat = 0;
                    p.responses.push_back(now + timing.write_latency);
                }
            }
            if aw_fire {
                p.writes.push_back(Burst { addr: aw.0, beats: aw.1 + 1, ready_at: now });
            }
            // ---- write response
            if p.responses.front().is_some_and(|&t| t <= now) && on(id.bready) {
                p.responses.pop_front();
            }
        }
        self.cycle += 1;
        Ok(())
    }
}

/// AXI rules on a burst's payload `(addr, len, size, burst)`.
fn check_burst((addr, len, size, burst): (u64, u64, u64, u64), bytes: usize, size_ok: bool) -> Result<(), String> {
    if burst != 1 {
        return Err(format!("at {addr:#x}: burst type {burst}, only INCR (1) is used"));
    }
    if !size_ok {
        return Err(format!("at {addr:#x}: size {size} is not the full bus width ({bytes} bytes)"));
    }
    if addr % bytes as u64 != 0 {
        return Err(format!("at {addr:#x}: not aligned to the {bytes}-byte bus"));
    }
    let end = addr + (len + 1) * bytes as u64 - 1;
    if addr >> 12 != end >> 12 {
        return Err(format!("at {addr:#x}: {} beats cross a 4 KiB boundary", len + 1));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_rules() {
        assert!(check_burst((0x1000, 255, 4, 1), 16, true).is_ok());
        assert!(check_burst((0x1f00, 16, 4, 1), 16, true).unwrap_err().contains("cross a 4 KiB boundary"));
        assert!(check_burst((0x1008, 0, 4, 1), 16, true).unwrap_err().contains("not aligned"));
        assert!(check_burst((0x1000, 0, 4, 2), 16, true).unwrap_err().contains("only INCR"));
        assert!(check_burst((0x1000, 0, 3, 1), 16, false).unwrap_err().contains("full bus width"));
    }

    #[test]
    fn dram_is_sparse_and_zero_initialised() {
        let mut d = Dram::default();
        d.write(0xfff, &[1, 2, 3]);
        let mut out = [9u8; 5];
        d.read(0xffe, &mut out);
        assert_eq!(out, [0, 1, 2, 3, 0]);
    }

    #[test]
    fn kv260_timing() {
        let t = MemTiming::from_board(17.1, 250.0, 100.0);
        assert!((t.bytes_per_cycle - 68.4).abs() < 1e-9);
        assert_eq!(t.read_latency, 25);
    }
}
