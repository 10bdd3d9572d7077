use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// How bad a finding is, judged by what loading the artifact could do.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// The six questions a scan answers; every finding names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Malware,
    Network,
    Vulnerability,
    Backdoor,
    Integrity,
    Tensor,
}

impl Stage {
    pub const ALL: [Stage; 6] = [
        Stage::Malware,
        Stage::Network,
        Stage::Vulnerability,
        Stage::Backdoor,
        Stage::Integrity,
        Stage::Tensor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Malware => "malware",
            Stage::Network => "network",
            Stage::Vulnerability => "vulnerability",
            Stage::Backdoor => "backdoor",
            Stage::Integrity => "integrity",
            Stage::Tensor => "tensor",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Whether a stage ran to completion over every file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageStatus {
    /// Ran over every file with nothing left out.
    Complete,
    /// Ran, but at least one file or member could not be analysed completely.
    Incomplete,
    /// This build of Assay does not implement the stage yet.
    NotRun,
}

/// One thing a scan found, in the stable JSON shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub rule: String,
    pub severity: Severity,
    pub stage: Stage,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
}

/// How far a file got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    Scanned,
    Incomplete,
    Unsupported,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub format: String,
    pub size: u64,
    /// Hex SHA-256 of the file (empty when the caller did not ask for digests).
    pub sha256: String,
    pub status: FileStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub verdict: Verdict,
    pub fail_on: Severity,
    pub files_scanned: u64,
    pub bytes_scanned: u64,
    /// Counts per severity, always with all five keys.
    pub findings: BTreeMap<Severity, u64>,
    pub stages: BTreeMap<Stage, StageStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolInfo {
    pub name: String,
    pub version: String,
}

/// A whole scan: what was looked at and what was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub tool: ToolInfo,
    pub summary: Summary,
    pub files: Vec<FileEntry>,
    pub findings: Vec<Finding>,
    /// Packages the scanned model declares it needs (requirements files, pyproject.toml,
    /// setup.cfg, Pipfile.lock, conda environments), as the vulnerability stage read them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<Dependency>,
}

/// One requirement declared by a manifest of the scanned model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependency {
    /// The package's PEP 503-normalised name (`llama-cpp-python`).
    pub package: String,
    /// The version constraint as PEP 440 text (`==0.2.70`, `>=1.16`, `""` for any).
    pub spec: String,
    /// The manifest that declares it, as shown in the report.
    pub source: String,
    /// 1-based line in the manifest (0 when unknown).
    #[serde(default)]
    pub line: usize,
    /// The environment marker, when the requirement has one (not evaluated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marker: Option<String>,
}

impl Dependency {
    /// The exact version when the constraint pins one (`==X` or `===X`, no wildcard).
    pub fn pinned_version(&self) -> Option<&str> {
        let v = self
            .spec
            .strip_prefix("===")
            .or_else(|| self.spec.strip_prefix("=="))?
            .trim();
        (!v.is_empty() && !v.contains(['*', ',', ' '])).then_some(v)
    }
}

impl Report {
    /// Builds a report, sorting findings (worst first, then by place) and computing the
    /// summary from the findings so the two can never disagree.
    pub fn new(
        version: &str,
        fail_on: Severity,
        files: Vec<FileEntry>,
        mut findings: Vec<Finding>,
        stages: BTreeMap<Stage, StageStatus>,
    ) -> Report {
        findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.path.cmp(&b.path))
                .then_with(|| a.member.cmp(&b.member))
                .then_with(|| a.offset.cmp(&b.offset))
                .then_with(|| a.rule.cmp(&b.rule))
        });
        let mut counts: BTreeMap<Severity, u64> = Severity::ALL.iter().map(|s| (*s, 0)).collect();
        for f in &findings {
            *counts.entry(f.severity).or_default() += 1;
        }
        let verdict = if findings.iter().any(|f| f.severity >= fail_on) {
            Verdict::Fail
        } else {
            Verdict::Pass
        };
        Report {
            tool: ToolInfo {
                name: "assay".into(),
                version: version.into(),
            },
            summary: Summary {
                verdict,
                fail_on,
                files_scanned: files.len() as u64,
                bytes_scanned: files.iter().map(|f| f.size).sum(),
                findings: counts,
                stages,
            },
            files,
            findings,
            dependencies: Vec::new(),
        }
    }

    /// The same report with the model's declared dependencies (sorted, duplicates
    /// removed).
    pub fn with_dependencies(mut self, mut dependencies: Vec<Dependency>) -> Report {
        dependencies.sort_by(|a, b| {
            (&a.package, &a.source, a.line, &a.spec).cmp(&(&b.package, &b.source, b.line, &b.spec))
        });
        dependencies.dedup();
        self.dependencies = dependencies;
        self
    }
}

/// The documentation of one rule, as `assay explain` prints it and SARIF embeds it.
#[derive(Debug, Clone, Copy)]
pub struct RuleDoc {
    pub code: &'static str,
    /// Short kebab-case name, e.g. `pickle-dangerous-callable`.
    pub name: &'static str,
    pub stage: Stage,
    /// The severity the rule usually carries; individual findings may differ.
    pub severity: Severity,
    pub summary: &'static str,
    /// Markdown with the headings What it detects / Why is this dangerous? / Example /
    /// Remediation / References.
    pub doc: &'static str,
    pub since: &'static str,
}
