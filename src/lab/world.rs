//! The simulated cluster's objects (namespaces, ServiceAccounts, Secrets, ConfigMaps,
//! Deployments) and its small RBAC model.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Value, json};
use sha2::Digest as _;

use super::setup::{
    APPS, CANARY_NAMESPACE, CANARY_SA, CLUSTER_CA_PEM, REVIEWER_NAMESPACE, REVIEWER_SA,
    REVIEWER_SECRET,
};

/// Creation time of every object that exists when the lab starts.
pub(crate) const CREATED: &str = "2026-01-12T09:30:00Z";
/// The bot's own ServiceAccount.
pub(crate) const BOT_NAMESPACE: &str = "vault-triage";
pub(crate) const BOT_SA: &str = "vault-triage";

pub(crate) type Key = (String, String);

fn key(ns: &str, name: &str) -> Key {
    (ns.to_string(), name.to_string())
}

/// A stable UID derived from the object's kind and name.
pub(crate) fn stable_uid(kind: &str, ns: &str, name: &str) -> String {
    let d = sha2::Sha256::digest(format!("{kind}/{ns}/{name}").as_bytes());
    let h = hex::encode(&d[..16]);
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

pub(crate) fn sa_username(ns: &str, name: &str) -> String {
    format!("system:serviceaccount:{ns}:{name}")
}

/// How the reviewer's token Secret looks.
pub(crate) enum ReviewerSecret {
    /// Opaque Secret holding a bound token.
    Opaque,
    /// Legacy `kubernetes.io/service-account-token` Secret labelled invalid by the cleaner.
    LegacyInvalidated { since: String },
}

/// Every object of the simulated cluster.
pub(crate) struct KubeWorld {
    pub namespaces: Vec<String>,
    pub service_accounts: BTreeMap<Key, String>,
    pub secrets: BTreeMap<Key, Value>,
    pub configmaps: BTreeMap<Key, Value>,
    pub deployments: BTreeMap<Key, Value>,
    /// Users that may do everything.
    pub admins: HashSet<String>,
    /// Users bound to system:auth-delegator.
    pub auth_delegators: HashSet<String>,
    /// ServiceAccounts whose tokens are all invalidated.
    pub invalidated_sas: HashSet<Key>,
    /// Deployments whose next rollout exceeds its progress deadline.
    pub failing_rollouts: HashSet<Key>,
    /// `coordination.k8s.io/v1` Leases (leader election).
    pub leases: BTreeMap<Key, Value>,
    resource_version: u64,
}

impl KubeWorld {
    pub fn new() -> Self {
        let mut w = KubeWorld {
            namespaces: vec![
                "default".into(),
                "production".into(),
                "vault".into(),
                "vault-triage".into(),
            ],
            service_accounts: BTreeMap::new(),
            secrets: BTreeMap::new(),
            configmaps: BTreeMap::new(),
            deployments: BTreeMap::new(),
            admins: HashSet::new(),
            auth_delegators: HashSet::new(),
            invalidated_sas: HashSet::new(),
            failing_rollouts: HashSet::new(),
            leases: BTreeMap::new(),
            resource_version: 1000,
        };
        let mut sas = vec![
            (BOT_NAMESPACE, BOT_SA),
            (CANARY_NAMESPACE, CANARY_SA),
            (REVIEWER_NAMESPACE, REVIEWER_SA),
        ];
        sas.extend(APPS.iter().map(|a| ("production", *a)));
        for ns in w.namespaces.clone() {
            sas.push((leak_free(&ns), "default"));
        }
        for (ns, name) in sas {
            w.service_accounts
                .insert(key(ns, name), stable_uid("ServiceAccount", ns, name));
        }
        w.admins.insert(sa_username(BOT_NAMESPACE, BOT_SA));
        w.auth_delegators
            .insert(sa_username(REVIEWER_NAMESPACE, REVIEWER_SA));
        for ns in w.namespaces.clone() {
            let rv = w.next_rv();
            w.configmaps.insert(
                key(&ns, "kube-root-ca.crt"),
                json!({
                    "kind": "ConfigMap", "apiVersion": "v1",
                    "metadata": {
                        "name": "kube-root-ca.crt", "namespace": ns,
                        "uid": stable_uid("ConfigMap", &ns, "kube-root-ca.crt"),
                        "resourceVersion": rv.to_string(), "creationTimestamp": CREATED,
                        "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}
                    },
                    "data": {"ca.crt": CLUSTER_CA_PEM}
                }),
            );
        }
        for app in APPS {
            w.add_deployment("production", app, true);
        }
        w.add_deployment("production", "frontend", false);
        w.add_deployment("default", "redis", false);
        w
    }

    pub fn next_rv(&mut self) -> u64 {
        self.resource_version += 1;
        self.resource_version
    }

    pub fn current_rv(&self) -> u64 {
        self.resource_version
    }

    pub fn sa_uid(&self, ns: &str, name: &str) -> Option<String> {
        self.service_accounts.get(&key(ns, name)).cloned()
    }

    /// Adds the reviewer's token Secret.
    pub fn add_reviewer_secret(&mut self, token: &str, shape: ReviewerSecret) {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let rv = self.next_rv();
        let mut meta = json!({
            "name": REVIEWER_SECRET, "namespace": REVIEWER_NAMESPACE,
            "uid": stable_uid("Secret", REVIEWER_NAMESPACE, REVIEWER_SECRET),
            "resourceVersion": rv.to_string(), "creationTimestamp": CREATED,
        });
        let secret = match shape {
            ReviewerSecret::Opaque => json!({
                "kind": "Secret", "apiVersion": "v1", "metadata": meta,
                "data": {"token": b64(token)}, "type": "Opaque"
            }),
            ReviewerSecret::LegacyInvalidated { since } => {
                meta["labels"] = json!({"kubernetes.io/legacy-token-invalid-since": since});
                meta["annotations"] = json!({
                    "kubernetes.io/service-account.name": REVIEWER_SA,
                    "kubernetes.io/service-account.uid":
                        self.sa_uid(REVIEWER_NAMESPACE, REVIEWER_SA).unwrap_or_default(),
                });
                json!({
                    "kind": "Secret", "apiVersion": "v1", "metadata": meta,
                    "data": {
                        "token": b64(token), "ca.crt": b64(CLUSTER_CA_PEM),
                        "namespace": b64(REVIEWER_NAMESPACE)
                    },
                    "type": "kubernetes.io/service-account-token"
                })
            }
        };
        self.secrets
            .insert(key(REVIEWER_NAMESPACE, REVIEWER_SECRET), secret);
    }

    fn add_deployment(&mut self, ns: &str, name: &str, vault: bool) {
        let rv = self.next_rv();
        let mut annotations = serde_json::Map::new();
        if vault {
            annotations.insert("vault.hashicorp.com/agent-inject".into(), json!("true"));
            annotations.insert("vault.hashicorp.com/role".into(), json!(name));
        }
        let sa = if vault { name } else { "default" };
        let image = match name {
            "redis" => "redis:7.4".to_string(),
            other => format!("registry.example.com/{other}:1.8.2"),
        };
        let dep = json!({
            "kind": "Deployment", "apiVersion": "apps/v1",
            "metadata": {
                "name": name, "namespace": ns,
                "uid": stable_uid("Deployment", ns, name),
                "generation": 1, "resourceVersion": rv.to_string(),
                "creationTimestamp": CREATED,
                "labels": {"app": name},
                "annotations": {"deployment.kubernetes.io/revision": "1"}
            },
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}, "annotations": annotations},
                    "spec": {
                        "serviceAccountName": sa,
                        "containers": [{"name": name, "image": image}]
                    }
                },
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
                "revisionHistoryLimit": 10,
                "progressDeadlineSeconds": 600
            },
            "status": rolled_out_status(1, 2, CREATED)
        });
        self.deployments.insert(key(ns, name), dep);
    }

    /// May `user` do `verb` on `resource` (with subresource, e.g. `serviceaccounts/token`)?
    pub fn allowed(&self, user: &str, verb: &str, group: &str, resource: &str) -> bool {
        if self.admins.contains(user) {
            return true;
        }
        if user == "system:anonymous" {
            // kubectl sends no credentials over plain HTTP: so that `kubectl get deployments
            // -A` and `kubectl rollout status` work against the lab, anyone may look at its
            // deployments and namespaces. Nothing else, and nothing the bot relies on.
            return matches!(
                (verb, group, resource),
                ("get" | "list" | "watch", "apps", "deployments")
                    | ("get" | "list", "", "namespaces")
            );
        }
        match (verb, group, resource) {
            (
                "create",
                "authentication.k8s.io" | "authorization.k8s.io",
                "selfsubjectreviews" | "selfsubjectaccessreviews" | "selfsubjectrulesreviews",
            ) => true,
            ("create", "authentication.k8s.io", "tokenreviews")
            | ("create", "authorization.k8s.io", "subjectaccessreviews") => {
                self.auth_delegators.contains(user)
            }
            _ => false,
        }
    }
}

