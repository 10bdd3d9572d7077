#![no_main]
//! The statistics and payload search of the tensor and backdoor stages over arbitrary
//! tensors: a dtype, byte order, shape and strides taken from the input's first bytes,
//! and the rest as the tensor's bytes. With the first byte's top bit clear, the tensor is
//! laid out as a reader would describe it (its bytes span exactly its extent); with it
//! set, shape, strides and bytes are taken as they come (a caller's inconsistent tensor).
#[path = "common/tensor.rs"]
mod common;
use assay_tensor::{Bytes, Dtype, Endian, Tensor, contiguous_strides, numel};
use libfuzzer_sys::fuzz_target;

const DTYPES: &[&str] = &[
    "F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2", "F8_E8M0", "I64", "I32", "I16", "I8", "U64",
    "U32", "U16", "U8", "BOOL", "C64", "F4", "F6_E2M3", "F6_E3M2",
];

fn dtype(sel: u8) -> Option<Dtype> {
    let i = usize::from(sel & 0x3f);
    match DTYPES.get(i) {
        Some(s) => Dtype::from_safetensors(s),
        // GGUF types (quantised blocks among them).
        None => Dtype::from_ggml(u32::from(sel & 0x3f) - DTYPES.len() as u32),
    }
}

fuzz_target!(|data: &[u8]| {
    let [mode, sel, rank, rest @ ..] = data else {
        return;
    };
    let Some(dtype) = dtype(*sel) else { return };
    let endian = if sel & 0x40 != 0 {
        Endian::Big
    } else {
        Endian::Little
    };
    let free = mode & 0x80 != 0;
    let rank = usize::from(rank % 5);
    let dims = 2 * rank;
    let Some(head) = rest.get(..2 * dims) else {
        return;
    };
    let body = &rest[2 * dims..];
    let word = |i: usize| u64::from(u16::from_le_bytes([head[2 * i], head[2 * i + 1]]));
    let shape: Vec<u64> = (0..rank).map(|i| word(i) % 512).collect();
    let strides: Vec<u64> = if mode & 1 == 0 {
        match contiguous_strides(&shape) {
            Some(s) => s,
            None => return,
        }
    } else {
        (0..rank).map(|i| word(rank + i)).collect()
    };
    let bytes: &[u8] = if free {
        body
    } else {
        // The extent a reader would give it: up to the last element, in whole elements
        // (quantised and packed types as whole blocks, contiguous only).
        let n = match numel(&shape) {
            Some(n) => n,
            None => return,
        };
        let want = if dtype.size().is_some() && n > 0 {
            let last = shape.iter().zip(&strides).try_fold(0u64, |acc, (&d, &s)| {
                acc.checked_add((d - 1).checked_mul(s)?)
            });
            match last.and_then(|l| l.checked_add(1)?.checked_mul(dtype.size()? as u64)) {
                Some(w) => w,
                None => return,
            }
        } else if n == 0 {
            0
        } else if mode & 1 == 0 {
            match dtype.bytes_for(n) {
                Some(w) => w,
                None => return,
            }
        } else {
            return;
        };
        match usize::try_from(want).ok().and_then(|w| body.get(..w)) {
            Some(b) => b,
            None => return,
        }
    };
    let t = Tensor {
        name: "layers.0.weight".into(),
        dtype,
        endian,
        shape,
        strides,
        data: Bytes::Borrowed(bytes),
        range: 0..bytes.len() as u64,
        member: None,
    };
    common::analyse_tensor(&t);
    let _ = assay_tensor::payload::search_bytes(bytes);
});
