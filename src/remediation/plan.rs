//! Plans: exactly what a remediation will change, computed from a triage report, with a
//! fingerprint over the plan and the live state it was computed from.
//!
//! Building a plan is pure. The executor rebuilds the plan from a fresh triage and refuses
//! when the fingerprint differs: an approval covers exactly what was shown.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::diagnosis::{Action, RemediationKind, Report, VerdictCode};
use crate::evidence::AuthConfig;

/// Default lifetime asked for a rotated reviewer token (the API server may shorten it).
pub const DEFAULT_REVIEWER_TOKEN_SECONDS: i64 = 365 * 24 * 3600;
/// Deployments restarted at once.
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

/// One deployment to restart, by identity (a recreated deployment has another uid).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DeploymentTarget {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub role: String,
}

/// `restart-deployments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartPlan {
    pub deployments: Vec<DeploymentTarget>,
    pub concurrency: usize,
}

/// A remediation plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Plan {
    ReconfigureAuth(Box<ReconfigurePlan>),
    RestartDeployments(RestartPlan),
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
    #[error("no affected deployment to restart")]
    NothingToRestart,
    #[error("no cluster {0} in the config")]
    UnknownCluster(String),
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

    /// `restart-deployments` for the affected deployments in `report`.
    pub fn restart(report: &Report, settings: &PlanSettings) -> Result<Plan, PlanError> {
        let affected = &report.verdict.affected_deployments;
        let uids = report
            .evidence
            .workloads
            .value()
            .cloned()
            .unwrap_or_default();
        let mut deployments: Vec<DeploymentTarget> = affected
            .iter()
            .map(|d| DeploymentTarget {
                namespace: d.namespace.clone(),
                name: d.name.clone(),
                uid: uids
                    .iter()
                    .find(|w| w.namespace == d.namespace && w.name == d.name)
                    .map(|w| w.uid.clone())
                    .unwrap_or_default(),
                role: d.role.clone(),
            })
            .collect();
        deployments.sort();
        if deployments.is_empty() {
            return Err(PlanError::NothingToRestart);
        }
        Ok(Plan::RestartDeployments(RestartPlan {
            deployments,
            concurrency: settings.restart_concurrency.max(1),
        }))
    }

    pub fn action(&self) -> Action {
        match self {
            Plan::ReconfigureAuth(_) => Action::ReconfigureAuth,
            Plan::RestartDeployments(_) => Action::RestartDeployments,
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
                let _ = writeln!(
                    out,
                    "Restart {} deployments (kubectl rollout restart, {} at a time), each watched until rolled out:",
                    p.deployments.len(),
                    p.concurrency
                );
                for d in &p.deployments {
                    let _ = writeln!(out, "  {}/{} (role {})", d.namespace, d.name, d.role);
                }
            }
        }
        let _ = writeln!(out, "Fingerprint {}", self.fingerprint());
        out
    }
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