fn leak_free(ns: &str) -> &'static str {
    match ns {
        "default" => "default",
        "production" => "production",
        "vault" => "vault",
        _ => "vault-triage",
    }
}

/// The status of a Deployment whose rollout is complete.
pub(crate) fn rolled_out_status(generation: i64, replicas: i64, at: &str) -> Value {
    json!({
        "observedGeneration": generation,
        "replicas": replicas, "updatedReplicas": replicas,
        "readyReplicas": replicas, "availableReplicas": replicas,
        "conditions": [
            {"type": "Available", "status": "True", "lastUpdateTime": at, "lastTransitionTime": at,
             "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability."},
            {"type": "Progressing", "status": "True", "lastUpdateTime": at, "lastTransitionTime": at,
             "reason": "NewReplicaSetAvailable", "message": "ReplicaSet has successfully progressed."}
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn world_has_the_apps_and_rbac() {
        let w = KubeWorld::new();
        assert_eq!(w.deployments.len(), 7);
        let d = &w.deployments[&key("production", "payments-api")];
        assert_eq!(
            d["spec"]["template"]["metadata"]["annotations"]["vault.hashicorp.com/role"],
            "payments-api"
        );
        assert_eq!(
            d["spec"]["template"]["spec"]["serviceAccountName"],
            "payments-api"
        );
        assert_eq!(w.configmaps.len(), 4);
        let reviewer = sa_username("vault", "vault-auth");
        assert!(w.allowed(&reviewer, "create", "authentication.k8s.io", "tokenreviews"));
        assert!(!w.allowed(&reviewer, "get", "", "secrets"));
        let canary = sa_username("vault-triage", "vault-triage-canary");
        assert!(!w.allowed(&canary, "create", "authentication.k8s.io", "tokenreviews"));
        assert!(w.allowed(
            &sa_username("vault-triage", "vault-triage"),
            "patch",
            "apps",
            "deployments"
        ));
        assert_eq!(
            stable_uid("ServiceAccount", "a", "b"),
            stable_uid("ServiceAccount", "a", "b")
        );
    }
}
