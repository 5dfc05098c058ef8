//! The shapes the blast-radius lists are read into: one page of a list, and of each workload
//! and pod only the fields the bot reads. A big cluster answers thousands of objects whose
//! containers, probes, env and managed fields the bot never looks at; reading only what it
//! needs (serde skips the rest without building it) keeps a triage of such a cluster close to
//! one of a small cluster. kube's own list type buffers each page whole before reading it
//! (`#[serde(flatten)]`), which is why pages are read here.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::CSIVolumeSource;
use serde::Deserialize;

/// One page of a list: its items and the token of the next page.
#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub struct Page<T> {
    #[serde(default)]
    pub metadata: PageMeta,
    #[serde(default = "Vec::new", deserialize_with = "null_as_empty")]
    pub items: Vec<T>,
}

#[derive(Debug, Default, Deserialize)]
pub struct PageMeta {
    #[serde(rename = "continue", default)]
    pub continue_: Option<String>,
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// An object's name, namespace and uid.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Meta {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub uid: String,
}

/// A Deployment, StatefulSet, DaemonSet or CronJob: its pod template and how it rolls out.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Workload {
    #[serde(default)]
    pub metadata: Meta,
    #[serde(default)]
    pub spec: WorkloadSpec,
    #[serde(default)]
    pub status: WorkloadStatus,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadSpec {
    pub replicas: Option<i32>,
    pub template: Option<Template>,
    /// A CronJob's.
    pub job_template: Option<JobTemplate>,
    /// A StatefulSet's or DaemonSet's.
    pub update_strategy: Option<UpdateStrategy>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct JobTemplate {
    pub spec: Option<JobSpec>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct JobSpec {
    pub template: Option<Template>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct UpdateStrategy {
    #[serde(rename = "type")]
    pub type_: Option<String>,
}

/// A DaemonSet's scheduled pod count.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadStatus {
    pub desired_number_scheduled: Option<i32>,
}

/// A pod template: the injector's annotations, the ServiceAccount, the CSI volumes.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Template {
    #[serde(default)]
    pub metadata: TemplateMeta,
    #[serde(default)]
    pub spec: PodSpec,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct TemplateMeta {
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    pub service_account_name: Option<String>,
    #[serde(default)]
    pub volumes: Vec<Volume>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Volume {
    pub csi: Option<CSIVolumeSource>,
}

/// A pod's metadata as a metadata-only list gives it: what the injector wrote and who owns it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodMeta {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub owner_references: Vec<OwnerRef>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct OwnerRef {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    pub controller: Option<bool>,
}

impl From<&kube::api::ObjectMeta> for PodMeta {
    fn from(m: &kube::api::ObjectMeta) -> Self {
        PodMeta {
            name: m.name.clone().unwrap_or_default(),
            namespace: m.namespace.clone().unwrap_or_default(),
            annotations: m.annotations.clone().unwrap_or_default(),
            labels: m.labels.clone().unwrap_or_default(),
            owner_references: m
                .owner_references
                .iter()
                .flatten()
                .map(|r| OwnerRef {
                    kind: r.kind.clone(),
                    name: r.name.clone(),
                    controller: r.controller,
                })
                .collect(),
        }
    }
}

/// An item of a metadata-only list (`PartialObjectMetadata`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PartialPod {
    #[serde(default)]
    pub metadata: PodMeta,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_page_reads_its_continue_token_and_only_the_fields_the_bot_needs() {
        let page: Page<Workload> = serde_json::from_value(json!({
            "kind": "DeploymentList", "apiVersion": "apps/v1",
            "metadata": {"resourceVersion": "12", "continue": "next-one"},
            "items": [{
                "metadata": {"name": "payments-api", "namespace": "production", "uid": "u-1",
                             "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]},
                "spec": {"replicas": 3, "template": {
                    "metadata": {"annotations": {"vault.hashicorp.com/role": "payments-api"}},
                    "spec": {"serviceAccountName": "payments-api",
                             "containers": [{"name": "app", "image": "x", "env": [{"name": "A", "value": "b"}]}],
                             "volumes": [{"name": "s", "csi": {"driver": "secrets-store.csi.k8s.io",
                                          "volumeAttributes": {"secretProviderClass": "c"}}}]}}},
                "status": {"replicas": 3}
            }]
        }))
        .unwrap();
        assert_eq!(page.metadata.continue_.as_deref(), Some("next-one"));
        let d = &page.items[0];
        assert_eq!(
            (d.metadata.name.as_str(), d.metadata.uid.as_str()),
            ("payments-api", "u-1")
        );
        let t = d.spec.template.as_ref().unwrap();
        assert_eq!(
            t.metadata.annotations["vault.hashicorp.com/role"],
            "payments-api"
        );
        assert_eq!(t.spec.service_account_name.as_deref(), Some("payments-api"));
        assert_eq!(
            t.spec.volumes[0].csi.as_ref().unwrap().driver,
            "secrets-store.csi.k8s.io"
        );

        // The last page has no token; a list with `items: null` is empty.
        let last: Page<Workload> =
            serde_json::from_value(json!({"metadata": {}, "items": null})).unwrap();
        assert!(last.metadata.continue_.is_none() && last.items.is_empty());
    }

    #[test]
    fn a_metadata_only_pod_reads_its_owner() {
        let page: Page<PartialPod> = serde_json::from_value(json!({
            "kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": "7"},
            "items": [{"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                "metadata": {"name": "ledger-db-0", "namespace": "production",
                    "labels": {"controller-revision-hash": "ledger-db-5d8c"},
                    "annotations": {"vault.hashicorp.com/agent-inject-status": "injected"},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet",
                        "name": "ledger-db", "uid": "u", "controller": true}]}}]
        }))
        .unwrap();
        let m = &page.items[0].metadata;
        assert_eq!(m.owner_references[0].kind, "StatefulSet");
        assert_eq!(m.owner_references[0].controller, Some(true));
        assert_eq!(m.annotations.len(), 1);
    }
}
