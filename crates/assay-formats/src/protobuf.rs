//! The protocol-buffer wire format, walked without decoding: for recognising ONNX and
//! TensorFlow files by their bytes, and for measuring a message tree before `prost`
//! allocates it.
//!
//! `prost` decodes whatever the bytes declare: two bytes of input can become a message
//! struct of a hundred bytes, so a hostile file of a few megabytes could ask for
//! gigabytes. [`survey`] walks the same fields first, with no allocation, and counts the
//! messages and fields `prost` would build; callers refuse inputs over their limits and
//! only then decode. Field numbers that a parser does not declare are skipped by both.
//!
//! The walk is as tolerant as the C++ runtime that ONNX Runtime and TensorFlow use: a
//! known field with an unexpected wire type is an unknown field, groups are skipped.

/// The `prost` trait of the decoded message types, for callers that build messages (tests).
pub use prost::Message;

/// Protobuf messages larger than this are refused by the C++ runtime (`INT_MAX`), so no
/// loader reads them; a larger input is not a model file.
pub const MAX_MESSAGE_SIZE: u64 = i32::MAX as u64;

/// How deep [`survey`] follows nested messages. It is below `prost`'s own recursion limit
/// of 100 (decoding fails past that), so a deep file is reported as over *this* limit,
/// with a clear message, before `prost` sees it.
pub const MAX_MESSAGE_DEPTH: u32 = 64;

/// Wire types (the low three bits of a field key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireType {
    Varint,
    Fixed64,
    Len,
    StartGroup,
    EndGroup,
    Fixed32,
}

impl WireType {
    fn from_bits(b: u64) -> Option<WireType> {
        Some(match b {
            0 => WireType::Varint,
            1 => WireType::Fixed64,
            2 => WireType::Len,
            3 => WireType::StartGroup,
            4 => WireType::EndGroup,
            5 => WireType::Fixed32,
            _ => return None,
        })
    }
}

/// One field of a message, as the wire holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    pub number: u32,
    pub value: Value<'a>,
    /// Offset of the field's key from the start of the buffer the walk began on.
    pub offset: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    /// A length-delimited field: a string, bytes, a sub-message or a packed array.
    Len(&'a [u8]),
    /// A (deprecated) group; its contents were skipped.
    Group,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("truncated at byte {0}")]
    Truncated(usize),
    #[error("varint longer than 10 bytes at byte {0}")]
    LongVarint(usize),
    #[error("invalid wire type {1} at byte {0}")]
    BadWireType(usize, u8),
    #[error("field number 0 or above 2^29 at byte {0}")]
    BadFieldNumber(usize),
    #[error("end-group without a matching start-group at byte {0}")]
    UnmatchedEndGroup(usize),
    #[error("groups nested deeper than {MAX_MESSAGE_DEPTH} at byte {0}")]
    GroupTooDeep(usize),
}

impl WireError {
    /// Where in the walked buffer the problem is.
    pub fn offset(&self) -> usize {
        match *self {
            WireError::Truncated(o)
            | WireError::LongVarint(o)
            | WireError::BadWireType(o, _)
            | WireError::BadFieldNumber(o)
            | WireError::UnmatchedEndGroup(o)
            | WireError::GroupTooDeep(o) => o,
        }
    }
}

/// The fields of one message, in wire order. After an error the iterator is finished.
pub struct Fields<'a> {
    data: &'a [u8],
    pos: usize,
    /// Offset of `data` within the buffer offsets are reported against.
    base: usize,
    failed: bool,
}

