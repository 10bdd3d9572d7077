//! Signing and verification of model folders in the OpenSSF model-signing format (the
//! `model-signing` package on PyPI, v1.x), and signed scan attestations.
//!
//! A signature is a Sigstore bundle (media type v0.3) holding a DSSE envelope over an
//! in-toto v1 statement. Its subject is the model's *root digest*: SHA-256 over the
//! SHA-256 of every file, in the reference tool's order. Its predicate
//! (`https://model_signing/signature/v1.0`) lists every file with its digest and how
//! the folder was walked. Keys are ECDSA on P-256, P-384 or P-521 (PEM); the
//! `certificate` method adds an X.509 chain, verified offline against given roots.
//! Signatures made here verify with `model_signing verify key|certificate` and the
//! other way round.
//!
//! - [`hash_model`] walks and hashes a model (parallel, streaming, flat memory);
//! - [`sign_model`] / [`sign_manifest`] produce a bundle;
//! - [`verify_model`] checks a bundle and reports every modified, added and removed file;
//! - [`attest_scan`] signs a scan attestation over the same root digest.
//!
//! This crate never prints and never exits.
#![forbid(unsafe_code)]

mod attest;
mod bundle;
mod cert;
mod error;
mod hashing;
mod keys;
mod manifest;
mod pem;
mod statement;
mod verify;

pub use attest::{ReportRef, SCAN_PREDICATE_TYPE, ScanRecord, ToolRef, attest_scan, rfc3339_utc};
pub use bundle::{BUNDLE_MEDIA_TYPE, PAYLOAD_TYPE, Signer, SignerIdentity, Trust, pae};
pub use cert::certificates_from_pem;
pub use error::{HashError, KeyError, SignError, VerifyError};
pub use hashing::{DEFAULT_SHARD_SIZE, GIT_PATHS, HashOptions, hash_model, model_name};
pub use keys::{Curve, PrivateKey, PublicKey};
pub use manifest::{HASH_TYPE, Manifest, Method, Resource, Serialization, compare_names};
pub use statement::{MODEL_SIGNING_PREDICATE, STATEMENT_TYPE, Statement, Subject};
pub use verify::{
    Expect, Modified, Signed, Verification, VerifyOptions, open_statement, verify_model,
};

use std::path::Path;

/// Hex SHA-256 of `bytes` (e.g. a report an attestation refers to).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Signs `manifest` as a model signature; returns the bundle JSON to write.
pub fn sign_manifest(manifest: &Manifest, signer: &Signer) -> String {
    let predicate = statement::model_signing_predicate(manifest);
    sign_statement(
        &Statement::new(manifest, MODEL_SIGNING_PREDICATE, predicate),
        signer,
    )
}

/// Signs any in-toto statement into a bundle (the DSSE/in-toto machinery underneath
/// model signatures and attestations).
pub fn sign_statement(statement: &Statement, signer: &Signer) -> String {
    bundle::sign(&statement.to_payload(), signer)
}

/// Hashes the model at `model` and signs it; returns the manifest and the bundle JSON.
pub fn sign_model(
    model: &Path,
    opts: &HashOptions,
    signer: &Signer,
) -> Result<(Manifest, String), SignError> {
    let manifest = hash_model(model, opts)?;
    let bundle = sign_manifest(&manifest, signer);
    Ok((manifest, bundle))
}
