//! The finding model that every Assay stage reports into, and the renderers that turn a
//! [`Report`] into what people and machines read: human text, JSON (the stable shape in
//! ARCHITECTURE.md), SARIF 2.1.0 and CycloneDX 1.6 — and the model card and scan badge
//! ([`card`]).
//!
//! This crate never prints and never exits: renderers write into any `io::Write`.
#![forbid(unsafe_code)]

pub mod card;
mod model;
pub mod render;

pub use model::{
    Dependency, FileEntry, FileStatus, Finding, Report, RuleDoc, Severity, Stage, StageStatus,
    Summary, Verdict,
};
