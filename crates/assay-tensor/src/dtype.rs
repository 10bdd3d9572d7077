//! Element types and their decoding to `f32`.

use std::sync::LazyLock;

/// Byte order of the stored elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endian {
    Little,
    Big,
}

/// The element type of a tensor, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dtype {
    F64,
    F32,
    F16,
    BF16,
    /// `float8_e4m3fn` (OCP FP8, no infinities).
    F8E4M3,
    F8E5M2,
    F8E4M3Fnuz,
    F8E5M2Fnuz,
    /// `float8_e8m0fnu`: an exponent only (MX scales).
    F8E8M0,
    I64,
    I32,
    I16,
    I8,
    U64,
    U32,
    U16,
    U8,
    Bool,
    C64,
    C128,
    /// Elements narrower than a byte, packed (safetensors `F4`, `F6_E2M3`, `F6_E3M2`).
    Packed {
        name: &'static str,
        bits: u8,
    },
    /// A GGUF/ggml quantised type, kept as raw blocks: `block_elems` elements are stored
    /// in `block_bytes` bytes.
    Quant {
        name: &'static str,
        ggml_type: u32,
        block_elems: u64,
        block_bytes: u64,
    },
}

impl Dtype {
    /// Short name, in the spelling of safetensors where it has one (`F32`, `BF16`, `Q8_0`).
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F64 => "F64",
            Dtype::F32 => "F32",
            Dtype::F16 => "F16",
            Dtype::BF16 => "BF16",
            Dtype::F8E4M3 => "F8_E4M3",
            Dtype::F8E5M2 => "F8_E5M2",
            Dtype::F8E4M3Fnuz => "F8_E4M3FNUZ",
            Dtype::F8E5M2Fnuz => "F8_E5M2FNUZ",
            Dtype::F8E8M0 => "F8_E8M0",
            Dtype::I64 => "I64",
            Dtype::I32 => "I32",
            Dtype::I16 => "I16",
            Dtype::I8 => "I8",
            Dtype::U64 => "U64",
            Dtype::U32 => "U32",
            Dtype::U16 => "U16",
            Dtype::U8 => "U8",
            Dtype::Bool => "BOOL",
            Dtype::C64 => "C64",
            Dtype::C128 => "C128",
            Dtype::Packed { name, .. } | Dtype::Quant { name, .. } => name,
        }
    }

    /// Bytes per element; `None` for packed and quantised types.
    pub fn size(self) -> Option<usize> {
        Some(match self {
            Dtype::F64 | Dtype::I64 | Dtype::U64 | Dtype::C64 => 8,
            Dtype::C128 => 16,
            Dtype::F32 | Dtype::I32 | Dtype::U32 => 4,
            Dtype::F16 | Dtype::BF16 | Dtype::I16 | Dtype::U16 => 2,
            Dtype::F8E4M3
            | Dtype::F8E5M2
            | Dtype::F8E4M3Fnuz
            | Dtype::F8E5M2Fnuz
            | Dtype::F8E8M0
            | Dtype::I8
            | Dtype::U8
            | Dtype::Bool => 1,
            Dtype::Packed { .. } | Dtype::Quant { .. } => return None,
        })
    }

    /// Bytes that `numel` elements take, or `None` on overflow or when `numel` is not a
    /// whole number of blocks / bytes.
    pub fn bytes_for(self, numel: u64) -> Option<u64> {
        match self {
            Dtype::Packed { bits, .. } => {
                let b = numel.checked_mul(u64::from(bits))?;
                b.is_multiple_of(8).then_some(b / 8)
            }
            Dtype::Quant {
                block_elems,
                block_bytes,
                ..
            } => (block_elems > 0 && numel.is_multiple_of(block_elems))
                .then(|| (numel / block_elems).checked_mul(block_bytes))?,
            d => numel.checked_mul(d.size()? as u64),
        }
    }

    /// Real floating-point types that decode to `f32` (complex, packed and quantised
    /// types do not).
    pub fn is_float(self) -> bool {
        matches!(
            self,
            Dtype::F64
                | Dtype::F32
                | Dtype::F16
                | Dtype::BF16
                | Dtype::F8E4M3
                | Dtype::F8E5M2
                | Dtype::F8E4M3Fnuz
                | Dtype::F8E5M2Fnuz
                | Dtype::F8E8M0
        )
    }

    /// Types whose elements [`decode_f32`] can convert (floats, integers, bool).
    pub fn is_numeric(self) -> bool {
        self.is_float()
            || matches!(
                self,
                Dtype::I64
                    | Dtype::I32
                    | Dtype::I16
                    | Dtype::I8
                    | Dtype::U64
                    | Dtype::U32
                    | Dtype::U16
                    | Dtype::U8
                    | Dtype::Bool
            )
    }

    /// The dtype of a ggml type id (`GGML_TYPE_*`), quantised types as raw blocks.
    pub fn from_ggml(t: u32) -> Option<Dtype> {
        let (name, block_elems, block_bytes) = assay_formats::gguf::tensor_type(t)?;
        Some(match t {
            0 => Dtype::F32,
            1 => Dtype::F16,
            24 => Dtype::I8,
            25 => Dtype::I16,
            26 => Dtype::I32,
            27 => Dtype::I64,
            28 => Dtype::F64,
            30 => Dtype::BF16,
            _ => Dtype::Quant {
                name,
                ggml_type: t,
                block_elems,
                block_bytes,
            },
        })
    }

    /// The dtype of a safetensors dtype string.
    pub fn from_safetensors(s: &str) -> Option<Dtype> {
        Some(match s {
            "F64" => Dtype::F64,
            "F32" => Dtype::F32,
            "F16" => Dtype::F16,
            "BF16" => Dtype::BF16,
            "F8_E4M3" => Dtype::F8E4M3,
            "F8_E5M2" => Dtype::F8E5M2,
            "F8_E4M3FNUZ" => Dtype::F8E4M3Fnuz,
            "F8_E5M2FNUZ" => Dtype::F8E5M2Fnuz,
            "F8_E8M0" => Dtype::F8E8M0,
            "I64" => Dtype::I64,
            "I32" => Dtype::I32,
            "I16" => Dtype::I16,
            "I8" => Dtype::I8,
            "U64" => Dtype::U64,
            "U32" => Dtype::U32,
            "U16" => Dtype::U16,
            "U8" => Dtype::U8,
            "BOOL" => Dtype::Bool,
            "C64" => Dtype::C64,
            "F4" => Dtype::Packed {
                name: "F4",
                bits: 4,
            },
            "F6_E2M3" => Dtype::Packed {
                name: "F6_E2M3",
                bits: 6,
            },
            "F6_E3M2" => Dtype::Packed {
                name: "F6_E3M2",
                bits: 6,
            },
            _ => return None,
        })
    }

    /// The dtype of a torch dtype name (`float32`, `bfloat16`, `uint16`, …) or legacy
    /// storage class (`FloatStorage`, `BFloat16Storage`, …).
    pub fn from_torch(s: &str) -> Option<Dtype> {
        Some(match s {
            "float64" | "double" | "DoubleStorage" => Dtype::F64,
            "float32" | "float" | "FloatStorage" => Dtype::F32,
            "float16" | "half" | "HalfStorage" => Dtype::F16,
            "bfloat16" | "BFloat16Storage" => Dtype::BF16,
            "float8_e4m3fn" => Dtype::F8E4M3,
            "float8_e5m2" => Dtype::F8E5M2,
            "float8_e4m3fnuz" => Dtype::F8E4M3Fnuz,
            "float8_e5m2fnuz" => Dtype::F8E5M2Fnuz,
            "float8_e8m0fnu" => Dtype::F8E8M0,
            "int64" | "long" | "LongStorage" => Dtype::I64,
            "int32" | "int" | "IntStorage" => Dtype::I32,
            "int16" | "short" | "ShortStorage" => Dtype::I16,
            "int8" | "CharStorage" => Dtype::I8,
            "uint64" => Dtype::U64,
            "uint32" => Dtype::U32,
            "uint16" => Dtype::U16,
            "uint8" | "ByteStorage" | "UntypedStorage" => Dtype::U8,
            "bool" | "BoolStorage" => Dtype::Bool,
            "complex64" | "cfloat" | "ComplexFloatStorage" => Dtype::C64,
            "complex128" | "cdouble" | "ComplexDoubleStorage" => Dtype::C128,
            _ => return None,
        })
    }

    /// The dtype of an ONNX `TensorProto.DataType`.
    pub fn from_onnx(t: i32) -> Option<Dtype> {
        Some(match t {
            1 => Dtype::F32,
            2 => Dtype::U8,
            3 => Dtype::I8,
            4 => Dtype::U16,
            5 => Dtype::I16,
            6 => Dtype::I32,
            7 => Dtype::I64,
            9 => Dtype::Bool,
            10 => Dtype::F16,
            11 => Dtype::F64,
            12 => Dtype::U32,
            13 => Dtype::U64,
            14 => Dtype::C64,
            15 => Dtype::C128,
            16 => Dtype::BF16,
            17 => Dtype::F8E4M3,
            18 => Dtype::F8E4M3Fnuz,
            19 => Dtype::F8E5M2,
            20 => Dtype::F8E5M2Fnuz,
            _ => return None,
        })
    }

    /// The dtype of a NumPy `descr` (`<f4`, `>f8`, `|b1`, …) and its byte order.
    pub fn from_numpy(descr: &str) -> Option<(Dtype, Endian)> {
        let (order, code) = descr.split_at_checked(1)?;
        let endian = match order {
            "<" | "|" | "=" => Endian::Little,
            ">" => Endian::Big,
            _ => return None,
        };
        let d = match code {
            "f8" => Dtype::F64,
            "f4" => Dtype::F32,
            "f2" => Dtype::F16,
            "i8" => Dtype::I64,
            "i4" => Dtype::I32,
            "i2" => Dtype::I16,
            "i1" => Dtype::I8,
            "u8" => Dtype::U64,
            "u4" => Dtype::U32,
            "u2" => Dtype::U16,
            "u1" => Dtype::U8,
            "b1" => Dtype::Bool,
            "c8" => Dtype::C64,
            "c16" => Dtype::C128,
            _ => return None,
        };
        Some((d, endian))
    }
}

