//! Hidden payloads in weights (EvilModel, StegoNet-style substitution): the low-order
//! bytes and bits of floating-point values are rebuilt into byte streams ("planes") and
//! searched for file signatures, each checked structurally before it counts. Random
//! mantissa noise contains short magic numbers by chance (`MZ` every 64 KiB); only a
//! signature whose header validates (an ELF identification and header, a PE header at
//! `e_lfanew`, a zip local header with a printable name, a gzip stream that inflates and
//! passes its CRC, a pickle that names importable callables, …) is a hit.
//!
//! Planes of one tensor of `n` elements with `s`-byte elements:
//! - low bytes: the low 1, 2 or 3 bytes of each `F32` (low 1–4 of `F64`, low 1 of
//!   `F16`/`BF16`), in memory order and reversed;
//! - low bits: the low 1–8 bits of each element, packed MSB-first and LSB-first.
//!
//! Windowed statistics ([`regions`]) find stretches that differ from the rest of the
//! tensor: non-zero low halves in weights rounded from `bf16`, low-byte entropy drops,
//! least-significant bits that are not coin flips.

use crate::dtype::{Dtype, Endian};
use crate::stats::Stats;
use crate::view::Tensor;
#[cfg(test)]
use aho_corasick::AhoCorasick;
use assay_formats::pickle::{self, PickleLimits};
use rayon::prelude::*;
use std::io::Read;
use std::ops::Range;
use std::sync::LazyLock;

/// How a byte stream was rebuilt from the elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Plane {
    /// The low `n` bytes of each element; `reversed`: most significant of them first.
    LowBytes { n: u8, reversed: bool },
    /// The low `n` bits of each element, packed into bytes MSB-first or LSB-first.
    LowBits { n: u8, lsb_first: bool },
    /// The bytes as stored (unclaimed regions).
    Raw,
}

impl Plane {
    pub fn describe(self) -> String {
        match self {
            Plane::LowBytes { n, reversed } => format!(
                "low {n} byte{} of each element{}",
                if n == 1 { "" } else { "s" },
                if reversed {
                    " (most significant first)"
                } else {
                    ""
                }
            ),
            Plane::LowBits { n, lsb_first } => format!(
                "low {n} bit{} of each element, packed {}",
                if n == 1 { "" } else { "s" },
                if lsb_first { "LSB-first" } else { "MSB-first" }
            ),
            Plane::Raw => "stored bytes".into(),
        }
    }

    /// Elements per plane byte (as a fraction: elements × 8 / bits-per-element).
    fn elements_for(self, plane_bytes: u64) -> u64 {
        match self {
            Plane::LowBytes { n, .. } => plane_bytes / u64::from(n),
            Plane::LowBits { n, .. } => plane_bytes * 8 / u64::from(n),
            Plane::Raw => plane_bytes,
        }
    }
}

/// A validated signature found in a plane.
#[derive(Debug, Clone, PartialEq)]
pub struct PayloadHit {
    /// What was found: `ELF executable`, `zip archive`, `pickle`, …
    pub kind: &'static str,
    /// Details from validation (`x86-64`, `names posix.system`, the first line of a script).
    pub detail: String,
    pub plane: Plane,
    /// First element carrying the payload (for [`Plane::Raw`], the byte offset).
    pub element: u64,
    /// Bytes of the tensor's data from that element on (the start of the payload).
    pub bytes: Range<u64>,
    /// The first plane bytes at the hit, in hex.
    pub preview: String,
}

/// Elements per search window; windows overlap by [`OVERLAP`] elements so that a payload
/// straddling two windows is seen whole by the first. 2^17 keeps a window's elements and
/// its largest plane in a 2 MiB L2 cache and the rebuilt overlap at 12.5 %.
const WINDOW: usize = 1 << 17;
const OVERLAP: usize = 1 << 14;
/// Hits kept per tensor (one per plane and kind).
pub const MAX_HITS: usize = 8;
/// Pickle candidates (`\x80\x02`..`\x80\x05`) analysed per plane and window (64 per
/// 2^16 elements).
const MAX_PICKLE_PROBES: usize = 128;
/// Printable run that counts as text.
const MIN_TEXT: usize = 128;

const PATTERNS: &[&[u8]] = &[
    b"\x7fELF",
    b"MZ",
    b"\xfe\xed\xfa\xce",
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"PK\x03\x04",
    b"\x1f\x8b\x08",
    b"BZh",
    b"\xfd7zXZ\x00",
    b"7z\xbc\xaf\x27\x1c",
    b"Rar!\x1a\x07",
    b"\x89PNG\r\n\x1a\n",
    b"\x80\x02",
    b"\x80\x03",
    b"\x80\x04",
    b"\x80\x05",
    b"#!/",
];

/// True when `a b` are the first two bytes of a pattern (every pattern has at least two).
/// Branch-free so that [`starts`] checks 32 positions per step in vector registers;
/// `prefix_table_matches_patterns` checks it against [`PATTERNS`] for all 65536 pairs.
#[inline(always)]
fn prefix2(a: u8, b: u8) -> bool {
    ((a == 0x7f) & (b == b'E'))
        | (((a == b'M') | (a == b'B')) & (b == b'Z'))
        | ((a == 0xfe) & (b == 0xed))
        | (((a | 1) == 0xcf) & (b == 0xfa))
        | ((a == b'P') & (b == b'K'))
        | ((a == 0x1f) & (b == 0x8b))
        | ((a == 0xfd) & (b == b'7'))
        | ((a == b'7') & (b == b'z'))
        | ((a == b'R') & (b == b'a'))
        | ((a == 0x89) & (b == b'P'))
        | ((a == 0x80) & (b.wrapping_sub(2) < 4))
        | ((a == b'#') & (b == b'!'))
}

/// Calls `f(at, pattern)` for every position below `limit` where a pattern starts, in
/// order, until `f` returns true: every occurrence, also one that begins inside another
/// (`fe ed fa ce fa ed fe` holds two Mach-O magics), so a superset of the matches of a
/// non-overlapping multi-pattern search. Random bytes pass the two-byte prefix test
/// about once in 4000 positions, so blocks of 32 positions are tested at once and only
/// a block that has a candidate is looked at position by position.
fn starts(buf: &[u8], limit: usize, mut f: impl FnMut(usize, usize) -> bool) {
    let Some(teddy) = &*TEDDY else {
        return starts_portable(buf, limit, f);
    };
    let mut from = 0;
    while from < limit.min(buf.len()) {
        let Some(m) = teddy.find_in(buf, aho_corasick::Span::from(from..buf.len())) else {
            return;
        };
        if m.start() >= limit || f(m.start(), m.pattern().as_usize()) {
            return;
        }
        // Resume right after the start: an occurrence may begin inside this one.
        from = m.start() + 1;
    }
}

