//! `vault-triage serve`: the bot. One replica serves everything; with leader election the
//! elected replica builds the active part (services, platforms, alert intake, background work)
//! through the composition root and the others forward to it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{FileConfig, ServeArgs};
use crate::kube::KubeClient;
use crate::leader::{Elector, Role};
use crate::server::Replica;

/// Timeout of the Lease calls.
const LEASE_CALL_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn command_serve(config: Option<&Path>, args: ServeArgs) -> anyhow::Result<i32> {
    let mut cfg = FileConfig::load(config)?;
    for cluster in cfg.clusters() {
        crate::metrics::declare_cluster(&cluster.name);
    }
    if let Some(url) = args.state_url.clone() {
        cfg.state.url = Some(url);
    }
    cfg.state.commit_delay = args.state_delay_ms.map(Duration::from_millis);
    // Everything is checked before the bot says it serves, leader or not.
    check(&cfg, &args).await?;
    let listener = bind(&args.listen).await?;
    let port = listener.local_addr()?.port();
    let replica = Replica::new();
    let args = Arc::new(args);
    let cfg = Arc::new(cfg);
    let elector = if args.leader.leader_election {
        Some(start_election(&args, port).await?)
    } else {
        replica.activate(Box::new(
            crate::app::build_active(&cfg, &args.connection, &args.chat).await?,
        ));
        None
    };
    tracing::info!(listen = %listener.local_addr()?, "serving");
    let manager = elector.map(|rx| {
        let (replica, cfg, args) = (replica.clone(), cfg.clone(), args.clone());
        tokio::spawn(follow_leadership(rx, replica, cfg, args))
    });
    let served = crate::server::serve(listener, replica.clone(), super::shutdown_signal()).await;
    if let Some(m) = manager {
        m.abort();
    }
    replica.deactivate().await;
    served?;
    Ok(0)
}

/// The bot's own set-up (Vault and Kubernetes access), the approval policy and the chat
/// settings; warns when nothing could ever reach the bot.
async fn check(cfg: &FileConfig, args: &ServeArgs) -> anyhow::Result<()> {
    crate::app::build_fleet(&args.connection, cfg, None, None).await?;
    crate::approval::Policy::from_config(&cfg.approvals, &cfg.people)
        .context("in [[approvals]] / [[people]]")?;
    crate::chat::check_settings(&args.chat)?;
    let chat = args.chat.slack().is_some() || args.chat.discord().is_some();
    let alerts = crate::alerts::auth::AlertAuth::from_config(&cfg.alerts).is_configured();
    if !chat {
        tracing::warn!(
            "no chat platform is configured (SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET or SLACK_APP_TOKEN; DISCORD_BOT_TOKEN and DISCORD_PUBLIC_KEY): no command reaches the bot and nothing is posted"
        );
    }
    if !alerts {
        tracing::warn!(
            "no alert credentials are configured (alerts.tokens, alerts.basic or alerts.grafana_hmac_secret): the alert endpoints refuse every request"
        );
    }
    Ok(())
}

/// `--listen`: an address or a host name with a port (`localhost:8080`).
async fn bind(listen: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(listen)
        .await
        .with_context(|| format!("--listen {listen}: cannot listen there"))
}

/// Starts the Lease rounds; returns the role as it changes.
async fn start_election(args: &ServeArgs, port: u16) -> anyhow::Result<watch::Receiver<Role>> {
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
    let kube =
        KubeClient::from_kubeconfig(args.connection.kubeconfig.as_deref(), LEASE_CALL_TIMEOUT)
            .await
            .context("leader election needs Kubernetes access")?;
    let elector = Elector {
        namespace: l.pod_namespace.clone(),
        name: l.lease_name.clone(),
        identity,
        address,
        duration: Duration::from_secs(l.lease_seconds.max(3)),
    };
    let (tx, rx) = watch::channel(Role::Follower { leader: None });
    tokio::spawn(elector.run(kube.raw_client(), tx));
    Ok(rx)
}

/// Becomes active when elected (replaying the journal), steps down when not.
async fn follow_leadership(
    mut rx: watch::Receiver<Role>,
    replica: Replica,
    cfg: Arc<FileConfig>,
    args: Arc<ServeArgs>,
) {
    loop {
        let role = rx.borrow_and_update().clone();
        match &role {
            // Announce leadership only once the active part runs, so nothing is refused between.
            Role::Leader if !replica.is_active() => {
                match crate::app::build_active(&cfg, &args.connection, &args.chat).await {
                    Ok(active) => {
                        tracing::info!(
                            "elected: the journal is replayed and this replica does the work"
                        );
                        replica.activate(Box::new(active));
                        replica.set_role(role.clone());
                    }
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "elected, but could not start")
                    }
                }
            }
            Role::Leader => replica.set_role(role.clone()),
            Role::Follower { .. } => {
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
