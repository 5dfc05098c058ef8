//! `TestApp`: the app started through its real composition root (`app::Running`, what
//! `serve` runs with one replica) on `127.0.0.1:0`, against the lab as Vault and Kubernetes and
//! fake Slack and Discord APIs that record every call.
//!
//! An end-to-end test drives it with requests signed as the platforms sign them, waits on
//! conditions (never on sleeps: [`TestApp::settle`] waits until the bot has no work in
//! flight), takes what the bot said with [`TestApp::said`] and asserts on it, and ends with
//! [`TestApp::finish`], which fails when the bot said anything the test did not take.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use vault_triage::app::Running;
use vault_triage::chat::ChatBot;
use vault_triage::config::ConnectionArgs;
use vault_triage::config::{ApprovalRule, ChatArgs, FileConfig, OnOff, Person};
use vault_triage::diagnosis::Action;
use vault_triage::lab::{Fleet, Lab, LabFiles, LabOptions, Scenario};
use vault_triage::services::Services;

use super::discord::{self, FakeDiscord};
use super::recording::RecordingChat;
use super::slack::{self, FakeSlack};

/// Longest wait for the bot to finish its work.
pub const SETTLE: Duration = Duration::from_secs(90);

/// alice, bob and carol: each with a Slack and a Discord account.
pub const PEOPLE: [(&str, &str, &str); 3] = [
    ("alice", "U0ALICE", discord::ALICE),
    ("bob", "U0BOB", discord::BOB),
    ("carol", "U0CAROL", discord::CAROL),
];

/// How to start the app.
pub struct Options {
    pub scenario: Scenario,
    pub lab: LabOptions,
    /// Serve Slack's HTTP endpoints against the fake Slack.
    pub slack: bool,
    /// Serve Discord's interactions endpoint against the fake Discord.
    pub discord: bool,
    /// Run Slack Socket Mode: `apps.connections.open` on the fake Slack answers this URL.
    pub slack_socket: Option<String>,
    /// Run the Discord gateway: the fake Discord's `GET /gateway` answers this URL.
    pub discord_gateway: Option<String>,
    /// Run the reviewer watch (off by default: it opens a rotate request of its own at start
    /// when the reviewer token expires soon, which the flows under test do not expect).
    pub reviewer_watch: bool,
    /// Changes to the lab's config file (after the default people and approvals are set).
    pub configure: fn(&mut FileConfig),
}

impl Default for Options {
    fn default() -> Self {
        Self {
            scenario: Scenario::ReviewerJwtExpired,
            lab: LabOptions::default(),
            slack: true,
            discord: true,
            slack_socket: None,
            discord_gateway: None,
            reviewer_watch: false,
            configure: |_| {},
        }
    }
}

/// The default policy: two of alice, bob and carol for either action (the requester excluded).
pub fn policy(cfg: &mut FileConfig) {
    cfg.people = PEOPLE
        .iter()
        .map(|(name, slack, discord)| Person {
            name: (*name).into(),
            slack: Some((*slack).into()),
            discord: Some((*discord).into()),
        })
        .collect();
    let rule = |action: Action| ApprovalRule {
        action: action.as_str().into(),
        approvers: PEOPLE.iter().map(|p| p.0.to_string()).collect(),
        required: 2,
        expires_after: Duration::from_secs(900),
    };
    cfg.approvals = vec![
        rule(Action::ReconfigureAuth),
        rule(Action::RestartDeployments),
        rule(Action::ResyncSecrets),
    ];
}

/// The services as the composition root builds them, against the lab with the default
/// policy and `configure`'s changes, their journal in the lab's directory.
pub async fn services(
    lab: &Lab,
    files: &LabFiles,
    configure: fn(&mut FileConfig),
) -> Arc<Services> {
    let mut cfg = FileConfig::load(Some(&files.config)).expect("lab config");
    policy(&mut cfg);
    configure(&mut cfg);
    let (services, _) = vault_triage::app::build_services(&super::connection(lab, files), cfg)
        .await
        .expect("services");
    services
}

/// The conversation over the default services, speaking through a recording platform.
pub async fn conversation(lab: &Lab, files: &LabFiles) -> (ChatBot, RecordingChat) {
    let services = services(lab, files, |_| {}).await;
    (ChatBot::new(services, &[]), RecordingChat::default())
}

/// What the bot said since the last [`TestApp::said`].
#[derive(Debug, Default)]
pub struct Said {
    pub slack: Vec<slack::Call>,
    pub discord: Vec<discord::Call>,
}

impl Said {
    /// The Slack calls' methods (`chat.postMessage`, `respond/<id>`, …), in order.
    pub fn slack_methods(&self) -> Vec<String> {
        self.slack.iter().map(|c| c.method.clone()).collect()
    }