impl<'a> Fields<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Fields::at(data, 0)
    }

    /// Fields of a sub-message that starts `base` bytes into the outer buffer.
    pub fn at(data: &'a [u8], base: usize) -> Self {
        Fields {
            data,
            pos: 0,
            base,
            failed: false,
        }
    }

    fn varint(&mut self) -> Result<u64, WireError> {
        let start = self.base + self.pos;
        let mut v: u64 = 0;
        for i in 0..10 {
            let Some(&b) = self.data.get(self.pos) else {
                return Err(WireError::Truncated(start));
            };
            self.pos += 1;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(WireError::LongVarint(start))
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], WireError> {
        let start = self.base + self.pos;
        let n = usize::try_from(n).map_err(|_| WireError::Truncated(start))?;
        let end = self.pos.checked_add(n).ok_or(WireError::Truncated(start))?;
        let s = self
            .data
            .get(self.pos..end)
            .ok_or(WireError::Truncated(start))?;
        self.pos = end;
        Ok(s)
    }

    fn key(&mut self) -> Result<(u32, WireType, usize), WireError> {
        let at = self.base + self.pos;
        let key = self.varint()?;
        let wt = WireType::from_bits(key & 7).ok_or(WireError::BadWireType(at, (key & 7) as u8))?;
        let number = key >> 3;
        if number == 0 || number >= 1 << 29 {
            return Err(WireError::BadFieldNumber(at));
        }
        Ok((number as u32, wt, at))
    }

    /// Skips a group whose start key has just been read, up to its end key.
    fn skip_group(&mut self, number: u32) -> Result<(), WireError> {
        // Open group numbers; the walk is iterative so a deep file cannot exhaust the stack.
        let mut open: Vec<u32> = vec![number];
        while let Some(&top) = open.last() {
            let (n, wt, here) = self.key()?;
            match wt {
                WireType::Varint => {
                    self.varint()?;
                }
                WireType::Fixed64 => {
                    self.take(8)?;
                }
                WireType::Fixed32 => {
                    self.take(4)?;
                }
                WireType::Len => {
                    let len = self.varint()?;
                    self.take(len)?;
                }
                WireType::StartGroup => {
                    if open.len() as u32 >= MAX_MESSAGE_DEPTH {
                        return Err(WireError::GroupTooDeep(here));
                    }
                    open.push(n);
                }
                WireType::EndGroup => {
                    if n != top {
                        return Err(WireError::UnmatchedEndGroup(here));
                    }
                    open.pop();
                }
            }
        }
        Ok(())
    }

    fn next_field(&mut self) -> Result<Field<'a>, WireError> {
        let (number, wt, offset) = self.key()?;
        let value = match wt {
            WireType::Varint => Value::Varint(self.varint()?),
            WireType::Fixed64 => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Value::Fixed64(u64::from_le_bytes(a))
            }
            WireType::Fixed32 => {
                let b = self.take(4)?;
                let mut a = [0u8; 4];
                a.copy_from_slice(b);
                Value::Fixed32(u32::from_le_bytes(a))
            }
            WireType::Len => {
                let len = self.varint()?;
                Value::Len(self.take(len)?)
            }
            WireType::StartGroup => {
                self.skip_group(number)?;
                Value::Group
            }
            WireType::EndGroup => return Err(WireError::UnmatchedEndGroup(offset)),
        };
        Ok(Field {
            number,
            value,
            offset,
        })
    }

    /// Offset (in the outer buffer) of the next unread byte.
    pub fn position(&self) -> usize {
        self.base + self.pos
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.data.len() {
            return None;
        }
        let r = self.next_field();
        if r.is_err() {
            self.failed = true;
        }
        Some(r)
    }
}

/// Which fields of a message hold sub-messages that a parser decodes. Only those are
/// followed; every other field is counted and skipped.
pub struct Schema {
    /// The message's name, as reported in counts and errors.
    pub name: &'static str,
    pub messages: &'static [(u32, &'static Schema)],
}

impl Schema {
    fn child(&self, number: u32) -> Option<&'static Schema> {
        self.messages
            .iter()
            .find(|(n, _)| *n == number)
            .map(|(_, s)| *s)
    }
}

/// Bounds on what [`survey`] accepts.
#[derive(Debug, Clone)]
pub struct SurveyLimits {
    /// Nesting of messages (the top-level message is depth 0); at most [`MAX_MESSAGE_DEPTH`].
    pub max_depth: u32,
    /// Messages in the whole tree, the top one included.
    pub max_messages: u64,
    /// Fields in the whole tree, known or not.
    pub max_fields: u64,
}

