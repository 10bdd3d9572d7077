//! Binding a card to bytes: the root digest a card carries, and checking it.
//!
//! The digest is assay-sign's OpenSSF model-signing root digest (`files` method, git
//! paths left out, links followed as the scan follows them), computed over the model
//! *without the card*: the card's own files (a separate card file, the badge, an
//! attestation) are left out as ignored paths, and when the card is a section of the
//! model's `README.md`, the README is digested with the section taken out
//! ([`super::readme::strip`]). For a README that had no section, that is the README as
//! it was scanned, so the digest equals what `assay sign` / `model_signing` compute
//! for the folder before the card was written (with the same ignored paths), and a
//! scan attestation made before the card binds to the same digest. Re-running the card
//! does not change it; editing, adding or removing any file (or the README outside the
//! section) does.

use super::readme;
use assay_sign::{HashOptions, Manifest, Resource};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// The README whose section is the card, at the top of the model folder.
pub const README: &str = "README.md";
/// Largest README read to take the card section out (it is held in memory).
pub const MAX_README_BYTES: u64 = 64 << 20;

/// How the card sits in the model.
#[derive(Debug, Clone, Default)]
pub struct Binding {
    /// Paths relative to the model to leave out (the card file, the badge, …).
    pub ignored: Vec<String>,
    /// The card is a section of the model's `README.md`.
    pub readme_section: bool,
    /// Whether the README belongs in the digest when, without the section, it is empty
    /// (it existed before the card, or the card was its only content). `None`: decide
    /// by whether it is empty.
    pub readme_listed: Option<bool>,
}

/// Why the digest could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error(transparent)]
    Hash(#[from] assay_sign::HashError),
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Readme { path: String, message: String },
}

/// The model's manifest as the card binds it.
pub fn manifest(model: &Path, b: &Binding) -> Result<Manifest, BindError> {
    let mut ignore_paths = b.ignored.clone();
    if b.readme_section {
        ignore_paths.push(README.into());
    }
    let opts = HashOptions {
        allow_symlinks: true,
        ignore_paths,
        ..Default::default()
    };
    let mut m = assay_sign::hash_model(model, &opts)?;
    if b.readme_section {
        let path = model.join(README);
        if std::fs::metadata(&path).is_ok_and(|m| m.len() > MAX_README_BYTES) {
            return Err(BindError::Readme {
                path: path.display().to_string(),
                message: format!(
                    "larger than {MAX_README_BYTES} bytes; write the card with --output"
                ),
            });
        }
        match std::fs::read(&path) {
            Ok(bytes) => {
                let text = String::from_utf8(bytes).map_err(|_| BindError::Readme {
                    path: path.display().to_string(),
                    message: "not UTF-8, so the card section cannot be located".into(),
                })?;
                let without = readme::strip(&text).map_err(|message| BindError::Readme {
                    path: path.display().to_string(),
                    message,
                })?;
                if !without.is_empty() || b.readme_listed.unwrap_or(false) {
                    m.resources.push(Resource {
                        name: README.into(),
                        algorithm: m.serialization.resource_algorithm(),
                        digest: Sha256::digest(without.as_bytes()).to_vec(),
                    });
                    m.sort();
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(BindError::Io {
                    path: path.display().to_string(),
                    source,
                });
            }
        }
        // The README is in the recorded ignore list only because it is handled here.
        m.serialization.ignore_paths.retain(|p| p != README);
    }
    Ok(m)
}

/// Per-file hex digests of a manifest.
pub fn file_digests(m: &Manifest) -> BTreeMap<String, String> {
    m.resources
        .iter()
        .map(|r| (r.name.clone(), hex::encode(&r.digest)))
        .collect()
}

/// What differs between the digests a card recorded and the files now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drift {
    pub modified: Vec<String>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

impl Drift {
    pub fn is_empty(&self) -> bool {
        self.modified.is_empty() && self.added.is_empty() && self.removed.is_empty()
    }
}

/// Compares recorded and current per-file digests.
pub fn drift(recorded: &BTreeMap<String, String>, now: &BTreeMap<String, String>) -> Drift {
    let mut d = Drift::default();
    for (name, digest) in recorded {
        match now.get(name) {
            None => d.removed.push(name.clone()),
            Some(n) if n != digest => d.modified.push(name.clone()),
            Some(_) => {}
        }
    }
    d.added = now
        .keys()
        .filter(|k| !recorded.contains_key(*k))
        .cloned()
        .collect();
    d
}
