//! The Slack Web API as the bot uses it: `chat.postMessage`, `chat.update`,
//! `chat.postEphemeral`, `response_url` posts and `apps.connections.open`, with Slack's rate
//! limits honoured (429 `Retry-After`, 5xx backoff, one post per second per channel), and the
//! [`SlackChat`], the bot's [`ChatPlatform`] on Slack.
//!
//! Tokens go in the `Authorization` header and nowhere else: not in errors, not in logs.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::blocks;
use futures::future::BoxFuture;

use crate::chat::message::{Message, MessageRef};
use crate::chat::platform::{ChatError, ChatPlatform, Origin};
use crate::config::Platform;
use crate::config::Secret;

/// Most attempts of one call (429s and 5xx included).
pub const MAX_ATTEMPTS: u32 = 5;
/// First wait after a 5xx or a connection failure; doubled on each further failure.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Longest `Retry-After` honoured; a longer one is capped to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Posts to one channel are spaced at least this far apart (Slack allows about one per second).
pub const CHANNEL_PACE: Duration = Duration::from_secs(1);
/// Timeout of one HTTP request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// A Slack Web API client.
pub struct SlackApi {
    http: reqwest::Client,
    /// Ends with `/`.
    base: String,
    bot_token: Secret,
    pace: Duration,
    /// Per channel: when the next post may go out.
    next_post: DashMap<String, Instant>,
}

/// What a failed attempt means for the next one.
enum Attempt {
    Done(Value),
    Retry(Duration, String),
    Fail(ChatError),
}

impl SlackApi {
    /// A client for the Web API at `base` (ending with `/`).
    pub fn new(base: &str, bot_token: Secret) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("vault-triage/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(SlackApi {
            http,
            base: format!("{}/", base.trim_end_matches('/')),
            bot_token,
            pace: CHANNEL_PACE,
            next_post: DashMap::new(),
        })
    }

    /// Waits for `channel`'s turn: posts to one channel go out at most once per `pace`, and
    /// other channels do not wait for it. No guard is held while waiting.
    async fn pace(&self, channel: &str) {
        let now = Instant::now();
        let slot = {
            let mut next = self.next_post.entry(channel.to_string()).or_insert(now);
            let slot = (*next).max(now);
            *next = slot + self.pace;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }

    /// Calls Web API `method` with `body` as the bot; `pace` names the channel a post goes to.
    pub async fn call(
        &self,
        method: &str,
        body: &Value,
        pace: Option<&str>,
    ) -> Result<Value, ChatError> {
        if let Some(channel) = pace {
            self.pace(channel).await;
        }
        let url = format!("{}{method}", self.base);
        self.send(method, &url, Some(&self.bot_token), body).await
    }

    /// Posts `body` to a `response_url` (which needs no token).
    pub async fn respond(&self, response_url: &str, body: &Value) -> Result<(), ChatError> {
        self.send("response_url", response_url, None, body)
            .await
            .map(|_| ())
    }

    /// `apps.connections.open` with the app-level token: a Socket Mode WebSocket URL.
    pub async fn open_connection(&self, app_token: &Secret) -> Result<String, ChatError> {
        let url = format!("{}apps.connections.open", self.base);
        let v = self
            .send("apps.connections.open", &url, Some(app_token), &json!({}))
            .await?;
        v["url"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| ChatError::Unavailable("apps.connections.open returned no url".into()))
    }

    async fn send(
        &self,
        what: &str,
        url: &str,
        token: Option<&Secret>,
        body: &Value,
    ) -> Result<Value, ChatError> {
        let mut backoff = FIRST_BACKOFF;
        let mut last = String::new();
        for attempt in 1..=MAX_ATTEMPTS {
            match self.attempt(url, token, body).await {
                Attempt::Done(v) => return Ok(v),
                Attempt::Fail(e) => {
                    tracing::warn!(call = what, error = %e, "Slack refused a call");
                    let code = match &e {
                        ChatError::Refused(r) => {
                            r.split(':').next().unwrap_or("refused").to_string()
                        }
                        ChatError::Unavailable(_) => "unavailable".into(),
                    };
                    crate::metrics::chat_error(Platform::Slack, &code);
                    return Err(e);
                }
                Attempt::Retry(wait, why) => {
                    let wait = if wait.is_zero() {
                        let w = backoff;
                        backoff *= 2;
                        w
                    } else {
                        wait
                    };
                    tracing::info!(call = what, attempt, wait_ms = wait.as_millis() as u64, reason = %why, "retrying a Slack call");
                    crate::metrics::chat_retry(
                        Platform::Slack,
                        if why.contains("429") || why == "ratelimited" {
                            "rate_limited"
                        } else {
                            "server_error"
                        },
                    );
                    last = why;
                    if attempt < MAX_ATTEMPTS {
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        }
        tracing::warn!(call = what, reason = %last, "a Slack call failed after {MAX_ATTEMPTS} attempts");
        crate::metrics::chat_error(Platform::Slack, "gave_up_after_retries");
        Err(ChatError::Unavailable(last))
    }

    async fn attempt(&self, url: &str, token: Option<&Secret>, body: &Value) -> Attempt {
        let mut req = self.http.post(url).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t.expose());
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Attempt::Retry(Duration::ZERO, transport_error(&e)),
        };
        let status = resp.status();
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            let after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs)
                .unwrap_or(Duration::from_secs(1))
                .min(MAX_RETRY_AFTER);
            return Attempt::Retry(
                after.max(Duration::from_millis(1)),
                "rate limited (429)".into(),
            );
        }
        if status.is_server_error() {
            return Attempt::Retry(Duration::ZERO, format!("HTTP {status}"));
        }
        if !status.is_success() {
            return Attempt::Fail(ChatError::Refused(format!("HTTP {}", status.as_u16())));
        }
        let text = resp.text().await.unwrap_or_default();
        // response_url answers "ok" or nothing; the Web API answers JSON.
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            return Attempt::Done(Value::Null);
        };
        if v.get("ok") == Some(&Value::Bool(false)) {
            let code = v["error"].as_str().unwrap_or("unknown_error");
            if code == "ratelimited" {
                return Attempt::Retry(Duration::from_secs(1), "ratelimited".into());
            }
            return Attempt::Fail(ChatError::Refused(refusal(code)));
        }
        Attempt::Done(v)
    }
}

