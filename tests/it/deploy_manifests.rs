//! The deployment artefacts in `deploy/` agree with the code and with Kubernetes.
//!
//! Every manifest, and what `kubectl kustomize` renders from each kustomization, is valid
//! against the Kubernetes schemas (`kubernetes-validate`) and parses into its Kubernetes type
//! without losing a field; the base's kustomization lists exactly the manifests in `base/`, and
//! the examples in `extras/` stay out of every kustomization; the example config is what the
//! binary accepts and is what the ConfigMap ships; the Deployment is restricted, probes the
//! bot's endpoints, trusts Vault's CA from an optional Secret and sets only variables the binary
//! reads (derived from `src/config/cli.rs` itself); the NetworkPolicy, the scrape annotations,
//! the ServiceMonitor and the Ingress name the port the bot listens on; the RBAC grants exactly
//! the Kubernetes calls the code makes, scoped and named as tightly as RBAC allows.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Namespace, PersistentVolumeClaim, PodSpec, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy, NetworkPolicyPort};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use vault_triage::approval::Policy;
use vault_triage::config::{DEFAULT_LISTEN, FileConfig};

/// The bot's namespace and ServiceAccount.
const BOT_NAMESPACE: &str = "vault-triage";
const BOT_SERVICE_ACCOUNT: &str = "vault-triage";
/// The Lease the replicas elect a leader with.
const LEADER_LEASE: &str = "vault-triage-leader";
/// The example namespace where restarts are allowed.
const RESTART_NAMESPACE: &str = "production";
/// The Secret holding the bot's credentials.
const SECRETS: &str = "vault-triage-secrets";
/// Where the Deployment mounts the config file.
const CONFIG_PATH: &str = "/etc/vault-triage/config.toml";
/// Variables the Deployment sets for leader election (downward API), not read by clap.
const POD_IDENTITY_VARS: [&str; 2] = ["POD_NAME", "POD_NAMESPACE"];
/// The optional Secret holding the CA of Vault's certificate, and its key.
const VAULT_CA_SECRET: &str = "vault-ca";
const VAULT_CA_KEY: &str = "ca.crt";
/// The directory of the manifests that `deploy/` and `deploy/ha/` build on.
const BASE: &str = "base";
/// PostgreSQL's port, which the overlay for several replicas opens egress to.
const POSTGRES_PORT: i32 = 5432;

// ---------------------------------------------------------------------------------------------
// Reading deploy/

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn deploy_dir() -> PathBuf {
    repo().join("deploy")
}

fn read(relative: &str) -> String {
    let path = deploy_dir().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The base's manifests: every `deploy/base/*.yaml` but the kustomization itself, by file name.
fn manifest_files() -> BTreeSet<String> {
    std::fs::read_dir(deploy_dir().join(BASE))
        .expect("deploy/base/ exists")
        .map(|e| {
            e.expect("a readable entry")
                .file_name()
                .into_string()
                .unwrap()
        })
        .filter(|n| (n.ends_with(".yaml") || n.ends_with(".yml")) && n != "kustomization.yaml")
        .collect()
}

/// The YAML documents of a text (split on `---` lines), skipping ones with only comments.
fn parse_documents(text: &str, what: &str) -> Vec<Value> {
    text.split("\n---")
        .filter(|doc| {
            doc.lines()
                .map(str::trim)
                .any(|l| !l.is_empty() && !l.starts_with('#') && l != "---")
        })
        .map(|doc| {
            serde_saphyr::from_str::<Value>(doc)
                .unwrap_or_else(|e| panic!("{what} is not valid YAML: {e}\n{doc}"))
        })
        .collect()
}

/// The YAML documents of a file under `deploy/`.
fn documents(relative: &str) -> Vec<Value> {
    parse_documents(&read(relative), relative)
}

/// Every object of every manifest file of the base, with the file it came from.
fn objects() -> Vec<(String, Value)> {
    manifest_files()
        .into_iter()
        .map(|f| format!("{BASE}/{f}"))
        .flat_map(|f| documents(&f).into_iter().map(move |d| (f.clone(), d)))
        .collect()
}

fn typed<T: k8s_openapi::Resource + DeserializeOwned>() -> Vec<T> {
    objects()
        .into_iter()
        .filter(|(_, v)| v["kind"] == T::KIND)
        .map(|(f, v)| {
            serde_json::from_value(v).unwrap_or_else(|e| panic!("{f}: not a {}: {e}", T::KIND))
        })
        .collect()
}

fn the_one<T: k8s_openapi::Resource + DeserializeOwned>() -> T {
    let mut all = typed::<T>();
    assert_eq!(all.len(), 1, "exactly one {} in deploy/", T::KIND);
    all.remove(0)
}

/// Parses `value` as `T` and serializes it back: what the API server would see.
fn through<T: DeserializeOwned + Serialize>(value: &Value) -> Result<Value, String> {
    let object: T = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
    serde_json::to_value(&object).map_err(|e| e.to_string())
}

fn through_its_type(value: &Value) -> Result<Value, String> {
    match value["kind"].as_str().unwrap_or_default() {
        "Namespace" => through::<Namespace>(value),
        "ServiceAccount" => through::<ServiceAccount>(value),
        "ClusterRole" => through::<ClusterRole>(value),
        "ClusterRoleBinding" => through::<ClusterRoleBinding>(value),
        "Role" => through::<Role>(value),
        "RoleBinding" => through::<RoleBinding>(value),
        "Deployment" => through::<Deployment>(value),
        "Service" => through::<Service>(value),
        "ConfigMap" => through::<ConfigMap>(value),
        "PersistentVolumeClaim" => through::<PersistentVolumeClaim>(value),
        "NetworkPolicy" => through::<NetworkPolicy>(value),
        "PodDisruptionBudget" => through::<PodDisruptionBudget>(value),
        "Ingress" => through::<Ingress>(value),
        other => Err(format!("unexpected kind {other:?}")),
    }
}

fn example_config_text() -> String {
    read("config.example.toml")
}

fn example_config() -> FileConfig {
    FileConfig::parse(&example_config_text()).expect("deploy/config.example.toml parses")
}

// ---------------------------------------------------------------------------------------------
// Manifests and kustomization

#[test]
fn every_manifest_parses_into_its_kubernetes_type_without_losing_a_field() {
    // The base, the overlay's own objects and the extras; custom resources have no type here
    // (the ServiceMonitor has a test of its own).
    let all: Vec<(String, Value)> = yaml_files()
        .into_iter()
        .filter(|(_, role)| *role == FileRole::Manifest)
        .flat_map(|(f, _)| documents(&f).into_iter().map(move |d| (f.clone(), d)))
        .filter(|(_, v)| custom_resource(v).is_none())
        .collect();
    assert!(
        all.len() > objects().len(),
        "deploy/ has manifests beyond the base"
    );
    for (file, value) in all {
        let name = value["metadata"]["name"].clone();
        match through_its_type(&value) {
            Ok(back) => assert_eq!(
                back, value,
                "{file}: {name} changes when read as {}: a misspelt or misplaced field",
                value["kind"]
            ),
            Err(e) => panic!("{file}: {name}: {e}"),
        }
    }
}

/// The `resources:` of a kustomization, as written.
fn kustomization_resources(relative: &str) -> Vec<String> {
    let kustomization = documents(relative).remove(0);
    serde_json::from_value(kustomization["resources"].clone())
        .unwrap_or_else(|e| panic!("{relative}: resources is a list of paths: {e}"))
}

#[test]
fn the_kustomization_lists_every_manifest_and_nothing_else() {
    let listed = kustomization_resources("base/kustomization.yaml");
    let unique: BTreeSet<String> = listed.iter().cloned().collect();
    assert_eq!(unique.len(), listed.len(), "a file is listed twice");
    assert_eq!(unique, manifest_files());
    // deploy/ is the base as it is: kustomize refuses an overlay (deploy/ha/) that builds on
    // the directory containing it, hence the base in a directory of its own.
    assert_eq!(kustomization_resources("kustomization.yaml"), [BASE]);
}

#[test]
fn the_kustomization_does_not_move_resources_into_one_namespace() {
    // The reviewer Role lives in `vault` and the restarter binding in each restart namespace:
    // a kustomize `namespace:` would move them into the bot's namespace.
    for file in KUSTOMIZATIONS {
        let kustomization = documents(&format!("{file}kustomization.yaml")).remove(0);
        assert!(kustomization.get("namespace").is_none(), "{file}");
    }
}

#[test]
fn only_the_bots_namespace_is_created_and_every_other_one_is_documented() {
    // `vault` and `production` must exist already: the kustomization's comment says which
    // namespaces the manifests use and that they are not created.
    let created: BTreeSet<String> = typed::<Namespace>()
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert_eq!(created, BTreeSet::from([BOT_NAMESPACE.to_string()]));
    let used: BTreeSet<String> = objects()
        .iter()
        .filter_map(|(_, v)| v["metadata"]["namespace"].as_str().map(str::to_string))
        .collect();
    assert!(used.contains(RESTART_NAMESPACE), "{used:?}");
    let comment = read("base/kustomization.yaml");
    for namespace in &used {
        assert!(
            comment.contains(&format!("#   {namespace} ")),
            "base/kustomization.yaml does not list the namespace {namespace}"
        );
    }
}

#[test]
fn the_kustomization_sets_the_image_written_in_the_deployment() {
    let kustomization = documents("base/kustomization.yaml").remove(0);
    let images = kustomization["images"].as_array().expect("an images: list");
    assert_eq!(images.len(), 1);
    let image = &images[0];
    let written = container().image.expect("an image");
    let (name, _tag) = written.rsplit_once(':').expect("name:tag");
    assert_eq!(
        image["name"].as_str(),
        Some(name),
        "it names the placeholder"
    );
    let expected = format!(
        "{}:{}",
        image["newName"].as_str().expect("newName"),
        image["newTag"].as_str().expect("newTag, a string")
    );
    for dir in ["deploy", "deploy/ha"] {
        let rendered = rendered_kind(dir, "Deployment");
        let deployment: Deployment = serde_json::from_value(rendered).unwrap();
        let pod = deployment.spec.template.spec.unwrap();
        assert_eq!(
            pod.containers[0].image.as_deref(),
            Some(expected.as_str()),
            "{dir}"
        );
    }
}

#[test]
fn the_namespace_enforces_the_restricted_pod_security_standard() {
    let ns = the_one::<Namespace>();
    assert_eq!(ns.metadata.name.as_deref(), Some(BOT_NAMESPACE));
    let labels = ns.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels
            .get("pod-security.kubernetes.io/enforce")
            .map(String::as_str),
        Some("restricted")
    );
}

