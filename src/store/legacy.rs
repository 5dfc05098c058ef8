//! The JSON Lines journal of earlier releases (`journal.jsonl` in `state.dir`, one entry per
//! line), read once so [`super::Store::open`] can import it. An unparsable line is reported
//! and skipped; a torn last line (a crash mid-write) is reported and left out.

use std::path::{Path, PathBuf};

use super::event::JournalEntry;

/// The journal's file name inside `state.dir`.
pub const JOURNAL_FILE: &str = "journal.jsonl";
/// What the journal is renamed to once imported.
pub const IMPORTED_FILE: &str = "journal.jsonl.imported";

/// A line that could not be read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornLine {
    /// 1-based line number in the file.
    pub line: usize,
    pub reason: String,
}

/// What reading the journal found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Replay {
    pub entries: Vec<JournalEntry>,
    pub torn: Vec<TornLine>,
}

/// The journal file of `dir`, when there is one.
pub fn journal_in(dir: &Path) -> Option<PathBuf> {
    let path = dir.join(JOURNAL_FILE);
    path.is_file().then_some(path)
}

/// Reads a journal file.
pub fn read(path: &Path) -> std::io::Result<Replay> {
    Ok(scan(&std::fs::read(path)?).replay)
}

struct Scan {
    replay: Replay,
}

fn scan(bytes: &[u8]) -> Scan {
    let mut replay = Replay::default();
    let mut offset = 0usize;
    let mut line_no = 0usize;
    while offset < bytes.len() {
        line_no += 1;
        let (line, terminated, next) = match bytes[offset..].iter().position(|&b| b == b'\n') {
            Some(i) => (&bytes[offset..offset + i], true, offset + i + 1),
            None => (&bytes[offset..], false, bytes.len()),
        };
        let parsed = std::str::from_utf8(line)
            .map_err(|e| format!("not UTF-8: {e}"))
            .and_then(|text| {
                if text.trim().is_empty() {
                    Ok(None)
                } else {
                    serde_json::from_str::<JournalEntry>(text)
                        .map(Some)
                        .map_err(|e| e.to_string())
                }
            });
        match (parsed, terminated) {
            (Ok(entry), _) => replay.entries.extend(entry),
            (Err(reason), true) => replay.torn.push(TornLine {
                line: line_no,
                reason,
            }),
            (Err(reason), false) => replay.torn.push(TornLine {
                line: line_no,
                reason: format!("torn last line (left out): {reason}"),
            }),
        }
        offset = next;
    }
    Scan { replay }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Event;

    fn line(seq: u64) -> String {
        let e = JournalEntry {
            seq,
            at: chrono::Utc::now(),
            incident: None,
            actor: None,
            event: Event::TriageCompleted {
                incident: None,
                cluster: "default".into(),
                code: "healthy".into(),
                summary: "ok".into(),
            },
        };
        serde_json::to_string(&e).unwrap()
    }

    #[test]
    fn a_garbled_middle_line_is_reported_and_skipped() {
        let text = format!("{}\n{{\"not\": \"an entry\"}}\n{}\n", line(1), line(2));
        let replay = scan(text.as_bytes()).replay;
        assert_eq!(replay.entries.len(), 2);
        assert_eq!(replay.torn.len(), 1);
        assert_eq!(replay.torn[0].line, 2);
    }

    #[test]
    fn a_torn_last_line_is_left_out_and_a_whole_one_without_newline_kept() {
        let torn = format!("{}\n{}", line(1), &line(2)[..20]);
        let replay = scan(torn.as_bytes()).replay;
        assert_eq!(replay.entries.len(), 1);
        assert!(replay.torn[0].reason.starts_with("torn last line"));
        let whole = format!("{}\n{}", line(1), line(2));
        let replay = scan(whole.as_bytes()).replay;
        assert_eq!(replay.entries.len(), 2);
        assert!(replay.torn.is_empty());
    }
}
