//! Slack's HTTP transport: `POST /slack/commands`, `/slack/interactions` and `/slack/events`.
//!
//! Each handler reads the raw body (at most [`MAX_BODY`], else 413), verifies its v0 signature
//! (401 on any failure, before anything is parsed), parses it (400 with a sentence when it does
//! not), and answers at once; the work runs behind the [`Edge`].

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::Edge;
use super::payload::{self, Event, InteractionKind};
use super::verify::{self, SignatureError};
use crate::config::Secret;

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

#[derive(Clone)]
struct Http {
    edge: Arc<Edge>,
    secret: Secret,
}

/// The `/slack/*` routes.
pub fn router(edge: Arc<Edge>, signing_secret: Secret) -> Router {
    Router::new()
        .route("/slack/commands", post(handle_command))
        .route("/slack/interactions", post(handle_interaction))
        .route("/slack/events", post(handle_event))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(Http {
            edge,
            secret: signing_secret,
        })
}

/// `None` when the request is signed by Slack; else the 401 to answer.
fn refusal(state: &Http, headers: &HeaderMap, body: &[u8]) -> Option<Response> {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let now = chrono::Utc::now().timestamp();
    verify::verify(
        state.secret.expose().as_bytes(),
        header(verify::TIMESTAMP_HEADER),
        header(verify::SIGNATURE_HEADER),
        body,
        now,
    )
    .err()
    .map(|e: SignatureError| {
        tracing::warn!(reason = %e, "refused a Slack request with a bad signature");
        (StatusCode::UNAUTHORIZED, format!("Unauthorized: {e}.\n")).into_response()
    })
}

fn bad_request(what: &str, e: impl std::fmt::Display) -> Response {
    tracing::warn!(error = %e, "refused a Slack {what} that does not parse");
    (StatusCode::BAD_REQUEST, format!("Bad request: {e}.\n")).into_response()
}

async fn handle_command(State(state): State<Http>, headers: HeaderMap, body: Bytes) -> Response {
    // Slack checks the endpoint's certificate with `ssl_check=1` and wants a 200; the request
    // asks for nothing and changes nothing, so it is answered signed or not.
    if payload::is_ssl_check(&body) {
        return StatusCode::OK.into_response();
    }
    if let Some(r) = refusal(&state, &headers, &body) {
        return r;
    }
    match payload::command_form(&body) {
        Ok(cmd) => axum::Json(state.edge.accept_command(&cmd)).into_response(),
        Err(e) => bad_request("slash command", e),
    }
}

async fn handle_interaction(
    State(state): State<Http>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = refusal(&state, &headers, &body) {
        return r;
    }
    match payload::interaction_form(&body) {
        Ok(InteractionKind::Click(click)) => {
            state.edge.accept_click(*click);
            StatusCode::OK.into_response()
        }
        Ok(InteractionKind::Ignored(what)) => {
            tracing::debug!(what, "Slack interaction acknowledged and ignored");
            StatusCode::OK.into_response()
        }
        Err(e) => bad_request("interaction", e),
    }
}

async fn handle_event(State(state): State<Http>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(r) = refusal(&state, &headers, &body) {
        return r;
    }
    match payload::event_json(&body) {
        Ok(Event::UrlVerification { challenge }) => {
            axum::Json(serde_json::json!({ "challenge": challenge })).into_response()
        }
        Ok(Event::Other(kind)) => {
            tracing::debug!(kind, "Slack event acknowledged");
            StatusCode::OK.into_response()
        }
        Err(e) => bad_request("event", e),
    }
}
