//! Webhook payloads: Alertmanager's v4 and Grafana's (the same shape with extras), parsed into
//! one [`AlertGroup`]. Pure; never panics on input.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use super::labels::Labels;

/// Where a payload came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Alertmanager,
    Grafana,
}

/// An alert's own status (a `firing` payload can carry resolved alerts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

/// One alert of a group snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub fingerprint: String,
    pub status: AlertStatus,
    pub labels: Labels,
    pub annotations: Labels,
    pub starts_at: Option<DateTime<Utc>>,
    /// `None` while firing (Alertmanager sends the zero time then).
    pub ends_at: Option<DateTime<Utc>>,
    #[serde(deserialize_with = "super::labels::shared_str")]
    pub generator_url: Arc<str>,
}

impl Alert {
    pub fn name(&self) -> &str {
        self.labels.get("alertname").unwrap_or("alert")
    }

    /// `deployment`, `service`, `pod` or `job` label: what the alert is about.
    pub fn subject(&self) -> String {
        ["deployment", "service", "pod", "job", "instance"]
            .iter()
            .find_map(|k| self.labels.get(k).map(str::to_string))
            .unwrap_or_else(|| self.fingerprint.clone())
    }
}

/// A full snapshot of one alert group, as every webhook POST carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertGroup {
    pub source: Source,
    pub receiver: String,
    pub group_key: String,
    pub status: AlertStatus,
    pub alerts: Vec<Alert>,
    pub group_labels: Labels,
    pub common_labels: Labels,
    pub common_annotations: Labels,
    /// Alerts dropped by `max_alerts`: only their number is known.
    pub truncated_alerts: u64,
    pub external_url: String,
    /// Grafana's title, when present.
    pub title: Option<String>,
}

/// Why a body is not a valid payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("the body is not valid JSON: {0}")]
    Json(String),
    #[error("not a webhook payload: {0}")]
    Shape(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawGroup {
    #[serde(default)]
    receiver: String,
    status: String,
    alerts: Vec<RawAlert>,
    #[serde(default)]
    group_labels: BTreeMap<String, String>,
    #[serde(default)]
    common_labels: BTreeMap<String, String>,
    #[serde(default)]
    common_annotations: BTreeMap<String, String>,
    #[serde(default, rename = "externalURL")]
    external_url: String,
    #[serde(default)]
    group_key: Option<String>,
    #[serde(default)]
    truncated_alerts: Option<u64>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    title: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAlert {
    status: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    starts_at: Option<String>,
    #[serde(default)]
    ends_at: Option<String>,
    #[serde(default, rename = "generatorURL")]
    generator_url: String,
    #[serde(default)]
    fingerprint: String,
}

/// What a repeated delivery is recognised by, read without building the payload model:
/// the group's identity and, per alert, fingerprint, status and start.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuickView<'a> {
    #[serde(borrow, default)]
    pub receiver: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    pub group_key: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    pub truncated_alerts: Option<u64>,
    #[serde(borrow, default)]
    pub version: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    pub alerts: Vec<QuickAlert<'a>>,
}

/// One alert of a [`QuickView`].
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuickAlert<'a> {
    #[serde(borrow, default)]
    pub fingerprint: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub status: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    pub starts_at: Option<std::borrow::Cow<'a, str>>,
}

impl QuickView<'_> {
    /// True when [`parse`] would accept the version for `source`.
    pub fn version_fits(&self, source: Source) -> bool {
        matches!(
            (source, self.version.as_deref()),
            (Source::Alertmanager, Some("4") | None) | (Source::Grafana, Some("1") | None)
        )
    }

    /// The receiver as [`parse`] names it.
    pub fn receiver(&self) -> &str {
        if self.receiver.is_empty() {
            "default"
        } else {
            &self.receiver
        }
    }
}

/// The start time as [`parse`] reads it.
pub fn quick_time(s: Option<&str>) -> Option<DateTime<Utc>> {
    time(&s.map(str::to_string))
}

/// Most alerts looked at in one payload.
pub const MAX_ALERTS: usize = 5000;

fn status(s: &str) -> Result<AlertStatus, PayloadError> {
    match s {
        "firing" => Ok(AlertStatus::Firing),
        "resolved" => Ok(AlertStatus::Resolved),
        other => Err(PayloadError::Shape(format!(
            "unknown status {:?}",
            other.chars().take(20).collect::<String>()
        ))),
    }
}

