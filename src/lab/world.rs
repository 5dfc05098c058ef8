//! The simulated cluster's objects (namespaces, ServiceAccounts, Secrets, ConfigMaps,
//! Deployments, StatefulSets, DaemonSets, CronJobs, Pods, and the Vault operators' custom
//! resources), how they heal once logins through the triaged mount work again, and the
//! cluster's small RBAC model.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Value, json};
use sha2::Digest as _;

use super::consumers::{self, CSI_CLASS, CSI_DEPLOYMENT, CSI_ROLE, Crd, LoginFailure};
use super::pods;
use super::setup::{
    APPS, AUTH_MOUNT, CANARY_NAMESPACE, CANARY_SA, CLUSTER_CA_PEM, REVIEWER_NAMESPACE, REVIEWER_SA,
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

/// The workload kinds the lab serves under `apps/v1` and `batch/v1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Workload {
    Deployment,
    StatefulSet,
    DaemonSet,
    CronJob,
}

impl Workload {
    pub const ALL: [Workload; 4] = [
        Workload::Deployment,
        Workload::StatefulSet,
        Workload::DaemonSet,
        Workload::CronJob,
    ];

    /// The kind served for `resource` (plural) in API group `group`.
    pub fn from_resource(group: &str, resource: &str) -> Option<Workload> {
        Workload::ALL
            .into_iter()
            .find(|w| w.group() == group && w.resource() == resource)
    }

    pub fn kind(self) -> &'static str {
        match self {
            Workload::Deployment => "Deployment",
            Workload::StatefulSet => "StatefulSet",
            Workload::DaemonSet => "DaemonSet",
            Workload::CronJob => "CronJob",
        }
    }

    /// The plural resource name.
    pub fn resource(self) -> &'static str {
        match self {
            Workload::Deployment => "deployments",
            Workload::StatefulSet => "statefulsets",
            Workload::DaemonSet => "daemonsets",
            Workload::CronJob => "cronjobs",
        }
    }

    pub fn group(self) -> &'static str {
        match self {
            Workload::CronJob => "batch",
            _ => "apps",
        }
    }

    pub fn api_version(self) -> &'static str {
        match self {
            Workload::CronJob => "batch/v1",
            _ => "apps/v1",
        }
    }
}

/// How the reviewer's token Secret looks.
pub(crate) enum ReviewerSecret {
    /// Opaque Secret holding a bound token.
    Opaque,
    /// Legacy `kubernetes.io/service-account-token` Secret labelled invalid by the cleaner.
    LegacyInvalidated { since: String },
}

/// Namespace of the benchmarks' bulk objects.
pub(crate) const BULK_NAMESPACE: &str = "bulk";

/// What the operators' objects and the lab's pods were last built for.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LoginState {
    /// The triaged auth mount (`kubernetes`, or a fleet's `kubernetes-<cluster>`).
    pub mount: String,
    /// How logins through it fail (`None`: they work).
    pub failure: Option<LoginFailure>,
    /// The time the world's timeline is anchored at (an outage began 3 h before it).
    pub epoch: chrono::DateTime<chrono::Utc>,
}

