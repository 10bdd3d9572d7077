//! Credentials left in the text files of a model (READMEs, configs, code, metadata):
//! one `RegexSet` pass says which kinds occur at all, then only those patterns run to
//! locate them. Every match is checked against a validator that drops placeholders
//! (`hf_xxxx…`, `<your token>`, AWS's documented example keys), and secrets are only ever
//! reported masked.

use regex::{Regex, RegexSet};
use std::sync::LazyLock;

/// Bytes of one text scanned for secrets; the rest of a larger file is not searched
/// (the engine reports that).
pub const MAX_SECRET_SCAN_BYTES: usize = 32 << 20;
/// Secrets reported per text; more are counted in the last one.
pub const MAX_SECRETS_PER_TEXT: usize = 32;
/// How far from an AWS access key id its secret key is looked for.
const AWS_PAIR_WINDOW: usize = 1024;

/// A credential found in text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    /// The SEC rule.
    pub rule: &'static str,
    /// What kind of credential, in the user's words.
    pub kind: &'static str,
    /// Byte offset of the match.
    pub offset: usize,
    /// The secret with all but its first four and last two characters hidden.
    pub masked: String,
}

struct Pattern {
    rule: &'static str,
    kind: &'static str,
    /// The capture group holding the secret itself (0: the whole match).
    group: usize,
    re: &'static str,
    valid: fn(&str, &str, usize) -> bool,
}

/// `\b` in these patterns is ASCII-only (see `compile`), which keeps the set on the fast
/// DFA path for any text.
const PATTERNS: &[Pattern] = &[
    Pattern {
        rule: "SEC001",
        kind: "Hugging Face access token",
        group: 0,
        re: r"\b(?:hf_[A-Za-z0-9]{34,40}|api_org_[A-Za-z0-9]{34})\b",
        valid: random_tail,
    },
    Pattern {
        rule: "SEC002",
        kind: "OpenAI API key",
        group: 0,
        re: r"\bsk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,}|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}|[A-Za-z0-9]{48})\b",
        valid: random_tail,
    },
    Pattern {
        rule: "SEC003",
        kind: "Anthropic API key",
        group: 0,
        re: r"\bsk-ant-(?:api|admin|sid)[0-9]{2}-[A-Za-z0-9_-]{32,}",
        valid: random_tail,
    },
    Pattern {
        rule: "SEC004",
        kind: "AWS access key id",
        group: 0,
        re: r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}\b",
        valid: aws_key_id,
    },
    Pattern {
        rule: "SEC005",
        kind: "Google Cloud service-account key",
        group: 0,
        re: r#""type"\s*:\s*"service_account""#,
        valid: gcp_service_account,
    },
    Pattern {
        rule: "SEC005",
        kind: "Google API key",
        group: 0,
        re: r"\bAIza[0-9A-Za-z_-]{35}(?:[^0-9A-Za-z_-]|$)",
        valid: random_tail,
    },
    Pattern {
        rule: "SEC006",
        kind: "Azure storage account key",
        group: 1,
        re: r"(?i)AccountKey=([A-Za-z0-9+/]{60,}={0,2})",
        valid: random_tail,
    },
    Pattern {
        rule: "SEC006",
        kind: "Azure shared access signature",
        group: 1,
        re: r"[?&]sig=([A-Za-z0-9%+/]{30,}(?:%3[Dd]|=){0,2})",
        valid: azure_sas,
    },
    Pattern {
        rule: "SEC007",
        kind: "GitHub token",
        group: 0,
        re: r"\b(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})\b",
        valid: random_tail,
    },
    Pattern {
        rule: "SEC008",
        kind: "Slack token",
        group: 0,
        re: r"\b(?:xox[abposr]-[0-9]{6,}-[0-9A-Za-z-]{8,}|https://hooks\.slack\.com/services/T[A-Z0-9]{6,}/B[A-Z0-9]{6,}/[A-Za-z0-9]{20,})",
        valid: random_tail,
    },
    Pattern {
        rule: "SEC009",
        kind: "private key",
        group: 0,
        re: r"-----BEGIN (?:RSA |DSA |EC |OPENSSH |ENCRYPTED |PGP |SSH2 )?PRIVATE KEY(?: BLOCK)?-----(?:\\[rn]|\s)+(?:[A-Za-z-]+: [^\n\\]*(?:\\[rn]|\s)+)*[A-Za-z0-9+/=]{40,}",
        valid: always,
    },
    Pattern {
        rule: "SEC010",
        kind: "JSON web token",
        group: 0,
        re: r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}",
        valid: jwt,
    },
    Pattern {
        rule: "SEC010",
        kind: "bearer token",
        group: 1,
        re: r"(?i)\bbearer\s+([A-Za-z0-9._~+/-]{24,}=*)",
        valid: random_tail,
    },
];

