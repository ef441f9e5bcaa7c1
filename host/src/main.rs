//! `trit`: generate, simulate and run ternary-LLM accelerators.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use host::accuracy;
use host::eval;
use host::sampling::SamplingParams;
use host::session::{generate, generate_greedy, GenOptions, Generation, Session};
use model::Config;
use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Parser)]
#[command(name = "trit", version, about = "Turn a small ternary LLM into an FPGA accelerator and run it")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The main job on the built-in tiny model: load it, run it, show what the numerics cost.
    Demo,
    /// Generate text (greedy by default, or sampled), streamed to the terminal.
    Run(RunArgs),
    /// Measure the bit-exact numerics against the float models (logit error, KL, top-1).
    Accuracy(AccuracyArgs),
    /// Logits of a prompt, or perplexity of a text file, under one numerics.
    Eval(EvalArgs),
    /// Print a resolved config (preset or file) as TOML or JSON.
    Config {
        /// Preset name or TOML file.
        #[arg(long, default_value = "tiny")]
        config: String,
        /// JSON instead of TOML.
        #[arg(long)]
        json: bool,
    },
    /// Write the tiny model (config.json, model.safetensors, tokenizer.json) to a directory.
    Tiny {
        /// Output directory.
        #[arg(long)]
        out: std::path::PathBuf,
        /// Config whose shapes to use.
        #[arg(long, default_value = "tiny")]
        config: String,
    },
    /// Generate the RTL, filelist and manifest for a config.
    Gen {
        /// Preset name or TOML file.
        #[arg(long, default_value = "tiny")]
        config: String,
        /// Output directory (rtl/, filelist.f, manifest.json).
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Show where the external tools (Verilator, yosys, iverilog) were found.
    Doctor,
    /// Cycle figures of the generated kernel in Verilator: one prefill and decode steps through
    /// random-weight layers, per-op cycles and DRAM bytes, roofline and compute fractions, and
    /// estimated TTFT and tokens/s for the whole model.
    Sim {
        /// Preset name or TOML file.
        #[arg(long, default_value = "tiny")]
        config: String,
        /// Decoder layers to simulate (figures are per layer; estimates scale to the model).
        #[arg(long, default_value_t = 1)]
        layers: usize,
        /// Prompt tokens of the prefill.
        #[arg(long, default_value_t = 128)]
        prompt_len: usize,
        /// Decode steps after the prefill (the last is reported).
        #[arg(long, default_value_t = 1)]
        decode_steps: usize,
        /// Simulate the LM head as well (else its cycles are estimated at the DRAM roofline).
        #[arg(long)]
        lm_head: bool,
        /// Also print each op's cycles inside the last prefill chunk's and decode step's
        /// programs beside the op alone (where overlap and waiting show).
        #[arg(long)]
        timeline: bool,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Import a checkpoint (Hugging Face directory or .safetensors, BitNet packed or float;
    /// GGUF with TQ1_0/TQ2_0 or float tensors) into the device weight image file.
    Import(ImportArgs),
    /// Resources (yosys synth_xilinx per engine, against the board), memory-inference checks,
    /// logic depth, and projected clock / decode tok/s / TTFT from the calibrated performance
    /// model, beside TeLLMe v2 and AccLLM (docs/report.md).
    Report(ReportArgs),
    /// Search the engine parameters for the best projected decode and prefill within 90% of
    /// every board resource (needs `trit report` on the config first); write the chosen config.
    Fit {
        /// Board the design must fit (must be the config's board).
        #[arg(long)]
        board: String,
        /// Preset name or TOML file to start from.
        #[arg(long)]
        config: String,
        /// Where to write the chosen config (TOML).
        #[arg(long)]
        out: std::path::PathBuf,
        /// Build directory of the config's `trit report` (default build/<config>).
        #[arg(long)]
        build: Option<std::path::PathBuf>,
    },
    /// Measure an engine in simulation.
    Bench {
        #[command(subcommand)]
        what: BenchCmd,
    },
}

#[derive(Subcommand)]
enum BenchCmd {
    /// TLMM cycles against the ideal, simulation speed, cold build times.
    Tlmm {
        /// Preset name or TOML file.
        #[arg(long, default_value = "tellme-kv260")]
        config: String,
        /// Shapes as NxKxTOKENS, comma-separated (default: the tellme-kv260 matrices).
        #[arg(long, value_delimiter = ',', default_value = "1536x1536x1,4096x1536x1,1536x4096x1,1536x1536x8")]
        shapes: Vec<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
struct ReportArgs {
    /// Preset name or TOML file.
    #[arg(long, default_value = "tellme-kv260")]
    config: String,
    /// Build directory (the design, reports/resources.json, the synthesis cache); default
    /// build/<config>.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
    /// JSON instead of the table.
    #[arg(long)]
    json: bool,
    /// Skip synthesis: only the performance model's projection at the board clock.
    #[arg(long)]
    no_synth: bool,
    /// Refit the performance model: simulate the calibration configs, print the fitted
    /// coefficient table (for host/src/perfmodel.rs) and each config's error.
    #[arg(long)]
    calibrate: bool,
    /// Synthesize only this engine (a unit of the table, e.g. op_attention): its row, through
    /// the same cache. For re-measuring one engine without a whole report.
    #[arg(long)]
    unit: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Backend {
    /// The bit-exact reference device, driven by the runtime through the command stream.
    Ref,
    /// The generated kernel in Verilator behind the same runtime, with the board's DRAM model.
    Sim,
    /// A real board through XRT (needs --xclbin; there is no board on the development machines).
    Xrt,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Ref => "ref",
            Backend::Sim => "sim",
            Backend::Xrt => "xrt",
        }
    }
}

#[derive(clap::Args)]
struct ModelArgs {
    /// Preset name or TOML file (default: `tiny` for the tiny model, else from config.json).
    #[arg(long)]
    config: Option<String>,
    /// Checkpoint directory (Hugging Face layout) or `tiny`.
    #[arg(long, short = 'm', default_value = "tiny")]
    model: String,
}

#[derive(clap::Args)]
struct RunArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Which backend computes.
    #[arg(long, value_enum, default_value = "ref")]
    backend: Backend,
    /// Prompt text (BOS first when the tokenizer asks for it; docs/sampling.md).
    #[arg(long, short = 'p', conflicts_with = "prompt_ids")]
    prompt: Option<String>,
    /// Prompt as comma-separated token ids, fed as given.
    #[arg(long, value_delimiter = ',')]
    prompt_ids: Option<Vec<u32>>,
    /// Tokens to generate.
    #[arg(short = 'n', long = "n-predict", default_value_t = 32)]
    n: usize,
    /// Stop when the generated text contains STR (repeatable); the text is cut before it.
    #[arg(long, value_name = "STR")]
    stop: Vec<String>,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// Print `{"prompt_ids":[...],"output_ids":[...],"text":"...","stop":"...","sampling":{...}}`
    /// instead of streaming; the sim and xrt backends add `"cycles": {"prefill": N, "decode":
    /// [N, ...]}` and `"counters"`.
    #[arg(long)]
    json: bool,
    /// The xclbin to load (`--backend xrt`).
    #[arg(long)]
    xclbin: Option<std::path::PathBuf>,
    /// XRT device index (`--backend xrt`).
    #[arg(long, default_value_t = 0)]
    device: u32,
}

/// The sampler chain's flags, as llama.cpp spells them (order: penalty, top-k, top-p, min-p,
/// temperature; docs/sampling.md).
#[derive(clap::Args)]
struct SamplingArgs {
    /// Temperature; 0 is greedy (the default here, unlike llama.cpp's 0.8, so that runs repeat
    /// and compare with the hardware).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    temp: f64,
    /// Keep the K most likely tokens (0: all).
    #[arg(long, default_value_t = 40, value_name = "K", allow_negative_numbers = true)]
    top_k: usize,
    /// Keep the most likely tokens up to this total probability (1: all).
    #[arg(long, default_value_t = 0.95, allow_negative_numbers = true, value_name = "P")]
    top_p: f64,
    /// Drop tokens less likely than P times the most likely one (0: none).
    #[arg(long, default_value_t = 0.05, allow_negative_numbers = true, value_name = "P")]
    min_p: f64,
    /// Penalize tokens among the last --repeat-last-n (1: off).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    repeat_penalty: f64,
    /// How many recent tokens (prompt included) the penalty looks at (0: none).
    #[arg(long, default_value_t = 64, value_name = "N", allow_negative_numbers = true)]
    repeat_last_n: usize,
    /// Random seed for --temp > 0 (default: a fresh one, reported so the run can be repeated).
    #[arg(long, short = 's')]
    seed: Option<u64>,
}

impl SamplingArgs {
    fn params(&self) -> SamplingParams {
        let seed = if self.temp > 0.0 { Some(self.seed.unwrap_or_else(rand::random)) } else { self.seed };
        SamplingParams {
            temp: self.temp,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repeat_penalty: self.repeat_penalty,
            repeat_last_n: self.repeat_last_n,
            seed,
        }
    }
}

#[derive(clap::Args)]
struct EvalArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Prompt text (BOS first when the tokenizer asks for it).
    #[arg(long, short = 'p', conflicts_with_all = ["prompt_ids", "perplexity"])]
    prompt: Option<String>,
    /// Prompt as comma-separated token ids, fed as given.
    #[arg(long, value_delimiter = ',', conflicts_with = "perplexity")]
    prompt_ids: Option<Vec<u32>>,
    /// Perplexity of this text file instead of a prompt's logits.
    #[arg(long, value_name = "FILE")]
    perplexity: Option<std::path::PathBuf>,
    /// Numerics: the float models `plain` and `w158a8`, or the bit-exact reference `exact`.
    #[arg(long, value_enum, default_value = "exact")]
    mode: eval::Mode,
    /// Perplexity: positions per window, BOS included (default: the context length).
    #[arg(long, value_name = "N", requires = "perplexity")]
    ctx: Option<usize>,
    /// Perplexity: text tokens between window starts (default: the window, no overlap).
    #[arg(long, value_name = "N", requires = "perplexity")]
    stride: Option<usize>,
    /// JSON: `{"prompt_ids":[...],"logits":[[...],...]}` or `{"perplexity":F,"tokens":N,"mode":"..."}`.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct ImportArgs {
    /// Checkpoint: a Hugging Face directory, a .safetensors file or a .gguf file.
    #[arg(long, short = 'm')]
    model: std::path::PathBuf,
    /// Preset name or TOML file (default: derived from the checkpoint's config).
    #[arg(long)]
    config: Option<String>,
    /// The weight image to write.
    #[arg(long, default_value = "weights.bin")]
    out: std::path::PathBuf,
    /// JSON report (segments with offsets) instead of a summary.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct AccuracyArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Positions to compare (at most the context length).
    #[arg(long, default_value_t = 256)]
    positions: usize,
    /// Text to evaluate on (repeated to length); a built-in paragraph by default.
    #[arg(long)]
    prompt: Option<String>,
    /// JSON output.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    // Output piped into `head` ends the program quietly, as Unix tools do, instead of Rust's
    // default (SIGPIPE ignored: the next print panics on the broken pipe).
    #[cfg(unix)]
    // SAFETY: restores the default disposition of one signal before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Demo => demo(),
        Cmd::Run(a) => run_cmd(a),
        Cmd::Accuracy(a) => accuracy_cmd(a),
        Cmd::Eval(a) => eval_cmd(a),
        Cmd::Config { config, json } => {
            let cfg = Config::load(&config)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&cfg)?);
            } else {
                print!("{}", toml_of(&cfg)?);
            }
            Ok(())
        }
        Cmd::Tiny { out, config } => {
            let cfg = Config::load(&config)?;
            model::tiny::write_model_dir(&out, &cfg, model::tiny::TINY_SEED).map_err(anyhow::Error::msg)?;
            println!(
                "wrote {} (config.json, model.safetensors, tokenizer.json) for config {}",
                out.display(),
                cfg.name
            );
            Ok(())
        }
        Cmd::Gen { config, out } => {
            let cfg = Config::load(&config)?;
            let d = hdl::generate(&cfg);
            d.write(&out).with_context(|| format!("writing {}", out.display()))?;
            println!("{}", d.summary());
            println!(
                "wrote {}/rtl/ ({} files), {}/filelist.f, {}/manifest.json",
                out.display(),
                d.files.len(),
                out.display(),
                out.display()
            );
            Ok(())
        }
        Cmd::Import(a) => import_cmd(a),
        Cmd::Doctor => doctor(),
        Cmd::Sim { config, layers, prompt_len, decode_steps, lm_head, timeline, json } => {
            let req = host::simperf::SimRequest {
                cfg: Config::load(&config)?,
                layers,
                prompt_len,
                decode_steps,
                lm_head,
                timeline,
            };
            let pb = indicatif::ProgressBar::new(0).with_message("simulating");
            let r = host::simperf::run(&req, |done, total| {
                pb.set_length(total);
                pb.set_position(done);
            });
            pb.finish_and_clear();
            let r = r?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print!("{}", host::simperf::text(&r));
            }
            Ok(())
        }
        Cmd::Report(a) => report_cmd(a),
        Cmd::Fit { board, config, out, build } => {
            let cfg = Config::load(&config)?;
            if cfg.board.name != board {
                bail!(
                    "--board {board}: config {} is for board {} (give a config for {board})",
                    cfg.name,
                    cfg.board.name
                );
            }
            let dir = build.unwrap_or_else(|| host::report::default_dir(&cfg));
            let units = host::report::load_units(&dir)?;
            let clock = units.iter().map(|u| u.depth.fmax_mhz).filter(|f| *f > 0.0).fold(cfg.board.clock_mhz, f64::min);
            let points = host::report::sweep(&cfg, &units, clock);
            let r = host::fit::fit(&cfg, points)?;
            std::fs::write(&out, host::fit::config_toml(&cfg, &r)?)
                .with_context(|| format!("writing {}", out.display()))?;
            let b = &r.best;
            println!(
                "trit fit: {} variants, {} within 90% of every {} resource; chosen: {} tables x {} columns, {} tokens per fetch, {} buffer beats, attention blocks of {} queries over {} port(s)",
                r.evaluated, r.feasible, board, b.tables, b.cols, b.tokens, b.wbuf, b.queries, b.attn_ports
            );
            println!(
                "  projected at {:.0} MHz: decode {:.1} tok/s (context {}), TTFT {:.3} s / {:.3} s (64 / 128 tokens)",
                b.projected.clock_mhz,
                b.projected.decode_tok_s,
                b.projected.context,
                b.projected.ttft_s.0,
                b.projected.ttft_s.1
            );
            for (k, s) in host::fit::shares(&b.resources, &host::report::budget(&cfg)) {
                print!("  {k} {:.0}%", 100.0 * s);
            }
            println!(" (estimated)");
            for line in &r.binds {
                println!("  binds: {line}");
            }
            println!("wrote {}", out.display());
            Ok(())
        }
        Cmd::Bench { what: BenchCmd::Tlmm { config, shapes, json } } => {
            let cfg = Config::load(&config)?;
            let shapes = shapes.iter().map(|s| parse_shape(s)).collect::<Result<Vec<_>>>()?;
            let r = host::bench::bench_tlmm(&cfg, &shapes)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!("{}", r.table());
            }
            Ok(())
        }
    }
}

