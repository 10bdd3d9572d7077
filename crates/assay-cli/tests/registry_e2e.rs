//! End to end: `assay serve` on an ephemeral port, `assay tenant create`, `assay token
//! create` and `assay push` of a real and a malicious model, then the real
//! `huggingface_hub` Python client (`snapshot_download`, `hf_hub_download`) downloads.
//!
//! The same run goes against each blob store: the data folder (default), Azure Blob Storage
//! (`--store az://…` on Azurite) and S3 (`--store s3://…` on moto), the latter two with a
//! model that holds a file of several upload parts (multipart upload).
//!
//! Needs `ASSAY_HF_PYTHON`: a Python with `huggingface_hub` installed (.ci/run makes one);
//! the store runs also need `ASSAY_TEST_AZURITE` / `ASSAY_TEST_S3` (see
//! crates/assay-registry/tests/blobstore.rs; .ci/run starts both servers). Outside CI a test
//! is skipped with a note when its variables are unset; under CI=true it fails.

mod registry_common;

use registry_common::{
    assay, done_means, done_means_with, examples, hf_python, run_ok, serve, serve_env,
    spawn_logged, wait_for_line,
};
use std::path::{Path, PathBuf};
use std::process::Command;

#[test]
fn huggingface_hub_downloads_admitted_models_only() {
    let Some(python) = hf_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("registry");
    let (server, url, _log) = serve(&["--data".as_ref(), data.as_os_str()]);
    done_means(&url, &data, &python);
    assert!(data.join("blobs").is_dir());
    drop(server);
}

fn env_or_skip(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{var} is not set; .ci/run must provide {what}");
            }
            eprintln!("skipping: set {var} to {what}");
            None
        }
    }
}

/// Azurite's documented development account key (public, not a secret).
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{tag}-{}-{nanos}", std::process::id())
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The demo model plus a weights file of several upload parts (~20 MiB of sane float32s).
fn larger_model(dir: &Path) -> PathBuf {
    let m = dir.join("model");
    std::fs::create_dir_all(&m).unwrap();
    for f in std::fs::read_dir(examples().join("demo-model")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), m.join(f.file_name())).unwrap();
    }
    let n = 5 << 20; // float32 values
    let header = format!(
        r#"{{"weight":{{"dtype":"F32","shape":[{},1024],"data_offsets":[0,{}]}}}}"#,
        n / 1024,
        n * 4
    );
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    let mut x: u32 = 12345;
    for _ in 0..n {
        // A small LCG mapped to [-0.05, 0.05): ordinary-looking weights.
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let u = (x >> 8) as f32 / (1u32 << 24) as f32;
        bytes.extend_from_slice(&((u - 0.5) * 0.1).to_le_bytes());
    }
    std::fs::write(m.join("model.safetensors"), bytes).unwrap();
    m
}

