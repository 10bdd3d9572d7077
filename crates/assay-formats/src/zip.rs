//! A tolerant zip reader that sees what PyTorch's reader (miniz) and Python's `zipfile`
//! see, and reports every place where they, or a strict reader, would disagree.
//!
//! Like PyTorch it takes names, sizes and offsets from the central directory and the data
//! offset from the local header's own name and extra lengths; it ignores CRCs and flag
//! bits for reading but reports them. Like Python it accepts data prepended to the
//! archive (offsets shifted by the prefix). Stored members are returned zero-copy.

use std::io::Write;

/// End-of-central-directory record signature.
const EOCD_SIG: &[u8; 4] = b"PK\x05\x06";
const ZIP64_LOCATOR_SIG: &[u8; 4] = b"PK\x06\x07";
const ZIP64_EOCD_SIG: &[u8; 4] = b"PK\x06\x06";
const CDH_SIG: &[u8; 4] = b"PK\x01\x02";
const LFH_SIG: &[u8; 4] = b"PK\x03\x04";
/// Fixed part of the EOCD record; the archive comment (≤ 65535 bytes) follows it.
const EOCD_LEN: usize = 22;
const MAX_COMMENT: usize = 65_535;
const CDH_LEN: usize = 46;
const LFH_LEN: usize = 30;

#[derive(Debug, Clone)]
pub struct ZipLimits {
    /// Entries in the central directory.
    pub max_entries: usize,
}

