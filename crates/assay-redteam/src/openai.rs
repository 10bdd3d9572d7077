//! The OpenAI chat-completions wire format (the subset a red-team run needs) and a small
//! HTTP client with timeouts and retries.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ChatMessage {
    pub role: String,
    #[serde(default, deserialize_with = "content_text")]
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: &str, content: impl Into<String>) -> ChatMessage {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// `content` is a string, null, or a list of parts whose `text` fields are joined.
fn content_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let v = Value::deserialize(d)?;
    Ok(match v {
        Value::String(s) => s,
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    })
}

#[derive(Clone, Debug, Serialize, Deserialize, Default)]
pub struct ChatRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    pub messages: Vec<ChatMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
}

/// What the endpoint did with one request.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// A reply (possibly cut by a content filter: `finish_reason == "content_filter"`).
    Reply {
        text: String,
        finish_reason: Option<String>,
    },
    /// The request was refused before reaching the model (HTTP 400/403/422 with an error
    /// body, as a guardrail or firewall answers).
    Blocked { status: u16, message: String },
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid target URL {0:?} (want http:// or https://)")]
    Url(String),
    #[error("request timed out after {0:?}")]
    Timeout(Duration),
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("unexpected response: {0}")]
    Protocol(String),
}

impl ClientError {
    /// Worth another try: timeouts, connection errors, 408/409/429 and 5xx.
    pub fn retryable(&self) -> bool {
        match self {
            ClientError::Timeout(_) | ClientError::Connect(_) => true,
            ClientError::Status { status, .. } => {
                matches!(status, 408 | 409 | 429) || *status >= 500
            }
            _ => false,
        }
    }
}

/// The chat-completions URL for a base URL: `http://h:p` and `http://h:p/v1` both work, and
/// a URL that already ends in `/chat/completions` is kept.
pub fn chat_url(base: &str) -> Result<String, ClientError> {
    let b = base.trim().trim_end_matches('/');
    if !(b.starts_with("http://") || b.starts_with("https://")) {
        return Err(ClientError::Url(base.to_string()));
    }
    Ok(if b.ends_with("/chat/completions") {
        b.to_string()
    } else if b.ends_with("/v1") {
        format!("{b}/chat/completions")
    } else {
        format!("{b}/v1/chat/completions")
    })
}

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// A pooled HTTP/1 client for one endpoint.
#[derive(Clone)]
pub struct ChatClient {
    client: Client<Https, Full<Bytes>>,
    url: hyper::Uri,
    api_key: Option<String>,
    pub timeout: Duration,
    /// Largest reply body read (bytes).
    pub max_body: usize,
}

/// Largest response body read by default.
pub const DEFAULT_MAX_BODY: usize = 4 << 20;

impl ChatClient {
    pub fn new(
        base: &str,
        api_key: Option<String>,
        timeout: Duration,
    ) -> Result<ChatClient, ClientError> {
        let url: hyper::Uri = chat_url(base)?
            .parse()
            .map_err(|_| ClientError::Url(base.to_string()))?;
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(https);
        Ok(ChatClient {
            client,
            url,
            api_key,
            timeout,
            max_body: DEFAULT_MAX_BODY,
        })
    }

    pub fn url(&self) -> String {
        self.url.to_string()
    }

    /// One attempt, no retry.
    pub async fn send(&self, req: &ChatRequest) -> Result<Outcome, ClientError> {
        let body = serde_json::to_vec(req).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let mut b = Request::post(self.url.clone())
            .header("content-type", "application/json")
            .header("accept", "application/json");
        if let Some(k) = &self.api_key {
            b = b.header("authorization", format!("Bearer {k}"));
        }
        let http = b
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let fut = async {
            let resp = self
                .client
                .request(http)
                .await
                .map_err(|e| ClientError::Connect(error_chain(&e)))?;
            let status = resp.status().as_u16();
            let limited = http_body_util::Limited::new(resp.into_body(), self.max_body);
            let bytes = limited
                .collect()
                .await
                .map_err(|e| ClientError::Connect(e.to_string()))?
                .to_bytes();
            Ok::<_, ClientError>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| ClientError::Timeout(self.timeout))??;
        parse_response(status, &bytes)
    }

