//! Lock-step comparison of the simulated kernel with the reference device: the runtime builds
//! the same programs for both, and after every program (the prefill, then each decode step) the
//! logits must be equal bit for bit. On the first difference the error says where, and — when a
//! waveform path is given — the run is replayed on a traced build that dumps exactly the failing
//! program's cycles, so the FST shows the op that went wrong and nothing else.

use crate::session::Session;
use crate::simdev::SimDevice;
use anyhow::{bail, Result};
use model::reference::argmax;
use std::path::Path;

/// Device memory of the simulated kernel in these comparisons.
const SIM_MEM: u64 = 256 << 20;

/// What a lock-step run produced (both backends agreed on all of it).
#[derive(Debug, Clone, PartialEq)]
pub struct Lockstep {
    /// Tokens fed after the prompt (greedy choices), one per decode step.
    pub tokens: Vec<u32>,
    /// Q.16 logits after the last program.
    pub logits: Vec<i32>,
    /// Kernel cycles of each program: the prefill, then every decode step.
    pub cycles: Vec<u64>,
}

/// Run `prompt`, then `steps` greedy decode steps (fewer if the context fills), on the simulated
/// kernel and on the reference device, comparing logits after every program.
pub fn lockstep(s: &Session, prompt: &[u32], steps: usize, waveform: Option<&Path>) -> Result<Lockstep> {
    let mut sim = s.runtime(SimDevice::for_config(&s.cfg, SIM_MEM, None)?)?;
    let mut refr = s.ref_runtime()?;
    let steps = steps.min(s.cfg.model.max_seq.saturating_sub(prompt.len()));
    let mut out = Lockstep { tokens: Vec::new(), logits: Vec::new(), cycles: Vec::new() };
    // Program k feeds `inputs[k]`: the whole prompt, then one token per step.
    let mut inputs: Vec<Vec<u32>> = vec![prompt.to_vec()];
    for k in 0..=steps {
        let c0 = sim.device().cycles();
        let a = if k == 0 { sim.prefill(prompt)? } else { sim.decode(inputs[k][0])? };
        let c1 = sim.device().cycles();
        let b = if k == 0 { refr.prefill(prompt)? } else { refr.decode(inputs[k][0])? };
        out.cycles.push(c1 - c0);
        if a != b {
            let i = a.iter().zip(&b).position(|(x, y)| x != y).unwrap_or(0);
            let what = if k == 0 { "the prefill".to_string() } else { format!("decode step {k}") };
            let mut msg = format!(
                "{what} (config {}, prompt of {}, position {}): logits differ from the reference device, first \
                 at vocabulary index {i}: sim {}, ref {} ({} of {} differ)",
                s.cfg.name,
                prompt.len(),
                prompt.len() + k.saturating_sub(1),
                a[i],
                b[i],
                a.iter().zip(&b).filter(|(x, y)| x != y).count(),
                a.len()
            );
            if let Some(path) = waveform {
                replay_with_waveform(s, &inputs, path, c0, c1)?;
                msg.push_str(&format!("; waveform of that program (cycles {c0}..{c1}) written to {}", path.display()));
            }
            bail!(msg);
        }
        let next = argmax(&a);
        out.logits = a;
        if k < steps {
            out.tokens.push(next);
            inputs.push(vec![next]);
        }
    }
    Ok(out)
}

/// Replay `inputs` (the prompt, then one token per decode step: the programs up to and including
/// the failing one) on a traced build that records cycles `from..to` to the FST file `path`.
pub fn replay_with_waveform(s: &Session, inputs: &[Vec<u32>], path: &Path, from: u64, to: u64) -> Result<()> {
    let mut sim = s.runtime(SimDevice::for_config(&s.cfg, SIM_MEM, Some((path, from, to)))?)?;
    for (k, ids) in inputs.iter().enumerate() {
        if k == 0 {
            sim.prefill(ids)?;
        } else {
            sim.decode(ids[0])?;
        }
    }
    Ok(())
}