fn report_cmd(a: ReportArgs) -> Result<()> {
    use host::{perfmodel, report};
    if a.calibrate {
        let pb = spinner("simulating the calibration configs");
        let fit = perfmodel::calibrate(|what| pb.set_message(format!("simulating {what}")));
        pb.finish_and_clear();
        let (fit, samples) = fit?;
        print!("{}", perfmodel::calib_source(&fit));
        for (label, s) in &samples {
            let (dm, dr, pm, pr) = perfmodel::errors(&fit, s);
            println!(
                "  {label:<36} decode {dm:>9.0} model vs {dr:>9.0} sim ({:+.1}%), prefill {pm:>10.0} vs {pr:>10.0} ({:+.1}%)",
                100.0 * (dm - dr) / dr,
                100.0 * (pm - pr) / pr
            );
            let kinds: Vec<String> = perfmodel::op_errors(&fit, s)
                .into_iter()
                .filter_map(|(k, _, p)| p.map(|p| format!("{k} {:+.1}%", 100.0 * p)))
                .collect();
            println!("      prefill ops alone: {}", kinds.join(", "));
        }
        return Ok(());
    }
    let cfg = Config::load(&a.config)?;
    if a.no_synth {
        let p = perfmodel::project(&cfg, cfg.board.clock_mhz);
        if a.json {
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({"projected": p.json(), "budget": report::budget(&cfg)})
                )?
            );
        } else {
            print!("{}\n{}", perfmodel::text(&p), report::comparison(&p, None));
            if let Some(out) = &a.out {
                for f in report::plots(&cfg, &p, &[], out)? {
                    println!("wrote {}", f.display());
                }
            }
        }
        return Ok(());
    }
    let dir = a.out.unwrap_or_else(|| report::default_dir(&cfg));
    if let Some(unit) = &a.unit {
        let pb = spinner(&format!("yosys synth_xilinx: {unit}"));
        let u = report::synthesize_unit(&cfg, &dir, unit);
        pb.finish_and_clear();
        let u = u?;
        if a.json {
            println!("{}", serde_json::to_string_pretty(&u)?);
        } else {
            print!("{}", report::unit_rows(std::slice::from_ref(&u)));
            print!("{}", report::path_text(&u.depth));
            if !u.memories_as_registers.is_empty() {
                println!("  arrays in registers: {}", u.memories_as_registers.join(", "));
            }
        }
        return Ok(());
    }
    let pb = indicatif::ProgressBar::new(0).with_message("synthesizing");
    let r = report::report(&cfg, &dir, |unit, done, total| {
        pb.set_length(total as u64);
        pb.set_position(done as u64);
        pb.set_message(format!("yosys synth_xilinx: {unit}"));
    });
    pb.finish_and_clear();
    let r = r?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report::json(&r))?);
    } else {
        print!("{}", report::text(&r));
        println!("\nwrote {}", dir.join("reports").join("resources.json").display());
    }
    Ok(())
}

