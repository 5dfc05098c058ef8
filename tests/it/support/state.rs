//! The state backends under test: SQLite in a temporary directory, and PostgreSQL as a fresh
//! database on the throwaway server `tests/run` starts (`VAULT_TRIAGE_TEST_POSTGRES_URL`).
//! Behaviour tests run once per backend through [`Backend::ALL`].

use std::str::FromStr as _;
use std::sync::Arc;

use sqlx::ConnectOptions as _;
use vault_triage::config::StateSection;
use vault_triage::store::Store;

/// The variable `tests/run` sets to the throwaway PostgreSQL server's URL.
pub const POSTGRES_URL_VAR: &str = "VAULT_TRIAGE_TEST_POSTGRES_URL";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Both, unless the build skips PostgreSQL deliberately (`VAULT_TRIAGE_SKIP_POSTGRES=1`).
    pub const ALL: &'static [Backend] = if cfg!(skip_postgres) {
        &[Backend::Sqlite]
    } else {
        &[Backend::Sqlite, Backend::Postgres]
    };
}

/// A fresh, empty state of `backend`; the directory lives as long as the guard.
pub struct FreshState {
    pub settings: StateSection,
    pub backend: Backend,
    pub dir: tempfile::TempDir,
}

impl FreshState {
    pub async fn new(backend: Backend) -> FreshState {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(fresh_database().await),
        };
        FreshState {
            settings: StateSection {
                dir: dir.path().join("state"),
                url,
                ..StateSection::default()
            },
            backend,
            dir,
        }
    }

    /// A store on this state that holds a new term (the writer).
    pub async fn writer(&self) -> Arc<Store> {
        Arc::new(Store::open_writer(&self.settings).await.expect("the store"))
    }

    /// A store on this state that only reads.
    pub async fn reader(&self) -> Store {
        Store::open(&self.settings).await.expect("the store")
    }
}

/// The test server's URL; fails the test with how to get one.
pub fn postgres_server() -> String {
    std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{POSTGRES_URL_VAR} is not set: run the tests with `bash tests/run`, which starts a \
             throwaway PostgreSQL server (Debian's `postgresql`) and sets it; build with \
             VAULT_TRIAGE_SKIP_POSTGRES=1 to skip the PostgreSQL tests deliberately (they show \
             as ignored)"
        )
    })
}

/// A new database on the test server; returns its URL.
pub async fn fresh_database() -> String {
    let server = postgres_server();
    let name = vault_triage::id::unguessable("vt_");
    let mut admin = sqlx::postgres::PgConnectOptions::from_str(&server)
        .expect("the test server URL")
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connecting to the test PostgreSQL at {server}: {e}"));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("CREATE DATABASE");
    let mut url = url::Url::parse(&server).expect("the test server URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// Records what `changes` of request `id` would have recorded, one after the other, without
/// running anything (a process that stopped right after them).
pub async fn record_as_if(
    store: &Store,
    id: &vault_triage::approval::RequestId,
    changes: &[vault_triage::approval::request::Change],
) {
    for change in changes {
        let stored = store
            .load_request(id)
            .await
            .expect("the state")
            .expect("the request");
        let mut doc = stored.request.clone();
        doc.apply(change);
        store
            .record(
                vault_triage::store::Record::event(
                    chrono::Utc::now(),
                    vault_triage::store::event::event_for(id, change),
                )
                .change(vault_triage::store::Change::Request {
                    doc: &doc,
                    version: stored.version,
                }),
            )
            .await
            .expect("recorded");
    }
}

/// A granted approval by `actor` under `policy`, as a change.
pub fn granted(
    policy: &vault_triage::approval::Policy,
    actor: vault_triage::approval::Actor,
) -> vault_triage::approval::request::Change {
    vault_triage::approval::request::Change::Granted(vault_triage::approval::Decision {
        person: policy.identity(&actor),
        actor,
        at: chrono::Utc::now(),
    })
}

/// Every audit record of the SQLite state in `dir` (what `vault-triage audit` lists).
pub async fn audit_in(dir: &std::path::Path) -> Vec<vault_triage::store::JournalEntry> {
    let store = Store::open(&StateSection {
        dir: dir.to_path_buf(),
        ..StateSection::default()
    })
    .await
    .expect("the state");
    store
        .audit(&vault_triage::store::AuditFilter::default())
        .await
        .expect("the audit")
        .0
}
