//! How one Pod looks as the API server stores it and the kubelet reports it: generated name
//! parts, owner labels and references, the API server's defaults, the Vault Agent Injector's
//! mutation (its status annotation, init container, sidecar and volumes), and the status of a
//! running pod or of one whose agent init container keeps retrying its login (`Init:0/1`).

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value, json};
use sha2::Digest as _;

use super::consumers::IN_CLUSTER_VAULT;
use super::world::stable_uid;

/// The Vault Agent image the injector adds.
pub(crate) const AGENT_IMAGE: &str = "hashicorp/vault:1.15.2";
const OPENBAO_AGENT_IMAGE: &str = "quay.io/openbao/openbao:2.2.0";
/// Nodes (name, IP); a DaemonSet runs on each.
pub(crate) const NODES: [(&str, &str); 3] = [
    ("worker-1", "10.0.1.11"),
    ("worker-2", "10.0.1.12"),
    ("worker-3", "10.0.1.13"),
];
/// The apimachinery `SafeEncodeString` alphabet of generated names and hashes.
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn digest(s: &str) -> [u8; 32] {
    sha2::Sha256::digest(s.as_bytes()).into()
}

/// `len` (at most 32) characters of [`ALPHANUMS`] derived from `seed`: the random suffix of a
/// generated name, stable from one build to the next.
pub(crate) fn suffix(seed: &str, len: usize) -> String {
    digest(seed)
        .iter()
        .take(len)
        .map(|b| ALPHANUMS[usize::from(*b) % ALPHANUMS.len()] as char)
        .collect()
}

/// The Deployment controller's `pod-template-hash` of a pod template (10 characters).
pub(crate) fn template_hash(template: &Value) -> String {
    suffix(&template.to_string(), 10)
}

pub(crate) fn at(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The controller that made a pod.
#[derive(Clone, Debug)]
pub(crate) enum Owner {
    ReplicaSet {
        name: String,
        hash: String,
    },
    StatefulSet {
        name: String,
        revision: String,
        ordinal: usize,
    },
    DaemonSet {
        name: String,
        hash: String,
    },
    Job {
        name: String,
    },
    Bare,
}

/// Where a pod's containers are.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Phase {
    /// Running since its init containers finished at this time.
    Running { init_done: DateTime<Utc> },
    /// The agent's init container keeps retrying its login: `Init:0/1`.
    WaitingForAgent,
}

/// What a pod is built from.
pub(crate) struct Plan<'a> {
    pub ns: &'a str,
    pub name: String,
    pub owner: Owner,
    pub template: &'a Value,
    pub node: usize,
    pub created: DateTime<Utc>,
    pub phase: Phase,
    /// A benchmark pod: containers with env, ports, resources and probes (4–8 KB of JSON).
    pub rich: bool,
}

/// The injector flavour a template asks for.
struct Injector {
    prefix: &'static str,
    init: &'static str,
    sidecar: &'static str,
    image: &'static str,
    env: &'static str,
    binary: &'static str,
    home: &'static str,
}

const INJECTORS: [Injector; 2] = [
    Injector {
        prefix: "vault.hashicorp.com",
        init: "vault-agent-init",
        sidecar: "vault-agent",
        image: AGENT_IMAGE,
        env: "VAULT",
        binary: "vault",
        home: "/home/vault",
    },
    Injector {
        prefix: "openbao.org",
        init: "openbao-agent-init",
        sidecar: "openbao-agent",
        image: OPENBAO_AGENT_IMAGE,
        env: "BAO",
        binary: "bao",
        home: "/home/openbao",
    },
];

fn injector(annotations: &Value) -> Option<&'static Injector> {
    INJECTORS
        .iter()
        .find(|i| annotations[format!("{}/agent-inject", i.prefix)] == "true")
}

/// `docker.io/library/redis:7.4` for `redis:7.4`: the image as the runtime reports it.
fn normalized_image(image: &str) -> String {
    let tagged = if image
        .rsplit('/')
        .next()
        .is_some_and(|last| last.contains(':'))
    {
        image.to_string()
    } else {
        format!("{image}:latest")
    };
    match tagged.split_once('/') {
        None => format!("docker.io/library/{tagged}"),
        Some((host, _)) if host.contains('.') || host.contains(':') || host == "localhost" => {
            tagged
        }
        Some(_) => format!("docker.io/{tagged}"),
    }
}

fn image_id(image: &str) -> String {
    let normalized = normalized_image(image);
    let repo = normalized
        .rsplit_once(':')
        .map_or(normalized.as_str(), |(r, _)| r);
    format!("{repo}@sha256:{}", hex::encode(digest(image)))
}

