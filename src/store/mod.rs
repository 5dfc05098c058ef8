//! State on real storage (design §11.4): incidents, their threads, approval requests and the
//! audit trail, in SQLite (the default: `state.db` in `state.dir`, WAL, each commit synced
//! before the caller acts on it) or PostgreSQL (`[state] url`, for several replicas).
//!
//! One interface for both: [`Store::record`] appends an [`Event`] to the audit trail and, in
//! the same transaction, the new state of the request or incident it changes. Every write
//! carries the writer's leadership term ([`Store::claim_term`]) and fails once a newer term
//! exists, so a deposed leader changes nothing; a request is updated only from the version
//! the writer read, so two writers cannot both move it (one execution, however many clicks).
//! At start [`Store::load_live`] reads live state only (open incidents and requests, and the
//! closed ones younger than `[state] retention`), never the history, which stays queryable
//! through [`Store::audit`]. An old `journal.jsonl` is imported once, then renamed.
//!
//! Database calls run on the database driver's own connections and threads: a slow commit
//! delays the caller that waits for it, never a tokio worker or an acknowledgement.

pub mod audit;
pub mod event;
pub mod legacy;
mod schema;
mod sql;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use audit::{AuditFilter, filter, render_text};
pub use event::{Event, JournalEntry};

use crate::approval::{ApprovalRequest, RequestId};
use crate::config::StateSection;
use crate::diagnosis::Action;

/// The SQLite database's file name inside `state.dir`.
pub const DATABASE_FILE: &str = "state.db";
/// How long a call waits for a database connection (PostgreSQL) or lock (SQLite).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// PostgreSQL connections per replica.
const POSTGRES_CONNECTIONS: u32 = 8;

/// Why the store could not do something. No variant carries a password or a token.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the state database ({place}) failed: {detail}")]
    Database { place: String, detail: String },
    #[error(
        "a newer leader holds the state (term {current}; this replica's is {mine}): nothing was recorded"
    )]
    Fenced { mine: i64, current: i64 },
    #[error("the request changed meanwhile (another writer got there first): nothing was recorded")]
    Conflict,
    #[error("this replica does not hold the state (no leadership term): it can only read")]
    NotWriter,
    #[error("an entry could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("the state settings are invalid: {0}")]
    Settings(String),
    #[error("injected storage fault: {0}")]
    Injected(String),
    #[error("importing the old journal {path}: {detail}")]
    Import { path: PathBuf, detail: String },
}

/// A fault injected into every write (drills and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Writes fail, as on a full disk.
    Fail,
    /// Commits take this long (a slow disk or a distant database).
    Delay(Duration),
}

/// The state of a request or incident a write brings about.
#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    /// Only the event (a refused click, an executor step, a triage).
    None,
    /// A request as it is after the event. `version` is the version the writer read (0: the
    /// request is new); the write fails with [`StoreError::Conflict`] when it moved since.
    Request {
        doc: &'a ApprovalRequest,
        version: i64,
    },
    /// An incident as it is after the event (its model as JSON).
    Incident {
        id: &'a str,
        doc: &'a serde_json::Value,
        resolved_at: Option<DateTime<Utc>>,
    },
}

/// One write: an event for the audit trail and the state it changes.
#[derive(Debug, Clone)]
pub struct Record<'a> {
    pub at: DateTime<Utc>,
    pub event: Event,
    pub incident: Option<&'a str>,
    pub actor: Option<&'a str>,
    pub change: Change<'a>,
}

impl<'a> Record<'a> {
    /// An event stamped `at`, changing nothing else.
    pub fn event(at: DateTime<Utc>, event: Event) -> Self {
        Self {
            at,
            event,
            incident: None,
            actor: None,
            change: Change::None,
        }
    }

    pub fn incident(mut self, incident: Option<&'a str>) -> Self {
        self.incident = incident;
        self
    }

    pub fn actor(mut self, actor: Option<&'a str>) -> Self {
        self.actor = actor;
        self
    }

    pub fn change(mut self, change: Change<'a>) -> Self {
        self.change = change;
        self
    }
}

/// A request as loaded: its document, version and when it closed.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRequest {
    pub request: ApprovalRequest,
    pub version: i64,
    pub closed_at: Option<DateTime<Utc>>,
}

