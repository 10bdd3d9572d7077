//! The view reads exactly what the real tools wrote: fixtures/tensor/view, made by
//! fixtures/tensor/generate.py with torch, safetensors, numpy, onnx and gguf; every
//! element value is compared with the tool's own record (expected.json).

use assay_tensor::{Dtype, ExternalData, ReadLimits, TensorFile, TensorFormat, read, read_as};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tensor/view")
}

fn expected() -> Value {
    serde_json::from_slice(&std::fs::read(dir().join("expected.json")).unwrap()).unwrap()
}

fn value(v: &Value) -> f64 {
    match v {
        Value::String(s) if s == "nan" => f64::NAN,
        Value::String(s) if s == "inf" => f64::INFINITY,
        Value::String(s) if s == "-inf" => f64::NEG_INFINITY,
        v => v.as_f64().unwrap(),
    }
}

/// Every tensor the tool recorded is in the view with its shape and values.
fn check(file: &TensorFile, fname: &str, exp: &Value) {
    let want = exp[fname].as_object().unwrap();
    for (name, w) in want {
        let Some(values) = w.get("values") else {
            continue;
        };
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
        let got = t.to_f32_vec(1 << 20).unwrap();
        let values = values.as_array().unwrap();
        assert_eq!(got.len(), values.len(), "{fname}:{name} element count");
        for (i, (g, v)) in got.iter().zip(values).enumerate() {
            let v = value(v);
            // f32 view of the tool's value (f64 and large ints round the same way).
            let v32 = v as f32;
            assert!(
                (g.is_nan() && v32.is_nan()) || *g == v32,
                "{fname}:{name}[{i}] = {g}, tool wrote {v}"
            );
        }
    }
}

fn load(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap()
}

#[test]
fn pytorch_zip_and_legacy() {
    let exp = expected();
    for (f, fmt) in [
        ("torch_zip.pt", TensorFormat::PytorchZip),
        ("torch_legacy.pt", TensorFormat::PytorchLegacy),
    ] {
        let bytes = load(f);
        let file = read(&bytes, &ReadLimits::default()).unwrap();
        assert_eq!(file.format, fmt);
        assert!(file.problems.is_empty(), "{f}: {:?}", file.problems);
        check(&file, f, &exp);
        let t = file.get("transposed").unwrap();
        assert!(!t.is_contiguous());
        assert_eq!(t.strides, vec![1, 6]);
        assert!(t.contiguous_bytes().is_none());
        // `row2` is a view 12 elements into the storage it shares with `transposed`.
        let row = file.get("row2").unwrap();
        assert_eq!(row.range.start - t.range.start, 48);
        assert!(row.data.is_borrowed());
        assert_eq!(file.get("bf16").unwrap().dtype, Dtype::BF16);
        assert_eq!(file.get("u16").unwrap().dtype, Dtype::U16);
        assert_eq!(file.get("param").unwrap().shape, vec![2, 2]);
        assert_eq!(file.get("scalar").unwrap().shape, Vec::<u64>::new());
        assert!(
            file.unclaimed.is_empty(),
            "{f}: {:?}",
            file.unclaimed.iter().map(|u| &u.what).collect::<Vec<_>>()
        );
    }
}

#[test]
fn safetensors_all_dtypes() {
    let bytes = load("model.safetensors");
    let file = read(&bytes, &ReadLimits::default()).unwrap();
    assert!(file.problems.is_empty(), "{:?}", file.problems);
    check(&file, "model.safetensors", &expected());
    let f32t = file.get("f32").unwrap();
    assert!(f32t.data.is_borrowed());
    assert_eq!(f32t.contiguous_bytes().unwrap().len(), 24);
    assert_eq!(
        &bytes[f32t.range.start as usize..f32t.range.end as usize],
        f32t.bytes()
    );
}

