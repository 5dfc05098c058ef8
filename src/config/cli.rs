//! The command line: clap-derive commands and flags, each flag with its environment variable,
//! and the connection and chat settings they resolve into.
//!
//! Secrets are wrapped in [`Secret`] as soon as they are read, and clap is told never to print
//! their environment values.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use super::platform::Platform;
use super::secret::Secret;

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
        /// Which platform's definitions: `slack`, `discord` or `all`.
        #[arg(long, default_value = "all", value_parser = parse_platform_choice)]
        platform: PlatformChoice,
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

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only entries of this incident.
    #[arg(long)]
    pub incident: Option<String>,
    /// Only entries by this actor (person name, `slack:U…`, `discord:…` or user id).
    #[arg(long)]
    pub actor: Option<String>,
    /// Only entries of this action (`reconfigure-auth`, `restart-deployments`,
    /// `resync-secrets`).
    #[arg(long)]
    pub action: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// State directory (default: `state.dir` of the config file).
    #[arg(long, env = "VAULT_TRIAGE_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// PostgreSQL URL of the state (default: `state.url` of the config file; SQLite when none).
    #[arg(long, env = "VAULT_TRIAGE_STATE_URL", hide_env_values = true)]
    pub state_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address the HTTP endpoints listen on: `IP:PORT` or `HOST:PORT` (`localhost:8080`).
    #[arg(long, env = "VAULT_TRIAGE_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: String,

    #[command(flatten)]
    pub connection: ConnectionArgs,

    #[command(flatten)]
    pub chat: ChatArgs,

    #[command(flatten)]
    pub leader: LeaderArgs,

    /// PostgreSQL URL of the state, password included (overrides `state.url`; SQLite in
    /// `state.dir` when neither is set).
    #[arg(long, env = "VAULT_TRIAGE_STATE_URL", hide_env_values = true)]
    pub state_url: Option<String>,

    /// Drills: delay every state commit by this many milliseconds (a slow disk or a distant
    /// database), to see that acknowledgements do not wait for it.
    #[arg(long, env = "VAULT_TRIAGE_STATE_DELAY_MS", hide = true)]
    pub state_delay_ms: Option<u64>,
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
    /// Socket Mode connections kept open at once (Slack allows up to 10; a second one takes
    /// the envelopes while Slack refreshes the first).
    #[arg(long, env = "SLACK_SOCKET_CONNECTIONS", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=10))]
    pub slack_socket_connections: u32,
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
    /// Socket Mode connections kept open at once.
    pub socket_connections: u32,
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
            socket_connections: self.slack_socket_connections,
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

    /// Triage one cluster of `[[clusters]]` (default: every cluster, concurrently).
    #[arg(long, env = "VAULT_TRIAGE_CLUSTER")]
    pub cluster: Option<String>,

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
    /// `stop`: stops the lab started in the background by `eval "$(vault-triage lab)"` in this
    /// shell (`VAULT_TRIAGE_LAB_PID`).
    #[arg(value_enum)]
    pub action: Option<LabAction>,

    /// Stay in the foreground even when the output is not a terminal (by default, when it is
    /// captured as in `eval "$(vault-triage lab)"`, the lab prints the exports and keeps
    /// serving in the background).
    #[arg(long)]
    pub foreground: bool,

    /// Removes `--dir` when the lab stops (set for the lab's own temporary directory).
    #[arg(long, hide = true)]
    pub remove_dir_on_exit: bool,

    /// Scenario to simulate; `help` lists them.
    #[arg(
        long,
        env = "VAULT_TRIAGE_LAB_SCENARIO",
        default_value = "reviewer-jwt-expired"
    )]
    pub scenario: String,

    /// Several clusters with one Vault: NAME[=SCENARIO],... (a cluster without a scenario is
    /// healthy), e.g. `prod-a,prod-b=reviewer-jwt-expired`. `--scenario` is then ignored. The
    /// first cluster's lab is the Vault of all (`--listen` and `--fault` apply to it), holding
    /// each cluster's auth mount at `kubernetes-NAME`; scenarios of the Vault itself
    /// (vault-unreachable, vault-sealed, policy-denied, inconclusive) go to the first cluster.
    #[arg(long, env = "VAULT_TRIAGE_LAB_CLUSTERS")]
    pub clusters: Option<String>,

    /// Address of the simulated Vault + Kubernetes API (one listener serves both).
    #[arg(long, env = "VAULT_TRIAGE_LAB_LISTEN", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,

    /// Latency added to every simulated call, in milliseconds.
    #[arg(long, env = "VAULT_TRIAGE_LAB_LATENCY_MS", default_value_t = 0)]
    pub latency_ms: u64,

    /// For benchmarks: this many more workloads (Deployments, StatefulSets, DaemonSets) in
    /// namespace `bulk`, one in twenty naming a Vault role.
    #[arg(long, default_value_t = 0, hide_short_help = true)]
    pub bulk_workloads: usize,

    /// For benchmarks: this many more ExternalSecrets on the `vault-backend` store.
    #[arg(long, default_value_t = 0, hide_short_help = true)]
    pub bulk_external_secrets: usize,

    /// For benchmarks: this many more running pods in namespace `bulk`, owned by the bulk
    /// workloads in turn (those of workloads naming a Vault role injected).
    #[arg(long, default_value_t = 0, hide_short_help = true)]
    pub bulk_pods: usize,

    /// Directory for the kubeconfig and config file the lab writes (default: a new temporary one).
    #[arg(long, env = "VAULT_TRIAGE_LAB_DIR")]
    pub dir: Option<PathBuf>,

    /// Inject a fault for drills: `vault=hang`, `vault=503`, `kubernetes=hang`, `kubernetes=500` (repeatable).
    #[arg(long = "fault", env = "VAULT_TRIAGE_LAB_FAULT", value_delimiter = ',')]
    pub faults: Vec<String>,
}

