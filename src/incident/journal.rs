//! The audit journal of design §6: `journal.jsonl` in `state.dir`, one JSON entry per line.
//!
//! Every change is appended and `sync_data`ed before the caller applies it, so the journal is
//! both the audit trail and what a restart replays. Opening replays the file: an unparsable line
//! is reported and skipped, never fatal, and a torn last line (a crash mid-write) is cut off so
//! new entries start on a clean line. Entries never carry a token.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::approval::{Actor, ApprovalRequest, PersonKey, RequestId};
use crate::config::Platform;

/// The journal's file name inside `state.dir`.
pub const JOURNAL_FILE: &str = "journal.jsonl";

/// One journaled fact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// An alert group opened an incident (payload: the intake's own model).
    IncidentOpened {
        incident: String,
        payload: serde_json::Value,
    },
    /// The incident changed (alerts added, resolved, thread ids learned, …).
    IncidentUpdated {
        incident: String,
        payload: serde_json::Value,
    },
    TriageCompleted {
        incident: Option<String>,
        code: String,
        summary: String,
    },
    ApprovalProposed {
        request: Box<ApprovalRequest>,
    },
    /// The plan a request approves (what the executor will run), recorded with the proposal.
    PlanRecorded {
        id: RequestId,
        plan: serde_json::Value,
    },
    /// The bot wrote a fresh reviewer token into Vault; when it expires (never the token).
    ReviewerRotated {
        service_account: String,
        expires_at: Option<DateTime<Utc>>,
    },
    ApprovalGranted {
        id: RequestId,
        person: PersonKey,
        actor: Actor,
    },
    /// A click that changed nothing, with the sentence the clicker saw.
    ApprovalRefused {
        id: RequestId,
        actor: Actor,
        reason: String,
    },
    ApprovalDenied {
        id: RequestId,
        person: PersonKey,
        actor: Actor,
    },
    ExecutionStarted {
        id: RequestId,
    },
    ExecutionStep {
        id: RequestId,
        step: String,
        ok: bool,
        detail: String,
    },
    ExecutionFinished {
        id: RequestId,
        ok: bool,
        detail: String,
    },
    RequestExpired {
        id: RequestId,
    },
    RequestInvalidated {
        id: RequestId,
        reason: String,
    },
    /// The approval card of a request was posted here, so it can be updated and its thread
    /// told after a restart.
    ApprovalCardPosted {
        id: RequestId,
        platform: Platform,
        channel: String,
        message: String,
        thread: Option<String>,
    },
}

impl Event {
    /// The approval request this event is about, if any.
    pub fn request_id(&self) -> Option<&RequestId> {
        match self {
            Event::ApprovalProposed { request } => Some(&request.id),
            Event::PlanRecorded { id, .. }
            | Event::ApprovalGranted { id, .. }
            | Event::ApprovalRefused { id, .. }
            | Event::ApprovalDenied { id, .. }
            | Event::ExecutionStarted { id }
            | Event::ExecutionStep { id, .. }
            | Event::ExecutionFinished { id, .. }
            | Event::RequestExpired { id }
            | Event::RequestInvalidated { id, .. }
            | Event::ApprovalCardPosted { id, .. } => Some(id),
            Event::IncidentOpened { .. }
            | Event::IncidentUpdated { .. }
            | Event::TriageCompleted { .. }
            | Event::ReviewerRotated { .. } => None,
        }
    }
}

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Monotonic across restarts.
    pub seq: u64,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    /// Who caused it (a person key such as `alice` or `slack:U012ABC`); none for the bot itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    pub event: Event,
}

/// A line that could not be read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornLine {
    /// 1-based line number in the file as it was found.
    pub line: usize,
    pub reason: String,
}

/// What opening the journal found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Replay {
    pub entries: Vec<JournalEntry>,
    pub torn: Vec<TornLine>,
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {path}: {op}")]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("journal entry could not be encoded")]
    Encode(#[from] serde_json::Error),
}

