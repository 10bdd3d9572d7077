//! Per-tensor numeric statistics in one streaming pass over the stored bytes: NaN, ±Inf,
//! zeros, subnormals (by the tensor's own dtype), min/max, mean, standard deviation,
//! kurtosis, constant tensors, and for `F32` the share of values rounded from `bf16`
//! (low 16 bits zero). The `F32`, `BF16` and `F16` paths work on 8-element lanes that
//! the compiler vectorises; nothing is copied.
//!
//! Statistics cover the elements stored in [`Tensor::data`] (for a strided PyTorch view,
//! every element of the span it covers), in storage order.

use crate::dtype::{Dtype, Endian, decode_one};
use crate::view::Tensor;

/// What one pass over a floating-point tensor found.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// Elements looked at.
    pub count: u64,
    pub nan: u64,
    pub inf: u64,
    /// Storage index of the first NaN or infinity.
    pub first_nonfinite: Option<u64>,
    /// Exact zeros (either sign).
    pub zeros: u64,
    /// Subnormal values in the tensor's own dtype.
    pub subnormal: u64,
    pub first_subnormal: Option<u64>,
    /// Over finite values (0 when there are none).
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub std: f64,
    /// Pearson kurtosis (3 for a normal distribution); 0 when undefined.
    pub kurtosis: f64,
    /// Every element has the same bit pattern.
    pub constant: bool,
    /// `F32` only: non-zero values whose low 16 bits are zero (exactly representable in
    /// `bf16`), and those among them that also use the low 4 bits of the bf16 mantissa
    /// (so they are rounded weights, not small round numbers like 1.0 or 0.5).
    pub bf16_exact: u64,
    pub bf16_full: u64,
}

/// Elements per block: lanes accumulate in `f32` within a block and fold into `f64`.
const BLOCK: usize = 2048;
const LANES: usize = 8;

#[derive(Default)]
struct Acc {
    count: u64,
    nan: u64,
    inf: u64,
    first_nonfinite: Option<u64>,
    zeros: u64,
    subnormal: u64,
    first_subnormal: Option<u64>,
    finite: u64,
    s1: f64,
    s2: f64,
    s3: f64,
    s4: f64,
    min: f64,
    max: f64,
    differ: u64,
    bf16_exact: u64,
    bf16_full: u64,
}

impl Acc {
    fn new() -> Self {
        Acc {
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            ..Default::default()
        }
    }

    fn finish(self) -> Stats {
        let n = self.finite as f64;
        let (mean, std, kurtosis) = if self.finite > 0 {
            let m1 = self.s1 / n;
            let e2 = self.s2 / n;
            let e3 = self.s3 / n;
            let e4 = self.s4 / n;
            let var = (e2 - m1 * m1).max(0.0);
            let m4 = e4 - 4.0 * m1 * e3 + 6.0 * m1 * m1 * e2 - 3.0 * m1.powi(4);
            let k = if var > 0.0 {
                (m4 / (var * var)).max(0.0)
            } else {
                0.0
            };
            (m1, var.sqrt(), k)
        } else {
            (0.0, 0.0, 0.0)
        };
        Stats {
            count: self.count,
            nan: self.nan,
            inf: self.inf,
            first_nonfinite: self.first_nonfinite,
            zeros: self.zeros,
            subnormal: self.subnormal,
            first_subnormal: self.first_subnormal,
            min: if self.finite > 0 { self.min } else { 0.0 },
            max: if self.finite > 0 { self.max } else { 0.0 },
            mean,
            std,
            kurtosis,
            constant: self.count > 0 && self.differ == 0,
            bf16_exact: self.bf16_exact,
            bf16_full: self.bf16_full,
        }
    }
}

/// Statistics of a floating-point tensor; `None` for other dtypes.
pub fn stats(t: &Tensor) -> Option<Stats> {
    if !t.dtype.is_float() {
        return None;
    }
    let b = t.bytes();
    Some(match (t.dtype, t.endian) {
        (Dtype::F32, Endian::Little) => f32_bits::<4, true>(b, widen_f32),
        (Dtype::BF16, Endian::Little) => f32_bits::<2, false>(b, widen_bf16),
        (Dtype::F16, Endian::Little) => f16_bits(b),
        _ => generic(t.dtype, t.endian, b),
    })
}

