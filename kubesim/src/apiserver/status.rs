//! Kubernetes `Status` error bodies, the only error shape the fake apiserver answers with.

use crate::http::{Body, json_response};
use http::{Response, StatusCode};
use serde_json::json;

/// A `Status` failure: `reason` is the Kubernetes reason (`NotFound`, `BadRequest`, ...).
pub fn status(code: StatusCode, reason: &str, message: &str) -> Response<Body> {
    json_response(code, &status_body(code, reason, message, None))
}

/// The `Status` object itself; `details` carries `{name, group, kind}` when known.
pub fn status_body(
    code: StatusCode,
    reason: &str,
    message: &str,
    details: Option<serde_json::Value>,
) -> serde_json::Value {
    let mut body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code.as_u16(),
    });
    if let Some(details) = details {
        body["details"] = details;
    }
    body
}

/// `404` for a named object: `<resource> "<name>" not found` (group prefix for non-core).
pub fn not_found(resource: &str, group: &str, name: &str) -> Response<Body> {
    let qualified = if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    };
    let message = format!("{qualified} \"{name}\" not found");
    let details = json!({"name": name, "group": group, "kind": resource});
    json_response(
        StatusCode::NOT_FOUND,
        &status_body(StatusCode::NOT_FOUND, "NotFound", &message, Some(details)),
    )
}

pub fn bad_request(message: &str) -> Response<Body> {
    status(StatusCode::BAD_REQUEST, "BadRequest", message)
}

pub fn unauthorized() -> Response<Body> {
    status(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized")
}

pub fn forbidden(message: &str) -> Response<Body> {
    status(StatusCode::FORBIDDEN, "Forbidden", message)
}

pub fn method_not_allowed(message: &str) -> Response<Body> {
    status(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", message)
}

/// `410 Gone` with reason `Expired` (too old resource version or continue token).
pub fn expired(message: &str) -> Response<Body> {
    status(StatusCode::GONE, "Expired", message)
}
