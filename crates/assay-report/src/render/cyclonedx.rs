//! CycloneDX 1.6 ML-BOM (JSON): the model as `metadata.component`, one component per
//! file (weights and serialized models as `machine-learning-model`, the rest as
//! `file`) with its SHA-256 and format, and every finding as a `vulnerability` rated
//! with Assay's severity, affecting the file it was found in. CVE and GHSA ids among a
//! finding's references become the vulnerability's id and references; CWE ids go to
//! `cwes`.

use super::json::json_io_error;
use crate::{Report, Severity};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::io::{self, Write};

/// The BOM's specification version.
pub const SPEC_VERSION: &str = "1.6";

/// What the report itself does not know.
#[derive(Debug, Clone)]
pub struct CycloneDxOptions {
    /// Name of the model (the scanned folder or file).
    pub model_name: String,
    /// RFC 3339 time the BOM was made.
    pub timestamp: String,
}

/// Formats that hold a model (weights, a graph, or a serialized estimator).
fn is_model_format(format: &str) -> bool {
    matches!(
        format,
        "pickle"
            | "pytorch-zip"
            | "pytorch-legacy"
            | "pytorch-tar"
            | "torchscript"
            | "joblib"
            | "dill"
            | "cloudpickle"
            | "numpy-npy"
            | "numpy-npz"
            | "safetensors"
            | "gguf"
            | "keras"
            | "keras-h5"
            | "hdf5"
            | "onnx"
    ) || format.starts_with("tensorflow")
        || format.starts_with("savedmodel")
}

fn cdx_severity(sev: Severity) -> &'static str {
    match sev {
        Severity::Critical => "critical",
        Severity::High => "high",
        Severity::Medium => "medium",
        Severity::Low => "low",
        Severity::Info => "info",
    }
}

fn prop(name: &str, value: impl Into<String>) -> Value {
    json!({"name": name, "value": value.into()})
}

fn file_ref(path: &str) -> String {
    format!("file:{path}")
}

