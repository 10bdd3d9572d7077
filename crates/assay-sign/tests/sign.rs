//! Round trips, tampering of every kind, wrong keys, malformed bundles and bundles made
//! by the reference tool (`tests/data/generate.sh`).

use assay_sign::*;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use std::fs;
use std::path::{Path, PathBuf};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn read(name: &str) -> Vec<u8> {
    fs::read(data(name)).unwrap()
}

fn private(name: &str) -> PrivateKey {
    PrivateKey::from_pem(&read(name)).unwrap()
}

fn public(name: &str) -> PublicKey {
    PublicKey::from_pem(&read(name)).unwrap()
}

fn key_trust(name: &str) -> Trust {
    Trust::Key(public(name))
}

fn root_trust(name: &str) -> Trust {
    Trust::Roots(certificates_from_pem(&read(name)).unwrap())
}

/// The folder `generate.sh` signs with the reference tool.
fn small_model(dir: &Path) -> PathBuf {
    let m = dir.join("model");
    for (rel, content) in [
        ("w.bin", &b"weights"[..]),
        ("a/x", b"x"),
        ("a-c/z", b"z"),
        ("a.txt", b"{}"),
        (".git/HEAD", b"ignored"),
        ("empty", b""),
    ] {
        let p = m.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }
    m
}

fn payload_of(bundle: &[u8]) -> Value {
    let b: Value = serde_json::from_slice(bundle).unwrap();
    let p = B64
        .decode(b["dsseEnvelope"]["payload"].as_str().unwrap())
        .unwrap();
    serde_json::from_slice(&p).unwrap()
}

fn verify(model: &Path, bundle: &[u8], trust: &Trust) -> Result<Verification, VerifyError> {
    verify_model(model, bundle, trust, &VerifyOptions::default())
}

#[test]
fn key_hints_match_python_cryptography() {
    for k in ["p256", "p384", "p521"] {
        let hint = String::from_utf8(read(&format!("{k}.hint"))).unwrap();
        assert_eq!(public(&format!("{k}.pub.pem")).hint(), hint.trim(), "{k}");
    }
    // The private key's public half gives the same hint.
    let hint = String::from_utf8(read("p256.hint")).unwrap();
    assert_eq!(private("p256.sec1.pem").public_key().hint(), hint.trim());
    assert_eq!(private("p521.pem").curve(), Curve::P521);
    assert_eq!(private("p384.pem").curve(), Curve::P384);
}

#[test]
fn refuses_keys_it_cannot_use() {
    let enc = b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
    assert!(matches!(
        PrivateKey::from_pem(enc),
        Err(KeyError::Encrypted)
    ));
    let rsa = b"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n";
    assert!(matches!(
        PrivateKey::from_pem(rsa),
        Err(KeyError::Unsupported(_))
    ));
    assert!(matches!(
        PrivateKey::from_pem(b"hello"),
        Err(KeyError::NoPem { .. })
    ));
    assert!(PublicKey::from_pem(&read("p256.sec1.pem")).is_err());
    assert!(PrivateKey::from_pem(&read("p256.pub.pem")).is_err());
}

#[test]
fn reference_key_bundles_verify() {
    let t = tempfile::tempdir().unwrap();
    let m = small_model(t.path());
    for (sig, key) in [
        ("ref-key.sig", "p256.pub.pem"),
        ("ref-key-p521.sig", "p521.pub.pem"),
    ] {
        let v = verify(&m, &read(sig), &key_trust(key)).unwrap();
        assert!(v.intact(), "{sig}: {v:?}");
        assert_eq!(v.expected_root, v.actual_root);
        assert_eq!(v.resources_checked, 5);
        assert_eq!(v.signed, Signed::ModelSignature);
    }
}

#[test]
fn root_digest_and_order_match_the_reference() {
    let t = tempfile::tempdir().unwrap();
    let m = small_model(t.path());
    let ours = hash_model(&m, &HashOptions::default()).unwrap();
    let reference = payload_of(&read("ref-key.sig"));
    assert_eq!(
        reference["subject"][0]["digest"]["sha256"],
        json!(hex::encode(ours.root_digest()))
    );
    assert_eq!(reference["subject"][0]["name"], json!(ours.model_name));
    let names: Vec<&str> = reference["predicate"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    let ours_names: Vec<&str> = ours.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ours_names);
    assert_eq!(names, ["a/x", "a-c/z", "a.txt", "empty", "w.bin"]);
}

