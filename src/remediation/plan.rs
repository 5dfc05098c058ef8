//! Plans: exactly what a remediation will change, computed from a triage report, with a
//! fingerprint over the plan and the live state it was computed from.
//!
//! Building a plan is pure. The executor rebuilds the plan from a fresh triage and refuses
//! when the fingerprint differs: an approval covers exactly what was shown.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::diagnosis::{Action, AffectedWorkload, RemediationKind, Report, VerdictCode};
use crate::evidence::{AuthConfig, SecretSync, Workload, WorkloadKind};

/// Default lifetime asked for a rotated reviewer token (the API server may shorten it).
pub const DEFAULT_REVIEWER_TOKEN_SECONDS: i64 = 365 * 24 * 3600;
/// Workloads restarted at once (one batch).
pub const DEFAULT_RESTART_CONCURRENCY: usize = 3;

/// How `reconfigure-auth` fixes the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Mint a fresh token for the reviewer ServiceAccount and write it.
    RotateReviewer,
    /// Write no reviewer token, so an in-cluster Vault uses its own pod token.
    UseLocalToken,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::RotateReviewer => "rotate-reviewer",
            Strategy::UseLocalToken => "use-local-token",
        }
    }

    /// The fix this strategy carries out.
    pub fn kind(self) -> RemediationKind {
        match self {
            Strategy::RotateReviewer => RemediationKind::RotateReviewer,
            Strategy::UseLocalToken => RemediationKind::UseLocalToken,
        }
    }
}

/// The config to write: every field of the current config carried across, the reviewer
/// token changed. The token itself is never part of a plan: it is minted at execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigChange {
    pub kubernetes_host: String,
    pub kubernetes_ca_cert: String,
    pub pem_keys: Vec<String>,
    pub issuer: String,
    pub disable_iss_validation: bool,
    pub disable_local_ca_jwt: bool,
    pub use_annotations_as_alias_metadata: bool,
    /// What becomes of `token_reviewer_jwt`.
    pub reviewer_token: ReviewerToken,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReviewerToken {
    /// A fresh TokenRequest token for this ServiceAccount.
    Fresh {
        namespace: String,
        service_account: String,
        expiration_seconds: i64,
    },
    /// None: Vault uses its own pod token.
    None,
}

/// `reconfigure-auth`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconfigurePlan {
    pub mount: String,
    pub strategy: Strategy,
    /// The verdict the plan answers; a fresh triage must still give it.
    pub verdict: VerdictCode,
    /// The config as read when the plan was made.
    pub current: AuthConfig,
    pub change: ConfigChange,
}

/// One workload to restart, by identity (a recreated one has another uid): a Deployment,
/// StatefulSet or DaemonSet.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DeploymentTarget {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub role: String,
    /// Plans of older releases restart Deployments.
    #[serde(default)]
    pub kind: WorkloadKind,
}

/// `restart-deployments` (the name predates StatefulSets and DaemonSets): the workloads
/// restarted, in batches of `concurrency`, and those in the blast radius it leaves alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartPlan {
    /// Deployments, StatefulSets and DaemonSets (the field keeps its old name).
    pub deployments: Vec<DeploymentTarget>,
    pub concurrency: usize,
    /// Affected workloads a restart cannot fix, reported with what to do instead. Absent in
    /// plans of older releases, and not serialized when empty, so their fingerprints stand.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_restarted: Vec<NotRestarted>,
}

/// An affected workload the plan does not restart.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NotRestarted {
    pub kind: WorkloadKind,
    pub namespace: String,
    pub name: String,
    pub reason: NotRestartedReason,
}

/// Why an affected workload is not restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NotRestartedReason {
    /// A StatefulSet or DaemonSet with `updateStrategy: OnDelete`: a restart patch changes
    /// nothing until its pods are deleted.
    OnDelete,
    /// Its pods come from Jobs; each run starts fresh pods.
    CronJob,
    /// An Argo Rollout: `kubectl rollout restart` does not support it.
    ArgoRollout,
    /// Found through its pods only (a Job, a ReplicaSet no Deployment owns, a bare pod):
    /// there is no rollout to restart.
    NoRollout,
    /// It reads a Secret the Vault Secrets Operator syncs (a `rolloutRestartTargets` entry):
    /// it does not log in, keeps its Secret, and VSO restarts it after the next sync.
    VsoRestarts,
}

