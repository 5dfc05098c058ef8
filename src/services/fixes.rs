//! Fixes: from a button click to a verified change, chat-agnostic.
//!
//! A click on a remediation proposes an approval request for a plan (the clicker is the
//! requester); approvals are counted by the policy; the approval that completes the quorum runs
//! the request, here and nowhere else, at most once: the executor re-probes, checks the
//! fingerprint, runs and verifies. Every step is recorded before chat hears of it, and before
//! each change to the world the run checks that this replica still holds the state: a
//! deposed leader stops at once. Chat, the alert intake, the reviewer watch and the demo only
//! present this.
//!
//! Each cluster has its own remediator: a plan is made for the cluster its triage names, and a
//! request runs in the cluster it records.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use dashmap::DashMap;

use super::Changes;
use super::approvals::{ApprovalStore, RestoreReport};
use crate::approval::{Actor, Approval, ApprovalRequest, NewRequest, Policy, Refusal, RequestId};
use crate::diagnosis::{RemediationKind, Report};
use crate::remediation::{ExecError, Plan, PlanError, Remediator, Step};
use crate::store::{Event, Live, Record, Store, StoreError};

/// Why a fix did not go ahead.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FixError {
    #[error("{0}")]
    Plan(#[from] PlanError),
    #[error("{0}")]
    Refused(#[from] Refusal),
    #[error("{0}")]
    WorldChanged(#[from] ExecError),
    #[error("the state could not record it: {0}")]
    NotRecorded(String),
}

/// What an execution tells as it goes.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// The request started executing (its state is `executing`).
    Started(&'a ApprovalRequest),
    /// A step finished (already recorded).
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

/// Proposals, approvals and executions, recorded.
pub struct Fixes {
    /// Each cluster's remediator, in config order; never empty.
    remediators: Vec<(String, Remediator)>,
    approvals: ApprovalStore,
    store: Arc<Store>,
    plans: DashMap<RequestId, Plan>,
    /// Per cluster, when the reviewer token the bot last wrote expires.
    rotated_expiry: Mutex<HashMap<String, Option<DateTime<Utc>>>>,
    /// Counted when a fix starts and when it ends.
    changes: Changes,
}

impl std::fmt::Debug for Fixes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fixes")
            .field("store", &self.store.place())
            .finish_non_exhaustive()
    }
}

impl Fixes {
    /// Builds the service from the live state: pending approvals and their plans come back,
    /// requests interrupted mid-execution are closed as failed, overdue ones expire.
    pub async fn restore(
        remediators: Vec<(String, Remediator)>,
        policy: Policy,
        store: Arc<Store>,
        live: &Live,
        now: DateTime<Utc>,
        changes: Changes,
    ) -> anyhow::Result<(Fixes, RestoreReport)> {
        anyhow::ensure!(!remediators.is_empty(), "fixes need a cluster");
        let (approvals, report) = ApprovalStore::restore(policy, store.clone(), live, now).await?;
        let plans = DashMap::new();
        for e in &live.request_events {
            if let Event::PlanRecorded { id, plan } = &e.event
                && let Ok(plan) = serde_json::from_value::<Plan>(plan.clone())
            {
                plans.insert(id.clone(), plan);
            }
        }
        Ok((
            Fixes {
                remediators,
                approvals,
                store,
                plans,
                rotated_expiry: Mutex::new(live.rotated_reviewer.clone()),
                changes,
            },
            report,
        ))
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The first cluster's remediator (the only one without `[[clusters]]`).
    pub fn remediator(&self) -> &Remediator {
        &self.remediators[0].1
    }

    /// The remediator of `cluster`; `None` for a cluster that is not configured (a request
    /// recorded before the cluster left the config).
    pub fn remediator_in(&self, cluster: &str) -> Option<&Remediator> {
        self.remediators
            .iter()
            .find(|(name, _)| name == cluster)
            .map(|(_, r)| r)
    }

    fn remediator_for(&self, report: &Report) -> Result<&Remediator, PlanError> {
        let cluster = &report.evidence.target.cluster;
        self.remediator_in(cluster)
            .ok_or_else(|| PlanError::UnknownCluster(cluster.clone()))
    }

    pub fn policy(&self) -> &Policy {
        self.approvals.policy()
    }

    /// Expiry of the last reviewer token the bot wrote in the first cluster, if any.
    pub fn rotated_reviewer_expiry(&self) -> Option<DateTime<Utc>> {
        self.rotated_reviewer_expiry_in(&self.remediators[0].0)
    }

    /// Expiry of the last reviewer token the bot wrote in `cluster`, if any.
    pub fn rotated_reviewer_expiry_in(&self, cluster: &str) -> Option<DateTime<Utc>> {
        self.rotated_expiry
            .lock()
            .ok()
            .and_then(|g| g.get(cluster).copied().flatten())
    }

    /// The plan of fix `kind` for `report`, without proposing it (a preview).
    pub fn plan_for(&self, report: &Report, kind: RemediationKind) -> Result<Plan, PlanError> {
        self.remediator_for(report)?.plan(report, kind)
    }

    /// A click on a remediation: builds the plan and opens (or finds) its approval request.
    pub async fn propose(
        &self,
        report: &Report,
        kind: RemediationKind,
        requester: Actor,
        incident: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(ApprovalRequest, Plan), FixError> {
        let plan = self.plan_for(report, kind)?;
        let proposal = self
            .approvals
            .propose(
                NewRequest {
                    action: kind.action(),
                    cluster: report.evidence.target.cluster.clone(),
                    fingerprint: plan.fingerprint(),
                    incident: incident.map(str::to_owned),
                    summary: plan.preview(),
                },
                requester,
                now,
            )
            .await?;
        let request = proposal.request().clone();
        if !self.plans.contains_key(&request.id) {
            let value =
                serde_json::to_value(&plan).map_err(|e| FixError::NotRecorded(e.to_string()))?;
            self.store
                .record(
                    Record::event(
                        now,
                        Event::PlanRecorded {
                            id: request.id.clone(),
                            plan: value,
                        },
                    )
                    .incident(incident),
                )
                .await
                .map_err(|e| FixError::NotRecorded(e.to_string()))?;
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
        let approval = self
            .approvals
            .approve(id, actor, now)
            .await
            .inspect_err(|refusal| {
                crate::metrics::approval("refused");
                tracing::info!(request = %id, actor = %actor.platform_key(), %refusal, "approval refused");
            })?;
        match approval {
            Approval::Recorded { .. } => {
                crate::metrics::approval("recorded");
                Ok(Approved::Recorded(
                    self.approvals.get(id).ok_or(Refusal::UnknownRequest)?,
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
    pub async fn deny(
        &self,
        id: &RequestId,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<ApprovalRequest, Refusal> {
        self.approvals
            .deny(id, actor, now)
            .await
            .inspect_err(|_| crate::metrics::approval("refused"))?;
        crate::metrics::approval("denied");
        self.approvals.get(id).ok_or(Refusal::UnknownRequest)
    }

    pub fn request(&self, id: &RequestId) -> Option<ApprovalRequest> {
        self.approvals.get(id)
    }

    pub fn plan(&self, id: &RequestId) -> Option<Plan> {
        self.plans.get(id).map(|p| p.clone())
    }

    pub fn requests(&self) -> Vec<ApprovalRequest> {
        self.approvals.list()
    }

    /// When the next open request expires, if any is open.
    pub fn next_expiry(&self) -> Option<DateTime<Utc>> {
        self.approvals.next_expiry()
    }

    /// Resolves when a new request is proposed.
    pub async fn proposed(&self) {
        self.approvals.proposed().await;
    }

    /// Expires overdue requests (recorded) and returns them.
    pub async fn expire_due(&self, now: DateTime<Utc>) -> Vec<ApprovalRequest> {
        self.approvals.expire_due(now).await
    }

    /// Forgets requests (and their plans) closed longer than `retention` ago; returns them.
    pub fn prune(&self, now: DateTime<Utc>, retention: Duration) -> Vec<RequestId> {
        let gone = self.approvals.prune(now, retention);
        for id in &gone {
            self.plans.remove(id);
        }
        gone
    }

    /// How many requests are in memory.
    pub fn requests_in_memory(&self) -> usize {
        self.approvals.len()
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
    /// recorded, then passed to `progress`; before each change to the world the run checks
    /// that this replica still holds the state, and stops when it does not. A request
    /// without a recorded plan cannot run: it is invalidated rather than left waiting.
    async fn execute(
        &self,
        id: &RequestId,
        progress: &(dyn Fn(Progress<'_>) + Send + Sync),
    ) -> Result<ApprovalRequest, FixError> {
        let Some(plan) = self.plan(id) else {
            let reason =
                "no plan was recorded for it, so what was approved is unknown; propose it again";
            tracing::warn!(request = %id, "{reason}");
            let request = self.approvals.invalidate(id, reason, Utc::now()).await?;
            crate::metrics::remediation(&request.cluster, request.action.as_str(), "invalidated");
            return Ok(request);
        };
        let cluster_of = self.request(id).map(|r| r.cluster);
        let Some(remediator) = cluster_of.as_deref().and_then(|c| self.remediator_in(c)) else {
            let reason = "its cluster is no longer in the config, so it cannot run there";
            tracing::warn!(request = %id, "{reason}");
            let request = self.approvals.invalidate(id, reason, Utc::now()).await?;
            crate::metrics::remediation(&request.cluster, request.action.as_str(), "invalidated");
            return Ok(request);
        };
        let started = self.approvals.begin_execution(id, Utc::now()).await?;
        let cluster = started.cluster.clone();
        progress(Progress::Started(&started));
        let span = tracing::info_span!(
            "remediation",
            request = %id,
            incident = %started.incident.as_deref().unwrap_or("-")
        );
        // Steps go through a channel to the recorder below, in order: the executor's callback
        // cannot wait, the record must.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Step>();
        let report = move |s: &Step| {
            let _ = tx.send(s.clone());
        };
        let may_act = || -> futures::future::BoxFuture<'_, Result<(), String>> {
            Box::pin(self.still_holding())
        };
        let plan_ref = &plan;
        let run = async move {
            let run = Box::pin(remediator.execute_guarded(plan_ref, &report, &may_act));
            tracing::Instrument::instrument(run, span).await
        };
        let recorder = async {
            while let Some(s) = rx.recv().await {
                if let Err(refusal) = self
                    .approvals
                    .record_step(id, &s.step, s.ok, &s.detail, Utc::now())
                    .await
                {
                    tracing::warn!(request = %id, step = %s.step, error = %refusal, "an execution step could not be recorded");
                }
                progress(Progress::Step(&s));
            }
        };
        self.changes.bump();
        let (result, ()) = futures::join!(run, recorder);
        self.changes.bump();
        match result {
            Ok(outcome) => {
                if let Some((service_account, expires_at)) = outcome.rotated_reviewer.clone() {
                    let _ = self
                        .store
                        .record(Record::event(
                            Utc::now(),
                            Event::ReviewerRotated {
                                cluster: cluster.clone(),
                                service_account,
                                expires_at,
                            },
                        ))
                        .await;
                    if let Ok(mut r) = self.rotated_expiry.lock() {
                        r.insert(cluster.clone(), expires_at);
                    }
                }
                crate::metrics::remediation(
                    &cluster,
                    plan.action().as_str(),
                    if outcome.ok { "succeeded" } else { "failed" },
                );
                Ok(self
                    .approvals
                    .finish(id, outcome.ok, &outcome.summary, Utc::now())
                    .await?)
            }
            Err(e) => {
                crate::metrics::remediation(&cluster, plan.action().as_str(), "invalidated");
                let request = self
                    .approvals
                    .invalidate(id, &e.to_string(), Utc::now())
                    .await?;
                tracing::warn!(request = %id, reason = %e, "approved plan refused at execution");
                Ok(request)
            }
        }
    }

    /// Whether this replica still holds the state (no newer leadership term exists).
    async fn still_holding(&self) -> Result<(), String> {
        let mine = self.store.term();
        match self.store.current_term().await {
            Ok(current) if current == mine => Ok(()),
            Ok(current) => Err(StoreError::Fenced { mine, current }.to_string()),
            Err(e) => Err(format!("the state cannot be checked: {e}")),
        }
    }
}
