//! safetensors: an 8-byte little-endian header length, a JSON header, then the raw tensor
//! data. The header is checked the way the reference loader (the `safetensors` crate, which
//! Python's `safetensors` also uses) checks it, and beyond: duplicate keys (serde keeps the
//! last one silently, other readers keep the first), unknown fields, gaps between tensors
//! and bytes after the last one (hiding places the reference loader never reads).
//!
//! Only the header is read. Tensor payloads are never touched: the data area is described
//! by offsets, and every check here is arithmetic on them.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::HashSet;
use std::fmt;

/// Header size the reference loader accepts (`MAX_HEADER_SIZE` in the `safetensors` crate).
pub const MAX_HEADER: u64 = 100_000_000;
/// Tensors listed in one header. A 100 MB header could list about two million.
pub const MAX_TENSORS: usize = 1_000_000;
/// Dimensions kept per shape; longer shapes are reported, not stored.
pub const MAX_RANK: usize = 64;
/// Strings kept from `__metadata__` and from fields the loader ignores.
pub const MAX_STRINGS: usize = 100_000;
/// Problems recorded per file; past this, one [`Issue::TooManyIssues`] stands for the rest.
pub const MAX_ISSUES: usize = 1_000;

/// Bytes of the little-endian header length that starts the file.
const N_LEN: u64 = 8;

/// Element types the `safetensors` crate (0.8) knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)]
pub enum Dtype {
    BOOL,
    F4,
    F6_E2M3,
    F6_E3M2,
    U8,
    I8,
    F8_E5M2,
    F8_E4M3,
    F8_E8M0,
    F8_E4M3FNUZ,
    F8_E5M2FNUZ,
    I16,
    U16,
    F16,
    BF16,
    I32,
    U32,
    F32,
    C64,
    F64,
    I64,
    U64,
}

impl Dtype {
    pub const ALL: &'static [Dtype] = &[
        Dtype::BOOL,
        Dtype::F4,
        Dtype::F6_E2M3,
        Dtype::F6_E3M2,
        Dtype::U8,
        Dtype::I8,
        Dtype::F8_E5M2,
        Dtype::F8_E4M3,
        Dtype::F8_E8M0,
        Dtype::F8_E4M3FNUZ,
        Dtype::F8_E5M2FNUZ,
        Dtype::I16,
        Dtype::U16,
        Dtype::F16,
        Dtype::BF16,
        Dtype::I32,
        Dtype::U32,
        Dtype::F32,
        Dtype::C64,
        Dtype::F64,
        Dtype::I64,
        Dtype::U64,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Dtype::BOOL => "BOOL",
            Dtype::F4 => "F4",
            Dtype::F6_E2M3 => "F6_E2M3",
            Dtype::F6_E3M2 => "F6_E3M2",
            Dtype::U8 => "U8",
            Dtype::I8 => "I8",
            Dtype::F8_E5M2 => "F8_E5M2",
            Dtype::F8_E4M3 => "F8_E4M3",
            Dtype::F8_E8M0 => "F8_E8M0",
            Dtype::F8_E4M3FNUZ => "F8_E4M3FNUZ",
            Dtype::F8_E5M2FNUZ => "F8_E5M2FNUZ",
            Dtype::I16 => "I16",
            Dtype::U16 => "U16",
            Dtype::F16 => "F16",
            Dtype::BF16 => "BF16",
            Dtype::I32 => "I32",
            Dtype::U32 => "U32",
            Dtype::F32 => "F32",
            Dtype::C64 => "C64",
            Dtype::F64 => "F64",
            Dtype::I64 => "I64",
            Dtype::U64 => "U64",
        }
    }

    /// The dtype spelled exactly as the loader's serde derive expects it.
    pub fn parse(s: &str) -> Option<Dtype> {
        Dtype::ALL.iter().copied().find(|d| d.name() == s)
    }

    /// Bits per element (some types are narrower than a byte).
    pub fn bits(self) -> u64 {
        match self {
            Dtype::F4 => 4,
            Dtype::F6_E2M3 | Dtype::F6_E3M2 => 6,
            Dtype::BOOL
            | Dtype::U8
            | Dtype::I8
            | Dtype::F8_E5M2
            | Dtype::F8_E4M3
            | Dtype::F8_E8M0
            | Dtype::F8_E4M3FNUZ
            | Dtype::F8_E5M2FNUZ => 8,
            Dtype::I16 | Dtype::U16 | Dtype::F16 | Dtype::BF16 => 16,
            Dtype::I32 | Dtype::U32 | Dtype::F32 => 32,
            Dtype::C64 | Dtype::F64 | Dtype::I64 | Dtype::U64 => 64,
        }
    }
}

