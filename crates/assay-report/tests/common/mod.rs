//! The fixed report every snapshot test renders.

use assay_report::*;
use std::collections::BTreeMap;

/// Two files (a checkpoint with a critical pickle finding, an unsupported README), every
/// stage complete; `extra_refs` are added to the critical finding's references.
pub fn sample_report(extra_refs: &[&str]) -> Report {
    let files = vec![
        FileEntry {
            path: "model/pytorch_model.bin".into(),
            format: "pytorch-zip".into(),
            size: 1234,
            sha256: "ab".repeat(32),
            status: FileStatus::Scanned,
        },
        FileEntry {
            path: "model/README.md".into(),
            format: "unknown".into(),
            size: 10,
            sha256: "cd".repeat(32),
            status: FileStatus::Unsupported,
        },
    ];
    let findings = vec![
        Finding {
            rule: "ARC001".into(),
            severity: Severity::Info,
            stage: Stage::Integrity,
            path: "model/README.md".into(),
            member: None,
            offset: None,
            message: "not a model format Assay analyses; content not scanned".into(),
            evidence: None,
            references: vec![],
        },
        Finding {
            rule: "PKL001".into(),
            severity: Severity::Critical,
            stage: Stage::Malware,
            path: "model/pytorch_model.bin".into(),
            member: Some("archive/data.pkl".into()),
            offset: Some(57),
            message: "pickle calls os.system, which spawns a process or runs a shell command, when loaded".into(),
            evidence: Some("os.system('echo pwned')".into()),
            references: std::iter::once("CWE-502")
                .chain(extra_refs.iter().copied())
                .map(String::from)
                .collect(),
        },
    ];
    let stages: BTreeMap<Stage, StageStatus> = Stage::ALL
        .iter()
        .map(|s| (*s, StageStatus::Complete))
        .collect();
    Report::new("0.1.0", Severity::High, files, findings, stages)
}
