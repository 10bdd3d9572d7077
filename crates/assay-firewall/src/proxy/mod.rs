//! The HTTP handlers: the scanned OpenAI endpoints, pass-through, metrics.

pub mod request;
pub mod response;
pub mod stream;

use crate::Firewall;
use crate::audit;
use crate::error;
use crate::middleware::request_id::RequestId;
use crate::policy::Action;
use crate::rules::code;
use crate::scan::{Direction, Finding, Redaction};
use crate::upstream::{UpstreamError, copy_response_headers, is_event_stream};
use axum::Extension;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use request::{Endpoint, RequestPlan, Unscannable};
use response::OutputScan;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use stream::StreamScanner;

/// Largest complete upstream response the firewall reads and scans.
const MAX_RESPONSE_BYTES: usize = 64 << 20;

type Fw = State<Arc<Firewall>>;

/// `POST /v1/chat/completions`, `/v1/completions`, `/v1/embeddings`, `/v1/responses`: the
/// request is scanned, then the answer.
pub async fn scan(State(fw): Fw, Extension(id): Extension<RequestId>, req: Request) -> Response {
    let endpoint = match req.uri().path() {
        "/v1/completions" => Endpoint::Completions,
        "/v1/embeddings" => Endpoint::Embeddings,
        "/v1/responses" => Endpoint::Responses,
        _ => Endpoint::Chat,
    };
    scanned(fw, id, endpoint, req).await
}

/// `GET /v1/models`: always forwarded, there is no text to scan.
pub async fn models(State(fw): Fw, Extension(id): Extension<RequestId>, req: Request) -> Response {
    forward(&fw, &id, req).await
}

/// Any other path: forwarded unscanned, or refused, per `[server] passthrough`.
pub async fn passthrough(
    State(fw): Fw,
    Extension(id): Extension<RequestId>,
    req: Request,
) -> Response {
    if !fw.policy().server.passthrough {
        fw.metrics.request("other", "refused");
        return error::openai_error(
            StatusCode::NOT_FOUND,
            &format!(
                "{} is not served through the Assay firewall",
                req.uri().path()
            ),
            "invalid_request_error",
            "unknown_url",
            None,
            &[],
            &id.0,
        );
    }
    forward(&fw, &id, req).await
}

/// `GET /metrics`, behind a bearer token when the policy names one (`[metrics] token_env`).
pub async fn metrics(State(fw): Fw, req: Request) -> Response {
    let allowed = match fw.metrics_auth() {
        crate::MetricsAuth::Open => true,
        crate::MetricsAuth::Missing(_) => false,
        crate::MetricsAuth::Token(t) => req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .is_some_and(|given| same_secret(given.trim().as_bytes(), t.as_bytes())),
    };
    if !allowed {
        let mut r = (
            StatusCode::UNAUTHORIZED,
            "metrics need Authorization: Bearer <token> ([metrics] token_env)\n",
        )
            .into_response();
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"assay-firewall-metrics\""),
        );
        return r;
    }
    let mut r = fw.metrics.render().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

/// Compares two secrets in time that depends only on their lengths.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub async fn health() -> &'static str {
    "ok"
}

/// Sends the caller's request (method, path and query, headers) upstream with `body`.
async fn send_upstream(
    fw: &Firewall,
    parts: &axum::http::request::Parts,
    body: Body,
) -> Result<Response<Body>, UpstreamError> {
    let path = parts
        .uri
        .path_and_query()
        .map_or(parts.uri.path(), |p| p.as_str());
    fw.upstream
        .send(
            parts.method.clone(),
            path,
            &parts.headers,
            fw.upstream_auth(),
            body,
            fw.timeout(),
        )
        .await
}

async fn forward(fw: &Firewall, id: &RequestId, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let start = Instant::now();
    match send_upstream(fw, &parts, body).await {
        Ok(r) => {
            fw.metrics.upstream.observe(start.elapsed());
            fw.metrics.request("other", "allow");
            let (rp, rb) = r.into_parts();
            let mut out = Response::new(rb);
            *out.status_mut() = rp.status;
            copy_response_headers(&rp.headers, out.headers_mut());
            out
        }
        Err(e) => upstream_failed(fw, id, "other", e),
    }
}

fn upstream_failed(fw: &Firewall, id: &RequestId, endpoint: &str, e: UpstreamError) -> Response {
    let kind = match e {
        UpstreamError::Timeout(_) => "timeout",
        _ => "unreachable",
    };
    fw.metrics.upstream_error(kind);
    fw.metrics.request(endpoint, "error");
    error::bad_gateway(&e.to_string(), &[], &id.0)
}

