//! Personal data: e-mail addresses (FWL020), phone numbers (FWL021), payment cards with the
//! Luhn check (FWL022), IBANs with the mod-97 check (FWL023), US SSNs (FWL024) and IP
//! addresses (FWL025). Candidates come from regexes; checksums and range checks decide.

use super::{Finding, Redaction};
use crate::policy::{Action, PiiPolicy};
use crate::rules::code;
use regex::{Regex, RegexSet};
use std::net::Ipv6Addr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Email,
    Card,
    Iban,
    Ssn,
    Phone,
    Ipv4,
    Ipv6,
}

/// In detection order: an earlier kind wins an overlap (a card number is not a phone).
const PATTERNS: &[(Kind, &str)] = &[
    (
        Kind::Email,
        r"\b[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}\b",
    ),
    (Kind::Card, r"\b\d(?:[ \-]?\d){12,18}\b"),
    (
        Kind::Iban,
        r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b",
    ),
    (Kind::Ssn, r"\b\d{3}-\d{2}-\d{4}\b"),
    (
        Kind::Phone,
        r"\+\d{1,3}(?:[ .\-]?\(?\d{1,4}\)?){2,6}|(?:\(\d{3}\) ?|\b\d{3}[.\- ])\d{3}[.\- ]\d{4}\b",
    ),
    (Kind::Ipv4, r"\b(?:\d{1,3}\.){3}\d{1,3}\b"),
    (
        Kind::Ipv6,
        r"(?i)\b(?:[0-9a-f]{1,4}:){1,7}(?::|(?::[0-9a-f]{1,4}){1,7}|[0-9a-f]{1,4})",
    ),
];

pub struct PiiScanner {
    set: RegexSet,
    each: Vec<Regex>,
}

impl Default for PiiScanner {
    fn default() -> Self {
        Self::new()
    }
}

impl PiiScanner {
    pub fn new() -> PiiScanner {
        let pats = PATTERNS.iter().map(|(_, p)| *p);
        PiiScanner {
            set: RegexSet::new(pats.clone()).expect("pii patterns compile"),
            each: pats
                .map(|p| Regex::new(p).expect("pii pattern compiles"))
                .collect(),
        }
    }

    /// `output`: when scanning responses, the action for every type not set to `allow`.
    pub fn scan(&self, text: &str, p: &PiiPolicy, output: Option<Action>, out: &mut Vec<Finding>) {
        let hits = self.set.matches(text);
        if !hits.matched_any() {
            return;
        }
        let first = out.len();
        for i in hits.iter() {
            let kind = PATTERNS[i].0;
            let (rule, detail, placeholder, base) = match kind {
                Kind::Email => (code::FWL020, "email address", "EMAIL", p.email),
                Kind::Card => (code::FWL022, "payment card number", "CARD", p.card),
                Kind::Iban => (code::FWL023, "iban", "IBAN", p.iban),
                Kind::Ssn => (code::FWL024, "us social security number", "SSN", p.ssn),
                Kind::Phone => (code::FWL021, "phone number", "PHONE", p.phone),
                Kind::Ipv4 => (code::FWL025, "ipv4 address", "IP", p.ip),
                Kind::Ipv6 => (code::FWL025, "ipv6 address", "IP", p.ip),
            };
            let action = match output {
                Some(o) if base != Action::Allow => o,
                _ => base,
            };
            for m in self.each[i].find_iter(text) {
                let s = m.as_str();
                let valid = match kind {
                    Kind::Email => true,
                    Kind::Card => valid_card(s),
                    Kind::Iban => valid_iban(s),
                    Kind::Ssn => valid_ssn(s),
                    Kind::Phone => valid_phone(text, m.start(), m.end()),
                    Kind::Ipv4 => valid_ipv4(text, m.start(), m.end()),
                    Kind::Ipv6 => valid_ipv6(s),
                };
                let overlaps = out[first..]
                    .iter()
                    .any(|f| f.span.start < m.end() && m.start() < f.span.end);
                if valid && !overlaps {
                    out.push(Finding::new(
                        rule,
                        detail,
                        action,
                        m.range(),
                        Redaction::Placeholder(placeholder),
                    ));
                }
            }
        }
    }
}

fn digits(s: &str) -> Vec<u8> {
    s.bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect()
}

