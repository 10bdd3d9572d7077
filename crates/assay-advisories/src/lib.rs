//! Advisory data for Assay's `vulnerability` stage.
//!
//! - [`osv`]: OSV records (the schema of osv.dev, PyPA and GHSA), read from a folder of
//!   JSON/YAML files or from an OSV `all.zip` export, within named limits.
//! - [`Database`]: those records indexed by PEP 503-normalised package name, plus the
//!   built-in set of advisories that concern loading model artifacts (`data/`), so that
//!   the default works offline.
//! - [`version`]: PEP 440 matching: whether a version, or what a requirement lets pip
//!   install, falls in an advisory's affected ranges (one small, unit-tested function each).
//! - [`manifest`]: the Python dependencies a model repository declares
//!   (`requirements*.txt`, `pyproject.toml`, `setup.cfg`, `Pipfile.lock`, conda
//!   `environment.yml`), parsed without running anything.
//! - [`Feature`]: what an artifact contains that reaches a known vulnerable code path
//!   (a GGUF chat template, a Keras module reference, ONNX external data, a pickle-based
//!   torch checkpoint …), and which advisories each one triggers.
//!
//! Nothing here touches the network, prints or exits.
#![forbid(unsafe_code)]

mod builtin;
mod db;
mod feature;
pub mod manifest;
pub mod osv;
pub mod version;

pub use db::{Database, LoadError, LoadProblem, MAX_DATABASE_BYTES, MAX_RECORD_BYTES};
pub use feature::Feature;
pub use osv::{Advisory, Affected};
pub use version::{Requirement, Verdict, normalise_name};
