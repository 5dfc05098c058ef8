//! The `vault-triage` binary: parse the command line, start logging, run.

use clap::Parser as _;

#[tokio::main]
async fn main() {
    // One rustls provider for the whole process (see README, "TLS and the crypto provider").
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = vault_triage::config::Cli::parse();
    vault_triage::telemetry::init(cli.log_format, &cli.log);
    std::process::exit(vault_triage::cli::run(cli).await);
}
