//! The incident model: one incident per (receiver, groupKey), fed by full snapshots of the
//! group. Applying a snapshot is pure and idempotent: a repeated, retried or stale delivery
//! yields no change, so it never yields a message.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::labels::{Interner, Labels};
use super::payload::{Alert, AlertGroup, AlertStatus, Source};
use crate::chat::message::MessageRef;
use crate::config::Platform;

/// An incident's id: `INC-` + 8 hex of the hash of (receiver, groupKey). Stable across
/// restarts and deliveries.
pub fn incident_id(receiver: &str, group_key: &str) -> String {
    let digest = Sha256::digest(format!("{receiver}\n{group_key}").as_bytes());
    format!("INC-{}", hex::encode(&digest[..4]))
}

/// What the bot remembers of one alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertState {
    pub alert: Alert,
    pub first_seen: DateTime<Utc>,
}

/// One incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    pub id: String,
    pub source: Source,
    pub receiver: String,
    pub group_key: String,
    pub group_labels: Labels,
    pub common_labels: Labels,
    pub common_annotations: Labels,
    pub external_url: String,
    pub title: Option<String>,
    /// By fingerprint.
    pub alerts: BTreeMap<String, AlertState>,
    pub truncated_alerts: u64,
    pub opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set when every alert is resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Root messages per platform.
    pub roots: BTreeMap<Platform, MessageRef>,
    /// The verdict code of the triage posted in this incident's thread, if any.
    pub triage: Option<String>,
}

/// What a snapshot changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    pub opened: bool,
    /// Alerts that started firing (new, or firing again).
    pub fired: Vec<Alert>,
    pub resolved: Vec<Alert>,
    pub truncated_changed: bool,
    /// Every alert is now resolved.
    pub incident_resolved: bool,
    /// It fired again after being resolved.
    pub reopened: bool,
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        !self.opened
            && self.fired.is_empty()
            && self.resolved.is_empty()
            && !self.truncated_changed
            && !self.reopened
    }
}

impl Incident {
    /// The clusters this incident names by the label `label` (design §11.2): its common or
    /// group label, else the label of each firing alert; `None` (it concerns every cluster)
    /// when an alert lacks the label.
    pub fn clusters(&self, label: &str) -> Option<std::collections::BTreeSet<String>> {
        if let Some(c) = self
            .common_labels
            .get(label)
            .or_else(|| self.group_labels.get(label))
        {
            return Some([c.to_string()].into());
        }
        let mut out = std::collections::BTreeSet::new();
        for a in self
            .alerts
            .values()
            .filter(|a| a.alert.status == super::payload::AlertStatus::Firing)
        {
            out.insert(a.alert.labels.get(label)?.to_string());
        }
        (!out.is_empty()).then_some(out)
    }

    /// A new, empty incident for a group.
    pub fn open(group: &AlertGroup, now: DateTime<Utc>) -> Self {
        Self {
            id: incident_id(&group.receiver, &group.group_key),
            source: group.source,
            receiver: group.receiver.clone(),
            group_key: group.group_key.clone(),
            group_labels: group.group_labels.clone(),
            common_labels: group.common_labels.clone(),
            common_annotations: group.common_annotations.clone(),
            external_url: group.external_url.clone(),
            title: group.title.clone(),
            alerts: BTreeMap::new(),
            truncated_alerts: 0,
            opened_at: now,
            updated_at: now,
            resolved_at: None,
            roots: BTreeMap::new(),
            triage: None,
        }
    }

    pub fn firing(&self) -> impl Iterator<Item = &Alert> {
        self.alerts
            .values()
            .map(|s| &s.alert)
            .filter(|a| a.status == AlertStatus::Firing)
    }

    pub fn is_resolved(&self) -> bool {
        self.resolved_at.is_some()
    }

