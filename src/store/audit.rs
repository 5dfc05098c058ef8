//! Pure queries over audit records for `vault-triage audit`: select entries by incident, actor or
//! action, and render them one readable line each.

use std::collections::HashMap;

use super::event::{Event, JournalEntry};
use crate::approval::{Actor, RequestId};
use crate::diagnosis::Action;

/// Which entries to show; every field set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Incident key.
    pub incident: Option<String>,
    /// A person key (`alice`, `slack:U012ABC`), or a platform user id or display name.
    pub actor: Option<String>,
    /// An action name (`reconfigure-auth`): every event of a request for that action.
    pub action: Option<String>,
}

/// Entries matching the filter, in journal order.
pub fn filter<'a>(entries: &'a [JournalEntry], f: &AuditFilter) -> Vec<&'a JournalEntry> {
    let actions = request_actions(entries);
    entries
        .iter()
        .filter(|e| {
            let incident_ok = f
                .incident
                .as_deref()
                .is_none_or(|want| incident_of(e) == Some(want));
            let actor_ok = f.actor.as_deref().is_none_or(|want| actor_matches(e, want));
            let action_ok = f.action.as_deref().is_none_or(|want| {
                e.event
                    .request_id()
                    .and_then(|id| actions.get(id))
                    .is_some_and(|a| a.as_str() == want)
            });
            incident_ok && actor_ok && action_ok
        })
        .collect()
}

/// One line per entry: time, incident, actor, what happened. `known` names the action of
/// requests whose proposal is not among `entries` (a filtered listing).
pub fn render_text(entries: &[&JournalEntry], known: &HashMap<RequestId, Action>) -> String {
    let actions = request_actions(entries.iter().copied());
    let mut out = String::new();
    for e in entries {
        let action = e
            .event
            .request_id()
            .and_then(|id| actions.get(id).or_else(|| known.get(id)))
            .map(|a| a.as_str());
        out.push_str(&format!(
            "{}  #{:<5} {:<12} {:<16} {}\n",
            e.at.format("%Y-%m-%d %H:%M:%SZ"),
            e.seq,
            incident_of(e).unwrap_or("-"),
            e.actor.as_deref().unwrap_or("-"),
            describe(&e.event, action),
        ));
    }
    out
}

fn request_actions<'a>(
    entries: impl IntoIterator<Item = &'a JournalEntry>,
) -> HashMap<&'a RequestId, Action> {
    entries
        .into_iter()
        .filter_map(|e| match &e.event {
            Event::ApprovalProposed { request } => Some((&request.id, request.action)),
            Event::PlanRecorded { .. }
            | Event::ApprovalGranted { .. }
            | Event::ApprovalRefused { .. }
            | Event::ApprovalDenied { .. }
            | Event::ExecutionStarted { .. }
            | Event::ExecutionStep { .. }
            | Event::ExecutionFinished { .. }
            | Event::RequestExpired { .. }
            | Event::RequestInvalidated { .. }
            | Event::IncidentOpened { .. }
            | Event::IncidentUpdated { .. }
            | Event::TriageCompleted { .. }
            | Event::ReviewerRotated { .. }
            | Event::ApprovalCardPosted { .. } => None,
        })
        .collect()
}

fn incident_of(e: &JournalEntry) -> Option<&str> {
    e.incident.as_deref().or(incident_of_event(&e.event))
}

/// The incident an event is about by its content, when it names one.
pub fn incident_of_event(event: &Event) -> Option<&str> {
    match event {
        Event::IncidentOpened { incident, .. } | Event::IncidentUpdated { incident, .. } => {
            Some(incident.as_str())
        }
        Event::TriageCompleted { incident, .. } => incident.as_deref(),
        Event::ApprovalProposed { request } => request.incident.as_deref(),
        Event::PlanRecorded { .. }
        | Event::ApprovalGranted { .. }
        | Event::ApprovalRefused { .. }
        | Event::ApprovalDenied { .. }
        | Event::ExecutionStarted { .. }
        | Event::ExecutionStep { .. }
        | Event::ExecutionFinished { .. }
        | Event::RequestExpired { .. }
        | Event::RequestInvalidated { .. }
        | Event::ReviewerRotated { .. }
        | Event::ApprovalCardPosted { .. } => None,
    }
}

