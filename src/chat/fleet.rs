//! What chat says about several clusters at once (design §11.2). Pure.
//!
//! One summary covers the fleet: one line per cluster (worst first), then the whole summary of
//! each cluster with a fault (up to [`MAX_DETAILED`]; the others are named with the command
//! that shows them), its buttons labelled with the cluster they act on. Each button carries the
//! triage id of its cluster's report, so a click plans and runs in that cluster only.

use chrono::{DateTime, Utc};

use super::message::{Message, Section, Tone};
use super::render;
use crate::approval::Policy;
use crate::diagnosis::{ClusterReport, FleetReport, Report, Severity, VerdictCode};
use crate::remediation::watch::ReviewerHealth;

/// Most failing clusters whose whole summary (and buttons) one message carries.
pub const MAX_DETAILED: usize = 3;

/// One cluster's triage as chat shows it: its report and the triage id its buttons carry.
#[derive(Debug, Clone)]
pub struct ClusterTriage<'a> {
    pub report: &'a Report,
    pub triage: &'a str,
}

/// The views of kept triages, in their order.
pub fn views(triaged: &[crate::services::Triaged]) -> Vec<ClusterTriage<'_>> {
    triaged
        .iter()
        .map(|t| ClusterTriage {
            report: &t.report,
            triage: &t.id,
        })
        .collect()
}

