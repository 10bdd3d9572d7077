//! SARIF 2.1.0, shaped for GitHub code scanning: every rule referenced by a result is in
//! `tool.driver.rules` with a `help` text and a `security-severity`, every result has a
//! physical location with a relative URI, and `partialFingerprints` keep alerts stable.
use super::json::json_io_error;
use crate::{Report, RuleDoc, Severity};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{self, Write};

fn level(sev: Severity) -> &'static str {
    match sev {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub maps this number to its own critical/high/medium/low labels.
fn security_severity(sev: Severity) -> &'static str {
    match sev {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.0",
    }
}

/// A URI reference for SARIF: forward slashes, no leading `./` or `/`, percent-encoded.
fn artifact_uri(path: &str) -> String {
    let p = path.replace('\\', "/");
    let p = p.trim_start_matches("./").trim_start_matches('/');
    let mut out = String::with_capacity(p.len());
    for b in p.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    if out.is_empty() { ".".into() } else { out }
}

fn fingerprint(s: &str) -> String {
    // FNV-1a: stable across runs and platforms; only has to tell alerts apart.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

/// Builds the SARIF document as a JSON value (exposed for tests).
pub fn sarif_value(report: &Report, rules: &[RuleDoc]) -> Value {
    let by_code: BTreeMap<&str, &RuleDoc> = rules.iter().map(|r| (r.code, r)).collect();
    let mut used: Vec<&str> = report.findings.iter().map(|f| f.rule.as_str()).collect();
    used.sort_unstable();
    used.dedup();
    let index: BTreeMap<&str, usize> = used.iter().enumerate().map(|(i, c)| (*c, i)).collect();
    let rule_objs: Vec<Value> = used
        .iter()
        .map(|code| match by_code.get(code) {
            Some(r) => json!({
                "id": r.code,
                "name": r.name,
                "shortDescription": {"text": r.summary},
                "fullDescription": {"text": r.summary},
                "help": {"text": r.doc, "markdown": r.doc},
                "defaultConfiguration": {"level": level(r.severity)},
                "properties": {
                    "tags": ["security", r.stage.as_str()],
                    "security-severity": security_severity(r.severity),
                    "precision": "high"
                }
            }),
            None => json!({
                "id": code,
                "shortDescription": {"text": code},
                "properties": {"tags": ["security"]}
            }),
        })
        .collect();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let mut text = f.message.clone();
            if let Some(m) = &f.member {
                text.push_str(&format!(" (in {m})"));
            }
            if let Some(e) = &f.evidence {
                text.push_str(&format!(" Evidence: {e}"));
            }
            let mut region = json!({"startLine": 1});
            if let (Some(o), None) = (f.offset, &f.member) {
                region = json!({"startLine": 1, "byteOffset": o});
            }
            let mut loc = json!({
                "physicalLocation": {
                    "artifactLocation": {"uri": artifact_uri(&f.path)},
                    "region": region
                }
            });
            if let Some(m) = &f.member {
                loc["logicalLocations"] = json!([{"fullyQualifiedName": m, "kind": "member"}]);
            }
            let key = format!(
                "{}|{}|{}|{}",
                f.rule,
                f.path,
                f.member.as_deref().unwrap_or(""),
                f.evidence.as_deref().unwrap_or(&f.message)
            );
            json!({
                "ruleId": f.rule,
                "ruleIndex": index[f.rule.as_str()],
                "level": level(f.severity),
                "message": {"text": text},
                "locations": [loc],
                "partialFingerprints": {"assayFinding/v1": fingerprint(&key)},
                "properties": {"severity": f.severity.as_str(), "stage": f.stage.as_str(),
                               "security-severity": security_severity(f.severity)}
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "assay",
                "version": report.tool.version,
                "semanticVersion": report.tool.version,
                "informationUri": "https://github.com/assay-dev/assay",
                "rules": rule_objs
            }},
            "results": results,
            "columnKind": "unicodeCodePoints"
        }]
    })
}

pub fn render_sarif(report: &Report, rules: &[RuleDoc], out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &sarif_value(report, rules)).map_err(json_io_error)?;
    out.write_all(b"\n")
}
