//! The bot's conversation logic, platform-neutral: commands and clicks in, messages out
//! through a platform's [`Sink`]. Slack and Discord edges verify, parse, acknowledge and hand
//! the event here, on a task of its own.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use dashmap::DashMap;
use sha2::{Digest as _, Sha256};

use super::command::ChatCommand;
use super::message::{ButtonAction, Message, MessageRef};
use super::render;
use crate::app::Context;
use crate::approval::{Actor, Approval, ApprovalRequest, RequestId};
use crate::diagnosis::Action;
use crate::probes::ProbeTarget;
use crate::remediation::{Step, Strategy};
use crate::triage::{Report, triage};

/// How long a summary's buttons keep working (its report is kept that long).
pub const TRIAGE_TTL: Duration = Duration::from_secs(24 * 3600);
/// Most summaries kept.
pub const MAX_TRIAGES: usize = 1000;

/// A failed chat API call.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ChatError {
    /// The platform refused: `not_in_channel`, `channel_not_found`, `invalid_auth`, 403 …
    #[error("the chat platform refused: {0}")]
    Refused(String),
    /// No answer, or a server error after retries.
    #[error("the chat platform is unavailable: {0}")]
    Unavailable(String),
}

/// Where an event came from and how to answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub channel: String,
    /// The thread the command or click came from, if any.
    pub thread: Option<String>,
    /// The platform's reply handle: Slack `response_url`, Discord interaction token.
    pub reply: String,
    /// Who acted.
    pub actor: Actor,
}

/// What a platform must do for the bot.
pub trait Sink: Send + Sync {
    /// Delivers a command's answer where the command was acknowledged; returns where it lives.
    fn deliver(
        &self,
        origin: &Origin,
        msg: &Message,
    ) -> impl Future<Output = Result<MessageRef, ChatError>> + Send;
    /// Posts in the thread of `root` (starting one when the platform needs it).
    fn reply_in_thread(
        &self,
        root: &MessageRef,
        msg: &Message,
    ) -> impl Future<Output = Result<MessageRef, ChatError>> + Send;
    /// Replaces a message's content.
    fn update(
        &self,
        target: &MessageRef,
        msg: &Message,
    ) -> impl Future<Output = Result<(), ChatError>> + Send;
    /// Tells only the person who acted.
    fn ephemeral(
        &self,
        origin: &Origin,
        text: &str,
    ) -> impl Future<Output = Result<(), ChatError>> + Send;
}

struct StoredTriage {
    report: Arc<Report>,
    incident: Option<String>,
    at: Instant,
}

/// The conversation logic shared by every platform.
pub struct ChatBot {
    ctx: Arc<Context>,
    triages: DashMap<String, StoredTriage>,
    cards: DashMap<RequestId, MessageRef>,
}

impl ChatBot {
    pub fn new(ctx: Arc<Context>) -> Self {
        Self {
            ctx,
            triages: DashMap::new(),
            cards: DashMap::new(),
        }
    }

    pub fn context(&self) -> &Arc<Context> {
        &self.ctx
    }

    /// Runs a triage; every log line of it carries `incident` (the incident id, or
    /// `chat:<channel>` for a command).
    async fn run_triage_for(&self, role: Option<String>, incident: &str) -> Report {
        use tracing::Instrument as _;
        let r = self.ctx.fixes.remediator();
        let target = ProbeTarget::from_config(&self.ctx.config, role);
        Box::pin(triage(&r.probes, &target))
            .instrument(tracing::info_span!("triage", incident = %incident))
            .await
    }

    fn remember(&self, report: Report, incident: Option<String>) -> (String, Arc<Report>) {
        let now = Instant::now();
        self.triages
            .retain(|_, t| now.duration_since(t.at) < TRIAGE_TTL);
        if self.triages.len() >= MAX_TRIAGES
            && let Some(oldest) = self
                .triages
                .iter()
                .min_by_key(|t| t.at)
                .map(|t| t.key().clone())
        {
            self.triages.remove(&oldest);
        }
        let id = triage_id(&report);
        let report = Arc::new(report);
        self.triages.insert(
            id.clone(),
            StoredTriage {
                report: report.clone(),
                incident,
                at: now,
            },
        );
        (id, report)
    }

