//! The simulated Vault's storage: seal state, auth mounts (config and roles), ACL policies,
//! KV v2 secrets and tokens. Built from a `VaultSetup`, changed through the HTTP API.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use super::policy::{self, PathRule};
use super::setup::{AuthConfigSetup, RoleSetup, VaultSetup};
use super::tokens::{random_alnum, random_bytes, random_uuid};

/// Default TTL of tokens (32 days, Vault's system default).
pub(crate) const DEFAULT_TTL: u64 = 2_764_800;

/// The stored `auth/<mount>/config`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StoredConfig {
    pub host: String,
    pub ca_cert: String,
    pub token_reviewer_jwt: String,
    pub pem_keys: Vec<String>,
    pub issuer: String,
    pub disable_iss_validation: bool,
    pub disable_local_ca_jwt: bool,
}

impl StoredConfig {
    /// The read view: never the JWT, only whether one is set.
    pub fn read_json(&self) -> Value {
        json!({
            "disable_iss_validation": self.disable_iss_validation,
            "disable_local_ca_jwt": self.disable_local_ca_jwt,
            "issuer": self.issuer,
            "kubernetes_ca_cert": self.ca_cert,
            "kubernetes_host": self.host,
            "pem_keys": self.pem_keys,
            "token_reviewer_jwt_set": !self.token_reviewer_jwt.is_empty(),
        })
    }

    /// Validates a full-replacement write the way the plugin does (OpenBao 2.7 wording).
    pub fn from_write(data: &Value) -> Result<Self, String> {
        let cfg = StoredConfig {
            host: str_field(data, "kubernetes_host"),
            ca_cert: str_field(data, "kubernetes_ca_cert"),
            token_reviewer_jwt: str_field(data, "token_reviewer_jwt"),
            pem_keys: list_field(data, "pem_keys"),
            issuer: str_field(data, "issuer"),
            disable_iss_validation: bool_field(data, "disable_iss_validation", true),
            disable_local_ca_jwt: bool_field(data, "disable_local_ca_jwt", false),
        };
        if cfg.host.is_empty() {
            return Err("no host provided".into());
        }
        if cfg
            .pem_keys
            .iter()
            .any(|k| !k.contains("-----BEGIN") || !k.contains("KEY") && !k.contains("CERTIFICATE"))
        {
            return Err("data does not contain any valid RSA or ECDSA public keys".into());
        }
        if cfg.ca_cert.is_empty() {
            return Err(if cfg.disable_local_ca_jwt {
                "kubernetes_ca_cert must be given when disable_local_ca_jwt is true".into()
            } else {
                "open /var/run/secrets/kubernetes.io/serviceaccount/ca.crt: no such file or directory"
                    .into()
            });
        }
        Ok(cfg)
    }

    fn from_setup(s: &AuthConfigSetup) -> Self {
        StoredConfig {
            host: s.kubernetes_host.clone(),
            ca_cert: s.kubernetes_ca_cert.clone(),
            token_reviewer_jwt: s.token_reviewer_jwt.clone(),
            pem_keys: s.pem_keys.clone(),
            issuer: s.issuer.clone(),
            disable_iss_validation: s.disable_iss_validation,
            disable_local_ca_jwt: s.disable_local_ca_jwt,
        }
    }
}

/// A stored role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Role {
    pub names: Vec<String>,
    pub namespaces: Vec<String>,
    pub audience: Option<String>,
    pub token_policies: Vec<String>,
    pub token_ttl: u64,
    pub token_max_ttl: u64,
}

impl Role {
    pub fn from_setup(s: &RoleSetup) -> Self {
        Role {
            names: s.bound_service_account_names.clone(),
            namespaces: s.bound_service_account_namespaces.clone(),
            audience: s.audience.clone(),
            token_policies: s.token_policies.clone(),
            token_ttl: s.token_ttl,
            token_max_ttl: 0,
        }
    }