#[test]
fn reference_certificate_bundle_verifies_against_its_root_only() {
    let t = tempfile::tempdir().unwrap();
    let m = small_model(t.path());
    let bundle = read("ref-cert.sig");
    let v = verify(&m, &bundle, &root_trust("root.pem")).unwrap();
    assert!(v.intact());
    match &v.signer {
        SignerIdentity::Certificate { subject, curve, .. } => {
            assert_eq!(subject, "CN=assay-test-signer");
            assert_eq!(*curve, Curve::P256);
        }
        other => panic!("{other:?}"),
    }
    // Trusting only the intermediate is not enough (OpenSSL without PARTIAL_CHAIN).
    let e = verify(&m, &bundle, &root_trust("int.pem")).unwrap_err();
    assert!(matches!(e, VerifyError::UntrustedChain(_)), "{e}");
    // Same name, other key.
    let e = verify(&m, &bundle, &root_trust("other-root.pem")).unwrap_err();
    assert!(matches!(e, VerifyError::UntrustedChain(_)), "{e}");
    // A certificate bundle checked with a key says so.
    let e = verify(&m, &bundle, &key_trust("p256.pub.pem")).unwrap_err();
    assert!(matches!(e, VerifyError::NeedsCertificates));
}

#[test]
fn round_trip_on_every_curve() {
    let t = tempfile::tempdir().unwrap();
    let m = small_model(t.path());
    for (key, public) in [
        ("p256.sec1.pem", "p256.pub.pem"),
        ("p384.pem", "p384.pub.pem"),
        ("p521.pem", "p521.pub.pem"),
    ] {
        let (manifest, bundle) =
            sign_model(&m, &HashOptions::default(), &Signer::Key(private(key))).unwrap();
        assert_eq!(manifest.resources.len(), 5);
        let v = verify(&m, bundle.as_bytes(), &key_trust(public)).unwrap();
        assert!(v.intact(), "{key}");
        let b: Value = serde_json::from_str(&bundle).unwrap();
        assert_eq!(b["mediaType"], BUNDLE_MEDIA_TYPE);
        assert_eq!(b["dsseEnvelope"]["payloadType"], PAYLOAD_TYPE);
        assert_eq!(b["verificationMaterial"]["tlogEntries"], json!([]));
        assert_eq!(b["dsseEnvelope"]["signatures"][0]["keyid"], "");
    }
}

#[test]
fn reports_every_kind_of_tampering() {
    let t = tempfile::tempdir().unwrap();
    let m = small_model(t.path());
    let (_, bundle) = sign_model(
        &m,
        &HashOptions::default(),
        &Signer::Key(private("p256.sec1.pem")),
    )
    .unwrap();
    fs::write(m.join("w.bin"), b"weightz").unwrap(); // one byte
    fs::write(m.join("a/new.py"), b"import os").unwrap();
    fs::remove_file(m.join("a.txt")).unwrap();
    fs::write(m.join(".git/HEAD"), b"still ignored").unwrap();
    let v = verify(&m, bundle.as_bytes(), &key_trust("p256.pub.pem")).unwrap();
    assert!(!v.intact());
    assert_eq!(v.modified.len(), 1);
    assert_eq!(v.modified[0].name, "w.bin");
    assert_eq!(
        v.modified[0].expected,
        format!("sha256:{}", hex::encode(sha256(b"weights")))
    );
    assert_eq!(
        v.modified[0].actual,
        format!("sha256:{}", hex::encode(sha256(b"weightz")))
    );
    assert_eq!(v.added, ["a/new.py"]);
    assert_eq!(v.removed, ["a.txt"]);
    assert_ne!(v.expected_root, v.actual_root);

    // Only the signed files: the new one is not reported.
    let opts = VerifyOptions {
        ignore_unsigned_files: true,
        ..Default::default()
    };
    let v = verify_model(&m, bundle.as_bytes(), &key_trust("p256.pub.pem"), &opts).unwrap();
    assert!(v.added.is_empty());
    assert_eq!(v.removed, ["a.txt"]);
    assert_eq!(v.modified.len(), 1);
}

fn sha256(b: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(b).to_vec()
}