/// What `vault-triage lab ACTION` does besides serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LabAction {
    /// Stop the background lab of this shell.
    Stop,
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

    /// A fleet of clusters with one Vault, `NAME[=SCENARIO],...` as for `lab --clusters`: the
    /// story shows the fleet, fixes the first cluster with a fault, and shows the fleet again.
    #[arg(long, env = "VAULT_TRIAGE_DEMO_CLUSTERS")]
    pub clusters: Option<String>,

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

/// Where the bot's own Vault token comes from: the Vault client reads it (and re-reads a file
/// when it changes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSetting {
    /// No token: only unauthenticated calls such as `sys/health` work.
    None,
    /// `VAULT_TOKEN`.
    Fixed(Secret),
    /// `VAULT_TOKEN_FILE`, e.g. a Vault Agent sink.
    File(PathBuf),
}

/// Resolved Vault connection settings.
#[derive(Debug, Clone)]
pub struct VaultSettings {
    pub addr: String,
    pub token: TokenSetting,
    pub ca_cert_pem: Option<Vec<u8>>,
    pub namespace: Option<String>,
}

impl ConnectionArgs {
    /// Reads the CA bundle the arguments point at; the token file is read by the Vault client.
    /// The bot's own set-up is checked here, each fault one sentence naming the variable: an
    /// address that is not a URL, or no token at all, is not a fault of the Vault under triage.
    pub fn vault_settings(&self) -> anyhow::Result<VaultSettings> {
        check_vault_addr(&self.vault_addr)?;
        let token = match (&self.vault_token, &self.vault_token_file) {
            (Some(t), _) if !t.trim().is_empty() => TokenSetting::Fixed(Secret::new(t.trim())),
            (_, Some(path)) => TokenSetting::File(path.clone()),
            _ => anyhow::bail!(
                "no Vault token for the bot: set VAULT_TOKEN, or VAULT_TOKEN_FILE to a file holding it (README, \"The Vault side\", says which policy it needs)"
            ),
        };
        let ca_cert_pem = match &self.vault_cacert {
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                anyhow::anyhow!(
                    "VAULT_CACERT {} cannot be read ({e}): point it at the PEM file of Vault's CA",
                    path.display()
                )
            })?),
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

/// `VAULT_ADDR` must be an absolute `http`/`https` URL with a host.
fn check_vault_addr(addr: &str) -> anyhow::Result<()> {
    let hint = "set it to Vault's address, such as https://vault.example:8200";
    let url = reqwest::Url::parse(addr.trim())
        .map_err(|_| anyhow::anyhow!("VAULT_ADDR {addr:?} is not a URL: {hint}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        anyhow::bail!("VAULT_ADDR {addr:?} is not an http:// or https:// address: {hint}");
    }
    Ok(())
}

/// `--platform`: one platform (`slack`, `discord`), or all of them (`all`, `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlatformChoice(pub Option<Platform>);

impl PlatformChoice {
    /// Whether `p` is chosen.
    pub fn includes(self, p: Platform) -> bool {
        self.0.is_none_or(|only| only == p)
    }
}

fn parse_platform_choice(s: &str) -> Result<PlatformChoice, String> {
    match s {
        "all" => Ok(PlatformChoice(None)),
        other => other.parse::<Platform>().map(|p| PlatformChoice(Some(p))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(s.token, TokenSetting::Fixed(Secret::new("root")));
        assert!(s.namespace.is_none());
    }

    fn args(addr: &str, token: Option<&str>) -> ConnectionArgs {
        ConnectionArgs {
            vault_addr: addr.into(),
            vault_token: token.map(String::from),
            vault_token_file: None,
            vault_cacert: None,
            vault_namespace: None,
            kubeconfig: None,
        }
    }

    #[test]
    fn the_bots_own_vault_settings_are_checked_before_any_call() {
        for bad in [
            "not-a-url",
            "vault.example:8200",
            "ftp://vault:8200",
            "http://",
            "",
        ] {
            let err = args(bad, Some("t"))
                .vault_settings()
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("VAULT_ADDR "), "{bad}: {err}");
            assert!(err.contains("https://vault.example:8200"), "{bad}: {err}");
        }
        for token in [None, Some(""), Some("  ")] {
            let err = args("https://vault:8200", token)
                .vault_settings()
                .unwrap_err()
                .to_string();
            assert!(err.contains("VAULT_TOKEN"), "{err}");
        }
        assert!(
            args("https://vault:8200", Some("t"))
                .vault_settings()
                .is_ok()
        );
    }

    #[test]
    fn commands_export_takes_one_platform_or_all() {
        let all = parse_platform_choice("all").unwrap();
        assert!(Platform::ALL.into_iter().all(|p| all.includes(p)));
        let slack = parse_platform_choice("slack").unwrap();
        assert!(slack.includes(Platform::Slack) && !slack.includes(Platform::Discord));
        assert_eq!(
            parse_platform_choice("discord"),
            Ok(PlatformChoice(Some(Platform::Discord)))
        );
        assert!(parse_platform_choice("irc").is_err());
    }
}
