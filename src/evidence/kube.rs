//! What Kubernetes answered, as the diagnosis reads it: the Kubernetes client fills these
//! types, the pure core decides on them.

use serde::{Deserialize, Serialize};

/// The answer of a TokenReview.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReviewResult {
    pub authenticated: bool,
    pub username: Option<String>,
    pub uid: Option<String>,
    pub audiences: Vec<String>,
    pub error: Option<String>,
}

/// The kinds of workload whose pod template can carry the injector's annotations (design
/// §11.3). Serialized as Kubernetes spells the kind.
#[derive(
    Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
pub enum WorkloadKind {
    #[default]
    Deployment,
    StatefulSet,
    DaemonSet,
    /// Reported, never restarted (its pods come from Jobs).
    CronJob,
    /// Found through its injected pods only, like the kinds below: reported, never restarted.
    Job,
    /// An Argo Rollout (`argoproj.io`): `kubectl rollout restart` does not support it.
    Rollout,
    /// A ReplicaSet that no Deployment or Rollout owns.
    ReplicaSet,
    /// A pod that no controller owns.
    Pod,
}

impl WorkloadKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::DaemonSet => "DaemonSet",
            WorkloadKind::CronJob => "CronJob",
            WorkloadKind::Job => "Job",
            WorkloadKind::Rollout => "Rollout",
            WorkloadKind::ReplicaSet => "ReplicaSet",
            WorkloadKind::Pod => "Pod",
        }
    }

    /// What `kubectl rollout restart` can restart (facts/vault-consumers.md §5).
    pub fn restartable(self) -> bool {
        matches!(
            self,
            WorkloadKind::Deployment | WorkloadKind::StatefulSet | WorkloadKind::DaemonSet
        )
    }
}

impl std::fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a workload reaches Vault (design §11.3: `injector`, `csi`, `vso`, `eso`).
#[derive(
    Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// The agent injector: the pod template's annotations name the role.
    #[default]
    Injector,
    /// The Secrets Store CSI driver: a volume of a `SecretProviderClass` on the mount.
    Csi,
    /// The Vault Secrets Operator: a secret resource whose `VaultAuth` is on the mount.
    Vso,
    /// External Secrets: a store on the mount, and the ExternalSecrets that use it.
    Eso,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Injector => "injector",
            Via::Csi => "csi",
            Via::Vso => "vso",
            Via::Eso => "eso",
        }
    }

    /// Whether the workload's own pods log in to Vault (injector, CSI), rather than reading a
    /// Secret an operator syncs and keeps (VSO, ESO): only those fail, and a restart only
    /// concerns them.
    pub fn logs_in(self) -> bool {
        match self {
            Via::Injector | Via::Csi => true,
            Via::Vso | Via::Eso => false,
        }
    }
}

/// An operator's object that syncs secrets from Vault through the mount (an ESO store or
/// ExternalSecret, a VSO secret resource), and whether it says it is synced.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct SecretSync {
    /// `ClusterSecretStore`, `SecretStore`, `ExternalSecret`, `VaultStaticSecret`, ….
    pub kind: String,
    /// Empty for a cluster-scoped object.
    pub namespace: String,
    pub name: String,
    /// Its `Ready` (ESO) or `SecretSynced` (VSO) condition; `None` when it has none yet.
    pub ready: Option<bool>,
    /// The condition's reason and message.
    pub message: String,
    pub via: Via,
    /// An ExternalSecret with `refreshPolicy: CreatedOnce`: it ignores a force-sync once its
    /// Secret exists. Absent (false) in records of older releases.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub created_once: bool,
    /// A VSO secret's `rolloutRestartTargets`: the workloads that read its Secret and that
    /// VSO restarts after a sync. Absent (empty) in records of older releases.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restart_targets: Vec<RestartTarget>,
    /// The Vault role it logs in with (a VSO secret's `VaultAuth` role), when known.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub role: String,
}

/// A workload a VSO secret restarts after a sync (`rolloutRestartTargets[]`), in the secret's
/// namespace.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct RestartTarget {
    pub kind: WorkloadKind,
    pub name: String,
}

/// A workload that logs in to Vault: a Deployment, StatefulSet, DaemonSet or CronJob whose pod
/// template names a Vault role of the mount.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Workload {
    pub namespace: String,
    pub name: String,
    /// Records of older releases are Deployments.
    #[serde(default)]
    pub kind: WorkloadKind,
    #[serde(default)]
    pub uid: String,
    pub role: String,
    pub service_account: String,
    pub replicas: i32,
    #[serde(default)]
    pub via: Via,
    /// A StatefulSet or DaemonSet with `updateStrategy: OnDelete`: a restart changes nothing
    /// until its pods are deleted by hand, so it is reported, not patched.
    #[serde(default)]
    pub on_delete: bool,
}

/// What the cluster's pods say about the mount (facts/vault-consumers.md §1): the pods the
/// agent injector mutated to log in through it, the workloads they belong to, and the ones
/// stuck in the agent's init container.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PodEvidence {
    /// Pods marked `agent-inject-status: injected` whose annotations log in through the mount.
    pub injected: usize,
    /// The workloads those pods belong to (through their owner references), with the role.
    pub owners: Vec<Workload>,
    /// Pods waiting on the agent's init container, as `kubectl get pods` shows them.
    pub stuck: Vec<StuckPod>,
}

/// A pod whose first unfinished init container is the Vault agent's: it cannot start until
/// a login through the mount works.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct StuckPod {
    pub namespace: String,
    pub name: String,
    /// The workload it belongs to.
    pub owner_kind: WorkloadKind,
    pub owner: String,
    /// kubectl's STATUS column: `Init:0/1`, `Init:CrashLoopBackOff`, `Init:Error`, ….
    pub status: String,
    /// `vault-agent-init` or `openbao-agent-init`.
    pub container: String,
    /// When the init container (else the pod) started.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
}
