//! The datasets of an HDF5 file — where Keras (`.h5`, `model.weights.h5`) and
//! Transformers (`tf_model.h5`) keep weights — located without reading them.
//!
//! The group tree is walked from the root: version 1 groups (symbol-table message →
//! version 1 B-tree of symbol-table nodes, names in a local heap) and version 2 groups
//! (link messages in the header, or dense links: link-info message → fractal heap +
//! version 2 B-tree of names). Every object is read once, in name order (a second hard
//! link to it is an alias, as `h5py`'s `visititems` sees it once). Of each dataset: its
//! path, shape (dataspace), element type (datatype) and where its bytes are (layout:
//! compact or contiguous). Chunked, filtered (compressed), external and virtual storage
//! are located as [`Storage::Unread`] with the reason, so a caller can say what it did
//! not look at. Soft links are names for objects reached anyway; external links (into
//! other files) are problems.

use super::{
    Cur, FractalHeap, Hdf5Error, Hdf5Limits, Problem, R, Reader, RootAttributes, dataspace_dims,
    signature_offset, superblock,
};
use std::collections::{HashMap, HashSet};
use std::ops::Range;

/// Longest link name read (HDF5 allows more; no real file comes near it).
pub const MAX_LINK_NAME: u64 = 64 << 10;
/// Deepest group nesting followed.
pub const MAX_GROUP_DEPTH: usize = 64;
/// Objects (groups and datasets) read per file.
pub const MAX_OBJECTS: usize = 1_000_000;

const MSG_DATASPACE: u16 = 0x0001;
const MSG_LINK_INFO: u16 = 0x0002;
const MSG_DATATYPE: u16 = 0x0003;
const MSG_LINK: u16 = 0x0006;
const MSG_EXTERNAL_FILES: u16 = 0x0007;
const MSG_LAYOUT: u16 = 0x0008;
const MSG_FILTER_PIPELINE: u16 = 0x000B;
const MSG_SYMBOL_TABLE: u16 = 0x0011;

/// The element type of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementType {
    Float {
        size: u32,
        big_endian: bool,
    },
    Int {
        size: u32,
        signed: bool,
        big_endian: bool,
    },
    /// Strings, compounds, references, enums, …: not numbers.
    Other {
        class: u8,
        size: u32,
    },
}

