//! The composition root: builds the clients, the services, the conversation, the chat
//! platforms, the alert intake and the background work from configuration, once, for `serve`,
//! the demo and the tests alike. Nothing else in the crate wires these together.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::alerts::service::AlertService;
use crate::approval::Policy;
use crate::chat::{ChatBot, PlatformRuntime};
use crate::config::{ChatArgs, Cluster, ConnectionArgs, FileConfig};
use crate::kube::KubeClient;
use crate::probes::{ProbeTarget, Probes};
use crate::remediation::{PlanSettings, Remediator};
use crate::services::triage::ClusterTarget;
use crate::services::{Changes, Fixes, InFlight, Services, TriageService};
use crate::store::{Live, Store};
use crate::vault::VaultClient;

/// Longest interval between two approval-expiry sweeps (the sweep also wakes when the next
/// request is due).
pub const EXPIRY_SWEEP_EVERY: Duration = Duration::from_secs(30);
/// Shortest pause between two sweeps (a request that cannot be expired is not retried in a
/// busy loop).
pub const MIN_SWEEP_GAP: Duration = Duration::from_millis(250);
/// How often closed requests and resolved incidents past `[state] retention` leave memory.
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Builds the Vault and Kubernetes clients of the config's first cluster (the only one
/// without `[[clusters]]`).
pub async fn build_probes(conn: &ConnectionArgs, cfg: &FileConfig) -> anyhow::Result<Probes> {
    let first = cfg.clusters().remove(0);
    let mut one = build_fleet(conn, cfg, None, Some(&first.name)).await?;
    Ok(one.remove(0).probes)
}

/// The clusters of the config (or the one named `only`) with their clients and what to
/// triage, in config order. One Vault client serves them all (a cluster's namespace is a
/// header); each cluster has its own Kubernetes client.
pub async fn build_fleet(
    conn: &ConnectionArgs,
    cfg: &FileConfig,
    role: Option<String>,
    only: Option<&str>,
) -> anyhow::Result<Vec<ClusterProbes>> {
    let clusters = match only {
        Some(name) => vec![cfg.cluster(name)?],
        None => cfg.clusters(),
    };
    let timeout = cfg.probes.call_timeout;
    // The bot's own set-up first: a fault there stops the command (exit 1) with one sentence,
    // and never becomes a diagnosis of the system under triage.
    let vault = VaultClient::new(&conn.vault_settings()?, timeout)?;
    let builds = clusters.into_iter().map(|cluster| {
        let vault = match &cluster.vault_namespace {
            Some(ns) => vault.with_namespace(ns),
            None => vault.clone(),
        };
        let role = role.clone();
        async move {
            let kube = KubeClient::from_kubeconfig_context(
                conn.kubeconfig.as_deref(),
                cluster.context.as_deref(),
                timeout,
            )
            .await
            .map_err(|e| {
                if cfg.clusters.is_empty() {
                    e
                } else {
                    e.context(format!("cluster {}", cluster.name))
                }
            })?;
            let target = ProbeTarget::for_cluster(cfg, &cluster, role);
            anyhow::Ok(ClusterProbes {
                cluster,
                probes: Probes {
                    vault,
                    kube: Some(kube),
                    kube_unavailable: None,
                },
                target,
            })
        }
    });
    futures::future::try_join_all(builds).await
}

/// One cluster's clients and what to triage there.
pub struct ClusterProbes {
    pub cluster: Cluster,
    pub probes: Probes,
    pub target: ProbeTarget,
}

/// Builds the first cluster's remediator from configuration.
pub fn build_remediator(probes: Probes, cfg: &FileConfig) -> Remediator {
    let first = cfg.clusters().remove(0);
    build_cluster_remediator(probes, ProbeTarget::for_cluster(cfg, &first, None), cfg)
}

/// Builds the remediator of the cluster `target` names.
pub fn build_cluster_remediator(
    probes: Probes,
    target: ProbeTarget,
    cfg: &FileConfig,
) -> Remediator {
    let reviewer = target.reviewer.clone();
    let reviewer = reviewer.as_ref();
    Remediator {
        probes,
        target,
        settings: PlanSettings {
            reviewer: reviewer.map(|r| (r.namespace.clone(), r.service_account.clone())),
            reviewer_token_seconds: reviewer
                .map(|r| r.token_duration.as_secs() as i64)
                .unwrap_or(crate::remediation::plan::DEFAULT_REVIEWER_TOKEN_SECONDS),
            restart_concurrency: cfg.probes.restart_concurrency,
        },
        rollout_timeout: cfg.probes.rollout_timeout,
    }
}

