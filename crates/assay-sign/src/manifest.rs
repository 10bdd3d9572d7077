//! The manifest: every file (or file shard) of a model paired with its SHA-256, in the
//! order the reference tool writes them, and the root digest over them.
//!
//! Order: `model_signing` sorts its items as Python sorts `PurePosixPath` keys, i.e. by
//! the list of path components, each compared by code point, so `a/x` comes before
//! `a.txt` (component `a` < `a.txt`) although the string `a.txt` < `a/x`. Shards sort by
//! (path, start, end). The root digest is SHA-256 over the concatenated raw digests in
//! the order the resources are listed.

use sha2::{Digest, Sha256};
use std::cmp::Ordering;

/// The `hash_type` this implementation computes.
pub const HASH_TYPE: &str = "sha256";

/// How a model was cut into resources; recorded in the predicate so that the verifier
/// cuts it the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Serialization {
    pub method: Method,
    /// `hash_type` (only `sha256` is computed by Assay).
    pub hash_type: String,
    pub allow_symlinks: bool,
    /// Paths (relative to the model, POSIX) left out of the manifest. Empty means the
    /// key is omitted, as the reference does.
    pub ignore_paths: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// One resource per file (`"files"`, the reference's default).
    Files,
    /// One resource per shard of `shard_size` bytes (`"shards"`).
    Shards { shard_size: u64 },
}

impl Serialization {
    /// The per-resource `algorithm` string: `sha256` for files, `sha256-sharded-N`
    /// for shards.
    pub fn resource_algorithm(&self) -> String {
        match self.method {
            Method::Files => self.hash_type.clone(),
            Method::Shards { shard_size } => format!("{}-sharded-{shard_size}", self.hash_type),
        }
    }
}

/// One item of the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// POSIX path relative to the model (`"."` when the model is a single file); for
    /// shards `path:start:end`.
    pub name: String,
    /// The digest algorithm as written in the bundle (`sha256`, `sha256-sharded-N`).
    pub algorithm: String,
    /// Raw digest bytes.
    pub digest: Vec<u8>,
}

/// A hashed model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The final component of the model path; informative only.
    pub model_name: String,
    pub serialization: Serialization,
    /// In canonical order when built by hashing; in the bundle's order when read back.
    pub resources: Vec<Resource>,
}

impl Manifest {
    /// SHA-256 over the raw digests in listed order.
    pub fn root_digest(&self) -> [u8; 32] {
        root_digest(self.resources.iter().map(|r| r.digest.as_slice()))
    }

    /// Puts the resources in the reference tool's order.
    pub fn sort(&mut self) {
        let sharded = matches!(self.serialization.method, Method::Shards { .. });
        self.resources
            .sort_by(|a, b| compare_names(&a.name, &b.name, sharded));
    }
}

pub(crate) fn root_digest<'a>(digests: impl Iterator<Item = &'a [u8]>) -> [u8; 32] {
    let mut h = Sha256::new();
    for d in digests {
        h.update(d);
    }
    h.finalize().into()
}

/// Compares two resource names as the reference sorts its manifest keys: file keys by
/// path components; shard keys (`sharded`) by components, then start, then end.
pub fn compare_names(a: &str, b: &str, sharded: bool) -> Ordering {
    if !sharded {
        return a.split('/').cmp(b.split('/'));
    }
    let (pa, ra) = split_shard(a);
    let (pb, rb) = split_shard(b);
    pa.split('/').cmp(pb.split('/')).then_with(|| ra.cmp(&rb))
}

/// `path:start:end` → (path, Some((start, end))); anything else → (name, None).
pub(crate) fn split_shard(name: &str) -> (&str, Option<(u64, u64)>) {
    let mut it = name.rsplitn(3, ':');
    if let (Some(end), Some(start), Some(path)) = (it.next(), it.next(), it.next())
        && let (Ok(s), Ok(e)) = (start.parse::<u64>(), end.parse::<u64>())
    {
        return (path, Some((s, e)));
    }
    (name, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_by_components_like_pure_posix_path() {
        let mut names = vec!["a.txt", "a/x", "a-c/z", ".hidden", "sub/b.bin", "B", "a"];
        names.sort_by(|a, b| compare_names(a, b, false));
        assert_eq!(
            names,
            [".hidden", "B", "a", "a/x", "a-c/z", "a.txt", "sub/b.bin"]
        );
    }

    #[test]
    fn orders_shards_numerically() {
        let mut names = vec!["f:10:20", "f:2:10", "f:0:2", "e:0:1"];
        names.sort_by(|a, b| compare_names(a, b, true));
        assert_eq!(names, ["e:0:1", "f:0:2", "f:2:10", "f:10:20"]);
    }

    #[test]
    fn root_digest_of_nothing_is_sha256_of_empty() {
        assert_eq!(
            hex::encode(root_digest(std::iter::empty())),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