fn container_id(pod_uid: &str, container: &str) -> String {
    format!(
        "containerd://{}",
        hex::encode(digest(&format!("{pod_uid}/{container}")))
    )
}

/// The agent's configuration (`VAULT_CONFIG`, base64 JSON) for the template's role and auth path.
fn agent_config(inj: &Injector, annotations: &Value, init: bool) -> String {
    use base64::Engine as _;
    let a = |k: &str| annotations[format!("{}/{k}", inj.prefix)].as_str();
    let role = a("role")
        .or_else(|| a("auth-config-role"))
        .unwrap_or_default();
    let mount_path = a("auth-path").unwrap_or("auth/kubernetes");
    let config = json!({
        "auto_auth": {
            "method": {
                "type": "kubernetes",
                "mount_path": mount_path,
                "config": {"role": role, "token_path": "/var/run/secrets/kubernetes.io/serviceaccount/token"}
            },
            "sink": [{"type": "file", "config": {"path": format!("{}/.{}-token", inj.home, inj.binary)}}]
        },
        "exit_after_auth": init,
        "pid_file": format!("{}/.pid", inj.home),
        "vault": {"address": IN_CLUSTER_VAULT},
        "template_config": {"exit_on_retry_failure": true}
    });
    base64::engine::general_purpose::STANDARD.encode(config.to_string())
}

fn field_ref(path: &str) -> Value {
    json!({"fieldRef": {"apiVersion": "v1", "fieldPath": path}})
}

fn agent_container(inj: &Injector, annotations: &Value, init: bool, api_mount: &Value) -> Value {
    json!({
        "name": if init { inj.init } else { inj.sidecar },
        "image": inj.image,
        "command": ["/bin/sh", "-ec"],
        "args": [format!(
            "echo ${{{env}_CONFIG?}} | base64 -d > {home}/config.json && {bin} agent -config={home}/config.json",
            env = inj.env, home = inj.home, bin = inj.binary
        )],
        "env": [
            {"name": "NAMESPACE", "valueFrom": field_ref("metadata.namespace")},
            {"name": "HOST_IP", "valueFrom": field_ref("status.hostIP")},
            {"name": "POD_IP", "valueFrom": field_ref("status.podIP")},
            {"name": format!("{}_LOG_LEVEL", inj.env), "value": "info"},
            {"name": format!("{}_LOG_FORMAT", inj.env), "value": "standard"},
            {"name": format!("{}_CONFIG", inj.env), "value": agent_config(inj, annotations, init)}
        ],
        "resources": {
            "limits": {"cpu": "500m", "memory": "128Mi"},
            "requests": {"cpu": "250m", "memory": "64Mi"}
        },
        "securityContext": {
            "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": true, "runAsGroup": 1000, "runAsNonRoot": true, "runAsUser": 100
        },
        "volumeMounts": [
            {"name": if init { "home-init" } else { "home-sidecar" }, "mountPath": inj.home},
            api_mount,
            {"name": "vault-secrets", "mountPath": "/vault/secrets"}
        ],
        "imagePullPolicy": "IfNotPresent",
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File"
    })
}

