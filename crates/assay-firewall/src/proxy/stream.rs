//! Streamed responses (server-sent events), scanned as they pass.
//!
//! Each choice keeps its not-yet-released text (`pending`) and the last released bytes
//! (`tail`, context for matches that begin there). Every new piece is appended to
//! `pending`, the window `tail + pending` is scanned, and only text that can no longer
//! become part of a match is released: everything but the last `hold_back_chars` bytes,
//! and never part of a word still being written (a key, URL or placeholder is a run
//! without whitespace; digit groups joined by single spaces, as in phone, card and IBAN
//! numbers, count as one run). So a secret split over any number of chunks is seen whole
//! before any of it leaves. A `block` finding ends that choice with
//! `finish_reason: "content_filter"`; `redact` rewrites the held text in place. A stream
//! that cannot be parsed, or that breaks off, fails closed (FWL040): held text is dropped
//! and the stream is ended with `content_filter`.

use super::request::Endpoint;
use super::response::OutputScan;
use crate::policy::Action;
use crate::redact::Vault;
use crate::rules::code;
use crate::scan::leak::{self, LeakTracker};
use crate::scan::{Finding, Redaction, apply_redactions};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashSet};

mod responses;

/// An SSE event larger than this is not a chat chunk: fail closed.
const MAX_EVENT: usize = 1 << 20;
/// A run without whitespace longer than this is released anyway (after scanning), so a
/// hostile upstream cannot make the firewall buffer a whole response.
const MAX_RUN: usize = 8192;
/// Choices tracked per stream (`n` is small in practice).
const MAX_CHOICES: usize = 128;
/// Texts tracked per choice: its content plus one per tool call (or, for the Responses
/// API, one per output part).
const MAX_CHANNELS: usize = 256;
/// Text kept per Responses API stream to repeat in its `.done` events.
const MAX_KEPT: usize = 64 << 20;

/// One text that a stream builds piece by piece.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Channel {
    /// `delta.content` (chat) or `text` (completions).
    Content,
    /// `delta.tool_calls[index].function.arguments`.
    ToolArgs(u64),
    /// The legacy `delta.function_call.arguments`.
    FunctionArgs,
    /// Responses API: (event type without `.delta`, `output_index`, `content_index`).
    Part(String, u64, u64),
}

#[derive(Default)]
struct Text {
    pending: String,
    tail: String,
    released: usize,
    /// Findings already recorded, by (rule, absolute offset), so a rescan counts once.
    seen: HashSet<(&'static str, usize)>,
    /// Everything released (Responses API only: its `.done` events repeat the text).
    full: Option<String>,
    /// Words compared with the system prompt so far (FWL033), up to this absolute offset.
    leak: LeakTracker,
    leak_pos: usize,
    leak_reported: bool,
}

#[derive(Default)]
struct Choice {
    texts: BTreeMap<Channel, Text>,
    stopped: bool,
    finished: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Open,
    Done,
    Failed,
}

enum Step {
    Release(String),
    Stop,
}

pub struct StreamScanner<'a> {
    endpoint: Endpoint,
    pub out: OutputScan<'a>,
    vault: &'a Vault,
    hold: usize,
    buf: Vec<u8>,
    choices: BTreeMap<u64, Choice>,
    template: Option<Map<String, Value>>,
    kept: usize,
    pub state: State,
}