#[test]
fn wrong_key_is_named_as_such() {
    let t = tempfile::tempdir().unwrap();
    let m = small_model(t.path());
    let bundle = read("ref-key.sig");
    let e = verify(&m, &bundle, &key_trust("other.pub.pem")).unwrap_err();
    assert!(matches!(e, VerifyError::WrongKey { .. }), "{e}");
    assert_eq!(e.kind(), "wrong_key");
    // Without a hint (older bundles), the signature itself fails.
    let mut b: Value = serde_json::from_slice(&bundle).unwrap();
    b["verificationMaterial"]["publicKey"] = json!({});
    let e = verify(
        &m,
        &serde_json::to_vec(&b).unwrap(),
        &key_trust("other.pub.pem"),
    )
    .unwrap_err();
    assert!(matches!(e, VerifyError::BadSignature(_)), "{e}");
    // A key on another curve.
    let e = verify(&m, &bundle, &key_trust("p384.pub.pem")).unwrap_err();
    assert!(matches!(e, VerifyError::WrongKey { .. }), "{e}");
}

fn mutate(bundle: &[u8], f: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut b: Value = serde_json::from_slice(bundle).unwrap();
    f(&mut b);
    serde_json::to_vec(&b).unwrap()
}

#[test]
fn malformed_bundles_are_refused_with_a_reason() {
    let t = tempfile::tempdir().unwrap();
    let m = small_model(t.path());
    let good = read("ref-key.sig");
    let trust = key_trust("p256.pub.pem");
    let check = |bundle: &[u8], kind: &str| {
        let e = verify(&m, bundle, &trust).unwrap_err();
        assert_eq!(e.kind(), kind, "{e}");
    };
    check(b"not json", "malformed_bundle");
    check(b"{}", "malformed_bundle");
    check(
        &mutate(&good, |b| {
            b["mediaType"] = json!("application/vnd.dev.sigstore.bundle+json;version=0.2")
        }),
        "malformed_bundle",
    );
    check(
        &mutate(&good, |b| {
            b.as_object_mut().unwrap().remove("dsseEnvelope");
        }),
        "malformed_bundle",
    );
    check(
        &mutate(&good, |b| b["dsseEnvelope"]["payload"] = json!("!!!")),
        "malformed_bundle",
    );
    check(
        &mutate(&good, |b| b["dsseEnvelope"]["signatures"] = json!([])),
        "malformed_bundle",
    );
    check(
        &mutate(&good, |b| {
            b["dsseEnvelope"]["signatures"][0]["sig"] = json!("AAAA")
        }),
        "bad_signature",
    );
    // The payload type is signed too.
    check(
        &mutate(&good, |b| {
            b["dsseEnvelope"]["payloadType"] = json!("text/plain")
        }),
        "bad_signature",
    );
    // A changed payload (one resource digest) no longer matches the signature.
    check(
        &mutate(&good, |b| {
            let mut p = payload_of(&good);
            p["predicate"]["resources"][0]["digest"] = json!(hex::encode([0u8; 32]));
            b["dsseEnvelope"]["payload"] = json!(B64.encode(serde_json::to_vec(&p).unwrap()));
        }),
        "bad_signature",
    );
    check(
        &mutate(
            &good,
            |b| {
                b["verificationMaterial"] =
                    json!({"certificate": {"rawBytes": "AAAA"}, "tlogEntries": [{}]})
            },
        ),
        "unsupported_bundle",
    );
}

/// Signs a statement built by hand (resources in any order) with the P-256 test key.
fn sign_payload(p: &Value) -> String {
    let s: Statement = serde_json::from_value(p.clone()).unwrap();
    sign_statement(&s, &Signer::Key(private("p256.sec1.pem")))
}

#[test]
fn accepts_resources_in_any_order_but_not_an_inconsistent_subject() {
    let t = tempfile::tempdir().unwrap();
    let m = small_model(t.path());
    let mut p = payload_of(&read("ref-key.sig"));
    let resources = p["predicate"]["resources"].as_array_mut().unwrap();
    resources.reverse();
    let digests: Vec<u8> = resources
        .iter()
        .flat_map(|r| hex::decode(r["digest"].as_str().unwrap()).unwrap())
        .collect();
    let reversed_root = hex::encode(sha256(&digests));
    // Subject still computed over the original order: inconsistent.
    let e = verify(&m, sign_payload(&p).as_bytes(), &key_trust("p256.pub.pem")).unwrap_err();
    assert!(matches!(e, VerifyError::InconsistentManifest { .. }), "{e}");
    // Subject over the listed order: fine.
    p["subject"][0]["digest"]["sha256"] = json!(reversed_root);
    let v = verify(&m, sign_payload(&p).as_bytes(), &key_trust("p256.pub.pem")).unwrap();
    assert!(v.intact(), "{v:?}");
}

