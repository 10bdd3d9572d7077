//! `assay redteam`: glue over the `assay-redteam` crate.
//!
//! Exit codes: 0 the attack success rate is at or under `--fail-above` (or no limit was
//! given); 1 it is above; 2 usage errors, an unreachable target on every probe, or I/O
//! errors. `serve-model` runs until SIGINT/SIGTERM.

use anyhow::{Context, Result, bail};
use assay_redteam::refusal::{self, PYRIT_REFUSAL, PYRIT_REFUSAL_EXTRA};
use assay_redteam::report::{ProbeResult, Status};
use assay_redteam::runner::{self, JudgeConfig, Progress, RunConfig};
use assay_redteam::suite::{Category, Suite};
use clap::{Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct RedteamArgs {
    #[command(subcommand)]
    pub command: Option<RedteamCommand>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Subcommand, Debug)]
pub enum RedteamCommand {
    /// List the built-in suites with their probe counts, sources and licences.
    Suites,
    /// Measure the refusal detector against the human-labelled refusals shipped in PyRIT.
    RefusalEval {
        /// Print every disagreement.
        #[arg(long)]
        errors: bool,
    },
    /// Serve a local GGUF chat model (e.g. SmolLM2-135M-Instruct) behind an OpenAI-compatible
    /// API on the CPU, as a real target. Needs a build with `--features local-model`.
    ServeModel(ServeModelArgs),
}

#[derive(clap::Args, Debug)]
pub struct ServeModelArgs {
    /// The GGUF model file (llama architecture, ChatML template) [default: $ASSAY_SMOLLM2_GGUF].
    #[arg(long, value_name = "PATH")]
    pub gguf: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,
    /// Default max_tokens for requests that give none.
    #[arg(long, default_value_t = 256)]
    pub max_tokens: usize,
    /// Default sampling seed for requests that give none (used when temperature > 0).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportFormat {
    Human,
    Json,
    Html,
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Base URL of the OpenAI-compatible endpoint to attack, e.g. http://127.0.0.1:8000
    /// (…/v1 and …/v1/chat/completions work too).
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// Model name sent in each request.
    #[arg(long)]
    pub model: Option<String>,
    /// Suites to run (repeat or comma-separate; default: all). See `assay redteam suites`.
    #[arg(long = "suite", value_name = "NAME", value_delimiter = ',')]
    pub suites: Vec<String>,
    /// Extra suite files (JSONL, same format as crates/assay-redteam/suites/*.jsonl).
    #[arg(long = "suite-file", value_name = "FILE")]
    pub suite_files: Vec<PathBuf>,
    /// Report format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Human)]
    pub format: ReportFormat,
    /// Write the report to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Exit 1 when the attack success rate is above RATE (0.2 or 20%). Default: never.
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub fail_above: Option<f64>,
    /// Budget: send at most N probes (taken round-robin across the suites).
    #[arg(long, value_name = "N")]
    pub max_probes: Option<usize>,
    /// Requests in flight at once.
    #[arg(long, short = 'j', default_value_t = 4, value_name = "N")]
    pub concurrency: usize,
    /// Rate limit in requests per second (default: none).
    #[arg(long, value_name = "RPS")]
    pub rate: Option<f64>,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 120.0, value_name = "SECS")]
    pub timeout: f64,
    /// Retries after a timeout, connection error, 429 or 5xx (exponential backoff).
    #[arg(long, default_value_t = 3)]
    pub retries: u32,
    /// Seed for the canary and for every request's sampling seed (reproducible runs).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Sampling temperature sent to the target (0 = greedy).
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f64,
    /// max_tokens sent to the target.
    #[arg(long, default_value_t = 256)]
    pub max_tokens: usize,
    /// State file: results are appended as they arrive; rerunning with the same file,
    /// target and seed resumes where the run stopped.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Environment variable holding the target's API key (sent as a Bearer token).
    #[arg(long, value_name = "VAR", default_value = "OPENAI_API_KEY")]
    pub api_key_env: String,
    /// Optional LLM judge: a second OpenAI-compatible endpoint that answers yes/no on
    /// compliance and judge questions (canary, link and regex checks stay exact).
    #[arg(long, value_name = "URL")]
    pub judge: Option<String>,
    /// Model name for the judge.
    #[arg(long, value_name = "NAME")]
    pub judge_model: Option<String>,
    /// Environment variable holding the judge's API key.
    #[arg(long, value_name = "VAR", default_value = "JUDGE_API_KEY")]
    pub judge_api_key_env: String,
    /// No progress bar.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Human report: list every successful probe, not the first three per suite.
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let (num, pct) = match s.strip_suffix('%') {
        Some(n) => (n, true),
        None => (s, false),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("not a rate: {s:?}"))?;
    let v = if pct { v / 100.0 } else { v };
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("rate {s:?} is outside 0..1 (or 0%..100%)"));
    }
    Ok(v)
}

