//! The live approval requests: a copy of each in memory for reads, the database as the
//! record (design §6, §11.4), and the restore that rebuilds them after a restart.
//!
//! Each transition holds the request's own async lock while it decides, records and applies,
//! so concurrent clicks on one request are serialised: the quorum is announced once and
//! execution begins once. The record is a conditional update on the request's version, so a
//! second writer on the same database cannot move it too; a request that moved elsewhere is
//! reloaded and decided again. No map guard is ever held across an `.await`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use dashmap::DashMap;

use crate::approval::request::{Change, Step};
use crate::approval::{
    Actor, Approval, ApprovalRequest, ApprovalState, NewRequest, Policy, Refusal, RequestId,
};
use crate::store::event::event_for;
use crate::store::{Change as StoreChange, Event, Live, Record, Store, StoreError, StoredRequest};

/// The outcome written for a request that was running when the process stopped.
pub const INTERRUPTED_OUTCOME: &str = "interrupted by a restart; nothing is retried automatically";
/// How often a transition is decided again when another writer moved the request meanwhile.
const CONFLICT_RETRIES: usize = 3;

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
    /// Rows of the state that could not be read back (skipped).
    pub unreadable: usize,
}

/// Approval requests, recorded.
#[derive(Debug)]
pub struct ApprovalStore {
    policy: Policy,
    store: Arc<Store>,
    /// The current copy of each request in memory (reads never wait).
    requests: DashMap<RequestId, StoredRequest>,
    /// One async lock per request: transitions of one request run one at a time.
    locks: DashMap<RequestId, Arc<tokio::sync::Mutex<()>>>,
    /// Serialises proposals so two clicks on one button open one request.
    proposing: tokio::sync::Mutex<()>,
    /// Told of every new request (the expiry sweep then wakes in time for it).
    proposed: tokio::sync::Notify,
}

impl ApprovalStore {
    /// An empty store.
    pub fn new(policy: Policy, store: Arc<Store>) -> Self {
        Self {
            policy,
            store,
            requests: DashMap::new(),
            locks: DashMap::new(),
            proposing: tokio::sync::Mutex::new(()),
            proposed: tokio::sync::Notify::new(),
        }
    }

