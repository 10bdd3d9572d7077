//! PyTorch checkpoints. The symbolic unpickler (never Python) reports each
//! `_rebuild_tensor*` call with its storage persistent id, storage offset, size and
//! stride, and the key path naming it; the storages are `<prefix>/data/<key>` members of
//! a zip checkpoint, or follow the pickles of a legacy one as `(u64 numel, bytes)`.

use super::{ReadError, ReadLimits, Source, Unpickled, check_member, member};
use crate::dtype::{Dtype, Endian};
use crate::view::{Tensor, TensorFile, TensorFormat, Unclaimed, numel};
use assay_formats::pickle::{self, PickleAnalysis, PickleLimits, TorchStorageRef, TorchTensorRef};
use assay_formats::zip::{self, ZipEntry};
use std::collections::HashMap;

/// The first pickle of a legacy `torch.save`: the magic number 0x1950a86a20f9469cfc6c.
pub const LEGACY_MAGIC: &[u8] = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.";

/// Byte ranges of a storage that tensors cover.
type Covered = Vec<(u64, u64)>;

/// Storage keys in the key list of a legacy file.
const MAX_LEGACY_KEYS: usize = 1 << 20;

pub fn find_data_pkl(entries: &[ZipEntry]) -> Option<&ZipEntry> {
    entries
        .iter()
        .filter(|e| e.name == "data.pkl" || e.name.ends_with("/data.pkl"))
        .min_by_key(|e| e.name.len())
}

fn storage_dtype(t: &TorchTensorRef, s: &TorchStorageRef) -> Option<Dtype> {
    Dtype::from_torch(t.dtype.as_deref().unwrap_or(&s.storage_type))
}

fn name_of(t: &TorchTensorRef, i: usize) -> String {
    t.name.clone().unwrap_or_else(|| format!("<tensor {i}>"))
}

/// Places one tensor in its storage's bytes; records the bytes it covers.
#[allow(clippy::too_many_arguments)]
fn place<'a>(
    file: &mut TensorFile<'a>,
    name: String,
    dtype: Dtype,
    endian: Endian,
    t: &TorchTensorRef,
    extra_offset: u64,
    storage: &Source<'a>,
    base: u64,
    member: Option<&str>,
    covered: &mut Vec<(u64, u64)>,
) {
    let Some(esize) = dtype.size().map(|s| s as u64) else {
        file.problem(
            Some(&name),
            member,
            format!("dtype {} has no element size", dtype.name()),
        );
        return;
    };
    let extent = (|| {
        let first = t.storage_offset.checked_add(extra_offset)?;
        let n = numel(&t.size)?;
        let last = if n == 0 {
            first
        } else {
            t.size
                .iter()
                .zip(&t.stride)
                .try_fold(first, |acc, (&d, &s)| {
                    acc.checked_add(d.checked_sub(1)?.checked_mul(s)?)
                })?
        };
        let begin = first.checked_mul(esize)?;
        let end = if n == 0 {
            begin
        } else {
            last.checked_add(1)?.checked_mul(esize)?
        };
        Some(begin..end)
    })();
    let Some(r) = extent else {
        file.problem(Some(&name), member, "size, stride and offset overflow");
        return;
    };
    let Some(data) = storage.sub(r.clone()) else {
        file.problem(
            Some(&name),
            member,
            format!(
                "tensor spans bytes {}..{} of a {}-byte storage (torch.load refuses it)",
                r.start,
                r.end,
                storage.len()
            ),
        );
        return;
    };
    covered.push((r.start, r.end));
    file.tensors.push(Tensor {
        name,
        dtype,
        endian,
        shape: t.size.clone(),
        strides: t.stride.clone(),
        data,
        range: base + r.start..base + r.end,
        member: member.map(str::to_string),
    });
}

/// The further names of a tensor that was just placed (none if it was not).
fn add_aliases(file: &mut TensorFile, placed_before: usize, name: &str, t: &TorchTensorRef) {
    if file.tensors.len() > placed_before {
        for a in &t.aliases {
            file.aliases.push(crate::view::Alias {
                name: a.clone(),
                tensor: name.to_string(),
            });
        }
    }
}

