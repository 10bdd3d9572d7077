//! The firewall's rule codes (family `FWL`) and their documentation, one Markdown file per
//! rule under `rules/CODE.md` with a small front matter (name, applies, action, since,
//! summary). Codes are never reused.

use std::sync::LazyLock;

macro_rules! table {
    ($($code:ident),* $(,)?) => {
        const SOURCES: &[(&str, &str)] = &[
            $((stringify!($code), include_str!(concat!("../rules/", stringify!($code), ".md"))),)*
        ];
        /// Rule codes as constants, so a typo is a compile error.
        pub mod code {
            $(pub const $code: &str = stringify!($code);)*
        }
    };
}

table! {
    FWL001, FWL002, FWL003, FWL004, FWL005, FWL006,
    FWL010,
    FWL020, FWL021, FWL022, FWL023, FWL024, FWL025,
    FWL030, FWL031, FWL032, FWL033,
    FWL040, FWL041,
}

/// One rule's documentation.
#[derive(Debug, Clone)]
pub struct FirewallRule {
    pub code: &'static str,
    pub name: &'static str,
    /// `request`, `response` or `both`.
    pub applies: &'static str,
    /// The default (balanced) action, in words.
    pub action: &'static str,
    pub since: &'static str,
    pub summary: &'static str,
    /// Markdown body: What it detects / Why is this dangerous? / Example / Remediation.
    pub doc: &'static str,
}

fn parse(code: &'static str, src: &'static str) -> FirewallRule {
    let body = src.strip_prefix("---\n").unwrap_or(src);
    let (front, doc) = body.split_once("\n---\n").unwrap_or(("", body));
    let field = |key: &str| -> &'static str {
        front
            .lines()
            .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(": ")))
            .unwrap_or("")
    };
    FirewallRule {
        code,
        name: field("name"),
        applies: field("applies"),
        action: field("action"),
        since: field("since"),
        summary: field("summary"),
        doc: doc.trim_start(),
    }
}

static RULES: LazyLock<Vec<FirewallRule>> =
    LazyLock::new(|| SOURCES.iter().map(|(c, s)| parse(c, s)).collect());

/// Every firewall rule, in code order.
pub fn all() -> &'static [FirewallRule] {
    &RULES
}

/// The rule with this code (case-insensitive).
pub fn lookup(code: &str) -> Option<&'static FirewallRule> {
    RULES.iter().find(|r| r.code.eq_ignore_ascii_case(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_has_complete_documentation() {
        for r in all() {
            assert!(!r.name.is_empty() && !r.summary.is_empty(), "{}", r.code);
            assert!(
                matches!(r.applies, "request" | "response" | "both"),
                "{}",
                r.code
            );
            for h in [
                "## What it detects",
                "## Why is this dangerous?",
                "## Example",
                "## Remediation",
                "## References",
            ] {
                assert!(r.doc.contains(h), "{} lacks {h}", r.code);
            }
            assert!(r.doc.is_ascii(), "{} doc must be plain ASCII", r.code);
        }
        assert!(lookup("fwl010").is_some());
    }
}
