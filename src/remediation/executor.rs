//! The executor: the only code that writes to Vault or Kubernetes.
//!
//! At quorum it re-probes, rebuilds the plan from the fresh evidence and refuses when the
//! fingerprint differs from the approved one; then it runs the plan step by step, reporting
//! each step, and verifies the result.

use std::sync::Mutex;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use std::fmt::Write as _;

use super::plan::{
    DeploymentTarget, Plan, PlanError, PlanSettings, ReconfigurePlan, RestartPlan, ResyncPlan,
    ResyncTarget, ReviewerToken, Strategy,
};
use super::restart;
use super::rollout::RolloutStatus;
use crate::diagnosis::RemediationKind;
use crate::diagnosis::Report;
use crate::evidence::{AuthConfig, SecretSync, Workload, WorkloadKind};
use crate::probes::triage;
use crate::probes::{ProbeTarget, Probes};

/// The field manager of the `resync-secrets` annotations.
pub const RESYNC_FIELD_MANAGER: &str = "vault-triage";

/// Longest wait for one workload to roll out.
pub const DEFAULT_ROLLOUT_TIMEOUT: Duration = Duration::from_secs(300);

/// Asked before each change to the world: `Err(reason)` stops the run (a deposed leader).
pub type MayAct<'a> = dyn Fn() -> BoxFuture<'a, Result<(), String>> + Send + Sync + 'a;

/// One step of an execution, as reported to people and the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub step: String,
    pub ok: bool,
    pub detail: String,
}

/// How an execution ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionOutcome {
    pub ok: bool,
    pub summary: String,
    pub steps: Vec<Step>,
    /// A reviewer token was written: its ServiceAccount and expiry (never the token).
    pub rotated_reviewer: Option<(String, Option<chrono::DateTime<chrono::Utc>>)>,
    /// Restarts: the workloads whose restart or rollout failed (`Deployment production/x`);
    /// re-syncs: the objects whose annotation failed (`ExternalSecret production/x`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<String>,
    /// Restarts: the workloads of the plan left unrestarted because a batch before theirs
    /// failed; re-syncs: the objects left unannotated after a stop (a deposed leader).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_started: Vec<String>,
}

/// Why an approved plan was not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    #[error(
        "the world changed since the plan was approved ({reason}); nothing was changed, triage again and approve the new plan"
    )]
    WorldChanged {
        approved: String,
        current: String,
        reason: String,
    },
}

/// Everything the executor needs.
#[derive(Debug, Clone)]
pub struct Remediator {
    pub probes: Probes,
    pub target: ProbeTarget,
    pub settings: PlanSettings,
    pub rollout_timeout: Duration,
}

impl Remediator {
    /// Builds the plan of the fix `kind` from `report`: the one place a remediation kind
    /// becomes an action and a strategy.
    pub fn plan(&self, report: &Report, kind: RemediationKind) -> Result<Plan, PlanError> {
        match kind {
            RemediationKind::RotateReviewer => {
                Plan::reconfigure(report, Strategy::RotateReviewer, &self.settings)
            }
            RemediationKind::UseLocalToken => {
                Plan::reconfigure(report, Strategy::UseLocalToken, &self.settings)
            }
            RemediationKind::RestartDeployments => Plan::restart(report, &self.settings),
            RemediationKind::ResyncSecrets => Plan::resync(report, false),
            RemediationKind::ResyncDynamicSecrets => Plan::resync(report, true),
        }
    }

    /// Re-probes, checks `approved` still matches the world, runs it and verifies.
    /// `progress` is called with every step as it completes.
    pub async fn execute_approved(
        &self,
        approved: &Plan,
        progress: &(dyn Fn(&Step) + Send + Sync),
    ) -> Result<ExecutionOutcome, ExecError> {
        let always = || -> BoxFuture<'_, Result<(), String>> { Box::pin(async { Ok(()) }) };
        self.execute_guarded(approved, progress, &always).await
    }

