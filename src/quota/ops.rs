//! What both ledgers speak: the operations ([`Op`]), their answers ([`Answer`]), the errors
//! ([`LedgerError`]), the settings a store is opened with, and the bound every operation runs
//! under ([`within`]). Kept apart from [`super::store`], which picks and opens a backend, so the
//! backends (`ledger.rs`, `batch.rs`, `postgres/`) depend on this vocabulary and not on the
//! module that depends on them.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::model::{Decision, Deployment, Env, EnvUsage, Key, RealmConfig, State};

/// SQLite durability setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sync {
    /// fsync on every commit (default): acknowledged means durable.
    Full,
    /// fsync at checkpoints (WAL): survives process crashes, not power loss.
    Normal,
}

/// Ledger failures.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// SQLite failed on the ledger file.
    #[error("ledger {}: {source}", path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// The disk is full.
    #[error("ledger {}: no space left on device\n  help: free space on its file system; the failed request was not recorded", path.display())]
    NoSpace {
        /// The database file.
        path: PathBuf,
    },
    /// No ledger at that path (commands that only read or change deployments never create one).
    #[error("no quota ledger at {}\n  help: check --db; `realmctl quota seed --db FILE -f realm.yaml` creates one", path.display())]
    Missing {
        /// The path given.
        path: PathBuf,
    },
    /// The realm has no config yet.
    #[error(
        "realm `{0}` is not seeded\n  help: run `realmctl quota seed --db FILE -f realm.yaml` first"
    )]
    UnknownRealm(String),
    /// Nothing is deployed under that key.
    #[error("nothing is deployed for {pipeline} major {major} in {environment} of realm `{realm}`")]
    NotDeployed {
        /// Realm.
        realm: String,
        /// Environment.
        environment: Env,
        /// Pipeline.
        pipeline: String,
        /// Major version.
        major: u32,
    },
    /// The realm was retired: its config is final.
    #[error(
        "realm `{realm}` was retired at {at} (its install was destroyed); its config cannot change\n  help: a destroyed realm is not seeded again; install it under a new name"
    )]
    Retired {
        /// Realm.
        realm: String,
        /// When it was retired (RFC 3339).
        at: String,
    },
    /// A seed would lower the config below what is deployed.
    #[error(
        "refusing to seed realm `{realm}`: {detail}\n  help: undeploy first, or keep the subscriptions/RTUs at least at current use"
    )]
    SeedRefused {
        /// Realm.
        realm: String,
        /// What is deployed beyond the new config.
        detail: String,
    },
    /// A stored value cannot be read back.
    #[error("ledger {db}: corrupt row: {detail}")]
    Corrupt {
        /// The database (file, or URL without password).
        db: String,
        /// What was wrong.
        detail: String,
    },
    /// The database cannot be reached, is shutting down, or did not answer in time. Nothing
    /// was acknowledged; asking again is safe.
    #[error(
        "ledger {db} is unavailable: {detail}\n  help: retry shortly; check that the database is running and reachable"
    )]
    Unavailable {
        /// The database.
        db: String,
        /// What happened.
        detail: String,
    },
    /// The database was written by a newer realmctl.
    #[error(
        "ledger {db} has schema version {found}, newer than this realmctl understands ({known})\n  help: run a realmctl at least as new as the one that migrated it"
    )]
    NewerSchema {
        /// The database.
        db: String,
        /// Its schema version.
        found: i64,
        /// The newest this build knows.
        known: i64,
    },
    /// The database's schema is older than this build (or absent).
    #[error(
        "ledger {db} has schema version {found}; this realmctl needs {known}\n  help: run `realmctl quota migrate --db URL` (or start `quota serve`, which migrates)"
    )]
    NotMigrated {
        /// The database.
        db: String,
        /// Its schema version (0: none).
        found: i64,
        /// The version this build needs.
        known: i64,
    },
    /// PostgreSQL refused or failed a statement (not a connection problem).
    #[error("ledger {db}: {detail}")]
    Postgres {
        /// The database (URL without password).
        db: String,
        /// The SQLSTATE code and message.
        detail: String,
    },
    /// TLS to the database failed: the certificate is not trusted or does not name the host.
    #[error(
        "ledger {db}: TLS: {detail}\n  help: the server's certificate must chain to a CA in the trust store (add a private CA with SSL_CERT_FILE) and name the host in the URL"
    )]
    Tls {
        /// The database.
        db: String,
        /// What the TLS layer said.
        detail: String,
    },
    /// The database URL cannot be used.
    #[error(
        "invalid database URL: {detail}\n  help: use a file path for SQLite, or postgres://USER@HOST:PORT/DBNAME (password from PGPASSWORD)"
    )]
    BadUrl {
        /// What is wrong (never the password).
        detail: String,
    },
    /// A batch's commit failed: none of its operations happened.
    #[error("ledger {db}: the commit failed, nothing was recorded: {detail}")]
    CommitFailed {
        /// The database.
        db: String,
        /// Why.
        detail: String,
    },
}

