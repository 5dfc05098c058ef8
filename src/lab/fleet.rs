//! A fleet: several simulated clusters in front of one Vault, the estate of design §11.2.
//!
//! Each cluster is a [`Lab`] of its own scenario on its own loopback port. The first cluster's
//! lab is the Vault everyone uses: it holds a copy of every cluster's `kubernetes` auth mount at
//! `kubernetes-<name>` (whose `kubernetes_host` is that cluster's Kubernetes API, so a login
//! there runs a real TokenReview against that cluster), and the other labs' ACL policies and KV
//! secrets. A scenario whose fault is the Vault itself therefore belongs to the first cluster,
//! and shows in every cluster.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context as _;

use super::consumers::LoginFailure;
use super::files::{self, FleetCluster, LabFiles};
use super::{Lab, LabOptions, Scenario};

/// Why a fleet cannot be built from the clusters given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FleetError {
    #[error("a fleet needs at least one cluster")]
    NoClusters,
    #[error("cluster name {name:?}: expected lowercase letters, digits and dashes (e.g. `prod-a`)")]
    BadName { name: String },
    #[error("cluster name {name:?} is given twice: cluster names must be unique")]
    DuplicateName { name: String },
    #[error(
        "cluster {cluster:?}: scenario `{scenario}` is a fault of the Vault itself ({why}), and \
         the fleet's Vault is the first cluster's: give `{scenario}` to the first cluster"
    )]
    VaultWideScenario {
        cluster: String,
        scenario: Scenario,
        why: &'static str,
    },
}

