//! ONNX initializers of the main graph (`ModelProto.graph.initializer`): `raw_data` and
//! packed `float_data`/`double_data` are borrowed; varint fields (`int32_data`,
//! `int64_data`, `uint64_data`) are decoded within the budget; external data is read
//! through the caller's resolver, never from an absolute path or through `..`.

use super::{ExternalData, ReadError, ReadLimits, offset_in};
use crate::dtype::{Dtype, Endian};
use crate::view::{Bytes, Tensor, TensorFile, TensorFormat, contiguous_strides, numel};
use assay_formats::protobuf::{Fields, Value};
use std::sync::Arc;

const GRAPH: u32 = 7;
const INITIALIZER: u32 = 5;
const SPARSE_INITIALIZER: u32 = 15;
/// Dimensions kept per tensor.
const MAX_RANK: usize = 64;

#[derive(Default)]
struct Proto<'a> {
    dims: Vec<u64>,
    bad_dims: bool,
    data_type: i32,
    name: String,
    raw: Option<&'a [u8]>,
    float_packed: Option<&'a [u8]>,
    double_packed: Option<&'a [u8]>,
    floats: Vec<u32>,
    doubles: Vec<u64>,
    ints: Vec<&'a [u8]>,
    int_single: Vec<u64>,
    external: bool,
    entries: Vec<(String, String)>,
}

fn varints(mut b: &[u8], mut f: impl FnMut(u64)) -> bool {
    while !b.is_empty() {
        let mut v = 0u64;
        let mut shift = 0;
        loop {
            let Some((&x, rest)) = b.split_first() else {
                return false;
            };
            b = rest;
            if shift >= 64 {
                return false;
            }
            v |= u64::from(x & 0x7f) << shift;
            shift += 7;
            if x & 0x80 == 0 {
                break;
            }
        }
        f(v);
    }
    true
}

fn string(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn parse_tensor(body: &[u8]) -> Result<Proto<'_>, String> {
    let mut p = Proto::default();
    for f in Fields::new(body) {
        let f = f.map_err(|e| e.to_string())?;
        match (f.number, f.value) {
            (1, Value::Varint(v)) => p.dims.push(v),
            (1, Value::Len(b)) => {
                let dims = &mut p.dims;
                p.bad_dims |= !varints(b, |v| dims.push(v));
            }
            (2, Value::Varint(v)) => p.data_type = v as i32,
            (4, Value::Len(b)) => p.float_packed = Some(b),
            (4, Value::Fixed32(v)) => p.floats.push(v),
            (5 | 7 | 11, Value::Len(b)) => p.ints.push(b),
            (5 | 7 | 11, Value::Varint(v)) => p.int_single.push(v),
            (8, Value::Len(b)) => p.name = string(b),
            (9, Value::Len(b)) => p.raw = Some(b),
            (10, Value::Len(b)) => p.double_packed = Some(b),
            (10, Value::Fixed64(v)) => p.doubles.push(v),
            (13, Value::Len(b)) => {
                let (mut k, mut v) = (String::new(), String::new());
                for g in Fields::new(b) {
                    match g.map_err(|e| e.to_string())? {
                        x if x.number == 1 => {
                            if let Value::Len(s) = x.value {
                                k = string(s)
                            }
                        }
                        x if x.number == 2 => {
                            if let Value::Len(s) = x.value {
                                v = string(s)
                            }
                        }
                        _ => {}
                    }
                }
                p.entries.push((k, v));
            }
            (14, Value::Varint(v)) => p.external = v == 1,
            _ => {}
        }
        if p.dims.len() > MAX_RANK {
            return Err(format!("more than {MAX_RANK} dimensions"));
        }
    }
    Ok(p)
}

pub fn read<'a>(
    data: &'a [u8],
    limits: &ReadLimits,
    external: Option<&dyn ExternalData<'a>>,
    budget: &mut u64,
) -> Result<TensorFile<'a>, ReadError> {
    let mut file = TensorFile::new(TensorFormat::Onnx);
    let mut graphs = Vec::new();
    for f in Fields::new(data) {
        let f = f.map_err(|e| ReadError::Malformed(format!("ONNX: {e}")))?;
        if let (GRAPH, Value::Len(b)) = (f.number, f.value) {
            graphs.push(b);
        }
    }
    for g in graphs {
        for f in Fields::new(g) {
            let f = f.map_err(|e| ReadError::Malformed(format!("ONNX graph: {e}")))?;
            match (f.number, f.value) {
                (INITIALIZER, Value::Len(body)) => {
                    if file.tensors.len() >= limits.max_tensors {
                        return Err(ReadError::TooManyTensors(limits.max_tensors));
                    }
                    initializer(data, body, external, budget, &mut file);
                }
                (SPARSE_INITIALIZER, Value::Len(_)) => {
                    file.problem(None, None, "sparse initializers are not read");
                }
                _ => {}
            }
        }
    }
    Ok(file)
}