impl LedgerError {
    /// Whether the database is down or slow rather than the request wrong (HTTP 503).
    pub fn is_unavailable(&self) -> bool {
        match self {
            LedgerError::Unavailable { .. } => true,
            LedgerError::Sqlite { source, .. } => matches!(
                source.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ),
            _ => false,
        }
    }

    /// The same failure for every operation of a batch whose commit failed.
    pub(crate) fn for_each_of_batch(&self) -> LedgerError {
        match self {
            LedgerError::NoSpace { path } => LedgerError::NoSpace { path: path.clone() },
            LedgerError::Unavailable { db, detail } => LedgerError::Unavailable {
                db: db.clone(),
                detail: detail.clone(),
            },
            e if e.is_unavailable() => LedgerError::Unavailable {
                db: e.db(),
                detail: e.to_string(),
            },
            e => LedgerError::CommitFailed {
                db: e.db(),
                detail: e.to_string(),
            },
        }
    }

    /// The database the failure concerns, in words.
    fn db(&self) -> String {
        match self {
            LedgerError::Sqlite { path, .. }
            | LedgerError::NoSpace { path }
            | LedgerError::Missing { path } => path.display().to_string(),
            LedgerError::Corrupt { db, .. }
            | LedgerError::Unavailable { db, .. }
            | LedgerError::NewerSchema { db, .. }
            | LedgerError::NotMigrated { db, .. }
            | LedgerError::Postgres { db, .. }
            | LedgerError::Tls { db, .. }
            | LedgerError::CommitFailed { db, .. } => db.clone(),
            LedgerError::BadUrl { .. }
            | LedgerError::UnknownRealm(_)
            | LedgerError::Retired { .. }
            | LedgerError::NotDeployed { .. }
            | LedgerError::SeedRefused { .. } => String::new(),
        }
    }
}

/// A realm's usage, environment by environment, with its deployments.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RealmStatus {
    /// Realm.
    pub realm: String,
    /// Its config.
    pub config: RealmConfig,
    /// Test usage.
    pub test: EnvUsage,
    /// Prod usage.
    pub prod: EnvUsage,
    /// Active deployments.
    pub deployments: Vec<Deployment>,
    /// When the realm was retired (RFC 3339), if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<String>,
}

impl RealmStatus {
    /// The status of `realm` from its config and deployments.
    pub fn new(realm: &str, config: RealmConfig, state: State) -> Self {
        RealmStatus {
            realm: realm.to_owned(),
            config,
            test: super::model::usage(&config, &state, Env::Test),
            prod: super::model::usage(&config, &state, Env::Prod),
            deployments: state.into_values().collect(),
            retired_at: None,
        }
    }
}

/// One decision-log entry.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionRecord {
    /// Sequence number.
    pub id: i64,
    /// When (RFC 3339).
    pub at: String,
    /// Who asked.
    pub actor: String,
    /// `deploy`, `undeploy`, `seed` or `retire`.
    pub action: String,
    /// What was asked, as the log holds it (a deployment, a key, a config).
    pub request: serde_json::Value,
    /// Admitted (or done).
    pub admitted: bool,
    /// Denial reason.
    pub reason: Option<String>,
    /// Explanation.
    pub detail: String,
}

