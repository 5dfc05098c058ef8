//! The REST side: the bot's [`ChatPlatform`] over serenity's `Http`, and how Discord's answers become
//! [`ChatError`]s.
//!
//! Production keeps serenity's rate limiter (it honours Discord's buckets and 429s); a REST
//! base from `DISCORD_API_URL` (tests, proxies) goes through serenity's proxy setting, which
//! only works with the rate limiter off. Interaction tokens are credentials for 15 minutes:
//! nothing here logs a URL, since theirs carry one.

use std::num::NonZeroU64;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use futures::future::BoxFuture;
use serde_json::json;
use serenity::http::{Http, HttpBuilder, HttpError};
use serenity::model::id::{ApplicationId, ChannelId, MessageId};
use tokio::sync::OnceCell;

use super::payload::{self, truncate};
use crate::chat::message::{Message, MessageRef};
use crate::chat::platform::{ChatError, ChatPlatform, Origin};
use crate::config::Platform;
use crate::config::Secret;

/// Discord's error code when a thread already exists for a message (its id is the message's).
const THREAD_ALREADY_EXISTS: isize = 160_004;
/// Discord's codes for an `@original` that is not there yet (the deferral still in flight).
const UNKNOWN_ORIGINAL: [isize; 2] = [10_008, 10_015];
/// Tries of an `@original` edit that finds no original yet, and the pause before each retry.
const ORIGINAL_TRIES: u32 = 3;
const ORIGINAL_RETRY_PAUSE: Duration = Duration::from_millis(300);
/// Most summaries whose thread and title are remembered; forgetting is harmless (a second
/// thread start finds the first one).
const MAX_REMEMBERED: usize = 10_000;
/// Most characters in a thread name.
const MAX_THREAD_NAME: usize = 100;
/// Threads archive after a day without messages.
const THREAD_ARCHIVE_MINUTES: u32 = 1440;

/// The serenity client for `settings`: through `api_url` (rate limiter off, as serenity's
/// proxy requires) when set, else Discord itself with the rate limiter on.
pub fn http_client(
    token: &Secret,
    application_id: Option<&str>,
    api_url: Option<&str>,
) -> anyhow::Result<Http> {
    let mut b = HttpBuilder::new(token.expose());
    if let Some(app) = application_id {
        b = b.application_id(application_id_of(app)?);
    }
    if let Some(base) = api_url {
        b = b.proxy(proxy_base(base)).ratelimiter_disabled(true);
    }
    Ok(b.build())
}

/// `http://host:port`, from a base given with or without `/api` or `/api/v10`.
fn proxy_base(base: &str) -> String {
    let b = base.trim_end_matches('/');
    let b = b
        .strip_suffix("/api/v10")
        .or_else(|| b.strip_suffix("/api"))
        .unwrap_or(b);
    b.to_string()
}

pub fn application_id_of(s: &str) -> anyhow::Result<ApplicationId> {
    s.trim()
        .parse::<NonZeroU64>()
        .map(ApplicationId::from)
        .map_err(|_| anyhow::anyhow!("DISCORD_APPLICATION_ID is not a Discord id: {s:?}"))
}

fn snowflake(s: &str) -> Result<NonZeroU64, ChatError> {
    s.parse()
        .map_err(|_| ChatError::Refused(format!("{s:?} is not a Discord id")))
}

