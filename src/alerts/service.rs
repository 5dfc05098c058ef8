//! The intake service: the webhook endpoints, the journaled incident store, and the worker
//! that keeps each incident's root message and thread up to date and triggers one triage per
//! cause.
//!
//! An endpoint verifies, parses and records the snapshot in the state (committed), answers,
//! and hands the incident to the worker. The worker runs one task per incident at a time and
//! coalesces whatever arrived meanwhile into one edit and one thread note.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::{DateTime, Utc};
use dashmap::DashMap;

use super::auth::{AlertAuth, AuthError, GRAFANA_SIGNATURE_HEADER};
use super::incident::{Delta, Incident, incident_id};
use super::payload::{AlertGroup, PayloadError, QuickView, Source, parse};
use super::render;
use crate::chat::ChatPlatform;
use crate::config::{AlertsSection, ChatSection, Platform};
use crate::services::Services;
use crate::services::keyed::KeyedLocks;
use crate::store::{Change, Event, Record, Store};

/// Incidents, their messages and their triage.
pub struct AlertService {
    services: Arc<Services>,
    auth: AlertAuth,
    settings: AlertsSection,
    defaults: ChatSection,
    store: Arc<Store>,
    incidents: DashMap<String, Incident>,
    pending: DashMap<String, Delta>,
    /// One worker task per incident at a time (held while chat is told).
    locks: KeyedLocks,
    /// One change of an incident at a time (held while it is recorded, never across chat).
    writing: KeyedLocks,
    chats: Vec<Arc<dyn ChatPlatform>>,
}

impl AlertService {
    /// Builds the service with the live incidents (with their root messages). Incidents are
    /// posted on every platform in `chats` that has a channel for them.
    pub fn new(
        services: Arc<Services>,
        chats: Vec<Arc<dyn ChatPlatform>>,
        live: Vec<Incident>,
    ) -> Arc<Self> {
        let settings = services.config.alerts.clone();
        let defaults = services.config.chat.clone();
        let store = services.store.clone();
        let auth = AlertAuth::from_config(&settings);
        let incidents: DashMap<String, Incident> =
            live.into_iter().map(|i| (i.id.clone(), i)).collect();
        Arc::new(Self {
            services,
            auth,
            settings,
            defaults,
            store,
            incidents,
            pending: DashMap::new(),
            locks: KeyedLocks::default(),
            writing: KeyedLocks::default(),
            chats,
        })
    }

