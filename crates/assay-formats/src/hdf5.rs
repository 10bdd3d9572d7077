//! The attributes of an HDF5 file's root group, read without a C library: what a legacy
//! Keras `.h5` model keeps its architecture in (`model_config`, `training_config`,
//! `keras_version`, `backend`). Datasets (the weights) are located by [`datasets`].
//!
//! Supported, as the HDF5 library writes them: superblocks v0–v3 (with a user block at
//! 512, 1024, 2048 … bytes), object headers v1 and v2 with continuation blocks, compact
//! attribute messages v1–v3, dense attribute storage (attribute-info message → fractal
//! heap + version 2 B-tree name index, with managed, huge and tiny heap objects), and
//! fixed-length and variable-length string values (the latter from global heap
//! collections). h5py 3 writes `bytes` and `str` attributes as variable-length strings,
//! h5py 2 wrote `bytes` as fixed-length ones.
//!
//! Anything else that holds an attribute (shared messages, committed datatypes, filtered
//! heaps) is returned as a [`Problem`] naming what could not be read, never skipped.

use std::collections::{HashMap, HashSet};

pub mod datasets;

/// `\x89HDF\r\n\x1a\n`.
pub const SIGNATURE: &[u8; 8] = b"\x89HDF\r\n\x1a\n";
/// Largest user block searched for the signature (the library tries every power of two
/// from 512 up to the end of the file).
pub const MAX_USERBLOCK: u64 = 1 << 40;

/// Bounds on one read.
#[derive(Debug, Clone)]
pub struct Hdf5Limits {
    /// Messages read from the root object header, over all its chunks.
    pub max_messages: usize,
    /// Continuation chunks followed.
    pub max_chunks: usize,
    /// Attributes returned.
    pub max_attributes: usize,
    /// Bytes of one attribute value (all its strings together).
    pub max_value: u64,
    /// Strings in one attribute value.
    pub max_elements: u64,
    /// Version 2 B-tree depth, and fractal heap indirect-block nesting.
    pub max_tree_depth: u16,
    /// B-tree nodes and heap blocks visited.
    pub max_nodes: usize,
}

impl Default for Hdf5Limits {
    fn default() -> Self {
        Hdf5Limits {
            max_messages: 100_000,
            max_chunks: 10_000,
            max_attributes: 100_000,
            max_value: 64 << 20,
            max_elements: 100_000,
            max_tree_depth: 16,
            max_nodes: 100_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Hdf5Error {
    #[error("no HDF5 signature")]
    NoSignature,
    #[error("superblock: {0}")]
    Superblock(String),
    #[error("root group object header: {0}")]
    RootHeader(String),
}

/// The root group's attributes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RootAttributes {
    /// Where the signature (and so the base address) is: 0, or the user block's size.
    pub base: u64,
    pub superblock_version: u8,
    pub object_header_version: u8,
    /// Attributes were (also) in dense storage.
    pub dense: bool,
    pub attributes: Vec<Attribute>,
    /// Attributes, or parts of the header, that could not be read.
    pub problems: Vec<Problem>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    pub name: String,
    pub value: Value,
    /// File offset of the attribute message (or of the heap object holding it).
    pub offset: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// One entry per element (a scalar has one), trailing NULs removed like NumPy does.
    Strings(Vec<Vec<u8>>),
    /// Anything that is not a string: its datatype class and element count.
    Other { class: u8, elements: u64 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// The attribute's name, when it was read before the failure.
    pub name: Option<String>,
    pub offset: u64,
    pub reason: String,
}

/// Where the signature is: 0, or a power of two from 512 that is inside the file.
pub fn signature_offset(data: &[u8]) -> Option<u64> {
    let mut off: u64 = 0;
    loop {
        let at = usize::try_from(off).ok()?;
        match data.get(at..at.checked_add(8)?) {
            Some(s) if s == SIGNATURE => return Some(off),
            Some(_) => {}
            None => return None,
        }
        off = if off == 0 { 512 } else { off.checked_mul(2)? };
        if off > MAX_USERBLOCK {
            return None;
        }
    }
}

type R<T> = Result<T, String>;

/// Sizes and base address every structure is read with.
#[derive(Clone, Copy)]
struct Geometry {
    base: u64,
    /// Size of offsets (addresses), 2..=8.
    o: usize,
    /// Size of lengths, 2..=8.
    l: usize,
}

/// A bounded little-endian cursor over the file.
struct Cur<'d> {
    data: &'d [u8],
    pos: usize,
}

impl<'d> Cur<'d> {
    fn at(data: &'d [u8], pos: u64) -> R<Self> {
        let pos = usize::try_from(pos).map_err(|_| format!("offset {pos} is out of range"))?;
        if pos > data.len() {
            return Err(format!("offset {pos} is past the end of the file"));
        }
        Ok(Cur { data, pos })
    }
    fn bytes(&mut self, n: usize) -> R<&'d [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| format!("structure at {} runs past the end of the file", self.pos))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn skip(&mut self, n: usize) -> R<()> {
        self.bytes(n).map(|_| ())
    }
    fn u8(&mut self) -> R<u8> {
        Ok(self.bytes(1)?[0])
    }
    fn u16(&mut self) -> R<u16> {
        Ok(self.uint(2)? as u16)
    }
    fn u32(&mut self) -> R<u32> {
        Ok(self.uint(4)? as u32)
    }
    /// An unsigned little-endian integer of `n` (≤ 8) bytes.
    fn uint(&mut self, n: usize) -> R<u64> {
        let b = self.bytes(n)?;
        Ok(le(b))
    }
    fn sig(&mut self, expect: &[u8; 4]) -> R<()> {
        let at = self.pos;
        let s = self.bytes(4)?;
        if s != expect {
            return Err(format!(
                "expected {} at {at}, found {:02x?}",
                String::from_utf8_lossy(expect),
                s
            ));
        }
        Ok(())
    }
}

fn le(b: &[u8]) -> u64 {
    b.iter()
        .take(8)
        .enumerate()
        .fold(0u64, |acc, (i, &x)| acc | (u64::from(x) << (8 * i)))
}

impl Geometry {
    fn undefined(&self, addr: u64) -> bool {
        self.o >= 8 && addr == u64::MAX || self.o < 8 && addr == (1u64 << (8 * self.o)) - 1
    }
    /// A file position for an address relative to the base.
    fn pos(&self, addr: u64) -> R<u64> {
        if self.undefined(addr) {
            return Err("undefined address".into());
        }
        self.base
            .checked_add(addr)
            .ok_or_else(|| format!("address {addr} overflows"))
    }
    fn cur<'d>(&self, data: &'d [u8], addr: u64) -> R<Cur<'d>> {
        Cur::at(data, self.pos(addr)?)
    }
}

