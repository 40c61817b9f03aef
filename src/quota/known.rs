//! What the SQLite ledger's connection already knows: each realm's config, its usage counters
//! and the active deployments it has looked up — so an admission decides without reading.
//!
//! Why: on SQLite every admission runs in the one writer thread, so whatever it costs there
//! bounds the whole service (issue #21: the fact read, the usage upsert and the decision-log
//! row were most of an admission's writer time). The facts themselves change only through
//! this connection's own writes, which update them here as they are made — unless another
//! connection (`realmctl quota deploy --db`, a second process) commits. SQLite tells exactly
//! that: `PRAGMA data_version` changes when, and only when, another connection has committed
//! (<https://sqlite.org/pragma.html#pragma_data_version>). So what is known is revalidated
//! under the write lock, once per transaction ([`Known::open`]): a changed version forgets
//! everything and the facts are read again.
//!
//! Changes made inside a transaction are kept only when it commits ([`Known::committed`]);
//! a transaction that fails or is rolled back leaves what is known marked stale, and the next
//! [`Known::open`] forgets it.
//!
//! **One row per admission.** An admission writes only its decision-log row, which already
//! holds the request and whether it was admitted (schema 3). The `deployments` and `usage`
//! tables are *folded in* from the log behind it ([`Known::fold`]): every admitted deploy after
//! `folded.through`, in log order, written to `deployments` (idempotently: folding a row twice
//! changes nothing), each environment's usage set to the one logged with its last admission,
//! then `through` moved to the log's end — in the same transaction, so the tables always hold
//! exactly the log up to `through`. Every connection
//! folds before it reads the tables itself: when it starts without trusted knowledge (first
//! use, another connection committed, a transaction failed), before a seed, an undeploy or a
//! status, before it forgets remembered deployments, and at the latest every [`FOLD_EVERY`]
//! admissions. A crash between an acknowledged admission and its fold loses nothing: the
//! admission is in the log and the next connection folds it in. Why: the deployment row was
//! half of an admission's writes to the WAL, on a random page of the table; folded in bulk,
//! a pipeline redeployed many times is written once.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use super::ledger_rows::{
    load_config, load_retired, load_usage, sql_err, store_deployment, store_usage,
};
use super::model::{self, Deployment, Env, EnvUsage, RealmConfig, Size, Version};
use super::ops::LedgerError;

/// Deployments remembered per realm (present or known absent) before they are forgotten and
/// read again on demand (after a fold): bounds memory however many pipelines a realm runs.
#[cfg(not(test))]
pub(super) const MAX_REMEMBERED: usize = 65_536;
/// Small in unit tests, so forgetting is exercised.
#[cfg(test)]
pub(super) const MAX_REMEMBERED: usize = 64;

/// Admissions not yet folded into the tables before a transaction folds them anyway: bounds
/// the log a crash leaves to fold (read back at ~5k instructions a row: ~25 ms), the work of
/// one fold and what [`Folding`] holds. A fold writes each distinct row once, so the larger
/// this is, the fewer writes a pipeline redeployed often costs: at 4,096 a realm of 2,000
/// pipelines paid about half a row write per admission (issue #21).
pub(super) const FOLD_EVERY: usize = 16_384;

/// The active version of one (environment, pipeline, major).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Active {
    minor: u32,
    size: Size,
    replicas: u32,
}

/// What is known about one realm.
#[derive(Debug)]
struct Realm {
    config: RealmConfig,
    /// When it was retired, if it was.
    retired: Option<String>,
    /// (subscriptions used, RTUs used) per environment ([`slot`]).
    usage: [(u64, u64); 2],
    /// (environment, major) → pipeline → its active version, `None` when known absent.
    deployments: HashMap<(Env, u32), HashMap<String, Option<Active>>>,
    remembered: usize,
}

/// The connection's knowledge; see the module docs.
#[derive(Debug, Default)]
pub(super) struct Known {
    /// `data_version` at the last commit of this connection; `None` while a transaction is
    /// open (or after one failed): stale until proven otherwise.
    valid_at: Option<i64>,
    /// `data_version` read when the open transaction began.
    pending: i64,
    realms: HashMap<String, Realm>,
    /// Admissions written to the log and not yet folded into the tables.
    unfolded: usize,
    /// What the next fold writes, gathered as this connection logged each admission: `None`
    /// when it is not known (the connection is new, another one committed, a transaction
    /// failed), and the next fold reads it back from the log instead.
    queued: Option<Folding>,
}

