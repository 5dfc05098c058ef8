//! The `vault-triage` binary: parse the command line, start logging, run.

use clap::Parser as _;

#[tokio::main]
async fn main() {
    // One rustls provider for the whole process (see README, "TLS and the crypto provider").
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Usage errors exit 1 ("could not run"), never clap's 2, which means "fault diagnosed".
    let cli = match vault_triage::config::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            std::process::exit(if e.use_stderr() {
                vault_triage::cli::EXIT_COULD_NOT_RUN
            } else {
                0
            });
        }
    };
    vault_triage::telemetry::init(cli.log_format, &cli.log);
    std::process::exit(vault_triage::cli::run(cli).await);
}