/// The AWS secret access key that goes with an access key id.
static AWS_SECRET: LazyLock<Regex> = LazyLock::new(|| {
    compile(r#"(?i)aws.{0,24}?secret.{0,24}?["'\s:=]+([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+]|$)"#)
});

static COMPILED: LazyLock<(RegexSet, Vec<Regex>)> = LazyLock::new(|| {
    let sources: Vec<String> = PATTERNS.iter().map(|p| ascii_boundaries(p.re)).collect();
    let set = RegexSet::new(&sources).expect("secret patterns compile");
    let res = sources.iter().map(|s| compile(s)).collect();
    (set, res)
});

fn ascii_boundaries(re: &str) -> String {
    re.replace(r"\b", r"(?-u:\b)")
}

fn compile(re: &str) -> Regex {
    Regex::new(&ascii_boundaries(re)).expect("secret pattern compiles")
}

/// Finds credentials in `text` (at most [`MAX_SECRET_SCAN_BYTES`] of it).
pub fn find(text: &str) -> Vec<Secret> {
    let mut end = text.len().min(MAX_SECRET_SCAN_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let text = &text[..end];
    let (set, res) = &*COMPILED;
    let mut found: Vec<(usize, usize, Secret)> = Vec::new();
    for i in set.matches(text).iter() {
        let (Some(p), Some(re)) = (PATTERNS.get(i), res.get(i)) else {
            continue;
        };
        for caps in re.captures_iter(text) {
            let Some(m) = caps.get(p.group).or_else(|| caps.get(0)) else {
                continue;
            };
            let secret = m
                .as_str()
                .trim_end_matches(|c: char| !c.is_ascii_alphanumeric() && c != '=');
            if !(p.valid)(secret, text, m.start()) {
                continue;
            }
            let (kind, masked) = match p.rule {
                "SEC004" => aws_pair(text, m.start(), secret),
                "SEC005" if p.kind.starts_with("Google Cloud") => {
                    (p.kind, gcp_evidence(text, m.start()))
                }
                "SEC009" => (p.kind, mask_pem(secret)),
                _ => (p.kind, mask(secret)),
            };
            found.push((
                m.start(),
                m.end(),
                Secret {
                    rule: p.rule,
                    kind,
                    offset: m.start(),
                    masked,
                },
            ));
            if found.len() > MAX_SECRETS_PER_TEXT * 4 {
                break;
            }
        }
    }
    // The more specific pattern wins where two overlap (a bearer token that is an
    // `hf_` token, a JWT after `Bearer`): patterns are listed most specific first.
    found.sort_by_key(|(s, e, sec)| (*s, std::cmp::Reverse(*e), sec.rule));
    let mut out: Vec<Secret> = Vec::new();
    let mut covered_to = 0usize;
    for (s, e, sec) in found {
        if s < covered_to {
            continue;
        }
        covered_to = e;
        out.push(sec);
    }
    out
}

/// `abcd…yz`: the first four and last two characters.
pub fn mask(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() <= 8 {
        return "…".into();
    }
    let head: String = chars.iter().take(4).collect();
    let tail: String = chars.iter().skip(chars.len() - 2).collect();
    format!("{head}…{tail} ({} chars)", chars.len())
}

fn mask_pem(block: &str) -> String {
    let header_end = block
        .find("-----\\n")
        .map(|i| i + 5)
        .or_else(|| block.get(5..).and_then(|r| r.find("-----")).map(|i| i + 10));
    let (header, body) = block.split_at(header_end.unwrap_or(0).min(block.len()));
    let body: String = body
        .replace("\\n", "")
        .replace("\\r", "")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    format!("{} {}", header.trim(), mask(&body))
}

fn always(_: &str, _: &str, _: usize) -> bool {
    true
}

/// Rejects placeholders: real tokens are random, so the part after the fixed prefix has
/// many distinct characters and no long runs (`hf_xxxxxxxx…`, `sk-000…`, `YOUR_KEY_HERE`).
fn random_tail(secret: &str, _: &str, _: usize) -> bool {
    let tail = secret
        .rsplit(['_', '-'])
        .next()
        .filter(|t| t.len() >= 16)
        .unwrap_or(secret);
    let distinct: std::collections::HashSet<char> = tail.chars().collect();
    if distinct.len() < 10 {
        return false;
    }
    let mut run = 1;
    let mut prev = None;
    for c in tail.chars() {
        if Some(c) == prev {
            run += 1;
            if run > 4 {
                return false;
            }
        } else {
            run = 1;
        }
        prev = Some(c);
    }
    let lower = secret.to_ascii_lowercase();
    let has_digit = secret.chars().any(|c| c.is_ascii_digit());
    let has_upper = secret.chars().any(|c| c.is_ascii_uppercase());
    let has_lower = secret.chars().any(|c| c.is_ascii_lowercase());
    ![
        "your",
        "token_here",
        "example",
        "placeholder",
        "xxxxx",
        "redacted",
    ]
    .iter()
    .any(|w| lower.contains(w))
        && [has_digit, has_upper, has_lower]
            .iter()
            .filter(|b| **b)
            .count()
            >= 2
}

/// AWS publishes `AKIAIOSFODNN7EXAMPLE` in its documentation; it is everywhere.
fn aws_key_id(secret: &str, _: &str, _: usize) -> bool {
    !secret.ends_with("EXAMPLE")
}

fn aws_pair(text: &str, at: usize, id: &str) -> (&'static str, String) {
    let mut lo = at.saturating_sub(AWS_PAIR_WINDOW);
    while !text.is_char_boundary(lo) {
        lo -= 1;
    }
    let mut hi = (at + AWS_PAIR_WINDOW).min(text.len());
    while !text.is_char_boundary(hi) {
        hi -= 1;
    }
    let window = &text[lo..hi];
    let secret = AWS_SECRET
        .captures_iter(window)
        .filter_map(|c| c.get(1))
        .map(|m| m.as_str())
        .find(|s| !s.ends_with("EXAMPLEKEY") && random_tail(s, "", 0));
    match secret {
        Some(s) => (
            "AWS access key pair",
            format!("{} with secret {}", mask(id), mask(s)),
        ),
        None => ("AWS access key id", mask(id)),
    }
}

/// A service-account JSON is a credential when it carries its private key.
fn gcp_service_account(_: &str, text: &str, at: usize) -> bool {
    let window = text.get(at.saturating_sub(4096)..).unwrap_or(text);
    let window = window.get(..window.len().min(16384)).unwrap_or(window);
    window.contains("\"private_key\"") && window.contains("-----BEGIN")
}

fn gcp_evidence(text: &str, at: usize) -> String {
    static EMAIL: LazyLock<Regex> =
        LazyLock::new(|| compile(r#""client_email"\s*:\s*"([^"]{1,200})""#));
    static KEY_ID: LazyLock<Regex> =
        LazyLock::new(|| compile(r#""private_key_id"\s*:\s*"([0-9a-f]{16,64})""#));
    let window = text.get(at.saturating_sub(4096)..).unwrap_or(text);
    let window = window.get(..window.len().min(16384)).unwrap_or(window);
    let email = EMAIL
        .captures(window)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unknown account".into());
    let key = KEY_ID
        .captures(window)
        .and_then(|c| c.get(1))
        .map(|m| mask(m.as_str()))
        .unwrap_or_else(|| "…".into());
    format!("{email}, private_key_id {key}")
}

/// A SAS URL carries `sv=` (the service version) with its signature.
fn azure_sas(secret: &str, text: &str, at: usize) -> bool {
    let lo = at.saturating_sub(512);
    let window = text.get(lo..(at + 512).min(text.len())).unwrap_or("");
    window.contains("sv=20") && secret.len() >= 30
}

/// A JWT's header decodes to JSON naming its algorithm.
fn jwt(secret: &str, _: &str, _: usize) -> bool {
    use base64::Engine;
    let Some(header) = secret.split('.').next() else {
        return false;
    };
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header) else {
        return false;
    };
    let h = String::from_utf8_lossy(&bytes);
    h.contains("\"alg\"") && random_tail(secret.rsplit('.').next().unwrap_or(""), "", 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fake, well-formed values (random characters, not real credentials).
    const HF: &str = "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";
    const OPENAI: &str = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7dEf0hIj3kLm6nOp9qRs2tUv5w";
    const ANTHROPIC: &str =
        "sk-ant-api03-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBa9Zx8Yw7Vu6Ts5Rq4Po3Nm2Lk1Ji0HgAA";

    fn rules(text: &str) -> Vec<&'static str> {
        find(text).into_iter().map(|s| s.rule).collect()
    }

    #[test]
    fn finds_each_kind() {
        assert_eq!(rules(&format!("token = \"{HF}\"")), ["SEC001"]);
        assert_eq!(rules(&format!("OPENAI_API_KEY={OPENAI}")), ["SEC002"]);
        assert_eq!(rules(&format!("key: {ANTHROPIC}")), ["SEC003"]);
        let aws = find(
            "aws_access_key_id = AKIAQ3EGRZ5TNZHYX7VB\naws_secret_access_key = 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",
        );
        assert_eq!(aws.len(), 1);
        assert_eq!(aws[0].kind, "AWS access key pair");
        assert!(aws[0].masked.starts_with("AKIA…VB"), "{}", aws[0].masked);
        assert_eq!(
            rules("key=AIzaSyD4x9Kq2Lm8Np3Xv7Bt6Yh1Jc5Df0Gs2Ha"),
            ["SEC005"]
        );
        let sa = r#"{"type": "service_account", "project_id": "p", "private_key_id": "0123456789abcdef0123456789abcdef01234567", "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n", "client_email": "svc@p.iam.gserviceaccount.com"}"#;
        let r = find(sa);
        assert!(
            r.iter()
                .any(|s| s.rule == "SEC005" && s.masked.contains("svc@p.iam")),
            "{r:?}"
        );
        assert!(r.iter().any(|s| s.rule == "SEC009"), "{r:?}");
        assert_eq!(
            rules(
                "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=Qm9ndXNLZXlGb3JUZXN0czEyMzQ1Njc4OTBhYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODk=;EndpointSuffix=core.windows.net"
            ),
            ["SEC006"]
        );
        assert_eq!(
            rules(
                "https://acct.blob.core.windows.net/c/b?sv=2022-11-02&ss=b&sig=Zk9yVGVzdHNPbmx5MTIzNDU2Nzg5MGFiY2RlZg%3D%3D"
            ),
            ["SEC006"]
        );
        assert_eq!(
            rules("ghp_Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7d"),
            ["SEC007"]
        );
        assert_eq!(
            rules("xoxb-123456789012-1234567890123-Ab3dEf6hIj9kLm2nOp5qRs8t"),
            ["SEC008"]
        );
        assert_eq!(
            rules(
                "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw\n-----END RSA PRIVATE KEY-----"
            ),
            ["SEC009"]
        );
        let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        assert_eq!(rules(&format!("Authorization: Bearer {jwt}")), ["SEC010"]);
        assert_eq!(
            rules("-H 'Authorization: Bearer 9fQ2kLm8Np3Xv7Bt6Yh1Jc5Df0Gs2Ha9'"),
            ["SEC010"]
        );
        // A bearer header carrying an hf_ token is reported once, as the token.
        assert_eq!(rules(&format!("Authorization: Bearer {HF}")), ["SEC001"]);
    }

    #[test]
    fn masks_never_leak_the_secret() {
        let s = &find(&format!("t={HF}"))[0];
        assert_eq!(s.masked, "hf_Q…Zx (37 chars)");
        assert!(!s.masked.contains(&HF[4..35]));
    }

    #[test]
    fn placeholders_and_prose_are_quiet() {
        for t in [
            "hf_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "HF_TOKEN=hf_YOUR_TOKEN_HERE",
            "Authorization: Bearer $HF_TOKEN",
            "Authorization: Bearer <your-token-goes-here-please>",
            "AKIAIOSFODNN7EXAMPLE",
            "-----BEGIN PRIVATE KEY----- goes here",
            "The model uses sk-learn and a tokenizer with eyJ-style names.",
            "sig=abc",
            "a bearer of bad news",
        ] {
            assert!(find(t).is_empty(), "{t}: {:?}", find(t));
        }
    }
}
