//! The cluster's Pods as the kubelet reports them: one per replica of the lab's workloads (a
//! Deployment's through its ReplicaSet, a StatefulSet's by ordinal, a DaemonSet's per node,
//! at most two each), the pods of two Jobs (the bare `db-migrate` and the CronJob
//! `nightly-report`'s last run), and the bulk pods of the benchmarks. A pod whose template the
//! Vault Agent Injector mutates carries its status annotation, `vault-agent-init` init
//! container and `vault-agent` sidecar. While logins through the triaged mount fail, the pods
//! created after the outage began wait in `Init:0/1` (facts/vault-consumers.md §1); the others
//! keep running on the secrets they rendered.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use super::consumers::LoginFailure;
use super::pod_build::{NODES, Owner, Phase, Plan, build, suffix, template_hash};
use super::setup::APPS;
use super::world::{CREATED, KubeWorld, revision_name};

/// The bare Job the lab serves no object of: only its pod reveals it.
pub(crate) const MIGRATION_JOB: &str = "db-migrate";
/// The CronJob whose last Job still runs, and that Job.
pub(crate) const REPORT_CRONJOB: &str = "nightly-report";
pub(crate) const REPORT_JOB: &str = "nightly-report-29410560";
/// Replicas the lab runs pods for, per workload.
const MAX_PODS_PER_WORKLOAD: usize = 2;

fn created_at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(CREATED)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

/// When the lab's pods came to be: `epoch` is the world's "now" (the outage, if any, began
/// 3 h before it); `healed` is when logins through the mount worked again after an outage.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    pub epoch: DateTime<Utc>,
    pub healed: Option<DateTime<Utc>>,
}

/// The template of the bare Job `production/db-migrate`: a schema migration that logs in with
/// the role (and ServiceAccount) of the first app, its secrets rendered by the init container
/// only.
fn migration_template() -> Value {
    let role = APPS[0];
    json!({
        "metadata": {
            "labels": {"app": MIGRATION_JOB},
            "annotations": {
                "vault.hashicorp.com/agent-inject": "true",
                "vault.hashicorp.com/role": role,
                "vault.hashicorp.com/agent-pre-populate-only": "true",
                "vault.hashicorp.com/agent-inject-secret-db": format!("secret/data/production/{role}/db")
            }
        },
        "spec": {
            "serviceAccountName": role,
            "restartPolicy": "Never",
            "containers": [{
                "name": MIGRATION_JOB,
                "image": format!("registry.example.com/{role}:1.8.2"),
                "command": ["/app/migrate", "up"]
            }]
        }
    })
}

