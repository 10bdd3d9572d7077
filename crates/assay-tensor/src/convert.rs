//! Writing tensors as safetensors (`assay convert`).
//!
//! The layout follows the safetensors specification and its reference writer: an 8-byte
//! little-endian header length `N`, `N` bytes of JSON (`{"__metadata__": {...}, name:
//! {"dtype", "shape", "data_offsets": [begin, end]}, ...}`) padded with spaces so that the
//! data starts at a multiple of 8, then the tensors' bytes back to back, in the order of
//! the reference writer (larger elements first, then by name) so that every tensor is
//! aligned to its element size. Bytes are copied exactly as stored: a contiguous tensor
//! as is, a strided view (a transposed PyTorch tensor) gathered into row-major order,
//! big-endian elements byte-swapped to little-endian. Tensors that share a storage (tied
//! weights, views) are each written in full: safetensors forbids overlapping tensors.

use crate::dtype::{Dtype, Endian};
use crate::view::Tensor;
use std::collections::HashSet;
use std::io::{self, Write};

/// The reference loader refuses headers larger than this.
pub const MAX_HEADER: usize = 100_000_000;

/// Why tensors cannot be written as safetensors.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("tensor {name:?}: dtype {dtype} has no safetensors equivalent")]
    UnsupportedDtype { name: String, dtype: &'static str },
    #[error("two tensors are named {0:?}")]
    DuplicateName(String),
    #[error("tensor {name:?}: {why}")]
    Layout { name: String, why: String },
    #[error("the safetensors header would exceed {MAX_HEADER} bytes")]
    HeaderTooLarge,
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// One tensor as it will be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub dtype: &'static str,
    pub shape: Vec<u64>,
    /// Within the data area.
    pub begin: u64,
    pub end: u64,
    /// Gathered from a strided view (it was not contiguous in the source).
    pub gathered: bool,
}

/// A safetensors file ready to be written: its header and the tensors in file order.
pub struct Plan<'t, 'a> {
    header: Vec<u8>,
    tensors: Vec<&'t Tensor<'a>>,
    pub entries: Vec<Entry>,
}

/// The safetensors name of a dtype, when the format has it (Assay names dtypes the way
/// safetensors does; the FNUZ fp8 variants, C128 and GGUF block types have no safetensors
/// dtype).
pub fn safetensors_dtype(d: Dtype) -> Option<&'static str> {
    match d {
        Dtype::F8E4M3Fnuz | Dtype::F8E5M2Fnuz | Dtype::C128 | Dtype::Quant { .. } => None,
        Dtype::Packed { name, .. } if !matches!(name, "F4" | "F6_E2M3" | "F6_E3M2") => None,
        d => Some(d.name()),
    }
}

/// Bytes swapped per unit to turn a big-endian element little-endian (a complex number
/// is two floats).
fn swap_unit(d: Dtype) -> usize {
    match d {
        Dtype::C64 => 4,
        Dtype::C128 => 8,
        d => d.size().unwrap_or(1),
    }
}

fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Plans the file: checks every tensor can be written, orders them, builds the header.
/// `metadata` becomes `__metadata__` (string to string, as the format requires).
pub fn plan<'t, 'a>(
    tensors: &'t [Tensor<'a>],
    metadata: &[(&str, &str)],
) -> Result<Plan<'t, 'a>, ConvertError> {
    let mut seen = HashSet::new();
    let mut order: Vec<(&'t Tensor<'a>, &'static str, u64)> = Vec::with_capacity(tensors.len());
    for t in tensors {
        if !seen.insert(t.name.as_str()) {
            return Err(ConvertError::DuplicateName(t.name.clone()));
        }
        let dtype = safetensors_dtype(t.dtype).ok_or_else(|| ConvertError::UnsupportedDtype {
            name: t.name.clone(),
            dtype: t.dtype.name(),
        })?;
        let layout = |why: &str| ConvertError::Layout {
            name: t.name.clone(),
            why: why.into(),
        };
        let numel = crate::view::numel(&t.shape).ok_or_else(|| layout("shape overflows"))?;
        let len = t
            .dtype
            .bytes_for(numel)
            .ok_or_else(|| layout("size overflows or is not a whole number of bytes"))?;
        if t.contiguous_bytes().is_none() {
            if t.dtype.size().is_none() {
                return Err(layout("packed elements in a strided layout"));
            }
            if t.strides.len() != t.shape.len() {
                return Err(layout("strides do not match the shape"));
            }
        }
        order.push((t, dtype, len));
    }
    // The reference writer's order: larger elements first, then by name.
    order.sort_by(|a, b| {
        let size = |t: &Tensor| t.dtype.size().unwrap_or(1);
        size(b.0)
            .cmp(&size(a.0))
            .then_with(|| a.0.name.cmp(&b.0.name))
    });
    let mut json = String::from("{");
    if !metadata.is_empty() {
        json.push_str("\"__metadata__\":{");
        for (i, (k, v)) in metadata.iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            json_string(k, &mut json);
            json.push(':');
            json_string(v, &mut json);
        }
        json.push('}');
    }
    let mut at = 0u64;
    let mut entries = Vec::with_capacity(order.len());
    for (i, (t, dtype, len)) in order.iter().enumerate() {
        if i > 0 || !metadata.is_empty() {
            json.push(',');
        }
        json_string(&t.name, &mut json);
        let shape: Vec<String> = t.shape.iter().map(u64::to_string).collect();
        let end = at.checked_add(*len).ok_or(ConvertError::HeaderTooLarge)?;
        json.push_str(&format!(
            ":{{\"dtype\":\"{dtype}\",\"shape\":[{}],\"data_offsets\":[{at},{end}]}}",
            shape.join(",")
        ));
        if json.len() > MAX_HEADER {
            return Err(ConvertError::HeaderTooLarge);
        }
        entries.push(Entry {
            name: t.name.clone(),
            dtype,
            shape: t.shape.clone(),
            begin: at,
            end,
            gathered: t.contiguous_bytes().is_none(),
        });
        at = end;
    }
    json.push('}');
    while !json.len().is_multiple_of(8) {
        json.push(' ');
    }
    if json.len() > MAX_HEADER {
        return Err(ConvertError::HeaderTooLarge);
    }
    let mut header = (json.len() as u64).to_le_bytes().to_vec();
    header.extend_from_slice(json.as_bytes());
    Ok(Plan {
        header,
        tensors: order.into_iter().map(|(t, _, _)| t).collect(),
        entries,
    })
}

