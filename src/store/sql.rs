//! The store's SQL, written once and compiled for each backend: [`sqlite`] and [`postgres`]
//! hold the same functions over their own pool type (placeholders `$1…` work in both; where
//! the dialects differ the function says so). Plain rows in, plain rows out: the store above
//! turns them into the crate's types.

/// A write's rows (see `Store::record`).
pub struct WriteRows<'a> {
    pub term: i64,
    pub at: &'a str,
    pub kind: &'a str,
    pub incident: Option<&'a str>,
    pub actor: Option<&'a str>,
    pub request: Option<&'a str>,
    pub body: &'a str,
    pub change: Option<ChangeRow<'a>>,
}

/// The state row a write changes.
pub enum ChangeRow<'a> {
    Request {
        id: &'a str,
        action: &'a str,
        state: &'a str,
        closed_at: Option<&'a str>,
        doc: &'a str,
        /// The version the writer read; 0 for a new request.
        version: i64,
    },
    Incident {
        id: &'a str,
        resolved_at: Option<&'a str>,
        doc: &'a str,
    },
}

/// Why a write was refused by the database's state (not by an error).
pub enum Refused {
    /// A newer term exists.
    Fenced { current: i64 },
    /// The request's version moved.
    Conflict,
}

/// An event row: seq, at, incident, actor, body.
pub type EventRow = (i64, String, Option<String>, Option<String>, String);

/// What a start reads.
pub struct LiveRows {
    /// Doc, version, closed_at.
    pub requests: Vec<(String, i64, Option<String>)>,
    /// Plans and card places of those requests.
    pub request_events: Vec<EventRow>,
    /// The bodies of the newest `reviewer_rotated` events, newest first (the newest of each
    /// cluster is among them).
    pub rotated: Vec<String>,
}

/// An imported event row: seq, at, kind, incident, actor, request, body.
pub type ImportedEvent = (
    i64,
    String,
    &'static str,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
);

/// An old journal's rows.
pub struct ImportRows {
    pub events: Vec<ImportedEvent>,
    /// Id, action, state, closed_at, doc.
    pub requests: Vec<(String, String, String, Option<String>, String)>,
    /// Id, resolved_at, doc.
    pub incidents: Vec<(String, Option<String>, String)>,
}

