//! The finding model that every Assay stage reports into, and the renderers that turn a
//! [`Report`] into what people and machines read: human text, JSON (the stable shape in
//! ARCHITECTURE.md) and SARIF 2.1.0.
//!
//! This crate never prints and never exits: renderers write into any `io::Write`.
#![forbid(unsafe_code)]

mod model;
pub mod render;

pub use model::{
    FileEntry, FileStatus, Finding, Report, RuleDoc, Severity, Stage, StageStatus, Summary, Verdict,
};
