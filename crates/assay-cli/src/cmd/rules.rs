//! `assay rules` and `assay explain`: the scan rule table and the firewall's `FWL` rules.

use anyhow::Result;
use assay_firewall::rules::FirewallRule;
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
    // Firewall rules have no severity or stage: the second column is the default action
    // (short form), the third says where they apply.
    for r in assay_firewall::rules::all() {
        let action = r.action.split_whitespace().next().unwrap_or("");
        let applies = format!("firewall:{}", r.applies);
        writeln!(
            out,
            "{}  {:<8}  {:<13}  {}",
            r.code, action, applies, r.summary
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn explain(code: &str) -> Result<ExitCode> {
    let mut out = io::stdout().lock();
    if let Some(r) = assay_scan::rules::lookup(code) {
        writeln!(out, "# {} — {}\n", r.code, r.name)?;
        writeln!(
            out,
            "Stage: {}    Default severity: {}    Since: {}\n",
            r.stage, r.severity, r.since
        )?;
        writeln!(out, "{}", r.doc.trim_end())?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(r) = assay_firewall::rules::lookup(code) {
        write_firewall_rule(&mut out, r)?;
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("assay: unknown rule code {code:?}; `assay rules` lists them all");
    Ok(ExitCode::from(2))
}

/// One firewall rule's documentation (`assay explain FWL0xx`, `assay firewall rules CODE`).
pub fn write_firewall_rule(out: &mut impl Write, r: &FirewallRule) -> io::Result<()> {
    writeln!(out, "# {} — {}\n", r.code, r.name)?;
    writeln!(
        out,
        "Firewall rule. Applies to: {}    Default action: {}    Since: {}\n",
        r.applies, r.action, r.since
    )?;
    writeln!(out, "{}", r.doc.trim_end())
}