/// RFC 3339, with the Go zero time (`0001-01-01T00:00:00Z`) as none.
fn time(s: &Option<String>) -> Option<DateTime<Utc>> {
    let s = s.as_deref()?;
    if s.starts_with("0001-01-01") {
        return None;
    }
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Parses a webhook body from `source`.
pub fn parse(source: Source, body: &[u8]) -> Result<AlertGroup, PayloadError> {
    let raw: RawGroup = serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => PayloadError::Shape(e.to_string()),
        _ => PayloadError::Json(e.to_string()),
    })?;
    match (source, raw.version.as_deref()) {
        (Source::Alertmanager, Some("4") | None) | (Source::Grafana, Some("1") | None) => {}
        (_, Some(v)) => {
            return Err(PayloadError::Shape(format!(
                "unsupported payload version {:?}",
                v.chars().take(10).collect::<String>()
            )));
        }
    }
    if raw.alerts.len() > MAX_ALERTS {
        return Err(PayloadError::Shape(format!(
            "more than {MAX_ALERTS} alerts"
        )));
    }
    let mut alerts = Vec::with_capacity(raw.alerts.len());
    for (i, a) in raw.alerts.into_iter().enumerate() {
        let fingerprint = if a.fingerprint.is_empty() {
            // Generic senders may omit it: derive one from the labels.
            use sha2::Digest as _;
            let labels = serde_json::to_string(&a.labels).unwrap_or_default();
            hex::encode(&sha2::Sha256::digest(labels.as_bytes())[..8])
        } else {
            a.fingerprint.chars().take(64).collect()
        };
        alerts.push(Alert {
            status: status(&a.status)
                .map_err(|e| PayloadError::Shape(format!("alert {i}: {e}")))?,
            fingerprint,
            labels: a.labels.into(),
            annotations: a.annotations.into(),
            starts_at: time(&a.starts_at),
            ends_at: time(&a.ends_at),
            generator_url: a.generator_url.into(),
        });
    }
    let receiver = if raw.receiver.is_empty() {
        "default".to_string()
    } else {
        raw.receiver
    };
    let group_key = raw
        .group_key
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| format!("{:?}", raw.group_labels));
    Ok(AlertGroup {
        source,
        receiver,
        group_key,
        status: status(&raw.status)?,
        alerts,
        group_labels: raw.group_labels.into(),
        common_labels: raw.common_labels.into(),
        common_annotations: raw.common_annotations.into(),
        truncated_alerts: raw.truncated_alerts.unwrap_or(0),
        external_url: raw.external_url,
        title: raw.title,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/");
        std::fs::read(format!("{dir}{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    #[test]
    fn firing_fixture() {
        let g = parse(
            Source::Alertmanager,
            &fixture("alertmanager/firing.raw.json"),
        )
        .unwrap();
        assert_eq!(g.receiver, "triage-bot");
        assert_eq!(
            g.group_key,
            "{}:{alertname=\"VaultPermissionDenied\", namespace=\"production\"}"
        );
        assert_eq!(g.status, AlertStatus::Firing);
        assert_eq!(g.alerts.len(), 5);
        assert!(
            g.alerts
                .iter()
                .all(|a| a.status == AlertStatus::Firing && a.ends_at.is_none())
        );
        let names: Vec<String> = g.alerts.iter().map(Alert::subject).collect();
        assert_eq!(
            names,
            [
                "billing-worker",
                "notification-service",
                "orders-api",
                "payments-api",
                "user-service"
            ]
        );
        assert_eq!(g.alerts[0].fingerprint, "e36e622bd44b2868");
        assert_eq!(g.truncated_alerts, 0);
    }

    #[test]
    fn resolved_fixture() {
        let g = parse(
            Source::Alertmanager,
            &fixture("alertmanager/resolved.raw.json"),
        )
        .unwrap();
        assert_eq!(g.status, AlertStatus::Resolved);
        assert!(
            g.alerts
                .iter()
                .all(|a| a.status == AlertStatus::Resolved && a.ends_at.is_some())
        );
    }

    #[test]
    fn partial_resolve_uses_each_alerts_own_status() {
        let g = parse(
            Source::Alertmanager,
            &fixture("alertmanager/partial-resolve.json"),
        )
        .unwrap();
        assert_eq!(g.status, AlertStatus::Firing);
        let statuses: Vec<AlertStatus> = g.alerts.iter().map(|a| a.status).collect();
        assert_eq!(
            statuses,
            [
                AlertStatus::Resolved,
                AlertStatus::Firing,
                AlertStatus::Firing
            ]
        );
    }

    #[test]
    fn truncated_and_large_groups() {
        let g = parse(
            Source::Alertmanager,
            &fixture("alertmanager/capped-max_alerts5-burst-group.json"),
        )
        .unwrap();
        assert_eq!((g.alerts.len(), g.truncated_alerts), (5, 5));
        assert_eq!(g.receiver, "storm-capped");
        let g = parse(
            Source::Alertmanager,
            &fixture("alertmanager/onegroup-500-alerts-firing.raw.json"),
        )
        .unwrap();
        assert_eq!(g.alerts.len(), 500);
        let mut fps: Vec<&str> = g.alerts.iter().map(|a| a.fingerprint.as_str()).collect();
        fps.sort();
        fps.dedup();
        assert_eq!(fps.len(), 500);
        let g = parse(
            Source::Alertmanager,
            &fixture("alertmanager/old-alert-single.json"),
        )
        .unwrap();
        assert_eq!(g.alerts.len(), 1);
    }

    #[test]
    fn grafana_fixture() {
        let g = parse(
            Source::Grafana,
            &fixture("other-sources/grafana-webhook-example.json"),
        )
        .unwrap();
        assert_eq!(g.source, Source::Grafana);
        assert_eq!(g.alerts.len(), 1);
        assert_eq!(g.alerts[0].subject(), "payments-api");
        assert!(g.title.is_some());
    }

    #[test]
    fn bad_bodies_are_errors_with_a_message() {
        assert!(matches!(
            parse(Source::Alertmanager, b"{not json"),
            Err(PayloadError::Json(_))
        ));
        assert!(matches!(
            parse(Source::Alertmanager, b"{}"),
            Err(PayloadError::Shape(_))
        ));
        assert!(matches!(
            parse(
                Source::Alertmanager,
                br#"{"status":"firing","alerts":[{"status":"weird"}]}"#
            ),
            Err(PayloadError::Shape(_))
        ));
        assert!(matches!(
            parse(
                Source::Alertmanager,
                br#"{"status":"firing","alerts":[],"version":"9"}"#
            ),
            Err(PayloadError::Shape(_))
        ));
        assert!(parse(Source::Alertmanager, b"").is_err());
        assert!(parse(Source::Alertmanager, b"null").is_err());
    }
}