/// A transport failure in words, without the URL (a response_url is a credential of sorts).
fn transport_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        "request failed".into()
    }
}

/// A Slack error code with what a person can do about it.
pub fn refusal(code: &str) -> String {
    let hint = match code {
        "not_in_channel" => "invite the bot to this channel (`/invite @vault-triage`)",
        "channel_not_found" => "the channel is private or gone: invite the bot to it",
        "is_archived" => "the channel is archived",
        "invalid_auth" | "not_authed" | "token_revoked" | "token_expired" | "account_inactive" => {
            "the bot's Slack token is not accepted: an admin must check SLACK_BOT_TOKEN"
        }
        "missing_scope" => {
            "the Slack app lacks a scope (chat:write): reinstall it from the manifest"
        }
        "msg_too_long" | "invalid_blocks" => "the message was too large for Slack",
        "message_not_found" | "cant_update_message" => "the message to update is gone",
        "expired_url" | "used_url" => "this button's reply link expired: run /vault-triage again",
        _ => return code.to_string(),
    };
    format!("{code}: {hint}")
}

/// The bot's voice on Slack: the [`ChatPlatform`] over the Web API.
#[derive(Clone)]
pub struct SlackChat {
    api: Arc<SlackApi>,
}

impl SlackChat {
    pub fn new(api: Arc<SlackApi>) -> Self {
        Self { api }
    }

    async fn post_in(
        &self,
        channel: &str,
        thread: Option<&str>,
        msg: &Message,
    ) -> Result<MessageRef, ChatError> {
        let body = blocks::post_message(channel, thread, msg);
        let v = self
            .api
            .call("chat.postMessage", &body, Some(channel))
            .await?;
        let ts = v["ts"]
            .as_str()
            .ok_or_else(|| ChatError::Unavailable("chat.postMessage returned no ts".into()))?;
        Ok(MessageRef {
            channel: v["channel"].as_str().unwrap_or(channel).to_string(),
            id: ts.to_string(),
            thread: thread.map(str::to_string),
        })
    }

