//! Responses API streams (`POST /v1/responses` with `stream: true`).
//!
//! Text arrives in `*.delta` events (`response.output_text.delta`,
//! `response.function_call_arguments.delta`, `response.refusal.delta`, reasoning text...),
//! each keyed by `output_index` and `content_index`: every such event with a string
//! `delta` is one channel, held back and rescanned like a chat choice. The `.done` events,
//! `response.content_part.done`, `response.output_item.done` and the final
//! `response.completed` repeat the whole text: it is replaced by exactly what was released,
//! and text that never came as deltas is scanned whole. A `block` finding, or a stream
//! that cannot be read, ends the stream with `response.incomplete` and
//! `incomplete_details.reason = "content_filter"`.

use super::{Channel, State, Step, StreamScanner, Text};
use serde_json::{Value, json};

/// Event types after which the Responses API sends nothing more.
const TERMINAL: &[&str] = &[
    "response.completed",
    "response.incomplete",
    "response.failed",
    "error",
];

/// The text fields of a `.done` event, in the order they are looked for.
const DONE_FIELDS: &[&str] = &["text", "refusal", "arguments", "transcript"];

impl StreamScanner<'_> {
    pub(super) fn responses_event(&mut self, mut v: Value, out: &mut Vec<u8>) {
        let Some(kind) = v.get("type").and_then(Value::as_str).map(str::to_string) else {
            return self.fail_closed("stream event without a type", out);
        };
        if let Some(r) = v.get("response").and_then(Value::as_object) {
            let mut t = r.clone();
            t.remove("output");
            t.remove("output_text");
            self.template = Some(t);
        }
        let oi = v.get("output_index").and_then(Value::as_u64).unwrap_or(0);
        let ci = v
            .get("content_index")
            .or_else(|| v.get("summary_index"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if let Some(base) = kind.strip_suffix(".delta")
            && let Some(piece) = v.get("delta").and_then(Value::as_str)
        {
            let ch = Channel::Part(base.to_string(), oi, ci);
            if !self.push(0, &ch, piece) {
                return self.fail_closed("too many output parts in stream", out);
            }
            match self.step(0, &ch, false) {
                Step::Release(s) => v["delta"] = Value::String(s),
                Step::Stop => return self.responses_stop(out),
            }
            if self.kept > super::MAX_KEPT {
                return self.fail_closed("streamed response too large", out);
            }
            return emit_named(out, &v);
        }
        if let Some(base) = kind.strip_suffix(".done")
            && let Some(field) = DONE_FIELDS
                .iter()
                .find(|f| v.get(**f).is_some_and(Value::is_string))
        {
            let ch = Channel::Part(base.to_string(), oi, ci);
            // The rest of the held text goes out as one last delta before the `.done`.
            if self.has_channel(&ch) {
                match self.step(0, &ch, true) {
                    Step::Release(rest) if !rest.is_empty() => {
                        let mut d = json!({"type": format!("{base}.delta"), "delta": rest});
                        for k in [
                            "item_id",
                            "output_index",
                            "content_index",
                            "summary_index",
                            "sequence_number",
                        ] {
                            if let Some(x) = v.get(k) {
                                d[k] = x.clone();
                            }
                        }
                        emit_named(out, &d);
                    }
                    Step::Release(_) => {}
                    Step::Stop => return self.responses_stop(out),
                }
            }
            if !self.settle(&ch, &mut v[*field]) {
                return self.responses_stop(out);
            }
        }
        let mut ok = true;
        if let Some(part) = v.get_mut("part") {
            ok &= self.settle_part(oi, ci, part);
        }
        if let Some(item) = v.get_mut("item") {
            ok &= self.settle_item(oi, item);
        }
        if let Some(items) = v
            .pointer_mut("/response/output")
            .and_then(Value::as_array_mut)
        {
            for (i, item) in items.iter_mut().enumerate() {
                ok &= self.settle_item(i as u64, item);
            }
        }
        if let Some(t) = v.pointer_mut("/response/output_text") {
            ok &= self.settle(&Channel::Part("response.output_text".into(), 0, 0), t);
        }
        if !ok {
            return self.responses_stop(out);
        }
        emit_named(out, &v);
        if TERMINAL.contains(&kind.as_str()) {
            self.state = State::Done;
        }
    }

    fn has_channel(&self, ch: &Channel) -> bool {
        self.choices
            .get(&0)
            .is_some_and(|c| c.texts.contains_key(ch))
    }

    /// Replaces a text the stream repeats with what was released for its channel; a text
    /// that never came as deltas is scanned whole. False when it must be stopped.
    fn settle(&mut self, ch: &Channel, slot: &mut Value) -> bool {
        let Some(text) = slot.as_str() else {
            return true;
        };
        if let Some(c) = self.choices.get(&0)
            && let Some(Text {
                full: Some(full),
                pending,
                ..
            }) = c.texts.get(ch)
        {
            if !pending.is_empty() {
                // Not yet released (no `.done` came): scan and release it now.
                if let Step::Stop = self.step(0, ch, true) {
                    return false;
                }
                return self.settle(ch, slot);
            }
            *slot = Value::String(full.clone());
            return true;
        }
        if text.is_empty() {
            return true;
        }
        let location = self.location(0, ch);
        match self.out.text(&location, text) {
            Some(clean) => {
                *slot = Value::String(self.vault.restore(&clean));
                true
            }
            None => false,
        }
    }

    fn settle_part(&mut self, oi: u64, ci: u64, part: &mut Value) -> bool {
        let kind = match part.get("type").and_then(Value::as_str) {
            Some("output_text") => ("response.output_text", "text"),
            Some("refusal") => ("response.refusal", "refusal"),
            Some("summary_text") => ("response.reasoning_summary_text", "text"),
            Some("reasoning_text") => ("response.reasoning_text", "text"),
            // Other parts (audio, images) carry no text this firewall can judge.
            _ => return true,
        };
        let ch = Channel::Part(kind.0.to_string(), oi, ci);
        match part.get_mut(kind.1) {
            Some(slot) => self.settle(&ch, slot),
            None => true,
        }
    }

    fn settle_item(&mut self, oi: u64, item: &mut Value) -> bool {
        let mut ok = true;
        if let Some(args) = item.get_mut("arguments") {
            ok &= self.settle(
                &Channel::Part("response.function_call_arguments".into(), oi, 0),
                args,
            );
        }
        for key in ["content", "summary"] {
            if let Some(parts) = item.get_mut(key).and_then(Value::as_array_mut) {
                for (j, p) in parts.iter_mut().enumerate() {
                    ok &= self.settle_part(oi, j as u64, p);
                }
            }
        }
        ok
    }

    /// Ends the stream: `response.incomplete` with the content-filter reason.
    pub(super) fn responses_stop(&mut self, out: &mut Vec<u8>) {
        if let Some(c) = self.choices.get_mut(&0) {
            for t in c.texts.values_mut() {
                t.pending.clear();
            }
            c.stopped = true;
        }
        let mut r = self.template.clone().unwrap_or_default();
        r.entry("id").or_insert_with(|| json!("assay-firewall"));
        r.insert("object".into(), json!("response"));
        r.insert("status".into(), json!("incomplete"));
        r.insert(
            "incomplete_details".into(),
            json!({"reason": "content_filter"}),
        );
        r.insert("output".into(), json!([]));
        emit_named(out, &json!({"type": "response.incomplete", "response": r}));
        self.buf.clear();
        self.state = State::Done;
    }
}

/// One Responses API event: `event: TYPE` then the data, as the API sends it.
fn emit_named(out: &mut Vec<u8>, v: &Value) {
    if let Some(t) = v.get("type").and_then(Value::as_str) {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(t.as_bytes());
        out.push(b'\n');
    }
    super::emit(out, v);
}