impl Default for ZipLimits {
    fn default() -> Self {
        ZipLimits {
            max_entries: 200_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ZipEntry {
    /// The central-directory name (what both PyTorch and Python use).
    pub name: String,
    /// The local header's name, when it differs from `name`.
    pub local_name: Option<String>,
    pub method: u16,
    pub flags: u16,
    pub crc32: u32,
    pub compressed_size: u64,
    pub size: u64,
    pub local_offset: u64,
    /// Where the member's data starts (from the local header), if the header is sound.
    pub data_offset: Option<u64>,
    /// Unix mode from the external attributes, when made on Unix.
    pub unix_mode: Option<u32>,
    /// Problems specific to this entry, in words.
    pub anomalies: Vec<String>,
}

impl ZipEntry {
    pub fn is_dir(&self) -> bool {
        self.name.ends_with('/')
    }
    pub fn is_symlink(&self) -> bool {
        self.unix_mode.is_some_and(|m| m & 0o170000 == 0o120000)
    }
    pub fn encrypted(&self) -> bool {
        self.flags & 1 != 0
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ZipArchive {
    pub entries: Vec<ZipEntry>,
    /// Bytes before the archive proper (a polyglot's other half, or a self-extractor stub).
    pub prefix_len: u64,
    /// Bytes after the end-of-central-directory record and its comment.
    pub trailing_len: u64,
    pub anomalies: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ZipError {
    #[error("no end-of-central-directory record: not a readable zip")]
    NoEocd,
    #[error("central directory is outside the file or corrupt: {0}")]
    BadCentralDirectory(String),
    #[error("more than {0} entries")]
    TooManyEntries(usize),
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ZipReadError {
    #[error("local header is missing or corrupt")]
    BadLocalHeader,
    #[error("member data runs past the end of the file")]
    OutOfBounds,
    #[error("unsupported compression method {0}")]
    UnsupportedMethod(u16),
    #[error("{0}")]
    Decompress(String),
    #[error("decompressed size exceeds the limit of {0} bytes")]
    LimitExceeded(u64),
}

fn u16le(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(d.get(at..at + 2)?.try_into().ok()?))
}
fn u32le(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(d.get(at..at + 4)?.try_into().ok()?))
}
fn u64le(d: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(d.get(at..at + 8)?.try_into().ok()?))
}

/// Offset of the end-of-central-directory record, searching backwards like Python.
pub fn find_eocd(data: &[u8]) -> Option<usize> {
    // Both Python's zipfile and miniz take the *last* signature in the final 64 KiB,
    // whatever its comment length says; a comment running past the end is reported.
    if data.len() < EOCD_LEN {
        return None;
    }
    let lowest = data.len().saturating_sub(EOCD_LEN + MAX_COMMENT);
    let mut i = data.len() - EOCD_LEN;
    loop {
        if data.get(i..i + 4) == Some(&EOCD_SIG[..]) {
            return Some(i);
        }
        if i == lowest {
            return None;
        }
        i -= 1;
    }
}

pub fn parse(data: &[u8], limits: &ZipLimits) -> Result<ZipArchive, ZipError> {
    let eocd = find_eocd(data).ok_or(ZipError::NoEocd)?;
    let mut ar = ZipArchive::default();
    let bad = |m: &str| ZipError::BadCentralDirectory(m.to_string());
    let mut count = u16le(data, eocd + 10).ok_or_else(|| bad("short EOCD"))? as u64;
    let mut cd_size = u32le(data, eocd + 12).ok_or_else(|| bad("short EOCD"))? as u64;
    let mut cd_offset = u32le(data, eocd + 16).ok_or_else(|| bad("short EOCD"))? as u64;
    let comment = u16le(data, eocd + 20).unwrap_or(0) as u64;
    if eocd as u64 + EOCD_LEN as u64 + comment > data.len() as u64 {
        ar.anomalies.push(format!(
            "the end-of-central-directory comment ({comment} bytes) runs past the end of the file"
        ));
    }
    ar.trailing_len = (data.len() as u64).saturating_sub(eocd as u64 + EOCD_LEN as u64 + comment);
    let mut cd_end = eocd as u64;
    // Zip64: a locator just before the EOCD points at the zip64 EOCD record.
    if eocd >= 20 && data.get(eocd - 20..eocd - 16) == Some(ZIP64_LOCATOR_SIG) {
        let z = u64le(data, eocd - 12).ok_or_else(|| bad("short zip64 locator"))?;
        // The locator's offset may be shifted by prepended data; search near it.
        let zpos = usize::try_from(z)
            .ok()
            .filter(|p| p.checked_add(4).and_then(|end| data.get(*p..end)) == Some(ZIP64_EOCD_SIG))
            .or_else(|| {
                let guess = eocd.checked_sub(20 + 56)?;
                (data.get(guess..guess + 4) == Some(ZIP64_EOCD_SIG)).then_some(guess)
            });
        if let Some(zpos) = zpos {
            count = u64le(data, zpos + 32).ok_or_else(|| bad("short zip64 EOCD"))?;
            cd_size = u64le(data, zpos + 40).ok_or_else(|| bad("short zip64 EOCD"))?;
            cd_offset = u64le(data, zpos + 48).ok_or_else(|| bad("short zip64 EOCD"))?;
            cd_end = zpos as u64;
        } else {
            ar.anomalies
                .push("zip64 locator points at no zip64 end-of-central-directory record".into());
        }
    }
    if count as usize > limits.max_entries {
        return Err(ZipError::TooManyEntries(limits.max_entries));
    }
    // Python's `concat`: how far the archive was shifted by prepended bytes.
    let actual_cd = cd_end
        .checked_sub(cd_size)
        .ok_or_else(|| bad("central directory larger than the file"))?;
    let concat = actual_cd
        .checked_sub(cd_offset)
        .ok_or_else(|| bad("central directory offset past its end"))?;
    if concat > 0 {
        ar.anomalies.push(format!(
            "{concat} bytes of other data before the archive (offsets shifted)"
        ));
    }
    let mut p = actual_cd as usize;
    let cd_stop = cd_end as usize;
    let mut min_local = u64::MAX;
    // Python's zipfile reads entries until the directory's size is used up; miniz trusts
    // the count. Read every entry the directory holds, and report a disagreement.
    let mut parsed: u64 = 0;
    while p < cd_stop {
        if ar.entries.len() >= limits.max_entries {
            return Err(ZipError::TooManyEntries(limits.max_entries));
        }
        if p + CDH_LEN > cd_stop || data.get(p..p + 4) != Some(CDH_SIG) {
            if parsed >= count {
                break;
            }
            return Err(bad("central directory entry signature not found"));
        }
        parsed += 1;
        let made_by = u16le(data, p + 4).unwrap_or(0);
        let flags = u16le(data, p + 8).unwrap_or(0);
        let method = u16le(data, p + 10).unwrap_or(0);
        let crc32 = u32le(data, p + 16).unwrap_or(0);
        let mut csize = u32le(data, p + 20).unwrap_or(0) as u64;
        let mut usize_ = u32le(data, p + 24).unwrap_or(0) as u64;
        let nlen = u16le(data, p + 28).unwrap_or(0) as usize;
        let elen = u16le(data, p + 30).unwrap_or(0) as usize;
        let clen = u16le(data, p + 32).unwrap_or(0) as usize;
        let ext_attr = u32le(data, p + 38).unwrap_or(0);
        let mut loff = u32le(data, p + 42).unwrap_or(0) as u64;
        let name_bytes = data
            .get(p + CDH_LEN..p + CDH_LEN + nlen)
            .ok_or_else(|| bad("entry name past the end"))?;
        let extra = data
            .get(p + CDH_LEN + nlen..p + CDH_LEN + nlen + elen)
            .ok_or_else(|| bad("entry extra field past the end"))?;
        // Zip64 extended information: present fields replace the 0xFFFFFFFF ones, in order.
        let mut e = 0;
        while e + 4 <= extra.len() {
            let id = u16le(extra, e).unwrap_or(0);
            let sz = u16le(extra, e + 2).unwrap_or(0) as usize;
            if id == 0x0001 {
                let mut q = e + 4;
                if usize_ == 0xFFFF_FFFF {
                    usize_ = u64le(extra, q).unwrap_or(usize_);
                    q += 8;
                }
                if csize == 0xFFFF_FFFF {
                    csize = u64le(extra, q).unwrap_or(csize);
                    q += 8;
                }
                if loff == 0xFFFF_FFFF {
                    loff = u64le(extra, q).unwrap_or(loff);
                }
            }
            e += 4 + sz;
        }
        let name = decode_name(name_bytes, flags);
        let mut entry = ZipEntry {
            name,
            local_name: None,
            method,
            flags,
            crc32,
            compressed_size: csize,
            size: usize_,
            // A zip64 offset near u64::MAX plus the prefix: saturate (no header is there).
            local_offset: loff.saturating_add(concat),
            data_offset: None,
            unix_mode: (made_by >> 8 == 3).then_some(ext_attr >> 16),
            anomalies: Vec::new(),
        };
        min_local = min_local.min(entry.local_offset);
        read_local_header(data, &mut entry);
        ar.entries.push(entry);
        p += CDH_LEN + nlen + elen + clen;
    }
    if parsed != count {
        ar.anomalies.push(format!(
            "the end record counts {count} entries, the central directory holds {parsed} (readers disagree on which members exist)"
        ));
    }
    let prefix = if ar.entries.is_empty() {
        actual_cd
    } else {
        min_local.min(actual_cd)
    };
    ar.prefix_len = prefix;
    if ar.trailing_len > 0 {
        ar.anomalies.push(format!(
            "{} bytes after the end of the archive",
            ar.trailing_len
        ));
    }
    check_overlaps(&mut ar);
    Ok(ar)
}

fn decode_name(raw: &[u8], flags: u16) -> String {
    if flags & 0x800 != 0 {
        return String::from_utf8_lossy(raw).into_owned();
    }
    // Python decodes non-UTF-8-flagged names as cp437; keep ASCII and map the rest lossily.
    match std::str::from_utf8(raw) {
        Ok(s) => s.to_string(),
        Err(_) => raw
            .iter()
            .map(|&b| {
                if b < 0x80 {
                    b as char
                } else {
                    char::from_u32(0x2500 + b as u32).unwrap_or('?')
                }
            })
            .collect(),
    }
}

fn read_local_header(data: &[u8], e: &mut ZipEntry) {
    let Ok(off) = usize::try_from(e.local_offset) else {
        e.anomalies
            .push("local header offset past the end of the file".into());
        return;
    };
    if off.checked_add(4).and_then(|end| data.get(off..end)) != Some(LFH_SIG) {
        e.anomalies
            .push("no local header at the offset the central directory gives".into());
        return;
    }
    let (Some(lflags), Some(lmethod), Some(nlen), Some(elen)) = (
        u16le(data, off + 6),
        u16le(data, off + 8),
        u16le(data, off + 26),
        u16le(data, off + 28),
    ) else {
        e.anomalies.push("truncated local header".into());
        return;
    };
    let (nlen, elen) = (nlen as usize, elen as usize);
    let Some(lname) = data.get(off + LFH_LEN..off + LFH_LEN + nlen) else {
        e.anomalies
            .push("local header name past the end of the file".into());
        return;
    };
    let lname = decode_name(lname, lflags);
    if lname != e.name {
        e.anomalies.push(format!(
            "local header names it {lname:?}, the central directory {:?}",
            e.name
        ));
        e.local_name = Some(lname);
    }
    if lmethod != e.method {
        e.anomalies.push(format!(
            "compression method differs: local {lmethod}, central {}",
            e.method
        ));
    }
    if lflags & 1 != 0 || e.flags & 1 != 0 {
        e.anomalies.push(
            "encryption flag set (strict readers refuse the member; PyTorch reads it as plain)"
                .into(),
        );
    }
    let unusual = (lflags | e.flags) & !(0x0001 | 0x0002 | 0x0004 | 0x0008 | 0x0800);
    if unusual != 0 {
        e.anomalies
            .push(format!("unusual general-purpose flag bits 0x{unusual:04x}"));
    }
    e.data_offset = Some((off + LFH_LEN + nlen + elen) as u64);
}

fn check_overlaps(ar: &mut ZipArchive) {
    let mut spans: Vec<(u64, u64, usize)> = ar
        .entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            e.data_offset
                .map(|d| (e.local_offset, d.saturating_add(e.compressed_size), i))
        })
        .collect();
    spans.sort_unstable();
    let mut overlaps = 0usize;
    for w in spans.windows(2) {
        if w[1].0 < w[0].1 {
            overlaps += 1;
        }
    }
    if overlaps > 0 {
        ar.anomalies.push(format!(
            "{overlaps} members overlap other members (a zip-bomb and parser-confusion technique)"
        ));
    }
}

/// The raw (possibly compressed) bytes of an entry.
pub fn raw_data<'d>(data: &'d [u8], e: &ZipEntry) -> Result<&'d [u8], ZipReadError> {
    let start = e.data_offset.ok_or(ZipReadError::BadLocalHeader)? as usize;
    let end = start
        .checked_add(usize::try_from(e.compressed_size).map_err(|_| ZipReadError::OutOfBounds)?)
        .ok_or(ZipReadError::OutOfBounds)?;
    data.get(start..end).ok_or(ZipReadError::OutOfBounds)
}

