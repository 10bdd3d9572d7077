use super::*;
use sha2::{Digest, Sha256};

const V1: &[u8] = include_bytes!("../testdata/datasets/v1_groups.h5");
const V1_JSON: &str = include_str!("../testdata/datasets/v1_groups.h5.json");
const V2: &[u8] = include_bytes!("../testdata/datasets/v2_groups.h5");
const V2_JSON: &str = include_str!("../testdata/datasets/v2_groups.h5.json");

/// Checks every dataset against what h5py reported for the same file.
fn matches_h5py(data: &[u8], manifest: &str) {
    let got = datasets(data, &Hdf5Limits::default()).unwrap();
    assert!(got.problems.is_empty(), "{:?}", got.problems);
    let want: Vec<serde_json::Value> = serde_json::from_str(manifest).unwrap();
    let mut paths: Vec<&str> = got.datasets.iter().map(|d| d.path.as_str()).collect();
    paths.sort_unstable();
    let want_paths: Vec<&str> = want.iter().map(|w| w["path"].as_str().unwrap()).collect();
    assert_eq!(paths, want_paths);
    for w in &want {
        let path = w["path"].as_str().unwrap();
        let d = got.datasets.iter().find(|d| d.path == path).unwrap();
        let shape: Vec<u64> = w["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(d.shape, shape, "{path}");
        let dtype = w["dtype"].as_str().unwrap();
        let size: u32 = dtype[2..].parse().unwrap_or(0);
        let big = dtype.starts_with('>');
        let expected = match &dtype[1..2] {
            "f" => ElementType::Float {
                size,
                big_endian: big,
            },
            "i" => ElementType::Int {
                size,
                signed: true,
                big_endian: big,
            },
            _ => match d.element {
                ElementType::Other { .. } => d.element,
                other => panic!("{path}: {dtype} read as {other:?}"),
            },
        };
        assert_eq!(d.element, expected, "{path}");
        let filtered = w["filtered"].as_bool().unwrap();
        let range = match (w["layout"].as_str().unwrap(), &d.storage) {
            ("contiguous", Storage::Contiguous(r)) => {
                assert_eq!(Some(r.start), w["offset"].as_u64(), "{path}: offset");
                r.clone()
            }
            ("contiguous", Storage::Unallocated) => {
                assert!(w["offset"].is_null() && w["storage"] == 0, "{path}");
                continue;
            }
            ("compact", Storage::Compact(r)) => r.clone(),
            ("chunked", Storage::Unread(why)) => {
                let expect = if filtered { "filtered" } else { "chunked" };
                assert!(why.contains(expect), "{path}: {why}");
                continue;
            }
            (layout, s) => panic!("{path}: {layout} read as {s:?}"),
        };
        assert_eq!(
            range.end - range.start,
            w["storage"].as_u64().unwrap(),
            "{path}"
        );
        // The bytes are the elements h5py read (compared little-endian).
        let mut bytes = data[range.start as usize..range.end as usize].to_vec();
        if big {
            for el in bytes.chunks_mut(size as usize) {
                el.reverse();
            }
        }
        assert_eq!(
            hex::encode(Sha256::digest(&bytes)),
            w["sha256"].as_str().unwrap(),
            "{path}: bytes"
        );
    }
}

#[test]
fn v1_groups_match_h5py() {
    matches_h5py(V1, V1_JSON);
}

#[test]
fn v2_groups_with_dense_links_match_h5py() {
    matches_h5py(V2, V2_JSON);
    let got = datasets(V2, &Hdf5Limits::default()).unwrap();
    assert_eq!(
        got.datasets
            .iter()
            .filter(|d| d.path.starts_with("many/"))
            .count(),
        40
    );
}

#[test]
fn second_hard_link_is_an_alias_and_cycles_end() {
    for data in [V1, V2] {
        let got = datasets(data, &Hdf5Limits::default()).unwrap();
        let d = got
            .datasets
            .iter()
            .find(|d| d.path == "alias_of_bias")
            .unwrap();
        assert_eq!(d.aliases, vec!["layers/dense/vars/1".to_string()]);
        // `layers/dense/up` is `layers` again: read once, not followed into a loop.
        assert!(got.datasets.iter().all(|d| !d.path.contains("/up/")));
    }
}

#[test]
fn truncated_and_corrupted_files_never_panic() {
    let limits = Hdf5Limits::default();
    for data in [V1, V2] {
        for cut in (0..data.len()).step_by(97) {
            let _ = datasets(&data[..cut], &limits);
        }
        // Deterministic byte corruption all over the file.
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..3000 {
            let mut d = data.to_vec();
            for _ in 0..4 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = (seed % d.len() as u64) as usize;
                d[at] = (seed >> 32) as u8;
            }
            if let Ok(r) = datasets(&d, &limits) {
                for ds in r.datasets {
                    if let Storage::Contiguous(r) | Storage::Compact(r) = ds.storage {
                        assert!(r.start <= r.end && r.end <= d.len() as u64);
                    }
                }
            }
        }
    }
}

#[test]
fn node_limit_is_a_clear_error() {
    let tight = Hdf5Limits {
        max_nodes: 5,
        ..Hdf5Limits::default()
    };
    let got = datasets(V2, &tight);
    let text = match got {
        Err(e) => e.to_string(),
        Ok(r) => format!("{:?}", r.problems),
    };
    assert!(text.contains("more than 5"), "{text}");
}
