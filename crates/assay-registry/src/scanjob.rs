//! The scan job: materialise a quarantined commit from the blob store into a private
//! working folder, run the real scanner, write the card and badge, and decide admission
//! with the tenant's policy. The server's scan loops (`--workers`) and `assay worker`
//! processes run this same function on jobs they claim from the database.

use crate::blob::{BlobReader, blob_key};
use crate::meta::{ADMITTED, Job, Outcome, REFUSED};
use crate::{Registry, now_rfc3339};
use assay_report::Report;
use assay_report::card::bind::{self, Binding};
use assay_report::card::{self, Badge, CardInput, CardRecord, render_badge, render_section};
use serde_json::json;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// Runs one job to its outcome (never panics on bad input; errors refuse the revision).
pub fn run(reg: &Registry, job: &Job) -> Outcome {
    // Per claim: processes sharing DATA may hold an old and a new claim of one job.
    let claim: String = job.claim.chars().take(16).collect();
    let work = reg
        .data
        .join("work")
        .join(format!("job-{}-{claim}", job.id));
    let _ = fs::remove_dir_all(&work);
    let out = match scan_commit(reg, job, &work) {
        Ok(o) => o,
        Err(e) => Outcome {
            status: REFUSED.into(),
            reasons: vec![format!("scan failed: {e}")],
            report: None,
            card: None,
            badge: None,
        },
    };
    let _ = fs::remove_dir_all(&work);
    out
}

fn scan_commit(reg: &Registry, job: &Job, work: &Path) -> Result<Outcome, String> {
    let tenant = reg
        .meta
        .tenant(job.tenant_id)
        .map_err(|e| e.to_string())?
        .ok_or("tenant gone")?;
    let dek = reg.tenant_key(&tenant).map_err(|e| e.to_string())?;
    let files = reg
        .meta
        .files(job.repo_id, &job.commit_id)
        .map_err(|e| e.to_string())?;
    let model = work.join("model");
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&model)
        .map_err(|e| e.to_string())?;
    for f in &files {
        let dst = model.join(&f.path);
        if let Some(p) = dst.parent() {
            fs::create_dir_all(p).map_err(|e| e.to_string())?;
        }
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&dst)
            .map_err(|e| format!("{}: {e}", f.path))?;
        let r = BlobReader::open(&*reg.blobs, blob_key(job.tenant_id, &f.sha256), &dek)
            .map_err(|e| format!("{}: {e}", f.path))?;
        let mut err = None;
        r.for_range(0, r.size, |piece| match out.write_all(&piece) {
            Ok(()) => true,
            Err(e) => {
                err = Some(e);
                false
            }
        })
        .map_err(|e| format!("{}: {e}", f.path))?;
        if let Some(e) = err {
            return Err(format!("{}: {e}", f.path));
        }
    }

    let opts = assay_scan::ScanOptions {
        hash_files: true,
        ..Default::default()
    };
    let report: Report =
        assay_scan::scan(std::slice::from_ref(&model), &opts).map_err(|e| e.to_string())?;
    let prefix = format!("{}/", model.display());

    // Card and badge, bound to the files' digests.
    let binding = Binding {
        ignored: vec![],
        readme_section: false,
        readme_listed: Some(true),
    };
    let manifest = bind::manifest(&model, &binding).map_err(|e| e.to_string())?;
    let root = hex::encode(manifest.root_digest());
    let judgement = card::judge(&report);
    let record = CardRecord {
        v: 1,
        state: judgement.state,
        root_sha256: root.clone(),
        files: bind::file_digests(&manifest),
        ignored: vec![],
        readme_section: false,
        badge: Some("badge.svg".into()),
        tool: format!("{} {}", report.tool.name, report.tool.version),
        generated_at: now_rfc3339(),
        verdict: report.summary.verdict,
        fail_on: report.summary.fail_on,
        findings: report.summary.findings.clone(),
        stages: report.summary.stages.clone(),
        attestation_key: None,
        section_sha256: None,
    };
    let card_md = render_section(&CardInput {
        report: &report,
        judgement: &judgement,
        record: &record,
        badge_link: Some("badge.svg"),
        path_prefix: &prefix,
        source: "scanned by assay serve at ingest",
        signed: None,
        attestation_note: None,
    });
    let badge = render_badge(&Badge {
        state: judgement.state,
        message: &judgement.message,
        title: &judgement.reason,
        root_sha256: &root,
    });

    // Admission by the tenant's policy (or the default one).
    let policy = match &tenant.policy {
        Some(text) => assay_policy::Policy::from_source("tenant.rego", text),
        None => assay_policy::Policy::default_policy(),
    }
    .map_err(|e| format!("policy: {e}"))?;
    let report_json = serde_json::to_string(&report).map_err(|e| e.to_string())?;
    // Paths in the stored report are relative to the model, not to the working folder.
    let report_json = report_json.replace(&prefix, "");
    let report_value: serde_json::Value =
        serde_json::from_str(&report_json).map_err(|e| e.to_string())?;
    let input = json!({
        "target": "model",
        "now": now_rfc3339(),
        "report": report_value,
        "signature": {"present": false, "verified": false},
        "attestation": {"present": false, "verified": false},
        "suppressions": [],
    });
    let decision = policy
        .evaluate(&input, None)
        .map_err(|e| format!("policy: {e}"))?;
    Ok(Outcome {
        status: if decision.allow { ADMITTED } else { REFUSED }.into(),
        reasons: decision.deny,
        report: Some(report_json),
        card: Some(card_md.replace(&prefix, "")),
        badge: Some(badge),
    })
}