/// Reads the root group's attributes.
pub fn root_attributes(data: &[u8], limits: &Hdf5Limits) -> Result<RootAttributes, Hdf5Error> {
    let base = signature_offset(data).ok_or(Hdf5Error::NoSignature)?;
    let (geo, version, root) = superblock(data, base).map_err(Hdf5Error::Superblock)?;
    let mut out = RootAttributes {
        base,
        superblock_version: version,
        ..Default::default()
    };
    let mut reader = Reader {
        data,
        geo,
        limits,
        nodes: 0,
        heaps: HashMap::new(),
        out: &mut out,
    };
    reader.object_header(root).map_err(Hdf5Error::RootHeader)?;
    Ok(out)
}

/// Sizes, superblock version and root object header address.
fn superblock(data: &[u8], base: u64) -> R<(Geometry, u8, u64)> {
    let mut c = Cur::at(data, base)?;
    c.skip(8)?;
    let version = c.u8()?;
    match version {
        0 | 1 => {
            c.skip(4)?; // free-space, root entry, reserved, shared-header versions
            let o = c.u8()? as usize;
            let l = c.u8()? as usize;
            check_sizes(o, l)?;
            c.skip(1)?; // reserved
            c.skip(2 + 2 + 4)?; // leaf K, internal K, consistency flags
            if version == 1 {
                c.skip(4)?; // indexed storage K, reserved
            }
            c.skip(4 * o)?; // base, free-space, end-of-file, driver-info addresses
            // Root group symbol table entry: link name offset, object header address.
            c.skip(o)?;
            let root = c.uint(o)?;
            Ok((Geometry { base, o, l }, version, root))
        }
        2 | 3 => {
            let o = c.u8()? as usize;
            let l = c.u8()? as usize;
            check_sizes(o, l)?;
            c.skip(1)?; // consistency flags
            c.skip(3 * o)?; // base, superblock extension, end-of-file addresses
            let root = c.uint(o)?;
            // The checksum is not verified: the library refuses a file whose superblock
            // checksum is wrong, so a mismatch cannot hide anything from it.
            Ok((Geometry { base, o, l }, version, root))
        }
        v => Err(format!("unknown superblock version {v}")),
    }
}

fn check_sizes(o: usize, l: usize) -> R<()> {
    if !matches!(o, 2 | 4 | 8) || !matches!(l, 2 | 4 | 8) {
        return Err(format!("unsupported sizes of offsets {o} / lengths {l}"));
    }
    Ok(())
}

struct Reader<'a, 'd> {
    data: &'d [u8],
    geo: Geometry,
    limits: &'a Hdf5Limits,
    /// B-tree nodes, heap blocks and header chunks visited.
    nodes: usize,
    /// Global heap collections already parsed, by address.
    heaps: HashMap<u64, R<HeapObjects>>,
    out: &'a mut RootAttributes,
}

/// A global heap collection's objects: index → (file offset, length).
type HeapObjects = HashMap<u16, (usize, usize)>;

/// One header message located in the file.
struct Message<'d> {
    kind: u16,
    flags: u8,
    body: &'d [u8],
    offset: u64,
}

const MSG_NIL: u16 = 0x0000;
const MSG_ATTRIBUTE: u16 = 0x000C;
const MSG_CONTINUATION: u16 = 0x0010;
const MSG_ATTRIBUTE_INFO: u16 = 0x0015;
/// Message flag: the message is shared (stored elsewhere, referenced here).
const MSG_FLAG_SHARED: u8 = 0x02;

