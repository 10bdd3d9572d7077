//! `assay scan`.

use crate::args::{FailOn, OutputFormat, ScanArgs};
use crate::progress;
use anyhow::{Context, Result};
use assay_report::render::{
    CycloneDxOptions, HumanOptions, render_cyclonedx, render_human, render_json, render_sarif,
};
use assay_report::{Severity, Verdict};
use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

pub fn scan(a: ScanArgs) -> Result<ExitCode> {
    // Signed scan attestation (cmd/sign.rs): set up first so a bad key fails early.
    let attest = crate::cmd::sign::ScanAttest::prepare(&a)?;
    let fail_on = a.fail_on.severity();
    // The advisory database is loaded before scanning: an empty or unreadable one is a
    // usage error (exit 2), never a silently clean vulnerability stage.
    let advisories = match &a.advisories {
        Some(path) => Some(
            assay_scan::AdvisoryDatabase::load(path)
                .with_context(|| "cannot use --advisories")?
                .with_builtin(),
        ),
        None => None,
    };
    if let Some(db) = &advisories {
        warn_about(db, a.advisories_max_age);
    }
    let bar = (!a.quiet && io::stderr().is_terminal()).then(progress::Bar::new);
    let mut opts = assay_scan::ScanOptions {
        jobs: a.jobs.unwrap_or(0),
        fail_on,
        progress: bar.as_ref().map(|b| b as &dyn assay_scan::Progress),
        // Only the JSON report and the BOM carry file digests.
        hash_files: matches!(a.format, OutputFormat::Json | OutputFormat::Cyclonedx)
            || attest.is_some(),
        advisories: advisories.as_ref(),
        advisories_max_age_days: a.advisories_max_age,
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
        OutputFormat::Cyclonedx => render_cyclonedx(
            &report,
            &CycloneDxOptions {
                model_name: bom_name(&a.paths),
                timestamp: assay_sign::rfc3339_utc(crate::cmd::card::now()),
            },
            &mut sink,
        )?,
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

/// The BOM's model name: the one model scanned, or a generic name for several.
fn bom_name(paths: &[std::path::PathBuf]) -> String {
    match paths {
        [one] => assay_sign::model_name(one),
        _ => "scanned-models".into(),
    }
}

/// A stale or partly unreadable database is also a CVE005 finding; say it on stderr too,
/// since it weakens every result of the vulnerability stage.
fn warn_about(db: &assay_scan::AdvisoryDatabase, max_age: u32) {
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| (d.as_secs() / 86_400) as i64)
        .unwrap_or(0);
    if let Some(age) = db.age_days(today).filter(|&a| a > i64::from(max_age)) {
        eprintln!(
            "assay: warning: advisory database {} is {age} days old; advisories published since are not checked",
            db.source
        );
    }
    if !db.problems.is_empty() {
        eprintln!(
            "assay: warning: {} record(s) of advisory database {} could not be read and were skipped",
            db.problems.len(),
            db.source
        );
    }
}

impl FailOn {
    pub(crate) fn severity(self) -> Severity {
        match self {
            FailOn::Critical => Severity::Critical,
            FailOn::High => Severity::High,
            FailOn::Medium => Severity::Medium,
            FailOn::Low => Severity::Low,
        }
    }
}