fn parse_shape(s: &str) -> Result<(usize, usize, usize)> {
    let parts: Vec<usize> = s
        .split('x')
        .map(|p| p.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .with_context(|| format!("shape `{s}`: expected NxKxTOKENS, e.g. 1536x1536x1"))?;
    match parts.as_slice() {
        [n, k, t] if *n > 0 && *k > 0 && *t > 0 => Ok((*n, *k, *t)),
        _ => bail!("shape `{s}`: expected three positive numbers NxKxTOKENS, e.g. 1536x1536x1"),
    }
}

fn toml_of(cfg: &Config) -> Result<String> {
    Ok(toml::to_string(&serde_json::to_value(cfg)?)?)
}

fn import_cmd(a: ImportArgs) -> Result<()> {
    let cfg = match &a.config {
        Some(c) => Config::load(c)?,
        None => host::session::config_from_checkpoint(&a.model)?,
    };
    let pb = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .expect("template"),
    );
    pb.set_message("importing");
    let r = host::import::import(&a.model, &cfg, &a.out, &|done, total| {
        pb.set_length(total);
        pb.set_position(done);
    });
    pb.finish_and_clear();
    let r = r?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "imported {} ({}) under config {}: {:.1} MB of tensors -> {} ({:.1} MB, {} segments) in {:.2} s ({:.0} MB/s)",
            r.source,
            r.format,
            r.config,
            r.checkpoint_bytes as f64 / 1e6,
            a.out.display(),
            r.image_bytes as f64 / 1e6,
            r.segments.len(),
            r.seconds,
            r.mb_per_s
        );
    }
    Ok(())
}

