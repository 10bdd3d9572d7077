//! Interoperability with the reference OpenSSF model-signing tool (`model_signing`,
//! PyPI `model-signing` 1.x): signatures made by either side verify with the other, and
//! a one-byte change is caught by both. CI installs the tool (`.ci/run`) and points
//! `ASSAY_MODEL_SIGNING` at it; there a missing tool fails the test. Elsewhere the test
//! prints a note and skips.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn assay() -> Command {
    Command::new(env!("CARGO_BIN_EXE_assay"))
}

/// The `model_signing` executable, or `None` (outside CI only) to skip.
fn reference_tool() -> Option<PathBuf> {
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let Some(p) = std::env::var_os("ASSAY_MODEL_SIGNING") else {
        assert!(
            !in_ci,
            "ASSAY_MODEL_SIGNING is not set: .ci/run must install model-signing and export it"
        );
        eprintln!("note: ASSAY_MODEL_SIGNING is not set; skipping the model_signing interop test");
        return None;
    };
    let p = PathBuf::from(p);
    // A relative path is relative to the workspace root (where .ci/run runs).
    let p = if p.is_relative() {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(p)
    } else {
        p
    };
    assert!(
        p.exists(),
        "ASSAY_MODEL_SIGNING={} does not exist",
        p.display()
    );
    Some(p)
}

fn run(mut c: Command) -> Output {
    let out = c.output().expect("cannot run command");
    eprintln!(
        "$ {:?}\n{}{}",
        c,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn ok(c: Command) -> Output {
    let out = run(c);
    assert!(out.status.success(), "command failed");
    out
}

fn fails(c: Command) -> Output {
    let out = run(c);
    assert_eq!(
        out.status.code(),
        Some(1),
        "command should fail with exit 1"
    );
    out
}

struct Env {
    dir: tempfile::TempDir,
    tool: PathBuf,
    python: PathBuf,
}

impl Env {
    fn new() -> Option<Env> {
        let tool = reference_tool()?;
        let python = tool.with_file_name("python");
        Some(Env {
            dir: tempfile::tempdir().unwrap(),
            tool,
            python,
        })
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A small model folder whose names exercise the reference's ordering and skipping
    /// rules: `a/x` sorts before `a-c/z` and `a.txt`; top-level `.git*` entries are
    /// skipped but `.gitmodules` and nested `.gitignore` are signed.
    fn model(&self, name: &str) -> PathBuf {
        let m = self.path(name);
        let files: [(&str, &[u8]); 10] = [
            ("config.json", b"{\"model_type\": \"bert\"}"),
            ("model.safetensors", &[0x42; 4096]),
            ("a/x", b"x"),
            ("a-c/z", b"z"),
            ("a.txt", b"a"),
            ("tokenizer/vocab.txt", b"[PAD]\n[UNK]\n"),
            (".git/HEAD", b"ref: refs/heads/main\n"),
            (".gitattributes", b"*.safetensors filter=lfs\n"),
            (".gitmodules", b""),
            ("tokenizer/.gitignore", b"*.tmp\n"),
        ];
        for (rel, data) in files {
            let p = m.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, data).unwrap();
        }
        m
    }

    /// An unencrypted PKCS#8 private key and its public key, made by `cryptography`.
    fn keys(&self, curve: &str) -> (PathBuf, PathBuf) {
        let (key, public) = (
            self.path(&format!("{curve}.key")),
            self.path(&format!("{curve}.pub")),
        );
        let script = format!(
            r#"
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives import serialization as s
k = ec.generate_private_key(ec.{curve}())
open(r"{key}", "wb").write(k.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, s.NoEncryption()))
open(r"{public}", "wb").write(k.public_key().public_bytes(s.Encoding.PEM, s.PublicFormat.SubjectPublicKeyInfo))
"#,
            key = key.display(),
            public = public.display()
        );
        let mut c = Command::new(&self.python);
        c.args(["-c", &script]);
        ok(c);
        (key, public)
    }

    fn ms(&self) -> Command {
        Command::new(&self.tool)
    }

    /// The reference tool's certificate verification of `model` against `chain`.
    fn ms_verify_cert(&self, model: &Path, chain: &Path, sig: &Path) -> Command {
        let mut c = self.ms();
        c.args(["verify", "certificate"])
            .arg(model)
            .arg("--certificate_chain")
            .arg(chain)
            .arg("--signature")
            .arg(sig);
        c
    }
}

/// Assay's certificate verification of `model` against `chain`.
fn assay_verify_cert(model: &Path, chain: &Path, sig: &Path) -> Command {
    let mut c = assay();
    c.arg("verify")
        .arg(model)
        .arg("--certificate-chain")
        .arg(chain)
        .arg("--signature")
        .arg(sig);
    c
}

fn flip_one_byte(p: &Path) {
    let mut b = fs::read(p).unwrap();
    b[0] ^= 1;
    fs::write(p, b).unwrap();
}

fn subject_digest(bundle: &Path) -> String {
    let b: serde_json::Value = serde_json::from_slice(&fs::read(bundle).unwrap()).unwrap();
    let payload = base64_decode(b["dsseEnvelope"]["payload"].as_str().unwrap());
    let p: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    p["subject"][0]["digest"]["sha256"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Standard base64 (the test avoids a dependency for this one use).
fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("bad base64"),
    };
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::new();
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= u32::from(val(c)) << (18 - 6 * i);
        }
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

fn key_round_trip(curve: &str) {
    let Some(env) = Env::new() else { return };
    let (key, public) = env.keys(curve);

    // model_signing signs, assay verifies.
    let m = env.model("by-python");
    let sig = env.path("python.sig");
    let mut c = env.ms();
    c.args(["sign", "key"])
        .arg(&m)
        .arg("--private_key")
        .arg(&key)
        .arg("--signature")
        .arg(&sig);
    ok(c);
    let mut c = assay();
    c.arg("verify")
        .arg(&m)
        .arg("--key")
        .arg(&public)
        .arg("--signature")
        .arg(&sig);
    ok(c);

    // assay signs the same folder: same root digest; model_signing verifies it.
    let ours = env.path("assay.sig");
    let mut c = assay();
    c.arg("sign")
        .arg(&m)
        .arg("--key")
        .arg(&key)
        .arg("--signature")
        .arg(&ours);
    ok(c);
    assert_eq!(
        subject_digest(&sig),
        subject_digest(&ours),
        "root digests differ"
    );
    let mut c = env.ms();
    c.args(["verify", "key"])
        .arg(&m)
        .arg("--public_key")
        .arg(&public)
        .arg("--signature")
        .arg(&ours);
    ok(c);

    // One byte changed: both tools refuse both signatures, and assay names the file.
    flip_one_byte(&m.join("model.safetensors"));
    for s in [&sig, &ours] {
        let mut c = env.ms();
        c.args(["verify", "key"])
            .arg(&m)
            .arg("--public_key")
            .arg(&public)
            .arg("--signature")
            .arg(s);
        fails(c);
        let mut c = assay();
        c.arg("verify")
            .arg(&m)
            .arg("--key")
            .arg(&public)
            .arg("--signature")
            .arg(s);
        let out = fails(c);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("modified  model.safetensors"), "{text}");
    }
}

