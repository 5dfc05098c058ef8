//! Chat, platform-neutral: the command language, the message model, rendering, the one
//! platform interface and the bot's conversation. Each platform (`slack`, `discord`) only
//! translates.
//!
//! - `command` parses `/vault-triage …`; `message` is the neutral model and the button
//!   encoding; `render` turns reports and approval requests into messages (all pure).
//! - `platform` is the interface every platform implements: [`ChatPlatform`] (post, follow
//!   up, thread, update, ephemeral) and [`PlatformRuntime`] (routes, voice, stop).
//! - `conversation` answers commands and clicks through a `&dyn ChatPlatform`, on top of the
//!   services (`crate::services`).
//!
//! A new platform is a folder here, a variant of [`crate::config::Platform`], and an arm in
//! [`start_platforms`].

pub mod cards;
pub mod command;
pub mod conversation;
pub mod discord;
pub mod fleet;
pub mod message;
pub mod platform;
pub mod render;
pub mod slack;

use std::sync::Arc;

use anyhow::Context as _;

pub use conversation::ChatBot;
pub use platform::{ChatError, ChatPlatform, Origin, PlatformRuntime};

use crate::config::{ChatArgs, Platform};

/// Starts every platform `settings` configures, in [`Platform::ALL`] order.
/// Checks the chat settings as [`start_platforms`] will use them, without starting anything:
/// `serve` says what is wrong before it says it serves.
pub fn check_settings(settings: &ChatArgs) -> anyhow::Result<()> {
    if let Some(slack) = settings.slack() {
        anyhow::ensure!(
            slack.bot_token.is_some(),
            "SLACK_BOT_TOKEN is needed to post to Slack (SLACK_SIGNING_SECRET or SLACK_APP_TOKEN is set)"
        );
    }
    if let Some(discord) = settings.discord() {
        anyhow::ensure!(
            discord.bot_token.is_some(),
            "DISCORD_BOT_TOKEN is needed: it edits answers, starts threads and posts approvals (DISCORD_PUBLIC_KEY is set)"
        );
        if let Some(key) = &discord.public_key {
            discord::verify::RequestVerifier::from_hex(key)?;
        }
    }
    Ok(())
}

pub async fn start_platforms(
    bot: &Arc<ChatBot>,
    settings: &ChatArgs,
) -> anyhow::Result<Vec<Box<dyn PlatformRuntime>>> {
    let mut running: Vec<Box<dyn PlatformRuntime>> = Vec::new();
    for platform in Platform::ALL {
        match platform {
            Platform::Slack => {
                if let Some(slack) = settings.slack() {
                    let rt = slack::SlackRuntime::start(bot.clone(), slack)
                        .await
                        .context("starting Slack")?;
                    running.push(Box::new(rt));
                }
            }
            Platform::Discord => {
                if let Some(discord) = settings.discord() {
                    let rt = discord::DiscordRuntime::start(bot.clone(), discord)
                        .await
                        .context("starting Discord")?;
                    running.push(Box::new(rt));
                }
            }
        }
    }
    Ok(running)
}
