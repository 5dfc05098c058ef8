//! What the store records: one [`Event`] per fact, stamped into a [`JournalEntry`] with its
//! sequence number, time, incident and actor. Entries never carry a token.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::approval::request::Change;
use crate::approval::{Actor, ApprovalRequest, Decision, PersonKey, RequestId};
use crate::config::Platform;

/// One journaled fact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// An alert group opened an incident (payload: the intake's own model).
    IncidentOpened {
        incident: String,
        payload: serde_json::Value,
    },
    /// The incident changed (alerts added, resolved, thread ids learned, …).
    IncidentUpdated {
        incident: String,
        payload: serde_json::Value,
    },
    TriageCompleted {
        incident: Option<String>,
        /// The cluster triaged; records of older releases read as `default`.
        #[serde(default = "default_cluster")]
        cluster: String,
        code: String,
        summary: String,
    },
    ApprovalProposed {
        request: Box<ApprovalRequest>,
    },
    /// The plan a request approves (what the executor will run), recorded with the proposal.
    PlanRecorded {
        id: RequestId,
        plan: serde_json::Value,
    },
    /// The bot wrote a fresh reviewer token into Vault; when it expires (never the token).
    ReviewerRotated {
        /// The cluster whose reviewer it is; records of older releases read as `default`.
        #[serde(default = "default_cluster")]
        cluster: String,
        service_account: String,
        expires_at: Option<DateTime<Utc>>,
    },
    ApprovalGranted {
        id: RequestId,
        person: PersonKey,
        actor: Actor,
    },
    /// A click that changed nothing, with the sentence the clicker saw.
    ApprovalRefused {
        id: RequestId,
        actor: Actor,
        reason: String,
    },
    ApprovalDenied {
        id: RequestId,
        person: PersonKey,
        actor: Actor,
    },
    ExecutionStarted {
        id: RequestId,
    },
    ExecutionStep {
        id: RequestId,
        step: String,
        ok: bool,
        detail: String,
    },
    ExecutionFinished {
        id: RequestId,
        ok: bool,
        detail: String,
    },
    RequestExpired {
        id: RequestId,
    },
    RequestInvalidated {
        id: RequestId,
        reason: String,
    },
    /// The approval card of a request was posted here, so it can be updated and its thread
    /// told after a restart.
    ApprovalCardPosted {
        id: RequestId,
        platform: Platform,
        channel: String,
        message: String,
        thread: Option<String>,
    },
}

impl Event {
    /// The approval request this event is about, if any.
    pub fn request_id(&self) -> Option<&RequestId> {
        match self {
            Event::ApprovalProposed { request } => Some(&request.id),
            Event::PlanRecorded { id, .. }
            | Event::ApprovalGranted { id, .. }
            | Event::ApprovalRefused { id, .. }
            | Event::ApprovalDenied { id, .. }
            | Event::ExecutionStarted { id }
            | Event::ExecutionStep { id, .. }
            | Event::ExecutionFinished { id, .. }
            | Event::RequestExpired { id }
            | Event::RequestInvalidated { id, .. }
            | Event::ApprovalCardPosted { id, .. } => Some(id),
            Event::IncidentOpened { .. }
            | Event::IncidentUpdated { .. }
            | Event::TriageCompleted { .. }
            | Event::ReviewerRotated { .. } => None,
        }
    }
}

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Monotonic across restarts.
    pub seq: u64,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    /// Who caused it (a person key such as `alice` or `slack:U012ABC`); none for the bot itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    pub event: Event,
}