#[test]
fn the_canary_service_account_is_never_mounted_into_a_pod() {
    let config = example_config();
    let accounts = typed::<ServiceAccount>();
    let canary = accounts
        .iter()
        .find(|sa| sa.metadata.name.as_deref() == Some(config.canary.service_account.as_str()))
        .expect("the canary ServiceAccount is shipped");
    assert_eq!(
        canary.metadata.namespace.as_deref(),
        Some(config.canary.namespace.as_str())
    );
    assert_eq!(canary.automount_service_account_token, Some(false));
    assert!(
        accounts
            .iter()
            .any(|sa| sa.metadata.name.as_deref() == Some(BOT_SERVICE_ACCOUNT))
    );
    assert_ne!(
        pod_spec().service_account_name.as_deref(),
        Some(config.canary.service_account.as_str())
    );
}

// ---------------------------------------------------------------------------------------------
// The config file

#[test]
fn the_example_config_parses_as_the_binary_reads_it() {
    let config = example_config();
    assert_eq!(config.auth_mount(), "kubernetes");
    assert!(config.reviewer.is_some(), "the example shows [reviewer]");
    let actions: BTreeSet<&str> = config.approvals.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(
        actions,
        BTreeSet::from(["reconfigure-auth", "restart-deployments", "resync-secrets"])
    );
}

#[test]
fn every_approver_of_the_example_can_approve_from_each_platform_its_rule_accepts() {
    // A rule with a `discord-role:` takes approvals on Discord: a listed person with only a
    // Slack id could then never approve a Discord request (nor the role holder a Slack one),
    // since across platforms only two listed people count (design §11.5).
    let config = example_config();
    let policy = Policy::from_config(&config.approvals, &config.people).expect("the policy");
    assert_eq!(
        policy.warnings(),
        Vec::<String>::new(),
        "a rule can never reach its quorum"
    );
    for rule in &config.approvals {
        if !rule.approvers.iter().any(|a| a.starts_with("discord")) {
            continue;
        }
        for person in config
            .people
            .iter()
            .filter(|p| rule.approvers.contains(&p.name))
        {
            assert!(
                person.slack.is_some() && person.discord.is_some(),
                "{} approves {} but lacks an id on one platform",
                person.name,
                rule.action
            );
        }
    }
}

#[test]
fn the_example_config_shows_every_section() {
    let table: toml::Table = example_config_text().parse().unwrap();
    let sections: BTreeSet<&str> = table.keys().map(String::as_str).collect();
    let expected = BTreeSet::from([
        "vault",
        "canary",
        "reviewer",
        "probes",
        "alerts",
        "chat",
        "approvals",
        "people",
        "state",
    ]);
    assert_eq!(sections, expected);
}

#[test]
fn the_configmap_ships_the_example_config_unchanged() {
    let cm = the_one::<ConfigMap>();
    let data = cm.data.unwrap_or_default();
    let shipped = data.get("config.toml").expect("key config.toml");
    assert_eq!(shipped, &example_config_text());
    FileConfig::parse(shipped).expect("the ConfigMap's config.toml parses");
}

#[test]
fn the_example_config_carries_no_alert_credentials() {
    // It is shipped in a ConfigMap: credentials belong in a Secret.
    let alerts = example_config().alerts;
    assert!(alerts.tokens.is_empty() && alerts.basic.is_empty());
    assert!(alerts.grafana_hmac_secret.is_none());
}

// ---------------------------------------------------------------------------------------------
// The Deployment and the Service

fn deployment() -> Deployment {
    the_one::<Deployment>()
}

fn pod_spec() -> PodSpec {
    deployment().spec.template.spec.expect("a pod template")
}

fn container() -> Container {
    let mut containers = pod_spec().containers;
    assert_eq!(containers.len(), 1, "one container");
    containers.remove(0)
}

fn container_port() -> i32 {
    let ports = container().ports.unwrap_or_default();
    assert_eq!(ports.len(), 1, "one container port");
    ports[0].container_port
}

/// A probe or Service port, resolved against the container's ports.
fn resolve(port: &IntOrString) -> i32 {
    match port {
        IntOrString::Int(n) => *n,
        IntOrString::String(name) => {
            container()
                .ports
                .unwrap_or_default()
                .iter()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .unwrap_or_else(|| panic!("no container port named {name:?}"))
                .container_port
        }
    }
}

fn env() -> Vec<k8s_openapi::api::core::v1::EnvVar> {
    container().env.unwrap_or_default()
}

fn env_value(name: &str) -> Option<String> {
    env()
        .into_iter()
        .find(|e| e.name == name)
        .and_then(|e| e.value)
}

/// The environment variables the binary reads: every `env = "…"` in `src/config/cli.rs`
/// (clap's command line, the only place that reads the environment), and those among them
/// whose values clap is told to hide (`hide_env_values`): the secrets.
fn variables_the_binary_reads() -> (BTreeSet<String>, BTreeSet<String>) {
    let source = std::fs::read_to_string(repo().join("src/config/cli.rs")).unwrap();
    let mut all = BTreeSet::new();
    let mut secret = BTreeSet::new();
    for line in source.lines() {
        let Some((_, rest)) = line.split_once("env = \"") else {
            continue;
        };
        let name = rest.split('"').next().unwrap().to_string();
        if line.contains("hide_env_values = true") {
            secret.insert(name.clone());
        }
        all.insert(name);
    }
    assert!(all.contains("VAULT_ADDR") && secret.contains("VAULT_TOKEN"));
    (all, secret)
}

#[test]
fn the_deployment_runs_one_replica_on_a_read_write_once_claim_as_the_bot_service_account() {
    let d = deployment();
    assert_eq!(d.metadata.namespace.as_deref(), Some(BOT_NAMESPACE));
    assert_eq!(d.spec.replicas, Some(1));
    // The old pod lets go of the claim before the new one mounts it.
    assert_eq!(
        d.spec.strategy.as_ref().and_then(|s| s.type_.as_deref()),
        Some("Recreate")
    );
    let claim = the_one::<PersistentVolumeClaim>();
    assert_eq!(
        claim.spec.unwrap().access_modes,
        Some(vec!["ReadWriteOnce".to_string()]),
        "any default storage class provides it"
    );
    assert_eq!(
        env_value("VAULT_TRIAGE_LEADER_ELECTION"),
        None,
        "one replica elects nobody"
    );
    let pod = pod_spec();
    assert_eq!(
        pod.service_account_name.as_deref(),
        Some(BOT_SERVICE_ACCOUNT)
    );
    assert_eq!(pod.automount_service_account_token, Some(true));
}

