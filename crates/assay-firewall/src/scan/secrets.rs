//! API keys, tokens and private keys (FWL010), by provider format.
//!
//! Each pattern is specific enough (prefix, alphabet, length) that a hit is very likely a
//! real credential; generic "high-entropy string" detection is deliberately left out, it
//! fires on hashes, UUIDs and base64 payloads in ordinary prompts.

use super::{Finding, Redaction};
use crate::policy::Action;
use crate::rules::code;
use regex::{Regex, RegexSet};

/// (what, pattern). Word boundaries are explicit so keys glued to punctuation are found.
const PATTERNS: &[(&str, &str)] = &[
    (
        "anthropic api key",
        r"\bsk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_\-]{80,120}",
    ),
    (
        "openai api key",
        r"\bsk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_\-]{20,200}T3BlbkFJ[A-Za-z0-9_\-]{20,200}",
    ),
    (
        "openai-style api key",
        r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9][A-Za-z0-9_\-]{30,200}",
    ),
    (
        "aws access key id",
        r"\b(?:AKIA|ASIA|ABIA|ACCA|AROA|AIDA)[0-9A-Z]{16}\b",
    ),
    (
        "aws secret access key",
        r"(?i)aws.{0,20}(?:secret|private).{0,20}[=:]\s*['\x22]?[A-Za-z0-9/+=]{40}\b",
    ),
    ("google api key", r"\bAIza[0-9A-Za-z_\-]{35}"),
    ("google oauth token", r"\bya29\.[0-9A-Za-z_\-]{30,}"),
    ("github token", r"\bgh[pousr]_[A-Za-z0-9]{36,255}\b"),
    (
        "github fine-grained token",
        r"\bgithub_pat_[A-Za-z0-9_]{60,255}",
    ),
    ("gitlab token", r"\bglpat-[A-Za-z0-9_\-]{20,}"),
    ("slack token", r"\bxox[abposr]-[A-Za-z0-9\-]{10,}"),
    (
        "slack webhook",
        r"https://hooks\.slack\.com/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]+",
    ),
    ("stripe key", r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"),
    ("hugging face token", r"\bhf_[A-Za-z0-9]{34,}\b"),
    ("groq api key", r"\bgsk_[A-Za-z0-9]{48,}\b"),
    ("xai api key", r"\bxai-[A-Za-z0-9]{60,}\b"),
    ("twilio api key", r"\bSK[0-9a-f]{32}\b"),
    (
        "sendgrid api key",
        r"\bSG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}",
    ),
    ("npm token", r"\bnpm_[A-Za-z0-9]{36}\b"),
    ("pypi token", r"\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,}"),
    ("azure storage key", r"AccountKey=[A-Za-z0-9+/]{80,}={0,2}"),
    (
        "private key",
        r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----",
    ),
    (
        "json web token",
        r"\beyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}",
    ),
    ("bearer token", r"(?i)\bbearer\s+[A-Za-z0-9_\-.~+/]{30,}=*"),
];

pub struct SecretScanner {
    set: RegexSet,
    each: Vec<Regex>,
}

impl Default for SecretScanner {
    fn default() -> Self {
        Self::new()
    }
}

impl SecretScanner {
    pub fn new() -> SecretScanner {
        let pats = PATTERNS.iter().map(|(_, p)| *p);
        SecretScanner {
            set: RegexSet::new(pats.clone()).expect("secret patterns compile"),
            each: pats
                .map(|p| Regex::new(p).expect("secret pattern compiles"))
                .collect(),
        }
    }

    pub fn scan(&self, text: &str, action: Action, out: &mut Vec<Finding>) {
        let hits = self.set.matches(text);
        if !hits.matched_any() {
            return;
        }
        let first = out.len();
        for i in hits.iter() {
            for m in self.each[i].find_iter(text) {
                // The more specific pattern earlier in the list wins an overlap.
                let overlaps = out[first..]
                    .iter()
                    .any(|f| f.span.start < m.end() && m.start() < f.span.end);
                if !overlaps {
                    out.push(Finding::new(
                        code::FWL010,
                        PATTERNS[i].0,
                        action,
                        m.range(),
                        Redaction::Placeholder("SECRET"),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(t: &str) -> Vec<&'static str> {
        let mut v = Vec::new();
        SecretScanner::new().scan(t, Action::Block, &mut v);
        v.into_iter().map(|f| f.detail).collect()
    }

    #[test]
    fn hits() {
        assert_eq!(kinds("key=AKIAIOSFODNN7EXAMPLE"), ["aws access key id"]);
        assert_eq!(
            kinds("export OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD"),
            ["openai-style api key"]
        );
        assert_eq!(
            kinds("ghp_0123456789abcdefghijklmnopqrstuvwxyzAB"),
            ["github token"]
        );
        assert_eq!(
            kinds("-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn"),
            ["private key"]
        );
        assert_eq!(
            kinds("hf_abcdefghijklmnopqrstuvwxyzABCDEFGH"),
            ["hugging face token"]
        );
        assert_eq!(
            kinds(&format!("x sk-ant-api03-{} y", "a".repeat(95))),
            ["anthropic api key"]
        );
        assert_eq!(
            kinds("AIzaSyD-0123456789abcdefghijklmnopqrstu"),
            ["google api key"]
        );
        assert_eq!(
            kinds(
                "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
            ),
            ["json web token"]
        );
    }

    #[test]
    fn non_hits() {
        assert!(kinds("the sky is blue and sk-learn is a library").is_empty());
        assert!(
            kinds("sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
                .is_empty()
        );
        assert!(kinds("uuid 123e4567-e89b-12d3-a456-426614174000").is_empty());
        assert!(kinds("AKIA is a prefix; so is ghp_").is_empty());
    }
}