/// The pods of the lab's own workloads (every namespace but `bulk`) and Jobs, as of `clock`,
/// while logins through the triaged mount fail as `failure` says (`None`: they work). Under
/// an outage the pods created after it began are stuck in `Init:0/1`: the second replica of
/// the first app's Deployment (40 min old), the StatefulSet `ledger-db`'s `-0` (restarted
/// 25 min ago) and the Job `db-migrate`'s pod (12 min old). Injector-less pods run.
pub(crate) fn lab_pods(
    world: &KubeWorld,
    failure: Option<LoginFailure>,
    clock: Clock,
) -> Vec<Value> {
    let old = created_at();
    let recent = |minutes: i64| clock.epoch - Duration::minutes(minutes);
    // A pod created after the outage began waits for the agent; others run (the recent ones
    // since logins healed, when they did).
    let phase = |created: DateTime<Utc>, after_outage: bool| {
        if after_outage && failure.is_some() {
            Phase::WaitingForAgent
        } else {
            let init_done = match clock.healed {
                Some(h) if after_outage => h,
                _ => created + Duration::seconds(5),
            };
            Phase::Running { init_done }
        }
    };
    let not_bulk = |((ns, _), _): &(&(String, String), &Value)| ns != "bulk";
    let mut out = Vec::new();
    for (i, ((ns, name), d)) in world.deployments.iter().filter(not_bulk).enumerate() {
        let template = &d["spec"]["template"];
        let hash = template_hash(template);
        let rs = format!("{name}-{hash}");
        let replicas = d["spec"]["replicas"].as_u64().unwrap_or(1) as usize;
        for r in 0..replicas.min(MAX_PODS_PER_WORKLOAD) {
            let after_outage = name == APPS[0] && r == 1;
            let created = if after_outage {
                recent(40)
            } else {
                old + Duration::seconds(20 + 7 * r as i64)
            };
            out.push(build(&Plan {
                ns,
                name: format!("{rs}-{}", suffix(&format!("{ns}/{rs}/{r}"), 5)),
                owner: Owner::ReplicaSet {
                    name: rs.clone(),
                    hash: hash.clone(),
                },
                template,
                node: i + r,
                created,
                phase: phase(created, after_outage),
                rich: false,
            }));
        }
    }
    for (i, ((ns, name), s)) in world.statefulsets.iter().filter(not_bulk).enumerate() {
        let template = &s["spec"]["template"];
        let revision = s["status"]["updateRevision"]
            .as_str()
            .map_or_else(|| revision_name(name, template), str::to_string);
        let replicas = s["spec"]["replicas"].as_u64().unwrap_or(1) as usize;
        for ordinal in 0..replicas.min(MAX_PODS_PER_WORKLOAD) {
            let after_outage = name == "ledger-db" && ordinal == 0;
            let created = if after_outage {
                recent(25)
            } else {
                old + Duration::seconds(40 + 30 * ordinal as i64)
            };
            out.push(build(&Plan {
                ns,
                name: format!("{name}-{ordinal}"),
                owner: Owner::StatefulSet {
                    name: name.clone(),
                    revision: revision.clone(),
                    ordinal,
                },
                template,
                node: i + ordinal + 1,
                created,
                phase: phase(created, after_outage),
                rich: false,
            }));
        }
    }
    for ((ns, name), ds) in world.daemonsets.iter().filter(not_bulk) {
        let template = &ds["spec"]["template"];
        let hash = revision_name(name, template)
            .trim_start_matches(&format!("{name}-"))
            .to_string();
        for node in 0..NODES.len().min(MAX_PODS_PER_WORKLOAD) {
            let created = old + Duration::seconds(15 + node as i64);
            out.push(build(&Plan {
                ns,
                name: format!("{name}-{}", suffix(&format!("{ns}/{name}/{node}"), 5)),
                owner: Owner::DaemonSet {
                    name: name.clone(),
                    hash: hash.clone(),
                },
                template,
                node,
                created,
                phase: phase(created, false),
                rich: false,
            }));
        }
    }
    let ns = "production";
    if let Some(cj) = world
        .cronjobs
        .get(&(ns.to_string(), REPORT_CRONJOB.to_string()))
    {
        let created = recent(4 * 60);
        out.push(build(&Plan {
            ns,
            name: format!("{REPORT_JOB}-{}", suffix(REPORT_JOB, 5)),
            owner: Owner::Job {
                name: REPORT_JOB.into(),
            },
            template: &cj["spec"]["jobTemplate"]["spec"]["template"],
            node: 2,
            created,
            phase: phase(created, false),
            rich: false,
        }));
    }
    let migration = migration_template();
    let created = recent(12);
    out.push(build(&Plan {
        ns,
        name: format!("{MIGRATION_JOB}-{}", suffix(MIGRATION_JOB, 5)),
        owner: Owner::Job {
            name: MIGRATION_JOB.into(),
        },
        template: &migration,
        node: 0,
        created,
        phase: phase(created, true),
        rich: false,
    }));
    out
}