/// Storage bytes no tensor covers.
fn uncovered<'a>(
    file: &mut TensorFile<'a>,
    storage: &Source<'a>,
    base: u64,
    member: Option<&str>,
    key: &str,
    covered: &mut [(u64, u64)],
) {
    covered.sort_unstable();
    let mut at = 0u64;
    let mut gaps = Vec::new();
    for &(s, e) in covered.iter() {
        if s > at {
            gaps.push(at..s);
        }
        at = at.max(e);
    }
    if storage.len() > at {
        gaps.push(at..storage.len());
    }
    for g in gaps {
        if let Some(data) = storage.sub(g.clone()) {
            file.unclaimed.push(Unclaimed {
                data,
                range: base + g.start..base + g.end,
                member: member.map(str::to_string),
                what: format!(
                    "bytes {}..{} of storage {key:?} are not used by any tensor",
                    g.start, g.end
                ),
                trailing: false,
            });
        }
    }
}

/// `known` may hold the analysis of the `data.pkl` member; otherwise it is analysed here.
pub fn read_zip<'a>(
    data: &'a [u8],
    limits: &ReadLimits,
    budget: &mut u64,
    known: &Unpickled,
) -> Result<TensorFile<'a>, ReadError> {
    let ar = zip::parse(data, &zip::ZipLimits::default())
        .map_err(|e| ReadError::Malformed(format!("zip: {e}")))?;
    let pkl = find_data_pkl(&ar.entries)
        .ok_or_else(|| ReadError::Malformed("no data.pkl in the archive".into()))?;
    let prefix = &pkl.name[..pkl.name.len() - "data.pkl".len()];
    let by_name: HashMap<&str, &ZipEntry> =
        ar.entries.iter().map(|e| (e.name.as_str(), e)).collect();
    let malformed = |e: String| ReadError::Malformed(format!("{}: {e}", pkl.name));
    let analysed;
    let a: &PickleAnalysis = match known.member(pkl) {
        Some(a) => {
            check_member(data, pkl, budget).map_err(malformed)?;
            a
        }
        None => {
            let pbytes = member(data, pkl, budget).map_err(malformed)?;
            analysed = pickle::analyze(pbytes.all(), &PickleLimits::default());
            &analysed
        }
    };
    if a.torch_tensors.len() > limits.max_tensors {
        return Err(ReadError::TooManyTensors(limits.max_tensors));
    }
    let endian = match by_name
        .get(format!("{prefix}byteorder").as_str())
        .and_then(|e| zip::stored_data(data, e)?.ok())
    {
        Some(b"big") => Endian::Big,
        _ => Endian::Little,
    };
    let mut file = TensorFile::new(TensorFormat::PytorchZip);
    // key → (member name, its bytes, the byte ranges tensors cover)
    let mut storages: HashMap<&str, (String, Option<Source<'a>>, Covered)> = HashMap::new();
    for (i, t) in a.torch_tensors.iter().enumerate() {
        let name = name_of(t, i);
        let Some(s) = a.torch_storages.get(t.storage) else {
            continue;
        };
        let Some(dtype) = storage_dtype(t, s) else {
            file.problem(
                Some(&name),
                None,
                format!("unknown storage type {}", s.storage_type),
            );
            continue;
        };
        let entry = storages.entry(s.key.as_str()).or_insert_with(|| {
            let mname = format!("{prefix}data/{}", s.key);
            let src = by_name.get(mname.as_str()).map(|e| member(data, e, budget));
            match src {
                Some(Ok(src)) => (mname, Some(src), Vec::new()),
                Some(Err(err)) => {
                    file.problem(
                        None,
                        Some(&mname),
                        format!("storage could not be read: {err}"),
                    );
                    (mname, None, Vec::new())
                }
                None => {
                    file.problem(
                        None,
                        Some(&mname),
                        "storage member is missing (torch.load fails)",
                    );
                    (mname, None, Vec::new())
                }
            }
        });
        let (mname, Some(src), covered) = entry else {
            continue;
        };
        let (mname, src) = (mname.clone(), src.clone());
        let placed = file.tensors.len();
        place(
            &mut file,
            name.clone(),
            dtype,
            endian,
            t,
            0,
            &src,
            0,
            Some(&mname),
            covered,
        );
        add_aliases(&mut file, placed, &name, t);
    }
    let mut keys: Vec<&str> = storages.keys().copied().collect();
    keys.sort_unstable();
    for k in keys {
        if let Some((mname, Some(src), covered)) = storages.get_mut(k) {
            let mname = mname.clone();
            let src = src.clone();
            uncovered(&mut file, &src, 0, Some(&mname), k, covered);
        }
    }
    Ok(file)
}