impl Event {
    /// The event's type name as stored (`approval_proposed`, …), the `type` tag of its JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::IncidentOpened { .. } => "incident_opened",
            Event::IncidentUpdated { .. } => "incident_updated",
            Event::TriageCompleted { .. } => "triage_completed",
            Event::ApprovalProposed { .. } => "approval_proposed",
            Event::PlanRecorded { .. } => "plan_recorded",
            Event::ReviewerRotated { .. } => "reviewer_rotated",
            Event::ApprovalGranted { .. } => "approval_granted",
            Event::ApprovalRefused { .. } => "approval_refused",
            Event::ApprovalDenied { .. } => "approval_denied",
            Event::ExecutionStarted { .. } => "execution_started",
            Event::ExecutionStep { .. } => "execution_step",
            Event::ExecutionFinished { .. } => "execution_finished",
            Event::RequestExpired { .. } => "request_expired",
            Event::RequestInvalidated { .. } => "request_invalidated",
            Event::ApprovalCardPosted { .. } => "approval_card_posted",
        }
    }
}

/// The request change an event records, if it records one (what replaying it applies).
pub fn request_change(event: &Event, at: DateTime<Utc>) -> Option<(RequestId, Change)> {
    let decision = |person: &PersonKey, actor: &Actor| Decision {
        person: person.clone(),
        actor: actor.clone(),
        at,
    };
    Some(match event {
        Event::ApprovalGranted { id, person, actor } => {
            (id.clone(), Change::Granted(decision(person, actor)))
        }
        Event::ApprovalDenied { id, person, actor } => {
            (id.clone(), Change::Denied(decision(person, actor)))
        }
        Event::ExecutionStarted { id } => (id.clone(), Change::Started { at }),
        Event::ExecutionFinished { id, ok, detail } => (
            id.clone(),
            Change::Finished {
                ok: *ok,
                detail: detail.clone(),
            },
        ),
        Event::RequestExpired { id } => (id.clone(), Change::Expired),
        Event::RequestInvalidated { id, reason } => (
            id.clone(),
            Change::Invalidated {
                reason: reason.clone(),
            },
        ),
        Event::ApprovalProposed { .. }
        | Event::ApprovalRefused { .. }
        | Event::PlanRecorded { .. }
        | Event::ExecutionStep { .. }
        | Event::IncidentOpened { .. }
        | Event::IncidentUpdated { .. }
        | Event::TriageCompleted { .. }
        | Event::ReviewerRotated { .. }
        | Event::ApprovalCardPosted { .. } => return None,
    })
}

/// The event a request change is recorded as.
pub fn event_for(id: &RequestId, change: &Change) -> Event {
    let id = id.clone();
    match change {
        Change::Granted(d) => Event::ApprovalGranted {
            id,
            person: d.person.clone(),
            actor: d.actor.clone(),
        },
        Change::Denied(d) => Event::ApprovalDenied {
            id,
            person: d.person.clone(),
            actor: d.actor.clone(),
        },
        Change::Started { .. } => Event::ExecutionStarted { id },
        Change::Finished { ok, detail } => Event::ExecutionFinished {
            id,
            ok: *ok,
            detail: detail.clone(),
        },
        Change::Expired => Event::RequestExpired { id },
        Change::Invalidated { reason } => Event::RequestInvalidated {
            id,
            reason: reason.clone(),
        },
    }
}

/// The cluster of a record written before records named one.
fn default_cluster() -> String {
    crate::config::DEFAULT_CLUSTER.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_of_older_releases_read_as_the_default_cluster() {
        let old = r#"{"type":"triage_completed","incident":null,"code":"healthy","summary":"ok"}"#;
        match serde_json::from_str::<Event>(old) {
            Ok(Event::TriageCompleted { cluster, .. }) => assert_eq!(cluster, "default"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_kind_is_the_json_tag() {
        let events = [
            Event::TriageCompleted {
                incident: None,
                cluster: "default".into(),
                code: "healthy".into(),
                summary: "ok".into(),
            },
            Event::RequestExpired {
                id: RequestId::generate(),
            },
            Event::ReviewerRotated {
                cluster: "default".into(),
                service_account: "vault/reviewer".into(),
                expires_at: None,
            },
        ];
        for e in events {
            assert_eq!(serde_json::to_value(&e).unwrap()["type"], e.kind());
        }
    }
}
