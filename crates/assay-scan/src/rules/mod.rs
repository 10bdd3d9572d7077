//! The code table: every rule Assay can report, with its documentation. Each rule's doc
//! is one Markdown file under `crates/assay-scan/rules/CODE.md` with a small front matter
//! (name, stage, severity, since, summary); `assay explain CODE` prints it and SARIF
//! embeds it. Codes are never reused.

pub mod callables;

use assay_report::{RuleDoc, Severity, Stage};
use std::sync::LazyLock;

macro_rules! table {
    ($($code:ident),* $(,)?) => {
        /// (code, markdown source) for every rule, in code order.
        const SOURCES: &[(&str, &str)] = &[
            $((stringify!($code), include_str!(concat!("../../rules/", stringify!($code), ".md"))),)*
        ];
        /// Rule codes as constants, so a typo is a compile error.
        #[allow(dead_code)]
        pub mod code {
            $(pub const $code: &str = stringify!($code);)*
        }
    };
}

table! {
    ARC001, ARC002, ARC003, ARC004, ARC005,
    CVE001, CVE002, CVE003, CVE004, CVE005, CVE006,
    EXE001, EXE002,
    GGF001, GGF002, GGF003, GGF004, GGF005, GGF006, GGF007, GGF008, GGF009,
    HFR001, HFR002, HFR003, HFR004,
    HFR010, HFR011, HFR012, HFR013, HFR014, HFR015, HFR016, HFR017, HFR018, HFR019,
    HFR020, HFR021, HFR022, HFR023, HFR024,
    KER001, KER002, KER003, KER004, KER005, KER006, KER007, KER008,
    NET001,
    NPY001, NPY002,
    ONX001, ONX002, ONX003, ONX004, ONX005,
    PKL001, PKL002, PKL003, PKL004, PKL005, PKL006, PKL007, PKL008, PKL009, PKL010,
    PKL011, PKL012, PKL013,
    SEC001, SEC002, SEC003, SEC004, SEC005, SEC006, SEC007, SEC008, SEC009, SEC010,
    SEC011,
    SFT001, SFT002, SFT003, SFT004, SFT005, SFT006, SFT007, SFT008, SFT009,
    TCH001,
    TEN001, TEN002, TEN003, TEN004, TEN005, TEN006, TEN007, TEN008, TEN009, TEN010,
    TEN011,
    TFS001, TFS002, TFS003, TFS004, TFS005, TFS006, TFS007, TFS008, TFS009, TFS010,
    ZIP001, ZIP002, ZIP003, ZIP004,
}

fn parse(code: &'static str, src: &'static str) -> RuleDoc {
    let body = src.strip_prefix("---\n").unwrap_or(src);
    let (front, doc) = body.split_once("\n---\n").unwrap_or(("", body));
    let field = |key: &str| -> &'static str {
        front
            .lines()
            .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(": ")))
            .unwrap_or("")
    };
    let front: &'static str = front;
    let _ = front;
    let stage = match field("stage") {
        "network" => Stage::Network,
        "vulnerability" => Stage::Vulnerability,
        "backdoor" => Stage::Backdoor,
        "integrity" => Stage::Integrity,
        "tensor" => Stage::Tensor,
        _ => Stage::Malware,
    };
    RuleDoc {
        code,
        name: field("name"),
        stage,
        severity: Severity::parse(field("severity")).unwrap_or(Severity::High),
        summary: field("summary"),
        doc: doc.trim_start(),
        since: field("since"),
    }
}

static RULES: LazyLock<Vec<RuleDoc>> =
    LazyLock::new(|| SOURCES.iter().map(|(c, s)| parse(c, s)).collect());

/// Every rule, in code order.
pub fn all() -> &'static [RuleDoc] {
    &RULES
}

/// The rule with this code (case-insensitive).
pub fn lookup(code: &str) -> Option<&'static RuleDoc> {
    RULES.iter().find(|r| r.code.eq_ignore_ascii_case(code))
}

/// The stage a rule reports under (rules always exist: codes are constants).
pub fn stage_of(code: &str) -> Stage {
    lookup(code).map(|r| r.stage).unwrap_or(Stage::Malware)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_has_complete_documentation() {
        for r in all() {
            assert!(!r.name.is_empty(), "{} has no name", r.code);
            assert!(!r.summary.is_empty(), "{} has no summary", r.code);
            for heading in [
                "## What it detects",
                "## Why is this dangerous?",
                "## Example",
                "## Remediation",
            ] {
                assert!(r.doc.contains(heading), "{} lacks {heading}", r.code);
            }
        }
    }

    #[test]
    fn codes_are_unique_and_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for r in all() {
            assert!(seen.insert(r.code), "duplicate {}", r.code);
            let (family, num) = r.code.split_at(3);
            assert!(family.chars().all(|c| c.is_ascii_uppercase()));
            assert!(num.len() == 3 && num.chars().all(|c| c.is_ascii_digit()));
        }
    }
}
