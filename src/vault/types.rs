//! Vault answers that stay inside the client: a login's token, the bot's own token's lookup.

use serde::{Deserialize, Serialize};

use crate::config::Secret;

/// A successful login.
#[derive(Debug, Clone, Serialize)]
pub struct LoginSuccess {
    pub client_token: Secret,
    pub policies: Vec<String>,
    pub lease_duration: u64,
    pub renewable: bool,
}

/// `auth/token/lookup-self`, the fields worth showing.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenInfo {
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub policies: Vec<String>,
    /// Seconds left; 0 for a token that never expires (root).
    #[serde(default)]
    pub ttl: i64,
    #[serde(default)]
    pub expire_time: Option<String>,
    #[serde(default)]
    pub renewable: bool,
    /// The TTL the token was created (or last renewed) with, in seconds.
    #[serde(default)]
    pub creation_ttl: i64,
    /// A periodic token's period in seconds (each renewal restores it); absent otherwise.
    #[serde(default)]
    pub period: Option<i64>,
    /// A hard limit on renewals in seconds; 0 when none.
    #[serde(default)]
    pub explicit_max_ttl: i64,
}