macro_rules! backend {
    ($module:ident, $Pool:ty, $pg:expr) => {
        pub mod $module {
            use sqlx::Row as _;

            use super::{ChangeRow, EventRow, ImportRows, LiveRows, Refused, WriteRows};
            use crate::store::schema::MIGRATIONS;

            const PG: bool = $pg;

            pub async fn claim_term(pool: &$Pool) -> Result<i64, sqlx::Error> {
                sqlx::query_scalar(
                    "UPDATE leadership SET term = term + 1 WHERE id = 1 RETURNING term",
                )
                .fetch_one(pool)
                .await
            }

            pub async fn current_term(pool: &$Pool) -> Result<i64, sqlx::Error> {
                sqlx::query_scalar("SELECT term FROM leadership WHERE id = 1")
                    .fetch_one(pool)
                    .await
            }

            /// Applies the missing migrations; returns their versions.
            pub async fn migrate(pool: &$Pool, now: &str) -> Result<Vec<i64>, sqlx::Error> {
                let mut tx = pool.begin().await?;
                if PG {
                    // Replicas starting together migrate one after the other.
                    sqlx::query("SELECT pg_advisory_xact_lock(7461657)")
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)",
                )
                .execute(&mut *tx)
                .await?;
                let applied: Vec<i64> =
                    sqlx::query_scalar("SELECT version FROM schema_migrations")
                        .fetch_all(&mut *tx)
                        .await?;
                let mut done = Vec::new();
                for m in MIGRATIONS {
                    if applied.contains(&m.version) {
                        continue;
                    }
                    // One statement at a time (the migrations hold no `;` inside a statement).
                    let script = if PG { m.postgres } else { m.sqlite };
                    for statement in script.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                        sqlx::query(statement).execute(&mut *tx).await?;
                    }
                    sqlx::query(
                        "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                    )
                    .bind(m.version)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    done.push(m.version);
                }
                tx.commit().await?;
                Ok(done)
            }

            /// One write: the term check, the state row, the event; one transaction.
            pub async fn write(
                pool: &$Pool,
                w: &WriteRows<'_>,
            ) -> Result<Result<i64, Refused>, sqlx::Error> {
                let mut tx = pool.begin().await?;
                // The term check comes first and holds until commit: on PostgreSQL a shared
                // lock on the row (a new leader's claim waits for this commit), on SQLite the
                // database's write lock, taken by the no-op update.
                let current: i64 = if PG {
                    sqlx::query_scalar("SELECT term FROM leadership WHERE id = 1 FOR SHARE")
                        .fetch_one(&mut *tx)
                        .await?
                } else {
                    sqlx::query("UPDATE leadership SET term = term WHERE id = 1")
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query_scalar("SELECT term FROM leadership WHERE id = 1")
                        .fetch_one(&mut *tx)
                        .await?
                };
                if current != w.term {
                    return Ok(Err(Refused::Fenced { current }));
                }
                match &w.change {
                    None => {}
                    Some(ChangeRow::Request {
                        id,
                        action,
                        state,
                        closed_at,
                        doc,
                        version,
                    }) => {
                        let moved = if *version == 0 {
                            sqlx::query(
                                "INSERT INTO requests (id, action, state, version, closed_at, doc) VALUES ($1, $2, $3, 1, $4, $5) ON CONFLICT (id) DO NOTHING",
                            )
                            .bind(*id)
                            .bind(*action)
                            .bind(*state)
                            .bind(*closed_at)
                            .bind(*doc)
                            .execute(&mut *tx)
                            .await?
                        } else {
                            sqlx::query(
                                "UPDATE requests SET state = $1, version = version + 1, closed_at = $2, doc = $3 WHERE id = $4 AND version = $5",
                            )
                            .bind(*state)
                            .bind(*closed_at)
                            .bind(*doc)
                            .bind(*id)
                            .bind(*version)
                            .execute(&mut *tx)
                            .await?
                        };
                        if moved.rows_affected() != 1 {
                            return Ok(Err(Refused::Conflict));
                        }
                    }
                    Some(ChangeRow::Incident {
                        id,
                        resolved_at,
                        doc,
                    }) => {
                        sqlx::query(
                            "INSERT INTO incidents (id, resolved_at, doc) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET resolved_at = excluded.resolved_at, doc = excluded.doc",
                        )
                        .bind(*id)
                        .bind(*resolved_at)
                        .bind(*doc)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                let seq: i64 = sqlx::query_scalar(
                    "INSERT INTO events (at, term, kind, incident, actor, request, body) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING seq",
                )
                .bind(w.at)
                .bind(w.term)
                .bind(w.kind)
                .bind(w.incident)
                .bind(w.actor)
                .bind(w.request)
                .bind(w.body)
                .fetch_one(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(Ok(seq))
            }

            /// Live state: rows closed or resolved at or after `cutoff`, or still open.
            pub async fn live(pool: &$Pool, cutoff: &str) -> Result<LiveRows, sqlx::Error> {
                let mut requests = Vec::new();
                for r in sqlx::query(
                    "SELECT doc, version, closed_at FROM requests WHERE closed_at IS NULL OR closed_at >= $1",
                )
                .bind(cutoff)
                .fetch_all(pool)
                .await?
                {
                    requests.push((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?));
                }
                let mut request_events = Vec::new();
                for r in sqlx::query(
                    "SELECT e.seq, e.at, e.incident, e.actor, e.body FROM events e JOIN requests r ON r.id = e.request \
                     WHERE e.kind IN ('plan_recorded', 'approval_card_posted') \
                     AND (r.closed_at IS NULL OR r.closed_at >= $1) ORDER BY e.seq",
                )
                .bind(cutoff)
                .fetch_all(pool)
                .await?
                {
                    request_events.push((
                        r.try_get(0)?,
                        r.try_get(1)?,
                        r.try_get(2)?,
                        r.try_get(3)?,
                        r.try_get(4)?,
                    ));
                }
                let rotated = sqlx::query_scalar(
                    "SELECT body FROM events WHERE kind = 'reviewer_rotated' ORDER BY seq DESC LIMIT 1000",
                )
                .fetch_all(pool)
                .await?;
                Ok(LiveRows {
                    requests,
                    request_events,
                    rotated,
                })
            }

            /// Up to `limit` live incidents (resolved at or after `cutoff`, or open) with ids
            /// after `after`, in id order: id and doc.
            pub async fn live_incidents(
                pool: &$Pool,
                cutoff: &str,
                after: &str,
                limit: i64,
            ) -> Result<Vec<(String, String)>, sqlx::Error> {
                let mut page = Vec::new();
                for r in sqlx::query(
                    "SELECT id, doc FROM incidents WHERE (resolved_at IS NULL OR resolved_at >= $1) AND id > $2 ORDER BY id LIMIT $3",
                )
                .bind(cutoff)
                .bind(after)
                .bind(limit)
                .fetch_all(pool)
                .await?
                {
                    page.push((r.try_get(0)?, r.try_get(1)?));
                }
                Ok(page)
            }

            /// One request's doc, version and closed_at.
            pub async fn request(
                pool: &$Pool,
                id: &str,
            ) -> Result<Option<(String, i64, Option<String>)>, sqlx::Error> {
                match sqlx::query("SELECT doc, version, closed_at FROM requests WHERE id = $1")
                    .bind(id)
                    .fetch_optional(pool)
                    .await?
                {
                    Some(r) => Ok(Some((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))),
                    None => Ok(None),
                }
            }

            /// Events selected by `sql` (with `binds`, all text), and every request's action.
            pub async fn audit(
                pool: &$Pool,
                sql: &str,
                binds: &[String],
            ) -> Result<(Vec<EventRow>, Vec<(String, String)>), sqlx::Error> {
                let mut q = sqlx::query(sql);
                for b in binds {
                    q = q.bind(b.as_str());
                }
                let mut rows = Vec::new();
                for r in q.fetch_all(pool).await? {
                    rows.push((
                        r.try_get(0)?,
                        r.try_get(1)?,
                        r.try_get(2)?,
                        r.try_get(3)?,
                        r.try_get(4)?,
                    ));
                }
                let mut actions = Vec::new();
                for r in sqlx::query("SELECT id, action FROM requests")
                    .fetch_all(pool)
                    .await?
                {
                    actions.push((r.try_get(0)?, r.try_get(1)?));
                }
                Ok((rows, actions))
            }

            /// When the old journal was imported, if it was.
            pub async fn imported(pool: &$Pool) -> Result<Option<String>, sqlx::Error> {
                sqlx::query_scalar("SELECT value FROM meta WHERE key = 'imported_journal'")
                    .fetch_optional(pool)
                    .await
            }

            /// Writes an old journal's rows and the import mark, in one transaction.
            pub async fn import(
                pool: &$Pool,
                rows: &ImportRows,
                now: &str,
            ) -> Result<(), sqlx::Error> {
                let mut tx = pool.begin().await?;
                for (seq, at, kind, incident, actor, request, body) in &rows.events {
                    sqlx::query(
                        "INSERT INTO events (seq, at, term, kind, incident, actor, request, body) VALUES ($1, $2, 0, $3, $4, $5, $6, $7)",
                    )
                    .bind(*seq)
                    .bind(at.as_str())
                    .bind(*kind)
                    .bind(incident.as_deref())
                    .bind(actor.as_deref())
                    .bind(request.as_deref())
                    .bind(body.as_str())
                    .execute(&mut *tx)
                    .await?;
                }
                if PG {
                    sqlx::query(
                        "SELECT setval(pg_get_serial_sequence('events', 'seq'), GREATEST((SELECT MAX(seq) FROM events), 1))",
                    )
                    .execute(&mut *tx)
                    .await?;
                }
                for (id, action, state, closed_at, doc) in &rows.requests {
                    sqlx::query(
                        "INSERT INTO requests (id, action, state, version, closed_at, doc) VALUES ($1, $2, $3, 1, $4, $5) ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(id.as_str())
                    .bind(action.as_str())
                    .bind(state.as_str())
                    .bind(closed_at.as_deref())
                    .bind(doc.as_str())
                    .execute(&mut *tx)
                    .await?;
                }
                for (id, resolved_at, doc) in &rows.incidents {
                    sqlx::query(
                        "INSERT INTO incidents (id, resolved_at, doc) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET resolved_at = excluded.resolved_at, doc = excluded.doc",
                    )
                    .bind(id.as_str())
                    .bind(resolved_at.as_deref())
                    .bind(doc.as_str())
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query("INSERT INTO meta (key, value) VALUES ('imported_journal', $1)")
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await
            }
        }
    };
}

backend!(sqlite, sqlx::SqlitePool, false);
backend!(postgres, sqlx::PgPool, true);
