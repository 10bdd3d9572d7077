//! Concrete error types. Each says what the user can do about it; the CLI maps them to
//! exit codes (key and usage problems are usage errors, everything about the signature
//! or the model is a failed verification).

use std::io;
use std::path::PathBuf;
use thiserror::Error;

/// Reading a key or certificate file.
#[derive(Debug, Error)]
pub enum KeyError {
    #[error("no PEM block found (expected {expected})")]
    NoPem { expected: &'static str },
    #[error("malformed PEM: {0}")]
    Pem(String),
    #[error(
        "the private key is encrypted; decrypt it first (e.g. `openssl pkey -in KEY -out PLAIN`)"
    )]
    Encrypted,
    #[error("unsupported key: {0} (ECDSA keys on P-256, P-384 and P-521 are supported)")]
    Unsupported(String),
    #[error(
        "this is a private key; verification takes the public key (`openssl pkey -in KEY -pubout`)"
    )]
    PrivateNotPublic,
    #[error("malformed {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
    #[error("the signing certificate's public key does not match the private key")]
    CertificateKeyMismatch,
    #[error("none of the given certificates holds the public key of the signing key")]
    NoSigningCertificate,
}

/// Walking and hashing a model.
#[derive(Debug, Error)]
pub enum HashError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{} is a symbolic link; links are refused unless allowed (--allow-symlinks), as the reference tool does",
        path.display()
    )]
    Symlink { path: PathBuf },
    #[error(
        "{} is neither a file nor a folder (a socket, pipe, device or broken link)",
        path.display()
    )]
    NotFileOrDir { path: PathBuf },
    #[error("{} has a name that is not valid UTF-8", path.display())]
    NonUtf8Name { path: PathBuf },
    #[error("{} changed size while it was being hashed", path.display())]
    ChangedWhileHashing { path: PathBuf },
    #[error("the model is nested deeper than {limit} folders at {}", path.display())]
    TooDeep { path: PathBuf, limit: usize },
    #[error("the model holds more than {limit} files")]
    TooManyFiles { limit: usize },
    #[error("cannot start hashing threads: {0}")]
    Threads(String),
}

/// Signing a model or an attestation.
#[derive(Debug, Error)]
pub enum SignError {
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("cannot encode the statement: {0}")]
    Encode(String),
}

/// A signature or attestation that does not verify. Every variant is a failed
/// verification except [`VerifyError::Hash`] caused by an unreadable model.
#[derive(Debug, Error)]
pub enum VerifyError {
    #[error("malformed signature bundle: {0}")]
    MalformedBundle(String),
    #[error("unsupported bundle media type {found:?} (expected {expected:?})")]
    MediaType {
        found: String,
        expected: &'static str,
    },
    #[error(
        "wrong key: the bundle was signed with the key whose hint is {bundle_hint}, but the given public key's hint is {given_hint}"
    )]
    WrongKey {
        bundle_hint: String,
        given_hint: String,
    },
    #[error(
        "the signature does not verify with the given key: {0} (the bundle was altered, or it was signed with another key)"
    )]
    BadSignature(&'static str),
    #[error(
        "this bundle is signed with a certificate; verify it with --certificate-chain ROOT.pem"
    )]
    NeedsCertificates,
    #[error("this bundle is signed with a key, not a certificate; verify it with --key PUB.pem")]
    NeedsKey,
    #[error(
        "this bundle comes from Sigstore keyless signing, which needs online transparency-log checks; Assay verifies key and certificate signatures offline"
    )]
    Keyless,
    #[error("untrusted certificate chain: {0}")]
    UntrustedChain(String),
    #[error("unsupported DSSE payload type {0:?} (expected application/vnd.in-toto+json)")]
    PayloadType(String),
    #[error("malformed in-toto statement: {0}")]
    MalformedStatement(String),
    #[error("unexpected predicate type {found:?} (expected {expected})")]
    PredicateType { found: String, expected: String },
    #[error(
        "the signed statement is inconsistent: its subject digest is {subject} but its resources hash to {computed}"
    )]
    InconsistentManifest { subject: String, computed: String },
    #[error("unsupported serialization: {0}")]
    UnsupportedSerialization(String),
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    Key(#[from] KeyError),
}

impl VerifyError {
    /// A stable, machine-readable name for the failure (used in JSON reports).
    pub fn kind(&self) -> &'static str {
        match self {
            VerifyError::MalformedBundle(_) => "malformed_bundle",
            VerifyError::MediaType { .. } => "malformed_bundle",
            VerifyError::WrongKey { .. } => "wrong_key",
            VerifyError::BadSignature(_) => "bad_signature",
            VerifyError::NeedsCertificates | VerifyError::NeedsKey => "wrong_verification_method",
            VerifyError::Keyless => "unsupported_bundle",
            VerifyError::UntrustedChain(_) => "untrusted_certificate",
            VerifyError::PayloadType(_) => "malformed_bundle",
            VerifyError::MalformedStatement(_) => "malformed_statement",
            VerifyError::PredicateType { .. } => "wrong_predicate_type",
            VerifyError::InconsistentManifest { .. } => "inconsistent_manifest",
            VerifyError::UnsupportedSerialization(_) => "unsupported_serialization",
            VerifyError::Hash(_) => "model_unreadable",
            VerifyError::Key(_) => "bad_key",
        }
    }
}
