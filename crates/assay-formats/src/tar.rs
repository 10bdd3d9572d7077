//! A zero-copy tar reader (v7, ustar, GNU long names, PAX path/size records): members are
//! slices of the input. Bounded: header count, PAX record size, long-name length.

const BLOCK: usize = 512;

#[derive(Debug, Clone)]
pub struct TarLimits {
    pub max_members: usize,
    /// GNU long name / PAX header size.
    pub max_meta: usize,
}

impl Default for TarLimits {
    fn default() -> Self {
        TarLimits {
            max_members: 200_000,
            max_meta: 1 << 20,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TarKind {
    File,
    Dir,
    Symlink,
    Hardlink,
    Device,
    Fifo,
    Other(u8),
}

#[derive(Debug, Clone, PartialEq)]
pub struct TarMember {
    pub name: String,
    pub kind: TarKind,
    pub link_target: Option<String>,
    pub data_offset: usize,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TarArchive {
    pub members: Vec<TarMember>,
    /// Problems found (truncation, bad checksums, limits); parsing stops at the first.
    pub problems: Vec<String>,
}

/// The header checksum as Python's `tarfile` accepts it: the unsigned or the signed
/// (old Sun tar) byte sum, with the checksum field counted as spaces.
pub fn header_checksum_ok(h: &[u8]) -> bool {
    let Some(h) = h.get(..BLOCK) else {
        return false;
    };
    let Some(stored) = parse_octal(&h[148..156]) else {
        return false;
    };
    let (mut unsigned, mut signed) = (0u64, 0i64);
    for (i, &b) in h.iter().enumerate() {
        let b = if (148..156).contains(&i) { 32 } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    stored == unsigned || i64::try_from(stored).is_ok_and(|s| s == signed)
}

/// A V7 header (no `ustar` magic) as `tarfile` reads it: a valid checksum, a name, and
/// octal mode and size fields.
pub fn looks_like_v7_header(h: &[u8]) -> bool {
    let Some(h) = h.get(..BLOCK) else {
        return false;
    };
    let octal = |f: &[u8]| {
        f.iter().all(|&b| matches!(b, b'0'..=b'7' | b' ' | 0))
            && f.iter().any(|b| b.is_ascii_digit())
    };
    h[0] != 0 && octal(&h[100..108]) && octal(&h[124..136]) && header_checksum_ok(h)
}

fn parse_octal(f: &[u8]) -> Option<u64> {
    if f.first().is_some_and(|b| b & 0x80 != 0) {
        // GNU base-256 for large sizes.
        let mut v: u64 = u64::from(f[0] & 0x7f);
        for &b in &f[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(v);
    }
    let s: String = f
        .iter()
        .take_while(|&&b| b != 0)
        .map(|&b| b as char)
        .collect();
    let s = s.trim();
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(s, 8).ok()
}

fn cstr(f: &[u8]) -> String {
    let end = f.iter().position(|&b| b == 0).unwrap_or(f.len());
    String::from_utf8_lossy(&f[..end]).into_owned()
}

pub fn parse(data: &[u8], limits: &TarLimits) -> TarArchive {
    let mut ar = TarArchive::default();
    let mut pos = 0usize;
    let mut long_name: Option<String> = None;
    let mut long_link: Option<String> = None;
    let mut pax_path: Option<String> = None;
    let mut pax_link: Option<String> = None;
    let mut pax_size: Option<u64> = None;
    loop {
        let Some(h) = data.get(pos..pos + BLOCK) else {
            if pos < data.len() {
                ar.problems
                    .push(format!("truncated header at offset {pos}"));
            }
            break;
        };
        if h.iter().all(|&b| b == 0) {
            break;
        }
        if !header_checksum_ok(h) {
            ar.problems
                .push(format!("bad header checksum at offset {pos}"));
            break;
        }
        if ar.members.len() >= limits.max_members {
            ar.problems
                .push(format!("more than {} members", limits.max_members));
            break;
        }
        let typeflag = h[156];
        let Some(mut size) = parse_octal(&h[124..136]) else {
            ar.problems.push(format!("bad size field at offset {pos}"));
            break;
        };
        if let Some(s) = pax_size.take() {
            size = s;
        }
        let data_offset = pos + BLOCK;
        let Some(padded) = usize::try_from(size)
            .ok()
            .and_then(|s| s.checked_add(BLOCK - 1))
            .map(|s| s / BLOCK * BLOCK)
        else {
            ar.problems.push("member size overflows".into());
            break;
        };
        let Some(next) = data_offset.checked_add(padded) else {
            ar.problems.push("member size overflows".into());
            break;
        };
        let body = data
            .get(data_offset..data_offset.saturating_add(size as usize).min(data.len()))
            .unwrap_or(&[]);
        match typeflag {
            b'L' | b'K' | b'x' | b'g' => {
                if size as usize > limits.max_meta {
                    ar.problems.push(format!(
                        "metadata record larger than {} bytes",
                        limits.max_meta
                    ));
                    break;
                }
                match typeflag {
                    b'L' => long_name = Some(cstr(body)),
                    b'K' => long_link = Some(cstr(body)),
                    b'x' => {
                        for (k, v) in pax_records(body) {
                            match k.as_str() {
                                "path" => pax_path = Some(v),
                                "linkpath" => pax_link = Some(v),
                                "size" => pax_size = v.parse().ok(),
                                _ => {}
                            }
                        }
                    }
                    _ => {}
                }
            }
            _ => {
                let mut name = cstr(&h[0..100]);
                if &h[257..262] == b"ustar" && h[263] == b'0' {
                    let prefix = cstr(&h[345..500]);
                    if !prefix.is_empty() {
                        name = format!("{prefix}/{name}");
                    }
                }
                let name = pax_path.take().or(long_name.take()).unwrap_or(name);
                let link = pax_link
                    .take()
                    .or(long_link.take())
                    .unwrap_or_else(|| cstr(&h[157..257]));
                let kind = match typeflag {
                    b'0' | 0 | b'7' => TarKind::File,
                    b'5' => TarKind::Dir,
                    b'2' => TarKind::Symlink,
                    b'1' => TarKind::Hardlink,
                    b'3' | b'4' => TarKind::Device,
                    b'6' => TarKind::Fifo,
                    o => TarKind::Other(o),
                };
                let link_target =
                    matches!(kind, TarKind::Symlink | TarKind::Hardlink).then_some(link);
                if data_offset as u64 + size > data.len() as u64 {
                    ar.problems
                        .push(format!("member {name:?} runs past the end of the archive"));
                    ar.members.push(TarMember {
                        name,
                        kind,
                        link_target,
                        data_offset,
                        size: (data.len() - data_offset.min(data.len())) as u64,
                    });
                    break;
                }
                ar.members.push(TarMember {
                    name,
                    kind,
                    link_target,
                    data_offset,
                    size,
                });
            }
        }
        pos = next;
    }
    ar
}

fn pax_records(body: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut p = 0;
    while p < body.len() {
        let Some(sp) = body[p..].iter().position(|&b| b == b' ') else {
            break;
        };
        let Some(len) = std::str::from_utf8(&body[p..p + sp])
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
        else {
            break;
        };
        // The length counts the whole record, its own digits included: one shorter than
        // its `"<len> "` prefix, or past the body, ends the records.
        let Some(rec) = p.checked_add(len).and_then(|end| body.get(p + sp + 1..end)) else {
            break;
        };
        let rec = rec.strip_suffix(b"\n").unwrap_or(rec);
        if let Some(eq) = rec.iter().position(|&b| b == b'=') {
            out.push((
                String::from_utf8_lossy(&rec[..eq]).into_owned(),
                String::from_utf8_lossy(&rec[eq + 1..]).into_owned(),
            ));
        }
        p += len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ustar header block with a valid checksum.
    fn header(name: &[u8], size: usize, typeflag: u8) -> Vec<u8> {
        let mut h = vec![0u8; BLOCK];
        h[..name.len()].copy_from_slice(name);
        h[100..108].copy_from_slice(b"0000644\0");
        h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        h[156] = typeflag;
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        h
    }

    /// A PAX extended header holding `records`, then an empty member `a`.
    fn pax_tar(records: &[u8]) -> Vec<u8> {
        let mut t = header(b"./PaxHeaders/a", records.len(), b'x');
        t.extend_from_slice(records);
        t.resize(t.len().next_multiple_of(BLOCK), 0);
        t.extend(header(b"a", 0, b'0'));
        t
    }

    /// A PAX record whose length (1) is shorter than its own `"1 "` prefix sliced
    /// `body[2..1]`, a panic in release builds too.
    #[test]
    fn pax_record_shorter_than_its_prefix() {
        let records = b"1 x=y\n";
        assert!(pax_records(records).is_empty());
        let ar = parse(&pax_tar(records), &TarLimits::default());
        assert_eq!(ar.members.len(), 1);
        assert_eq!(ar.members[0].name, "a");
    }

    /// A second PAX record whose length is `usize::MAX`: `offset + length` overflowed.
    #[test]
    fn pax_record_length_overflow() {
        let records = b"6 x=y\n18446744073709551615 z=w\n";
        assert_eq!(pax_records(records), vec![("x".into(), "y".into())]);
        let ar = parse(&pax_tar(records), &TarLimits::default());
        assert_eq!(ar.members.len(), 1);
    }
}