/// One entry of the header, as far as it could be read.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub name: String,
    /// The `dtype` string, when it is one.
    pub dtype: Option<String>,
    pub shape: Option<Vec<u64>>,
    /// `data_offsets`, relative to the start of the data area.
    pub offsets: Option<(u64, u64)>,
}

/// Something wrong with a header that could still be read. Offsets are relative to the
/// start of the data area (add [`Safetensors::data_start`] for a file offset).
#[derive(Debug, Clone, PartialEq)]
pub enum Issue {
    /// The same key twice in one JSON object (`within` is `""` for the top level).
    DuplicateKey {
        within: String,
        key: String,
    },
    /// A tensor entry the loader refuses (not an object, a field missing or mistyped).
    BadEntry {
        tensor: String,
        reason: String,
    },
    /// `__metadata__` that is not a map of strings to strings (the loader refuses it).
    BadMetadata {
        reason: String,
    },
    /// A field the loader ignores inside a tensor entry.
    UnknownField {
        tensor: String,
        field: String,
    },
    UnknownDtype {
        tensor: String,
        dtype: String,
    },
    /// `shape` × dtype size is not the extent `data_offsets` gives (or overflows).
    SizeMismatch {
        tensor: String,
        expected: Option<u64>,
        actual: u64,
        reason: String,
    },
    ReversedOffsets {
        tensor: String,
        begin: u64,
        end: u64,
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
    /// Bytes no tensor covers, before `next` (or at the start of the data area).
    Gap {
        after: Option<String>,
        next: String,
        start: u64,
        len: u64,
    },
    /// Bytes after the end of the last tensor.
    Trailing {
        start: u64,
        len: u64,
    },
    /// Accepted by the loader but outside the format's rules (leading whitespace, padding
    /// other than spaces).
    Nonconformant {
        reason: String,
    },
    /// More than [`MAX_STRINGS`] strings; the rest were not kept for checking.
    TooManyStrings,
    TooManyIssues,
}

/// A parsed header.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Safetensors {
    /// The declared header length.
    pub header_len: u64,
    /// File offset of the data area (8 + header length).
    pub data_start: u64,
    /// Bytes in the data area (file length minus header).
    pub data_len: u64,
    /// Tensor entries in header order.
    pub tensors: Vec<Tensor>,
    /// `__metadata__` entries, in order.
    pub metadata: Vec<(String, String)>,
    /// Other strings found where the loader does not look (unknown fields, mistyped
    /// metadata values): (where, text).
    pub strings: Vec<(String, String)>,
    pub issues: Vec<Issue>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SafetensorsError {
    #[error("file is {0} bytes, shorter than the 8-byte header length")]
    TooShort(u64),
    #[error("header length {0} exceeds the {MAX_HEADER}-byte limit of the reference loader")]
    HeaderTooLarge(u64),
    #[error("header length {len} runs past the end of the {file_len}-byte file")]
    HeaderBeyondFile { len: u64, file_len: u64 },
    #[error("header is not UTF-8 at byte {0}")]
    NotUtf8(u64),
    #[error("header is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("header lists more than {MAX_TENSORS} tensors")]
    TooManyTensors,
}

/// True when `data` starts like a safetensors file: a header length that fits a plausible
/// file, then `{` (optionally after whitespace, which the loader's JSON parser skips).
pub fn looks_like(data: &[u8]) -> bool {
    let Some(n) = header_len(data) else {
        return false;
    };
    // Real lengths are far below 2^40; text that happens to have a `{` at byte 8 has
    // printable bytes up there and fails this.
    if !(2..1 << 40).contains(&n) {
        return false;
    }
    // A protocol 2+ pickle whose first bytes happen to read as a large length stays a
    // pickle; below the loader's limit the length cannot also be a loadable pickle.
    if data.first() == Some(&0x80) && data.get(1).is_some_and(|&p| p <= 5) && n > MAX_HEADER {
        return false;
    }
    let mut json = data
        .get(N_LEN as usize..)
        .unwrap_or(&[])
        .iter()
        .take(256)
        .filter(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    json.next() == Some(&b'{') && matches!(json.next(), Some(b'"' | b'}') | None)
}

fn header_len(data: &[u8]) -> Option<u64> {
    let b: [u8; 8] = data.get(..8)?.try_into().ok()?;
    Some(u64::from_le_bytes(b))
}

/// Parses the header of a safetensors file held in `data` (the whole file; only the
/// header bytes are read).
pub fn parse(data: &[u8]) -> Result<Safetensors, SafetensorsError> {
    let file_len = data.len() as u64;
    let n = header_len(data).ok_or(SafetensorsError::TooShort(file_len))?;
    if n > MAX_HEADER {
        return Err(SafetensorsError::HeaderTooLarge(n));
    }
    let data_start = n
        .checked_add(N_LEN)
        .filter(|&e| e <= file_len)
        .ok_or(SafetensorsError::HeaderBeyondFile { len: n, file_len })?;
    let header = data
        .get(N_LEN as usize..data_start as usize)
        .ok_or(SafetensorsError::HeaderBeyondFile { len: n, file_len })?;
    if let Err(e) = std::str::from_utf8(header) {
        return Err(SafetensorsError::NotUtf8(N_LEN + e.valid_up_to() as u64));
    }
    let mut st = State::default();
    let mut de = serde_json::Deserializer::from_slice(header);
    let outcome = TopLevel { st: &mut st }.deserialize(&mut de);
    if st.too_many_tensors {
        return Err(SafetensorsError::TooManyTensors);
    }
    outcome
        .and_then(|()| de.end())
        .map_err(|e| SafetensorsError::InvalidJson(e.to_string()))?;

    let mut out = Safetensors {
        header_len: n,
        data_start,
        data_len: file_len - data_start,
        tensors: st.tensors,
        metadata: st.metadata,
        strings: st.strings,
        issues: Vec::new(),
    };
    let mut issues = Issues::default();
    for i in st.issues {
        issues.push(i);
    }
    if st.strings_dropped {
        issues.push(Issue::TooManyStrings);
    }
    check_padding(header, &mut issues);
    check_extents(&out, &mut issues);
    out.issues = issues.finish();
    Ok(out)
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

/// The format allows trailing spaces after the JSON object; the loader's JSON parser also
/// accepts other whitespace before and after it.
fn check_padding(header: &[u8], issues: &mut Issues) {
    let ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let lead = header.iter().take_while(|b| ws(b)).count();
    if lead > 0 {
        issues.push(Issue::Nonconformant {
            reason: format!("{lead} whitespace bytes before the opening brace"),
        });
    }
    let trail = &header[header.len() - header.iter().rev().take_while(|b| ws(b)).count()..];
    if trail.iter().any(|&b| b != b' ') {
        issues.push(Issue::Nonconformant {
            reason: "header padded with whitespace other than spaces".into(),
        });
    }
}

/// Sizes, bounds, overlaps, gaps and trailing bytes, over the tensors sorted by offset
/// (the loader sorts them the same way before it validates).
fn check_extents(st: &Safetensors, issues: &mut Issues) {
    let mut extents: Vec<(u64, u64, &str)> = Vec::with_capacity(st.tensors.len());
    for t in &st.tensors {
        let Some((begin, end)) = t.offsets else {
            continue;
        };
        if end < begin {
            issues.push(Issue::ReversedOffsets {
                tensor: t.name.clone(),
                begin,
                end,
            });
            continue;
        }
        if end > st.data_len {
            issues.push(Issue::OutOfBounds {
                tensor: t.name.clone(),
                begin,
                end,
                data_len: st.data_len,
            });
        }
        if let (Some(dtype), Some(shape)) = (t.dtype.as_deref(), t.shape.as_ref()) {
            match Dtype::parse(dtype) {
                None => issues.push(Issue::UnknownDtype {
                    tensor: t.name.clone(),
                    dtype: dtype.to_string(),
                }),
                Some(d) => {
                    let actual = end - begin;
                    let (expected, reason) = match expected_size(d, shape) {
                        Ok(size) => (Some(size), None),
                        Err(r) => (None, Some(r)),
                    };
                    if expected != Some(actual) {
                        issues.push(Issue::SizeMismatch {
                            tensor: t.name.clone(),
                            expected,
                            actual,
                            reason: reason.unwrap_or_else(|| {
                                format!(
                                    "{} {:?} needs {} bytes",
                                    d.name(),
                                    shape,
                                    expected.unwrap_or(0)
                                )
                            }),
                        });
                    }
                }
            }
        }
        extents.push((begin, end, &t.name));
    }
    extents.sort_unstable();
    let mut covered = 0u64;
    let mut last: Option<&str> = None;
    let mut overlapped: Option<&str> = None;
    for &(begin, end, name) in &extents {
        if begin > covered {
            issues.push(Issue::Gap {
                after: last.map(str::to_string),
                next: name.to_string(),
                start: covered,
                len: begin - covered,
            });
        } else if begin < covered {
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
        }
        if end > covered {
            covered = end;
            last = Some(name);
        }
    }
    if covered < st.data_len {
        issues.push(Issue::Trailing {
            start: covered,
            len: st.data_len - covered,
        });
    }
}

/// Bytes a tensor of `shape` and `dtype` takes, as the loader computes it.
pub fn expected_size(dtype: Dtype, shape: &[u64]) -> Result<u64, String> {
    let elements = shape
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))
        .ok_or_else(|| format!("element count of shape {shape:?} overflows"))?;
    let bits = elements
        .checked_mul(dtype.bits())
        .ok_or_else(|| format!("bit size of shape {shape:?} overflows"))?;
    if bits % 8 != 0 {
        return Err(format!(
            "{} {:?} is {bits} bits, not a whole number of bytes",
            dtype.name(),
            shape
        ));
    }
    Ok(bits / 8)
}

// --- Streaming the header through serde, so nothing unbounded is built. ---

#[derive(Default)]
struct State {
    tensors: Vec<Tensor>,
    metadata: Vec<(String, String)>,
    strings: Vec<(String, String)>,
    strings_dropped: bool,
    issues: Vec<Issue>,
    too_many_tensors: bool,
}

impl State {
    fn keep_string(&mut self, at: &str, s: &str) {
        if self.strings.len() < MAX_STRINGS {
            self.strings.push((at.to_string(), s.to_string()));
        } else {
            self.strings_dropped = true;
        }
    }
    fn issue(&mut self, i: Issue) {
        if self.issues.len() <= MAX_ISSUES {
            self.issues.push(i);
        }
    }
}

/// What a JSON value was, with just enough content kept to check header fields.
#[derive(Debug)]
enum Kind {
    Null,
    Bool,
    UInt(u64),
    OtherNumber,
    Str(String),
    Array {
        len: u64,
        /// The first [`MAX_RANK`] + 1 elements when they are all unsigned integers.
        uints: Option<Vec<u64>>,
    },
    Object,
}

impl Kind {
    fn describe(&self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Bool => "a boolean",
            Kind::UInt(_) => "a number",
            Kind::OtherNumber => "a number",
            Kind::Str(_) => "a string",
            Kind::Array { .. } => "an array",
            Kind::Object => "an object",
        }
    }
}

