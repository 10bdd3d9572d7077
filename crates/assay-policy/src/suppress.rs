//! Suppressions: findings an owner has looked at and accepts, for a while.
//!
//! ```toml
//! [[suppression]]
//! id = "SUP-001"                      # unique; named in reports
//! rule = "PKL003"                     # the rule it silences
//! path = "models/bert/optimizer.pt"   # optional: a report path, or a folder ending in /
//! reason = "custom nn.Module, reviewed in TICKET-12"
//! expires = "2026-12-31"              # required: YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ
//! ```
//!
//! Every entry needs an id, a rule, a reason and an expiry; problems are reported with
//! the file's line and column. Whether a suppression applies is the policy's decision
//! (the default policy honours unexpired ones and reports expired and unused ones).

use serde::{Deserialize, Serialize};

/// Most suppressions in one file.
pub const MAX_SUPPRESSIONS: usize = 10_000;

/// One suppression as the policy sees it (`input.suppressions[_]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suppression {
    pub id: String,
    pub rule: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub reason: String,
    /// RFC 3339 UTC with whole seconds (`2026-12-31T00:00:00Z`), so that string order is
    /// time order in the policy.
    pub expires: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    suppression: Vec<toml::Spanned<Entry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    id: Option<String>,
    rule: Option<String>,
    path: Option<String>,
    reason: Option<String>,
    expires: Option<toml::Spanned<String>>,
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
    (line, col)
}

/// `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SSZ` → the latter; `None` if it is neither or not
/// a real date and time.
pub fn normalize_time(s: &str) -> Option<String> {
    let s = s.trim();
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let b = date.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y: u32 = date.get(0..4)?.parse().ok()?;
    let m: u32 = date.get(5..7)?.parse().ok()?;
    let d: u32 = date.get(8..10)?.parse().ok()?;
    let leap = (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m) || d == 0 || d > days[(m - 1) as usize] {
        return None;
    }
    let (hh, mm, ss) = match time {
        None => (0, 0, 0),
        Some(t) => {
            let t = t.strip_suffix('Z')?;
            let parts: Vec<&str> = t.split(':').collect();
            let [h, mi, se] = parts.as_slice() else {
                return None;
            };
            if h.len() != 2 || mi.len() != 2 || se.len() != 2 {
                return None;
            }
            let (h, mi, se): (u32, u32, u32) =
                (h.parse().ok()?, mi.parse().ok()?, se.parse().ok()?);
            if h > 23 || mi > 59 || se > 60 {
                return None;
            }
            (h, mi, se)
        }
    };
    Some(format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z"))
}

/// Reads a suppressions file; `name` is the file name messages show. Every problem is
/// collected and reported at once, each with its line and column.
pub fn parse_suppressions(name: &str, text: &str) -> Result<Vec<Suppression>, String> {
    let file: File = toml::from_str(text).map_err(|e| match e.span() {
        Some(span) => {
            let (l, c) = line_col(text, span.start);
            format!("{name}:{l}:{c}: {}", e.message())
        }
        None => format!("{name}: {}", e.message()),
    })?;
    if file.suppression.len() > MAX_SUPPRESSIONS {
        return Err(format!("{name}: more than {MAX_SUPPRESSIONS} suppressions"));
    }
    let mut out = Vec::new();
    let mut problems = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for spanned in file.suppression {
        let (l, c) = line_col(text, spanned.span().start);
        let at = format!("{name}:{l}:{c}");
        let e = spanned.into_inner();
        let nonempty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        let id = nonempty(e.id);
        let rule = nonempty(e.rule);
        let reason = nonempty(e.reason);
        let mut missing = Vec::new();
        if id.is_none() {
            missing.push("id");
        }
        if rule.is_none() {
            missing.push("rule");
        }
        if reason.is_none() {
            missing.push("reason");
        }
        if e.expires.is_none() {
            missing.push("expires");
        }
        if !missing.is_empty() {
            problems.push(format!(
                "{at}: suppression {} needs {}",
                id.as_deref().unwrap_or("(no id)"),
                missing.join(", ")
            ));
            continue;
        }
        let expires_spanned = e
            .expires
            .unwrap_or_else(|| toml::Spanned::new(0..0, String::new()));
        let Some(expires) = normalize_time(expires_spanned.get_ref()) else {
            let (l, c) = line_col(text, expires_spanned.span().start);
            problems.push(format!(
                "{name}:{l}:{c}: expires {:?} is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ)",
                expires_spanned.get_ref()
            ));
            continue;
        };
        let id = id.unwrap_or_default();
        if !seen.insert(id.clone()) {
            problems.push(format!("{at}: suppression id {id} is used twice"));
            continue;
        }
        out.push(Suppression {
            id,
            rule: rule.unwrap_or_default(),
            path: nonempty(e.path),
            reason: reason.unwrap_or_default(),
            expires,
        });
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_dates() {
        assert_eq!(
            normalize_time("2026-12-31").unwrap(),
            "2026-12-31T00:00:00Z"
        );
        assert_eq!(
            normalize_time("2026-02-28T13:05:09Z").unwrap(),
            "2026-02-28T13:05:09Z"
        );
        assert!(normalize_time("2026-02-29").is_none());
        assert!(normalize_time("2024-02-29").is_some());
        assert!(normalize_time("31/12/2026").is_none());
        assert!(normalize_time("2026-12-31T10:00:00+02:00").is_none());
    }

    #[test]
    fn parses_and_reports_every_problem_with_its_line() {
        let ok = "[[suppression]]\nid = \"S1\"\nrule = \"PKL003\"\nreason = \"reviewed\"\nexpires = \"2030-01-01\"\n";
        let s = parse_suppressions("s.toml", ok).unwrap();
        assert_eq!(s[0].expires, "2030-01-01T00:00:00Z");
        assert_eq!(s[0].path, None);
        let bad = "[[suppression]]\nid = \"S1\"\nrule = \"PKL003\"\nexpires = \"2030-01-01\"\n\n[[suppression]]\nid = \"S2\"\nrule = \"X\"\nreason = \"r\"\nexpires = \"soon\"\n";
        let e = parse_suppressions("s.toml", bad).unwrap_err();
        assert!(e.contains("s.toml:1:1: suppression S1 needs reason"), "{e}");
        assert!(e.contains("s.toml:10:11: expires \"soon\""), "{e}");
        let syntax = parse_suppressions("s.toml", "[[suppression]]\nid = \n").unwrap_err();
        assert!(syntax.starts_with("s.toml:2:"), "{syntax}");
        let unknown = parse_suppressions("s.toml", "[[suppression]]\nidd = \"x\"\n").unwrap_err();
        assert!(unknown.contains("idd"), "{unknown}");
    }
}