    /// [`Remediator::execute_approved`], asking `may_act` before each change to the world
    /// (the config write, each restart): an `Err` stops the run there with that reason.
    pub async fn execute_guarded(
        &self,
        approved: &Plan,
        progress: &(dyn Fn(&Step) + Send + Sync),
        may_act: &MayAct<'_>,
    ) -> Result<ExecutionOutcome, ExecError> {
        let fresh = Box::pin(triage(&self.probes, &self.target)).await;
        let current = match approved {
            Plan::ReconfigureAuth(p) => self.plan(&fresh, p.strategy.kind()),
            Plan::RestartDeployments(p) => Ok(still_there(
                p,
                &fresh
                    .evidence
                    .workloads
                    .value()
                    .cloned()
                    .unwrap_or_default(),
            )),
            Plan::ResyncSecrets(p) => fresh
                .evidence
                .secret_syncs
                .value()
                .map(|syncs| still_listed(p, syncs))
                .ok_or(PlanError::SecretSyncsUnknown),
        };
        let current = match current {
            Ok(p) => p,
            Err(e) => {
                return Err(ExecError::WorldChanged {
                    approved: approved.fingerprint(),
                    current: String::new(),
                    reason: format!("a fresh triage says {}: {e}", fresh.verdict.code),
                });
            }
        };
        if current.fingerprint() != approved.fingerprint() {
            return Err(ExecError::WorldChanged {
                approved: approved.fingerprint(),
                current: current.fingerprint(),
                reason: difference(approved, &current),
            });
        }
        let steps = Mutex::new(Vec::new());
        let record = |s: Step| {
            progress(&s);
            if let Ok(mut v) = steps.lock() {
                v.push(s);
            }
        };
        let rotated = Mutex::new(None);
        let (ok, summary, restarts) = match approved {
            Plan::ReconfigureAuth(p) => {
                let (ok, summary) = Box::pin(self.reconfigure(p, &record, may_act, &rotated)).await;
                (ok, summary, RestartRun::default())
            }
            Plan::RestartDeployments(p) => {
                let run = Box::pin(self.restart(p, &record, may_act)).await;
                (run.ok, run.summary.clone(), run)
            }
            Plan::ResyncSecrets(p) => {
                let run = Box::pin(self.resync(p, &record, may_act)).await;
                (run.ok, run.summary.clone(), run)
            }
        };
        Ok(ExecutionOutcome {
            ok,
            summary,
            steps: steps.into_inner().unwrap_or_default(),
            rotated_reviewer: rotated.into_inner().unwrap_or_default(),
            failed: restarts.failed,
            not_started: restarts.not_started,
        })
    }