/// `count` running pods in namespace `bulk`, owned round-robin by the bulk workloads there
/// (a Deployment's through its ReplicaSet, a StatefulSet's by ordinal, a DaemonSet's per
/// node; bare pods when there are none), each with the containers of a real application.
pub(crate) fn bulk_pods(world: &KubeWorld, count: usize) -> Vec<Value> {
    let ns = "bulk";
    let mut owners: Vec<(&String, &'static str, &Value)> = Vec::new();
    for (kind, m) in [
        ("Deployment", &world.deployments),
        ("StatefulSet", &world.statefulsets),
        ("DaemonSet", &world.daemonsets),
    ] {
        owners.extend(
            m.iter()
                .filter(|((ons, _), _)| ons == ns)
                .map(|((_, n), o)| (n, kind, o)),
        );
    }
    owners.sort_by(|a, b| a.0.cmp(b.0));
    let bare = json!({
        "metadata": {"labels": {"app": "batch-worker"}},
        "spec": {"containers": [{"name": "worker", "image": "registry.example.com/batch-worker:2.0.1"}]}
    });
    let old = created_at();
    let hashes: Vec<String> = owners
        .iter()
        .map(|(name, kind, o)| match *kind {
            "Deployment" => template_hash(&o["spec"]["template"]),
            "StatefulSet" => o["status"]["updateRevision"].as_str().map_or_else(
                || revision_name(name, &o["spec"]["template"]),
                str::to_string,
            ),
            _ => revision_name(name, &o["spec"]["template"])
                .trim_start_matches(&format!("{name}-"))
                .to_string(),
        })
        .collect();
    (0..count)
        .map(|j| {
            let created = old + Duration::seconds(60 + j as i64);
            let phase = Phase::Running {
                init_done: created + Duration::seconds(5),
            };
            if owners.is_empty() {
                return build(&Plan {
                    ns,
                    name: format!("batch-worker-{j:05}"),
                    owner: Owner::Bare,
                    template: &bare,
                    node: j,
                    created,
                    phase,
                    rich: true,
                });
            }
            let w = j % owners.len();
            let k = j / owners.len();
            let (name, kind, o) = owners[w];
            let hash = hashes[w].clone();
            let (pod_name, owner) = match kind {
                "Deployment" => {
                    let rs = format!("{name}-{hash}");
                    (
                        format!("{rs}-{}", suffix(&format!("{ns}/{rs}/{k}"), 5)),
                        Owner::ReplicaSet { name: rs, hash },
                    )
                }
                "StatefulSet" => (
                    format!("{name}-{k}"),
                    Owner::StatefulSet {
                        name: name.clone(),
                        revision: hash,
                        ordinal: k,
                    },
                ),
                _ => (
                    format!("{name}-{}", suffix(&format!("{ns}/{name}/{k}"), 5)),
                    Owner::DaemonSet {
                        name: name.clone(),
                        hash,
                    },
                ),
            };
            build(&Plan {
                ns,
                name: pod_name,
                owner,
                template: &o["spec"]["template"],
                node: j,
                created,
                phase,
                rich: true,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::super::consumers::CSI_DEPLOYMENT;
    use super::super::pod_build::{AGENT_IMAGE, at};
    use super::super::setup::AUTH_MOUNT;
    use super::super::world::{Workload, stable_uid};
    use super::*;

    fn name(p: &Value) -> &str {
        p["metadata"]["name"].as_str().unwrap()
    }

    /// The pods whose name starts with `<prefix>-`.
    fn named<'a>(w: &'a KubeWorld, prefix: &str) -> Vec<&'a Value> {
        w.pods
            .values()
            .filter(|p| name(p).starts_with(&format!("{prefix}-")))
            .collect()
    }

    fn container_names(p: &Value, field: &str) -> Vec<String> {
        p["spec"][field]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    }

    fn conditions(p: &Value) -> Vec<(String, String)> {
        p["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["type"].as_str().unwrap().to_string(),
                    c["status"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    fn is_alphanum(s: &str) -> bool {
        s.bytes()
            .all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b))
    }

    #[test]
    fn job_pods_name_their_jobs_and_the_lab_serves_no_job() {
        let w = KubeWorld::new();
        let migrations = named(&w, MIGRATION_JOB);
        assert_eq!(migrations.len(), 1);
        let p = migrations[0];
        let suffix = name(p).strip_prefix("db-migrate-").unwrap();
        assert!(suffix.len() == 5 && is_alphanum(suffix), "{}", name(p));
        let uid = stable_uid("Job", "production", MIGRATION_JOB);
        let m = &p["metadata"];
        assert_eq!(m["namespace"], "production");
        assert_eq!(
            m["ownerReferences"],
            json!([{"apiVersion": "batch/v1", "kind": "Job", "name": "db-migrate", "uid": uid,
                "controller": true, "blockOwnerDeletion": true}])
        );
        assert_eq!(m["labels"]["job-name"], "db-migrate");
        assert_eq!(m["labels"]["batch.kubernetes.io/job-name"], "db-migrate");
        assert_eq!(
            m["labels"]["batch.kubernetes.io/controller-uid"],
            uid.as_str()
        );
        assert_eq!(m["annotations"]["vault.hashicorp.com/role"], APPS[0]);
        assert_eq!(
            m["annotations"]["vault.hashicorp.com/agent-inject-status"],
            "injected"
        );
        assert_eq!(p["spec"]["restartPolicy"], "Never");
        assert_eq!(p["spec"]["serviceAccountName"], APPS[0]);
        assert_eq!(container_names(p, "initContainers"), ["vault-agent-init"]);
        assert_eq!(p["status"]["phase"], "Running");
        let init = &p["status"]["initContainerStatuses"][0]["state"]["terminated"];
        assert_eq!(
            (&init["exitCode"], &init["reason"]),
            (&json!(0), &json!("Completed"))
        );
        assert!(
            Workload::ALL.iter().all(|k| k.resource() != "jobs"),
            "only the pod reveals the Job"
        );

        let reports = named(&w, REPORT_JOB);
        assert_eq!(reports.len(), 1);
        let r = reports[0];
        let owner = &r["metadata"]["ownerReferences"][0];
        assert_eq!(
            (&owner["apiVersion"], &owner["kind"], &owner["name"]),
            (&json!("batch/v1"), &json!("Job"), &json!(REPORT_JOB))
        );
        assert_eq!(r["metadata"]["labels"]["job-name"], REPORT_JOB);
        assert_eq!(r["spec"]["restartPolicy"], "OnFailure");
        assert_eq!(
            r["metadata"]["annotations"]["vault.hashicorp.com/role"],
            "billing-worker"
        );
        assert_eq!(
            container_names(r, "containers"),
            [REPORT_CRONJOB, "vault-agent"]
        );
    }

    #[test]
    fn every_workload_replica_has_a_pod_and_injected_ones_carry_the_agent() {
        let w = KubeWorld::new();
        for app in APPS {
            let d = &w.deployments[&("production".to_string(), app.to_string())];
            let hash = template_hash(&d["spec"]["template"]);
            assert!(hash.len() == 10 && is_alphanum(&hash));
            let pods = named(&w, &format!("{app}-{hash}"));
            assert_eq!(pods.len(), 2, "{app}");
            for p in pods {
                let rand = name(p).rsplit('-').next().unwrap();
                assert!(rand.len() == 5 && is_alphanum(rand), "{}", name(p));
                let m = &p["metadata"];
                assert_eq!(m["labels"]["pod-template-hash"], hash.as_str());
                assert_eq!(m["labels"]["app"], app);
                let rs = format!("{app}-{hash}");
                assert_eq!(
                    m["ownerReferences"],
                    json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs,
                        "uid": stable_uid("ReplicaSet", "production", &rs),
                        "controller": true, "blockOwnerDeletion": true}])
                );
                assert_eq!(
                    m["annotations"]["vault.hashicorp.com/agent-inject-status"],
                    "injected"
                );
                assert_eq!(m["annotations"]["vault.hashicorp.com/role"], app);
                assert_eq!(p["spec"]["serviceAccountName"], app);
                assert_eq!(p["spec"]["restartPolicy"], "Always");
                assert_eq!(container_names(p, "initContainers"), ["vault-agent-init"]);
                assert_eq!(container_names(p, "containers"), [app, "vault-agent"]);
                assert_eq!(p["spec"]["containers"][1]["image"], AGENT_IMAGE);
                assert_eq!(p["spec"]["initContainers"][0]["image"], AGENT_IMAGE);
                assert!(p["spec"]["nodeName"].is_string());
                assert_eq!(p["status"]["phase"], "Running");
                assert!(conditions(p).iter().all(|(_, s)| s == "True"));
                let types: BTreeSet<String> = conditions(p).into_iter().map(|(t, _)| t).collect();
                for t in ["Initialized", "Ready", "ContainersReady", "PodScheduled"] {
                    assert!(types.contains(t), "{t}");
                }
                assert_eq!(p["status"]["containerStatuses"][0]["ready"], true);
                assert!(p["status"]["containerStatuses"][0]["state"]["running"].is_object());
            }
        }
        // StatefulSets by ordinal, with their revision; DaemonSets on two of the nodes.
        let sts = &w.statefulsets[&("production".to_string(), "ledger-db".to_string())];
        for ordinal in 0..2 {
            let p = &w.pods[&("production".to_string(), format!("ledger-db-{ordinal}"))];
            let m = &p["metadata"];
            assert_eq!(
                m["labels"]["controller-revision-hash"],
                sts["status"]["updateRevision"]
            );
            assert_eq!(m["labels"]["statefulset.kubernetes.io/pod-name"], name(p));
            let owner = &m["ownerReferences"][0];
            assert_eq!(
                (&owner["kind"], &owner["name"]),
                (&json!("StatefulSet"), &json!("ledger-db"))
            );
            assert_eq!(owner["uid"], sts["metadata"]["uid"]);
            assert_eq!(
                m["annotations"]["vault.hashicorp.com/auth-config-role"],
                "ledger-sync"
            );
            assert_eq!(p["spec"]["serviceAccountName"], "ledger-sync");
        }
        assert_eq!(named(&w, "legacy-cache").len(), 2);
        let shippers = named(&w, "log-shipper");
        assert_eq!(shippers.len(), 2);
        let nodes: BTreeSet<&str> = shippers
            .iter()
            .map(|p| p["spec"]["nodeName"].as_str().unwrap())
            .collect();
        assert_eq!(nodes.len(), 2, "one per node");
        for p in &shippers {
            assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "DaemonSet");
            assert!(is_alphanum(name(p).strip_prefix("log-shipper-").unwrap()));
        }
        // The CSI consumer runs one plain pod.
        let csi = named(&w, CSI_DEPLOYMENT);
        assert_eq!(csi.len(), 1);
        let p = csi[0];
        let annotations = p["metadata"]["annotations"].as_object();
        assert!(annotations.is_none_or(|a| a.keys().all(|k| !k.contains("agent-inject"))));
        assert!(p["spec"].get("initContainers").is_none());
        assert_eq!(container_names(p, "containers"), [CSI_DEPLOYMENT]);
        assert_eq!(
            p["spec"]["volumes"][0]["csi"]["volumeAttributes"]["secretProviderClass"],
            "reports-vault"
        );
        // The typed client reads every pod; names and uids are unique.
        let uids: BTreeSet<&str> = w
            .pods
            .values()
            .map(|p| p["metadata"]["uid"].as_str().unwrap())
            .collect();
        assert_eq!(uids.len(), w.pods.len());
        for p in w.pods.values() {
            let _: k8s_openapi::api::core::v1::Pod =
                serde_json::from_value(p.clone()).expect("a Pod");
        }
    }

    #[test]
    fn pods_created_after_the_outage_began_wait_for_the_agent() {
        for failure in [
            LoginFailure::Denied,
            LoginFailure::Unconfigured,
            LoginFailure::Sealed,
            LoginFailure::Unreachable,
        ] {
            let mut w = KubeWorld::new();
            let now = Utc::now();
            w.set_vault_operators(AUTH_MOUNT, Some(failure), now);
            let outage = now - Duration::hours(3);
            let stuck: Vec<&Value> = w
                .pods
                .values()
                .filter(|p| p["status"]["phase"] == "Pending")
                .collect();
            let names: Vec<&str> = stuck.iter().map(|p| name(p)).collect();
            assert_eq!(names.len(), 3, "{failure:?}: {names:?}");
            assert!(names[0].starts_with("db-migrate-"), "{names:?}");
            assert_eq!(names[1], "ledger-db-0");
            assert!(names[2].starts_with(&format!("{}-", APPS[0])), "{names:?}");
            for p in w.pods.values() {
                let created = DateTime::parse_from_rfc3339(
                    p["metadata"]["creationTimestamp"].as_str().unwrap(),
                )
                .unwrap();
                assert_eq!(
                    created > outage,
                    p["status"]["phase"] == "Pending",
                    "{}",
                    name(p)
                );
            }
            let p = &w.pods[&("production".to_string(), "ledger-db-0".to_string())];
            assert_eq!(
                p["metadata"]["creationTimestamp"],
                at(now - Duration::minutes(25))
            );
            let st = &p["status"];
            let cond = |t: &str| {
                st["conditions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|c| c["type"] == t)
                    .cloned()
                    .unwrap_or_else(|| panic!("{t}"))
            };
            let unready = "containers with unready status: [ledger-db vault-agent]";
            for (t, status, reason, message) in [
                (
                    "Initialized",
                    "False",
                    "ContainersNotInitialized",
                    "containers with incomplete status: [vault-agent-init]",
                ),
                ("Ready", "False", "ContainersNotReady", unready),
                ("ContainersReady", "False", "ContainersNotReady", unready),
            ] {
                let c = cond(t);
                assert_eq!(
                    (&c["status"], &c["reason"], &c["message"]),
                    (&json!(status), &json!(reason), &json!(message)),
                    "{t}"
                );
            }
            assert_eq!(cond("PodScheduled")["status"], "True");
            let init = &st["initContainerStatuses"];
            assert_eq!(init.as_array().unwrap().len(), 1);
            let init = &init[0];
            assert_eq!(init["name"], "vault-agent-init");
            assert_eq!(
                (&init["ready"], &init["restartCount"], &init["started"]),
                (&json!(false), &json!(0), &json!(true))
            );
            assert!(init["state"]["running"]["startedAt"].is_string());
            assert!(init["image"].is_string() && init["imageID"].is_string());
            assert!(
                init["containerID"]
                    .as_str()
                    .unwrap()
                    .starts_with("containerd://")
            );
            for c in st["containerStatuses"].as_array().unwrap() {
                assert_eq!(
                    c["state"],
                    json!({"waiting": {"reason": "PodInitializing"}})
                );
                assert_eq!(
                    (&c["ready"], &c["restartCount"], &c["started"]),
                    (&json!(false), &json!(0), &json!(false))
                );
            }
            assert_eq!(st["startTime"], p["metadata"]["creationTimestamp"]);
            let typed: k8s_openapi::api::core::v1::Pod =
                serde_json::from_value(p.clone()).expect("a Pod");
            assert_eq!(
                typed.status.and_then(|s| s.phase).as_deref(),
                Some("Pending")
            );
        }
    }

    #[test]
    fn bulk_pods_are_owned_in_turn_and_sized_like_real_ones() {
        let mut w = KubeWorld::new();
        let lab_pods = w.pods.len();
        w.add_bulk(12, 0, 40);
        let bulk: Vec<&Value> = w
            .pods
            .iter()
            .filter(|((ns, _), _)| ns == "bulk")
            .map(|(_, p)| p)
            .collect();
        assert_eq!(bulk.len(), 40);
        assert_eq!(w.pods.len(), lab_pods + 40);
        let mut owners = BTreeSet::new();
        for p in &bulk {
            assert_eq!(p["status"]["phase"], "Running");
            let owner = &p["metadata"]["ownerReferences"][0];
            let kind = owner["kind"].as_str().unwrap();
            let owner_name = owner["name"].as_str().unwrap();
            match kind {
                "ReplicaSet" => {
                    let hash = p["metadata"]["labels"]["pod-template-hash"]
                        .as_str()
                        .unwrap();
                    let deployment = owner_name.strip_suffix(&format!("-{hash}")).unwrap();
                    assert!(
                        w.deployments
                            .contains_key(&("bulk".to_string(), deployment.to_string()))
                    );
                    owners.insert(deployment.to_string());
                }
                "StatefulSet" | "DaemonSet" => {
                    let k = ("bulk".to_string(), owner_name.to_string());
                    assert!(w.statefulsets.contains_key(&k) || w.daemonsets.contains_key(&k));
                    assert_eq!(
                        owner["uid"],
                        stable_uid(kind, "bulk", owner_name),
                        "{kind} {owner_name}"
                    );
                    owners.insert(owner_name.to_string());
                }
                other => panic!("{other}"),
            }
            let size = p.to_string().len();
            assert!(
                (4_000..=12_000).contains(&size),
                "{}: {size} bytes",
                name(p)
            );
            let injected = p["metadata"]["annotations"]["vault.hashicorp.com/agent-inject-status"]
                == "injected";
            assert_eq!(
                injected,
                container_names(p, "containers").contains(&"vault-agent".to_string())
            );
            assert_eq!(
                injected,
                p["metadata"]["labels"]["app"] == "app-00000",
                "{}",
                name(p)
            );
            assert!(p["spec"]["containers"][0]["env"].as_array().unwrap().len() > 10);
            assert!(p["spec"]["containers"][0]["readinessProbe"].is_object());
            assert!(p["status"]["podIPs"].is_array() && p["status"]["hostIP"].is_string());
            assert_eq!(p["status"]["qosClass"], "Burstable");
        }
        assert_eq!(owners.len(), 12, "every bulk workload owns pods");
        assert!(
            w.pods
                .contains_key(&("bulk".to_string(), "app-00004-0".to_string()))
        );
        assert!(
            w.pods
                .contains_key(&("bulk".to_string(), "app-00004-2".to_string()))
        );

        let mut bare = KubeWorld::new();
        bare.add_bulk(0, 0, 3);
        let p = &bare.pods[&("bulk".to_string(), "batch-worker-00002".to_string())];
        assert!(p["metadata"].get("ownerReferences").is_none());
    }
}