/// Refuses a request the firewall cannot read (FWL041): it cannot vouch for it.
fn unscannable(
    fw: &Firewall,
    id: &RequestId,
    endpoint: Endpoint,
    why: &'static str,
    start: Instant,
) -> Response {
    let f = vec![(
        "body".to_string(),
        Finding::new(code::FWL041, why, Action::Block, 0..0, Redaction::Strip),
    )];
    fw.record(
        id,
        endpoint,
        Direction::Request,
        Action::Block,
        false,
        None,
        &f,
    );
    fw.metrics.request(endpoint.name(), "block");
    fw.metrics.overhead.observe(start.elapsed());
    error::blocked(
        &format!(
            "Request refused by the Assay firewall: {why} ({})",
            code::FWL041
        ),
        None,
        &[code::FWL041],
        &id.0,
    )
}

fn blocked_response(id: &RequestId, plan: &RequestPlan) -> Response {
    let blocking: Vec<&(String, Finding)> = plan
        .findings
        .iter()
        .filter(|(_, f)| f.action == Action::Block)
        .collect();
    let mut rules: Vec<&str> = blocking.iter().map(|(_, f)| f.rule).collect();
    rules.dedup();
    rules.sort_unstable();
    rules.dedup();
    let (loc, first) = blocking[0];
    let more = match blocking.len() - 1 {
        0 => String::new(),
        n => format!(" and {n} more finding{}", if n == 1 { "" } else { "s" }),
    };
    let message = format!(
        "Request blocked by the Assay firewall: {} ({}) in {loc}{more}",
        first.detail, first.rule
    );
    error::blocked(&message, Some(loc), &rules, &id.0)
}

async fn scanned(fw: Arc<Firewall>, id: RequestId, endpoint: Endpoint, req: Request) -> Response {
    let start = Instant::now();
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, fw.policy().server.max_body_bytes).await else {
        return unscannable(
            &fw,
            &id,
            endpoint,
            "request body too large or unreadable",
            start,
        );
    };
    let Ok(mut json) = serde_json::from_slice::<Value>(&bytes) else {
        return unscannable(&fw, &id, endpoint, "request body is not valid JSON", start);
    };
    let plan = match request::inspect(&fw.scanners, endpoint, &mut json) {
        Ok(p) => p,
        Err(Unscannable(why)) => return unscannable(&fw, &id, endpoint, why, start),
    };
    fw.record(
        &id,
        endpoint,
        Direction::Request,
        plan.verdict,
        plan.stream,
        None,
        &plan.findings,
    );
    if plan.verdict == Action::Block {
        fw.metrics.request(endpoint.name(), "block");
        fw.metrics.overhead.observe(start.elapsed());
        return blocked_response(&id, &plan);
    }
    let body = if plan.findings.is_empty() && plan.canary.is_none() {
        bytes
    } else {
        // Serialising a Value cannot fail.
        serde_json::to_vec(&json).unwrap_or_default().into()
    };
    let up_start = Instant::now();
    let resp = match send_upstream(&fw, &parts, Body::from(body)).await {
        Ok(r) => r,
        Err(e) => return upstream_failed(&fw, &id, endpoint.name(), e),
    };
    deliver(fw, id, endpoint, plan, resp, start, up_start).await
}

/// `GET /v1/responses/{id}` and `GET /v1/chat/completions/{id}`: model output stored
/// upstream and fetched later. It is scanned like the answer it was (a secret redacted on
/// the way out of `POST` must not come back unredacted by asking again), with no request
/// side: no canary and no restored placeholders. A streamed retrieval
/// (`?stream=true`) is scanned with the same hold-back.
pub async fn retrieve(
    State(fw): Fw,
    Extension(id): Extension<RequestId>,
    req: Request,
) -> Response {
    let start = Instant::now();
    let endpoint = if req.uri().path().starts_with("/v1/responses/") {
        Endpoint::Responses
    } else {
        Endpoint::Chat
    };
    let (parts, body) = req.into_parts();
    let up_start = Instant::now();
    let resp = match send_upstream(&fw, &parts, body).await {
        Ok(r) => r,
        Err(e) => return upstream_failed(&fw, &id, endpoint.name(), e),
    };
    let plan = RequestPlan::retrieval();
    deliver(fw, id, endpoint, plan, resp, start, up_start).await
}

