//! Admission policy over Assay scan reports, written in Rego (the policy language of
//! Open Policy Agent) and evaluated in-process with Microsoft's `regorus`.
//!
//! A policy is a Rego module in `package assay` that defines `deny` (a set of reasons
//! to refuse; the model is admitted when it is empty) and optionally `warn` and
//! `suppressed`. The input document holds the scan report, the status of the model's
//! signature and scan attestation, the suppressions and the time; see
//! `policy/default.rego`, which ships embedded as [`DEFAULT_POLICY`].
//!
//! - [`Policy::load`] / [`Policy::default_policy`] compile a policy (errors name the
//!   file, line and column);
//! - [`Policy::evaluate`] returns a [`Decision`] with every reason;
//! - [`parse_suppressions`] reads a suppressions file (TOML) and checks each entry has
//!   an id, a rule, a reason and an expiry date.
//!
//! This crate never prints and never exits.
#![forbid(unsafe_code)]

mod suppress;

pub use suppress::{Suppression, parse_suppressions};

use serde::Serialize;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// The default policy, as shipped in `policy/default.rego`.
pub const DEFAULT_POLICY: &str = include_str!("../policy/default.rego");
/// The name errors give the embedded default policy.
pub const DEFAULT_POLICY_NAME: &str = "default.rego";
/// The package every policy must use.
pub const PACKAGE: &str = "data.assay";
/// Longest time one evaluation may take.
pub const MAX_EVAL_TIME: Duration = Duration::from_secs(10);
/// Largest policy file read.
pub const MAX_POLICY_BYTES: u64 = 4 << 20;

/// What went wrong, with the place in the policy when there is one.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("policy {path} is larger than {MAX_POLICY_BYTES} bytes")]
    TooLarge { path: String },
    /// A syntax or compile error; the message holds `file:line:col` and the line.
    #[error("{0}")]
    Compile(String),
    /// An error while evaluating; the message holds `file:line:col` when regorus knows.
    #[error("policy evaluation failed: {0}")]
    Eval(String),
    #[error("{0}")]
    Contract(String),
    #[error("{path}: {message}")]
    Suppressions { path: String, message: String },
    #[error("data {path}: {message}")]
    Data { path: String, message: String },
}

/// A compiled policy.
#[derive(Clone)]
pub struct Policy {
    engine: regorus::Engine,
    /// File name shown in messages.
    pub name: String,
}

/// Admit or refuse, and why.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Decision {
    pub allow: bool,
    /// Every reason to refuse, sorted.
    pub deny: Vec<String>,
    /// Things to look at that do not refuse, sorted.
    pub warn: Vec<String>,
    /// Findings a suppression let through.
    pub suppressed: Vec<Value>,
}

impl Policy {
    /// The embedded default policy.
    pub fn default_policy() -> Result<Policy, PolicyError> {
        Policy::from_source(DEFAULT_POLICY_NAME, DEFAULT_POLICY)
    }

    /// Reads and compiles a policy file.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let shown = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|source| PolicyError::Read {
            path: shown.clone(),
            source,
        })?;
        if meta.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::TooLarge { path: shown });
        }
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: shown.clone(),
            source,
        })?;
        Policy::from_source(&shown, &text)
    }

    /// Compiles policy text; `name` is the file name errors show.
    pub fn from_source(name: &str, text: &str) -> Result<Policy, PolicyError> {
        let mut engine = regorus::Engine::new();
        engine.set_strict_builtin_errors(true);
        let package = engine
            .add_policy(name.to_string(), text.to_string())
            .map_err(|e| PolicyError::Compile(e.to_string().trim().to_string()))?;
        if package != PACKAGE {
            return Err(PolicyError::Contract(format!(
                "{name}: the policy is `package {}`; Assay evaluates `package assay`",
                package.trim_start_matches("data.")
            )));
        }
        Ok(Policy {
            engine,
            name: name.to_string(),
        })
    }

    /// Evaluates the policy over `input`, with `data` (settings) merged into `data`.
    pub fn evaluate(&self, input: &Value, data: Option<&Value>) -> Result<Decision, PolicyError> {
        let mut engine = self.engine.clone();
        engine.set_execution_timer_config(regorus::utils::limits::ExecutionTimerConfig {
            limit: MAX_EVAL_TIME,
            check_interval: std::num::NonZeroU32::new(64).unwrap_or(std::num::NonZeroU32::MIN),
        });
        if let Some(d) = data {
            engine
                .add_data(to_rego(d)?)
                .map_err(|e| PolicyError::Eval(format!("cannot add data: {e}")))?;
        }
        engine.set_input(to_rego(input)?);
        let deny = strings(&mut engine, &self.name, "deny", true)?;
        let warn = strings(&mut engine, &self.name, "warn", false)?;
        let suppressed = values(&mut engine, &self.name, "suppressed")?;
        Ok(Decision {
            allow: deny.is_empty(),
            deny,
            warn,
            suppressed,
        })
    }
}

fn to_rego(v: &Value) -> Result<regorus::Value, PolicyError> {
    regorus::Value::from_json_str(&v.to_string())
        .map_err(|e| PolicyError::Eval(format!("cannot pass JSON to the engine: {e}")))
}

/// Evaluates `data.assay.<rule>` as JSON; `None` when the policy does not define it.
fn rule_json(engine: &mut regorus::Engine, rule: &str) -> Result<Option<Value>, PolicyError> {
    let v = engine
        .eval_rule(format!("{PACKAGE}.{rule}"))
        .map_err(|e| PolicyError::Eval(e.to_string()))?;
    if v == regorus::Value::Undefined {
        return Ok(None);
    }
    let text = v
        .to_json_str()
        .map_err(|e| PolicyError::Eval(format!("{rule}: {e}")))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| PolicyError::Eval(format!("{rule}: {e}")))
}

fn values(
    engine: &mut regorus::Engine,
    source: &str,
    rule: &str,
) -> Result<Vec<Value>, PolicyError> {
    if !defines(engine, source, rule) {
        return Ok(Vec::new());
    }
    match rule_json(engine, rule)? {
        None => Ok(Vec::new()),
        Some(Value::Array(a)) => Ok(a),
        Some(other) => Err(PolicyError::Contract(format!(
            "data.assay.{rule} must be a set, not {other}"
        ))),
    }
}

/// A rule's messages: strings as they are, objects by their `msg` (else as JSON).
fn strings(
    engine: &mut regorus::Engine,
    source: &str,
    rule: &str,
    required: bool,
) -> Result<Vec<String>, PolicyError> {
    if !defines(engine, source, rule) {
        if required {
            return Err(PolicyError::Contract(format!(
                "the policy defines no `{rule}` rule (data.assay.{rule}); nothing could refuse a model"
            )));
        }
        return Ok(Vec::new());
    }
    let mut out: Vec<String> = values(engine, source, rule)?
        .into_iter()
        .map(|v| match v {
            Value::String(s) => s,
            Value::Object(ref o) => match o.get("msg") {
                Some(Value::String(s)) => s.clone(),
                _ => v.to_string(),
            },
            other => other.to_string(),
        })
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// Whether the policy declares `rule` (so that an absent rule is told from an empty one).
fn defines(engine: &regorus::Engine, source: &str, rule: &str) -> bool {
    engine
        .has_declared_rule_rooted_at(source, rule)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests;