/// `F32` (and `BF16` widened to `F32`) elements of `bytes`, `W` bytes each.
fn f32_bits<const W: usize, const BF16_TRACK: bool>(
    bytes: &[u8],
    widen: fn(&[u8]) -> u32,
) -> Stats {
    let mut acc = Acc::new();
    let first = bytes.get(..W).map(widen);
    for (bi, block) in bytes.chunks(BLOCK * W).enumerate() {
        block_f32::<W, BF16_TRACK>(block, widen, (bi * BLOCK) as u64, &mut acc);
    }
    // Constant: one finite value throughout (±0 and NaN payloads aside).
    acc.differ = u64::from(!(acc.nan + acc.inf == 0 && acc.min == acc.max && first.is_some()));
    acc.finish()
}

#[inline(always)]
fn block_f32<const W: usize, const BF16_TRACK: bool>(
    block: &[u8],
    widen: fn(&[u8]) -> u32,
    base: u64,
    acc: &mut Acc,
) {
    let mut s1 = [0f32; LANES];
    let mut s2 = [0f32; LANES];
    let mut s3 = [0f32; LANES];
    let mut s4 = [0f32; LANES];
    let mut mn = [f32::INFINITY; LANES];
    let mut mx = [f32::NEG_INFINITY; LANES];
    let mut nonfinite = [0u32; LANES];
    let mut zeros = [0u32; LANES];
    let mut tiny = [0u32; LANES];
    let mut exact = [0u32; LANES];
    let mut full = [0u32; LANES];
    let chunks = block.chunks_exact(W * LANES);
    let rest = chunks.remainder();
    let mut lane = |l: usize, bits: u32| {
        let abs = bits & 0x7fff_ffff;
        let exp = abs >> 23;
        let finite = exp != 0xff;
        let x = f32::from_bits(bits);
        let xf = if finite { x } else { 0.0 };
        let x2 = xf * xf;
        s1[l] += xf;
        s2[l] += x2;
        s3[l] += x2 * xf;
        s4[l] += x2 * x2;
        mn[l] = mn[l].min(if finite { x } else { f32::INFINITY });
        mx[l] = mx[l].max(if finite { x } else { f32::NEG_INFINITY });
        nonfinite[l] += u32::from(!finite);
        zeros[l] += u32::from(abs == 0);
        tiny[l] += u32::from(exp == 0);
        if BF16_TRACK {
            let ex = abs != 0 && bits & 0xffff == 0;
            exact[l] += u32::from(ex);
            full[l] += u32::from(ex && bits & 0x000f_0000 != 0);
        }
    };
    for c in chunks {
        for l in 0..LANES {
            lane(l, widen(&c[l * W..l * W + W]));
        }
    }
    for e in rest.chunks_exact(W) {
        lane(0, widen(e));
    }
    let n = (block.len() / W) as u64;
    let nf: u64 = nonfinite.iter().map(|&v| u64::from(v)).sum();
    let z: u64 = zeros.iter().map(|&v| u64::from(v)).sum();
    let sb = tiny.iter().map(|&v| u64::from(v)).sum::<u64>() - z;
    // Rare events: find the first index only in the block that has one.
    if nf > 0 {
        for (i, e) in block.chunks_exact(W).enumerate() {
            let abs = widen(e) & 0x7fff_ffff;
            if abs > 0x7f80_0000 {
                acc.nan += 1;
            } else if abs == 0x7f80_0000 {
                acc.inf += 1;
            } else {
                continue;
            }
            acc.first_nonfinite.get_or_insert(base + i as u64);
        }
    }
    if sb > 0 && acc.first_subnormal.is_none() {
        acc.first_subnormal = block
            .chunks_exact(W)
            .position(|e| {
                let a = widen(e) & 0x7fff_ffff;
                a != 0 && a < 0x0080_0000
            })
            .map(|i| base + i as u64);
    }
    acc.count += n;
    acc.subnormal += sb;
    acc.zeros += z;
    acc.finite += n - nf;
    acc.s1 += s1.iter().map(|&v| f64::from(v)).sum::<f64>();
    acc.s2 += s2.iter().map(|&v| f64::from(v)).sum::<f64>();
    acc.s3 += s3.iter().map(|&v| f64::from(v)).sum::<f64>();
    acc.s4 += s4.iter().map(|&v| f64::from(v)).sum::<f64>();
    acc.min = acc
        .min
        .min(mn.iter().fold(f64::INFINITY, |a, &v| a.min(f64::from(v))));
    acc.max = acc.max.max(
        mx.iter()
            .fold(f64::NEG_INFINITY, |a, &v| a.max(f64::from(v))),
    );
    if BF16_TRACK {
        acc.bf16_exact += exact.iter().map(|&v| u64::from(v)).sum::<u64>();
        acc.bf16_full += full.iter().map(|&v| u64::from(v)).sum::<u64>();
    }
}

