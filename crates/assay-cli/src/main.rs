//! `assay`: the command-line tool. Glue only: parse arguments, call the libraries,
//! render, choose the exit code.
//!
//! Exit codes: 0 nothing at or above `--fail-on`; 1 at least one such finding;
//! 2 usage error, unreadable input or internal error. A broken pipe is 0.
// Unsafe only to memory-map weight files (cmd/weights.rs).
#![deny(unsafe_code)]

mod args;
mod cmd;
mod progress;

use anyhow::Result;
use args::{Cli, Command};
use clap::Parser;
use std::io;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("assay: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// One arm per command; each command lives in `cmd/`.
fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Scan(a) => cmd::scan::scan(a),
        Command::Sign(a) => cmd::sign::sign(a),
        Command::Verify(a) => cmd::sign::verify(a),
        Command::Rules => cmd::rules::list(),
        Command::Explain { code } => cmd::rules::explain(&code),
        Command::Firewall(a) => cmd::firewall::run(a.command),
        Command::Card(a) => cmd::card::run(a),
        Command::Policy(a) => cmd::policy::run(a.command),
        Command::Diff(a) => cmd::diff::diff(a),
        Command::Convert(a) => cmd::convert::convert(a),
        Command::Redteam(a) => cmd::redteam::run(*a),
        Command::Serve(a) => cmd::registry::serve(a),
        Command::Tenant { command } => cmd::registry::tenant(command),
        Command::Token { command } => cmd::registry::token(command),
        Command::Push(a) => cmd::registry::push(a),
        Command::Worker(a) => cmd::registry::worker(a),
    }
}
