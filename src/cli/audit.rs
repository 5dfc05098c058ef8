//! `vault-triage audit`: the audit records in the state database, filtered (the filters are
//! queries), as text or JSON lines. Safe beside a running bot: it only reads.

use std::path::Path;

use anyhow::Context as _;

use crate::config::{AuditArgs, FileConfig, OutputFormat};
use crate::store::{AuditFilter, Store, render_text};

#[allow(clippy::print_stdout)] // the command's own output
pub async fn command_audit(config: Option<&Path>, args: AuditArgs) -> anyhow::Result<i32> {
    let mut state = FileConfig::load(config)?.state;
    if let Some(dir) = args.state_dir {
        state.dir = dir;
    }
    if let Some(url) = args.state_url {
        state.url = Some(url);
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