/// Teddy (SIMD, chosen at run time) from `aho-corasick`'s packed searcher, when the CPU
/// has the instructions it needs.
static TEDDY: LazyLock<Option<aho_corasick::packed::Searcher>> =
    LazyLock::new(|| aho_corasick::packed::Searcher::new(PATTERNS));

/// [`starts`] without SIMD instructions beyond the baseline.
fn starts_portable(buf: &[u8], limit: usize, mut f: impl FnMut(usize, usize) -> bool) {
    const BLOCK: usize = 32;
    let end = limit.min(buf.len().saturating_sub(1));
    let mut check = |at: usize| -> bool {
        PATTERNS
            .iter()
            .position(|p| buf[at..].starts_with(p))
            .is_some_and(|p| f(at, p))
    };
    let mut i = 0;
    while i + BLOCK < end {
        let c: &[u8; BLOCK + 1] = buf[i..i + BLOCK + 1].try_into().expect("block");
        let mut any = false;
        for k in 0..BLOCK {
            any |= prefix2(c[k], c[k + 1]);
        }
        if any {
            for k in 0..BLOCK {
                if prefix2(c[k], c[k + 1]) && check(i + k) {
                    return;
                }
            }
        }
        i += BLOCK;
    }
    while i < end {
        if prefix2(buf[i], buf[i + 1]) && check(i) {
            return;
        }
        i += 1;
    }
}

/// The reference matcher the fast search is tested against.
#[cfg(test)]
static MATCHER: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::builder()
        .kind(Some(aho_corasick::AhoCorasickKind::DFA))
        .build(PATTERNS)
        .expect("static patterns")
});

fn u16_at(b: &[u8], at: usize, le: bool) -> Option<u16> {
    let a: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
    Some(if le {
        u16::from_le_bytes(a)
    } else {
        u16::from_be_bytes(a)
    })
}

fn u32_at(b: &[u8], at: usize, le: bool) -> Option<u32> {
    let a: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(if le {
        u32::from_le_bytes(a)
    } else {
        u32::from_be_bytes(a)
    })
}

fn elf(b: &[u8]) -> Option<(&'static str, String)> {
    let (class, data, version) = (*b.get(4)?, *b.get(5)?, *b.get(6)?);
    if !(1..=2).contains(&class) || !(1..=2).contains(&data) || version != 1 {
        return None;
    }
    let le = data == 1;
    let e_type = u16_at(b, 16, le)?;
    let machine = u16_at(b, 18, le)?;
    let e_version = u32_at(b, 20, le)?;
    let arch = match machine {
        3 => "x86",
        0x3e => "x86-64",
        0x28 => "ARM",
        0xb7 => "AArch64",
        0xf3 => "RISC-V",
        8 => "MIPS",
        0x14 | 0x15 => "PowerPC",
        2 | 0x2b => "SPARC",
        _ => return None,
    };
    ((1..=4).contains(&e_type) && e_version == 1).then(|| {
        let t = ["relocatable", "executable", "shared object", "core"][e_type as usize - 1];
        ("ELF executable", format!("{arch} {t}"))
    })
}

fn pe(b: &[u8]) -> Option<(&'static str, String)> {
    let lfanew = u32_at(b, 0x3c, true)? as usize;
    if !(0x40..=0x400).contains(&lfanew) || b.get(lfanew..lfanew + 4)? != b"PE\0\0" {
        return None;
    }
    let arch = match u16_at(b, lfanew + 4, true)? {
        0x14c => "x86",
        0x8664 => "x86-64",
        0xaa64 => "ARM64",
        0x1c0 | 0x1c4 => "ARM",
        _ => return None,
    };
    Some(("PE executable", format!("{arch}, PE header at {lfanew:#x}")))
}

fn macho(b: &[u8]) -> Option<(&'static str, String)> {
    let le = b.get(..4)? == b"\xce\xfa\xed\xfe" || b.get(..4)? == b"\xcf\xfa\xed\xfe";
    let cpu = u32_at(b, 4, le)?;
    let filetype = u32_at(b, 12, le)?;
    let ncmds = u32_at(b, 16, le)?;
    let arch = match cpu {
        7 => "x86",
        0x0100_0007 => "x86-64",
        12 => "ARM",
        0x0100_000c => "ARM64",
        18 | 0x0100_0012 => "PowerPC",
        _ => return None,
    };
    ((1..=12).contains(&filetype) && (1..=4096).contains(&ncmds)).then(|| {
        (
            "Mach-O executable",
            format!("{arch}, {ncmds} load commands"),
        )
    })
}

fn zip_local(b: &[u8]) -> Option<(&'static str, String)> {
    let version = u16_at(b, 4, true)?;
    let flags = u16_at(b, 6, true)?;
    let method = u16_at(b, 8, true)?;
    let name_len = u16_at(b, 26, true)? as usize;
    let extra_len = u16_at(b, 28, true)?;
    if version > 100
        || flags & !0x0809 != 0
        || ![0u16, 8, 9, 12, 14, 93, 95, 98].contains(&method)
        || !(1..=1024).contains(&name_len)
        || extra_len > 4096
    {
        return None;
    }
    let name = b.get(30..30 + name_len)?;
    name.iter().all(|c| (0x20..0x7f).contains(c)).then(|| {
        (
            "zip archive",
            format!("first member {:?}", String::from_utf8_lossy(name)),
        )
    })
}

fn gzip(b: &[u8]) -> Option<(&'static str, String)> {
    if b.get(3)? & 0xe0 != 0 {
        return None;
    }
    let mut d = flate2::read::GzDecoder::new(b);
    let mut out = vec![0u8; 4096];
    let mut got = 0;
    loop {
        match d.read(&mut out[got..]) {
            // The stream ended and its CRC-32 and length matched.
            Ok(0) => {
                return (got > 0).then(|| {
                    (
                        "gzip stream",
                        format!("inflates to {got} bytes, CRC correct"),
                    )
                });
            }
            Ok(n) => {
                got += n;
                if got == out.len() {
                    return Some((
                        "gzip stream",
                        "inflates past 4096 bytes without error".into(),
                    ));
                }
            }
            Err(_) => return None,
        }
    }
}

