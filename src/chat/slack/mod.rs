//! Slack: the HTTP endpoints (v0 signatures) and Socket Mode, Block Kit rendering, and the
//! Web API voice with rate-limit handling.
//!
//! - [`verify`]: request signatures, pure.
//! - [`payload`]: slash commands, clicks and events parsed into what the bot needs, pure.
//! - [`blocks`]: the neutral message as Block Kit and Web API bodies, pure.
//! - [`api`]: the Web API through slack-morphism's client (429, 5xx, per-channel pacing) and
//!   [`SlackChat`].
//! - [`http`]: `POST /slack/commands`, `/slack/interactions`, `/slack/events` (our own
//!   signature check: slack-morphism's has no injectable clock and answers 400, the contract
//!   says 401).
//! - [`socket`]: Socket Mode through slack-morphism's listener.
//!
//! Both transports hand what they parsed to one [`Edge`], which answers at once and runs the
//! work on a task of its own, so Slack gets its acknowledgement well inside 3 s.

pub mod api;
pub mod blocks;
pub mod http;
pub mod payload;
pub mod socket;
pub mod verify;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::Router;
use dashmap::DashMap;
use serde_json::{Value, json};

pub use api::{SlackApi, SlackChat};
pub use blocks::{blocks, render_for_demo};

use futures::future::BoxFuture;

use crate::chat::ChatBot;
use crate::chat::command::{self, ChatCommand};
use crate::chat::platform::{ChatPlatform, PlatformRuntime};
use crate::config::{Platform, SlackSettings};
use payload::{Click, SlashCommand};

/// The Slack app manifest in `commands/` for the HTTP endpoints…
pub const MANIFEST: &str = include_str!("../../../commands/slack-app-manifest.json");
/// …and for Socket Mode (no public endpoint).
pub const MANIFEST_SOCKET_MODE: &str =
    include_str!("../../../commands/slack-app-manifest.socket-mode.json");

/// The acknowledgement of a command whose answer comes later.
pub const TRIAGING: &str = "🔎 Triaging…";

/// How long a command's `trigger_id` is remembered, to recognise Slack's retries of it.
pub const RETRY_MEMORY: Duration = Duration::from_secs(600);
/// Most `trigger_id`s remembered.
const MAX_REMEMBERED: usize = 10_000;

/// Where verified, parsed Slack input goes: the answer now, the work on its own task.
pub struct Edge {
    bot: Arc<ChatBot>,
    chat: Arc<SlackChat>,
    /// Commands already taken, by `trigger_id`, with when.
    taken: DashMap<String, Instant>,
}

impl Edge {
    pub fn new(bot: Arc<ChatBot>, chat: Arc<SlackChat>) -> Self {
        Self {
            bot,
            chat,
            taken: DashMap::new(),
        }
    }

    /// Whether `cmd` was taken before (Slack retries a command it thinks went unanswered,
    /// with the same `trigger_id`); remembers it otherwise.
    fn seen_before(&self, cmd: &SlashCommand) -> bool {
        if cmd.trigger_id.is_empty() {
            return false;
        }
        let now = Instant::now();
        if self.taken.len() >= MAX_REMEMBERED {
            self.taken
                .retain(|_, at| now.duration_since(*at) < RETRY_MEMORY);
        }
        match self.taken.entry(cmd.trigger_id.clone()) {
            dashmap::Entry::Occupied(o) => now.duration_since(*o.get()) < RETRY_MEMORY,
            dashmap::Entry::Vacant(v) => {
                v.insert(now);
                false
            }
        }
    }

    /// Answers a slash command at once: help directly (only to the caller), anything else
    /// "Triaging…" in the channel with the work spawned. A retry of a command already taken
    /// gets the same answer and starts nothing.
    pub fn accept_command(&self, cmd: &SlashCommand) -> Value {
        let parsed = command::parse(&cmd.text);
        let ack = command_ack(&parsed);
        if self.seen_before(cmd) {
            tracing::info!(user = %cmd.user_id, channel = %cmd.channel_id, "a Slack retry of a command already taken; nothing more runs");
            return ack;
        }
        match parsed {
            ChatCommand::Help { .. } => {}
            c @ (ChatCommand::Triage
            | ChatCommand::Status
            | ChatCommand::Role(_)
            | ChatCommand::Cluster(_)
            | ChatCommand::Reviewer) => {
                let (bot, chat, origin) = (self.bot.clone(), self.chat.clone(), cmd.origin());
                tracing::info!(user = %origin.actor.user_id, channel = %origin.channel, command = ?c, "Slack command");
                self.bot
                    .services()
                    .work
                    .spawn(async move { bot.handle_command(&*chat, origin, c).await });
            }
        }
        ack
    }

