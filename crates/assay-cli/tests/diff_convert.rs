//! `assay diff` and `assay convert` end to end, on files written by real torch and
//! safetensors (fixtures/diff/generate.py, fixtures/convert/generate.py).
//!
//! The Python check of converted files needs `ASSAY_FIXTURE_PYTHON`: a Python with the
//! `safetensors` package (torch optional; with it the originals are also compared with
//! `torch.load`). Under CI=true the test fails without it; elsewhere it is skipped.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn assay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_assay"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run assay")
}

fn diff_json(base: &str, cand: &str) -> (i32, Value) {
    let out = assay(&["diff", base, cand, "--format", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), v)
}

fn expected() -> Value {
    serde_json::from_slice(&std::fs::read(root().join("fixtures/diff/expected.json")).unwrap())
        .unwrap()
}

fn names_with(v: &Value, status: &str) -> BTreeSet<String> {
    v["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"] == status)
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

/// Every candidate: exactly the tensors torch changed are `changed`, with the rank torch's
/// matrix_rank gives ΔW (exactly for the rank-1, row and LoRA edits; "high" for the
/// fine-tune), the rows changed, and the expected verdict.
#[test]
fn diff_names_the_changed_tensors_their_ranks_and_the_kind_of_change() {
    let exp = expected();
    for (cand, want) in exp.as_object().unwrap() {
        let (code, v) = diff_json(
            "fixtures/diff/base.safetensors",
            &format!("fixtures/diff/{cand}"),
        );
        assert_eq!(code, 1, "{cand}: differences exit 1");
        assert_eq!(v["summary"]["verdict"], want["verdict"], "{cand}: verdict");
        let want_changed: BTreeMap<&String, &Value> =
            want["changed"].as_object().unwrap().iter().collect();
        let got = names_with(&v, "changed");
        assert_eq!(
            got,
            want_changed
                .keys()
                .map(|s| s.to_string())
                .collect::<BTreeSet<_>>(),
            "{cand}: changed tensors"
        );
        let full_ft = want["verdict"] == "full_fine_tune";
        for t in v["tensors"].as_array().unwrap() {
            let name = t["name"].as_str().unwrap();
            let Some(w) = want_changed.get(&name.to_string()) else {
                continue;
            };
            assert_eq!(t["rows_changed"], w["rows_changed"], "{cand}:{name} rows");
            assert!(t["relative_change"].as_f64().unwrap() > 0.0);
            match w.get("rank") {
                Some(r) if full_ft => {
                    // torch: 30–32 of 32; the sketch: high (not low rank).
                    assert!(r.as_u64().unwrap() > 16, "{cand}:{name} torch rank {r}");
                    assert!(
                        t["rank"].as_u64().unwrap() > 16,
                        "{cand}:{name} rank {}",
                        t["rank"]
                    );
                }
                Some(r) => assert_eq!(&t["rank"], r, "{cand}:{name} rank"),
                None => assert!(t["rank"].is_null(), "{cand}:{name}: a vector has no rank"),
            }
        }
        if let Some(rows) = want["changed"].get("embed.weight").filter(|_| !full_ft) {
            let t = v["tensors"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["name"] == "embed.weight")
                .unwrap();
            assert_eq!(t["rows"], serde_json::json!([3, 11, 20, 37]), "{rows}");
        }
        // A rename is a removal and an addition of the same values.
        for t in v["tensors"].as_array().unwrap() {
            if t["name"] == "layers.0.mlp_up.weight" {
                assert_eq!(t["same_as"], "layers.0.up.weight");
            }
            if t["name"] == "layers.0.up.weight" && t["status"] == "removed" {
                assert_eq!(t["same_as"], "layers.0.mlp_up.weight");
            }
        }
        for key in ["added", "removed", "reshaped"] {
            if let Some(names) = want.get(key) {
                let names: BTreeSet<String> = names
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| n.as_str().unwrap().to_string())
                    .collect();
                assert_eq!(names_with(&v, key), names, "{cand}: {key}");
            }
        }
    }
}

