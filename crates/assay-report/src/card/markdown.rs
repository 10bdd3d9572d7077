//! The card's Markdown section. Everything that comes from the model (file names,
//! finding messages) is escaped, so a hostile name cannot inject Markdown or HTML
//! into the README it is written to.

use super::readme::{BEGIN, END};
use super::{CardRecord, Judgement, plural};
use crate::{Report, Severity, Stage, StageStatus};

/// Most findings listed in the card; the JSON report has them all.
pub const MAX_FINDINGS_LISTED: usize = 10;
/// Longest text from a finding shown in a table cell, in characters.
const MAX_CELL_CHARS: usize = 160;

/// Who signed the scan attestation the card refers to.
#[derive(Debug, Clone)]
pub struct SignedBy {
    /// Attestation file as shown to the reader.
    pub path: String,
    /// e.g. `ECDSA P-256 key 3f2a…`.
    pub signer: String,
    /// The key hint (hex SHA-256 of the public key PEM).
    pub key_hint: String,
    pub verdict: String,
    pub scanned_at: String,
}

/// Everything the section shows.
pub struct CardInput<'a> {
    pub report: &'a Report,
    pub judgement: &'a Judgement,
    pub record: &'a CardRecord,
    /// The badge as the card links it (relative to the card file).
    pub badge_link: Option<&'a str>,
    /// Prefix of report paths that is the model folder (stripped when showing paths).
    pub path_prefix: &'a str,
    /// Where the scan came from, e.g. `scanned by assay card` or `report scan.json`.
    pub source: &'a str,
    pub signed: Option<&'a SignedBy>,
    /// A note on an attestation that was found but not verified.
    pub attestation_note: Option<&'a str>,
}

