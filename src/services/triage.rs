//! Triage as a service: one triage per cause, for chat and alerts alike.
//!
//! A triage that people may act on (a summary with buttons) is recorded in the journal and
//! kept under an opaque id, so a click on its buttons finds the report the summary showed.
//! One triage per cause: the alert intake shares one running triage between all incidents
//! that trigger together and reuses a finished one for `alerts.triage_reuse`; chat commands
//! about one role share a running triage and reuse one for [`CHAT_REUSE`]. Five services
//! failing, or twenty people typing `/vault-triage`, cost one canary login. No triage is
//! shared across a fix (see [`super::changes`]). The reviewer watch's and the executor's looks
//! are neither shared, recorded nor kept.
//!
//! Each cluster of the config (`[[clusters]]`, or the one `default` cluster) has its own
//! clients and target; every triage names its cluster, and sharing is per cluster.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use tracing::Instrument as _;

use super::Changes;
use crate::diagnosis::Report;
use crate::probes::{ProbeTarget, Probes, triage};
use crate::store::{Event, Record, Store, StoreError};

/// How long a chat command reuses a triage that finished before it: twenty people typing
/// `/vault-triage` at once cost one canary login, and a command a minute later sees news.
pub const CHAT_REUSE: Duration = Duration::from_secs(30);

/// How long a summary's buttons keep working (its report is kept that long).
pub const TRIAGE_TTL: Duration = Duration::from_secs(24 * 3600);
/// Most reports kept for buttons; the oldest goes first.
pub const MAX_KEPT: usize = 1000;
/// Prefix of triage ids.
const ID_PREFIX: &str = "tri_";

/// A kept triage: its id (what buttons carry) and its report.
#[derive(Debug, Clone)]
pub struct Triaged {
    pub id: String,
    pub report: Arc<Report>,
}

/// A kept triage as a button finds it.
#[derive(Debug, Clone)]
pub struct Kept {
    pub report: Arc<Report>,
    /// The incident it was made for, if any.
    pub incident: Option<String>,
}

struct Stored {
    kept: Kept,
    at: Instant,
}

struct Shared {
    at: Instant,
    /// [`Changes::current`] when the triage started.
    generation: u64,
    triaged: Triaged,
}

/// What a shared triage is shared between (within one cluster).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Cause {
    /// Incidents from the alert intake.
    Alerts,
    /// Chat commands (and buttons) about one role, or the canary role (`None`).
    Chat { role: Option<String> },
}

/// One cluster's clients and what to triage there.
pub struct ClusterTarget {
    pub name: String,
    pub probes: Probes,
    pub target: ProbeTarget,
}

/// Runs triages, keeps the ones people may act on, and shares one per cluster and cause.
pub struct TriageService {
    /// In config order; never empty.
    clusters: Vec<ClusterTarget>,
    store: Arc<Store>,
    reuse: Duration,
    /// The bot's own changes: no triage from before one is shared after it.
    changes: Changes,
    kept: DashMap<String, Stored>,
    shared: DashMap<(String, Cause), Arc<tokio::sync::Mutex<Option<Shared>>>>,
}

impl TriageService {
    /// One cluster: `target` is its configured canary; `reuse` the window in which the alert
    /// intake reuses a finished triage.
    pub fn new(
        probes: Probes,
        target: ProbeTarget,
        store: Arc<Store>,
        reuse: Duration,
        changes: Changes,
    ) -> Self {
        let name = target.cluster.clone();
        Self::for_clusters(
            vec![ClusterTarget {
                name,
                probes,
                target,
            }],
            store,
            reuse,
            changes,
        )
    }

    /// Several clusters, in config order (at least one).
    pub fn for_clusters(
        clusters: Vec<ClusterTarget>,
        store: Arc<Store>,
        reuse: Duration,
        changes: Changes,
    ) -> Self {
        assert!(!clusters.is_empty(), "a triage service needs a cluster");
        Self {
            clusters,
            store,
            reuse,
            changes,
            kept: DashMap::new(),
            shared: DashMap::new(),
        }
    }

    /// The first cluster's clients (the Vault client is the same for every cluster).
    pub fn probes(&self) -> &Probes {
        &self.clusters[0].probes
    }

    /// The clusters' names, in config order.
    pub fn clusters(&self) -> Vec<String> {
        self.clusters.iter().map(|c| c.name.clone()).collect()
    }

    /// Whether several clusters are watched.
    pub fn is_fleet(&self) -> bool {
        self.clusters.len() > 1
    }

    /// Whether `name` is one of the clusters.
    pub fn has_cluster(&self, name: &str) -> bool {
        self.clusters.iter().any(|c| c.name == name)
    }