#[test]
fn the_pod_security_context_is_restricted() {
    let pod = pod_spec().security_context.expect("a pod security context");
    assert_eq!(pod.run_as_non_root, Some(true));
    assert_eq!(
        pod.seccomp_profile.map(|s| s.type_).as_deref(),
        Some("RuntimeDefault")
    );
}

#[test]
fn the_container_security_context_is_restricted() {
    let sc = container()
        .security_context
        .expect("a container security context");
    assert_eq!(sc.run_as_non_root, Some(true));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_ne!(sc.privileged, Some(true));
    let caps = sc.capabilities.expect("capabilities");
    assert_eq!(caps.drop, Some(vec!["ALL".to_string()]));
    assert!(caps.add.unwrap_or_default().is_empty());
    assert_eq!(
        sc.seccomp_profile.map(|s| s.type_).as_deref(),
        Some("RuntimeDefault")
    );
}

#[test]
fn the_container_runs_as_the_image_user() {
    let dockerfile = read("Dockerfile");
    let user = dockerfile
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER line");
    let uid: i64 = user.split(':').next().unwrap().trim().parse().unwrap();
    assert_eq!(uid, 65532);
    let sc = container().security_context.unwrap();
    assert_eq!(sc.run_as_user, Some(uid));
}

#[test]
fn the_image_runs_serve_from_a_locked_release_build() {
    let dockerfile = read("Dockerfile");
    let froms: Vec<&str> = dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("FROM "))
        .collect();
    assert_eq!(froms.len(), 2, "a builder stage and a final stage");
    assert!(froms[0].starts_with("rust:1-bookworm"));
    assert_eq!(froms[1], "gcr.io/distroless/cc-debian12:nonroot");
    assert!(dockerfile.contains("cargo build --release --locked"));
    assert!(dockerfile.contains(r#"ENTRYPOINT ["/vault-triage", "serve"]"#));
    assert!(
        dockerfile
            .lines()
            .any(|l| l == format!("EXPOSE {}", container_port()))
    );
    // The Deployment keeps the image's entrypoint.
    assert!(container().command.is_none() && container().args.is_none());
}

#[test]
fn the_container_port_is_the_one_serve_listens_on_by_default() {
    let listen: SocketAddr = DEFAULT_LISTEN.parse().unwrap();
    assert_eq!(container_port(), i32::from(listen.port()));
    assert!(
        env_value("VAULT_TRIAGE_LISTEN").is_none(),
        "the default is kept"
    );
}

#[test]
fn the_probes_ask_healthz_and_readyz_on_the_container_port() {
    let c = container();
    for (probe, path) in [
        (c.liveness_probe, "/healthz"),
        (c.readiness_probe, "/readyz"),
    ] {
        let get = probe
            .and_then(|p| p.http_get)
            .unwrap_or_else(|| panic!("an HTTP probe on {path}"));
        assert_eq!(get.path.as_deref(), Some(path));
        assert_eq!(resolve(&get.port), container_port());
        assert!(get.scheme.is_none_or(|s| s == "HTTP"));
    }
}

#[test]
fn the_container_has_resource_requests_and_limits() {
    let resources = container().resources.expect("resources");
    for (what, list) in [
        ("requests", resources.requests),
        ("limits", resources.limits),
    ] {
        let list = list.unwrap_or_else(|| panic!("no {what}"));
        assert!(list.contains_key("cpu"), "{what}.cpu");
        assert!(list.contains_key("memory"), "{what}.memory");
    }
}

#[test]
fn every_variable_the_deployment_sets_is_one_the_binary_reads() {
    let (known, _) = variables_the_binary_reads();
    for var in env() {
        assert!(
            known.contains(&var.name) || POD_IDENTITY_VARS.contains(&var.name.as_str()),
            "{} is not read by the binary (src/config/cli.rs)",
            var.name
        );
    }
}

#[test]
fn secrets_come_from_the_secret_and_never_from_literal_values() {
    let (_, secret) = variables_the_binary_reads();
    let set: BTreeMap<String, _> = env().into_iter().map(|e| (e.name.clone(), e)).collect();
    for name in ["VAULT_TOKEN", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"] {
        assert!(set.contains_key(name), "{name} is set");
    }
    assert!(set.keys().any(|k| k.starts_with("DISCORD_")));
    for (name, var) in &set {
        let from_secret = var
            .value_from
            .as_ref()
            .and_then(|f| f.secret_key_ref.as_ref());
        if secret.contains(name) {
            assert!(var.value.is_none(), "{name} has a literal value");
            let r = from_secret.unwrap_or_else(|| panic!("{name} must come from a Secret"));
            assert_eq!(r.name, SECRETS);
            assert_eq!(&r.key, name);
        }
        if let Some(r) = from_secret {
            assert_eq!(r.name, SECRETS, "{name}");
            // Only the Vault token is required; chat keys are optional per platform.
            assert_eq!(r.optional.unwrap_or(false), name != "VAULT_TOKEN", "{name}");
        }
    }
}

#[test]
fn the_pod_identity_comes_from_the_downward_api() {
    let set: BTreeMap<String, _> = env().into_iter().map(|e| (e.name.clone(), e)).collect();
    for (name, field) in [
        ("POD_NAME", "metadata.name"),
        ("POD_NAMESPACE", "metadata.namespace"),
    ] {
        let path = set
            .get(name)
            .and_then(|e| e.value_from.as_ref())
            .and_then(|f| f.field_ref.as_ref())
            .map(|f| f.field_path.clone());
        assert_eq!(path.as_deref(), Some(field), "{name}");
    }
}

#[test]
fn logs_are_json_and_vault_is_addressed() {
    assert_eq!(
        env_value("VAULT_TRIAGE_LOG_FORMAT").as_deref(),
        Some("json")
    );
    let addr = env_value("VAULT_ADDR").expect("VAULT_ADDR");
    assert!(addr.starts_with("https://") || addr.starts_with("http://"));
}

/// The volume mounted at the deepest mount point containing `path`.
fn volume_holding(path: &Path) -> k8s_openapi::api::core::v1::Volume {
    let mounts = container().volume_mounts.unwrap_or_default();
    let mount = mounts
        .iter()
        .filter(|m| path.starts_with(&m.mount_path))
        .max_by_key(|m| m.mount_path.len())
        .unwrap_or_else(|| panic!("nothing is mounted at {}", path.display()));
    pod_spec()
        .volumes
        .unwrap_or_default()
        .into_iter()
        .find(|v| v.name == mount.name)
        .unwrap_or_else(|| panic!("no volume {}", mount.name))
}

#[test]
fn the_config_file_is_mounted_from_the_configmap_where_vault_triage_config_points() {
    assert_eq!(
        env_value("VAULT_TRIAGE_CONFIG").as_deref(),
        Some(CONFIG_PATH)
    );
    let volume = volume_holding(Path::new(CONFIG_PATH));
    let source = volume.config_map.expect("a ConfigMap volume");
    assert_eq!(
        Some(source.name),
        the_one::<ConfigMap>().metadata.name,
        "the shipped ConfigMap"
    );
    let items = source.items.unwrap_or_default();
    assert!(
        items.is_empty()
            || items
                .iter()
                .any(|i| i.key == "config.toml" && i.path == "config.toml")
    );
}

#[test]
fn the_state_dir_is_on_a_writable_volume() {
    let dir = example_config().state.dir;
    let mounts = container().volume_mounts.unwrap_or_default();
    let mount = mounts
        .iter()
        .find(|m| Path::new(&m.mount_path) == dir)
        .expect("state.dir is a mount point");
    assert_ne!(mount.read_only, Some(true));
    let volume = volume_holding(&dir);
    assert!(volume.empty_dir.is_some() || volume.persistent_volume_claim.is_some());
}

#[test]
fn the_service_sends_port_80_to_the_container_port() {
    let service = the_one::<Service>();
    assert_eq!(service.metadata.namespace.as_deref(), Some(BOT_NAMESPACE));
    let spec = service.spec.expect("a spec");
    let ports = spec.ports.unwrap_or_default();
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0].port, 80);
    assert_eq!(
        resolve(ports[0].target_port.as_ref().expect("a targetPort")),
        container_port()
    );
    let pod_labels = deployment()
        .spec
        .template
        .metadata
        .and_then(|m| m.labels)
        .unwrap_or_default();
    let selector = spec.selector.expect("a selector");
    assert!(!selector.is_empty());
    for (k, v) in selector {
        assert_eq!(pod_labels.get(&k), Some(&v), "selector {k}={v}");
    }
}

