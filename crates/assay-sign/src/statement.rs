//! The in-toto v1 statement and the model-signing v1.0 predicate.
//!
//! ```json
//! {"_type": "https://in-toto.io/Statement/v1",
//!  "subject": [{"name": "<model folder name>", "digest": {"sha256": "<root digest>"}}],
//!  "predicateType": "https://model_signing/signature/v1.0",
//!  "predicate": {
//!    "serialization": {"method": "files", "hash_type": "sha256", "allow_symlinks": false,
//!                      "ignore_paths": [".git", ".gitattributes", ".github", ".gitignore", "model.sig"]},
//!    "resources": [{"name": "config.json", "algorithm": "sha256", "digest": "<hex>"}, …]}}
//! ```
//!
//! The payload is written pretty-printed with two-space indents, as the reference's
//! `MessageToJson` does; a verifier reads any JSON.

use crate::error::VerifyError;
use crate::manifest::{Manifest, Method, Resource, Serialization, root_digest};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const MODEL_SIGNING_PREDICATE: &str = "https://model_signing/signature/v1.0";
/// The pre-1.0 predicate; recognised only to say that it is not supported.
pub const MODEL_SIGNING_PREDICATE_V0_2: &str = "https://model_signing/Digests/v0.1";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub statement_type: String,
    pub subject: Vec<Subject>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    #[serde(default)]
    pub predicate: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Subject {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub digest: BTreeMap<String, String>,
}

impl Statement {
    /// A statement whose subject is `manifest`'s name and root digest.
    pub fn new(manifest: &Manifest, predicate_type: &str, predicate: Value) -> Statement {
        Statement {
            statement_type: STATEMENT_TYPE.into(),
            subject: vec![Subject {
                name: manifest.model_name.clone(),
                digest: BTreeMap::from([("sha256".into(), hex::encode(manifest.root_digest()))]),
            }],
            predicate_type: predicate_type.into(),
            predicate,
        }
    }

    /// The JSON payload that gets signed.
    pub fn to_payload(&self) -> Vec<u8> {
        // A tree of strings, numbers and booleans always serializes.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// Reads a statement from a DSSE payload (no signature check: see
    /// [`crate::open_statement`]).
    pub fn parse(payload: &[u8]) -> Result<Statement, VerifyError> {
        let s: Statement = serde_json::from_slice(payload)
            .map_err(|e| VerifyError::MalformedStatement(e.to_string()))?;
        if s.statement_type != STATEMENT_TYPE {
            return Err(VerifyError::MalformedStatement(format!(
                "statement type {:?}, expected {STATEMENT_TYPE}",
                s.statement_type
            )));
        }
        Ok(s)
    }
}

/// The model-signing predicate for `manifest`.
pub(crate) fn model_signing_predicate(manifest: &Manifest) -> Value {
    json!({
        "serialization": serialization_to_json(&manifest.serialization),
        "resources": resources_to_json(&manifest.resources),
    })
}

pub(crate) fn serialization_to_json(s: &Serialization) -> Value {
    let mut m = Map::new();
    match s.method {
        Method::Files => {
            m.insert("method".into(), json!("files"));
            m.insert("hash_type".into(), json!(s.hash_type));
        }
        Method::Shards { shard_size } => {
            m.insert("method".into(), json!("shards"));
            m.insert("hash_type".into(), json!(s.hash_type));
            m.insert("shard_size".into(), json!(shard_size));
        }
    }
    m.insert("allow_symlinks".into(), json!(s.allow_symlinks));
    if !s.ignore_paths.is_empty() {
        m.insert("ignore_paths".into(), json!(s.ignore_paths));
    }
    Value::Object(m)
}

pub(crate) fn resources_to_json(resources: &[Resource]) -> Value {
    Value::Array(
        resources
            .iter()
            .map(|r| {
                json!({
                    "name": r.name,
                    "algorithm": r.algorithm,
                    "digest": hex::encode(&r.digest),
                })
            })
            .collect(),
    )
}

fn bad(msg: impl Into<String>) -> VerifyError {
    VerifyError::MalformedStatement(msg.into())
}

pub(crate) fn serialization_from_json(v: &Value) -> Result<Serialization, VerifyError> {
    let o = v
        .as_object()
        .ok_or_else(|| bad("predicate.serialization is not an object"))?;
    let text = |k: &str| -> Result<&str, VerifyError> {
        o.get(k).and_then(Value::as_str).ok_or_else(|| {
            bad(format!(
                "predicate.serialization.{k} is missing or not a string"
            ))
        })
    };
    let method = match text("method")? {
        "files" => Method::Files,
        "shards" => {
            let size = o
                .get("shard_size")
                .and_then(|v| {
                    v.as_u64().or_else(|| {
                        v.as_f64()
                            .filter(|f| f.fract() == 0.0 && *f >= 1.0)
                            .map(|f| f as u64)
                    })
                })
                .filter(|s| *s > 0)
                .ok_or_else(|| {
                    bad("predicate.serialization.shard_size is not a positive integer")
                })?;
            Method::Shards { shard_size: size }
        }
        other => {
            return Err(VerifyError::UnsupportedSerialization(format!(
                "method {other:?} (known: files, shards)"
            )));
        }
    };
    let hash_type = text("hash_type")?.to_string();
    if hash_type != crate::manifest::HASH_TYPE {
        return Err(VerifyError::UnsupportedSerialization(format!(
            "hash type {hash_type:?}; Assay computes sha256"
        )));
    }
    let allow_symlinks = match o.get("allow_symlinks") {
        Some(Value::Bool(b)) => *b,
        _ => {
            return Err(bad(
                "predicate.serialization.allow_symlinks is missing or not a boolean",
            ));
        }
    };
    let ignore_paths = match o.get("ignore_paths") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|p| p.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad("predicate.serialization.ignore_paths holds a non-string"))?,
        Some(_) => return Err(bad("predicate.serialization.ignore_paths is not a list")),
    };
    Ok(Serialization {
        method,
        hash_type,
        allow_symlinks,
        ignore_paths,
    })
}