#[test]
fn statement_problems_are_reported() {
    let t = tempfile::tempdir().unwrap();
    let m = small_model(t.path());
    let base = payload_of(&read("ref-key.sig"));
    let trust = key_trust("p256.pub.pem");
    let kind = |p: &Value| {
        verify(&m, sign_payload(p).as_bytes(), &trust)
            .unwrap_err()
            .kind()
    };
    let mut p = base.clone();
    p["predicateType"] = json!("https://example.com/other");
    assert_eq!(kind(&p), "wrong_predicate_type");
    let mut p = base.clone();
    p["predicate"]["serialization"]["hash_type"] = json!("blake3");
    assert_eq!(kind(&p), "unsupported_serialization");
    let mut p = base.clone();
    p["predicate"]["serialization"]["method"] = json!("tensors");
    assert_eq!(kind(&p), "unsupported_serialization");
    let mut p = base.clone();
    p["subject"] = json!([]);
    assert_eq!(kind(&p), "malformed_statement");
    let mut p = base.clone();
    p["predicate"]["resources"][0]["digest"] = json!("zz");
    assert_eq!(kind(&p), "malformed_statement");
    let mut p = base;
    let r0 = p["predicate"]["resources"][0].clone();
    p["predicate"]["resources"].as_array_mut().unwrap().push(r0);
    let digests: Vec<u8> = p["predicate"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| hex::decode(r["digest"].as_str().unwrap()).unwrap())
        .collect();
    p["subject"][0]["digest"]["sha256"] = json!(hex::encode(sha256(&digests)));
    assert_eq!(kind(&p), "malformed_statement"); // listed twice
}

#[test]
fn certificate_round_trip_and_usage_checks() {
    let t = tempfile::tempdir().unwrap();
    let m = small_model(t.path());
    let leaf = certificates_from_pem(&read("leaf.pem")).unwrap();
    let int = certificates_from_pem(&read("int.pem")).unwrap();
    // The signing certificate is found in the chain by its key.
    let chain = [int.clone(), leaf.clone()].concat();
    let signer = Signer::with_certificates(private("leaf.key"), None, chain).unwrap();
    let (_, bundle) = sign_model(&m, &HashOptions::default(), &signer).unwrap();
    let b: Value = serde_json::from_str(&bundle).unwrap();
    let certs = b["verificationMaterial"]["x509CertificateChain"]["certificates"]
        .as_array()
        .unwrap();
    assert_eq!(certs.len(), 2);
    assert_eq!(certs[0]["rawBytes"], json!(B64.encode(&leaf[0])));
    assert!(
        verify(&m, bundle.as_bytes(), &root_trust("root.pem"))
            .unwrap()
            .intact()
    );
    let e = verify(&m, bundle.as_bytes(), &key_trust("p256.pub.pem")).unwrap_err();
    assert!(matches!(e, VerifyError::NeedsCertificates));

    // A certificate that does not hold the key.
    let e = Signer::with_certificates(private("p256.sec1.pem"), Some(leaf[0].clone()), int.clone())
        .unwrap_err();
    assert!(matches!(e, KeyError::CertificateKeyMismatch));

    // A certificate without digitalSignature or codeSigning.
    let nosign = certificates_from_pem(&read("leaf-nosign.pem")).unwrap();
    let signer =
        Signer::with_certificates(private("leaf.key"), Some(nosign[0].clone()), int.clone())
            .unwrap();
    let (_, bundle) = sign_model(&m, &HashOptions::default(), &signer).unwrap();
    let e = verify(&m, bundle.as_bytes(), &root_trust("root.pem")).unwrap_err();
    assert!(e.to_string().contains("cannot be used for signing"), "{e}");

    // Missing intermediate: nothing issued the signing certificate.
    let signer =
        Signer::with_certificates(private("leaf.key"), Some(leaf[0].clone()), vec![]).unwrap();
    let (_, bundle) = sign_model(&m, &HashOptions::default(), &signer).unwrap();
    let e = verify(&m, bundle.as_bytes(), &root_trust("root.pem")).unwrap_err();
    assert!(e.to_string().contains("unable to get local issuer"), "{e}");
    // ...unless the verifier has it next to the root.
    let both = Trust::Roots([int, certificates_from_pem(&read("root.pem")).unwrap()].concat());
    assert!(verify(&m, bundle.as_bytes(), &both).unwrap().intact());
}

