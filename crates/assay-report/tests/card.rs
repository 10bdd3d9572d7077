//! Snapshot tests of the CycloneDX renderer, the model card section and the badge over
//! one fixed report (the one `render.rs` uses, with advisory references added).

mod common;

use assay_report::card::{
    Badge, CardInput, CardRecord, CardState, SignedBy, judge, render_badge, render_section,
};
use assay_report::render::{CycloneDxOptions, render_cyclonedx};
use assay_report::*;
use std::collections::BTreeMap;

fn report() -> Report {
    common::sample_report(&["CVE-2025-1550", "GHSA-xxxx-yyyy-zzzz"])
}

fn record(r: &Report, state: CardState) -> CardRecord {
    CardRecord {
        v: 1,
        state,
        root_sha256: "0f".repeat(32),
        files: BTreeMap::from([
            ("README.md".to_string(), "cd".repeat(32)),
            ("pytorch_model.bin".to_string(), "ab".repeat(32)),
        ]),
        ignored: vec!["assay-badge.svg".into()],
        readme_section: true,
        badge: Some("assay-badge.svg".into()),
        tool: "assay 0.1.0".into(),
        generated_at: "2026-01-01T00:00:00Z".into(),
        verdict: r.summary.verdict,
        fail_on: r.summary.fail_on,
        findings: r.summary.findings.clone(),
        stages: r.summary.stages.clone(),
        attestation_key: Some("ee".repeat(32)),
        section_sha256: None,
    }
}

#[test]
fn cyclonedx_snapshot() {
    let mut out = Vec::new();
    render_cyclonedx(
        &report(),
        &CycloneDxOptions {
            model_name: "model".into(),
            timestamp: "2026-01-01T00:00:00Z".into(),
        },
        &mut out,
    )
    .unwrap();
    insta::assert_snapshot!(String::from_utf8(out).unwrap());
}

#[test]
fn card_section_snapshot() {
    let r = report();
    let j = judge(&r);
    assert_eq!(j.state, CardState::Failed);
    let signed = SignedBy {
        path: "model/assay-attestation.json".into(),
        signer: format!("ECDSA P-256 key {}", "ee".repeat(32)),
        key_hint: "ee".repeat(32),
        verdict: "fail".into(),
        scanned_at: "2026-01-01T00:00:00Z".into(),
    };
    let rec = record(&r, j.state);
    let section = render_section(&CardInput {
        report: &r,
        judgement: &j,
        record: &rec,
        badge_link: Some("assay-badge.svg"),
        path_prefix: "model/",
        source: "scanned by assay card",
        signed: Some(&signed),
        attestation_note: None,
    });
    // The record comes back out of the text, with the digest of what a reader sees.
    let back = CardRecord::find(&section).unwrap();
    assert_eq!(back.root_sha256, rec.root_sha256);
    assert!(assay_report::card::check_section(&format!("# x\n{section}"), &back).is_ok());
    insta::assert_snapshot!(section);
}

#[test]
fn badge_snapshot() {
    insta::assert_snapshot!(render_badge(&Badge {
        state: CardState::Complete,
        message: "scan complete",
        title: "every stage ran to completion on every file and no finding reached high",
        root_sha256: &"0f".repeat(32),
    }));
}
