//! Workload changes: the PATCH that `kubectl rollout restart` sends, simulated Deployment,
//! StatefulSet and DaemonSet controllers that walk the status through kubectl's rollout
//! stages, and the watch stream of every workload kind.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::Shared;
use super::wire::{json_response, status_response};
use super::world::{Workload, daemonset_status, revision_name, statefulset_status};

/// One change of a workload, as broadcast to watchers.
#[derive(Clone, Debug)]
pub(crate) struct WatchEvent {
    pub kind: Workload,
    pub namespace: String,
    pub name: String,
    pub rv: u64,
    pub object: Value,
}

/// One status transition of a rollout.
type Step = Box<dyn Fn(&mut Value, i64, &str) + Send>;

/// Duration of one controller tick (plus the lab's latency option).
const TICK: Duration = Duration::from_millis(100);

/// A JSON merge patch (RFC 7386) of `patch` into `target`.
pub(crate) fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else if v.is_object() {
                    let entry = t.entry(k.clone()).or_insert_with(|| json!({}));
                    if !entry.is_object() {
                        *entry = json!({});
                    }
                    merge(entry, v);
                } else {
                    t.insert(k.clone(), v.clone());
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Stores a new version of a workload (bumping resourceVersion) and tells the watchers.
fn store(shared: &Shared, kind: Workload, ns: &str, name: &str, mut obj: Value) -> Value {
    let event = {
        let mut world = shared.world();
        let rv = world.next_rv();
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        world
            .objects_mut(kind)
            .insert((ns.to_string(), name.to_string()), obj.clone());
        WatchEvent {
            kind,
            namespace: ns.into(),
            name: name.into(),
            rv,
            object: obj.clone(),
        }
    };
    let _ = shared.watch.send(event);
    obj
}

/// Applies a strategic-merge / merge patch (labels, annotations, spec) to a workload; when
/// the spec changed, bumps `metadata.generation` and starts the kind's controller (a CronJob
/// has none that reacts: its next Job simply uses the new template).
pub(crate) fn patch_workload(
    shared: &Arc<Shared>,
    kind: Workload,
    ns: &str,
    name: &str,
    patch: &Value,
) -> Response {
    let Some(current) = shared
        .world()
        .objects(kind)
        .get(&(ns.to_string(), name.to_string()))
        .cloned()
    else {
        let (resource, group) = (kind.resource(), kind.group());
        return status_response(
            404,
            "NotFound",
            &format!("{resource}.{group} {name:?} not found"),
            Some(json!({"name": name, "group": group, "kind": resource})),
        );
    };
    let mut next = current.clone();
    if let Some(meta) = patch.get("metadata") {
        for k in ["labels", "annotations"] {
            if let Some(v) = meta.get(k) {
                merge(&mut next["metadata"][k], v);
            }
        }
    }
    if let Some(spec) = patch.get("spec") {
        merge(&mut next["spec"], spec);
    }
    let spec_changed = next["spec"] != current["spec"];
    if spec_changed {
        let generation = current["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
        next["metadata"]["generation"] = json!(generation);
        let stored = store(shared, kind, ns, name, next);
        let shared = shared.clone();
        let (ns, name) = (ns.to_string(), name.to_string());
        match kind {
            Workload::Deployment => {
                tokio::spawn(async move { run_rollout(shared, ns, name, generation).await });
            }
            Workload::StatefulSet | Workload::DaemonSet => {
                let failing = shared
                    .world()
                    .failing_rollouts
                    .contains(&(ns.clone(), name.clone()));
                let steps = controller_steps(kind, &stored, failing);
                tokio::spawn(
                    async move { run_steps(shared, kind, ns, name, generation, steps).await },
                );
            }
            Workload::CronJob => {}
        }
        json_response(StatusCode::OK, &stored)
    } else if next != current {
        json_response(StatusCode::OK, &store(shared, kind, ns, name, next))
    } else {
        json_response(StatusCode::OK, &current)
    }
}

/// Walks the status through kubectl's rollout stages, one step per tick, for the Deployment's
/// `spec.replicas` (n): one surge pod, then all n updated, then the old pods gone. Stops when a
/// newer generation takes over.
async fn run_rollout(shared: Arc<Shared>, ns: String, name: String, generation: i64) {
    let key = (ns.clone(), name.clone());
    let (failing, n) = {
        let world = shared.world();
        let n = world
            .deployments
            .get(&key)
            .and_then(|d| d["spec"]["replicas"].as_i64())
            .unwrap_or(1)
            .max(1);
        (world.failing_rollouts.contains(&key), n)
    };
    let tick = TICK + shared.latency;
    let steps: Vec<Step> = if failing {
        vec![
            Box::new(move |s, g, at| stage(s, g, n + 1, 1, n, "ReplicaSetUpdated", "True", at)),
            Box::new(move |s, g, at| {
                stage(s, g, n + 1, 1, n, "ProgressDeadlineExceeded", "False", at)
            }),
        ]
    } else {
        vec![
            Box::new(move |s, g, at| stage(s, g, n + 1, 1, n, "ReplicaSetUpdated", "True", at)),
            Box::new(move |s, g, at| stage(s, g, n + 1, n, n, "ReplicaSetUpdated", "True", at)),
            Box::new(move |s, g, at| stage(s, g, n, n, n - 1, "ReplicaSetUpdated", "True", at)),
            Box::new(move |s, g, at| {
                *s = super::world::rolled_out_status(g, n, at);
            }),
        ]
    };
    for step in steps {
        tokio::time::sleep(tick).await;
        let Some(mut obj) = shared.world().deployments.get(&key).cloned() else {
            return;
        };
        if obj["metadata"]["generation"].as_i64() != Some(generation) {
            return;
        }
        step(&mut obj["status"], generation, &now_rfc3339());
        store(&shared, Workload::Deployment, &ns, &name, obj);
    }
}

/// The statuses the StatefulSet or DaemonSet controller writes, in order, after the template
/// of `obj` (just stored, with its new generation) changed.
///
/// StatefulSet, `RollingUpdate`: the controller observes the generation and the new
/// `updateRevision`, then replaces the pods from the highest ordinal down to `partition`, one
/// at a time, each first not ready, then ready; when all are updated (partition 0)
/// `currentRevision` becomes `updateRevision` and `currentReplicas` = `replicas`.
/// StatefulSet, `OnDelete`: only the generation and `updateRevision` are observed; nothing
/// rolls until someone deletes the pods.
/// DaemonSet, `RollingUpdate`: node by node, `updatedNumberScheduled` rises while one pod is
/// unavailable, then `numberAvailable` returns to `desiredNumberScheduled`. `OnDelete`: only
/// the generation is observed.
/// A failing rollout (`failing_rollouts`) stops with the first new pod never ready.
fn controller_steps(kind: Workload, obj: &Value, failing: bool) -> Vec<Value> {
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let generation = obj["metadata"]["generation"].as_i64().unwrap_or(1);
    let strategy = &obj["spec"]["updateStrategy"];
    let on_delete = strategy["type"] == "OnDelete";
    let mut steps = Vec::new();
    match kind {
        Workload::StatefulSet => {
            let n = obj["spec"]["replicas"].as_i64().unwrap_or(1);
            let partition = strategy["rollingUpdate"]["partition"]
                .as_i64()
                .unwrap_or(0)
                .clamp(0, n);
            let update = revision_name(name, &obj["spec"]["template"]);
            let current = obj["status"]["currentRevision"]
                .as_str()
                .unwrap_or(&update)
                .to_string();
            let sts = |ready, cur, updated| {
                statefulset_status(generation, n, ready, cur, updated, &current, &update)
            };
            if current == update {
                // The template came back to the current revision: nothing to replace.
                steps.push(sts(n, n, n));
                return steps;
            }
            steps.push(sts(n, n, 0));
            if on_delete {
                return steps;
            }
            for i in 1..=(n - partition) {
                steps.push(sts(n - 1, n - i, i));
                if failing {
                    return steps;
                }
                steps.push(sts(n, n - i, i));
            }
            if partition == 0 {
                steps.pop();
                steps.push(statefulset_status(generation, n, n, n, n, &update, &update));
            }
        }
        Workload::DaemonSet => {
            let n = obj["status"]["desiredNumberScheduled"]
                .as_i64()
                .unwrap_or(super::world::DAEMONSET_NODES);
            steps.push(daemonset_status(generation, 0, n));
            if on_delete {
                return steps;
            }
            for i in 1..=n {
                steps.push(daemonset_status(generation, i, n - 1));
                if failing {
                    return steps;
                }
                steps.push(daemonset_status(generation, i, n));
            }
        }
        Workload::Deployment | Workload::CronJob => {}
    }
    steps
}

/// Writes `steps` as the object's status, one per tick; stops when a newer generation takes
/// over.
async fn run_steps(
    shared: Arc<Shared>,
    kind: Workload,
    ns: String,
    name: String,
    generation: i64,
    steps: Vec<Value>,
) {
    let key = (ns.clone(), name.clone());
    let tick = TICK + shared.latency;
    for status in steps {
        tokio::time::sleep(tick).await;
        let Some(mut obj) = shared.world().objects(kind).get(&key).cloned() else {
            return;
        };
        if obj["metadata"]["generation"].as_i64() != Some(generation) {
            return;
        }
        obj["status"] = status;
        store(&shared, kind, &ns, &name, obj);
    }
}

#[allow(clippy::too_many_arguments)]
fn stage(
    status: &mut Value,
    generation: i64,
    replicas: i64,
    updated: i64,
    available: i64,
    reason: &str,
    progressing: &str,
    at: &str,
) {
    let message = match reason {
        "ProgressDeadlineExceeded" => "ReplicaSet has timed out progressing.".to_string(),
        _ => "ReplicaSet is progressing.".to_string(),
    };
    *status = json!({
        "observedGeneration": generation,
        "replicas": replicas, "updatedReplicas": updated,
        "readyReplicas": available, "availableReplicas": available,
        "unavailableReplicas": (replicas - available).max(0),
        "conditions": [
            {"type": "Available", "status": "True", "lastUpdateTime": at, "lastTransitionTime": super::world::CREATED,
             "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability."},
            {"type": "Progressing", "status": progressing, "lastUpdateTime": at, "lastTransitionTime": at,
             "reason": reason, "message": message}
        ]
    });
}

/// A long-lived newline-delimited JSON watch stream of one workload kind's changes.
pub(crate) fn watch_response(
    shared: Arc<Shared>,
    kind: Workload,
    ns: Option<&str>,
    name: Option<&str>,
    since: Option<u64>,
    timeout_secs: u64,
) -> Response {
    let rx = shared.watch.subscribe();
    let ns = ns.map(str::to_string);
    let name = name.map(str::to_string);
    let matches = move |ens: &str, ename: &str| {
        ns.as_deref().is_none_or(|n| n == ens) && name.as_deref().is_none_or(|n| n == ename)
    };
    // Objects newer than the client's resourceVersion (all of them, as ADDED, without one).
    let mut initial: Vec<(String, u64, Value, &'static str)> = Vec::new();
    {
        let world = shared.world();
        for ((dns, dname), obj) in world.objects(kind) {
            if !matches(dns, dname) {
                continue;
            }
            let rv = obj["metadata"]["resourceVersion"]
                .as_str()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            match since {
                Some(s) if s > 0 => {
                    if rv > s {
                        initial.push((format!("{dns}/{dname}"), rv, obj.clone(), "MODIFIED"));
                    }
                }
                _ => initial.push((format!("{dns}/{dname}"), rv, obj.clone(), "ADDED")),
            }
        }
    }
    let mut sent: std::collections::HashMap<String, u64> = initial
        .iter()
        .map(|(k, rv, _, _)| (k.clone(), *rv))
        .collect();
    if let Some(s) = since {
        // Anything at or below the client's version was already seen.
        let world = shared.world();
        for (dns, dname) in world.objects(kind).keys() {
            sent.entry(format!("{dns}/{dname}")).or_insert(s);
        }
    }
    let first: Vec<Result<Bytes, std::io::Error>> = initial
        .into_iter()
        .map(|(_, _, obj, kind)| Ok(line(kind, &obj)))
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout_secs);
    let rest = futures::stream::unfold(
        (rx, sent, matches),
        move |(mut rx, mut sent, matches)| async move {
            loop {
                let ev = match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Err(_) => return None,
                    Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => return None,
                    Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
                    Ok(Ok(ev)) => ev,
                };
                if ev.kind != kind || !matches(&ev.namespace, &ev.name) {
                    continue;
                }
                let k = format!("{}/{}", ev.namespace, ev.name);
                if sent.get(&k).is_some_and(|rv| *rv >= ev.rv) {
                    continue;
                }
                sent.insert(k, ev.rv);
                let out: Result<Bytes, std::io::Error> = Ok(line("MODIFIED", &ev.object));
                return Some((out, (rx, sent, matches)));
            }
        },
    );
    let stream = futures::StreamExt::chain(futures::stream::iter(first), rest);
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

fn line(kind: &str, obj: &Value) -> Bytes {
    Bytes::from(format!("{}\n", json!({"type": kind, "object": obj})))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::{Lab, LabOptions, Scenario};

    /// kubectl's `rollout status` for a StatefulSet (facts §5): `Err` when not RollingUpdate.
    fn sts_done(obj: &Value) -> Result<bool, &'static str> {
        let (spec, st) = (&obj["spec"], &obj["status"]);
        if spec["updateStrategy"]["type"] != "RollingUpdate" {
            return Err("rollout status is only available for RollingUpdate strategy type");
        }
        let n = |v: &Value| v.as_i64().unwrap_or(0);
        let generation = n(&obj["metadata"]["generation"]);
        let observed = n(&st["observedGeneration"]);
        if observed == 0 || generation > observed || n(&st["readyReplicas"]) < n(&spec["replicas"])
        {
            return Ok(false);
        }
        let ru = &spec["updateStrategy"]["rollingUpdate"];
        if !ru.is_null() {
            return Ok(n(&st["updatedReplicas"]) >= n(&spec["replicas"]) - n(&ru["partition"]));
        }
        Ok(st["currentRevision"] == st["updateRevision"])
    }

    /// kubectl's `rollout status` for a DaemonSet (facts §5).
    fn ds_done(obj: &Value) -> bool {
        let st = &obj["status"];
        let n = |v: &Value| v.as_i64().unwrap_or(0);
        let desired = n(&st["desiredNumberScheduled"]);
        n(&obj["metadata"]["generation"]) <= n(&st["observedGeneration"])
            && n(&st["updatedNumberScheduled"]) >= desired
            && n(&st["numberAvailable"]) >= desired
    }

    fn restarted(lab: &Lab, kind: Workload, name: &str) -> Value {
        let mut obj = lab.workload(kind, "production", name).expect("exists");
        obj["metadata"]["generation"] = json!(2);
        obj["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] =
            json!("2026-02-01T10:00:00Z");
        obj
    }

    #[tokio::test]
    async fn controllers_step_like_kubernetes() {
        let lab = Lab::start(Scenario::Healthy, LabOptions::default())
            .await
            .expect("lab");
        // StatefulSet, RollingUpdate partition 0: updated 0 -> 1 -> 2, done only at the end.
        let sts = restarted(&lab, Workload::StatefulSet, "ledger-db");
        let old = sts["status"]["updateRevision"].clone();
        let steps = controller_steps(Workload::StatefulSet, &sts, false);
        let n = |v: &Value| v.as_i64().unwrap_or(0);
        let seen: Vec<(i64, i64, i64)> = steps
            .iter()
            .map(|s| {
                (
                    n(&s["updatedReplicas"]),
                    n(&s["readyReplicas"]),
                    n(&s["currentReplicas"]),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [(0, 2, 2), (1, 1, 1), (1, 2, 1), (2, 1, 0), (2, 2, 2)]
        );
        let new = steps[0]["updateRevision"].clone();
        assert_ne!(new, old);
        assert!(new.as_str().unwrap().starts_with("ledger-db-"));
        for (i, st) in steps.iter().enumerate() {
            assert_eq!(st["observedGeneration"], 2);
            assert_eq!(st["updateRevision"], new);
            let mut obj = sts.clone();
            obj["status"] = st.clone();
            assert_eq!(sts_done(&obj), Ok(i == steps.len() - 1), "{st}");
        }
        assert_eq!(steps[3]["currentRevision"], old);
        assert_eq!(steps[4]["currentRevision"], new);
        assert!(steps[0].get("updatedReplicas").is_none(), "omitempty at 0");
        // Failing: the first replaced pod never gets ready.
        let failing = controller_steps(Workload::StatefulSet, &sts, true);
        assert_eq!(failing.len(), 2);
        assert_eq!(failing[1]["readyReplicas"], 1);
        // OnDelete: observed, nothing rolls.
        let od = restarted(&lab, Workload::StatefulSet, "legacy-cache");
        let steps = controller_steps(Workload::StatefulSet, &od, false);
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0]["observedGeneration"], 2);
        assert_eq!(n(&steps[0]["updatedReplicas"]), 0);
        assert_ne!(steps[0]["currentRevision"], steps[0]["updateRevision"]);
        // DaemonSet: node by node.
        let ds = restarted(&lab, Workload::DaemonSet, "log-shipper");
        let steps = controller_steps(Workload::DaemonSet, &ds, false);
        let seen: Vec<(i64, i64)> = steps
            .iter()
            .map(|s| (n(&s["updatedNumberScheduled"]), n(&s["numberAvailable"])))
            .collect();
        assert_eq!(
            seen,
            [(0, 3), (1, 2), (1, 3), (2, 2), (2, 3), (3, 2), (3, 3)]
        );
        for (i, st) in steps.iter().enumerate() {
            let mut obj = ds.clone();
            obj["status"] = st.clone();
            assert_eq!(ds_done(&obj), i == steps.len() - 1, "{st}");
        }
        assert_eq!(controller_steps(Workload::DaemonSet, &ds, true).len(), 2);
        lab.shutdown().await;
    }

    async fn patch(lab: &Lab, resource: &str, name: &str, ct: &str) -> reqwest::Response {
        reqwest::Client::new()
            .patch(format!(
                "{}/apis/apps/v1/namespaces/production/{resource}/{name}",
                lab.kube_url()
            ))
            .bearer_auth(lab.bot_kube_token())
            .header("content-type", ct)
            .body(
                json!({"spec": {"template": {"metadata": {"annotations": {
                    "kubectl.kubernetes.io/restartedAt": "2026-02-01T10:00:00Z"}}}}})
                .to_string(),
            )
            .send()
            .await
            .expect("patch")
    }

    async fn wait_for(lab: &Lab, kind: Workload, name: &str, mut done: impl FnMut(&Value) -> bool) {
        for _ in 0..100 {
            let obj = lab.workload(kind, "production", name).expect("exists");
            if done(&obj) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{name} never got there: {:?}",
            lab.workload(kind, "production", name)
        );
    }

    #[tokio::test]
    async fn a_one_replica_deployment_rolls_out_with_one_surge_pod() {
        let lab = Lab::start(Scenario::Healthy, LabOptions::default())
            .await
            .expect("lab");
        let resp = patch(
            &lab,
            "deployments",
            "reports-web",
            "application/strategic-merge-patch+json",
        )
        .await;
        assert_eq!(resp.status().as_u16(), 200);
        let mut seen = Vec::new();
        wait_for(&lab, Workload::Deployment, "reports-web", |d| {
            let st = &d["status"];
            let n = |k: &str| st[k].as_i64().unwrap_or(0);
            let stage = (n("replicas"), n("updatedReplicas"), n("availableReplicas"));
            if seen.last() != Some(&stage) {
                seen.push(stage);
            }
            n("observedGeneration") == 2 && st["unavailableReplicas"].is_null()
        })
        .await;
        let d = lab.deployment("production", "reports-web").unwrap();
        assert_eq!(d["status"]["replicas"], 1);
        assert_eq!(d["status"]["updatedReplicas"], 1);
        assert_eq!(d["status"]["readyReplicas"], 1);
        assert!(
            seen.iter()
                .all(|(replicas, updated, _)| *replicas <= 2 && *updated <= 1),
            "{seen:?}"
        );
        lab.shutdown().await;
    }

    #[tokio::test]
    async fn restart_patch_rolls_a_statefulset_and_a_daemonset_but_not_on_delete() {
        let lab = Lab::start(Scenario::ReviewerJwtExpired, LabOptions::default())
            .await
            .expect("lab");
        let before = lab.statefulset("production", "ledger-db").unwrap();
        assert_eq!(sts_done(&before), Ok(true));
        let resp = patch(
            &lab,
            "statefulsets",
            "ledger-db",
            "application/strategic-merge-patch+json",
        )
        .await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["metadata"]["generation"], 2);
        assert_ne!(
            body["metadata"]["resourceVersion"],
            before["metadata"]["resourceVersion"]
        );
        assert_eq!(
            body["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"],
            "2026-02-01T10:00:00Z"
        );
        assert_eq!(
            body["spec"]["template"]["metadata"]["annotations"]["vault.hashicorp.com/auth-config-role"],
            "ledger-sync",
            "the patch merges into the template's annotations"
        );
        assert_eq!(sts_done(&body), Ok(false));
        wait_for(&lab, Workload::StatefulSet, "ledger-db", |o| {
            sts_done(o) == Ok(true)
        })
        .await;
        let after = lab.statefulset("production", "ledger-db").unwrap();
        assert_eq!(after["status"]["observedGeneration"], 2);
        assert_eq!(after["status"]["updatedReplicas"], 2);
        assert_eq!(after["status"]["currentReplicas"], 2);
        assert_eq!(
            after["status"]["currentRevision"],
            after["status"]["updateRevision"]
        );
        assert_ne!(
            after["status"]["updateRevision"],
            before["status"]["updateRevision"]
        );

        // OnDelete: generation observed, nothing rolls, kubectl refuses to follow it.
        let od = lab.statefulset("production", "legacy-cache").unwrap();
        let resp = patch(
            &lab,
            "statefulsets",
            "legacy-cache",
            "application/merge-patch+json",
        )
        .await;
        assert_eq!(resp.status(), 200);
        wait_for(&lab, Workload::StatefulSet, "legacy-cache", |o| {
            o["status"]["observedGeneration"] == 2
        })
        .await;
        tokio::time::sleep(TICK * 3).await;
        let od_after = lab.statefulset("production", "legacy-cache").unwrap();
        assert_eq!(od_after["metadata"]["generation"], 2);
        assert!(
            od_after["status"].get("updatedReplicas").is_none(),
            "{od_after}"
        );
        assert_eq!(
            od_after["status"]["currentRevision"],
            od["status"]["currentRevision"]
        );
        assert_ne!(
            od_after["status"]["currentRevision"],
            od_after["status"]["updateRevision"]
        );
        assert_eq!(od_after["status"]["readyReplicas"], 2);
        assert!(sts_done(&od_after).is_err());

        // DaemonSet.
        lab.fail_rollout("production", "nothing-else");
        let resp = patch(
            &lab,
            "daemonsets",
            "log-shipper",
            "application/strategic-merge-patch+json",
        )
        .await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        assert!(!ds_done(&body));
        wait_for(&lab, Workload::DaemonSet, "log-shipper", ds_done).await;
        let ds = lab.daemonset("production", "log-shipper").unwrap();
        assert_eq!(ds["status"]["observedGeneration"], 2);
        assert_eq!(ds["status"]["updatedNumberScheduled"], 3);

        // A JSON patch is refused like the Deployment's.
        let resp = patch(
            &lab,
            "daemonsets",
            "log-shipper",
            "application/json-patch+json",
        )
        .await;
        assert_eq!(resp.status(), 415);
        let resp = patch(&lab, "statefulsets", "nope", "application/merge-patch+json").await;
        assert_eq!(resp.status(), 404);
        lab.shutdown().await;
    }

    #[tokio::test]
    async fn a_failing_statefulset_rollout_never_gets_ready() {
        let lab = Lab::start(Scenario::Healthy, LabOptions::default())
            .await
            .expect("lab");
        lab.fail_rollout("production", "ledger-db");
        let resp = patch(
            &lab,
            "statefulsets",
            "ledger-db",
            "application/strategic-merge-patch+json",
        )
        .await;
        assert_eq!(resp.status(), 200);
        wait_for(&lab, Workload::StatefulSet, "ledger-db", |o| {
            o["status"]["updatedReplicas"] == 1
        })
        .await;
        tokio::time::sleep(TICK * 4).await;
        let sts = lab.statefulset("production", "ledger-db").unwrap();
        assert_eq!(sts["status"]["readyReplicas"], 1);
        assert_eq!(sts["status"]["updatedReplicas"], 1);
        assert_eq!(sts_done(&sts), Ok(false));
        // The Deployment of the same role is untouched by the failure switch.
        assert!(lab.deployment("production", "ledger-sync").is_some());
        lab.shutdown().await;
    }

    #[tokio::test]
    async fn statefulsets_are_listed_and_watched_by_name() {
        let lab = Lab::start(Scenario::Healthy, LabOptions::default())
            .await
            .expect("lab");
        let http = reqwest::Client::new();
        let get = |path: &str| {
            http.get(format!("{}{path}", lab.kube_url()))
                .bearer_auth(lab.bot_kube_token())
                .send()
        };
        let list: Value = get("/apis/apps/v1/statefulsets")
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(list["kind"], "StatefulSetList");
        assert_eq!(list["apiVersion"], "apps/v1");
        assert!(list["metadata"]["resourceVersion"].is_string());
        assert_eq!(list["items"].as_array().unwrap().len(), 2);
        assert!(list["items"][0].get("kind").is_none());
        let list: Value = get("/apis/apps/v1/namespaces/production/daemonsets?fieldSelector=metadata.name%3Dlog-shipper")
            .await.unwrap().json().await.unwrap();
        assert_eq!(list["kind"], "DaemonSetList");
        assert_eq!(list["items"][0]["metadata"]["name"], "log-shipper");
        let list: Value = get("/apis/batch/v1/cronjobs")
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(list["kind"], "CronJobList");
        assert_eq!(list["apiVersion"], "batch/v1");
        assert_eq!(list["items"][0]["metadata"]["name"], "nightly-report");
        let cj: Value = get("/apis/batch/v1/namespaces/production/cronjobs/nightly-report")
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(cj["kind"], "CronJob");
        let missing = get("/apis/apps/v1/namespaces/production/daemonsets/nope")
            .await
            .unwrap();
        assert_eq!(missing.status(), 404);
        let missing: Value = missing.json().await.unwrap();
        assert_eq!(missing["message"], "daemonsets.apps \"nope\" not found");
        assert_eq!(
            get("/apis/batch/v1/statefulsets").await.unwrap().status(),
            404
        );

        // A watch of one StatefulSet from the list's resourceVersion sees the rollout only.
        let rv = list["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_string();
        let mut watch = get(&format!(
            "/apis/apps/v1/namespaces/production/statefulsets?watch=true&fieldSelector=metadata.name%3Dledger-db&resourceVersion={rv}&timeoutSeconds=5"
        ))
        .await
        .unwrap();
        patch(
            &lab,
            "daemonsets",
            "log-shipper",
            "application/merge-patch+json",
        )
        .await;
        patch(
            &lab,
            "statefulsets",
            "ledger-db",
            "application/merge-patch+json",
        )
        .await;
        let mut buf = String::new();
        let mut events = Vec::new();
        'read: while let Some(chunk) = watch.chunk().await.unwrap() {
            buf.push_str(std::str::from_utf8(&chunk).unwrap());
            while let Some(i) = buf.find('\n') {
                let ev: Value = serde_json::from_str(&buf[..i]).unwrap();
                buf.drain(..=i);
                assert_eq!(ev["object"]["kind"], "StatefulSet");
                assert_eq!(ev["object"]["metadata"]["name"], "ledger-db");
                let done = sts_done(&ev["object"]) == Ok(true);
                events.push(ev);
                if done {
                    break 'read;
                }
            }
        }
        assert_eq!(events.len(), 6, "the patch and five controller steps");
        assert!(events.iter().all(|e| e["type"] == "MODIFIED"));
        lab.shutdown().await;
    }

    #[test]
    fn merge_patch_sets_and_removes() {
        let mut t = json!({"a": {"b": 1, "c": 2}, "d": 3});
        merge(&mut t, &json!({"a": {"b": null, "e": 5}, "d": 4}));
        assert_eq!(t, json!({"a": {"c": 2, "e": 5}, "d": 4}));
    }
}
