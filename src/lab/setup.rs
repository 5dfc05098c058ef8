//! The scenario's Vault state as plain data (`VaultSetup`), and the applier that writes it into
//! a real Vault/OpenBao dev server. The simulated Vault starts from the same value.

use std::collections::BTreeMap;

use anyhow::Context as _;
use serde::Serialize;
use serde_json::{Value, json};

use super::Scenario;

/// The cluster CA the lab's Kubernetes API is "signed" with.
pub(crate) const CLUSTER_CA_PEM: &str = include_str!("keys/cluster-ca.pem");
/// A different CA, as left behind by a rotation.
pub(crate) const STALE_CLUSTER_CA_PEM: &str = include_str!("keys/stale-cluster-ca.pem");

/// Mount path of the kubernetes auth method in every scenario that has one.
pub const AUTH_MOUNT: &str = "kubernetes";
/// Canary identity.
pub const CANARY_NAMESPACE: &str = "vault-triage";
pub const CANARY_SA: &str = "vault-triage-canary";
pub const CANARY_ROLE: &str = "vault-triage-canary";
pub const CANARY_SECRET_PATH: &str = "secret/data/vault-triage/canary";
/// Reviewer identity.
pub const REVIEWER_NAMESPACE: &str = "vault";
pub const REVIEWER_SA: &str = "vault-auth";
pub const REVIEWER_SECRET: &str = "vault-auth-token";
/// The bot's restricted policy (inconclusive scenario).
pub const BOT_POLICY: &str = "vault-triage-bot";
/// The five applications that log in through Vault.
pub const APPS: [&str; 5] = [
    "payments-api",
    "billing-worker",
    "orders-api",
    "ledger-sync",
    "notifications",
];
/// The issuer enforced in the issuer-mismatch scenario.
pub const STALE_ISSUER: &str = "https://oidc.eks.example.com/id/STALE";

/// A full write of `auth/<mount>/config` (all fields, as a fix must send them).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct AuthConfigSetup {
    pub kubernetes_host: String,
    pub kubernetes_ca_cert: String,
    pub token_reviewer_jwt: String,
    pub pem_keys: Vec<String>,
    pub issuer: String,
    pub disable_iss_validation: bool,
    pub disable_local_ca_jwt: bool,
}

/// A kubernetes auth role.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RoleSetup {
    pub bound_service_account_names: Vec<String>,
    pub bound_service_account_namespaces: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    pub token_policies: Vec<String>,
    /// Seconds; 0 = system default.
    pub token_ttl: u64,
}

/// The scenario's Vault state as data.
#[derive(Clone, Debug, Serialize)]
pub struct VaultSetup {
    /// Seal Vault after everything else is written.
    pub sealed: bool,
    /// Path of the kubernetes auth mount (`kubernetes`), `None` = not mounted.
    pub auth_mount: Option<String>,
    /// The mount's config write, `None` = never configured.
    pub auth_config: Option<AuthConfigSetup>,
    /// Roles by name.
    pub roles: BTreeMap<String, RoleSetup>,
    /// ACL policies by name (HCL).
    pub policies: BTreeMap<String, String>,
    /// KV v2 secrets by API path (`secret/data/...`) -> the `data` object.
    pub secrets: BTreeMap<String, Value>,
    /// Policy of the bot's Vault token; `None` = the root token.
    pub bot_token_policy: Option<String>,
}

pub(crate) fn canary_policy_hcl(path: &str) -> String {
    format!("path \"{path}\" {{\n  capabilities = [\"read\"]\n}}\n")
}

pub(crate) fn bot_policy_hcl(mount: &str) -> String {
    format!(
        "path \"sys/auth\" {{\n  capabilities = [\"read\"]\n}}\n\
         path \"auth/{mount}/config\" {{\n  capabilities = [\"read\"]\n}}\n\
         path \"auth/{mount}/role/*\" {{\n  capabilities = [\"read\", \"list\"]\n}}\n"
    )
}

