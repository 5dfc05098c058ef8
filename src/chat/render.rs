//! Rendering: reports, approval requests and execution steps as neutral messages. Pure.

use chrono::{DateTime, Utc};

use super::command::help_text;
use super::message::{Button, ButtonAction, ButtonStyle, Confirm, Message, Section, Tone};
use crate::approval::{ApprovalRequest, ApprovalState, Policy};
use crate::diagnosis::Report;
use crate::diagnosis::{Action, CheckStatus, Severity, Verdict};
use crate::evidence::CallerCheck;
use crate::remediation::Step;
use crate::remediation::watch::ReviewerHealth;
use crate::terminal::took;

/// The closing line of an execution: how it ended and how long after the approval.
pub fn execution_end(request: &ApprovalRequest, since_approval: std::time::Duration) -> Message {
    text(format!(
        "{} {} {}: {} ({} after approval)",
        if request.state == ApprovalState::Succeeded {
            "✅"
        } else {
            "⚠️"
        },
        request.action.as_str(),
        request.state.as_str(),
        request.outcome.clone().unwrap_or_default(),
        took(since_approval.as_millis() as u64)
    ))
}

/// What the reviewer watch says by itself when the reviewer token needs attention; the
/// approval card of the rotation follows in its thread.
pub fn reviewer_alert(health: &ReviewerHealth, reviewer: &str, now: DateTime<Utc>) -> Message {
    let describe = health.describe(reviewer, now);
    let (tone, title) = match health {
        ReviewerHealth::Expired { .. } => (
            Tone::Danger,
            format!("🔴 The reviewer token of {reviewer} has expired"),
        ),
        ReviewerHealth::ExpiresSoon { .. } => (
            Tone::Warning,
            format!("⚠️ The reviewer token of {reviewer} expires soon"),
        ),
        ReviewerHealth::Fine { .. } | ReviewerHealth::Unknown { .. } => {
            (Tone::Neutral, format!("The reviewer token of {reviewer}"))
        }
    };
    Message {
        text: title.clone(),
        title: Some(title),
        tone: Some(tone),
        sections: vec![Section::Text {
            text: format!(
                "{describe}\nThe rotation is proposed by the bot itself: the approval card is in this thread."
            ),
        }],
        footer: Some("reviewer watch".into()),
        ..Message::default()
    }
}

/// Most evidence lines in a summary (chat messages have size limits).
pub const MAX_CHECKS: usize = 14;
/// Most deployments named in a summary.
pub const MAX_DEPLOYMENTS: usize = 12;

fn tone(v: &Verdict) -> Tone {
    match v.code.severity() {
        Severity::Fine => Tone::Good,
        Severity::Warning => Tone::Warning,
        Severity::Failing => Tone::Danger,
    }
}

/// "Triaging…": the acknowledgement.
pub fn triaging(what: &str) -> Message {
    Message {
        text: format!("🔎 Triaging {what}…"),
        ..Message::default()
    }
}

/// The help.
pub fn help(note: Option<&str>) -> Message {
    Message {
        text: help_text(note),
        ..Message::default()
    }
}

/// A short message.
pub fn text(t: impl Into<String>) -> Message {
    Message {
        text: t.into(),
        ..Message::default()
    }
}

/// The answer to a command that shares a triage whose summary is already in the channel.
pub fn same_triage(report: &Report) -> String {
    let v = &report.verdict;
    format!(
        "Same triage as the summary just posted here: {} ({}). Its evidence and buttons are on that message.",
        v.headline, v.code
    )
}

