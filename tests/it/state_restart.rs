//! The state across restarts, on SQLite and on PostgreSQL alike: the approval store rebuilt
//! from the live state, a deposed writer refused, a stale version refused, and an old
//! `journal.jsonl` imported once.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use vault_triage::approval::{Actor, ApprovalState, NewRequest, Policy, Refusal, RequestId};
use vault_triage::config::ApprovalRule;
use vault_triage::diagnosis::Action;
use vault_triage::services::{ApprovalStore, INTERRUPTED_OUTCOME, Proposal};
use vault_triage::store::{
    AuditFilter, Change, Event, JournalEntry, Record, Store, StoreError, legacy,
};

use crate::support::state::{Backend, FreshState};

const RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

fn t(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 9, minute, 0).unwrap()
}

fn policy() -> Policy {
    Policy::from_config(
        &[ApprovalRule {
            action: "reconfigure-auth".into(),
            approvers: vec!["UBOB".into(), "UCAROL".into()],
            required: 1,
            expires_after: Duration::from_secs(15 * 60),
        }],
        &[],
    )
    .unwrap()
}

async fn propose(store: &ApprovalStore, fingerprint: &str, now: DateTime<Utc>) -> RequestId {
    let new = NewRequest {
        action: Action::ReconfigureAuth,
        cluster: "default".into(),
        fingerprint: fingerprint.into(),
        incident: Some("INC-1".into()),
        summary: "rewrite auth/kubernetes/config".into(),
    };
    match store
        .propose(new, Actor::slack("UALICE"), now)
        .await
        .unwrap()
    {
        Proposal::New(r) => r.id,
        Proposal::AlreadyOpen(r) => panic!("{} was already open", r.id),
    }
}

/// A restart: a new writer (a new term) and the live state at `now`.
async fn restart(
    state: &FreshState,
    now: DateTime<Utc>,
) -> (
    ApprovalStore,
    vault_triage::services::RestoreReport,
    Arc<Store>,
) {
    let writer = state.writer().await;
    let live = writer.load_live(now, RETENTION).await.unwrap();
    let (store, report) = ApprovalStore::restore(policy(), writer.clone(), &live, now)
        .await
        .unwrap();
    (store, report, writer)
}

#[tokio::test]
async fn a_restore_rebuilds_the_live_state_and_closes_what_cannot_continue() {
    for backend in Backend::ALL {
        let state = FreshState::new(*backend).await;
        let store = ApprovalStore::new(policy(), state.writer().await);

        // Running when the process stops.
        let running = propose(&store, "fp-running", t(0)).await;
        store
            .approve(&running, &Actor::slack("UBOB"), t(1))
            .await
            .unwrap();
        store.begin_execution(&running, t(2)).await.unwrap();
        // Open and past its expiry (t(15)) by the restart at t(20).
        let overdue = propose(&store, "fp-overdue", t(0)).await;
        // Approved, not started, still in time at t(20).
        let approved = propose(&store, "fp-approved", t(10)).await;
        store
            .approve(&approved, &Actor::slack("UCAROL"), t(11))
            .await
            .unwrap();
        // Finished before the restart: must come back unchanged.
        let done = propose(&store, "fp-done", t(3)).await;
        store
            .approve(&done, &Actor::slack("UBOB"), t(4))
            .await
            .unwrap();
        store.begin_execution(&done, t(5)).await.unwrap();
        store
            .finish(&done, true, "canary login works", t(6))
            .await
            .unwrap();
        let before = store.list();
        drop(store);

        let (store, report, _) = restart(&state, t(20)).await;
        assert_eq!(report.interrupted, vec![running.clone()], "{backend:?}");
        assert_eq!(report.expired, vec![overdue.clone()]);
        assert_eq!(report.awaiting_execution, vec![approved.clone()]);

        let r = store.get(&running).unwrap();
        assert_eq!(r.state, ApprovalState::Failed);
        assert_eq!(r.outcome.as_deref(), Some(INTERRUPTED_OUTCOME));
        assert_eq!(store.get(&overdue).unwrap().state, ApprovalState::Expired);
        for id in [&done, &approved] {
            assert_eq!(
                store.get(id).unwrap(),
                before.iter().find(|r| r.id == *id).unwrap().clone()
            );
        }

        // Restarts do not resurrect expired approvals, and nothing interrupted is rerun.
        assert!(matches!(
            store.approve(&overdue, &Actor::slack("UBOB"), t(21)).await,
            Err(Refusal::Expired { .. })
        ));
        assert!(store.begin_execution(&running, t(21)).await.is_err());
        drop(store);

        // The closing is recorded: a second restart finds nothing more to close.
        let (store, report, writer) = restart(&state, t(21)).await;
        assert!(report.interrupted.is_empty());
        assert!(report.expired.is_empty());
        assert_eq!(store.get(&running).unwrap().state, ApprovalState::Failed);
        let (audit, _) = writer.audit(&AuditFilter::default()).await.unwrap();
        assert!(audit.iter().any(|e| matches!(&e.event,
            Event::ExecutionFinished { ok: false, detail, .. } if detail == INTERRUPTED_OUTCOME)));
        assert!(
            audit
                .iter()
                .any(|e| matches!(&e.event, Event::RequestExpired { id } if *id == overdue))
        );
    }
}

