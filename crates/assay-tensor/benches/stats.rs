//! Throughput of the tensor stage's passes on one core, over in-memory weights:
//! `cargo bench -p assay-tensor --bench stats` (set `ASSAY_BENCH_MB` for the size, 256
//! by default). Prints GB/s of tensor bytes for statistics, region statistics and the
//! payload search, per dtype. No harness: a plain timer, best of three runs. The payload
//! search spreads a large tensor's windows over rayon's threads: set
//! `RAYON_NUM_THREADS=1` for the per-core figure.

use assay_tensor::payload::{regions, search_tensor};
use assay_tensor::stats::stats;
use assay_tensor::{Bytes, Dtype, Endian, Tensor};
use std::hint::black_box;
use std::time::Instant;

fn weights(n: usize, dtype: Dtype) -> Vec<u8> {
    // Gaussian-like values (sum of four uniforms), as trained weights roughly are.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut out = Vec::with_capacity(n * 4);
    for _ in 0..n {
        let s: f32 = (0..4)
            .map(|_| (next() >> 40) as f32 / (1u64 << 24) as f32)
            .sum::<f32>()
            - 2.0;
        let v = s * 0.02;
        match dtype {
            Dtype::F32 => out.extend(v.to_le_bytes()),
            Dtype::BF16 => out.extend(((v.to_bits() >> 16) as u16).to_le_bytes()),
            _ => out.extend(half_bits(v).to_le_bytes()),
        }
    }
    out
}

fn half_bits(v: f32) -> u16 {
    // Good enough for a benchmark: truncating conversion of normal values.
    let b = v.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let exp = ((b >> 23) & 0xff) as i32 - 127 + 15;
    if exp <= 0 {
        return sign;
    }
    sign | ((exp as u16) << 10) | ((b >> 13) & 0x3ff) as u16
}

fn time(label: &str, bytes: usize, mut f: impl FnMut()) {
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "{label:<28} {:>8.2} GB/s  ({:.3} s for {} MB)",
        bytes as f64 / best / 1e9,
        best,
        bytes >> 20
    );
}

fn main() {
    let mb: usize = std::env::var("ASSAY_BENCH_MB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256);
    for dtype in [Dtype::F32, Dtype::BF16, Dtype::F16] {
        let size = dtype.size().unwrap();
        let n = (mb << 20) / size;
        let data = weights(n, dtype);
        let t = Tensor {
            name: "w".into(),
            dtype,
            endian: Endian::Little,
            shape: vec![n as u64],
            strides: vec![1],
            data: Bytes::Borrowed(&data),
            range: 0..data.len() as u64,
            member: None,
        };
        let name = dtype.name();
        time(&format!("{name} statistics"), data.len(), || {
            black_box(stats(&t));
        });
        let s = stats(&t).unwrap();
        time(&format!("{name} region statistics"), data.len(), || {
            black_box(regions(&t, &s));
        });
        time(&format!("{name} payload search"), data.len(), || {
            black_box(search_tensor(&t));
        });
    }
}