    #[allow(clippy::type_complexity)]
    async fn reconfigure(
        &self,
        plan: &ReconfigurePlan,
        record: &(dyn Fn(Step) + Sync),
        may_act: &MayAct<'_>,
        rotated: &Mutex<Option<(String, Option<chrono::DateTime<chrono::Utc>>)>>,
    ) -> (bool, String) {
        let step = |name: &str, ok: bool, detail: String| {
            record(Step {
                step: name.into(),
                ok,
                detail,
            })
        };
        let Some(kube) = &self.probes.kube else {
            step("mint", false, "no Kubernetes access".into());
            return (false, "not run: no Kubernetes access".into());
        };
        let token = match &plan.change.reviewer_token {
            ReviewerToken::Fresh {
                namespace,
                service_account,
                expiration_seconds,
            } => match kube
                .token_request(namespace, service_account, None, *expiration_seconds)
                .await
            {
                Ok(t) => {
                    step(
                        "mint reviewer token",
                        true,
                        format!(
                            "TokenRequest for {namespace}/{service_account}{}",
                            t.expires_at
                                .map(|x| format!(", expires {}", x.format("%Y-%m-%d %H:%M UTC")))
                                .unwrap_or_default()
                        ),
                    );
                    if let Ok(mut r) = rotated.lock() {
                        *r = Some((format!("{namespace}/{service_account}"), t.expires_at));
                    }
                    Some(t.token)
                }
                Err(e) => {
                    step("mint reviewer token", false, e.to_string());
                    return (
                        false,
                        format!("no change made: minting the reviewer token failed: {e}"),
                    );
                }
            },
            ReviewerToken::None => None,
        };
        let desired = AuthConfig {
            kubernetes_host: plan.change.kubernetes_host.clone(),
            kubernetes_ca_cert: plan.change.kubernetes_ca_cert.clone(),
            pem_keys: plan.change.pem_keys.clone(),
            issuer: plan.change.issuer.clone(),
            disable_iss_validation: plan.change.disable_iss_validation,
            disable_local_ca_jwt: plan.change.disable_local_ca_jwt,
            token_reviewer_jwt_set: Some(token.is_some()),
            use_annotations_as_alias_metadata: plan.change.use_annotations_as_alias_metadata,
        };
        let vault = &self.probes.vault;
        if let Err(why) = may_act().await {
            step(
                "write config",
                false,
                format!("stopped before writing: {why}"),
            );
            return (false, format!("stopped, nothing written: {why}"));
        }
        if let Err(e) = vault
            .write_auth_config(&plan.mount, &desired, token.as_ref())
            .await
        {
            step("write config", false, e.to_string());
            return (
                false,
                format!("writing auth/{}/config failed: {e}", plan.mount),
            );
        }
        step(
            "write config",
            true,
            format!(
                "auth/{}/config rewritten ({}); every other field carried across",
                plan.mount,
                plan.strategy.as_str()
            ),
        );
        match vault.auth_config(&plan.mount).await {
            Ok(Some(back)) => {
                let changed = changed_fields(&desired, &back);
                if changed.is_empty() {
                    step(
                        "read back",
                        true,
                        "host, CA, PEM keys, issuer settings and flags as before".into(),
                    );
                } else {
                    step(
                        "read back",
                        false,
                        format!("differs from what was written: {}", changed.join(", ")),
                    );
                }
            }
            Ok(None) => step("read back", false, "the config is gone".into()),
            Err(e) => step("read back", false, e.to_string()),
        }
        let verified = self.verify_login().await;
        match &verified {
            Ok(detail) => step("verify", true, detail.clone()),
            Err(detail) => step("verify", false, detail.clone()),
        }
        match verified {
            Ok(_) => (
                true,
                format!("auth/{} fixed: a canary login succeeds", plan.mount),
            ),
            Err(why) => (
                false,
                format!("config written but the canary login still fails: {why}"),
            ),
        }
    }

    /// A canary login with a fresh token; `Ok(detail)` when it succeeds.
    pub async fn verify_login(&self) -> Result<String, String> {
        let Some(kube) = &self.probes.kube else {
            return Err("no Kubernetes access to mint a canary token".into());
        };
        let canary = &self.target.canary;
        let token = kube
            .token_request(
                &canary.namespace,
                &canary.service_account,
                canary.audience.as_deref(),
                crate::probes::CANARY_TOKEN_SECONDS,
            )
            .await
            .map_err(|e| format!("canary TokenRequest failed: {e}"))?;
        let vault = &self.probes.vault;
        match vault
            .login(&self.target.auth_mount, &canary.role, &token.token)
            .await
        {
            Ok(ok) => {
                let _ = vault.with_token(ok.client_token).revoke_self().await;
                Ok(format!(
                    "canary login through auth/{} succeeds (200)",
                    self.target.auth_mount
                ))
            }
            Err(e) => Err(format!("canary login: {e}")),
        }
    }

