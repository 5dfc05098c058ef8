//! The consumers of Vault that are operators' objects (design §11.3,
//! facts/vault-consumers.md §2–4): External Secrets stores and their ExternalSecrets, the
//! Vault Secrets Operator's `VaultAuth`s and the secret resources that use them, and the CSI
//! driver's `SecretProviderClass`es. Which of them use the triaged mount, and how each says it
//! is synced, read from their JSON. Pure; the listing is in `client.rs`.

use serde_json::Value;

use crate::evidence::{RestartTarget, SecretSync, Via, Workload, WorkloadKind};

/// A custom resource's API coordinates.
#[derive(Debug, Clone, Copy)]
pub struct CrdApi {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
}

pub const ESO_SECRET_STORE: CrdApi = CrdApi {
    group: "external-secrets.io",
    version: "v1",
    kind: "SecretStore",
    plural: "secretstores",
};
pub const ESO_CLUSTER_SECRET_STORE: CrdApi = CrdApi {
    group: "external-secrets.io",
    version: "v1",
    kind: "ClusterSecretStore",
    plural: "clustersecretstores",
};
pub const ESO_EXTERNAL_SECRET: CrdApi = CrdApi {
    group: "external-secrets.io",
    version: "v1",
    kind: "ExternalSecret",
    plural: "externalsecrets",
};
pub const VSO_AUTH: CrdApi = CrdApi {
    group: "secrets.hashicorp.com",
    version: "v1beta1",
    kind: "VaultAuth",
    plural: "vaultauths",
};
/// The VSO secret resources, each synced from Vault through a `VaultAuth`.
pub const VSO_SECRETS: [CrdApi; 3] = [
    CrdApi {
        group: "secrets.hashicorp.com",
        version: "v1beta1",
        kind: "VaultStaticSecret",
        plural: "vaultstaticsecrets",
    },
    CrdApi {
        group: "secrets.hashicorp.com",
        version: "v1beta1",
        kind: "VaultDynamicSecret",
        plural: "vaultdynamicsecrets",
    },
    CrdApi {
        group: "secrets.hashicorp.com",
        version: "v1beta1",
        kind: "VaultPKISecret",
        plural: "vaultpkisecrets",
    },
];
pub const CSI_SECRET_PROVIDER_CLASS: CrdApi = CrdApi {
    group: "secrets-store.csi.x-k8s.io",
    version: "v1",
    kind: "SecretProviderClass",
    plural: "secretproviderclasses",
};

/// The API of an ESO or VSO kind, by the name `SecretSync::kind` carries.
pub fn crd_of_kind(kind: &str) -> Option<CrdApi> {
    [
        ESO_SECRET_STORE,
        ESO_CLUSTER_SECRET_STORE,
        ESO_EXTERNAL_SECRET,
        VSO_AUTH,
    ]
    .into_iter()
    .chain(VSO_SECRETS)
    .find(|api| api.kind == kind)
}

impl CrdApi {
    /// The coordinates as kube-rs takes them for a `DynamicObject` API.
    pub fn api_resource(&self) -> kube::discovery::ApiResource {
        kube::discovery::ApiResource {
            group: self.group.to_string(),
            version: self.version.to_string(),
            api_version: format!("{}/{}", self.group, self.version),
            kind: self.kind.to_string(),
            plural: self.plural.to_string(),
        }
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(v, |v, k| v.get(*k))
        .and_then(Value::as_str)
}

fn same_mount(a: &str, mount: &str) -> bool {
    let a = a.trim().trim_matches('/');
    a.strip_prefix("auth/").unwrap_or(a) == mount.trim_matches('/')
}

fn name_of(obj: &Value) -> (String, String) {
    (
        str_at(obj, &["metadata", "namespace"])
            .unwrap_or_default()
            .to_string(),
        str_at(obj, &["metadata", "name"])
            .unwrap_or_default()
            .to_string(),
    )
}

/// The condition `kind` of an object's `status.conditions`: whether it is `True`, and its
/// reason and message.
fn condition(obj: &Value, kind: &str) -> (Option<bool>, String) {
    let Some(c) = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == kind))
    else {
        return (None, String::new());
    };
    let ready = match c["status"].as_str() {
        Some("True") => Some(true),
        Some("False") => Some(false),
        _ => None,
    };
    let reason = c["reason"].as_str().unwrap_or_default();
    let message = c["message"].as_str().unwrap_or_default();
    let text = match (reason.is_empty(), message.is_empty()) {
        (false, false) => format!("{reason}: {message}"),
        (false, true) => reason.to_string(),
        _ => message.to_string(),
    };
    (ready, text)
}

