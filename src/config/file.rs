//! The TOML config file of design §4 and §11: strict (`deny_unknown_fields`), read once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde::Deserialize;

use super::cli::{DEFAULT_CALL_TIMEOUT, DEFAULT_TRIAGE_DEADLINE};
use super::platform::Platform;
use super::secret::Secret;

/// The TOML config file of design §4. Unknown keys are an error.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub vault: VaultSection,
    #[serde(default)]
    pub canary: CanarySection,
    /// Where Vault's reviewer token comes from; optional.
    pub reviewer: Option<ReviewerSection>,
    #[serde(default)]
    pub probes: ProbesSection,
    #[serde(default)]
    pub alerts: AlertsSection,
    #[serde(default)]
    pub chat: ChatSection,
    #[serde(default)]
    pub approvals: Vec<ApprovalRule>,
    #[serde(default)]
    pub people: Vec<Person>,
    #[serde(default)]
    pub state: StateSection,
    /// Several clusters, one Vault (design §11.2); see `clusters.rs`.
    #[serde(default)]
    pub clusters: Vec<super::clusters::ClusterSection>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultSection {
    /// Path of the kubernetes auth method.
    #[serde(default = "default_auth_mount")]
    pub auth_mount: String,
    /// The active node's address, for what a standby cannot forward (`sys/monitor`); found
    /// through `sys/leader` when unset.
    #[serde(default)]
    pub active_addr: Option<String>,
}

impl Default for VaultSection {
    fn default() -> Self {
        Self {
            auth_mount: default_auth_mount(),
            active_addr: None,
        }
    }
}

fn default_auth_mount() -> String {
    "kubernetes".into()
}

/// The identity used to reproduce a login.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanarySection {
    #[serde(default = "default_canary_namespace")]
    pub namespace: String,
    #[serde(default = "default_canary_sa")]
    pub service_account: String,
    #[serde(default = "default_canary_sa")]
    pub role: String,
    /// Secret the canary reads after a successful login (tells policy denial apart).
    pub secret_path: Option<String>,
    /// Audience of the canary token; the API server's own audiences when unset.
    pub audience: Option<String>,
}

impl Default for CanarySection {
    fn default() -> Self {
        Self {
            namespace: default_canary_namespace(),
            service_account: default_canary_sa(),
            role: default_canary_sa(),
            secret_path: None,
            audience: None,
        }
    }
}

fn default_canary_namespace() -> String {
    "vault-triage".into()
}

fn default_canary_sa() -> String {
    "vault-triage-canary".into()
}

/// Where Vault's reviewer token comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewerSection {
    pub namespace: String,
    pub service_account: String,
    /// Secret holding the reviewer JWT (key `token`), when it comes from one.
    pub token_secret: Option<String>,
    /// Lifetime asked for a rotated reviewer token (the API server may cap it).
    #[serde(default = "default_token_duration", with = "humantime_serde_compat")]
    pub token_duration: Duration,
    /// The reviewer watch warns this long before the token expires.
    #[serde(default = "default_warn_before", with = "humantime_serde_compat")]
    pub warn_before: Duration,
    /// How often the reviewer watch checks (`serve`); `"0s"` turns the watch off.
    #[serde(default = "default_check_every", with = "humantime_serde_compat")]
    pub check_every: Duration,
}

fn default_token_duration() -> Duration {
    Duration::from_secs(365 * 24 * 3600)
}

fn default_warn_before() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}

fn default_check_every() -> Duration {
    Duration::from_secs(3600)
}

/// Probe timing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbesSection {
    /// Timeout of each call, e.g. "5s".
    #[serde(default = "default_call_timeout", with = "humantime_serde_compat")]
    pub call_timeout: Duration,
    /// Bound on a whole triage, e.g. "12s".
    #[serde(default = "default_deadline", with = "humantime_serde_compat")]
    pub deadline: Duration,
    /// Pod-template annotation that names a workload's Vault role.
    #[serde(default = "default_role_annotation")]
    pub role_annotation: String,
    /// Deployments restarted at once by `restart-deployments`.
    #[serde(default = "default_restart_concurrency")]
    pub restart_concurrency: usize,
    /// Longest wait for one deployment to roll out, e.g. "5m".
    #[serde(default = "default_rollout_timeout", with = "humantime_serde_compat")]
    pub rollout_timeout: Duration,
}

fn default_restart_concurrency() -> usize {
    3
}

fn default_rollout_timeout() -> Duration {
    Duration::from_secs(300)
}

impl Default for ProbesSection {
    fn default() -> Self {
        Self {
            call_timeout: default_call_timeout(),
            deadline: default_deadline(),
            role_annotation: default_role_annotation(),
            restart_concurrency: default_restart_concurrency(),
            rollout_timeout: default_rollout_timeout(),
        }
    }
}

