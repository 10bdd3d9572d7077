//! Parsers for untrusted model-file bytes. Each one is bounded (named `MAX_*` limits and
//! `*Limits` structs), never panics on hostile input, never executes anything, and turns
//! what it cannot parse into an error value for the scanner to report.
//!
//! - [`sniff`]: what a file is, from its bytes.
//! - [`pickle`]: the symbolic unpickler.
//! - [`zip`], [`tar`], [`compress`]: containers and compressors.
//! - [`npy`]: NumPy array headers.
#![forbid(unsafe_code)]

pub mod compress;
pub mod npy;
pub mod pickle;
pub mod sniff;
pub mod tar;
pub mod zip;