    /// The `/alerts/*` routes.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/alerts/alertmanager", post(handle_alertmanager))
            .route("/alerts/grafana", post(handle_grafana))
            .layer(DefaultBodyLimit::max(self.settings.max_body_bytes))
            .with_state(self.clone())
    }

    /// A copy of an incident.
    pub fn incident(&self, id: &str) -> Option<Incident> {
        self.incidents.get(id).map(|i| i.clone())
    }

    pub fn incidents(&self) -> Vec<Incident> {
        self.incidents.iter().map(|i| i.clone()).collect()
    }

    /// How many incidents are in memory.
    pub fn len(&self) -> usize {
        self.incidents.len()
    }

    pub fn is_empty(&self) -> bool {
        self.incidents.is_empty()
    }

    /// Forgets incidents resolved before `now - retention` (their records stay in the
    /// database); returns how many.
    pub fn prune(&self, now: DateTime<Utc>, retention: std::time::Duration) -> usize {
        let Ok(retention) = chrono::Duration::from_std(retention) else {
            return 0;
        };
        let cutoff = now - retention;
        let old: Vec<String> = self
            .incidents
            .iter()
            .filter(|i| i.resolved_at.is_some_and(|at| at < cutoff))
            .map(|i| i.key().clone())
            .collect();
        for id in &old {
            self.incidents.remove(id);
            self.pending.remove(id);
        }
        old.len()
    }

    /// Records a snapshot. `Some(id)` when it changed the incident (then it is recorded and
    /// the worker has something to tell), `None` for a repeat.
    pub async fn ingest(
        &self,
        group: &AlertGroup,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, String> {
        let id = incident_id(&group.receiver, &group.group_key);
        // A repeated delivery is decided under a shared map guard, without a copy.
        if self
            .incidents
            .get(&id)
            .is_some_and(|i| i.unchanged_by(group))
        {
            return Ok(None);
        }
        // One change of this incident at a time; a new incident enters the map only once it
        // is recorded.
        let _one_at_a_time = self.writing.lock(&id).await;
        let mut next = match self.incidents.get(&id) {
            Some(i) => i.clone(),
            None => Incident::open(group, now),
        };
        let delta = next.apply(group, now);
        if delta.is_empty() && !delta.incident_resolved {
            return Ok(None);
        }
        self.record(&id, &next, now)
            .await
            .map_err(|e| e.to_string())?;
        self.incidents.insert(id.clone(), next);
        let merged = match self.pending.remove(&id) {
            Some((_, before)) => render::merge(before, delta),
            None => delta,
        };
        self.pending.insert(id.clone(), merged);
        Ok(Some(id))
    }

    async fn record(
        &self,
        id: &str,
        incident: &Incident,
        now: DateTime<Utc>,
    ) -> Result<(), crate::store::StoreError> {
        let payload = serde_json::to_value(incident)?;
        self.store
            .record(
                Record::event(
                    now,
                    Event::IncidentUpdated {
                        incident: id.to_string(),
                        payload: payload.clone(),
                    },
                )
                .incident(Some(id))
                .change(Change::Incident {
                    id,
                    doc: &payload,
                    resolved_at: incident.resolved_at,
                }),
            )
            .await
            .map(|_| ())
    }

    async fn persist(&self, id: &str, change: impl FnOnce(&mut Incident)) {
        let _one_at_a_time = self.writing.lock(id).await;
        let Some(mut next) = self.incidents.get(id).map(|i| i.clone()) else {
            return;
        };
        change(&mut next);
        match self.record(id, &next, Utc::now()).await {
            Ok(()) => {
                self.incidents.insert(id.to_string(), next);
            }
            Err(e) => {
                tracing::error!(incident = id, error = %e, "the state could not record an incident change")
            }
        }
    }

    /// The channel of `platform` for an incident: the first matching route, else `[chat]`.
    fn channel(&self, i: &Incident, platform: Platform) -> Option<String> {
        let matches = |labels: &BTreeMap<String, String>| {
            labels
                .iter()
                .all(|(k, v)| i.common_labels.get(k) == Some(v) || i.group_labels.get(k) == Some(v))
        };
        match self.settings.routes.iter().find(|r| matches(&r.labels)) {
            Some(route) => route.channel(platform),
            None => self.defaults.channel(platform),
        }
        .map(str::to_string)
    }

    /// Brings an incident's messages up to date; one task per incident at a time.
    pub async fn process(self: Arc<Self>, id: String) {
        let _one_at_a_time = self.locks.lock(&id).await;
        let Some((_, delta)) = self.pending.remove(&id) else {
            return; // an earlier task already told everything
        };
        let Some(incident) = self.incident(&id) else {
            return;
        };
        for chat in &self.chats {
            let platform = chat.platform();
            let Some(channel) = self.channel(&incident, platform) else {
                continue;
            };
            match incident.roots.get(&platform) {
                None => match chat.post(&channel, &render::root(&incident)).await {
                    Ok(at) => {
                        self.persist(&id, |i| {
                            i.roots.insert(platform, at);
                        })
                        .await
                    }
                    Err(e) => {
                        tracing::warn!(incident = %id, %platform, error = %e, "the incident's root message could not be posted")
                    }
                },
                Some(root) => {
                    if let Err(e) = chat.update(root, &render::root(&incident)).await {
                        tracing::warn!(incident = %id, %platform, error = %e, "the incident's root message could not be updated");
                    }
                    if let Some(note) = render::note(&incident, &delta)
                        && let Err(e) = chat.reply_in_thread(root, &note).await
                    {
                        tracing::warn!(incident = %id, %platform, error = %e, "a thread note could not be posted");
                    }
                }
            }
        }
        let incident = self.incident(&id).unwrap_or(incident);
        let wants_triage = incident.triage.is_none()
            && !incident.is_resolved()
            && self.settings.trigger.matches(&incident);
        if wants_triage {
            self.triage_into_thread(&id).await;
        }
    }

    /// Posts the cause's one triage (shared with every incident that triggers with it) in
    /// the incident's threads: of the cluster its alerts name (`alerts.cluster_label`), or of
    /// every cluster, in one summary, when they name none.
    async fn triage_into_thread(&self, id: &str) {
        let Some(incident) = self.incident(id) else {
            return;
        };
        let triage = &self.services.triage;
        let (clusters, unknown) = pick_clusters(
            &triage.clusters(),
            incident.clusters(&self.settings.cluster_label),
        );
        let triaged =
            futures::future::join_all(clusters.iter().map(|c| triage.run_shared(c, id))).await;
        let mut msg = match triaged.as_slice() {
            [one] => crate::chat::render::summary(&one.report, &one.id, self.services.policy()),
            many => {
                let views = crate::chat::fleet::views(many);
                crate::chat::fleet::summary(&views, self.services.policy(), Utc::now())
            }
        };
        if !unknown.is_empty() {
            msg.sections.insert(
                0,
                crate::chat::message::Section::Text {
                    text: format!(
                        "⚠️ The alerts name {} by `{}`, which the config does not list; triaged {}.",
                        unknown.join(", "),
                        self.settings.cluster_label,
                        clusters.join(", ")
                    ),
                },
            );
        }
        let worst = crate::chat::fleet::worst_code(&crate::chat::fleet::views(&triaged));
        let Some(incident) = self.incident(id) else {
            return;
        };
        for chat in &self.chats {
            let Some(root) = incident.roots.get(&chat.platform()) else {
                continue;
            };
            if let Err(e) = chat.reply_in_thread(root, &msg).await {
                tracing::warn!(incident = id, error = %e, "the triage summary could not be posted in the thread");
            }
        }
        self.persist(id, |i| i.triage = worst.map(|c| c.as_str().to_string()))
            .await;
        if let Some(updated) = self.incident(id) {
            for chat in &self.chats {
                if let Some(root) = updated.roots.get(&chat.platform()) {
                    let _ = chat.update(root, &render::root(&updated)).await;
                }
            }
        }
    }
}

