//! End-to-end tests of `assay card`, `assay policy check` and `assay scan --format
//! cyclonedx`, on the shipped example models and copies of them in temporary folders.
//!
//! The green path is tested with a real JSON report of the model in which any stage this
//! build does not run yet is set to `complete` (what the finished stage will write); its
//! file digests are the real ones, so the card is still bound to the bytes. The
//! incomplete path sets a stage to `not_run`, as a build without that stage reports it.

use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn assay_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_assay"))
        .args(args)
        .current_dir(dir)
        // Reproducible card times, so re-running gives byte-identical output.
        .env("SOURCE_DATE_EPOCH", "1767225600")
        .output()
        .expect("run assay")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

const FRONT_MATTER: &str = "---\nlicense: apache-2.0\ntags:\n- demo\n---\n";
const README_BODY: &str = "# Demo model\n\nA tiny classifier for the Assay examples.\n";

/// A copy of examples/demo-model with a Hugging Face README.
fn demo(dir: &Path) -> PathBuf {
    let m = dir.join("demo");
    copy_dir(&root().join("examples/demo-model"), &m);
    fs::write(m.join("README.md"), format!("{FRONT_MATTER}{README_BODY}")).unwrap();
    m
}

/// A real JSON report of `model` (run from `dir`), with the stages this build does not
/// run yet set to `complete`.
fn report_with_finished_stages(dir: &Path, model: &str, extra: &[&str]) -> PathBuf {
    report_with_stages(dir, model, extra, &[])
}

/// A real JSON report of `model` whose `not_run` stages are set to `complete`, except
/// those named in `not_run`, which are set to `not_run`.
fn report_with_stages(dir: &Path, model: &str, extra: &[&str], not_run: &[&str]) -> PathBuf {
    let mut args = vec!["scan", "--format", "json", model];
    args.extend(extra);
    let out = assay_in(dir, &args);
    let mut r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let stages = r["summary"]["stages"].as_object_mut().unwrap();
    assert_eq!(stages.len(), 6, "{stages:?}");
    for (stage, status) in stages.iter_mut() {
        if not_run.contains(&stage.as_str()) {
            *status = "not_run".into();
        } else if status == "not_run" {
            *status = "complete".into();
        }
    }
    let p = dir.join(format!("{}-report.json", model.replace('/', "_")));
    fs::write(&p, serde_json::to_vec_pretty(&r).unwrap()).unwrap();
    p
}

fn card_record(readme: &str) -> Value {
    let start = readme.find("<!-- assay-card-data ").unwrap() + 21;
    let end = start + readme[start..].find(" -->").unwrap();
    serde_json::from_str(&readme[start..end]).unwrap()
}

#[test]
fn clean_model_gets_a_green_card_bound_to_the_signing_digest() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let m = demo(d);
    // The digest a signature of the untouched folder carries.
    let signed = assay_in(
        d,
        &[
            "sign",
            "demo",
            "--key",
            root()
                .join("crates/assay-sign/tests/data/p256.sec1.pem")
                .to_str()
                .unwrap(),
            "--signature",
            "demo.sig",
        ],
    );
    assert!(signed.status.success(), "{}", text(&signed));
    let sign_root = text(&signed)
        .split("root sha256:")
        .nth(1)
        .unwrap()
        .chars()
        .take(64)
        .collect::<String>();

    let report = report_with_finished_stages(d, "demo", &[]);
    let out = assay_in(d, &["card", "demo", "--report", report.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("card: scan complete"), "{}", text(&out));

    let readme = fs::read_to_string(m.join("README.md")).unwrap();
    // The model's own README comes first, untouched; the section is appended.
    assert!(
        readme.starts_with(&format!("{FRONT_MATTER}{README_BODY}<!-- assay-card:begin")),
        "{readme}"
    );
    assert!(readme.ends_with("<!-- assay-card:end -->\n\n"));
    assert!(readme.contains("**Scan complete**"));
    assert!(readme.contains("![assay: scan complete](assay-badge.svg)"));
    assert!(
        readme.contains(&format!("`sha256:{sign_root}`")),
        "{readme}"
    );
    let rec = card_record(&readme);
    assert_eq!(rec["state"], "complete");
    assert_eq!(rec["root_sha256"], sign_root.as_str());
    assert_eq!(rec["ignored"], serde_json::json!(["assay-badge.svg"]));
    for stage in [
        "Malware",
        "Network",
        "Vulnerability",
        "Backdoor",
        "Integrity",
        "Tensor",
    ] {
        assert!(
            readme.contains(&format!("| {stage} | complete | 0 |")),
            "{stage}"
        );
    }
    let badge = fs::read_to_string(m.join("assay-badge.svg")).unwrap();
    assert!(badge.contains(">scan complete</text>") && badge.contains("fill=\"#4c1\""));
    assert!(badge.contains(&sign_root));

    let check = assay_in(d, &["card", "--check", "demo"]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));

    // Idempotent: the same report again leaves the README byte for byte as it was.
    let again = assay_in(d, &["card", "demo", "--report", report.to_str().unwrap()]);
    assert!(again.status.success());
    assert_eq!(fs::read_to_string(m.join("README.md")).unwrap(), readme);
}

