//! The shipped detector on the S-Labs held-out test split, when the shared data is beside
//! the checkout (`../shared`, as in CI): guards the README's figures against regressions.

use assay_firewall::Policy;
use assay_firewall::scan::{Role, Scanners};
use std::path::Path;

/// `text,label` rows; quoted fields may hold commas, doubled quotes and newlines.
fn parse_csv(s: &str) -> Vec<(String, u8)> {
    let mut rows = Vec::new();
    let (mut field, mut fields, mut quoted) = (String::new(), Vec::new(), false);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            ('\n', false) => {
                fields.push(std::mem::take(&mut field));
                if let [text, label] = &fields[..]
                    && let Ok(l) = label.trim().parse()
                {
                    rows.push((text.clone(), l));
                }
                fields.clear();
            }
            ('\r', false) => {}
            _ => field.push(c),
        }
    }
    rows
}

/// The shared data folder: `ASSAY_SHARED`, or `../shared` beside the checkout (as in CI).
fn shared() -> std::path::PathBuf {
    std::env::var_os("ASSAY_SHARED")
        .map(Into::into)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

#[test]
fn slabs_heldout_rates() {
    let path = shared().join("firewall-data/s-labs/slabs_test.csv");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("skipping: {} not found", path.display());
        return;
    };
    let rows = parse_csv(&text);
    assert!(rows.len() > 2000, "{}", rows.len());
    let s = Scanners::new(Policy::default());
    let (mut tp, mut pos, mut fp, mut neg) = (0, 0, 0, 0);
    for (t, label) in &rows {
        let flagged = s
            .scan_input(t, Role::User)
            .iter()
            .any(|f| f.rule <= "FWL003");
        if *label == 1 {
            pos += 1;
            tp += flagged as usize;
        } else {
            neg += 1;
            fp += flagged as usize;
        }
    }
    let (tpr, fpr) = (tp as f64 / pos as f64, fp as f64 / neg as f64);
    eprintln!("S-Labs test: TPR {tpr:.3} FPR {fpr:.3} ({pos} injections, {neg} benign)");
    assert!(tpr >= 0.8, "TPR {tpr}");
    assert!(fpr <= 0.02, "FPR {fpr}");
}

/// CyberSecEval's prompt-injection cases are never trained on: the out-of-distribution
/// figure. Reported per attack variant; the floor guards the README's figure.
#[test]
fn cyberseceval_heldout_rates() {
    let path = shared().join("research-data/cyberseceval_prompt_injection/prompt_injection.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("skipping: {} not found", path.display());
        return;
    };
    let cases: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let s = Scanners::new(Policy::default());
    let mut seen = std::collections::HashSet::new();
    let mut by: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    for c in &cases {
        let t = c["user_input"].as_str().unwrap();
        // Each distinct text once, compared as prepare_corpus.py does (lower case, runs of
        // anything but a-z and 0-9 as one space), so the count matches the README's 234.
        let norm: String = t
            .to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { ' ' })
            .collect();
        if !seen.insert(norm.split_whitespace().collect::<Vec<_>>().join(" ")) {
            continue;
        }
        let hit = s
            .scan_input(t, Role::User)
            .iter()
            .any(|f| f.rule <= "FWL003");
        let e = by
            .entry(c["injection_variant"].as_str().unwrap().to_string())
            .or_default();
        e.0 += hit as usize;
        e.1 += 1;
    }
    let (hit, all) = by.values().fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    for (k, (h, n)) in &by {
        eprintln!("{k:<32} {h:>3}/{n:<3}");
    }
    let tpr = hit as f64 / all as f64;
    eprintln!("CyberSecEval: TPR {tpr:.3} ({hit}/{all})");
    assert!(tpr >= 0.65, "TPR {tpr}");
}

/// Every row of a corpus from `prepare_corpus.py` (`ASSAY_FW_CORPUS`), by source and split:
/// the rules are not trained, so for them every benign row is held out.
/// `ASSAY_FW_CORPUS=target/firewall-train/corpus.jsonl cargo test -p assay-firewall --test heldout -- --ignored --nocapture`
#[test]
#[ignore]
fn corpus_report() {
    let Some(path) = std::env::var_os("ASSAY_FW_CORPUS") else {
        return;
    };
    let text = std::fs::read_to_string(&path).unwrap();
    let s = Scanners::new(Policy::default());
    let mut by: std::collections::BTreeMap<(String, String), (usize, usize, usize, usize)> =
        Default::default();
    for (i, line) in text.lines().enumerate() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        let t = r["text"].as_str().unwrap();
        let hit = s
            .scan_input(t, Role::User)
            .iter()
            .any(|f| f.rule <= "FWL003");
        let e = by
            .entry((
                r["source"].as_str().unwrap().to_string(),
                r["split"].as_str().unwrap().to_string(),
            ))
            .or_default();
        if r["label"] == 1 {
            e.0 += hit as usize;
            e.1 += 1;
        } else {
            e.2 += hit as usize;
            e.3 += 1;
            if hit && std::env::var_os("ASSAY_FW_SHOW_FP").is_some() {
                eprintln!(
                    "FP {} {}: {:?}",
                    i + 1,
                    r["source"],
                    t.chars().take(300).collect::<String>()
                );
            }
        }
    }
    for ((src, split), (tp, p, fp, n)) in by {
        eprintln!("{src:<24} {split:<5} TP {tp:>5}/{p:<5} FP {fp:>4}/{n:<5}");
    }
}