/// The fourth pickle of a legacy checkpoint (the object itself): its storages and
/// tensors (whose `storage` indices count from `storage_base`), and where it ends.
struct MainPickle<'k> {
    storages: &'k [TorchStorageRef],
    tensors: &'k [TorchTensorRef],
    storage_base: usize,
    end: usize,
}

/// `whole` may hold the analysis of all of `data` by `pickle::analyze`; otherwise the
/// pickles are analysed here, one by one.
pub fn read_legacy<'a>(
    data: &'a [u8],
    limits: &ReadLimits,
    whole: Option<&PickleAnalysis>,
) -> Result<TensorFile<'a>, ReadError> {
    if !data.starts_with(LEGACY_MAGIC) {
        return Err(ReadError::NotTensorFile);
    }
    let broken = |i: usize, pos: u64| {
        ReadError::Malformed(format!(
            "legacy checkpoint: pickle {} at offset {pos} is broken",
            i + 1
        ))
    };
    // Magic number, protocol version, system info, then the object itself.
    let own;
    let main = match whole {
        Some(a) => {
            // The stream's analysis runs the pickles one after the other, as torch.load
            // does; the first four must be complete. (Its opcode and decode budgets are
            // the whole stream's, so a hostile file can spend them before the fourth
            // pickle; the pickle stage then reports the limit, and this is an error.)
            let mut pos = 0u64;
            for i in 0..4 {
                match a.parts.get(i) {
                    Some(p) if p.start == pos => pos = p.end,
                    _ => return Err(broken(i, pos)),
                }
            }
            let p = &a.parts[3];
            let storages = a
                .torch_storages
                .get(p.torch_storages.clone())
                .ok_or_else(|| broken(3, p.start))?;
            let tensors = a
                .torch_tensors
                .get(p.torch_tensors.clone())
                .ok_or_else(|| broken(3, p.start))?;
            MainPickle {
                storages,
                tensors,
                storage_base: p.torch_storages.start,
                end: usize::try_from(p.end).map_err(|_| broken(3, p.start))?,
            }
        }
        None => {
            let lim = PickleLimits::default();
            let mut pos = 0usize;
            let mut last = PickleAnalysis::default();
            for i in 0..4 {
                let (a, end) = pickle::analyze_one(data, pos, &lim);
                if a.pickles != 1 {
                    return Err(broken(i, pos as u64));
                }
                pos = end;
                if i == 3 {
                    last = a;
                }
            }
            own = last;
            MainPickle {
                storages: &own.torch_storages,
                tensors: &own.torch_tensors,
                storage_base: 0,
                end: pos,
            }
        }
    };
    if main.tensors.len() > limits.max_tensors {
        return Err(ReadError::TooManyTensors(limits.max_tensors));
    }
    let mut pos = main.end;
    let (keys, end) = key_list(data, pos).map_err(|e| {
        ReadError::Malformed(format!(
            "legacy checkpoint: storage key list at offset {pos}: {e}"
        ))
    })?;
    pos = end;
    let by_key: HashMap<&str, &TorchStorageRef> =
        main.storages.iter().map(|s| (s.key.as_str(), s)).collect();
    let mut file = TensorFile::new(TensorFormat::PytorchLegacy);
    // key → (file offset of the storage bytes, their source)
    let mut placed: HashMap<String, (u64, Source<'a>, Covered)> = HashMap::new();
    for key in &keys {
        let Some(s) = by_key.get(key.as_str()) else {
            return Err(ReadError::Malformed(format!(
                "legacy checkpoint: storage {key:?} is listed but never referenced; its element size is unknown"
            )));
        };
        let esize = Dtype::from_torch(&s.storage_type)
            .and_then(Dtype::size)
            .ok_or_else(|| {
                ReadError::Malformed(format!("unknown storage type {}", s.storage_type))
            })?;
        let n = data
            .get(pos..pos + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
            .ok_or_else(|| ReadError::Malformed(format!("storage {key:?}: truncated size")))?;
        let start = pos + 8;
        let len = n
            .checked_mul(esize as u64)
            .and_then(|l| usize::try_from(l).ok())
            .filter(|&l| start.checked_add(l).is_some_and(|e| e <= data.len()))
            .ok_or_else(|| {
                ReadError::Malformed(format!(
                    "storage {key:?}: {n} elements run past the end of the file"
                ))
            })?;
        placed.insert(
            key.clone(),
            (
                start as u64,
                Source::Borrowed(&data[start..start + len]),
                Vec::new(),
            ),
        );
        pos = start + len;
    }
    for (i, t) in main.tensors.iter().enumerate() {
        let name = name_of(t, i);
        let Some(s) = t
            .storage
            .checked_sub(main.storage_base)
            .and_then(|k| main.storages.get(k))
        else {
            continue;
        };
        let Some(dtype) = storage_dtype(t, s) else {
            file.problem(
                Some(&name),
                None,
                format!("unknown storage type {}", s.storage_type),
            );
            continue;
        };
        let Some((base, src, covered)) = placed.get_mut(&s.key) else {
            file.problem(
                Some(&name),
                None,
                format!("storage {:?} is not in the file (torch.load fails)", s.key),
            );
            continue;
        };
        let (base, src) = (*base, src.clone());
        let extra = s.view_offset.unwrap_or(0);
        let placed = file.tensors.len();
        place(
            &mut file,
            name.clone(),
            dtype,
            Endian::Little,
            t,
            extra,
            &src,
            base,
            None,
            covered,
        );
        add_aliases(&mut file, placed, &name, t);
    }
    for key in &keys {
        if let Some((base, src, covered)) = placed.get_mut(key) {
            let (base, src) = (*base, src.clone());
            uncovered(&mut file, &src, base, None, key, covered);
        }
    }
    if pos < data.len() {
        file.unclaimed.push(Unclaimed {
            data: crate::view::Bytes::Borrowed(&data[pos..]),
            range: pos as u64..data.len() as u64,
            member: None,
            what: format!("{} bytes follow the last storage", data.len() - pos),
            trailing: true,
        });
    }
    Ok(file)
}

/// The pickled list of storage keys that precedes the storages of a legacy file. Only
/// the opcodes torch writes for a list of strings are accepted.
fn key_list(data: &[u8], start: usize) -> Result<(Vec<String>, usize), String> {
    let mut pos = start;
    let mut keys = Vec::new();
    let mut started = false;
    let byte = |p: usize| data.get(p).copied().ok_or("truncated");
    let take = |p: usize, n: usize| data.get(p..p.saturating_add(n)).ok_or("truncated");
    loop {
        let op = byte(pos)?;
        pos += 1;
        match op {
            0x80 => pos += 1,        // PROTO
            0x95 => pos += 8,        // FRAME
            b']' => started = true,  // EMPTY_LIST
            b'q' => pos += 1,        // BINPUT
            b'r' => pos += 4,        // LONG_BINPUT
            0x94 => {}               // MEMOIZE
            b'(' | b'a' | b'e' => {} // MARK, APPEND, APPENDS
            b'X' | 0x8c => {
                // BINUNICODE, SHORT_BINUNICODE
                let (n, w) = if op == b'X' {
                    let b = take(pos, 4)?;
                    (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize, 4)
                } else {
                    (byte(pos)? as usize, 1)
                };
                let s = take(pos + w, n)?;
                keys.push(String::from_utf8_lossy(s).into_owned());
                if keys.len() > MAX_LEGACY_KEYS {
                    return Err(format!("more than {MAX_LEGACY_KEYS} keys"));
                }
                pos += w + n;
            }
            b'.' if started => return Ok((keys, pos)),
            other => return Err(format!("unexpected opcode 0x{other:02x}")),
        }
    }
}
