//! Configuration: the command line, the environment and the TOML file, in one place.
//!
//! This is the only module that reads the process environment (through clap's `env`
//! attributes) or the config file. Everything else receives typed values: [`Cli`] for what
//! was asked, [`ConnectionArgs`] resolved into [`VaultSettings`] and a kubeconfig path, and
//! [`FileConfig`] for the strict TOML file of design §4. Secrets are wrapped in [`Secret`]
//! as soon as they are read, and clap is told never to print their environment values.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;

use crate::secret::Secret;
use crate::vault::TokenSource;

/// Default address of `serve`.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
/// Default per-call timeout of a probe.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Default bound on a whole triage run.
pub const DEFAULT_TRIAGE_DEADLINE: Duration = Duration::from_secs(12);

#[derive(Debug, Parser)]
#[command(
    name = "vault-triage",
    version,
    about = "Root-causes Vault Kubernetes-auth incidents (`vault: permission denied`) and drives approval-gated fixes"
)]
pub struct Cli {
    /// Path of the TOML config file.
    #[arg(long, global = true, env = "VAULT_TRIAGE_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Log format: `auto` is readable on a terminal and JSON otherwise.
    #[arg(long, global = true, env = "VAULT_TRIAGE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,

    /// Log filter in `tracing` syntax, e.g. `info` or `vault_triage=debug`.
    #[arg(long, global = true, env = "VAULT_TRIAGE_LOG", default_value = "info")]
    pub log: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Auto,
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the bot: HTTP endpoints, Slack Socket Mode and the Discord gateway where configured.
    Serve(Box<ServeArgs>),
    /// Run one triage from a terminal. Exit 0 healthy, 2 fault diagnosed, 1 could not run.
    Probe(ProbeArgs),
    /// Serve the simulated Vault + Kubernetes API and print the environment to use it.
    Lab(LabArgs),
    /// Tell the whole incident story offline, against the built-in lab.
    Demo(DemoArgs),
    /// Print the audit journal (`state.dir`), filtered by incident, actor or action.
    Audit(AuditArgs),
    /// Print or register the slash-command definitions from `commands/`.
    Commands(CommandsArgs),
}

