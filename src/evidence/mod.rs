//! The evidence model: what each probe saw, or why it saw nothing. Pure data.
//!
//! Every field is plain data (serde), so a triage can be stored, replayed and diagnosed again
//! without I/O. No token or JWT appears here: tokens are reduced to their claims. The Vault
//! and Kubernetes clients fill these types (`vault`, `kube`, `claims`); the diagnosis, plans
//! and rendering read them and import no client.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

mod claims;
mod kube;
mod vault;

pub use claims::{ClaimsError, TokenClaims};
pub use kube::{
    PodEvidence, RestartTarget, ReviewResult, SecretSync, StuckPod, Via, Workload, WorkloadKind,
};
pub use vault::{AuthConfig, AuthMount, Health, Role, SecretRead};

/// The result of one probe.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Probe<T> {
    /// The probe got an answer.
    Ok { value: T, ms: u64 },
    /// The probe failed; `error` says how.
    Failed { error: ProbeError, ms: u64 },
    /// The probe did not run; `reason` says why.
    Skipped { reason: String },
}

impl<T> Probe<T> {
    pub fn value(&self) -> Option<&T> {
        match self {
            Probe::Ok { value, .. } => Some(value),
            _ => None,
        }
    }

    pub fn error(&self) -> Option<&ProbeError> {
        match self {
            Probe::Failed { error, .. } => Some(error),
            _ => None,
        }
    }

    pub fn skipped(reason: impl Into<String>) -> Self {
        Probe::Skipped {
            reason: reason.into(),
        }
    }

    pub fn ms(&self) -> Option<u64> {
        match self {
            Probe::Ok { ms, .. } | Probe::Failed { ms, .. } => Some(*ms),
            Probe::Skipped { .. } => None,
        }
    }
}

/// Why a probe failed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProbeError {
    /// No answer: connection refused, DNS, TLS, reset.
    NoAnswer { detail: String },
    /// No answer within the time allowed.
    Timeout { after_ms: u64 },
    /// An answer with an error status.
    Status { code: u16, message: String },
    /// Anything else (client setup, an answer that could not be read).
    Other { detail: String },
}

impl ProbeError {
    pub fn code(&self) -> Option<u16> {
        match self {
            ProbeError::Status { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// One sentence for people.
    pub fn describe(&self) -> String {
        match self {
            ProbeError::NoAnswer { detail } => format!("no answer ({detail})"),
            ProbeError::Timeout { after_ms } => format!("no answer within {after_ms} ms"),
            ProbeError::Status { code, message } if message.is_empty() => format!("HTTP {code}"),
            ProbeError::Status { code, message } => format!("HTTP {code}: {message}"),
            ProbeError::Other { detail } => detail.clone(),
        }
    }
}

fn default_cluster() -> String {
    crate::config::DEFAULT_CLUSTER.to_string()
}

/// What was triaged, and against what.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TargetInfo {
    /// The `[[clusters]]` name (`default` without the section).
    #[serde(default = "default_cluster")]
    pub cluster: String,
    pub vault_addr: String,
    pub auth_mount: String,
    /// The role under triage (the canary role unless one was asked for).
    pub role: String,
    pub canary_role: String,
    pub canary_namespace: String,
    pub canary_service_account: String,
    pub secret_path: Option<String>,
    pub reviewer: Option<String>,
    pub kube_cluster_url: Option<String>,
}

/// Whether the configured kubernetes auth mount exists.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MountCheck {
    /// The mount at the configured path, if any.
    pub mount: Option<AuthMount>,
    /// Paths of every kubernetes-type mount (to suggest the right one).
    pub kubernetes_mounts: Vec<String>,
    /// The configured path holds an auth method of another type.
    pub other_type: Option<String>,
}

/// The canary login's answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum LoginOutcome {
    Success {
        policies: Vec<String>,
        lease_duration: u64,
    },
    Refused {
        status: u16,
        message: String,
    },
}