/// What a start needs: live state, not history.
#[derive(Debug, Clone, Default)]
pub struct Live {
    /// Open requests and those closed within the retention, oldest first.
    pub requests: Vec<StoredRequest>,
    /// Plans and approval-card places of the loaded requests, in order.
    pub request_events: Vec<JournalEntry>,
    /// Per cluster, when the reviewer token the bot last wrote there expires (`None`: never,
    /// or unknown).
    pub rotated_reviewer: std::collections::HashMap<String, Option<DateTime<Utc>>>,
    /// Rows that could not be read back (skipped and logged).
    pub unreadable: usize,
}

enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Calls the same function of the backend's SQL module ([`sql::sqlite`] or [`sql::postgres`]).
macro_rules! dispatch {
    ($self:expr, $f:ident($($arg:expr),*)) => {
        match &$self.backend {
            Backend::Sqlite(pool) => sql::sqlite::$f(pool $(, $arg)*).await,
            Backend::Postgres(pool) => sql::postgres::$f(pool $(, $arg)*).await,
        }
    };
}

/// The state of a running bot, in a database.
pub struct Store {
    backend: Backend,
    /// Where it is, without credentials (for errors and logs).
    place: String,
    /// This writer's leadership term; 0 until [`Store::claim_term`].
    term: AtomicI64,
    fault: Mutex<Option<Fault>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("place", &self.place)
            .field("term", &self.term.load(Ordering::SeqCst))
            .finish()
    }
}

/// A timestamp as stored: RFC 3339, UTC, microseconds, fixed width (so text order is time
/// order).
pub fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn parse_stamp(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `postgres://user@host:port/db` with any password removed, for messages.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_password(None);
            u.set_query(None);
            u.to_string()
        }
        Err(_) => "postgres (unparsable URL)".into(),
    }
}

impl Store {
    /// Opens the store the settings name (creating the SQLite file and applying migrations),
    /// and imports an old `journal.jsonl` from `state.dir` once. The store can read; to write,
    /// claim a term.
    pub async fn open(settings: &StateSection) -> Result<Store, StoreError> {
        let store = match settings.url.as_deref().filter(|u| !u.is_empty()) {
            Some(url) => Self::open_postgres(url).await?,
            None => Self::open_sqlite(&settings.dir).await?,
        };
        store.migrate().await?;
        store.import_legacy(&settings.dir).await?;
        if let Some(delay) = settings.commit_delay {
            tracing::warn!(
                delay_ms = delay.as_millis() as u64,
                "drill: every state commit is delayed"
            );
            store.inject_fault(Some(Fault::Delay(delay)));
        }
        Ok(store)
    }

    /// [`Store::open`], then [`Store::claim_term`]: the store of the one writer.
    pub async fn open_writer(settings: &StateSection) -> Result<Store, StoreError> {
        let store = Self::open(settings).await?;
        store.claim_term().await?;
        Ok(store)
    }