#[derive(Debug, Args)]
pub struct CommandsArgs {
    #[command(subcommand)]
    pub op: CommandsOp,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per run
pub enum CommandsOp {
    /// Print the definitions: the Slack app manifest and the Discord command JSON.
    Export {
        /// Which platform's definitions.
        #[arg(long, value_enum, default_value_t = Platform::All)]
        platform: Platform,
    },
    /// Register the Discord command (global, or in one guild) through the Discord API.
    Register {
        /// Register on Discord (the only platform whose commands are registered by API).
        #[arg(long)]
        discord: bool,
        /// Register in this guild only (immediate) instead of globally.
        #[arg(long, env = "DISCORD_GUILD_ID")]
        guild: Option<String>,
        #[command(flatten)]
        chat: ChatArgs,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Platform {
    Slack,
    Discord,
    All,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only entries of this incident.
    #[arg(long)]
    pub incident: Option<String>,
    /// Only entries by this actor (person name, `slack:U…`, `discord:…` or user id).
    #[arg(long)]
    pub actor: Option<String>,
    /// Only entries of this action (`reconfigure-auth`, `restart-deployments`).
    #[arg(long)]
    pub action: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// State directory (default: `state.dir` of the config file).
    #[arg(long, env = "VAULT_TRIAGE_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address the HTTP endpoints listen on.
    #[arg(long, env = "VAULT_TRIAGE_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub connection: ConnectionArgs,

    #[command(flatten)]
    pub chat: ChatArgs,

    #[command(flatten)]
    pub leader: LeaderArgs,
}

/// Several replicas: leader election through a Kubernetes Lease.
#[derive(Debug, Clone, Args)]
pub struct LeaderArgs {
    /// Elect a leader through a Lease; followers forward requests to it.
    #[arg(long, env = "VAULT_TRIAGE_LEADER_ELECTION", default_value_t = false)]
    pub leader_election: bool,
    /// This replica's identity in the Lease (the pod name).
    #[arg(long, env = "POD_NAME")]
    pub pod_name: Option<String>,
    /// Namespace of the Lease (the pod's namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "vault-triage")]
    pub pod_namespace: String,
    /// The pod's IP, to build the address followers forward to.
    #[arg(long, env = "POD_IP")]
    pub pod_ip: Option<String>,
    /// Address followers forward to (default `http://POD_IP:<listen port>`).
    #[arg(long, env = "VAULT_TRIAGE_ADVERTISE_URL")]
    pub advertise_url: Option<String>,
    /// Name of the Lease.
    #[arg(
        long,
        env = "VAULT_TRIAGE_LEASE_NAME",
        default_value = "vault-triage-leader"
    )]
    pub lease_name: String,
    /// Lease duration in seconds (renewed every third of it).
    #[arg(long, env = "VAULT_TRIAGE_LEASE_SECONDS", default_value_t = 15)]
    pub lease_seconds: u64,
}

/// Default Slack Web API base.
pub const SLACK_API_URL: &str = "https://slack.com/api/";

/// Slack and Discord credentials and endpoints. What is set decides the transports.
#[derive(Debug, Clone, Default, Args)]
pub struct ChatArgs {
    /// Slack bot token (`xoxb-…`): posts and updates messages.
    #[arg(long, env = "SLACK_BOT_TOKEN", hide_env_values = true)]
    pub slack_bot_token: Option<String>,
    /// Slack signing secret: serves the HTTP endpoints `/slack/*` (v0 signatures).
    #[arg(long, env = "SLACK_SIGNING_SECRET", hide_env_values = true)]
    pub slack_signing_secret: Option<String>,
    /// Slack app-level token (`xapp-…`): runs Socket Mode.
    #[arg(long, env = "SLACK_APP_TOKEN", hide_env_values = true)]
    pub slack_app_token: Option<String>,
    /// Slack Web API base (tests and proxies).
    #[arg(long, env = "SLACK_API_URL", default_value = SLACK_API_URL)]
    pub slack_api_url: String,
    /// Discord bot token: posts messages and starts threads; runs the gateway.
    #[arg(long, env = "DISCORD_BOT_TOKEN", hide_env_values = true)]
    pub discord_bot_token: Option<String>,
    /// Discord application public key (hex): serves `/discord/interactions` (Ed25519).
    #[arg(long, env = "DISCORD_PUBLIC_KEY")]
    pub discord_public_key: Option<String>,
    /// Discord application id.
    #[arg(long, env = "DISCORD_APPLICATION_ID")]
    pub discord_application_id: Option<String>,
    /// Discord REST base (tests and proxies); Discord's own when unset.
    #[arg(long, env = "DISCORD_API_URL")]
    pub discord_api_url: Option<String>,
    /// Force the Discord gateway on or off (default: on when there is a bot token and no public key).
    #[arg(long, env = "DISCORD_GATEWAY", value_enum)]
    pub discord_gateway: Option<OnOff>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

/// Resolved Slack settings.
#[derive(Debug, Clone)]
pub struct SlackSettings {
    pub bot_token: Option<Secret>,
    pub signing_secret: Option<Secret>,
    pub app_token: Option<Secret>,
    /// Ends with `/`.
    pub api_url: String,
}

/// Resolved Discord settings.
#[derive(Debug, Clone)]
pub struct DiscordSettings {
    pub bot_token: Option<Secret>,
    pub public_key: Option<String>,
    pub application_id: Option<String>,
    pub api_url: Option<String>,
    pub gateway: bool,
}

impl ChatArgs {
    fn secret(v: &Option<String>) -> Option<Secret> {
        v.as_ref()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(Secret::new)
    }

    /// Slack, when any Slack credential is set.
    pub fn slack(&self) -> Option<SlackSettings> {
        let s = SlackSettings {
            bot_token: Self::secret(&self.slack_bot_token),
            signing_secret: Self::secret(&self.slack_signing_secret),
            app_token: Self::secret(&self.slack_app_token),
            api_url: format!("{}/", self.slack_api_url.trim_end_matches('/')),
        };
        (s.bot_token.is_some() || s.signing_secret.is_some() || s.app_token.is_some()).then_some(s)
    }

    /// Discord, when any Discord credential is set.
    pub fn discord(&self) -> Option<DiscordSettings> {
        let bot_token = Self::secret(&self.discord_bot_token);
        let public_key = self
            .discord_public_key
            .clone()
            .filter(|k| !k.trim().is_empty());
        let gateway = match self.discord_gateway {
            Some(OnOff::On) => true,
            Some(OnOff::Off) => false,
            None => bot_token.is_some() && public_key.is_none(),
        };
        (bot_token.is_some() || public_key.is_some()).then(|| DiscordSettings {
            bot_token,
            public_key,
            application_id: self
                .discord_application_id
                .clone()
                .filter(|a| !a.is_empty()),
            api_url: self.discord_api_url.clone().filter(|u| !u.is_empty()),
            gateway,
        })
    }
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Output format.
    #[arg(long, env = "VAULT_TRIAGE_FORMAT", value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,

    /// Triage one Vault role (default: the canary role of the config file).
    #[arg(long, env = "VAULT_TRIAGE_ROLE")]
    pub role: Option<String>,

    #[command(flatten)]
    pub connection: ConnectionArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct LabArgs {
    /// Scenario to simulate; `help` lists them.
    #[arg(
        long,
        env = "VAULT_TRIAGE_LAB_SCENARIO",
        default_value = "reviewer-jwt-expired"
    )]
    pub scenario: String,

    /// Address of the simulated Vault + Kubernetes API (one listener serves both).
    #[arg(long, env = "VAULT_TRIAGE_LAB_LISTEN", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,

