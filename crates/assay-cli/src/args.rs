//! Command-line arguments.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "assay", version, about = "Scan, sign and admit AI models before you trust them", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Scan model files, folders and archives (recognised by content, never by name).
    ///
    /// Exit codes: 0 nothing at or above --fail-on, 1 at least one such finding,
    /// 2 usage error or unreadable input.
    Scan(ScanArgs),
    /// List every rule.
    Rules,
    /// Print a rule's documentation.
    Explain {
        /// Rule code, e.g. PKL001.
        code: String,
    },
}

#[derive(clap::Args, Debug)]
pub struct ScanArgs {
    /// Files, folders or archives to scan.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Report format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
    /// Write the report to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Lowest severity that makes the scan fail (exit 1).
    #[arg(long, value_enum, default_value_t = FailOn::High)]
    pub fail_on: FailOn,
    /// Files scanned in parallel (default: one per core).
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    /// No progress bar; human output shows only findings at or above --fail-on.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Human,
    Json,
    Sarif,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailOn {
    Critical,
    High,
    Medium,
    Low,
}
