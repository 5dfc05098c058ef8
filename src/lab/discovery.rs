//! API discovery for what the lab simulates (`/api`, `/apis`, and each group version's
//! resource list), so `kubectl get deployments -A` (or pods, statefulsets, daemonsets, cronjobs, or
//! the Vault operators' `externalsecrets`, `clustersecretstores`, `vaultstaticsecrets`,
//! `secretproviderclasses`, ...) and `kubectl rollout status` work against it. The documents are the legacy (unaggregated) discovery shapes, which kubectl falls back
//! to when the server answers plain `application/json`.

use serde_json::{Value, json};

/// One simulated resource: name, kind, namespaced, verbs, short names.
type Resource = (
    &'static str,
    &'static str,
    bool,
    &'static [&'static str],
    &'static [&'static str],
);

/// The group versions the lab serves, with their resources.
const GROUPS: &[(&str, &str, &[Resource])] = &[
    (
        "",
        "v1",
        &[
            ("namespaces", "Namespace", false, &["get"], &["ns"]),
            ("serviceaccounts", "ServiceAccount", true, &["get"], &["sa"]),
            (
                "serviceaccounts/token",
                "TokenRequest",
                true,
                &["create"],
                &[],
            ),
            ("secrets", "Secret", true, &["get"], &[]),
            ("configmaps", "ConfigMap", true, &["get"], &["cm"]),
            ("pods", "Pod", true, &["get", "list"], &["po"]),
        ],
    ),
    (
        "apps",
        "v1",
        &[
            (
                "deployments",
                "Deployment",
                true,
                &["get", "list", "watch", "patch"],
                &["deploy"],
            ),
            (
                "statefulsets",
                "StatefulSet",
                true,
                &["get", "list", "watch", "patch"],
                &["sts"],
            ),
            (
                "daemonsets",
                "DaemonSet",
                true,
                &["get", "list", "watch", "patch"],
                &["ds"],
            ),
        ],
    ),
    (
        "batch",
        "v1",
        &[(
            "cronjobs",
            "CronJob",
            true,
            &["get", "list", "watch", "patch"],
            &["cj"],
        )],
    ),
    (
        "authentication.k8s.io",
        "v1",
        &[
            ("tokenreviews", "TokenReview", false, &["create"], &[]),
            (
                "selfsubjectreviews",
                "SelfSubjectReview",
                false,
                &["create"],
                &[],
            ),
        ],
    ),
    (
        "authorization.k8s.io",
        "v1",
        &[(
            "selfsubjectaccessreviews",
            "SelfSubjectAccessReview",
            false,
            &["create"],
            &[],
        )],
    ),
    (
        "coordination.k8s.io",
        "v1",
        &[("leases", "Lease", true, &["create", "get", "update"], &[])],
    ),
    (
        "external-secrets.io",
        "v1",
        &[
            (
                "clustersecretstores",
                "ClusterSecretStore",
                false,
                &["get", "list", "patch"],
                &["css"],
            ),
            (
                "externalsecrets",
                "ExternalSecret",
                true,
                &["get", "list", "patch"],
                &["es"],
            ),
            (
                "secretstores",
                "SecretStore",
                true,
                &["get", "list", "patch"],
                &["ss"],
            ),
        ],
    ),
    (
        "secrets.hashicorp.com",
        "v1beta1",
        &[
            ("vaultauths", "VaultAuth", true, &["get", "list"], &[]),
            (
                "vaultconnections",
                "VaultConnection",
                true,
                &["get", "list"],
                &[],
            ),
            (
                "vaultdynamicsecrets",
                "VaultDynamicSecret",
                true,
                &["get", "list", "patch"],
                &[],
            ),
            (
                "vaultpkisecrets",
                "VaultPKISecret",
                true,
                &["get", "list", "patch"],
                &[],
            ),
            (
                "vaultstaticsecrets",
                "VaultStaticSecret",
                true,
                &["get", "list", "patch"],
                &[],
            ),
        ],
    ),
    (
        "secrets-store.csi.x-k8s.io",
        "v1",
        &[(
            "secretproviderclasses",
            "SecretProviderClass",
            true,
            &["get", "list"],
            &[],
        )],
    ),
];

