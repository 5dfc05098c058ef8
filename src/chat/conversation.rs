//! The bot's conversation, platform-neutral: commands and clicks in, messages out through a
//! [`ChatPlatform`]. Slack and Discord edges verify, parse, acknowledge and hand the event
//! here, on a task of its own.
//!
//! What the bot decides lives in the services below ([`Services`]); this module decides only
//! what to say and where: which message answers a command, where an approval card goes and is
//! updated, how an execution's steps are streamed into the thread.

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use dashmap::DashMap;

use super::command::ChatCommand;
use super::message::{ButtonAction, Message, MessageRef};
use super::platform::{ChatPlatform, Origin};
use super::render;
use crate::approval::{ApprovalRequest, RequestId};
use crate::diagnosis::RemediationKind;
use crate::services::triage::CHAT_REUSE;
use crate::services::{Approved, Progress, Services};

/// Most approval cards remembered (a forgotten card is updated where it was clicked).
pub const MAX_CARDS: usize = 10_000;

/// The conversation shared by every platform.
pub struct ChatBot {
    services: Arc<Services>,
    /// Where each request's approval card lives, so every click updates the one card.
    cards: DashMap<RequestId, MessageRef>,
}

/// What an execution reports, in order, to the task that posts it.
enum Told {
    Started(Box<ApprovalRequest>),
    Step(String),
}

impl ChatBot {
    pub fn new(services: Arc<Services>) -> Self {
        Self {
            services,
            cards: DashMap::new(),
        }
    }

    pub fn services(&self) -> &Arc<Services> {
        &self.services
    }

    /// Triages and delivers the summary as the command's answer; returns the triage id and
    /// where the summary lives.
    pub async fn triage_and_post(
        &self,
        chat: &dyn ChatPlatform,
        origin: &Origin,
        role: Option<String>,
    ) -> Option<(String, MessageRef)> {
        let triaged = self
            .services
            .triage
            .run_for_chat(role, &format!("chat:{}", origin.channel), CHAT_REUSE)
            .await;
        let msg = render::summary(&triaged.report, &triaged.id, self.services.policy());
        match chat.follow_up(origin, &msg).await {
            Ok(at) => Some((triaged.id, at)),
            Err(e) => {
                tracing::warn!(error = %e, channel = %origin.channel, "the triage summary could not be posted");
                let _ = chat
                    .ephemeral(
                        origin,
                        &format!(
                            "The triage finished ({}), but I could not post it: {e}",
                            triaged.report.verdict.code
                        ),
                    )
                    .await;
                None
            }
        }
    }

    /// A `/vault-triage` command, after the platform acknowledged it.
    pub async fn handle_command(
        &self,
        chat: &dyn ChatPlatform,
        origin: Origin,
        command: ChatCommand,
    ) {
        match command {
            ChatCommand::Triage => {
                self.triage_and_post(chat, &origin, None).await;
            }
            ChatCommand::Role(role) => {
                self.triage_and_post(chat, &origin, Some(role)).await;
            }
            ChatCommand::Status => {
                let report = self.shared_report(&origin).await;
                self.follow_up_or_explain(chat, &origin, &render::status(&report))
                    .await;
            }
            ChatCommand::Reviewer => {
                let report = self.shared_report(&origin).await;
                let now = Utc::now();
                let health = crate::services::reviewer::health(&self.services, &report, now);
                self.follow_up_or_explain(chat, &origin, &render::reviewer(&report, &health, now))
                    .await;
            }
            ChatCommand::Help { note } => {
                self.follow_up_or_explain(chat, &origin, &render::help(note.as_deref()))
                    .await;
            }
        }
    }

    /// The canary triage every command shares (see [`CHAT_REUSE`]).
    async fn shared_report(&self, origin: &Origin) -> Arc<crate::diagnosis::Report> {
        self.services
            .triage
            .run_for_chat(None, &format!("chat:{}", origin.channel), CHAT_REUSE)
            .await
            .report
    }

