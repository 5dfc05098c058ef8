//! A fake Slack on loopback for the Slack tests: the Web API (`/api/{method}`) answering like
//! Slack, `response_url`s (`/respond/{id}`), a recorder of every call, and signed requests as
//! Slack sends them.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::Notify;

pub const BOT_TOKEN: &str = "xoxb-test-bot-token";
pub const APP_TOKEN: &str = "xapp-test-app-token";
pub const SIGNING_SECRET: &str = "test-signing-secret";
pub const CHANNEL: &str = "C0INCIDENTS";

/// One call the fake received.
#[derive(Debug, Clone)]
pub struct Call {
    pub at: Instant,
    /// `chat.postMessage`, … or `respond/{id}` for a response_url.
    pub method: String,
    pub body: Value,
    pub auth: Option<String>,
    /// The `ts` the fake gave a posted message.
    pub ts: Option<String>,
}

/// A canned answer for the next call of a method.
#[derive(Debug, Clone)]
pub struct Canned {
    pub status: u16,
    pub retry_after: Option<u64>,
    pub body: Value,
}

#[derive(Default)]
struct Inner {
    calls: Vec<Call>,
    canned: HashMap<String, VecDeque<Canned>>,
    refuse_channels: HashMap<String, String>,
    ts: u64,
    ws_url: Option<String>,
}

/// The fake Slack.
#[derive(Clone)]
pub struct FakeSlack {
    inner: Arc<Mutex<Inner>>,
    changed: Arc<Notify>,
    pub addr: SocketAddr,
}

impl FakeSlack {
    pub async fn start() -> FakeSlack {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = FakeSlack {
            inner: Arc::default(),
            changed: Arc::default(),
            addr: listener.local_addr().unwrap(),
        };
        let app = Router::new()
            .route("/api/{method}", post(web_api))
            .route("/respond/{id}", post(respond))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        fake
    }

    /// The Web API base, ending with `/`.
    pub fn api_url(&self) -> String {
        format!("http://{}/api/", self.addr)
    }

    /// A response_url served by the fake.
    pub fn response_url(&self, id: &str) -> String {
        format!("http://{}/respond/{id}", self.addr)
    }

    /// The URL `apps.connections.open` returns.
    pub fn set_ws_url(&self, url: String) {
        self.inner.lock().unwrap().ws_url = Some(url);
    }

    /// The next call of `method` gets `canned` instead of the usual answer.
    pub fn queue(&self, method: &str, canned: Canned) {
        self.inner
            .lock()
            .unwrap()
            .canned
            .entry(method.to_string())
            .or_default()
            .push_back(canned);
    }

    /// Posts to `channel` are refused with `error`.
    pub fn refuse_channel(&self, channel: &str, error: &str) {
        self.inner
            .lock()
            .unwrap()
            .refuse_channels
            .insert(channel.to_string(), error.to_string());
    }

    pub fn calls(&self) -> Vec<Call> {
        self.inner.lock().unwrap().calls.clone()
    }

    /// Waits until `pick` finds something in the calls, or panics after `timeout`.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        pick: impl Fn(&[Call]) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            if let Some(t) = pick(&self.calls()) {
                return t;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "timed out after {timeout:?} waiting for {what}; calls: {:#?}",
                    self.calls()
                );
            }
        }
    }

    fn record(&self, method: String, body: Value, headers: &HeaderMap, ts: Option<String>) {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        self.inner.lock().unwrap().calls.push(Call {
            at: Instant::now(),
            method,
            body,
            auth,
            ts,
        });
        self.changed.notify_waiters();
    }
}

async fn web_api(
    State(fake): State<FakeSlack>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut posted = None;
    let answer = {
        let mut inner = fake.inner.lock().unwrap();
        let canned = inner.canned.get_mut(&method).and_then(|q| q.pop_front());
        let channel = body["channel"].as_str().unwrap_or_default().to_string();
        if let Some(c) = canned {
            let mut r =
                (StatusCode::from_u16(c.status).unwrap(), axum::Json(c.body)).into_response();
            if let Some(s) = c.retry_after {
                r.headers_mut()
                    .insert("retry-after", s.to_string().parse().unwrap());
            }
            r
        } else if let Some(e) = inner.refuse_channels.get(&channel) {
            axum::Json(json!({"ok": false, "error": e})).into_response()
        } else {
            match method.as_str() {
                "chat.postMessage" => {
                    inner.ts += 1;
                    let ts = format!("1700000000.{:06}", inner.ts);
                    posted = Some(ts.clone());
                    axum::Json(
                        json!({"ok": true, "channel": channel, "ts": ts, "message": {"ts": ts}}),
                    )
                    .into_response()
                }
                // As Slack answers: the updated message comes back.
                "chat.update" => axum::Json(json!({
                    "ok": true, "channel": channel, "ts": body["ts"], "text": body["text"],
                    "message": {"text": body["text"], "blocks": body["blocks"]}
                }))
                .into_response(),
                "chat.postEphemeral" => {
                    axum::Json(json!({"ok": true, "message_ts": "1.1"})).into_response()
                }
                "apps.connections.open" => match &inner.ws_url {
                    Some(url) => axum::Json(json!({"ok": true, "url": url})).into_response(),
                    None => {
                        axum::Json(json!({"ok": false, "error": "not_allowed"})).into_response()
                    }
                },
                _ => axum::Json(json!({"ok": false, "error": "unknown_method"})).into_response(),
            }
        }
    };
    fake.record(method, body, &headers, posted);
    answer
}

