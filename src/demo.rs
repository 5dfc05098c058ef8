//! `demo`: the whole incident told as a story, offline, against the built-in lab: alert →
//! triage → plan → a refused self-approval → two approvals → fix → verified login →
//! restarts rolling out → the operators re-synced → resolved → the audit trail.

use std::fmt::Write as _;
use std::time::Duration;

use chrono::Utc;

use crate::approval::{Actor, ApprovalState, RequestId};
use crate::chat::message::Message;
use crate::config::{ApprovalRule, ChatFormat, ConnectionArgs, FileConfig, Person};
use crate::diagnosis::{Action, RemediationKind};
use crate::diagnosis::{ClusterReport, FleetReport};
use crate::lab::{Lab, LabOptions, Scenario};
use crate::remediation::Plan;
use crate::services::{Approved, Progress, Services};

/// The demo's people: alice is on call (Slack and Discord), bob and carol approve.
fn people() -> Vec<Person> {
    vec![
        Person {
            name: "alice".into(),
            slack: Some("U0ALICE".into()),
            discord: Some("100000000000000001".into()),
        },
        Person {
            name: "bob".into(),
            slack: Some("U0BOB".into()),
            discord: None,
        },
        Person {
            name: "carol".into(),
            slack: None,
            discord: Some("100000000000000003".into()),
        },
    ]
}

/// The demo's `[[approvals]]`: two of alice, bob and carol for each action.
fn approvals() -> Vec<ApprovalRule> {
    let rule = |action: Action| ApprovalRule {
        action: action.as_str().into(),
        approvers: vec!["alice".into(), "bob".into(), "carol".into()],
        required: 2,
        expires_after: Duration::from_secs(15 * 60),
    };
    vec![
        rule(Action::ReconfigureAuth),
        rule(Action::RestartDeployments),
        rule(Action::ResyncSecrets),
    ]
}

/// Starts the lab with `scenario` and prints the story.
#[allow(clippy::print_stdout)] // the command's own output
pub async fn run(scenario: Scenario, chat: Option<ChatFormat>) -> anyhow::Result<()> {
    let lab = Lab::start(scenario, LabOptions::default()).await?;
    let dir = tempfile::Builder::new()
        .prefix("vault-triage-demo-")
        .tempdir()?;
    let files = lab.write_files(dir.path())?;
    let (conn, cfg) = setup(&files, lab.vault_addr(), lab.vault_token())?;
    let (services, _) = crate::app::build_services(&conn, cfg).await?;
    let mut out = Story::new();
    out.line(&format!(
        "vault-triage demo · scenario {scenario} · simulated Vault + Kubernetes at {}",
        lab.base_url()
    ));
    print!("{}", out.take());
    let posted = tell(&services, &mut out).await?;
    if let Some(format) = chat {
        print_chat(format, &posted);
    }
    lab.shutdown().await;
    Ok(())
}

/// The story over a fleet (`demo --clusters`): the fleet at a glance, the whole story on the
/// first cluster with a fault (as one `serve` per cluster tells it), then the fleet again.
#[allow(clippy::print_stdout)] // the command's own output
pub async fn run_fleet(
    clusters: &[(String, Scenario)],
    chat: Option<ChatFormat>,
) -> anyhow::Result<()> {
    let fleet = crate::lab::Fleet::start(clusters, LabOptions::default()).await?;
    let dir = tempfile::Builder::new()
        .prefix("vault-triage-demo-")
        .tempdir()?;
    let files = fleet.write_files(dir.path())?;
    let (conn, cfg) = setup(&files, fleet.vault_addr(), fleet.vault_token())?;
    let mut out = Story::new();
    out.line(&format!(
        "vault-triage demo · {} clusters, one Vault at {}",
        clusters.len(),
        fleet.vault_addr()
    ));
    out.at("🌐", "vault-triage probe: the fleet at a glance");
    let before = fleet_report(&conn, &cfg).await?;
    out.indent(&fleet_lines(&before));
    out.flush();
    let Some(worst) = before
        .worst()
        .filter(|w| w.report.verdict.code != crate::diagnosis::VerdictCode::Healthy)
    else {
        out.at("✅", "Every cluster is healthy: nothing to fix.");
        out.flush();
        fleet.shutdown().await;
        return Ok(());
    };
    out.at(
        "🎯",
        &format!(
            "Cluster {} fails ({}): its bot tells the story",
            worst.cluster, worst.report.verdict.code
        ),
    );
    out.flush();
    let mut one = cfg.clone();
    one.clusters.retain(|c| c.name == worst.cluster);
    let (services, _) = crate::app::build_services(&conn, one.single_cluster()?).await?;
    let posted = tell(&services, &mut out).await?;
    out.line("");
    out.at("🌐", "vault-triage probe: the fleet again");
    let after = fleet_report(&conn, &cfg).await?;
    out.indent(&fleet_lines(&after));
    out.flush();
    if let Some(format) = chat {
        print_chat(format, &posted);
    }
    fleet.shutdown().await;
    Ok(())
}

