//! Files the lab hands to the bot: a kubeconfig for its own ServiceAccount and the bot's
//! `config.toml`, plus the shell exports that point `probe`/`serve` at them. A fleet writes
//! one kubeconfig with a context per cluster and a config with one `[[clusters]]` block each.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::Scenario;
use super::setup::{
    AUTH_MOUNT, CANARY_NAMESPACE, CANARY_ROLE, CANARY_SA, CANARY_SECRET_PATH, REVIEWER_NAMESPACE,
    REVIEWER_SA, REVIEWER_SECRET,
};

/// Paths written by `Lab::write_files`.
#[derive(Clone, Debug)]
pub struct LabFiles {
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub config: PathBuf,
    pub state_dir: PathBuf,
}

fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

pub(crate) fn kubeconfig(server: &str, token: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: vault-triage-lab\n  cluster:\n    server: {}\nusers:\n- name: vault-triage\n  user:\n    token: {}\ncontexts:\n- name: vault-triage-lab\n  context:\n    cluster: vault-triage-lab\n    user: vault-triage\n    namespace: vault-triage\ncurrent-context: vault-triage-lab\npreferences: {{}}\n",
        yaml_str(server),
        yaml_str(token)
    )
}

/// Whether the bot's config of a cluster in `scenario` names the reviewer (not in
/// `inconclusive`, where the bot cannot see it).
pub(crate) fn with_reviewer(scenario: Scenario) -> bool {
    scenario != Scenario::Inconclusive
}

/// The keys of `[canary]` (and `[clusters.canary]`).
fn canary_keys() -> String {
    format!(
        "namespace = {}\nservice_account = {}\nrole = {}\nsecret_path = {}\n",
        toml_str(CANARY_NAMESPACE),
        toml_str(CANARY_SA),
        toml_str(CANARY_ROLE),
        toml_str(CANARY_SECRET_PATH)
    )
}

/// The keys of `[reviewer]` (and `[clusters.reviewer]`).
fn reviewer_keys() -> String {
    format!(
        "namespace = {}\nservice_account = {}\ntoken_secret = {}\n",
        toml_str(REVIEWER_NAMESPACE),
        toml_str(REVIEWER_SA),
        toml_str(REVIEWER_SECRET)
    )
}

pub(crate) fn config_toml(state_dir: &Path, with_reviewer: bool) -> String {
    let mut s = format!(
        "[vault]\nauth_mount = {}\n\n[canary]\n{}\n",
        toml_str(AUTH_MOUNT),
        canary_keys()
    );
    if with_reviewer {
        s.push_str(&format!("[reviewer]\n{}\n", reviewer_keys()));
    }
    s.push_str(&format!(
        "[state]\ndir = {}\n",
        toml_str(&state_dir.to_string_lossy())
    ));
    s
}

/// One cluster of a fleet as its files name it.
pub(crate) struct FleetCluster<'a> {
    /// Cluster name, also its kubeconfig context.
    pub name: &'a str,
    /// Its Kubernetes API.
    pub server: String,
    /// Bearer token of the bot's ServiceAccount there.
    pub token: String,
    /// Its kubernetes auth mount in the fleet's Vault.
    pub auth_mount: String,
    /// Whether the bot's config names its reviewer (see [`with_reviewer`]).
    pub with_reviewer: bool,
}

