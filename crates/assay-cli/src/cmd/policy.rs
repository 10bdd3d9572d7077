//! `assay policy check`: admit or refuse a model by a Rego policy, over a scan report
//! and the status of the model's signature and scan attestation; `assay policy show`
//! prints the default policy.
//!
//! Exit codes of `check`: 0 admitted, 1 refused, 2 error (bad policy, with its
//! file:line:col; bad suppressions or data; unreadable model or report).

use crate::args::FailOn;
use crate::cmd::sign::{DEFAULT_ATTESTATION, display, relative_to_model};
use anyhow::{Context, Result, anyhow};
use assay_policy::{Decision, Policy};
use assay_report::Report;
use assay_sign::{Expect, PublicKey, Signed, SignerIdentity, Trust, VerifyOptions};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Admit or refuse a model: exit 0 admitted, 1 refused, 2 error.
    Check(Box<CheckArgs>),
    /// Print the default policy (policy/default.rego), to copy and edit.
    Show,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The model folder or file to judge.
    pub target: PathBuf,
    /// Rego policy (`package assay`, defining `deny`) [default: the built-in policy].
    #[arg(long, value_name = "POLICY.rego")]
    pub policy: Option<PathBuf>,
    /// Judge this JSON report (`assay scan --format json`) instead of scanning.
    #[arg(long, value_name = "REPORT.json")]
    pub report: Option<PathBuf>,
    /// Suppressions (TOML: [[suppression]] with id, rule, reason, expires, optional path).
    #[arg(long, value_name = "FILE.toml")]
    pub suppressions: Option<PathBuf>,
    /// JSON merged into the policy's `data` (the default policy reads `data.config`).
    #[arg(long, value_name = "FILE.json")]
    pub data: Option<PathBuf>,
    /// Public key (PEM) trusted to sign the model or its attestation (repeatable).
    #[arg(long, value_name = "PUB.pem")]
    pub key: Vec<PathBuf>,
    /// Model signature to check [default: TARGET/model.sig when present].
    #[arg(long, value_name = "PATH")]
    pub signature: Option<PathBuf>,
    /// Scan attestation to check [default: TARGET/assay-attestation.json when present].
    #[arg(long, value_name = "PATH")]
    pub attestation: Option<PathBuf>,
    /// Severity at which the scan report's verdict fails (when scanning).
    #[arg(long, value_enum, default_value_t = FailOn::High)]
    pub fail_on: FailOn,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PolicyFormat::Human)]
    pub format: PolicyFormat,
    /// Files scanned in parallel (default: one per core).
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyFormat {
    Human,
    Json,
}

