//! GGUF (llama.cpp, versions 1 to 3, either byte order): the header, the metadata
//! key/value pairs and the tensor infos, checked the way llama.cpp's `gguf_init_from_file`
//! checks them, and beyond (gaps, trailing bytes, non-zero padding).
//!
//! Every count and length is checked against the bytes left in the file before anything
//! is allocated: each entry needs at least a known number of bytes, so a count larger than
//! `remaining / that` is a lie. Strings and arrays are not copied: values borrow from the
//! input. Tensor data is never read, only the padding between tensors (bounded by
//! [`MAX_PADDING_CHECKED`]).

use std::collections::HashSet;

pub const MAGIC: &[u8; 4] = b"GGUF";
/// Tensor infos in one file (real models have at most tens of thousands).
pub const MAX_TENSORS: u64 = 1 << 20;
/// Metadata pairs in one file (a tokenizer vocabulary is one pair holding an array).
pub const MAX_KV: u64 = 1 << 20;
/// One string: keys, names, chat templates.
pub const MAX_STRING: u64 = 256 << 20;
/// Arrays inside arrays (llama.cpp itself refuses any nesting).
pub const MAX_ARRAY_DEPTH: u32 = 4;
/// `GGML_MAX_DIMS`.
pub const MAX_DIMS: u32 = 4;
/// `GGML_MAX_NAME`: a tensor name must be shorter than this.
pub const MAX_NAME: usize = 64;
/// `GGUF_DEFAULT_ALIGNMENT`.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Alignments above this make padding a hiding place of megabytes.
pub const MAX_SANE_ALIGNMENT: u64 = 1 << 16;
/// Padding bytes read to check they are zero, over the whole file.
pub const MAX_PADDING_CHECKED: u64 = 16 << 20;
/// Problems recorded per file; past this, one [`Issue::TooManyIssues`] stands for the rest.
pub const MAX_ISSUES: usize = 1_000;

/// Metadata value types (`gguf_type`).
pub mod value_type {
    pub const UINT8: u32 = 0;
    pub const INT8: u32 = 1;
    pub const UINT16: u32 = 2;
    pub const INT16: u32 = 3;
    pub const UINT32: u32 = 4;
    pub const INT32: u32 = 5;
    pub const FLOAT32: u32 = 6;
    pub const BOOL: u32 = 7;
    pub const STRING: u32 = 8;
    pub const ARRAY: u32 = 9;
    pub const UINT64: u32 = 10;
    pub const INT64: u32 = 11;
    pub const FLOAT64: u32 = 12;

    pub fn name(t: u32) -> Option<&'static str> {
        Some(match t {
            UINT8 => "uint8",
            INT8 => "int8",
            UINT16 => "uint16",
            INT16 => "int16",
            UINT32 => "uint32",
            INT32 => "int32",
            FLOAT32 => "float32",
            BOOL => "bool",
            STRING => "string",
            ARRAY => "array",
            UINT64 => "uint64",
            INT64 => "int64",
            FLOAT64 => "float64",
            _ => return None,
        })
    }

    /// Encoded size of a fixed-size value.
    pub fn fixed_size(t: u32) -> Option<u64> {
        Some(match t {
            UINT8 | INT8 | BOOL => 1,
            UINT16 | INT16 => 2,
            UINT32 | INT32 | FLOAT32 => 4,
            UINT64 | INT64 | FLOAT64 => 8,
            _ => return None,
        })
    }
}

