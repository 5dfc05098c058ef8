//! Composition root: builds the clients from configuration and runs each command.
//!
//! Commands are plain async functions (`command_<verb>`); each returns the process exit code.

use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::config::{
    AuditArgs, Cli, Command, ConnectionArgs, DemoArgs, FileConfig, LabArgs, OutputFormat,
    ProbeArgs, ServeArgs,
};
use std::sync::Arc;

use crate::alerts::service::AlertService;
use crate::approval::Policy;
use crate::chat::bot::ChatBot;
use crate::chat::discord::DiscordRuntime;
use crate::chat::poster::ChannelPoster;
use crate::chat::slack::SlackRuntime;
use crate::fixes::Fixes;
use crate::incident::journal::Journal;
use crate::kube::KubeClient;
use crate::lab::{Lab, LabOptions, Scenario};
use crate::probes::{ProbeTarget, Probes};
use crate::remediation::{PlanSettings, Remediator};
use crate::triage::{Report, triage};
use crate::vault::VaultClient;

/// Exit code: the command could not run.
pub const EXIT_COULD_NOT_RUN: i32 = 1;

/// Runs the command the user asked for.
pub async fn run(cli: Cli) -> i32 {
    let result = match cli.command {
        Command::Probe(args) => command_probe(cli.config.as_deref(), args).await,
        Command::Lab(args) => command_lab(args).await,
        Command::Demo(args) => command_demo(args).await,
        Command::Serve(args) => command_serve(cli.config.as_deref(), *args).await,
        Command::Audit(args) => command_audit(cli.config.as_deref(), args),
        Command::Commands(args) => command_commands(args).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vault-triage: {e:#}");
            EXIT_COULD_NOT_RUN
        }
    }
}

/// Builds the Vault and Kubernetes clients. Kubernetes is optional: the reason is kept.
pub async fn build_probes(conn: &ConnectionArgs, cfg: &FileConfig) -> anyhow::Result<Probes> {
    let timeout = cfg.probes.call_timeout;
    let vault =
        VaultClient::new(&conn.vault_settings()?, timeout).context("building the Vault client")?;
    let (kube, kube_unavailable) = match KubeClient::from_kubeconfig(
        conn.kubeconfig.as_deref(),
        timeout,
    )
    .await
    {
        Ok(k) => (Some(k), None),
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "no Kubernetes access; Kubernetes probes are skipped");
            (None, Some(format!("{e:#}")))
        }
    };
    Ok(Probes {
        vault,
        kube,
        kube_unavailable,
    })
}

async fn command_probe(config: Option<&std::path::Path>, args: ProbeArgs) -> anyhow::Result<i32> {
    let cfg = FileConfig::load(config)?;
    let probes = build_probes(&args.connection, &cfg).await?;
    let target = ProbeTarget::from_config(&cfg, args.role);
    let report = triage(&probes, &target).await;
    print_report(&report, args.format)?;
    Ok(report.verdict.exit_code())
}

#[allow(clippy::print_stdout)] // the command's own output
fn print_report(report: &Report, format: OutputFormat) -> anyhow::Result<()> {
    match format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(report)?),
        OutputFormat::Text => print!("{}", crate::terminal::render(report)),
    }
    Ok(())
}

fn parse_scenario(name: &str) -> anyhow::Result<Option<Scenario>> {
    if name == "help" {
        return Ok(None);
    }
    name.parse::<Scenario>()
        .map(Some)
        .map_err(|e| anyhow::anyhow!("{e}"))
}

#[allow(clippy::print_stdout)] // the command's own output
fn print_scenarios() {
    println!("Scenarios (one per verdict code):");
    for s in Scenario::ALL {
        let marker = if *s == Scenario::default() {
            " (default)"
        } else {
            ""
        };
        println!("  {:<24} {}{marker}", s.name(), s.description());
    }
}

