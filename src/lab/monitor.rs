//! The simulated Vault's server log, as streamed by `GET /v1/sys/monitor`: one line per event
//! in Vault's standard (hclog) format, delivered to every open stream before the request that
//! caused it is answered.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::Response;
use tokio::sync::{Notify, broadcast};

/// Log levels, least to most severe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        match s.to_ascii_lowercase().as_str() {
            "trace" => Some(Level::Trace),
            "debug" => Some(Level::Debug),
            "" | "info" => Some(Level::Info),
            "warn" | "warning" => Some(Level::Warn),
            "err" | "error" => Some(Level::Error),
            _ => None,
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Level::Trace => "[TRACE]",
            Level::Debug => "[DEBUG]",
            Level::Info => "[INFO] ",
            Level::Warn => "[WARN] ",
            Level::Error => "[ERROR]",
        }
    }
}

#[derive(Clone)]
struct Event {
    level: Level,
    line: String,
    acks: Arc<AtomicUsize>,
    done: Arc<Notify>,
}

/// Fan-out of log events to the open monitor streams.
pub(crate) struct Monitor {
    tx: broadcast::Sender<Event>,
}

/// Renders a value the way hclog does: wrapped in quotes, `"` escaped, non-printable
/// characters Go-escaped (`\n`, `\t`, ...), everything else (backslashes included) verbatim.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Monitor {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(256);
        Monitor { tx }
    }

    /// Emits one line and waits (briefly) until every open stream has taken it.
    pub async fn emit(&self, level: Level, module: &str, message: &str, kv: &[(&str, &str)]) {
        let ts = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
        let mut line = format!("{ts} {} {module}: {message}", level.tag());
        for (i, (k, v)) in kv.iter().enumerate() {
            let sep = if i == 0 { ": " } else { " " };
            line.push_str(&format!("{sep}{k}={}", go_quote(v)));
        }
        line.push('\n');
        let ev = Event {
            level,
            line,
            acks: Arc::new(AtomicUsize::new(0)),
            done: Arc::new(Notify::new()),
        };
        let Ok(receivers) = self.tx.send(ev.clone()) else {
            return;
        };
        // Every open stream takes the line; a stream closed since (its client went away, as
        // each triage closes its own after the login) no longer counts, so logins of other
        // triages do not wait on it.
        let wait = async {
            loop {
                let notified = ev.done.notified();
                let open = receivers.min(self.tx.receiver_count());
                if ev.acks.load(Ordering::SeqCst) >= open {
                    break;
                }
                let _ = tokio::time::timeout(Duration::from_millis(5), notified).await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_millis(500), wait).await;
    }

    /// A streaming response carrying every event at `min` level or above.
    pub fn stream(&self, min: Level) -> Response {
        let rx = self.tx.subscribe();
        let stream = futures::stream::unfold(rx, move |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(ev) => {
                        ev.acks.fetch_add(1, Ordering::SeqCst);
                        ev.done.notify_waiters();
                        if ev.level >= min {
                            let item: Result<Bytes, std::io::Error> = Ok(Bytes::from(ev.line));
                            return Some((item, rx));
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        Response::new(Body::from_stream(stream))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_go() {
        assert_eq!(go_quote(r#"a "b" \c"#), r#""a \"b\" \c""#);
        assert_eq!(go_quote(r#"{"m":"x \"y\""}"#), r#""{\"m\":\"x \\"y\\"\"}""#);
        assert_eq!(go_quote("x\ny"), "\"x\\ny\"");
    }
}