/// The Luhn checksum over a digit sequence.
pub fn luhn(d: &[u8]) -> bool {
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            let x = x as u32;
            if i % 2 == 1 {
                if x * 2 > 9 { x * 2 - 9 } else { x * 2 }
            } else {
                x
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn valid_card(s: &str) -> bool {
    let d = digits(s);
    if !(13..=19).contains(&d.len()) || !luhn(&d) {
        return false;
    }
    // Separators, when present, must be one kind (4111 1111-1111 1111 is not a card).
    let seps: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_digit()).collect();
    if seps.windows(2).any(|w| w[0] != w[1]) {
        return false;
    }
    let n = |k: usize| d.iter().take(k).fold(0u32, |a, &x| a * 10 + x as u32);
    let len = d.len();
    match () {
        _ if d[0] == 4 => matches!(len, 13 | 16 | 19),
        _ if (51..=55).contains(&n(2)) || (2221..=2720).contains(&n(4)) => len == 16,
        _ if matches!(n(2), 34 | 37) => len == 15,
        _ if n(4) == 6011 || n(2) == 65 || (644..=649).contains(&n(3)) => (16..=19).contains(&len),
        _ if n(2) == 35 || n(2) == 62 => (16..=19).contains(&len),
        _ if (300..=305).contains(&n(3)) || matches!(n(2), 36 | 38) => (14..=19).contains(&len),
        _ => false,
    }
}

/// ISO 13616: move the first four characters to the end, letters to numbers, mod 97 == 1.
pub fn valid_iban(s: &str) -> bool {
    let c: Vec<u8> = s.bytes().filter(|b| *b != b' ').collect();
    if !(15..=34).contains(&c.len()) {
        return false;
    }
    let mut rem: u32 = 0;
    for &b in c[4..].iter().chain(&c[..4]) {
        let v = match b {
            b'0'..=b'9' => (b - b'0') as u32,
            b'A'..=b'Z' => (b - b'A') as u32 + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

fn valid_ssn(s: &str) -> bool {
    let d = digits(s);
    if d.len() != 9 {
        return false;
    }
    let area = d[0] as u32 * 100 + d[1] as u32 * 10 + d[2] as u32;
    let group = d[3] * 10 + d[4];
    let serial = d[5..].iter().any(|&x| x != 0);
    area != 0 && area != 666 && area < 900 && group != 0 && serial
}

fn valid_phone(text: &str, start: usize, end: usize) -> bool {
    let n = digits(&text[start..end]).len();
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    (10..=15).contains(&n)
        && !before.is_some_and(|c| c.is_alphanumeric() || c == '+' || c == '-')
        && !after.is_some_and(|c| c.is_ascii_digit())
}

fn valid_ipv4(text: &str, start: usize, end: usize) -> bool {
    let ok = text[start..end]
        .split('.')
        .all(|o| o.parse::<u16>().is_ok_and(|v| v <= 255) && (o == "0" || !o.starts_with('0')));
    // 1.2.3.4.5 is a version, not an address.
    let before = text[..start].chars().next_back();
    let after = &text.as_bytes()[end..];
    ok && before != Some('.')
        && !(after.first() == Some(&b'.') && after.get(1).is_some_and(u8::is_ascii_digit))
}

fn valid_ipv6(s: &str) -> bool {
    s.matches(':').count() >= 2 && s.parse::<Ipv6Addr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;

    fn rules(t: &str) -> Vec<&'static str> {
        let mut v = Vec::new();
        PiiScanner::new().scan(t, &Policy::default().pii, None, &mut v);
        v.sort_by_key(|f| f.span.start);
        v.into_iter().map(|f| f.rule).collect()
    }

    #[test]
    fn hits() {
        assert_eq!(rules("write to jane.doe@example.org now"), ["FWL020"]);
        assert_eq!(rules("card 4111 1111 1111 1111 exp"), ["FWL022"]);
        assert_eq!(rules("card 5555555555554444"), ["FWL022"]);
        assert_eq!(rules("IBAN DE89 3704 0044 0532 0130 00."), ["FWL023"]);
        assert_eq!(rules("GB82WEST12345698765432"), ["FWL023"]);
        assert_eq!(rules("ssn 123-45-6789"), ["FWL024"]);
        assert_eq!(
            rules("call +44 20 7946 0958 or (415) 555-0100"),
            ["FWL021", "FWL021"]
        );
        assert_eq!(
            rules("host 192.168.1.20 and 2001:db8::8a2e:370:7334"),
            ["FWL025", "FWL025"]
        );
    }

    #[test]
    fn non_hits() {
        assert!(rules("4111 1111 1111 1112").is_empty(), "bad Luhn");
        assert_eq!(
            rules("DE89 3704 0044 0532 0130 01"),
            Vec::<&str>::new(),
            "bad mod-97"
        );
        assert!(rules("000-12-3456 and 666-12-3456").is_empty());
        assert!(rules("on 2024-01-15 at 12:30:45 version 1.2.3.4.5").is_empty());
        assert!(rules("order number 12345 costs 99.95").is_empty());
        assert!(rules("999.1.1.1 is not an address").is_empty());
    }

    #[test]
    fn checksums() {
        assert!(luhn(&[4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]));
        assert!(valid_iban("FR1420041010050500013M02606"));
        assert!(!valid_iban("FR1420041010050500013M02607"));
    }
}