    /// The Discord calls as `METHOD path`, in order.
    pub fn discord_calls(&self) -> Vec<String> {
        self.discord
            .iter()
            .map(|c| format!("{} {}", c.method, c.path))
            .collect()
    }

    /// [`Said::discord_calls`] with every snowflake in a path written `<id>`.
    pub fn discord_shapes(&self) -> Vec<String> {
        self.discord_calls()
            .into_iter()
            .map(|call| {
                call.split('/')
                    .map(|part| {
                        if part.len() >= 17 && part.bytes().all(|b| b.is_ascii_digit()) {
                            "<id>"
                        } else {
                            part
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .collect()
    }
}

/// What the app triages: one lab, or a fleet of them sharing one Vault (`[[clusters]]`).
pub trait World: Send + Sync + 'static {
    /// How the bot reaches Vault and Kubernetes.
    fn connection(&self, files: &LabFiles) -> ConnectionArgs;
    fn shutdown(self) -> impl std::future::Future<Output = ()> + Send;
}

impl World for Lab {
    fn connection(&self, files: &LabFiles) -> ConnectionArgs {
        super::connection(self, files)
    }

    async fn shutdown(self) {
        Lab::shutdown(self).await
    }
}

impl World for Fleet {
    fn connection(&self, files: &LabFiles) -> ConnectionArgs {
        super::connection(self.vault_lab(), files)
    }

    async fn shutdown(self) {
        Fleet::shutdown(self).await
    }
}

/// The app, the lab (or fleet) and the fakes.
pub struct TestApp<W: World = Lab> {
    pub lab: W,
    pub files: LabFiles,
    pub running: Running,
    cfg: FileConfig,
    chat: ChatArgs,
    pub slack: FakeSlack,
    pub discord: FakeDiscord,
    /// The Slack client: signed commands and clicks to the app.
    pub slack_bot: slack::Bot,
    taken: Mutex<(usize, usize)>,
    _dir: tempfile::TempDir,
}

impl TestApp<Fleet> {
    /// The app over a fleet of simulated clusters sharing one Vault (the lab's `[[clusters]]`
    /// config), with `opts`' chat and configuration (its scenario and lab options unused).
    pub async fn fleet(clusters: &[(&str, Scenario)], opts: Options) -> TestApp<Fleet> {
        super::init_crypto();
        let clusters: Vec<(String, Scenario)> =
            clusters.iter().map(|(n, s)| (n.to_string(), *s)).collect();
        let fleet = Fleet::start(&clusters, LabOptions::default())
            .await
            .expect("fleet");
        let dir = tempfile::tempdir().expect("tempdir");
        let files = fleet.write_files(dir.path()).expect("fleet files");
        TestApp::assemble(fleet, files, dir, opts).await
    }
}

impl TestApp {
    /// The app on `scenario` with the default options.
    pub async fn start(scenario: Scenario) -> TestApp {
        Self::with(Options {
            scenario,
            ..Options::default()
        })
        .await
    }

    pub async fn with(opts: Options) -> TestApp {
        super::init_crypto();
        let lab = Lab::start(opts.scenario, opts.lab.clone())
            .await
            .expect("lab");
        let (dir, files) = super::lab_files(&lab);
        TestApp::assemble(lab, files, dir, opts).await
    }

    /// TokenRequests the lab saw for the canary: one per triage.
    pub fn canary_triages(&self) -> usize {
        canary_token_requests(&self.lab)
    }
}

/// TokenRequests `lab` saw for the canary: one per triage of its cluster.
pub fn canary_token_requests(lab: &Lab) -> usize {
    lab.kube_requests()
        .iter()
        .filter(|r| {
            r.method == "POST"
                && r.path
                    .ends_with("/serviceaccounts/vault-triage-canary/token")
        })
        .count()
}

impl<W: World> TestApp<W> {
    async fn assemble(lab: W, files: LabFiles, dir: tempfile::TempDir, opts: Options) -> Self {
        let mut cfg = FileConfig::load(Some(&files.config)).expect("lab config");
        policy(&mut cfg);
        if !opts.reviewer_watch {
            let per_cluster = cfg.clusters.iter_mut().filter_map(|c| c.reviewer.as_mut());
            for reviewer in cfg.reviewer.iter_mut().chain(per_cluster) {
                reviewer.check_every = Duration::ZERO;
            }
        }
        (opts.configure)(&mut cfg);
        let slack = FakeSlack::start().await;
        let discord = FakeDiscord::start().await;
        if let Some(url) = &opts.slack_socket {
            slack.set_ws_url(url.clone());
        }
        if let Some(url) = &opts.discord_gateway {
            discord.set_gateway(url);
        }
        let with_slack = opts.slack || opts.slack_socket.is_some();
        let with_discord = opts.discord || opts.discord_gateway.is_some();
        let chat = ChatArgs {
            slack_bot_token: with_slack.then(|| slack::BOT_TOKEN.into()),
            slack_signing_secret: opts.slack.then(|| slack::SIGNING_SECRET.into()),
            slack_app_token: opts.slack_socket.as_ref().map(|_| slack::APP_TOKEN.into()),
            slack_api_url: slack.api_url(),
            // One Socket Mode connection, so the fake sees one `apps.connections.open`.
            slack_socket_connections: 1,
            discord_bot_token: with_discord.then(|| discord::BOT_TOKEN.into()),
            discord_public_key: opts.discord.then(discord::public_key_hex),
            discord_application_id: Some(discord::APP.into()),
            discord_api_url: Some(format!("{}/api/v10", discord.base)),
            discord_gateway: Some(if opts.discord_gateway.is_some() {
                OnOff::On
            } else {
                OnOff::Off
            }),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let running = Running::start(listener, &cfg, &lab.connection(&files), &chat)
            .await
            .expect("the app starts");
        let slack_bot = slack::Bot {
            base: running.url.clone(),
            http: reqwest::Client::new(),
        };
        TestApp {
            lab,
            files,
            running,
            cfg,
            chat,
            slack,
            discord,
            slack_bot,
            taken: Mutex::new((0, 0)),
            _dir: dir,
        }
    }

    /// A restart: settles, stops the app and starts it again with the same configuration,
    /// state directory, lab and fakes (the journal is replayed). What the first run said and
    /// the test did not take still counts against [`TestApp::finish`].
    pub async fn restart(mut self) -> Self {
        self.settle().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let conn = self.lab.connection(&self.files);
        let next = Running::start(listener, &self.cfg, &conn, &self.chat)
            .await
            .expect("the app starts again");
        let previous = std::mem::replace(&mut self.running, next);
        previous.stop().await;
        self.slack_bot.base = self.running.url.clone();
        self
    }

    pub fn services(&self) -> &Services {
        &self.running.services
    }

    pub fn url(&self) -> &str {
        &self.running.url
    }

    /// Posts a Discord interaction signed now; returns status, body and how long it took.
    pub async fn discord_interaction(&self, body: &Value) -> (u16, String, Duration) {
        discord::post_signed(&self.running.url, body).await
    }

    /// The value of one series on the app's `/metrics`, e.g.
    /// `vault_triage_approvals_total{outcome="quorum"}` (0 when it is not there yet).
    pub async fn metric(&self, series: &str) -> f64 {
        let text = reqwest::get(format!("{}/metrics", self.running.url))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics text");
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
            .map(|v| v.trim().parse().expect("a number"))
            .unwrap_or(0.0)
    }

    /// Waits until the bot has no work in flight (commands, clicks, incidents): everything it
    /// was going to say about what it was sent has been said.
    pub async fn settle(&self) {
        tokio::time::timeout(SETTLE, self.running.services.work.idle())
            .await
            .expect("the bot's work did not finish in time");
    }

    /// Settles, then takes what the bot said since the last time.
    pub async fn said(&self) -> Said {
        self.settle().await;
        let (slack, discord) = (self.slack.calls(), self.discord.calls());
        let mut taken = self.taken.lock().unwrap();
        let said = Said {
            slack: slack[taken.0..].to_vec(),
            discord: discord[taken.1..].to_vec(),
        };
        *taken = (slack.len(), discord.len());
        said
    }

    /// Ends the test: settles and fails if the bot said anything the test did not take, or
    /// made a Discord call the fake does not know.
    pub async fn finish(self) {
        let rest = self.said().await;
        assert!(
            rest.slack.is_empty() && rest.discord.is_empty(),
            "the bot said what the test did not expect: Slack {:?}, Discord {:?}",
            rest.slack_methods(),
            rest.discord_calls()
        );
        assert_eq!(self.discord.unexpected(), Vec::<String>::new());
        self.running.stop().await;
        self.lab.shutdown().await;
    }
}

/// Asserts that `said` is exactly `before`, then one or more `repeated` (progress, whose
/// batching depends on timing), then exactly `after`.
pub fn assert_said_around(said: &[String], before: &[&str], repeated: &str, after: &[&str]) {
    let ok = said.len() > before.len() + after.len()
        && said[..before.len()] == *before
        && said[said.len() - after.len()..] == *after
        && said[before.len()..said.len() - after.len()]
            .iter()
            .all(|m| m == repeated);
    assert!(
        ok,
        "expected {before:?}, then {repeated:?} at least once, then {after:?}; the bot said {said:?}"
    );
}