#[test]
fn p256_key_signatures_interoperate() {
    key_round_trip("SECP256R1");
}

#[test]
fn p384_key_signatures_interoperate() {
    key_round_trip("SECP384R1");
}

#[test]
fn p521_key_signatures_interoperate() {
    key_round_trip("SECP521R1");
}

#[test]
fn shipped_example_models_round_trip() {
    let Some(env) = Env::new() else { return };
    let (key, public) = env.keys("SECP256R1");
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    for ex in ["demo-model", "suspicious-model"] {
        let m = env.path(ex);
        fs::create_dir_all(&m).unwrap();
        for f in fs::read_dir(examples.join(ex)).unwrap() {
            let f = f.unwrap();
            fs::copy(f.path(), m.join(f.file_name())).unwrap();
        }
        let (py, ours) = (
            env.path(&format!("{ex}.py.sig")),
            env.path(&format!("{ex}.assay.sig")),
        );
        let mut c = env.ms();
        c.args(["sign", "key"])
            .arg(&m)
            .arg("--private_key")
            .arg(&key)
            .arg("--signature")
            .arg(&py);
        ok(c);
        let mut c = assay();
        c.arg("sign")
            .arg(&m)
            .arg("--key")
            .arg(&key)
            .arg("--signature")
            .arg(&ours);
        ok(c);
        assert_eq!(subject_digest(&py), subject_digest(&ours), "{ex}");
        let mut c = assay();
        c.arg("verify")
            .arg(&m)
            .arg("--key")
            .arg(&public)
            .arg("--signature")
            .arg(&py);
        ok(c);
        let mut c = env.ms();
        c.args(["verify", "key"])
            .arg(&m)
            .arg("--public_key")
            .arg(&public)
            .arg("--signature")
            .arg(&ours);
        ok(c);
    }
}

