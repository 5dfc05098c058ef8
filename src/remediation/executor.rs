//! The executor: the only code that writes to Vault or Kubernetes.
//!
//! At quorum it re-probes, rebuilds the plan from the fresh evidence and refuses when the
//! fingerprint differs from the approved one; then it runs the plan step by step, reporting
//! each step, and verifies the result.

use std::sync::Mutex;
use std::time::Duration;

use futures::StreamExt as _;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::plan::{
    Plan, PlanError, PlanSettings, ReconfigurePlan, RestartPlan, ReviewerToken, Strategy,
};
use super::restart;
use super::rollout::RolloutStatus;
use crate::diagnosis::RemediationKind;
use crate::diagnosis::Report;
use crate::evidence::AuthConfig;
use crate::probes::triage;
use crate::probes::{ProbeTarget, Probes};

/// Longest wait for one deployment to roll out.
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
            Plan::RestartDeployments(p) => Ok(still_there(p, &fresh)),
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
        let (ok, summary) = match approved {
            Plan::ReconfigureAuth(p) => {
                Box::pin(self.reconfigure(p, &record, may_act, &rotated)).await
            }
            Plan::RestartDeployments(p) => Box::pin(self.restart(p, &record, may_act)).await,
        };
        Ok(ExecutionOutcome {
            ok,
            summary,
            steps: steps.into_inner().unwrap_or_default(),
            rotated_reviewer: rotated.into_inner().unwrap_or_default(),
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

    async fn restart(
        &self,
        plan: &RestartPlan,
        record: &(dyn Fn(Step) + Sync),
        may_act: &MayAct<'_>,
    ) -> (bool, String) {
        let Some(kube) = &self.probes.kube else {
            record(Step {
                step: "restart".into(),
                ok: false,
                detail: "no Kubernetes access".into(),
            });
            return (false, "not run: no Kubernetes access".into());
        };
        let results: Vec<bool> = futures::stream::iter(plan.deployments.clone())
            .map(|d| async move {
                let id = format!("{}/{}", d.namespace, d.name);
                match kube.deployment(&d.namespace, &d.name).await {
                    Ok(Some(dep)) if dep.spec.paused == Some(true) => {
                        record(Step {
                            step: format!("restart {id}"),
                            ok: false,
                            detail: "can't restart paused deployment (run rollout resume first)"
                                .into(),
                        });
                        return false;
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        record(Step {
                            step: format!("restart {id}"),
                            ok: false,
                            detail: "the deployment no longer exists".into(),
                        });
                        return false;
                    }
                    Err(e) => {
                        record(Step {
                            step: format!("restart {id}"),
                            ok: false,
                            detail: e.to_string(),
                        });
                        return false;
                    }
                }
                if let Err(why) = may_act().await {
                    record(Step {
                        step: format!("restart {id}"),
                        ok: false,
                        detail: format!("stopped before restarting: {why}"),
                    });
                    return false;
                }
                if let Err(e) = restart::restart(kube, &d.namespace, &d.name).await {
                    record(Step {
                        step: format!("restart {id}"),
                        ok: false,
                        detail: e.to_string(),
                    });
                    return false;
                }
                record(Step {
                    step: format!("restart {id}"),
                    ok: true,
                    detail: format!("deployment.apps/{} restarted", d.name),
                });
                let status =
                    restart::watch(kube, &d.namespace, &d.name, self.rollout_timeout, |m| {
                        if m.starts_with("Waiting") {
                            record(Step {
                                step: format!("progress {id}"),
                                ok: true,
                                detail: m.to_string(),
                            });
                        }
                    })
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
            })
            .buffer_unordered(plan.concurrency.max(1))
            .collect()
            .await;
        let done = results.iter().filter(|ok| **ok).count();
        let ok = done == results.len();
        (
            ok,
            format!("{done} of {} deployments rolled out", results.len()),
        )
    }
}

/// The approved restart plan as the cluster has it now: deployments that are gone are
/// dropped and recreated ones carry their new uid, so any change alters the fingerprint.
/// (The verdict is not part of it: restarts follow a fix, when triage says healthy.)
fn still_there(approved: &RestartPlan, fresh: &Report) -> Plan {
    let workloads = fresh
        .evidence
        .workloads
        .value()
        .cloned()
        .unwrap_or_default();
    let deployments = approved
        .deployments
        .iter()
        .filter_map(|d| {
            workloads
                .iter()
                .find(|w| w.namespace == d.namespace && w.name == d.name)
                .map(|w| super::plan::DeploymentTarget {
                    uid: w.uid.clone(),
                    role: w.role.clone(),
                    ..d.clone()
                })
        })
        .collect();
    Plan::RestartDeployments(RestartPlan {
        deployments,
        concurrency: approved.concurrency,
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
                    .map(|d| format!("{}/{}", d.namespace, d.name))
                    .collect::<Vec<_>>()
            };
            if names(a) != names(c) {
                format!("the deployments are now {}", names(c).join(", "))
            } else {
                "a deployment was recreated".into()
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
}