/// How the story reaches the lab, and its config with the demo's people and approval rules.
fn setup(
    files: &crate::lab::LabFiles,
    vault_addr: String,
    vault_token: String,
) -> anyhow::Result<(ConnectionArgs, FileConfig)> {
    let conn = ConnectionArgs {
        vault_addr,
        vault_token: Some(vault_token),
        vault_token_file: None,
        vault_cacert: None,
        vault_namespace: None,
        kubeconfig: Some(files.kubeconfig.clone()),
    };
    let mut cfg = FileConfig::load(Some(&files.config))?;
    cfg.approvals = approvals();
    cfg.people = people();
    cfg.state.dir = files.state_dir.clone();
    Ok((conn, cfg))
}

/// Every cluster of `cfg`, triaged at once.
async fn fleet_report(conn: &ConnectionArgs, cfg: &FileConfig) -> anyhow::Result<FleetReport> {
    let fleet = crate::app::build_fleet(conn, cfg, None, None).await?;
    let clusters = futures::future::join_all(fleet.iter().map(|c| async {
        ClusterReport {
            cluster: c.cluster.name.clone(),
            report: crate::probes::triage(&c.probes, &c.target).await,
        }
    }))
    .await;
    Ok(FleetReport { clusters })
}

/// The fleet's one-line-per-cluster header.
fn fleet_lines(fleet: &FleetReport) -> String {
    let text = crate::terminal::render_fleet(fleet, chrono::Utc::now());
    text.split("\n\n── cluster")
        .next()
        .unwrap_or_default()
        .trim_end()
        .to_string()
}

/// The chat messages of the story, as the platform's API bodies.
#[allow(clippy::print_stdout)] // the command's own output
fn print_chat(format: ChatFormat, posted: &[(String, Message)]) {
    let name = match format {
        ChatFormat::Slack => "Slack (chat.postMessage bodies)",
        ChatFormat::Discord => "Discord (message bodies)",
    };
    println!();
    println!("What the bot posts on {name}:");
    for (what, msg) in posted {
        println!();
        println!("── {what}");
        match format {
            ChatFormat::Slack => println!("{}", crate::chat::slack::render_for_demo(msg)),
            ChatFormat::Discord => println!("{}", crate::chat::discord::render_for_demo(msg)),
        }
    }
}

/// Accumulates the story and prints it as it goes.
struct Story {
    buf: String,
}

impl Story {
    fn new() -> Self {
        Self { buf: String::new() }
    }

    fn line(&mut self, s: &str) {
        let _ = writeln!(self.buf, "{s}");
    }

    fn at(&mut self, emoji: &str, s: &str) {
        let _ = writeln!(self.buf, "{}  {emoji} {s}", Utc::now().format("%H:%M:%S"));
    }

    fn indent(&mut self, text: &str) {
        for l in text.lines() {
            let _ = writeln!(self.buf, "            {l}");
        }
    }