#[allow(clippy::print_stdout)] // the command's own output: `eval "$(vault-triage lab)"`
async fn command_lab(args: LabArgs) -> anyhow::Result<i32> {
    let Some(scenario) = parse_scenario(&args.scenario)? else {
        print_scenarios();
        return Ok(0);
    };
    let lab = Lab::start(
        scenario,
        LabOptions {
            listen: args.listen,
            latency: Duration::from_millis(args.latency_ms),
        },
    )
    .await?;
    for spec in &args.faults {
        let (side, fault) = parse_fault(spec)?;
        lab.set_fault(side, Some(fault));
    }
    let dir = match args.dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("vault-triage-lab-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let files = lab.write_files(&dir)?;
    for (name, value) in lab.exports(&files) {
        println!("export {name}={}", shell_quote(&value));
    }
    eprintln!(
        "lab: scenario {} on {} (latency {} ms); files in {}. Ctrl-C stops it.",
        scenario,
        lab.base_url(),
        args.latency_ms,
        dir.display()
    );
    shutdown_signal().await;
    lab.shutdown().await;
    Ok(0)
}

/// `vault=hang`, `kubernetes=503`.
fn parse_fault(spec: &str) -> anyhow::Result<(crate::lab::Side, crate::lab::Fault)> {
    use crate::lab::{Fault, Side};
    let (side, kind) = spec
        .split_once('=')
        .ok_or_else(|| anyhow::anyhow!("--fault {spec:?}: expected SIDE=KIND, e.g. vault=hang"))?;
    let side = match side {
        "vault" => Side::Vault,
        "kubernetes" | "kube" => Side::Kubernetes,
        other => anyhow::bail!("--fault: unknown side {other:?} (vault or kubernetes)"),
    };
    let fault = match kind {
        "hang" => Fault::Hang,
        code => match code.parse::<u16>() {
            Ok(c) if (400..600).contains(&c) => Fault::Status(c),
            _ => anyhow::bail!("--fault: unknown kind {code:?} (hang or an HTTP status 400-599)"),
        },
    };
    Ok((side, fault))
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/:._-=,@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

async fn command_demo(args: DemoArgs) -> anyhow::Result<i32> {
    let Some(scenario) = parse_scenario(&args.scenario)? else {
        print_scenarios();
        return Ok(0);
    };
    crate::demo::run(scenario, args.chat).await?;
    Ok(0)
}

/// Interval of the approval-expiry sweep.
pub const EXPIRY_SWEEP_EVERY: Duration = Duration::from_secs(30);

/// Everything a running bot shares.
pub struct Context {
    pub config: FileConfig,
    pub fixes: Arc<Fixes>,
}

/// Builds the remediator from configuration.
pub fn build_remediator(probes: Probes, cfg: &FileConfig) -> Remediator {
    let reviewer = cfg.reviewer.as_ref();
    Remediator {
        probes,
        target: ProbeTarget::from_config(cfg, None),
        settings: PlanSettings {
            reviewer: reviewer.map(|r| (r.namespace.clone(), r.service_account.clone())),
            reviewer_token_seconds: reviewer
                .map(|r| r.token_duration.as_secs() as i64)
                .unwrap_or(crate::remediation::plan::DEFAULT_REVIEWER_TOKEN_SECONDS),
            restart_concurrency: cfg.probes.restart_concurrency,
        },
        rollout_timeout: cfg.probes.rollout_timeout,
    }
}

/// Opens the journal in `state.dir`, replays it and builds the shared context.
pub async fn build_context(conn: &ConnectionArgs, cfg: FileConfig) -> anyhow::Result<Context> {
    Ok(build_context_with_replay(conn, cfg).await?.0)
}

/// As [`build_context`], also returning the replayed entries (the alert intake restores its
/// incidents from them).
pub async fn build_context_with_replay(
    conn: &ConnectionArgs,
    cfg: FileConfig,
) -> anyhow::Result<(Context, Vec<crate::incident::journal::JournalEntry>)> {
    let probes = build_probes(conn, &cfg).await?;
    let policy = Policy::from_config(&cfg.approvals, &cfg.people)
        .context("in [[approvals]] / [[people]]")?;
    let (journal, replay) = Journal::open(&cfg.state.dir)
        .with_context(|| format!("opening the journal in {}", cfg.state.dir.display()))?;
    for torn in &replay.torn {
        tracing::warn!(line = torn.line, reason = %torn.reason, "journal line skipped");
    }
    let (fixes, restored) = Fixes::restore(
        build_remediator(probes, &cfg),
        policy,
        Arc::new(journal),
        &replay.entries,
        chrono::Utc::now(),
    )?;
    tracing::info!(
        entries = replay.entries.len(),
        interrupted = restored.interrupted.len(),
        expired = restored.expired.len(),
        awaiting_execution = restored.awaiting_execution.len(),
        "journal replayed"
    );
    Ok((
        Context {
            config: cfg,
            fixes: Arc::new(fixes),
        },
        replay.entries,
    ))
}

async fn command_serve(config: Option<&std::path::Path>, args: ServeArgs) -> anyhow::Result<i32> {
    let cfg = FileConfig::load(config)?;
    // Fail early on a bad address or token file, leader or not.
    build_probes(&args.connection, &cfg).await?;
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let port = listener.local_addr()?.port();
    tracing::info!(listen = %listener.local_addr()?, "serving");
    let replica = crate::server::Replica::new();
    let args = Arc::new(args);
    let cfg = Arc::new(cfg);
    let elector = if args.leader.leader_election {
        Some(start_election(&args, port).await?)
    } else {
        replica.activate(build_active(&cfg, &args).await?);
        None
    };
    let manager = elector.map(|rx| {
        let (replica, cfg, args) = (replica.clone(), cfg.clone(), args.clone());
        tokio::spawn(follow_leadership(rx, replica, cfg, args))
    });
    let served = crate::server::serve(listener, replica.clone(), shutdown_signal()).await;
    if let Some(m) = manager {
        m.abort();
    }
    replica.deactivate().await;
    served?;
    Ok(0)
}

/// Starts the Lease rounds; returns the role as it changes.
async fn start_election(
    args: &ServeArgs,
    port: u16,
) -> anyhow::Result<tokio::sync::watch::Receiver<crate::leader::Role>> {
    let l = &args.leader;
    let identity = l
        .pod_name
        .clone()
        .filter(|n| !n.is_empty())
        .context("leader election needs POD_NAME (this replica's identity)")?;
    let address = match (&l.advertise_url, &l.pod_ip) {
        (Some(url), _) => url.trim_end_matches('/').to_string(),
        (None, Some(ip)) => format!("http://{ip}:{port}"),
        (None, None) => anyhow::bail!(
            "leader election needs POD_IP or VAULT_TRIAGE_ADVERTISE_URL (where followers forward)"
        ),
    };
    let kube = KubeClient::from_kubeconfig(
        args.connection.kubeconfig.as_deref(),
        Duration::from_secs(5),
    )
    .await
    .context("leader election needs Kubernetes access")?;
    let elector = crate::leader::Elector {
        namespace: l.pod_namespace.clone(),
        name: l.lease_name.clone(),
        identity,
        address,
        duration: Duration::from_secs(l.lease_seconds.max(3)),
    };
    let (tx, rx) = tokio::sync::watch::channel(crate::leader::Role::Follower { leader: None });
    tokio::spawn(elector.run(kube.raw_client(), tx));
    Ok(rx)
}

/// Becomes active when elected (replaying the journal), steps down when not.
async fn follow_leadership(
    mut rx: tokio::sync::watch::Receiver<crate::leader::Role>,
    replica: crate::server::Replica,
    cfg: Arc<FileConfig>,
    args: Arc<ServeArgs>,
) {
    loop {
        let role = rx.borrow_and_update().clone();
        match &role {
            // Announce leadership only once the active part runs, so nothing is refused between.
            crate::leader::Role::Leader if !replica.is_active() => {
                match build_active(&cfg, &args).await {
                    Ok(active) => {
                        tracing::info!(
                            "elected: the journal is replayed and this replica does the work"
                        );
                        replica.activate(active);
                        replica.set_role(role.clone());
                    }
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "elected, but could not start")
                    }
                }
            }
            crate::leader::Role::Leader => replica.set_role(role.clone()),
            crate::leader::Role::Follower { .. } => {
                replica.set_role(role.clone());
                if replica.is_active() {
                    tracing::info!("stepped down: requests are forwarded to the leader");
                    replica.deactivate().await;
                }
            }
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Builds the stateful part: context from the journal, chat transports, alert intake,
/// background work.
async fn build_active(cfg: &FileConfig, args: &ServeArgs) -> anyhow::Result<crate::server::Active> {
    let (ctx, replayed) = build_context_with_replay(&args.connection, cfg.clone()).await?;
    let ctx = Arc::new(ctx);
    let bot = Arc::new(ChatBot::new(ctx.clone()));
    let mut routes = Vec::new();
    let mut posters: Vec<Arc<dyn ChannelPoster>> = Vec::new();
    let mut slack_rt = None;
    let mut discord_rt = None;
    if let Some(slack) = args.chat.slack() {
        let rt = SlackRuntime::start(bot.clone(), slack)
            .await
            .context("starting Slack")?;
        routes.extend(rt.router());
        posters.extend(rt.poster());
        slack_rt = Some(rt);
    }
    if let Some(discord) = args.chat.discord() {
        let rt = DiscordRuntime::start(bot.clone(), discord)
            .await
            .context("starting Discord")?;
        routes.extend(rt.router());
        posters.extend(rt.poster());
        discord_rt = Some(rt);
    }
    let alerts = AlertService::new(
        bot.clone(),
        ctx.config.alerts.clone(),
        ctx.config.chat.clone(),
        posters,
        &replayed,
    );
    drop(replayed);
    routes.push(alerts.router());
    Ok(crate::server::Active {
        router: routes
            .into_iter()
            .fold(axum::Router::new(), axum::Router::merge),
        background: spawn_background(ctx),
        slack: slack_rt,
        discord: discord_rt,
    })
}

/// The periodic work of a running bot: expiring approvals, the reviewer watch and the care of
/// the bot's own Vault token.
pub fn spawn_background(ctx: Arc<Context>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // Its own task, so a slow reviewer check never delays a renewal; it ends with this one.
        let _token_care = AbortOnDrop(tokio::spawn(crate::vault::token_care::keep_alive(
            ctx.fixes.remediator().probes.vault.clone(),
        )));
        let mut sweep = tokio::time::interval(EXPIRY_SWEEP_EVERY);
        let watch_every = ctx
            .config
            .reviewer
            .as_ref()
            .map(|r| r.check_every)
            .unwrap_or(crate::remediation::watch::DEFAULT_CHECK_EVERY);
        let mut watch = tokio::time::interval(watch_every);
        loop {
            tokio::select! {
                _ = sweep.tick() => {
                    for r in ctx.fixes.expire_due(chrono::Utc::now()) {
                        tracing::info!(request = %r.id, action = r.action.as_str(), "approval request expired");
                    }
                }
                _ = watch.tick() => {
                    let Some(reviewer) = &ctx.config.reviewer else { continue };
                    let (health, request) = crate::remediation::watch::check_once(&ctx.fixes, reviewer.warn_before, chrono::Utc::now()).await;
                    let who = format!("{}/{}", reviewer.namespace, reviewer.service_account);
                    let text = health.describe(&who, chrono::Utc::now());
                    if health.needs_attention() {
                        tracing::warn!(request = request.as_ref().map(|r| r.id.to_string()), "{text}");
                    } else {
                        tracing::info!("{text}");
                    }
                }
            }
        }
    })
}

/// Aborts a task when dropped (when the task holding it is aborted).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[allow(clippy::print_stdout)] // the command's own output
fn command_audit(config: Option<&std::path::Path>, args: AuditArgs) -> anyhow::Result<i32> {
    let dir = match args.state_dir {
        Some(d) => d,
        None => FileConfig::load(config)?.state.dir,
    };
    let replay = crate::incident::journal::Journal::read(&dir)
        .with_context(|| format!("reading the journal in {}", dir.display()))?;
    for torn in &replay.torn {
        eprintln!("journal line {} skipped: {}", torn.line, torn.reason);
    }
    let filter = crate::incident::audit::AuditFilter {
        incident: args.incident,
        actor: args.actor,
        action: args.action,
    };
    let entries = crate::incident::audit::filter(&replay.entries, &filter);
    match args.format {
        OutputFormat::Json => {
            for e in entries {
                println!("{}", serde_json::to_string(e)?);
            }
        }
        OutputFormat::Text => print!("{}", crate::incident::audit::render_text(&entries)),
    }
    Ok(0)
}

/// The command definitions in `commands/`, embedded: the Slack app manifest for the HTTP
/// endpoints…
pub const SLACK_MANIFEST: &str = include_str!("../commands/slack-app-manifest.json");
/// …and for Socket Mode (no public endpoint).
pub const SLACK_MANIFEST_SOCKET_MODE: &str =
    include_str!("../commands/slack-app-manifest.socket-mode.json");
/// The Discord command definition in `commands/`, embedded.
pub const DISCORD_COMMANDS: &str = include_str!("../commands/discord-commands.json");

#[allow(clippy::print_stdout)] // the command's own output
async fn command_commands(args: crate::config::CommandsArgs) -> anyhow::Result<i32> {
    use crate::config::{CommandsOp, Platform};
    match args.op {
        CommandsOp::Export { platform } => {
            if matches!(platform, Platform::Slack | Platform::All) {
                println!("{}", SLACK_MANIFEST.trim_end());
                println!("{}", SLACK_MANIFEST_SOCKET_MODE.trim_end());
            }
            if matches!(platform, Platform::Discord | Platform::All) {
                println!("{}", DISCORD_COMMANDS.trim_end());
            }
            Ok(0)
        }
        CommandsOp::Register {
            discord,
            guild,
            chat,
        } => {
            anyhow::ensure!(
                discord,
                "only Discord commands are registered by API: pass --discord (Slack's come with the app manifest)"
            );
            let settings = chat.discord().ok_or_else(|| {
                anyhow::anyhow!(
                    "DISCORD_BOT_TOKEN and DISCORD_APPLICATION_ID are needed to register"
                )
            })?;
            let what = crate::chat::discord::register_commands(&settings, guild.as_deref()).await?;
            println!("{what}");
            Ok(0)
        }
    }
}
