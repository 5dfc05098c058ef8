//! Incidents as chat messages: the root message (edited as the group changes) and the
//! coalesced thread notes. Pure.

use super::incident::{Delta, Incident};
use super::payload::Alert;
use crate::chat::message::{Message, Section, Tone};

/// Most alerts named in one message.
pub const MAX_NAMED: usize = 10;

fn names<'a>(alerts: impl Iterator<Item = &'a Alert>) -> String {
    let all: Vec<String> = alerts.map(Alert::subject).collect();
    let mut shown: Vec<String> = all.iter().take(MAX_NAMED).cloned().collect();
    if all.len() > MAX_NAMED {
        shown.push(format!("and {} more", all.len() - MAX_NAMED));
    }
    shown.join(", ")
}

fn group_name(i: &Incident) -> String {
    let alertname = i
        .group_labels
        .get("alertname")
        .or_else(|| i.common_labels.get("alertname"))
        .map(str::to_string)
        .or_else(|| i.title.clone())
        .unwrap_or_else(|| "alert group".into());
    let scope: Vec<String> = i
        .group_labels
        .iter()
        .filter(|(k, _)| *k != "alertname")
        .map(|(_, v)| v.to_string())
        .collect();
    if scope.is_empty() {
        alertname
    } else {
        format!("{alertname} · {}", scope.join(", "))
    }
}

/// The incident's root message.
pub fn root(i: &Incident) -> Message {
    let firing = i.firing().count();
    let resolved = i.alerts.len() - firing;
    let (emoji, tone, state) = if i.is_resolved() {
        ("✅", Tone::Good, "RESOLVED".to_string())
    } else {
        (
            "🔥",
            Tone::Danger,
            format!("FIRING:{}", firing as u64 + i.truncated_alerts),
        )
    };
    let title = format!("{emoji} [{state}] {}", group_name(i));
    let mut sections = Vec::new();
    if let Some(summary) = i.common_annotations.get("summary") {
        sections.push(Section::Text {
            text: summary.to_string(),
        });
    }
    let mut fields = Vec::new();
    if firing > 0 {
        fields.push(("Firing".to_string(), names(i.firing())));
    }
    if resolved > 0 {
        fields.push((
            "Resolved".to_string(),
            names(
                i.alerts
                    .values()
                    .map(|s| &s.alert)
                    .filter(|a| a.status == super::payload::AlertStatus::Resolved),
            ),
        ));
    }
    if i.truncated_alerts > 0 {
        fields.push((
            "Not shown".to_string(),
            format!(
                "{} more alerts were cut by the receiver's max_alerts",
                i.truncated_alerts
            ),
        ));
    }
    fields.push(("Receiver".to_string(), i.receiver.clone()));
    sections.push(Section::Fields { fields });
    let mut footer = format!("{} · opened {}", i.id, i.opened_at.format("%H:%M:%S UTC"));
    if let Some(t) = i.resolved_at {
        footer.push_str(&format!(
            " · resolved {} after {}",
            t.format("%H:%M:%S UTC"),
            span(t - i.opened_at)
        ));
    }
    if let Some(code) = &i.triage {
        footer.push_str(&format!(" · triage: {code} (in the thread)"));
    }
    Message {
        text: title.clone(),
        title: Some(title),
        tone: Some(tone),
        sections,
        buttons: Vec::new(),
        footer: Some(footer),
    }
}

fn span(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    if s < 120 {
        format!("{s} s")
    } else if s < 7200 {
        format!("{} min", s / 60)
    } else {
        format!("{} h", s / 3600)
    }
}

/// Changes since the last note, as one thread reply; `None` when nothing is worth saying.
pub fn note(i: &Incident, d: &Delta) -> Option<Message> {
    let mut lines = Vec::new();
    if !d.fired.is_empty() {
        lines.push(format!(
            "🔥 {} firing: {}",
            d.fired.len(),
            names(d.fired.iter())
        ));
    }
    if !d.resolved.is_empty() {
        lines.push(format!(
            "✅ {} resolved: {}",
            d.resolved.len(),
            names(d.resolved.iter())
        ));
    }
    if d.truncated_changed && i.truncated_alerts > 0 {
        lines.push(format!(
            "… {} alerts not shown (max_alerts)",
            i.truncated_alerts
        ));
    }
    if d.reopened {
        lines.push("🔁 The incident fired again.".to_string());
    }
    if d.incident_resolved {
        lines.push(format!(
            "✅ Resolved: every alert of {} is resolved{}.",
            i.id,
            i.resolved_at
                .map(|t| format!(" after {}", span(t - i.opened_at)))
                .unwrap_or_default()
        ));
    }
    (!lines.is_empty()).then(|| Message {
        text: lines.join("\n"),
        ..Message::default()
    })
}

/// Merges two deltas (the worker coalesces everything that arrived since its last note).
pub fn merge(mut a: Delta, b: Delta) -> Delta {
    a.opened |= b.opened;
    a.fired.extend(b.fired);
    a.resolved.extend(b.resolved);
    a.truncated_changed |= b.truncated_changed;
    a.reopened |= b.reopened;
    a.incident_resolved = b.incident_resolved || (a.incident_resolved && !b.reopened);
    a
}
