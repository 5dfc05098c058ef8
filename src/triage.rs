//! One triage: run the probes, diagnose, and package the result as a [`Report`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::diagnosis::{Verdict, diagnose};
use crate::probes::{Evidence, ProbeTarget, Probes, run};

/// The outcome of one triage, as `probe --format json` prints it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub verdict: Verdict,
    pub evidence: Evidence,
    pub triaged_at: DateTime<Utc>,
    pub duration_ms: u64,
    pub version: String,
}

/// Runs the probes and diagnoses what they saw.
pub async fn triage(probes: &Probes, target: &ProbeTarget) -> Report {
    // Boxed: the probe future is large, and callers nest it in their own.
    let evidence = Box::pin(run(probes, target)).await;
    let now = Utc::now();
    let report = Report {
        verdict: diagnose(&evidence, now),
        duration_ms: evidence.duration_ms,
        evidence,
        triaged_at: now,
        version: env!("CARGO_PKG_VERSION").to_string(),
    };
    crate::metrics::triage(&report);
    tracing::info!(
        verdict = report.verdict.code.as_str(),
        confidence = report.verdict.confidence.as_str(),
        duration_ms = report.duration_ms,
        "triage finished"
    );
    report
}
