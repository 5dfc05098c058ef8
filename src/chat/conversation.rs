//! The bot's conversation, platform-neutral: commands and clicks in, messages out through a
//! [`ChatPlatform`]. Slack and Discord edges verify, parse, acknowledge and hand the event
//! here, on a task of its own.
//!
//! What the bot decides lives in the services below ([`Services`]); this module decides only
//! what to say and where: which message answers a command (commands that share one triage in
//! one channel get one summary there and a pointer each), where an approval card goes and is
//! updated (on every platform that shows it, also after a restart), how an execution's steps
//! are streamed into the thread, and what the bot announces by itself (an expired request, a
//! request a restart interrupted or left waiting, the reviewer watch's rotation).

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use chrono::{DateTime, Utc};
use dashmap::DashMap;

use super::cards::Cards;
use super::command::ChatCommand;
use super::fleet::{self, ReviewerLine};
use super::message::{ButtonAction, Message, MessageRef};
use super::platform::{ChatPlatform, Origin};
use super::render;
use crate::approval::{ApprovalRequest, RequestId};
use crate::config::Platform;
use crate::diagnosis::RemediationKind;
use crate::remediation::watch::ReviewerHealth;
use crate::services::triage::CHAT_REUSE;
use crate::services::{Approved, FixError, Progress, Services, Triaged};
use crate::store::JournalEntry;

/// The conversation shared by every platform.
pub struct ChatBot {
    services: Arc<Services>,
    /// Where each request's approval cards live, so every click updates the same cards.
    cards: Cards,
    /// The platforms, for what the bot says by itself (set once they run).
    chats: OnceLock<Vec<Arc<dyn ChatPlatform>>>,
    /// What the reviewer watch last announced in each cluster: its judgement and its request.
    announced: Mutex<std::collections::HashMap<String, (String, RequestId)>>,
    /// Each shared triage's summary where it was posted: the commands that share the triage
    /// in the same place get a pointer to it, not another copy.
    summaries: DashMap<SummaryPlace, (Instant, SummarySlot)>,
}

/// Where a triage's summary is posted: platform, channel, thread and triage id.
type SummaryPlace = (Platform, String, Option<String>, String);
/// The summary once posted; its lock is held while the first command posts it.
type SummarySlot = Arc<tokio::sync::Mutex<Option<MessageRef>>>;

/// What an execution reports, in order, to the task that posts it.
enum Told {
    Started(Box<ApprovalRequest>),
    Step(String),
}

impl ChatBot {
    /// The conversation over `services`; approval cards come back from the journal's
    /// `entries`.
    pub fn new(services: Arc<Services>, entries: &[JournalEntry]) -> Self {
        Self {
            services,
            cards: Cards::restore(entries),
            chats: OnceLock::new(),
            announced: Mutex::new(Default::default()),
            summaries: DashMap::new(),
        }
    }

    pub fn services(&self) -> &Arc<Services> {
        &self.services
    }

    /// Forgets the cards of requests that left memory.
    pub fn forget(&self, requests: &[RequestId]) {
        self.cards.forget(requests);
    }

    /// The running platforms: what the bot says by itself goes through them.
    pub fn attach(&self, chats: Vec<Arc<dyn ChatPlatform>>) {
        let _ = self.chats.set(chats);
    }

    fn chat(&self, platform: Platform) -> Option<Arc<dyn ChatPlatform>> {
        self.chats
            .get()?
            .iter()
            .find(|c| c.platform() == platform)
            .cloned()
    }

    /// Triages `cluster` and delivers the summary as the command's answer; returns the
    /// triage id and where the summary lives.
    pub async fn triage_and_post(
        &self,
        chat: &dyn ChatPlatform,
        origin: &Origin,
        cluster: &str,
        role: Option<String>,
    ) -> Option<(String, MessageRef)> {
        let triaged = self
            .services
            .triage
            .run_for_chat(cluster, role, &chat_label(origin), CHAT_REUSE)
            .await;
        let msg = render::summary(&triaged.report, &triaged.id, self.services.policy());
        let same = render::same_triage(&triaged.report);
        let code = triaged.report.verdict.code.as_str();
        self.post_shared(chat, origin, triaged.id.clone(), &msg, &same, code)
            .await
            .map(|at| (triaged.id, at))
    }

