//! The live approval requests: a `DashMap` behind sync methods that journal every change
//! before making it, and the replay that rebuilds them after a restart (design §6).
//!
//! Each transition holds the request's map entry while it decides, journals and applies, so
//! concurrent clicks on one request are serialised: the quorum is announced once and execution
//! begins once. No method hands out a guard, and none is async, so no guard can be held across
//! an `.await`.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use dashmap::DashMap;

use crate::approval::request::{Change, Step};
use crate::approval::{
    Actor, Approval, ApprovalRequest, ApprovalState, Decision, NewRequest, Policy, Refusal,
    RequestId,
};
use crate::incident::journal::{Event, Journal, JournalEntry, JournalError};

/// The outcome written for a request that was running when the process stopped.
pub const INTERRUPTED_OUTCOME: &str = "interrupted by a restart; nothing is retried automatically";

/// The answer to a proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proposal {
    /// A new request was made.
    New(ApprovalRequest),
    /// An open request for the same action and plan already exists; no new one was made.
    AlreadyOpen(ApprovalRequest),
}

impl Proposal {
    pub fn request(&self) -> &ApprovalRequest {
        match self {
            Proposal::New(r) | Proposal::AlreadyOpen(r) => r,
        }
    }
}

/// What a restart found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// Were running; now closed as failed (their threads should be told).
    pub interrupted: Vec<RequestId>,
    /// Were open past their expiry; now expired.
    pub expired: Vec<RequestId>,
    /// Reached quorum but never started; still open until they expire.
    pub awaiting_execution: Vec<RequestId>,
    /// Journal events about requests the journal never proposed (skipped).
    pub orphaned_events: usize,
}

/// Approval requests, journaled.
#[derive(Debug)]
pub struct ApprovalStore {
    policy: Policy,
    journal: Arc<Journal>,
    requests: DashMap<RequestId, ApprovalRequest>,
    /// Serialises proposals so two clicks on one button open one request.
    proposing: Mutex<()>,
    /// Told of every new request (the expiry sweep then wakes in time for it).
    proposed: tokio::sync::Notify,
}

impl ApprovalStore {
    /// An empty store (a fresh journal).
    pub fn new(policy: Policy, journal: Arc<Journal>) -> Self {
        Self {
            policy,
            journal,
            requests: DashMap::new(),
            proposing: Mutex::new(()),
            proposed: tokio::sync::Notify::new(),
        }
    }