/// The done-means flow with blobs in `--store url` (credentials in `env`), then a check
/// that the blobs went to the object store, encrypted, and not to the data folder. With
/// `worker`, the server has no scan loop and an `assay worker` with the same `--store`
/// (and no blobs of its own) scans.
fn over_store(url: &str, env: Vec<(String, String)>, worker: bool) {
    let Some(python) = hf_python() else {
        return;
    };
    use assay_registry::blob::{BlobStore, blob_key};
    use sha2::Digest;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("registry");
    let model = larger_model(dir.path());
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "--data".as_ref(),
        data.as_os_str(),
        "--store".as_ref(),
        url.as_ref(),
    ];
    if worker {
        args.extend([std::ffi::OsStr::new("--workers"), std::ffi::OsStr::new("0")]);
    }
    let (server, base, log) = serve_env(&args, &env);
    assert!(
        log.lock().unwrap().iter().any(|l| l.contains(url)),
        "the start-up line names the store"
    );
    let scanner = worker.then(|| {
        let (mut w, wlog) = spawn_logged(
            assay()
                .arg("worker")
                .arg("--data")
                .arg(&data)
                .args(["--store", url])
                .envs(env.iter().map(|(k, v)| (k, v))),
        );
        let line = wait_for_line(&wlog, "scanning jobs from", &mut w);
        assert!(line.contains(url), "{line}");
        (w, wlog)
    });
    done_means_with(&base, &data, &python, &model);
    if let Some((w, wlog)) = scanner {
        // The worker read the blobs from the store and decided both pushes.
        let lines = wlog.lock().unwrap().clone();
        assert!(
            lines.iter().any(|l| l.contains(" admitted in "))
                && lines.iter().any(|l| l.contains(" refused in ")),
            "{lines:?}"
        );
        drop(w);
    }
    drop(server);
    assert!(
        !data.join("blobs").exists(),
        "--store must keep blobs out of the data folder"
    );
    let objects = assay_registry::objstore::ObjectBlobStore::open_with_env(url, env).unwrap();
    let weights = std::fs::read(model.join("model.safetensors")).unwrap();
    let sha = hex::encode(sha2::Sha256::digest(&weights));
    // acme is the second tenant (the first is the system tenant of the bootstrap token).
    let key = blob_key(2, &sha);
    assert!(objects.exists(&key).unwrap(), "{key} not in the store");
    let mut window = vec![0u8; 4096];
    objects.read_at(&key, 4096, &mut window).unwrap();
    assert!(
        !weights.windows(64).any(|w| w == &window[..64]),
        "stored in clear"
    );
}

#[test]
fn huggingface_hub_downloads_from_azure_blob_storage() {
    let Some(ep) = env_or_skip("ASSAY_TEST_AZURITE", "an Azurite account URL (.ci/run)") else {
        return;
    };
    let env = pairs(&[
        ("AZURE_STORAGE_ACCOUNT_NAME", "devstoreaccount1"),
        ("AZURE_STORAGE_ACCOUNT_KEY", AZURITE_KEY),
        ("AZURE_STORAGE_ENDPOINT", &ep),
        ("AZURE_ALLOW_HTTP", "true"),
    ]);
    // An `assay worker` with the same --store does the scans here.
    over_store(&format!("az://assay-test/{}", unique("e2e")), env, true);
}

#[test]
fn huggingface_hub_downloads_from_s3() {
    let Some(ep) = env_or_skip("ASSAY_TEST_S3", "an S3 endpoint such as moto's (.ci/run)") else {
        return;
    };
    let env = pairs(&[
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT", &ep),
        ("AWS_ALLOW_HTTP", "true"),
    ]);
    over_store(&format!("s3://assay-test/{}", unique("e2e")), env, false);
}

const TLS_SCRIPT: &str = r#"
import json, sys, tempfile
from huggingface_hub import hf_hub_download
url, tok, want = sys.argv[1:4]
out = {}
try:
    f = hf_hub_download("acme/demo", "config.json", endpoint=url, token=tok, cache_dir=tempfile.mkdtemp())
    out["identical"] = open(f, "rb").read() == open(want, "rb").read()
except Exception as e:
    chain = []
    while e is not None and len(chain) < 10:
        chain.append(f"{type(e).__name__}: {e}")
        e = e.__cause__ or e.__context__
    out["error"] = " <- ".join(chain)
print(json.dumps(out))
"#;