    pub fn from_write(data: &Value) -> Result<Self, String> {
        let names = list_field(data, "bound_service_account_names");
        if names.is_empty() {
            return Err("\"bound_service_account_names\" can not be empty".into());
        }
        let namespaces = list_field(data, "bound_service_account_namespaces");
        if namespaces.is_empty() {
            return Err("\"bound_service_account_namespaces\" can not be empty".into());
        }
        let mut token_policies = list_field(data, "token_policies");
        if token_policies.is_empty() {
            token_policies = list_field(data, "policies");
        }
        let audience = Some(str_field(data, "audience")).filter(|a| !a.is_empty());
        Ok(Role {
            names,
            namespaces,
            audience,
            token_policies,
            token_ttl: duration_field(data, "token_ttl")
                .or_else(|| duration_field(data, "ttl"))
                .unwrap_or(0),
            token_max_ttl: duration_field(data, "token_max_ttl").unwrap_or(0),
        })
    }

    pub fn read_json(&self) -> Value {
        let mut v = json!({
            "alias_name_source": "serviceaccount_uid",
            "bound_service_account_names": self.names,
            "bound_service_account_namespace_selector": "",
            "bound_service_account_namespaces": self.namespaces,
            "token_bound_cidrs": [],
            "token_explicit_max_ttl": 0,
            "token_max_ttl": self.token_max_ttl,
            "token_no_default_policy": false,
            "token_num_uses": 0,
            "token_period": 0,
            "token_policies": self.token_policies,
            "token_strictly_bind_ip": false,
            "token_ttl": self.token_ttl,
            "token_type": "default",
        });
        if let Some(a) = &self.audience {
            v["audience"] = json!(a);
        }
        v
    }
}

/// An enabled kubernetes auth method.
#[derive(Clone, Debug)]
pub(crate) struct AuthMount {
    pub accessor: String,
    pub uuid: String,
    pub config: Option<StoredConfig>,
    pub roles: BTreeMap<String, Role>,
}

impl AuthMount {
    pub fn new() -> Self {
        AuthMount {
            accessor: format!("auth_kubernetes_{}", hex::encode(random_bytes::<4>())),
            uuid: random_uuid(),
            config: None,
            roles: BTreeMap::new(),
        }
    }
}

/// A Vault token.
#[derive(Clone, Debug)]
pub(crate) struct VaultToken {
    pub id: String,
    pub accessor: String,
    pub policies: Vec<String>,
    pub display_name: String,
    pub path: String,
    pub meta: Option<Value>,
    pub ttl: u64,
    pub created: chrono::DateTime<chrono::Utc>,
}

impl VaultToken {
    pub fn new(
        policies: Vec<String>,
        display_name: &str,
        path: &str,
        meta: Option<Value>,
        ttl: u64,
    ) -> Self {
        VaultToken {
            id: format!("hvs.{}", random_alnum(24)),
            accessor: random_alnum(24),
            policies,
            display_name: display_name.into(),
            path: path.into(),
            meta,
            ttl,
            created: chrono::Utc::now(),
        }
    }

    pub fn is_root(&self) -> bool {
        self.policies.iter().any(|p| p == "root")
    }
}

/// A KV v2 secret version.
#[derive(Clone, Debug)]
pub(crate) struct KvEntry {
    pub data: Value,
    pub version: u64,
    pub created: String,
}

/// The whole simulated Vault.
#[derive(Debug)]
pub(crate) struct VaultState {
    pub sealed: bool,
    pub auth: BTreeMap<String, AuthMount>,
    pub policies: BTreeMap<String, String>,
    pub kv: BTreeMap<String, KvEntry>,
    pub tokens: HashMap<String, VaultToken>,
}

impl VaultState {
    /// Builds the state a real dev server reaches after `apply_setup`. Returns the state and
    /// the bot's token.
    pub fn from_setup(setup: &VaultSetup, root_token: &str) -> (Self, String) {
        let mut st = VaultState {
            sealed: setup.sealed,
            auth: BTreeMap::new(),
            policies: setup.policies.clone(),
            kv: BTreeMap::new(),
            tokens: HashMap::new(),
        };
        let mut root = VaultToken::new(vec!["root".into()], "root", "auth/token/root", None, 0);
        root.id = root_token.to_string();
        st.tokens.insert(root.id.clone(), root);
        if let Some(path) = &setup.auth_mount {
            let mut m = AuthMount::new();
            m.config = setup.auth_config.as_ref().map(StoredConfig::from_setup);
            m.roles = setup
                .roles
                .iter()
                .map(|(k, r)| (k.to_lowercase(), Role::from_setup(r)))
                .collect();
            st.auth.insert(path.trim_matches('/').to_string(), m);
        }
        for (path, data) in &setup.secrets {
            st.kv_put(path, data.clone());
        }
        let bot = match &setup.bot_token_policy {
            Some(p) => {
                let t = VaultToken::new(
                    vec!["default".into(), p.clone()],
                    "token-vault-triage-bot",
                    "auth/token/create",
                    None,
                    DEFAULT_TTL,
                );
                let id = t.id.clone();
                st.tokens.insert(id.clone(), t);
                id
            }
            None => root_token.to_string(),
        };
        (st, bot)
    }