/// The clusters to triage for an incident that names `named` (`None`: names none), in config
/// order, and the names the config does not list. An incident that names no configured
/// cluster concerns them all; with one cluster (no `[[clusters]]`) the label is not read.
fn pick_clusters(
    configured: &[String],
    named: Option<std::collections::BTreeSet<String>>,
) -> (Vec<String>, Vec<String>) {
    let Some(named) = named.filter(|_| configured.len() > 1) else {
        return (configured.to_vec(), Vec::new());
    };
    let picked: Vec<String> = configured
        .iter()
        .filter(|c| named.contains(*c))
        .cloned()
        .collect();
    let unknown: Vec<String> = named
        .into_iter()
        .filter(|n| !configured.contains(n))
        .collect();
    if picked.is_empty() {
        (configured.to_vec(), unknown)
    } else {
        (picked, unknown)
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(serde_json::json!({ "error": message.into() })),
    )
        .into_response()
}

async fn handle_alertmanager(
    State(svc): State<Arc<AlertService>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(svc, Source::Alertmanager, headers, body).await
}

async fn handle_grafana(
    State(svc): State<Arc<AlertService>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(svc, Source::Grafana, headers, body).await
}

async fn handle(
    svc: Arc<AlertService>,
    source: Source,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let signature = match source {
        Source::Grafana => header(GRAFANA_SIGNATURE_HEADER),
        Source::Alertmanager => None,
    };
    let timestamp = svc
        .auth
        .grafana_timestamp_header
        .as_deref()
        .and_then(&header);
    if let Err(e) = svc.auth.check(
        header("authorization"),
        signature,
        timestamp,
        &body,
        Utc::now().timestamp(),
    ) {
        tracing::info!(source = ?source, reason = %e, "alert webhook refused");
        return match e {
            AuthError::NotConfigured | AuthError::Missing | AuthError::Wrong | AuthError::Stale => {
                error(StatusCode::UNAUTHORIZED, e.to_string())
            }
        };
    }
    // A repeated delivery (Alertmanager resends whole snapshots) is recognised from a light
    // read of the body, without building the payload model.
    if let Ok(view) = serde_json::from_slice::<QuickView>(&body)
        && view.version_fits(source)
        && let Some(key) = view.group_key.as_deref().filter(|k| !k.is_empty())
    {
        let id = incident_id(view.receiver(), key);
        if svc
            .incidents
            .get(&id)
            .is_some_and(|i| i.unchanged_by_view(&view))
        {
            return (
                StatusCode::OK,
                axum::Json(serde_json::json!({ "incident": id, "changed": false })),
            )
                .into_response();
        }
    }
    let group = match parse(source, &body) {
        Ok(g) => g,
        Err(e @ (PayloadError::Json(_) | PayloadError::Shape(_))) => {
            return error(StatusCode::BAD_REQUEST, e.to_string());
        }
    };
    match svc.ingest(&group, Utc::now()).await {
        Ok(Some(id)) => {
            use tracing::Instrument as _;
            let span = tracing::info_span!("incident", incident = %id);
            svc.services
                .work
                .spawn(svc.clone().process(id.clone()).instrument(span));
            (
                StatusCode::OK,
                axum::Json(serde_json::json!({ "incident": id, "changed": true })),
            )
                .into_response()
        }
        Ok(None) => {
            let id = incident_id(&group.receiver, &group.group_key);
            (
                StatusCode::OK,
                axum::Json(serde_json::json!({ "incident": id, "changed": false })),
            )
                .into_response()
        }
        // A retry helps: Alertmanager retries 5xx.
        Err(e) => {
            tracing::error!(error = %e, "an alert snapshot could not be recorded");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the snapshot could not be recorded; retry",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::pick_clusters;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn an_incident_goes_to_the_clusters_it_names_or_to_all() {
        let fleet = names(&["a", "b", "c"]);
        let named = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect());
        assert_eq!(
            pick_clusters(&fleet, named(&["c", "a"])),
            (names(&["a", "c"]), vec![]),
            "in config order"
        );
        assert_eq!(pick_clusters(&fleet, None), (fleet.clone(), vec![]));
        assert_eq!(
            pick_clusters(&fleet, named(&["b", "zz"])),
            (names(&["b"]), names(&["zz"]))
        );
        assert_eq!(
            pick_clusters(&fleet, named(&["zz"])),
            (fleet.clone(), names(&["zz"])),
            "naming no configured cluster concerns them all"
        );
        let one = names(&["default"]);
        assert_eq!(
            pick_clusters(&one, named(&["prod"])),
            (one.clone(), vec![]),
            "with one cluster the label is not read"
        );
    }
}