#[test]
fn diff_json_has_the_documented_shape() {
    let (_, v) = diff_json(
        "fixtures/diff/base.safetensors",
        "fixtures/diff/rome.safetensors",
    );
    for t in v["tensors"].as_array().unwrap() {
        for k in [
            "name",
            "status",
            "relative_change",
            "rank",
            "rows_changed",
            "cols_changed",
        ] {
            assert!(t.get(k).is_some(), "tensor entry without {k}: {t}");
        }
        if t["status"] == "equal" {
            assert_eq!(t["relative_change"], 0.0);
            assert_eq!(t["rows_changed"], 0);
            assert!(t["rank"].is_null());
        }
        assert!(
            ["equal", "changed", "added", "removed", "reshaped"]
                .contains(&t["status"].as_str().unwrap())
        );
    }
    let names: Vec<&str> = v["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert_eq!(v["summary"]["changed"], 1);
    assert_eq!(v["summary"]["equal"], 22);
    assert_eq!(
        v["summary"]["changed_tensors"],
        serde_json::json!(["layers.1.down.weight"])
    );
}

/// The same weights in another format or split over a folder are identical (exit 0).
#[test]
fn diff_across_formats_and_folders() {
    for other in ["fixtures/diff/base_legacy.pt", "fixtures/diff/base_sharded"] {
        let (code, v) = diff_json("fixtures/diff/base.safetensors", other);
        assert_eq!(code, 0, "{other}");
        assert_eq!(v["summary"]["verdict"], "identical");
        assert_eq!(v["summary"]["equal"], 23);
    }
    // ONNX with external data, as a folder and as the .onnx file beside its data.
    let onnx = "fixtures/tensor/view/onnx_external";
    for (a, b) in [(onnx, onnx), (&format!("{onnx}/model.onnx") as &str, onnx)] {
        let (code, v) = diff_json(a, b);
        assert_eq!(code, 0, "{a} {b}: {v}");
        assert_eq!(v["summary"]["equal"], 2);
    }
    // A folder against a file with an edit.
    let (code, v) = diff_json("fixtures/diff/base_sharded", "fixtures/diff/embed_rows.pt");
    assert_eq!(code, 1);
    assert_eq!(
        v["summary"]["changed_tensors"],
        serde_json::json!(["embed.weight"])
    );
}

#[test]
fn diff_human_output_and_exit_codes() {
    let out = assay(&[
        "diff",
        "fixtures/diff/base.safetensors",
        "fixtures/diff/lora.safetensors",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(text.contains("changed (4):"), "{text}");
    assert!(text.contains("~ layers.0.q.weight  F32 [32, 32]"), "{text}");
    assert!(text.contains("rank 4"), "{text}");
    let last = text.lines().last().unwrap();
    assert!(
        last.starts_with("verdict: merged low-rank adapter"),
        "{last}"
    );
    // --fail-on localised: an adapter passes, a rank-1 edit fails.
    let lora = assay(&[
        "diff",
        "fixtures/diff/base.safetensors",
        "fixtures/diff/lora.safetensors",
        "--fail-on",
        "localised",
    ]);
    assert_eq!(lora.status.code(), Some(0));
    let rome = assay(&[
        "diff",
        "fixtures/diff/base.safetensors",
        "fixtures/diff/rome.safetensors",
        "--fail-on",
        "localised",
    ]);
    assert_eq!(rome.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&rome.stdout).contains("verdict: localised edit"));
    let never = assay(&[
        "diff",
        "fixtures/diff/base.safetensors",
        "fixtures/diff/finetune.pt",
        "--fail-on",
        "never",
    ]);
    assert_eq!(never.status.code(), Some(0));
    // Unreadable input and folders without weights are usage errors.
    let missing = assay(&[
        "diff",
        "fixtures/diff/base.safetensors",
        "fixtures/diff/nope.pt",
    ]);
    assert_eq!(missing.status.code(), Some(2));
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("README.md"), "no weights").unwrap();
    let none = assay(&[
        "diff",
        "fixtures/diff/base.safetensors",
        empty.path().to_str().unwrap(),
    ]);
    assert_eq!(none.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&none.stderr).contains("no weight file"));
    // A folder with one unreadable weight file: the rest is compared, the report is
    // written, and the exit code says it is incomplete.
    let mixed = tempfile::tempdir().unwrap();
    for f in [
        "fixtures/diff/base.safetensors",
        "fixtures/benign/numpy/structured.npy",
    ] {
        let p = root().join(f);
        std::fs::copy(&p, mixed.path().join(p.file_name().unwrap())).unwrap();
    }
    let (code, v) = diff_json(
        "fixtures/diff/base.safetensors",
        mixed.path().to_str().unwrap(),
    );
    assert_eq!(code, 2);
    assert_eq!(v["summary"]["equal"], 23);
    assert!(
        v["summary"]["problems"][0]
            .as_str()
            .unwrap()
            .contains("structured.npy")
    );
}