/// Opens the state (`[state]`), takes the writer's term, loads the live state and builds the
/// services; also returns the live state (the conversation and the alert intake restore
/// their cards and incidents from it).
pub async fn build_services(
    conn: &ConnectionArgs,
    cfg: FileConfig,
) -> anyhow::Result<(Arc<Services>, Live)> {
    let fleet = build_fleet(conn, &cfg, None, None).await?;
    let policy = Policy::from_config(&cfg.approvals, &cfg.people)
        .context("in [[approvals]] / [[people]]")?;
    for warning in policy.warnings() {
        tracing::warn!("{warning}");
    }
    let store = Arc::new(
        Store::open_writer(&cfg.state)
            .await
            .context("opening the state ([state])")?,
    );
    let live = store
        .load_live(chrono::Utc::now(), cfg.state.retention)
        .await
        .context("loading the live state")?;
    let changes = Changes::default();
    let remediators = fleet
        .iter()
        .map(|c| {
            let remediator = build_cluster_remediator(c.probes.clone(), c.target.clone(), &cfg);
            (c.cluster.name.clone(), remediator)
        })
        .collect();
    let triage = TriageService::for_clusters(
        fleet
            .into_iter()
            .map(|c| ClusterTarget {
                name: c.cluster.name,
                probes: c.probes,
                target: c.target,
            })
            .collect(),
        store.clone(),
        cfg.alerts.triage_reuse,
        changes.clone(),
    );
    let (fixes, restored) = Fixes::restore(
        remediators,
        policy,
        store.clone(),
        &live,
        chrono::Utc::now(),
        changes,
    )
    .await?;
    tracing::info!(
        state = %store.place(),
        term = store.term(),
        requests = live.requests.len(),
        interrupted = restored.interrupted.len(),
        expired = restored.expired.len(),
        awaiting_execution = restored.awaiting_execution.len(),
        "live state loaded"
    );
    let services = Services {
        config: cfg,
        store,
        triage,
        fixes,
        work: InFlight::default(),
        restored,
    };
    Ok((Arc::new(services), live))
}

/// The stateful part of a running bot: only the leader has one.
pub struct Active {
    pub services: Arc<Services>,
    pub alerts: Arc<AlertService>,
    /// Every route of the platforms and the alert intake.
    pub router: axum::Router,
    pub background: tokio::task::JoinHandle<()>,
    pub platforms: Vec<Box<dyn PlatformRuntime>>,
}

impl crate::server::ActivePart for Active {
    fn router(&self) -> axum::Router {
        self.router.clone()
    }

    /// Stops the background work, every task in flight (an execution stops where it is; the
    /// next leader closes it as interrupted) and the platforms' own connections.
    fn stop(self: Box<Self>) -> futures::future::BoxFuture<'static, ()> {
        Box::pin(async move {
            self.background.abort();
            self.services.work.abort_all();
            for p in self.platforms {
                p.stop().await;
            }
        })
    }
}

/// Builds the stateful part: services from the journal, the conversation, every configured
/// chat platform, the alert intake and the background work.
pub async fn build_active(
    cfg: &FileConfig,
    conn: &ConnectionArgs,
    chat: &ChatArgs,
) -> anyhow::Result<Active> {
    for cluster in cfg.clusters() {
        crate::metrics::declare_cluster(&cluster.name);
    }
    let (services, live) = build_services(conn, cfg.clone()).await?;
    let bot = Arc::new(ChatBot::new(services.clone(), &live.request_events));
    let platforms = crate::chat::start_platforms(&bot, chat).await?;
    bot.attach(platforms.iter().map(|p| p.chat()).collect());
    // What a restart left behind is told (and what was approved, run) once chat is up.
    let resumed = bot.clone();
    services
        .work
        .spawn(async move { resumed.after_restart().await });
    drop(live);
    let (incidents, unreadable) = services
        .store
        .live_incidents(
            chrono::Utc::now(),
            services.config.state.retention,
            crate::alerts::incident::Incident::from_json,
        )
        .await
        .context("loading the live incidents")?;
    tracing::info!(
        incidents = incidents.len(),
        unreadable,
        "live incidents loaded"
    );
    let alerts = AlertService::new(
        services.clone(),
        platforms.iter().map(|p| p.chat()).collect(),
        incidents,
    );
    let router = platforms
        .iter()
        .filter_map(|p| p.routes())
        .chain([alerts.router()])
        .fold(axum::Router::new(), axum::Router::merge);
    Ok(Active {
        background: spawn_background(services.clone(), bot, alerts.clone()),
        services,
        alerts,
        router,
        platforms,
    })
}

