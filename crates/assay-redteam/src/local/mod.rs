//! A real chat model to red-team locally: a GGUF llama-family model (SmolLM2-135M-Instruct
//! is the one tested) run on the CPU with candle's quantized llama, served behind an
//! OpenAI-compatible `POST /v1/chat/completions` (plain and `stream: true`) and
//! `GET /v1/models`. Requests are served one at a time (the model holds one KV cache).

mod tokenizer;

pub use tokenizer::Tokenizer;

use crate::openai::{ChatMessage, ChatRequest};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::generation::LogitsProcessor;
use candle_transformers::models::quantized_llama::ModelWeights;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Longest prompt (in tokens) the server accepts; longer prompts keep their tail.
pub const MAX_PROMPT_TOKENS: usize = 2048;
/// Upper bound on `max_tokens`.
pub const MAX_NEW_TOKENS: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("cannot read GGUF file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("model error: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("GGUF has no usable tokenizer: {0}")]
    Tokenizer(String),
}

/// Sampling settings for one completion.
#[derive(Clone, Debug)]
pub struct Sampling {
    pub max_tokens: usize,
    /// 0 = greedy.
    pub temperature: f64,
    pub top_p: Option<f64>,
    pub seed: u64,
}

/// One finished completion.
#[derive(Clone, Debug)]
pub struct Completion {
    pub text: String,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub finish_reason: &'static str,
    pub prompt_secs: f64,
    pub gen_secs: f64,
}

pub struct LocalModel {
    weights: ModelWeights,
    tok: Tokenizer,
    im_start: u32,
    im_end: u32,
    eos: u32,
    pub name: String,
    default_system: Option<String>,
}

fn meta_strings(ct: &gguf_file::Content, key: &str) -> Result<Vec<String>, LocalError> {
    let v = ct
        .metadata
        .get(key)
        .ok_or_else(|| LocalError::Tokenizer(format!("missing {key}")))?;
    v.to_vec()?
        .iter()
        .map(|x| x.to_string().cloned().map_err(LocalError::from))
        .collect()
}

impl LocalModel {
    pub fn load(path: &Path) -> Result<LocalModel, LocalError> {
        let io = |source| LocalError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut f = std::fs::File::open(path).map_err(io)?;
        let ct = gguf_file::Content::read(&mut f).map_err(|e| e.with_path(path))?;
        let tokens = meta_strings(&ct, "tokenizer.ggml.tokens")?;
        let merges = meta_strings(&ct, "tokenizer.ggml.merges")?;
        let types: Vec<i32> = match ct.metadata.get("tokenizer.ggml.token_type") {
            Some(v) => v.to_vec()?.iter().filter_map(|x| x.to_i32().ok()).collect(),
            None => Vec::new(),
        };
        let eos = ct
            .metadata
            .get("tokenizer.ggml.eos_token_id")
            .and_then(|v| v.to_u32().ok());
        let name = ct
            .metadata
            .get("general.name")
            .and_then(|v| v.to_string().ok().cloned())
            .unwrap_or_else(|| "local".into());
        let template = ct
            .metadata
            .get("tokenizer.chat_template")
            .and_then(|v| v.to_string().ok().cloned())
            .unwrap_or_default();
        if !template.is_empty() && !template.contains("<|im_start|>") {
            return Err(LocalError::Tokenizer(
                "only ChatML chat templates (<|im_start|>) are supported".into(),
            ));
        }
        // SmolLM2's template adds a default system turn when the caller gives none.
        let default_system = template
            .split("<|im_start|>system\n")
            .nth(1)
            .and_then(|s| s.split("<|im_end|>").next())
            .map(str::to_string);
        let tok = Tokenizer::new(tokens, &merges, &types);
        let im_start = tok
            .token_id("<|im_start|>")
            .ok_or_else(|| LocalError::Tokenizer("no <|im_start|> token".into()))?;
        let im_end = tok
            .token_id("<|im_end|>")
            .ok_or_else(|| LocalError::Tokenizer("no <|im_end|> token".into()))?;
        let weights = ModelWeights::from_gguf(ct, &mut f, &Device::Cpu)?;
        Ok(LocalModel {
            weights,
            tok,
            im_start,
            im_end,
            eos: eos.unwrap_or(im_end),
            name,
            default_system,
        })
    }

