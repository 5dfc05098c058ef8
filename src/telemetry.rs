//! Logging: readable lines on a terminal, JSON lines elsewhere (e.g. in a cluster).
//!
//! JSON lines carry the fields of the spans they happen in, so every line of a triage or a
//! remediation names its incident (`"incident":"INC-…"`).

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::LogFormat;

/// Installs the global subscriber. Logs go to stderr so stdout stays for command output.
pub fn init(format: LogFormat, filter: &str) {
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    if json {
        init_json(filter, std::io::stderr);
    } else {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(env_filter(filter))
            .with_writer(std::io::stderr)
            .compact()
            .try_init();
    }
}

fn env_filter(filter: &str) -> EnvFilter {
    EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Installs [`json`] as the global subscriber.
pub fn init_json<W>(filter: &str, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    use tracing_subscriber::util::SubscriberInitExt as _;
    let _ = json(filter, writer).try_init();
}

/// JSON lines to `writer`, with the current span's fields and the span list on each line
/// (what `serve` logs in a cluster; tests install it for one thread).
pub fn json<W>(filter: &str, writer: W) -> impl tracing::Subscriber + Send + Sync + 'static
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(env_filter(filter))
        .with_writer(writer)
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(true)
        .finish()
}