pub(crate) fn resources_from_json(v: &Value) -> Result<Vec<Resource>, VerifyError> {
    let list = v
        .as_array()
        .ok_or_else(|| bad("predicate.resources is missing or not a list"))?;
    let mut out = Vec::with_capacity(list.len());
    for (i, r) in list.iter().enumerate() {
        let field = |k: &str| -> Result<&str, VerifyError> {
            r.get(k).and_then(Value::as_str).ok_or_else(|| {
                bad(format!(
                    "predicate.resources[{i}].{k} is missing or not a string"
                ))
            })
        };
        let digest = hex::decode(field("digest")?)
            .map_err(|_| bad(format!("predicate.resources[{i}].digest is not hex")))?;
        out.push(Resource {
            name: field("name")?.to_string(),
            algorithm: field("algorithm")?.to_string(),
            digest,
        });
    }
    Ok(out)
}

/// The manifest a statement describes, after checking that its resources hash to its
/// subject (the reference's "Manifest is inconsistent" check). Resources stay in the
/// bundle's order: the root digest is computed in that order, whatever it is.
impl Statement {
    /// The manifest this statement describes, checked for consistency.
    pub fn manifest(&self) -> Result<Manifest, VerifyError> {
        manifest_from_statement(self)
    }
}

pub(crate) fn manifest_from_statement(s: &Statement) -> Result<Manifest, VerifyError> {
    let [subject] = s.subject.as_slice() else {
        return Err(bad(format!(
            "expected exactly one subject, found {}",
            s.subject.len()
        )));
    };
    let expected = subject
        .digest
        .get("sha256")
        .ok_or_else(|| bad("the subject has no sha256 digest"))?;
    let p = &s.predicate;
    let serialization = serialization_from_json(
        p.get("serialization")
            .ok_or_else(|| bad("predicate.serialization is missing"))?,
    )?;
    let resources = resources_from_json(
        p.get("resources")
            .ok_or_else(|| bad("predicate.resources is missing"))?,
    )?;
    let computed = hex::encode(root_digest(resources.iter().map(|r| r.digest.as_slice())));
    if computed != *expected {
        return Err(VerifyError::InconsistentManifest {
            subject: expected.clone(),
            computed,
        });
    }
    Ok(Manifest {
        model_name: subject.name.clone(),
        serialization,
        resources,
    })
}
