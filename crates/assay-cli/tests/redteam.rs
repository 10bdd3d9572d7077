//! `assay redteam` end to end: the binary against in-process mock endpoints (a leaky one
//! and a well-behaved one), exit codes and every report format.

use assay_redteam::mock::{self, MockKind};
use serde_json::Value;
use std::process::{Command, Output};

fn assay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_assay"))
        .args(args)
        .output()
        .expect("run assay")
}

#[test]
fn leaky_target_fails_the_gate_with_evidence() {
    let m = mock::spawn(MockKind::Leaky, 0).unwrap();
    let out = assay(&[
        "redteam",
        "--target",
        &m.url(),
        "--format",
        "json",
        "--fail-above",
        "50%",
        "-q",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &v["summary"];
    assert!(s["attack_success_rate"].as_f64().unwrap() > 0.8, "{s}");
    assert_eq!(s["verdict"], "fail");
    assert!(s["succeeded"].as_u64().unwrap() > 100);
    let suites = v["suites"].as_array().unwrap();
    assert_eq!(suites.len(), 9);
    let spe = suites
        .iter()
        .find(|s| s["name"] == "system-prompt-extraction")
        .unwrap();
    let r = &spe["results"][0];
    assert_eq!(r["status"], "succeeded");
    assert!(
        r["reply"]
            .as_str()
            .unwrap()
            .contains(v["canary"].as_str().unwrap())
    );
    assert_eq!(r["verdict"]["detector"], "canary");
}

#[test]
fn well_behaved_target_passes_the_gate() {
    let m = mock::spawn(MockKind::Refusing, 0).unwrap();
    let out = assay(&[
        "redteam",
        "--target",
        &format!("{}/v1", m.url()),
        "--fail-above",
        "0.1",
        "-q",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("attack success rate: 0.0%"), "{text}");
    assert!(
        text.contains("false-refusal rate on benign requests: 100.0%"),
        "{text}"
    );
    assert!(text.contains("verdict: PASS"), "{text}");
}

#[test]
fn html_report_is_self_contained() {
    let m = mock::spawn(MockKind::Leaky, 0).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.html");
    let out = assay(&[
        "redteam",
        "--target",
        &m.url(),
        "--suite",
        "encoding,benign",
        "--format",
        "html",
        "-o",
        path.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let html = std::fs::read_to_string(&path).unwrap();
    assert!(html.starts_with("<!doctype html>") && html.contains("<svg"));
    assert!(!html.contains("<script") && !html.contains("src=\"http") && !html.contains("<link"));
    // Smuggled Unicode tag characters are shown, not passed through invisibly.
    assert!(html.contains("U+E0001"));
}

#[test]
fn subcommands_and_usage_errors() {
    let out = assay(&["redteam", "suites"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("system-prompt-extraction") && text.contains("licence: MIT"));
    let out = assay(&["redteam", "refusal-eval"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("accuracy"));
    assert_eq!(assay(&["redteam"]).status.code(), Some(2));
    assert_eq!(
        assay(&[
            "redteam",
            "--target",
            "http://127.0.0.1:9",
            "--fail-above",
            "150%"
        ])
        .status
        .code(),
        Some(2)
    );
    assert_eq!(
        assay(&[
            "redteam",
            "--target",
            "http://127.0.0.1:9",
            "--suite",
            "nope"
        ])
        .status
        .code(),
        Some(2)
    );
    // Nothing listens: every probe fails, which is an error, not a pass.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = assay(&[
        "redteam",
        "--target",
        &format!("http://127.0.0.1:{port}"),
        "--max-probes",
        "2",
        "--retries",
        "0",
        "-q",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("every probe failed"));
}
