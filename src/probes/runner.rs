//! Schedules the probes: independent calls run together, dependent ones wait only for what
//! they need, and every call is bounded by the run's deadline.
//!
//! Critical path: mint a canary token → log in with it (Vault calls TokenReview itself) →
//! read the canary secret. The `sys/monitor` stream opens alongside the token request so the
//! plugin's DEBUG reason is captured during the login.

use std::future::Future;
use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;

use super::active_node::open_monitor;
use super::kube_api::{ca_bundles_share_a_certificate, check_kube_api};
use crate::config::Secret;
use crate::config::{CanarySection, Cluster, FileConfig, ReviewerSection};
use crate::evidence::AuthConfig;
use crate::evidence::TokenClaims;
use crate::evidence::*;
use crate::kube::KubeClient;
use crate::vault::{VaultClient, VaultError};

/// Lifetime asked for the canary token (Kubernetes' minimum).
pub const CANARY_TOKEN_SECONDS: i64 = 600;
/// Longest wait for the `sys/monitor` stream before the login goes ahead without it.
pub const MONITOR_OPEN_WAIT: Duration = Duration::from_millis(1500);
/// Longest wait, after a refused login, for its DEBUG line to arrive on the stream.
pub const MONITOR_LINE_GRACE: Duration = Duration::from_millis(750);
/// What marks the plugin's DEBUG (or legacy ERROR) line for a refused login.
pub const LOGIN_UNAUTHORIZED: &str = "login unauthorized";

/// The clients the probes use. Kubernetes is optional: without it the Vault side still runs.
#[derive(Debug, Clone)]
pub struct Probes {
    pub vault: VaultClient,
    pub kube: Option<KubeClient>,
    /// Why there is no Kubernetes client, when there is none.
    pub kube_unavailable: Option<String>,
}

/// What to triage.
#[derive(Debug, Clone)]
pub struct ProbeTarget {
    /// The cluster's name (`default` without `[[clusters]]`).
    pub cluster: String,
    pub auth_mount: String,
    /// The role under triage; the canary role when `None`.
    pub role: Option<String>,
    pub canary: CanarySection,
    pub reviewer: Option<ReviewerSection>,
    pub role_annotation: String,
    pub deadline: Duration,
    /// `[vault] active_addr`: where `sys/monitor` is read when `VAULT_ADDR` is a standby.
    pub active_addr: Option<String>,
}

impl ProbeTarget {
    /// The config's first cluster (the only one without `[[clusters]]`).
    pub fn from_config(cfg: &FileConfig, role: Option<String>) -> Self {
        Self::for_cluster(cfg, &cfg.clusters()[0], role)
    }

    /// What to triage in `cluster`.
    pub fn for_cluster(cfg: &FileConfig, cluster: &Cluster, role: Option<String>) -> Self {
        Self {
            cluster: cluster.name.clone(),
            auth_mount: cluster.auth_mount.clone(),
            role: role.filter(|r| !r.trim().is_empty()),
            canary: cluster.canary.clone(),
            reviewer: cluster.reviewer.clone(),
            role_annotation: cfg.probes.role_annotation.clone(),
            deadline: cfg.probes.deadline,
            active_addr: cfg.vault.active_addr.clone(),
        }
    }

    /// The same target with `role` under triage (the canary role when blank).
    pub fn with_role(&self, role: String) -> Self {
        Self {
            role: Some(role).filter(|r| !r.trim().is_empty()),
            ..self.clone()
        }
    }

    fn role_under_triage(&self) -> &str {
        self.role.as_deref().unwrap_or(&self.canary.role)
    }
}