#[test]
fn the_deployment_trusts_vaults_ca_from_an_optional_secret_where_vault_cacert_points() {
    let cacert = env_value("VAULT_CACERT").expect("VAULT_CACERT is set");
    let (known, _) = variables_the_binary_reads();
    assert!(known.contains("VAULT_CACERT"), "the binary reads it");
    let path = Path::new(&cacert);
    let mounts = container().volume_mounts.unwrap_or_default();
    let mount = mounts
        .iter()
        .find(|m| path.parent() == Some(Path::new(&m.mount_path)))
        .unwrap_or_else(|| panic!("the directory of {cacert} is a mount point"));
    assert_eq!(mount.read_only, Some(true), "mounted read-only");
    assert!(
        mount.sub_path.is_none(),
        "a whole volume, so a renewed CA shows"
    );
    let secret = volume_holding(path).secret.expect("a Secret volume");
    assert_eq!(secret.secret_name.as_deref(), Some(VAULT_CA_SECRET));
    // Without the Secret the pod still starts (for a Vault a public CA signs, once
    // VAULT_CACERT is deleted: deploy/README.md).
    assert_eq!(secret.optional, Some(true));
    let file = path.file_name().unwrap().to_str().unwrap();
    let items = secret.items.unwrap_or_default();
    assert_eq!(items.len(), 1);
    assert_eq!(
        (items[0].key.as_str(), items[0].path.as_str()),
        (VAULT_CA_KEY, file)
    );
}

#[test]
fn the_scrape_annotations_point_at_metrics_on_the_container_port() {
    let annotations = deployment()
        .spec
        .template
        .metadata
        .and_then(|m| m.annotations)
        .expect("pod template annotations");
    let get = |key: &str| {
        annotations
            .get(key)
            .unwrap_or_else(|| panic!("no annotation {key}"))
            .as_str()
    };
    assert_eq!(get("prometheus.io/scrape"), "true");
    assert_eq!(get("prometheus.io/path"), "/metrics");
    let port: i32 = get("prometheus.io/port").parse().expect("a port number");
    assert_eq!(port, container_port());
}

fn network_policy(name: &str, objects: &[Value]) -> NetworkPolicy {
    let value = objects
        .iter()
        .find(|v| v["kind"] == "NetworkPolicy" && v["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no NetworkPolicy {name}"));
    serde_json::from_value(value.clone()).expect("a NetworkPolicy")
}

/// The port and protocol of a NetworkPolicy port, named ports resolved against the container.
fn policy_port(port: &NetworkPolicyPort) -> (i32, String) {
    let number = resolve(port.port.as_ref().expect("a port, not all of them"));
    assert!(port.end_port.is_none(), "one port, not a range");
    (
        number,
        port.protocol.clone().unwrap_or_else(|| "TCP".into()),
    )
}

/// The ports egress rules open to any destination (no `to:`).
fn egress_ports_to_anywhere(policy: &NetworkPolicy) -> BTreeSet<(i32, String)> {
    let spec = policy.spec.clone().expect("a spec");
    spec.egress
        .unwrap_or_default()
        .iter()
        .filter(|rule| rule.to.as_ref().is_none_or(Vec::is_empty))
        .flat_map(|rule| rule.ports.clone().expect("ports, not all of them"))
        .map(|p| policy_port(&p))
        .collect()
}

/// The port of `VAULT_ADDR`: explicit, else the scheme's.
fn vault_port() -> i32 {
    let addr = env_value("VAULT_ADDR").expect("VAULT_ADDR");
    let (scheme, rest) = addr.split_once("://").expect("a URL");
    let authority = rest.split('/').next().unwrap();
    match authority.rsplit_once(':') {
        Some((_, port)) => port.parse().expect("a port number"),
        None if scheme == "https" => 443,
        None => 80,
    }
}

fn tcp(port: i32) -> (i32, String) {
    (port, "TCP".to_string())
}

#[test]
fn the_network_policy_admits_the_container_port_only() {
    let policy = network_policy("vault-triage", &typed_values("NetworkPolicy"));
    assert_eq!(policy.metadata.namespace.as_deref(), Some(BOT_NAMESPACE));
    let spec = policy.spec.expect("a spec");
    assert_eq!(
        spec.pod_selector.and_then(|s| s.match_labels),
        deployment().spec.selector.match_labels,
        "it selects the bot's pods"
    );
    let types = spec.policy_types.unwrap_or_default();
    assert!(types.contains(&"Ingress".to_string()) && types.contains(&"Egress".to_string()));
    let rules = spec.ingress.expect("ingress rules");
    assert!(!rules.is_empty());
    for rule in rules {
        let ports = rule.ports.expect("ports, never all of them");
        assert!(!ports.is_empty());
        for port in ports {
            assert_eq!(policy_port(&port), tcp(container_port()));
        }
    }
}

#[test]
fn the_network_policy_lets_the_bot_reach_dns_vault_the_api_server_chat_and_its_peers() {
    let policy = network_policy("vault-triage", &typed_values("NetworkPolicy"));
    let open = egress_ports_to_anywhere(&policy);
    let dns = [(53, "UDP".to_string()), tcp(53)];
    // Vault; the API server (the `kubernetes` Service, the API server's port behind it); the
    // Slack and Discord APIs.
    let needed = [tcp(vault_port()), tcp(443), tcp(6443)];
    for port in dns.iter().chain(&needed) {
        assert!(
            open.contains(port),
            "egress to {port:?} is not open: {open:?}"
        );
    }
    // A follower forwards to the leader's HTTP port (deploy/ha/).
    let pod_labels = deployment().spec.selector.match_labels;
    let peers = policy
        .spec
        .unwrap()
        .egress
        .unwrap_or_default()
        .into_iter()
        .filter(|rule| {
            rule.to.iter().flatten().any(|peer| {
                peer.namespace_selector.is_none()
                    && peer.pod_selector.as_ref().map(|s| &s.match_labels) == Some(&pod_labels)
            })
        })
        .flat_map(|rule| rule.ports.unwrap_or_default())
        .any(|port| policy_port(&port) == tcp(container_port()));
    assert!(peers, "no egress to the other replicas' HTTP port");
}

// ---------------------------------------------------------------------------------------------
// RBAC compared with the calls the code makes

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Scope {
    Cluster,
    Namespace(String),
}

/// One verb on one resource, in one scope, on one named object (or any).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Permission {
    group: String,
    resource: String,
    verb: String,
    scope: Scope,
    name: Option<String>,
}

fn allow(group: &str, resource: &str, verb: &str, scope: Scope, name: Option<&str>) -> Permission {
    Permission {
        group: group.into(),
        resource: resource.into(),
        verb: verb.into(),
        scope,
        name: name.map(Into::into),
    }
}

fn ns(name: &str) -> Scope {
    Scope::Namespace(name.into())
}

