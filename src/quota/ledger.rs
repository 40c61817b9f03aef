//! The admission ledger: realm configs, active deployments and the decision log in SQLite.
//!
//! SQLite in WAL mode; `synchronous=FULL` by default so an acknowledged admission survives a
//! power cut (`NORMAL` is offered for benchmarks and tolerant setups). Every admission is one
//! `BEGIN IMMEDIATE` transaction: it takes the write lock before reading the realm's usage, so
//! two writers — threads, processes or HTTP requests — can never both see the last free RTU.
//! The decision log is append-only: triggers refuse UPDATE and DELETE.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::known::Known;
use super::ledger_log::{Log, LogRow};
use super::ledger_rows::{
    load_config, load_retired, load_state, remove_deployment, sql_err, store_usage,
};
use super::ops::{Answer, Migrated, Op, Retirement, now};
pub use super::ops::{DecisionRecord, LedgerError, RealmStatus, Sync};

use super::model::{self, Decision, Deployment, EnvUsage, Key, RealmConfig};

use super::ledger_schema::{MIGRATIONS, SCHEMA_VERSION};

/// Prepared statements a connection keeps.
const STATEMENTS_CACHED: usize = 48;

/// An open ledger (one SQLite connection).
pub struct Ledger {
    conn: Connection,
    path: PathBuf,
    /// The schema version the file had when opened (0: new).
    schema_from: i64,
    /// The facts this connection already knows (revalidated in every transaction).
    known: Known,
}

impl Ledger {
    /// Opens the existing ledger at `path`; never creates one.
    pub fn open_existing(path: &Path, sync: Sync) -> Result<Self, LedgerError> {
        match crate::fsutil::check_regular(path) {
            Ok(()) => Self::open(path, sync),
            Err(crate::fsutil::ReadError::NotFound { .. }) => Err(LedgerError::Missing {
                path: path.to_owned(),
            }),
            Err(e) => Err(LedgerError::Corrupt {
                db: path.display().to_string(),
                detail: e.to_string(),
            }),
        }
    }

