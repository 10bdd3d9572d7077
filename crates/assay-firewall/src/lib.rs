//! Assay's AI firewall: a reverse proxy for OpenAI-compatible APIs that scans every
//! request and response in real time.
//!
//! - [`app`] builds the whole service as one `axum::Router`; [`server`] runs it on a
//!   socket, tests call it with `tower::ServiceExt::oneshot`.
//! - [`policy`]: what each scanner does (TOML, presets, errors with line numbers).
//! - [`scan`]: the scanners (prompt injection, Unicode smuggling, secrets, PII, URLs,
//!   canaries) and the verdict they add up to.
//! - [`proxy`]: the endpoints; [`proxy::stream`] scans server-sent events as they pass.
//! - [`rules`]: the `FWL` rule codes and their documentation.
//! - [`metrics`], [`audit`]: Prometheus counters and histograms, the JSON-lines audit log.
//! - [`check`]: the scanners offline, one verdict per line (`assay firewall check`).
//! - [`train`]: training and evaluating the shipped injection classifier.
//! - [`mock`]: a scripted OpenAI-compatible upstream for tests and benchmarks.
//!
//! A library: it never prints and never exits; `assay-cli` does.
#![forbid(unsafe_code)]

pub mod audit;
mod body;
pub mod check;
pub mod error;
pub mod metrics;
pub mod middleware;
pub mod mock;
pub mod policy;
pub mod proxy;
pub mod redact;
pub mod rules;
pub mod scan;
pub mod server;
pub mod train;
pub mod upstream;

pub use policy::{Action, Policy, PolicyError, Preset};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderValue;
use axum::routing::{get, post};
use std::sync::Arc;
use std::time::Duration;

/// Everything a request needs, built once and shared.
pub struct Firewall {
    pub scanners: scan::Scanners,
    pub metrics: metrics::Metrics,
    pub audit: audit::Audit,
    pub upstream: upstream::Upstream,
    /// `Bearer <key>` from the environment variable the policy names, if set.
    upstream_auth: Option<HeaderValue>,
    metrics_auth: MetricsAuth,
}

/// Who may read `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricsAuth {
    /// No token configured: anyone who can reach the address.
    Open,
    /// Callers must send `Authorization: Bearer <token>`.
    Token(String),
    /// The policy names a token variable that is unset or empty: nobody (fail closed).
    Missing(String),
}

impl Firewall {
    pub fn new(policy: Policy, upstream: upstream::Upstream, audit: audit::Audit) -> Arc<Firewall> {
        Firewall::with_env(policy, upstream, audit, &|var| std::env::var(var).ok())
    }

    /// Like [`Firewall::new`], reading the variables the policy names through `env`.
    pub fn with_env(
        policy: Policy,
        upstream: upstream::Upstream,
        audit: audit::Audit,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Arc<Firewall> {
        let metrics_auth = metrics_auth(&policy, env);
        let upstream_auth = policy
            .upstream
            .api_key_env
            .as_deref()
            .and_then(env)
            .filter(|k| !k.is_empty())
            .and_then(|k| HeaderValue::from_str(&format!("Bearer {k}")).ok())
            .map(|mut v| {
                v.set_sensitive(true);
                v
            });
        Arc::new(Firewall {
            scanners: scan::Scanners::new(policy),
            metrics: metrics::Metrics::new(),
            audit,
            upstream,
            upstream_auth,
            metrics_auth,
        })
    }

    pub fn metrics_auth(&self) -> &MetricsAuth {
        &self.metrics_auth
    }

    pub fn policy(&self) -> &Policy {
        &self.scanners.policy
    }

    /// Whether an upstream key from the environment replaces the caller's.
    pub fn upstream_auth(&self) -> Option<&HeaderValue> {
        self.upstream_auth.as_ref()
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.policy().upstream.timeout_secs)
    }
}

/// Who may read `/metrics` under this policy, with the environment read through `env`.
pub fn metrics_auth(policy: &Policy, env: &dyn Fn(&str) -> Option<String>) -> MetricsAuth {
    match policy.metrics.token_env.as_deref() {
        None => MetricsAuth::Open,
        Some(var) => match env(var).filter(|t| !t.is_empty()) {
            Some(t) => MetricsAuth::Token(t),
            None => MetricsAuth::Missing(var.to_string()),
        },
    }
}

/// The whole service.
pub fn app(fw: Arc<Firewall>) -> Router {
    Router::new()
        // Other methods on these paths (`GET /v1/chat/completions` lists stored
        // completions, `DELETE /v1/responses/{id}` deletes one) follow `passthrough` too.
        .route(
            "/v1/chat/completions",
            post(proxy::scan).fallback(proxy::passthrough),
        )
        .route(
            "/v1/completions",
            post(proxy::scan).fallback(proxy::passthrough),
        )
        .route(
            "/v1/embeddings",
            post(proxy::scan).fallback(proxy::passthrough),
        )
        .route(
            "/v1/responses",
            post(proxy::scan).fallback(proxy::passthrough),
        )
        .route(
            "/v1/responses/{id}",
            get(proxy::retrieve).fallback(proxy::passthrough),
        )
        .route(
            "/v1/chat/completions/{id}",
            get(proxy::retrieve).fallback(proxy::passthrough),
        )
        .route(
            "/v1/models",
            get(proxy::models).fallback(proxy::passthrough),
        )
        .route(
            "/v1/models/{id}",
            get(proxy::models).fallback(proxy::passthrough),
        )
        .route("/metrics", get(proxy::metrics))
        .route("/healthz", get(proxy::health))
        .fallback(proxy::passthrough)
        // Layers, innermost first (the last one added sees the request first):
        // the body limit is enforced by the handlers (`[server] max_body_bytes`) so an
        // oversized body gets the OpenAI error shape instead of a bare 413;
        .layer(DefaultBodyLimit::disable())
        // the in-flight gauge, inside the id so it covers exactly the handler's work;
        .layer(axum::middleware::from_fn_with_state(
            fw.clone(),
            middleware::inflight::layer,
        ))
        // and the request id first of all, so every response and audit line carries it.
        .layer(axum::middleware::from_fn(middleware::request_id::layer))
        .with_state(fw)
}