/// A decision-log row's request as JSON (rows hold it as JSON text; anything else is kept as
/// the text it is).
pub(crate) fn request_value(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_owned()))
}

impl Op {
    /// [`Op::Decisions`]: the whole log of `realm`.
    pub fn decisions(realm: &str) -> Op {
        Op::Decisions {
            realm: realm.to_owned(),
            after: 0,
            limit: None,
        }
    }
}

/// Runs `f`, or gives up after `limit`: the database did not answer in time, which is
/// [`LedgerError::Unavailable`] (HTTP 503), never a decision. Both backends bound every
/// operation with it.
pub(crate) async fn within<T>(
    db: &str,
    limit: Duration,
    f: impl Future<Output = Result<T, LedgerError>>,
) -> Result<T, LedgerError> {
    tokio::time::timeout(limit, f).await.unwrap_or_else(|_| {
        Err(LedgerError::Unavailable {
            db: db.to_owned(),
            detail: format!(
                "no answer within {} s (the database is unreachable, busy or stalled)",
                limit.as_secs_f64()
            ),
        })
    })
}

/// The time of a decision-log entry (RFC 3339, UTC).
pub(crate) fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// One operation on the ledger, the same for both backends.
#[derive(Debug, Clone)]
pub enum Op {
    /// Create or update a realm's config (refused below current use; the refusal is logged).
    Seed {
        /// Realm.
        realm: String,
        /// Its config.
        config: RealmConfig,
        /// Who asks (decision log).
        actor: String,
    },
    /// Decide and, when admitted, record a deployment.
    Deploy {
        /// Realm.
        realm: String,
        /// The request.
        request: Deployment,
        /// The request as the decision log holds it (JSON), written where the operation is
        /// made — on SQLite, outside the one writer thread every admission waits for.
        logged: String,
        /// Who asks.
        actor: String,
    },
    /// Decide without recording anything.
    WhatIf {
        /// Realm.
        realm: String,
        /// The request.
        request: Deployment,
    },
    /// Remove the active version under a key.
    Undeploy {
        /// Realm.
        realm: String,
        /// What to remove.
        key: Key,
        /// Who asks.
        actor: String,
    },
    /// Usage and deployments.
    Status {
        /// Realm.
        realm: String,
    },
    /// The decision log, oldest first: the entries after `after` (an entry id; 0 from the
    /// start), at most `limit` of them (`None`: all).
    Decisions {
        /// Realm.
        realm: String,
        /// Entries with a greater id only.
        after: i64,
        /// At most this many.
        limit: Option<u32>,
    },
    /// Retire the realm (`realmctl destroy`): nothing new is admitted from then on, its config
    /// is final, the log is kept. Retiring a retired realm changes nothing.
    Retire {
        /// Realm.
        realm: String,
        /// Who asks (decision log).
        actor: String,
    },
}

impl Op {
    /// [`Op::Seed`].
    pub fn seed(realm: &str, config: RealmConfig, actor: &str) -> Op {
        Op::Seed {
            realm: realm.to_owned(),
            config,
            actor: actor.to_owned(),
        }
    }
    /// [`Op::Deploy`].
    pub fn deploy(realm: &str, request: &Deployment, actor: &str) -> Op {
        Op::Deploy {
            realm: realm.to_owned(),
            request: request.clone(),
            logged: request.to_json_string(),
            actor: actor.to_owned(),
        }
    }
    /// [`Op::WhatIf`].
    pub fn what_if(realm: &str, request: &Deployment) -> Op {
        Op::WhatIf {
            realm: realm.to_owned(),
            request: request.clone(),
        }
    }
    /// [`Op::Undeploy`].
    pub fn undeploy(realm: &str, key: &Key, actor: &str) -> Op {
        Op::Undeploy {
            realm: realm.to_owned(),
            key: key.clone(),
            actor: actor.to_owned(),
        }
    }
    /// [`Op::Retire`].
    pub fn retire(realm: &str, actor: &str) -> Op {
        Op::Retire {
            realm: realm.to_owned(),
            actor: actor.to_owned(),
        }
    }
    /// Whether it may write (and so needs the realm's write lock).
    pub fn writes(&self) -> bool {
        matches!(
            self,
            Op::Seed { .. } | Op::Deploy { .. } | Op::Undeploy { .. } | Op::Retire { .. }
        )
    }
    /// The realm it concerns.
    pub fn realm(&self) -> &str {
        match self {
            Op::Seed { realm, .. }
            | Op::Deploy { realm, .. }
            | Op::WhatIf { realm, .. }
            | Op::Undeploy { realm, .. }
            | Op::Status { realm }
            | Op::Decisions { realm, .. }
            | Op::Retire { realm, .. } => realm,
        }
    }
}

