//! Driving the generated TLMM engine in simulation: load packed weights into its buffer, stream
//! activations in and results out, count cycles. Used by the tests (bit-exact against the
//! reference's ternary matmul) and by `trit bench tlmm`.

use anyhow::{bail, Context, Result};
use hdl::{Design, Dir};
use model::pack::{Bits, Tlmm};
use sim::{BuildSpec, Model, PortId, PortSpec};

/// Build spec for a generated design (its sources and port table).
pub fn build_spec(d: &Design, trace: bool) -> BuildSpec {
    BuildSpec {
        top: d.top.clone(),
        sources: d.files.clone(),
        ports: d
            .ports
            .iter()
            .map(|p| PortSpec { name: p.name.clone(), width: p.width, input: p.dir == Dir::Input })
            .collect(),
        clock: "clk_i".into(),
        trace,
        cache_dir: None,
    }
}

/// Handshake irregularity to exercise the streams: every `n`-th cycle the activation source
/// withholds data and the result sink refuses (0 = never).
#[derive(Debug, Clone, Copy, Default)]
pub struct Throttle {
    /// Period of activation gaps.
    pub act_gap: u64,
    /// Period of result back-pressure.
    pub out_stall: u64,
}

/// Outcome of one matrix product.
#[derive(Debug, Clone)]
pub struct MatmulRun {
    /// `results[t][row]`.
    pub results: Vec<Vec<i32>>,
    /// Cycles from start to the done pulse.
    pub cycles: u64,
    /// The engine's busy-cycle counter.
    pub busy_cycles: u64,
    /// The engine's lookup-issue counter.
    pub issue_cycles: u64,
}

struct Ports {
    rst_n: PortId,
    we: PortId,
    waddr: PortId,
    wdata: PortId,
    start: PortId,
    tokens: PortId,
    blocks: PortId,
    steps: PortId,
    busy: PortId,
    done: PortId,
    cfg_err: PortId,
    act_valid: PortId,
    act_ready: PortId,
    act_data: PortId,
    out_valid: PortId,
    out_ready: PortId,
    out_data: PortId,
    busy_cycles: PortId,
    issue_cycles: PortId,
}

/// A simulated TLMM engine.
pub struct TlmmSim {
    /// The Verilator model.
    pub model: Model,
    /// Engine shape.
    pub tl: Tlmm,
    /// The design's parameters.
    pub params: hdl::TlmmParams,
    p: Ports,
}

impl TlmmSim {
    /// Build (cached) and reset the engine of a generated design.
    pub fn new(d: &Design) -> Result<TlmmSim> {
        TlmmSim::with_spec(d, &build_spec(d, false))
    }

    /// Build with an explicit spec (tracing, cache directory) and reset.
    pub fn with_spec(d: &Design, spec: &BuildSpec) -> Result<TlmmSim> {
        let mut model = Model::new(spec).with_context(|| format!("building {}", d.top))?;
        let g = |n: &str| model.port(n);
        let p = Ports {
            rst_n: g("rst_ni")?,
            we: g("wbuf_we_i")?,
            waddr: g("wbuf_addr_i")?,
            wdata: g("wbuf_data_i")?,
            start: g("start_i")?,
            tokens: g("tokens_i")?,
            blocks: g("blocks_i")?,
            steps: g("steps_i")?,
            busy: g("busy_o")?,
            done: g("done_o")?,
            cfg_err: g("cfg_err_o")?,
            act_valid: g("act_valid_i")?,
            act_ready: g("act_ready_o")?,
            act_data: g("act_data_i")?,
            out_valid: g("out_valid_o")?,
            out_ready: g("out_ready_i")?,
            out_data: g("out_data_o")?,
            busy_cycles: g("busy_cycles_o")?,
            issue_cycles: g("issue_cycles_o")?,
        };
        model.set_u64(p.rst_n, 0);
        model.tick();
        model.tick();
        model.set_u64(p.rst_n, 1);
        model.tick();
        Ok(TlmmSim { model, tl: d.params.tlmm(), params: d.params.clone(), p })
    }