impl<'a> StreamScanner<'a> {
    pub fn new(endpoint: Endpoint, out: OutputScan<'a>, vault: &'a Vault) -> Self {
        let hold = out
            .scanners
            .policy
            .streaming
            .hold_back_chars
            .max(vault.longest_placeholder());
        StreamScanner {
            endpoint,
            out,
            vault,
            hold,
            buf: Vec::new(),
            choices: BTreeMap::new(),
            template: None,
            kept: 0,
            state: State::Open,
        }
    }

    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// Feeds upstream bytes; returns the bytes to send to the caller.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if !self.is_open() {
            return out;
        }
        self.buf.extend(bytes.iter().filter(|&&b| b != b'\r'));
        while self.is_open() {
            let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") else {
                if self.buf.len() > MAX_EVENT {
                    self.fail_closed("oversized stream event", &mut out);
                }
                break;
            };
            let event: Vec<u8> = self.buf.drain(..end + 2).collect();
            self.event(&event[..end], &mut out);
        }
        out
    }

    /// The upstream body ended.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if !self.is_open() {
            return out;
        }
        if !self.buf.iter().all(u8::is_ascii_whitespace) {
            let rest = std::mem::take(&mut self.buf);
            self.event(&rest, &mut out);
            if !self.is_open() {
                return out;
            }
        }
        // A Responses API stream is complete only after its terminal event (handled in
        // `responses_event`); a chat stream when every choice has finished.
        let complete = self.endpoint != Endpoint::Responses
            && !self.choices.is_empty()
            && self.choices.values().all(|c| c.finished || c.stopped);
        if complete {
            self.flush_all(&mut out);
            out.extend_from_slice(b"data: [DONE]\n\n");
            self.state = State::Done;
        } else {
            self.fail_closed("stream ended before it was complete", &mut out);
        }
        out
    }

    /// The upstream connection failed mid-stream.
    pub fn fail(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.is_open() {
            self.fail_closed("upstream stream broke off", &mut out);
        }
        out
    }

    fn event(&mut self, raw: &[u8], out: &mut Vec<u8>) {
        let Ok(text) = std::str::from_utf8(raw) else {
            return self.fail_closed("stream event is not UTF-8", out);
        };
        let mut data = String::new();
        let mut has_data = false;
        for line in text.split('\n') {
            if let Some(d) = line.strip_prefix("data:") {
                if has_data {
                    data.push('\n');
                }
                data.push_str(d.strip_prefix(' ').unwrap_or(d));
                has_data = true;
            } else if line.is_empty()
                || line.starts_with(':')
                || line.starts_with("event:")
                || line.starts_with("id:")
                || line.starts_with("retry:")
            {
                // Comments and metadata carry no text for the caller (the Responses API
                // repeats the event name as the data's `type`).
            } else {
                return self.fail_closed("malformed stream line", out);
            }
        }
        if !has_data {
            return;
        }
        if data.trim() == "[DONE]" {
            if self.endpoint == Endpoint::Responses {
                // A Responses stream ends with its terminal event (then the scanner is
                // closed); a `[DONE]` before it cut the answer short.
                return self.fail_closed("stream ended before its terminal event", out);
            }
            self.flush_all(out);
            out.extend_from_slice(b"data: [DONE]\n\n");
            self.state = State::Done;
            return;
        }
        let Ok(v) = serde_json::from_str::<Value>(&data) else {
            return self.fail_closed("stream event is not JSON", out);
        };
        if self.endpoint == Endpoint::Responses {
            return self.responses_event(v, out);
        }
        self.chat_event(v, out);
    }

    /// A chat or completions chunk: `choices[].delta.content`, `delta.tool_calls[]`,
    /// `choices[].text`.
    fn chat_event(&mut self, mut v: Value, out: &mut Vec<u8>) {
        let Some(choices) = v
            .get_mut("choices")
            .and_then(Value::as_array_mut)
            .map(std::mem::take)
        else {
            // Usage or error events: no generated text in them.
            if v.is_object() {
                emit(out, &v);
            } else {
                self.fail_closed("stream event is not a JSON object", out);
            }
            return;
        };
        if let Some(obj) = v.as_object() {
            let mut t = obj.clone();
            t.remove("choices");
            t.remove("usage");
            self.template = Some(t);
        }
        let had = !choices.is_empty();
        let mut kept = Vec::with_capacity(choices.len());
        for mut c in choices {
            let idx = c.get("index").and_then(Value::as_u64).unwrap_or(0);
            if !self.choices.contains_key(&idx) && self.choices.len() >= MAX_CHOICES {
                return self.fail_closed("too many choices in stream", out);
            }
            if self.choices.entry(idx).or_default().stopped {
                continue;
            }
            let finishing = c.get("finish_reason").is_some_and(|f| !f.is_null());
            let mut touched: Vec<Channel> = Vec::new();
            for (ch, piece) in pieces(self.endpoint, &c) {
                if !self.push(idx, &ch, &piece) {
                    return self.fail_closed("too many tool calls in stream", out);
                }
                touched.push(ch);
            }
            // A finishing chunk releases everything the choice still holds, in any channel.
            let channels: Vec<Channel> = match self.choices.get(&idx) {
                Some(st) if finishing => st.texts.keys().cloned().collect(),
                _ => touched.clone(),
            };
            for ch in channels {
                match self.step(idx, &ch, finishing) {
                    Step::Release(s) => {
                        let was_touched = touched.contains(&ch);
                        set_channel(&mut c, self.endpoint, &ch, s, was_touched);
                    }
                    Step::Stop => {
                        c = self.stop_choice(idx);
                        break;
                    }
                }
            }
            if finishing && let Some(st) = self.choices.get_mut(&idx) {
                st.finished = true;
            }
            if let Some(o) = c.as_object_mut()
                && o.get("logprobs").is_some_and(|l| !l.is_null())
            {
                o.insert("logprobs".into(), Value::Null);
            }
            kept.push(c);
        }
        if had && kept.is_empty() {
            return;
        }
        v["choices"] = Value::Array(kept);
        emit(out, &v);
        if !self.choices.is_empty() && self.choices.values().all(|c| c.stopped) {
            out.extend_from_slice(b"data: [DONE]\n\n");
            self.state = State::Done;
        }
    }

    /// Appends a piece to a channel's held text; false past the channel limit.
    fn push(&mut self, idx: u64, ch: &Channel, piece: &str) -> bool {
        let responses = self.endpoint == Endpoint::Responses;
        let st = self.choices.entry(idx).or_default();
        if !st.texts.contains_key(ch) && st.texts.len() >= MAX_CHANNELS {
            return false;
        }
        let t = st.texts.entry(ch.clone()).or_insert_with(|| Text {
            full: responses.then(String::new),
            ..Text::default()
        });
        t.pending.push_str(piece);
        true
    }

    fn location(&self, idx: u64, ch: &Channel) -> String {
        match (self.endpoint, ch) {
            (Endpoint::Completions, _) => format!("choices[{idx}].text"),
            (_, Channel::Content) => format!("choices[{idx}].delta.content"),
            (_, Channel::ToolArgs(j)) => {
                format!("choices[{idx}].delta.tool_calls[{j}].function.arguments")
            }
            (_, Channel::FunctionArgs) => format!("choices[{idx}].delta.function_call.arguments"),
            (_, Channel::Part(kind, o, _)) if kind.ends_with("function_call_arguments") => {
                format!("output[{o}].arguments")
            }
            (_, Channel::Part(_, o, c)) => format!("output[{o}].content[{c}].text"),
        }
    }

    /// Scans one channel's window and releases what is safe.
    fn step(&mut self, idx: u64, ch: &Channel, finishing: bool) -> Step {
        let location = self.location(idx, ch);
        let Some(st) = self.choices.get_mut(&idx) else {
            return Step::Release(String::new());
        };
        let Some(t) = st.texts.get_mut(ch) else {
            return Step::Release(String::new());
        };
        let window = format!("{}{}", t.tail, t.pending);
        let tail_len = t.tail.len();
        let found = self.out.scanners.scan_output(&window, self.out.canary);
        let base = t.released - tail_len;
        let mut relevant: Vec<Finding> = Vec::new();
        for f in found {
            if f.span.end <= tail_len {
                continue;
            }
            if t.seen.insert((f.rule, base + f.span.start)) {
                self.out.findings.push((location.clone(), f.clone()));
            }
            relevant.push(f);
        }
        // The system prompt, repeated over any number of chunks: complete words are fed
        // once each, in order; a word still being written waits for the next chunk.
        if let Some(idx) = self.out.prompt {
            let mut hit: Option<std::ops::Range<usize>> = None;
            for (r, h) in leak::words(&window) {
                if base + r.end <= t.leak_pos {
                    continue;
                }
                if r.end == window.len() && !finishing {
                    break;
                }
                t.leak_pos = base + r.end;
                if let Some(sp) = t.leak.push(idx, h, r) {
                    hit = Some(hit.map_or(sp.clone(), |x| x.start.min(sp.start)..sp.end));
                }
            }
            if let Some(sp) = hit
                && t.leak.leaked(idx)
                && sp.end > tail_len
            {
                let f = self.out.leak_finding(sp.start.max(tail_len)..sp.end);
                if !t.leak_reported {
                    t.leak_reported = true;
                    self.out.findings.push((location.clone(), f.clone()));
                }
                relevant.push(f);
            }
        }
        if relevant.iter().any(|f| f.action == Action::Block) {
            t.pending.clear();
            st.stopped = true;
            return Step::Stop;
        }
        // A match that reaches the end of what has arrived may still grow (the rest of a
        // key is in the next chunk): it is held, not released, and redacted once complete.
        let window_len = window.len();
        let settled = |f: &Finding| finishing || f.span.end < window_len;
        if relevant
            .iter()
            .any(|f| f.action == Action::Redact && settled(f))
        {
            let shifted: Vec<Finding> = relevant
                .into_iter()
                .filter(|f| settled(f))
                .map(|mut f| {
                    f.span = f.span.start.saturating_sub(tail_len)..f.span.end - tail_len;
                    f
                })
                .collect();
            t.pending = apply_redactions(&t.pending, &shifted, &mut self.out.out_vault);
        }
        let cut = if finishing {
            t.pending.len()
        } else {
            safe_cut(&t.pending, self.hold)
        };
        let released: String = t.pending.drain(..cut).collect();
        t.released += released.len();
        t.tail.push_str(&released);
        if t.tail.len() > self.hold {
            let mut from = t.tail.len() - self.hold;
            while !t.tail.is_char_boundary(from) {
                from += 1;
            }
            t.tail.drain(..from);
        }
        let restored = self.vault.restore(&released);
        if let Some(full) = &mut t.full {
            self.kept += restored.len();
            full.push_str(&restored);
        }
        Step::Release(restored)
    }

    fn stop_choice(&self, idx: u64) -> Value {
        match self.endpoint {
            Endpoint::Completions => {
                json!({"index": idx, "text": "", "finish_reason": "content_filter", "logprobs": null})
            }
            _ => {
                json!({"index": idx, "delta": {}, "finish_reason": "content_filter", "logprobs": null})
            }
        }
    }

    fn chunk(&self, choice: Value) -> Value {
        let mut v = self.template.clone().unwrap_or_else(|| {
            let mut m = Map::new();
            m.insert("id".into(), json!("assay-firewall"));
            let object = match self.endpoint {
                Endpoint::Completions => "text_completion",
                _ => "chat.completion.chunk",
            };
            m.insert("object".into(), json!(object));
            m.insert("created".into(), json!(0));
            m.insert("model".into(), json!("unknown"));
            m
        });
        v.insert("choices".into(), Value::Array(vec![choice]));
        Value::Object(v)
    }

    /// Releases everything still held (after a final scan), at a clean end of stream.
    fn flush_all(&mut self, out: &mut Vec<u8>) {
        if self.endpoint == Endpoint::Responses {
            return;
        }
        let open: Vec<u64> = self
            .choices
            .iter()
            .filter(|(_, c)| !c.stopped && c.texts.values().any(|t| !t.pending.is_empty()))
            .map(|(i, _)| *i)
            .collect();
        for idx in open {
            let mut c = self.stop_choice(idx);
            c["finish_reason"] = Value::Null;
            let channels: Vec<Channel> = self.choices[&idx].texts.keys().cloned().collect();
            for ch in channels {
                match self.step(idx, &ch, true) {
                    Step::Release(s) => set_channel(&mut c, self.endpoint, &ch, s, false),
                    Step::Stop => {
                        c = self.stop_choice(idx);
                        break;
                    }
                }
            }
            emit(out, &self.chunk(c));
        }
    }

    fn fail_closed(&mut self, why: &'static str, out: &mut Vec<u8>) {
        self.out.findings.push((
            "stream".to_string(),
            Finding::new(code::FWL040, why, Action::Block, 0..0, Redaction::Strip),
        ));
        if self.endpoint == Endpoint::Responses {
            self.responses_stop(out);
            self.state = State::Failed;
            return;
        }
        let mut open: Vec<u64> = self
            .choices
            .iter()
            .filter(|(_, c)| !c.stopped && !c.finished)
            .map(|(i, _)| *i)
            .collect();
        if self.choices.is_empty() {
            open.push(0);
        }
        for idx in open {
            if let Some(c) = self.choices.get_mut(&idx) {
                for t in c.texts.values_mut() {
                    t.pending.clear();
                }
                c.stopped = true;
            }
            emit(out, &self.chunk(self.stop_choice(idx)));
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
        self.buf.clear();
        self.state = State::Failed;
    }
}
/// The text pieces a chat or completions choice carries.
fn pieces(endpoint: Endpoint, c: &Value) -> Vec<(Channel, String)> {
    let mut v = Vec::new();
    let content = match endpoint {
        Endpoint::Completions => c.get("text"),
        _ => c.pointer("/delta/content"),
    };
    if let Some(p) = content.and_then(Value::as_str) {
        v.push((Channel::Content, p.to_string()));
    }
    if let Some(calls) = c.pointer("/delta/tool_calls").and_then(Value::as_array) {
        for (pos, tc) in calls.iter().enumerate() {
            let j = tc
                .get("index")
                .and_then(Value::as_u64)
                .unwrap_or(pos as u64);
            if let Some(a) = tc.pointer("/function/arguments").and_then(Value::as_str) {
                v.push((Channel::ToolArgs(j), a.to_string()));
            }
        }
    }
    if let Some(a) = c
        .pointer("/delta/function_call/arguments")
        .and_then(Value::as_str)
    {
        v.push((Channel::FunctionArgs, a.to_string()));
    }
    v
}

