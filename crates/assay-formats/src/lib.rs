//! Parsers for untrusted model-file bytes. Each one is bounded (named `MAX_*` limits and
//! `*Limits` structs), never panics on hostile input, never executes anything, and turns
//! what it cannot parse into an error value for the scanner to report.
//!
//! - [`sniff`]: what a file is, from its bytes.
//! - [`pickle`]: the symbolic unpickler.
//! - [`zip`], [`tar`], [`compress`]: containers and compressors.
//! - [`npy`]: NumPy array headers.
//! - [`safetensors`], [`gguf`]: tensor-file headers, checked without reading tensor data.
//! - [`keras`], [`hdf5`]: Keras configurations and the HDF5 attributes of legacy `.h5` models.
//! - [`onnx`], [`savedmodel`]: ONNX and TensorFlow protobufs, over the [`protobuf`] wire walker.
#![forbid(unsafe_code)]

pub mod compress;
pub mod gguf;
pub mod hdf5;
pub mod keras;
pub mod npy;
pub mod onnx;
pub mod pickle;
pub mod safetensors;
pub mod protobuf;
pub mod savedmodel;
pub mod sniff;
pub mod tar;
pub mod zip;
