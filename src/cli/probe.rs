//! `vault-triage probe`: one triage from a terminal, as text or JSON.

use std::path::Path;

use crate::config::{FileConfig, OutputFormat, ProbeArgs};
use crate::diagnosis::Report;
use crate::probes::{ProbeTarget, triage};

pub async fn command_probe(config: Option<&Path>, args: ProbeArgs) -> anyhow::Result<i32> {
    let cfg = FileConfig::load(config)?;
    let probes = crate::app::build_probes(&args.connection, &cfg).await?;
    let target = ProbeTarget::from_config(&cfg, args.role);
    let report = triage(&probes, &target).await;
    print_report(&report, args.format)?;
    Ok(report.verdict.exit_code())
}

#[allow(clippy::print_stdout)] // the command's own output
fn print_report(report: &Report, format: OutputFormat) -> anyhow::Result<()> {
    match format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(report)?),
        OutputFormat::Text => print!("{}", crate::terminal::render(report)),
    }
    Ok(())
}
