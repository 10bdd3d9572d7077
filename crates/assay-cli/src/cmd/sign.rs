//! `assay sign`, `assay verify`, and the `--attest` step of `assay scan`.
//!
//! Exit codes of `assay verify`: 0 the model is exactly what was signed; 1 it is not,
//! or the signature does not verify (missing, malformed, wrong key, untrusted chain,
//! tampered files); 2 usage error (bad arguments, unreadable key, missing model).

use crate::args::ScanArgs;
use anyhow::{Context, Result, bail};
use assay_report::Report;
use assay_sign::{
    Expect, HashOptions, Method, PrivateKey, PublicKey, ReportRef, ScanRecord, Signed, Signer,
    SignerIdentity, ToolRef, Trust, Verification, VerifyError, VerifyOptions,
};
use clap::{ArgGroup, Args, ValueEnum};
use serde_json::{Value, json};
use std::fs;
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

/// The reference tool's default signature path (relative to the current folder).
const DEFAULT_SIGNATURE: &str = "model.sig";
/// Where `assay scan --attest` writes when no `--attestation` is given.
pub const DEFAULT_ATTESTATION: &str = "assay-attestation.json";

#[derive(Args, Debug)]
pub struct SignArgs {
    /// The model folder (or single file) to sign.
    pub model: PathBuf,
    /// PEM private key: ECDSA on P-256, P-384 or P-521 (PKCS#8 or SEC1, unencrypted).
    #[arg(long, alias = "private_key", value_name = "KEY.pem")]
    pub key: PathBuf,
    /// Where to write the signature (a Sigstore bundle). Like `model_signing`, the default
    /// is `model.sig` in the current folder; inside the model it is left out of the hash.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SIGNATURE)]
    pub signature: PathBuf,
    /// The key's certificate (PEM): sign with the `certificate` method.
    #[arg(long, alias = "signing_certificate", value_name = "CERT.pem")]
    pub signing_certificate: Option<PathBuf>,
    /// Certificates of the chain (PEM, repeatable), embedded in the signature. Without
    /// --signing-certificate, the one holding the key's public key is the signing one.
    #[arg(long, alias = "certificate_chain", value_name = "CHAIN.pem")]
    pub certificate_chain: Vec<PathBuf>,
    /// Hash files in shards of BYTES (the reference's `shards` method) instead of whole.
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    pub shard_size: Option<u64>,
    #[command(flatten)]
    pub hashing: HashingArgs,
}