    async fn open_sqlite(dir: &Path) -> Result<Store, StoreError> {
        let path = dir.join(DATABASE_FILE);
        let place = format!("sqlite {}", path.display());
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Database {
            place: place.clone(),
            detail: format!("creating {}: {e}", dir.display()),
        })?;
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(ACQUIRE_TIMEOUT);
        // One connection: SQLite has one writer, and a write never waits behind a reader.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| db_error(&place, e))?;
        Ok(Store {
            backend: Backend::Sqlite(pool),
            place,
            term: AtomicI64::new(0),
            fault: Mutex::new(None),
        })
    }

    async fn open_postgres(url: &str) -> Result<Store, StoreError> {
        let place = redacted(url);
        // PGPASSWORD (and the other libpq variables) fill what the URL leaves out.
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Settings(format!("state.url ({place}): {e}")))?
            .application_name("vault-triage");
        let pool = PgPoolOptions::new()
            .max_connections(POSTGRES_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| db_error(&place, e))?;
        Ok(Store {
            backend: Backend::Postgres(pool),
            place,
            term: AtomicI64::new(0),
            fault: Mutex::new(None),
        })
    }

    /// Where the state lives, without credentials.
    pub fn place(&self) -> &str {
        &self.place
    }

    /// Whether this is PostgreSQL (shared by replicas) rather than SQLite.
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// This writer's term (0 before [`Store::claim_term`]).
    pub fn term(&self) -> i64 {
        self.term.load(Ordering::SeqCst)
    }

    /// Makes this store the writer: a new leadership term, after which every earlier writer's
    /// writes fail. Returns the term.
    pub async fn claim_term(&self) -> Result<i64, StoreError> {
        let term = dispatch!(self, claim_term()).map_err(|e| db_error(&self.place, e))?;
        self.term.store(term, Ordering::SeqCst);
        tracing::info!(term, state = %self.place, "holding the state");
        Ok(term)
    }

    /// The newest term in the database.
    pub async fn current_term(&self) -> Result<i64, StoreError> {
        dispatch!(self, current_term()).map_err(|e| db_error(&self.place, e))
    }

    /// Makes every write fail, or take longer, until called with `None`.
    pub fn inject_fault(&self, fault: Option<Fault>) {
        *self.fault.lock().unwrap_or_else(|p| p.into_inner()) = fault;
    }

    fn fault(&self) -> Option<Fault> {
        *self.fault.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let now = stamp(Utc::now());
        let applied = dispatch!(self, migrate(&now)).map_err(|e| db_error(&self.place, e))?;
        for version in applied {
            tracing::info!(version, state = %self.place, "schema migration applied");
        }
        Ok(())
    }

    /// Appends `record`'s event and applies its change, in one transaction that fails when a
    /// newer term exists (or the request moved); durable when it returns.
    pub async fn record(&self, record: Record<'_>) -> Result<JournalEntry, StoreError> {
        let mine = self.term();
        if mine == 0 {
            return Err(StoreError::NotWriter);
        }
        match self.fault() {
            Some(Fault::Fail) => {
                return Err(StoreError::Injected("no space left on the device".into()));
            }
            Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
            None => {}
        }
        let body = serde_json::to_string(&record.event)?;
        let kind = record.event.kind();
        let request = record.event.request_id().map(|id| id.to_string());
        let incident = record
            .incident
            .map(str::to_owned)
            .or_else(|| audit::incident_of_event(&record.event).map(str::to_owned));
        let doc = match record.change {
            Change::None => None,
            Change::Request { doc, .. } => Some(serde_json::to_string(doc)?),
            Change::Incident { doc, .. } => Some(serde_json::to_string(doc)?),
        };
        let at = stamp(record.at);
        let (request_state, closed_at, resolved_at, request_key);
        let change = match (&record.change, doc.as_deref()) {
            (Change::Request { doc: r, version }, Some(doc)) => {
                request_key = r.id.to_string();
                request_state = r.state.to_string();
                closed_at = r.state.is_closed().then(|| at.clone());
                Some(sql::ChangeRow::Request {
                    id: &request_key,
                    action: r.action.as_str(),
                    state: &request_state,
                    closed_at: closed_at.as_deref(),
                    doc,
                    version: *version,
                })
            }
            (
                Change::Incident {
                    id,
                    resolved_at: resolved,
                    ..
                },
                Some(doc),
            ) => {
                resolved_at = resolved.map(stamp);
                Some(sql::ChangeRow::Incident {
                    id,
                    resolved_at: resolved_at.as_deref(),
                    doc,
                })
            }
            _ => None,
        };
        let rows = sql::WriteRows {
            term: mine,
            at: &at,
            kind,
            incident: incident.as_deref(),
            actor: record.actor,
            request: request.as_deref(),
            body: &body,
            change,
        };
        let seq = match dispatch!(self, write(&rows)).map_err(|e| db_error(&self.place, e))? {
            Ok(seq) => seq,
            Err(sql::Refused::Fenced { current }) => {
                return Err(StoreError::Fenced { mine, current });
            }
            Err(sql::Refused::Conflict) => return Err(StoreError::Conflict),
        };
        Ok(JournalEntry {
            seq: seq as u64,
            at: record.at,
            incident: record.incident.map(str::to_owned),
            actor: record.actor.map(str::to_owned),
            event: record.event,
        })
    }

    /// Live state: open requests and incidents, and closed ones younger than `retention`
    /// before `now`, with the plans and card places of those requests.
    pub async fn load_live(
        &self,
        now: DateTime<Utc>,
        retention: Duration,
    ) -> Result<Live, StoreError> {
        let cutoff =
            stamp(now - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX / 2));
        let rows = dispatch!(self, live(&cutoff)).map_err(|e| db_error(&self.place, e))?;
        let (requests, events, rotated) = (rows.requests, rows.request_events, rows.rotated);
        let mut live = Live::default();
        for (doc, version, closed_at) in requests {
            match serde_json::from_str::<ApprovalRequest>(&doc) {
                Ok(request) => live.requests.push(StoredRequest {
                    request,
                    version,
                    closed_at: closed_at.as_deref().and_then(parse_stamp),
                }),
                Err(e) => {
                    live.unreadable += 1;
                    tracing::warn!(error = %e, "an unreadable approval request in the state; skipped");
                }
            }
        }
        live.requests.sort_by(|a, b| {
            (a.request.created_at, &a.request.id).cmp(&(b.request.created_at, &b.request.id))
        });
        for (seq, at, incident, actor, body) in events {
            match entry_from_row(seq, &at, incident, actor, &body) {
                Some(e) => live.request_events.push(e),
                None => live.unreadable += 1,
            }
        }
        // Newest first: the first body of each cluster is its last rotation.
        for body in rotated {
            if let Ok(Event::ReviewerRotated {
                cluster,
                expires_at,
                ..
            }) = serde_json::from_str(&body)
            {
                live.rotated_reviewer.entry(cluster).or_insert(expires_at);
            }
        }
        Ok(live)
    }

    /// The live incidents (open, or resolved within `retention` before `now`), each read by
    /// `read` straight from its row, a page at a time: memory holds the models, never the
    /// whole set of documents. Returns them and how many could not be read (skipped, logged).
    pub async fn live_incidents<T>(
        &self,
        now: DateTime<Utc>,
        retention: Duration,
        read: impl Fn(&str) -> Result<T, serde_json::Error>,
    ) -> Result<(Vec<T>, usize), StoreError> {
        const PAGE: i64 = 500;
        let cutoff =
            stamp(now - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX / 2));
        let (mut out, mut unreadable, mut after) = (Vec::new(), 0, String::new());
        loop {
            let page = dispatch!(self, live_incidents(&cutoff, &after, PAGE))
                .map_err(|e| db_error(&self.place, e))?;
            let full = page.len() as i64 == PAGE;
            for (id, doc) in page {
                match read(&doc) {
                    Ok(model) => out.push(model),
                    Err(e) => {
                        unreadable += 1;
                        tracing::warn!(incident = %id, error = %e, "an unreadable incident in the state; skipped");
                    }
                }
                after = id;
            }
            if !full {
                return Ok((out, unreadable));
            }
        }
    }

    /// One request as the database has it now.
    pub async fn load_request(&self, id: &RequestId) -> Result<Option<StoredRequest>, StoreError> {
        let row = dispatch!(self, request(&id.to_string()));
        let Some((doc, version, closed_at)) = row.map_err(|e| db_error(&self.place, e))? else {
            return Ok(None);
        };
        Ok(Some(StoredRequest {
            request: serde_json::from_str(&doc)?,
            version,
            closed_at: closed_at.as_deref().and_then(parse_stamp),
        }))
    }

    /// Audit records matching `f`, in order, and the action of every request (for rendering).
    /// The incident and action filters are queries; the actor filter, which also matches
    /// platform ids and display names, narrows a query by text first.
    pub async fn audit(
        &self,
        f: &AuditFilter,
    ) -> Result<(Vec<JournalEntry>, HashMap<RequestId, Action>), StoreError> {
        let mut sql = String::from(
            "SELECT e.seq, e.at, e.incident, e.actor, e.body FROM events e LEFT JOIN requests r ON r.id = e.request WHERE 1 = 1",
        );
        let mut binds: Vec<String> = Vec::new();
        if let Some(i) = &f.incident {
            binds.push(i.clone());
            sql.push_str(&format!(" AND e.incident = ${}", binds.len()));
        }
        if let Some(a) = &f.action {
            binds.push(a.clone());
            sql.push_str(&format!(" AND r.action = ${}", binds.len()));
        }
        if let Some(a) = &f.actor {
            binds.push(a.clone());
            let n = binds.len();
            let escaped = a
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            binds.push(format!("%{escaped}%"));
            sql.push_str(&format!(
                " AND (e.actor = ${n} OR e.body LIKE ${} ESCAPE '\\')",
                binds.len()
            ));
        }
        sql.push_str(" ORDER BY e.seq");
        let result = dispatch!(self, audit(&sql, &binds));
        let (rows, actions) = result.map_err(|e| db_error(&self.place, e))?;
        let mut entries: Vec<JournalEntry> = rows
            .into_iter()
            .filter_map(|(seq, at, incident, actor, body)| {
                entry_from_row(seq, &at, incident, actor, &body)
            })
            .collect();
        if f.actor.is_some() {
            let only_actor = AuditFilter {
                actor: f.actor.clone(),
                ..AuditFilter::default()
            };
            let kept: Vec<u64> = filter(&entries, &only_actor)
                .iter()
                .map(|e| e.seq)
                .collect();
            entries.retain(|e| kept.contains(&e.seq));
        }
        let actions = actions
            .into_iter()
            .filter_map(|(id, action)| {
                let action = serde_json::from_value(serde_json::Value::String(action)).ok()?;
                Some((RequestId::try_from(id).ok()?, action))
            })
            .collect();
        Ok((entries, actions))
    }

    /// Imports `dir/journal.jsonl` once: its entries become the first events, its requests
    /// and incidents their rows, all in one transaction; the file is then renamed.
    async fn import_legacy(&self, dir: &Path) -> Result<(), StoreError> {
        let Some(path) = legacy::journal_in(dir) else {
            return Ok(());
        };
        let import_error = |detail: String| StoreError::Import {
            path: path.clone(),
            detail,
        };
        let done = dispatch!(self, imported()).map_err(|e| db_error(&self.place, e))?;
        if done.is_none() {
            let replay = legacy::read(&path).map_err(|e| import_error(e.to_string()))?;
            for torn in &replay.torn {
                tracing::warn!(line = torn.line, reason = %torn.reason, "old journal line skipped");
            }
            let rows = project(&replay.entries)?;
            let count = replay.entries.len();
            let now = stamp(Utc::now());
            let result = dispatch!(self, import(&rows, &now));
            result.map_err(|e| import_error(e.to_string()))?;
            tracing::info!(entries = count, from = %path.display(), "the old journal was imported");
        }
        let renamed = dir.join(legacy::IMPORTED_FILE);
        std::fs::rename(&path, &renamed)
            .map_err(|e| import_error(format!("renaming it to {}: {e}", renamed.display())))?;
        Ok(())
    }
}