    /// Restarts the plan's workloads in batches of `concurrency`, each watched by kubectl's
    /// rules for its kind; after a batch in which a restart or rollout failed, the next batch
    /// is not started.
    async fn restart(
        &self,
        plan: &RestartPlan,
        record: &(dyn Fn(Step) + Sync),
        may_act: &MayAct<'_>,
    ) -> RestartRun {
        let Some(kube) = &self.probes.kube else {
            return RestartRun::without_kubernetes("restart", record);
        };
        let noun = if plan
            .deployments
            .iter()
            .all(|d| d.kind == WorkloadKind::Deployment)
        {
            "deployments"
        } else {
            "workloads"
        };
        let total = plan.deployments.len();
        let batches = run_batches(&plan.deployments, plan.concurrency, |d| {
            self.restart_one(kube, d, record, may_act)
        })
        .await;
        let (done, failed, not_started) = (batches.done, batches.failed, batches.not_started);
        let mut summary = format!("{done} of {total} {noun} rolled out");
        if !failed.is_empty() {
            let _ = write!(summary, "; failed: {}", failed.join(", "));
        }
        if !not_started.is_empty() {
            let _ = write!(
                summary,
                "; stopped, not restarted: {}",
                not_started.join(", ")
            );
            record(Step {
                step: "stop".into(),
                ok: false,
                detail: format!(
                    "{} failed, so the next batch was not started; not restarted: {}. A new approval of the plan can continue (it restarts every workload of the plan again)",
                    failed.join(", "),
                    not_started.join(", ")
                ),
            });
        }
        RestartRun {
            ok: failed.is_empty() && not_started.is_empty(),
            summary,
            failed,
            not_started,
        }
    }

    /// Restarts one workload and watches its rollout; `true` once it rolled out.
    async fn restart_one(
        &self,
        kube: &crate::kube::KubeClient,
        d: &DeploymentTarget,
        record: &(dyn Fn(Step) + Sync),
        may_act: &MayAct<'_>,
    ) -> bool {
        // Deployments keep the step names of older releases (`restart production/x`).
        let id = match d.kind {
            WorkloadKind::Deployment => format!("{}/{}", d.namespace, d.name),
            kind => format!("{kind} {}/{}", d.namespace, d.name),
        };
        let fail = |detail: String| {
            record(Step {
                step: format!("restart {id}"),
                ok: false,
                detail,
            });
            false
        };
        match restart::get(kube, d.kind, &d.namespace, &d.name).await {
            Ok(Some(live)) => {
                if let Some(why) = live.refusal() {
                    return fail(why.into());
                }
                let uid = live.uid().unwrap_or_default();
                if !d.uid.is_empty() && uid != d.uid {
                    return fail(format!(
                        "the {} was recreated since the plan was made (uid {uid}, planned {}); triage again",
                        d.kind.as_str().to_ascii_lowercase(),
                        d.uid
                    ));
                }
            }
            Ok(None) => {
                return fail(format!(
                    "the {} no longer exists",
                    d.kind.as_str().to_ascii_lowercase()
                ));
            }
            Err(e) => return fail(e.to_string()),
        }
        if let Err(why) = may_act().await {
            return fail(format!("stopped before restarting: {why}"));
        }
        if let Err(e) = restart::restart(kube, d.kind, &d.namespace, &d.name).await {
            return fail(e.to_string());
        }
        record(Step {
            step: format!("restart {id}"),
            ok: true,
            detail: format!("{}/{} restarted", restart::resource(d.kind), d.name),
        });
        let status = restart::watch(
            kube,
            d.kind,
            &d.namespace,
            &d.name,
            self.rollout_timeout,
            |m| {
                record(Step {
                    step: format!("progress {id}"),
                    ok: true,
                    detail: m.to_string(),
                })
            },
        )
        .await;
        let (ok, detail) = match status {
            RolloutStatus::Complete(m) => (true, m),
            RolloutStatus::Failed(m) | RolloutStatus::Progressing(m) => (false, m),
        };
        record(Step {
            step: format!("rollout {id}"),
            ok,
            detail,
        });
        ok
    }
}

impl RestartRun {
    /// A run that could not start: the bot has no Kubernetes access (recorded as `step`).
    fn without_kubernetes(step: &str, record: &(dyn Fn(Step) + Sync)) -> RestartRun {
        record(Step {
            step: step.into(),
            ok: false,
            detail: "no Kubernetes access".into(),
        });
        RestartRun {
            summary: "not run: no Kubernetes access".into(),
            ..RestartRun::default()
        }
    }
}

