//! Payload search and region statistics on weights made by torch (fixtures/tensor/stage,
//! from generate.py): real trained weights in fp32, fp16, bf16 and bf16-rounded fp32
//! give nothing; EvilModel-style payloads in low bytes, LSB steganography and payloads
//! in the low halves of bf16-rounded weights are found in the tensor that holds them.

use assay_tensor::payload::{self, Plane, RegionKind};
use assay_tensor::stats::stats;
use assay_tensor::{ReadLimits, read};
use std::path::Path;

fn load(rel: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/tensor/stage")
            .join(rel),
    )
    .unwrap()
}

type Hits = Vec<(String, &'static str, Plane)>;
type Regions = Vec<(String, RegionKind)>;

/// (tensor, hit kind, plane) for every payload hit; (tensor, region kind) for regions.
fn analyse(rel: &str) -> (Hits, Regions) {
    let bytes = load(rel);
    let file = read(&bytes, &ReadLimits::default()).unwrap();
    assert!(file.problems.is_empty(), "{rel}: {:?}", file.problems);
    let mut hits = Vec::new();
    let mut regions = Vec::new();
    for t in &file.tensors {
        for h in payload::search_tensor(t) {
            hits.push((t.name.clone(), h.kind, h.plane));
        }
        if let Some(s) = stats(t) {
            for r in payload::regions(t, &s) {
                regions.push((t.name.clone(), r.kind));
            }
        }
    }
    (hits, regions)
}

#[test]
fn real_weights_are_clean() {
    for f in [
        "benign/mlp_fp32.safetensors",
        "benign/mlp_fp32.pt",
        "benign/mlp_fp16.safetensors",
        "benign/mlp_bf16.safetensors",
        "benign/mlp_bf16_rounded_fp32.safetensors",
        "benign/mlp_pruned_fp32.safetensors",
    ] {
        let (hits, regions) = analyse(f);
        assert!(hits.is_empty(), "{f}: {hits:?}");
        assert!(regions.is_empty(), "{f}: {regions:?}");
    }
}

#[test]
fn evilmodel_low_bytes() {
    let (hits, _) = analyse("malicious/evilmodel_elf_fp32.safetensors");
    assert!(
        hits.iter().any(|(t, k, p)| t == "2.weight"
            && *k == "ELF executable"
            && *p
                == Plane::LowBytes {
                    n: 3,
                    reversed: false
                }),
        "{hits:?}"
    );
    assert!(hits.iter().all(|(t, ..)| t == "2.weight"), "{hits:?}");
    let (hits, _) = analyse("malicious/evilmodel_zip_fp32.pt");
    assert!(
        hits.iter()
            .any(|(t, k, _)| t == "4.weight" && *k == "zip archive"),
        "{hits:?}"
    );
    let (hits, _) = analyse("malicious/evilmodel_pickle_fp32_legacy.pt");
    assert!(
        hits.iter().any(|(t, k, p)| t == "2.weight"
            && *k == "pickle"
            && *p
                == Plane::LowBytes {
                    n: 2,
                    reversed: false
                }),
        "{hits:?}"
    );
}

#[test]
fn lsb_steganography() {
    let (hits, _) = analyse("malicious/lsb_elf_fp32.safetensors");
    assert!(
        hits.iter().any(|(t, k, p)| t == "2.weight"
            && *k == "ELF executable"
            && *p
                == Plane::LowBits {
                    n: 1,
                    lsb_first: false
                }),
        "{hits:?}"
    );
}

#[test]
fn bf16_rounded_low_halves() {
    let (hits, regions) = analyse("malicious/bf16_rounded_gzip_low_halves.safetensors");
    assert!(
        hits.iter()
            .any(|(t, k, _)| t == "4.weight" && *k == "gzip stream"),
        "{hits:?}"
    );
    assert_eq!(
        regions,
        vec![("4.weight".to_string(), RegionKind::LowHalvesNotZero)]
    );
    // Encrypted-looking bytes have no signature; the region still gives them away.
    let (hits, regions) = analyse("malicious/bf16_rounded_random_low_halves.safetensors");
    assert!(hits.is_empty(), "{hits:?}");
    assert_eq!(
        regions,
        vec![("2.weight".to_string(), RegionKind::LowHalvesNotZero)]
    );
}

#[test]
fn large_random_tensors_have_no_hits() {
    // 16 MiB of random f32 bit patterns and of Gaussian-like values.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let n = 4 << 20;
    let bits: Vec<u8> = (0..n).flat_map(|_| (next() as u32).to_le_bytes()).collect();
    let gauss: Vec<u8> = (0..n)
        .flat_map(|_| {
            let s: f32 = (0..4)
                .map(|_| (next() >> 40) as f32 / (1u64 << 24) as f32)
                .sum::<f32>()
                - 2.0;
            (s * 0.02).to_le_bytes()
        })
        .collect();
    for data in [&bits, &gauss] {
        let t = assay_tensor::Tensor {
            name: "w".into(),
            dtype: assay_tensor::Dtype::F32,
            endian: assay_tensor::Endian::Little,
            shape: vec![n as u64],
            strides: vec![1],
            data: assay_tensor::Bytes::Borrowed(data),
            range: 0..data.len() as u64,
            member: None,
        };
        assert!(payload::search_tensor(&t).is_empty());
        let s = stats(&t).unwrap();
        assert!(payload::regions(&t, &s).is_empty());
    }
}
