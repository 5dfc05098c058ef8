//! Approval-gated fixes end to end against the lab: proposals, approvals, at-most-once
//! execution, invalidation when the world changed, and a restart in the middle of a flow.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use vault_triage::approval::{
    Actor, Approval, ApprovalState, INTERRUPTED_OUTCOME, Policy, Refusal,
};
use vault_triage::config::ApprovalRule;
use vault_triage::diagnosis::{Action, VerdictCode};
use vault_triage::fixes::Fixes;
use vault_triage::incident::journal::{Event, Journal};
use vault_triage::lab::{Lab, LabOptions, Scenario};
use vault_triage::remediation::{PlanSettings, Remediator, Strategy};
use vault_triage::triage::{Report, triage};

const REQUESTER: &str = "U0REQUESTER";

fn approver(i: usize) -> String {
    format!("U{i:07}")
}

fn policy(approvers: usize) -> Policy {
    let ids: Vec<String> = (0..approvers)
        .map(approver)
        .chain([REQUESTER.to_string()])
        .collect();
    let rule = |action: &str| ApprovalRule {
        action: action.into(),
        approvers: ids.clone(),
        required: 2,
        expires_after: Duration::from_secs(900),
    };
    Policy::from_config(
        &[rule("reconfigure-auth"), rule("restart-deployments")],
        &[],
    )
    .unwrap()
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

async fn fixes(w: &World, state: &std::path::Path, approvers: usize) -> (Fixes, Report) {
    let (probes, target) =
        common::probes_for(&w.files, &w.lab.vault_addr(), &w.lab.vault_token()).await;
    let reviewer = target
        .reviewer
        .as_ref()
        .map(|r| (r.namespace.clone(), r.service_account.clone()));
    let remediator = Remediator {
        probes,
        target,
        settings: PlanSettings {
            reviewer,
            ..PlanSettings::default()
        },
        rollout_timeout: Duration::from_secs(20),
    };
    let report = triage(&remediator.probes, &remediator.target).await;
    let (journal, replay) = Journal::open(state).unwrap();
    let (fixes, _) = Fixes::restore(
        remediator,
        policy(approvers),
        Arc::new(journal),
        &replay.entries,
        Utc::now(),
    )
    .unwrap();
    (fixes, report)
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
    let (fixes, report) = fixes(&w, state.path(), 100).await;
    let fixes = Arc::new(fixes);
    let (request, _) = fixes
        .propose(
            &report,
            Action::ReconfigureAuth,
            Strategy::RotateReviewer,
            Actor::slack(REQUESTER),
            Some("INC-1"),
            Utc::now(),
        )
        .unwrap();

    let barrier = Arc::new(tokio::sync::Barrier::new(100));
    let mut tasks = Vec::new();
    for i in 0..100 {
        let (fixes, barrier, id) = (fixes.clone(), barrier.clone(), request.id.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let quorum = matches!(
                fixes.approve(&id, &Actor::slack(approver(i)), Utc::now()),
                Ok(Approval::QuorumReached { .. })
            );
            // Every clicker tries to run it; only one may.
            let ran = fixes
                .execute(&id, &|_: &vault_triage::remediation::Step| {})
                .await
                .is_ok();
            (quorum, ran)
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
    let done = fixes.request(&request.id).unwrap();
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
    assert!(fixes.rotated_reviewer_expiry().is_some());
    w.lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_requester_cannot_approve_their_own_fix() {
    let w = world(Scenario::ReviewerJwtExpired).await;
    let state = tempfile::tempdir().unwrap();
    let (fixes, report) = fixes(&w, state.path(), 3).await;
    let (request, _) = fixes
        .propose(
            &report,
            Action::ReconfigureAuth,
            Strategy::RotateReviewer,
            Actor::slack(REQUESTER),
            None,
            Utc::now(),
        )
        .unwrap();
    assert_eq!(
        fixes.approve(&request.id, &Actor::slack(REQUESTER), Utc::now()),
        Err(Refusal::SelfApproval)
    );
    assert_eq!(fixes.request(&request.id).unwrap().approvals.len(), 0);
    w.lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_fix_is_invalidated_when_logins_already_work_again() {
    let w = world(Scenario::ReviewerJwtExpired).await;
    let state = tempfile::tempdir().unwrap();
    let (fixes, report) = fixes(&w, state.path(), 3).await;
    let (request, _) = fixes
        .propose(
            &report,
            Action::ReconfigureAuth,
            Strategy::RotateReviewer,
            Actor::slack(REQUESTER),
            None,
            Utc::now(),
        )
        .unwrap();
    // Someone fixes it by hand meanwhile (a fresh reviewer token written to Vault).
    let other = fixes
        .propose(
            &report,
            Action::ReconfigureAuth,
            Strategy::UseLocalToken,
            Actor::slack(approver(2)),
            None,
            Utc::now(),
        )
        .unwrap()
        .0;
    assert_ne!(other.id, request.id);
    let first = fixes.request(&request.id).unwrap();
    let plan = fixes.plan(&request.id).unwrap();
    fixes
        .remediator()
        .execute_approved(&plan, &|_| {})
        .await
        .unwrap();
    assert_eq!(
        triage(&fixes.remediator().probes, &fixes.remediator().target)
            .await
            .verdict
            .code,
        VerdictCode::Healthy
    );
    let writes_before = reviewer_token_requests(&w.lab);

    fixes
        .approve(&first.id, &Actor::slack(approver(0)), Utc::now())
        .unwrap();
    assert!(matches!(
        fixes.approve(&first.id, &Actor::slack(approver(1)), Utc::now()),
        Ok(Approval::QuorumReached { .. })
    ));
    let done = fixes.execute(&first.id, &|_| {}).await.unwrap();
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
        let (fixes, report) = fixes(&w, state.path(), 3).await;
        let (request, _) = fixes
            .propose(
                &report,
                Action::ReconfigureAuth,
                Strategy::RotateReviewer,
                Actor::slack(REQUESTER),
                Some("INC-7"),
                Utc::now(),
            )
            .unwrap();
        fixes
            .approve(&request.id, &Actor::slack(approver(0)), Utc::now())
            .unwrap();
        // A restart request that was running when the process stopped.
        let (restart, _) = fixes
            .propose(
                &report,
                Action::RestartDeployments,
                Strategy::RotateReviewer,
                Actor::slack(REQUESTER),
                Some("INC-7"),
                Utc::now(),
            )
            .unwrap();
        fixes
            .approve(&restart.id, &Actor::slack(approver(0)), Utc::now())
            .unwrap();
        fixes
            .approve(&restart.id, &Actor::slack(approver(1)), Utc::now())
            .unwrap();
        fixes
            .journal()
            .append(
                Event::ExecutionStarted {
                    id: restart.id.clone(),
                },
                None,
                None,
            )
            .unwrap();
        (request.id, restart.id)
    }; // the process "stops": everything in memory is gone

    let (fixes, _) = fixes(&w, state.path(), 3).await;
    let pending = fixes.request(&id.0).expect("pending request survives");
    assert_eq!(pending.state, ApprovalState::PartiallyApproved);
    assert_eq!(pending.approvals.len(), 1);
    assert!(fixes.plan(&id.0).is_some(), "its plan survives");
    let interrupted = fixes.request(&id.1).unwrap();
    assert_eq!(interrupted.state, ApprovalState::Failed);
    assert_eq!(interrupted.outcome.as_deref(), Some(INTERRUPTED_OUTCOME));

    // The same person cannot count twice after the restart; a second person completes it.
    assert_eq!(
        fixes.approve(&id.0, &Actor::slack(approver(0)), Utc::now()),
        Err(Refusal::AlreadyApproved)
    );
    assert!(matches!(
        fixes.approve(&id.0, &Actor::slack(approver(1)), Utc::now()),
        Ok(Approval::QuorumReached { .. })
    ));
    let done = fixes.execute(&id.0, &|_| {}).await.unwrap();
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
    use vault_triage::remediation::watch::{ReviewerHealth, check_once};
    let w = world(Scenario::Healthy).await;
    let state = tempfile::tempdir().unwrap();
    let (fixes, _) = fixes(&w, state.path(), 3).await;

    // A year left and a week's warning: nothing to do.
    let (health, request) = check_once(&fixes, Duration::from_secs(7 * 86_400), Utc::now()).await;
    assert!(matches!(health, ReviewerHealth::Fine { .. }), "{health:?}");
    assert!(request.is_none());

    // Warn 400 days ahead: the watch opens a rotate request, ready for people to approve.
    let (health, request) = check_once(&fixes, Duration::from_secs(400 * 86_400), Utc::now()).await;
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
    assert!(
        fixes
            .approve(&request.id, &Actor::slack(approver(0)), Utc::now())
            .is_ok()
    );
    // A second round finds the open request instead of opening another.
    let (_, again) = check_once(&fixes, Duration::from_secs(400 * 86_400), Utc::now()).await;
    assert_eq!(again.unwrap().id, request.id);
    w.lab.shutdown().await;
}
