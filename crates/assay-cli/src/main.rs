//! `assay`: the command-line tool. Glue only: parse arguments, call the libraries,
//! render, choose the exit code.
//!
//! Exit codes: 0 nothing at or above `--fail-on`; 1 at least one such finding;
//! 2 usage error, unreadable input or internal error. A broken pipe is 0.
#![forbid(unsafe_code)]

mod args;
mod progress;

use anyhow::{Context, Result};
use args::{Cli, Command, OutputFormat, ScanArgs};
use assay_report::render::{HumanOptions, render_human, render_json, render_sarif};
use assay_report::{Severity, Verdict};
use clap::Parser;
use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("assay: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Scan(a) => scan(a),
        Command::Rules => {
            let mut out = io::stdout().lock();
            for r in assay_scan::rules::all() {
                writeln!(
                    out,
                    "{}  {:<8}  {:<13}  {}",
                    r.code, r.severity, r.stage, r.summary
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Explain { code } => match assay_scan::rules::lookup(&code) {
            Some(r) => {
                let mut out = io::stdout().lock();
                writeln!(out, "# {} — {}\n", r.code, r.name)?;
                writeln!(
                    out,
                    "Stage: {}    Default severity: {}    Since: {}\n",
                    r.stage, r.severity, r.since
                )?;
                writeln!(out, "{}", r.doc.trim_end())?;
                Ok(ExitCode::SUCCESS)
            }
            None => {
                eprintln!("assay: unknown rule code {code:?}; `assay rules` lists them all");
                Ok(ExitCode::from(2))
            }
        },
    }
}

fn scan(a: ScanArgs) -> Result<ExitCode> {
    let fail_on = a.fail_on.severity();
    let bar = (!a.quiet && io::stderr().is_terminal()).then(progress::Bar::new);
    let opts = assay_scan::ScanOptions {
        jobs: a.jobs.unwrap_or(0),
        fail_on,
        progress: bar.as_ref().map(|b| b as &dyn assay_scan::Progress),
        // Only the JSON report carries file digests.
        hash_files: a.format == OutputFormat::Json,
        ..Default::default()
    };
    let report = assay_scan::scan(&a.paths, &opts)?;
    if let Some(b) = &bar {
        b.finish();
    }
    let to_terminal = a.output.is_none() && io::stdout().is_terminal();
    let mut sink: Box<dyn Write> = match &a.output {
        Some(path) => Box::new(io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?,
        )),
        None => Box::new(io::BufWriter::new(io::stdout().lock())),
    };
    match a.format {
        OutputFormat::Human => render_human(
            &report,
            HumanOptions {
                color: to_terminal,
                quiet: a.quiet,
            },
            &mut sink,
        )?,
        OutputFormat::Json => render_json(&report, &mut sink)?,
        OutputFormat::Sarif => render_sarif(&report, assay_scan::rules::all(), &mut sink)?,
    }
    sink.flush()?;
    Ok(match report.summary.verdict {
        Verdict::Pass => ExitCode::SUCCESS,
        Verdict::Fail => ExitCode::from(1),
    })
}

impl args::FailOn {
    fn severity(self) -> Severity {
        match self {
            args::FailOn::Critical => Severity::Critical,
            args::FailOn::High => Severity::High,
            args::FailOn::Medium => Severity::Medium,
            args::FailOn::Low => Severity::Low,
        }
    }
}