/// Where a dataset's bytes are (file offsets, the user block included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    Contiguous(Range<u64>),
    /// Inside the object header (compact layout).
    Compact(Range<u64>),
    /// Never written: every element is the fill value.
    Unallocated,
    /// Present but not located by this reader, and why.
    Unread(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Slash-separated path from the root, e.g. `layers/dense/vars/0`.
    pub path: String,
    /// Further names (hard links) of the same dataset.
    pub aliases: Vec<String>,
    /// Dimensions; empty for a scalar.
    pub shape: Vec<u64>,
    pub element: ElementType,
    pub storage: Storage,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Datasets {
    pub datasets: Vec<Dataset>,
    /// Objects or links that could not be read.
    pub problems: Vec<Problem>,
}

/// Locates every dataset of the file.
pub fn datasets(data: &[u8], limits: &Hdf5Limits) -> Result<Datasets, Hdf5Error> {
    let base = signature_offset(data).ok_or(Hdf5Error::NoSignature)?;
    let (geo, _, root) = superblock(data, base).map_err(Hdf5Error::Superblock)?;
    let mut scratch = RootAttributes::default();
    let mut w = Walker {
        r: Reader {
            data,
            geo,
            limits,
            nodes: 0,
            heaps: HashMap::new(),
            out: &mut scratch,
        },
        out: Datasets::default(),
        by_addr: HashMap::new(),
    };
    let root_obj = w.object(root).map_err(Hdf5Error::RootHeader)?;
    let mut seen = HashSet::from([root]);
    // Depth-first in name order, so the first name of an object is the one h5py reports.
    let mut stack: Vec<(String, u64, usize)> = Vec::new();
    push_children(&mut stack, "", root_obj.links, 1);
    while let Some((path, addr, depth)) = stack.pop() {
        if !seen.insert(addr) {
            if let Some(&i) = w.by_addr.get(&addr) {
                w.out.datasets[i].aliases.push(path);
            }
            continue;
        }
        if seen.len() > MAX_OBJECTS {
            w.problem(
                &path,
                format!("more than {MAX_OBJECTS} objects: the rest not read"),
            );
            break;
        }
        match w.object(addr) {
            Ok(o) => {
                if let Some(d) = o.dataset {
                    w.by_addr.insert(addr, w.out.datasets.len());
                    w.out.datasets.push(Dataset {
                        path: path.clone(),
                        aliases: Vec::new(),
                        shape: d.shape,
                        element: d.element,
                        storage: d.storage,
                    });
                }
                if !o.links.is_empty() {
                    if depth >= MAX_GROUP_DEPTH {
                        w.problem(&path, format!("groups nest deeper than {MAX_GROUP_DEPTH}"));
                    } else {
                        push_children(&mut stack, &path, o.links, depth + 1);
                    }
                }
            }
            Err(e) => w.problem(&path, e),
        }
        for p in std::mem::take(&mut w.r.out.problems) {
            w.out.problems.push(p);
        }
    }
    Ok(w.out)
}

fn push_children(
    stack: &mut Vec<(String, u64, usize)>,
    parent: &str,
    mut links: Vec<(String, u64)>,
    depth: usize,
) {
    links.sort();
    for (name, addr) in links.into_iter().rev() {
        let path = if parent.is_empty() {
            name
        } else {
            format!("{parent}/{name}")
        };
        stack.push((path, addr, depth));
    }
}

struct Walker<'a, 'd> {
    r: Reader<'a, 'd>,
    out: Datasets,
    /// Object header address → index in `out.datasets`.
    by_addr: HashMap<u64, usize>,
}

struct Object {
    /// Hard links of a group: (name, object header address).
    links: Vec<(String, u64)>,
    dataset: Option<DatasetParts>,
}

struct DatasetParts {
    shape: Vec<u64>,
    element: ElementType,
    storage: Storage,
}

impl<'d> Walker<'_, 'd> {
    fn problem(&mut self, path: &str, reason: String) {
        if self.out.problems.len() < self.r.limits.max_attributes {
            self.out.problems.push(Problem {
                name: Some(path.to_string()),
                offset: 0,
                reason,
            });
        }
    }

    /// File offset of a slice of the file.
    fn offset_of(&self, s: &[u8]) -> u64 {
        (s.as_ptr() as usize).wrapping_sub(self.r.data.as_ptr() as usize) as u64
    }

    fn object(&mut self, addr: u64) -> R<Object> {
        let messages = self.r.header_messages(addr)?;
        let mut links = Vec::new();
        let (mut space, mut dtype, mut layout) = (None, None, None);
        let mut unread: Option<&str> = None;
        for m in &messages {
            match m.kind {
                MSG_SYMBOL_TABLE => self.symbol_table(m.body, &mut links)?,
                MSG_LINK => {
                    if let Some(l) = self.link(m.body)? {
                        links.push(l);
                    }
                }
                MSG_LINK_INFO => self.dense_links(m.body, &mut links)?,
                MSG_DATASPACE => space = Some(m.body),
                MSG_DATATYPE => dtype = Some(m.body),
                MSG_LAYOUT => layout = Some(m.body),
                MSG_FILTER_PIPELINE => {
                    unread = Some("filtered storage (compression, shuffle or checksums)")
                }
                MSG_EXTERNAL_FILES => unread = Some("data in external files"),
                _ => {}
            }
        }
        let dataset = match (space, dtype, layout) {
            (Some(s), Some(t), Some(l)) => Some(self.dataset(s, t, l, unread)?),
            _ => None,
        };
        Ok(Object { links, dataset })
    }

    fn dataset(
        &mut self,
        space: &[u8],
        dtype: &[u8],
        layout: &'d [u8],
        unread: Option<&str>,
    ) -> R<DatasetParts> {
        let shape = dataspace_dims(space, self.r.geo.l)?.unwrap_or_default();
        let element = element_type(dtype)?;
        let size = match element {
            ElementType::Float { size, .. } | ElementType::Int { size, .. } => size,
            ElementType::Other { size, .. } => size,
        };
        let bytes = shape
            .iter()
            .try_fold(u64::from(size), |a, &d| a.checked_mul(d))
            .ok_or("dataset size overflows")?;
        let storage = match unread {
            Some(why) => Storage::Unread(why.to_string()),
            None => self.layout(layout, bytes)?,
        };
        Ok(DatasetParts {
            shape,
            element,
            storage,
        })
    }

    /// Where the data is, from a data layout message; `bytes` is what the dataspace and
    /// datatype need.
    fn layout(&self, body: &'d [u8], bytes: u64) -> R<Storage> {
        let geo = self.r.geo;
        let mut c = Cur { data: body, pos: 0 };
        let version = c.u8()?;
        let (class, addr) = match version {
            3 | 4 => {
                let class = c.u8()?;
                match class {
                    0 => {
                        let size = u64::from(c.u16()?);
                        let raw = c.bytes(size as usize)?;
                        return self.compact(raw, bytes);
                    }
                    1 => (1, c.uint(geo.o)?),
                    2 => return Ok(Storage::Unread("chunked storage".into())),
                    3 => {
                        return Ok(Storage::Unread(
                            "virtual dataset (data in other files)".into(),
                        ));
                    }
                    k => return Err(format!("unknown layout class {k}")),
                }
            }
            1 | 2 => {
                let rank = usize::from(c.u8()?);
                let class = c.u8()?;
                c.skip(5)?;
                let addr = if class != 0 { c.uint(geo.o)? } else { 0 };
                c.skip(rank.checked_mul(4).ok_or("layout rank overflows")?)?;
                if class == 0 {
                    let size = u64::from(c.u32()?);
                    let raw = c.bytes(usize::try_from(size).map_err(|e| e.to_string())?)?;
                    return self.compact(raw, bytes);
                }
                (class, addr)
            }
            v => return Err(format!("unknown data layout version {v}")),
        };
        if class == 2 {
            return Ok(Storage::Unread("chunked storage".into()));
        }
        if geo.undefined(addr) {
            return Ok(Storage::Unallocated);
        }
        let start = geo.pos(addr)?;
        let end = start.checked_add(bytes).ok_or("dataset extent overflows")?;
        if end > self.r.data.len() as u64 {
            return Err(format!(
                "dataset data ({bytes} bytes at {start}) runs past the end of the file"
            ));
        }
        Ok(Storage::Contiguous(start..end))
    }

    fn compact(&self, raw: &'d [u8], bytes: u64) -> R<Storage> {
        if (raw.len() as u64) < bytes {
            return Err(format!(
                "compact data of {} bytes is shorter than the {bytes} its shape needs",
                raw.len()
            ));
        }
        let start = self.offset_of(raw);
        Ok(Storage::Compact(start..start + bytes))
    }

    /// A link message: `Some((name, address))` for a hard link.
    fn link(&mut self, body: &[u8]) -> R<Option<(String, u64)>> {
        let mut c = Cur { data: body, pos: 0 };
        let version = c.u8()?;
        if version != 1 {
            return Err(format!("unknown link message version {version}"));
        }
        let flags = c.u8()?;
        let kind = if flags & 0x08 != 0 { c.u8()? } else { 0 };
        if flags & 0x04 != 0 {
            c.skip(8)?; // creation order
        }
        if flags & 0x10 != 0 {
            c.skip(1)?; // name character set
        }
        let len = c.uint(1 << (flags & 3))?;
        if len > MAX_LINK_NAME {
            return Err(format!("link name of {len} bytes exceeds {MAX_LINK_NAME}"));
        }
        let name = String::from_utf8_lossy(c.bytes(len as usize)?).into_owned();
        match kind {
            0 => Ok(Some((name, c.uint(self.r.geo.o)?))),
            1 => Ok(None), // soft link: a path to an object reached by its own name
            64 => Err(format!(
                "external link {name:?} (into another file) not followed"
            )),
            k => Err(format!("link {name:?} of unknown type {k}")),
        }
    }

    /// Link-info message: links in a fractal heap, named by a version 2 B-tree (type 5).
    fn dense_links(&mut self, body: &[u8], links: &mut Vec<(String, u64)>) -> R<()> {
        let geo = self.r.geo;
        let mut c = Cur { data: body, pos: 0 };
        let version = c.u8()?;
        if version != 0 {
            return Err(format!("unknown link info version {version}"));
        }
        let flags = c.u8()?;
        if flags & 0x01 != 0 {
            c.skip(8)?; // maximum creation index
        }
        let heap_addr = c.uint(geo.o)?;
        let names = c.uint(geo.o)?;
        if geo.undefined(heap_addr) || geo.undefined(names) {
            return Ok(()); // links are in link messages
        }
        let heap = FractalHeap::parse(self.r.data, geo, heap_addr)?;
        let mut records = Vec::new();
        self.r.btree_records(names, 5, &mut records)?;
        for (rec, _) in records {
            // Name hash (4), then the heap ID.
            let id = rec.get(4..).ok_or("short link name record")?;
            let (msg, _) = self.r.heap_object(&heap, id)?;
            if let Some(l) = self.link(&msg)? {
                links.push(l);
            }
        }
        Ok(())
    }

    /// Symbol-table message: a version 1 B-tree of symbol-table nodes, names in a local heap.
    fn symbol_table(&mut self, body: &[u8], links: &mut Vec<(String, u64)>) -> R<()> {
        let geo = self.r.geo;
        let mut c = Cur { data: body, pos: 0 };
        let btree = c.uint(geo.o)?;
        let heap = c.uint(geo.o)?;
        let names = self.local_heap(heap)?;
        let mut seen = HashSet::new();
        self.group_node(btree, names, None, &mut seen, links)
    }

    /// The data segment of a local heap.
    fn local_heap(&mut self, addr: u64) -> R<&'d [u8]> {
        self.r.visit()?;
        let geo = self.r.geo;
        let mut c = geo.cur(self.r.data, addr)?;
        c.sig(b"HEAP")?;
        c.skip(4)?; // version, reserved
        let size = c.uint(geo.l)?;
        c.skip(geo.l)?; // free list head
        let seg = c.uint(geo.o)?;
        let mut s = geo.cur(self.r.data, seg)?;
        s.bytes(usize::try_from(size).map_err(|e| e.to_string())?)
            .map_err(|_| "local heap data runs past the end of the file".into())
    }

    fn group_node(
        &mut self,
        addr: u64,
        names: &'d [u8],
        level_above: Option<u8>,
        seen: &mut HashSet<u64>,
        links: &mut Vec<(String, u64)>,
    ) -> R<()> {
        if !seen.insert(addr) {
            return Err(format!(
                "group B-tree node at {addr} is visited twice (a loop)"
            ));
        }
        self.r.visit()?;
        let geo = self.r.geo;
        let mut c = geo.cur(self.r.data, addr)?;
        c.sig(b"TREE")?;
        let kind = c.u8()?;
        if kind != 0 {
            return Err(format!("group B-tree node of type {kind}, expected 0"));
        }
        let level = c.u8()?;
        if level_above.is_some_and(|above| level >= above) {
            return Err(format!("group B-tree node at {addr} does not descend"));
        }
        if u16::from(level) > self.r.limits.max_tree_depth {
            return Err(format!("group B-tree of depth {level}"));
        }
        let entries = c.u16()?;
        c.skip(2 * geo.o)?; // siblings
        let mut children = Vec::with_capacity(usize::from(entries));
        for _ in 0..entries {
            c.skip(geo.l)?; // key: heap offset of the largest name on the left
            children.push(c.uint(geo.o)?);
        }
        for child in children {
            if level > 0 {
                self.group_node(child, names, Some(level), seen, links)?;
            } else {
                self.symbol_node(child, names, links)?;
            }
        }
        Ok(())
    }

    fn symbol_node(&mut self, addr: u64, names: &'d [u8], links: &mut Vec<(String, u64)>) -> R<()> {
        self.r.visit()?;
        let geo = self.r.geo;
        let mut c = geo.cur(self.r.data, addr)?;
        c.sig(b"SNOD")?;
        c.skip(2)?; // version, reserved
        let count = c.u16()?;
        for _ in 0..count {
            let name_at = usize::try_from(c.uint(geo.o)?).map_err(|e| e.to_string())?;
            let header = c.uint(geo.o)?;
            c.skip(4 + 4 + 16)?; // cache type, reserved, scratch pad
            let rest = names
                .get(name_at..)
                .ok_or("symbol name offset is outside its local heap")?;
            let end = rest
                .iter()
                .position(|&b| b == 0)
                .ok_or("symbol name is not terminated inside its local heap")?;
            if end as u64 > MAX_LINK_NAME {
                return Err(format!("link name longer than {MAX_LINK_NAME} bytes"));
            }
            links.push((String::from_utf8_lossy(&rest[..end]).into_owned(), header));
        }
        Ok(())
    }
}

/// The element type of a datatype message.
fn element_type(b: &[u8]) -> R<ElementType> {
    let mut c = Cur { data: b, pos: 0 };
    let class = c.u8()? & 0x0f;
    let bits = c.uint(3)?;
    let size = c.u32()?;
    Ok(match class {
        0 => ElementType::Int {
            size,
            signed: bits & 0x08 != 0,
            big_endian: bits & 0x01 != 0,
        },
        // Byte order is bits 0 and 6: 0 little, 1 big, 3 VAX (not read as a float).
        1 if bits & 0x40 == 0 => ElementType::Float {
            size,
            big_endian: bits & 0x01 != 0,
        },
        class => ElementType::Other { class, size },
    })
}

#[cfg(test)]
mod tests;