fn sync(api: CrdApi, obj: &Value, condition_type: &str, via: Via) -> SecretSync {
    let (namespace, name) = name_of(obj);
    let (ready, message) = condition(obj, condition_type);
    SecretSync {
        kind: api.kind.to_string(),
        namespace,
        name,
        ready,
        message,
        via,
        created_once: str_at(obj, &["spec", "refreshPolicy"]) == Some("CreatedOnce"),
        restart_targets: restart_targets(obj),
        role: String::new(),
    }
}

/// A VSO secret's `spec.rolloutRestartTargets` (kinds `Deployment`, `DaemonSet`,
/// `StatefulSet`, `argo.Rollout`).
fn restart_targets(obj: &Value) -> Vec<RestartTarget> {
    obj.pointer("/spec/rolloutRestartTargets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            let kind = match t["kind"].as_str()? {
                "Deployment" => WorkloadKind::Deployment,
                "DaemonSet" => WorkloadKind::DaemonSet,
                "StatefulSet" => WorkloadKind::StatefulSet,
                "argo.Rollout" => WorkloadKind::Rollout,
                _ => return None,
            };
            let name = t["name"].as_str().filter(|n| !n.is_empty())?;
            Some(RestartTarget {
                kind,
                name: name.to_string(),
            })
        })
        .collect()
}

/// Whether an ESO store logs in through `mount`: its Vault provider with Kubernetes auth at
/// `mountPath` (default `kubernetes`).
pub fn eso_store_uses_mount(store: &Value, mount: &str) -> bool {
    let Some(k8s) = store.pointer("/spec/provider/vault/auth/kubernetes") else {
        return false;
    };
    same_mount(k8s["mountPath"].as_str().unwrap_or("kubernetes"), mount)
}

/// The ESO stores on `mount` and the ExternalSecrets that use them, each with its `Ready`
/// condition.
pub fn eso_syncs(
    stores: &[Value],
    cluster_stores: &[Value],
    externals: &[Value],
    mount: &str,
) -> Vec<SecretSync> {
    let mut out = Vec::new();
    let mut on_mount: Vec<(&str, String, String)> = Vec::new();
    for (api, list) in [
        (ESO_SECRET_STORE, stores),
        (ESO_CLUSTER_SECRET_STORE, cluster_stores),
    ] {
        for s in list.iter().filter(|s| eso_store_uses_mount(s, mount)) {
            let (ns, name) = name_of(s);
            on_mount.push((api.kind, ns, name));
            out.push(sync(api, s, "Ready", Via::Eso));
        }
    }
    for es in externals {
        let (ns, _) = name_of(es);
        let store = str_at(es, &["spec", "secretStoreRef", "name"]).unwrap_or_default();
        let kind = str_at(es, &["spec", "secretStoreRef", "kind"]).unwrap_or("SecretStore");
        let uses = on_mount.iter().any(|(k, sns, sname)| {
            *k == kind && sname == store && (kind == "ClusterSecretStore" || *sns == ns)
        });
        if uses {
            out.push(sync(ESO_EXTERNAL_SECRET, es, "Ready", Via::Eso));
        }
    }
    out
}

/// Whether a `VaultAuth` logs in through `mount` (method `kubernetes`; VSO's `mount` has no
/// `auth/` prefix).
pub fn vso_auth_uses_mount(auth: &Value, mount: &str) -> bool {
    str_at(auth, &["spec", "method"]) == Some("kubernetes")
        && str_at(auth, &["spec", "mount"]).is_some_and(|m| same_mount(m, mount))
}

/// The VSO secret resources whose `vaultAuthRef` names a `VaultAuth` on `mount` (`ns/name`, or
/// a name in the resource's namespace; an empty ref is the operator's `default`), each with its
/// `SecretSynced` condition.
pub fn vso_syncs(
    auths: &[Value],
    secrets: &[(CrdApi, Vec<Value>)],
    mount: &str,
) -> Vec<SecretSync> {
    let on_mount: Vec<((String, String), &str)> = auths
        .iter()
        .filter(|a| vso_auth_uses_mount(a, mount))
        .map(|a| {
            let role = str_at(a, &["spec", "kubernetes", "role"]).unwrap_or_default();
            (name_of(a), role)
        })
        .collect();
    let mut out = Vec::new();
    for (api, list) in secrets {
        for s in list {
            let (ns, _) = name_of(s);
            let r = str_at(s, &["spec", "vaultAuthRef"]).unwrap_or_default();
            let auth = on_mount.iter().find(|((a, b), _)| match r.split_once('/') {
                Some((rns, rname)) => a == rns && b == rname,
                None if r.is_empty() => b == "default",
                None => *a == ns && b == r,
            });
            if let Some((_, role)) = auth {
                let mut found = sync(*api, s, "SecretSynced", Via::Vso);
                found.role = role.to_string();
                out.push(found);
            }
        }
    }
    out
}

