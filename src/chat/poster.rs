//! [`ChannelPoster`]: posting into a channel without a command to answer (alert incidents).
//! Object-safe, so the alert worker can hold one per platform.

use futures::future::BoxFuture;

use super::bot::ChatError;
use super::message::{Message, MessageRef};

/// What the alert intake needs from a platform.
pub trait ChannelPoster: Send + Sync {
    /// `slack` or `discord`: the key of an incident's root message.
    fn platform(&self) -> &'static str;
    /// Posts a new message in `channel`.
    fn post<'a>(
        &'a self,
        channel: &'a str,
        msg: &'a Message,
    ) -> BoxFuture<'a, Result<MessageRef, ChatError>>;
    /// Posts in the thread of `root` (starting one when the platform needs it).
    fn reply_in_thread<'a>(
        &'a self,
        root: &'a MessageRef,
        msg: &'a Message,
    ) -> BoxFuture<'a, Result<MessageRef, ChatError>>;
    /// Replaces a message's content.
    fn update<'a>(
        &'a self,
        at: &'a MessageRef,
        msg: &'a Message,
    ) -> BoxFuture<'a, Result<(), ChatError>>;
}