#[test]
fn critical_model_gets_a_red_card() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    copy_dir(&root().join("examples/suspicious-model"), &d.join("sus"));
    let report = report_with_finished_stages(d, "sus", &[]);
    for args in [
        vec!["card", "sus"],
        vec!["card", "sus", "--report", report.to_str().unwrap()],
    ] {
        let out = assay_in(d, &args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let readme = fs::read_to_string(d.join("sus/README.md")).unwrap();
        assert!(
            readme.contains("**Scan failed**: 1 critical finding at or above high"),
            "{readme}"
        );
        assert!(
            readme.contains("| critical | `PKL001` | optimizer\\.pt\\!/archive/data\\.pkl |"),
            "{readme}"
        );
        let badge = fs::read_to_string(d.join("sus/assay-badge.svg")).unwrap();
        assert!(badge.contains(">scan failed: 1 critical</text>"), "{badge}");
        assert!(badge.contains("fill=\"#e05d44\""));
        assert_eq!(card_record(&readme)["state"], "failed");
    }
    // The README did not exist: only the card is in it, and it is not in the digest.
    let readme = fs::read_to_string(d.join("sus/README.md")).unwrap();
    assert!(card_record(&readme)["files"].get("README.md").is_none());
    assert!(assay_in(d, &["card", "--check", "sus"]).status.success());
}