/// What a fold writes: the last admitted deploy of each row of `deployments` (realm,
/// environment, pipeline, major), with its time, and the usage logged with each (realm,
/// environment)'s last admission. Later admissions replace earlier ones in place (a
/// redeployed pipeline allocates nothing), so a pipeline redeployed many times is written once
/// per fold, and rows are written in the table's key order.
#[derive(Debug, Default)]
struct Folding {
    realms: BTreeMap<String, [EnvFolding; 2]>,
}

/// One environment's part of a [`Folding`] (indexed by [`slot`]).
#[derive(Debug, Default)]
struct EnvFolding {
    usage: Option<EnvUsage>,
    /// Pipeline, then its majors in order: nearly always one, so a short vector (a map per
    /// pipeline cost ~0.5 KiB each for a realm growing by a new pipeline per admission).
    rows: BTreeMap<String, Vec<(u32, Row)>>,
}

/// The last admitted deploy of one row.
#[derive(Debug)]
struct Row {
    version: Version,
    size: Size,
    replicas: u32,
    at: String,
}

/// Environments in the order of their names, as `deployments` sorts its key.
const ROW_ORDER: [Env; 2] = [Env::Prod, Env::Test];

impl Folding {
    /// Adds the admission of `d` at `at`, which left its environment at `after`. One lookup
    /// per level: a row seen before is updated in place.
    fn add(&mut self, realm: &str, d: &Deployment, at: &str, after: &EnvUsage) {
        match self.realms.get_mut(realm) {
            Some(envs) => Self::add_to(envs, d, at, after),
            None => {
                let mut envs = <[EnvFolding; 2]>::default();
                Self::add_to(&mut envs, d, at, after);
                self.realms.insert(realm.to_owned(), envs);
            }
        }
    }

    fn add_to(envs: &mut [EnvFolding; 2], d: &Deployment, at: &str, after: &EnvUsage) {
        let env = &mut envs[slot(d.environment)];
        env.usage = Some(*after);
        let row = || Row {
            version: d.version,
            size: d.size,
            replicas: d.replicas,
            at: at.to_owned(),
        };
        let major = d.version.major;
        match env.rows.get_mut(&d.pipeline) {
            Some(majors) => match majors.iter_mut().find(|(m, _)| *m == major) {
                Some((_, r)) => {
                    r.version = d.version;
                    r.size = d.size;
                    r.replicas = d.replicas;
                    r.at.clear();
                    r.at.push_str(at);
                }
                None => {
                    let i = majors.partition_point(|(m, _)| *m < major);
                    majors.insert(i, (major, row()));
                }
            },
            None => {
                env.rows.insert(d.pipeline.clone(), vec![(major, row())]);
            }
        }
    }

    /// Writes every row, in the table's key order, then every usage.
    fn write(&self, c: &Connection) -> rusqlite::Result<()> {
        for (realm, envs) in &self.realms {
            for env in ROW_ORDER {
                for (pipeline, majors) in &envs[slot(env)].rows {
                    for (_, row) in majors {
                        let d = Deployment {
                            environment: env,
                            pipeline: pipeline.clone(),
                            version: row.version,
                            size: row.size,
                            replicas: row.replicas,
                        };
                        store_deployment(c, realm, &d, &row.at)?;
                    }
                }
            }
        }
        for (realm, envs) in &self.realms {
            for env in Env::ALL {
                if let Some(u) = &envs[slot(env)].usage {
                    store_usage(c, realm, env, u)?;
                }
            }
        }
        Ok(())
    }
}

fn slot(env: Env) -> usize {
    match env {
        Env::Test => 0,
        Env::Prod => 1,
    }
}

