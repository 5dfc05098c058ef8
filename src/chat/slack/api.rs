//! The Slack Web API as the bot uses it, through slack-morphism's client: `chat.postMessage`,
//! `chat.update`, `chat.postEphemeral` (typed requests and responses) and `response_url`
//! posts, with Slack's limits honoured by this module rather than by slack-morphism's rate
//! control: one post per second *per channel* (its throttle counts chat.postMessage per
//! workspace, which would serialise every incident channel behind one another), 429s waited
//! out for their `Retry-After` (capped), and 5xx and transport failures retried with backoff
//! (its rate control retries 429s only). Each attempt has a timeout of its own (its client has
//! none). Retries and errors are counted in `/metrics`. [`SlackChat`] is the bot's
//! [`ChatPlatform`] on Slack.
//!
//! Tokens go in the `Authorization` header and nowhere else: not in errors, not in logs.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::{
    ClientResult, SlackApiChatPostEphemeralRequest, SlackApiToken, SlackApiTokenValue,
    SlackChannelId, SlackClient, SlackClientApiCallContext, SlackClientHttpConnector as _,
    SlackClientHyperConnector, SlackClientHyperHttpsConnector, SlackMessageContent, SlackTs,
    SlackUserId,
};
use tokio::time::Instant;

use super::blocks;
use crate::chat::message::{Message, MessageRef};
use crate::chat::platform::{ChatError, ChatPlatform, Origin};
use crate::config::{Platform, Secret};

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

/// slack-morphism's client over a hyper connector that speaks `https` and, for local fakes
/// and proxies, `http`.
pub type Client = SlackClient<SlackClientHyperHttpsConnector>;

/// The client for the Web API at `base` (`https://slack.com/api`, with or without a trailing
/// `/`). TLS trusts the Web PKI roots built into the binary, as reqwest does.
pub fn client(base: &str) -> Client {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .build();
    SlackClient::new(
        SlackClientHyperConnector::with_connector(https)
            .with_slack_api_url(base.trim_end_matches('/')),
    )
}

/// The Slack Web API as the bot's bot token uses it.
pub struct SlackApi {
    client: Arc<Client>,
    bot_token: SlackApiToken,
    pace: Duration,
    /// Per channel: when the next post may go out.
    next_post: DashMap<String, Instant>,
}

/// What a failed attempt means for the next one.
enum Attempt<T> {
    Done(T),
    Retry(Duration, String),
    Fail(ChatError),
}

impl SlackApi {
    /// A client for the Web API at `base`.
    pub fn new(base: &str, bot_token: &Secret) -> Self {
        SlackApi {
            client: Arc::new(client(base)),
            bot_token: SlackApiToken::new(SlackApiTokenValue::new(bot_token.expose().to_string())),
            pace: CHANNEL_PACE,
            next_post: DashMap::new(),
        }
    }

