//! One triage: run the probes, diagnose what they saw, and package the result as a
//! [`Report`].

use chrono::Utc;

use super::runner::{ProbeTarget, Probes, run};
use crate::diagnosis::{Report, diagnose};
use crate::evidence::{Evidence, Probe};
use crate::metrics::{PROBES, ProbeTiming};

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
    crate::metrics::triage(
        &report.evidence.target.cluster,
        report.verdict.code.as_str(),
        report.duration_ms,
        &timings(&report.evidence),
    );
    tracing::info!(
        cluster = %report.evidence.target.cluster,
        verdict = report.verdict.code.as_str(),
        confidence = report.verdict.confidence.as_str(),
        duration_ms = report.duration_ms,
        "triage finished"
    );
    report
}

/// Each probe's time and failure, for the metrics.
/// (Named by [`PROBES`], so every probe's series exists from the start.)
fn timings(e: &Evidence) -> [ProbeTiming; 12] {
    fn of<T>(probe: &'static str, p: &Probe<T>) -> ProbeTiming {
        ProbeTiming {
            probe,
            ms: p.ms(),
            failed: p.error().is_some(),
        }
    }
    [
        of(PROBES[0], &e.health),
        of(PROBES[1], &e.auth_mount),
        of(PROBES[2], &e.auth_config),
        of(PROBES[3], &e.canary_role),
        of(PROBES[4], &e.canary_token),
        of(PROBES[5], &e.canary_review),
        of(PROBES[6], &e.login),
        of(PROBES[7], &e.vault_log),
        of(PROBES[8], &e.secret_read),
        of(PROBES[9], &e.reviewer),
        of(PROBES[10], &e.kube_api),
        of(PROBES[11], &e.workloads),
    ]
}
