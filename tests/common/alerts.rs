//! An alert intake against the lab, with a recording chat platform, served on loopback.

use std::sync::Arc;

use vault_triage::alerts::service::AlertService;
use vault_triage::app::Context;
use vault_triage::chat::bot::ChatBot;
use vault_triage::chat::poster::ChannelPoster;
use vault_triage::config::FileConfig;
use vault_triage::lab::{Lab, LabFiles};

use super::chat::RecordingPoster;

/// Builds the bot's context from `cfg` (journal replayed) and an alert service posting to a
/// recording platform.
pub async fn alert_service(
    lab: &Lab,
    files: &LabFiles,
    cfg: FileConfig,
) -> (Arc<Context>, Arc<AlertService>, Arc<RecordingPoster>) {
    let (ctx, replayed) =
        vault_triage::app::build_context_with_replay(&super::connection(lab, files), cfg)
            .await
            .expect("context");
    let ctx = Arc::new(ctx);
    let poster = Arc::new(RecordingPoster::default());
    let service = AlertService::new(
        Arc::new(ChatBot::new(ctx.clone())),
        ctx.config.alerts.clone(),
        ctx.config.chat.clone(),
        vec![poster.clone() as Arc<dyn ChannelPoster>],
        &replayed,
    );
    (ctx, service, poster)
}

/// Serves `router` on 127.0.0.1:0; returns its base URL and the server task.
pub async fn serve(router: axum::Router) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        axum::serve(listener, router).await.expect("serve");
    });
    (addr, server)
}
