//! The commands of the `vault-triage` binary, one module each (`command_<verb>`): each parses
//! nothing (clap did), builds what it needs through the composition root (`crate::app`) and
//! returns the process exit code.

mod audit;
mod commands;
mod lab;
mod probe;
mod serve;

use crate::config::{Cli, Command};

/// Exit code: the command could not run.
pub const EXIT_COULD_NOT_RUN: i32 = 1;

/// Runs the command the user asked for.
pub async fn run(cli: Cli) -> i32 {
    let config = cli.config.as_deref();
    let result = match cli.command {
        Command::Probe(args) => probe::command_probe(config, args).await,
        Command::Lab(args) => lab::command_lab(args).await,
        Command::Demo(args) => lab::command_demo(args).await,
        Command::Serve(args) => serve::command_serve(config, *args).await,
        Command::Audit(args) => audit::command_audit(config, args).await,
        Command::Commands(args) => commands::command_commands(args).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vault-triage: {e:#}");
            EXIT_COULD_NOT_RUN
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