fn event_actor(event: &Event) -> Option<&Actor> {
    match event {
        Event::ApprovalProposed { request } => Some(&request.requester.actor),
        Event::ApprovalGranted { actor, .. }
        | Event::ApprovalRefused { actor, .. }
        | Event::ApprovalDenied { actor, .. } => Some(actor),
        Event::PlanRecorded { .. }
        | Event::ExecutionStarted { .. }
        | Event::ExecutionStep { .. }
        | Event::ExecutionFinished { .. }
        | Event::RequestExpired { .. }
        | Event::RequestInvalidated { .. }
        | Event::IncidentOpened { .. }
        | Event::IncidentUpdated { .. }
        | Event::TriageCompleted { .. }
        | Event::ReviewerRotated { .. }
        | Event::ApprovalCardPosted { .. } => None,
    }
}

fn actor_matches(e: &JournalEntry, want: &str) -> bool {
    if e.actor.as_deref() == Some(want) {
        return true;
    }
    event_actor(&e.event).is_some_and(|a| {
        a.user_id == want || a.platform_key() == want || a.display_name.as_deref() == Some(want)
    })
}

fn describe(event: &Event, action: Option<&str>) -> String {
    let of = |id: &RequestId| match action {
        Some(a) => format!("{a} request {id}"),
        None => format!("request {id}"),
    };
    match event {
        Event::IncidentOpened { incident, .. } => format!("incident {incident} opened"),
        Event::IncidentUpdated { incident, .. } => format!("incident {incident} updated"),
        Event::TriageCompleted {
            cluster,
            code,
            summary,
            ..
        } => format!("triage{}: {code}: {summary}", in_cluster(cluster)),
        Event::PlanRecorded { id, .. } => format!("{} plan recorded", of(id)),
        Event::ReviewerRotated {
            cluster,
            service_account,
            expires_at,
        } => format!(
            "reviewer token of {service_account}{} rotated{}",
            in_cluster(cluster),
            expires_at
                .map(|t| format!(", expires {}", t.format("%Y-%m-%d %H:%MZ")))
                .unwrap_or_default()
        ),
        Event::ApprovalProposed { request } => format!(
            "{}{} proposed by {} (needs {}, expires {}): {}",
            of(&request.id),
            in_cluster(&request.cluster),
            request.requester.person,
            request.required,
            request.expires_at.format("%H:%M:%SZ"),
            request.summary.lines().next().unwrap_or_default()
        ),
        Event::ApprovalGranted { id, person, actor } => {
            format!("{} approved by {person} via {}", of(id), actor.via)
        }
        Event::ApprovalRefused { id, actor, reason } => {
            format!(
                "{} click by {} refused: {reason}",
                of(id),
                actor.platform_key()
            )
        }
        Event::ApprovalDenied { id, person, actor } => {
            format!("{} denied by {person} via {}", of(id), actor.via)
        }
        Event::ExecutionStarted { id } => format!("{} started", of(id)),
        Event::ExecutionStep {
            id,
            step,
            ok,
            detail,
        } => format!(
            "{} step {step}: {} {detail}",
            of(id),
            if *ok { "ok" } else { "FAILED" }
        ),
        Event::ExecutionFinished { id, ok, detail } => format!(
            "{} {}: {detail}",
            of(id),
            if *ok { "succeeded" } else { "failed" }
        ),
        Event::RequestExpired { id } => format!("{} expired", of(id)),
        Event::RequestInvalidated { id, reason } => format!("{} invalidated: {reason}", of(id)),
        Event::ApprovalCardPosted {
            id,
            platform,
            channel,
            ..
        } => format!("{} card posted on {platform} in {channel}", of(id)),
    }
}