    /// Applies a snapshot. Each alert's own status counts; for one episode (same `startsAt`)
    /// resolution wins over a late firing copy, and a later `startsAt` is a new episode.
    pub fn apply(&mut self, group: &AlertGroup, now: DateTime<Utc>) -> Delta {
        let mut delta = Delta {
            opened: self.alerts.is_empty()
                && self.roots.is_empty()
                && self.updated_at == self.opened_at,
            ..Delta::default()
        };
        let was_resolved = self.is_resolved();
        for alert in &group.alerts {
            match self.alerts.get_mut(&alert.fingerprint) {
                None => {
                    if alert.status == AlertStatus::Firing {
                        delta.fired.push(alert.clone());
                    } else {
                        delta.resolved.push(alert.clone());
                    }
                    self.alerts.insert(
                        alert.fingerprint.clone(),
                        AlertState {
                            alert: alert.clone(),
                            first_seen: now,
                        },
                    );
                }
                Some(known) => {
                    let newer_episode = match (alert.starts_at, known.alert.starts_at) {
                        (Some(new), Some(old)) => new > old,
                        _ => false,
                    };
                    let same_episode = alert.starts_at == known.alert.starts_at;
                    match (known.alert.status, alert.status) {
                        (AlertStatus::Firing, AlertStatus::Resolved)
                            if same_episode || newer_episode =>
                        {
                            delta.resolved.push(alert.clone());
                            known.alert = alert.clone();
                        }
                        (AlertStatus::Resolved, AlertStatus::Firing) if newer_episode => {
                            delta.fired.push(alert.clone());
                            known.alert = alert.clone();
                        }
                        (AlertStatus::Firing, AlertStatus::Firing) if newer_episode => {
                            known.alert = alert.clone();
                        }
                        // Same state, or a stale copy of an older episode: nothing new.
                        _ => {}
                    }
                }
            }
        }
        if group.truncated_alerts != self.truncated_alerts {
            delta.truncated_changed = true;
            self.truncated_alerts = group.truncated_alerts;
        }
        if group.status == AlertStatus::Firing || !group.common_labels.is_empty() {
            self.common_labels = group.common_labels.clone();
            self.common_annotations = group.common_annotations.clone();
        }
        let all_resolved = self.firing().next().is_none() && !self.alerts.is_empty();
        match (was_resolved, all_resolved) {
            (false, true) => {
                self.resolved_at = Some(now);
                delta.incident_resolved = true;
            }
            (true, false) => {
                self.resolved_at = None;
                delta.reopened = true;
            }
            _ => {}
        }
        if !delta.is_empty() || delta.incident_resolved {
            self.updated_at = now;
        }
        self.compact();
        delta
    }

    /// Reads an incident as stored, its repeated strings shared from the start.
    pub fn from_json(doc: &str) -> Result<Incident, serde_json::Error> {
        super::labels::sharing(|| serde_json::from_str(doc))
    }

    /// Shares every repeated string of the incident (names, values, URLs) between its alerts
    /// and its group-level labels: what keeps thousands of live incidents small.
    pub fn compact(&mut self) {
        let mut pool = Interner::default();
        self.group_labels = self.group_labels.interned(&mut pool);
        self.common_labels = self.common_labels.interned(&mut pool);
        self.common_annotations = self.common_annotations.interned(&mut pool);
        for s in self.alerts.values_mut() {
            s.alert.labels = s.alert.labels.interned(&mut pool);
            s.alert.annotations = s.alert.annotations.interned(&mut pool);
            s.alert.generator_url = pool.get(&s.alert.generator_url);
        }
    }

    /// True when `group` says nothing new: every alert is known with the same status and
    /// episode, and the truncation is unchanged (the common case of a repeated delivery, decided
    /// without copying the incident). When false, [`Incident::apply`] decides.
    pub fn unchanged_by(&self, group: &AlertGroup) -> bool {
        group.truncated_alerts == self.truncated_alerts
            && group.alerts.iter().all(|a| {
                self.alerts.get(&a.fingerprint).is_some_and(|known| {
                    known.alert.status == a.status && known.alert.starts_at == a.starts_at
                })
            })
    }

    /// As [`Incident::unchanged_by`], from the light view of a delivery. False whenever it
    /// cannot be sure (an alert without fingerprint, an unknown status).
    pub fn unchanged_by_view(&self, view: &super::payload::QuickView<'_>) -> bool {
        view.truncated_alerts.unwrap_or(0) == self.truncated_alerts
            && view.alerts.iter().all(|a| {
                let status = match a.status.as_ref() {
                    "firing" => AlertStatus::Firing,
                    "resolved" => AlertStatus::Resolved,
                    _ => return false,
                };
                !a.fingerprint.is_empty()
                    && self
                        .alerts
                        .get(a.fingerprint.as_ref())
                        .is_some_and(|known| {
                            known.alert.status == status
                                && known.alert.starts_at
                                    == super::payload::quick_time(a.starts_at.as_deref())
                        })
            })
    }

