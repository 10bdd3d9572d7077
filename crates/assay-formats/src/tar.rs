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

pub fn header_checksum_ok(h: &[u8]) -> bool {
    if h.len() < BLOCK {
        return false;
    }
    let Some(stored) = parse_octal(&h[148..156]) else {
        return false;
    };
    let sum: u64 = h
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    stored == sum
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
        if len == 0 || p + len > body.len() {
            break;
        }
        let rec = &body[p + sp + 1..p + len];
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