/// Runs every probe and returns the evidence. Never fails: what could not be checked says so.
pub async fn run(probes: &Probes, target: &ProbeTarget) -> Evidence {
    let started = Instant::now();
    let started_at = Utc::now();
    let run = Run {
        probes,
        target,
        deadline: started + target.deadline,
        accessor: std::sync::OnceLock::new(),
    };
    let (
        (health, auth_mount, (auth_config, kube_api), canary_role, target_role),
        canary,
        reviewer,
        workloads,
        secret_syncs,
        pods,
    ) = tokio::join!(
        run.vault_side(),
        run.canary_chain(),
        run.reviewer(),
        run.workloads(),
        run.secret_syncs(),
        run.pods(),
    );
    let workloads = with_consumers(workloads, &pods, &secret_syncs);
    let vault_log = this_mounts_lines(canary.vault_log, &auth_mount);
    Evidence {
        target: TargetInfo {
            cluster: target.cluster.clone(),
            vault_addr: probes.vault.addr().to_string(),
            auth_mount: target.auth_mount.clone(),
            role: target.role_under_triage().to_string(),
            canary_role: target.canary.role.clone(),
            canary_namespace: target.canary.namespace.clone(),
            canary_service_account: target.canary.service_account.clone(),
            secret_path: target.canary.secret_path.clone(),
            reviewer: target
                .reviewer
                .as_ref()
                .map(|r| format!("{}/{}", r.namespace, r.service_account)),
            kube_cluster_url: probes.kube.as_ref().map(KubeClient::cluster_url),
        },
        started_at,
        health,
        auth_mount,
        auth_config,
        canary_role,
        target_role,
        canary_token: canary.token,
        canary_review: canary.review,
        login: canary.login,
        vault_log,
        vault_log_node: canary.vault_log_node,
        secret_read: canary.secret_read,
        reviewer,
        kube_api,
        workloads,
        secret_syncs,
        pods,
        duration_ms: started.elapsed().as_millis() as u64,
    }
}

/// The debug lines of the triaged mount only. Vault's monitor carries every mount's logins
/// (other clusters triaged at the same time, other clients failing): a standard line names its
/// mount's accessor (`auth.kubernetes.auth_kubernetes_09a6afa6: login unauthorized: …`), so a
/// line naming another accessor is dropped. Lines that name none are kept.
fn this_mounts_lines(lines: Probe<Vec<String>>, mount: &Probe<MountCheck>) -> Probe<Vec<String>> {
    let Some(accessor) = mount
        .value()
        .and_then(|m| m.mount.as_ref())
        .map(|m| m.accessor.clone())
        .filter(|a| !a.is_empty())
    else {
        return lines;
    };
    match lines {
        Probe::Ok { value, ms } => Probe::Ok {
            value: value
                .into_iter()
                .filter(|l| of_mount(l, &accessor))
                .collect(),
            ms,
        },
        other => other,
    }
}

/// Whether a monitor line belongs to the mount with `accessor`: it names that accessor, or
/// names none.
fn of_mount(line: &str, accessor: &str) -> bool {
    line.contains(accessor) || !line.contains("auth_kubernetes_")
}

struct Run<'a> {
    probes: &'a Probes,
    target: &'a ProbeTarget,
    deadline: Instant,
    /// The triaged mount's accessor, once the mount check read it: the canary waits for a
    /// DEBUG line of its own mount, not of another one failing at the same time.
    accessor: std::sync::OnceLock<String>,
}

struct CanaryEvidence {
    token: Probe<TokenClaims>,
    review: Probe<crate::evidence::ReviewResult>,
    login: Probe<LoginOutcome>,
    vault_log: Probe<Vec<String>>,
    vault_log_node: Option<MonitorNode>,
    secret_read: Probe<crate::evidence::SecretRead>,
}

