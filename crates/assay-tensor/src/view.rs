//! The tensor view: what every reader produces.

use crate::dtype::{Dtype, Endian, decode_f32};
use std::ops::Range;
use std::sync::Arc;

/// The file format a [`TensorFile`] was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TensorFormat {
    Safetensors,
    /// `torch.save` zip archive (`archive/data.pkl` + `archive/data/<key>`).
    PytorchZip,
    /// Legacy (non-zip) `torch.save`: pickles, then the storages.
    PytorchLegacy,
    Gguf,
    Onnx,
    Npy,
    Npz,
    /// NumPy arrays inside a pickle: joblib inline arrays, or `_reconstruct` + `BUILD`.
    PickleNumpy,
    /// HDF5 datasets (Keras `.h5` and `.weights.h5`, Transformers `tf_model.h5`).
    Hdf5,
    /// A Keras 3 `.keras` archive: the datasets of its `model.weights.h5`.
    Keras,
}

impl TensorFormat {
    pub fn name(self) -> &'static str {
        match self {
            TensorFormat::Safetensors => "safetensors",
            TensorFormat::PytorchZip => "pytorch-zip",
            TensorFormat::PytorchLegacy => "pytorch-legacy",
            TensorFormat::Gguf => "gguf",
            TensorFormat::Onnx => "onnx",
            TensorFormat::Npy => "numpy-npy",
            TensorFormat::Npz => "numpy-npz",
            TensorFormat::PickleNumpy => "pickled-numpy",
            TensorFormat::Hdf5 => "hdf5",
            TensorFormat::Keras => "keras",
        }
    }
}

/// A tensor's bytes: borrowed from the caller's buffer (a memory map) wherever the format
/// stores them plainly; shared and owned only when they had to be decoded (a compressed
/// zip member, ONNX varint-encoded fields).
#[derive(Debug, Clone)]
pub enum Bytes<'a> {
    Borrowed(&'a [u8]),
    Shared(Arc<[u8]>, Range<usize>),
}

impl Bytes<'_> {
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Borrowed(b) => b,
            Bytes::Shared(a, r) => a.get(r.clone()).unwrap_or(&[]),
        }
    }
    /// True when the bytes are the caller's own (no copy was made).
    pub fn is_borrowed(&self) -> bool {
        matches!(self, Bytes::Borrowed(_))
    }
}

/// One tensor of a file.
///
/// `data` holds the bytes the tensor spans: for a contiguous tensor exactly
/// `numel × element size` bytes, for a strided one (a PyTorch view) everything from its
/// first to its last element. Element `[i, j, …]` starts at byte
/// `(i·strides[0] + j·strides[1] + …) × element size` of `data`.
#[derive(Debug, Clone)]
pub struct Tensor<'a> {
    /// The name the format gives it (`model.layers.0.mlp.up_proj.weight`); for PyTorch
    /// the key path in the pickled object, or `<tensor N>` when it has none.
    pub name: String,
    pub dtype: Dtype,
    pub endian: Endian,
    /// Row-major shape, outermost dimension first (GGUF's `ne` order is reversed to this).
    pub shape: Vec<u64>,
    /// Strides in elements, one per dimension. For quantised types: row-major over
    /// elements, meaningful only for the contiguous layout.
    pub strides: Vec<u64>,
    pub data: Bytes<'a>,
    /// Where `data` lies: a byte range of the scanned buffer when `member` is `None`,
    /// otherwise of that container member or external file (its bytes, after
    /// decompression).
    pub range: Range<u64>,
    pub member: Option<String>,
}

/// Row-major strides for `shape`, in elements; `None` on overflow.
pub fn contiguous_strides(shape: &[u64]) -> Option<Vec<u64>> {
    let mut strides = vec![0u64; shape.len()];
    let mut acc = 1u64;
    for i in (0..shape.len()).rev() {
        strides[i] = acc;
        acc = acc.checked_mul(shape[i].max(1))?;
    }
    Some(strides)
}

/// Elements of a shape; `None` on overflow.
pub fn numel(shape: &[u64]) -> Option<u64> {
    shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d))
}

/// Elements decoded per batch by [`Tensor::for_each_f32`].
const BATCH: usize = 4096;

/// Why values could not be read as `f32`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("{0} elements cannot be converted to f32 (complex, packed or quantised)")]
    NotNumeric(&'static str),
    #[error("the tensor's extent does not fit its bytes")]
    OutOfRange,
    #[error("more than {0} elements")]
    TooLarge(u64),
}

impl<'a> Tensor<'a> {
    pub fn bytes(&self) -> &[u8] {
        self.data.as_slice()
    }

    /// Number of elements (product of the shape).
    pub fn numel(&self) -> u64 {
        numel(&self.shape).unwrap_or(0)
    }

    /// Row-major contiguous (no gaps, no reordering). Size-1 dimensions are ignored.
    pub fn is_contiguous(&self) -> bool {
        let Some(c) = contiguous_strides(&self.shape) else {
            return false;
        };
        self.shape
            .iter()
            .zip(c.iter().zip(&self.strides))
            .all(|(&d, (a, b))| d <= 1 || a == b)
    }

    /// The tensor's bytes in row-major order, when it is contiguous and they are exactly
    /// `numel × element size` long (what a converter writes to safetensors as is, after
    /// byte-swapping if [`Tensor::endian`] is big).
    pub fn contiguous_bytes(&self) -> Option<&[u8]> {
        let want = self.dtype.bytes_for(self.numel())?;
        (self.is_contiguous() && self.bytes().len() as u64 == want).then(|| self.bytes())
    }