/// The first fault's verdict code in config order, else `healthy` (`None` for no triage).
pub fn worst_code(triages: &[ClusterTriage<'_>]) -> Option<VerdictCode> {
    let codes = triages.iter().map(|t| t.report.verdict.code);
    codes
        .clone()
        .find(|c| *c != VerdictCode::Healthy)
        .or_else(|| codes.clone().next())
}

fn fleet_of(triages: &[ClusterTriage<'_>]) -> FleetReport {
    FleetReport {
        clusters: triages
            .iter()
            .map(|t| ClusterReport {
                cluster: t.report.evidence.target.cluster.clone(),
                report: t.report.clone(),
            })
            .collect(),
    }
}

fn tone_of(fleet: &FleetReport) -> Tone {
    let worst = fleet
        .clusters
        .iter()
        .map(|c| c.report.verdict.code.severity())
        .max_by_key(|s| match s {
            Severity::Fine => 0,
            Severity::Warning => 1,
            Severity::Failing => 2,
        });
    match worst {
        Some(Severity::Failing) => Tone::Danger,
        Some(Severity::Warning) => Tone::Warning,
        _ => Tone::Good,
    }
}

fn failing(fleet: &FleetReport) -> Vec<&ClusterReport> {
    fleet
        .ordered()
        .into_iter()
        .filter(|c| c.report.verdict.code != VerdictCode::Healthy)
        .collect()
}

/// "3 clusters · 1 with a fault: prod-b reviewer_jwt_expired".
fn headline(fleet: &FleetReport) -> String {
    let bad = failing(fleet);
    let marker = match tone_of(fleet) {
        Tone::Danger => "🔴",
        Tone::Warning => "🟡",
        _ => "🟢",
    };
    let mut out = format!(
        "{marker} {} clusters · {} with a fault",
        fleet.clusters.len(),
        bad.len()
    );
    if !bad.is_empty() {
        let names: Vec<String> = bad
            .iter()
            .map(|c| format!("{} {}", c.cluster, c.report.verdict.code))
            .collect();
        out.push_str(&format!(": {}", names.join(", ")));
    }
    out
}

/// One line per cluster, worst first: verdict, confidence and the reviewer token's expiry.
fn lines(fleet: &FleetReport, now: DateTime<Utc>, order: &[&ClusterReport]) -> Section {
    let status = fleet.status();
    Section::Checks {
        items: order
            .iter()
            .map(|c| {
                let v = &c.report.verdict;
                let expiry = status
                    .iter()
                    .find(|l| l.cluster == c.cluster)
                    .map(|l| l.reviewer_expiry(now))
                    .unwrap_or_default();
                (
                    crate::terminal::marker(v).to_string(),
                    c.cluster.clone(),
                    format!("{} ({}) · {expiry}", v.code, v.confidence.as_str()),
                )
            })
            .collect(),
    }
}

/// The summary of a fleet's triage: the lines, then the detail and buttons of the failing
/// clusters.
pub fn summary(triages: &[ClusterTriage<'_>], policy: &Policy, now: DateTime<Utc>) -> Message {
    let fleet = fleet_of(triages);
    let title = headline(&fleet);
    let ordered = fleet.ordered();
    let mut sections = vec![lines(&fleet, now, &ordered)];
    let mut buttons = Vec::new();
    let mut footer = None;
    let bad = failing(&fleet);
    for c in bad.iter().take(MAX_DETAILED) {
        let Some(t) = triages
            .iter()
            .find(|t| t.report.evidence.target.cluster == c.cluster)
        else {
            continue;
        };
        let one = render::summary(t.report, t.triage, policy);
        sections.push(Section::Text {
            text: format!(
                "*Cluster {}*: {}",
                c.cluster,
                one.title.as_deref().unwrap_or(&one.text)
            ),
        });
        sections.extend(one.sections);
        buttons.extend(one.buttons.into_iter().map(|mut b| {
            b.label = format!("{} · {}", b.label, c.cluster);
            b
        }));
        footer = footer.or(one.footer);
    }
    if bad.len() > MAX_DETAILED {
        let rest: Vec<String> = bad[MAX_DETAILED..]
            .iter()
            .map(|c| format!("`/vault-triage cluster {}`", c.cluster))
            .collect();
        sections.push(Section::Text {
            text: format!("More clusters with a fault: {}", rest.join(", ")),
        });
    }
    let timing = format!("triaged in {}", crate::terminal::took(fleet.slowest_ms()));
    Message {
        text: title.clone(),
        title: Some(title),
        tone: Some(tone_of(&fleet)),
        sections,
        buttons,
        footer: Some(match footer {
            Some(f) => format!("{f} · {timing}"),
            None => timing,
        }),
    }
}

/// The answer to a command that shares a fleet triage whose summary is already in the channel.
pub fn same_triage(triages: &[ClusterTriage<'_>]) -> String {
    format!(
        "Same triage as the summary just posted here: {}. Its evidence and buttons are on that message.",
        headline(&fleet_of(triages)).trim_start_matches(['🔴', '🟡', '🟢', ' '])
    )
}

/// `/vault-triage status` over the fleet: health and reviewer expiry of every cluster, the
/// soonest expiry first.
pub fn status(triages: &[ClusterTriage<'_>], now: DateTime<Utc>) -> Message {
    let fleet = fleet_of(triages);
    let title = headline(&fleet);
    let status = fleet.status();
    let order: Vec<&ClusterReport> = status
        .iter()
        .filter_map(|l| fleet.clusters.iter().find(|c| c.cluster == l.cluster))
        .collect();
    Message {
        text: title.clone(),
        title: Some(title),
        tone: Some(tone_of(&fleet)),
        sections: vec![
            lines(&fleet, now, &order),
            Section::Text {
                text: "`/vault-triage` for the full triage · `/vault-triage cluster NAME` for one cluster".into(),
            },
        ],
        ..Message::default()
    }
}

/// One cluster's reviewer as the watch judged it: the cluster, the reviewer
/// (`namespace/service-account`) and the judgement.
pub type ReviewerLine = (String, String, ReviewerHealth);

/// `/vault-triage reviewer` over the fleet: each cluster's reviewer judgement, worst first.
pub fn reviewer(clusters: &[ReviewerLine], now: DateTime<Utc>) -> Message {
    let rank = |h: &ReviewerHealth| match h {
        ReviewerHealth::Expired { .. } => 0,
        ReviewerHealth::ExpiresSoon { .. } => 1,
        ReviewerHealth::Unknown { .. } => 2,
        ReviewerHealth::Fine { .. } => 3,
    };
    let mut order: Vec<&ReviewerLine> = clusters.iter().collect();
    order.sort_by_key(|(_, _, h)| rank(h));
    let tone = match order.first().map(|(_, _, h)| rank(h)) {
        Some(0) => Tone::Danger,
        Some(1) => Tone::Warning,
        Some(2) => Tone::Neutral,
        _ => Tone::Good,
    };
    let attention = clusters
        .iter()
        .filter(|(_, _, h)| h.needs_attention())
        .count();
    let title = format!(
        "Reviewer tokens of {} clusters · {attention} need attention",
        clusters.len()
    );
    let items = order
        .iter()
        .map(|(cluster, who, h)| {
            let emoji = match rank(h) {
                0 => "🔴",
                1 => "🟡",
                2 => "⚪",
                _ => "🟢",
            };
            (emoji.to_string(), cluster.clone(), h.describe(who, now))
        })
        .collect();
    Message {
        text: title.clone(),
        title: Some(title),
        tone: Some(tone),
        sections: vec![Section::Checks { items }],
        ..Message::default()
    }
}
