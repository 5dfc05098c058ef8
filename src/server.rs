//! The bot's HTTP server (`serve`): liveness, readiness and `/metrics`, plus the routes of the
//! chat platforms and the alert intake (design §5).
//!
//! Readiness does not depend on Vault or Kubernetes: when they are down the bot must still
//! answer chat and say so. With several replicas only the leader has an [`ActivePart`]: a follower
//! forwards every platform and alert request to the leader's address, so approvals, incidents
//! and threads have one writer.

use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tower::ServiceExt as _;

use futures::future::BoxFuture;

use crate::config::Platform;
use crate::leader::Role;

/// Marks a request a follower forwarded (it is never forwarded twice).
pub const FORWARDED: &str = "x-vault-triage-forwarded";
/// Largest body a follower forwards.
pub const MAX_FORWARD_BODY: usize = 8 * 1024 * 1024;
/// Longest wait for the leader's answer.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);

/// The router of liveness, readiness, metrics and the given platform routes (one replica, no
/// election: what the tests serve).
pub fn router(platforms: Vec<Router>) -> Router {
    platforms
        .into_iter()
        .fold(
            base().route("/readyz", get(|| async { "ready\n" })),
            Router::merge,
        )
        .layer(axum::middleware::from_fn(count_webhooks))
}

/// The source of an inbound platform or alert request, by path; `None` for the bot's own
/// endpoints (health, readiness, metrics).
pub fn webhook_source(path: &str) -> Option<&'static str> {
    match path {
        "/alerts/alertmanager" => Some("alertmanager"),
        "/alerts/grafana" => Some("grafana"),
        p => {
            let (first, _) = p.strip_prefix('/')?.split_once('/')?;
            first.parse::<Platform>().ok().map(Platform::as_str)
        }
    }
}

/// Counts every Slack, Discord and alert request by source and the status it was answered
/// with (`vault_triage_webhook_requests_total`), refusals included.
async fn count_webhooks(req: Request, next: axum::middleware::Next) -> Response {
    let source = webhook_source(req.uri().path());
    let response = next.run(req).await;
    if let Some(source) = source {
        crate::metrics::webhook(source, response.status().as_u16());
    }
    response
}

fn base<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/healthz", get(handle_healthz))
        .route("/metrics", get(handle_metrics))
}

async fn handle_healthz() -> &'static str {
    "ok\n"
}

async fn handle_metrics() -> ([(HeaderName, &'static str); 1], String) {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(),
    )
}

/// The stateful part of a running bot (built by the composition root): what a leading
/// replica serves, and how it stops. Only the leader has one.
pub trait ActivePart: Send {
    /// Every route of the chat platforms and the alert intake.
    fn router(&self) -> Router;
    /// Stops its background work and connections.
    fn stop(self: Box<Self>) -> BoxFuture<'static, ()>;
}

/// This replica: its role and, when it leads, its active part.
#[derive(Clone)]
pub struct Replica {
    inner: Arc<ReplicaInner>,
}

struct ReplicaInner {
    router: RwLock<Option<Router>>,
    active: Mutex<Option<Box<dyn ActivePart>>>,
    role: RwLock<Option<Role>>,
    http: reqwest::Client,
}

impl Default for Replica {
    fn default() -> Self {
        Self::new()
    }
}

impl Replica {
    pub fn new() -> Self {
        Self {
            inner: Arc::new(ReplicaInner {
                router: RwLock::new(None),
                active: Mutex::new(None),
                role: RwLock::new(None),
                http: reqwest::Client::builder()
                    .timeout(FORWARD_TIMEOUT)
                    .build()
                    .unwrap_or_default(),
            }),
        }
    }

    pub fn activate(&self, active: Box<dyn ActivePart>) {
        if let Ok(mut r) = self.inner.router.write() {
            *r = Some(active.router());
        }
        if let Ok(mut a) = self.inner.active.lock() {
            *a = Some(active);
        }
    }

    pub async fn deactivate(&self) {
        if let Ok(mut r) = self.inner.router.write() {
            *r = None;
        }
        let active = self.inner.active.lock().ok().and_then(|mut a| a.take());
        if let Some(a) = active {
            a.stop().await;
        }
    }

    pub fn is_active(&self) -> bool {
        self.router().is_some()
    }

    pub fn set_role(&self, role: Role) {
        if let Ok(mut r) = self.inner.role.write() {
            *r = Some(role);
        }
    }

    fn role(&self) -> Option<Role> {
        self.inner.role.read().ok().and_then(|r| r.clone())
    }

    fn router(&self) -> Option<Router> {
        self.inner.router.read().ok().and_then(|r| r.clone())
    }
}

async fn handle_readyz(State(r): State<Replica>) -> String {
    match r.role() {
        None => "ready\n".into(),
        Some(Role::Leader) => "ready (leader)\n".into(),
        Some(Role::Follower { leader: Some(l) }) => format!("ready (follower of {l})\n"),
        Some(Role::Follower { leader: None }) => "ready (follower, no leader known)\n".into(),
    }
}

fn unavailable(message: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(serde_json::json!({ "error": message })),
    )
        .into_response()
}

