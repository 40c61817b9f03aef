//! The enforcement core's storage, whichever database holds it.
//!
//! Two backends answer the same [`Op`]s with the same [`Answer`]s and the same decisions:
//! SQLite ([`super::ledger`], the embedded default, behind a group-commit writer in
//! [`super::batch`]) and PostgreSQL ([`super::postgres`], for several `quota serve` replicas on
//! one database). The URL picks the backend ([`DbUrl::parse`]): `postgres://…` or
//! `postgresql://…` is PostgreSQL, anything else is a SQLite file.
//!
//! Every operation is bounded by [`StoreOptions::timeout`]; a database that does not answer in
//! time, or cannot be reached, is [`LedgerError::Unavailable`] (HTTP 503 with `Retry-After`),
//! never a decision. An unavailable answer means "not acknowledged": the request may or may not
//! have been recorded, and asking again is safe because a deployment is keyed by (environment,
//! pipeline, major) and re-deploying the same version replaces it with itself.

use std::path::PathBuf;
use std::sync::Arc;

use super::batch::GroupCommit;
use super::ledger::Ledger;
use super::model::{Decision, Deployment, Key, RealmConfig};
pub use super::ops::{
    Answer, DecisionRecord, LedgerError, Migrated, Op, Open, RealmStatus, Retirement, StoreOptions,
    Sync,
};
use super::postgres::{PgLedger, PgTarget};
use crate::secret::Secret;

/// Where the ledger lives.
#[derive(Debug, Clone)]
pub enum DbUrl {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database.
    Postgres(Box<PgTarget>),
}

impl DbUrl {
    /// `postgres://…` / `postgresql://…` is PostgreSQL (libpq URL syntax); anything else is a
    /// SQLite file path. `password` (e.g. from `PGPASSWORD`) is used when the URL has none.
    pub fn parse(s: &str, password: Option<Secret>) -> Result<DbUrl, LedgerError> {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(DbUrl::Postgres(Box::new(PgTarget::parse(s, password)?)))
        } else {
            Ok(DbUrl::Sqlite(PathBuf::from(s)))
        }
    }

    /// The database in words, never with a password.
    pub fn describe(&self) -> String {
        match self {
            DbUrl::Sqlite(p) => p.display().to_string(),
            DbUrl::Postgres(t) => t.describe(),
        }
    }
}

/// An open ledger of either backend; cheap to clone, safe to share between tasks.
#[derive(Clone)]
pub enum Store {
    /// SQLite behind a group-commit writer.
    Sqlite(Arc<GroupCommit>),
    /// PostgreSQL through a connection pool.
    Postgres(Arc<PgLedger>),
}

impl Store {
    /// Opens the ledger at `url`.
    pub async fn open(url: &DbUrl, mode: Open, o: StoreOptions) -> Result<Store, LedgerError> {
        match url {
            DbUrl::Sqlite(path) => {
                let path = path.clone();
                let ledger = tokio::task::spawn_blocking(move || match mode {
                    Open::CreateOrMigrate => Ledger::open(&path, o.sync),
                    Open::Existing => Ledger::open_existing(&path, o.sync),
                })
                .await
                .map_err(|e| LedgerError::CommitFailed {
                    db: url.describe(),
                    detail: format!("internal error: {e}"),
                })??;
                #[cfg(feature = "test-actions")]
                let ack_first = o.ack_before_commit;
                #[cfg(not(feature = "test-actions"))]
                let ack_first = false;
                Ok(Store::Sqlite(Arc::new(GroupCommit::start_with(
                    ledger, o.timeout, ack_first,
                )?)))
            }
            DbUrl::Postgres(t) => Ok(Store::Postgres(Arc::new(
                PgLedger::connect(t, mode, o).await?,
            ))),
        }
    }

    /// Runs one operation, within the store's timeout.
    pub async fn run(&self, op: Op) -> Result<Answer, LedgerError> {
        match self {
            Store::Sqlite(g) => g.run(op).await,
            // Boxed: the PostgreSQL future is several KiB, and inline it would make every
            // request's future (SQLite's too) that large, copied at each poll wrapper.
            Store::Postgres(p) => Box::pin(p.run(op)).await,
        }
    }

    /// Checks that the database answers (`GET /readyz`).
    pub async fn ping(&self) -> Result<(), LedgerError> {
        match self {
            Store::Sqlite(g) => g.ping().await,
            Store::Postgres(p) => p.ping().await,
        }
    }

    /// The database in words, never with a password.
    pub fn describe(&self) -> String {
        match self {
            Store::Sqlite(g) => g.describe(),
            Store::Postgres(p) => p.describe(),
        }
    }

    /// [`Op::Seed`].
    pub async fn seed(
        &self,
        realm: &str,
        config: RealmConfig,
        actor: &str,
    ) -> Result<(), LedgerError> {
        self.run(Op::seed(realm, config, actor)).await.map(drop)
    }
    /// [`Op::Deploy`].
    pub async fn deploy(
        &self,
        realm: &str,
        request: &Deployment,
        actor: &str,
    ) -> Result<Decision, LedgerError> {
        self.run(Op::deploy(realm, request, actor))
            .await?
            .decision()
    }
    /// [`Op::WhatIf`].
    pub async fn what_if(
        &self,
        realm: &str,
        request: &Deployment,
    ) -> Result<Decision, LedgerError> {
        self.run(Op::what_if(realm, request)).await?.decision()
    }
    /// [`Op::Undeploy`].
    pub async fn undeploy(
        &self,
        realm: &str,
        key: &Key,
        actor: &str,
    ) -> Result<Deployment, LedgerError> {
        self.run(Op::undeploy(realm, key, actor))
            .await?
            .undeployed()
    }
    /// [`Op::Status`].
    pub async fn status(&self, realm: &str) -> Result<RealmStatus, LedgerError> {
        self.run(Op::Status {
            realm: realm.to_owned(),
        })
        .await?
        .status()
    }
    /// [`Op::Retire`].
    pub async fn retire(&self, realm: &str, actor: &str) -> Result<Retirement, LedgerError> {
        self.run(Op::retire(realm, actor)).await?.retired()
    }
    /// [`Op::Decisions`].
    pub async fn decisions(&self, realm: &str) -> Result<Vec<DecisionRecord>, LedgerError> {
        self.run(Op::decisions(realm)).await?.decisions()
    }
    /// [`Op::Decisions`]: at most `limit` entries after the entry `after`.
    pub async fn decisions_page(
        &self,
        realm: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<DecisionRecord>, LedgerError> {
        self.run(Op::Decisions {
            realm: realm.to_owned(),
            after,
            limit: Some(limit),
        })
        .await?
        .decisions()
    }
}

/// Brings the ledger at `url` to this build's schema (creating it if needed); refuses a newer
/// one. Safe to run from several processes at once.
pub async fn migrate(url: &DbUrl, o: StoreOptions) -> Result<Migrated, LedgerError> {
    match url {
        DbUrl::Sqlite(path) => {
            let path = path.clone();
            let db = url.describe();
            tokio::task::spawn_blocking(move || Ledger::migrate(&path, o.sync))
                .await
                .map_err(|e| LedgerError::CommitFailed {
                    db,
                    detail: format!("internal error: {e}"),
                })?
        }
        DbUrl::Postgres(t) => super::postgres::migrate(t, o).await,
    }
}