/// Reads any JSON value, keeping its strings (when `keep` is set) under `at`, and checking
/// objects for duplicate keys.
struct Any<'s> {
    st: &'s mut State,
    at: String,
    keep: bool,
}

impl<'de> DeserializeSeed<'de> for Any<'_> {
    type Value = Kind;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Any<'_> {
    type Value = Kind;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Kind, E> {
        Ok(Kind::Bool)
    }
    fn visit_u64<E>(self, v: u64) -> Result<Kind, E> {
        Ok(Kind::UInt(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Kind, E> {
        Ok(u64::try_from(v).map_or(Kind::OtherNumber, Kind::UInt))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Kind, E> {
        Ok(Kind::OtherNumber)
    }
    fn visit_str<E>(self, v: &str) -> Result<Kind, E> {
        if self.keep {
            self.st.keep_string(&self.at, v);
        }
        Ok(Kind::Str(v.to_string()))
    }
    fn visit_unit<E>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_none<E>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        let mut len = 0u64;
        let mut uints = Some(Vec::new());
        while let Some(k) = seq.next_element_seed(Any {
            st: &mut *self.st,
            at: self.at.clone(),
            keep: self.keep,
        })? {
            len += 1;
            match (&mut uints, k) {
                (Some(v), Kind::UInt(x)) => {
                    if v.len() <= MAX_RANK {
                        v.push(x)
                    }
                }
                _ => uints = None,
            }
        }
        Ok(Kind::Array { len, uints })
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let at = format!("{}.{key}", self.at);
            if self.keep {
                self.st.keep_string(&at, &key);
            }
            if !seen.insert(key.clone()) {
                self.st.issue(Issue::DuplicateKey {
                    within: self.at.clone(),
                    key,
                });
            }
            map.next_value_seed(Any {
                st: &mut *self.st,
                at,
                keep: self.keep,
            })?;
        }
        Ok(Kind::Object)
    }
}

/// The header object: tensor entries and `__metadata__`.
struct TopLevel<'s> {
    st: &'s mut State,
}

