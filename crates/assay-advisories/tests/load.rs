//! Loading real OSV data (a pinned PyPA subset, tests/data/osv-ml) as a folder and as an
//! all.zip export, and refusing what is not a database.

use assay_advisories::version::{Requirement, Verdict, is_affected, parse};
use assay_advisories::{Database, Feature, LoadError};
use std::path::{Path, PathBuf};

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

fn ids(db: &Database, pkg: &str) -> Vec<String> {
    let mut v: Vec<String> = db.for_package(pkg).map(|a| a.id.clone()).collect();
    v.sort();
    v
}

#[test]
fn folder_and_zip_load_the_same_records() {
    let folder = Database::load(&data("osv-ml")).unwrap();
    let zip = Database::load(&data("osv-ml.zip")).unwrap();
    assert_eq!(folder.len(), 10);
    assert_eq!(zip.len(), 10);
    assert!(folder.problems.is_empty() && zip.problems.is_empty());
    assert_eq!(ids(&folder, "onnx"), ids(&zip, "ONNX"));
    assert_eq!(
        ids(&folder, "onnx"),
        ["PYSEC-2023-38", "PYSEC-2024-222", "PYSEC-2024-223"]
    );
    assert_eq!(
        folder.newest.as_deref().map(|d| &d[..10]),
        Some("2025-02-10")
    );
    assert_eq!(zip.newest.as_deref().map(|d| &d[..10]), Some("2025-02-10"));
}

#[test]
fn pysec_records_match_with_pep_440() {
    let db = Database::load(&data("osv-ml")).unwrap();
    let cve = db
        .for_package("onnx")
        .find(|a| a.aliases.iter().any(|x| x == "CVE-2024-27318"))
        .unwrap();
    let a = &cve.affected[0];
    assert!(is_affected(&parse("1.15.0").unwrap(), a));
    assert!(!is_affected(&parse("1.16.0").unwrap(), a));
    assert_eq!(
        Requirement::parse("<1.16").unwrap().verdict(a),
        Verdict::Affected
    );
    // The built-in trigger table applies to loaded records through their aliases.
    assert_eq!(db.triggers(cve), [Feature::OnnxExternalData]);
    // Explicit versions lists: PYSEC-2023-38 lists 0.1 … 1.12.0.
    let old = db
        .for_package("onnx")
        .find(|a| a.id == "PYSEC-2023-38")
        .unwrap();
    assert!(is_affected(&parse("1.2.1").unwrap(), &old.affected[0]));
}

#[test]
fn builtin_set_is_merged_without_duplicates() {
    let db = Database::load(&data("osv-ml")).unwrap().with_builtin();
    // CVE-2024-27318 is in both: the loaded PYSEC record wins.
    let onnx = ids(&db, "onnx");
    assert!(onnx.contains(&"PYSEC-2024-222".to_string()));
    assert!(!onnx.contains(&"CVE-2024-27318".to_string()));
    // Advisories only the built-in set has (GHSA-only ones) are added.
    assert!(ids(&db, "llama_cpp_python").contains(&"CVE-2024-34359".to_string()));
    assert!(ids(&db, "keras").contains(&"CVE-2025-1550".to_string()));
    let builtin = Database::builtin();
    assert!(builtin.len() >= 20);
    assert_eq!(builtin.newest.as_deref(), Some("2026-11-26"));
}

#[test]
fn malformed_records_are_reported_not_fatal() {
    let db = Database::load(&data("broken")).unwrap();
    assert_eq!(ids(&db, "demo-pkg"), ["GOOD-1"]);
    let files: Vec<String> = db
        .problems
        .iter()
        .map(|p| p.file.rsplit('/').next().unwrap().to_string())
        .collect();
    assert_eq!(files, ["list.yaml", "noid.json", "truncated.json"]);
}

#[test]
fn empty_or_wrong_databases_are_refused() {
    let e = Database::load(&data("empty.zip")).unwrap_err();
    assert!(matches!(e, LoadError::Empty { .. }), "{e}");
    assert!(e.to_string().contains("refusing"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let e = Database::load(dir.path()).unwrap_err();
    assert!(matches!(e, LoadError::Empty { .. }));
    std::fs::write(dir.path().join("x.json"), b"{not json").unwrap();
    let e = Database::load(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("1 record(s) unreadable") && e.contains("x.json"),
        "{e}"
    );
    let e = Database::load(&dir.path().join("missing.zip")).unwrap_err();
    assert!(matches!(e, LoadError::Io { .. }));
    std::fs::write(dir.path().join("bad.zip"), b"PK\x03\x04garbage").unwrap();
    let e = Database::load(&dir.path().join("bad.zip")).unwrap_err();
    assert!(matches!(e, LoadError::Format { .. }), "{e}");
}