impl Run<'_> {
    /// Runs `fut` under the run's deadline and records how long it took.
    async fn timed<T, E: Into<ProbeError>>(
        &self,
        fut: impl Future<Output = Result<T, E>>,
    ) -> Probe<T> {
        let start = Instant::now();
        let out = tokio::time::timeout_at(self.deadline, fut).await;
        let ms = start.elapsed().as_millis() as u64;
        match out {
            Ok(Ok(value)) => Probe::Ok { value, ms },
            Ok(Err(e)) => Probe::Failed {
                error: e.into(),
                ms,
            },
            Err(_) => Probe::Failed {
                error: ProbeError::Timeout { after_ms: ms },
                ms,
            },
        }
    }

    fn kube(&self) -> Result<&KubeClient, String> {
        self.probes.kube.as_ref().ok_or_else(|| {
            format!(
                "no Kubernetes access: {}",
                self.probes
                    .kube_unavailable
                    .as_deref()
                    .unwrap_or("no kubeconfig and not in a cluster")
            )
        })
    }

    #[allow(clippy::type_complexity)]
    async fn vault_side(
        &self,
    ) -> (
        Probe<crate::evidence::Health>,
        Probe<MountCheck>,
        (Probe<Option<AuthConfig>>, Probe<KubeApiEvidence>),
        Probe<Option<crate::evidence::Role>>,
        Option<Probe<Option<crate::evidence::Role>>>,
    ) {
        let vault = &self.probes.vault;
        let mount = self.target.auth_mount.as_str();
        let config_then_api = async {
            let config = self.timed(vault.auth_config(mount)).await;
            let api = match config.value() {
                Some(Some(cfg)) => self.kube_api(cfg).await,
                Some(None) => Probe::skipped("the auth method has no config"),
                None => Probe::skipped("the auth config could not be read"),
            };
            (config, api)
        };
        let target_role = async {
            match &self.target.role {
                Some(r) if r != &self.target.canary.role => {
                    Some(self.timed(vault.role(mount, r)).await)
                }
                _ => None,
            }
        };
        tokio::join!(
            self.timed(vault.health()),
            async {
                let check = self.timed(mount_check(vault, mount)).await;
                if let Some(m) = check.value().and_then(|c| c.mount.as_ref())
                    && !m.accessor.is_empty()
                {
                    let _ = self.accessor.set(m.accessor.clone());
                }
                check
            },
            config_then_api,
            self.timed(vault.role(mount, &self.target.canary.role)),
            target_role,
        )
    }

    async fn kube_api(&self, cfg: &AuthConfig) -> Probe<KubeApiEvidence> {
        let start = Instant::now();
        let ca =
            (!cfg.kubernetes_ca_cert.trim().is_empty()).then_some(cfg.kubernetes_ca_cert.as_str());
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        let reach = check_kube_api(
            &cfg.kubernetes_host,
            ca,
            remaining.min(crate::config::DEFAULT_CALL_TIMEOUT),
        );
        let cluster_ca = async {
            match self.kube() {
                Ok(k) => Some(
                    self.timed(k.cluster_ca(&self.target.canary.namespace))
                        .await,
                ),
                Err(_) => None,
            }
        };
        let (reachability, cluster_ca) = tokio::join!(reach, cluster_ca);
        let mut ev = KubeApiEvidence {
            host: cfg.kubernetes_host.clone(),
            reachability: Some(reachability),
            ca_matches_cluster: None,
            ca_configured: ca.is_some(),
            notes: Vec::new(),
        };
        match (ca, cluster_ca) {
            (None, _) => ev
                .notes
                .push("no kubernetes_ca_cert configured: Vault uses its local or system CA".into()),
            (
                Some(configured),
                Some(Probe::Ok {
                    value: Some(cluster),
                    ..
                }),
            ) => {
                ev.ca_matches_cluster = Some(ca_bundles_share_a_certificate(configured, &cluster));
            }
            (Some(_), Some(Probe::Ok { value: None, .. })) => {
                ev.notes.push("ConfigMap kube-root-ca.crt not found".into())
            }
            (Some(_), Some(p)) => ev.notes.push(format!(
                "cluster CA could not be read: {}",
                p.error().map(ProbeError::describe).unwrap_or_default()
            )),
            (Some(_), None) => ev
                .notes
                .push("cluster CA not checked: no Kubernetes access".into()),
        }
        Probe::Ok {
            value: ev,
            ms: start.elapsed().as_millis() as u64,
        }
    }

    async fn canary_chain(&self) -> CanaryEvidence {
        let vault = &self.probes.vault;
        let canary = &self.target.canary;
        let mount = self.target.auth_mount.as_str();
        let kube = match self.kube() {
            Ok(k) => k,
            Err(why) => {
                return CanaryEvidence {
                    token: Probe::skipped(why.clone()),
                    review: Probe::skipped(why.clone()),
                    login: Probe::skipped("no canary token to log in with"),
                    vault_log: Probe::skipped("no canary login was made"),
                    secret_read: Probe::skipped("no canary login was made"),
                    vault_log_node: None,
                };
            }
        };
        let token_request = self.timed(kube.token_request(
            &canary.namespace,
            &canary.service_account,
            canary.audience.as_deref(),
            CANARY_TOKEN_SECONDS,
        ));
        let monitor = async {
            let wait = self.deadline.min(Instant::now() + MONITOR_OPEN_WAIT);
            let active = self.target.active_addr.as_deref();
            match tokio::time::timeout_at(wait, open_monitor(vault, active)).await {
                Ok(r) => r,
                Err(_) => Err(ProbeError::Timeout {
                    after_ms: MONITOR_OPEN_WAIT.as_millis() as u64,
                }),
            }
        };
        let (issued, monitor) = tokio::join!(token_request, monitor);
        let issued = match issued {
            Probe::Ok { value, ms } => (value, ms),
            Probe::Failed { error, ms } => {
                return CanaryEvidence {
                    token: Probe::Failed { error, ms },
                    review: Probe::skipped("no canary token"),
                    login: Probe::skipped("no canary token to log in with"),
                    vault_log: Probe::skipped("no canary login was made"),
                    secret_read: Probe::skipped("no canary login was made"),
                    vault_log_node: None,
                };
            }
            Probe::Skipped { reason } => {
                return CanaryEvidence {
                    token: Probe::Skipped { reason },
                    review: Probe::skipped("no canary token"),
                    login: Probe::skipped("no canary token to log in with"),
                    vault_log: Probe::skipped("no canary login was made"),
                    secret_read: Probe::skipped("no canary login was made"),
                    vault_log_node: None,
                };
            }
        };
        let (token, token_ms) = issued;
        let claims = TokenClaims::decode(token.token.expose()).unwrap_or_default();
        let review = self.timed(kube.token_review(
            &token.token,
            (!claims.audiences.is_empty()).then(|| claims.audiences.clone()),
        ));
        let login_chain = async {
            let login = self
                .timed(async {
                    match vault.login(mount, &canary.role, &token.token).await {
                        Ok(ok) => Ok((
                            LoginOutcome::Success {
                                policies: ok.policies.clone(),
                                lease_duration: ok.lease_duration,
                            },
                            Some(ok.client_token),
                        )),
                        Err(VaultError::Api { status, errors }) => Ok((
                            LoginOutcome::Refused {
                                status,
                                message: errors.join("; "),
                            },
                            None,
                        )),
                        Err(e) => Err(e),
                    }
                })
                .await;
            let refused_generically = matches!(
                login.value(),
                Some((LoginOutcome::Refused { status: 403, message }, _)) if message == "permission denied"
            );
            let vault_log = match &monitor {
                Ok((stream, _)) => {
                    let grace = if refused_generically {
                        MONITOR_LINE_GRACE
                    } else {
                        Duration::ZERO
                    };
                    let lines = stream
                        .wait_for(grace, |l| {
                            l.contains(LOGIN_UNAUTHORIZED)
                                && self.accessor.get().is_none_or(|a| of_mount(l, a))
                        })
                        .await;
                    Probe::Ok {
                        value: lines,
                        ms: 0,
                    }
                }
                Err(e) => Probe::Failed {
                    error: e.clone(),
                    ms: 0,
                },
            };
            let vault_log_node = monitor.as_ref().ok().map(|(_, node)| node.clone());
            drop(monitor);
            let (login, client_token) = split_login(login);
            let secret_read = match (&client_token, &canary.secret_path) {
                (Some(t), Some(path)) => {
                    let as_canary = vault.with_token(t.clone());
                    let read = self.timed(as_canary.read_secret(path)).await;
                    let _ = tokio::time::timeout_at(self.deadline, as_canary.revoke_self()).await;
                    read
                }
                (Some(t), None) => {
                    let _ = tokio::time::timeout_at(
                        self.deadline,
                        vault.with_token(t.clone()).revoke_self(),
                    )
                    .await;
                    Probe::skipped("no canary.secret_path configured")
                }
                (None, _) => Probe::skipped("the canary login did not succeed"),
            };
            (login, vault_log, vault_log_node, secret_read)
        };
        let (review, (login, vault_log, vault_log_node, secret_read)) =
            tokio::join!(review, login_chain);
        CanaryEvidence {
            token: Probe::Ok {
                value: TokenClaims {
                    expires_at: claims.expires_at.or(token.expires_at),
                    ..claims
                },
                ms: token_ms,
            },
            review,
            login,
            vault_log,
            vault_log_node,
            secret_read,
        }
    }

    async fn reviewer(&self) -> Probe<ReviewerEvidence> {
        let Some(cfg) = &self.target.reviewer else {
            return Probe::skipped("no [reviewer] section in the config");
        };
        let kube = match self.kube() {
            Ok(k) => k,
            Err(why) => return Probe::skipped(why),
        };
        let start = Instant::now();
        let mut ev = ReviewerEvidence {
            service_account: format!("{}/{}", cfg.namespace, cfg.service_account),
            ..Default::default()
        };
        let sa = self.timed(kube.service_account_uid(&cfg.namespace, &cfg.service_account));
        let secret = async {
            match &cfg.token_secret {
                Some(name) => Some(self.timed(kube.secret_token(&cfg.namespace, name)).await),
                None => None,
            }
        };
        let (sa, secret) = tokio::join!(sa, secret);
        match sa {
            Probe::Ok { value, .. } => ev.service_account_exists = Some(value.is_some()),
            other => ev.notes.push(format!(
                "ServiceAccount not checked: {}",
                other.error().map(ProbeError::describe).unwrap_or_default()
            )),
        }
        let mut token: Option<Secret> = None;
        match (secret, &cfg.token_secret) {
            (None, _) | (_, None) => ev.notes.push(
                "no reviewer.token_secret configured: the reviewer token cannot be tried".into(),
            ),
            (Some(Probe::Ok { value: Some(s), .. }), Some(name)) => {
                ev.token_source = Some(format!("Secret {}/{}", cfg.namespace, name));
                ev.secret_found = Some(true);
                ev.legacy_invalid_since = s
                    .labels
                    .get("kubernetes.io/legacy-token-invalid-since")
                    .cloned();
                match s.token {
                    Some(t) => {
                        ev.claims = TokenClaims::decode(t.expose()).ok();
                        if ev.claims.is_none() {
                            ev.notes.push("the token in the Secret is not a JWT".into());
                        }
                        token = Some(t);
                    }
                    None => ev.notes.push(format!(
                        "Secret {}/{} has no `token` key",
                        cfg.namespace, name
                    )),
                }
            }
            (Some(Probe::Ok { value: None, .. }), Some(name)) => {
                ev.token_source = Some(format!("Secret {}/{}", cfg.namespace, name));
                ev.secret_found = Some(false);
            }
            (Some(p), Some(name)) => ev.notes.push(format!(
                "Secret {}/{} could not be read: {}",
                cfg.namespace,
                name,
                p.error().map(ProbeError::describe).unwrap_or_default()
            )),
        }
        if let Some(token) = token {
            match kube.as_bearer(&token) {
                Ok(as_reviewer) => {
                    let (who, may) = tokio::join!(
                        self.timed(as_reviewer.whoami()),
                        self.timed(as_reviewer.can_i(
                            "create",
                            "authentication.k8s.io",
                            "tokenreviews"
                        )),
                    );
                    ev.as_caller = Some(match who {
                        Probe::Ok { value, .. } => CallerCheck::Authenticated { username: value },
                        Probe::Failed { error, .. } if error.code() == Some(401) => {
                            CallerCheck::Unauthorized
                        }
                        other => CallerCheck::Failed {
                            detail: other.error().map(ProbeError::describe).unwrap_or_default(),
                        },
                    });
                    if let Probe::Ok { value, .. } = may {
                        ev.may_create_tokenreviews = Some(value);
                    }
                }
                Err(e) => ev.notes.push(format!(
                    "could not build a client for the reviewer token: {e}"
                )),
            }
        }
        Probe::Ok {
            value: ev,
            ms: start.elapsed().as_millis() as u64,
        }
    }

    async fn secret_syncs(&self) -> Probe<Vec<crate::evidence::SecretSync>> {
        match self.kube() {
            Ok(k) => self.timed(k.secret_syncs(&self.target.auth_mount)).await,
            Err(why) => Probe::skipped(why),
        }
    }

    async fn pods(&self) -> Probe<crate::evidence::PodEvidence> {
        match self.kube() {
            Ok(k) => {
                self.timed(k.vault_pods(&self.target.role_annotation, &self.target.auth_mount))
                    .await
            }
            Err(why) => Probe::skipped(why),
        }
    }

    async fn workloads(&self) -> Probe<Vec<crate::evidence::Workload>> {
        match self.kube() {
            Ok(k) => {
                self.timed(k.vault_workloads(&self.target.role_annotation, &self.target.auth_mount))
                    .await
            }
            Err(why) => Probe::skipped(why),
        }
    }
}

