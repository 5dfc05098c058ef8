//! Deployment changes: the PATCH that `kubectl rollout restart` sends, a simulated rollout
//! controller that walks the status through kubectl's stages, and the watch stream.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::Shared;
use super::wire::{json_response, status_response};

/// One change of a Deployment, as broadcast to watchers.
#[derive(Clone, Debug)]
pub(crate) struct WatchEvent {
    pub namespace: String,
    pub name: String,
    pub rv: u64,
    pub object: Value,
}

/// One status transition of a rollout.
type Step = Box<dyn Fn(&mut Value, i64, &str) + Send>;

/// Duration of one controller tick (plus the lab's latency option).
const TICK: Duration = Duration::from_millis(100);

fn merge(target: &mut Value, patch: &Value) {
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

/// Stores a new version of a Deployment (bumping resourceVersion) and tells the watchers.
fn store(shared: &Shared, ns: &str, name: &str, mut obj: Value) -> Value {
    let event = {
        let mut world = shared.world();
        let rv = world.next_rv();
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        world
            .deployments
            .insert((ns.to_string(), name.to_string()), obj.clone());
        WatchEvent {
            namespace: ns.into(),
            name: name.into(),
            rv,
            object: obj.clone(),
        }
    };
    let _ = shared.watch.send(event);
    obj
}

/// Applies a strategic-merge / merge patch (labels, annotations, spec) and starts a rollout
/// when the spec changed.
pub(crate) fn patch_deployment(
    shared: &Arc<Shared>,
    ns: &str,
    name: &str,
    patch: &Value,
) -> Response {
    let Some(current) = shared
        .world()
        .deployments
        .get(&(ns.to_string(), name.to_string()))
        .cloned()
    else {
        return status_response(
            404,
            "NotFound",
            &format!("deployments.apps {name:?} not found"),
            Some(json!({"name": name, "group": "apps", "kind": "deployments"})),
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
        let stored = store(shared, ns, name, next);
        let shared = shared.clone();
        let (ns, name) = (ns.to_string(), name.to_string());
        tokio::spawn(async move { run_rollout(shared, ns, name, generation).await });
        json_response(StatusCode::OK, &stored)
    } else if next != current {
        json_response(StatusCode::OK, &store(shared, ns, name, next))
    } else {
        json_response(StatusCode::OK, &current)
    }
}

/// Walks the status through kubectl's rollout stages, one step per tick. Stops when a newer
/// generation takes over.
async fn run_rollout(shared: Arc<Shared>, ns: String, name: String, generation: i64) {
    let key = (ns.clone(), name.clone());
    let failing = shared.world().failing_rollouts.contains(&key);
    let tick = TICK + shared.latency;
    let steps: Vec<Step> = if failing {
        vec![
            Box::new(|s, g, at| stage(s, g, 3, 1, 2, "ReplicaSetUpdated", "True", at)),
            Box::new(|s, g, at| stage(s, g, 3, 1, 2, "ProgressDeadlineExceeded", "False", at)),
        ]
    } else {
        vec![
            Box::new(|s, g, at| stage(s, g, 3, 1, 2, "ReplicaSetUpdated", "True", at)),
            Box::new(|s, g, at| stage(s, g, 3, 2, 2, "ReplicaSetUpdated", "True", at)),
            Box::new(|s, g, at| stage(s, g, 2, 2, 1, "ReplicaSetUpdated", "True", at)),
            Box::new(|s, g, at| {
                *s = super::world::rolled_out_status(g, 2, at);
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
        store(&shared, &ns, &name, obj);
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

/// A long-lived newline-delimited JSON watch stream of Deployment changes.
pub(crate) fn watch_response(
    shared: Arc<Shared>,
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
        for ((dns, dname), obj) in &world.deployments {
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
        for (dns, dname) in world.deployments.keys() {
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
                if !matches(&ev.namespace, &ev.name) {
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

    #[test]
    fn merge_patch_sets_and_removes() {
        let mut t = json!({"a": {"b": 1, "c": 2}, "d": 3});
        merge(&mut t, &json!({"a": {"b": null, "e": 5}, "d": 4}));
        assert_eq!(t, json!({"a": {"c": 2, "e": 5}, "d": 4}));
    }
}
