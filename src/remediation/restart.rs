//! Restarting a Deployment, StatefulSet or DaemonSet and watching its rollout: kubectl's patch
//! and per-kind rules ([`super::rollout`]) applied through the Kubernetes client.

use std::time::Duration;

use chrono::Utc;
use futures::{Stream, StreamExt as _};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};

use super::rollout::{
    FIELD_MANAGER, ONLY_ROLLING_UPDATE, RolloutStatus, daemonset_status, restart_patch,
    rollout_status, statefulset_status,
};
use crate::evidence::WorkloadKind;
use crate::kube::{KubeClient, KubeError};

/// A restartable workload as read from the cluster.
#[derive(Debug, Clone)]
pub enum Live {
    Deployment(Box<Deployment>),
    StatefulSet(Box<StatefulSet>),
    DaemonSet(Box<DaemonSet>),
}

impl Live {
    pub fn uid(&self) -> Option<&str> {
        match self {
            Live::Deployment(d) => d.metadata.uid.as_deref(),
            Live::StatefulSet(s) => s.metadata.uid.as_deref(),
            Live::DaemonSet(d) => d.metadata.uid.as_deref(),
        }
    }

    /// Why `kubectl rollout restart` (or the rollout status that follows) would refuse it:
    /// a paused Deployment, an OnDelete StatefulSet or DaemonSet.
    pub fn refusal(&self) -> Option<&'static str> {
        match self {
            Live::Deployment(d) if d.spec.paused == Some(true) => {
                Some("can't restart paused deployment (run rollout resume first)")
            }
            Live::StatefulSet(s) if strategy(s.spec.update_strategy.as_ref().map(|u| &u.type_)) => {
                Some(ONLY_ROLLING_UPDATE)
            }
            Live::DaemonSet(d) if strategy(d.spec.update_strategy.as_ref().map(|u| &u.type_)) => {
                Some(ONLY_ROLLING_UPDATE)
            }
            _ => None,
        }
    }

    /// Where its rollout stands, by kubectl's rules for its kind.
    pub fn status(&self) -> RolloutStatus {
        match self {
            Live::Deployment(d) => rollout_status(d),
            Live::StatefulSet(s) => statefulset_status(s),
            Live::DaemonSet(d) => daemonset_status(d),
        }
    }
}

/// An `updateStrategy.type` other than RollingUpdate (an empty one is defaulted to it).
fn strategy(type_: Option<&Option<String>>) -> bool {
    type_
        .and_then(|t| t.as_deref())
        .is_some_and(|t| !t.is_empty() && t != "RollingUpdate")
}

/// `deployment.apps`, `statefulset.apps`, `daemonset.apps`: how kubectl names the resource.
pub fn resource(kind: WorkloadKind) -> &'static str {
    match kind {
        WorkloadKind::Deployment => "deployment.apps",
        WorkloadKind::StatefulSet => "statefulset.apps",
        WorkloadKind::DaemonSet => "daemonset.apps",
        WorkloadKind::CronJob => "cronjob.batch",
        WorkloadKind::Job => "job.batch",
        WorkloadKind::Rollout => "rollout.argoproj.io",
        WorkloadKind::ReplicaSet => "replicaset.apps",
        WorkloadKind::Pod => "pod",
    }
}

/// `restarting is not supported`: kubectl's answer for any other kind.
fn not_supported(kind: WorkloadKind) -> KubeError {
    KubeError::Client(format!("{kind}: restarting is not supported"))
}

/// Reads the workload `kind` `namespace/name`; `None` when it does not exist.
pub async fn get(
    kube: &KubeClient,
    kind: WorkloadKind,
    namespace: &str,
    name: &str,
) -> Result<Option<Live>, KubeError> {
    Ok(match kind {
        WorkloadKind::Deployment => kube
            .workload::<Deployment>(namespace, name)
            .await?
            .map(|d| Live::Deployment(Box::new(d))),
        WorkloadKind::StatefulSet => kube
            .workload::<StatefulSet>(namespace, name)
            .await?
            .map(|s| Live::StatefulSet(Box::new(s))),
        WorkloadKind::DaemonSet => kube
            .workload::<DaemonSet>(namespace, name)
            .await?
            .map(|d| Live::DaemonSet(Box::new(d))),
        WorkloadKind::CronJob
        | WorkloadKind::Job
        | WorkloadKind::Rollout
        | WorkloadKind::ReplicaSet
        | WorkloadKind::Pod => return Err(not_supported(kind)),
    })
}

