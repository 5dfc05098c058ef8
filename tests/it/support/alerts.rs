//! An alert intake against the lab, with a recording chat platform, served on loopback.

use std::sync::Arc;

use vault_triage::alerts::service::AlertService;
use vault_triage::chat::ChatPlatform;
use vault_triage::config::FileConfig;
use vault_triage::lab::{Lab, LabFiles};
use vault_triage::services::Services;

use super::recording::RecordingChat;

/// Builds the services from `cfg` (live state loaded) through the composition root, and an
/// alert service posting to a recording platform.
pub async fn alert_service(
    lab: &Lab,
    files: &LabFiles,
    cfg: FileConfig,
) -> (Arc<Services>, Arc<AlertService>, Arc<RecordingChat>) {
    let (services, _) = vault_triage::app::build_services(&super::connection(lab, files), cfg)
        .await
        .expect("services");
    let chat = Arc::new(RecordingChat::default());
    let service = AlertService::new(
        services.clone(),
        vec![chat.clone() as Arc<dyn ChatPlatform>],
        services
            .store
            .live_incidents(
                chrono::Utc::now(),
                services.config.state.retention,
                vault_triage::alerts::incident::Incident::from_json,
            )
            .await
            .expect("the live incidents")
            .0,
    );
    (services, service, chat)
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
