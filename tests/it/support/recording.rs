//! A recording chat platform: every post, thread reply and edit, in order.

use std::sync::Mutex;

use futures::future::BoxFuture;
use vault_triage::chat::message::{Message, MessageRef};
use vault_triage::chat::{ChatError, ChatPlatform, Origin};
use vault_triage::config::Platform;

#[derive(Debug, Clone)]
pub enum Posted {
    Root(String, Message),
    Reply(MessageRef, Message),
    Update(MessageRef, Message),
    Ephemeral(Origin, String),
}

/// Records what the bot says, as Slack would number it.
#[derive(Default)]
pub struct RecordingChat {
    pub log: Mutex<Vec<Posted>>,
    n: Mutex<u64>,
}

impl RecordingChat {
    /// The id of the `n`-th message posted (from 1).
    pub fn nth_id(n: u64) -> String {
        format!("{}.000{n}", 1_700_000_000 + n)
    }

    fn id(&self) -> String {
        let mut n = self.n.lock().unwrap();
        *n += 1;
        Self::nth_id(*n)
    }

    /// Takes everything said so far.
    pub fn take(&self) -> Vec<Posted> {
        std::mem::take(&mut self.log.lock().unwrap())
    }

    fn push(&self, p: Posted) {
        self.log.lock().unwrap().push(p);
    }

    pub fn all(&self) -> Vec<Posted> {
        self.log.lock().unwrap().clone()
    }

    pub fn roots(&self) -> Vec<(String, Message)> {
        self.all()
            .into_iter()
            .filter_map(|p| match p {
                Posted::Root(c, m) => Some((c, m)),
                _ => None,
            })
            .collect()
    }

    pub fn replies(&self) -> Vec<(MessageRef, Message)> {
        self.all()
            .into_iter()
            .filter_map(|p| match p {
                Posted::Reply(r, m) => Some((r, m)),
                _ => None,
            })
            .collect()
    }

    pub fn updates(&self) -> Vec<(MessageRef, Message)> {
        self.all()
            .into_iter()
            .filter_map(|p| match p {
                Posted::Update(r, m) => Some((r, m)),
                _ => None,
            })
            .collect()
    }
}

impl ChatPlatform for RecordingChat {
    fn platform(&self) -> Platform {
        Platform::Slack
    }

    fn post<'a>(
        &'a self,
        channel: &'a str,
        msg: &'a Message,
    ) -> BoxFuture<'a, Result<MessageRef, ChatError>> {
        Box::pin(async move {
            self.push(Posted::Root(channel.to_string(), msg.clone()));
            Ok(MessageRef {
                channel: channel.to_string(),
                id: self.id(),
                thread: None,
            })
        })
    }

    fn follow_up<'a>(
        &'a self,
        origin: &'a Origin,
        msg: &'a Message,
    ) -> BoxFuture<'a, Result<MessageRef, ChatError>> {
        Box::pin(async move {
            self.push(Posted::Root(origin.channel.clone(), msg.clone()));
            Ok(MessageRef {
                channel: origin.channel.clone(),
                id: self.id(),
                thread: origin.thread.clone(),
            })
        })
    }

    fn start_thread<'a>(
        &'a self,
        root: &'a MessageRef,
    ) -> BoxFuture<'a, Result<String, ChatError>> {
        Box::pin(async move { Ok(root.thread.clone().unwrap_or_else(|| root.id.clone())) })
    }

    fn reply_in_thread<'a>(
        &'a self,
        root: &'a MessageRef,
        msg: &'a Message,
    ) -> BoxFuture<'a, Result<MessageRef, ChatError>> {
        Box::pin(async move {
            self.push(Posted::Reply(root.clone(), msg.clone()));
            Ok(MessageRef {
                channel: root.channel.clone(),
                id: self.id(),
                thread: Some(root.thread.clone().unwrap_or_else(|| root.id.clone())),
            })
        })
    }

    fn update<'a>(
        &'a self,
        at: &'a MessageRef,
        msg: &'a Message,
    ) -> BoxFuture<'a, Result<(), ChatError>> {
        Box::pin(async move {
            self.push(Posted::Update(at.clone(), msg.clone()));
            Ok(())
        })
    }

    fn ephemeral<'a>(
        &'a self,
        origin: &'a Origin,
        text: &'a str,
    ) -> BoxFuture<'a, Result<(), ChatError>> {
        Box::pin(async move {
            self.push(Posted::Ephemeral(origin.clone(), text.to_string()));
            Ok(())
        })
    }

    fn point<'a>(
        &'a self,
        origin: &'a Origin,
        text: &'a str,
    ) -> BoxFuture<'a, Result<(), ChatError>> {
        self.ephemeral(origin, text)
    }
}
