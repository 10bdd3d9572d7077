//! gzip, zlib, bzip2, xz, lzma and lz4 streams: decompressed within limits, then scanned
//! as whatever they contain.

use crate::blob::{SpillStop, SpillWriter};
use crate::engine::{FileScan, Format, Loc};
use crate::rules::code;
use assay_formats::compress::{Compression, DecompressError, decompress_to};
use assay_report::Severity;

pub fn scan(ctx: &mut FileScan, kind: Compression, data: &[u8], loc: &Loc, depth: u32) -> Format {
    // joblib < 0.10 prefixed its zlib stream with a small length header.
    let data = if data.starts_with(b"ZF0x") {
        data.get(assay_formats::sniff::JOBLIB_ZF_HEADER..)
            .unwrap_or(&[])
    } else {
        data
    };
    let budget = ctx
        .limits
        .max_expanded_per_file
        .saturating_sub(ctx.expanded);
    let mut out = SpillWriter::new(data.len() as u64, ctx.limits, budget);
    let res = decompress_to(kind, data, &mut out, u64::MAX);
    ctx.expanded += out.written;
    if let Some(stop) = out.stopped {
        bomb(ctx, loc, kind.name(), data.len() as u64, out.written, stop);
        return Format::Compressed(kind);
    }
    let written = out.written;
    let blob = match out.finish() {
        Ok(b) => b,
        Err(e) => {
            ctx.incomplete = true;
            ctx.add(
                code::ARC004,
                Severity::High,
                loc,
                None,
                format!("could not buffer decompressed {} data: {e}", kind.name()),
                None,
            );
            return Format::Compressed(kind);
        }
    };
    if let Err(e) = res {
        // A weak signature (zlib, lzma) that does not decompress is just data.
        if matches!(kind, Compression::Zlib | Compression::Lzma) && written == 0 {
            return Format::Unknown;
        }
        let msg = match e {
            DecompressError::LimitExceeded { limit } => {
                format!("decompressed size exceeds {limit} bytes")
            }
            other => other.to_string(),
        };
        ctx.incomplete = true;
        ctx.add(
            code::ARC004,
            Severity::High,
            loc,
            None,
            format!("{msg}; the {written} bytes before the damage are scanned"),
            None,
        );
    }
    let child = loc.child(&format!("<{}>", kind.name()));
    if ctx.enter_member(&child) {
        let inner = ctx.scan_blob(&blob, &child, depth + 1);
        // joblib writes a compressed pickle; name the format after what it holds.
        if inner == Format::Joblib {
            return Format::Joblib;
        }
    }
    Format::Compressed(kind)
}

pub fn bomb(
    ctx: &mut FileScan,
    loc: &Loc,
    what: &str,
    compressed: u64,
    written: u64,
    stop: SpillStop,
) {
    ctx.incomplete = true;
    let why = match stop {
        SpillStop::Size => format!(
            "expands past the size limit of {} bytes",
            ctx.limits
                .max_expanded_size
                .min(ctx.limits.max_expanded_per_file)
        ),
        SpillStop::Ratio => format!("expands more than {}:1", ctx.limits.max_ratio),
    };
    ctx.add(
        code::ZIP003,
        Severity::High,
        loc,
        None,
        format!("decompression bomb: {what} data {why}; stopped"),
        Some(format!(
            "{compressed} compressed bytes produced more than {written} bytes"
        )),
    );
}
