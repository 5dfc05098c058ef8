//! One interaction in, one immediate answer out, and the work behind it, for both transports:
//! the HTTP endpoint answers in its response body, the gateway with a REST callback. Nothing
//! here waits on Vault or Kubernetes; the work runs on a task of its own.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::{Value, json};
use serenity::model::application::Interaction;

use super::interaction::{COMMAND_NAME, chat_command, click_origin, command_origin};
use super::payload;
use super::rest::DiscordChat;
use crate::chat::ChatBot;
use crate::chat::command::{ChatCommand, help_text};
use crate::chat::message::ButtonAction;

/// Work to run once the answer is on its way.
pub type Work = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// The immediate answer to an interaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ack {
    /// PING → PONG (type 1).
    Pong,
    /// A command: "thinking…", visible to the channel (type 5); the answer edits it.
    Defer,
    /// A click: acknowledged without changing the message (type 6).
    DeferUpdate,
    /// A short answer only the person who acted sees (type 4, flags 64).
    Ephemeral(String),
    /// An interaction this bot does not take (autocomplete, modals).
    Unsupported,
}

impl Ack {
    /// The interaction response body.
    pub fn json(&self) -> Option<Value> {
        match self {
            Ack::Pong => Some(json!({ "type": 1 })),
            Ack::Defer => Some(json!({ "type": 5 })),
            Ack::DeferUpdate => Some(json!({ "type": 6 })),
            Ack::Ephemeral(text) => Some(json!({ "type": 4, "data": payload::ephemeral(text) })),
            Ack::Unsupported => None,
        }
    }
}

/// The conversation and the REST voice it answers through.
pub struct Edge {
    pub bot: Arc<ChatBot>,
    pub chat: Arc<DiscordChat>,
}

impl Edge {
    /// Decides the answer; returns it with the work to start once it is sent.
    pub fn accept(&self, interaction: Interaction) -> (Ack, Option<Work>) {
        let http = self.chat.http();
        if http.application_id().is_none() {
            http.set_application_id(interaction.application_id());
        }
        match interaction {
            Interaction::Ping(_) => (Ack::Pong, None),
            Interaction::Command(cmd) => {
                if cmd.data.name != COMMAND_NAME {
                    return (
                        Ack::Ephemeral(format!("I only know `/{COMMAND_NAME}`.")),
                        None,
                    );
                }
                let command = chat_command(&cmd.data);
                // Help is answered at once and only to the caller, as on Slack.
                if let ChatCommand::Help { note } = &command {
                    return (Ack::Ephemeral(help_text(note.as_deref())), None);
                }
                let origin = command_origin(&cmd);
                tracing::info!(actor = %origin.actor.platform_key(), channel = %origin.channel, ?command, "Discord command");
                let (bot, chat) = (self.bot.clone(), self.chat.clone());
                let work: Work = Box::pin(async move {
                    bot.handle_command(&*chat, origin, command).await;
                });
                (Ack::Defer, Some(work))
            }
            Interaction::Component(click) => {
                let Some(action) = ButtonAction::decode(&click.data.custom_id) else {
                    return (
                        Ack::Ephemeral(
                            "I do not know this button. Run `/vault-triage` for a fresh summary."
                                .into(),
                        ),
                        None,
                    );
                };
                let (origin, clicked) = click_origin(&click);
                if let Some(title) = click
                    .message
                    .embeds
                    .first()
                    .and_then(|e| e.title.as_deref())
                {
                    self.chat.remember_title(&clicked.id, title);
                }
                if let Some(thread) = &click.message.thread {
                    self.chat
                        .remember_thread(&clicked.id, &thread.id.to_string());
                }
                tracing::info!(actor = %origin.actor.platform_key(), action = %click.data.custom_id, "Discord click");
                let (bot, chat) = (self.bot.clone(), self.chat.clone());
                let work: Work = Box::pin(async move {
                    bot.handle_click(&*chat, origin, clicked, action).await;
                });
                (Ack::DeferUpdate, Some(work))
            }
            _ => (Ack::Unsupported, None),
        }
    }
}
