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

#[test]
fn slabs_heldout_rates() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/firewall-data/s-labs/slabs_test.csv");
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