pub fn run(c: PolicyCommand) -> Result<ExitCode> {
    match c {
        PolicyCommand::Show => {
            std::io::stdout()
                .lock()
                .write_all(assay_policy::DEFAULT_POLICY.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Check(a) => check(*a),
    }
}

fn check(a: CheckArgs) -> Result<ExitCode> {
    fs::symlink_metadata(&a.target)
        .with_context(|| format!("cannot read model {}", a.target.display()))?;
    // Policy, data and suppressions first: their errors need no scan.
    let policy = match &a.policy {
        Some(p) => Policy::load(p)?,
        None => Policy::default_policy()?,
    };
    let data = match &a.data {
        Some(p) => {
            let text = fs::read(p).with_context(|| format!("cannot read data {}", p.display()))?;
            let v: Value = serde_json::from_slice(&text)
                .with_context(|| format!("data {} is not JSON", p.display()))?;
            if !v.is_object() {
                return Err(anyhow!("data {} must be a JSON object", p.display()));
            }
            Some(v)
        }
        None => None,
    };
    let suppressions = match &a.suppressions {
        Some(p) => {
            let text = fs::read_to_string(p)
                .with_context(|| format!("cannot read suppressions {}", p.display()))?;
            assay_policy::parse_suppressions(&display(p), &text).map_err(anyhow::Error::msg)?
        }
        None => Vec::new(),
    };
    let keys: Vec<(PathBuf, PublicKey)> = a
        .key
        .iter()
        .map(|p| {
            let pem = fs::read(p).with_context(|| format!("cannot read key {}", p.display()))?;
            let k = PublicKey::from_pem(&pem)
                .with_context(|| format!("cannot use {} as a public key", p.display()))?;
            Ok((p.clone(), k))
        })
        .collect::<Result<_>>()?;

    let report: Report = match &a.report {
        Some(p) => {
            let text =
                fs::read(p).with_context(|| format!("cannot read report {}", p.display()))?;
            serde_json::from_slice(&text).with_context(|| {
                format!(
                    "{} is not an Assay JSON report (assay scan --format json)",
                    p.display()
                )
            })?
        }
        None => assay_scan::scan(
            std::slice::from_ref(&a.target),
            &assay_scan::ScanOptions {
                jobs: a.jobs.unwrap_or(0),
                fail_on: a.fail_on.severity(),
                hash_files: true,
                ..Default::default()
            },
        )?,
    };
    let sig_path = a.signature.clone().or_else(|| {
        let p = a.target.join("model.sig");
        (a.target.is_dir() && p.is_file()).then_some(p)
    });
    let att_path = a.attestation.clone().or_else(|| {
        let p = a.target.join(DEFAULT_ATTESTATION);
        (a.target.is_dir() && p.is_file()).then_some(p)
    });
    let mut skip: Vec<&Path> = Vec::new();
    skip.extend(sig_path.as_deref());
    skip.extend(att_path.as_deref());
    let signature = bundle_status(
        &a.target,
        sig_path.as_deref(),
        &keys,
        Expect::ModelSignature,
        &skip,
    );
    let attestation = bundle_status(
        &a.target,
        att_path.as_deref(),
        &keys,
        Expect::ScanAttestation,
        &skip,
    );
    let input = json!({
        "target": display(&a.target),
        "now": assay_sign::rfc3339_utc(crate::cmd::card::now()),
        "report": serde_json::to_value(&report)?,
        "signature": signature,
        "attestation": attestation,
        "suppressions": serde_json::to_value(&suppressions)?,
    });
    let decision = policy.evaluate(&input, data.as_ref())?;
    let mut out = std::io::stdout().lock();
    match a.format {
        PolicyFormat::Json => {
            let j = json!({
                "target": display(&a.target),
                "policy": policy.name,
                "decision": if decision.allow { "allow" } else { "deny" },
                "allow": decision.allow,
                "deny": decision.deny,
                "warn": decision.warn,
                "suppressed": decision.suppressed,
                "signature": input["signature"],
                "attestation": input["attestation"],
            });
            serde_json::to_writer_pretty(&mut out, &j)?;
            writeln!(out)?;
        }
        PolicyFormat::Human => human(&mut out, &a.target, &policy.name, &decision)?,
    }
    Ok(if decision.allow {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn human(out: &mut impl Write, target: &Path, policy: &str, d: &Decision) -> std::io::Result<()> {
    writeln!(
        out,
        "{}: {} by policy {policy}",
        if d.allow { "ALLOW" } else { "DENY" },
        target.display()
    )?;
    for r in &d.deny {
        writeln!(out, "  deny: {r}")?;
    }
    for w in &d.warn {
        writeln!(out, "  warn: {w}")?;
    }
    for s in &d.suppressed {
        let g = |k: &str| s.get(k).and_then(Value::as_str).unwrap_or("?").to_string();
        writeln!(
            out,
            "  suppressed: {} {} in {} by {}",
            g("severity"),
            g("rule"),
            g("path"),
            g("suppression")
        )?;
    }
    if d.allow && d.deny.is_empty() {
        writeln!(out, "  no reason to refuse")?;
    }
    Ok(())
}

/// When the only differences from what was signed are a model card Assay wrote since
/// (the card section of README.md, whose text outside the section is exactly what was
/// signed; added `.md` files holding a card record; added `.svg` Assay badges), returns
/// what was set aside. Anything else (a modified or removed file, an added file of any
/// other kind) returns `None`. Cards and badges are Markdown and SVG that no model
/// loader reads, and the policy sees the list (`card_set_aside`).
fn card_explains(target: &Path, v: &assay_sign::Verification) -> Option<Vec<String>> {
    use assay_report::card::{CardRecord, parse_badge, readme};
    if !v.removed.is_empty() || !target.is_dir() {
        return None;
    }
    let mut set_aside = Vec::new();
    let readme_text = || fs::read_to_string(target.join("README.md")).ok();
    for m in &v.modified {
        if m.name != "README.md" {
            return None;
        }
        let text = readme_text()?;
        readme::find(&text).ok()??;
        let without = readme::strip(&text).ok()?;
        let expected = m.expected.strip_prefix("sha256:")?;
        if assay_sign::sha256_hex(without.as_bytes()) != expected {
            return None;
        }
        set_aside.push("README.md (card section)".to_string());
    }
    for name in &v.added {
        let text = fs::read_to_string(target.join(name)).ok()?;
        let is_card = if name == "README.md" {
            readme::find(&text).ok()?.is_some() && readme::strip(&text).ok()?.is_empty()
        } else if name.ends_with(".md") {
            CardRecord::find(&text).is_ok()
        } else if name.ends_with(".svg") {
            parse_badge(&text).is_some()
        } else {
            false
        };
        if !is_card {
            return None;
        }
        set_aside.push(name.clone());
    }
    Some(set_aside)
}

/// Checks a signature or attestation with each trusted key; the input's view of it.
fn bundle_status(
    target: &Path,
    path: Option<&Path>,
    keys: &[(PathBuf, PublicKey)],
    expect: Expect,
    skip: &[&Path],
) -> Value {
    let Some(path) = path else {
        return json!({"present": false, "verified": false});
    };
    let shown = display(path);
    let Ok(bundle) = fs::read(path) else {
        return json!({"present": false, "verified": false, "path": shown,
                      "error": format!("cannot read {shown}")});
    };
    if keys.is_empty() {
        return json!({"present": true, "verified": false, "path": shown,
                      "error": "no trusted key given (--key)"});
    }
    let opts = VerifyOptions {
        ignore_paths: skip
            .iter()
            .filter_map(|p| relative_to_model(target, p))
            .collect(),
        expect,
        ..Default::default()
    };
    let mut last_error = String::new();
    for (_, key) in keys {
        match assay_sign::verify_model(target, &bundle, &Trust::Key(key.clone()), &opts) {
            Ok(v) => {
                let signer = match &v.signer {
                    SignerIdentity::Key { curve, hint } => {
                        json!({"method": "key", "key_hint": hint, "curve": curve.name()})
                    }
                    SignerIdentity::Certificate {
                        curve,
                        subject,
                        fingerprint,
                        ..
                    } => json!({"method": "certificate", "key_hint": fingerprint,
                                "subject": subject, "curve": curve.name()}),
                };
                let card = (!v.intact()).then(|| card_explains(target, &v)).flatten();
                let mut j = json!({
                    "present": true,
                    "verified": v.intact() || card.is_some(),
                    "path": shown,
                    "signer": signer,
                    "root_sha256": v.actual_root,
                    "modified": v.modified.iter().map(|m| m.name.clone()).collect::<Vec<_>>(),
                    "added": v.added,
                    "removed": v.removed,
                });
                if let Some(set_aside) = card {
                    j["card_set_aside"] = json!(set_aside);
                } else if !v.intact() {
                    j["error"] = json!(format!(
                        "the files changed since signing ({} modified, {} added, {} removed)",
                        v.modified.len(),
                        v.added.len(),
                        v.removed.len()
                    ));
                }
                if let Signed::ScanAttestation(r) = &v.signed {
                    j["scan"] = serde_json::to_value(r).unwrap_or(Value::Null);
                }
                return j;
            }
            Err(e) => last_error = e.to_string(),
        }
    }
    json!({"present": true, "verified": false, "path": shown, "error": last_error})
}