    #[allow(clippy::print_stdout)] // the command's own output
    fn flush(&mut self) {
        print!("{}", self.take());
    }

    fn take(&mut self) -> String {
        std::mem::take(&mut self.buf)
    }
}

async fn tell(services: &Services, out: &mut Story) -> anyhow::Result<Vec<(String, Message)>> {
    let mut posted = Vec::new();
    let started = std::time::Instant::now();
    let incident = "INC-4711";
    let triaged = services
        .triage
        .run(
            services.triage.first(),
            None,
            Some(incident.to_string()),
            incident,
        )
        .await;
    let report = triaged.report.clone();
    // The workloads that log in themselves fire the alert (not those reading an operator's
    // Secret).
    let workloads: Vec<_> = report
        .evidence
        .workloads
        .value()
        .into_iter()
        .flatten()
        .filter(|w| w.via.logs_in())
        .cloned()
        .collect();
    out.line("");
    out.at(
        "🔔",
        &format!(
            "Alertmanager → #incidents: [FIRING:{}] VaultPermissionDenied ({incident})",
            workloads.len().max(1)
        ),
    );
    for w in &workloads {
        out.indent(&format!(
            "{}/{}: vault: permission denied (role {})",
            w.namespace, w.name, w.role
        ));
    }
    out.at(
        "🔎",
        "The alert mentions Vault and `permission denied`: triage starts in the alert's thread",
    );
    out.at(
        "📋",
        &format!(
            "Triage finished in {} ms: {}",
            report.duration_ms, report.verdict.code
        ),
    );
    out.line("");
    out.indent(&crate::terminal::render(&report));
    out.flush();
    posted.push((
        "the summary in the alert's thread".to_string(),
        crate::chat::render::summary(&report, &triaged.id, services.policy()),
    ));

    let fits = report
        .verdict
        .remediations
        .iter()
        .any(|m| m.action == Some(Action::ReconfigureAuth));
    if !fits {
        out.at(
            "⏹",
            "No automated fix fits this verdict: the manual steps above are the way out.",
        );
        out.flush();
        return Ok(posted);
    }

    // The fix: proposed by alice, refused when she approves herself, approved by bob and carol.
    let alice_slack = Actor::slack("U0ALICE").with_display_name("alice");
    let alice_discord = Actor::discord("100000000000000001").with_display_name("alice");
    let bob = Actor::slack("U0BOB").with_display_name("bob");
    let carol = Actor::discord("100000000000000003").with_display_name("carol");
    let fixes = &services.fixes;
    let (request, plan) = fixes
        .propose(
            &report,
            RemediationKind::RotateReviewer,
            alice_slack.clone(),
            Some(incident),
            Utc::now(),
        )
        .await?;
    out.at(
        "🖱",
        "alice (Slack) clicks [Rotate reviewer token]: an approval request, not a command",
    );
    out.indent(&plan.preview());
    out.indent(&format!(
        "Needs {} approvals (not the requester) · expires {}",
        request.required,
        request.expires_at.format("%H:%M UTC")
    ));
    posted.push((
        "the approval card in the thread".to_string(),
        crate::chat::render::approval_card(&request, services.policy(), Utc::now()),
    ));
    approve_and_run(services, out, &request.id, &alice_discord, &bob, &carol).await?;

    if let Some(done) = fixes.request(&request.id) {
        posted.push((
            "the approval card, updated to its final state".to_string(),
            crate::chat::render::approval_card(&done, services.policy(), Utc::now()),
        ));
    }

    // Then the restarts.
    let after = services.triage.look(incident).await;
    out.at(
        "🔁",
        &format!(
            "Re-triage: {} ({})",
            after.verdict.code, after.verdict.headline
        ),
    );
    let (restart, plan) = fixes
        .propose(
            &report,
            RemediationKind::RestartDeployments,
            alice_slack,
            Some(incident),
            Utc::now(),
        )
        .await?;
    let label = report
        .verdict
        .remediations
        .iter()
        .find(|r| r.kind() == Some(RemediationKind::RestartDeployments))
        .map(|r| r.title.clone())
        .unwrap_or_else(|| "Restart affected workloads".into());
    out.at("🖱", &format!("alice clicks [{label}]"));
    if let Plan::RestartDeployments(_) = &plan {
        out.indent(&plan.preview());
    }
    approve_and_run(services, out, &restart.id, &alice_discord, &bob, &carol).await?;

    // Then the operators' objects: they would recover within their backoff; a re-sync makes
    // them sync now.
    let resync = report
        .verdict
        .remediations
        .iter()
        .find(|r| r.kind() == Some(RemediationKind::ResyncSecrets))
        .map(|r| r.title.clone());
    if let Some(label) = resync {
        let (request, plan) = fixes
            .propose(
                &report,
                RemediationKind::ResyncSecrets,
                Actor::slack("U0ALICE").with_display_name("alice"),
                Some(incident),
                Utc::now(),
            )
            .await?;
        out.at("🖱", &format!("alice clicks [{label}]"));
        out.indent(&plan.preview());
        approve_and_run(services, out, &request.id, &alice_discord, &bob, &carol).await?;
    }

    let last = services.triage.look(incident).await;
    out.at(
        "✅",
        &format!(
            "Resolved: {} · {} from alert to recovery",
            last.verdict.headline,
            humantime::format_duration(Duration::from_millis(started.elapsed().as_millis() as u64))
        ),
    );
    out.line("");
    out.line("Audit trail (vault-triage audit):");
    let (entries, actions) = services
        .store
        .audit(&crate::store::AuditFilter::default())
        .await?;
    let entries: Vec<_> = entries.iter().collect();
    out.indent(&crate::store::render_text(&entries, &actions));
    out.flush();
    Ok(posted)
}

