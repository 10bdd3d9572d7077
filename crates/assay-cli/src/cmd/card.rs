//! `assay card`: write a model card section and a scan badge bound to the model's bytes,
//! or check (`--check`) that the files still match the card.
//!
//! Exit codes: 0 card written, or `--check` passed; 1 `--check` found files that no
//! longer match the card (or a badge that belongs to other bytes); 2 usage error,
//! unreadable model or report, or a report that does not describe these bytes.

use crate::args::FailOn;
use crate::cmd::sign::{display, relative_to_model};
use anyhow::{Context, Result, bail};
use assay_report::Report;
use assay_report::card::bind::{self, Binding, README};
use assay_report::card::{
    self, Badge, CardInput, CardRecord, SignedBy, parse_badge, readme, render_badge, render_section,
};
use assay_sign::{PublicKey, SCAN_PREDICATE_TYPE, ScanRecord, SignerIdentity, Trust};
use clap::Args;
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Default badge file name, next to the card.
pub const DEFAULT_BADGE: &str = "assay-badge.svg";
/// Where `--output` cards are looked for by `--check` when none is named.
pub const DEFAULT_CARD_FILE: &str = "MODEL_CARD.md";

#[derive(Args, Debug)]
pub struct CardArgs {
    /// The model folder (a Hugging Face style repository) or file.
    pub model: PathBuf,
    /// Check that the model's files still match its card and badge instead of writing.
    #[arg(long)]
    pub check: bool,
    /// Use this JSON report (`assay scan --format json`) instead of scanning. Its file
    /// digests must match the files as they are now.
    #[arg(long, value_name = "REPORT.json")]
    pub report: Option<PathBuf>,
    /// Write the card as a section of MODEL/README.md between markers (the default).
    #[arg(long, conflicts_with = "output")]
    pub readme: bool,
    /// Write the card to this file instead of the README (e.g. MODEL/MODEL_CARD.md).
    /// With --check: the card to check.
    #[arg(long, short = 'o', value_name = "MODEL_CARD.md")]
    pub output: Option<PathBuf>,
    /// Where to write the SVG badge [default: assay-badge.svg next to the card].
    #[arg(long, value_name = "PATH.svg")]
    pub badge: Option<PathBuf>,
    /// Lowest severity that makes the scan fail (when scanning).
    #[arg(long, value_enum, default_value_t = FailOn::High)]
    pub fail_on: FailOn,
    /// Signed scan attestation to refer to [default: MODEL/assay-attestation.json if
    /// present].
    #[arg(long, value_name = "PATH")]
    pub attestation: Option<PathBuf>,
    /// Public key (PEM) that must have signed the attestation for the card to call it
    /// signed.
    #[arg(long, value_name = "PUB.pem")]
    pub key: Option<PathBuf>,
    /// Leave a path out of the digest (repeatable), e.g. a signature kept in the model.
    #[arg(long = "ignore-paths", value_name = "PATH")]
    pub ignore_paths: Vec<PathBuf>,
    /// Files scanned and hashed in parallel (default: one per core).
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
}

pub fn run(a: CardArgs) -> Result<ExitCode> {
    fs::symlink_metadata(&a.model)
        .with_context(|| format!("cannot read model {}", a.model.display()))?;
    if a.check { check(&a) } else { write(&a) }
}

/// The time to record: `SOURCE_DATE_EPOCH` when set (reproducible output), else now.
pub(crate) fn now() -> SystemTime {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
        .unwrap_or_else(SystemTime::now)
}

/// Where the card goes: the model's README (section) or a file of its own.
struct Place {
    card_file: PathBuf,
    readme_section: bool,
    badge: PathBuf,
}

fn place(a: &CardArgs) -> Result<Place> {
    let (card_file, readme_section) = match &a.output {
        Some(p) => (p.clone(), false),
        None => {
            if !a.model.is_dir() {
                bail!(
                    "{} is a file; a README section needs a model folder (use --output MODEL_CARD.md)",
                    a.model.display()
                );
            }
            (a.model.join(README), true)
        }
    };
    let badge = a.badge.clone().unwrap_or_else(|| {
        card_file
            .parent()
            .unwrap_or(Path::new("."))
            .join(DEFAULT_BADGE)
    });
    Ok(Place {
        card_file,
        readme_section,
        badge,
    })
}

