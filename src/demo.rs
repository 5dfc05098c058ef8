//! `demo`: the incident told as a story, offline, against the built-in lab.

use std::fmt::Write as _;

use chrono::Utc;

use crate::config::{ConnectionArgs, FileConfig};
use crate::lab::{Lab, LabOptions, Scenario};
use crate::probes::ProbeTarget;
use crate::triage::{Report, triage};

/// Starts the lab with `scenario`, triages it, and prints the story.
#[allow(clippy::print_stdout)] // the command's own output
pub async fn run(scenario: Scenario) -> anyhow::Result<()> {
    let lab = Lab::start(scenario, LabOptions::default()).await?;
    let dir = tempfile::Builder::new()
        .prefix("vault-triage-demo-")
        .tempdir()?;
    let files = lab.write_files(dir.path())?;
    let conn = ConnectionArgs {
        vault_addr: lab.vault_addr(),
        vault_token: Some(lab.vault_token()),
        vault_token_file: None,
        vault_cacert: None,
        vault_namespace: None,
        kubeconfig: Some(files.kubeconfig.clone()),
    };
    let cfg = FileConfig::load(Some(&files.config))?;
    let probes = crate::app::build_probes(&conn, &cfg).await?;
    let report = triage(&probes, &ProbeTarget::from_config(&cfg, None)).await;
    print!("{}", story(scenario, &report, &lab.base_url()));
    lab.shutdown().await;
    Ok(())
}

/// The story as text.
pub fn story(scenario: Scenario, report: &Report, lab_url: &str) -> String {
    let mut out = String::new();
    let t = |r: &Report| r.triaged_at.format("%H:%M:%S").to_string();
    let start = report.evidence.started_at.format("%H:%M:%S").to_string();
    let _ = writeln!(
        out,
        "vault-triage demo · scenario {scenario} · simulated Vault + Kubernetes at {lab_url}"
    );
    let _ = writeln!(out);
    let workloads = report
        .evidence
        .workloads
        .value()
        .cloned()
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{start}  🔔 Alertmanager: [FIRING:{}] VaultPermissionDenied ({})",
        workloads.len().max(1),
        workloads
            .first()
            .map(|w| w.namespace.as_str())
            .unwrap_or("production")
    );
    for w in &workloads {
        let _ = writeln!(
            out,
            "          {}: vault: permission denied (role {})",
            w.name, w.role
        );
    }
    let _ = writeln!(
        out,
        "{start}  🔎 The alert mentions Vault and `permission denied`: triage starts"
    );
    let _ = writeln!(
        out,
        "{}  📋 Triage finished in {} ms: verdict {}",
        t(report),
        report.duration_ms,
        report.verdict.code
    );
    let _ = writeln!(out);
    for line in crate::terminal::render(report).lines() {
        let _ = writeln!(out, "    {line}");
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{}  ⏭  Next: the fitting fixes wait for approval in the incident thread ({}).",
        Utc::now().format("%H:%M:%S"),
        if report.verdict.remediations.is_empty() {
            "none fits this verdict".to_string()
        } else {
            report
                .verdict
                .remediations
                .iter()
                .map(|r| r.title.clone())
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    out
}