/// Puts a channel's released text into the chunk. A channel the chunk did not carry is
/// added only when there is text to release (the rest of a tool call's arguments in the
/// finishing chunk); SDKs append argument pieces by tool-call `index`.
fn set_channel(c: &mut Value, endpoint: Endpoint, ch: &Channel, s: String, touched: bool) {
    if !touched && s.is_empty() {
        return;
    }
    match ch {
        Channel::Content => set_text(c, endpoint, s),
        Channel::ToolArgs(j) => {
            if !c.get("delta").is_some_and(Value::is_object) {
                c["delta"] = json!({});
            }
            if !c["delta"].get("tool_calls").is_some_and(Value::is_array) {
                c["delta"]["tool_calls"] = json!([]);
            }
            let Some(calls) = c["delta"]["tool_calls"].as_array_mut() else {
                return;
            };
            let at = calls.iter().enumerate().position(|(pos, tc)| {
                tc.get("index")
                    .and_then(Value::as_u64)
                    .unwrap_or(pos as u64)
                    == *j
            });
            match at {
                Some(k) => calls[k]["function"]["arguments"] = Value::String(s),
                None => calls.push(json!({"index": j, "function": {"arguments": s}})),
            }
        }
        Channel::FunctionArgs => {
            if !c.get("delta").is_some_and(Value::is_object) {
                c["delta"] = json!({});
            }
            if !c["delta"]
                .get("function_call")
                .is_some_and(Value::is_object)
            {
                c["delta"]["function_call"] = json!({});
            }
            c["delta"]["function_call"]["arguments"] = Value::String(s);
        }
        Channel::Part(..) => {}
    }
}

