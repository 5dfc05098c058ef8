//! Discord test harness: signed interactions as Discord sends them, a fake Discord REST API
//! (and gateway) on loopback that records every call.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use ed25519_dalek::{Signer as _, SigningKey};
use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use vault_triage::config::{DiscordSettings, Secret};

pub const APP: &str = "1000000000000000001";
pub const BOT_USER: &str = "1000000000000000002";
pub const GUILD: &str = "1100000000000000001";
pub const CHANNEL: &str = "1200000000000000001";
pub const COMMAND_ID: &str = "1300000000000000001";
pub const BOT_TOKEN: &str = "test-bot-token";
pub const ALICE: &str = "1001";
pub const BOB: &str = "1002";
pub const CAROL: &str = "1003";
/// How long any wait on the bot may take.
pub const WAIT: Duration = Duration::from_secs(90);

pub fn signing_key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

pub fn public_key_hex() -> String {
    hex::encode(signing_key().verifying_key().to_bytes())
}

/// The `X-Signature-Ed25519` Discord would send for `timestamp ‖ body`.
pub fn sign(timestamp: &str, body: &[u8]) -> String {
    let mut msg = timestamp.as_bytes().to_vec();
    msg.extend_from_slice(body);
    hex::encode(signing_key().sign(&msg).to_bytes())
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1_400_000_000_000_000_001);

pub fn snowflake() -> String {
    NEXT_ID.fetch_add(1, Ordering::Relaxed).to_string()
}

pub fn user(id: &str) -> Value {
    let name = match id {
        ALICE => "alice",
        BOB => "bob",
        CAROL => "carol",
        _ => "someone",
    };
    json!({"id": id, "username": name, "discriminator": "0", "avatar": null, "global_name": null})
}

fn member(id: &str) -> Value {
    json!({
        "user": user(id), "roles": ["4200000000000000001"], "deaf": false, "mute": false,
        "flags": 0, "joined_at": "2026-01-01T00:00:00.000000+00:00", "nick": null
    })
}

fn envelope(kind: u8, token: &str, user_id: &str, channel: &str, channel_type: u8) -> Value {
    json!({
        "id": snowflake(), "application_id": APP, "type": kind, "token": token, "version": 1,
        "locale": "en-US", "guild_locale": "en-US", "entitlements": [],
        "attachment_size_limit": 10485760, "guild_id": GUILD, "channel_id": channel,
        "channel": {"id": channel, "type": channel_type},
        "member": member(user_id),
        "authorizing_integration_owners": {"0": GUILD}, "context": 0
    })
}

/// `/vault-triage <sub> [name:value…]` as Discord sends it.
pub fn command(token: &str, user_id: &str, sub: &str, options: &[(&str, &str)]) -> Value {
    let mut i = envelope(2, token, user_id, CHANNEL, 0);
    let opts: Vec<Value> = options
        .iter()
        .map(|(n, v)| json!({"name": n, "type": 3, "value": v}))
        .collect();
    i["data"] = json!({
        "id": COMMAND_ID, "name": "vault-triage", "type": 1,
        "options": [{"name": sub, "type": 1, "options": opts}]
    });
    i
}

/// A click on `custom_id` of `message`, in `channel` (type 11 for a thread).
pub fn click(
    token: &str,
    user_id: &str,
    custom_id: &str,
    message: Value,
    channel_type: u8,
) -> Value {
    let channel = message["channel_id"].as_str().unwrap().to_string();
    let mut i = envelope(3, token, user_id, &channel, channel_type);
    i["data"] = json!({"custom_id": custom_id, "component_type": 2});
    i["message"] = message;
    i
}

/// A full Message object.
pub fn message(id: &str, channel: &str, body: &Value) -> Value {
    json!({
        "id": id, "channel_id": channel,
        "author": {"id": BOT_USER, "username": "vault-triage", "discriminator": "0000", "avatar": null, "bot": true},
        "content": body.get("content").cloned().unwrap_or(json!("")),
        "timestamp": "2026-11-28T09:00:00.000000+00:00", "edited_timestamp": null,
        "tts": false, "mention_everyone": false, "mentions": [], "mention_roles": [],
        "attachments": [], "embeds": body.get("embeds").cloned().unwrap_or(json!([])),
        "components": body.get("components").cloned().unwrap_or(json!([])),
        "pinned": false, "type": 0
    })
}

/// One call the bot made.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    /// Without `/api/v10`.
    pub path: String,
    pub body: Value,
    pub auth: Option<String>,
    /// What the fake answered.
    pub response: Value,
}

