//! `vault-triage probe`: one triage from a terminal, as text or JSON; with `[[clusters]]`,
//! every cluster at once (or one with `--cluster`).

use std::path::Path;

use crate::config::{FileConfig, OutputFormat, ProbeArgs};
use crate::diagnosis::{ClusterReport, FleetReport, Report};
use crate::probes::triage;

pub async fn command_probe(config: Option<&Path>, args: ProbeArgs) -> anyhow::Result<i32> {
    let cfg = FileConfig::load(config)?;
    let only = args.cluster.as_deref().filter(|n| !n.is_empty());
    let fleet = crate::app::build_fleet(&args.connection, &cfg, args.role.clone(), only).await?;
    if let [one] = fleet.as_slice() {
        let report = triage(&one.probes, &one.target).await;
        print_report(&report, args.format)?;
        return Ok(report.verdict.exit_code());
    }
    // Every cluster at once: the whole run takes about as long as the slowest cluster.
    let reports = futures::future::join_all(fleet.iter().map(|c| async {
        ClusterReport {
            cluster: c.cluster.name.clone(),
            report: triage(&c.probes, &c.target).await,
        }
    }))
    .await;
    let fleet = FleetReport { clusters: reports };
    print_fleet(&fleet, args.format)?;
    Ok(fleet.exit_code())
}

#[allow(clippy::print_stdout)] // the command's own output
fn print_report(report: &Report, format: OutputFormat) -> anyhow::Result<()> {
    match format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(report)?),
        OutputFormat::Text => print!("{}", crate::terminal::render(report)),
    }
    Ok(())
}

#[allow(clippy::print_stdout)] // the command's own output
fn print_fleet(fleet: &FleetReport, format: OutputFormat) -> anyhow::Result<()> {
    match format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&fleet.json()?)?),
        OutputFormat::Text => print!(
            "{}",
            crate::terminal::render_fleet(fleet, chrono::Utc::now())
        ),
    }
    Ok(())
}