#[test]
fn scans_that_could_not_complete_get_an_incomplete_card() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    demo(d);
    // Stages that did not run (as a build without them reports).
    let report = report_with_stages(d, "demo", &[], &["backdoor", "tensor"]);
    let out = assay_in(d, &["card", "demo", "--report", report.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let readme = fs::read_to_string(d.join("demo/README.md")).unwrap();
    assert!(
        readme.contains("**Scan incomplete**: stages not run: backdoor, tensor"),
        "{readme}"
    );
    assert!(readme.contains("| Tensor | **not run** | – |"));
    let badge = fs::read_to_string(d.join("demo/assay-badge.svg")).unwrap();
    assert!(
        badge.contains(">scan incomplete: 2 stages not run</text>"),
        "{badge}"
    );
    assert!(badge.contains("fill=\"#dfb317\""));

    // A truncated checkpoint: every stage ran, but one file could not be read to the
    // end (ARC004, high); with --fail-on critical the verdict passes, the scan is still
    // incomplete.
    let bin = fs::read(d.join("demo/pytorch_model.bin")).unwrap();
    fs::write(d.join("demo/pytorch_model.bin"), &bin[..bin.len() / 2]).unwrap();
    let report = report_with_finished_stages(d, "demo", &["--fail-on", "critical"]);
    let out = assay_in(d, &["card", "demo", "--report", report.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let readme = fs::read_to_string(d.join("demo/README.md")).unwrap();
    assert!(
        readme.contains("**Scan incomplete**: stages incomplete: malware, network, vulnerability, integrity; 1 file could not be analysed completely"),
        "{readme}"
    );
    assert!(
        fs::read_to_string(d.join("demo/assay-badge.svg"))
            .unwrap()
            .contains(">scan incomplete: 1 file not fully analysed</text>")
    );
}

#[test]
fn card_check_fails_when_any_file_changes_after_the_scan() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let m = demo(d);
    let report = report_with_finished_stages(d, "demo", &[]);
    assert!(
        assay_in(d, &["card", "demo", "--report", report.to_str().unwrap()])
            .status
            .success()
    );
    let pristine = d.join("pristine");
    copy_dir(&m, &pristine);
    let reset = || {
        fs::remove_dir_all(&m).unwrap();
        copy_dir(&pristine, &m);
        assert!(assay_in(d, &["card", "--check", "demo"]).status.success());
    };
    let expect_fail = |needle: &str| {
        let out = assay_in(d, &["card", "--check", "demo"]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(
            text(&out).contains(needle),
            "want {needle:?}: {}",
            text(&out)
        );
    };

    fs::write(m.join("config.json"), "{\"model_type\": \"other\"}").unwrap();
    expect_fail("modified  config.json");
    reset();
    fs::write(m.join("extra.bin"), b"new").unwrap();
    expect_fail("added     extra.bin");
    reset();
    fs::remove_file(m.join("classifier.joblib")).unwrap();
    expect_fail("removed   classifier.joblib");
    reset();
    // The README outside the card section is part of the bytes too.
    let readme = fs::read_to_string(m.join("README.md")).unwrap();
    fs::write(
        m.join("README.md"),
        readme.replace("tiny classifier", "huge classifier"),
    )
    .unwrap();
    expect_fail("modified  README.md");
    reset();
    // Editing inside the section (e.g. the visible verdict) is caught by the record.
    fs::write(
        m.join("README.md"),
        readme.replace("complete\",\"root", "failed\",\"root"),
    )
    .unwrap();
    expect_fail("says complete but the card says failed");
    reset();
    // So is a hand edit of the visible text alone.
    fs::write(
        m.join("README.md"),
        readme.replace(
            "| Tensor | complete | 0 |",
            "| Tensor | complete | 0 |\n| Extra | complete | 0 |",
        ),
    )
    .unwrap();
    expect_fail("the card's text was edited by hand");
    reset();

    // The card and badge copied onto other bytes (the suspicious model).
    let other = d.join("other");
    copy_dir(&root().join("examples/suspicious-model"), &other);
    fs::copy(m.join("README.md"), other.join("README.md")).unwrap();
    fs::copy(m.join("assay-badge.svg"), other.join("assay-badge.svg")).unwrap();
    let out = assay_in(d, &["card", "--check", "other"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("added     optimizer.pt"),
        "{}",
        text(&out)
    );
    // Only the badge swapped for another model's badge.
    assert!(assay_in(d, &["card", "other"]).status.success());
    fs::copy(other.join("assay-badge.svg"), m.join("assay-badge.svg")).unwrap();
    expect_fail("belongs to other bytes");
}

#[test]
fn card_as_its_own_file_leaves_the_readme_alone() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let m = demo(d);
    let before = fs::read_to_string(m.join("README.md")).unwrap();
    let out = assay_in(d, &["card", "demo", "--output", "demo/MODEL_CARD.md"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(fs::read_to_string(m.join("README.md")).unwrap(), before);
    let card = fs::read_to_string(m.join("MODEL_CARD.md")).unwrap();
    let rec = card_record(&card);
    assert_eq!(
        rec["ignored"],
        serde_json::json!(["MODEL_CARD.md", "assay-badge.svg"])
    );
    assert!(rec["files"].get("README.md").is_some());
    assert!(assay_in(d, &["card", "--check", "demo"]).status.success());
    fs::write(m.join("README.md"), "changed").unwrap();
    assert_eq!(
        assay_in(d, &["card", "--check", "demo"]).status.code(),
        Some(1)
    );
}

#[test]
fn card_refers_to_a_verified_scan_attestation_by_its_key() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    demo(d);
    let keys = root().join("crates/assay-sign/tests/data");
    let att = assay_in(
        d,
        &[
            "scan",
            "demo",
            "-q",
            "--attest",
            "--key",
            keys.join("p384.pem").to_str().unwrap(),
            "--attestation",
            "demo/assay-attestation.json",
        ],
    );
    assert!(att.status.success(), "{}", text(&att));
    let hint = fs::read_to_string(keys.join("p384.hint")).unwrap();
    let out = assay_in(
        d,
        &[
            "card",
            "demo",
            "--key",
            keys.join("p384.pub.pem").to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let readme = fs::read_to_string(d.join("demo/README.md")).unwrap();
    assert!(
        readme.contains(&format!("verified: ECDSA P\\-384 key {}", hint.trim())),
        "{readme}"
    );
    assert_eq!(card_record(&readme)["attestation_key"], hint.trim());
    assert!(assay_in(d, &["card", "--check", "demo"]).status.success());
    // The wrong key: the card does not claim a signature.
    let out = assay_in(
        d,
        &[
            "card",
            "demo",
            "--key",
            keys.join("p256.pub.pem").to_str().unwrap(),
        ],
    );
    assert!(out.status.success());
    let readme = fs::read_to_string(d.join("demo/README.md")).unwrap();
    assert!(readme.contains("does not verify"), "{readme}");
    assert!(card_record(&readme).get("attestation_key").is_none());

    // The pipeline scan --attest, card, policy: the attestation still counts, with the
    // card set aside (and only the card: any other change still breaks it).
    fs::write(
        d.join("cfg.json"),
        r#"{"config": {"require_signature": true, "require_complete": false}}"#,
    )
    .unwrap();
    let pubkey = keys.join("p384.pub.pem");
    let args = [
        "demo",
        "--data",
        "cfg.json",
        "--key",
        pubkey.to_str().unwrap(),
    ];
    let (code, v) = policy_json(d, &args);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["attestation"]["verified"], true);
    assert_eq!(
        v["attestation"]["card_set_aside"],
        serde_json::json!(["README.md (card section)", "assay-badge.svg"])
    );
    let readme = fs::read_to_string(d.join("demo/README.md")).unwrap();
    fs::write(d.join("demo/README.md"), readme.replace("tiny", "big")).unwrap();
    let (code, v) = policy_json(d, &args);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["attestation"]["verified"], false);
    fs::write(d.join("demo/README.md"), readme).unwrap();
    fs::write(d.join("demo/extra.svg"), "<svg/>").unwrap();
    assert_eq!(policy_json(d, &args).0, 1);
}

fn policy_json(dir: &Path, args: &[&str]) -> (i32, Value) {
    let mut a = vec!["policy", "check"];
    a.extend(args);
    a.extend(["--format", "json"]);
    let out = assay_in(dir, &a);
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out)));
    (out.status.code().unwrap(), v)
}

#[test]
fn default_policy_admits_the_clean_model_and_refuses_the_others_with_reasons() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    demo(d);
    copy_dir(&root().join("examples/suspicious-model"), &d.join("sus"));
    let clean = report_with_finished_stages(d, "demo", &[]);
    let (code, v) = policy_json(d, &["demo", "--report", clean.to_str().unwrap()]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["decision"], "allow");
    assert_eq!(v["deny"], serde_json::json!([]));

    // The critical model, even with every stage complete.
    let sus = report_with_finished_stages(d, "sus", &[]);
    let (code, v) = policy_json(d, &["sus", "--report", sus.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(v["decision"], "deny");
    let deny: Vec<&str> = v["deny"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert_eq!(deny.len(), 1, "{deny:?}");
    assert!(deny[0].starts_with("critical finding PKL001 in sus/optimizer.pt!/archive/data.pkl"));

    // An incomplete scan is refused, naming each stage that did not run.
    let partial = report_with_stages(d, "demo", &[], &["backdoor", "tensor"]);
    let out = assay_in(
        d,
        &[
            "policy",
            "check",
            "demo",
            "--report",
            partial.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out);
    assert!(t.starts_with("DENY: demo by policy default.rego"), "{t}");
    for stage in ["backdoor", "tensor"] {
        assert!(
            t.contains(&format!("deny: scan incomplete: stage {stage} is not_run")),
            "{t}"
        );
    }

    // A truncated file: incomplete and a high finding.
    let bin = fs::read(d.join("demo/pytorch_model.bin")).unwrap();
    fs::write(d.join("demo/pytorch_model.bin"), &bin[..bin.len() / 2]).unwrap();
    let trunc = report_with_finished_stages(d, "demo", &[]);
    let (code, v) = policy_json(d, &["demo", "--report", trunc.to_str().unwrap()]);
    assert_eq!(code, 1);
    let deny = v["deny"].to_string();
    assert!(
        deny.contains("high finding ARC004 in demo/pytorch_model.bin"),
        "{deny}"
    );
    assert!(
        deny.contains("scan incomplete: demo/pytorch_model.bin could not be analysed completely")
    );
}

#[test]
fn suppressions_need_a_reason_and_expire() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    copy_dir(&root().join("examples/suspicious-model"), &d.join("sus"));
    let sus = report_with_finished_stages(d, "sus", &[]);
    fs::write(
        d.join("ok.toml"),
        "[[suppression]]\nid = \"SUP-1\"\nrule = \"PKL001\"\npath = \"sus/optimizer.pt\"\nreason = \"inert test fixture\"\nexpires = \"2999-01-01\"\n\n[[suppression]]\nid = \"SUP-2\"\nrule = \"GGF001\"\nreason = \"old\"\nexpires = \"2999-01-01\"\n\n[[suppression]]\nid = \"SUP-3\"\nrule = \"PKL001\"\nreason = \"lapsed\"\nexpires = \"2000-01-01\"\n",
    )
    .unwrap();
    let (code, v) = policy_json(
        d,
        &[
            "sus",
            "--report",
            sus.to_str().unwrap(),
            "--suppressions",
            "ok.toml",
        ],
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["suppressed"][0]["suppression"], "SUP-1");
    assert_eq!(
        v["warn"],
        serde_json::json!([
            "suppression SUP-2 (GGF001) matches no finding; remove it",
            "suppression SUP-3 (PKL001) expired on 2000-01-01T00:00:00Z; it no longer applies"
        ])
    );
    fs::write(
        d.join("bad.toml"),
        "[[suppression]]\nid = \"SUP-1\"\nrule = \"PKL001\"\nexpires = \"2999-01-01\"\n",
    )
    .unwrap();
    let out = assay_in(
        d,
        &[
            "policy",
            "check",
            "sus",
            "--report",
            sus.to_str().unwrap(),
            "--suppressions",
            "bad.toml",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("bad.toml:1:1: suppression SUP-1 needs reason"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_policy_requiring_a_signature_refuses_unsigned_and_admits_signed_models() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    demo(d);
    let keys = root().join("crates/assay-sign/tests/data");
    let hint = fs::read_to_string(keys.join("p256.hint")).unwrap();
    let policy = format!(
        "package assay\n\nimport rego.v1\n\n# Only models signed by the release key.\ntrusted := {{\"{}\"}}\n\ndeny contains \"model is not signed\" if not input.signature.present\n\ndeny contains msg if {{\n\tinput.signature.present\n\tnot input.signature.verified\n\tmsg := sprintf(\"signature does not verify: %s\", [input.signature.error])\n}}\n\ndeny contains \"signed by an untrusted key\" if {{\n\tinput.signature.verified\n\tnot input.signature.signer.key_hint in trusted\n}}\n",
        hint.trim()
    );
    fs::write(d.join("signed.rego"), policy).unwrap();
    let pubkey = keys.join("p256.pub.pem");
    let args = [
        "demo",
        "--policy",
        "signed.rego",
        "--key",
        pubkey.to_str().unwrap(),
    ];
    let (code, v) = policy_json(d, &args);
    assert_eq!(code, 1);
    assert_eq!(v["deny"], serde_json::json!(["model is not signed"]));

    let s = assay_in(
        d,
        &[
            "sign",
            "demo",
            "--key",
            keys.join("p256.sec1.pem").to_str().unwrap(),
            "--signature",
            "demo/model.sig",
        ],
    );
    assert!(s.status.success(), "{}", text(&s));
    let (code, v) = policy_json(d, &args);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["signature"]["signer"]["key_hint"], hint.trim());

    // Tampered after signing, or checked with another key: refused with the reason.
    fs::write(d.join("demo/config.json"), "{}").unwrap();
    let (code, v) = policy_json(d, &args);
    assert_eq!(code, 1);
    assert!(v["deny"][0].as_str().unwrap().contains("1 modified"), "{v}");
    let other = keys.join("other.pub.pem");
    let (code, v) = policy_json(
        d,
        &[
            "demo",
            "--policy",
            "signed.rego",
            "--key",
            other.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1);
    assert!(v["deny"][0].as_str().unwrap().contains("wrong key"), "{v}");

    // The default policy with require_signature in its data does the same.
    fs::write(
        d.join("cfg.json"),
        r#"{"config": {"require_signature": true, "require_complete": false}}"#,
    )
    .unwrap();
    let (code, v) = policy_json(d, &["demo", "--data", "cfg.json"]);
    assert_eq!(code, 1);
    assert!(v["deny"].to_string().contains("not signed"), "{v}");
}

#[test]
fn policy_errors_point_at_the_line_and_exit_2() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    demo(d);
    fs::write(d.join("bad.rego"), "package assay\nimport rego.v1\n\ndeny contains msg if {\n\tmsg := sprintf(\"%s\", [input.x]\n}\n").unwrap();
    let out = assay_in(d, &["policy", "check", "demo", "--policy", "bad.rego"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("bad.rego:5:9"), "{}", text(&out));
    let shown = assay_in(d, &["policy", "show"]);
    assert_eq!(
        String::from_utf8_lossy(&shown.stdout),
        fs::read_to_string(root().join("crates/assay-policy/policy/default.rego")).unwrap()
    );
}

/// The ML-BOM of every fixture validates against the official CycloneDX 1.6 JSON schema
/// (with the SPDX and JSF schemas it refers to), vendored from the `cyclonedx-python-lib`
/// wheel (Apache-2.0) into tests/data/cyclonedx, checked with Python's `jsonschema`.
#[test]
fn cyclonedx_bom_validates_against_the_official_schema() {
    let t = tempfile::tempdir().unwrap();
    let bom = t.path().join("bom.json");
    let out = assay_in(
        &root(),
        &[
            "scan",
            "--format",
            "cyclonedx",
            "-o",
            bom.to_str().unwrap(),
            "fixtures",
            "examples",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let doc: Value = serde_json::from_slice(&fs::read(&bom).unwrap()).unwrap();
    assert_eq!(doc["specVersion"], "1.6");
    let vulns = doc["vulnerabilities"].as_array().unwrap();
    let pkl = vulns.iter().find(|v| v["id"] == "PKL001").unwrap();
    assert_eq!(pkl["ratings"][0]["severity"], "critical");
    assert_eq!(pkl["cwes"], serde_json::json!([502]));
    let target = pkl["affects"][0]["ref"].as_str().unwrap();
    let comp = doc["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["bom-ref"] == target)
        .unwrap();
    assert_eq!(comp["type"], "machine-learning-model");
    assert_eq!(comp["hashes"][0]["alg"], "SHA-256");
    // CVE ids in references become the vulnerability id.
    assert!(
        vulns
            .iter()
            .any(|v| v["id"].as_str().unwrap().starts_with("CVE-")),
        "no CVE ids"
    );
    // Declared dependencies (fixtures/vuln manifests) are library components with a purl,
    // the model depends on them.
    let comps = doc["components"].as_array().unwrap();
    let llama = comps
        .iter()
        .find(|c| c["type"] == "library" && c["version"] == "0.2.70")
        .expect("llama-cpp-python==0.2.70 from fixtures/vuln as a component");
    assert_eq!(llama["name"], "llama-cpp-python");
    assert_eq!(llama["purl"], "pkg:pypi/llama-cpp-python@0.2.70");
    let depends = doc["dependencies"][0]["dependsOn"].as_array().unwrap();
    assert!(depends.contains(&llama["bom-ref"]), "{depends:?}");

    let schemas = root().join("crates/assay-cli/tests/data/cyclonedx");
    let script = "import json,sys,jsonschema,referencing\n\
        d=sys.argv[1]; load=lambda n: json.load(open(d+'/'+n))\n\
        bom=load('bom-1.6.SNAPSHOT.schema.json')\n\
        res=[(n, referencing.Resource.from_contents(load(n), default_specification=referencing.jsonschema.DRAFT7)) for n in ['spdx.SNAPSHOT.schema.json','jsf-0.82.SNAPSHOT.schema.json']]\n\
        reg=referencing.Registry().with_resources([('http://cyclonedx.org/schema/'+n, r) for n, r in res])\n\
        v=jsonschema.Draft7Validator(bom, registry=reg, format_checker=jsonschema.FormatChecker())\n\
        doc=json.load(open(sys.argv[2]))\n\
        errs=sorted(v.iter_errors(doc), key=lambda e: list(e.path))\n\
        [print(list(e.path), e.message[:300]) for e in errs[:20]]\n\
        print('components', len(doc['components']), 'vulnerabilities', len(doc.get('vulnerabilities', [])))\n\
        sys.exit(1 if errs else 0)\n";
    let check = Command::new("python3")
        .args([
            "-c",
            script,
            schemas.to_str().unwrap(),
            bom.to_str().unwrap(),
        ])
        .output()
        .expect("python3 with jsonschema (see .ci/run)");
    assert!(check.status.success(), "{}", text(&check));
}