    /// Runs a click on its own task.
    pub fn accept_click(&self, click: Click) {
        let (bot, chat) = (self.bot.clone(), self.chat.clone());
        tracing::info!(user = %click.origin.actor.user_id, channel = %click.origin.channel, action = %click.action.encode(), "Slack click");
        self.bot.services().work.spawn(async move {
            bot.handle_click(&*chat, click.origin, click.clicked, click.action)
                .await
        });
    }
}

/// The immediate answer to a parsed command.
pub fn command_ack(c: &ChatCommand) -> Value {
    match c {
        ChatCommand::Help { note } => json!({
            "response_type": "ephemeral",
            "text": command::help_text(note.as_deref()),
        }),
        ChatCommand::Role(role) => json!({
            "response_type": "in_channel",
            "text": format!("🔎 Triaging role `{role}`…"),
        }),
        ChatCommand::Cluster(cluster) => json!({
            "response_type": "in_channel",
            "text": format!("🔎 Triaging cluster `{cluster}`…"),
        }),
        ChatCommand::Triage | ChatCommand::Status | ChatCommand::Reviewer => json!({
            "response_type": "in_channel",
            "text": TRIAGING,
        }),
    }
}

/// The running Slack integration.
pub struct SlackRuntime {
    router: Option<Router>,
    socket: Option<socket::SocketMode>,
    chat: Arc<SlackChat>,
}

impl SlackRuntime {
    /// Starts what `settings` enables: HTTP endpoints (signing secret) and Socket Mode (app token).
    pub async fn start(bot: Arc<ChatBot>, settings: SlackSettings) -> anyhow::Result<SlackRuntime> {
        let token = settings
            .bot_token
            .clone()
            .context("SLACK_BOT_TOKEN is needed to post to Slack")?;
        let api = Arc::new(SlackApi::new(&settings.api_url, &token));
        let chat = Arc::new(SlackChat::new(api.clone()));
        let edge = Arc::new(Edge::new(bot, chat.clone()));
        let router = settings
            .signing_secret
            .clone()
            .map(|secret| http::router(edge.clone(), secret));
        let socket = match &settings.app_token {
            Some(app_token) => Some(
                socket::SocketMode::start(
                    api.client(),
                    edge.clone(),
                    app_token,
                    settings.socket_connections,
                )
                .await
                .context("starting Slack Socket Mode")?,
            ),
            None => None,
        };
        if router.is_none() && socket.is_none() {
            tracing::warn!(
                "Slack can post but receives nothing: set SLACK_SIGNING_SECRET (HTTP) or SLACK_APP_TOKEN (Socket Mode)"
            );
        }
        tracing::info!(
            http = router.is_some(),
            socket_mode = socket.is_some(),
            "Slack started"
        );
        Ok(SlackRuntime {
            router,
            socket,
            chat,
        })
    }
}

impl PlatformRuntime for SlackRuntime {
    fn platform(&self) -> Platform {
        Platform::Slack
    }

    /// The `/slack/*` routes, when the HTTP transport is on.
    fn routes(&self) -> Option<Router> {
        self.router.clone()
    }

    fn chat(&self) -> Arc<dyn ChatPlatform> {
        self.chat.clone()
    }

    /// Closes the Socket Mode connections.
    fn stop(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            if let Some(s) = self.socket {
                s.stop().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_acknowledged_in_channel_and_help_only_to_the_caller() {
        assert_eq!(
            command_ack(&ChatCommand::Triage),
            json!({"response_type": "in_channel", "text": "🔎 Triaging…"})
        );
        assert_eq!(command_ack(&ChatCommand::Status)["text"], TRIAGING);
        let help = command_ack(&command::parse("frobnicate"));
        assert_eq!(help["response_type"], "ephemeral");
        assert!(
            help["text"]
                .as_str()
                .unwrap()
                .contains("/vault-triage role NAME")
        );
    }
}
