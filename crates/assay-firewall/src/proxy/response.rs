//! Response side for complete (non-streamed) bodies: scan each choice's text, redact or
//! stop it, then give the caller back the originals of the request's placeholders.

use super::request::Endpoint;
use crate::policy::Action;
use crate::redact::Vault;
use crate::rules::code;
use crate::scan::leak::PromptIndex;
use crate::scan::{Finding, Redaction, Scanners, apply_redactions, verdict};
use serde_json::Value;

/// Output scanning shared by complete and streamed responses.
pub struct OutputScan<'a> {
    pub scanners: &'a Scanners,
    pub canary: Option<&'a str>,
    /// The request's system prompt, for leaks without the canary (FWL033).
    pub prompt: Option<&'a PromptIndex>,
    /// Output redactions are never reversible: the caller must not get them back.
    pub out_vault: Vault,
    pub findings: Vec<(String, Finding)>,
}

impl<'a> OutputScan<'a> {
    pub fn new(scanners: &'a Scanners, canary: Option<&'a str>) -> Self {
        OutputScan {
            scanners,
            canary,
            prompt: None,
            out_vault: Vault::new(false),
            findings: Vec::new(),
        }
    }

    pub fn with_prompt(mut self, prompt: Option<&'a PromptIndex>) -> Self {
        self.prompt = prompt;
        self
    }

    /// The FWL033 finding for a span of reproduced system prompt.
    pub fn leak_finding(&self, span: std::ops::Range<usize>) -> Finding {
        Finding::new(
            code::FWL033,
            "response repeats the system prompt",
            self.scanners.policy.output.prompt_leak,
            span,
            Redaction::Notice("[REDACTED]"),
        )
    }

    /// The text to pass on, or `None` when it must be stopped.
    pub fn text(&mut self, location: &str, text: &str) -> Option<String> {
        let mut f = self.scanners.scan_output(text, self.canary);
        if let Some(span) = self.prompt.and_then(|p| p.find(text)) {
            f.push(self.leak_finding(span));
        }
        if f.is_empty() {
            return Some(text.to_string());
        }
        let v = verdict(&f);
        let out = (v != Action::Block).then(|| apply_redactions(text, &f, &mut self.out_vault));
        self.findings
            .extend(f.into_iter().map(|f| (location.to_string(), f)));
        out
    }

    pub fn verdict(&self) -> Action {
        self.findings
            .iter()
            .map(|(_, f)| f.action)
            .max()
            .unwrap_or(Action::Allow)
    }
}

/// Scans and rewrites a complete response body in place.
pub fn scan_body(endpoint: Endpoint, body: &mut Value, out: &mut OutputScan<'_>, vault: &Vault) {
    if endpoint == Endpoint::Responses {
        return scan_responses_body(body, out, vault);
    }
    let Some(choices) = body.get_mut("choices").and_then(Value::as_array_mut) else {
        return;
    };
    for (i, choice) in choices.iter_mut().enumerate() {
        let Some(obj) = choice.as_object_mut() else {
            continue;
        };
        // Token log-probabilities would hand out the unscanned text token by token.
        if obj.get("logprobs").is_some_and(|l| !l.is_null()) {
            obj.insert("logprobs".into(), Value::Null);
        }
        let mut stopped = false;
        let texts: Vec<(String, String)> = match endpoint {
            Endpoint::Chat => {
                let mut v = vec![(
                    format!("choices[{i}].message.content"),
                    "/message/content".to_string(),
                )];
                if let Some(calls) = choice
                    .pointer("/message/tool_calls")
                    .and_then(Value::as_array)
                {
                    for k in 0..calls.len() {
                        v.push((
                            format!("choices[{i}].message.tool_calls[{k}].function.arguments"),
                            format!("/message/tool_calls/{k}/function/arguments"),
                        ));
                    }
                }
                v.push((
                    format!("choices[{i}].message.function_call.arguments"),
                    "/message/function_call/arguments".to_string(),
                ));
                v
            }
            Endpoint::Completions => vec![(format!("choices[{i}].text"), "/text".to_string())],
            Endpoint::Embeddings | Endpoint::Responses => Vec::new(),
        };
        for (location, pointer) in texts {
            let Some(slot) = choice.pointer_mut(&pointer) else {
                continue;
            };
            let Some(text) = slot.as_str() else { continue };
            match out.text(&location, text) {
                Some(clean) => *slot = Value::String(vault.restore(&clean)),
                None => {
                    *slot = Value::String(String::new());
                    stopped = true;
                }
            }
        }
        if stopped {
            choice["finish_reason"] = Value::String("content_filter".into());
            if let Some(calls) = choice.pointer_mut("/message/tool_calls") {
                *calls = Value::Null;
            }
        }
    }
}