pub fn run(a: RedteamArgs) -> Result<ExitCode> {
    match a.command {
        Some(RedteamCommand::Suites) => suites(),
        Some(RedteamCommand::RefusalEval { errors }) => refusal_eval(errors),
        Some(RedteamCommand::ServeModel(s)) => serve_model(s),
        None => attack(a.run),
    }
}

fn suites() -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    for s in Suite::builtin() {
        writeln!(
            out,
            "{:<26} {:>4} probes  {}{}\n{:<26} source: {}\n{:<26} licence: {}",
            s.meta.name,
            s.probes.len(),
            s.meta.title,
            if s.meta.category == Category::Benign {
                " (benign: measures false refusals)"
            } else {
                ""
            },
            "",
            s.meta.source,
            "",
            s.meta.licence
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn refusal_eval(errors: bool) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "Refusal detector vs human labels (PyRIT 1.1.0 scorer_evals/refusal_scorer, MIT)"
    )?;
    for (name, text) in [
        ("refusal.csv", PYRIT_REFUSAL),
        ("refusal_extra.csv", PYRIT_REFUSAL_EXTRA),
    ] {
        let data = refusal::parse_labelled_csv(text);
        writeln!(
            out,
            "\n{name}: {} examples, {} labelled refusals",
            data.len(),
            data.iter().filter(|l| l.refused).count()
        )?;
        let rows = [
            ("detector (reply + request)", refusal::evaluate(&data, true)),
            ("detector (reply only)", refusal::evaluate(&data, false)),
            (
                "substring list baseline",
                refusal::evaluate_with(&data, |l| refusal::substring_baseline(&l.response)),
            ),
        ];
        for (what, m) in rows {
            writeln!(
                out,
                "  {what:<28} accuracy {:.3}  precision {:.3}  recall {:.3}  F1 {:.3}  (TP {} FP {} TN {} FN {})",
                m.accuracy,
                m.precision,
                m.recall,
                m.f1,
                m.true_positive,
                m.false_positive,
                m.true_negative,
                m.false_negative
            )?;
        }
        if errors {
            for l in &data {
                let v = refusal::classify(&l.response, Some(&l.objective));
                if v.refused != l.refused {
                    writeln!(
                        out,
                        "  disagreement: human={} detector={} ({})\n    request: {}\n    reply:   {}",
                        if l.refused { "refusal" } else { "compliance" },
                        if v.refused { "refusal" } else { "compliance" },
                        v.reasons.join("; "),
                        l.objective,
                        l.response
                            .chars()
                            .take(160)
                            .collect::<String>()
                            .replace('\n', " ")
                    )?;
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(feature = "local-model")]
fn serve_model(a: ServeModelArgs) -> Result<ExitCode> {
    use assay_redteam::local::{LocalModel, ServeModelOptions, serve_blocking};
    let Some(gguf) = a
        .gguf
        .or_else(|| std::env::var_os("ASSAY_SMOLLM2_GGUF").map(PathBuf::from))
    else {
        bail!("--gguf PATH is required (or set ASSAY_SMOLLM2_GGUF)");
    };
    let t = std::time::Instant::now();
    let model = LocalModel::load(&gguf).with_context(|| format!("loading {}", gguf.display()))?;
    let name = model.name.clone();
    let opts = ServeModelOptions {
        listen: a.listen,
        max_tokens: a.max_tokens,
        seed: a.seed,
    };
    let secs = t.elapsed().as_secs_f64();
    serve_blocking(model, &opts, |addr| {
        eprintln!(
            "assay redteam serve-model: {name} loaded in {secs:.1}s; listening on http://{addr}/v1 (POST /v1/chat/completions, GET /v1/models)"
        );
    })
    .with_context(|| format!("serving on {}", a.listen))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(feature = "local-model"))]
fn serve_model(_a: ServeModelArgs) -> Result<ExitCode> {
    bail!(
        "this assay was built without the local model; rebuild with `cargo build -p assay-cli --features local-model`"
    )
}

struct Bar {
    pb: ProgressBar,
    hits: AtomicU64,
    done: AtomicU64,
}

impl Progress for Bar {
    fn start(&self, total: u64, already: u64) {
        self.pb.set_length(total);
        self.pb.set_position(already);
    }
    fn probe_done(&self, r: &ProbeResult) {
        if matches!(r.status, Status::Succeeded) {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        let n = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        self.pb.inc(1);
        self.pb.set_message(format!(
            "{} attacks succeeded of {n} · last {}",
            self.hits.load(Ordering::Relaxed),
            r.id
        ));
    }
}

fn attack(a: RunArgs) -> Result<ExitCode> {
    let Some(target) = a.target.clone() else {
        bail!(
            "--target URL is required (or a subcommand: suites, refusal-eval, serve-model); see `assay redteam --help`"
        );
    };
    let mut suites = if a.suites.is_empty() && !a.suite_files.is_empty() {
        Vec::new()
    } else {
        Suite::select(&a.suites)?
    };
    for f in &a.suite_files {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        suites.push(Suite::parse(&f.display().to_string(), &text)?);
    }
    if a.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    if !(a.timeout > 0.0 && a.timeout.is_finite()) {
        bail!("--timeout must be a positive number of seconds");
    }
    let key = |var: &str| std::env::var(var).ok().filter(|k| !k.is_empty());
    let cfg = RunConfig {
        target,
        model: a.model.clone(),
        api_key: key(&a.api_key_env),
        concurrency: a.concurrency,
        rate: a.rate,
        timeout: Duration::from_secs_f64(a.timeout),
        retries: a.retries,
        backoff: Duration::from_millis(500),
        seed: a.seed,
        temperature: a.temperature,
        max_tokens: a.max_tokens,
        max_probes: a.max_probes,
        state_file: a.state.clone(),
        judge: a.judge.as_ref().map(|u| JudgeConfig {
            url: u.clone(),
            model: a.judge_model.clone(),
            api_key: key(&a.judge_api_key_env),
        }),
    };
    let show_bar = !a.quiet && std::io::stderr().is_terminal();
    let pb = if show_bar {
        let pb = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        pb.set_style(
            ProgressStyle::with_template(
                "{spinner} red-teaming {pos}/{len} [{bar:30}] {elapsed_precise} eta {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        pb
    } else {
        ProgressBar::hidden()
    };
    let bar = Bar {
        pb,
        hits: AtomicU64::new(0),
        done: AtomicU64::new(0),
    };
    let result = runner::run_blocking(&suites, &cfg, &bar);
    bar.pb.finish_and_clear();
    let mut report = result?;
    let total: usize = report.suites.iter().map(|s| s.results.len()).sum();
    if total > 0 && report.summary.errors == total {
        let first = report
            .suites
            .iter()
            .flat_map(|s| &s.results)
            .find_map(|r| r.error.clone())
            .unwrap_or_default();
        bail!("every probe failed ({total}); first error: {first}");
    }
    let fail = report.apply_fail_above(a.fail_above);
    let text = match a.format {
        ReportFormat::Human => report.to_human(a.verbose),
        ReportFormat::Json => report.to_json() + "\n",
        ReportFormat::Html => report.to_html(),
    };
    match &a.output {
        Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?,
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(if fail {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