/// The workloads found through their templates and pods, plus the VSO secrets' restart
/// targets (they read the synced Secret, `via: vso`) that are not among them already.
pub fn with_vso_targets(mut workloads: Vec<Workload>, syncs: &[SecretSync]) -> Vec<Workload> {
    for s in syncs.iter().filter(|s| s.via == Via::Vso) {
        for t in &s.restart_targets {
            let known = workloads
                .iter()
                .any(|w| w.kind == t.kind && w.namespace == s.namespace && w.name == t.name);
            if !known {
                workloads.push(Workload {
                    namespace: s.namespace.clone(),
                    name: t.name.clone(),
                    kind: t.kind,
                    role: s.role.clone(),
                    via: Via::Vso,
                    ..Workload::default()
                });
            }
        }
    }
    workloads.sort();
    workloads
}

/// The `SecretProviderClass`es (namespace, name, role) of the Vault or OpenBao provider that
/// log in through `mount` (`vaultKubernetesMountPath` or `vaultAuthMountPath`, default
/// `kubernetes`).
pub fn csi_classes(classes: &[Value], mount: &str) -> Vec<(String, String, String)> {
    classes
        .iter()
        .filter(|c| matches!(str_at(c, &["spec", "provider"]), Some("vault" | "openbao")))
        .filter(|c| {
            let p = |k: &str| str_at(c, &["spec", "parameters", k]);
            let m = p("vaultKubernetesMountPath")
                .or_else(|| p("vaultAuthMountPath"))
                .unwrap_or("kubernetes");
            same_mount(m, mount)
        })
        .map(|c| {
            let (ns, name) = name_of(c);
            let role = str_at(c, &["spec", "parameters", "roleName"])
                .unwrap_or_default()
                .to_string();
            (ns, name, role)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cond(kind: &str, status: &str, reason: &str, message: &str) -> Value {
        json!([{"type": kind, "status": status, "reason": reason, "message": message}])
    }

    #[test]
    fn eso_stores_on_the_mount_and_their_external_secrets_are_found() {
        let css = json!({"metadata": {"name": "vault-backend"},
            "spec": {"provider": {"vault": {"server": "https://vault:8200",
                "auth": {"kubernetes": {"role": "eso"}}}}},
            "status": {"conditions": cond("Ready", "False", "InvalidProviderConfig", "unable to create client")}});
        let other = json!({"metadata": {"name": "other", "namespace": "a"},
            "spec": {"provider": {"vault": {"auth": {"kubernetes": {"mountPath": "kubernetes-b"}}}}}});
        let es = json!({"metadata": {"name": "payments-db", "namespace": "production"},
            "spec": {"secretStoreRef": {"name": "vault-backend", "kind": "ClusterSecretStore"}},
            "status": {"conditions": cond("Ready", "False", "SecretSyncedError", "could not get secret data from provider")}});
        let unrelated = json!({"metadata": {"name": "x", "namespace": "a"},
            "spec": {"secretStoreRef": {"name": "other"}}});
        let got = eso_syncs(&[other], &[css], &[es, unrelated], "kubernetes");
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].kind, "ClusterSecretStore");
        assert_eq!(got[0].ready, Some(false));
        assert_eq!(
            got[0].message,
            "InvalidProviderConfig: unable to create client"
        );
        assert_eq!(
            (
                got[1].kind.as_str(),
                got[1].namespace.as_str(),
                got[1].name.as_str()
            ),
            ("ExternalSecret", "production", "payments-db")
        );
        assert_eq!(got[1].via, Via::Eso);
        // The same objects seen from the other mount: the namespaced store and nothing else.
        let got = eso_syncs(
            &[json!({"metadata": {"name": "s", "namespace": "a"},
                "spec": {"provider": {"vault": {"auth": {"kubernetes": {"mountPath": "/auth/kubernetes-b/"}}}}}})],
            &[],
            &[
                json!({"metadata": {"name": "e", "namespace": "b"}, "spec": {"secretStoreRef": {"name": "s"}}}),
            ],
            "kubernetes-b",
        );
        assert_eq!(
            got.len(),
            1,
            "an ExternalSecret in another namespace does not use a SecretStore"
        );
    }

    #[test]
    fn created_once_external_secrets_are_marked_and_kinds_map_to_their_api() {
        let css = json!({"metadata": {"name": "vault-backend"},
            "spec": {"provider": {"vault": {"auth": {"kubernetes": {"role": "eso"}}}}}});
        let es = |name: &str, policy: &str| {
            json!({"metadata": {"name": name, "namespace": "p"},
            "spec": {"secretStoreRef": {"name": "vault-backend", "kind": "ClusterSecretStore"},
                "refreshPolicy": policy}})
        };
        let got = eso_syncs(
            &[],
            &[css],
            &[es("once", "CreatedOnce"), es("periodic", "Periodic")],
            "kubernetes",
        );
        let marks: Vec<(&str, bool)> = got
            .iter()
            .map(|s| (s.name.as_str(), s.created_once))
            .collect();
        assert_eq!(
            marks,
            [
                ("vault-backend", false),
                ("once", true),
                ("periodic", false)
            ]
        );
        assert_eq!(
            crd_of_kind("VaultPKISecret").map(|a| a.plural),
            Some("vaultpkisecrets")
        );
        assert_eq!(
            crd_of_kind("ClusterSecretStore").map(|a| a.plural),
            Some("clustersecretstores")
        );
        assert!(crd_of_kind("Deployment").is_none());
    }

    #[test]
    fn vso_secrets_follow_their_vault_auth_to_the_mount() {
        let auth = json!({"metadata": {"name": "default", "namespace": "production"},
            "spec": {"method": "kubernetes", "mount": "kubernetes", "kubernetes": {"role": "vso"}},
            "status": {"valid": true}});
        let jwt = json!({"metadata": {"name": "jwt", "namespace": "production"},
            "spec": {"method": "jwt", "mount": "kubernetes"}});
        let vss = json!({"metadata": {"name": "orders-config", "namespace": "production"},
            "spec": {"vaultAuthRef": "default", "rolloutRestartTargets": [
                {"kind": "Deployment", "name": "orders-api"},
                {"kind": "argo.Rollout", "name": "orders-canary"},
                {"kind": "Job", "name": "not-a-target-kind"}
            ]},
            "status": {"conditions": cond("SecretSynced", "False", "", "Failed to sync the secret, horizon=5s, err=…")}});
        let by_path = json!({"metadata": {"name": "p", "namespace": "other"},
            "spec": {"vaultAuthRef": "production/default"}});
        let on_jwt = json!({"metadata": {"name": "j", "namespace": "production"},
            "spec": {"vaultAuthRef": "jwt"}});
        let got = vso_syncs(
            &[auth, jwt],
            &[(VSO_SECRETS[0], vec![vss, by_path, on_jwt])],
            "kubernetes",
        );
        let names: Vec<&str> = got.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["orders-config", "p"]);
        assert_eq!(got[0].ready, Some(false));
        assert!(got[0].message.starts_with("Failed to sync the secret"));
        assert_eq!(got[1].ready, None, "no condition yet");
        assert_eq!(got[0].role, "vso");
        let targets: Vec<(WorkloadKind, &str)> = got[0]
            .restart_targets
            .iter()
            .map(|t| (t.kind, t.name.as_str()))
            .collect();
        assert_eq!(
            targets,
            [
                (WorkloadKind::Deployment, "orders-api"),
                (WorkloadKind::Rollout, "orders-canary")
            ]
        );

        // The targets join the blast radius through VSO unless already found otherwise.
        let injected = Workload {
            namespace: "production".into(),
            name: "orders-api".into(),
            kind: WorkloadKind::Deployment,
            role: "orders-api".into(),
            via: Via::Injector,
            ..Workload::default()
        };
        let all = with_vso_targets(vec![injected], &got);
        let found: Vec<(&str, Via, &str)> = all
            .iter()
            .map(|w| (w.name.as_str(), w.via, w.role.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                ("orders-api", Via::Injector, "orders-api"),
                ("orders-canary", Via::Vso, "vso")
            ]
        );
    }

    #[test]
    fn csi_classes_of_vault_or_openbao_on_the_mount() {
        let spc = |provider: &str, params: Value| json!({"metadata": {"name": "c", "namespace": "n"}, "spec": {"provider": provider, "parameters": params}});
        assert_eq!(
            csi_classes(
                &[spc("vault", json!({"roleName": "billing"}))],
                "kubernetes"
            ),
            [("n".to_string(), "c".to_string(), "billing".to_string())]
        );
        assert_eq!(
            csi_classes(
                &[spc(
                    "openbao",
                    json!({"roleName": "r", "vaultAuthMountPath": "kubernetes-b"})
                )],
                "kubernetes-b"
            )
            .len(),
            1
        );
        assert!(csi_classes(&[spc("azure", json!({}))], "kubernetes").is_empty());
        assert!(
            csi_classes(
                &[spc("vault", json!({"vaultKubernetesMountPath": "other"}))],
                "kubernetes"
            )
            .is_empty()
        );
    }
}