fn set_text(c: &mut Value, endpoint: Endpoint, s: String) {
    match endpoint {
        Endpoint::Completions => c["text"] = Value::String(s),
        _ => {
            if !c.get("delta").is_some_and(Value::is_object) {
                c["delta"] = json!({});
            }
            c["delta"]["content"] = Value::String(s);
        }
    }
}

fn emit(out: &mut Vec<u8>, v: &Value) {
    out.extend_from_slice(b"data: ");
    // Serialising a Value cannot fail.
    let _ = serde_json::to_writer(&mut *out, v);
    out.extend_from_slice(b"\n\n");
}

/// How much of `p` can be released: all but the last `hold` bytes, moved back to the
/// start of the run (no whitespace; digit groups joined by single spaces) that straddles
/// the cut.
pub fn safe_cut(p: &str, hold: usize) -> usize {
    if p.len() <= hold {
        return 0;
    }
    let mut target = p.len() - hold;
    while !p.is_char_boundary(target) {
        target -= 1;
    }
    let mut c = target;
    while c > 0 && target - c < MAX_RUN {
        let Some(prev) = p[..c].chars().next_back() else {
            break;
        };
        if !prev.is_whitespace() {
            c -= prev.len_utf8();
            continue;
        }
        if prev == ' ' {
            let before = p[..c - 1].chars().next_back();
            let at = p[c..].chars().next();
            if before.is_some_and(|b| b.is_ascii_digit() || b == ')')
                && at.is_some_and(|a| a.is_ascii_digit() || a == '(')
            {
                c -= 1;
                continue;
            }
        }
        break;
    }
    if target - c >= MAX_RUN { target } else { c }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;
    use crate::scan::Scanners;

    fn sse(pieces: &[&str]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(b"data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n");
        for p in pieces {
            let c = json!({"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":p},"finish_reason":null}]});
            v.extend_from_slice(format!("data: {c}\n\n").as_bytes());
        }
        v.extend_from_slice(b"data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n");
        v
    }

    /// Runs a stream through the scanner, feeding `step` bytes at a time; returns the text
    /// the caller sees, the finish reasons and the rules that fired.
    fn run(
        policy: Policy,
        raw: &[u8],
        step: usize,
        canary: Option<&str>,
        vault: &Vault,
    ) -> (String, Vec<String>, Vec<&'static str>, State) {
        let s = Scanners::new(policy);
        let mut sc = StreamScanner::new(Endpoint::Chat, OutputScan::new(&s, canary), vault);
        let mut out = Vec::new();
        for ch in raw.chunks(step) {
            out.extend(sc.feed(ch));
        }
        out.extend(sc.finish());
        let text = String::from_utf8(out).unwrap();
        let mut content = String::new();
        let mut reasons = Vec::new();
        let mut done = 0;
        for ev in text.split("\n\n").filter(|e| !e.is_empty()) {
            let d = ev.strip_prefix("data: ").expect("data event");
            if d == "[DONE]" {
                done += 1;
                continue;
            }
            let v: Value = serde_json::from_str(d).unwrap();
            for c in v["choices"].as_array().unwrap() {
                content.push_str(c["delta"]["content"].as_str().unwrap_or(""));
                if let Some(r) = c["finish_reason"].as_str() {
                    reasons.push(r.to_string());
                }
            }
        }
        assert_eq!(done, 1, "exactly one [DONE]: {text}");
        (
            content,
            reasons,
            sc.out.findings.iter().map(|(_, f)| f.rule).collect(),
            sc.state,
        )
    }

    fn split_every(s: &str, n: usize) -> Vec<String> {
        s.chars()
            .collect::<Vec<_>>()
            .chunks(n)
            .map(|c| c.iter().collect())
            .collect()
    }

    #[test]
    fn clean_stream_passes_unchanged() {
        let text = "Hello there, this is a perfectly ordinary answer about bread. It has several sentences and no secrets at all.";
        for n in [1, 3, 7, 50] {
            let pieces = split_every(text, n);
            let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
            for step in [1, 13, 4096] {
                let (got, reasons, rules, state) = run(
                    Policy::default(),
                    &sse(&refs),
                    step,
                    None,
                    &Vault::new(true),
                );
                assert_eq!(got, text);
                assert_eq!(reasons, ["stop"]);
                assert!(rules.is_empty());
                assert_eq!(state, State::Done);
            }
        }
    }

    #[test]
    fn secret_split_across_chunks_is_redacted_before_release() {
        let key = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789";
        let text = format!("Sure. Your key is {key} and that is all.");
        for n in [1, 2, 5, 9] {
            let pieces = split_every(&text, n);
            let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
            let (got, _, rules, _) =
                run(Policy::default(), &sse(&refs), 11, None, &Vault::new(true));
            assert!(!got.contains("sk-proj"), "{got}");
            assert!(!got.contains("AbCdEf"), "{got}");
            assert_eq!(got, "Sure. Your key is [REDACTED_SECRET] and that is all.");
            assert_eq!(rules, ["FWL010"]);
        }
    }

    #[test]
    fn canary_split_across_chunks_ends_the_stream() {
        let canary = "CNRY-0123456789abcdef";
        let text =
            format!("My instructions end with [session marker: {canary}] and more text after it.");
        let pieces = split_every(&text, 3);
        let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
        let (got, reasons, rules, _) = run(
            Policy::default(),
            &sse(&refs),
            5,
            Some(canary),
            &Vault::new(true),
        );
        assert!(!got.contains("CNRY"), "{got}");
        assert!(!got.contains("0123"), "{got}");
        assert_eq!(reasons, ["content_filter"]);
        assert_eq!(rules, ["FWL030"]);
    }

    #[test]
    fn phone_number_split_in_groups_is_caught() {
        let text =
            "Call the office on +44 20 7946 0958 tomorrow morning please, they open at nine.";
        let pieces = split_every(text, 2);
        let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
        let mut p = Policy::default();
        p.streaming.hold_back_chars = 16;
        let (got, _, rules, _) = run(p, &sse(&refs), 7, None, &Vault::new(true));
        assert!(!got.contains("7946"), "{got}");
        assert!(!got.contains("+44"), "{got}");
        assert_eq!(rules, ["FWL021"]);
    }

    #[test]
    fn placeholders_are_restored_even_when_split() {
        let mut vault = Vault::new(true);
        let ph = vault.placeholder("EMAIL", "bob@example.org");
        let text = format!("I will write to {ph} today.");
        let pieces = split_every(&text, 2);
        let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
        let (got, _, rules, _) = run(Policy::default(), &sse(&refs), 3, None, &vault);
        assert_eq!(got, "I will write to bob@example.org today.");
        assert!(rules.is_empty());
    }

    #[test]
    fn broken_and_garbage_streams_fail_closed() {
        let key_start = "Here it comes: sk-proj-AbCdEfGh";
        let mut raw = sse(&[key_start]);
        // Cut before the end: the held-back half key must never be released.
        raw.truncate(raw.len() - 150);
        let cut_at = raw.windows(2).rposition(|w| w == b"\n\n").unwrap() + 2;
        raw.truncate(cut_at);
        let (got, reasons, rules, state) =
            run(Policy::default(), &raw, 64, None, &Vault::new(true));
        assert!(!got.contains("sk-proj"), "{got}");
        assert_eq!(reasons, ["content_filter"]);
        assert_eq!(rules, ["FWL040"]);
        assert_eq!(state, State::Failed);

        let mut raw = sse(&["hello "]);
        raw.splice(0..0, b"data: {not json\n\n".iter().copied());
        let (got, reasons, rules, _) = run(Policy::default(), &raw, 8, None, &Vault::new(true));
        assert_eq!(got, "");
        assert_eq!(reasons, ["content_filter"]);
        assert_eq!(rules, ["FWL040"]);
    }

    #[test]
    fn responses_stream_cut_by_done_ends_incomplete() {
        let s = Scanners::new(Policy::default());
        let vault = Vault::new(true);
        let mut sc = StreamScanner::new(Endpoint::Responses, OutputScan::new(&s, None), &vault);
        let mut raw = String::new();
        for p in ["The answer ", "is forty ", "two, as always"] {
            let e = json!({"type": "response.output_text.delta", "output_index": 0, "content_index": 0, "delta": p});
            raw.push_str(&format!("event: response.output_text.delta\ndata: {e}\n\n"));
        }
        raw.push_str("data: [DONE]\n\n");
        let mut out = sc.feed(raw.as_bytes());
        out.extend(sc.finish());
        let text = String::from_utf8(out).unwrap();
        // The caller is told the answer is incomplete, instead of a bare end of stream.
        assert!(text.contains("event: response.incomplete"), "{text}");
        assert!(!text.contains("[DONE]"), "{text}");
        assert_eq!(sc.state, State::Failed);
        assert!(sc.out.findings.iter().any(|(_, f)| f.rule == code::FWL040));
        // What was released before the cut is only text that was scanned.
        assert!(!text.contains("always"), "{text}");
    }

    #[test]
    fn safe_cut_never_splits_a_run() {
        assert_eq!(safe_cut("short", 64), 0);
        let p = format!("{} tokenwithoutspaces", "a ".repeat(40));
        let c = safe_cut(&p, 10);
        assert!(p[c..].starts_with("tokenwithoutspaces"), "{}", &p[c..]);
        let p = format!("{}call 555 123 4567", "x ".repeat(40));
        let c = safe_cut(&p, 5);
        assert!(p[c..].starts_with("555"), "{}", &p[c..]);
    }
}