/// A stored member's bytes without copying, or `None` if it is compressed.
pub fn stored_data<'d>(data: &'d [u8], e: &ZipEntry) -> Option<Result<&'d [u8], ZipReadError>> {
    (e.method == 0).then(|| raw_data(data, e))
}

/// Decompresses a member into `out`, at most `limit` bytes.
pub fn extract_to<W: Write>(
    data: &[u8],
    e: &ZipEntry,
    out: W,
    limit: u64,
) -> Result<u64, ZipReadError> {
    let raw = raw_data(data, e)?;
    let mut w = crate::compress::LimitedWriter::new(out, limit);
    let res = match e.method {
        0 => w.write_all(raw).map_err(|err| err.to_string()),
        8 => std::io::copy(&mut flate2::read::DeflateDecoder::new(raw), &mut w)
            .map(|_| ())
            .map_err(|err| err.to_string()),
        12 => std::io::copy(&mut bzip2::read::BzDecoder::new(raw), &mut w)
            .map(|_| ())
            .map_err(|err| err.to_string()),
        // LZMA in zip: version (2), properties size (2), properties (5), raw stream.
        14 => lzma_member(raw, e, &mut w),
        m => return Err(ZipReadError::UnsupportedMethod(m)),
    };
    if w.exceeded {
        return Err(ZipReadError::LimitExceeded(limit));
    }
    res.map_err(ZipReadError::Decompress)?;
    Ok(w.written)
}

