//! A recording chat platform for tests: every post, thread reply and edit, in order.

use std::sync::Mutex;

use futures::future::BoxFuture;
use vault_triage::chat::bot::ChatError;
use vault_triage::chat::message::{Message, MessageRef};
use vault_triage::chat::poster::ChannelPoster;

#[derive(Debug, Clone)]
pub enum Posted {
    Root(String, Message),
    Reply(MessageRef, Message),
    Update(MessageRef, Message),
}

#[derive(Default)]
pub struct RecordingPoster {
    pub log: Mutex<Vec<Posted>>,
    n: Mutex<u64>,
}

impl RecordingPoster {
    fn id(&self) -> String {
        let mut n = self.n.lock().unwrap();
        *n += 1;
        format!("{}.000{n}", 1_700_000_000 + *n)
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

impl ChannelPoster for RecordingPoster {
    fn platform(&self) -> &'static str {
        "slack"
    }
    fn post<'a>(
        &'a self,
        channel: &'a str,
        msg: &'a Message,
    ) -> BoxFuture<'a, Result<MessageRef, ChatError>> {
        Box::pin(async move {
            self.log
                .lock()
                .unwrap()
                .push(Posted::Root(channel.to_string(), msg.clone()));
            Ok(MessageRef {
                channel: channel.to_string(),
                id: self.id(),
                thread: None,
            })
        })
    }
    fn reply_in_thread<'a>(
        &'a self,
        root: &'a MessageRef,
        msg: &'a Message,
    ) -> BoxFuture<'a, Result<MessageRef, ChatError>> {
        Box::pin(async move {
            self.log
                .lock()
                .unwrap()
                .push(Posted::Reply(root.clone(), msg.clone()));
            Ok(MessageRef {
                channel: root.channel.clone(),
                id: self.id(),
                thread: Some(root.id.clone()),
            })
        })
    }
    fn update<'a>(
        &'a self,
        at: &'a MessageRef,
        msg: &'a Message,
    ) -> BoxFuture<'a, Result<(), ChatError>> {
        Box::pin(async move {
            self.log
                .lock()
                .unwrap()
                .push(Posted::Update(at.clone(), msg.clone()));
            Ok(())
        })
    }
}
