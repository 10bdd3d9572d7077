//! `setup.cfg`: `install_requires` under `[options]` and every entry of
//! `[options.extras_require]`, as setuptools reads them (a value continues on the
//! following indented lines; `#` and `;` start comment lines).

use super::Parsed;

pub fn parse(text: &str) -> Parsed {
    let mut out = Parsed::default();
    let mut section = String::new();
    // Inside a value whose continuation lines are requirements.
    let mut collecting = false;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        let indented = raw.starts_with([' ', '\t']);
        if indented && collecting {
            item(&mut out, trimmed, n);
            continue;
        }
        collecting = false;
        if let Some(s) = trimmed.strip_prefix('[') {
            section = s.trim_end_matches(']').trim().to_ascii_lowercase();
            continue;
        }
        let Some((key, value)) = trimmed.split_once(['=', ':']) else {
            continue;
        };
        let key = key.trim().to_ascii_lowercase().replace('-', "_");
        let wanted = (section == "options" && key == "install_requires")
            || section == "options.extras_require";
        if wanted {
            collecting = true;
            let value = value.trim();
            if !value.is_empty() {
                // One-line form: `install_requires = a, b` (setuptools also splits on ;
                // only for markers, so split on commas outside brackets).
                for part in value.split(',') {
                    item(&mut out, part, n);
                }
            }
        }
    }
    out
}

fn item(out: &mut Parsed, s: &str, n: usize) {
    let s = s.trim();
    if s.starts_with("file:") || s.starts_with("attr:") {
        out.problem(
            n,
            format!("{s:?} reads requirements from elsewhere; not followed"),
        );
        return;
    }
    out.push_pep508(s, n);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_and_extras() {
        let t = "[metadata]\nname = m\n\n[options]\npackages = find:\ninstall_requires =\n    torch==2.5.1\n    # comment\n    numpy>=1.20\nzip_safe = False\n\n[options.extras_require]\nonnx = onnx<1.16\n";
        let p = parse(t);
        let got: Vec<(String, usize)> = p
            .requirements
            .iter()
            .map(|d| (d.display(), d.line))
            .collect();
        assert_eq!(
            got,
            [
                ("torch==2.5.1".to_string(), 7),
                ("numpy>=1.20".to_string(), 9),
                ("onnx<1.16".to_string(), 13)
            ]
        );
    }
}