impl<'de> DeserializeSeed<'de> for TopLevel<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TopLevel<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object of tensor entries")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                self.st.issue(Issue::DuplicateKey {
                    within: String::new(),
                    key: key.clone(),
                });
            }
            if key == "__metadata__" {
                let kind = map.next_value_seed(Metadata { st: &mut *self.st })?;
                if let Some(k) = kind {
                    self.st.issue(Issue::BadMetadata {
                        reason: format!("__metadata__ is {}, not an object", k.describe()),
                    });
                }
                continue;
            }
            if self.st.tensors.len() >= MAX_TENSORS {
                self.st.too_many_tensors = true;
                return Err(de::Error::custom("too many tensors"));
            }
            let entry = map.next_value_seed(Entry {
                st: &mut *self.st,
                name: &key,
            })?;
            self.st.tensors.push(entry);
        }
        Ok(())
    }
}

/// `__metadata__`: must be a map of strings to strings (or null). Returns the kind of a
/// value that is neither.
struct Metadata<'s> {
    st: &'s mut State,
}

impl<'de> DeserializeSeed<'de> for Metadata<'_> {
    type Value = Option<Kind>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Kind>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Metadata<'_> {
    type Value = Option<Kind>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map of strings")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Kind>, A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                self.st.issue(Issue::DuplicateKey {
                    within: "__metadata__".into(),
                    key: key.clone(),
                });
            }
            let at = format!("__metadata__.{key}");
            match map.next_value_seed(Any {
                st: &mut *self.st,
                at: at.clone(),
                keep: false,
            })? {
                Kind::Str(s) => {
                    if self.st.metadata.len() < MAX_STRINGS {
                        self.st.metadata.push((key, s));
                    } else {
                        self.st.strings_dropped = true;
                    }
                }
                other => {
                    self.st.keep_string(&at, &key);
                    self.st.issue(Issue::BadMetadata {
                        reason: format!(
                            "__metadata__ value {key:?} is {}, not a string",
                            other.describe()
                        ),
                    });
                }
            }
        }
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Option<Kind>, E> {
        Ok(None)
    }
    fn visit_none<E>(self) -> Result<Option<Kind>, E> {
        Ok(None)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Option<Kind>, E> {
        Ok(Some(Kind::Bool))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Option<Kind>, E> {
        Ok(Some(Kind::OtherNumber))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Option<Kind>, E> {
        Ok(Some(Kind::OtherNumber))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Option<Kind>, E> {
        Ok(Some(Kind::OtherNumber))
    }
    fn visit_str<E>(self, v: &str) -> Result<Option<Kind>, E> {
        self.st.keep_string("__metadata__", v);
        Ok(Some(Kind::Str(String::new())))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Option<Kind>, A::Error> {
        Any {
            st: self.st,
            at: "__metadata__".into(),
            keep: true,
        }
        .visit_seq(seq)
        .map(Some)
    }
}

/// One tensor entry: `{"dtype": .., "shape": [..], "data_offsets": [begin, end]}`.
struct Entry<'s, 'n> {
    st: &'s mut State,
    name: &'n str,
}

impl<'de> DeserializeSeed<'de> for Entry<'_, '_> {
    type Value = Tensor;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Tensor, D::Error> {
        let name = self.name.to_string();
        let st = self.st;
        let kind = d.deserialize_any(EntryVisitor {
            st: &mut *st,
            name: &name,
        })?;
        match kind {
            Ok(t) => Ok(t),
            Err(k) => {
                st.issue(Issue::BadEntry {
                    tensor: name.clone(),
                    reason: format!("entry is {}, not an object", k.describe()),
                });
                Ok(Tensor {
                    name,
                    dtype: None,
                    shape: None,
                    offsets: None,
                })
            }
        }
    }
}

struct EntryVisitor<'s, 'n> {
    st: &'s mut State,
    name: &'n str,
}

impl<'de> Visitor<'de> for EntryVisitor<'_, '_> {
    /// The tensor, or what the entry was instead of an object.
    type Value = Result<Tensor, Kind>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a tensor entry")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Err(Kind::Bool))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Err(Kind::OtherNumber))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Err(Kind::OtherNumber))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Err(Kind::OtherNumber))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Err(Kind::Null))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        self.st.keep_string(self.name, v);
        Ok(Err(Kind::Str(String::new())))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let k = Any {
            st: self.st,
            at: self.name.to_string(),
            keep: true,
        }
        .visit_seq(seq)?;
        Ok(Err(k))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let name = self.name;
        let mut t = Tensor {
            name: name.to_string(),
            dtype: None,
            shape: None,
            offsets: None,
        };
        let mut seen = HashSet::new();
        let bad = |st: &mut State, reason: String| {
            st.issue(Issue::BadEntry {
                tensor: name.to_string(),
                reason,
            })
        };
        while let Some(field) = map.next_key::<String>()? {
            if !seen.insert(field.clone()) {
                self.st.issue(Issue::DuplicateKey {
                    within: name.to_string(),
                    key: field.clone(),
                });
            }
            let known = matches!(field.as_str(), "dtype" | "shape" | "data_offsets");
            let at = format!("{name}.{field}");
            let kind = map.next_value_seed(Any {
                st: &mut *self.st,
                at,
                keep: !known,
            })?;
            match (field.as_str(), kind) {
                ("dtype", Kind::Str(s)) => t.dtype = Some(s),
                ("shape", Kind::Array { len, uints }) => match uints {
                    Some(dims) if len as usize <= MAX_RANK => t.shape = Some(dims),
                    Some(_) => bad(
                        &mut *self.st,
                        format!("shape has {len} dimensions (limit {MAX_RANK})"),
                    ),
                    None => bad(
                        &mut *self.st,
                        "shape holds something other than non-negative integers".into(),
                    ),
                },
                ("data_offsets", Kind::Array { len: 2, uints }) => match uints.as_deref() {
                    Some(&[b, e]) => t.offsets = Some((b, e)),
                    _ => bad(
                        &mut *self.st,
                        "data_offsets holds something other than non-negative integers".into(),
                    ),
                },
                ("data_offsets", Kind::Array { len, .. }) => bad(
                    &mut *self.st,
                    format!("data_offsets has {len} elements, not 2"),
                ),
                ("dtype" | "shape" | "data_offsets", k) => {
                    bad(&mut *self.st, format!("{field} is {}", k.describe()))
                }
                (_, _) => {
                    self.st.keep_string(name, &field);
                    self.st.issue(Issue::UnknownField {
                        tensor: name.to_string(),
                        field,
                    });
                }
            }
        }
        for (field, missing) in [
            ("dtype", t.dtype.is_none()),
            ("shape", t.shape.is_none()),
            ("data_offsets", t.offsets.is_none()),
        ] {
            if missing && !seen.contains(field) {
                bad(&mut *self.st, format!("{field} is missing"));
            }
        }
        Ok(Ok(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(header: &str, data_len: usize) -> Vec<u8> {
        let mut v = (header.len() as u64).to_le_bytes().to_vec();
        v.extend_from_slice(header.as_bytes());
        v.extend(std::iter::repeat_n(0u8, data_len));
        v
    }

    fn issues(header: &str, data_len: usize) -> Vec<Issue> {
        parse(&file(header, data_len)).unwrap().issues
    }

    #[test]
    fn valid_file_has_no_issues() {
        let h = r#"{"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[2,2],"data_offsets":[16,32]},"a":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}  "#;
        let st = parse(&file(h, 32)).unwrap();
        assert_eq!(st.issues, vec![]);
        assert_eq!(st.tensors.len(), 2);
        assert_eq!(st.metadata, vec![("format".into(), "pt".into())]);
        assert_eq!(st.data_start, 8 + h.len() as u64);
        assert!(looks_like(&file(h, 32)));
    }

    #[test]
    fn empty_and_zero_sized() {
        assert_eq!(issues("{}", 0), vec![]);
        let h = r#"{"e":{"dtype":"F16","shape":[0,3],"data_offsets":[0,0]},"f":{"dtype":"F16","shape":[0],"data_offsets":[0,0]}}"#;
        assert_eq!(issues(h, 0), vec![]);
        // Sub-byte dtypes: 2 × F4 is one byte; 3 × F4 is not a whole byte.
        let h = r#"{"q":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}}"#;
        assert_eq!(issues(h, 1), vec![]);
        let h = r#"{"q":{"dtype":"F4","shape":[3],"data_offsets":[0,1]}}"#;
        assert!(matches!(issues(h, 1)[0], Issue::SizeMismatch { .. }));
    }

    #[test]
    fn fatal_header_errors() {
        assert_eq!(parse(b"abc"), Err(SafetensorsError::TooShort(3)));
        let mut v = (200_000_000u64).to_le_bytes().to_vec();
        v.push(b'{');
        assert_eq!(
            parse(&v),
            Err(SafetensorsError::HeaderTooLarge(200_000_000))
        );
        let mut v = (100u64).to_le_bytes().to_vec();
        v.extend_from_slice(b"{}");
        assert!(matches!(
            parse(&v),
            Err(SafetensorsError::HeaderBeyondFile { .. })
        ));
        assert!(matches!(
            parse(&file("{\"a\":", 0)),
            Err(SafetensorsError::InvalidJson(_))
        ));
        assert!(matches!(
            parse(&file("[1,2]", 0)),
            Err(SafetensorsError::InvalidJson(_))
        ));
        assert!(matches!(
            parse(&file("{}\0\0", 0)),
            Err(SafetensorsError::InvalidJson(_))
        ));
        let mut v = file("{\"a\":\"xx\"}", 0);
        v[15] = 0xff;
        assert!(matches!(parse(&v), Err(SafetensorsError::NotUtf8(_))));
        // Never panics on u64::MAX lengths.
        let mut v = u64::MAX.to_le_bytes().to_vec();
        v.push(b'{');
        assert!(parse(&v).is_err());
        assert!(!looks_like(&v));
    }

    #[test]
    fn duplicates_at_every_level() {
        let h = r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#;
        assert!(issues(h, 2).contains(&Issue::DuplicateKey {
            within: String::new(),
            key: "a".into()
        }));
        let h = r#"{"a":{"dtype":"U8","dtype":"F32","shape":[1],"data_offsets":[0,1]}}"#;
        assert!(
            issues(h, 1)
                .iter()
                .any(|i| matches!(i, Issue::DuplicateKey { key, .. } if key == "dtype"))
        );
        let h = r#"{"__metadata__":{"k":"1","k":"2"}}"#;
        assert!(
            issues(h, 0).iter().any(
                |i| matches!(i, Issue::DuplicateKey { within, .. } if within == "__metadata__")
            )
        );
    }

    #[test]
    fn dtype_shape_and_entry_problems() {
        let h = r#"{"a":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}}"#;
        assert!(matches!(&issues(h, 4)[0], Issue::UnknownDtype { dtype, .. } if dtype == "F33"));
        let h = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#;
        assert!(matches!(
            &issues(h, 4)[0],
            Issue::SizeMismatch {
                expected: Some(8),
                actual: 4,
                ..
            }
        ));
        let h = r#"{"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,4]}}"#;
        assert!(matches!(
            &issues(h, 4)[0],
            Issue::SizeMismatch { expected: None, .. }
        ));
        let h = r#"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#;
        assert!(matches!(&issues(h, 4)[0], Issue::BadEntry { .. }));
        let h = r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}"#;
        assert!(matches!(&issues(h, 4)[0], Issue::BadEntry { .. }));
        let h = r#"{"a":{"dtype":"F32","shape":[1]}}"#;
        assert!(
            issues(h, 0)
                .iter()
                .any(|i| matches!(i, Issue::BadEntry { reason, .. } if reason.contains("missing")))
        );
        let h = r#"{"a":"hello"}"#;
        assert!(matches!(&issues(h, 0)[0], Issue::BadEntry { .. }));
        let h = r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"note":"curl x|sh"}}"#;
        let st = parse(&file(h, 1)).unwrap();
        assert!(matches!(&st.issues[0], Issue::UnknownField { field, .. } if field == "note"));
        assert!(st.strings.iter().any(|(_, s)| s == "curl x|sh"));
    }

    #[test]
    fn extents() {
        let t = |n: &str, b: u64, e: u64| {
            format!(
                r#""{n}":{{"dtype":"U8","shape":[{}],"data_offsets":[{b},{e}]}}"#,
                e.saturating_sub(b)
            )
        };
        // Overlap.
        let h = format!("{{{},{}}}", t("a", 0, 8), t("b", 4, 12));
        assert!(
            issues(&h, 12)
                .iter()
                .any(|i| matches!(i, Issue::Overlap { at: 4, .. }))
        );
        // Gap, leading gap and trailing bytes.
        let h = format!("{{{},{}}}", t("a", 4, 8), t("b", 12, 16));
        let is = issues(&h, 20);
        assert!(is.contains(&Issue::Gap {
            after: None,
            next: "a".into(),
            start: 0,
            len: 4
        }));
        assert!(is.contains(&Issue::Gap {
            after: Some("a".into()),
            next: "b".into(),
            start: 8,
            len: 4
        }));
        assert!(is.contains(&Issue::Trailing { start: 16, len: 4 }));
        // Past the end of the file.
        let h = format!("{{{}}}", t("a", 0, 100));
        assert!(matches!(
            issues(&h, 10)[0],
            Issue::OutOfBounds { end: 100, .. }
        ));
        // Reversed.
        let h = r#"{"a":{"dtype":"U8","shape":[0],"data_offsets":[8,4]}}"#;
        assert!(matches!(issues(h, 8)[0], Issue::ReversedOffsets { .. }));
    }

    #[test]
    fn metadata_must_be_strings() {
        let h = r#"{"__metadata__":{"a":{"b":"c"}}}"#;
        let st = parse(&file(h, 0)).unwrap();
        assert!(matches!(&st.issues[0], Issue::BadMetadata { .. }));
        let h = r#"{"__metadata__":[1]}"#;
        assert!(matches!(&issues(h, 0)[0], Issue::BadMetadata { .. }));
        assert_eq!(issues(r#"{"__metadata__":null}"#, 0), vec![]);
    }

    #[test]
    fn padding_rules() {
        assert_eq!(issues("{}      ", 0), vec![]);
        assert!(matches!(issues("{}\n", 0)[0], Issue::Nonconformant { .. }));
        assert!(matches!(issues(" {}", 0)[0], Issue::Nonconformant { .. }));
        assert!(looks_like(&file("  {}", 0)));
        assert!(!looks_like(b"abcdefgh{\"x\": 1}"));
        assert!(!looks_like(&file("[]", 0)));
    }

    /// Header lengths whose bytes start like gzip (560927 = 1f 8b 08 ..) or zlib
    /// (40056 = 78 9c ..) are still safetensors to the sniffer.
    #[test]
    fn lengths_that_look_like_compressors() {
        for n in [560_927usize, 40_056] {
            let mut h = String::from("{}");
            h.push_str(&" ".repeat(n - 2));
            let f = file(&h, 0);
            assert_eq!(
                crate::sniff::sniff(&f),
                crate::sniff::Sniffed::Safetensors,
                "{n}"
            );
            assert_eq!(parse(&f).unwrap().issues, vec![]);
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(
            parse(&file(&deep, 0)),
            Err(SafetensorsError::InvalidJson(_))
        ));
    }
}
