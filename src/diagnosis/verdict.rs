//! The verdict: code (contract, design §3), layer, confidence, and what to do.

use serde::{Deserialize, Serialize};

/// The verdict codes of design §3 (`verdict.code` in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictCode {
    Healthy,
    VaultUnreachable,
    VaultSealed,
    K8sAuthMountMissing,
    K8sAuthUnconfigured,
    ReviewerJwtExpired,
    ReviewerJwtRejected,
    ReviewerRbacMissing,
    KubeApiUnreachable,
    KubeCaMismatch,
    ClientJwtRejected,
    RoleBindingMismatch,
    AudienceMismatch,
    IssuerMismatch,
    RoleNotFound,
    PolicyDenied,
    Inconclusive,
}

impl VerdictCode {
    pub const ALL: [VerdictCode; 17] = [
        VerdictCode::Healthy,
        VerdictCode::VaultUnreachable,
        VerdictCode::VaultSealed,
        VerdictCode::K8sAuthMountMissing,
        VerdictCode::K8sAuthUnconfigured,
        VerdictCode::ReviewerJwtExpired,
        VerdictCode::ReviewerJwtRejected,
        VerdictCode::ReviewerRbacMissing,
        VerdictCode::KubeApiUnreachable,
        VerdictCode::KubeCaMismatch,
        VerdictCode::ClientJwtRejected,
        VerdictCode::RoleBindingMismatch,
        VerdictCode::AudienceMismatch,
        VerdictCode::IssuerMismatch,
        VerdictCode::RoleNotFound,
        VerdictCode::PolicyDenied,
        VerdictCode::Inconclusive,
    ];

    /// The code as written in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            VerdictCode::Healthy => "healthy",
            VerdictCode::VaultUnreachable => "vault_unreachable",
            VerdictCode::VaultSealed => "vault_sealed",
            VerdictCode::K8sAuthMountMissing => "k8s_auth_mount_missing",
            VerdictCode::K8sAuthUnconfigured => "k8s_auth_unconfigured",
            VerdictCode::ReviewerJwtExpired => "reviewer_jwt_expired",
            VerdictCode::ReviewerJwtRejected => "reviewer_jwt_rejected",
            VerdictCode::ReviewerRbacMissing => "reviewer_rbac_missing",
            VerdictCode::KubeApiUnreachable => "kube_api_unreachable",
            VerdictCode::KubeCaMismatch => "kube_ca_mismatch",
            VerdictCode::ClientJwtRejected => "client_jwt_rejected",
            VerdictCode::RoleBindingMismatch => "role_binding_mismatch",
            VerdictCode::AudienceMismatch => "audience_mismatch",
            VerdictCode::IssuerMismatch => "issuer_mismatch",
            VerdictCode::RoleNotFound => "role_not_found",
            VerdictCode::PolicyDenied => "policy_denied",
            VerdictCode::Inconclusive => "inconclusive",
        }
    }

    /// The layer of the Vault login flow that fails.
    pub fn layer(self) -> Layer {
        match self {
            VerdictCode::Healthy
            | VerdictCode::VaultUnreachable
            | VerdictCode::VaultSealed
            | VerdictCode::KubeApiUnreachable => Layer::Availability,
            VerdictCode::ReviewerJwtExpired
            | VerdictCode::ReviewerJwtRejected
            | VerdictCode::ReviewerRbacMissing
            | VerdictCode::ClientJwtRejected
            | VerdictCode::Inconclusive => Layer::Authentication,
            VerdictCode::K8sAuthMountMissing
            | VerdictCode::K8sAuthUnconfigured
            | VerdictCode::KubeCaMismatch
            | VerdictCode::RoleBindingMismatch
            | VerdictCode::AudienceMismatch
            | VerdictCode::IssuerMismatch
            | VerdictCode::RoleNotFound => Layer::Configuration,
            VerdictCode::PolicyDenied => Layer::Authorization,
        }
    }

    /// Does the fault stop every login through the mount (not one role's)?
    /// How bad it is, for a marker or a colour: one decision for every renderer.
    pub fn severity(self) -> Severity {
        match self {
            VerdictCode::Healthy => Severity::Fine,
            VerdictCode::PolicyDenied | VerdictCode::Inconclusive => Severity::Warning,
            VerdictCode::VaultUnreachable
            | VerdictCode::VaultSealed
            | VerdictCode::K8sAuthMountMissing
            | VerdictCode::K8sAuthUnconfigured
            | VerdictCode::ReviewerJwtExpired
            | VerdictCode::ReviewerJwtRejected
            | VerdictCode::ReviewerRbacMissing
            | VerdictCode::KubeApiUnreachable
            | VerdictCode::KubeCaMismatch
            | VerdictCode::ClientJwtRejected
            | VerdictCode::RoleBindingMismatch
            | VerdictCode::AudienceMismatch
            | VerdictCode::IssuerMismatch
            | VerdictCode::RoleNotFound => Severity::Failing,
        }
    }

    pub fn is_mount_wide(self) -> bool {
        match self {
            VerdictCode::VaultUnreachable
            | VerdictCode::VaultSealed
            | VerdictCode::K8sAuthMountMissing
            | VerdictCode::K8sAuthUnconfigured
            | VerdictCode::ReviewerJwtExpired
            | VerdictCode::ReviewerJwtRejected
            | VerdictCode::ReviewerRbacMissing
            | VerdictCode::KubeApiUnreachable
            | VerdictCode::KubeCaMismatch
            | VerdictCode::IssuerMismatch
            | VerdictCode::Inconclusive => true,
            VerdictCode::Healthy
            | VerdictCode::ClientJwtRejected
            | VerdictCode::RoleBindingMismatch
            | VerdictCode::AudienceMismatch
            | VerdictCode::RoleNotFound
            | VerdictCode::PolicyDenied => false,
        }
    }
}