/// The root-cause summary with its buttons (design §10).
pub fn summary(report: &Report, triage: &str, policy: &Policy) -> Message {
    let v = &report.verdict;
    let mut meta = format!(
        "{} · confidence {}",
        v.layer.as_str(),
        v.confidence.as_str()
    );
    if v.layer == crate::diagnosis::Layer::Authentication {
        meta = format!(
            "authentication (not authorization) · confidence {}",
            v.confidence.as_str()
        );
    }
    if !v.affected_workloads.is_empty() {
        meta.push_str(&format!(
            " · {} affected",
            crate::diagnosis::workload_count(&v.affected_workloads)
        ));
    }
    let cluster = &report.evidence.target.cluster;
    if cluster != crate::config::DEFAULT_CLUSTER {
        meta.push_str(&format!(" · cluster {cluster}"));
    }
    meta.push_str(&format!(" · triaged in {}", took(report.duration_ms)));
    let mut sections = vec![
        Section::Text {
            text: format!("_{meta}_"),
        },
        Section::Text {
            text: v.summary.clone(),
        },
        Section::Checks {
            items: v
                .evidence
                .iter()
                .filter(|i| i.status != CheckStatus::Info || i.check == "Vault debug log")
                .take(MAX_CHECKS)
                .map(|i| {
                    (
                        i.status.emoji().to_string(),
                        i.check.clone(),
                        i.detail.clone(),
                    )
                })
                .collect(),
        },
    ];
    if !v.affected_workloads.is_empty() {
        sections.push(Section::Text {
            text: affected_text(&v.affected_workloads),
        });
    }
    if let Some(text) = secret_syncs_text(&v.secret_syncs) {
        sections.push(Section::Text { text });
    }
    let manual: Vec<String> = v
        .remediations
        .iter()
        .filter(|r| r.action.is_none())
        .map(|r| format!("• *{}*: {}", r.title, r.detail))
        .collect();
    if !manual.is_empty() {
        sections.push(Section::Text {
            text: format!("*What to do:*\n{}", manual.join("\n")),
        });
    }
    if !v.reminders.is_empty() {
        sections.push(Section::Text {
            text: v
                .reminders
                .iter()
                .map(|r| format!("ℹ️ {r}"))
                .collect::<Vec<_>>()
                .join("\n"),
        });
    }
    let mut buttons: Vec<Button> = v
        .remediations
        .iter()
        .filter_map(|r| r.kind().map(|kind| (r, kind)))
        .map(|(r, kind)| Button {
            action: ButtonAction::Propose {
                triage: triage.to_string(),
                remediation: kind,
            },
            label: r.title.clone(),
            style: ButtonStyle::Danger,
            confirm: Some(Confirm {
                title: format!("{}?", r.title),
                text: format!("{} This asks for approval; nothing changes until the policy's approvers agree.", r.detail),
                confirm: "Request it".into(),
                deny: "Cancel".into(),
            }),
        })
        .collect();
    let has_fix = !buttons.is_empty();
    if has_fix {
        buttons.push(Button {
            action: ButtonAction::Preview {
                triage: triage.to_string(),
            },
            label: "Preview plan".into(),
            style: ButtonStyle::Default,
            confirm: None,
        });
    }
    buttons.push(Button {
        action: ButtonAction::Rerun {
            triage: triage.to_string(),
        },
        label: "Re-run triage".into(),
        style: ButtonStyle::Default,
        confirm: None,
    });
    let footer = has_fix.then(|| approvals_needed(v, policy)).flatten();
    Message {
        text: format!("{} {}", marker(v), v.headline),
        title: Some(format!("{} {}", marker(v), v.headline)),
        tone: Some(tone(v)),
        sections,
        buttons,
        footer,
    }
}