fn run_cmd(a: RunArgs) -> Result<()> {
    let opts = GenOptions { n: a.n, sampling: a.sampling.params(), stop: a.stop.clone() };
    opts.validate()?;
    let s = Session::open(&a.model.model, a.model.config.as_deref())?;
    let prompt = s.prompt_ids(a.prompt.as_deref(), a.prompt_ids.as_deref())?;
    let t0 = Instant::now();
    // Text streams to stdout as it settles (not with --json).
    let mut stdout = std::io::stdout();
    let mut on_text = |t: &str| {
        if !a.json {
            let _ = stdout.write_all(t.as_bytes());
            let _ = stdout.flush();
        }
    };
    // Counters are reported for the backends that have them (simulated or real hardware).
    let (g, history) = match a.backend {
        Backend::Ref => (generate(&s, &mut s.ref_runtime()?, &prompt, &opts, |_| {}, &mut on_text)?, None),
        Backend::Sim => {
            let mut rt = s.runtime(host::simdev::SimDevice::for_config(&s.cfg, 4 << 30, None)?)?;
            (generate(&s, &mut rt, &prompt, &opts, |_| {}, &mut on_text)?, Some(rt.history().to_vec()))
        }
        Backend::Xrt => {
            let xclbin =
                a.xclbin.as_deref().context("--backend xrt needs --xclbin FILE (the kernel built for your board)")?;
            let mut rt = s.runtime(host::xrtdev::XrtDevice::open(a.device, xclbin)?)?;
            (generate(&s, &mut rt, &prompt, &opts, |_| {}, &mut on_text)?, Some(rt.history().to_vec()))
        }
    };
    let secs = t0.elapsed().as_secs_f64();
    if a.json {
        let mut v = serde_json::to_value(&g)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("sampling".into(), serde_json::to_value(&opts.sampling)?);
        }
        if let (Some(h), Some(o)) = (&history, v.as_object_mut()) {
            let cycles = |c: &host::runtime::Counters| c.get("cycles").copied().unwrap_or(0);
            let mut total = host::runtime::Counters::new();
            for c in h {
                for (k, n) in c {
                    *total.entry(k).or_insert(0) += n;
                }
            }
            o.insert(
                "cycles".into(),
                serde_json::json!({"prefill": h.first().map(cycles), "decode": h.iter().skip(1).map(cycles).collect::<Vec<_>>()}),
            );
            o.insert("counters".into(), serde_json::to_value(total)?);
        }
        println!("{}", serde_json::to_string(&v)?);
    } else {
        println!();
        eprintln!("[{}]", speed_summary(&g, secs, a.backend.name(), &opts.sampling));
        if let Some(h) = &history {
            eprintln!("[{}]", cycle_summary(h, s.cfg.board.clock_mhz));
        }
    }
    Ok(())
}