#[tokio::test]
async fn a_restart_reproduces_every_live_request_exactly() {
    for backend in Backend::ALL {
        let state = FreshState::new(*backend).await;
        let store = ApprovalStore::new(policy(), state.writer().await);
        let a = propose(&store, "a", t(0)).await;
        store
            .approve(&a, &Actor::slack("UALICE"), t(1))
            .await
            .unwrap_err();
        store.deny(&a, &Actor::slack("UCAROL"), t(2)).await.unwrap();
        let b = propose(&store, "b", t(3)).await;
        store
            .invalidate(&b, "the reviewer Secret changed", t(4))
            .await
            .unwrap();
        let c = propose(&store, "c", t(5)).await;
        store
            .approve(&c, &Actor::slack("UBOB"), t(6))
            .await
            .unwrap();
        let before = store.list();
        drop(store);
        let (store, report, _) = restart(&state, t(7)).await;
        assert_eq!(store.list(), before, "{backend:?}");
        assert_eq!(report.unreadable, 0);
    }
}

#[tokio::test]
async fn closed_requests_past_the_retention_stay_in_the_audit_but_not_in_memory() {
    for backend in Backend::ALL {
        let state = FreshState::new(*backend).await;
        let store = ApprovalStore::new(policy(), state.writer().await);
        let old = propose(&store, "old", t(0)).await;
        store.deny(&old, &Actor::slack("UBOB"), t(1)).await.unwrap();
        let open = propose(&store, "open", t(2)).await;
        drop(store);
        // 31 days later: the denied request is history, the open one expired just now.
        let later = t(1) + chrono::Duration::days(31);
        let (store, _, writer) = restart(&state, later).await;
        assert!(store.get(&old).is_none(), "{backend:?}");
        assert_eq!(store.get(&open).unwrap().state, ApprovalState::Expired);
        let (audit, actions) = writer
            .audit(&AuditFilter {
                action: Some("reconfigure-auth".into()),
                ..AuditFilter::default()
            })
            .await
            .unwrap();
        assert!(audit.iter().any(|e| e.event.request_id() == Some(&old)));
        assert_eq!(actions.get(&old), Some(&Action::ReconfigureAuth));
        // In a running bot the sweep forgets what closed long enough ago.
        assert_eq!(
            store.prune(later + chrono::Duration::days(31), RETENTION),
            vec![open]
        );
        assert!(store.is_empty());
    }
}

#[tokio::test]
async fn a_deposed_writer_changes_nothing() {
    for backend in Backend::ALL {
        let state = FreshState::new(*backend).await;
        let old = state.writer().await;
        let store = ApprovalStore::new(policy(), old.clone());
        let id = propose(&store, "fp", t(0)).await;
        // A new leader takes the state.
        let new = state.writer().await;
        assert!(new.term() > old.term());
        let refused = store.approve(&id, &Actor::slack("UBOB"), t(1)).await;
        assert!(
            matches!(&refused, Err(Refusal::NotRecorded { detail }) if detail.contains("newer leader")),
            "{backend:?}: {refused:?}"
        );
        assert_eq!(
            store.get(&id).unwrap().state,
            ApprovalState::Proposed,
            "memory unchanged"
        );
        let err = old
            .record(Record::event(
                t(2),
                Event::RequestExpired { id: id.clone() },
            ))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Fenced { .. }), "{err}");
        let stored = new.load_request(&id).await.unwrap().unwrap();
        assert_eq!(stored.request.state, ApprovalState::Proposed);
        assert_eq!(stored.version, 1);
        let (audit, _) = new.audit(&AuditFilter::default()).await.unwrap();
        assert_eq!(audit.len(), 1, "only the proposal: {audit:?}");
    }
}