/// What a benchmark pod's application container carries besides the template's.
fn enrich(c: &mut Map<String, Value>, name: &str) {
    c.insert(
        "ports".into(),
        json!([
            {"name": "http", "containerPort": 8080, "protocol": "TCP"},
            {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}
        ]),
    );
    let resource = |r: &str| json!({"resourceFieldRef": {"containerName": name, "divisor": "1", "resource": r}});
    c.insert(
        "env".into(),
        json!([
            {"name": "APP_NAME", "value": name},
            {"name": "APP_ENV", "value": "production"},
            {"name": "LOG_LEVEL", "value": "info"},
            {"name": "LOG_FORMAT", "value": "json"},
            {"name": "HTTP_PORT", "value": "8080"},
            {"name": "METRICS_PORT", "value": "9090"},
            {"name": "POD_NAME", "valueFrom": field_ref("metadata.name")},
            {"name": "POD_NAMESPACE", "valueFrom": field_ref("metadata.namespace")},
            {"name": "NODE_NAME", "valueFrom": field_ref("spec.nodeName")},
            {"name": "GOMAXPROCS", "valueFrom": resource("limits.cpu")},
            {"name": "GOMEMLIMIT", "valueFrom": resource("limits.memory")},
            {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "http://otel-collector.observability.svc:4317"},
            {"name": "OTEL_SERVICE_NAME", "value": name},
            {"name": "OTEL_RESOURCE_ATTRIBUTES", "value": format!("service.namespace=bulk,service.name={name},deployment.environment=production")},
            {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": format!("{name}-db"), "key": "url"}}},
            {"name": "FEATURE_FLAGS", "valueFrom": {"configMapKeyRef": {"name": format!("{name}-flags"), "key": "flags", "optional": true}}}
        ]),
    );
    c.insert(
        "envFrom".into(),
        json!([{"configMapRef": {"name": format!("{name}-config")}}]),
    );
    c.insert(
        "resources".into(),
        json!({"limits": {"cpu": "1", "memory": "512Mi"}, "requests": {"cpu": "100m", "memory": "256Mi"}}),
    );
    let probe = |path: &str, delay: u32, period: u32| {
        json!({"httpGet": {"path": path, "port": "http", "scheme": "HTTP"},
            "initialDelaySeconds": delay, "timeoutSeconds": 1, "periodSeconds": period,
            "successThreshold": 1, "failureThreshold": 3})
    };
    c.insert("livenessProbe".into(), probe("/healthz", 10, 10));
    c.insert("readinessProbe".into(), probe("/readyz", 0, 5));
    c.insert("startupProbe".into(), probe("/healthz", 0, 2));
    c.insert(
        "securityContext".into(),
        json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": true, "runAsNonRoot": true, "runAsUser": 10001}),
    );
}

/// A template container with the API server's defaults, the mounts the pod adds, and (for a
/// benchmark pod) the usual env, ports, resources and probes.
fn app_container(c: &Value, extra_mounts: &[Value], rich: bool) -> Value {
    let mut c = c.as_object().cloned().unwrap_or_default();
    let name = c
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if rich {
        enrich(&mut c, &name);
    }
    let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
    let pull = if image.ends_with(":latest") || !image.contains(':') {
        "Always"
    } else {
        "IfNotPresent"
    };
    c.entry("imagePullPolicy").or_insert_with(|| json!(pull));
    c.entry("resources").or_insert_with(|| json!({}));
    c.entry("terminationMessagePath")
        .or_insert_with(|| json!("/dev/termination-log"));
    c.entry("terminationMessagePolicy")
        .or_insert_with(|| json!("File"));
    let mounts = c.entry("volumeMounts").or_insert_with(|| json!([]));
    if let Some(m) = mounts.as_array_mut() {
        m.extend(extra_mounts.iter().cloned());
    }
    Value::Object(c)
}

fn has_resources(c: &Value) -> bool {
    c["resources"].as_object().is_some_and(|r| {
        r.values()
            .any(|v| v.as_object().is_some_and(|m| !m.is_empty()))
    })
}

fn names_of(containers: &[Value]) -> Vec<&str> {
    containers
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect()
}

fn condition(kind: &str, ok: bool, since: DateTime<Utc>, why: Option<(&str, String)>) -> Value {
    let mut c = json!({
        "type": kind, "status": if ok { "True" } else { "False" },
        "lastProbeTime": null, "lastTransitionTime": at(since),
    });
    if let Some((reason, message)) = why {
        c["reason"] = json!(reason);
        c["message"] = json!(message);
    }
    c
}

/// The kubelet's view of the pod: phase, conditions and container statuses.
fn status(
    plan: &Plan<'_>,
    uid: &str,
    init_containers: &[Value],
    containers: &[Value],
    pod_ip: &str,
) -> Value {
    let c = plan.created;
    let s = |n: i64| c + Duration::seconds(n);
    let status_of = |container: &Value| {
        let image = container["image"].as_str().unwrap_or_default();
        let name = container["name"].as_str().unwrap_or_default();
        json!({
            "name": name,
            "image": normalized_image(image),
            "imageID": image_id(image),
            "containerID": container_id(uid, name),
            "lastState": {},
            "restartCount": 0,
        })
    };
    let mut conditions = vec![condition("PodReadyToStartContainers", true, s(2), None)];
    let (phase, init_statuses, statuses) = match plan.phase {
        Phase::Running { init_done } => {
            let initialized = if init_containers.is_empty() {
                c
            } else {
                init_done
            };
            let ready = initialized + Duration::seconds(4);
            conditions.push(condition("Initialized", true, initialized, None));
            conditions.push(condition("Ready", true, ready, None));
            conditions.push(condition("ContainersReady", true, ready, None));
            let init: Vec<Value> = init_containers
                .iter()
                .map(|ic| {
                    let mut st = status_of(ic);
                    st["ready"] = json!(true);
                    st["started"] = json!(false);
                    st["state"] = json!({"terminated": {
                        "exitCode": 0, "reason": "Completed",
                        "startedAt": at(s(3)), "finishedAt": at(init_done),
                        "containerID": st["containerID"].clone()
                    }});
                    st
                })
                .collect();
            let running: Vec<Value> = containers
                .iter()
                .map(|ct| {
                    let mut st = status_of(ct);
                    st["ready"] = json!(true);
                    st["started"] = json!(true);
                    st["state"] =
                        json!({"running": {"startedAt": at(initialized + Duration::seconds(1))}});
                    st
                })
                .collect();
            ("Running", init, running)
        }
        Phase::WaitingForAgent => {
            let incomplete = names_of(init_containers).join(" ");
            let unready = names_of(containers).join(" ");
            conditions.push(condition(
                "Initialized",
                false,
                c,
                Some((
                    "ContainersNotInitialized",
                    format!("containers with incomplete status: [{incomplete}]"),
                )),
            ));
            let not_ready = || {
                Some((
                    "ContainersNotReady",
                    format!("containers with unready status: [{unready}]"),
                ))
            };
            conditions.push(condition("Ready", false, c, not_ready()));
            conditions.push(condition("ContainersReady", false, c, not_ready()));
            let init: Vec<Value> = init_containers
                .iter()
                .map(|ic| {
                    let mut st = status_of(ic);
                    st["ready"] = json!(false);
                    st["started"] = json!(true);
                    st["state"] = json!({"running": {"startedAt": at(s(3))}});
                    st
                })
                .collect();
            let waiting: Vec<Value> = containers
                .iter()
                .map(|ct| {
                    let image = ct["image"].as_str().unwrap_or_default();
                    json!({
                        "name": ct["name"], "image": normalized_image(image), "imageID": "",
                        "lastState": {}, "ready": false, "restartCount": 0, "started": false,
                        "state": {"waiting": {"reason": "PodInitializing"}}
                    })
                })
                .collect();
            ("Pending", init, waiting)
        }
    };
    conditions.push(condition("PodScheduled", true, c, None));
    let host_ip = NODES[plan.node % NODES.len()].1;
    let burstable = init_containers.iter().chain(containers).any(has_resources);
    let mut st = json!({
        "phase": phase,
        "conditions": conditions,
        "hostIP": host_ip, "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip, "podIPs": [{"ip": pod_ip}],
        "startTime": at(c),
        "containerStatuses": statuses,
        "qosClass": if burstable { "Burstable" } else { "BestEffort" },
    });
    if !init_statuses.is_empty() {
        st["initContainerStatuses"] = json!(init_statuses);
    }
    st
}

/// The pod `plan` describes (without `resourceVersion`, which the world sets).
pub(crate) fn build(plan: &Plan<'_>) -> Value {
    let (ns, name) = (plan.ns, plan.name.as_str());
    let uid = stable_uid("Pod", ns, name);
    let template_meta = &plan.template["metadata"];
    let template_spec = &plan.template["spec"];
    let mut labels = template_meta["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut annotations = template_meta["annotations"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let owner_ref = |api: &str, kind: &str, owner: &str| {
        json!([{
            "apiVersion": api, "kind": kind, "name": owner,
            "uid": stable_uid(kind, ns, owner),
            "controller": true, "blockOwnerDeletion": true
        }])
    };
    let (owner_refs, generate_name) = match &plan.owner {
        Owner::ReplicaSet { name: rs, hash } => {
            labels.insert("pod-template-hash".into(), json!(hash));
            (
                Some(owner_ref("apps/v1", "ReplicaSet", rs)),
                Some(rs.clone()),
            )
        }
        Owner::StatefulSet {
            name: sts,
            revision,
            ordinal,
        } => {
            labels.insert("controller-revision-hash".into(), json!(revision));
            labels.insert("statefulset.kubernetes.io/pod-name".into(), json!(name));
            labels.insert(
                "apps.kubernetes.io/pod-index".into(),
                json!(ordinal.to_string()),
            );
            (
                Some(owner_ref("apps/v1", "StatefulSet", sts)),
                Some(sts.clone()),
            )
        }
        Owner::DaemonSet { name: ds, hash } => {
            labels.insert("controller-revision-hash".into(), json!(hash));
            labels.insert("pod-template-generation".into(), json!("1"));
            (
                Some(owner_ref("apps/v1", "DaemonSet", ds)),
                Some(ds.clone()),
            )
        }
        Owner::Job { name: job } => {
            let job_uid = stable_uid("Job", ns, job);
            for (k, v) in [
                ("batch.kubernetes.io/controller-uid", job_uid.as_str()),
                ("batch.kubernetes.io/job-name", job.as_str()),
                ("controller-uid", job_uid.as_str()),
                ("job-name", job.as_str()),
            ] {
                labels.insert(k.into(), json!(v));
            }
            (Some(owner_ref("batch/v1", "Job", job)), Some(job.clone()))
        }
        Owner::Bare => (None, None),
    };
    let template_annotations = Value::Object(annotations.clone());
    let inj = injector(&template_annotations);
    if let Some(inj) = inj {
        annotations.insert(
            format!("{}/agent-inject-status", inj.prefix),
            json!("injected"),
        );
    }
    let pre_populate_only = inj.is_some_and(|i| {
        template_annotations[format!("{}/agent-pre-populate-only", i.prefix)] == "true"
    });

    let api_volume = format!("kube-api-access-{}", suffix(&uid, 5));
    let api_mount = json!({"name": api_volume, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true});
    let mut extra_mounts = Vec::new();
    if plan.rich {
        extra_mounts.push(json!({"name": "tmp", "mountPath": "/tmp"}));
        extra_mounts.push(json!({"name": "config", "mountPath": "/etc/app", "readOnly": true}));
    }
    if inj.is_some() {
        extra_mounts.push(json!({"name": "vault-secrets", "mountPath": "/vault/secrets"}));
    }
    extra_mounts.push(api_mount.clone());
    let mut containers: Vec<Value> = template_spec["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| app_container(c, &extra_mounts, plan.rich))
        .collect();
    let mut init_containers: Vec<Value> = template_spec["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| app_container(c, std::slice::from_ref(&api_mount), false))
        .collect();
    let mut volumes: Vec<Value> = template_spec["volumes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if plan.rich {
        volumes.push(json!({"name": "tmp", "emptyDir": {}}));
        volumes.push(json!({"name": "config", "configMap": {"name": format!("{}-config", generate_name.as_deref().unwrap_or(name)), "defaultMode": 420}}));
    }
    if let Some(inj) = inj {
        init_containers.push(agent_container(
            inj,
            &template_annotations,
            true,
            &api_mount,
        ));
        volumes.push(json!({"name": "home-init", "emptyDir": {"medium": "Memory"}}));
        if !pre_populate_only {
            containers.push(agent_container(
                inj,
                &template_annotations,
                false,
                &api_mount,
            ));
            volumes.push(json!({"name": "home-sidecar", "emptyDir": {"medium": "Memory"}}));
        }
        volumes.push(json!({"name": "vault-secrets", "emptyDir": {"medium": "Memory"}}));
    }
    volumes.push(json!({"name": api_volume, "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
    ]}}));

    let (node, _) = NODES[plan.node % NODES.len()];
    let sa = template_spec["serviceAccountName"]
        .as_str()
        .unwrap_or("default");
    let restart = template_spec["restartPolicy"].as_str().unwrap_or("Always");
    let mut spec = json!({
        "volumes": volumes,
        "containers": containers,
        "restartPolicy": restart,
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "serviceAccountName": sa,
        "serviceAccount": sa,
        "nodeName": node,
        "securityContext": {},
        "schedulerName": "default-scheduler",
        "tolerations": [
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
        ],
        "priority": 0,
        "enableServiceLinks": true,
        "preemptionPolicy": "PreemptLowerPriority"
    });
    if !init_containers.is_empty() {
        spec["initContainers"] = json!(init_containers);
    }
    match &plan.owner {
        Owner::StatefulSet { name: sts, .. } => {
            spec["hostname"] = json!(name);
            spec["subdomain"] = json!(sts);
        }
        Owner::DaemonSet { .. } => {
            spec["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]
            }}});
        }
        _ => {}
    }

    let d = digest(&uid);
    let pod_ip = format!(
        "10.244.{}.{}",
        plan.node % NODES.len() + 1,
        2 + usize::from(d[0]) % 250
    );
    let status = status(plan, &uid, &init_containers, &containers, &pod_ip);
    let mut metadata = json!({
        "name": name, "namespace": ns, "uid": uid,
        "creationTimestamp": at(plan.created),
        "labels": labels,
    });
    if !annotations.is_empty() {
        metadata["annotations"] = Value::Object(annotations);
    }
    if let Some(refs) = owner_refs {
        metadata["ownerReferences"] = refs;
    }
    if let Some(g) = generate_name.filter(|_| !matches!(plan.owner, Owner::StatefulSet { .. })) {
        metadata["generateName"] = json!(format!("{g}-"));
    }
    json!({
        "kind": "Pod", "apiVersion": "v1",
        "metadata": metadata, "spec": spec, "status": status
    })
}