    /// The cluster named `name`; the first one for a name that is not configured (callers
    /// check names from outside with [`TriageService::has_cluster`]).
    fn cluster(&self, name: &str) -> &ClusterTarget {
        self.clusters
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| {
                tracing::warn!(cluster = name, "no such cluster; the first one is triaged");
                &self.clusters[0]
            })
    }

    /// The first cluster's name (the only one without `[[clusters]]`).
    pub fn first(&self) -> &str {
        &self.clusters[0].name
    }

    /// The first cluster, triaged by nobody who acts on it (the demo, the tests); its log
    /// lines carry `label`.
    pub async fn look(&self, label: &str) -> Report {
        self.look_in(&self.clusters[0].name, label).await
    }

    /// A triage of `cluster` nobody acts on (the reviewer watch); its log lines carry `label`.
    pub async fn look_in(&self, cluster: &str, label: &str) -> Report {
        let c = self.cluster(cluster);
        Box::pin(triage(&c.probes, &c.target))
            .instrument(tracing::info_span!("triage", incident = %label, cluster = %c.name))
            .await
    }

    /// A fresh triage of `cluster` people may act on: recorded in the journal (for
    /// `incident`, if any) and kept for its buttons. Its log lines carry `label`.
    pub async fn run(
        &self,
        cluster: &str,
        role: Option<String>,
        incident: Option<String>,
        label: &str,
    ) -> Triaged {
        let c = self.cluster(cluster);
        let target = match role {
            Some(role) => c.target.with_role(role),
            None => c.target.clone(),
        };
        let report = Box::pin(triage(&c.probes, &target))
            .instrument(tracing::info_span!("triage", incident = %label, cluster = %c.name))
            .await;
        if let Err(e) = self.record(&report, incident.as_deref()).await {
            tracing::error!(error = %e, "a finished triage could not be journaled");
        }
        self.keep(report, incident)
    }

    /// One triage per cause for the alert intake: a triage that finished within
    /// `alerts.triage_reuse` is handed out again; incidents that arrive while one runs wait
    /// for it.
    pub async fn run_shared(&self, cluster: &str, incident: &str) -> Triaged {
        self.shared(cluster, Cause::Alerts, Some(incident), incident, self.reuse)
            .await
    }

    /// One triage per cause for chat: commands about the same role share the triage that is
    /// running and reuse one that finished within `reuse` (with [`Duration::ZERO`], a caller
    /// joins a running triage but never takes one that finished before it arrived).
    pub async fn run_for_chat(
        &self,
        cluster: &str,
        role: Option<String>,
        label: &str,
        reuse: Duration,
    ) -> Triaged {
        self.shared(cluster, Cause::Chat { role }, None, label, reuse)
            .await
    }

    async fn shared(
        &self,
        cluster: &str,
        cause: Cause,
        incident: Option<&str>,
        label: &str,
        reuse: Duration,
    ) -> Triaged {
        let arrived = Instant::now();
        let role = match &cause {
            Cause::Chat { role } => role.clone(),
            Cause::Alerts => None,
        };
        // The slot is cloned out of the map: no map guard is held across the wait.
        let cluster = self.cluster(cluster).name.clone();
        let slot = self
            .shared
            .entry((cluster.clone(), cause))
            .or_default()
            .clone();
        let mut current = slot.lock().await;
        // Fresh enough: finished no earlier than `reuse` before this caller arrived (a
        // triage that finished while the caller waited always is), and no fix started or
        // ended since it started.
        if let Some(s) = current.as_ref()
            && s.at + reuse >= arrived
            && s.generation == self.changes.current()
        {
            return s.triaged.clone();
        }
        let generation = self.changes.current();
        let triaged = self
            .run(&cluster, role, incident.map(str::to_string), label)
            .await;
        *current = Some(Shared {
            at: Instant::now(),
            generation,
            triaged: triaged.clone(),
        });
        triaged
    }

    /// The kept triage a button names, while it is kept.
    pub fn kept(&self, id: &str) -> Option<Kept> {
        self.kept
            .get(id)
            .filter(|s| s.at.elapsed() < TRIAGE_TTL)
            .map(|s| s.kept.clone())
    }

    /// Records a finished triage in the audit trail.
    pub async fn record(&self, report: &Report, incident: Option<&str>) -> Result<(), StoreError> {
        self.store
            .record(
                Record::event(
                    chrono::Utc::now(),
                    Event::TriageCompleted {
                        incident: incident.map(str::to_owned),
                        cluster: report.evidence.target.cluster.clone(),
                        code: report.verdict.code.as_str().into(),
                        summary: report.verdict.headline.clone(),
                    },
                )
                .incident(incident),
            )
            .await
            .map(|_| ())
    }

    fn keep(&self, report: Report, incident: Option<String>) -> Triaged {
        let now = Instant::now();
        self.kept
            .retain(|_, t| now.duration_since(t.at) < TRIAGE_TTL);
        if self.kept.len() >= MAX_KEPT
            && let Some(oldest) = self
                .kept
                .iter()
                .min_by_key(|t| t.at)
                .map(|t| t.key().clone())
        {
            self.kept.remove(&oldest);
        }
        let id = crate::id::unguessable(ID_PREFIX);
        let report = Arc::new(report);
        self.kept.insert(
            id.clone(),
            Stored {
                kept: Kept {
                    report: report.clone(),
                    incident,
                },
                at: now,
            },
        );
        Triaged { id, report }
    }
}
