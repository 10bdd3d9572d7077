//! Verifying a model against a signature or a scan attestation, with a precise account
//! of what changed.
//!
//! As in the reference: the bundle's signature is checked first, then the statement's
//! own consistency (its resources must hash to its subject), then the model is hashed
//! with the serialization the signature records (method, shard size; the files it
//! ignored are ignored again) and the two manifests are compared as sets, so the order
//! of resources in the bundle does not matter. Symbolic links are followed when either
//! the verifier allows them or the signer did (the signature is authenticated by then).

use crate::attest::{self, SCAN_PREDICATE_TYPE, ScanRecord};
use crate::bundle::{self, SignerIdentity, Trust};
use crate::error::VerifyError;
use crate::hashing::{HashOptions, hash_model};
use crate::manifest::{Manifest, compare_names};
use crate::statement::{
    MODEL_SIGNING_PREDICATE, MODEL_SIGNING_PREDICATE_V0_2, Statement, manifest_from_statement,
};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Which kind of statement the caller expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expect {
    /// A model signature or a scan attestation.
    #[default]
    Any,
    ModelSignature,
    ScanAttestation,
}

/// The verifier's side of the hashing configuration.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    pub allow_symlinks: bool,
    pub ignore_git_paths: bool,
    /// Paths relative to the model to leave out (e.g. the signature file itself).
    pub ignore_paths: Vec<String>,
    /// Check only the files the signature lists; new files are not reported.
    pub ignore_unsigned_files: bool,
    pub jobs: usize,
    pub expect: Expect,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            allow_symlinks: false,
            ignore_git_paths: true,
            ignore_paths: Vec::new(),
            ignore_unsigned_files: false,
            jobs: 0,
            expect: Expect::Any,
        }
    }
}

/// What was signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signed {
    ModelSignature,
    ScanAttestation(Box<ScanRecord>),
}

/// A file whose content differs from what was signed. Digests are `algorithm:hex`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Modified {
    pub name: String,
    pub expected: String,
    pub actual: String,
}

/// The outcome of checking a model against an authentic signature.
#[derive(Debug, Clone)]
pub struct Verification {
    pub signer: SignerIdentity,
    pub signed: Signed,
    /// The manifest the signature holds.
    pub expected: Manifest,
    /// Hex root digests: the signed subject, and the model as it is now.
    pub expected_root: String,
    pub actual_root: String,
    pub resources_checked: usize,
    pub modified: Vec<Modified>,
    /// Present now, not signed.
    pub added: Vec<String>,
    /// Signed, missing now.
    pub removed: Vec<String>,
}

impl Verification {
    /// True when the model is exactly what was signed.
    pub fn intact(&self) -> bool {
        self.modified.is_empty() && self.added.is_empty() && self.removed.is_empty()
    }
}

/// Checks a bundle's signature and returns its statement (no model is read).
pub fn open_statement(
    bundle_json: &[u8],
    trust: &Trust,
) -> Result<(Statement, SignerIdentity), VerifyError> {
    let (payload, signer) = bundle::open(bundle_json, trust)?;
    Ok((Statement::parse(&payload)?, signer))
}

/// Verifies the model at `model` against the bundle.
pub fn verify_model(
    model: &Path,
    bundle_json: &[u8],
    trust: &Trust,
    opts: &VerifyOptions,
) -> Result<Verification, VerifyError> {
    let (statement, signer) = open_statement(bundle_json, trust)?;
    let signed = match statement.predicate_type.as_str() {
        MODEL_SIGNING_PREDICATE if opts.expect != Expect::ScanAttestation => Signed::ModelSignature,
        SCAN_PREDICATE_TYPE if opts.expect != Expect::ModelSignature => Signed::ScanAttestation(
            Box::new(attest::record_from_predicate(&statement.predicate)?),
        ),
        MODEL_SIGNING_PREDICATE_V0_2 => {
            return Err(VerifyError::UnsupportedSerialization(
                "this is a model_signing v0.2 signature (predicate Digests/v0.1); re-sign it with model_signing 1.x or Assay".into(),
            ));
        }
        other => {
            return Err(VerifyError::PredicateType {
                found: other.to_string(),
                expected: match opts.expect {
                    Expect::ScanAttestation => SCAN_PREDICATE_TYPE.to_string(),
                    Expect::ModelSignature => MODEL_SIGNING_PREDICATE.to_string(),
                    Expect::Any => format!("{MODEL_SIGNING_PREDICATE} or {SCAN_PREDICATE_TYPE}"),
                },
            });
        }
    };
    let expected = manifest_from_statement(&statement)?;
    let sharded = !matches!(
        expected.serialization.method,
        crate::manifest::Method::Files
    );

    let mut expected_map: HashMap<&str, &crate::manifest::Resource> = HashMap::new();
    for r in &expected.resources {
        if expected_map.insert(r.name.as_str(), r).is_some() {
            return Err(VerifyError::MalformedStatement(format!(
                "resource {:?} is listed twice",
                r.name
            )));
        }
    }

    let mut ignore_paths = opts.ignore_paths.clone();
    ignore_paths.extend(expected.serialization.ignore_paths.iter().cloned());
    let only = opts.ignore_unsigned_files.then(|| {
        let mut files: Vec<String> = expected
            .resources
            .iter()
            .map(|r| file_of(&r.name, sharded).to_string())
            .collect();
        files.dedup();
        files
    });
    let hash_opts = HashOptions {
        method: expected.serialization.method,
        allow_symlinks: opts.allow_symlinks || expected.serialization.allow_symlinks,
        ignore_git_paths: opts.ignore_git_paths,
        ignore_paths,
        only,
        jobs: opts.jobs,
    };
    let actual = hash_model(model, &hash_opts)?;

    let actual_map: BTreeMap<&str, &crate::manifest::Resource> = actual
        .resources
        .iter()
        .map(|r| (r.name.as_str(), r))
        .collect();
    let show =
        |r: &crate::manifest::Resource| format!("{}:{}", r.algorithm, hex::encode(&r.digest));
    let mut modified = Vec::new();
    let mut removed = Vec::new();
    for r in &expected.resources {
        match actual_map.get(r.name.as_str()) {
            None => removed.push(r.name.clone()),
            Some(a) if a.digest != r.digest || a.algorithm != r.algorithm => {
                modified.push(Modified {
                    name: r.name.clone(),
                    expected: show(r),
                    actual: show(a),
                })
            }
            Some(_) => {}
        }
    }
    let mut added: Vec<String> = actual
        .resources
        .iter()
        .filter(|r| !expected_map.contains_key(r.name.as_str()))
        .map(|r| r.name.clone())
        .collect();
    modified.sort_by(|a, b| compare_names(&a.name, &b.name, sharded));
    removed.sort_by(|a, b| compare_names(a, b, sharded));
    added.sort_by(|a, b| compare_names(a, b, sharded));

    Ok(Verification {
        signer,
        signed,
        expected_root: statement
            .subject
            .first()
            .and_then(|s| s.digest.get("sha256"))
            .cloned()
            .unwrap_or_default(),
        actual_root: hex::encode(actual.root_digest()),
        resources_checked: actual.resources.len(),
        expected,
        modified,
        added,
        removed,
    })
}

/// The file a resource name refers to (`path` of `path:start:end` for shards).
fn file_of(name: &str, sharded: bool) -> &str {
    if sharded {
        crate::manifest::split_shard(name).0
    } else {
        name
    }
}