    /// Triages every cluster at once and delivers one summary covering them all (one line
    /// each, the detail and buttons of the failing ones).
    async fn fleet_and_post(&self, chat: &dyn ChatPlatform, origin: &Origin, role: Option<String>) {
        let triaged = self.fleet_triage(origin, role).await;
        let views = fleet::views(&triaged);
        let msg = fleet::summary(&views, self.services.policy(), Utc::now());
        let same = fleet::same_triage(&views);
        let key = triaged
            .iter()
            .map(|t| t.id.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let worst = fleet::worst_code(&views).unwrap_or(crate::diagnosis::VerdictCode::Healthy);
        self.post_shared(chat, origin, key, &msg, &same, worst.as_str())
            .await;
    }

    /// Every cluster's chat triage, run concurrently, in config order.
    async fn fleet_triage(&self, origin: &Origin, role: Option<String>) -> Vec<Triaged> {
        let label = chat_label(origin);
        let triage = &self.services.triage;
        let names = triage.clusters();
        futures::future::join_all(
            names
                .iter()
                .map(|c| triage.run_for_chat(c, role.clone(), &label, CHAT_REUSE)),
        )
        .await
    }

    /// Posts `msg` as the answer to a command, once per shared triage (`key`) and place: the
    /// first command posts it (the lock is held while it does), the others sharing the
    /// triage get `same`, a pointer to it. `code` is said when the summary cannot be posted.
    async fn post_shared(
        &self,
        chat: &dyn ChatPlatform,
        origin: &Origin,
        key: String,
        msg: &Message,
        same: &str,
        code: &str,
    ) -> Option<MessageRef> {
        let place = (
            chat.platform(),
            origin.channel.clone(),
            origin.thread.clone(),
            key,
        );
        let slot = self.summary_slot(place);
        let mut posted = slot.lock().await;
        if let Some(at) = posted.as_ref() {
            if let Err(e) = chat.point(origin, same).await {
                tracing::warn!(error = %e, channel = %origin.channel, "a pointer to the summary could not be posted");
            }
            return Some(at.clone());
        }
        match chat.follow_up(origin, msg).await {
            Ok(at) => {
                *posted = Some(at.clone());
                Some(at)
            }
            Err(e) => {
                tracing::warn!(error = %e, channel = %origin.channel, "the triage summary could not be posted");
                let _ = chat
                    .ephemeral(
                        origin,
                        &format!("The triage finished ({code}), but I could not post it: {e}"),
                    )
                    .await;
                None
            }
        }
    }

    /// The slot of a summary's place, cloned out of the map (no map guard is held across an
    /// await); places older than twice [`CHAT_REUSE`] are dropped, as no triage is shared
    /// that long.
    fn summary_slot(&self, place: SummaryPlace) -> SummarySlot {
        let now = Instant::now();
        self.summaries
            .retain(|_, (at, _)| now.duration_since(*at) < 2 * CHAT_REUSE);
        self.summaries
            .entry(place)
            .or_insert_with(|| (now, Arc::default()))
            .1
            .clone()
    }

    /// A `/vault-triage` command, after the platform acknowledged it. With several clusters
    /// (`[[clusters]]`) a triage, `status` and `reviewer` cover them all; `cluster NAME` one.
    pub async fn handle_command(
        &self,
        chat: &dyn ChatPlatform,
        origin: Origin,
        command: ChatCommand,
    ) {
        let fleet = self.services.triage.is_fleet();
        let first = self.services.triage.first().to_string();
        match command {
            ChatCommand::Triage | ChatCommand::Role(_) if fleet => {
                let role = match command {
                    ChatCommand::Role(role) => Some(role),
                    _ => None,
                };
                self.fleet_and_post(chat, &origin, role).await;
            }
            ChatCommand::Triage => {
                self.triage_and_post(chat, &origin, &first, None).await;
            }
            ChatCommand::Role(role) => {
                self.triage_and_post(chat, &origin, &first, Some(role))
                    .await;
            }
            ChatCommand::Cluster(name) => {
                if self.services.triage.has_cluster(&name) {
                    self.triage_and_post(chat, &origin, &name, None).await;
                } else {
                    let text = format!(
                        "There is no cluster `{name}`. The clusters are: {}.",
                        self.services
                            .triage
                            .clusters()
                            .iter()
                            .map(|c| format!("`{c}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    self.follow_up_or_explain(chat, &origin, &render::text(text))
                        .await;
                }
            }
            ChatCommand::Status if fleet => {
                let triaged = self.fleet_triage(&origin, None).await;
                let views = fleet::views(&triaged);
                self.follow_up_or_explain(chat, &origin, &fleet::status(&views, Utc::now()))
                    .await;
            }
            ChatCommand::Status => {
                let report = self.shared_report(&origin, &first).await;
                self.follow_up_or_explain(chat, &origin, &render::status(&report))
                    .await;
            }
            ChatCommand::Reviewer if fleet => {
                let now = Utc::now();
                let lines: Vec<ReviewerLine> = self
                    .fleet_triage(&origin, None)
                    .await
                    .iter()
                    .map(|t| {
                        let target = &t.report.evidence.target;
                        let who = target
                            .reviewer
                            .clone()
                            .unwrap_or_else(|| "(no [reviewer] configured)".into());
                        let health =
                            crate::services::reviewer::health(&self.services, &t.report, now);
                        (target.cluster.clone(), who, health)
                    })
                    .collect();
                self.follow_up_or_explain(chat, &origin, &fleet::reviewer(&lines, now))
                    .await;
            }
            ChatCommand::Reviewer => {
                let report = self.shared_report(&origin, &first).await;
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

    /// The canary triage of `cluster` every command shares (see [`CHAT_REUSE`]).
    async fn shared_report(&self, origin: &Origin, cluster: &str) -> Arc<crate::diagnosis::Report> {
        self.services
            .triage
            .run_for_chat(cluster, None, &chat_label(origin), CHAT_REUSE)
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
        let request = match proposed.await {
            Ok((request, _)) => request,
            Err(e) => {
                let _ = chat.ephemeral(origin, &format!("Not requested: {e}")).await;
                return;
            }
        };
        if let Some(card) = self.cards.get(&request.id, chat.platform()) {
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
        if let Err(e) = self.post_card(chat, message, &request).await {
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

    /// Posts the approval card of `request` in the thread of `root` and remembers it.
    async fn post_card(
        &self,
        chat: &dyn ChatPlatform,
        root: &MessageRef,
        request: &ApprovalRequest,
    ) -> Result<MessageRef, super::ChatError> {
        let card = chat
            .reply_in_thread(root, &self.card_message(request))
            .await?;
        self.cards
            .record(
                &self.services.store,
                &request.id,
                chat.platform(),
                card.clone(),
            )
            .await;
        Ok(card)
    }

    /// Brings every card of `request`, on every platform, to its current state.
    pub async fn refresh_cards(&self, request: &ApprovalRequest) {
        let msg = self.card_message(request);
        for (platform, card) in self.cards.all(&request.id) {
            if let Some(chat) = self.chat(platform)
                && let Err(e) = chat.update(&card, &msg).await
            {
                tracing::warn!(request = %request.id, %platform, error = %e, "an approval card could not be updated");
            }
        }
    }

    /// Says `msg` in the thread of every card of `id`.
    async fn tell_threads(&self, id: &RequestId, msg: &Message) {
        for (platform, card) in self.cards.all(id) {
            if let Some(chat) = self.chat(platform)
                && let Err(e) = chat.reply_in_thread(&card, msg).await
            {
                tracing::warn!(request = %id, %platform, error = %e, "a request's thread could not be told");
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
        // A re-run is asked for after something changed: a fresh triage of the same cluster,
        // for the same incident.
        let kept = self.services.triage.kept(triage);
        let cluster = kept
            .as_ref()
            .map(|k| k.report.evidence.target.cluster.clone())
            .unwrap_or_else(|| self.services.triage.first().to_string());
        let incident = kept.and_then(|k| k.incident);
        let triaged = self
            .services
            .triage
            .run(&cluster, None, incident, &chat_label(origin))
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

    /// The card of `id` on `platform`, or the clicked message when none is known.
    fn card_for(&self, id: &RequestId, platform: Platform, clicked: &MessageRef) -> MessageRef {
        self.cards
            .get(id, platform)
            .unwrap_or_else(|| clicked.clone())
    }

    async fn click_approve(
        &self,
        chat: &dyn ChatPlatform,
        origin: &Origin,
        message: &MessageRef,
        id: &RequestId,
    ) {
        let card = self.card_for(id, chat.platform(), message);
        let approved_at = Instant::now();
        let fixes = &self.services.fixes;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Told>();
        let approve = async move {
            let progress = |p: Progress<'_>| {
                let _ = tx.send(told(p));
            };
            fixes
                .approve(id, &origin.actor, Utc::now(), &progress)
                .await
        };
        let (out, ()) = tokio::join!(approve, self.tell_progress(chat, &card, id, rx));
        match out {
            Err(refusal) => {
                let _ = chat
                    .ephemeral(origin, &format!("Not counted: {refusal}"))
                    .await;
            }
            Ok(Approved::Recorded(request)) => self.refresh_cards_from(chat, &card, &request).await,
            Ok(Approved::Executed(result)) => {
                self.finish(chat, &card, id, result, approved_at).await;
            }
        }
    }

    /// Updates `card` (where the click came from) and every other card of the request.
    async fn refresh_cards_from(
        &self,
        chat: &dyn ChatPlatform,
        card: &MessageRef,
        request: &ApprovalRequest,
    ) {
        let msg = self.card_message(request);
        let _ = chat.update(card, &msg).await;
        for (platform, other) in self.cards.all(&request.id) {
            if platform == chat.platform() {
                continue;
            }
            if let Some(other_chat) = self.chat(platform) {
                let _ = other_chat.update(&other, &msg).await;
            }
        }
    }

    /// Posts what an execution reports in the thread of `card` as it comes: steps that
    /// arrive together go out as one message (chat rate limits), and the card shows when
    /// the execution starts.
    async fn tell_progress(
        &self,
        chat: &dyn ChatPlatform,
        card: &MessageRef,
        id: &RequestId,
        mut rx: tokio::sync::mpsc::UnboundedReceiver<Told>,
    ) {
        while let Some(first) = rx.recv().await {
            let mut lines = Vec::new();
            let mut next = Some(first);
            while let Some(told) = next.take() {
                match told {
                    Told::Started(request) => {
                        self.post_lines(chat, card, id, &mut lines).await;
                        self.refresh_cards_from(chat, card, &request).await;
                    }
                    Told::Step(line) => lines.push(line),
                }
                next = rx.try_recv().ok();
            }
            self.post_lines(chat, card, id, &mut lines).await;
        }
    }

    /// An execution's end in the thread of `card`: the card's final state and a closing line.
    async fn finish(
        &self,
        chat: &dyn ChatPlatform,
        card: &MessageRef,
        id: &RequestId,
        result: Result<ApprovalRequest, FixError>,
        since: Instant,
    ) {
        let request = match result {
            Ok(r) => Some(r),
            Err(e) => {
                let _ = chat
                    .reply_in_thread(card, &render::text(format!("❌ Not run: {e}")))
                    .await;
                self.services.fixes.request(id)
            }
        };
        if let Some(request) = request {
            self.refresh_cards_from(chat, card, &request).await;
            let _ = chat
                .reply_in_thread(card, &render::execution_end(&request, since.elapsed()))
                .await;
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
        let card = self.card_for(id, chat.platform(), message);
        match self
            .services
            .fixes
            .deny(id, &origin.actor, Utc::now())
            .await
        {
            Err(refusal) => {
                let _ = chat
                    .ephemeral(origin, &format!("Not counted: {refusal}"))
                    .await;
            }
            Ok(request) => self.refresh_cards_from(chat, &card, &request).await,
        }
    }

    // -----------------------------------------------------------------------------------------
    // What the bot says by itself
    // -----------------------------------------------------------------------------------------

    /// The expiry sweep expired `request`: its cards say so.
    pub async fn request_expired(&self, request: &ApprovalRequest) {
        self.refresh_cards(request).await;
    }

    /// After a restart: requests that were running are announced as interrupted; requests
    /// that reached their quorum but never started are re-validated (a fresh triage, the
    /// fingerprint) and run or invalidated, their threads told which.
    pub async fn after_restart(&self) {
        let restored = self.services.restored.clone();
        for id in &restored.interrupted {
            let Some(request) = self.services.fixes.request(id) else {
                continue;
            };
            self.refresh_cards(&request).await;
            self.tell_threads(
                id,
                &render::text(format!(
                    "⚠️ {} was running when the bot restarted; it was stopped and nothing is retried. Check what it changed, then triage again.",
                    request.action.as_str()
                )),
            )
            .await;
        }
        for id in &restored.awaiting_execution {
            self.resume(id).await;
        }
    }

    /// Runs (or invalidates) a request that was approved before a restart, reporting in the
    /// thread of one of its cards.
    async fn resume(&self, id: &RequestId) {
        self.tell_threads(
            id,
            &render::text(
                "🔁 This request was approved before the bot restarted and never started: checking that the plan still fits, then running it.",
            ),
        )
        .await;
        let place = self
            .cards
            .all(id)
            .into_iter()
            .find_map(|(p, card)| self.chat(p).map(|chat| (chat, card)));
        let started = Instant::now();
        let fixes = &self.services.fixes;
        match place {
            Some((chat, card)) => {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Told>();
                let run = async move {
                    let progress = |p: Progress<'_>| {
                        let _ = tx.send(told(p));
                    };
                    fixes.resume(id, &progress).await
                };
                let (result, ()) = tokio::join!(run, self.tell_progress(&*chat, &card, id, rx));
                self.finish(&*chat, &card, id, result, started).await;
            }
            None => match fixes.resume(id, &|_| {}).await {
                Ok(r) => {
                    tracing::info!(request = %id, state = r.state.as_str(), "a request approved before the restart was re-validated")
                }
                Err(e) => {
                    tracing::warn!(request = %id, error = %e, "a request approved before the restart could not be resumed")
                }
            },
        }
    }

    /// The reviewer watch judged the reviewer token and holds `request` open to rotate it.
    /// A new request is announced once in every incident channel (`[chat]`) with its
    /// approval card in the thread; a judgement that changes later (expires soon → expired)
    /// is said in that thread; nothing else is repeated, also not after a restart (the cards
    /// are journaled).
    pub async fn announce_reviewer(
        &self,
        health: &ReviewerHealth,
        request: &ApprovalRequest,
        reviewer: &str,
        now: DateTime<Utc>,
    ) {
        let kind = health.kind().to_string();
        let previous = {
            let Ok(mut last) = self.announced.lock() else {
                return;
            };
            let previous = last.insert(request.cluster.clone(), (kind.clone(), request.id.clone()));
            if previous.as_ref() == Some(&(kind.clone(), request.id.clone())) {
                return;
            }
            previous
        };
        let Some(chats) = self.chats.get() else {
            return;
        };
        let msg = render::reviewer_alert(health, reviewer, now);
        for chat in chats {
            let platform = chat.platform();
            if self.cards.get(&request.id, platform).is_some() {
                // Announced before: only news about the same request is told, in its thread.
                let news = previous
                    .as_ref()
                    .is_some_and(|(was, id)| *id == request.id && *was != kind);
                if news && let Some(card) = self.cards.get(&request.id, platform) {
                    let _ = chat.reply_in_thread(&card, &msg).await;
                }
                continue;
            }
            let Some(channel) = self.services.config.chat.channel(platform) else {
                continue;
            };
            match chat.post(channel, &msg).await {
                Ok(root) => {
                    if let Err(e) = self.post_card(&**chat, &root, request).await {
                        tracing::warn!(%platform, error = %e, "the reviewer watch's approval card could not be posted");
                    }
                }
                Err(e) => {
                    tracing::warn!(%platform, error = %e, "the reviewer watch's announcement could not be posted")
                }
            }
        }
    }
}

/// The log label of a chat triage.
fn chat_label(origin: &Origin) -> String {
    format!("chat:{}", origin.channel)
}

/// An execution's report as the posting task takes it.
fn told(p: Progress<'_>) -> Told {
    match p {
        Progress::Started(request) => Told::Started(Box::new(request.clone())),
        Progress::Step(s) => Told::Step(render::step(s).text),
    }
}