/// Tokens and tokens/s of a generation (wall clock of the engine calls), llama.cpp's habit:
/// prompt processing and generation separately.
fn speed_summary(g: &Generation, wall: f64, backend: &str, p: &SamplingParams) -> String {
    let rate = |n: usize, d: std::time::Duration| {
        let s = d.as_secs_f64();
        if n == 0 || s <= 0.0 {
            "-".to_string()
        } else {
            format!("{:.1}", n as f64 / s)
        }
    };
    let t = &g.timing;
    let sampling = match p.seed {
        Some(seed) if p.temp > 0.0 => format!(
            "temp {} top-k {} top-p {} min-p {} repeat-penalty {} seed {seed}",
            p.temp, p.top_k, p.top_p, p.min_p, p.repeat_penalty
        ),
        _ if p.repeat_penalty != 1.0 => format!("greedy, repeat-penalty {}", p.repeat_penalty),
        _ => "greedy".to_string(),
    };
    format!(
        "prompt {} tokens in {:.3} s ({} tok/s); generated {} tokens, {} decode steps in {:.3} s ({} tok/s); \
         {:.3} s in all; stop: {}; {sampling}; {backend} backend",
        g.prompt_ids.len(),
        t.prefill.as_secs_f64(),
        rate(g.prompt_ids.len(), t.prefill),
        g.output_ids.len(),
        t.decode_steps,
        t.decode.as_secs_f64(),
        rate(t.decode_steps, t.decode),
        wall,
        g.stop.name(),
    )
}

