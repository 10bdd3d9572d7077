//! Readers: one per format, each producing a [`TensorFile`] over the caller's bytes.
//! They reuse the header parsers of `assay-formats` (parsed once per call) and only
//! locate tensor bytes; no element is read here.

mod gguf;
mod hdf5;
mod npy;
mod onnx;
mod pickle_numpy;

pub use pickle_numpy::read_arrays as read_pickled_arrays;

pub use onnx::external_locations as onnx_external_locations;
mod safetensors;
mod torch;

use crate::view::{Bytes, TensorFile, TensorFormat};
use assay_formats::pickle::PickleAnalysis;
use assay_formats::sniff::{Sniffed, sniff};
use assay_formats::zip::{self, ZipEntry};
use std::ops::Range;
use std::sync::Arc;

/// Problems recorded per file; the rest are dropped.
pub const MAX_PROBLEMS: usize = 1_000;

/// Bounds on one read.
#[derive(Debug, Clone)]
pub struct ReadLimits {
    /// Tensors described per file.
    pub max_tensors: usize,
    /// Bytes that may be produced by decompressing members (compressed `.npz`, deflated
    /// PyTorch storages) or decoding ONNX varint fields, per file.
    pub max_decoded: u64,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            max_tensors: 1 << 20,
            max_decoded: 1 << 30,
        }
    }
}

/// Why a file could not be read at all (single tensors that cannot be described are
/// [`crate::Problem`]s instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("not a tensor file that assay-tensor reads")]
    NotTensorFile,
    #[error("{0}")]
    Malformed(String),
    /// The file is well-formed but holds no tensor data this view reads (a NumPy object,
    /// string or structured array).
    #[error("{0}")]
    Unsupported(String),
    #[error("more than {0} tensors")]
    TooManyTensors(usize),
}

/// Resolves ONNX external-data locations to bytes. The caller decides what may be read
/// (Assay's scanner only opens regular files inside the scanned folder); the reader
/// itself already refuses absolute locations and any `..` component.
pub trait ExternalData<'a> {
    fn get(&self, location: &str) -> Option<&'a [u8]>;
}

/// The tensor format of `data`, recognised by its bytes.
pub fn detect(data: &[u8]) -> Option<TensorFormat> {
    match sniff(data) {
        Sniffed::Safetensors => Some(TensorFormat::Safetensors),
        Sniffed::Gguf => Some(TensorFormat::Gguf),
        Sniffed::Onnx => Some(TensorFormat::Onnx),
        Sniffed::Npy => Some(TensorFormat::Npy),
        Sniffed::Hdf5 => Some(TensorFormat::Hdf5),
        Sniffed::Pickle | Sniffed::MaybePickle if data.starts_with(torch::LEGACY_MAGIC) => {
            Some(TensorFormat::PytorchLegacy)
        }
        Sniffed::Zip => {
            let ar = zip::parse(data, &zip::ZipLimits::default()).ok()?;
            if torch::find_data_pkl(&ar.entries).is_some() {
                Some(TensorFormat::PytorchZip)
            } else if ar.entries.iter().any(|e| hdf5::is_keras_weights(&e.name)) {
                Some(TensorFormat::Keras)
            } else if !ar.entries.is_empty() && ar.entries.iter().all(|e| e.name.ends_with(".npy"))
            {
                Some(TensorFormat::Npz)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Reads every tensor of `data`, whose format is recognised by its bytes. ONNX external
/// data is not followed (see [`read_as`]).
pub fn read<'a>(data: &'a [u8], limits: &ReadLimits) -> Result<TensorFile<'a>, ReadError> {
    let format = detect(data).ok_or(ReadError::NotTensorFile)?;
    read_as(format, data, limits, None)
}

/// Reads every tensor of `data` as `format`. `external` resolves ONNX external-data
/// locations; without it such tensors become problems. Pickles (a PyTorch checkpoint's,
/// pickled NumPy arrays) are analysed here by the symbolic unpickler; a caller that has
/// already analysed them passes its analyses to [`read_as_unpickled`] instead.
pub fn read_as<'a>(
    format: TensorFormat,
    data: &'a [u8],
    limits: &ReadLimits,
    external: Option<&dyn ExternalData<'a>>,
) -> Result<TensorFile<'a>, ReadError> {
    read_as_unpickled(format, data, limits, external, &Unpickled::default())
}

/// What the symbolic unpickler ([`assay_formats::pickle::analyze`] with the caller's limits) already
/// found in the bytes handed to [`read_as_unpickled`], so that the reader does not
/// unpickle them a second time. Whatever is `None` or missing is analysed by the reader.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unpickled<'k> {
    /// The analysis of the whole of `data`: a legacy PyTorch checkpoint (its fourth
    /// pickle is found in [`PickleAnalysis::parts`]) or a pickle of NumPy arrays.
    pub whole: Option<&'k PickleAnalysis>,
    /// Analyses of members of a zip `data`: a PyTorch checkpoint's `data.pkl`.
    pub members: &'k [MemberAnalysis],
}

