//! Assay's red-team runner: adversarial probe suites (data in `suites/`), a runner that
//! sends them to any OpenAI-compatible chat endpoint, detectors that score the replies,
//! and reports (human, JSON, self-contained HTML).
//!
//! A library: it never prints and never exits; `assay-cli` does.
#![forbid(unsafe_code)]

pub mod detect;
#[cfg(feature = "local-model")]
pub mod local;
pub mod mock;
pub mod mutate;
pub mod openai;
pub mod refusal;
pub mod report;
pub mod runner;
pub mod suite;
