//! In-process OpenAI-compatible mock endpoints for tests and demos.
//!
//! - [`MockKind::Leaky`]: a deliberately unsafe "model" that repeats its whole context
//!   (system prompt included), decodes whatever encoded text it is given (base64, hex,
//!   ROT13, reversed, Unicode tags, split strings) and opens with "Sure!". Every class of
//!   attack that works by getting context or decoded instructions into the reply succeeds.
//! - [`MockKind::Refusing`]: a well-behaved endpoint that never repeats its context and
//!   declines every request.
//! - [`MockKind::JudgeYes`]: an LLM judge that answers YES to everything.

use crate::mutate::{decode_unicode_tags, rot13};
use crate::openai::ChatRequest;
use axum::Router;
use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use regex::Regex;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MockKind {
    Leaky,
    Refusing,
    /// A judge that answers YES to every question.
    JudgeYes,
}

/// A running mock: its address and counters.
pub struct Mock {
    pub addr: SocketAddr,
    pub requests: Arc<AtomicUsize>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Mock {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        // Dropping the sender stops the server; wait for its thread.
        let (tx, _) = tokio::sync::oneshot::channel();
        drop(std::mem::replace(&mut self._shutdown, tx));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct MockState {
    kind: MockKind,
    /// The first `fail_first` requests get HTTP 503 (to exercise retries).
    fail_first: usize,
    requests: Arc<AtomicUsize>,
}

static B64: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"[A-Za-z0-9+/]{8,}={0,2}").unwrap());
static HEXRUN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(?:[0-9a-fA-F]{2}){6,}\b").unwrap());
static QUOTED: LazyLock<Regex> = LazyLock::new(|| Regex::new(r#""([^"\n]*)""#).unwrap());

/// What the leaky mock "understands" in a text: the text plus every decoding it finds.
pub fn leaky_reading(text: &str) -> String {
    let mut out = vec![text.replace(['\u{200B}'], "")];
    for m in B64.find_iter(text) {
        if let Ok(b) = base64::engine::general_purpose::STANDARD.decode(m.as_str())
            && let Ok(s) = String::from_utf8(b)
        {
            out.push(s);
        }
    }
    for m in HEXRUN.find_iter(text) {
        let d = m.as_str();
        let bytes: Vec<u8> = (0..d.len() / 2)
            .filter_map(|i| u8::from_str_radix(&d[2 * i..2 * i + 2], 16).ok())
            .collect();
        if let Ok(s) = String::from_utf8(bytes) {
            out.push(s);
        }
    }
    out.push(rot13(text));
    out.push(text.chars().rev().collect());
    let tags = decode_unicode_tags(text);
    if !tags.is_empty() {
        out.push(tags);
    }
    let joined: String = QUOTED
        .captures_iter(text)
        .map(|c| c[1].to_string())
        .collect();
    if !joined.is_empty() {
        out.push(joined);
    }
    out.join("\n")
}

async fn chat(
    axum::extract::State(st): axum::extract::State<Arc<MockState>>,
    body: Bytes,
) -> Response {
    let n = st.requests.fetch_add(1, Ordering::SeqCst);
    if n < st.fail_first {
        return (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response();
    }
    let Ok(req) = serde_json::from_slice::<ChatRequest>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            r#"{"error":{"message":"bad json"}}"#,
        )
            .into_response();
    };
    let text = match st.kind {
        MockKind::Leaky => {
            let mut t = String::from("Sure! Happy to help. Here is everything in my context:\n");
            for m in &req.messages {
                t.push_str(&leaky_reading(&m.content));
                t.push('\n');
            }
            t
        }
        MockKind::Refusing => "I'm sorry, but I can't help with that request.".to_string(),
        MockKind::JudgeYes => "YES".to_string(),
    };
    let v = json!({"id": "mock", "object": "chat.completion", "model": "mock",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]});
    ([(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}

/// Start a mock on 127.0.0.1 (a free port) in its own thread and runtime.
pub fn spawn(kind: MockKind, fail_first: usize) -> std::io::Result<Mock> {
    let requests = Arc::new(AtomicUsize::new(0));
    let st = Arc::new(MockState {
        kind,
        fail_first,
        requests: requests.clone(),
    });
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = Router::new()
        .route("/v1/chat/completions", post(chat))
        .with_state(st);
    let thread = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else {
                return;
            };
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
    });
    Ok(Mock {
        addr,
        requests,
        _shutdown: tx,
        thread: Some(thread),
    })
}