/// `assay serve --tls-cert/--tls-key` with the test CA of assay-registry: `assay tenant`,
/// `token` and `push` over https (`--ca-cert` and `$ASSAY_CA_CERT`), `hf_hub_download` over
/// https trusting the CA through `SSL_CERT_FILE` (what huggingface_hub's httpx reads), and
/// refusals: no CA, plain HTTP to the TLS port, half or bad TLS flags.
#[test]
fn https_push_and_huggingface_hub_download() {
    let Some(python) = hf_python() else {
        return;
    };
    let tls = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assay-registry/tests/data/tls");
    let (ca, cert, key) = (
        tls.join("ca.pem"),
        tls.join("server.pem"),
        tls.join("server-key.pem"),
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("registry");

    // Both flags or neither; bad files are named and nothing is started.
    let half = assay()
        .args(["serve", "--data"])
        .arg(&data)
        .arg("--tls-cert")
        .arg(&cert)
        .output()
        .unwrap();
    assert_eq!(half.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&half.stderr).contains("--tls-key"));
    let bad = assay()
        .args(["serve", "--data"])
        .arg(&data)
        .args(["--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&key)
        .arg("--tls-key")
        .arg(&key)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let msg = String::from_utf8_lossy(&bad.stderr);
    assert!(
        msg.contains("server-key.pem") && msg.contains("no certificate"),
        "{msg}"
    );

    let (server, url, _log) = serve(&[
        "--data".as_ref(),
        data.as_os_str(),
        "--tls-cert".as_ref(),
        cert.as_os_str(),
        "--tls-key".as_ref(),
        key.as_os_str(),
    ]);
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let port = url.rsplit(':').next().unwrap().to_string();
    let url = format!("https://localhost:{port}");
    let admin = data.join("admin-token");

    // Without the CA the certificate is refused.
    let refused = assay()
        .args(["tenant", "create", "acme", "--server", &url, "--token"])
        .arg(&admin)
        .env_remove("ASSAY_CA_CERT")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let msg = String::from_utf8_lossy(&refused.stderr);
    assert!(msg.contains("certificate"), "{msg}");
    // Plain HTTP to the TLS port: a clear error.
    let plain = assay()
        .args(["tenant", "create", "acme", "--server"])
        .arg(format!("http://127.0.0.1:{port}"))
        .arg("--token")
        .arg(&admin)
        .output()
        .unwrap();
    assert_eq!(plain.status.code(), Some(2));
    let msg = String::from_utf8_lossy(&plain.stderr);
    assert!(msg.contains("400") && msg.contains("https://"), "{msg}");

    let acme = run_ok(
        assay()
            .args(["tenant", "create", "acme", "--server", &url, "--ca-cert"])
            .arg(&ca)
            .arg("--token")
            .arg(&admin),
    );
    let writer = run_ok(
        assay()
            .args([
                "token", "create", "--scope", "write", "--server", &url, "--token", &acme,
            ])
            .env("ASSAY_CA_CERT", &ca),
    );
    let clean = examples().join("demo-model");
    let pushed = assay()
        .arg("push")
        .arg(&clean)
        .args(["acme/demo", "--server", &url, "--token", &writer])
        .env("ASSAY_CA_CERT", &ca)
        .output()
        .unwrap();
    assert_eq!(
        pushed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    assert!(String::from_utf8_lossy(&pushed.stdout).contains("admitted"));

    let want = clean.join("config.json");
    let run = |trust: bool| -> serde_json::Value {
        let mut cmd = Command::new(&python);
        cmd.arg("-c")
            .arg(TLS_SCRIPT)
            .arg(&url)
            .arg(&acme)
            .arg(&want)
            .env("HF_HUB_DISABLE_TELEMETRY", "1")
            .env("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            .env_remove("HF_TOKEN")
            .env_remove("HF_ENDPOINT")
            .env_remove("REQUESTS_CA_BUNDLE")
            .env_remove("SSL_CERT_FILE")
            .env_remove("SSL_CERT_DIR");
        if trust {
            cmd.env("SSL_CERT_FILE", &ca).env("REQUESTS_CA_BUNDLE", &ca);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "python failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let v = run(true);
    assert_eq!(v["identical"], true, "{v}");
    let v = run(false);
    let e = v["error"].as_str().unwrap_or_default();
    assert!(
        e.to_lowercase().contains("certificate") || e.contains("SSL"),
        "huggingface_hub must refuse an untrusted server: {v}"
    );
    drop(server);
}