#[test]
fn numpy_npy_npz() {
    let exp = expected();
    for f in [
        "le_f4.npy",
        "be_f8.npy",
        "fortran_i2.npy",
        "arrays.npz",
        "arrays_compressed.npz",
    ] {
        let bytes = load(f);
        let file = read(&bytes, &ReadLimits::default()).unwrap();
        assert!(file.problems.is_empty(), "{f}: {:?}", file.problems);
        check(&file, f, &exp);
    }
    let bytes = load("fortran_i2.npy");
    let file = read(&bytes, &ReadLimits::default()).unwrap();
    assert_eq!(file.tensors[0].strides, vec![1, 2]);
    let bytes = load("arrays_compressed.npz");
    let file = read(&bytes, &ReadLimits::default()).unwrap();
    assert!(!file.tensors[0].data.is_borrowed());
}

#[test]
fn onnx_initializers_inline_typed_external() {
    let exp = expected();
    let bytes = load("model.onnx");
    let file = read(&bytes, &ReadLimits::default()).unwrap();
    assert!(file.problems.is_empty(), "{:?}", file.problems);
    check(&file, "model.onnx", &exp);
    assert!(file.get("raw_f32").unwrap().data.is_borrowed());
    assert!(file.get("typed_f32").unwrap().data.is_borrowed());

    struct Folder(Vec<(String, &'static [u8])>);
    impl<'a> ExternalData<'a> for Folder {
        fn get(&self, location: &str) -> Option<&'a [u8]> {
            self.0.iter().find(|(l, _)| l == location).map(|(_, b)| *b)
        }
    }
    let ext_dir = dir().join("onnx_external");
    let weights: &'static [u8] = Box::leak(
        std::fs::read(ext_dir.join("weights.bin"))
            .unwrap()
            .into_boxed_slice(),
    );
    let folder = Folder(vec![("weights.bin".into(), weights)]);
    let bytes = std::fs::read(ext_dir.join("model.onnx")).unwrap();
    // Without a resolver the external tensor is a problem, not a guess.
    let alone = read(&bytes, &ReadLimits::default()).unwrap();
    assert_eq!(alone.problems.len(), 1, "{:?}", alone.problems);
    let file = read_as(
        TensorFormat::Onnx,
        &bytes,
        &ReadLimits::default(),
        Some(&folder),
    )
    .unwrap();
    assert!(file.problems.is_empty(), "{:?}", file.problems);
    check(&file, "onnx_external/model.onnx", &exp);
    assert_eq!(
        file.get("ext_w").unwrap().member.as_deref(),
        Some("weights.bin")
    );
}

#[test]
fn gguf_float_and_quantised() {
    let exp = expected();
    let bytes = load("model.gguf");
    let file = read(&bytes, &ReadLimits::default()).unwrap();
    assert!(file.problems.is_empty(), "{:?}", file.problems);
    check(&file, "model.gguf", &exp);
    let q = file.get("q8").unwrap();
    assert!(matches!(
        q.dtype,
        Dtype::Quant {
            name: "Q8_0",
            block_elems: 32,
            block_bytes: 34,
            ..
        }
    ));
    let w = &exp["model.gguf"]["q8"];
    assert_eq!(q.bytes().len() as u64, w["raw_len"].as_u64().unwrap());
    let first: Vec<u8> = w["raw_first"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u8)
        .collect();
    assert_eq!(&q.bytes()[..8], &first[..]);
    assert_eq!(q.shape, vec![2, 32]);
    assert!(q.for_each_f32(|_| {}).is_err());
}

#[test]
fn hostile_headers_are_problems_not_panics() {
    // A torch zip whose tensor claims more elements than its storage holds, made by
    // patching the size in the real file's pickle is hard to do portably; instead cut
    // every fixture at every 97th byte and check reading never panics.
    for f in [
        "torch_zip.pt",
        "torch_legacy.pt",
        "model.safetensors",
        "model.onnx",
        "model.gguf",
        "arrays.npz",
        "le_f4.npy",
    ] {
        let bytes = load(f);
        for cut in (0..bytes.len()).step_by(97) {
            if let Ok(file) = read(&bytes[..cut], &ReadLimits::default()) {
                for t in &file.tensors {
                    let _ = t.to_f32_vec(1 << 20);
                }
            }
        }
    }
}

