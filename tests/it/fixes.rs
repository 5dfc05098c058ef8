//! Approval-gated fixes end to end against the lab: proposals, approvals, at-most-once
//! execution, invalidation when the world changed, and a restart in the middle of a flow.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use vault_triage::approval::{Actor, ApprovalRequest, ApprovalState, Refusal};
use vault_triage::config::{ApprovalRule, FileConfig};
use vault_triage::diagnosis::{Action, RemediationKind, Report, VerdictCode};
use vault_triage::incident::journal::{Event, Journal};
use vault_triage::lab::{Lab, LabOptions, Scenario};
use vault_triage::services::{Approved, FixError, INTERRUPTED_OUTCOME, Services};

use crate::support as common;

const REQUESTER: &str = "U0REQUESTER";

fn approver(i: usize) -> String {
    format!("U{i:07}")
}

struct World {
    lab: Lab,
    _dir: tempfile::TempDir,
    files: vault_triage::lab::LabFiles,
}

async fn world(scenario: Scenario) -> World {
    common::init_crypto();
    let lab = Lab::start(scenario, LabOptions::default()).await.unwrap();
    let (dir, files) = common::lab_files(&lab);
    World {
        lab,
        _dir: dir,
        files,
    }
}

/// The services as the composition root builds them, with `approvers` listed Slack users
/// (and the requester) of whom two must approve, the journal in `state`; and a triage.
async fn fixes(w: &World, state: &std::path::Path, approvers: usize) -> (Arc<Services>, Report) {
    let mut cfg = FileConfig::load(Some(&w.files.config)).unwrap();
    cfg.state.dir = state.to_path_buf();
    cfg.probes.rollout_timeout = Duration::from_secs(20);
    let ids: Vec<String> = (0..approvers)
        .map(approver)
        .chain([REQUESTER.to_string()])
        .collect();
    let rule = |action: Action| ApprovalRule {
        action: action.as_str().into(),
        approvers: ids.clone(),
        required: 2,
        expires_after: Duration::from_secs(900),
    };
    cfg.approvals = vec![
        rule(Action::ReconfigureAuth),
        rule(Action::RestartDeployments),
    ];
    let (services, _) =
        vault_triage::app::build_services(&common::connection(&w.lab, &w.files), cfg)
            .await
            .unwrap();
    let report = services.triage.look("test").await;
    (services, report)
}

/// An approval that must be counted without completing the quorum.
async fn counted(services: &Services, request: &ApprovalRequest, who: &str) {
    let out = services
        .fixes
        .approve(&request.id, &Actor::slack(who), Utc::now(), &|_| {})
        .await;
    assert!(matches!(out, Ok(Approved::Recorded(_))), "{out:?}");
}

/// The approval that completes the quorum: the request runs; its final state.
async fn completes(
    services: &Services,
    request: &ApprovalRequest,
    who: &str,
) -> Result<ApprovalRequest, FixError> {
    match services
        .fixes
        .approve(&request.id, &Actor::slack(who), Utc::now(), &|_| {})
        .await
    {
        Ok(Approved::Executed(done)) => done,
        other => panic!("the quorum was not reached: {other:?}"),
    }
}

