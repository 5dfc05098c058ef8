//! The one chat-platform interface: what the bot does in a chat ([`ChatPlatform`]), and a
//! running platform as `serve` holds it ([`PlatformRuntime`]).
//!
//! Each platform implements both once, in its own folder (`slack/`, `discord/`). The
//! conversation, the alert intake and the server see only these traits, so a new platform is
//! one folder, one variant of [`Platform`] and one arm in [`super::start_platforms`]; the
//! compiler points at every other place that must decide something for it.

use futures::future::BoxFuture;

use super::message::{Message, MessageRef};
use crate::approval::Actor;
use crate::config::Platform;

/// A failed chat API call.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ChatError {
    /// The platform refused: `not_in_channel`, `channel_not_found`, `invalid_auth`, 403 …
    #[error("the chat platform refused: {0}")]
    Refused(String),
    /// No answer, or a server error after retries.
    #[error("the chat platform is unavailable: {0}")]
    Unavailable(String),
}

/// Where a command or click came from and how to answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub channel: String,
    /// The thread the command or click came from, if any.
    pub thread: Option<String>,
    /// The platform's reply handle: Slack `response_url`, Discord interaction token.
    pub reply: String,
    /// Who acted.
    pub actor: Actor,
}

/// What the bot does in a chat. Object-safe: the conversation and the alert intake hold
/// `&dyn ChatPlatform` / `Arc<dyn ChatPlatform>`.
pub trait ChatPlatform: Send + Sync {
    /// Which platform this is.
    fn platform(&self) -> Platform;

    /// Posts a new message in `channel` (an incident's root message).
    fn post<'a>(
        &'a self,
        channel: &'a str,
        msg: &'a Message,
    ) -> BoxFuture<'a, Result<MessageRef, ChatError>>;

    /// Delivers the answer to a command where it was acknowledged (Slack: the channel or
    /// thread it came from; Discord: the deferred response); returns where it lives.
    fn follow_up<'a>(
        &'a self,
        origin: &'a Origin,
        msg: &'a Message,
    ) -> BoxFuture<'a, Result<MessageRef, ChatError>>;

    /// The thread under `root`, started when the platform needs one (Discord); returns the
    /// thread's id.
    fn start_thread<'a>(&'a self, root: &'a MessageRef)
    -> BoxFuture<'a, Result<String, ChatError>>;

    /// Posts in the thread of `root`, starting it when needed.
    fn reply_in_thread<'a>(
        &'a self,
        root: &'a MessageRef,
        msg: &'a Message,
    ) -> BoxFuture<'a, Result<MessageRef, ChatError>>;

    /// Replaces a message's content.
    fn update<'a>(
        &'a self,
        target: &'a MessageRef,
        msg: &'a Message,
    ) -> BoxFuture<'a, Result<(), ChatError>>;

    /// Tells only the person who acted.
    fn ephemeral<'a>(
        &'a self,
        origin: &'a Origin,
        text: &'a str,
    ) -> BoxFuture<'a, Result<(), ChatError>>;

    /// Answers a command with a short pointer to an answer already in its channel. Where a
    /// follow-up is a new channel post (Slack), only the person sees it, so the channel keeps
    /// one answer; where the follow-up is the command's own deferred response (Discord), the
    /// pointer is that response.
    fn point<'a>(
        &'a self,
        origin: &'a Origin,
        text: &'a str,
    ) -> BoxFuture<'a, Result<(), ChatError>>;
}

/// A running platform: its inbound routes (HTTP transports), its outbound voice, and how it
/// stops (closing Socket Mode or the gateway).
pub trait PlatformRuntime: Send + Sync {
    fn platform(&self) -> Platform;

    /// The routes it serves under `serve`'s listener, when an HTTP transport is on.
    fn routes(&self) -> Option<axum::Router>;

    /// What posts for it.
    fn chat(&self) -> std::sync::Arc<dyn ChatPlatform>;

    /// Stops its own connections (the HTTP routes stop with the server).
    fn stop(self: Box<Self>) -> BoxFuture<'static, ()>;
}
