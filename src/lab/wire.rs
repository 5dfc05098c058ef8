//! How the simulated servers write their answers: the Kubernetes API server's JSON and
//! `Status` bodies, and Vault's headers, error bodies and response envelope, byte for byte as
//! the real ones (facts §1, §5).

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::tokens::random_uuid;
use super::vault_state::VaultToken;

/// A JSON response the way the API server writes it (compact JSON plus a newline).
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    raw_json(status, format!("{body}\n"))
}

pub(crate) fn raw_json(status: StatusCode, body: String) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

pub(crate) fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// A `Status` failure object, with the API server's key order.
pub(crate) fn status_response(
    code: u16,
    reason: &str,
    message: &str,
    details: Option<Value>,
) -> Response {
    let details = details
        .map(|d| format!(",\"details\":{d}"))
        .unwrap_or_default();
    let body = format!(
        "{{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{{}},\"status\":\"Failure\",\"message\":{},\"reason\":{}{details},\"code\":{code}}}\n",
        q(message),
        q(reason)
    );
    raw_json(
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body,
    )
}

pub(crate) fn with_headers(status: StatusCode, body: String) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    h.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    resp
}

/// `{"errors":[...]}` plus a newline.
pub(crate) fn vault_error(status: StatusCode, errors: &[&str]) -> Response {
    with_headers(status, format!("{}\n", json!({"errors": errors})))
}

/// The generic response envelope, in Vault's key order.
pub(crate) fn envelope(data: &Value, auth: &Value) -> Response {
    let body = format!(
        "{{\"request_id\":\"{}\",\"lease_id\":\"\",\"renewable\":false,\"lease_duration\":0,\"data\":{data},\"wrap_info\":null,\"warnings\":null,\"auth\":{auth}}}\n",
        random_uuid()
    );
    with_headers(StatusCode::OK, body)
}

/// A response carrying an `auth` block for `token`.
pub(crate) fn auth_response(token: &VaultToken, orphan: bool) -> Response {
    let policies = json!(token.policies);
    let auth = json!({
        "client_token": token.id, "accessor": token.accessor,
        "policies": policies, "token_policies": policies,
        "metadata": token.meta.clone().unwrap_or(Value::Null),
        "lease_duration": token.ttl, "renewable": true,
        "entity_id": if orphan { random_uuid() } else { String::new() },
        "token_type": "service", "orphan": orphan,
        "mfa_requirement": null, "num_uses": 0
    });
    envelope(&Value::Null, &auth)
}
