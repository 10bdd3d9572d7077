//! The tensor and backdoor stages through the engine: stage statuses, the per-file limit,
//! and layer outliers, on fixtures made by torch (fixtures/tensor/generate.py).

use assay_scan::{Limits, ScanOptions, Severity, Stage, scan};
use std::path::{Path, PathBuf};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/tensor/stage")
        .join(rel)
}

fn stages(r: &assay_scan::Report) -> serde_json::Value {
    serde_json::to_value(r).unwrap()["summary"]["stages"].clone()
}

#[test]
fn stages_complete_when_they_ran() {
    let r = scan(&[fixture("benign/mlp_fp32.pt")], &ScanOptions::default()).unwrap();
    let s = stages(&r);
    assert_eq!(s["tensor"], "complete");
    assert_eq!(s["backdoor"], "complete");
    assert!(
        r.findings.iter().all(|f| f.severity < Severity::Medium),
        "{:?}",
        r.findings
    );
}

#[test]
fn a_limit_makes_the_stages_incomplete() {
    let opts = ScanOptions {
        limits: Limits {
            max_tensor_bytes_per_file: 40_000,
            ..Limits::default()
        },
        ..ScanOptions::default()
    };
    let r = scan(
        &[fixture("malicious/evilmodel_elf_fp32.safetensors")],
        &opts,
    )
    .unwrap();
    let s = stages(&r);
    assert_eq!(s["tensor"], "incomplete");
    assert_eq!(s["backdoor"], "incomplete");
    assert!(
        r.findings.iter().any(|f| f.rule == "TEN009"),
        "{:?}",
        r.findings
    );
    // The payload sits in a tensor past the limit: not found, and the report says why.
    assert!(!r.findings.iter().any(|f| f.rule == "TEN004"));
}

#[test]
fn one_scaled_layer_is_a_medium_backdoor_signal() {
    let r = scan(
        &[fixture("deep_fp32_layer5_scaled.safetensors")],
        &ScanOptions::default(),
    )
    .unwrap();
    let outliers: Vec<_> = r.findings.iter().filter(|f| f.rule == "TEN010").collect();
    assert!(!outliers.is_empty(), "{:?}", r.findings);
    for f in &outliers {
        assert_eq!(f.severity, Severity::Medium);
        assert_eq!(f.stage, Stage::Backdoor);
        assert!(f.message.contains("layers.5.weight"), "{}", f.message);
    }
    let clean = scan(
        &[fixture("benign/deep_fp32.safetensors")],
        &ScanOptions::default(),
    )
    .unwrap();
    assert!(
        !clean.findings.iter().any(|f| f.rule == "TEN010"),
        "{:?}",
        clean.findings
    );
}

#[test]
fn findings_name_tensor_byte_range_and_member() {
    let r = scan(
        &[fixture("malicious/evilmodel_zip_fp32.pt")],
        &ScanOptions::default(),
    )
    .unwrap();
    let f = r
        .findings
        .iter()
        .find(|f| f.rule == "TEN004")
        .expect("payload finding");
    assert_eq!(f.severity, Severity::High);
    assert_eq!(f.stage, Stage::Tensor);
    assert!(f.message.contains("\"4.weight\""), "{}", f.message);
    assert!(f.message.contains("bytes 0..65536"), "{}", f.message);
    assert!(
        f.member.as_deref().is_some_and(|m| m.ends_with("/data/4")),
        "{:?}",
        f.member
    );
    assert_eq!(f.offset, Some(4000));
}
