//! `vault-triage audit`: the journal's audit records, filtered, as text or JSON lines.

use std::path::Path;

use anyhow::Context as _;

use crate::config::{AuditArgs, FileConfig, OutputFormat};
use crate::incident::audit::{AuditFilter, filter, render_text};
use crate::incident::journal::Journal;

#[allow(clippy::print_stdout)] // the command's own output
pub fn command_audit(config: Option<&Path>, args: AuditArgs) -> anyhow::Result<i32> {
    let dir = match args.state_dir {
        Some(d) => d,
        None => FileConfig::load(config)?.state.dir,
    };
    let replay =
        Journal::read(&dir).with_context(|| format!("reading the journal in {}", dir.display()))?;
    for torn in &replay.torn {
        eprintln!("journal line {} skipped: {}", torn.line, torn.reason);
    }
    let wanted = AuditFilter {
        incident: args.incident,
        actor: args.actor,
        action: args.action,
    };
    let entries = filter(&replay.entries, &wanted);
    match args.format {
        OutputFormat::Json => {
            for e in entries {
                println!("{}", serde_json::to_string(e)?);
            }
        }
        OutputFormat::Text => print!("{}", render_text(&entries)),
    }
    Ok(0)
}