/// Every object of the simulated cluster.
pub(crate) struct KubeWorld {
    pub namespaces: Vec<String>,
    pub service_accounts: BTreeMap<Key, String>,
    pub secrets: BTreeMap<Key, Value>,
    pub configmaps: BTreeMap<Key, Value>,
    pub deployments: BTreeMap<Key, Value>,
    pub statefulsets: BTreeMap<Key, Value>,
    pub daemonsets: BTreeMap<Key, Value>,
    pub cronjobs: BTreeMap<Key, Value>,
    /// `v1` Pods: the lab's workloads' and Jobs' ([`pods::lab_pods`]) and the bulk ones.
    pub pods: BTreeMap<Key, Value>,
    /// Users that may do everything.
    pub admins: HashSet<String>,
    /// Users bound to system:auth-delegator.
    pub auth_delegators: HashSet<String>,
    /// ServiceAccounts whose tokens are all invalidated.
    pub invalidated_sas: HashSet<Key>,
    /// Workloads (any kind, by namespace and name) whose next rollout fails: a Deployment
    /// exceeds its progress deadline, a StatefulSet's or DaemonSet's new pod never gets ready.
    pub failing_rollouts: HashSet<Key>,
    /// `coordination.k8s.io/v1` Leases (leader election).
    pub leases: BTreeMap<Key, Value>,
    /// The Vault operators' custom resources, every [`Crd`] present (maybe empty); a
    /// cluster-scoped object's namespace is `""`.
    pub custom: BTreeMap<Crd, BTreeMap<Key, Value>>,
    /// What [`KubeWorld::set_vault_operators`] last built.
    pub logins: LoginState,
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
            statefulsets: BTreeMap::new(),
            daemonsets: BTreeMap::new(),
            cronjobs: BTreeMap::new(),
            pods: BTreeMap::new(),
            admins: HashSet::new(),
            auth_delegators: HashSet::new(),
            invalidated_sas: HashSet::new(),
            failing_rollouts: HashSet::new(),
            leases: BTreeMap::new(),
            custom: BTreeMap::new(),
            logins: LoginState {
                mount: AUTH_MOUNT.to_string(),
                failure: None,
                epoch: chrono::Utc::now(),
            },
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
        w.add_other_vault_consumers();
        w.add_csi_deployment();
        w.set_vault_operators(AUTH_MOUNT, None, chrono::Utc::now());
        w
    }

    /// A big cluster for the benchmarks, in namespace [`BULK_NAMESPACE`]: `workloads` more
    /// workloads (two thirds Deployments, the rest StatefulSets and DaemonSets copied from
    /// `ledger-db` and `log-shipper`; one in twenty names a Vault role), `external_secrets`
    /// more ExternalSecrets on the `vault-backend` store, and `pods` running pods owned by the
    /// bulk workloads in turn ([`pods::bulk_pods`]). Rebuilding the operators' objects
    /// ([`KubeWorld::set_vault_operators`]) keeps them all.
    pub fn add_bulk(&mut self, workloads: usize, external_secrets: usize, pod_count: usize) {
        let copy_of = |w: &Self, kind: Workload, name: &str| {
            w.objects(kind)
                .get(&key("production", name))
                .cloned()
                .unwrap_or_default()
        };
        let (sts, ds) = (
            copy_of(self, Workload::StatefulSet, "ledger-db"),
            copy_of(self, Workload::DaemonSet, "log-shipper"),
        );
        for i in 0..workloads {
            let name = format!("app-{i:05}");
            let vault = i % 20 == 0;
            match i % 6 {
                0..=3 => {
                    self.add_deployment(BULK_NAMESPACE, &name, vault);
                    continue;
                }
                4 => self.add_copy(Workload::StatefulSet, &sts, &name, vault),
                _ => self.add_copy(Workload::DaemonSet, &ds, &name, vault),
            }
        }
        let names: Vec<String> = (0..external_secrets)
            .map(|i| format!("secret-{i:05}"))
            .collect();
        self.add_bulk_external_secrets(&names);
        for pod in pods::bulk_pods(self, pod_count) {
            self.store_pod(pod);
        }
    }

    /// ExternalSecrets `bulk/<name>` for `names`, copies of `production/payments-db` (and of
    /// its current status).
    fn add_bulk_external_secrets(&mut self, names: &[String]) {
        let es = self
            .custom
            .get(&Crd::ExternalSecret)
            .and_then(|m| m.get(&key("production", "payments-db")))
            .cloned()
            .unwrap_or_default();
        for name in names {
            let mut o = es.clone();
            let rv = self.next_rv();
            o["metadata"]["name"] = json!(name);
            o["metadata"]["namespace"] = json!(BULK_NAMESPACE);
            o["metadata"]["uid"] = json!(stable_uid("ExternalSecret", BULK_NAMESPACE, name));
            o["metadata"]["resourceVersion"] = json!(rv.to_string());
            self.custom
                .entry(Crd::ExternalSecret)
                .or_default()
                .insert(key(BULK_NAMESPACE, name), o);
        }
    }

    /// Stores a pod under its namespace and name with a new resourceVersion.
    fn store_pod(&mut self, mut pod: Value) {
        let rv = self.next_rv();
        pod["metadata"]["resourceVersion"] = json!(rv.to_string());
        let k = key(
            pod["metadata"]["namespace"].as_str().unwrap_or_default(),
            pod["metadata"]["name"].as_str().unwrap_or_default(),
        );
        self.pods.insert(k, pod);
    }

    /// `template` (a StatefulSet or DaemonSet) as `bulk/name`, naming a Vault role or none.
    fn add_copy(&mut self, kind: Workload, template: &Value, name: &str, vault: bool) {
        let mut o = template.clone();
        let rv = self.next_rv();
        o["metadata"]["name"] = json!(name);
        o["metadata"]["namespace"] = json!(BULK_NAMESPACE);
        o["metadata"]["uid"] = json!(stable_uid(kind.kind(), BULK_NAMESPACE, name));
        o["metadata"]["resourceVersion"] = json!(rv.to_string());
        if !vault {
            o["spec"]["template"]["metadata"]["annotations"] = json!({});
        }
        self.objects_mut(kind).insert(key(BULK_NAMESPACE, name), o);
    }

    /// (Re)builds the operators' custom resources ([`consumers::objects`]) and the lab's pods
    /// ([`pods::lab_pods`]) for the triaged `mount` and how its logins fail, as of `now`; each
    /// gets a new resourceVersion. The bulk objects stay (the bulk ExternalSecrets take the
    /// new status of the one they copy). Rebuilding a failing mount's world as healthy keeps
    /// its timeline: the same pods, their init containers finished at `now`.
    pub fn set_vault_operators(
        &mut self,
        mount: &str,
        failure: Option<LoginFailure>,
        now: chrono::DateTime<chrono::Utc>,
    ) {
        let healing =
            failure.is_none() && self.logins.failure.is_some() && self.logins.mount == mount;
        let epoch = if healing { self.logins.epoch } else { now };
        self.logins = LoginState {
            mount: mount.to_string(),
            failure,
            epoch,
        };
        let bulk_es: Vec<String> = self
            .custom
            .get(&Crd::ExternalSecret)
            .into_iter()
            .flat_map(|m| m.keys())
            .filter(|(ns, _)| ns == BULK_NAMESPACE)
            .map(|(_, name)| name.clone())
            .collect();
        self.custom = Crd::ALL.into_iter().map(|c| (c, BTreeMap::new())).collect();
        for (crd, mut obj) in consumers::objects(mount, failure, now) {
            let rv = self.next_rv();
            obj["metadata"]["resourceVersion"] = json!(rv.to_string());
            let k = key(
                obj["metadata"]["namespace"].as_str().unwrap_or_default(),
                obj["metadata"]["name"].as_str().unwrap_or_default(),
            );
            self.custom.entry(crd).or_default().insert(k, obj);
        }
        self.add_bulk_external_secrets(&bulk_es);
        self.pods.retain(|(ns, _), _| ns == BULK_NAMESPACE);
        let clock = pods::Clock {
            epoch,
            healed: healing.then_some(now),
        };
        for pod in pods::lab_pods(self, failure, clock) {
            self.store_pod(pod);
        }
    }

    /// A login through `mount` just succeeded: when the world was built with that mount's
    /// logins failing, the operators retry by themselves (VSO requeues within 5–60 s, ESO
    /// backs off, the injector's init containers finish within one agent backoff step), so
    /// the world is rebuilt healthy as of `now`. Returns whether it was.
    pub fn logins_work_again(&mut self, mount: &str, now: chrono::DateTime<chrono::Utc>) -> bool {
        if self.logins.mount != mount || self.logins.failure.is_none() {
            return false;
        }
        self.set_vault_operators(mount, None, now);
        true
    }

    /// The Deployment `production/reports-web` (1 replica, no injector annotations): its pods
    /// mount the CSI `SecretProviderClass` `reports-vault` as the role's ServiceAccount.
    fn add_csi_deployment(&mut self) {
        self.add_deployment("production", CSI_DEPLOYMENT, false);
        let Some(d) = self.deployments.get_mut(&key("production", CSI_DEPLOYMENT)) else {
            return;
        };
        d["spec"]["replicas"] = json!(1);
        d["status"] = rolled_out_status(1, 1, CREATED);
        let pod = &mut d["spec"]["template"]["spec"];
        pod["serviceAccountName"] = json!(CSI_ROLE);
        pod["containers"][0]["volumeMounts"] =
            json!([{"name": "secrets", "mountPath": "/mnt/secrets-store", "readOnly": true}]);
        pod["volumes"] = json!([{
            "name": "secrets",
            "csi": {
                "driver": "secrets-store.csi.k8s.io",
                "readOnly": true,
                "volumeAttributes": {"secretProviderClass": CSI_CLASS}
            }
        }]);
    }

    /// The objects of one workload kind.
    pub fn objects(&self, kind: Workload) -> &BTreeMap<Key, Value> {
        match kind {
            Workload::Deployment => &self.deployments,
            Workload::StatefulSet => &self.statefulsets,
            Workload::DaemonSet => &self.daemonsets,
            Workload::CronJob => &self.cronjobs,
        }
    }

    pub fn objects_mut(&mut self, kind: Workload) -> &mut BTreeMap<Key, Value> {
        match kind {
            Workload::Deployment => &mut self.deployments,
            Workload::StatefulSet => &mut self.statefulsets,
            Workload::DaemonSet => &mut self.daemonsets,
            Workload::CronJob => &mut self.cronjobs,
        }
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

    /// The injected workloads that are not Deployments, in `production`, each on the role
    /// (and ServiceAccount) of one of the injected Deployments:
    /// - StatefulSet `ledger-db` (RollingUpdate, partition 0, 2 replicas), role `ledger-sync`
    ///   given only as `vault.hashicorp.com/auth-config-role`;
    /// - DaemonSet `log-shipper` (RollingUpdate, 3 nodes), role `notifications`;
    /// - StatefulSet `legacy-cache` (OnDelete, 2 replicas), role `orders-api`;
    /// - CronJob `nightly-report` (batch/v1), role `billing-worker`.
    fn add_other_vault_consumers(&mut self) {
        let ns = "production";
        let inject = |role_key: &str, role: &str| {
            json!({
                "vault.hashicorp.com/agent-inject": "true",
                role_key: role,
            })
        };
        self.add_statefulset(
            ns,
            "ledger-db",
            "ledger-sync",
            inject("vault.hashicorp.com/auth-config-role", "ledger-sync"),
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
        );
        self.add_statefulset(
            ns,
            "legacy-cache",
            "orders-api",
            inject("vault.hashicorp.com/role", "orders-api"),
            json!({"type": "OnDelete"}),
        );
        self.add_daemonset(
            ns,
            "log-shipper",
            "notifications",
            inject("vault.hashicorp.com/role", "notifications"),
        );
        self.add_cronjob(
            ns,
            "nightly-report",
            "billing-worker",
            inject("vault.hashicorp.com/role", "billing-worker"),
        );
    }

    fn metadata(&mut self, kind: Workload, ns: &str, name: &str) -> Value {
        let rv = self.next_rv();
        json!({
            "name": name, "namespace": ns,
            "uid": stable_uid(kind.kind(), ns, name),
            "generation": 1, "resourceVersion": rv.to_string(),
            "creationTimestamp": CREATED,
            "labels": {"app": name}
        })
    }

    fn add_statefulset(
        &mut self,
        ns: &str,
        name: &str,
        sa: &str,
        annotations: Value,
        update_strategy: Value,
    ) {
        let kind = Workload::StatefulSet;
        let template = json!({
            "metadata": {"labels": {"app": name}, "annotations": annotations},
            "spec": {
                "serviceAccountName": sa,
                "containers": [{
                    "name": name,
                    "image": format!("registry.example.com/{name}:3.2.0"),
                    "volumeMounts": [{"name": "data", "mountPath": "/var/lib/data"}]
                }]
            }
        });
        let revision = revision_name(name, &template);
        let sts = json!({
            "kind": kind.kind(), "apiVersion": kind.api_version(),
            "metadata": self.metadata(kind, ns, name),
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": name}},
                "template": template,
                "volumeClaimTemplates": [{
                    "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "10Gi"}},
                        "volumeMode": "Filesystem"
                    },
                    "status": {"phase": "Pending"}
                }],
                "serviceName": name,
                "podManagementPolicy": "OrderedReady",
                "updateStrategy": update_strategy,
                "revisionHistoryLimit": 10,
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"}
            },
            "status": statefulset_status(1, 2, 2, 2, 2, &revision, &revision)
        });
        self.statefulsets.insert(key(ns, name), sts);
    }

    fn add_daemonset(&mut self, ns: &str, name: &str, sa: &str, annotations: Value) {
        let kind = Workload::DaemonSet;
        let ds = json!({
            "kind": kind.kind(), "apiVersion": kind.api_version(),
            "metadata": self.metadata(kind, ns, name),
            "spec": {
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}, "annotations": annotations},
                    "spec": {
                        "serviceAccountName": sa,
                        "containers": [{"name": name, "image": format!("registry.example.com/{name}:2.4.1")}]
                    }
                },
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
                "revisionHistoryLimit": 10
            },
            "status": daemonset_status(1, DAEMONSET_NODES, DAEMONSET_NODES)
        });
        self.daemonsets.insert(key(ns, name), ds);
    }

    fn add_cronjob(&mut self, ns: &str, name: &str, sa: &str, annotations: Value) {
        let kind = Workload::CronJob;
        let cj = json!({
            "kind": kind.kind(), "apiVersion": kind.api_version(),
            "metadata": self.metadata(kind, ns, name),
            "spec": {
                "schedule": "0 2 * * *",
                "concurrencyPolicy": "Forbid",
                "suspend": false,
                "jobTemplate": {
                    "metadata": {"creationTimestamp": null},
                    "spec": {
                        "backoffLimit": 6,
                        "completionMode": "NonIndexed",
                        "suspend": false,
                        "template": {
                            "metadata": {"creationTimestamp": null, "labels": {"app": name}, "annotations": annotations},
                            "spec": {
                                "serviceAccountName": sa,
                                "restartPolicy": "OnFailure",
                                "containers": [{"name": name, "image": format!("registry.example.com/{name}:1.3.0")}]
                            }
                        }
                    }
                },
                "successfulJobsHistoryLimit": 3,
                "failedJobsHistoryLimit": 1
            },
            "status": {
                "lastScheduleTime": "2026-01-12T02:00:00Z",
                "lastSuccessfulTime": "2026-01-12T02:01:37Z"
            }
        });
        self.cronjobs.insert(key(ns, name), cj);
    }

    /// May `user` do `verb` on `resource` (with subresource, e.g. `serviceaccounts/token`)?
    pub fn allowed(&self, user: &str, verb: &str, group: &str, resource: &str) -> bool {
        if self.admins.contains(user) {
            return true;
        }
        if user == "system:anonymous" {
            // kubectl sends no credentials over plain HTTP: so that `kubectl get deployments
            // -A` and `kubectl rollout status` work against the lab, anyone may look at its
            // workloads, their pods, namespaces and the operators' custom resources (`kubectl
            // get externalsecrets -A`). Nothing else, and nothing the bot relies on.
            return matches!(
                (verb, group, resource),
                (
                    "get" | "list" | "watch",
                    "apps",
                    "deployments" | "statefulsets" | "daemonsets"
                ) | ("get" | "list" | "watch", "batch", "cronjobs")
                    | ("get" | "list", "", "namespaces" | "pods")
            ) || (matches!(verb, "get" | "list" | "watch")
                && Crd::ALL
                    .iter()
                    .any(|c| c.group() == group && c.resource() == resource));
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

/// Nodes the lab's DaemonSets run on.
pub(crate) const DAEMONSET_NODES: i64 = 3;

/// The StatefulSet controller's revision name for a pod template: `<name>-<hash>`, the hash
/// written with the apimachinery `SafeEncodeString` alphabet (as `controller-revision-hash`).
pub(crate) fn revision_name(name: &str, template: &Value) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let d = sha2::Sha256::digest(template.to_string().as_bytes());
    let hash = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
    let encoded: String = hash
        .to_string()
        .bytes()
        .map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char)
        .collect();
    format!("{name}-{encoded}")
}