impl Call {
    pub fn is(&self, method: &str, prefix: &str, suffix: &str) -> bool {
        self.method == method && self.path.starts_with(prefix) && self.path.ends_with(suffix)
    }
    /// The id of the message or thread the fake answered with.
    pub fn answered_id(&self) -> String {
        self.response["id"].as_str().unwrap_or_default().to_string()
    }
    pub fn embed(&self) -> &Value {
        &self.body["embeds"][0]
    }
    /// `(label, style, custom_id)` of every button.
    pub fn buttons(&self) -> Vec<(String, u64, String)> {
        self.body["components"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
            .map(|b| {
                (
                    b["label"].as_str().unwrap_or_default().to_string(),
                    b["style"].as_u64().unwrap_or_default(),
                    b["custom_id"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }
}

#[derive(Default)]
struct FakeState {
    calls: Mutex<Vec<Call>>,
    originals: Mutex<HashMap<String, String>>,
    unexpected: Mutex<Vec<String>>,
    ws_url: Mutex<Option<String>>,
    /// Failures to answer with: (path fragment, HTTP status, Discord code, message), once each.
    failures: Mutex<Vec<(String, u16, i64, String)>>,
    notify: Notify,
}

/// A fake Discord REST API on loopback.
pub struct FakeDiscord {
    pub base: String,
    state: Arc<FakeState>,
}

impl FakeDiscord {
    pub async fn start() -> FakeDiscord {
        let state = Arc::new(FakeState::default());
        let s = state.clone();
        let app = Router::new().fallback(
            move |method: Method, uri: Uri, headers: axum::http::HeaderMap, body: Bytes| {
                let s = s.clone();
                async move { answer(&s, method, uri, headers, body) }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeDiscord {
            base: format!("http://{addr}"),
            state,
        }
    }

    pub fn set_gateway(&self, url: &str) {
        *self.state.ws_url.lock().unwrap() = Some(url.to_string());
    }

    /// The next call whose path contains `fragment` fails with Discord's error shape.
    pub fn fail_next(&self, fragment: &str, status: u16, code: i64, message: &str) {
        self.state
            .failures
            .lock()
            .unwrap()
            .push((fragment.into(), status, code, message.into()));
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.calls.lock().unwrap().clone()
    }

    pub fn unexpected(&self) -> Vec<String> {
        self.state.unexpected.lock().unwrap().clone()
    }

    /// Waits until `n` calls match `pred`; returns them.
    pub async fn wait_for(&self, what: &str, n: usize, pred: impl Fn(&Call) -> bool) -> Vec<Call> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.state.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let found: Vec<Call> = self.calls().into_iter().filter(|c| pred(c)).collect();
            if found.len() >= n {
                return found;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "timed out waiting for {what}; calls: {:#?}; unexpected: {:?}",
                    self.calls()
                        .iter()
                        .map(|c| format!("{} {}", c.method, c.path))
                        .collect::<Vec<_>>(),
                    self.unexpected()
                );
            }
        }
    }
}

fn answer(
    s: &FakeState,
    method: Method,
    uri: Uri,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    let full = uri.path().to_string();
    let path = full.strip_prefix("/api/v10").unwrap_or(&full).to_string();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let failure = {
        let mut failures = s.failures.lock().unwrap();
        let at = failures.iter().position(|f| path.contains(&f.0));
        at.map(|i| failures.remove(i))
    };
    if let Some((_, status, code, message)) = failure {
        s.calls.lock().unwrap().push(Call {
            method: method.to_string(),
            path,
            body,
            auth,
            response: json!({"code": code, "message": message}),
        });
        s.notify.notify_waiters();
        return (
            StatusCode::from_u16(status).unwrap(),
            axum::Json(json!({"code": code, "message": message})),
        )
            .into_response();
    }
    let reply = match (method.as_str(), parts.as_slice()) {
        ("PATCH", ["webhooks", app, token, "messages", "@original"]) if *app == APP => {
            let id = s
                .originals
                .lock()
                .unwrap()
                .entry(token.to_string())
                .or_insert_with(snowflake)
                .clone();
            Some((StatusCode::OK, message(&id, CHANNEL, &body)))
        }
        ("POST", ["webhooks", app, _token]) if *app == APP => {
            Some((StatusCode::OK, message(&snowflake(), CHANNEL, &body)))
        }
        ("POST", ["channels", channel, "messages", _msg, "threads"]) => Some((
            StatusCode::CREATED,
            json!({
                "id": snowflake(), "type": 11, "guild_id": GUILD, "parent_id": channel,
                "name": body["name"], "owner_id": BOT_USER, "flags": 0,
                "message_count": 0, "member_count": 1, "rate_limit_per_user": 0, "total_message_sent": 0,
                "thread_metadata": {"archived": false, "auto_archive_duration": 1440,
                    "archive_timestamp": "2026-11-28T09:00:00.000000+00:00", "locked": false}
            }),
        )),
        ("POST", ["channels", channel, "messages"]) => {
            Some((StatusCode::OK, message(&snowflake(), channel, &body)))
        }
        ("PATCH", ["channels", channel, "messages", id]) => {
            Some((StatusCode::OK, message(id, channel, &body)))
        }
        ("POST", ["interactions", _id, _token, "callback"]) => {
            Some((StatusCode::NO_CONTENT, Value::Null))
        }
        ("GET", ["gateway"]) | ("GET", ["gateway", "bot"]) => {
            s.ws_url.lock().unwrap().clone().map(|url| {
                (
                    StatusCode::OK,
                    json!({"url": url, "shards": 1, "session_start_limit":
                    {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}}),
                )
            })
        }
        ("PUT", ["applications", app, "commands"])
        | ("PUT", ["applications", app, "guilds", _, "commands"])
            if *app == APP =>
        {
            let cmds: Vec<Value> = body
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|mut c| {
                    c["id"] = json!(snowflake());
                    c["application_id"] = json!(APP);
                    c["version"] = json!(snowflake());
                    c
                })
                .collect();
            Some((StatusCode::OK, Value::Array(cmds)))
        }
        _ => None,
    };
    let recorded = Call {
        method: method.to_string(),
        path: path.clone(),
        body,
        auth,
        response: reply.as_ref().map(|r| r.1.clone()).unwrap_or(Value::Null),
    };
    let response = match reply {
        Some((StatusCode::NO_CONTENT, _)) => StatusCode::NO_CONTENT.into_response(),
        Some((status, json)) => (status, axum::Json(json)).into_response(),
        None => {
            s.unexpected
                .lock()
                .unwrap()
                .push(format!("{method} {path}"));
            (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"message": "404: Not Found", "code": 0})),
            )
                .into_response()
        }
    };
    s.calls.lock().unwrap().push(recorded);
    s.notify.notify_waiters();
    response
}

