//! The lab: a simulated Vault and Kubernetes API on loopback, one listener serving both
//! (Vault under `/v1/...`, Kubernetes under `/api/...`, `/apis/...`, `/version`), with one
//! scenario per verdict code. It powers `vault-triage lab`, the demo and end-to-end tests.
//! A [`Fleet`] runs several labs as clusters behind the first one's Vault.
//!
//! The simulated Vault starts from the same [`VaultSetup`] value that [`apply_setup`] writes
//! into a real Vault/OpenBao, so the two cannot drift.

mod consumers;
mod discovery;
mod files;
mod fleet;
mod kube;
mod listing;
mod login;
mod monitor;
mod pod_build;
mod pods;
mod policy;
mod rollout;
mod scenario;
mod setup;
mod tokens;
mod vault;
mod vault_state;
mod wire;
mod world;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse as _, Response};
use serde::Serialize;
use tokio::sync::{broadcast, oneshot};

pub use files::LabFiles;
pub use fleet::{Fleet, FleetError};
pub use scenario::{Scenario, UnknownScenario};
pub use setup::{AuthConfigSetup, RoleSetup, VaultSetup, apply_setup, apply_setup_with};
pub use tokens::{API_AUDIENCE, ISSUER, SIGNING_PUB_PEM};

use setup::{CANARY_NAMESPACE, CANARY_SA, REVIEWER_NAMESPACE, REVIEWER_SA};
use tokens::TokenIssuer;
use vault_state::VaultState;
use world::{BOT_NAMESPACE, BOT_SA, KubeWorld, ReviewerSecret};

/// The Vault root token of the lab (what `bao server -dev -dev-root-token-id=root` uses).
pub const ROOT_TOKEN: &str = "root";

/// Where and how the lab listens.
#[derive(Clone, Debug)]
pub struct LabOptions {
    /// Listen address; default `127.0.0.1:0` (an ephemeral port).
    pub listen: SocketAddr,
    /// Added before every simulated answer (for streams: before the response headers).
    pub latency: Duration,
    /// More workloads, ExternalSecrets and running pods (owned by the bulk workloads in
    /// turn) in namespace `bulk`, for the benchmarks ([`world::KubeWorld::add_bulk`]).
    pub bulk_workloads: usize,
    pub bulk_external_secrets: usize,
    pub bulk_pods: usize,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            latency: Duration::ZERO,
            bulk_workloads: 0,
            bulk_external_secrets: 0,
            bulk_pods: 0,
        }
    }
}

/// One Kubernetes API request seen by the lab.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub content_type: Option<String>,
    pub body: String,
    /// Username of the bearer (`system:serviceaccount:ns:name`), `system:anonymous`, or
    /// `invalid` when the bearer was rejected.
    pub identity: String,
}

/// State shared by the handlers.
pub(crate) struct Shared {
    latency: Duration,
    faults: Mutex<Faults>,
    kube: Mutex<KubeWorld>,
    vault_state: Mutex<VaultState>,
    tokens: TokenIssuer,
    requests: Mutex<Vec<RecordedRequest>>,
    monitor: monitor::Monitor,
    watch: broadcast::Sender<rollout::WatchEvent>,
    http: reqwest::Client,
    /// For a [`Fleet`]'s Vault: the cluster each auth mount reviews tokens against, by mount.
    clusters: Mutex<BTreeMap<String, Weak<Shared>>>,
}

impl Shared {
    /// The cluster (never held across an await).
    pub(crate) fn world(&self) -> MutexGuard<'_, KubeWorld> {
        self.kube.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Vault's storage (never held across an await).
    pub(crate) fn vault(&self) -> MutexGuard<'_, VaultState> {
        self.vault_state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A login through `mount` succeeded: the cluster whose operators and pods log in there
    /// (this lab's, or for a [`Fleet`]'s Vault the cluster of that mount) heals if it was
    /// built with that mount's logins failing.
    pub(crate) fn login_succeeded(&self, mount: &str) {
        let now = chrono::Utc::now();
        self.world().logins_work_again(mount, now);
        let cluster = self
            .clusters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(mount)
            .and_then(Weak::upgrade);
        if let Some(cluster) = cluster.filter(|c| !std::ptr::eq(c.as_ref(), self)) {
            cluster.world().logins_work_again(mount, now);
        }
    }

    pub(crate) fn record(&self, r: RecordedRequest) {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(r);
    }
}

/// A running lab.
pub struct Lab {
    scenario: Scenario,
    base_url: String,
    closed_url: String,
    vault_token: String,
    bot_kube_token: String,
    setup: VaultSetup,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
}

/// A `http://127.0.0.1:<port>` URL where nothing listens (bind an ephemeral port, drop it).
fn closed_port_url() -> anyhow::Result<String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = l.local_addr()?.port();
    drop(l);
    Ok(format!("http://127.0.0.1:{port}"))
}

