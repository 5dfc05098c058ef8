//! `POST /discord/interactions`: verify (Ed25519 and the replay window), parse, answer, and
//! leave the work to a task. Refused requests get 401 and change nothing; bodies that are
//! not interactions get 400.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serenity::model::application::Interaction;

use super::edge::Edge;
use super::verify::{RequestVerifier, SIGNATURE_HEADER, TIMESTAMP_HEADER, unix_now};

/// The route.
pub const PATH: &str = "/discord/interactions";
/// Largest request body taken (a click carries the whole clicked message).
pub const MAX_BODY: usize = 256 * 1024;

struct Endpoint {
    verifier: RequestVerifier,
    edge: Arc<Edge>,
}

/// The interactions route.
pub fn router(verifier: RequestVerifier, edge: Arc<Edge>) -> Router {
    Router::new()
        .route(
            PATH,
            post(handle_interaction).layer(DefaultBodyLimit::max(MAX_BODY)),
        )
        .with_state(Arc::new(Endpoint { verifier, edge }))
}

async fn handle_interaction(
    State(endpoint): State<Arc<Endpoint>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Err(why) = endpoint.verifier.verify(
        header(SIGNATURE_HEADER),
        header(TIMESTAMP_HEADER),
        &body,
        unix_now(),
    ) {
        tracing::info!(reason = %why, "Discord interaction refused");
        return (StatusCode::UNAUTHORIZED, "invalid request signature\n").into_response();
    }
    let interaction: Interaction = match serde_json::from_slice(&body) {
        Ok(i) => i,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("the body is not a Discord interaction: {e}\n"),
            )
                .into_response();
        }
    };
    let (ack, work) = endpoint.edge.accept(interaction);
    let Some(answer) = ack.json() else {
        return (
            StatusCode::BAD_REQUEST,
            "this interaction type is not supported\n",
        )
            .into_response();
    };
    if let Some(work) = work {
        endpoint.edge.bot.services().work.spawn(work);
    }
    axum::Json(answer).into_response()
}
