//! The operators' objects the `resync-secrets` fix touches (External Secrets stores and
//! ExternalSecrets, the Vault Secrets Operator's secret resources): a JSON merge patch of
//! their annotations. Custom resources take no strategic-merge patch (415), hence a merge
//! patch through a dynamic API.

use std::collections::BTreeMap;

use kube::api::{Api, DynamicObject, Patch, PatchParams};

use super::client::KubeClient;
use super::error::KubeError;
use super::operators::CrdApi;

impl KubeClient {
    /// Sets `annotations` on the custom resource `api` `namespace/name` (an empty namespace
    /// is a cluster-scoped object) with a merge patch as `field_manager`; the object as the
    /// API server returns it.
    pub async fn annotate_custom(
        &self,
        api: CrdApi,
        namespace: &str,
        name: &str,
        field_manager: &str,
        annotations: &BTreeMap<String, String>,
    ) -> Result<serde_json::Value, KubeError> {
        let resource = api.api_resource();
        let objects: Api<DynamicObject> = if namespace.is_empty() {
            Api::all_with(self.raw(), &resource)
        } else {
            Api::namespaced_with(self.raw(), namespace, &resource)
        };
        let params = PatchParams {
            field_manager: Some(field_manager.into()),
            ..Default::default()
        };
        let patch = serde_json::json!({"metadata": {"annotations": annotations}});
        let object = self
            .call(objects.patch(name, &params, &Patch::Merge(&patch)))
            .await?;
        serde_json::to_value(object).map_err(|e| KubeError::Client(e.to_string()))
    }
}
