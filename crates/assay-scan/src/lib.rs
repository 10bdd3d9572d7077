//! The Assay scan engine: it walks inputs (files, folders, archives), recognises every
//! file and every container member by its bytes, runs the format analysers and the rules
//! over them within named limits, in parallel, and returns a [`Report`].
//!
//! Nothing here executes artifact content, touches the network, prints or exits.
#![deny(unsafe_code)]

mod analyze;
mod blob;
mod engine;
mod limits;
mod repo;
pub mod rules;
#[cfg(test)]
mod test_support;
mod vulnerability;
mod walk;

/// The Python analyser, the secret finder and the Python-compatible JSON reader on their
/// own (for fuzzing and tools).
pub use analyze::python::{PythonAnalysis, Refusal as PythonRefusal, analyse as analyse_python};
pub use analyze::secrets::{Secret, find as find_secrets};
/// The chat-template checker on its own (for fuzzing and tools): findings for one template.
pub use analyze::template::{TemplateHit, analyse as analyse_chat_template};
pub use analyze::text::{Json, parse_json};
/// The advisory database type `ScanOptions::advisories` takes.
pub use assay_advisories::Database as AdvisoryDatabase;
pub use assay_report::{Finding, Report, Severity, Stage};
pub use engine::{Progress, ScanError, ScanOptions, scan};
pub use limits::Limits;
pub use vulnerability::DEFAULT_MAX_AGE_DAYS;

/// The version recorded in reports.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
