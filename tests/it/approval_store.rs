//! The journaled approval store under concurrent clicks.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use vault_triage::approval::{
    Actor, Approval, ApprovalState, NewRequest, Policy, Refusal, RequestId,
};
use vault_triage::config::{ApprovalRule, Person};
use vault_triage::diagnosis::Action;
use vault_triage::incident::{Event, Journal};
use vault_triage::services::{ApprovalStore, Proposal};

const CLICKERS: usize = 100;

fn t(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 9, minute, 0).unwrap()
}

fn approver(i: usize) -> Actor {
    Actor::slack(format!("U{i:04}"))
}

fn policy(required: u32) -> Policy {
    let rule = |action: &str| ApprovalRule {
        action: action.to_owned(),
        approvers: (0..CLICKERS)
            .map(|i| format!("slack:{}", approver(i).user_id))
            .chain(["carol".to_owned()])
            .collect(),
        required,
        expires_after: Duration::from_secs(15 * 60),
    };
    let carol = Person {
        name: "carol".to_owned(),
        slack: Some("UCAROL".to_owned()),
        discord: Some("333".to_owned()),
    };
    Policy::from_config(
        &[rule("reconfigure-auth"), rule("restart-deployments")],
        &[carol],
    )
    .unwrap()
}

fn store(required: u32) -> (tempfile::TempDir, Arc<Journal>, Arc<ApprovalStore>) {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(dir.path()).unwrap();
    let journal = Arc::new(journal);
    let store = Arc::new(ApprovalStore::new(policy(required), journal.clone()));
    (dir, journal, store)
}

fn reconfigure(fingerprint: &str) -> NewRequest {
    NewRequest {
        action: Action::ReconfigureAuth,
        fingerprint: fingerprint.to_owned(),
        incident: Some("INC-7".to_owned()),
        summary: "rewrite auth/kubernetes/config without a reviewer token".to_owned(),
    }
}

fn propose(store: &ApprovalStore, fingerprint: &str) -> RequestId {
    match store
        .propose(reconfigure(fingerprint), Actor::slack("UREQUESTER"), t(0))
        .unwrap()
    {
        Proposal::New(r) => r.id,
        Proposal::AlreadyOpen(r) => panic!("{} was already open", r.id),
    }
}

fn events(dir: &tempfile::TempDir) -> Vec<Event> {
    let (_, replay) = Journal::open(dir.path()).unwrap();
    assert!(replay.torn.is_empty(), "{:?}", replay.torn);
    replay.entries.into_iter().map(|e| e.event).collect()
}

