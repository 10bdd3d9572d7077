//! A symbolic unpickler: it walks a pickle stream the way CPython's C unpickler does —
//! stack, marks (with CPython's fence semantics), memo, frames, every opcode of
//! protocols 0–5 — but instead of importing and calling anything it records *what
//! would be imported and called, with which arguments*.
//!
//! The result, [`PickleAnalysis`], is a typed model for the rules in `assay-scan` to
//! judge. Nothing here decides what is dangerous; it only makes sure that what Python
//! would run is exactly what the rules see.

mod compat;
mod decode;
mod machine;
pub mod opcodes;
mod render;
mod torch;
mod value;

pub use machine::{AnalysedStream, PickleLimits, analyze, analyze_one, trace_analyses};

/// A callable as the unpickler would resolve it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Callable {
    /// `module.name` after Python 2 → 3 import fix-ups (protocol < 3).
    /// `name` may be dotted (`os.system` under module `pathlib`).
    Global { module: String, name: String },
    /// The callable is itself the result of an earlier call or an attribute fetched at
    /// load time, or a name computed at load time — it cannot be named statically.
    Dynamic(String),
    /// An `EXT1/2/4` code from the copyreg extension registry.
    Extension(u32),
}

impl Callable {
    pub fn qualified(&self) -> String {
        match self {
            Callable::Global { module, name } => format!("{module}.{name}"),
            Callable::Dynamic(d) => d.clone(),
            Callable::Extension(c) => format!("<extension code {c}>"),
        }
    }
}

/// How the callable was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallKind {
    /// `REDUCE`: `callable(*args)`.
    Reduce,
    /// `INST` / `OBJ`: `klass(*args)` or `klass.__new__(klass)`.
    Instantiate,
    /// `NEWOBJ` / `NEWOBJ_EX`: `cls.__new__(cls, *args, **kwargs)`.
    NewObj,
    /// A class handed to a `copyreg` reconstructor or another rebuild helper, to be
    /// instantiated by it.
    Reconstruct,
    /// A callable handed to an allowlisted higher-order rebuild helper that calls it
    /// (e.g. `torch._tensor._rebuild_from_type_v2(func, …)`).
    Indirect,
}

/// One call (or instantiation) that loading the pickle performs.
#[derive(Debug, Clone, PartialEq)]
pub struct PickleCall {
    /// Offset of the opcode that performs the call.
    pub offset: u64,
    pub kind: CallKind,
    pub callable: Callable,
    /// Python-like rendering of the call with its arguments, bounded in length.
    pub evidence: String,
    /// No positional or keyword arguments (an instance built for its state only).
    pub no_args: bool,
    /// Constant strings among the arguments (URLs, hosts, commands), for the network rules.
    pub string_args: Vec<String>,
}

/// A global that is named (imported) by the pickle, whether or not it is called.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalRef {
    pub offset: u64,
    pub module: String,
    pub name: String,
    /// The opcode that named it (`GLOBAL`, `STACK_GLOBAL`, `INST`).
    pub opcode: &'static str,
}

/// Bytes handed to a deserializer at load time, decoded as far as static evaluation
/// allows; the engine scans them as a nested artifact.
#[derive(Debug, Clone, PartialEq)]
pub struct NestedPayload {
    pub offset: u64,
    /// The loader it is handed to, e.g. `pickle.loads`.
    pub loader: String,
    pub data: Vec<u8>,
}

/// Something structurally wrong or suspicious about the stream itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Anomaly {
    pub offset: u64,
    pub kind: AnomalyKind,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnomalyKind {
    /// The stream is not a valid pickle at this point (CPython would raise).
    Malformed,
    /// The stream ended before `STOP`.
    Truncated,
    /// An opcode whose argument runs past the declared `FRAME` (CPython's C and Python
    /// unpicklers disagree), or a frame that starts inside another one.
    FrameViolation,
    /// Bytes after the last `STOP` that are not another pickle.
    TrailingData,
    /// A second (third, …) pickle follows the first in the same stream.
    Concatenated,
    /// `BUILD` applied to a class, function or module: it overwrites attributes.
    BuildOnGlobal,
    /// `BUILD` state that sets dunder attributes such as `__reduce__` or `__setstate__`.
    DunderState,
    /// A limit was reached; the rest of the stream was not analysed.
    LimitReached,
    /// Out-of-band buffers (`NEXT_BUFFER`), which need a `buffers=` argument to load.
    OutOfBandBuffer,
    /// A joblib array wrapper whose inline data could not be located.
    JoblibArray,
    /// A global name or attribute name computed at load time by a pure function.
    ComputedName,
}

/// A persistent id (`PERSID` / `BINPERSID`), e.g. a torch storage reference.
#[derive(Debug, Clone, PartialEq)]
pub struct PersistentRef {
    pub offset: u64,
    /// Rendered id, e.g. `('storage', torch.FloatStorage, '0', 'cpu', 6)`.
    pub rendered: String,
    /// For torch-style storage ids, the storage key (`'0'` → member `data/0`).
    pub storage_key: Option<String>,
    pub is_torch_storage: bool,
}