fn lzma_member<W: Write>(raw: &[u8], e: &ZipEntry, w: &mut W) -> Result<(), String> {
    let psize = u16le(raw, 2).ok_or("short LZMA header")? as usize;
    let props = raw
        .get(4..4 + psize)
        .filter(|p| p.len() == 5)
        .ok_or("bad LZMA properties")?;
    let body = raw.get(4 + psize..).ok_or("short LZMA member")?;
    // Rebuild the .lzma header lzma-rs expects: properties, then the unpacked size (or
    // "unknown" when the end-of-stream marker flag, bit 1, is set).
    let mut stream = props.to_vec();
    let size = if e.flags & 2 != 0 { u64::MAX } else { e.size };
    stream.extend(size.to_le_bytes());
    stream.extend_from_slice(body);
    // lzma-rs can panic on crafted input (arithmetic overflow): make it an error.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        lzma_rs::lzma_decompress(&mut std::io::BufReader::new(&stream[..]), w)
            .map_err(|err| err.to_string())
    }))
    .unwrap_or_else(|_| Err("LZMA decoder failed on malformed input".to_string()))
}

/// CRC-32 as zip computes it.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(bytes);
    c.sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `cargo fuzz run zip`: a zip64 locator whose record offset is
    /// `u64::MAX - 3` overflowed `offset + 4` while looking for the zip64 EOCD record.
    #[test]
    fn zip64_locator_offset_near_max_does_not_overflow() {
        let data = b"PK\x06\x07\x00\x00\x00\x00\xfc\xff\xff\xff\xff\xff\xff\xff\x01\x00\x00\x00\
                     PK\x05\x06\x00\x00\x00\x00\x13\x00\x13\x00M\x06\x00\x00x\x19\x00\x00\x00\x00";
        assert!(matches!(
            parse(data, &ZipLimits::default()),
            Err(ZipError::BadCentralDirectory(_))
        ));
    }

    /// One central-directory entry whose zip64 extra field gives a local header offset
    /// of `u64::MAX`: `offset + 4` overflowed when looking for the local header.
    #[test]
    fn zip64_local_offset_max_does_not_overflow() {
        let data = b"PK\x01\x02\x14\x00-\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\
                     \x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x0c\x00\x00\x00\x00\x00\x00\x00\
                     \x00\x00\x00\x00\xff\xff\xff\xffa\x01\x00\x08\x00\xff\xff\xff\xff\xff\xff\
                     \xff\xffPK\x05\x06\x00\x00\x00\x00\x01\x00\x01\x00;\x00\x00\x00\x00\x00\
                     \x00\x00\x00\x00";
        let ar = parse(data, &ZipLimits::default()).unwrap();
        let e = &ar.entries[0];
        assert_eq!(e.local_offset, u64::MAX);
        assert_eq!(e.data_offset, None);
        assert!(e.anomalies.iter().any(|a| a.contains("no local header")));
    }

    /// The same entry behind one byte of prepended data: `offset + prefix` overflowed.
    #[test]
    fn zip64_local_offset_max_plus_prefix_does_not_overflow() {
        let data = b"XPK\x01\x02\x14\x00-\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\
                     \x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x0c\x00\x00\x00\x00\x00\x00\x00\
                     \x00\x00\x00\x00\xff\xff\xff\xffa\x01\x00\x08\x00\xff\xff\xff\xff\xff\
                     \xff\xff\xffPK\x05\x06\x00\x00\x00\x00\x01\x00\x01\x00;\x00\x00\x00\x00\
                     \x00\x00\x00\x00\x00";
        let ar = parse(data, &ZipLimits::default()).unwrap();
        assert_eq!(ar.entries[0].local_offset, u64::MAX);
        assert_eq!(ar.entries[0].data_offset, None);
    }
}