/// What the code asks of the API server, from `src/kube/client.rs` and `src/kube/restart.rs`,
/// with the names of the example config.
///
/// Not listed: SelfSubjectReview and SelfSubjectAccessReview (the reviewer checks, made as the
/// reviewer), which every authenticated user may create (system:basic-user).
fn permissions_the_code_needs(config: &FileConfig) -> BTreeSet<Permission> {
    use Scope::Cluster;
    let canary = &config.canary;
    let reviewer = config.reviewer.as_ref().expect("[reviewer]");
    let token_secret = reviewer.token_secret.as_deref().expect("token_secret");
    BTreeSet::from([
        // token_request: the canary token.
        allow(
            "",
            "serviceaccounts/token",
            "create",
            ns(&canary.namespace),
            Some(&canary.service_account),
        ),
        // token_review: the canary review, with the bot's identity.
        allow(
            "authentication.k8s.io",
            "tokenreviews",
            "create",
            Cluster,
            None,
        ),
        // cluster_ca: the cluster CA as published in the canary's namespace.
        allow(
            "",
            "configmaps",
            "get",
            ns(&canary.namespace),
            Some("kube-root-ca.crt"),
        ),
        // service_account_uid: does the reviewer ServiceAccount exist?
        allow(
            "",
            "serviceaccounts",
            "get",
            ns(&reviewer.namespace),
            Some(&reviewer.service_account),
        ),
        // secret_token: the reviewer token Secret, and no other Secret.
        allow(
            "",
            "secrets",
            "get",
            ns(&reviewer.namespace),
            Some(token_secret),
        ),
        // token_request: rotate-reviewer mints a fresh reviewer token.
        allow(
            "",
            "serviceaccounts/token",
            "create",
            ns(&reviewer.namespace),
            Some(&reviewer.service_account),
        ),
        // vault_workloads: the blast radius, every namespace.
        allow("apps", "deployments", "list", Cluster, None),
        allow("apps", "statefulsets", "list", Cluster, None),
        allow("apps", "daemonsets", "list", Cluster, None),
        allow("batch", "cronjobs", "list", Cluster, None),
        // vault_pods: the injector's pods (metadata of all, Pending ones in full).
        allow("", "pods", "list", Cluster, None),
        // secret_syncs and the CSI classes: the operators' objects, every namespace.
        allow("external-secrets.io", "secretstores", "list", Cluster, None),
        allow(
            "external-secrets.io",
            "clustersecretstores",
            "list",
            Cluster,
            None,
        ),
        allow(
            "external-secrets.io",
            "externalsecrets",
            "list",
            Cluster,
            None,
        ),
        allow("secrets.hashicorp.com", "vaultauths", "list", Cluster, None),
        allow(
            "secrets.hashicorp.com",
            "vaultstaticsecrets",
            "list",
            Cluster,
            None,
        ),
        allow(
            "secrets.hashicorp.com",
            "vaultdynamicsecrets",
            "list",
            Cluster,
            None,
        ),
        allow(
            "secrets.hashicorp.com",
            "vaultpkisecrets",
            "list",
            Cluster,
            None,
        ),
        allow(
            "secrets-store.csi.x-k8s.io",
            "secretproviderclasses",
            "list",
            Cluster,
            None,
        ),
        // workload and watch_workload: any namespace a restart may touch.
        allow("apps", "deployments", "get", Cluster, None),
        allow("apps", "deployments", "watch", Cluster, None),
        allow("apps", "statefulsets", "get", Cluster, None),
        allow("apps", "statefulsets", "watch", Cluster, None),
        allow("apps", "daemonsets", "get", Cluster, None),
        allow("apps", "daemonsets", "watch", Cluster, None),
        // restart (patch_workload): only where restarts are allowed.
        allow("apps", "deployments", "patch", ns(RESTART_NAMESPACE), None),
        allow("apps", "statefulsets", "patch", ns(RESTART_NAMESPACE), None),
        allow("apps", "daemonsets", "patch", ns(RESTART_NAMESPACE), None),
        // annotate_custom (resync-secrets): the namespaced objects only where restarts are
        // allowed; ClusterSecretStores are cluster-scoped.
        allow(
            "external-secrets.io",
            "secretstores",
            "patch",
            ns(RESTART_NAMESPACE),
            None,
        ),
        allow(
            "external-secrets.io",
            "externalsecrets",
            "patch",
            ns(RESTART_NAMESPACE),
            None,
        ),
        allow(
            "external-secrets.io",
            "clustersecretstores",
            "patch",
            Cluster,
            None,
        ),
        allow(
            "secrets.hashicorp.com",
            "vaultstaticsecrets",
            "patch",
            ns(RESTART_NAMESPACE),
            None,
        ),
        allow(
            "secrets.hashicorp.com",
            "vaultpkisecrets",
            "patch",
            ns(RESTART_NAMESPACE),
            None,
        ),
        // Leader election in the bot's namespace; `create` cannot be limited by name.
        allow(
            "coordination.k8s.io",
            "leases",
            "get",
            ns(BOT_NAMESPACE),
            Some(LEADER_LEASE),
        ),
        allow(
            "coordination.k8s.io",
            "leases",
            "update",
            ns(BOT_NAMESPACE),
            Some(LEADER_LEASE),
        ),
        allow(
            "coordination.k8s.io",
            "leases",
            "create",
            ns(BOT_NAMESPACE),
            None,
        ),
    ])
}

/// The rules a binding grants, expanded into single permissions.
fn expand(rules: &[PolicyRule], scope: &Scope) -> Vec<Permission> {
    let mut out = Vec::new();
    for rule in rules {
        assert!(
            rule.non_resource_urls.as_ref().is_none_or(Vec::is_empty),
            "no non-resource URLs are needed"
        );
        let names: Vec<Option<String>> = match &rule.resource_names {
            Some(names) if !names.is_empty() => names.iter().cloned().map(Some).collect(),
            _ => vec![None],
        };
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    for name in &names {
                        out.push(Permission {
                            group: group.clone(),
                            resource: resource.clone(),
                            verb: verb.clone(),
                            scope: scope.clone(),
                            name: name.clone(),
                        });
                    }
                }
            }
        }
    }
    out
}

/// Everything the shipped RBAC grants the bot, through every binding.
fn permissions_granted() -> BTreeSet<Permission> {
    let cluster_roles: BTreeMap<String, ClusterRole> = typed::<ClusterRole>()
        .into_iter()
        .map(|r| (r.metadata.name.clone().unwrap(), r))
        .collect();
    let roles: BTreeMap<(String, String), Role> = typed::<Role>()
        .into_iter()
        .map(|r| {
            let key = (
                r.metadata
                    .namespace
                    .clone()
                    .expect("a Role has a namespace"),
                r.metadata.name.clone().unwrap(),
            );
            (key, r)
        })
        .collect();
    let cluster_rules = |name: &str| {
        cluster_roles
            .get(name)
            .unwrap_or_else(|| panic!("no ClusterRole {name}"))
            .rules
            .clone()
            .unwrap_or_default()
    };
    let mut granted = BTreeSet::new();
    for binding in typed::<ClusterRoleBinding>() {
        assert_eq!(binding.role_ref.kind, "ClusterRole");
        granted.extend(expand(
            &cluster_rules(&binding.role_ref.name),
            &Scope::Cluster,
        ));
    }
    for binding in typed::<RoleBinding>() {
        let namespace = binding.metadata.namespace.clone().expect("a namespace");
        let rules = match binding.role_ref.kind.as_str() {
            "ClusterRole" => cluster_rules(&binding.role_ref.name),
            "Role" => roles
                .get(&(namespace.clone(), binding.role_ref.name.clone()))
                .unwrap_or_else(|| panic!("no Role {namespace}/{}", binding.role_ref.name))
                .rules
                .clone()
                .unwrap_or_default(),
            other => panic!("unexpected roleRef kind {other}"),
        };
        granted.extend(expand(&rules, &ns(&namespace)));
    }
    granted
}

fn covers(grant: &Permission, need: &Permission) -> bool {
    grant.group == need.group
        && grant.resource == need.resource
        && grant.verb == need.verb
        && (grant.name.is_none() || grant.name == need.name)
        && (grant.scope == Scope::Cluster || grant.scope == need.scope)
}

#[test]
fn every_permission_the_code_needs_is_granted() {
    let granted = permissions_granted();
    for need in permissions_the_code_needs(&example_config()) {
        assert!(
            granted.iter().any(|g| covers(g, &need)),
            "not granted: {need:?}"
        );
    }
}

#[test]
fn nothing_is_granted_that_the_code_does_not_need() {
    let needed = permissions_the_code_needs(&example_config());
    let extra: Vec<_> = permissions_granted().difference(&needed).cloned().collect();
    assert!(extra.is_empty(), "granted beyond need: {extra:#?}");
}

#[test]
fn no_rule_uses_a_wildcard() {
    let rules = typed::<ClusterRole>()
        .into_iter()
        .flat_map(|r| r.rules.unwrap_or_default())
        .chain(
            typed::<Role>()
                .into_iter()
                .flat_map(|r| r.rules.unwrap_or_default()),
        );
    for rule in rules {
        let words = rule
            .api_groups
            .iter()
            .chain(rule.resources.iter())
            .chain(rule.resource_names.iter())
            .flatten()
            .chain(rule.verbs.iter());
        for word in words {
            assert!(!word.contains('*'), "wildcard in {rule:?}");
        }
    }
}

#[test]
fn only_the_reviewer_token_secret_is_readable() {
    let reviewer = example_config().reviewer.unwrap();
    let secrets: Vec<_> = permissions_granted()
        .into_iter()
        .filter(|p| p.resource == "secrets")
        .collect();
    assert_eq!(
        secrets,
        vec![allow(
            "",
            "secrets",
            "get",
            ns(&reviewer.namespace),
            reviewer.token_secret.as_deref()
        )]
    );
}

#[test]
fn deployments_are_never_patched_at_cluster_scope() {
    for p in permissions_granted() {
        if p.resource == "deployments" && p.verb != "get" && p.verb != "list" && p.verb != "watch" {
            assert_ne!(p.scope, Scope::Cluster, "{p:?}");
        }
    }
    for binding in typed::<ClusterRoleBinding>() {
        assert_ne!(binding.role_ref.name, "vault-triage-restarter");
    }
}