/// Inserts `v` under `k` unless it is 0: the fields Kubernetes declares `omitempty`.
fn put_nonzero(status: &mut Value, k: &str, v: i64) {
    if v != 0 {
        status[k] = json!(v);
    }
}

/// A StatefulSet status as the API server writes it (`omitempty` counters left out at 0).
pub(crate) fn statefulset_status(
    generation: i64,
    replicas: i64,
    ready: i64,
    current: i64,
    updated: i64,
    current_revision: &str,
    update_revision: &str,
) -> Value {
    let mut s = json!({"observedGeneration": generation, "replicas": replicas});
    put_nonzero(&mut s, "readyReplicas", ready);
    put_nonzero(&mut s, "currentReplicas", current);
    put_nonzero(&mut s, "updatedReplicas", updated);
    s["currentRevision"] = json!(current_revision);
    s["updateRevision"] = json!(update_revision);
    s["collisionCount"] = json!(0);
    s["availableReplicas"] = json!(ready);
    s
}

/// A DaemonSet status on [`DAEMONSET_NODES`] nodes (`omitempty` counters left out at 0).
pub(crate) fn daemonset_status(generation: i64, updated: i64, available: i64) -> Value {
    let mut s = json!({
        "currentNumberScheduled": DAEMONSET_NODES,
        "numberMisscheduled": 0,
        "desiredNumberScheduled": DAEMONSET_NODES,
        "numberReady": available,
        "observedGeneration": generation,
    });
    put_nonzero(&mut s, "updatedNumberScheduled", updated);
    put_nonzero(&mut s, "numberAvailable", available);
    put_nonzero(&mut s, "numberUnavailable", DAEMONSET_NODES - available);
    s
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
        // The five injected apps, frontend, redis, and the CSI consumer reports-web.
        assert_eq!(w.deployments.len(), 8);
        assert_eq!(
            w.statefulsets.len() + w.daemonsets.len() + w.cronjobs.len(),
            4
        );
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

    #[test]
    fn world_has_the_vault_operators_objects_and_a_csi_deployment() {
        let w = KubeWorld::new();
        let count = |c: Crd| w.custom[&c].len();
        assert_eq!(w.custom.len(), Crd::ALL.len(), "every kind served");
        for (crd, n) in [
            (Crd::SecretStore, 0),
            (Crd::ClusterSecretStore, 1),
            (Crd::ExternalSecret, 1),
            (Crd::VaultConnection, 1),
            (Crd::VaultAuth, 1),
            (Crd::VaultStaticSecret, 1),
            (Crd::VaultDynamicSecret, 1),
            (Crd::VaultPkiSecret, 0),
            (Crd::SecretProviderClass, 1),
        ] {
            assert_eq!(count(crd), n, "{crd:?}");
        }
        let css = &w.custom[&Crd::ClusterSecretStore][&key("", "vault-backend")];
        assert!(css["metadata"].get("namespace").is_none());
        assert_eq!(
            css["metadata"]["uid"],
            stable_uid("ClusterSecretStore", "", "vault-backend")
        );
        let k8s = &css["spec"]["provider"]["vault"]["auth"]["kubernetes"];
        assert_eq!(k8s["mountPath"], AUTH_MOUNT);
        // Every role the operators use exists with its ServiceAccount.
        let vss_auth = &w.custom[&Crd::VaultAuth][&key("production", "default")]["spec"];
        let spc = &w.custom[&Crd::SecretProviderClass][&key("production", CSI_CLASS)]["spec"];
        for role in [
            k8s["role"].as_str().unwrap(),
            vss_auth["kubernetes"]["role"].as_str().unwrap(),
            spc["parameters"]["roleName"].as_str().unwrap(),
        ] {
            assert!(APPS.contains(&role), "{role}");
            assert!(w.sa_uid("production", role).is_some(), "{role}");
        }
        assert_eq!(vss_auth["mount"], AUTH_MOUNT);
        assert_eq!(spc["parameters"]["vaultKubernetesMountPath"], AUTH_MOUNT);
        // Unique resourceVersions, statuses of working logins.
        let rvs: HashSet<&str> = w
            .custom
            .values()
            .flat_map(|m| m.values())
            .map(|o| o["metadata"]["resourceVersion"].as_str().unwrap())
            .collect();
        assert_eq!(rvs.len(), 7);
        assert_eq!(css["status"]["conditions"][0]["status"], "True");

        // A fleet's mount and a failure rebuild them.
        let mut f = KubeWorld::new();
        f.set_vault_operators(
            "kubernetes-b",
            Some(LoginFailure::Sealed),
            chrono::Utc::now(),
        );
        let vss = &f.custom[&Crd::VaultStaticSecret][&key("production", "orders-config")];
        let msg = vss["status"]["conditions"][0]["message"].as_str().unwrap();
        assert!(
            msg.contains("/v1/auth/kubernetes-b/login Code: 503. Errors: * Vault is sealed"),
            "{msg}"
        );
        assert_eq!(
            f.custom[&Crd::VaultAuth][&key("production", "default")]["spec"]["mount"],
            "kubernetes-b"
        );

        // reports-web: one replica, rolled out, no injector, the class mounted by CSI.
        let d = &w.deployments[&key("production", CSI_DEPLOYMENT)];
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["status"], rolled_out_status(1, 1, CREATED));
        let template = &d["spec"]["template"];
        assert_eq!(template["metadata"]["annotations"], json!({}));
        assert_eq!(template["spec"]["serviceAccountName"], CSI_ROLE);
        assert_eq!(
            template["spec"]["volumes"][0],
            json!({"name": "secrets", "csi": {"driver": "secrets-store.csi.k8s.io", "readOnly": true,
                "volumeAttributes": {"secretProviderClass": "reports-vault"}}})
        );
        let typed: k8s_openapi::api::apps::v1::Deployment =
            serde_json::from_value(d.clone()).expect("a Deployment");
        let pod = typed.spec.template.spec.expect("pod spec");
        assert_eq!(
            pod.volumes.unwrap()[0].csi.as_ref().unwrap().driver,
            "secrets-store.csi.k8s.io"
        );

        // RBAC: kubectl reads them, patches nothing; the bot does both; others nothing.
        let bot = sa_username(BOT_NAMESPACE, BOT_SA);
        for crd in Crd::ALL {
            let (g, r) = (crd.group(), crd.resource());
            assert!(w.allowed("system:anonymous", "list", g, r), "{crd:?}");
            assert!(w.allowed("system:anonymous", "get", g, r), "{crd:?}");
            assert!(!w.allowed("system:anonymous", "patch", g, r), "{crd:?}");
            assert!(w.allowed(&bot, "list", g, r) && w.allowed(&bot, "patch", g, r));
            assert!(!w.allowed(&sa_username("vault", "vault-auth"), "list", g, r));
        }
        assert!(!w.allowed(
            "system:anonymous",
            "list",
            "external-secrets.io",
            "pushsecrets"
        ));
    }

    /// The role an injected pod template logs in with (`role` or `auth-config-role`).
    fn role_of(template: &Value) -> Option<&str> {
        let a = &template["metadata"]["annotations"];
        a["vault.hashicorp.com/role"]
            .as_str()
            .or_else(|| a["vault.hashicorp.com/auth-config-role"].as_str())
    }

    #[test]
    fn world_has_statefulsets_daemonsets_and_cronjobs_that_use_vault() {
        let w = KubeWorld::new();
        assert_eq!(w.statefulsets.len(), 2);
        assert_eq!(w.daemonsets.len(), 1);
        assert_eq!(w.cronjobs.len(), 1);
        let deployment_roles: HashSet<&str> = w
            .deployments
            .values()
            .filter_map(|d| role_of(&d["spec"]["template"]))
            .collect();
        let mut rvs = HashSet::new();
        for kind in [
            Workload::StatefulSet,
            Workload::DaemonSet,
            Workload::CronJob,
        ] {
            for ((ns, name), o) in w.objects(kind) {
                assert_eq!(ns, "production");
                assert_eq!(o["kind"], kind.kind());
                assert_eq!(o["apiVersion"], kind.api_version());
                let m = &o["metadata"];
                assert_eq!(m["name"], name.as_str());
                assert_eq!(m["namespace"], "production");
                assert_eq!(m["uid"], stable_uid(kind.kind(), ns, name));
                assert_eq!(m["generation"], 1);
                assert_eq!(m["creationTimestamp"], CREATED);
                assert!(rvs.insert(m["resourceVersion"].as_str().unwrap().to_string()));
                let template = match kind {
                    Workload::CronJob => &o["spec"]["jobTemplate"]["spec"]["template"],
                    _ => &o["spec"]["template"],
                };
                let role = role_of(template).expect("a role");
                assert!(deployment_roles.contains(role), "{name}: {role}");
                assert_eq!(
                    template["metadata"]["annotations"]["vault.hashicorp.com/agent-inject"],
                    "true"
                );
                assert_eq!(template["spec"]["serviceAccountName"], role);
                assert!(w.sa_uid(ns, role).is_some());
            }
        }
        let roles: Vec<&str> = [
            &w.statefulsets[&key("production", "ledger-db")]["spec"]["template"],
            &w.daemonsets[&key("production", "log-shipper")]["spec"]["template"],
            &w.statefulsets[&key("production", "legacy-cache")]["spec"]["template"],
            &w.cronjobs[&key("production", "nightly-report")]["spec"]["jobTemplate"]["spec"]
                ["template"],
        ]
        .into_iter()
        .map(|t| role_of(t).unwrap())
        .collect();
        assert_eq!(
            roles,
            [
                "ledger-sync",
                "notifications",
                "orders-api",
                "billing-worker"
            ]
        );

        let db = &w.statefulsets[&key("production", "ledger-db")];
        let ann = &db["spec"]["template"]["metadata"]["annotations"];
        assert!(
            ann.get("vault.hashicorp.com/role").is_none(),
            "found only via auth-config-role"
        );
        assert_eq!(ann["vault.hashicorp.com/auth-config-role"], "ledger-sync");
        assert_eq!(
            db["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        );
        let st = &db["status"];
        assert_eq!(st["observedGeneration"], db["metadata"]["generation"]);
        for k in [
            "replicas",
            "readyReplicas",
            "currentReplicas",
            "updatedReplicas",
        ] {
            assert_eq!(st[k], 2, "{k}");
        }
        assert_eq!(st["currentRevision"], st["updateRevision"]);
        assert_eq!(
            st["updateRevision"],
            revision_name("ledger-db", &db["spec"]["template"])
        );
        assert!(
            st["updateRevision"]
                .as_str()
                .unwrap()
                .starts_with("ledger-db-"),
            "{st}"
        );

        let cache = &w.statefulsets[&key("production", "legacy-cache")];
        assert_eq!(cache["spec"]["updateStrategy"], json!({"type": "OnDelete"}));
        assert_eq!(cache["status"]["updatedReplicas"], 2);
        assert_eq!(
            cache["status"]["currentRevision"],
            cache["status"]["updateRevision"]
        );

        let ds = &w.daemonsets[&key("production", "log-shipper")];
        assert_eq!(ds["spec"]["updateStrategy"]["type"], "RollingUpdate");
        for k in [
            "desiredNumberScheduled",
            "currentNumberScheduled",
            "updatedNumberScheduled",
            "numberAvailable",
            "numberReady",
        ] {
            assert_eq!(ds["status"][k], 3, "{k}");
        }
        assert!(ds["status"].get("numberUnavailable").is_none());
        assert_eq!(ds["status"]["observedGeneration"], 1);

        let cj = &w.cronjobs[&key("production", "nightly-report")];
        assert_eq!(cj["spec"]["schedule"], "0 2 * * *");
        assert_eq!(
            cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"],
            "OnFailure"
        );

        // The typed clients read them as Kubernetes serves them.
        use k8s_openapi::api::{apps::v1 as apps, batch::v1 as batch};
        let typed: apps::StatefulSet = serde_json::from_value(db.clone()).expect("sts");
        let spec = typed.spec;
        assert_eq!(spec.service_name.as_deref(), Some("ledger-db"));
        let strategy = spec.update_strategy.expect("strategy");
        assert_eq!(strategy.rolling_update.and_then(|r| r.partition), Some(0));
        let status = typed.status.expect("status");
        assert_eq!(status.updated_replicas, Some(2));
        assert_eq!(status.current_revision, status.update_revision);
        let typed: apps::DaemonSet = serde_json::from_value(ds.clone()).expect("ds");
        assert_eq!(typed.status.expect("status").number_available, Some(3));
        let typed: batch::CronJob = serde_json::from_value(cj.clone()).expect("cj");
        let pod = typed.spec.job_template.spec.expect("job").template;
        assert_eq!(
            pod.spec.expect("pod").service_account_name.as_deref(),
            Some("billing-worker")
        );

        // RBAC: the bot reads, watches and patches them; kubectl (anonymous) only reads.
        let bot = sa_username(BOT_NAMESPACE, BOT_SA);
        for verb in ["get", "list", "watch", "patch"] {
            for r in ["statefulsets", "daemonsets"] {
                assert!(w.allowed(&bot, verb, "apps", r), "{verb} {r}");
            }
        }
        assert!(w.allowed(&bot, "list", "batch", "cronjobs"));
        assert!(w.allowed(&bot, "get", "batch", "cronjobs"));
        for r in ["statefulsets", "daemonsets"] {
            assert!(w.allowed("system:anonymous", "list", "apps", r));
            assert!(w.allowed("system:anonymous", "watch", "apps", r));
            assert!(!w.allowed("system:anonymous", "patch", "apps", r));
        }
        assert!(w.allowed("system:anonymous", "list", "batch", "cronjobs"));
        let reviewer = sa_username("vault", "vault-auth");
        assert!(!w.allowed(&reviewer, "list", "apps", "statefulsets"));
        assert!(!w.allowed(&reviewer, "patch", "apps", "daemonsets"));

        assert_eq!(
            Workload::from_resource("apps", "statefulsets"),
            Some(Workload::StatefulSet)
        );
        assert_eq!(
            Workload::from_resource("batch", "cronjobs"),
            Some(Workload::CronJob)
        );
        assert_eq!(Workload::from_resource("apps", "cronjobs"), None);
    }

    #[test]
    fn healing_rebuilds_the_operators_and_pods_and_keeps_the_bulk_objects() {
        let phase_count = |w: &KubeWorld, phase: &str| {
            w.pods
                .values()
                .filter(|p| p["status"]["phase"] == phase)
                .count()
        };
        let ready = |o: &Value| o["status"]["conditions"][0]["status"].clone();
        let t0 = chrono::Utc::now();
        let mut w = KubeWorld::new();
        w.set_vault_operators(AUTH_MOUNT, Some(LoginFailure::Denied), t0);
        w.add_bulk(12, 5, 20);
        let es = |w: &KubeWorld| w.custom[&Crd::ExternalSecret].clone();
        let bulk_es = |w: &KubeWorld| {
            es(w)
                .into_iter()
                .filter(|((ns, _), _)| ns == BULK_NAMESPACE)
                .collect::<Vec<_>>()
        };
        assert_eq!(phase_count(&w, "Pending"), 3);
        assert_eq!(bulk_es(&w).len(), 5);
        assert!(bulk_es(&w).iter().all(|(_, o)| ready(o) == "False"));
        let (pods_before, custom_before) = (w.pods.clone(), w.custom.clone());

        // A login through another mount changes nothing.
        let t1 = t0 + chrono::Duration::minutes(2);
        assert!(!w.logins_work_again("kubernetes-b", t1));
        assert_eq!((&w.pods, &w.custom), (&pods_before, &custom_before));

        assert!(w.logins_work_again(AUTH_MOUNT, t1));
        assert_eq!(w.logins.failure, None);
        assert_eq!(w.logins.epoch, t0, "the same timeline");
        assert_eq!(phase_count(&w, "Pending"), 0);
        assert_eq!(phase_count(&w, "Running"), w.pods.len());
        // The same pods (the stuck ones finished their init container just now); the bulk
        // ones untouched.
        assert_eq!(
            w.pods.keys().collect::<Vec<_>>(),
            pods_before.keys().collect::<Vec<_>>()
        );
        for (k, p) in &w.pods {
            let before = &pods_before[k];
            assert_eq!(p["metadata"]["uid"], before["metadata"]["uid"]);
            assert_eq!(
                p["metadata"]["creationTimestamp"],
                before["metadata"]["creationTimestamp"]
            );
            if k.0 == BULK_NAMESPACE {
                assert_eq!(p, before);
            } else if before["status"]["phase"] == "Pending" {
                let done = &p["status"]["initContainerStatuses"][0]["state"]["terminated"];
                assert_eq!(
                    done["finishedAt"],
                    t1.format("%Y-%m-%dT%H:%M:%SZ").to_string()
                );
                assert_eq!(done["reason"], "Completed");
            }
        }
        assert_eq!(
            w.pods.keys().filter(|(ns, _)| ns == BULK_NAMESPACE).count(),
            20
        );
        assert_eq!(bulk_es(&w).len(), 5);
        assert!(bulk_es(&w).iter().all(|(_, o)| ready(o) == "True"));
        assert_eq!(ready(&es(&w)[&key("production", "payments-db")]), "True");
        assert_eq!(
            ready(&w.custom[&Crd::ClusterSecretStore][&key("", "vault-backend")]),
            "True"
        );
        assert_eq!(
            w.deployments
                .keys()
                .filter(|(ns, _)| ns == BULK_NAMESPACE)
                .count(),
            8
        );
        // Healthy already: nothing more to heal.
        assert!(!w.logins_work_again(AUTH_MOUNT, t1));
    }
}
