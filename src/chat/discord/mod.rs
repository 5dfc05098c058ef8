//! Discord: the interactions endpoint (Ed25519) and the gateway, embeds and components, and
//! the REST sink.

use std::sync::Arc;

use axum::Router;

use crate::chat::bot::ChatBot;
use crate::config::DiscordSettings;

/// The running Discord integration.
pub struct DiscordRuntime {
    router: Option<Router>,
}

impl DiscordRuntime {
    /// Starts what `settings` enables: the interactions endpoint (public key) and the gateway.
    pub async fn start(
        bot: Arc<ChatBot>,
        settings: DiscordSettings,
    ) -> anyhow::Result<DiscordRuntime> {
        let _ = (bot, settings);
        Ok(DiscordRuntime { router: None })
    }

    /// The `/discord/interactions` route, when the endpoint transport is on.
    pub fn router(&self) -> Option<Router> {
        self.router.clone()
    }

    /// Posting into channels (alert incidents), when a bot token is set.
    pub fn poster(&self) -> Option<Arc<dyn crate::chat::poster::ChannelPoster>> {
        None
    }
}

/// `vault-triage commands register --discord`.
pub async fn register_commands(
    settings: &DiscordSettings,
    guild: Option<&str>,
) -> anyhow::Result<String> {
    let _ = (settings, guild);
    anyhow::bail!("Discord command registration is not built yet")
}
