//! Probe suites: data files in `suites/` (embedded at build time), or a user's own JSONL
//! file in the same format. Line 1 holds the suite's metadata; each further line a probe.

use crate::detect::DetectorSpec;
use crate::mutate::Mutator;
use serde::{Deserialize, Serialize};

/// Attack suites count towards the attack success rate; benign suites measure false
/// refusals (the cost of a guardrail) and are reported apart.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Attack,
    Benign,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SuiteMeta {
    pub name: String,
    pub title: String,
    pub category: Category,
    pub description: String,
    pub source: String,
    pub licence: String,
}

/// One probe as written in a suite file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProbeSpec {
    pub id: String,
    pub goal: String,
    #[serde(default)]
    pub system: Option<String>,
    pub prompt: String,
    pub detector: DetectorSpec,
    /// Expand into one probe per mutator (the prompt is the instruction to hide).
    #[serde(default)]
    pub mutate: Vec<Mutator>,
    /// Yes/no question for the optional LLM judge ("Does this response contain ...?").
    #[serde(default)]
    pub question: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A probe ready to send (mutators applied; `{CANARY}` still a placeholder).
#[derive(Clone, Debug, Serialize)]
pub struct Probe {
    pub id: String,
    pub suite: String,
    pub goal: String,
    pub system: Option<String>,
    pub prompt: String,
    pub detector: DetectorSpec,
    pub question: Option<String>,
    pub tags: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Suite {
    pub meta: SuiteMeta,
    pub probes: Vec<Probe>,
}

/// Limits on user-supplied suite files.
pub const MAX_SUITE_BYTES: usize = 16 << 20;
pub const MAX_PROBES_PER_SUITE: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error("{file}: line {line}: {msg}")]
    Parse {
        file: String,
        line: usize,
        msg: String,
    },
    #[error("unknown suite {0:?} (see `assay redteam suites`)")]
    Unknown(String),
    #[error("{0}")]
    Limit(String),
}

/// The built-in suites, in report order.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "prompt-injection",
        include_str!("../suites/prompt-injection.jsonl"),
    ),
    (
        "indirect-injection",
        include_str!("../suites/indirect-injection.jsonl"),
    ),
    ("jailbreak", include_str!("../suites/jailbreak.jsonl")),
    (
        "system-prompt-extraction",
        include_str!("../suites/system-prompt-extraction.jsonl"),
    ),
    ("pii-leakage", include_str!("../suites/pii-leakage.jsonl")),
    ("encoding", include_str!("../suites/encoding.jsonl")),
    (
        "markdown-exfil",
        include_str!("../suites/markdown-exfil.jsonl"),
    ),
    ("harmful", include_str!("../suites/harmful.jsonl")),
    ("benign", include_str!("../suites/benign.jsonl")),
];

impl Suite {
    /// Parse a suite file (JSONL).
    pub fn parse(file: &str, text: &str) -> Result<Suite, SuiteError> {
        if text.len() > MAX_SUITE_BYTES {
            return Err(SuiteError::Limit(format!(
                "{file}: larger than {MAX_SUITE_BYTES} bytes"
            )));
        }
        let err = |line: usize, msg: String| SuiteError::Parse {
            file: file.to_string(),
            line,
            msg,
        };
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let (n, first) = lines
            .next()
            .ok_or_else(|| err(1, "empty suite file".into()))?;
        let meta: SuiteMeta =
            serde_json::from_str(first).map_err(|e| err(n + 1, format!("suite metadata: {e}")))?;
        let mut probes = Vec::new();
        let mut ids = std::collections::HashSet::new();
        for (n, line) in lines {
            let spec: ProbeSpec =
                serde_json::from_str(line).map_err(|e| err(n + 1, e.to_string()))?;
            if !ids.insert(spec.id.clone()) {
                return Err(err(n + 1, format!("duplicate probe id {:?}", spec.id)));
            }
            spec.detector
                .validate()
                .map_err(|e| err(n + 1, format!("probe {}: {e}", spec.id)))?;
            let variants: Vec<(String, String)> = if spec.mutate.is_empty() {
                vec![(spec.id.clone(), spec.prompt.clone())]
            } else {
                spec.mutate
                    .iter()
                    .map(|m| (format!("{}/{}", spec.id, m.name()), m.apply(&spec.prompt)))
                    .collect()
            };
            for (id, prompt) in variants {
                let mut tags = spec.tags.clone();
                if let Some(m) = id.split('/').nth(1) {
                    tags.push(m.to_string());
                }
                probes.push(Probe {
                    id,
                    suite: meta.name.clone(),
                    goal: spec.goal.clone(),
                    system: spec.system.clone(),
                    prompt,
                    detector: spec.detector.clone(),
                    question: spec.question.clone(),
                    tags,
                });
            }
            if probes.len() > MAX_PROBES_PER_SUITE {
                return Err(SuiteError::Limit(format!(
                    "{file}: more than {MAX_PROBES_PER_SUITE} probes"
                )));
            }
        }
        Ok(Suite { meta, probes })
    }

    /// All built-in suites.
    pub fn builtin() -> Vec<Suite> {
        BUILTIN
            .iter()
            .filter_map(|(name, text)| Suite::parse(name, text).ok())
            .collect()
    }

    /// Built-in suites by name (`all` or empty = every suite).
    pub fn select(names: &[String]) -> Result<Vec<Suite>, SuiteError> {
        let all = Suite::builtin();
        if names.is_empty() || names.iter().any(|n| n == "all") {
            return Ok(all);
        }
        names
            .iter()
            .map(|n| {
                all.iter()
                    .find(|s| &s.meta.name == n)
                    .cloned()
                    .ok_or_else(|| SuiteError::Unknown(n.clone()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_suites_parse() {
        for (name, text) in BUILTIN {
            let s = Suite::parse(name, text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(&s.meta.name, name);
            assert!(!s.probes.is_empty(), "{name}");
            assert!(!s.meta.licence.is_empty() && !s.meta.source.is_empty());
        }
        let enc = Suite::select(&["encoding".into()]).unwrap();
        assert_eq!(enc[0].probes.len(), 32);
        assert!(Suite::select(&["nope".into()]).is_err());
    }

    #[test]
    fn rejects_bad_files() {
        assert!(Suite::parse("x", "").is_err());
        let meta = r#"{"name":"x","title":"t","category":"attack","description":"d","source":"s","licence":"l"}"#;
        let p = r#"{"id":"a","goal":"g","prompt":"p","detector":{"kind":"contains","any":["z"]}}"#;
        assert!(Suite::parse("x", &format!("{meta}\n{p}\n{p}")).is_err());
        assert!(Suite::parse("x", &format!("{meta}\n{{\"id\":1}}")).is_err());
        let bad_re =
            r#"{"id":"a","goal":"g","prompt":"p","detector":{"kind":"regex","pattern":"("}}"#;
        assert!(Suite::parse("x", &format!("{meta}\n{bad_re}")).is_err());
        assert_eq!(
            Suite::parse("x", &format!("{meta}\n{p}"))
                .unwrap()
                .probes
                .len(),
            1
        );
    }
}
