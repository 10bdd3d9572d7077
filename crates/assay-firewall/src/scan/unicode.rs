//! Invisible text and Unicode smuggling: tag characters (FWL004), bidi controls (FWL005)
//! and runs of zero-width characters (FWL006).

use super::{Finding, Redaction};
use crate::policy::UnicodePolicy;
use crate::rules::code;

/// Tag characters mirror ASCII (U+E0020..U+E007E → ' '..'~') and render as nothing.
pub fn is_tag(c: char) -> bool {
    ('\u{E0000}'..='\u{E007F}').contains(&c)
}

/// Variation selectors; a single one after an emoji is normal, runs encode bytes.
fn is_variation_selector(c: char) -> bool {
    ('\u{FE00}'..='\u{FE0F}').contains(&c) || ('\u{E0100}'..='\u{E01EF}').contains(&c)
}

/// Explicit embeddings, overrides and isolates (the Trojan Source set).
pub fn is_bidi_control(c: char) -> bool {
    ('\u{202A}'..='\u{202E}').contains(&c) || ('\u{2066}'..='\u{2069}').contains(&c)
}

pub fn is_zero_width(c: char) -> bool {
    matches!(
        c,
        '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{180E}'
    )
}

/// Whether a text has anything this module reports; the fast path for clean ASCII.
fn has_suspects(text: &str) -> bool {
    !text.is_ascii()
        && text.chars().any(|c| {
            is_tag(c) || is_variation_selector(c) || is_bidi_control(c) || is_zero_width(c)
        })
}

pub fn scan(text: &str, p: &UnicodePolicy, out: &mut Vec<Finding>) {
    if !has_suspects(text) {
        return;
    }
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let class = if is_tag(c) {
            0
        } else if is_variation_selector(c) {
            1
        } else if is_zero_width(c) {
            2
        } else if is_bidi_control(c) {
            3
        } else {
            continue;
        };
        let mut end = i + c.len_utf8();
        let mut run = 1usize;
        if class != 3 {
            while let Some(&(j, d)) = chars.peek() {
                let same = match class {
                    0 => is_tag(d),
                    1 => is_variation_selector(d),
                    _ => is_zero_width(d),
                };
                if !same {
                    break;
                }
                end = j + d.len_utf8();
                run += 1;
                chars.next();
            }
        }
        let finding = match class {
            0 => Some((
                code::FWL004,
                "unicode tag characters (hidden ASCII)",
                p.tags,
            )),
            1 if run >= 2 => Some((code::FWL004, "run of variation selectors", p.tags)),
            2 if run >= p.zero_width_run => {
                Some((code::FWL006, "run of zero-width characters", p.zero_width))
            }
            3 => Some((code::FWL005, "bidirectional control character", p.bidi)),
            _ => None,
        };
        if let Some((rule, detail, action)) = finding {
            out.push(Finding::new(rule, detail, action, i..end, Redaction::Strip));
        }
    }
}

/// The text a model would read: invisible characters dropped, tag characters decoded to
/// the ASCII they mirror. Used as the input of the injection scanners.
pub fn visible_and_decoded(text: &str) -> Option<String> {
    if !has_suspects(text) {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_tag(c) {
            let a = (c as u32 - 0xE0000) as u8;
            if (0x20..0x7F).contains(&a) {
                out.push(a as char);
            }
        } else if !(is_zero_width(c) || is_bidi_control(c) || is_variation_selector(c)) {
            out.push(c);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Action, Policy};

    fn run(t: &str) -> Vec<Finding> {
        let mut v = Vec::new();
        scan(t, &Policy::default().unicode, &mut v);
        v
    }

    #[test]
    fn hits() {
        let hidden: String = "Ignore"
            .chars()
            .map(|c| char::from_u32(0xE0000 + c as u32).unwrap())
            .collect();
        let t = format!("hello {hidden} world");
        let f = run(&t);
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].rule, f[0].action), ("FWL004", Action::Block));
        assert_eq!(&t[f[0].span.clone()], hidden);
        assert_eq!(visible_and_decoded(&t).unwrap(), "hello Ignore world");
        let f = run("a\u{202E}b");
        assert_eq!((f[0].rule, f[0].action), ("FWL005", Action::Redact));
        let f = run("ig\u{200B}\u{200B}\u{200B}nore");
        assert_eq!(f[0].rule, "FWL006");
        assert_eq!(
            visible_and_decoded("ig\u{200B}\u{200B}\u{200B}nore").unwrap(),
            "ignore"
        );
    }

    #[test]
    fn non_hits() {
        assert!(run("plain ascii").is_empty());
        // A family emoji: ZWJ between people, one variation selector.
        assert!(run("👨\u{200D}👩\u{200D}👧 ❤\u{FE0F}").is_empty());
        // Right-to-left text with implicit marks.
        assert!(run("שלום\u{200F} world").is_empty());
    }
}
