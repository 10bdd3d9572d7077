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
pub mod rules;
mod walk;

pub use assay_report::{Finding, Report, Severity, Stage};
pub use engine::{Progress, ScanError, ScanOptions, scan};
pub use limits::Limits;

/// The version recorded in reports.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