    /// ChatML: `<|im_start|>{role}\n{content}<|im_end|>\n` per message, then the
    /// assistant header. Message text is tokenized as plain text.
    pub fn prompt_ids(&self, messages: &[ChatMessage]) -> Vec<u32> {
        let mut ids = Vec::new();
        let turn = |role: &str, content: &str, ids: &mut Vec<u32>| {
            ids.push(self.im_start);
            ids.extend(self.tok.encode(&format!("{role}\n{content}")));
            ids.push(self.im_end);
            ids.extend(self.tok.encode("\n"));
        };
        if messages.first().is_none_or(|m| m.role != "system")
            && let Some(s) = &self.default_system
        {
            turn("system", s, &mut ids);
        }
        for m in messages {
            // Tool results are shown to the model as user turns.
            let role = match m.role.as_str() {
                "system" | "user" | "assistant" => m.role.as_str(),
                _ => "user",
            };
            turn(role, &m.content, &mut ids);
        }
        ids.push(self.im_start);
        ids.extend(self.tok.encode("assistant\n"));
        ids
    }

    /// Generate a reply. `on_text` receives decoded text increments (for streaming).
    pub fn complete(
        &mut self,
        messages: &[ChatMessage],
        s: &Sampling,
        mut on_text: impl FnMut(&str),
    ) -> Result<Completion, LocalError> {
        let mut ids = self.prompt_ids(messages);
        if ids.len() > MAX_PROMPT_TOKENS {
            ids.drain(..ids.len() - MAX_PROMPT_TOKENS);
        }
        let prompt_tokens = ids.len();
        let temp = (s.temperature > 0.0).then_some(s.temperature);
        let mut sampler = LogitsProcessor::new(s.seed, temp, s.top_p);
        let t0 = Instant::now();
        let input = Tensor::new(ids.as_slice(), &Device::Cpu)?.unsqueeze(0)?;
        let logits = self.weights.forward(&input, 0)?.squeeze(0)?;
        let mut next = sampler.sample(&logits)?;
        let prompt_secs = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let mut out: Vec<u32> = Vec::new();
        let mut emitted = String::new();
        let mut finish = "length";
        let max = s.max_tokens.min(MAX_NEW_TOKENS);
        while out.len() < max {
            if next == self.eos || next == self.im_end {
                finish = "stop";
                break;
            }
            out.push(next);
            let text = self.tok.decode(&out);
            // Emit only complete characters (a token can end inside a UTF-8 sequence).
            if !text.ends_with('\u{FFFD}')
                && text.len() > emitted.len()
                && text.starts_with(&emitted)
            {
                on_text(&text[emitted.len()..]);
                emitted = text;
            }
            if out.len() == max {
                break;
            }
            let input = Tensor::new(&[next], &Device::Cpu)?.unsqueeze(0)?;
            let logits = self
                .weights
                .forward(&input, prompt_tokens + out.len() - 1)?
                .squeeze(0)?;
            next = sampler.sample(&logits)?;
        }
        let text = self.tok.decode(&out);
        if text.len() > emitted.len() && text.starts_with(&emitted) {
            on_text(&text[emitted.len()..]);
        }
        Ok(Completion {
            text,
            prompt_tokens,
            completion_tokens: out.len(),
            finish_reason: finish,
            prompt_secs,
            gen_secs: t1.elapsed().as_secs_f64(),
        })
    }
}

/// Options of `serve`.
pub struct ServeModelOptions {
    pub listen: SocketAddr,
    /// Default `max_tokens` when a request gives none.
    pub max_tokens: usize,
    /// Seed used when a request gives none (with temperature > 0).
    pub seed: u64,
}