fn default_call_timeout() -> Duration {
    DEFAULT_CALL_TIMEOUT
}

fn default_deadline() -> Duration {
    DEFAULT_TRIAGE_DEADLINE
}

fn default_role_annotation() -> String {
    "vault.hashicorp.com/role".into()
}

/// Alert intake: credentials, routing, trigger rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsSection {
    /// Accepted bearer tokens (several, for rotation).
    #[serde(default)]
    pub tokens: Vec<Secret>,
    /// Accepted basic credentials, as `user:password`.
    #[serde(default)]
    pub basic: Vec<Secret>,
    /// Grafana's HMAC signing secret (`X-Grafana-Alerting-Signature`).
    pub grafana_hmac_secret: Option<Secret>,
    /// Grafana's timestamp header, when its signature covers `timestamp:body`.
    pub grafana_timestamp_header: Option<String>,
    /// Largest accepted body, in bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// A triage is reused for incidents that trigger within this window ("one triage per cause").
    #[serde(default = "default_triage_reuse", with = "humantime_serde_compat")]
    pub triage_reuse: Duration,
    /// Routing by labels; the first matching route wins, `[chat]` is the default.
    #[serde(default)]
    pub routes: Vec<AlertRoute>,
    #[serde(default)]
    pub trigger: TriggerRules,
    /// The alert label that names the cluster an alert concerns (design §11.2); an alert
    /// without it concerns every cluster. Read only with several `[[clusters]]`.
    #[serde(default = "default_cluster_label")]
    pub cluster_label: String,
}

fn default_cluster_label() -> String {
    "cluster".into()
}

impl Default for AlertsSection {
    fn default() -> Self {
        Self {
            tokens: Vec::new(),
            basic: Vec::new(),
            grafana_hmac_secret: None,
            grafana_timestamp_header: None,
            max_body_bytes: default_max_body(),
            triage_reuse: default_triage_reuse(),
            routes: Vec::new(),
            trigger: TriggerRules::default(),
            cluster_label: default_cluster_label(),
        }
    }
}

fn default_max_body() -> usize {
    4 * 1024 * 1024
}

fn default_triage_reuse() -> Duration {
    Duration::from_secs(600)
}

/// `[[alerts.routes]]`: where incidents whose alerts carry these labels go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRoute {
    /// All must match the group's common labels (or its group labels).
    pub labels: BTreeMap<String, String>,
    pub slack_channel: Option<String>,
    pub discord_channel: Option<String>,
}

impl AlertRoute {
    /// This route's channel on `platform`.
    pub fn channel(&self, platform: Platform) -> Option<&str> {
        match platform {
            Platform::Slack => self.slack_channel.as_deref(),
            Platform::Discord => self.discord_channel.as_deref(),
        }
    }
}

/// Default incident channels.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatSection {
    pub slack_channel: Option<String>,
    pub discord_channel: Option<String>,
}

impl ChatSection {
    /// The default incident channel on `platform`.
    pub fn channel(&self, platform: Platform) -> Option<&str> {
        match platform {
            Platform::Slack => self.slack_channel.as_deref(),
            Platform::Discord => self.discord_channel.as_deref(),
        }
    }
}

/// When an incident triggers a triage (`[alerts.trigger]`): by default when an alert's name or
/// annotations mention Vault or `permission denied`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerRules {
    /// Case-insensitive words looked for in alert names and annotations.
    #[serde(default = "default_keywords")]
    pub keywords: Vec<String>,
    /// Labels that, when all present with these values on an alert, trigger too.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Turn automatic triage off.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn default_keywords() -> Vec<String> {
    vec!["vault".into(), "permission denied".into()]
}

fn yes() -> bool {
    true
}

impl Default for TriggerRules {
    fn default() -> Self {
        Self {
            keywords: default_keywords(),
            labels: BTreeMap::new(),
            enabled: true,
        }
    }
}

/// One `[[approvals]]` rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRule {
    pub action: String,
    pub approvers: Vec<String>,
    #[serde(default = "default_required")]
    pub required: u32,
    #[serde(default = "default_expiry", with = "humantime_serde_compat")]
    pub expires_after: Duration,
}

fn default_required() -> u32 {
    1
}

fn default_expiry() -> Duration {
    Duration::from_secs(15 * 60)
}

/// One person with several platform identities (`[[people]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Person {
    pub name: String,
    pub slack: Option<String>,
    pub discord: Option<String>,
}

