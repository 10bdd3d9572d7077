//! Gives every request an id (`x-request-id` on the response, in errors and in the audit
//! log). A caller-supplied id is not trusted: it would let a caller forge audit lines.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use std::hash::{BuildHasher, Hasher};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Clone, Debug)]
pub struct RequestId(pub String);

static PREFIX: LazyLock<u32> = LazyLock::new(|| {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u8(0);
    h.finish() as u32
});
static COUNTER: AtomicU64 = AtomicU64::new(1);

pub fn next_id() -> RequestId {
    RequestId(format!(
        "fw-{:08x}-{:x}",
        *PREFIX,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

pub async fn layer(mut req: Request, next: Next) -> Response {
    let id = next_id();
    let header = HeaderValue::from_str(&id.0).ok();
    req.extensions_mut().insert(id);
    let mut res = next.run(req).await;
    if let Some(h) = header {
        res.headers_mut().insert("x-request-id", h);
    }
    res
}
