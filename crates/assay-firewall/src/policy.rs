//! The firewall policy: what each scanner does and how sure it must be.
//!
//! A policy file is TOML. It names a preset (`strict`, `balanced`, `permissive`) and
//! overrides any of its settings; every key is optional. Unknown keys, unknown actions
//! and out-of-range numbers are errors that point at the user's line and column, because a
//! typo in a security policy must never silently fall back to a default.
//! `policies/default.toml` documents every key and is the `balanced` preset written out.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

/// What happens when a scanner fires. Ordered: a request's verdict is the strongest action
/// among its findings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Record the finding (metrics, audit log) and let the text through unchanged.
    Allow,
    /// Replace the offending text (a placeholder, or nothing for invisible characters).
    Redact,
    /// Refuse the request (HTTP 400) or end the response with `content_filter`.
    Block,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Redact => "redact",
            Action::Block => "block",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    Strict,
    Balanced,
    Permissive,
}

/// Prompt-injection and jailbreak detection.
#[derive(Clone, Debug, PartialEq)]
pub struct InjectionPolicy {
    pub enabled: bool,
    /// For text the caller wrote (user turns, completion prompts, embedding inputs).
    pub action: Action,
    /// For text the caller passed along: tool and function results, earlier assistant turns.
    /// `redact` removes the offending sentences and keeps the rest.
    pub indirect_action: Action,
    /// Classifier probability at or above which a text (or one of its chunks) is an injection.
    pub threshold: f32,
    /// The fast phrase rules (FWL001) in addition to the classifier (FWL002).
    pub rules: bool,
}