async fn approve_and_run(
    services: &Services,
    out: &mut Story,
    id: &RequestId,
    requester_elsewhere: &Actor,
    first: &Actor,
    second: &Actor,
) -> anyhow::Result<()> {
    let lines = std::sync::Mutex::new(Vec::new());
    let progress = |p: Progress<'_>| {
        if let (Progress::Step(s), Ok(mut l)) = (p, lines.lock()) {
            l.push(format!(
                "{} {}: {}",
                if s.ok { "✅" } else { "❌" },
                s.step,
                s.detail
            ));
        }
    };
    let fixes = &services.fixes;
    match fixes
        .approve(id, requester_elsewhere, Utc::now(), &progress)
        .await
    {
        Err(refusal) => out.at(
            "🚫",
            &format!("alice approves from Discord → refused, only she sees: \"{refusal}\""),
        ),
        Ok(_) => out.at("⚠️", "alice's self-approval was accepted (policy error)"),
    }
    let mut done = None;
    for actor in [first, second] {
        let who = actor.display_name.clone().unwrap_or_default();
        match fixes.approve(id, actor, Utc::now(), &progress).await {
            Ok(Approved::Recorded(request)) => out.at(
                "👍",
                &format!(
                    "{who} ({}) approves: {} of {}",
                    actor.via.as_str(),
                    request.approvals.len(),
                    request.required
                ),
            ),
            Ok(Approved::Executed(result)) => {
                out.at(
                    "👍",
                    &format!(
                        "{who} ({}) approves: quorum reached, the bot re-probes and runs it",
                        actor.via.as_str()
                    ),
                );
                done = Some(result?);
            }
            Err(e) => out.at("🚫", &format!("{who}: {e}")),
        }
    }
    for l in lines.into_inner().unwrap_or_default() {
        out.indent(&l);
    }
    if let Some(done) = done {
        out.at(
            if done.state == ApprovalState::Succeeded {
                "🟢"
            } else {
                "🔴"
            },
            &format!(
                "{}: {}",
                done.state.as_str(),
                done.outcome.clone().unwrap_or_default()
            ),
        );
    }
    out.flush();
    Ok(())
}