    pub fn kv_put(&mut self, path: &str, data: Value) -> KvEntry {
        let version = self.kv.get(path).map(|e| e.version + 1).unwrap_or(1);
        let entry = KvEntry {
            data,
            version,
            created: chrono::Utc::now()
                .format("%Y-%m-%dT%H:%M:%S%.9fZ")
                .to_string(),
        };
        self.kv.insert(path.to_string(), entry.clone());
        entry
    }

    /// Capabilities of `token` on `path`.
    pub fn capabilities(&self, token: &VaultToken, path: &str) -> Vec<String> {
        if token.is_root() {
            return vec!["root".into()];
        }
        let mut rules: Vec<PathRule> = Vec::new();
        for p in &token.policies {
            if p == "default" {
                rules.extend(policy::default_policy());
            } else if let Some(hcl) = self.policies.get(p) {
                rules.extend(policy::parse(hcl));
            }
        }
        policy::capabilities(rules.iter(), path)
    }
}

/// A string field; numbers and bools are rendered like Vault's weak decoding does.
pub(crate) fn str_field(data: &Value, key: &str) -> String {
    match data.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

/// A list field given as a JSON array or a comma-separated string.
pub(crate) fn list_field(data: &Value, key: &str) -> Vec<String> {
    match data.get(key) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s.trim().to_string()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .filter(|s| !s.is_empty())
            .collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect(),
        _ => Vec::new(),
    }
}

pub(crate) fn bool_field(data: &Value, key: &str, default: bool) -> bool {
    match data.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => matches!(s.as_str(), "true" | "1" | "t" | "T" | "TRUE" | "True"),
        Some(Value::Number(n)) => n.as_i64().is_some_and(|n| n != 0),
        _ => default,
    }
}

/// Seconds from a number or a Go-style duration string (`60s`, `1h`, `90`).
pub(crate) fn duration_field(data: &Value, key: &str) -> Option<u64> {
    match data.get(key)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => {
            let s = s.trim();
            if let Ok(n) = s.parse::<u64>() {
                return Some(n);
            }
            humantime::parse_duration(s).ok().map(|d| d.as_secs())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_write_validation_matches_openbao() {
        let err = |v: Value| StoredConfig::from_write(&v).unwrap_err();
        assert_eq!(err(json!({})), "no host provided");
        assert_eq!(
            err(json!({"kubernetes_host": "h", "disable_local_ca_jwt": true})),
            "kubernetes_ca_cert must be given when disable_local_ca_jwt is true"
        );
        assert!(err(json!({"kubernetes_host": "h"})).starts_with("open /var/run/secrets"));
        let ok = StoredConfig::from_write(
            &json!({"kubernetes_host": "h", "kubernetes_ca_cert": "x", "token_reviewer_jwt": "j"}),
        )
        .expect("valid");
        assert!(ok.disable_iss_validation);
        assert_eq!(ok.read_json()["token_reviewer_jwt_set"], true);
        assert!(ok.read_json().get("token_reviewer_jwt").is_none());
    }

    #[test]
    fn role_fields_accept_vault_spellings() {
        let r = Role::from_write(&json!({"bound_service_account_names": "a,b",
            "bound_service_account_namespaces": ["ns"], "policies": "p", "token_ttl": "1m"}))
        .expect("role");
        assert_eq!(r.names, vec!["a", "b"]);
        assert_eq!(r.token_policies, vec!["p"]);
        assert_eq!(r.token_ttl, 60);
        assert!(r.read_json().get("audience").is_none());
    }
}