impl std::fmt::Display for VerdictCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for VerdictCode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        VerdictCode::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown verdict code {s:?}"))
    }
}

/// How bad a verdict is: logins work, something needs a look, or logins fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Fine,
    Warning,
    Failing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    Availability,
    Authentication,
    Authorization,
    Configuration,
}

impl Layer {
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Availability => "availability",
            Layer::Authentication => "authentication",
            Layer::Authorization => "authorization",
            Layer::Configuration => "configuration",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    Low,
    Medium,
    High,
}

impl Confidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        }
    }
}

/// One line of the evidence chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainItem {
    pub check: String,
    pub status: CheckStatus,
    /// The one fact that matters.
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Pass,
    Fail,
    Warn,
    Info,
    Unknown,
}

impl CheckStatus {
    pub fn emoji(self) -> &'static str {
        match self {
            CheckStatus::Pass => "✅",
            CheckStatus::Fail => "❌",
            CheckStatus::Warn => "⚠️",
            CheckStatus::Info => "📋",
            CheckStatus::Unknown => "❔",
        }
    }
}

/// The remediation actions the bot can run (after approval) — design §2 flow 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    ReconfigureAuth,
    RestartDeployments,
    /// Make External Secrets and the Vault Secrets Operator sync now (design §11.3).
    ResyncSecrets,
}

impl Action {
    /// Every action, in the order cards and metrics list them.
    pub const ALL: [Action; 3] = [
        Action::ReconfigureAuth,
        Action::RestartDeployments,
        Action::ResyncSecrets,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::ReconfigureAuth => "reconfigure-auth",
            Action::RestartDeployments => "restart-deployments",
            Action::ResyncSecrets => "resync-secrets",
        }
    }
}

/// The automated fixes a summary offers, by the id their buttons carry. Each belongs to one
/// [`Action`] (what the approval policy governs); how each is carried out is the
/// remediation's one `match` over this enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RemediationKind {
    /// Mint a fresh reviewer token and rewrite the auth config with it.
    RotateReviewer,
    /// Rewrite the auth config without a reviewer token (Vault uses its own pod token).
    UseLocalToken,
    /// Restart the affected workloads.
    RestartDeployments,
    /// Force-sync the External Secrets and Vault Secrets Operator objects on the mount.
    ResyncSecrets,
    /// The same, VaultDynamicSecrets included: asked for explicitly, since their re-sync mints
    /// new credentials and restarts their `rolloutRestartTargets`.
    ResyncDynamicSecrets,
}

