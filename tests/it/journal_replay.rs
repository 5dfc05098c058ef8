//! The journal across crashes and restarts: torn lines, sequence numbers, and the approval
//! store rebuilt from a replay.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use vault_triage::approval::{Actor, ApprovalState, NewRequest, Policy, Refusal, RequestId};
use vault_triage::config::ApprovalRule;
use vault_triage::diagnosis::Action;
use vault_triage::incident::{Event, Journal};
use vault_triage::services::{ApprovalStore, INTERRUPTED_OUTCOME, Proposal};

fn t(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 9, minute, 0).unwrap()
}

fn triage(n: usize) -> Event {
    Event::TriageCompleted {
        incident: Some(format!("INC-{n}")),
        code: "reviewer_jwt_expired".into(),
        summary: "the reviewer token expired".into(),
    }
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

fn propose(store: &ApprovalStore, fingerprint: &str, now: DateTime<Utc>) -> RequestId {
    let new = NewRequest {
        action: Action::ReconfigureAuth,
        fingerprint: fingerprint.into(),
        incident: Some("INC-1".into()),
        summary: "rewrite auth/kubernetes/config".into(),
    };
    match store.propose(new, Actor::slack("UALICE"), now).unwrap() {
        Proposal::New(r) => r.id,
        Proposal::AlreadyOpen(r) => panic!("{} was already open", r.id),
    }
}

#[test]
fn a_torn_last_line_is_reported_skipped_and_cut_off() {
    const N: usize = 25;
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(dir.path()).unwrap();
    for n in 0..N {
        journal.append(triage(n), Some("INC-1"), None).unwrap();
    }
    let path = journal.path().to_owned();
    drop(journal);

    // A crash halfway through writing entry N+1.
    let whole = serde_json::to_string(&serde_json::json!({"seq": 26, "at": "2030-01-01T09:00:00Z", "event": {"type": "triage_completed"}})).unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(&whole.as_bytes()[..whole.len() / 2])
        .unwrap();

    let (journal, replay) = Journal::open(dir.path()).unwrap();
    assert_eq!(replay.entries.len(), N);
    assert_eq!(replay.torn.len(), 1);
    assert_eq!(replay.torn[0].line, N + 1);
    assert!(
        replay.torn[0].reason.contains("torn"),
        "{}",
        replay.torn[0].reason
    );

    let next = journal.append(triage(N), None, Some("alice")).unwrap();
    assert_eq!(next.seq, N as u64 + 1);
    drop(journal);

    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.ends_with('\n'));
    for line in text.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap();
    }
    let (_, replay) = Journal::open(dir.path()).unwrap();
    assert!(replay.torn.is_empty());
    assert_eq!(replay.entries.len(), N + 1);
    let seqs: Vec<u64> = replay.entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=N as u64 + 1).collect::<Vec<_>>());
}

#[test]
fn a_restore_rebuilds_the_live_state_and_closes_what_cannot_continue() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(dir.path()).unwrap();
    let store = ApprovalStore::new(policy(), Arc::new(journal));

    // Running when the process stops.
    let running = propose(&store, "fp-running", t(0));
    store
        .approve(&running, &Actor::slack("UBOB"), t(1))
        .unwrap();
    store.begin_execution(&running, t(2)).unwrap();
    // Open and past its expiry (t(15)) by the restart at t(20).
    let overdue = propose(&store, "fp-overdue", t(0));
    // Approved, not started, still in time at t(20).
    let approved = propose(&store, "fp-approved", t(10));
    store
        .approve(&approved, &Actor::slack("UCAROL"), t(11))
        .unwrap();
    // Finished before the restart: must come back unchanged.
    let done = propose(&store, "fp-done", t(3));
    store.approve(&done, &Actor::slack("UBOB"), t(4)).unwrap();
    store.begin_execution(&done, t(5)).unwrap();
    store
        .finish(&done, true, "canary login works", t(6))
        .unwrap();
    let live = store.list();
    drop(store);

    let (journal, replay) = Journal::open(dir.path()).unwrap();
    let last_seq = replay.entries.last().unwrap().seq;
    let (store, report) =
        ApprovalStore::restore(policy(), Arc::new(journal), &replay.entries, t(20)).unwrap();

    assert_eq!(report.interrupted, vec![running.clone()]);
    assert_eq!(report.expired, vec![overdue.clone()]);
    assert_eq!(report.awaiting_execution, vec![approved.clone()]);

    let r = store.get(&running).unwrap();
    assert_eq!(r.state, ApprovalState::Failed);
    assert_eq!(r.outcome.as_deref(), Some(INTERRUPTED_OUTCOME));
    assert_eq!(store.get(&overdue).unwrap().state, ApprovalState::Expired);
    assert_eq!(
        store.get(&done).unwrap(),
        live.iter().find(|r| r.id == done).unwrap().clone()
    );
    assert_eq!(
        store.get(&approved).unwrap(),
        live.iter().find(|r| r.id == approved).unwrap().clone()
    );

    // Restarts do not resurrect expired approvals, and nothing interrupted is rerun.
    assert!(matches!(
        store.approve(&overdue, &Actor::slack("UBOB"), t(21)),
        Err(Refusal::Expired { .. })
    ));
    assert!(store.begin_execution(&running, t(21)).is_err());
    drop(store);

    // The closing is journaled: a second restart finds nothing more to close.
    let (journal, replay) = Journal::open(dir.path()).unwrap();
    assert!(replay.entries.iter().any(|e| e.seq > last_seq
        && matches!(&e.event, Event::ExecutionFinished { ok: false, detail, .. } if detail == INTERRUPTED_OUTCOME)));
    assert!(
        replay.entries.iter().any(|e| e.seq > last_seq
            && matches!(&e.event, Event::RequestExpired { id } if *id == overdue))
    );
    let (store, report) =
        ApprovalStore::restore(policy(), Arc::new(journal), &replay.entries, t(21)).unwrap();
    assert!(report.interrupted.is_empty());
    assert!(report.expired.is_empty());
    assert_eq!(store.get(&running).unwrap().state, ApprovalState::Failed);
}

#[test]
fn a_replay_reproduces_every_live_request_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(dir.path()).unwrap();
    let store = ApprovalStore::new(policy(), Arc::new(journal));
    let a = propose(&store, "a", t(0));
    store
        .approve(&a, &Actor::slack("UALICE"), t(1))
        .unwrap_err();
    store.deny(&a, &Actor::slack("UCAROL"), t(2)).unwrap();
    let b = propose(&store, "b", t(3));
    store
        .invalidate(&b, "the reviewer Secret changed", t(4))
        .unwrap();
    let c = propose(&store, "c", t(5));
    store.approve(&c, &Actor::slack("UBOB"), t(6)).unwrap();
    let live = store.list();
    drop(store);

    let (journal, replay) = Journal::open(dir.path()).unwrap();
    let (store, report) =
        ApprovalStore::restore(policy(), Arc::new(journal), &replay.entries, t(7)).unwrap();
    assert_eq!(store.list(), live);
    assert_eq!(report.orphaned_events, 0);
}
