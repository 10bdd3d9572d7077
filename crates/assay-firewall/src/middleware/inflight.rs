//! Counts requests in flight (the `assay_firewall_in_flight` gauge), including streams
//! until their response headers are sent.

use crate::Firewall;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub async fn layer(State(fw): State<Arc<Firewall>>, req: Request, next: Next) -> Response {
    fw.metrics.in_flight.fetch_add(1, Ordering::Relaxed);
    let res = next.run(req).await;
    fw.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
    res
}