/// What the walk counted.
#[derive(Debug, Clone, Default)]
pub struct Survey {
    pub messages: u64,
    pub fields: u64,
    pub deepest: u32,
    /// Messages of each schema, by schema name.
    pub counts: Vec<(&'static str, u64)>,
}

impl Survey {
    /// How many messages of the schema called `name` the tree holds.
    pub fn count(&self, name: &str) -> u64 {
        self.counts
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, c)| *c)
            .unwrap_or(0)
    }

    fn bump(&mut self, name: &'static str) {
        match self.counts.iter_mut().find(|(n, _)| *n == name) {
            Some((_, c)) => *c += 1,
            None => self.counts.push((name, 1)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SurveyError {
    #[error("{0} (inside {1})")]
    Wire(WireError, &'static str),
    #[error("messages nested deeper than {0} (at byte {1})")]
    TooDeep(u32, usize),
    #[error("more than {0} messages")]
    TooManyMessages(u64),
    #[error("more than {0} fields")]
    TooManyFields(u64),
}

/// Walks the message tree of `data` as `schema` describes it, counting, never allocating
/// per field. Succeeds only if every message in the tree is well-formed on the wire.
pub fn survey(
    data: &[u8],
    schema: &'static Schema,
    limits: &SurveyLimits,
) -> Result<Survey, SurveyError> {
    let mut s = Survey::default();
    let max_depth = limits.max_depth.min(MAX_MESSAGE_DEPTH);
    // An explicit stack of field iterators instead of recursion.
    let mut stack: Vec<(Fields, &'static Schema)> = vec![(Fields::new(data), schema)];
    s.messages = 1;
    s.bump(schema.name);
    while let Some((fields, sch)) = stack.last_mut() {
        let sch: &'static Schema = sch;
        let Some(f) = fields.next() else {
            stack.pop();
            continue;
        };
        let f = f.map_err(|e| SurveyError::Wire(e, sch.name))?;
        s.fields += 1;
        if s.fields > limits.max_fields {
            return Err(SurveyError::TooManyFields(limits.max_fields));
        }
        let Value::Len(body) = f.value else { continue };
        let Some(child) = sch.child(f.number) else {
            continue;
        };
        let depth = stack.len() as u32;
        if depth > max_depth {
            return Err(SurveyError::TooDeep(max_depth, f.offset));
        }
        s.deepest = s.deepest.max(depth);
        s.messages += 1;
        if s.messages > limits.max_messages {
            return Err(SurveyError::TooManyMessages(limits.max_messages));
        }
        s.bump(child.name);
        // The body starts after the key and length; its offset is recomputed from the
        // parent's position, which now sits just past the body.
        let base = fields_position_after(stack.last(), body.len());
        stack.push((Fields::at(body, base), child));
    }
    Ok(s)
}

fn fields_position_after(parent: Option<&(Fields, &'static Schema)>, body_len: usize) -> usize {
    parent
        .map(|(f, _)| f.position().saturating_sub(body_len))
        .unwrap_or(0)
}

/// The top-level fields of `data`, all of them, or the error that stopped the walk and
/// the fields read before it.
pub fn top_level(data: &[u8]) -> (Vec<Field<'_>>, Option<WireError>) {
    let mut out = Vec::new();
    for f in Fields::new(data) {
        match f {
            Ok(f) => out.push(f),
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

/// Calls `visit` on every top-level field of `data`, collecting nothing (a file of
/// millions of tiny fields costs time linear in its size and no memory). False when the
/// wire is invalid or `visit` returns false.
pub fn each_field<'a>(data: &'a [u8], mut visit: impl FnMut(&Field<'a>) -> bool) -> bool {
    for f in Fields::new(data) {
        match f {
            Ok(f) if visit(&f) => {}
            _ => return false,
        }
    }
    true
}

/// Text of a string field, with invalid UTF-8 replaced (proto2 strings are not checked
/// by the C++ runtime, so a loader accepts them).
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    static LEAF: Schema = Schema {
        name: "leaf",
        messages: &[],
    };
    static NODE: Schema = Schema {
        name: "node",
        messages: &[(1, &NODE), (2, &LEAF)],
    };

    fn limits() -> SurveyLimits {
        SurveyLimits {
            max_depth: 64,
            max_messages: 100,
            max_fields: 1000,
        }
    }

    #[test]
    fn reads_every_wire_type() {
        // 1: varint 150, 2: "hi", 3: fixed32, 4: fixed64, 5: group {6: varint 1}
        let data = b"\x08\x96\x01\x12\x02hi\x1d\x01\x00\x00\x00\x21\x02\x00\x00\x00\x00\x00\x00\x00\x2b\x30\x01\x2c";
        let (fields, err) = top_level(data);
        assert_eq!(err, None);
        assert_eq!(fields.len(), 5);
        assert_eq!(fields[0].value, Value::Varint(150));
        assert_eq!(fields[1].value, Value::Len(b"hi"));
        assert_eq!(fields[2].value, Value::Fixed32(1));
        assert_eq!(fields[3].value, Value::Fixed64(2));
        assert_eq!(fields[4].value, Value::Group);
    }

    #[test]
    fn rejects_bad_wire() {
        assert!(matches!(
            top_level(b"\x12\x05ab").1,
            Some(WireError::Truncated(2))
        ));
        assert!(matches!(
            top_level(b"\x0f").1,
            Some(WireError::BadWireType(0, 7))
        ));
        assert!(matches!(
            top_level(b"\x00").1,
            Some(WireError::BadFieldNumber(0))
        ));
        assert!(matches!(
            top_level(b"\x0c").1,
            Some(WireError::UnmatchedEndGroup(0))
        ));
        assert!(matches!(
            top_level(b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01").1,
            Some(WireError::LongVarint(1))
        ));
        // A group opened 1000 times.
        let deep = vec![0x0bu8; 1000];
        assert!(matches!(
            top_level(&deep).1,
            Some(WireError::GroupTooDeep(_))
        ));
    }

    #[test]
    fn survey_counts_and_bounds() {
        // node { node { leaf {} } leaf {} }
        let inner = b"\x0a\x02\x12\x00\x12\x00";
        let s = survey(inner, &NODE, &limits()).unwrap();
        assert_eq!(s.messages, 4);
        assert_eq!(s.count("node"), 2);
        assert_eq!(s.count("leaf"), 2);
        assert_eq!(s.deepest, 2);

        // Nesting 10 deep.
        let mut deep: Vec<u8> = Vec::new();
        for _ in 0..10 {
            let mut outer = vec![0x0a, deep.len() as u8];
            outer.extend(&deep);
            deep = outer;
        }
        let tight = SurveyLimits {
            max_depth: 3,
            ..limits()
        };
        assert!(matches!(
            survey(&deep, &NODE, &tight),
            Err(SurveyError::TooDeep(3, _))
        ));

        let many = b"\x12\x00".repeat(200);
        assert!(matches!(
            survey(&many, &NODE, &limits()),
            Err(SurveyError::TooManyMessages(100))
        ));
        // A bad sub-message is an error even though the outer wire is fine.
        assert!(matches!(
            survey(b"\x0a\x02\x0f\x00", &NODE, &limits()),
            Err(SurveyError::Wire(WireError::BadWireType(2, 7), "node"))
        ));
    }
}