/// Cycles of the prefill and the decode steps, with the times they estimate at `mhz`.
fn cycle_summary(h: &[host::runtime::Counters], mhz: f64) -> String {
    let cycles = |c: &host::runtime::Counters| c.get("cycles").copied().unwrap_or(0) as f64;
    let prefill = h.first().map(cycles).unwrap_or(0.0);
    let decode: Vec<f64> = h.iter().skip(1).map(cycles).collect();
    let mut s =
        format!("kernel cycles: prefill {prefill:.0} (estimated TTFT {:.3} ms at {mhz} MHz)", prefill / mhz / 1e3);
    if !decode.is_empty() {
        let mean = decode.iter().sum::<f64>() / decode.len() as f64;
        s.push_str(&format!(
            ", decode {mean:.0} per token on average (estimated {:.1} tok/s)",
            mhz * 1e6 / mean.max(1.0)
        ));
    }
    s
}

fn accuracy_cmd(a: AccuracyArgs) -> Result<()> {
    let s = Session::open(&a.model.model, a.model.config.as_deref())?;
    if a.positions == 0 || a.positions > s.cfg.model.max_seq {
        bail!("--positions must be in 1..={} (the context length of config {})", s.cfg.model.max_seq, s.cfg.name);
    }
    let tokens = accuracy::eval_tokens(&s, a.prompt.as_deref(), a.positions)?;
    let r = accuracy::measure(&s, &tokens)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    println!("accuracy of config {} over {} positions", r.config, r.positions);
    println!("{:<26} {:>12} {:>14} {:>8}", "comparison", "rel RMS", "mean KL (nat)", "top-1");
    for (name, x) in [
        ("exact vs w158a8", r.exact_vs_w158a8),
        ("exact vs plain f32", r.exact_vs_plain),
        ("w158a8 vs plain f32", r.w158a8_vs_plain),
    ] {
        println!("{:<26} {:>11.3}% {:>14.6} {:>7.1}%", name, 100.0 * x.rel_rms, x.mean_kl, 100.0 * x.top1);
    }
    Ok(())
}