fn widen_f32(e: &[u8]) -> u32 {
    u32::from_le_bytes([e[0], e[1], e[2], e[3]])
}

fn widen_bf16(e: &[u8]) -> u32 {
    u32::from(u16::from_le_bytes([e[0], e[1]])) << 16
}

/// fp16 to fp32 without a table (vectorisable): the exponent and mantissa shifted into
/// place and rebased by 2^112 (exact for normals and subnormals), infinities and NaN
/// patched.
fn widen_f16(e: &[u8]) -> u32 {
    let h = u32::from(u16::from_le_bytes([e[0], e[1]]));
    let sign = (h & 0x8000) << 16;
    let em = h & 0x7fff;
    let v = (f32::from_bits(em << 13) * f32::from_bits(0x7780_0000)).to_bits();
    sign | if em >= 0x7c00 {
        0x7f80_0000 | ((em & 0x3ff) << 13)
    } else {
        v
    }
}

/// `F16`: values through the conversion table; subnormals counted on the fp16 bits
/// (below 2^-14, normal in fp16 weights), not on the widened value.
fn f16_bits(b: &[u8]) -> Stats {
    let mut st = f32_bits::<2, false>(b, widen_f16);
    let is_sub = |c: &[u8]| {
        let a = u16::from_le_bytes([c[0], c[1]]) & 0x7fff;
        a != 0 && a < 0x0400
    };
    let n = f16_subnormals(b);
    let first = if n > 0 {
        b.chunks_exact(2).position(is_sub).map(|i| i as u64)
    } else {
        None
    };
    st.subnormal = n;
    st.first_subnormal = first;
    st
}

/// Subnormal `F16` values (`0 < |h| < 0x0400`), 16 at a time so the loop vectorises.
fn f16_subnormals(b: &[u8]) -> u64 {
    let sub = |lo: u8, hi: u8| {
        u32::from((u16::from_le_bytes([lo, hi]) & 0x7fff).wrapping_sub(1) < 0x03ff)
    };
    let blocks = b.chunks_exact(32);
    let rest = blocks.remainder();
    let mut n = 0u64;
    for c in blocks {
        let c: &[u8; 32] = c.try_into().expect("32 bytes");
        let mut k = 0u32;
        for i in 0..16 {
            k += sub(c[2 * i], c[2 * i + 1]);
        }
        n += u64::from(k);
    }
    n + rest
        .chunks_exact(2)
        .map(|c| u64::from(sub(c[0], c[1])))
        .sum::<u64>()
}