/// The discovery document for `segs` (a path split on `/`), if it is one.
pub(crate) fn document(segs: &[&str]) -> Option<Value> {
    match segs {
        ["api"] => Some(json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
        })),
        ["apis"] => Some(json!({
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": GROUPS
                .iter()
                .filter(|(group, _, _)| !group.is_empty())
                .map(|(group, version, _)| {
                    let gv = json!({"groupVersion": format!("{group}/{version}"), "version": version});
                    json!({"name": group, "versions": [gv.clone()], "preferredVersion": gv})
                })
                .collect::<Vec<_>>(),
        })),
        ["api", "v1"] => resources("", "v1"),
        ["apis", group, version] => resources(group, version),
        _ => None,
    }
}

fn resources(group: &str, version: &str) -> Option<Value> {
    let (_, _, list) = GROUPS
        .iter()
        .find(|(g, v, _)| *g == group && *v == version)?;
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": list
            .iter()
            .map(|(name, kind, namespaced, verbs, short)| json!({
                "name": name,
                "singularName": if name.contains('/') { String::new() } else { kind.to_lowercase() },
                "namespaced": namespaced,
                "kind": kind,
                "verbs": verbs,
                "shortNames": short,
            }))
            .collect::<Vec<_>>(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_group_the_lab_serves_is_discoverable() {
        let groups = document(&["apis"]).unwrap();
        let names: Vec<&str> = groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "apps",
                "batch",
                "authentication.k8s.io",
                "authorization.k8s.io",
                "coordination.k8s.io",
                "external-secrets.io",
                "secrets.hashicorp.com",
                "secrets-store.csi.x-k8s.io"
            ]
        );
        let apps = document(&["apis", "apps", "v1"]).unwrap();
        assert_eq!(apps["resources"][0]["name"], "deployments");
        assert_eq!(apps["resources"][0]["shortNames"][0], "deploy");
        assert_eq!(apps["resources"][1]["name"], "statefulsets");
        assert_eq!(apps["resources"][1]["kind"], "StatefulSet");
        assert_eq!(apps["resources"][1]["singularName"], "statefulset");
        assert_eq!(apps["resources"][1]["shortNames"][0], "sts");
        assert_eq!(apps["resources"][2]["name"], "daemonsets");
        assert_eq!(apps["resources"][2]["shortNames"][0], "ds");
        assert_eq!(apps["resources"][2]["verbs"][1], "list");
        let batch = document(&["apis", "batch", "v1"]).unwrap();
        assert_eq!(batch["groupVersion"], "batch/v1");
        assert_eq!(batch["resources"][0]["name"], "cronjobs");
        assert_eq!(batch["resources"][0]["kind"], "CronJob");
        assert_eq!(batch["resources"][0]["shortNames"][0], "cj");
        assert!(document(&["apis", "batch", "v1beta1"]).is_none());
        let core = document(&["api", "v1"]).unwrap();
        let pods = core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "pods")
            .expect("pods discoverable");
        assert_eq!(pods["kind"], "Pod");
        assert_eq!(pods["namespaced"], true);
        assert_eq!(pods["verbs"], json!(["get", "list"]));
        // The operators' custom resources, as the lab serves them (`Crd`).
        for crd in super::super::consumers::Crd::ALL {
            let doc = document(&["apis", crd.group(), crd.version()]).expect("group version");
            assert_eq!(doc["groupVersion"], crd.api_version());
            let r = doc["resources"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["name"] == crd.resource())
                .unwrap_or_else(|| panic!("{crd:?} discoverable"));
            assert_eq!(r["kind"], crd.kind());
            assert_eq!(r["namespaced"], crd.namespaced(), "{crd:?}");
            let verbs = r["verbs"].as_array().unwrap();
            assert!(verbs.contains(&json!("list")), "{crd:?}");
            assert_eq!(verbs.contains(&json!("patch")), crd.patchable(), "{crd:?}");
        }
        let eso = document(&["apis", "external-secrets.io", "v1"]).unwrap();
        assert_eq!(eso["resources"][0]["name"], "clustersecretstores");
        assert_eq!(eso["resources"][0]["namespaced"], false);
        assert_eq!(eso["resources"][1]["shortNames"][0], "es");
        assert!(document(&["apis", "external-secrets.io", "v1beta1"]).is_none());
        assert_eq!(document(&["api"]).unwrap()["versions"][0], "v1");
    }
}