/// A cheap look at what follows `PROTO n` before the symbolic unpickler runs: a pickle
/// that names a callable starts with a `FRAME` of sane length (protocol 4+), or has a
/// `GLOBAL module\nname\n` line or a short identifier string for `STACK_GLOBAL` near
/// its start. Random bytes almost never do.
fn pickle_plausible(b: &[u8]) -> bool {
    let ident = |c: &u8| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'.';
    if b.get(2) == Some(&0x95) {
        let Some(len) = u32_at(b, 3, true).zip(u32_at(b, 7, true)) else {
            return false;
        };
        return len.1 == 0 && len.0 >= 4 && (len.0 as usize) <= b.len().saturating_sub(11);
    }
    let head = &b[..b.len().min(64)];
    head.iter().enumerate().any(|(i, &c)| match c {
        b'c' => {
            let m = head[i + 1..].iter().take_while(|c| ident(c)).count();
            m >= 2 && head.get(i + 1 + m) == Some(&b'\n')
        }
        0x8c => {
            let n = head.get(i + 1).copied().unwrap_or(0) as usize;
            (2..=40).contains(&n)
                && head
                    .get(i + 2..i + 2 + n)
                    .is_some_and(|s| s.iter().all(ident))
        }
        _ => false,
    })
}

fn pickle_stream(b: &[u8]) -> Option<(&'static str, String)> {
    if !pickle_plausible(b) {
        return None;
    }
    let limits = PickleLimits {
        max_opcodes: 100_000,
        max_pickles: 1,
        ..PickleLimits::default()
    };
    let (a, _) = pickle::analyze_one(b, 0, &limits);
    let ident = |s: &str| {
        !s.is_empty()
            && s.split('.').all(|p| {
                p.chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            })
    };
    let g = a
        .globals
        .iter()
        .find(|g| ident(&g.module) && ident(&g.name))?;
    (a.pickles > 0 || !a.calls.is_empty())
        .then(|| ("pickle", format!("names {}.{}", g.module, g.name)))
}

fn printable(c: u8) -> bool {
    (0x20..0x7f).contains(&c) || c == b'\n' || c == b'\t' || c == b'\r'
}

fn shebang(b: &[u8]) -> Option<(&'static str, String)> {
    let path_len = b[2..]
        .iter()
        .take(65)
        .take_while(|&&c| c.is_ascii_alphanumeric() || b"/_.+-".contains(&c))
        .count();
    let after = *b.get(2 + path_len)?;
    if !(3..=64).contains(&path_len) || !(after == b' ' || after == b'\n') {
        return None;
    }
    let run = b.iter().take(4096).take_while(|&&c| printable(c)).count();
    let line = b[..run].split(|&c| c == b'\n').next().unwrap_or(&[]);
    (run >= 16 && b[..run].contains(&b'\n'))
        .then(|| ("script", String::from_utf8_lossy(line).into_owned()))
}