fn role(sa: &str, ns: &str, policy: &str, ttl: u64) -> RoleSetup {
    RoleSetup {
        bound_service_account_names: vec![sa.into()],
        bound_service_account_namespaces: vec![ns.into()],
        audience: None,
        token_policies: vec![policy.into()],
        token_ttl: ttl,
    }
}

/// Builds the Vault state of `scenario`. `kube_host` is the lab's Kubernetes API URL,
/// `closed_url` a URL where nothing listens, `reviewer_jwt` the reviewer token of this world.
pub(crate) fn build(
    scenario: Scenario,
    kube_host: &str,
    closed_url: &str,
    reviewer_jwt: &str,
) -> VaultSetup {
    let mut config = AuthConfigSetup {
        kubernetes_host: kube_host.to_string(),
        kubernetes_ca_cert: CLUSTER_CA_PEM.to_string(),
        token_reviewer_jwt: reviewer_jwt.to_string(),
        pem_keys: Vec::new(),
        issuer: String::new(),
        disable_iss_validation: true,
        disable_local_ca_jwt: true,
    };
    let mut roles = BTreeMap::new();
    roles.insert(
        CANARY_ROLE.to_string(),
        role(CANARY_SA, CANARY_NAMESPACE, CANARY_ROLE, 60),
    );
    for app in APPS {
        roles.insert(app.to_string(), role(app, "production", app, 3600));
    }
    let mut policies = BTreeMap::new();
    policies.insert(
        CANARY_ROLE.to_string(),
        canary_policy_hcl(CANARY_SECRET_PATH),
    );
    for app in APPS {
        policies.insert(
            app.to_string(),
            canary_policy_hcl(&format!("secret/data/production/{app}/*")),
        );
    }
    let mut secrets = BTreeMap::new();
    secrets.insert(CANARY_SECRET_PATH.to_string(), json!({"canary": "ok"}));

    let mut setup = VaultSetup {
        sealed: false,
        auth_mount: Some(AUTH_MOUNT.to_string()),
        auth_config: None,
        roles,
        policies,
        secrets,
        bot_token_policy: None,
    };
    match scenario {
        Scenario::VaultSealed => setup.sealed = true,
        Scenario::K8sAuthMountMissing => {
            setup.auth_mount = None;
            setup.roles.clear();
        }
        Scenario::K8sAuthUnconfigured => {}
        Scenario::KubeApiUnreachable => config.kubernetes_host = closed_url.to_string(),
        Scenario::KubeCaMismatch => config.kubernetes_ca_cert = STALE_CLUSTER_CA_PEM.to_string(),
        Scenario::RoleBindingMismatch => {
            if let Some(r) = setup.roles.get_mut(CANARY_ROLE) {
                r.bound_service_account_names = vec![format!("{CANARY_SA}-old")];
            }
        }
        Scenario::AudienceMismatch => {
            if let Some(r) = setup.roles.get_mut(CANARY_ROLE) {
                r.audience = Some("vault".into());
            }
        }
        Scenario::IssuerMismatch => {
            config.issuer = STALE_ISSUER.to_string();
            config.disable_iss_validation = false;
        }
        Scenario::RoleNotFound => {
            setup.roles.remove(CANARY_ROLE);
        }
        Scenario::PolicyDenied => {
            setup.policies.insert(
                CANARY_ROLE.to_string(),
                canary_policy_hcl("secret/data/vault-triage/other"),
            );
        }
        Scenario::Inconclusive => {
            setup
                .policies
                .insert(BOT_POLICY.to_string(), bot_policy_hcl(AUTH_MOUNT));
            setup.bot_token_policy = Some(BOT_POLICY.to_string());
        }
        Scenario::Healthy
        | Scenario::VaultUnreachable
        | Scenario::ReviewerJwtExpired
        | Scenario::ReviewerJwtRejected
        | Scenario::ReviewerRbacMissing
        | Scenario::ClientJwtRejected => {}
    }
    if !matches!(
        scenario,
        Scenario::K8sAuthUnconfigured | Scenario::K8sAuthMountMissing
    ) {
        setup.auth_config = Some(config);
    }
    setup
}