/// The analysis of one zip member's complete bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberAnalysis {
    /// The member's name and the offset of its local header ([`ZipEntry::local_offset`]),
    /// which tell apart members of the same name.
    pub name: String,
    pub local_offset: u64,
    pub analysis: PickleAnalysis,
}

impl<'k> Unpickled<'k> {
    fn member(&self, e: &ZipEntry) -> Option<&'k PickleAnalysis> {
        self.members
            .iter()
            .find(|m| m.name == e.name && m.local_offset == e.local_offset)
            .map(|m| &m.analysis)
    }
}

/// [`read_as`] over analyses the caller already has (see [`Unpickled`]): the result is
/// the same as [`read_as`]'s when they are the analyses of the same bytes.
pub fn read_as_unpickled<'a>(
    format: TensorFormat,
    data: &'a [u8],
    limits: &ReadLimits,
    external: Option<&dyn ExternalData<'a>>,
    known: &Unpickled,
) -> Result<TensorFile<'a>, ReadError> {
    let mut budget = limits.max_decoded;
    let file = match format {
        TensorFormat::Safetensors => safetensors::read(data, limits)?,
        TensorFormat::Gguf => gguf::read(data, limits)?,
        TensorFormat::Npy => npy::read_npy(data, limits)?,
        TensorFormat::Npz => npy::read_npz(data, limits, &mut budget)?,
        TensorFormat::Onnx => onnx::read(data, limits, external, &mut budget)?,
        TensorFormat::PytorchZip => torch::read_zip(data, limits, &mut budget, known)?,
        TensorFormat::PytorchLegacy => torch::read_legacy(data, limits, known.whole)?,
        TensorFormat::PickleNumpy => match known.whole {
            Some(a) => pickle_numpy::read_arrays(data, &a.numpy_arrays, limits)?,
            None => pickle_numpy::read(data, limits)?,
        },
        TensorFormat::Hdf5 => hdf5::read(data, limits)?,
        TensorFormat::Keras => hdf5::read_keras(data, limits, &mut budget)?,
    };
    Ok(file)
}

/// Bytes of a buffer that is either the caller's or decoded here.
#[derive(Debug, Clone)]
pub(crate) enum Source<'a> {
    Borrowed(&'a [u8]),
    Shared(Arc<[u8]>),
}

impl<'a> Source<'a> {
    pub fn all(&self) -> &[u8] {
        match self {
            Source::Borrowed(b) => b,
            Source::Shared(a) => a,
        }
    }

    pub fn len(&self) -> u64 {
        self.all().len() as u64
    }

    /// The bytes `r`, when inside the buffer.
    pub fn sub(&self, r: Range<u64>) -> Option<Bytes<'a>> {
        let s = usize::try_from(r.start).ok()?;
        let e = usize::try_from(r.end).ok()?;
        if s > e || e > self.all().len() {
            return None;
        }
        Some(match self {
            Source::Borrowed(b) => Bytes::Borrowed(&b[s..e]),
            Source::Shared(a) => Bytes::Shared(a.clone(), s..e),
        })
    }
}

/// A zip member's bytes: borrowed when stored, decompressed within `budget` otherwise.
pub(crate) fn member<'a>(
    data: &'a [u8],
    e: &ZipEntry,
    budget: &mut u64,
) -> Result<Source<'a>, String> {
    if let Some(r) = zip::stored_data(data, e) {
        return r.map(Source::Borrowed).map_err(|err| err.to_string());
    }
    let mut out = Vec::new();
    let n = zip::extract_to(data, e, &mut out, *budget).map_err(|err| err.to_string())?;
    *budget = budget.saturating_sub(n);
    Ok(Source::Shared(out.into()))
}

/// Checks that a zip member can be read, and charges `budget` for it, exactly as
/// [`member`] would, without keeping its bytes (a member whose analysis the caller has).
pub(crate) fn check_member(data: &[u8], e: &ZipEntry, budget: &mut u64) -> Result<(), String> {
    if let Some(r) = zip::stored_data(data, e) {
        return r.map(|_| ()).map_err(|err| err.to_string());
    }
    let n = zip::extract_to(data, e, std::io::sink(), *budget).map_err(|err| err.to_string())?;
    *budget = budget.saturating_sub(n);
    Ok(())
}

/// Offset of `inner` within `outer` (both from the same buffer).
pub(crate) fn offset_in(outer: &[u8], inner: &[u8]) -> u64 {
    (inner.as_ptr() as usize).wrapping_sub(outer.as_ptr() as usize) as u64
}