impl Lab {
    /// Builds the scenario's world and starts serving it.
    pub async fn start(scenario: Scenario, opts: LabOptions) -> anyhow::Result<Lab> {
        let listener = tokio::net::TcpListener::bind(opts.listen).await?;
        let mut addr = listener.local_addr()?;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let base_url = format!("http://{addr}");
        let closed_url = closed_port_url()?;

        let tokens = TokenIssuer::new()?;
        let mut world = KubeWorld::new();
        let now = chrono::Utc::now().timestamp();
        const YEAR: i64 = 365 * 24 * 3600;
        let uid = |w: &KubeWorld, ns: &str, n: &str| w.sa_uid(ns, n).unwrap_or_default();
        let reviewer_uid = uid(&world, REVIEWER_NAMESPACE, REVIEWER_SA);
        let api_aud = vec![API_AUDIENCE.to_string()];
        let reviewer_jwt = match scenario {
            Scenario::ReviewerJwtExpired => {
                let t = tokens.issue(
                    REVIEWER_NAMESPACE,
                    REVIEWER_SA,
                    &reviewer_uid,
                    api_aud.clone(),
                    now - 27 * 3600,
                    24 * 3600,
                )?;
                world.add_reviewer_secret(&t, ReviewerSecret::Opaque);
                t
            }
            Scenario::ReviewerJwtRejected | Scenario::Inconclusive => {
                let t = tokens.issue_legacy(
                    REVIEWER_NAMESPACE,
                    REVIEWER_SA,
                    &reviewer_uid,
                    setup::REVIEWER_SECRET,
                )?;
                tokens.invalidate(&t);
                let since = (chrono::Utc::now() - chrono::Duration::days(30))
                    .format("%Y-%m-%d")
                    .to_string();
                world.add_reviewer_secret(&t, ReviewerSecret::LegacyInvalidated { since });
                t
            }
            _ => {
                let t = tokens.issue(
                    REVIEWER_NAMESPACE,
                    REVIEWER_SA,
                    &reviewer_uid,
                    api_aud.clone(),
                    now - 3600,
                    YEAR,
                )?;
                world.add_reviewer_secret(&t, ReviewerSecret::Opaque);
                t
            }
        };
        match scenario {
            Scenario::ReviewerRbacMissing => {
                world
                    .auth_delegators
                    .remove(&world::sa_username(REVIEWER_NAMESPACE, REVIEWER_SA));
            }
            Scenario::ClientJwtRejected => {
                world
                    .invalidated_sas
                    .insert((CANARY_NAMESPACE.to_string(), CANARY_SA.to_string()));
            }
            _ => {}
        }
        world.set_vault_operators(
            setup::AUTH_MOUNT,
            consumers::LoginFailure::of(scenario),
            chrono::Utc::now(),
        );
        world.add_bulk(
            opts.bulk_workloads,
            opts.bulk_external_secrets,
            opts.bulk_pods,
        );
        let bot_uid = uid(&world, BOT_NAMESPACE, BOT_SA);
        let bot_kube_token = tokens.issue(BOT_NAMESPACE, BOT_SA, &bot_uid, api_aud, now, YEAR)?;

        let setup = setup::build(scenario, &base_url, &closed_url, &reviewer_jwt);
        let (vault_state, vault_token) = VaultState::from_setup(&setup, ROOT_TOKEN);

        let (watch, _) = broadcast::channel(1024);
        let shared = Arc::new(Shared {
            latency: opts.latency,
            faults: Mutex::new(Faults::default()),
            kube: Mutex::new(world),
            vault_state: Mutex::new(vault_state),
            tokens,
            requests: Mutex::new(Vec::new()),
            monitor: monitor::Monitor::new(),
            watch,
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .timeout(Duration::from_secs(30))
                .build()?,
            clusters: Mutex::new(BTreeMap::new()),
        });
        let app = Router::new().fallback(dispatch).with_state(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Lab {
            scenario,
            base_url,
            closed_url,
            vault_token,
            bot_kube_token,
            setup,
            shared,
            stop: Some(stop),
            server,
        })
    }

    pub fn scenario(&self) -> Scenario {
        self.scenario
    }

    /// `http://127.0.0.1:PORT`, the one listener.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// Vault's address: the listener, or a closed port in `vault-unreachable`.
    pub fn vault_addr(&self) -> String {
        if self.scenario == Scenario::VaultUnreachable {
            self.closed_url.clone()
        } else {
            self.base_url.clone()
        }
    }

    /// The Vault token the bot should use.
    pub fn vault_token(&self) -> String {
        self.vault_token.clone()
    }

    /// The Kubernetes API as the bot sees it.
    pub fn kube_url(&self) -> String {
        self.base_url.clone()
    }