    /// Calls `f` with the tensor's values as `f32`, in row-major order, in batches of at
    /// most 4096 (no copy of the whole tensor). Floats of every width, integers and bool
    /// convert; complex, packed and quantised types are refused. It visits
    /// [`Tensor::numel`] elements: a stride-0 (broadcast) view can have far more elements
    /// than bytes, so callers bound `numel()` first.
    pub fn for_each_f32(&self, mut f: impl FnMut(&[f32])) -> Result<(), ValueError> {
        if !self.dtype.is_numeric() {
            return Err(ValueError::NotNumeric(self.dtype.name()));
        }
        let size = self.dtype.size().unwrap_or(1);
        let mut buf = [0f32; BATCH];
        if let Some(bytes) = self.contiguous_bytes() {
            for chunk in bytes.chunks(BATCH * size) {
                let n = decode_f32(self.dtype, self.endian, chunk, &mut buf);
                f(&buf[..n]);
            }
            return Ok(());
        }
        // Strided: walk the index space, odometer style.
        let n = self.numel();
        if n == 0 {
            return Ok(());
        }
        let bytes = self.bytes();
        let rank = self.shape.len();
        let mut idx = vec![0u64; rank];
        let mut filled = 0;
        for _ in 0..n {
            let mut off = 0u64;
            for (i, s) in idx.iter().zip(&self.strides) {
                off = i
                    .checked_mul(*s)
                    .and_then(|x| x.checked_add(off))
                    .ok_or(ValueError::OutOfRange)?;
            }
            let at = off
                .checked_mul(size as u64)
                .and_then(|a| usize::try_from(a).ok())
                .ok_or(ValueError::OutOfRange)?;
            let el = bytes.get(at..at + size).ok_or(ValueError::OutOfRange)?;
            buf[filled] = crate::dtype::decode_one(self.dtype, self.endian, el)
                .ok_or(ValueError::NotNumeric(self.dtype.name()))?;
            filled += 1;
            if filled == BATCH {
                f(&buf);
                filled = 0;
            }
            for d in (0..rank).rev() {
                idx[d] += 1;
                if idx[d] < self.shape[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
        if filled > 0 {
            f(&buf[..filled]);
        }
        Ok(())
    }

    /// All values as `f32` in row-major order, refusing tensors of more than
    /// `max_elements` (the caller bounds memory).
    pub fn to_f32_vec(&self, max_elements: u64) -> Result<Vec<f32>, ValueError> {
        let n = self.numel();
        if n > max_elements {
            return Err(ValueError::TooLarge(max_elements));
        }
        let mut out = Vec::with_capacity(n as usize);
        self.for_each_f32(|b| out.extend_from_slice(b))?;
        Ok(out)
    }
}

/// Bytes inside a file's weight area that no tensor covers: a gap or tail of a PyTorch
/// storage, or what follows the last storage of a legacy checkpoint. (Gaps and trailing
/// bytes of safetensors and GGUF are reported by their own header parsers.)
#[derive(Debug, Clone)]
pub struct Unclaimed<'a> {
    pub data: Bytes<'a>,
    pub range: Range<u64>,
    pub member: Option<String>,
    /// What the bytes are, in words: `"storage 3 bytes 96..128 not used by any tensor"`.
    pub what: String,
    /// After the last storage of a legacy checkpoint: the writer never puts bytes there
    /// (a storage's unused part, by contrast, is what `torch.save` writes for a view).
    pub trailing: bool,
}

/// A tensor (or a part of the file) the view could not describe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub tensor: Option<String>,
    pub member: Option<String>,
    pub message: String,
}

/// Another name of a tensor of the file: a PyTorch pickle that holds one tensor object
/// under several keys (`{"a": t, "b": t}`), which `torch.load` returns under each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    pub name: String,
    /// The name of the tensor in [`TensorFile::tensors`].
    pub tensor: String,
}

/// Every tensor of one file.
#[derive(Debug, Clone)]
pub struct TensorFile<'a> {
    pub format: TensorFormat,
    pub tensors: Vec<Tensor<'a>>,
    /// Further names of tensors of [`TensorFile::tensors`] (each tensor is listed once
    /// there, so that its bytes are analysed once).
    pub aliases: Vec<Alias>,
    pub unclaimed: Vec<Unclaimed<'a>>,
    pub problems: Vec<Problem>,
}

impl<'a> TensorFile<'a> {
    pub(crate) fn new(format: TensorFormat) -> Self {
        TensorFile {
            format,
            tensors: Vec::new(),
            aliases: Vec::new(),
            unclaimed: Vec::new(),
            problems: Vec::new(),
        }
    }

    pub(crate) fn problem(
        &mut self,
        tensor: Option<&str>,
        member: Option<&str>,
        message: impl Into<String>,
    ) {
        if self.problems.len() < crate::read::MAX_PROBLEMS {
            self.problems.push(Problem {
                tensor: tensor.map(str::to_string),
                member: member.map(str::to_string),
                message: message.into(),
            });
        }
    }

    /// The tensor named `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor<'a>> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// Every tensor under every name it has, as `torch.load` would return them:
    /// [`TensorFile::tensors`], then each aliased tensor again under its alias (the
    /// copies share the bytes).
    pub fn named_tensors(&self) -> Vec<Tensor<'a>> {
        let mut out = self.tensors.clone();
        for a in &self.aliases {
            if let Some(t) = self.get(&a.tensor) {
                let mut t = t.clone();
                t.name = a.name.clone();
                out.push(t);
            }
        }
        out
    }
}
