//! Fixes: from a button click to a verified change, chat-agnostic.
//!
//! A click on a remediation proposes an approval request for a plan (the clicker is the
//! requester); approvals are counted by the policy; the approval that completes the quorum runs
//! the request, here and nowhere else, at most once: the executor re-probes, checks the
//! fingerprint, runs and verifies. Every step goes to the journal first. Chat, the alert
//! intake, the reviewer watch and the demo only present this.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use dashmap::DashMap;

use super::Changes;
use super::approvals::{ApprovalStore, RestoreReport};
use crate::approval::{Actor, Approval, ApprovalRequest, NewRequest, Policy, Refusal, RequestId};
use crate::diagnosis::{RemediationKind, Report};
use crate::incident::journal::{Event, Journal, JournalEntry};
use crate::remediation::{ExecError, Plan, PlanError, Remediator, Step};

/// Why a fix did not go ahead.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FixError {
    #[error("{0}")]
    Plan(#[from] PlanError),
    #[error("{0}")]
    Refused(#[from] Refusal),
    #[error("{0}")]
    WorldChanged(#[from] ExecError),
    #[error("the journal could not record it: {0}")]
    Journal(String),
}

/// What an execution tells as it goes.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// The request started executing (its state is `executing`).
    Started(&'a ApprovalRequest),
    /// A step finished (already journaled).
    Step(&'a Step),
}

/// The answer to an approval click that counted.
#[derive(Debug, Clone)]
pub enum Approved {
    /// Counted; the quorum is not reached yet.
    Recorded(ApprovalRequest),
    /// This approval completed the quorum and the request ran: its final state, or why it
    /// did not run.
    Executed(Result<ApprovalRequest, FixError>),
}

/// Proposals, approvals and executions, journaled.
pub struct Fixes {
    remediator: Remediator,
    store: ApprovalStore,
    journal: Arc<Journal>,
    plans: DashMap<RequestId, Plan>,
    rotated_expiry: Mutex<Option<DateTime<Utc>>>,
    /// Counted when a fix starts and when it ends.
    changes: Changes,
}

impl std::fmt::Debug for Fixes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fixes")
            .field("journal", &self.journal.path())
            .finish_non_exhaustive()
    }
}

impl Fixes {
    /// Builds the service from a replayed journal: pending approvals and their plans come back,
    /// requests interrupted mid-execution are closed as failed, overdue ones expire.
    pub fn restore(
        remediator: Remediator,
        policy: Policy,
        journal: Arc<Journal>,
        entries: &[JournalEntry],
        now: DateTime<Utc>,
        changes: Changes,
    ) -> anyhow::Result<(Fixes, RestoreReport)> {
        let (store, report) = ApprovalStore::restore(policy, journal.clone(), entries, now)?;
        let plans = DashMap::new();
        let mut rotated = None;
        for e in entries {
            match &e.event {
                Event::PlanRecorded { id, plan } => {
                    if let Ok(plan) = serde_json::from_value::<Plan>(plan.clone()) {
                        plans.insert(id.clone(), plan);
                    }
                }
                Event::ReviewerRotated { expires_at, .. } => rotated = *expires_at,
                _ => {}
            }
        }
        Ok((
            Fixes {
                remediator,
                store,
                journal,
                plans,
                rotated_expiry: Mutex::new(rotated),
                changes,
            },
            report,
        ))
    }

    pub fn journal(&self) -> &Arc<Journal> {
        &self.journal
    }

    pub fn remediator(&self) -> &Remediator {
        &self.remediator
    }

    pub fn policy(&self) -> &Policy {
        self.store.policy()
    }

    /// Expiry of the last reviewer token the bot wrote, if any.
    pub fn rotated_reviewer_expiry(&self) -> Option<DateTime<Utc>> {
        self.rotated_expiry.lock().ok().and_then(|g| *g)
    }

    /// The plan of fix `kind` for `report`, without proposing it (a preview).
    pub fn plan_for(&self, report: &Report, kind: RemediationKind) -> Result<Plan, PlanError> {
        self.remediator.plan(report, kind)
    }

    /// A click on a remediation: builds the plan and opens (or finds) its approval request.
    pub fn propose(
        &self,
        report: &Report,
        kind: RemediationKind,
        requester: Actor,
        incident: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(ApprovalRequest, Plan), FixError> {
        let plan = self.remediator.plan(report, kind)?;
        let proposal = self.store.propose(
            NewRequest {
                action: kind.action(),
                fingerprint: plan.fingerprint(),
                incident: incident.map(str::to_owned),
                summary: plan.preview(),
            },
            requester,
            now,
        )?;
        let request = proposal.request().clone();
        if !self.plans.contains_key(&request.id) {
            let value =
                serde_json::to_value(&plan).map_err(|e| FixError::Journal(e.to_string()))?;
            self.journal
                .append_at(
                    now,
                    Event::PlanRecorded {
                        id: request.id.clone(),
                        plan: value,
                    },
                    incident,
                    None,
                )
                .map_err(|e| FixError::Journal(e.to_string()))?;
            self.plans.insert(request.id.clone(), plan.clone());
        }
        let plan = self
            .plans
            .get(&request.id)
            .map(|p| p.clone())
            .unwrap_or(plan);
        Ok((request, plan))
    }

    /// An approval click. When it completes the quorum the request runs now, at most once
    /// however many clicks race: `progress` hears of the start and of every step, and the
    /// answer carries the final state.
    pub async fn approve(
        &self,
        id: &RequestId,
        actor: &Actor,
        now: DateTime<Utc>,
        progress: &(dyn Fn(Progress<'_>) + Send + Sync),
    ) -> Result<Approved, Refusal> {
        let approval = self.store.approve(id, actor, now).inspect_err(|refusal| {
            crate::metrics::approval("refused");
            tracing::info!(request = %id, actor = %actor.platform_key(), %refusal, "approval refused");
        })?;
        match approval {
            Approval::Recorded { .. } => {
                crate::metrics::approval("recorded");
                Ok(Approved::Recorded(
                    self.store.get(id).ok_or(Refusal::UnknownRequest)?,
                ))
            }
            Approval::QuorumReached { .. } => {
                crate::metrics::approval("quorum");
                Ok(Approved::Executed(
                    Box::pin(self.execute(id, progress)).await,
                ))
            }
        }
    }

    /// A deny click (any listed approver, or the requester withdrawing).
    pub fn deny(
        &self,
        id: &RequestId,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<ApprovalRequest, Refusal> {
        self.store
            .deny(id, actor, now)
            .inspect_err(|_| crate::metrics::approval("refused"))?;
        crate::metrics::approval("denied");
        self.store.get(id).ok_or(Refusal::UnknownRequest)
    }

    pub fn request(&self, id: &RequestId) -> Option<ApprovalRequest> {
        self.store.get(id)
    }

    pub fn plan(&self, id: &RequestId) -> Option<Plan> {
        self.plans.get(id).map(|p| p.clone())
    }

    pub fn requests(&self) -> Vec<ApprovalRequest> {
        self.store.list()
    }

    /// When the next open request expires, if any is open.
    pub fn next_expiry(&self) -> Option<DateTime<Utc>> {
        self.store.next_expiry()
    }

    /// Resolves when a new request is proposed.
    pub async fn proposed(&self) {
        self.store.proposed().await;
    }

    /// Expires overdue requests (journaled) and returns them.
    pub fn expire_due(&self, now: DateTime<Utc>) -> Vec<ApprovalRequest> {
        self.store.expire_due(now)
    }

    /// Runs a request that reached its quorum but never started (the process stopped in
    /// between): re-validated exactly as at quorum (a fresh triage, the fingerprint), then run
    /// or invalidated.
    pub async fn resume(
        &self,
        id: &RequestId,
        progress: &(dyn Fn(Progress<'_>) + Send + Sync),
    ) -> Result<ApprovalRequest, FixError> {
        Box::pin(self.execute(id, progress)).await
    }

    /// Runs an approved request, at most once however often it is called. Each step is
    /// journaled, then passed to `progress`. A request without a recorded plan cannot run:
    /// it is invalidated rather than left waiting.
    async fn execute(
        &self,
        id: &RequestId,
        progress: &(dyn Fn(Progress<'_>) + Send + Sync),
    ) -> Result<ApprovalRequest, FixError> {
        let Some(plan) = self.plan(id) else {
            let reason =
                "no plan was recorded for it, so what was approved is unknown; propose it again";
            tracing::warn!(request = %id, "{reason}");
            let request = self.store.invalidate(id, reason, Utc::now())?;
            crate::metrics::remediation(request.action.as_str(), "invalidated");
            return Ok(request);
        };
        let started = self.store.begin_execution(id, Utc::now())?;
        progress(Progress::Started(&started));
        let record = |s: &Step| {
            let _ = self
                .store
                .record_step(id, &s.step, s.ok, &s.detail, Utc::now());
            progress(Progress::Step(s));
        };
        let span = tracing::info_span!(
            "remediation",
            request = %id,
            incident = %started.incident.as_deref().unwrap_or("-")
        );
        let run = Box::pin(self.remediator.execute_approved(&plan, &record));
        self.changes.bump();
        let result = tracing::Instrument::instrument(run, span).await;
        self.changes.bump();
        match result {
            Ok(outcome) => {
                if let Some((service_account, expires_at)) = outcome.rotated_reviewer.clone() {
                    let _ = self.journal.append(
                        Event::ReviewerRotated {
                            service_account,
                            expires_at,
                        },
                        None,
                        None,
                    );
                    if let Ok(mut r) = self.rotated_expiry.lock() {
                        *r = expires_at;
                    }
                }
                crate::metrics::remediation(
                    plan.action().as_str(),
                    if outcome.ok { "succeeded" } else { "failed" },
                );
                Ok(self
                    .store
                    .finish(id, outcome.ok, &outcome.summary, Utc::now())?)
            }
            Err(e) => {
                crate::metrics::remediation(plan.action().as_str(), "invalidated");
                let request = self.store.invalidate(id, &e.to_string(), Utc::now())?;
                tracing::warn!(request = %id, reason = %e, "approved plan refused at execution");
                Ok(request)
            }
        }
    }
}
