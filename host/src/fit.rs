//! `trit fit`: search the engine parameters (TLMM tables per step, output columns, tokens per
//! weight fetch, weight-buffer depth, attention's query block; the AXI ports stay at the
//! board's, more never hurts) for
//! the best projected decode, then prefill, with every resource within 90 % of the board, and
//! say what binds. Resources come from the config's synthesized units (`trit report`) scaled by
//! [`crate::report::estimate_resources`]; performance from [`crate::perfmodel`].

use crate::report::{self, SweepPoint};
use crate::synth::Resources;
use anyhow::{bail, Result};
use model::Config;

/// The fitter's answer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FitResult {
    /// The chosen point.
    pub best: SweepPoint,
    /// Candidates evaluated / within budget.
    pub evaluated: usize,
    /// Within 90 % of every resource.
    pub feasible: usize,
    /// What binds, in words.
    pub binds: Vec<String>,
}

/// Share of the board each resource takes.
pub fn shares(r: &Resources, b: &Resources) -> [(&'static str, f64); 5] {
    let (rp, bp) = (r.pairs(), b.pairs());
    std::array::from_fn(|i| (rp[i].0, rp[i].1 / bp[i].1.max(1e-9)))
}

/// Search.
pub fn fit(cfg: &Config, points: Vec<SweepPoint>) -> Result<FitResult> {
    let budget = report::budget(cfg);
    let evaluated = points.len();
    // The variant nearest to fitting: the smallest largest share (what a user would shrink to).
    let worst = |p: &SweepPoint| shares(&p.resources, &budget).iter().map(|(_, s)| *s).fold(0.0, f64::max);
    let nearest = points.iter().min_by(|a, b| worst(a).total_cmp(&worst(b))).cloned();
    let ok: Vec<SweepPoint> = points.into_iter().filter(|p| worst(p) <= 0.9).collect();
    let feasible = ok.len();
    let key = |p: &SweepPoint| (p.projected.decode_tok_s, -p.projected.ttft_s.1);
    let Some(best) = ok.into_iter().max_by(|a, b| {
        let (ka, kb) = (key(a), key(b));
        // Decode within 0.5 % counts as equal: then the faster prefill, then the smaller design.
        if (ka.0 - kb.0).abs() > 0.005 * ka.0.max(kb.0) {
            ka.0.total_cmp(&kb.0)
        } else if (ka.1 - kb.1).abs() > 1e-4 {
            ka.1.total_cmp(&kb.1)
        } else {
            b.resources.lut.total_cmp(&a.resources.lut)
        }
    }) else {
        let Some(n) = nearest else {
            bail!("no engine variant of {} validates, so none can fit the {}", cfg.name, cfg.board.name);
        };
        let over: Vec<String> = shares(&n.resources, &budget)
            .iter()
            .filter(|(_, s)| *s > 0.9)
            .map(|(r, s)| format!("{r} {:.0}%", 100.0 * s))
            .collect();
        bail!(
            "no engine variant of {} fits within 90% of every {} resource ({evaluated} evaluated); the nearest \
             (tables_per_step {}, columns_per_cycle {}, prefill_tokens {}, weight_buffer_beats {}, attention_queries {}, attention_ports {}) \
             still needs {} of the board -- the engines' fixed logic, not the swept parameters, has to shrink \
             (docs/report.md, \"Where tellme-kv260 stands\")",
            cfg.name,
            cfg.board.name,
            n.tables,
            n.cols,
            n.tokens,
            n.wbuf,
            n.queries,
            n.attn_ports,
            over.join(", ")
        );
    };
    let mut binds = Vec::new();
    let s = shares(&best.resources, &budget);
    let (rname, rmax) = s.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1)).unwrap_or(("lut", 0.0));
    binds.push(format!("largest resource share: {rname} at {:.0}% (limit 90%)", 100.0 * rmax));
    binds.push(format!(
        "decode: {:.1} tok/s = {:.0}% of the DRAM roofline ({:.1} tok/s); {}",
        best.projected.decode_tok_s,
        100.0 * best.projected.roofline_fraction,
        best.projected.roofline_tok_s,
        best.projected.binds
    ));
    let tl = hdl::TlmmParams::from_config(&with(cfg, &best)).tlmm();
    binds.push(format!(
        "prefill: {} lookups/cycle; TTFT(128) {:.3} s -- more tables x columns would need more {rname}",
        tl.lookups_per_cycle(),
        best.projected.ttft_s.1
    ));
    Ok(FitResult { best, evaluated, feasible, binds })
}

/// `cfg` with a sweep point's engine parameters.
pub fn with(cfg: &Config, p: &SweepPoint) -> Config {
    let mut c = cfg.clone();
    c.engine.tables_per_step = p.tables;
    c.engine.columns_per_cycle = p.cols;
    c.engine.prefill_tokens = p.tokens;
    c.engine.weight_buffer_beats = p.wbuf;
    c.engine.attention_queries = p.queries;
    c.engine.attention_ports = Some(p.attn_ports);
    c
}

/// The chosen config as TOML: when only engine keys differ from a preset (the usual case), as
/// `base = "<preset>"` and those keys (the form of `configs/tellme-kv260-fit.toml`); otherwise
/// every key, with the board by name.
pub fn config_toml(cfg: &Config, r: &FitResult) -> Result<String> {
    let c = with(cfg, &r.best);
    let name = format!("{}-fit", cfg.name);
    let head = format!(
        "# Written by `trit fit` from {}: projected {:.1} tok/s decode (context {}), TTFT(128) {:.3} s at {:.0} MHz.\n# {}\n",
        cfg.name,
        r.best.projected.decode_tok_s,
        r.best.projected.context,
        r.best.projected.ttft_s.1,
        r.best.projected.clock_mhz,
        r.binds.join("\n# ")
    );
    if let Some((base, engine)) = engine_variant(&c)? {
        let mut v = toml::Table::new();
        v.insert("name".into(), toml::Value::String(name));
        v.insert("base".into(), toml::Value::String(base.into()));
        v.insert("engine".into(), toml::Value::Table(engine));
        return Ok(head + &toml::to_string(&v)?);
    }
    let toml::Value::Table(mut v) = toml::Value::try_from(&c)? else { bail!("config is not a table") };
    v.insert("name".into(), toml::Value::String(name));
    v.insert("board".into(), toml::Value::String(cfg.board.name.clone()));
    Ok(head + &toml::to_string(&v)?)
}

/// A preset `c` differs from only in engine keys (the config's own name first), with those keys;
/// none if no preset's board, model and quantization are `c`'s, or a key the preset sets is unset
/// in `c` (a variant cannot unset it).
fn engine_variant(c: &Config) -> Result<Option<(&'static str, toml::Table)>> {
    let mut roots = Config::root_preset_names();
    roots.sort_by_key(|n| *n != c.name);
    for base in roots {
        let mut p = Config::preset(base)?;
        let preset_engine = std::mem::replace(&mut p.engine, c.engine.clone());
        p.name = c.name.clone();
        if p != *c {
            continue;
        }
        let (toml::Value::Table(mine), toml::Value::Table(theirs)) =
            (toml::Value::try_from(&c.engine)?, toml::Value::try_from(&preset_engine)?)
        else {
            bail!("engine config is not a table")
        };
        if theirs.keys().any(|k| !mine.contains_key(k)) {
            continue;
        }
        let changed = mine.into_iter().filter(|(k, v)| theirs.get(k) != Some(v)).collect();
        return Ok(Some((base, changed)));
    }
    Ok(None)
}