    /// Send with retries: `retries` more attempts after the first, exponential backoff from
    /// `backoff` (doubling, capped at 30 s).
    pub async fn send_with_retries(
        &self,
        req: &ChatRequest,
        retries: u32,
        backoff: Duration,
    ) -> Result<(Outcome, u32), ClientError> {
        let mut attempt = 0;
        loop {
            match self.send(req).await {
                Ok(o) => return Ok((o, attempt)),
                Err(e) if e.retryable() && attempt < retries => {
                    let wait = backoff
                        .saturating_mul(1 << attempt.min(10))
                        .min(Duration::from_secs(30));
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Interpret a chat-completions response (plain JSON or an SSE stream).
pub fn parse_response(status: u16, body: &[u8]) -> Result<Outcome, ClientError> {
    let text = String::from_utf8_lossy(body);
    if matches!(status, 400 | 403 | 422 | 451) {
        let message = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| text.chars().take(500).collect());
        return Ok(Outcome::Blocked { status, message });
    }
    if !(200..300).contains(&status) {
        return Err(ClientError::Status {
            status,
            body: text.chars().take(500).collect(),
        });
    }
    if text.trim_start().starts_with("data:") {
        return Ok(parse_sse(&text));
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ClientError::Protocol(format!("reply is not JSON: {e}")))?;
    let choice = &v["choices"][0];
    if choice.is_null() {
        return Err(ClientError::Protocol("reply has no choices".into()));
    }
    let content = &choice["message"]["content"];
    let text = match content {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    Ok(Outcome::Reply {
        text,
        finish_reason: choice["finish_reason"].as_str().map(str::to_string),
    })
}

fn parse_sse(text: &str) -> Outcome {
    let mut out = String::new();
    let mut finish = None;
    for line in text.lines() {
        let Some(data) = line.strip_prefix("data:") else {
            continue;
        };
        let data = data.trim();
        if data == "[DONE]" {
            break;
        }
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            continue;
        };
        if let Some(s) = v["choices"][0]["delta"]["content"].as_str() {
            out.push_str(s);
        }
        if let Some(f) = v["choices"][0]["finish_reason"].as_str() {
            finish = Some(f.to_string());
        }
    }
    Outcome::Reply {
        text: out,
        finish_reason: finish,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            chat_url("http://h:1").unwrap(),
            "http://h:1/v1/chat/completions"
        );
        assert_eq!(
            chat_url("http://h:1/v1/").unwrap(),
            "http://h:1/v1/chat/completions"
        );
        assert_eq!(
            chat_url("https://x/v1/chat/completions").unwrap(),
            "https://x/v1/chat/completions"
        );
        assert!(chat_url("ftp://x").is_err());
    }

    #[test]
    fn responses() {
        let r = parse_response(
            200,
            br#"{"choices":[{"message":{"content":"hi"},"finish_reason":"stop"}]}"#,
        )
        .unwrap();
        assert_eq!(
            r,
            Outcome::Reply {
                text: "hi".into(),
                finish_reason: Some("stop".into())
            }
        );
        let r = parse_response(
            400,
            br#"{"error":{"message":"Request blocked by the Assay firewall"}}"#,
        )
        .unwrap();
        assert!(matches!(r, Outcome::Blocked { status: 400, .. }));
        let sse = b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"b\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
        let r = parse_response(200, sse).unwrap();
        assert_eq!(
            r,
            Outcome::Reply {
                text: "ab".into(),
                finish_reason: Some("stop".into())
            }
        );
        assert!(parse_response(503, b"busy").unwrap_err().retryable());
    }
}
