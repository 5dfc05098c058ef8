//! Writes to Deployments: the restart patch `kubectl rollout restart` sends, and a watch of the
//! rollout that follows, judged with kubectl's rules.

use std::time::Duration;

use chrono::Utc;
use futures::StreamExt as _;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};

use super::client::KubeClient;
use super::error::KubeError;
use crate::remediation::rollout::{FIELD_MANAGER, RolloutStatus, restart_patch, rollout_status};

impl KubeClient {
    /// Reads a Deployment.
    pub async fn deployment(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Deployment>, KubeError> {
        let api: Api<Deployment> = Api::namespaced(self.raw(), namespace);
        self.call(api.get_opt(name)).await
    }

    /// `kubectl rollout restart deployment/<name>`: a strategic-merge patch of the pod
    /// template's `restartedAt` annotation, field manager `kubectl-rollout`.
    pub async fn restart_deployment(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Deployment, KubeError> {
        let api: Api<Deployment> = Api::namespaced(self.raw(), namespace);
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        self.call(api.patch(name, &params, &Patch::Strategic(restart_patch(Utc::now()))))
            .await
    }

    /// Watches a Deployment until its rollout completes, fails, or `timeout` passes; calls
    /// `progress` with each new kubectl-style status message.
    pub async fn watch_rollout(
        &self,
        namespace: &str,
        name: &str,
        timeout: Duration,
        mut progress: impl FnMut(&str),
    ) -> RolloutStatus {
        let api: Api<Deployment> = Api::namespaced(self.raw(), namespace);
        let stream = kube::runtime::watcher::watch_object(api, name);
        let mut stream = std::pin::pin!(stream);
        let mut last = String::new();
        let watch = async {
            while let Some(event) = stream.next().await {
                match event {
                    Ok(Some(d)) => {
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
                    Ok(None) => {
                        return RolloutStatus::Failed(format!(
                            "deployment {name:?} was deleted during the rollout"
                        ));
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "rollout watch error; the watcher retries")
                    }
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
}
