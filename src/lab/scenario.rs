//! The lab's scenarios: one simulated incident per verdict code.

use std::fmt;
use std::str::FromStr;

/// One simulated world. Each scenario is built so that a correct triage yields the verdict
/// code of the same name (dashes replaced by underscores).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Scenario {
    Healthy,
    VaultUnreachable,
    VaultSealed,
    K8sAuthMountMissing,
    K8sAuthUnconfigured,
    /// The default: the classic incident.
    #[default]
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

impl Scenario {
    /// Every scenario, in the order of the design's verdict table.
    pub const ALL: &'static [Scenario] = &[
        Scenario::Healthy,
        Scenario::VaultUnreachable,
        Scenario::VaultSealed,
        Scenario::K8sAuthMountMissing,
        Scenario::K8sAuthUnconfigured,
        Scenario::ReviewerJwtExpired,
        Scenario::ReviewerJwtRejected,
        Scenario::ReviewerRbacMissing,
        Scenario::KubeApiUnreachable,
        Scenario::KubeCaMismatch,
        Scenario::ClientJwtRejected,
        Scenario::RoleBindingMismatch,
        Scenario::AudienceMismatch,
        Scenario::IssuerMismatch,
        Scenario::RoleNotFound,
        Scenario::PolicyDenied,
        Scenario::Inconclusive,
    ];

    /// The scenario's name on the command line (`reviewer-jwt-expired`).
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Healthy => "healthy",
            Scenario::VaultUnreachable => "vault-unreachable",
            Scenario::VaultSealed => "vault-sealed",
            Scenario::K8sAuthMountMissing => "k8s-auth-mount-missing",
            Scenario::K8sAuthUnconfigured => "k8s-auth-unconfigured",
            Scenario::ReviewerJwtExpired => "reviewer-jwt-expired",
            Scenario::ReviewerJwtRejected => "reviewer-jwt-rejected",
            Scenario::ReviewerRbacMissing => "reviewer-rbac-missing",
            Scenario::KubeApiUnreachable => "kube-api-unreachable",
            Scenario::KubeCaMismatch => "kube-ca-mismatch",
            Scenario::ClientJwtRejected => "client-jwt-rejected",
            Scenario::RoleBindingMismatch => "role-binding-mismatch",
            Scenario::AudienceMismatch => "audience-mismatch",
            Scenario::IssuerMismatch => "issuer-mismatch",
            Scenario::RoleNotFound => "role-not-found",
            Scenario::PolicyDenied => "policy-denied",
            Scenario::Inconclusive => "inconclusive",
        }
    }

    /// The verdict code a correct triage returns for this scenario (`reviewer_jwt_expired`).
    pub fn verdict_code(self) -> &'static str {
        match self {
            Scenario::Healthy => "healthy",
            Scenario::VaultUnreachable => "vault_unreachable",
            Scenario::VaultSealed => "vault_sealed",
            Scenario::K8sAuthMountMissing => "k8s_auth_mount_missing",
            Scenario::K8sAuthUnconfigured => "k8s_auth_unconfigured",
            Scenario::ReviewerJwtExpired => "reviewer_jwt_expired",
            Scenario::ReviewerJwtRejected => "reviewer_jwt_rejected",
            Scenario::ReviewerRbacMissing => "reviewer_rbac_missing",
            Scenario::KubeApiUnreachable => "kube_api_unreachable",
            Scenario::KubeCaMismatch => "kube_ca_mismatch",
            Scenario::ClientJwtRejected => "client_jwt_rejected",
            Scenario::RoleBindingMismatch => "role_binding_mismatch",
            Scenario::AudienceMismatch => "audience_mismatch",
            Scenario::IssuerMismatch => "issuer_mismatch",
            Scenario::RoleNotFound => "role_not_found",
            Scenario::PolicyDenied => "policy_denied",
            Scenario::Inconclusive => "inconclusive",
        }
    }

    /// One line for `--scenario help`.
    pub fn description(self) -> &'static str {
        match self {
            Scenario::Healthy => "everything works: the canary logs in and reads its secret",
            Scenario::VaultUnreachable => "VAULT_ADDR points at a port where nothing listens",
            Scenario::VaultSealed => "Vault is sealed",
            Scenario::K8sAuthMountMissing => "no kubernetes auth method is mounted",
            Scenario::K8sAuthUnconfigured => {
                "the kubernetes auth mount exists but was never configured"
            }
            Scenario::ReviewerJwtExpired => {
                "the classic incident: Vault's token_reviewer_jwt expired 3 h ago (Kubernetes answers 401)"
            }
            Scenario::ReviewerJwtRejected => {
                "the reviewer is a legacy Secret token that Kubernetes invalidated (401, no exp to prove expiry)"
            }
            Scenario::ReviewerRbacMissing => {
                "the reviewer authenticates but is not bound to system:auth-delegator (403 on TokenReview)"
            }
            Scenario::KubeApiUnreachable => {
                "kubernetes_host in Vault's config points at a closed port"
            }
            Scenario::KubeCaMismatch => {
                "kubernetes_ca_cert in Vault's config is a stale cluster CA"
            }
            Scenario::ClientJwtRejected => "Kubernetes rejects the canary's tokens as invalidated",
            Scenario::RoleBindingMismatch => {
                "the canary role binds a different ServiceAccount name"
            }
            Scenario::AudienceMismatch => {
                "the canary role expects audience `vault`; tokens carry the API audience"
            }
            Scenario::IssuerMismatch => "Vault's config enforces a stale issuer",
            Scenario::RoleNotFound => "the canary role does not exist",
            Scenario::PolicyDenied => {
                "login works but the canary policy does not grant the secret path"
            }
            Scenario::Inconclusive => {
                "the reviewer is rejected, but the bot can see neither the debug log nor the reviewer"
            }
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error for an unknown scenario name; its message lists the valid names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scenario `{given}`; valid scenarios: {valid}")]
pub struct UnknownScenario {
    given: String,
    valid: String,
}

impl FromStr for Scenario {
    type Err = UnknownScenario;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        Scenario::ALL
            .iter()
            .copied()
            .find(|sc| sc.name() == wanted || sc.verdict_code() == wanted)
            .ok_or_else(|| UnknownScenario {
                given: s.to_string(),
                valid: Scenario::ALL
                    .iter()
                    .map(|sc| sc.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_codes_use_underscores() {
        for sc in Scenario::ALL {
            assert_eq!(sc.name().parse::<Scenario>(), Ok(*sc));
            assert_eq!(sc.verdict_code(), sc.name().replace('-', "_"));
            assert_eq!(sc.to_string(), sc.name());
            assert!(!sc.description().is_empty());
        }
        assert_eq!(Scenario::ALL.len(), 17);
        assert_eq!(Scenario::default(), Scenario::ReviewerJwtExpired);
    }

    #[test]
    fn unknown_name_lists_valid_names() {
        let err = "nope".parse::<Scenario>().unwrap_err().to_string();
        assert!(err.contains("nope"));
        assert!(err.contains("reviewer-jwt-expired"));
        assert!(err.contains("k8s-auth-mount-missing"));
    }
}