impl NotRestartedReason {
    /// What to do instead, for people.
    pub fn text(self) -> &'static str {
        match self {
            NotRestartedReason::OnDelete => "OnDelete: delete its pods to pick up the fix",
            NotRestartedReason::CronJob => "CronJob: its next run logs in afresh",
            NotRestartedReason::ArgoRollout => {
                "Argo Rollout: `kubectl argo rollouts restart` restarts it"
            }
            NotRestartedReason::NoRollout => {
                "no rollout: its pods retry the login by themselves; delete a stuck pod to start it afresh"
            }
            NotRestartedReason::VsoRestarts => {
                "reads a Secret VSO keeps; VSO restarts it after the next sync"
            }
        }
    }

    /// Why a workload of `kind` that `kubectl rollout restart` cannot restart is left alone.
    pub fn for_kind(kind: WorkloadKind) -> NotRestartedReason {
        match kind {
            WorkloadKind::CronJob => NotRestartedReason::CronJob,
            WorkloadKind::Rollout => NotRestartedReason::ArgoRollout,
            _ => NotRestartedReason::NoRollout,
        }
    }
}

/// The annotation that makes an ExternalSecret refresh at once (ESO's documented
/// `kubectl annotate es <n> force-sync=$(date +%s) --overwrite`).
pub const ESO_FORCE_SYNC: &str = "force-sync";
/// The annotation that makes an ESO store re-validate at once (stores are watched without
/// predicates, so any change reconciles them).
pub const STORE_REVALIDATE: &str = "vault-triage.io/revalidate-at";
/// The annotation that makes a VSO secret resource reconcile at once (any annotation change
/// does; `vso.hashicorp.com/resync` is read by nothing).
pub const VSO_RESYNC: &str = "vault-triage.io/resync-at";

/// One operator object `resync-secrets` annotates, its value the unix time of the run.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ResyncTarget {
    /// `ClusterSecretStore`, `SecretStore`, `ExternalSecret`, `VaultStaticSecret` or
    /// `VaultPKISecret`.
    pub kind: String,
    /// Empty for a ClusterSecretStore.
    pub namespace: String,
    pub name: String,
    /// The annotation set to the unix time (seconds) of the run.
    pub annotation: String,
}

impl ResyncTarget {
    /// `ExternalSecret production/payments-db`, `ClusterSecretStore vault-backend`.
    pub fn label(&self) -> String {
        object_label(&self.kind, &self.namespace, &self.name)
    }
}

fn object_label(kind: &str, namespace: &str, name: &str) -> String {
    if namespace.is_empty() {
        format!("{kind} {name}")
    } else {
        format!("{kind} {namespace}/{name}")
    }
}

/// An operator object on the mount that `resync-secrets` leaves alone.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NotResynced {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub reason: NotResyncedReason,
}

/// Why an operator object is not annotated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NotResyncedReason {
    /// A VaultDynamicSecret: a re-sync mints new credentials (and restarts its
    /// `rolloutRestartTargets`).
    DynamicSecret,
    /// An ExternalSecret with `refreshPolicy: CreatedOnce`: it ignores a force-sync.
    CreatedOnce,
}

impl NotResyncedReason {
    /// Why, for people.
    pub fn text(self) -> &'static str {
        match self {
            NotResyncedReason::DynamicSecret => {
                "a re-sync mints new credentials and may restart its rolloutRestartTargets; it syncs by itself within its requeue"
            }
            NotResyncedReason::CreatedOnce => {
                "refreshPolicy CreatedOnce ignores force-sync once its Secret exists"
            }
        }
    }
}

/// `resync-secrets`: the ESO stores re-validated, then the ExternalSecrets force-synced, then
/// the VSO secret resources re-triggered, each by a merge patch of one annotation; the
/// objects on the mount it leaves alone, with why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResyncPlan {
    /// In the order they are annotated: stores, ExternalSecrets, VSO secrets.
    pub targets: Vec<ResyncTarget>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_resynced: Vec<NotResynced>,
    /// VaultDynamicSecrets are among the targets (`resync-dynamic-secrets`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dynamic: bool,
}

/// A remediation plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Plan {
    ReconfigureAuth(Box<ReconfigurePlan>),
    RestartDeployments(RestartPlan),
    ResyncSecrets(ResyncPlan),
}

/// Why no plan can be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("verdict {0} has no automated {1} fix")]
    DoesNotFit(VerdictCode, &'static str),
    #[error("the current auth config could not be read, so it cannot be carried across")]
    ConfigUnknown,
    #[error("no [reviewer] ServiceAccount is configured to mint a token for")]
    NoReviewer,
    #[error("no affected deployment, StatefulSet or DaemonSet to restart")]
    NothingToRestart,
    #[error("no cluster {0} in the config")]
    UnknownCluster(String),
    #[error("the External Secrets and Vault Secrets Operator objects could not be listed")]
    SecretSyncsUnknown,
    #[error("no External Secrets or Vault Secrets Operator object on the mount to re-sync")]
    NothingToResync,
}

/// Settings of plan building.
#[derive(Debug, Clone)]
pub struct PlanSettings {
    pub reviewer: Option<(String, String)>,
    pub reviewer_token_seconds: i64,
    pub restart_concurrency: usize,
}

impl Default for PlanSettings {
    fn default() -> Self {
        Self {
            reviewer: None,
            reviewer_token_seconds: DEFAULT_REVIEWER_TOKEN_SECONDS,
            restart_concurrency: DEFAULT_RESTART_CONCURRENCY,
        }
    }
}