#[test]
fn every_binding_is_for_the_bot_service_account_only() {
    let subjects = typed::<ClusterRoleBinding>()
        .into_iter()
        .map(|b| b.subjects)
        .chain(typed::<RoleBinding>().into_iter().map(|b| b.subjects));
    for subjects in subjects {
        let subjects = subjects.unwrap_or_default();
        assert_eq!(subjects.len(), 1);
        assert_eq!(subjects[0].kind, "ServiceAccount");
        assert_eq!(subjects[0].name, BOT_SERVICE_ACCOUNT);
        assert_eq!(subjects[0].namespace.as_deref(), Some(BOT_NAMESPACE));
    }
}

// ---------------------------------------------------------------------------------------------
// Vault, Alertmanager and Grafana

/// `path "…" { capabilities = [ … ] }` blocks of an HCL policy, comments skipped.
fn policy_paths(hcl: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in hcl.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
        if let Some(rest) = line.strip_prefix("path \"") {
            current = Some(rest.split('"').next().unwrap().to_string());
        } else if let Some(rest) = line.strip_prefix("capabilities") {
            let list = rest.split(['[', ']']).nth(1).expect("a list");
            let caps = list
                .split(',')
                .map(|c| c.trim().trim_matches('"').to_string())
                .filter(|c| !c.is_empty())
                .collect();
            out.insert(current.take().expect("capabilities inside a path"), caps);
        }
    }
    out
}

#[test]
fn the_vault_policy_grants_only_what_the_bot_reads_and_the_config_write() {
    let mount = example_config().auth_mount().to_string();
    let set = |caps: &[&str]| caps.iter().map(|c| c.to_string()).collect::<BTreeSet<_>>();
    let expected = BTreeMap::from([
        ("sys/auth".to_string(), set(&["read"])),
        (format!("auth/{mount}/config"), set(&["read", "update"])),
        (format!("auth/{mount}/role/*"), set(&["read"])),
        ("sys/monitor".to_string(), set(&["read"])),
    ]);
    assert_eq!(policy_paths(&read("vault/policy.hcl")), expected);
}

#[test]
fn the_canary_role_binds_only_the_canary_and_reads_only_its_secret() {
    let config = example_config();
    let script = read("vault/canary-role.sh");
    let canary = &config.canary;
    assert!(script.contains(&format!("auth/${{MOUNT}}/role/{}", canary.role)));
    assert!(script.contains(&format!(
        "bound_service_account_names={}",
        canary.service_account
    )));
    assert!(script.contains(&format!(
        "bound_service_account_namespaces={}",
        canary.namespace
    )));
    assert!(script.contains("token_ttl=60s"));
    let paths = policy_paths(&script);
    let secret = canary.secret_path.clone().expect("canary.secret_path");
    assert_eq!(
        paths,
        BTreeMap::from([(secret, BTreeSet::from(["read".to_string()]))])
    );
}

/// `http://<service>.<namespace>.svc` of the shipped Service (port 80 is the default).
fn service_url() -> String {
    let service = the_one::<Service>();
    format!(
        "http://{}.{}.svc",
        service.metadata.name.unwrap(),
        service.metadata.namespace.unwrap()
    )
}

#[test]
fn alertmanager_sends_resolved_alerts_with_a_bearer_token_file() {
    let config = documents("alertmanager/receiver.yaml").remove(0);
    let receivers = config["receivers"].as_array().expect("receivers");
    let hook = &receivers[0]["webhook_configs"][0];
    assert_eq!(
        hook["url"].as_str(),
        Some(format!("{}/alerts/alertmanager", service_url()).as_str())
    );
    assert_eq!(hook["send_resolved"], Value::Bool(true));
    let auth = &hook["http_config"]["authorization"];
    assert_eq!(auth["type"].as_str(), Some("Bearer"));
    assert!(auth["credentials_file"].is_string());
    assert!(auth.get("credentials").is_none(), "no inline token");
    let route = &config["route"]["routes"][0];
    assert_eq!(route["receiver"], receivers[0]["name"]);
}

#[test]
fn grafana_posts_with_a_bearer_token_from_its_environment() {
    let provisioning = documents("grafana/contact-point.yaml").remove(0);
    let receiver = &provisioning["contactPoints"][0]["receivers"][0];
    assert_eq!(receiver["type"].as_str(), Some("webhook"));
    let settings = &receiver["settings"];
    assert_eq!(
        settings["url"].as_str(),
        Some(format!("{}/alerts/grafana", service_url()).as_str())
    );
    assert_eq!(settings["authorization_scheme"].as_str(), Some("Bearer"));
    let credentials = settings["authorization_credentials"].as_str().unwrap();
    assert!(credentials.starts_with('$'), "interpolated, not inline");
}

// ---------------------------------------------------------------------------------------------
// The overlay for several replicas (deploy/ha/)

/// The overlay's patch of the Deployment, read as a Deployment (a partial one).
fn ha_deployment_patch() -> Deployment {
    let doc = documents("ha/deployment-patch.yaml").remove(0);
    serde_json::from_value(doc).expect("the patch reads as a Deployment")
}

#[test]
fn the_ha_overlay_builds_on_the_base_and_lists_files_that_exist() {
    let k = documents("ha/kustomization.yaml").remove(0);
    let resources: Vec<String> = serde_json::from_value(k["resources"].clone()).unwrap();
    assert_eq!(
        resources,
        ["../base", "pdb.yaml", "networkpolicy-postgres.yaml"]
    );
    let patches: Vec<String> = k["patches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap().to_string())
        .collect();
    for file in resources.iter().skip(1).chain(&patches) {
        assert!(deploy_dir().join("ha").join(file).is_file(), "ha/{file}");
    }
    assert!(k.get("namespace").is_none());
}

#[test]
fn the_ha_overlay_runs_two_replicas_on_postgres_with_leader_election_and_no_claim() {
    let base = deployment();
    let patch = ha_deployment_patch();
    assert_eq!(patch.metadata.name, base.metadata.name);
    assert_eq!(patch.metadata.namespace, base.metadata.namespace);
    let spec = patch.spec;
    assert_eq!(spec.replicas, Some(2));
    let pod = spec.template.spec.unwrap();
    let patched = &pod.containers[0];
    assert_eq!(patched.name, container().name);
    let env: BTreeMap<String, _> = patched
        .env
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.name.clone(), e))
        .collect();
    let (known, secret) = variables_the_binary_reads();
    for name in env.keys() {
        assert!(known.contains(name), "{name} is not read by the binary");
    }
    assert_eq!(
        env["VAULT_TRIAGE_LEADER_ELECTION"].value.as_deref(),
        Some("true")
    );
    // The URL carries the database password: a Secret, never a literal.
    assert!(secret.contains("VAULT_TRIAGE_STATE_URL"));
    let url = &env["VAULT_TRIAGE_STATE_URL"];
    assert!(url.value.is_none());
    let r = url
        .value_from
        .as_ref()
        .and_then(|f| f.secret_key_ref.as_ref())
        .expect("from a Secret");
    assert_eq!(
        (r.name.as_str(), r.key.as_str()),
        ("vault-triage-state-db", "url")
    );
    // state.dir is no longer a claim: nothing is kept there.
    let state = pod
        .volumes
        .unwrap_or_default()
        .into_iter()
        .find(|v| v.name == "state")
        .expect("the state volume is replaced");
    assert!(state.empty_dir.is_some() && state.persistent_volume_claim.is_none());
    let dropped = documents("ha/drop-pvc.yaml").remove(0);
    assert_eq!(dropped["$patch"], "delete");
    assert_eq!(
        dropped["metadata"]["name"].as_str(),
        the_one::<PersistentVolumeClaim>().metadata.name.as_deref()
    );
}

#[test]
fn the_ha_overlay_keeps_one_replica_through_a_drain() {
    let doc = documents("ha/pdb.yaml").remove(0);
    let pdb: PodDisruptionBudget = serde_json::from_value(doc).expect("a PodDisruptionBudget");
    let spec = pdb.spec.unwrap();
    assert_eq!(spec.min_available, Some(IntOrString::Int(1)));
    assert_eq!(
        spec.selector.unwrap().match_labels,
        deployment().spec.selector.match_labels,
        "it selects the bot's pods"
    );
    assert_eq!(pdb.metadata.namespace.as_deref(), Some(BOT_NAMESPACE));
}

