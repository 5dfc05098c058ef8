//! `vault-triage audit`: the audit records in the state database, filtered (the filters are
//! queries), as text or JSON lines. Safe beside a running bot: it only reads.

use std::path::Path;

use anyhow::Context as _;

use crate::config::{AuditArgs, FileConfig, OutputFormat};
use crate::store::legacy::{IMPORTED_FILE, JOURNAL_FILE};
use crate::store::{AuditFilter, DATABASE_FILE, Store, render_text};

#[allow(clippy::print_stdout)] // the command's own output
pub async fn command_audit(config: Option<&Path>, args: AuditArgs) -> anyhow::Result<i32> {
    let mut state = FileConfig::load(config)?.state;
    if let Some(dir) = args.state_dir {
        state.dir = dir;
    }
    if let Some(url) = args.state_url {
        state.url = Some(url);
    }
    if state.url.as_deref().is_none_or(str::is_empty) {
        no_state_is_an_error(&state.dir)?;
    }
    let store = Store::open(&state)
        .await
        .context("opening the state ([state])")?;
    let wanted = AuditFilter {
        incident: args.incident,
        actor: args.actor,
        action: args.action,
    };
    let (entries, actions) = store.audit(&wanted).await?;
    match args.format {
        OutputFormat::Json => {
            for e in &entries {
                println!("{}", serde_json::to_string(e)?);
            }
        }
        OutputFormat::Text => {
            let entries: Vec<_> = entries.iter().collect();
            print!("{}", render_text(&entries, &actions));
        }
    }
    Ok(0)
}

/// An audit of a directory that holds no state would print nothing, like an empty trail: a
/// mistyped `--state-dir` must say so instead (and create nothing).
fn no_state_is_an_error(dir: &Path) -> anyhow::Result<()> {
    if !dir.is_dir() {
        anyhow::bail!(
            "the state directory {} does not exist: pass --state-dir (or set state.dir) to where the bot keeps its state",
            dir.display()
        );
    }
    if ![DATABASE_FILE, JOURNAL_FILE, IMPORTED_FILE]
        .iter()
        .any(|f| dir.join(f).exists())
    {
        anyhow::bail!(
            "{} holds no state ({DATABASE_FILE}): pass --state-dir (or set state.dir) to where the bot keeps its state",
            dir.display()
        );
    }
    Ok(())
}