fn validate(pattern: usize, b: &[u8]) -> Option<(&'static str, String)> {
    match pattern {
        0 => elf(b),
        1 => pe(b),
        2..=5 => macho(b),
        6 => zip_local(b),
        7 => gzip(b),
        8 => {
            let ok = matches!(b.get(3), Some(b'1'..=b'9')) && b.get(4..10)? == b"1AY&SY";
            ok.then(|| ("bzip2 stream", String::new()))
        }
        9 => matches!(b.get(7), Some(0 | 1 | 4 | 10))
            .then(|| ("xz stream", String::new()))
            .filter(|_| b.get(6) == Some(&0)),
        10 => (b.get(6) == Some(&0) && b.get(7).is_some_and(|&m| m <= 4))
            .then(|| ("7z archive", String::new())),
        11 => (b.get(6) == Some(&0) || (b.get(6) == Some(&1) && b.get(7) == Some(&0)))
            .then(|| ("RAR archive", String::new())),
        12 => (b.get(12..16)? == b"IHDR").then(|| ("PNG image", String::new())),
        13..=16 => pickle_stream(b),
        17 => shebang(b),
        _ => None,
    }
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .take(16)
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A long printable run with the variety of real text (not a repeated byte). A run of
/// at least [`MIN_TEXT`] bytes covers a whole stretch between two multiples of half that
/// length, so only those stretches are tested byte by byte.
fn text_runs(buf: &[u8], limit: usize, mut hit: impl FnMut(usize, String) -> bool) {
    const STEP: usize = MIN_TEXT / 2;
    let mut k = 0;
    while k + STEP < buf.len() && k < limit {
        if !(printable(buf[k])
            && printable(buf[k + STEP])
            && buf[k..k + STEP].iter().all(|&c| printable(c)))
        {
            k += STEP;
            continue;
        }
        let mut start = k;
        while start > 0 && printable(buf[start - 1]) {
            start -= 1;
        }
        let mut end = k + STEP;
        while end < buf.len() && printable(buf[end]) {
            end += 1;
        }
        let run = &buf[start..end];
        if start < limit && run.len() >= MIN_TEXT {
            let mut seen = [false; 128];
            run.iter().for_each(|&c| seen[c as usize] = true);
            let distinct = seen.iter().filter(|&&s| s).count();
            let letters = run.iter().filter(|c| c.is_ascii_alphabetic()).count();
            let spaces = run.iter().filter(|&&c| c == b' ' || c == b'\n').count();
            if distinct >= 10 && letters * 10 >= run.len() * 3 && spaces >= 2 {
                let first = run.split(|&c| c == b'\n').next().unwrap_or(&[]);
                let first = &first[..first.len().min(80)];
                if hit(start, String::from_utf8_lossy(first).into_owned()) {
                    return;
                }
            }
        }
        k = (end / STEP + 1) * STEP;
    }
}

/// Searches one plane buffer; `limit` is where this window's own part ends. Long text
/// runs are looked for only when `text` is set (byte planes and stored bytes).
fn search_buf(
    buf: &[u8],
    limit: usize,
    text: bool,
    mut hit: impl FnMut(usize, &'static str, String) -> bool,
) {
    let mut pickles = 0;
    let mut done = false;
    starts(buf, limit, |at, p| {
        if (13..=16).contains(&p) {
            pickles += 1;
            if pickles > MAX_PICKLE_PROBES {
                return false;
            }
        }
        done = validate(p, &buf[at..]).is_some_and(|(kind, detail)| hit(at, kind, detail));
        done
    });
    if done {
        return;
    }
    if text {
        text_runs(buf, limit, |at, line| hit(at, "text or script", line));
    }
}

/// Planes searched for a dtype.
pub fn planes(dtype: Dtype) -> Vec<Plane> {
    let low: &[u8] = match dtype {
        Dtype::F32 => &[1, 2, 3],
        Dtype::F64 => &[1, 2, 3, 4],
        Dtype::F16 | Dtype::BF16 => &[1],
        _ => return Vec::new(),
    };
    let mut v = Vec::new();
    for &n in low {
        v.push(Plane::LowBytes { n, reversed: false });
        if n > 1 {
            v.push(Plane::LowBytes { n, reversed: true });
        }
    }
    // The low 8 bits packed either way are the low byte itself (`LowBytes { n: 1 }`),
    // so `n = 8` is not searched twice (`low_bits_8_is_low_byte` checks the identity).
    for n in 1..8 {
        v.push(Plane::LowBits {
            n,
            lsb_first: false,
        });
        v.push(Plane::LowBits { n, lsb_first: true });
    }
    v
}

/// Rebuilds `plane` from whole elements of `size` bytes into `out`, element by element:
/// the reference the fast builders are tested against.
#[cfg(test)]
fn build_reference(plane: Plane, el: &[u8], size: usize, endian: Endian, out: &mut Vec<u8>) {
    out.clear();
    let low = |i: usize| match endian {
        Endian::Little => i,
        Endian::Big => size - 1 - i,
    };
    match plane {
        Plane::LowBytes { n, reversed } => {
            let n = n as usize;
            let count = el.len() / size;
            out.resize(count * n, 0);
            // Indices of the low bytes in plane order, for this byte order.
            let mut idx = [0usize; 8];
            for (j, slot) in idx.iter_mut().enumerate().take(n) {
                *slot = low(if reversed { n - 1 - j } else { j });
            }
            let contiguous = idx[..n].iter().enumerate().all(|(j, &k)| k == j);
            if contiguous {
                for (o, e) in out.chunks_exact_mut(n).zip(el.chunks_exact(size)) {
                    o.copy_from_slice(&e[..n]);
                }
            } else {
                for (o, e) in out.chunks_exact_mut(n).zip(el.chunks_exact(size)) {
                    for (dst, &k) in o.iter_mut().zip(&idx[..n]) {
                        *dst = e[k];
                    }
                }
            }
        }
        Plane::LowBits { n, lsb_first } => {
            let (n, mask) = (u32::from(n), (1u64 << n) - 1);
            let (mut acc, mut bits) = (0u64, 0u32);
            let l0 = low(0);
            out.reserve(el.len() / size * n as usize / 8 + 1);
            if lsb_first {
                // Element bit 0 first, filling each byte from its LSB.
                for e in el.chunks_exact(size) {
                    acc |= (u64::from(e[l0]) & mask) << bits;
                    bits += n;
                    if bits >= 8 {
                        out.push(acc as u8);
                        acc >>= 8;
                        bits -= 8;
                    }
                }
            } else {
                for e in el.chunks_exact(size) {
                    acc = (acc << n) | (u64::from(e[l0]) & mask);
                    bits += n;
                    if bits >= 8 {
                        bits -= 8;
                        out.push((acc >> bits) as u8);
                        acc &= (1u64 << bits) - 1;
                    }
                }
            }
        }
        Plane::Raw => out.extend_from_slice(el),
    }
}

/// The low byte of each element (`LowBytes { n: 1 }`), which also carries every bit
/// plane's bits.
fn low_bytes(el: &[u8], size: usize, endian: Endian, out: &mut Vec<u8>) {
    let k = match endian {
        Endian::Little => 0,
        Endian::Big => size - 1,
    };
    out.clear();
    out.resize(el.len() / size, 0);
    // Eight elements per step from `u64` words (SSE2 has no byte shuffle, so a
    // byte-by-byte gather stays scalar).
    match (size, k) {
        (2, 0) => {
            for (o, e) in out.chunks_exact_mut(8).zip(el.chunks_exact(16)) {
                let mut v = 0u64;
                for (h, w) in e.chunks_exact(8).enumerate() {
                    let x =
                        u64::from_le_bytes(w.try_into().expect("8 bytes")) & 0x00ff_00ff_00ff_00ff;
                    let x = (x | (x >> 8)) & 0x0000_ffff_0000_ffff;
                    let x = (x | (x >> 16)) & 0xffff_ffff;
                    v |= x << (32 * h);
                }
                o.copy_from_slice(&v.to_le_bytes());
            }
            let done = el.len() / 16 * 8;
            for (o, e) in out[done..].iter_mut().zip(el[done * 2..].chunks_exact(2)) {
                *o = e[0];
            }
        }
        (4, 0) => {
            for (o, e) in out.chunks_exact_mut(8).zip(el.chunks_exact(32)) {
                let mut v = 0u64;
                for (h, w) in e.chunks_exact(8).enumerate() {
                    let x = u64::from_le_bytes(w.try_into().expect("8 bytes"));
                    let x = (x & 0xff) | ((x >> 24) & 0xff00);
                    v |= x << (16 * h);
                }
                o.copy_from_slice(&v.to_le_bytes());
            }
            let done = el.len() / 32 * 8;
            for (o, e) in out[done..].iter_mut().zip(el[done * 4..].chunks_exact(4)) {
                *o = e[0];
            }
        }
        (8, 0) => gather::<8, 1>(el, out, |e| [e[0]]),
        _ => {
            for (o, e) in out.iter_mut().zip(el.chunks_exact(size)) {
                *o = e[k];
            }
        }
    }
}

/// Fixed-size gather of `N` plane bytes from each `S`-byte element (vectorisable).
#[inline(always)]
fn gather<const S: usize, const N: usize>(
    el: &[u8],
    out: &mut [u8],
    f: impl Fn(&[u8; S]) -> [u8; N],
) {
    for (o, e) in out.chunks_exact_mut(N).zip(el.chunks_exact(S)) {
        let e: &[u8; S] = e.try_into().expect("chunk of S bytes");
        o.copy_from_slice(&f(e));
    }
}

/// `LowBytes { n, reversed }` with `n >= 2`: fixed-size paths for little-endian `F32`,
/// index tables otherwise.
fn low_n_bytes(
    n: usize,
    reversed: bool,
    el: &[u8],
    size: usize,
    endian: Endian,
    out: &mut Vec<u8>,
) {
    out.clear();
    out.resize(el.len() / size * n, 0);
    match (size, endian, n, reversed) {
        (4, Endian::Little, 2, false) => gather::<4, 2>(el, out, |e| [e[0], e[1]]),
        (4, Endian::Little, 2, true) => gather::<4, 2>(el, out, |e| [e[1], e[0]]),
        (4, Endian::Little, 3, reversed) => {
            // Whole `u32` stores, three bytes apart (one byte of slack).
            out.push(0);
            for (k, e) in el.chunks_exact(4).enumerate() {
                let w = u32::from_le_bytes(e.try_into().expect("4 bytes"));
                let w = if reversed { w.swap_bytes() >> 8 } else { w };
                out[3 * k..3 * k + 4].copy_from_slice(&w.to_le_bytes());
            }
            out.pop();
        }
        _ => {
            let low = |i: usize| match endian {
                Endian::Little => i,
                Endian::Big => size - 1 - i,
            };
            let mut idx = [0usize; 8];
            for (j, slot) in idx.iter_mut().enumerate().take(n) {
                *slot = low(if reversed { n - 1 - j } else { j });
            }
            for (o, e) in out.chunks_exact_mut(n).zip(el.chunks_exact(size)) {
                for (dst, &k) in o.iter_mut().zip(&idx[..n]) {
                    *dst = e[k];
                }
            }
        }
    }
}

/// `LowBits { n, lsb_first }` from the low bytes: eight elements give exactly `n` plane
/// bytes, packed in one `u64`; the last partial group bit by bit (whole bytes only).
fn low_bits(lo: &[u8], n: u8, lsb_first: bool, out: &mut Vec<u8>) {
    match (n, lsb_first) {
        (1, false) => pack::<1, false>(lo, out),
        (2, false) => pack::<2, false>(lo, out),
        (3, false) => pack::<3, false>(lo, out),
        (4, false) => pack::<4, false>(lo, out),
        (5, false) => pack::<5, false>(lo, out),
        (6, false) => pack::<6, false>(lo, out),
        (7, false) => pack::<7, false>(lo, out),
        (8, false) => pack::<8, false>(lo, out),
        (1, true) => pack::<1, true>(lo, out),
        (2, true) => pack::<2, true>(lo, out),
        (3, true) => pack::<3, true>(lo, out),
        (4, true) => pack::<4, true>(lo, out),
        (5, true) => pack::<5, true>(lo, out),
        (6, true) => pack::<6, true>(lo, out),
        (7, true) => pack::<7, true>(lo, out),
        _ => pack::<8, true>(lo, out),
    }
}

fn pack<const N: usize, const LSB: bool>(lo: &[u8], out: &mut Vec<u8>) {
    let mask = (1u64 << N) - 1;
    let groups = lo.chunks_exact(8);
    let rest = groups.remainder();
    let full = lo.len() / 8 * N;
    // Each group is stored as a whole `u64` (8 bytes of slack), the next group
    // overwriting its unused bytes.
    out.clear();
    out.resize(full + 8, 0);
    // The low N bits of each byte.
    let m1 = 0x0101_0101_0101_0101u64 * mask;
    for (j, g) in groups.enumerate() {
        let w = u64::from_le_bytes(g.try_into().expect("8 bytes"));
        // MSB-first: element 0 goes to the top bits, so reverse the bytes first.
        let w = if LSB { w } else { w.swap_bytes() };
        // Join lanes pairwise three times (bytes, 16-bit, 32-bit lanes), the upper
        // half of each lane moved down next to the lower: byte k's bits end at bit N*k.
        let x = w & m1;
        let x = (x & 0x00ff_00ff_00ff_00ff) | ((x & 0xff00_ff00_ff00_ff00) >> (8 - N));
        let x = (x & 0x0000_ffff_0000_ffff) | ((x & 0xffff_0000_ffff_0000) >> (16 - 2 * N));
        let x = (x & 0xffff_ffff) | ((x >> 32) << (4 * N));
        let bytes = if LSB {
            x.to_le_bytes()
        } else {
            (x << (64 - 8 * N)).to_be_bytes()
        };
        out[j * N..j * N + 8].copy_from_slice(&bytes);
    }
    out.truncate(full);
    // Groups end on byte boundaries, so the tail starts with an empty accumulator.
    let (n, mut acc, mut bits) = (N as u32, 0u64, 0u32);
    for &e in rest {
        let e = u64::from(e) & mask;
        if LSB {
            acc |= e << bits;
            bits += n;
            if bits >= 8 {
                out.push(acc as u8);
                acc >>= 8;
                bits -= 8;
            }
        } else {
            acc = (acc << n) | e;
            bits += n;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
                acc &= (1u64 << bits) - 1;
            }
        }
    }
}

/// Rebuilds `plane` for the elements `el` into `out`; `lo` holds their low bytes
/// (from [`low_bytes`]).
fn build(plane: Plane, el: &[u8], lo: &[u8], size: usize, endian: Endian, out: &mut Vec<u8>) {
    match plane {
        Plane::LowBytes { n: 1, .. } => {
            out.clear();
            out.extend_from_slice(lo);
        }
        Plane::LowBytes { n, reversed } => low_n_bytes(n as usize, reversed, el, size, endian, out),
        Plane::LowBits { n, lsb_first } => low_bits(lo, n, lsb_first, out),
        Plane::Raw => {
            out.clear();
            out.extend_from_slice(el);
        }
    }
}

/// Tensors of at least this many windows are searched on several threads.
const PAR_WINDOWS: usize = 4;

/// Searches the planes of a floating-point tensor for validated payloads. The result is
/// the same as a window-by-window search in order: at most [`MAX_HITS`], one per kind,
/// the first of each kind in window, plane and position order. A large tensor's windows
/// are searched in parallel (rayon) and their hits merged in window order.
pub fn search_tensor(t: &Tensor) -> Vec<PayloadHit> {
    search_tensor_with(t, true)
}

fn search_tensor_with(t: &Tensor, parallel: bool) -> Vec<PayloadHit> {
    let Some(size) = t.dtype.size() else {
        return Vec::new();
    };
    let planes = planes(t.dtype);
    let data = t.bytes();
    let n = data.len() / size;
    let starts: Vec<usize> = (0..n).step_by(WINDOW).collect();
    let window = |bufs: &mut (Vec<u8>, Vec<u8>), start: usize| {
        search_window(data, size, t.endian, &planes, start, bufs)
    };
    let mut hits: Vec<PayloadHit> = Vec::new();
    if parallel && starts.len() >= PAR_WINDOWS {
        let found: Vec<Vec<PayloadHit>> = starts
            .par_iter()
            .map_init(|| (Vec::new(), Vec::new()), |bufs, &s| window(bufs, s))
            .collect();
        for w in found {
            merge_hits(&mut hits, w);
        }
    } else {
        let mut bufs = (Vec::new(), Vec::new());
        for &s in &starts {
            merge_hits(&mut hits, window(&mut bufs, s));
            if hits.len() >= MAX_HITS {
                break;
            }
        }
    }
    hits
}

/// Adds a window's hits of kinds not seen yet, up to [`MAX_HITS`].
fn merge_hits(hits: &mut Vec<PayloadHit>, window: Vec<PayloadHit>) {
    for h in window {
        if hits.len() >= MAX_HITS {
            return;
        }
        if !hits.iter().any(|x| x.kind == h.kind) {
            hits.push(h);
        }
    }
}

/// The hits of the window of elements starting at `start`, one per kind (at most
/// [`MAX_HITS`]); `bufs` are the low-byte and plane buffers, reused between windows.
fn search_window(
    data: &[u8],
    size: usize,
    endian: Endian,
    planes: &[Plane],
    start: usize,
    (lo, buf): &mut (Vec<u8>, Vec<u8>),
) -> Vec<PayloadHit> {
    let n = data.len() / size;
    let mut hits: Vec<PayloadHit> = Vec::new();
    let end = (start + WINDOW + OVERLAP).min(n);
    let own_end = (start + WINDOW).min(n);
    let el = &data[start * size..end * size];
    low_bytes(el, size, endian, lo);
    for &plane in planes {
        let buf: &[u8] = if plane
            == (Plane::LowBytes {
                n: 1,
                reversed: false,
            }) {
            lo
        } else {
            build(plane, el, lo, size, endian, buf);
            buf
        };
        // Plane bytes produced by this window's own elements.
        let own = match plane {
            Plane::LowBytes { n: b, .. } => (own_end - start) * b as usize,
            Plane::LowBits { n: b, .. } => (own_end - start) * b as usize / 8,
            Plane::Raw => own_end - start,
        };
        let limit = if end == n { buf.len() } else { own };
        let text = !matches!(plane, Plane::LowBits { .. });
        search_buf(buf, limit, text, |at, kind, detail| {
            if hits.iter().any(|h| h.kind == kind) {
                return false;
            }
            let element = start as u64 + plane.elements_for(at as u64);
            hits.push(PayloadHit {
                kind,
                detail,
                plane,
                element,
                bytes: element * size as u64..data.len() as u64,
                preview: hex(&buf[at..]),
            });
            hits.len() >= MAX_HITS
        });
        if hits.len() >= MAX_HITS {
            break;
        }
    }
    hits
}

/// Searches bytes as stored (bytes no tensor covers).
pub fn search_bytes(data: &[u8]) -> Vec<PayloadHit> {
    let mut hits = Vec::new();
    search_buf(data, data.len(), true, |at, kind, detail| {
        if hits.iter().any(|h: &PayloadHit| h.kind == kind) {
            return false;
        }
        hits.push(PayloadHit {
            kind,
            detail,
            plane: Plane::Raw,
            element: at as u64,
            bytes: at as u64..data.len() as u64,
            preview: hex(&data[at..]),
        });
        hits.len() >= MAX_HITS
    });
    hits
}

/// Why a stretch of a tensor stands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionKind {
    /// The tensor's values are rounded from `bf16` (low 16 bits zero), but not here.
    LowHalvesNotZero,
    /// The low byte of the values has much less entropy here than elsewhere.
    LowByteEntropy,
    /// The least significant bits are far from fair coin flips here, unlike elsewhere.
    LsbBias,
}

