//! One triage: run the probes, diagnose what they saw, and package the result as a
//! [`Report`].

use chrono::Utc;

use super::runner::{ProbeTarget, Probes, run};
use crate::diagnosis::{Report, diagnose};
use crate::evidence::{Evidence, Probe};
use crate::metrics::ProbeTiming;

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
        report.verdict.code.as_str(),
        report.duration_ms,
        &timings(&report.evidence),
    );
    tracing::info!(
        verdict = report.verdict.code.as_str(),
        confidence = report.verdict.confidence.as_str(),
        duration_ms = report.duration_ms,
        "triage finished"
    );
    report
}

/// Each probe's time and failure, for the metrics.
fn timings(e: &Evidence) -> [ProbeTiming; 12] {
    fn of<T>(probe: &'static str, p: &Probe<T>) -> ProbeTiming {
        ProbeTiming {
            probe,
            ms: p.ms(),
            failed: p.error().is_some(),
        }
    }
    [
        of("vault_health", &e.health),
        of("auth_mount", &e.auth_mount),
        of("auth_config", &e.auth_config),
        of("canary_role", &e.canary_role),
        of("canary_token", &e.canary_token),
        of("canary_review", &e.canary_review),
        of("canary_login", &e.login),
        of("vault_debug_log", &e.vault_log),
        of("secret_read", &e.secret_read),
        of("reviewer", &e.reviewer),
        of("kube_api", &e.kube_api),
        of("workloads", &e.workloads),
    ]
}