/// Raw row-major bytes of a tensor (gathering a strided view), independent of the
/// converter's code.
fn row_major(t: &assay_tensor::Tensor) -> Vec<u8> {
    if let Some(b) = t.contiguous_bytes() {
        return b.to_vec();
    }
    let es = t.dtype.size().unwrap() as u64;
    let mut out = Vec::new();
    let n = t.numel();
    let mut idx = vec![0u64; t.shape.len()];
    for _ in 0..n {
        let off: u64 = idx.iter().zip(&t.strides).map(|(i, s)| i * s).sum::<u64>() * es;
        out.extend_from_slice(&t.bytes()[off as usize..(off + es) as usize]);
        for d in (0..idx.len()).rev() {
            idx[d] += 1;
            if idx[d] < t.shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    out
}

fn fixture_python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ASSAY_FIXTURE_PYTHON") {
        return Some(PathBuf::from(p));
    }
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("ASSAY_FIXTURE_PYTHON is not set; .ci/run must provide a Python with `safetensors`");
    }
    eprintln!("skipping the Python check: set ASSAY_FIXTURE_PYTHON to a Python with `safetensors`");
    None
}

#[test]
fn convert_round_trips_torch_checkpoints_exactly() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["tied_zip.pt", "tied_legacy.pt"] {
        let input = root().join("fixtures/convert").join(f);
        let out_path = dir.path().join(format!("{f}.safetensors"));
        let out = assay(&[
            "convert",
            input.to_str().unwrap(),
            out_path.to_str().unwrap(),
        ]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{f}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("1 strided tensor(s) made contiguous"),
            "{text}"
        );
        // Pure Rust: read both through the tensor view and compare dtype, shape, bytes.
        let src = std::fs::read(&input).unwrap();
        let dst = std::fs::read(&out_path).unwrap();
        let limits = assay_tensor::ReadLimits::default();
        let a = assay_tensor::read(&src, &limits).unwrap();
        let b = assay_tensor::read(&dst, &limits).unwrap();
        assert_eq!(b.format, assay_tensor::TensorFormat::Safetensors);
        assert!(b.problems.is_empty() && b.unclaimed.is_empty());
        // 15 tensors, one of them also under a second key.
        assert_eq!(a.tensors.len(), 15);
        assert_eq!(a.aliases.len(), 1, "{:?}", a.aliases);
        let named = a.named_tensors();
        assert_eq!(named.len(), b.tensors.len());
        for t in &named {
            let u = b
                .get(&t.name)
                .unwrap_or_else(|| panic!("{f}: {} missing", t.name));
            assert_eq!(u.dtype, t.dtype, "{}", t.name);
            assert_eq!(u.shape, t.shape, "{}", t.name);
            assert!(u.is_contiguous());
            assert_eq!(row_major(u), row_major(t), "{f}: {} bytes", t.name);
        }
        // The header: 8-byte aligned, metadata {"format":"pt"}.
        let n = u64::from_le_bytes(dst[..8].try_into().unwrap()) as usize;
        assert_eq!(n % 8, 0);
        let header: Value = serde_json::from_slice(&dst[8..8 + n]).unwrap();
        assert_eq!(header["__metadata__"], serde_json::json!({"format": "pt"}));
        // Tied weights: both names, same bytes, separate ranges.
        assert_ne!(
            header["embed.weight"]["data_offsets"],
            header["lm_head.weight"]["data_offsets"]
        );
        assert_eq!(
            row_major(b.get("embed.weight").unwrap()),
            row_major(b.get("lm_head.weight").unwrap())
        );
        // The real library reads it and finds what torch saved.
        if let Some(py) = fixture_python() {
            let check = Command::new(py)
                .arg(root().join("fixtures/convert/check.py"))
                .arg(root().join("fixtures/convert/expected.json"))
                .arg(&out_path)
                .arg(&input)
                .output()
                .expect("run python");
            assert!(
                check.status.success(),
                "{f}: {}{}",
                String::from_utf8_lossy(&check.stdout),
                String::from_utf8_lossy(&check.stderr)
            );
        }
    }
    // No temporary file left behind.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn convert_refuses_unsafe_checkpoints_and_existing_outputs() {
    let dir = tempfile::tempdir().unwrap();
    for (f, rule) in [
        (
            "fixtures/malicious/torch/zip_injected_data_pkl.pt",
            "PKL001",
        ),
        ("fixtures/malicious/torch/legacy_injected.pt", "PKL001"),
        ("fixtures/benign/torch/whole_module.pt", "PKL003"),
        ("examples/suspicious-model/optimizer.pt", "PKL001"),
    ] {
        let out_path = dir.path().join("out.safetensors");
        let out = assay(&["convert", f, out_path.to_str().unwrap(), "--force"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{f}: {err}");
        assert!(err.contains("refused") && err.contains(rule), "{f}: {err}");
        assert!(!out_path.exists(), "{f}: nothing may be written");
    }
    // An existing output is kept unless --force.
    let out_path = dir.path().join("exists.safetensors");
    std::fs::write(&out_path, b"keep").unwrap();
    let input = "fixtures/convert/tied_zip.pt";
    let out = assay(&["convert", input, out_path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    assert_eq!(std::fs::read(&out_path).unwrap(), b"keep");
    let out = assay(&[
        "convert",
        input,
        out_path.to_str().unwrap(),
        "--force",
        "-q",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    assert_ne!(std::fs::read(&out_path).unwrap(), b"keep");
    // A stride-0 view of 2^30 elements over one stored float: refused, not written.
    let bomb_out = dir.path().join("bomb.safetensors");
    let out = assay(&[
        "convert",
        "fixtures/convert/stride0_bomb.pt",
        bomb_out.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("would expand"));
    assert!(!bomb_out.exists());
    // ... and diff does not copy it either: the same view of the same bytes is equal.
    let out = assay(&[
        "diff",
        "fixtures/convert/stride0_bomb.pt",
        "fixtures/convert/stride0_bomb.pt",
    ]);
    assert_eq!(out.status.code(), Some(0));
    // Not a checkpoint.
    let out = assay(&[
        "convert",
        "fixtures/diff/expected.json",
        dir.path().join("x").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
}

/// Keras weights (HDF5 datasets, also inside a `.keras` archive) convert to safetensors
/// byte for byte; the EvilModel variant is refused by its TEN004 finding.
#[test]
fn convert_reads_keras_weights() {
    let dir = tempfile::tempdir().unwrap();
    let limits = assay_tensor::ReadLimits::default();
    for f in [
        "fixtures/tensor/stage/benign/keras_mlp.keras",
        "fixtures/tensor/stage/benign/keras_mlp_legacy.h5",
    ] {
        let out_path = dir.path().join("k.safetensors");
        let out = assay(&["convert", f, out_path.to_str().unwrap(), "--force"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{f}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let src = std::fs::read(root().join(f)).unwrap();
        let dst = std::fs::read(&out_path).unwrap();
        let a = assay_tensor::read(&src, &limits).unwrap();
        let b = assay_tensor::read(&dst, &limits).unwrap();
        assert_eq!(
            a.tensors.len(),
            8,
            "{f}: four Dense layers, kernel and bias"
        );
        assert_eq!(b.tensors.len(), a.tensors.len());
        for t in &a.tensors {
            let u = b.get(&t.name).unwrap();
            assert_eq!((u.dtype, &u.shape), (t.dtype, &t.shape), "{f}:{}", t.name);
            assert_eq!(row_major(u), row_major(t), "{f}:{} bytes", t.name);
        }
    }
    let out_path = dir.path().join("evil.safetensors");
    let out = assay(&[
        "convert",
        "fixtures/tensor/stage/malicious/evilmodel_elf.keras",
        out_path.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("TEN004"), "{err}");
    assert!(!out_path.exists());
}