/// A path relative to the model when it lies inside it (`.` excluded).
fn inside(model: &Path, p: &Path) -> Option<String> {
    relative_to_model(model, p).filter(|r| r != ".")
}

fn write(a: &CardArgs) -> Result<ExitCode> {
    let place = place(a)?;
    let model = &a.model;
    let attestation = match &a.attestation {
        Some(p) => Some(p.clone()),
        None => {
            let p = model.join(crate::cmd::sign::DEFAULT_ATTESTATION);
            (model.is_dir() && p.is_file()).then_some(p)
        }
    };
    let mut ignored: Vec<String> = Vec::new();
    if !place.readme_section {
        ignored.extend(inside(model, &place.card_file));
    }
    ignored.extend(inside(model, &place.badge));
    if let Some(p) = &attestation {
        ignored.extend(inside(model, p));
    }
    ignored.extend(a.ignore_paths.iter().filter_map(|p| inside(model, p)));
    ignored.sort();
    ignored.dedup();

    // Whether the README belongs in the digest even when it holds nothing but the card.
    let existing = if place.readme_section {
        match fs::read(&place.card_file) {
            Ok(b) => Some(
                String::from_utf8(b)
                    .with_context(|| format!("{} is not UTF-8", place.card_file.display()))?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).context(format!("cannot read {}", place.card_file.display())),
        }
    } else {
        None
    };
    let readme_listed = existing.as_deref().map(|text| match readme::find(text) {
        Ok(Some(_)) => CardRecord::find(text)
            .map(|r| r.files.contains_key(README))
            .unwrap_or(true),
        _ => true,
    });
    let binding = Binding {
        ignored: ignored.clone(),
        readme_section: place.readme_section,
        readme_listed: Some(readme_listed.unwrap_or(false)),
    };

    let fail_on = a.fail_on.severity();
    let digest = || {
        bind::manifest(model, &binding).with_context(|| format!("cannot hash {}", model.display()))
    };
    let (report, source, manifest) = match &a.report {
        Some(p) => {
            let text =
                fs::read(p).with_context(|| format!("cannot read report {}", p.display()))?;
            let r: Report = serde_json::from_slice(&text).with_context(|| {
                format!(
                    "{} is not an Assay JSON report (assay scan --format json)",
                    p.display()
                )
            })?;
            (r, format!("report {}", p.display()), digest()?)
        }
        None => {
            let opts = assay_scan::ScanOptions {
                jobs: a.jobs.unwrap_or(0),
                fail_on,
                hash_files: true,
                ..Default::default()
            };
            // The digest is computed while the scan runs (both hash every file, each on
            // its own core); the two must agree, so bytes that change in between are
            // caught below rather than carded.
            let (report, manifest) = std::thread::scope(|s| {
                let hashing = s.spawn(digest);
                let report = assay_scan::scan(std::slice::from_ref(model), &opts);
                let manifest = hashing
                    .join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("hashing thread failed")));
                (report, manifest)
            });
            (report?, "scanned by assay card".to_string(), manifest?)
        }
    };
    let root = hex::encode(manifest.root_digest());
    let files = bind::file_digests(&manifest);
    let prefix = report_prefix(&report, model, &files);
    check_report_covers(&report, &prefix, &files, model, place.readme_section)?;

    let judgement = card::judge(&report);
    let record_files = files;
    let (signed, attestation_note) = match &attestation {
        Some(p) => {
            // The README as it is now (with a card section), which an attestation made
            // after an earlier card covers.
            let readme_now = place
                .readme_section
                .then(|| fs::read(model.join(README)).ok())
                .flatten()
                .map(|b| assay_sign::sha256_hex(&b));
            attestation_status(
                p,
                a.key.as_deref(),
                &root,
                (&record_files, &ignored),
                readme_now.as_deref(),
            )
        }
        None => (None, None),
    };
    let badge_rel = inside(model, &place.badge);
    let record = CardRecord {
        v: 1,
        state: judgement.state,
        root_sha256: root.clone(),
        files: record_files,
        ignored,
        readme_section: place.readme_section,
        badge: badge_rel,
        tool: format!("{} {}", report.tool.name, report.tool.version),
        generated_at: assay_sign::rfc3339_utc(now()),
        verdict: report.summary.verdict,
        fail_on: report.summary.fail_on,
        findings: report.summary.findings.clone(),
        stages: report.summary.stages.clone(),
        attestation_key: signed.as_ref().map(|s| s.key_hint.clone()),
        section_sha256: None,
    };
    let badge_link = relative_link(&place.card_file, &place.badge);
    let section = render_section(&CardInput {
        report: &report,
        judgement: &judgement,
        record: &record,
        badge_link: Some(&badge_link),
        path_prefix: &prefix,
        source: &source,
        signed: signed.as_ref(),
        attestation_note: attestation_note.as_deref(),
    });
    let svg = render_badge(&Badge {
        state: judgement.state,
        message: &judgement.message,
        title: &judgement.reason,
        root_sha256: &root,
    });
    let card_text = if place.readme_section {
        readme::insert(existing.as_deref().unwrap_or(""), &section)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("cannot update {}", place.card_file.display()))?
    } else {
        section
    };
    fs::write(&place.card_file, card_text)
        .with_context(|| format!("cannot write {}", place.card_file.display()))?;
    fs::write(&place.badge, svg)
        .with_context(|| format!("cannot write {}", place.badge.display()))?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "card: {} ({}) for {} (root sha256:{root}, {} files)",
        judgement.message,
        judgement.reason,
        model.display(),
        record.files.len()
    )?;
    writeln!(
        out,
        "written: {}{}, badge {}",
        place.card_file.display(),
        if place.readme_section {
            " (section)"
        } else {
            ""
        },
        place.badge.display()
    )?;
    if let Some(s) = &signed {
        writeln!(out, "attestation {} verified: {}", s.path, s.signer)?;
    } else if let Some(n) = &attestation_note {
        writeln!(out, "attestation: {n}")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The badge as a link from the card: relative when both are in one folder tree.
fn relative_link(card_file: &Path, badge: &Path) -> String {
    let dir = card_file.parent().unwrap_or(Path::new("."));
    match (fs::canonicalize(dir), badge.parent().map(fs::canonicalize)) {
        (Ok(d), Some(Ok(bdir))) => {
            let name = badge.file_name().map(|n| n.to_string_lossy().to_string());
            if let (Ok(rel), Some(name)) = (bdir.strip_prefix(&d), name) {
                let mut parts: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().to_string())
                    .collect();
                parts.push(name);
                return parts.join("/");
            }
            display(badge)
        }
        _ => display(badge),
    }
}