/// How the folder is walked; the same options as `model_signing`.
#[derive(Args, Debug)]
pub struct HashingArgs {
    /// Leave out a path (repeatable; relative to the current folder, like the reference).
    #[arg(long = "ignore-paths", value_name = "PATH")]
    pub ignore_paths: Vec<PathBuf>,
    /// Include .git, .gitattributes, .github and .gitignore (left out by default).
    #[arg(long)]
    pub no_ignore_git_paths: bool,
    /// Hash symbolic links to files by their target's content (refused by default).
    #[arg(long, alias = "allow_symlinks")]
    pub allow_symlinks: bool,
    /// Hashing threads (default: one per core).
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("trust").required(true).args(["key", "certificate_chain"])))]
pub struct VerifyArgs {
    /// The model folder (or single file) to check.
    pub model: PathBuf,
    /// PEM public key of the signer (`key` method).
    #[arg(long, alias = "public_key", value_name = "PUB.pem")]
    pub key: Option<PathBuf>,
    /// Trusted root certificates (PEM, repeatable) for the `certificate` method; the
    /// signature's chain must lead to one of them.
    #[arg(long, alias = "certificate_chain", value_name = "ROOT.pem")]
    pub certificate_chain: Vec<PathBuf>,
    /// The signature to check [default: model.sig].
    #[arg(long, value_name = "PATH", conflicts_with = "attestation")]
    pub signature: Option<PathBuf>,
    /// Check a scan attestation (from `assay scan --attest`) instead of a signature.
    #[arg(long, value_name = "PATH")]
    pub attestation: Option<PathBuf>,
    /// With --attestation: also fail unless the attested scan verdict is `pass`.
    #[arg(long, requires = "attestation")]
    pub require_pass: bool,
    /// Check only the files the signature lists; files added since are not reported.
    #[arg(long, alias = "ignore_unsigned_files")]
    pub ignore_unsigned_files: bool,
    /// Report format.
    #[arg(long, value_enum, default_value_t = VerifyFormat::Human)]
    pub format: VerifyFormat,
    #[command(flatten)]
    pub hashing: HashingArgs,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerifyFormat {
    Human,
    Json,
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

fn load_private_key(path: &Path) -> Result<PrivateKey> {
    PrivateKey::from_pem(&read(path, "key")?)
        .with_context(|| format!("cannot use {} as a signing key", path.display()))
}

fn load_certificates(paths: &[PathBuf]) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for p in paths {
        out.extend(
            assay_sign::certificates_from_pem(&read(p, "certificates")?)
                .with_context(|| format!("cannot read certificates from {}", p.display()))?,
        );
    }
    Ok(out)
}

/// `path` relative to the model folder, `/`-separated, when it lies inside it — the
/// reference's `_resolve_ignore_paths` (both sides resolved, links followed).
pub(crate) fn relative_to_model(model: &Path, path: &Path) -> Option<String> {
    let root = fs::canonicalize(model).ok()?;
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(path)
    };
    let resolved = resolve_lenient(&abs);
    let rel = resolved.strip_prefix(&root).ok()?;
    let parts: Vec<&str> = rel
        .components()
        .map(|c| c.as_os_str().to_str())
        .collect::<Option<_>>()?;
    Some(if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    })
}

/// Canonicalizes the longest existing ancestor and appends the rest (the file to be
/// written need not exist yet), resolving `.` and `..` lexically in the rest.
fn resolve_lenient(p: &Path) -> PathBuf {
    let mut existing = p.to_path_buf();
    let mut rest: Vec<std::ffi::OsString> = Vec::new();
    loop {
        if let Ok(c) = fs::canonicalize(&existing) {
            let mut out = c;
            for r in rest.iter().rev() {
                match Path::new(r).components().next() {
                    Some(Component::ParentDir) => {
                        out.pop();
                    }
                    Some(Component::CurDir) => {}
                    _ => out.push(r),
                }
            }
            return out;
        }
        match (
            existing.file_name().map(|n| n.to_os_string()),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => return p.to_path_buf(),
        }
    }
}

impl HashingArgs {
    fn ignore_list(&self, model: &Path, also: &Path) -> Vec<String> {
        self.ignore_paths
            .iter()
            .map(PathBuf::as_path)
            .chain([also])
            .filter_map(|p| relative_to_model(model, p))
            .collect()
    }
}

fn check_model(model: &Path) -> Result<()> {
    fs::symlink_metadata(model)
        .with_context(|| format!("cannot read model {}", model.display()))?;
    Ok(())
}

fn curve_name(identity: &SignerIdentity) -> &'static str {
    match identity {
        SignerIdentity::Key { curve, .. } | SignerIdentity::Certificate { curve, .. } => {
            curve.name()
        }
    }
}

