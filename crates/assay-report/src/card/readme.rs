//! Putting the card section into a README and taking it out again.
//!
//! A new section goes at the end of the README (after the model's own description), or,
//! when the README does not end with a line break, right after its YAML front matter
//! (Hugging Face model cards start with one); it is followed by exactly one blank line. Taking it out
//! removes the markers, everything between them and that one line, so for a README
//! that had no section, `strip(insert(x)) == x` byte for byte: the README's digest
//! without the card is the digest of the README as it was scanned. Re-running replaces
//! the section in place and leaves the rest untouched.

/// First line of the section.
pub const BEGIN: &str =
    "<!-- assay-card:begin (written by `assay card`; edits inside are replaced) -->";
/// Last line of the section.
pub const END: &str = "<!-- assay-card:end -->";

const BEGIN_PREFIX: &str = "<!-- assay-card:begin";

/// Where a section lies in a text: `start..end` covers the markers, the lines between
/// and the blank line after the end marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

/// Byte offsets of lines starting with `prefix` (at the start of a line).
fn line_starts<'a>(text: &'a str, prefix: &'a str) -> impl Iterator<Item = usize> + 'a {
    text.match_indices(prefix)
        .map(|(i, _)| i)
        .filter(move |&i| i == 0 || text.as_bytes()[i - 1] == b'\n')
}

/// Finds the card section. `Ok(None)` when there is none; an error when the markers
/// are unbalanced or repeated (the README was edited by hand; refuse to guess).
pub fn find(text: &str) -> Result<Option<Span>, String> {
    let begins: Vec<usize> = line_starts(text, BEGIN_PREFIX).collect();
    let ends: Vec<usize> = line_starts(text, END).collect();
    match (begins.as_slice(), ends.as_slice()) {
        ([], []) => Ok(None),
        ([b], [e]) if b < e => {
            let mut end = e + END.len();
            // The end marker's line break and the one blank line the card adds.
            for _ in 0..2 {
                if text[end..].starts_with("\r\n") {
                    end += 2;
                } else if text[end..].starts_with('\n') {
                    end += 1;
                } else {
                    break;
                }
            }
            Ok(Some(Span { start: *b, end }))
        }
        ([_], [_]) => Err("the assay-card end marker comes before the begin marker".into()),
        (b, e) => Err(format!(
            "expected one assay-card begin and one end marker, found {} and {}",
            b.len(),
            e.len()
        )),
    }
}

/// The text with the card section taken out (unchanged when there is none).
pub fn strip(text: &str) -> Result<String, String> {
    Ok(match find(text)? {
        Some(s) => format!("{}{}", &text[..s.start], &text[s.end..]),
        None => text.to_string(),
    })
}

/// Where a new section goes: at the end when the text ends with a line break (or is
/// empty), else after YAML front matter (`---` … `---` at the top), else at 0.
fn insertion_point(text: &str) -> usize {
    if text.is_empty() || text.ends_with('\n') {
        return text.len();
    }
    let first_len = if text.starts_with("---\n") {
        4
    } else if text.starts_with("---\r\n") {
        5
    } else {
        return 0;
    };
    let mut pos = first_len;
    for line in text[first_len..].split_inclusive('\n') {
        pos += line.len();
        if line.ends_with('\n') && line.trim_end_matches(['\r', '\n']) == "---" {
            return pos;
        }
    }
    0 // unterminated front matter: it is not front matter
}

/// `section` must end with a newline (as [`super::render_section`]'s output does). Puts
/// it in place of the existing section, or after the front matter, followed by one
/// blank line.
pub fn insert(text: &str, section: &str) -> Result<String, String> {
    let stripped = strip(text)?;
    let at = match find(text)? {
        Some(s) => s.start,
        None => insertion_point(&stripped),
    };
    Ok(format!(
        "{}{}\n{}",
        &stripped[..at],
        section,
        &stripped[at..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(body: &str) -> String {
        format!("{BEGIN}\n{body}\n{END}\n")
    }

    #[test]
    fn insert_then_strip_is_identity() {
        for readme in [
            "",
            "# Model\n",
            "\n\nleading blank lines\n",
            "no trailing newline",
            "---\nlicense: mit\ntags: [a]\n---\n# Model\n\ntext\n",
            "---\nlicense: mit\n---\n",
            "---\nnot closed\n# x\n",
            "---\nx\n---",
            "windows\r\nline\r\n",
        ] {
            let with = insert(readme, &section("card one")).unwrap();
            assert_eq!(strip(&with).unwrap(), readme, "{readme:?} -> {with:?}");
            let again = insert(&with, &section("card two\nlonger")).unwrap();
            assert_eq!(strip(&again).unwrap(), readme);
            assert!(again.contains("card two") && !again.contains("card one"));
        }
    }

    #[test]
    fn goes_at_the_end_and_replaces_in_place() {
        let readme = "---\nlicense: mit\n---\n# Model\n";
        let with = insert(readme, &section("X")).unwrap();
        assert!(with.starts_with("---\nlicense: mit\n---\n# Model\n<!-- assay-card:begin"));
        assert!(with.ends_with(&format!("{END}\n\n")));
        let cut = "---\nlicense: mit\n---\n# Model";
        let with = insert(cut, &section("X")).unwrap();
        assert!(with.starts_with("---\nlicense: mit\n---\n<!-- assay-card:begin"));
        // A section the user moved to the top stays there.
        let moved = format!("{}\n# Model\n\nmore\n", section("X"));
        let redone = insert(&moved, &section("Y")).unwrap();
        assert!(redone.starts_with("<!-- assay-card:begin"));
        assert!(
            redone.contains("\nY\n")
                && redone.ends_with("{END}\n\n# Model\n\nmore\n".replace("{END}", END).as_str())
        );
    }

    #[test]
    fn refuses_unbalanced_markers() {
        assert!(strip(&format!("{BEGIN}\nx\n")).is_err());
        assert!(strip(&format!("{END}\n{BEGIN}\n")).is_err());
        let two = format!("{}{}", section("a"), section("b"));
        assert!(strip(&two).is_err());
        // Markers inside a line (quoted in prose) are not markers.
        assert_eq!(find(&format!("see `{END}`")).unwrap(), None);
    }
}