    /// Bearer token of the bot's own ServiceAccount `vault-triage/vault-triage`.
    pub fn bot_kube_token(&self) -> String {
        self.bot_kube_token.clone()
    }

    /// A kubeconfig with one cluster, user and context (current).
    pub fn kubeconfig_yaml(&self) -> String {
        files::kubeconfig(&self.kube_url(), &self.bot_kube_token)
    }

    /// The bot's config file (no `[reviewer]` section in `inconclusive`).
    pub fn config_toml(&self, state_dir: &Path) -> String {
        files::config_toml(state_dir, files::with_reviewer(self.scenario))
    }

    /// Writes `kubeconfig`, `config.toml` and `state/` into `dir`.
    pub fn write_files(&self, dir: &Path) -> anyhow::Result<LabFiles> {
        files::write(dir, &self.kubeconfig_yaml(), |state| {
            self.config_toml(state)
        })
    }

    /// The environment that points `probe`/`serve` at this lab.
    pub fn exports(&self, files: &LabFiles) -> Vec<(String, String)> {
        vec![
            ("VAULT_ADDR".into(), self.vault_addr()),
            ("VAULT_TOKEN".into(), self.vault_token()),
            (
                "KUBECONFIG".into(),
                files.kubeconfig.to_string_lossy().into_owned(),
            ),
            (
                "VAULT_TRIAGE_CONFIG".into(),
                files.config.to_string_lossy().into_owned(),
            ),
        ]
    }

    /// The scenario's initial Vault state as data (kubernetes_host = this lab, or the closed
    /// port in `kube-api-unreachable`).
    pub fn vault_setup(&self) -> VaultSetup {
        self.setup.clone()
    }

