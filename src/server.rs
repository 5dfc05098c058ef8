//! The bot's HTTP server (`serve`): liveness, readiness and `/metrics`, plus the routes of
//! the chat platforms and the alert intake (design §5).
//!
//! Readiness does not depend on Vault or Kubernetes: when they are down the bot must still
//! answer chat and say so.

use std::future::Future;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;

/// The router of every endpoint: liveness, readiness, and the platforms' routes.
pub fn router(platforms: Vec<Router>) -> Router {
    platforms.into_iter().fold(
        Router::new()
            .route("/healthz", get(handle_healthz))
            .route("/readyz", get(handle_readyz))
            .route("/metrics", get(handle_metrics)),
        Router::merge,
    )
}

async fn handle_healthz() -> &'static str {
    "ok\n"
}

async fn handle_readyz() -> &'static str {
    "ready\n"
}

async fn handle_metrics() -> ([(axum::http::HeaderName, &'static str); 1], String) {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(),
    )
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    platforms: Vec<Router>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    axum::serve(listener, router(platforms))
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}
