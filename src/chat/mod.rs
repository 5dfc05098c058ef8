//! Chat, platform-neutral: the command language, the message model, rendering, and the bot's
//! conversation logic. Slack and Discord (`slack`, `discord`) only translate.
//!
//! `command` parses `/vault-triage …`; `message` is the neutral model and the button
//! encoding; `render` turns reports and approval requests into messages; `bot` handles
//! commands and clicks through a platform's [`bot::Sink`].

pub mod bot;
pub mod command;
pub mod discord;
pub mod message;
pub mod poster;
pub mod render;
pub mod slack;