struct Tail {
    file: File,
    /// Length of the file up to the last complete entry.
    len: u64,
    next_seq: u64,
}

/// The append-only journal. Appends are serialised by a mutex and durable when they return.
pub struct Journal {
    path: PathBuf,
    tail: Mutex<Tail>,
    /// An injected write failure (drills and fault-injection tests): disk full, read-only.
    fault: Mutex<Option<std::io::ErrorKind>>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("path", &self.path).finish()
    }
}

impl Journal {
    /// Opens (creating `dir` and the file if needed) and replays the journal.
    pub fn open(dir: &Path) -> Result<(Journal, Replay), JournalError> {
        let path = dir.join(JOURNAL_FILE);
        let io = |op: &'static str| {
            let path = path.clone();
            move |source| JournalError::Io { path, op, source }
        };
        std::fs::create_dir_all(dir).map_err(io("creating the state directory"))?;
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io("opening"))?;
        if !existed {
            // Make the new file's directory entry durable too; best effort.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io("reading"))?;

        let scan = scan(&bytes);
        if scan.good_len < bytes.len() as u64 {
            file.set_len(scan.good_len)
                .map_err(io("cutting off a torn last line"))?;
            file.sync_all().map_err(io("syncing"))?;
        } else if !bytes.is_empty() && !bytes.ends_with(b"\n") {
            // The last entry is whole but lost its newline: end the line before appending.
            file.write_all(b"\n").map_err(io("ending the last line"))?;
            file.sync_data().map_err(io("syncing"))?;
        }
        for torn in &scan.replay.torn {
            tracing::warn!(path = %path.display(), line = torn.line, reason = %torn.reason, "skipped an unreadable journal line");
        }
        let len = file.metadata().map_err(io("reading metadata"))?.len();
        let next_seq = scan.replay.entries.iter().map(|e| e.seq).max().unwrap_or(0) + 1;
        let journal = Journal {
            path,
            tail: Mutex::new(Tail {
                file,
                len,
                next_seq,
            }),
            fault: Mutex::new(None),
        };
        Ok((journal, scan.replay))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes every append fail with `kind` (e.g. `StorageFull`, `ReadOnlyFilesystem`) until
    /// called with `None`: fault injection for drills and tests.
    pub fn inject_write_fault(&self, kind: Option<std::io::ErrorKind>) {
        *self.fault.lock().unwrap_or_else(|p| p.into_inner()) = kind;
    }

    /// Reads the journal without opening it for writing (for `vault-triage audit`, which may
    /// run beside the bot). A missing file reads as empty.
    pub fn read(dir: &Path) -> Result<Replay, JournalError> {
        let path = dir.join(JOURNAL_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(scan(&bytes).replay),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Replay::default()),
            Err(source) => Err(JournalError::Io {
                path,
                op: "reading",
                source,
            }),
        }
    }

    /// Appends an event stamped with the current time; durable when it returns.
    pub fn append(
        &self,
        event: Event,
        incident: Option<&str>,
        actor: Option<&str>,
    ) -> Result<JournalEntry, JournalError> {
        self.append_at(Utc::now(), event, incident, actor)
    }

    /// Appends an event stamped `at` (the time the caller decided on); durable when it returns.
    pub fn append_at(
        &self,
        at: DateTime<Utc>,
        event: Event,
        incident: Option<&str>,
        actor: Option<&str>,
    ) -> Result<JournalEntry, JournalError> {
        let mut tail = self.lock();
        let entry = JournalEntry {
            seq: tail.next_seq,
            at,
            incident: incident.map(str::to_owned),
            actor: actor.map(str::to_owned),
            event,
        };
        let mut line = serde_json::to_vec(&entry)?;
        line.push(b'\n');
        let injected = *self.fault.lock().unwrap_or_else(|p| p.into_inner());
        let written = match injected {
            Some(kind) => Err(std::io::Error::new(kind, "injected journal fault")),
            None => tail
                .file
                .write_all(&line)
                .and_then(|()| tail.file.sync_data()),
        };
        if let Err(source) = written {
            // Do not leave half a line for the next append to be glued onto.
            let len = tail.len;
            let _ = tail.file.set_len(len);
            return Err(JournalError::Io {
                path: self.path.clone(),
                op: "appending",
                source,
            });
        }
        tail.len += line.len() as u64;
        tail.next_seq += 1;
        Ok(entry)
    }

    fn lock(&self) -> MutexGuard<'_, Tail> {
        // A panic while holding the lock cannot leave a partial line behind (see `append_at`),
        // so the state behind a poisoned lock is still sound.
        self.tail.lock().unwrap_or_else(|p| p.into_inner())
    }
}