    /// The underlying client (Socket Mode runs on it).
    pub fn client(&self) -> Arc<Client> {
        self.client.clone()
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

    /// `chat.postMessage`; returns where the message lives.
    pub async fn post_message(
        &self,
        channel: &str,
        thread: Option<&str>,
        msg: &Message,
    ) -> Result<MessageRef, ChatError> {
        self.pace(channel).await;
        let request = blocks::post_message(channel, thread, msg);
        let sent = self
            .send("chat.postMessage", || async {
                self.client
                    .open_session(&self.bot_token)
                    .chat_post_message(&request)
                    .await
            })
            .await?;
        Ok(MessageRef {
            channel: sent.channel.to_string(),
            id: sent.ts.to_string(),
            thread: thread.map(str::to_string),
        })
    }

    /// `chat.update` of message `ts` in `channel`.
    pub async fn update(&self, channel: &str, ts: &str, msg: &Message) -> Result<(), ChatError> {
        let request = blocks::update_message(channel, ts, msg);
        self.send("chat.update", || async {
            self.client
                .open_session(&self.bot_token)
                .chat_update(&request)
                .await
        })
        .await
        .map(|_| ())
    }

    /// `chat.postEphemeral` of `text` to `user` in `channel` (in `thread`, if any).
    pub async fn post_ephemeral(
        &self,
        channel: &str,
        user: &str,
        thread: Option<&str>,
        text: &str,
    ) -> Result<(), ChatError> {
        self.pace(channel).await;
        let mut request = SlackApiChatPostEphemeralRequest::new(
            SlackChannelId::new(channel.into()),
            SlackUserId::new(user.into()),
            SlackMessageContent::new().with_text(text.into()),
        );
        if let Some(t) = thread {
            request = request.with_thread_ts(SlackTs::new(t.into()));
        }
        self.send("chat.postEphemeral", || async {
            self.client
                .open_session(&self.bot_token)
                .chat_post_ephemeral(&request)
                .await
        })
        .await
        .map(|_| ())
    }

    /// Posts `body` to a `response_url` (which needs no token).
    pub async fn respond(&self, response_url: &str, body: &Value) -> Result<(), ChatError> {
        let url = url::Url::parse(response_url)
            .map_err(|_| ChatError::Refused("the reply link is not a URL".into()))?;
        self.send("response_url", || async {
            let span = tracing::Span::none();
            let context = SlackClientApiCallContext {
                rate_control_params: None,
                token: None,
                tracing_span: &span,
                is_sensitive_url: true,
            };
            self.client
                .http_api
                .connector
                .http_post_uri::<Value, Value>(url.clone(), body, context)
                .await
        })
        .await
        .map(|_| ())
    }

    /// Runs `call` with Slack's retry rules; `what` names it in logs and errors.
    async fn send<T, F, Fut>(&self, what: &str, call: F) -> Result<T, ChatError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = ClientResult<T>>,
    {
        let mut backoff = FIRST_BACKOFF;
        let mut last = String::new();
        for attempt in 1..=MAX_ATTEMPTS {
            let outcome = match tokio::time::timeout(REQUEST_TIMEOUT, call()).await {
                Ok(result) => classify(result),
                Err(_) => Attempt::Retry(Duration::ZERO, "timed out".into()),
            };
            match outcome {
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
                    // The last attempt is not followed by a retry, so it is not counted as one.
                    if attempt < MAX_ATTEMPTS {
                        tracing::info!(call = what, attempt, wait_ms = wait.as_millis() as u64, reason = %why, "retrying a Slack call");
                        crate::metrics::chat_retry(Platform::Slack, retry_reason(&why));
                        tokio::time::sleep(wait).await;
                    }
                    last = why;
                }
            }
        }
        tracing::warn!(call = what, reason = %last, "a Slack call failed after {MAX_ATTEMPTS} attempts");
        crate::metrics::chat_error(Platform::Slack, "gave_up_after_retries");
        Err(ChatError::Unavailable(last))
    }
}

/// The `reason` label of a retry, from what [`classify`] said.
fn retry_reason(why: &str) -> &'static str {
    if why.contains("429") || why == "ratelimited" {
        "rate_limited"
    } else if why.starts_with("HTTP 5") {
        "server_error"
    } else if why == "timed out" {
        "timeout"
    } else {
        "unreachable"
    }
}