impl Known {
    /// Called first in every transaction: keeps what is known only if no other connection has
    /// committed since this one last did.
    pub(super) fn open(&mut self, c: &Connection, path: &Path) -> Result<(), LedgerError> {
        let version: i64 = c
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut st| st.query_row([], |r| r.get(0)))
            .map_err(sql_err(path))?;
        let trusted = self.valid_at == Some(version);
        self.valid_at = None;
        self.pending = version;
        if !trusted {
            self.realms.clear();
            self.queued = None;
            self.fold(c, path)?;
        }
        Ok(())
    }

    /// The transaction committed: what is known now is what is on disk.
    pub(super) fn committed(&mut self) {
        self.valid_at = Some(self.pending);
    }

    /// Whether the realm remembers so many deployments that the next [`Known::facts`] forgets
    /// them — after folding the log into the tables, which must then hold every decision made.
    pub(super) fn crowded(&self, realm: &str) -> bool {
        self.realms
            .get(realm)
            .is_some_and(|r| r.remembered > MAX_REMEMBERED)
    }

    /// The realm's config and the facts an admission of `request` needs.
    pub(super) fn facts(
        &mut self,
        c: &Connection,
        path: &Path,
        realm: &str,
        request: &Deployment,
    ) -> Result<(RealmConfig, model::Facts), LedgerError> {
        if self.crowded(realm) {
            // What is forgotten is read again from the tables: they must hold it first.
            self.fold(c, path)?;
            if let Some(r) = self.realms.get_mut(realm) {
                r.deployments.clear();
                r.remembered = 0;
            }
        }
        let known = self.realm(c, path, realm)?;
        let (subscriptions_used, rtus_used) = known.usage[slot(request.environment)];
        let config = known.config;
        let retired = known.retired.clone();
        let by_key = known
            .deployments
            .entry((request.environment, request.version.major))
            .or_default();
        let active = match by_key.get(request.pipeline.as_str()) {
            Some(a) => *a,
            None => {
                let a = read_active(c, path, realm, request)?;
                by_key.insert(request.pipeline.clone(), a);
                known.remembered += 1;
                a
            }
        };
        let existing = active.map(|a| Deployment {
            environment: request.environment,
            pipeline: request.pipeline.clone(),
            version: Version {
                major: request.version.major,
                minor: a.minor,
            },
            size: a.size,
            replicas: a.replicas,
        });
        Ok((
            config,
            model::Facts {
                subscriptions_used,
                rtus_used,
                existing,
                retired,
            },
        ))
    }

    /// `request` was admitted (its log row written): it is now the active version of its key
    /// and the environment's usage is `after`; the tables follow at the next fold.
    pub(super) fn admitted(
        &mut self,
        c: &Connection,
        path: &Path,
        realm: &str,
        request: &Deployment,
        at: &str,
        after: &EnvUsage,
    ) -> Result<(), LedgerError> {
        if let Some(q) = &mut self.queued {
            q.add(realm, request, at, after);
        }
        let known = self.realm(c, path, realm)?;
        let env = slot(request.environment);
        known.usage[env] = (after.subscriptions_used, after.rtus_used);
        let active = Active {
            minor: request.version.minor,
            size: request.size,
            replicas: request.replicas,
        };
        let majors = known
            .deployments
            .entry((request.environment, request.version.major))
            .or_default();
        // A redeploy (the usual admission) replaces in place, without a new key.
        match majors.get_mut(&request.pipeline) {
            Some(slot) => *slot = Some(active),
            None => {
                majors.insert(request.pipeline.clone(), Some(active));
            }
        }
        self.unfolded += 1;
        Ok(())
    }

    /// Folds the log into the tables if [`FOLD_EVERY`] admissions are waiting.
    pub(super) fn fold_if_due(&mut self, c: &Connection, path: &Path) -> Result<(), LedgerError> {
        if self.unfolded >= FOLD_EVERY {
            self.fold(c, path)?;
        }
        Ok(())
    }

    /// Applies every admitted deploy logged after `folded.through` to `deployments` (the last
    /// of each row), stores the usage logged with each environment's last one, and moves
    /// `through` to the end of the log (only when the log has grown: a fold with nothing to do
    /// writes nothing, so a read stays a read). Inside the caller's write transaction.
    /// Undeploys and seeds are not folded: they change the tables themselves, always right
    /// after a fold, so every admission logged before one is already in the tables and only
    /// later ones are folded after it.
    ///
    /// What to write comes from memory when this connection logged every one of those
    /// admissions itself since its last fold (its knowledge is trusted: no other connection
    /// committed, no transaction failed; [`Known::open`]), else from the log. Both gather it
    /// through [`Folding::add`].
    pub(super) fn fold(&mut self, c: &Connection, path: &Path) -> Result<(), LedgerError> {
        let sql = sql_err(path);
        let (through, end): (i64, i64) = c
            .prepare_cached(
                "SELECT through, (SELECT coalesce(max(id), 0) FROM decisions) FROM folded WHERE one = 1",
            )
            .and_then(|mut st| st.query_row([], |r| Ok((r.get(0)?, r.get(1)?))))
            .map_err(sql)?;
        self.unfolded = 0;
        let queued = self.queued.replace(Folding::default());
        if end == through {
            return Ok(());
        }
        let todo = match queued {
            Some(q) => q,
            None => Self::logged(c, path, through)?,
        };
        todo.write(c).map_err(sql)?;
        c.prepare_cached("UPDATE folded SET through = ?1 WHERE one = 1")
            .and_then(|mut st| st.execute(params![end]))
            .map_err(sql)?;
        Ok(())
    }

    /// What a fold writes, read back from the admissions logged after `through`.
    fn logged(c: &Connection, path: &Path, through: i64) -> Result<Folding, LedgerError> {
        let sql = sql_err(path);
        let corrupt = |id: i64, detail: String| LedgerError::Corrupt {
            db: path.display().to_string(),
            detail: format!("decision {id}: {detail}"),
        };
        let mut st = c
            .prepare_cached(
                "SELECT id, realm, request, at, usage_after FROM decisions
                 WHERE id > ?1 AND admitted = 1 AND action = 'deploy' ORDER BY id",
            )
            .map_err(sql)?;
        let rows = st
            .query_map(params![through], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                ))
            })
            .map_err(sql)?;
        // The usage after the last admission of each (realm, environment) is its usage now:
        // every undeploy and seed since came after a fold and wrote its own.
        let mut todo = Folding::default();
        for row in rows {
            let (id, realm, request, at, after) = row.map_err(sql)?;
            let d: Deployment =
                serde_json::from_str(&request).map_err(|e| corrupt(id, e.to_string()))?;
            let after: EnvUsage = serde_json::from_str(after.as_deref().unwrap_or(""))
                .map_err(|e| corrupt(id, format!("usage after: {e}")))?;
            todo.add(&realm, &d, &at, &after);
        }
        Ok(todo)
    }

    /// Forgets a realm (its config or deployments were changed by SQL directly: a seed, an
    /// undeploy). Fold first.
    pub(super) fn forget(&mut self, realm: &str) {
        self.realms.remove(realm);
    }

    fn realm(
        &mut self,
        c: &Connection,
        path: &Path,
        realm: &str,
    ) -> Result<&mut Realm, LedgerError> {
        if !self.realms.contains_key(realm) {
            let config = load_config(c, realm, path)?;
            let mut usage = [(0, 0); 2];
            for (env, n, rtus) in load_usage(c, realm, path)? {
                usage[slot(env)] = (n, rtus);
            }
            let known = Realm {
                config,
                retired: load_retired(c, realm, path)?,
                usage,
                deployments: HashMap::new(),
                remembered: 0,
            };
            self.realms.insert(realm.to_owned(), known);
        }
        Ok(self.realms.get_mut(realm).expect("inserted above"))
    }
}