    /// Rebuilds the store from a journal replay. Requests that were running are closed as
    /// failed, and requests past their expiry expire; both are journaled.
    pub fn restore(
        policy: Policy,
        journal: Arc<Journal>,
        entries: &[JournalEntry],
        now: DateTime<Utc>,
    ) -> Result<(Self, RestoreReport), JournalError> {
        let store = Self::new(policy, journal);
        let mut report = RestoreReport::default();
        for entry in entries {
            let change = match &entry.event {
                Event::ApprovalProposed { request } => {
                    store
                        .requests
                        .insert(request.id.clone(), ApprovalRequest::clone(request));
                    continue;
                }
                Event::ApprovalGranted { id, person, actor } => (
                    id,
                    Change::Granted(Decision {
                        person: person.clone(),
                        actor: actor.clone(),
                        at: entry.at,
                    }),
                ),
                Event::ApprovalDenied { id, person, actor } => (
                    id,
                    Change::Denied(Decision {
                        person: person.clone(),
                        actor: actor.clone(),
                        at: entry.at,
                    }),
                ),
                Event::ExecutionStarted { id } => (id, Change::Started { at: entry.at }),
                Event::ExecutionFinished { id, ok, detail } => (
                    id,
                    Change::Finished {
                        ok: *ok,
                        detail: detail.clone(),
                    },
                ),
                Event::RequestExpired { id } => (id, Change::Expired),
                Event::RequestInvalidated { id, reason } => (
                    id,
                    Change::Invalidated {
                        reason: reason.clone(),
                    },
                ),
                Event::ApprovalRefused { .. }
                | Event::PlanRecorded { .. }
                | Event::ExecutionStep { .. }
                | Event::IncidentOpened { .. }
                | Event::IncidentUpdated { .. }
                | Event::TriageCompleted { .. }
                | Event::ReviewerRotated { .. }
                | Event::ApprovalCardPosted { .. } => continue,
            };
            let (id, change) = change;
            match store.requests.get_mut(id) {
                Some(mut request) => request.apply(&change),
                None => {
                    report.orphaned_events += 1;
                    tracing::warn!(seq = entry.seq, request = %id, "journal event for an unknown approval request; skipped");
                }
            }
        }

        for id in store.ids() {
            let interrupted = store.transition(&id, None, now, |r| Step {
                change: match r.state {
                    ApprovalState::Executing => Some(Change::Finished {
                        ok: false,
                        detail: INTERRUPTED_OUTCOME.to_owned(),
                    }),
                    ApprovalState::Proposed
                    | ApprovalState::PartiallyApproved
                    | ApprovalState::Approved
                    | ApprovalState::Succeeded
                    | ApprovalState::Failed
                    | ApprovalState::Denied
                    | ApprovalState::Expired
                    | ApprovalState::Invalidated => None,
                },
                result: Ok(()),
            });
            match interrupted {
                Ok(done) if done.changed => report.interrupted.push(id.clone()),
                Ok(_) => {}
                Err(Refusal::NotRecorded { detail }) => return Err(store.journal_down(detail)),
                Err(_) => {}
            }
            match store.expire(&id, now) {
                Ok(Some(_)) => report.expired.push(id.clone()),
                Ok(None) => {}
                Err(Refusal::NotRecorded { detail }) => return Err(store.journal_down(detail)),
                Err(_) => {}
            }
            if store
                .get(&id)
                .is_some_and(|r| r.state == ApprovalState::Approved)
            {
                report.awaiting_execution.push(id);
            }
        }
        Ok((store, report))
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Opens a request, or returns the open one for the same action and plan fingerprint.
    pub fn propose(
        &self,
        new: NewRequest,
        requester: Actor,
        now: DateTime<Utc>,
    ) -> Result<Proposal, Refusal> {
        let _one_at_a_time = self.proposing.lock().unwrap_or_else(|p| p.into_inner());
        let open = self.requests.iter().find_map(|r| {
            let same = r.action == new.action && r.fingerprint == new.fingerprint;
            (same && !r.state.is_closed() && r.decide_expiry(now).is_none()).then(|| r.clone())
        });
        if let Some(existing) = open {
            return Ok(Proposal::AlreadyOpen(existing));
        }
        let mut request = ApprovalRequest::new(new, requester, now, &self.policy)?;
        while self.requests.contains_key(&request.id) {
            request.id = RequestId::generate();
        }
        self.record(
            now,
            Event::ApprovalProposed {
                request: Box::new(request.clone()),
            },
            &request,
            Some(request.requester.person.as_str()),
        )?;
        self.requests.insert(request.id.clone(), request.clone());
        self.proposed.notify_waiters();
        Ok(Proposal::New(request))
    }

    /// An approval click.
    pub fn approve(
        &self,
        id: &RequestId,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Approval, Refusal> {
        self.transition(id, Some(actor), now, |r| {
            r.decide_approve(actor, now, &self.policy)
        })
        .map(|done| done.answer)
    }

    /// A deny click: an approver's veto or the requester's withdrawal.
    pub fn deny(&self, id: &RequestId, actor: &Actor, now: DateTime<Utc>) -> Result<(), Refusal> {
        self.transition(id, Some(actor), now, |r| {
            r.decide_deny(actor, now, &self.policy)
        })
        .map(|_| ())
    }

    /// The executor's gate: succeeds once per request, returning the request to run.
    pub fn begin_execution(
        &self,
        id: &RequestId,
        now: DateTime<Utc>,
    ) -> Result<ApprovalRequest, Refusal> {
        self.transition(id, None, now, |r| r.decide_begin_execution(now))
            .map(|done| done.request)
    }

    /// Journals one executor step (no state change).
    pub fn record_step(
        &self,
        id: &RequestId,
        step: &str,
        ok: bool,
        detail: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
        let request = self.get(id).ok_or(Refusal::UnknownRequest)?;
        self.record(
            now,
            Event::ExecutionStep {
                id: id.clone(),
                step: step.to_owned(),
                ok,
                detail: detail.to_owned(),
            },
            &request,
            None,
        )
    }

    /// Ends an execution.
    pub fn finish(
        &self,
        id: &RequestId,
        ok: bool,
        detail: &str,
        now: DateTime<Utc>,
    ) -> Result<ApprovalRequest, Refusal> {
        self.transition(id, None, now, |r| r.decide_finish(ok, detail))
            .map(|done| done.request)
    }

    /// Closes an open request without running it (e.g. the plan fingerprint changed).
    pub fn invalidate(
        &self,
        id: &RequestId,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<ApprovalRequest, Refusal> {
        self.transition(id, None, now, |r| r.decide_invalidate(reason))
            .map(|done| done.request)
    }

    /// When the next open request expires, if any is open.
    pub fn next_expiry(&self) -> Option<DateTime<Utc>> {
        self.requests
            .iter()
            .filter(|r| !r.state.is_closed())
            .map(|r| r.expires_at)
            .min()
    }

    /// Resolves when a new request is proposed.
    pub async fn proposed(&self) {
        self.proposed.notified().await;
    }

    /// Expires every open request that is due; returns them as they are now.
    pub fn expire_due(&self, now: DateTime<Utc>) -> Vec<ApprovalRequest> {
        let mut expired = Vec::new();
        for id in self.ids() {
            match self.expire(&id, now) {
                Ok(Some(request)) => expired.push(request),
                Ok(None) => {}
                Err(refusal) => {
                    tracing::error!(request = %id, error = ?refusal, "could not expire an approval request");
                }
            }
        }
        expired
    }

    /// A copy of one request.
    pub fn get(&self, id: &RequestId) -> Option<ApprovalRequest> {
        self.requests.get(id).map(|r| r.clone())
    }

    /// Copies of every request, oldest first.
    pub fn list(&self) -> Vec<ApprovalRequest> {
        let mut all: Vec<ApprovalRequest> = self.requests.iter().map(|r| r.clone()).collect();
        all.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        all
    }

    fn ids(&self) -> Vec<RequestId> {
        self.requests.iter().map(|r| r.key().clone()).collect()
    }

    fn expire(
        &self,
        id: &RequestId,
        now: DateTime<Utc>,
    ) -> Result<Option<ApprovalRequest>, Refusal> {
        let done = self.transition(id, None, now, |r| Step {
            change: r.decide_expiry(now),
            result: Ok(()),
        })?;
        Ok(done.changed.then_some(done.request))
    }

    /// Decide, journal, apply, all while holding the request's entry; the answer and whether
    /// the request changed. A refused click is journaled too (after the state change it may
    /// carry, e.g. an expiry).
    fn transition<T>(
        &self,
        id: &RequestId,
        actor: Option<&Actor>,
        now: DateTime<Utc>,
        decide: impl FnOnce(&ApprovalRequest) -> Step<T>,
    ) -> Result<Done<T>, Refusal> {
        let Some(mut entry) = self.requests.get_mut(id) else {
            return Err(Refusal::UnknownRequest);
        };
        let step = decide(&entry);
        let person = actor.map(|a| self.policy.identity(a));
        if let Some(change) = &step.change {
            let event = event_for(id, change);
            let who = match change {
                Change::Granted(d) | Change::Denied(d) => Some(d.person.as_str().to_owned()),
                Change::Started { .. }
                | Change::Finished { .. }
                | Change::Expired
                | Change::Invalidated { .. } => None,
            };
            self.record(now, event, &entry, who.as_deref())?;
            entry.apply(change);
        }
        if let (Err(refusal), Some(actor)) = (&step.result, actor) {
            let event = Event::ApprovalRefused {
                id: id.clone(),
                actor: actor.clone(),
                reason: refusal.to_string(),
            };
            let who = person.as_ref().map(|p| p.as_str().to_owned());
            if let Err(err) = self.record(now, event, &entry, who.as_deref()) {
                tracing::warn!(request = %id, error = ?err, "could not journal a refused click");
            }
        }
        let request = entry.clone();
        drop(entry);
        let changed = step.change.is_some();
        step.result.map(|answer| Done {
            answer,
            changed,
            request,
        })
    }

    fn journal_down(&self, detail: String) -> JournalError {
        JournalError::Io {
            path: self.journal.path().to_owned(),
            op: "recording the restore",
            source: std::io::Error::other(detail),
        }
    }

    fn record(
        &self,
        now: DateTime<Utc>,
        event: Event,
        request: &ApprovalRequest,
        actor: Option<&str>,
    ) -> Result<(), Refusal> {
        self.journal
            .append_at(now, event, request.incident.as_deref(), actor)
            .map(|_| ())
            .map_err(|err| {
                let detail = crate::error_chain(&err);
                tracing::error!(request = %request.id, error = %detail, "journal append failed; the change was not made");
                Refusal::NotRecorded { detail }
            })
    }
}

/// A transition that went through: the answer, whether the request changed, and the request
/// as it was when the entry was released.
struct Done<T> {
    answer: T,
    changed: bool,
    request: ApprovalRequest,
}

fn event_for(id: &RequestId, change: &Change) -> Event {
    let id = id.clone();
    match change {
        Change::Granted(d) => Event::ApprovalGranted {
            id,
            person: d.person.clone(),
            actor: d.actor.clone(),
        },
        Change::Denied(d) => Event::ApprovalDenied {
            id,
            person: d.person.clone(),
            actor: d.actor.clone(),
        },
        Change::Started { .. } => Event::ExecutionStarted { id },
        Change::Finished { ok, detail } => Event::ExecutionFinished {
            id,
            ok: *ok,
            detail: detail.clone(),
        },
        Change::Expired => Event::RequestExpired { id },
        Change::Invalidated { reason } => Event::RequestInvalidated {
            id,
            reason: reason.clone(),
        },
    }
}