struct Scan {
    replay: Replay,
    /// Bytes up to and including the last complete line (a torn tail excluded).
    good_len: u64,
}

fn scan(bytes: &[u8]) -> Scan {
    let mut replay = Replay::default();
    let mut offset = 0usize;
    let mut good_len = 0u64;
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
            (Ok(entry), _) => {
                replay.entries.extend(entry);
                good_len = next as u64;
            }
            (Err(reason), true) => {
                replay.torn.push(TornLine {
                    line: line_no,
                    reason,
                });
                good_len = next as u64;
            }
            (Err(reason), false) => replay.torn.push(TornLine {
                line: line_no,
                reason: format!("torn last line (cut off): {reason}"),
            }),
        }
        offset = next;
    }
    Scan { replay, good_len }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn triage(n: u32) -> Event {
        Event::TriageCompleted {
            incident: Some(format!("INC-{n}")),
            code: "reviewer_jwt_expired".into(),
            summary: "the reviewer token expired".into(),
        }
    }

    #[test]
    fn entries_come_back_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let (j, replay) = Journal::open(dir.path()).unwrap();
        assert!(replay.entries.is_empty() && replay.torn.is_empty());
        let a = j.append(triage(1), Some("INC-1"), None).unwrap();
        let b = j.append(triage(2), None, Some("alice")).unwrap();
        assert_eq!((a.seq, b.seq), (1, 2));
        drop(j);
        let (j, replay) = Journal::open(dir.path()).unwrap();
        assert_eq!(replay.entries, vec![a, b]);
        assert_eq!(j.append(triage(3), None, None).unwrap().seq, 3);
    }

    #[test]
    fn a_garbled_middle_line_is_reported_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (j, _) = Journal::open(dir.path()).unwrap();
        j.append(triage(1), None, None).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(j.path())
            .unwrap()
            .write_all(b"{\"not\": \"an entry\"}\n")
            .unwrap();
        j.append(triage(2), None, None).unwrap();
        let path = j.path().to_owned();
        drop(j);
        let before = std::fs::read(&path).unwrap();
        let (_, replay) = Journal::open(dir.path()).unwrap();
        assert_eq!(replay.entries.len(), 2);
        assert_eq!(replay.torn.len(), 1);
        assert_eq!(replay.torn[0].line, 2);
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "audit lines are not rewritten"
        );
    }

    #[test]
    fn a_whole_last_entry_without_its_newline_is_kept_and_terminated() {
        let dir = tempfile::tempdir().unwrap();
        let (j, _) = Journal::open(dir.path()).unwrap();
        j.append(triage(1), None, None).unwrap();
        let path = j.path().to_owned();
        drop(j);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.pop();
        std::fs::write(&path, &bytes).unwrap();
        let (j, replay) = Journal::open(dir.path()).unwrap();
        assert_eq!(replay.entries.len(), 1);
        assert!(replay.torn.is_empty());
        j.append(triage(2), None, None).unwrap();
        drop(j);
        let (_, replay) = Journal::open(dir.path()).unwrap();
        assert_eq!(replay.entries.len(), 2);
        assert!(replay.torn.is_empty());
    }

    #[test]
    fn events_are_tagged_by_type() {
        let v = serde_json::to_value(triage(1)).unwrap();
        assert_eq!(v["type"], "triage_completed");
    }
}