#[test]
fn signature_inside_the_model_and_default_path() {
    let Some(env) = Env::new() else { return };
    let (key, public) = env.keys("SECP256R1");
    let m = env.model("inside");
    // The reference writes model.sig inside the model and leaves it out of the hash.
    let mut c = env.ms();
    c.current_dir(&m)
        .args(["sign", "key", ".", "--private_key"])
        .arg(&key);
    ok(c);
    assert!(m.join("model.sig").exists());
    // assay's default signature path is model.sig in the current folder too.
    let mut c = assay();
    c.current_dir(&m)
        .args(["verify", ".", "--key"])
        .arg(&public);
    ok(c);
    let mut c = assay();
    c.current_dir(&m).args(["sign", ".", "--key"]).arg(&key);
    ok(c);
    let mut c = env.ms();
    c.current_dir(&m)
        .args([
            "verify",
            "key",
            ".",
            "--signature",
            "model.sig",
            "--public_key",
        ])
        .arg(&public);
    ok(c);
}

#[test]
fn certificate_signatures_interoperate() {
    let Some(env) = Env::new() else { return };
    let d = env.dir.path();
    // root (P-384) → intermediate (P-256) → signing certificate (P-256, codeSigning).
    let script = r#"
import datetime, sys
from cryptography import x509
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID
from cryptography.hazmat.primitives import hashes, serialization as s
from cryptography.hazmat.primitives.asymmetric import ec
d = sys.argv[1]
now = datetime.datetime.now(datetime.timezone.utc)
def name(n): return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, n)])
def cert(subject, key, issuer, issuer_key, ca, h):
    b = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
    else:
        b = b.add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
    return b.sign(issuer_key, h)
rk = ec.generate_private_key(ec.SECP384R1()); ik = ec.generate_private_key(ec.SECP256R1())
lk = ec.generate_private_key(ec.SECP256R1())
root = cert("interop root", rk, "interop root", rk, True, hashes.SHA384())
inter = cert("interop intermediate", ik, "interop root", rk, True, hashes.SHA384())
leaf = cert("interop signer", lk, "interop intermediate", ik, False, hashes.SHA256())
for n, c in [("root", root), ("int", inter), ("leaf", leaf)]:
    open(f"{d}/{n}.pem", "wb").write(c.public_bytes(s.Encoding.PEM))
open(f"{d}/leaf.key", "wb").write(lk.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, s.NoEncryption()))
"#;
    let mut c = Command::new(&env.python);
    c.args(["-c", script]).arg(d);
    ok(c);
    let m = env.model("cert-model");
    let (root, int, leaf, key) = (
        d.join("root.pem"),
        d.join("int.pem"),
        d.join("leaf.pem"),
        d.join("leaf.key"),
    );

    let sig = d.join("python-cert.sig");
    let mut c = env.ms();
    c.args(["sign", "certificate"])
        .arg(&m)
        .arg("--private_key")
        .arg(&key)
        .arg("--signing_certificate")
        .arg(&leaf)
        .arg("--certificate_chain")
        .arg(&int)
        .arg("--signature")
        .arg(&sig);
    ok(c);
    ok(assay_verify_cert(&m, &root, &sig));

    let ours = d.join("assay-cert.sig");
    let mut c = assay();
    c.arg("sign")
        .arg(&m)
        .arg("--key")
        .arg(&key)
        .arg("--signing-certificate")
        .arg(&leaf)
        .arg("--certificate-chain")
        .arg(&int)
        .arg("--signature")
        .arg(&ours);
    ok(c);
    ok(env.ms_verify_cert(&m, &root, &ours));

    // Trusting only the intermediate is refused by both.
    for s in [&sig, &ours] {
        fails(assay_verify_cert(&m, &int, s));
        fails(env.ms_verify_cert(&m, &int, s));
    }

    flip_one_byte(&m.join("config.json"));
    for s in [&sig, &ours] {
        fails(assay_verify_cert(&m, &root, s));
        fails(env.ms_verify_cert(&m, &root, s));
    }
}

// Assay-only behaviour of the commands (no reference tool needed).

fn test_key(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../assay-sign/tests/data")
        .join(name)
}

fn small_model(dir: &Path) -> PathBuf {
    let m = dir.join("m");
    for (rel, data) in [
        ("w.bin", "weights"),
        ("cfg/config.json", "{}"),
        ("gone.txt", "x"),
    ] {
        let p = m.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, data).unwrap();
    }
    m
}