    /// For a [`Fleet`] whose Vault this lab is: mounts a copy of `from`'s `kubernetes` auth
    /// method (config and roles as they stand, with an accessor of its own, as a second
    /// `vault auth enable` gives) at `path`. `from` may be this lab. Returns whether a mount was
    /// added (none when `from` has no `kubernetes` mount). When this Vault gives the bot a
    /// restricted policy, that policy reads the new mount as it reads `kubernetes`. Either
    /// way a successful login through `path` heals `from`'s cluster ([`Shared::login_succeeded`]).
    pub(crate) fn copy_auth_mount_from(&self, from: &Lab, path: &str) -> bool {
        // Logins through `path` are `from`'s cluster's, even once a missing mount is added.
        self.shared
            .clusters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.to_string(), Arc::downgrade(&from.shared));
        // The guard is dropped at the end of this statement: `from` may be this lab.
        let source = from.shared.vault().auth.get(setup::AUTH_MOUNT).cloned();
        let Some(source) = source else {
            return false;
        };
        let mut copy = vault_state::AuthMount::new();
        copy.config = source.config;
        copy.roles = source.roles;
        let mut vault = self.shared.vault();
        vault.auth.insert(path.to_string(), copy);
        if let Some(bot) = vault.policies.get_mut(setup::BOT_POLICY) {
            bot.push_str(&setup::bot_policy_hcl(path));
        }
        true
    }

    /// For a [`Fleet`] whose Vault this lab is: adds `from`'s ACL policies and KV secrets that
    /// this Vault does not hold yet (where both hold one, this Vault's stays).
    pub(crate) fn merge_vault_data_from(&self, from: &Lab) {
        let (policies, kv) = {
            let theirs = from.shared.vault();
            (theirs.policies.clone(), theirs.kv.clone())
        };
        let mut vault = self.shared.vault();
        for (name, hcl) in policies {
            vault.policies.entry(name).or_insert(hcl);
        }
        for (path, entry) in kv {
            vault.kv.entry(path).or_insert(entry);
        }
    }

    /// For a [`Fleet`]: rebuilds the operators' custom resources and the injected pods of this
    /// cluster for the mount the fleet's Vault triages it at, failing as `failure` says
    /// (`None`: logins work).
    pub(crate) fn set_vault_operators(
        &self,
        mount: &str,
        failure: Option<consumers::LoginFailure>,
    ) {
        self.shared
            .world()
            .set_vault_operators(mount, failure, chrono::Utc::now());
    }

    /// The current JSON of one of the Vault operators' custom resources, by plural
    /// (`externalsecrets`, `clustersecretstores`, `vaultstaticsecrets`,
    /// `secretproviderclasses`, ...); `namespace` is `""` for a cluster-scoped one.
    pub fn operator_object(
        &self,
        resource: &str,
        namespace: &str,
        name: &str,
    ) -> Option<serde_json::Value> {
        let crd = consumers::Crd::ALL
            .into_iter()
            .find(|c| c.resource() == resource)?;
        self.shared
            .world()
            .custom
            .get(&crd)?
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// Every Kubernetes API request seen so far.
    pub fn kube_requests(&self) -> Vec<RecordedRequest> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The current read view of `auth/kubernetes/config` plus the stored reviewer JWT under
    /// `token_reviewer_jwt` (for remediation tests); `None` when unmounted or unconfigured.
    pub fn vault_auth_config(&self) -> Option<serde_json::Value> {
        self.vault_auth_config_at(setup::AUTH_MOUNT)
    }

    /// [`Lab::vault_auth_config`] of the mount at `mount` (a [`Fleet`]'s `kubernetes-<name>`).
    pub fn vault_auth_config_at(&self, mount: &str) -> Option<serde_json::Value> {
        let vault = self.shared.vault();
        let cfg = vault.auth.get(mount)?.config.clone()?;
        let mut v = cfg.read_json();
        v["token_reviewer_jwt"] = serde_json::Value::String(cfg.token_reviewer_jwt);
        Some(v)
    }

    /// The current Pods of `namespace` (`""`: every namespace), as stored (with `kind` and
    /// `apiVersion`).
    pub fn pods(&self, namespace: &str) -> Vec<serde_json::Value> {
        self.shared
            .world()
            .pods
            .iter()
            .filter(|((ns, _), _)| namespace.is_empty() || ns == namespace)
            .map(|(_, p)| p.clone())
            .collect()
    }

    /// The current Deployment JSON.
    pub fn deployment(&self, namespace: &str, name: &str) -> Option<serde_json::Value> {
        self.shared
            .world()
            .deployments
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// The current StatefulSet JSON.
    pub fn statefulset(&self, namespace: &str, name: &str) -> Option<serde_json::Value> {
        self.workload(world::Workload::StatefulSet, namespace, name)
    }

    /// The current DaemonSet JSON.
    pub fn daemonset(&self, namespace: &str, name: &str) -> Option<serde_json::Value> {
        self.workload(world::Workload::DaemonSet, namespace, name)
    }

    /// The current CronJob JSON.
    pub fn cronjob(&self, namespace: &str, name: &str) -> Option<serde_json::Value> {
        self.workload(world::Workload::CronJob, namespace, name)
    }

    fn workload(
        &self,
        kind: world::Workload,
        namespace: &str,
        name: &str,
    ) -> Option<serde_json::Value> {
        self.shared
            .world()
            .objects(kind)
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// Makes the next rollouts of the workloads named `namespace/name` fail: a Deployment ends
    /// in `ProgressDeadlineExceeded`; a StatefulSet (DaemonSet) stops with its first replaced
    /// pod never ready (`readyReplicas` / `numberAvailable` one short, for good).
    pub fn fail_rollout(&self, namespace: &str, name: &str) {
        self.shared
            .world()
            .failing_rollouts
            .insert((namespace.to_string(), name.to_string()));
    }

    /// Stops the listener (open streams are dropped).
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_millis(500), &mut self.server).await;
        self.server.abort();
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A fault injected into one side of the lab (fault-injection tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer every request with this HTTP status (e.g. 500, 503).
    Status(u16),
    /// Never answer (hold the request open).
    Hang,
}

/// Which side a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Vault,
    Kubernetes,
}

#[derive(Debug, Default, Clone, Copy)]
struct Faults {
    vault: Option<Fault>,
    kube: Option<Fault>,
}

impl Lab {
    /// Injects (or, with `None`, clears) a fault on one side; requests already in flight are
    /// not affected.
    pub fn set_fault(&self, side: Side, fault: Option<Fault>) {
        let mut f = self.shared.faults.lock().unwrap_or_else(|e| e.into_inner());
        match side {
            Side::Vault => f.vault = fault,
            Side::Kubernetes => f.kube = fault,
        }
    }
}

/// Every request: latency, injected faults, then Vault or Kubernetes.
async fn dispatch(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    if !shared.latency.is_zero() {
        tokio::time::sleep(shared.latency).await;
    }
    let faults = *shared.faults.lock().unwrap_or_else(|e| e.into_inner());
    let fault = if req.uri().path().starts_with("/v1/") {
        faults.vault
    } else {
        faults.kube
    };
    match fault {
        Some(Fault::Hang) => std::future::pending::<()>().await,
        Some(Fault::Status(code)) => {
            let status = axum::http::StatusCode::from_u16(code)
                .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
            return (status, "injected fault\n").into_response();
        }
        None => {}
    }
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, 4 * 1024 * 1024).await {
        Ok(b) => b.to_vec(),
        Err(_) => Vec::new(),
    };
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().map(str::to_string);
    if let Some(rest) = path.strip_prefix("/v1/") {
        vault::handle(
            shared,
            parts.method.as_str(),
            rest,
            query.as_deref(),
            &parts.headers,
            &body,
        )
        .await
    } else {
        kube::handle(shared, parts.method, path, query, parts.headers, body).await
    }
}
