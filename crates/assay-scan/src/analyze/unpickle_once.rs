//! Each pickle is unpickled once per scan: the pickle stage's analysis is what the zip
//! stage (storage keys), the tensor stage (numpy arrays) and the tensor view (PyTorch
//! tensors and storages) use. The symbolic unpickler's test hook records every stream it
//! runs over, by content, so the same bytes analysed twice (even from two copies of a
//! deflated member) show up as a repeated record.

use crate::engine::{FileScan, Loc};
use crate::limits::Limits;
use assay_formats::pickle::{AnalysedStream, trace_analyses};
use assay_formats::zip::{self, ZipLimits};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures")
            .join(rel),
    )
    .unwrap()
}

/// Scans `data` on this thread (the engine's stages run here; only the statistics of
/// tensors run in parallel) and returns what was unpickled.
fn scan_traced(data: &[u8]) -> (FileScan<'static>, Vec<AnalysedStream>) {
    static LIMITS: std::sync::LazyLock<Limits> = std::sync::LazyLock::new(Limits::default);
    let mut ctx = FileScan::new("model".into(), &LIMITS);
    trace_analyses(true);
    ctx.scan_bytes(data, &Loc::top(), 0);
    (ctx, trace_analyses(false))
}

fn assert_once(what: &str, analysed: &[AnalysedStream]) {
    let mut n: HashMap<&AnalysedStream, usize> = HashMap::new();
    for a in analysed {
        *n.entry(a).or_default() += 1;
    }
    let twice: Vec<_> = n.iter().filter(|(_, c)| **c > 1).collect();
    assert!(
        twice.is_empty(),
        "{what}: unpickled more than once: {twice:?}"
    );
}

/// Bytes of every tensor the view reads in `data` (reading it on its own).
fn tensor_bytes(data: &[u8]) -> u64 {
    let file = assay_tensor::read(data, &assay_tensor::ReadLimits::default()).unwrap();
    assert!(!file.tensors.is_empty());
    file.tensors.iter().map(|t| t.bytes().len() as u64).sum()
}

/// A zip of `entries` (name, bytes, deflated?), laid out as a minimal writer does.
fn zip_of(entries: &[(String, Vec<u8>, bool)]) -> Vec<u8> {
    let (mut out, mut central) = (Vec::new(), Vec::new());
    for (name, data, deflate) in entries {
        let body = if *deflate {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        } else {
            data.clone()
        };
        let method: u16 = if *deflate { 8 } else { 0 };
        let crc = zip::crc32(data);
        let offset = out.len() as u32;
        let common = |v: &mut Vec<u8>| {
            for x in [20u16, 0, method, 0, 0] {
                v.extend(x.to_le_bytes());
            }
            for x in [crc, body.len() as u32, data.len() as u32] {
                v.extend(x.to_le_bytes());
            }
            v.extend((name.len() as u16).to_le_bytes());
            v.extend(0u16.to_le_bytes());
        };
        out.extend(b"PK\x03\x04");
        common(&mut out);
        out.extend(name.as_bytes());
        out.extend(&body);
        central.extend(b"PK\x01\x02\x14\x00");
        common(&mut central);
        central.extend([0u8; 10]); // comment length, disk, internal and external attributes
        central.extend(offset.to_le_bytes());
        central.extend(name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    out.extend(&central);
    out.extend(b"PK\x05\x06\x00\x00\x00\x00");
    let n = entries.len() as u16;
    out.extend(n.to_le_bytes());
    out.extend(n.to_le_bytes());
    out.extend((central.len() as u32).to_le_bytes());
    out.extend(cd_offset.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

/// The checkpoint's members re-packed, every one deflated, and its `data.pkl` bytes.
fn deflated_checkpoint(data: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let ar = zip::parse(data, &ZipLimits::default()).unwrap();
    let mut pkl = Vec::new();
    let entries: Vec<(String, Vec<u8>, bool)> = ar
        .entries
        .iter()
        .map(|e| {
            let mut body = Vec::new();
            zip::extract_to(data, e, &mut body, u64::MAX).unwrap();
            if e.name.ends_with("/data.pkl") {
                pkl = body.clone();
            }
            (e.name.clone(), body, true)
        })
        .collect();
    assert!(!pkl.is_empty());
    (zip_of(&entries), pkl)
}

#[test]
fn a_torch_zip_checkpoint_is_unpickled_once() {
    let data = fixture("tensor/view/torch_zip.pt");
    let (ctx, analysed) = scan_traced(&data);
    assert_once("torch_zip.pt", &analysed);
    let (_, pkl) = deflated_checkpoint(&data);
    assert!(analysed.contains(&AnalysedStream::of(&pkl)), "{analysed:?}");
    // ... and its tensors were all read and analysed from that one analysis.
    assert_eq!(ctx.tensor_bytes, tensor_bytes(&data));
}

#[test]
fn a_deflated_checkpoint_nested_in_a_zip_is_unpickled_once() {
    let (inner, pkl) = deflated_checkpoint(&fixture("tensor/view/torch_zip.pt"));
    let outer = zip_of(&[("model/pytorch_model.bin".into(), inner.clone(), false)]);
    let (ctx, analysed) = scan_traced(&outer);
    assert_once("outer.zip", &analysed);
    assert!(analysed.contains(&AnalysedStream::of(&pkl)), "{analysed:?}");
    assert_eq!(ctx.tensor_bytes, tensor_bytes(&inner));
    assert!(
        ctx.findings.iter().all(|f| f.rule != "TEN008"),
        "{:?}",
        ctx.findings
    );
}

#[test]
fn a_legacy_checkpoint_is_unpickled_once() {
    let data = fixture("tensor/view/torch_legacy.pt");
    let (ctx, analysed) = scan_traced(&data);
    assert_once("torch_legacy.pt", &analysed);
    assert!(analysed.contains(&AnalysedStream::of(&data)));
    assert_eq!(ctx.tensor_bytes, tensor_bytes(&data));
    // Inside a gzip stream too (scanned from the decompressed copy).
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&data).unwrap();
    let (ctx, analysed) = scan_traced(&gz.finish().unwrap());
    assert_once("torch_legacy.pt.gz", &analysed);
    assert_eq!(ctx.tensor_bytes, tensor_bytes(&data));
}

#[test]
fn pickled_numpy_arrays_are_unpickled_once() {
    for f in ["arrays_p4.pkl", "arrays.joblib", "arrays_zlib.joblib"] {
        let data = fixture(&format!("tensor/pickled/view/{f}"));
        let (ctx, analysed) = scan_traced(&data);
        assert_once(f, &analysed);
        assert!(ctx.tensor_bytes > 0, "{f}: no array was analysed");
    }
}

#[test]
fn a_storage_that_starts_like_a_pickle_is_unpickled_once() {
    let data = fixture("tensor/stage/benign/storage_starts_like_pickle.pt");
    let (ctx, analysed) = scan_traced(&data);
    assert_once("storage_starts_like_pickle.pt", &analysed);
    assert_eq!(ctx.tensor_bytes, tensor_bytes(&data));
}