impl Plan {
    /// `reconfigure-auth` for the verdict in `report`.
    pub fn reconfigure(
        report: &Report,
        strategy: Strategy,
        settings: &PlanSettings,
    ) -> Result<Plan, PlanError> {
        let verdict = report.verdict.code;
        // Healthy fits too: rotating before expiry (the reviewer watch) or moving to Vault's
        // own token is prevention.
        let fits = matches!(
            verdict,
            VerdictCode::ReviewerJwtExpired
                | VerdictCode::ReviewerJwtRejected
                | VerdictCode::Healthy
        );
        if !fits {
            return Err(PlanError::DoesNotFit(verdict, "reconfigure-auth"));
        }
        let current = report
            .evidence
            .auth_config
            .value()
            .and_then(|c| c.clone())
            .ok_or(PlanError::ConfigUnknown)?;
        let reviewer_token = match strategy {
            Strategy::RotateReviewer => {
                let (namespace, service_account) =
                    settings.reviewer.clone().ok_or(PlanError::NoReviewer)?;
                ReviewerToken::Fresh {
                    namespace,
                    service_account,
                    expiration_seconds: settings.reviewer_token_seconds,
                }
            }
            Strategy::UseLocalToken => ReviewerToken::None,
        };
        let change = ConfigChange {
            kubernetes_host: current.kubernetes_host.clone(),
            kubernetes_ca_cert: current.kubernetes_ca_cert.clone(),
            pem_keys: current.pem_keys.clone(),
            issuer: current.issuer.clone(),
            disable_iss_validation: current.disable_iss_validation,
            // Vault reads its own pod token only when local files are allowed.
            disable_local_ca_jwt: match strategy {
                Strategy::RotateReviewer => current.disable_local_ca_jwt,
                Strategy::UseLocalToken => false,
            },
            use_annotations_as_alias_metadata: current.use_annotations_as_alias_metadata,
            reviewer_token,
        };
        Ok(Plan::ReconfigureAuth(Box::new(ReconfigurePlan {
            mount: report.evidence.target.auth_mount.clone(),
            strategy,
            verdict,
            current,
            change,
        })))
    }

    /// `restart-deployments` for the workloads in the blast radius of `report`: its
    /// Deployments, and its StatefulSets and DaemonSets that roll out on a template change;
    /// OnDelete ones and CronJobs are listed as not restarted.
    pub fn restart(report: &Report, settings: &PlanSettings) -> Result<Plan, PlanError> {
        let workloads = report
            .evidence
            .workloads
            .value()
            .cloned()
            .unwrap_or_default();
        // Verdicts of older releases name Deployments only.
        let affected: Vec<AffectedWorkload> = if report.verdict.affected_workloads.is_empty() {
            report
                .verdict
                .affected_deployments
                .iter()
                .map(|d| AffectedWorkload {
                    kind: WorkloadKind::Deployment,
                    namespace: d.namespace.clone(),
                    name: d.name.clone(),
                    roles: vec![d.role.clone()],
                    via: Default::default(),
                })
                .collect()
        } else {
            report.verdict.affected_workloads.clone()
        };
        restart_plan(&affected, &workloads, settings.restart_concurrency)
            .map(Plan::RestartDeployments)
    }

    /// `resync-secrets` for the External Secrets and Vault Secrets Operator objects on the
    /// mount, as the evidence lists them; VaultDynamicSecrets only when `dynamic` asks.
    pub fn resync(report: &Report, dynamic: bool) -> Result<Plan, PlanError> {
        let syncs = report
            .evidence
            .secret_syncs
            .value()
            .ok_or(PlanError::SecretSyncsUnknown)?;
        resync_plan(syncs, dynamic).map(Plan::ResyncSecrets)
    }

    pub fn action(&self) -> Action {
        match self {
            Plan::ReconfigureAuth(_) => Action::ReconfigureAuth,
            Plan::RestartDeployments(_) => Action::RestartDeployments,
            Plan::ResyncSecrets(_) => Action::ResyncSecrets,
        }
    }

    /// A short hash over the plan and the live state it was computed from.
    pub fn fingerprint(&self) -> String {
        let canonical = serde_json::to_vec(self).unwrap_or_default();
        let digest = Sha256::digest(&canonical);
        hex::encode(&digest[..8])
    }

