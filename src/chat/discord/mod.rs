//! Discord: the interactions endpoint (Ed25519) and the gateway, embeds and components, and
//! the REST voice.
//!
//! Both transports share one path: `verify` (endpoint only) → `interaction` (what was asked,
//! by whom, where) → `edge` (the immediate answer and the work behind it) → the neutral
//! [`ChatBot`], which speaks through `rest::DiscordChat`; `payload` shapes every message
//! body. A command is deferred (type 5) and its answer edits `@original`; a click is
//! acknowledged (type 6); approval cards and progress live in a thread started from the
//! summary.

mod edge;
mod endpoint;
mod gateway;
pub mod interaction;
pub mod payload;
pub mod rest;
pub mod verify;

use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use serenity::model::id::GuildId;

use futures::future::BoxFuture;

use crate::chat::ChatBot;
use crate::chat::platform::{ChatPlatform, PlatformRuntime};
use crate::config::{DiscordSettings, Platform};

pub use edge::{Ack, Edge};
pub use endpoint::{MAX_BODY, PATH};
pub use payload::render_for_demo;
pub use rest::DiscordChat;

/// The running Discord integration.
pub struct DiscordRuntime {
    router: Option<Router>,
    gateway: Option<gateway::Gateway>,
    chat: Arc<DiscordChat>,
}

impl DiscordRuntime {
    /// Starts what `settings` enables: the interactions endpoint (public key) and the gateway.
    pub async fn start(
        bot: Arc<ChatBot>,
        settings: DiscordSettings,
    ) -> anyhow::Result<DiscordRuntime> {
        let token = settings.bot_token.as_ref().context(
            "DISCORD_BOT_TOKEN is needed: it edits answers, starts threads and posts approvals",
        )?;
        let app = settings.application_id.as_deref();
        let api = settings.api_url.as_deref();
        let http = rest::http_client(token, app, api)?;
        let chat = Arc::new(DiscordChat::new(Arc::new(http)));
        let edge = Arc::new(Edge {
            bot,
            chat: chat.clone(),
        });
        let router = match &settings.public_key {
            Some(key) => Some(endpoint::router(
                verify::RequestVerifier::from_hex(key)?,
                edge.clone(),
            )),
            None => None,
        };
        let gateway = if settings.gateway {
            let http = rest::http_client(token, app, api)?;
            Some(
                gateway::start(http, edge)
                    .await
                    .context("starting the Discord gateway")?,
            )
        } else {
            None
        };
        if router.is_none() && gateway.is_none() {
            tracing::warn!(
                "Discord is configured with neither DISCORD_PUBLIC_KEY nor the gateway: no interactions will arrive"
            );
        }
        tracing::info!(
            endpoint = router.is_some(),
            gateway = gateway.is_some(),
            proxied = api.is_some(),
            "Discord started"
        );
        Ok(DiscordRuntime {
            router,
            gateway,
            chat,
        })
    }

    /// Whether the gateway runs.
    pub fn has_gateway(&self) -> bool {
        self.gateway.is_some()
    }
}

impl PlatformRuntime for DiscordRuntime {
    fn platform(&self) -> Platform {
        Platform::Discord
    }

    /// The `/discord/interactions` route, when the endpoint transport is on.
    fn routes(&self) -> Option<Router> {
        self.router.clone()
    }

    fn chat(&self) -> Arc<dyn ChatPlatform> {
        self.chat.clone()
    }

    /// Closes the gateway connection, if any, and waits for it to end.
    fn stop(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            if let Some(g) = self.gateway {
                g.shards.shutdown_all().await;
                let _ = g.task.await;
            }
        })
    }
}

/// The command definitions in `commands/`, embedded.
pub const COMMANDS_JSON: &str = include_str!("../../../commands/discord-commands.json");

/// The command definitions of `commands/discord-commands.json`.
pub fn command_definitions() -> anyhow::Result<serde_json::Value> {
    let defs: serde_json::Value = serde_json::from_str(COMMANDS_JSON)
        .context("commands/discord-commands.json is not JSON")?;
    anyhow::ensure!(
        defs.as_array().is_some_and(|a| !a.is_empty()),
        "commands/discord-commands.json must be a non-empty array of commands"
    );
    Ok(defs)
}

/// `vault-triage commands register --discord`: replaces the application's commands, globally
/// or in one guild (guild commands update at once; global ones can take a while).
pub async fn register_commands(
    settings: &DiscordSettings,
    guild: Option<&str>,
) -> anyhow::Result<String> {
    let token = settings
        .bot_token
        .as_ref()
        .context("DISCORD_BOT_TOKEN is needed to register commands")?;
    let app = settings
        .application_id
        .as_deref()
        .context("DISCORD_APPLICATION_ID is needed to register commands")?;
    let http = rest::http_client(token, Some(app), settings.api_url.as_deref())?;
    let defs = command_definitions()?;
    let registered = match guild {
        Some(g) => {
            let id: std::num::NonZeroU64 = g
                .trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("DISCORD_GUILD_ID is not a Discord id: {g:?}"))?;
            http.create_guild_commands(GuildId::from(id), &defs).await
        }
        None => http.create_global_commands(&defs).await,
    }
    .map_err(|e| rest::chat_error("register commands", e))
    .context("registering the Discord commands")?;
    let names: Vec<String> = registered.iter().map(|c| format!("/{}", c.name)).collect();
    Ok(format!(
        "Registered {} for application {app} {}",
        names.join(", "),
        match guild {
            Some(g) => format!("in guild {g} (available now)"),
            None => "globally (may take up to an hour to appear)".to_string(),
        }
    ))
}
