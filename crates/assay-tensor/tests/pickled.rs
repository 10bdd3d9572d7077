//! Numeric numpy arrays inside pickles: fixtures/tensor/pickled/view, made by
//! fixtures/tensor/pickled/generate_pickled.py with numpy, joblib and pickle; every
//! element value is compared with numpy's own record (expected.json).

use assay_tensor::{Dtype, ReadLimits, TensorFormat, read_as};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tensor/pickled/view")
}

fn check(fname: &str) {
    let exp: Value =
        serde_json::from_slice(&std::fs::read(dir().join("expected.json")).unwrap()).unwrap();
    let bytes = std::fs::read(dir().join(fname)).unwrap();
    let file = read_as(
        TensorFormat::PickleNumpy,
        &bytes,
        &ReadLimits::default(),
        None,
    )
    .unwrap();
    assert!(file.problems.is_empty(), "{fname}: {:?}", file.problems);
    let want = exp.as_object().unwrap();
    assert_eq!(file.tensors.len(), want.len(), "{fname}");
    for (name, w) in want {
        let t = file.get(name).unwrap_or_else(|| {
            panic!(
                "{fname}: no tensor {name}; have {:?}",
                file.tensors.iter().map(|t| &t.name).collect::<Vec<_>>()
            )
        });
        let shape: Vec<u64> = w["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .collect();
        assert_eq!(t.shape, shape, "{fname}:{name} shape");
        // The view borrows the pickle's own bytes: no copy.
        assert!(t.data.is_borrowed());
        assert_eq!(
            &bytes[t.range.start as usize..t.range.end as usize],
            t.bytes()
        );
        let got = t.to_f32_vec(1 << 20).unwrap();
        let values = w["values"].as_array().unwrap();
        assert_eq!(got.len(), values.len(), "{fname}:{name} element count");
        for (i, (g, v)) in got.iter().zip(values).enumerate() {
            let v32 = v.as_f64().unwrap() as f32;
            assert_eq!(*g, v32, "{fname}:{name}[{i}]");
        }
    }
    assert_eq!(file.get("w").unwrap().dtype, Dtype::F32);
    assert_eq!(file.get("h").unwrap().dtype, Dtype::F16);
    assert_eq!(file.get("u").unwrap().dtype, Dtype::U8);
    // Fortran order is described by strides.
    assert_eq!(file.get("f").unwrap().strides, vec![1, 2]);
}

#[test]
fn joblib_inline_arrays() {
    check("arrays.joblib");
}

#[test]
fn pickle_protocol4_reconstruct() {
    check("arrays_p4.pkl");
}

/// Protocol 2 stores array bytes as `_codecs.encode(str, 'latin1')`: not described (the
/// scanner counts them as unread array data), never misread.
#[test]
fn pickle_protocol2_is_not_misread() {
    let bytes = std::fs::read(dir().join("arrays_p2.pkl")).unwrap();
    let file = read_as(
        TensorFormat::PickleNumpy,
        &bytes,
        &ReadLimits::default(),
        None,
    )
    .unwrap();
    assert!(file.tensors.is_empty(), "{:?}", file.tensors);
}