    /// What will change, for people: the config diff with secrets masked, or the deployments.
    pub fn preview(&self) -> String {
        let mut out = String::new();
        match self {
            Plan::ReconfigureAuth(p) => {
                let _ = writeln!(
                    out,
                    "Rewrite auth/{}/config ({}):",
                    p.mount,
                    p.strategy.as_str()
                );
                let c = &p.current;
                let n = &p.change;
                let field = |out: &mut String, name: &str, old: String, new: String| {
                    if old == new {
                        let _ = writeln!(out, "  {name}: {new} (unchanged)");
                    } else {
                        let _ = writeln!(out, "  {name}: {old} → {new}");
                    }
                };
                field(
                    &mut out,
                    "kubernetes_host",
                    c.kubernetes_host.clone(),
                    n.kubernetes_host.clone(),
                );
                field(
                    &mut out,
                    "kubernetes_ca_cert",
                    pem_summary(&c.kubernetes_ca_cert),
                    pem_summary(&n.kubernetes_ca_cert),
                );
                field(
                    &mut out,
                    "pem_keys",
                    format!("{} keys", c.pem_keys.len()),
                    format!("{} keys", n.pem_keys.len()),
                );
                field(
                    &mut out,
                    "issuer",
                    format!("{:?}", c.issuer),
                    format!("{:?}", n.issuer),
                );
                field(
                    &mut out,
                    "disable_iss_validation",
                    c.disable_iss_validation.to_string(),
                    n.disable_iss_validation.to_string(),
                );
                field(
                    &mut out,
                    "disable_local_ca_jwt",
                    c.disable_local_ca_jwt.to_string(),
                    n.disable_local_ca_jwt.to_string(),
                );
                field(
                    &mut out,
                    "use_annotations_as_alias_metadata",
                    c.use_annotations_as_alias_metadata.to_string(),
                    n.use_annotations_as_alias_metadata.to_string(),
                );
                let old = if c.token_reviewer_jwt_set == Some(false) {
                    "(none)"
                } else {
                    "***"
                };
                let new = match &n.reviewer_token {
                    ReviewerToken::Fresh {
                        namespace,
                        service_account,
                        expiration_seconds,
                    } => format!(
                        "*** (fresh token for {namespace}/{service_account}, valid {})",
                        lifetime(*expiration_seconds)
                    ),
                    ReviewerToken::None => "(none: Vault uses its own pod token; needs Vault in the cluster with system:auth-delegator)".into(),
                };
                let _ = writeln!(out, "  token_reviewer_jwt: {old} → {new}");
                let _ = writeln!(out, "Then verify: a canary login must succeed.");
            }
            Plan::RestartDeployments(p) => {
                let only_deployments = p
                    .deployments
                    .iter()
                    .all(|d| d.kind == WorkloadKind::Deployment);
                if only_deployments {
                    let _ = writeln!(
                        out,
                        "Restart {} deployments (kubectl rollout restart, {} at a time), each watched until rolled out:",
                        p.deployments.len(),
                        p.concurrency
                    );
                } else {
                    let _ = writeln!(
                        out,
                        "Restart {} workloads ({}; kubectl rollout restart, {} at a time), each watched until rolled out:",
                        p.deployments.len(),
                        kind_counts(&p.deployments),
                        p.concurrency
                    );
                }
                for d in &p.deployments {
                    if d.kind == WorkloadKind::Deployment {
                        let _ = writeln!(out, "  {}/{} (role {})", d.namespace, d.name, d.role);
                    } else {
                        let _ = writeln!(
                            out,
                            "  {}/{} ({}, role {})",
                            d.namespace, d.name, d.kind, d.role
                        );
                    }
                }
                if !only_deployments {
                    let _ = writeln!(
                        out,
                        "A failed rollout stops the restarts: the next batch is not started."
                    );
                }
                if !p.not_restarted.is_empty() {
                    let _ = writeln!(out, "Not restarted (reported only):");
                    for n in &p.not_restarted {
                        let _ = writeln!(
                            out,
                            "  {} {}/{}: {}",
                            n.kind,
                            n.namespace,
                            n.name,
                            n.reason.text()
                        );
                    }
                }
            }
            Plan::ResyncSecrets(p) => {
                let _ = writeln!(
                    out,
                    "Re-sync {} External Secrets and Vault Secrets Operator objects (one annotation each, set to the time of the run):",
                    p.targets.len()
                );
                for t in &p.targets {
                    let what = match t.kind.as_str() {
                        "SecretStore" | "ClusterSecretStore" => "re-validate",
                        "ExternalSecret" => "force-sync",
                        _ => "reconcile",
                    };
                    let _ = writeln!(
                        out,
                        "  {} ({what}): {}=<unix time>",
                        t.label(),
                        t.annotation
                    );
                }
                if !p.not_resynced.is_empty() {
                    let _ = writeln!(out, "Not touched (reported only):");
                    for n in &p.not_resynced {
                        let _ = writeln!(
                            out,
                            "  {}: {}",
                            object_label(&n.kind, &n.namespace, &n.name),
                            n.reason.text()
                        );
                    }
                }
                if p.dynamic {
                    let _ = writeln!(
                        out,
                        "VaultDynamicSecrets included, as asked: each mints new credentials, and VSO restarts its rolloutRestartTargets."
                    );
                }
                let _ = writeln!(
                    out,
                    "Run it after the fix is verified: the operators then sync now instead of within their backoff."
                );
            }
        }
        let _ = writeln!(out, "Fingerprint {}", self.fingerprint());
        out
    }
}