/// The active version of the request's (environment, pipeline, major), read by primary key.
fn read_active(
    c: &Connection,
    path: &Path,
    realm: &str,
    request: &Deployment,
) -> Result<Option<Active>, LedgerError> {
    let row: Option<(u32, String, u32)> = c
        .prepare_cached(
            "SELECT minor, size, replicas FROM deployments
             WHERE realm = ?1 AND environment = ?2 AND pipeline = ?3 AND major = ?4",
        )
        .and_then(|mut st| {
            st.query_row(
                params![
                    realm,
                    request.environment.as_str(),
                    request.pipeline,
                    request.version.major
                ],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
        })
        .map_err(sql_err(path))?;
    row.map(|(minor, size, replicas)| {
        Ok(Active {
            minor,
            size: size.parse().map_err(|detail| LedgerError::Corrupt {
                db: path.display().to_string(),
                detail,
            })?,
            replicas,
        })
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::ledger::{Ledger, Sync};

    fn dep(p: &str) -> Deployment {
        Deployment {
            environment: Env::Prod,
            pipeline: p.into(),
            version: Version { major: 1, minor: 0 },
            size: Size::Small,
            replicas: 1,
        }
    }

    fn after(n: u64) -> EnvUsage {
        EnvUsage {
            subscriptions_used: n,
            subscriptions_total: 2,
            rtus_used: n,
            rtus_total: 4,
        }
    }

    #[test]
    fn rows_are_gathered_in_the_tables_key_order_and_the_last_admission_wins() {
        assert!(ROW_ORDER[0].as_str() < ROW_ORDER[1].as_str());
        let mut f = Folding::default();
        let mut b2 = dep("b");
        b2.version.minor = 7;
        b2.replicas = 3;
        let mut b3 = dep("b");
        b3.version.major = 3;
        let mut b2_major = dep("b");
        b2_major.version.major = 2;
        let mut a_test = dep("a");
        a_test.environment = Env::Test;
        for (d, at, n) in [
            (&dep("b"), "t1", 1),
            (&a_test, "t2", 1),
            (&dep("a"), "t3", 2),
            (&b2, "t4", 2),
            (&b3, "t5", 3),
            (&b2_major, "t6", 4),
        ] {
            f.add("acme", d, at, &after(n));
        }
        let envs = &f.realms["acme"];
        let order: Vec<(Env, &str, u32, u32, &str)> = ROW_ORDER
            .iter()
            .flat_map(|&e| {
                envs[slot(e)].rows.iter().flat_map(move |(p, m)| {
                    m.iter().map(move |(major, r)| {
                        (e, p.as_str(), *major, r.version.minor, r.at.as_str())
                    })
                })
            })
            .collect();
        assert_eq!(
            order,
            [
                (Env::Prod, "a", 1, 0, "t3"),
                (Env::Prod, "b", 1, 7, "t4"),
                (Env::Prod, "b", 2, 0, "t6"),
                (Env::Prod, "b", 3, 0, "t5"),
                (Env::Test, "a", 1, 0, "t2"),
            ]
        );
        assert_eq!(envs[slot(Env::Prod)].usage, Some(after(4)));
        assert_eq!(envs[slot(Env::Prod)].rows["b"][0].1.replicas, 3);
        assert_eq!(envs[slot(Env::Test)].usage, Some(after(1)));
    }

    /// An admission remembered in a transaction that never committed is forgotten by the next
    /// one; one that committed is kept (and nothing is read again).
    #[test]
    fn only_committed_admissions_are_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let config = RealmConfig {
            pipeline_subscriptions: 2,
            extra_test_rtus: 0,
            extra_prod_rtus: 0,
            max_replicas: 1,
            max_size: Size::Small,
        };
        Ledger::open(&path, Sync::Normal)
            .unwrap()
            .seed("acme", config, "t")
            .unwrap();
        let mut c = Connection::open(&path).unwrap();
        let mut known = Known::default();

        let tx = c.transaction().unwrap();
        known.open(&tx, &path).unwrap();
        assert_eq!(
            known
                .facts(&tx, &path, "acme", &dep("a"))
                .unwrap()
                .1
                .subscriptions_used,
            0
        );
        known
            .admitted(&tx, &path, "acme", &dep("a"), "now", &after(1))
            .unwrap();
        drop(tx); // rolled back: never committed

        let tx = c.transaction().unwrap();
        known.open(&tx, &path).unwrap();
        assert!(
            known.realms.is_empty(),
            "a rolled-back admission is forgotten"
        );
        let (_, facts) = known.facts(&tx, &path, "acme", &dep("a")).unwrap();
        assert_eq!((facts.subscriptions_used, facts.existing), (0, None));
        known
            .admitted(&tx, &path, "acme", &dep("a"), "now", &after(1))
            .unwrap();
        known.fold(&tx, &path).unwrap();
        tx.commit().unwrap();
        known.committed();

        let tx = c.transaction().unwrap();
        known.open(&tx, &path).unwrap();
        assert!(
            known.realms.contains_key("acme"),
            "kept across its own commit"
        );
        let (_, facts) = known.facts(&tx, &path, "acme", &dep("a")).unwrap();
        assert_eq!(facts.subscriptions_used, 1);
        assert_eq!(facts.existing, Some(dep("a")));
    }
}