/// A kubeconfig with one cluster, user and context per fleet cluster; the first is current.
pub(crate) fn fleet_kubeconfig(clusters: &[FleetCluster<'_>]) -> String {
    let mut kc = String::from("apiVersion: v1\nkind: Config\nclusters:\n");
    for c in clusters {
        kc.push_str(&format!(
            "- name: {}\n  cluster:\n    server: {}\n",
            yaml_str(c.name),
            yaml_str(&c.server)
        ));
    }
    kc.push_str("users:\n");
    for c in clusters {
        kc.push_str(&format!(
            "- name: {}\n  user:\n    token: {}\n",
            yaml_str(&format!("vault-triage-{}", c.name)),
            yaml_str(&c.token)
        ));
    }
    kc.push_str("contexts:\n");
    for c in clusters {
        kc.push_str(&format!(
            "- name: {}\n  context:\n    cluster: {}\n    user: {}\n    namespace: vault-triage\n",
            yaml_str(c.name),
            yaml_str(c.name),
            yaml_str(&format!("vault-triage-{}", c.name))
        ));
    }
    let current = clusters.first().map(|c| c.name).unwrap_or_default();
    kc.push_str(&format!(
        "current-context: {}\npreferences: {{}}\n",
        yaml_str(current)
    ));
    kc
}

/// The bot's config for a fleet: `[state]` and one `[[clusters]]` block per cluster (design
/// §11.2), with the same canary and reviewer keys a single lab writes.
pub(crate) fn fleet_config_toml(state_dir: &Path, clusters: &[FleetCluster<'_>]) -> String {
    let mut s = format!(
        "[state]\ndir = {}\n",
        toml_str(&state_dir.to_string_lossy())
    );
    for c in clusters {
        s.push_str(&format!(
            "\n[[clusters]]\nname = {}\ncontext = {}\nauth_mount = {}\n\n[clusters.canary]\n{}",
            toml_str(c.name),
            toml_str(c.name),
            toml_str(&c.auth_mount),
            canary_keys()
        ));
        if c.with_reviewer {
            s.push_str(&format!("\n[clusters.reviewer]\n{}", reviewer_keys()));
        }
    }
    s
}

pub(crate) fn write(
    dir: &Path,
    kubeconfig: &str,
    config: impl Fn(&Path) -> String,
) -> anyhow::Result<LabFiles> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let state_dir = dir.join("state");
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("create {}", state_dir.display()))?;
    let kube_path = dir.join("kubeconfig");
    std::fs::write(&kube_path, kubeconfig)
        .with_context(|| format!("write {}", kube_path.display()))?;
    let config_path = dir.join("config.toml");
    std::fs::write(&config_path, config(&state_dir))
        .with_context(|| format!("write {}", config_path.display()))?;
    Ok(LabFiles {
        dir: dir.to_path_buf(),
        kubeconfig: kube_path,
        config: config_path,
        state_dir,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_toml_has_the_contract_keys() {
        let s = config_toml(Path::new("/tmp/x \"y\""), true);
        let v: toml::Value = toml::from_str(&s).expect("valid toml");
        assert_eq!(v["vault"]["auth_mount"].as_str(), Some("kubernetes"));
        assert_eq!(
            v["canary"]["secret_path"].as_str(),
            Some(CANARY_SECRET_PATH)
        );
        assert_eq!(
            v["reviewer"]["token_secret"].as_str(),
            Some("vault-auth-token")
        );
        assert_eq!(v["state"]["dir"].as_str(), Some("/tmp/x \"y\""));
        let without: toml::Value =
            toml::from_str(&config_toml(Path::new("/s"), false)).expect("toml");
        assert!(without.get("reviewer").is_none());
    }

    #[test]
    fn single_lab_config_keeps_its_layout() {
        assert_eq!(
            config_toml(Path::new("/s"), true),
            "[vault]\nauth_mount = \"kubernetes\"\n\n[canary]\nnamespace = \"vault-triage\"\n\
             service_account = \"vault-triage-canary\"\nrole = \"vault-triage-canary\"\n\
             secret_path = \"secret/data/vault-triage/canary\"\n\n[reviewer]\n\
             namespace = \"vault\"\nservice_account = \"vault-auth\"\n\
             token_secret = \"vault-auth-token\"\n\n[state]\ndir = \"/s\"\n"
        );
    }

    fn cluster(name: &str, with_reviewer: bool) -> FleetCluster<'_> {
        FleetCluster {
            name,
            server: format!("http://{name}:6443"),
            token: format!("token-{name}"),
            auth_mount: format!("kubernetes-{name}"),
            with_reviewer,
        }
    }

    #[test]
    fn fleet_config_has_one_clusters_block_each_with_the_single_lab_keys() {
        let clusters = [cluster("prod-a", false), cluster("prod-b", true)];
        let s = fleet_config_toml(Path::new("/d/state"), &clusters);
        let v: toml::Value = toml::from_str(&s).expect("valid toml");
        let keys: Vec<&str> = v
            .as_table()
            .expect("table")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["clusters", "state"]);
        assert_eq!(v["state"]["dir"].as_str(), Some("/d/state"));
        let single: toml::Value =
            toml::from_str(&config_toml(Path::new("/s"), true)).expect("toml");
        let list = v["clusters"].as_array().expect("[[clusters]]");
        assert_eq!(list.len(), 2);
        for (c, block) in clusters.iter().zip(list) {
            let keys: Vec<&str> = block
                .as_table()
                .expect("table")
                .keys()
                .map(String::as_str)
                .collect();
            let mut expected = vec!["auth_mount", "canary", "context", "name"];
            if c.with_reviewer {
                expected.push("reviewer");
            }
            assert_eq!(keys, expected, "{}", c.name);
            assert_eq!(block["name"].as_str(), Some(c.name));
            assert_eq!(block["context"].as_str(), Some(c.name));
            assert_eq!(block["auth_mount"].as_str(), Some(c.auth_mount.as_str()));
            assert_eq!(block["canary"], single["canary"]);
            if c.with_reviewer {
                assert_eq!(block["reviewer"], single["reviewer"]);
            }
        }
    }

    #[test]
    fn fleet_kubeconfig_has_a_context_per_cluster_and_the_first_is_current() {
        let kc = fleet_kubeconfig(&[cluster("prod-a", true), cluster("prod-b", true)]);
        let k = kube::config::Kubeconfig::from_yaml(&kc).expect("kubeconfig parses");
        assert_eq!(k.current_context.as_deref(), Some("prod-a"));
        for name in ["prod-a", "prod-b"] {
            let ctx = k
                .contexts
                .iter()
                .find(|c| c.name == name)
                .and_then(|c| c.context.clone())
                .expect("context");
            let server = k
                .clusters
                .iter()
                .find(|c| c.name == ctx.cluster)
                .and_then(|c| c.cluster.clone())
                .and_then(|c| c.server);
            assert_eq!(server, Some(format!("http://{name}:6443")));
            let user = ctx.user.expect("user");
            let auth = k
                .auth_infos
                .iter()
                .find(|u| u.name == user)
                .and_then(|u| u.auth_info.clone())
                .expect("user");
            // The token is a secret type; its serialized form is the way to read it.
            let auth = serde_json::to_value(&auth).expect("serializes");
            assert_eq!(
                auth["token"].as_str(),
                Some(format!("token-{name}").as_str())
            );
            assert_eq!(ctx.namespace.as_deref(), Some("vault-triage"));
        }
    }
}