/// A failed call as the bot sees it: Discord's own message for a 4xx, unavailable otherwise.
pub fn chat_error(call: &str, e: serenity::Error) -> ChatError {
    let err = match e {
        serenity::Error::Http(HttpError::UnsuccessfulRequest(r)) => {
            let what = format!(
                "{} (code {}, HTTP {})",
                r.error.message,
                r.error.code,
                r.status_code.as_u16()
            );
            if r.status_code.is_client_error() {
                ChatError::Refused(what)
            } else {
                ChatError::Unavailable(what)
            }
        }
        serenity::Error::Http(HttpError::Request(re)) => {
            ChatError::Unavailable(re.without_url().to_string())
        }
        serenity::Error::Json(je) => {
            ChatError::Unavailable(format!("Discord's answer did not parse: {je}"))
        }
        serenity::Error::Http(HttpError::ApplicationIdMissing) => ChatError::Refused(
            "the Discord application id is not known (set DISCORD_APPLICATION_ID)".into(),
        ),
        other => ChatError::Unavailable(format!("Discord call failed: {}", kind_of(&other))),
    };
    tracing::warn!(call, error = %err, "Discord API call failed");
    crate::metrics::chat_error(
        Platform::Discord,
        match &err {
            ChatError::Refused(_) => "refused",
            ChatError::Unavailable(_) => "unavailable",
        },
    );
    err
}

/// Attempts of one Discord call when it fails with a 5xx or no answer (429s are serenity's
/// rate limiter's, in production).
pub const MAX_ATTEMPTS: u32 = 3;