/// What an old journal becomes: its events as rows, and each request's and incident's last
/// state (the entries replayed as the journal's own restore did).
fn project(entries: &[JournalEntry]) -> Result<sql::ImportRows, StoreError> {
    let mut rows = sql::ImportRows {
        events: Vec::new(),
        requests: Vec::new(),
        incidents: Vec::new(),
    };
    let mut requests: Vec<(ApprovalRequest, Option<DateTime<Utc>>)> = Vec::new();
    let mut incidents: Vec<(String, serde_json::Value)> = Vec::new();
    for e in entries {
        rows.events.push((
            e.seq as i64,
            stamp(e.at),
            e.event.kind(),
            e.incident
                .clone()
                .or_else(|| audit::incident_of_event(&e.event).map(str::to_owned)),
            e.actor.clone(),
            e.event.request_id().map(|id| id.to_string()),
            serde_json::to_string(&e.event)?,
        ));
        let (id, change) = match &e.event {
            Event::ApprovalProposed { request } => {
                requests.push((ApprovalRequest::clone(request), None));
                continue;
            }
            Event::IncidentOpened { incident, payload }
            | Event::IncidentUpdated { incident, payload } => {
                match incidents.iter_mut().find(|(id, _)| id == incident) {
                    Some(slot) => slot.1 = payload.clone(),
                    None => incidents.push((incident.clone(), payload.clone())),
                }
                continue;
            }
            other => match event::request_change(other, e.at) {
                Some(change) => change,
                None => continue,
            },
        };
        if let Some((request, closed)) = requests.iter_mut().find(|(r, _)| r.id == id) {
            request.apply(&change);
            if request.state.is_closed() && closed.is_none() {
                *closed = Some(e.at);
            }
        }
    }
    for (request, closed_at) in requests {
        rows.requests.push((
            request.id.to_string(),
            request.action.as_str().to_owned(),
            request.state.to_string(),
            closed_at.map(stamp),
            serde_json::to_string(&request)?,
        ));
    }
    for (id, doc) in incidents {
        let resolved_at = doc
            .get("resolved_at")
            .and_then(|v| v.as_str())
            .and_then(parse_stamp)
            .map(stamp);
        rows.incidents
            .push((id, resolved_at, serde_json::to_string(&doc)?));
    }
    Ok(rows)
}

fn entry_from_row(
    seq: i64,
    at: &str,
    incident: Option<String>,
    actor: Option<String>,
    body: &str,
) -> Option<JournalEntry> {
    let event = match serde_json::from_str::<Event>(body) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(seq, error = %e, "an unreadable event in the state; skipped");
            return None;
        }
    };
    Some(JournalEntry {
        seq: seq as u64,
        at: parse_stamp(at)?,
        incident,
        actor,
        event,
    })
}

fn db_error(place: &str, e: sqlx::Error) -> StoreError {
    StoreError::Database {
        place: place.to_owned(),
        detail: e.to_string(),
    }
}