/// A Responses API body: `output[]` items (message `content[].text`/`refusal`,
/// `function_call` `arguments`, reasoning `summary[].text`) and `output_text` if present.
/// A stopped text is emptied and the response marked incomplete (`content_filter`).
fn scan_responses_body(body: &mut Value, out: &mut OutputScan<'_>, vault: &Vault) {
    let mut slots: Vec<(String, String)> = Vec::new();
    if let Some(items) = body.get("output").and_then(Value::as_array) {
        for (i, item) in items.iter().enumerate() {
            if item.get("arguments").is_some() {
                slots.push((
                    format!("output[{i}].arguments"),
                    format!("/output/{i}/arguments"),
                ));
            }
            for key in ["content", "summary"] {
                let Some(parts) = item.get(key).and_then(Value::as_array) else {
                    continue;
                };
                for (j, p) in parts.iter().enumerate() {
                    for field in ["text", "refusal"] {
                        if p.get(field).is_some() {
                            slots.push((
                                format!("output[{i}].{key}[{j}].{field}"),
                                format!("/output/{i}/{key}/{j}/{field}"),
                            ));
                        }
                    }
                }
            }
        }
    }
    slots.push(("output_text".into(), "/output_text".into()));
    let mut stopped = false;
    for (location, pointer) in slots {
        let Some(slot) = body.pointer_mut(&pointer) else {
            continue;
        };
        let Some(text) = slot.as_str() else { continue };
        match out.text(&location, text) {
            Some(clean) => *slot = Value::String(vault.restore(&clean)),
            None => {
                *slot = Value::String(String::new());
                stopped = true;
            }
        }
    }
    if stopped && let Some(obj) = body.as_object_mut() {
        obj.insert("status".into(), Value::String("incomplete".into()));
        obj.insert(
            "incomplete_details".into(),
            serde_json::json!({"reason": "content_filter"}),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;
    use serde_json::json;

    #[test]
    fn redacts_restores_and_stops() {
        let s = Scanners::new(Policy::default());
        let mut vault = Vault::new(true);
        let ph = vault.placeholder("EMAIL", "bob@example.org");
        let mut body = json!({"choices": [
            {"index": 0, "message": {"role": "assistant", "content": format!("I wrote to {ph}. Key: AKIAIOSFODNN7EXAMPLE")}, "finish_reason": "stop", "logprobs": {"content": []}},
            {"index": 1, "message": {"role": "assistant", "content": "marker CNRY-00000000deadbeef"}, "finish_reason": "stop"}
        ]});
        let mut out = OutputScan::new(&s, Some("CNRY-00000000deadbeef"));
        scan_body(Endpoint::Chat, &mut body, &mut out, &vault);
        assert_eq!(
            body["choices"][0]["message"]["content"],
            "I wrote to bob@example.org. Key: [REDACTED_SECRET]"
        );
        assert!(body["choices"][0]["logprobs"].is_null());
        assert_eq!(body["choices"][1]["message"]["content"], "");
        assert_eq!(body["choices"][1]["finish_reason"], "content_filter");
        assert_eq!(out.verdict(), Action::Block);
    }
}