/// Applies a VaultSetup to a REAL Vault/OpenBao dev server through its HTTP API (root token),
/// the same state the lab's simulated Vault starts from. Returns the Vault token the bot should
/// use there (root, or a token created with the bot's restricted policy).
pub async fn apply_setup(
    addr: &str,
    root_token: &str,
    setup: &VaultSetup,
) -> anyhow::Result<String> {
    apply_setup_with(&reqwest::Client::new(), addr, root_token, setup).await
}

/// [`apply_setup`] through `http` (a client that trusts a TLS Vault's CA, for example).
pub async fn apply_setup_with(
    http: &reqwest::Client,
    addr: &str,
    root_token: &str,
    setup: &VaultSetup,
) -> anyhow::Result<String> {
    let base = addr.trim_end_matches('/');
    let call = |method: reqwest::Method, path: String, body: Value| {
        let http = http.clone();
        let url = format!("{base}/v1/{path}");
        async move {
            let resp = http
                .request(method.clone(), &url)
                .header("X-Vault-Token", root_token)
                .json(&body)
                .send()
                .await
                .with_context(|| format!("{method} {url}"))?;
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            if !status.is_success() {
                anyhow::bail!("{method} {url}: HTTP {status}: {text}");
            }
            Ok::<Value, anyhow::Error>(serde_json::from_str(&text).unwrap_or(Value::Null))
        }
    };
    if let Some(mount) = &setup.auth_mount {
        call(
            reqwest::Method::POST,
            format!("sys/auth/{mount}"),
            json!({"type": "kubernetes"}),
        )
        .await?;
        if let Some(cfg) = &setup.auth_config {
            call(
                reqwest::Method::POST,
                format!("auth/{mount}/config"),
                serde_json::to_value(cfg)?,
            )
            .await?;
        }
        for (name, r) in &setup.roles {
            call(
                reqwest::Method::POST,
                format!("auth/{mount}/role/{name}"),
                serde_json::to_value(r)?,
            )
            .await?;
        }
    }
    for (name, hcl) in &setup.policies {
        call(
            reqwest::Method::PUT,
            format!("sys/policies/acl/{name}"),
            json!({"policy": hcl}),
        )
        .await?;
    }
    for (path, data) in &setup.secrets {
        call(reqwest::Method::POST, path.clone(), json!({"data": data})).await?;
    }
    let token = match &setup.bot_token_policy {
        Some(policy) => {
            let resp = call(
                reqwest::Method::POST,
                "auth/token/create".into(),
                json!({"policies": [policy], "display_name": "vault-triage-bot"}),
            )
            .await?;
            resp["auth"]["client_token"]
                .as_str()
                .map(str::to_string)
                .context("auth/token/create returned no client_token")?
        }
        None => root_token.to_string(),
    };
    if setup.sealed {
        call(reqwest::Method::POST, "sys/seal".into(), json!({})).await?;
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_change_only_their_piece() {
        let h = build(Scenario::Healthy, "http://k", "http://c", "jwt");
        let cfg = h.auth_config.clone().expect("config");
        assert!(cfg.disable_iss_validation && cfg.disable_local_ca_jwt);
        assert_eq!(cfg.token_reviewer_jwt, "jwt");
        assert_eq!(h.roles.len(), 6);
        let r = build(Scenario::RoleNotFound, "http://k", "http://c", "jwt");
        assert!(!r.roles.contains_key(CANARY_ROLE));
        let u = build(Scenario::K8sAuthUnconfigured, "http://k", "http://c", "jwt");
        assert!(u.auth_mount.is_some() && u.auth_config.is_none());
        let m = build(Scenario::K8sAuthMountMissing, "http://k", "http://c", "jwt");
        assert!(m.auth_mount.is_none());
        let k = build(Scenario::KubeApiUnreachable, "http://k", "http://c", "jwt");
        assert_eq!(k.auth_config.expect("cfg").kubernetes_host, "http://c");
        let i = build(Scenario::Inconclusive, "http://k", "http://c", "jwt");
        assert_eq!(i.bot_token_policy.as_deref(), Some(BOT_POLICY));
        assert!(!i.policies[BOT_POLICY].contains("sys/monitor"));
    }
}
