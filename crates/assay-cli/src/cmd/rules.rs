//! `assay rules` and `assay explain`.

use anyhow::Result;
use std::io::{self, Write};
use std::process::ExitCode;

pub fn list() -> Result<ExitCode> {
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

pub fn explain(code: &str) -> Result<ExitCode> {
    match assay_scan::rules::lookup(code) {
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
    }
}
