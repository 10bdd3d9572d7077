//! NumPy `.npy`: header checks, and the pickle that follows an object-dtype header.

use crate::engine::{FileScan, Format, Loc};
use crate::rules::code;
use assay_formats::npy::parse_header;
use assay_report::Severity;

pub fn scan(ctx: &mut FileScan, data: &[u8], loc: &Loc, depth: u32) -> Format {
    let h = match parse_header(data) {
        Ok(h) => h,
        Err(e) => {
            ctx.incomplete = true;
            ctx.add(
                code::NPY002,
                Severity::High,
                loc,
                Some(0),
                format!("malformed .npy header: {e}"),
                None,
            );
            return Format::Npy;
        }
    };
    let body = data.get(h.data_offset..).unwrap_or(&[]);
    if h.has_object {
        ctx.feature(assay_advisories::Feature::NumpyObjectArray, loc);
        ctx.add(
            code::NPY001,
            Severity::Medium,
            loc,
            Some(h.data_offset as u64),
            "object array: numpy.load(allow_pickle=True) unpickles the data that follows".into(),
            Some(format!("descr {}", h.descr)),
        );
        let child = loc.child("<pickle>");
        crate::analyze::pickle::scan(ctx, body, &child, depth + 1, true);
        return Format::Npy;
    }
    if let Some(len) = h.data_len {
        let have = body.len() as u64;
        if have < len {
            ctx.add(
                code::NPY002,
                Severity::High,
                loc,
                Some(h.data_offset as u64),
                format!("array data truncated: header declares {len} bytes, {have} present"),
                None,
            );
        } else if have > len {
            let off = h.data_offset as u64 + len;
            let rest = &body[len as usize..];
            ctx.add(
                code::ARC005,
                Severity::Medium,
                loc,
                Some(off),
                format!(
                    "{} bytes follow the array data declared by the header",
                    have - len
                ),
                Some(crate::engine::hex_prefix(rest)),
            );
            let child = loc.child(&format!("@{off}"));
            if ctx.enter_member(&child) {
                ctx.scan_bytes(rest, &child, depth + 1);
            }
        }
    }
    Format::Npy
}
