//! The agent injector's pods (facts/vault-consumers.md §1 and its table of consumers): the
//! pods the webhook mutated (`agent-inject-status: injected`) that log in through the mount,
//! followed through their owner references to the workload that made them, and the ones
//! stuck in the agent's init container, named as `kubectl get pods` names them. Pure.
//!
//! Owners: a ReplicaSet with the pod's `pod-template-hash` suffix is a Deployment's (with
//! `rollouts-pod-template-hash`, an Argo Rollout's); a Job named `<cronjob>-<digits>` of a
//! CronJob the bot found is that CronJob's; StatefulSets and DaemonSets own their pods
//! directly; a pod without a controller is its own workload.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ContainerState, Pod};

use super::injector::{PREFIXES, role_for_mount};
use super::lists::PodMeta;
use crate::evidence::{PodEvidence, StuckPod, Via, Workload, WorkloadKind};

/// The agent's init container: HashiCorp's injector, then OpenBao's.
pub const INIT_CONTAINERS: [&str; 2] = ["vault-agent-init", "openbao-agent-init"];

/// The role a pod logs in with through `mount`, when the injector mutated it.
pub fn injected_role(meta: &PodMeta, role_annotation: &str, mount: &str) -> Option<String> {
    let annotations = &meta.annotations;
    let injected = PREFIXES.iter().any(|p| {
        annotations
            .get(&format!("{p}agent-inject-status"))
            .is_some_and(|v| v == "injected")
    });
    if !injected {
        return None;
    }
    role_for_mount(annotations, role_annotation, mount)
}

/// The workload a pod belongs to (kind and name), from its controller reference and the
/// labels its controller sets.
pub fn owner_of(meta: &PodMeta) -> (WorkloadKind, String) {
    let pod = meta.name.clone();
    let refs = &meta.owner_references;
    let Some(owner) = refs
        .iter()
        .find(|r| r.controller == Some(true))
        .or(refs.first())
    else {
        return (WorkloadKind::Pod, pod);
    };
    let label = |k: &str| meta.labels.get(k);
    let without_hash = |hash_label: &str| {
        label(hash_label).and_then(|h| owner.name.strip_suffix(&format!("-{h}")))
    };
    match owner.kind.as_str() {
        "ReplicaSet" => {
            if let Some(d) = without_hash("pod-template-hash") {
                (WorkloadKind::Deployment, d.to_string())
            } else if let Some(r) = without_hash("rollouts-pod-template-hash") {
                (WorkloadKind::Rollout, r.to_string())
            } else {
                (WorkloadKind::ReplicaSet, owner.name.clone())
            }
        }
        "StatefulSet" => (WorkloadKind::StatefulSet, owner.name.clone()),
        "DaemonSet" => (WorkloadKind::DaemonSet, owner.name.clone()),
        "Job" => (WorkloadKind::Job, owner.name.clone()),
        "Rollout" => (WorkloadKind::Rollout, owner.name.clone()),
        _ => (WorkloadKind::Pod, pod),
    }
}

/// kubectl's STATUS column for a pod still initialising (kubectl's `printPod`): the first init
/// container that did not finish well decides. `None` once every init container succeeded.
/// Returns the status and that container's index.
fn init_status(pod: &Pod) -> Option<(String, usize)> {
    let statuses = pod.status.as_ref()?.init_container_statuses.as_ref()?;
    let total = pod
        .spec
        .as_ref()
        .and_then(|s| s.init_containers.as_ref())
        .map_or(statuses.len(), Vec::len);
    for (i, c) in statuses.iter().enumerate() {
        let state = c.state.clone().unwrap_or_default();
        let status = match state {
            ContainerState {
                terminated: Some(t),
                ..
            } if t.exit_code == 0 => continue,
            ContainerState {
                terminated: Some(t),
                ..
            } => match t.reason.filter(|r| !r.is_empty()) {
                Some(r) => format!("Init:{r}"),
                None if t.signal.unwrap_or(0) != 0 => {
                    format!("Init:Signal:{}", t.signal.unwrap_or(0))
                }
                None => format!("Init:ExitCode:{}", t.exit_code),
            },
            ContainerState {
                waiting: Some(w), ..
            } if w
                .reason
                .as_deref()
                .is_some_and(|r| !r.is_empty() && r != "PodInitializing") =>
            {
                format!("Init:{}", w.reason.unwrap_or_default())
            }
            _ => format!("Init:{i}/{total}"),
        };
        return Some((status, i));
    }
    None
}