/// A fake gateway: HELLO, IDENTIFY, READY, then whatever the test pushes.
pub struct FakeGateway {
    pub url: String,
    pub events: mpsc::UnboundedSender<Value>,
    pub identified: Arc<Notify>,
    pub identify: Arc<Mutex<Option<Value>>>,
}

impl FakeGateway {
    pub async fn start() -> FakeGateway {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let url = format!("ws://{addr}");
        let (tx, mut rx) = mpsc::unbounded_channel::<Value>();
        let identified = Arc::new(Notify::new());
        let identify = Arc::new(Mutex::new(None));
        let (idn, idv, resume) = (identified.clone(), identify.clone(), url.clone());
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            let hello = json!({"op": 10, "d": {"heartbeat_interval": 45000}, "s": null, "t": null});
            ws.send(WsMessage::Text(hello.to_string())).await.unwrap();
            let mut seq = 0u64;
            loop {
                tokio::select! {
                    frame = ws.next() => {
                        let Some(Ok(frame)) = frame else { break };
                        let WsMessage::Text(text) = frame else { continue };
                        let v: Value = serde_json::from_str(&text).unwrap();
                        match v["op"].as_u64() {
                            Some(2) => {
                                *idv.lock().unwrap() = Some(v.clone());
                                seq += 1;
                                let ready = json!({"op": 0, "t": "READY", "s": seq, "d": {
                                    "v": 10, "user": {"id": BOT_USER, "username": "vault-triage", "discriminator": "0000", "avatar": null, "bot": true},
                                    "guilds": [], "session_id": "session-1", "resume_gateway_url": resume,
                                    "application": {"id": APP, "flags": 0}
                                }});
                                ws.send(WsMessage::Text(ready.to_string())).await.unwrap();
                                idn.notify_waiters();
                                idn.notify_one();
                            }
                            Some(1) => {
                                ws.send(WsMessage::Text(json!({"op": 11}).to_string())).await.unwrap();
                            }
                            _ => {}
                        }
                    }
                    event = rx.recv() => {
                        let Some(d) = event else { break };
                        seq += 1;
                        let frame = json!({"op": 0, "t": "INTERACTION_CREATE", "s": seq, "d": d});
                        ws.send(WsMessage::Text(frame.to_string())).await.unwrap();
                    }
                }
            }
        });
        FakeGateway {
            url,
            events: tx,
            identified,
            identify,
        }
    }
}

/// Discord settings against the fake: the endpoint (public key) and/or the gateway.
pub fn settings(fake: &FakeDiscord, endpoint: bool, gateway: bool) -> DiscordSettings {
    DiscordSettings {
        bot_token: Some(Secret::new(BOT_TOKEN)),
        public_key: endpoint.then(public_key_hex),
        application_id: Some(APP.into()),
        api_url: Some(format!("{}/api/v10", fake.base)),
        gateway,
    }
}

/// Serves `router` on loopback; returns its base URL.
pub async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

/// Posts `body` to the interactions endpoint, signed now; returns status, body and how long
/// the answer took.
pub async fn post_signed(base: &str, body: &Value) -> (u16, String, Duration) {
    let raw = body.to_string();
    let ts = now().to_string();
    let sig = sign(&ts, raw.as_bytes());
    post_raw(base, raw, Some(&sig), Some(&ts)).await
}

pub async fn post_raw(
    base: &str,
    raw: String,
    sig: Option<&str>,
    ts: Option<&str>,
) -> (u16, String, Duration) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/discord/interactions"))
        .header("content-type", "application/json")
        .body(raw);
    if let Some(s) = sig {
        req = req.header("x-signature-ed25519", s);
    }
    if let Some(t) = ts {
        req = req.header("x-signature-timestamp", t);
    }
    let started = Instant::now();
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, text, started.elapsed())
}
