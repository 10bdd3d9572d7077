use super::*;
use serde_json::json;

const STAGES_COMPLETE: &str = r#"{"malware":"complete","network":"complete","vulnerability":"complete","backdoor":"complete","integrity":"complete","tensor":"complete"}"#;

fn input(findings: Value, stages: &str, suppressions: Value) -> Value {
    json!({
        "target": "m",
        "now": "2026-06-01T00:00:00Z",
        "report": {
            "tool": {"name": "assay", "version": "0.1.0"},
            "summary": {"verdict": "pass", "fail_on": "high", "files_scanned": 1,
                        "bytes_scanned": 10, "findings": {},
                        "stages": serde_json::from_str::<Value>(stages).unwrap()},
            "files": [{"path": "m/a.pt", "format": "pytorch-zip", "size": 10,
                       "sha256": "", "status": "scanned"}],
            "findings": findings,
        },
        "signature": {"present": false, "verified": false},
        "attestation": {"present": false, "verified": false},
        "suppressions": suppressions,
    })
}

fn finding(rule: &str, sev: &str) -> Value {
    json!({"rule": rule, "severity": sev, "stage": "malware", "path": "m/a.pt",
           "member": "archive/data.pkl", "message": "pickle calls os.system"})
}

#[test]
fn default_policy_admits_a_clean_complete_scan() {
    let p = Policy::default_policy().unwrap();
    let d = p
        .evaluate(
            &input(
                json!([finding("PKL003", "medium")]),
                STAGES_COMPLETE,
                json!([]),
            ),
            None,
        )
        .unwrap();
    assert!(d.allow, "{d:?}");
    assert!(d.deny.is_empty() && d.warn.is_empty());
}

#[test]
fn default_policy_refuses_high_findings_and_incomplete_scans_with_every_reason() {
    let p = Policy::default_policy().unwrap();
    let stages = STAGES_COMPLETE.replace(r#""tensor":"complete""#, r#""tensor":"not_run""#);
    let d = p
        .evaluate(
            &input(json!([finding("PKL001", "critical")]), &stages, json!([])),
            None,
        )
        .unwrap();
    assert!(!d.allow);
    assert_eq!(
        d.deny,
        [
            "critical finding PKL001 in m/a.pt!/archive/data.pkl: pickle calls os.system",
            "scan incomplete: stage tensor is not_run",
        ]
    );
}

#[test]
fn settings_come_from_data_config() {
    let p = Policy::default_policy().unwrap();
    let i = input(json!([finding("PKL003", "medium")]), r#"{}"#, json!([]));
    let cfg = json!({"config": {"fail_on": "medium", "require_complete": false}});
    let d = p.evaluate(&i, Some(&cfg)).unwrap();
    assert_eq!(d.deny.len(), 1, "{d:?}");
    assert!(d.deny[0].starts_with("medium finding PKL003"));
    let sig = json!({"config": {"require_signature": true, "require_complete": false}});
    let d = p.evaluate(&i, Some(&sig)).unwrap();
    assert_eq!(
        d.deny,
        ["not signed: no verified signature or scan attestation from a trusted key"]
    );
}

#[test]
fn suppressions_apply_until_they_expire_and_unused_ones_are_reported() {
    let p = Policy::default_policy().unwrap();
    let sup = json!([
        {"id": "S1", "rule": "PKL001", "path": "m/a.pt", "reason": "r", "expires": "2027-01-01T00:00:00Z"},
        {"id": "S2", "rule": "PKL002", "reason": "r", "expires": "2027-01-01T00:00:00Z"},
        {"id": "S3", "rule": "PKL001", "path": "m/", "reason": "r", "expires": "2026-01-01T00:00:00Z"},
    ]);
    let d = p
        .evaluate(
            &input(json!([finding("PKL001", "critical")]), STAGES_COMPLETE, sup),
            None,
        )
        .unwrap();
    assert!(d.allow, "{d:?}");
    assert_eq!(d.suppressed.len(), 1);
    assert_eq!(d.suppressed[0]["suppression"], "S1");
    assert_eq!(
        d.warn,
        [
            "suppression S2 (PKL002) matches no finding; remove it",
            "suppression S3 (PKL001) expired on 2026-01-01T00:00:00Z; it no longer applies",
        ]
    );
    // Once S1 has expired too, the finding refuses the model again.
    let mut i = input(
        json!([finding("PKL001", "critical")]),
        STAGES_COMPLETE,
        json!([
        {"id": "S1", "rule": "PKL001", "reason": "r", "expires": "2026-01-01T00:00:00Z"}]),
    );
    i["now"] = json!("2026-06-01T00:00:00Z");
    let d = p.evaluate(&i, None).unwrap();
    assert!(!d.allow);
}

#[test]
fn policy_errors_name_the_file_and_line() {
    let e = Policy::from_source(
        "mine.rego",
        "package assay\nimport rego.v1\n\ndeny contains x if {\n  x := \n}\n",
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("mine.rego:5:5"), "{e}");
    let e = Policy::from_source(
        "other.rego",
        "package other\nimport rego.v1\ndeny contains 1 if true\n",
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("package assay"), "{e}");
    let nodeny = Policy::from_source(
        "nodeny.rego",
        "package assay\nimport rego.v1\nallow := true\n",
    )
    .unwrap();
    let e = nodeny.evaluate(&json!({}), None).unwrap_err().to_string();
    assert!(e.contains("no `deny` rule"), "{e}");
    // A runtime error (conflicting values of a complete rule) points at the policy.
    let conflict = Policy::from_source(
        "conflict.rego",
        "package assay\nimport rego.v1\nx := 1\nx := 2\ndeny contains \"d\" if x == 1\n",
    );
    let e = match conflict {
        Err(e) => e.to_string(),
        Ok(p) => p.evaluate(&json!({}), None).unwrap_err().to_string(),
    };
    assert!(e.contains("conflict.rego:"), "{e}");
}

#[test]
fn deny_objects_use_their_msg() {
    let p = Policy::from_source(
        "obj.rego",
        "package assay\nimport rego.v1\ndeny contains {\"msg\": \"no\", \"code\": 1} if true\n",
    )
    .unwrap();
    let d = p.evaluate(&json!({}), None).unwrap();
    assert_eq!(d.deny, ["no"]);
}

#[test]
fn shipped_examples_compile_and_behave() {
    let p = Policy::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/policy/examples/require_signature.rego"
    )))
    .unwrap();
    let i = input(json!([]), STAGES_COMPLETE, json!([]));
    let d = p
        .evaluate(&i, Some(&json!({"release_keys": ["k1"]})))
        .unwrap();
    assert_eq!(d.deny.len(), 1);
    assert!(d.deny[0].starts_with("model is not signed"));
    let mut signed = i.clone();
    signed["signature"] = json!({"present": true, "verified": true, "signer": {"key_hint": "k1"}, "path": "m/model.sig"});
    let d = p
        .evaluate(&signed, Some(&json!({"release_keys": ["k1"]})))
        .unwrap();
    assert!(d.allow, "{d:?}");
    let d = p
        .evaluate(&signed, Some(&json!({"release_keys": ["k2"]})))
        .unwrap();
    assert_eq!(d.deny, ["signed by key k1, which is not a release key"]);
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/policy/examples/suppressions.toml"
    ))
    .unwrap();
    assert_eq!(
        parse_suppressions("suppressions.toml", &text)
            .unwrap()
            .len(),
        1
    );
}