impl<'d> Reader<'_, 'd> {
    fn visit(&mut self) -> R<()> {
        self.nodes += 1;
        if self.nodes > self.limits.max_nodes {
            return Err(format!(
                "more than {} header chunks, B-tree nodes and heap blocks",
                self.limits.max_nodes
            ));
        }
        Ok(())
    }

    fn problem(&mut self, name: Option<String>, offset: u64, reason: String) {
        if self.out.problems.len() < self.limits.max_attributes {
            self.out.problems.push(Problem {
                name,
                offset,
                reason,
            });
        }
    }

    /// Reads the messages of the object header at `addr` and collects its attributes.
    fn object_header(&mut self, addr: u64) -> R<()> {
        let messages = self.header_messages(addr)?;
        for m in messages {
            match m.kind {
                MSG_ATTRIBUTE => {
                    if m.flags & MSG_FLAG_SHARED != 0 {
                        self.problem(
                            None,
                            m.offset,
                            "attribute stored as a shared message (not read)".into(),
                        );
                        continue;
                    }
                    self.attribute(m.body, m.offset);
                }
                MSG_ATTRIBUTE_INFO => {
                    self.out.dense = true;
                    if let Err(e) = self.dense_attributes(m.body) {
                        self.problem(None, m.offset, format!("dense attribute storage: {e}"));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn header_messages(&mut self, addr: u64) -> R<Vec<Message<'d>>> {
        let data: &'d [u8] = self.data;
        let mut c = self.geo.cur(data, addr)?;
        let start = c.pos;
        let mut messages = Vec::new();
        let mut chunks: Vec<(u64, u64)> = Vec::new();
        let first = c.bytes(4)?;
        let v2 = first == b"OHDR";
        let mut seen: HashSet<u64> = HashSet::new();
        if v2 {
            let version = c.u8()?;
            if version != 2 {
                return Err(format!("unknown object header version {version}"));
            }
            self.out.object_header_version = 2;
            let flags = c.u8()?;
            if flags & 0x20 != 0 {
                c.skip(16)?; // access, modification, change, birth times
            }
            if flags & 0x10 != 0 {
                c.skip(4)?; // max compact, min dense attribute counts
            }
            let size = c.uint(1 << (flags & 3))?;
            let tracked = flags & 0x04 != 0;
            let body = c.bytes(usize::try_from(size).map_err(|e| e.to_string())?)?;
            self.visit()?;
            self.messages_v2(
                body,
                c.pos - body.len(),
                tracked,
                &mut messages,
                &mut chunks,
            )?;
            let mut i = 0;
            while let Some(&(caddr, clen)) = chunks.get(i) {
                i += 1;
                self.chunk_guard(&mut seen, caddr, i)?;
                let mut cc = self.geo.cur(data, caddr)?;
                cc.sig(b"OCHK")?;
                let len = usize::try_from(clen)
                    .ok()
                    .and_then(|l| l.checked_sub(8))
                    .ok_or("continuation chunk shorter than its signature and checksum")?;
                let body = cc.bytes(len)?;
                self.messages_v2(
                    body,
                    cc.pos - body.len(),
                    tracked,
                    &mut messages,
                    &mut chunks,
                )?;
            }
        } else {
            let version = first[0];
            if version != 1 {
                return Err(format!(
                    "unknown object header version {version} at {start}"
                ));
            }
            self.out.object_header_version = 1;
            // version, reserved, message count (2) are read; reference count (4), header
            // size (4), then padding to an 8-byte boundary.
            c.skip(4)?;
            let size = c.u32()?;
            c.skip(4)?;
            let body = c.bytes(size as usize)?;
            self.visit()?;
            self.messages_v1(body, c.pos - body.len(), &mut messages, &mut chunks)?;
            let mut i = 0;
            while let Some(&(caddr, clen)) = chunks.get(i) {
                i += 1;
                self.chunk_guard(&mut seen, caddr, i)?;
                let mut cc = self.geo.cur(data, caddr)?;
                let body = cc.bytes(usize::try_from(clen).map_err(|e| e.to_string())?)?;
                self.messages_v1(body, cc.pos - body.len(), &mut messages, &mut chunks)?;
            }
        }
        Ok(messages)
    }

    fn chunk_guard(&mut self, seen: &mut HashSet<u64>, addr: u64, n: usize) -> R<()> {
        if n > self.limits.max_chunks {
            return Err(format!(
                "more than {} continuation chunks",
                self.limits.max_chunks
            ));
        }
        if !seen.insert(addr) {
            return Err(format!(
                "continuation chunk at {addr} is visited twice (a loop)"
            ));
        }
        self.visit()
    }

    fn push_message(
        &mut self,
        m: Message<'d>,
        messages: &mut Vec<Message<'d>>,
        chunks: &mut Vec<(u64, u64)>,
    ) -> R<()> {
        if messages.len() >= self.limits.max_messages {
            return Err(format!(
                "more than {} header messages",
                self.limits.max_messages
            ));
        }
        if m.kind == MSG_CONTINUATION {
            let mut c = Cur {
                data: m.body,
                pos: 0,
            };
            let addr = c.uint(self.geo.o)?;
            let len = c.uint(self.geo.l)?;
            chunks.push((addr, len));
        }
        messages.push(m);
        Ok(())
    }

    fn messages_v1(
        &mut self,
        body: &'d [u8],
        at: usize,
        messages: &mut Vec<Message<'d>>,
        chunks: &mut Vec<(u64, u64)>,
    ) -> R<()> {
        let mut c = Cur { data: body, pos: 0 };
        while body.len() - c.pos >= 8 {
            let offset = (at + c.pos) as u64;
            let kind = c.u16()?;
            let size = c.u16()? as usize;
            let flags = c.u8()?;
            c.skip(3)?;
            let b = c.bytes(size).map_err(|_| {
                format!("header message at {offset} runs past the end of its chunk")
            })?;
            if kind != MSG_NIL {
                self.push_message(
                    Message {
                        kind,
                        flags,
                        body: b,
                        offset,
                    },
                    messages,
                    chunks,
                )?;
            }
        }
        Ok(())
    }

    fn messages_v2(
        &mut self,
        body: &'d [u8],
        at: usize,
        tracked: bool,
        messages: &mut Vec<Message<'d>>,
        chunks: &mut Vec<(u64, u64)>,
    ) -> R<()> {
        let head = if tracked { 6 } else { 4 };
        let mut c = Cur { data: body, pos: 0 };
        // A gap smaller than a message header may end the chunk.
        while body.len() - c.pos >= head {
            let offset = (at + c.pos) as u64;
            let kind = u16::from(c.u8()?);
            let size = c.u16()? as usize;
            let flags = c.u8()?;
            if tracked {
                c.skip(2)?;
            }
            let b = c.bytes(size).map_err(|_| {
                format!("header message at {offset} runs past the end of its chunk")
            })?;
            if kind != MSG_NIL {
                self.push_message(
                    Message {
                        kind,
                        flags,
                        body: b,
                        offset,
                    },
                    messages,
                    chunks,
                )?;
            }
        }
        Ok(())
    }

    /// Parses one attribute message and records the attribute or the problem.
    fn attribute(&mut self, body: &[u8], offset: u64) {
        if self.out.attributes.len() >= self.limits.max_attributes {
            if self.out.attributes.len() == self.limits.max_attributes {
                self.problem(
                    None,
                    offset,
                    format!("more than {} attributes", self.limits.max_attributes),
                );
            }
            return;
        }
        let mut name = None;
        match self.attribute_inner(body, &mut name) {
            Ok(value) => self.out.attributes.push(Attribute {
                name: name.unwrap_or_default(),
                value,
                offset,
            }),
            Err(e) => self.problem(name, offset, e),
        }
    }

    fn attribute_inner(&mut self, body: &[u8], name_out: &mut Option<String>) -> R<Value> {
        let mut c = Cur { data: body, pos: 0 };
        let version = c.u8()?;
        let flags = c.u8()?; // reserved in version 1
        let name_len = c.u16()? as usize;
        let type_len = c.u16()? as usize;
        let space_len = c.u16()? as usize;
        if version == 3 {
            c.skip(1)?; // name character set
        }
        let pad = |n: usize| if version == 1 { n.div_ceil(8) * 8 } else { n };
        let name = c.bytes(pad(name_len))?;
        let name = name.get(..name_len).unwrap_or(name);
        let name = name.split(|&b| b == 0).next().unwrap_or(name);
        *name_out = Some(String::from_utf8_lossy(name).into_owned());
        if !matches!(version, 1..=3) {
            return Err(format!("unknown attribute message version {version}"));
        }
        if version > 1 && flags & 0x01 != 0 {
            return Err("datatype is shared (a committed datatype): not read".into());
        }
        if version > 1 && flags & 0x02 != 0 {
            return Err("dataspace is shared: not read".into());
        }
        let dtype = c.bytes(pad(type_len))?;
        let space = c.bytes(pad(space_len))?;
        let elements = dataspace_elements(space, self.geo.l)?;
        let dt = Datatype::parse(dtype, self.geo)?;
        if !matches!(dt.kind, TypeKind::Other(_)) && elements > self.limits.max_elements {
            return Err(format!(
                "{elements} strings exceed the limit of {}",
                self.limits.max_elements
            ));
        }
        let size = u64::from(dt.size);
        let total = elements
            .checked_mul(size)
            .filter(|&t| t <= self.limits.max_value)
            .ok_or_else(|| {
                format!(
                    "value of {elements} × {size} bytes exceeds the limit of {} bytes",
                    self.limits.max_value
                )
            })?;
        let raw = c.bytes(total as usize).map_err(|_| {
            format!("value of {total} bytes runs past the end of the attribute message")
        })?;
        match dt.kind {
            TypeKind::FixedString => Ok(Value::Strings(
                raw.chunks(dt.size.max(1) as usize)
                    .take(elements as usize)
                    .map(|s| trim_nuls(s).to_vec())
                    .collect(),
            )),
            TypeKind::VlenString => {
                let mut out = Vec::new();
                let mut budget = self.limits.max_value;
                for el in raw.chunks(dt.size as usize).take(elements as usize) {
                    let s = self.vlen_string(el, &mut budget)?;
                    out.push(trim_nuls(&s).to_vec());
                }
                Ok(Value::Strings(out))
            }
            TypeKind::Other(class) => Ok(Value::Other { class, elements }),
        }
    }

    /// Reads one variable-length string element: length, global heap collection address,
    /// object index.
    fn vlen_string(&mut self, el: &[u8], budget: &mut u64) -> R<Vec<u8>> {
        let mut c = Cur { data: el, pos: 0 };
        let len = u64::from(c.u32()?);
        let addr = c.uint(self.geo.o)?;
        let index = c.u32()?;
        if len == 0 {
            return Ok(Vec::new());
        }
        if len > *budget {
            return Err(format!(
                "variable-length strings exceed the limit of {} bytes",
                self.limits.max_value
            ));
        }
        *budget -= len;
        let obj = self.global_heap_object(addr, index)?;
        let len = len as usize;
        obj.get(..len).map(<[u8]>::to_vec).ok_or_else(|| {
            format!(
                "string of {len} bytes is longer than its heap object ({} bytes)",
                obj.len()
            )
        })
    }

    fn global_heap_object(&mut self, addr: u64, index: u32) -> R<&'d [u8]> {
        if !self.heaps.contains_key(&addr) {
            self.visit()?;
            let parsed = self.global_heap_collection(addr);
            self.heaps.insert(addr, parsed);
        }
        let objects = match self.heaps.get(&addr) {
            Some(Ok(o)) => o,
            Some(Err(e)) => return Err(e.clone()),
            None => return Err("global heap cache".into()),
        };
        let &(start, len) = u16::try_from(index)
            .ok()
            .and_then(|i| objects.get(&i))
            .ok_or_else(|| format!("global heap collection at {addr} has no object {index}"))?;
        Ok(&self.data[start..start + len])
    }

    /// Every object of a global heap collection; a repeated index replaces the earlier
    /// one, as the library's reader does.
    fn global_heap_collection(&self, addr: u64) -> R<HeapObjects> {
        let mut c = self.geo.cur(self.data, addr)?;
        let start = c.pos;
        c.sig(b"GCOL")?;
        let version = c.u8()?;
        if version != 1 {
            return Err(format!("unknown global heap version {version}"));
        }
        c.skip(3)?;
        let size = c.uint(self.geo.l)?;
        let end = usize::try_from(size)
            .ok()
            .and_then(|s| start.checked_add(s))
            .filter(|&e| e <= self.data.len())
            .ok_or("global heap collection runs past the end of the file")?;
        let head = 8 + self.geo.l;
        let mut objects = HashMap::new();
        while c.pos + head <= end {
            let idx = c.u16()?;
            c.skip(2 + 4)?; // reference count, reserved
            let osize = c.uint(self.geo.l)?;
            if idx == 0 {
                break; // free space: the end of the objects
            }
            let osize = usize::try_from(osize).map_err(|e| e.to_string())?;
            if c.pos.checked_add(osize).is_none_or(|e| e > end) {
                return Err("global heap object runs past its collection".into());
            }
            objects.insert(idx, (c.pos, osize));
            c.skip(osize)?;
            c.skip(osize.next_multiple_of(8) - osize).ok();
        }
        Ok(objects)
    }

    /// Attribute-info message: attributes in a fractal heap indexed by name in a v2 B-tree.
    fn dense_attributes(&mut self, body: &[u8]) -> R<()> {
        let mut c = Cur { data: body, pos: 0 };
        let version = c.u8()?;
        if version != 0 {
            return Err(format!("unknown attribute info version {version}"));
        }
        let flags = c.u8()?;
        if flags & 0x01 != 0 {
            c.skip(2)?; // maximum creation index
        }
        let heap_addr = c.uint(self.geo.o)?;
        let name_index = c.uint(self.geo.o)?;
        if self.geo.undefined(heap_addr) || self.geo.undefined(name_index) {
            return Ok(()); // no dense attributes
        }
        let heap = FractalHeap::parse(self.data, self.geo, heap_addr)?;
        let mut records = Vec::new();
        self.btree_records(name_index, 8, &mut records)?;
        for (rec, _) in records {
            // Heap ID, message flags (1), creation order (4), name hash (4).
            let id_len = rec.len().saturating_sub(9);
            let id = &rec[..id_len];
            let flags = rec.get(id_len).copied().unwrap_or(0);
            if flags & MSG_FLAG_SHARED != 0 {
                self.problem(
                    None,
                    0,
                    "dense attribute stored as a shared message (not read)".into(),
                );
                continue;
            }
            match self.heap_object(&heap, id) {
                Ok((obj, at)) => self.attribute(&obj, at),
                Err(e) => self.problem(None, heap_addr, format!("attribute heap object: {e}")),
            }
        }
        Ok(())
    }

    /// Every record of a version 2 B-tree of the given type, with the file offset of each.
    fn btree_records(&mut self, addr: u64, want_type: u8, out: &mut Vec<(Vec<u8>, u64)>) -> R<()> {
        let mut c = self.geo.cur(self.data, addr)?;
        c.sig(b"BTHD")?;
        let version = c.u8()?;
        if version != 0 {
            return Err(format!("unknown B-tree header version {version}"));
        }
        let ty = c.u8()?;
        if ty != want_type {
            return Err(format!("B-tree type {ty}, expected {want_type}"));
        }
        let node_size = u64::from(c.u32()?);
        let rec_size = u64::from(c.u16()?);
        let depth = c.u16()?;
        c.skip(2)?; // split and merge percentages
        let root = c.uint(self.geo.o)?;
        let root_nrec = c.u16()?;
        if depth > self.limits.max_tree_depth {
            return Err(format!(
                "B-tree depth {depth} exceeds the limit of {}",
                self.limits.max_tree_depth
            ));
        }
        if rec_size == 0 || rec_size > 256 || node_size <= 10 || node_size > 1 << 24 {
            return Err(format!(
                "implausible B-tree node size {node_size} / record size {rec_size}"
            ));
        }
        if self.geo.undefined(root) || root_nrec == 0 {
            return Ok(());
        }
        let sizes = BtreeSizes::new(node_size, rec_size, depth, self.geo.o)?;
        self.btree_node(&sizes, root, depth, u64::from(root_nrec), out)
    }

    fn btree_node(
        &mut self,
        sizes: &BtreeSizes,
        addr: u64,
        depth: u16,
        nrec: u64,
        out: &mut Vec<(Vec<u8>, u64)>,
    ) -> R<()> {
        self.visit()?;
        let mut c = self.geo.cur(self.data, addr)?;
        c.sig(if depth == 0 { b"BTLF" } else { b"BTIN" })?;
        c.skip(2)?; // version, type
        let max = sizes.max_nrec(depth);
        if nrec > max {
            return Err(format!(
                "B-tree node at {addr} claims {nrec} records, at most {max} fit"
            ));
        }
        let rec_size = sizes.rec_size as usize;
        for _ in 0..nrec {
            if out.len() >= self.limits.max_attributes.saturating_mul(2) {
                return Err("too many B-tree records".into());
            }
            let at = c.pos as u64;
            out.push((c.bytes(rec_size)?.to_vec(), at));
        }
        if depth == 0 {
            return Ok(());
        }
        let mut children = Vec::new();
        for _ in 0..=nrec {
            let child = c.uint(self.geo.o)?;
            let child_nrec = c.uint(sizes.max_nrec_size)?;
            if depth > 1 {
                c.skip(sizes.cum_size(depth - 1))?;
            }
            children.push((child, child_nrec));
        }
        for (child, child_nrec) in children {
            self.btree_node(sizes, child, depth - 1, child_nrec, out)?;
        }
        Ok(())
    }

    /// The bytes of one fractal heap object, and where they are in the file.
    fn heap_object(&mut self, heap: &FractalHeap, id: &[u8]) -> R<(Vec<u8>, u64)> {
        let first = *id.first().ok_or("empty heap ID")?;
        if first >> 6 != 0 {
            return Err(format!("unknown heap ID version {}", first >> 6));
        }
        match (first >> 4) & 3 {
            0 => {
                let mut c = Cur { data: id, pos: 1 };
                let off = c.uint(heap.off_size)?;
                let len = c.uint(heap.len_size)?;
                if len > self.limits.max_value {
                    return Err(format!("heap object of {len} bytes is too large"));
                }
                let at = self.managed_object(heap, off, len)?;
                let start = usize::try_from(at).map_err(|e| e.to_string())?;
                let bytes = self
                    .data
                    .get(start..start + len as usize)
                    .ok_or("heap object runs past the end of the file")?;
                Ok((bytes.to_vec(), at))
            }
            1 => {
                if heap.filtered {
                    return Err("huge object in a filtered heap: not read".into());
                }
                let (addr, len) = if id.len() > self.geo.o + self.geo.l {
                    // Directly accessed: address and length in the ID.
                    let mut c = Cur { data: id, pos: 1 };
                    (c.uint(self.geo.o)?, c.uint(self.geo.l)?)
                } else {
                    let want = le(id.get(1..).unwrap_or(&[]));
                    let mut recs = Vec::new();
                    self.btree_records(heap.huge_btree, 1, &mut recs)?;
                    let mut found = None;
                    for (r, _) in recs {
                        let mut c = Cur { data: &r, pos: 0 };
                        let a = c.uint(self.geo.o)?;
                        let l = c.uint(self.geo.l)?;
                        let i = c.uint(self.geo.l)?;
                        if i == want {
                            found = Some((a, l));
                            break;
                        }
                    }
                    found.ok_or_else(|| format!("huge object {want} not in its B-tree"))?
                };
                if len > self.limits.max_value {
                    return Err(format!("huge heap object of {len} bytes is too large"));
                }
                let at = self.geo.pos(addr)?;
                let start = usize::try_from(at).map_err(|e| e.to_string())?;
                let bytes = self
                    .data
                    .get(start..start.saturating_add(len as usize))
                    .ok_or("huge heap object runs past the end of the file")?;
                Ok((bytes.to_vec(), at))
            }
            2 => {
                let (len, skip) = if id.len() <= 17 {
                    (usize::from(first & 0x0f) + 1, 1)
                } else {
                    let b = *id.get(1).ok_or("short tiny heap ID")?;
                    ((usize::from(first & 0x0f) << 8 | usize::from(b)) + 1, 2)
                };
                let bytes = id
                    .get(skip..skip + len)
                    .ok_or("tiny heap object is longer than its ID")?;
                Ok((bytes.to_vec(), 0))
            }
            t => Err(format!("unknown heap ID type {t}")),
        }
    }

    /// File offset of a managed object at heap offset `off`.
    fn managed_object(&mut self, heap: &FractalHeap, off: u64, len: u64) -> R<u64> {
        if heap.root_rows == 0 {
            // The root is a single direct block of the starting size.
            return self.in_direct_block(heap, heap.root, 0, heap.start_size, off, len);
        }
        let mut iblock = heap.root;
        let mut rows = u64::from(heap.root_rows);
        let mut block_off: u64 = 0;
        let mut rel = off;
        for _ in 0..=self.limits.max_tree_depth {
            self.visit()?;
            let (row, col) = heap.row_col(rel)?;
            if row >= rows {
                return Err(format!("heap offset {off} is beyond its indirect block"));
            }
            let within = rel - heap.row_offset(row)? - col * heap.row_block_size(row)?;
            let mut c = self.geo.cur(self.data, iblock)?;
            c.sig(b"FHIB")?;
            c.skip(1 + self.geo.o + heap.off_size)?; // version, heap header address, block offset
            let direct_rows = rows.min(heap.max_direct_rows);
            let dentry = self.geo.o + if heap.filtered { self.geo.l + 4 } else { 0 };
            let child_block_off =
                block_off + heap.row_offset(row)? + col * heap.row_block_size(row)?;
            if row < heap.max_direct_rows {
                c.skip(((row * heap.width + col) as usize).saturating_mul(dentry))?;
                let child = c.uint(self.geo.o)?;
                if heap.filtered {
                    return Err("filtered fractal heap: not read".into());
                }
                return self.in_direct_block(
                    heap,
                    child,
                    child_block_off,
                    heap.row_block_size(row)?,
                    off,
                    len,
                );
            }
            let skip = (direct_rows * heap.width) as usize * dentry
                + ((row - heap.max_direct_rows) * heap.width + col) as usize * self.geo.o;
            c.skip(skip)?;
            iblock = c.uint(self.geo.o)?;
            rows = heap.indirect_rows(heap.row_block_size(row)?)?;
            block_off = child_block_off;
            rel = within;
        }
        Err("fractal heap indirect blocks nest too deeply".into())
    }

    fn in_direct_block(
        &mut self,
        heap: &FractalHeap,
        addr: u64,
        block_off: u64,
        block_size: u64,
        off: u64,
        len: u64,
    ) -> R<u64> {
        self.visit()?;
        if self.geo.undefined(addr) {
            return Err(format!(
                "heap offset {off} is in a block that was never allocated"
            ));
        }
        let mut c = self.geo.cur(self.data, addr)?;
        c.sig(b"FHDB")?;
        let within = off
            .checked_sub(block_off)
            .ok_or("heap offset before its block")?;
        let header = 5 + self.geo.o + heap.off_size + if heap.checksummed { 4 } else { 0 };
        if within < header as u64 || within.checked_add(len).is_none_or(|e| e > block_size) {
            return Err(format!(
                "heap object at {off} (+{len}) is outside its direct block"
            ));
        }
        let pos = self.geo.pos(addr)?;
        pos.checked_add(within)
            .ok_or_else(|| "offset overflow".into())
    }
}

/// Number of elements in a dataspace message (dimensions are `l` bytes each).
fn dataspace_elements(b: &[u8], l: usize) -> R<u64> {
    match dataspace_dims(b, l)? {
        None => Ok(0),
        Some(dims) => dims.iter().try_fold(1u64, |n, &d| {
            n.checked_mul(d)
                .ok_or_else(|| "dataspace element count overflows".to_string())
        }),
    }
}

/// The dimensions of a dataspace message: `None` for a null dataspace, empty for a scalar.
fn dataspace_dims(b: &[u8], l: usize) -> R<Option<Vec<u64>>> {
    let mut c = Cur { data: b, pos: 0 };
    let version = c.u8()?;
    let rank = c.u8()? as usize;
    let _flags = c.u8()?;
    let kind = match version {
        1 => {
            c.skip(5)?; // reserved
            if rank == 0 { 0 } else { 1 }
        }
        2 => c.u8()?,
        v => return Err(format!("unknown dataspace version {v}")),
    };
    match kind {
        0 => Ok(Some(Vec::new())), // scalar
        2 => Ok(None),             // null
        1 => {
            if rank > 32 {
                return Err(format!("dataspace rank {rank} exceeds 32"));
            }
            let mut dims = Vec::with_capacity(rank);
            for _ in 0..rank {
                dims.push(c.uint(l)?);
            }
            Ok(Some(dims))
        }
        k => Err(format!("unknown dataspace type {k}")),
    }
}

fn trim_nuls(s: &[u8]) -> &[u8] {
    let end = s.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    &s[..end]
}

enum TypeKind {
    FixedString,
    VlenString,
    Other(u8),
}

struct Datatype {
    kind: TypeKind,
    size: u32,
}

impl Datatype {
    fn parse(b: &[u8], geo: Geometry) -> R<Datatype> {
        let mut c = Cur { data: b, pos: 0 };
        let cv = c.u8()?;
        let class = cv & 0x0f;
        let bits = c.uint(3)?;
        let size = c.u32()?;
        let kind = match class {
            3 => TypeKind::FixedString,
            9 if bits & 0x0f == 1 => {
                let expect = 4 + geo.o as u32 + 4;
                if size != expect {
                    return Err(format!(
                        "variable-length string element of {size} bytes, expected {expect}"
                    ));
                }
                TypeKind::VlenString
            }
            c => TypeKind::Other(c),
        };
        Ok(Datatype { kind, size })
    }
}

/// Element-count bookkeeping of a version 2 B-tree (H5B2 header initialisation).
struct BtreeSizes {
    rec_size: u64,
    /// Records per node at each depth (0 = leaves).
    max_nrec: Vec<u64>,
    /// Bytes of the "records in child" field.
    max_nrec_size: usize,
    /// Bytes of the "total records under child" field, per depth.
    cum_nrec_size: Vec<usize>,
}

fn enc_size(n: u64) -> usize {
    (63 - n.max(1).leading_zeros() as usize) / 8 + 1
}

impl BtreeSizes {
    fn new(node_size: u64, rec_size: u64, depth: u16, o: usize) -> R<Self> {
        const PREFIX: u64 = 10; // signature, version, type, checksum
        let leaf = (node_size - PREFIX) / rec_size;
        if leaf == 0 {
            return Err("B-tree node holds no record".into());
        }
        let max_nrec_size = enc_size(leaf);
        let mut max_nrec = vec![leaf];
        let mut cum = vec![leaf];
        let mut cum_size = vec![0usize];
        for d in 1..=usize::from(depth) {
            let ptr =
                o as u64 + max_nrec_size as u64 + if d > 1 { cum_size[d - 1] as u64 } else { 0 };
            let n = node_size
                .checked_sub(PREFIX + ptr)
                .map(|x| x / (rec_size + ptr))
                .unwrap_or(0);
            let c = (n + 1).saturating_mul(cum[d - 1]).saturating_add(n);
            max_nrec.push(n);
            cum.push(c);
            cum_size.push(enc_size(c));
        }
        Ok(BtreeSizes {
            rec_size,
            max_nrec,
            max_nrec_size,
            cum_nrec_size: cum_size,
        })
    }
    fn max_nrec(&self, depth: u16) -> u64 {
        self.max_nrec.get(usize::from(depth)).copied().unwrap_or(0)
    }
    fn cum_size(&self, depth: u16) -> usize {
        self.cum_nrec_size
            .get(usize::from(depth))
            .copied()
            .unwrap_or(0)
    }
}

/// What is needed of a fractal heap header to find objects.
struct FractalHeap {
    off_size: usize,
    len_size: usize,
    filtered: bool,
    checksummed: bool,
    huge_btree: u64,
    width: u64,
    start_size: u64,
    max_direct_rows: u64,
    first_row_bits: u32,
    root: u64,
    root_rows: u16,
}

impl FractalHeap {
    fn parse(data: &[u8], geo: Geometry, addr: u64) -> R<FractalHeap> {
        let mut c = geo.cur(data, addr)?;
        c.sig(b"FRHP")?;
        let version = c.u8()?;
        if version != 0 {
            return Err(format!("unknown fractal heap version {version}"));
        }
        let _id_len = c.u16()?;
        let filter_len = c.u16()?;
        let flags = c.u8()?;
        let max_managed = u64::from(c.u32()?);
        c.skip(geo.l)?; // next huge object ID
        let huge_btree = c.uint(geo.o)?;
        c.skip(geo.l + geo.o + geo.l * 8)?; // free space, manager, managed/allocated/iterator, counts
        let width = u64::from(c.u16()?);
        let start_size = c.uint(geo.l)?;
        let max_direct = c.uint(geo.l)?;
        let max_heap_bits = u32::from(c.u16()?);
        c.skip(2)?; // starting rows in the root indirect block
        let root = c.uint(geo.o)?;
        let root_rows = c.u16()?;
        let pow2 = |x: u64| x.is_power_of_two();
        if !pow2(width) || !pow2(start_size) || !pow2(max_direct) || max_direct < start_size {
            return Err(format!(
                "implausible doubling table (width {width}, start {start_size}, max direct {max_direct})"
            ));
        }
        if max_heap_bits == 0 || max_heap_bits > 64 {
            return Err(format!("implausible maximum heap size 2^{max_heap_bits}"));
        }
        let start_bits = start_size.trailing_zeros();
        let max_direct_bits = max_direct.trailing_zeros();
        let first_row_bits = start_bits + width.trailing_zeros();
        let off_size = max_heap_bits.div_ceil(8) as usize;
        let max_dir_off_size = max_direct_bits.div_ceil(8) as usize;
        let len_size = max_dir_off_size.min(enc_size(max_managed));
        Ok(FractalHeap {
            off_size,
            len_size,
            filtered: filter_len > 0,
            checksummed: flags & 0x02 != 0,
            huge_btree,
            width,
            start_size,
            max_direct_rows: u64::from(max_direct_bits - start_bits) + 2,
            first_row_bits,
            root,
            root_rows,
        })
    }

    fn row_block_size(&self, row: u64) -> R<u64> {
        if row == 0 {
            return Ok(self.start_size);
        }
        self.start_size
            .checked_shl(u32::try_from(row - 1).map_err(|e| e.to_string())?)
            .filter(|&s| s != 0)
            .ok_or_else(|| format!("heap row {row} is too large"))
    }

    fn row_offset(&self, row: u64) -> R<u64> {
        if row == 0 {
            return Ok(0);
        }
        (self.start_size * self.width)
            .checked_shl(u32::try_from(row - 1).map_err(|e| e.to_string())?)
            .filter(|&s| s != 0)
            .ok_or_else(|| format!("heap row {row} is too large"))
    }

    /// Row and column of the block holding offset `rel` of an indirect block.
    fn row_col(&self, rel: u64) -> R<(u64, u64)> {
        let first = self.start_size * self.width;
        let row = if rel < first {
            0
        } else {
            u64::from(63 - (rel / first).leading_zeros()) + 1
        };
        let col = (rel - self.row_offset(row)?) / self.row_block_size(row)?;
        Ok((row, col))
    }

    /// Rows of a child indirect block whose span is `size`… expressed by its row's block
    /// size (the library: log2(size) - first_row_bits + 1).
    fn indirect_rows(&self, size: u64) -> R<u64> {
        let bits = size.trailing_zeros();
        bits.checked_sub(self.first_row_bits)
            .map(|b| u64::from(b) + 1)
            .ok_or_else(|| "child indirect block smaller than a row".into())
    }
}

#[cfg(test)]
mod tests;