#[test]
fn the_rendered_ha_overlay_runs_two_replicas_on_an_empty_dir_and_no_claim() {
    // What kubectl applies, not only what the patch says.
    let rendered = rendered("deploy/ha");
    let kinds: Vec<&str> = rendered.iter().filter_map(|v| v["kind"].as_str()).collect();
    assert!(!kinds.contains(&"PersistentVolumeClaim"), "{kinds:?}");
    assert!(kinds.contains(&"PodDisruptionBudget"), "{kinds:?}");
    let deployment: Deployment =
        serde_json::from_value(rendered_kind("deploy/ha", "Deployment")).expect("a Deployment");
    assert_eq!(deployment.spec.replicas, Some(2));
    let pod = deployment.spec.template.spec.unwrap();
    let volumes = pod.volumes.unwrap_or_default();
    let state = volumes.iter().find(|v| v.name == "state").expect("state");
    assert!(
        state.empty_dir.is_some() && state.persistent_volume_claim.is_none(),
        "the patch did not replace the claim with an emptyDir: {state:?}"
    );
    assert!(
        volumes.iter().any(|v| v.name == "vault-ca"),
        "the base's volumes are kept"
    );
    // Egress to the database, on top of the base's policy.
    let postgres = network_policy("vault-triage-postgres", &rendered);
    assert!(egress_ports_to_anywhere(&postgres).contains(&tcp(POSTGRES_PORT)));
    assert_eq!(
        postgres
            .spec
            .unwrap()
            .pod_selector
            .and_then(|s| s.match_labels),
        deployment.spec.selector.match_labels
    );
    network_policy("vault-triage", &rendered);
}

// ---------------------------------------------------------------------------------------------
// The examples in deploy/extras/, which no kustomization includes

/// The objects of every file in `deploy/extras/`, with the file they came from.
fn extras() -> Vec<(String, Value)> {
    yaml_files()
        .into_keys()
        .filter(|f| f.starts_with("extras/"))
        .flat_map(|f| documents(&f).into_iter().map(move |d| (f.clone(), d)))
        .collect()
}

fn the_extra(kind: &str) -> Value {
    let mut all: Vec<Value> = extras()
        .into_iter()
        .filter(|(_, v)| v["kind"] == kind)
        .map(|(_, v)| v)
        .collect();
    assert_eq!(all.len(), 1, "exactly one {kind} in deploy/extras/");
    all.remove(0)
}

/// Paths the bot serves to Slack, Discord and the alert senders, and where the code routes
/// each one: what the Ingress must make public.
const PUBLIC_PATHS: [(&str, &str); 6] = [
    ("/slack/commands", "src/chat/slack/http.rs"),
    ("/slack/interactions", "src/chat/slack/http.rs"),
    ("/slack/events", "src/chat/slack/http.rs"),
    ("/discord/interactions", "src/chat/discord/endpoint.rs"),
    ("/alerts/alertmanager", "src/alerts/service.rs"),
    ("/alerts/grafana", "src/alerts/service.rs"),
];
/// Paths that stay inside the cluster.
const INTERNAL_PATHS: [&str; 3] = ["/metrics", "/healthz", "/readyz"];

#[test]
fn the_extras_stay_out_of_every_kustomization() {
    // The ServiceMonitor needs the Prometheus Operator's CRD and the Ingress a host and a
    // certificate: both are applied by hand, never by `kubectl apply -k`.
    let extras = extras();
    let kinds: BTreeSet<&str> = extras
        .iter()
        .filter_map(|(_, v)| v["kind"].as_str())
        .collect();
    assert_eq!(kinds, BTreeSet::from(["Ingress", "ServiceMonitor"]));
    for dir in ["deploy", "deploy/ha"] {
        for object in rendered(dir) {
            assert!(
                !extras
                    .iter()
                    .any(|(_, extra)| extra["kind"] == object["kind"]
                        && extra["metadata"]["name"] == object["metadata"]["name"]),
                "{dir} renders {} {}",
                object["kind"],
                object["metadata"]["name"]
            );
        }
    }
    for file in KUSTOMIZATIONS {
        let text = read(&format!("{file}kustomization.yaml"));
        let listed = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .any(|l| l.contains("extras"));
        assert!(!listed, "{file}kustomization.yaml lists extras/");
    }
}

#[test]
fn the_service_monitor_scrapes_metrics_on_the_services_named_port() {
    // A custom resource: kubernetes-validate has no schema for it, so its shape is checked here.
    let monitor = the_extra("ServiceMonitor");
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    let service = the_one::<Service>();
    assert_eq!(
        monitor["metadata"]["namespace"].as_str(),
        service.metadata.namespace.as_deref()
    );
    let spec = monitor["spec"].as_object().expect("a spec");
    let keys: BTreeSet<&str> = spec.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        BTreeSet::from(["endpoints", "namespaceSelector", "selector"])
    );
    let selector: BTreeMap<String, String> =
        serde_json::from_value(spec["selector"]["matchLabels"].clone()).expect("matchLabels");
    let service_labels = service.metadata.labels.clone().unwrap_or_default();
    assert!(!selector.is_empty());
    for (k, v) in &selector {
        assert_eq!(
            service_labels.get(k),
            Some(v),
            "the Service carries {k}={v}"
        );
    }
    assert_eq!(
        spec["namespaceSelector"]["matchNames"],
        serde_json::json!([service.metadata.namespace.clone().unwrap()])
    );
    let endpoints = spec["endpoints"].as_array().expect("endpoints");
    assert_eq!(endpoints.len(), 1);
    let endpoint = endpoints[0].as_object().unwrap();
    for key in endpoint.keys() {
        assert!(
            ["port", "path", "interval", "scrapeTimeout", "scheme"].contains(&key.as_str()),
            "unexpected endpoint field {key}"
        );
    }
    let ports = service.spec.unwrap().ports.unwrap_or_default();
    let port = ports
        .iter()
        .find(|p| p.name.as_deref() == endpoint["port"].as_str())
        .expect("the endpoint names a port of the Service");
    assert_eq!(
        resolve(port.target_port.as_ref().unwrap()),
        container_port()
    );
    assert_eq!(endpoint["path"], "/metrics");
}

/// Whether an Ingress path matches a request path (Kubernetes' Exact and Prefix, the latter
/// by whole path segments).
fn ingress_matches(rule: &str, path_type: &str, request: &str) -> bool {
    match path_type {
        "Exact" => rule == request,
        "Prefix" => {
            let prefix = rule.trim_end_matches('/');
            prefix.is_empty()
                || request == prefix
                || request
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('/'))
        }
        other => panic!("pathType {other}: say exactly what is public"),
    }
}

#[test]
fn the_ingress_publishes_the_chat_and_alert_endpoints_over_tls_and_nothing_else() {
    let ingress: Ingress = serde_json::from_value(the_extra("Ingress")).expect("an Ingress");
    let service = the_one::<Service>();
    assert_eq!(ingress.metadata.namespace, service.metadata.namespace);
    let spec = ingress.spec.expect("a spec");
    assert!(spec.default_backend.is_none(), "no catch-all");
    let tls_hosts: BTreeSet<String> = spec
        .tls
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t.secret_name.is_some())
        .flat_map(|t| t.hosts.unwrap_or_default())
        .collect();
    let service_port = service.spec.unwrap().ports.unwrap_or_default()[0].clone();
    let mut routed = Vec::new();
    for rule in spec.rules.unwrap_or_default() {
        let host = rule.host.expect("a host");
        assert!(tls_hosts.contains(&host), "{host} is served over TLS");
        for path in rule.http.expect("http paths").paths {
            let backend = path.backend.service.expect("a Service backend");
            assert_eq!(Some(&backend.name), service.metadata.name.as_ref());
            let port = backend.port.expect("a port");
            assert_eq!(port.name, service_port.name, "the Service's port, by name");
            routed.push((path.path.expect("a path"), path.path_type));
        }
    }
    let public = |request: &str| {
        routed
            .iter()
            .any(|(rule, kind)| ingress_matches(rule, kind, request))
    };
    for (path, file) in PUBLIC_PATHS {
        let source = std::fs::read_to_string(repo().join(file)).unwrap();
        assert!(
            source.contains(&format!("\"{path}\"")),
            "{file} serves {path}"
        );
        assert!(public(path), "{path} is not routed");
    }
    for path in INTERNAL_PATHS {
        assert!(!public(path), "{path} must not be public");
    }
}

// ---------------------------------------------------------------------------------------------
// Every manifest against the Kubernetes schemas (kubernetes-validate)

/// The kustomization directories under `deploy/`, as prefixes of their files.
const KUSTOMIZATIONS: [&str; 3] = ["", "base/", "ha/"];

/// The Kubernetes versions whose schemas every manifest must satisfy: the oldest and the
/// newest API the bot's client types (k8s-openapi 0.29) are built for.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.33", "1.37"];