fn eval_cmd(a: EvalArgs) -> Result<()> {
    let s = Session::open(&a.model.model, a.model.config.as_deref())?;
    if let Some(path) = &a.perplexity {
        let text = std::fs::read_to_string(path).with_context(|| format!("--perplexity {}", path.display()))?;
        let w = eval::Windows { ctx: a.ctx, stride: a.stride };
        let r = eval::perplexity(&s, &text, a.mode, w).with_context(|| format!("perplexity of {}", path.display()))?;
        if a.json {
            println!("{}", serde_json::to_string(&r)?);
        } else {
            println!(
                "perplexity {:.4} over {} tokens ({} numerics; {} window(s) of {} positions, stride {}; {:.4} nats/token)",
                r.perplexity,
                r.tokens,
                r.mode.name(),
                r.windows,
                r.context,
                r.stride,
                r.nll
            );
        }
        return Ok(());
    }
    if a.prompt.is_none() && a.prompt_ids.is_none() {
        bail!("give one of --prompt, --prompt-ids or --perplexity");
    }
    let ids = s.prompt_ids(a.prompt.as_deref(), a.prompt_ids.as_deref())?;
    let logits = eval::logits(&s, &ids, a.mode)?;
    if a.json {
        println!("{}", serde_json::to_string(&serde_json::json!({"prompt_ids": ids, "logits": logits}))?);
    } else {
        println!("{} numerics, {} positions, vocabulary {}", a.mode.name(), ids.len(), s.cfg.model.vocab);
        println!("{:>8} {:>8} {:>8} {:>10}", "position", "token", "argmax", "max logit");
        for (i, (l, id)) in logits.iter().zip(&ids).enumerate() {
            let (best, max) =
                l.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (j, &x)| if x > b.1 { (j, x) } else { b });
            println!("{i:>8} {id:>8} {best:>8} {max:>10.4}");
        }
    }
    Ok(())
}