/// A stretch of elements that differs from the rest of its tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    pub kind: RegionKind,
    /// Element indices, in storage order.
    pub elements: Range<u64>,
    /// Elements inside that are the reason (values with non-zero low halves, …).
    pub count: u64,
    pub detail: String,
}

/// Regions reported per tensor.
pub const MAX_REGIONS: usize = 8;
/// Elements per window for the bf16 low-halves check.
const ROUNDED_WINDOW: usize = 256;
/// Elements per window for entropy and LSB statistics.
const STAT_WINDOW: usize = 4096;
/// Windows a tensor needs before its windows are compared with each other.
const MIN_WINDOWS: usize = 16;

/// True when an `F32` tensor's values were rounded from `bf16`: most non-zero values
/// have zero low halves, and many of them use the full bf16 mantissa.
pub fn is_bf16_rounded(s: &Stats) -> bool {
    let nonzero = s.count.saturating_sub(s.zeros + s.nan + s.inf);
    s.bf16_full >= 256 && s.bf16_exact * 2 >= nonzero
}

fn merge(regions: &mut Vec<Region>, r: Region) {
    if let Some(last) = regions.last_mut()
        && last.kind == r.kind
        && last.elements.end == r.elements.start
    {
        last.elements.end = r.elements.end;
        last.count += r.count;
        return;
    }
    regions.push(r);
}

