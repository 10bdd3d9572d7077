//! End to end: `assay serve` on an ephemeral port, `assay tenant create`, `assay token
//! create` and `assay push` of a real and a malicious model, then the real
//! `huggingface_hub` Python client (`snapshot_download`, `hf_hub_download`) downloads.
//!
//! Needs `ASSAY_HF_PYTHON`: a Python with `huggingface_hub` installed (.ci/run makes one).
//! Outside CI the test is skipped with a note when it is unset; under CI=true it fails.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const SCRIPT: &str = r#"
import filecmp, json, os, sys, tempfile
import huggingface_hub
from huggingface_hub import snapshot_download, hf_hub_download
from huggingface_hub.utils import GatedRepoError, RepositoryNotFoundError

url, tok, other, clean_dir = sys.argv[1:5]
out = {"version": huggingface_hub.__version__}
cache = tempfile.mkdtemp()
p = snapshot_download("acme/demo", endpoint=url, token=tok, cache_dir=cache)
names = sorted(os.listdir(p))
out["files"] = names
out["identical"] = sorted(os.listdir(clean_dir)) == names and all(
    filecmp.cmp(os.path.join(p, n), os.path.join(clean_dir, n), shallow=False) for n in names)
f = hf_hub_download("acme/demo", "config.json", endpoint=url, token=tok, cache_dir=tempfile.mkdtemp())
out["single_identical"] = open(f, "rb").read() == open(os.path.join(clean_dir, "config.json"), "rb").read()
local = tempfile.mkdtemp()
snapshot_download("acme/demo", endpoint=url, token=tok, local_dir=local)
out["local_dir_identical"] = all(
    filecmp.cmp(os.path.join(local, n), os.path.join(clean_dir, n), shallow=False) for n in names)

def attempt(name, fn):
    try:
        fn()
        out[name] = {"raised": None}
    except Exception as e:
        out[name] = {"raised": type(e).__name__, "message": str(e),
                     "gated": isinstance(e, GatedRepoError),
                     "not_found": isinstance(e, RepositoryNotFoundError)}

attempt("evil_snapshot", lambda: snapshot_download("acme/evil", endpoint=url, token=tok, cache_dir=tempfile.mkdtemp()))
attempt("evil_file", lambda: hf_hub_download("acme/evil", "optimizer.pt", endpoint=url, token=tok, cache_dir=tempfile.mkdtemp()))
attempt("other_clean", lambda: snapshot_download("acme/demo", endpoint=url, token=other, cache_dir=tempfile.mkdtemp()))
attempt("other_evil", lambda: hf_hub_download("acme/evil", "config.json", endpoint=url, token=other, cache_dir=tempfile.mkdtemp()))
attempt("other_nothing", lambda: snapshot_download("acme/nothing-here", endpoint=url, token=other, cache_dir=tempfile.mkdtemp()))
print(json.dumps(out))
"#;

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn assay() -> Command {
    Command::new(env!("CARGO_BIN_EXE_assay"))
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run assay");
    assert!(
        out.status.success(),
        "{:?}: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Starts `assay serve` on an ephemeral port; answers it and the URL it prints.
fn start_server(data: &Path, extra: &[&std::ffi::OsStr]) -> (Server, String) {
    let mut child = assay()
        .args(["serve", "--data"])
        .arg(data)
        .args(["--listen", "127.0.0.1:0"])
        .args(extra)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let server = Server(child);
    let url = loop {
        let line = lines.next().expect("server output").unwrap();
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (server, url)
}

fn hf_python() -> Option<std::ffi::OsString> {
    let python = std::env::var_os("ASSAY_HF_PYTHON");
    if python.is_none() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("ASSAY_HF_PYTHON is not set; .ci/run must install huggingface_hub");
        }
        eprintln!("skipping: set ASSAY_HF_PYTHON to a Python with `huggingface_hub` installed");
    }
    python
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

#[test]
fn huggingface_hub_downloads_admitted_models_only() {
    let Some(python) = hf_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("registry");
    let (server, url) = start_server(&data, &[]);
    let admin_file = data.join("admin-token");
    let admin = std::fs::read_to_string(&admin_file)
        .unwrap()
        .trim()
        .to_string();

    let acme = run_ok(assay().args([
        "tenant", "create", "acme", "--server", &url, "--token", &admin,
    ]));
    let other = run_ok(
        assay()
            .args(["tenant", "create", "other", "--server", &url, "--token"])
            .arg(&admin_file),
    );
    assert!(acme.starts_with("asy_") && other.starts_with("asy_"));
    let writer = run_ok(assay().args([
        "token", "create", "--scope", "write", "--server", &url, "--token", &acme,
    ]));
    let reader = run_ok(assay().args([
        "token", "create", "--scope", "read", "--server", &url, "--token", &acme,
    ]));

    let clean = examples().join("demo-model");
    let pushed = assay()
        .arg("push")
        .arg(&clean)
        .args(["acme/demo", "--server", &url, "--token", &writer])
        .output()
        .unwrap();
    assert_eq!(
        pushed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    assert!(String::from_utf8_lossy(&pushed.stdout).contains("admitted"));
    let evil = assay()
        .arg("push")
        .arg(examples().join("suspicious-model"))
        .args(["acme/evil", "--server", &url, "--token", &writer])
        .output()
        .unwrap();
    assert_eq!(
        evil.status.code(),
        Some(1),
        "a malicious model must be refused"
    );
    assert!(String::from_utf8_lossy(&evil.stdout).contains("PKL001"));
    // A reader cannot push.
    let denied = assay()
        .arg("push")
        .arg(&clean)
        .args(["acme/demo", "--server", &url, "--token", &reader])
        .output()
        .unwrap();
    assert_eq!(denied.status.code(), Some(2));

    let out = Command::new(&python)
        .arg("-c")
        .arg(SCRIPT)
        .arg(&url)
        .arg(&reader)
        .arg(&other)
        .arg(&clean)
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        .env_remove("HF_TOKEN")
        .env_remove("HF_ENDPOINT")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("huggingface_hub {}", v["version"]);
    assert_eq!(v["identical"], true, "{v}");
    assert_eq!(v["single_identical"], true);
    assert_eq!(v["local_dir_identical"], true);
    for k in ["evil_snapshot", "evil_file"] {
        assert_eq!(v[k]["gated"], true, "{k}: {v}");
        let msg = v[k]["message"].as_str().unwrap();
        assert!(
            msg.contains("refused") && msg.contains("PKL001"),
            "{k}: {msg}"
        );
    }
    for k in ["other_clean", "other_evil", "other_nothing"] {
        assert_eq!(v[k]["not_found"], true, "{k}: {v}");
    }
    // The other tenant's errors are the same as for a repository that does not exist.
    let strip = |s: &str| {
        s.replace("acme/demo", "X")
            .replace("acme/evil", "X")
            .replace("acme/nothing-here", "X")
    };
    let a = strip(v["other_clean"]["message"].as_str().unwrap());
    let n = strip(v["other_nothing"]["message"].as_str().unwrap());
    assert_eq!(a.lines().next(), n.lines().next());

    // The audit log names decisions, never tokens.
    let audit = std::fs::read_to_string(data.join("audit.log")).unwrap();
    for t in [&admin, &acme, &other, &writer, &reader] {
        assert!(!audit.contains(t.as_str()));
    }
    assert!(audit.contains("\"decision\":\"refused\""));
    drop(server);
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

    let (server, url) = start_server(
        &data,
        &[
            "--tls-cert".as_ref(),
            cert.as_os_str(),
            "--tls-key".as_ref(),
            key.as_os_str(),
        ],
    );
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