    async fn ephemeral_text(&self, origin: &Origin, text: &str) -> Result<(), ChatError> {
        let text = blocks::cut(text, blocks::MAX_FALLBACK);
        if !origin.reply.is_empty() {
            let body =
                json!({"response_type": "ephemeral", "replace_original": false, "text": text});
            match self.api.respond(&origin.reply, &body).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::info!(error = %e, "response_url failed; trying chat.postEphemeral")
                }
            }
        }
        let mut body =
            json!({"channel": origin.channel, "user": origin.actor.user_id, "text": text});
        if let Some(t) = &origin.thread {
            body["thread_ts"] = json!(t);
        }
        self.api
            .call("chat.postEphemeral", &body, Some(&origin.channel))
            .await
            .map(|_| ())
    }
}

/// A Slack thread is named by its root message's `ts`.
fn thread_ts(root: &MessageRef) -> &str {
    root.thread.as_deref().unwrap_or(&root.id)
}

impl ChatPlatform for SlackChat {
    fn platform(&self) -> Platform {
        Platform::Slack
    }

    fn post<'a>(
        &'a self,
        channel: &'a str,
        msg: &'a Message,
    ) -> BoxFuture<'a, Result<MessageRef, ChatError>> {
        Box::pin(self.post_in(channel, None, msg))
    }

    /// Posts in the channel (or thread) the command came from.
    fn follow_up<'a>(
        &'a self,
        origin: &'a Origin,
        msg: &'a Message,
    ) -> BoxFuture<'a, Result<MessageRef, ChatError>> {
        Box::pin(self.post_in(&origin.channel, origin.thread.as_deref(), msg))
    }

    fn start_thread<'a>(
        &'a self,
        root: &'a MessageRef,
    ) -> BoxFuture<'a, Result<String, ChatError>> {
        Box::pin(async move { Ok(thread_ts(root).to_string()) })
    }

    fn reply_in_thread<'a>(
        &'a self,
        root: &'a MessageRef,
        msg: &'a Message,
    ) -> BoxFuture<'a, Result<MessageRef, ChatError>> {
        Box::pin(self.post_in(&root.channel, Some(thread_ts(root)), msg))
    }

    fn update<'a>(
        &'a self,
        target: &'a MessageRef,
        msg: &'a Message,
    ) -> BoxFuture<'a, Result<(), ChatError>> {
        Box::pin(async move {
            let body = blocks::update_message(&target.channel, &target.id, msg);
            self.api.call("chat.update", &body, None).await.map(|_| ())
        })
    }

    fn ephemeral<'a>(
        &'a self,
        origin: &'a Origin,
        text: &'a str,
    ) -> BoxFuture<'a, Result<(), ChatError>> {
        Box::pin(self.ephemeral_text(origin, text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_say_what_to_do() {
        assert_eq!(
            refusal("not_in_channel"),
            "not_in_channel: invite the bot to this channel (`/invite @vault-triage`)"
        );
        assert_eq!(refusal("something_new"), "something_new");
    }

    #[tokio::test]
    async fn posts_to_one_channel_are_paced_and_other_channels_do_not_wait() {
        let mut api = SlackApi::new("http://127.0.0.1:1/api/", Secret::new("xoxb-test")).unwrap();
        api.pace = Duration::from_millis(100);
        let start = Instant::now();
        api.pace("C1").await;
        api.pace("C1").await;
        api.pace("C1").await;
        assert!(
            start.elapsed() >= Duration::from_millis(200),
            "{:?}",
            start.elapsed()
        );
        let other = Instant::now();
        api.pace("C2").await;
        assert!(
            other.elapsed() < Duration::from_millis(100),
            "{:?}",
            other.elapsed()
        );
    }
}