/// The workloads found through their templates, plus those found only through their
/// injected pods or as a VSO secret's restart targets (from the lists that were read).
fn with_consumers(
    workloads: Probe<Vec<crate::evidence::Workload>>,
    pods: &Probe<crate::evidence::PodEvidence>,
    syncs: &Probe<Vec<crate::evidence::SecretSync>>,
) -> Probe<Vec<crate::evidence::Workload>> {
    let Probe::Ok { mut value, ms } = workloads else {
        return workloads;
    };
    if let Some(p) = pods.value() {
        value = crate::kube::pods::with_pod_owners(value, &p.owners);
    }
    if let Some(s) = syncs.value() {
        value = crate::kube::operators::with_vso_targets(value, s);
    }
    Probe::Ok { value, ms }
}

fn split_login(p: Probe<(LoginOutcome, Option<Secret>)>) -> (Probe<LoginOutcome>, Option<Secret>) {
    match p {
        Probe::Ok {
            value: (outcome, token),
            ms,
        } => (Probe::Ok { value: outcome, ms }, token),
        Probe::Failed { error, ms } => (Probe::Failed { error, ms }, None),
        Probe::Skipped { reason } => (Probe::Skipped { reason }, None),
    }
}

async fn mount_check(vault: &VaultClient, mount: &str) -> Result<MountCheck, VaultError> {
    let mounts = vault.auth_mounts().await?;
    let key = format!("{}/", mount.trim_matches('/'));
    let at_path = mounts.get(&key).cloned();
    Ok(MountCheck {
        other_type: at_path
            .as_ref()
            .filter(|m| m.kind != "kubernetes")
            .map(|m| m.kind.clone()),
        mount: at_path.filter(|m| m.kind == "kubernetes"),
        kubernetes_mounts: mounts
            .values()
            .filter(|m| m.kind == "kubernetes")
            .map(|m| m.path.clone())
            .collect(),
    })
}