/// The prefix of the report's paths that stands for the model folder: the one under
/// which most of the model's files are found.
fn report_prefix(report: &Report, model: &Path, files: &BTreeMap<String, String>) -> String {
    let shown = display(model);
    let mut candidates: Vec<String> = vec![format!("{shown}/"), String::new()];
    if let Some(first) = files.keys().next() {
        for f in &report.files {
            if let Some(p) = f.path.strip_suffix(first.as_str())
                && (p.is_empty() || p.ends_with('/'))
            {
                candidates.push(p.to_string());
            }
        }
    }
    let mut best = (0, String::new());
    for c in candidates {
        let hits = files
            .keys()
            .filter(|n| {
                let full = if n.as_str() == "." {
                    shown.clone()
                } else {
                    format!("{c}{n}")
                };
                report
                    .files
                    .iter()
                    .any(|f| f.path == full || (n.as_str() == "." && f.path == c))
            })
            .count();
        if hits > best.0 {
            best = (hits, c);
        }
    }
    best.1
}

/// Refuses a report that does not describe these bytes: every file in the digest must
/// be in the report with the same SHA-256 (the README, when it carries the card, with
/// or without the section).
fn check_report_covers(
    report: &Report,
    prefix: &str,
    files: &BTreeMap<String, String>,
    model: &Path,
    readme_section: bool,
) -> Result<()> {
    let mut problems = Vec::new();
    for (name, digest) in files {
        let full = if name == "." {
            display(model)
        } else {
            format!("{prefix}{name}")
        };
        let Some(entry) = report.files.iter().find(|f| f.path == full) else {
            problems.push(format!(
                "{name} is not in the report (added after the scan?)"
            ));
            continue;
        };
        if entry.sha256.is_empty() {
            problems.push(format!(
                "the report has no digest for {name} (use --format json)"
            ));
            continue;
        }
        let mut ok = entry.sha256 == *digest;
        if !ok && readme_section && name == README {
            // The README as scanned may already have held an earlier card section.
            let now = fs::read(model.join(README)).unwrap_or_default();
            ok = entry.sha256 == assay_sign::sha256_hex(&now);
        }
        if !ok {
            problems.push(format!("{name} changed since the report was made"));
        }
    }
    if !problems.is_empty() {
        bail!(
            "the report does not describe {} as it is now; scan again:\n  {}",
            model.display(),
            problems.join("\n  ")
        );
    }
    Ok(())
}

