//! The workloads the restart fix touches — Deployments, StatefulSets and DaemonSets — as it
//! needs them: read one, apply a strategic-merge patch with a field manager, and watch one
//! object's changes. The restart patch itself and kubectl's rollout rules are the
//! remediation's (pure); this module only carries them to the API.

use std::fmt::Debug;

use futures::{Stream, StreamExt as _};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::WatchStreamExt as _;
use serde::de::DeserializeOwned;

use super::client::KubeClient;
use super::error::KubeError;

/// A namespaced kind the restart fix reads, patches and watches.
pub trait Restartable:
    kube::Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
}

impl Restartable for Deployment {}
impl Restartable for StatefulSet {}
impl Restartable for DaemonSet {}

impl KubeClient {
    /// Reads a Deployment.
    pub async fn deployment(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Deployment>, KubeError> {
        self.workload(namespace, name).await
    }

    /// Applies a strategic-merge `patch` to a Deployment as `field_manager`.
    pub async fn patch_deployment(
        &self,
        namespace: &str,
        name: &str,
        field_manager: &str,
        patch: &serde_json::Value,
    ) -> Result<Deployment, KubeError> {
        self.patch_workload(namespace, name, field_manager, patch)
            .await
    }

    /// The Deployment as it changes (see [`KubeClient::watch_workload`]).
    pub fn watch_deployment(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<impl Stream<Item = Option<Deployment>> + Send + use<>, KubeError> {
        self.watch_workload(namespace, name)
    }

    /// Reads a Deployment, StatefulSet or DaemonSet (`K`); `None` when it does not exist.
    pub async fn workload<K: Restartable>(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<K>, KubeError> {
        let api: Api<K> = Api::namespaced(self.raw(), namespace);
        self.call(api.get_opt(name)).await
    }

    /// Applies a strategic-merge `patch` to a Deployment, StatefulSet or DaemonSet (`K`) as
    /// `field_manager`.
    pub async fn patch_workload<K: Restartable>(
        &self,
        namespace: &str,
        name: &str,
        field_manager: &str,
        patch: &serde_json::Value,
    ) -> Result<K, KubeError> {
        let api: Api<K> = Api::namespaced(self.raw(), namespace);
        let params = PatchParams {
            field_manager: Some(field_manager.into()),
            ..Default::default()
        };
        self.call(api.patch(name, &params, &Patch::Strategic(patch)))
            .await
    }

    /// The object as it changes: `Some` for each new state, `None` once it is deleted.
    /// The watch has its own client (no per-call read timeout: a quiet rollout is not a
    /// broken one); errors are logged and the watch is restarted with the watcher's default
    /// backoff. The stream ends only if the watcher does.
    pub fn watch_workload<K: Restartable>(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<impl Stream<Item = Option<K>> + Send + use<K>, KubeError> {
        let api: Api<K> = Api::namespaced(self.watch_client()?, namespace);
        let watch = kube::runtime::watcher::watch_object(api, name).default_backoff();
        Ok(watch.filter_map(|event| async move {
            match event {
                Ok(state) => Some(state),
                Err(e) => {
                    tracing::debug!(error = %e, "workload watch error; the watcher retries after a backoff");
                    None
                }
            }
        }))
    }
}