/// What one attempt's result means: done, retry (after a wait, or a backoff when zero), or a
/// refusal to report.
fn classify<T>(result: ClientResult<T>) -> Attempt<T> {
    match result {
        Ok(v) => Attempt::Done(v),
        Err(SlackClientError::RateLimitError(e)) => {
            let after = e
                .retry_after
                .unwrap_or(Duration::from_secs(1))
                .clamp(Duration::from_millis(1), MAX_RETRY_AFTER);
            Attempt::Retry(after, "rate limited (429)".into())
        }
        Err(SlackClientError::ApiError(e)) if e.code == "ratelimited" => {
            Attempt::Retry(Duration::from_secs(1), "ratelimited".into())
        }
        Err(SlackClientError::ApiError(e)) => Attempt::Fail(ChatError::Refused(refusal(&e.code))),
        Err(SlackClientError::HttpError(e)) if e.status_code.is_server_error() => {
            Attempt::Retry(Duration::ZERO, format!("HTTP {}", e.status_code.as_u16()))
        }
        Err(SlackClientError::HttpError(e)) => {
            // A non-200 answer with Slack's error body still names the error.
            let code = e
                .http_response_body
                .as_deref()
                .and_then(|b| serde_json::from_str::<Value>(b).ok())
                .and_then(|v| v["error"].as_str().map(String::from));
            Attempt::Fail(ChatError::Refused(match code {
                Some(code) => refusal(&code),
                None => format!("HTTP {}", e.status_code.as_u16()),
            }))
        }
        Err(SlackClientError::HttpProtocolError(_)) | Err(SlackClientError::EndOfStream(_)) => {
            Attempt::Retry(Duration::ZERO, "could not connect".into())
        }
        Err(SlackClientError::ProtocolError(_)) => Attempt::Fail(ChatError::Unavailable(
            "Slack's answer could not be read".into(),
        )),
        Err(SlackClientError::SystemError(_))
        | Err(SlackClientError::SocketModeProtocolError(_)) => {
            Attempt::Fail(ChatError::Unavailable("the Slack client failed".into()))
        }
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

    async fn ephemeral_text(&self, origin: &Origin, text: &str) -> Result<(), ChatError> {
        let text = blocks::escaped(text, blocks::MAX_FALLBACK);
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
        self.api
            .post_ephemeral(
                &origin.channel,
                &origin.actor.user_id,
                origin.thread.as_deref(),
                &text,
            )
            .await
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
        Box::pin(self.api.post_message(channel, None, msg))
    }

    /// Posts in the channel (or thread) the command came from.
    fn follow_up<'a>(
        &'a self,
        origin: &'a Origin,
        msg: &'a Message,
    ) -> BoxFuture<'a, Result<MessageRef, ChatError>> {
        Box::pin(
            self.api
                .post_message(&origin.channel, origin.thread.as_deref(), msg),
        )
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
        Box::pin(
            self.api
                .post_message(&root.channel, Some(thread_ts(root)), msg),
        )
    }

    fn update<'a>(
        &'a self,
        target: &'a MessageRef,
        msg: &'a Message,
    ) -> BoxFuture<'a, Result<(), ChatError>> {
        Box::pin(self.api.update(&target.channel, &target.id, msg))
    }

    fn ephemeral<'a>(
        &'a self,
        origin: &'a Origin,
        text: &'a str,
    ) -> BoxFuture<'a, Result<(), ChatError>> {
        Box::pin(self.ephemeral_text(origin, text))
    }

    /// Only to the person, through the `response_url`: the channel already has the answer.
    fn point<'a>(
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

    #[test]
    fn a_refused_connection_is_not_a_server_error() {
        assert_eq!(retry_reason("could not connect"), "unreachable");
        assert_eq!(retry_reason("timed out"), "timeout");
        assert_eq!(retry_reason("HTTP 503"), "server_error");
        assert_eq!(retry_reason("rate limited (429)"), "rate_limited");
        assert_eq!(retry_reason("ratelimited"), "rate_limited");
    }

    #[tokio::test]
    async fn a_call_that_never_connects_counts_one_retry_fewer_than_its_attempts() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        let api = SlackApi::new(&format!("http://{addr}/api/"), &Secret::new("xoxb-test"));
        let retries = |reason| {
            crate::metrics::counter_value(
                "vault_triage_chat_api_retries_total",
                &[("platform", "slack"), ("reason", reason)],
            )
        };
        let (unreachable, server_error) = (retries("unreachable"), retries("server_error"));
        let body = serde_json::json!({"text": "x"});
        let result = api.respond(&format!("http://{addr}/respond"), &body).await;
        assert!(
            matches!(result, Err(ChatError::Unavailable(_))),
            "{result:?}"
        );
        assert_eq!(
            retries("unreachable") - unreachable,
            u64::from(MAX_ATTEMPTS - 1)
        );
        assert_eq!(retries("server_error"), server_error);
    }

    #[tokio::test]
    async fn posts_to_one_channel_are_paced_and_other_channels_do_not_wait() {
        let mut api = SlackApi::new("http://127.0.0.1:1/api/", &Secret::new("xoxb-test"));
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
