//! The bot's HTTP server (`serve`): liveness and readiness today; the chat and alert
//! endpoints of design §5 mount here.
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
            .route("/readyz", get(handle_readyz)),
        Router::merge,
    )
}

async fn handle_healthz() -> &'static str {
    "ok\n"
}

async fn handle_readyz() -> &'static str {
    "ready\n"
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