    /// Latency added to every simulated call, in milliseconds.
    #[arg(long, env = "VAULT_TRIAGE_LAB_LATENCY_MS", default_value_t = 0)]
    pub latency_ms: u64,

    /// Directory for the kubeconfig and config file the lab writes (default: a new temporary one).
    #[arg(long, env = "VAULT_TRIAGE_LAB_DIR")]
    pub dir: Option<PathBuf>,

    /// Inject a fault for drills: `vault=hang`, `vault=503`, `kubernetes=hang`, `kubernetes=500` (repeatable).
    #[arg(long = "fault", env = "VAULT_TRIAGE_LAB_FAULT", value_delimiter = ',')]
    pub faults: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Scenario the story starts from.
    #[arg(
        long,
        env = "VAULT_TRIAGE_DEMO_SCENARIO",
        default_value = "reviewer-jwt-expired"
    )]
    pub scenario: String,

    /// Also print the chat messages the bot would post (Slack Block Kit or Discord JSON).
    #[arg(long, value_enum)]
    pub chat: Option<ChatFormat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ChatFormat {
    Slack,
    Discord,
}

/// How to reach Vault and Kubernetes: the standard variables users already have.
#[derive(Debug, Clone, Args)]
pub struct ConnectionArgs {
    /// Vault address.
    #[arg(long, env = "VAULT_ADDR", default_value = "https://127.0.0.1:8200")]
    pub vault_addr: String,

    /// Vault token of the bot (must not come from the kubernetes auth mount it diagnoses).
    #[arg(long, env = "VAULT_TOKEN", hide_env_values = true)]
    pub vault_token: Option<String>,

    /// File holding the Vault token (used when VAULT_TOKEN is unset).
    #[arg(long, env = "VAULT_TOKEN_FILE")]
    pub vault_token_file: Option<PathBuf>,

    /// PEM CA bundle to verify Vault's TLS certificate.
    #[arg(long, env = "VAULT_CACERT")]
    pub vault_cacert: Option<PathBuf>,

    /// Vault Enterprise / OpenBao namespace.
    #[arg(long, env = "VAULT_NAMESPACE")]
    pub vault_namespace: Option<String>,

    /// kubeconfig file; in-cluster configuration when unset.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
}

/// Resolved Vault connection settings.
#[derive(Debug, Clone)]
pub struct VaultSettings {
    pub addr: String,
    pub token: TokenSource,
    pub ca_cert_pem: Option<Vec<u8>>,
    pub namespace: Option<String>,
}

impl ConnectionArgs {
    /// Reads the token file and CA bundle the arguments point at.
    pub fn vault_settings(&self) -> anyhow::Result<VaultSettings> {
        let token = match (&self.vault_token, &self.vault_token_file) {
            (Some(t), _) if !t.trim().is_empty() => TokenSource::Fixed(Secret::new(t.trim())),
            (_, Some(path)) => TokenSource::file(path)?,
            _ => TokenSource::None,
        };
        let ca_cert_pem = match &self.vault_cacert {
            Some(path) => Some(
                std::fs::read(path)
                    .with_context(|| format!("reading VAULT_CACERT {}", path.display()))?,
            ),
            None => None,
        };
        Ok(VaultSettings {
            addr: self.vault_addr.trim_end_matches('/').to_string(),
            token,
            ca_cert_pem,
            namespace: self.vault_namespace.clone().filter(|n| !n.is_empty()),
        })
    }
}

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
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultSection {
    /// Path of the kubernetes auth method.
    #[serde(default = "default_auth_mount")]
    pub auth_mount: String,
}

impl Default for VaultSection {
    fn default() -> Self {
        Self {
            auth_mount: default_auth_mount(),
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
    /// How often the reviewer watch checks (`serve`).
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
    pub trigger: crate::alerts::trigger::TriggerRules,
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
            trigger: crate::alerts::trigger::TriggerRules::default(),
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
    pub labels: std::collections::BTreeMap<String, String>,
    pub slack_channel: Option<String>,
    pub discord_channel: Option<String>,
}

/// Default incident channels.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatSection {
    pub slack_channel: Option<String>,
    pub discord_channel: Option<String>,
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateSection {
    #[serde(default = "default_state_dir")]
    pub dir: PathBuf,
}

impl Default for StateSection {
    fn default() -> Self {
        Self {
            dir: default_state_dir(),
        }
    }
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
        Ok(())
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

    #[test]
    fn a_token_given_directly_wins_over_the_token_file() {
        let args = ConnectionArgs {
            vault_addr: "http://127.0.0.1:8200/".into(),
            vault_token: Some("root".into()),
            vault_token_file: Some("/nonexistent".into()),
            vault_cacert: None,
            vault_namespace: Some(String::new()),
            kubeconfig: None,
        };
        let s = args.vault_settings().unwrap();
        assert_eq!(s.addr, "http://127.0.0.1:8200");
        assert_eq!(s.token.current().unwrap().expose(), "root");
        assert!(s.namespace.is_none());
    }
}