/// "*Affected:* a, b, c (production)", each kind other than Deployment named, at most
/// [`MAX_DEPLOYMENTS`] names; grouped by how they reach Vault when not all through the injector
/// ("*Affected through the CSI driver:* …").
fn affected_text(workloads: &[crate::diagnosis::AffectedWorkload]) -> String {
    use crate::evidence::Via;
    let mut lines = Vec::new();
    for via in [Via::Injector, Via::Csi, Via::Vso, Via::Eso] {
        let group: Vec<&crate::diagnosis::AffectedWorkload> =
            workloads.iter().filter(|w| w.via == via).collect();
        if group.is_empty() {
            continue;
        }
        let mut names: Vec<String> = group
            .iter()
            .take(MAX_DEPLOYMENTS)
            .map(|w| match w.kind {
                crate::evidence::WorkloadKind::Deployment => w.name.clone(),
                kind => format!("{} ({kind})", w.name),
            })
            .collect();
        if group.len() > MAX_DEPLOYMENTS {
            names.push(format!("and {} more", group.len() - MAX_DEPLOYMENTS));
        }
        let mut namespaces: Vec<&str> = group.iter().map(|w| w.namespace.as_str()).collect();
        namespaces.sort();
        namespaces.dedup();
        let label = match via {
            _ if group.len() == workloads.len() => "*Affected:*",
            Via::Injector => "*Affected through the agent injector:*",
            Via::Csi => "*Affected through the CSI driver:*",
            Via::Vso => "*Affected through the Vault Secrets Operator:*",
            Via::Eso => "*Affected through External Secrets:*",
        };
        lines.push(format!(
            "{label} {} ({})",
            names.join(", "),
            namespaces.join(", ")
        ));
    }
    lines.join("\n")
}

/// "*Not synced (External Secrets, Vault Secrets Operator):* ClusterSecretStore vault-backend,
/// …", when an operator's object on the mount says it is not synced.
fn secret_syncs_text(syncs: &[crate::diagnosis::SecretSyncState]) -> Option<String> {
    let failing: Vec<String> = syncs
        .iter()
        .filter(|s| s.ready == Some(false))
        .take(MAX_DEPLOYMENTS)
        .map(|s| {
            if s.namespace.is_empty() {
                format!("{} {}", s.kind, s.name)
            } else {
                format!("{} {}/{}", s.kind, s.namespace, s.name)
            }
        })
        .collect();
    (!failing.is_empty()).then(|| {
        format!(
            "*Not synced (External Secrets, Vault Secrets Operator):* {}",
            failing.join(", ")
        )
    })
}

fn marker(v: &Verdict) -> &'static str {
    crate::terminal::marker(v)
}

/// "Reconfigure needs 2 approvals (not the requester) · expires in 15 min".
fn approvals_needed(v: &Verdict, policy: &Policy) -> Option<String> {
    let mut parts = Vec::new();
    for action in Action::ALL {
        if !v.remediations.iter().any(|r| r.action == Some(action)) {
            continue;
        }
        let name = match action {
            Action::ReconfigureAuth => "Reconfigure",
            Action::RestartDeployments => "Restart",
            Action::ResyncSecrets => "Re-sync",
        };
        parts.push(match policy.rule(action) {
            Some(rule) => format!(
                "{name} needs {} approval{} (not the requester) · expires in {} min",
                rule.required(),
                if rule.required() == 1 { "" } else { "s" },
                rule.expires_after().num_minutes()
            ),
            None => format!("{name}: no approval policy configured, so it cannot be approved"),
        });
    }
    (!parts.is_empty()).then(|| parts.join(" · "))
}

/// Vault and auth health at a glance.
pub fn status(report: &Report) -> Message {
    let v = &report.verdict;
    let items = v
        .evidence
        .iter()
        .filter(|i| {
            i.check == "Vault health"
                || i.check.starts_with("Auth method")
                || i.check.starts_with("Auth config")
                || i.check == "Canary login"
        })
        .map(|i| {
            (
                i.status.emoji().to_string(),
                i.check.clone(),
                i.detail.clone(),
            )
        })
        .collect();
    Message {
        text: format!("{} Vault Kubernetes auth: {}", marker(v), v.code),
        title: Some(format!("{} Vault Kubernetes auth: {}", marker(v), v.code)),
        tone: Some(tone(v)),
        sections: vec![
            Section::Checks { items },
            Section::Text {
                text: format!("{} · `/vault-triage` for the full triage", v.headline),
            },
        ],
        ..Message::default()
    }
}