    async fn follow_up_or_explain(&self, chat: &dyn ChatPlatform, origin: &Origin, msg: &Message) {
        if let Err(e) = chat.follow_up(origin, msg).await {
            tracing::warn!(error = %e, channel = %origin.channel, "a reply could not be posted");
            let _ = chat
                .ephemeral(origin, &format!("I could not post the answer: {e}"))
                .await;
        }
    }

    /// A button click, after the platform acknowledged it. `message` is the clicked message.
    pub async fn handle_click(
        &self,
        chat: &dyn ChatPlatform,
        origin: Origin,
        message: MessageRef,
        action: ButtonAction,
    ) {
        match action {
            ButtonAction::Propose {
                triage,
                remediation,
            } => Box::pin(self.click_propose(chat, &origin, &message, &triage, remediation)).await,
            ButtonAction::Preview { triage } => {
                Box::pin(self.click_preview(chat, &origin, &triage)).await
            }
            ButtonAction::Rerun { triage } => {
                Box::pin(self.click_rerun(chat, &origin, &message, &triage)).await
            }
            ButtonAction::Approve { request } => {
                Box::pin(self.click_approve(chat, &origin, &message, &request)).await
            }
            ButtonAction::Deny { request } => {
                Box::pin(self.click_deny(chat, &origin, &message, &request)).await
            }
        }
    }

    async fn stale(&self, chat: &dyn ChatPlatform, origin: &Origin) {
        let _ = chat
            .ephemeral(
                origin,
                "This summary is too old or from before the bot restarted, so its buttons no longer work. Press *Re-run triage* or run `/vault-triage`.",
            )
            .await;
    }

    fn card_message(&self, request: &ApprovalRequest) -> Message {
        render::approval_card(request, self.services.policy(), Utc::now())
    }

