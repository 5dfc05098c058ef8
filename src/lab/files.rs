//! Files the lab hands to the bot: a kubeconfig for its own ServiceAccount and the bot's
//! `config.toml`, plus the shell exports that point `probe`/`serve` at them.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

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

pub(crate) fn config_toml(state_dir: &Path, with_reviewer: bool) -> String {
    let mut s = format!(
        "[vault]\nauth_mount = {}\n\n[canary]\nnamespace = {}\nservice_account = {}\nrole = {}\nsecret_path = {}\n\n",
        toml_str(AUTH_MOUNT),
        toml_str(CANARY_NAMESPACE),
        toml_str(CANARY_SA),
        toml_str(CANARY_ROLE),
        toml_str(CANARY_SECRET_PATH)
    );
    if with_reviewer {
        s.push_str(&format!(
            "[reviewer]\nnamespace = {}\nservice_account = {}\ntoken_secret = {}\n\n",
            toml_str(REVIEWER_NAMESPACE),
            toml_str(REVIEWER_SA),
            toml_str(REVIEWER_SECRET)
        ));
    }
    s.push_str(&format!(
        "[state]\ndir = {}\n",
        toml_str(&state_dir.to_string_lossy())
    ));
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
}