/// Where a kind comes in a re-sync: stores first (an ExternalSecret of a store that is not
/// Ready fails at once), then ExternalSecrets, then VSO's secrets; `None` for what is not
/// annotated.
fn resync_rank(kind: &str) -> Option<(u8, &'static str)> {
    match kind {
        "ClusterSecretStore" | "SecretStore" => Some((0, STORE_REVALIDATE)),
        "ExternalSecret" => Some((1, ESO_FORCE_SYNC)),
        "VaultStaticSecret" | "VaultPKISecret" | "VaultDynamicSecret" => Some((2, VSO_RESYNC)),
        _ => None,
    }
}

/// The re-sync plan for the operator objects on the mount; VaultDynamicSecrets are listed,
/// not annotated, unless `dynamic` asks for them. Pure.
pub fn resync_plan(syncs: &[SecretSync], dynamic: bool) -> Result<ResyncPlan, PlanError> {
    let mut targets = Vec::new();
    let mut not_resynced = Vec::new();
    for s in syncs {
        let skip = |reason| NotResynced {
            kind: s.kind.clone(),
            namespace: s.namespace.clone(),
            name: s.name.clone(),
            reason,
        };
        if s.kind == "VaultDynamicSecret" && !dynamic {
            not_resynced.push(skip(NotResyncedReason::DynamicSecret));
        } else if s.kind == "ExternalSecret" && s.created_once {
            not_resynced.push(skip(NotResyncedReason::CreatedOnce));
        } else if let Some((rank, annotation)) = resync_rank(&s.kind) {
            targets.push((
                rank,
                ResyncTarget {
                    kind: s.kind.clone(),
                    namespace: s.namespace.clone(),
                    name: s.name.clone(),
                    annotation: annotation.into(),
                },
            ));
        }
    }
    targets.sort();
    targets.dedup();
    not_resynced.sort();
    not_resynced.dedup();
    if targets.is_empty() {
        return Err(PlanError::NothingToResync);
    }
    Ok(ResyncPlan {
        targets: targets.into_iter().map(|(_, t)| t).collect(),
        not_resynced,
        dynamic,
    })
}

/// The restart plan for the `affected` workloads, their uid and update strategy looked up in
/// `workloads` (the evidence) by kind, namespace and name. Pure.
pub fn restart_plan(
    affected: &[AffectedWorkload],
    workloads: &[Workload],
    concurrency: usize,
) -> Result<RestartPlan, PlanError> {
    let mut deployments = Vec::new();
    let mut not_restarted = Vec::new();
    for a in affected {
        let live = workloads
            .iter()
            .find(|w| w.kind == a.kind && w.namespace == a.namespace && w.name == a.name);
        let reason = if !a.via.logs_in() {
            Some(NotRestartedReason::VsoRestarts)
        } else if !a.kind.restartable() {
            Some(NotRestartedReason::for_kind(a.kind))
        } else if live.is_some_and(|w| w.on_delete) {
            Some(NotRestartedReason::OnDelete)
        } else {
            None
        };
        match reason {
            Some(reason) => not_restarted.push(NotRestarted {
                kind: a.kind,
                namespace: a.namespace.clone(),
                name: a.name.clone(),
                reason,
            }),
            None => deployments.push(DeploymentTarget {
                namespace: a.namespace.clone(),
                name: a.name.clone(),
                uid: live.map(|w| w.uid.clone()).unwrap_or_default(),
                role: a.roles.first().cloned().unwrap_or_default(),
                kind: a.kind,
            }),
        }
    }
    deployments.sort();
    deployments.dedup();
    not_restarted.sort();
    not_restarted.dedup();
    if deployments.is_empty() {
        return Err(PlanError::NothingToRestart);
    }
    Ok(RestartPlan {
        deployments,
        concurrency: concurrency.max(1),
        not_restarted,
    })
}

/// `5 Deployments, 1 StatefulSet, 1 DaemonSet`.
fn kind_counts(targets: &[DeploymentTarget]) -> String {
    [
        WorkloadKind::Deployment,
        WorkloadKind::StatefulSet,
        WorkloadKind::DaemonSet,
    ]
    .into_iter()
    .filter_map(|kind| {
        let n = targets.iter().filter(|t| t.kind == kind).count();
        (n > 0).then(|| format!("{n} {kind}{}", if n == 1 { "" } else { "s" }))
    })
    .collect::<Vec<_>>()
    .join(", ")
}

/// `365 days`, `12 h`, `45 min`.
fn lifetime(secs: i64) -> String {
    if secs >= 2 * 86_400 {
        format!("{} days", secs / 86_400)
    } else if secs >= 2 * 3600 {
        format!("{} h", secs / 3600)
    } else {
        format!("{} min", secs / 60)
    }
}