#[test]
fn verify_reports_tampering_as_json_with_exit_codes() {
    let d = tempfile::tempdir().unwrap();
    let m = small_model(d.path());
    let sig = d.path().join("m.sig");
    let mut c = assay();
    c.arg("sign")
        .arg(&m)
        .arg("--key")
        .arg(test_key("p384.pem"))
        .arg("--signature")
        .arg(&sig);
    ok(c);
    let verify = |key: &str, format: &str| {
        let mut c = assay();
        c.arg("verify")
            .arg(&m)
            .arg("--key")
            .arg(test_key(key))
            .arg("--signature")
            .arg(&sig);
        c.args(["--format", format]);
        c
    };
    ok(verify("p384.pub.pem", "json"));

    fs::write(m.join("w.bin"), "weightz").unwrap();
    fs::write(m.join("cfg/extra.py"), "import os").unwrap();
    fs::remove_file(m.join("gone.txt")).unwrap();
    let out = fails(verify("p384.pub.pem", "json"));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["verified"], false);
    assert_eq!(j["modified"][0]["path"], "w.bin");
    assert!(
        j["modified"][0]["expected"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert_ne!(j["modified"][0]["expected"], j["modified"][0]["actual"]);
    assert_eq!(j["added"], serde_json::json!(["cfg/extra.py"]));
    assert_eq!(j["removed"], serde_json::json!(["gone.txt"]));
    assert_eq!(j["signer"]["curve"], "P-384");

    let out = fails(verify("p256.pub.pem", "json"));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["error"]["kind"], "wrong_key");
    let out = fails(verify("p256.pub.pem", "human"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong key"));

    fs::write(&sig, "{\"mediaType\": 1}").unwrap();
    let out = fails(verify("p384.pub.pem", "json"));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["error"]["kind"], "malformed_bundle");
    fs::remove_file(&sig).unwrap();
    let out = fails(verify("p384.pub.pem", "json"));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["error"]["kind"], "missing_signature");

    // Usage errors: exit 2.
    for key in ["p384.pem", "does-not-exist.pem"] {
        let out = run(verify(key, "human"));
        assert_eq!(out.status.code(), Some(2), "{key}");
    }
    let mut c = assay();
    c.arg("verify").arg(&m);
    assert_eq!(run(c).status.code(), Some(2));
}

#[test]
fn scan_attestation_verifies_and_breaks_when_a_file_changes() {
    let d = tempfile::tempdir().unwrap();
    let m = small_model(d.path());
    let att = m.join("scan.att"); // inside the model: left out of the subject
    let report = d.path().join("report.json");
    let mut c = assay();
    c.arg("scan")
        .arg(&m)
        .args(["--attest", "--format", "json", "-q", "--key"])
        .arg(test_key("p256.sec1.pem"))
        .arg("--attestation")
        .arg(&att)
        .arg("-o")
        .arg(&report);
    ok(c);
    let b: serde_json::Value = serde_json::from_slice(&fs::read(&att).unwrap()).unwrap();
    let p: serde_json::Value = serde_json::from_slice(&base64_decode(
        b["dsseEnvelope"]["payload"].as_str().unwrap(),
    ))
    .unwrap();
    assert_eq!(p["predicateType"], "https://assay.dev/attestation/scan/v1");
    assert_eq!(p["predicate"]["verdict"], "pass");
    assert_eq!(p["predicate"]["filesScanned"], 3);
    // The report digest is that of the JSON report the scan wrote.
    let mut c = Command::new("sha256sum");
    c.arg(&report);
    if let Ok(out) = c.output() {
        let sum = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            p["predicate"]["report"]["digest"]["sha256"]
                .as_str()
                .unwrap(),
            sum.split_whitespace().next().unwrap()
        );
    }

    let verify = || {
        let mut c = assay();
        c.arg("verify")
            .arg(&m)
            .arg("--attestation")
            .arg(&att)
            .arg("--key")
            .arg(test_key("p256.pub.pem"))
            .args(["--require-pass", "--format", "json"]);
        c
    };
    let out = ok(verify());
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["attestation"]["verdict"], "pass");
    assert_eq!(j["kind"], "attestation");

    fs::write(m.join("cfg/config.json"), "{\"changed\": true}").unwrap();
    let out = fails(verify());
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["modified"][0]["path"], "cfg/config.json");

    // An attestation is not a model signature.
    let mut c = assay();
    c.arg("verify")
        .arg(&m)
        .arg("--signature")
        .arg(&att)
        .arg("--key")
        .arg(test_key("p256.pub.pem"));
    fails(c);
}
