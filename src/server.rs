//! The bot's HTTP server (`serve`): liveness and readiness today; the chat and alert
//! endpoints of design §5 mount here.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::config::FileConfig;
use crate::probes::Probes;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    #[allow(dead_code)] // read by the chat and alert handlers
    config: FileConfig,
    #[allow(dead_code)]
    probes: Probes,
}

impl AppState {
    pub fn new(config: FileConfig, probes: Probes) -> Self {
        Self {
            inner: Arc::new(Inner { config, probes }),
        }
    }
}

/// The router of every endpoint.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(handle_healthz))
        .route("/readyz", get(handle_readyz))
        .with_state(state)
}

async fn handle_healthz() -> &'static str {
    "ok\n"
}

async fn handle_readyz(State(_state): State<AppState>) -> (StatusCode, &'static str) {
    (StatusCode::OK, "ready\n")
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}
