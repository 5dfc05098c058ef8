//! Chat, platform-neutral: the command language and the messages the bot posts.
//!
//! `command` parses `/vault-triage …` (pure, shared by Slack and Discord).

pub mod command;