/// The answer to an [`Op`].
#[derive(Debug, Clone)]
pub enum Answer {
    /// The seed was stored.
    Seeded,
    /// A decision (deploy, what-if).
    Decided(Decision),
    /// What was removed.
    Undeployed(Deployment),
    /// Usage and deployments.
    Status(RealmStatus),
    /// The decision log.
    Decisions(Vec<DecisionRecord>),
    /// The realm is retired.
    Retired(Retirement),
}

/// A realm's retirement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Retirement {
    /// Realm.
    pub realm: String,
    /// When it was retired (RFC 3339): the first retirement's time, however often it is asked.
    pub retired_at: String,
    /// Whether this request retired it (false: it already was).
    pub now: bool,
}

/// An answer of another kind than the operation asks for: a bug, reported as one.
fn mismatch(what: &str) -> LedgerError {
    LedgerError::CommitFailed {
        db: String::new(),
        detail: format!("internal error: the ledger answered something other than {what}"),
    }
}

impl Answer {
    /// The decision of a deploy or what-if.
    pub fn decision(self) -> Result<Decision, LedgerError> {
        match self {
            Answer::Decided(d) => Ok(d),
            _ => Err(mismatch("a decision")),
        }
    }
    /// What an undeploy removed.
    pub fn undeployed(self) -> Result<Deployment, LedgerError> {
        match self {
            Answer::Undeployed(d) => Ok(d),
            _ => Err(mismatch("a removal")),
        }
    }
    /// A status.
    pub fn status(self) -> Result<RealmStatus, LedgerError> {
        match self {
            Answer::Status(s) => Ok(s),
            _ => Err(mismatch("a status")),
        }
    }
    /// A retirement.
    pub fn retired(self) -> Result<Retirement, LedgerError> {
        match self {
            Answer::Retired(r) => Ok(r),
            _ => Err(mismatch("a retirement")),
        }
    }
    /// A decision log.
    pub fn decisions(self) -> Result<Vec<DecisionRecord>, LedgerError> {
        match self {
            Answer::Decisions(d) => Ok(d),
            _ => Err(mismatch("a decision log")),
        }
    }
}

/// Whether opening may create (or migrate) the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    /// Create the ledger or migrate its schema when needed (`seed`, `serve`, `migrate`).
    CreateOrMigrate,
    /// The ledger must exist at the current schema (`deploy`, `status`, …).
    Existing,
}

/// Bounds and settings of a store.
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    /// SQLite durability.
    pub sync: Sync,
    /// Each operation, including waiting for a connection, ends within this.
    pub timeout: Duration,
    /// PostgreSQL connections kept (per process).
    pub pool_size: usize,
    /// Test builds only: the SQLite writer answers each batch before committing it (a fault
    /// the durability test must catch).
    #[cfg(feature = "test-actions")]
    pub ack_before_commit: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            sync: Sync::Full,
            timeout: Duration::from_secs(5),
            pool_size: 16,
            #[cfg(feature = "test-actions")]
            ack_before_commit: false,
        }
    }
}

/// What `quota migrate` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Migrated {
    /// Schema version before.
    pub from: i64,
    /// Schema version after.
    pub to: i64,
}