impl Remediator {
    /// Annotates the plan's objects one by one, in the plan's order (stores, ExternalSecrets,
    /// VSO secrets), each with its annotation set to the unix time of the run: a merge patch
    /// the operators answer with an immediate reconcile. One that fails is reported and the
    /// others are still annotated; a `may_act` refusal stops the run there.
    async fn resync(
        &self,
        plan: &ResyncPlan,
        record: &(dyn Fn(Step) + Sync),
        may_act: &MayAct<'_>,
    ) -> RestartRun {
        let Some(kube) = &self.probes.kube else {
            return RestartRun::without_kubernetes("resync", record);
        };
        let now = chrono::Utc::now().timestamp().to_string();
        let total = plan.targets.len();
        let mut done = 0;
        let mut failed = Vec::new();
        let mut not_started = Vec::new();
        for (i, t) in plan.targets.iter().enumerate() {
            let step = format!("annotate {}", t.label());
            let fail = |failed: &mut Vec<String>, detail: String| {
                record(Step {
                    step: step.clone(),
                    ok: false,
                    detail,
                });
                failed.push(t.label());
            };
            if let Err(why) = may_act().await {
                fail(&mut failed, format!("stopped before annotating: {why}"));
                not_started = plan.targets[i + 1..]
                    .iter()
                    .map(ResyncTarget::label)
                    .collect();
                break;
            }
            let Some(api) = crate::kube::operators::crd_of_kind(&t.kind) else {
                fail(&mut failed, format!("unknown kind {}", t.kind));
                continue;
            };
            let annotations =
                std::collections::BTreeMap::from([(t.annotation.clone(), now.clone())]);
            match kube
                .annotate_custom(
                    api,
                    &t.namespace,
                    &t.name,
                    RESYNC_FIELD_MANAGER,
                    &annotations,
                )
                .await
            {
                Ok(_) => {
                    done += 1;
                    let what = match t.kind.as_str() {
                        "SecretStore" | "ClusterSecretStore" => "the store re-validates now",
                        "ExternalSecret" => "External Secrets refreshes it now",
                        _ => "the Vault Secrets Operator syncs it now",
                    };
                    record(Step {
                        step,
                        ok: true,
                        detail: format!("{}={now}: {what}", t.annotation),
                    });
                }
                Err(e) if e.code() == Some(404) => {
                    fail(&mut failed, format!("the {} no longer exists", t.kind));
                }
                Err(e) => fail(&mut failed, e.to_string()),
            }
        }
        let mut summary = format!(
            "{done} of {total} External Secrets and Vault Secrets Operator objects annotated to sync now"
        );
        if !failed.is_empty() {
            let _ = write!(summary, "; failed: {}", failed.join(", "));
        }
        if !not_started.is_empty() {
            let _ = write!(
                summary,
                "; stopped, not annotated: {}",
                not_started.join(", ")
            );
        }
        RestartRun {
            ok: failed.is_empty() && not_started.is_empty(),
            summary,
            failed,
            not_started,
        }
    }
}

/// How the restarts (or the annotations of a re-sync) of a plan went.
#[derive(Debug, Default)]
struct RestartRun {
    ok: bool,
    summary: String,
    failed: Vec<String>,
    not_started: Vec<String>,
}

/// What [`run_batches`] did.
#[derive(Debug, Default, PartialEq, Eq)]
struct Batches {
    /// How many rolled out.
    done: usize,
    /// Those that failed, [`labelled`].
    failed: Vec<String>,
    /// Those of the batches after a failed one, never started, [`labelled`].
    not_started: Vec<String>,
}

/// Runs `one` on `targets` in batches of `concurrency` (each batch at once, to its end);
/// after a batch in which one failed, the next batch is not started.
async fn run_batches<'t, F, Fut>(
    targets: &'t [DeploymentTarget],
    concurrency: usize,
    one: F,
) -> Batches
where
    F: Fn(&'t DeploymentTarget) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut out = Batches::default();
    let mut batches = targets.chunks(concurrency.max(1));
    for batch in batches.by_ref() {
        let results = futures::future::join_all(batch.iter().map(&one)).await;
        for (d, ok) in batch.iter().zip(results) {
            if ok {
                out.done += 1;
            } else {
                out.failed.push(labelled(d));
            }
        }
        if !out.failed.is_empty() {
            break;
        }
    }
    out.not_started = batches.flatten().map(labelled).collect();
    out
}

