//! The triage as text for a terminal: the same content as the chat summary (design §10); a
//! fleet of clusters as one line each and the detail of the failing ones.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::diagnosis::{CheckStatus, FleetReport, Report, Severity, Verdict, VerdictCode};

/// The verdict's marker: green when healthy, red when logins fail, yellow otherwise.
pub fn marker(v: &Verdict) -> &'static str {
    match v.code.severity() {
        Severity::Fine => "🟢",
        Severity::Warning => "🟡",
        Severity::Failing => "🔴",
    }
}

/// Renders a report the way an on-call engineer reads it.
pub fn render(report: &Report) -> String {
    let v = &report.verdict;
    let mut out = String::new();
    let _ = writeln!(out, "{} {}", marker(v), v.headline);
    let mut meta = vec![
        format!(
            "{} · confidence {}",
            v.layer.as_str(),
            v.confidence.as_str()
        ),
        format!("verdict {}", v.code),
    ];
    if !v.affected_workloads.is_empty() {
        meta.push(format!(
            "{} affected",
            crate::diagnosis::workload_count(&v.affected_workloads)
        ));
    }
    let cluster = &report.evidence.target.cluster;
    if cluster != crate::config::DEFAULT_CLUSTER {
        meta.push(format!("cluster {cluster}"));
    }
    meta.push(format!("triaged in {}", took(report.duration_ms)));
    let _ = writeln!(out, "{}", meta.join(" · "));
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", wrap(&v.summary, 96));
    let _ = writeln!(out);
    for item in &v.evidence {
        let _ = writeln!(
            out,
            "{} {}: {}",
            item.status.emoji(),
            item.check,
            item.detail
        );
    }
    if !v.affected_workloads.is_empty() {
        let names: Vec<String> = v
            .affected_workloads
            .iter()
            .map(|w| match w.kind {
                crate::evidence::WorkloadKind::Deployment => format!("{}/{}", w.namespace, w.name),
                kind => format!("{}/{} ({kind})", w.namespace, w.name),
            })
            .collect();
        let _ = writeln!(out, "Affected: {}", names.join(", "));
        let _ = writeln!(out, "Roles: {}", v.affected_roles.join(", "));
    }
    let not_synced: Vec<String> = v
        .secret_syncs
        .iter()
        .filter(|s| s.ready == Some(false))
        .map(|s| match s.namespace.as_str() {
            "" => format!("{} {}", s.kind, s.name),
            ns => format!("{} {ns}/{}", s.kind, s.name),
        })
        .collect();
    if !not_synced.is_empty() {
        let _ = writeln!(out, "Not synced: {}", not_synced.join(", "));
    }
    if !v.remediations.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "What to do:");
        for r in &v.remediations {
            let how = if r.action.is_some() {
                "approval-gated"
            } else {
                "manual"
            };
            let _ = writeln!(out, "  • {} ({how}): {}", r.title, r.detail);
        }
    }
    if !v.reminders.is_empty() {
        let _ = writeln!(out);
        for r in &v.reminders {
            let _ = writeln!(out, "ℹ️  {r}");
        }
    }
    if !v.unchecked.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "Could not check:");
        for u in &v.unchecked {
            let _ = writeln!(out, "  {} {u}", CheckStatus::Unknown.emoji());
        }
    }
    out
}

/// `46 ms` or `1.3 s`.
pub fn took(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

/// Wraps a paragraph at `width` columns.
pub fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = 0;
    for word in text.split_whitespace() {
        let n = word.chars().count();
        if line > 0 && line + 1 + n > width {
            out.push('\n');
            line = 0;
        } else if line > 0 {
            out.push(' ');
            line += 1;
        }
        out.push_str(word);
        line += n;
    }
    out
}

/// Several clusters: one line each (health and reviewer expiry, soonest first), then the
/// whole report of every cluster with a fault, worst first.
pub fn render_fleet(fleet: &FleetReport, now: DateTime<Utc>) -> String {
    let mut out = String::new();
    let failing = fleet
        .clusters
        .iter()
        .filter(|c| c.report.verdict.code != VerdictCode::Healthy)
        .count();
    let _ = writeln!(
        out,
        "Fleet: {} clusters · {failing} with a fault · triaged in {}",
        fleet.clusters.len(),
        took(fleet.slowest_ms())
    );
    let width = fleet
        .clusters
        .iter()
        .map(|c| c.cluster.chars().count())
        .max()
        .unwrap_or(0);
    for line in fleet.status() {
        let Some(c) = fleet.clusters.iter().find(|c| c.cluster == line.cluster) else {
            continue;
        };
        let v = &c.report.verdict;
        let expiry = line.reviewer_expiry(now);
        let _ = writeln!(
            out,
            "  {} {:<width$}  {} ({}) · {expiry}",
            marker(v),
            line.cluster,
            v.code,
            v.confidence.as_str(),
        );
    }
    for c in fleet.ordered() {
        if c.report.verdict.code == VerdictCode::Healthy {
            continue;
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "── cluster {} ──", c.cluster);
        out.push_str(&render(&c.report));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_keeps_lines_short_and_words_whole() {
        let w = wrap("aaa bbb ccc ddd", 7);
        assert_eq!(w, "aaa bbb\nccc ddd");
    }
}