/// Every platform and alert request: handled here when this replica leads, forwarded to the
/// leader otherwise.
async fn dispatch(State(r): State<Replica>, req: Request) -> Response {
    if let Some(router) = r.router() {
        return match router.oneshot(req).await {
            Ok(resp) => resp,
            Err(never) => match never {},
        };
    }
    if req.headers().contains_key(FORWARDED) {
        return unavailable("this replica is not the leader; retry");
    }
    match r.role() {
        Some(Role::Follower {
            leader: Some(address),
        }) => forward(&r.inner.http, &address, req).await,
        _ => unavailable("no leader is elected yet; retry"),
    }
}

async fn forward(http: &reqwest::Client, leader: &str, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_FORWARD_BODY).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "body too large").into_response();
    };
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut out = http
        .request(parts.method.clone(), format!("{leader}{path}"))
        .body(body);
    for (name, value) in forwardable(&parts.headers) {
        out = out.header(name, value);
    }
    match out.header(FORWARDED, "1").send().await {
        Ok(resp) => {
            let status = resp.status();
            let content_type = resp
                .headers()
                .get(axum::http::header::CONTENT_TYPE)
                .cloned();
            let bytes = resp.bytes().await.unwrap_or_default();
            let mut response = (status, bytes).into_response();
            if let Some(ct) = content_type {
                response
                    .headers_mut()
                    .insert(axum::http::header::CONTENT_TYPE, ct);
            }
            response
        }
        Err(e) => {
            tracing::warn!(leader, error = %crate::error_chain(&e), "forwarding to the leader failed");
            unavailable("the leader did not answer; retry")
        }
    }
}

/// Headers of one hop only (RFC 9110 §7.6.1), never passed on by a proxy.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The request headers a follower passes to the leader: everything the platforms signed or
/// sent (signatures, timestamps, retry counts, credentials), without the hop-by-hop ones, the
/// ones `Connection` names, `Host` and `Content-Length` (the client sets both).
pub fn forwardable(
    headers: &axum::http::HeaderMap,
) -> Vec<(&axum::http::HeaderName, &axum::http::HeaderValue)> {
    let named: Vec<String> = headers
        .get_all(axum::http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .collect();
    headers
        .iter()
        .filter(|(name, _)| {
            let n = name.as_str();
            !HOP_BY_HOP.contains(&n)
                && !named.iter().any(|c| c == n)
                && *name != axum::http::header::HOST
                && *name != axum::http::header::CONTENT_LENGTH
        })
        .collect()
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    replica: Replica,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = base()
        .route("/readyz", get(handle_readyz))
        .fallback(dispatch)
        .with_state(replica)
        .layer(axum::middleware::from_fn(count_webhooks));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_follower_passes_on_what_was_signed_and_drops_what_belongs_to_one_hop() {
        let mut h = axum::http::HeaderMap::new();
        for (k, v) in [
            ("x-slack-signature", "v0=abc"),
            ("x-slack-request-timestamp", "1"),
            ("x-slack-retry-num", "1"),
            ("authorization", "Bearer t"),
            ("content-type", "application/json"),
            ("connection", "keep-alive, x-private-hop"),
            ("keep-alive", "timeout=5"),
            ("x-private-hop", "1"),
            ("transfer-encoding", "chunked"),
            ("te", "trailers"),
            ("upgrade", "h2c"),
            ("proxy-authorization", "Basic x"),
            ("host", "follower:8080"),
            ("content-length", "2"),
        ] {
            h.append(
                axum::http::HeaderName::from_static(k),
                axum::http::HeaderValue::from_static(v),
            );
        }
        let kept: Vec<&str> = forwardable(&h).iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            kept,
            [
                "x-slack-signature",
                "x-slack-request-timestamp",
                "x-slack-retry-num",
                "authorization",
                "content-type"
            ]
        );
    }

    #[test]
    fn platform_and_alert_paths_are_counted_and_the_bots_own_are_not() {
        assert_eq!(webhook_source("/alerts/alertmanager"), Some("alertmanager"));
        assert_eq!(webhook_source("/alerts/grafana"), Some("grafana"));
        assert_eq!(webhook_source("/slack/commands"), Some("slack"));
        assert_eq!(webhook_source("/slack/interactions"), Some("slack"));
        assert_eq!(webhook_source("/discord/interactions"), Some("discord"));
        for own in ["/metrics", "/healthz", "/readyz", "/", "/alerts/other"] {
            assert_eq!(webhook_source(own), None, "{own}");
        }
    }
}
