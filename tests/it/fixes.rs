//! Approval-gated fixes end to end against the lab: proposals, approvals, at-most-once
//! execution, invalidation when the world changed, and a restart in the middle of a flow.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use vault_triage::approval::{Actor, ApprovalRequest, ApprovalState, Refusal};
use vault_triage::config::{ApprovalRule, FileConfig, StateSection};
use vault_triage::diagnosis::{Action, RemediationKind, Report, VerdictCode};
use vault_triage::store::Event;

use crate::support::state::{Backend, FreshState, audit_in, granted, record_as_if};
use vault_triage::lab::{Lab, LabOptions, Scenario};
use vault_triage::services::{Approved, FixError, INTERRUPTED_OUTCOME, Progress, Services};

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
    world_with(scenario, LabOptions::default()).await
}

async fn world_with(scenario: Scenario, options: LabOptions) -> World {
    common::init_crypto();
    let lab = Lab::start(scenario, options).await.unwrap();
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
    let settings = StateSection {
        dir: state.to_path_buf(),
        ..StateSection::default()
    };
    fixes_on(w, &settings, approvers, |_| {}).await
}

/// [`fixes`] on the state `settings` name, with `configure`'s changes.
async fn fixes_on(
    w: &World,
    settings: &StateSection,
    approvers: usize,
    configure: impl FnOnce(&mut FileConfig),
) -> (Arc<Services>, Report) {
    let mut cfg = FileConfig::load(Some(&w.files.config)).unwrap();
    cfg.state = settings.clone();
    cfg.probes.rollout_timeout = Duration::from_secs(20);
    configure(&mut cfg);
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
        rule(Action::ResyncSecrets),
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
        .await
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
    let entries = audit_in(state.path()).await;
    let started = entries
        .iter()
        .filter(|e| matches!(e.event, Event::ExecutionStarted { .. }))
        .count();
    assert_eq!(started, 1);
    assert!(
        entries
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
        .await
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
        .await
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
        .await
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
            .await
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
            .await
            .unwrap();
        counted(&services, &restart, &approver(0)).await;
        record_as_if(
            &services.store,
            &restart.id,
            &[
                granted(services.policy(), Actor::slack(approver(1))),
                vault_triage::approval::request::Change::Started { at: Utc::now() },
            ],
        )
        .await;
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

    let audit = audit_in(state.path()).await;
    let text =
        vault_triage::store::render_text(&audit.iter().collect::<Vec<_>>(), &Default::default());
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_leader_stops_a_restart_run_before_its_next_restart() {
    for backend in Backend::ALL {
        // Slow rollouts, one at a time: there is time to depose the leader mid-run.
        let w = world_with(
            Scenario::ReviewerJwtExpired,
            LabOptions {
                latency: Duration::from_millis(30),
                ..LabOptions::default()
            },
        )
        .await;
        let state = FreshState::new(*backend).await;
        let (services, report) = fixes_on(&w, &state.settings, 3, |cfg| {
            cfg.probes.restart_concurrency = 1;
        })
        .await;
        let (request, plan) = services
            .fixes
            .propose(
                &report,
                RemediationKind::RestartDeployments,
                Actor::slack(REQUESTER),
                Some("INC-9"),
                Utc::now(),
            )
            .await
            .unwrap();
        assert!(
            plan.preview()
                .starts_with("Restart 8 workloads (6 Deployments, 1 StatefulSet, 1 DaemonSet;"),
            "{}",
            plan.preview()
        );
        counted(&services, &request, &approver(0)).await;

        // The approval that completes the quorum runs the restarts.
        let (tx, mut steps) = tokio::sync::mpsc::unbounded_channel::<String>();
        let run = {
            let (services, id) = (services.clone(), request.id.clone());
            tokio::spawn(async move {
                let progress = move |p: Progress<'_>| {
                    if let Progress::Step(s) = p {
                        let _ = tx.send(format!("{}: {}", s.step, s.detail));
                    }
                };
                services
                    .fixes
                    .approve(&id, &Actor::slack(approver(1)), Utc::now(), &progress)
                    .await
            })
        };
        // The first restart is recorded; then another replica takes the state.
        let first = steps.recv().await.expect("a step");
        assert!(first.starts_with("restart "), "{first}");
        let new_leader = state.writer().await;
        let outcome = run.await.unwrap();
        let mut told = vec![first];
        while let Ok(s) = steps.try_recv() {
            told.push(s);
        }
        assert!(
            told.iter()
                .any(|s| s.contains("stopped before restarting") && s.contains("newer leader")),
            "{backend:?}: {told:#?}"
        );
        assert!(
            matches!(
                &outcome,
                Ok(Approved::Executed(Err(FixError::Refused(
                    Refusal::NotRecorded { .. }
                ))))
            ),
            "the deposed leader cannot record the end: {outcome:?}"
        );
        let patches = w
            .lab
            .kube_requests()
            .iter()
            .filter(|r| r.method == "PATCH" && r.path.contains("/deployments/"))
            .count();
        assert_eq!(
            patches, 1,
            "{backend:?}: only the restart before the handover happened"
        );

        // The state holds what the old leader recorded before the handover, nothing after.
        let (events, _) = new_leader.audit(&Default::default()).await.unwrap();
        let steps_recorded: Vec<_> = events
            .iter()
            .filter_map(|e| match &e.event {
                Event::ExecutionStep { step, .. } => Some(step.clone()),
                _ => None,
            })
            .collect();
        // The first deployment's restart, and its rollout progress if that was recorded before
        // the handover; nothing about any other deployment.
        let first_target = told[0]
            .split(':')
            .next()
            .and_then(|s| s.strip_prefix("restart "))
            .unwrap()
            .to_string();
        assert_eq!(
            steps_recorded
                .iter()
                .filter(|s| s.starts_with("restart "))
                .count(),
            1,
            "{steps_recorded:?}"
        );
        assert!(
            steps_recorded.iter().all(|s| s.ends_with(&first_target)),
            "{backend:?}: {steps_recorded:?}"
        );
        assert!(
            !events
                .iter()
                .any(|e| matches!(e.event, Event::ExecutionFinished { .. }))
        );
        // The new leader's start closes the run as interrupted.
        drop(new_leader);
        let (services, _) = fixes_on(&w, &state.settings, 3, |_| {}).await;
        let closed = services.fixes.request(&request.id).unwrap();
        assert_eq!(closed.state, ApprovalState::Failed);
        assert_eq!(closed.outcome.as_deref(), Some(INTERRUPTED_OUTCOME));
        w.lab.shutdown().await;
    }
}
