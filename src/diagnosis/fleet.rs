//! Several clusters triaged at once (design §11.2): the worst verdict on top (a fault before
//! `healthy`, ties in config order), the exit code 2 when any cluster has a fault, and the
//! fleet's status at a glance (health and reviewer token expiry, soonest first).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::report::Report;
use super::verdict::VerdictCode;
use super::words::{ago, utc};

/// One cluster's report.
#[derive(Debug, Clone)]
pub struct ClusterReport {
    pub cluster: String,
    pub report: Report,
}

/// One line of the fleet status.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FleetLine {
    pub cluster: String,
    pub verdict: String,
    pub healthy: bool,
    /// The reviewer token's `exp`, when it was read.
    pub reviewer_expires_at: Option<DateTime<Utc>>,
}

impl FleetLine {
    /// The reviewer token's expiry in words: "reviewer expires 2026-12-03 09:00 UTC (in 2 days)".
    pub fn reviewer_expiry(&self, now: DateTime<Utc>) -> String {
        match self.reviewer_expires_at {
            // Logins work, so Vault reviews with another token (a rotated one, or its own).
            Some(t) if t <= now && self.healthy => format!(
                "the reviewer Secret's token expired {} ({}), but Vault uses another",
                utc(t),
                ago(now, t)
            ),
            Some(t) if t <= now => format!("reviewer expired {} ({})", utc(t), ago(now, t)),
            Some(t) => format!("reviewer expires {} ({})", utc(t), ago(now, t)),
            None => "reviewer expiry not read".to_string(),
        }
    }
}

/// Every cluster's report, in config order.
#[derive(Debug, Clone)]
pub struct FleetReport {
    pub clusters: Vec<ClusterReport>,
}

impl FleetReport {
    /// Worst first: clusters with a fault before healthy ones, each group in config order.
    pub fn ordered(&self) -> Vec<&ClusterReport> {
        let mut out: Vec<&ClusterReport> = self.clusters.iter().collect();
        out.sort_by_key(|c| c.report.verdict.code == VerdictCode::Healthy);
        out
    }

    /// The worst cluster's report (the first one's when all are healthy).
    pub fn worst(&self) -> Option<&ClusterReport> {
        self.ordered().into_iter().next()
    }

    /// The longest triage of the fleet (they run concurrently: the fleet's time).
    pub fn slowest_ms(&self) -> u64 {
        self.clusters
            .iter()
            .map(|c| c.report.duration_ms)
            .max()
            .unwrap_or(0)
    }

    /// 2 when any cluster has a fault, else 0.
    pub fn exit_code(&self) -> i32 {
        self.clusters
            .iter()
            .map(|c| c.report.verdict.exit_code())
            .max()
            .unwrap_or(0)
    }

    /// Health and reviewer expiry of every cluster, the soonest expiry first (clusters whose
    /// expiry is unknown last, in config order).
    pub fn status(&self) -> Vec<FleetLine> {
        let mut lines: Vec<FleetLine> = self
            .clusters
            .iter()
            .map(|c| FleetLine {
                cluster: c.cluster.clone(),
                verdict: c.report.verdict.code.as_str().to_string(),
                healthy: c.report.verdict.code == VerdictCode::Healthy,
                reviewer_expires_at: c
                    .report
                    .evidence
                    .reviewer
                    .value()
                    .and_then(|r| r.claims.as_ref())
                    .and_then(|claims| claims.expires_at),
            })
            .collect();
        lines.sort_by_key(|l| (l.reviewer_expires_at.is_none(), l.reviewer_expires_at));
        lines
    }

    /// The JSON of `probe --format json` for several clusters: the worst cluster's report at the
    /// top level (with its `cluster`), `clusters` (each report with its `cluster`, worst first)
    /// and `fleet` (the status lines).
    pub fn json(&self) -> serde_json::Result<Value> {
        let with_name = |c: &ClusterReport| -> serde_json::Result<Value> {
            let mut v = serde_json::to_value(&c.report)?;
            if let Value::Object(map) = &mut v {
                map.insert("cluster".into(), Value::String(c.cluster.clone()));
            }
            Ok(v)
        };
        let mut top = match self.worst() {
            Some(w) => with_name(w)?,
            None => Value::Object(Default::default()),
        };
        let clusters = self
            .ordered()
            .into_iter()
            .map(with_name)
            .collect::<serde_json::Result<Vec<_>>>()?;
        if let Value::Object(map) = &mut top {
            map.insert("clusters".into(), Value::Array(clusters));
            map.insert("fleet".into(), serde_json::to_value(self.status())?);
        }
        Ok(top)
    }
}