    /// Runs a triage for an incident, records it and keeps it so its summary's buttons work;
    /// returns the triage id and the report (the alert intake posts it in incident threads).
    pub async fn triage_for_incident(&self, incident: Option<String>) -> (String, Arc<Report>) {
        let report = self
            .run_triage_for(None, incident.as_deref().unwrap_or("-"))
            .await;
        let _ = self.ctx.fixes.record_triage(&report, incident.as_deref());
        self.remember(report, incident)
    }

    /// The summary message of a kept triage.
    pub fn summary_message(&self, triage: &str, report: &Report) -> Message {
        render::summary(report, triage, self.ctx.fixes.policy())
    }

    /// Triages and delivers the summary through `deliver`; returns the triage id and where
    /// the summary lives. Also used by the alert intake.
    pub async fn triage_and_post<S: Sink>(
        &self,
        sink: &S,
        origin: &Origin,
        role: Option<String>,
        incident: Option<String>,
    ) -> Option<(String, MessageRef)> {
        let report = self
            .run_triage_for(role, &format!("chat:{}", origin.channel))
            .await;
        let _ = self.ctx.fixes.record_triage(&report, incident.as_deref());
        let (id, report) = self.remember(report, incident);
        let msg = self.summary_message(&id, &report);
        match sink.deliver(origin, &msg).await {
            Ok(at) => Some((id, at)),
            Err(e) => {
                tracing::warn!(error = %e, channel = %origin.channel, "the triage summary could not be posted");
                let _ = sink
                    .ephemeral(
                        origin,
                        &format!(
                            "The triage finished ({}), but I could not post it: {e}",
                            report.verdict.code
                        ),
                    )
                    .await;
                None
            }
        }
    }

    /// A `/vault-triage` command, after the platform acknowledged it.
    pub async fn handle_command<S: Sink>(&self, sink: &S, origin: Origin, command: ChatCommand) {
        match command {
            ChatCommand::Triage => {
                self.triage_and_post(sink, &origin, None, None).await;
            }
            ChatCommand::Role(role) => {
                self.triage_and_post(sink, &origin, Some(role), None).await;
            }
            ChatCommand::Status => {
                let report = self
                    .run_triage_for(None, &format!("chat:{}", origin.channel))
                    .await;
                self.deliver_or_explain(sink, &origin, &render::status(&report))
                    .await;
            }
            ChatCommand::Reviewer => {
                let report = self
                    .run_triage_for(None, &format!("chat:{}", origin.channel))
                    .await;
                let warn = self
                    .ctx
                    .config
                    .reviewer
                    .as_ref()
                    .map(|r| r.warn_before)
                    .unwrap_or(crate::remediation::watch::DEFAULT_WARN_BEFORE);
                let secret = report
                    .evidence
                    .reviewer
                    .value()
                    .and_then(|r| r.claims.as_ref())
                    .and_then(|c| c.expires_at);
                let now = Utc::now();
                let health = crate::remediation::watch::assess(
                    secret,
                    self.ctx.fixes.rotated_reviewer_expiry(),
                    now,
                    warn,
                );
                self.deliver_or_explain(sink, &origin, &render::reviewer(&report, &health, now))
                    .await;
            }
            ChatCommand::Help { note } => {
                self.deliver_or_explain(sink, &origin, &render::help(note.as_deref()))
                    .await;
            }
        }
    }

    async fn deliver_or_explain<S: Sink>(&self, sink: &S, origin: &Origin, msg: &Message) {
        if let Err(e) = sink.deliver(origin, msg).await {
            tracing::warn!(error = %e, channel = %origin.channel, "a reply could not be posted");
            let _ = sink
                .ephemeral(origin, &format!("I could not post the answer: {e}"))
                .await;
        }
    }

    /// A button click, after the platform acknowledged it. `message` is the clicked message.
    pub async fn handle_click<S: Sink>(
        &self,
        sink: &S,
        origin: Origin,
        message: MessageRef,
        action: ButtonAction,
    ) {
        match action {
            ButtonAction::Propose {
                triage,
                remediation,
            } => Box::pin(self.click_propose(sink, &origin, &message, &triage, &remediation)).await,
            ButtonAction::Preview { triage } => {
                Box::pin(self.click_preview(sink, &origin, &triage)).await
            }
            ButtonAction::Rerun { triage } => {
                Box::pin(self.click_rerun(sink, &origin, &message, &triage)).await
            }
            ButtonAction::Approve { request } => {
                Box::pin(self.click_approve(sink, &origin, &message, &request)).await
            }
            ButtonAction::Deny { request } => {
                Box::pin(self.click_deny(sink, &origin, &message, &request)).await
            }
        }
    }