/// `PEM, 1 certificate, sha256 ab12cd34` — enough to compare, nothing to copy.
fn pem_summary(pem: &str) -> String {
    if pem.trim().is_empty() {
        return "(empty)".into();
    }
    let certs = pem.matches("-----BEGIN").count();
    let digest = Sha256::digest(pem.trim().as_bytes());
    format!(
        "PEM, {certs} block(s), sha256 {}",
        hex::encode(&digest[..4])
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::Via;

    fn affected(kind: WorkloadKind, name: &str) -> AffectedWorkload {
        AffectedWorkload {
            kind,
            namespace: "production".into(),
            name: name.into(),
            roles: vec![name.into()],
            via: Via::Injector,
        }
    }

    fn workload(kind: WorkloadKind, name: &str, on_delete: bool) -> Workload {
        Workload {
            namespace: "production".into(),
            name: name.into(),
            kind,
            uid: format!("uid-{name}"),
            role: name.into(),
            service_account: name.into(),
            replicas: 2,
            via: Via::Injector,
            on_delete,
        }
    }

    fn mixed() -> (Vec<AffectedWorkload>, Vec<Workload>) {
        use WorkloadKind::*;
        let all = [
            (Deployment, "payments-api", false),
            (StatefulSet, "ledger-db", false),
            (DaemonSet, "log-shipper", false),
            (StatefulSet, "legacy-cache", true),
            (CronJob, "nightly-report", false),
            (Deployment, "orders-api", false),
        ];
        (
            all.iter().map(|(k, n, _)| affected(*k, n)).collect(),
            all.iter().map(|(k, n, d)| workload(*k, n, *d)).collect(),
        )
    }

    #[test]
    fn statefulsets_and_daemonsets_are_restarted_on_delete_ones_and_cronjobs_reported() {
        let (affected, workloads) = mixed();
        let p = restart_plan(&affected, &workloads, 3).unwrap();
        let targets: Vec<(WorkloadKind, &str, &str)> = p
            .deployments
            .iter()
            .map(|d| (d.kind, d.name.as_str(), d.uid.as_str()))
            .collect();
        assert_eq!(
            targets,
            [
                (WorkloadKind::StatefulSet, "ledger-db", "uid-ledger-db"),
                (WorkloadKind::DaemonSet, "log-shipper", "uid-log-shipper"),
                (WorkloadKind::Deployment, "orders-api", "uid-orders-api"),
                (WorkloadKind::Deployment, "payments-api", "uid-payments-api"),
            ]
        );
        assert_eq!(
            p.not_restarted,
            [
                NotRestarted {
                    kind: WorkloadKind::StatefulSet,
                    namespace: "production".into(),
                    name: "legacy-cache".into(),
                    reason: NotRestartedReason::OnDelete,
                },
                NotRestarted {
                    kind: WorkloadKind::CronJob,
                    namespace: "production".into(),
                    name: "nightly-report".into(),
                    reason: NotRestartedReason::CronJob,
                },
            ]
        );
    }

    #[test]
    fn the_uid_is_looked_up_by_kind_too() {
        // A Deployment and a StatefulSet of the same name.
        let affected = [affected(WorkloadKind::StatefulSet, "cache")];
        let mut deployment = workload(WorkloadKind::Deployment, "cache", false);
        deployment.uid = "uid-deployment".into();
        let workloads = [
            deployment,
            workload(WorkloadKind::StatefulSet, "cache", false),
        ];
        let p = restart_plan(&affected, &workloads, 3).unwrap();
        assert_eq!(p.deployments[0].uid, "uid-cache");
    }

    #[test]
    fn nothing_to_restart_only_when_nothing_is_restartable() {
        let affected = [
            affected(WorkloadKind::StatefulSet, "legacy-cache"),
            affected(WorkloadKind::CronJob, "nightly-report"),
        ];
        let workloads = [
            workload(WorkloadKind::StatefulSet, "legacy-cache", true),
            workload(WorkloadKind::CronJob, "nightly-report", false),
        ];
        assert_eq!(
            restart_plan(&affected, &workloads, 3),
            Err(PlanError::NothingToRestart)
        );
        assert_eq!(restart_plan(&[], &[], 3), Err(PlanError::NothingToRestart));
        let p = restart_plan(&affected[1..], &workloads, 0);
        assert_eq!(p, Err(PlanError::NothingToRestart));
        let mut one = affected.to_vec();
        one.push(super::tests::affected(
            WorkloadKind::DaemonSet,
            "log-shipper",
        ));
        let p = restart_plan(&one, &workloads, 0).unwrap();
        assert_eq!(p.deployments.len(), 1);
        assert_eq!(p.concurrency, 1, "at least one at a time");
    }

    #[test]
    fn the_preview_names_kinds_and_what_is_not_restarted() {
        let (affected, workloads) = mixed();
        let plan = Plan::RestartDeployments(restart_plan(&affected, &workloads, 3).unwrap());
        let preview = plan.preview();
        let expected = format!(
            "Restart 4 workloads (2 Deployments, 1 StatefulSet, 1 DaemonSet; kubectl rollout restart, 3 at a time), each watched until rolled out:
  production/ledger-db (StatefulSet, role ledger-db)
  production/log-shipper (DaemonSet, role log-shipper)
  production/orders-api (role orders-api)
  production/payments-api (role payments-api)
A failed rollout stops the restarts: the next batch is not started.
Not restarted (reported only):
  StatefulSet production/legacy-cache: OnDelete: delete its pods to pick up the fix
  CronJob production/nightly-report: CronJob: its next run logs in afresh
Fingerprint {}
",
            plan.fingerprint()
        );
        assert_eq!(preview, expected);
    }

    #[test]
    fn a_deployments_only_preview_reads_as_before() {
        let affected = [
            affected(WorkloadKind::Deployment, "orders-api"),
            affected(WorkloadKind::Deployment, "payments-api"),
        ];
        let workloads = [
            workload(WorkloadKind::Deployment, "orders-api", false),
            workload(WorkloadKind::Deployment, "payments-api", false),
        ];
        let plan = Plan::RestartDeployments(restart_plan(&affected, &workloads, 3).unwrap());
        assert_eq!(
            plan.preview(),
            format!(
                "Restart 2 deployments (kubectl rollout restart, 3 at a time), each watched until rolled out:
  production/orders-api (role orders-api)
  production/payments-api (role payments-api)
Fingerprint {}
",
                plan.fingerprint()
            )
        );
        // No `not_restarted` key when there is none: fingerprints of such plans stand.
        let json = serde_json::to_value(&plan).unwrap();
        assert!(json.get("not_restarted").is_none(), "{json}");
    }

    #[test]
    fn the_fingerprint_covers_what_is_not_restarted() {
        let (affected, workloads) = mixed();
        let plan = restart_plan(&affected, &workloads, 3).unwrap();
        let mut other = plan.clone();
        other.not_restarted.pop();
        assert_ne!(
            Plan::RestartDeployments(plan.clone()).fingerprint(),
            Plan::RestartDeployments(other).fingerprint()
        );
        let mut other = plan.clone();
        other.deployments[0].kind = WorkloadKind::DaemonSet;
        assert_ne!(
            Plan::RestartDeployments(plan).fingerprint(),
            Plan::RestartDeployments(other).fingerprint()
        );
    }

    fn sync(kind: &str, namespace: &str, name: &str) -> SecretSync {
        SecretSync {
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
            ready: Some(false),
            message: String::new(),
            via: if kind.starts_with("Vault") {
                Via::Vso
            } else {
                Via::Eso
            },
            ..SecretSync::default()
        }
    }

    fn syncs() -> Vec<SecretSync> {
        let mut once = sync("ExternalSecret", "production", "bootstrap");
        once.created_once = true;
        vec![
            sync("VaultDynamicSecret", "production", "db-creds"),
            sync("VaultStaticSecret", "production", "orders-config"),
            sync("ExternalSecret", "production", "payments-db"),
            once,
            sync("VaultPKISecret", "production", "tls"),
            sync("SecretStore", "production", "local"),
            sync("ClusterSecretStore", "", "vault-backend"),
        ]
    }

    #[test]
    fn a_resync_annotates_stores_then_external_secrets_then_vso_and_leaves_dynamic_ones() {
        let p = resync_plan(&syncs(), false).unwrap();
        let targets: Vec<(String, &str)> = p
            .targets
            .iter()
            .map(|t| (t.label(), t.annotation.as_str()))
            .collect();
        assert_eq!(
            targets,
            [
                (
                    "ClusterSecretStore vault-backend".to_string(),
                    STORE_REVALIDATE
                ),
                ("SecretStore production/local".to_string(), STORE_REVALIDATE),
                (
                    "ExternalSecret production/payments-db".to_string(),
                    ESO_FORCE_SYNC
                ),
                ("VaultPKISecret production/tls".to_string(), VSO_RESYNC),
                (
                    "VaultStaticSecret production/orders-config".to_string(),
                    VSO_RESYNC
                ),
            ]
        );
        assert_eq!(
            p.not_resynced,
            [
                NotResynced {
                    kind: "ExternalSecret".into(),
                    namespace: "production".into(),
                    name: "bootstrap".into(),
                    reason: NotResyncedReason::CreatedOnce,
                },
                NotResynced {
                    kind: "VaultDynamicSecret".into(),
                    namespace: "production".into(),
                    name: "db-creds".into(),
                    reason: NotResyncedReason::DynamicSecret,
                },
            ]
        );
        // Only dynamic secrets (or nothing): nothing to annotate.
        assert_eq!(
            resync_plan(
                &[sync("VaultDynamicSecret", "production", "db-creds")],
                false
            ),
            Err(PlanError::NothingToResync)
        );
        assert_eq!(resync_plan(&[], false), Err(PlanError::NothingToResync));

        // Asked for: the dynamic secret is annotated with the other VSO secrets, and the
        // preview says what that does.
        let asked = resync_plan(&syncs(), true).unwrap();
        assert!(asked.dynamic);
        assert!(
            asked
                .targets
                .iter()
                .any(|t| t.kind == "VaultDynamicSecret" && t.annotation == VSO_RESYNC)
        );
        assert!(
            asked
                .not_resynced
                .iter()
                .all(|n| n.reason != NotResyncedReason::DynamicSecret)
        );
        assert!(
            Plan::ResyncSecrets(asked)
                .preview()
                .contains("VaultDynamicSecrets included, as asked")
        );
    }

    #[test]
    fn the_resync_preview_lists_what_is_annotated_and_what_is_left_alone() {
        let plan = Plan::ResyncSecrets(resync_plan(&syncs(), false).unwrap());
        assert_eq!(plan.action(), Action::ResyncSecrets);
        assert_eq!(
            plan.preview(),
            format!(
                "Re-sync 5 External Secrets and Vault Secrets Operator objects (one annotation each, set to the time of the run):
  ClusterSecretStore vault-backend (re-validate): vault-triage.io/revalidate-at=<unix time>
  SecretStore production/local (re-validate): vault-triage.io/revalidate-at=<unix time>
  ExternalSecret production/payments-db (force-sync): force-sync=<unix time>
  VaultPKISecret production/tls (reconcile): vault-triage.io/resync-at=<unix time>
  VaultStaticSecret production/orders-config (reconcile): vault-triage.io/resync-at=<unix time>
Not touched (reported only):
  ExternalSecret production/bootstrap: refreshPolicy CreatedOnce ignores force-sync once its Secret exists
  VaultDynamicSecret production/db-creds: a re-sync mints new credentials and may restart its rolloutRestartTargets; it syncs by itself within its requeue
Run it after the fix is verified: the operators then sync now instead of within their backoff.
Fingerprint {}
",
                plan.fingerprint()
            )
        );
    }

    #[test]
    fn the_resync_fingerprint_covers_the_targets_and_the_plan_round_trips() {
        let plan = resync_plan(&syncs(), false).unwrap();
        let fp = Plan::ResyncSecrets(plan.clone()).fingerprint();
        let mut fewer = plan.clone();
        fewer.targets.pop();
        assert_ne!(Plan::ResyncSecrets(fewer).fingerprint(), fp);
        let mut renamed = plan.clone();
        renamed.targets[2].name = "payments-db-2".into();
        assert_ne!(Plan::ResyncSecrets(renamed).fingerprint(), fp);
        let mut left_alone = plan.clone();
        left_alone.not_resynced.clear();
        assert_ne!(Plan::ResyncSecrets(left_alone).fingerprint(), fp);
        // Same input, same fingerprint, whatever the order of the evidence.
        let mut shuffled = syncs();
        shuffled.reverse();
        assert_eq!(
            Plan::ResyncSecrets(resync_plan(&shuffled, false).unwrap()).fingerprint(),
            fp
        );

        let json = serde_json::to_value(Plan::ResyncSecrets(plan.clone())).unwrap();
        assert_eq!(json["action"], "resync-secrets");
        assert_eq!(
            json["targets"][2],
            serde_json::json!({"kind": "ExternalSecret", "namespace": "production",
                "name": "payments-db", "annotation": "force-sync"})
        );
        assert_eq!(
            json["not_resynced"][1],
            serde_json::json!({"kind": "VaultDynamicSecret", "namespace": "production",
                "name": "db-creds", "reason": "dynamic-secret"})
        );
        assert_eq!(
            serde_json::from_value::<Plan>(json).unwrap(),
            Plan::ResyncSecrets(plan)
        );
    }

    #[test]
    fn plans_of_older_releases_still_read() {
        let old = serde_json::json!({
            "action": "restart-deployments",
            "deployments": [{"namespace": "production", "name": "payments-api",
                "uid": "u1", "role": "payments-api"}],
            "concurrency": 3
        });
        let plan: Plan = serde_json::from_value(old).unwrap();
        let Plan::RestartDeployments(p) = &plan else {
            panic!("{plan:?}")
        };
        assert_eq!(p.deployments[0].kind, WorkloadKind::Deployment);
        assert!(p.not_restarted.is_empty());
        // The new shape round-trips.
        let (affected, workloads) = mixed();
        let plan = Plan::RestartDeployments(restart_plan(&affected, &workloads, 3).unwrap());
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(
            json["not_restarted"][0],
            serde_json::json!({"kind": "StatefulSet", "namespace": "production",
                "name": "legacy-cache", "reason": "on-delete"})
        );
        assert_eq!(json["deployments"][0]["kind"], "StatefulSet");
        assert_eq!(serde_json::from_value::<Plan>(json).unwrap(), plan);
    }
}
