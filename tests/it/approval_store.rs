//! The recorded approval store under concurrent clicks, on SQLite and on PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use vault_triage::approval::{
    Actor, Approval, ApprovalState, NewRequest, Policy, Refusal, RequestId,
};
use vault_triage::config::{ApprovalRule, Person};
use vault_triage::diagnosis::Action;
use vault_triage::services::{ApprovalStore, Proposal};
use vault_triage::store::{AuditFilter, Event, Store};

use crate::support::state::{Backend, FreshState};

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

async fn store(backend: Backend, required: u32) -> (FreshState, Arc<Store>, Arc<ApprovalStore>) {
    let state = FreshState::new(backend).await;
    let writer = state.writer().await;
    let store = Arc::new(ApprovalStore::new(policy(required), writer.clone()));
    (state, writer, store)
}

fn reconfigure(fingerprint: &str) -> NewRequest {
    NewRequest {
        action: Action::ReconfigureAuth,
        cluster: "default".into(),
        fingerprint: fingerprint.to_owned(),
        incident: Some("INC-7".to_owned()),
        summary: "rewrite auth/kubernetes/config without a reviewer token".to_owned(),
    }
}

async fn propose(store: &ApprovalStore, fingerprint: &str) -> RequestId {
    match store
        .propose(reconfigure(fingerprint), Actor::slack("UREQUESTER"), t(0))
        .await
        .unwrap()
    {
        Proposal::New(r) => r.id,
        Proposal::AlreadyOpen(r) => panic!("{} was already open", r.id),
    }
}

async fn events(store: &Store) -> Vec<Event> {
    let (entries, _) = store.audit(&AuditFilter::default()).await.unwrap();
    entries.into_iter().map(|e| e.event).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_simultaneous_approvals_reach_quorum_once_and_run_once() {
    for backend in Backend::ALL {
        let (_state, writer, store) = store(*backend, 2).await;
        let id = propose(&store, "fp-1").await;

        let clicks = (0..CLICKERS).map(|i| {
            let (store, id) = (store.clone(), id.clone());
            tokio::spawn(async move { store.approve(&id, &approver(i), t(1)).await })
        });
        let answers: Vec<Result<Approval, Refusal>> = futures::future::join_all(clicks)
            .await
            .into_iter()
            .map(|r| r.unwrap())
            .collect();
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
        assert_eq!(
            (quorum, recorded, late),
            (1, 1, CLICKERS - 2),
            "{backend:?}"
        );

        let starts = (0..CLICKERS).map(|_| {
            let (store, id) = (store.clone(), id.clone());
            tokio::spawn(async move { store.begin_execution(&id, t(2)).await })
        });
        let starts: Vec<_> = futures::future::join_all(starts)
            .await
            .into_iter()
            .map(|r| r.unwrap())
            .collect();
        let started: Vec<_> = starts.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(started.len(), 1);
        assert_eq!(started[0].state, ApprovalState::Executing);
        assert_eq!(store.get(&id).unwrap().approvals.len(), 2);

        let recorded = events(&writer).await;
        let count = |f: fn(&Event) -> bool| recorded.iter().filter(|e| f(e)).count();
        assert_eq!(
            (
                count(|e| matches!(e, Event::ApprovalGranted { .. })),
                count(|e| matches!(e, Event::ExecutionStarted { .. })),
                count(|e| matches!(e, Event::ApprovalRefused { .. })),
            ),
            (2, 1, CLICKERS - 2)
        );
    }
}

#[tokio::test]
async fn proposing_the_same_plan_twice_returns_the_open_request() {
    let (_state, _writer, store) = store(Backend::Sqlite, 2).await;
    let id = propose(&store, "fp-1").await;
    let again = store
        .propose(reconfigure("fp-1"), Actor::slack("UOTHER"), t(1))
        .await
        .unwrap();
    assert_eq!(again, Proposal::AlreadyOpen(store.get(&id).unwrap()));
    let other_plan = propose(&store, "fp-2").await;
    assert_ne!(other_plan, id);
    assert_eq!(store.list().len(), 2);
}

#[tokio::test]
async fn an_unknown_request_id_is_refused() {
    let (_state, _writer, store) = store(Backend::Sqlite, 1).await;
    let err = store
        .approve(&RequestId::generate(), &approver(1), t(1))
        .await
        .unwrap_err();
    assert_eq!(err, Refusal::UnknownRequest);
}

#[tokio::test]
async fn an_action_without_a_policy_cannot_be_proposed() {
    let state = FreshState::new(Backend::Sqlite).await;
    let store = ApprovalStore::new(Policy::default(), state.writer().await);
    let err = store
        .propose(reconfigure("fp"), Actor::slack("UREQUESTER"), t(0))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        Refusal::NoPolicy {
            action: "reconfigure-auth".into()
        }
    );
    assert!(store.list().is_empty());
}

#[tokio::test]
async fn the_requester_approving_from_another_platform_is_refused_and_recorded() {
    for backend in Backend::ALL {
        let (_state, writer, store) = store(*backend, 1).await;
        let Proposal::New(request) = store
            .propose(reconfigure("fp"), Actor::slack("UCAROL"), t(0))
            .await
            .unwrap()
        else {
            panic!("expected a new request")
        };
        let err = store
            .approve(&request.id, &Actor::discord("333"), t(1))
            .await
            .unwrap_err();
        assert_eq!(err, Refusal::SelfApproval);
        assert_eq!(
            err.to_string(),
            "you requested this change; someone else must approve it"
        );
        assert!(events(&writer).await.iter().any(|e| matches!(
            e,
            Event::ApprovalRefused { reason, .. } if reason.contains("someone else must approve")
        )));
    }
}

#[tokio::test]
async fn expire_due_closes_open_requests_and_a_late_click_is_refused() {
    let (_state, _writer, store) = store(Backend::Sqlite, 2).await;
    let id = propose(&store, "fp-1").await;
    store.approve(&id, &approver(1), t(1)).await.unwrap();
    assert!(store.expire_due(t(14)).await.is_empty());
    let expired = store.expire_due(t(15)).await;
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].state, ApprovalState::Expired);
    assert!(matches!(
        store.approve(&id, &approver(2), t(16)).await,
        Err(Refusal::Expired { .. })
    ));
}

#[tokio::test]
async fn the_executor_records_steps_and_the_result() {
    for backend in Backend::ALL {
        let (_state, writer, store) = store(*backend, 1).await;
        let id = propose(&store, "fp-1").await;
        store.approve(&id, &approver(1), t(1)).await.unwrap();
        store.begin_execution(&id, t(2)).await.unwrap();
        store
            .record_step(
                &id,
                "write auth config",
                true,
                "disable_local_ca_jwt=false",
                t(2),
            )
            .await
            .unwrap();
        let done = store
            .finish(&id, true, "canary login works", t(3))
            .await
            .unwrap();
        assert_eq!(done.state, ApprovalState::Succeeded);
        assert!(matches!(
            store.invalidate(&id, "plan changed", t(4)).await,
            Err(Refusal::NotPending {
                state: ApprovalState::Succeeded
            })
        ));
        let recorded = events(&writer).await;
        assert!(matches!(
            recorded.last(),
            Some(Event::ExecutionFinished { ok: true, .. })
        ));
        assert!(
            recorded
                .iter()
                .any(|e| matches!(e, Event::ExecutionStep { .. }))
        );
    }
}