fn initializer<'a>(
    file_data: &'a [u8],
    body: &'a [u8],
    external: Option<&dyn ExternalData<'a>>,
    budget: &mut u64,
    file: &mut TensorFile<'a>,
) {
    let p = match parse_tensor(body) {
        Ok(p) => p,
        Err(e) => {
            file.problem(None, None, format!("initializer: {e}"));
            return;
        }
    };
    let name = p.name.clone();
    let nm = Some(name.as_str());
    let Some(dtype) = Dtype::from_onnx(p.data_type) else {
        file.problem(nm, None, format!("data type {} is not read", p.data_type));
        return;
    };
    let shape = p.dims.clone();
    let (false, Some(n), Some(strides)) = (p.bad_dims, numel(&shape), contiguous_strides(&shape))
    else {
        file.problem(nm, None, "bad dims");
        return;
    };
    let Some(want) = dtype.bytes_for(n) else {
        file.problem(nm, None, "size overflows");
        return;
    };
    let body_at = offset_in(file_data, body);
    let mut member = None;
    let (data, range): (Bytes<'a>, std::ops::Range<u64>) = if p.external {
        let get = |k: &str| {
            p.entries
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        let Some(location) = get("location") else {
            file.problem(nm, None, "external data without a location");
            return;
        };
        let bad = location.starts_with(['/', '\\', '~'])
            || location.as_bytes().get(1) == Some(&b':')
            || location.split(['/', '\\']).any(|c| c == "..");
        if bad {
            file.problem(
                nm,
                Some(location),
                "external data location leaves the model's folder; not read",
            );
            return;
        }
        let Some(bytes) = external.and_then(|x| x.get(location)) else {
            file.problem(nm, Some(location), "external data file was not available");
            return;
        };
        let off: u64 = get("offset").and_then(|s| s.parse().ok()).unwrap_or(0);
        let len: u64 = get("length")
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| (bytes.len() as u64).saturating_sub(off));
        let r = off..off.saturating_add(len);
        let Some(slice) = bytes.get(r.start as usize..r.end.min(usize::MAX as u64) as usize) else {
            file.problem(
                nm,
                Some(location),
                format!(
                    "bytes {}..{} lie outside the {}-byte external file",
                    r.start,
                    r.end,
                    bytes.len()
                ),
            );
            return;
        };
        member = Some(location.to_string());
        (Bytes::Borrowed(slice), r)
    } else if let Some(raw) = p.raw {
        let at = offset_in(file_data, raw);
        (Bytes::Borrowed(raw), at..at + raw.len() as u64)
    } else if let (Some(b), Dtype::F32 | Dtype::C64) = (p.float_packed, dtype) {
        let at = offset_in(file_data, b);
        (Bytes::Borrowed(b), at..at + b.len() as u64)
    } else if let (Some(b), Dtype::F64 | Dtype::C128) = (p.double_packed, dtype) {
        let at = offset_in(file_data, b);
        (Bytes::Borrowed(b), at..at + b.len() as u64)
    } else {
        // Values held one per field or as varints: decode into little-endian elements.
        let Some(esize) = dtype.size() else {
            file.problem(nm, None, "typed values of a packed type");
            return;
        };
        if want > *budget {
            file.problem(
                nm,
                None,
                "decoding the typed values would exceed the decode budget",
            );
            return;
        }
        // One value per component: complex64 and complex128 elements are two floats or
        // two doubles (real, imaginary) of `float_data` / `double_data`.
        let width = match dtype {
            Dtype::C64 | Dtype::C128 => esize / 2,
            _ => esize,
        };
        let mut out: Vec<u8> = Vec::with_capacity(want as usize);
        let mut push = |v: u64| {
            if (out.len() as u64) < want
                && let Some(b) = v.to_le_bytes().get(..width)
            {
                out.extend_from_slice(b);
            }
        };
        for &v in &p.floats {
            push(u64::from(v));
        }
        for &v in &p.doubles {
            push(v);
        }
        for &v in &p.int_single {
            push(v);
        }
        for b in &p.ints {
            if !varints(b, &mut push) {
                file.problem(nm, None, "malformed packed varints");
                return;
            }
        }
        *budget -= out.len() as u64;
        let len = out.len();
        (
            Bytes::Shared(Arc::from(out), 0..len),
            body_at..body_at + body.len() as u64,
        )
    };
    if data.as_slice().len() as u64 != want {
        file.problem(
            nm,
            member.as_deref(),
            format!(
                "{} bytes of data for {n} {} elements ({want} bytes)",
                data.as_slice().len(),
                dtype.name()
            ),
        );
        return;
    }
    file.tensors.push(Tensor {
        name,
        dtype,
        endian: Endian::Little,
        shape,
        strides,
        data,
        range,
        member,
    });
}

/// The external-data locations of the main graph's initializers, in order, each once
/// (so that a caller can decide which files to open before reading).
pub fn external_locations(data: &[u8]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for f in Fields::new(data).map_while(Result::ok) {
        let (GRAPH, Value::Len(g)) = (f.number, f.value) else {
            continue;
        };
        for i in Fields::new(g).map_while(Result::ok) {
            let (INITIALIZER, Value::Len(body)) = (i.number, i.value) else {
                continue;
            };
            let Ok(p) = parse_tensor(body) else { continue };
            if !p.external {
                continue;
            }
            if let Some((_, l)) = p.entries.iter().find(|(k, _)| k == "location")
                && !out.contains(l)
            {
                out.push(l.clone());
            }
        }
    }
    out
}
