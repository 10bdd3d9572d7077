//! The model server the firewall forwards to: over HTTP(S) with a pooled keep-alive
//! client, or an in-process service (a `Router`) for tests and benchmarks without sockets.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request, Response, Uri, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;
use tower::ServiceExt;

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Body>;

// One value per proxy: the size of the pooled client (larger since object_store's reqwest
// turns on hyper-util's http2 support in the workspace) does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum Upstream {
    Http { client: HttpsClient, base: String },
    Service(Router),
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream URL {0:?} is not an http:// or https:// URL")]
    BadUrl(String),
    #[error("upstream unreachable: {0}")]
    Unreachable(String),
    #[error("upstream did not answer within {0:?}")]
    Timeout(Duration),
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) and the ones the firewall sets itself.
const DROP_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "accept-encoding",
    "content-encoding",
];

impl Upstream {
    /// An HTTP(S) upstream at `base` (e.g. `http://127.0.0.1:8000` or `https://api.openai.com/v1`).
    pub fn http(base: &str) -> Result<Upstream, UpstreamError> {
        let base = base.trim_end_matches('/').to_string();
        let uri: Uri = base
            .parse()
            .map_err(|_| UpstreamError::BadUrl(base.clone()))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(UpstreamError::BadUrl(base));
        }
        let tls = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| UpstreamError::Unreachable(e.to_string()))?
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(256)
            .build(tls);
        Ok(Upstream::Http { client, base })
    }

    /// The full upstream URI for an incoming path: `/v1` is not doubled when the base
    /// already ends with it.
    fn target(&self, path_and_query: &str) -> String {
        match self {
            Upstream::Service(_) => path_and_query.to_string(),
            Upstream::Http { base, .. } => {
                let p = if base.ends_with("/v1") {
                    path_and_query
                        .strip_prefix("/v1")
                        .filter(|r| r.is_empty() || r.starts_with(['/', '?']))
                        .unwrap_or(path_and_query)
                } else {
                    path_and_query
                };
                format!("{base}{p}")
            }
        }
    }

    /// Sends a request; `headers` are the caller's, filtered here.
    pub async fn send(
        &self,
        method: axum::http::Method,
        path_and_query: &str,
        headers: &HeaderMap,
        auth: Option<&HeaderValue>,
        body: Body,
        timeout: Duration,
    ) -> Result<Response<Body>, UpstreamError> {
        let uri = self.target(path_and_query);
        let mut req = Request::builder()
            .method(method)
            .uri(&uri)
            .body(body)
            .map_err(|_| UpstreamError::BadUrl(uri.clone()))?;
        let h = req.headers_mut();
        for (name, value) in headers {
            if !DROP_HEADERS.contains(&name.as_str()) {
                h.append(name.clone(), value.clone());
            }
        }
        if let Some(a) = auth {
            h.insert(header::AUTHORIZATION, a.clone());
        }
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
        let fut = async {
            match self {
                Upstream::Http { client, .. } => client
                    .request(req)
                    .await
                    .map(|r| r.map(Body::new))
                    .map_err(|e| UpstreamError::Unreachable(error_chain(&e))),
                Upstream::Service(router) => match router.clone().oneshot(req).await {
                    Ok(r) => Ok(r),
                    Err(never) => match never {},
                },
            }
        };
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| UpstreamError::Timeout(timeout))?
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

/// Response headers worth passing back to the caller.
pub fn copy_response_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (name, value) in from {
        if !DROP_HEADERS.contains(&name.as_str()) {
            to.append(name.clone(), value.clone());
        }
    }
}

pub fn is_event_stream(h: &HeaderMap) -> bool {
    h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_is_not_doubled() {
        let u = Upstream::http("http://127.0.0.1:9/v1/").unwrap();
        assert_eq!(
            u.target("/v1/chat/completions"),
            "http://127.0.0.1:9/v1/chat/completions"
        );
        assert_eq!(
            u.target("/v1/models?x=1"),
            "http://127.0.0.1:9/v1/models?x=1"
        );
        let u = Upstream::http("http://127.0.0.1:9").unwrap();
        assert_eq!(u.target("/v1/models"), "http://127.0.0.1:9/v1/models");
        assert!(Upstream::http("ftp://x").is_err());
        assert!(Upstream::http("nonsense").is_err());
    }
}