/// Runs `call` again after a short backoff while it fails as unavailable (5xx, transport).
pub async fn with_retries<T, F, Fut>(what: &str, mut call: F) -> Result<T, ChatError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ChatError>>,
{
    let mut backoff = std::time::Duration::from_millis(200);
    let mut attempt = 1;
    loop {
        match call().await {
            Err(ChatError::Unavailable(why)) if attempt < MAX_ATTEMPTS => {
                tracing::info!(call = what, attempt, reason = %why, "retrying a Discord call");
                crate::metrics::chat_retry(Platform::Discord, retry_reason(&why));
                tokio::time::sleep(backoff).await;
                backoff *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// The `reason` label of a retry: a 5xx names its status (`HTTP 503`) in the message; anything
/// else unavailable got no answer at all.
fn retry_reason(why: &str) -> &'static str {
    if why.contains("HTTP 5") {
        "server_error"
    } else if why.contains("timed out") || why.contains("timeout") {
        "timeout"
    } else {
        "unreachable"
    }
}

/// A description of an error that cannot contain a URL.
fn kind_of(e: &serenity::Error) -> &'static str {
    match e {
        serenity::Error::Http(_) => "HTTP error",
        serenity::Error::Io(_) => "I/O error",
        serenity::Error::Model(_) => "unexpected data",
        _ => "client error",
    }
}

fn discord_code(e: &serenity::Error) -> Option<isize> {
    match e {
        serenity::Error::Http(HttpError::UnsuccessfulRequest(r)) => Some(r.error.code),
        _ => None,
    }
}

/// The bot's voice on Discord.
pub struct DiscordChat {
    http: Arc<Http>,
    /// Summary message id → its thread, started once.
    threads: DashMap<String, Arc<OnceCell<String>>>,
    /// Summary message id → its title, for the thread's name.
    titles: DashMap<String, String>,
}

impl DiscordChat {
    pub fn new(http: Arc<Http>) -> Self {
        Self {
            http,
            threads: DashMap::new(),
            titles: DashMap::new(),
        }
    }

    pub fn http(&self) -> &Arc<Http> {
        &self.http
    }

    /// Remembers a message's title (a summary the thread will be named after).
    pub fn remember_title(&self, message: &str, title: &str) {
        if self.titles.len() >= MAX_REMEMBERED {
            self.titles.clear();
        }
        self.titles.insert(message.to_string(), title.to_string());
    }

    /// Remembers a thread Discord says a message already has.
    pub fn remember_thread(&self, message: &str, thread: &str) {
        let cell = OnceCell::new_with(Some(thread.to_string()));
        self.threads
            .entry(message.to_string())
            .or_insert_with(|| Arc::new(cell));
    }

    fn thread_name(&self, root: &str) -> String {
        let title = self.titles.get(root).map(|t| t.clone()).unwrap_or_default();
        let title = title.trim_start_matches(|c: char| !c.is_alphanumeric());
        if title.is_empty() {
            "vault-triage".into()
        } else {
            truncate(&format!("vault-triage: {title}"), MAX_THREAD_NAME)
        }
    }

    /// The thread under `root`, started on first use; concurrent callers wait for one start.
    async fn thread_of(&self, root: &MessageRef) -> Result<String, ChatError> {
        if let Some(t) = &root.thread {
            return Ok(t.clone());
        }
        if self.threads.len() >= MAX_REMEMBERED {
            self.threads.clear();
        }
        let cell = self.threads.entry(root.id.clone()).or_default().clone();
        cell.get_or_try_init(|| self.start_thread(root))
            .await
            .cloned()
    }

    async fn start_thread(&self, root: &MessageRef) -> Result<String, ChatError> {
        let channel = ChannelId::from(snowflake(&root.channel)?);
        let message = MessageId::from(snowflake(&root.id)?);
        let body = json!({
            "name": self.thread_name(&root.id),
            "auto_archive_duration": THREAD_ARCHIVE_MINUTES,
        });
        match self
            .http
            .create_thread_from_message(channel, message, &body, None)
            .await
        {
            Ok(thread) => Ok(thread.id.to_string()),
            // Started before (by us before a restart): a message's thread has its id.
            Err(e) if discord_code(&e) == Some(THREAD_ALREADY_EXISTS) => Ok(root.id.clone()),
            Err(e) => Err(chat_error("start thread", e)),
        }
    }
}

impl DiscordChat {
    /// Edits the deferred response (`@original`) into the answer.
    async fn edit_original(&self, origin: &Origin, msg: &Message) -> Result<MessageRef, ChatError> {
        let body = payload::body(msg);
        let mut tries = 0;
        let sent = loop {
            tries += 1;
            match self
                .http
                .edit_original_interaction_response(&origin.reply, &body, vec![])
                .await
            {
                Ok(m) => break m,
                Err(e)
                    if tries < ORIGINAL_TRIES
                        && discord_code(&e).is_some_and(|c| UNKNOWN_ORIGINAL.contains(&c)) =>
                {
                    tokio::time::sleep(ORIGINAL_RETRY_PAUSE * tries).await;
                }
                Err(e) => return Err(chat_error("edit original response", e)),
            }
        };
        let id = sent.id.to_string();
        if let Some(title) = &msg.title {
            self.remember_title(&id, title);
        }
        Ok(MessageRef {
            channel: sent.channel_id.to_string(),
            id,
            thread: origin.thread.clone(),
        })
    }

    /// `POST /channels/{channel}/messages`.
    async fn post_in_channel(&self, channel: &str, msg: &Message) -> Result<MessageRef, ChatError> {
        let id = ChannelId::from(snowflake(channel)?);
        let body = payload::body(msg);
        let sent = with_retries("post in channel", || async {
            self.http
                .send_message(id, vec![], &body)
                .await
                .map_err(|e| chat_error("post in channel", e))
        })
        .await?;
        if let Some(title) = &msg.title {
            self.remember_title(&sent.id.to_string(), title);
        }
        Ok(MessageRef {
            channel: channel.to_string(),
            id: sent.id.to_string(),
            thread: None,
        })
    }

    async fn post_in_thread(
        &self,
        root: &MessageRef,
        msg: &Message,
    ) -> Result<MessageRef, ChatError> {
        let thread = self.thread_of(root).await?;
        let channel = ChannelId::from(snowflake(&thread)?);
        let body = payload::body(msg);
        let sent = with_retries("post in thread", || async {
            self.http
                .send_message(channel, vec![], &body)
                .await
                .map_err(|e| chat_error("post in thread", e))
        })
        .await?;
        Ok(MessageRef {
            channel: thread.clone(),
            id: sent.id.to_string(),
            thread: Some(thread),
        })
    }

    async fn edit(&self, target: &MessageRef, msg: &Message) -> Result<(), ChatError> {
        let channel = ChannelId::from(snowflake(&target.channel)?);
        let message = MessageId::from(snowflake(&target.id)?);
        let body = payload::body(msg);
        with_retries("edit message", || async {
            self.http
                .edit_message(channel, message, &body, vec![])
                .await
                .map_err(|e| chat_error("edit message", e))
        })
        .await?;
        Ok(())
    }

    /// A follow-up only the person who acted sees.
    async fn ephemeral_follow_up(&self, origin: &Origin, text: &str) -> Result<(), ChatError> {
        self.http
            .create_followup_message(&origin.reply, &payload::ephemeral(text), vec![])
            .await
            .map_err(|e| chat_error("ephemeral follow-up", e))?;
        Ok(())
    }
}

impl ChatPlatform for DiscordChat {
    fn platform(&self) -> Platform {
        Platform::Discord
    }

    fn post<'a>(
        &'a self,
        channel: &'a str,
        msg: &'a Message,
    ) -> BoxFuture<'a, Result<MessageRef, ChatError>> {
        Box::pin(self.post_in_channel(channel, msg))
    }

    fn follow_up<'a>(
        &'a self,
        origin: &'a Origin,
        msg: &'a Message,
    ) -> BoxFuture<'a, Result<MessageRef, ChatError>> {
        Box::pin(self.edit_original(origin, msg))
    }

    fn start_thread<'a>(
        &'a self,
        root: &'a MessageRef,
    ) -> BoxFuture<'a, Result<String, ChatError>> {
        Box::pin(self.thread_of(root))
    }

    fn reply_in_thread<'a>(
        &'a self,
        root: &'a MessageRef,
        msg: &'a Message,
    ) -> BoxFuture<'a, Result<MessageRef, ChatError>> {
        Box::pin(self.post_in_thread(root, msg))
    }

    fn update<'a>(
        &'a self,
        target: &'a MessageRef,
        msg: &'a Message,
    ) -> BoxFuture<'a, Result<(), ChatError>> {
        Box::pin(self.edit(target, msg))
    }

    fn ephemeral<'a>(
        &'a self,
        origin: &'a Origin,
        text: &'a str,
    ) -> BoxFuture<'a, Result<(), ChatError>> {
        Box::pin(self.ephemeral_follow_up(origin, text))
    }

    /// As the command's deferred response, which must be answered anyway.
    fn point<'a>(
        &'a self,
        origin: &'a Origin,
        text: &'a str,
    ) -> BoxFuture<'a, Result<(), ChatError>> {
        Box::pin(async move {
            self.edit_original(origin, &super::super::render::text(text))
                .await
                .map(|_| ())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rest_base_may_name_the_api_path_or_not() {
        for b in [
            "http://127.0.0.1:9/",
            "http://127.0.0.1:9/api",
            "http://127.0.0.1:9/api/v10/",
        ] {
            assert_eq!(proxy_base(b), "http://127.0.0.1:9");
        }
    }

    #[test]
    fn production_keeps_the_rate_limiter_and_a_rest_base_goes_through_the_proxy() {
        let token = Secret::new("t");
        let discord = http_client(&token, Some("1"), None).unwrap();
        assert!(discord.ratelimiter.is_some());
        assert_eq!(discord.proxy, None);
        let fake = http_client(&token, Some("1"), Some("http://127.0.0.1:9/api/v10")).unwrap();
        assert!(
            fake.ratelimiter.is_none(),
            "serenity's proxy needs the rate limiter off"
        );
        assert_eq!(fake.proxy.as_deref(), Some("http://127.0.0.1:9"));
        assert!(http_client(&token, Some("app"), None).is_err());
    }

    #[test]
    fn a_thread_is_named_after_its_summary() {
        let sink = DiscordChat::new(Arc::new(Http::new("t")));
        assert_eq!(sink.thread_name("1"), "vault-triage");
        sink.remember_title(
            "1",
            "🔴 Vault Kubernetes auth is failing: the reviewer token expired",
        );
        assert_eq!(
            sink.thread_name("1"),
            "vault-triage: Vault Kubernetes auth is failing: the reviewer token expired"
        );
        sink.remember_title("2", &"x".repeat(300));
        assert_eq!(sink.thread_name("2").chars().count(), MAX_THREAD_NAME);
    }
}
