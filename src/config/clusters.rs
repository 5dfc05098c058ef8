//! `[[clusters]]` (design §11.2): one Vault, several Kubernetes clusters, each with its own
//! kubeconfig context, auth mount, canary and reviewer. Without the section the top-level
//! `[vault]`, `[canary]` and `[reviewer]` form one cluster named `default`.

use serde::Deserialize;

use super::file::{CanarySection, FileConfig, ReviewerSection};

/// The name of the one cluster of a config without `[[clusters]]`.
pub const DEFAULT_CLUSTER: &str = "default";

/// One `[[clusters]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// Shown in chat, JSON, metrics labels and the journal.
    pub name: String,
    /// kubeconfig context (`KUBECONFIG`); the in-cluster configuration when omitted.
    #[serde(default)]
    pub context: Option<String>,
    /// This cluster's kubernetes auth mount (default: `vault.auth_mount`).
    #[serde(default)]
    pub auth_mount: Option<String>,
    /// Vault Enterprise / OpenBao namespace of this cluster's mount (default: `VAULT_NAMESPACE`).
    #[serde(default)]
    pub vault_namespace: Option<String>,
    /// Same keys as `[canary]` (default: `[canary]`).
    #[serde(default)]
    pub canary: Option<CanarySection>,
    /// Same keys as `[reviewer]` (default: `[reviewer]`).
    #[serde(default)]
    pub reviewer: Option<ReviewerSection>,
}

/// A cluster with every default filled in.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub name: String,
    pub context: Option<String>,
    pub auth_mount: String,
    pub vault_namespace: Option<String>,
    pub canary: CanarySection,
    pub reviewer: Option<ReviewerSection>,
}

impl FileConfig {
    /// The clusters to triage, in config order: `[[clusters]]`, or the one `default` cluster.
    pub fn clusters(&self) -> Vec<Cluster> {
        if self.clusters.is_empty() {
            return vec![Cluster {
                name: DEFAULT_CLUSTER.to_string(),
                context: None,
                auth_mount: self.auth_mount().to_string(),
                vault_namespace: None,
                canary: self.canary.clone(),
                reviewer: self.reviewer.clone(),
            }];
        }
        self.clusters
            .iter()
            .map(|c| Cluster {
                name: c.name.clone(),
                context: c.context.clone().filter(|x| !x.trim().is_empty()),
                auth_mount: c
                    .auth_mount
                    .as_deref()
                    .map(|m| m.trim_matches('/').to_string())
                    .unwrap_or_else(|| self.auth_mount().to_string()),
                vault_namespace: c.vault_namespace.clone().filter(|x| !x.trim().is_empty()),
                canary: c.canary.clone().unwrap_or_else(|| self.canary.clone()),
                reviewer: c.reviewer.clone().or_else(|| self.reviewer.clone()),
            })
            .collect()
    }

    /// The cluster named `name`, or an error listing the names there are.
    pub fn cluster(&self, name: &str) -> anyhow::Result<Cluster> {
        let all = self.clusters();
        let names: Vec<String> = all.iter().map(|c| c.name.clone()).collect();
        all.into_iter().find(|c| c.name == name).ok_or_else(|| {
            anyhow::anyhow!(
                "no cluster {name:?} in the config: the clusters are {}",
                names.join(", ")
            )
        })
    }

    /// For what tells one cluster's story (the demo): a single `[[clusters]]` entry becomes
    /// the top-level `[vault] auth_mount`, `[canary]` and `[reviewer]` (its context and
    /// namespace stay with the entry); several are refused.
    pub fn single_cluster(mut self) -> anyhow::Result<FileConfig> {
        match self.clusters.len() {
            0 => Ok(self),
            1 => {
                let c = self.clusters().remove(0);
                self.vault.auth_mount = c.auth_mount;
                self.canary = c.canary;
                self.reviewer = c.reviewer;
                Ok(self)
            }
            n => anyhow::bail!("[[clusters]] lists {n} clusters where one is expected"),
        }
    }

    /// Names unique and usable as labels; mounts are paths.
    pub(super) fn validate_clusters(&self) -> anyhow::Result<()> {
        let mut seen = std::collections::BTreeSet::new();
        for c in &self.clusters {
            anyhow::ensure!(
                !c.name.is_empty()
                    && c.name.len() <= 63
                    && c.name
                        .chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch)),
                "clusters.name {:?} must be 1-63 letters, digits, '-', '_' or '.'",
                c.name
            );
            anyhow::ensure!(
                seen.insert(c.name.as_str()),
                "clusters.name {:?} is listed twice",
                c.name
            );
            if let Some(m) = &c.auth_mount {
                let m = m.trim_matches('/');
                anyhow::ensure!(
                    !m.is_empty() && !m.contains(".."),
                    "clusters.auth_mount of {:?} must be a mount path such as \"kubernetes-prod-eu\"",
                    c.name
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = r#"
[vault]
auth_mount = "kubernetes"

[reviewer]
namespace = "vault"
service_account = "vault-auth"

[[clusters]]
name = "prod-eu"
context = "prod-eu"
auth_mount = "kubernetes-prod-eu"

[clusters.canary]
namespace = "vault-triage"
service_account = "vault-triage-canary"
role = "vault-triage-canary"
secret_path = "secret/data/vault-triage/canary"

[clusters.reviewer]
namespace = "vault"
service_account = "vault-auth"
token_secret = "vault-auth-token"

[[clusters]]
name = "prod-us"
context = "prod-us"
vault_namespace = "team-a"
"#;

    #[test]
    fn the_design_example_gives_two_clusters_with_their_defaults() {
        let cfg = FileConfig::parse(TWO).unwrap();
        let c = cfg.clusters();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].name, "prod-eu");
        assert_eq!(c[0].auth_mount, "kubernetes-prod-eu");
        assert_eq!(
            c[0].reviewer.as_ref().unwrap().token_secret.as_deref(),
            Some("vault-auth-token")
        );
        // The second takes the top-level mount and reviewer.
        assert_eq!(c[1].auth_mount, "kubernetes");
        assert_eq!(c[1].vault_namespace.as_deref(), Some("team-a"));
        assert!(c[1].reviewer.as_ref().unwrap().token_secret.is_none());
        assert!(cfg.cluster("prod-us").is_ok());
        let err = cfg.cluster("prod-ap").unwrap_err().to_string();
        assert!(err.contains("prod-eu, prod-us"), "{err}");
    }

    #[test]
    fn without_clusters_the_top_level_is_the_default_cluster() {
        let cfg = FileConfig::parse("[vault]\nauth_mount = \"k8s\"\n").unwrap();
        let c = cfg.clusters();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].name, DEFAULT_CLUSTER);
        assert_eq!(c[0].auth_mount, "k8s");
        assert!(c[0].context.is_none());
    }

    #[test]
    fn bad_clusters_are_config_errors() {
        for (bad, says) in [
            (
                "[[clusters]]\nname = \"a\"\n[[clusters]]\nname = \"a\"\n",
                "twice",
            ),
            ("[[clusters]]\nname = \"a b\"\n", "letters"),
            ("[[clusters]]\nname = \"\"\n", "letters"),
            (
                "[[clusters]]\nname = \"a\"\nauth_mount = \"/\"\n",
                "mount path",
            ),
            (
                "[[clusters]]\nname = \"a\"\ncolour = \"red\"\n",
                "unknown field",
            ),
        ] {
            let err = format!("{:#}", FileConfig::parse(bad).unwrap_err());
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