/// The periodic work of a running bot: expiring approvals (their cards say so), the reviewer
/// watch (announced in the incident channels), the care of the bot's own Vault token, and
/// forgetting what is past `[state] retention`.
pub fn spawn_background(
    services: Arc<Services>,
    bot: Arc<ChatBot>,
    alerts: Arc<AlertService>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // Its own task, so a slow reviewer check never delays a renewal; it ends with this one.
        let _token_care = AbortOnDrop(tokio::spawn(crate::vault::token_care::keep_alive(
            services.triage.probes().vault.clone(),
        )));
        // `[reviewer] check_every = "0s"` turns the watch off (per cluster with
        // `[[clusters]]`); the watch wakes as often as the most frequent cluster asks.
        let watched: Vec<_> = services
            .config
            .clusters()
            .into_iter()
            .filter_map(|c| {
                let reviewer = c.reviewer.clone()?;
                (!reviewer.check_every.is_zero()).then_some((c.name, reviewer))
            })
            .collect();
        let watch_every = watched.iter().map(|(_, r)| r.check_every).min();
        let fleet = services.triage.is_fleet();
        let mut watch = watch_every.map(tokio::time::interval);
        let mut prune = tokio::time::interval(PRUNE_EVERY);
        loop {
            let watch_tick = async {
                match watch.as_mut() {
                    Some(w) => w.tick().await,
                    None => std::future::pending().await,
                }
            };
            // The sweep wakes when the next open request is due, or every
            // EXPIRY_SWEEP_EVERY; a new request makes it look again.
            let sweep_in = services
                .fixes
                .next_expiry()
                .map(|at| (at - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO))
                .unwrap_or(EXPIRY_SWEEP_EVERY)
                .clamp(MIN_SWEEP_GAP, EXPIRY_SWEEP_EVERY);
            tokio::select! {
                _ = services.fixes.proposed() => {}
                _ = tokio::time::sleep(sweep_in) => {
                    for r in services.fixes.expire_due(chrono::Utc::now()).await {
                        tracing::info!(request = %r.id, action = r.action.as_str(), "approval request expired");
                        bot.request_expired(&r).await;
                    }
                }
                _ = prune.tick() => {
                    let (now, retention) = (chrono::Utc::now(), services.config.state.retention);
                    let requests = services.fixes.prune(now, retention);
                    bot.forget(&requests);
                    let incidents = alerts.prune(now, retention);
                    if !requests.is_empty() || incidents > 0 {
                        tracing::info!(requests = requests.len(), incidents, "past the retention: left memory (still in the audit)");
                    }
                }
                _ = watch_tick => {
                    let now = chrono::Utc::now();
                    let rounds = futures::future::join_all(watched.iter().map(|(cluster, reviewer)| {
                        crate::services::reviewer::check_in(&services, cluster, reviewer.warn_before, now)
                    }))
                    .await;
                    for ((cluster, reviewer), (health, request)) in watched.iter().zip(rounds) {
                        let mut who = format!("{}/{}", reviewer.namespace, reviewer.service_account);
                        if fleet {
                            who.push_str(&format!(" in cluster {cluster}"));
                        }
                        let text = health.describe(&who, now);
                        if health.needs_attention() {
                            tracing::warn!(%cluster, request = request.as_ref().map(|r| r.id.to_string()), "{text}");
                            if let Some(request) = &request {
                                bot.announce_reviewer(&health, request, &who, now).await;
                            }
                        } else {
                            tracing::info!(%cluster, "{text}");
                        }
                    }
                }
            }
        }
    })
}

/// Aborts a task when dropped (when the task holding it is aborted).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A bot serving on a listener as `serve` does with one replica: the composition root's whole
/// result, for the tests and benchmarks that drive it over HTTP.
pub struct Running {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    pub services: Arc<Services>,
    pub alerts: Arc<AlertService>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Builds everything and serves on `listener` until [`Running::stop`] or drop.
    pub async fn start(
        listener: TcpListener,
        cfg: &FileConfig,
        conn: &ConnectionArgs,
        chat: &ChatArgs,
    ) -> anyhow::Result<Running> {
        let url = format!("http://{}", listener.local_addr()?);
        let active = build_active(cfg, conn, chat).await?;
        let (services, alerts) = (active.services.clone(), active.alerts.clone());
        let replica = crate::server::Replica::new();
        replica.activate(Box::new(active));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = rx.await;
            };
            if let Err(e) = crate::server::serve(listener, replica.clone(), shutdown).await {
                tracing::error!(error = %format!("{e:#}"), "the server stopped");
            }
            replica.deactivate().await;
        });
        Ok(Running {
            url,
            services,
            alerts,
            stop: Some(tx),
            task: Some(task),
        })
    }

    /// Stops serving and waits until the platforms and the background work have stopped.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}