/// Reviewer token state and expiry.
pub fn reviewer(report: &Report, health: &ReviewerHealth, now: DateTime<Utc>) -> Message {
    let who = report
        .evidence
        .target
        .reviewer
        .clone()
        .unwrap_or_else(|| "(no [reviewer] configured)".into());
    let mut fields = vec![("Reviewer".to_string(), who.clone())];
    if let Some(r) = report.evidence.reviewer.value() {
        if let Some(c) = &r.claims {
            if let Some(sub) = &c.subject {
                fields.push(("Subject".into(), sub.clone()));
            }
            if let Some(iat) = c.issued_at {
                fields.push((
                    "Issued".into(),
                    iat.format("%Y-%m-%d %H:%M UTC").to_string(),
                ));
            }
            fields.push((
                "Expires".into(),
                c.expires_at
                    .map(|e| e.format("%Y-%m-%d %H:%M UTC").to_string())
                    .unwrap_or_else(|| "never (legacy token)".into()),
            ));
        }
        if let Some(src) = &r.token_source {
            fields.push(("Source".into(), src.clone()));
        }
        fields.push((
            "Kubernetes accepts it".into(),
            match &r.as_caller {
                Some(CallerCheck::Authenticated { .. }) => "yes".into(),
                Some(CallerCheck::Unauthorized) => "no (401)".into(),
                Some(CallerCheck::Failed { detail }) => format!("unknown: {detail}"),
                None => "not tried".into(),
            },
        ));
        if let Some(m) = r.may_create_tokenreviews {
            fields.push((
                "May create tokenreviews".into(),
                if m { "yes" } else { "no" }.into(),
            ));
        }
    }
    let t = match health {
        ReviewerHealth::Fine { .. } => Tone::Good,
        ReviewerHealth::ExpiresSoon { .. } => Tone::Warning,
        ReviewerHealth::Expired { .. } => Tone::Danger,
        ReviewerHealth::Unknown { .. } => Tone::Neutral,
    };
    Message {
        text: health.describe(&who, now),
        title: Some(format!("Reviewer token of {who}")),
        tone: Some(t),
        sections: vec![
            Section::Fields { fields },
            Section::Text {
                text: health.describe(&who, now),
            },
        ],
        ..Message::default()
    }
}

fn action_title(request: &ApprovalRequest) -> String {
    let first = request.summary.lines().next().unwrap_or_default();
    match request.action {
        Action::ReconfigureAuth => {
            format!("Reconfigure Vault auth: {}", first.trim_end_matches(':'))
        }
        Action::RestartDeployments => {
            format!("Restart deployments: {}", first.trim_end_matches(':'))
        }
        Action::ResyncSecrets => {
            format!("Re-sync secrets: {}", first.trim_end_matches(':'))
        }
    }
}