/// A UUID (version 4 layout) derived from the BOM's content, so the same scan at the
/// same time gives the same serial number and different ones differ.
fn serial_number(report: &Report, opts: &CycloneDxOptions) -> String {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(report).unwrap_or_default());
    h.update(opts.timestamp.as_bytes());
    h.update(opts.model_name.as_bytes());
    let mut b: [u8; 16] = h.finalize()[..16].try_into().unwrap_or([0; 16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

/// An advisory id in a reference, with where it is published.
fn advisory(r: &str) -> Option<(String, &'static str, String)> {
    let id = r.trim();
    if let Some(rest) = id.strip_prefix("CVE-")
        && rest.len() >= 6
        && rest.chars().all(|c| c.is_ascii_digit() || c == '-')
    {
        let url = format!("https://nvd.nist.gov/vuln/detail/{id}");
        return Some((id.to_string(), "NVD", url));
    }
    if id.starts_with("GHSA-") && id.len() == 19 {
        let url = format!("https://github.com/advisories/{id}");
        return Some((id.to_string(), "GitHub Advisories", url));
    }
    None
}

/// Builds the BOM as a JSON value.
pub fn cyclonedx_value(report: &Report, opts: &CycloneDxOptions) -> Value {
    let tool = &report.tool;
    let components: Vec<Value> = report
        .files
        .iter()
        .map(|f| {
            let kind = if is_model_format(&f.format) {
                "machine-learning-model"
            } else {
                "file"
            };
            let mut c = json!({
                "type": kind,
                "bom-ref": file_ref(&f.path),
                "name": f.path,
                "description": format!("{} ({} bytes)", f.format, f.size),
                "properties": [
                    prop("assay:format", f.format.clone()),
                    prop("assay:size", f.size.to_string()),
                    prop("assay:status", serde_json::to_value(f.status).ok()
                        .and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()),
                ],
            });
            if f.sha256.len() == 64 {
                c["hashes"] = json!([{"alg": "SHA-256", "content": f.sha256}]);
            }
            c
        })
        .collect();
    let s = &report.summary;
    let mut model_props = vec![
        prop(
            "assay:verdict",
            if s.verdict == crate::Verdict::Pass {
                "pass"
            } else {
                "fail"
            },
        ),
        prop("assay:fail_on", s.fail_on.as_str()),
        prop("assay:files_scanned", s.files_scanned.to_string()),
        prop("assay:bytes_scanned", s.bytes_scanned.to_string()),
    ];
    for (stage, status) in &s.stages {
        let st = serde_json::to_value(status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        model_props.push(prop(&format!("assay:stage:{}", stage.as_str()), st));
    }
    let vulnerabilities: Vec<Value> = report
        .findings
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let advisories: Vec<(String, &str, String)> =
                f.references.iter().filter_map(|r| advisory(r)).collect();
            let cwes: Vec<u64> = f
                .references
                .iter()
                .filter_map(|r| r.trim().strip_prefix("CWE-")?.parse().ok())
                .collect();
            let (id, source) = match advisories.first() {
                Some((id, name, url)) => (id.clone(), json!({"name": name, "url": url})),
                None => (f.rule.clone(), json!({"name": "Assay"})),
            };
            let mut place = f.path.clone();
            if let Some(m) = &f.member {
                place.push_str("!/");
                place.push_str(m);
            }
            let mut props = vec![
                prop("assay:rule", f.rule.clone()),
                prop("assay:stage", f.stage.as_str()),
                prop("assay:location", place),
            ];
            if let Some(o) = f.offset {
                props.push(prop("assay:offset", o.to_string()));
            }
            let mut v = json!({
                "bom-ref": format!("finding:{}", i + 1),
                "id": id,
                "source": source,
                "ratings": [{
                    "source": {"name": "Assay"},
                    "severity": cdx_severity(f.severity),
                    "method": "other",
                    "justification": format!("{} rule {}", tool.name, f.rule),
                }],
                "description": f.message,
                "affects": [{"ref": file_ref(&f.path)}],
                "properties": props,
            });
            if let Some(e) = &f.evidence {
                v["detail"] = json!(format!("evidence: {e}"));
            }
            if !cwes.is_empty() {
                v["cwes"] = json!(cwes);
            }
            let refs: Vec<Value> = advisories
                .iter()
                .skip(1)
                .map(|(id, name, url)| json!({"id": id, "source": {"name": name, "url": url}}))
                .collect();
            if !refs.is_empty() {
                v["references"] = json!(refs);
            }
            v
        })
        .collect();
    let mut components = components;
    let mut file_refs: Vec<String> = report.files.iter().map(|f| file_ref(&f.path)).collect();
    let mut seen = std::collections::BTreeSet::new();
    for d in &report.dependencies {
        // One component per package and constraint; where it is declared goes in
        // properties (bom-refs must be unique).
        let bom_ref = format!("pypi:{}:{}", d.package, d.spec);
        if !seen.insert(bom_ref.clone()) {
            continue;
        }
        let mut c = json!({
            "type": "library",
            "bom-ref": bom_ref,
            "name": d.package,
            "scope": "required",
            "properties": [
                prop("assay:requirement", format!("{}{}", d.package, d.spec)),
                prop("assay:declared_in", format!("{}:{}", d.source, d.line)),
            ],
        });
        if let Some(v) = d.pinned_version() {
            c["version"] = json!(v);
            c["purl"] = json!(format!("pkg:pypi/{}@{}", d.package, v));
        } else {
            c["purl"] = json!(format!("pkg:pypi/{}", d.package));
        }
        file_refs.push(bom_ref);
        components.push(c);
    }
    let mut bom = json!({
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": serial_number(report, opts),
        "version": 1,
        "metadata": {
            "timestamp": opts.timestamp,
            "tools": {"components": [{
                "type": "application",
                "name": tool.name,
                "version": tool.version,
            }]},
            "component": {
                "type": "machine-learning-model",
                "bom-ref": "model",
                "name": opts.model_name,
                "properties": model_props,
            },
        },
        "components": components,
        "dependencies": [{"ref": "model", "dependsOn": file_refs}],
    });
    if !vulnerabilities.is_empty() {
        bom["vulnerabilities"] = json!(vulnerabilities);
    }
    bom
}

/// Writes the BOM as pretty JSON.
pub fn render_cyclonedx(
    report: &Report,
    opts: &CycloneDxOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &cyclonedx_value(report, opts))
        .map_err(json_io_error)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advisories_are_recognised() {
        assert_eq!(advisory("CVE-2025-1550").unwrap().1, "NVD");
        assert_eq!(
            advisory("GHSA-abcd-efgh-ijkl").unwrap().1,
            "GitHub Advisories"
        );
        assert!(advisory("CWE-502").is_none());
        assert!(advisory("CVE-x").is_none());
    }
}
