//! `assay firewall serve|check|train|rules|policy`: glue over the `assay-firewall` crate.
//!
//! Exit codes: `check` 0 when no line is blocked, 1 when at least one is, 2 on errors
//! (unreadable input, invalid policy). `serve` 0 after SIGINT/SIGTERM, 2 on errors.

use anyhow::{Context, Result};
use assay_firewall::check::check_line;
use assay_firewall::policy::{DEFAULT_POLICY_TOML, Policy, Preset};
use assay_firewall::scan::Scanners;
use assay_firewall::server::{ServeOptions, serve_blocking};
use assay_firewall::train::{self, TrainOptions};
use assay_firewall::{Action, rules};
use clap::{Subcommand, ValueEnum};
use std::io::{self, BufRead, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum FirewallCommand {
    /// Run the firewall: a reverse proxy for OpenAI-compatible APIs that scans every
    /// request and response. Point your SDK's base_url at http://LISTEN/v1.
    Serve(ServeArgs),
    /// Run the request scanners offline over a text or JSONL file (one text per line; for
    /// JSONL the `text` field) and print one JSON verdict per line.
    Check(CheckArgs),
    /// Train the prompt-injection classifier on a labelled corpus and report held-out
    /// rates (the corpus comes from crates/assay-firewall/model/prepare_corpus.py).
    Train(TrainArgs),
    /// List the firewall's rules, or print one rule's documentation.
    Rules {
        /// Rule code, e.g. FWL010.
        code: Option<String>,
    },
    /// Print the documented default policy file.
    Policy,
    /// A scripted OpenAI-compatible upstream, for benchmarks and tests only.
    #[command(hide = true)]
    MockUpstream {
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: SocketAddr,
        #[arg(long)]
        workers: Option<usize>,
    },
}

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Base URL of the OpenAI-compatible upstream (vLLM, llama.cpp, Ollama, a cloud API),
    /// e.g. http://127.0.0.1:8000 or https://api.openai.com/v1.
    #[arg(long, value_name = "URL")]
    pub upstream: String,
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Policy file (TOML); default: the balanced preset (`assay firewall policy`).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Preset to use when no policy file is given.
    #[arg(long, value_enum, conflicts_with = "policy")]
    pub preset: Option<PresetArg>,
    /// JSON-lines audit log (overrides the policy's `audit_log`).
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
}

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Text or JSONL file, `-` for standard input.
    #[arg(default_value = "-")]
    pub file: PathBuf,
    /// Policy file (TOML); default: the balanced preset.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    #[arg(long, value_enum, conflicts_with = "policy")]
    pub preset: Option<PresetArg>,
}

#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// JSON-lines corpus: {"text", "label": 0|1, "source", "split": "train"|"val"|"test"}.
    #[arg(long, value_name = "FILE")]
    pub corpus: PathBuf,
    /// Where to write the model.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "crates/assay-firewall/model/injection.bin"
    )]
    pub out: PathBuf,
    /// Also write the evaluation as JSON.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    #[arg(long, default_value_t = 16)]
    pub buckets_log2: u32,
    #[arg(long, default_value_t = 12)]
    pub epochs: usize,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum PresetArg {
    Strict,
    Balanced,
    Permissive,
}

fn load_policy(path: Option<&Path>, preset: Option<PresetArg>) -> Result<Policy> {
    match path {
        Some(p) => Policy::load(p).map_err(|e| anyhow::anyhow!("invalid policy:\n{e}")),
        None => Ok(Policy::preset(match preset {
            Some(PresetArg::Strict) => Preset::Strict,
            Some(PresetArg::Permissive) => Preset::Permissive,
            _ => Preset::Balanced,
        })),
    }
}

pub fn run(cmd: FirewallCommand) -> Result<ExitCode> {
    match cmd {
        FirewallCommand::Serve(a) => serve(a),
        FirewallCommand::Check(a) => check(a),
        FirewallCommand::Train(a) => train_cmd(a),
        FirewallCommand::Rules { code } => rules_cmd(code.as_deref()),
        FirewallCommand::Policy => {
            io::stdout()
                .lock()
                .write_all(DEFAULT_POLICY_TOML.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        FirewallCommand::MockUpstream { listen, workers } => {
            assay_firewall::mock::serve_blocking(listen, workers, |addr| {
                println!("mock upstream listening on http://{addr}");
            })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn serve(a: ServeArgs) -> Result<ExitCode> {
    let policy = load_policy(a.policy.as_deref(), a.preset)?;
    if let assay_firewall::MetricsAuth::Missing(var) =
        assay_firewall::metrics_auth(&policy, &|v| std::env::var(v).ok())
    {
        anyhow::bail!(
            "the policy protects /metrics with [metrics] token_env = {var:?}, but ${var} is unset or empty"
        );
    }
    let upstream = a.upstream.clone();
    serve_blocking(
        ServeOptions {
            listen: a.listen,
            upstream: a.upstream,
            policy,
            audit_log: a.audit_log,
            workers: a.workers,
        },
        |addr| {
            // The first stdout line is the address, for scripts that pass port 0.
            println!("assay firewall listening on http://{addr}, forwarding to {upstream}");
            let _ = io::stdout().flush();
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

fn check(a: CheckArgs) -> Result<ExitCode> {
    let policy = load_policy(a.policy.as_deref(), a.preset)?;
    let scanners = Scanners::new(policy);
    let input: Box<dyn BufRead> = if a.file.as_os_str() == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(io::BufReader::new(
            std::fs::File::open(&a.file)
                .with_context(|| format!("cannot open {}", a.file.display()))?,
        ))
    };
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut blocked = false;
    for (i, line) in input.split(b'\n').enumerate() {
        let line = line.with_context(|| format!("cannot read {}", a.file.display()))?;
        let text = String::from_utf8_lossy(&line);
        let text = text.strip_suffix('\r').unwrap_or(&text);
        let v = check_line(&scanners, i + 1, text);
        blocked |= v.verdict == Action::Block;
        serde_json::to_writer(&mut out, &v)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(if blocked {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn rules_cmd(code: Option<&str>) -> Result<ExitCode> {
    let mut out = io::stdout().lock();
    match code {
        None => {
            for r in rules::all() {
                writeln!(
                    out,
                    "{}  {:<22}  {:<8}  {}",
                    r.code, r.name, r.applies, r.summary
                )?;
            }
        }
        Some(c) => match rules::lookup(c) {
            Some(r) => super::rules::write_firewall_rule(&mut out, r)?,
            None => {
                eprintln!(
                    "assay: unknown firewall rule {c:?}; `assay firewall rules` lists them all"
                );
                return Ok(ExitCode::from(2));
            }
        },
    }
    Ok(ExitCode::SUCCESS)
}

fn train_cmd(a: TrainArgs) -> Result<ExitCode> {
    let text = std::fs::read_to_string(&a.corpus)
        .with_context(|| format!("cannot read corpus {}", a.corpus.display()))?;
    let opt = TrainOptions {
        buckets_log2: a.buckets_log2,
        epochs: a.epochs,
        ..TrainOptions::default()
    };
    let run = train::train_and_evaluate(&text, &opt)
        .map_err(|e| anyhow::anyhow!("{}: {e}", a.corpus.display()))?;
    std::fs::write(&a.out, &run.model)
        .with_context(|| format!("cannot write {}", a.out.display()))?;
    let mut out = io::stdout().lock();
    writeln!(out, "wrote {} ({} bytes)", a.out.display(), run.model.len())?;
    out.write_all(run.table.as_bytes())?;
    if let Some(p) = a.report {
        std::fs::write(&p, serde_json::to_string_pretty(&run.report)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}