/// Why `scenario` is a fault of the whole Vault (or of the bot's Vault token) rather than of
/// one cluster's auth mount; `None` when it concerns one cluster only.
fn vault_wide(scenario: Scenario) -> Option<&'static str> {
    match scenario {
        Scenario::VaultUnreachable => Some("VAULT_ADDR points at a port where nothing listens"),
        Scenario::VaultSealed => Some("the whole Vault is sealed"),
        Scenario::PolicyDenied => {
            Some("the canary's ACL policy is one Vault object that every cluster's role uses")
        }
        Scenario::Inconclusive => Some("the bot's Vault token has a restricted policy"),
        Scenario::Healthy
        | Scenario::K8sAuthMountMissing
        | Scenario::K8sAuthUnconfigured
        | Scenario::ReviewerJwtExpired
        | Scenario::ReviewerJwtRejected
        | Scenario::ReviewerRbacMissing
        | Scenario::KubeApiUnreachable
        | Scenario::KubeCaMismatch
        | Scenario::ClientJwtRejected
        | Scenario::RoleBindingMismatch
        | Scenario::AudienceMismatch
        | Scenario::IssuerMismatch
        | Scenario::RoleNotFound => None,
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Several simulated clusters sharing the first one's Vault.
pub struct Fleet {
    /// Names and scenarios, in the order given; `labs[i]` serves `clusters[i]`.
    clusters: Vec<(String, Scenario)>,
    labs: Vec<Lab>,
}

impl Fleet {
    /// Checks a fleet without starting it: at least one cluster, names of `[a-z0-9-]` given
    /// once each, and Vault-wide scenarios on the first cluster only.
    pub fn check(clusters: &[(String, Scenario)]) -> Result<(), FleetError> {
        if clusters.is_empty() {
            return Err(FleetError::NoClusters);
        }
        for (i, (name, scenario)) in clusters.iter().enumerate() {
            if !valid_name(name) {
                return Err(FleetError::BadName { name: name.clone() });
            }
            if clusters[..i].iter().any(|(n, _)| n == name) {
                return Err(FleetError::DuplicateName { name: name.clone() });
            }
            if i > 0
                && let Some(why) = vault_wide(*scenario)
            {
                return Err(FleetError::VaultWideScenario {
                    cluster: name.clone(),
                    scenario: *scenario,
                    why,
                });
            }
        }
        Ok(())
    }

    /// The fleet's Vault mount of a cluster's kubernetes auth method: `kubernetes-<name>`.
    pub fn auth_mount(cluster: &str) -> String {
        format!("kubernetes-{cluster}")
    }

    /// Starts one lab per cluster (`opts.listen` applies to the first, the others take an
    /// ephemeral loopback port; `opts.latency` to all) and gives the first one's Vault every
    /// cluster's auth mount at [`Fleet::auth_mount`] (none for a cluster in
    /// `k8s-auth-mount-missing`), with the other labs' ACL policies and KV secrets.
    pub async fn start(clusters: &[(String, Scenario)], opts: LabOptions) -> anyhow::Result<Fleet> {
        Fleet::check(clusters)?;
        let mut labs = Vec::with_capacity(clusters.len());
        for (i, (name, scenario)) in clusters.iter().enumerate() {
            let listen = if i == 0 {
                opts.listen
            } else {
                SocketAddr::from(([127, 0, 0, 1], 0))
            };
            let lab = Lab::start(
                *scenario,
                LabOptions {
                    listen,
                    ..opts.clone()
                },
            )
            .await
            .with_context(|| format!("starting the lab of cluster {name} ({scenario})"))?;
            labs.push(lab);
        }
        let (vault, others) = labs.split_first().context("a fleet has a first cluster")?;
        for ((name, _), lab) in clusters.iter().zip(&labs) {
            vault.copy_auth_mount_from(lab, &Fleet::auth_mount(name));
        }
        for lab in others {
            vault.merge_vault_data_from(lab);
        }
        // Each cluster's operators log in through its mount; a sealed or unreachable Vault
        // (the first cluster's scenario) fails them everywhere first.
        let vault_down = LoginFailure::of(clusters[0].1)
            .filter(|f| matches!(f, LoginFailure::Sealed | LoginFailure::Unreachable));
        for ((name, scenario), lab) in clusters.iter().zip(&labs) {
            let failure = vault_down.or(LoginFailure::of(*scenario));
            lab.set_vault_operators(&Fleet::auth_mount(name), failure);
        }
        Ok(Fleet {
            clusters: clusters.to_vec(),
            labs,
        })
    }

    /// The first cluster's lab: the Vault of the whole fleet.
    pub fn vault_lab(&self) -> &Lab {
        &self.labs[0]
    }

    /// Vault's address (the first cluster's lab).
    pub fn vault_addr(&self) -> String {
        self.vault_lab().vault_addr()
    }

    /// The Vault token the bot should use (the first cluster's lab).
    pub fn vault_token(&self) -> String {
        self.vault_lab().vault_token()
    }

    /// Names and scenarios, in order; the first is the Vault's.
    pub fn clusters(&self) -> &[(String, Scenario)] {
        &self.clusters
    }

    /// The lab that simulates one cluster.
    pub fn lab(&self, name: &str) -> Option<&Lab> {
        self.clusters
            .iter()
            .position(|(n, _)| n == name)
            .and_then(|i| self.labs.get(i))
    }

    fn file_clusters(&self) -> Vec<FleetCluster<'_>> {
        self.clusters
            .iter()
            .zip(&self.labs)
            .map(|((name, scenario), lab)| FleetCluster {
                name,
                server: lab.kube_url(),
                token: lab.bot_kube_token(),
                auth_mount: Fleet::auth_mount(name),
                with_reviewer: files::with_reviewer(*scenario),
            })
            .collect()
    }

    /// A kubeconfig with one context per cluster, named after it (the first is current).
    pub fn kubeconfig_yaml(&self) -> String {
        files::fleet_kubeconfig(&self.file_clusters())
    }

    /// The bot's config file: `[state]` and one `[[clusters]]` block per cluster.
    pub fn config_toml(&self, state_dir: &Path) -> String {
        files::fleet_config_toml(state_dir, &self.file_clusters())
    }

    /// Writes `kubeconfig`, `config.toml` and `state/` into `dir`.
    pub fn write_files(&self, dir: &Path) -> anyhow::Result<LabFiles> {
        files::write(dir, &self.kubeconfig_yaml(), |state| {
            self.config_toml(state)
        })
    }

    /// The environment that points `probe`/`serve` at this fleet (the same variables as a
    /// single lab's).
    pub fn exports(&self, files: &LabFiles) -> Vec<(String, String)> {
        self.vault_lab().exports(files)
    }

    /// Stops every lab.
    pub async fn shutdown(self) {
        for lab in self.labs {
            lab.shutdown().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::setup;
    use super::*;

    fn fleet(spec: &[(&str, Scenario)]) -> Vec<(String, Scenario)> {
        spec.iter().map(|(n, s)| (n.to_string(), *s)).collect()
    }

    #[test]
    fn vault_wide_scenarios_are_refused_after_the_first_cluster() {
        for s in Scenario::ALL.iter().copied() {
            let first = Fleet::check(&fleet(&[("a", s), ("b", Scenario::Healthy)]));
            assert_eq!(first, Ok(()), "{s} on the first cluster");
            let second = Fleet::check(&fleet(&[("a", Scenario::Healthy), ("b", s)]));
            match vault_wide(s) {
                Some(_) => {
                    let err = second.expect_err("refused").to_string();
                    assert!(err.contains("\"b\"") && err.contains(s.name()), "{err}");
                }
                None => assert_eq!(second, Ok(()), "{s} on the second cluster"),
            }
        }
    }

    #[test]
    fn scenarios_allowed_after_the_first_share_the_first_ones_policies_and_secrets() {
        // The fleet keeps the first lab's policy or secret where names collide; that loses
        // nothing only while the other clusters' scenarios leave them as a healthy world has them.
        let healthy = setup::build(Scenario::Healthy, "http://k", "http://c", "jwt");
        for s in Scenario::ALL.iter().copied() {
            if vault_wide(s).is_some() {
                continue;
            }
            let b = setup::build(s, "http://k", "http://c", "jwt");
            assert_eq!(b.policies, healthy.policies, "{s}");
            assert_eq!(b.secrets, healthy.secrets, "{s}");
            assert_eq!(b.bot_token_policy, None, "{s}");
            assert!(!b.sealed, "{s}");
        }
    }

    #[tokio::test]
    async fn a_sealed_vault_fails_every_clusters_operators() {
        let f = Fleet::start(
            &fleet(&[("a", Scenario::VaultSealed), ("b", Scenario::Healthy)]),
            LabOptions::default(),
        )
        .await
        .expect("fleet starts");
        let vss = f
            .lab("b")
            .unwrap()
            .operator_object("vaultstaticsecrets", "production", "orders-config")
            .expect("vss");
        let c = &vss["status"]["conditions"][0];
        assert_eq!(c["status"], "False");
        let msg = c["message"].as_str().unwrap();
        assert!(
            msg.contains("/v1/auth/kubernetes-b/login Code: 503. Errors: * Vault is sealed"),
            "{msg}"
        );
        f.shutdown().await;
        let f = Fleet::start(
            &fleet(&[
                ("a", Scenario::PolicyDenied),
                ("b", Scenario::ReviewerJwtExpired),
            ]),
            LabOptions::default(),
        )
        .await
        .expect("fleet starts");
        let ready = |name: &str| {
            f.lab(name)
                .unwrap()
                .operator_object("externalsecrets", "production", "payments-db")
                .expect("es")["status"]["conditions"][0]["status"]
                .clone()
        };
        assert_eq!(
            ready("a"),
            "True",
            "logins work; only the canary's policy is wrong"
        );
        assert_eq!(ready("b"), "False");
        f.shutdown().await;
    }

    #[test]
    fn names_must_be_lowercase_dashed_and_unique() {
        assert_eq!(Fleet::check(&[]), Err(FleetError::NoClusters));
        for bad in ["", "Prod", "prod_a", "prod a", "prod/a", "é"] {
            let err = Fleet::check(&fleet(&[(bad, Scenario::Healthy)])).unwrap_err();
            assert_eq!(
                err,
                FleetError::BadName {
                    name: bad.to_string()
                }
            );
            assert!(err.to_string().contains("expected lowercase letters"));
        }
        let dup = Fleet::check(&fleet(&[
            ("prod-a", Scenario::Healthy),
            ("prod-a", Scenario::RoleNotFound),
        ]))
        .unwrap_err();
        assert!(dup.to_string().contains("given twice"), "{dup}");
        assert_eq!(
            Fleet::check(&fleet(&[
                ("prod-a", Scenario::Healthy),
                ("eu-2", Scenario::Healthy)
            ])),
            Ok(())
        );
    }

    #[tokio::test]
    async fn the_first_lab_holds_every_clusters_mount_with_its_own_host() {
        let f = Fleet::start(
            &fleet(&[
                ("a", Scenario::Inconclusive),
                ("b", Scenario::KubeCaMismatch),
                ("c", Scenario::K8sAuthMountMissing),
            ]),
            LabOptions::default(),
        )
        .await
        .expect("fleet starts");
        let (a, b) = (f.lab("a").expect("a"), f.lab("b").expect("b"));
        {
            let vault = a.shared.vault();
            let mounts: Vec<&str> = vault.auth.keys().map(String::as_str).collect();
            assert_eq!(mounts, ["kubernetes", "kubernetes-a", "kubernetes-b"]);
            let cfg_b = vault.auth["kubernetes-b"].config.clone().expect("config");
            assert_eq!(cfg_b.host, b.kube_url());
            assert_eq!(cfg_b.ca_cert, setup::STALE_CLUSTER_CA_PEM);
            assert_eq!(
                vault.auth["kubernetes-a"].config.as_ref().map(|c| &c.host),
                Some(&a.kube_url())
            );
            assert_ne!(
                vault.auth["kubernetes-a"].accessor,
                vault.auth["kubernetes"].accessor
            );
            // The bot's restricted token reads the fleet's mounts as it reads `kubernetes`.
            let bot = vault.tokens[&f.vault_token()].clone();
            assert_eq!(
                vault.capabilities(&bot, "auth/kubernetes-b/config"),
                ["read"]
            );
        }
        assert!(f.lab("c").is_some() && f.lab("d").is_none());
        // Each cluster's operators use its fleet mount and fail as its scenario does (all
        // three are mount-wide failures).
        for (name, lab) in [("a", a), ("b", b), ("c", f.lab("c").unwrap())] {
            let mount = Fleet::auth_mount(name);
            let css = lab
                .operator_object("clustersecretstores", "", "vault-backend")
                .expect("store");
            assert_eq!(
                css["spec"]["provider"]["vault"]["auth"]["kubernetes"]["mountPath"],
                mount.as_str()
            );
            assert_eq!(css["status"]["conditions"][0]["status"], "False");
            let spc = lab
                .operator_object("secretproviderclasses", "production", "reports-vault")
                .expect("class");
            assert_eq!(
                spc["spec"]["parameters"]["vaultKubernetesMountPath"],
                mount.as_str()
            );
        }
        assert_eq!(f.vault_addr(), a.vault_addr());
        f.shutdown().await;
    }

    #[tokio::test]
    async fn a_login_through_a_clusters_mount_heals_that_cluster() {
        use super::super::login::tests::{
            canary_login, canary_token, pending_pods, renew_reviewer,
        };
        let f = Fleet::start(
            &fleet(&[
                ("a", Scenario::Healthy),
                ("b", Scenario::ReviewerJwtExpired),
            ]),
            LabOptions::default(),
        )
        .await
        .expect("fleet starts");
        let (a, b) = (f.lab("a").unwrap(), f.lab("b").unwrap());
        assert_eq!((pending_pods(a), pending_pods(b)), (0, 3));
        let canary = canary_token(b);
        assert_eq!(canary_login(a, "kubernetes-b", &canary).await, 403);
        assert_eq!(pending_pods(b), 3);
        renew_reviewer(a, "kubernetes-b", b);
        assert_eq!(canary_login(a, "kubernetes-b", &canary).await, 200);
        assert_eq!(pending_pods(b), 0, "b's operators and pods heal");
        let es = b
            .operator_object("externalsecrets", "production", "payments-db")
            .expect("es");
        assert_eq!(es["status"]["conditions"][0]["status"], "True");
        let css = b
            .operator_object("clustersecretstores", "", "vault-backend")
            .expect("css");
        assert_eq!(
            css["spec"]["provider"]["vault"]["auth"]["kubernetes"]["mountPath"], "kubernetes-b",
            "still b's fleet mount"
        );
        f.shutdown().await;
    }
}
