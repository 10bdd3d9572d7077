//! One tensor view over every format that holds weights: safetensors, PyTorch zip and
//! legacy checkpoints, GGUF (quantised types as raw blocks), ONNX initializers (inline,
//! typed and external) and NumPy `.npy`/`.npz`. Zero-copy over the caller's bytes (a
//! memory map): a [`Tensor`] borrows its data wherever the format stores it plainly.
//! Nothing is executed; PyTorch pickles are read by the symbolic unpickler.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let bytes = std::fs::read("model.safetensors")?;
//! let file = assay_tensor::read(&bytes, &assay_tensor::ReadLimits::default())?;
//! for t in &file.tensors {
//!     // For diff: every numeric dtype (f64/f32/f16/bf16/fp8, ints, bool) as f32,
//!     // row-major, streamed in batches (strided PyTorch views included).
//!     let mut sum = 0.0f64;
//!     t.for_each_f32(|batch| sum += batch.iter().map(|&x| f64::from(x)).sum::<f64>())?;
//!     // For convert: raw little-endian row-major bytes + dtype + shape, when contiguous.
//!     if let Some(raw) = t.contiguous_bytes() {
//!         println!("{} {} {:?} {} bytes, sum {sum}", t.name, t.dtype.name(), t.shape, raw.len());
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! - [`read`] / [`read_as`] / [`detect`]: a [`TensorFile`] (tensors, [`Unclaimed`] bytes
//!   inside the weight area, and [`Problem`]s: tensors that could not be described).
//! - [`read_as_unpickled`]: the same over symbolic-unpickler analyses the caller already
//!   ran ([`Unpickled`]), so that a pickle is never analysed twice (Assay's scanner).
//! - [`Tensor`]: name, [`Dtype`], [`Endian`], shape, strides (elements), bytes, and where
//!   the bytes are (`range` in the file or in `member`).
//! - [`stats`] and [`payload`]: the numeric statistics, hidden-payload search and
//!   windowed region statistics that Assay's `tensor` and `backdoor` scan stages run.
#![forbid(unsafe_code)]

pub mod convert;
pub mod diff;
mod dtype;
pub mod payload;
mod read;
pub mod stats;
mod view;

pub use dtype::{Dtype, Endian, bf16_to_f32, decode_f32, decode_one, f16_to_f32};
pub use read::{
    ExternalData, MAX_PROBLEMS, MemberAnalysis, ReadError, ReadLimits, Unpickled, detect,
    onnx_external_locations, read, read_as, read_as_unpickled, read_pickled_arrays,
};
pub use view::{
    Alias, Bytes, Problem, Tensor, TensorFile, TensorFormat, Unclaimed, ValueError,
    contiguous_strides, numel,
};