    /// Opens (creating if needed) the ledger at `path`.
    pub fn open(path: &Path, sync: Sync) -> Result<Self, LedgerError> {
        let err = sql_err(path);
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(30)).map_err(err)?;
        // Every statement the ledger runs stays prepared (about two dozen, with the log's
        // multi-row inserts); rusqlite keeps 16 by default.
        conn.set_prepared_statement_cache_capacity(STATEMENTS_CACHED);
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(
            None,
            "synchronous",
            match sync {
                Sync::Full => "FULL",
                Sync::Normal => "NORMAL",
            },
        )
        .map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(err)?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(err)?;
        if version < 0 {
            return Err(LedgerError::Corrupt {
                db: path.display().to_string(),
                detail: format!("schema version {version} is not one realmctl ever wrote"),
            });
        }
        if version > SCHEMA_VERSION {
            return Err(LedgerError::NewerSchema {
                db: path.display().to_string(),
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        if version < SCHEMA_VERSION {
            // Every missing migration in order, with the version bump, in one transaction.
            let tx = conn.unchecked_transaction().map_err(err)?;
            for sql in &MIGRATIONS[version as usize..] {
                tx.execute_batch(sql).map_err(err)?;
            }
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(err)?;
            tx.commit().map_err(err)?;
        }
        Ok(Ledger {
            conn,
            path: path.to_owned(),
            schema_from: version,
            known: Known::default(),
        })
    }

    fn sql(&self) -> impl Fn(rusqlite::Error) -> LedgerError + '_ {
        sql_err(&self.path)
    }

    /// Creates or updates a realm's config; refuses to go below what is deployed (the refusal
    /// is logged).
    pub fn seed(
        &mut self,
        realm: &str,
        config: RealmConfig,
        actor: &str,
    ) -> Result<(), LedgerError> {
        self.one(&Op::seed(realm, config, actor)).map(drop)
    }

    /// Decides and, if admitted, records a deployment; every decision is logged.
    pub fn deploy(
        &mut self,
        realm: &str,
        request: &Deployment,
        actor: &str,
    ) -> Result<Decision, LedgerError> {
        self.one(&Op::deploy(realm, request, actor))?.decision()
    }

    /// Decides without recording anything.
    pub fn what_if(&mut self, realm: &str, request: &Deployment) -> Result<Decision, LedgerError> {
        self.one(&Op::what_if(realm, request))?.decision()
    }

    /// Removes the active version of (pipeline, major) in an environment, releasing its
    /// subscription and RTUs; returns what was removed.
    pub fn undeploy(
        &mut self,
        realm: &str,
        key: &Key,
        actor: &str,
    ) -> Result<Deployment, LedgerError> {
        self.one(&Op::undeploy(realm, key, actor))?.undeployed()
    }

    /// Usage and deployments of a realm.
    pub fn status(&mut self, realm: &str) -> Result<RealmStatus, LedgerError> {
        self.one(&Op::Status {
            realm: realm.to_owned(),
        })?
        .status()
    }

    /// The decision log of a realm, oldest first.
    pub fn decisions(&mut self, realm: &str) -> Result<Vec<DecisionRecord>, LedgerError> {
        self.one(&Op::decisions(realm))?.decisions()
    }

    /// Retires a realm: nothing new is admitted, its config is final, its log is kept.
    pub fn retire(&mut self, realm: &str, actor: &str) -> Result<Retirement, LedgerError> {
        self.one(&Op::retire(realm, actor))?.retired()
    }

    /// Whether a realm is seeded.
    pub fn has_realm(&self, realm: &str) -> Result<bool, LedgerError> {
        self.conn
            .query_row(
                "SELECT 1 FROM realms WHERE name = ?1",
                params![realm],
                |_| Ok(()),
            )
            .optional()
            .map(|o| o.is_some())
            .map_err(self.sql())
    }

    /// Runs one operation in its own transaction (`BEGIN IMMEDIATE` for writes, so the write
    /// lock is held before anything is read); a refused seed still commits its log entry.
    pub fn one(&mut self, op: &Op) -> Result<Answer, LedgerError> {
        let (path, err) = (&self.path, sql_err(&self.path));
        // Reads too take the write lock: the log may have to be folded into the tables first.
        let tx = begin(&mut self.conn, path, TransactionBehavior::Immediate)?;
        let known = &mut self.known;
        known.open(&tx, path)?;
        if !decided_from_known(op) {
            known.fold(&tx, path)?;
        }
        let at = now();
        let mut log = Log::default();
        let answer = run_op(&tx, path, known, &at, op, &mut log);
        if keeps_effects(&answer) {
            log.flush(&tx).map_err(err)?;
            known.fold_if_due(&tx, path)?;
            tx.commit().map_err(err)?;
            known.committed();
        }
        answer
    }

    /// Group commit: runs `ops` one after another in ONE `BEGIN IMMEDIATE` transaction, each in
    /// its own savepoint (a failed operation leaves no trace, the others are unaffected), and
    /// commits once — one fsync for the whole batch under `synchronous=FULL`. Each operation
    /// sees the effects of those before it, so the answers are exactly those of running them
    /// serially in this order. `Err` means the commit failed and none of them happened.
    pub fn batch(&mut self, ops: &[&Op]) -> Result<Vec<Result<Answer, LedgerError>>, LedgerError> {
        self.batch_where(ops, |_| true)
    }

    /// [`Ledger::batch`], asking `wanted(i)` once the write lock is held whether operation `i`
    /// is still awaited; one that is not (its caller gave up while the lock was busy) is not
    /// run and is answered [`LedgerError::Unavailable`].
    pub fn batch_where(
        &mut self,
        ops: &[&Op],
        wanted: impl Fn(usize) -> bool,
    ) -> Result<Vec<Result<Answer, LedgerError>>, LedgerError> {
        self.batch_then(ops, wanted, |_| {})
    }

    /// [`Ledger::batch_where`], handing the answers to `before_commit` just before the commit
    /// (the group-commit writer's test-only fault that answers first; see `batch.rs`).
    pub(crate) fn batch_then(
        &mut self,
        ops: &[&Op],
        wanted: impl Fn(usize) -> bool,
        before_commit: impl FnOnce(&mut Vec<Result<Answer, LedgerError>>),
    ) -> Result<Vec<Result<Answer, LedgerError>>, LedgerError> {
        let (path, err) = (&self.path, sql_err(&self.path));
        let tx = begin(&mut self.conn, path, TransactionBehavior::Immediate)?;
        let known = &mut self.known;
        known.open(&tx, path)?;
        // One instant for the whole batch: it is committed at once.
        let at = now();
        let mut answers = Vec::with_capacity(ops.len());
        let gone = || LedgerError::Unavailable {
            db: path.display().to_string(),
            detail: "the caller gave up before the ledger's write lock was free".into(),
        };
        // Savepoints through cached statements (no SQL parsing per operation). Reads need none;
        // neither does an admission: it writes only after its reads succeeded, so a failure
        // before that leaves nothing, and a failure while writing is a database error that
        // fails the whole batch (nothing is acknowledged).
        let step = |sql: &str| tx.prepare_cached(sql).and_then(|mut st| st.execute([]));
        // The admissions' log rows, written together (`ledger_log.rs`): before anything reads
        // the log or the tables, and before the commit.
        let mut log = Log::default();
        for (i, op) in ops.iter().enumerate() {
            if !wanted(i) {
                answers.push(Err(gone()));
                continue;
            }
            if let Op::WhatIf { .. } = op {
                answers.push(run_op(&tx, path, known, &at, op, &mut log));
                continue;
            }
            if let Op::Deploy { .. } = op {
                let answer = run_op(&tx, path, known, &at, op, &mut log);
                match answer {
                    Ok(_) | Err(LedgerError::UnknownRealm(_)) => answers.push(answer),
                    Err(e) => return Err(e),
                }
                continue;
            }
            // Everything else reads or writes the tables itself: the log is folded into them
            // first (outside the savepoint, so a rollback cannot undo the fold).
            log.flush(&tx).map_err(err)?;
            known.fold(&tx, path)?;
            if !op.writes() {
                answers.push(run_op(&tx, path, known, &at, op, &mut log));
                continue;
            }
            step("SAVEPOINT op").map_err(err)?;
            let answer = run_op(&tx, path, known, &at, op, &mut log);
            if !keeps_effects(&answer) {
                step("ROLLBACK TO op").map_err(err)?;
            }
            step("RELEASE op").map_err(err)?;
            answers.push(answer);
        }
        log.flush(&tx).map_err(err)?;
        known.fold_if_due(&tx, path)?;
        before_commit(&mut answers);
        tx.commit().map_err(err)?;
        known.committed();
        Ok(answers)
    }

    /// Opens (creating or migrating) the ledger at `path` and says from which schema version.
    pub fn migrate(path: &Path, sync: Sync) -> Result<Migrated, LedgerError> {
        let l = Self::open(path, sync)?;
        Ok(Migrated {
            from: l.schema_from,
            to: SCHEMA_VERSION,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks that the database answers (`/readyz`).
    pub fn ping(&self) -> Result<(), LedgerError> {
        self.conn
            .query_row("SELECT count(*) FROM realms", [], |_| Ok(()))
            .map_err(self.sql())
    }
}

/// Whether an operation's writes are kept: on success, and for a refused seed (its refusal is
/// logged).
fn keeps_effects(answer: &Result<Answer, LedgerError>) -> bool {
    matches!(
        answer,
        Ok(_) | Err(LedgerError::SeedRefused { .. } | LedgerError::Retired { .. })
    )
}

/// Whether `op` decides from what the connection knows (else it reads the tables itself, which
/// must hold the whole log first).
fn decided_from_known(op: &Op) -> bool {
    matches!(op, Op::Deploy { .. } | Op::WhatIf { .. })
}

/// One operation inside an open transaction or savepoint.
/// Admissions and what-ifs decide from what `known` holds; a seed or an undeploy changes the
/// tables directly, so the realm is forgotten after it (the log folded in before).
/// Seeds, undeploys and retirements write their log rows at once; decisions of admissions are
/// queued on `log`, which the caller flushes.
fn run_op<'a>(
    c: &Connection,
    path: &Path,
    known: &mut Known,
    at: &'a str,
    op: &'a Op,
    log: &mut Log<'a>,
) -> Result<Answer, LedgerError> {
    match op {
        Op::Seed {
            realm,
            config,
            actor,
        } => {
            known.forget(realm);
            seed_in(c, path, at, realm, *config, actor).map(|()| Answer::Seeded)
        }
        Op::Deploy {
            realm,
            request,
            logged,
            actor,
        } => {
            deploy_in(c, path, known, log, at, realm, (request, logged), actor).map(Answer::Decided)
        }
        Op::WhatIf { realm, request } => {
            let (config, facts) = facts(c, path, known, log, realm, request)?;
            Ok(Answer::Decided(model::decide_with(
                &config, &facts, request,
            )))
        }
        Op::Undeploy { realm, key, actor } => {
            known.forget(realm);
            undeploy_in(c, path, at, realm, key, actor).map(Answer::Undeployed)
        }
        Op::Status { realm } => {
            let config = load_config(c, realm, path)?;
            let state = load_state(c, realm, path)?;
            Ok(Answer::Status(RealmStatus {
                retired_at: load_retired(c, realm, path)?,
                ..RealmStatus::new(realm, config, state)
            }))
        }
        Op::Decisions {
            realm,
            after,
            limit,
        } => decisions_in(c, path, realm, *after, *limit).map(Answer::Decisions),
        Op::Retire { realm, actor } => {
            known.forget(realm);
            retire_in(c, path, at, realm, actor).map(Answer::Retired)
        }
    }
}

/// Retires `realm` once: the first retirement's time stands, and is logged.
fn retire_in(
    tx: &Connection,
    path: &Path,
    at: &str,
    realm: &str,
    actor: &str,
) -> Result<Retirement, LedgerError> {
    if let Some(then) = load_retired(tx, realm, path)? {
        return Ok(Retirement {
            realm: realm.to_owned(),
            retired_at: then,
            now: false,
        });
    }
    let err = sql_err(path);
    tx.prepare_cached("UPDATE realms SET retired_at = ?2 WHERE name = ?1")
        .and_then(|mut st| st.execute(params![realm, at]))
        .map_err(err)?;
    log(
        tx,
        at,
        actor,
        realm,
        "retire",
        "{}",
        true,
        None,
        &model::retire_detail(),
        None,
        None,
    )
    .map_err(err)?;
    Ok(Retirement {
        realm: realm.to_owned(),
        retired_at: at.to_owned(),
        now: true,
    })
}

fn seed_in(
    tx: &Connection,
    path: &Path,
    at: &str,
    realm: &str,
    config: RealmConfig,
    actor: &str,
) -> Result<(), LedgerError> {
    let err = sql_err(path);
    let state = load_state(tx, realm, path)?;
    let request = serde_json::to_string(&config).unwrap_or_default();
    let retired = load_retired(tx, realm, path).or_else(|e| match e {
        LedgerError::UnknownRealm(_) => Ok(None),
        e => Err(e),
    })?;
    // A refused seed is logged, with its reason, and changes nothing else.
    let refusal = match (retired, model::covers(&config, &state)) {
        (Some(then), _) => Some((
            "realm_retired",
            model::retired_detail(),
            LedgerError::Retired {
                realm: realm.to_owned(),
                at: then,
            },
        )),
        (None, Err(detail)) => Some((
            "below_current_use",
            detail.clone(),
            LedgerError::SeedRefused {
                realm: realm.to_owned(),
                detail,
            },
        )),
        (None, Ok(())) => None,
    };
    if let Some((reason, detail, refused)) = refusal {
        log(
            tx,
            at,
            actor,
            realm,
            "seed",
            &request,
            false,
            Some(reason),
            &detail,
            None,
            None,
        )
        .map_err(err)?;
        return Err(refused);
    }
    tx.prepare_cached(
        "INSERT INTO realms (name, pipeline_subscriptions, extra_test_rtus, extra_prod_rtus, max_replicas, max_size, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT(name) DO UPDATE SET pipeline_subscriptions = excluded.pipeline_subscriptions,
           extra_test_rtus = excluded.extra_test_rtus, extra_prod_rtus = excluded.extra_prod_rtus,
           max_replicas = excluded.max_replicas, max_size = excluded.max_size, updated_at = excluded.updated_at",
    )
    .and_then(|mut st| st.execute(params![realm, config.pipeline_subscriptions as i64, config.extra_test_rtus as i64, config.extra_prod_rtus as i64, config.max_replicas, config.max_size.as_str(), at]))
    .map_err(err)?;
    log(
        tx,
        at,
        actor,
        realm,
        "seed",
        &request,
        true,
        None,
        &model::seed_detail(&config),
        None,
        None,
    )
    .map_err(err)?;
    Ok(())
}

/// The facts an admission or a what-if decides from. Forgetting remembered deployments folds
/// the log into the tables first, so the decisions this transaction queued are written before.
fn facts(
    c: &Connection,
    path: &Path,
    known: &mut Known,
    log: &mut Log<'_>,
    realm: &str,
    request: &Deployment,
) -> Result<(RealmConfig, model::Facts), LedgerError> {
    if known.crowded(realm) {
        log.flush(c).map_err(sql_err(path))?;
    }
    known.facts(c, path, realm, request)
}

#[allow(clippy::too_many_arguments)]
fn deploy_in<'a>(
    tx: &Connection,
    path: &Path,
    known: &mut Known,
    log: &mut Log<'a>,
    at: &'a str,
    realm: &'a str,
    (request, req): (&Deployment, &'a str),
    actor: &'a str,
) -> Result<Decision, LedgerError> {
    let (config, facts) = facts(tx, path, known, log, realm, request)?;
    let d = model::decide_with(&config, &facts, request);
    if d.admitted {
        // The decision-log row below is the admission's one write; `deployments` and `usage`
        // follow from the log when it is next folded in (`known.rs`).
        known.admitted(tx, path, realm, request, at, &d.after)?;
    }
    log.push(LogRow {
        at,
        actor,
        realm,
        action: "deploy",
        request: req,
        admitted: d.admitted,
        reason: d.reason.map(|r| r.as_str()),
        detail: d.detail.clone(),
        before: Some(d.before.to_json_string()),
        after: Some(d.after.to_json_string()),
    });
    Ok(d)
}

fn undeploy_in(
    tx: &Connection,
    path: &Path,
    at: &str,
    realm: &str,
    key: &Key,
    actor: &str,
) -> Result<Deployment, LedgerError> {
    let err = sql_err(path);
    let config = load_config(tx, realm, path)?;
    let state = load_state(tx, realm, path)?;
    let change = model::undeploy(&config, &state, key).ok_or_else(|| LedgerError::NotDeployed {
        realm: realm.to_owned(),
        environment: key.environment,
        pipeline: key.pipeline.clone(),
        major: key.major,
    })?;
    remove_deployment(tx, realm, key).map_err(err)?;
    store_usage(tx, realm, key.environment, &change.after).map_err(err)?;
    log(
        tx,
        at,
        actor,
        realm,
        "undeploy",
        &serde_json::to_string(key).unwrap_or_default(),
        true,
        None,
        &change.detail,
        Some(&change.before),
        Some(&change.after),
    )
    .map_err(err)?;
    Ok(change.removed)
}

fn decisions_in(
    c: &Connection,
    path: &Path,
    realm: &str,
    after: i64,
    limit: Option<u32>,
) -> Result<Vec<DecisionRecord>, LedgerError> {
    let sql = sql_err(path);
    // SQLite reads a negative LIMIT as none.
    let limit = limit.map_or(-1, i64::from);
    let mut stmt = c
        .prepare_cached("SELECT id, at, actor, action, request, admitted, reason, detail FROM decisions WHERE realm = ?1 AND id > ?2 ORDER BY id LIMIT ?3")
        .map_err(sql)?;
    let rows = stmt
        .query_map(params![realm, after, limit], |r| {
            Ok(DecisionRecord {
                id: r.get(0)?,
                at: r.get(1)?,
                actor: r.get(2)?,
                action: r.get(3)?,
                request: super::ops::request_value(&r.get::<_, String>(4)?),
                admitted: r.get::<_, i64>(5)? != 0,
                reason: r.get(6)?,
                detail: r.get(7)?,
            })
        })
        .map_err(sql)?;
    rows.collect::<Result<_, _>>().map_err(sql)
}
/// Starts a transaction; `Immediate` takes the write lock before anything is read.
fn begin<'c>(
    conn: &'c mut Connection,
    path: &Path,
    behavior: TransactionBehavior,
) -> Result<Transaction<'c>, LedgerError> {
    conn.transaction_with_behavior(behavior)
        .map_err(sql_err(path))
}

#[allow(clippy::too_many_arguments)]
fn log(
    tx: &Connection,
    at: &str,
    actor: &str,
    realm: &str,
    action: &str,
    request: &str,
    admitted: bool,
    reason: Option<&str>,
    detail: &str,
    before: Option<&EnvUsage>,
    after: Option<&EnvUsage>,
) -> rusqlite::Result<()> {
    let js = |u: Option<&EnvUsage>| u.map(|u| u.to_json_string());
    let row = LogRow {
        at,
        actor,
        realm,
        action,
        request,
        admitted,
        reason,
        detail: detail.to_owned(),
        before: js(before),
        after: js(after),
    };
    super::ledger_log::write(tx, &[row])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::model::{Env, Size};

    fn cfg(subs: u64) -> RealmConfig {
        RealmConfig {
            pipeline_subscriptions: subs,
            extra_test_rtus: 0,
            extra_prod_rtus: 0,
            max_replicas: 10,
            max_size: Size::Large,
        }
    }

    fn dep(p: &str, v: &str, size: Size, replicas: u32) -> Deployment {
        Deployment {
            environment: Env::Prod,
            pipeline: p.into(),
            version: v.parse().unwrap(),
            size,
            replicas,
        }
    }

    /// The Prod usage counters on disk for realm `acme`.
    fn prod_counters(l: &Ledger) -> (i64, i64) {
        l.conn
            .query_row(
                "SELECT subscriptions_used, rtus_used FROM usage WHERE realm = 'acme' AND environment = 'prod'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
    }

    #[test]
    fn admits_records_undeploys_and_logs() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join("q.db"), Sync::Full).unwrap();
        assert!(matches!(
            l.deploy("acme", &dep("a", "1.0", Size::Small, 1), "t"),
            Err(LedgerError::UnknownRealm(_))
        ));
        l.seed("acme", cfg(1), "t").unwrap();
        assert!(
            l.deploy("acme", &dep("a", "1.0", Size::Medium, 1), "t")
                .unwrap()
                .admitted
        );
        let denied = l
            .deploy("acme", &dep("b", "1.0", Size::Small, 1), "t")
            .unwrap();
        assert_eq!(denied.reason, Some(model::Reason::NoPipelineSubscription));
        assert!(matches!(
            l.seed("acme", cfg(0), "t"),
            Err(LedgerError::SeedRefused { .. })
        ));
        let st = l.status("acme").unwrap();
        assert_eq!((st.prod.subscriptions_used, st.prod.rtus_used), (1, 2));
        let key = Key {
            environment: Env::Prod,
            pipeline: "a".into(),
            major: 1,
        };
        assert_eq!(
            l.undeploy("acme", &key, "t").unwrap().version.to_string(),
            "1.0"
        );
        assert!(matches!(
            l.undeploy("acme", &key, "t"),
            Err(LedgerError::NotDeployed { .. })
        ));
        assert!(
            l.deploy("acme", &dep("b", "1.0", Size::Small, 1), "t")
                .unwrap()
                .admitted
        );
        let log = l.decisions("acme").unwrap();
        let actions: Vec<_> = log
            .iter()
            .map(|d| (d.action.as_str(), d.admitted))
            .collect();
        assert_eq!(
            actions,
            [
                ("seed", true),
                ("deploy", true),
                ("deploy", false),
                ("seed", false),
                ("undeploy", true),
                ("deploy", true)
            ]
        );
        // The counters agree with the deployments.
        let counted = prod_counters(&l);
        assert_eq!(counted, (1, 1));
        // Append-only.
        assert!(l.conn.execute("DELETE FROM decisions", []).is_err());
        assert!(
            l.conn
                .execute("UPDATE decisions SET admitted = 1", [])
                .is_err()
        );
    }