/// Scans the upstream's answer (complete or streamed) and passes on what it allows.
async fn deliver(
    fw: Arc<Firewall>,
    id: RequestId,
    endpoint: Endpoint,
    plan: RequestPlan,
    resp: Response<Body>,
    start: Instant,
    up_start: Instant,
) -> Response {
    let before_upstream = up_start - start;
    let (rparts, rbody) = resp.into_parts();
    if plan.stream && rparts.status.is_success() && is_event_stream(&rparts.headers) {
        fw.metrics.upstream.observe(up_start.elapsed());
        let mut out = Response::new(stream_body(
            fw.clone(),
            id,
            endpoint,
            plan,
            rbody,
            before_upstream,
        ));
        *out.status_mut() = rparts.status;
        copy_response_headers(&rparts.headers, out.headers_mut());
        return out;
    }
    let Ok(rbytes) = axum::body::to_bytes(rbody, MAX_RESPONSE_BYTES).await else {
        return fail_closed(
            &fw,
            &id,
            endpoint,
            &plan,
            "upstream response too large or broken",
            start,
            up_start,
        );
    };
    fw.metrics.upstream.observe(up_start.elapsed());
    let scan_start = Instant::now();
    let mut verdict = plan.verdict;
    let body: Body = if !rparts.status.is_success() || endpoint == Endpoint::Embeddings {
        // Errors and embedding vectors carry no generated text.
        Body::from(rbytes)
    } else {
        let Ok(mut v) = serde_json::from_slice::<Value>(&rbytes) else {
            return fail_closed(
                &fw,
                &id,
                endpoint,
                &plan,
                "upstream response is not JSON",
                start,
                up_start,
            );
        };
        let mut out =
            OutputScan::new(&fw.scanners, plan.canary.as_deref()).with_prompt(plan.prompt.as_ref());
        response::scan_body(endpoint, &mut v, &mut out, &plan.vault);
        let rv = out.verdict();
        fw.record(
            &id,
            endpoint,
            Direction::Response,
            rv,
            false,
            Some(rparts.status.as_u16()),
            &out.findings,
        );
        verdict = verdict.max(rv);
        Body::from(serde_json::to_vec(&v).unwrap_or_default())
    };
    fw.metrics
        .overhead
        .observe(before_upstream + scan_start.elapsed());
    fw.metrics.request(endpoint.name(), verdict.as_str());
    let mut out = Response::new(body);
    *out.status_mut() = rparts.status;
    copy_response_headers(&rparts.headers, out.headers_mut());
    out
}

/// A complete response that cannot be read is not passed on (FWL040).
fn fail_closed(
    fw: &Firewall,
    id: &RequestId,
    endpoint: Endpoint,
    plan: &RequestPlan,
    why: &'static str,
    start: Instant,
    up_start: Instant,
) -> Response {
    let f = vec![(
        "body".to_string(),
        Finding::new(code::FWL040, why, Action::Block, 0..0, Redaction::Strip),
    )];
    fw.record(
        id,
        endpoint,
        Direction::Response,
        Action::Block,
        plan.stream,
        None,
        &f,
    );
    fw.metrics.upstream_error("unparseable");
    fw.metrics.request(endpoint.name(), "block");
    fw.metrics
        .overhead
        .observe(start.elapsed().saturating_sub(up_start.elapsed()));
    error::bad_gateway(
        &format!(
            "Assay firewall: {why}; nothing was passed on ({})",
            code::FWL040
        ),
        &[code::FWL040],
        &id.0,
    )
}

/// Scans a streamed response in a task and feeds the caller what it releases.
fn stream_body(
    fw: Arc<Firewall>,
    id: RequestId,
    endpoint: Endpoint,
    plan: RequestPlan,
    mut upstream: Body,
    before_upstream: Duration,
) -> Body {
    let (tx, body) = crate::body::channel(32);
    tokio::spawn(async move {
        let mut spent = before_upstream;
        let mut sc = StreamScanner::new(
            endpoint,
            OutputScan::new(&fw.scanners, plan.canary.as_deref()).with_prompt(plan.prompt.as_ref()),
            &plan.vault,
        );
        loop {
            let frame = upstream.frame().await;
            let t = Instant::now();
            let out = match frame {
                Some(Ok(f)) => match f.into_data() {
                    Ok(d) => sc.feed(&d),
                    Err(_) => Vec::new(),
                },
                Some(Err(_)) => sc.fail(),
                None => sc.finish(),
            };
            spent += t.elapsed();
            if !out.is_empty() && tx.send(out.into()).await.is_err() {
                break; // The caller went away.
            }
            if !sc.is_open() {
                break;
            }
        }
        let rv = sc.out.verdict();
        if sc.state == stream::State::Failed {
            fw.metrics.upstream_error("unparseable");
        }
        fw.record(
            &id,
            endpoint,
            Direction::Response,
            rv,
            true,
            Some(200),
            &sc.out.findings,
        );
        fw.metrics.overhead.observe(spent);
        fw.metrics
            .request(endpoint.name(), plan.verdict.max(rv).as_str());
    });
    body
}

impl Firewall {
    /// One audit line and the per-rule counters for one decision.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record(
        &self,
        id: &RequestId,
        endpoint: Endpoint,
        direction: Direction,
        verdict: Action,
        stream: bool,
        upstream_status: Option<u16>,
        findings: &[(String, Finding)],
    ) {
        let dir = match direction {
            Direction::Request => "request",
            Direction::Response => "response",
        };
        for (_, f) in findings {
            self.metrics.finding(f.rule, f.action.as_str(), dir);
        }
        self.audit.record(&audit::Record {
            ts_ms: audit::now_ms(),
            request_id: &id.0,
            endpoint: endpoint.name(),
            direction,
            verdict,
            stream,
            upstream_status,
            findings: audit::findings(findings),
        });
    }
}