/// A PyTorch storage named by a persistent id `('storage', StorageType, key, location,
/// numel[, view_metadata])`: `data/<key>` in a zip checkpoint, or the storage of that key
/// after the pickles of a legacy `torch.save` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorchStorageRef {
    pub key: String,
    /// The storage class name without its module: `FloatStorage`, `UntypedStorage`, …
    pub storage_type: String,
    pub location: String,
    /// Elements of the storage type as declared (bytes for `UntypedStorage`).
    pub numel: Option<u64>,
    /// Legacy storage views `(view_key, offset, size)`: the offset in elements.
    pub view_offset: Option<u64>,
}

/// A tensor that loading would rebuild from a storage:
/// `torch._utils._rebuild_tensor{,_v2,_v3}(storage, storage_offset, size, stride, …)`,
/// possibly wrapped in `_rebuild_parameter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorchTensorRef {
    /// Offset of the opcode that performs the rebuild call.
    pub offset: u64,
    /// Where the tensor sits in the unpickled object, keys joined by `.`
    /// (`layers.0.weight`); `None` when it is not reachable by keys.
    pub name: Option<String>,
    /// Other key paths that reach the same tensor object (the pickle memo shares it, e.g.
    /// `{"a": t, "b": t}`): `torch.load` gives it under each of them.
    pub aliases: Vec<String>,
    /// Index into [`PickleAnalysis::torch_storages`].
    pub storage: usize,
    /// The explicit dtype of `_rebuild_tensor_v3` (`float32`, `uint16`, …); otherwise the
    /// dtype follows from the storage type.
    pub dtype: Option<String>,
    /// In elements.
    pub storage_offset: u64,
    pub size: Vec<u64>,
    /// In elements.
    pub stride: Vec<u64>,
}

/// Numeric numpy arrays described per stream; further ones are left undescribed (and
/// count as unread array data).
pub const MAX_NUMPY_ARRAYS: usize = 1 << 16;

/// A numeric numpy array whose raw bytes lie in the stream: a joblib inline array, or
/// `numpy.core.multiarray._reconstruct` + `BUILD` with a bytes state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumpyArrayRef {
    /// Offset of the `BUILD` opcode.
    pub offset: u64,
    /// Key path in the unpickled object (as for [`TorchTensorRef::name`]).
    pub name: Option<String>,
    pub aliases: Vec<String>,
    /// numpy dtype string with byte order (`<f4`, `|u1`, `>f8`).
    pub dtype: String,
    pub shape: Vec<u64>,
    pub fortran_order: bool,
    /// The array's bytes in the stream: (offset, length).
    pub data: (u64, u64),
}

/// Everything the symbolic unpickler learned about one stream (all its concatenated
/// pickles).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PickleAnalysis {
    /// Highest `PROTO` seen (0 when none).
    pub protocol: u8,
    /// Number of complete pickles (each ended by `STOP`).
    pub pickles: u32,
    pub opcodes: u64,
    /// Bytes copied or decompressed while evaluating loader arguments statically
    /// (bounded by the stream's own size plus `PickleLimits::max_decoded`).
    pub decoded: u64,
    pub globals: Vec<GlobalRef>,
    pub calls: Vec<PickleCall>,
    pub nested: Vec<NestedPayload>,
    pub anomalies: Vec<Anomaly>,
    pub persistent: Vec<PersistentRef>,
    /// `EXT` codes used.
    pub extensions: Vec<(u64, u32)>,
    /// Where analysis stopped (end of the last pickle, or of the stream).
    pub end: u64,
    /// Bytes skipped as joblib inline array data: (offset, length).
    pub inline_arrays: Vec<(u64, u64)>,
    /// PyTorch storages named by persistent ids, in the order they appear.
    pub torch_storages: Vec<TorchStorageRef>,
    /// Tensors rebuilt from those storages (for reading weights; judging ignores them).
    pub torch_tensors: Vec<TorchTensorRef>,
    /// joblib object arrays (nested pickles, analysed as such): (offset, length).
    pub object_arrays: Vec<(u64, u64)>,
    /// Numeric numpy arrays whose bytes lie in the stream (at most [`MAX_NUMPY_ARRAYS`]).
    pub numpy_arrays: Vec<NumpyArrayRef>,
    /// Each complete pickle of the stream, in order, with the torch storages and tensors
    /// it rebuilt: a reader that loads only one of the pickles (the fourth of a legacy
    /// `torch.save` file) takes its part of this analysis instead of running again.
    pub parts: Vec<PicklePart>,
}

/// One complete pickle of a stream (see [`PickleAnalysis::parts`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PicklePart {
    /// Offset of its first opcode.
    pub start: u64,
    /// Offset just after its `STOP`.
    pub end: u64,
    /// Indices into [`PickleAnalysis::torch_storages`] of the storages it named (a
    /// pickle's tensors only reference its own storages).
    pub torch_storages: std::ops::Range<usize>,
    /// Indices into [`PickleAnalysis::torch_tensors`] of the tensors it rebuilt.
    pub torch_tensors: std::ops::Range<usize>,
}

impl PickleAnalysis {
    /// True when the stream held at least one global, call or extension: the mark of a
    /// real pickle (used to tell protocol-0/1 pickles from text that happens to start
    /// with an opcode byte).
    pub fn names_anything(&self) -> bool {
        !self.globals.is_empty() || !self.calls.is_empty() || !self.extensions.is_empty()
    }

    pub fn has_anomaly(&self, kind: AnomalyKind) -> bool {
        self.anomalies.iter().any(|a| a.kind == kind)
    }
}

#[cfg(test)]
mod tests;