/// ` in cluster NAME`, said only outside the one `default` cluster.
fn in_cluster(cluster: &str) -> String {
    if cluster == crate::config::DEFAULT_CLUSTER {
        String::new()
    } else {
        format!(" in cluster {cluster}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approval::{ApprovalRequest, ApprovalState, PersonKey, Requester};
    use chrono::{TimeZone, Utc};

    fn person(s: &str) -> PersonKey {
        serde_json::from_value(serde_json::Value::String(s.into())).unwrap()
    }

    fn entry(seq: u64, incident: Option<&str>, actor: Option<&str>, event: Event) -> JournalEntry {
        JournalEntry {
            seq,
            at: Utc.with_ymd_and_hms(2030, 1, 1, 9, 0, seq as u32).unwrap(),
            incident: incident.map(Into::into),
            actor: actor.map(Into::into),
            event,
        }
    }

    fn proposed(id: &RequestId, action: Action, incident: &str) -> Event {
        let at = Utc.with_ymd_and_hms(2030, 1, 1, 9, 0, 0).unwrap();
        Event::ApprovalProposed {
            request: Box::new(ApprovalRequest {
                id: id.clone(),
                action,
                cluster: "default".into(),
                fingerprint: "fp".into(),
                incident: Some(incident.into()),
                summary: "rewrite the auth config".into(),
                requester: Requester {
                    person: person("alice"),
                    actor: Actor::slack("UALICE"),
                },
                created_at: at,
                expires_at: at + chrono::TimeDelta::minutes(15),
                required: 2,
                approvals: vec![],
                denial: None,
                state: ApprovalState::Proposed,
                outcome: None,
            }),
        }
    }

    fn journal() -> (Vec<JournalEntry>, RequestId, RequestId) {
        let reconf = RequestId::generate();
        let restart = RequestId::generate();
        let entries = vec![
            entry(
                1,
                Some("INC-1"),
                None,
                Event::TriageCompleted {
                    incident: Some("INC-1".into()),
                    cluster: "prod-eu".into(),
                    code: "reviewer_jwt_expired".into(),
                    summary: "reviewer token expired".into(),
                },
            ),
            entry(
                2,
                Some("INC-1"),
                Some("alice"),
                proposed(&reconf, Action::ReconfigureAuth, "INC-1"),
            ),
            entry(
                3,
                Some("INC-1"),
                Some("bob"),
                Event::ApprovalGranted {
                    id: reconf.clone(),
                    person: person("bob"),
                    actor: Actor::discord("222"),
                },
            ),
            entry(
                4,
                Some("INC-2"),
                Some("alice"),
                proposed(&restart, Action::RestartDeployments, "INC-2"),
            ),
            entry(
                5,
                Some("INC-1"),
                None,
                Event::ExecutionStarted { id: reconf.clone() },
            ),
        ];
        (entries, reconf, restart)
    }

    #[test]
    fn filtering_by_action_follows_every_event_of_the_request() {
        let (entries, _, _) = journal();
        let got: Vec<u64> = filter(
            &entries,
            &AuditFilter {
                action: Some("reconfigure-auth".into()),
                ..Default::default()
            },
        )
        .iter()
        .map(|e| e.seq)
        .collect();
        assert_eq!(got, vec![2, 3, 5]);
    }

    #[test]
    fn filtering_by_incident_and_actor_combines() {
        let (entries, _, _) = journal();
        let f = AuditFilter {
            incident: Some("INC-1".into()),
            actor: Some("alice".into()),
            action: None,
        };
        let got: Vec<u64> = filter(&entries, &f).iter().map(|e| e.seq).collect();
        assert_eq!(got, vec![2]);
        let by_platform_id = AuditFilter {
            actor: Some("discord:222".into()),
            ..Default::default()
        };
        let got: Vec<u64> = filter(&entries, &by_platform_id)
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(got, vec![3]);
    }

    #[test]
    fn an_empty_filter_keeps_everything() {
        let (entries, _, _) = journal();
        assert_eq!(
            filter(&entries, &AuditFilter::default()).len(),
            entries.len()
        );
    }

    #[test]
    fn each_entry_renders_as_one_readable_line() {
        let (entries, reconf, _) = journal();
        let all: Vec<&JournalEntry> = entries.iter().collect();
        let text = render_text(&all, &HashMap::new());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), entries.len());
        assert!(lines[0].starts_with("2030-01-01 09:00:01Z"), "{}", lines[0]);
        assert!(
            lines[0].contains("triage in cluster prod-eu: reviewer_jwt_expired"),
            "{}",
            lines[0]
        );
        assert!(lines[2].contains("INC-1"));
        assert!(lines[2].contains("bob"));
        assert!(
            lines[2].contains(&format!(
                "reconfigure-auth request {reconf} approved by bob via discord"
            )),
            "{}",
            lines[2]
        );
    }
}