/// How the reviewer token fared when the bot tried it as the caller.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum CallerCheck {
    /// The API server accepted it.
    Authenticated { username: String },
    /// 401: the API server does not accept it.
    Unauthorized,
    /// Anything else.
    Failed { detail: String },
}

/// The reviewer identity: its ServiceAccount, its token and what it may do.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReviewerEvidence {
    /// `namespace/name`.
    pub service_account: String,
    pub service_account_exists: Option<bool>,
    /// Where the token was read from, e.g. `Secret vault/vault-auth-token`.
    pub token_source: Option<String>,
    pub secret_found: Option<bool>,
    pub claims: Option<TokenClaims>,
    /// Value of `kubernetes.io/legacy-token-invalid-since` on the token Secret.
    pub legacy_invalid_since: Option<String>,
    pub as_caller: Option<CallerCheck>,
    /// May the reviewer create tokenreviews (SelfSubjectAccessReview as the reviewer)?
    pub may_create_tokenreviews: Option<bool>,
    /// What could not be checked, in words.
    pub notes: Vec<String>,
}

/// Can `kubernetes_host` be reached, and does the configured CA match the cluster's?
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct KubeApiEvidence {
    pub host: String,
    pub reachability: Option<Reachability>,
    /// `None` when there is nothing to compare.
    pub ca_matches_cluster: Option<bool>,
    pub ca_configured: bool,
    pub notes: Vec<String>,
}

/// The bot's own attempt to reach `kubernetes_host`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Reachability {
    /// An HTTP answer (any status) came back.
    Answered { status: u16 },
    /// TLS failed with the configured CA.
    TlsFailed { detail: String },
    /// No answer.
    NoAnswer { detail: String },
}

/// Which Vault node's `sys/monitor` a triage read, and how it was found.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MonitorNode {
    pub addr: String,
    pub found: NodeFound,
}

/// How the node of [`MonitorNode`] was chosen.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum NodeFound {
    /// `VAULT_ADDR` answered the stream itself (the active node, or a single server).
    VaultAddr,
    /// `VAULT_ADDR` is a standby; `sys/leader` named the active node.
    SysLeader,
    /// `[vault] active_addr`.
    Configured,
}

/// Everything one triage saw.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Evidence {
    pub target: TargetInfo,
    pub started_at: DateTime<Utc>,
    pub health: Probe<Health>,
    pub auth_mount: Probe<MountCheck>,
    /// `Ok(None)`: the mount has no config (404).
    pub auth_config: Probe<Option<AuthConfig>>,
    /// The canary role; `Ok(None)`: it does not exist.
    pub canary_role: Probe<Option<Role>>,
    /// The role asked for, when it is not the canary role.
    pub target_role: Option<Probe<Option<Role>>>,
    pub canary_token: Probe<TokenClaims>,
    pub canary_review: Probe<ReviewResult>,
    pub login: Probe<LoginOutcome>,
    /// `login unauthorized` lines Vault logged at DEBUG during the canary login.
    pub vault_log: Probe<Vec<String>>,
    /// The node whose `sys/monitor` was read (the active one when `VAULT_ADDR` is a standby).
    #[serde(default)]
    pub vault_log_node: Option<MonitorNode>,
    pub secret_read: Probe<SecretRead>,
    pub reviewer: Probe<ReviewerEvidence>,
    pub kube_api: Probe<KubeApiEvidence>,
    pub workloads: Probe<Vec<Workload>>,
    /// The operators' objects on the mount (External Secrets, Vault Secrets Operator); an
    /// operator that is not installed adds nothing.
    #[serde(default = "not_looked_at")]
    pub secret_syncs: Probe<Vec<SecretSync>>,
    /// The injector's pods on the mount: their owners and the ones stuck in the agent's init
    /// container.
    #[serde(default = "not_looked_at")]
    pub pods: Probe<PodEvidence>,
    pub duration_ms: u64,
}

/// What evidence of an older release says about what it did not look at.
fn not_looked_at<T>() -> Probe<T> {
    Probe::skipped("not looked at by this release")
}