/// The pod as a [`StuckPod`] when it logs in through `mount` and waits on the agent's init
/// container.
pub fn stuck_pod(pod: &Pod, role_annotation: &str, mount: &str) -> Option<StuckPod> {
    let meta = PodMeta::from(&pod.metadata);
    injected_role(&meta, role_annotation, mount)?;
    let (status, index) = init_status(pod)?;
    let container = pod.status.as_ref()?.init_container_statuses.as_ref()?[index].clone();
    if !INIT_CONTAINERS.contains(&container.name.as_str()) {
        return None;
    }
    let started = container
        .state
        .as_ref()
        .and_then(|s| s.running.as_ref())
        .and_then(|r| r.started_at.as_ref())
        .or(pod.status.as_ref()?.start_time.as_ref())
        .and_then(|t| chrono::DateTime::from_timestamp(t.0.as_second(), 0));
    let (owner_kind, owner) = owner_of(&meta);
    Some(StuckPod {
        namespace: meta.namespace,
        name: meta.name,
        owner_kind,
        owner,
        status,
        container: container.name,
        since: started,
    })
}

/// The pods' evidence: `metadata` is every pod's metadata, `pending` the Pending pods in
/// full (the only ones that can be stuck in an init container).
pub fn evidence(
    metadata: &[PodMeta],
    pending: &[Pod],
    role_annotation: &str,
    mount: &str,
) -> PodEvidence {
    let mut injected = 0;
    let mut owners: BTreeMap<(WorkloadKind, String, String), Workload> = BTreeMap::new();
    for meta in metadata {
        let Some(role) = injected_role(meta, role_annotation, mount) else {
            continue;
        };
        injected += 1;
        let (kind, name) = owner_of(meta);
        let namespace = meta.namespace.clone();
        owners
            .entry((kind, namespace.clone(), name.clone()))
            .or_insert_with(|| Workload {
                namespace,
                name,
                kind,
                role,
                via: Via::Injector,
                ..Workload::default()
            })
            .replicas += 1;
    }
    let mut stuck: Vec<StuckPod> = pending
        .iter()
        .filter_map(|p| stuck_pod(p, role_annotation, mount))
        .collect();
    // The longest stuck first: the example a summary names.
    stuck.sort_by(|a, b| {
        (a.since.is_none(), a.since, &a.namespace, &a.name).cmp(&(
            b.since.is_none(),
            b.since,
            &b.namespace,
            &b.name,
        ))
    });
    PodEvidence {
        injected,
        owners: owners.into_values().collect(),
        stuck,
    }
}

/// The workloads found through their pod templates, plus the owners found only through
/// their pods (a Job of a CronJob already found is that CronJob). The templates' entries are
/// kept as they are: they carry the uid, ServiceAccount and update strategy.
pub fn with_pod_owners(mut workloads: Vec<Workload>, owners: &[Workload]) -> Vec<Workload> {
    for owner in owners {
        let same = |w: &Workload, kind: WorkloadKind, name: &str| {
            w.kind == kind && w.namespace == owner.namespace && w.name == name
        };
        let known = workloads.iter().any(|w| same(w, owner.kind, &owner.name))
            || (owner.kind == WorkloadKind::Job
                && workloads
                    .iter()
                    .any(|w| same(w, WorkloadKind::CronJob, cronjob_of(&owner.name))));
        if !known {
            workloads.push(owner.clone());
        }
    }
    workloads.sort();
    workloads
}