    /// What the connection knows is dropped as soon as another connection commits: an
    /// undeploy and a deploy made through a second connection decide the first one's next
    /// admissions, and the counters on disk match the deployments after each batch.
    #[test]
    fn another_connections_commits_decide_the_next_admission() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let mut serving = Ledger::open(&path, Sync::Full).unwrap();
        let decided = |answers: &[Result<Answer, LedgerError>]| match &answers[0] {
            Ok(Answer::Decided(d)) => d.clone(),
            other => panic!("{other:?}"),
        };
        serving.seed("acme", cfg(1), "t").unwrap();
        let a = dep("a", "1.0", Size::Small, 1);
        assert!(serving.deploy("acme", &a, "t").unwrap().admitted);
        let b = Op::deploy("acme", &dep("b", "1.0", Size::Small, 1), "t");
        let first = serving.batch(&[&b]).unwrap();
        assert_eq!(
            decided(&first).reason,
            Some(model::Reason::NoPipelineSubscription)
        );
        let mut cli = Ledger::open(&path, Sync::Full).unwrap();
        let key = a.key();
        cli.undeploy("acme", &key, "cli").unwrap();
        let second = serving.batch(&[&b]).unwrap();
        assert!(decided(&second).admitted);
        cli.undeploy("acme", &dep("b", "1.0", Size::Small, 1).key(), "cli")
            .unwrap();
        assert!(
            cli.deploy("acme", &dep("c", "1.0", Size::Small, 1), "cli")
                .unwrap()
                .admitted
        );
        let d = Op::deploy("acme", &dep("d", "1.0", Size::Small, 1), "t");
        let third = serving.batch(&[&d]).unwrap();
        assert_eq!(
            decided(&third).reason,
            Some(model::Reason::NoPipelineSubscription)
        );
        let counted = prod_counters(&serving);
        assert_eq!(counted, (1, 1));
    }

    /// A batch's status sees its earlier admissions, and the counters on disk (once the log
    /// is folded in) are those of the deployments it leaves; a redeploy of a known pipeline
    /// keeps its subscription.
    #[test]
    fn a_batch_leaves_counters_that_match_its_deployments() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join("q.db"), Sync::Normal).unwrap();
        l.seed("acme", cfg(3), "t").unwrap();
        let ops = [
            Op::deploy("acme", &dep("a", "1.0", Size::Small, 1), "t"),
            Op::deploy("acme", &dep("b", "1.0", Size::Small, 2), "t"),
            Op::deploy("acme", &dep("a", "1.1", Size::Medium, 1), "t"),
            Op::Status {
                realm: "acme".into(),
            },
            Op::deploy("acme", &dep("c", "1.0", Size::Small, 1), "t"),
        ];
        let refs: Vec<&Op> = ops.iter().collect();
        let answers = l.batch(&refs).unwrap();
        let Ok(Answer::Status(mid)) = &answers[3] else {
            panic!("{:?}", answers[3]);
        };
        assert_eq!((mid.prod.subscriptions_used, mid.prod.rtus_used), (2, 4));
        let st = l.status("acme").unwrap();
        assert_eq!((st.prod.subscriptions_used, st.prod.rtus_used), (3, 5));
        let counted = prod_counters(&l);
        assert_eq!(counted, (3, 5));
    }

    /// A ledger left at version 1 by an earlier realmctl is migrated on open, keeps its
    /// realms, deployments and log, and goes on deciding from them.
    #[test]
    fn a_version_1_ledger_is_migrated_and_keeps_deciding() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(super::super::ledger_schema::MIGRATIONS[0])
                .unwrap();
            c.execute_batch(
                "INSERT INTO realms VALUES ('acme', 1, 0, 0, 10, 'large', 'then');
                 INSERT INTO deployments VALUES ('acme', 'prod', 'a', 1, 0, 'medium', 1, 2, 'then');
                 INSERT INTO usage VALUES ('acme', 'prod', 1, 2);
                 PRAGMA user_version = 1;",
            )
            .unwrap();
        }
        let m = Ledger::migrate(&path, Sync::Normal).unwrap();
        assert_eq!((m.from, m.to), (1, SCHEMA_VERSION));
        let mut l = Ledger::open_existing(&path, Sync::Normal).unwrap();
        let st = l.status("acme").unwrap();
        assert_eq!(st.deployments.len(), 1);
        // The one subscription is taken by `a`: another pipeline is refused, `a` redeploys.
        let other = l
            .deploy("acme", &dep("b", "1.0", Size::Small, 1), "t")
            .unwrap();
        assert_eq!(other.reason, Some(model::Reason::NoPipelineSubscription));
        assert!(
            l.deploy("acme", &dep("a", "1.1", Size::Small, 2), "t")
                .unwrap()
                .admitted
        );
    }

    fn table_has(l: &Ledger, pipeline: &str) -> bool {
        l.conn
            .query_row(
                "SELECT count(*) FROM deployments WHERE pipeline = ?1",
                params![pipeline],
                |r| r.get::<_, i64>(0),
            )
            .unwrap()
            == 1
    }

    /// An admission writes its decision-log row only; the next connection folds it into the
    /// tables (as after a crash right after the answer), and a connection that admits
    /// `FOLD_EVERY` times folds without being asked.
    #[test]
    fn admissions_write_one_row_and_are_folded_in_by_whoever_comes_next() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let mut serving = Ledger::open(&path, Sync::Full).unwrap();
        serving.seed("acme", cfg(5000), "t").unwrap();
        let a = dep("a", "1.0", Size::Small, 1);
        assert!(serving.deploy("acme", &a, "t").unwrap().admitted);
        assert!(!table_has(&serving, "a"), "not folded yet: one row written");
        drop(serving); // never folded by the connection that admitted it
        let mut next = Ledger::open(&path, Sync::Full).unwrap();
        let st = next.status("acme").unwrap();
        assert_eq!(st.deployments, vec![a]);
        assert!(table_has(&next, "a"));
        // `b` redeployed FOLD_EVERY times (one remembered deployment: nothing is forgotten).
        let every = super::super::known::FOLD_EVERY;
        let ops: Vec<Op> = (1..=every)
            .map(|i| Op::deploy("acme", &dep("b", &format!("1.{i}"), Size::Small, 1), "t"))
            .collect();
        let refs: Vec<&Op> = ops.iter().collect();
        next.batch(&refs).unwrap();
        let minor: i64 = next
            .conn
            .query_row(
                "SELECT minor FROM deployments WHERE pipeline = 'b'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(minor, every as i64);
        let counted = prod_counters(&next);
        assert_eq!(counted, (2, 2));
    }

    /// Remembered deployments beyond the bound are forgotten only after the log is folded in,
    /// so a redeploy after that is still known as one (it keeps its subscription).
    #[test]
    fn forgetting_remembered_deployments_reads_them_back_folded() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join("q.db"), Sync::Normal).unwrap();
        let n = 3 * super::super::known::MAX_REMEMBERED;
        l.seed("acme", cfg(n as u64), "t").unwrap();
        let ops: Vec<Op> = (0..n)
            .map(|i| Op::deploy("acme", &dep(&format!("p{i}"), "1.0", Size::Small, 1), "t"))
            .collect();
        let refs: Vec<&Op> = ops.iter().collect();
        l.batch(&refs).unwrap();
        let again = l
            .deploy("acme", &dep("p0", "1.1", Size::Small, 1), "t")
            .unwrap();
        assert!(again.admitted);
        assert_eq!(
            again.replaces.map(|d| d.version.to_string()),
            Some("1.0".into())
        );
        assert_eq!(again.after.subscriptions_used, n as u64);
        // Every subscription is taken: a new pipeline is refused.
        let new = l
            .deploy("acme", &dep("new", "1.0", Size::Small, 1), "t")
            .unwrap();
        assert_eq!(new.reason, Some(model::Reason::NoPipelineSubscription));
    }

    /// With nothing new in the log, a read folds nothing and writes nothing.
    #[test]
    fn a_read_with_nothing_to_fold_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join("q.db"), Sync::Normal).unwrap();
        l.seed("acme", cfg(2), "t").unwrap();
        l.deploy("acme", &dep("a", "1.0", Size::Small, 1), "t")
            .unwrap();
        l.status("acme").unwrap(); // folds the admission in
        let before = l.conn.total_changes();
        l.status("acme").unwrap();
        assert_eq!(l.conn.total_changes(), before);
    }

    #[test]
    fn what_if_records_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join("q.db"), Sync::Normal).unwrap();
        l.seed("acme", cfg(1), "t").unwrap();
        assert!(
            l.what_if("acme", &dep("a", "1.0", Size::Small, 1))
                .unwrap()
                .admitted
        );
        assert!(l.status("acme").unwrap().deployments.is_empty());
        assert_eq!(l.decisions("acme").unwrap().len(), 1);
    }
}
