//! Reversible redaction: numbered placeholders go upstream, the originals are kept in a
//! per-request vault and put back into the response for the same caller.

/// Placeholders handed out per request; past this the same placeholder is reused, so a
/// hostile prompt with a million e-mail addresses cannot grow the vault without bound.
const MAX_ENTRIES: usize = 4096;

pub struct Vault {
    reversible: bool,
    /// (placeholder, original).
    entries: Vec<(String, String)>,
}

impl Vault {
    pub fn new(reversible: bool) -> Vault {
        Vault {
            reversible,
            entries: Vec::new(),
        }
    }

    /// The placeholder for `original` (the same original gets the same placeholder).
    pub fn placeholder(&mut self, kind: &str, original: &str) -> String {
        if !self.reversible {
            return format!("[REDACTED_{kind}]");
        }
        if let Some((p, _)) = self
            .entries
            .iter()
            .find(|(p, o)| o == original && p[1..].starts_with(kind))
        {
            return p.clone();
        }
        if self.entries.len() >= MAX_ENTRIES {
            return format!("[REDACTED_{kind}]");
        }
        let n = self
            .entries
            .iter()
            .filter(|(p, _)| {
                p[1..].starts_with(kind) && p.as_bytes().get(kind.len() + 1) == Some(&b'_')
            })
            .count()
            + 1;
        let p = format!("[{kind}_{n}]");
        self.entries.push((p.clone(), original.to_string()));
        p
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Puts the originals back. Longer placeholders first, so `[EMAIL_12]` is not read
    /// as `[EMAIL_1]` followed by `2]`.
    pub fn restore(&self, text: &str) -> String {
        if self.entries.is_empty() || !text.contains('[') {
            return text.to_string();
        }
        let mut order: Vec<&(String, String)> = self.entries.iter().collect();
        order.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        let mut out = text.to_string();
        for (p, o) in order {
            if out.contains(p.as_str()) {
                out = out.replace(p.as_str(), o);
            }
        }
        out
    }

    /// The longest placeholder, so streaming knows how much text a split placeholder spans.
    pub fn longest_placeholder(&self) -> usize {
        self.entries.iter().map(|(p, _)| p.len()).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbering_reuse_and_restore() {
        let mut v = Vault::new(true);
        assert_eq!(v.placeholder("EMAIL", "a@x.org"), "[EMAIL_1]");
        assert_eq!(v.placeholder("EMAIL", "b@x.org"), "[EMAIL_2]");
        assert_eq!(v.placeholder("EMAIL", "a@x.org"), "[EMAIL_1]");
        assert_eq!(v.placeholder("IP", "10.0.0.1"), "[IP_1]");
        assert_eq!(
            v.restore("to [EMAIL_2] and [EMAIL_1] via [IP_1]"),
            "to b@x.org and a@x.org via 10.0.0.1"
        );
    }

    #[test]
    fn irreversible_vault_keeps_nothing() {
        let mut v = Vault::new(false);
        assert_eq!(v.placeholder("SSN", "123-45-6789"), "[REDACTED_SSN]");
        assert!(v.is_empty());
        assert_eq!(v.restore("[REDACTED_SSN]"), "[REDACTED_SSN]");
    }
}