/// Custom resources, as (apiVersion, kind): kubernetes-validate has no schema for them, and
/// says so with a warning that is expected for these and fails the test for any other kind
/// (a misspelt kind or apiVersion would otherwise pass with a warning). Each one has a test
/// of its own shape above.
const CUSTOM_RESOURCES: [(&str, &str); 1] = [("monitoring.coreos.com/v1", "ServiceMonitor")];

/// Files under `deploy/` that configure other tools, not Kubernetes objects: checked by their
/// own tests above.
const OTHER_TOOLS_CONFIGS: [&str; 2] = ["alertmanager/receiver.yaml", "grafana/contact-point.yaml"];

/// What a YAML file under `deploy/` is, which decides how it is checked against the schemas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileRole {
    /// Objects as they are applied: validated as written.
    Manifest,
    /// A kustomization: validated through what `kubectl kustomize` renders.
    Kustomization,
    /// A partial object a kustomization patches with: validated through the rendering.
    Patch,
    /// Another tool's config (Alertmanager, Grafana).
    OtherTool,
}

/// The custom resource `object` is, if it is one of [`CUSTOM_RESOURCES`].
fn custom_resource(object: &Value) -> Option<(&'static str, &'static str)> {
    CUSTOM_RESOURCES
        .into_iter()
        .find(|(api, kind)| object["apiVersion"] == *api && object["kind"] == *kind)
}

/// Every `.yaml`/`.yml` file under `dir`, relative to `deploy/`.
fn yaml_files_under(dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a readable entry").path();
        if path.is_dir() {
            yaml_files_under(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            let relative = path.strip_prefix(deploy_dir()).unwrap();
            out.push(relative.to_str().unwrap().replace('\\', "/"));
        }
    }
}

/// Every YAML file under `deploy/` and its role.
fn yaml_files() -> BTreeMap<String, FileRole> {
    let mut files = Vec::new();
    yaml_files_under(&deploy_dir(), &mut files);
    let mut patches = BTreeSet::new();
    for dir in KUSTOMIZATIONS {
        let kustomization = documents(&format!("{dir}kustomization.yaml")).remove(0);
        for patch in kustomization["patches"].as_array().into_iter().flatten() {
            if let Some(path) = patch["path"].as_str() {
                patches.insert(format!("{dir}{path}"));
            }
        }
    }
    files
        .into_iter()
        .map(|f| {
            let role = if f.ends_with("kustomization.yaml") {
                assert!(
                    KUSTOMIZATIONS
                        .iter()
                        .any(|d| f == format!("{d}kustomization.yaml")),
                    "{f}: a kustomization this test does not know"
                );
                FileRole::Kustomization
            } else if patches.contains(&f) {
                FileRole::Patch
            } else if OTHER_TOOLS_CONFIGS.contains(&f.as_str()) {
                FileRole::OtherTool
            } else {
                FileRole::Manifest
            };
            (f, role)
        })
        .collect()
}

fn kubectl_kustomize(dir: &str) -> String {
    let output = Command::new("kubectl")
        .arg("kustomize")
        .arg(repo().join(dir))
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "running kubectl: {e}. Run the tests with `bash tests/run`, which installs \
                 kubectl"
            )
        });
    assert!(
        output.status.success(),
        "kubectl kustomize {dir} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

/// The objects `kubectl kustomize <dir>` renders: what `kubectl apply -k` would send.
fn rendered(dir: &str) -> Vec<Value> {
    parse_documents(&kubectl_kustomize(dir), &format!("kubectl kustomize {dir}"))
}

fn rendered_kind(dir: &str, kind: &str) -> Value {
    let mut all: Vec<Value> = rendered(dir)
        .into_iter()
        .filter(|v| v["kind"] == kind)
        .collect();
    assert_eq!(all.len(), 1, "exactly one {kind} rendered from {dir}");
    all.remove(0)
}

/// The base's objects of one kind, as written.
fn typed_values(kind: &str) -> Vec<Value> {
    objects()
        .into_iter()
        .map(|(_, v)| v)
        .filter(|v| v["kind"] == kind)
        .collect()
}

/// `kubernetes-validate`: `KUBERNETES_VALIDATE_BIN`, which `tests/run` sets; fails the test
/// when it is not set.
fn kubernetes_validate() -> PathBuf {
    let Some(path) = std::env::var_os("KUBERNETES_VALIDATE_BIN") else {
        panic!(
            "KUBERNETES_VALIDATE_BIN is not set. Run the tests with `bash tests/run`, which \
             installs kubernetes-validate (pip, into .ci/venv) and sets it"
        )
    };
    let path = PathBuf::from(path);
    assert!(
        path.is_file(),
        "KUBERNETES_VALIDATE_BIN={} does not exist",
        path.display()
    );
    path
}

/// Runs kubernetes-validate (strict: an unknown field is an error) on the file `input` against
/// every version in [`KUBERNETES_VERSIONS`]. Fails, with the tool's words, unless it passes
/// each of `objects` but the custom resources, warns about exactly those, and says nothing
/// else.
fn validate(what: &str, input: &Path, objects: &[Value]) {
    let mut command = Command::new(kubernetes_validate());
    command.arg("--strict");
    for version in KUBERNETES_VERSIONS {
        command.args(["--kubernetes-version", version]);
    }
    let child = command
        .arg(input)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubernetes-validate runs");
    let output = child.wait_with_output().expect("kubernetes-validate ends");
    let stdout = String::from_utf8_lossy(&output.stdout);
    // What the tool said but its passes.
    let said: String = stdout
        .lines()
        .filter(|l| !l.starts_with("INFO "))
        .chain(String::from_utf8_lossy(&output.stderr).lines())
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(output.status.success(), "{what} is not valid:\n{said}");
    let shown = input.display().to_string();
    let mut expected_warnings = BTreeSet::new();
    let mut expected_passes = 0;
    for object in objects {
        match custom_resource(object) {
            Some((api, kind)) => {
                for version in KUBERNETES_VERSIONS {
                    expected_warnings.insert(format!(
                        "WARN {shown} Couldn't find schema for kind {kind} with api version \
                         {api} for kubernetes version {version}"
                    ));
                }
            }
            None => expected_passes += KUBERNETES_VERSIONS.len(),
        }
    }
    let mut passes = 0;
    let mut warnings = BTreeSet::new();
    for line in stdout.lines() {
        if line.starts_with(&format!("INFO {shown} passed for resource ")) {
            passes += 1;
        } else if line.starts_with("WARN ") {
            warnings.insert(line.to_string());
        } else {
            panic!("{what}: unexpected output {line:?}:\n{said}");
        }
    }
    assert_eq!(
        warnings, expected_warnings,
        "{what}: a kind without a schema (a misspelt kind or apiVersion?):\n{said}"
    );
    assert_eq!(
        passes, expected_passes,
        "{what}: not every object passed:\n{said}"
    );
}

#[test]
fn every_manifest_and_every_rendering_is_valid_against_the_kubernetes_schemas() {
    let files = yaml_files();
    let scratch = tempfile::tempdir().unwrap();
    // Whatever is added under deploy/ is checked unless it is deliberately another tool's.
    for f in [
        "base/deployment.yaml",
        "ha/pdb.yaml",
        "extras/servicemonitor.yaml",
    ] {
        assert_eq!(files.get(f), Some(&FileRole::Manifest), "{f}");
    }
    assert_eq!(
        files.get("ha/deployment-patch.yaml"),
        Some(&FileRole::Patch),
        "a patch is validated through the rendering"
    );
    for f in OTHER_TOOLS_CONFIGS {
        assert_eq!(files.get(f), Some(&FileRole::OtherTool), "{f} exists");
    }
    for (file, role) in &files {
        match role {
            FileRole::Manifest => {
                validate(file, &deploy_dir().join(file), &documents(file));
            }
            FileRole::Kustomization => {
                // Rendered into a file: the tool reads its input once per version.
                let dir = format!("deploy/{}", file.trim_end_matches("kustomization.yaml"));
                let dir = dir.trim_end_matches('/');
                let text = kubectl_kustomize(dir);
                let objects = parse_documents(&text, dir);
                assert!(!objects.is_empty(), "{dir} renders nothing");
                let output = scratch
                    .path()
                    .join(format!("{}.yaml", dir.replace('/', "-")));
                std::fs::write(&output, text).unwrap();
                validate(&format!("kubectl kustomize {dir}"), &output, &objects);
            }
            FileRole::Patch | FileRole::OtherTool => {}
        }
    }
}