    /// The text a trigger rule looks at: alert names, labels' values and annotations.
    pub fn searchable_text(&self) -> String {
        let mut out = String::new();
        for s in self.alerts.values() {
            out.push_str(s.alert.name());
            out.push('\n');
            for v in s.alert.annotations.values() {
                out.push_str(v);
                out.push('\n');
            }
        }
        for v in self.common_annotations.values() {
            out.push_str(v);
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::payload::parse;

    fn fixture(name: &str) -> AlertGroup {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/alertmanager/");
        parse(
            Source::Alertmanager,
            &std::fs::read(format!("{dir}{name}")).unwrap(),
        )
        .unwrap()
    }

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn with_cluster_labels(values: &[Option<&str>]) -> Incident {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/alertmanager/");
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(format!("{dir}firing.raw.json")).unwrap())
                .unwrap();
        for (a, c) in v["alerts"].as_array_mut().unwrap().iter_mut().zip(values) {
            if let Some(c) = c {
                a["labels"]["cluster"] = serde_json::json!(c);
            }
        }
        let g = parse(Source::Alertmanager, v.to_string().as_bytes()).unwrap();
        let mut i = Incident::open(&g, t(0));
        i.apply(&g, t(0));
        i
    }

    #[test]
    fn an_incident_names_the_clusters_of_its_alerts_or_none_when_one_lacks_the_label() {
        let every = [Some("b"), Some("a"), Some("b"), Some("a"), Some("b")];
        let names = with_cluster_labels(&every).clusters("cluster");
        assert_eq!(names, Some(["a".to_string(), "b".to_string()].into()));
        let one_without = [Some("b"), None, Some("b"), Some("b"), Some("b")];
        assert_eq!(with_cluster_labels(&one_without).clusters("cluster"), None);
        assert_eq!(with_cluster_labels(&every).clusters("region"), None);
        let mut common = with_cluster_labels(&one_without);
        common.common_labels = [("cluster", "c")].into_iter().collect();
        assert_eq!(
            common.clusters("cluster"),
            Some(["c".to_string()].into()),
            "a common label names the cluster of the whole group"
        );
    }

    #[test]
    fn the_same_snapshot_twice_changes_nothing_the_second_time() {
        let g = fixture("firing.raw.json");
        let mut i = Incident::open(&g, t(0));
        assert!(!i.unchanged_by(&g));
        let d = i.apply(&g, t(0));
        assert!(i.unchanged_by(&g));
        assert!(!i.unchanged_by(&fixture("resolved.raw.json")));
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/alertmanager/");
        let firing = std::fs::read(format!("{dir}firing.raw.json")).unwrap();
        let resolved = std::fs::read(format!("{dir}resolved.raw.json")).unwrap();
        let view = |b: &[u8]| {
            serde_json::from_slice::<crate::alerts::payload::QuickView>(b)
                .unwrap()
                .alerts
                .len()
        };
        assert_eq!(view(&firing), 5);
        let fv: crate::alerts::payload::QuickView = serde_json::from_slice(&firing).unwrap();
        assert!(i.unchanged_by_view(&fv));
        let rv: crate::alerts::payload::QuickView = serde_json::from_slice(&resolved).unwrap();
        assert!(!i.unchanged_by_view(&rv));
        assert!(d.opened);
        assert_eq!(d.fired.len(), 5);
        let again = i.apply(&g, t(10));
        assert!(again.is_empty(), "{again:?}");
        assert_eq!(i.updated_at, t(0));
    }

    #[test]
    fn resolution_is_recorded_and_a_late_firing_copy_does_not_undo_it() {
        let firing = fixture("firing.raw.json");
        let resolved = fixture("resolved.raw.json");
        let mut i = Incident::open(&firing, t(0));
        i.apply(&firing, t(0));
        let d = i.apply(&resolved, t(60));
        assert_eq!(d.resolved.len(), 5);
        assert!(d.incident_resolved);
        assert!(i.is_resolved());
        // Out of order: the firing snapshot arrives again after the resolution.
        let late = i.apply(&firing, t(61));
        assert!(late.is_empty(), "{late:?}");
        assert!(i.is_resolved());
    }

    #[test]
    fn a_partial_resolve_resolves_only_that_alert() {
        let g = fixture("partial-resolve.json");
        let mut i = Incident::open(&g, t(0));
        let d = i.apply(&g, t(0));
        assert_eq!((d.fired.len(), d.resolved.len()), (2, 1));
        assert!(!i.is_resolved());
        assert_eq!(i.firing().count(), 2);
    }

    #[test]
    fn truncation_is_shown_and_ids_are_stable() {
        let g = fixture("capped-max_alerts5-burst-group.json");
        let mut i = Incident::open(&g, t(0));
        assert!(i.apply(&g, t(0)).truncated_changed);
        assert_eq!(i.truncated_alerts, 5);
        assert_eq!(i.id, incident_id(&g.receiver, &g.group_key));
        assert_ne!(incident_id("a", &g.group_key), i.id);
    }

    #[test]
    fn a_new_episode_fires_again() {
        let firing = fixture("firing.raw.json");
        let resolved = fixture("resolved.raw.json");
        let mut i = Incident::open(&firing, t(0));
        i.apply(&firing, t(0));
        i.apply(&resolved, t(60));
        let mut refire = firing.clone();
        for a in &mut refire.alerts {
            a.starts_at = a.starts_at.map(|s| s + chrono::Duration::hours(1));
        }
        let d = i.apply(&refire, t(3600));
        assert_eq!(d.fired.len(), 5);
        assert!(d.reopened);
        assert!(!i.is_resolved());
    }
}
