//! Incidents and their record: the append-only audit [`journal`] of design §6 (what a restart
//! replays) and the pure [`audit`] queries over it behind `vault-triage audit`.

pub mod audit;
pub mod journal;

pub use audit::{AuditFilter, filter, render_text};
pub use journal::{Event, Journal, JournalEntry, JournalError, Replay, TornLine};