fn person_list(request: &ApprovalRequest) -> String {
    request
        .approvals
        .iter()
        .map(|d| {
            format!(
                "{} ({}, {})",
                d.person,
                d.actor.via.as_str(),
                d.at.format("%H:%M UTC")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The approval card: what will change, who approved, who is still needed, the expiry.
pub fn approval_card(request: &ApprovalRequest, policy: &Policy, now: DateTime<Utc>) -> Message {
    let (emoji, t, state_line) = match request.state {
        ApprovalState::Proposed | ApprovalState::PartiallyApproved => {
            let left = (request.expires_at - now).num_minutes().max(0);
            (
                "🔐",
                Tone::Warning,
                format!(
                    "Needs {} approval{} (not the requester) · {} so far · expires {} (in {left} min)",
                    request.required,
                    if request.required == 1 { "" } else { "s" },
                    request.approvals.len(),
                    request.expires_at.format("%H:%M UTC")
                ),
            )
        }
        ApprovalState::Approved => ("⏳", Tone::Warning, "Approved: starting…".to_string()),
        ApprovalState::Executing => (
            "⚙️",
            Tone::Warning,
            "Approved: running (progress in this thread)".to_string(),
        ),
        ApprovalState::Succeeded => (
            "✅",
            Tone::Good,
            format!("Done: {}", request.outcome.clone().unwrap_or_default()),
        ),
        ApprovalState::Failed => (
            "❌",
            Tone::Danger,
            format!("Failed: {}", request.outcome.clone().unwrap_or_default()),
        ),
        ApprovalState::Denied => (
            "🚫",
            Tone::Neutral,
            format!(
                "Denied by {}",
                request
                    .denial
                    .as_ref()
                    .map(|d| d.person.to_string())
                    .unwrap_or_default()
            ),
        ),
        ApprovalState::Expired => (
            "⌛",
            Tone::Neutral,
            "Expired before enough people approved".to_string(),
        ),
        ApprovalState::Invalidated => (
            "♻️",
            Tone::Neutral,
            format!(
                "Not run: {}",
                request
                    .outcome
                    .clone()
                    .unwrap_or_else(|| "the world changed".into())
            ),
        ),
    };
    let mut fields = vec![
        (
            "Requested by".to_string(),
            request.requester.person.to_string(),
        ),
        ("Request".to_string(), request.id.to_string()),
    ];
    if request.cluster != crate::config::DEFAULT_CLUSTER {
        fields.push(("Cluster".to_string(), request.cluster.clone()));
    }
    if !request.approvals.is_empty() {
        fields.push(("Approved by".into(), person_list(request)));
    }
    let open = matches!(
        request.state,
        ApprovalState::Proposed | ApprovalState::PartiallyApproved
    );
    if open {
        let mut exclude: Vec<_> = request.approvals.iter().map(|d| d.person.clone()).collect();
        exclude.push(request.requester.person.clone());
        if let Some(rule) = policy.rule(request.action) {
            let candidates = rule.candidates(&exclude);
            let missing = request
                .required
                .saturating_sub(request.approvals.len() as u32);
            fields.push((
                "Still needed".into(),
                format!(
                    "{missing} more of {}",
                    if candidates.is_empty() {
                        "(nobody left)".to_string()
                    } else {
                        candidates.join(", ")
                    }
                ),
            ));
        }
    }
    let buttons = if open {
        vec![
            Button {
                action: ButtonAction::Approve { request: request.id.clone() },
                label: "Approve".into(),
                style: ButtonStyle::Primary,
                confirm: Some(Confirm {
                    title: "Approve this change?".into(),
                    text: "It runs when enough people have approved. The bot re-checks the world first and refuses if it changed.".into(),
                    confirm: "Approve".into(),
                    deny: "Cancel".into(),
                }),
            },
            Button {
                action: ButtonAction::Deny { request: request.id.clone() },
                label: "Deny".into(),
                style: ButtonStyle::Danger,
                confirm: None,
            },
        ]
    } else {
        Vec::new()
    };
    let title = format!("{emoji} {}", action_title(request));
    Message {
        text: format!("{title} · {state_line}"),
        title: Some(title),
        tone: Some(t),
        sections: vec![
            Section::Code {
                text: request.summary.clone(),
            },
            Section::Fields { fields },
        ],
        buttons,
        footer: Some(state_line),
    }
}

/// One execution step, as a thread reply.
pub fn step(s: &Step) -> Message {
    text(format!(
        "{} *{}*: {}",
        if s.ok { "✅" } else { "❌" },
        s.step,
        s.detail
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_reads_as_one_line() {
        let m = step(&Step {
            step: "verify".into(),
            ok: true,
            detail: "canary login succeeds".into(),
        });
        assert_eq!(m.text, "✅ *verify*: canary login succeeds");
    }
}