/// Invisible text and Unicode smuggling. `redact` strips the characters.
#[derive(Clone, Debug, PartialEq)]
pub struct UnicodePolicy {
    pub tags: Action,
    pub bidi: Action,
    pub zero_width: Action,
    /// Consecutive zero-width characters that count as a hidden run.
    pub zero_width_run: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SecretsPolicy {
    /// Secrets in requests (the caller is about to send a key to the model provider).
    pub input: Action,
    /// Secrets in responses (the model is handing out a key).
    pub output: Action,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PiiPolicy {
    pub email: Action,
    pub phone: Action,
    pub card: Action,
    pub iban: Action,
    pub ssn: Action,
    pub ip: Action,
    /// Placeholders go upstream; the caller gets the originals back in the response.
    pub reversible: bool,
    /// For PII in responses, whatever the type (types set to `allow` stay allowed).
    pub output: Action,
}

#[derive(Clone, Debug, PartialEq)]
pub struct OutputPolicy {
    /// A response that repeats the canary planted in the system prompt.
    pub canary: Action,
    /// Markdown images and data-carrying links to domains not on the allowlist.
    pub exfil: Action,
    /// `javascript:`/`data:` URLs, IP-literal hosts, credentials in URLs, punycode hosts.
    pub dangerous_urls: Action,
    /// A response that repeats long runs of the system prompt, canary or not (FWL033).
    pub prompt_leak: Action,
    /// Words per n-gram compared with the system prompt.
    pub prompt_leak_ngram: usize,
    /// Words of the response copied from the system prompt that make a leak (or half the
    /// prompt, when it is shorter).
    pub prompt_leak_words: usize,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct AllowPolicy {
    /// Domains (and their subdomains) that images and links may point at.
    pub domains: Vec<String>,
    /// Phrases removed before injection scanning (e.g. your own test prompts).
    pub phrases: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct UpstreamPolicy {
    /// When set and the variable is non-empty, `Authorization: Bearer $VAR` replaces
    /// whatever the caller sent.
    pub api_key_env: Option<String>,
    pub timeout_secs: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ServerPolicy {
    /// Other paths are forwarded unscanned (`true`) or refused with 404 (`false`).
    pub passthrough: bool,
    pub max_body_bytes: usize,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct MetricsPolicy {
    /// When set, `GET /metrics` needs `Authorization: Bearer $VAR`. Unset (the default),
    /// it is open to whoever can reach the listening address (loopback by default).
    pub token_env: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StreamingPolicy {
    /// Characters of streamed text held back until the text after them has been seen.
    pub hold_back_chars: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub preset: Preset,
    pub injection: InjectionPolicy,
    pub unicode: UnicodePolicy,
    pub secrets: SecretsPolicy,
    pub pii: PiiPolicy,
    pub output: OutputPolicy,
    pub allow: AllowPolicy,
    pub upstream: UpstreamPolicy,
    pub server: ServerPolicy,
    pub streaming: StreamingPolicy,
    pub metrics: MetricsPolicy,
    /// JSON-lines audit log; `None` disables it.
    pub audit_log: Option<PathBuf>,
}

/// The documented default policy file (the `balanced` preset written out).
pub const DEFAULT_POLICY_TOML: &str = include_str!("../policies/default.toml");

impl Default for Policy {
    fn default() -> Self {
        Policy::preset(Preset::Balanced)
    }
}

impl Policy {
    pub fn preset(preset: Preset) -> Policy {
        use Action::*;
        let (strict, permissive) = (preset == Preset::Strict, preset == Preset::Permissive);
        let pick = |s: Action, b: Action, p: Action| {
            if strict {
                s
            } else if permissive {
                p
            } else {
                b
            }
        };
        Policy {
            preset,
            injection: InjectionPolicy {
                enabled: true,
                action: pick(Block, Block, Allow),
                indirect_action: pick(Block, Block, Redact),
                threshold: if strict {
                    0.5
                } else if permissive {
                    0.9
                } else {
                    0.8
                },
                rules: true,
            },
            unicode: UnicodePolicy {
                tags: pick(Block, Block, Redact),
                bidi: pick(Block, Redact, Redact),
                zero_width: pick(Block, Redact, Allow),
                zero_width_run: if strict { 2 } else { 3 },
            },
            secrets: SecretsPolicy {
                input: pick(Block, Block, Redact),
                output: pick(Block, Redact, Redact),
            },
            pii: PiiPolicy {
                email: pick(Block, Redact, Allow),
                phone: pick(Block, Redact, Allow),
                card: pick(Block, Redact, Redact),
                iban: pick(Block, Redact, Redact),
                ssn: pick(Block, Redact, Redact),
                ip: pick(Redact, Allow, Allow),
                reversible: !strict,
                output: pick(Block, Redact, Redact),
            },
            output: OutputPolicy {
                canary: pick(Block, Block, Redact),
                exfil: pick(Block, Block, Redact),
                dangerous_urls: pick(Block, Redact, Allow),
                prompt_leak: pick(Block, Block, Redact),
                prompt_leak_ngram: 5,
                prompt_leak_words: if strict { 12 } else { 16 },
            },
            allow: AllowPolicy::default(),
            upstream: UpstreamPolicy {
                api_key_env: None,
                timeout_secs: 300,
            },
            server: ServerPolicy {
                passthrough: !strict,
                max_body_bytes: 4 << 20,
            },
            streaming: StreamingPolicy {
                hold_back_chars: if strict { 128 } else { 64 },
            },
            metrics: MetricsPolicy::default(),
            audit_log: None,
        }
    }

    /// Reads and validates a policy file.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
            path: path.display().to_string(),
            message: format!("cannot read policy: {e}"),
            line: 0,
            column: 0,
            snippet: String::new(),
            width: 0,
        })?;
        Policy::parse(&text, &path.display().to_string())
    }

    /// Parses policy TOML; `origin` names the source in error messages.
    pub fn parse(text: &str, origin: &str) -> Result<Policy, PolicyError> {
        let raw: RawPolicy = toml::from_str(text).map_err(|e| {
            PolicyError::at(origin, text, e.span(), e.message().trim_end().to_string())
        })?;
        let mut p = Policy::preset(raw.preset.unwrap_or(Preset::Balanced));
        raw.apply(&mut p);
        Ok(p)
    }
}

/// A policy that cannot be used, with the place in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyError {
    pub path: String,
    pub message: String,
    /// 1-based; 0 when there is no place (unreadable file).
    pub line: usize,
    pub column: usize,
    pub snippet: String,
    pub width: usize,
}

impl PolicyError {
    fn at(path: &str, text: &str, span: Option<std::ops::Range<usize>>, message: String) -> Self {
        let span = span.unwrap_or(0..0);
        let start = span.start.min(text.len());
        let before = text.get(..start).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        let snippet = text
            .get(line_start..)
            .unwrap_or("")
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        let width = text
            .get(start..span.end.min(text.len()))
            .map_or(1, |s| s.lines().next().unwrap_or("").chars().count().max(1));
        PolicyError {
            path: path.to_string(),
            message,
            line,
            column,
            snippet,
            width,
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            return write!(f, "{}: {}", self.path, self.message);
        }
        let n = self.line.to_string();
        let pad = " ".repeat(n.len());
        writeln!(f, "{}", self.message)?;
        writeln!(f, "{pad}--> {}:{}:{}", self.path, self.line, self.column)?;
        writeln!(f, "{pad} |")?;
        writeln!(f, "{n} | {}", self.snippet)?;
        write!(
            f,
            "{pad} | {}{}",
            " ".repeat(self.column.saturating_sub(1)),
            "^".repeat(self.width)
        )
    }
}

impl std::error::Error for PolicyError {}

/// A probability in [0, 1]; anything else is an error at the value's position.
#[derive(Clone, Copy, Debug)]
struct Probability(f32);

impl<'de> Deserialize<'de> for Probability {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        if (0.0..=1.0).contains(&v) {
            Ok(Probability(v as f32))
        } else {
            Err(serde::de::Error::custom(format!(
                "threshold must be between 0 and 1, found {v}"
            )))
        }
    }
}

/// A count with bounds, so a policy cannot ask for a zero-length window or a 1 GB body.
#[derive(Clone, Copy, Debug)]
struct Bounded<const MIN: u64, const MAX: u64>(u64);

impl<'de, const MIN: u64, const MAX: u64> Deserialize<'de> for Bounded<MIN, MAX> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = i64::deserialize(d)?;
        if v >= MIN as i64 && v as u64 <= MAX {
            Ok(Bounded(v as u64))
        } else {
            Err(serde::de::Error::custom(format!(
                "must be between {MIN} and {MAX}, found {v}"
            )))
        }
    }
}