/// `kubectl rollout restart <kind>/<name>`: the restart patch, field manager
/// `kubectl-rollout`.
pub async fn restart(
    kube: &KubeClient,
    kind: WorkloadKind,
    namespace: &str,
    name: &str,
) -> Result<(), KubeError> {
    let patch = restart_patch(Utc::now());
    match kind {
        WorkloadKind::Deployment => kube
            .patch_workload::<Deployment>(namespace, name, FIELD_MANAGER, &patch)
            .await
            .map(|_| ()),
        WorkloadKind::StatefulSet => kube
            .patch_workload::<StatefulSet>(namespace, name, FIELD_MANAGER, &patch)
            .await
            .map(|_| ()),
        WorkloadKind::DaemonSet => kube
            .patch_workload::<DaemonSet>(namespace, name, FIELD_MANAGER, &patch)
            .await
            .map(|_| ()),
        WorkloadKind::CronJob
        | WorkloadKind::Job
        | WorkloadKind::Rollout
        | WorkloadKind::ReplicaSet
        | WorkloadKind::Pod => Err(not_supported(kind)),
    }
}

/// Watches a workload until its rollout completes, fails, or `timeout` passes; calls
/// `progress` with each new kubectl-style "still rolling" message.
pub async fn watch(
    kube: &KubeClient,
    kind: WorkloadKind,
    namespace: &str,
    name: &str,
    timeout: Duration,
    progress: impl FnMut(&str),
) -> RolloutStatus {
    let what = kind.as_str().to_ascii_lowercase();
    match kind {
        WorkloadKind::Deployment => {
            let s = kube
                .watch_workload::<Deployment>(namespace, name)
                .map(|s| s.map(|d| d.map(|d| Live::Deployment(Box::new(d)))));
            follow(s, &what, name, timeout, progress).await
        }
        WorkloadKind::StatefulSet => {
            let s = kube
                .watch_workload::<StatefulSet>(namespace, name)
                .map(|s| s.map(|d| d.map(|d| Live::StatefulSet(Box::new(d)))));
            follow(s, &what, name, timeout, progress).await
        }
        WorkloadKind::DaemonSet => {
            let s = kube
                .watch_workload::<DaemonSet>(namespace, name)
                .map(|s| s.map(|d| d.map(|d| Live::DaemonSet(Box::new(d)))));
            follow(s, &what, name, timeout, progress).await
        }
        WorkloadKind::CronJob
        | WorkloadKind::Job
        | WorkloadKind::Rollout
        | WorkloadKind::ReplicaSet
        | WorkloadKind::Pod => RolloutStatus::Failed(not_supported(kind).to_string()),
    }
}

async fn follow(
    stream: Result<impl Stream<Item = Option<Live>>, KubeError>,
    what: &str,
    name: &str,
    timeout: Duration,
    mut progress: impl FnMut(&str),
) -> RolloutStatus {
    let stream = match stream {
        Ok(s) => s,
        Err(e) => {
            return RolloutStatus::Failed(format!(
                "the watch of {what} {name:?} could not start: {e}"
            ));
        }
    };
    let mut stream = std::pin::pin!(stream);
    let mut last = String::new();
    let watch = async {
        while let Some(state) = stream.next().await {
            let Some(live) = state else {
                return RolloutStatus::Failed(format!(
                    "{what} {name:?} was deleted during the rollout"
                ));
            };
            let status = live.status();
            let msg = match &status {
                RolloutStatus::Progressing(m)
                | RolloutStatus::Complete(m)
                | RolloutStatus::Failed(m) => m.clone(),
            };
            if msg != last {
                if matches!(status, RolloutStatus::Progressing(_)) {
                    progress(&msg);
                }
                last = msg;
            }
            if !matches!(status, RolloutStatus::Progressing(_)) {
                return status;
            }
        }
        RolloutStatus::Failed(format!("the watch of {what} {name:?} ended"))
    };
    match tokio::time::timeout(timeout, watch).await {
        Ok(status) => status,
        Err(_) => RolloutStatus::Failed(format!(
            "{what} {name:?} did not finish rolling out within {} s (last: {last})",
            timeout.as_secs()
        )),
    }
}