/// Windowed statistics of a floating-point tensor (stats from [`crate::stats::stats`]).
pub fn regions(t: &Tensor, s: &Stats) -> Vec<Region> {
    let size = match (t.dtype, t.endian) {
        (Dtype::F32, Endian::Little) => 4,
        (Dtype::F16 | Dtype::BF16, Endian::Little) => 2,
        _ => return Vec::new(),
    };
    let data = t.bytes();
    let mut out = Vec::new();
    if size == 4 && is_bf16_rounded(s) {
        for (w, chunk) in data.chunks(ROUNDED_WINDOW * 4).enumerate() {
            let c = chunk.chunks_exact(4).filter(|e| (e[0] | e[1]) != 0).count() as u64;
            if c > 0 {
                let from = (w * ROUNDED_WINDOW) as u64;
                merge(
                    &mut out,
                    Region {
                        kind: RegionKind::LowHalvesNotZero,
                        elements: from..from + (chunk.len() / 4) as u64,
                        count: c,
                        detail: String::new(),
                    },
                );
            }
        }
        out.truncate(MAX_REGIONS);
        return out;
    }
    // Per window: entropy of the low byte and the share of set LSBs, over values whose
    // low bits carry information (exact zeros and rounded values are left out).
    struct W {
        n: u32,
        entropy: f64,
        z: f64,
    }
    let mut windows = Vec::new();
    for chunk in data.chunks(STAT_WINDOW * size) {
        let mut hist = [0u32; 256];
        let mut n = 0u32;
        let mut ones = 0u32;
        for e in chunk.chunks_exact(size) {
            let informative = if size == 4 {
                (e[0] | e[1]) != 0
            } else {
                (e[0] | (e[1] & 0x7f)) != 0
            };
            if informative {
                hist[e[0] as usize] += 1;
                ones += u32::from(e[0] & 1);
                n += 1;
            }
        }
        let entropy = if n > 0 {
            let nf = f64::from(n);
            -hist
                .iter()
                .filter(|&&h| h > 0)
                .map(|&h| {
                    let p = f64::from(h) / nf;
                    p * p.log2()
                })
                .sum::<f64>()
        } else {
            0.0
        };
        let z = if n > 0 {
            (f64::from(ones) / f64::from(n) - 0.5).abs() * 2.0 * f64::from(n).sqrt()
        } else {
            0.0
        };
        windows.push(W { n, entropy, z });
    }
    let eligible: Vec<&W> = windows.iter().filter(|w| w.n >= 1024).collect();
    if eligible.len() < MIN_WINDOWS {
        return out;
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let med_h = median(eligible.iter().map(|w| w.entropy).collect());
    let med_z = median(eligible.iter().map(|w| w.z).collect());
    for (i, w) in windows.iter().enumerate() {
        if w.n < 1024 {
            continue;
        }
        let from = (i * STAT_WINDOW) as u64;
        let to = (from + STAT_WINDOW as u64).min((data.len() / size) as u64);
        if med_h >= 6.0 && w.entropy < med_h - 1.0 {
            merge(
                &mut out,
                Region {
                    kind: RegionKind::LowByteEntropy,
                    elements: from..to,
                    count: u64::from(w.n),
                    detail: format!(
                        "low-byte entropy {:.2} bits, {:.2} elsewhere",
                        w.entropy, med_h
                    ),
                },
            );
        } else if med_z < 3.0 && w.z > 8.0 {
            merge(
                &mut out,
                Region {
                    kind: RegionKind::LsbBias,
                    elements: from..to,
                    count: u64::from(w.n),
                    detail: format!(
                        "least significant bits deviate by {:.1} sigma from random",
                        w.z
                    ),
                },
            );
        }
        if out.len() > MAX_REGIONS {
            break;
        }
    }
    out.truncate(MAX_REGIONS);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planes_round_trip_bits() {
        // One payload bit per element, MSB-first, in the LSB of f32 values.
        let payload = b"\x7fELF";
        let mut el = Vec::new();
        for byte in payload {
            for i in (0..8).rev() {
                let v = 0x3f80_0000u32 | u32::from((byte >> i) & 1);
                el.extend(v.to_le_bytes());
            }
        }
        let mut out = Vec::new();
        build_reference(
            Plane::LowBits {
                n: 1,
                lsb_first: false,
            },
            &el,
            4,
            Endian::Little,
            &mut out,
        );
        assert_eq!(&out, payload);
        build_reference(
            Plane::LowBytes {
                n: 1,
                reversed: false,
            },
            &el,
            4,
            Endian::Little,
            &mut out,
        );
        assert_eq!(out.len(), 32);
    }

    fn xorshift(seed: u64) -> impl FnMut() -> u64 {
        let mut x = seed;
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    fn every_plane() -> Vec<Plane> {
        let mut v = Vec::new();
        for n in 1..=4 {
            v.push(Plane::LowBytes { n, reversed: false });
            v.push(Plane::LowBytes { n, reversed: true });
        }
        for n in 1..=8 {
            v.push(Plane::LowBits {
                n,
                lsb_first: false,
            });
            v.push(Plane::LowBits { n, lsb_first: true });
        }
        v.push(Plane::Raw);
        v
    }

    #[test]
    fn fast_builders_match_the_reference_on_random_data() {
        let mut next = xorshift(0x2545_f491_4f6c_dd1d);
        for size in [2usize, 4, 8] {
            for endian in [Endian::Little, Endian::Big] {
                // Lengths around the 8-element packing groups, and odd tails.
                for count in [0usize, 1, 7, 8, 9, 15, 16, 17, 63, 1000, 4099] {
                    let el: Vec<u8> = (0..count * size + size / 2)
                        .map(|_| (next() >> 32) as u8)
                        .collect();
                    let mut lo = Vec::new();
                    low_bytes(&el, size, endian, &mut lo);
                    let (mut fast, mut slow) = (Vec::new(), Vec::new());
                    for plane in every_plane() {
                        if matches!(plane, Plane::LowBytes { n, .. } if n as usize > size) {
                            continue;
                        }
                        build(plane, &el, &lo, size, endian, &mut fast);
                        build_reference(plane, &el, size, endian, &mut slow);
                        assert_eq!(fast, slow, "{plane:?} size {size} {endian:?} count {count}");
                    }
                }
            }
        }
    }

    #[test]
    fn low_bits_8_is_low_byte() {
        let mut next = xorshift(7);
        let el: Vec<u8> = (0..4 * 1001).map(|_| next() as u8).collect();
        for (size, endian) in [(4, Endian::Little), (4, Endian::Big), (2, Endian::Little)] {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let low = Plane::LowBytes {
                n: 1,
                reversed: false,
            };
            build_reference(low, &el, size, endian, &mut a);
            for lsb_first in [false, true] {
                let bits = Plane::LowBits { n: 8, lsb_first };
                build_reference(bits, &el, size, endian, &mut b);
                assert_eq!(a, b);
            }
        }
    }

    #[test]
    fn prefix_table_matches_patterns() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let want = PATTERNS.iter().any(|p| p[0] == a && p[1] == b);
                assert_eq!(prefix2(a, b), want, "{a:#04x} {b:#04x}");
            }
        }
    }

    #[test]
    fn starts_finds_what_the_automaton_finds() {
        let mut next = xorshift(0x51ed_270b_2701_7c1b);
        let mut buf: Vec<u8> = (0..1 << 20).map(|_| (next() >> 40) as u8).collect();
        // Plant every pattern many times, at every alignment, some at the very end.
        for i in 0..2000usize {
            let p = PATTERNS[i % PATTERNS.len()];
            let at = (next() as usize) % (buf.len() - p.len());
            buf[at..at + p.len()].copy_from_slice(p);
        }
        let tail = PATTERNS[0];
        let n = buf.len();
        buf[n - tail.len()..].copy_from_slice(tail);
        // Mach-O magics can overlap (`fe ed fa ce fa ed fe`): plant that too.
        buf[5000..5007].copy_from_slice(b"\xfe\xed\xfa\xce\xfa\xed\xfe");
        for limit in [buf.len(), buf.len() / 2 + 3, 31, 0] {
            // Every occurrence, overlapping ones included, in order of their starts.
            let mut want: Vec<(usize, usize)> = MATCHER
                .find_overlapping_iter(&buf)
                .filter(|m| m.start() < limit)
                .map(|m| (m.start(), m.pattern().as_usize()))
                .collect();
            want.sort_unstable();
            let mut got = Vec::new();
            starts(&buf, limit, |at, p| {
                got.push((at, p));
                false
            });
            assert_eq!(got, want, "limit {limit}");
            // So nothing the non-overlapping search found is missed.
            for m in MATCHER.find_iter(&buf).take_while(|m| m.start() < limit) {
                assert!(got.contains(&(m.start(), m.pattern().as_usize())));
            }
        }
    }

    /// An ELF header the validator accepts.
    fn elf_header() -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
        h[16..18].copy_from_slice(&2u16.to_le_bytes());
        h[18..20].copy_from_slice(&0x3eu16.to_le_bytes());
        h[20..24].copy_from_slice(&1u32.to_le_bytes());
        h
    }

    /// Writes `payload` into `plane` of the elements `el` from plane byte `at` on.
    fn embed(plane: Plane, el: &mut [u8], size: usize, payload: &[u8], at: usize) {
        match plane {
            Plane::LowBytes { n, reversed } => {
                let n = n as usize;
                for (j, &b) in payload.iter().enumerate() {
                    let (e, k) = ((at + j) / n, (at + j) % n);
                    let k = if reversed { n - 1 - k } else { k };
                    el[e * size + k] = b;
                }
            }
            Plane::LowBits { n, lsb_first } => {
                let n = n as usize;
                for (j, &b) in payload.iter().enumerate() {
                    for t in 0..8 {
                        let bit = if lsb_first {
                            (b >> t) & 1
                        } else {
                            (b >> (7 - t)) & 1
                        };
                        let pos = (at + j) * 8 + t;
                        let (e, k) = (pos / n, pos % n);
                        let k = if lsb_first { k } else { n - 1 - k };
                        let byte = &mut el[e * size + k / 8];
                        *byte = (*byte & !(1 << (k % 8))) | (bit << (k % 8));
                    }
                }
            }
            Plane::Raw => el[at..at + payload.len()].copy_from_slice(payload),
        }
    }

    #[test]
    fn payload_straddling_a_window_boundary_is_found_in_every_plane() {
        let payload = elf_header();
        for dtype in [Dtype::F16, Dtype::BF16, Dtype::F32, Dtype::F64] {
            let size = dtype.size().unwrap();
            for plane in planes(dtype).into_iter().chain([Plane::LowBits {
                n: 8,
                lsb_first: true,
            }]) {
                // Plane bytes before the first window's last element, minus 10.
                let per = |elements: usize| match plane {
                    Plane::LowBytes { n, .. } => elements * n as usize,
                    Plane::LowBits { n, .. } => elements * n as usize / 8,
                    Plane::Raw => elements * size,
                };
                let at = per(WINDOW) - 10;
                let mut el = vec![0u8; 2 * WINDOW * size];
                embed(plane, &mut el, size, &payload, at);
                // The test's own check that the payload sits where it should.
                let mut out = Vec::new();
                build_reference(plane, &el, size, Endian::Little, &mut out);
                assert_eq!(&out[at..at + payload.len()], &payload[..], "{plane:?}");
                let t = Tensor {
                    name: "w".into(),
                    dtype,
                    endian: Endian::Little,
                    shape: vec![(el.len() / size) as u64],
                    strides: vec![1],
                    data: crate::Bytes::Borrowed(&el),
                    range: 0..el.len() as u64,
                    member: None,
                };
                let hits = search_tensor(&t);
                let same = |p: Plane| {
                    p == plane
                        || (plane
                            == Plane::LowBits {
                                n: 8,
                                lsb_first: true,
                            }
                            && p == Plane::LowBytes {
                                n: 1,
                                reversed: false,
                            })
                };
                assert!(
                    hits.iter()
                        .any(|h| h.kind == "ELF executable" && same(h.plane)),
                    "{dtype:?} {plane:?}: {hits:?}"
                );
            }
        }
    }

    #[test]
    fn parallel_windows_give_the_sequential_result() {
        // Six windows of random f32 values; ELF headers in windows 4 and 1 (the one in
        // window 1 must win), a script in window 5, a second script in window 2.
        let mut next = xorshift(99);
        let n = 6 * WINDOW;
        let mut el: Vec<u8> = (0..n)
            .flat_map(|_| (0x3c00_0000 | (next() as u32 & 0x00ff_ffff)).to_le_bytes())
            .collect();
        let script = b"#!/bin/sh\necho this is a harmless test script for the search\n";
        let b1 = Plane::LowBytes {
            n: 1,
            reversed: false,
        };
        let b2 = Plane::LowBytes {
            n: 2,
            reversed: true,
        };
        embed(b1, &mut el, 4, &elf_header(), 4 * WINDOW + 100);
        embed(b2, &mut el, 4, &elf_header(), 2 * (WINDOW + 7));
        embed(b1, &mut el, 4, script, 5 * WINDOW + 3);
        embed(b2, &mut el, 4, script, 2 * (2 * WINDOW + 50));
        let t = Tensor {
            name: "w".into(),
            dtype: Dtype::F32,
            endian: Endian::Little,
            shape: vec![n as u64],
            strides: vec![1],
            data: crate::Bytes::Borrowed(&el),
            range: 0..el.len() as u64,
            member: None,
        };
        let par = search_tensor_with(&t, true);
        let seq = search_tensor_with(&t, false);
        assert_eq!(par, seq);
        let elf = par.iter().find(|h| h.kind == "ELF executable").unwrap();
        assert_eq!((elf.element, elf.plane), ((WINDOW + 7) as u64, b2));
        let sh = par.iter().find(|h| h.kind == "script").unwrap();
        assert_eq!((sh.element, sh.plane), ((2 * WINDOW + 50) as u64, b2));
    }

    #[test]
    fn random_bytes_have_no_validated_hits() {
        // xorshift noise: short magics occur, none validates.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let data: Vec<u8> = (0..(8 << 20))
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        assert!(search_bytes(&data).is_empty(), "{:?}", search_bytes(&data));
    }
}