// The file as written: every key optional, unknown keys refused.

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    preset: Option<Preset>,
    audit_log: Option<PathBuf>,
    injection: Option<RawInjection>,
    unicode: Option<RawUnicode>,
    secrets: Option<RawSecrets>,
    pii: Option<RawPii>,
    output: Option<RawOutput>,
    allow: Option<RawAllow>,
    upstream: Option<RawUpstream>,
    server: Option<RawServer>,
    streaming: Option<RawStreaming>,
    metrics: Option<RawMetrics>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    token_env: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInjection {
    enabled: Option<bool>,
    action: Option<Action>,
    indirect_action: Option<Action>,
    threshold: Option<Probability>,
    rules: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUnicode {
    tags: Option<Action>,
    bidi: Option<Action>,
    zero_width: Option<Action>,
    zero_width_run: Option<Bounded<1, 64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecrets {
    input: Option<Action>,
    output: Option<Action>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPii {
    email: Option<Action>,
    phone: Option<Action>,
    card: Option<Action>,
    iban: Option<Action>,
    ssn: Option<Action>,
    ip: Option<Action>,
    reversible: Option<bool>,
    output: Option<Action>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutput {
    canary: Option<Action>,
    exfil: Option<Action>,
    dangerous_urls: Option<Action>,
    prompt_leak: Option<Action>,
    prompt_leak_ngram: Option<Bounded<3, 32>>,
    prompt_leak_words: Option<Bounded<4, 100_000>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAllow {
    domains: Option<Vec<String>>,
    phrases: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    api_key_env: Option<String>,
    timeout_secs: Option<Bounded<1, 86_400>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    passthrough: Option<bool>,
    max_body_bytes: Option<Bounded<1024, { 256 << 20 }>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStreaming {
    hold_back_chars: Option<Bounded<16, 4096>>,
}

fn set<T>(slot: &mut T, v: Option<T>) {
    if let Some(v) = v {
        *slot = v;
    }
}

impl RawPolicy {
    fn apply(self, p: &mut Policy) {
        if self.audit_log.is_some() {
            p.audit_log = self.audit_log;
        }
        if let Some(r) = self.injection {
            set(&mut p.injection.enabled, r.enabled);
            set(&mut p.injection.action, r.action);
            set(&mut p.injection.indirect_action, r.indirect_action);
            set(&mut p.injection.threshold, r.threshold.map(|t| t.0));
            set(&mut p.injection.rules, r.rules);
        }
        if let Some(r) = self.unicode {
            set(&mut p.unicode.tags, r.tags);
            set(&mut p.unicode.bidi, r.bidi);
            set(&mut p.unicode.zero_width, r.zero_width);
            set(
                &mut p.unicode.zero_width_run,
                r.zero_width_run.map(|b| b.0 as usize),
            );
        }
        if let Some(r) = self.secrets {
            set(&mut p.secrets.input, r.input);
            set(&mut p.secrets.output, r.output);
        }
        if let Some(r) = self.pii {
            set(&mut p.pii.email, r.email);
            set(&mut p.pii.phone, r.phone);
            set(&mut p.pii.card, r.card);
            set(&mut p.pii.iban, r.iban);
            set(&mut p.pii.ssn, r.ssn);
            set(&mut p.pii.ip, r.ip);
            set(&mut p.pii.reversible, r.reversible);
            set(&mut p.pii.output, r.output);
        }
        if let Some(r) = self.output {
            set(&mut p.output.canary, r.canary);
            set(&mut p.output.exfil, r.exfil);
            set(&mut p.output.dangerous_urls, r.dangerous_urls);
            set(&mut p.output.prompt_leak, r.prompt_leak);
            set(
                &mut p.output.prompt_leak_ngram,
                r.prompt_leak_ngram.map(|b| b.0 as usize),
            );
            set(
                &mut p.output.prompt_leak_words,
                r.prompt_leak_words.map(|b| b.0 as usize),
            );
        }
        if let Some(r) = self.allow {
            let lower = |v: Vec<String>| -> Vec<String> {
                v.into_iter()
                    .map(|s| s.trim().trim_start_matches("*.").to_ascii_lowercase())
                    .filter(|s| !s.is_empty())
                    .collect()
            };
            set(&mut p.allow.domains, r.domains.map(lower));
            set(&mut p.allow.phrases, r.phrases.map(lower));
        }
        if let Some(r) = self.upstream {
            if r.api_key_env.is_some() {
                p.upstream.api_key_env = r.api_key_env.filter(|s| !s.is_empty());
            }
            set(&mut p.upstream.timeout_secs, r.timeout_secs.map(|b| b.0));
        }
        if let Some(r) = self.server {
            set(&mut p.server.passthrough, r.passthrough);
            set(
                &mut p.server.max_body_bytes,
                r.max_body_bytes.map(|b| b.0 as usize),
            );
        }
        if let Some(r) = self.metrics
            && r.token_env.is_some()
        {
            p.metrics.token_env = r.token_env.filter(|s| !s.is_empty());
        }
        if let Some(r) = self.streaming {
            set(
                &mut p.streaming.hold_back_chars,
                r.hold_back_chars.map(|b| b.0 as usize),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_file_is_the_balanced_preset() {
        let p = Policy::parse(DEFAULT_POLICY_TOML, "default.toml").unwrap();
        assert_eq!(p, Policy::preset(Preset::Balanced));
    }

    #[test]
    fn presets_differ_and_overrides_apply() {
        let p = Policy::parse(
            "preset = \"strict\"\n[pii]\nemail = \"allow\"\n[allow]\ndomains = [\"*.Example.com\"]\n",
            "p",
        )
        .unwrap();
        assert_eq!(p.preset, Preset::Strict);
        assert_eq!(p.pii.email, Action::Allow);
        assert_eq!(p.pii.phone, Action::Block);
        assert_eq!(p.allow.domains, vec!["example.com"]);
        assert_ne!(
            Policy::preset(Preset::Permissive),
            Policy::preset(Preset::Strict)
        );
    }

    #[test]
    fn unknown_action_points_at_the_line() {
        let e = Policy::parse(
            "preset = \"balanced\"\n\n[pii]\nemail = \"blok\"\n",
            "p.toml",
        )
        .unwrap_err();
        assert_eq!(e.line, 4, "{e}");
        assert_eq!(e.column, 9, "{e}");
        assert!(e.message.contains("blok"), "{e}");
        let shown = e.to_string();
        assert!(shown.contains("p.toml:4:9"), "{shown}");
        assert!(shown.contains("email = \"blok\""), "{shown}");
    }

    #[test]
    fn unknown_key_and_bad_threshold_point_at_the_line() {
        let e = Policy::parse("[injection]\nthreshhold = 0.5\n", "p").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        assert!(e.message.contains("threshhold"), "{e}");
        let e =
            Policy::parse("[injection]\naction = \"block\"\nthreshold = 1.5\n", "p").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(e.message.contains("between 0 and 1"), "{e}");
        let e = Policy::parse("[streaming]\nhold_back_chars = 1\n", "p").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
    }

    #[test]
    fn action_order_is_allow_redact_block() {
        assert!(Action::Allow < Action::Redact && Action::Redact < Action::Block);
    }
}