/// Escapes text for a Markdown table cell. The characters that Markdown gives meaning
/// to inside a line are backslash-escaped (only those every common renderer — GitHub's
/// cmark-gfm, Hugging Face, Python-Markdown — accepts escaped), HTML specials and `~`
/// become entities, control characters become spaces, and long text is cut.
pub fn md_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        if i == MAX_CELL_CHARS {
            out.push('…');
            break;
        }
        match c {
            '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '(' | ')' | '#' | '+' | '-' | '.'
            | '!' | '|' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '~' => out.push_str("&#126;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn title_case(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn stage_cell(st: Option<&StageStatus>) -> &'static str {
    match st {
        Some(StageStatus::Complete) => "complete",
        Some(StageStatus::Incomplete) => "**incomplete**",
        Some(StageStatus::NotRun) | None => "**not run**",
    }
}

/// Stands for the record line while the visible text is digested.
const RECORD_PLACEHOLDER: &str = "<!-- assay-card-data -->";

/// Renders the whole section, markers included, ending with a newline. The record it
/// embeds carries the digest of the section's visible text ([`super::visible_sha256`]),
/// so a hand edit of the text (a verdict changed to "complete") is caught by `--check`.
pub fn render_section(c: &CardInput<'_>) -> String {
    let body = render_body(c);
    let mut rec = c.record.clone();
    rec.section_sha256 = Some(super::visible_sha256(&body));
    body.replacen(RECORD_PLACEHOLDER, &rec.to_comment(), 1)
}

fn render_body(c: &CardInput<'_>) -> String {
    let r = c.report;
    let s = &r.summary;
    let rec = c.record;
    let mut o = String::new();
    o.push_str(BEGIN);
    o.push('\n');
    o.push_str(RECORD_PLACEHOLDER);
    o.push_str("\n\n## Security scan\n\n");
    let headline = match rec.state {
        super::CardState::Complete => "Scan complete",
        super::CardState::Failed => "Scan failed",
        super::CardState::Incomplete => "Scan incomplete",
    };
    if let Some(link) = c.badge_link {
        o.push_str(&format!(
            "![assay: {}]({})\n\n",
            md_escape(&c.judgement.message),
            link_escape(link)
        ));
    }
    o.push_str(&format!(
        "**{headline}**: {}.\n\n",
        md_escape(&c.judgement.reason)
    ));

    o.push_str("| Stage | Status | Findings |\n|---|---|---:|\n");
    for stage in Stage::ALL {
        let n = r.findings.iter().filter(|f| f.stage == stage).count();
        let st = s.stages.get(&stage);
        let n = if matches!(st, Some(StageStatus::NotRun) | None) && n == 0 {
            "–".to_string()
        } else {
            n.to_string()
        };
        o.push_str(&format!(
            "| {} | {} | {n} |\n",
            title_case(stage.as_str()),
            stage_cell(st)
        ));
    }
    o.push('\n');

    o.push_str("| Critical | High | Medium | Low | Info |\n|---:|---:|---:|---:|---:|\n|");
    for sev in Severity::ALL {
        let n = s.findings.get(&sev).copied().unwrap_or(0);
        if n > 0 && sev >= s.fail_on {
            o.push_str(&format!(" **{n}** |"));
        } else {
            o.push_str(&format!(" {n} |"));
        }
    }
    o.push_str("\n\n");

    if !r.findings.is_empty() {
        let shown = r.findings.len().min(MAX_FINDINGS_LISTED);
        o.push_str("| Severity | Rule | Where | What |\n|---|---|---|---|\n");
        for f in r.findings.iter().take(shown) {
            let mut place = f
                .path
                .strip_prefix(c.path_prefix)
                .unwrap_or(&f.path)
                .to_string();
            if let Some(m) = &f.member {
                place.push_str("!/");
                place.push_str(m);
            }
            o.push_str(&format!(
                "| {} | `{}` | {} | {} |\n",
                f.severity,
                md_escape(&f.rule).replace('`', ""),
                md_escape(&place),
                md_escape(&f.message)
            ));
        }
        if r.findings.len() > shown {
            o.push_str(&format!(
                "\n{} more finding{} in the full report (`assay scan --format json`).\n",
                r.findings.len() - shown,
                plural(r.findings.len() - shown)
            ));
        }
        o.push('\n');
    }

    o.push_str(&format!(
        "- **Root digest**: `sha256:{}`\n",
        rec.root_sha256
    ));
    let mut covers = format!("{} file{}", rec.files.len(), plural(rec.files.len()));
    let mut left_out: Vec<String> = rec
        .ignored
        .iter()
        .map(|p| format!("`{}`", code_escape(p)))
        .collect();
    if rec.readme_section {
        left_out.insert(0, "this section of `README.md`".into());
    }
    if !left_out.is_empty() {
        covers.push_str(&format!("; left out: {}", left_out.join(", ")));
    }
    o.push_str(&format!("- **Digest covers**: {covers}\n"));
    o.push_str(&format!(
        "- **Scanned**: {} by `{}` ({}), fail-on `{}`\n",
        rec.generated_at,
        code_escape(&rec.tool),
        md_escape(c.source),
        s.fail_on
    ));
    match (c.signed, c.attestation_note) {
        (Some(sb), _) => o.push_str(&format!(
            "- **Attestation**: signed scan attestation `{}`, verified: {}, verdict `{}` at {}\n",
            code_escape(&sb.path),
            md_escape(&sb.signer),
            md_escape(&sb.verdict),
            md_escape(&sb.scanned_at)
        )),
        (None, Some(note)) => {
            o.push_str(&format!("- **Attestation**: {}\n", md_escape(note)));
        }
        (None, None) => o.push_str("- **Attestation**: none (unsigned)\n"),
    }
    o.push_str(
        "\nThe digest is the OpenSSF model-signing root digest of the files (what `assay sign` \
         and `model_signing` sign). Check that the files still match this card with \
         `assay card --check <model folder>`.\n\n",
    );
    o.push_str(END);
    o.push('\n');
    o
}

/// Text inside a code span: backticks and line breaks removed.
fn code_escape(s: &str) -> String {
    s.chars().filter(|c| *c != '`' && !c.is_control()).collect()
}

/// A link target: percent-encodes what would end or break a Markdown link.
fn link_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            ' ' => out.push_str("%20"),
            '(' => out.push_str("%28"),
            ')' => out.push_str("%29"),
            '<' => out.push_str("%3C"),
            '>' => out.push_str("%3E"),
            '"' => out.push_str("%22"),
            '\\' => out.push_str("%5C"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markdown_and_html() {
        assert_eq!(
            md_escape("a|b <img src=x> [l](u) `c` ~~s~~"),
            "a\\|b &lt;img src=x&gt; \\[l\\]\\(u\\) \\`c\\` &#126;&#126;s&#126;&#126;"
        );
        assert_eq!(md_escape("x\ny"), "x y");
        assert_eq!(link_escape("my badge (1).svg"), "my%20badge%20%281%29.svg");
    }
}