    /// Rebuilds the store from the live state. Requests that were running are closed as
    /// failed, and requests past their expiry expire; both are recorded.
    pub async fn restore(
        policy: Policy,
        store: Arc<Store>,
        live: &Live,
        now: DateTime<Utc>,
    ) -> Result<(Self, RestoreReport), StoreError> {
        let approvals = Self::new(policy, store);
        let mut report = RestoreReport {
            unreadable: live.unreadable,
            ..RestoreReport::default()
        };
        for stored in &live.requests {
            approvals
                .requests
                .insert(stored.request.id.clone(), stored.clone());
        }
        for id in approvals.ids() {
            let interrupted = approvals
                .transition(&id, None, now, |r| Step {
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
                })
                .await;
            match interrupted {
                Ok(done) if done.changed => report.interrupted.push(id.clone()),
                Ok(_) => {}
                Err(Refusal::NotRecorded { detail }) => return Err(not_recorded(detail)),
                Err(_) => {}
            }
            match approvals.expire(&id, now).await {
                Ok(Some(_)) => report.expired.push(id.clone()),
                Ok(None) => {}
                Err(Refusal::NotRecorded { detail }) => return Err(not_recorded(detail)),
                Err(_) => {}
            }
            if approvals
                .get(&id)
                .is_some_and(|r| r.state == ApprovalState::Approved)
            {
                report.awaiting_execution.push(id);
            }
        }
        Ok((approvals, report))
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Opens a request, or returns the open one for the same action and plan fingerprint.
    pub async fn propose(
        &self,
        new: NewRequest,
        requester: Actor,
        now: DateTime<Utc>,
    ) -> Result<Proposal, Refusal> {
        let _one_at_a_time = self.proposing.lock().await;
        let open = self.requests.iter().find_map(|s| {
            let r = &s.request;
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
            Record::event(
                now,
                Event::ApprovalProposed {
                    request: Box::new(request.clone()),
                },
            )
            .incident(request.incident.as_deref())
            .actor(Some(request.requester.person.as_str()))
            .change(StoreChange::Request {
                doc: &request,
                version: 0,
            }),
            &request.id,
        )
        .await?;
        self.requests.insert(
            request.id.clone(),
            StoredRequest {
                request: request.clone(),
                version: 1,
                closed_at: None,
            },
        );
        self.proposed.notify_waiters();
        Ok(Proposal::New(request))
    }

    /// An approval click.
    pub async fn approve(
        &self,
        id: &RequestId,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Approval, Refusal> {
        self.transition(id, Some(actor), now, |r| {
            r.decide_approve(actor, now, &self.policy)
        })
        .await
        .map(|done| done.answer)
    }

    /// A deny click: an approver's veto or the requester's withdrawal.
    pub async fn deny(
        &self,
        id: &RequestId,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
        self.transition(id, Some(actor), now, |r| {
            r.decide_deny(actor, now, &self.policy)
        })
        .await
        .map(|_| ())
    }

    /// The executor's gate: succeeds once per request, returning the request to run.
    pub async fn begin_execution(
        &self,
        id: &RequestId,
        now: DateTime<Utc>,
    ) -> Result<ApprovalRequest, Refusal> {
        self.transition(id, None, now, |r| r.decide_begin_execution(now))
            .await
            .map(|done| done.request)
    }

    /// Records one executor step (no state change).
    pub async fn record_step(
        &self,
        id: &RequestId,
        step: &str,
        ok: bool,
        detail: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
        let request = self.get(id).ok_or(Refusal::UnknownRequest)?;
        self.record(
            Record::event(
                now,
                Event::ExecutionStep {
                    id: id.clone(),
                    step: step.to_owned(),
                    ok,
                    detail: detail.to_owned(),
                },
            )
            .incident(request.incident.as_deref()),
            id,
        )
        .await
    }

    /// Ends an execution.
    pub async fn finish(
        &self,
        id: &RequestId,
        ok: bool,
        detail: &str,
        now: DateTime<Utc>,
    ) -> Result<ApprovalRequest, Refusal> {
        self.transition(id, None, now, |r| r.decide_finish(ok, detail))
            .await
            .map(|done| done.request)
    }

    /// Closes an open request without running it (e.g. the plan fingerprint changed).
    pub async fn invalidate(
        &self,
        id: &RequestId,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<ApprovalRequest, Refusal> {
        self.transition(id, None, now, |r| r.decide_invalidate(reason))
            .await
            .map(|done| done.request)
    }

    /// When the next open request expires, if any is open.
    pub fn next_expiry(&self) -> Option<DateTime<Utc>> {
        self.requests
            .iter()
            .filter(|s| !s.request.state.is_closed())
            .map(|s| s.request.expires_at)
            .min()
    }

    /// Resolves when a new request is proposed.
    pub async fn proposed(&self) {
        self.proposed.notified().await;
    }

    /// Expires every open request that is due; returns them as they are now.
    pub async fn expire_due(&self, now: DateTime<Utc>) -> Vec<ApprovalRequest> {
        let mut expired = Vec::new();
        let due: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|s| s.request.decide_expiry(now).is_some())
            .map(|s| s.key().clone())
            .collect();
        for id in due {
            match self.expire(&id, now).await {
                Ok(Some(request)) => expired.push(request),
                Ok(None) => {}
                Err(refusal) => {
                    tracing::error!(request = %id, error = ?refusal, "could not expire an approval request");
                }
            }
        }
        expired
    }

    /// Forgets requests that closed before `now - retention` (their records stay in the
    /// database); returns their ids.
    pub fn prune(&self, now: DateTime<Utc>, retention: Duration) -> Vec<RequestId> {
        let Ok(retention) = chrono::Duration::from_std(retention) else {
            return Vec::new();
        };
        let cutoff = now - retention;
        let old: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|s| s.closed_at.is_some_and(|at| at < cutoff))
            .map(|s| s.key().clone())
            .collect();
        for id in &old {
            self.requests.remove(id);
            self.locks.remove(id);
        }
        old
    }

    /// A copy of one request.
    pub fn get(&self, id: &RequestId) -> Option<ApprovalRequest> {
        self.requests.get(id).map(|s| s.request.clone())
    }

    /// Copies of every request in memory, oldest first.
    pub fn list(&self) -> Vec<ApprovalRequest> {
        let mut all: Vec<ApprovalRequest> =
            self.requests.iter().map(|s| s.request.clone()).collect();
        all.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        all
    }

    /// How many requests are in memory.
    pub fn len(&self) -> usize {
        self.requests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    fn ids(&self) -> Vec<RequestId> {
        self.requests.iter().map(|s| s.key().clone()).collect()
    }

    async fn expire(
        &self,
        id: &RequestId,
        now: DateTime<Utc>,
    ) -> Result<Option<ApprovalRequest>, Refusal> {
        let done = self
            .transition(id, None, now, |r| Step {
                change: r.decide_expiry(now),
                result: Ok(()),
            })
            .await?;
        Ok(done.changed.then_some(done.request))
    }

    /// Decide, record, apply, all while holding the request's lock; the answer and whether
    /// the request changed. A refused click is recorded too (after the state change it may
    /// carry, e.g. an expiry). When another writer moved the request, it is reloaded and
    /// decided again.
    async fn transition<T>(
        &self,
        id: &RequestId,
        actor: Option<&Actor>,
        now: DateTime<Utc>,
        decide: impl Fn(&ApprovalRequest) -> Step<T>,
    ) -> Result<Done<T>, Refusal> {
        let Some(lock) = self.locks_for(id) else {
            return Err(Refusal::UnknownRequest);
        };
        let _one_at_a_time = lock.lock().await;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let Some(current) = self.requests.get(id).map(|s| s.clone()) else {
                return Err(Refusal::UnknownRequest);
            };
            let step = decide(&current.request);
            let mut next = current.clone();
            if let Some(change) = &step.change {
                next.request.apply(change);
                let who = match change {
                    Change::Granted(d) | Change::Denied(d) => Some(d.person.as_str().to_owned()),
                    Change::Started { .. }
                    | Change::Finished { .. }
                    | Change::Expired
                    | Change::Invalidated { .. } => None,
                };
                let record = Record::event(now, event_for(id, change))
                    .incident(current.request.incident.as_deref())
                    .actor(who.as_deref())
                    .change(StoreChange::Request {
                        doc: &next.request,
                        version: current.version,
                    });
                match self.store.record(record).await {
                    Ok(_) => {
                        next.version += 1;
                        if next.request.state.is_closed() && next.closed_at.is_none() {
                            next.closed_at = Some(now);
                        }
                        self.requests.insert(id.clone(), next.clone());
                    }
                    Err(StoreError::Conflict) if attempt <= CONFLICT_RETRIES => {
                        self.reload(id).await?;
                        continue;
                    }
                    Err(err) => return Err(self.refusal(id, &err)),
                }
            }
            if let (Err(refusal), Some(actor)) = (&step.result, actor) {
                let person = self.policy.identity(actor);
                let record = Record::event(
                    now,
                    Event::ApprovalRefused {
                        id: id.clone(),
                        actor: actor.clone(),
                        reason: refusal.to_string(),
                    },
                )
                .incident(current.request.incident.as_deref())
                .actor(Some(person.as_str()));
                if let Err(err) = self.store.record(record).await {
                    tracing::warn!(request = %id, error = %err, "could not record a refused click");
                }
            }
            let changed = step.change.is_some();
            return step.result.map(|answer| Done {
                answer,
                changed,
                request: next.request,
            });
        }
    }

    fn locks_for(&self, id: &RequestId) -> Option<Arc<tokio::sync::Mutex<()>>> {
        if !self.requests.contains_key(id) {
            return None;
        }
        Some(self.locks.entry(id.clone()).or_default().clone())
    }

    /// Reads a request again from the database (another writer moved it).
    async fn reload(&self, id: &RequestId) -> Result<(), Refusal> {
        match self.store.load_request(id).await {
            Ok(Some(stored)) => {
                self.requests.insert(id.clone(), stored);
                Ok(())
            }
            Ok(None) => Err(Refusal::UnknownRequest),
            Err(err) => Err(self.refusal(id, &err)),
        }
    }

    fn refusal(&self, id: &RequestId, err: &StoreError) -> Refusal {
        let detail = crate::error_chain(err);
        tracing::error!(request = %id, error = %detail, "the state could not record a change; it was not made");
        Refusal::NotRecorded { detail }
    }

    async fn record(&self, record: Record<'_>, id: &RequestId) -> Result<(), Refusal> {
        self.store
            .record(record)
            .await
            .map(|_| ())
            .map_err(|err| self.refusal(id, &err))
    }
}

fn not_recorded(detail: String) -> StoreError {
    StoreError::Database {
        place: "restore".into(),
        detail,
    }
}

/// A transition that went through: the answer, whether the request changed, and the request
/// as it was when the lock was released.
struct Done<T> {
    answer: T,
    changed: bool,
    request: ApprovalRequest,
}
