//! Model cards and scan badges bound to the bytes that were scanned.
//!
//! A card is a Markdown section (in a repository's `README.md` between markers, or a
//! file of its own) with a per-stage table, finding counts, the model's root digest and
//! the tool that made it, plus an SVG badge. Both carry machine-readable data (an HTML
//! comment with JSON) so that `assay card --check` can recompute the digest and name
//! what changed.
//!
//! - [`judge`] decides the badge state from a report's stage statuses and verdict;
//! - [`render_section`] / [`render_badge`] render;
//! - [`readme`] puts a section into a README and takes it out again, byte for byte;
//! - [`bind`] computes the root digest the card is bound to (with assay-sign) and checks
//!   it.

mod badge;
pub mod bind;
mod markdown;
pub mod readme;
mod widths;

pub use badge::{Badge, color, parse_badge, render_badge, text_width_tenths};
pub use markdown::{CardInput, SignedBy, render_section};

use crate::{FileStatus, Report, Severity, Stage, StageStatus, Verdict};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the badge says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CardState {
    /// Every stage ran to completion on every file and the verdict passed.
    Complete,
    /// The verdict failed (a finding at or above `fail_on`).
    Failed,
    /// The verdict passed, but not everything was analysed.
    Incomplete,
}

impl CardState {
    pub fn as_str(self) -> &'static str {
        match self {
            CardState::Complete => "complete",
            CardState::Failed => "failed",
            CardState::Incomplete => "incomplete",
        }
    }

    pub fn parse(s: &str) -> Option<CardState> {
        [
            CardState::Complete,
            CardState::Failed,
            CardState::Incomplete,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// The state, the badge's short message and the full reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    pub state: CardState,
    pub message: String,
    pub reason: String,
}

/// Judges a report: `failed` when the verdict failed; otherwise `incomplete` unless every
/// one of the six stages is `complete` (a stage missing from the report counts as not
/// run) and every file was scanned completely; otherwise `complete`.
pub fn judge(report: &Report) -> Judgement {
    let s = &report.summary;
    let mut gaps = Vec::new();
    let mut not_run = Vec::new();
    let mut incomplete = Vec::new();
    for stage in Stage::ALL {
        match s.stages.get(&stage) {
            Some(StageStatus::Complete) => {}
            Some(StageStatus::Incomplete) => incomplete.push(stage.as_str()),
            Some(StageStatus::NotRun) | None => not_run.push(stage.as_str()),
        }
    }
    if !not_run.is_empty() {
        gaps.push(format!("stages not run: {}", not_run.join(", ")));
    }
    if !incomplete.is_empty() {
        gaps.push(format!("stages incomplete: {}", incomplete.join(", ")));
    }
    let partial = report
        .files
        .iter()
        .filter(|f| f.status == FileStatus::Incomplete)
        .count();
    if partial > 0 {
        gaps.push(format!(
            "{partial} file{} could not be analysed completely",
            plural(partial)
        ));
    }
    if s.files_scanned == 0 {
        gaps.push("no files were scanned".into());
    }
    if s.verdict == Verdict::Fail {
        let worst: Vec<String> = Severity::ALL
            .iter()
            .filter(|sev| **sev >= s.fail_on)
            .filter_map(|sev| {
                let n = s.findings.get(sev).copied().unwrap_or(0);
                (n > 0).then(|| format!("{n} {sev}"))
            })
            .collect();
        let counts = worst.join(", ");
        let mut reason = format!(
            "{counts} finding{} at or above {}",
            plural_u64(worst_total(report, s.fail_on)),
            s.fail_on
        );
        if !gaps.is_empty() {
            reason.push_str(&format!("; also {}", gaps.join("; ")));
        }
        return Judgement {
            state: CardState::Failed,
            message: format!("scan failed: {counts}"),
            reason,
        };
    }
    if gaps.is_empty() {
        return Judgement {
            state: CardState::Complete,
            message: "scan complete".into(),
            reason: format!(
                "every stage ran to completion on every file and no finding reached {}",
                s.fail_on
            ),
        };
    }
    let short = if !not_run.is_empty() {
        format!("{} stage{} not run", not_run.len(), plural(not_run.len()))
    } else if partial > 0 {
        format!("{partial} file{} not fully analysed", plural(partial))
    } else if !incomplete.is_empty() {
        format!(
            "{} stage{} incomplete",
            incomplete.len(),
            plural(incomplete.len())
        )
    } else {
        gaps[0].clone()
    };
    Judgement {
        state: CardState::Incomplete,
        message: format!("scan incomplete: {short}"),
        reason: gaps.join("; "),
    }
}

fn worst_total(report: &Report, fail_on: Severity) -> u64 {
    report
        .summary
        .findings
        .iter()
        .filter(|(sev, _)| **sev >= fail_on)
        .map(|(_, n)| n)
        .sum()
}

pub(crate) fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

pub(crate) fn plural_u64(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The machine-readable part of a card, embedded as JSON in an HTML comment. The
/// per-file digests let `--check` name each file that changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardRecord {
    /// Format version of this record.
    pub v: u32,
    pub state: CardState,
    /// Hex SHA-256 root digest (OpenSSF model-signing, `files` method).
    pub root_sha256: String,
    /// Every file in the digest with its hex SHA-256, in manifest order.
    pub files: BTreeMap<String, String>,
    /// Paths (relative to the model) left out of the digest: the card's own files.
    pub ignored: Vec<String>,
    /// True when the card is a section of the model's own `README.md`; the README is
    /// then digested with the section taken out.
    pub readme_section: bool,
    /// The badge, relative to the model folder (`None` when it lies outside it).
    pub badge: Option<String>,
    pub tool: String,
    pub generated_at: String,
    pub verdict: Verdict,
    pub fail_on: Severity,
    pub findings: BTreeMap<Severity, u64>,
    pub stages: BTreeMap<Stage, StageStatus>,
    /// Hint (hex SHA-256 of the PEM) of the key whose scan attestation was verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation_key: Option<String>,
    /// [`visible_sha256`] of the section the record sits in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_sha256: Option<String>,
}

/// Hex SHA-256 of a card section's text without its record line: what a reader sees.
pub fn visible_sha256(section: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for line in section.split_inclusive('\n') {
        if !line.starts_with(DATA_OPEN.trim_end()) {
            h.update(line.trim_end_matches(['\r', '\n']).as_bytes());
            h.update(b"\n");
        }
    }
    hex::encode(h.finalize())
}

/// Checks that the card section in `text` still reads as it was written: its visible
/// text hashes to the record's `section_sha256`.
pub fn check_section(text: &str, record: &CardRecord) -> Result<(), String> {
    let Some(want) = &record.section_sha256 else {
        return Ok(());
    };
    let span = readme::find(text)?.ok_or("the card has no assay-card markers")?;
    let section = &text[span.start..span.end];
    let end = section.rfind(readme::END).map(|i| i + readme::END.len());
    let section = &section[..end.unwrap_or(section.len())];
    if visible_sha256(section) == *want {
        Ok(())
    } else {
        Err(
            "the card's text was edited by hand (it no longer reads as `assay card` wrote it)"
                .into(),
        )
    }
}

const DATA_OPEN: &str = "<!-- assay-card-data ";
const DATA_CLOSE: &str = " -->";

impl CardRecord {
    /// One line: an HTML comment holding the JSON. `--` cannot occur inside (it would
    /// end the comment early): it is written as `-\u002d`, which JSON reads back as `--`.
    pub fn to_comment(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        format!("{DATA_OPEN}{}{DATA_CLOSE}", json.replace("--", "-\\u002d"))
    }

    /// Finds and parses the record in a card's text.
    pub fn find(text: &str) -> Result<CardRecord, String> {
        let start = text
            .find(DATA_OPEN)
            .ok_or("no assay-card-data comment in the card")?
            + DATA_OPEN.len();
        let rest = &text[start..];
        let end = rest
            .find(DATA_CLOSE)
            .ok_or("the assay-card-data comment is not closed")?;
        serde_json::from_str(&rest[..end])
            .map_err(|e| format!("the assay-card-data comment is not a valid card record: {e}"))
    }
}

/// Escapes text for XML/HTML content and attributes.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FileEntry;

    fn report(stages: StageStatus, findings: Vec<crate::Finding>) -> Report {
        let files = vec![FileEntry {
            path: "m/a.bin".into(),
            format: "pickle".into(),
            size: 3,
            sha256: "00".into(),
            status: FileStatus::Scanned,
        }];
        let st = Stage::ALL.iter().map(|s| (*s, stages)).collect();
        Report::new("0.1.0", Severity::High, files, findings, st)
    }

    #[test]
    fn judges_complete_failed_and_incomplete() {
        assert_eq!(
            judge(&report(StageStatus::Complete, vec![])).state,
            CardState::Complete
        );
        let j = judge(&report(StageStatus::NotRun, vec![]));
        assert_eq!(j.state, CardState::Incomplete);
        assert_eq!(j.message, "scan incomplete: 6 stages not run");
        let j = judge(&report(StageStatus::Incomplete, vec![]));
        assert_eq!(j.message, "scan incomplete: 6 stages incomplete");
        assert_eq!(
            j.reason,
            "stages incomplete: malware, network, vulnerability, backdoor, integrity, tensor"
        );
        let crit = crate::Finding {
            rule: "PKL001".into(),
            severity: Severity::Critical,
            stage: Stage::Malware,
            path: "m/a.bin".into(),
            member: None,
            offset: None,
            message: "x".into(),
            evidence: None,
            references: vec![],
        };
        let j = judge(&report(StageStatus::Complete, vec![crit]));
        assert_eq!(j.state, CardState::Failed);
        assert_eq!(j.message, "scan failed: 1 critical");
        assert_eq!(j.reason, "1 critical finding at or above high");
    }

    #[test]
    fn record_comment_survives_double_dashes() {
        let r = CardRecord {
            v: 1,
            state: CardState::Complete,
            root_sha256: "ab".into(),
            files: BTreeMap::from([("a--b-->c.bin".to_string(), "00".to_string())]),
            ignored: vec![],
            readme_section: true,
            badge: Some("assay-badge.svg".into()),
            tool: "assay 0.1.0".into(),
            generated_at: "2026-01-01T00:00:00Z".into(),
            verdict: Verdict::Pass,
            fail_on: Severity::High,
            findings: BTreeMap::new(),
            stages: BTreeMap::new(),
            attestation_key: None,
            section_sha256: None,
        };
        let c = r.to_comment();
        assert!(!c[4..c.len() - 3].contains("--"), "{c}");
        assert_eq!(CardRecord::find(&format!("x\n{c}\ny")).unwrap(), r);
    }
}