/// Every other float type, element by element.
fn generic(dtype: Dtype, endian: Endian, b: &[u8]) -> Stats {
    let mut acc = Acc::new();
    let Some(size) = dtype.size() else {
        return acc.finish();
    };
    let first = b.get(..size);
    for (i, c) in b.chunks_exact(size).enumerate() {
        let i = i as u64;
        acc.count += 1;
        if Some(c) != first {
            acc.differ += 1;
        }
        let (x, sub) = if dtype == Dtype::F64 {
            let a: [u8; 8] = c.try_into().unwrap_or([0; 8]);
            let v = match endian {
                Endian::Little => f64::from_le_bytes(a),
                Endian::Big => f64::from_be_bytes(a),
            };
            (v, v.is_subnormal())
        } else {
            let v = decode_one(dtype, endian, c).unwrap_or(f32::NAN);
            let sub = match dtype {
                Dtype::F16 => {
                    let h = match endian {
                        Endian::Little => u16::from_le_bytes([c[0], c[1]]),
                        Endian::Big => u16::from_be_bytes([c[0], c[1]]),
                    };
                    let a = h & 0x7fff;
                    a != 0 && a < 0x400
                }
                Dtype::F32 | Dtype::BF16 => v.is_subnormal(),
                _ => false,
            };
            (f64::from(v), sub)
        };
        if x.is_nan() {
            acc.nan += 1;
            acc.first_nonfinite.get_or_insert(i);
            continue;
        }
        if x.is_infinite() {
            acc.inf += 1;
            acc.first_nonfinite.get_or_insert(i);
            continue;
        }
        if sub {
            acc.subnormal += 1;
            acc.first_subnormal.get_or_insert(i);
        }
        acc.zeros += u64::from(x == 0.0);
        acc.finite += 1;
        acc.s1 += x;
        acc.s2 += x * x;
        acc.s3 += x * x * x;
        acc.s4 += x * x * x * x;
        acc.min = acc.min.min(x);
        acc.max = acc.max.max(x);
    }
    acc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtype::f16_to_f32;
    use crate::view::{Bytes, Tensor};

    fn tensor(dtype: Dtype, bytes: &[u8]) -> Tensor<'_> {
        let n = bytes.len() as u64 / dtype.size().unwrap() as u64;
        Tensor {
            name: "t".into(),
            dtype,
            endian: Endian::Little,
            shape: vec![n],
            strides: vec![1],
            data: Bytes::Borrowed(bytes),
            range: 0..bytes.len() as u64,
            member: None,
        }
    }

    #[test]
    fn f32_statistics_match_a_direct_computation() {
        let vals: Vec<f32> = (0..5001)
            .map(|i| ((i * 7919) % 1000) as f32 / 100.0 - 5.0)
            .collect();
        let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        let s = stats(&tensor(Dtype::F32, &bytes)).unwrap();
        let n = vals.len() as f64;
        let mean = vals.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = vals
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n;
        let k = vals
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(4))
            .sum::<f64>()
            / n
            / (var * var);
        assert_eq!(s.count, 5001);
        assert!((s.mean - mean).abs() < 1e-4, "{} {mean}", s.mean);
        assert!((s.std - var.sqrt()).abs() < 1e-4);
        assert!((s.kurtosis - k).abs() < 1e-2, "{} {k}", s.kurtosis);
        assert_eq!(s.min, -5.0);
        assert_eq!(
            s.max,
            f64::from(vals.iter().cloned().fold(f32::MIN, f32::max))
        );
        assert!(!s.constant);
        assert_eq!(s.nan + s.inf, 0);
    }

    #[test]
    fn f16_subnormals_counted_in_blocks_and_tail() {
        // Every fp16 bit pattern, then a few more so the 16-element blocks leave a tail.
        let mut b: Vec<u8> = (0..=u16::MAX).flat_map(u16::to_le_bytes).collect();
        b.extend([0x01, 0x80, 0xff, 0x03, 0x00, 0x04, 0x7f]);
        let naive = b
            .chunks_exact(2)
            .filter(|c| {
                let a = u16::from_le_bytes([c[0], c[1]]) & 0x7fff;
                a != 0 && a < 0x0400
            })
            .count() as u64;
        assert_eq!(naive, 2 * 1023 + 2);
        assert_eq!(f16_subnormals(&b), naive);
        assert_eq!(stats(&tensor(Dtype::F16, &b)).unwrap().subnormal, naive);
    }

    #[test]
    fn nan_inf_subnormal_and_constant() {
        let mut vals = vec![1.0f32; 3000];
        vals[2500] = f32::NAN;
        vals[2600] = f32::NEG_INFINITY;
        vals[10] = f32::from_bits(1);
        let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        let s = stats(&tensor(Dtype::F32, &bytes)).unwrap();
        assert_eq!((s.nan, s.inf, s.first_nonfinite), (1, 1, Some(2500)));
        assert_eq!((s.subnormal, s.first_subnormal), (1, Some(10)));
        assert_eq!(s.max, 1.0);
        let ones: Vec<u8> = [0x00u8, 0x3c].repeat(100);
        let s = stats(&tensor(Dtype::F16, &ones)).unwrap();
        assert!(s.constant);
        assert_eq!(s.mean, 1.0);
        for h in [
            0u16, 1, 0x3ff, 0x400, 0x3c00, 0x7bff, 0x7c00, 0x7e01, 0x8001, 0xfbff,
        ] {
            let w = f32::from_bits(widen_f16(&h.to_le_bytes()));
            let t = f16_to_f32(h);
            assert!(w == t || (w.is_nan() && t.is_nan()), "{h:#x}: {w} vs {t}");
        }
        let sub16: Vec<u8> = [0x01u8, 0x00].repeat(10);
        assert_eq!(stats(&tensor(Dtype::F16, &sub16)).unwrap().subnormal, 10);
    }
}