fn record() -> ScanRecord {
    ScanRecord {
        tool: ToolRef {
            name: "assay".into(),
            version: "0.1.0".into(),
        },
        scanned_at: "2026-01-31T12:00:00Z".into(),
        verdict: "pass".into(),
        fail_on: "high".into(),
        files_scanned: 5,
        bytes_scanned: 12,
        findings: [("critical".to_string(), 0u64), ("high".into(), 0)].into(),
        stages: [("malware".to_string(), "complete".to_string())].into(),
        report: ReportRef::json_sha256(hex::encode([1u8; 32])),
    }
}

#[test]
fn scan_attestation_round_trip_and_tamper() {
    let t = tempfile::tempdir().unwrap();
    let m = small_model(t.path());
    let manifest = hash_model(&m, &HashOptions::default()).unwrap();
    let signer = Signer::Key(private("p384.pem"));
    let bundle = attest_scan(&manifest, &record(), &signer).unwrap();
    let p = payload_of(bundle.as_bytes());
    assert_eq!(p["predicateType"], SCAN_PREDICATE_TYPE);
    assert_eq!(
        p["subject"][0]["digest"]["sha256"],
        json!(hex::encode(manifest.root_digest()))
    );
    assert_eq!(p["predicate"]["scannedAt"], "2026-01-31T12:00:00Z");
    let opts = VerifyOptions {
        expect: Expect::ScanAttestation,
        ..Default::default()
    };
    let trust = key_trust("p384.pub.pem");
    let v = verify_model(&m, bundle.as_bytes(), &trust, &opts).unwrap();
    assert!(v.intact());
    assert_eq!(v.signed, Signed::ScanAttestation(Box::new(record())));

    fs::write(m.join("a/x"), b"y").unwrap();
    let v = verify_model(&m, bundle.as_bytes(), &trust, &opts).unwrap();
    assert_eq!(v.modified.len(), 1);
    assert_eq!(v.modified[0].name, "a/x");

    // A model signature where an attestation is expected, and the other way round.
    let (_, sig) = sign_model(&m, &HashOptions::default(), &signer).unwrap();
    let e = verify_model(&m, sig.as_bytes(), &trust, &opts).unwrap_err();
    assert_eq!(e.kind(), "wrong_predicate_type");
    let opts = VerifyOptions {
        expect: Expect::ModelSignature,
        ..Default::default()
    };
    let e = verify_model(&m, bundle.as_bytes(), &trust, &opts).unwrap_err();
    assert_eq!(e.kind(), "wrong_predicate_type");
}

#[test]
fn signature_inside_the_model_is_ignored_by_both_sides() {
    let t = tempfile::tempdir().unwrap();
    let m = small_model(t.path());
    let opts = HashOptions {
        ignore_paths: vec!["model.sig".into()],
        ..Default::default()
    };
    let (manifest, bundle) = sign_model(&m, &opts, &Signer::Key(private("p256.sec1.pem"))).unwrap();
    assert!(
        manifest
            .serialization
            .ignore_paths
            .contains(&"model.sig".to_string())
    );
    fs::write(m.join("model.sig"), &bundle).unwrap();
    // The verifier learns the ignored path from the signature itself.
    let v = verify(&m, bundle.as_bytes(), &key_trust("p256.pub.pem")).unwrap();
    assert!(v.intact(), "{v:?}");
}

#[test]
fn shards_round_trip() {
    let t = tempfile::tempdir().unwrap();
    let m = small_model(t.path());
    let opts = HashOptions {
        method: Method::Shards { shard_size: 3 },
        ..Default::default()
    };
    let (manifest, bundle) = sign_model(&m, &opts, &Signer::Key(private("p256.sec1.pem"))).unwrap();
    let names: Vec<&str> = manifest.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "a/x:0:1",
            "a-c/z:0:1",
            "a.txt:0:2",
            "w.bin:0:3",
            "w.bin:3:6",
            "w.bin:6:7"
        ]
    );
    let p = payload_of(bundle.as_bytes());
    assert_eq!(p["predicate"]["serialization"]["shard_size"], 3);
    assert_eq!(
        p["predicate"]["resources"][3]["algorithm"],
        "sha256-sharded-3"
    );
    let trust = key_trust("p256.pub.pem");
    assert!(verify(&m, bundle.as_bytes(), &trust).unwrap().intact());
    fs::write(m.join("w.bin"), b"weights!").unwrap();
    let v = verify(&m, bundle.as_bytes(), &trust).unwrap();
    assert_eq!(v.added, ["w.bin:6:8"]);
    assert_eq!(v.removed, ["w.bin:6:7"]);
}
