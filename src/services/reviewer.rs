//! The reviewer watch, one round: triage, judge when the reviewer token expires, and when it
//! needs attention make sure a rotate plan waits for approval (proposed by the bot itself).
//! Each cluster's reviewer is judged on its own (`[[clusters]]`).

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Services;
use crate::approval::{Actor, ApprovalRequest};
use crate::diagnosis::{RemediationKind, Report};
use crate::remediation::watch::{ReviewerHealth, assess};

/// The reviewer's health as `report` shows it, with the newest expiry the bot knows, judged
/// against the configured warning window.
pub fn health(services: &Services, report: &Report, now: DateTime<Utc>) -> ReviewerHealth {
    let warn_before = services.warn_before_in(&report.evidence.target.cluster);
    health_within(services, report, now, warn_before)
}

fn health_within(
    services: &Services,
    report: &Report,
    now: DateTime<Utc>,
    warn_before: Duration,
) -> ReviewerHealth {
    let secret_expiry = report
        .evidence
        .reviewer
        .value()
        .and_then(|e| e.claims.as_ref())
        .and_then(|c| c.expires_at);
    assess(
        secret_expiry,
        services
            .fixes
            .rotated_reviewer_expiry_in(&report.evidence.target.cluster),
        now,
        warn_before,
    )
}

/// One round of the watch over the first cluster (the only one without `[[clusters]]`).
pub async fn check_once(
    services: &Services,
    warn_before: Duration,
    now: DateTime<Utc>,
) -> (ReviewerHealth, Option<ApprovalRequest>) {
    let first = services.triage.first().to_string();
    check_in(services, &first, warn_before, now).await
}

/// One round of the watch over `cluster`, warning `warn_before` ahead (the configured window
/// in `serve`). Returns the judgement and the open rotate request, if any.
pub async fn check_in(
    services: &Services,
    cluster: &str,
    warn_before: Duration,
    now: DateTime<Utc>,
) -> (ReviewerHealth, Option<ApprovalRequest>) {
    let report = services.triage.look_in(cluster, "reviewer-watch").await;
    let health = health_within(services, &report, now, warn_before);
    if !health.needs_attention() {
        return (health, None);
    }
    let bot = Actor::bot("reviewer watch");
    match services
        .fixes
        .propose(&report, RemediationKind::RotateReviewer, bot, None, now)
        .await
    {
        Ok((request, _)) => (health, Some(request)),
        Err(e) => {
            tracing::warn!(%cluster, error = %e, "reviewer watch: no rotate plan could be prepared");
            (health, None)
        }
    }
}