    async fn click_propose(
        &self,
        chat: &dyn ChatPlatform,
        origin: &Origin,
        message: &MessageRef,
        triage: &str,
        kind: RemediationKind,
    ) {
        let Some(kept) = self.services.triage.kept(triage) else {
            return self.stale(chat, origin).await;
        };
        let proposed = self.services.fixes.propose(
            &kept.report,
            kind,
            origin.actor.clone(),
            kept.incident.as_deref(),
            Utc::now(),
        );
        let request = match proposed {
            Ok((request, _)) => request,
            Err(e) => {
                let _ = chat.ephemeral(origin, &format!("Not requested: {e}")).await;
                return;
            }
        };
        if let Some(card) = self.cards.get(&request.id).map(|c| c.clone()) {
            let _ = chat
                .ephemeral(
                    origin,
                    &format!(
                        "This change is already requested ({}): see the thread.",
                        request.id
                    ),
                )
                .await;
            let _ = chat.update(&card, &self.card_message(&request)).await;
            return;
        }
        // The clicked summary is the root: a triage can be posted in several threads.
        match chat
            .reply_in_thread(message, &self.card_message(&request))
            .await
        {
            Ok(card) => {
                if self.cards.len() >= MAX_CARDS {
                    self.cards.clear();
                }
                self.cards.insert(request.id.clone(), card);
            }
            Err(e) => {
                tracing::warn!(error = %e, request = %request.id, "the approval card could not be posted");
                let _ = chat
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

    async fn click_preview(&self, chat: &dyn ChatPlatform, origin: &Origin, triage: &str) {
        let Some(kept) = self.services.triage.kept(triage) else {
            return self.stale(chat, origin).await;
        };
        let mut previews = Vec::new();
        for m in &kept.report.verdict.remediations {
            let Some(kind) = m.kind() else { continue };
            match self.services.fixes.plan_for(&kept.report, kind) {
                Ok(plan) => previews.push(format!("*{}*\n```\n{}```", m.title, plan.preview())),
                Err(e) => previews.push(format!("*{}*: {e}", m.title)),
            }
        }
        let text = if previews.is_empty() {
            "No automated fix fits this verdict.".to_string()
        } else {
            previews.join("\n")
        };
        let _ = chat.ephemeral(origin, &text).await;
    }

    async fn click_rerun(
        &self,
        chat: &dyn ChatPlatform,
        origin: &Origin,
        message: &MessageRef,
        triage: &str,
    ) {
        // A re-run is asked for after something changed: a fresh triage, for the same incident.
        let incident = self.services.triage.kept(triage).and_then(|k| k.incident);
        let triaged = self
            .services
            .triage
            .run(None, incident, &format!("chat:{}", origin.channel))
            .await;
        let msg = render::summary(&triaged.report, &triaged.id, self.services.policy());
        if let Err(e) = chat.reply_in_thread(message, &msg).await {
            let _ = chat
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

    async fn click_approve(
        &self,
        chat: &dyn ChatPlatform,
        origin: &Origin,
        message: &MessageRef,
        id: &RequestId,
    ) {
        let card = self.card_for(id, message);
        let approved_at = Instant::now();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Told>();
        let progress = move |p: Progress<'_>| {
            let _ = tx.send(match p {
                Progress::Started(request) => Told::Started(Box::new(request.clone())),
                Progress::Step(s) => Told::Step(render::step(s).text),
            });
        };
        let approve = async {
            let out = self
                .services
                .fixes
                .approve(id, &origin.actor, Utc::now(), &progress)
                .await;
            drop(progress);
            out
        };
        // Steps that arrive together go out as one message (chat rate limits).
        let tell = async {
            while let Some(first) = rx.recv().await {
                let mut lines = Vec::new();
                let mut next = Some(first);
                while let Some(told) = next.take() {
                    match told {
                        Told::Started(request) => {
                            self.post_lines(chat, &card, id, &mut lines).await;
                            let _ = chat.update(&card, &self.card_message(&request)).await;
                        }
                        Told::Step(line) => lines.push(line),
                    }
                    next = rx.try_recv().ok();
                }
                self.post_lines(chat, &card, id, &mut lines).await;
            }
        };
        let (out, ()) = tokio::join!(approve, tell);
        match out {
            Err(refusal) => {
                let _ = chat
                    .ephemeral(origin, &format!("Not counted: {refusal}"))
                    .await;
            }
            Ok(Approved::Recorded(request)) => {
                let _ = chat.update(&card, &self.card_message(&request)).await;
            }
            Ok(Approved::Executed(result)) => {
                let request = match result {
                    Ok(r) => Some(r),
                    Err(e) => {
                        let _ = chat
                            .reply_in_thread(&card, &render::text(format!("❌ Not run: {e}")))
                            .await;
                        self.services.fixes.request(id)
                    }
                };
                if let Some(request) = request {
                    let _ = chat.update(&card, &self.card_message(&request)).await;
                    let _ = chat
                        .reply_in_thread(
                            &card,
                            &render::execution_end(&request, approved_at.elapsed()),
                        )
                        .await;
                }
            }
        }
    }

    async fn post_lines(
        &self,
        chat: &dyn ChatPlatform,
        card: &MessageRef,
        id: &RequestId,
        lines: &mut Vec<String>,
    ) {
        if lines.is_empty() {
            return;
        }
        let text = std::mem::take(lines).join("\n");
        if let Err(e) = chat.reply_in_thread(card, &render::text(text)).await {
            tracing::warn!(error = %e, request = %id, "a progress message could not be posted");
        }
    }

    async fn click_deny(
        &self,
        chat: &dyn ChatPlatform,
        origin: &Origin,
        message: &MessageRef,
        id: &RequestId,
    ) {
        let card = self.card_for(id, message);
        match self.services.fixes.deny(id, &origin.actor, Utc::now()) {
            Err(refusal) => {
                let _ = chat
                    .ephemeral(origin, &format!("Not counted: {refusal}"))
                    .await;
            }
            Ok(request) => {
                let _ = chat.update(&card, &self.card_message(&request)).await;
            }
        }
    }
}