fn reviewer_token_requests(lab: &Lab) -> usize {
    lab.kube_requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/serviceaccounts/vault-auth/token"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_approvals_execute_the_fix_exactly_once() {
    let w = world(Scenario::ReviewerJwtExpired).await;
    let state = tempfile::tempdir().unwrap();
    let (services, report) = fixes(&w, state.path(), 100).await;
    let (request, _) = services
        .fixes
        .propose(
            &report,
            RemediationKind::RotateReviewer,
            Actor::slack(REQUESTER),
            Some("INC-1"),
            Utc::now(),
        )
        .unwrap();

    let barrier = Arc::new(tokio::sync::Barrier::new(100));
    let mut tasks = Vec::new();
    for i in 0..100 {
        let (services, barrier, id) = (services.clone(), barrier.clone(), request.id.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            match services
                .fixes
                .approve(&id, &Actor::slack(approver(i)), Utc::now(), &|_| {})
                .await
            {
                // The approval that completed the quorum ran it.
                Ok(Approved::Executed(done)) => (true, done.is_ok()),
                Ok(Approved::Recorded(_)) | Err(_) => (false, false),
            }
        }));
    }
    let mut quorums = 0;
    let mut runs = 0;
    for t in tasks {
        let (q, r) = t.await.unwrap();
        quorums += q as usize;
        runs += r as usize;
    }
    assert_eq!(quorums, 1);
    assert_eq!(runs, 1);
    assert_eq!(
        reviewer_token_requests(&w.lab),
        1,
        "the reviewer token was minted once"
    );
    let done = services.fixes.request(&request.id).unwrap();
    assert_eq!(done.state, ApprovalState::Succeeded, "{:?}", done.outcome);
    let replay = Journal::read(state.path()).unwrap();
    let started = replay
        .entries
        .iter()
        .filter(|e| matches!(e.event, Event::ExecutionStarted { .. }))
        .count();
    assert_eq!(started, 1);
    assert!(
        replay
            .entries
            .iter()
            .any(|e| matches!(e.event, Event::ReviewerRotated { .. }))
    );
    assert!(services.fixes.rotated_reviewer_expiry().is_some());
    w.lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_requester_cannot_approve_their_own_fix() {
    let w = world(Scenario::ReviewerJwtExpired).await;
    let state = tempfile::tempdir().unwrap();
    let (services, report) = fixes(&w, state.path(), 3).await;
    let (request, _) = services
        .fixes
        .propose(
            &report,
            RemediationKind::RotateReviewer,
            Actor::slack(REQUESTER),
            None,
            Utc::now(),
        )
        .unwrap();
    let refused = services
        .fixes
        .approve(&request.id, &Actor::slack(REQUESTER), Utc::now(), &|_| {})
        .await;
    assert!(matches!(refused, Err(Refusal::SelfApproval)), "{refused:?}");
    assert_eq!(
        services.fixes.request(&request.id).unwrap().approvals.len(),
        0
    );
    w.lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_fix_is_invalidated_when_logins_already_work_again() {
    let w = world(Scenario::ReviewerJwtExpired).await;
    let state = tempfile::tempdir().unwrap();
    let (services, report) = fixes(&w, state.path(), 3).await;
    let fixes = &services.fixes;
    let (request, _) = fixes
        .propose(
            &report,
            RemediationKind::RotateReviewer,
            Actor::slack(REQUESTER),
            None,
            Utc::now(),
        )
        .unwrap();
    // Someone fixes it by hand meanwhile (a fresh reviewer token written to Vault).
    let other = fixes
        .propose(
            &report,
            RemediationKind::UseLocalToken,
            Actor::slack(approver(2)),
            None,
            Utc::now(),
        )
        .unwrap()
        .0;
    assert_ne!(other.id, request.id);
    let plan = fixes.plan(&request.id).unwrap();
    fixes
        .remediator()
        .execute_approved(&plan, &|_| {})
        .await
        .unwrap();
    assert_eq!(
        services.triage.look("test").await.verdict.code,
        VerdictCode::Healthy
    );
    let writes_before = reviewer_token_requests(&w.lab);

    counted(&services, &request, &approver(0)).await;
    let done = completes(&services, &request, &approver(1)).await.unwrap();
    assert_eq!(done.state, ApprovalState::Invalidated);
    assert!(
        done.outcome.as_deref().unwrap_or("").contains("healthy"),
        "{:?}",
        done.outcome
    );
    assert_eq!(
        reviewer_token_requests(&w.lab),
        writes_before,
        "nothing was minted or written"
    );
    w.lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_in_the_middle_of_a_flow_loses_nothing() {
    let w = world(Scenario::ReviewerJwtExpired).await;
    let state = tempfile::tempdir().unwrap();
    let id = {
        let (services, report) = fixes(&w, state.path(), 3).await;
        let fixes = &services.fixes;
        let (request, _) = fixes
            .propose(
                &report,
                RemediationKind::RotateReviewer,
                Actor::slack(REQUESTER),
                Some("INC-7"),
                Utc::now(),
            )
            .unwrap();
        counted(&services, &request, &approver(0)).await;
        // A restart request that was running when the process stopped: approved by two
        // (journaled as such), then its execution started and never finished.
        let (restart, _) = fixes
            .propose(
                &report,
                RemediationKind::RestartDeployments,
                Actor::slack(REQUESTER),
                Some("INC-7"),
                Utc::now(),
            )
            .unwrap();
        counted(&services, &restart, &approver(0)).await;
        let second = Actor::slack(approver(1));
        services
            .journal
            .append(
                Event::ApprovalGranted {
                    id: restart.id.clone(),
                    person: services.policy().identity(&second),
                    actor: second,
                },
                None,
                None,
            )
            .unwrap();
        services
            .journal
            .append(
                Event::ExecutionStarted {
                    id: restart.id.clone(),
                },
                None,
                None,
            )
            .unwrap();
        (request, restart.id)
    }; // the process "stops": everything in memory is gone

    let (services, _) = fixes(&w, state.path(), 3).await;
    let pending = services
        .fixes
        .request(&id.0.id)
        .expect("pending request survives");
    assert_eq!(pending.state, ApprovalState::PartiallyApproved);
    assert_eq!(pending.approvals.len(), 1);
    assert!(services.fixes.plan(&id.0.id).is_some(), "its plan survives");
    let interrupted = services.fixes.request(&id.1).unwrap();
    assert_eq!(interrupted.state, ApprovalState::Failed);
    assert_eq!(interrupted.outcome.as_deref(), Some(INTERRUPTED_OUTCOME));

    // The same person cannot count twice after the restart; a second person completes it.
    let again = services
        .fixes
        .approve(&id.0.id, &Actor::slack(approver(0)), Utc::now(), &|_| {})
        .await;
    assert!(matches!(again, Err(Refusal::AlreadyApproved)), "{again:?}");
    let done = completes(&services, &id.0, &approver(1)).await.unwrap();
    assert_eq!(done.state, ApprovalState::Succeeded, "{:?}", done.outcome);

    let audit = Journal::read(state.path()).unwrap();
    assert!(audit.torn.is_empty());
    let text =
        vault_triage::incident::audit::render_text(&audit.entries.iter().collect::<Vec<_>>());
    assert!(text.contains("INC-7"), "{text}");
    w.lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reviewer_watch_prepares_a_rotation_before_the_token_expires() {
    use vault_triage::remediation::watch::ReviewerHealth;
    use vault_triage::services::reviewer::check_once;
    let w = world(Scenario::Healthy).await;
    let state = tempfile::tempdir().unwrap();
    let (services, _) = fixes(&w, state.path(), 3).await;

    // A year left and a week's warning: nothing to do.
    let (health, request) =
        check_once(&services, Duration::from_secs(7 * 86_400), Utc::now()).await;
    assert!(matches!(health, ReviewerHealth::Fine { .. }), "{health:?}");
    assert!(request.is_none());

    // Warn 400 days ahead: the watch opens a rotate request, ready for people to approve.
    let (health, request) =
        check_once(&services, Duration::from_secs(400 * 86_400), Utc::now()).await;
    assert!(
        matches!(health, ReviewerHealth::ExpiresSoon { .. }),
        "{health:?}"
    );
    let request = request.expect("a rotate request waits for approval");
    assert_eq!(request.action, Action::ReconfigureAuth);
    assert_eq!(request.state, ApprovalState::Proposed);
    assert!(
        request.summary.contains("rotate-reviewer"),
        "{}",
        request.summary
    );
    // Any listed approver may approve: the bot is the requester.
    counted(&services, &request, &approver(0)).await;
    // A second round finds the open request instead of opening another.
    let (_, again) = check_once(&services, Duration::from_secs(400 * 86_400), Utc::now()).await;
    assert_eq!(again.unwrap().id, request.id);
    w.lab.shutdown().await;
}