/// `Deployment production/payments-api`.
fn labelled(d: &DeploymentTarget) -> String {
    format!("{} {}/{}", d.kind, d.namespace, d.name)
}

/// The approved restart plan as the cluster has it now: workloads that are gone (or became
/// OnDelete) are dropped and recreated ones carry their new uid, so any change alters the
/// fingerprint. The workloads reported as not restarted are carried as approved: nothing is
/// done to them. (The verdict is not part of it: restarts follow a fix, when triage says
/// healthy.)
fn still_there(approved: &RestartPlan, workloads: &[Workload]) -> Plan {
    let deployments = approved
        .deployments
        .iter()
        .filter_map(|d| {
            workloads
                .iter()
                .find(|w| w.kind == d.kind && w.namespace == d.namespace && w.name == d.name)
                .filter(|w| !w.on_delete)
                .map(|w| DeploymentTarget {
                    uid: w.uid.clone(),
                    role: w.role.clone(),
                    ..d.clone()
                })
        })
        .collect();
    Plan::RestartDeployments(RestartPlan {
        deployments,
        concurrency: approved.concurrency,
        not_restarted: approved.not_restarted.clone(),
    })
}

/// The approved re-sync plan as the cluster has it now: targets no longer on the mount (or
/// an ExternalSecret now `CreatedOnce`) are dropped, so any change alters the fingerprint;
/// the objects reported as not touched are carried as approved. (The verdict is not part of
/// it: a re-sync follows a fix, when triage says healthy.)
fn still_listed(approved: &ResyncPlan, syncs: &[SecretSync]) -> Plan {
    let targets = approved
        .targets
        .iter()
        .filter(|t| {
            syncs.iter().any(|s| {
                s.kind == t.kind
                    && s.namespace == t.namespace
                    && s.name == t.name
                    && !s.created_once
            })
        })
        .cloned()
        .collect();
    Plan::ResyncSecrets(ResyncPlan {
        targets,
        not_resynced: approved.not_resynced.clone(),
        dynamic: approved.dynamic,
    })
}

/// Fields that differ between what was written and what was read back.
/// The fields of the config read back that differ from what was written. Destructured, so a
/// field added to [`AuthConfig`] does not compile until it is compared here.
fn changed_fields(written: &AuthConfig, back: &AuthConfig) -> Vec<&'static str> {
    let AuthConfig {
        kubernetes_host,
        kubernetes_ca_cert,
        pem_keys,
        issuer,
        disable_iss_validation,
        disable_local_ca_jwt,
        token_reviewer_jwt_set,
        use_annotations_as_alias_metadata,
    } = written;
    let mut out = Vec::new();
    if *kubernetes_host != back.kubernetes_host {
        out.push("kubernetes_host");
    }
    if kubernetes_ca_cert.trim() != back.kubernetes_ca_cert.trim() {
        out.push("kubernetes_ca_cert");
    }
    if *pem_keys != back.pem_keys {
        out.push("pem_keys");
    }
    if *issuer != back.issuer {
        out.push("issuer");
    }
    if *disable_iss_validation != back.disable_iss_validation {
        out.push("disable_iss_validation");
    }
    if *disable_local_ca_jwt != back.disable_local_ca_jwt {
        out.push("disable_local_ca_jwt");
    }
    // Plugins older than v0.18.0 do not say whether a reviewer token is set.
    if back.token_reviewer_jwt_set.is_some()
        && *token_reviewer_jwt_set != back.token_reviewer_jwt_set
    {
        out.push("token_reviewer_jwt_set");
    }
    if *use_annotations_as_alias_metadata != back.use_annotations_as_alias_metadata {
        out.push("use_annotations_as_alias_metadata");
    }
    out
}