/// A spinner for a step whose length is unknown (hidden when stderr is not a terminal).
fn spinner(msg: &str) -> indicatif::ProgressBar {
    let pb = indicatif::ProgressBar::new_spinner().with_message(msg.to_string());
    pb.enable_steady_tick(std::time::Duration::from_millis(120));
    pb
}

fn demo() -> Result<()> {
    let cfg = Config::preset("tiny")?;
    println!("trit demo: config `{}` on board {} ({} MHz)", cfg.name, cfg.board.name, cfg.board.clock_mhz);
    let m = &cfg.model;
    println!(
        "  model: {} layers, hidden {}, {} heads ({} KV) of {}, FFN {} ({:?}), sub-norms {}, vocab {}, context {}",
        m.layers, m.hidden, m.heads, m.kv_heads, m.head_dim, m.ffn, m.ffn_activation, m.sub_norms, m.vocab, m.max_seq
    );
    let t0 = Instant::now();
    let s = Session::open("tiny", None).context("creating and loading the tiny model")?;
    println!("[1/5] wrote and loaded the tiny checkpoint (seed {:#x}) in {:.2?}", model::tiny::TINY_SEED, t0.elapsed());
    let d = hdl::generate(&cfg);
    let lines: usize = d.files.iter().map(|(_, t)| t.lines().count()).sum();
    println!(
        "[2/5] generated the kernel `{}`: {} RTL files, {lines} lines, {}-bit memory bus",
        d.kernel,
        d.files.len(),
        d.bus_bits
    );
    let t2 = Instant::now();
    let pb = spinner("building the Verilator model of the kernel (cached after the first time)");
    let dev = host::simdev::SimDevice::for_config(&cfg, 256 << 20, None);
    pb.finish_and_clear();
    let mut sim = s.runtime(dev?)?;
    println!("[3/5] Verilator model of the kernel ready in {:.2?}", t2.elapsed());
    let prompt_text = "Hello, FPGA";
    let prompt = s.prompt_ids(Some(prompt_text), None)?;
    let n = 16;
    let pb = indicatif::ProgressBar::new(n as u64).with_message("tokens from the simulated kernel");
    let t3 = Instant::now();
    let g = generate_greedy(&s, &mut sim, &prompt, n, |_| pb.inc(1))?;
    pb.finish_and_clear();
    let refg = generate_greedy(&s, &mut s.ref_runtime()?, &prompt, n, |_| {})?;
    println!(
        "[4/5] simulated kernel, greedy: prompt {prompt_text:?} ({} tokens), {} tokens in {:.1?} of simulation",
        prompt.len(),
        g.output_ids.len(),
        t3.elapsed()
    );
    println!("      output ids {:?}", g.output_ids);
    println!(
        "      {} the reference device's ids",
        if g.output_ids == refg.output_ids { "identical to" } else { "DIFFERENT FROM" }
    );
    println!("      {}", cycle_summary(sim.history(), cfg.board.clock_mhz));
    if g.output_ids != refg.output_ids {
        bail!("the simulated kernel and the reference device disagree: {:?} vs {:?}", g.output_ids, refg.output_ids);
    }
    let tokens = accuracy::eval_tokens(&s, None, 256)?;
    let r = accuracy::measure(&s, &tokens)?;
    let a = r.exact_vs_w158a8;
    println!(
        "[5/5] numerics cost over {} positions (bit-exact vs published W1.58A8 float): rel RMS {:.2}%, mean KL {:.5} nat, top-1 {:.1}%",
        a.positions,
        100.0 * a.rel_rms,
        a.mean_kl,
        100.0 * a.top1
    );
    println!("(the random tiny model's text is noise by design; cycle figures are estimates at the board clock)");
    Ok(())
}

fn doctor() -> Result<()> {
    let mut missing = 0;
    for tool in sim::tools::Tool::ALL {
        match sim::tools::find(tool) {
            Ok(t) => println!("{:<10} {}  ({})", tool.name(), t.path.display(), t.version),
            Err(e) => {
                missing += 1;
                println!("{:<10} MISSING: {e}", tool.name());
            }
        }
    }
    if missing > 0 {
        bail!("{missing} tool(s) missing");
    }
    Ok(())
}
