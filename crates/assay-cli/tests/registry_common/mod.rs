//! Shared by the registry's end-to-end tests (registry_e2e.rs: SQLite and the in-process
//! scan loop; registry_pg_e2e.rs: PostgreSQL and `assay worker` processes).
#![allow(dead_code)]

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

pub const SCRIPT: &str = r#"
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

pub struct Server(pub Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn assay() -> Command {
    Command::new(env!("CARGO_BIN_EXE_assay"))
}

pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run assay");
    assert!(
        out.status.success(),
        "{:?}: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// A Python with `huggingface_hub` (`ASSAY_HF_PYTHON`); `None` (skip, with a note) when it
/// is unset outside CI; under CI=true a missing one fails the test.
pub fn hf_python() -> Option<OsString> {
    let Some(python) = std::env::var_os("ASSAY_HF_PYTHON") else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("ASSAY_HF_PYTHON is not set; .ci/run must install huggingface_hub");
        }
        eprintln!("skipping: set ASSAY_HF_PYTHON to a Python with `huggingface_hub` installed");
        return None;
    };
    Some(python)
}

/// Starts an `assay` process whose stderr is collected into the returned lines (a thread
/// keeps reading it).
pub fn spawn_logged(cmd: &mut Command) -> (Server, Arc<Mutex<Vec<String>>>) {
    let mut child = cmd.stderr(Stdio::piped()).spawn().expect("start assay");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let stderr = child.stderr.take().unwrap();
    let l = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            l.lock().unwrap().push(line);
        }
    });
    (Server(child), lines)
}

/// Waits until a collected line contains `needle`; answers that line.
pub fn wait_for_line(lines: &Arc<Mutex<Vec<String>>>, needle: &str, server: &mut Server) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if let Some(l) = lines.lock().unwrap().iter().find(|l| l.contains(needle)) {
            return l.clone();
        }
        if let Ok(Some(status)) = server.0.try_wait() {
            panic!("assay exited ({status}): {:?}", lines.lock().unwrap());
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {needle:?} in {:?}",
            lines.lock().unwrap()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Starts `assay serve ARGS --listen 127.0.0.1:0`; answers the server, its URL and its
/// collected stderr.
pub fn serve(args: &[&std::ffi::OsStr]) -> (Server, String, Arc<Mutex<Vec<String>>>) {
    serve_env(args, &[])
}

/// [`serve`] with extra environment variables (e.g. a blob store's credentials).
pub fn serve_env(
    args: &[&std::ffi::OsStr],
    env: &[(String, String)],
) -> (Server, String, Arc<Mutex<Vec<String>>>) {
    let (mut server, lines) = spawn_logged(
        assay()
            .arg("serve")
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .envs(env.iter().map(|(k, v)| (k, v))),
    );
    let line = wait_for_line(&lines, "listening on ", &mut server);
    let url = line
        .split("listening on ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    (server, url, lines)
}

/// The done-means flow against a running registry whose bootstrap admin token is in
/// `data/admin-token`: two tenants, a real model admitted and a malicious one refused (by
/// `assay push`), then the real huggingface_hub client downloads the real model byte for
/// byte, is refused the malicious one with its reasons, and the other tenant sees neither.
pub fn done_means(url: &str, data: &Path, python: &OsString) -> Tokens {
    done_means_with(url, data, python, &examples().join("demo-model"))
}

/// [`done_means`] with `clean` as the real model.
pub fn done_means_with(url: &str, data: &Path, python: &OsString, clean: &Path) -> Tokens {
    let url = url.to_string();
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

    let pushed = assay()
        .arg("push")
        .arg(clean)
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
        .arg(clean)
        .args(["acme/demo", "--server", &url, "--token", &reader])
        .output()
        .unwrap();
    assert_eq!(denied.status.code(), Some(2));

    downloads_of(&url, &reader, &other, python, clean);

    // The audit log names decisions, never tokens.
    let audit = std::fs::read_to_string(data.join("audit.log")).unwrap();
    for t in [&admin, &acme, &other, &writer, &reader] {
        assert!(!audit.contains(t.as_str()));
    }
    assert!(audit.contains("\"decision\":\"refused\""));
    Tokens { reader, other }
}

/// Tokens of the done-means flow: a read token of `acme` and the other tenant's admin.
pub struct Tokens {
    pub reader: String,
    pub other: String,
}

/// huggingface_hub against `url`: acme/demo downloads byte for byte with `reader`,
/// acme/evil is refused with its reasons, and `other` (another tenant) sees neither.
pub fn downloads(url: &str, reader: &str, other: &str, python: &OsString) {
    downloads_of(url, reader, other, python, &examples().join("demo-model"))
}

/// [`downloads`] where acme/demo holds the folder `clean`.
pub fn downloads_of(url: &str, reader: &str, other: &str, python: &OsString, clean: &Path) {
    let out = Command::new(python)
        .arg("-c")
        .arg(SCRIPT)
        .arg(url)
        .arg(reader)
        .arg(other)
        .arg(clean)
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
}
