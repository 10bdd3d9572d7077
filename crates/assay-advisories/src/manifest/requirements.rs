//! pip requirements files: one requirement per line, `\` continuations, `#` comments,
//! per-requirement options (`--hash=…`), and the `-r` / `-c` includes (returned for the
//! caller to resolve). Other options (`-e`, `--index-url`, `-f` …) name no versions.

use super::{Include, MAX_LINE_BYTES, Parsed};

pub fn parse(text: &str) -> Parsed {
    let mut out = Parsed::default();
    let mut logical = String::new();
    let mut start = 0usize;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        if logical.is_empty() {
            start = n;
        }
        let (body, continued) = match raw.strip_suffix('\\') {
            Some(b) => (b, true),
            None => (raw, false),
        };
        if logical.len() + body.len() > MAX_LINE_BYTES {
            out.problem(
                start,
                format!("line longer than {MAX_LINE_BYTES} bytes; not read"),
            );
            logical.clear();
            continue;
        }
        logical.push_str(body);
        logical.push(' ');
        if continued {
            continue;
        }
        line(&mut out, &logical, start);
        logical.clear();
    }
    if !logical.is_empty() {
        line(&mut out, &logical, start);
    }
    out
}

/// Text before a comment: `#` at the start or after whitespace (pip's rule).
fn strip_comment(s: &str) -> &str {
    let b = s.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if c == b'#' && (i == 0 || b[i - 1].is_ascii_whitespace()) {
            return &s[..i];
        }
    }
    s
}

fn line(out: &mut Parsed, logical: &str, n: usize) {
    let s = strip_comment(logical).trim();
    if s.is_empty() {
        return;
    }
    if s.starts_with('-') {
        option(out, s, n);
        return;
    }
    // Per-requirement options start at the first ` --` (e.g. `--hash=sha256:…`).
    let req = match s.find(" --") {
        Some(at) => &s[..at],
        None => s,
    };
    out.push_pep508(req, n);
}

fn option(out: &mut Parsed, s: &str, n: usize) {
    let (opt, arg) = match s.split_once(|c: char| c == '=' || c.is_whitespace()) {
        Some((o, a)) => (o, a.trim()),
        None => (s, ""),
    };
    match opt {
        "-r" | "--requirement" | "-c" | "--constraint" => {
            if arg.is_empty() {
                out.problem(n, format!("{opt} without a file"));
            } else {
                out.includes.push(Include {
                    path: arg.to_string(),
                    line: n,
                });
            }
        }
        // -rfile (no space).
        _ if (opt.starts_with("-r") || opt.starts_with("-c")) && !opt.starts_with("--") => {
            out.includes.push(Include {
                path: opt[2..].to_string(),
                line: n,
            });
        }
        // Editable installs, indexes, find-links, pip flags: no version to check.
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_realistic_file() {
        let t = "# pinned\n\
                 llama-cpp-python==0.2.70 \\\n    --hash=sha256:abc \\\n    --hash=sha256:def\n\
                 torch>=2.0 ; sys_platform != 'darwin'  # inline comment\n\
                 transformers[torch]~=4.30\n\
                 -r base.txt\n\
                 --constraint=constraints.txt\n\
                 -e git+https://github.com/x/y#egg=y\n\
                 --index-url https://example.invalid/simple\n\
                 https://example.invalid/pkg.whl\n\
                 !!bad line\n";
        let p = parse(t);
        let got: Vec<(String, String, usize)> = p
            .requirements
            .iter()
            .map(|d| (d.package.clone(), d.spec.clone(), d.line))
            .collect();
        assert_eq!(
            got,
            [
                ("llama-cpp-python".into(), "==0.2.70".into(), 2),
                ("torch".into(), ">=2.0".into(), 5),
                ("transformers".into(), "~=4.30".into(), 6),
            ]
        );
        assert_eq!(
            p.requirements[1].marker.as_deref(),
            Some("sys_platform != 'darwin'")
        );
        let inc: Vec<&str> = p.includes.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(inc, ["base.txt", "constraints.txt"]);
        assert_eq!(p.problems.len(), 1);
        assert_eq!(p.problems[0].line, 12);
    }

    #[test]
    fn binary_garbage_is_bounded() {
        let junk: String = (0..100_000)
            .map(|i| char::from(b'!' + (i % 90) as u8))
            .collect();
        let p = parse(&junk.replace('Z', "\n"));
        assert!(p.problems.len() <= super::super::MAX_PROBLEMS);
        assert!(p.truncated || p.problems.len() < super::super::MAX_PROBLEMS);
    }
}