/// A ggml tensor type: name, elements per block, bytes per block (`GGML_QUANT_SIZES`).
pub fn tensor_type(t: u32) -> Option<(&'static str, u64, u64)> {
    Some(match t {
        0 => ("F32", 1, 4),
        1 => ("F16", 1, 2),
        2 => ("Q4_0", 32, 18),
        3 => ("Q4_1", 32, 20),
        6 => ("Q5_0", 32, 22),
        7 => ("Q5_1", 32, 24),
        8 => ("Q8_0", 32, 34),
        9 => ("Q8_1", 32, 40),
        10 => ("Q2_K", 256, 84),
        11 => ("Q3_K", 256, 110),
        12 => ("Q4_K", 256, 144),
        13 => ("Q5_K", 256, 176),
        14 => ("Q6_K", 256, 210),
        15 => ("Q8_K", 256, 292),
        16 => ("IQ2_XXS", 256, 66),
        17 => ("IQ2_XS", 256, 74),
        18 => ("IQ3_XXS", 256, 98),
        19 => ("IQ1_S", 256, 50),
        20 => ("IQ4_NL", 32, 18),
        21 => ("IQ3_S", 256, 110),
        22 => ("IQ2_S", 256, 82),
        23 => ("IQ4_XS", 256, 136),
        24 => ("I8", 1, 1),
        25 => ("I16", 1, 2),
        26 => ("I32", 1, 4),
        27 => ("I64", 1, 8),
        28 => ("F64", 1, 8),
        29 => ("IQ1_M", 256, 56),
        30 => ("BF16", 1, 2),
        34 => ("TQ1_0", 256, 54),
        35 => ("TQ2_0", 256, 66),
        39 => ("MXFP4", 32, 17),
        40 => ("NVFP4", 64, 36),
        41 => ("Q1_0", 128, 18),
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endian {
    Little,
    Big,
}

/// One metadata value. Strings and arrays borrow from the file.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(u8),
    Str(&'a [u8]),
    Array(Array<'a>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl Value<'_> {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::U8(_) => "uint8",
            Value::I8(_) => "int8",
            Value::U16(_) => "uint16",
            Value::I16(_) => "int16",
            Value::U32(_) => "uint32",
            Value::I32(_) => "int32",
            Value::F32(_) => "float32",
            Value::Bool(_) => "bool",
            Value::Str(_) => "string",
            Value::Array(_) => "array",
            Value::U64(_) => "uint64",
            Value::I64(_) => "int64",
            Value::F64(_) => "float64",
        }
    }
}

/// An array value: its element type, length and encoded elements (already validated).
#[derive(Debug, Clone, PartialEq)]
pub struct Array<'a> {
    pub elem_type: u32,
    pub len: u64,
    /// The encoded elements.
    pub bytes: &'a [u8],
    /// File offset of `bytes`.
    pub offset: u64,
    version: u32,
    endian: Endian,
}

impl<'a> Array<'a> {
    /// The elements of a string array (nothing for other element types).
    pub fn strings(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        let mut r = Reader {
            data: self.bytes,
            pos: 0,
            base: self.offset,
            version: self.version,
            endian: self.endian,
        };
        let n = if self.elem_type == value_type::STRING {
            self.len
        } else {
            0
        };
        (0..n).map_while(move |_| r.string().ok())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Kv<'a> {
    pub key: String,
    /// File offset of the pair.
    pub offset: u64,
    pub value: Value<'a>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    pub dims: Vec<u64>,
    pub ggml_type: u32,
    /// Offset of the data, relative to the start of the data area.
    pub offset: u64,
    /// File offset of this tensor info.
    pub info_offset: u64,
}

/// Something wrong with a file whose structure could still be read. Offsets in
/// `OutOfBounds`, `Overlap`, `Gap`, `Trailing` and `Misaligned` are relative to
/// [`Gguf::data_start`].
#[derive(Debug, Clone, PartialEq)]
pub enum Issue {
    DuplicateKey {
        key: String,
    },
    DuplicateTensor {
        name: String,
    },
    /// Arrays of arrays: llama.cpp refuses them.
    NestedArray {
        key: String,
    },
    /// `general.alignment` that is not a power-of-two `uint32`, or is very large.
    BadAlignment {
        reason: String,
    },
    NameTooLong {
        name: String,
        len: usize,
    },
    TooManyDims {
        tensor: String,
        n_dims: u32,
    },
    UnknownTensorType {
        tensor: String,
        ggml_type: u32,
    },
    /// Dimensions that are negative as int64, overflow, or do not fill whole blocks.
    BadShape {
        tensor: String,
        reason: String,
    },
    Misaligned {
        tensor: String,
        offset: u64,
        alignment: u64,
    },
    OutOfBounds {
        tensor: String,
        begin: u64,
        end: u64,
        data_len: u64,
    },
    Overlap {
        first: String,
        second: String,
        at: u64,
    },
    /// Bytes no tensor covers beyond alignment padding.
    Gap {
        after: Option<String>,
        next: String,
        start: u64,
        len: u64,
    },
    /// Bytes after the last tensor and its padding.
    Trailing {
        start: u64,
        len: u64,
    },
    /// Padding that is not zero (file offset of the first non-zero byte).
    NonZeroPadding {
        at: u64,
        len: u64,
    },
    /// A key that is not UTF-8.
    KeyNotUtf8 {
        offset: u64,
    },
    TooManyIssues,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Gguf<'a> {
    pub version: u32,
    pub big_endian: bool,
    pub kvs: Vec<Kv<'a>>,
    pub tensors: Vec<TensorInfo>,
    /// The alignment the file declares (or the default).
    pub alignment: u64,
    /// File offset where tensor data begins.
    pub data_start: u64,
    pub data_len: u64,
    pub issues: Vec<Issue>,
}

impl<'a> Gguf<'a> {
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.kvs.iter().find(|kv| kv.key == key).map(|kv| &kv.value)
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GgufError {
    #[error("not a GGUF file (bad magic)")]
    BadMagic,
    #[error("unsupported GGUF version {0}")]
    UnsupportedVersion(u32),
    #[error("file ends inside {what} at offset {at}")]
    Truncated { what: &'static str, at: u64 },
    #[error("{what} count {count} at offset {at} is more than the file can hold (at most {max})")]
    CountTooLarge {
        what: &'static str,
        count: u64,
        max: u64,
        at: u64,
    },
    #[error("string of {len} bytes at offset {at} exceeds the file or the {MAX_STRING}-byte limit")]
    StringTooLong { len: u64, at: u64 },
    #[error("metadata {key:?} has unknown value type {ty} at offset {at}")]
    UnknownValueType { key: String, ty: u32, at: u64 },
    #[error("metadata {key:?} nests arrays deeper than {MAX_ARRAY_DEPTH} at offset {at}")]
    ArrayTooDeep { key: String, at: u64 },
    #[error("tensor info {index} has {n_dims} dimensions, more than the file can hold")]
    DimsTooLarge { index: u64, n_dims: u32 },
}

impl GgufError {
    /// File offset the error refers to, when there is one.
    pub fn offset(&self) -> Option<u64> {
        match self {
            GgufError::BadMagic | GgufError::UnsupportedVersion(_) => Some(0),
            GgufError::Truncated { at, .. }
            | GgufError::CountTooLarge { at, .. }
            | GgufError::StringTooLong { at, .. }
            | GgufError::UnknownValueType { at, .. }
            | GgufError::ArrayTooDeep { at, .. } => Some(*at),
            GgufError::DimsTooLarge { .. } => None,
        }
    }
}

/// True when `data` starts with the GGUF magic and a version this parser knows in either
/// byte order.
pub fn looks_like(data: &[u8]) -> bool {
    let Some(raw) = data.get(4..8).and_then(|s| <[u8; 4]>::try_from(s).ok()) else {
        return false;
    };
    data.starts_with(MAGIC)
        && ((1..=3).contains(&u32::from_le_bytes(raw))
            || (1..=3).contains(&u32::from_be_bytes(raw)))
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    /// File offset of `data[0]`.
    base: u64,
    version: u32,
    endian: Endian,
}

impl<'a> Reader<'a> {
    fn at(&self) -> u64 {
        self.base + self.pos as u64
    }
    fn remaining(&self) -> u64 {
        (self.data.len() - self.pos.min(self.data.len())) as u64
    }
    fn take(&mut self, n: u64, what: &'static str) -> Result<&'a [u8], GgufError> {
        let at = self.at();
        let end = usize::try_from(n)
            .ok()
            .and_then(|n| self.pos.checked_add(n))
            .filter(|&e| e <= self.data.len())
            .ok_or(GgufError::Truncated { what, at })?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], GgufError> {
        let s = self.take(N as u64, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        if self.endian == Endian::Big {
            a.reverse();
        }
        Ok(a)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, GgufError> {
        Ok(self.array::<1>(what)?[0])
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, GgufError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
    /// A count or length: `u32` in version 1, `u64` after.
    fn size(&mut self, what: &'static str) -> Result<u64, GgufError> {
        if self.version == 1 {
            self.u32(what).map(u64::from)
        } else {
            self.u64(what)
        }
    }
    fn size_len(&self) -> u64 {
        if self.version == 1 { 4 } else { 8 }
    }
    fn string(&mut self) -> Result<&'a [u8], GgufError> {
        let at = self.at();
        let len = self.size("string length")?;
        if len > MAX_STRING || len > self.remaining() {
            return Err(GgufError::StringTooLong { len, at });
        }
        self.take(len, "string")
    }
    /// A count of entries each at least `min` bytes long, checked before allocation.
    fn count(&mut self, what: &'static str, min: u64, limit: u64) -> Result<u64, GgufError> {
        let at = self.at();
        let count = self.size(what)?;
        let max = (self.remaining() / min.max(1)).min(limit);
        if count > max {
            return Err(GgufError::CountTooLarge {
                what,
                count,
                max,
                at,
            });
        }
        Ok(count)
    }

    /// Smallest encoding of one value of type `t`.
    fn min_size(&self, t: u32) -> u64 {
        match t {
            value_type::STRING => self.size_len(),
            value_type::ARRAY => 4 + self.size_len(),
            _ => value_type::fixed_size(t).unwrap_or(1),
        }
    }

    fn value(&mut self, t: u32, key: &str, depth: u32) -> Result<Value<'a>, GgufError> {
        use value_type::*;
        let at = self.at();
        Ok(match t {
            UINT8 => Value::U8(self.u8("value")?),
            INT8 => Value::I8(self.u8("value")? as i8),
            UINT16 => Value::U16(self.u16("value")?),
            INT16 => Value::I16(self.u16("value")? as i16),
            UINT32 => Value::U32(self.u32("value")?),
            INT32 => Value::I32(self.u32("value")? as i32),
            FLOAT32 => Value::F32(f32::from_bits(self.u32("value")?)),
            BOOL => Value::Bool(self.u8("value")?),
            STRING => Value::Str(self.string()?),
            UINT64 => Value::U64(self.u64("value")?),
            INT64 => Value::I64(self.u64("value")? as i64),
            FLOAT64 => Value::F64(f64::from_bits(self.u64("value")?)),
            ARRAY => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(GgufError::ArrayTooDeep {
                        key: key.to_string(),
                        at,
                    });
                }
                let elem_type = self.u32("array type")?;
                if value_type::name(elem_type).is_none() {
                    return Err(GgufError::UnknownValueType {
                        key: key.to_string(),
                        ty: elem_type,
                        at,
                    });
                }
                let len = self.count("array element", self.min_size(elem_type), u64::MAX)?;
                let start = self.pos;
                let offset = self.at();
                match value_type::fixed_size(elem_type) {
                    Some(size) => {
                        // `count` bounded len by remaining / size: no overflow.
                        self.take(len * size, "array")?;
                    }
                    None => {
                        for _ in 0..len {
                            self.value(elem_type, key, depth + 1)?;
                        }
                    }
                }
                Value::Array(Array {
                    elem_type,
                    len,
                    bytes: &self.data[start..self.pos],
                    offset,
                    version: self.version,
                    endian: self.endian,
                })
            }
            _ => {
                return Err(GgufError::UnknownValueType {
                    key: key.to_string(),
                    ty: t,
                    at,
                });
            }
        })
    }
}

#[derive(Default)]
struct Issues {
    list: Vec<Issue>,
    dropped: bool,
}

impl Issues {
    fn push(&mut self, i: Issue) {
        if self.list.len() < MAX_ISSUES {
            self.list.push(i);
        } else {
            self.dropped = true;
        }
    }
    fn finish(mut self) -> Vec<Issue> {
        if self.dropped {
            self.list.push(Issue::TooManyIssues);
        }
        self.list
    }
}

/// Parses a GGUF file held in `data` (the whole file; tensor data is not read).
pub fn parse(data: &[u8]) -> Result<Gguf<'_>, GgufError> {
    match parse_partial(data) {
        (g, None) => Ok(g),
        (_, Some(e)) => Err(e),
    }
}

/// Like [`parse`], but also returns what was read before an error (metadata pairs and
/// tensor infos up to the point of failure), so that a chat template in a file that is
/// broken further on is still checked.
pub fn parse_partial(data: &[u8]) -> (Gguf<'_>, Option<GgufError>) {
    let mut out = Gguf {
        alignment: DEFAULT_ALIGNMENT,
        ..Gguf::default()
    };
    let mut issues = Issues::default();
    let end_of_infos = match header(data, &mut out, &mut issues) {
        Ok(end) => end,
        Err(e) => {
            out.issues = issues.finish();
            return (out, Some(e));
        }
    };
    layout(data, &mut out, &mut issues, end_of_infos);
    out.issues = issues.finish();
    (out, None)
}

/// Magic, version, counts, metadata and tensor infos; returns where the infos end.
fn header<'a>(data: &'a [u8], out: &mut Gguf<'a>, issues: &mut Issues) -> Result<u64, GgufError> {
    if !data.starts_with(MAGIC) {
        return Err(GgufError::BadMagic);
    }
    let raw: [u8; 4] =
        data.get(4..8)
            .and_then(|s| s.try_into().ok())
            .ok_or(GgufError::Truncated {
                what: "version",
                at: 4,
            })?;
    let (version, endian) = match (u32::from_le_bytes(raw), u32::from_be_bytes(raw)) {
        (v @ 1..=3, _) => (v, Endian::Little),
        (_, v @ 1..=3) => (v, Endian::Big),
        (v, _) => return Err(GgufError::UnsupportedVersion(v)),
    };
    out.version = version;
    out.big_endian = endian == Endian::Big;
    let mut r = Reader {
        data,
        pos: 8,
        base: 0,
        version,
        endian,
    };
    let s = r.size_len();
    // A tensor info is at least a name length, n_dims, a type and an offset.
    let tensor_count = r.count("tensor", s + 4 + 4 + 8, MAX_TENSORS)?;
    // A pair is at least a key length, a value type and a one-byte value.
    let kv_count = r.count("metadata pair", s + 4 + 1, MAX_KV)?;

    let mut keys = HashSet::new();
    out.kvs.reserve(kv_count as usize);
    for _ in 0..kv_count {
        let offset = r.at();
        let key_bytes = r.string()?;
        let key = match std::str::from_utf8(key_bytes) {
            Ok(k) => k.to_string(),
            Err(_) => {
                issues.push(Issue::KeyNotUtf8 { offset });
                String::from_utf8_lossy(key_bytes).into_owned()
            }
        };
        let ty = r.u32("value type")?;
        let value = r.value(ty, &key, 0)?;
        if let Value::Array(a) = &value
            && a.elem_type == value_type::ARRAY
        {
            issues.push(Issue::NestedArray { key: key.clone() });
        }
        if !keys.insert(key.clone()) {
            issues.push(Issue::DuplicateKey { key: key.clone() });
        }
        out.kvs.push(Kv { key, offset, value });
    }

    let mut names = HashSet::new();
    out.tensors.reserve(tensor_count as usize);
    for index in 0..tensor_count {
        let info_offset = r.at();
        let name = String::from_utf8_lossy(r.string()?).into_owned();
        let n_dims = r.u32("n_dims")?;
        if u64::from(n_dims) > r.remaining() / s {
            return Err(GgufError::DimsTooLarge { index, n_dims });
        }
        if n_dims > MAX_DIMS {
            issues.push(Issue::TooManyDims {
                tensor: name.clone(),
                n_dims,
            });
        }
        let mut dims = Vec::with_capacity(n_dims.min(MAX_DIMS) as usize);
        for _ in 0..n_dims {
            let d = r.size("dimension")?;
            if dims.len() < MAX_DIMS as usize {
                dims.push(d);
            }
        }
        let ggml_type = r.u32("tensor type")?;
        let offset = r.u64("tensor offset")?;
        if name.len() >= MAX_NAME {
            issues.push(Issue::NameTooLong {
                name: name.clone(),
                len: name.len(),
            });
        }
        if !names.insert(name.clone()) {
            issues.push(Issue::DuplicateTensor { name: name.clone() });
        }
        out.tensors.push(TensorInfo {
            name,
            dims,
            ggml_type,
            offset,
            info_offset,
        });
    }
    Ok(r.at())
}

/// Alignment, the data section, and the tensors' extents within it.
fn layout(data: &[u8], out: &mut Gguf, issues: &mut Issues, end_of_infos: u64) {
    match out.get("general.alignment").cloned() {
        None => {}
        Some(Value::U32(a)) if a.is_power_of_two() => {
            out.alignment = u64::from(a);
            if out.alignment > MAX_SANE_ALIGNMENT {
                issues.push(Issue::BadAlignment {
                    reason: format!(
                        "alignment {a} turns padding into a hiding place (above {MAX_SANE_ALIGNMENT})"
                    ),
                });
            }
        }
        Some(v) => issues.push(Issue::BadAlignment {
            reason: format!(
                "general.alignment is {} {}, not a power-of-two uint32 (llama.cpp refuses it)",
                v.type_name(),
                match &v {
                    Value::U32(a) => a.to_string(),
                    _ => String::new(),
                }
            ),
        }),
    }
    let file_len = data.len() as u64;
    out.data_start = pad(end_of_infos, out.alignment)
        .unwrap_or(file_len)
        .min(file_len);
    out.data_len = file_len - out.data_start;
    let mut padding_budget = MAX_PADDING_CHECKED;
    check_zero(
        data,
        end_of_infos,
        out.data_start,
        &mut padding_budget,
        issues,
    );
    check_tensors(out, data, &mut padding_budget, issues);
}

fn pad(x: u64, align: u64) -> Option<u64> {
    let a = align.max(1);
    x.checked_add(a - 1).map(|v| v / a * a)
}

/// Bytes a tensor takes (`ggml_nbytes` for a contiguous tensor), or why it cannot.
pub fn tensor_size(t: &TensorInfo) -> Result<u64, String> {
    let Some((name, block, type_size)) = tensor_type(t.ggml_type) else {
        return Err(format!("unknown tensor type {}", t.ggml_type));
    };
    if let Some(d) = t.dims.iter().find(|&&d| d > i64::MAX as u64) {
        return Err(format!("dimension {d} is negative as int64"));
    }
    let elements = t
        .dims
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))
        .filter(|&e| e <= i64::MAX as u64)
        .ok_or_else(|| format!("element count of {:?} overflows int64", t.dims))?;
    let ne0 = t.dims.first().copied().unwrap_or(1);
    if ne0 % block != 0 {
        return Err(format!(
            "first dimension {ne0} is not a multiple of the {name} block size {block}"
        ));
    }
    (elements / block)
        .checked_mul(type_size)
        .ok_or_else(|| format!("byte size of {:?} overflows", t.dims))
}

fn check_zero(data: &[u8], from: u64, to: u64, budget: &mut u64, issues: &mut Issues) {
    let to = to.min(from.saturating_add(*budget));
    if to <= from {
        return;
    }
    *budget -= to - from;
    let Some(bytes) = data.get(from as usize..to as usize) else {
        return;
    };
    if let Some(i) = bytes.iter().position(|&b| b != 0) {
        issues.push(Issue::NonZeroPadding {
            at: from + i as u64,
            len: to - from - i as u64,
        });
    }
}

fn check_tensors(g: &Gguf, data: &[u8], budget: &mut u64, issues: &mut Issues) {
    let align = g.alignment;
    let mut extents: Vec<(u64, u64, &str)> = Vec::with_capacity(g.tensors.len());
    for t in &g.tensors {
        if tensor_type(t.ggml_type).is_none() {
            issues.push(Issue::UnknownTensorType {
                tensor: t.name.clone(),
                ggml_type: t.ggml_type,
            });
            continue;
        }
        let size = match tensor_size(t) {
            Ok(s) => s,
            Err(reason) => {
                issues.push(Issue::BadShape {
                    tensor: t.name.clone(),
                    reason,
                });
                continue;
            }
        };
        if t.offset % align != 0 {
            issues.push(Issue::Misaligned {
                tensor: t.name.clone(),
                offset: t.offset,
                alignment: align,
            });
        }
        let end = t.offset.checked_add(size);
        match end {
            Some(end) if end <= g.data_len => extents.push((t.offset, end, &t.name)),
            _ => {
                issues.push(Issue::OutOfBounds {
                    tensor: t.name.clone(),
                    begin: t.offset,
                    end: end.unwrap_or(u64::MAX),
                    data_len: g.data_len,
                });
                // What is inside the file still counts as covered, so it is not also
                // reported as trailing bytes.
                if t.offset < g.data_len {
                    extents.push((t.offset, g.data_len, &t.name));
                }
            }
        }
    }
    extents.sort_unstable();
    let mut covered = 0u64;
    let mut last: Option<&str> = None;
    let mut overlapped: Option<&str> = None;
    for &(begin, end, name) in &extents {
        let padded = pad(covered, align).unwrap_or(u64::MAX);
        if begin < covered {
            // One report per covering tensor: an extent running past the file would
            // otherwise overlap everything after it.
            if overlapped != last {
                overlapped = last;
                issues.push(Issue::Overlap {
                    first: last.unwrap_or("").to_string(),
                    second: name.to_string(),
                    at: begin,
                });
            }
        } else if begin > padded {
            issues.push(Issue::Gap {
                after: last.map(str::to_string),
                next: name.to_string(),
                start: covered,
                len: begin - covered,
            });
        } else {
            check_zero(
                data,
                g.data_start + covered,
                g.data_start + begin,
                budget,
                issues,
            );
        }
        if end > covered {
            covered = end;
            last = Some(name);
        }
    }
    // The writer pads after the last tensor too; accept the file ending either before or
    // after that padding.
    let padded = pad(covered, align).unwrap_or(u64::MAX).min(g.data_len);
    check_zero(
        data,
        g.data_start + covered,
        g.data_start + padded,
        budget,
        issues,
    );
    if g.data_len > padded {
        issues.push(Issue::Trailing {
            start: padded,
            len: g.data_len - padded,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal GGUF writer for tests (little-endian unless `be`).
    struct W {
        v: Vec<u8>,
        be: bool,
        version: u32,
    }

    impl W {
        fn new(version: u32, be: bool) -> W {
            let mut w = W {
                v: b"GGUF".to_vec(),
                be,
                version,
            };
            w.u32(version);
            w
        }
        fn u32(&mut self, x: u32) {
            let b = if self.be {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            };
            self.v.extend_from_slice(&b);
        }
        fn u64(&mut self, x: u64) {
            let b = if self.be {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            };
            self.v.extend_from_slice(&b);
        }
        fn size(&mut self, x: u64) {
            if self.version == 1 {
                self.u32(x as u32)
            } else {
                self.u64(x)
            }
        }
        fn str(&mut self, s: &str) {
            self.size(s.len() as u64);
            self.v.extend_from_slice(s.as_bytes());
        }
        fn kv_str(&mut self, k: &str, s: &str) {
            self.str(k);
            self.u32(value_type::STRING);
            self.str(s);
        }
        fn kv_u32(&mut self, k: &str, x: u32) {
            self.str(k);
            self.u32(value_type::UINT32);
            self.u32(x);
        }
        fn tensor(&mut self, name: &str, dims: &[u64], ty: u32, off: u64) {
            self.str(name);
            self.u32(dims.len() as u32);
            for &d in dims {
                self.size(d);
            }
            self.u32(ty);
            self.u64(off);
        }
        fn pad_to(&mut self, a: usize) {
            while !self.v.len().is_multiple_of(a) {
                self.v.push(0);
            }
        }
        fn zeros(&mut self, n: usize) {
            self.v.extend(std::iter::repeat_n(0u8, n));
        }
    }

    fn two_tensor_file(version: u32, be: bool) -> Vec<u8> {
        let mut w = W::new(version, be);
        w.size(2);
        w.size(2);
        w.kv_str("general.architecture", "llama");
        w.kv_str("tokenizer.chat_template", "{{ x }}");
        w.tensor("a", &[4, 2], 0, 0); // 32 bytes of F32
        w.tensor("b", &[32], 8, 32); // one Q8_0 block: 34 bytes
        w.pad_to(32);
        w.zeros(32 + 34);
        w.pad_to(32);
        w.v
    }

    #[test]
    fn valid_files_in_every_version_and_byte_order() {
        for (version, be) in [(1, false), (2, false), (3, false), (3, true)] {
            let f = two_tensor_file(version, be);
            let g = parse(&f).unwrap_or_else(|e| panic!("v{version} be={be}: {e}"));
            assert_eq!(g.version, version);
            assert_eq!(g.big_endian, be);
            assert_eq!(g.issues, vec![], "v{version} be={be}");
            assert_eq!(g.tensors[1].dims, vec![32]);
            assert_eq!(
                g.get("tokenizer.chat_template"),
                Some(&Value::Str(b"{{ x }}"))
            );
        }
    }

    #[test]
    fn huge_counts_are_refused_before_allocation() {
        let mut w = W::new(3, false);
        w.u64(u64::MAX);
        w.u64(0);
        assert!(matches!(
            parse(&w.v),
            Err(GgufError::CountTooLarge { what: "tensor", .. })
        ));
        let mut w = W::new(3, false);
        w.u64(0);
        w.u64(1 << 40);
        assert!(matches!(parse(&w.v), Err(GgufError::CountTooLarge { .. })));
        // Array length larger than the file.
        let mut w = W::new(3, false);
        w.u64(0);
        w.u64(1);
        w.str("tokenizer.ggml.tokens");
        w.u32(value_type::ARRAY);
        w.u32(value_type::STRING);
        w.u64(1 << 50);
        assert!(matches!(parse(&w.v), Err(GgufError::CountTooLarge { .. })));
        // String longer than the file.
        let mut w = W::new(3, false);
        w.u64(0);
        w.u64(1);
        w.u64(u64::MAX);
        w.zeros(64);
        assert!(matches!(parse(&w.v), Err(GgufError::StringTooLong { .. })));
    }

    #[test]
    fn bad_types_and_nesting() {
        let mut w = W::new(3, false);
        w.u64(0);
        w.u64(1);
        w.str("k");
        w.u32(77);
        assert!(matches!(
            parse(&w.v),
            Err(GgufError::UnknownValueType { ty: 77, .. })
        ));
        // Arrays nested past the limit.
        let mut w = W::new(3, false);
        w.u64(0);
        w.u64(1);
        w.str("k");
        w.u32(value_type::ARRAY);
        for _ in 0..10 {
            w.u32(value_type::ARRAY);
            w.u64(1);
        }
        w.u32(value_type::UINT8);
        w.u64(0);
        assert!(matches!(parse(&w.v), Err(GgufError::ArrayTooDeep { .. })));
        // One level of nesting parses but is reported.
        let mut w = W::new(3, false);
        w.u64(0);
        w.u64(1);
        w.str("k");
        w.u32(value_type::ARRAY);
        w.u32(value_type::ARRAY);
        w.u64(1);
        w.u32(value_type::UINT8);
        w.u64(2);
        w.v.extend_from_slice(&[1, 2]);
        let g = parse(&w.v).unwrap();
        assert_eq!(g.issues, vec![Issue::NestedArray { key: "k".into() }]);
    }

    #[test]
    fn tensor_problems() {
        let mut w = W::new(3, false);
        w.u64(6);
        w.u64(0);
        w.tensor("unknown", &[4], 99, 0);
        w.tensor("misaligned", &[4], 0, 2);
        w.tensor("outside", &[1 << 40], 0, 64);
        w.tensor("blocks", &[31], 8, 0);
        w.tensor("negative", &[u64::MAX], 0, 0);
        w.tensor("fivedims", &[1, 1, 1, 1, 1], 0, 0);
        w.pad_to(32);
        w.zeros(64);
        let g = parse(&w.v).unwrap();
        let has = |f: &dyn Fn(&Issue) -> bool| g.issues.iter().any(f);
        assert!(has(&|i| matches!(
            i,
            Issue::UnknownTensorType { ggml_type: 99, .. }
        )));
        assert!(has(&|i| matches!(i, Issue::Misaligned { offset: 2, .. })));
        assert!(has(
            &|i| matches!(i, Issue::OutOfBounds { tensor, .. } if tensor == "outside")
        ));
        assert!(has(
            &|i| matches!(i, Issue::BadShape { tensor, .. } if tensor == "blocks")
        ));
        assert!(has(
            &|i| matches!(i, Issue::BadShape { tensor, .. } if tensor == "negative")
        ));
        assert!(has(&|i| matches!(i, Issue::TooManyDims { n_dims: 5, .. })));
        assert!(has(&|i| matches!(i, Issue::Overlap { .. })));
    }

    #[test]
    fn gaps_trailing_padding_duplicates_alignment() {
        let mut w = W::new(3, false);
        w.u64(2);
        w.u64(3);
        w.kv_u32("general.alignment", 64);
        w.kv_str("k", "1");
        w.kv_str("k", "2");
        w.tensor("a", &[16], 0, 0);
        w.tensor("a", &[16], 0, 128);
        w.pad_to(64);
        w.zeros(64);
        w.v.extend_from_slice(b"hidden!");
        w.pad_to(64);
        w.zeros(64);
        w.v.extend_from_slice(b"trailing payload");
        let g = parse(&w.v).unwrap();
        assert_eq!(g.alignment, 64);
        let has = |f: &dyn Fn(&Issue) -> bool| g.issues.iter().any(f);
        assert!(has(
            &|i| matches!(i, Issue::DuplicateKey { key } if key == "k")
        ));
        assert!(has(&|i| matches!(i, Issue::DuplicateTensor { .. })));
        assert!(has(&|i| matches!(
            i,
            Issue::Gap {
                start: 64,
                len: 64,
                ..
            }
        )));
        assert!(has(&|i| matches!(
            i,
            Issue::Trailing {
                start: 192,
                len: 16
            }
        )));

        let mut w = W::new(3, false);
        w.u64(0);
        w.u64(1);
        w.kv_u32("general.alignment", 48);
        assert!(matches!(
            parse(&w.v).unwrap().issues[0],
            Issue::BadAlignment { .. }
        ));

        let mut w = W::new(3, false);
        w.u64(1);
        w.u64(0);
        w.tensor("a", &[1], 0, 0);
        w.pad_to(32);
        w.v.extend_from_slice(&[0, 0, 0, 0, 7]);
        w.pad_to(32);
        let g = parse(&w.v).unwrap();
        assert!(matches!(g.issues[0], Issue::NonZeroPadding { .. }));
    }

    #[test]
    fn truncation_anywhere_is_an_error() {
        let f = two_tensor_file(3, false);
        let g = parse(&f).unwrap();
        let infos_end = g.data_start as usize;
        for cut in 0..infos_end - 31 {
            if let Ok(g) = parse(&f[..cut]) {
                panic!("cut at {cut} parsed: {g:?}");
            }
        }
        // Cut inside the data: out-of-bounds tensors, not an error.
        let g = parse(&f[..infos_end + 40]).unwrap();
        assert!(matches!(g.issues[0], Issue::OutOfBounds { .. }));
    }

    #[test]
    fn string_arrays_iterate() {
        let mut w = W::new(3, false);
        w.u64(0);
        w.u64(1);
        w.str("tokenizer.ggml.tokens");
        w.u32(value_type::ARRAY);
        w.u32(value_type::STRING);
        w.u64(3);
        for s in ["a", "bc", "def"] {
            w.str(s);
        }
        let g = parse(&w.v).unwrap();
        let Some(Value::Array(a)) = g.get("tokenizer.ggml.tokens") else {
            panic!()
        };
        assert_eq!(
            a.strings().collect::<Vec<_>>(),
            vec![b"a" as &[u8], b"bc", b"def"]
        );
    }
}
