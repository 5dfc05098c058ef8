//! [`MonitorStream`]: the `sys/monitor` log stream, read in the background.
//!
//! Vault logs the real reason of a failed Kubernetes login only at DEBUG level (facts §2.2,
//! §12.1). Holding `sys/monitor?log_level=debug` open while the canary logs in captures that
//! line without restarting Vault or changing its log level.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use tokio::sync::Notify;

/// Most lines kept from one stream.
const MAX_LINES: usize = 500;
/// Longest line kept.
const MAX_LINE_BYTES: usize = 8 * 1024;

/// Lines received so far; dropped (and the stream closed) with the value.
pub struct MonitorStream {
    lines: Arc<Mutex<Vec<String>>>,
    notify: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl MonitorStream {
    pub(crate) fn spawn(resp: reqwest::Response) -> Self {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let notify = Arc::new(Notify::new());
        let (l, n) = (lines.clone(), notify.clone());
        let task = tokio::spawn(async move {
            let mut stream = resp.bytes_stream();
            let mut pending: Vec<u8> = Vec::new();
            while let Some(Ok(chunk)) = stream.next().await {
                pending.extend_from_slice(&chunk);
                while let Some(pos) = pending.iter().position(|b| *b == b'\n') {
                    let raw: Vec<u8> = pending.drain(..=pos).collect();
                    let mut line = String::from_utf8_lossy(&raw).trim_end().to_string();
                    if line.is_empty() {
                        continue;
                    }
                    line.truncate(floor_char_boundary(&line, MAX_LINE_BYTES));
                    if let Ok(mut v) = l.lock()
                        && v.len() < MAX_LINES
                    {
                        v.push(line);
                    }
                    n.notify_waiters();
                }
                if pending.len() > MAX_LINE_BYTES {
                    pending.clear();
                }
            }
        });
        Self {
            lines,
            notify,
            task,
        }
    }

    /// Every line received so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Waits up to `grace` for a line that satisfies `pred`, and returns the matching lines.
    pub async fn wait_for(&self, grace: Duration, pred: impl Fn(&str) -> bool) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let notified = self.notify.notified();
            let found: Vec<String> = self.lines().into_iter().filter(|l| pred(l)).collect();
            if !found.is_empty() || self.task.is_finished() {
                return found;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.lines().into_iter().filter(|l| pred(l)).collect();
            }
        }
    }
}

impl Drop for MonitorStream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn floor_char_boundary(s: &str, max: usize) -> usize {
    if s.len() <= max {
        return s.len();
    }
    let mut i = max;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