#[tokio::test]
async fn a_request_moves_only_from_the_version_its_writer_read() {
    for backend in Backend::ALL {
        let state = FreshState::new(*backend).await;
        let writer = state.writer().await;
        let store = ApprovalStore::new(policy(), writer.clone());
        let id = propose(&store, "fp", t(0)).await;
        let mut doc = store.get(&id).unwrap();
        doc.outcome = Some("first".into());
        writer
            .record(
                Record::event(
                    t(1),
                    Event::RequestInvalidated {
                        id: id.clone(),
                        reason: "a".into(),
                    },
                )
                .change(Change::Request {
                    doc: &doc,
                    version: 1,
                }),
            )
            .await
            .unwrap();
        let stale = writer
            .record(
                Record::event(
                    t(2),
                    Event::RequestInvalidated {
                        id: id.clone(),
                        reason: "b".into(),
                    },
                )
                .change(Change::Request {
                    doc: &doc,
                    version: 1,
                }),
            )
            .await;
        assert!(
            matches!(stale, Err(StoreError::Conflict)),
            "{backend:?}: {stale:?}"
        );
        assert_eq!(writer.load_request(&id).await.unwrap().unwrap().version, 2);
        // The in-memory store, behind the database now, reloads and decides again.
        let approved = store.approve(&id, &Actor::slack("UBOB"), t(3)).await;
        assert!(approved.is_ok(), "{approved:?}");
        assert_eq!(writer.load_request(&id).await.unwrap().unwrap().version, 3);
    }
}

#[tokio::test]
async fn an_old_journal_is_imported_once_with_its_pending_requests() {
    for backend in Backend::ALL {
        let state = FreshState::new(*backend).await;
        // An old release's journal: a proposal, an approval, a triage, and a torn last line.
        let request = {
            let scratch = FreshState::new(Backend::Sqlite).await;
            let store = ApprovalStore::new(policy(), scratch.writer().await);
            let id = propose(&store, "fp", t(0)).await;
            store.get(&id).unwrap()
        };
        let entries = [
            JournalEntry {
                seq: 1,
                at: t(0),
                incident: Some("INC-1".into()),
                actor: Some("slack:UALICE".into()),
                event: Event::ApprovalProposed {
                    request: Box::new(request.clone()),
                },
            },
            JournalEntry {
                seq: 2,
                at: t(1),
                incident: Some("INC-1".into()),
                actor: None,
                event: Event::TriageCompleted {
                    incident: Some("INC-1".into()),
                    cluster: "default".into(),
                    code: "reviewer_jwt_expired".into(),
                    summary: "the reviewer token expired".into(),
                },
            },
        ];
        std::fs::create_dir_all(&state.settings.dir).unwrap();
        let mut text: String = entries
            .iter()
            .map(|e| serde_json::to_string(e).unwrap() + "\n")
            .collect();
        text.push_str("{\"seq\": 3, \"at\": \"2030-");
        let path = state.settings.dir.join(legacy::JOURNAL_FILE);
        std::fs::write(&path, text).unwrap();

        let (store, report, writer) = restart(&state, t(2)).await;
        assert_eq!(report.unreadable, 0);
        assert_eq!(store.get(&request.id).unwrap(), request, "{backend:?}");
        assert!(!path.exists(), "the old journal is renamed");
        assert!(state.settings.dir.join(legacy::IMPORTED_FILE).exists());
        let (audit, _) = writer.audit(&AuditFilter::default()).await.unwrap();
        assert_eq!(audit.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
        // New events continue after the imported ones; a second start imports nothing.
        store
            .approve(&request.id, &Actor::slack("UBOB"), t(3))
            .await
            .unwrap();
        drop(store);
        let (_, _, writer) = restart(&state, t(4)).await;
        let (audit, _) = writer.audit(&AuditFilter::default()).await.unwrap();
        assert_eq!(audit.len(), 3);
        assert!(audit[2].seq > 2);
    }
}