struct State {
    model: Mutex<LocalModel>,
    default_max_tokens: usize,
    default_seed: u64,
}

fn error(status: StatusCode, msg: &str) -> Response {
    let body = json!({"error": {"message": msg, "type": "invalid_request_error"}});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn chat(axum::extract::State(st): axum::extract::State<Arc<State>>, body: Bytes) -> Response {
    let req: ChatRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("invalid request: {e}")),
    };
    if req.messages.is_empty() {
        return error(StatusCode::BAD_REQUEST, "messages must not be empty");
    }
    let sampling = Sampling {
        max_tokens: req.max_tokens.unwrap_or(st.default_max_tokens).max(1),
        temperature: req.temperature.unwrap_or(0.0).max(0.0),
        top_p: req.top_p,
        seed: req.seed.unwrap_or(st.default_seed),
    };
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let id = format!("chatcmpl-local-{created}");
    if req.stream {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Result<Bytes, std::io::Error>>();
        let st2 = st.clone();
        let id2 = id.clone();
        tokio::task::spawn_blocking(move || {
            let Ok(mut model) = st2.model.lock() else {
                return;
            };
            let name = model.name.clone();
            let chunk = |delta: Value, finish: Option<&str>| {
                let v = json!({"id": id2, "object": "chat.completion.chunk", "created": created,
                    "model": name, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
                Bytes::from(format!("data: {v}\n\n"))
            };
            let _ = tx.send(Ok(chunk(json!({"role": "assistant", "content": ""}), None)));
            let res = model.complete(&req.messages, &sampling, |t| {
                let _ = tx.send(Ok(chunk(json!({"content": t}), None)));
            });
            let finish = res.as_ref().map_or("stop", |c| c.finish_reason);
            let _ = tx.send(Ok(chunk(json!({}), Some(finish))));
            let _ = tx.send(Ok(Bytes::from_static(b"data: [DONE]\n\n")));
        });
        let stream = tokio_stream_from(rx);
        return Response::builder()
            .header(header::CONTENT_TYPE, "text/event-stream")
            .body(Body::from_stream(stream))
            .unwrap_or_else(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "stream"));
    }
    let st2 = st.clone();
    let res = tokio::task::spawn_blocking(move || {
        let mut model = st2
            .model
            .lock()
            .map_err(|_| "model lock poisoned".to_string())?;
        let name = model.name.clone();
        model
            .complete(&req.messages, &sampling, |_| {})
            .map(|c| (c, name))
            .map_err(|e| e.to_string())
    })
    .await;
    match res {
        Ok(Ok((c, name))) => {
            let v = json!({
                "id": id, "object": "chat.completion", "created": created, "model": name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": c.text},
                             "finish_reason": c.finish_reason}],
                "usage": {"prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens,
                          "total_tokens": c.prompt_tokens + c.completion_tokens},
            });
            ([(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
        }
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, &e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// An unbounded receiver as a `Stream`.
fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Result<Bytes, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// The model server's router.
pub fn router(model: LocalModel, opts: &ServeModelOptions) -> Router {
    let name = model.name.clone();
    let st = Arc::new(State {
        model: Mutex::new(model),
        default_max_tokens: opts.max_tokens,
        default_seed: opts.seed,
    });
    let models =
        json!({"object": "list", "data": [{"id": name, "object": "model", "owned_by": "local"}]})
            .to_string();
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route(
            "/v1/models",
            get(move || {
                let m = models.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], m) }
            }),
        )
        .with_state(st)
}

/// Serve until SIGINT/SIGTERM. `on_ready` gets the bound address (port 0 picks one).
pub fn serve_blocking(
    model: LocalModel,
    opts: &ServeModelOptions,
    on_ready: impl FnOnce(SocketAddr),
) -> std::io::Result<()> {
    let app = router(model, opts);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let listen = opts.listen;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        on_ready(listener.local_addr()?);
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown())
            .await
    })
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
            return;
        }
    }
    let _ = ctrl_c.await;
}