#[test]
fn a_hundred_simultaneous_approvals_reach_quorum_once_and_run_once() {
    let (dir, _journal, store) = store(2);
    let id = propose(&store, "fp-1");

    let barrier = Arc::new(Barrier::new(CLICKERS));
    let answers: Vec<Result<Approval, Refusal>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..CLICKERS)
            .map(|i| {
                let (store, barrier, id) = (store.clone(), barrier.clone(), id.clone());
                s.spawn(move || {
                    barrier.wait();
                    store.approve(&id, &approver(i), t(1))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let quorum = answers
        .iter()
        .filter(|a| matches!(a, Ok(Approval::QuorumReached { .. })))
        .count();
    let recorded = answers
        .iter()
        .filter(|a| {
            matches!(
                a,
                Ok(Approval::Recorded {
                    have: 1,
                    need: 2,
                    ..
                })
            )
        })
        .count();
    let late = answers
        .iter()
        .filter(|a| {
            **a == Err(Refusal::NotPending {
                state: ApprovalState::Approved,
            })
        })
        .count();
    assert_eq!((quorum, recorded, late), (1, 1, CLICKERS - 2));

    let barrier = Arc::new(Barrier::new(CLICKERS));
    let starts: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..CLICKERS)
            .map(|_| {
                let (store, barrier, id) = (store.clone(), barrier.clone(), id.clone());
                s.spawn(move || {
                    barrier.wait();
                    store.begin_execution(&id, t(2))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let started: Vec<_> = starts.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(started.len(), 1);
    assert_eq!(started[0].state, ApprovalState::Executing);
    assert_eq!(store.get(&id).unwrap().approvals.len(), 2);

    let journal = events(&dir);
    let granted = journal
        .iter()
        .filter(|e| matches!(e, Event::ApprovalGranted { .. }))
        .count();
    let begun = journal
        .iter()
        .filter(|e| matches!(e, Event::ExecutionStarted { .. }))
        .count();
    let refused = journal
        .iter()
        .filter(|e| matches!(e, Event::ApprovalRefused { .. }))
        .count();
    assert_eq!((granted, begun, refused), (2, 1, CLICKERS - 2));
}

#[test]
fn simultaneous_tasks_on_a_runtime_also_run_once() {
    let (_dir, _journal, store) = store(2);
    let id = propose(&store, "fp-1");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .unwrap();
    let quorum = rt.block_on(async {
        let tasks: Vec<_> = (0..CLICKERS)
            .map(|i| {
                let (store, id) = (store.clone(), id.clone());
                tokio::spawn(async move { store.approve(&id, &approver(i), t(1)) })
            })
            .collect();
        let mut quorum = 0;
        for task in tasks {
            if matches!(task.await.unwrap(), Ok(Approval::QuorumReached { .. })) {
                quorum += 1;
            }
        }
        quorum
    });
    assert_eq!(quorum, 1);
}

#[test]
fn proposing_the_same_plan_twice_returns_the_open_request() {
    let (_dir, _journal, store) = store(2);
    let id = propose(&store, "fp-1");
    let again = store
        .propose(reconfigure("fp-1"), Actor::slack("UOTHER"), t(1))
        .unwrap();
    assert_eq!(again, Proposal::AlreadyOpen(store.get(&id).unwrap()));
    let other_plan = propose(&store, "fp-2");
    assert_ne!(other_plan, id);
    assert_eq!(store.list().len(), 2);
}

#[test]
fn an_unknown_request_id_is_refused() {
    let (_dir, _journal, store) = store(1);
    let err = store
        .approve(&RequestId::generate(), &approver(1), t(1))
        .unwrap_err();
    assert_eq!(err, Refusal::UnknownRequest);
}

#[test]
fn an_action_without_a_policy_cannot_be_proposed() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(dir.path()).unwrap();
    let store = ApprovalStore::new(Policy::default(), Arc::new(journal));
    let err = store
        .propose(reconfigure("fp"), Actor::slack("UREQUESTER"), t(0))
        .unwrap_err();
    assert_eq!(
        err,
        Refusal::NoPolicy {
            action: "reconfigure-auth".into()
        }
    );
    assert!(store.list().is_empty());
}

#[test]
fn the_requester_approving_from_another_platform_is_refused_and_journaled() {
    let (dir, _journal, store) = store(1);
    let Proposal::New(request) = store
        .propose(reconfigure("fp"), Actor::slack("UCAROL"), t(0))
        .unwrap()
    else {
        panic!("expected a new request")
    };
    let err = store
        .approve(&request.id, &Actor::discord("333"), t(1))
        .unwrap_err();
    assert_eq!(err, Refusal::SelfApproval);
    assert_eq!(
        err.to_string(),
        "you requested this change; someone else must approve it"
    );
    assert!(events(&dir).iter().any(|e| matches!(
        e,
        Event::ApprovalRefused { reason, .. } if reason.contains("someone else must approve")
    )));
}

#[test]
fn expire_due_closes_open_requests_and_a_late_click_is_refused() {
    let (_dir, _journal, store) = store(2);
    let id = propose(&store, "fp-1");
    store.approve(&id, &approver(1), t(1)).unwrap();
    assert!(store.expire_due(t(14)).is_empty());
    let expired = store.expire_due(t(15));
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].state, ApprovalState::Expired);
    assert!(matches!(
        store.approve(&id, &approver(2), t(16)),
        Err(Refusal::Expired { .. })
    ));
}

#[test]
fn the_executor_records_steps_and_the_result() {
    let (dir, _journal, store) = store(1);
    let id = propose(&store, "fp-1");
    store.approve(&id, &approver(1), t(1)).unwrap();
    store.begin_execution(&id, t(2)).unwrap();
    store
        .record_step(
            &id,
            "write auth config",
            true,
            "disable_local_ca_jwt=false",
            t(2),
        )
        .unwrap();
    let done = store.finish(&id, true, "canary login works", t(3)).unwrap();
    assert_eq!(done.state, ApprovalState::Succeeded);
    assert!(matches!(
        store.invalidate(&id, "plan changed", t(4)),
        Err(Refusal::NotPending {
            state: ApprovalState::Succeeded
        })
    ));
    let journal = events(&dir);
    assert!(matches!(
        journal.last(),
        Some(Event::ExecutionFinished { ok: true, .. })
    ));
    assert!(
        journal
            .iter()
            .any(|e| matches!(e, Event::ExecutionStep { .. }))
    );
}