impl Person {
    /// Their account on `platform`, if listed.
    pub fn id_on(&self, platform: Platform) -> Option<&str> {
        match platform {
            Platform::Slack => self.slack.as_deref(),
            Platform::Discord => self.discord.as_deref(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateSection {
    /// Where the SQLite database (`state.db`) lives, and where an old `journal.jsonl` is
    /// imported from.
    #[serde(default = "default_state_dir")]
    pub dir: PathBuf,
    /// PostgreSQL instead of SQLite (`postgres://user@host:5432/db`), for several replicas.
    /// Without a password: that comes from `VAULT_TRIAGE_STATE_URL` or `PGPASSWORD`.
    #[serde(default)]
    pub url: Option<String>,
    /// Closed requests and resolved incidents older than this leave memory (their records
    /// stay in the database).
    #[serde(default = "default_retention", with = "humantime_serde_compat")]
    pub retention: Duration,
    /// Drills only (`VAULT_TRIAGE_STATE_DELAY_MS`, never from the file): every commit waits
    /// this long first.
    #[serde(skip)]
    pub commit_delay: Option<Duration>,
}

impl Default for StateSection {
    fn default() -> Self {
        Self {
            dir: default_state_dir(),
            url: None,
            retention: default_retention(),
            commit_delay: None,
        }
    }
}

fn default_retention() -> Duration {
    Duration::from_secs(30 * 24 * 3600)
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/vault-triage")
}

impl FileConfig {
    /// Loads the file, or the defaults when no path is given.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        match path {
            None => Ok(Self::default()),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                Self::parse(&text).with_context(|| format!("in config file {}", path.display()))
            }
        }
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let cfg: Self = toml::from_str(text)?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> anyhow::Result<()> {
        let mount = self.vault.auth_mount.trim_matches('/');
        anyhow::ensure!(
            !mount.is_empty() && !mount.contains(".."),
            "vault.auth_mount must be a mount path such as \"kubernetes\""
        );
        for rule in &self.approvals {
            anyhow::ensure!(
                rule.required >= 1,
                "approvals.required must be at least 1 (action {})",
                rule.action
            );
        }
        if self.probes.call_timeout.is_zero() || self.probes.deadline.is_zero() {
            anyhow::bail!("probes.call_timeout and probes.deadline must be positive");
        }
        if let Some(url) = &self.state.url {
            let parsed =
                url::Url::parse(url).map_err(|e| anyhow::anyhow!("state.url is not a URL: {e}"))?;
            anyhow::ensure!(
                matches!(parsed.scheme(), "postgres" | "postgresql"),
                "state.url must be a postgres:// URL (without it, the state is SQLite in state.dir)"
            );
            anyhow::ensure!(
                parsed.password().is_none(),
                "state.url must not carry a password: set it in VAULT_TRIAGE_STATE_URL or PGPASSWORD instead"
            );
        }
        anyhow::ensure!(
            !self.state.retention.is_zero(),
            "state.retention must be positive"
        );
        self.validate_clusters()
    }

    /// The auth mount without surrounding slashes.
    pub fn auth_mount(&self) -> &str {
        self.vault.auth_mount.trim_matches('/')
    }
}

/// `serde` adapter for durations written as "15m", "5s", "1h30m".
mod humantime_serde_compat {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DESIGN_EXAMPLE: &str = r#"
[vault]
auth_mount = "kubernetes"

[canary]
namespace = "vault-triage"
service_account = "vault-triage-canary"
role = "vault-triage-canary"
secret_path = "secret/data/vault-triage/canary"

[reviewer]
namespace = "vault"
service_account = "vault-auth"
token_secret = "vault-auth-token"

[alerts]
tokens = ["..."]

[chat]
slack_channel = "C0INCIDENTS"
discord_channel = "123456789012345678"

[[approvals]]
action = "reconfigure-auth"
approvers = ["U012ABC", "discord:123456789"]
required = 2
expires_after = "15m"

[state]
dir = "/var/lib/vault-triage"
"#;

    #[test]
    fn the_design_example_parses() {
        let cfg = FileConfig::parse(DESIGN_EXAMPLE).unwrap();
        assert_eq!(cfg.auth_mount(), "kubernetes");
        assert_eq!(cfg.canary.role, "vault-triage-canary");
        assert_eq!(
            cfg.reviewer.unwrap().token_secret.as_deref(),
            Some("vault-auth-token")
        );
        assert_eq!(cfg.approvals[0].required, 2);
        assert_eq!(cfg.approvals[0].expires_after, Duration::from_secs(900));
        assert_eq!(cfg.state.dir, PathBuf::from("/var/lib/vault-triage"));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = FileConfig::parse("[vault]\nauth_mount = \"k\"\nmount = \"x\"\n").unwrap_err();
        assert!(format!("{err:#}").contains("unknown field"), "{err:#}");
    }

    #[test]
    fn an_empty_file_gives_the_defaults() {
        let cfg = FileConfig::parse("").unwrap();
        assert_eq!(cfg.auth_mount(), "kubernetes");
        assert_eq!(cfg.canary.namespace, "vault-triage");
        assert!(cfg.reviewer.is_none());
        assert_eq!(cfg.probes.call_timeout, DEFAULT_CALL_TIMEOUT);
    }
}
