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
    /// Sign a model folder in the OpenSSF model-signing format (a Sigstore bundle).
    Sign(crate::cmd::sign::SignArgs),
    /// Verify a model folder against a signature or a signed scan attestation.
    ///
    /// Exit codes: 0 verified, 1 verification failed (files modified, added or removed,
    /// wrong key, malformed or untrusted signature), 2 usage error.
    Verify(crate::cmd::sign::VerifyArgs),
    /// List every rule.
    Rules,
    /// Print a rule's documentation.
    Explain {
        /// Rule code, e.g. PKL001.
        code: String,
    },
    /// AI firewall for OpenAI-compatible APIs: `serve` a scanning reverse proxy, `check`
    /// texts offline, `train` the injection classifier.
    Firewall(FirewallArgs),
    /// Write a model card section (README.md or its own file) and an SVG scan badge bound
    /// to the model's bytes; `--check` verifies the files still match them.
    ///
    /// Exit codes: 0 written / check passed, 1 the files no longer match the card,
    /// 2 usage error or a report that does not describe these bytes.
    Card(crate::cmd::card::CardArgs),
    /// Admission policy (Rego): `check` admits or refuses a model.
    Policy(PolicyArgs),
    /// Compare two models tensor by tensor: what changed, where, at what rank, and whether
    /// it looks like a localised edit, a merged adapter or a fine-tune.
    ///
    /// Exit codes: 0 identical, 1 differences found (see --fail-on), 2 usage error,
    /// unreadable input, or a tensor that could not be read or compared.
    Diff(crate::cmd::diff::DiffArgs),
    /// Convert a PyTorch checkpoint to safetensors without running Python, after scanning
    /// it; checkpoints whose pickle calls anything outside the allowlist are refused.
    ///
    /// Refused: any scan finding at high or critical, or PKL003 (class outside the
    /// allowlist), PKL013, NPY001, TCH001. No option overrides a refusal.
    ///
    /// Exit codes: 0 converted, 1 refused (the findings are named), 2 usage error,
    /// unreadable or unsupported input, a tensor that cannot be written exactly, or an
    /// existing output without --force.
    Convert(crate::cmd::convert::ConvertArgs),
    /// Red-team an OpenAI-compatible chat endpoint with adversarial probe suites and
    /// report the attack success rate (exit 1 above --fail-above).
    Redteam(Box<crate::cmd::redteam::RedteamArgs>),
    /// Model registry: serve a multi-tenant, Hugging Face compatible registry that serves
    /// only models its policy admitted (SQLite and a data folder; nothing to install).
    Serve(crate::cmd::registry::ServeArgs),
    /// Registry tenants: `create` one (bootstrap admin token), set its `policy`.
    Tenant {
        #[command(subcommand)]
        command: crate::cmd::registry::TenantCommand,
    },
    /// Registry tokens: `create` a read, write or admin token of your tenant.
    Token {
        #[command(subcommand)]
        command: crate::cmd::registry::TokenCommand,
    },
    /// Push a model folder to a registry as a new commit; waits for the scan and prints
    /// the admission decision.
    ///
    /// Exit codes: 0 admitted (or uploaded, with --no-wait), 1 refused, 2 error.
    Push(crate::cmd::registry::PushArgs),
    /// Registry scan worker: claims scan jobs from the registry's database (PostgreSQL or
    /// the SQLite file of a data folder), scans, records the admission decision. Stateless;
    /// run any number. Stops on Ctrl-C or SIGTERM (a running scan finishes or is released).
    Worker(crate::cmd::registry::WorkerArgs),
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
    /// Bytes of weights per file whose low-order bytes and bits are searched for hidden
    /// payloads (the slow part of the tensor stage, about 60 MB/s per core); tensors
    /// past it are reported and the stage is marked incomplete [default: 16 GiB].
    #[arg(long, value_name = "BYTES")]
    pub max_payload_search: Option<u64>,
    /// Write a signed scan attestation (needs --key and exactly one model path).
    #[arg(long, requires = "key")]
    pub attest: bool,
    /// PEM private key (ECDSA P-256/P-384/P-521) that signs the attestation.
    #[arg(long, value_name = "KEY.pem", requires = "attest")]
    pub key: Option<PathBuf>,
    /// Where to write the attestation [default: assay-attestation.json].
    #[arg(long, value_name = "PATH", requires = "attest")]
    pub attestation: Option<PathBuf>,
    /// OSV advisories for the vulnerability stage: an OSV all.zip export (e.g. PyPI's) or
    /// a folder of OSV JSON/YAML files, used together with the built-in set
    /// [default: only the built-in advisories that concern model loading].
    #[arg(long, value_name = "PATH")]
    pub advisories: Option<PathBuf>,
    /// Report the advisory database as stale (CVE005) when its newest record is older
    /// than DAYS.
    #[arg(long, value_name = "DAYS", default_value_t = assay_scan::DEFAULT_MAX_AGE_DAYS)]
    pub advisories_max_age: u32,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Human,
    Json,
    Sarif,
    /// CycloneDX 1.6 ML-BOM (JSON).
    Cyclonedx,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailOn {
    Critical,
    High,
    Medium,
    Low,
}

#[derive(clap::Args, Debug)]
pub struct FirewallArgs {
    #[command(subcommand)]
    pub command: crate::cmd::firewall::FirewallCommand,
}

#[derive(clap::Args, Debug)]
pub struct PolicyArgs {
    #[command(subcommand)]
    pub command: crate::cmd::policy::PolicyCommand,
}