/// Checks an attestation: signed by `key`, a scan attestation, over exactly these
/// files (`root`; or file by file, the README allowed to hold an earlier card section).
fn attestation_status(
    path: &Path,
    key: Option<&Path>,
    root: &str,
    files: (&BTreeMap<String, String>, &[String]),
    readme_now: Option<&str>,
) -> (Option<SignedBy>, Option<String>) {
    let shown = display(path);
    let Ok(bundle) = fs::read(path) else {
        return (None, Some(format!("{shown} cannot be read")));
    };
    let Some(key_path) = key else {
        return (
            None,
            Some(format!(
                "{shown} found but not verified (no --key given); not claimed as signed"
            )),
        );
    };
    let key = match fs::read(key_path)
        .map_err(|e| e.to_string())
        .and_then(|pem| PublicKey::from_pem(&pem).map_err(|e| e.to_string()))
    {
        Ok(k) => k,
        Err(e) => {
            return (
                None,
                Some(format!("cannot use {}: {e}", key_path.display())),
            );
        }
    };
    let (statement, signer) = match assay_sign::open_statement(&bundle, &Trust::Key(key)) {
        Ok(x) => x,
        Err(e) => return (None, Some(format!("{shown} does not verify: {e}"))),
    };
    if statement.predicate_type != SCAN_PREDICATE_TYPE {
        return (None, Some(format!("{shown} is not a scan attestation")));
    }
    let subject = statement
        .subject
        .first()
        .and_then(|s| s.digest.get("sha256"))
        .cloned()
        .unwrap_or_default();
    if subject != root && !same_files(&statement.predicate, &subject, files.0, files.1, readme_now)
    {
        return (
            None,
            Some(format!(
                "{shown} is signed but attests other bytes (sha256:{subject}); not claimed"
            )),
        );
    }
    let rec: Option<ScanRecord> = serde::Deserialize::deserialize(&statement.predicate).ok();
    let (hint, who) = match &signer {
        SignerIdentity::Key { curve, hint } => {
            (hint.clone(), format!("ECDSA {} key {hint}", curve.name()))
        }
        SignerIdentity::Certificate {
            curve,
            subject,
            fingerprint,
            ..
        } => (
            fingerprint.clone(),
            format!("ECDSA {} certificate '{subject}'", curve.name()),
        ),
    };
    (
        Some(SignedBy {
            path: shown,
            signer: who,
            key_hint: hint,
            verdict: rec.as_ref().map(|r| r.verdict.clone()).unwrap_or_default(),
            scanned_at: rec.map(|r| r.scanned_at).unwrap_or_default(),
        }),
        None,
    )
}

/// Whether an attestation's resources are `files`, except that the README may be the
/// one now on disk (holding an earlier card section) and the card's own files (the
/// badge, `ignored`) may be listed too. The resources must hash to the signed subject.
fn same_files(
    predicate: &serde_json::Value,
    subject: &str,
    files: &BTreeMap<String, String>,
    ignored: &[String],
    readme_now: Option<&str>,
) -> bool {
    let Some(list) = predicate.get("resources").and_then(|r| r.as_array()) else {
        return false;
    };
    let mut attested = BTreeMap::new();
    let mut resources = Vec::new();
    for r in list {
        let (Some(name), Some(alg), Some(digest)) = (
            r.get("name").and_then(|v| v.as_str()),
            r.get("algorithm").and_then(|v| v.as_str()),
            r.get("digest").and_then(|v| v.as_str()),
        ) else {
            return false;
        };
        let Ok(raw) = hex::decode(digest) else {
            return false;
        };
        if alg != "sha256" {
            return false;
        }
        attested.insert(name.to_string(), digest.to_string());
        resources.push(assay_sign::Resource {
            name: name.to_string(),
            algorithm: alg.to_string(),
            digest: raw,
        });
    }
    let listed = assay_sign::Manifest {
        model_name: String::new(),
        serialization: assay_sign::Serialization {
            method: assay_sign::Method::Files,
            hash_type: "sha256".into(),
            allow_symlinks: true,
            ignore_paths: Vec::new(),
        },
        resources,
    };
    if hex::encode(listed.root_digest()) != subject {
        return false;
    }
    attested.retain(|name, _| !ignored.iter().any(|i| i == name));
    if attested.len() != files.len() {
        return false;
    }
    files.iter().all(|(name, digest)| match attested.get(name) {
        Some(d) if d == digest => true,
        Some(d) => name == README && readme_now == Some(d.as_str()),
        None => false,
    })
}

