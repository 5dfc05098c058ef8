//! What Vault answered, as the diagnosis reads it (facts §1.2, §1.3, §4): the Vault client
//! fills these types, the pure core decides on them.

use serde::{Deserialize, Serialize};

/// `sys/health`, with the HTTP status it came with.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Health {
    #[serde(default)]
    pub status_code: u16,
    #[serde(default)]
    pub initialized: bool,
    #[serde(default)]
    pub sealed: bool,
    #[serde(default)]
    pub standby: bool,
    #[serde(default)]
    pub performance_standby: bool,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub cluster_name: Option<String>,
}

/// One entry of `sys/auth`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuthMount {
    #[serde(default)]
    pub path: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub accessor: String,
    #[serde(default)]
    pub running_plugin_version: Option<String>,
}

/// `auth/<mount>/config` as read back (the reviewer JWT itself is never returned).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuthConfig {
    #[serde(default)]
    pub kubernetes_host: String,
    #[serde(default)]
    pub kubernetes_ca_cert: String,
    #[serde(default, deserialize_with = "pem_keys")]
    pub pem_keys: Vec<String>,
    #[serde(default)]
    pub issuer: String,
    #[serde(default)]
    pub disable_iss_validation: bool,
    #[serde(default)]
    pub disable_local_ca_jwt: bool,
    /// Absent on plugins older than v0.18.0.
    #[serde(default)]
    pub token_reviewer_jwt_set: Option<bool>,
    #[serde(default)]
    pub use_annotations_as_alias_metadata: bool,
}

fn pem_keys<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    #[allow(dead_code)] // the null variant only absorbs `null`
    enum Keys {
        List(Vec<String>),
        One(String),
        Null(Option<()>),
    }
    Ok(match Keys::deserialize(d)? {
        Keys::List(v) => v,
        Keys::One(s) if s.is_empty() => Vec::new(),
        Keys::One(s) => vec![s],
        Keys::Null(_) => Vec::new(),
    })
}

/// `auth/<mount>/role/<name>`, the fields the diagnosis reads.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Role {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub bound_service_account_names: Vec<String>,
    #[serde(default)]
    pub bound_service_account_namespaces: Vec<String>,
    #[serde(default)]
    pub bound_service_account_namespace_selector: String,
    #[serde(default)]
    pub audience: Option<String>,
    #[serde(default)]
    pub token_policies: Vec<String>,
    #[serde(default)]
    pub token_bound_cidrs: Vec<String>,
    #[serde(default)]
    pub token_ttl: u64,
    #[serde(default)]
    pub token_max_ttl: u64,
}

/// What reading a secret with a token gave.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum SecretRead {
    /// 200: the secret was readable (its content is not kept).
    Readable,
    /// 404: the token may read, but nothing is stored there.
    NotFound,
    /// 403: the token's policies deny the path.
    Denied { message: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_read_parses_the_documented_example() {
        let json = r#"{"kubernetes_host":"https://10.96.0.1:443","kubernetes_ca_cert":"-----BEGIN CERTIFICATE-----",
         "pem_keys":[],"issuer":"","disable_iss_validation":true,"disable_local_ca_jwt":false,
         "token_reviewer_jwt_set":true,"use_annotations_as_alias_metadata":false}"#;
        let c: AuthConfig = serde_json::from_str(json).unwrap();
        assert_eq!(c.token_reviewer_jwt_set, Some(true));
        assert!(c.pem_keys.is_empty());
        let old: AuthConfig =
            serde_json::from_str(r#"{"kubernetes_host":"h","pem_keys":null}"#).unwrap();
        assert_eq!(old.token_reviewer_jwt_set, None);
    }
}