/// In words, what differs between the approved plan and the one the world gives now.
fn difference(approved: &Plan, current: &Plan) -> String {
    match (approved, current) {
        (Plan::ReconfigureAuth(a), Plan::ReconfigureAuth(c)) => {
            if a.verdict != c.verdict {
                format!("the verdict was {} and is now {}", a.verdict, c.verdict)
            } else if a.current != c.current {
                "the auth config changed".into()
            } else {
                "the plan differs".into()
            }
        }
        (Plan::RestartDeployments(a), Plan::RestartDeployments(c)) => {
            let names = |p: &RestartPlan| {
                p.deployments
                    .iter()
                    .map(|d| match d.kind {
                        WorkloadKind::Deployment => format!("{}/{}", d.namespace, d.name),
                        kind => format!("{kind} {}/{}", d.namespace, d.name),
                    })
                    .collect::<Vec<_>>()
            };
            if names(a) != names(c) {
                format!("the deployments are now {}", names(c).join(", "))
            } else {
                "a deployment was recreated".into()
            }
        }
        (Plan::ResyncSecrets(a), Plan::ResyncSecrets(c)) => {
            let gone: Vec<String> = a
                .targets
                .iter()
                .filter(|t| !c.targets.contains(t))
                .map(ResyncTarget::label)
                .collect();
            if gone.is_empty() {
                "the plan differs".into()
            } else {
                format!("no longer on the mount: {}", gone.join(", "))
            }
        }
        _ => "the plan differs".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_read_back_compares_every_field() {
        let written = AuthConfig {
            kubernetes_host: "https://k".into(),
            token_reviewer_jwt_set: Some(true),
            ..AuthConfig::default()
        };
        assert!(changed_fields(&written, &written).is_empty());
        let back = AuthConfig {
            use_annotations_as_alias_metadata: true,
            ..written.clone()
        };
        assert_eq!(
            changed_fields(&written, &back),
            ["use_annotations_as_alias_metadata"]
        );
        let old_plugin = AuthConfig {
            token_reviewer_jwt_set: None,
            ..written.clone()
        };
        assert!(changed_fields(&written, &old_plugin).is_empty());
    }

    fn target(kind: WorkloadKind, name: &str) -> DeploymentTarget {
        DeploymentTarget {
            namespace: "production".into(),
            name: name.into(),
            uid: format!("uid-{name}"),
            role: name.into(),
            kind,
        }
    }

    fn targets() -> Vec<DeploymentTarget> {
        vec![
            target(WorkloadKind::Deployment, "a"),
            target(WorkloadKind::StatefulSet, "b"),
            target(WorkloadKind::DaemonSet, "c"),
            target(WorkloadKind::Deployment, "d"),
            target(WorkloadKind::Deployment, "e"),
            target(WorkloadKind::Deployment, "f"),
            target(WorkloadKind::Deployment, "g"),
        ]
    }

    #[tokio::test]
    async fn batches_run_in_order_and_all_roll_out() {
        let started = Mutex::new(Vec::new());
        let out = run_batches(&targets(), 3, |d| {
            started.lock().unwrap().push(d.name.clone());
            async { true }
        })
        .await;
        assert_eq!(out.done, 7);
        assert!(out.failed.is_empty() && out.not_started.is_empty());
        assert_eq!(started.into_inner().unwrap().join(""), "abcdefg");
    }

    #[tokio::test]
    async fn a_failed_rollout_stops_before_the_next_batch() {
        let started = Mutex::new(Vec::new());
        let out = run_batches(&targets(), 3, |d| {
            started.lock().unwrap().push(d.name.clone());
            let ok = d.name != "e";
            async move { ok }
        })
        .await;
        // The failing batch (d, e, f) runs to its end; g is never started.
        assert_eq!(started.into_inner().unwrap().join(""), "abcdef");
        assert_eq!(
            out,
            Batches {
                done: 5,
                failed: vec!["Deployment production/e".into()],
                not_started: vec!["Deployment production/g".into()],
            }
        );
        let out = run_batches(&targets(), 3, |d| {
            let ok = d.name != "b";
            async move { ok }
        })
        .await;
        assert_eq!(out.failed, ["StatefulSet production/b"]);
        assert_eq!(out.not_started.len(), 4);
        // Concurrency 0 is one at a time.
        let out = run_batches(&targets(), 0, |_| async { false }).await;
        assert_eq!(out.failed, ["Deployment production/a"]);
        assert_eq!(out.not_started.len(), 6);
    }

    fn workload(kind: WorkloadKind, name: &str, uid: &str, on_delete: bool) -> Workload {
        Workload {
            namespace: "production".into(),
            name: name.into(),
            kind,
            uid: uid.into(),
            role: name.into(),
            on_delete,
            ..Workload::default()
        }
    }

    #[test]
    fn the_resync_plan_as_the_cluster_has_it_now() {
        let sync = |kind: &str, ns: &str, name: &str| SecretSync {
            kind: kind.into(),
            namespace: ns.into(),
            name: name.into(),
            ready: Some(false),
            message: String::new(),
            via: crate::evidence::Via::Eso,
            created_once: false,
            ..SecretSync::default()
        };
        let listed = vec![
            sync("ClusterSecretStore", "", "vault-backend"),
            sync("ExternalSecret", "production", "payments-db"),
            sync("VaultDynamicSecret", "production", "db-creds"),
        ];
        let approved = super::super::plan::resync_plan(&listed, false).unwrap();
        let plan = Plan::ResyncSecrets(approved.clone());
        assert_eq!(still_listed(&approved, &listed), plan);
        // Gone from the mount, or now CreatedOnce: the fingerprint changes.
        let mut once = listed.clone();
        once[1].created_once = true;
        for now in [listed[..1].to_vec(), once] {
            let now = still_listed(&approved, &now);
            assert_ne!(now.fingerprint(), plan.fingerprint());
            assert_eq!(
                difference(&plan, &now),
                "no longer on the mount: ExternalSecret production/payments-db"
            );
        }
        // A new object on the mount is not part of the approval, and changes nothing.
        let mut more = listed.clone();
        more.push(sync("ExternalSecret", "production", "new"));
        assert_eq!(still_listed(&approved, &more), plan);
    }

    #[test]
    fn the_plan_as_the_cluster_has_it_now() {
        let approved = RestartPlan {
            deployments: vec![
                target(WorkloadKind::Deployment, "a"),
                target(WorkloadKind::StatefulSet, "b"),
            ],
            concurrency: 3,
            not_restarted: vec![super::super::plan::NotRestarted {
                kind: WorkloadKind::CronJob,
                namespace: "production".into(),
                name: "n".into(),
                reason: super::super::plan::NotRestartedReason::CronJob,
            }],
        };
        let same = [
            workload(WorkloadKind::Deployment, "a", "uid-a", false),
            workload(WorkloadKind::StatefulSet, "b", "uid-b", false),
        ];
        let plan = Plan::RestartDeployments(approved.clone());
        assert_eq!(still_there(&approved, &same), plan);
        // Recreated: another uid.
        let recreated = [
            workload(WorkloadKind::Deployment, "a", "uid-a", false),
            workload(WorkloadKind::StatefulSet, "b", "uid-b2", false),
        ];
        let now = still_there(&approved, &recreated);
        assert_ne!(now.fingerprint(), plan.fingerprint());
        assert_eq!(difference(&plan, &now), "a deployment was recreated");
        // Switched to OnDelete, or now a Deployment of that name: no longer the target.
        for changed in [
            workload(WorkloadKind::StatefulSet, "b", "uid-b", true),
            workload(WorkloadKind::Deployment, "b", "uid-b", false),
        ] {
            let now = still_there(
                &approved,
                &[
                    workload(WorkloadKind::Deployment, "a", "uid-a", false),
                    changed,
                ],
            );
            assert_ne!(now.fingerprint(), plan.fingerprint());
            assert_eq!(
                difference(&plan, &now),
                "the deployments are now production/a"
            );
        }
    }
}