async fn respond(
    State(fake): State<FakeSlack>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> &'static str {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    fake.record(format!("respond/{id}"), body, &headers, None);
    "ok"
}

/// `v0=<hex>`, computed here independently of the bot's verifier.
pub fn sign(secret: &str, ts: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v0:{ts}:{body}").as_bytes());
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A Slack client of the bot: signed requests to its `/slack/*` endpoints.
pub struct Bot {
    pub base: String,
    pub http: reqwest::Client,
}

impl Bot {
    /// POSTs `body` signed at `ts` (or unsigned) to `path`.
    pub async fn post(
        &self,
        path: &str,
        content_type: &str,
        body: &str,
        signed_at: Option<i64>,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body.to_string());
        if let Some(ts) = signed_at {
            let ts = ts.to_string();
            req = req
                .header("x-slack-request-timestamp", &ts)
                .header("x-slack-signature", sign(SIGNING_SECRET, &ts, body));
        }
        req.send().await.unwrap()
    }

    /// A signed slash command, as Slack sends it.
    pub async fn command(&self, user: &str, text: &str, response_url: &str) -> reqwest::Response {
        let body = command_form(CHANNEL, user, text, response_url);
        self.post(
            "/slack/commands",
            "application/x-www-form-urlencoded",
            &body,
            Some(now()),
        )
        .await
    }

    /// A signed click on `action_id` in message `ts` (in `thread`, if any).
    pub async fn click(
        &self,
        user: &str,
        action_id: &str,
        ts: &str,
        thread: Option<&str>,
        response_url: &str,
    ) -> reqwest::Response {
        let body = click_form(user, action_id, ts, thread, response_url);
        self.post(
            "/slack/interactions",
            "application/x-www-form-urlencoded",
            &body,
            Some(now()),
        )
        .await
    }
}

/// A fresh `trigger_id`, as Slack gives every invocation.
pub fn trigger_id() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    format!(
        "{}.{}.abcdef",
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        now()
    )
}

pub fn command_form(channel: &str, user: &str, text: &str, response_url: &str) -> String {
    let trigger = trigger_id();
    serde_urlencoded::to_string([
        ("token", "deprecated-verification-token"),
        ("team_id", "T0TEST"),
        ("team_domain", "test"),
        ("channel_id", channel),
        ("channel_name", "incidents"),
        ("user_id", user),
        ("user_name", &user.to_lowercase()),
        ("command", "/vault-triage"),
        ("text", text),
        ("response_url", response_url),
        ("trigger_id", &trigger),
        ("api_app_id", "A0TEST"),
    ])
    .unwrap()
}

pub fn click_payload(
    user: &str,
    action_id: &str,
    ts: &str,
    thread: Option<&str>,
    response_url: &str,
) -> Value {
    let mut message = json!({"type": "message", "ts": ts, "text": "…"});
    if let Some(t) = thread {
        message["thread_ts"] = json!(t);
    }
    json!({
        "type": "block_actions",
        "team": {"id": "T0TEST", "domain": "test"},
        "user": {"id": user, "username": user.to_lowercase(), "name": user.to_lowercase(), "team_id": "T0TEST"},
        "api_app_id": "A0TEST",
        "token": "deprecated-verification-token",
        "container": {"type": "message", "message_ts": ts, "channel_id": CHANNEL, "is_ephemeral": false},
        "trigger_id": "1.2.3",
        "channel": {"id": CHANNEL, "name": "incidents"},
        "message": message,
        "response_url": response_url,
        "actions": [{"action_id": action_id, "block_id": "b1", "value": action_id, "type": "button", "action_ts": "1.2"}]
    })
}

pub fn click_form(
    user: &str,
    action_id: &str,
    ts: &str,
    thread: Option<&str>,
    response_url: &str,
) -> String {
    serde_urlencoded::to_string([(
        "payload",
        click_payload(user, action_id, ts, thread, response_url).to_string(),
    )])
    .unwrap()
}

/// The first accepted `chat.postMessage` matching `f`.
pub fn post_where(calls: &[Call], f: impl Fn(&Value) -> bool) -> Option<Call> {
    calls
        .iter()
        .find(|c| c.method == "chat.postMessage" && c.ts.is_some() && f(&c.body))
        .cloned()
}

/// Action ids of a message body's buttons, by label.
pub fn buttons(body: &Value) -> Vec<(String, String)> {
    body["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .map(|e| {
            (
                e["text"]["text"].as_str().unwrap_or_default().to_string(),
                e["action_id"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// All the text of a message body: fallback and blocks.
pub fn all_text(body: &Value) -> String {
    format!(
        "{} {}",
        body["text"].as_str().unwrap_or_default(),
        body["blocks"]
    )
}
