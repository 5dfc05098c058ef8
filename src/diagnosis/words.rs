//! Small words shared by the evidence chain and the summary text: times in UTC, how long ago,
//! and the reason in a Vault DEBUG log line.

use chrono::{DateTime, Utc};

/// `2026-11-28 09:12 UTC`.
pub(crate) fn utc(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// `3 h ago`, `12 min ago`, `2 d ago`, or `in 5 min`.
pub(crate) fn ago(now: DateTime<Utc>, t: DateTime<Utc>) -> String {
    let secs = (now - t).num_seconds();
    let (n, future) = if secs >= 0 {
        (secs, false)
    } else {
        (-secs, true)
    };
    let span = if n < 120 {
        format!("{n} s")
    } else if n < 2 * 3600 {
        format!("{} min", n / 60)
    } else if n < 2 * 86_400 {
        format!("{} h", n / 3600)
    } else {
        format!("{} d", n / 86_400)
    };
    if future {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

/// The `err="…"` part of a `login unauthorized` line, or the line.
pub(crate) fn log_reason(line: &str) -> String {
    let reason = match line.find("err=") {
        Some(i) => line[i + 4..].trim().trim_matches('"').replace("\\\"", "\""),
        None => line.to_string(),
    };
    let mut r: String = reason.chars().take(240).collect();
    if reason.chars().count() > 240 {
        r.push('…');
    }
    r
}