    fn stored(&self, triage: &str) -> Option<(Arc<Report>, Option<String>)> {
        self.triages
            .get(triage)
            .map(|t| (t.report.clone(), t.incident.clone()))
    }

    async fn stale<S: Sink>(&self, sink: &S, origin: &Origin) {
        let _ = sink
            .ephemeral(
                origin,
                "This summary is too old or from before the bot restarted, so its buttons no longer work. Press *Re-run triage* or run `/vault-triage`.",
            )
            .await;
    }

    async fn click_propose<S: Sink>(
        &self,
        sink: &S,
        origin: &Origin,
        message: &MessageRef,
        triage: &str,
        remediation: &str,
    ) {
        let Some((report, incident)) = self.stored(triage) else {
            return self.stale(sink, origin).await;
        };
        let (action, strategy) = match remediation {
            "rotate-reviewer" => (Action::ReconfigureAuth, Strategy::RotateReviewer),
            "use-local-token" => (Action::ReconfigureAuth, Strategy::UseLocalToken),
            _ => (Action::RestartDeployments, Strategy::RotateReviewer),
        };
        let now = Utc::now();
        match self.ctx.fixes.propose(
            &report,
            action,
            strategy,
            origin.actor.clone(),
            incident.as_deref(),
            now,
        ) {
            Ok((request, _)) => {
                if let Some(card) = self.cards.get(&request.id).map(|c| c.clone()) {
                    let _ = sink
                        .ephemeral(
                            origin,
                            &format!(
                                "This change is already requested ({}): see the thread.",
                                request.id
                            ),
                        )
                        .await;
                    let _ = sink
                        .update(
                            &card,
                            &render::approval_card(&request, self.ctx.fixes.policy(), now),
                        )
                        .await;
                    return;
                }
                // The clicked summary is the root: a triage can be posted in several threads.
                let root = message.clone();
                match sink
                    .reply_in_thread(
                        &root,
                        &render::approval_card(&request, self.ctx.fixes.policy(), now),
                    )
                    .await
                {
                    Ok(card) => {
                        self.cards.insert(request.id.clone(), card);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, request = %request.id, "the approval card could not be posted");
                        let _ = sink
                            .ephemeral(
                                origin,
                                &format!(
                                    "The request {} is open, but I could not post it: {e}",
                                    request.id
                                ),
                            )
                            .await;
                    }
                }
            }
            Err(e) => {
                let _ = sink.ephemeral(origin, &format!("Not requested: {e}")).await;
            }
        }
    }

    async fn click_preview<S: Sink>(&self, sink: &S, origin: &Origin, triage: &str) {
        let Some((report, _)) = self.stored(triage) else {
            return self.stale(sink, origin).await;
        };
        let r = self.ctx.fixes.remediator();
        let mut previews = Vec::new();
        for m in report
            .verdict
            .remediations
            .iter()
            .filter(|m| m.action.is_some())
        {
            let (action, strategy) = match m.id.as_str() {
                "use-local-token" => (Action::ReconfigureAuth, Strategy::UseLocalToken),
                "rotate-reviewer" => (Action::ReconfigureAuth, Strategy::RotateReviewer),
                _ => (Action::RestartDeployments, Strategy::RotateReviewer),
            };
            match r.plan(&report, action, strategy) {
                Ok(plan) => previews.push(format!("*{}*\n```\n{}```", m.title, plan.preview())),
                Err(e) => previews.push(format!("*{}*: {e}", m.title)),
            }
        }
        let text = if previews.is_empty() {
            "No automated fix fits this verdict.".to_string()
        } else {
            previews.join("\n")
        };
        let _ = sink.ephemeral(origin, &text).await;
    }

    async fn click_rerun<S: Sink>(
        &self,
        sink: &S,
        origin: &Origin,
        message: &MessageRef,
        triage: &str,
    ) {
        let incident = self.stored(triage).and_then(|t| t.1);
        let report = self
            .run_triage_for(None, &format!("chat:{}", origin.channel))
            .await;
        let _ = self.ctx.fixes.record_triage(&report, incident.as_deref());
        let (id, report) = self.remember(report, incident);
        if let Err(e) = sink
            .reply_in_thread(message, &self.summary_message(&id, &report))
            .await
        {
            let _ = sink
                .ephemeral(
                    origin,
                    &format!("The triage finished, but I could not post it: {e}"),
                )
                .await;
        }
    }

    fn card_for(&self, id: &RequestId, clicked: &MessageRef) -> MessageRef {
        self.cards
            .get(id)
            .map(|c| c.clone())
            .unwrap_or_else(|| clicked.clone())
    }

    async fn click_approve<S: Sink>(
        &self,
        sink: &S,
        origin: &Origin,
        message: &MessageRef,
        id: &RequestId,
    ) {
        let now = Utc::now();
        let card = self.card_for(id, message);
        match self.ctx.fixes.approve(id, &origin.actor, now) {
            Err(refusal) => {
                let _ = sink
                    .ephemeral(origin, &format!("Not counted: {refusal}"))
                    .await;
            }
            Ok(Approval::Recorded { .. }) => {
                if let Some(request) = self.ctx.fixes.request(id) {
                    let _ = sink
                        .update(
                            &card,
                            &render::approval_card(&request, self.ctx.fixes.policy(), now),
                        )
                        .await;
                }
            }
            Ok(Approval::QuorumReached { .. }) => Box::pin(self.execute(sink, &card, id)).await,
        }
    }

    async fn click_deny<S: Sink>(
        &self,
        sink: &S,
        origin: &Origin,
        message: &MessageRef,
        id: &RequestId,
    ) {
        let card = self.card_for(id, message);
        match self.ctx.fixes.deny(id, &origin.actor, Utc::now()) {
            Err(refusal) => {
                let _ = sink
                    .ephemeral(origin, &format!("Not counted: {refusal}"))
                    .await;
            }
            Ok(request) => {
                let _ = sink
                    .update(
                        &card,
                        &render::approval_card(&request, self.ctx.fixes.policy(), Utc::now()),
                    )
                    .await;
            }
        }
    }

    /// Runs an approved request: progress in the thread, the card updated to its final state.
    async fn execute<S: Sink>(&self, sink: &S, card: &MessageRef, id: &RequestId) {
        let started = Instant::now();
        if let Some(request) = self.ctx.fixes.request(id) {
            let mut running = request.clone();
            running.state = crate::approval::ApprovalState::Executing;
            let _ = sink
                .update(
                    card,
                    &render::approval_card(&running, self.ctx.fixes.policy(), Utc::now()),
                )
                .await;
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Step>();
        let run = async {
            let out = self
                .ctx
                .fixes
                .execute(id, &|s: &Step| {
                    let _ = tx.send(s.clone());
                })
                .await;
            drop(tx);
            out
        };
        let post = async {
            // Steps that arrive together go out as one message (chat rate limits).
            while let Some(first) = rx.recv().await {
                let mut lines = vec![render::step(&first).text];
                while let Ok(more) = rx.try_recv() {
                    lines.push(render::step(&more).text);
                }
                if let Err(e) = sink
                    .reply_in_thread(card, &render::text(lines.join("\n")))
                    .await
                {
                    tracing::warn!(error = %e, request = %id, "a progress message could not be posted");
                }
            }
        };
        let (out, ()) = tokio::join!(run, post);
        let final_request: Option<ApprovalRequest> = match out {
            Ok(r) => Some(r),
            Err(e) => {
                let _ = sink
                    .reply_in_thread(card, &render::text(format!("❌ Not run: {e}")))
                    .await;
                self.ctx.fixes.request(id)
            }
        };
        if let Some(request) = final_request {
            let _ = sink
                .update(
                    card,
                    &render::approval_card(&request, self.ctx.fixes.policy(), Utc::now()),
                )
                .await;
            let _ = sink
                .reply_in_thread(
                    card,
                    &render::text(format!(
                        "{} {} {}: {} ({} after approval)",
                        if request.state == crate::approval::ApprovalState::Succeeded {
                            "✅"
                        } else {
                            "⚠️"
                        },
                        request.action.as_str(),
                        request.state.as_str(),
                        request.outcome.clone().unwrap_or_default(),
                        crate::terminal::took(started.elapsed().as_millis() as u64)
                    )),
                )
                .await;
        }
    }
}

/// An opaque, unguessable triage id.
fn triage_id(report: &Report) -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let seed = std::collections::hash_map::RandomState::new();
    let mut h = Sha256::new();
    h.update(format!("{:?}{n}{}{:?}", report.triaged_at, std::process::id(), seed).as_bytes());
    h.update(std::hash::BuildHasher::hash_one(&seed, n).to_le_bytes());
    format!("tri_{}", hex::encode(&h.finalize()[..8]))
}
