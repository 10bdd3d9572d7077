//! Signed scan attestations: the same bundle, envelope and statement as a model
//! signature, with Assay's predicate type. The subject is the model's root digest
//! (computed exactly as for a model signature) and the predicate records the scan
//! together with the serialization and per-file resources, so that a later check can
//! say precisely which file changed since the scan.
//!
//! ```json
//! {"tool": {"name": "assay", "version": "0.1.0"},
//!  "scannedAt": "2026-01-31T12:00:00Z", "verdict": "pass", "failOn": "high",
//!  "filesScanned": 4, "bytesScanned": 5427,
//!  "findings": {"critical": 0, "high": 0, "medium": 2, "low": 0, "info": 1},
//!  "stages": {"malware": "complete", …},
//!  "report": {"mediaType": "application/json", "digest": {"sha256": "<hex>"}},
//!  "serialization": {…}, "resources": [ … ]}
//! ```

use crate::bundle::{self, Signer};
use crate::error::{SignError, VerifyError};
use crate::manifest::Manifest;
use crate::statement::{Statement, resources_to_json, serialization_to_json};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

pub const SCAN_PREDICATE_TYPE: &str = "https://assay.dev/attestation/scan/v1";

/// What a scan concluded, as recorded in the attestation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanRecord {
    pub tool: ToolRef,
    /// RFC 3339, UTC.
    pub scanned_at: String,
    pub verdict: String,
    pub fail_on: String,
    pub files_scanned: u64,
    pub bytes_scanned: u64,
    /// Count per severity.
    pub findings: BTreeMap<String, u64>,
    /// Status per stage (`complete`, `incomplete`, `not_run`).
    pub stages: BTreeMap<String, String>,
    pub report: ReportRef,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolRef {
    pub name: String,
    pub version: String,
}

/// The scan report the attestation vouches for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportRef {
    pub media_type: String,
    pub digest: BTreeMap<String, String>,
}

impl ReportRef {
    /// A JSON report identified by its SHA-256.
    pub fn json_sha256(hex_digest: String) -> ReportRef {
        ReportRef {
            media_type: "application/json".into(),
            digest: BTreeMap::from([("sha256".into(), hex_digest)]),
        }
    }
}

/// Signs an attestation that `record` describes the model hashed into `manifest`;
/// returns the bundle JSON.
pub fn attest_scan(
    manifest: &Manifest,
    record: &ScanRecord,
    signer: &Signer,
) -> Result<String, SignError> {
    let mut predicate =
        serde_json::to_value(record).map_err(|e| SignError::Encode(e.to_string()))?;
    if let Value::Object(m) = &mut predicate {
        m.insert(
            "serialization".into(),
            serialization_to_json(&manifest.serialization),
        );
        m.insert("resources".into(), resources_to_json(&manifest.resources));
    }
    let statement = Statement::new(manifest, SCAN_PREDICATE_TYPE, predicate);
    Ok(bundle::sign(&statement.to_payload(), signer))
}

pub(crate) fn record_from_predicate(p: &Value) -> Result<ScanRecord, VerifyError> {
    ScanRecord::deserialize(p)
        .map_err(|e| VerifyError::MalformedStatement(format!("scan predicate: {e}")))
}

/// `t` as RFC 3339 in UTC with whole seconds, e.g. `2026-01-31T12:00:00Z`.
pub fn rfc3339_utc(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH + Duration::from_secs(951_782_400 + 3_661)),
            "2000-02-29T01:01:01Z"
        );
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH + Duration::from_secs(1_767_225_599)),
            "2025-12-31T23:59:59Z"
        );
    }
}