#[test]
fn keras_hdf5_weights_and_archive() {
    let exp = expected();
    for (f, fmt) in [
        ("keras.weights.h5", TensorFormat::Hdf5),
        ("keras_legacy.h5", TensorFormat::Hdf5),
        ("keras.keras", TensorFormat::Keras),
    ] {
        let bytes = load(f);
        let file = read(&bytes, &ReadLimits::default()).unwrap();
        assert_eq!(file.format, fmt, "{f}");
        assert!(file.problems.is_empty(), "{f}: {:?}", file.problems);
        assert_eq!(
            file.tensors.len(),
            exp[f].as_object().unwrap().len(),
            "{f}: every numeric dataset h5py reads, and nothing else"
        );
        check(&file, f, &exp);
        for t in &file.tensors {
            assert!(t.data.is_borrowed(), "{f}:{}: no copy", t.name);
            let member = (fmt == TensorFormat::Keras).then_some("model.weights.h5");
            assert_eq!(t.member.as_deref(), member, "{f}:{}", t.name);
        }
    }
}

/// An ONNX model whose only initializer is `tensor` (a TensorProto's fields).
fn onnx_with(tensor: &[u8]) -> Vec<u8> {
    fn len_field(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        let mut n = body.len();
        while n >= 0x80 {
            v.push((n as u8) | 0x80);
            n >>= 7;
        }
        v.push(n as u8);
        v.extend_from_slice(body);
        v
    }
    let graph = len_field(0x2a, tensor); // GraphProto.initializer (5)
    let mut model = vec![0x08, 0x08]; // ir_version 8
    model.extend(len_field(0x3a, &graph)); // ModelProto.graph (7)
    model
}

/// Complex values held one per field (not packed): each float of `float_data` and each
/// double of `double_data` is one component, two per element (found by the
/// `tensor_onnx` fuzz target: complex128 values panicked, complex64 ones were misread).
#[test]
fn onnx_typed_complex_values_are_two_components_per_element() {
    let mut c128 = vec![0x08, 0x02, 0x10, 15, 0x42, 0x01, b'z']; // dims [2], COMPLEX128, "z"
    let doubles = [1.5f64, -2.0, 3.25, 4.0];
    for d in doubles {
        c128.push(0x51); // double_data (10), fixed64
        c128.extend(d.to_le_bytes());
    }
    let data = onnx_with(&c128);
    let file = read_as(TensorFormat::Onnx, &data, &ReadLimits::default(), None).unwrap();
    assert!(file.problems.is_empty(), "{:?}", file.problems);
    let t = file.get("z").unwrap();
    assert_eq!((t.dtype, t.shape.as_slice()), (Dtype::C128, &[2u64][..]));
    let want: Vec<u8> = doubles.iter().flat_map(|d| d.to_le_bytes()).collect();
    assert_eq!(t.bytes(), want.as_slice());

    let mut c64 = vec![0x08, 0x02, 0x10, 14, 0x42, 0x01, b'c']; // dims [2], COMPLEX64, "c"
    let floats = [1.5f32, -2.0, 3.25, 4.0];
    for f in floats {
        c64.push(0x25); // float_data (4), fixed32
        c64.extend(f.to_le_bytes());
    }
    let data = onnx_with(&c64);
    let file = read_as(TensorFormat::Onnx, &data, &ReadLimits::default(), None).unwrap();
    assert!(file.problems.is_empty(), "{:?}", file.problems);
    let t = file.get("c").unwrap();
    assert_eq!((t.dtype, t.shape.as_slice()), (Dtype::C64, &[2u64][..]));
    let want: Vec<u8> = floats.iter().flat_map(|f| f.to_le_bytes()).collect();
    assert_eq!(t.bytes(), want.as_slice());
}
