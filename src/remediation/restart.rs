//! Restarting a Deployment and watching its rollout: kubectl's patch and rules
//! ([`super::rollout`]) applied through the Kubernetes client.

use std::time::Duration;

use chrono::Utc;
use futures::StreamExt as _;

use super::rollout::{FIELD_MANAGER, RolloutStatus, restart_patch, rollout_status};
use crate::kube::{KubeClient, KubeError};

/// `kubectl rollout restart deployment/<name>`: the restart patch, field manager
/// `kubectl-rollout`.
pub async fn restart(kube: &KubeClient, namespace: &str, name: &str) -> Result<(), KubeError> {
    kube.patch_deployment(namespace, name, FIELD_MANAGER, &restart_patch(Utc::now()))
        .await
        .map(|_| ())
}

/// Watches a Deployment until its rollout completes, fails, or `timeout` passes; calls
/// `progress` with each new kubectl-style status message.
pub async fn watch(
    kube: &KubeClient,
    namespace: &str,
    name: &str,
    timeout: Duration,
    mut progress: impl FnMut(&str),
) -> RolloutStatus {
    let stream = match kube.watch_deployment(namespace, name) {
        Ok(s) => s,
        Err(e) => {
            return RolloutStatus::Failed(format!(
                "the watch of deployment {name:?} could not start: {e}"
            ));
        }
    };
    let mut stream = std::pin::pin!(stream);
    let mut last = String::new();
    let watch = async {
        while let Some(state) = stream.next().await {
            let Some(d) = state else {
                return RolloutStatus::Failed(format!(
                    "deployment {name:?} was deleted during the rollout"
                ));
            };
            let status = rollout_status(&d);
            let msg = match &status {
                RolloutStatus::Progressing(m)
                | RolloutStatus::Complete(m)
                | RolloutStatus::Failed(m) => m.clone(),
            };
            if msg != last {
                progress(&msg);
                last = msg;
            }
            if !matches!(status, RolloutStatus::Progressing(_)) {
                return status;
            }
        }
        RolloutStatus::Failed(format!("the watch of deployment {name:?} ended"))
    };
    match tokio::time::timeout(timeout, watch).await {
        Ok(status) => status,
        Err(_) => RolloutStatus::Failed(format!(
            "deployment {name:?} did not finish rolling out within {} s (last: {last})",
            timeout.as_secs()
        )),
    }
}