impl RemediationKind {
    pub const ALL: [RemediationKind; 5] = [
        RemediationKind::RotateReviewer,
        RemediationKind::UseLocalToken,
        RemediationKind::RestartDeployments,
        RemediationKind::ResyncSecrets,
        RemediationKind::ResyncDynamicSecrets,
    ];

    /// The id in buttons and in `verdict.remediations[].id`.
    pub fn id(self) -> &'static str {
        match self {
            RemediationKind::RotateReviewer => "rotate-reviewer",
            RemediationKind::UseLocalToken => "use-local-token",
            RemediationKind::RestartDeployments => "restart-deployments",
            RemediationKind::ResyncSecrets => "resync-secrets",
            RemediationKind::ResyncDynamicSecrets => "resync-dynamic-secrets",
        }
    }

    /// The kind an id names; `None` for anything else (a manual step, a forged button).
    pub fn parse(id: &str) -> Option<Self> {
        RemediationKind::ALL.into_iter().find(|k| k.id() == id)
    }

    /// The action the approval policy governs it by.
    pub fn action(self) -> Action {
        match self {
            RemediationKind::RotateReviewer | RemediationKind::UseLocalToken => {
                Action::ReconfigureAuth
            }
            RemediationKind::RestartDeployments => Action::RestartDeployments,
            RemediationKind::ResyncSecrets | RemediationKind::ResyncDynamicSecrets => {
                Action::ResyncSecrets
            }
        }
    }

    /// The remediation entry of a verdict for this fix.
    pub fn remediation(self, title: impl Into<String>, detail: impl Into<String>) -> Remediation {
        Remediation {
            id: self.id().into(),
            title: title.into(),
            detail: detail.into(),
            action: Some(self.action()),
        }
    }
}

impl std::fmt::Display for RemediationKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

/// A remediation that fits the verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remediation {
    /// Stable id, e.g. `rotate-reviewer`.
    pub id: String,
    pub title: String,
    pub detail: String,
    /// The bot can run it after approval; otherwise it is a manual step.
    pub action: Option<Action>,
}

impl Remediation {
    /// The automated fix this entry offers; `None` for a manual step.
    pub fn kind(&self) -> Option<RemediationKind> {
        self.action.and(RemediationKind::parse(&self.id))
    }
}

/// A workload in the blast radius (`verdict.affected_workloads`, design §11.3).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AffectedWorkload {
    pub kind: crate::evidence::WorkloadKind,
    pub namespace: String,
    pub name: String,
    pub roles: Vec<String>,
    pub via: crate::evidence::Via,
}

/// An operator's object on the mount (`verdict.secret_syncs`, design §11.3).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SecretSyncState {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// Its `Ready` (ESO) or `SecretSynced` (VSO) condition; `None` when it has none.
    pub ready: Option<bool>,
    pub message: String,
    #[serde(skip)]
    pub via: crate::evidence::Via,
}

/// A deployment in the blast radius.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AffectedDeployment {
    pub namespace: String,
    pub name: String,
    pub role: String,
}

/// The diagnosis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub code: VerdictCode,
    pub layer: Layer,
    pub confidence: Confidence,
    /// One line.
    pub headline: String,
    /// One paragraph a tired on-call engineer understands in ten seconds.
    pub summary: String,
    pub evidence: Vec<ChainItem>,
    pub affected_roles: Vec<String>,
    /// The Deployments of `affected_workloads`, as older releases reported them.
    pub affected_deployments: Vec<AffectedDeployment>,
    /// Every workload in the blast radius, of every kind and way of reaching Vault.
    #[serde(default)]
    pub affected_workloads: Vec<AffectedWorkload>,
    /// The External Secrets and Vault Secrets Operator objects on the mount.
    #[serde(default)]
    pub secret_syncs: Vec<SecretSyncState>,
    pub remediations: Vec<Remediation>,
    /// What matters in this incident beyond the fix.
    pub reminders: Vec<String>,
    /// What could not be checked, and what to check by hand.
    pub unchecked: Vec<String>,
}

impl Verdict {
    /// Exit status of `probe`: 0 healthy, 2 fault diagnosed (or inconclusive).
    pub fn exit_code(&self) -> i32 {
        if self.code == VerdictCode::Healthy {
            0
        } else {
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_json_and_str() {
        for code in VerdictCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(code.as_str().parse::<VerdictCode>().unwrap(), code);
        }
    }
}