impl Plan<'_, '_> {
    /// Size of the whole file.
    pub fn file_len(&self) -> u64 {
        self.header.len() as u64 + self.entries.last().map_or(0, |e| e.end)
    }

    /// Writes the file; returns its length.
    pub fn write_to(&self, w: &mut dyn Write) -> Result<u64, ConvertError> {
        w.write_all(&self.header)?;
        let mut buf = Vec::with_capacity(1 << 16);
        for (t, e) in self.tensors.iter().zip(&self.entries) {
            let written = write_tensor(t, w, &mut buf)?;
            if written != e.end - e.begin {
                return Err(ConvertError::Layout {
                    name: t.name.clone(),
                    why: format!("wrote {written} bytes, expected {}", e.end - e.begin),
                });
            }
        }
        Ok(self.file_len())
    }
}

/// Writes one tensor's elements in row-major order, little-endian.
fn write_tensor(t: &Tensor, w: &mut dyn Write, buf: &mut Vec<u8>) -> Result<u64, ConvertError> {
    let swap = t.endian == Endian::Big && swap_unit(t.dtype) > 1;
    let unit = swap_unit(t.dtype);
    let mut out = |chunk: &[u8], buf: &mut Vec<u8>| -> io::Result<()> {
        if swap {
            buf.clear();
            buf.extend_from_slice(chunk);
            for e in buf.chunks_exact_mut(unit) {
                e.reverse();
            }
            w.write_all(buf)
        } else {
            w.write_all(chunk)
        }
    };
    if let Some(bytes) = t.contiguous_bytes() {
        for chunk in bytes.chunks(1 << 20) {
            out(chunk, buf)?;
        }
        return Ok(bytes.len() as u64);
    }
    // Strided: walk every index but the last; the last dimension is one run when its
    // stride is 1, element by element otherwise.
    let bad = |why: &str| ConvertError::Layout {
        name: t.name.clone(),
        why: why.into(),
    };
    let es = t.dtype.size().ok_or_else(|| bad("no element size"))? as u64;
    let numel = t.numel();
    if numel == 0 {
        return Ok(0);
    }
    let data = t.bytes();
    let rank = t.shape.len();
    let (last_n, last_s) = (t.shape[rank - 1], t.strides[rank - 1]);
    let outer = numel / last_n;
    let mut idx = vec![0u64; rank - 1];
    let mut run = Vec::with_capacity(64 << 10);
    let mut written = 0u64;
    let at = |off: u64, len: u64| -> Result<&[u8], ConvertError> {
        let s = off.checked_mul(es).ok_or_else(|| bad("offset overflows"))?;
        let e = s
            .checked_add(len.checked_mul(es).ok_or_else(|| bad("offset overflows"))?)
            .ok_or_else(|| bad("offset overflows"))?;
        usize::try_from(s)
            .ok()
            .zip(usize::try_from(e).ok())
            .and_then(|(s, e)| data.get(s..e))
            .ok_or_else(|| bad("element outside the tensor's bytes"))
    };
    for _ in 0..outer {
        let mut base = 0u64;
        for (i, s) in idx.iter().zip(&t.strides) {
            base = i
                .checked_mul(*s)
                .and_then(|x| x.checked_add(base))
                .ok_or_else(|| bad("offset overflows"))?;
        }
        if last_s == 1 {
            run.extend_from_slice(at(base, last_n)?);
        } else {
            for k in 0..last_n {
                let off = k
                    .checked_mul(last_s)
                    .and_then(|x| x.checked_add(base))
                    .ok_or_else(|| bad("offset overflows"))?;
                run.extend_from_slice(at(off, 1)?);
            }
        }
        if run.len() >= 64 << 10 {
            written += run.len() as u64;
            out(&run, buf)?;
            run.clear();
        }
        for d in (0..rank - 1).rev() {
            idx[d] += 1;
            if idx[d] < t.shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    written += run.len() as u64;
    out(&run, buf)?;
    Ok(written)
}

#[cfg(test)]
mod tests {

    #[test]
    fn safetensors_dtype_names_read_back_as_the_same_dtype() {
        use Dtype::*;
        let all = [
            F64, F32, F16, BF16, F8E4M3, F8E5M2, F8E4M3Fnuz, F8E5M2Fnuz, F8E8M0, I64, I32, I16, I8,
            U64, U32, U16, U8, Bool, C64, C128,
        ];
        let mut written = 0;
        for d in all {
            if let Some(name) = safetensors_dtype(d) {
                assert_eq!(Dtype::from_safetensors(name), Some(d), "{name}");
                written += 1;
            }
        }
        assert_eq!(
            written,
            all.len() - 3,
            "only FNUZ fp8 and C128 lack a safetensors dtype"
        );
    }

    use super::*;
    use crate::view::{Bytes, contiguous_strides};

    fn t<'a>(name: &str, dtype: Dtype, shape: &[u64], strides: &[u64], b: &'a [u8]) -> Tensor<'a> {
        Tensor {
            name: name.into(),
            dtype,
            endian: Endian::Little,
            shape: shape.to_vec(),
            strides: strides.to_vec(),
            data: Bytes::Borrowed(b),
            range: 0..b.len() as u64,
            member: None,
        }
    }

    #[test]
    fn header_aligned_and_transposed_gathered() {
        // 2×3 stored column-major (a transposed 3×2).
        let vals: Vec<u8> = [1f32, 4., 2., 5., 3., 6.]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let one = [7u8];
        let ts = vec![
            t("w\"t", Dtype::F32, &[2, 3], &[1, 2], &vals),
            t(
                "b",
                Dtype::U8,
                &[1],
                &contiguous_strides(&[1]).unwrap(),
                &one,
            ),
        ];
        let p = plan(&ts, &[("format", "pt")]).unwrap();
        let mut out = Vec::new();
        let n = p.write_to(&mut out).unwrap();
        assert_eq!(n as usize, out.len());
        let hlen = u64::from_le_bytes(out[..8].try_into().unwrap()) as usize;
        assert_eq!(hlen % 8, 0);
        let header = std::str::from_utf8(&out[8..8 + hlen]).unwrap();
        assert!(header.starts_with("{\"__metadata__\":{\"format\":\"pt\"},\"w\\\"t\":"));
        let data = &out[8 + hlen..];
        let got: Vec<f32> = data[..24]
            .chunks(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(got, vec![1., 2., 3., 4., 5., 6.]);
        assert_eq!(data[24], 7);
        // The safetensors reader of assay-tensor reads it back.
        let back = crate::read(&out, &crate::ReadLimits::default()).unwrap();
        assert_eq!(back.get("w\"t").unwrap().shape, vec![2, 3]);
        assert!(back.problems.is_empty());
    }

    #[test]
    fn big_endian_swapped_and_refusals() {
        let be: Vec<u8> = [1.5f64, -2.0]
            .iter()
            .flat_map(|x| x.to_be_bytes())
            .collect();
        let mut x = t("x", Dtype::F64, &[2], &[1], &be);
        x.endian = Endian::Big;
        let xs = [x];
        let p = plan(&xs, &[]).unwrap();
        let mut out = Vec::new();
        p.write_to(&mut out).unwrap();
        let data = &out[out.len() - 16..];
        assert_eq!(f64::from_le_bytes(data[..8].try_into().unwrap()), 1.5);
        let q = [t("q", Dtype::C128, &[1], &[1], &[0u8; 16])];
        assert!(matches!(
            plan(&q, &[]),
            Err(ConvertError::UnsupportedDtype { .. })
        ));
        let d = [
            t("a", Dtype::U8, &[1], &[1], &[1]),
            t("a", Dtype::U8, &[1], &[1], &[1]),
        ];
        assert!(matches!(plan(&d, &[]), Err(ConvertError::DuplicateName(_))));
    }
}
