//! Helpers shared by the unit tests of several analysers.

use assay_report::{Report, Severity};
use std::path::PathBuf;

/// Scans `path` with the structural stages only: the tensor stage would read every byte of
/// the (often sparse, multi-gigabyte) weights these tests create, so its limit is zero.
pub fn scan_structure_only(path: PathBuf) -> Report {
    let opts = crate::ScanOptions {
        hash_files: false,
        limits: crate::Limits {
            max_tensor_bytes_per_file: 0,
            ..crate::Limits::default()
        },
        ..crate::ScanOptions::default()
    };
    crate::scan(&[path], &opts).unwrap()
}

/// Asserts the report's one file has `format` and no finding reached `medium`.
pub fn assert_clean(report: &Report, format: &str) {
    assert_eq!(report.files[0].format, format);
    assert!(
        report
            .findings
            .iter()
            .all(|f| f.severity < Severity::Medium),
        "{:?}",
        report.findings
    );
}
