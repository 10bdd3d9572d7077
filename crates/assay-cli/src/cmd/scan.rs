//! `assay scan`.

use crate::args::{FailOn, OutputFormat, ScanArgs};
use crate::progress;
use anyhow::{Context, Result};
use assay_report::render::{HumanOptions, render_human, render_json, render_sarif};
use assay_report::{Severity, Verdict};
use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

pub fn scan(a: ScanArgs) -> Result<ExitCode> {
    // Signed scan attestation (cmd/sign.rs): set up first so a bad key fails early.
    let attest = crate::cmd::sign::ScanAttest::prepare(&a)?;
    let fail_on = a.fail_on.severity();
    let bar = (!a.quiet && io::stderr().is_terminal()).then(progress::Bar::new);
    let mut opts = assay_scan::ScanOptions {
        jobs: a.jobs.unwrap_or(0),
        fail_on,
        progress: bar.as_ref().map(|b| b as &dyn assay_scan::Progress),
        // Only the JSON report carries file digests.
        hash_files: a.format == OutputFormat::Json || attest.is_some(),
        ..Default::default()
    };
    if let Some(n) = a.max_payload_search {
        opts.limits.max_payload_search_bytes_per_file = n;
    }
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
    if let Some(attest) = attest {
        attest.write(&report)?;
    }
    Ok(match report.summary.verdict {
        Verdict::Pass => ExitCode::SUCCESS,
        Verdict::Fail => ExitCode::from(1),
    })
}

impl FailOn {
    fn severity(self) -> Severity {
        match self {
            FailOn::Critical => Severity::Critical,
            FailOn::High => Severity::High,
            FailOn::Medium => Severity::Medium,
            FailOn::Low => Severity::Low,
        }
    }
}