fn check(a: &CardArgs) -> Result<ExitCode> {
    let model = &a.model;
    let card_file = match &a.output {
        Some(p) => p.clone(),
        None => {
            let readme = model.join(README);
            let text = fs::read_to_string(&readme).unwrap_or_default();
            if matches!(readme::find(&text), Ok(Some(_))) {
                readme
            } else {
                model.join(DEFAULT_CARD_FILE)
            }
        }
    };
    if fs::metadata(&card_file).is_ok_and(|m| m.len() > bind::MAX_README_BYTES) {
        bail!(
            "{} is larger than {} bytes; not a card Assay wrote",
            card_file.display(),
            bind::MAX_README_BYTES
        );
    }
    let text = fs::read_to_string(&card_file).with_context(|| {
        format!(
            "no card found: {} (write one with `assay card {}`)",
            card_file.display(),
            model.display()
        )
    })?;
    let record = CardRecord::find(&text)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("cannot read the card in {}", card_file.display()))?;
    let binding = Binding {
        ignored: record.ignored.clone(),
        readme_section: record.readme_section,
        readme_listed: Some(record.files.contains_key(README)),
    };
    let mut problems: Vec<String> = Vec::new();
    let manifest = match bind::manifest(model, &binding) {
        Ok(m) => Some(m),
        Err(e) => {
            problems.push(format!("cannot hash the model: {e}"));
            None
        }
    };
    let root = manifest
        .as_ref()
        .map(|m| hex::encode(m.root_digest()))
        .unwrap_or_default();
    if let Some(m) = &manifest
        && root != record.root_sha256
    {
        let d = bind::drift(&record.files, &bind::file_digests(m));
        for n in &d.modified {
            problems.push(format!("modified  {n}"));
        }
        for n in &d.added {
            problems.push(format!("added     {n}"));
        }
        for n in &d.removed {
            problems.push(format!("removed   {n}"));
        }
        if d.is_empty() {
            problems
                .push("the files differ from the card (the card's file list was edited)".into());
        }
    }
    if let Err(e) = card::check_section(&text, &record) {
        problems.push(e);
    }
    let badge = a
        .badge
        .clone()
        .or_else(|| record.badge.as_ref().map(|b| model.join(b)));
    if let Some(b) = &badge {
        match fs::read_to_string(b).ok().as_deref().and_then(parse_badge) {
            None => problems.push(format!(
                "badge {} is missing or not an Assay badge",
                b.display()
            )),
            Some((state, badge_root)) => {
                if badge_root != record.root_sha256 {
                    problems.push(format!(
                        "badge {} belongs to other bytes (sha256:{badge_root})",
                        b.display()
                    ));
                }
                if state != record.state {
                    problems.push(format!(
                        "badge {} says {} but the card says {}",
                        b.display(),
                        state.as_str(),
                        record.state.as_str()
                    ));
                }
            }
        }
    }
    let mut out = std::io::stdout().lock();
    if problems.is_empty() {
        writeln!(
            out,
            "card check passed: {} matches {} (scan {}, root sha256:{root}, {} files)",
            model.display(),
            card_file.display(),
            record.state.as_str(),
            record.files.len()
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "card check FAILED: {} no longer matches {} (card root sha256:{}, files now sha256:{root})",
        model.display(),
        card_file.display(),
        record.root_sha256
    )?;
    for p in &problems {
        writeln!(out, "  {p}")?;
    }
    writeln!(
        out,
        "scan again and rewrite the card: assay card {}",
        model.display()
    )?;
    Ok(ExitCode::from(1))
}