/// `assay sign`.
pub fn sign(a: SignArgs) -> Result<ExitCode> {
    check_model(&a.model)?;
    let key = load_private_key(&a.key)?;
    let signer = if a.signing_certificate.is_some() || !a.certificate_chain.is_empty() {
        let leaf = match &a.signing_certificate {
            Some(p) => Some(
                load_certificates(std::slice::from_ref(p))?
                    .into_iter()
                    .next()
                    .context("no certificate in --signing-certificate")?,
            ),
            None => None,
        };
        Signer::with_certificates(key, leaf, load_certificates(&a.certificate_chain)?)
            .context("cannot sign with these certificates")?
    } else {
        Signer::Key(key)
    };
    let opts = HashOptions {
        method: match a.shard_size {
            Some(shard_size) => Method::Shards { shard_size },
            None => Method::Files,
        },
        allow_symlinks: a.hashing.allow_symlinks,
        ignore_git_paths: !a.hashing.no_ignore_git_paths,
        ignore_paths: a.hashing.ignore_list(&a.model, &a.signature),
        only: None,
        jobs: a.hashing.jobs.unwrap_or(0),
    };
    let (manifest, bundle) = assay_sign::sign_model(&a.model, &opts, &signer)
        .with_context(|| format!("cannot sign {}", a.model.display()))?;
    fs::write(&a.signature, bundle)
        .with_context(|| format!("cannot write {}", a.signature.display()))?;
    let how = match &signer {
        Signer::Key(k) => format!("key {} ({})", k.public_key().hint(), k.curve()),
        Signer::Certificate { key, chain } => {
            format!("certificate ({}, chain of {})", key.curve(), chain.len())
        }
    };
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "signed {} ({} files, root sha256:{}) with {how}\nsignature: {}",
        a.model.display(),
        manifest.resources.len(),
        hex_of(&manifest.root_digest()),
        a.signature.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `assay verify`.
pub fn verify(a: VerifyArgs) -> Result<ExitCode> {
    check_model(&a.model)?;
    let trust = match &a.key {
        Some(p) => Trust::Key(
            PublicKey::from_pem(&read(p, "public key")?)
                .with_context(|| format!("cannot use {} as a public key", p.display()))?,
        ),
        None => Trust::Roots(load_certificates(&a.certificate_chain)?),
    };
    let (bundle_path, expect) = match (&a.attestation, &a.signature) {
        (Some(p), _) => (p.clone(), Expect::ScanAttestation),
        (None, Some(p)) => (p.clone(), Expect::ModelSignature),
        (None, None) => (PathBuf::from(DEFAULT_SIGNATURE), Expect::ModelSignature),
    };
    let what = if expect == Expect::ScanAttestation {
        "attestation"
    } else {
        "signature"
    };
    let outcome = match fs::read(&bundle_path) {
        Err(e) => Err(Failure {
            kind: "missing_signature",
            message: format!("cannot read {what} {}: {e}", bundle_path.display()),
        }),
        Ok(bundle) => {
            let opts = VerifyOptions {
                allow_symlinks: a.hashing.allow_symlinks,
                ignore_git_paths: !a.hashing.no_ignore_git_paths,
                ignore_paths: a.hashing.ignore_list(&a.model, &bundle_path),
                ignore_unsigned_files: a.ignore_unsigned_files,
                jobs: a.hashing.jobs.unwrap_or(0),
                expect,
            };
            assay_sign::verify_model(&a.model, &bundle, &trust, &opts).map_err(Failure::from)
        }
    };
    let ctx = Shown {
        model: &a.model,
        bundle: &bundle_path,
        what,
    };
    let mut out = io::stdout().lock();
    match outcome {
        Ok(v) => {
            let verdict_ok = match &v.signed {
                Signed::ScanAttestation(r) if a.require_pass => r.verdict == "pass",
                _ => true,
            };
            match a.format {
                VerifyFormat::Json => {
                    let mut j = ctx.json_verification(&v);
                    j["verified"] = json!(v.intact() && verdict_ok);
                    serde_json::to_writer_pretty(&mut out, &j)?;
                    writeln!(out)?;
                }
                VerifyFormat::Human => ctx.human_verification(&mut out, &v)?,
            }
            if v.intact() && !verdict_ok {
                out.flush()?;
                eprintln!("assay: the attested scan verdict is not `pass` (--require-pass)");
            }
            Ok(if v.intact() && verdict_ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Err(e) => {
            match a.format {
                VerifyFormat::Json => {
                    let j = json!({
                        "verified": false,
                        "model": ctx.model.display().to_string(),
                        "bundle": ctx.bundle.display().to_string(),
                        "kind": ctx.what,
                        "error": {"kind": e.kind, "message": e.message},
                    });
                    serde_json::to_writer_pretty(&mut out, &j)?;
                    writeln!(out)?;
                }
                VerifyFormat::Human => {
                    out.flush()?;
                    eprintln!(
                        "assay: verification FAILED: {} {}: {}",
                        ctx.what,
                        ctx.bundle.display(),
                        e.message
                    );
                }
            }
            Ok(ExitCode::from(1))
        }
    }
}

/// Why verification failed before any file could be compared.
struct Failure {
    kind: &'static str,
    message: String,
}

impl From<VerifyError> for Failure {
    fn from(e: VerifyError) -> Failure {
        Failure {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

struct Shown<'a> {
    model: &'a Path,
    bundle: &'a Path,
    what: &'static str,
}

impl Shown<'_> {
    fn json_verification(&self, v: &Verification) -> Value {
        let signer = match &v.signer {
            SignerIdentity::Key { hint, .. } => json!({
                "method": "key", "curve": curve_name(&v.signer), "key_hint": hint,
            }),
            SignerIdentity::Certificate {
                subject,
                issuer,
                fingerprint,
                ..
            } => json!({
                "method": "certificate", "curve": curve_name(&v.signer), "subject": subject,
                "issuer": issuer, "sha256": fingerprint,
            }),
        };
        let mut j = json!({
            "verified": v.intact(),
            "model": self.model.display().to_string(),
            "bundle": self.bundle.display().to_string(),
            "kind": self.what,
            "signer": signer,
            "root_digest": {"expected": v.expected_root, "actual": v.actual_root},
            "resources_checked": v.resources_checked,
            "modified": v.modified.iter().map(|m| json!({
                "path": m.name, "expected": m.expected, "actual": m.actual,
            })).collect::<Vec<_>>(),
            "added": v.added,
            "removed": v.removed,
        });
        if let Signed::ScanAttestation(r) = &v.signed {
            j["attestation"] = serde_json::to_value(r).unwrap_or(Value::Null);
        }
        j
    }

    fn human_verification(&self, out: &mut impl Write, v: &Verification) -> io::Result<()> {
        let who = match &v.signer {
            SignerIdentity::Key { hint, .. } => {
                format!("ECDSA {} key {hint}", curve_name(&v.signer))
            }
            SignerIdentity::Certificate {
                subject, issuer, ..
            } => format!(
                "ECDSA {} certificate '{subject}' issued by '{issuer}'",
                curve_name(&v.signer)
            ),
        };
        if v.intact() {
            writeln!(
                out,
                "verified: {} matches {} {} ({} resources, root sha256:{})",
                self.model.display(),
                self.what,
                self.bundle.display(),
                v.resources_checked,
                v.actual_root
            )?;
            writeln!(out, "signed by {who}")?;
        } else {
            writeln!(
                out,
                "verification FAILED: {} does not match {} {} (signed by {who})",
                self.model.display(),
                self.what,
                self.bundle.display()
            )?;
            for m in &v.modified {
                writeln!(out, "  modified  {}", m.name)?;
                writeln!(out, "            expected {}", m.expected)?;
                writeln!(out, "            actual   {}", m.actual)?;
            }
            for n in &v.added {
                writeln!(out, "  added     {n}")?;
            }
            for n in &v.removed {
                writeln!(out, "  removed   {n}")?;
            }
            writeln!(
                out,
                "{} modified, {} added, {} removed; root sha256 expected {} actual {}",
                v.modified.len(),
                v.added.len(),
                v.removed.len(),
                v.expected_root,
                v.actual_root
            )?;
        }
        if let Signed::ScanAttestation(r) = &v.signed {
            writeln!(
                out,
                "scan: verdict {} (fail-on {}) by {} {} at {}",
                r.verdict, r.fail_on, r.tool.name, r.tool.version, r.scanned_at
            )?;
            let counts: Vec<String> = ["critical", "high", "medium", "low", "info"]
                .iter()
                .map(|s| format!("{} {s}", r.findings.get(*s).copied().unwrap_or(0)))
                .collect();
            writeln!(out, "findings: {}", counts.join(", "))?;
            let stages: Vec<String> = r.stages.iter().map(|(k, v)| format!("{k} {v}")).collect();
            writeln!(out, "stages: {}", stages.join(", "))?;
            if let Some(d) = r.report.digest.get("sha256") {
                writeln!(out, "report: sha256:{d}")?;
            }
        }
        Ok(())
    }
}

/// The `--attest` step of `assay scan`, set up before scanning so that a bad key or
/// a bad path fails before any work is done.
pub struct ScanAttest {
    signer: Signer,
    model: PathBuf,
    path: PathBuf,
}

impl ScanAttest {
    /// `None` unless `--attest` was given.
    pub fn prepare(a: &ScanArgs) -> Result<Option<ScanAttest>> {
        if !a.attest {
            return Ok(None);
        }
        let [model] = a.paths.as_slice() else {
            bail!("--attest needs exactly one model folder or file to attest");
        };
        check_model(model)?;
        let key = a.key.as_deref().context("--attest needs --key KEY.pem")?;
        Ok(Some(ScanAttest {
            signer: Signer::Key(load_private_key(key)?),
            model: model.clone(),
            path: a
                .attestation
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_ATTESTATION)),
        }))
    }

    /// Hashes the model, checks that it still has the bytes the scan saw, and writes
    /// the signed attestation for `report`.
    pub fn write(self, report: &Report) -> Result<()> {
        let opts = HashOptions {
            // The scan reads through links (Hugging Face cache snapshots); so does the
            // attestation, and it records that it did.
            allow_symlinks: true,
            ignore_paths: relative_to_model(&self.model, &self.path)
                .into_iter()
                .collect(),
            ..Default::default()
        };
        let manifest = assay_sign::hash_model(&self.model, &opts)
            .with_context(|| format!("cannot hash {} for the attestation", self.model.display()))?;
        for r in &manifest.resources {
            let shown = display(&if r.name == "." {
                self.model.clone()
            } else {
                self.model.join(&r.name)
            });
            let scanned = report
                .files
                .iter()
                .find(|f| f.path == shown && !f.sha256.is_empty());
            if let Some(f) = scanned
                && f.sha256 != hex_of(&r.digest)
            {
                bail!(
                    "{shown} changed between the scan and the attestation; scan again before attesting"
                );
            }
        }
        let mut json_report = Vec::new();
        assay_report::render::render_json(report, &mut json_report)?;
        let s = &report.summary;
        let record = ScanRecord {
            tool: ToolRef {
                name: report.tool.name.clone(),
                version: report.tool.version.clone(),
            },
            scanned_at: assay_sign::rfc3339_utc(SystemTime::now()),
            verdict: enum_text(serde_json::to_value(s.verdict)),
            fail_on: s.fail_on.as_str().to_string(),
            files_scanned: s.files_scanned,
            bytes_scanned: s.bytes_scanned,
            findings: s
                .findings
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), *v))
                .collect(),
            stages: s
                .stages
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), enum_text(serde_json::to_value(v))))
                .collect(),
            report: ReportRef::json_sha256(assay_sign::sha256_hex(&json_report)),
        };
        let bundle = assay_sign::attest_scan(&manifest, &record, &self.signer)?;
        fs::write(&self.path, bundle)
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        eprintln!(
            "assay: attestation for {} (root sha256:{}) written to {}",
            self.model.display(),
            hex_of(&manifest.root_digest()),
            self.path.display()
        );
        Ok(())
    }
}

/// The serde name of a unit enum variant (`pass`, `not_run`, …).
fn enum_text(v: serde_json::Result<Value>) -> String {
    match v {
        Ok(Value::String(s)) => s,
        _ => String::new(),
    }
}

/// How `assay scan` shows a path (see assay-scan's walk).
pub(crate) fn display(p: &Path) -> String {
    let s = p.to_string_lossy().replace('\\', "/");
    s.strip_prefix("./").map(str::to_string).unwrap_or(s)
}