/// The CronJob a Job's name points at: the CronJob controller names its Jobs
/// `<cronjob>-<scheduled time in minutes>`.
fn cronjob_of(job: &str) -> &str {
    match job.rsplit_once('-') {
        Some((cronjob, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => cronjob,
        _ => job,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ROLE: &str = "vault.hashicorp.com/role";

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    fn injected_meta(name: &str, owner: serde_json::Value, labels: serde_json::Value) -> PodMeta {
        serde_json::from_value(json!({
            "name": name, "namespace": "production",
            "annotations": {
                "vault.hashicorp.com/agent-inject": "true",
                "vault.hashicorp.com/agent-inject-status": "injected",
                "vault.hashicorp.com/role": "payments-api"
            },
            "labels": labels,
            "ownerReferences": owner,
        }))
        .unwrap()
    }

    fn owner(kind: &str, name: &str) -> serde_json::Value {
        json!([{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": "u", "controller": true}])
    }

    #[test]
    fn owners_follow_the_controller_reference_and_its_labels() {
        let cases = [
            (
                injected_meta(
                    "payments-api-7d9f8b6c5d-x2x9q",
                    owner("ReplicaSet", "payments-api-7d9f8b6c5d"),
                    json!({"pod-template-hash": "7d9f8b6c5d"}),
                ),
                (WorkloadKind::Deployment, "payments-api"),
            ),
            (
                injected_meta(
                    "canary-6c4f-abcde",
                    owner("ReplicaSet", "canary-6c4f"),
                    json!({"rollouts-pod-template-hash": "6c4f"}),
                ),
                (WorkloadKind::Rollout, "canary"),
            ),
            (
                injected_meta(
                    "orphan-rs-abcde",
                    owner("ReplicaSet", "orphan-rs"),
                    json!({}),
                ),
                (WorkloadKind::ReplicaSet, "orphan-rs"),
            ),
            (
                injected_meta("ledger-db-0", owner("StatefulSet", "ledger-db"), json!({})),
                (WorkloadKind::StatefulSet, "ledger-db"),
            ),
            (
                injected_meta(
                    "log-shipper-k2x8p",
                    owner("DaemonSet", "log-shipper"),
                    json!({}),
                ),
                (WorkloadKind::DaemonSet, "log-shipper"),
            ),
            (
                injected_meta("db-migrate-8xk2p", owner("Job", "db-migrate"), json!({})),
                (WorkloadKind::Job, "db-migrate"),
            ),
            (
                injected_meta("debug-shell", json!([]), json!({})),
                (WorkloadKind::Pod, "debug-shell"),
            ),
        ];
        for (meta, (kind, name)) in cases {
            assert_eq!(owner_of(&meta), (kind, name.to_string()), "{:?}", meta.name);
        }
    }

    #[test]
    fn only_injected_pods_on_the_mount_count() {
        let mut not_injected = injected_meta("a", json!([]), json!({}));
        not_injected
            .annotations
            .remove("vault.hashicorp.com/agent-inject-status");
        let mut other_mount = injected_meta("b", json!([]), json!({}));
        other_mount.annotations.insert(
            "vault.hashicorp.com/auth-path".into(),
            "auth/other-cluster".into(),
        );
        let mut openbao: PodMeta = serde_json::from_value(json!({
            "name": "c", "namespace": "production",
            "annotations": {"openbao.org/agent-inject-status": "injected", "openbao.org/role": "bao-app"}
        }))
        .unwrap();
        assert_eq!(injected_role(&not_injected, ROLE, "kubernetes"), None);
        assert_eq!(injected_role(&other_mount, ROLE, "kubernetes"), None);
        assert_eq!(
            injected_role(&openbao, ROLE, "kubernetes").as_deref(),
            Some("bao-app")
        );
        openbao
            .annotations
            .insert("openbao.org/agent-inject-status".into(), "update".into());
        assert_eq!(injected_role(&openbao, ROLE, "kubernetes"), None);
    }

    fn pending(name: &str, init: serde_json::Value, specs: usize) -> Pod {
        let containers: Vec<_> = (0..specs)
            .map(|i| json!({"name": format!("init-{i}")}))
            .collect();
        pod(json!({
            "metadata": {
                "name": name, "namespace": "production",
                "annotations": {
                    "vault.hashicorp.com/agent-inject-status": "injected",
                    "vault.hashicorp.com/role": "payments-api"
                },
                "labels": {"pod-template-hash": "7d9f8b6c5d"},
                "ownerReferences": owner("ReplicaSet", "payments-api-7d9f8b6c5d")
            },
            "spec": {"containers": [{"name": "app"}], "initContainers": containers},
            "status": {"phase": "Pending", "startTime": "2026-12-01T10:00:00Z",
                       "initContainerStatuses": init}
        }))
    }

    #[test]
    fn a_pod_waiting_on_the_agent_init_container_reads_like_kubectl() {
        let running = json!([{"name": "vault-agent-init", "ready": false, "restartCount": 0,
            "image": "hashicorp/vault:1.15.2", "imageID": "",
            "state": {"running": {"startedAt": "2026-12-01T10:00:05Z"}}}]);
        let p = stuck_pod(
            &pending("payments-api-7d9f8b6c5d-q8w2n", running, 1),
            ROLE,
            "kubernetes",
        )
        .unwrap();
        assert_eq!(p.status, "Init:0/1");
        assert_eq!(p.container, "vault-agent-init");
        assert_eq!(
            (p.owner_kind, p.owner.as_str()),
            (WorkloadKind::Deployment, "payments-api")
        );
        assert_eq!(p.since.unwrap().to_rfc3339(), "2026-12-01T10:00:05+00:00");

        // The agent after a finished migration container: Init:1/2.
        let second = json!([
            {"name": "migrate", "ready": true, "restartCount": 0, "image": "", "imageID": "",
             "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
            {"name": "vault-agent-init", "ready": false, "restartCount": 0, "image": "", "imageID": "",
             "state": {"running": {}}}
        ]);
        assert_eq!(
            stuck_pod(&pending("p", second, 2), ROLE, "kubernetes")
                .unwrap()
                .status,
            "Init:1/2"
        );

        // exit-on-err: the agent crashes and backs off.
        let crashing = json!([{"name": "vault-agent-init", "ready": false, "restartCount": 4,
            "image": "", "imageID": "",
            "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]);
        assert_eq!(
            stuck_pod(&pending("p", crashing, 1), ROLE, "kubernetes")
                .unwrap()
                .status,
            "Init:CrashLoopBackOff"
        );
    }

    #[test]
    fn a_pod_stuck_on_another_init_container_or_done_initialising_is_not_the_agents() {
        let other_first = json!([
            {"name": "wait-for-db", "ready": false, "restartCount": 0, "image": "", "imageID": "",
             "state": {"running": {}}},
            {"name": "vault-agent-init", "ready": false, "restartCount": 0, "image": "", "imageID": "",
             "state": {"waiting": {"reason": "PodInitializing"}}}
        ]);
        assert_eq!(
            stuck_pod(&pending("p", other_first, 2), ROLE, "kubernetes"),
            None
        );
        let done = json!([{"name": "vault-agent-init", "ready": true, "restartCount": 0,
            "image": "", "imageID": "",
            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]);
        assert_eq!(stuck_pod(&pending("p", done, 1), ROLE, "kubernetes"), None);
    }

    #[test]
    fn pod_owners_add_only_what_the_templates_did_not_find() {
        let w = |kind, name: &str| Workload {
            namespace: "production".into(),
            name: name.into(),
            kind,
            role: "payments-api".into(),
            service_account: "payments-api".into(),
            ..Workload::default()
        };
        let templates = vec![
            w(WorkloadKind::Deployment, "payments-api"),
            w(WorkloadKind::CronJob, "nightly-report"),
        ];
        let owners = vec![
            w(WorkloadKind::Deployment, "payments-api"),
            w(WorkloadKind::Job, "nightly-report-29410560"),
            w(WorkloadKind::Job, "db-migrate"),
        ];
        let all = with_pod_owners(templates, &owners);
        let names: Vec<(WorkloadKind, &str)> =
            all.iter().map(|w| (w.kind, w.name.as_str())).collect();
        assert_eq!(
            names,
            vec![
                (WorkloadKind::Job, "db-migrate"),
                (WorkloadKind::CronJob, "nightly-report"),
                (WorkloadKind::Deployment, "payments-api"),
            ]
        );
        // The template's entry (with its ServiceAccount) is the one kept.
        assert_eq!(all[2].service_account, "payments-api");
    }

    #[test]
    fn evidence_counts_injected_pods_per_owner_and_lists_the_stuck_ones() {
        let metas = vec![
            injected_meta(
                "payments-api-7d9f8b6c5d-a",
                owner("ReplicaSet", "payments-api-7d9f8b6c5d"),
                json!({"pod-template-hash": "7d9f8b6c5d"}),
            ),
            injected_meta(
                "payments-api-7d9f8b6c5d-b",
                owner("ReplicaSet", "payments-api-7d9f8b6c5d"),
                json!({"pod-template-hash": "7d9f8b6c5d"}),
            ),
            serde_json::from_value(json!({"name": "redis-0", "namespace": "default"})).unwrap(),
        ];
        let running = json!([{"name": "vault-agent-init", "ready": false, "restartCount": 0,
            "image": "", "imageID": "", "state": {"running": {}}}]);
        let e = evidence(
            &metas,
            &[pending("payments-api-7d9f8b6c5d-b", running, 1)],
            ROLE,
            "kubernetes",
        );
        assert_eq!(e.injected, 2);
        assert_eq!(e.owners.len(), 1);
        assert_eq!(e.owners[0].replicas, 2);
        assert_eq!(e.owners[0].service_account, "");
        assert_eq!(e.stuck.len(), 1);
        assert_eq!(e.stuck[0].name, "payments-api-7d9f8b6c5d-b");
    }
}