    /// Write weight beats into the buffer from address 0.
    pub fn load_weights(&mut self, beats: &[Bits]) -> Result<()> {
        if beats.len() > self.params.WBUF_DEPTH {
            bail!("{} weight beats do not fit the {}-beat buffer", beats.len(), self.params.WBUF_DEPTH);
        }
        let m = &mut self.model;
        m.set_u64(self.p.we, 1);
        for (i, b) in beats.iter().enumerate() {
            m.set_u64(self.p.waddr, i as u64);
            m.set(self.p.wdata, &b.words);
            m.tick();
        }
        m.set_u64(self.p.we, 0);
        m.tick();
        Ok(())
    }

    /// `Y = W X` for an `n x k` matrix already in the buffer and `x[t]` (k int8 each).
    pub fn matmul(&mut self, n: usize, k: usize, x: &[Vec<i8>], throttle: Throttle, limit: u64) -> Result<MatmulRun> {
        let tl = self.tl;
        let tokens = x.len();
        let (steps, blocks) = (tl.steps(k), tl.blocks(n));
        // Activation beats in stream order: token-major (tlmm_core sweeps the weights per token).
        let per_token: Vec<Vec<Bits>> = x.iter().map(|v| tl.pack_activations(v)).collect();
        let acts: Vec<&Bits> = per_token.iter().flat_map(|b| b[..steps].iter()).collect();
        let m = &mut self.model;
        let p = &self.p;
        m.set_u64(p.tokens, tokens as u64);
        m.set_u64(p.blocks, blocks as u64);
        m.set_u64(p.steps, steps as u64);
        m.set_u64(p.start, 1);
        m.set_u64(p.act_valid, 0);
        m.set_u64(p.out_ready, 0);
        m.tick();
        m.set_u64(p.start, 0);
        m.eval();
        if m.get_u64(p.cfg_err) == 1 {
            bail!(
                "the engine refused the job: {tokens} tokens, {blocks} blocks, {steps} steps exceed its sizes {:?}",
                self.params
            );
        }
        let mut results = vec![vec![0i32; n]; tokens];
        let (mut next_act, mut outs) = (0usize, 0usize);
        let mut shown = usize::MAX;
        let start = m.cycles();
        loop {
            let c = m.cycles() - start;
            let act_ok = next_act < acts.len() && (throttle.act_gap == 0 || c % throttle.act_gap != 1);
            m.set_u64(p.act_valid, act_ok as u64);
            if act_ok && shown != next_act {
                m.set(p.act_data, &acts[next_act].words);
                shown = next_act;
            }
            let ready = throttle.out_stall == 0 || c % throttle.out_stall != 2;
            m.set_u64(p.out_ready, ready as u64);
            m.eval();
            if act_ok && m.get_u64(p.act_ready) == 1 {
                next_act += 1;
            }
            if ready && m.get_u64(p.out_valid) == 1 {
                let beat = Bits { width: tl.out_beat_bits(), words: m.get(p.out_data) };
                let (t, b) = (outs / blocks, outs % blocks);
                if t >= tokens {
                    bail!("the engine produced more than the {} expected result beats", blocks * tokens);
                }
                let rows = tl.unpack_result(&beat, b, n);
                results[t][b * tl.cols..b * tl.cols + rows.len()].copy_from_slice(&rows);
                outs += 1;
            }
            let done = m.get_u64(p.done) == 1;
            if done {
                break;
            }
            if c >= limit {
                bail!("TLMM did not finish within {limit} cycles ({outs} of {} results, {next_act} of {} activation beats)", blocks * tokens, acts.len());
            }
            m.tick();
        }
        if outs != blocks * tokens {
            bail!("the engine finished after {outs} of {} result beats", blocks * tokens);
        }
        if m.get_u64(p.busy) != 0 {
            bail!("the engine still reports busy after done");
        }
        Ok(MatmulRun {
            results,
            cycles: m.cycles() - start,
            busy_cycles: m.get_u64(p.busy_cycles),
            issue_cycles: m.get_u64(p.issue_cycles),
        })
    }
}