/// `f16` bit patterns to `f32`, all 65,536 of them (256 KiB, built once).
static F16_TABLE: LazyLock<Box<[f32]>> =
    LazyLock::new(|| (0..=u16::MAX).map(f16_to_f32_slow).collect());

/// IEEE half to single, exactly (subnormals, infinities and NaN included).
fn f16_to_f32_slow(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    let bits = match (exp, man) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: value = m * 2^-24.
            let v = (m as f32) * (-24f32).exp2();
            return if sign != 0 { -v } else { v };
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, m) => sign | 0x7fc0_0000 | (m << 13),
        (e, m) => sign | ((e + 112) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

/// Converts an `f16` bit pattern to `f32`.
#[inline]
pub fn f16_to_f32(h: u16) -> f32 {
    F16_TABLE[h as usize]
}

/// Converts a `bf16` bit pattern to `f32` (exact).
#[inline]
pub fn bf16_to_f32(b: u16) -> f32 {
    f32::from_bits(u32::from(b) << 16)
}

fn f8_to_f32(b: u8, exp_bits: u32, bias: i32, fnuz: bool, ieee_inf: bool) -> f32 {
    let man_bits = 7 - exp_bits;
    let sign = if b & 0x80 != 0 { -1.0f32 } else { 1.0 };
    let exp = (u32::from(b) >> man_bits) & ((1 << exp_bits) - 1);
    let man = u32::from(b) & ((1 << man_bits) - 1);
    if fnuz {
        if b == 0x80 {
            return f32::NAN;
        }
    } else if ieee_inf {
        if exp == (1 << exp_bits) - 1 {
            return if man == 0 {
                sign * f32::INFINITY
            } else {
                f32::NAN
            };
        }
    } else if b & 0x7f == 0x7f {
        // e4m3fn: only S.1111.111 is NaN; no infinities.
        return f32::NAN;
    }
    let (e, m) = if exp == 0 {
        (1 - bias, man as f32 / (1u32 << man_bits) as f32)
    } else {
        (
            exp as i32 - bias,
            1.0 + man as f32 / (1u32 << man_bits) as f32,
        )
    };
    sign * m * (e as f32).exp2()
}

/// Decodes one element of `dtype` at the start of `b` (at least `dtype.size()` bytes)
/// to `f32`. Integers are converted (large ones lose precision), bool is 0 or 1.
/// `None` for complex, packed and quantised types.
#[inline]
pub fn decode_one(dtype: Dtype, endian: Endian, b: &[u8]) -> Option<f32> {
    macro_rules! rd {
        ($t:ty, $n:expr) => {{
            let a: [u8; $n] = b.get(..$n)?.try_into().ok()?;
            match endian {
                Endian::Little => <$t>::from_le_bytes(a),
                Endian::Big => <$t>::from_be_bytes(a),
            }
        }};
    }
    Some(match dtype {
        Dtype::F64 => rd!(f64, 8) as f32,
        Dtype::F32 => rd!(f32, 4),
        Dtype::F16 => f16_to_f32(rd!(u16, 2)),
        Dtype::BF16 => bf16_to_f32(rd!(u16, 2)),
        Dtype::F8E4M3 => f8_to_f32(*b.first()?, 4, 7, false, false),
        Dtype::F8E5M2 => f8_to_f32(*b.first()?, 5, 15, false, true),
        Dtype::F8E4M3Fnuz => f8_to_f32(*b.first()?, 4, 8, true, false),
        Dtype::F8E5M2Fnuz => f8_to_f32(*b.first()?, 5, 16, true, false),
        Dtype::F8E8M0 => {
            let e = *b.first()?;
            if e == 0xff {
                f32::NAN
            } else {
                (f32::from(e) - 127.0).exp2()
            }
        }
        Dtype::I64 => rd!(i64, 8) as f32,
        Dtype::I32 => rd!(i32, 4) as f32,
        Dtype::I16 => f32::from(rd!(i16, 2)),
        Dtype::I8 => f32::from(*b.first()? as i8),
        Dtype::U64 => rd!(u64, 8) as f32,
        Dtype::U32 => rd!(u32, 4) as f32,
        Dtype::U16 => f32::from(rd!(u16, 2)),
        Dtype::U8 => f32::from(*b.first()?),
        Dtype::Bool => f32::from(u8::from(*b.first()? != 0)),
        Dtype::C64 | Dtype::C128 | Dtype::Packed { .. } | Dtype::Quant { .. } => return None,
    })
}

/// Decodes as many whole elements of `bytes` as fit into `out`, in storage order;
/// returns how many were written. Fast paths for little-endian `F32`, `F16`, `BF16`.
pub fn decode_f32(dtype: Dtype, endian: Endian, bytes: &[u8], out: &mut [f32]) -> usize {
    let Some(size) = dtype.size() else { return 0 };
    if !dtype.is_numeric() {
        return 0;
    }
    let n = (bytes.len() / size).min(out.len());
    let bytes = &bytes[..n * size];
    match (dtype, endian) {
        (Dtype::F32, Endian::Little) => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        }
        (Dtype::BF16, Endian::Little) => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = bf16_to_f32(u16::from_le_bytes([c[0], c[1]]));
            }
        }
        (Dtype::F16, Endian::Little) => {
            let t = &**F16_TABLE;
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = t[u16::from_le_bytes([c[0], c[1]]) as usize];
            }
        }
        _ => {
            for (o, c) in out.iter_mut().zip(bytes.chunks_exact(size)) {
                *o = decode_one(dtype, endian, c).unwrap_or(f32::NAN);
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_conversions_are_exact() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x8001), -(2f32.powi(-24)));
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert!(f16_to_f32(0x7c00).is_infinite());
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(bf16_to_f32(0x3f80), 1.0);
    }

    #[test]
    fn fp8_conversions() {
        let e4 = |b| f8_to_f32(b, 4, 7, false, false);
        assert_eq!(e4(0x7e), 448.0);
        assert!(e4(0x7f).is_nan());
        assert_eq!(e4(0x38), 1.0);
        let e5 = |b| f8_to_f32(b, 5, 15, false, true);
        assert_eq!(e5(0x7b), 57344.0);
        assert!(e5(0x7c).is_infinite());
    }
}
