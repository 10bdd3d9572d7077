//! Errors in the OpenAI shape, so SDKs raise their usual exceptions
//! (`BadRequestError` for a blocked request).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// HTTP 400 `content_blocked` naming the rules that fired.
pub fn blocked(message: &str, param: Option<&str>, rules: &[&str], request_id: &str) -> Response {
    openai_error(
        StatusCode::BAD_REQUEST,
        message,
        "invalid_request_error",
        "content_blocked",
        param,
        rules,
        request_id,
    )
}

pub fn openai_error(
    status: StatusCode,
    message: &str,
    kind: &str,
    code: &str,
    param: Option<&str>,
    rules: &[&str],
    request_id: &str,
) -> Response {
    let body = json!({
        "error": {
            "message": message,
            "type": kind,
            "code": code,
            "param": param,
            "rules": rules,
            "request_id": request_id,
        }
    });
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// The upstream could not be reached or answered with something unusable: 502.
pub fn bad_gateway(message: &str, rules: &[&str], request_id: &str) -> Response {
    openai_error(
        StatusCode::BAD_GATEWAY,
        message,
        "upstream_error",
        "upstream_unavailable",
        None,
        rules,
        request_id,
    )
}
