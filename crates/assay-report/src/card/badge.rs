//! The scan badge: a shields-style flat SVG ("assay | scan complete").
//!
//! Widths are computed from a fixed table (DejaVu Sans at 11 px, see `gen_widths.py`)
//! and every text carries `textLength`, so the badge looks the same whatever font the
//! viewer has. Text is XML-escaped. The badge also carries the card's root digest and
//! state in a comment, so a badge copied next to other bytes can be caught by
//! `assay card --check`.

use super::widths::ASCII_WIDTHS;
use super::{CardState, xml_escape};

/// Width (tenths of a pixel) of a character outside printable ASCII: as wide as `W`.
const WIDE_CHAR: u32 = 110;
/// Horizontal padding on each side of each half of the badge, in pixels.
const PAD: u32 = 6;
/// Longest message the badge shows, in characters; the rest goes to the tooltip.
pub const MAX_MESSAGE_CHARS: usize = 48;

/// Text width in tenths of a pixel at 11 px.
pub fn text_width_tenths(text: &str) -> u32 {
    text.chars()
        .map(|c| {
            let code = c as u32;
            if (0x20..0x7f).contains(&code) {
                u32::from(ASCII_WIDTHS[(code - 0x20) as usize])
            } else {
                WIDE_CHAR
            }
        })
        .sum()
}

/// The badge colour of each state (shields' brightgreen, red and yellow).
pub fn color(state: CardState) -> &'static str {
    match state {
        CardState::Complete => "#4c1",
        CardState::Failed => "#e05d44",
        CardState::Incomplete => "#dfb317",
    }
}

/// What the badge says and the data it binds.
#[derive(Debug, Clone)]
pub struct Badge<'a> {
    pub state: CardState,
    /// Short message, e.g. `scan complete` or `scan failed: 1 critical`.
    pub message: &'a str,
    /// Longer explanation, shown as the tooltip.
    pub title: &'a str,
    /// Hex SHA-256 root digest the card is bound to.
    pub root_sha256: &'a str,
}

/// Renders the badge as a standalone SVG document.
pub fn render_badge(b: &Badge<'_>) -> String {
    let label = "assay";
    let message: String = b.message.chars().take(MAX_MESSAGE_CHARS).collect();
    // Whole pixels: text width rounded up, plus padding both sides.
    let lw = text_width_tenths(label).div_ceil(10) + 2 * PAD;
    let mw = text_width_tenths(&message).div_ceil(10) + 2 * PAD;
    let width = lw + mw;
    let (label_e, msg_e, title_e) = (
        xml_escape(label),
        xml_escape(&message),
        xml_escape(&format!("assay: {}", b.title)),
    );
    // Text is drawn at 10x and scaled down, as shields does, for sub-pixel placement.
    let lx = lw * 5;
    let mx = lw * 10 + mw * 5;
    let ltl = text_width_tenths(label);
    let mtl = text_width_tenths(&message);
    let fill = color(b.state);
    let state = b.state.as_str();
    let root = xml_escape(b.root_sha256);
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" aria-label="{label_e}: {msg_e}">
<!-- assay-badge {{"state":"{state}","root_sha256":"{root}"}} -->
<title>{title_e}</title>
<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>
<clipPath id="r"><rect width="{width}" height="20" rx="3" fill="#fff"/></clipPath>
<g clip-path="url(#r)"><rect width="{lw}" height="20" fill="#555"/><rect x="{lw}" width="{mw}" height="20" fill="{fill}"/><rect width="{width}" height="20" fill="url(#s)"/></g>
<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" text-rendering="geometricPrecision" font-size="110">
<text aria-hidden="true" x="{lx}" y="150" fill="#010101" fill-opacity=".3" transform="scale(.1)" textLength="{ltl}">{label_e}</text>
<text x="{lx}" y="140" transform="scale(.1)" fill="#fff" textLength="{ltl}">{label_e}</text>
<text aria-hidden="true" x="{mx}" y="150" fill="#010101" fill-opacity=".3" transform="scale(.1)" textLength="{mtl}">{msg_e}</text>
<text x="{mx}" y="140" transform="scale(.1)" fill="#fff" textLength="{mtl}">{msg_e}</text>
</g>
</svg>
"##
    )
}

/// The state and root digest a badge was made for (`None` if it is not an Assay badge).
pub fn parse_badge(svg: &str) -> Option<(CardState, String)> {
    let start = svg.find("<!-- assay-badge ")? + "<!-- assay-badge ".len();
    let end = start + svg.get(start..)?.find(" -->")?;
    let v: serde_json::Value = serde_json::from_str(svg.get(start..end)?).ok()?;
    let state = CardState::parse(v.get("state")?.as_str()?)?;
    let root = v.get("root_sha256")?.as_str()?.to_string();
    Some((state, root))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_grow_with_text_and_handle_non_ascii() {
        assert_eq!(text_width_tenths(""), 0);
        assert!(text_width_tenths("scan incomplete") > text_width_tenths("scan failed"));
        assert_eq!(text_width_tenths("é"), WIDE_CHAR);
    }

    #[test]
    fn escapes_text_and_round_trips_its_binding() {
        let svg = render_badge(&Badge {
            state: CardState::Failed,
            message: "scan failed: <1> & \"2\"",
            title: "a<b",
            root_sha256: "ab12",
        });
        assert!(svg.contains("scan failed: &lt;1&gt; &amp; &quot;2&quot;"));
        assert!(!svg.contains("<1>"));
        assert!(svg.contains("<title>assay: a&lt;b</title>"));
        assert_eq!(
            parse_badge(&svg),
            Some((CardState::Failed, "ab12".to_string()))
        );
    }

    #[test]
    fn width_is_the_sum_of_both_halves() {
        let svg = render_badge(&Badge {
            state: CardState::Complete,
            message: "scan complete",
            title: "",
            root_sha256: "00",
        });
        let lw = text_width_tenths("assay").div_ceil(10) + 12;
        let mw = text_width_tenths("scan complete").div_ceil(10) + 12;
        assert!(svg.contains(&format!("width=\"{}\" height=\"20\" role", lw + mw)));
        assert!(svg.contains("fill=\"#4c1\""));
    }
}
