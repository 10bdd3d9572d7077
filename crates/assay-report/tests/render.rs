//! Snapshot tests of every renderer over one fixed report.

mod common;

use assay_report::render::{HumanOptions, render_human, render_json, render_sarif};
use assay_report::*;

fn report() -> Report {
    common::sample_report(&[])
}

fn rules() -> Vec<RuleDoc> {
    vec![RuleDoc {
        code: "PKL001",
        name: "pickle-dangerous-callable",
        stage: Stage::Malware,
        severity: Severity::Critical,
        summary: "A pickle calls a dangerous callable.",
        doc: "## What it detects\n\nA pickle calls a dangerous callable.\n\n## Remediation\n\nDo not load it.\n",
        since: "0.1.0",
    }]
}

fn render(f: impl Fn(&Report, &mut Vec<u8>)) -> String {
    let mut out = Vec::new();
    f(&report(), &mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn summary_is_computed_from_findings() {
    let r = report();
    assert_eq!(r.summary.verdict, Verdict::Fail);
    assert_eq!(r.summary.findings[&Severity::Critical], 1);
    assert_eq!(r.summary.findings[&Severity::Info], 1);
    assert_eq!(r.summary.bytes_scanned, 1244);
    assert_eq!(r.findings[0].rule, "PKL001", "worst first");
}

#[test]
fn json_snapshot() {
    insta::assert_snapshot!(render(|r, o| render_json(r, o).unwrap()));
}

#[test]
fn sarif_snapshot() {
    insta::assert_snapshot!(render(|r, o| render_sarif(r, &rules(), o).unwrap()));
}

#[test]
fn human_snapshot() {
    insta::assert_snapshot!(render(
        |r, o| render_human(r, HumanOptions::default(), o).unwrap()
    ));
}

#[test]
fn human_quiet_hides_findings_below_the_threshold() {
    let text = render(|r, o| {
        render_human(
            r,
            HumanOptions {
                color: false,
                quiet: true,
            },
            o,
        )
        .unwrap()
    });
    assert!(text.contains("PKL001"));
    assert!(!text.contains("ARC001"));
}
